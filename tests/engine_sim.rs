//! The engine against the built-in simulator on 127.0.0.1: known timing in,
//! measured timing out; faults become error records.

use std::sync::Arc;
use std::time::Duration;

use moonbench::backend::{Backend, BaseUrl, Target};
use moonbench::dataset::Request;
use moonbench::engine::{Arrival, RunSpec, run};
use moonbench::metrics::{Chunks, ErrorKind, Metric, RequestRecord, SummaryOptions, summarize};
use moonbench::sim::{SimHandle, SimOptions};
use moonbench::tokenizer::Tokenizer;

fn sim(ttft: f64, itl: f64) -> SimHandle {
    let o = SimOptions {
        ttft_ms: Some(ttft),
        itl_ms: Some(itl),
        record_truth: true,
        ..Default::default()
    };
    SimHandle::start(&o, "127.0.0.1:0").unwrap()
}

fn spec(sim: &SimHandle, backend: &str, reqs: Vec<Request>) -> RunSpec {
    let mut t = Target::new(
        Backend::parse(backend).unwrap(),
        BaseUrl::parse(&sim.base_url()).unwrap(),
        &sim.model,
    );
    t.body.insert("ignore_eos".into(), true.into());
    t.timeout = Some(Duration::from_secs(5));
    RunSpec {
        target: Arc::new(t),
        requests: Arc::new(reqs),
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
        io_threads: 2,
        server_metrics: None,
        probe_interval: None,
        shard: None,
        start_at: None,
    }
}

/// How late a chunk may be read after the simulator wrote it. Kernel receive
/// timestamps make this the loopback delivery time (µs) on a quiet machine; the
/// bound covers the simulator thread being preempted between recording a chunk and
/// writing it when both cores are busy.
const READ_BOUND_NS: u64 = 25_000_000;

/// Compares every successful record with what the simulator recorded it sent: the
/// same chunks with the same token counts, each read at or after it was written and
/// within [`READ_BOUND_NS`]; and the run's TTFT, ITL, TPOT and E2EL means computed
/// from the records equal those computed from the simulator's send times, within
/// 2 ms (never a window around the configured timing).
fn assert_matches_truth(sim: &SimHandle, records: &[RequestRecord], what: &str) {
    let mut truth_recs = Vec::new();
    for r in records.iter().filter(|r| r.success()) {
        let truth = sim
            .truth
            .get(&r.request_id)
            .unwrap_or_else(|| panic!("{what}: no truth kept for {}", r.request_id));
        assert_eq!(truth.chunk_ns.len(), r.chunks.len(), "{what}: chunk count");
        if r.streamed {
            assert_eq!(
                truth.chunk_tokens,
                r.chunks.tokens().collect::<Vec<_>>(),
                "{what}: tokens per chunk"
            );
        }
        for (m, t) in r.chunks.times().zip(&truth.chunk_ns) {
            assert!(m >= *t, "{what}: a chunk measured before it was sent");
            assert!(
                m - t < READ_BOUND_NS,
                "{what}: a chunk read {:.1} ms after it was sent",
                (m - t) as f64 / 1e6
            );
        }
        let mut tr = r.clone();
        let tokens: Vec<u32> = r.chunks.tokens().collect();
        tr.chunks = Chunks::from_lists(&truth.chunk_ns, &tokens);
        truth_recs.push(tr);
    }
    let o = SummaryOptions::default();
    let measured = summarize(records, 1.0, &o);
    let truth = summarize(&truth_recs, 1.0, &o);
    for m in [Metric::Ttft, Metric::Itl, Metric::Tpot, Metric::E2el] {
        let (a, b) = (measured.stat(m).mean, truth.stat(m).mean);
        assert!(
            (a - b).abs() < 2.0,
            "{what}: mean {m:?} measured {a:.3} ms, sent by the simulator {b:.3} ms"
        );
    }
}

fn reqs(n: usize, out: u32) -> Vec<Request> {
    (0..n)
        .map(|i| Request::text(format!("the moon {i}"), 3, Some(out)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measured_timing_matches_the_simulator() {
    let sim = sim(40.0, 8.0);
    for backend in ["openai", "openai-chat"] {
        let s = spec(&sim, backend, reqs(20, 16));
        let out = run(s, None).await.unwrap();
        assert_eq!(out.records.len(), 20);
        let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
        assert_eq!(sum.completed, 20, "{:?}", out.records[0].error);
        assert_eq!(sum.total_output_tokens, 20 * 16);
        assert_eq!(sum.new_connections, 0, "connections were pre-opened");
        assert_matches_truth(&sim, &out.records, backend);
    }
}

/// Kept records are compact: the answer text goes to the live consumers (here the
/// records file) and is then dropped, unless the run keeps texts; the timings and
/// token counts stay exactly as measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_records_drop_their_text_after_the_records_file() {
    let sim = sim(5.0, 1.0);
    let dir = std::env::temp_dir().join(format!("mb-compact-{}", std::process::id()));
    for keep in [false, true] {
        let path = dir.join(format!("records-{keep}.jsonl"));
        let mut s = spec(&sim, "openai-chat", reqs(4, 12));
        s.records_path = Some(path.clone());
        s.keep_text = keep;
        let out = run(s, None).await.unwrap();
        assert_eq!(out.texts_kept, keep);
        assert_matches_truth(&sim, &out.records, "compact");
        let lines = std::fs::read_to_string(&path).unwrap();
        let texts: Vec<String> = lines
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["text"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(texts.len(), 4);
        assert!(
            texts.iter().all(|t| t.split_whitespace().count() == 12),
            "{texts:?}"
        );
        for r in &out.records {
            assert_eq!(r.output_tokens, 12);
            if keep {
                assert!(texts.contains(&r.text), "{:?}", r.text);
                assert_eq!(r.chunk_text_end.len(), r.chunks.len());
            } else {
                assert!(r.text.is_empty() && r.chunk_text_end.is_empty());
                // Packed: at most 10 bytes a chunk (one token each: 1–5).
                assert!(
                    r.chunks.heap_bytes() <= 5 * r.chunks.len(),
                    "{:?}",
                    r.chunks
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_become_error_records_and_the_run_completes() {
    let sim = sim(5.0, 1.0);
    let mut rs = reqs(14, 8);
    let faults = [
        "http500",
        "reset",
        "malformed",
        "stall",
        "error_event",
        "non_utf8",
        "http429",
    ];
    for (i, f) in faults.iter().enumerate() {
        rs[i].extra =
            Some(serde_json::from_str(&format!(r#"{{"moonbench_fault": "{f}"}}"#)).unwrap());
    }
    let mut s = spec(&sim, "openai", rs);
    Arc::get_mut(&mut s.target).unwrap().timeout = Some(Duration::from_millis(500));
    let out = run(s, None).await.unwrap();
    let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
    assert_eq!(sum.completed, 7);
    assert_eq!(sum.failed, 7);
    let kind = |i: usize| out.records[i].error.as_ref().map(|e| e.kind);
    assert_eq!(kind(0), Some(ErrorKind::Http));
    assert_eq!(out.records[0].status, 500);
    assert_eq!(kind(1), Some(ErrorKind::Connection));
    assert_eq!(kind(2), Some(ErrorKind::Protocol));
    assert_eq!(kind(3), Some(ErrorKind::Timeout));
    assert_eq!(kind(4), Some(ErrorKind::Server));
    assert_eq!(kind(5), Some(ErrorKind::Protocol));
    assert_eq!(kind(6), Some(ErrorKind::Http));
    assert_eq!(sum.errors_by_kind.get("http_500"), Some(&1));
    assert_eq!(sum.errors_by_kind.get("http_429"), Some(&1));
    // A request that failed mid-stream keeps the chunks it got.
    assert!(!out.records[1].chunks.is_empty());
    for r in &out.records[7..] {
        assert!(r.success(), "{:?}", r.error);
    }
}

/// A server that packs 4 tokens into each SSE chunk: token counts stay exact, TPOT
/// is right, ITL is spread per token (not 4× inflated), raw chunk gaps are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multi_token_chunks_keep_itl_and_tpot_right() {
    let o = SimOptions {
        ttft_ms: Some(20.0),
        itl_ms: Some(5.0),
        tokens_per_chunk: 4,
        record_truth: true,
        ..Default::default()
    };
    let sim = SimHandle::start(&o, "127.0.0.1:0").unwrap();
    for continuous in [false, true] {
        let mut s = spec(&sim, "openai-chat", reqs(8, 17));
        Arc::get_mut(&mut s.target).unwrap().continuous_usage = continuous;
        let out = run(s, None).await.unwrap();
        let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
        assert_eq!(sum.completed, 8);
        assert_eq!(sum.total_output_tokens, 8 * 17);
        for r in &out.records {
            assert_eq!(r.chunks.len(), 5, "17 tokens in chunks of 4,4,4,4,1");
            assert_eq!(
                r.chunks.tokens().sum::<u32>(),
                17,
                "continuous={continuous}: {:?}",
                r.chunks.tokens().collect::<Vec<_>>()
            );
        }
        assert_matches_truth(&sim, &out.records, &format!("continuous={continuous}"));
        let itl = sum.stat(Metric::Itl);
        let chunk = sum.stat(Metric::ChunkItl);
        // ITL is per token: each gap spread over the tokens of its chunk, so the
        // per-token mean is below the raw chunk gap (4 tokens per chunk).
        assert!(
            chunk.mean > 2.5 * itl.mean,
            "continuous={continuous}: ITL {} must be per token, chunk gaps {}",
            itl.mean,
            chunk.mean
        );
        assert_eq!(
            itl.count,
            8 * 13,
            "one ITL value per token after the first chunk"
        );
    }
}

/// Non-streamed answers: one JSON body; E2EL measured, no TPOT/ITL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_streamed_answers() {
    let sim = sim(10.0, 2.0);
    for backend in ["openai", "openai-chat"] {
        let mut s = spec(&sim, backend, reqs(5, 10));
        s.keep_text = true;
        Arc::get_mut(&mut s.target).unwrap().stream = false;
        let out = run(s, None).await.unwrap();
        let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
        assert_eq!(sum.completed, 5, "{:?}", out.records[0].error);
        assert_eq!(sum.total_output_tokens, 50);
        assert!(!out.records[0].streamed);
        assert_eq!(sum.stat(Metric::Tpot).count, 0);
        assert_matches_truth(&sim, &out.records, backend);
        assert!(out.records[0].text.starts_with(' '));
    }
}

/// The constant arrival schedule is followed: sends land at i/rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constant_rate_schedule_is_followed() {
    let sim = sim(1.0, 1.0);
    let mut s = spec(&sim, "openai", reqs(30, 2));
    s.arrival = Arrival::Constant { rate: 100.0 };
    let out = run(s, None).await.unwrap();
    let t0 = out.records.iter().map(|r| r.scheduled_ns).min().unwrap();
    for r in &out.records {
        let intended = (r.scheduled_ns - t0) as f64 / 1e6;
        assert!(
            (intended - r.index as f64 * 10.0).abs() < 0.01,
            "scheduled at {intended} ms"
        );
    }
    // On time within 25 ms, or the client says it was not: a run may be late on a
    // busy machine, but never without a warning.
    let worst = out
        .records
        .iter()
        .map(|r| r.schedule_lag())
        .fold(0.0, f64::max);
    assert!(
        worst < 0.025 || out.health.verdict == "warning",
        "a request was sent {} ms late and client health said {:?}",
        worst * 1e3,
        out.health
    );
    let sum = summarize(
        &out.records,
        out.duration(),
        &SummaryOptions {
            requested_rate: Some(100.0),
            ..Default::default()
        },
    );
    let achieved = sum.achieved_rate.unwrap();
    // 29 gaps over 290 ms; one send 25 ms late gives 92 req/s.
    assert!(
        (achieved - 100.0).abs() < 8.5 || out.health.verdict == "warning",
        "achieved {achieved} req/s"
    );
}

/// Warm-ups are sent first, kept as records, and excluded from statistics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmups_are_excluded() {
    let sim = sim(1.0, 1.0);
    let mut s = spec(&sim, "openai", reqs(6, 3));
    s.warmups = 3;
    s.max_concurrency = Some(2);
    let out = run(s, None).await.unwrap();
    assert_eq!(out.records.iter().filter(|r| r.warmup).count(), 3);
    assert!(
        out.records
            .iter()
            .filter(|r| r.warmup)
            .all(|r| r.end_ns <= out.t0_ns)
    );
    let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
    assert_eq!(sum.completed, 6);
    assert!(sum.peak_in_flight <= 2);
}

/// A duration-bound run stops sending at the deadline and lets requests in flight finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_bound_run_stops_sending() {
    let sim = sim(5.0, 2.0);
    let mut s = spec(&sim, "openai", reqs(3, 20));
    s.arrival = Arrival::Constant { rate: 40.0 };
    s.duration = Some(Duration::from_millis(500));
    let out = run(s, None).await.unwrap();
    let n = out.records.len();
    assert_eq!(
        n, 20,
        "0.5 s at 40 req/s sends requests at 0, 25, ..., 475 ms"
    );
    assert!(
        out.records.iter().all(|r| r.success()),
        "requests in flight at the deadline finish"
    );
    let sent_span = out.records.iter().map(|r| r.sent_ns).max().unwrap() - out.t0_ns;
    assert!(sent_span < 500_000_000);
    assert!(
        out.duration() > 0.5,
        "the run lasts until the last request ends"
    );
}

/// Every native backend against the simulator's matching route: token counts exact,
/// timing as configured, every chunk timestamped at or after the simulator sent it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_measures_the_simulator_right() {
    let sim = sim(30.0, 6.0);
    for backend in ["sglang", "tgi", "tensorrt-llm", "llama.cpp"] {
        let mut s = spec(&sim, backend, reqs(10, 12));
        Arc::get_mut(&mut s.target).unwrap().request_id_prefix = format!("{backend}-run-");
        let out = run(s, None).await.unwrap();
        let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
        assert_eq!(sum.completed, 10, "{backend}: {:?}", out.records[0].error);
        assert_eq!(sum.total_output_tokens, 120, "{backend}");
        assert_matches_truth(&sim, &out.records, backend);
        for r in &out.records {
            assert!(r.streamed, "{backend}");
            assert!(
                r.request_id.starts_with(&format!("{backend}-run-")),
                "{}",
                r.request_id
            );
        }
    }
    // Not streamed: DeepSpeed-MII answers once (TTFT = E2EL); embeddings generate nothing.
    let out = run(spec(&sim, "deepspeed-mii", reqs(5, 12)), None)
        .await
        .unwrap();
    let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
    assert_eq!(
        (sum.completed, sum.total_output_tokens),
        (5, 60),
        "{:?}",
        out.records[0].error
    );
    assert_matches_truth(&sim, &out.records, "deepspeed-mii");
    let out = run(spec(&sim, "openai-embeddings", reqs(5, 12)), None)
        .await
        .unwrap();
    let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
    assert_eq!(
        (sum.completed, sum.total_output_tokens),
        (5, 0),
        "{:?}",
        out.records[0].error
    );
    assert_eq!(
        sum.total_input_tokens, 15,
        "prompt tokens from the embeddings usage"
    );
}

/// A backend pointed at another protocol's endpoint fails every request with an
/// error that says what was expected, what came, and which backend fits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_backend_for_the_endpoint_says_which_fits() {
    let sim = sim(5.0, 1.0);
    let mut s = spec(&sim, "tgi", reqs(3, 4));
    Arc::get_mut(&mut s.target).unwrap().endpoint = "/v1/completions".into();
    let out = run(s, None).await.unwrap();
    assert_eq!(out.records.len(), 3);
    for r in &out.records {
        let e = r.error.as_ref().expect("fails");
        assert_eq!(e.kind, ErrorKind::Protocol);
        assert!(e.message.contains("use --backend openai"), "{}", e.message);
        assert!(e.message.contains("generate_stream"), "{}", e.message);
    }
}

/// A reasoning model: reasoning deltas count as output tokens; the time to the
/// first answer token and the reasoning/answer split are measured.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reasoning_tokens_are_output_and_ttfa_is_measured() {
    let o = SimOptions {
        ttft_ms: Some(20.0),
        itl_ms: Some(5.0),
        reasoning_tokens: 4,
        tokens_per_chunk: 3,
        record_truth: true,
        ..Default::default()
    };
    let sim = SimHandle::start(&o, "127.0.0.1:0").unwrap();
    for stream in [true, false] {
        let mut s = spec(&sim, "openai-chat", reqs(6, 10));
        s.keep_text = true;
        Arc::get_mut(&mut s.target).unwrap().stream = stream;
        let out = run(s, None).await.unwrap();
        let sum = summarize(&out.records, out.duration(), &SummaryOptions::default());
        assert_eq!(sum.completed, 6, "{:?}", out.records[0].error);
        assert_eq!(
            sum.total_output_tokens, 60,
            "reasoning tokens are output tokens"
        );
        assert_eq!(sum.total_reasoning_tokens, 24, "stream={stream}");
        if stream {
            // Chunks of 3 tokens: the answer starts in the 2nd chunk (tokens 3-5), sent at
            // 20 + 5 x 5 ms; the first chunk (all reasoning) at 20 + 2 x 5 ms.
            assert_matches_truth(&sim, &out.records, "reasoning");
            // TTFA is the arrival of the second chunk, the first with answer text.
            for r in &out.records {
                let truth = sim.truth.get(&r.request_id).unwrap();
                let ttfa_ns = r.first_answer_ns.unwrap();
                let second = r.chunks.times().nth(1);
                assert_eq!(Some(ttfa_ns), second, "TTFA is the 2nd chunk's arrival");
                assert!(
                    ttfa_ns >= truth.chunk_ns[1] && ttfa_ns - truth.chunk_ns[1] < READ_BOUND_NS
                );
            }
        }
        assert!(out.records[0].text.starts_with(' '));
    }
}

/// The server's `/metrics` is read during the run: the simulator's queue shows in
/// the series; the profiler is started and stopped once around the measured part.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_metrics_are_read_during_the_run_and_the_profiler_wraps_it() {
    let o = SimOptions {
        ttft_ms: Some(5.0),
        itl_ms: Some(5.0),
        max_running: Some(4),
        ..Default::default()
    };
    let sim = SimHandle::start(&o, "127.0.0.1:0").unwrap();
    let mut s = spec(&sim, "openai", reqs(24, 20));
    s.server_metrics = Some(Duration::from_millis(40));
    s.warmups = 1;
    Arc::get_mut(&mut s.target).unwrap().profile = true;
    let out = run(s, None).await.unwrap();
    assert_eq!(sim.state.stats.profile_calls(), (1, 1));
    assert!(out.notes.is_empty(), "{:?}", out.notes);
    let sm = out.server_metrics.expect("the simulator has /metrics");
    assert_eq!(sm.source, "vllm");
    // 24 requests, 4 at a time, ~100 ms each: ~600 ms, read every 40 ms.
    assert!(sm.samples.len() >= 5, "{} readings", sm.samples.len());
    let sum = sm.summary();
    assert_eq!(sum["max_running"], 4.0, "{sum:?}");
    assert!(sum["max_waiting"].as_f64().unwrap() >= 10.0, "{sum:?}");
    assert!(
        sm.samples.windows(2).all(|w| w[0].0 < w[1].0),
        "times increase"
    );

    // A server without /metrics or a profiler: no series, a note, the run goes on.
    let o = SimOptions {
        ttft_ms: Some(1.0),
        itl_ms: Some(1.0),
        metrics: false,
        ..Default::default()
    };
    let bare = SimHandle::start(&o, "127.0.0.1:0").unwrap();
    let mut s = spec(&bare, "openai", reqs(3, 2));
    s.server_metrics = Some(Duration::from_millis(40));
    Arc::get_mut(&mut s.target).unwrap().profile = true;
    let out = run(s, None).await.unwrap();
    assert_eq!(out.records.iter().filter(|r| r.success()).count(), 3);
    assert!(out.server_metrics.is_none());
    assert_eq!(out.notes.len(), 2, "{:?}", out.notes);
    assert!(
        out.notes[0].contains("VLLM_TORCH_PROFILER_DIR"),
        "{:?}",
        out.notes
    );
}

/// `--profile-batch-threshold`: the profiler starts only once the server has that
/// many requests running (as the simulator saw at the call) and stops the capture
/// duration later; a threshold never reached is a note and no call at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_threshold_profiling_waits_for_the_batch() {
    let o = SimOptions {
        ttft_ms: Some(5.0),
        itl_ms: Some(10.0),
        max_running: Some(4),
        ..Default::default()
    };
    let sim = SimHandle::start(&o, "127.0.0.1:0").unwrap();
    // 32 requests of 20 tokens, 4 at a time: about 1.6 s.
    let mut s = spec(&sim, "openai", reqs(32, 20));
    {
        let t = Arc::get_mut(&mut s.target).unwrap();
        t.profile = true;
        t.profile_batch_threshold = Some(3);
        t.profile_duration = Duration::from_millis(300);
    }
    let out = run(s, None).await.unwrap();
    assert!(out.notes.is_empty(), "{:?}", out.notes);
    let log = sim.state.stats.profile_log();
    assert_eq!(log.len(), 2, "{log:?}");
    let ((start, running, t_start), (stop, _, t_stop)) = (log[0], log[1]);
    assert!(start && !stop);
    assert!(running >= 3, "started with {running} running");
    assert!(t_stop - t_start >= 300_000_000, "{} ns", t_stop - t_start);
    let last_end = out.records.iter().map(|r| r.end_ns).max().unwrap();
    assert!(
        t_stop <= last_end + 1_000_000_000,
        "stopped by its duration, not long after the run"
    );

    // More running requests than the server ever has: no profile, a note.
    let sim = SimHandle::start(&o, "127.0.0.1:0").unwrap();
    let mut s = spec(&sim, "openai", reqs(8, 5));
    Arc::get_mut(&mut s.target).unwrap().profile = true;
    Arc::get_mut(&mut s.target).unwrap().profile_batch_threshold = Some(10);
    let out = run(s, None).await.unwrap();
    assert!(sim.state.stats.profile_log().is_empty());
    assert_eq!(out.notes.len(), 1, "{:?}", out.notes);
    assert!(
        out.notes[0].contains("never had 10 requests running"),
        "{:?}",
        out.notes
    );
}

/// A linear ramp from 10 to 90 req/s over 2 s: request k is due when the integral of
/// the rate reaches k, and is sent within 10 ms of that (debug build, loaded CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramp_send_times_follow_the_curve() {
    use moonbench::engine::schedule::{Piece, RateProfile, Shape};
    let sim = sim(1.0, 1.0);
    let mut s = spec(&sim, "openai", reqs(200, 2));
    s.arrival = Arrival::Profile(Arc::new(RateProfile {
        pieces: vec![Piece {
            secs: 2.0,
            from: 10.0,
            to: 90.0,
            shape: Shape::Linear,
        }],
        random: None,
    }));
    let out = run(s, None).await.unwrap();
    // ∫ rate over 2 s = 100 requests; the rest of the 200 are never due.
    assert_eq!(out.records.len(), 100);
    let t0 = out.t0_ns;
    let mut worst = 0.0f64;
    for r in &out.records {
        let k = r.index as f64;
        // 10 t + 20 t² = k
        let due = (-10.0 + (100.0 + 80.0 * k).sqrt()) / 40.0;
        let scheduled = (r.scheduled_ns - t0) as f64 / 1e9;
        assert!(
            (scheduled - due).abs() < 1e-6,
            "request {k}: scheduled {scheduled}, due {due}"
        );
        let sent = (r.sent_ns - t0) as f64 / 1e9;
        worst = worst.max(sent - due);
        assert!(sent >= due - 1e-6, "sent early");
    }
    assert!(
        worst < 0.010 || out.health.verdict == "warning",
        "a request was sent {} ms late and client health said {:?}",
        worst * 1e3,
        out.health
    );
}

/// With two step engines, `/metrics` has each engine's series (`engine="0"`,
/// `engine="1"`) and their total (`engine="total"`) in vLLM's names; the totals
/// equal the engines' sums and the requests the client sent, and moonbench's own
/// reader of the page does not count the total as a third engine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_parallel_metrics_are_per_engine_and_summed() {
    let o = SimOptions {
        preset: Some("qwen3-0.6b-a10".into()),
        data_parallel: Some(2),
        router: Some("round-robin".into()),
        ..Default::default()
    };
    let sim = SimHandle::start(&o, "127.0.0.1:0").unwrap();
    let out = run(spec(&sim, "openai", reqs(12, 6)), None).await.unwrap();
    assert_eq!(out.records.iter().filter(|r| r.success()).count(), 12);
    let client =
        moonbench::backend::http::HttpClient::new(&BaseUrl::parse(&sim.base_url()).unwrap())
            .await
            .unwrap();
    let (status, body) = client.get("/metrics", &[]).await.unwrap();
    assert_eq!(status, 200);
    let page = String::from_utf8(body.to_vec()).unwrap();
    let value = |name: &str, engine: &str| -> f64 {
        let key = format!(
            "{name}{{engine=\"{engine}\",model_name=\"{}\"}} ",
            sim.model
        );
        let line = page
            .lines()
            .find(|l| l.starts_with(&key))
            .unwrap_or_else(|| panic!("no {key} in\n{page}"));
        line[key.len()..].parse().unwrap()
    };
    for name in [
        "vllm:request_success_total",
        "vllm:generation_tokens_total",
        "vllm:prompt_tokens_total",
        "vllm:time_to_first_token_seconds_count",
        "vllm:e2e_request_latency_seconds_count",
        "vllm:num_requests_running",
    ] {
        let (a, b, t) = (value(name, "0"), value(name, "1"), value(name, "total"));
        assert_eq!(a + b, t, "{name}: {a} + {b}");
    }
    assert_eq!(value("vllm:request_success_total", "total"), 12.0);
    assert_eq!(value("vllm:request_success_total", "0"), 6.0, "round-robin");
    assert_eq!(value("vllm:generation_tokens_total", "total"), 72.0);
    assert_eq!(
        value("vllm:time_to_first_token_seconds_count", "total"),
        12.0
    );
    // The page parses as Prometheus text, and the total is not a third engine.
    let r = moonbench::metrics::server::read_page(&page).unwrap();
    assert_eq!(
        r.values[&moonbench::metrics::server::Quantity::PrefixQueries],
        value("vllm:prefix_cache_queries_total", "total")
    );
}

/// The live simulator (engine thread, HTTP, the client) and the same engine
/// replayed in virtual time (`closed_loop`, which checks presets against published
/// runs) agree: a closed-loop run at concurrency 4 measures the mean TTFT and TPOT
/// the replay predicts, within scheduling noise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_engine_matches_its_virtual_time_replay() {
    use moonbench::sim::engine::{ClosedLoop, closed_loop};
    let o = SimOptions {
        preset: Some("qwen3-8b-l40s".into()),
        tokenizer: Some("words".into()),
        ..Default::default()
    };
    let (cfg, _, _) = o.engine_config().unwrap().unwrap();
    let predicted = closed_loop(&cfg, 4, 12, 256, 16).unwrap();
    let sim = SimHandle::start(&o, "127.0.0.1:0").unwrap();
    let reqs: Vec<Request> = (0..12)
        .map(|i| {
            let words: Vec<String> = (0..256).map(|k| format!("w{i}x{k}")).collect();
            Request::text(words.join(" "), 256, Some(16))
        })
        .collect();
    let mut s = spec(&sim, "openai", reqs);
    s.max_concurrency = Some(4);
    let out = run(s, None).await.unwrap();
    let ok: Vec<&RequestRecord> = out.records.iter().filter(|r| r.success()).collect();
    assert_eq!(ok.len(), 12);
    let mean = |f: &dyn Fn(&RequestRecord) -> f64| ok.iter().map(|r| f(r)).sum::<f64>() / 12.0;
    let ttft = mean(&|r| r.ttft().unwrap() * 1e3);
    let tpot = mean(&|r| (r.e2el() - r.ttft().unwrap()) * 1e3 / 15.0);
    let (pt, pp) = (
        ClosedLoop::mean(&predicted.ttft_ms),
        ClosedLoop::mean(&predicted.tpot_ms),
    );
    eprintln!(
        "TTFT {ttft:.1} ms measured, {pt:.1} predicted; TPOT {tpot:.2} ms measured, {pp:.2} predicted"
    );
    assert!(
        (ttft - pt).abs() <= 0.15 * pt + 5.0,
        "TTFT {ttft:.1} vs {pt:.1}"
    );
    assert!(
        (tpot - pp).abs() <= 0.10 * pp + 1.0,
        "TPOT {tpot:.2} vs {pp:.2}"
    );
}

/// The steady state of a capped closed loop, checked against what the simulator
/// recorded it sent: the output tokens the server wrote inside the window, per
/// second of it, equal the client's steady-state output throughput within 2%.
/// A slow ramp of arrivals into the cap makes the whole-run figure lower.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_throughput_matches_what_the_server_sent() {
    let sim = sim(20.0, 5.0);
    let mut s = spec(&sim, "openai", reqs(60, 20));
    s.max_concurrency = Some(4);
    // Four requests trickle in over the first 0.6 s, then the cap holds the load.
    s.arrival = Arrival::Times(
        (0..60)
            .map(|i| if i < 4 { i as f64 * 0.2 } else { 0.61 })
            .collect::<Vec<f64>>()
            .into(),
    );
    let out = run(s, None).await.unwrap();
    let opts = SummaryOptions {
        steady_state: true,
        ..Default::default()
    };
    let sum = summarize(&out.records, out.duration(), &opts);
    let st = sum.steady.clone().unwrap().unwrap();
    assert_eq!(st.in_flight, 4);
    assert!(
        st.start_s > 0.55,
        "the plateau starts with the 4th request: {st:?}"
    );
    let first = out.records.iter().map(|r| r.sent_ns).min().unwrap();
    let (lo, hi) = (
        first + (st.start_s * 1e9) as u64,
        first + (st.end_s * 1e9) as u64,
    );
    let mut sent_tokens = 0u64;
    for r in &out.records {
        let t = sim.truth.get(&r.request_id).unwrap();
        for (at, n) in t.chunk_ns.iter().zip(&t.chunk_tokens) {
            if (lo..=hi).contains(at) {
                sent_tokens += *n as u64;
            }
        }
    }
    let truth = sent_tokens as f64 / (st.end_s - st.start_s);
    let err = (st.output_throughput - truth).abs() / truth;
    eprintln!(
        "steady {:.1} tok/s measured, {truth:.1} sent by the server; whole run {:.1} tok/s",
        st.output_throughput, sum.output_throughput
    );
    assert!(
        err < 0.02,
        "steady {} vs truth {truth}",
        st.output_throughput
    );
    assert!(sum.output_throughput < 0.95 * st.output_throughput);
}
