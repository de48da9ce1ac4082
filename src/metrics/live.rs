//! moonbench's own live metrics (`--metrics-port P`): counters, gauges and
//! histograms of the requests this process sends, served in Prometheus' text
//! format from a small HTTP server on its own thread while the process runs, so a
//! sharded run can be watched in the Prometheus/Grafana stack a cluster has
//! (`deploy/grafana/moonbench.json` is a dashboard for them).
//!
//! What it holds: the process-wide registry [`Live`] (enabled once, by the
//! command line), the hooks the engine calls — [`sent`] when a measured request
//! is handed to the backend, [`run_started`] at a run's t0, [`finished`] for each
//! measured record (from the engine's live sink) — the page [`Live::render`], and
//! [`serve`]. With no `--metrics-port` nothing is enabled and each hook is one
//! atomic load. Warm-ups and `--probe-request-rate` probes are not counted.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use super::RequestRecord;
use super::prom::{self, Histogram};

/// TTFT bucket bounds in seconds (vLLM's `vllm:time_to_first_token_seconds`).
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// Inter-token latency bounds in seconds: vLLM's, with finer steps below 10 ms.
const ITL_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
    1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0,
];
/// End-to-end latency bounds in seconds (vLLM's request buckets, with short ones).
const E2EL_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0,
    50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
];
/// Schedule lag bounds in seconds: how late a request was sent after its time.
const LAG_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];

struct Hists {
    failed: BTreeMap<String, u64>,
    ttft: Histogram,
    itl: Histogram,
    e2el: Histogram,
    lag: Histogram,
}

/// The process's live metrics (see the module docs).
pub struct Live {
    /// Labels on every sample (`shard="0",shards="4"` in a sharded run).
    labels: String,
    /// The process's CPU seconds so far (the engine's reader).
    cpu: fn() -> f64,
    sent: AtomicU64,
    finished: AtomicU64,
    completed: AtomicU64,
    output_tokens: AtomicU64,
    runs: AtomicU64,
    /// The current run's t0 (`clock::now_ns`) and its Unix time in ms, and the
    /// requests finished in it.
    run_t0_ns: AtomicU64,
    run_t0_unix_ms: AtomicU64,
    run_finished: AtomicU64,
    hists: Mutex<Hists>,
}

static LIVE: OnceLock<Live> = OnceLock::new();

/// Turns the live metrics on for this process, with `labels` on every sample
/// and `cpu` to read the process's CPU seconds; returns the registry. Later
/// calls return the first one.
pub fn enable(labels: String, cpu: fn() -> f64) -> &'static Live {
    LIVE.get_or_init(|| Live {
        labels,
        cpu,
        sent: AtomicU64::new(0),
        finished: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        output_tokens: AtomicU64::new(0),
        runs: AtomicU64::new(0),
        run_t0_ns: AtomicU64::new(0),
        run_t0_unix_ms: AtomicU64::new(0),
        run_finished: AtomicU64::new(0),
        hists: Mutex::new(Hists {
            failed: BTreeMap::new(),
            ttft: Histogram::new(TTFT_BUCKETS),
            itl: Histogram::new(ITL_BUCKETS),
            e2el: Histogram::new(E2EL_BUCKETS),
            lag: Histogram::new(LAG_BUCKETS),
        }),
    })
}

/// The registry, when `--metrics-port` enabled it.
pub fn get() -> Option<&'static Live> {
    LIVE.get()
}

/// A measured request is handed to the backend.
pub fn sent() {
    if let Some(l) = get() {
        l.sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// A run's measured part starts at `t0_ns` (`clock::now_ns`), Unix time `t0_unix`.
pub fn run_started(t0_ns: u64, t0_unix: f64) {
    if let Some(l) = get() {
        l.runs.fetch_add(1, Ordering::Relaxed);
        l.run_finished.store(0, Ordering::Relaxed);
        l.run_t0_unix_ms
            .store((t0_unix * 1000.0) as u64, Ordering::Relaxed);
        l.run_t0_ns.store(t0_ns, Ordering::Relaxed);
    }
}

/// A measured request finished (successfully or not).
pub fn finished(rec: &RequestRecord) {
    let Some(l) = get() else { return };
    let mut h = l.hists.lock().unwrap();
    match &rec.error {
        None => {
            l.completed.fetch_add(1, Ordering::Relaxed);
            l.output_tokens
                .fetch_add(rec.output_tokens as u64, Ordering::Relaxed);
            if let Some(t) = rec.ttft() {
                h.ttft.observe(t);
            }
            for v in rec.itls() {
                h.itl.observe(v);
            }
            h.e2el.observe(rec.e2el());
        }
        Some(e) => *h.failed.entry(e.count_key(rec.status)).or_insert(0) += 1,
    }
    if rec.sent_ns > 0 {
        h.lag.observe(rec.schedule_lag());
    }
    drop(h);
    l.finished.fetch_add(1, Ordering::Relaxed);
    l.run_finished.fetch_add(1, Ordering::Relaxed);
}

impl Live {
    /// The metrics page, in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let lab = self.labels.as_str();
        let with = |extra: &str| {
            if lab.is_empty() {
                extra.to_string()
            } else {
                format!("{lab},{extra}")
            }
        };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        let mut one = |name: &str, kind: &str, help: &str, v: f64| {
            prom::header(&mut s, name, kind, help);
            prom::sample(&mut s, name, lab, v);
        };
        let sent = load(&self.sent);
        let finished = load(&self.finished);
        one(
            "moonbench_requests_sent_total",
            "counter",
            "Measured requests handed to the backend (warm-ups and probes not counted).",
            sent,
        );
        one(
            "moonbench_requests_in_flight",
            "gauge",
            "Measured requests sent and not yet finished.",
            (sent - finished).max(0.0),
        );
        one(
            "moonbench_requests_completed_total",
            "counter",
            "Measured requests that succeeded.",
            load(&self.completed),
        );
        one(
            "moonbench_output_tokens_total",
            "counter",
            "Output tokens of the successful requests.",
            load(&self.output_tokens),
        );
        one(
            "moonbench_runs_started_total",
            "counter",
            "Runs (mb.run, mb.users, one bench) whose measured part has started.",
            load(&self.runs),
        );
        let t0 = self.run_t0_ns.load(Ordering::Relaxed);
        let rate = if t0 == 0 {
            0.0
        } else {
            let secs = crate::clock::secs(crate::clock::now_ns().saturating_sub(t0));
            if secs > 0.0 {
                load(&self.run_finished) / secs
            } else {
                0.0
            }
        };
        one(
            "moonbench_achieved_request_rate",
            "gauge",
            "Requests finished per second in the current run, since its start.",
            rate,
        );
        one(
            "moonbench_run_start_time_seconds",
            "gauge",
            "Unix time the current run's measured part started (0: none yet).",
            load(&self.run_t0_unix_ms) / 1000.0,
        );
        one(
            "process_cpu_seconds_total",
            "counter",
            "CPU time this process used (user and system).",
            (self.cpu)(),
        );
        let h = self.hists.lock().unwrap();
        prom::header(
            &mut s,
            "moonbench_requests_failed_total",
            "counter",
            "Measured requests that failed, by kind (http_<status>, timeout, connection, ...).",
        );
        for (kind, n) in &h.failed {
            let l = with(&format!("kind=\"{}\"", prom::label_value(kind)));
            prom::sample(&mut s, "moonbench_requests_failed_total", &l, *n as f64);
        }
        for (name, help, hist) in [
            (
                "moonbench_time_to_first_token_seconds",
                "Time to first token of successful requests, from the send start.",
                &h.ttft,
            ),
            (
                "moonbench_inter_token_latency_seconds",
                "Inter-token latency, one value per output token after the first.",
                &h.itl,
            ),
            (
                "moonbench_e2e_request_latency_seconds",
                "End-to-end latency of successful requests.",
                &h.e2el,
            ),
            (
                "moonbench_schedule_lag_seconds",
                "How late each request was sent after its scheduled time.",
                &h.lag,
            ),
        ] {
            prom::header(&mut s, name, "histogram", help);
            hist.write(&mut s, name, lab);
        }
        s
    }
}

/// Serves [`Live::render`] at `GET /metrics` (and `/`) on `host:port` from its own
/// thread; returns the bound address (port 0 picks one). Each connection is
/// bounded: 10 s to read the request, then the answer and close.
pub fn serve(live: &'static Live, host: &str, port: u16) -> Result<SocketAddr, String> {
    let addr = format!("{host}:{port}");
    let std_listener = std::net::TcpListener::bind(&addr).map_err(|e| {
        format!(
            "--metrics-port: cannot listen on {addr}: {e} (choose another port, or --metrics-host)"
        )
    })?;
    std_listener
        .set_nonblocking(true)
        .map_err(|e| format!("--metrics-port: {e}"))?;
    let bound = std_listener
        .local_addr()
        .map_err(|e| format!("--metrics-port: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("--metrics-port: cannot start its runtime: {e}"))?;
    std::thread::Builder::new()
        .name("moonbench-metrics".into())
        .spawn(move || {
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    };
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| async move {
                            let ok = matches!(req.uri().path(), "/metrics" | "/");
                            let (status, body) = if ok {
                                (200, live.render())
                            } else {
                                (404, "not found: the metrics are at /metrics\n".to_string())
                            };
                            hyper::Response::builder()
                                .status(status)
                                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                                .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                        });
                        let conn = hyper::server::conn::http1::Builder::new()
                            .keep_alive(true)
                            .header_read_timeout(Duration::from_secs(10))
                            .timer(hyper_util::rt::TokioTimer::new())
                            .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc);
                        let _ = tokio::time::timeout(Duration::from_secs(300), conn).await;
                    });
                }
            })
        })
        .map_err(|e| format!("--metrics-port: cannot start its thread: {e}"))?;
    Ok(bound)
}
