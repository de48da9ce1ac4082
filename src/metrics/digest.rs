//! A run's summary in memory that does not grow with its requests (`--bounded`):
//! each finished record is folded into a [`Digest`] — the summary's [`Totals`], an
//! HDR histogram with exact count, mean, deviation, min and max per [`Metric`],
//! output tokens and request starts/ends per millisecond, and the client-health
//! evidence ([`EvidenceAcc`], which health also uses for kept records) — and then
//! dropped (the records file keeps it).
//!
//! Statistics from a digest: counts, sums, throughputs, means, standard
//! deviations, minimums and maximums are exact; percentiles come from the
//! histograms ([`SIGNIFICANT_DIGITS`] digits: within 0.1% of the value, by nearest
//! rank instead of numpy's interpolation); the peak output tokens per second and
//! the peak in flight are counted in [`BUCKET_MS`] buckets. A digest serializes to
//! JSON (the histograms in HDR's V2 deflate format) and digests of shards add up.

use base64::Engine;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde_json::{Value, json};

use super::record::RequestRecord;
use super::stats::Stats;
use super::stats::micros_histogram;
use super::summary::{Metric, Slo, Summary, SummaryOptions, Totals};

/// What the records say about the client's own timing.
pub struct RecordEvidence {
    /// Token-bearing chunks that came in the same read as the one before.
    pub collapsed: u64,
    /// Gaps between chunks, all told.
    pub gaps: u64,
    /// Mean ITL (ms), robust to collapsed reads.
    pub median_itl_ms: Option<f64>,
    /// Median TTFT (ms).
    pub median_ttft_ms: Option<f64>,
    /// Mean gap between scheduled sends (ms), 0 when all were due at once.
    pub mean_interval_ms: f64,
    /// Dispatch to send start, 99th percentile (ms): how late the I/O runtime
    /// picked up requests the dispatcher had released.
    pub pickup_p99_ms: f64,
}

/// [`RecordEvidence`] gathered one record at a time, in memory that does not grow
/// with the run (µs histograms, sums and counts), so a run that keeps no records
/// (a [`Digest`]) has the same evidence.
#[derive(Debug, Clone)]
pub struct EvidenceAcc {
    collapsed: u64,
    gaps: u64,
    itl_sum_ms: f64,
    itl_n: u64,
    ttft_us: Histogram<u64>,
    pickup_us: Histogram<u64>,
    sched: Option<(u64, u64)>,
    sched_n: u64,
}

impl Default for EvidenceAcc {
    fn default() -> Self {
        EvidenceAcc {
            collapsed: 0,
            gaps: 0,
            itl_sum_ms: 0.0,
            itl_n: 0,
            ttft_us: micros_histogram(),
            pickup_us: micros_histogram(),
            sched: None,
            sched_n: 0,
        }
    }
}

impl EvidenceAcc {
    /// Adds one record (warm-ups are ignored).
    pub fn add(&mut self, r: &RequestRecord) {
        if r.warmup {
            return;
        }
        self.sched_n += 1;
        self.sched = Some(match self.sched {
            None => (r.scheduled_ns, r.scheduled_ns),
            Some((lo, hi)) => (lo.min(r.scheduled_ns), hi.max(r.scheduled_ns)),
        });
        let _ = self
            .pickup_us
            .record((r.sent_ns.saturating_sub(r.dispatched_ns) / 1000).max(1));
        if !r.success() {
            return;
        }
        if let Some(t) = r.ttft() {
            let _ = self.ttft_us.record(((t * 1e6) as u64).max(1));
        }
        if r.streamed {
            for gap in r.chunk_gap_iter() {
                self.gaps += 1;
                if gap == 0.0 {
                    self.collapsed += 1;
                }
            }
            for x in r.itl_iter() {
                self.itl_n += 1;
                self.itl_sum_ms += x * 1e3;
            }
        }
    }

    /// The evidence so far.
    pub fn evidence(&self) -> RecordEvidence {
        let q = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
        RecordEvidence {
            collapsed: self.collapsed,
            gaps: self.gaps,
            // The mean, not the median: reads that batched events collapse many gaps
            // to zero and pull the median there, while the mean (decode time over
            // tokens) is unchanged by how the gaps were read.
            median_itl_ms: (self.itl_n >= 10).then(|| self.itl_sum_ms / self.itl_n as f64),
            median_ttft_ms: (!self.ttft_us.is_empty()).then(|| q(&self.ttft_us, 0.5)),
            mean_interval_ms: match self.sched {
                Some((lo, hi)) if self.sched_n >= 2 => {
                    (hi - lo) as f64 / 1e6 / (self.sched_n - 1) as f64
                }
                _ => 0.0,
            },
            pickup_p99_ms: if self.pickup_us.is_empty() {
                0.0
            } else {
                q(&self.pickup_us, 0.99)
            },
        }
    }
}

/// Significant decimal digits of every histogram.
pub const SIGNIFICANT_DIGITS: u8 = 3;
/// Width of the time buckets behind the peak throughput and peak in flight (ms).
pub const BUCKET_MS: u64 = 1;
/// The name of the serialized format.
pub const FORMAT: &str = "moonbench-digest-1";

/// One metric's values: a histogram of nanoseconds, and the exact moments (ms).
#[derive(Debug, Clone)]
pub struct MetricDigest {
    hist: Histogram<u64>,
    n: u64,
    mean: f64,
    m2: f64,
    min: f64,
    max: f64,
}

impl Default for MetricDigest {
    fn default() -> Self {
        MetricDigest {
            hist: Histogram::new(SIGNIFICANT_DIGITS).expect("valid precision"),
            n: 0,
            mean: 0.0,
            m2: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }
}

impl MetricDigest {
    /// Adds one value in milliseconds.
    pub fn add(&mut self, ms: f64) {
        self.n += 1;
        let d = ms - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (ms - self.mean);
        self.min = self.min.min(ms);
        self.max = self.max.max(ms);
        let _ = self.hist.record((ms.max(0.0) * 1e6).round() as u64);
    }

    /// Adds another part's values (Chan's formula for the moments).
    pub fn merge(&mut self, o: &MetricDigest) {
        if o.n == 0 {
            return;
        }
        let n = self.n + o.n;
        let d = o.mean - self.mean;
        self.mean += d * o.n as f64 / n as f64;
        self.m2 += o.m2 + d * d * self.n as f64 * o.n as f64 / n as f64;
        self.n = n;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        let _ = self.hist.add(&o.hist);
    }

    /// The statistics with percentiles `ps` (0–100), in ms; percentiles within
    /// the histogram's precision and never outside [min, max].
    pub fn stats(&self, ps: &[f64]) -> Stats {
        if self.n == 0 {
            return Stats {
                percentiles: ps.iter().map(|&p| (p, 0.0)).collect(),
                ..Default::default()
            };
        }
        let at = |p: f64| {
            let v = self.hist.value_at_quantile((p / 100.0).clamp(0.0, 1.0)) as f64 / 1e6;
            v.clamp(self.min, self.max)
        };
        Stats {
            count: self.n as usize,
            mean: self.mean,
            median: at(50.0),
            std: (self.m2 / self.n as f64).max(0.0).sqrt(),
            min: self.min,
            max: self.max,
            percentiles: ps.iter().map(|&p| (p, at(p))).collect(),
        }
    }

    fn to_json(&self) -> Value {
        let mut buf = Vec::new();
        let _ = V2DeflateSerializer::new().serialize(&self.hist, &mut buf);
        json!({"n": self.n, "mean_ms": self.mean, "m2": self.m2,
               "min_ms": if self.n > 0 { self.min } else { 0.0 },
               "max_ms": if self.n > 0 { self.max } else { 0.0 },
               "hdr_v2_deflate": base64::engine::general_purpose::STANDARD.encode(buf)})
    }

    fn from_json(v: &Value, what: &str) -> Result<MetricDigest, String> {
        let num = |k: &str| {
            v[k].as_f64()
                .ok_or_else(|| format!("{what}: `{k}` is missing or not a number"))
        };
        let b64 = v["hdr_v2_deflate"]
            .as_str()
            .ok_or_else(|| format!("{what}: `hdr_v2_deflate` is missing"))?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("{what}: `hdr_v2_deflate` is not base64 ({e})"))?;
        let hist: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| format!("{what}: the histogram cannot be read ({e:?})"))?;
        let n = num("n")? as u64;
        Ok(MetricDigest {
            hist,
            n,
            mean: num("mean_ms")?,
            m2: num("m2")?,
            min: if n > 0 { num("min_ms")? } else { f64::INFINITY },
            max: if n > 0 {
                num("max_ms")?
            } else {
                f64::NEG_INFINITY
            },
        })
    }
}

/// Everything a summary needs from a run's records, without the records.
#[derive(Debug, Clone)]
pub struct Digest {
    /// The run's start (ns, the process clock): bucket 0 starts here.
    pub t0_ns: u64,
    /// The objectives goodput was counted against.
    pub slo: Slo,
    /// Counts and sums.
    pub totals: Totals,
    /// Per metric, except those with another's values ([`Metric::same_values_as`]).
    metrics: Vec<(Metric, MetricDigest)>,
    /// Output tokens arriving in each bucket.
    tokens: Vec<u32>,
    /// Measured requests sent / ended in each bucket.
    starts: Vec<u32>,
    ends: Vec<u32>,
    /// Client-health evidence.
    pub evidence: EvidenceAcc,
    /// The last end of a measured request (ns).
    pub last_end_ns: u64,
}

fn bump(v: &mut Vec<u32>, i: usize, by: u32) {
    if v.len() <= i {
        v.resize(i + 1, 0);
    }
    v[i] += by;
}

impl Digest {
    /// An empty digest of a run starting at `t0_ns`, counting goodput against `slo`.
    pub fn new(t0_ns: u64, slo: Slo) -> Digest {
        Digest {
            t0_ns,
            slo,
            totals: Totals::default(),
            metrics: Metric::ALL
                .iter()
                .filter(|m| m.same_values_as().is_none())
                .map(|&m| (m, MetricDigest::default()))
                .collect(),
            tokens: Vec::new(),
            starts: Vec::new(),
            ends: Vec::new(),
            evidence: EvidenceAcc::default(),
            last_end_ns: t0_ns,
        }
    }

    fn bucket(&self, ns: u64) -> usize {
        (ns.saturating_sub(self.t0_ns) / (BUCKET_MS * 1_000_000)) as usize
    }

    /// Folds in one record (warm-ups are ignored).
    pub fn add(&mut self, r: &RequestRecord) {
        if r.warmup {
            return;
        }
        self.totals.add(r, &self.slo);
        self.evidence.add(r);
        self.last_end_ns = self.last_end_ns.max(r.end_ns);
        let (s, e) = (self.bucket(r.sent_ns), self.bucket(r.end_ns.max(r.sent_ns)));
        bump(&mut self.starts, s, 1);
        bump(&mut self.ends, e, 1);
        if !r.success() {
            return;
        }
        let one = [r];
        for (m, d) in &mut self.metrics {
            for v in m.walk(&one) {
                d.add(v * 1000.0);
            }
        }
        for (t, n) in r.chunks.iter() {
            let b = self.bucket(t);
            bump(&mut self.tokens, b, n);
        }
    }

    /// Adds another shard's digest; `offset_ns` moves its clock onto this one's
    /// (its t0 minus this t0, on a common clock).
    pub fn merge(&mut self, o: &Digest, offset_ns: i64) {
        self.totals.merge(&o.totals);
        for ((_, d), (_, od)) in self.metrics.iter_mut().zip(&o.metrics) {
            d.merge(od);
        }
        let shift = offset_ns / (BUCKET_MS * 1_000_000) as i64;
        let add = |to: &mut Vec<u32>, from: &[u32]| {
            for (i, &n) in from.iter().enumerate() {
                if n > 0 {
                    bump(to, (i as i64 + shift).max(0) as usize, n);
                }
            }
        };
        add(&mut self.tokens, &o.tokens);
        add(&mut self.starts, &o.starts);
        add(&mut self.ends, &o.ends);
    }

    /// The summary of a run of `duration` seconds. Goodput needs the objectives
    /// the digest counted against (`None` for others); the steady state needs the
    /// records (an explanation instead).
    pub fn summary(&self, duration: f64, opts: &SummaryOptions) -> Summary {
        let slo_ok = opts.slo == self.slo && opts.slo.is_set();
        let mut s = self.totals.summary(duration, opts, slo_ok);
        for m in Metric::ALL {
            let stats = match m.same_values_as() {
                Some(src) => s.stat(src).clone(),
                None => self
                    .metrics
                    .iter()
                    .find(|(k, _)| *k == m)
                    .map(|(_, d)| d.stats(&opts.percentiles))
                    .unwrap_or_default(),
            };
            s.stats.push((m, stats));
        }
        // The most tokens in any window of one second (1,000 / BUCKET_MS buckets).
        let w = (1000 / BUCKET_MS) as usize;
        let (mut sum, mut best) = (0u64, 0u64);
        for i in 0..self.tokens.len() {
            sum += self.tokens[i] as u64;
            if i >= w {
                sum -= self.tokens[i - w] as u64;
            }
            best = best.max(sum);
        }
        s.max_output_tokens_per_s = (best as f64).max(s.output_throughput);
        // Ends before starts within a bucket, as for equal instants with records.
        let (mut cur, mut peak) = (0i64, 0i64);
        for i in 0..self.starts.len().max(self.ends.len()) {
            cur -= *self.ends.get(i).unwrap_or(&0) as i64;
            cur += *self.starts.get(i).unwrap_or(&0) as i64;
            peak = peak.max(cur);
        }
        s.peak_in_flight = peak as u64;
        s.max_concurrent_requests = s.peak_in_flight;
        if opts.steady_state {
            s.steady = Some(Err(
                "the steady state needs every request's record, and this run kept none in memory (--bounded); the records file has them".into(),
            ));
        }
        s.precision = Some(precision_note());
        s
    }

    /// The digest as JSON (see the module docs).
    pub fn to_json(&self) -> Value {
        let runs = |v: &[u32]| -> Value {
            // Non-empty buckets as [first bucket, counts…] runs.
            let mut out: Vec<Value> = Vec::new();
            let mut i = 0;
            while i < v.len() {
                if v[i] == 0 {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < v.len() && v[i] != 0 {
                    i += 1;
                }
                out.push(json!([start, v[start..i].to_vec()]));
            }
            json!(out)
        };
        let metrics: serde_json::Map<String, Value> = self
            .metrics
            .iter()
            .map(|(m, d)| (m.key().to_string(), d.to_json()))
            .collect();
        json!({
            "format": FORMAT,
            "significant_digits": SIGNIFICANT_DIGITS,
            "bucket_ms": BUCKET_MS,
            "t0_ns": self.t0_ns,
            "slo": {"ttft_ms": self.slo.ttft_ms, "tpot_ms": self.slo.tpot_ms, "e2el_ms": self.slo.e2el_ms},
            "totals": serde_json::to_value(&self.totals).unwrap_or(Value::Null),
            "metrics": metrics,
            "output_tokens": runs(&self.tokens),
            "starts": runs(&self.starts),
            "ends": runs(&self.ends),
        })
    }

    /// Reads [`Digest::to_json`]'s output; `what` names it in errors (a file).
    /// The client-health evidence is not serialized and comes back empty.
    pub fn from_json(v: &Value, what: &str) -> Result<Digest, String> {
        if v["format"] != FORMAT {
            return Err(format!(
                "{what}: not a moonbench digest (format {}; this moonbench reads {FORMAT})",
                v["format"]
            ));
        }
        if v["significant_digits"] != json!(SIGNIFICANT_DIGITS)
            || v["bucket_ms"] != json!(BUCKET_MS)
        {
            return Err(format!(
                "{what}: a digest of another precision (significant_digits {}, bucket_ms {})",
                v["significant_digits"], v["bucket_ms"]
            ));
        }
        let slo = Slo {
            ttft_ms: v["slo"]["ttft_ms"].as_f64(),
            tpot_ms: v["slo"]["tpot_ms"].as_f64(),
            e2el_ms: v["slo"]["e2el_ms"].as_f64(),
        };
        let mut d = Digest::new(v["t0_ns"].as_u64().unwrap_or(0), slo);
        d.totals = serde_json::from_value(v["totals"].clone())
            .map_err(|e| format!("{what}: `totals`: {e}"))?;
        for (m, md) in &mut d.metrics {
            let j = &v["metrics"][m.key()];
            if j.is_null() {
                return Err(format!("{what}: no `metrics.{}`", m.key()));
            }
            *md = MetricDigest::from_json(j, &format!("{what}: metrics.{}", m.key()))?;
        }
        let unruns = |k: &str| -> Result<Vec<u32>, String> {
            let mut out = Vec::new();
            for run in v[k].as_array().map_or(&[][..], |a| a) {
                let start = run[0]
                    .as_u64()
                    .ok_or_else(|| format!("{what}: `{k}` has a run without a start"))?
                    as usize;
                for (j, n) in run[1].as_array().map_or(&[][..], |a| a).iter().enumerate() {
                    bump(&mut out, start + j, n.as_u64().unwrap_or(0) as u32);
                }
            }
            Ok(out)
        };
        d.tokens = unruns("output_tokens")?;
        d.starts = unruns("starts")?;
        d.ends = unruns("ends")?;
        Ok(d)
    }
}

/// How a digest's numbers were made, for the result file and the report.
pub fn precision_note() -> String {
    format!(
        "bounded: percentiles from HDR histograms with {SIGNIFICANT_DIGITS} significant digits (within 0.1%, nearest rank); means, deviations, minimums, maximums and counts exact; peak throughput and peak in flight in {BUCKET_MS} ms buckets"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::summarize;

    const MS: u64 = 1_000_000;

    fn rec(i: u64, sent: u64, ttft: u64, itl: u64, tokens: u32) -> RequestRecord {
        let chunk_ns: Vec<u64> = (0..tokens as u64).map(|k| sent + ttft + k * itl).collect();
        RequestRecord {
            index: i,
            scheduled_ns: sent,
            dispatched_ns: sent,
            sent_ns: sent,
            end_ns: *chunk_ns.last().unwrap(),
            chunks: crate::metrics::Chunks::from_lists(&chunk_ns, &vec![1; chunk_ns.len()]),
            streamed: true,
            prompt_tokens: 10 + (i % 7) as u32,
            output_tokens: tokens,
            status: 200,
            ..Default::default()
        }
    }

    /// A varied run: the digest's summary equals the exact one where it claims to
    /// be exact, and is within its stated precision where it is not.
    #[test]
    fn digest_summary_matches_the_exact_one_within_its_precision() {
        let mut recs = Vec::new();
        let mut x = 12345u64;
        for i in 0..3000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let ttft = 20 * MS + (x >> 40) % (400 * MS);
            let itl = 5 * MS + (x >> 20) % (30 * MS);
            let mut r = rec(i, i * 7 * MS, ttft, itl, 2 + (i % 40) as u32);
            if i % 97 == 0 {
                r.status = 500;
                r.error = Some(crate::metrics::RequestError::new(
                    crate::metrics::ErrorKind::Http,
                    "boom",
                ));
            }
            recs.push(r);
        }
        let slo = Slo {
            ttft_ms: Some(200.0),
            ..Default::default()
        };
        let opts = SummaryOptions {
            percentiles: vec![50.0, 90.0, 99.0, 99.9],
            slo: slo.clone(),
            ..Default::default()
        };
        let mut d = Digest::new(0, slo);
        for r in &recs {
            d.add(r);
        }
        let exact = summarize(&recs, 30.0, &opts);
        let got = d.summary(30.0, &opts);
        assert_eq!(got.completed, exact.completed);
        assert_eq!(got.failed, exact.failed);
        assert_eq!(got.total_output_tokens, exact.total_output_tokens);
        assert_eq!(got.request_goodput, exact.request_goodput);
        assert_eq!(got.achieved_rate, exact.achieved_rate);
        for m in Metric::ALL {
            let (a, b) = (exact.stat(m), got.stat(m));
            assert_eq!(a.count, b.count, "{m:?}");
            let close = |x: f64, y: f64, rel: f64| (x - y).abs() <= rel * x.abs().max(1e-9);
            assert!(
                close(a.mean, b.mean, 1e-9),
                "{m:?} mean {} {}",
                a.mean,
                b.mean
            );
            assert!(close(a.std, b.std, 1e-6), "{m:?} std {} {}", a.std, b.std);
            assert_eq!((a.min, a.max), (b.min, b.max), "{m:?}");
            let ok: Vec<&RequestRecord> = recs.iter().filter(|r| r.success()).collect();
            let mut sorted: Vec<f64> = m.values(&ok).iter().map(|v| v * 1000.0).collect();
            sorted.sort_by(f64::total_cmp);
            if sorted.is_empty() {
                assert_eq!(a.percentiles, b.percentiles, "{m:?}: no values, zeros");
                continue;
            }
            for ((p, x), (_, y)) in a.percentiles.iter().zip(&b.percentiles) {
                // Between the order statistics around the exact rank (nearest rank
                // vs numpy's interpolation), give or take 0.1% of the value.
                let r = p / 100.0 * (sorted.len() - 1) as f64;
                let lo = sorted[(r.floor() as usize).saturating_sub(1)];
                let hi = sorted[(r.ceil() as usize + 1).min(sorted.len() - 1)];
                assert!(
                    lo * (1.0 - 1e-3) <= *y && *y <= hi * (1.0 + 1e-3),
                    "{m:?} p{p}: exact {x}, digest {y}, neighbours {lo}..{hi}"
                );
            }
        }
        assert!(got.precision.is_some() && exact.precision.is_none());
        // Peaks within a bucket's worth of the exact ones.
        assert!((got.peak_in_flight as i64 - exact.peak_in_flight as i64).abs() <= 1);
        let tps = (got.max_output_tokens_per_s - exact.max_output_tokens_per_s).abs();
        assert!(tps <= 0.02 * exact.max_output_tokens_per_s, "{tps}");
        // Serialized and read back, and two halves merged: the same summary.
        let back = Digest::from_json(&d.to_json(), "test").unwrap();
        let again = back.summary(30.0, &opts);
        let mut halves = Digest::new(0, d.slo.clone());
        let mut second = Digest::new(0, d.slo.clone());
        for (i, r) in recs.iter().enumerate() {
            if i % 2 == 0 {
                halves.add(r)
            } else {
                second.add(r)
            }
        }
        halves.merge(&Digest::from_json(&second.to_json(), "t").unwrap(), 0);
        let merged = halves.summary(30.0, &opts);
        for s in [&again, &merged] {
            assert_eq!(s.completed, got.completed);
            assert_eq!(s.peak_in_flight, got.peak_in_flight);
            assert_eq!(s.max_output_tokens_per_s, got.max_output_tokens_per_s);
            for m in Metric::ALL {
                let (a, b) = (got.stat(m), s.stat(m));
                assert_eq!(a.percentiles, b.percentiles, "{m:?}");
                assert!((a.mean - b.mean).abs() <= 1e-9 * a.mean.abs().max(1.0));
                assert!((a.std - b.std).abs() <= 1e-6 * a.std.abs().max(1.0));
            }
        }
        // A damaged digest names what is wrong.
        let mut bad = d.to_json();
        bad["metrics"]["ttft"]["hdr_v2_deflate"] = json!("!!");
        let e = Digest::from_json(&bad, "shard-1.json").unwrap_err();
        assert!(
            e.contains("shard-1.json") && e.contains("metrics.ttft"),
            "{e}"
        );
    }
}
