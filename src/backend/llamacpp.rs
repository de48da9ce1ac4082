//! llama.cpp server's native `/completion`: `{"prompt", "n_predict", "stream"}`;
//! events carry `content` (new text; `tokens` with the new ids in newer versions;
//! a cumulative `tokens_predicted` in late-2024 ones), and the last one `stop: true` with `tokens_predicted`, `tokens_evaluated` and the
//! server's `timings`.

use serde_json::{Map, Value, json};

use super::exec::{Accum, ServerTiming};
use super::protocol::{merged_fields, object, server_error, str_field, text_prompt, unexpected};
use super::{Api, Target};
use crate::dataset::Request;
use crate::metrics::RequestError;

/// The request body.
pub fn body(target: &Target, req: &Request) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("prompt".into(), text_prompt(target, req)?);
    if let Some(n) = req.max_tokens {
        m.insert("n_predict".into(), json!(n));
    }
    m.insert("stream".into(), json!(target.stream));
    for (k, v) in merged_fields(target, req) {
        // llama.cpp's own names for vLLM's fields.
        let name = match k.as_str() {
            "max_tokens" => "n_predict".to_string(),
            "logprobs" => "n_probs".to_string(),
            "repetition_penalty" => "repeat_penalty".to_string(),
            _ => k,
        };
        m.insert(name, v);
    }
    Ok(Value::Object(m))
}

/// Decodes one event (also a whole non-streamed answer).
pub fn on_event(data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let d = data.trim_ascii();
    if d.is_empty() || d == b"[DONE]" {
        return Ok(());
    }
    let o: Map<String, Value> = object(d, Api::LlamaCpp)?;
    if let Some(e) = server_error(&o) {
        return Err(e);
    }
    if !o.contains_key("content") {
        return Err(unexpected(Api::LlamaCpp, &o, d));
    }
    let content = str_field(&o, "content", Api::LlamaCpp)?;
    let ids = o
        .get("tokens")
        .and_then(|v| v.as_array())
        .map(|a| a.len() as u32);
    let timings = o.get("timings");
    let predicted = o
        .get("tokens_predicted")
        .and_then(|v| v.as_u64())
        .or_else(|| {
            timings
                .and_then(|t| t.get("predicted_n"))
                .and_then(|v| v.as_u64())
        });
    let evaluated = o
        .get("tokens_evaluated")
        .and_then(|v| v.as_u64())
        .or_else(|| {
            timings
                .and_then(|t| t.get("prompt_n"))
                .and_then(|v| v.as_u64())
        });
    let stop = o.get("stop").and_then(|v| v.as_bool()).unwrap_or(false);
    // `tokens` lists this event's new token ids: the chunk's own count. Servers
    // without it (llama.cpp before 2025) send a cumulative `tokens_predicted` on
    // every event; its delta is the chunk's count (a held-back stop word arrives as
    // an event with a token and no text). On the `stop` event alone it is only the
    // total.
    let count = ids.or_else(|| {
        let n = o.get("tokens_predicted").and_then(|v| v.as_u64())?;
        (!stop || acc.counts_cumulative()).then(|| acc.cumulative(n as u32))
    });
    acc.push_chunk(t, content, "", false, count);
    if let Some(timing) = timings.and_then(ServerTiming::from_llamacpp) {
        acc.server_timing = Some(timing);
    }
    if let Some(n) = evaluated {
        acc.usage_prompt = Some(n as u32);
    }
    if stop {
        if let Some(n) = predicted {
            acc.usage_completion = Some(n as u32);
        }
        acc.done = true;
    }
    Ok(())
}
