//! vLLM's `sharegpt` dataset: the first two turns of each ShareGPT conversation as
//! prompt and reference completion, filtered as vLLM does, shuffled with the seed,
//! oversampled when fewer valid samples exist than asked for.

use std::fmt;
use std::path::Path;

use serde::Deserialize;
use serde::de::{IgnoredAny, SeqAccess, Visitor};

use super::{Prompt, Request, oversample, par_map, read_text, shuffle};
use crate::tokenizer::Tokenizer;

/// Parameters of the ShareGPT dataset.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ShareGptSpec {
    /// Number of requests.
    pub n: usize,
    /// Fixed output length (`--sharegpt-output-len`); else the completion's length.
    pub output_len: Option<u32>,
    /// Seed of the shuffle and of oversampling.
    pub seed: u64,
    /// Fill up to `n` by repeating valid samples (vLLM's default).
    pub oversample: bool,
    /// Shortest prompt and completion kept (vLLM: 4).
    pub min_len: u32,
    /// Longest prompt kept (vLLM: 1024).
    pub max_prompt_len: u32,
    /// Longest prompt + completion kept (vLLM: 2048).
    pub max_total_len: u32,
}

impl Default for ShareGptSpec {
    fn default() -> Self {
        ShareGptSpec {
            n: 1000,
            output_len: None,
            seed: 0,
            oversample: true,
            min_len: 4,
            max_prompt_len: 1024,
            max_total_len: 2048,
        }
    }
}

#[derive(Deserialize)]
struct Turn {
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

/// Only the first two turns of a conversation are kept in memory.
struct FirstTwo(Vec<Turn>, usize);

impl<'de> Deserialize<'de> for FirstTwo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FirstTwo;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of turns {\"from\": ..., \"value\": ...}")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstTwo, A::Error> {
                let mut turns = Vec::with_capacity(2);
                let mut total = 0;
                while turns.len() < 2 {
                    match seq.next_element::<Turn>()? {
                        Some(t) => {
                            turns.push(t);
                            total += 1;
                        }
                        None => return Ok(FirstTwo(turns, total)),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {
                    total += 1;
                }
                Ok(FirstTwo(turns, total))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    conversations: Option<FirstTwo>,
}

/// Loads `path` and samples `spec.n` requests.
pub fn generate(tok: &Tokenizer, path: &Path, spec: &ShareGptSpec) -> Result<Vec<Request>, String> {
    let text = read_text(path)?;
    let entries: Vec<Entry> = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}: not a ShareGPT file ({e}); expected a JSON list of {{\"conversations\": [{{\"from\": ..., \"value\": ...}}, ...]}}",
            path.display(),
            e.line()
        )
    })?;
    drop(text);
    let mut pairs: Vec<(String, String)> = entries
        .into_iter()
        .filter_map(|e| e.conversations)
        .filter(|c| c.1 >= 2 && c.0.len() >= 2)
        .filter_map(|c| {
            let mut it = c.0.into_iter();
            let p = it.next()?;
            let q = it.next()?;
            Some((p.value.or(p.content)?, q.value.or(q.content)?))
        })
        .collect();
    if pairs.is_empty() {
        return Err(format!(
            "{}: no conversation has two turns with text",
            path.display()
        ));
    }
    shuffle(&mut pairs, spec.seed);
    let mut out = Vec::with_capacity(spec.n);
    // Count tokens in batches, stopping as soon as `n` samples are valid (as vLLM).
    for batch in pairs.chunks(1024) {
        let counted = par_map(batch, |_, (p, c)| {
            let pl = tok.count(p) as u32;
            let ol = spec.output_len.unwrap_or_else(|| tok.count(c) as u32);
            (pl, ol)
        });
        for ((p, _), (pl, ol)) in batch.iter().zip(counted) {
            let fixed = spec.output_len.is_some();
            let valid = pl >= spec.min_len
                && (fixed || ol >= spec.min_len)
                && pl <= spec.max_prompt_len
                && pl + ol <= spec.max_total_len;
            if valid && out.len() < spec.n {
                out.push(Request {
                    prompt: Prompt::Text(p.clone()),
                    prompt_tokens: pl,
                    max_tokens: Some(ol),
                    extra: None,
                    timestamp: None,
                });
            }
        }
        if out.len() >= spec.n {
            break;
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{}: no conversation passed the filter (prompt {}..{} tokens, prompt + completion <= {})",
            path.display(),
            spec.min_len,
            spec.max_prompt_len,
            spec.max_total_len
        ));
    }
    if spec.oversample {
        let added = oversample(&mut out, spec.n, spec.seed);
        if added > 0 {
            eprintln!(
                "note: only {} ShareGPT samples are valid; oversampled {added} more to reach {}",
                out.len() - added,
                spec.n
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("mb-sharegpt-{}-{name}", std::process::id()));
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn filters_like_vllm_and_oversamples() {
        let words = |n: usize| vec!["moon"; n].join(" ");
        let body = serde_json::json!([
            {"id": "a", "conversations": [{"from": "human", "value": words(10)}, {"from": "gpt", "value": words(20)}, {"from": "human", "value": "x"}]},
            {"id": "too-short", "conversations": [{"from": "human", "value": words(3)}, {"from": "gpt", "value": words(20)}]},
            {"id": "one-turn", "conversations": [{"from": "human", "value": words(10)}]},
            {"id": "too-long", "conversations": [{"from": "human", "value": words(1500)}, {"from": "gpt", "value": words(5)}]},
            {"id": "b", "conversations": [{"from": "human", "value": words(8)}, {"from": "gpt", "value": words(6)}]},
            {"id": "no-convs"}
        ]);
        let p = write("ok.json", &body.to_string());
        let tok = Tokenizer::words();
        let r = generate(
            &tok,
            &p,
            &ShareGptSpec {
                n: 5,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.len(), 5, "2 valid samples oversampled to 5");
        let mut lens: Vec<(u32, Option<u32>)> =
            r.iter().map(|x| (x.prompt_tokens, x.max_tokens)).collect();
        lens.sort();
        lens.dedup();
        assert_eq!(lens, vec![(8, Some(6)), (10, Some(20))]);
        let fixed = generate(
            &tok,
            &p,
            &ShareGptSpec {
                n: 2,
                output_len: Some(3),
                oversample: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(fixed.iter().all(|x| x.max_tokens == Some(3)));
    }

    #[test]
    fn bad_files_name_the_line() {
        let p = write(
            "bad.json",
            "[\n {\"conversations\": [\n  {\"from\": \"human\", \"value\": 5}]}\n]",
        );
        let e = generate(&Tokenizer::words(), &p, &ShareGptSpec::default()).unwrap_err();
        assert!(e.contains("bad.json:3:"), "{e}");
        let p = write("empty.json", "[]");
        assert!(
            generate(&Tokenizer::words(), &p, &ShareGptSpec::default())
                .unwrap_err()
                .contains("no conversation")
        );
        let e = generate(
            &Tokenizer::words(),
            Path::new("/nonexistent/sg.json"),
            &ShareGptSpec::default(),
        )
        .unwrap_err();
        assert!(e.contains("cannot read /nonexistent/sg.json"), "{e}");
    }
}
