//! Arrival processes: when each request of an open-loop run should be sent.
//! Each yields send times in seconds from the start of the run.

use std::sync::Arc;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Gamma};

/// An arrival process.
#[derive(Debug, Clone, PartialEq)]
pub enum Arrival {
    /// Every request at time 0 (vLLM's `--request-rate inf`).
    Infinite,
    /// Gamma-distributed gaps with mean 1/rate, as vLLM: shape = burstiness,
    /// scale = 1/(rate·burstiness). Burstiness 1 is a Poisson process; below 1
    /// burstier, above 1 more even. The first request goes at time 0.
    Poisson {
        /// Mean requests per second.
        rate: f64,
        /// Gamma shape.
        burstiness: f64,
        /// Random seed (same seed, same times).
        seed: u64,
    },
    /// Evenly spaced: request i at i/rate.
    Constant {
        /// Requests per second.
        rate: f64,
    },
    /// Explicit send times in seconds (non-decreasing), e.g. from a Lua function.
    Times(Arc<Vec<f64>>),
}

impl Arrival {
    /// Checks the parameters, with a message that names the bad one.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Arrival::Poisson {
                rate, burstiness, ..
            } => {
                if rate.is_nan() || *rate <= 0.0 {
                    return Err(format!("request rate must be > 0 (or inf), got {rate}"));
                }
                if !burstiness.is_finite() || *burstiness <= 0.0 {
                    return Err(format!(
                        "burstiness must be a positive number, got {burstiness}"
                    ));
                }
            }
            Arrival::Constant { rate } => {
                if rate.is_nan() || *rate <= 0.0 {
                    return Err(format!("constant rate must be > 0, got {rate}"));
                }
            }
            Arrival::Times(t) => {
                for (i, w) in t.windows(2).enumerate() {
                    if w[1] < w[0] {
                        return Err(format!(
                            "arrival times must not decrease: time {} ({}) comes before time {} ({})",
                            i + 2,
                            w[1],
                            i + 1,
                            w[0]
                        ));
                    }
                }
                if let Some(bad) = t.iter().position(|v| !(v.is_finite() && *v >= 0.0)) {
                    return Err(format!(
                        "arrival time {} is {}, it must be a number >= 0",
                        bad + 1,
                        t[bad]
                    ));
                }
            }
            Arrival::Infinite => {}
        }
        Ok(())
    }

    /// The nominal rate in requests per second (`None` = infinite / not a rate).
    pub fn rate(&self) -> Option<f64> {
        match self {
            Arrival::Poisson { rate, .. } | Arrival::Constant { rate } => Some(*rate),
            Arrival::Times(t) if t.len() > 1 && t[t.len() - 1] > t[0] => {
                Some((t.len() - 1) as f64 / (t[t.len() - 1] - t[0]))
            }
            _ => None,
        }
    }

    /// The burstiness factor reported with results (1.0 unless Poisson says otherwise).
    pub fn burstiness(&self) -> f64 {
        match self {
            Arrival::Poisson { burstiness, .. } => *burstiness,
            _ => 1.0,
        }
    }

    /// How many requests this process can schedule (`None` = unbounded).
    pub fn limit(&self) -> Option<u64> {
        match self {
            Arrival::Times(t) => Some(t.len() as u64),
            _ => None,
        }
    }

    /// The send times, lazily.
    pub fn iter(&self) -> ScheduleIter {
        let state = match self {
            Arrival::Infinite => State::Infinite,
            Arrival::Constant { rate } => State::Constant { rate: *rate, i: 0 },
            Arrival::Poisson {
                rate,
                burstiness,
                seed,
            } => State::Gamma {
                rng: Box::new(ChaCha8Rng::seed_from_u64(*seed)),
                dist: Gamma::new(*burstiness, 1.0 / (rate * burstiness)).expect("validated"),
                t: 0.0,
                first: true,
            },
            Arrival::Times(t) => State::Times { t: t.clone(), i: 0 },
        };
        ScheduleIter { state }
    }
}

enum State {
    Infinite,
    Constant {
        rate: f64,
        i: u64,
    },
    Gamma {
        rng: Box<ChaCha8Rng>,
        dist: Gamma<f64>,
        t: f64,
        first: bool,
    },
    Times {
        t: Arc<Vec<f64>>,
        i: usize,
    },
}

/// Iterator over send times (seconds from the run start).
pub struct ScheduleIter {
    state: State,
}

impl Iterator for ScheduleIter {
    type Item = f64;
    fn next(&mut self) -> Option<f64> {
        match &mut self.state {
            State::Infinite => Some(0.0),
            State::Constant { rate, i } => {
                let v = *i as f64 / *rate;
                *i += 1;
                Some(v)
            }
            State::Gamma {
                rng,
                dist,
                t,
                first,
            } => {
                if *first {
                    *first = false;
                } else {
                    *t += dist.sample(rng.as_mut());
                }
                Some(*t)
            }
            State::Times { t, i } => {
                let v = t.get(*i).copied();
                *i += 1;
                v
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_mean_and_variation_follow_the_formula() {
        for (burst, cv_want) in [(1.0, 1.0), (0.25, 2.0), (4.0, 0.5)] {
            let a = Arrival::Poisson {
                rate: 50.0,
                burstiness: burst,
                seed: 7,
            };
            a.validate().unwrap();
            let times: Vec<f64> = a.iter().take(40_001).collect();
            assert_eq!(times[0], 0.0, "first request at t=0 as vLLM");
            let gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
            let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
            let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
            let cv = var.sqrt() / mean;
            assert!(
                (mean - 0.02).abs() < 0.02 * 0.03,
                "burst {burst}: mean gap {mean}"
            );
            // Gamma(k): coefficient of variation = 1/sqrt(k)
            assert!(
                (cv - cv_want).abs() < cv_want * 0.05,
                "burst {burst}: cv {cv}"
            );
        }
    }

    #[test]
    fn same_seed_same_times() {
        let a = Arrival::Poisson {
            rate: 3.0,
            burstiness: 1.0,
            seed: 1,
        };
        let x: Vec<f64> = a.iter().take(10).collect();
        let y: Vec<f64> = a.iter().take(10).collect();
        assert_eq!(x, y);
        let b = Arrival::Poisson {
            rate: 3.0,
            burstiness: 1.0,
            seed: 2,
        };
        assert_ne!(x, b.iter().take(10).collect::<Vec<_>>());
    }

    #[test]
    fn constant_and_times() {
        let c: Vec<f64> = Arrival::Constant { rate: 4.0 }.iter().take(3).collect();
        assert_eq!(c, vec![0.0, 0.25, 0.5]);
        let t = Arrival::Times(Arc::new(vec![0.0, 1.0, 0.5]));
        assert!(t.validate().unwrap_err().contains("must not decrease"));
        assert_eq!(Arrival::Times(Arc::new(vec![0.0, 2.0])).iter().count(), 2);
        assert!(
            Arrival::Poisson {
                rate: 0.0,
                burstiness: 1.0,
                seed: 0
            }
            .validate()
            .is_err()
        );
    }
}
