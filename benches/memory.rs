//! Client memory per finished request (issue 15, target 3): starts a `moonbench
//! serve-sim` in its own process (so only the client is measured), runs
//! `moonbench bench --num-prompts N --max-concurrency 200 --random-output-len 128`
//! against it for each N (default 2,000 and 20,000; 16-token prompts, words
//! tokenizer, result saved) and prints each run's peak RSS, its wall time and the
//! cost of each extra finished request, with what N requests at that rate would
//! take (360,000 = one hour at 100 req/s). With `--bounded`, the runs keep no
//! records in memory (`bench --bounded --save-records FILE`). Run:
//! `cargo bench --bench memory [-- [--bounded] N1 N2 ...]`.

use std::process::{Command, Stdio};
use std::time::Instant;

#[path = "../tests/common/mod.rs"]
mod common;

/// Peak RSS (MB) and wall seconds of one `moonbench bench` run of `n` requests.
fn run(url: &str, n: u64, dir: &std::path::Path, bounded: bool) -> (f64, f64) {
    let t = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_moonbench"));
    cmd.args(["bench", "--base-url", url, "--model", "moonbench-sim"]);
    if bounded {
        cmd.arg("--bounded")
            .arg("--save-records")
            .arg(dir.join(format!("records-{n}.jsonl")));
    }
    // Reaped by wait4 below (for its own rusage), not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = cmd
        .args(["--tokenizer", "words", "--max-concurrency", "200"])
        .args(["--random-input-len", "16", "--random-output-len", "128"])
        .args([
            "--num-prompts",
            &n.to_string(),
            "--disable-tqdm",
            "--save-result",
        ])
        .arg("--result-dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // SAFETY: wait4 writes into the zeroed status and rusage we pass.
    let (code, peak_kb) = unsafe {
        let mut st = 0;
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as i32, &mut st, 0, &mut ru);
        (st, ru.ru_maxrss)
    };
    assert_eq!(code, 0, "moonbench bench failed for {n} requests");
    (peak_kb as f64 / 1024.0, t.elapsed().as_secs_f64())
}

fn main() {
    let bounded = std::env::args().any(|a| a == "--bounded");
    let mut ns: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if ns.len() < 2 {
        ns = vec![2_000, 20_000];
    }
    let sim = common::serve_sim(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let url = sim.url.clone();
    let dir = std::env::temp_dir().join(format!("moonbench-bench-memory-{}", std::process::id()));
    let mut rows = Vec::new();
    for &n in &ns {
        let (mb, s) = run(&url, n, &dir, bounded);
        println!(
            "{n:>8} requests x 128 tokens{}: peak RSS {mb:7.1} MB, {s:6.1} s",
            if bounded { ", bounded" } else { "" }
        );
        rows.push((n, mb));
    }
    let (n0, m0) = rows[0];
    let (n1, m1) = rows[rows.len() - 1];
    let per = (m1 - m0) * 1024.0 / (n1 - n0) as f64;
    println!(
        "each extra finished request: {per:.2} KB; 360,000 requests (1 h at 100 req/s) would take about {:.0} MB",
        m0 + (360_000 - n0 as i64) as f64 * per / 1024.0
    );
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}
