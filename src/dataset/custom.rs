//! vLLM's `custom` dataset: a JSONL file, one request per line, with `"prompt"`
//! (text) or `"messages"` (a chat message list) and an optional `"output_tokens"`;
//! `"images"` (files or URLs) turns a text prompt into a multimodal chat message.
//! Lines are shuffled with the seed unless shuffling is off. Spec-Bench's
//! `question.jsonl` (vLLM's `spec_bench`: `"turns"`, `"category"`) reads the same way.

use std::path::Path;

use serde_json::Value;

use super::{Prompt, Request, at, par_map, read_text, shuffle};
use crate::tokenizer::Tokenizer;

/// Parameters of the custom dataset.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CustomSpec {
    /// Number of requests (`None`: every line).
    pub n: Option<usize>,
    /// Output tokens for every request (`--custom-output-len`); -1 (`None`) uses
    /// each line's `output_tokens`, which must then be there.
    #[serde(deserialize_with = "crate::dataset::minus_one_is_none")]
    #[schemars(with = "i64")]
    pub output_len: Option<u32>,
    /// Shuffle the lines (vLLM's default).
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Keep only lines whose "category" equals this (vLLM's spec_bench --spec-bench-category).
    pub category: Option<String>,
}

impl Default for CustomSpec {
    fn default() -> Self {
        CustomSpec {
            n: None,
            output_len: Some(256),
            shuffle: true,
            seed: 0,
            category: None,
        }
    }
}

fn messages_tokens(tok: &Tokenizer, m: &Value) -> usize {
    m.as_array()
        .map(|list| {
            list.iter()
                .map(|msg| match &msg["content"] {
                    Value::String(s) => tok.count(s),
                    Value::Array(parts) => parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .map(|s| tok.count(s))
                        .sum(),
                    _ => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}

/// A prompt with images attached: one user message whose content is the text
/// followed by an `image_url` part per image. Local files (relative to the JSONL
/// file) become data URLs; http(s) and data URLs are sent as they are.
fn with_images(
    prompt: Prompt,
    images: &Value,
    path: &Path,
    line_no: usize,
) -> Result<Prompt, String> {
    let bad = || {
        format!(
            "{}: field \"images\" must be a list of image files or URLs, like [\"cat.png\"]",
            at(path, line_no)
        )
    };
    let list = images.as_array().ok_or_else(bad)?;
    let Prompt::Text(text) = prompt else {
        return Err(format!(
            "{}: \"images\" goes with \"prompt\"; with \"messages\", put image_url parts in the messages",
            at(path, line_no)
        ));
    };
    let mut parts = vec![serde_json::json!({"type": "text", "text": text})];
    for img in list {
        let s = img.as_str().ok_or_else(bad)?;
        let url = if s.starts_with("http://") || s.starts_with("https://") || s.starts_with("data:")
        {
            s.to_string()
        } else {
            let dir = path.parent().unwrap_or(Path::new("."));
            super::image_data_url(&dir.join(s))
                .map_err(|e| format!("{}: {e}", at(path, line_no)))?
        };
        parts.push(serde_json::json!({"type": "image_url", "image_url": {"url": url}}));
    }
    Ok(Prompt::Messages(
        serde_json::json!([{"role": "user", "content": parts}]),
    ))
}

/// Loads `path` and builds the requests.
pub fn generate(tok: &Tokenizer, path: &Path, spec: &CustomSpec) -> Result<Vec<Request>, String> {
    let text = read_text(path)?;
    let mut items: Vec<(Prompt, Option<u32>)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("{}: not valid JSON: {e}", at(path, line_no)))?;
        let Value::Object(o) = v else {
            return Err(format!(
                "{}: each line must be a JSON object like {{\"prompt\": \"...\"}}",
                at(path, line_no)
            ));
        };
        if let Some(c) = &spec.category {
            if o.get("category").and_then(|v| v.as_str()) != Some(c.as_str()) {
                continue;
            }
        }
        // Spec-Bench's question.jsonl: the first of a line's "turns" is its prompt.
        let turn = o.get("turns").and_then(|t| t.get(0)).cloned();
        let prompt = match (o.get("prompt").or(turn.as_ref()), o.get("messages")) {
            (Some(Value::String(p)), None) => Prompt::Text(p.clone()),
            (None, Some(m @ Value::Array(_))) => Prompt::Messages(m.clone()),
            (Some(_), None) => {
                return Err(format!(
                    "{}: field \"prompt\" must be a string",
                    at(path, line_no)
                ));
            }
            (None, Some(_)) => {
                return Err(format!(
                    "{}: field \"messages\" must be a list of {{role, content}}",
                    at(path, line_no)
                ));
            }
            _ => {
                return Err(format!(
                    "{}: needs exactly one of \"prompt\" (text), \"messages\" (chat) or \"turns\" (Spec-Bench)",
                    at(path, line_no)
                ));
            }
        };
        let prompt = match o.get("images") {
            None | Some(Value::Null) => prompt,
            Some(v) => with_images(prompt, v, path, line_no)?,
        };
        let out = match o.get("output_tokens") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                format!(
                    "{}: field \"output_tokens\" must be a positive whole number, got {v}",
                    at(path, line_no)
                )
            })? as u32),
        };
        if spec.output_len.is_none() && out.is_none() {
            return Err(format!(
                "{}: no \"output_tokens\", and `output_len` is -1 (use each line's output_tokens); \
                 add it or give `output_len` N",
                at(path, line_no)
            ));
        }
        items.push((prompt, out));
    }
    if items.is_empty() {
        return Err(match &spec.category {
            Some(c) => format!("{}: no line has \"category\": \"{c}\"", path.display()),
            None => format!("{}: no requests (the file is empty)", path.display()),
        });
    }
    if spec.shuffle {
        shuffle(&mut items, spec.seed);
    }
    if let Some(n) = spec.n.filter(|n| *n > 0) {
        items.truncate(n);
    }
    Ok(par_map(&items, |_, (prompt, out)| {
        let n = match prompt {
            Prompt::Messages(m) => messages_tokens(tok, m),
            p => tok.count(&p.text().unwrap_or_default()),
        } as u32;
        Request {
            prompt: prompt.clone(),
            prompt_tokens: n,
            max_tokens: spec.output_len.or(*out),
            extra: None,
            timestamp: None,
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, body: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("mb-custom-{}-{name}", std::process::id()));
        std::fs::write(&p, body).unwrap();
        p
    }

    #[test]
    fn prompts_messages_and_output_tokens() {
        let p = write(
            "ok.jsonl",
            "{\"prompt\": \"the moon is bright\", \"output_tokens\": 7}\n\n{\"messages\": [{\"role\": \"user\", \"content\": \"hi there\"}], \"output_tokens\": 3}\n",
        );
        let tok = Tokenizer::words();
        let r = generate(
            &tok,
            &p,
            &CustomSpec {
                output_len: None,
                shuffle: false,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].prompt_tokens, r[0].max_tokens), (4, Some(7)));
        assert_eq!((r[1].prompt_tokens, r[1].max_tokens), (2, Some(3)));
        assert!(matches!(r[1].prompt, Prompt::Messages(_)));
        let fixed = generate(
            &tok,
            &p,
            &CustomSpec {
                n: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(fixed.len(), 1);
        assert_eq!(fixed[0].max_tokens, Some(256));
    }

    #[test]
    fn bad_lines_name_file_line_and_field() {
        let tok = Tokenizer::words();
        let spec = CustomSpec {
            output_len: None,
            ..Default::default()
        };
        let e = generate(
            &tok,
            &write(
                "a.jsonl",
                "{\"prompt\": \"x\", \"output_tokens\": 2}\n{\"prompt\": \"y\"\n",
            ),
            &spec,
        )
        .unwrap_err();
        assert!(e.contains("a.jsonl:2: not valid JSON"), "{e}");
        let e = generate(&tok, &write("b.jsonl", "{\"text\": \"x\"}\n"), &spec).unwrap_err();
        assert!(
            e.contains("b.jsonl:1: needs exactly one of \"prompt\""),
            "{e}"
        );
        let e = generate(&tok, &write("c.jsonl", "{\"prompt\": \"x\"}\n"), &spec).unwrap_err();
        assert!(e.contains("c.jsonl:1: no \"output_tokens\""), "{e}");
        let e = generate(
            &tok,
            &write(
                "d.jsonl",
                "{\"prompt\": \"x\", \"output_tokens\": \"many\"}\n",
            ),
            &spec,
        )
        .unwrap_err();
        assert!(
            e.contains("\"output_tokens\" must be a positive whole number"),
            "{e}"
        );
        let e = generate(&tok, &write("e.jsonl", "\n"), &spec).unwrap_err();
        assert!(e.contains("no requests"), "{e}");
    }
}
