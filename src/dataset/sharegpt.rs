//! vLLM's `sharegpt` dataset: the first two turns of each ShareGPT conversation as
//! prompt and reference completion, filtered as vLLM does, shuffled with the seed,
//! oversampled when fewer valid samples exist than asked for; or, with
//! `all_turns`, every human turn of each conversation with the turns before it as
//! chat history ([`generate_all_turns`]).

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
    /// Every human turn, not only the first: each request's messages are the
    /// conversation so far (the dataset's own answers as history) and its answer
    /// length that turn's reply; `n` then counts conversations, and the requests
    /// of one conversation follow each other (a new one starts where messages
    /// hold one message). A conversation ends at its first turn over max_total_len.
    pub all_turns: bool,
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
            all_turns: false,
        }
    }
}

/// Only the first two turns of a conversation are kept in memory.
struct FirstTwo(Vec<SpokenTurn>, usize);

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
                    match seq.next_element::<SpokenTurn>()? {
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

/// A turn with its speaker (read only by [`generate_all_turns`]).
#[derive(Deserialize)]
struct SpokenTurn {
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct FullEntry {
    #[serde(default)]
    conversations: Option<Vec<SpokenTurn>>,
}

/// Reads a ShareGPT file as a list of `E`; an error names the file and the line.
fn read_entries<E: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<E>, String> {
    let text = read_text(path)?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}: not a ShareGPT file ({e}); expected a JSON list of {{\"conversations\": [{{\"from\": ..., \"value\": ...}}, ...]}}",
            path.display(),
            e.line()
        )
    })
}

/// `all_turns`: `spec.n` conversations (shuffled with the seed, repeated when the
/// file has fewer), each as one request per human turn whose messages are the
/// turns before it plus that turn.
pub fn generate_all_turns(
    tok: &Tokenizer,
    path: &Path,
    spec: &ShareGptSpec,
) -> Result<Vec<Request>, String> {
    let entries: Vec<FullEntry> = read_entries(path)?;
    // (human, reply) pairs in order; a conversation stops at the first turn that
    // is not a human turn followed by a reply.
    let mut convs: Vec<Vec<(String, String)>> = entries
        .into_iter()
        .filter_map(|e| e.conversations)
        .map(|turns| {
            let mut pairs = Vec::new();
            let mut it = turns.into_iter();
            while let (Some(h), Some(g)) = (it.next(), it.next()) {
                let speaker =
                    |t: &SpokenTurn| t.from.clone().or(t.role.clone()).unwrap_or_default();
                let (hs, gs) = (speaker(&h), speaker(&g));
                if !matches!(hs.as_str(), "human" | "user")
                    || matches!(gs.as_str(), "human" | "user")
                {
                    break;
                }
                match (h.value.or(h.content), g.value.or(g.content)) {
                    (Some(a), Some(b)) => pairs.push((a, b)),
                    _ => break,
                }
            }
            pairs
        })
        .filter(|p| !p.is_empty())
        .collect();
    if convs.is_empty() {
        return Err(format!(
            "{}: no conversation has a human turn and a reply",
            path.display()
        ));
    }
    shuffle(&mut convs, spec.seed);
    let mut out = Vec::new();
    let mut used = 0;
    for (i, conv) in convs.iter().cycle().enumerate() {
        // After one pass: repeat only when oversampling, and only if some
        // conversation passed the filter (else no pass ever would).
        if used == spec.n || (i >= convs.len() && (!spec.oversample || used == 0)) {
            break;
        }
        let mut history: Vec<serde_json::Value> = Vec::new();
        let mut prompt_tokens = 0u32;
        let before = out.len();
        for (k, (human, reply)) in conv.iter().enumerate() {
            let pl = prompt_tokens + tok.count(human) as u32;
            let ol = spec.output_len.unwrap_or_else(|| tok.count(reply) as u32);
            if (k == 0 && (pl < spec.min_len || pl > spec.max_prompt_len))
                || pl + ol > spec.max_total_len
            {
                break;
            }
            history.push(serde_json::json!({"role": "user", "content": human}));
            out.push(Request {
                prompt: Prompt::Messages(serde_json::Value::Array(history.clone())),
                prompt_tokens: pl,
                max_tokens: Some(ol.max(1)),
                extra: None,
                timestamp: None,
            });
            history.push(serde_json::json!({"role": "assistant", "content": reply}));
            prompt_tokens = pl + tok.count(reply) as u32;
        }
        if out.len() > before {
            used += 1;
        }
    }
    if out.is_empty() {
        return Err(format!(
            "{}: no conversation passed the filter (first prompt {}..{} tokens, prompt + completion <= {})",
            path.display(),
            spec.min_len,
            spec.max_prompt_len,
            spec.max_total_len
        ));
    }
    Ok(out)
}

/// Loads `path` and samples `spec.n` requests.
pub fn generate(tok: &Tokenizer, path: &Path, spec: &ShareGptSpec) -> Result<Vec<Request>, String> {
    if spec.all_turns {
        return generate_all_turns(tok, path, spec);
    }
    let entries: Vec<Entry> = read_entries(path)?;
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

    /// all_turns: one request per human turn, each carrying the turns before it;
    /// a conversation stops at its first turn over max_total_len.
    #[test]
    fn all_turns_carry_their_history() {
        let words = |n: usize| vec!["moon"; n].join(" ");
        let body = serde_json::json!([
            {"conversations": [{"from": "human", "value": words(10)}, {"from": "gpt", "value": words(20)},
                               {"from": "human", "value": words(5)}, {"from": "gpt", "value": words(7)},
                               {"from": "human", "value": words(3000)}, {"from": "gpt", "value": words(2)}]},
        ]);
        let p = write("turns.json", &body.to_string());
        let spec = ShareGptSpec {
            n: 1,
            all_turns: true,
            ..Default::default()
        };
        let r = generate(&Tokenizer::words(), &p, &spec).unwrap();
        assert_eq!(r.len(), 2, "the third turn is over 2048 tokens");
        assert_eq!((r[0].prompt_tokens, r[0].max_tokens), (10, Some(20)));
        assert_eq!((r[1].prompt_tokens, r[1].max_tokens), (35, Some(7)));
        let Prompt::Messages(m) = &r[1].prompt else {
            panic!("messages")
        };
        let roles: Vec<&str> = m
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["role"].as_str().unwrap())
            .collect();
        assert_eq!(roles, ["user", "assistant", "user"]);
        let two = generate(&Tokenizer::words(), &p, &ShareGptSpec { n: 2, ..spec }).unwrap();
        assert_eq!(two.len(), 4, "oversampled: the conversation twice");
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
