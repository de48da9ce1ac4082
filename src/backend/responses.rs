//! The OpenAI Responses API (`/v1/responses`), as vLLM's `openai-responses` backend
//! sends it: `{model, input, max_output_tokens, stream, store: false}`. A stream is
//! typed events (`event:` + `data:`, the type repeated in the JSON): text arrives in
//! `response.output_text.delta`, reasoning in `response.reasoning_text.delta` (and
//! `response.reasoning_summary_text.delta`), tool calls in
//! `response.function_call_arguments.delta`; `response.completed` or
//! `response.incomplete` ends the answer with `response.usage`
//! (`input_tokens`, `output_tokens`); `error` and `response.failed` are failures.

use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::exec::{Accum, ServerTiming};
use super::protocol::{error_message, object, protocol, snippet, unexpected, usage_count};
use super::{Api, Target};
use crate::dataset::{Prompt, Request};
use crate::metrics::{ErrorKind, RequestError};

/// The JSON body of `req`: text as `input`, chat messages as a list of input
/// messages; `target.body` and the request's own fields are merged last
/// (`max_tokens` from a dataset becomes `max_output_tokens`).
pub fn body(target: &Target, req: &Request) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("model".into(), json!(target.payload_model()));
    let input = match &req.prompt {
        Prompt::Text(_) | Prompt::Parts(_) => json!(req.prompt.text().unwrap_or_default()),
        Prompt::Messages(msgs) => msgs.clone(),
        Prompt::TokenIds(_) | Prompt::Texts(_) | Prompt::Audio(_) => {
            return Err(format!(
                "backend '{}' sends text or chat messages as `input`; a request has token ids, several texts or audio",
                target.backend.name
            ));
        }
    };
    m.insert("input".into(), input);
    if let Some(n) = req.max_tokens {
        m.insert("max_output_tokens".into(), json!(n));
    }
    m.insert("stream".into(), json!(target.stream));
    m.insert("store".into(), json!(false));
    for (k, v) in super::protocol::merged_fields(target, req) {
        match k.as_str() {
            "max_tokens" | "max_completion_tokens" => {
                m.insert("max_output_tokens".into(), v);
            }
            // vLLM's `--logprobs N` in the Responses API's own form.
            "logprobs" if v.is_u64() => {
                m.insert("top_logprobs".into(), v);
            }
            _ => {
                m.insert(k, v);
            }
        }
    }
    Ok(Value::Object(m))
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(default, borrow, rename = "type")]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    message: Option<Value>,
    /// llama-server's own timing, on its `response.completed` event.
    #[serde(default)]
    timings: Option<Value>,
}

/// Decodes one streamed event that arrived at `t`.
pub fn on_event(data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let d = data.trim_ascii();
    if d.is_empty() || d == b"[DONE]" {
        return Ok(());
    }
    let ev: Event<'_> = serde_json::from_slice(d).map_err(|e| {
        protocol(format!(
            "malformed Responses event (not valid JSON: {e}): {}",
            snippet(d)
        ))
    })?;
    let Some(kind) = ev.kind.as_deref() else {
        return Err(match object(d, Api::Responses) {
            Ok(o) if o.contains_key("error") => server_err(o.get("error")),
            Ok(o) => unexpected(Api::Responses, &o, d),
            Err(e) => e,
        });
    };
    let delta = ev.delta.as_deref().unwrap_or("");
    match kind {
        "response.output_text.delta" | "response.refusal.delta" => {
            acc.push_chunk(t, delta, "", false, None)
        }
        "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
            acc.push_chunk(t, "", delta, false, None)
        }
        "response.function_call_arguments.delta" => acc.push_chunk(t, "", "", true, None),
        "response.completed" | "response.incomplete" => {
            finish(ev.response.as_ref(), acc);
            if let Some(timing) = ev.timings.as_ref().and_then(ServerTiming::from_llamacpp) {
                acc.server_timing = Some(timing);
            }
        }
        "response.failed" => {
            let e = ev
                .response
                .as_ref()
                .and_then(|r| r.get("error"))
                .filter(|e| !e.is_null());
            return Err(server_err(e));
        }
        "error" => {
            return Err(server_err(
                ev.error
                    .as_ref()
                    .or(ev.message.as_ref())
                    .or(Some(&json!(String::from_utf8_lossy(d).into_owned()))),
            ));
        }
        _ => {}
    }
    Ok(())
}

fn server_err(e: Option<&Value>) -> RequestError {
    RequestError::new(
        ErrorKind::Server,
        format!(
            "server error: {}",
            e.map(error_message)
                .unwrap_or_else(|| "the response failed without saying why".into())
        ),
    )
}

/// The end of an answer: its usage, and the finish.
fn finish(response: Option<&Value>, acc: &mut Accum) {
    let usage = response.and_then(|r| r.get("usage"));
    if let Some(n) = usage_count(usage, "input_tokens") {
        acc.usage_prompt = Some(n);
    }
    if let Some(n) = usage_count(usage, "output_tokens") {
        acc.usage_completion = Some(n);
    }
    acc.done = true;
}

/// Decodes a whole (non-streamed) response object that arrived at `t`: the text of
/// its `output` messages and reasoning items, and its usage.
pub fn on_body(body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let o = object(body, Api::Responses)?;
    if let Some(e) = o.get("error").filter(|e| !e.is_null()) {
        return Err(server_err(Some(e)));
    }
    let Some(output) = o.get("output").and_then(|v| v.as_array()) else {
        return Err(unexpected(Api::Responses, &o, body));
    };
    let (mut answer, mut reasoning, mut tool) = (String::new(), String::new(), false);
    for item in output {
        let texts = item
            .get("content")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
            .filter_map(|c| c.get("text").and_then(|t| t.as_str()));
        match item.get("type").and_then(|t| t.as_str()) {
            Some("message") => texts.for_each(|t| answer.push_str(t)),
            Some("reasoning") => texts.for_each(|t| reasoning.push_str(t)),
            Some("function_call") => tool = true,
            _ => {}
        }
    }
    finish(Some(&Value::Object(o)), acc);
    acc.push_chunk(t, &answer, &reasoning, tool, None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_as_vllm_sends_it() {
        let mut t = crate::backend::test_target("openai-responses", "m");
        t.body.insert("logprobs".into(), json!(2));
        let v = body(&t, &Request::text("hi", 1, Some(16))).unwrap();
        assert_eq!(
            v,
            json!({"model": "m", "input": "hi", "max_output_tokens": 16, "stream": true,
                   "store": false, "top_logprobs": 2})
        );
    }

    #[test]
    fn events_fill_the_answer() {
        let mut acc = Accum::default();
        for (i, e) in [
            r#"{"type":"response.created","response":{"id":"r"}}"#,
            r#"{"type":"response.reasoning_text.delta","delta":"think"}"#,
            r#"{"type":"response.output_text.delta","delta":"Hi"}"#,
            r#"{"type":"response.output_text.delta","delta":" there"}"#,
            r#"{"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":4}}}"#,
        ]
        .iter()
        .enumerate()
        {
            on_event(e.as_bytes(), i as u64, &mut acc).unwrap();
        }
        assert!(acc.done);
        assert_eq!(acc.text, "thinkHi there");
        assert_eq!((acc.usage_prompt, acc.usage_completion), (Some(3), Some(4)));
        let mut acc = Accum::default();
        let e = on_event(
            br#"{"type":"response.failed","response":{"error":{"message":"boom"}}}"#,
            1,
            &mut acc,
        )
        .unwrap_err();
        assert!(e.message.contains("boom"));
    }
}
