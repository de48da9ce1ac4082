//! From records to numbers: the one function ([`summarize`]) that computes every
//! statistic moonbench reports, and the one enum ([`Metric`]) that says where each
//! latency metric's values come from. Definitions follow vLLM's `calculate_metrics`.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::record::{ErrorKind, RequestRecord};
use super::stats::{Stats, describe, describe_passes, percentile_label};

/// A latency metric with a distribution (mean/median/std/percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    /// Time to first token (vLLM).
    Ttft,
    /// Time per output token, excluding the first (vLLM).
    Tpot,
    /// Inter-token latency, per token (vLLM, with multi-token chunks spread).
    Itl,
    /// End-to-end latency (vLLM).
    E2el,
    /// Raw gap between consecutive token-bearing chunks (moonbench).
    ChunkItl,
    /// Actual send minus intended send (moonbench).
    ScheduleLag,
    /// TTFT from the intended send time (moonbench; coordinated-omission corrected).
    IntendedTtft,
    /// E2EL from the intended send time (moonbench; coordinated-omission corrected).
    IntendedE2el,
    /// Time to the first answer token, after any reasoning (moonbench).
    Ttfa,
    /// vLLM's client-side queueing: actual send minus intended send, the wait for
    /// a concurrency slot (the values of `ScheduleLag`, under vLLM's name).
    ClientQueueTime,
    /// vLLM's E2EL including the client queue: from the intended send (the values
    /// of `IntendedE2el`, under vLLM's name).
    E2elIncludingClientQueue,
}

impl Metric {
    /// vLLM's four metrics, in vLLM's order (the order of `--percentile-metrics`).
    pub const VLLM: [Metric; 4] = [Metric::Ttft, Metric::Tpot, Metric::Itl, Metric::E2el];
    /// vLLM's queue metrics, reported when `--percentile-metrics` names them and the
    /// run had a concurrency cap (the second also needs a finite rate), as vLLM.
    pub const VLLM_QUEUE: [Metric; 2] = [Metric::ClientQueueTime, Metric::E2elIncludingClientQueue];
    /// Metrics moonbench adds, always reported.
    pub const EXTRA: [Metric; 5] = [
        Metric::ChunkItl,
        Metric::ScheduleLag,
        Metric::IntendedTtft,
        Metric::IntendedE2el,
        Metric::Ttfa,
    ];
    /// Every metric, in the order a summary lists them.
    pub const ALL: [Metric; 11] = [
        Metric::Ttft,
        Metric::Tpot,
        Metric::Itl,
        Metric::E2el,
        Metric::ClientQueueTime,
        Metric::E2elIncludingClientQueue,
        Metric::ChunkItl,
        Metric::ScheduleLag,
        Metric::IntendedTtft,
        Metric::IntendedE2el,
        Metric::Ttfa,
    ];

    /// The name used in keys (`mean_{key}_ms`) and in `--percentile-metrics`.
    pub fn key(self) -> &'static str {
        match self {
            Metric::Ttft => "ttft",
            Metric::Tpot => "tpot",
            Metric::Itl => "itl",
            Metric::E2el => "e2el",
            Metric::ChunkItl => "chunk_itl",
            Metric::ScheduleLag => "schedule_lag",
            Metric::IntendedTtft => "intended_ttft",
            Metric::IntendedE2el => "intended_e2el",
            Metric::Ttfa => "ttfa",
            Metric::ClientQueueTime => "client_queue_time",
            Metric::E2elIncludingClientQueue => "e2el_including_client_queue",
        }
    }

    /// Parses a metric name as given to `--percentile-metrics`.
    pub fn parse(s: &str) -> Option<Metric> {
        Self::ALL.iter().copied().find(|m| m.key() == s.trim())
    }

    /// The metric listed earlier in [`Metric::ALL`] whose values this one's are,
    /// value for value, whatever the records (vLLM's queue names for moonbench's
    /// schedule lag and intended E2EL): its statistics are copied, not recomputed.
    pub fn same_values_as(self) -> Option<Metric> {
        match self {
            Metric::ScheduleLag => Some(Metric::ClientQueueTime),
            Metric::IntendedE2el => Some(Metric::E2elIncludingClientQueue),
            _ => None,
        }
    }

    /// This metric's values over the successful requests, in seconds. The single
    /// definition of each metric.
    pub fn values(self, ok: &[&RequestRecord]) -> Vec<f64> {
        self.walk(ok).collect()
    }

    /// [`Metric::values`] as a walk, without building the list.
    pub fn walk<'a>(self, ok: &'a [&'a RequestRecord]) -> Box<dyn Iterator<Item = f64> + 'a> {
        let it = ok.iter();
        match self {
            Metric::Ttft => Box::new(it.filter_map(|r| r.ttft())),
            Metric::Tpot => Box::new(it.filter_map(|r| r.tpot())),
            Metric::Itl => Box::new(it.flat_map(|r| r.itl_iter())),
            Metric::E2el => Box::new(it.map(|r| r.e2el())),
            Metric::ChunkItl => Box::new(it.flat_map(|r| r.chunk_gap_iter())),
            Metric::ScheduleLag | Metric::ClientQueueTime => Box::new(it.map(|r| r.schedule_lag())),
            Metric::IntendedTtft => Box::new(it.filter_map(|r| r.intended_ttft())),
            Metric::IntendedE2el | Metric::E2elIncludingClientQueue => {
                Box::new(it.map(|r| r.intended_e2el()))
            }
            Metric::Ttfa => Box::new(it.filter_map(|r| r.ttfa())),
        }
    }

    /// [`Stats`] of this metric over the successful requests, in milliseconds, with
    /// the percentiles `ps`. Walks the records a few times rather than copying the
    /// values, so per-token metrics cost no memory per token.
    pub fn describe(self, ok: &[&RequestRecord], ps: &[f64]) -> Stats {
        // The per-token metrics walk tens of millions of values several times:
        // concrete iterators (no boxed `next` per value) for them.
        match self {
            Metric::Itl => describe_passes(
                || ok.iter().flat_map(|r| r.itl_iter()).map(|v| v * 1000.0),
                ps,
            ),
            Metric::ChunkItl => describe_passes(
                || {
                    ok.iter()
                        .flat_map(|r| r.chunk_gap_iter())
                        .map(|v| v * 1000.0)
                },
                ps,
            ),
            _ => describe_passes(|| self.walk(ok).map(|v| v * 1000.0), ps),
        }
    }
}

/// Service-level objectives for goodput, in milliseconds (vLLM's `--goodput`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Slo {
    /// TTFT limit.
    pub ttft_ms: Option<f64>,
    /// TPOT limit.
    pub tpot_ms: Option<f64>,
    /// E2EL limit.
    pub e2el_ms: Option<f64>,
}

impl Slo {
    /// Whether any objective is set.
    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2el_ms.is_some()
    }

    /// Parses vLLM's `KEY:VALUE` pairs (`ttft:500 tpot:50 e2el:2000`, values in ms).
    pub fn parse(pairs: &[String]) -> Result<Slo, String> {
        let mut slo = Slo::default();
        for pair in pairs.iter().flat_map(|p| p.split_whitespace()) {
            let Some((k, v)) = pair.split_once(':') else {
                return Err(format!(
                    "--goodput: '{pair}' is not KEY:VALUE; write e.g. --goodput ttft:500 tpot:50"
                ));
            };
            let val: f64 = v.trim().parse().map_err(|_| {
                format!("--goodput: '{v}' in '{pair}' is not a number of milliseconds")
            })?;
            if val.is_nan() || val < 0.0 {
                return Err(format!("--goodput: '{pair}': the value must be >= 0 ms"));
            }
            match k.trim() {
                "ttft" => slo.ttft_ms = Some(val),
                "tpot" => slo.tpot_ms = Some(val),
                "e2el" => slo.e2el_ms = Some(val),
                other => {
                    return Err(format!(
                        "--goodput: unknown metric '{other}'; the valid ones are ttft, tpot, e2el"
                    ));
                }
            }
        }
        Ok(slo)
    }

    /// Whether a successful request meets every objective (inclusive, as vLLM).
    /// TPOT counts as 0 for requests with at most one output token (vLLM's `all_tpots`).
    pub fn is_good(&self, r: &RequestRecord) -> bool {
        let ok = |limit: Option<f64>, v: f64| limit.is_none_or(|l| v * 1000.0 <= l);
        ok(self.ttft_ms, r.ttft().unwrap_or(r.e2el()))
            && ok(self.tpot_ms, r.tpot().unwrap_or(0.0))
            && ok(self.e2el_ms, r.e2el())
    }
}

/// What a summary needs besides the records.
#[derive(Debug, Clone, PartialEq)]
pub struct SummaryOptions {
    /// Percentiles to report (0–100).
    pub percentiles: Vec<f64>,
    /// Goodput objectives; goodput is reported only if one is set.
    pub slo: Slo,
    /// The requested send rate (req/s); `None` for an infinite rate.
    pub requested_rate: Option<f64>,
    /// A pooling run (embeddings, pooling, rerank): vLLM's pooling result keys.
    pub pooling: bool,
    /// Also report the steady state ([`steady_state`]).
    pub steady_state: bool,
}

impl Default for SummaryOptions {
    fn default() -> Self {
        Self {
            percentiles: vec![50.0, 90.0, 95.0, 99.0],
            slo: Slo::default(),
            requested_rate: None,
            pooling: false,
            steady_state: false,
        }
    }
}

/// Every number a run reports, derived from its records by [`summarize`].
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Seconds from the first dispatch to the end of the last request.
    pub duration: f64,
    /// Successful requests.
    pub completed: u64,
    /// Failed requests (excluding those cancelled by an interruption).
    pub failed: u64,
    /// Requests cut off by Ctrl-C / SIGTERM.
    pub cancelled: u64,
    /// Σ prompt tokens (our tokenizer) over successful requests.
    pub total_input_tokens: u64,
    /// Σ output tokens over successful requests.
    pub total_output_tokens: u64,
    /// Σ `usage.prompt_tokens` over successful requests that reported it.
    pub total_server_input_tokens: Option<u64>,
    /// Σ reasoning tokens over successful requests.
    pub total_reasoning_tokens: u64,
    /// completed / duration.
    pub request_throughput: f64,
    /// good requests / duration, if an SLO was given.
    pub request_goodput: Option<f64>,
    /// Share of successful requests meeting the SLO (0–1), if one was given.
    pub goodput_ratio: Option<f64>,
    /// output tokens / duration.
    pub output_throughput: f64,
    /// (input + output tokens) / duration.
    pub total_token_throughput: f64,
    /// Most output tokens received within any one-second window (sliding), and
    /// never less than the mean output throughput.
    pub max_output_tokens_per_s: f64,
    /// Most requests in flight at the same instant (vLLM's key; vLLM counts
    /// requests overlapping a one-second bucket instead, which can exceed the cap).
    pub max_concurrent_requests: u64,
    /// Exact peak of requests in flight at the same instant.
    pub peak_in_flight: u64,
    /// Seconds of audio sent by successful requests / duration (vLLM's `rtfx`,
    /// the inverse real-time factor); `None` when no request sent audio.
    pub rtfx: Option<f64>,
    /// Requests that had to open a new connection after the clock started.
    pub new_connections: u64,
    /// The requested rate (None = infinite).
    pub requested_rate: Option<f64>,
    /// Achieved send rate: (n−1)/(last send − first send), over all measured requests.
    pub achieved_rate: Option<f64>,
    /// Statistics in milliseconds for every metric.
    pub stats: Vec<(Metric, Stats)>,
    /// Failures counted by kind (`http_500`, `timeout`, ...).
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Successful requests that asked for an exact length (`ignore_eos`) and got
    /// fewer tokens: the server ignored `ignore_eos`, or a limit cut them.
    pub short_outputs: u64,
    /// Σ input sequences over successful requests (a batch counts its size, a
    /// rerank its documents).
    pub total_input_sequences: u64,
    /// total_input_sequences / duration.
    pub input_sequence_throughput: f64,
    /// Whether this is a pooling run (vLLM's `EmbedBenchmarkMetrics` keys).
    pub pooling: bool,
    /// The steady state, when asked for: its window and metrics, or why there is none.
    pub steady: Option<Result<SteadyState, String>>,
    /// How the numbers were made when not from every record (a bounded run's
    /// [`super::digest::Digest`]); `None`: exact, from the records.
    pub precision: Option<String>,
}

/// The saturated plateau of a run, ramp-up and drain left out (the steady-state
/// metrics of vLLM's Rust client; AISBench calls it the steady stage). The plateau
/// is the time-weighted median of requests in flight while requests were still
/// being sent (the concurrency cap, in a capped closed-loop run); the window opens
/// when that many are first in flight and closes with the last send, after which
/// the server only drains.
#[derive(Debug, Clone, Default)]
pub struct SteadyState {
    /// Window start, seconds after the first request was sent.
    pub start_s: f64,
    /// Window end (the last send), seconds after the first request was sent.
    pub end_s: f64,
    /// The plateau: requests in flight.
    pub in_flight: u64,
    /// The window's share of the whole run (0–1).
    pub share_of_run: f64,
    /// Successful requests sent within the window (their latencies are below).
    pub requests: u64,
    /// Successful requests that ended within the window, per second of it.
    pub request_throughput: f64,
    /// Output tokens that arrived within the window, per second of it.
    pub output_throughput: f64,
    /// TTFT, TPOT, ITL and E2EL (ms) of the requests sent within the window.
    pub stats: Vec<(Metric, Stats)>,
    /// A caution when the window is short or holds few requests.
    pub note: Option<String>,
}

impl SteadyState {
    /// The `steady_state` object of result files.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("found".into(), json!(true));
        m.insert("window_start_s".into(), json!(self.start_s));
        m.insert("window_end_s".into(), json!(self.end_s));
        m.insert("window_s".into(), json!(self.end_s - self.start_s));
        m.insert("share_of_run".into(), json!(self.share_of_run));
        m.insert("in_flight".into(), json!(self.in_flight));
        m.insert("requests".into(), json!(self.requests));
        m.insert("request_throughput".into(), json!(self.request_throughput));
        m.insert("output_throughput".into(), json!(self.output_throughput));
        for (metric, st) in &self.stats {
            let k = metric.key();
            m.insert(format!("mean_{k}_ms"), json!(st.mean));
            m.insert(format!("median_{k}_ms"), json!(st.median));
            for (p, v) in &st.percentiles {
                m.insert(format!("p{}_{k}_ms", percentile_label(*p)), json!(v));
            }
        }
        m.insert("note".into(), json!(self.note));
        Value::Object(m)
    }
}

/// Finds the steady state of `measured` (warm-ups excluded; failures count as in
/// flight) and measures it from `ok`; an error says why a run has none.
pub fn steady_state(
    measured: &[&RequestRecord],
    ok: &[&RequestRecord],
    percentiles: &[f64],
) -> Result<SteadyState, String> {
    if measured.len() < 2 {
        return Err("fewer than 2 requests".into());
    }
    let first = measured.iter().map(|r| r.sent_ns).min().unwrap_or(0);
    let last_send = measured.iter().map(|r| r.sent_ns).max().unwrap_or(0);
    let run_end = measured
        .iter()
        .map(|r| r.end_ns.max(r.sent_ns))
        .max()
        .unwrap_or(0);
    if last_send <= first {
        return Err(
            "every request was sent at once, so there is no plateau between ramp-up and drain"
                .into(),
        );
    }
    let mut ev: Vec<(u64, i64)> = Vec::with_capacity(measured.len() * 2);
    for r in measured {
        ev.push((r.sent_ns, 1));
        ev.push((r.end_ns.max(r.sent_ns), -1));
    }
    ev.sort_unstable();
    // Time spent at each level while requests were being sent.
    let mut at_level: BTreeMap<i64, u64> = BTreeMap::new();
    let (mut cur, mut t) = (0i64, first);
    for &(when, d) in &ev {
        let when = when.min(last_send);
        if when > t {
            *at_level.entry(cur).or_default() += when - t;
            t = when;
        }
        cur += d;
    }
    let total: u64 = at_level.values().sum();
    let mut acc = 0;
    let level = at_level
        .iter()
        .find(|(_, dt)| {
            acc += **dt;
            2 * acc >= total
        })
        .map(|(&l, _)| l)
        .unwrap_or(1)
        .max(1);
    let mut cur = 0i64;
    let start = ev
        .iter()
        .find(|&&(_, d)| {
            cur += d;
            cur >= level
        })
        .map(|e| e.0)
        .unwrap_or(first);
    if start >= last_send {
        return Err(format!(
            "the run reached its plateau of {level} requests in flight only after the last request was sent"
        ));
    }
    let (lo, hi) = (start, last_send);
    let window = crate::clock::secs(hi - lo);
    let inside: Vec<&RequestRecord> = ok
        .iter()
        .copied()
        .filter(|r| (lo..=hi).contains(&r.sent_ns))
        .collect();
    let tokens: u64 = ok
        .iter()
        .flat_map(|r| r.chunks.iter())
        .filter(|(t, _)| (lo..=hi).contains(t))
        .map(|(_, n)| n as u64)
        .sum();
    let ended = ok.iter().filter(|r| (lo..=hi).contains(&r.end_ns)).count();
    let share = window / crate::clock::secs(run_end.saturating_sub(first)).max(1e-9);
    let stats = [Metric::Ttft, Metric::Tpot, Metric::Itl, Metric::E2el]
        .iter()
        .map(|m| (*m, m.describe(&inside, percentiles)))
        .collect();
    let note = if inside.len() < 10 || share < 0.2 {
        Some(format!(
            "a short plateau: {} requests sent in {:.0}% of the run; send more requests (--num-prompts) for steadier numbers",
            inside.len(),
            share * 100.0
        ))
    } else {
        None
    };
    Ok(SteadyState {
        start_s: crate::clock::secs(lo - first),
        end_s: crate::clock::secs(hi - first),
        in_flight: level as u64,
        share_of_run: share,
        requests: inside.len() as u64,
        request_throughput: ended as f64 / window,
        output_throughput: tokens as f64 / window,
        stats,
        note,
    })
}

impl Summary {
    /// The statistics (ms) of `m`.
    pub fn stat(&self, m: Metric) -> &Stats {
        &self
            .stats
            .iter()
            .find(|(k, _)| *k == m)
            .expect("every metric is summarized")
            .1
    }

    /// The flat map of scalar results: [`Summary::vllm_map`] then [`Summary::extra_map`].
    pub fn to_map(&self, selected: &[Metric], goodput_key: &str) -> Map<String, Value> {
        let mut m = self.vllm_map(selected, goodput_key);
        m.extend(self.extra_map());
        m
    }

    /// vLLM's scalar results with vLLM's key names (`completed`, `mean_ttft_ms`, ...),
    /// the metric blocks limited to `selected`.
    pub fn vllm_map(&self, selected: &[Metric], goodput_key: &str) -> Map<String, Value> {
        // One layout for both of vLLM's results, in vLLM's key order: a pooling run
        // (embeddings, rerank) reports input sequences where a generation run reports
        // output tokens, and only E2EL among the per-request metrics.
        let pooling = self.pooling;
        let mut m = Map::new();
        m.insert("duration".into(), json!(self.duration));
        m.insert("completed".into(), json!(self.completed));
        m.insert("failed".into(), json!(self.failed));
        m.insert("total_input_tokens".into(), json!(self.total_input_tokens));
        if pooling {
            m.insert(
                "total_input_sequences".into(),
                json!(self.total_input_sequences),
            );
        } else {
            m.insert(
                "total_output_tokens".into(),
                json!(self.total_output_tokens),
            );
        }
        m.insert("request_throughput".into(), json!(self.request_throughput));
        if pooling {
            m.insert(
                "input_sequence_throughput".into(),
                json!(self.input_sequence_throughput),
            );
        } else {
            m.insert(goodput_key.into(), json!(self.request_goodput));
            m.insert("output_throughput".into(), json!(self.output_throughput));
        }
        m.insert(
            "total_token_throughput".into(),
            json!(self.total_token_throughput),
        );
        if !pooling {
            m.insert(
                "max_output_tokens_per_s".into(),
                json!(self.max_output_tokens_per_s),
            );
            m.insert(
                "max_concurrent_requests".into(),
                json!(self.max_concurrent_requests),
            );
        }
        if let Some(r) = self.rtfx {
            m.insert("rtfx".into(), json!(r));
        }
        let per_request: &[Metric] = if pooling {
            &[Metric::E2el]
        } else {
            &Metric::VLLM
        };
        for metric in per_request
            .iter()
            .chain(Metric::VLLM_QUEUE.iter())
            .filter(|m| selected.contains(m))
        {
            self.insert_stats(&mut m, *metric);
        }
        m
    }

    /// moonbench's own keys (never in vLLM's files).
    pub fn extra_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("cancelled".into(), json!(self.cancelled));
        m.insert(
            "total_server_input_tokens".into(),
            json!(self.total_server_input_tokens),
        );
        m.insert(
            "total_reasoning_tokens".into(),
            json!(self.total_reasoning_tokens),
        );
        m.insert(
            "total_answer_tokens".into(),
            json!(
                self.total_output_tokens
                    .saturating_sub(self.total_reasoning_tokens)
            ),
        );
        m.insert("goodput_ratio".into(), json!(self.goodput_ratio));
        m.insert("peak_in_flight".into(), json!(self.peak_in_flight));
        m.insert("new_connections".into(), json!(self.new_connections));
        m.insert("achieved_request_rate".into(), json!(self.achieved_rate));
        for metric in Metric::EXTRA {
            self.insert_stats(&mut m, metric);
            m.insert(
                format!("max_{}_ms", metric.key()),
                json!(self.stat(metric).max),
            );
        }
        m.insert("errors_by_kind".into(), json!(self.errors_by_kind));
        m.insert("short_outputs".into(), json!(self.short_outputs));
        if let Some(p) = &self.precision {
            m.insert("summary_precision".into(), json!(p));
        }
        match &self.steady {
            Some(Ok(st)) => {
                m.insert("steady_state".into(), st.to_json());
            }
            Some(Err(why)) => {
                m.insert("steady_state".into(), json!({"found": false, "why": why}));
            }
            None => {}
        }
        m
    }

    fn insert_stats(&self, m: &mut Map<String, Value>, metric: Metric) {
        let s = self.stat(metric);
        let k = metric.key();
        m.insert(format!("mean_{k}_ms"), json!(s.mean));
        m.insert(format!("median_{k}_ms"), json!(s.median));
        m.insert(format!("std_{k}_ms"), json!(s.std));
        for (p, v) in &s.percentiles {
            m.insert(format!("p{}_{k}_ms", percentile_label(*p)), json!(v));
        }
    }
}

/// The counts and sums of a summary, added one record at a time: the one place
/// they are defined, for [`summarize`] over kept records and for a
/// [`super::digest::Digest`] that keeps none.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Totals {
    /// Measured (not warm-up) requests.
    pub measured: u64,
    /// Successful requests.
    pub completed: u64,
    /// Failed requests, interruptions excluded.
    pub failed: u64,
    /// Requests cut off by an interruption.
    pub cancelled: u64,
    /// Failures by kind.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Requests that opened a new connection after the clock started.
    pub new_connections: u64,
    /// Σ prompt tokens of successful requests.
    pub input_tokens: u64,
    /// Σ output tokens of successful requests.
    pub output_tokens: u64,
    /// Σ reasoning tokens of successful requests.
    pub reasoning_tokens: u64,
    /// Σ input sequences of successful requests.
    pub input_sequences: u64,
    /// Σ `usage.prompt_tokens`, over the successful requests that reported it.
    pub server_input_tokens: Option<u64>,
    /// Σ seconds of audio sent by successful requests.
    pub audio_seconds: f64,
    /// Successful requests meeting the SLO given to [`Totals::add`].
    pub good: u64,
    /// Successful requests that asked for an exact length and got fewer tokens.
    pub short_outputs: u64,
    /// First and last send of a measured request (ns, the run's clock).
    pub first_sent_ns: Option<u64>,
    /// See `first_sent_ns`.
    pub last_sent_ns: u64,
}

impl Totals {
    /// Adds one record (warm-ups are ignored); `slo` decides what counts as good.
    pub fn add(&mut self, r: &RequestRecord, slo: &Slo) {
        if r.warmup {
            return;
        }
        self.measured += 1;
        self.first_sent_ns = Some(self.first_sent_ns.map_or(r.sent_ns, |f| f.min(r.sent_ns)));
        self.last_sent_ns = self.last_sent_ns.max(r.sent_ns);
        self.new_connections += r.new_connection as u64;
        if let Some(e) = &r.error {
            if e.kind == ErrorKind::Cancelled {
                self.cancelled += 1;
            } else {
                self.failed += 1;
            }
            *self
                .errors_by_kind
                .entry(e.count_key(r.status))
                .or_default() += 1;
        }
        if !r.success() {
            return;
        }
        self.completed += 1;
        self.input_tokens += r.prompt_tokens as u64;
        self.output_tokens += r.output_tokens as u64;
        self.reasoning_tokens += r.reasoning_tokens as u64;
        self.input_sequences += r.inputs() as u64;
        if let Some(n) = r.server_prompt_tokens {
            *self.server_input_tokens.get_or_insert(0) += n as u64;
        }
        self.audio_seconds += r.audio_seconds;
        if slo.is_set() && slo.is_good(r) {
            self.good += 1;
        }
        if r.expected_output_tokens
            .is_some_and(|n| r.output_tokens < n)
        {
            self.short_outputs += 1;
        }
    }

    /// Adds another part's totals (the shards of a run).
    pub fn merge(&mut self, o: &Totals) {
        self.measured += o.measured;
        self.completed += o.completed;
        self.failed += o.failed;
        self.cancelled += o.cancelled;
        for (k, v) in &o.errors_by_kind {
            *self.errors_by_kind.entry(k.clone()).or_default() += v;
        }
        self.new_connections += o.new_connections;
        self.input_tokens += o.input_tokens;
        self.output_tokens += o.output_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.input_sequences += o.input_sequences;
        if let Some(n) = o.server_input_tokens {
            *self.server_input_tokens.get_or_insert(0) += n;
        }
        self.audio_seconds += o.audio_seconds;
        self.good += o.good;
        self.short_outputs += o.short_outputs;
        self.first_sent_ns = match (self.first_sent_ns, o.first_sent_ns) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_sent_ns = self.last_sent_ns.max(o.last_sent_ns);
    }

    /// A summary of a run of `duration` seconds with these totals: counts,
    /// throughputs, goodput (when `slo_set`) and the achieved rate; no
    /// statistics yet.
    pub fn summary(&self, duration: f64, opts: &SummaryOptions, slo_set: bool) -> Summary {
        let mut s = Summary {
            duration,
            requested_rate: opts.requested_rate,
            pooling: opts.pooling,
            completed: self.completed,
            failed: self.failed,
            cancelled: self.cancelled,
            errors_by_kind: self.errors_by_kind.clone(),
            new_connections: self.new_connections,
            total_input_tokens: self.input_tokens,
            total_output_tokens: self.output_tokens,
            total_reasoning_tokens: self.reasoning_tokens,
            total_input_sequences: self.input_sequences,
            total_server_input_tokens: self.server_input_tokens,
            short_outputs: self.short_outputs,
            ..Default::default()
        };
        if self.audio_seconds > 0.0 {
            s.rtfx = Some(if duration > 0.0 {
                self.audio_seconds / duration
            } else {
                0.0
            });
        }
        if duration > 0.0 {
            s.request_throughput = s.completed as f64 / duration;
            s.output_throughput = s.total_output_tokens as f64 / duration;
            s.total_token_throughput =
                (s.total_input_tokens + s.total_output_tokens) as f64 / duration;
            s.input_sequence_throughput = s.total_input_sequences as f64 / duration;
        }
        if slo_set {
            s.request_goodput = Some(if duration > 0.0 {
                self.good as f64 / duration
            } else {
                0.0
            });
            s.goodput_ratio = Some(if self.completed == 0 {
                0.0
            } else {
                self.good as f64 / self.completed as f64
            });
        }
        s.achieved_rate = match self.first_sent_ns {
            Some(first) if self.measured >= 2 && self.last_sent_ns > first => {
                Some((self.measured - 1) as f64 / crate::clock::secs(self.last_sent_ns - first))
            }
            _ => None,
        };
        s
    }
}

/// Summarizes a run. `records` may include warm-ups (ignored); `duration` is the
/// run's measured window in seconds.
pub fn summarize(records: &[RequestRecord], duration: f64, opts: &SummaryOptions) -> Summary {
    let measured: Vec<&RequestRecord> = records.iter().filter(|r| !r.warmup).collect();
    let ok: Vec<&RequestRecord> = measured.iter().copied().filter(|r| r.success()).collect();
    let mut totals = Totals::default();
    for r in &measured {
        totals.add(r, &opts.slo);
    }
    let mut s = totals.summary(duration, opts, opts.slo.is_set());
    // Metrics whose values are another's, value for value, copy its statistics
    // instead of walking every token again: the aliases of `same_values_as`, and,
    // with one token per chunk, the raw chunk gaps, which are the per-token ITLs.
    let one_token_chunks = ok.iter().all(|r| r.chunks.tokens().all(|k| k <= 1));
    let same_as = |metric: Metric| match metric {
        Metric::ChunkItl if one_token_chunks => Some(Metric::Itl),
        m => m.same_values_as(),
    };
    // The per-token ITL walks every token several times: on a second thread,
    // beside the other metrics and the peak (a merge of a million records
    // spends most of its summary there; the numbers are the same either way).
    let ps = &opts.percentiles;
    let mean_tput = s.output_throughput;
    let (described, peak) = std::thread::scope(|sc| {
        let itl = sc.spawn(|| Metric::Itl.describe(&ok, ps));
        let mut v: Vec<(Metric, Stats)> = Metric::ALL
            .into_iter()
            .filter(|&m| m != Metric::Itl && same_as(m).is_none())
            .map(|m| (m, m.describe(&ok, ps)))
            .collect();
        let peak = peak_tokens_per_s(&ok, mean_tput);
        v.push((Metric::Itl, itl.join().expect("the ITL statistics")));
        (v, peak)
    });
    let find = |m: Metric| described.iter().find(|(k, _)| *k == m).map(|(_, st)| st);
    for metric in Metric::ALL {
        let stats = match same_as(metric).and_then(find).or_else(|| find(metric)) {
            Some(st) => st.clone(),
            None => metric.describe(&ok, ps),
        };
        s.stats.push((metric, stats));
    }
    s.max_output_tokens_per_s = peak;
    s.peak_in_flight = peak_in_flight(&measured);
    // vLLM counts requests overlapping a one-second bucket, which exceeds the
    // concurrency cap when requests follow each other within a second; this is the
    // exact peak instead (never above the cap).
    s.max_concurrent_requests = s.peak_in_flight;
    if opts.steady_state {
        s.steady = Some(steady_state(&measured, &ok, &opts.percentiles));
    }
    s
}

/// The most output tokens that arrived within any one-second window (sliding:
/// each window ends at a chunk's arrival). vLLM counts whole-second buckets, which
/// a window always contains, so this is never below vLLM's figure; and it is
/// never below `mean` (a run shorter than a second, or tokens spread evenly over
/// bucket edges, would otherwise show a "peak" under the average).
fn peak_tokens_per_s(ok: &[&RequestRecord], mean: f64) -> f64 {
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, VecDeque};
    // Every chunk in time order without collecting them all (a long run has tens
    // of millions): each record's chunks arrive in order, so a heap holding one
    // cursor per record that has started merges them; records join it in the
    // order of their first chunk.
    let mut order: Vec<(u64, crate::metrics::chunks::ChunkIter)> = ok
        .iter()
        .filter_map(|r| Some((r.chunks.first()?, r.chunks.iter())))
        .collect();
    order.sort_unstable_by_key(|o| o.0);
    // (arrival, record, tokens) of each record's next chunk.
    let mut heap: BinaryHeap<Reverse<(u64, usize, u32)>> = BinaryHeap::new();
    let mut next = 0;
    // The chunks of the last second, and their tokens.
    let mut window: VecDeque<(u64, u64)> = VecDeque::new();
    let (mut sum, mut best) = (0u64, 0u64);
    loop {
        while let Some((first, _)) = order.get(next) {
            if heap.peek().is_some_and(|Reverse(top)| top.0 < *first) {
                break;
            }
            let (t, n) = order[next].1.next().expect("a first chunk");
            heap.push(Reverse((t, next, n)));
            next += 1;
        }
        let Some(Reverse((t, ri, n))) = heap.pop() else {
            break;
        };
        if let Some((t2, n2)) = order[ri].1.next() {
            heap.push(Reverse((t2.max(t), ri, n2)));
        }
        let n = n as u64;
        window.push_back((t, n));
        sum += n;
        while let Some(&(t0, n0)) = window.front() {
            if t - t0 < 1_000_000_000 {
                break;
            }
            sum -= n0;
            window.pop_front();
        }
        best = best.max(sum);
    }
    (best as f64).max(mean)
}

/// Exact maximum number of requests in flight at once (send start to response end).
fn peak_in_flight(rs: &[&RequestRecord]) -> u64 {
    let mut ev: Vec<(u64, i32)> = Vec::with_capacity(rs.len() * 2);
    for r in rs {
        ev.push((r.sent_ns, 1));
        ev.push((r.end_ns.max(r.sent_ns), -1));
    }
    // Ends sort before starts at the same instant.
    ev.sort_unstable();
    let (mut cur, mut best) = (0i64, 0i64);
    for (_, d) in ev {
        cur += d as i64;
        best = best.max(cur);
    }
    best as u64
}

/// `mean_ms`, `median_ms`, `p{P}_ms` of `values_s` (seconds), for the users section.
fn ms_stats(values_s: &[f64], percentiles: &[f64]) -> Value {
    let ms: Vec<f64> = values_s.iter().map(|v| v * 1000.0).collect();
    let s = super::describe(&ms, percentiles);
    let mut m = Map::new();
    m.insert("count".into(), json!(s.count));
    m.insert("mean_ms".into(), json!(s.mean));
    m.insert("median_ms".into(), json!(s.median));
    for (p, v) in &s.percentiles {
        m.insert(format!("p{}_ms", super::percentile_label(*p)), json!(v));
    }
    Value::Object(m)
}

/// vLLM's probe statistics (`--probe-request-rate`): probes completed and failed,
/// and the median, p99 and largest E2EL of the successful ones in ms; `None` when
/// no probe succeeded (vLLM then writes none of these keys).
pub fn probes_map(probes: &[RequestRecord]) -> Option<Map<String, Value>> {
    let lats: Vec<f64> = probes
        .iter()
        .filter(|r| r.success())
        .map(|r| r.e2el() * 1000.0)
        .collect();
    if lats.is_empty() {
        return None;
    }
    let s = describe(&lats, &[99.0]);
    let mut m = Map::new();
    m.insert("probe_completed".into(), json!(lats.len()));
    m.insert("probe_failed".into(), json!(probes.len() - lats.len()));
    m.insert("probe_median_e2el_ms".into(), json!(s.median));
    m.insert("probe_p99_e2el_ms".into(), json!(s.percentiles[0].1));
    m.insert("probe_max_e2el_ms".into(), json!(s.max));
    Some(m)
}

/// The virtual-users view of a run (`None` unless its records come from
/// `mb.users`): users and conversations, requests per user, TTFT and prompt
/// length by turn (how multi-turn history grows), and conversation latency (first
/// send to last byte of a conversation whose requests all succeeded, think time
/// included).
pub fn users_map(records: &[RequestRecord], percentiles: &[f64]) -> Option<Map<String, Value>> {
    use std::collections::BTreeMap;
    let tagged: Vec<(&RequestRecord, super::UserTag)> = records
        .iter()
        .filter(|r| !r.warmup)
        .filter_map(|r| r.user.map(|u| (r, u)))
        .collect();
    if tagged.is_empty() {
        return None;
    }
    let mut per_user: BTreeMap<u32, u64> = BTreeMap::new();
    let mut turns: BTreeMap<u32, Vec<&RequestRecord>> = BTreeMap::new();
    // conversation -> (first send, last end, all ok)
    let mut convs: BTreeMap<u64, (u64, u64, bool)> = BTreeMap::new();
    for (r, u) in &tagged {
        *per_user.entry(u.user).or_default() += 1;
        turns.entry(u.turn).or_default().push(r);
        let c = convs.entry(u.conversation).or_insert((u64::MAX, 0, true));
        c.0 = c.0.min(r.sent_ns);
        c.1 = c.1.max(r.end_ns);
        c.2 &= r.success();
    }
    let counts: Vec<f64> = per_user.values().map(|&n| n as f64).collect();
    let mut m = Map::new();
    m.insert("users".into(), json!(per_user.len()));
    m.insert("conversations".into(), json!(convs.len()));
    m.insert(
        "requests_per_user".into(),
        json!({
            "min": counts.iter().cloned().fold(f64::INFINITY, f64::min),
            "mean": counts.iter().sum::<f64>() / counts.len() as f64,
            "max": counts.iter().cloned().fold(0.0, f64::max),
        }),
    );
    let by_turn: Vec<Value> = turns
        .iter()
        .map(|(turn, rs)| {
            let ok: Vec<&&RequestRecord> = rs.iter().filter(|r| r.success()).collect();
            let ttfts: Vec<f64> = ok.iter().filter_map(|r| r.ttft()).collect();
            let prompt = rs.iter().map(|r| r.prompt_tokens as f64).sum::<f64>() / rs.len() as f64;
            json!({
                "turn": turn,
                "requests": rs.len(),
                "completed": ok.len(),
                "mean_prompt_tokens": prompt,
                "ttft": ms_stats(&ttfts, percentiles),
                "e2el": ms_stats(&ok.iter().map(|r| r.e2el()).collect::<Vec<_>>(), percentiles),
            })
        })
        .collect();
    m.insert("by_turn".into(), json!(by_turn));
    let lat: Vec<f64> = convs
        .values()
        .filter(|c| c.2)
        .map(|c| crate::clock::secs(c.1.saturating_sub(c.0)))
        .collect();
    m.insert("conversation_latency".into(), ms_stats(&lat, percentiles));
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::record::RequestError;

    const MS: u64 = 1_000_000;

    fn ok_rec(i: u64, sent: u64, ttft: u64, itl: u64, tokens: u32, prompt: u32) -> RequestRecord {
        let chunk_ns: Vec<u64> = (0..tokens as u64).map(|k| sent + ttft + k * itl).collect();
        RequestRecord {
            index: i,
            scheduled_ns: sent,
            dispatched_ns: sent,
            sent_ns: sent,
            end_ns: *chunk_ns.last().unwrap(),
            chunks: crate::metrics::Chunks::from_lists(&chunk_ns, &vec![1; chunk_ns.len()]),
            chunk_text_end: (1..=tokens).collect(),
            streamed: true,
            prompt_tokens: prompt,
            output_tokens: tokens,
            status: 200,
            ..Default::default()
        }
    }

    /// Hand-computed steady state: two streams in a closed loop, five requests of
    /// two tokens (50 ms to each). One in flight for 20 ms, then two until the
    /// last send at 200 ms: the window is [20, 200] ms, 180 ms of a 300 ms run.
    #[test]
    fn steady_state_by_hand() {
        let recs: Vec<RequestRecord> = [0, 20, 100, 120, 200]
            .iter()
            .enumerate()
            .map(|(i, &sent)| ok_rec(i as u64, sent * MS, 50 * MS, 50 * MS, 2, 4))
            .collect();
        let opts = SummaryOptions {
            steady_state: true,
            percentiles: vec![50.0],
            ..Default::default()
        };
        let s = summarize(&recs, 0.3, &opts);
        let st = s.steady.clone().unwrap().unwrap();
        assert_eq!(st.in_flight, 2);
        assert!(
            (st.start_s - 0.020).abs() < 1e-9 && (st.end_s - 0.200).abs() < 1e-9,
            "{st:?}"
        );
        assert!((st.share_of_run - 0.6).abs() < 1e-9);
        // Sent within the window: the last four.
        assert_eq!(st.requests, 4);
        // Tokens arriving at 50, 70, 100, 120, 150, 170, 200 ms: 7 in 0.18 s.
        assert!((st.output_throughput - 7.0 / 0.18).abs() < 1e-6, "{st:?}");
        // Ended at 100, 120, 200 ms.
        assert!((st.request_throughput - 3.0 / 0.18).abs() < 1e-6);
        assert_eq!(st.stats[0].0, Metric::Ttft);
        assert!((st.stats[0].1.mean - 50.0).abs() < 1e-9);
        assert!(st.note.is_some(), "4 requests is a short plateau");
        let m = s.extra_map();
        assert_eq!(m["steady_state"]["requests"], 4);
        assert_eq!(m["steady_state"]["found"], true);
        // Everything sent at once: no plateau between ramp-up and drain.
        let burst: Vec<RequestRecord> = (0..3)
            .map(|i| ok_rec(i, 0, 10 * MS, 10 * MS, 2, 4))
            .collect();
        let e = summarize(&burst, 0.02, &opts).steady.unwrap().unwrap_err();
        assert!(e.contains("sent at once"), "{e}");
        // Not asked: not computed, no key.
        assert!(
            summarize(&recs, 0.3, &SummaryOptions::default())
                .steady
                .is_none()
        );
    }

    /// Hand-computed: two requests, one failure, one warm-up.
    #[test]
    fn hand_computed_summary() {
        let a = ok_rec(0, 0, 100 * MS, 10 * MS, 5, 10); // ttft 100, tpot 10, e2el 140
        let b = ok_rec(1, 50 * MS, 200 * MS, 30 * MS, 3, 20); // ttft 200, tpot 30, e2el 260
        let mut failed = ok_rec(2, 60 * MS, 10 * MS, 10 * MS, 1, 5);
        failed.status = 500;
        failed.error = Some(RequestError::new(ErrorKind::Http, "Internal Server Error"));
        let mut warm = ok_rec(99, 0, 1, 1, 2, 1000);
        warm.warmup = true;
        let recs = vec![a, b, failed, warm];
        let opts = SummaryOptions {
            percentiles: vec![50.0, 99.0],
            slo: Slo {
                ttft_ms: Some(150.0),
                ..Default::default()
            },
            requested_rate: None,
            pooling: false,
            steady_state: false,
        };
        let s = summarize(&recs, 2.0, &opts);
        assert_eq!(s.completed, 2);
        assert_eq!(s.failed, 1);
        assert_eq!(s.total_input_tokens, 30);
        assert_eq!(s.total_output_tokens, 8);
        assert_eq!(s.request_throughput, 1.0);
        assert_eq!(s.output_throughput, 4.0);
        assert_eq!(s.total_token_throughput, 19.0);
        assert_eq!(s.request_goodput, Some(0.5)); // only a meets ttft <= 150 ms
        assert_eq!(s.goodput_ratio, Some(0.5));
        let ttft = s.stat(Metric::Ttft);
        assert!((ttft.mean - 150.0).abs() < 1e-9);
        assert!((ttft.median - 150.0).abs() < 1e-9);
        assert!((ttft.std - 50.0).abs() < 1e-9);
        assert!((ttft.percentiles[1].1 - 199.0).abs() < 1e-9); // 100 + 0.99*100
        let tpot = s.stat(Metric::Tpot);
        assert!((tpot.mean - 20.0).abs() < 1e-9);
        // ITL: a has 4 gaps of 10 ms, b has 2 gaps of 30 ms -> mean 50/3*... = (40+60)/6
        let itl = s.stat(Metric::Itl);
        assert_eq!(itl.count, 6);
        assert!((itl.mean - 100.0 / 6.0).abs() < 1e-9);
        let e2el = s.stat(Metric::E2el);
        assert!((e2el.mean - 200.0).abs() < 1e-9);
        assert_eq!(s.errors_by_kind.get("http_500"), Some(&1));
        // b overlaps a: a is in flight 0..140 ms, b 50..310 ms, failed 60..70 ms.
        assert_eq!(s.peak_in_flight, 3);
        assert_eq!(
            s.max_concurrent_requests, 3,
            "the exact peak, failures included"
        );
        assert_eq!(s.max_output_tokens_per_s, 8.0);
        let map = s.to_map(&[Metric::Ttft, Metric::Tpot], "request_goodput");
        assert!(map.contains_key("p99_ttft_ms"));
        assert!(!map.contains_key("mean_itl_ms"));
        assert!(map.contains_key("p99_intended_ttft_ms"));
    }

    /// Tokens at both ends of a 1.3 s run: no one-second window holds more than
    /// half, yet the peak is reported as at least the mean.
    #[test]
    fn peak_throughput_is_never_below_the_mean() {
        let a = ok_rec(0, 0, 10 * MS, 10 * MS, 10, 1); // tokens at 10..100 ms
        let b = ok_rec(1, 1_100 * MS, 100 * MS, 10 * MS, 10, 1); // 1200..1290 ms
        let opts = SummaryOptions {
            percentiles: vec![99.0],
            slo: Slo::default(),
            requested_rate: None,
            pooling: false,
            steady_state: false,
        };
        let s = summarize(&[a, b], 1.3, &opts);
        assert!((s.output_throughput - 20.0 / 1.3).abs() < 1e-9);
        assert_eq!(s.max_output_tokens_per_s, s.output_throughput);
        // One request after another at concurrency 1: the peak is 1.
        assert_eq!(s.max_concurrent_requests, 1);
    }

    #[test]
    fn goodput_parse_errors_name_the_fix() {
        assert!(
            Slo::parse(&["ttft:abc".into()])
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            Slo::parse(&["foo:1".into()])
                .unwrap_err()
                .contains("ttft, tpot, e2el")
        );
        assert!(
            Slo::parse(&["ttft".into()])
                .unwrap_err()
                .contains("KEY:VALUE")
        );
        let s = Slo::parse(&["ttft:500 tpot:50".into(), "e2el:1000".into()]).unwrap();
        assert_eq!(s.e2el_ms, Some(1000.0));
    }
}
