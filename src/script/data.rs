//! Tokenizers, request sets and datasets as Lua sees them. A request set is a
//! native list that Lua indexes like an array (`reqs[1]`, `#reqs`) without copying.

use std::sync::Arc;

use mlua::{Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::core::{to_json, to_lua};
use super::opts::Opts;
use crate::dataset::random::{RandomSpec, generate};
use crate::dataset::{Prompt, Request, RequestSet};
use crate::tokenizer::Tokenizer;

/// A tokenizer in Lua: `tok:encode(s)`, `tok:decode(ids)`, `tok:count(s)`.
#[derive(Clone)]
pub struct LuaTokenizer(pub Arc<Tokenizer>);

impl UserData for LuaTokenizer {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("name", |_, t| Ok(t.0.name()));
        f.add_field_method_get("vocab_size", |_, t| Ok(t.0.vocab_size()));
    }
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("encode", |_, t, s: String| Ok(t.0.encode(&s)));
        m.add_method("decode", |_, t, ids: Vec<u32>| Ok(t.0.decode(&ids)));
        m.add_method("count", |_, t, s: String| Ok(t.0.count(&s)));
    }
}

/// A tokenizer argument: a `mb.tokenizer` object or a spec string.
pub fn tokenizer_arg(v: Value) -> mlua::Result<Arc<Tokenizer>> {
    match v {
        Value::UserData(ud) => Ok(ud.borrow::<LuaTokenizer>()?.0.clone()),
        Value::String(s) => Ok(Arc::new(
            Tokenizer::load(&s.to_str()?).map_err(mlua::Error::runtime)?,
        )),
        other => Err(mlua::Error::runtime(format!(
            "tokenizer must be a path, a model id, \"words\" or mb.tokenizer(...), got a {}",
            other.type_name()
        ))),
    }
}

/// A native request set.
#[derive(Clone)]
pub struct LuaRequests(pub RequestSet);

fn request_to_lua(lua: &Lua, r: &Request) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    match &r.prompt {
        Prompt::Text(s) => t.set("prompt", s.as_str())?,
        Prompt::Messages(m) => t.set("messages", to_lua(lua, m)?)?,
        Prompt::TokenIds(ids) => t.set("prompt_token_ids", ids.clone())?,
    }
    t.set("prompt_tokens", r.prompt_tokens)?;
    t.set("max_tokens", r.max_tokens)?;
    if let Some(extra) = &r.extra {
        t.set("body", to_lua(lua, extra)?)?;
    }
    Ok(t)
}

impl UserData for LuaRequests {
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_meta_method(MetaMethod::Len, |_, s, ()| Ok(s.0.len()));
        m.add_meta_method(MetaMethod::Index, |lua, s, i: Value| match i {
            Value::Integer(i) if i >= 1 && (i as usize) <= s.0.len() => {
                Ok(Value::Table(request_to_lua(lua, &s.0[i as usize - 1])?))
            }
            _ => Ok(Value::Nil),
        });
        m.add_meta_method(MetaMethod::ToString, |_, s, ()| {
            Ok(format!("requests({})", s.0.len()))
        });
    }
}

const REQUEST_KEYS: [&str; 6] = [
    "prompt",
    "messages",
    "prompt_token_ids",
    "prompt_tokens",
    "max_tokens",
    "body",
];

/// Converts one Lua request table (`prompt`/`messages`/`prompt_token_ids`,
/// `prompt_tokens`, `max_tokens`, `body`) to a request.
pub fn request_from_lua(lua: &Lua, t: Table, what: &str, tok: &Tokenizer) -> mlua::Result<Request> {
    let o = Opts::new(lua, t, what);
    let prompt: Option<String> = o.get("prompt")?;
    let messages = o.value("messages")?;
    let ids: Option<Vec<u32>> = o.get("prompt_token_ids")?;
    let prompt_tokens: Option<u32> = o.get("prompt_tokens")?;
    let max_tokens: Option<u32> = o.get("max_tokens")?;
    let body = o.value("body")?;
    o.finish()?;
    let (prompt, counted) = match (prompt, messages, ids) {
        (Some(p), Value::Nil, None) => {
            let n = tok.count(&p) as u32;
            (Prompt::Text(p), n)
        }
        (None, m @ Value::Table(_), None) => {
            let j = to_json(lua, m)?;
            let serde_json::Value::Array(list) = &j else {
                return Err(mlua::Error::runtime(format!(
                    "{what}: messages must be a list of {{role=..., content=...}}"
                )));
            };
            let n = list
                .iter()
                .map(|m| match &m["content"] {
                    serde_json::Value::String(s) => tok.count(s),
                    serde_json::Value::Array(parts) => parts
                        .iter()
                        .filter_map(|p| p["text"].as_str())
                        .map(|s| tok.count(s))
                        .sum(),
                    _ => 0,
                })
                .sum::<usize>() as u32;
            (Prompt::Messages(j), n)
        }
        (None, Value::Nil, Some(ids)) => {
            let n = ids.len() as u32;
            (Prompt::TokenIds(ids), n)
        }
        _ => {
            return Err(mlua::Error::runtime(format!(
                "{what}: give exactly one of prompt, messages or prompt_token_ids (valid fields: {})",
                REQUEST_KEYS.join(", ")
            )));
        }
    };
    let extra = match body {
        Value::Nil => None,
        v => match to_json(lua, v)? {
            serde_json::Value::Object(m) => Some(m),
            _ => {
                return Err(mlua::Error::runtime(format!(
                    "{what}: body must be a table of fields"
                )));
            }
        },
    };
    Ok(Request {
        prompt,
        prompt_tokens: prompt_tokens.unwrap_or(counted),
        max_tokens,
        extra,
    })
}

/// Requests from a Lua value: a native set, a list of request tables, or one table.
pub fn requests_arg(lua: &Lua, v: Value, tok: &Tokenizer) -> mlua::Result<RequestSet> {
    match v {
        Value::UserData(ud) => Ok(ud.borrow::<LuaRequests>()?.0.clone()),
        Value::Table(t) => {
            if t.raw_len() == 0
                && (t.contains_key("prompt")?
                    || t.contains_key("messages")?
                    || t.contains_key("prompt_token_ids")?)
            {
                return Ok(Arc::new(vec![request_from_lua(lua, t, "request", tok)?]));
            }
            let mut out = Vec::with_capacity(t.raw_len());
            for (i, item) in t.sequence_values::<Value>().enumerate() {
                let what = format!("request {}", i + 1);
                match item? {
                    Value::Table(rt) => out.push(request_from_lua(lua, rt, &what, tok)?),
                    Value::String(s) => {
                        let s = s.to_str()?.to_string();
                        let n = tok.count(&s) as u32;
                        out.push(Request::text(s, n, None));
                    }
                    other => {
                        return Err(mlua::Error::runtime(format!(
                            "{what}: expected a table or a string, got a {}",
                            other.type_name()
                        )));
                    }
                }
            }
            if out.is_empty() {
                return Err(mlua::Error::runtime("requests: the list is empty"));
            }
            Ok(Arc::new(out))
        }
        other => Err(mlua::Error::runtime(format!(
            "requests must be a request set (mb.dataset...) or a list of tables, got a {}",
            other.type_name()
        ))),
    }
}

/// Registers `tokenizer`, `requests` and `dataset_random`.
pub fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    m.set(
        "tokenizer",
        lua.create_function(|_, v: Value| Ok(LuaTokenizer(tokenizer_arg(v)?)))?,
    )?;
    m.set(
        "requests",
        lua.create_function(|lua, (v, tok): (Value, Option<Value>)| {
            let tok = match tok {
                None | Some(Value::Nil) => Arc::new(Tokenizer::Words),
                Some(t) => tokenizer_arg(t)?,
            };
            Ok(LuaRequests(requests_arg(lua, v, &tok)?))
        })?,
    )?;
    m.set(
        "dataset_random",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.dataset.random");
            let d = RandomSpec::default();
            let tok = match o.value("tokenizer")? {
                Value::Nil => Arc::new(Tokenizer::Words),
                v => tokenizer_arg(v)?,
            };
            let spec = RandomSpec {
                n: o.get("n")?.unwrap_or(d.n),
                input_len: o.get("input_len")?.unwrap_or(d.input_len),
                output_len: o.get("output_len")?.unwrap_or(d.output_len),
                range_ratio: o.get("range_ratio")?.unwrap_or(d.range_ratio),
                prefix_len: o.get("prefix_len")?.unwrap_or(d.prefix_len),
                seed: o.get("seed")?.unwrap_or(d.seed),
            };
            o.finish()?;
            if spec.n == 0 {
                return Err(mlua::Error::runtime(
                    "mb.dataset.random: n must be at least 1",
                ));
            }
            Ok(LuaRequests(Arc::new(
                generate(&tok, &spec).map_err(mlua::Error::runtime)?,
            )))
        })?,
    )?;
    Ok(())
}
