//! The pooling APIs, as vLLM's benchmark calls them (its `POOLING_BACKENDS`): OpenAI
//! embeddings with `input` (`openai-embeddings`) or chat `messages`
//! (`openai-embeddings-chat`, and its CLIP and VLM2Vec forms
//! `openai-embeddings-clip`/`-vlm2vec`), Infinity's embeddings, vLLM's `/pooling` and `/rerank`.
//! Each answers with one JSON body; a request is measured from send to the whole
//! body (TTFT = E2EL, no output tokens), and the server's `usage` gives its input
//! tokens (`prompt_tokens`, or `total_tokens` where a rerank answer has only that).

use serde_json::{Map, Value, json};

use super::exec::Accum;
use super::protocol::{object, protocol, server_error, unexpected, usage_count};
use super::{Api, Target};
use crate::dataset::{Prompt, Request};
use crate::metrics::RequestError;

/// Fields that mean something only to generation and are not sent to a pooling
/// API (the synthetic datasets ask every request to ignore EOS).
const GENERATION_ONLY: &[&str] = &["ignore_eos", "max_tokens", "min_tokens"];

/// vLLM's prompt rewriting for CLIP and VLM2Vec embedding models: a message with
/// images gets an empty text (CLIP, images last) or VLM2Vec's instruction (images
/// first): "Represent the given image." for even `index`, and for odd ones the
/// same with the request's question, as vLLM's `_preprocess_vlm2vec` alternates
/// them. Messages without images are sent as they are.
fn embedding_style(backend: &str, messages: Value, index: u64) -> Value {
    let (clip, vlm2vec) = (
        backend == "openai-embeddings-clip",
        backend == "openai-embeddings-vlm2vec",
    );
    let Value::Array(mut list) = messages else {
        return messages;
    };
    if !(clip || vlm2vec) {
        return Value::Array(list);
    }
    for msg in &mut list {
        let Some(parts) = msg.get("content").and_then(Value::as_array) else {
            continue;
        };
        let is_text = |p: &Value| p.get("type").and_then(Value::as_str) == Some("text");
        let (texts, media): (Vec<&Value>, Vec<&Value>) = parts.iter().partition(|p| is_text(p));
        if media.is_empty() {
            continue;
        }
        let question: String = texts.iter().filter_map(|p| p["text"].as_str()).collect();
        let media: Vec<Value> = media.into_iter().cloned().collect();
        let content = if clip {
            let mut c = vec![json!({"type": "text", "text": ""})];
            c.extend(media);
            c
        } else {
            let text = if index % 2 == 0 {
                "Represent the given image.".to_string()
            } else {
                format!("Represent the given image with the following question: {question}")
            };
            let mut c = media;
            c.push(json!({"type": "text", "text": text}));
            c
        };
        msg["content"] = Value::Array(content);
    }
    Value::Array(list)
}

/// The JSON body of `req`, the `index`-th of its run, for a pooling `target`:
/// vLLM's payload (with `truncate_prompt_tokens: -1` for vLLM's own APIs), then
/// `target.body` and the request's own fields.
pub fn body(target: &Target, req: &Request, index: u64) -> Result<Value, String> {
    let api = target.backend.api;
    let name = &target.backend.name;
    let mut m = Map::new();
    m.insert("model".into(), json!(target.payload_model()));
    match api {
        Api::Embeddings | Api::Infinity | Api::Pooling => {
            let input = match &req.prompt {
                Prompt::Text(t) => json!(t),
                Prompt::Parts(p) => json!(crate::dataset::join(p)),
                Prompt::TokenIds(ids) => json!(ids),
                Prompt::Texts(t) => json!(t),
                Prompt::Messages(_) | Prompt::Audio(_) => {
                    return Err(format!(
                        "a request has chat messages or audio, but backend '{name}' sends `input`; use \
                         --backend openai-embeddings-chat to send messages to an embeddings server"
                    ));
                }
            };
            m.insert("input".into(), input);
        }
        Api::EmbeddingsChat => {
            let messages = match &req.prompt {
                Prompt::Messages(msgs) => embedding_style(name, msgs.clone(), index),
                Prompt::Audio(a) => a.chat_messages(),
                Prompt::Text(_) | Prompt::Parts(_) => {
                    let text = req.prompt.text().unwrap_or_default();
                    json!([{ "role": "user", "content": [{ "type": "text", "text": text }] }])
                }
                Prompt::TokenIds(_) | Prompt::Texts(_) => {
                    return Err(format!(
                        "backend '{name}' sends one chat conversation per request; a request has token ids \
                         or a batch of texts (use --backend openai-embeddings for those)"
                    ));
                }
            };
            m.insert("messages".into(), messages);
        }
        Api::Rerank => {
            let Prompt::Texts(t) = &req.prompt else {
                return Err(format!(
                    "backend '{name}' sends a query and its documents, but a request has a single prompt; use \
                     --dataset-name random-rerank (or, in Lua, a request with texts = {{query, doc1, doc2, ...}})"
                ));
            };
            if t.len() < 2 {
                return Err(format!(
                    "backend '{name}' needs a query and at least one document; a request has {} text(s)",
                    t.len()
                ));
            }
            m.insert("query".into(), json!(t[0]));
            m.insert("documents".into(), json!(t[1..]));
        }
        _ => unreachable!("pooling::body for a generation API"),
    }
    if api != Api::Infinity {
        // Many embedding and reranker models have a short context (vLLM's comment).
        m.insert("truncate_prompt_tokens".into(), json!(-1));
    }
    for (k, v) in super::protocol::merged_fields(target, req) {
        if !GENERATION_ONLY.contains(&k.as_str()) {
            m.insert(k, v);
        }
    }
    Ok(Value::Object(m))
}

/// Decodes a pooling answer that arrived (whole) at `t`: checks it has the API's
/// shape and keeps the server's count of input tokens.
pub fn on_body(api: Api, body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let o = object(body, api)?;
    if let Some(e) = server_error(&o) {
        return Err(e);
    }
    let items = |key: &str, field: &str| {
        o.get(key)
            .and_then(|d| d.as_array())
            .is_some_and(|d| d.iter().all(|x| x.get(field).is_some()))
    };
    let ok = match api {
        Api::Embeddings | Api::EmbeddingsChat | Api::Infinity => items("data", "embedding"),
        Api::Pooling => items("data", "data"),
        Api::Rerank => items("results", "relevance_score"),
        _ => unreachable!("pooling::on_body for a generation API"),
    };
    if !ok {
        if api == Api::Rerank && items("data", "score") {
            return Err(protocol(
                "the server answered in vLLM's /score format (data[].score), but this backend expects \
                 /rerank (results[].relevance_score); use --endpoint /rerank",
            ));
        }
        return Err(unexpected(api, &o, body));
    }
    let usage = o.get("usage");
    acc.usage_prompt =
        usage_count(usage, "prompt_tokens").or_else(|| usage_count(usage, "total_tokens"));
    acc.usage_completion = Some(0);
    acc.push_empty_answer(t);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(backend: &str) -> Target {
        crate::backend::test_target(backend, "m")
    }

    fn texts(t: &[&str]) -> Request {
        let mut r = Request::text("", 3, None);
        r.prompt = Prompt::Texts(t.iter().map(|s| s.to_string()).collect());
        r
    }

    /// The payloads of vLLM's `endpoint_request_func.py`, field for field.
    #[test]
    fn bodies_as_vllm_sends_them() {
        let mut r = Request::text("hello", 1, Some(8));
        r.extra = Some(serde_json::from_str(r#"{"ignore_eos": true, "dimensions": 8}"#).unwrap());
        let v = body(&target("openai-embeddings"), &r, 0).unwrap();
        assert_eq!(
            v,
            json!({"model": "m", "input": "hello", "truncate_prompt_tokens": -1, "dimensions": 8})
        );
        let v = body(&target("openai-embeddings-chat"), &r, 0).unwrap();
        assert_eq!(
            v["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "hello"}]}])
        );
        let v = body(&target("infinity-embeddings"), &r, 0).unwrap();
        assert!(v.get("truncate_prompt_tokens").is_none());
        let v = body(&target("vllm-pooling"), &texts(&["a", "b"]), 0).unwrap();
        assert_eq!(v["input"], json!(["a", "b"]));
        let v = body(&target("vllm-rerank"), &texts(&["q", "d1", "d2"]), 0).unwrap();
        assert_eq!(
            (v["query"].clone(), v["documents"].clone()),
            (json!("q"), json!(["d1", "d2"]))
        );
        let e = body(&target("vllm-rerank"), &Request::text("q", 1, None), 0).unwrap_err();
        assert!(e.contains("random-rerank"), "{e}");
    }

    /// vLLM's `_preprocess_clip` and `_preprocess_vlm2vec`: CLIP sends an empty
    /// text before the image; VLM2Vec puts the image first and alternates its two
    /// instructions by the request's index; text-only messages are unchanged.
    #[test]
    fn clip_and_vlm2vec_rewrite_image_messages() {
        let img = json!({"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}});
        let mut r = Request::text("", 2, None);
        r.prompt = Prompt::Messages(json!([{"role": "user", "content": [
            {"type": "text", "text": "what is it?"}, img.clone()]}]));
        let v = body(&target("openai-embeddings-clip"), &r, 3).unwrap();
        assert_eq!(
            v["messages"][0]["content"],
            json!([{"type": "text", "text": ""}, img.clone()])
        );
        let v = body(&target("openai-embeddings-vlm2vec"), &r, 4).unwrap();
        assert_eq!(
            v["messages"][0]["content"],
            json!([img.clone(), {"type": "text", "text": "Represent the given image."}])
        );
        let v = body(&target("openai-embeddings-vlm2vec"), &r, 5).unwrap();
        assert_eq!(
            v["messages"][0]["content"][1]["text"],
            "Represent the given image with the following question: what is it?"
        );
        assert_eq!(v["truncate_prompt_tokens"], -1);
        let t = Request::text("plain", 1, None);
        for b in ["openai-embeddings-clip", "openai-embeddings-vlm2vec"] {
            assert_eq!(
                body(&target(b), &t, 1).unwrap()["messages"][0]["content"],
                json!([{"type": "text", "text": "plain"}])
            );
        }
    }

    /// vLLM's documented `/v1/rerank` answer (usage with `total_tokens` only).
    #[test]
    fn rerank_answer_counts_total_tokens() {
        let b = br#"{"id":"rerank-1","model":"BAAI/bge-reranker-base","usage":{"total_tokens":56},"results":[{"index":1,"document":{"text":"x"},"relevance_score":0.99}]}"#;
        let mut acc = Accum::default();
        on_body(Api::Rerank, b, 5, &mut acc).unwrap();
        assert_eq!(acc.usage_prompt, Some(56));
        let mut acc = Accum::default();
        let e = on_body(
            Api::Rerank,
            br#"{"data":[{"index":0,"score":0.5}]}"#,
            5,
            &mut acc,
        )
        .unwrap_err();
        assert!(e.message.contains("/score"), "{}", e.message);
    }
}
