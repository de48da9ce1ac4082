//! The full `bench` path against calibrate's throughput run (issue 15, target 1:
//! within 10%). One `moonbench serve-sim --ttft-ms 1 --itl-ms 0` runs in its own
//! process (on CPU 1 when `taskset` is there); the client runs on CPU 0 with one
//! I/O thread, alternately as
//! - `calibrate --sim-url` (its throughput run: 64 streams × 256 tokens, counted
//!   from the client threads' CPU), and
//! - `bench` with the same streams and tokens (random 128-token prompts, the words
//!   tokenizer, records, summary, a result file), counted from the whole process's
//!   CPU (user + system, from the kernel's accounting of the finished child).
//!
//! Prints each pair and the medians. Run: `cargo bench --bench bench_path [-- PAIRS
//! [REQUESTS]]` (default 5 pairs of 6,400 requests); `MOONBENCH_BIN=path` measures
//! another build.

use std::process::{Command, Stdio};

#[path = "../tests/common/mod.rs"]
mod common;

/// User + system CPU seconds of the children waited for so far.
fn children_cpu() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut ru);
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

/// The binary measured: this build's, or `MOONBENCH_BIN` (to compare two builds).
fn binary() -> String {
    std::env::var("MOONBENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_moonbench").into())
}

/// `moonbench ARGS` on CPU `cpu` (when taskset is there), with one I/O thread.
fn on_cpu(cpu: &str, pinned: bool) -> Command {
    let mut c = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", cpu, &binary()]);
        c
    } else {
        Command::new(binary())
    };
    c.env("MOONBENCH_IO_THREADS", "1");
    c
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let pairs: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(5);
    let requests: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(6400);
    let waves = (requests / 64).max(1);
    let requests = waves * 64;
    let tokens = (requests * 256) as f64;
    let pinned = Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success())
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2);
    let mut sim_cmd = on_cpu("1", pinned);
    sim_cmd.args([
        "serve-sim",
        "--port",
        "0",
        "--ttft-ms",
        "1",
        "--itl-ms",
        "0",
    ]);
    let sim = common::spawn_serve_sim(sim_cmd);
    let dir = std::env::temp_dir().join(format!("moonbench-bench-path-{}", std::process::id()));
    println!(
        "{requests} requests x 256 tokens, 64 streams, 1 I/O thread{}; simulator {}",
        if pinned { ", client on CPU 0" } else { "" },
        sim.url
    );
    let (mut cal, mut bench) = (Vec::new(), Vec::new());
    for pair in 1..=pairs {
        let out = on_cpu("0", pinned)
            .args(["calibrate", "--sim-url", &sim.url, "--json"])
            .args(["--streams", "1", "--accuracy-tokens", "2"])
            .args(["--waves", &waves.to_string()])
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "calibrate failed");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = v["throughput"]["tokens_per_client_cpu_second"]
            .as_f64()
            .unwrap();
        let cpu0 = children_cpu();
        let out = on_cpu("0", pinned)
            .args(["bench", "--base-url", &sim.url, "--model", "moonbench-sim"])
            .args([
                "--tokenizer",
                "words",
                "--num-prompts",
                &requests.to_string(),
            ])
            .args(["--max-concurrency", "64", "--random-input-len", "128"])
            .args([
                "--random-output-len",
                "256",
                "--ignore-eos",
                "--disable-tqdm",
            ])
            .args(["--save-result", "--result-dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(out.success(), "bench failed");
        let b = tokens / (children_cpu() - cpu0);
        println!(
            "pair {pair}: calibrate {:7.0}k, bench {:7.0}k tokens per client CPU-second (bench/calibrate {:.2})",
            c / 1e3,
            b / 1e3,
            b / c
        );
        cal.push(c);
        bench.push(b);
    }
    let (c, b) = (median(cal), median(bench));
    println!(
        "median: calibrate {:.0}k, bench {:.0}k tokens per client CPU-second: bench/calibrate {:.2}",
        c / 1e3,
        b / 1e3,
        b / c
    );
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}
