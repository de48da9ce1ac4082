//! The server's own view of a run: its Prometheus `/metrics` page read at an
//! interval, mapped from each server's metric names (vLLM, SGLang, TGI, llama.cpp,
//! TensorRT-LLM/Triton) to one set of quantities, kept as a time series and
//! summarised (mean/max running and waiting, KV-cache usage, prefix-cache hit
//! rate, preemptions).
//!
//! Parsing uses `openmetrics-parser` on the lines of the metrics we read: the page
//! of a real server is large (histograms) and a single line the grammar rejects
//! must not hide the rest.

use std::collections::BTreeMap;

use openmetrics_parser::{MetricNumber, PrometheusValue};
use serde_json::{Map, Value, json};

/// One quantity read from a server, whatever the server calls it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quantity {
    /// Requests being generated (in the running batch).
    Running,
    /// Requests queued, waiting to be scheduled.
    Waiting,
    /// KV-cache usage, 0 to 1.
    KvCacheUsage,
    /// Prefix-cache queries (tokens), a counter.
    PrefixQueries,
    /// Prefix-cache hits (tokens), a counter.
    PrefixHits,
    /// Prefix-cache hit rate, 0 to 1, for servers that report only a rate.
    PrefixHitRate,
    /// Preempted requests, a counter.
    Preemptions,
    /// Speculative decoding: drafts proposed, a counter.
    SpecDrafts,
    /// Speculative decoding: draft tokens proposed, a counter.
    SpecDraftTokens,
    /// Speculative decoding: draft tokens accepted, a counter.
    SpecAccepted,
}

impl Quantity {
    /// Every quantity, in column order.
    pub const ALL: [Quantity; 10] = [
        Quantity::Running,
        Quantity::Waiting,
        Quantity::KvCacheUsage,
        Quantity::PrefixQueries,
        Quantity::PrefixHits,
        Quantity::PrefixHitRate,
        Quantity::Preemptions,
        Quantity::SpecDrafts,
        Quantity::SpecDraftTokens,
        Quantity::SpecAccepted,
    ];

    /// The key in result files and in Lua.
    pub fn key(self) -> &'static str {
        match self {
            Quantity::Running => "running",
            Quantity::Waiting => "waiting",
            Quantity::KvCacheUsage => "kv_cache_usage",
            Quantity::PrefixQueries => "prefix_cache_queries",
            Quantity::PrefixHits => "prefix_cache_hits",
            Quantity::PrefixHitRate => "prefix_cache_hit_rate",
            Quantity::Preemptions => "preemptions",
            Quantity::SpecDrafts => "spec_decode_num_drafts",
            Quantity::SpecDraftTokens => "spec_decode_num_draft_tokens",
            Quantity::SpecAccepted => "spec_decode_num_accepted_tokens",
        }
    }

    /// Several engines (data parallel) add up, except ratios, whose largest is kept.
    fn is_ratio(self) -> bool {
        matches!(self, Quantity::KvCacheUsage | Quantity::PrefixHitRate)
    }
}

/// A metric name, the label that must match (name, value) if any, the server it
/// comes from, and the quantity it is.
type Mapping = (
    &'static str,
    Option<(&'static str, &'static str)>,
    &'static str,
    Quantity,
);

/// Known metric names. Counters are listed with `_total`, as the text format writes
/// them; older names of the same quantity follow the newer ones.
const KNOWN: &[Mapping] = &[
    ("vllm:num_requests_running", None, "vllm", Quantity::Running),
    ("vllm:num_requests_waiting", None, "vllm", Quantity::Waiting),
    (
        "vllm:kv_cache_usage_perc",
        None,
        "vllm",
        Quantity::KvCacheUsage,
    ),
    (
        "vllm:gpu_cache_usage_perc",
        None,
        "vllm",
        Quantity::KvCacheUsage,
    ),
    (
        "vllm:prefix_cache_queries_total",
        None,
        "vllm",
        Quantity::PrefixQueries,
    ),
    (
        "vllm:gpu_prefix_cache_queries_total",
        None,
        "vllm",
        Quantity::PrefixQueries,
    ),
    (
        "vllm:prefix_cache_hits_total",
        None,
        "vllm",
        Quantity::PrefixHits,
    ),
    (
        "vllm:gpu_prefix_cache_hits_total",
        None,
        "vllm",
        Quantity::PrefixHits,
    ),
    (
        "vllm:gpu_prefix_cache_hit_rate",
        None,
        "vllm",
        Quantity::PrefixHitRate,
    ),
    (
        "vllm:num_preemptions_total",
        None,
        "vllm",
        Quantity::Preemptions,
    ),
    // Speculative decoding (vLLM's vllm/v1/spec_decode/metrics.py; llama.cpp
    // exports the same counters under its prefix).
    (
        "vllm:spec_decode_num_drafts_total",
        None,
        "vllm",
        Quantity::SpecDrafts,
    ),
    (
        "vllm:spec_decode_num_draft_tokens_total",
        None,
        "vllm",
        Quantity::SpecDraftTokens,
    ),
    (
        "vllm:spec_decode_num_accepted_tokens_total",
        None,
        "vllm",
        Quantity::SpecAccepted,
    ),
    (
        "llamacpp:spec_decode_num_drafts_total",
        None,
        "llama.cpp",
        Quantity::SpecDrafts,
    ),
    (
        "llamacpp:spec_decode_num_draft_tokens_total",
        None,
        "llama.cpp",
        Quantity::SpecDraftTokens,
    ),
    (
        "llamacpp:spec_decode_num_accepted_tokens_total",
        None,
        "llama.cpp",
        Quantity::SpecAccepted,
    ),
    ("sglang:num_running_reqs", None, "sglang", Quantity::Running),
    ("sglang:num_queue_reqs", None, "sglang", Quantity::Waiting),
    ("sglang:token_usage", None, "sglang", Quantity::KvCacheUsage),
    (
        "sglang:cache_hit_rate",
        None,
        "sglang",
        Quantity::PrefixHitRate,
    ),
    (
        "sglang:num_retracted_reqs",
        None,
        "sglang",
        Quantity::Preemptions,
    ),
    ("tgi_batch_current_size", None, "tgi", Quantity::Running),
    ("tgi_queue_size", None, "tgi", Quantity::Waiting),
    (
        "llamacpp:requests_processing",
        None,
        "llama.cpp",
        Quantity::Running,
    ),
    (
        "llamacpp:requests_deferred",
        None,
        "llama.cpp",
        Quantity::Waiting,
    ),
    (
        "llamacpp:kv_cache_usage_ratio",
        None,
        "llama.cpp",
        Quantity::KvCacheUsage,
    ),
    (
        "nv_trt_llm_request_metrics",
        Some(("request_type", "active")),
        "tensorrt-llm",
        Quantity::Running,
    ),
    (
        "nv_inference_pending_request_count",
        None,
        "tensorrt-llm",
        Quantity::Waiting,
    ),
    (
        "nv_trt_llm_kv_cache_block_metrics",
        Some(("kv_cache_block_type", "fraction")),
        "tensorrt-llm",
        Quantity::KvCacheUsage,
    ),
];

/// The name of the metric on a sample or `# HELP`/`# TYPE` line.
fn line_metric(line: &str) -> &str {
    let l = line
        .strip_prefix("# HELP ")
        .or_else(|| line.strip_prefix("# TYPE "))
        .unwrap_or(line);
    let end = l.find(['{', ' ', '\t']).unwrap_or(l.len());
    &l[..end]
}

/// One reading of a metrics page: the server it looks like and the quantities found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// `vllm`, `sglang`, `tgi`, `llama.cpp`, `tensorrt-llm` (None: nothing known).
    pub source: Option<&'static str>,
    /// The quantities found on the page.
    pub values: BTreeMap<Quantity, f64>,
    /// Speculative decoding: accepted draft tokens by position in the draft (a
    /// counter per `position` label, summed over engines).
    pub accepted_per_pos: BTreeMap<u32, f64>,
}

/// The per-position counters of accepted draft tokens.
const PER_POSITION: &[&str] = &[
    "vllm:spec_decode_num_accepted_tokens_per_pos_total",
    "llamacpp:spec_decode_num_accepted_tokens_per_pos_total",
];

/// Reads the known quantities from a Prometheus text page. Unknown metrics are
/// ignored; an error means the known lines themselves did not parse.
pub fn read_page(page: &str) -> Result<Reading, String> {
    let mut kept = String::new();
    for line in page.lines() {
        let name = line_metric(line.trim_start());
        if KNOWN.iter().any(|k| k.0 == name) || PER_POSITION.contains(&name) {
            kept.push_str(line.trim_end());
            kept.push('\n');
        }
    }
    let mut r = Reading::default();
    if kept.is_empty() {
        return Ok(r);
    }
    let exp = openmetrics_parser::prometheus::parse_prometheus(&kept)
        .map_err(|e| format!("cannot parse the metrics page: {e:?}"))?;
    for name in PER_POSITION {
        let Some(fam) = exp
            .families
            .get(*name)
            .or_else(|| exp.families.get(name.trim_end_matches("_total")))
        else {
            continue;
        };
        for s in fam.iter_samples() {
            let Ok(ls) = s.get_labelset() else { continue };
            if ls.get_label_value("engine") == Some("total") {
                continue;
            }
            let Some(pos) = ls
                .get_label_value("position")
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            let v = match &s.value {
                PrometheusValue::Counter(c) => number(&c.value),
                PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => number(n),
                _ => continue,
            };
            if v.is_finite() {
                *r.accepted_per_pos.entry(pos).or_insert(0.0) += v;
            }
        }
    }
    let mut first_name: BTreeMap<Quantity, &str> = BTreeMap::new();
    for (name, label, source, q) in KNOWN {
        let Some(fam) = exp
            .families
            .get(*name)
            .or_else(|| exp.families.get(name.trim_end_matches("_total")))
        else {
            continue;
        };
        // An older name of a quantity already read is not added again.
        if first_name.get(q).is_some_and(|n| n != name) {
            continue;
        }
        let mut acc: Option<f64> = None;
        for s in fam.iter_samples() {
            // engine="total" is the sum of the engines beside it (moonbench's
            // simulator writes it with data_parallel), not another engine.
            if s.get_labelset()
                .is_ok_and(|ls| ls.get_label_value("engine") == Some("total"))
            {
                continue;
            }
            if let Some((lk, lv)) = label {
                let Ok(ls) = s.get_labelset() else { continue };
                if ls.get_label_value(lk) != Some(*lv) {
                    continue;
                }
            }
            let v = match &s.value {
                PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => number(n),
                PrometheusValue::Counter(c) => number(&c.value),
                _ => continue,
            };
            if !v.is_finite() {
                continue;
            }
            acc = Some(match acc {
                None => v,
                Some(a) if q.is_ratio() => a.max(v),
                Some(a) => a + v,
            });
        }
        if let Some(v) = acc {
            first_name.insert(*q, name);
            r.values.insert(*q, v);
            r.source.get_or_insert(source);
        }
    }
    Ok(r)
}

fn number(n: &MetricNumber) -> f64 {
    n.as_f64()
}

/// The readings of one run: a time series and where it came from.
#[derive(Debug, Clone, Default)]
pub struct ServerSeries {
    /// The server the names belong to.
    pub source: String,
    /// The page read (`http://host:port/metrics`).
    pub url: String,
    /// Seconds between readings.
    pub interval_s: f64,
    /// (seconds since the run's start, reading).
    pub samples: Vec<(f64, Reading)>,
}

impl ServerSeries {
    /// The quantities seen in any reading, in column order.
    fn columns(&self) -> Vec<Quantity> {
        Quantity::ALL
            .into_iter()
            .filter(|q| self.samples.iter().any(|(_, r)| r.values.contains_key(q)))
            .collect()
    }

    /// The values of `q` over time, `None` where a reading lacked it.
    pub fn column(&self, q: Quantity) -> Vec<Option<f64>> {
        self.samples
            .iter()
            .map(|(_, r)| r.values.get(&q).copied())
            .collect()
    }

    /// The summary: mean/max running and waiting, mean/max KV-cache usage,
    /// prefix-cache hit rate over the run (hits/queries between the first and last
    /// reading, or the mean of a reported rate) and preemptions during the run.
    pub fn summary(&self) -> Map<String, Value> {
        let mut m = Map::new();
        let present = |q: Quantity| -> Vec<f64> { self.column(q).into_iter().flatten().collect() };
        for q in [Quantity::Running, Quantity::Waiting, Quantity::KvCacheUsage] {
            let v = present(q);
            if !v.is_empty() {
                let mean = v.iter().sum::<f64>() / v.len() as f64;
                let max = v.iter().cloned().fold(f64::MIN, f64::max);
                m.insert(format!("mean_{}", q.key()), json!(mean));
                m.insert(format!("max_{}", q.key()), json!(max));
            }
        }
        let delta = |q: Quantity| -> Option<f64> {
            let v = present(q);
            Some((v.last()? - v.first()?).max(0.0))
        };
        match (delta(Quantity::PrefixHits), delta(Quantity::PrefixQueries)) {
            (Some(h), Some(q)) if q > 0.0 => {
                m.insert("prefix_cache_hit_rate".into(), json!(h / q));
            }
            _ => {
                let v = present(Quantity::PrefixHitRate);
                if !v.is_empty() {
                    m.insert(
                        "prefix_cache_hit_rate".into(),
                        json!(v.iter().sum::<f64>() / v.len() as f64),
                    );
                }
            }
        }
        if let Some(p) = delta(Quantity::Preemptions) {
            m.insert("preemptions".into(), json!(p));
        }
        if let Some(sd) = self.spec_decode() {
            m.extend(sd);
        }
        m.insert("samples".into(), json!(self.samples.len()));
        m
    }

    /// Speculative-decoding statistics over the run, from the counters' change
    /// between the first and last reading, under vLLM's result keys:
    /// `spec_decode_acceptance_rate` (% of draft tokens accepted),
    /// `spec_decode_acceptance_length` (1 + accepted per draft, the bonus token
    /// included), `spec_decode_num_drafts`, `spec_decode_draft_tokens`,
    /// `spec_decode_accepted_tokens` and `spec_decode_per_position_acceptance_rates`
    /// (accepted at each position per draft). `None` when no draft was made.
    pub fn spec_decode(&self) -> Option<Map<String, Value>> {
        let delta = |q: Quantity| -> Option<f64> {
            let v: Vec<f64> = self.column(q).into_iter().flatten().collect();
            Some((v.last()? - v.first()?).max(0.0))
        };
        let drafts = delta(Quantity::SpecDrafts)?;
        let draft_tokens = delta(Quantity::SpecDraftTokens)?;
        let accepted = delta(Quantity::SpecAccepted)?;
        if drafts <= 0.0 || draft_tokens <= 0.0 {
            return None;
        }
        let mut m = Map::new();
        m.insert(
            "spec_decode_acceptance_rate".into(),
            json!(100.0 * accepted / draft_tokens),
        );
        m.insert(
            "spec_decode_acceptance_length".into(),
            json!(1.0 + accepted / drafts),
        );
        m.insert("spec_decode_num_drafts".into(), json!(drafts as u64));
        m.insert(
            "spec_decode_draft_tokens".into(),
            json!(draft_tokens as u64),
        );
        m.insert("spec_decode_accepted_tokens".into(), json!(accepted as u64));
        let first = self.samples.first().map(|(_, r)| &r.accepted_per_pos);
        let last = self.samples.last().map(|(_, r)| &r.accepted_per_pos);
        if let (Some(a), Some(b)) = (first, last) {
            // A position first seen after the start counted from 0 (llama-server
            // writes the per-position lines only once it has drafted).
            if !b.is_empty() {
                let rates: Vec<f64> = b
                    .iter()
                    .map(|(pos, v)| (v - a.get(pos).copied().unwrap_or(0.0)).max(0.0) / drafts)
                    .collect();
                m.insert(
                    "spec_decode_per_position_acceptance_rates".into(),
                    json!(rates),
                );
            }
        }
        Some(m)
    }

    /// The JSON kept in result files under `server_metrics`: source, url, interval,
    /// summary, and the series as columns (`t` in seconds from the run's start).
    pub fn to_json(&self) -> Value {
        let mut series = Map::new();
        series.insert(
            "t".into(),
            json!(
                self.samples
                    .iter()
                    .map(|(t, _)| (t * 1000.0).round() / 1000.0)
                    .collect::<Vec<_>>()
            ),
        );
        for q in self.columns() {
            series.insert(q.key().into(), json!(self.column(q)));
        }
        json!({
            "source": self.source,
            "url": self.url,
            "interval_s": self.interval_s,
            "summary": self.summary(),
            "series": series,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM: &str =
        "# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"} 12.0
vllm:num_requests_running{engine=\"1\",model_name=\"Qwen/Qwen3-8B\"} 10.0
vllm:num_requests_running{engine=\"total\",model_name=\"Qwen/Qwen3-8B\"} 22.0
# HELP vllm:num_requests_waiting Number of requests waiting to be processed.
# TYPE vllm:num_requests_waiting gauge
vllm:num_requests_waiting{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"} 3.0
# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.
# TYPE vllm:kv_cache_usage_perc gauge
vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"} 0.25
vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"Qwen/Qwen3-8B\"} 0.5
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"} 1000.0
# HELP vllm:prefix_cache_queries_created Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_created gauge
vllm:prefix_cache_queries_created{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"} 1.7e+09
# HELP vllm:prefix_cache_hits_total Prefix cache hits, in terms of number of cached tokens.
# TYPE vllm:prefix_cache_hits_total counter
vllm:prefix_cache_hits_total{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"} 250.0
# HELP vllm:num_preemptions_total Cumulative number of preemption from the engine.
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{engine=\"0\",model_name=\"Qwen/Qwen3-8B\"} 2.0
# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.
# TYPE vllm:time_to_first_token_seconds histogram
vllm:time_to_first_token_seconds_bucket{engine=\"0\",le=\"0.001\",model_name=\"Qwen/Qwen3-8B\"} 0.0
weird line the grammar would reject {{{
";

    #[test]
    fn reads_vllm_names_and_adds_engines() {
        let r = read_page(VLLM).unwrap();
        assert_eq!(r.source, Some("vllm"));
        assert_eq!(
            r.values[&Quantity::Running],
            22.0,
            "engines add up; their total beside them is not added again"
        );
        assert_eq!(r.values[&Quantity::Waiting], 3.0);
        assert_eq!(
            r.values[&Quantity::KvCacheUsage],
            0.5,
            "ratios: the largest"
        );
        assert_eq!(r.values[&Quantity::PrefixQueries], 1000.0);
        assert_eq!(r.values[&Quantity::PrefixHits], 250.0);
        assert_eq!(r.values[&Quantity::Preemptions], 2.0);
    }

    #[test]
    fn reads_sglang_tgi_llamacpp_and_triton() {
        let sglang = "# HELP sglang:num_running_reqs The number of running requests.\n# TYPE sglang:num_running_reqs gauge\nsglang:num_running_reqs{model_name=\"m\"} 7.0\n# TYPE sglang:num_queue_reqs gauge\nsglang:num_queue_reqs{model_name=\"m\"} 1.0\n# TYPE sglang:token_usage gauge\nsglang:token_usage{model_name=\"m\"} 0.3\n# TYPE sglang:cache_hit_rate gauge\nsglang:cache_hit_rate{model_name=\"m\"} 0.6\n";
        let r = read_page(sglang).unwrap();
        assert_eq!(r.source, Some("sglang"));
        assert_eq!(
            (
                r.values[&Quantity::Running],
                r.values[&Quantity::PrefixHitRate]
            ),
            (7.0, 0.6)
        );
        let tgi = "# TYPE tgi_queue_size gauge\ntgi_queue_size 4\n# TYPE tgi_batch_current_size gauge\ntgi_batch_current_size 16\n";
        let r = read_page(tgi).unwrap();
        assert_eq!(r.source, Some("tgi"));
        assert_eq!(
            (r.values[&Quantity::Running], r.values[&Quantity::Waiting]),
            (16.0, 4.0)
        );
        let llama = "# HELP llamacpp:requests_processing Number of requests processing.\n# TYPE llamacpp:requests_processing gauge\nllamacpp:requests_processing 2\n# TYPE llamacpp:requests_deferred gauge\nllamacpp:requests_deferred 5\n";
        let r = read_page(llama).unwrap();
        assert_eq!(
            (r.source, r.values[&Quantity::Waiting]),
            (Some("llama.cpp"), 5.0)
        );
        let trt = "# TYPE nv_trt_llm_request_metrics gauge\nnv_trt_llm_request_metrics{model=\"tensorrt_llm\",request_type=\"max\",version=\"1\"} 64\nnv_trt_llm_request_metrics{model=\"tensorrt_llm\",request_type=\"active\",version=\"1\"} 9\n";
        let r = read_page(trt).unwrap();
        assert_eq!(
            (r.source, r.values[&Quantity::Running]),
            (Some("tensorrt-llm"), 9.0)
        );
        assert_eq!(
            read_page("# TYPE other gauge\nother 1\n").unwrap(),
            Reading::default()
        );
    }

    #[test]
    fn summary_uses_counter_deltas() {
        let mut s = ServerSeries::default();
        let at = |run: f64, hits: f64, q: f64| {
            let mut r = Reading::default();
            r.values.insert(Quantity::Running, run);
            r.values.insert(Quantity::PrefixHits, hits);
            r.values.insert(Quantity::PrefixQueries, q);
            r
        };
        s.samples.push((0.0, at(0.0, 100.0, 1000.0)));
        s.samples.push((1.0, at(4.0, 400.0, 2000.0)));
        s.samples.push((2.0, at(2.0, 600.0, 3000.0)));
        let m = s.summary();
        assert_eq!(m["mean_running"], 2.0);
        assert_eq!(m["max_running"], 4.0);
        assert_eq!(m["prefix_cache_hit_rate"], 0.25, "(600-100)/(3000-1000)");
        let j = s.to_json();
        assert_eq!(j["series"]["t"], json!([0.0, 1.0, 2.0]));
        assert_eq!(j["series"]["running"], json!([0.0, 4.0, 2.0]));
        assert!(j["series"].get("waiting").is_none());
    }

    /// vLLM's spec-decode counters (names and labels as vllm/v1/spec_decode/metrics.py
    /// exports them) read before and after a run give vLLM's result keys.
    #[test]
    fn spec_decode_stats_from_counter_deltas() {
        let page = |drafts: u32, tokens: u32, acc: u32, pos: [u32; 3]| {
            let mut p = format!(
                "# HELP vllm:spec_decode_num_drafts_total Number of spec decoding drafts.\n\
                 # TYPE vllm:spec_decode_num_drafts_total counter\n\
                 vllm:spec_decode_num_drafts_total{{engine=\"0\",model_name=\"m\"}} {drafts}.0\n\
                 # TYPE vllm:spec_decode_num_draft_tokens_total counter\n\
                 vllm:spec_decode_num_draft_tokens_total{{engine=\"0\",model_name=\"m\"}} {tokens}.0\n\
                 # TYPE vllm:spec_decode_num_accepted_tokens_total counter\n\
                 vllm:spec_decode_num_accepted_tokens_total{{engine=\"0\",model_name=\"m\"}} {acc}.0\n\
                 # TYPE vllm:spec_decode_num_accepted_tokens_per_pos_total counter\n"
            );
            for (i, v) in pos.iter().enumerate() {
                p.push_str(&format!(
                    "vllm:spec_decode_num_accepted_tokens_per_pos_total{{engine=\"0\",model_name=\"m\",position=\"{i}\"}} {v}.0\n"
                ));
            }
            read_page(&p).unwrap()
        };
        let before = page(100, 300, 150, [80, 50, 20]);
        assert_eq!(before.source, Some("vllm"));
        assert_eq!(before.accepted_per_pos[&2], 20.0);
        let mut s = ServerSeries::default();
        s.samples.push((0.0, before));
        s.samples.push((5.0, page(400, 1200, 810, [320, 260, 230])));
        let m = s.spec_decode().unwrap();
        // 660 of 900 draft tokens accepted over 300 drafts.
        assert!(
            (m["spec_decode_acceptance_rate"].as_f64().unwrap() - 100.0 * 660.0 / 900.0).abs()
                < 1e-9
        );
        assert!((m["spec_decode_acceptance_length"].as_f64().unwrap() - 3.2).abs() < 1e-9);
        assert_eq!(m["spec_decode_num_drafts"], 300);
        assert_eq!(m["spec_decode_draft_tokens"], 900);
        assert_eq!(m["spec_decode_accepted_tokens"], 660);
        assert_eq!(
            m["spec_decode_per_position_acceptance_rates"],
            json!([0.8, 0.7, 0.7])
        );
        assert_eq!(s.summary()["spec_decode_num_drafts"], 300);
        // No drafts during the run: no statistics.
        let mut idle = ServerSeries::default();
        idle.samples.push((0.0, page(5, 15, 9, [4, 3, 2])));
        idle.samples.push((1.0, page(5, 15, 9, [4, 3, 2])));
        assert!(idle.spec_decode().is_none());
    }
}
