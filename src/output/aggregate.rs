//! `moonbench aggregate`: many result files into one table (the seed toolkit's
//! `aggregate_result.py`). Every result JSON in a directory — moonbench's or vLLM's
//! own — becomes a row: scalar keys as columns (nested objects flattened with `.`,
//! as pandas' `json_normalize`; per-request lists left out), plus `input_len` /
//! `output_len` from the file name's `io{I}x{O}` and the `filename`. Rows are sorted
//! by the grid parameters. CSV gets the seed's two header rows: English names, then
//! Chinese names.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// CSV (the csv crate).
    Csv,
    /// A Markdown table.
    Markdown,
    /// A JSON list of row objects.
    Json,
}

/// Which header rows to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// English names, then Chinese names (the seed's layout).
    Both,
    /// English names only (for pandas and other tools).
    En,
    /// Chinese names only.
    Zh,
}

impl Format {
    /// Parses `csv`, `markdown` (`md`) or `json`.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s {
            "csv" => Ok(Format::Csv),
            "markdown" | "md" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            _ => Err(format!(
                "unknown format '{s}'; valid formats: csv, markdown, json"
            )),
        }
    }

    fn ext(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Markdown => "md",
            Format::Json => "json",
        }
    }
}

impl Header {
    /// Parses `both`, `en` or `zh`.
    pub fn parse(s: &str) -> Result<Header, String> {
        match s {
            "both" => Ok(Header::Both),
            "en" => Ok(Header::En),
            "zh" => Ok(Header::Zh),
            _ => Err(format!("unknown header '{s}'; valid headers: both, en, zh")),
        }
    }
}

/// The aggregated table.
#[derive(Debug, Default)]
pub struct Table {
    /// Column names (English), in order.
    pub columns: Vec<String>,
    /// Rows, by column name.
    pub rows: Vec<Map<String, Value>>,
    /// Files that were not results, and why.
    pub skipped: Vec<(PathBuf, String)>,
}

fn metric_zh(m: &str) -> Option<&'static str> {
    Some(match m {
        "ttft" => "首令牌时间",
        "tpot" => "每令牌时间",
        "itl" => "令牌间延迟",
        "e2el" => "端到端延迟",
        "chunk_itl" => "chunk间隔",
        "schedule_lag" => "调度滞后",
        "intended_ttft" => "计划时刻首令牌时间",
        "intended_e2el" => "计划时刻端到端延迟",
        "ttfa" => "首答案令牌时间",
        _ => return None,
    })
}

/// The Chinese name of a column (the seed's names; unknown columns keep English).
pub fn zh_name(col: &str) -> String {
    let fixed = match col {
        "date" => "日期",
        "backend" => "后端",
        "endpoint_type" => "接口类型",
        "label" => "标签",
        "model_id" => "模型ID",
        "tokenizer_id" => "分词器ID",
        "num_prompts" => "提示数量",
        "request_rate" => "请求速率",
        "burstiness" => "突发性",
        "max_concurrency" => "最大并发数",
        "duration" => "持续时间",
        "completed" => "完成数量",
        "failed" => "失败数量",
        "cancelled" => "取消数量",
        "total_input_tokens" => "总输入令牌数",
        "total_output_tokens" => "总输出令牌数",
        "total_server_input_tokens" => "服务端输入令牌数",
        "total_reasoning_tokens" => "推理令牌数",
        "total_answer_tokens" => "回答令牌数",
        "request_throughput" => "请求吞吐量",
        "request_goodput:" | "request_goodput" => "请求有效吞吐量",
        "goodput_ratio" => "有效请求比例",
        "output_throughput" => "输出吞吐量",
        "total_token_throughput" => "总令牌吞吐量",
        "max_output_tokens_per_s" => "峰值输出吞吐量",
        "max_concurrent_requests" => "最大并发请求数",
        "peak_in_flight" => "峰值在途请求数",
        "new_connections" => "新建连接数",
        "achieved_request_rate" => "实际请求速率",
        "partial" => "部分结果",
        "result_dir" => "结果目录",
        "preconnected_connections" => "预建连接数",
        "num_warmups" => "预热请求数",
        "base_url" => "服务地址",
        "endpoint" => "接口路径",
        "moonbench_version" => "moonbench版本",
        "input_len" => "输入长度",
        "output_len" => "输出长度",
        "filename" => "文件名",
        _ => "",
    };
    if !fixed.is_empty() {
        return fixed.to_string();
    }
    // mean_/median_/std_/pNN_/max_ + metric + _ms
    if let Some(rest) = col.strip_suffix("_ms") {
        for (prefix, word) in [("mean_", "平均"), ("median_", "中位")] {
            if let Some(m) = rest.strip_prefix(prefix).and_then(metric_zh) {
                return format!("{word}{m}(ms)");
            }
        }
        if let Some(m) = rest.strip_prefix("std_").and_then(metric_zh) {
            return format!("{m}标准差(ms)");
        }
        if let Some(m) = rest.strip_prefix("max_").and_then(metric_zh) {
            return format!("{m}最大值(ms)");
        }
        if let Some(r) = rest.strip_prefix('p') {
            if let Some((p, m)) = r.split_once('_') {
                if let Some(mz) = metric_zh(m).filter(|_| p.parse::<f64>().is_ok()) {
                    return format!("{mz}P{p}(ms)");
                }
            }
        }
    }
    for (prefix, word) in [
        ("client_health.", "客户端健康."),
        ("server_metrics.summary.", "服务器指标."),
        ("server_metrics.", "服务器指标."),
        ("users.", "虚拟用户."),
        ("errors_by_kind.", "错误数."),
        ("slo.", "SLO."),
    ] {
        if let Some(r) = col.strip_prefix(prefix) {
            return format!("{word}{r}");
        }
    }
    col.to_string()
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Array(_) => {}
        scalar => out.push((prefix.to_string(), scalar.clone())),
    }
}

/// Reads every `*.json` result in `dir` and the folders under it.
pub fn collect(dir: &Path) -> Result<Table, String> {
    let files = super::files::json_files_under(dir)?;
    let mut t = Table::default();
    let mut tail_cols = Vec::new();
    // Files from folders under `dir` (run folders) say which one, as the seed's
    // main.py does; a flat folder's table keeps the seed's columns.
    let nested = files.iter().any(|p| p.parent() != Some(dir));
    for path in files {
        let folder = path
            .parent()
            .and_then(|p| p.strip_prefix(dir).ok())
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| ".".into());
        let (name, obj) = match super::files::read(&path) {
            Ok(r) => (r.name, r.data),
            Err(why) => {
                t.skipped.push((path, why));
                continue;
            }
        };
        let mut cells = Vec::new();
        flatten("", &Value::Object(obj), &mut cells);
        let io = super::files::io_lengths(&name);
        let mut row = Map::new();
        for (k, v) in cells {
            if !t.columns.contains(&k) {
                t.columns.push(k.clone());
            }
            row.insert(k, v);
        }
        for (k, v) in [
            ("input_len", io.map_or(Value::Null, |v| Value::from(v.0))),
            ("output_len", io.map_or(Value::Null, |v| Value::from(v.1))),
            ("filename", Value::from(name.clone())),
            ("result_dir", Value::from(folder)),
        ] {
            if k == "result_dir" && !nested {
                continue;
            }
            if !tail_cols.contains(&k.to_string()) {
                tail_cols.push(k.to_string());
            }
            row.insert(k.to_string(), v);
        }
        // Concurrency and prompts from the file name when the file lacks them.
        for (key, tag) in [("max_concurrency", "mc"), ("num_prompts", "np")] {
            if row.get(key).is_none_or(|v| v.is_null()) {
                if let Some(v) = super::files::numbers_after(&name, &format!("_{tag}")) {
                    row.insert(key.into(), Value::from(v[0]));
                    if !t.columns.iter().any(|c| c == key) {
                        t.columns.push(key.into());
                    }
                }
            }
        }
        t.rows.push(row);
    }
    t.columns.retain(|c| !tail_cols.contains(c));
    t.columns.extend(tail_cols);
    let num = |r: &Map<String, Value>, k: &str| super::files::number(r, k).unwrap_or(f64::MAX);
    t.rows.sort_by(|a, b| {
        for k in [
            "input_len",
            "output_len",
            "max_concurrency",
            "num_prompts",
            "request_rate",
        ] {
            let o = num(a, k).total_cmp(&num(b, k));
            if o.is_ne() {
                return o;
            }
        }
        a.get("filename")
            .and_then(|v| v.as_str())
            .cmp(&b.get("filename").and_then(|v| v.as_str()))
    });
    Ok(t)
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// The seed's default output path: `DIR/aggregate_results_{YYYYmmdd}.{ext}`.
pub fn default_output(dir: &Path, format: Format) -> PathBuf {
    dir.join(format!(
        "aggregate_results_{}.{}",
        chrono::Local::now().format("%Y%m%d"),
        format.ext()
    ))
}

/// Writes the table; returns the path written.
pub fn write(t: &Table, out: &Path, format: Format, header: Header) -> Result<(), String> {
    if let Some(d) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    let names_zh: Vec<String> = t.columns.iter().map(|c| zh_name(c)).collect();
    let err = |e: &dyn std::fmt::Display| format!("cannot write {}: {e}", out.display());
    match format {
        Format::Csv => {
            let mut w = csv::WriterBuilder::new()
                .flexible(true)
                .from_path(out)
                .map_err(|e| err(&e))?;
            if header != Header::Zh {
                w.write_record(&t.columns).map_err(|e| err(&e))?;
            }
            if header != Header::En {
                w.write_record(&names_zh).map_err(|e| err(&e))?;
            }
            for r in &t.rows {
                w.write_record(t.columns.iter().map(|c| cell(r.get(c))))
                    .map_err(|e| err(&e))?;
            }
            w.flush().map_err(|e| err(&e))?;
        }
        Format::Markdown => {
            let head: Vec<String> = match header {
                Header::Both => t
                    .columns
                    .iter()
                    .zip(&names_zh)
                    .map(|(e, z)| {
                        if e == z {
                            e.clone()
                        } else {
                            format!("{e}<br>{z}")
                        }
                    })
                    .collect(),
                Header::En => t.columns.clone(),
                Header::Zh => names_zh.clone(),
            };
            let mut s = format!(
                "| {} |\n|{}|\n",
                head.join(" | "),
                vec!["---"; head.len()].join("|")
            );
            for r in &t.rows {
                let cells: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| cell(r.get(c)).replace('|', "\\|"))
                    .collect();
                s.push_str(&format!("| {} |\n", cells.join(" | ")));
            }
            std::fs::write(out, s).map_err(|e| err(&e))?;
        }
        Format::Json => {
            let rows: Vec<Value> = t
                .rows
                .iter()
                .map(|r| {
                    let o: Map<String, Value> = t
                        .columns
                        .iter()
                        .zip(&names_zh)
                        .map(|(c, z)| {
                            (
                                if header == Header::Zh {
                                    z.clone()
                                } else {
                                    c.clone()
                                },
                                r.get(c).cloned().unwrap_or(Value::Null),
                            )
                        })
                        .collect();
                    Value::Object(o)
                })
                .collect();
            std::fs::write(out, serde_json::to_string_pretty(&rows).unwrap())
                .map_err(|e| err(&e))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_names_follow_the_seed() {
        assert_eq!(zh_name("mean_ttft_ms"), "平均首令牌时间(ms)");
        assert_eq!(zh_name("p99_tpot_ms"), "每令牌时间P99(ms)");
        assert_eq!(zh_name("std_itl_ms"), "令牌间延迟标准差(ms)");
        assert_eq!(zh_name("median_e2el_ms"), "中位端到端延迟(ms)");
        assert_eq!(zh_name("request_goodput:"), "请求有效吞吐量");
        assert_eq!(zh_name("p99.9_ttft_ms"), "首令牌时间P99.9(ms)");
        assert_eq!(zh_name("gpu"), "gpu");
        assert_eq!(
            zh_name("server_metrics.summary.max_waiting"),
            "服务器指标.max_waiting"
        );
    }
}
