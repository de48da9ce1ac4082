//! The pooling APIs, as vLLM's benchmark calls them (its `POOLING_BACKENDS`): OpenAI
//! embeddings with `input` (`openai-embeddings`) or chat `messages`
//! (`openai-embeddings-chat`), Infinity's embeddings, vLLM's `/pooling` and `/rerank`.
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

/// The JSON body of `req` for a pooling `target`: vLLM's payload (with
/// `truncate_prompt_tokens: -1` for vLLM's own APIs), then `target.body` and the
/// request's own fields.
pub fn body(target: &Target, req: &Request) -> Result<Value, String> {
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
                Prompt::Messages(_) => {
                    return Err(format!(
                        "a request has chat messages, but backend '{name}' sends `input`; use --backend \
                         openai-embeddings-chat to send messages to an embeddings server"
                    ));
                }
            };
            m.insert("input".into(), input);
        }
        Api::EmbeddingsChat => {
            let messages = match &req.prompt {
                Prompt::Messages(msgs) => msgs.clone(),
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
        let v = body(&target("openai-embeddings"), &r).unwrap();
        assert_eq!(
            v,
            json!({"model": "m", "input": "hello", "truncate_prompt_tokens": -1, "dimensions": 8})
        );
        let v = body(&target("openai-embeddings-chat"), &r).unwrap();
        assert_eq!(
            v["messages"],
            json!([{"role": "user", "content": [{"type": "text", "text": "hello"}]}])
        );
        let v = body(&target("infinity-embeddings"), &r).unwrap();
        assert!(v.get("truncate_prompt_tokens").is_none());
        let v = body(&target("vllm-pooling"), &texts(&["a", "b"])).unwrap();
        assert_eq!(v["input"], json!(["a", "b"]));
        let v = body(&target("vllm-rerank"), &texts(&["q", "d1", "d2"])).unwrap();
        assert_eq!(
            (v["query"].clone(), v["documents"].clone()),
            (json!("q"), json!(["d1", "d2"]))
        );
        let e = body(&target("vllm-rerank"), &Request::text("q", 1, None)).unwrap_err();
        assert!(e.contains("random-rerank"), "{e}");
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
