//! Helpers for tests that run the `moonbench` binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test. The Hub is off (`HF_HUB_OFFLINE`): a tokenizer by
/// model id never reaches beyond 127.0.0.1 unless a test points HF_ENDPOINT at
/// its own stand-in and turns this off.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moonbench"));
    c.env("MOONBENCH_IO_THREADS", "2")
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_ENDPOINT")
        .env_remove("OPENAI_API_KEY")
        .env_remove("MOONBENCH_PATH");
    c
}

/// Runs `moonbench ARGS`, killing it after `limit`; returns its output.
pub fn run(args: &[&str], limit: Duration) -> Output {
    let child = bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait(child, limit)
}

/// Waits for a child at most `limit`, then kills it (the test then fails on its output).
pub fn wait(mut child: Child, limit: Duration) -> Output {
    let start = Instant::now();
    while start.elapsed() < limit {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    panic!(
        "moonbench did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh temporary directory for one test.
pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("moonbench-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// stdout and stderr as strings.
pub fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A loopback port that nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Every example in examples/ runs against the simulator with `flags` (none: as the
/// README promises; `--quick`), all at once; each ends by printing its result, and any
/// error fails the test with its output.
pub fn every_example_runs(flags: &[&str]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".lua"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "the gallery has ten examples: {names:?}");
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            let child = bin()
                .args(["run", &format!("{dir}/{n}"), "--"])
                .args(flags)
                .current_dir(std::env::temp_dir())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (n.clone(), child)
        })
        .collect();
    for (name, child) in children {
        let out = wait(child, Duration::from_secs(400));
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "{name} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(!stdout.trim().is_empty(), "{name} printed nothing");
    }
}
