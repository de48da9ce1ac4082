//! `moonbench calibrate`: a benchmark of the client itself (not a test).
//!
//! Runs the engine against a simulator — in this process (its own runtime and
//! threads) or, with `--sim-process`, a `moonbench serve-sim --record-truth` child —
//! and reports (1) streamed tokens per client CPU-second and (2) the client's timing
//! error: for every chunk, the measured arrival minus the simulator's true send time
//! (both on the machine's monotonic clock; a child's times are moved onto this
//! process's epoch). TTFT error = first chunk's read lag; ITL error = measured gap −
//! true gap.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
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
    #[command(flatten)]
    pub lang: super::LangArg,
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
    /// Run every simulator as a child `moonbench serve-sim` process, so the client
    /// process holds only its own end of each stream (chosen by itself when the
    /// open-file limit cannot hold both ends of --streams in one process). Its
    /// send times come back over HTTP and are moved onto this process's clock.
    #[arg(long)]
    pub sim_process: bool,
    /// Pin the simulator child to these CPUs (e.g. `1`; implies --sim-process; then
    /// `taskset -c 0 moonbench calibrate …` keeps the client off them).
    #[arg(long, value_delimiter = ',')]
    pub sim_cpus: Vec<usize>,
}

/// Where the true send times of a run come from.
enum Truths<'a> {
    /// No truth (the throughput run).
    None,
    /// An in-process simulator's log.
    Local(&'a crate::sim::truth::TruthLog),
    /// A `serve-sim --record-truth` process at the run's URL.
    Remote,
}

/// Where a run sends: the base URL and the model served there.
struct Server<'a> {
    url: String,
    model: String,
    truth: Truths<'a>,
}

/// A `moonbench serve-sim` child process with the fixed engine; killed when dropped.
struct SimChild {
    child: std::process::Child,
    url: String,
}

impl SimChild {
    /// Starts one on a free loopback port and waits (at most 20 s) for its address.
    fn start(
        ttft_ms: f64,
        itl_ms: f64,
        threads: usize,
        cpus: &[usize],
        truth: bool,
    ) -> Result<SimChild, String> {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        let exe = std::env::current_exe()
            .map_err(|e| format!("--sim-process: cannot find moonbench's own binary: {e}"))?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "serve-sim",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--engine",
            "fixed",
        ])
        .args([
            "--ttft-ms",
            &ttft_ms.to_string(),
            "--itl-ms",
            &itl_ms.to_string(),
        ])
        .args(["--threads", &threads.max(1).to_string(), "--no-metrics"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped());
        if truth {
            cmd.arg("--record-truth");
        }
        if !cpus.is_empty() {
            let cpus = cpus.to_vec();
            // SAFETY: only async-signal-safe calls (CPU_SET, sched_setaffinity) run
            // between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let mut set: libc::cpu_set_t = std::mem::zeroed();
                    for &c in &cpus {
                        libc::CPU_SET(c, &mut set);
                    }
                    if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0
                    {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut child = cmd.spawn().map_err(|e| {
            format!(
                "--sim-process: cannot start the simulator (serve-sim){}: {e}",
                if cpus.is_empty() {
                    String::new()
                } else {
                    format!(" on --sim-cpus {cpus:?}")
                }
            )
        })?;
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = std::io::BufReader::new(out).lines();
            let first = lines.next();
            let _ = tx.send(first);
            for _ in lines {} // keep the pipe drained
        });
        let line = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(Ok(l))) => l,
            other => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "--sim-process: the simulator child did not say where it listens within 20 s ({})",
                    match other {
                        Err(_) => "timed out".to_string(),
                        Ok(None) => "it exited; its error is above".to_string(),
                        Ok(Some(Err(e))) => e.to_string(),
                        Ok(Some(Ok(_))) => unreachable!(),
                    }
                ));
            }
        };
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .map(str::to_string);
        match url {
            Some(url) => Ok(SimChild { child, url }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!(
                    "--sim-process: unexpected first line from serve-sim: {line}"
                ))
            }
        }
    }
}

impl Drop for SimChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fetches (and removes) a `serve-sim --record-truth` process's send times of the
/// requests whose id starts with `prefix`, moved onto this process's clock: chunk
/// times by request id. Asks again (for up to 2 s) until `expect` ids came, as a
/// stream's truth is stored when the simulator drops it, just after its last bytes.
async fn remote_truth(
    url: &str,
    prefix: &str,
    expect: usize,
) -> Result<HashMap<String, Vec<i128>>, String> {
    let base = BaseUrl::parse(url)?;
    let client = crate::backend::http::HttpClient::new(&base).await?;
    let here = clock::monotonic_epoch_ns();
    let mut got = HashMap::new();
    for _ in 0..40 {
        let (status, body) = tokio::time::timeout(
            Duration::from_secs(30),
            client.get(&format!("/moonbench/truth?prefix={prefix}"), &[]),
        )
        .await
        .map_err(|_| format!("{url}/moonbench/truth did not answer within 30 s"))?
        .map_err(|e| format!("{url}/moonbench/truth: {}", e.message))?;
        if status != 200 {
            return Err(format!(
                "{url}/moonbench/truth answered {status}; start the simulator with --record-truth"
            ));
        }
        let v: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{url}/moonbench/truth: not JSON ({e})"))?;
        let there: i128 = v["epoch_monotonic_ns"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("{url}/moonbench/truth: no epoch_monotonic_ns"))?;
        for r in v["requests"].as_array().map_or(&[][..], |a| a) {
            let (Some(id), Some(ns)) = (r["id"].as_str(), r["chunk_ns"].as_array()) else {
                continue;
            };
            let times = ns
                .iter()
                .filter_map(Value::as_u64)
                .map(|t| t as i128 + there - here)
                .collect();
            got.insert(id.to_string(), times);
        }
        if got.len() >= expect {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(got)
}

struct Measured {
    tokens: u64,
    wall: f64,
    client_cpu: f64,
    ttft_err_ms: Vec<f64>,
    itl_err_ms: Vec<f64>,
    failed: u64,
    /// Requests whose chunks were compared with the truth.
    compared: u64,
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
    if let Truths::Local(t) = sim.truth {
        t.clear();
    }
    // Unique per run, so a remote simulator's truths of earlier runs never mix in.
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let prefix = format!(
        "cal-{}-{}-{streams}-",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    );
    let mut t = Target::new(
        Backend::parse("openai").unwrap(),
        BaseUrl::parse(&sim.url)?,
        &sim.model,
    );
    t.body.insert("ignore_eos".into(), true.into());
    t.timeout = Some(Duration::from_secs(120));
    t.request_id_prefix = prefix.clone();
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
        bounded: None,
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
        compared: 0,
        health: out.health.verdict.clone(),
    };
    let ok = out.records.iter().filter(|r| r.success()).count();
    let remote = match sim.truth {
        Truths::Remote => rt.block_on(remote_truth(&sim.url, &prefix, ok))?,
        _ => HashMap::new(),
    };
    for r in &out.records {
        if !r.success() {
            m.failed += 1;
            continue;
        }
        m.tokens += r.output_tokens as u64;
        let truth: Vec<i128> = match sim.truth {
            Truths::None => continue,
            Truths::Local(t) => match t.get(&r.request_id) {
                Some(t) => t.chunk_ns.iter().map(|&v| v as i128).collect(),
                None => continue,
            },
            Truths::Remote => match remote.get(&r.request_id) {
                Some(t) => t.clone(),
                None => continue,
            },
        };
        if truth.len() != r.chunks.len() || r.chunks.is_empty() {
            continue;
        }
        let got: Vec<i128> = r.chunks.times().map(|v| v as i128).collect();
        m.ttft_err_ms.push((got[0] - truth[0]) as f64 / 1e6);
        for i in 1..got.len() {
            let measured = got[i] - got[i - 1];
            let real = truth[i] - truth[i - 1];
            m.itl_err_ms.push((measured - real) as f64 / 1e6);
        }
        m.compared += 1;
    }
    Ok(m)
}

/// Runs the calibration; returns the exit code.
pub fn main(a: CalibrateArgs) -> i32 {
    match calibrate(a) {
        Ok(()) => 0,
        Err(e) => {
            // In the command line's language too (its --lang set the process's).
            crate::i18n::eprint_error(&format!("moonbench calibrate: {e}"));
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
/// hold, before anything starts. Returns whether the simulators run as child
/// processes (asked for, or needed for the streams to fit the limit).
fn check_args(a: &CalibrateArgs) -> Result<bool, String> {
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
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) }.max(1) as usize;
    let cpus = cpus.min(libc::CPU_SETSIZE as usize);
    if let Some(&c) = a.sim_cpus.iter().find(|&&c| c >= cpus) {
        return Err(format!(
            "--sim-cpus {c}: this machine's CPUs are numbered 0 to {} (see nproc)",
            cpus - 1
        ));
    }
    let mut child = a.sim_process || !a.sim_cpus.is_empty();
    // In one process the accuracy runs hold both ends of each stream; a child
    // simulator holds the other end in its own process, under its own limit.
    let most = *a.streams.iter().max().expect("checked non-empty") as u64;
    if !child
        && crate::engine::os::fd_budget_error(most, true, false).is_some()
        && crate::engine::os::fd_budget_error(most, false, false).is_none()
    {
        child = true;
    }
    if let Some(e) = crate::engine::os::fd_budget_error(most, !child, false) {
        return Err(format!("--streams {most}: {e}"));
    }
    let tp = a.throughput_streams as u64;
    let tp_local = a.sim_url.is_none() && !child;
    if let Some(e) = crate::engine::os::fd_budget_error(tp, tp_local, true) {
        return Err(format!(
            "--throughput-streams {tp}: {e}{}",
            if tp_local {
                "\nOr add --sim-process."
            } else {
                ""
            }
        ));
    }
    Ok(child)
}

fn calibrate(a: CalibrateArgs) -> Result<(), String> {
    clock::epoch();
    if a.datasets {
        return datasets_bench(&a);
    }
    let child = check_args(&a)?;
    let streams = a.streams.clone();
    let rt = crate::script::io_runtime(a.client_threads.max(1)).map_err(|e| e.to_string())?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let waves = if a.quick { 3 } else { a.waves.max(1) };
    if !a.json {
        println!(
            "moonbench calibrate: the client against {} on 127.0.0.1",
            if !child {
                "the in-process simulator"
            } else if a.sim_process || !a.sim_cpus.is_empty() {
                "a simulator in a child process (serve-sim --record-truth)"
            } else {
                "a simulator in a child process (serve-sim --record-truth), as --streams needs more open files than one process may hold for both ends"
            }
        );
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
    let model = SimOptions::default().model;
    let (local, remote) = match (&a.sim_url, child) {
        (Some(_), _) => (None, None),
        (None, true) => (
            None,
            Some(SimChild::start(
                1.0,
                a.throughput_itl_ms,
                a.sim_threads,
                &a.sim_cpus,
                false,
            )?),
        ),
        (None, false) => (
            Some(SimHandle::start(
                &SimOptions {
                    ttft_ms: Some(1.0),
                    itl_ms: Some(a.throughput_itl_ms),
                    record_truth: false,
                    threads: a.sim_threads,
                    ..Default::default()
                },
                "127.0.0.1:0",
            )?),
            None,
        ),
    };
    let url = match (&a.sim_url, &local, &remote) {
        (Some(url), _, _) => url.clone(),
        (None, Some(sim), _) => sim.base_url(),
        (None, None, Some(c)) => c.url.clone(),
        (None, None, None) => unreachable!("a simulator is started when no URL is given"),
    };
    let server = Server {
        url,
        model: model.clone(),
        truth: Truths::None,
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
    drop(remote);
    let per_cpu = t.tokens as f64 / t.client_cpu.max(1e-9);
    let mut report = json!({
        "cores": cores, "client_threads": a.client_threads, "sim_threads": a.sim_threads,
        // The accuracy runs' simulator (the throughput run's is `sim_url` when given).
        "simulator": if child { "process" } else { "in-process" },
        "throughput": {"streams": a.throughput_streams, "itl_ms": if a.sim_url.is_some() { Value::Null } else { json!(a.throughput_itl_ms) }, "requests": n, "tokens_per_request": a.throughput_tokens,
                        "tokens": t.tokens, "seconds": t.wall, "client_cpu_seconds": t.client_cpu,
                        "tokens_per_client_cpu_second": per_cpu, "failed": t.failed,
                        "sim_url": a.sim_url},
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
    let (sim, sim_child) = if child {
        let c = SimChild::start(a.ttft_ms, a.itl_ms, a.sim_threads, &a.sim_cpus, true)?;
        (None, Some(c))
    } else {
        let opts = SimOptions {
            ttft_ms: Some(a.ttft_ms),
            itl_ms: Some(a.itl_ms),
            record_truth: true,
            threads: a.sim_threads,
            ..Default::default()
        };
        (Some(SimHandle::start(&opts, "127.0.0.1:0")?), None)
    };
    for &s in &streams {
        let reqs = if a.quick { s } else { 2 * s };
        let server = match (&sim, &sim_child) {
            (Some(sim), _) => Server {
                url: sim.base_url(),
                model: sim.model.clone(),
                truth: Truths::Local(&sim.truth),
            },
            (None, Some(c)) => Server {
                url: c.url.clone(),
                model: model.clone(),
                truth: Truths::Remote,
            },
            (None, None) => unreachable!("one simulator is started"),
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
            "streams": s, "requests": reqs, "failed": m.failed, "compared": m.compared,
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
