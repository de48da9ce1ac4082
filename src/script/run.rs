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
use super::format_error;
use super::opts::{Decoded, LuaObject, LuaOptions, decode, decode_with};
use super::session::Common;
use crate::engine::records::record_json;
use crate::engine::schedule::{Piece, RateProfile, Shape};
use crate::engine::{Arrival, RunSpec, cancel};
use crate::metrics::{Metric, Slo};
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

/// `slo`: `{ ttft_ms = 500, tpot_ms = 50 }` or vLLM's `{ "ttft:500", "tpot:50" }`.
#[derive(Debug, Clone, Default)]
pub struct SloOpt(pub Slo);

/// The table form of [`SloOpt`].
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct SloTable {
    /// Time to first token, ms.
    ttft_ms: Option<f64>,
    /// Time per output token, ms.
    tpot_ms: Option<f64>,
    /// End-to-end latency, ms.
    e2el_ms: Option<f64>,
}

impl<'de> serde::Deserialize<'de> for SloOpt {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let v = serde_json::Value::deserialize(d)?;
        if let Some(list) = v.as_array() {
            let pairs: Vec<String> = list
                .iter()
                .map(|x| x.as_str().map(str::to_string))
                .collect::<Option<_>>()
                .ok_or_else(|| D::Error::custom("a list of \"metric:ms\" strings"))?;
            return Slo::parse(&pairs)
                .map(SloOpt)
                .map_err(|e| D::Error::custom(e.trim_start_matches("--goodput: ")));
        }
        let t = SloTable::deserialize(v).map_err(D::Error::custom)?;
        Ok(SloOpt(Slo {
            ttft_ms: t.ttft_ms,
            tpot_ms: t.tpot_ms,
            e2el_ms: t.e2el_ms,
        }))
    }
}

impl schemars::JsonSchema for SloOpt {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Slo".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        SloTable::json_schema(g)
    }
}

/// How often the server's Prometheus `/metrics` is read: seconds between
/// readings, or `false` (or 0) for never.
#[derive(Debug, Clone, Copy)]
pub struct ScrapeEvery(pub Option<Duration>);

impl<'de> serde::Deserialize<'de> for ScrapeEvery {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(true) => Ok(ScrapeEvery(Some(Duration::from_secs(1)))),
            serde_json::Value::Bool(false) => Ok(ScrapeEvery(None)),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(0.0) => Ok(ScrapeEvery(None)),
                Some(x) if x > 0.0 && x.is_finite() => {
                    Ok(ScrapeEvery(Some(Duration::from_secs_f64(x.max(0.05)))))
                }
                _ => Err(D::Error::custom("must be seconds between readings >= 0")),
            },
            other => Err(D::Error::custom(format!(
                "must be seconds between readings (e.g. 1) or false, got {other}"
            ))),
        }
    }
}

impl schemars::JsonSchema for ScrapeEvery {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ScrapeEvery".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": ["number", "boolean"] })
    }
}

/// Options that say what a result reports: `mb.run`, `mb.users`,
/// `res:summary` and `res:save` all take them.
#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResultOpts {
    /// Percentiles to report, each within 0..100 (default 99).
    #[serde(default, deserialize_with = "super::opts::seq")]
    percentiles: Option<Vec<f64>>,
    /// Metrics that get percentiles: any of "ttft", "tpot", "itl", "e2el", and vLLM's
    /// "client_queue_time" and "e2el_including_client_queue" (reported with a
    /// concurrency cap) (default "ttft", "tpot", "itl").
    #[serde(default, deserialize_with = "super::opts::seq")]
    metrics: Option<Vec<String>>,
    /// Service-level objectives for goodput: `{ ttft_ms = 500, tpot_ms = 50,
    /// e2el_ms = 2000 }` or `{ "ttft:500", "tpot:50" }`.
    slo: Option<SloOpt>,
    /// Also report the steady state: the plateau of requests in flight, ramp-up
    /// and drain left out, its window and its throughput and latencies (default false).
    steady_state: Option<bool>,
}

impl LuaOptions for ResultOpts {
    const WHAT: &'static str = "result options";
}

/// The keys of [`ResultOpts`].
pub(super) const RESULT_KEYS: &[&str] = &["percentiles", "metrics", "slo", "steady_state"];

/// The result options found among `d`'s values (`d` decoded with [`RESULT_KEYS`]
/// as shared keys, so its struct need not repeat them), defaulting to `base`.
pub(super) fn result_options<T: LuaOptions>(
    lua: &Lua,
    d: &Decoded<T>,
    base: &ResultOptions,
) -> mlua::Result<ResultOptions> {
    let o = super::opts::decode_part::<ResultOpts, T>(lua, d, RESULT_KEYS)?.opts;
    let mut r = base.clone();
    if let Some(ps) = o.percentiles {
        if let Some(bad) = ps.iter().find(|p| !(0.0..=100.0).contains(*p)) {
            return Err(mlua::Error::runtime(format!(
                "{}: percentiles must be within 0..100, got {bad}",
                T::WHAT
            )));
        }
        r.percentiles = ps;
    }
    if let Some(ms) = o.metrics {
        r.metrics = ms
            .iter()
            .map(|m| {
                Metric::parse(m)
                    .filter(|m| Metric::VLLM.contains(m) || Metric::VLLM_QUEUE.contains(m))
                    .ok_or_else(|| {
                        mlua::Error::runtime(format!(
                            "{}: unknown metric '{m}'; valid metrics: ttft, tpot, itl, e2el, client_queue_time, \
                             e2el_including_client_queue",
                            T::WHAT
                        ))
                    })
            })
            .collect::<mlua::Result<_>>()?;
    }
    if let Some(slo) = o.slo {
        r.slo = slo.0;
    }
    if let Some(st) = o.steady_state {
        r.steady_state = st;
    }
    Ok(r)
}

/// A duration option in seconds (`default` when absent; infinity = none).
pub(super) fn secs(
    what: &str,
    key: &str,
    v: Option<f64>,
    default: Option<f64>,
) -> mlua::Result<Option<Duration>> {
    match v.or(default) {
        Some(s) if s.is_nan() || s < 0.0 => Err(mlua::Error::runtime(format!(
            "{what}: {key} must be >= 0 seconds"
        ))),
        Some(s) if s.is_infinite() => Ok(None),
        Some(s) => Ok(Some(Duration::from_secs_f64(s))),
        None => Ok(None),
    }
}

/// Options of `res:summary`: only the result options.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryOpts {}

impl LuaOptions for SummaryOpts {
    const WHAT: &'static str = "res:summary";
}

/// Options of `res:save(path, {...})` (plus the result options).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Lua-object and shared fields are read through `Decoded`
pub struct SaveOpts {
    /// Also write per-request lists (ttfts, itls, ...), as vLLM's `--save-detailed`.
    detailed: Option<bool>,
    /// Append one JSON line to the file instead of writing it (vLLM's `--append-result`).
    append: Option<bool>,
    /// Directory for a relative path (created if missing).
    dir: Option<String>,
    /// Extra top-level fields, e.g. `{ tag = "a" }` (vLLM's `--metadata`).
    metadata: Option<LuaObject>,
}

impl LuaOptions for SaveOpts {
    const WHAT: &'static str = "res:save";
}

/// Options of `res:save_pytorch(path, {...})`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Lua-object and shared fields are read through `Decoded`
pub struct SavePytorchOpts {
    /// The run's arguments, recorded in each entry's `extra_info.args`.
    args: Option<LuaObject>,
    /// Directory for a relative path (created if missing).
    dir: Option<String>,
}

impl LuaOptions for SavePytorchOpts {
    const WHAT: &'static str = "res:save_pytorch";
}

/// Options of `res:plot_timeline(path, {...})`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlotTimelineOpts {
    /// Two ITL thresholds in ms for the colours: green below the first, orange below the second, red above (default { 25, 50 }, vLLM's --timeline-itl-thresholds).
    itl_thresholds: Option<Vec<f64>>,
}

impl LuaOptions for PlotTimelineOpts {
    const WHAT: &'static str = "res:plot_timeline";
}

/// Options of `res:records{...}`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Lua-object and shared fields are read through `Decoded`
pub struct RecordsOpts {
    /// Include the warm-up requests (default false).
    warmup: Option<bool>,
}

impl LuaOptions for RecordsOpts {
    const WHAT: &'static str = "res:records";
}

/// Options of `mb.run` (plus the run options, `session::MeasureOpts`, and the
/// [`ResultOpts`]).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Lua-object and shared fields are read through `Decoded`
pub struct RunOpts {
    /// What to send: a request set (`mb.dataset.*`, `mb.dataset.from_table`), a
    /// list of request tables or strings, or one request table. Required.
    requests: LuaObject,
    /// When requests are sent: `mb.arrival.*`, a rate in requests/s (Poisson),
    /// "inf" (all at once, the default), "trace" (the requests' timestamps), a
    /// list of send times in seconds, or a function `i -> seconds` (1-based `i`).
    arrival: Option<LuaObject>,
    /// Requests to send (default: the request set once; it is cycled when larger).
    num_requests: Option<u64>,
    /// Stop sending after this many seconds (requests in flight still finish).
    duration: Option<f64>,
    /// At most this many requests in flight at once (default: no limit).
    max_concurrency: Option<usize>,
    /// Requests sent first and left out of every statistic (default 0).
    warmup: Option<usize>,
    /// Ask the server to ignore end-of-sequence on every request, so answers are
    /// exactly `max_tokens` long (a request set's own setting otherwise).
    ignore_eos: Option<bool>,
    /// `function(record)` called once per finished request (not per token); it
    /// may return "stop" to end the run.
    on_response: Option<LuaObject>,
    /// Open the connections before the clock starts (default true).
    preconnect: Option<bool>,
    /// Call vLLM's `/start_profile` and `/stop_profile` around the run (default false).
    profile: Option<bool>,
    /// With `profile`: start the profiler only once the server's /metrics shows this many requests running, and stop it `profile_duration` seconds later (vLLM's Rust client's --profile-batch-threshold; default: at the start).
    profile_batch_threshold: Option<u32>,
    /// Seconds a threshold-started profile captures (--profile-duration, default 5).
    profile_duration: Option<f64>,
    /// Ask the server to drop its prefix cache before the measured part (POST
    /// /reset_prefix_cache, vLLM with VLLM_SERVER_DEV_MODE=1; or SGLang's
    /// /flush_cache), so prompts an earlier run sent are not served from it; an
    /// error when the server cannot (default false).
    reset_prefix_cache: Option<bool>,
    /// Also send one-token "Hi" probe requests at this rate (req/s), one at a time and outside max_concurrency, reported apart as probe_* (vLLM's --probe-request-rate; default 0: none).
    probe_rate: Option<f64>,
    /// Send only this process's shard of the schedule (`mb.shard()`, from --shard I/N, MOONBENCH_SHARD, JOB_COMPLETION_INDEX with --shards N, or Slurm), with its part of max_concurrency and warmup; false sends every request (default true).
    shard: Option<bool>,
}

impl LuaOptions for RunOpts {
    const WHAT: &'static str = "mb.run";
}

/// The result object returned by `mb.run`.
pub struct LuaResult(pub RunResult);

impl UserData for LuaResult {
    fn add_fields<F: UserDataFields<Self>>(f: &mut F) {
        f.add_field_method_get("partial", |_, r| Ok(r.0.outcome.partial));
        f.add_field_method_get("stopped", |_, r| Ok(r.0.outcome.stopped.clone()));
        f.add_field_method_get("duration", |_, r| Ok(r.0.outcome.duration()));
        f.add_field_method_get("model", |_, r| Ok(r.0.info.model_id.clone()));
    }

    fn add_methods<M: UserDataMethods<Self>>(m: &mut M) {
        m.add_method("summary", |lua, r, opts: Option<Table>| {
            let d = decode_with::<SummaryOpts>(lua, opts, RESULT_KEYS)?;
            let ro = result_options(lua, &d, &r.0.options)?;
            to_lua(lua, &r.0.to_json(&ro, false, &[]))
        });
        m.add_method("default_filename", |_, r, ()| Ok(r.0.default_filename()));
        m.add_method(
            "save",
            |lua, r, (path, opts): (Option<String>, Option<Table>)| {
                let d = decode_with::<SaveOpts>(lua, opts, RESULT_KEYS)?;
                let ro = result_options(lua, &d, &r.0.options)?;
                let (detailed, append, dir) = (
                    d.opts.detailed.unwrap_or(false),
                    d.opts.append.unwrap_or(false),
                    d.opts.dir.clone(),
                );
                let mut meta: Vec<(String, serde_json::Value)> = match d.value("metadata") {
                    Value::Nil => Vec::new(),
                    v => match to_json(lua, v)? {
                        serde_json::Value::Object(m) => m.into_iter().collect(),
                        _ => {
                            return Err(mlua::Error::runtime(
                                "res:save: metadata must be a table of fields",
                            ));
                        }
                    },
                };
                meta.sort_by(|a, b| a.0.cmp(&b.0));
                let name = path.unwrap_or_else(|| r.0.default_filename());
                let full = match dir {
                    Some(d) if !std::path::Path::new(&name).is_absolute() => {
                        PathBuf::from(d).join(&name)
                    }
                    _ => PathBuf::from(&name),
                };
                if detailed {
                    r.0.needs_records("res:save{ detailed = true }")
                        .map_err(mlua::Error::runtime)?;
                }
                if detailed && !r.0.outcome.texts_kept {
                    eprintln!(
                        "note: {}: no generated_texts: the run did not keep its answers' texts \
                         (add keep_text = true to the run's options; moonbench bench keeps them with --save-detailed)",
                        full.display()
                    );
                }
                let json = r.0.to_json(&ro, detailed, &meta);
                r.0.save(&full, &json, append)
                    .map_err(mlua::Error::runtime)?;
                Ok(full.display().to_string())
            },
        );
        m.add_method(
            "plot_timeline",
            |lua, r, (path, opts): (String, Option<Table>)| {
                let d = decode::<PlotTimelineOpts>(lua, opts)?;
                let th = d.opts.itl_thresholds.unwrap_or_else(|| vec![25.0, 50.0]);
                let [a, b] = th[..] else {
                    return Err(mlua::Error::runtime(format!(
                        "res:plot_timeline: itl_thresholds needs two values in ms, like {{ 25, 50 }}; got {}",
                        th.len()
                    )));
                };
                if !(a > 0.0 && b > a) {
                    return Err(mlua::Error::runtime(format!(
                        "res:plot_timeline: itl_thresholds must rise above 0, like {{ 25, 50 }}; got {{ {a}, {b} }}"
                    )));
                }
                r.0.needs_records("res:plot_timeline")
                    .map_err(mlua::Error::runtime)?;
                let html = crate::output::plots::timeline_page(&r.0, (a, b));
                crate::output::report::write(std::path::Path::new(&path), &html)
                    .map_err(mlua::Error::runtime)?;
                Ok(path)
            },
        );
        m.add_method("plot_dataset_stats", |_, r, path: String| {
            r.0.needs_records("res:plot_dataset_stats")
                .map_err(mlua::Error::runtime)?;
            let html = crate::output::plots::dataset_page(&r.0);
            crate::output::report::write(std::path::Path::new(&path), &html)
                .map_err(mlua::Error::runtime)?;
            Ok(path)
        });
        m.add_method(
            "save_pytorch",
            |lua, r, (path, opts): (String, Option<Table>)| {
                let d = decode::<SavePytorchOpts>(lua, opts)?;
                let args = match d.value("args") {
                    Value::Nil => serde_json::Value::Object(Default::default()),
                    v => to_json(lua, v)?,
                };
                let dir = d.opts.dir.clone();
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
            r.0.needs_records("res:records()")
                .map_err(mlua::Error::runtime)?;
            let warm = decode::<RecordsOpts>(lua, opts)?
                .opts
                .warmup
                .unwrap_or(false);
            let out = lua.create_table()?;
            for rec in r.0.outcome.records.iter().filter(|x| warm || !x.warmup) {
                let mut j = record_json(rec, r.0.outcome.t0_ns);
                if !r.0.outcome.texts_kept {
                    // Dropped after the live consumers saw it (`keep_text`): nil, not "".
                    j.as_object_mut().map(|m| m.remove("text"));
                }
                out.push(to_lua(lua, &j)?)?;
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
            super::stdlib_opts::check_options(lua, "res:print", opts.clone())?;
            let summary = to_lua(lua, &r.0.to_json(&r.0.options, false, &[]))?;
            let require: Function = lua.globals().get("require")?;
            let report: Table = require.call("moonbench.report")?;
            let print: Function = report.get("print")?;
            print.call::<()>((summary, opts))
        });
    }
}

/// `mb.run`: the result, and the error of a callback that stopped it (the
/// Lua wrapper in moonbench.lua raises it, carrying the result).
async fn lua_run(lua: Lua, t: Table) -> mlua::Result<(LuaResult, Option<String>)> {
    let (d, c) = super::session::begin::<RunOpts>(&lua, t)?;
    let tg = &c.target;
    let o = &d.opts;
    let mut requests = requests_arg(&lua, d.value("requests"), &tg.tokenizer)?;
    if let Some(on) = o.ignore_eos {
        requests = with_ignore_eos(&requests, on);
    }
    let num_requests = o.num_requests;
    let duration = secs("mb.run", "duration", o.duration, None)?;
    let n_for_arrival = num_requests.or((duration.is_none()).then_some(requests.len() as u64));
    let arrival = arrival_arg(&lua, d.value("arrival"), n_for_arrival, &requests)?;
    let shard = crate::engine::shard::current().filter(|_| o.shard.unwrap_or(true));
    // Each shard takes its part of the concurrency limit and of the warm-ups, so
    // that the shards together hold what one process would.
    let max_concurrency = match (o.max_concurrency, shard) {
        (Some(c), Some(s)) if (c as u64) < s.count => {
            return Err(mlua::Error::runtime(format!(
                "mb.run: max_concurrency {c} cannot be split over {} shards (each needs at least 1); \
                 raise it or use fewer shards",
                s.count
            )));
        }
        (Some(c), Some(s)) => Some(s.part(c as u64) as usize),
        (c, _) => c,
    };
    let warmups = match shard {
        Some(s) => s.part(o.warmup.unwrap_or(0) as u64) as usize,
        None => o.warmup.unwrap_or(0),
    };
    let on_response: Option<Function> = d.get(&lua, "on_response")?;
    let (profile, reset) = (
        o.profile.unwrap_or(false),
        o.reset_prefix_cache.unwrap_or(false),
    );
    if o.profile_batch_threshold.is_some() && !profile {
        return Err(mlua::Error::runtime(
            "mb.run: profile_batch_threshold starts the profiler when the server is that busy; \
             it needs profile = true (bench: --profile with --profile-batch-threshold)",
        ));
    }
    let profile_duration = secs("mb.run", "profile_duration", o.profile_duration, None)?;
    if o.profile_batch_threshold == Some(0) {
        return Err(mlua::Error::runtime(
            "mb.run: profile_batch_threshold must be at least 1 (requests running)",
        ));
    }
    let target = if profile || reset {
        let mut t = (*tg.target).clone();
        t.profile = profile;
        t.profile_batch_threshold = o.profile_batch_threshold;
        match (profile_duration, o.profile_duration) {
            (Some(d), _) => t.profile_duration = d,
            // math.huge: until the run ends.
            (None, Some(_)) => t.profile_duration = Duration::from_secs(10 * 365 * 86_400),
            _ => {}
        }
        t.reset_prefix_cache = reset;
        Arc::new(t)
    } else {
        tg.target.clone()
    };
    let spec = RunSpec {
        target,
        requests,
        arrival: arrival.clone(),
        num_requests,
        duration,
        max_concurrency,
        warmups,
        ready_timeout: c.ready_timeout,
        grace: c.grace,
        preconnect: o.preconnect.unwrap_or(true),
        progress: c.progress,
        records_path: c.records_path.clone(),
        keep_text: c.keep_text,
        bounded: c.bounded.then(|| c.options.slo.clone()),
        tokenizer: tg.tokenizer.clone(),
        io_threads: c.io_threads,
        server_metrics: c.server_metrics,
        probe_interval: match o.probe_rate {
            None => None,
            Some(0.0) => None,
            Some(r) if r > 0.0 && r.is_finite() => Some(Duration::from_secs_f64(1.0 / r)),
            Some(r) => {
                return Err(mlua::Error::runtime(format!(
                    "mb.run: probe_rate must be a number of requests per second > 0 (or 0 for none), got {r}"
                )));
            }
        },
        shard,
        start_at: crate::engine::shard::take_start_at(),
    };
    crate::engine::run::validate(&spec)
        .map_err(|e| mlua::Error::runtime(format!("mb.run: {e}")))?;
    let planned = crate::engine::run::planned_requests(&spec);
    let conns = crate::engine::run::preconnect_count(&spec, planned) as u64;
    if let Some(e) = crate::engine::os::fd_budget_error(conns, tg.sim.is_some(), true) {
        return Err(mlua::Error::runtime(format!("mb.run: {e}")));
    }
    let info = RunInfo {
        num_prompts: planned.unwrap_or(0),
        request_rate: arrival.rate(),
        burstiness: arrival.burstiness(),
        max_concurrency,
        num_warmups: warmups,
        shard,
        start_at: spec.start_at,
        fingerprint: if shard.is_some() {
            crate::engine::shard::fingerprint(&spec)
        } else {
            String::new()
        },
        ramp: crate::output::result::RampInfo::of(&arrival),
        custom_schedule: matches!(arrival, Arrival::Times(_)),
        ..c.info()
    };
    let (io, options) = (c.io.clone(), c.options.clone());
    drop(c);

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stop = cancel::Stop::default();
    let active = super::ActiveRun::new(&lua, {
        let stop = stop.clone();
        Box::new(move || stop.stop())
    });
    let mut join = io.spawn(crate::engine::run::run_with_stop(
        spec,
        on_response.as_ref().map(|_| tx),
        stop,
    ));
    let mut callback_error: Option<mlua::Error> = None;
    // Without on_response the channel is closed from the start: only the run is
    // awaited (a closed channel would otherwise wake this loop forever).
    let mut open = on_response.is_some();
    let script_cpu0 = crate::engine::os::current_thread_cpu_secs();
    let outcome = loop {
        tokio::select! {
            rec = rx.recv(), if open => match (rec, on_response.as_ref()) {
                (Some(rec), Some(f)) => call_on_response(&lua, f, &rec, &active, &mut callback_error).await,
                _ => open = false,
            },
            r = &mut join => break r,
        }
    };
    while let (Ok(rec), Some(f)) = (rx.try_recv(), on_response.as_ref()) {
        call_on_response(&lua, f, &rec, &active, &mut callback_error).await;
    }
    let outcome = outcome
        .map_err(|e| mlua::Error::runtime(format!("the run crashed: {e}")))?
        .map_err(|e| mlua::Error::runtime(format!("mb.run: {e}")))?;
    let script_cpu = crate::engine::os::current_thread_cpu_secs() - script_cpu0;
    let res = Common::result(
        options,
        info,
        outcome,
        script_cpu,
        &active,
        planned.is_some(),
    );
    Ok((res, callback_error.map(|e| format_error(&e))))
}

/// The requests with `ignore_eos` set (or removed) on each one that asks for a
/// length.
pub(super) fn with_ignore_eos(
    reqs: &crate::dataset::RequestSet,
    on: bool,
) -> crate::dataset::RequestSet {
    let mut v = reqs.as_ref().clone();
    for r in v.iter_mut() {
        let extra = r.extra.get_or_insert_with(Default::default);
        if on && r.max_tokens.is_some() {
            extra.insert("ignore_eos".into(), serde_json::Value::Bool(true));
        } else if !on {
            extra.remove("ignore_eos");
        }
    }
    Arc::new(v)
}

/// Calls the script's `on_response` with one record. Returning "stop" (or
/// false) stops the run gracefully; an error stops it too and is kept, to be
/// raised with the result once the run is over.
async fn call_on_response(
    lua: &Lua,
    f: &Function,
    rec: &crate::metrics::RequestRecord,
    active: &super::ActiveRun<'_>,
    err: &mut Option<mlua::Error>,
) {
    if err.is_some() {
        return;
    }
    let r = match to_lua(lua, &record_json(rec, rec.sent_ns)) {
        Ok(v) => f.call_async::<Value>(v).await,
        Err(e) => Err(e),
    };
    match r {
        Ok(Value::Boolean(false)) => active.stop.ask("on_response returned false".into()),
        Ok(Value::String(s)) if s == "stop" => {
            active.stop.ask("on_response returned \"stop\"".into())
        }
        Ok(_) => {}
        Err(e) => {
            let msg = format_error(&e);
            crate::i18n::eprint_error(&msg);
            eprintln!(
                "{}",
                crate::i18n::say("stopping the run (what was measured is kept)", &[])
            );
            active.stop.ask(format!("error in on_response: {msg}"));
            *err = Some(e);
        }
    }
}

/// Options of `mb.arrival.poisson`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoissonOpts {
    /// Mean requests per second. Required.
    rate: f64,
    /// Gamma shape of the gaps: 1 is Poisson, < 1 burstier, > 1 more even
    /// (vLLM's --burstiness; default 1).
    burstiness: Option<f64>,
    /// Seed of the gaps (default 0).
    seed: Option<u64>,
}

impl LuaOptions for PoissonOpts {
    const WHAT: &'static str = "mb.arrival.poisson";
}

/// Options of `mb.arrival.constant`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConstantOpts {
    /// Requests per second; request i (1-based) is sent at (i-1)/rate s. Required.
    rate: f64,
}

impl LuaOptions for ConstantOpts {
    const WHAT: &'static str = "mb.arrival.constant";
}

/// Options of `mb.arrival.ramp`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RampOpts {
    /// Starting rate, requests/s. Required.
    from: f64,
    /// Final rate, requests/s. Required.
    to: f64,
    /// Seconds the rate takes from `from` to `to` (the rate moves with time).
    duration: Option<f64>,
    /// Requests over which the rate moves (by request index, as vLLM's --ramp-up-*).
    requests: Option<u64>,
    /// "linear" (default) or "exponential".
    shape: Option<String>,
    /// Keep sending at `to` after the ramp (with duration; default false).
    hold: Option<bool>,
    /// Random (gamma) gaps around the curve instead of even ones (default: true
    /// when a seed is given).
    random: Option<bool>,
    /// Gamma shape of random gaps (default 1, Poisson).
    burstiness: Option<f64>,
    /// Seed of random gaps.
    seed: Option<u64>,
}

impl LuaOptions for RampOpts {
    const WHAT: &'static str = "mb.arrival.ramp";
}

/// The named options of `mb.arrival.steps{ {rate=, duration=}, ..., seed = }`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepsOpts {
    /// Random (gamma) gaps instead of even ones (default: true when a seed is given).
    random: Option<bool>,
    /// Gamma shape of random gaps (default 1, Poisson).
    burstiness: Option<f64>,
    /// Seed of random gaps.
    seed: Option<u64>,
}

impl LuaOptions for StepsOpts {
    const WHAT: &'static str = "mb.arrival.steps";
}

/// One step of `mb.arrival.steps`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StepOpts {
    /// Requests per second during the step (0 pauses). Required.
    rate: f64,
    /// Seconds the step lasts. Required.
    duration: f64,
}

impl LuaOptions for StepOpts {
    const WHAT: &'static str = "mb.arrival.steps";
}

/// Options of `mb.arrival.trace`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // `timestamps` is read through `Decoded`
pub struct TraceOpts {
    /// A request set with timestamps (a trace dataset) or a list of seconds. Required.
    timestamps: LuaObject,
    /// Multiplies every timestamp (0.5 replays twice as fast; default 1).
    scale: Option<f64>,
}

impl LuaOptions for TraceOpts {
    const WHAT: &'static str = "mb.arrival.trace";
}

/// Registers `run` and the `arrival` namespace.
pub fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    functions!(lua, m, { "run" => async lua_run });
    let arrival = lua.create_table()?;
    functions!(lua, arrival, {
        "poisson" => sync arrival_poisson,
        "constant" => sync arrival_constant,
        "ramp" => sync arrival_ramp,
        "steps" => sync arrival_steps,
        "infinite" => sync arrival_infinite,
        "trace" => sync arrival_trace,
        "times" => sync arrival_times,
    });
    m.set("arrival", arrival)?;
    Ok(())
}

/// `mb.arrival.poisson{...}`: Poisson (gamma) arrivals at a mean rate.
fn arrival_poisson(lua: &Lua, t: Table) -> mlua::Result<LuaArrival> {
    let o = decode::<PoissonOpts>(lua, Some(t))?.opts;
    let a = Arrival::Poisson {
        rate: o.rate,
        burstiness: o.burstiness.unwrap_or(1.0),
        seed: o.seed.unwrap_or(0),
    };
    a.validate()
        .map_err(|e| mlua::Error::runtime(format!("mb.arrival.poisson: {e}")))?;
    Ok(LuaArrival(a))
}

/// `mb.arrival.constant{ rate }`: evenly spaced arrivals.
fn arrival_constant(lua: &Lua, t: Table) -> mlua::Result<LuaArrival> {
    let o = decode::<ConstantOpts>(lua, Some(t))?.opts;
    let a = Arrival::Constant { rate: o.rate };
    a.validate()
        .map_err(|e| mlua::Error::runtime(format!("mb.arrival.constant: {e}")))?;
    Ok(LuaArrival(a))
}

/// `mb.arrival.ramp{...}`: a rate that moves from `from` to `to` over time or requests.
fn arrival_ramp(lua: &Lua, t: Table) -> mlua::Result<LuaArrival> {
    let o = decode::<RampOpts>(lua, Some(t))?.opts;
    let (from, to) = (o.from, o.to);
    let shape = Shape::parse(o.shape.as_deref().unwrap_or("linear"))
        .map_err(|e| mlua::Error::runtime(format!("mb.arrival.ramp: {e}")))?;
    let (duration, requests) = (o.duration, o.requests);
    let burstiness = o.burstiness.unwrap_or(1.0);
    let seed = o.seed;
    let random = o.random.unwrap_or(seed.is_some());
    let hold = o.hold.unwrap_or(false);
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
}

/// `mb.arrival.steps{ {rate, duration}, ... }`: a constant rate per step.
fn arrival_steps(lua: &Lua, t: Table) -> mlua::Result<LuaArrival> {
    // The steps are the list part; seed, burstiness and random the named part.
    let steps = lua.create_table()?;
    let named = lua.create_table()?;
    for pair in t.pairs::<Value, Value>() {
        let (k, v) = pair?;
        match k {
            Value::Integer(_) => steps.raw_set(k, v)?,
            k => named.raw_set(k, v)?,
        }
    }
    let o = decode::<StepsOpts>(lua, Some(named))?.opts;
    let mut pieces = Vec::new();
    for (i, step) in steps.sequence_values::<Table>().enumerate() {
        let st = decode::<StepOpts>(lua, Some(step?)).map_err(|e| {
            mlua::Error::runtime(format_error(&e).replacen(
                "mb.arrival.steps",
                &format!("mb.arrival.steps: step {}", i + 1),
                1,
            ))
        })?;
        let (rate, secs) = (st.opts.rate, st.opts.duration);
        pieces.push(Piece {
            secs,
            from: rate,
            to: rate,
            shape: Shape::Linear,
        });
    }
    let seed = o.seed;
    let burstiness = o.burstiness.unwrap_or(1.0);
    let random = o.random.unwrap_or(seed.is_some());
    let a = Arrival::Profile(Arc::new(RateProfile {
        pieces,
        random: random.then_some((burstiness, seed.unwrap_or(0))),
    }));
    a.validate()
        .map_err(|e| mlua::Error::runtime(format!("mb.arrival.steps: {e}")))?;
    Ok(LuaArrival(a))
}

/// `mb.arrival.infinite()`: everything at once (vLLM's `--request-rate inf`).
fn arrival_infinite(_: &Lua, _: ()) -> mlua::Result<LuaArrival> {
    Ok(LuaArrival(Arrival::Infinite))
}

/// `mb.arrival.trace{ timestamps, scale }`: a trace's own send times.
fn arrival_trace(lua: &Lua, t: Table) -> mlua::Result<LuaArrival> {
    let d = decode::<TraceOpts>(lua, Some(t))?;
    let scale = d.opts.scale.unwrap_or(1.0);
    if !(scale >= 0.0 && scale.is_finite()) {
        return Err(mlua::Error::runtime(
            "mb.arrival.trace: scale must be a number >= 0",
        ));
    }
    let a = match d.value("timestamps") {
        Value::UserData(ud) => trace_times(&ud.borrow::<super::data::LuaRequests>()?.0, scale)?,
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
    a.validate()
        .map_err(|e| mlua::Error::runtime(format!("mb.arrival.trace: {e}")))?;
    Ok(LuaArrival(a))
}

/// `mb.arrival.times(list)`: send times given in seconds.
fn arrival_times(_: &Lua, times: Vec<f64>) -> mlua::Result<LuaArrival> {
    let a = Arrival::Times(Arc::new(times));
    a.validate()
        .map_err(|e| mlua::Error::runtime(format!("mb.arrival.times: {e}")))?;
    Ok(LuaArrival(a))
}
