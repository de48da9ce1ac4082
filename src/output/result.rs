//! A run's result: what was asked, what was measured, and its vLLM-compatible JSON
//! (`--save-result`): vLLM's key names and order, then moonbench's own keys.

use std::io::Write;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::engine::RunOutcome;
use crate::engine::schedule::Shape;
use crate::metrics::{Metric, Slo, Summary, SummaryOptions, summarize};

/// What a run was asked to do (the header of its result).
#[derive(Debug, Clone, Default)]
pub struct RunInfo {
    /// Start time, `YYYYmmdd-HHMMSS` (local time), as vLLM writes it.
    pub date: String,
    /// Backend name.
    pub backend: String,
    /// Label (file-name prefix); `None` means the backend name.
    pub label: Option<String>,
    /// Model id.
    pub model_id: String,
    /// Tokenizer id.
    pub tokenizer_id: String,
    /// Requests planned.
    pub num_prompts: u64,
    /// Requested rate (`None` = inf).
    pub request_rate: Option<f64>,
    /// Burstiness factor.
    pub burstiness: f64,
    /// Concurrency limit.
    pub max_concurrency: Option<usize>,
    /// Base URL of the server (no credentials).
    pub base_url: String,
    /// Endpoint path.
    pub endpoint: String,
    /// Warm-up requests sent.
    pub num_warmups: usize,
    /// vLLM's ramp-up (`--ramp-up-strategy`), if the run used one.
    pub ramp: Option<RampInfo>,
    /// The requests were sent at times the script gave (a list, a function or a
    /// trace): there was no configured rate.
    pub custom_schedule: bool,
}

/// A ramp-up as vLLM records it.
#[derive(Debug, Clone, PartialEq)]
pub struct RampInfo {
    /// `linear` or `exponential`.
    pub strategy: Shape,
    /// Rate of the first request.
    pub start: f64,
    /// Rate of the last request.
    pub end: f64,
    /// Requests the ramp spans.
    pub n: u64,
}

impl RampInfo {
    /// The ramp of an arrival process, if it is vLLM's kind.
    pub fn of(a: &crate::engine::Arrival) -> Option<RampInfo> {
        match a {
            crate::engine::Arrival::RampByIndex {
                from, to, n, shape, ..
            } => Some(RampInfo {
                strategy: *shape,
                start: *from,
                end: *to,
                n: *n,
            }),
            _ => None,
        }
    }

    /// The rate of request `i`.
    pub fn rate(&self, i: u64) -> f64 {
        let p = i as f64 / self.n.saturating_sub(1).max(1) as f64;
        self.strategy.at(self.start, self.end, p)
    }
}

/// A number as vLLM's integer flags print it (`5`, or `2.5` if not whole).
fn int_or_float(v: f64) -> Value {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        json!(v as i64)
    } else {
        json!(v)
    }
}

/// How results are summarized by default.
#[derive(Debug, Clone)]
pub struct ResultOptions {
    /// Percentiles reported.
    pub percentiles: Vec<f64>,
    /// vLLM metrics reported (`--percentile-metrics`).
    pub metrics: Vec<Metric>,
    /// Goodput objectives.
    pub slo: Slo,
}

impl Default for ResultOptions {
    fn default() -> Self {
        ResultOptions {
            percentiles: vec![50.0, 90.0, 95.0, 99.0],
            metrics: Metric::VLLM.to_vec(),
            slo: Slo::default(),
        }
    }
}

/// Everything known about a finished run.
#[derive(Debug)]
pub struct RunResult {
    /// What was asked.
    pub info: RunInfo,
    /// What was measured.
    pub outcome: RunOutcome,
    /// Default summary settings.
    pub options: ResultOptions,
}

/// Formats a rate as Python prints a float (`inf`, `10.0`, `2.5`), for file names.
pub fn py_float(v: Option<f64>) -> String {
    match v {
        None => "inf".into(),
        Some(x) if x.is_infinite() => "inf".into(),
        Some(x) if x.fract() == 0.0 && x.abs() < 1e16 => format!("{x:.1}"),
        Some(x) => format!("{x}"),
    }
}

impl RunResult {
    /// The summary with the given settings (defaults: the run's own).
    pub fn summary_with(&self, opts: &ResultOptions) -> Summary {
        let so = SummaryOptions {
            percentiles: opts.percentiles.clone(),
            slo: opts.slo.clone(),
            requested_rate: self.info.request_rate,
        };
        summarize(&self.outcome.records, self.outcome.duration(), &so)
    }

    /// vLLM's default result file name:
    /// `{label or backend}-{rate}qps[-concurrency{N}]-{model}-{date}.json`.
    pub fn default_filename(&self) -> String {
        let label = self
            .info
            .label
            .clone()
            .unwrap_or_else(|| self.info.backend.clone());
        let model = self
            .info
            .model_id
            .rsplit('/')
            .next()
            .unwrap_or(&self.info.model_id);
        let conc = self
            .info
            .max_concurrency
            .map(|c| format!("-concurrency{c}"))
            .unwrap_or_default();
        if let Some(r) = &self.info.ramp {
            return format!(
                "{label}-ramp-up-{}-{}qps-{}qps{conc}-{model}-{}.json",
                r.strategy.name(),
                int_or_float(r.start),
                int_or_float(r.end),
                self.info.date
            );
        }
        format!(
            "{label}-{}qps{conc}-{model}-{}.json",
            py_float(self.info.request_rate),
            self.info.date
        )
    }

    /// vLLM's `rps_change_events`: each time ⌊rate⌋ of the ramp rises, the integer
    /// rate and the wall-clock time its first request was scheduled.
    fn rps_change_events(&self, r: &RampInfo) -> Value {
        let now_wall = chrono::Local::now();
        let now_ns = crate::clock::now_ns();
        let mut last = -1i64;
        let mut events = Vec::new();
        let mut recs: Vec<_> = self.outcome.records.iter().filter(|x| !x.warmup).collect();
        recs.sort_by_key(|x| x.index);
        for rec in recs {
            let rps = r.rate(rec.index).floor() as i64;
            if rps > last {
                last = rps;
                let back =
                    chrono::Duration::nanoseconds(now_ns.saturating_sub(rec.scheduled_ns) as i64);
                let ts = (now_wall - back)
                    .naive_local()
                    .format("%Y-%m-%dT%H:%M:%S%.6f");
                events.push(json!({"rps": rps, "timestamp": ts.to_string()}));
            }
        }
        json!(events)
    }

    /// The result as JSON: vLLM's keys (with `detailed`, the per-request arrays),
    /// `metadata` after the header as vLLM places it, then moonbench's keys.
    pub fn to_json(
        &self,
        opts: &ResultOptions,
        detailed: bool,
        metadata: &[(String, Value)],
    ) -> Map<String, Value> {
        let i = &self.info;
        let s = self.summary_with(opts);
        let mut m = Map::new();
        m.insert("date".into(), json!(i.date));
        m.insert("endpoint_type".into(), json!(i.backend));
        m.insert("backend".into(), json!(i.backend));
        m.insert("label".into(), json!(i.label));
        m.insert("model_id".into(), json!(i.model_id));
        m.insert("tokenizer_id".into(), json!(i.tokenizer_id));
        m.insert("num_prompts".into(), json!(i.num_prompts));
        for (k, v) in metadata {
            m.insert(k.clone(), v.clone());
        }
        m.insert(
            "request_rate".into(),
            if i.custom_schedule {
                Value::Null
            } else {
                i.request_rate
                    .filter(|r| r.is_finite())
                    .map_or(json!("inf"), |r| json!(r))
            },
        );
        if i.custom_schedule {
            m.insert("schedule".into(), json!("custom"));
        }
        m.insert("burstiness".into(), json!(i.burstiness));
        m.insert("max_concurrency".into(), json!(i.max_concurrency));
        if let Some(r) = &i.ramp {
            m.insert("ramp_up_strategy".into(), json!(r.strategy.name()));
            m.insert("ramp_up_start_rps".into(), int_or_float(r.start));
            m.insert("ramp_up_end_rps".into(), int_or_float(r.end));
            m.insert("rps_change_events".into(), self.rps_change_events(r));
        }
        m.extend(s.vllm_map(&opts.metrics, "request_goodput"));
        if detailed {
            let recs: Vec<_> = self.outcome.records.iter().filter(|r| !r.warmup).collect();
            let t0 = self.outcome.t0_ns;
            m.insert(
                "input_lens".into(),
                json!(recs.iter().map(|r| r.prompt_tokens).collect::<Vec<_>>()),
            );
            m.insert(
                "output_lens".into(),
                json!(
                    recs.iter()
                        .map(|r| if r.success() { r.output_tokens } else { 0 })
                        .collect::<Vec<_>>()
                ),
            );
            m.insert(
                "ttfts".into(),
                json!(
                    recs.iter()
                        .map(|r| r.ttft().unwrap_or(0.0))
                        .collect::<Vec<_>>()
                ),
            );
            m.insert(
                "latencies".into(),
                json!(recs.iter().map(|r| r.e2el()).collect::<Vec<_>>()),
            );
            m.insert(
                "itls".into(),
                json!(recs.iter().map(|r| r.itls()).collect::<Vec<_>>()),
            );
            m.insert(
                "start_times".into(),
                json!(
                    recs.iter()
                        .map(|r| (r.sent_ns as f64 - t0 as f64) / 1e9)
                        .collect::<Vec<_>>()
                ),
            );
            m.insert(
                "generated_texts".into(),
                json!(recs.iter().map(|r| r.text.as_str()).collect::<Vec<_>>()),
            );
            m.insert(
                "errors".into(),
                json!(
                    recs.iter()
                        .map(|r| r.error.as_ref().map_or("", |e| e.message.as_str()))
                        .collect::<Vec<_>>()
                ),
            );
        }
        m.extend(s.extra_map());
        let o = &self.outcome;
        m.insert("partial".into(), json!(o.partial));
        if let Some(why) = &o.stopped {
            m.insert("stopped".into(), json!(why));
        }
        m.insert("preconnected_connections".into(), json!(o.preconnected));
        m.insert("num_warmups".into(), json!(i.num_warmups));
        m.insert("percentiles".into(), json!(opts.percentiles));
        m.insert(
            "slo".into(),
            json!({"ttft_ms": opts.slo.ttft_ms, "tpot_ms": opts.slo.tpot_ms, "e2el_ms": opts.slo.e2el_ms}),
        );
        m.insert("base_url".into(), json!(i.base_url));
        m.insert("endpoint".into(), json!(i.endpoint));
        m.insert(
            "client_health".into(),
            serde_json::to_value(&o.health).unwrap_or(Value::Null),
        );
        if let Some(u) = crate::metrics::summary::users_map(&o.records, &opts.percentiles) {
            m.insert("users".into(), Value::Object(u));
        }
        if let Some(sm) = &o.server_metrics {
            m.insert("server_metrics".into(), sm.to_json());
        }
        if !o.notes.is_empty() {
            m.insert("notes".into(), json!(o.notes));
        }
        m.insert("moonbench_version".into(), json!(env!("CARGO_PKG_VERSION")));
        m
    }

    /// Writes the JSON to `path` (one line, as vLLM), creating its directory.
    /// With `append`, adds it as a new line to an existing file (`--append-result`).
    pub fn save(&self, path: &Path, json: &Map<String, Value>, append: bool) -> Result<(), String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create directory {}: {e}", dir.display()))?;
        }
        let text = serde_json::to_string(json).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .append(append)
                .truncate(!append)
                .open(path)?;
            if append && f.metadata()?.len() > 0 {
                f.write_all(b"\n")?;
            }
            f.write_all(text.as_bytes())
        };
        write().map_err(|e| format!("cannot write result file {}: {e}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_names() {
        assert_eq!(py_float(None), "inf");
        assert_eq!(py_float(Some(10.0)), "10.0");
        assert_eq!(py_float(Some(2.5)), "2.5");
    }

    #[test]
    fn vllm_keys_in_vllm_order() {
        let r = RunResult {
            info: RunInfo {
                date: "20260101-000000".into(),
                backend: "vllm".into(),
                model_id: "Org/M".into(),
                max_concurrency: Some(8),
                ..Default::default()
            },
            outcome: RunOutcome::default(),
            options: ResultOptions::default(),
        };
        assert_eq!(
            r.default_filename(),
            "vllm-infqps-concurrency8-M-20260101-000000.json"
        );
        let j = r.to_json(&r.options, true, &[("gpu".into(), json!("A100"))]);
        let keys: Vec<&str> = j.keys().map(|k| k.as_str()).collect();
        let pos = |k: &str| {
            keys.iter()
                .position(|x| *x == k)
                .unwrap_or_else(|| panic!("missing {k}"))
        };
        for k in [
            "date",
            "backend",
            "model_id",
            "tokenizer_id",
            "num_prompts",
            "request_rate",
            "burstiness",
            "max_concurrency",
            "duration",
            "completed",
            "total_input_tokens",
            "total_output_tokens",
            "request_throughput",
            "request_goodput",
            "output_throughput",
            "total_token_throughput",
            "input_lens",
            "output_lens",
            "ttfts",
            "itls",
            "generated_texts",
            "errors",
            "mean_ttft_ms",
            "median_ttft_ms",
            "std_ttft_ms",
            "p99_ttft_ms",
            "mean_e2el_ms",
        ] {
            pos(k);
        }
        assert!(pos("gpu") < pos("request_rate") && pos("num_prompts") < pos("gpu"));
        assert!(pos("date") < pos("duration") && pos("duration") < pos("mean_ttft_ms"));
        assert!(pos("mean_ttft_ms") < pos("partial"));
        assert_eq!(j["request_rate"], "inf");
        assert!(!j.contains_key("api_key"));
    }
}
