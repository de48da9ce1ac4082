//! TensorRT-LLM through Triton's generate extension
//! (`/v2/models/{model}/generate_stream`): `{"text_input", "max_tokens", ...}`;
//! each event's `text_output` is the new text. moonbench asks for
//! `accumulate_tokens: false` so the text is not repeated (vLLM asks for true and
//! then appends whole texts, which inflates its counts).

use serde_json::{Map, Value, json};

use super::exec::Accum;
use super::protocol::{merged_fields, object, server_error, str_field, text_prompt, unexpected};
use super::{Api, Target};
use crate::dataset::Request;
use crate::metrics::RequestError;

/// The request body (`ignore_eos` becomes `min_length = max_tokens`, as vLLM).
pub fn body(target: &Target, req: &Request) -> Result<Value, String> {
    let mut m = Map::new();
    m.insert("text_input".into(), text_prompt(target, req)?);
    if let Some(n) = req.max_tokens {
        m.insert("max_tokens".into(), json!(n));
    }
    m.insert("stream".into(), json!(target.stream));
    m.insert("accumulate_tokens".into(), json!(false));
    for (k, v) in merged_fields(target, req) {
        if k == "ignore_eos" {
            if v.as_bool() == Some(true) {
                if let Some(n) = req.max_tokens {
                    m.insert("min_length".into(), json!(n));
                }
            }
        } else {
            m.insert(k, v);
        }
    }
    Ok(Value::Object(m))
}

/// Decodes one event (also a whole non-streamed answer).
pub fn on_event(data: &[u8], t: u64, acc: &mut Accum) -> Result<(), RequestError> {
    let d = data.trim_ascii();
    if d.is_empty() || d == b"[DONE]" {
        return Ok(());
    }
    let o = object(d, Api::TrtLlm)?;
    if let Some(e) = server_error(&o) {
        return Err(e);
    }
    if !o.contains_key("text_output") {
        return Err(unexpected(Api::TrtLlm, &o, d));
    }
    let text = str_field(&o, "text_output", Api::TrtLlm)?;
    // Triton's generate_stream has no end marker: the end of the stream is the end.
    acc.no_finish_signal = true;
    acc.push_chunk(t, text, "", false, None);
    Ok(())
}
