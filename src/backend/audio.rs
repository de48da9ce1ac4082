//! vLLM's `openai-audio` backend: `/v1/audio/transcriptions` (or `translations`)
//! with a multipart/form-data body — the clip as `file`, then vLLM's string fields
//! (`model`, `max_completion_tokens`, `stream`, `language`, `stream_include_usage`,
//! `stream_continuous_usage_stats`, and `--extra-body`/sampling fields) — and its
//! streamed answer in either form servers send: vLLM's `transcription.chunk`
//! events (`choices[0].delta.content`, `usage`), or OpenAI's
//! `transcript.text.delta` / `transcript.text.done` events.

use serde_json::{Map, Value, json};

use super::Target;
use super::exec::Accum;
use super::protocol::{merged_fields, protocol, snippet};
use crate::dataset::{Prompt, Request};
use crate::metrics::{ErrorKind, RequestError};

/// The multipart boundary (never inside a field: fields are form values, and a
/// WAV or FLAC file does not hold this ASCII line).
pub const BOUNDARY: &str = "moonbench-form-5c1e07d9a3b44f6e";

/// The `content-type` header of an audio request.
pub fn content_type() -> String {
    format!("multipart/form-data; boundary={BOUNDARY}")
}

/// A form field's text as vLLM's client writes it (`str(value)` in Python:
/// `True`/`False` for booleans); strings bare, other JSON as JSON.
fn field_text(v: &Value) -> String {
    match v {
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The multipart body of `req` for `target`: vLLM's fields, overridden by
/// `target.body` and the request's own fields.
pub fn body(target: &Target, req: &Request) -> Result<Vec<u8>, String> {
    let Prompt::Audio(a) = &req.prompt else {
        return Err(format!(
            "backend '{}' sends audio files, but a request has no audio; use --dataset-name custom_audio \
             (JSONL of {{\"audio\": \"clip.wav\"}}) or, in Lua, mb.dataset.custom_audio",
            target.backend.name
        ));
    };
    let mut fields = Map::new();
    fields.insert("model".into(), json!(target.payload_model()));
    if let Some(n) = req.max_tokens {
        fields.insert("max_completion_tokens".into(), json!(n));
    }
    fields.insert("stream".into(), json!(target.stream));
    fields.insert("language".into(), json!("en"));
    fields.insert("stream_include_usage".into(), json!(true));
    fields.insert("stream_continuous_usage_stats".into(), json!(true));
    for (k, v) in merged_fields(target, req) {
        fields.insert(k, v);
    }
    let mut out = Vec::with_capacity(a.data.len() + 128 * (fields.len() + 2));
    out.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.{}\"\r\n\
             Content-Type: {}\r\n\r\n",
            a.format,
            a.mime()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&a.data);
    out.extend_from_slice(b"\r\n");
    for (k, v) in &fields {
        out.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{}\r\n",
                field_text(v)
            )
            .as_bytes(),
        );
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    Ok(out)
}

/// An OpenAI transcription event's `usage` (`input_tokens`/`output_tokens`, or
/// vLLM's `prompt_tokens`/`completion_tokens`) into `acc`.
fn take_usage(usage: &Value, acc: &mut Accum) {
    let n = |k: &str| usage.get(k).and_then(Value::as_u64).map(|x| x as u32);
    if let Some(p) = n("input_tokens").or(n("prompt_tokens")) {
        acc.usage_prompt = Some(p);
    }
    if let Some(c) = n("output_tokens").or(n("completion_tokens")) {
        acc.usage_completion = Some(c);
    }
}

/// Decodes one streamed event payload that arrived at `t`.
pub fn on_event(data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let trimmed = data.trim_ascii();
    // OpenAI's events say their type first; vLLM's chunks are chat chunks.
    const OPENAI: &[u8] = b"\"transcript.text.";
    let head = &trimmed[..trimmed.len().min(48)];
    if !head.windows(OPENAI.len()).any(|w| w == OPENAI) {
        return super::openai::on_event(super::Api::Chat, data, t, acc);
    }
    let v: Value = serde_json::from_slice(trimmed).map_err(|e| {
        protocol(format!(
            "malformed SSE data (not valid JSON: {e}): {}",
            snippet(trimmed)
        ))
    })?;
    match v["type"].as_str().unwrap_or("") {
        "transcript.text.delta" => {
            let delta = v["delta"].as_str().ok_or_else(|| {
                protocol(format!(
                    "a transcript.text.delta event without a text delta: {}",
                    snippet(trimmed)
                ))
            })?;
            acc.push_chunk(t, delta, "", false, None);
        }
        "transcript.text.done" => {
            take_usage(&v["usage"], acc);
            acc.done = true;
        }
        // Other transcript events (segments) carry no new text.
        _ => {}
    }
    Ok(())
}

/// Decodes a whole (non-streamed) transcription: `{"text": ..., "usage": ...}`.
pub fn on_body(body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        protocol(format!(
            "the answer is not valid JSON ({e}): {}",
            snippet(body)
        ))
    })?;
    if let Some(e) = v.get("error").filter(|e| !e.is_null()) {
        return Err(RequestError::new(
            ErrorKind::Server,
            format!(
                "server error: {}",
                e["message"].as_str().unwrap_or(&e.to_string())
            ),
        ));
    }
    let text = v["text"].as_str().ok_or_else(|| {
        protocol(format!(
            "expected a transcription ({{\"text\": ...}}), got: {}",
            snippet(body)
        ))
    })?;
    take_usage(&v["usage"], acc);
    acc.done = true;
    acc.push_chunk(t, text, "", false, None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::audio::{Audio, tests::wav};

    fn audio_request() -> Request {
        let data = wav(16_000, 8_000);
        let mut r = Request::text("", 0, Some(64));
        r.prompt = Prompt::Audio(Audio {
            data: data.into(),
            format: "wav",
            seconds: 0.5,
            text: String::new(),
        });
        r
    }

    /// The form vLLM's `async_request_openai_audio` posts: the file, then its
    /// fields as Python's `str()` writes them; `--extra-body` overrides them.
    #[test]
    fn multipart_body_as_vllm_sends_it() {
        let mut t = crate::backend::test_target("openai-audio", "openai/whisper-small");
        t.body.insert("language".into(), json!("de"));
        t.body.insert("temperature".into(), json!(0.0));
        let r = audio_request();
        let b = body(&t, &r).unwrap();
        let text = String::from_utf8_lossy(&b);
        let file_head = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"audio.wav\"\r\nContent-Type: audio/wav\r\n\r\nRIFF"
        );
        assert!(text.starts_with(&file_head), "{text:.200}");
        let Prompt::Audio(a) = &r.prompt else {
            unreachable!()
        };
        let at = file_head.len() - 4;
        assert_eq!(&b[at..at + a.data.len()], &a.data[..]);
        let fields: Vec<(String, String)> = text[at + a.data.len()..]
            .split(&format!("--{BOUNDARY}"))
            .filter_map(|p| {
                let (h, v) = p.split_once("\r\n\r\n")?;
                let name = h.split("name=\"").nth(1)?.split('"').next()?;
                Some((name.to_string(), v.trim_end_matches("\r\n").to_string()))
            })
            .collect();
        let want = [
            ("model", "openai/whisper-small"),
            ("max_completion_tokens", "64"),
            ("stream", "True"),
            ("language", "de"),
            ("stream_include_usage", "True"),
            ("stream_continuous_usage_stats", "True"),
            ("temperature", "0.0"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(fields, want);
        assert!(text.ends_with(&format!("--{BOUNDARY}--\r\n")));
        let e = body(&t, &Request::text("hi", 1, None)).unwrap_err();
        assert!(e.contains("custom_audio"), "{e}");
    }
}
