//! Closed-loop runs: virtual users who send a request, wait for the answer, think,
//! and send the next. The users themselves are driven elsewhere (Lua coroutines in
//! `script/users.rs`); this is the native side they share: the connections, the
//! request execution on the I/O runtime (where every token is timestamped, exactly
//! as in open-loop runs), the records, and the run's outcome.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;

use super::cancel;
use super::health::{HealthMonitor, micros_histogram};
use super::run::{MAX_PRECONNECT, RunOutcome, connect};
use super::scrape::Scraper;
use crate::backend::Target;
use crate::backend::exec::{Dispatch, ExecContext, execute};
use crate::backend::http::HttpClient;
use crate::clock;
use crate::dataset::Request;
use crate::engine::records::RecordWriter;
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
    /// Read the server's `/metrics` this often (`None`: don't).
    pub server_metrics: Option<Duration>,
    /// I/O worker threads (for the client-health CPU share).
    pub io_threads: usize,
    /// After an interruption, how long requests in flight may still finish.
    pub grace: Duration,
}

struct Inner {
    grace: Duration,
    target: Arc<Target>,
    client: Arc<HttpClient>,
    tokenizer: Arc<Tokenizer>,
    next: AtomicU64,
    t0_ns: u64,
    records: Mutex<Vec<RequestRecord>>,
    writer: Mutex<Option<RecordWriter>>,
}

/// A started closed-loop session.
pub struct Session {
    _guard: cancel::RunGuard,
    inner: Arc<Inner>,
    io: Handle,
    out: RunOutcome,
    monitor: HealthMonitor,
    scraper: Option<Scraper>,
}

/// A cheap handle users send through.
#[derive(Clone)]
pub struct Sender {
    inner: Arc<Inner>,
    io: Handle,
}

impl Session {
    /// Connects (ready check, model, connections opened ahead) on the I/O runtime
    /// `io`, then starts the clock.
    pub async fn open(mut spec: SessionSpec, io: Handle) -> Result<Session, String> {
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
        let writer = match &spec.records_path {
            Some(p) => Some(RecordWriter::create(p, clock::now_ns())?),
            None => None,
        };
        let t0 = clock::now_ns();
        out.t0_ns = t0;
        let mut writer = writer;
        if let Some(w) = writer.as_mut() {
            w.set_t0(t0);
        }
        let monitor = {
            let _g = io.enter();
            HealthMonitor::start(spec.io_threads)
        };
        let scraper = spec.server_metrics.map(|every| {
            let _g = io.enter();
            Scraper::start(client.clone(), spec.target.plain_headers(), every, t0)
        });
        Ok(Session {
            _guard: guard,
            inner: Arc::new(Inner {
                grace: spec.grace,
                target: spec.target,
                client,
                tokenizer: spec.tokenizer,
                next: AtomicU64::new(0),
                t0_ns: t0,
                records: Mutex::new(Vec::new()),
                writer: Mutex::new(writer),
            }),
            io,
            out,
            monitor,
            scraper,
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

    /// The model requests name (the server's first one when none was given).
    pub fn model(&self) -> &str {
        &self.out.model
    }

    /// Ends the session: every record so far, in send order, and the run's facts.
    /// Call it once no request is in flight.
    pub async fn close(self, partial: bool) -> RunOutcome {
        let mut out = self.out;
        let mut recs = std::mem::take(&mut *self.inner.records.lock().unwrap());
        recs.sort_by_key(|r| r.index);
        if let Some(w) = self.inner.writer.lock().unwrap().as_mut() {
            let _ = w.flush();
        }
        out.end_ns = recs
            .iter()
            .map(|r| r.end_ns)
            .max()
            .unwrap_or(self.inner.t0_ns)
            .max(self.inner.t0_ns);
        out.partial = partial;
        if let Some(s) = self.scraper {
            let _g = self.io.enter();
            out.server_metrics = self.io.spawn(s.finish()).await.ok().flatten();
        }
        // Users have no dispatcher: its lateness histogram stays empty.
        out.health = self
            .monitor
            .finish(
                out.duration(),
                &micros_histogram(),
                &self.inner.client.read_clock,
                &recs,
                self.inner.client.base(),
            )
            .await;
        out.records = recs;
        out
    }
}

impl Sender {
    /// Sends `req` for `tag` now, on the I/O runtime, and waits for its record (also
    /// kept for the run's results). An interruption cuts it off after the grace period.
    pub async fn send(&self, req: Request, tag: UserTag) -> RequestRecord {
        let inner = self.inner.clone();
        let task = self.io.spawn(async move {
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
            let mut rec = execute(&ctx, &req, d, abort).await;
            rec.user = Some(tag);
            if let Some(w) = inner.writer.lock().unwrap().as_mut() {
                if let Err(e) = w.write(&rec) {
                    eprintln!("warning: cannot write the records file: {e}; records are still kept in memory");
                }
            }
            inner.records.lock().unwrap().push(rec.clone());
            rec
        });
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
