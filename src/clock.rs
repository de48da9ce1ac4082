//! The one monotonic clock every timestamp in moonbench is taken from.
//!
//! Times are nanoseconds since a process-wide epoch (the first call), read from
//! `CLOCK_MONOTONIC` through [`std::time::Instant`]. The client, the engine and the
//! in-process simulator all use it, so a simulator's "true" send time and the
//! client's measured arrival time can be subtracted directly.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The process epoch; every `now_ns()` value counts from it.
pub fn epoch() -> Instant {
    *EPOCH.get_or_init(Instant::now)
}

/// Nanoseconds since the process epoch.
#[inline]
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// With `MOONBENCH_TRACE_STARTUP` set, prints `start-up: {what} at {ms} ms` (since
/// the process epoch, which `cli::main` sets first) to stderr: where the time before
/// the first request goes (`benches/startup.rs` prints these beside its own
/// measurement from outside).
pub fn startup_mark(what: &str) {
    static ON: OnceLock<bool> = OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("MOONBENCH_TRACE_STARTUP").is_some()) {
        eprintln!("start-up: {what} at {:.1} ms", now_ns() as f64 / 1e6);
    }
}

/// The `Instant` of a `now_ns()` value (for timers).
pub fn instant_of(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
}

/// The raw `CLOCK_MONOTONIC` reading of this process's epoch, in ns. That clock is
/// shared by every process on the machine, so a time `t` of another process (its
/// own `now_ns()` plus its `monotonic_epoch_ns()`) is `t - monotonic_epoch_ns()` here.
/// Measured by bracketing a raw read between two `now_ns()` reads (best of 5, so
/// off by at most half the shortest bracket, well under a microsecond).
pub fn monotonic_epoch_ns() -> i128 {
    static AT: OnceLock<i128> = OnceLock::new();
    *AT.get_or_init(|| {
        let mut best = (u64::MAX, 0i128);
        for _ in 0..5 {
            let a = now_ns();
            let raw = raw_monotonic_ns();
            let b = now_ns();
            if b - a < best.0 {
                best = (b - a, raw - (a as i128 + (b - a) as i128 / 2));
            }
        }
        best.1
    })
}

/// `CLOCK_MONOTONIC` now, in ns (the clock [`Instant`] reads on Linux).
fn raw_monotonic_ns() -> i128 {
    // SAFETY: clock_gettime writes into the local timespec.
    unsafe {
        let mut t: libc::timespec = std::mem::zeroed();
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t);
        t.tv_sec as i128 * 1_000_000_000 + t.tv_nsec as i128
    }
}

/// Converts a nanosecond difference to seconds.
#[inline]
pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Converts seconds to nanoseconds (negative values clamp to 0).
#[inline]
pub fn ns_of_secs(s: f64) -> u64 {
    if s <= 0.0 {
        0
    } else {
        (s * 1e9).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_is_monotonic_and_converts() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        assert_eq!(ns_of_secs(1.5), 1_500_000_000);
        assert_eq!(ns_of_secs(-1.0), 0);
        assert!((secs(2_500_000_000) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn monotonic_epoch_matches_the_raw_clock() {
        let e = monotonic_epoch_ns();
        assert_eq!(e, monotonic_epoch_ns(), "measured once");
        // now_ns() + epoch is the raw clock (within the read's own cost).
        let a = now_ns() as i128 + e;
        let raw = raw_monotonic_ns();
        let b = now_ns() as i128 + e;
        assert!(
            a - 10_000 <= raw && raw <= b + 10_000,
            "{a} <= {raw} <= {b}"
        );
    }
}
