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
    /// This process's shard of a sharded run (`None`: the whole run).
    pub shard: Option<crate::engine::shard::Shard>,
    /// The common start it waited for (`--start-at`, Unix seconds).
    pub start_at: Option<f64>,
    /// What the run sends, fingerprinted (the same in every shard of one run).
    pub fingerprint: String,
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
    /// Also report the steady state (ramp-up and drain left out).
    pub steady_state: bool,
}

impl Default for ResultOptions {
    fn default() -> Self {
        ResultOptions {
            percentiles: vec![50.0, 90.0, 95.0, 99.0],
            metrics: Metric::VLLM.to_vec(),
            slo: Slo::default(),
            steady_state: false,
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
            pooling: self.pooling(),
            steady_state: opts.steady_state,
        };
        if let Some((_, s)) = self
            .outcome
            .summaries
            .lock()
            .unwrap()
            .iter()
            .find(|(o, _)| *o == so)
        {
            return s.clone();
        }
        let s = match &self.outcome.digest {
            Some(d) => d.summary(self.outcome.duration(), &so),
            None => summarize(&self.outcome.records, self.outcome.duration(), &so),
        };
        self.outcome.summaries.lock().unwrap().push((so, s.clone()));
        s
    }

    /// An error naming `what` when this run kept no records in memory (bounded).
    pub fn needs_records(&self, what: &str) -> Result<(), String> {
        match &self.outcome.digest {
            Some(_) => Err(format!(
                "{what} needs every request's record, and this run kept none in memory (bounded); \
                 they are in its records file (records_file; moonbench bench: --save-records), one JSON object per line"
            )),
            None => Ok(()),
        }
    }

    /// Whether the run used a pooling backend (embeddings, pooling, rerank).
    pub fn pooling(&self) -> bool {
        crate::backend::Backend::parse(&self.info.backend).is_ok_and(|b| b.api.pooling())
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
        if let Some(s) = i.shard {
            m.insert(
                "shard".into(),
                json!({"index": s.index, "count": s.count, "run": i.fingerprint,
                       "t0_unix": self.outcome.t0_unix, "clock": self.outcome.clock}),
            );
        }
        if let Some(t) = i.start_at {
            m.insert("start_at".into(), json!(t));
        }
        if let Some(r) = &i.ramp {
            m.insert("ramp_up_strategy".into(), json!(r.strategy.name()));
            m.insert("ramp_up_start_rps".into(), int_or_float(r.start));
            m.insert("ramp_up_end_rps".into(), int_or_float(r.end));
            m.insert("rps_change_events".into(), self.rps_change_events(r));
        }
        // vLLM reports its queue metrics only with a concurrency cap (the queue-
        // inclusive E2EL also needs a finite rate).
        let finite_rate = i.request_rate.is_some_and(|r| r.is_finite()) && !i.custom_schedule;
        let selected: Vec<Metric> = opts
            .metrics
            .iter()
            .copied()
            .filter(|m| match m {
                Metric::ClientQueueTime => i.max_concurrency.is_some(),
                Metric::E2elIncludingClientQueue => i.max_concurrency.is_some() && finite_rate,
                _ => true,
            })
            .collect();
        m.extend(s.vllm_map(&selected, "request_goodput"));
        // vLLM writes these per-request lists even without --save-detailed; a
        // bounded run has them in its records file only.
        let bounded = self.outcome.digest.is_some();
        let recs: Vec<_> = self.outcome.records.iter().filter(|r| !r.warmup).collect();
        let t0 = self.outcome.t0_ns;
        if !bounded {
            m.insert(
                "latencies".into(),
                json!(recs.iter().map(|r| r.e2el()).collect::<Vec<_>>()),
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
                "queue_times".into(),
                json!(recs.iter().map(|r| r.schedule_lag()).collect::<Vec<_>>()),
            );
        }
        // Inverse real-time factor: seconds of audio per second (0 without audio, as vLLM writes it).
        m.insert("rtfx".into(), json!(s.rtfx.unwrap_or(0.0)));
        if (detailed || self.pooling()) && !bounded {
            // vLLM's pooling result keeps these two even without --save-detailed.
            m.insert(
                "input_lens".into(),
                json!(recs.iter().map(|r| r.prompt_tokens).collect::<Vec<_>>()),
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
        if detailed && !bounded {
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
                "itls".into(),
                json!(recs.iter().map(|r| r.itls()).collect::<Vec<_>>()),
            );
            // Only a run that kept its texts has them (`keep_text`); an empty
            // string per request would read as empty answers.
            if self.outcome.texts_kept {
                m.insert(
                    "generated_texts".into(),
                    json!(recs.iter().map(|r| r.text.as_str()).collect::<Vec<_>>()),
                );
            }
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
        if let Some(p) = crate::metrics::summary::probes_map(&o.probes) {
            m.extend(p);
        }
        if let Some(u) = crate::metrics::summary::users_map(&o.records, &opts.percentiles) {
            m.insert("users".into(), Value::Object(u));
        }
        if let Some(sm) = &o.server_metrics {
            // vLLM writes its spec-decode statistics at the top level.
            if let Some(sd) = sm.spec_decode() {
                m.extend(sd);
            }
            m.insert("server_metrics".into(), sm.to_json());
        }
        let mut notes = o.notes.clone();
        if bounded {
            notes.push("bounded run: no per-request lists (latencies, start_times, queue_times); every record is in the records file".into());
        }
        if !notes.is_empty() {
            m.insert("notes".into(), json!(notes));
        }
        // A shard keeps its records, exactly, for `moonbench merge`.
        if let (Some(_), Some(d)) = (i.shard, &o.digest) {
            // A bounded shard: its digest, which adds up with the others'.
            m.insert(
                "shard_digest".into(),
                json!({"t0_ns": o.t0_ns, "end_ns": o.end_ns, "digest": d.to_json()}),
            );
        } else if i.shard.is_some() {
            let recs: Vec<_> = o.records.iter().filter(|r| !r.warmup).collect();
            m.insert(
                "shard_records".into(),
                json!({"t0_ns": o.t0_ns, "end_ns": o.end_ns, "records": recs}),
            );
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

/// The top-level keys of a result (`res:summary()`, `res:save`, `bench`'s result
/// file): key (`M` stands for a metric of [`METRIC_DOCS`], `P` for a percentile
/// label such as `99` or `99.9`), type or unit, meaning in English and Chinese.
/// The API reference prints it; a test checks it against what [`RunResult::to_json`]
/// writes.
pub const RESULT_FIELDS: &[(&str, &str, &str, &str)] = &[
    (
        "date",
        "string",
        "start time, YYYYmmdd-HHMMSS, local time (vLLM)",
        "开始时间，YYYYmmdd-HHMMSS，本地时间（vLLM）",
    ),
    (
        "endpoint_type / backend",
        "string",
        "the backend name (vLLM writes both)",
        "backend 名（vLLM 两个键都写）",
    ),
    (
        "label",
        "string or null",
        "the run's label",
        "这次运行的标签",
    ),
    (
        "model_id",
        "string",
        "the model named in requests",
        "请求里的模型名",
    ),
    (
        "tokenizer_id",
        "string",
        "the tokenizer prompts were counted with",
        "统计提示长度所用的分词器",
    ),
    (
        "num_prompts",
        "integer",
        "requests planned",
        "计划发送的请求数",
    ),
    (
        "request_rate",
        "req/s, \"inf\" or null",
        "the configured rate (null when the script gave the send times)",
        "设定的速率（脚本自己给出发送时刻时为 null）",
    ),
    (
        "schedule",
        "string",
        "\"custom\" when the script gave the send times (no configured rate)",
        "脚本自己给出发送时刻时为 \"custom\"（没有设定速率）",
    ),
    (
        "burstiness",
        "number",
        "gamma shape of the arrival gaps (1: Poisson)",
        "到达间隔的 gamma 形状参数（1：泊松）",
    ),
    (
        "max_concurrency",
        "integer or null",
        "the concurrency cap",
        "并发上限",
    ),
    (
        "ramp_up_strategy / ramp_up_start_rps / ramp_up_end_rps",
        "string / req/s / req/s",
        "vLLM's ramp-up, when the run used one",
        "vLLM 的速率爬升（用了才有）",
    ),
    (
        "rps_change_events",
        "list of tables",
        "vLLM's ramp-up: each integer rate and when its first request was scheduled",
        "vLLM 的速率爬升：每个整数速率及其第一个请求的调度时刻",
    ),
    (
        "duration",
        "s",
        "from the first send to the end of the last measured request",
        "从第一次发送到最后一个被测请求结束",
    ),
    (
        "completed",
        "integer",
        "successful requests",
        "成功的请求数",
    ),
    (
        "failed",
        "integer",
        "failed requests (not counting those cut by Ctrl-C)",
        "失败的请求数（不含被 Ctrl-C 打断的）",
    ),
    (
        "total_input_tokens",
        "tokens",
        "prompt tokens of successful requests (by the dataset's tokenizer)",
        "成功请求的提示 token 总数（按数据集的分词器）",
    ),
    (
        "total_output_tokens",
        "tokens",
        "output tokens of successful requests",
        "成功请求的输出 token 总数",
    ),
    (
        "total_input_sequences",
        "sequences",
        "pooling backends: input sequences of successful requests (a batch counts its prompts, a rerank its documents)",
        "池化类后端：成功请求的输入序列总数（一批按其中的提示数计，重排序按文档数计）",
    ),
    (
        "input_sequence_throughput",
        "sequences/s",
        "pooling backends: total_input_sequences / duration",
        "池化类后端：total_input_sequences / duration",
    ),
    (
        "request_throughput",
        "req/s",
        "completed / duration",
        "completed / duration",
    ),
    (
        "request_goodput",
        "req/s or null",
        "requests meeting every SLO / duration (null without an SLO)",
        "满足全部 SLO 的请求数 / duration（没有 SLO 时为 null）",
    ),
    (
        "output_throughput",
        "tok/s",
        "output tokens / duration",
        "输出 token 数 / duration",
    ),
    (
        "total_token_throughput",
        "tok/s",
        "(input + output tokens) / duration",
        "（输入 + 输出 token 数）/ duration",
    ),
    (
        "max_output_tokens_per_s",
        "tok/s",
        "most output tokens received in any one-second window (never below the mean)",
        "任意一秒窗口内收到的最多输出 token 数（不低于平均值）",
    ),
    (
        "max_concurrent_requests",
        "integer",
        "most requests in flight at one instant",
        "同一时刻在途请求的最大数",
    ),
    (
        "mean_M_ms / median_M_ms / std_M_ms / pP_M_ms",
        "ms",
        "the distribution of metric M over successful requests; vLLM's metrics only those chosen by `metrics`, moonbench's always",
        "指标 M 在成功请求上的分布；vLLM 的指标只给 `metrics` 选中的，moonbench 的总是给出",
    ),
    (
        "max_M_ms",
        "ms",
        "the largest value of moonbench's metric M",
        "moonbench 指标 M 的最大值",
    ),
    (
        "latencies / start_times / queue_times",
        "list of s",
        "per request, always (as vLLM): E2EL, send time from the start, client queue time (sent minus scheduled)",
        "逐请求（总是写出，同 vLLM）：E2EL、从开始算起的发送时刻、客户端排队时间（实际发送减计划发送）",
    ),
    (
        "shard",
        "object",
        "a sharded run's part: {index, count, run (a fingerprint of the flags, equal in every shard of one run), t0_unix (the wall clock when its clock started), clock (this machine's clock against the server's Date header just before the start: {offset_s, server minus this clock; uncertainty_s, half the interval; probes}, or null without a Date)}; this file holds the requests at schedule positions k with k mod count = index, and max_concurrency is this shard's part",
        "分片运行中本进程的部分：{index, count, run（参数指纹，同一次运行的各分片相同）, t0_unix（本分片开始计时时的墙上时钟）, clock（开始前用服务器 Date 响应头测得的本机时钟偏差：{offset_s 服务器时钟减本机时钟；uncertainty_s 区间半宽；probes 探测次数}，服务器无 Date 时为 null）}；本文件只含调度序号 k 满足 k mod count = index 的请求，max_concurrency 为本分片分到的部分",
    ),
    (
        "merged_shards",
        "int",
        "a merged result (moonbench merge): how many shards' files it was made from",
        "合并结果（moonbench merge）：由多少个分片的文件合并而来",
    ),
    (
        "shard_start_skew_s",
        "float",
        "a merged result: seconds between the earliest and the latest shard's start (warned above 0.1 s)",
        "合并结果：最早与最晚开始的分片相差的秒数（超过 0.1 秒会警告）",
    ),
    (
        "shard_clock_disagreement_s",
        "float",
        "a merged result: at least how far apart the shards' clocks are, from each shard's offset against the server's Date header (0: consistent with agreeing clocks; null: a shard measured none)",
        "合并结果：根据各分片相对服务器 Date 响应头测得的时钟偏差，各分片时钟至少相差多少秒（0 表示与时钟一致相符；null 表示有分片未测得）",
    ),
    (
        "shard_timeline",
        "string",
        "a merged result: how the shards' records were placed on one timeline: wall_clock (each shard's own clock), or server_date (by the server's clock, when the shards' clocks provably disagree)",
        "合并结果：各分片记录如何放到同一时间轴上：wall_clock（各分片自己的时钟），或 server_date（各分片时钟确有分歧时，按服务器时钟）",
    ),
    (
        "shard_records",
        "object",
        "a shard's measured requests, every field in nanoseconds of its own clock ({t0_ns, end_ns, records}), for moonbench merge",
        "分片的全部测量请求（{t0_ns, end_ns, records}，时间为本进程时钟的纳秒），供 moonbench merge 使用",
    ),
    (
        "shard_digest",
        "object",
        "a bounded shard's digest instead of its records ({t0_ns, end_ns, digest}: totals, HDR histograms per metric, tokens and requests per millisecond), for moonbench merge",
        "有界分片用摘要代替记录（{t0_ns, end_ns, digest}：合计、每个指标的 HDR 直方图、每毫秒的 token 与请求数），供 moonbench merge 使用",
    ),
    (
        "start_at",
        "s",
        "the common start (Unix seconds, --start-at) this process waited for before its clock started",
        "本进程开始计时前等待的共同开始时间（Unix 秒，--start-at）",
    ),
    (
        "rtfx",
        "number",
        "vLLM's inverse real-time factor: seconds of audio sent by successful requests per second of the run (0 without audio)",
        "vLLM 的逆实时因子：每秒运行时间内成功请求发送的音频秒数（没有音频时为 0）",
    ),
    (
        "input_lens / output_lens",
        "list of tokens",
        "per request (with detailed), as vLLM's --save-detailed",
        "逐请求（detailed 时），同 vLLM 的 --save-detailed",
    ),
    (
        "ttfts",
        "list of s",
        "per request (with detailed): TTFT",
        "逐请求（detailed 时）：TTFT",
    ),
    (
        "itls",
        "list of lists of s",
        "per request (with detailed): its inter-token latencies",
        "逐请求（detailed 时）：它的 token 间隔",
    ),
    (
        "generated_texts / errors",
        "list of strings",
        "per request (with detailed): the answer, the error (\"\" if none)",
        "逐请求（detailed 时）：回答、错误（没有则为 \"\"）",
    ),
    (
        "cancelled",
        "integer",
        "requests cut off by Ctrl-C or SIGTERM",
        "被 Ctrl-C 或 SIGTERM 打断的请求数",
    ),
    (
        "total_server_input_tokens",
        "tokens or null",
        "prompt tokens the server reported (usage.prompt_tokens)",
        "服务器报告的提示 token 总数（usage.prompt_tokens）",
    ),
    (
        "total_reasoning_tokens / total_answer_tokens",
        "tokens",
        "output tokens of reasoning, and of the answer after it",
        "输出中推理部分与其后回答部分的 token 数",
    ),
    (
        "goodput_ratio",
        "0–1 or null",
        "share of successful requests meeting every SLO",
        "满足全部 SLO 的成功请求比例",
    ),
    (
        "peak_in_flight",
        "integer",
        "exact peak of requests in flight",
        "在途请求数的精确峰值",
    ),
    (
        "new_connections",
        "integer",
        "requests that opened a new connection after the clock started",
        "计时开始后新建连接的请求数",
    ),
    (
        "achieved_request_rate",
        "req/s or null",
        "the send rate reached: (n − 1) / (last send − first send)",
        "实际达到的发送速率：(n − 1) / (最后发送 − 最先发送)",
    ),
    (
        "errors_by_kind",
        "table",
        "failures counted by error_kind (http_500, timeout, ...)",
        "按 error_kind 统计的失败数（http_500、timeout 等）",
    ),
    (
        "short_outputs",
        "integer",
        "answers shorter than an exact length asked for (ignore_eos)",
        "比要求的确切长度（ignore_eos）短的回答数",
    ),
    (
        "summary_precision",
        "string (bounded runs)",
        "how a run that kept no records (--bounded) made its numbers: percentiles from HDR histograms, their precision",
        "未在内存中保留记录的运行（--bounded）如何得出数值：百分位来自 HDR 直方图及其精度",
    ),
    (
        "partial",
        "boolean",
        "the run was interrupted (Ctrl-C, an error)",
        "运行被中断（Ctrl-C、出错）",
    ),
    (
        "stopped",
        "string",
        "why the script stopped the run (mb.stop or on_response), when it did",
        "脚本结束运行的原因（mb.stop 或 on_response），有才写",
    ),
    (
        "preconnected_connections",
        "integer",
        "connections opened before the clock started",
        "计时开始前建立的连接数",
    ),
    (
        "num_warmups",
        "integer",
        "warm-up requests sent (left out of every statistic)",
        "发送的预热请求数（不计入任何统计）",
    ),
    (
        "percentiles",
        "list of numbers",
        "the percentiles reported",
        "报告的百分位",
    ),
    (
        "slo",
        "table",
        "the SLOs in ms: ttft_ms, tpot_ms, e2el_ms (null when unset)",
        "SLO（毫秒）：ttft_ms、tpot_ms、e2el_ms（未设为 null）",
    ),
    (
        "base_url / endpoint",
        "string",
        "the server (no credentials) and the path",
        "服务器地址（不含凭据）与路径",
    ),
    (
        "client_health",
        "table",
        "whether moonbench's own timing can be trusted: verdict (ok or warning), reason, timing_error_bound_ms, warnings, collapsed_chunk_share, wake-up lateness, CPU pressure, the error against the simulator's truth",
        "moonbench 自身计时是否可信：verdict（ok 或 warning）、reason、timing_error_bound_ms、warnings、collapsed_chunk_share、唤醒延迟、CPU 压力、相对模拟服务器真值的误差",
    ),
    (
        "probe_completed / probe_failed",
        "integer",
        "probe requests that succeeded and failed (--probe-request-rate; only when one succeeded)",
        "成功与失败的探针请求数（--probe-request-rate；有成功的探针才写）",
    ),
    (
        "probe_median_e2el_ms / probe_p99_e2el_ms / probe_max_e2el_ms",
        "ms",
        "E2EL of the successful probes: median, p99, largest",
        "成功探针请求的 E2EL：中位数、P99、最大值",
    ),
    (
        "users",
        "table",
        "mb.users runs: users, conversations, requests_per_user, by_turn (TTFT, E2EL and prompt length per turn), conversation_latency",
        "mb.users 运行：users、conversations、requests_per_user、by_turn（每轮的 TTFT、E2EL 与提示长度）、conversation_latency",
    ),
    (
        "spec_decode_acceptance_rate / spec_decode_acceptance_length",
        "% / tokens",
        "speculative decoding over the run, from the server's /metrics counters (vLLM, llama.cpp): draft tokens accepted, and 1 + accepted per draft",
        "推测解码（来自服务器 /metrics 计数器，vLLM、llama.cpp）：草稿 token 接受率，以及每个草稿 1 + 接受数",
    ),
    (
        "spec_decode_num_drafts / spec_decode_draft_tokens / spec_decode_accepted_tokens / spec_decode_per_position_acceptance_rates",
        "count / list",
        "drafts, draft tokens and accepted tokens during the run, and the share of drafts accepted at each position",
        "运行期间的草稿数、草稿 token 数、接受的 token 数，以及每个位置被接受的草稿比例",
    ),
    (
        "server_metrics",
        "table",
        "the server's /metrics during the run: source, url, interval_s, summary, series",
        "运行期间服务器的 /metrics：source、url、interval_s、summary、series",
    ),
    (
        "notes",
        "list of strings",
        "what the run noticed (a refused option, a capped concurrency, ...)",
        "运行中注意到的情况（被拒的选项、受限的并发等）",
    ),
    (
        "moonbench_version",
        "string",
        "the moonbench that wrote it",
        "写出它的 moonbench 版本",
    ),
];

/// The metrics `M` of [`RESULT_FIELDS`]: key, meaning in English and Chinese.
pub const METRIC_DOCS: &[(&str, &str, &str)] = &[
    (
        "ttft",
        "time to first token (vLLM)",
        "首 token 延迟（vLLM）",
    ),
    (
        "tpot",
        "time per output token after the first (vLLM)",
        "首 token 之后每个输出 token 的平均时间（vLLM）",
    ),
    (
        "itl",
        "inter-token latency, multi-token chunks spread over their tokens (vLLM)",
        "token 间延迟，多 token 分块均摊到各 token（vLLM）",
    ),
    ("e2el", "end-to-end latency (vLLM)", "端到端延迟（vLLM）"),
    (
        "client_queue_time",
        "vLLM's client-side queueing: actual minus intended send, the wait for a concurrency slot (with a concurrency cap; the values of schedule_lag)",
        "vLLM 的客户端排队时间：实际发送减计划发送，即等待并发名额的时间（有并发上限时；数值同 schedule_lag）",
    ),
    (
        "e2el_including_client_queue",
        "vLLM's E2EL including the client queue (with a concurrency cap and a finite rate; the values of intended_e2el)",
        "vLLM 含客户端排队的 E2EL（有并发上限且速率有限时；数值同 intended_e2el）",
    ),
    (
        "chunk_itl",
        "raw gap between token-bearing chunks (moonbench)",
        "含 token 分块之间的原始间隔（moonbench）",
    ),
    (
        "schedule_lag",
        "actual send minus scheduled send (moonbench)",
        "实际发送减去计划发送（moonbench）",
    ),
    (
        "intended_ttft",
        "TTFT from the scheduled send (corrects coordinated omission; moonbench)",
        "从计划发送时刻算起的 TTFT（修正协同遗漏；moonbench）",
    ),
    (
        "intended_e2el",
        "E2EL from the scheduled send (moonbench)",
        "从计划发送时刻算起的 E2EL（moonbench）",
    ),
    (
        "ttfa",
        "time to the first answer token after any reasoning (moonbench)",
        "推理之后第一个回答 token 的时间（moonbench）",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_float_names() {
        assert_eq!(py_float(None), "inf");
        assert_eq!(py_float(Some(10.0)), "10.0");
        assert_eq!(py_float(Some(2.5)), "2.5");
    }

    /// RESULT_FIELDS lists exactly the keys results have (every metric, every
    /// optional key), and METRIC_DOCS exactly the metrics.
    #[test]
    fn every_result_key_is_documented() {
        let metrics: Vec<&str> = Metric::VLLM
            .iter()
            .chain(Metric::VLLM_QUEUE.iter())
            .chain(Metric::EXTRA.iter())
            .map(|m| m.key())
            .collect();
        let docs: Vec<&str> = METRIC_DOCS.iter().map(|d| d.0).collect();
        assert_eq!(metrics, docs, "METRIC_DOCS and Metric differ");
        let rec = crate::metrics::RequestRecord {
            user: Some(Default::default()),
            ..Default::default()
        };
        let results = [
            RunResult {
                info: RunInfo {
                    ramp: Some(RampInfo {
                        strategy: Shape::Linear,
                        start: 1.0,
                        end: 2.0,
                        n: 2,
                    }),
                    max_concurrency: Some(2),
                    request_rate: Some(5.0),
                    ..Default::default()
                },
                outcome: RunOutcome {
                    records: vec![rec.clone()],
                    texts_kept: true,
                    stopped: Some("done".into()),
                    notes: vec!["n".into()],
                    server_metrics: Some({
                        use crate::metrics::server::{Quantity, Reading, ServerSeries};
                        let at = |d: f64, t: f64, a: f64| Reading {
                            source: Some("vllm"),
                            values: [
                                (Quantity::SpecDrafts, d),
                                (Quantity::SpecDraftTokens, t),
                                (Quantity::SpecAccepted, a),
                            ]
                            .into(),
                            accepted_per_pos: [(0, a)].into(),
                        };
                        ServerSeries {
                            samples: vec![(0.0, at(1.0, 3.0, 1.0)), (1.0, at(4.0, 12.0, 7.0))],
                            ..Default::default()
                        }
                    }),
                    probes: vec![crate::metrics::RequestRecord {
                        status: 200,
                        chunks: crate::metrics::Chunks::from_lists(&[1], &[1]),
                        output_tokens: 1,
                        end_ns: 2,
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                options: ResultOptions::default(),
            },
            RunResult {
                info: RunInfo {
                    custom_schedule: true,
                    shard: Some(crate::engine::shard::Shard { index: 1, count: 4 }),
                    start_at: Some(1_767_225_600.0),
                    ..Default::default()
                },
                outcome: RunOutcome::default(),
                options: ResultOptions::default(),
            },
            // A bounded shard writes its digest and the summary's precision.
            RunResult {
                info: RunInfo {
                    shard: Some(crate::engine::shard::Shard { index: 0, count: 2 }),
                    ..Default::default()
                },
                outcome: RunOutcome {
                    digest: Some(Box::new(crate::metrics::digest::Digest::new(
                        0,
                        Default::default(),
                    ))),
                    ..Default::default()
                },
                options: ResultOptions::default(),
            },
            // A pooling run writes vLLM's pooling keys.
            RunResult {
                info: RunInfo {
                    backend: "vllm-rerank".into(),
                    ..Default::default()
                },
                outcome: RunOutcome::default(),
                options: ResultOptions::default(),
            },
        ];
        let mut written = std::collections::BTreeSet::new();
        for r in &results {
            let opts = ResultOptions {
                metrics: [&Metric::VLLM[..], &Metric::VLLM_QUEUE[..]].concat(),
                percentiles: vec![99.0, 99.9],
                ..Default::default()
            };
            written.extend(r.to_json(&opts, true, &[]).keys().cloned());
        }
        // A merged result's own keys.
        let merged = crate::output::merge::Merged {
            result: RunResult {
                info: RunInfo::default(),
                outcome: RunOutcome::default(),
                options: ResultOptions {
                    metrics: [&Metric::VLLM[..], &Metric::VLLM_QUEUE[..]].concat(),
                    percentiles: vec![99.0, 99.9],
                    ..Default::default()
                },
            },
            shards: 2,
            skew_s: 0.0,
            clock_disagreement_s: Some(0.0),
            server_clock: false,
            notes: Vec::new(),
        };
        written.extend(
            crate::output::merge::to_json(&merged, false)
                .as_object()
                .unwrap()
                .keys()
                .cloned(),
        );
        let mut documented = std::collections::BTreeSet::new();
        for (names, ..) in RESULT_FIELDS {
            for name in names.split(" / ") {
                if name.contains('M') && name.ends_with("_ms") {
                    for m in &metrics {
                        for p in ["99", "99.9"] {
                            documented.insert(
                                name.replace("_M_", &format!("_{m}_"))
                                    .replace("pP_", &format!("p{p}_")),
                            );
                        }
                    }
                } else {
                    documented.insert(name.to_string());
                }
            }
        }
        // max_M_ms is written for moonbench's metrics only.
        for m in Metric::VLLM.iter().chain(Metric::VLLM_QUEUE.iter()) {
            documented.remove(&format!("max_{}_ms", m.key()));
        }
        let undocumented: Vec<_> = written.difference(&documented).collect();
        assert!(
            undocumented.is_empty(),
            "not in RESULT_FIELDS: {undocumented:?}"
        );
        let unwritten: Vec<_> = documented.difference(&written).collect();
        assert!(
            unwritten.is_empty(),
            "RESULT_FIELDS lists keys results lack: {unwritten:?}"
        );
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
            outcome: RunOutcome {
                texts_kept: true,
                ..Default::default()
            },
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
