//! The OpenAI completions, chat-completions and embeddings formats: request bodies
//! as vLLM's benchmark sends them, and decoding of streamed chunks and whole JSON
//! answers. Reasoning deltas (`reasoning_content` / `reasoning`) count as output.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::{Map, Value, json};

use super::exec::{Accum, ServerTiming};
use super::protocol::{error_message, object, protocol, snippet, unexpected};
use super::{Api, Target};
use crate::dataset::{Prompt, Request};
use crate::metrics::{ErrorKind, RequestError};

/// The JSON body of `req` for an OpenAI-compatible `target`. Fields of
/// `target.body` and then of `req.extra` are merged last, so they override.
pub fn body(target: &Target, req: &Request) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("model".into(), json!(target.payload_model()));
    let api = target.backend.api;
    match (api, &req.prompt) {
        (Api::Completions, Prompt::Text(t)) => {
            m.insert("prompt".into(), json!(t));
        }
        (Api::Completions, Prompt::Parts(parts)) => {
            m.insert("prompt".into(), json!(crate::dataset::join(parts)));
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
        (Api::Completions, Prompt::Audio(_)) => {
            return Err(format!(
                "a request has audio, but backend '{}' sends text prompts; use --backend openai-audio \
                 (/v1/audio/transcriptions) or openai-chat (an input_audio part, for audio chat models)",
                target.backend.name
            ));
        }
        (_, Prompt::Audio(a)) => {
            m.insert("messages".into(), a.chat_messages());
        }
        (_, Prompt::Text(t)) => {
            m.insert("messages".into(), json!([{ "role": "user", "content": t }]));
        }
        (_, Prompt::Parts(p)) => {
            m.insert(
                "messages".into(),
                json!([{ "role": "user", "content": crate::dataset::join(p) }]),
            );
        }
        (_, Prompt::Messages(msgs)) => {
            m.insert("messages".into(), msgs.clone());
        }
        (_, Prompt::TokenIds(_)) => {
            return Err(format!(
                "a request has token ids, which only the completions API accepts; backend '{}' is a chat backend",
                target.backend.name
            ));
        }
        (_, Prompt::Texts(_)) => {
            // A list of prompts would come back as several choices, and each
            // request is measured as one answer: batches are for pooling backends.
            return Err(format!(
                "a request has several texts (a batch or a rerank query), but backend '{}' measures one answer \
                 per request; send batches to a pooling backend (openai-embeddings, vllm-pooling, vllm-rerank)",
                target.backend.name
            ));
        }
    }
    if let Some(n) = req.max_tokens {
        let key = if api == Api::Chat {
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
    for (k, v) in super::protocol::merged_fields(target, req) {
        // vLLM's `--logprobs N` is the completions API's form; the chat API asks
        // for the same with `logprobs: true, top_logprobs: N`.
        if api == Api::Chat && k == "logprobs" && v.is_u64() {
            m.insert("logprobs".into(), json!(true));
            m.insert("top_logprobs".into(), v);
            continue;
        }
        m.insert(k, v);
    }
    Ok(Value::Object(m))
}

#[derive(Deserialize)]
struct Chunk<'a> {
    /// The first choice (the answer measured; a batch's others are refused before
    /// sending), kept without collecting the list.
    #[serde(default, borrow)]
    choices: Option<First<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
    /// llama-server's own timing of the request (on its last chunk or answer).
    #[serde(default)]
    timings: Option<Value>,
}

/// The first element of a JSON array (`None` when empty); the rest are skipped.
struct First<T>(Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for First<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<First<T>, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    text: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
    #[serde(default, borrow)]
    message: Option<Delta<'a>>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
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

/// A choice's (answer, reasoning, tool call) for `api`, or an error when it has the
/// other API's shape.
fn choice_parts<'c>(
    api: Api,
    c: &'c Choice<'_>,
    streamed: bool,
) -> Result<(&'c str, String, bool), RequestError> {
    match api {
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
                return Ok(("", String::new(), false));
            };
            let mut reasoning = String::new();
            for part in [&d.reasoning_content, &d.reasoning].into_iter().flatten() {
                reasoning.push_str(part);
            }
            Ok((
                d.content.as_deref().unwrap_or(""),
                reasoning,
                d.tool_calls.is_some(),
            ))
        }
        _ => {
            if let Some(t) = &c.text {
                return Ok((t, String::new(), false));
            }
            if c.delta.is_some() || c.message.is_some() {
                return Err(protocol(
                    "the server answered in the chat format (choices[0].delta/message), but this \
                     backend expects completions (choices[0].text); use --backend openai-chat \
                     and --endpoint /v1/chat/completions",
                ));
            }
            Ok(("", String::new(), false))
        }
    }
}

fn parse_chunk<'a>(api: Api, data: &'a [u8]) -> Result<Chunk<'a>, RequestError> {
    let chunk: Chunk<'_> = serde_json::from_slice(data).map_err(|e| {
        protocol(format!(
            "malformed SSE data (not valid JSON: {e}): {}",
            snippet(data)
        ))
    })?;
    if let Some(err) = &chunk.error {
        return Err(RequestError::new(
            ErrorKind::Server,
            format!("server error: {}", error_message(err)),
        ));
    }
    if chunk.choices.is_none() && chunk.usage.is_none() {
        return Err(match object(data, api) {
            Ok(o) => unexpected(api, &o, data),
            Err(e) => e,
        });
    }
    Ok(chunk)
}

/// Decodes one streamed SSE data payload that arrived at `t`.
pub fn on_event(api: Api, data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let trimmed = data.trim_ascii();
    if trimmed == b"[DONE]" {
        acc.done_marker = true;
        return Ok(());
    }
    if trimmed.is_empty() {
        return Ok(());
    }
    let chunk = parse_chunk(api, trimmed)?;
    let usage_ct = chunk.usage.as_ref().and_then(|u| u.completion_tokens);
    if let Some(p) = chunk.usage.as_ref().and_then(|u| u.prompt_tokens) {
        acc.usage_prompt = Some(p);
    }
    if let Some(timing) = chunk.timings.as_ref().and_then(ServerTiming::from_llamacpp) {
        acc.server_timing = Some(timing);
    }
    let Some(choice) = chunk.choices.as_ref().and_then(|c| c.0.as_ref()) else {
        // The trailing usage-only chunk: the request's total.
        if let Some(ct) = usage_ct {
            acc.usage_completion = Some(ct);
        }
        return Ok(());
    };
    // TGI's completions stream sends `"finish_reason": ""` on every chunk but the
    // last: only a non-empty reason finishes the answer.
    if choice
        .finish_reason
        .as_deref()
        .is_some_and(|r| !r.is_empty())
    {
        acc.done = true;
    }
    let (answer, reasoning, tool) = choice_parts(api, choice, true)?;
    // Usage on a choice chunk is cumulative; whether it counts this chunk's tokens
    // is decided once the stream is over (`Accum::settle`).
    let count = usage_ct.map(|ct| acc.cumulative(ct));
    acc.push_chunk(t, answer, &reasoning, tool, count);
    Ok(())
}

/// Decodes a complete (non-streamed) JSON answer that arrived at `t`.
pub fn on_body(api: Api, body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let chunk = parse_chunk(api, body)?;
    let Some(choice) = chunk.choices.as_ref().and_then(|c| c.0.as_ref()) else {
        return Err(match object(body, api) {
            Ok(o) => unexpected(api, &o, body),
            Err(e) => e,
        });
    };
    let (answer, reasoning, tool) = choice_parts(api, choice, false)?;
    if let Some(u) = &chunk.usage {
        acc.usage_prompt = u.prompt_tokens;
        acc.usage_completion = u.completion_tokens;
    }
    if let Some(timing) = chunk.timings.as_ref().and_then(ServerTiming::from_llamacpp) {
        acc.server_timing = Some(timing);
    }
    acc.done = true;
    acc.push_chunk(t, answer, &reasoning, tool, None);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(backend: &str) -> Target {
        crate::backend::test_target(backend, "m")
    }

    /// A batch of texts is refused by the generation APIs (their answer would be
    /// several choices, measured as one).
    #[test]
    fn batches_are_for_pooling_backends() {
        let mut r = Request::text("", 2, Some(4));
        r.prompt = Prompt::Texts(vec!["a".into(), "b".into()]);
        for b in ["vllm", "openai-chat"] {
            let e = body(&target(b), &r).unwrap_err();
            assert!(e.contains("pooling backend"), "{b}: {e}");
        }
    }

    #[test]
    fn completions_body_like_vllm() {
        let mut t = target("vllm");
        t.body.insert("ignore_eos".into(), json!(true));
        t.body.insert("temperature".into(), json!(0.0));
        let mut r = Request::text("hi there", 2, Some(16));
        r.extra = Some(serde_json::from_str(r#"{"temperature": 0.7}"#).unwrap());
        let v: Value = body(&t, &r).unwrap();
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
        let v: Value = body(&t, &Request::text("q", 1, Some(5))).unwrap();
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
        assert!(body(&t, &r).unwrap_err().contains("completions"));
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
        // [DONE] without any choice's finish_reason: llama-cpp-python's cut stream.
        assert!(acc.done_marker && !acc.done);
        on_event(
            Api::Chat,
            br#"{"choices":[{"delta":{},"finish_reason":"length"}]}"#,
            6,
            &mut acc,
        )
        .unwrap();
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
            e.message.contains("looks like TGI") && e.message.contains("--backend tgi"),
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
        let s = acc.settle(&crate::tokenizer::Tokenizer::words());
        assert_eq!(s.chunk_tokens, vec![1, 3]);
        assert_eq!(acc.counts(), crate::backend::exec::ChunkCounts::Server);
    }
}
