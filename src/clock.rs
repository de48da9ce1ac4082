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

/// The `Instant` of a `now_ns()` value (for timers).
pub fn instant_of(ns: u64) -> Instant {
    epoch() + Duration::from_nanos(ns)
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
}
