//! `--metrics-port`: moonbench's own Prometheus page while it runs. A script run
//! against a `serve-sim` that fails some requests with HTTP 500 is scraped during
//! the run (in flight never above the concurrency limit, counters never going
//! back) and once it has saved its result: every counter and every histogram
//! bucket must equal what the saved per-request records say.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const SCRIPT: &str = r#"
local mb = require "moonbench"
local dir = mb.env("LIVE_DIR")
local target = mb.target{ base_url = mb.env("LIVE_URL"), backend = "openai-chat", body = { ignore_eos = true } }
local set = mb.dataset.random{ tokenizer = mb.tokenizer("words"), n = 40, input_len = 10, output_len = 6, seed = 1 }
local res = mb.run{ target = target, requests = set, arrival = mb.arrival.constant{ rate = 25 },
  max_concurrency = 3, warmup = 2, progress = false }
res:save(dir .. "/result.json", { detailed = true })
-- wait until the test has read the final page (at most 60 s)
for _ = 1, 1200 do
  local f = io.open(dir .. "/scraped")
  if f then f:close(); return end
  mb.sleep(0.05)
end
error("the test never read the metrics page")
"#;

/// `name{labels}` → value, for every sample of a Prometheus text page.
fn parse(page: &str) -> BTreeMap<String, f64> {
    page.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {l}"));
            (
                k.to_string(),
                v.parse().unwrap_or_else(|_| panic!("bad value in {l}")),
            )
        })
        .collect()
}

fn get(url: &str) -> String {
    let out = std::process::Command::new("curl")
        .args(["-s", "--max-time", "5", url])
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The samples of histogram `name`: (le, cumulative count) and the count.
fn buckets(m: &BTreeMap<String, f64>, name: &str) -> (Vec<(f64, f64)>, f64) {
    let prefix = format!("{name}_bucket{{le=\"");
    let mut b: Vec<(f64, f64)> = m
        .iter()
        .filter_map(|(k, v)| {
            let le = k.strip_prefix(&prefix)?.strip_suffix("\"}")?;
            (le != "+Inf").then(|| (le.parse().unwrap(), *v))
        })
        .collect();
    b.sort_by(|a, c| a.0.total_cmp(&c.0));
    assert!(!b.is_empty(), "no buckets of {name}");
    (b, m[&format!("{name}_count")])
}

/// Every bucket holds exactly the values ≤ its bound.
fn same_as(m: &BTreeMap<String, f64>, name: &str, values: &[f64]) {
    let (b, count) = buckets(m, name);
    assert_eq!(count as usize, values.len(), "{name}_count");
    for (le, n) in b {
        let want = values.iter().filter(|&&v| v <= le).count();
        assert_eq!(n as usize, want, "{name} bucket le={le}");
    }
    assert_eq!(
        m[&format!("{name}_bucket{{le=\"+Inf\"}}")] as usize,
        values.len()
    );
}

#[test]
fn live_page_matches_the_records() {
    let sim = serve_sim(&[
        "--engine",
        "fixed",
        "--ttft-ms",
        "8",
        "--itl-ms",
        "3",
        "--faults",
        "http500=0.2",
        "--seed",
        "5",
    ]);
    let dir = tmpdir("live-metrics");
    let script = dir.join("live.lua");
    std::fs::write(&script, SCRIPT).unwrap();
    let mut child = bin()
        .args(["run", script.to_str().unwrap()])
        .args(["--metrics-port", "0", "--metrics-host=127.0.0.1"])
        .env("LIVE_DIR", &dir)
        .env("LIVE_URL", &sim.url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let start = Instant::now();
    let url = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no 'live metrics on' line on stderr");
        if let Some(u) = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
        {
            break u.to_string();
        }
    };
    // During the run: counters only grow, in flight stays within the limit.
    let result = dir.join("result.json");
    let (mut last_sent, mut mid_run) = (0.0, 0);
    while !result.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the run did not end"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("moonbench ended early: {status}");
        }
        let m = parse(&get(&url));
        if let Some(&sent) = m.get("moonbench_requests_sent_total") {
            let flight = m["moonbench_requests_in_flight"];
            assert!(
                sent >= last_sent,
                "sent went back from {last_sent} to {sent}"
            );
            assert!(
                flight <= 3.0,
                "{flight} in flight above --max-concurrency 3"
            );
            let done = m["moonbench_requests_completed_total"];
            assert!(
                done + flight <= sent,
                "completed {done} + in flight {flight} > sent {sent}"
            );
            if sent > 0.0 && sent < 40.0 {
                mid_run += 1;
            }
            last_sent = sent;
        }
        std::thread::sleep(Duration::from_millis(40));
    }
    std::thread::sleep(Duration::from_millis(100)); // the file is written in one go; let it close
    let m = parse(&get(&url));
    std::fs::write(dir.join("scraped"), "").unwrap();
    let out = wait(child, Duration::from_secs(60));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(mid_run >= 1, "never scraped while requests were in flight");

    let r: Value = serde_json::from_str(&std::fs::read_to_string(&result).unwrap()).unwrap();
    let completed = r["completed"].as_f64().unwrap();
    let failed = r["failed"].as_f64().unwrap();
    assert_eq!(completed + failed, 40.0);
    assert!(
        failed > 0.0 && completed > 0.0,
        "the faults made some fail: {failed}"
    );
    assert_eq!(
        m["moonbench_requests_sent_total"], 40.0,
        "warm-ups are not counted"
    );
    assert_eq!(m["moonbench_requests_in_flight"], 0.0);
    assert_eq!(m["moonbench_requests_completed_total"], completed);
    assert_eq!(
        m["moonbench_requests_failed_total{kind=\"http_500\"}"],
        failed
    );
    assert_eq!(
        m["moonbench_output_tokens_total"],
        r["total_output_tokens"].as_f64().unwrap()
    );
    assert_eq!(m["moonbench_runs_started_total"], 1.0);
    let floats = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_f64)
            .collect()
    };
    let ok: Vec<bool> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().is_none_or(str::is_empty))
        .collect();
    let pick = |key: &str| -> Vec<f64> {
        let all = floats(&r[key]);
        assert_eq!(all.len(), ok.len(), "{key}: one value per request");
        all.iter()
            .zip(&ok)
            .filter(|(_, o)| **o)
            .map(|(v, _)| *v)
            .collect()
    };
    same_as(&m, "moonbench_time_to_first_token_seconds", &pick("ttfts"));
    same_as(
        &m,
        "moonbench_e2e_request_latency_seconds",
        &pick("latencies"),
    );
    let itls: Vec<f64> = r["itls"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&ok)
        .filter(|(_, o)| **o)
        .flat_map(|(l, _)| floats(l))
        .collect();
    same_as(&m, "moonbench_inter_token_latency_seconds", &itls);
    assert_eq!(m["moonbench_schedule_lag_seconds_count"], 40.0);
    assert!(m["process_cpu_seconds_total"] > 0.0);
}

#[test]
fn bad_metrics_flags_stop_before_sending() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    for (args, want) in [
        (
            vec!["--metrics-port", "http"],
            "--metrics-port http: not a port number",
        ),
        (vec!["--metrics-port"], "--metrics-port needs a value"),
        (
            vec!["--metrics-host", "127.0.0.1"],
            "--metrics-host needs --metrics-port",
        ),
        (
            vec![
                "--metrics-port",
                port.as_str(),
                "--metrics-host",
                "127.0.0.1",
            ],
            "--metrics-port: cannot listen on 127.0.0.1:",
        ),
    ] {
        let base = format!("http://127.0.0.1:{}", closed_port());
        let mut all = vec!["bench", "--base-url", base.as_str(), "--num-prompts", "1"];
        all.extend(args);
        let out = run(&all, Duration::from_secs(30));
        let (_, err) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all:?}: {err}");
        assert!(err.contains(want), "{all:?}: want '{want}' in: {err}");
    }
}

/// The Grafana dashboard in `deploy/` asks only for metrics the page has, and
/// each of its queries is a non-empty PromQL expression on the job variable.
#[test]
fn grafana_dashboard_names_real_metrics() {
    let path = format!(
        "{}/deploy/grafana/moonbench.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let page = moonbench::metrics::live::enable(String::new(), || 0.0).render();
    let names: std::collections::BTreeSet<&str> = page
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let panels = dash["panels"].as_array().unwrap();
    assert!(panels.len() >= 8, "panels");
    let mut used = std::collections::BTreeSet::new();
    for p in panels {
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            assert!(expr.contains("job=~\"$job\""), "{expr}");
            for (i, _) in expr
                .match_indices("moonbench_")
                .chain(expr.match_indices("process_"))
            {
                let m: String = expr[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                let family = m.strip_suffix("_bucket").unwrap_or(&m);
                assert!(names.contains(family), "{m} in '{expr}' is not on the page");
                used.insert(family.to_string());
            }
        }
    }
    for want in [
        "moonbench_requests_in_flight",
        "moonbench_requests_failed_total",
        "moonbench_time_to_first_token_seconds",
        "moonbench_inter_token_latency_seconds",
        "moonbench_e2e_request_latency_seconds",
        "moonbench_schedule_lag_seconds",
        "moonbench_achieved_request_rate",
    ] {
        assert!(used.contains(want), "the dashboard does not show {want}");
    }
}
