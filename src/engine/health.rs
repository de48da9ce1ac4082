//! Client health: can the client trust its own numbers, and did it limit the run?
//!
//! Evidence gathered while a run goes: the CPU time of the client's I/O threads; a
//! wake-up probe (a thread of ours sleeping 1 ms at a time: how late the OS lets it
//! run is how late a read of bytes already in the kernel can be); the runtime's
//! scheduling delay; the machine's CPU pressure (`/proc/pressure/cpu`) and steal
//! time; the dispatcher's lateness against the schedule. From the records: token
//! events that came back from the same socket read as an earlier one (their
//! timestamps collapsed). When the built-in simulator is the server, its record of
//! what it sent gives the error directly. [`HealthMonitor::finish`] turns that into
//! a verdict with a reason and an estimated bound on the timing error.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::clock;
use crate::metrics::RequestRecord;

/// Thread-name prefix of the client's I/O runtime workers.
pub const IO_THREAD_PREFIX: &str = "mb-io";

/// A run's client-health verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientHealth {
    /// `ok`, or `warning` when the client's own timing error may exceed a few
    /// percent of what it measured, or a reading suggests it limited the run.
    pub verdict: String,
    /// Why, in one sentence.
    pub reason: String,
    /// Estimated bound on the error of the measured token times (ms).
    pub timing_error_bound_ms: f64,
    /// What the bound is compared with: the mean ITL (or the median TTFT) measured
    /// (ms); the mean, as collapsed reads pull the median ITL to zero.
    pub reference_ms: f64,
    /// What looked wrong, in words.
    pub warnings: Vec<String>,
    /// Token-bearing chunks that came back from the same socket read as the chunk
    /// before them, over all chunks after the first (0–1).
    pub collapsed_chunk_share: f64,
    /// How late a sleeping thread of the client woke up, median (ms).
    pub wake_lateness_p50_ms: f64,
    /// Wake-up lateness, 99th percentile (ms).
    pub wake_lateness_p99_ms: f64,
    /// Wake-up lateness, maximum (ms).
    pub wake_lateness_max_ms: f64,
    /// Share of the run during which some task on the machine waited for a CPU
    /// (`/proc/pressure/cpu`, "some"), where the kernel reports it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_pressure: Option<f64>,
    /// Share of CPU time stolen by the hypervisor during the run, where reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steal_share: Option<f64>,
    /// When the built-in simulator was the server: measured minus true arrival of
    /// each chunk, median (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth_error_p50_ms: Option<f64>,
    /// The same, 99th percentile (ms).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth_error_p99_ms: Option<f64>,
    /// Chunks compared with the simulator's truth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub truth_chunks: Option<u64>,
    /// CPU seconds used by the client's I/O threads during the run.
    pub cpu_seconds: f64,
    /// That CPU time over (duration × I/O threads), 0–1.
    pub cpu_share: f64,
    /// Number of I/O worker threads.
    pub io_threads: usize,
    /// Scheduling delay of a ready task, median (ms).
    pub sched_delay_p50_ms: f64,
    /// Scheduling delay, 99th percentile (ms).
    pub sched_delay_p99_ms: f64,
    /// Scheduling delay, maximum (ms).
    pub sched_delay_max_ms: f64,
    /// Dispatcher wake-up lateness against the schedule, 99th percentile (ms).
    pub dispatch_lag_p99_ms: f64,
    /// Dispatcher lateness, maximum (ms).
    pub dispatch_lag_max_ms: f64,
    /// Whether token arrival times are the kernel's receive timestamps (else the
    /// time each read returned).
    pub kernel_timestamps: bool,
    /// How late the client read bytes the kernel already had, median (ms).
    pub read_lag_p50_ms: f64,
    /// Read lag, 99th percentile (ms).
    pub read_lag_p99_ms: f64,
    /// Read lag, maximum (ms).
    pub read_lag_max_ms: f64,
    /// CPU seconds of the thread running the Lua script (virtual-users runs, where
    /// Lua code runs between requests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_cpu_seconds: Option<f64>,
    /// That CPU time over the run's duration, 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub script_cpu_share: Option<f64>,
}

impl ClientHealth {
    /// Adds the Lua script thread's CPU time over a run of `duration` seconds, with a
    /// warning when the script, not the server, may have set the pace.
    pub fn add_script_cpu(&mut self, secs: f64, duration: f64) {
        let share = if duration > 0.0 { secs / duration } else { 0.0 };
        self.script_cpu_seconds = Some(secs);
        self.script_cpu_share = Some(share);
        if share > CPU_SHARE_WARN {
            self.warnings.push(format!(
                "the Lua script thread was {:.0}% busy: the users' Lua code, not the server, may have set the pace",
                share * 100.0
            ));
            if self.verdict != "warning" {
                self.reason = self.warnings.last().cloned().unwrap_or_default();
            }
            self.verdict = "warning".into();
        }
    }
}

/// Thresholds above which a run gets a warning.
const CPU_SHARE_WARN: f64 = 0.85;
/// With kernel timestamps a late read does not change any latency; it only shows
/// a client falling behind, so the bar is higher.
const READ_LAG_P99_WARN_MS: f64 = 50.0;
/// The timing error may be this share of the reference before the verdict warns...
const ERROR_SHARE_WARN: f64 = 0.05;
/// ...and never warns below this absolute bound (ms).
const ERROR_FLOOR_MS: f64 = 0.1;
/// Kernel receive timestamps of chunks that each came in their own read (ms).
const KERNEL_STAMP_ERROR_MS: f64 = 0.02;
/// Dispatcher lateness (p99) that warns, at least (ms), and as a share of the mean
/// gap between scheduled sends.
const DISPATCH_WARN_MS: f64 = 5.0;
const DISPATCH_WARN_SHARE: f64 = 0.1;
/// Collapsed chunks above this share mean reads batched events.
const COLLAPSED_SHARE: f64 = 0.02;
/// CPU pressure above which the machine counts as busy.
const PRESSURE_BUSY: f64 = 0.2;

/// The machine's CPU pressure: total µs during which some task waited for a CPU.
fn cpu_pressure_us() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let line = s.lines().find(|l| l.starts_with("some"))?;
    line.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))
        .and_then(|v| v.parse().ok())
}

/// (steal, total) CPU ticks of the machine from `/proc/stat`.
fn steal_ticks() -> Option<(u64, u64)> {
    let s = std::fs::read_to_string("/proc/stat").ok()?;
    let line = s.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((*v.get(7)?, v.iter().take(8).sum()))
}

/// A thread that sleeps 1 ms at a time (1 ns timer slack) and records how late it
/// wakes: how long a runnable thread of the client waits for a CPU.
struct WakeProbe {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Histogram<u64>>>,
}

impl WakeProbe {
    fn start() -> WakeProbe {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mb-wakeprobe".into())
            .spawn(move || {
                #[cfg(target_os = "linux")]
                // SAFETY: prctl(PR_SET_TIMERSLACK) only changes this thread's timer slack.
                unsafe {
                    libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
                }
                let mut h = micros_histogram();
                let period = Duration::from_millis(1);
                while !s.load(Ordering::Relaxed) {
                    let due = clock::now_ns() + period.as_nanos() as u64;
                    std::thread::sleep(period);
                    let late_us = clock::now_ns().saturating_sub(due) / 1000;
                    let _ = h.record(late_us.max(1));
                }
                h
            })
            .ok();
        WakeProbe { stop, thread }
    }

    fn finish(mut self) -> Histogram<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_else(micros_histogram)
    }
}

pub use crate::metrics::digest::{EvidenceAcc, RecordEvidence};

/// The evidence of kept records.
pub fn record_evidence(records: &[RequestRecord]) -> RecordEvidence {
    let mut acc = EvidenceAcc::default();
    for r in records {
        acc.add(r);
    }
    acc.evidence()
}

/// Measured minus true arrival of every chunk, when the server is an in-process
/// simulator keeping its truth (µs histogram).
fn truth_errors(records: &[RequestRecord], truth: &crate::sim::truth::TruthLog) -> Histogram<u64> {
    let mut h = micros_histogram();
    for r in records.iter().filter(|r| r.success() && !r.warmup) {
        let Some(t) = truth.get(&r.request_id) else {
            continue;
        };
        if t.chunk_ns.len() != r.chunks.len() {
            continue;
        }
        for (m, s) in r.chunks.times().zip(&t.chunk_ns) {
            let _ = h.record((m.saturating_sub(*s) / 1000).max(1));
        }
    }
    h
}

pub use crate::metrics::stats::micros_histogram;

/// Measures client health while a run goes.
pub struct HealthMonitor {
    stop: Arc<AtomicBool>,
    delays: Arc<Mutex<Histogram<u64>>>,
    cpu_start: f64,
    io_threads: usize,
    task: tokio::task::JoinHandle<()>,
    wake: WakeProbe,
    pressure_start: Option<u64>,
    steal_start: Option<(u64, u64)>,
    started: u64,
}

impl HealthMonitor {
    /// Starts the scheduling-delay probe (every 5 ms) on the current runtime.
    pub fn start(io_threads: usize) -> HealthMonitor {
        let stop = Arc::new(AtomicBool::new(false));
        let delays = Arc::new(Mutex::new(micros_histogram()));
        let (s, d) = (stop.clone(), delays.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let t = clock::now_ns();
                tokio::task::yield_now().await;
                let us = (clock::now_ns() - t) / 1000;
                let _ = d.lock().unwrap().record(us.max(1));
            }
        });
        HealthMonitor {
            stop,
            delays,
            cpu_start: super::os::thread_cpu_secs(IO_THREAD_PREFIX),
            io_threads,
            task,
            wake: WakeProbe::start(),
            pressure_start: cpu_pressure_us(),
            steal_start: steal_ticks(),
            started: clock::now_ns(),
        }
    }

    /// Stops the probes and gives the verdict for a run of `duration` seconds with
    /// the evidence `ev` of its records, sent to `server` (an in-process simulator
    /// there lends its truth, compared with the kept `records`).
    pub async fn finish(
        self,
        duration: f64,
        dispatch_lag_us: &Histogram<u64>,
        read_clock: &crate::backend::http::ReadClock,
        records: &[RequestRecord],
        ev: RecordEvidence,
        server: &crate::backend::BaseUrl,
    ) -> ClientHealth {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let wake = self.wake.finish();
        let wall = clock::secs(clock::now_ns().saturating_sub(self.started)).max(1e-9);
        let cpu = (super::os::thread_cpu_secs(IO_THREAD_PREFIX) - self.cpu_start).max(0.0);
        let d = self.delays.lock().unwrap();
        let ms = |h: &Histogram<u64>, q: f64| {
            if h.is_empty() {
                0.0
            } else {
                h.value_at_quantile(q) as f64 / 1000.0
            }
        };
        let max_ms = |h: &Histogram<u64>| {
            if h.is_empty() {
                0.0
            } else {
                h.max() as f64 / 1000.0
            }
        };
        let mut h = ClientHealth {
            cpu_seconds: cpu,
            cpu_share: if duration > 0.0 {
                cpu / (duration * self.io_threads.max(1) as f64)
            } else {
                0.0
            },
            io_threads: self.io_threads,
            sched_delay_p50_ms: ms(&d, 0.5),
            sched_delay_p99_ms: ms(&d, 0.99),
            sched_delay_max_ms: max_ms(&d),
            dispatch_lag_p99_ms: ms(dispatch_lag_us, 0.99),
            dispatch_lag_max_ms: max_ms(dispatch_lag_us),
            kernel_timestamps: read_clock.kernel.load(Ordering::Relaxed),
            wake_lateness_p50_ms: ms(&wake, 0.5),
            wake_lateness_p99_ms: ms(&wake, 0.99),
            wake_lateness_max_ms: max_ms(&wake),
            cpu_pressure: self
                .pressure_start
                .zip(cpu_pressure_us())
                .map(|(a, b)| (b.saturating_sub(a) as f64 / 1e6 / wall).min(1.0)),
            steal_share: self
                .steal_start
                .zip(steal_ticks())
                .and_then(|((s0, t0), (s1, t1))| {
                    (t1 > t0).then(|| s1.saturating_sub(s0) as f64 / (t1 - t0) as f64)
                }),
            ..Default::default()
        };
        drop(d);
        {
            let rl = read_clock.lag_us.lock().unwrap();
            h.read_lag_p50_ms = ms(&rl, 0.5);
            h.read_lag_p99_ms = ms(&rl, 0.99);
            h.read_lag_max_ms = max_ms(&rl);
        }
        h.collapsed_chunk_share = if ev.gaps > 0 {
            ev.collapsed as f64 / ev.gaps as f64
        } else {
            0.0
        };
        if let Some(truth) = crate::sim::truth::lookup(&server.host, server.port) {
            let te = truth_errors(records, &truth);
            if !te.is_empty() {
                h.truth_error_p50_ms = Some(ms(&te, 0.5));
                h.truth_error_p99_ms = Some(ms(&te, 0.99));
                h.truth_chunks = Some(te.len());
            }
        }
        judge(&mut h, &ev);
        h
    }
}

/// The verdict from the evidence: the error bound against what was measured, then
/// whether the client limited the load.
fn judge(h: &mut ClientHealth, ev: &RecordEvidence) {
    let busy = h.cpu_pressure.unwrap_or(0.0) > PRESSURE_BUSY
        || h.steal_share.unwrap_or(0.0) > PRESSURE_BUSY;
    let collapsed = h.collapsed_chunk_share > COLLAPSED_SHARE;
    // How late a read may be: the wake-up probe, or the runtime's own delay when it
    // is worse (a client busy with its own work).
    let read_delay = h.wake_lateness_p99_ms.max(h.sched_delay_p99_ms);
    let (bound, why) = if let Some(p99) = h.truth_error_p99_ms {
        (
            p99,
            format!(
                "the simulator's record of what it sent: measured arrivals were {p99:.3} ms late at p99"
            ),
        )
    } else if !h.kernel_timestamps {
        (
            read_delay,
            format!(
                "no kernel receive timestamps: token times may be late by the read delay, {read_delay:.3} ms p99"
            ),
        )
    } else if collapsed || busy {
        (
            read_delay,
            format!(
                "{:.0}% of token chunks came back from one read with the chunk before them{}; their times may be \
                 off by the read delay, {read_delay:.3} ms p99",
                h.collapsed_chunk_share * 100.0,
                match h.cpu_pressure {
                    Some(p) if busy =>
                        format!(" on a busy machine (CPU pressure {:.0}%)", p * 100.0),
                    _ => String::new(),
                }
            ),
        )
    } else {
        (
            KERNEL_STAMP_ERROR_MS,
            "each chunk came in its own read, stamped by the kernel on arrival".to_string(),
        )
    };
    h.timing_error_bound_ms = bound;
    // An ITL of zero (every chunk collapsed into the read before it) is no scale to
    // judge an error by: the TTFT is then the reference.
    let itl = ev.median_itl_ms.filter(|v| *v > 0.0);
    h.reference_ms = itl.or(ev.median_ttft_ms).unwrap_or(0.0);
    let what = if itl.is_some() {
        "mean ITL"
    } else {
        "median TTFT"
    };
    let limit = (h.reference_ms * ERROR_SHARE_WARN).max(ERROR_FLOOR_MS);
    let mut reason = None;
    if bound > limit {
        let share = if h.reference_ms > 0.0 {
            format!(
                "{:.0}% of the {what} ({:.2} ms)",
                bound / h.reference_ms * 100.0,
                h.reference_ms
            )
        } else {
            "with nothing measured to compare it with".to_string()
        };
        let w = format!(
            "timing error may reach {bound:.2} ms, {share}: {why}; quiet the machine \
             (other processes, MOONBENCH_IO_THREADS) and run again"
        );
        reason = Some(w.clone());
        h.warnings.push(w);
    }
    if h.cpu_share > CPU_SHARE_WARN {
        h.warnings.push(format!(
            "the client's I/O threads were {:.0}% busy: timings may include client queueing; \
             give it more cores (MOONBENCH_IO_THREADS) or lower the load",
            h.cpu_share * 100.0
        ));
    }
    if h.kernel_timestamps && h.read_lag_p99_ms > READ_LAG_P99_WARN_MS {
        h.warnings.push(format!(
            "the client read bytes up to {:.2} ms (p99) after the kernel had them; the client may have \
             limited the load it could drive",
            h.read_lag_p99_ms
        ));
    }
    let dispatch_limit = DISPATCH_WARN_MS.max(ev.mean_interval_ms * DISPATCH_WARN_SHARE);
    let late = h.dispatch_lag_p99_ms.max(ev.pickup_p99_ms);
    if ev.mean_interval_ms > 0.0 && late > dispatch_limit {
        h.warnings.push(format!(
            "requests were sent up to {late:.2} ms (p99) after their scheduled time by the client \
             (dispatcher {:.2} ms, I/O pick-up {:.2} ms; mean gap between sends {:.2} ms): the schedule was not kept",
            h.dispatch_lag_p99_ms, ev.pickup_p99_ms, ev.mean_interval_ms
        ));
    }
    h.verdict = if h.warnings.is_empty() {
        "ok"
    } else {
        "warning"
    }
    .into();
    h.reason = reason
        .or_else(|| h.warnings.first().cloned())
        .unwrap_or_else(|| {
            format!(
                "timing error at most {bound:.3} ms ({why}), {:.1}% of the {what}",
                if h.reference_ms > 0.0 {
                    bound / h.reference_ms * 100.0
                } else {
                    0.0
                }
            )
        });
}
