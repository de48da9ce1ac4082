//! The command line: each subcommand is a few lines that run a bundled script or
//! call the library; `calibrate.rs` holds `moonbench calibrate` (a benchmark of
//! the client itself against the in-process simulator).

pub mod calibrate;

use clap::{Parser, Subcommand};

use std::path::PathBuf;

use crate::script::{self, Source};
use crate::sim::{SimOptions, server};

/// moonbench: a load tester for LLM inference servers, driven by Lua scripts.
#[derive(Parser, Debug)]
#[command(name = "moonbench", version, about, long_about = None)]
pub struct Cli {
    /// Language of help and messages (also after the command).
    #[arg(long, value_parser = ["en", "zh"])]
    pub lang: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `--lang`, the same on every clap-parsed subcommand.
#[derive(clap::Args, Debug, Clone)]
pub struct LangArg {
    /// Language of help, messages and what is written (tables, reports).
    #[arg(long = "lang", default_value = crate::i18n::default_lang(), value_parser = ["en", "zh"])]
    pub lang: String,
}

impl LangArg {
    /// Whether it asks for Chinese.
    pub fn zh(&self) -> bool {
        self.lang == "zh"
    }
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// vLLM-style serving benchmark (flags of vLLM's benchmark_serving.py; see `moonbench bench --help`).
    /// With no --base-url/--host/--port it benchmarks the built-in simulated server.
    #[command(disable_help_flag = true)]
    Bench {
        /// Flags passed to scripts/benchmark_serving.lua.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run every point of a config.yaml grid (the seed toolkit's run.py); see `moonbench sweep --help`.
    #[command(disable_help_flag = true)]
    Sweep {
        /// Config file and flags passed to scripts/sweep.lua.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Merge result JSON files into one table (the seed toolkit's aggregate_result.py).
    Aggregate(AggregateArgs),
    /// One self-contained HTML report with charts from result files.
    Report(ReportArgs),
    /// Compare two results side by side; --fail-if thresholds make it exit non-zero.
    Compare(CompareArgs),
    /// Merge the result files of a sharded run (--shard I/N) into one result, every statistic from all records.
    Merge(MergeArgs),
    /// First run against a server: config, reachability, a smoke test, then the sweep (scripts/check_server.lua).
    #[command(disable_help_flag = true)]
    Check {
        /// Config file and flags passed to scripts/check_server.lua.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a Lua workload script: `moonbench run SCRIPT.lua [-- ARGS...]`.
    ///
    /// moonbench's own flags may come anywhere among ARGS and are not passed to the
    /// script: --shard I/N, --shards N, --start-at TIME (a sharded run and its common
    /// start; mb.run and mb.users split their requests and users) and --metrics-port P,
    /// --metrics-host H (live Prometheus metrics); `moonbench bench --help` explains them.
    Run {
        /// Script file (or a bundled script such as examples/quickstart.lua).
        script: String,
        /// Arguments for the script (its `arg` table).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run the built-in simulated OpenAI-compatible server.
    ServeSim(Box<ServeSimArgs>),
    /// Measure the client's own cost and timing error against the in-process simulator.
    Calibrate(calibrate::CalibrateArgs),
    /// List the bundled scripts and examples, or print one (`moonbench scripts examples/quickstart.lua`).
    Scripts {
        /// A bundled file to print.
        name: Option<String>,
        #[command(flatten)]
        lang: LangArg,
    },
}

/// Flags of `merge`.
#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    #[command(flatten)]
    pub lang: LangArg,
    /// The result file of every shard of one run (saved with --save-result).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The merged result file.
    #[arg(short, long, default_value = "merged.json")]
    pub output: PathBuf,
    /// Percentiles reported, as vLLM's --metric-percentiles.
    #[arg(long, default_value = "99")]
    pub metric_percentiles: String,
    /// Metrics with percentiles, as vLLM's --percentile-metrics.
    #[arg(long, default_value = "ttft,tpot,itl")]
    pub percentile_metrics: String,
    /// Goodput objectives, as vLLM's --goodput (e.g. ttft:500 tpot:50).
    #[arg(long, num_args = 1..)]
    pub goodput: Vec<String>,
    /// Also write the per-request lists (vLLM's --save-detailed).
    #[arg(long)]
    pub save_detailed: bool,
}

/// Flags of `aggregate`.
#[derive(clap::Args, Debug)]
pub struct AggregateArgs {
    /// Folder of result JSON files, read with the folders under it (default: the
    /// newest run folder in results/, else results/ itself).
    #[arg(value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Which run folder.
    #[command(flatten)]
    pub runs: RunFolderArgs,
    /// Output file (default: DIR/aggregate_results_YYYYmmdd.csv).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Output format.
    #[arg(long, default_value = "csv", value_parser = ["csv", "markdown", "md", "json"])]
    pub format: String,
    /// Header rows: English then Chinese (the seed's layout), or one of them.
    #[arg(long, default_value = "both", value_parser = ["both", "en", "zh"])]
    pub header: String,
    /// Language of messages.
    #[command(flatten)]
    pub lang: LangArg,
}

/// The run-folder flags `aggregate` and `report` share.
#[derive(clap::Args, Debug)]
pub struct RunFolderArgs {
    /// A run folder by name, in results/ (or in the one folder given): `--dir Qwen3-8B_20261204_101500`.
    #[arg(long = "dir", value_name = "NAME")]
    pub run_dir: Option<String>,
    /// List the run folders in results/ (or in the one folder given), newest first, and stop.
    #[arg(long)]
    pub list: bool,
}

/// Flags of `report`.
#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// Result files or folders of them, read with the folders under them
    /// (default: the newest run folder in results/, else results/ itself).
    pub results: Vec<PathBuf>,
    /// Which run folder.
    #[command(flatten)]
    pub runs: RunFolderArgs,
    /// Output HTML file (default: report.html, inside the run folder when one was picked for you or by --dir).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Page title.
    #[arg(long, default_value = "moonbench report")]
    pub title: String,
    /// Language of the page's titles, axes, legends and notes.
    #[command(flatten)]
    pub lang: LangArg,
    /// Do not write the seed's text files (performance_report.txt, performance_summary.csv,
    /// performance_ranking.txt, ascii_charts.txt) beside the page.
    #[arg(long)]
    pub no_text: bool,
    /// What makes a chart series: auto (input/output lengths of seed-style files, else
    /// backend and model), label, backend, model, input_output or none.
    #[arg(long, default_value = "auto")]
    pub group_by: String,
    /// The run shown in the request timeline (file name; default: the first with per-request data).
    #[arg(long)]
    pub timeline: Option<String>,
    /// Also write every chart as a PNG into DIR (rendered in Rust with bundled fonts,
    /// Chinese included; no browser or network), plus the seed's one-image dashboard.
    #[arg(long, value_name = "DIR")]
    pub png: Option<PathBuf>,
}

/// Flags of `compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    #[command(flatten)]
    pub lang: LangArg,
    /// The baseline result.
    pub a: PathBuf,
    /// The result compared with it.
    pub b: PathBuf,
    /// Fail (exit 1) if a metric breaks a limit: "p99_ttft_ms>+10%" (change), "failed>0" (value).
    #[arg(long = "fail-if")]
    pub fail_if: Vec<String>,
    /// Show every numeric key, not only the headline metrics.
    #[arg(long)]
    pub all: bool,
}

fn read_result(
    path: &std::path::Path,
) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    crate::output::files::read(path)
        .map(|r| r.data)
        .map_err(|why| format!("{}: {why}", path.display()))
}

/// The folder `aggregate`/`report` read (see `output::runs::choose`), after
/// `--list` (printed, then `None`); messages in the current language.
fn chosen_folder(
    path: Option<&std::path::Path>,
    run_dir: Option<&str>,
    list: bool,
) -> Result<Option<PathBuf>, String> {
    use crate::output::runs;
    let results = std::path::Path::new("results");
    let parent = if run_dir.is_some() || list {
        path.unwrap_or(results)
    } else {
        results
    };
    if list {
        print!("{}", runs::listing(parent));
        return Ok(None);
    }
    let c = runs::choose(parent, run_dir, path)?;
    if let Some(n) = &c.note {
        eprintln!("{n}");
    }
    Ok(Some(c.path))
}

/// `moonbench aggregate`, its messages in `--lang`.
fn aggregate(a: AggregateArgs) -> i32 {
    crate::i18n::with_lang(a.lang.zh(), || aggregate_in_lang(a))
}

fn aggregate_in_lang(a: AggregateArgs) -> i32 {
    use crate::i18n::trf;
    use crate::output::aggregate::{Format, Header, collect, default_output, write};
    let (format, header) = (
        Format::parse(&a.format).unwrap(),
        Header::parse(&a.header).unwrap(),
    );
    let dir = match chosen_folder(a.path.as_deref(), a.runs.run_dir.as_deref(), a.runs.list) {
        Ok(Some(d)) => d,
        Ok(None) => return 0,
        Err(e) => {
            eprintln!("moonbench aggregate: {e}");
            return 1;
        }
    };
    let t = match collect(&dir) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("moonbench aggregate: {e}");
            return 1;
        }
    };
    for (p, why) in &t.skipped {
        eprintln!("{}", trf("warning: skipped {}: {}", &[&p.display(), why]));
    }
    if t.rows.is_empty() {
        eprintln!(
            "moonbench aggregate: {}",
            trf(
                "no result files in {} (nor in the folders under it)",
                &[&dir.display()]
            )
        );
        return 1;
    }
    let out = a.output.unwrap_or_else(|| default_output(&dir, format));
    if let Err(e) = write(&t, &out, format, header) {
        eprintln!("moonbench aggregate: {e}");
        return 1;
    }
    println!(
        "{}",
        trf(
            "aggregated {} results -> {}",
            &[&t.rows.len(), &out.display()]
        )
    );
    0
}

/// `moonbench report`, its page and messages in `--lang`.
fn report(a: ReportArgs) -> i32 {
    crate::i18n::with_lang(a.lang.zh(), || report_in_lang(a))
}

fn report_in_lang(a: ReportArgs) -> i32 {
    use crate::i18n::{tr, trf};
    let by = match crate::output::report::GroupBy::parse(&a.group_by) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("moonbench report: {e}");
            return 2;
        }
    };
    let (inputs, folder) = if a.results.len() > 1 && (a.runs.run_dir.is_some() || a.runs.list) {
        eprintln!(
            "moonbench report: {}",
            tr("--dir and --list take at most one folder (the one run folders are in)")
        );
        return 2;
    } else if a.results.len() > 1 {
        (a.results.clone(), None)
    } else {
        match chosen_folder(
            a.results.first().map(PathBuf::as_path),
            a.runs.run_dir.as_deref(),
            a.runs.list,
        ) {
            Ok(Some(d)) => {
                // A run folder picked for the user gets its report inside it.
                let inside = a.results.is_empty() || a.runs.run_dir.is_some();
                (vec![d.clone()], inside.then_some(d))
            }
            Ok(None) => return 0,
            Err(e) => {
                eprintln!("moonbench report: {e}");
                return 1;
            }
        }
    };
    let (rs, skipped) = crate::output::files::read_all(&inputs);
    for (p, why) in &skipped {
        eprintln!("{}", trf("warning: skipped {}: {}", &[&p.display(), why]));
    }
    if rs.is_empty() {
        let place: Vec<String> = inputs.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "moonbench report: {}",
            trf(
                "no result files in {} (run `moonbench sweep` or `moonbench bench --save-result` first)",
                &[&place.join(", ")]
            )
        );
        return 1;
    }
    let output = a.output.clone().unwrap_or_else(|| match &folder {
        Some(d) => d.join("report.html"),
        None => PathBuf::from("report.html"),
    });
    let (html, figures) =
        crate::output::report::build_with_figures(&rs, &a.title, a.timeline.as_deref(), by);
    match crate::output::report::write(&output, &html) {
        Ok(()) => {
            println!(
                "{}",
                trf(
                    "report of {} results -> {}",
                    &[&rs.len(), &output.display()]
                )
            );
            if let Some(dir) = &a.png {
                match crate::output::png::write_all(dir, &figures) {
                    Ok(files) => println!(
                        "{}",
                        trf("{} PNG charts -> {}", &[&files.len(), &dir.display()])
                    ),
                    Err(e) => {
                        eprintln!("moonbench report: --png {}: {e}", dir.display());
                        return 1;
                    }
                }
            }
            // The seed's text files beside the page.
            let (cs, left) = crate::output::seed_report::configs(&rs);
            if !cs.is_empty() && !a.no_text {
                let dir = output.parent().filter(|d| !d.as_os_str().is_empty());
                match crate::output::seed_report::write_all(
                    dir.unwrap_or(std::path::Path::new(".")),
                    &cs,
                ) {
                    Ok(files) => {
                        let names: Vec<String> =
                            files.iter().map(|p| p.display().to_string()).collect();
                        println!(
                            "{}",
                            trf(
                                "the seed's text report, summary, ranking and ASCII charts -> {}",
                                &[&names.join(", ")]
                            )
                        );
                    }
                    Err(e) => eprintln!("{}", trf("warning: {}", &[&e])),
                }
                if !left.is_empty() {
                    eprintln!(
                        "{}",
                        trf(
                            "note: not in the text report (no mean TTFT/TPOT/ITL or throughput): {}",
                            &[&left.join(", ")]
                        )
                    );
                }
            }
            0
        }
        Err(e) => {
            eprintln!("moonbench report: {e}");
            1
        }
    }
}

fn merge(a: MergeArgs) -> i32 {
    use crate::metrics::summary::{Metric, Slo};
    let run = || -> Result<String, String> {
        let percentiles = a
            .metric_percentiles
            .split(',')
            .map(|p| {
                p.trim().parse::<f64>().ok().filter(|v| (0.0..=100.0).contains(v)).ok_or_else(|| {
                    format!("--metric-percentiles: '{p}' is not a percentile from 0 to 100 (e.g. 50,90,99)")
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let metrics = a
            .percentile_metrics
            .split(',')
            .map(|m| {
                Metric::parse(m).ok_or_else(|| {
                    format!(
                        "--percentile-metrics: unknown metric '{m}' (ttft, tpot, itl, e2el, ...)"
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let options = crate::output::result::ResultOptions {
            percentiles,
            metrics,
            slo: Slo::parse(&a.goodput)?,
            steady_state: false,
        };
        let m = crate::output::merge::merge(&a.files, options, a.save_detailed)?;
        for n in &m.notes {
            eprintln!("warning: {n}");
        }
        let v = crate::output::merge::to_json(&m, a.save_detailed);
        std::fs::write(&a.output, serde_json::to_string(&v).unwrap_or_default())
            .map_err(|e| format!("cannot write {}: {e}", a.output.display()))?;
        Ok(format!(
            "merged {} shards ({} requests, starts {:.3} s apart) into {}",
            m.shards,
            m.result.outcome.records.len(),
            m.skew_s,
            a.output.display()
        ))
    };
    match run() {
        Ok(msg) => {
            println!("{msg}");
            0
        }
        Err(e) => {
            eprintln!("moonbench merge: {e}");
            1
        }
    }
}

fn compare(a: CompareArgs) -> i32 {
    use crate::output::compare::{Threshold, rows, table};
    let thresholds: Result<Vec<Threshold>, String> =
        a.fail_if.iter().map(|t| Threshold::parse(t)).collect();
    let (ra, rb, thresholds) = match (read_result(&a.a), read_result(&a.b), thresholds) {
        (Ok(x), Ok(y), Ok(t)) => (x, y, t),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("moonbench compare: {e}");
            return 2;
        }
    };
    let shown = rows(&ra, &rb, a.all);
    print!(
        "{}",
        table(
            &shown,
            &a.a.display().to_string(),
            &a.b.display().to_string()
        )
    );
    let every = rows(&ra, &rb, true);
    let mut failed = 0;
    for t in &thresholds {
        match every.iter().find(|r| r.key == t.key) {
            None => {
                eprintln!(
                    "moonbench compare: --fail-if '{}': '{}' is not a number in both results",
                    t.text, t.key
                );
                return 2;
            }
            Some(r) => {
                if let Some(msg) = t.check(r) {
                    println!("FAIL {msg}");
                    failed += 1;
                }
            }
        }
    }
    if !thresholds.is_empty() && failed == 0 {
        println!("all {} threshold(s) passed", thresholds.len());
    }
    if failed > 0 { 1 } else { 0 }
}

/// Flags of `serve-sim`.
#[derive(clap::Args, Debug)]
pub struct ServeSimArgs {
    #[command(flatten)]
    pub lang: LangArg,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Model id to serve.
    #[arg(long, default_value = "moonbench-sim")]
    pub model: String,
    /// Fixed engine: time to first token (ms; default 50).
    #[arg(long)]
    pub ttft_ms: Option<f64>,
    /// Fixed engine: time between tokens (ms; default 10).
    #[arg(long)]
    pub itl_ms: Option<f64>,
    /// Fixed engine: extra TTFT per prompt token (µs).
    #[arg(long)]
    pub prefill_us_per_token: Option<f64>,
    /// Relative jitter of TTFT and ITL (0.1 = ±10%).
    #[arg(long, default_value_t = 0.0)]
    pub jitter: f64,
    /// Tokens packed into each SSE chunk.
    #[arg(long, default_value_t = 1)]
    pub tokens_per_chunk: u32,
    /// Fixed engine: at most this many requests generate at once; others wait.
    #[arg(long)]
    pub max_running: Option<usize>,
    /// Random faults, e.g. `reset=0.01,http500=0.02,stall=0.001`.
    #[arg(long, default_value = "")]
    pub faults: String,
    /// Seed for output lengths, jitter and faults.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Tokenizer for counting prompt tokens (default: words).
    #[arg(long)]
    pub tokenizer: Option<String>,
    /// The first N tokens of every chat answer are reasoning (`reasoning_content`).
    #[arg(long, default_value_t = 0)]
    pub reasoning_tokens: u32,
    /// Do not serve `/metrics`, the profiler endpoints or `/reset_prefix_cache`
    /// (as a vLLM started without them).
    #[arg(long)]
    pub no_metrics: bool,
    /// `step` (a vLLM-like engine: continuous batching, KV cache, preemption, prefix
    /// cache, chunked prefill) or `fixed` (the same TTFT and ITL for every request).
    /// Default: `fixed` when a fixed-engine flag is given, else `step`.
    #[arg(long)]
    pub engine: Option<String>,
    /// Step engine: the model and GPU to simulate; `--preset list` lists them.
    #[arg(long)]
    pub preset: Option<String>,
    /// Step engine: your own costs and limits, a JSON file (see docs/simulator.md).
    #[arg(long)]
    pub preset_file: Option<String>,
    /// Step engine: most sequences per step (default the preset's).
    #[arg(long)]
    pub max_num_seqs: Option<usize>,
    /// Step engine: most tokens per step (default the preset's).
    #[arg(long)]
    pub max_num_batched_tokens: Option<u32>,
    /// Step engine: tokens per KV block (default 16).
    #[arg(long)]
    pub block_size: Option<u32>,
    /// Step engine: KV-cache blocks (default: what fits the preset's GPU).
    #[arg(long)]
    pub num_gpu_blocks: Option<u32>,
    /// Step engine: KV-cache size in tokens (instead of --num-gpu-blocks).
    #[arg(long)]
    pub kv_cache_tokens: Option<u64>,
    /// Step engine: longest prompt + max_tokens accepted (default 32768, or the cache size).
    #[arg(long)]
    pub max_model_len: Option<u32>,
    /// Step engine: prefill long prompts over several steps (the default).
    #[arg(long, overrides_with = "no_enable_chunked_prefill")]
    pub enable_chunked_prefill: bool,
    /// Step engine: prefill each prompt in one step.
    #[arg(long)]
    pub no_enable_chunked_prefill: bool,
    /// Step engine: reuse KV blocks of identical prefixes (the default).
    #[arg(long, overrides_with = "no_enable_prefix_caching")]
    pub enable_prefix_caching: bool,
    /// Step engine: no prefix cache.
    #[arg(long)]
    pub no_enable_prefix_caching: bool,
    /// Step engine: fixed time of every step (ms; default the preset's).
    #[arg(long)]
    pub step_ms: Option<f64>,
    /// Step engine: time per prompt token prefilled (µs; default the preset's).
    #[arg(long)]
    pub step_prefill_us: Option<f64>,
    /// Step engine: extra fixed time of a step that prefills any tokens (ms; default the preset's).
    #[arg(long)]
    pub step_prefill_ms: Option<f64>,
    /// Step engine: time per sequence decoded (µs; default the preset's).
    #[arg(long)]
    pub step_decode_us: Option<f64>,
    /// Step engine: time per KV-cache token read (ns; default the preset's).
    #[arg(long)]
    pub step_kv_ns: Option<f64>,
    /// Step engine: N engines behind a router, like vLLM's data parallelism (default 1).
    #[arg(long)]
    pub data_parallel: Option<usize>,
    /// Step engine: round-robin, least-loaded (default) or prefix-aware.
    #[arg(long)]
    pub router: Option<String>,
    /// Keep when each chunk of each request (by `x-request-id`) was sent, and serve
    /// it at `GET /moonbench/truth?prefix=ID_PREFIX` (taken once), so a client in
    /// another process can measure its own timing error (`calibrate --sim-process`).
    #[arg(long)]
    pub record_truth: bool,
}

/// `Some(true)` / `Some(false)` for a `--x` / `--no-x` pair, `None` for neither.
fn flag_pair(yes: bool, no: bool) -> Option<bool> {
    match (yes, no) {
        (_, true) => Some(false),
        (true, false) => Some(true),
        (false, false) => None,
    }
}

fn serve_sim(a: ServeSimArgs) -> i32 {
    if a.preset.as_deref() == Some("list") {
        print!("{}", crate::sim::preset::list());
        return 0;
    }
    let opts = SimOptions {
        model: a.model,
        ttft_ms: a.ttft_ms,
        itl_ms: a.itl_ms,
        prefill_us_per_token: a.prefill_us_per_token,
        jitter: a.jitter,
        tokens_per_chunk: a.tokens_per_chunk,
        max_running: a.max_running,
        faults: a.faults,
        seed: a.seed,
        threads: a.threads,
        tokenizer: a.tokenizer,
        reasoning_tokens: a.reasoning_tokens,
        metrics: !a.no_metrics,
        engine: a.engine,
        preset: a.preset,
        preset_file: a.preset_file,
        max_num_seqs: a.max_num_seqs,
        max_num_batched_tokens: a.max_num_batched_tokens,
        block_size: a.block_size,
        num_gpu_blocks: a.num_gpu_blocks,
        kv_cache_tokens: a.kv_cache_tokens,
        max_model_len: a.max_model_len,
        enable_chunked_prefill: flag_pair(a.enable_chunked_prefill, a.no_enable_chunked_prefill),
        enable_prefix_caching: flag_pair(a.enable_prefix_caching, a.no_enable_prefix_caching),
        step_ms: a.step_ms,
        step_prefill_us: a.step_prefill_us,
        step_prefill_ms: a.step_prefill_ms,
        step_decode_us: a.step_decode_us,
        step_kv_ns: a.step_kv_ns,
        data_parallel: a.data_parallel,
        router: a.router,
        record_truth: a.record_truth,
        ..Default::default()
    };
    let state = match crate::sim::SimState::new(&opts) {
        Ok(s) => std::sync::Arc::new(s),
        Err(e) => {
            crate::i18n::eprint_error(&format!("moonbench serve-sim: {e}"));
            return 2;
        }
    };
    crate::engine::os::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(opts.threads.max(1))
        .thread_name("mb-sim")
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let bind = format!("{}:{}", a.host, a.port);
        let listener = match tokio::net::TcpListener::bind(&bind).await {
            Ok(l) => {
                crate::sim::widen_backlog(&l);
                l
            }
            Err(e) => {
                crate::i18n::eprint_error(&format!(
                    "moonbench serve-sim: cannot listen on {bind}: {e} (is the port in use? try --port 0)"
                ));
                return 1;
            }
        };
        let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or(bind);
        let timing = match &state.engine {
            Some(e) => {
                let c = &e.config;
                format!(
                    "step engine x{} ({} router): preset {}, {} KV blocks of {}, max {} seqs and {} tokens per step, step {:.2} ms (+{:.1} ms with prefill) + {:.1} µs/prefill token + {:.1} µs/seq + {:.1} ns/KV token",
                    e.list.len(),
                    e.router.name(),
                    c.preset,
                    c.num_blocks, c.block_size, c.max_num_seqs, c.max_num_batched_tokens,
                    c.cost.step_ms, c.cost.prefill_ms, c.cost.prefill_us, c.cost.decode_us, c.cost.kv_ns
                )
            }
            None => format!(
                "fixed engine: TTFT {} ms, ITL {} ms",
                opts.ttft_ms.unwrap_or(50.0),
                opts.itl_ms.unwrap_or(10.0)
            ),
        };
        println!("moonbench simulated server on http://{addr} (model {}, {timing}); Ctrl-C to stop", opts.model);
        server::serve(listener, state, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        0
    })
}

/// Runs a bundled script with arguments.
fn bundled(name: &'static str, args: Vec<String>) -> i32 {
    let code = script::embedded(name).expect("bundled script");
    script::run_script(Source::Embedded(name, code), args)
}

/// `--metrics-port P` (and `--metrics-host H`, default all interfaces, as a pod's
/// metrics must be reachable by Prometheus): taken out of `args`; serves the live
/// metrics from now until the process ends.
fn live_metrics(args: &mut Vec<String>) -> Result<(), String> {
    use crate::engine::shard;
    let port = shard::take_flag(args, "--metrics-port", "9464")?;
    let host = shard::take_flag(args, "--metrics-host", "127.0.0.1")?;
    let Some(port) = port else {
        return match host {
            Some(_) => Err("--metrics-host needs --metrics-port P as well".into()),
            None => Ok(()),
        };
    };
    let port: u16 = port.trim().parse().map_err(|_| {
        format!("--metrics-port {port}: not a port number (0-65535; 0 picks a free one)")
    })?;
    let host = host.unwrap_or_else(|| "0.0.0.0".into());
    let labels = match shard::current() {
        Some(s) => format!("shard=\"{}\",shards=\"{}\"", s.index, s.count),
        None => String::new(),
    };
    let live = crate::metrics::live::enable(labels, crate::engine::os::process_cpu_secs);
    let addr = crate::metrics::live::serve(live, &host, port)?;
    eprintln!("moonbench: live metrics on http://{addr}/metrics");
    Ok(())
}

/// Whether the command line asks for Chinese: `--lang zh` (or `--lang=zh`)
/// anywhere in it, else `--lang en` not, and the user's language
/// ([`crate::i18n::default_lang`]) is.
/// `cmd` (built) with its about line, every argument's help and the headings in
/// Chinese from the message catalogue, defaults and choices spelled out in
/// Chinese; a text the catalogue lacks stays English. Recurses into subcommands.
pub fn localized(mut cmd: clap::Command) -> clap::Command {
    let t = |s: &str| crate::i18n::zh_of(s.trim());
    if let Some(z) = cmd.get_about().and_then(|a| t(&a.to_string())) {
        cmd = cmd.about(z);
    }
    cmd = cmd
        .help_template("{about-with-newline}\n用法：{usage}\n\n{all-args}{after-help}")
        .subcommand_help_heading("命令");
    let ids: Vec<clap::Id> = cmd.get_arguments().map(|a| a.get_id().clone()).collect();
    for id in ids {
        cmd = cmd.mut_arg(id, |a| {
            let mut help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            if let Some(z) = t(&help) {
                help = z;
            }
            let takes = a.get_action().takes_values();
            let defaults: Vec<String> = a
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let heading = if a.is_positional() {
                "参数"
            } else {
                "选项"
            };
            let mut a = a.help_heading(heading);
            if takes && !defaults.is_empty() && !a.is_hide_default_value_set() {
                help.push_str(&format!("（默认：{}）", defaults.join(" ")));
                a = a.hide_default_value(true);
            }
            let choices: Vec<String> = a
                .get_possible_values()
                .iter()
                .filter(|p| !p.is_hide_set())
                .map(|p| p.get_name().to_string())
                .collect();
            if takes && !choices.is_empty() && !a.is_hide_possible_values_set() {
                help.push_str(&format!("（可选：{}）", choices.join("、")));
                a = a.hide_possible_values(true);
            }
            a.help(help)
        });
    }
    let subs: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in subs {
        cmd = cmd.mut_subcommand(name, localized);
    }
    cmd
}

/// A Chinese line after clap's own (English) error: the common mistakes by name
/// — an unknown flag with clap's suggestion, a bad value, a missing argument —
/// from the message catalogue, else a pointer to the help.
fn clap_error_zh(e: &clap::Error) -> String {
    use crate::i18n::{tr, trf};
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let ctx = |k: ContextKind| match e.get(k) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    // clap names a flag with its value's placeholder (`--format <FORMAT>`): the flag alone.
    let arg = ctx(ContextKind::InvalidArg)
        .map(|a| a.split(' ').next().unwrap_or_default().to_string())
        .unwrap_or_default();
    match e.kind() {
        ErrorKind::UnknownArgument => match ctx(ContextKind::SuggestedArg).or_else(|| {
            // clap suggests nothing where a positional could take the word
            // (`report --pgn`): the nearest long flag of any subcommand.
            use clap::CommandFactory;
            let cmd = Cli::command();
            let longs: Vec<String> = cmd
                .get_subcommands()
                .flat_map(|c| c.get_arguments())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                // Known to another subcommand only: not a fix for this one.
                .filter(|l| *l != arg)
                .collect();
            crate::suggest::suggest(&arg, longs.iter().map(String::as_str)).map(str::to_string)
        }) {
            Some(hint) => trf("Unknown flag {} (did you mean {}?)", &[&arg, &hint]),
            None => trf(
                "Unknown flag {}; `moonbench COMMAND --help` lists the flags.",
                &[&arg],
            ),
        },
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => trf(
            "{}: bad value {}; `moonbench COMMAND --help` says what it takes.",
            &[&arg, &ctx(ContextKind::InvalidValue).unwrap_or_default()],
        ),
        ErrorKind::MissingRequiredArgument => trf(
            "Missing {}; `moonbench COMMAND --help` shows the usage.",
            &[&arg],
        ),
        ErrorKind::InvalidSubcommand => match ctx(ContextKind::SuggestedSubcommand) {
            Some(hint) => trf(
                "Unknown command {} (did you mean {}?)",
                &[
                    &ctx(ContextKind::InvalidSubcommand).unwrap_or_default(),
                    &hint,
                ],
            ),
            None => tr("Unknown command; `moonbench --help` lists them.").to_string(),
        },
        _ => {
            tr("The command line is wrong (see above). `moonbench COMMAND --help` lists the flags.")
                .to_string()
        }
    }
}

/// Parses the command line, its help in Chinese when [`crate::i18n::wants_zh`].
fn parse_cli() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let args: Vec<String> = std::env::args().collect();
    if !crate::i18n::wants_zh(&args) {
        return Cli::try_parse_from(&args);
    }
    let mut cmd = Cli::command();
    cmd.build();
    let m = localized(cmd).try_get_matches_from(&args)?;
    Cli::from_arg_matches(&m)
}

/// Runs the command line; returns the exit code.
pub fn main() -> i32 {
    crate::clock::epoch();
    crate::i18n::set_process_lang(crate::i18n::wants_zh(&std::env::args().collect::<Vec<_>>()));
    let cli = match parse_cli() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            if e.use_stderr() && crate::i18n::wants_zh(&std::env::args().collect::<Vec<_>>()) {
                eprintln!("{}", crate::i18n::with_lang(true, || clap_error_zh(&e)));
            }
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    // --shard I/N (and --shards N) belong to moonbench, not to the script: taken
    // out here, with the shard from the environment when the flag is absent.
    let mut cmd = cli.command;
    if let (
        Some(lang),
        Command::Bench { args } | Command::Sweep { args } | Command::Check { args },
    ) = (&cli.lang, &mut cmd)
    {
        args.extend(["--lang".to_string(), lang.clone()]);
    }
    if let Command::Bench { args } | Command::Sweep { args } | Command::Run { args, .. } = &mut cmd
    {
        if let Err(e) = crate::engine::shard::init(args) {
            eprintln!("moonbench: {e}");
            return 2;
        }
        if let Err(e) = live_metrics(args) {
            eprintln!("moonbench: {e}");
            return 2;
        }
    }
    match cmd {
        Command::Bench { args } => bundled("scripts/benchmark_serving.lua", args),
        Command::Sweep { args } => bundled("scripts/sweep.lua", args),
        Command::Check { args } => bundled("scripts/check_server.lua", args),
        Command::Aggregate(a) => aggregate(a),
        Command::Report(a) => report(a),
        Command::Compare(a) => compare(a),
        Command::Merge(a) => merge(a),
        Command::Run { script: path, args } => {
            let args = if args.first().map(String::as_str) == Some("--") {
                args[1..].to_vec()
            } else {
                args
            };
            match Source::find(&path) {
                Ok(src) => script::run_script(src, args),
                Err(e) => {
                    eprintln!("moonbench run: {e}");
                    2
                }
            }
        }
        Command::ServeSim(a) => serve_sim(*a),
        Command::Calibrate(a) => calibrate::main(a),
        Command::Scripts { name, .. } => match name {
            Some(n) => match script::embedded(&n) {
                Some(text) => {
                    print!("{text}");
                    0
                }
                None => {
                    eprintln!(
                        "moonbench scripts: no bundled file '{n}'; run `moonbench scripts` to list them"
                    );
                    2
                }
            },
            None => {
                for n in script::embedded_names() {
                    println!("{n}");
                }
                0
            }
        },
    }
}

#[cfg(test)]
mod help_tests {
    use super::*;
    use clap::CommandFactory;

    /// Every help text and about line of `cmd` and its subcommands.
    fn texts(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
        if let Some(a) = cmd.get_about() {
            out.push((path.to_string(), a.to_string()));
        }
        for a in cmd.get_arguments() {
            if let Some(h) = a.get_help() {
                out.push((format!("{path} --{}", a.get_id()), h.to_string()));
            }
        }
        for s in cmd.get_subcommands() {
            texts(s, &format!("{path} {}", s.get_name()), out);
        }
    }

    #[test]
    fn the_help_a_beginner_reads_is_all_in_the_catalogue() {
        let mut cmd = Cli::command();
        cmd.build();
        let mut all = Vec::new();
        texts(&cmd, "moonbench", &mut all);
        let zh = crate::i18n::messages_zh();
        let missing: Vec<String> = all
            .iter()
            .filter(|(_, t)| !zh.contains_key(t.trim()))
            .map(|(p, t)| format!("{p}\t{t}"))
            .collect();
        assert!(
            missing.is_empty(),
            "add to src/i18n/messages.zh.tsv:\n{}",
            missing.join("\n")
        );
        let help = localized(cmd)
            .find_subcommand_mut("report")
            .unwrap()
            .render_help()
            .to_string();
        assert!(
            help.contains("用法：moonbench report") && help.contains("选项"),
            "{help}"
        );
        assert!(
            help.contains("（默认：auto）") && help.contains("（可选：en、zh）"),
            "{help}"
        );
    }

    #[test]
    fn clap_errors_get_a_chinese_line_naming_the_mistake() {
        let mut cmd = Cli::command();
        cmd.build();
        let cmd = localized(cmd);
        let err = |args: &str| {
            let e = cmd
                .clone()
                .try_get_matches_from(args.split(' '))
                .unwrap_err();
            crate::i18n::with_lang(true, || clap_error_zh(&e))
        };
        assert_eq!(
            err("moonbench aggregate --formt csv"),
            "未知参数 --formt（是不是 --format？）"
        );
        assert_eq!(
            err("moonbench aggregate --format xml"),
            "--format 的取值 xml 不对；`moonbench 子命令 --help` 说明可以取哪些值。"
        );
        assert_eq!(
            err("moonbench reprot"),
            "未知命令 reprot（是不是 report？）"
        );
        assert!(
            err("moonbench merge").starts_with("缺少 "),
            "{}",
            err("moonbench merge")
        );
    }

    #[test]
    fn lang_is_read_in_any_position() {
        let a = |s: &str| s.split(' ').map(String::from).collect::<Vec<_>>();
        assert!(crate::i18n::wants_zh(&a(
            "moonbench report --help --lang zh"
        )));
        assert!(crate::i18n::wants_zh(&a("moonbench --lang=zh report")));
        assert!(!crate::i18n::wants_zh(&a(
            "moonbench report --lang en --help"
        )));
    }
}
