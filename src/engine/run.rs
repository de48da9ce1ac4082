//! One open-loop run: ready check, pre-opened connections, warm-ups, then the
//! dispatcher sends each request at its scheduled time (under the concurrency
//! limit) while the collector gathers records. Nothing here touches Lua.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{Semaphore, mpsc, watch};

use super::cancel;
use super::health::{ClientHealth, micros_histogram};
use super::measure::{Collector, Measurement, Sink};
use super::ready;
use super::schedule::Arrival;
use crate::backend::Target;
use crate::backend::exec::{Dispatch, ExecContext, execute};
use crate::backend::http::HttpClient;
use crate::clock;
use crate::dataset::{Request, RequestSet};
use crate::engine::progress::Progress;
use crate::metrics::RequestRecord;
use crate::metrics::server::ServerSeries;
use crate::tokenizer::Tokenizer;

/// Most connections opened ahead of a run.
pub const MAX_PRECONNECT: usize = 10_000;

/// Everything that defines a run.
#[derive(Clone)]
pub struct RunSpec {
    /// Server and API.
    pub target: Arc<Target>,
    /// Requests to send (cycled if the run sends more than there are).
    pub requests: RequestSet,
    /// When to send.
    pub arrival: Arrival,
    /// How many requests to send (`None`: one pass over `requests`, or until `duration`).
    pub num_requests: Option<u64>,
    /// Stop sending after this long.
    pub duration: Option<Duration>,
    /// At most this many requests in flight.
    pub max_concurrency: Option<usize>,
    /// Unmeasured requests sent before the clock starts.
    pub warmups: usize,
    /// Wait this long for the server to answer before sending (`None`: no check).
    pub ready_timeout: Option<Duration>,
    /// After an interruption, how long requests in flight may still finish.
    pub grace: Duration,
    /// Open the connections the run needs before its clock starts.
    pub preconnect: bool,
    /// Show a progress bar.
    pub progress: bool,
    /// Stream records to this JSONL file as they finish.
    pub records_path: Option<PathBuf>,
    /// Keep each answer's text in the outcome's records (see
    /// [`RequestRecord::compact`]); the records file and `on_response` see it either way.
    pub keep_text: bool,
    /// Bounded: keep no measured record in memory, only a digest counting goodput
    /// against this SLO (the records file has every record).
    pub bounded: Option<crate::metrics::Slo>,
    /// Counts tokens the server does not report.
    pub tokenizer: Arc<Tokenizer>,
    /// Number of I/O worker threads (for the client-health CPU share).
    pub io_threads: usize,
    /// Read the server's `/metrics` this often during the run (`None`: don't).
    pub server_metrics: Option<Duration>,
    /// Send one-token probe requests this long apart beside the run (vLLM's
    /// `--probe-request-rate`; `None`: none).
    pub probe_interval: Option<Duration>,
    /// Send only this shard's positions of the schedule, at their times
    /// (`max_concurrency` and `warmups` are already this shard's part).
    pub shard: Option<super::shard::Shard>,
    /// Start the clock at this wall-clock time (Unix seconds, `--start-at`), once
    /// everything is prepared; a shard ready later than that sends nothing.
    pub start_at: Option<f64>,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct RunOutcome {
    /// Every request's record (warm-ups included, flagged), in schedule order.
    pub records: Vec<RequestRecord>,
    /// When the measured part started (first dispatch).
    pub t0_ns: u64,
    /// The wall clock at `t0_ns` (Unix seconds): places the records of a shard
    /// on the other shards' timeline when they are merged.
    pub t0_unix: f64,
    /// When the last measured request ended.
    pub end_ns: u64,
    /// True if the run was interrupted and is incomplete.
    pub partial: bool,
    /// Why the script stopped the run early (`mb.stop`, `on_response` returning
    /// "stop", an error in a callback), if it did.
    pub stopped: Option<String>,
    /// Connections opened before the clock started.
    pub preconnected: usize,
    /// The client-health verdict.
    pub health: ClientHealth,
    /// Models the server listed in its ready check.
    pub server_models: Vec<String>,
    /// The model the requests named (the target's, or the server's first model).
    pub model: String,
    /// The server's own metrics during the run, if it has any moonbench knows.
    pub server_metrics: Option<ServerSeries>,
    /// Problems worth telling the user that did not stop the run (profiler calls).
    pub notes: Vec<String>,
    /// A shard's wall clock against the server's `Date` header, measured just
    /// before its start (`None` unsharded, or without a `Date`).
    pub clock: Option<super::shard::ClockOffset>,
    /// The probe requests sent beside the run (`--probe-request-rate`), apart from
    /// `records` and from every statistic of the run.
    pub probes: Vec<RequestRecord>,
    /// Whether `records` kept their answer texts (`keep_text`; otherwise each
    /// text went only to the live consumers, see [`RequestRecord::compact`]).
    pub texts_kept: bool,
    /// A bounded run's digest of its measured records, which `records` then
    /// lacks (only warm-ups are kept).
    pub digest: Option<Box<crate::metrics::digest::Digest>>,
    /// Summaries already computed from this outcome, by their options (printing,
    /// saving and `res:summary()` ask for the same one; it walks every token).
    pub summaries: std::sync::Mutex<Vec<(crate::metrics::SummaryOptions, crate::metrics::Summary)>>,
}

impl RunOutcome {
    /// Measured duration in seconds (first dispatch to the end of the last request).
    pub fn duration(&self) -> f64 {
        clock::secs(self.end_ns.saturating_sub(self.t0_ns))
    }
}

/// How many connections to open before the clock starts: the concurrency limit; for
/// an infinite rate, every request; for a finite rate without a limit, what ~2 s of
/// arrivals need plus a margin (the rest open during the run and are counted).
pub fn preconnect_count(spec: &RunSpec, planned: Option<u64>) -> usize {
    let n = planned.unwrap_or(u64::MAX);
    let want = match (spec.max_concurrency, spec.arrival.peak_rate()) {
        (Some(c), _) => (c as u64).min(n),
        (None, None) => n,
        (None, Some(rate)) => ((rate * 2.0).ceil() as u64 + 16).min(n),
    };
    (want as usize).clamp(1, MAX_PRECONNECT)
}

/// Runs a setup step unless the user interrupts it.
async fn until_interrupted<T>(fut: impl std::future::Future<Output = T>) -> Result<T, String> {
    let mut lvl = cancel::subscribe();
    tokio::select! {
        r = fut => Ok(r),
        _ = lvl.wait_for(|v| *v > 0) => Err("interrupted before the run started; nothing was measured".into()),
    }
}

/// How many requests the run will send, if bounded.
pub fn planned_requests(spec: &RunSpec) -> Option<u64> {
    let by_arrival = spec.arrival.limit();
    match (spec.num_requests, spec.duration) {
        (Some(n), _) => Some(by_arrival.map_or(n, |a| a.min(n))),
        (None, Some(_)) => by_arrival,
        (None, None) => Some(by_arrival.map_or(spec.requests.len() as u64, |a| {
            a.min(spec.requests.len() as u64)
        })),
    }
}

/// Checks a spec before anything is sent.
pub fn validate(spec: &RunSpec) -> Result<(), String> {
    if spec.requests.is_empty() {
        return Err("the run has no requests".into());
    }
    spec.arrival.validate()?;
    if spec.max_concurrency == Some(0) {
        return Err("max concurrency must be at least 1".into());
    }
    if planned_requests(spec).is_none()
        && spec.arrival == Arrival::Infinite
        && spec.max_concurrency.is_none()
    {
        return Err(
            "a duration-bound run at an infinite rate needs a concurrency limit \
                    (--max-concurrency) or a number of requests (--num-prompts)"
                .into(),
        );
    }
    for (i, r) in spec.requests.iter().enumerate() {
        crate::backend::protocol::build_body(&spec.target, r, i as u64)
            .map_err(|e| format!("request {}: {e}", i + 1))?;
        if i >= 16 {
            break; // the kind of prompt is uniform in practice; the rest is checked when sent
        }
    }
    Ok(())
}

struct Shared {
    target: Arc<Target>,
    client: Arc<HttpClient>,
    requests: RequestSet,
    tokenizer: Arc<Tokenizer>,
    ctl: watch::Receiver<u8>,
    collector: Collector,
}

impl Shared {
    async fn one(
        &self,
        index: u64,
        scheduled_ns: u64,
        dispatched_ns: u64,
        warmup: bool,
    ) -> RequestRecord {
        let req = &self.requests[(index as usize) % self.requests.len()];
        if !warmup {
            crate::metrics::live::sent();
        }
        self.send(
            req,
            Dispatch {
                index,
                scheduled_ns,
                dispatched_ns,
                warmup,
            },
        )
        .await
    }

    /// Sends `req` now; a second interruption cuts it off.
    async fn send(&self, req: &Request, d: Dispatch) -> RequestRecord {
        let ctx = ExecContext {
            client: &self.client,
            target: &self.target,
            tokenizer: &self.tokenizer,
        };
        let mut ctl = self.ctl.clone();
        let abort = async move {
            if ctl.wait_for(|v| *v >= 2).await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        // Boxed: the spawned task then holds a pointer, not a copy of this
        // request's whole state besides the one being polled.
        Box::pin(execute(&ctx, req, d, abort)).await
    }
}

/// vLLM's `--probe-request-rate`: one-token "Hi" requests, one at a time, each
/// `every` after the previous ended, outside the concurrency limit, until `stop`;
/// their records stay apart from the run's.
fn spawn_probes(
    shared: Arc<Shared>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<RequestRecord>> {
    tokio::spawn(async move {
        let req = Request::text("Hi", 1, Some(1));
        let mut out = Vec::new();
        while !*stop.borrow() {
            let now = clock::now_ns();
            let d = Dispatch {
                index: out.len() as u64,
                scheduled_ns: now,
                dispatched_ns: now,
                warmup: false,
            };
            out.push(shared.send(&req, d).await);
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
        out
    })
}

/// The setup every run shares: the HTTP client, the ready check, the model (the
/// server's first one when none was given) and `preconnect` connections opened
/// ahead. Returns the client and an outcome with those facts filled in.
pub async fn connect(
    target: &mut Arc<Target>,
    ready_timeout: Option<Duration>,
    preconnect: Option<usize>,
) -> Result<(Arc<HttpClient>, RunOutcome), String> {
    let client = Arc::new(HttpClient::with_tls(&target.base_url, &target.tls).await?);
    let mut out = RunOutcome::default();
    if let Some(timeout) = ready_timeout.filter(|t| !t.is_zero()) {
        let headers = target.plain_headers();
        crate::clock::startup_mark("ready check");
        let info = until_interrupted(ready::wait_ready(&client, &headers, timeout)).await??;
        out.server_models = info.models;
    }
    let model = target.payload_model().to_string();
    if model.is_empty() {
        // As `vllm bench serve` without --model: use the server's first model.
        let first = out
            .server_models
            .first()
            .cloned()
            .ok_or("no model given and the server lists none at /v1/models; pass --model")?;
        Arc::make_mut(target).model = first;
    } else if !out.server_models.is_empty() && !out.server_models.contains(&model) {
        eprintln!(
            "{}",
            crate::i18n::say(
                "warning: the server does not list model '{}' (it serves: {}); requests may fail with 404",
                &[&model, &out.server_models.join(", ")]
            )
        );
    }
    out.model = target.model.clone();
    if let Some(want) = preconnect {
        crate::clock::startup_mark("opening connections");
        out.preconnected = until_interrupted(client.preconnect(want))
            .await?
            .map_err(|e| e.message)?;
    }
    crate::clock::startup_mark("ready to send");
    Ok((client, out))
}

/// Runs `spec`. `on_record` receives every measured record as it finishes.
/// Errors are returned only for problems found before any measured request was sent.
pub async fn run(
    spec: RunSpec,
    on_record: Option<mpsc::UnboundedSender<RequestRecord>>,
) -> Result<RunOutcome, String> {
    run_with_stop(spec, on_record, cancel::Stop::default()).await
}

/// [`run`], which `stop` can end early as the first Ctrl-C does (the run is then
/// not marked partial on its account).
pub async fn run_with_stop(
    mut spec: RunSpec,
    on_record: Option<mpsc::UnboundedSender<RequestRecord>>,
    stop: cancel::Stop,
) -> Result<RunOutcome, String> {
    validate(&spec)?;
    let _guard = cancel::RunGuard::new();
    if cancel::level() > 0 {
        return Err("interrupted before the run started".into());
    }
    let planned = planned_requests(&spec);
    // What this process sends: its shard's part of the schedule.
    let mine = planned.map(|n| spec.shard.map_or(n, |s| s.part(n)));
    let want = spec.preconnect.then(|| preconnect_count(&spec, mine));
    let (client, out) = connect(&mut spec.target, spec.ready_timeout, want).await?;
    let headers = spec.target.plain_headers();
    let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(Progress::new(mine, spec.progress))];
    if let Some(ch) = on_record {
        sinks.push(Box::new(ch));
    }
    let mut m = Measurement::new(
        client.clone(),
        headers.clone(),
        out,
        spec.records_path.as_deref(),
        sinks,
        spec.server_metrics,
        spec.io_threads,
    )?;
    m.keep_text(spec.keep_text);
    if let Some(slo) = &spec.bounded {
        m.bounded(slo.clone());
    }
    let collector = m.collector();
    // The schedule is expanded ahead of time when its length is known (8 bytes per
    // request); a duration-bound run generates it as it goes, natively either way.
    let arrival = match planned {
        Some(n) if n <= 50_000_000 && !matches!(spec.arrival, Arrival::Times(_)) => {
            Arrival::Times(Arc::new(spec.arrival.iter().take(n as usize).collect()))
        }
        _ => spec.arrival.clone(),
    };
    let (ctl_tx, ctl_rx) = watch::channel(0u8);
    let shared = Arc::new(Shared {
        target: spec.target.clone(),
        client: client.clone(),
        requests: spec.requests.clone(),
        tokenizer: spec.tokenizer.clone(),
        ctl: ctl_rx.clone(),
        collector: collector.clone(),
    });

    // Warm-ups: same concurrency limit, before the clock starts, never measured.
    if spec.warmups > 0 {
        let sem = Arc::new(Semaphore::new(spec.max_concurrency.unwrap_or(spec.warmups)));
        let mut set = tokio::task::JoinSet::new();
        for i in 0..spec.warmups as u64 {
            let (sh, sem) = (shared.clone(), sem.clone());
            set.spawn(async move {
                let _p = sem.acquire_owned().await;
                let now = clock::now_ns();
                sh.one(i, now, now, true).await
            });
        }
        let mut lvl = cancel::subscribe();
        loop {
            let r = tokio::select! {
                r = set.join_next() => r,
                _ = lvl.wait_for(|v| *v > 0) => {
                    set.abort_all();
                    return Err("interrupted during the warm-up; nothing was measured".into());
                }
            };
            let Some(r) = r else { break };
            if let Ok(rec) = r {
                collector.add(rec);
            }
        }
    }

    // Interruptions: level 1 stops dispatch, then the grace period, then abort.
    let grace = spec.grace;
    let ctl_forward = {
        let ctl_tx = ctl_tx.clone();
        let mut lvl = cancel::subscribe();
        let mut stop_rx = stop.subscribe();
        tokio::spawn(async move {
            let mut grace_timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
            loop {
                let stopped = *stop_rx.borrow_and_update();
                let l = (*lvl.borrow_and_update()).max(stopped as u8);
                if l >= 2 {
                    ctl_tx.send_replace(2);
                    return;
                }
                if l == 1 && grace_timer.is_none() {
                    ctl_tx.send_replace(1);
                    grace_timer = Some(Box::pin(tokio::time::sleep(grace)));
                }
                tokio::select! {
                    r = lvl.changed() => if r.is_err() { return },
                    r = stop_rx.changed(), if !stopped => if r.is_err() { return },
                    _ = async { grace_timer.as_mut().unwrap().await }, if grace_timer.is_some() => {
                        ctl_tx.send_replace(2);
                        return;
                    }
                }
            }
        })
    };

    if spec.target.reset_prefix_cache {
        let path = reset_prefix_cache(&client, &headers).await?;
        eprintln!("Reset the server's prefix cache ({path})");
    }
    let immediate_profile = spec.target.profile && spec.target.profile_batch_threshold.is_none();
    if immediate_profile {
        profiler(&client, &headers, "/start_profile", &mut m.outcome().notes).await;
    }
    // With a batch threshold the profiler waits for the server to be that busy.
    let (profile_done, profile_done_rx) = watch::channel(false);
    let threshold_profile = match (spec.target.profile, spec.target.profile_batch_threshold) {
        (true, Some(n)) => Some(tokio::spawn(profile_on_batch(
            client.clone(),
            headers.clone(),
            n,
            spec.target.profile_duration,
            profile_done_rx,
        ))),
        _ => None,
    };
    // Every request task holds a clone of `alive`: when the dispatcher and the
    // last task have dropped theirs, every record has been collected.
    let (alive, mut all_done) = mpsc::channel::<()>(1);
    let sem = spec.max_concurrency.map(|c| Arc::new(Semaphore::new(c)));
    m.outcome().clock =
        super::shard::prepare_start(spec.start_at, &client, &spec.target.plain_headers()).await?;
    let t0 = m.start();
    let (probe_stop, probe_rx) = watch::channel(false);
    let probes = spec
        .probe_interval
        .map(|every| spawn_probes(shared.clone(), every, probe_rx));
    let handle = tokio::runtime::Handle::current();
    let dispatcher = {
        let (shared, ctl, sem) = (shared.clone(), ctl_rx.clone(), sem.clone());
        let (n, duration, shard) = (planned, spec.duration, spec.shard);
        std::thread::Builder::new()
            .name("mb-dispatch".into())
            .spawn(move || {
                dispatch_loop(
                    handle, arrival, n, duration, t0, sem, ctl, shared, alive, shard,
                )
            })
            .map_err(|e| format!("cannot start the dispatcher thread: {e}"))?
    };
    let _ = all_done.recv().await;
    if let Some(task) = probes {
        // The probe in flight may finish within the grace period; then it is cut.
        probe_stop.send_replace(true);
        let abort = task.abort_handle();
        match tokio::time::timeout(grace, task).await {
            Ok(Ok(recs)) => m.outcome().probes = recs,
            _ => {
                abort.abort();
                m.outcome().notes.push(
                    "the last probe request did not end within the grace period; probes are not reported"
                        .into(),
                );
            }
        }
    }
    if immediate_profile {
        profiler(&client, &headers, "/stop_profile", &mut m.outcome().notes).await;
    }
    if let Some(task) = threshold_profile {
        profile_done.send_replace(true);
        // Its own steps are bounded; this only guards against a stuck task.
        let abort = task.abort_handle();
        match tokio::time::timeout(2 * PROFILE_CALL_LIMIT + Duration::from_secs(1), task).await {
            Ok(Ok(notes)) => m.outcome().notes.extend(notes),
            _ => {
                abort.abort();
                m.outcome()
                    .notes
                    .push("the batch-threshold profiler did not finish in time".into());
            }
        }
    }
    let lag = tokio::task::spawn_blocking(move || dispatcher.join())
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_else(|_| micros_histogram());
    // A stop the script asked for ends the run as planned by it: not partial
    // unless Ctrl-C came too.
    let partial = *ctl_rx.borrow() > 0 && (!stop.is_stopped() || cancel::level() > 0);
    ctl_forward.abort();
    drop(ctl_tx);
    Ok(m.finish(&lag, partial).await)
}

/// How long one profiler call may take.
const PROFILE_CALL_LIMIT: Duration = Duration::from_secs(30);

/// vLLM's Rust client's `--profile-batch-threshold`: reads `/metrics` every
/// 500 ms until the server reports at least `threshold` requests running, then
/// starts the profiler and stops it `duration` later, or when the run ends
/// (`done`). Returns the notes to keep (threshold never reached, a failed call).
async fn profile_on_batch(
    client: Arc<HttpClient>,
    headers: Vec<(String, String)>,
    threshold: u32,
    duration: Duration,
    mut done: watch::Receiver<bool>,
) -> Vec<String> {
    use crate::metrics::server::{Quantity, read_page};
    let mut notes = Vec::new();
    let mut most = None::<f64>;
    loop {
        let page = tokio::time::timeout(
            crate::engine::scrape::READ_TIMEOUT,
            client.get("/metrics", &headers),
        )
        .await;
        if let Ok(Ok((200, body))) = page {
            let running = std::str::from_utf8(&body)
                .ok()
                .and_then(|b| read_page(b).ok())
                .and_then(|r| r.values.get(&Quantity::Running).copied());
            if let Some(r) = running {
                most = Some(most.map_or(r, |m: f64| m.max(r)));
                if r >= threshold as f64 {
                    eprintln!("Batch size {r} >= {threshold}: starting the profiler");
                    break;
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = done.wait_for(|d| *d) => {
                let note = match most {
                    Some(m) => format!(
                        "not profiled: the server never had {threshold} requests running \
                         (--profile-batch-threshold; at most {m} seen)"
                    ),
                    None => format!(
                        "not profiled: the server's /metrics never said how many requests were \
                         running, so --profile-batch-threshold {threshold} could not be checked"
                    ),
                };
                eprintln!("warning: {note}");
                notes.push(note);
                return notes;
            }
        }
    }
    let call = |path: &'static str| {
        let (client, headers) = (client.clone(), headers.clone());
        async move {
            let mut n = Vec::new();
            match tokio::time::timeout(
                PROFILE_CALL_LIMIT,
                profiler(&client, &headers, path, &mut n),
            )
            .await
            {
                Ok(()) => n,
                Err(_) => vec![format!(
                    "{path} had no answer within {} s",
                    PROFILE_CALL_LIMIT.as_secs()
                )],
            }
        }
    };
    let started = call("/start_profile").await;
    let failed = !started.is_empty();
    notes.extend(started);
    if failed {
        return notes;
    }
    tokio::select! {
        _ = tokio::time::sleep(duration) => {}
        _ = done.wait_for(|d| *d) => {}
    }
    notes.extend(call("/stop_profile").await);
    notes
}

/// Asks the server to drop its prefix cache: POST `/reset_prefix_cache` (vLLM,
/// served when it runs with `VLLM_SERVER_DEV_MODE=1`), else POST `/flush_cache`
/// (SGLang). Returns the path that answered 2xx, or an error naming both answers
/// and the fix.
pub async fn reset_prefix_cache(
    client: &HttpClient,
    headers: &[(String, String)],
) -> Result<&'static str, String> {
    let mut answers = Vec::new();
    for path in ["/reset_prefix_cache", "/flush_cache"] {
        let answer =
            tokio::time::timeout(Duration::from_secs(30), client.post_empty(path, headers));
        let Ok(answer) = answer.await else {
            answers.push(format!("POST {path} had no answer within 30 s"));
            continue;
        };
        match answer {
            Ok((s, _)) if (200..300).contains(&s) => return Ok(path),
            Ok((s, body)) => answers.push(format!(
                "POST {path} answered HTTP {s}{}",
                match String::from_utf8_lossy(&body[..body.len().min(160)]).trim() {
                    "" => String::new(),
                    b => format!(" ({b})"),
                }
            )),
            Err(e) => answers.push(format!("POST {path} failed: {}", e.message)),
        }
    }
    Err(format!(
        "cannot reset the server's prefix cache (--reset-prefix-cache / reset_prefix_cache): {}. \
         vLLM serves /reset_prefix_cache only when started with VLLM_SERVER_DEV_MODE=1; SGLang \
         serves /flush_cache; other servers cannot be asked, so run without the option (or restart \
         the server between runs)",
        answers.join("; ")
    ))
}

/// Calls vLLM's profiler endpoint `path`; a failure becomes a note, not an error.
async fn profiler(
    client: &HttpClient,
    headers: &[(String, String)],
    path: &str,
    notes: &mut Vec<String>,
) {
    let note = match client.post_empty(path, headers).await {
        Ok((200, _)) => {
            eprintln!(
                "{} the server profiler ({path})",
                if path.contains("start") {
                    "Started"
                } else {
                    "Stopped"
                }
            );
            return;
        }
        Ok((404, _)) => format!(
            "the server has no {path} (vLLM serves it when started with VLLM_TORCH_PROFILER_DIR set); not profiled"
        ),
        Ok((s, body)) => format!(
            "{path} answered HTTP {s}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ),
        Err(e) => format!("{path} failed: {}", e.message),
    };
    eprintln!("warning: {note}");
    notes.push(note);
}

/// Sleeps on this thread until `target_ns`; returns false if the run was stopped.
fn sleep_until(target_ns: u64, ctl: &watch::Receiver<u8>) -> bool {
    loop {
        let now = clock::now_ns();
        if now >= target_ns {
            return true;
        }
        if *ctl.borrow() >= 1 {
            return false;
        }
        std::thread::park_timeout(Duration::from_nanos((target_ns - now).min(20_000_000)));
    }
}

/// Request tasks spawned but not yet first polled by the I/O runtime: the
/// dispatcher waits while [`MAX_UNSTARTED`] are queued, so a burst of starts (10,000
/// requests at once) never queues thousands of tasks ahead of the reads of streams
/// already running. Without it, those reads waited until every start was done
/// (~300 ms at 10,000 streams on one core) and came back several events at once.
#[derive(Default)]
pub(crate) struct StartGate {
    queued: AtomicUsize,
    waiting: AtomicBool,
    lock: std::sync::Mutex<()>,
    cv: std::sync::Condvar,
}

/// See [`StartGate`]; about 2 ms of request starts on one core.
const MAX_UNSTARTED: usize = 64;

impl StartGate {
    /// Called by a request task when it first runs; wakes a waiting dispatcher
    /// once half the queue has started (one wake-up per 32 starts, not per start).
    pub(crate) fn started(&self) {
        let left = self.queued.fetch_sub(1, Ordering::AcqRel) - 1;
        if left <= MAX_UNSTARTED / 2 && self.waiting.load(Ordering::Acquire) {
            let _g = self.lock.lock().unwrap();
            self.cv.notify_one();
        }
    }

    /// Called by the dispatcher just before a spawn (so the task's own
    /// [`StartGate::started`] always comes after).
    pub(crate) fn spawning(&self) {
        self.queued.fetch_add(1, Ordering::AcqRel);
    }

    /// Called by the dispatcher after a spawn: while too many are queued, waits
    /// until half of them started or the run is told to stop.
    pub(crate) fn wait(&self, ctl: &watch::Receiver<u8>) {
        if self.queued.load(Ordering::Acquire) < MAX_UNSTARTED {
            return;
        }
        let mut g = self.lock.lock().unwrap();
        self.waiting.store(true, Ordering::Release);
        while self.queued.load(Ordering::Acquire) > MAX_UNSTARTED / 2 && *ctl.borrow() == 0 {
            g = self.cv.wait_timeout(g, Duration::from_millis(1)).unwrap().0;
        }
        self.waiting.store(false, Ordering::Release);
    }
}

/// The dispatcher: a dedicated thread that sleeps precisely (1 ns timer slack on
/// Linux) until each scheduled time, waits for a concurrency slot, and hands the
/// request to the I/O runtime (at most [`MAX_UNSTARTED`] not yet started). Returns
/// its lateness histogram (µs).
#[allow(clippy::too_many_arguments)]
fn dispatch_loop(
    handle: tokio::runtime::Handle,
    arrival: Arrival,
    n: Option<u64>,
    duration: Option<Duration>,
    t0: u64,
    sem: Option<Arc<Semaphore>>,
    ctl: watch::Receiver<u8>,
    shared: Arc<Shared>,
    alive: mpsc::Sender<()>,
    shard: Option<super::shard::Shard>,
) -> Histogram<u64> {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
    let mut lag = micros_histogram();
    let end_ns = duration.map(|d| t0 + d.as_nanos() as u64);
    let mut times = arrival.iter();
    let mut i = 0u64;
    // When the dispatcher last became free: lateness is counted from the later of
    // this and the scheduled time, so waiting for a concurrency slot is not blamed
    // on the dispatcher (it shows in the schedule lag instead).
    let mut free_since = t0;
    let gate = Arc::new(StartGate::default());
    loop {
        if n.is_some_and(|n| i >= n) || *ctl.borrow() >= 1 {
            break;
        }
        let Some(offset) = times.next() else { break };
        let sched = t0 + clock::ns_of_secs(offset);
        if end_ns.is_some_and(|e| sched >= e) {
            break;
        }
        // Another shard's request: its time passes, nothing is sent here.
        if shard.is_some_and(|s| !s.owns(i)) {
            i += 1;
            continue;
        }
        if !sleep_until(sched, &ctl) {
            break;
        }
        let _ = lag.record(((clock::now_ns() - sched.max(free_since)) / 1000).max(1));
        let permit = match &sem {
            None => None,
            Some(s) => match s.clone().try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => {
                    let mut c = ctl.clone();
                    let s = s.clone();
                    let p = handle.block_on(async move {
                        tokio::select! {
                            p = s.acquire_owned() => p.ok(),
                            _ = c.wait_for(|v| *v >= 1) => None,
                        }
                    });
                    match p {
                        Some(p) => Some(p),
                        None => break,
                    }
                }
            },
        };
        let released = clock::now_ns();
        if end_ns.is_some_and(|e| released >= e) {
            break;
        }
        let (sh, alive, g) = (shared.clone(), alive.clone(), gate.clone());
        gate.spawning();
        handle.spawn(async move {
            g.started();
            drop(g);
            let rec = sh.one(i, sched, released, false).await;
            drop(permit);
            sh.collector.add(rec);
            drop(alive);
        });
        i += 1;
        gate.wait(&ctl);
        free_since = clock::now_ns();
    }
    lag
}
