//! Cost of `moonbench merge` on a big sharded run: writes 4 shard files holding
//! N records between them (default 1,000,000; 16 streamed output tokens each,
//! as a shard writes them), then times the `moonbench merge` process and reads
//! its peak memory. Run: `cargo bench --bench merge [-- N]`. Target (issue 14):
//! 1,000,000 records in ≤ 10 s and ≤ 1 GB.

use std::time::Instant;

use moonbench::engine::run::RunOutcome;
use moonbench::engine::shard::Shard;
use moonbench::metrics::{Chunks, RequestRecord};
use moonbench::output::result::{ResultOptions, RunInfo, RunResult};

fn record(k: u64) -> RequestRecord {
    let sent = 1_000_000 + k * 1_000_000; // 1000 req/s
    let chunks: Vec<u64> = (0..16)
        .map(|i| sent + 50_000_000 + i * 10_000_000)
        .collect();
    let text: String = (0..16).map(|i| format!(" w{i}")).collect();
    RequestRecord {
        index: k,
        request_id: format!("bench-{k}"),
        scheduled_ns: sent,
        dispatched_ns: sent,
        sent_ns: sent,
        end_ns: chunks[15] + 100_000,
        chunks: Chunks::from_lists(&chunks, &[1; 16]),
        chunk_text_end: (1..=16).map(|i| (text.len() * i / 16) as u32).collect(),
        first_answer_ns: Some(chunks[0]),
        streamed: true,
        prompt_tokens: 128,
        server_prompt_tokens: Some(128),
        output_tokens: 16,
        server_output_tokens: Some(16),
        status: 200,
        text,
        ..Default::default()
    }
}

/// Writes the 4 shard files of `n` records into `dir` (run in its own process,
/// so that the merge process is not started from a big parent: Linux counts the
/// parent's pages in a child's peak RSS up to its exec).
fn generate(dir: &std::path::Path, n: u64) {
    let t = Instant::now();
    let mut bytes = 0;
    for i in 0..4u64 {
        let records: Vec<RequestRecord> = (0..n).filter(|k| k % 4 == i).map(record).collect();
        let end = records.iter().map(|r| r.end_ns).max().unwrap_or(0);
        let r = RunResult {
            info: RunInfo {
                backend: "openai-chat".into(),
                model_id: "m".into(),
                num_prompts: n,
                shard: Some(Shard { index: i, count: 4 }),
                fingerprint: "bench".into(),
                ..Default::default()
            },
            outcome: RunOutcome {
                records,
                t0_ns: 1_000_000,
                t0_unix: 1_800_000_000.0,
                end_ns: end,
                ..Default::default()
            },
            options: ResultOptions::default(),
        };
        let text = serde_json::to_string(&r.to_json(&r.options, false, &[])).unwrap();
        bytes += text.len();
        std::fs::write(dir.join(format!("shard{i}.json")), text).unwrap();
    }
    println!(
        "wrote 4 shard files, {n} records, {:.0} MB ({:.0} bytes per record) in {:.1} s",
        bytes as f64 / 1e6,
        bytes as f64 / n as f64,
        t.elapsed().as_secs_f64()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--generate") {
        generate(std::path::Path::new(&args[2]), args[3].parse().unwrap());
        return;
    }
    let n: u64 = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("moonbench-bench-merge-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .arg("--generate")
        .arg(&dir)
        .arg(n.to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let files: Vec<_> = (0..4).map(|i| dir.join(format!("shard{i}.json"))).collect();
    let t = Instant::now();
    // Reaped by wait4 below (for its own rusage), not by Child::wait.
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_moonbench"))
        .arg("merge")
        .args(&files)
        .arg("-o")
        .arg(dir.join("merged.json"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // This child's own peak (wait4), not every child's.
    // SAFETY: wait4 writes into the zeroed status and rusage we pass.
    let (code, peak_kb) = unsafe {
        let mut st = 0;
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::wait4(child.id() as i32, &mut st, 0, &mut ru);
        (st, ru.ru_maxrss)
    };
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(code, 0, "merge failed");
    println!(
        "merge of {n} records: {secs:.2} s, peak RSS {:.0} MB, merged file {} MB",
        peak_kb as f64 / 1024.0,
        std::fs::metadata(dir.join("merged.json")).unwrap().len() / 1_000_000
    );
    let _ = std::fs::remove_dir_all(&dir);
}
