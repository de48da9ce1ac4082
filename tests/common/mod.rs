//! Helpers for tests that run the `moonbench` binary.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test, in English (`MOONBENCH_LANG=en`). The Hub is off
/// (`HF_HUB_OFFLINE`): a tokenizer by model id never reaches beyond 127.0.0.1
/// unless a test points HF_ENDPOINT at its own stand-in and turns this off.
pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_moonbench"));
    c.env("MOONBENCH_IO_THREADS", "2")
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("HF_ENDPOINT")
        .env_remove("OPENAI_API_KEY")
        .env_remove("MOONBENCH_PATH")
        // English output whatever the machine's locale (a test sets it to try Chinese).
        .env("MOONBENCH_LANG", "en");
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

/// Reads one HTTP/1.1 request from a test server's connection: its request line,
/// its header lines (lower-cased) and its body (by Content-Length); `None` at the
/// end of the connection.
pub fn read_request(
    r: &mut std::io::BufReader<std::net::TcpStream>,
) -> Option<(String, Vec<String>, Vec<u8>)> {
    use std::io::{BufRead, Read};
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        if h == "\r\n" {
            break;
        }
        headers.push(h.to_ascii_lowercase());
    }
    let len = headers
        .iter()
        .find_map(|h| h.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap_or(0));
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some((line, headers, body))
}

/// A Hugging Face Hub stand-in on 127.0.0.1 (reached through HF_ENDPOINT) that
/// answers GETs of the given URL paths the way the Hub does: `resolve` paths with
/// an etag, the commit and byte ranges; `/api/...` paths as JSON; anything else
/// is a 404.
pub fn hub_routes(routes: Vec<(String, Vec<u8>)>) -> String {
    use std::io::{BufReader, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let routes = std::sync::Arc::new(routes);
    std::thread::spawn(move || {
        for conn in l.incoming().take(64) {
            let Ok(conn) = conn else { break };
            let routes = routes.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                while let Some((line, headers, _)) = read_request(&mut r) {
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let range: Option<(usize, Option<usize>)> = headers.iter().find_map(|h| {
                        let (a, b) = h.strip_prefix("range: bytes=")?.trim().split_once('-')?;
                        Some((a.parse().unwrap(), b.parse().ok()))
                    });
                    let found = routes.iter().find(|(p, _)| *p == path);
                    let (head, body): (String, &[u8]) = match found {
                        None => (
                            "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nx-error-code: EntryNotFound\r\n\r\n".into(),
                            &[],
                        ),
                        Some((p, data)) if p.starts_with("/api/") => (
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                                data.len()
                            ),
                            data,
                        ),
                        Some((p, data)) => {
                            let (a, b) = range.unwrap_or((0, None));
                            let b = b.unwrap_or(data.len() - 1).min(data.len() - 1);
                            let name = p.rsplit('/').next().unwrap_or("");
                            (
                                format!(
                                    "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {a}-{b}/{}\r\n\
                                     ETag: \"etag-{name}\"\r\nx-repo-commit: 0123456789abcdef0123456789abcdef01234567\r\n\r\n",
                                    b + 1 - a,
                                    data.len()
                                ),
                                &data[a..=b],
                            )
                        }
                    };
                    if w.write_all(head.as_bytes()).is_err() || w.write_all(body).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// A `moonbench serve-sim` process on 127.0.0.1 (port 0) and its URL; killed
/// when dropped, also when a test fails.
pub struct ServeSim {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the simulator printed it.
    pub url: String,
}

impl Drop for ServeSim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `serve-sim --port 0` with `args` and waits for its address.
pub fn serve_sim(args: &[&str]) -> ServeSim {
    let mut c = bin();
    c.args(["serve-sim", "--port", "0"]).args(args);
    spawn_serve_sim(c)
}

/// Starts a `serve-sim` command line made by the caller (under `taskset`, say)
/// and waits for the address it prints.
pub fn spawn_serve_sim(mut cmd: Command) -> ServeSim {
    use std::io::{BufRead, BufReader};
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("serve-sim said: {line}"))
        .to_string();
    ServeSim { child, url }
}
