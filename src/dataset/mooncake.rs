//! Mooncake trace replay (vLLM's `timed_trace` format): a JSONL trace with
//! `timestamp` (Mooncake: ms), `input_length`, `output_length` and `hash_ids` (one
//! id per block of prompt tokens, 512 in Mooncake's traces; equal ids mean the same
//! prefix block). The field names and the timestamp unit are options, as vLLM's
//! `--timed-trace-label-*` and `--timed-trace-sec-multiplier`.
//!
//! Every distinct block is built once — `block_size` word-pool tokens drawn from a
//! generator seeded by its hash id — and prompts share the blocks by reference, so
//! requests with equal hash ids carry byte-identical prefixes (prefix caching
//! behaves as in production), lengths are exact without re-encoding, and memory
//! stays near the size of the distinct text. Each request is scheduled at its
//! timestamp times `time_scale`.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::random::spot_check;
use super::{Piece, Prompt, Request, at, par_map, read_text};
use crate::tokenizer::Tokenizer;
use crate::tokenizer::pool::WordPool;

/// Parameters of a trace replay.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MooncakeSpec {
    /// Replay only the first `n` requests (`None`: all).
    pub n: Option<usize>,
    /// Tokens per hash block (Mooncake: 512).
    pub block_size: u32,
    /// Multiplies every timestamp (0.5 replays twice as fast).
    pub time_scale: f64,
    /// Seed of the block contents.
    pub seed: u64,
    /// Send token ids instead of text.
    pub token_ids: bool,
    /// Seconds per unit of the trace's timestamps (Mooncake: 0.001, milliseconds; vLLM's timed_trace: --timed-trace-sec-multiplier, default 1).
    pub timestamp_unit: f64,
    /// The field holding each line's timestamp (vLLM's --timed-trace-label-timestamp).
    pub timestamp_key: String,
    /// The field holding each line's prompt length (--timed-trace-label-input-length).
    pub input_length_key: String,
    /// The field holding each line's output length (--timed-trace-label-output-length).
    pub output_length_key: String,
    /// The field holding each line's block hash ids (--timed-trace-label-hash-ids).
    pub hash_ids_key: String,
}

impl Default for MooncakeSpec {
    fn default() -> Self {
        MooncakeSpec {
            n: None,
            block_size: 512,
            time_scale: 1.0,
            seed: 0,
            token_ids: false,
            timestamp_unit: 0.001,
            timestamp_key: "timestamp".into(),
            input_length_key: "input_length".into(),
            output_length_key: "output_length".into(),
            hash_ids_key: "hash_ids".into(),
        }
    }
}

/// One trace line, read through the spec's field names.
struct Line {
    timestamp: f64,
    input_length: u32,
    output_length: u32,
    hash_ids: Vec<u64>,
}

impl Line {
    fn read(raw: &str, spec: &MooncakeSpec) -> Result<Line, String> {
        let v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(raw).map_err(|e| e.to_string())?;
        let field = |k: &str| {
            v.get(k).ok_or_else(|| {
                let mut have: Vec<&str> = v.keys().map(|s| s.as_str()).collect();
                have.sort_unstable();
                format!("no field \"{k}\" (the line has: {})", have.join(", "))
            })
        };
        let count = |k: &str| -> Result<u32, String> {
            field(k)?
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| format!("\"{k}\" must be a whole number of tokens"))
        };
        let timestamp = field(&spec.timestamp_key)?
            .as_f64()
            .ok_or_else(|| format!("\"{}\" must be a number", spec.timestamp_key))?;
        let input_length = count(&spec.input_length_key)?;
        let output_length = count(&spec.output_length_key)?;
        let hash_ids = field(&spec.hash_ids_key)?
            .as_array()
            .and_then(|a| a.iter().map(|h| h.as_u64()).collect::<Option<Vec<u64>>>())
            .ok_or_else(|| format!("\"{}\" must be a list of whole numbers", spec.hash_ids_key))?;
        Ok(Line {
            timestamp,
            input_length,
            output_length,
            hash_ids,
        })
    }
}

fn block_tokens(
    pool: &WordPool,
    seed: u64,
    hash: u64,
    len: u32,
) -> impl Iterator<Item = u32> + Clone {
    let p = pool.len() as u32;
    let rng = ChaCha8Rng::seed_from_u64(seed ^ hash.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    (0..len).scan(rng, move |r, _| Some(r.random_range(0..p)))
}

/// Loads a trace and builds its requests (with timestamps).
pub fn generate(tok: &Tokenizer, path: &Path, spec: &MooncakeSpec) -> Result<Vec<Request>, String> {
    if spec.block_size == 0 || !(spec.time_scale >= 0.0 && spec.time_scale.is_finite()) {
        return Err("`block_size` must be > 0 and `time_scale` a number >= 0".into());
    }
    if !(spec.timestamp_unit > 0.0 && spec.timestamp_unit.is_finite()) {
        return Err(
            "`timestamp_unit` must be a number of seconds > 0 (0.001 for milliseconds)".into(),
        );
    }
    let text = read_text(path)?;
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        if spec.n.is_some_and(|n| lines.len() >= n) {
            break;
        }
        let l = Line::read(raw, spec).map_err(|e| {
            format!(
                "{}: {e}; each line needs {}, {}, {} and {}",
                at(path, i + 1),
                spec.timestamp_key,
                spec.input_length_key,
                spec.output_length_key,
                spec.hash_ids_key
            )
        })?;
        let need = l.input_length.div_ceil(spec.block_size) as usize;
        if l.hash_ids.len() < need {
            return Err(format!(
                "{}: input_length {} needs {need} hash_ids of {} tokens, the line has {}",
                at(path, i + 1),
                l.input_length,
                spec.block_size,
                l.hash_ids.len()
            ));
        }
        if l.input_length == 0 {
            return Err(format!(
                "{}: input_length must be at least 1",
                at(path, i + 1)
            ));
        }
        lines.push(l);
    }
    if lines.is_empty() {
        return Err(format!("{}: the trace has no requests", path.display()));
    }
    let pool = tok
        .word_pool()
        .map_err(|e| format!("tokenizer '{}' cannot build exact prompts: {e}", tok.name()))?;
    // Every distinct full block, built once.
    let mut distinct: Vec<u64> = lines
        .iter()
        .flat_map(|l| {
            let full = (l.input_length / spec.block_size) as usize;
            l.hash_ids[..full].iter().copied()
        })
        .collect();
    distinct.sort_unstable();
    distinct.dedup();
    let texts = par_map(&distinct, |_, &h| {
        let mut s = String::with_capacity(spec.block_size as usize * 8);
        pool.push_text(block_tokens(&pool, spec.seed, h, spec.block_size), &mut s);
        Arc::<str>::from(s)
    });
    let blocks: HashMap<u64, Arc<str>> = distinct.into_iter().zip(texts).collect();
    let t0 = lines[0].timestamp;
    let reqs = par_map(&lines, |_, l| {
        let full = (l.input_length / spec.block_size) as usize;
        let rest = l.input_length % spec.block_size;
        let prompt = if spec.token_ids {
            let mut ids = Vec::with_capacity(l.input_length as usize);
            for (k, h) in l
                .hash_ids
                .iter()
                .enumerate()
                .take(full + (rest > 0) as usize)
            {
                let len = if k < full { spec.block_size } else { rest };
                ids.extend(block_tokens(&pool, spec.seed, *h, len).map(|i| pool.ids[i as usize]));
            }
            Prompt::TokenIds(ids)
        } else {
            let mut parts: Vec<Piece> = l.hash_ids[..full]
                .iter()
                .map(|h| Piece::whole(blocks[h].clone()))
                .collect();
            if rest > 0 {
                // The last, partial block: the first `rest` tokens of its block.
                let mut s = String::new();
                pool.push_text(
                    block_tokens(&pool, spec.seed, l.hash_ids[full], rest),
                    &mut s,
                );
                parts.push(Piece::whole(Arc::from(s)));
            }
            Prompt::Parts(parts)
        };
        Request {
            prompt,
            prompt_tokens: l.input_length,
            max_tokens: Some(l.output_length.max(1)),
            extra: None,
            timestamp: Some((l.timestamp - t0) * spec.timestamp_unit * spec.time_scale),
        }
    });
    spot_check(tok, &reqs[..reqs.len().min(2)])?;
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("mb-mooncake-{}-{name}", std::process::id()));
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn equal_hash_ids_give_equal_text() {
        let body = "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 3, \"hash_ids\": [1, 2, 3]}\n\
                    {\"timestamp\": 1500, \"input_length\": 9, \"output_length\": 1, \"hash_ids\": [1, 2, 7]}\n";
        let p = write("t.jsonl", body);
        let tok = Tokenizer::words();
        let spec = MooncakeSpec {
            block_size: 4,
            time_scale: 0.5,
            ..Default::default()
        };
        let r = generate(&tok, &p, &spec).unwrap();
        let a = r[0].prompt.text().unwrap().into_owned();
        let b = r[1].prompt.text().unwrap().into_owned();
        assert_eq!(tok.count(&a), 10);
        assert_eq!(tok.count(&b), 9);
        let wa: Vec<&str> = a.split_whitespace().collect();
        let wb: Vec<&str> = b.split_whitespace().collect();
        assert_eq!(wa[..8], wb[..8], "blocks 1 and 2 are shared");
        assert_eq!(r[1].timestamp, Some(0.75));
        assert_eq!(r[1].max_tokens, Some(1));
        let ids = generate(
            &tok,
            &p,
            &MooncakeSpec {
                token_ids: true,
                ..spec
            },
        )
        .unwrap();
        let Prompt::TokenIds(t) = &ids[0].prompt else {
            panic!()
        };
        assert_eq!(tok.decode(t), a.trim_start());
    }

    /// vLLM's timed_trace options: other field names, timestamps in seconds, small blocks.
    #[test]
    fn field_names_and_unit_are_options() {
        let tok = Tokenizer::words();
        let p = write(
            "labels.jsonl",
            "{\"t\": 10, \"in\": 20, \"out\": 3, \"h\": [1, 2]}\n{\"t\": 12.5, \"in\": 16, \"out\": 5, \"h\": [1]}\n",
        );
        let spec = MooncakeSpec {
            block_size: 16,
            timestamp_unit: 1.0,
            timestamp_key: "t".into(),
            input_length_key: "in".into(),
            output_length_key: "out".into(),
            hash_ids_key: "h".into(),
            ..Default::default()
        };
        let r = generate(&tok, &p, &spec).unwrap();
        assert_eq!(
            r.iter().map(|x| x.timestamp).collect::<Vec<_>>(),
            [Some(0.0), Some(2.5)]
        );
        assert_eq!((r[0].prompt_tokens, r[1].max_tokens), (20, Some(5)));
        assert!(
            r[0].prompt
                .text()
                .unwrap()
                .starts_with(r[1].prompt.text().unwrap().as_ref())
        );
        let e = generate(&tok, &p, &MooncakeSpec::default()).unwrap_err();
        assert!(
            e.contains("labels.jsonl:1: no field \"timestamp\" (the line has: h, in, out, t)"),
            "{e}"
        );
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let tok = Tokenizer::words();
        let p = write(
            "bad.jsonl",
            "{\"timestamp\": 0, \"input_length\": 10, \"output_length\": 3, \"hash_ids\": [1, 2]}\n{\"timestamp\": 1}\n",
        );
        let e = generate(&tok, &p, &MooncakeSpec::default()).unwrap_err();
        assert!(
            e.contains("bad.jsonl:2: no field \"input_length\" (the line has: timestamp)"),
            "{e}"
        );
        let p = write(
            "short.jsonl",
            "{\"timestamp\": 0, \"input_length\": 2000, \"output_length\": 3, \"hash_ids\": [1, 2]}\n",
        );
        let e = generate(&tok, &p, &MooncakeSpec::default()).unwrap_err();
        assert!(
            e.contains("short.jsonl:1: input_length 2000 needs 4 hash_ids"),
            "{e}"
        );
    }
}
