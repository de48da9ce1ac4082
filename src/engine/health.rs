//! Client health: is the load generator itself limiting the numbers?
//!
//! Three readings, taken while a run goes: the CPU time of the client's I/O threads
//! (a busy client reads late), the runtime's scheduling delay (a probe measures how
//! long a ready task waits before it runs, which is how late bytes already in the
//! kernel get read), and the dispatcher's lateness against the schedule.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::clock;

/// Thread-name prefix of the client's I/O runtime workers.
pub const IO_THREAD_PREFIX: &str = "mb-io";

/// A run's client-health verdict.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientHealth {
    /// `ok`, or `warning` when a reading suggests the client limited the run.
    pub verdict: String,
    /// What looked wrong, in words.
    pub warnings: Vec<String>,
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
            self.verdict = "warning".into();
        }
    }
}

/// Thresholds above which a run gets a warning.
const CPU_SHARE_WARN: f64 = 0.85;
const DELAY_P99_WARN_MS: f64 = 2.0;
/// With kernel timestamps a late read does not change any latency; it only shows
/// a client falling behind, so the bar is higher.
const READ_LAG_P99_WARN_MS: f64 = 50.0;

/// A new histogram of microseconds (1 µs .. 1 h, 3 significant digits).
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

/// Measures client health while a run goes.
pub struct HealthMonitor {
    stop: Arc<AtomicBool>,
    delays: Arc<Mutex<Histogram<u64>>>,
    cpu_start: f64,
    io_threads: usize,
    task: tokio::task::JoinHandle<()>,
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
            cpu_start: clock::thread_cpu_secs(IO_THREAD_PREFIX),
            io_threads,
            task,
        }
    }

    /// Stops the probe and gives the verdict for a run of `duration` seconds.
    pub async fn finish(
        self,
        duration: f64,
        dispatch_lag_us: &Histogram<u64>,
        read_clock: &crate::backend::http::ReadClock,
    ) -> ClientHealth {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let cpu = (clock::thread_cpu_secs(IO_THREAD_PREFIX) - self.cpu_start).max(0.0);
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
            ..Default::default()
        };
        {
            let rl = read_clock.lag_us.lock().unwrap();
            h.read_lag_p50_ms = ms(&rl, 0.5);
            h.read_lag_p99_ms = ms(&rl, 0.99);
            h.read_lag_max_ms = max_ms(&rl);
        }
        if h.cpu_share > CPU_SHARE_WARN {
            h.warnings.push(format!(
                "the client's I/O threads were {:.0}% busy: timings may include client queueing; \
                 give it more cores (MOONBENCH_IO_THREADS) or lower the load",
                h.cpu_share * 100.0
            ));
        }
        if h.kernel_timestamps {
            if h.read_lag_p99_ms > READ_LAG_P99_WARN_MS {
                h.warnings.push(format!(
                    "the client read bytes up to {:.2} ms (p99) after the kernel had them; token times are the \
                     kernel's and stay exact, but the client may have limited the load it could drive",
                    h.read_lag_p99_ms
                ));
            }
        } else if h.sched_delay_p99_ms > DELAY_P99_WARN_MS {
            h.warnings.push(format!(
                "ready tasks waited up to {:.2} ms (p99) before running: token arrival times may be late by that much",
                h.sched_delay_p99_ms
            ));
        }
        if h.dispatch_lag_p99_ms > DELAY_P99_WARN_MS {
            h.warnings.push(format!(
                "requests were sent up to {:.2} ms (p99) after their scheduled time by the dispatcher",
                h.dispatch_lag_p99_ms
            ));
        }
        h.verdict = if h.warnings.is_empty() {
            "ok".into()
        } else {
            "warning".into()
        };
        h
    }
}
