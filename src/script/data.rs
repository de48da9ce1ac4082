//! Tokenizers, request sets and datasets as Lua sees them. A request set is a
//! native list that Lua indexes like an array (`reqs[1]`, `#reqs`) without copying.

use std::sync::Arc;

use mlua::{Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::core::{to_json, to_lua};
use super::opts::Opts;
use std::path::Path;

use crate::dataset::random::{self, RandomSpec};
use crate::dataset::{Prompt, Request, RequestSet};
use crate::dataset::{burstgpt, custom, mooncake, prefix_repetition, sharegpt, sonnet};
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
        m.add_method(
            "apply_chat_template",
            |lua, t, (messages, opts): (Value, Option<Table>)| {
                let msgs = to_json(lua, messages)?;
                let mut add = true;
                let mut extra = serde_json::Map::new();
                if let Some(o) = opts {
                    for pair in o.pairs::<String, Value>() {
                        let (k, v) = pair?;
                        if k == "add_generation_prompt" {
                            add = matches!(v, Value::Boolean(true));
                        } else {
                            extra.insert(k, to_json(lua, v)?);
                        }
                    }
                }
                t.0.apply_chat_template(&msgs, add, &extra)
                    .map_err(mlua::Error::runtime)
            },
        );
        m.add_method("has_chat_template", |_, t, ()| Ok(t.0.has_chat_template()));
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
        Prompt::Parts(p) => t.set("prompt", p.concat())?,
        Prompt::Messages(m) => t.set("messages", to_lua(lua, m)?)?,
        Prompt::TokenIds(ids) => t.set("prompt_token_ids", ids.clone())?,
    }
    t.set("prompt_tokens", r.prompt_tokens)?;
    t.set("max_tokens", r.max_tokens)?;
    if let Some(extra) = &r.extra {
        t.set("body", to_lua(lua, extra)?)?;
    }
    t.set("timestamp", r.timestamp)?;
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
        m.add_method("timestamps", |_, s, ()| {
            let ts: Option<Vec<f64>> = s.0.iter().map(|r| r.timestamp).collect();
            Ok(ts)
        });
        m.add_method("to_token_ids", |_, s, tok: Value| {
            let tok = tokenizer_arg(tok)?;
            let mut reqs = s.0.as_ref().clone();
            crate::dataset::to_token_ids(&mut reqs, &tok).map_err(mlua::Error::runtime)?;
            Ok(LuaRequests(Arc::new(reqs)))
        });
        m.add_method("apply_chat_template", |_, s, tok: Value| {
            let tok = tokenizer_arg(tok)?;
            let mut reqs = s.0.as_ref().clone();
            crate::dataset::apply_chat_template(&mut reqs, &tok).map_err(mlua::Error::runtime)?;
            Ok(LuaRequests(Arc::new(reqs)))
        });
    }
}

const REQUEST_KEYS: [&str; 7] = [
    "prompt",
    "messages",
    "prompt_token_ids",
    "prompt_tokens",
    "max_tokens",
    "body",
    "timestamp",
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
    let timestamp: Option<f64> = o.get("timestamp")?;
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
        timestamp,
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

/// The `tokenizer` option of a dataset (default: the word tokenizer).
fn tok_opt(o: &Opts<'_>) -> mlua::Result<Arc<Tokenizer>> {
    match o.value("tokenizer")? {
        Value::Nil => Ok(Arc::new(Tokenizer::words())),
        v => tokenizer_arg(v),
    }
}

/// Wraps a dataset's result as a request set; errors are prefixed with `what`.
fn set(what: &str, r: Result<Vec<Request>, String>) -> mlua::Result<LuaRequests> {
    r.map(|v| LuaRequests(Arc::new(v)))
        .map_err(|e| mlua::Error::runtime(format!("{what}: {e}")))
}

/// Registers `tokenizer`, `requests` and the `dataset_*` constructors.
pub fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    m.set(
        "tokenizer",
        lua.create_function(|_, v: Value| Ok(LuaTokenizer(tokenizer_arg(v)?)))?,
    )?;
    m.set(
        "requests",
        lua.create_function(|lua, (v, tok): (Value, Option<Value>)| {
            let tok = match tok {
                None | Some(Value::Nil) => Arc::new(Tokenizer::words()),
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
            let tok = tok_opt(&o)?;
            let spec = RandomSpec {
                n: o.get("n")?.unwrap_or(d.n),
                input_len: o.get("input_len")?.unwrap_or(d.input_len),
                output_len: o.get("output_len")?.unwrap_or(d.output_len),
                range_ratio: o.get("range_ratio")?.unwrap_or(d.range_ratio),
                prefix_len: o.get("prefix_len")?.unwrap_or(d.prefix_len),
                seed: o.get("seed")?.unwrap_or(d.seed),
                token_ids: o.get("token_ids")?.unwrap_or(false),
            };
            o.finish()?;
            if spec.n == 0 {
                return Err(mlua::Error::runtime(
                    "mb.dataset.random: n must be at least 1",
                ));
            }
            set("mb.dataset.random", random::generate(&tok, &spec))
        })?,
    )?;
    m.set(
        "dataset_sharegpt",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.dataset.sharegpt");
            let d = sharegpt::ShareGptSpec::default();
            let path: String = o.req("path")?;
            let tok = tok_opt(&o)?;
            let spec = sharegpt::ShareGptSpec {
                n: o.get("n")?.unwrap_or(d.n),
                output_len: o.get("output_len")?,
                seed: o.get("seed")?.unwrap_or(d.seed),
                oversample: o.get("oversample")?.unwrap_or(true),
                min_len: o.get("min_len")?.unwrap_or(d.min_len),
                max_prompt_len: o.get("max_prompt_len")?.unwrap_or(d.max_prompt_len),
                max_total_len: o.get("max_total_len")?.unwrap_or(d.max_total_len),
            };
            o.finish()?;
            set(
                "mb.dataset.sharegpt",
                sharegpt::generate(&tok, Path::new(&path), &spec),
            )
        })?,
    )?;
    m.set(
        "dataset_sonnet",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.dataset.sonnet");
            let d = sonnet::SonnetSpec::default();
            let path: Option<String> = o.get("path")?;
            let tok = tok_opt(&o)?;
            let spec = sonnet::SonnetSpec {
                n: o.get("n")?.unwrap_or(d.n),
                input_len: o.get("input_len")?.unwrap_or(d.input_len),
                output_len: o.get("output_len")?.unwrap_or(d.output_len),
                prefix_len: o.get("prefix_len")?.unwrap_or(d.prefix_len),
                seed: o.get("seed")?.unwrap_or(d.seed),
                send_templated: !o.get::<bool>("chat")?.unwrap_or(false),
            };
            o.finish()?;
            set(
                "mb.dataset.sonnet",
                sonnet::generate(&tok, path.as_deref().map(Path::new), &spec),
            )
        })?,
    )?;
    m.set(
        "dataset_burstgpt",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.dataset.burstgpt");
            let d = burstgpt::BurstGptSpec::default();
            let path: String = o.req("path")?;
            let tok = tok_opt(&o)?;
            let spec = burstgpt::BurstGptSpec {
                n: o.get("n")?.unwrap_or(d.n),
                seed: o.get("seed")?.unwrap_or(d.seed),
                model: o.get("model")?.unwrap_or(d.model),
                use_timestamps: o.get("use_timestamps")?.unwrap_or(false),
                token_ids: o.get("token_ids")?.unwrap_or(false),
            };
            o.finish()?;
            set(
                "mb.dataset.burstgpt",
                burstgpt::generate(&tok, Path::new(&path), &spec),
            )
        })?,
    )?;
    m.set(
        "dataset_custom",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.dataset.custom");
            let d = custom::CustomSpec::default();
            let path: String = o.req("path")?;
            let tok = tok_opt(&o)?;
            let out: Option<i64> = o.get("output_len")?;
            let spec = custom::CustomSpec {
                n: o.get("n")?,
                output_len: match out {
                    None => d.output_len,
                    Some(v) if v < 0 => None,
                    Some(v) => Some(v as u32),
                },
                shuffle: o.get("shuffle")?.unwrap_or(true),
                seed: o.get("seed")?.unwrap_or(d.seed),
            };
            o.finish()?;
            set(
                "mb.dataset.custom",
                custom::generate(&tok, Path::new(&path), &spec),
            )
        })?,
    )?;
    m.set(
        "dataset_prefix_repetition",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.dataset.prefix_repetition");
            let d = prefix_repetition::PrefixRepetitionSpec::default();
            let tok = tok_opt(&o)?;
            let spec = prefix_repetition::PrefixRepetitionSpec {
                n: o.get("n")?.unwrap_or(d.n),
                prefix_len: o.get("prefix_len")?.unwrap_or(d.prefix_len),
                suffix_len: o.get("suffix_len")?.unwrap_or(d.suffix_len),
                num_prefixes: o.get("num_prefixes")?.unwrap_or(d.num_prefixes),
                output_len: o.get("output_len")?.unwrap_or(d.output_len),
                seed: o.get("seed")?.unwrap_or(d.seed),
                token_ids: o.get("token_ids")?.unwrap_or(false),
            };
            o.finish()?;
            set(
                "mb.dataset.prefix_repetition",
                prefix_repetition::generate(&tok, &spec),
            )
        })?,
    )?;
    m.set(
        "dataset_mooncake",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.dataset.mooncake");
            let d = mooncake::MooncakeSpec::default();
            let path: String = o.req("path")?;
            let tok = tok_opt(&o)?;
            let spec = mooncake::MooncakeSpec {
                n: o.get("n")?,
                block_size: o.get("block_size")?.unwrap_or(d.block_size),
                time_scale: o.get("time_scale")?.unwrap_or(d.time_scale),
                seed: o.get("seed")?.unwrap_or(d.seed),
                token_ids: o.get("token_ids")?.unwrap_or(false),
            };
            o.finish()?;
            set(
                "mb.dataset.mooncake",
                mooncake::generate(&tok, Path::new(&path), &spec),
            )
        })?,
    )?;
    Ok(())
}
