//! `mb.run{...}`: turns a Lua option table into a run, runs it on the I/O runtime
//! while this thread waits (calling `on_response` per finished request, if the
//! script gave one), and returns the result object (`:summary()`, `:save()`,
//! `:records()`, `:print()`). Also the `mb.arrival.*` constructors.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use mlua::{Function, Lua, Table, UserData, UserDataFields, UserDataMethods, Value};

use super::core::{to_json, to_lua};
use super::data::requests_arg;
use super::opts::Opts;
use super::target::LuaTarget;
use super::{Env, format_error};
use crate::engine::schedule::{Piece, RateProfile, Shape};
use crate::engine::{Arrival, RunSpec, cancel, run};
use crate::metrics::{Metric, Slo};
use crate::output::records::record_json;
use crate::output::result::{ResultOptions, RunInfo, RunResult};

/// An arrival process in Lua.
#[derive(Clone)]
pub struct LuaArrival(pub Arrival);

impl UserData for LuaArrival {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("rate", |_, a| Ok(a.0.rate()));
    }
    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("times", |_, a, n: usize| {
            Ok(a.0.iter().take(n).collect::<Vec<f64>>())
        });
    }
}

/// Send times from requests that carry timestamps (trace datasets), times `scale`.
fn trace_times(reqs: &[crate::dataset::Request], scale: f64) -> mlua::Result<Arrival> {
    let ts: Option<Vec<f64>> = reqs
        .iter()
        .map(|r| r.timestamp.map(|t| t * scale))
        .collect();
    let ts = ts.ok_or_else(|| {
        mlua::Error::runtime("arrival \"trace\": these requests have no timestamps (use a trace dataset such as mb.dataset.mooncake)")
    })?;
    Ok(Arrival::Times(Arc::new(ts)))
}

fn arrival_arg(
    lua: &Lua,
    v: Value,
    n: Option<u64>,
    reqs: &[crate::dataset::Request],
) -> mlua::Result<Arrival> {
    let a = match v {
        Value::String(s) if s == "trace" => trace_times(reqs, 1.0)?,
        Value::Nil => Arrival::Infinite,
        Value::UserData(ud) => ud.borrow::<LuaArrival>()?.0.clone(),
        Value::Number(r) if r.is_infinite() => Arrival::Infinite,
        Value::Number(r) => Arrival::Poisson {
            rate: r,
            burstiness: 1.0,
            seed: 0,
        },
        Value::Integer(r) => Arrival::Poisson {
            rate: r as f64,
            burstiness: 1.0,
            seed: 0,
        },
        Value::String(s) if s == "inf" => Arrival::Infinite,
        Value::Function(f) => {
            let n = n.ok_or_else(|| {
                mlua::Error::runtime(
                    "mb.run: an arrival function needs num_requests (or a finite request list)",
                )
            })?;
            let mut times = Vec::with_capacity(n as usize);
            for i in 1..=n {
                let t: f64 = f.call(i).map_err(|e| {
                    mlua::Error::runtime(format!(
                        "mb.run: arrival function at request {i}: {}",
                        format_error(&e)
                    ))
                })?;
                times.push(t);
            }
            Arrival::Times(Arc::new(times))
        }
        Value::Table(t) => Arrival::Times(Arc::new(lua.unpack::<Vec<f64>>(Value::Table(t))?)),
        other => {
            return Err(mlua::Error::runtime(format!(
                "mb.run: arrival must be mb.arrival.*, a rate, \"inf\", a list of times or a function, got a {}",
                other.type_name()
            )));
        }
    };
    a.validate()
        .map_err(|e| mlua::Error::runtime(format!("mb.run: arrival: {e}")))?;
    Ok(a)
}

fn slo_arg(lua: &Lua, v: Value) -> mlua::Result<Slo> {
    match v {
        Value::Nil => Ok(Slo::default()),
        Value::Table(t) if t.raw_len() > 0 => {
            let pairs: Vec<String> = lua.unpack(Value::Table(t))?;
            Slo::parse(&pairs).map_err(mlua::Error::runtime)
        }
        Value::Table(t) => {
            let o = Opts::new(lua, t, "slo");
            let slo = Slo {
                ttft_ms: o.get("ttft_ms")?,
                tpot_ms: o.get("tpot_ms")?,
                e2el_ms: o.get("e2el_ms")?,
            };
            o.finish()?;
            Ok(slo)
        }
        other => Err(mlua::Error::runtime(format!(
            "slo must be a table, got a {}",
            other.type_name()
        ))),
    }
}

/// Reads `percentiles`, `metrics` and `slo` from `o`, defaulting to `base`.
pub(super) fn result_options(
    lua: &Lua,
    o: &Opts<'_>,
    base: &ResultOptions,
) -> mlua::Result<ResultOptions> {
    let mut r = base.clone();
    if let Some(ps) = o.get::<Vec<f64>>("percentiles")? {
        if let Some(bad) = ps.iter().find(|p| !(0.0..=100.0).contains(*p)) {
            return Err(mlua::Error::runtime(format!(
                "percentiles must be within 0..100, got {bad}"
            )));
        }
        r.percentiles = ps;
    }
    if let Some(ms) = o.get::<Vec<String>>("metrics")? {
        r.metrics = ms
            .iter()
            .map(|m| {
                Metric::parse(m)
                    .filter(|m| Metric::VLLM.contains(m))
                    .ok_or_else(|| {
                        mlua::Error::runtime(format!(
                            "unknown metric '{m}'; valid metrics: ttft, tpot, itl, e2el"
                        ))
                    })
            })
            .collect::<mlua::Result<_>>()?;
    }
    let slo = o.value("slo")?;
    if !slo.is_nil() {
        r.slo = slo_arg(lua, slo)?;
    }
    Ok(r)
}

/// `server_metrics`: seconds between readings of the server's `/metrics`
/// (default 1), or false / 0 for none.
pub(super) fn server_metrics_arg(o: &Opts<'_>) -> mlua::Result<Option<Duration>> {
    // 服务器自身的 Prometheus 指标：默认每 1 秒读一次；false 或 0 关闭。
    match o.value("server_metrics")? {
        Value::Nil | Value::Boolean(true) => Ok(Some(Duration::from_secs(1))),
        Value::Boolean(false) => Ok(None),
        Value::Integer(n) if n >= 0 => Ok((n > 0).then(|| Duration::from_secs(n as u64))),
        Value::Number(x) if x >= 0.0 && x.is_finite() => {
            Ok((x > 0.0).then(|| Duration::from_secs_f64(x.max(0.05))))
        }
        other => Err(mlua::Error::runtime(format!(
            "{}: server_metrics must be seconds between readings (e.g. 1) or false, got {}",
            o.what(),
            other.type_name()
        ))),
    }
}

pub(super) fn secs(
    o: &Opts<'_>,
    key: &'static str,
    default: Option<f64>,
) -> mlua::Result<Option<Duration>> {
    let v = o.get::<f64>(key)?.or(default);
    match v {
        Some(s) if s.is_nan() || s < 0.0 => Err(mlua::Error::runtime(format!(
            "mb.run: {key} must be >= 0 seconds"
        ))),
        Some(s) if s.is_infinite() => Ok(None),
        Some(s) => Ok(Some(Duration::from_secs_f64(s))),
        None => Ok(None),
    }
}

/// The result object returned by `mb.run`.
pub struct LuaResult(pub RunResult);

impl UserData for LuaResult {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("partial", |_, r| Ok(r.0.outcome.partial));
        f.add_field_method_get("duration", |_, r| Ok(r.0.outcome.duration()));
        f.add_field_method_get("model", |_, r| Ok(r.0.info.model_id.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("summary", |lua, r, opts: Option<Table>| {
            let ro = match opts {
                Some(t) => {
                    let o = Opts::new(lua, t, "res:summary");
                    let ro = result_options(lua, &o, &r.0.options)?;
                    o.finish()?;
                    ro
                }
                None => r.0.options.clone(),
            };
            to_lua(lua, &r.0.to_json(&ro, false, &[]))
        });
        m.add_method("default_filename", |_, r, ()| Ok(r.0.default_filename()));
        m.add_method(
            "save",
            |lua, r, (path, opts): (Option<String>, Option<Table>)| {
                let (mut detailed, mut append, mut dir, mut meta) =
                    (false, false, None::<String>, Vec::new());
                let mut ro = r.0.options.clone();
                if let Some(t) = opts {
                    let o = Opts::new(lua, t, "res:save");
                    detailed = o.get("detailed")?.unwrap_or(false);
                    append = o.get("append")?.unwrap_or(false);
                    dir = o.get("dir")?;
                    if let Some(mt) = o.get::<Table>("metadata")? {
                        for pair in mt.pairs::<String, Value>() {
                            let (k, v) = pair?;
                            meta.push((k, to_json(lua, v)?));
                        }
                        meta.sort_by(|a, b| a.0.cmp(&b.0));
                    }
                    ro = result_options(lua, &o, &r.0.options)?;
                    o.finish()?;
                }
                let name = path.unwrap_or_else(|| r.0.default_filename());
                let full = match dir {
                    Some(d) if !std::path::Path::new(&name).is_absolute() => {
                        PathBuf::from(d).join(&name)
                    }
                    _ => PathBuf::from(&name),
                };
                let json = r.0.to_json(&ro, detailed, &meta);
                r.0.save(&full, &json, append)
                    .map_err(mlua::Error::runtime)?;
                Ok(full.display().to_string())
            },
        );
        m.add_method(
            "save_pytorch",
            |lua, r, (path, opts): (String, Option<Table>)| {
                let (mut args, mut dir) = (
                    serde_json::Value::Object(Default::default()),
                    None::<String>,
                );
                if let Some(t) = opts {
                    let o = Opts::new(lua, t, "res:save_pytorch");
                    if let Some(a) = o.get::<Value>("args")? {
                        args = to_json(lua, a)?;
                    }
                    dir = o.get("dir")?;
                    o.finish()?;
                }
                let full = match dir {
                    Some(d) if !std::path::Path::new(&path).is_absolute() => {
                        PathBuf::from(d).join(&path)
                    }
                    _ => PathBuf::from(&path),
                };
                let result = r.0.to_json(&r.0.options, false, &[]);
                let recs = crate::output::pytorch::records(&result, &args, &r.0.info.model_id);
                if let Some(d) = full.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(d).map_err(|e| {
                        mlua::Error::runtime(format!("cannot create {}: {e}", d.display()))
                    })?;
                }
                std::fs::write(&full, serde_json::to_string(&recs).unwrap_or_default()).map_err(
                    |e| mlua::Error::runtime(format!("cannot write {}: {e}", full.display())),
                )?;
                Ok(full.display().to_string())
            },
        );
        m.add_method("records", |lua, r, opts: Option<Table>| {
            let mut warm = false;
            if let Some(t) = opts {
                let o = Opts::new(lua, t, "res:records");
                warm = o.get("warmup")?.unwrap_or(false);
                o.finish()?;
            }
            let out = lua.create_table()?;
            for rec in r.0.outcome.records.iter().filter(|x| warm || !x.warmup) {
                out.push(to_lua(lua, &record_json(rec, r.0.outcome.t0_ns))?)?;
            }
            Ok(out)
        });
        m.add_method("server_metrics", |lua, r, ()| {
            match &r.0.outcome.server_metrics {
                Some(s) => to_lua(lua, &s.to_json()),
                None => Ok(Value::Nil),
            }
        });
        m.add_method("print", |lua, r, opts: Option<Table>| {
            let summary = to_lua(lua, &r.0.to_json(&r.0.options, false, &[]))?;
            let require: Function = lua.globals().get("require")?;
            let report: Table = require.call("moonbench.report")?;
            let print: Function = report.get("print")?;
            print.call::<()>((summary, opts))
        });
    }
}

async fn lua_run(lua: Lua, t: Table) -> mlua::Result<LuaResult> {
    if cancel::level() > 0 {
        return Err(mlua::Error::runtime(
            "interrupted: no further runs are started",
        ));
    }
    let o = Opts::new(&lua, t, "mb.run");
    let tg: mlua::UserDataRef<LuaTarget> = o.req("target").map_err(|e| {
        mlua::Error::runtime(format!(
            "{} (make one with mb.target{{...}})",
            format_error(&e)
        ))
    })?;
    let requests = requests_arg(&lua, o.req::<Value>("requests")?, &tg.tokenizer)?;
    let num_requests: Option<u64> = o.get("num_requests")?;
    let duration = secs(&o, "duration", None)?;
    let n_for_arrival = num_requests.or((duration.is_none()).then_some(requests.len() as u64));
    let arrival = arrival_arg(&lua, o.value("arrival")?, n_for_arrival, &requests)?;
    let max_concurrency: Option<usize> = o.get("max_concurrency")?;
    let warmups: usize = o.get("warmup")?.unwrap_or(0);
    let on_response: Option<Function> = o.get("on_response")?;
    let progress: bool = o.get("progress")?.unwrap_or(true);
    let records_path: Option<String> = o.get("records_file")?;
    let ready_timeout = secs(&o, "ready_timeout", Some(60.0))?;
    let grace = secs(&o, "grace", Some(5.0))?.unwrap_or(Duration::from_secs(3600));
    let preconnect: bool = o.get("preconnect")?.unwrap_or(true);
    let label: Option<String> = o.get("label")?;
    let server_metrics = server_metrics_arg(&o)?;
    let profile: bool = o.get("profile")?.unwrap_or(false);
    let options = result_options(&lua, &o, &ResultOptions::default())?;
    o.finish()?;
    let target = if profile {
        let mut t = (*tg.target).clone();
        t.profile = true;
        Arc::new(t)
    } else {
        tg.target.clone()
    };

    let (io, io_threads) = {
        let env = lua.app_data_ref::<Env>().expect("env");
        (env.io.clone(), env.io_threads)
    };
    let spec = RunSpec {
        target,
        requests,
        arrival: arrival.clone(),
        num_requests,
        duration,
        max_concurrency,
        warmups,
        ready_timeout,
        grace,
        preconnect,
        progress,
        records_path: records_path.map(PathBuf::from),
        tokenizer: tg.tokenizer.clone(),
        io_threads,
        server_metrics,
    };
    crate::engine::run::validate(&spec)
        .map_err(|e| mlua::Error::runtime(format!("mb.run: {e}")))?;
    let planned = crate::engine::run::planned_requests(&spec);
    let conns = crate::engine::run::preconnect_count(&spec, planned) as u64;
    if let Some(e) = crate::clock::fd_budget_error(conns, tg.sim.is_some()) {
        return Err(mlua::Error::runtime(format!("mb.run: {e}")));
    }
    let info = RunInfo {
        date: chrono::Local::now().format("%Y%m%d-%H%M%S").to_string(),
        backend: tg.target.backend.name.clone(),
        label,
        model_id: tg.target.model.clone(),
        tokenizer_id: tg.tokenizer.name(),
        num_prompts: planned.unwrap_or(0),
        request_rate: arrival.rate(),
        burstiness: arrival.burstiness(),
        max_concurrency,
        base_url: tg.target.base_url.as_string(),
        endpoint: tg.target.endpoint.clone(),
        num_warmups: warmups,
        ramp: crate::output::result::RampInfo::of(&arrival),
    };
    drop(tg);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut join = io.spawn(run(spec, on_response.as_ref().map(|_| tx)));
    let mut callback_error: Option<mlua::Error> = None;
    // Without on_response the channel is closed from the start: only the run is
    // awaited (a closed channel would otherwise wake this loop forever).
    let mut open = on_response.is_some();
    let script_cpu0 = crate::clock::current_thread_cpu_secs();
    let outcome = loop {
        tokio::select! {
            rec = rx.recv(), if open => match (rec, on_response.as_ref()) {
                (Some(rec), Some(f)) => call_on_response(&lua, f, &rec, &mut callback_error).await,
                _ => open = false,
            },
            r = &mut join => break r,
        }
    };
    while let (Ok(rec), Some(f)) = (rx.try_recv(), on_response.as_ref()) {
        call_on_response(&lua, f, &rec, &mut callback_error).await;
    }
    let mut outcome = outcome
        .map_err(|e| mlua::Error::runtime(format!("the run crashed: {e}")))?
        .map_err(|e| mlua::Error::runtime(format!("mb.run: {e}")))?;
    let script_cpu = crate::clock::current_thread_cpu_secs() - script_cpu0;
    let duration = outcome.duration();
    outcome.health.add_script_cpu(script_cpu, duration);
    if let Some(e) = callback_error {
        return Err(e);
    }
    let mut info = info;
    info.model_id = outcome.model.clone();
    if planned.is_none() {
        info.num_prompts = outcome.records.iter().filter(|r| !r.warmup).count() as u64;
    }
    Ok(LuaResult(RunResult {
        info,
        outcome,
        options,
    }))
}

/// Calls the script's `on_response` with one record; the first error stops the run
/// (as an interruption, so what was measured is kept) and is raised after it.
async fn call_on_response(
    lua: &Lua,
    f: &Function,
    rec: &crate::metrics::RequestRecord,
    err: &mut Option<mlua::Error>,
) {
    if err.is_some() {
        return;
    }
    let r = match to_lua(lua, &record_json(rec, rec.sent_ns)) {
        Ok(v) => f.call_async::<()>(v).await,
        Err(e) => Err(e),
    };
    if let Err(e) = r {
        eprintln!(
            "{}\nstopping the run (what was measured is kept)",
            format_error(&e)
        );
        cancel::interrupt();
        *err = Some(e);
    }
}

/// Registers `run` and the arrival constructors.
pub fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    m.set("run", lua.create_async_function(lua_run)?)?;
    m.set(
        "arrival_poisson",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.arrival.poisson");
            let a = Arrival::Poisson {
                rate: o.req("rate")?,
                burstiness: o.get("burstiness")?.unwrap_or(1.0),
                seed: o.get("seed")?.unwrap_or(0),
            };
            o.finish()?;
            a.validate()
                .map_err(|e| mlua::Error::runtime(format!("mb.arrival.poisson: {e}")))?;
            Ok(LuaArrival(a))
        })?,
    )?;
    m.set(
        "arrival_constant",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.arrival.constant");
            let a = Arrival::Constant {
                rate: o.req("rate")?,
            };
            o.finish()?;
            a.validate()
                .map_err(|e| mlua::Error::runtime(format!("mb.arrival.constant: {e}")))?;
            Ok(LuaArrival(a))
        })?,
    )?;
    m.set(
        "arrival_ramp",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.arrival.ramp");
            let from: f64 = o.req("from")?;
            let to: f64 = o.req("to")?;
            let shape = Shape::parse(&o.get::<String>("shape")?.unwrap_or_else(|| "linear".into()))
                .map_err(|e| mlua::Error::runtime(format!("mb.arrival.ramp: {e}")))?;
            let duration: Option<f64> = o.get("duration")?;
            let requests: Option<u64> = o.get("requests")?;
            let burstiness: f64 = o.get("burstiness")?.unwrap_or(1.0);
            let seed: Option<u64> = o.get("seed")?;
            let random: bool = o.get("random")?.unwrap_or(seed.is_some());
            let hold: bool = o.get("hold")?.unwrap_or(false);
            o.finish()?;
            let a = match (duration, requests) {
                (Some(d), None) => {
                    let mut pieces = vec![Piece {
                        secs: d,
                        from,
                        to,
                        shape,
                    }];
                    if hold {
                        pieces.push(Piece {
                            secs: f64::INFINITY,
                            from: to,
                            to,
                            shape: Shape::Linear,
                        });
                    }
                    Arrival::Profile(Arc::new(RateProfile {
                        pieces,
                        random: random.then_some((burstiness, seed.unwrap_or(0))),
                    }))
                }
                // vLLM's --ramp-up-*: the rate moves with the request index.
                (None, Some(n)) => Arrival::RampByIndex {
                    from,
                    to,
                    n,
                    shape,
                    burstiness: if random { burstiness } else { f64::INFINITY },
                    seed: seed.unwrap_or(0),
                },
                _ => {
                    return Err(mlua::Error::runtime(
                        "mb.arrival.ramp: give duration = seconds (the rate moves with time) \
                         or requests = N (it moves with the request index, as vLLM's --ramp-up-*)",
                    ));
                }
            };
            a.validate()
                .map_err(|e| mlua::Error::runtime(format!("mb.arrival.ramp: {e}")))?;
            Ok(LuaArrival(a))
        })?,
    )?;
    m.set(
        "arrival_steps",
        lua.create_function(|lua, t: Table| {
            let mut pieces = Vec::new();
            for (i, step) in t.clone().sequence_values::<Table>().enumerate() {
                let so = Opts::new(lua, step?, "mb.arrival.steps");
                let rate: f64 = so.req("rate").map_err(|e| {
                    mlua::Error::runtime(format!("mb.arrival.steps: step {}: {}", i + 1, format_error(&e)))
                })?;
                let secs: f64 = so.req("duration")?;
                so.finish()?;
                pieces.push(Piece { secs, from: rate, to: rate, shape: Shape::Linear });
            }
            let seed: Option<u64> = t.get("seed")?;
            let burstiness: f64 = t.get::<Option<f64>>("burstiness")?.unwrap_or(1.0);
            let random: bool = t.get::<Option<bool>>("random")?.unwrap_or(seed.is_some());
            for pair in t.pairs::<Value, Value>() {
                let (k, _) = pair?;
                if let Value::String(k) = &k {
                    let k = k.to_string_lossy();
                    if !["seed", "burstiness", "random"].contains(&k.as_str()) {
                        return Err(mlua::Error::runtime(format!(
                            "mb.arrival.steps: unknown option '{k}'; write steps as {{ {{ rate = 10, duration = 30 }}, ... }} plus seed, burstiness, random"
                        )));
                    }
                }
            }
            let a = Arrival::Profile(Arc::new(RateProfile {
                pieces,
                random: random.then_some((burstiness, seed.unwrap_or(0))),
            }));
            a.validate()
                .map_err(|e| mlua::Error::runtime(format!("mb.arrival.steps: {e}")))?;
            Ok(LuaArrival(a))
        })?,
    )?;
    m.set(
        "arrival_infinite",
        lua.create_function(|_, ()| Ok(LuaArrival(Arrival::Infinite)))?,
    )?;
    m.set(
        "arrival_trace",
        lua.create_function(|lua, t: Table| {
            let o = Opts::new(lua, t, "mb.arrival.trace");
            let scale: f64 = o.get("scale")?.unwrap_or(1.0);
            if !(scale >= 0.0 && scale.is_finite()) {
                return Err(mlua::Error::runtime(
                    "mb.arrival.trace: scale must be a number >= 0",
                ));
            }
            let a = match o.value("timestamps")? {
                Value::UserData(ud) => {
                    trace_times(&ud.borrow::<super::data::LuaRequests>()?.0, scale)?
                }
                Value::Table(tt) => {
                    let ts: Vec<f64> = lua.unpack(Value::Table(tt))?;
                    Arrival::Times(Arc::new(ts.into_iter().map(|x| x * scale).collect()))
                }
                _ => {
                    return Err(mlua::Error::runtime(
                        "mb.arrival.trace: timestamps must be a request set or a list of seconds",
                    ));
                }
            };
            o.finish()?;
            a.validate()
                .map_err(|e| mlua::Error::runtime(format!("mb.arrival.trace: {e}")))?;
            Ok(LuaArrival(a))
        })?,
    )?;
    m.set(
        "arrival_times",
        lua.create_function(|_, times: Vec<f64>| {
            let a = Arrival::Times(Arc::new(times));
            a.validate()
                .map_err(|e| mlua::Error::runtime(format!("mb.arrival.times: {e}")))?;
            Ok(LuaArrival(a))
        })?,
    )?;
    Ok(())
}
