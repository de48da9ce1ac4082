//! The OpenAI completions and chat-completions formats: request bodies as vLLM's
//! benchmark sends them, and decoding of streamed chunks and whole JSON answers.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use super::exec::Accum;
use super::{Api, Target};
use crate::dataset::{Prompt, Request};
use crate::metrics::{ErrorKind, RequestError};

/// Builds the JSON body of `req` for `target`. Fields of `target.body` and then of
/// `req.extra` are merged last, so they override the defaults.
pub fn build_body(target: &Target, req: &Request) -> Result<Vec<u8>, String> {
    let mut m = Map::new();
    m.insert("model".into(), json!(target.payload_model()));
    match (target.backend.api, &req.prompt) {
        (Api::Completions, Prompt::Text(t)) => {
            m.insert("prompt".into(), json!(t));
        }
        (Api::Completions, Prompt::Parts(p)) => {
            m.insert("prompt".into(), json!(p.concat()));
        }
        (Api::Completions, Prompt::TokenIds(ids)) => {
            m.insert("prompt".into(), json!(ids));
        }
        (Api::Completions, Prompt::Messages(_)) => {
            return Err(format!(
                "a request has chat messages, but backend '{}' sends plain prompts to {}; use --backend openai-chat, \
                 or --apply-chat-template to render them with the model's chat template",
                target.backend.name, target.endpoint
            ));
        }
        (Api::Chat, Prompt::Text(t)) => {
            m.insert("messages".into(), json!([{ "role": "user", "content": t }]));
        }
        (Api::Chat, Prompt::Parts(p)) => {
            m.insert(
                "messages".into(),
                json!([{ "role": "user", "content": p.concat() }]),
            );
        }
        (Api::Chat, Prompt::Messages(msgs)) => {
            m.insert("messages".into(), msgs.clone());
        }
        (Api::Chat, Prompt::TokenIds(_)) => {
            return Err(format!(
                "a request has token ids, which only the completions API accepts; backend '{}' is a chat backend",
                target.backend.name
            ));
        }
    }
    if let Some(n) = req.max_tokens {
        let key = if target.backend.api == Api::Chat {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        m.insert(key.into(), json!(n));
    }
    m.insert("stream".into(), json!(target.stream));
    if target.stream {
        let mut so = Map::new();
        so.insert("include_usage".into(), json!(true));
        if target.continuous_usage {
            so.insert("continuous_usage_stats".into(), json!(true));
        }
        m.insert("stream_options".into(), Value::Object(so));
    }
    for (k, v) in &target.body {
        m.insert(k.clone(), v.clone());
    }
    if let Some(extra) = &req.extra {
        for (k, v) in extra {
            m.insert(k.clone(), v.clone());
        }
    }
    serde_json::to_vec(&Value::Object(m)).map_err(|e| e.to_string())
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    message: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning_content: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(default)]
    tool_calls: Option<IgnoredAny>,
}

#[derive(Deserialize)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u32>,
    #[serde(default)]
    completion_tokens: Option<u32>,
}

fn protocol(msg: impl Into<String>) -> RequestError {
    RequestError::new(ErrorKind::Protocol, msg)
}

fn snippet(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(&data[..data.len().min(160)]).into_owned();
    if data.len() > 160 {
        format!("{s}...")
    } else {
        s
    }
}

/// The message of an `error` value (`{"message": ...}` or a plain string).
pub fn error_message(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("message")
            .and_then(|m| m.as_str())
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string()),
        other => other.to_string(),
    }
}

fn describe_keys(data: &[u8]) -> String {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(o)) => {
            let keys: Vec<&str> = o.keys().map(|k| k.as_str()).take(8).collect();
            format!("an object with keys [{}]", keys.join(", "))
        }
        Ok(v) => format!(
            "a JSON {}",
            match v {
                Value::Array(_) => "array",
                Value::String(_) => "string",
                Value::Number(_) => "number",
                _ => "value",
            }
        ),
        Err(_) => "something else".to_string(),
    }
}

/// The text a choice carries for `api`, or an error when it is the other API's shape.
fn choice_text(api: Api, c: &Choice<'_>, streamed: bool) -> Result<(String, bool), RequestError> {
    match api {
        Api::Completions => {
            if let Some(t) = &c.text {
                return Ok((t.to_string(), false));
            }
            if c.delta.is_some() || c.message.is_some() {
                return Err(protocol(
                    "the server answered in the chat format (choices[0].delta/message), but this \
                     backend expects completions (choices[0].text); use --backend openai-chat \
                     and --endpoint /v1/chat/completions",
                ));
            }
            Ok((String::new(), false))
        }
        Api::Chat => {
            let d = if streamed {
                c.delta.as_ref().or(c.message.as_ref())
            } else {
                c.message.as_ref().or(c.delta.as_ref())
            };
            let Some(d) = d else {
                if c.text.is_some() {
                    return Err(protocol(
                        "the server answered in the completions format (choices[0].text), but this \
                         backend expects chat (choices[0].delta); use --backend openai and \
                         --endpoint /v1/completions",
                    ));
                }
                return Ok((String::new(), false));
            };
            let mut s = String::new();
            for part in [&d.reasoning_content, &d.reasoning, &d.content]
                .into_iter()
                .flatten()
            {
                s.push_str(part);
            }
            Ok((s, d.tool_calls.is_some()))
        }
    }
}

/// Decodes one streamed SSE data payload that arrived at `t`.
pub fn on_event(api: Api, data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        acc.done = true;
        return Ok(());
    }
    if trimmed.is_empty() {
        return Ok(());
    }
    let chunk: Chunk<'_> = serde_json::from_slice(trimmed).map_err(|e| {
        protocol(format!(
            "malformed SSE data (not valid JSON: {e}): {}",
            snippet(trimmed)
        ))
    })?;
    if let Some(err) = &chunk.error {
        return Err(RequestError::new(
            ErrorKind::Server,
            format!("server error in stream: {}", error_message(err)),
        ));
    }
    let usage_ct = chunk.usage.as_ref().and_then(|u| u.completion_tokens);
    if let Some(u) = &chunk.usage {
        if u.prompt_tokens.is_some() {
            acc.usage_prompt = u.prompt_tokens;
        }
    }
    let choices = chunk.choices.as_deref().unwrap_or(&[]);
    if choices.is_empty() {
        if chunk.choices.is_none() && chunk.usage.is_none() {
            return Err(protocol(format!(
                "expected an OpenAI stream chunk (with `choices` or `usage`), got {}: {}",
                describe_keys(trimmed),
                snippet(trimmed)
            )));
        }
        // The trailing usage-only chunk.
        if let Some(ct) = usage_ct {
            acc.usage_completion = Some(ct);
        }
        return Ok(());
    }
    let (text, tool) = choice_text(api, &choices[0], true)?;
    let delta = usage_ct.map(|ct| {
        acc.continuous_usage = true;
        let d = ct.saturating_sub(acc.usage_completion.unwrap_or(0));
        acc.usage_completion = Some(ct);
        d
    });
    acc.push_chunk(t, &text, tool, delta);
    Ok(())
}

/// Decodes a complete (non-streamed) JSON answer that arrived at `t`.
pub fn on_body(api: Api, body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let chunk: Chunk<'_> = serde_json::from_slice(body)
        .map_err(|e| protocol(format!("malformed JSON response ({e}): {}", snippet(body))))?;
    if let Some(err) = &chunk.error {
        return Err(RequestError::new(
            ErrorKind::Server,
            format!("server error: {}", error_message(err)),
        ));
    }
    let Some(choices) = chunk.choices.as_deref().filter(|c| !c.is_empty()) else {
        return Err(protocol(format!(
            "expected an OpenAI response with `choices`, got {}: {}",
            describe_keys(body),
            snippet(body)
        )));
    };
    let (text, tool) = choice_text(api, &choices[0], false)?;
    if let Some(u) = &chunk.usage {
        acc.usage_prompt = u.prompt_tokens;
        acc.usage_completion = u.completion_tokens;
    }
    acc.push_chunk(t, &text, tool, None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{Backend, BaseUrl};

    fn target(backend: &str) -> Target {
        Target::new(
            Backend::parse(backend).unwrap(),
            BaseUrl::parse("http://h:1").unwrap(),
            "m",
        )
    }

    #[test]
    fn completions_body_like_vllm() {
        let mut t = target("vllm");
        t.body.insert("ignore_eos".into(), json!(true));
        t.body.insert("temperature".into(), json!(0.0));
        let mut r = Request::text("hi there", 2, Some(16));
        r.extra = Some(serde_json::from_str(r#"{"temperature": 0.7}"#).unwrap());
        let v: Value = serde_json::from_slice(&build_body(&t, &r).unwrap()).unwrap();
        assert_eq!(v["model"], "m");
        assert_eq!(v["prompt"], "hi there");
        assert_eq!(v["max_tokens"], 16);
        assert_eq!(v["stream"], true);
        assert_eq!(v["stream_options"]["include_usage"], true);
        assert_eq!(v["ignore_eos"], true);
        assert_eq!(v["temperature"], 0.7);
    }

    #[test]
    fn chat_body_and_mismatch_errors() {
        let mut t = target("openai-chat");
        t.served_model_name = Some("served".into());
        let v: Value =
            serde_json::from_slice(&build_body(&t, &Request::text("q", 1, Some(5))).unwrap())
                .unwrap();
        assert_eq!(v["model"], "served");
        assert_eq!(v["messages"][0]["content"], "q");
        assert_eq!(v["max_completion_tokens"], 5);
        let r = Request {
            prompt: Prompt::TokenIds(vec![1, 2]),
            prompt_tokens: 2,
            max_tokens: None,
            extra: None,
            timestamp: None,
        };
        assert!(build_body(&t, &r).unwrap_err().contains("completions"));
    }

    #[test]
    fn decodes_chunks_usage_and_errors() {
        let mut acc = Accum::default();
        on_event(
            Api::Chat,
            br#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""}}]}"#,
            1,
            &mut acc,
        )
        .unwrap();
        assert!(acc.chunk_ns.is_empty(), "role chunk is not a token");
        on_event(
            Api::Chat,
            br#"{"choices":[{"delta":{"reasoning_content":"hm"}}]}"#,
            2,
            &mut acc,
        )
        .unwrap();
        on_event(
            Api::Chat,
            br#"{"choices":[{"delta":{"content":" yes\n"}}]}"#,
            3,
            &mut acc,
        )
        .unwrap();
        on_event(
            Api::Chat,
            br#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
            4,
            &mut acc,
        )
        .unwrap();
        on_event(Api::Chat, b"[DONE]", 5, &mut acc).unwrap();
        assert_eq!(acc.chunk_ns, vec![2, 3]);
        assert_eq!(acc.text, "hm yes\n");
        assert_eq!(acc.usage_completion, Some(3));
        assert_eq!(acc.usage_prompt, Some(7));
        assert!(acc.done);

        let e = on_event(Api::Completions, b"{\"choices\": [", 1, &mut acc).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Protocol);
        let e = on_event(
            Api::Completions,
            br#"{"error":{"message":"overloaded"}}"#,
            1,
            &mut acc,
        )
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Server);
        assert!(e.message.contains("overloaded"));
        let e = on_event(
            Api::Completions,
            br#"{"token":{"text":"a"},"generated_text":null}"#,
            1,
            &mut acc,
        )
        .unwrap_err();
        assert!(
            e.message.contains("keys [token, generated_text]"),
            "{}",
            e.message
        );
        let e = on_event(
            Api::Completions,
            br#"{"choices":[{"delta":{"content":"a"}}]}"#,
            1,
            &mut acc,
        )
        .unwrap_err();
        assert!(e.message.contains("--backend openai-chat"));
    }

    #[test]
    fn continuous_usage_gives_tokens_per_chunk() {
        let mut acc = Accum::default();
        on_event(
            Api::Completions,
            br#"{"choices":[{"text":"a"}],"usage":{"completion_tokens":1}}"#,
            10,
            &mut acc,
        )
        .unwrap();
        on_event(
            Api::Completions,
            br#"{"choices":[{"text":"bcd"}],"usage":{"completion_tokens":4}}"#,
            20,
            &mut acc,
        )
        .unwrap();
        assert_eq!(acc.chunk_tokens, vec![1, 3]);
        assert!(acc.continuous_usage);
    }
}
