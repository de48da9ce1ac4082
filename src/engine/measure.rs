//! One measurement, whatever drives it: open-loop runs (`run.rs`) and closed-loop
//! virtual users (`users.rs`) both measure through a [`Measurement`].
//!
//! It owns what every run has between connecting and its outcome: the clock's
//! start (t0), the [`Collector`] every finished record goes through — to the live
//! [`Sink`]s (the records file, the progress bar, a script's `on_response`
//! channel) and into memory, counted in the live metrics — the client-health monitor, the server-metrics
//! scraper, and the end: records in schedule order, the end time and the verdict.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::mpsc;

use super::health::HealthMonitor;
use super::records::RecordWriter;
use super::run::RunOutcome;
use super::scrape::Scraper;
use crate::backend::http::HttpClient;
use crate::clock;
use crate::metrics::digest::Digest;
use crate::metrics::{RequestRecord, Slo};

/// A live consumer of records: sees each record once, as it finishes.
pub trait Sink: Send {
    /// What the sink is, for its warning if it fails ("the records file").
    fn name(&self) -> &'static str;
    /// Whether it also sees the warm-up requests (default: no).
    fn wants_warmups(&self) -> bool {
        false
    }
    /// The measured part starts at `t0_ns` (before any measured record).
    fn start(&mut self, _t0_ns: u64) {}
    /// One finished record. An error detaches the sink with a warning; the record
    /// is kept in memory either way.
    fn record(&mut self, rec: &RequestRecord) -> Result<(), String>;
    /// The measurement is over (flush, clear the bar).
    fn finish(&mut self) {}
}

/// `on_response`'s channel: the script's thread receives each measured record.
impl Sink for mpsc::UnboundedSender<RequestRecord> {
    fn name(&self) -> &'static str {
        "the on_response channel"
    }
    fn record(&mut self, rec: &RequestRecord) -> Result<(), String> {
        // A script that stopped listening is not an error of the run.
        let _ = self.send(rec.clone());
        Ok(())
    }
}

struct Collected {
    sinks: Vec<Box<dyn Sink>>,
    records: Vec<RequestRecord>,
    /// A bounded measurement folds measured records in here instead of keeping
    /// them (from [`Measurement::start`]; warm-ups are still kept).
    digest: Option<Digest>,
    /// Whether kept records keep their answer text ([`RequestRecord::compact`]).
    keep_text: bool,
}

/// Where finished records go (cheap to clone; shared by the tasks that finish
/// requests).
#[derive(Clone)]
pub struct Collector(Arc<Mutex<Collected>>);

impl Collector {
    /// Hands `rec` to the sinks that want it and keeps it, compacted (its text
    /// only if the measurement keeps texts).
    pub fn add(&self, mut rec: RequestRecord) {
        if !rec.warmup {
            crate::metrics::live::finished(&rec);
        }
        let mut c = self.0.lock().unwrap();
        c.sinks.retain_mut(|s| {
            if rec.warmup && !s.wants_warmups() {
                return true;
            }
            match s.record(&rec) {
                Ok(()) => true,
                Err(e) => {
                    eprintln!(
                        "warning: {} failed: {e}; records are still kept in memory",
                        s.name()
                    );
                    false
                }
            }
        });
        if !rec.warmup {
            if let Some(d) = &mut c.digest {
                d.add(&rec);
                return;
            }
        }
        rec.compact(c.keep_text);
        c.records.push(rec);
    }
}

/// A measurement in progress (see the module docs).
pub struct Measurement {
    client: Arc<HttpClient>,
    headers: Vec<(String, String)>,
    out: RunOutcome,
    collector: Collector,
    server_metrics: Option<Duration>,
    io_threads: usize,
    running: Option<(HealthMonitor, Option<Scraper>)>,
    /// Bounded: keep no measured record, count goodput against this SLO.
    bounded: Option<Slo>,
}

impl Measurement {
    /// A measurement through `client` (with the facts `connect` found in `out`)
    /// whose records go to the records file at `records_path`, if any, then to
    /// `sinks`; the server's `/metrics` is read with `headers` every
    /// `server_metrics` once it starts. `io_threads` is the I/O runtime's size,
    /// for the client-health CPU share.
    pub fn new(
        client: Arc<HttpClient>,
        headers: Vec<(String, String)>,
        out: RunOutcome,
        records_path: Option<&Path>,
        mut sinks: Vec<Box<dyn Sink>>,
        server_metrics: Option<Duration>,
        io_threads: usize,
    ) -> Result<Measurement, String> {
        if let Some(p) = records_path {
            sinks.insert(0, Box::new(RecordWriter::create(p, clock::now_ns())?));
        }
        Ok(Measurement {
            client,
            headers,
            out,
            collector: Collector(Arc::new(Mutex::new(Collected {
                sinks,
                records: Vec::new(),
                digest: None,
                keep_text: false,
            }))),
            server_metrics,
            io_threads,
            running: None,
            bounded: None,
        })
    }

    /// Whether the records kept for the outcome keep their answer text (default
    /// no: the sinks always see it; `generated_texts` and `res:records()` need it
    /// kept). Set it before the first record.
    pub fn keep_text(&mut self, keep: bool) {
        self.collector.0.lock().unwrap().keep_text = keep;
        self.out.texts_kept = keep;
    }

    /// Keep no measured record in memory: fold each into a [`Digest`] (goodput
    /// counted against `slo`) once it has been to the sinks. Set it before
    /// [`Measurement::start`].
    pub fn bounded(&mut self, slo: Slo) {
        self.bounded = Some(slo);
    }

    /// Where finished records go (warm-ups too, before [`Measurement::start`]).
    pub fn collector(&self) -> Collector {
        self.collector.clone()
    }

    /// The outcome so far (the ready check's facts, notes).
    pub fn outcome(&mut self) -> &mut RunOutcome {
        &mut self.out
    }

    /// Starts the clock, the health monitor and the scraper; returns t0. Call it
    /// on the I/O runtime (inside it or with its handle entered), once.
    pub fn start(&mut self) -> u64 {
        let t0 = clock::now_ns();
        self.out.t0_ns = t0;
        self.out.t0_unix = super::shard::unix_now();
        crate::metrics::live::run_started(t0, self.out.t0_unix);
        {
            let mut c = self.collector.0.lock().unwrap();
            for s in c.sinks.iter_mut() {
                s.start(t0);
            }
            c.digest = self.bounded.take().map(|slo| Digest::new(t0, slo));
        }
        let monitor = HealthMonitor::start(self.io_threads);
        let scraper = self
            .server_metrics
            .map(|every| Scraper::start(self.client.clone(), self.headers.clone(), every, t0));
        self.running = Some((monitor, scraper));
        t0
    }

    /// Ends the measurement once no request is in flight: the sinks finish, the
    /// records are put in schedule order (warm-ups first), the end is the last
    /// measured request's end, and the health verdict weighs `dispatch_lag_us`
    /// (the dispatcher's lateness; empty without one). Run it on the I/O runtime.
    pub async fn finish(self, dispatch_lag_us: &Histogram<u64>, partial: bool) -> RunOutcome {
        let mut out = self.out;
        let (mut recs, digest) = {
            let mut c = self.collector.0.lock().unwrap();
            for s in c.sinks.iter_mut() {
                s.finish();
            }
            c.sinks.clear();
            (std::mem::take(&mut c.records), c.digest.take())
        };
        recs.sort_by_key(|r| (!r.warmup, r.index));
        let warm = recs.iter().take_while(|r| r.warmup).count();
        let t0 = out.t0_ns;
        out.end_ns = recs[warm..]
            .iter()
            .map(|r| r.end_ns)
            .max()
            .unwrap_or(t0)
            .max(digest.as_ref().map_or(t0, |d| d.last_end_ns))
            .max(t0);
        out.partial = partial;
        if let Some((monitor, scraper)) = self.running {
            if let Some(s) = scraper {
                out.server_metrics = s.finish().await;
            }
            out.health = monitor
                .finish(
                    out.duration(),
                    dispatch_lag_us,
                    &self.client.read_clock,
                    &recs[warm..],
                    match &digest {
                        Some(d) => d.evidence.evidence(),
                        None => super::health::record_evidence(&recs[warm..]),
                    },
                    self.client.base(),
                )
                .await;
        }
        out.records = recs;
        out.digest = digest.map(Box::new);
        out
    }
}
