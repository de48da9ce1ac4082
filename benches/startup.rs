//! Start-up time (issue 15, target 4: ≤ 300 ms): from spawning `moonbench bench`
//! with a tokenizer and a 1,000-prompt random dataset to the first request
//! reaching the server. A `moonbench serve-sim` runs in its own process; this bench
//! sits between the two as a byte-for-byte TCP relay on 127.0.0.1 and notes when
//! the first `POST` arrives, so nothing in moonbench measures itself. Prints the
//! time to the ready check (`GET /v1/models`) and to the first request, per run,
//! and beside them where moonbench's own start-up went (`MOONBENCH_TRACE_STARTUP`:
//! the tokenizer, the word pool, the prompts). The runs share a fresh cache
//! directory (`XDG_CACHE_HOME`), so the first builds the tokenizer's word pool and
//! the others read it from the cache.
//! Run: `cargo bench --bench startup [-- TOKENIZER [RUNS]]` (default: the vendored
//! Qwen3 tokenizer, decompressed to a plain `tokenizer.json` as users have it; 4 runs).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[path = "../tests/common/mod.rs"]
mod common;

/// When the first `GET /v1/models` and the first `POST` went through the relay.
#[derive(Default)]
struct Seen {
    ready: Option<Instant>,
    post: Option<Instant>,
}

/// Relays every connection on `listener` to `upstream`, noting first sightings.
fn relay(listener: TcpListener, upstream: String, seen: Arc<Mutex<Seen>>) {
    for client in listener.incoming() {
        let Ok(client) = client else { break };
        let Ok(server) = TcpStream::connect(&upstream) else {
            continue;
        };
        let seen = seen.clone();
        let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        std::thread::spawn(move || {
            let mut buf = [0u8; 16384];
            while let Ok(n) = c_read.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let now = Instant::now();
                let mut s = seen.lock().unwrap();
                if buf[..n].starts_with(b"GET /v1/models") && s.ready.is_none() {
                    s.ready = Some(now);
                }
                if buf[..n].starts_with(b"POST ") && s.post.is_none() {
                    s.post = Some(now);
                }
                drop(s);
                if s_write.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            let _ = s_write.shutdown(std::net::Shutdown::Write);
        });
        let (mut s_read, mut c_write) = (server, client);
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut s_read, &mut c_write);
            let _ = c_write.shutdown(std::net::Shutdown::Write);
        });
    }
}

/// The vendored Qwen3 tokenizer decompressed into `dir` (a plain `tokenizer.json`
/// and its `tokenizer_config.json`, as a model directory has them).
fn plain_qwen3(dir: &std::path::Path) -> String {
    std::fs::create_dir_all(dir).unwrap();
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        let gz = std::fs::read(format!(
            "{}/tests/fixtures/qwen3/{name}.gz",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut bytes)
            .unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    dir.display().to_string()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let dir = std::env::temp_dir().join(format!("moonbench-bench-startup-{}", std::process::id()));
    let tokenizer = args
        .first()
        .cloned()
        .unwrap_or_else(|| plain_qwen3(&dir.join("qwen3")));
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(4);
    let sim = common::serve_sim(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let sim_url = sim.url.trim_end_matches('/').to_string();
    let upstream = sim_url.trim_start_matches("http://").to_string();
    println!(
        "tokenizer {tokenizer}, 1,000 random prompts of 128 tokens; times from spawning moonbench"
    );
    // Once first, so the binary itself is in the page cache (a start-up, not a disk read).
    Command::new(env!("CARGO_BIN_EXE_moonbench"))
        .arg("--version")
        .output()
        .unwrap();
    for run in 1..=runs {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        {
            let (seen, upstream) = (seen.clone(), upstream.clone());
            std::thread::spawn(move || relay(listener, upstream, seen));
        }
        let t0 = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_moonbench"))
            .args(["bench", "--base-url", &url, "--model", "moonbench-sim"])
            .args(["--tokenizer", &tokenizer, "--num-prompts", "1000"])
            .args(["--random-input-len", "128", "--random-output-len", "1"])
            .args(["--max-concurrency", "10", "--disable-tqdm", "--result-dir"])
            .arg(dir.join("results"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("MOONBENCH_TRACE_STARTUP", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "moonbench bench failed: {stderr}");
        let marks: Vec<String> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("start-up: "))
            .map(|m| m.replace(" at ", " "))
            .collect();
        let s = seen.lock().unwrap();
        let ms =
            |t: Option<Instant>| t.map_or(f64::NAN, |t| t.duration_since(t0).as_secs_f64() * 1e3);
        println!(
            "run {run}: ready check at {:6.1} ms, first request at {:6.1} ms ({})",
            ms(s.ready),
            ms(s.post),
            if run == 1 {
                "word pool built"
            } else {
                "word pool from the cache"
            }
        );
        println!("       moonbench's own marks: {}", marks.join(", "));
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}
