//! One entry point per step of a request — build the body, decode a streamed event,
//! decode a whole answer — dispatched to the backend's own file (`openai.rs`,
//! `responses.rs`, `pooling.rs`, `sglang.rs`, `tgi.rs`, `trtllm.rs`, `llamacpp.rs`, `mii.rs`), plus the helpers
//! they share for clear protocol errors.

use serde_json::{Map, Value};

use super::exec::Accum;
use super::{Api, Target};
use crate::dataset::Request;
use crate::metrics::{ErrorKind, RequestError};

/// The `content-type` of a request body for `api`.
pub fn content_type(api: Api) -> std::borrow::Cow<'static, str> {
    match api {
        Api::Audio => super::audio::content_type().into(),
        _ => "application/json".into(),
    }
}

/// Builds the body of `req`, the `index`-th of its run, for `target`'s backend:
/// JSON, or a multipart form for the transcription API (the index only matters to
/// `openai-embeddings-vlm2vec`, as in vLLM).
pub fn build_body(target: &Target, req: &Request, index: u64) -> Result<Vec<u8>, String> {
    let v = match target.backend.api {
        Api::Audio => return super::audio::body(target, req),
        Api::Completions | Api::Chat => super::openai::body(target, req)?,
        Api::Responses => super::responses::body(target, req)?,
        api if api.pooling() => super::pooling::body(target, req, index)?,
        Api::Sglang => super::sglang::body(target, req)?,
        Api::Tgi => super::tgi::body(target, req)?,
        Api::TrtLlm => super::trtllm::body(target, req)?,
        Api::LlamaCpp => super::llamacpp::body(target, req)?,
        Api::Mii => super::mii::body(target, req)?,
        _ => unreachable!("every API is matched above"),
    };
    serde_json::to_vec(&v).map_err(|e| e.to_string())
}

/// Decodes one streamed event payload that arrived at `t`.
pub fn on_event(api: Api, data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    match api {
        Api::Completions | Api::Chat => super::openai::on_event(api, data, t, acc),
        Api::Sglang => super::sglang::on_event(data, t, acc),
        Api::Tgi => super::tgi::on_event(data, t, acc),
        Api::TrtLlm => super::trtllm::on_event(data, t, acc),
        Api::LlamaCpp => super::llamacpp::on_event(data, t, acc),
        Api::Responses => super::responses::on_event(data, t, acc),
        Api::Audio => super::audio::on_event(data, t, acc),
        _ => on_body(api, data, t, acc),
    }
}

/// Decodes a complete (non-streamed) answer that arrived at `t`.
pub fn on_body(api: Api, body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    match api {
        Api::Completions | Api::Chat => super::openai::on_body(api, body, t, acc),
        Api::Responses => super::responses::on_body(body, t, acc),
        Api::Audio => super::audio::on_body(body, t, acc),
        api if api.pooling() => super::pooling::on_body(api, body, t, acc),
        Api::Sglang => super::sglang::on_body(body, t, acc),
        Api::Tgi => super::tgi::on_body(body, t, acc),
        Api::TrtLlm => super::trtllm::on_event(body, t, acc),
        Api::LlamaCpp => super::llamacpp::on_event(body, t, acc),
        Api::Mii => super::mii::on_body(body, t, acc),
        _ => unreachable!("every API is matched above"),
    }
}

/// The body fields every server of `api` must accept; any other field sent is
/// named when a server rejects a request without saying why.
pub fn core_fields(api: Api) -> &'static [&'static str] {
    match api {
        Api::Completions => &["model", "prompt", "max_tokens", "stream"],
        Api::Chat => &[
            "model",
            "messages",
            "max_completion_tokens",
            "max_tokens",
            "stream",
        ],
        Api::Embeddings | Api::Infinity | Api::Pooling => &["model", "input"],
        Api::EmbeddingsChat => &["model", "messages"],
        Api::Rerank => &["model", "query", "documents"],
        Api::Responses => &["model", "input", "max_output_tokens", "stream"],
        Api::Audio => &["file", "model", "max_completion_tokens", "stream"],
        Api::Sglang => &["text", "input_ids", "sampling_params", "stream"],
        Api::Tgi => &["inputs", "parameters", "stream"],
        Api::TrtLlm => &["text_input", "max_tokens", "stream"],
        Api::LlamaCpp => &["prompt", "n_predict", "stream"],
        Api::Mii => &["prompts", "max_length"],
    }
}

/// For a request a server rejected without a reason: the headers it carried
/// (values of credentials hidden) and its body fields beyond the protocol's core.
pub fn what_was_sent(target: &Target, headers: &http::HeaderMap, body: &[u8]) -> String {
    let hs: Vec<String> = headers
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "host" | "content-type" | "content-length"))
        .map(|(k, v)| {
            if k == "authorization" || k.as_str().contains("key") || k.as_str().contains("token") {
                format!("{k}: (hidden)")
            } else {
                format!("{k}: {}", v.to_str().unwrap_or("?"))
            }
        })
        .collect();
    let core = core_fields(target.backend.api);
    let extra: Vec<String> = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.as_object().cloned())
        .map(|o| {
            o.keys()
                .filter(|k| !core.contains(&k.as_str()))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let mut s = format!("the request sent the headers [{}]", hs.join(", "));
    if !extra.is_empty() {
        s.push_str(&format!(
            " and body fields beyond {}'s core [{}]",
            target.backend.name,
            extra.join(", ")
        ));
    }
    s.push_str(
        "; a server may reject one of these (x-request-id: servers such as llama-cpp-python take only UUIDs, \
         the default without --request-id-prefix; extra fields come from --extra-body, sampling flags or \
         stream_options)",
    );
    s
}

/// A protocol error.
pub fn protocol(msg: impl Into<String>) -> RequestError {
    RequestError::new(ErrorKind::Protocol, msg)
}

/// The start of a payload, for messages.
pub fn snippet(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(&data[..data.len().min(160)]).into_owned();
    if data.len() > 160 {
        format!("{s}...")
    } else {
        s
    }
}

/// Parses a JSON object or explains why not.
pub fn object(data: &[u8], what: Api) -> Result<Map<String, Value>, RequestError> {
    match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(protocol(format!(
            "expected {}, got JSON that is not an object: {}",
            what.describe(),
            snippet(data)
        ))),
        Err(e) => Err(protocol(format!(
            "malformed data (not valid JSON: {e}): {}",
            snippet(data)
        ))),
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

/// A server error object found in an answer, as a request error.
pub fn server_error(o: &Map<String, Value>) -> Option<RequestError> {
    let e = o.get("error").filter(|e| !e.is_null())?;
    Some(RequestError::new(
        ErrorKind::Server,
        format!("server error: {}", error_message(e)),
    ))
}

/// Which protocol an object looks like, and the backend that speaks it.
pub fn looks_like(o: &Map<String, Value>) -> Option<(&'static str, &'static str)> {
    let has = |k: &str| o.contains_key(k);
    let choice0 = o
        .get("choices")
        .and_then(|c| c.as_array())
        .and_then(|c| c.first());
    if let Some(c) = choice0 {
        if c.get("delta").is_some() || c.get("message").is_some() {
            return Some(("OpenAI chat completions", "openai-chat"));
        }
        if c.get("text").is_some() {
            return Some(("OpenAI completions", "openai"));
        }
    }
    if has("token") || (has("generated_text") && has("details")) {
        Some(("TGI's generate_stream", "tgi"))
    } else if has("meta_info") {
        Some(("SGLang's native /generate", "sglang"))
    } else if has("text_output") {
        Some(("TensorRT-LLM", "tensorrt-llm"))
    } else if has("content") && has("stop") {
        Some(("llama.cpp's /completion", "llama.cpp"))
    } else if o
        .get("data")
        .and_then(|d| d.as_array())
        .and_then(|d| d.first())
        .is_some_and(|x| x.get("embedding").is_some())
    {
        Some(("OpenAI embeddings", "openai-embeddings"))
    } else if o
        .get("data")
        .and_then(|d| d.as_array())
        .and_then(|d| d.first())
        .is_some_and(|x| x.get("object").and_then(|v| v.as_str()) == Some("pooling"))
    {
        Some(("vLLM's /pooling", "vllm-pooling"))
    } else if o
        .get("results")
        .and_then(|d| d.as_array())
        .and_then(|d| d.first())
        .is_some_and(|x| x.get("relevance_score").is_some())
    {
        Some(("a rerank answer", "vllm-rerank"))
    } else if has("type")
        && o["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("response."))
        || o.get("object").and_then(|v| v.as_str()) == Some("response")
    {
        Some(("the OpenAI Responses API", "openai-responses"))
    } else {
        None
    }
}

/// The error for an answer in the wrong shape: what was expected, what arrived.
pub fn unexpected(expected: Api, o: &Map<String, Value>, data: &[u8]) -> RequestError {
    let keys: Vec<&str> = o.keys().map(|k| k.as_str()).take(8).collect();
    let guess = match looks_like(o) {
        Some((name, backend)) => format!("what looks like {name} (use --backend {backend})"),
        None => format!("an object with keys [{}]", keys.join(", ")),
    };
    protocol(format!(
        "expected {}, got {guess}: {}",
        expected.describe(),
        snippet(data)
    ))
}

/// A string field, or "" if missing/null; an error if it has another type.
pub fn str_field<'a>(
    o: &'a Map<String, Value>,
    k: &str,
    api: Api,
) -> Result<&'a str, RequestError> {
    match o.get(k) {
        None | Some(Value::Null) => Ok(""),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(protocol(format!(
            "{}: field '{k}' should be text, got {other}",
            api.describe()
        ))),
    }
}

/// A token count `key` of a `usage` object, if the server reported one.
pub fn usage_count(usage: Option<&Value>, key: &str) -> Option<u32> {
    usage
        .and_then(|u| u.get(key))
        .and_then(|v| v.as_u64())
        .map(|v| v as u32)
}

/// Moves the sampling fields of `target.body` and `req.extra` into `out` (optionally
/// renamed), for backends whose sampling parameters live in a nested object.
pub fn merged_fields(target: &Target, req: &Request) -> Map<String, Value> {
    let mut m = target.body.clone();
    if let Some(e) = &req.extra {
        for (k, v) in e {
            m.insert(k.clone(), v.clone());
        }
    }
    m
}

/// The prompt as text, or an error naming the backend (for text-only backends).
pub fn text_prompt(target: &Target, req: &Request) -> Result<Value, String> {
    use crate::dataset::Prompt;
    match &req.prompt {
        Prompt::Text(t) => Ok(Value::String(t.clone())),
        Prompt::Parts(p) => Ok(Value::String(crate::dataset::join(p))),
        Prompt::TokenIds(ids) => Ok(serde_json::json!(ids)),
        Prompt::Texts(_) => Err(format!(
            "backend '{}' takes one prompt per request, but a request has several texts (a batch or a rerank \
             query); use a pooling backend (openai-embeddings, vllm-rerank)",
            target.backend.name
        )),
        Prompt::Messages(_) => Err(format!(
            "backend '{}' takes text prompts, but a request has chat messages; use --apply-chat-template \
             (or a chat backend such as openai-chat)",
            target.backend.name
        )),
        Prompt::Audio(_) => Err(format!(
            "backend '{}' takes text prompts, but a request has audio; use --backend openai-audio \
             (transcriptions) or openai-chat (audio chat models)",
            target.backend.name
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// vLLM's sampling flags (`--logprobs`, `--repetition-penalty`, a LoRA module as
    /// the request's model) land where each API reads them.
    #[test]
    fn sampling_fields_go_where_each_api_reads_them() {
        let body = |backend: &str| -> Value {
            let mut t = crate::backend::test_target(backend, "base");
            t.body.insert("logprobs".into(), json!(5));
            t.body.insert("repetition_penalty".into(), json!(1.1));
            let mut r = Request::text("hi", 1, Some(4));
            r.extra = Some(serde_json::from_str(r#"{"model": "lora-a"}"#).unwrap());
            serde_json::from_slice(&build_body(&t, &r, 0).unwrap()).unwrap()
        };
        let v = body("vllm");
        assert_eq!(
            (v["logprobs"].clone(), v["model"].clone()),
            (json!(5), json!("lora-a"))
        );
        assert_eq!(v["repetition_penalty"], 1.1);
        let v = body("openai-chat");
        assert_eq!(
            (v["logprobs"].clone(), v["top_logprobs"].clone()),
            (json!(true), json!(5))
        );
        assert_eq!(v["model"], "lora-a");
        let v = body("tgi");
        assert_eq!(v["parameters"]["top_n_tokens"], 5);
        assert_eq!(v["parameters"]["repetition_penalty"], 1.1);
        let v = body("sglang");
        assert_eq!(
            (v["return_logprob"].clone(), v["top_logprobs_num"].clone()),
            (json!(true), json!(5))
        );
        assert_eq!(v["sampling_params"]["repetition_penalty"], 1.1);
        let v = body("llama.cpp");
        assert_eq!(
            (v["n_probs"].clone(), v["repeat_penalty"].clone()),
            (json!(5), json!(1.1))
        );
    }
}
