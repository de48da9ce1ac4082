//! The seed toolkit's text outputs of a set of runs (FlyAIBox/llm_benchmark's
//! `visualize_results_simple.py`), written by `moonbench report` beside its page:
//! `performance_report.txt` (the best configurations and a table),
//! `performance_summary.csv` (bilingual headers), `performance_ranking.txt`
//! (by total throughput, TTFT, TPOT, and the seed's combined score) and
//! `ascii_charts.txt`. Each run is a configuration named as the seed names it,
//! `{input}x{output}_mc{concurrency}`; the metrics are the seed's: total token
//! throughput, output throughput, request throughput and the mean TTFT, TPOT and
//! ITL.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use super::files::{ResultFile, io_lengths, number};

/// One configuration's numbers, as the seed reads them from the aggregate CSV.
#[derive(Debug, Clone)]
pub struct Config {
    /// `{input}x{output}_mc{concurrency}` (the file's name when that is not unique).
    pub name: String,
    /// `total_token_throughput`, tokens/s.
    pub total_tput: f64,
    /// `output_throughput`, tokens/s.
    pub gen_tput: f64,
    /// `request_throughput`, req/s.
    pub req_tput: f64,
    /// `mean_ttft_ms`.
    pub ttft: f64,
    /// `mean_tpot_ms`.
    pub tpot: f64,
    /// `mean_itl_ms`.
    pub itl: f64,
    /// `total_input_tokens`.
    pub input_tokens: u64,
    /// `total_output_tokens`.
    pub output_tokens: u64,
}

/// The configurations of `rs` (runs without the seed's numbers are left out,
/// as the seed skips such rows), and the names of those left out.
pub fn configs(rs: &[ResultFile]) -> (Vec<Config>, Vec<String>) {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for r in rs {
        let n = |k: &str| number(&r.data, k).filter(|v| v.is_finite());
        let (Some(total_tput), Some(gen_tput), Some(req_tput), Some(ttft), Some(tpot), Some(itl)) = (
            n("total_token_throughput"),
            n("output_throughput"),
            n("request_throughput"),
            n("mean_ttft_ms"),
            n("mean_tpot_ms"),
            n("mean_itl_ms"),
        ) else {
            skipped.push(r.name.clone());
            continue;
        };
        let (i, o) = io_lengths(&r.name).unwrap_or((0, 0));
        let mc = n("max_concurrency").map_or("None".to_string(), |c| format!("{c}"));
        out.push(Config {
            name: format!("{i}x{o}_mc{mc}"),
            total_tput,
            gen_tput,
            req_tput,
            ttft,
            tpot,
            itl,
            input_tokens: n("total_input_tokens").unwrap_or(0.0) as u64,
            output_tokens: n("total_output_tokens").unwrap_or(0.0) as u64,
        });
    }
    // Names must tell the runs apart (rates, repeats, files without io lengths).
    let unique = out
        .iter()
        .map(|c| &c.name)
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        == out.len();
    if !unique {
        let mut names = rs
            .iter()
            .filter(|r| !skipped.contains(&r.name))
            .map(|r| r.name.trim_end_matches(".json").to_string());
        for c in &mut out {
            c.name = names.next().unwrap_or_default();
        }
    }
    (out, skipped)
}

/// The seed's combined score of each configuration, best first: total
/// throughput / the highest (weight 0.5) + TTFT scaled to 1 at the lowest and 0
/// at the highest (0.25) + TPOT likewise (0.25); 1 when all are equal.
pub fn scores(cs: &[Config]) -> Vec<(usize, f64)> {
    let max_t = cs.iter().map(|c| c.total_tput).fold(0.0, f64::max);
    let span = |f: &dyn Fn(&Config) -> f64| {
        let lo = cs.iter().map(f).fold(f64::INFINITY, f64::min);
        let hi = cs.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    };
    let (t0, t1) = span(&|c| c.ttft);
    let (p0, p1) = span(&|c| c.tpot);
    let inv = |v: f64, lo: f64, hi: f64| {
        if hi > lo {
            1.0 - (v - lo) / (hi - lo)
        } else {
            1.0
        }
    };
    let mut s: Vec<(usize, f64)> = cs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let t = if max_t > 0.0 {
                c.total_tput / max_t
            } else {
                0.0
            };
            (
                i,
                t * 0.5 + inv(c.ttft, t0, t1) * 0.25 + inv(c.tpot, p0, p1) * 0.25,
            )
        })
        .collect();
    s.sort_by(|a, b| b.1.total_cmp(&a.1));
    s
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn best(cs: &[Config], key: impl Fn(&Config) -> f64, highest: bool) -> &Config {
    let mut it = cs.iter();
    let mut b = it.next().expect("at least one configuration");
    for c in it {
        if (highest && key(c) > key(b)) || (!highest && key(c) < key(b)) {
            b = c;
        }
    }
    b
}

/// `performance_report.txt`.
pub fn text_report(cs: &[Config], now: &str) -> String {
    let mut f = String::new();
    let rule = |n: usize| "=".repeat(n);
    let _ = writeln!(f, "{}", rule(80));
    let _ = writeln!(f, "vLLM 性能测试报告 / vLLM Performance Test Report");
    let _ = writeln!(f, "{}", rule(80));
    let _ = writeln!(f, "生成时间 / Generated: {now}");
    let _ = writeln!(f, "测试配置数量 / Test Configurations: {}\n", cs.len());
    if !cs.is_empty() {
        let t = best(cs, |c| c.total_tput, true);
        let a = best(cs, |c| c.ttft, false);
        let p = best(cs, |c| c.tpot, false);
        let _ = writeln!(f, "最佳性能配置 / Best Performance Configurations:");
        let _ = writeln!(f, "{}", "-".repeat(60));
        let _ = writeln!(f, "最高总吞吐量 / Highest Total Throughput:");
        let _ = writeln!(f, "  配置: {}", t.name);
        let _ = writeln!(f, "  吞吐量: {:.1} tokens/s\n", t.total_tput);
        let _ = writeln!(f, "最低首令牌时间 / Lowest TTFT:");
        let _ = writeln!(f, "  配置: {}", a.name);
        let _ = writeln!(f, "  TTFT: {:.1} ms\n", a.ttft);
        let _ = writeln!(f, "最低每令牌时间 / Lowest TPOT:");
        let _ = writeln!(f, "  配置: {}", p.name);
        let _ = writeln!(f, "  TPOT: {:.1} ms\n", p.tpot);
    }
    let _ = writeln!(f, "详细性能数据 / Detailed Performance Data:");
    let _ = writeln!(f, "{}", rule(80));
    let _ = writeln!(
        f,
        "{:<15} {:<12} {:<12} {:<8} {:<8} {:<8} {:<12}",
        "配置", "总吞吐量", "生成吞吐量", "TTFT", "TPOT", "ITL", "请求吞吐量"
    );
    let _ = writeln!(
        f,
        "{:<15} {:<12} {:<12} {:<8} {:<8} {:<8} {:<12}",
        "Config", "Total Tput", "Gen Tput", "(ms)", "(ms)", "(ms)", "Req Tput"
    );
    let _ = writeln!(f, "{}", "-".repeat(80));
    for c in cs {
        let _ = writeln!(
            f,
            "{:<15} {:<12.1} {:<12.1} {:<8.1} {:<8.1} {:<8.1} {:<12.3}",
            c.name, c.total_tput, c.gen_tput, c.ttft, c.tpot, c.itl, c.req_tput
        );
    }
    let _ = writeln!(f, "\n{}", rule(80));
    let _ = writeln!(f, "令牌统计 / Token Statistics:");
    let _ = writeln!(f, "{}", "-".repeat(40));
    for c in cs {
        let _ = writeln!(f, "配置 {}:", c.name);
        let _ = writeln!(
            f,
            "  输入令牌 / Input Tokens: {}",
            thousands(c.input_tokens)
        );
        let _ = writeln!(
            f,
            "  输出令牌 / Output Tokens: {}",
            thousands(c.output_tokens)
        );
        let _ = writeln!(
            f,
            "  总令牌 / Total Tokens: {}\n",
            thousands(c.input_tokens + c.output_tokens)
        );
    }
    f
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `performance_summary.csv`, with the seed's bilingual headers.
pub fn summary_csv(cs: &[Config]) -> String {
    let mut f = String::from(
        "配置/Config,输入令牌/Input Tokens,输出令牌/Output Tokens,总吞吐量/Total Throughput (tok/s),\
         生成吞吐量/Gen Throughput (tok/s),TTFT (ms),TPOT (ms),ITL (ms),请求吞吐量/Req Throughput (req/s)\r\n",
    );
    for c in cs {
        let _ = write!(
            f,
            "{},{},{},{:.1},{:.1},{:.1},{:.1},{:.1},{:.3}\r\n",
            csv_field(&c.name),
            c.input_tokens,
            c.output_tokens,
            c.total_tput,
            c.gen_tput,
            c.ttft,
            c.tpot,
            c.itl,
            c.req_tput
        );
    }
    f
}

/// `performance_ranking.txt`.
pub fn ranking(cs: &[Config]) -> String {
    let mut f = String::new();
    let _ = writeln!(f, "性能排名 / Performance Ranking\n{}\n", "=".repeat(50));
    let mut order: Vec<&Config> = cs.iter().collect();
    type Key = fn(&Config) -> f64;
    let by: [(&str, Key, bool, &str); 3] = [
        (
            "按总吞吐量排名 / Ranking by Total Throughput:",
            |c| c.total_tput,
            true,
            "tok/s",
        ),
        (
            "按TTFT排名 / Ranking by TTFT (越小越好/Lower is Better):",
            |c| c.ttft,
            false,
            "ms",
        ),
        (
            "按TPOT排名 / Ranking by TPOT (越小越好/Lower is Better):",
            |c| c.tpot,
            false,
            "ms",
        ),
    ];
    for (k, (title, key, highest_first, unit)) in by.iter().enumerate() {
        let _ = writeln!(
            f,
            "{}{title}\n{}",
            if k > 0 { "\n" } else { "" },
            "-".repeat(40)
        );
        order.sort_by(|a, b| {
            let o = key(a).total_cmp(&key(b));
            if *highest_first { o.reverse() } else { o }
        });
        for (i, c) in order.iter().enumerate() {
            let _ = writeln!(f, "{}. {:<15} {:.1} {unit}", i + 1, c.name, key(c));
        }
    }
    let _ = writeln!(
        f,
        "\n综合评分排名 / Overall Score Ranking:\n(评分方法: 吞吐量权重0.5 + TTFT权重0.25 + TPOT权重0.25)\n{}",
        "-".repeat(40)
    );
    for (i, (k, s)) in scores(cs).iter().enumerate() {
        let _ = writeln!(f, "{}. {:<15} 评分: {s:.3}", i + 1, cs[*k].name);
    }
    f
}

/// `ascii_charts.txt`: bars of total throughput, TTFT and TPOT.
pub fn ascii_charts(cs: &[Config]) -> String {
    let mut f = String::from("ASCII 性能图表 / ASCII Performance Charts\n");
    let _ = writeln!(f, "{}\n", "=".repeat(60));
    let chart =
        |f: &mut String, title: &str, key: &dyn Fn(&Config) -> f64, unit: &str, prec: usize| {
            let _ = writeln!(f, "{title}\n{}", "-".repeat(50));
            let max = cs.iter().map(key).fold(0.0, f64::max);
            for c in cs {
                let v = key(c);
                let len = if max > 0.0 {
                    (v / max * 40.0) as usize
                } else {
                    0
                };
                let _ = writeln!(
                    f,
                    "{:<15} {:<40} {v:.prec$} {unit}",
                    c.name,
                    "█".repeat(len)
                );
            }
            f.push('\n');
        };
    chart(
        &mut f,
        "总令牌吞吐量对比 / Total Token Throughput Comparison:",
        &|c| c.total_tput,
        "tok/s",
        1,
    );
    chart(
        &mut f,
        "首令牌时间对比 / TTFT Comparison (越短越好/Shorter is Better):",
        &|c| c.ttft,
        "ms",
        1,
    );
    chart(
        &mut f,
        "每令牌时间对比 / TPOT Comparison (越短越好/Shorter is Better):",
        &|c| c.tpot,
        "ms",
        1,
    );
    f
}

/// Writes the four files into `dir`; returns their paths.
pub fn write_all(dir: &Path, cs: &[Config]) -> Result<Vec<PathBuf>, String> {
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string();
    let mut out = Vec::new();
    for (name, text) in [
        ("performance_report.txt", text_report(cs, &now)),
        ("performance_summary.csv", summary_csv(cs)),
        ("performance_ranking.txt", ranking(cs)),
        ("ascii_charts.txt", ascii_charts(cs)),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, text).map_err(|e| format!("cannot write {}: {e}", p.display()))?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(name: &str, t: f64, ttft: f64, tpot: f64) -> Config {
        Config {
            name: name.into(),
            total_tput: t,
            gen_tput: t / 2.0,
            req_tput: 0.1,
            ttft,
            tpot,
            itl: tpot,
            input_tokens: 20440,
            output_tokens: 20480,
        }
    }

    /// The seed's own published run (charts/performance_report.txt): its best
    /// configurations and its combined score, computed by hand.
    #[test]
    fn seed_published_run() {
        let cs = vec![
            cfg("1024x1024_mc4", 138.5, 2142.5, 55.7),
            cfg("512x512_mc1", 45.8, 551.1, 42.6),
            cfg("1024x1024_mc1", 46.1, 792.1, 42.7),
            cfg("512x512_mc4", 140.5, 1184.1, 54.7),
        ];
        let r = text_report(&cs, "2025-07-31 15:00:40");
        assert!(r.contains("最高总吞吐量 / Highest Total Throughput:\n  配置: 512x512_mc4\n  吞吐量: 140.5 tokens/s"));
        assert!(r.contains("最低首令牌时间 / Lowest TTFT:\n  配置: 512x512_mc1\n  TTFT: 551.1 ms"));
        assert!(r.contains("  输入令牌 / Input Tokens: 20,440\n"));
        let s = scores(&cs);
        // 512x512_mc4: 0.5 * 1 + 0.25 * (1 - (1184.1-551.1)/(2142.5-551.1)) + 0.25 * (1 - (54.7-42.6)/(55.7-42.6))
        let want = 0.5 + 0.25 * (1.0 - 633.0 / 1591.4) + 0.25 * (1.0 - 12.1 / 13.1);
        assert_eq!(cs[s[0].0].name, "512x512_mc4");
        assert!((s[0].1 - want).abs() < 1e-12, "{} vs {want}", s[0].1);
        assert!(ranking(&cs).contains("1. 512x512_mc4     140.5 tok/s"));
        assert!(summary_csv(&cs).starts_with("配置/Config,输入令牌/Input Tokens,"));
    }
}
