//! `moonbench calibrate`: a benchmark of the client itself (not a test).
//!
//! Runs the engine against the in-process simulator (its own runtime and threads)
//! and reports (1) streamed tokens per client CPU-second and (2) the client's timing
//! error: for every chunk, the measured arrival minus the simulator's true send time
//! (both on the shared monotonic clock). TTFT error = first chunk's read lag; ITL
//! error = measured gap − true gap.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::backend::{Backend, BaseUrl, Target};
use crate::clock;
use crate::dataset::Request;
use crate::engine::health::IO_THREAD_PREFIX;
use crate::engine::{Arrival, RunSpec, run};
use crate::metrics::describe;
use crate::sim::{SimHandle, SimOptions};
use crate::tokenizer::Tokenizer;

/// Flags of `calibrate`.
#[derive(clap::Args, Debug, Clone)]
pub struct CalibrateArgs {
    /// Concurrent streams for the accuracy runs (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    pub streams: Vec<usize>,
    /// Simulated TTFT for the accuracy runs (ms).
    #[arg(long, default_value_t = 50.0)]
    pub ttft_ms: f64,
    /// Simulated ITL for the accuracy runs (ms).
    #[arg(long, default_value_t = 20.0)]
    pub itl_ms: f64,
    /// Tokens per request in the accuracy runs.
    #[arg(long, default_value_t = 64)]
    pub accuracy_tokens: u32,
    /// Concurrent streams for the throughput run.
    #[arg(long, default_value_t = 64)]
    pub throughput_streams: usize,
    /// Tokens per request in the throughput run.
    #[arg(long, default_value_t = 256)]
    pub throughput_tokens: u32,
    /// Simulated ITL of the throughput run (ms). 0, the default: tokens as fast as
    /// the simulator sends them, so the run measures the client's cost per token (a
    /// read may then carry several events); 1 or more: about one read per token, the
    /// cost of a wake-up and a socket read each.
    #[arg(long, default_value_t = 0.0)]
    pub throughput_itl_ms: f64,
    /// Waves of requests in the throughput run (requests = streams × waves).
    #[arg(long, default_value_t = 10)]
    pub waves: usize,
    /// Client I/O threads.
    #[arg(long, default_value_t = 1)]
    pub client_threads: usize,
    /// Simulator threads.
    #[arg(long, default_value_t = 1)]
    pub sim_threads: usize,
    /// Smaller runs (for a quick look).
    #[arg(long)]
    pub quick: bool,
    /// Print the numbers as JSON.
    #[arg(long)]
    pub json: bool,
    /// Measure dataset preparation instead of the client: tokenizer load, 10,000
    /// random prompts of 1,024 tokens, and a trace replay set (see --tokenizer, --trace).
    #[arg(long)]
    pub datasets: bool,
    /// Tokenizer for --datasets (tokenizer.json, .json.gz or model directory).
    #[arg(long, default_value = "words")]
    pub tokenizer: String,
    /// Mooncake-format trace for --datasets (JSONL or .jsonl.gz).
    #[arg(long)]
    pub trace: Option<String>,
    /// Run the throughput part against this already running simulator
    /// (`moonbench serve-sim --ttft-ms 1 --itl-ms 0`, best on another core: `taskset
    /// -c 1`) instead of an in-process one, so no simulator work can share the client's
    /// process; its own --itl-ms then applies, not --throughput-itl-ms.
    #[arg(long)]
    pub sim_url: Option<String>,
}

/// Where a run sends: the base URL and the model served there.
struct Server<'a> {
    url: String,
    model: String,
    truth: Option<&'a crate::sim::truth::TruthLog>,
}

struct Measured {
    tokens: u64,
    wall: f64,
    client_cpu: f64,
    ttft_err_ms: Vec<f64>,
    itl_err_ms: Vec<f64>,
    failed: u64,
    health: String,
}

fn client_cpu() -> f64 {
    crate::engine::os::thread_cpu_secs(IO_THREAD_PREFIX)
        + crate::engine::os::thread_cpu_secs("mb-dispatch")
}

fn one_run(
    rt: &tokio::runtime::Runtime,
    client_threads: usize,
    sim: &Server<'_>,
    streams: usize,
    requests: usize,
    tokens: u32,
) -> Result<Measured, String> {
    if let Some(t) = sim.truth {
        t.clear();
    }
    let mut t = Target::new(
        Backend::parse("openai").unwrap(),
        BaseUrl::parse(&sim.url)?,
        &sim.model,
    );
    t.body.insert("ignore_eos".into(), true.into());
    t.timeout = Some(Duration::from_secs(120));
    t.request_id_prefix = format!("cal-{streams}-");
    let reqs: Vec<Request> = (0..requests)
        .map(|i| Request::text(format!("calibrate {i}"), 2, Some(tokens)))
        .collect();
    let spec = RunSpec {
        server_metrics: None,
        probe_interval: None,
        target: Arc::new(t),
        requests: Arc::new(reqs),
        arrival: Arrival::Infinite,
        num_requests: None,
        duration: None,
        max_concurrency: Some(streams),
        warmups: 0,
        ready_timeout: Some(Duration::from_secs(10)),
        grace: Duration::from_secs(5),
        preconnect: true,
        progress: false,
        records_path: None,
        keep_text: false,
        tokenizer: Arc::new(Tokenizer::words()),
        io_threads: client_threads,
        shard: None,
        start_at: None,
    };
    let cpu0 = client_cpu();
    let t0 = clock::now_ns();
    let out = rt.block_on(run(spec, None))?;
    let wall = clock::secs(clock::now_ns() - t0);
    let cpu = client_cpu() - cpu0;
    let mut m = Measured {
        tokens: 0,
        wall,
        client_cpu: cpu,
        ttft_err_ms: Vec::new(),
        itl_err_ms: Vec::new(),
        failed: 0,
        health: out.health.verdict.clone(),
    };
    for r in &out.records {
        if !r.success() {
            m.failed += 1;
            continue;
        }
        m.tokens += r.output_tokens as u64;
        let Some(truth) = sim.truth.and_then(|t| t.get(&r.request_id)) else {
            continue;
        };
        if truth.chunk_ns.len() != r.chunks.len() || r.chunks.is_empty() {
            continue;
        }
        let got: Vec<u64> = r.chunks.times().collect();
        m.ttft_err_ms
            .push((got[0] as f64 - truth.chunk_ns[0] as f64) / 1e6);
        for i in 1..got.len() {
            let measured = got[i] as f64 - got[i - 1] as f64;
            let real = truth.chunk_ns[i] as f64 - truth.chunk_ns[i - 1] as f64;
            m.itl_err_ms.push((measured - real) / 1e6);
        }
    }
    Ok(m)
}

/// Runs the calibration; returns the exit code.
pub fn main(a: CalibrateArgs) -> i32 {
    match calibrate(a) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("moonbench calibrate: {e}");
            1
        }
    }
}

/// Resident memory of this process in bytes (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(0) as u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |p| p * page)
}

fn text_bytes(reqs: &[Request]) -> (u64, u64) {
    use crate::dataset::Prompt;
    let mut total = 0u64;
    let mut shared: std::collections::HashSet<*const u8> = std::collections::HashSet::new();
    let mut unique = 0u64;
    for r in reqs {
        match &r.prompt {
            Prompt::Text(t) => {
                total += t.len() as u64;
                unique += t.len() as u64;
            }
            Prompt::Parts(p) => {
                for part in p {
                    total += part.as_str().len() as u64;
                    if shared.insert(part.shared().as_ptr()) {
                        unique += part.shared().len() as u64;
                    }
                }
            }
            Prompt::TokenIds(ids) => {
                total += 4 * ids.len() as u64;
                unique += 4 * ids.len() as u64;
            }
            Prompt::Texts(v) => {
                let n: u64 = v.iter().map(|t| t.len() as u64).sum();
                total += n;
                unique += n;
            }
            Prompt::Audio(a) => {
                total += a.data.len() as u64;
                if shared.insert(a.data.as_ptr()) {
                    unique += a.data.len() as u64;
                }
            }
            Prompt::Messages(_) => {}
        }
    }
    (total, unique)
}

/// `calibrate --datasets`: how fast prompts are prepared and how much memory they take.
fn datasets_bench(a: &CalibrateArgs) -> Result<(), String> {
    use crate::dataset::{mooncake, random};
    let mb = |b: u64| b as f64 / 1e6;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "moonbench calibrate --datasets ({cores} cores, build: {})",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let t = std::time::Instant::now();
    let tok = Tokenizer::load(&a.tokenizer)?;
    let load = t.elapsed().as_secs_f64();
    let t = std::time::Instant::now();
    let pool = tok.word_pool();
    let pool_s = t.elapsed().as_secs_f64();
    println!(
        "tokenizer {}: loaded in {load:.2} s; word pool {} in {pool_s:.2} s",
        tok.name(),
        pool.as_ref().map_or_else(
            |e| format!("unavailable ({e})"),
            |p| format!("of {} tokens", p.len())
        )
    );
    // The trace first, in a fresh process, so its memory is not hidden by reuse.
    if let Some(path) = &a.trace {
        let rss0 = rss_bytes();
        let t = std::time::Instant::now();
        let reqs = mooncake::generate(
            &tok,
            std::path::Path::new(path),
            &mooncake::MooncakeSpec::default(),
        )?;
        let secs = t.elapsed().as_secs_f64();
        let tokens: u64 = reqs.iter().map(|r| r.prompt_tokens as u64).sum();
        let (total, unique) = text_bytes(&reqs);
        println!(
            "trace {path}: {} requests, {:.1} M prompt tokens, ready in {secs:.2} s; text {:.0} MB held in {:.0} MB of shared blocks, RSS +{:.0} MB",
            reqs.len(),
            tokens as f64 / 1e6,
            mb(total),
            mb(unique),
            mb(rss_bytes().saturating_sub(rss0))
        );
    }
    let rss0 = rss_bytes();
    let t = std::time::Instant::now();
    let spec = random::RandomSpec {
        n: 10_000,
        input_len: 1024,
        output_len: 128,
        ..Default::default()
    };
    let reqs = random::generate(&tok, &spec)?;
    let secs = t.elapsed().as_secs_f64();
    let exact = reqs.iter().all(|r| r.prompt_tokens == 1024);
    let (text, _) = text_bytes(&reqs);
    println!(
        "random: 10,000 prompts x 1,024 tokens in {secs:.2} s (all exactly 1,024: {exact}); text {:.0} MB, RSS +{:.0} MB",
        mb(text),
        mb(rss_bytes().saturating_sub(rss0))
    );
    drop(reqs);
    Ok(())
}

/// Refuses counts that make no run, and stream counts the open-file limit cannot
/// hold, before anything starts.
fn check_args(a: &CalibrateArgs) -> Result<(), String> {
    if let Some(0) | None = a.streams.iter().copied().min() {
        return Err(
            "--streams: give one or more stream counts of at least 1 (e.g. --streams 100,1000)"
                .into(),
        );
    }
    if a.throughput_streams == 0 {
        return Err("--throughput-streams 0: give at least 1 (default 64)".into());
    }
    if a.throughput_tokens == 0 || a.accuracy_tokens == 0 {
        return Err("--throughput-tokens and --accuracy-tokens must be at least 1".into());
    }
    if !(a.throughput_itl_ms >= 0.0 && a.throughput_itl_ms.is_finite()) {
        return Err(format!(
            "--throughput-itl-ms {}: give 0 (as fast as the simulator sends) or a positive number of ms",
            a.throughput_itl_ms
        ));
    }
    // The accuracy runs hold both ends of each stream (the simulator is in-process);
    // the throughput run too unless --sim-url is given.
    let most = *a.streams.iter().max().expect("checked non-empty") as u64;
    if let Some(e) = crate::engine::os::fd_budget_error(most, true, false) {
        return Err(format!("--streams {most}: {e}"));
    }
    let tp = a.throughput_streams as u64;
    if let Some(e) = crate::engine::os::fd_budget_error(tp, a.sim_url.is_none(), true) {
        return Err(format!("--throughput-streams {tp}: {e}"));
    }
    Ok(())
}

fn calibrate(a: CalibrateArgs) -> Result<(), String> {
    clock::epoch();
    if a.datasets {
        return datasets_bench(&a);
    }
    check_args(&a)?;
    let streams = a.streams.clone();
    let rt = crate::script::io_runtime(a.client_threads.max(1)).map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let waves = if a.quick { 3 } else { a.waves.max(1) };
    if !a.json {
        println!("moonbench calibrate: the client against the in-process simulator on 127.0.0.1");
        println!(
            "machine: {cores} cores; client: {} I/O thread(s); simulator: {} thread(s); build: {}",
            a.client_threads,
            a.sim_threads,
            if cfg!(debug_assertions) {
                "debug (use --release for real numbers)"
            } else {
                "release"
            }
        );
    }

    // 1. Throughput: tokens per client CPU-second.
    let n = a.throughput_streams * waves;
    // An in-process simulator unless one is given (kept alive until the run ends).
    let local = match &a.sim_url {
        Some(_) => None,
        None => Some(SimHandle::start(
            &SimOptions {
                ttft_ms: Some(1.0),
                itl_ms: Some(a.throughput_itl_ms),
                record_truth: false,
                threads: a.sim_threads,
                ..Default::default()
            },
            "127.0.0.1:0",
        )?),
    };
    let server = match (&a.sim_url, &local) {
        (Some(url), _) => Server {
            url: url.clone(),
            model: SimOptions::default().model,
            truth: None,
        },
        (None, Some(sim)) => Server {
            url: sim.base_url(),
            model: sim.model.clone(),
            truth: None,
        },
        (None, None) => unreachable!("a local simulator is started when no URL is given"),
    };
    let t = one_run(
        &rt,
        a.client_threads,
        &server,
        a.throughput_streams,
        n,
        a.throughput_tokens,
    )?;
    drop(local);
    let per_cpu = t.tokens as f64 / t.client_cpu.max(1e-9);
    let mut report = json!({
        "cores": cores, "client_threads": a.client_threads, "sim_threads": a.sim_threads,
        "throughput": {"streams": a.throughput_streams, "itl_ms": if a.sim_url.is_some() { Value::Null } else { json!(a.throughput_itl_ms) }, "requests": n, "tokens_per_request": a.throughput_tokens,
                        "tokens": t.tokens, "seconds": t.wall, "client_cpu_seconds": t.client_cpu,
                        "tokens_per_client_cpu_second": per_cpu, "failed": t.failed},
        "accuracy": [],
    });
    if !a.json {
        println!();
        println!(
            "Throughput: {} streams x {} tokens ({}), {} requests",
            a.throughput_streams,
            a.throughput_tokens,
            match &a.sim_url {
                Some(u) => format!("ITL as {u} sends"),
                None if a.throughput_itl_ms == 0.0 =>
                    "ITL 0: as fast as the simulator sends".into(),
                None => format!("ITL {} ms", a.throughput_itl_ms),
            },
            n
        );
        println!(
            "  {} tokens in {:.2} s, client CPU {:.3} s -> {:.0} streamed tokens per client CPU-second{}",
            t.tokens,
            t.wall,
            t.client_cpu,
            per_cpu,
            if t.failed > 0 {
                format!(" ({} requests failed)", t.failed)
            } else {
                String::new()
            }
        );
        println!();
        println!(
            "Timing error vs the simulator's true send times (TTFT {} ms, ITL {} ms, {} tokens/request):",
            a.ttft_ms, a.itl_ms, a.accuracy_tokens
        );
        println!(
            "  {:>7}  {:>8}  {:>22}  {:>22}  {:>13}  {:>10}  health",
            "streams",
            "requests",
            "TTFT err p50/p99 (ms)",
            "ITL err p50/p99 (ms)",
            "|ITL err| p99",
            "client CPU",
        );
    }

    // 2. Accuracy at each concurrency.
    let sim = SimHandle::start(
        &SimOptions {
            ttft_ms: Some(a.ttft_ms),
            itl_ms: Some(a.itl_ms),
            record_truth: true,
            threads: a.sim_threads,
            ..Default::default()
        },
        "127.0.0.1:0",
    )?;
    for &s in &streams {
        let reqs = if a.quick { s } else { 2 * s };
        let server = Server {
            url: sim.base_url(),
            model: sim.model.clone(),
            truth: Some(&sim.truth),
        };
        let m = one_run(&rt, a.client_threads, &server, s, reqs, a.accuracy_tokens)?;
        let ps = [50.0, 99.0];
        let te = describe(&m.ttft_err_ms, &ps);
        let ie = describe(&m.itl_err_ms, &ps);
        let abs: Vec<f64> = m.itl_err_ms.iter().map(|v| v.abs()).collect();
        let ia = describe(&abs, &ps);
        if !a.json {
            println!(
                "  {:>7}  {:>8}  {:>22}  {:>22}  {:>13.3}  {:>8.2} s  {}{}",
                s,
                reqs,
                format!("{:.3} / {:.3}", te.percentiles[0].1, te.percentiles[1].1),
                format!("{:.3} / {:.3}", ie.percentiles[0].1, ie.percentiles[1].1),
                ia.percentiles[1].1,
                m.client_cpu,
                m.health,
                if m.failed > 0 {
                    format!(" ({} failed)", m.failed)
                } else {
                    String::new()
                }
            );
        }
        report["accuracy"].as_array_mut().unwrap().push(json!({
            "streams": s, "requests": reqs, "failed": m.failed,
            "ttft_err_p50_ms": te.percentiles[0].1, "ttft_err_p99_ms": te.percentiles[1].1, "ttft_err_max_ms": te.max,
            "itl_err_p50_ms": ie.percentiles[0].1, "itl_err_p99_ms": ie.percentiles[1].1,
            "itl_abs_err_p99_ms": ia.percentiles[1].1, "itl_err_max_ms": ie.max,
            "client_cpu_seconds": m.client_cpu, "seconds": m.wall, "health": m.health,
        }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
    } else {
        println!();
        println!(
            "Errors are measured arrival minus true send time; TTFT error is the first chunk's read lag."
        );
        println!("Connections are opened before each run's clock starts.");
    }
    Ok(())
}
