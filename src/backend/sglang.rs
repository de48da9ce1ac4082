//! SGLang's native `/generate`: `{"text" | "input_ids", "sampling_params", "stream"}`;
//! streamed events carry the whole text so far and `meta_info.completion_tokens`,
//! so each chunk's new tokens are known exactly.

use serde_json::{Map, Value, json};

use super::exec::Accum;
use super::protocol::{merged_fields, object, server_error, str_field, text_prompt, unexpected};
use super::{Api, Target};
use crate::dataset::Request;
use crate::metrics::RequestError;

/// Fields that belong in `sampling_params`.
const SAMPLING: &[&str] = &[
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "ignore_eos",
    "min_new_tokens",
    "max_new_tokens",
    "stop",
    "stop_token_ids",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "n",
    "skip_special_tokens",
    "json_schema",
    "regex",
];

/// The request body.
pub fn body(target: &Target, req: &Request) -> Result<Value, String> {
    let prompt = text_prompt(target, req)?;
    let mut top = Map::new();
    top.insert(
        if prompt.is_string() {
            "text"
        } else {
            "input_ids"
        }
        .into(),
        prompt,
    );
    let mut sp = Map::new();
    if let Some(n) = req.max_tokens {
        sp.insert("max_new_tokens".into(), json!(n));
    }
    for (k, v) in merged_fields(target, req) {
        match k.as_str() {
            "max_tokens" => {
                sp.insert("max_new_tokens".into(), v);
            }
            "min_tokens" => {
                sp.insert("min_new_tokens".into(), v);
            }
            // vLLM's `--logprobs N`: SGLang's native form.
            "logprobs" => {
                top.insert("return_logprob".into(), json!(true));
                top.insert("top_logprobs_num".into(), v);
            }
            k2 if SAMPLING.contains(&k2) => {
                sp.insert(k, v);
            }
            _ => {
                top.insert(k, v);
            }
        }
    }
    top.insert("sampling_params".into(), Value::Object(sp));
    top.insert("stream".into(), json!(target.stream));
    Ok(Value::Object(top))
}

fn decode(data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let o = object(data, Api::Sglang)?;
    if let Some(e) = server_error(&o) {
        return Err(e);
    }
    let (Some(_), Some(meta)) = (o.get("text"), o.get("meta_info")) else {
        return Err(unexpected(Api::Sglang, &o, data));
    };
    let text = str_field(&o, "text", Api::Sglang)?;
    if let Some(p) = meta.get("prompt_tokens").and_then(|v| v.as_u64()) {
        acc.usage_prompt = Some(p as u32);
    }
    let count = meta
        .get("completion_tokens")
        .and_then(|v| v.as_u64())
        .map(|ct| acc.cumulative(ct as u32));
    if meta.get("finish_reason").is_some_and(|f| !f.is_null()) {
        acc.done = true;
    }
    acc.push_cumulative(t, text, count)
}

/// Decodes one streamed event.
pub fn on_event(data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let d = data.trim_ascii();
    if d == b"[DONE]" {
        acc.done = true;
        return Ok(());
    }
    if d.is_empty() {
        return Ok(());
    }
    decode(d, t, acc)
}

/// Decodes a whole (non-streamed) answer.
pub fn on_body(body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    decode(body, t, acc)?;
    acc.done = true;
    Ok(())
}
