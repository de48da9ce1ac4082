//! Start-up time (issue 15, target 4: ≤ 300 ms): from spawning `moonbench bench`
//! with a tokenizer and a 1,000-prompt random dataset to the first request
//! reaching the server. A `moonbench serve-sim` runs in its own process; this bench
//! sits between the two as a byte-for-byte TCP relay on 127.0.0.1 and notes when
//! the first `POST` arrives, so nothing in moonbench measures itself. Prints the
//! time to the ready check (`GET /v1/models`) and to the first request, per run.
//! Run: `cargo bench --bench startup [-- TOKENIZER [RUNS]]` (default: the vendored
//! Qwen3 tokenizer, 3 runs).

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

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let tokenizer = args.first().cloned().unwrap_or_else(|| {
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/qwen3").to_string()
    });
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(3);
    let sim = common::serve_sim(&["--ttft-ms", "5", "--itl-ms", "1"]);
    let sim_url = sim.url.trim_end_matches('/').to_string();
    let upstream = sim_url.trim_start_matches("http://").to_string();
    let dir = std::env::temp_dir().join(format!("moonbench-bench-startup-{}", std::process::id()));
    println!(
        "tokenizer {tokenizer}, 1,000 random prompts of 128 tokens; times from spawning moonbench"
    );
    for run in 1..=runs {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        {
            let (seen, upstream) = (seen.clone(), upstream.clone());
            std::thread::spawn(move || relay(listener, upstream, seen));
        }
        let t0 = Instant::now();
        let status = Command::new(env!("CARGO_BIN_EXE_moonbench"))
            .args(["bench", "--base-url", &url, "--model", "moonbench-sim"])
            .args(["--tokenizer", &tokenizer, "--num-prompts", "1000"])
            .args(["--random-input-len", "128", "--random-output-len", "1"])
            .args(["--max-concurrency", "10", "--disable-tqdm", "--result-dir"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "moonbench bench failed");
        let s = seen.lock().unwrap();
        let ms =
            |t: Option<Instant>| t.map_or(f64::NAN, |t| t.duration_since(t0).as_secs_f64() * 1e3);
        println!(
            "run {run}: ready check at {:6.1} ms, first request at {:6.1} ms",
            ms(s.ready),
            ms(s.post)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(sim);
    let _ = std::fs::remove_dir_all(&dir);
}
