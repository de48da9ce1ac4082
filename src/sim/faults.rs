//! Fault injection: ways the simulator can misbehave, chosen per request by a body
//! field `"moonbench_fault": "<name>"`, an `x-moonbench-fault` header, or at random
//! with configured rates.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer HTTP 500 with an error body.
    Http500,
    /// Answer HTTP 429 (rate limited).
    Http429,
    /// Send a few chunks, then reset the connection.
    Reset,
    /// Send a chunk whose data is not valid JSON.
    Malformed,
    /// Send a chunk with bytes that are not UTF-8.
    NonUtf8,
    /// Send a few chunks, then an error object inside the stream.
    ErrorEvent,
    /// Send a few chunks, then nothing more (the client's timeout must fire).
    Stall,
}

/// Every fault with its name.
pub const FAULTS: &[(&str, Fault)] = &[
    ("http500", Fault::Http500),
    ("http429", Fault::Http429),
    ("reset", Fault::Reset),
    ("malformed", Fault::Malformed),
    ("non_utf8", Fault::NonUtf8),
    ("error_event", Fault::ErrorEvent),
    ("stall", Fault::Stall),
];

impl Fault {
    /// Parses a fault name; an unknown name lists the valid ones.
    pub fn parse(s: &str) -> Result<Fault, String> {
        FAULTS
            .iter()
            .find(|(n, _)| *n == s)
            .map(|(_, f)| *f)
            .ok_or_else(|| {
                let names: Vec<&str> = FAULTS.iter().map(|f| f.0).collect();
                format!("unknown fault '{s}'; valid faults: {}", names.join(", "))
            })
    }
}

/// Random faults: each with a probability per request.
#[derive(Debug, Clone, Default)]
pub struct FaultRates {
    /// `(fault, probability)` pairs.
    pub rates: Vec<(Fault, f64)>,
}

impl FaultRates {
    /// Parses `name=prob,name=prob`.
    pub fn parse(s: &str) -> Result<FaultRates, String> {
        let mut rates = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (n, p) = part.split_once('=').ok_or_else(|| {
                format!("fault rate '{part}' must be NAME=PROBABILITY, e.g. reset=0.01")
            })?;
            let p: f64 = p
                .parse()
                .map_err(|_| format!("fault rate '{part}': '{p}' is not a probability"))?;
            if !(0.0..=1.0).contains(&p) {
                return Err(format!(
                    "fault rate '{part}': the probability must be within 0..1"
                ));
            }
            rates.push((Fault::parse(n)?, p));
        }
        Ok(FaultRates { rates })
    }

    /// Picks the fault (if any) for request `seq`, deterministically from `seed`.
    pub fn pick(&self, seed: u64, seq: u64) -> Option<Fault> {
        if self.rates.is_empty() {
            return None;
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ seq.wrapping_mul(0xA24B_AED4_963E_E407));
        let x: f64 = rng.random();
        let mut acc = 0.0;
        for (f, p) in &self.rates {
            acc += p;
            if x < acc {
                return Some(*f);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_pick() {
        let r = FaultRates::parse("reset=0.5, http500=0.5").unwrap();
        let picks: Vec<_> = (0..1000).filter_map(|i| r.pick(1, i)).collect();
        assert_eq!(picks.len(), 1000);
        let resets = picks.iter().filter(|f| **f == Fault::Reset).count();
        assert!((400..600).contains(&resets), "{resets}");
        assert!(
            FaultRates::parse("nope=0.1")
                .unwrap_err()
                .contains("valid faults")
        );
        assert!(FaultRates::parse("reset=2").is_err());
    }
}
