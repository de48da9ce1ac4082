//! `mb.target{...}` (where and how to send) and `mb.sim{...}` (start a simulator).

use std::sync::Arc;
use std::time::Duration;

use mlua::{Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::Env;
use super::data::{LuaTokenizer, tokenizer_arg};
use super::opts::{LuaObject, LuaOptions, decode};
use crate::backend::{Backend, BaseUrl, Target};
use crate::sim::{SimHandle, SimOptions};
use crate::tokenizer::Tokenizer;

/// Default per-request timeout (seconds) when a script sets none.
pub const DEFAULT_TIMEOUT_S: f64 = 600.0;

/// A target as Lua sees it.
pub struct LuaTarget {
    /// The target.
    pub target: Arc<Target>,
    /// Tokenizer for counting what the server does not report.
    pub tokenizer: Arc<Tokenizer>,
    /// The simulator behind it, if it is the built-in one.
    pub sim: Option<Arc<SimHandle>>,
}

impl UserData for LuaTarget {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("base_url", |_, t| Ok(t.target.base_url.as_string()));
        f.add_field_method_get("model", |_, t| Ok(t.target.model.clone()));
        f.add_field_method_get("backend", |_, t| Ok(t.target.backend.name.clone()));
        f.add_field_method_get("endpoint", |_, t| Ok(t.target.endpoint.clone()));
        f.add_field_method_get("api", |_, t| Ok(t.target.backend.api.name()));
        f.add_field_method_get("pooling", |_, t| Ok(t.target.backend.api.pooling()));
        f.add_field_method_get("stream", |_, t| Ok(t.target.stream));
        f.add_field_method_get("is_sim", |_, t| Ok(t.sim.is_some()));
        f.add_field_method_get("sim_engine", |lua, t| engine_table(lua, t.sim.as_ref()));
        f.add_field_method_get("tokenizer", |_, t| Ok(LuaTokenizer(t.tokenizer.clone())));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("sim_truth", |lua, t, id: String| {
            truth_table(lua, t.sim.as_ref(), id, "t:sim_truth")
        });
        m.add_method("sim_steps", |lua, t, ()| {
            steps_table(lua, t.sim.as_ref(), "t:sim_steps")
        });
        m.add_async_method("reset_prefix_cache", |lua, t, ()| async move {
            side_request(&lua, t.target.clone(), "t:reset_prefix_cache: ", |c, t| async move {
                crate::engine::reset_prefix_cache(&c, &t.plain_headers()).await
            })
            .await
        });
        m.add_async_method(
            "verify_prompt_lengths",
            |lua, t, (requests, limit): (Value, Option<usize>)| async move {
                let set = super::data::requests_arg(&lua, requests, &t.tokenizer)?;
                let check = side_request(&lua, t.target.clone(), "", move |c, t| async move {
                    crate::backend::tokenize::verify(&c, &t, &set, limit).await
                })
                .await?;
                super::core::to_lua(&lua, &check.to_json())
            },
        );
    }
}

/// Runs `f` with a fresh connection to `target` on the I/O runtime (the side
/// requests `/tokenize` and `/reset_prefix_cache`); its error becomes a Lua error
/// after `prefix`.
async fn side_request<T, F, Fut>(
    lua: &Lua,
    target: Arc<Target>,
    prefix: &str,
    f: F,
) -> mlua::Result<T>
where
    T: Send + 'static,
    F: FnOnce(crate::backend::http::HttpClient, Arc<Target>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, String>> + Send,
{
    let io = lua.app_data_ref::<Env>().expect("env").io.clone();
    io.spawn(async move {
        let client =
            crate::backend::http::HttpClient::with_tls(&target.base_url, &target.tls).await?;
        f(client, target).await
    })
    .await
    .map_err(|e| mlua::Error::runtime(e.to_string()))?
    .map_err(|e| mlua::Error::runtime(format!("{prefix}{e}")))
}

/// A simulator started by `mb.sim{...}`, as Lua sees it: `base_url`, `host`,
/// `port`, `model`, `engine` (the step engine's configuration, nil for the fixed
/// engine) and the methods `steps()` and `truth(request_id)`.
pub struct LuaSim(pub Arc<SimHandle>);

impl UserData for LuaSim {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("base_url", |_, s| Ok(s.0.base_url()));
        f.add_field_method_get("host", |_, s| Ok(s.0.addr.ip().to_string()));
        f.add_field_method_get("port", |_, s| Ok(s.0.addr.port()));
        f.add_field_method_get("model", |_, s| Ok(s.0.model.clone()));
        f.add_field_method_get("engine", |lua, s| engine_table(lua, Some(&s.0)));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("truth", |lua, s, id: String| {
            truth_table(lua, Some(&s.0), id, "sim:truth")
        });
        m.add_method("steps", |lua, s, ()| {
            steps_table(lua, Some(&s.0), "sim:steps")
        });
        m.add_meta_method(mlua::MetaMethod::ToString, |_, s, ()| {
            Ok(format!("mb.sim({})", s.0.base_url()))
        });
    }
}

/// The step engine's configuration as a table (`preset`, `num_blocks`,
/// `block_size`, `max_num_seqs`, `max_num_batched_tokens`, `max_model_len`,
/// `chunked_prefill`, `prefix_caching`, `data_parallel`, `router`), nil when there
/// is no simulator or it runs the fixed engine.
fn engine_table(lua: &Lua, sim: Option<&Arc<SimHandle>>) -> mlua::Result<Value> {
    let Some(e) = sim.and_then(|s| s.state.engine.as_ref()) else {
        return Ok(Value::Nil);
    };
    let c = &e.config;
    let out = lua.create_table()?;
    out.set("preset", c.preset.as_str())?;
    out.set("num_blocks", c.num_blocks)?;
    out.set("block_size", c.block_size)?;
    out.set("max_num_seqs", c.max_num_seqs)?;
    out.set("max_num_batched_tokens", c.max_num_batched_tokens)?;
    out.set("max_model_len", c.max_model_len)?;
    out.set("chunked_prefill", c.chunked_prefill)?;
    out.set("prefix_caching", c.prefix_caching)?;
    out.set("data_parallel", e.list.len())?;
    out.set("router", e.router.name())?;
    Ok(Value::Table(out))
}

/// What the built-in simulator recorded for one request — `received` (seconds
/// on `mb.now()`'s clock), `ttft` (first chunk written minus received, s),
/// `chunk_times` (s after received), `chunk_tokens` and, with the step engine,
/// `step_ends` — or nil when it kept nothing for that id. An error naming `what`
/// when there is no simulator.
fn truth_table(
    lua: &Lua,
    sim: Option<&Arc<SimHandle>>,
    id: String,
    what: &str,
) -> mlua::Result<Value> {
    let Some(sim) = sim else {
        return Err(mlua::Error::runtime(format!(
            "{what}: this target is not the built-in simulator (only it records what it sent)"
        )));
    };
    let Some(truth) = sim.truth.get(&id) else {
        return Ok(Value::Nil);
    };
    let secs = |ns: u64| ns.saturating_sub(truth.received_ns) as f64 / 1e9;
    let out = lua.create_table()?;
    out.set("received", truth.received_ns as f64 / 1e9)?;
    if let Some(first) = truth.chunk_ns.first() {
        out.set("ttft", secs(*first))?;
    }
    out.set(
        "chunk_times",
        lua.create_sequence_from(truth.chunk_ns.iter().map(|&n| secs(n)))?,
    )?;
    out.set(
        "chunk_tokens",
        lua.create_sequence_from(truth.chunk_tokens.iter().copied())?,
    )?;
    if !truth.step_end_ns.is_empty() {
        out.set(
            "step_ends",
            lua.create_sequence_from(truth.step_end_ns.iter().map(|&n| n as f64 / 1e9))?,
        )?;
    }
    Ok(Value::Table(out))
}

/// Every step the simulator's step engines ran, oldest first: `engine`, `start`
/// and `end` (seconds on `mb.now()`'s clock), `seqs`, `prefill_tokens`,
/// `decode_seqs`, `kv_tokens`, `tokens_out`, `waiting`, `preempted`,
/// `cached_tokens`, `kv_blocks_used`. An error naming `what` when there is no
/// simulator or it runs the fixed engine.
fn steps_table(lua: &Lua, sim: Option<&Arc<SimHandle>>, what: &str) -> mlua::Result<Table> {
    let engine = sim.and_then(|s| s.state.engine.as_ref()).ok_or_else(|| {
        mlua::Error::runtime(format!(
            "{what}: this is not the built-in simulator running the step engine (the fixed engine, \
             chosen by ttft_ms/itl_ms/prefill_us_per_token/max_running or engine = 'fixed', keeps no steps)"
        ))
    })?;
    let out = lua.create_table()?;
    for (i, (engine, s)) in engine.steps().iter().enumerate() {
        let row = lua.create_table()?;
        row.set("engine", *engine)?;
        row.set("start", s.start_ns as f64 / 1e9)?;
        row.set("end", s.end_ns as f64 / 1e9)?;
        row.set("seqs", s.seqs)?;
        row.set("prefill_tokens", s.prefill_tokens)?;
        row.set("decode_seqs", s.decode_seqs)?;
        row.set("kv_tokens", s.kv_tokens)?;
        row.set("tokens_out", s.tokens_out)?;
        row.set("waiting", s.waiting)?;
        row.set("preempted", s.preempted)?;
        row.set("cached_tokens", s.cached_tokens)?;
        row.set("kv_blocks_used", s.kv_blocks_used)?;
        out.raw_set(i + 1, row)?;
    }
    Ok(out)
}

impl LuaOptions for SimOptions {
    const WHAT: &'static str = "mb.sim";
}

fn sim_options(
    lua: &Lua,
    v: Value,
    model: Option<&str>,
    called_from_target: bool,
) -> mlua::Result<SimOptions> {
    let mut o: SimOptions = match v {
        Value::Nil => SimOptions::default(),
        Value::Table(t) => match decode::<SimOptions>(lua, Some(t)) {
            Ok(d) => d.opts,
            // Inside mb.target{ sim = {...} } the key is the target's `sim.*`.
            Err(e) if called_from_target => {
                return Err(mlua::Error::runtime(
                    super::format_error(&e)
                        .replacen(
                            "mb.sim: unknown option '",
                            "mb.target: unknown option 'sim.",
                            1,
                        )
                        .replacen("mb.sim: option '", "mb.target: option 'sim.", 1),
                ));
            }
            Err(e) => return Err(e),
        },
        other => {
            return Err(mlua::Error::runtime(format!(
                "simulator options must be a table, got a {}",
                other.type_name()
            )));
        }
    };
    if let Some(m) = model {
        if o.model == SimOptions::default().model {
            o.model = m.to_string();
        }
    }
    Ok(o)
}

fn start_sim(lua: &Lua, o: &SimOptions) -> mlua::Result<Arc<SimHandle>> {
    // The in-process simulator keeps its truth: the client-health verdict compares
    // the measured arrivals with it.
    let mut o = o.clone();
    o.record_truth = true;
    let h = Arc::new(SimHandle::start(&o, "127.0.0.1:0").map_err(mlua::Error::runtime)?);
    if let Some(env) = lua.app_data_ref::<Env>() {
        env.sims.borrow_mut().push(h.clone());
    }
    Ok(h)
}

/// Options of `mb.target`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Lua-object fields are read through `Decoded`
pub struct TargetOpts {
    /// The server's URL, e.g. "http://127.0.0.1:8000" (with no base_url, host or
    /// port, the built-in simulator is started).
    base_url: Option<String>,
    /// The server's host (with `port`, instead of base_url; default 127.0.0.1).
    host: Option<String>,
    /// The server's port (default 8000).
    port: Option<u16>,
    /// The API: "openai"/"vllm" (completions), "openai-chat", "openai-responses",
    /// "sglang", "tgi", "tensorrt-llm", "llama.cpp", "deepspeed-mii", the pooling
    /// APIs "openai-embeddings", "openai-embeddings-chat" (and its CLIP and VLM2Vec
    /// forms "openai-embeddings-clip", "openai-embeddings-vlm2vec"),
    /// "infinity-embeddings", "vllm-pooling", "vllm-rerank", and vLLM's aliases
    /// (default "openai").
    backend: Option<String>,
    /// The model name sent in each request (default: the simulator's, else "").
    model: Option<String>,
    /// The path of the API (default: the backend's, e.g. /v1/completions).
    endpoint: Option<String>,
    /// The model name sent instead of `model` (vLLM's --served-model-name).
    served_model_name: Option<String>,
    /// Bearer token (default: $OPENAI_API_KEY); never written to result files.
    api_key: Option<String>,
    /// Extra HTTP headers, `{ ["X-Name"] = "value" }`.
    headers: Option<std::collections::BTreeMap<String, String>>,
    /// Per-request timeout in seconds, > 0 (default 600; math.huge for none).
    timeout: Option<f64>,
    /// Skip certificate checks for HTTPS (prints a warning).
    insecure: Option<bool>,
    /// A PEM file of CA certificates to trust for HTTPS.
    ca_cert: Option<String>,
    /// Stream the answers (default: true where the backend streams).
    stream: Option<bool>,
    /// Ask vLLM for cumulative usage on every chunk (exact per-chunk token counts).
    continuous_usage: Option<bool>,
    /// Fields merged into every request body (sampling parameters, ...).
    body: Option<LuaObject>,
    /// Prefix of the x-request-id header, followed by the request's index
    /// (default: a random UUID per request).
    request_id_prefix: Option<String>,
    /// Counts the tokens the server does not report: `mb.tokenizer(...)`, a path,
    /// a model id or "words" (default "words").
    tokenizer: Option<LuaObject>,
    /// Options of the built-in simulator (see mb.sim), when it is started.
    sim: Option<LuaObject>,
}

impl LuaOptions for TargetOpts {
    const WHAT: &'static str = "mb.target";
}

fn target(lua: &Lua, t: Table) -> mlua::Result<LuaTarget> {
    let d = decode::<TargetOpts>(lua, Some(t))?;
    let o = &d.opts;
    let (base_url, host, port) = (o.base_url.clone(), o.host.clone(), o.port);
    let backend = Backend::parse(o.backend.as_deref().unwrap_or("openai"))
        .map_err(|e| mlua::Error::runtime(format!("mb.target: {e}")))?;
    let model = o.model.clone();
    let sim_v = d.value("sim");
    let (url, sim) = match (base_url, host, port) {
        (Some(u), _, _) => {
            let url = BaseUrl::parse(&u).map_err(mlua::Error::runtime)?;
            // A simulator this script started (mb.sim) keeps its truth for the target.
            let started = lua.app_data_ref::<Env>().and_then(|env| {
                env.sims
                    .borrow()
                    .iter()
                    .find(|h| {
                        url.scheme == crate::backend::Scheme::Http
                            && url.port == h.addr.port()
                            && (url.host.parse::<std::net::IpAddr>().ok() == Some(h.addr.ip())
                                || url.host == "localhost" && h.addr.ip().is_loopback())
                    })
                    .cloned()
            });
            (url, started)
        }
        (None, None, None) => {
            let so = sim_options(lua, sim_v, model.as_deref(), true)?;
            let h = start_sim(lua, &so)?;
            (
                BaseUrl::parse(&h.base_url()).map_err(mlua::Error::runtime)?,
                Some(h),
            )
        }
        (None, h, p) => {
            let h = h.unwrap_or_else(|| "127.0.0.1".into());
            let h = if h.contains(':') && !h.starts_with('[') {
                format!("[{h}]")
            } else {
                h
            };
            (
                BaseUrl::parse(&format!("http://{h}:{}", p.unwrap_or(8000)))
                    .map_err(mlua::Error::runtime)?,
                None,
            )
        }
    };
    let model = model
        .or_else(|| sim.as_ref().map(|s| s.model.clone()))
        .unwrap_or_default();
    let mut tg = Target::new(backend, url, model);
    if let Some(ep) = &o.endpoint {
        tg.endpoint = ep.clone();
    }
    tg.served_model_name = o.served_model_name.clone();
    tg.api_key = o
        .api_key
        .clone()
        .or_else(|| std::env::var("OPENAI_API_KEY").ok())
        .filter(|k| !k.is_empty());
    if let Some(h) = &o.headers {
        tg.headers
            .extend(h.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    let timeout = o.timeout.unwrap_or(DEFAULT_TIMEOUT_S);
    if timeout.is_nan() || timeout <= 0.0 {
        return Err(mlua::Error::runtime(format!(
            "mb.target: timeout must be > 0 seconds (got {timeout}); every request has a limit \
             (math.huge for none)"
        )));
    }
    tg.timeout = timeout
        .is_finite()
        .then(|| Duration::from_secs_f64(timeout));
    tg.tls.insecure = o.insecure.unwrap_or(false);
    tg.tls.ca_cert = o.ca_cert.clone().map(std::path::PathBuf::from);
    if tg.tls.insecure && tg.base_url.scheme == crate::backend::Scheme::Https {
        eprintln!(
            "{}",
            crate::i18n::say(
                "warning: --insecure: the certificate of {} is not checked; the connection is encrypted \
             but anyone in the middle could read it",
                &[&tg.base_url.host]
            )
        );
    }
    tg.stream = o.stream.unwrap_or(tg.backend.api.streams());
    tg.continuous_usage = o.continuous_usage.unwrap_or(false);
    match d.value("body") {
        Value::Nil => {}
        b => match super::core::to_json(lua, b)? {
            serde_json::Value::Object(m) => tg.body = m,
            _ => {
                return Err(mlua::Error::runtime(
                    "mb.target: body must be a table of fields",
                ));
            }
        },
    }
    if let Some(p) = &o.request_id_prefix {
        tg.request_id_prefix = p.clone();
    }
    let tok = match d.value("tokenizer") {
        Value::Nil => Arc::new(Tokenizer::words()),
        v => tokenizer_arg(v)?,
    };
    Ok(LuaTarget {
        target: Arc::new(tg),
        tokenizer: tok,
        sim,
    })
}

/// `mb.sim{...}`: starts a simulator; returns it as a [`LuaSim`].
fn sim(lua: &Lua, v: Value) -> mlua::Result<LuaSim> {
    let so = sim_options(lua, v, None, false)?;
    Ok(LuaSim(start_sim(lua, &so)?))
}

/// Registers `target` and `sim` in the core module.
pub fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    functions!(lua, m, {
        "target" => sync target,
        "sim" => sync sim,
    });
    Ok(())
}
