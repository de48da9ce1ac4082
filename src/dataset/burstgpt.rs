//! vLLM's `burstgpt` dataset: request and response token counts from the BurstGPT
//! trace CSV (columns `Timestamp, Model, Request tokens, Response tokens, ...`),
//! filtered as vLLM (`Model == "GPT-4"`, response tokens > 0). Without timestamps,
//! `n` rows are sampled (seeded; with replacement only if `n` exceeds the rows);
//! with `use_timestamps`, the first `n` rows in time order are replayed at their
//! timestamps. Prompts are exact-length word-pool text (vLLM decodes ids without
//! re-encoding, so its lengths drift).

use std::path::Path;

use rand::seq::index::sample;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::random::{pool_prompt, spot_check};
use super::{Request, at, read_text};
use crate::tokenizer::Tokenizer;

/// Parameters of the BurstGPT dataset.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct BurstGptSpec {
    /// Number of requests.
    pub n: usize,
    /// Seed of the sampling.
    pub seed: u64,
    /// Keep rows whose `Model` equals this (vLLM: `GPT-4`); empty keeps all.
    pub model: String,
    /// Replay the first `n` rows at their timestamps instead of sampling.
    pub use_timestamps: bool,
    /// Send token ids instead of text.
    pub token_ids: bool,
}

impl Default for BurstGptSpec {
    fn default() -> Self {
        BurstGptSpec {
            n: 1000,
            seed: 0,
            model: "GPT-4".into(),
            use_timestamps: false,
            token_ids: false,
        }
    }
}

struct Row {
    ts: f64,
    req: u32,
    resp: u32,
}

fn parse(path: &Path, text: &str, model: &str) -> Result<Vec<Row>, String> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            format!("{}: not valid CSV: {e}", at(path, line))
        })?;
        let line = rec.position().map_or(0, |p| p.line() as usize);
        let col = |i: usize, name: &str| -> Result<&str, String> {
            rec.get(i).ok_or_else(|| format!("{}: missing column {} ({name}); BurstGPT rows are Timestamp,Model,Request tokens,Response tokens,...", at(path, line), i + 1))
        };
        let num = |i: usize, name: &str| -> Result<f64, String> {
            let v = col(i, name)?;
            v.trim()
                .parse::<f64>()
                .map_err(|_| format!("{}: column '{name}' is '{v}', not a number", at(path, line)))
        };
        if !model.is_empty() && col(1, "Model")?.trim() != model {
            continue;
        }
        let resp = num(3, "Response tokens")?;
        if resp <= 0.0 {
            continue;
        }
        rows.push(Row {
            ts: num(0, "Timestamp")?,
            req: num(2, "Request tokens")? as u32,
            resp: resp as u32,
        });
    }
    Ok(rows)
}

/// Loads `path` and builds `spec.n` requests.
pub fn generate(tok: &Tokenizer, path: &Path, spec: &BurstGptSpec) -> Result<Vec<Request>, String> {
    let text = read_text(path)?;
    let mut rows = parse(path, &text, &spec.model)?;
    if rows.is_empty() {
        return Err(format!(
            "{}: no rows left after filtering (Model == {:?}, Response tokens > 0)",
            path.display(),
            spec.model
        ));
    }
    let pool = tok
        .word_pool()
        .map_err(|e| format!("tokenizer '{}' cannot build exact prompts: {e}", tok.name()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let chosen: Vec<usize> = if spec.use_timestamps {
        rows.sort_by(|a, b| a.ts.total_cmp(&b.ts));
        (0..spec.n.min(rows.len())).collect()
    } else if spec.n <= rows.len() {
        sample(&mut rng, rows.len(), spec.n).into_vec()
    } else {
        (0..spec.n)
            .map(|_| rng.random_range(0..rows.len()))
            .collect()
    };
    let t0 = rows[chosen[0]].ts;
    let p = pool.len() as u64;
    let reqs: Vec<Request> = chosen
        .iter()
        .enumerate()
        .map(|(i, &k)| {
            let r = &rows[k];
            let off = rng.random_range(0..p);
            let seq = (0..r.req.max(1) as u64).map(move |j| ((off + i as u64 + j) % p) as u32);
            let (prompt, n) = pool_prompt(&pool, seq, spec.token_ids);
            Request {
                prompt,
                prompt_tokens: n,
                max_tokens: Some(r.resp),
                extra: None,
                timestamp: spec.use_timestamps.then_some(r.ts - t0),
            }
        })
        .collect();
    spot_check(tok, &reqs)?;
    Ok(reqs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("mb-burst-{}-{name}", std::process::id()));
        std::fs::write(&p, body).unwrap();
        p
    }

    const CSV: &str = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n\
        5,ChatGPT,100,20,120,Conversation log\n\
        7,GPT-4,30,10,40,Conversation log\n\
        9,GPT-4,50,0,50,Conversation log\n\
        12,GPT-4,20,5,25,API log\n\
        20,GPT-4,40,8,48,API log\n";

    #[test]
    fn filters_samples_and_replays() {
        let p = write("ok.csv", CSV);
        let tok = Tokenizer::words();
        let r = generate(
            &tok,
            &p,
            &BurstGptSpec {
                n: 3,
                ..Default::default()
            },
        )
        .unwrap();
        let mut pairs: Vec<(u32, Option<u32>)> =
            r.iter().map(|x| (x.prompt_tokens, x.max_tokens)).collect();
        pairs.sort();
        assert_eq!(
            pairs,
            vec![(20, Some(5)), (30, Some(10)), (40, Some(8))],
            "GPT-4 rows with a response"
        );
        let t = generate(
            &tok,
            &p,
            &BurstGptSpec {
                n: 3,
                use_timestamps: true,
                ..Default::default()
            },
        )
        .unwrap();
        let ts: Vec<f64> = t.iter().map(|x| x.timestamp.unwrap()).collect();
        assert_eq!(ts, vec![0.0, 5.0, 13.0]);
        let many = generate(
            &tok,
            &p,
            &BurstGptSpec {
                n: 10,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            many.len(),
            10,
            "with replacement when more rows are asked for"
        );
    }

    #[test]
    fn bad_rows_name_file_line_and_column() {
        let p = write(
            "bad.csv",
            "Timestamp,Model,Request tokens,Response tokens\n1,GPT-4,12,3\n2,GPT-4,abc,3\n",
        );
        let e = generate(&Tokenizer::words(), &p, &BurstGptSpec::default()).unwrap_err();
        assert!(
            e.contains("bad.csv:3: column 'Request tokens' is 'abc'"),
            "{e}"
        );
        let p = write(
            "none.csv",
            "Timestamp,Model,Request tokens,Response tokens\n1,Other,12,3\n",
        );
        let e = generate(&Tokenizer::words(), &p, &BurstGptSpec::default()).unwrap_err();
        assert!(e.contains("no rows left after filtering"), "{e}");
    }
}
