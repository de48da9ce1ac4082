//! DeepSpeed-MII's REST endpoint: one JSON answer (`text[0]` or
//! `choices[0].text`), no streaming, so TTFT is the whole answer's latency.

use serde_json::{Map, Value, json};

use super::exec::Accum;
use super::protocol::{merged_fields, object, server_error, text_prompt, unexpected};
use super::{Api, Target};
use crate::dataset::Request;
use crate::metrics::RequestError;

/// The request body (vLLM's: temperature 0.01, top_p 1.0 unless given).
pub fn body(target: &Target, req: &Request) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("model".into(), json!(target.payload_model()));
    m.insert("prompt".into(), text_prompt(target, req)?);
    if let Some(n) = req.max_tokens {
        m.insert("max_tokens".into(), json!(n));
    }
    m.insert("temperature".into(), json!(0.01));
    m.insert("top_p".into(), json!(1.0));
    for (k, v) in merged_fields(target, req) {
        if k == "temperature" && v.as_f64() == Some(0.0) {
            continue; // MII samples; keep vLLM's 0.01
        }
        m.insert(k, v);
    }
    Ok(Value::Object(m))
}

/// Decodes the answer.
pub fn on_body(body: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let o = object(body, Api::Mii)?;
    if let Some(e) = server_error(&o) {
        return Err(e);
    }
    let text = o
        .get("choices")
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("text"))
        .or_else(|| o.get("text").and_then(|t| t.get(0)))
        .and_then(|v| v.as_str());
    let Some(text) = text else {
        return Err(unexpected(Api::Mii, &o, body));
    };
    acc.done = true;
    acc.push_chunk(t, text, "", false, None);
    Ok(())
}
