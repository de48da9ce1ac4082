//! `moonbench merge`: the result files of a sharded run's shards as one result.
//! Each shard keeps its measured requests exactly (`shard_records`, nanoseconds
//! of its own clock) and its wall clock at the start (`shard.t0_unix`); the merge
//! puts every record on one timeline (the earliest shard's start as 0), and the
//! one summary function computes every statistic from all of them, as one
//! process would have. Missing, duplicate or mismatched shards are errors naming
//! the files; the skew between the shards' starts is reported, and when the
//! shards' clocks provably disagree (their offsets against the server's `Date`
//! header, `shard.clock`, do not overlap) the timeline uses the server's clock.
//! A bounded shard (`--bounded`) keeps a digest instead (`shard_digest`: totals and
//! HDR histograms); when any shard did, every shard's part is a digest, they add
//! up on the same timeline, and the merged result states the histograms'
//! precision (`summary_precision`).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::result::{ResultOptions, RunInfo, RunResult};
use crate::engine::run::RunOutcome;
use crate::metrics::RequestRecord;
use crate::metrics::digest::Digest;

/// Starts further apart than this are warned about: the shards did not load the
/// server together (a common `--start-at`, and synchronized clocks, fix it).
pub const SKEW_WARN_S: f64 = 0.1;

/// One shard's file, read.
struct ShardFile {
    path: PathBuf,
    json: Map<String, Value>,
    index: u64,
    count: u64,
    run: String,
    t0_unix: f64,
    clock: Option<crate::engine::shard::ClockOffset>,
    t0_ns: u64,
    end_ns: u64,
    /// Where its records are in the merge's one list (appended as each file is
    /// read, so that no second copy of them is ever held).
    range: std::ops::Range<usize>,
    /// A bounded shard's digest (then it has no records).
    digest: Option<Digest>,
}

/// The keys of a shard's file the merge reads; the rest (the per-request
/// arrays and statistics the shard wrote) is skipped without being built.
#[derive(serde::Deserialize)]
struct FileJson {
    #[serde(default)]
    shard: Option<Value>,
    #[serde(default)]
    shard_records: Option<RecordsJson>,
    #[serde(default)]
    shard_digest: Option<DigestJson>,
    // The header keys info_of reads, listed here (not flattened: serde would
    // buffer every other key to hand it on).
    #[serde(default)]
    date: Option<Value>,
    #[serde(default)]
    backend: Option<Value>,
    #[serde(default)]
    label: Option<Value>,
    #[serde(default)]
    model_id: Option<Value>,
    #[serde(default)]
    tokenizer_id: Option<Value>,
    #[serde(default)]
    num_prompts: Option<Value>,
    #[serde(default)]
    request_rate: Option<Value>,
    #[serde(default)]
    burstiness: Option<Value>,
    #[serde(default)]
    max_concurrency: Option<Value>,
    #[serde(default)]
    base_url: Option<Value>,
    #[serde(default)]
    endpoint: Option<Value>,
    #[serde(default)]
    num_warmups: Option<Value>,
}

#[derive(serde::Deserialize)]
struct DigestJson {
    #[serde(default)]
    t0_ns: u64,
    #[serde(default)]
    end_ns: u64,
    digest: Value,
}

#[derive(serde::Deserialize)]
struct RecordsJson {
    #[serde(default)]
    t0_ns: u64,
    #[serde(default)]
    end_ns: u64,
    records: Vec<RequestRecord>,
}

/// Reads a shard's file, appending its records to `all`; without `keep_texts`
/// the answers' text (only detailed results write it) is dropped as it is read.
fn read(path: &Path, all: &mut Vec<RequestRecord>, keep_texts: bool) -> Result<ShardFile, String> {
    // Parsed from the file's bytes, not through a reader: serde_json reads a slice
    // several times faster than a byte stream, and one shard's file is held only
    // while it is parsed.
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut file: FileJson = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{}: not a result file (invalid JSON: {e})", path.display()))?;
    drop(bytes);
    let h = &mut file;
    let json: Map<String, Value> = [
        ("date", h.date.take()),
        ("backend", h.backend.take()),
        ("label", h.label.take()),
        ("model_id", h.model_id.take()),
        ("tokenizer_id", h.tokenizer_id.take()),
        ("num_prompts", h.num_prompts.take()),
        ("request_rate", h.request_rate.take()),
        ("burstiness", h.burstiness.take()),
        ("max_concurrency", h.max_concurrency.take()),
        ("base_url", h.base_url.take()),
        ("endpoint", h.endpoint.take()),
        ("num_warmups", h.num_warmups.take()),
    ]
    .into_iter()
    .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
    .collect();
    let shard = file.shard.as_ref().ok_or_else(|| {
        format!(
            "{}: not a shard's result (no \"shard\" key); merge takes the files of a run made with --shard I/N",
            path.display()
        )
    })?;
    let num = |k: &str| shard.get(k).and_then(Value::as_u64);
    let (Some(index), Some(count)) = (num("index"), num("count")) else {
        return Err(format!(
            "{}: \"shard\" lacks index and count",
            path.display()
        ));
    };
    let (sr, digest) = match (file.shard_records, file.shard_digest) {
        (Some(sr), _) => (sr, None),
        (None, Some(sd)) => {
            let d = Digest::from_json(&sd.digest, &format!("{}: shard_digest", path.display()))?;
            let sr = RecordsJson {
                t0_ns: sd.t0_ns,
                end_ns: sd.end_ns,
                records: Vec::new(),
            };
            (sr, Some(d))
        }
        (None, None) => {
            return Err(format!(
                "{}: shard {index}/{count} kept no records (written by an older moonbench?); rerun the shard",
                path.display()
            ));
        }
    };
    Ok(ShardFile {
        index,
        count,
        run: shard["run"].as_str().unwrap_or("").to_string(),
        t0_unix: shard["t0_unix"].as_f64().unwrap_or(0.0),
        clock: shard
            .get("clock")
            .and_then(|c| serde_json::from_value(c.clone()).ok()),
        t0_ns: sr.t0_ns,
        end_ns: sr.end_ns,
        range: {
            let start = all.len();
            let mut recs = sr.records;
            if !keep_texts {
                for r in &mut recs {
                    r.text = String::new();
                    r.chunk_text_end = Vec::new();
                }
            }
            all.append(&mut recs);
            start..all.len()
        },
        path: path.to_path_buf(),
        json,
        digest,
    })
}

/// The least distance between the shards' clocks their offset intervals allow:
/// 0 when one instant lies in every interval, `None` unless every shard has one.
fn clock_disagreement(files: &[ShardFile]) -> Option<f64> {
    let bounds: Vec<(f64, f64)> = files
        .iter()
        .map(|f| f.clock.map(|c| c.bounds()))
        .collect::<Option<_>>()?;
    let (lo, hi) = crate::engine::shard::common(&bounds);
    Some((lo - hi).max(0.0))
}

/// The header of the merged result, from the first shard's (the concurrency
/// limit and warm-ups are the shards' sums).
fn info_of(files: &[ShardFile]) -> RunInfo {
    let h = &files[0].json;
    let s = |k: &str| h.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let sum = |k: &str| -> Option<u64> {
        let v: Vec<u64> = files
            .iter()
            .filter_map(|f| f.json.get(k).and_then(Value::as_u64))
            .collect();
        (!v.is_empty()).then(|| v.iter().sum())
    };
    RunInfo {
        date: s("date"),
        backend: s("backend"),
        label: h.get("label").and_then(Value::as_str).map(str::to_string),
        model_id: s("model_id"),
        tokenizer_id: s("tokenizer_id"),
        num_prompts: h.get("num_prompts").and_then(Value::as_u64).unwrap_or(0),
        request_rate: h.get("request_rate").and_then(Value::as_f64),
        burstiness: h.get("burstiness").and_then(Value::as_f64).unwrap_or(1.0),
        max_concurrency: sum("max_concurrency").map(|c| c as usize),
        base_url: s("base_url"),
        endpoint: s("endpoint"),
        num_warmups: sum("num_warmups").unwrap_or(0) as usize,
        ..Default::default()
    }
}

/// What a merge made: the result and what to tell the user.
pub struct Merged {
    /// The merged result (its `to_json` writes the file).
    pub result: RunResult,
    /// How many shards were merged.
    pub shards: u64,
    /// Seconds between the earliest and the latest shard's start.
    pub skew_s: f64,
    /// At least how far apart the shards' clocks are, by their offsets against
    /// the server's `Date` header (0: consistent with agreeing clocks; `None`:
    /// not every shard measured one).
    pub clock_disagreement_s: Option<f64>,
    /// Whether the timeline (and `skew_s`) uses the server's clock because the
    /// shards' clocks disagree.
    pub server_clock: bool,
    /// Warnings (a large skew).
    pub notes: Vec<String>,
}

/// Reads and checks the shard files and merges their records; `keep_texts`
/// keeps the answers' text (for a detailed result's `generated_texts`).
pub fn merge(
    paths: &[PathBuf],
    options: ResultOptions,
    keep_texts: bool,
) -> Result<Merged, String> {
    if paths.is_empty() {
        return Err("give the result files of every shard of one run".into());
    }
    let mut records = Vec::new();
    let mut files = paths
        .iter()
        .map(|p| read(p, &mut records, keep_texts))
        .collect::<Result<Vec<_>, _>>()?;
    files.sort_by_key(|f| f.index);
    let count = files[0].count;
    for f in &files {
        if f.count != count {
            return Err(format!(
                "{} is shard {}/{} but {} is shard {}/{}: they are not shards of one run",
                files[0].path.display(),
                files[0].index,
                count,
                f.path.display(),
                f.index,
                f.count
            ));
        }
        if f.run != files[0].run {
            return Err(format!(
                "{} and {} were made with different flags (seed, dataset, rate, ...): not shards of one run",
                files[0].path.display(),
                f.path.display()
            ));
        }
    }
    for w in files.windows(2) {
        if w[0].index == w[1].index {
            return Err(format!(
                "{} and {} are both shard {}/{count}",
                w[0].path.display(),
                w[1].path.display(),
                w[0].index
            ));
        }
    }
    let have: Vec<u64> = files.iter().map(|f| f.index).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !have.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "shard {} missing (given: {})",
            missing.join(", "),
            files
                .iter()
                .map(|f| format!("{} = {}/{count}", f.path.display(), f.index))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // One timeline: each shard's clock shifted so that its start sits where its
    // wall clock says, the earliest start at 0 — or, when the shards' clocks
    // provably disagree (their offsets against the server's Date header do not
    // overlap), where the server's clock says.
    let mut notes = Vec::new();
    let disagreement = clock_disagreement(&files);
    let server_clock = disagreement.is_some_and(|d| d > 0.0);
    let unmeasured: Vec<String> = files
        .iter()
        .filter(|f| f.clock.is_none())
        .map(|f| f.path.display().to_string())
        .collect();
    if !unmeasured.is_empty() {
        notes.push(format!(
            "the shards' clocks were not compared: {} measured no offset (the server sent no Date header, as \
             llama.cpp's llama-server does not); the timeline trusts each machine's wall clock, so synchronize \
             them (NTP)",
            unmeasured.join(", ")
        ));
    }
    if let Some(d) = disagreement.filter(|_| server_clock) {
        let u = files
            .iter()
            .filter_map(|f| f.clock.map(|c| c.uncertainty_s))
            .fold(0.0, f64::max);
        notes.push(format!(
            "the shards' clocks disagree by at least {d:.3} s (each measured against the server's Date header): \
             the merged timeline places each shard by the server's clock instead (to ±{u:.3} s); synchronize \
             the machines' clocks (NTP)"
        ));
        for f in &mut files {
            f.t0_unix += f.clock.map_or(0.0, |c| c.offset_s);
        }
    }
    let first = files
        .iter()
        .map(|f| f.t0_unix)
        .fold(f64::INFINITY, f64::min);
    let last = files
        .iter()
        .map(|f| f.t0_unix)
        .fold(f64::NEG_INFINITY, f64::max);
    // Any bounded shard makes the merge bounded: the others' records are folded
    // into digests on the same timeline, counted against the same objectives.
    let slo = files
        .iter()
        .find_map(|f| f.digest.as_ref().map(|d| d.slo.clone()));
    if let Some(slo) = &slo {
        if let Some(f) = files
            .iter()
            .find(|f| f.digest.as_ref().is_some_and(|d| &d.slo != slo))
        {
            return Err(format!(
                "{} counted goodput against other objectives (--goodput) than {}: not shards of one run",
                f.path.display(),
                files
                    .iter()
                    .find(|f| f.digest.is_some())
                    .map_or(String::new(), |f| f.path.display().to_string())
            ));
        }
    }
    let mut merged_digest = slo.map(|s| Digest::new(0, s));
    let mut end_ns = 0u64;
    for f in &files {
        let shift = ((f.t0_unix - first) * 1e9).round() as u64;
        if let Some(all) = &mut merged_digest {
            let own = match &f.digest {
                Some(d) => d.clone(),
                None => {
                    let mut d = Digest::new(f.t0_ns, all.slo.clone());
                    for r in &records[f.range.clone()] {
                        d.add(r);
                    }
                    d
                }
            };
            all.merge(&own, shift as i64);
            end_ns = end_ns.max(f.end_ns.saturating_sub(f.t0_ns) + shift);
            continue;
        }
        let at = |t: u64| t.saturating_sub(f.t0_ns) + shift;
        end_ns = end_ns.max(at(f.end_ns));
        for r in &mut records[f.range.clone()] {
            r.scheduled_ns = at(r.scheduled_ns);
            r.dispatched_ns = at(r.dispatched_ns);
            r.sent_ns = at(r.sent_ns);
            r.end_ns = at(r.end_ns);
            r.first_answer_ns = r.first_answer_ns.map(at);
            r.chunks = r.chunks.map_times(at);
        }
    }
    if merged_digest.is_some() {
        records = Vec::new();
    }
    records.sort_by_key(|r| r.index);
    let skew_s = last - first;
    if skew_s > SKEW_WARN_S {
        notes.push(format!(
            "the shards started {skew_s:.3} s apart (more than {SKEW_WARN_S} s): they did not load the server \
             together; give them a common --start-at and synchronized clocks (NTP)"
        ));
    }
    let outcome = RunOutcome {
        records,
        t0_ns: 0,
        t0_unix: first,
        end_ns,
        notes: notes.clone(),
        texts_kept: keep_texts,
        digest: merged_digest.map(Box::new),
        ..Default::default()
    };
    Ok(Merged {
        result: RunResult {
            info: info_of(&files),
            outcome,
            options,
        },
        shards: count,
        skew_s,
        clock_disagreement_s: disagreement,
        server_clock,
        notes,
    })
}

/// The merged result as JSON, with the merge's own keys (`merged_shards`,
/// `shard_start_skew_s`).
pub fn to_json(m: &Merged, detailed: bool) -> Value {
    let mut j = m.result.to_json(&m.result.options, detailed, &[]);
    j.insert("merged_shards".into(), json!(m.shards));
    j.insert("shard_start_skew_s".into(), json!(m.skew_s));
    j.insert(
        "shard_clock_disagreement_s".into(),
        json!(m.clock_disagreement_s),
    );
    j.insert(
        "shard_timeline".into(),
        json!(if m.server_clock {
            "server_date"
        } else {
            "wall_clock"
        }),
    );
    Value::Object(j)
}
