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
    /// vLLM's `--ramp-up-strategy`: request i's gap is drawn at rate r_i, going from
    /// `from` (i = 0) to `to` (i = n − 1) linearly or exponentially in i; every
    /// request, the first included, gets a gap (vLLM ≥ 0.10).
    RampByIndex {
        /// Rate of the first request (req/s).
        from: f64,
        /// Rate of the last request.
        to: f64,
        /// Number of requests the ramp spans.
        n: u64,
        /// Linear or exponential in i.
        shape: Shape,
        /// Gamma shape of the gaps (1 = Poisson; infinite = evenly spaced).
        burstiness: f64,
        /// Random seed.
        seed: u64,
    },
    /// A rate that changes over time: pieces of linear or exponential ramps and
    /// steps. Send times follow the rate exactly (the k-th request at the time the
    /// integral of the rate reaches k) or, with a seed, as a Poisson-like process of
    /// that rate (unit gamma gaps mapped through the same integral).
    Profile(Arc<RateProfile>),
}

/// How a ramp's rate moves from its start to its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Equal additions.
    Linear,
    /// Equal ratios (needs a start above 0).
    Exponential,
}

impl Shape {
    /// Parses `linear` / `exponential`.
    pub fn parse(s: &str) -> Result<Shape, String> {
        match s {
            "linear" => Ok(Shape::Linear),
            "exponential" => Ok(Shape::Exponential),
            _ => Err(format!(
                "ramp shape must be \"linear\" or \"exponential\", got \"{s}\""
            )),
        }
    }

    /// The rate at fraction `p` (0..1) of the way from `a` to `b`.
    pub fn at(self, a: f64, b: f64, p: f64) -> f64 {
        match self {
            Shape::Linear => a + (b - a) * p,
            Shape::Exponential => a * (b / a).powf(p),
        }
    }

    /// `linear` or `exponential`.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Linear => "linear",
            Shape::Exponential => "exponential",
        }
    }
}

/// One piece of a rate profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    /// Length in seconds (the last piece may be infinite: the rate then holds).
    pub secs: f64,
    /// Rate at the start (req/s).
    pub from: f64,
    /// Rate at the end.
    pub to: f64,
    /// How it moves.
    pub shape: Shape,
}

impl Piece {
    fn k(&self) -> f64 {
        (self.to / self.from).ln() / self.secs
    }

    /// Requests the piece holds (the integral of its rate).
    fn count(&self) -> f64 {
        if self.secs.is_infinite() {
            return if self.from > 0.0 { f64::INFINITY } else { 0.0 };
        }
        match self.shape {
            _ if self.from == self.to => self.from * self.secs,
            Shape::Linear => self.secs * (self.from + self.to) / 2.0,
            Shape::Exponential => (self.to - self.from) / self.k(),
        }
    }

    /// The time into the piece at which its integral reaches `y`.
    fn time_of(&self, y: f64) -> f64 {
        if self.from == self.to || self.secs.is_infinite() {
            return y / self.from;
        }
        match self.shape {
            Shape::Linear => {
                let a = (self.to - self.from) / (2.0 * self.secs);
                (-self.from + (self.from * self.from + 4.0 * a * y).max(0.0).sqrt()) / (2.0 * a)
            }
            Shape::Exponential => {
                let k = self.k();
                (1.0 + y * k / self.from).ln() / k
            }
        }
    }
}

/// A rate over time, made of pieces; after the last piece no more requests come.
#[derive(Debug, Clone, PartialEq)]
pub struct RateProfile {
    /// The pieces, in order.
    pub pieces: Vec<Piece>,
    /// With a seed: gamma gaps of this shape (1 = Poisson); without: exact spacing.
    pub random: Option<(f64, u64)>,
}

impl RateProfile {
    /// The time at which the integral of the rate reaches `x` (`None`: never).
    pub fn time_of(&self, x: f64) -> Option<f64> {
        let (mut t, mut left) = (0.0, x);
        for p in &self.pieces {
            let c = p.count();
            // A request exactly at a piece's end belongs to the next piece.
            if c > 0.0 && left < c {
                return Some(t + p.time_of(left));
            }
            left -= c;
            t += p.secs;
        }
        None
    }

    /// The rate at time `t` (0 after the end).
    pub fn rate_at(&self, t: f64) -> f64 {
        let mut start = 0.0;
        for p in &self.pieces {
            if t < start + p.secs {
                let f = if p.secs.is_finite() {
                    (t - start) / p.secs
                } else {
                    0.0
                };
                return p.shape.at(p.from, p.to, f);
            }
            start += p.secs;
        }
        0.0
    }
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
            Arrival::RampByIndex {
                from,
                to,
                n,
                shape,
                burstiness,
                ..
            } => {
                if !(from.is_finite() && *from > 0.0 && to.is_finite() && *to > 0.0) {
                    return Err(format!(
                        "ramp rates must be numbers > 0, got start {from} and end {to}"
                    ));
                }
                if *n == 0 {
                    return Err("a ramp must span at least one request".into());
                }
                let _ = shape;
                if burstiness.is_nan() || *burstiness <= 0.0 {
                    return Err(format!("burstiness must be > 0, got {burstiness}"));
                }
            }
            Arrival::Profile(p) => {
                if p.pieces.is_empty() {
                    return Err("a rate profile needs at least one piece".into());
                }
                for (i, piece) in p.pieces.iter().enumerate() {
                    let bad = |what: &str| Err(format!("rate piece {}: {what}", i + 1));
                    if piece.secs.is_nan()
                        || piece.secs <= 0.0
                        || (piece.secs.is_infinite() && i + 1 < p.pieces.len())
                    {
                        return bad(&format!("duration must be > 0 seconds, got {}", piece.secs));
                    }
                    if !(piece.from >= 0.0
                        && piece.to >= 0.0
                        && piece.from.is_finite()
                        && piece.to.is_finite())
                    {
                        return bad(&format!(
                            "rates must be numbers >= 0, got {} and {}",
                            piece.from, piece.to
                        ));
                    }
                    if piece.shape == Shape::Exponential
                        && piece.from != piece.to
                        && (piece.from <= 0.0 || piece.to <= 0.0)
                    {
                        return bad("an exponential ramp needs rates above 0 at both ends");
                    }
                }
                if let Some((b, _)) = p.random {
                    if b.is_nan() || b <= 0.0 {
                        return Err(format!("burstiness must be > 0, got {b}"));
                    }
                }
                if p.pieces.iter().all(|x| x.count() == 0.0) {
                    return Err(
                        "the rate profile is zero everywhere: no request would be sent".into(),
                    );
                }
            }
            Arrival::Infinite => {}
        }
        Ok(())
    }

    /// The configured rate in requests per second (`None` = infinite, not a
    /// single rate, or no rate at all: send times a script gave; vLLM writes `inf`
    /// for a ramp).
    pub fn rate(&self) -> Option<f64> {
        match self {
            Arrival::Poisson { rate, .. } | Arrival::Constant { rate } => Some(*rate),
            _ => None,
        }
    }

    /// The burstiness factor reported with results (1.0 unless Poisson says otherwise).
    pub fn burstiness(&self) -> f64 {
        match self {
            Arrival::Poisson { burstiness, .. } | Arrival::RampByIndex { burstiness, .. } => {
                *burstiness
            }
            Arrival::Profile(p) => p.random.map_or(1.0, |r| r.0),
            _ => 1.0,
        }
    }

    /// How many requests this process can schedule (`None` = unbounded, or not
    /// known ahead for a random profile).
    pub fn limit(&self) -> Option<u64> {
        match self {
            Arrival::Times(t) => Some(t.len() as u64),
            Arrival::RampByIndex { n, .. } => Some(*n),
            Arrival::Profile(p) if p.random.is_none() => {
                let total: f64 = p.pieces.iter().map(|x| x.count()).sum();
                // Request k is due at the integral's k-th unit, for every k < total.
                total.is_finite().then(|| total.ceil() as u64)
            }
            _ => None,
        }
    }

    /// The highest rate the process reaches (`None` = infinite or unknown), for
    /// sizing the connections a run opens ahead.
    pub fn peak_rate(&self) -> Option<f64> {
        match self {
            Arrival::RampByIndex { from, to, .. } => Some(from.max(*to)),
            Arrival::Profile(p) => p.pieces.iter().map(|x| x.from.max(x.to)).reduce(f64::max),
            // Given send times: their mean rate.
            Arrival::Times(t) if t.len() > 1 && t[t.len() - 1] > t[0] => {
                Some((t.len() - 1) as f64 / (t[t.len() - 1] - t[0]))
            }
            other => other.rate(),
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
            Arrival::RampByIndex {
                from,
                to,
                n,
                shape,
                burstiness,
                seed,
            } => State::Ramp {
                rng: Box::new(ChaCha8Rng::seed_from_u64(*seed)),
                from: *from,
                to: *to,
                n: *n,
                shape: *shape,
                burstiness: *burstiness,
                i: 0,
                t: 0.0,
            },
            Arrival::Profile(p) => State::Profile {
                rng: p.random.map(|(b, seed)| {
                    (
                        Box::new(ChaCha8Rng::seed_from_u64(seed)),
                        Gamma::new(b, 1.0 / b).expect("validated"),
                    )
                }),
                p: p.clone(),
                x: 0.0,
                first: true,
            },
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
    Ramp {
        rng: Box<ChaCha8Rng>,
        from: f64,
        to: f64,
        n: u64,
        shape: Shape,
        burstiness: f64,
        i: u64,
        t: f64,
    },
    Profile {
        rng: Option<(Box<ChaCha8Rng>, Gamma<f64>)>,
        p: Arc<RateProfile>,
        x: f64,
        first: bool,
    },
}

/// A gap at `rate` with gamma shape `burstiness` (infinite: exactly 1/rate).
fn gamma_gap(rng: &mut ChaCha8Rng, rate: f64, burstiness: f64) -> f64 {
    if burstiness.is_infinite() {
        return 1.0 / rate;
    }
    Gamma::new(burstiness, 1.0 / (rate * burstiness))
        .map(|g| g.sample(rng))
        .unwrap_or(1.0 / rate)
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
            State::Ramp {
                rng,
                from,
                to,
                n,
                shape,
                burstiness,
                i,
                t,
            } => {
                if *i >= *n {
                    return None;
                }
                let p = *i as f64 / (n.saturating_sub(1).max(1)) as f64;
                *t += gamma_gap(rng, shape.at(*from, *to, p), *burstiness);
                *i += 1;
                Some(*t)
            }
            State::Profile { rng, p, x, first } => {
                if *first {
                    *first = false;
                } else {
                    *x += match rng {
                        Some((r, g)) => g.sample(r.as_mut()),
                        None => 1.0,
                    };
                }
                p.time_of(*x)
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

    fn det(pieces: Vec<Piece>) -> Arrival {
        Arrival::Profile(Arc::new(RateProfile {
            pieces,
            random: None,
        }))
    }

    #[test]
    fn linear_ramp_follows_the_integral_of_its_rate() {
        // 0 -> 100 req/s over 10 s: by time t, 5·t² requests.
        let a = det(vec![Piece {
            secs: 10.0,
            from: 0.0,
            to: 100.0,
            shape: Shape::Linear,
        }]);
        a.validate().unwrap();
        let t: Vec<f64> = a.iter().collect();
        assert_eq!(
            t.len(),
            500,
            "requests 0..500 fit in the ramp (500 would be at its end)"
        );
        for (k, v) in t.iter().enumerate() {
            assert!((v - (k as f64 / 5.0).sqrt()).abs() < 1e-9, "k={k}: {v}");
        }
    }

    #[test]
    fn exponential_ramp_and_steps() {
        // 1 -> 100 req/s over 10 s: Λ(t) = (e^{kt} − 1)/k, k = ln(100)/10.
        let a = det(vec![Piece {
            secs: 10.0,
            from: 1.0,
            to: 100.0,
            shape: Shape::Exponential,
        }]);
        let k = 100f64.ln() / 10.0;
        let t: Vec<f64> = a.iter().collect();
        assert_eq!(t.len() as f64, (99.0 / k).floor() + 1.0);
        assert!((t[100] - (1.0 + 100.0 * k).ln() / k).abs() < 1e-9);
        // Steps: 10 req/s for 1 s, a pause, 20 req/s for 1 s.
        let steps = det(vec![
            Piece {
                secs: 1.0,
                from: 10.0,
                to: 10.0,
                shape: Shape::Linear,
            },
            Piece {
                secs: 1.0,
                from: 0.0,
                to: 0.0,
                shape: Shape::Linear,
            },
            Piece {
                secs: 1.0,
                from: 20.0,
                to: 20.0,
                shape: Shape::Linear,
            },
        ]);
        let t: Vec<f64> = steps.iter().collect();
        assert_eq!(t.iter().filter(|x| **x < 1.0).count(), 10);
        assert_eq!(t.iter().filter(|x| (1.0..2.0).contains(*x)).count(), 0);
        assert_eq!(t.iter().filter(|x| **x >= 2.0).count(), 20);
        assert_eq!(t[10], 2.0, "the 11th request waits for the pause to end");
        // A leading pause: the first request comes when the rate starts.
        let later = det(vec![
            Piece {
                secs: 2.0,
                from: 0.0,
                to: 0.0,
                shape: Shape::Linear,
            },
            Piece {
                secs: f64::INFINITY,
                from: 4.0,
                to: 4.0,
                shape: Shape::Linear,
            },
        ]);
        assert_eq!(later.iter().take(2).collect::<Vec<_>>(), vec![2.0, 2.25]);
        assert!(
            det(vec![Piece {
                secs: 1.0,
                from: 0.0,
                to: 5.0,
                shape: Shape::Exponential
            }])
            .validate()
            .unwrap_err()
            .contains("above 0")
        );
    }

    #[test]
    fn random_profile_keeps_the_mean_rate() {
        let a = Arrival::Profile(Arc::new(RateProfile {
            pieces: vec![Piece {
                secs: f64::INFINITY,
                from: 50.0,
                to: 50.0,
                shape: Shape::Linear,
            }],
            random: Some((1.0, 3)),
        }));
        let t: Vec<f64> = a.iter().take(20_001).collect();
        let mean = t[20_000] / 20_000.0;
        assert!((mean - 0.02).abs() < 0.0006, "{mean}");
    }

    #[test]
    fn vllm_ramp_by_index() {
        let a = Arrival::RampByIndex {
            from: 10.0,
            to: 100.0,
            n: 1000,
            shape: Shape::Linear,
            burstiness: f64::INFINITY,
            seed: 0,
        };
        a.validate().unwrap();
        let t: Vec<f64> = a.iter().collect();
        assert_eq!(t.len(), 1000);
        assert!(
            (t[0] - 0.1).abs() < 1e-12,
            "the first request gets a gap too"
        );
        let want: f64 = (0..1000)
            .map(|i| 1.0 / (10.0 + 90.0 * i as f64 / 999.0))
            .sum();
        assert!((t[999] - want).abs() < 1e-9);
    }
}
