//! Tokenizers, request sets and datasets as Lua sees them. A request set is a
//! native list that Lua indexes like an array (`reqs[1]`, `#reqs`) without copying.

use std::sync::Arc;

use mlua::{Lua, MetaMethod, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::core::{to_json, to_lua};
use super::opts::{LuaObject, LuaOptions, decode, decode_with};
use std::path::Path;

use crate::dataset::random::{self, RandomSpec};
use crate::dataset::random_rerank;
use crate::dataset::{Prompt, Request, RequestSet};
use crate::dataset::{audio, burstgpt, custom, hf, mooncake, prefix_repetition, sharegpt, sonnet};
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
                let (add, extra) = chat_template_opts(lua, opts)?;
                t.0.apply_chat_template(&msgs, add, &extra)
                    .map_err(mlua::Error::runtime)
            },
        );
        m.add_method("has_chat_template", |_, t, ()| Ok(t.0.has_chat_template()));
    }
}

/// Options of `tok:apply_chat_template(messages, {...})`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Lua-object fields are read through `Decoded`
pub struct ChatTemplateOpts {
    /// End with the assistant's turn opening, as servers do (default true).
    add_generation_prompt: Option<bool>,
    /// Qwen3-style templates: think before answering (the template's default when absent).
    enable_thinking: Option<bool>,
    /// Tool definitions passed to the template as `tools`.
    tools: Option<LuaObject>,
    /// Documents passed to the template as `documents`.
    documents: Option<LuaObject>,
    /// Any other template variables, `{ name = value }`.
    vars: Option<LuaObject>,
}

impl LuaOptions for ChatTemplateOpts {
    const WHAT: &'static str = "tok:apply_chat_template";
}

/// Options of `mb.tokenizer(spec, {...})`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenizerOpts {
    /// Branch, tag or commit of a Hub model id's tokenizer (`--revision`; default
    /// main): the cached snapshot of that revision, else downloaded at it.
    revision: Option<String>,
}

impl LuaOptions for TokenizerOpts {
    const WHAT: &'static str = "mb.tokenizer";
}

/// Options of `reqs:assign_models{...}` (vLLM's `--lora-modules`, `--lora-assignment`).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignModelsOpts {
    /// Model (LoRA adapter) names; each request is sent with one of them as its `model`. Required.
    models: Vec<String>,
    /// "random" (default: a seeded random choice per request) or "round-robin" (request i takes models[i mod n]).
    #[serde(default)]
    assignment: crate::dataset::Assignment,
    /// Seed of the random choice (default 0).
    #[serde(default)]
    seed: u64,
}

impl LuaOptions for AssignModelsOpts {
    const WHAT: &'static str = "reqs:assign_models";
}

impl LuaOptions for crate::dataset::random_mm::ImagesSpec {
    const WHAT: &'static str = "reqs:with_images";
}

/// Decodes a [`ChatTemplateOpts`] table: whether to add the generation prompt,
/// and the template variables (`enable_thinking`, `tools`, `documents`, `vars`).
pub fn chat_template_opts(
    lua: &Lua,
    opts: Option<Table>,
) -> mlua::Result<(bool, serde_json::Map<String, serde_json::Value>)> {
    let d = decode::<ChatTemplateOpts>(lua, opts)?;
    let add = d.opts.add_generation_prompt.unwrap_or(true);
    let mut extra = serde_json::Map::new();
    if let Some(b) = d.opts.enable_thinking {
        extra.insert("enable_thinking".into(), serde_json::Value::Bool(b));
    }
    for k in ["tools", "documents"] {
        let v = d.value(k);
        if !v.is_nil() {
            extra.insert(k.into(), to_json(lua, v)?);
        }
    }
    match d.value("vars") {
        Value::Nil => {}
        v => match to_json(lua, v)? {
            serde_json::Value::Object(m) => extra.extend(m),
            _ => {
                return Err(mlua::Error::runtime(
                    "apply_chat_template: vars must be a table of template variables",
                ));
            }
        },
    }
    Ok((add, extra))
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
        Prompt::Parts(p) => t.set("prompt", crate::dataset::join(p))?,
        Prompt::Messages(m) => t.set("messages", to_lua(lua, m)?)?,
        Prompt::TokenIds(ids) => t.set("prompt_token_ids", ids.clone())?,
        Prompt::Texts(v) => t.set("texts", v.clone())?,
        Prompt::Audio(a) => {
            t.set("prompt", a.text.as_str())?;
            let au = lua.create_table()?;
            au.set("format", a.format)?;
            au.set("seconds", a.seconds)?;
            au.set("bytes", a.data.len())?;
            t.set("audio", au)?;
        }
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
        m.add_method("stats", |lua, s, ()| {
            // The shape of the set (`bench --dry-run`): prompt and asked-for output lengths.
            let t = lua.create_table()?;
            t.set("requests", s.0.len())?;
            let describe = |vals: Vec<f64>| -> mlua::Result<Table> {
                let d = crate::metrics::describe(&vals, &[99.0]);
                let o = lua.create_table()?;
                o.set("count", d.count)?;
                o.set("total", vals.iter().sum::<f64>())?;
                o.set("min", d.min)?;
                o.set("mean", d.mean)?;
                o.set("median", d.median)?;
                o.set("p99", d.percentiles[0].1)?;
                o.set("max", d.max)?;
                Ok(o)
            };
            t.set(
                "prompt_tokens",
                describe(s.0.iter().map(|r| r.prompt_tokens as f64).collect())?,
            )?;
            t.set(
                "max_tokens",
                describe(
                    s.0.iter()
                        .filter_map(|r| r.max_tokens)
                        .map(f64::from)
                        .collect(),
                )?,
            )?;
            Ok(t)
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
        m.add_method(
            "apply_chat_template",
            |lua, s, (tok, opts): (Value, Option<Table>)| {
                let tok = tokenizer_arg(tok)?;
                let (add, extra) = chat_template_opts(lua, opts)?;
                let mut reqs = s.0.as_ref().clone();
                crate::dataset::apply_chat_template(&mut reqs, &tok, add, &extra)
                    .map_err(mlua::Error::runtime)?;
                Ok(LuaRequests(Arc::new(reqs)))
            },
        );
        m.add_method("with_images", |lua, s, opts: Option<Table>| {
            let d = decode::<crate::dataset::random_mm::ImagesSpec>(lua, opts)?;
            let mut reqs = s.0.as_ref().clone();
            crate::dataset::random_mm::add_images(&mut reqs, &d.opts)
                .map_err(|e| mlua::Error::runtime(format!("reqs:with_images: {e}")))?;
            Ok(LuaRequests(Arc::new(reqs)))
        });
        m.add_method("assign_models", |lua, s, opts: Option<Table>| {
            let d = decode::<AssignModelsOpts>(lua, opts)?;
            let mut reqs = s.0.as_ref().clone();
            crate::dataset::assign_models(
                &mut reqs,
                &d.opts.models,
                d.opts.assignment,
                d.opts.seed,
            )
            .map_err(mlua::Error::runtime)?;
            Ok(LuaRequests(Arc::new(reqs)))
        });
    }
}

/// One request written as a Lua table (`mb.dataset.from_table`, `mb.run`'s
/// `requests`).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Lua-object fields are read through `Decoded`
pub struct RequestOpts {
    /// The prompt text (completions; chat backends send it as one user message).
    prompt: Option<String>,
    /// Chat messages, `{ { role = "user", content = "..." }, ... }`.
    messages: Option<LuaObject>,
    /// The prompt as token ids (completions only).
    prompt_token_ids: Option<Vec<u32>>,
    /// Several texts in one request: a batch of embeddings inputs, or a rerank
    /// query followed by its documents (`{ query, doc1, doc2, ... }`).
    texts: Option<Vec<String>>,
    /// The prompt's length in tokens (default: counted with the tokenizer).
    prompt_tokens: Option<u32>,
    /// Output tokens to ask for (default: the server's).
    max_tokens: Option<u32>,
    /// Ask the server to ignore end-of-sequence, so the answer is exactly
    /// `max_tokens` long.
    ignore_eos: Option<bool>,
    /// Fields merged last into this request's body.
    body: Option<LuaObject>,
    /// Send time in seconds from the start (for arrival = "trace").
    timestamp: Option<f64>,
}

impl LuaOptions for RequestOpts {
    const WHAT: &'static str = "request";
}

/// Converts one Lua request table (`prompt`/`messages`/`prompt_token_ids`,
/// `prompt_tokens`, `max_tokens`, `ignore_eos`, `body`) to a request.
pub fn request_from_lua(lua: &Lua, t: Table, what: &str, tok: &Tokenizer) -> mlua::Result<Request> {
    let d = decode::<RequestOpts>(lua, Some(t))
        .map_err(|e| mlua::Error::runtime(super::format_error(&e).replacen("request", what, 1)))?;
    let o = &d.opts;
    let (prompt, messages, ids, texts) = (
        o.prompt.clone(),
        d.value("messages"),
        o.prompt_token_ids.clone(),
        o.texts.clone(),
    );
    let (prompt_tokens, max_tokens, timestamp) = (o.prompt_tokens, o.max_tokens, o.timestamp);
    let body = d.value("body");
    let (prompt, counted) = match (prompt, messages, ids, texts) {
        (None, Value::Nil, None, Some(t)) if !t.is_empty() => {
            let n = t.iter().map(|s| tok.count(s)).sum::<usize>() as u32;
            (Prompt::Texts(t), n)
        }
        (Some(p), Value::Nil, None, None) => {
            let n = tok.count(&p) as u32;
            (Prompt::Text(p), n)
        }
        (None, m @ Value::Table(_), None, None) => {
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
        (None, Value::Nil, Some(ids), None) => {
            let n = ids.len() as u32;
            (Prompt::TokenIds(ids), n)
        }
        _ => {
            return Err(mlua::Error::runtime(format!(
                "{what}: give exactly one of prompt, messages, prompt_token_ids or texts (a non-empty list)"
            )));
        }
    };
    let mut extra = match body {
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
    if let Some(on) = o.ignore_eos {
        extra
            .get_or_insert_with(Default::default)
            .insert("ignore_eos".into(), serde_json::Value::Bool(on));
    }
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

/// Whether a dataset reads a file.
#[derive(Clone, Copy, PartialEq)]
enum Path_ {
    None,
    Optional,
    Required,
}

macro_rules! dataset_options {
    ($($t:ty => $what:literal, synthetic: $syn:literal;)*) => {
        $(impl LuaOptions for $t {
            const WHAT: &'static str = $what;
        }
        impl Synthetic for $t {
            const SYNTHETIC: bool = $syn;
        })*
    };
}

/// Whether a dataset's lengths are made up (its answers must be exactly
/// `max_tokens` long, so its requests set `ignore_eos` by default, as `bench` does).
trait Synthetic {
    const SYNTHETIC: bool;
}

dataset_options! {
    RandomSpec => "mb.dataset.random", synthetic: true;
    random_rerank::RandomRerankSpec => "mb.dataset.random_rerank", synthetic: false;
    sharegpt::ShareGptSpec => "mb.dataset.sharegpt", synthetic: false;
    sonnet::SonnetSpec => "mb.dataset.sonnet", synthetic: false;
    burstgpt::BurstGptSpec => "mb.dataset.burstgpt", synthetic: true;
    custom::CustomSpec => "mb.dataset.custom", synthetic: false;
    custom::CustomImageSpec => "mb.dataset.custom_image", synthetic: false;
    audio::CustomAudioSpec => "mb.dataset.custom_audio", synthetic: false;
    hf::HfSpec => "mb.dataset.hf", synthetic: false;
    prefix_repetition::PrefixRepetitionSpec => "mb.dataset.prefix_repetition", synthetic: true;
    mooncake::MooncakeSpec => "mb.dataset.mooncake", synthetic: true;
}

/// The options every dataset takes besides its own (documented with them in the
/// API reference).
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
pub struct DatasetCommon {
    /// The tokenizer prompt lengths are measured with: `mb.tokenizer(...)`, a
    /// path, a model id or "words" (default: one token per word).
    tokenizer: Option<LuaObject>,
    /// The dataset file (sharegpt, burstgpt, custom, custom_image, custom_audio, mooncake; hf: a file, a
    /// folder or a Hub dataset id; sonnet: its own text instead of the bundled one).
    path: Option<String>,
    /// Ask the server to ignore end-of-sequence, so answers are exactly
    /// `max_tokens` long. Default: true for random, prefix_repetition, burstgpt and
    /// mooncake (made-up lengths), false for the others.
    ignore_eos: Option<bool>,
}

/// The keys of [`DatasetCommon`].
const DATASET_COMMON: &[&str] = &["tokenizer", "path", "ignore_eos"];

/// A dataset's generator: tokenizer, file, parameters.
type Generate<S> = fn(&Tokenizer, Option<&Path>, &S) -> Result<Vec<Request>, String>;

/// Registers `mb.dataset.<name>`: decodes its options into `S` (plus
/// [`DatasetCommon`]), builds the requests, and sets `ignore_eos` on each.
fn dataset<S>(
    lua: &Lua,
    m: &Table,
    name: &'static str,
    path: Path_,
    generate: Generate<S>,
) -> mlua::Result<()>
where
    S: LuaOptions + Synthetic + 'static,
{
    let f = lua.create_function(move |lua, t: Option<Table>| {
        let d = decode_with::<S>(lua, t, DATASET_COMMON)?;
        let tok = match d.value("tokenizer") {
            Value::Nil => Arc::new(Tokenizer::words()),
            v => tokenizer_arg(v)?,
        };
        let file: Option<String> = d.get(lua, "path")?;
        match (path, &file) {
            (Path_::Required, None) => {
                return Err(mlua::Error::runtime(format!(
                    "{}: option 'path' is required (the dataset file)",
                    S::WHAT
                )));
            }
            (Path_::None, Some(_)) => {
                return Err(mlua::Error::runtime(format!(
                    "{}: takes no 'path' (its prompts are generated)",
                    S::WHAT
                )));
            }
            _ => {}
        }
        let ignore_eos = d.get::<bool>(lua, "ignore_eos")?.unwrap_or(S::SYNTHETIC);
        crate::clock::startup_mark("building prompts");
        let mut reqs = generate(&tok, file.as_deref().map(Path::new), &d.opts)
            .map_err(|e| mlua::Error::runtime(format!("{}: {e}", S::WHAT)))?;
        crate::clock::startup_mark("prompts built");
        if ignore_eos {
            for r in reqs.iter_mut().filter(|r| r.max_tokens.is_some()) {
                r.extra
                    .get_or_insert_with(Default::default)
                    .insert("ignore_eos".into(), serde_json::Value::Bool(true));
            }
        }
        Ok(LuaRequests(Arc::new(reqs)))
    })?;
    m.set(name, f)
}

/// `mb.tokenizer(spec)`: a tokenizer object.
fn tokenizer(lua: &Lua, (v, opts): (Value, Option<Table>)) -> mlua::Result<LuaTokenizer> {
    crate::clock::startup_mark("loading the tokenizer");
    let rev = decode::<TokenizerOpts>(lua, opts)?.opts.revision;
    let tok = match (&v, rev) {
        (Value::String(s), Some(rev)) => {
            Arc::new(Tokenizer::load_at(&s.to_str()?, Some(&rev)).map_err(mlua::Error::runtime)?)
        }
        _ => tokenizer_arg(v)?,
    };
    crate::clock::startup_mark("tokenizer loaded");
    Ok(LuaTokenizer(tok))
}

/// `mb.dataset.from_table(list [, tokenizer])`: a request set from Lua tables or
/// strings.
fn from_table(lua: &Lua, (v, tok): (Value, Option<Value>)) -> mlua::Result<LuaRequests> {
    let tok = match tok {
        None | Some(Value::Nil) => Arc::new(Tokenizer::words()),
        Some(t) => tokenizer_arg(t)?,
    };
    Ok(LuaRequests(requests_arg(lua, v, &tok)?))
}

/// Registers `tokenizer` and the `dataset` namespace: one line per dataset (its
/// options struct, whether it reads a file, its generator).
pub fn register(lua: &Lua, outer: &Table) -> mlua::Result<()> {
    functions!(lua, outer, { "tokenizer" => sync tokenizer });
    let ds = lua.create_table()?;
    functions!(lua, ds, { "from_table" => sync from_table });
    let m = &ds;
    dataset::<RandomSpec>(lua, m, "random", Path_::None, |tok, _, s| {
        if s.n == 0 {
            return Err("`n` must be at least 1".into());
        }
        random::generate(tok, s)
    })?;
    dataset::<random_rerank::RandomRerankSpec>(
        lua,
        m,
        "random_rerank",
        Path_::None,
        |tok, _, s| random_rerank::generate(tok, s),
    )?;
    dataset::<sharegpt::ShareGptSpec>(lua, m, "sharegpt", Path_::Required, |tok, p, s| {
        sharegpt::generate(tok, p.expect("path"), s)
    })?;
    dataset::<sonnet::SonnetSpec>(lua, m, "sonnet", Path_::Optional, sonnet::generate)?;
    dataset::<burstgpt::BurstGptSpec>(lua, m, "burstgpt", Path_::Required, |tok, p, s| {
        burstgpt::generate(tok, p.expect("path"), s)
    })?;
    dataset::<custom::CustomSpec>(lua, m, "custom", Path_::Required, |tok, p, s| {
        custom::generate(tok, p.expect("path"), s)
    })?;
    dataset::<custom::CustomImageSpec>(lua, m, "custom_image", Path_::Required, |tok, p, s| {
        custom::generate_images(tok, p.expect("path"), s)
    })?;
    dataset::<audio::CustomAudioSpec>(lua, m, "custom_audio", Path_::Required, |tok, p, s| {
        audio::generate(tok, p.expect("path"), s)
    })?;
    dataset::<hf::HfSpec>(lua, m, "hf", Path_::Required, |tok, p, s| {
        hf::generate(tok, &p.expect("path").to_string_lossy(), s)
    })?;
    dataset::<prefix_repetition::PrefixRepetitionSpec>(
        lua,
        m,
        "prefix_repetition",
        Path_::None,
        |tok, _, s| prefix_repetition::generate(tok, s),
    )?;
    dataset::<mooncake::MooncakeSpec>(lua, m, "mooncake", Path_::Required, |tok, p, s| {
        mooncake::generate(tok, p.expect("path"), s)
    })?;
    outer.set("dataset", ds)?;
    Ok(())
}
