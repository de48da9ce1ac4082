//! `mb.target{...}` (where and how to send) and `mb.sim{...}` (start a simulator).

use std::sync::Arc;
use std::time::Duration;

use mlua::{Lua, LuaSerdeExt, Table, UserData, UserDataFields, Value};

use super::Env;
use super::data::{LuaTokenizer, tokenizer_arg};
use super::opts::Opts;
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
        f.add_field_method_get("stream", |_, t| Ok(t.target.stream));
        f.add_field_method_get("is_sim", |_, t| Ok(t.sim.is_some()));
        f.add_field_method_get("tokenizer", |_, t| Ok(LuaTokenizer(t.tokenizer.clone())));
    }
}

fn sim_options(lua: &Lua, v: Value, model: Option<&str>) -> mlua::Result<SimOptions> {
    let mut o: SimOptions = match v {
        Value::Nil => SimOptions::default(),
        v => lua
            .from_value(v)
            .map_err(|e| mlua::Error::runtime(format!("simulator options: {e}")))?,
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

fn target(lua: &Lua, t: Table) -> mlua::Result<LuaTarget> {
    let o = Opts::new(lua, t, "mb.target");
    let base_url: Option<String> = o.get("base_url")?;
    let host: Option<String> = o.get("host")?;
    let port: Option<u16> = o.get("port")?;
    let backend = Backend::parse(
        &o.get::<String>("backend")?
            .unwrap_or_else(|| "openai".into()),
    )
    .map_err(|e| mlua::Error::runtime(format!("mb.target: {e}")))?;
    let model: Option<String> = o.get("model")?;
    let sim_v = o.value("sim")?;
    let (url, sim) = match (base_url, host, port) {
        (Some(u), _, _) => (BaseUrl::parse(&u).map_err(mlua::Error::runtime)?, None),
        (None, None, None) => {
            let so = sim_options(lua, sim_v, model.as_deref())?;
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
    if let Some(ep) = o.get::<String>("endpoint")? {
        tg.endpoint = ep;
    }
    tg.served_model_name = o.get("served_model_name")?;
    tg.api_key = o
        .get::<String>("api_key")?
        .or_else(|| std::env::var("OPENAI_API_KEY").ok())
        .filter(|k| !k.is_empty());
    if let Some(h) = o.get::<Table>("headers")? {
        for pair in h.pairs::<String, String>() {
            tg.headers.push(pair?);
        }
    }
    let timeout = o.get::<f64>("timeout")?.unwrap_or(DEFAULT_TIMEOUT_S);
    if timeout.is_nan() || timeout <= 0.0 {
        return Err(mlua::Error::runtime(format!(
            "mb.target: timeout must be > 0 seconds (got {timeout}); every request has a limit \
             (math.huge for none)"
        )));
    }
    tg.timeout = timeout
        .is_finite()
        .then(|| Duration::from_secs_f64(timeout));
    tg.tls.insecure = o.get::<bool>("insecure")?.unwrap_or(false);
    tg.tls.ca_cert = o.get::<String>("ca_cert")?.map(std::path::PathBuf::from);
    if tg.tls.insecure && tg.base_url.scheme == crate::backend::Scheme::Https {
        eprintln!(
            "warning: --insecure: the certificate of {} is not checked; the connection is encrypted \
             but anyone in the middle could read it",
            tg.base_url.host
        );
    }
    tg.stream = o.get::<bool>("stream")?.unwrap_or(tg.backend.api.streams());
    tg.continuous_usage = o.get::<bool>("continuous_usage")?.unwrap_or(false);
    if let Some(b) = o.get::<Table>("body")? {
        match super::core::to_json(lua, Value::Table(b))? {
            serde_json::Value::Object(m) => tg.body = m,
            _ => {
                return Err(mlua::Error::runtime(
                    "mb.target: body must be a table of fields",
                ));
            }
        }
    }
    if let Some(p) = o.get::<String>("request_id_prefix")? {
        tg.request_id_prefix = p;
    }
    let tok = match o.value("tokenizer")? {
        Value::Nil => Arc::new(Tokenizer::words()),
        v => tokenizer_arg(v)?,
    };
    o.finish()?;
    Ok(LuaTarget {
        target: Arc::new(tg),
        tokenizer: tok,
        sim,
    })
}

/// Registers `target` and `sim` in the core module.
pub fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    m.set(
        "target",
        lua.create_function(|lua, t: Table| target(lua, t))?,
    )?;
    m.set(
        "sim",
        lua.create_function(|lua, v: Value| {
            let so = sim_options(lua, v, None)?;
            let h = start_sim(lua, &so)?;
            let t = lua.create_table()?;
            t.set("base_url", h.base_url())?;
            t.set("host", h.addr.ip().to_string())?;
            t.set("port", h.addr.port())?;
            t.set("model", h.model.clone())?;
            Ok(t)
        })?,
    )?;
    Ok(())
}
