//! The simulator's own counters and its Prometheus `/metrics` page, with vLLM's
//! metric names: requests running and waiting, KV-cache usage, prefix-cache
//! queries and hits (from a small block-hash prefix cache, so replayed traces and
//! shared prefixes show real hit rates), tokens and requests served.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use super::engine::Timing;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Tokens per prefix-cache block.
pub const BLOCK: usize = 16;
const MAX_BLOCKS: usize = 1 << 20;

/// Live counters of a simulator.
#[derive(Debug, Default)]
pub struct SimStats {
    running: AtomicI64,
    waiting: AtomicI64,
    prompt_tokens: AtomicU64,
    generation_tokens: AtomicU64,
    requests: AtomicU64,
    prefix_queries: AtomicU64,
    prefix_hits: AtomicU64,
    blocks: Mutex<HashSet<u64>>,
    profile_starts: AtomicU64,
    profile_stops: AtomicU64,
    /// Each profiler call: (start?, requests running then, `clock::now_ns()`).
    profile_log: Mutex<Vec<(bool, i64, u64)>>,
    preemptions: AtomicU64,
    /// KV blocks in use and in the pool, when a step engine reports them.
    kv_used: AtomicU64,
    kv_total: AtomicU64,
    /// The step engine's per-request histograms, in [`HISTOGRAMS`] order.
    hists: Mutex<Vec<Hist>>,
}

/// vLLM's per-request histograms (names, help, bucket bounds in seconds, as
/// `vllm/v1/metrics/loggers.py` declares them), in [`Timing`] order.
pub const HISTOGRAMS: [(Timing, &str, &str, &[f64]); 6] = [
    (
        Timing::Ttft,
        "vllm:time_to_first_token_seconds",
        "Histogram of time to first token in seconds.",
        &[
            0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
            10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
        ],
    ),
    (
        Timing::Itl,
        "vllm:inter_token_latency_seconds",
        "Histogram of inter-token latency in seconds.",
        &[
            0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5,
            10.0, 20.0, 40.0, 80.0,
        ],
    ),
    (
        Timing::E2e,
        "vllm:e2e_request_latency_seconds",
        "Histogram of e2e request latency in seconds.",
        REQUEST_BUCKETS,
    ),
    (
        Timing::Queue,
        "vllm:request_queue_time_seconds",
        "Histogram of time spent in WAITING phase for request.",
        REQUEST_BUCKETS,
    ),
    (
        Timing::Prefill,
        "vllm:request_prefill_time_seconds",
        "Histogram of time spent in PREFILL phase for request.",
        REQUEST_BUCKETS,
    ),
    (
        Timing::Decode,
        "vllm:request_decode_time_seconds",
        "Histogram of time spent in DECODE phase for request.",
        REQUEST_BUCKETS,
    ),
];

const REQUEST_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

use crate::metrics::prom::{self, Histogram as Hist};

impl SimStats {
    /// `/start_profile` (true) or `/stop_profile` was called.
    pub fn profile_call(&self, start: bool) {
        let c = if start {
            &self.profile_starts
        } else {
            &self.profile_stops
        };
        c.fetch_add(1, Ordering::Relaxed);
        self.profile_log.lock().unwrap().push((
            start,
            self.running.load(Ordering::Relaxed),
            crate::clock::now_ns(),
        ));
    }

    /// Every profiler call as the simulator saw it: (start?, requests running
    /// then, time in `clock::now_ns()`).
    pub fn profile_log(&self) -> Vec<(bool, i64, u64)> {
        self.profile_log.lock().unwrap().clone()
    }

    /// How many times the profiler was started and stopped.
    pub fn profile_calls(&self) -> (u64, u64) {
        (
            self.profile_starts.load(Ordering::Relaxed),
            self.profile_stops.load(Ordering::Relaxed),
        )
    }

    /// The step engine's gauges after scheduling a step.
    pub fn engine_gauges(&self, running: usize, waiting: usize, kv_used: u32, kv_total: u32) {
        self.running.store(running as i64, Ordering::Relaxed);
        self.waiting.store(waiting as i64, Ordering::Relaxed);
        self.kv_used.store(kv_used as u64, Ordering::Relaxed);
        self.kv_total.store(kv_total as u64, Ordering::Relaxed);
    }

    /// The step engine's prefix-cache queries and hits (tokens) and preemptions.
    pub fn add_engine_counts(&self, queries: u64, hits: u64, preemptions: u64) {
        self.prefix_queries.fetch_add(queries, Ordering::Relaxed);
        self.prefix_hits.fetch_add(hits, Ordering::Relaxed);
        self.prompt_tokens.fetch_add(queries, Ordering::Relaxed);
        self.preemptions.fetch_add(preemptions, Ordering::Relaxed);
    }

    /// Adds the step engine's per-request timings (seconds) to the histograms.
    pub fn observe(&self, timings: &[(Timing, f64)]) {
        if timings.is_empty() {
            return;
        }
        let mut h = self.hists.lock().unwrap();
        if h.is_empty() {
            *h = HISTOGRAMS.iter().map(|(_, _, _, b)| Hist::new(b)).collect();
        }
        for &(kind, v) in timings {
            let i = HISTOGRAMS.iter().position(|(k, ..)| *k == kind).unwrap();
            h[i].observe(v);
        }
    }

    /// A request the step engine will serve, with `tokens` to generate.
    pub fn count_request(&self, tokens: u32) {
        self.generation_tokens
            .fetch_add(tokens as u64, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Preemptions so far (step engine).
    pub fn preemptions(&self) -> u64 {
        self.preemptions.load(Ordering::Relaxed)
    }

    /// A request starts waiting for a slot.
    pub fn start_waiting(&self) {
        self.waiting.fetch_add(1, Ordering::Relaxed);
    }

    /// A request got a slot and starts generating `tokens` tokens.
    pub fn start_generating(&self, tokens: u32) {
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        self.running.fetch_add(1, Ordering::Relaxed);
        self.generation_tokens
            .fetch_add(tokens as u64, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A request finished (or was abandoned).
    pub fn finish_generating(&self) {
        self.running.fetch_sub(1, Ordering::Relaxed);
    }

    /// Looks a prompt up in the prefix cache (blocks of [`BLOCK`] words, each hash
    /// chained to the previous, as vLLM hashes KV blocks) and caches it; returns the
    /// tokens found.
    pub fn prefix_lookup(&self, prompt: &str) -> u64 {
        let words: Vec<&str> = prompt.split_whitespace().collect();
        let mut hits = 0u64;
        let mut h = 0u64;
        let mut still_hitting = true;
        let mut blocks = self.blocks.lock().unwrap();
        if blocks.len() > MAX_BLOCKS {
            blocks.clear();
        }
        for block in words.chunks(BLOCK).filter(|b| b.len() == BLOCK) {
            let mut hasher = DefaultHasher::new();
            h.hash(&mut hasher);
            block.hash(&mut hasher);
            h = hasher.finish();
            if still_hitting && blocks.contains(&h) {
                hits += BLOCK as u64;
            } else {
                still_hitting = false;
                blocks.insert(h);
            }
        }
        self.prompt_tokens
            .fetch_add(words.len() as u64, Ordering::Relaxed);
        self.prefix_queries
            .fetch_add(words.len() as u64, Ordering::Relaxed);
        self.prefix_hits.fetch_add(hits, Ordering::Relaxed);
        hits
    }

    /// Forgets the fixed engine's prefix cache (`/reset_prefix_cache`).
    pub fn reset_prefix_cache(&self) {
        self.blocks.lock().unwrap().clear();
    }

    fn kv_usage(&self, capacity: Option<usize>) -> f64 {
        let kv_total = self.kv_total.load(Ordering::Relaxed);
        if kv_total > 0 {
            self.kv_used.load(Ordering::Relaxed) as f64 / kv_total as f64
        } else {
            let running = self.running.load(Ordering::Relaxed).max(0) as f64;
            running / capacity.unwrap_or(256).max(1) as f64
        }
    }

    /// The Prometheus text page (vLLM v1 names). `capacity` is the fixed engine's
    /// admission limit; `engines` are the step engines' own counters (one series per
    /// engine, labelled `engine="i"`, as vLLM labels data-parallel engines), or empty
    /// when these counters are the only engine's. Requests and generated tokens are
    /// the server's, on engine 0.
    pub fn render(&self, model: &str, capacity: Option<usize>, engines: &[&SimStats]) -> String {
        let own = [self];
        let src: &[&SimStats] = if engines.is_empty() { &own } else { engines };
        let label =
            |i: &dyn std::fmt::Display| format!("{{engine=\"{i}\",model_name=\"{model}\"}}");
        let mut s = String::new();
        let mut family = |name: &str, kind: &str, help: &str, values: &[f64]| {
            s.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (i, v) in values.iter().enumerate() {
                s.push_str(&format!("{name}{} {v:?}\n", label(&i)));
            }
            if values.len() > 1 {
                let total: f64 = values.iter().sum();
                s.push_str(&format!("{name}{} {total:?}\n", label(&"total")));
            }
        };
        let per = |f: &dyn Fn(&SimStats) -> f64| -> Vec<f64> { src.iter().map(|e| f(e)).collect() };
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed) as f64;
        family(
            "vllm:num_requests_running",
            "gauge",
            "Number of requests in model execution batches.",
            &per(&|e| e.running.load(Ordering::Relaxed).max(0) as f64),
        );
        family(
            "vllm:num_requests_waiting",
            "gauge",
            "Number of requests waiting to be processed.",
            &per(&|e| e.waiting.load(Ordering::Relaxed).max(0) as f64),
        );
        family(
            "vllm:kv_cache_usage_perc",
            "gauge",
            "KV-cache usage. 1 means 100 percent usage.",
            &per(&|e| e.kv_usage(capacity).min(1.0)),
        );
        family(
            "vllm:prefix_cache_queries_total",
            "counter",
            "Prefix cache queries, in terms of number of queried tokens.",
            &per(&|e| load(&e.prefix_queries)),
        );
        family(
            "vllm:prefix_cache_hits_total",
            "counter",
            "Prefix cache hits, in terms of number of cached tokens.",
            &per(&|e| load(&e.prefix_hits)),
        );
        family(
            "vllm:num_preemptions_total",
            "counter",
            "Cumulative number of preemption from the engine.",
            &per(&|e| load(&e.preemptions)),
        );
        family(
            "vllm:prompt_tokens_total",
            "counter",
            "Number of prefill tokens processed.",
            &per(&|e| load(&e.prompt_tokens)),
        );
        family(
            "vllm:generation_tokens_total",
            "counter",
            "Number of generation tokens processed.",
            &per(&|e| load(&e.generation_tokens)),
        );
        family(
            "vllm:request_success_total",
            "counter",
            "Count of successfully processed requests.",
            &per(&|e| load(&e.requests)),
        );
        let hists: Vec<Vec<Hist>> = src
            .iter()
            .map(|e| e.hists.lock().unwrap().clone())
            .collect();
        if hists.iter().any(|h| !h.is_empty()) {
            for (k, (_, name, help, bounds)) in HISTOGRAMS.iter().enumerate() {
                prom::header(&mut s, name, "histogram", help);
                let empty = Hist::new(bounds);
                let mut per: Vec<(String, Hist)> = hists
                    .iter()
                    .enumerate()
                    .map(|(i, h)| (i.to_string(), h.get(k).unwrap_or(&empty).clone()))
                    .collect();
                if per.len() > 1 {
                    let mut total = empty.clone();
                    for (_, h) in &per {
                        total.add(h);
                    }
                    per.push(("total".to_string(), total));
                }
                for (engine, hist) in &per {
                    hist.write(
                        &mut s,
                        name,
                        &format!("engine=\"{engine}\",model_name=\"{model}\""),
                    );
                }
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_prefixes_hit() {
        let s = SimStats::default();
        let a: String = (0..40).map(|i| format!("w{i} ")).collect();
        let b: String = (0..32)
            .map(|i| format!("w{i} "))
            .chain((0..8).map(|i| format!("x{i} ")))
            .collect();
        assert_eq!(s.prefix_lookup(&a), 0);
        assert_eq!(s.prefix_lookup(&b), 32, "two shared blocks");
        assert!(
            s.render("m", Some(4), &[])
                .contains("vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"m\"} 32.0")
        );
    }
}
