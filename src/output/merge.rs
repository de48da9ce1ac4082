//! `moonbench merge`: the result files of a sharded run's shards as one result.
//! Each shard keeps its measured requests exactly (`shard_records`, nanoseconds
//! of its own clock) and its wall clock at the start (`shard.t0_unix`); the merge
//! puts every record on one timeline (the earliest shard's start as 0), and the
//! one summary function computes every statistic from all of them, as one
//! process would have. Missing, duplicate or mismatched shards are errors naming
//! the files; the skew between the shards' starts is reported.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use super::result::{ResultOptions, RunInfo, RunResult};
use crate::engine::run::RunOutcome;
use crate::metrics::RequestRecord;

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
    t0_ns: u64,
    end_ns: u64,
    records: Vec<RequestRecord>,
}

fn read(path: &Path) -> Result<ShardFile, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let json: Map<String, Value> = serde_json::from_str(&text)
        .map_err(|e| format!("{}: not a result file (invalid JSON: {e})", path.display()))?;
    let shard = json.get("shard").ok_or_else(|| {
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
    let sr = json.get("shard_records").ok_or_else(|| {
        format!(
            "{}: shard {index}/{count} kept no records (written by an older moonbench?); rerun the shard",
            path.display()
        )
    })?;
    let records: Vec<RequestRecord> = serde_json::from_value(sr["records"].clone())
        .map_err(|e| format!("{}: shard_records.records: {e}", path.display()))?;
    Ok(ShardFile {
        index,
        count,
        run: shard["run"].as_str().unwrap_or("").to_string(),
        t0_unix: shard["t0_unix"].as_f64().unwrap_or(0.0),
        t0_ns: sr["t0_ns"].as_u64().unwrap_or(0),
        end_ns: sr["end_ns"].as_u64().unwrap_or(0),
        records,
        path: path.to_path_buf(),
        json,
    })
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
    /// Warnings (a large skew).
    pub notes: Vec<String>,
}

/// Reads and checks the shard files and merges their records.
pub fn merge(paths: &[PathBuf], options: ResultOptions) -> Result<Merged, String> {
    if paths.is_empty() {
        return Err("give the result files of every shard of one run".into());
    }
    let mut files = paths
        .iter()
        .map(|p| read(p))
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
    // wall clock says, the earliest start at 0.
    let first = files
        .iter()
        .map(|f| f.t0_unix)
        .fold(f64::INFINITY, f64::min);
    let last = files
        .iter()
        .map(|f| f.t0_unix)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut records = Vec::new();
    let mut end_ns = 0u64;
    for f in &mut files {
        let shift = ((f.t0_unix - first) * 1e9).round() as u64;
        let at = |t: u64| t.saturating_sub(f.t0_ns) + shift;
        end_ns = end_ns.max(at(f.end_ns));
        for mut r in std::mem::take(&mut f.records) {
            r.scheduled_ns = at(r.scheduled_ns);
            r.dispatched_ns = at(r.dispatched_ns);
            r.sent_ns = at(r.sent_ns);
            r.end_ns = at(r.end_ns);
            r.first_answer_ns = r.first_answer_ns.map(at);
            for c in &mut r.chunk_ns {
                *c = at(*c);
            }
            records.push(r);
        }
    }
    records.sort_by_key(|r| r.index);
    let skew_s = last - first;
    let mut notes = Vec::new();
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
        notes,
    })
}

/// The merged result as JSON, with the merge's own keys (`merged_shards`,
/// `shard_start_skew_s`).
pub fn to_json(m: &Merged, detailed: bool) -> Value {
    let mut j = m.result.to_json(&m.result.options, detailed, &[]);
    j.insert("merged_shards".into(), json!(m.shards));
    j.insert("shard_start_skew_s".into(), json!(m.skew_s));
    Value::Object(j)
}
