//! vLLM's `custom` dataset: a JSONL file, one request per line, with `"prompt"`
//! (text) or `"messages"` (a chat message list) and an optional `"output_tokens"`;
//! `"images"` (files or URLs) turns a text prompt into a multimodal chat message.
//! Lines are shuffled with the seed unless shuffling is off. Spec-Bench's
//! `question.jsonl` (vLLM's `spec_bench`: `"turns"`, `"category"`) reads the same way.
//!
//! Also vLLM's `custom_image` ([`generate_images`]): lines of `"prompt"` with
//! `"image_files"`, or of interleaved `"content"` parts (`text`, `image`,
//! `image_url`), each sent as one chat message; images go as `file://` URLs for the
//! server to read, or, with `client_side_data`, as data URLs made here.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::{Prompt, Request, at, jsonl_objects, par_map, shuffle_take};
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
    let mut items: Vec<(Prompt, Option<u32>)> = Vec::new();
    for (line_no, o) in jsonl_objects(path, "{\"prompt\": \"...\"}")? {
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
    shuffle_take(&mut items, spec.shuffle, spec.seed, spec.n);
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

/// Parameters of vLLM's `custom_image` dataset.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CustomImageSpec {
    /// Number of requests (`None`: every line).
    pub n: Option<usize>,
    /// Output tokens for every request (`--custom-output-len`); -1 leaves it to
    /// the server.
    #[serde(deserialize_with = "crate::dataset::minus_one_is_none")]
    #[schemars(with = "i64")]
    pub output_len: Option<u32>,
    /// Shuffle the lines (vLLM's default).
    pub shuffle: bool,
    /// Seed of the shuffle.
    pub seed: u64,
    /// Read every local and http(s) image here and send it as a data URL (vLLM's
    /// --custom-ensure-client-side-data); by default local files go as file:// URLs
    /// that the server reads from its own disk, and http(s) URLs as they are.
    pub client_side_data: bool,
}

impl Default for CustomImageSpec {
    fn default() -> Self {
        CustomImageSpec {
            n: None,
            output_len: Some(256),
            shuffle: true,
            seed: 0,
            client_side_data: false,
        }
    }
}

/// The most bytes one image may have when it is fetched or read for a data URL.
const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// Downloads an image for a data URL: at most 10 s to connect, 60 s in all.
fn fetch_image(url: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(std::time::Duration::from_secs(10))
        .timeout(std::time::Duration::from_secs(60))
        .build();
    let resp = agent
        .get(url)
        .call()
        .map_err(|e| format!("cannot fetch image {url}: {e}"))?;
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(MAX_IMAGE_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot fetch image {url}: {e}"))?;
    Ok(bytes)
}

/// `bytes` as a data URL, or an error naming `what` when they are not an image.
fn data_url(bytes: &[u8], what: &str) -> Result<String, String> {
    use base64::Engine;
    let mime = super::image_mime(bytes).ok_or_else(|| {
        format!("invalid image {what}: its bytes are not a PNG, JPEG, GIF, WebP or BMP image")
    })?;
    Ok(format!(
        "data:image/{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// One image reference of a `custom_image` line as the URL sent (vLLM's
/// `process_image`): a `data:image/` URL as it is; http(s) and `file://` URLs as
/// they are; a path (relative ones from the JSONL file's folder) as a `file://`
/// URL. With `client` every image but a data URL is read here and sent as one.
fn image_ref(s: &str, dir: &Path, client: bool) -> Result<String, String> {
    if s.starts_with("data:image/") {
        return Ok(s.to_string());
    }
    if s.starts_with("data:") {
        return Err(format!(
            "invalid image URL {}...: a data URL must be data:image/...",
            &s[..s.len().min(24)]
        ));
    }
    if s.starts_with("http://") || s.starts_with("https://") {
        return if client {
            data_url(&fetch_image(s)?, s)
        } else {
            Ok(s.to_string())
        };
    }
    let path: PathBuf = match s.strip_prefix("file://") {
        Some(rest) => PathBuf::from(super::percent_decode(rest)),
        None if Path::new(s).is_absolute() => PathBuf::from(s),
        // file:// URLs need an absolute path: relative ones are from the JSONL file.
        None => std::path::absolute(dir.join(s)).unwrap_or_else(|_| dir.join(s)),
    };
    if !client {
        return Ok(if s.starts_with("file://") {
            s.to_string()
        } else {
            format!("file://{}", path.display())
        });
    }
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(
            std::fs::File::open(&path)
                .map_err(|e| format!("cannot read image {}: {e}", path.display()))?,
            MAX_IMAGE_BYTES,
        ),
        &mut bytes,
    )
    .map_err(|e| format!("cannot read image {}: {e}", path.display()))?;
    data_url(&bytes, &path.display().to_string())
}

/// The chat content of one `custom_image` line and its text, or what is wrong
/// with it.
fn image_line(
    o: &serde_json::Map<String, Value>,
    dir: &Path,
    client: bool,
) -> Result<(Vec<Value>, String), String> {
    match (o.get("prompt"), o.get("content")) {
        (Some(Value::String(text)), None) => {
            let files = match o.get("image_files") {
                Some(Value::Array(f)) if !f.is_empty() => f,
                Some(_) => {
                    return Err(
                        "field \"image_files\" must be a non-empty list of image files or URLs"
                            .into(),
                    );
                }
                None => {
                    return Err("a \"prompt\" line needs \"image_files\": [\"chart.png\", ...] \
                         (or write the line as \"content\" parts)"
                        .into());
                }
            };
            let mut parts = vec![json!({"type": "text", "text": text})];
            for f in files {
                let f = f.as_str().ok_or(
                    "field \"image_files\" must list file paths or URLs as strings",
                )?;
                parts.push(json!({"type": "image_url", "image_url": {"url": image_ref(f, dir, client)?}}));
            }
            Ok((parts, text.clone()))
        }
        (None, Some(Value::Array(list))) => {
            let mut parts = Vec::with_capacity(list.len());
            let mut text = String::new();
            for (k, part) in list.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                let bad = |what: &str| format!("part {} of \"content\": {what}", k + 1);
                match kind {
                    "text" => {
                        let t = part["text"].as_str().ok_or_else(|| bad("\"text\" must be a string"))?;
                        text.push_str(t);
                        parts.push(json!({"type": "text", "text": t}));
                    }
                    "image" => {
                        let r = part["image"]
                            .as_str()
                            .ok_or_else(|| bad("\"image\" must be a file path or URL"))?;
                        let url = image_ref(r, dir, client).map_err(|e| bad(&e))?;
                        parts.push(json!({"type": "image_url", "image_url": {"url": url}}));
                    }
                    "image_url" => {
                        let mut iu = match &part["image_url"] {
                            Value::String(u) => json!({ "url": u }),
                            Value::Object(m) if m.get("url").is_some_and(Value::is_string) => {
                                Value::Object(m.clone())
                            }
                            _ => return Err(bad("\"image_url\" must be {\"url\": \"...\"}")),
                        };
                        let url = image_ref(iu["url"].as_str().unwrap_or(""), dir, client)
                            .map_err(|e| bad(&e))?;
                        iu["url"] = Value::String(url);
                        parts.push(json!({"type": "image_url", "image_url": iu}));
                    }
                    other => {
                        return Err(bad(&format!(
                            "must have type 'text', 'image', or 'image_url' (got '{other}')"
                        )));
                    }
                }
            }
            Ok((parts, text))
        }
        (Some(Value::String(_)), Some(_)) => {
            Err("has both \"prompt\" and \"content\"; give one of them".into())
        }
        (Some(_), None) => Err("field \"prompt\" must be a string".into()),
        (None, Some(_)) => Err("field \"content\" must be a list of parts".into()),
        _ => Err(
            "needs \"prompt\" with \"image_files\", or \"content\" (a list of text and image parts)"
                .into(),
        ),
    }
}

/// Loads a `custom_image` JSONL file and builds one chat request per line: the
/// prompt's tokens are those of its text, as vLLM counts them.
pub fn generate_images(
    tok: &Tokenizer,
    path: &Path,
    spec: &CustomImageSpec,
) -> Result<Vec<Request>, String> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut lines = jsonl_objects(path, "{\"prompt\": \"...\", \"image_files\": [\"a.png\"]}")?;
    if lines.is_empty() {
        return Err(format!(
            "{}: no requests (the file is empty)",
            path.display()
        ));
    }
    shuffle_take(&mut lines, spec.shuffle, spec.seed, spec.n);
    // Client-side images are read (or fetched) here, a line at a time in parallel.
    par_map(&lines, |_, (line_no, o)| {
        let (parts, text) = image_line(o, dir, spec.client_side_data)
            .map_err(|e| format!("{}: {e}", at(path, *line_no)))?;
        Ok(Request {
            prompt: Prompt::Messages(json!([{"role": "user", "content": parts}])),
            prompt_tokens: tok.count(&text) as u32,
            max_tokens: spec.output_len,
            extra: None,
            timestamp: None,
        })
    })
    .into_iter()
    .collect()
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

    /// A 1x1 PNG (what vLLM's own custom_image tests write with PIL).
    const PNG: &[u8] = &[
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90,
        0x77, 0x53, 0xDE, 0x00, 0x00, 0x00, 0x0C, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8,
        0xCF, 0xC0, 0x00, 0x00, 0x03, 0x01, 0x01, 0x00, 0xC9, 0xFE, 0x92, 0xEF, 0x00, 0x00, 0x00,
        0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ];

    /// Serves `body` to `n` GETs on 127.0.0.1 and returns its URL.
    fn serve_once(body: &'static [u8], n: usize) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/chart.png", l.local_addr().unwrap());
        std::thread::spawn(move || {
            for c in l.incoming().take(n) {
                let mut c = c.unwrap();
                c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                    .ok();
                let mut buf = [0u8; 4096];
                let _ = c.read(&mut buf);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = c.write_all(head.as_bytes());
                let _ = c.write_all(body);
            }
        });
        url
    }

    fn urls(r: &Request) -> Vec<String> {
        let Prompt::Messages(m) = &r.prompt else {
            panic!("not messages: {:?}", r.prompt)
        };
        m[0]["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["image_url"]["url"].as_str().map(str::to_string))
            .collect()
    }

    /// The layouts of vLLM's own custom_image tests: "prompt" with every one of
    /// "image_files", and interleaved "content" parts kept in order with their
    /// "detail"; file:// URLs by default, data URLs of the bytes with client-side data.
    #[test]
    fn custom_image_lines_as_vllm_reads_them() {
        let dir = std::env::temp_dir().join(format!("mb-custom-image-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("chart_a.png"), PNG).unwrap();
        std::fs::write(dir.join("chart b.png"), PNG).unwrap();
        let b_uri = format!("file://{}", dir.join("chart%20b.png").display());
        let remote = serve_once(PNG, 1);
        let lines = [
            json!({"prompt": "Compare the first two charts.", "image_files": ["chart_a.png", b_uri, remote, "data:image/png;base64,Zm9v"]}),
            json!({"content": [{"type": "text", "text": "Compare "}, {"type": "image", "image": "chart_a.png"},
                {"type": "text", "text": " with "}, {"type": "image_url", "image_url": {"url": "chart_a.png", "detail": "low"}}]}),
        ];
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let path = dir.join("images.jsonl");
        std::fs::write(&path, body).unwrap();
        let tok = Tokenizer::words();
        let spec = CustomImageSpec {
            shuffle: false,
            ..Default::default()
        };
        let r = generate_images(&tok, &path, &spec).unwrap();
        assert_eq!(r.len(), 2);
        let a = format!("file://{}", dir.join("chart_a.png").display());
        assert_eq!(
            urls(&r[0]),
            vec![
                a.clone(),
                b_uri.clone(),
                remote.clone(),
                "data:image/png;base64,Zm9v".into()
            ]
        );
        assert_eq!((r[0].prompt_tokens, r[0].max_tokens), (5, Some(256)));
        let Prompt::Messages(m) = &r[1].prompt else {
            unreachable!()
        };
        let kinds: Vec<&str> = m[0]["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["text", "image_url", "text", "image_url"]);
        assert_eq!(
            m[0]["content"][3]["image_url"],
            json!({"url": a, "detail": "low"})
        );
        assert_eq!(r[1].prompt_tokens, 2);

        // Client-side: local files, file:// URLs and the http(s) image become data
        // URLs of their bytes; a data URL stays as it is.
        let remote2 = serve_once(PNG, 1);
        let body = json!({"prompt": "p", "image_files": ["chart_a.png", b_uri, remote2, "data:image/png;base64,Zm9v"]});
        std::fs::write(&path, format!("{body}\n")).unwrap();
        let client = CustomImageSpec {
            client_side_data: true,
            ..spec.clone()
        };
        let r = generate_images(&tok, &path, &client).unwrap();
        use base64::Engine;
        let want = format!(
            "data:image/png;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(PNG)
        );
        assert_eq!(
            urls(&r[0]),
            vec![
                want.clone(),
                want.clone(),
                want,
                "data:image/png;base64,Zm9v".into()
            ]
        );

        // What vLLM refuses, refused with the file, line and part.
        std::fs::write(dir.join("not_an_image.png"), "not an image").unwrap();
        let bad = |line: Value, s: &CustomImageSpec, want: &str| {
            std::fs::write(&path, format!("{line}\n")).unwrap();
            let e = generate_images(&tok, &path, s).unwrap_err();
            assert!(e.contains("images.jsonl:1") && e.contains(want), "{e}");
        };
        bad(
            json!({"prompt": "p", "image_files": ["not_an_image.png"]}),
            &client,
            "invalid image",
        );
        bad(
            json!({"content": [{"type": "audio", "audio": "clip.wav"}]}),
            &spec,
            "type 'text', 'image', or 'image_url'",
        );
        bad(json!({"prompt": "p"}), &spec, "needs \"image_files\"");
        bad(
            json!({"text": "p"}),
            &spec,
            "needs \"prompt\" with \"image_files\"",
        );
        bad(
            json!({"prompt": "p", "image_files": ["missing.png"]}),
            &client,
            "cannot read image",
        );
    }
}
