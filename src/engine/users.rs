//! Closed-loop runs: virtual users who send a request, wait for the answer, think,
//! and send the next. The users themselves are driven elsewhere (Lua coroutines in
//! `script/users.rs`); this is the native side they share: the connections, the
//! request execution on the I/O runtime (where every token is timestamped, exactly
//! as in open-loop runs) and one `Measurement` (`measure.rs`) of the whole session.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::runtime::Handle;

use super::cancel;
use super::health::micros_histogram;
use super::measure::{Collector, Measurement, Sink};
use super::run::{MAX_PRECONNECT, RunOutcome, connect};
use crate::backend::Target;
use crate::backend::exec::{Dispatch, ExecContext, execute};
use crate::backend::http::HttpClient;
use crate::clock;
use crate::dataset::Request;
use crate::metrics::{RequestRecord, UserTag};
use crate::tokenizer::Tokenizer;

/// What a closed-loop session needs.
#[derive(Clone)]
pub struct SessionSpec {
    /// Server and API.
    pub target: Arc<Target>,
    /// Counts tokens the server does not report.
    pub tokenizer: Arc<Tokenizer>,
    /// Number of users (connections opened ahead, up to [`MAX_PRECONNECT`]).
    pub users: usize,
    /// Wait this long for the server before starting (`None`: no check).
    pub ready_timeout: Option<Duration>,
    /// Stream records to this JSONL file as they finish.
    pub records_path: Option<std::path::PathBuf>,
    /// Keep each answer's text in the outcome's records (the user's answer and the
    /// records file have it either way).
    pub keep_text: bool,
    /// Bounded: keep no measured record in memory (see [`super::RunSpec::bounded`]).
    pub bounded: Option<crate::metrics::Slo>,
    /// Read the server's `/metrics` this often (`None`: don't).
    pub server_metrics: Option<Duration>,
    /// I/O worker threads (for the client-health CPU share).
    pub io_threads: usize,
    /// After an interruption, how long requests in flight may still finish.
    pub grace: Duration,
    /// Start the clock at this wall-clock time (`--start-at`, Unix seconds).
    pub start_at: Option<f64>,
}

struct Inner {
    grace: Duration,
    target: Arc<Target>,
    client: Arc<HttpClient>,
    tokenizer: Arc<Tokenizer>,
    next: AtomicU64,
    t0_ns: u64,
    collector: Collector,
    /// Requests handed to the I/O runtime and not yet started, bounded as the
    /// open-loop dispatcher bounds them (10,000 users start at once).
    gate: super::run::StartGate,
}

/// A started closed-loop session.
pub struct Session {
    _guard: cancel::RunGuard,
    inner: Arc<Inner>,
    io: Handle,
    measurement: Measurement,
}

/// A cheap handle users send through.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
    io: Handle,
}

impl Session {
    /// Connects (ready check, model, connections opened ahead) on the I/O runtime
    /// `io`, then starts the clock. Records go to the spec's records file, if
    /// any, and to `sinks` as they finish.
    pub async fn open(
        mut spec: SessionSpec,
        io: Handle,
        sinks: Vec<Box<dyn Sink>>,
    ) -> Result<Session, String> {
        // While the session lives, Ctrl-C stops the users instead of the process.
        let guard = cancel::RunGuard::new();
        if cancel::level() > 0 {
            return Err("interrupted before the run started".into());
        }
        let want = spec.users.clamp(1, MAX_PRECONNECT);
        let setup = io
            .spawn(async move {
                let r = connect(&mut spec.target, spec.ready_timeout, Some(want)).await;
                r.map(|(client, out)| (spec, client, out))
            })
            .await
            .map_err(|e| format!("the setup crashed: {e}"))?;
        let (spec, client, mut out) = setup?;
        // A sharded run's clock check and common start (`--start-at`), once connected.
        let (at, c, h) = (spec.start_at, client.clone(), spec.target.plain_headers());
        out.clock = io
            .spawn(async move { super::shard::prepare_start(at, &c, &h).await })
            .await
            .map_err(|e| format!("the wait for --start-at crashed: {e}"))??;
        let mut measurement = Measurement::new(
            client.clone(),
            spec.target.plain_headers(),
            out,
            spec.records_path.as_deref(),
            sinks,
            spec.server_metrics,
            spec.io_threads,
        )?;
        measurement.keep_text(spec.keep_text);
        if let Some(slo) = &spec.bounded {
            measurement.bounded(slo.clone());
        }
        let t0 = {
            let _g = io.enter();
            measurement.start()
        };
        Ok(Session {
            _guard: guard,
            inner: Arc::new(Inner {
                grace: spec.grace,
                target: spec.target,
                client,
                tokenizer: spec.tokenizer,
                next: AtomicU64::new(0),
                t0_ns: t0,
                collector: measurement.collector(),
                gate: Default::default(),
            }),
            io,
            measurement,
        })
    }

    /// A handle to send requests through.
    pub fn sender(&self) -> Sender {
        Sender {
            inner: self.inner.clone(),
            io: self.io.clone(),
        }
    }

    /// When the clock started.
    pub fn t0_ns(&self) -> u64 {
        self.inner.t0_ns
    }

    /// Ends the session: every record so far, in send order, and the run's facts.
    /// Call it once no request is in flight.
    pub async fn close(self, partial: bool) -> RunOutcome {
        // Users have no dispatcher: its lateness histogram stays empty.
        let m = self.measurement;
        self.io
            .spawn(async move { m.finish(&micros_histogram(), partial).await })
            .await
            .unwrap_or_else(|e| RunOutcome {
                notes: vec![format!("the end of the session crashed: {e}")],
                partial: true,
                ..Default::default()
            })
    }
}

impl Sender {
    /// Sends `req` for `tag` now, on the I/O runtime, and waits for its record (also
    /// kept for the run's results). An interruption cuts it off after the grace period.
    pub async fn send(&self, req: Request, tag: UserTag) -> RequestRecord {
        let inner = self.inner.clone();
        self.inner.gate.spawning();
        let task = self.io.spawn(async move {
            inner.gate.started();
            let index = inner.next.fetch_add(1, Ordering::Relaxed);
            let now = clock::now_ns();
            let ctx = ExecContext {
                client: &inner.client,
                target: &inner.target,
                tokenizer: &inner.tokenizer,
            };
            // The first interruption lets it finish within the grace period; the
            // second cuts it off at once.
            let mut lvl = cancel::subscribe();
            let grace = inner.grace;
            let abort = async move {
                if lvl.wait_for(|v| *v >= 1).await.is_err() {
                    std::future::pending::<()>().await;
                }
                tokio::select! {
                    _ = lvl.wait_for(|v| *v >= 2) => {}
                    _ = tokio::time::sleep(grace) => {}
                }
            };
            let d = Dispatch {
                index,
                scheduled_ns: now,
                dispatched_ns: now,
                warmup: false,
            };
            crate::metrics::live::sent();
            let mut rec = Box::pin(execute(&ctx, &req, d, abort)).await;
            rec.user = Some(tag);
            inner.collector.add(rec.clone());
            rec
        });
        // Blocks the script's thread (the users' scheduler) while many requests
        // wait to start, as the dispatcher waits: the I/O thread reads first.
        self.inner.gate.wait(&cancel::subscribe());
        match task.await {
            Ok(rec) => rec,
            Err(e) => RequestRecord {
                error: Some(crate::metrics::RequestError::new(
                    crate::metrics::ErrorKind::Connection,
                    format!("the request task failed: {e}"),
                )),
                user: Some(tag),
                ..Default::default()
            },
        }
    }

    /// The run's tokenizer.
    pub fn tokenizer(&self) -> &Arc<Tokenizer> {
        &self.inner.tokenizer
    }

    /// The target requests go to.
    pub fn target(&self) -> &Arc<Target> {
        &self.inner.target
    }
}
