//! What `mb.run` and `mb.users` share, written once: the run options both take
//! ([`MeasureOpts`]), their decoding together with the result options
//! ([`begin`]), the run's header ([`Common::info`]) and the result object a run
//! ends with ([`Common::result`]).

use std::path::PathBuf;
use std::time::Duration;

use mlua::{Lua, Table};
use tokio::runtime::Handle;

use super::opts::{Decoded, LuaObject, LuaOptions, decode_part, decode_with};
use super::run::{LuaResult, RESULT_KEYS, ScrapeEvery, result_options, secs};
use super::target::LuaTarget;
use super::{ActiveRun, Env, format_error};
use crate::engine::{RunOutcome, cancel};
use crate::output::result::{ResultOptions, RunInfo, RunResult};

/// Options every run takes, `mb.run` and `mb.users` alike (plus the result
/// options).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the Lua-object fields are read through `Decoded`
pub struct MeasureOpts {
    /// The server, from `mb.target{...}`. Required.
    target: Option<LuaObject>,
    /// Show a progress bar (default true).
    progress: Option<bool>,
    /// Write each request's record to this JSON-lines file as it finishes.
    records_file: Option<String>,
    /// Seconds to wait for the server to answer before the run (default 60).
    ready_timeout: Option<f64>,
    /// Seconds requests in flight may still finish after Ctrl-C or a stop (default 5).
    grace: Option<f64>,
    /// A name for this run in the result file and in reports.
    label: Option<String>,
    /// Save the result (vLLM's JSON) to this file when the run ends, however it ends.
    save: Option<String>,
    /// Seconds between readings of the server's `/metrics` (default 1), or false.
    server_metrics: Option<ScrapeEvery>,
    /// Keep each answer's text in the result (`res:records()`, `generated_texts` in a detailed save); default false: on_response, records_file and a user's answer get the text, the result keeps only the timings, to save memory.
    keep_text: Option<bool>,
    /// Keep no record in memory: fold each into HDR histograms (percentiles within 0.1%; counts, means and maxima exact) once it is written to records_file, which is then required; for runs of hours (default false).
    bounded: Option<bool>,
}

impl LuaOptions for MeasureOpts {
    const WHAT: &'static str = "run options";
}

/// The keys of [`MeasureOpts`].
const MEASURE_KEYS: &[&str] = &[
    "target",
    "progress",
    "records_file",
    "ready_timeout",
    "grace",
    "label",
    "save",
    "server_metrics",
    "keep_text",
    "bounded",
];

/// The run options of one call, decoded and checked.
pub(super) struct Common {
    /// The target (a reference into its Lua object: drop it before awaiting).
    pub target: mlua::UserDataRef<LuaTarget>,
    /// Show a progress bar.
    pub progress: bool,
    /// The records file.
    pub records_path: Option<PathBuf>,
    /// How long to wait for the server (`None`: no check).
    pub ready_timeout: Option<Duration>,
    /// How long requests in flight may still finish after a stop.
    pub grace: Duration,
    /// The run's label.
    pub label: Option<String>,
    /// How often to read `/metrics` (`None`: never).
    pub server_metrics: Option<Duration>,
    /// Keep answer texts in the result's records.
    pub keep_text: bool,
    /// Keep no measured record in memory, only a digest.
    pub bounded: bool,
    /// What the result reports.
    pub options: ResultOptions,
    /// The I/O runtime.
    pub io: Handle,
    /// Its worker threads.
    pub io_threads: usize,
}

/// Decodes the option table `t` of a run function: `T`'s own options, the run
/// options and the result options, every key checked once.
pub(super) fn begin<T: LuaOptions>(lua: &Lua, t: Table) -> mlua::Result<(Decoded<T>, Common)> {
    if cancel::level() > 0 {
        return Err(mlua::Error::runtime(
            "interrupted: no further runs are started",
        ));
    }
    let shared: Vec<&str> = MEASURE_KEYS.iter().chain(RESULT_KEYS).copied().collect();
    let d = decode_with::<T>(lua, Some(t), &shared)?;
    let m = decode_part::<MeasureOpts, T>(lua, &d, MEASURE_KEYS)?;
    let what = T::WHAT;
    let target: mlua::UserDataRef<LuaTarget> = m.req(lua, "target").map_err(|e| {
        mlua::Error::runtime(
            format!("{} (make one with mb.target{{...}})", format_error(&e)).replacen(
                MeasureOpts::WHAT,
                what,
                1,
            ),
        )
    })?;
    let o = &m.opts;
    let (io, io_threads) = {
        let env = lua.app_data_ref::<Env>().expect("env");
        (env.io.clone(), env.io_threads)
    };
    let common = Common {
        target,
        progress: o.progress.unwrap_or(true),
        records_path: o.records_file.clone().map(PathBuf::from),
        ready_timeout: secs(what, "ready_timeout", o.ready_timeout, Some(60.0))?,
        grace: secs(what, "grace", o.grace, Some(5.0))?.unwrap_or(Duration::from_secs(3600)),
        label: o.label.clone(),
        server_metrics: o
            .server_metrics
            .map_or(Some(Duration::from_secs(1)), |s| s.0),
        keep_text: o.keep_text.unwrap_or(false),
        bounded: o.bounded.unwrap_or(false),
        options: result_options(lua, &d, &ResultOptions::default())?,
        io,
        io_threads,
    };
    if common.bounded {
        let why = if common.records_path.is_none() {
            Some(
                "streams every record to records_file, the only place they are kept: add records_file = \"run.records.jsonl\" (moonbench bench: --save-records FILE)",
            )
        } else if common.keep_text {
            Some(
                "keeps no record, so no answer text either: drop keep_text (moonbench bench: --save-detailed; the records file has every text)",
            )
        } else if common.options.steady_state {
            Some(
                "keeps no record, and the steady state needs them: drop steady_state (moonbench bench: --steady-state)",
            )
        } else {
            None
        };
        if let Some(why) = why {
            return Err(mlua::Error::runtime(format!(
                "{what}: bounded = true {why}"
            )));
        }
    }
    Ok((d, common))
}

impl Common {
    /// The run's header as far as the options tell it (the caller adds what its
    /// kind of run knows: planned requests, rate, concurrency).
    pub fn info(&self) -> RunInfo {
        let tg = &self.target;
        RunInfo {
            date: chrono::Local::now().format("%Y%m%d-%H%M%S").to_string(),
            backend: tg.target.backend.name.clone(),
            label: self.label.clone(),
            model_id: tg.target.model.clone(),
            tokenizer_id: tg.tokenizer.name(),
            burstiness: 1.0,
            base_url: tg.target.base_url.as_string(),
            endpoint: tg.target.endpoint.clone(),
            ..Default::default()
        }
    }

    /// The result object of a finished run: the script thread's CPU time joins
    /// the health verdict, the stop's reason and the model actually used are
    /// recorded, and `num_prompts` is the measured count when none was planned.
    pub fn result(
        options: ResultOptions,
        mut info: RunInfo,
        mut outcome: RunOutcome,
        script_cpu: f64,
        active: &ActiveRun<'_>,
        planned: bool,
    ) -> LuaResult {
        let duration = outcome.duration();
        outcome.health.add_script_cpu(script_cpu, duration);
        outcome.stopped = active.reason();
        info.model_id = outcome.model.clone();
        if !planned {
            info.num_prompts = outcome.records.iter().filter(|r| !r.warmup).count() as u64;
        }
        LuaResult(RunResult {
            info,
            outcome,
            options,
        })
    }
}
