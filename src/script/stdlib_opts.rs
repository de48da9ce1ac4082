//! Option structs of the functions written in Lua (`stdlib/moonbench/*.lua`):
//! `res:print`, `mb.slo_search`, `mb.rate_sweep`. Lua code validates its option
//! table with `core.check_options(name, t)`, through the same [`decode`] as the
//! native functions, and the API reference documents them from these structs.

use mlua::{Lua, Table};

use super::opts::{LuaObject, LuaOptions, check};
use super::run::{ScrapeEvery, SloOpt};

/// Options of `res:print{...}` (and `report.format`).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the Lua code
pub struct PrintOpts {
    /// "en" (default) or "zh".
    lang: Option<Lang>,
    /// Only vLLM's table, without moonbench's own sections.
    vllm_only: Option<bool>,
}

impl LuaOptions for PrintOpts {
    const WHAT: &'static str = "res:print";
}

/// A language of printed output.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// English.
    En,
    /// Chinese.
    Zh,
}

/// Options of `mb.slo_search{...}`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the Lua code
pub struct SloSearchOpts {
    /// The server, from `mb.target{...}`. Required.
    target: Option<LuaObject>,
    /// What to send (as in mb.run). Required.
    requests: LuaObject,
    /// The service-level objectives, e.g. `{ ttft_ms = 500, tpot_ms = 50 }`. Required.
    slo: SloOpt,
    /// Share of requests that must meet every SLO (default 0.9).
    goal: Option<f64>,
    /// Search over "rate" (requests/s, default) or "concurrency".
    by: Option<String>,
    /// First load probed; the search doubles it until the goal fails (default 1).
    start: Option<f64>,
    /// Highest load probed.
    max: Option<f64>,
    /// Stop when the bracket is narrower than this share of its top (default 0.05).
    tolerance: Option<f64>,
    /// At most this many probes (default 14).
    max_probes: Option<u32>,
    /// Seconds each rate probe lasts, roughly (default 10).
    probe_seconds: Option<f64>,
    /// Requests per probe (default: enough for the goal's tail, see tail_samples,
    /// and at least rate × probe_seconds).
    num_requests: Option<u64>,
    /// Requests each probe must have in the goal's tail: a probe sends at least
    /// tail_samples / (1 − goal) requests (default 50: 500 at goal 0.9, 5000 at 0.99).
    tail_samples: Option<u32>,
    /// Arrivals of a rate probe: "poisson" (default) or "constant".
    arrival: Option<String>,
    /// Gamma shape of Poisson gaps (default 1).
    burstiness: Option<f64>,
    /// Concurrency cap of rate probes.
    max_concurrency: Option<usize>,
    /// Warm-up requests of each probe.
    warmup: Option<usize>,
    /// Seed of the arrivals.
    seed: Option<u64>,
    /// Save each probe's result in this directory.
    save_dir: Option<String>,
    /// Save per-request lists with each probe (needs save_dir).
    detailed: Option<bool>,
    /// `function(probe, result)` called after each probe, with the probe's result object.
    on_probe: Option<LuaObject>,
    /// Print a line per probe (default true).
    print: Option<bool>,
    /// Seconds between readings of the server's `/metrics`, or false.
    server_metrics: Option<ScrapeEvery>,
    /// Drop the server's prefix cache before each probe (as mb.run's
    /// reset_prefix_cache), so no probe is served from an earlier probe's prompts.
    reset_prefix_cache: Option<bool>,
}

impl LuaOptions for SloSearchOpts {
    const WHAT: &'static str = "mb.slo_search";
}

/// Options of `mb.rate_sweep{...}`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // read by the Lua code
pub struct RateSweepOpts {
    /// The server, from `mb.target{...}`. Required.
    target: Option<LuaObject>,
    /// What to send (as in mb.run). Required.
    requests: LuaObject,
    /// Rates probed between the synchronous and the throughput run (default 8).
    rates: Option<u32>,
    /// Requests per point (default 100).
    num_requests: Option<u64>,
    /// Requests of the synchronous run (default: the smaller of num_requests and 20).
    sync_requests: Option<u64>,
    /// Concurrency cap of the throughput run and the rate points.
    max_concurrency: Option<usize>,
    /// Seed of the Poisson arrivals (point i uses seed + i; default 0).
    seed: Option<u64>,
    /// Save each point's result in this directory.
    save_dir: Option<String>,
    /// Save per-request lists with each point (needs save_dir).
    detailed: Option<bool>,
    /// Print a line per point (default true).
    print: Option<bool>,
    /// Drop the server's prefix cache before each point (as mb.run's
    /// reset_prefix_cache), so no point is served from an earlier point's prompts.
    reset_prefix_cache: Option<bool>,
}

impl LuaOptions for RateSweepOpts {
    const WHAT: &'static str = "mb.rate_sweep";
}

/// Validates `t` as the options of the Lua-written function `name`.
pub fn check_options(lua: &Lua, name: &str, t: Option<Table>) -> mlua::Result<()> {
    match name {
        "res:print" => check::<PrintOpts>(lua, t),
        "mb.slo_search" => check::<SloSearchOpts>(lua, t),
        "mb.rate_sweep" => check::<RateSweepOpts>(lua, t),
        other => Err(mlua::Error::runtime(format!(
            "check_options: no option struct named '{other}'"
        ))),
    }
}
