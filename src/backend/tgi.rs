//! Text Generation Inference's `/generate_stream`: `{"inputs", "parameters"}`;
//! every event is one token (`token.text`, `token.special`), the last one carries
//! `generated_text` and `details` (token counts). `/generate` answers in one JSON.

use serde_json::{Map, Value, json};

use super::exec::Accum;
use super::protocol::{merged_fields, object, protocol, text_prompt, unexpected};
use super::{Api, Target};
use crate::dataset::Request;
use crate::metrics::{ErrorKind, RequestError};

/// The request body. TGI needs a positive temperature to sample, so a temperature
/// of 0 means greedy decoding (no `temperature`, `do_sample: false`).
pub fn body(target: &Target, req: &Request) -> Result<Value, String> {
    let mut params = Map::new();
    if let Some(n) = req.max_tokens {
        params.insert("max_new_tokens".into(), json!(n));
    }
    params.insert("details".into(), json!(true));
    for (k, v) in merged_fields(target, req) {
        match k.as_str() {
            "temperature" => {
                let t = v.as_f64().unwrap_or(0.0);
                params.insert("do_sample".into(), json!(t > 0.0));
                if t > 0.0 {
                    params.insert("temperature".into(), v);
                }
            }
            // vLLM's benchmark sends TGI this name for ignore_eos.
            "ignore_eos" => {
                params.insert("ignore_eos_token".into(), v);
            }
            "max_tokens" => {
                params.insert("max_new_tokens".into(), v);
            }
            // vLLM's `--logprobs N`: TGI returns the N most likely tokens per step.
            "logprobs" => {
                params.insert("top_n_tokens".into(), v);
            }
            _ => {
                params.insert(k, v);
            }
        }
    }
    Ok(
        json!({ "inputs": text_prompt(target, req)?, "parameters": params, "stream": target.stream }),
    )
}

fn tgi_error(o: &Map<String, Value>) -> Option<RequestError> {
    let e = o.get("error")?;
    let kind = o
        .get("error_type")
        .and_then(|v| v.as_str())
        .unwrap_or("error");
    Some(RequestError::new(
        ErrorKind::Server,
        format!(
            "server error ({kind}): {}",
            super::protocol::error_message(e)
        ),
    ))
}

fn details(o: &Map<String, Value>, acc: &mut Accum) {
    if let Some(d) = o.get("details").filter(|d| d.is_object()) {
        if let Some(n) = d.get("generated_tokens").and_then(|v| v.as_u64()) {
            acc.usage_completion = Some(n as u32);
        }
        if let Some(n) = d.get("input_length").and_then(|v| v.as_u64()) {
            acc.usage_prompt = Some(n as u32);
        }
    }
}

/// Decodes one streamed event: exactly one token.
pub fn on_event(data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let d = data.trim_ascii();
    if d.is_empty() || d == b"[DONE]" {
        return Ok(());
    }
    let o = object(d, Api::Tgi)?;
    if let Some(e) = tgi_error(&o) {
        return Err(e);
    }
    let Some(token) = o.get("token").and_then(|v| v.as_object()) else {
        return Err(unexpected(Api::Tgi, &o, d));
    };
    let special = token
        .get("special")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let text = token
        .get("text")
        .and_then(|v| v.as_str())
        .ok_or_else(|| protocol("TGI event without token.text"))?;
    // One token per event: each chunk's count is the server's.
    acc.push_chunk(t, if special { "" } else { text }, "", special, Some(1));
    details(&o, acc);
    // The last event carries the whole `generated_text` (null before).
    if o.get("generated_text").is_some_and(|g| g.is_string()) {
        acc.done = true;
    }
    Ok(())
}

/// Decodes `/generate`'s single answer.
pub fn on_body(body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let o = match serde_json::from_slice::<Value>(body) {
        // /generate may answer a one-element list.
        Ok(Value::Array(mut a)) if a.len() == 1 && a[0].is_object() => match a.remove(0) {
            Value::Object(o) => o,
            _ => unreachable!(),
        },
        _ => object(body, Api::Tgi)?,
    };
    if let Some(e) = tgi_error(&o) {
        return Err(e);
    }
    let Some(text) = o.get("generated_text").and_then(|v| v.as_str()) else {
        return Err(unexpected(Api::Tgi, &o, body));
    };
    details(&o, acc);
    acc.done = true;
    acc.push_chunk(t, text, "", false, None);
    Ok(())
}
