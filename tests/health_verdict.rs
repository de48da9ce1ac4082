//! The client-health verdict against the simulator's truth: the same run with and
//! without a bounded CPU hog on the client's cores. Whenever the measured median
//! ITL is off by more than 20% from what the simulator sent, the verdict must warn;
//! a quiet run must stay ok. (Its own test binary, so the hog disturbs no other test.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use moonbench::backend::{Backend, BaseUrl, Target};
use moonbench::dataset::Request;
use moonbench::engine::{Arrival, RunOutcome, RunSpec, run};
use moonbench::metrics::{Chunks, Metric, SummaryOptions, summarize};
use moonbench::sim::{SimHandle, SimOptions};
use moonbench::tokenizer::Tokenizer;

fn spec(sim: &SimHandle, n: usize) -> RunSpec {
    let mut t = Target::new(
        Backend::parse("openai").unwrap(),
        BaseUrl::parse(&sim.base_url()).unwrap(),
        &sim.model,
    );
    t.body.insert("ignore_eos".into(), true.into());
    t.timeout = Some(Duration::from_secs(30));
    RunSpec {
        target: Arc::new(t),
        requests: Arc::new(
            (0..n)
                .map(|i| Request::text(format!("the moon {i}"), 3, Some(40)))
                .collect(),
        ),
        arrival: Arrival::Infinite,
        num_requests: None,
        duration: None,
        max_concurrency: None,
        warmups: 0,
        ready_timeout: Some(Duration::from_secs(5)),
        grace: Duration::from_secs(1),
        preconnect: true,
        progress: false,
        records_path: None,
        keep_text: false,
        bounded: None,
        tokenizer: Arc::new(Tokenizer::words()),
        io_threads: 1,
        server_metrics: None,
        probe_interval: None,
        shard: None,
        start_at: None,
    }
}

/// Median ITL measured, and the same computed from the simulator's send times.
fn itl_medians(sim: &SimHandle, out: &RunOutcome) -> (f64, f64) {
    let mut truth = Vec::new();
    for r in out.records.iter().filter(|r| r.success()) {
        let t = sim.truth.get(&r.request_id).expect("truth kept");
        let mut tr = r.clone();
        let tokens: Vec<u32> = r.chunks.tokens().collect();
        tr.chunks = Chunks::from_lists(&t.chunk_ns, &tokens);
        truth.push(tr);
    }
    let o = SummaryOptions::default();
    (
        summarize(&out.records, 1.0, &o).stat(Metric::Itl).median,
        summarize(&truth, 1.0, &o).stat(Metric::Itl).median,
    )
}

/// Spins `n` threads until `stop` is set or 20 s pass (bounded whatever happens).
fn hog(n: usize, stop: Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<()>> {
    (0..n)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(20) {
                    x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                    std::hint::black_box(x);
                }
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn the_verdict_warns_whenever_the_numbers_are_off() {
    let o = SimOptions {
        ttft_ms: Some(20.0),
        itl_ms: Some(5.0),
        record_truth: true,
        ..Default::default()
    };
    let sim = SimHandle::start(&o, "127.0.0.1:0").unwrap();

    // Quiet: the verdict is ok, unless the machine itself was busy (then it says so).
    let quiet = run(spec(&sim, 50), None).await.unwrap();
    let (m, t) = itl_medians(&sim, &quiet);
    let h = &quiet.health;
    assert!(
        h.truth_error_p99_ms.is_some(),
        "the simulator's truth was used"
    );
    let busy = h.cpu_pressure.unwrap_or(0.0) > 0.2;
    assert!(
        h.verdict == "ok" || busy,
        "quiet run: median ITL {m:.3} vs true {t:.3} ms; {h:?}"
    );
    assert!(!h.reason.is_empty() && h.timing_error_bound_ms > 0.0);
    if h.verdict == "ok" {
        assert!((m - t).abs() <= 0.2 * t, "ok, yet ITL {m} vs {t}");
    }

    // Hogged: three spinning threads on two cores.
    let stop = Arc::new(AtomicBool::new(false));
    let threads = hog(3, stop.clone());
    let hogged = run(spec(&sim, 400), None).await.unwrap();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let (m, t) = itl_medians(&sim, &hogged);
    let h = &hogged.health;
    eprintln!(
        "hogged: median ITL {m:.3} ms, true {t:.3} ms; verdict {} ({})",
        h.verdict, h.reason
    );
    // Off by more than 20% (plus 50 µs, for a simulator that itself sent the
    // tokens of a busy step together, where the true median is near zero).
    if (m - t).abs() > 0.2 * t + 0.05 {
        assert_eq!(
            h.verdict, "warning",
            "median ITL {m:.3} ms is off from the true {t:.3} ms: {h:?}"
        );
    }
    if h.verdict == "ok" {
        assert!(
            h.timing_error_bound_ms <= (0.05 * h.reference_ms).max(0.1),
            "{h:?}"
        );
    }
}
