//! When the simulator sends each token. All timing decisions live behind
//! [`TimingModel`], so a batching model can replace the fixed one without touching
//! the server.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Decides the delay before a request's first token and between its tokens.
pub trait TimingModel: Send + Sync {
    /// Delay from receiving request `seq` (with `prompt_tokens` tokens of input) to
    /// its first token.
    fn first_token_delay(&self, seq: u64, prompt_tokens: u32) -> Duration;
    /// Delay between token `k − 1` and token `k` (k ≥ 1) of request `seq`.
    fn inter_token_delay(&self, seq: u64, k: u32) -> Duration;
}

/// When token `k` (0-based) of request `seq`, started at `start_ns`, is ready:
/// the start, plus the first-token delay, plus the delays of tokens 1..=k.
pub fn token_ready_ns(
    m: &dyn TimingModel,
    seq: u64,
    prompt_tokens: u32,
    start_ns: u64,
    k: u32,
) -> u64 {
    let mut t = start_ns + m.first_token_delay(seq, prompt_tokens).as_nanos() as u64;
    for j in 1..=k {
        t += m.inter_token_delay(seq, j).as_nanos() as u64;
    }
    t
}

/// Fixed TTFT and inter-token time, optionally with uniform relative jitter, plus
/// an optional prefill cost per prompt token.
#[derive(Debug, Clone)]
pub struct FixedTiming {
    /// Base time to first token.
    pub ttft: Duration,
    /// Time between tokens.
    pub itl: Duration,
    /// Added to TTFT per prompt token.
    pub prefill_per_token: Duration,
    /// Relative jitter (0.1 = ±10%), drawn per request and token from `seed`.
    pub jitter: f64,
    /// Seed of the jitter.
    pub seed: u64,
}

impl FixedTiming {
    fn jittered(&self, base: Duration, seq: u64, k: u32) -> Duration {
        if self.jitter <= 0.0 {
            return base;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(
            self.seed ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (k as u64) << 40,
        );
        let f: f64 = rng.random_range(-self.jitter..=self.jitter);
        base.mul_f64((1.0 + f).max(0.0))
    }
}

impl TimingModel for FixedTiming {
    fn first_token_delay(&self, seq: u64, prompt_tokens: u32) -> Duration {
        self.jittered(self.ttft, seq, 0) + self.prefill_per_token * prompt_tokens
    }
    fn inter_token_delay(&self, seq: u64, k: u32) -> Duration {
        self.jittered(self.itl, seq, k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_timing_without_jitter_is_exact() {
        let t = FixedTiming {
            ttft: Duration::from_millis(50),
            itl: Duration::from_millis(20),
            prefill_per_token: Duration::from_micros(10),
            jitter: 0.0,
            seed: 0,
        };
        assert_eq!(t.first_token_delay(1, 100), Duration::from_millis(51));
        assert_eq!(t.inter_token_delay(1, 3), Duration::from_millis(20));
    }

    #[test]
    fn jitter_stays_in_bounds_and_is_deterministic() {
        let t = FixedTiming {
            ttft: Duration::from_millis(100),
            itl: Duration::from_millis(10),
            prefill_per_token: Duration::ZERO,
            jitter: 0.2,
            seed: 3,
        };
        for k in 1..200 {
            let d = t.inter_token_delay(7, k);
            assert!(d >= Duration::from_millis(8) && d <= Duration::from_millis(12));
            assert_eq!(d, t.inter_token_delay(7, k));
        }
    }
}
