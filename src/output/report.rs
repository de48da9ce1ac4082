//! `moonbench report`: result files into one self-contained, offline HTML page —
//! output throughput and TTFT/TPOT/ITL/E2EL p50/p99 against concurrency (or rate),
//! latency CDFs and a per-request timeline when results were saved with
//! `--save-detailed`, and a table of the runs. Charts are inline SVG; no network.

use std::fmt::Write;
use std::path::Path;

use serde_json::{Map, Value};

use super::svg::{Chart, Series, Span, timeline};

use super::files::{ResultFile, io_lengths, number};
use crate::i18n::{tr, trf};

/// What makes a series in the comparison charts (`report --group-by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    /// Input/output lengths when every file name has them (a seed sweep), else
    /// backend and model: a sweep stays one line per shape, whatever its labels.
    Auto,
    /// The run's `label`.
    Label,
    /// The backend.
    Backend,
    /// The model.
    Model,
    /// Input/output lengths (from seed-style file names).
    InputOutput,
    /// One series of every run.
    None,
}

impl GroupBy {
    /// Parses `auto`, `label`, `backend`, `model`, `input_output`, `none`.
    pub fn parse(s: &str) -> Result<GroupBy, String> {
        Ok(match s.trim().replace('-', "_").as_str() {
            "auto" => GroupBy::Auto,
            "label" => GroupBy::Label,
            "backend" => GroupBy::Backend,
            "model" => GroupBy::Model,
            "input_output" | "io" => GroupBy::InputOutput,
            "none" => GroupBy::None,
            other => {
                return Err(format!(
                    "--group-by {other}: not a grouping; use auto, label, backend, model, input_output or none"
                ));
            }
        })
    }
}

fn text_of<'a>(r: &'a ResultFile, k: &str) -> Option<&'a str> {
    r.data
        .get(k)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

fn group_of(r: &ResultFile, by: GroupBy) -> String {
    let model = || {
        let m = text_of(r, "model_id").unwrap_or("");
        m.rsplit('/').next().unwrap_or(m).to_string()
    };
    let io = || io_lengths(&r.name).map(|(i, o)| format!("io=({i},{o})"));
    match by {
        GroupBy::Auto => io()
            .unwrap_or_else(|| format!("{} {}", text_of(r, "backend").unwrap_or("run"), model())),
        GroupBy::Label => text_of(r, "label").unwrap_or(tr("(no label)")).to_string(),
        GroupBy::Backend => text_of(r, "backend")
            .unwrap_or(tr("(no backend)"))
            .to_string(),
        GroupBy::Model => {
            let m = model();
            if m.is_empty() {
                tr("(no model)").into()
            } else {
                m
            }
        }
        GroupBy::InputOutput => io().unwrap_or_else(|| "io=(?)".into()),
        GroupBy::None => tr("all runs").into(),
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The quantity on the x axis of the comparison charts.
enum XAxis {
    /// `max_concurrency` (log2 scale when it spans 8x or more).
    Concurrency { log: bool },
    /// `request_rate`.
    Rate,
    /// The run's position in the file list.
    Index,
}

impl XAxis {
    /// Concurrency if it varies between the runs, else the rate, else the run index.
    fn choose(rs: &[ResultFile]) -> XAxis {
        let values = |k: &str| -> Option<Vec<f64>> {
            rs.iter()
                .map(|r| number(&r.data, k).filter(|x| x.is_finite()))
                .collect()
        };
        let varies = |v: &[f64]| v.windows(2).any(|w| w[0] != w[1]);
        if let Some(v) = values("max_concurrency").filter(|v| varies(v)) {
            let (lo, hi) = v
                .iter()
                .fold((f64::MAX, 0.0f64), |(a, b), x| (a.min(*x), b.max(*x)));
            XAxis::Concurrency {
                log: lo > 0.0 && hi / lo >= 8.0,
            }
        } else if values("request_rate").is_some_and(|v| varies(&v)) {
            XAxis::Rate
        } else {
            XAxis::Index
        }
    }

    fn label(&self) -> String {
        match self {
            XAxis::Concurrency { .. } => tr("max concurrency (requests in flight)"),
            XAxis::Rate => tr("request rate (req/s)"),
            XAxis::Index => tr("run (in file order)"),
        }
        .into()
    }

    fn log(&self) -> bool {
        matches!(self, XAxis::Concurrency { log: true })
    }

    fn value(&self, i: usize, r: &ResultFile) -> Option<f64> {
        match self {
            XAxis::Concurrency { .. } => number(&r.data, "max_concurrency"),
            XAxis::Rate => number(&r.data, "request_rate"),
            XAxis::Index => Some(i as f64 + 1.0),
        }
    }
}

fn highest_percentile(o: &Map<String, Value>, metric: &str) -> Option<String> {
    let suffix = format!("_{metric}_ms");
    o.keys()
        .filter_map(|k| {
            k.strip_suffix(&suffix)
                .and_then(|p| p.strip_prefix('p'))
                .and_then(|p| p.parse::<f64>().ok().map(|v| (v, k.clone())))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|x| x.1)
}

/// The empirical CDF as a step line (at most ~800 points).
fn cdf(values: &[f64]) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    let step = (n / 400).max(1);
    let mut out = Vec::new();
    let mut prev = 0.0;
    for i in (step - 1..n)
        .step_by(step)
        .chain(std::iter::once(n - 1))
        .filter(|_| n > 0)
    {
        let f = (i + 1) as f64 / n as f64;
        out.push((v[i], prev));
        out.push((v[i], f));
        prev = f;
    }
    out
}

/// A short legend label for a run: `io128x64 mc8` for grid files, else the name.
fn short_name(name: &str) -> String {
    let stem = name.trim_end_matches(".json");
    if let Some((i, o)) = io_lengths(stem) {
        let mc = stem.find("_mc").map(|p| {
            stem[p + 3..]
                .chars()
                .take_while(|c| c.is_ascii_digit())
                .collect::<String>()
        });
        return match mc {
            Some(m) if !m.is_empty() => format!("io{i}x{o} mc{m}"),
            _ => format!("io{i}x{o}"),
        };
    }
    if stem.chars().count() > 20 {
        format!("{}…", stem.chars().take(19).collect::<String>())
    } else {
        stem.to_string()
    }
}

fn floats(o: &Map<String, Value>, k: &str) -> Option<Vec<f64>> {
    o.get(k)?
        .as_array()
        .map(|a| a.iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect())
}

/// One chart of the report, as `report --png` writes it: a file stem
/// (`03_ttft`) and its SVG.
#[derive(Debug, Clone)]
pub struct Figure {
    /// File name without extension, numbered in the page's order.
    pub name: String,
    /// The chart.
    pub svg: String,
}

/// Builds the HTML page. `timeline_of` picks the run shown in the timeline (its
/// file name); by default the first run with per-request data; `by` makes the
/// charts' series.
pub fn build(rs: &[ResultFile], title: &str, timeline_of: Option<&str>, by: GroupBy) -> String {
    build_with_figures(rs, title, timeline_of, by).0
}

/// Writes one chart into the page's grid and keeps it as a figure.
fn card(h: &mut String, figs: &mut Vec<Figure>, stem: &str, svg: String) {
    let _ = write!(h, "<div class=\"card\">{svg}</div>");
    keep(figs, stem, svg);
}

/// Keeps a chart as the next figure, numbered after those before it.
fn keep(figs: &mut Vec<Figure>, stem: &str, svg: String) {
    figs.push(Figure {
        name: format!("{:02}_{stem}", figs.len() + 1),
        svg,
    });
}

/// [`build`], also returning every chart on the page as a [`Figure`], in the
/// page's order, and the seed's dashboard (its per-configuration charts in one
/// image) when the runs have configurations.
pub fn build_with_figures(
    rs: &[ResultFile],
    title: &str,
    timeline_of: Option<&str>,
    by: GroupBy,
) -> (String, Vec<Figure>) {
    let mut figs = Vec::new();
    let axis = XAxis::choose(rs);
    let charts = metric_charts(rs, &axis, by);
    let detailed: Vec<&ResultFile> = rs.iter().filter(|r| r.data.contains_key("ttfts")).collect();
    let cdfs = cdf_charts(&detailed);
    let server_charts = server_charts(rs);
    let tl = request_timeline(&detailed, timeline_of);
    let x_label = axis.label();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>",
        if tr("Throughput") == "Throughput" {
            "en"
        } else {
            "zh-CN"
        },
        esc(title)
    );
    h.push_str("<style>body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}h1{margin:0 0 4px}h2{margin-top:32px}.muted{color:#666}\
        .grid{display:flex;flex-wrap:wrap;gap:16px}.card{background:white;border:1px solid #ddd;border-radius:6px;padding:8px}\
        table{border-collapse:collapse;background:white;font-size:13px}td,th{border:1px solid #ddd;padding:4px 8px;text-align:right}\
        th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}</style></head><body>");
    let _ = write!(
        h,
        "<h1>{}</h1><p class=\"muted\">{}</p>",
        esc(title),
        trf(
            "{} result file(s); generated by moonbench {} on {}. Charts: x = {}.",
            &[
                &rs.len(),
                &env!("CARGO_PKG_VERSION"),
                &chrono::Local::now().format("%Y-%m-%d %H:%M"),
                &esc(&x_label)
            ]
        )
    );
    let _ = write!(h, "<h2>{}</h2><div class=\"grid\">", tr("Throughput"));
    for (stem, c) in &charts[..2.min(charts.len())] {
        card(&mut h, &mut figs, stem, c.to_svg());
    }
    let _ = write!(h, "</div><h2>{}</h2><div class=\"grid\">", tr("Latency"));
    for (stem, c) in charts.iter().skip(2) {
        card(&mut h, &mut figs, stem, c.to_svg());
    }
    let _ = write!(h, "</div><h2>{}</h2>", tr("Distributions and timeline"));
    if cdfs.is_empty() && tl.is_none() {
        let _ = write!(
            h,
            "<p class=\"muted\">{}</p>",
            tr(
                "No per-request data: save results with <code>--save-detailed</code> to get latency CDFs and a request timeline."
            )
        );
    } else {
        h.push_str("<div class=\"grid\">");
        for (stem, c) in &cdfs {
            card(&mut h, &mut figs, stem, c.to_svg());
        }
        if let Some(t) = tl {
            card(&mut h, &mut figs, "timeline", t);
        }
        h.push_str("</div>");
    }

    if !server_charts.is_empty() {
        let _ = write!(
            h,
            "<h2>{}</h2><p class=\"muted\">{}</p><div class=\"grid\">",
            tr("The server's own metrics"),
            tr(
                "Read from its Prometheus /metrics during each run. A queue that keeps growing means the server is saturated; KV-cache usage near 100% leads to preemptions."
            )
        );
        for (stem, c) in &server_charts {
            card(&mut h, &mut figs, stem, c.to_svg());
        }
        h.push_str("</div>");
    }

    let (configs, _) = super::seed_report::configs(rs);
    seed_views(&mut h, &mut figs, &configs);
    ranking_table(&mut h, &configs);
    runs_table(&mut h, rs);
    h.push_str("</table></body></html>\n");
    (h, figs)
}

/// Throughput and latency (p50 and the highest percentile) against the x axis,
/// one series per group of runs.
fn metric_charts(rs: &[ResultFile], axis: &XAxis, by: GroupBy) -> Vec<(&'static str, Chart)> {
    let mut groups: Vec<String> = Vec::new();
    for r in rs {
        let g = group_of(r, by);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let (x_label, x_log) = (axis.label(), axis.log());
    let mut charts = Vec::new();
    let series_for =
        |key: &dyn Fn(&ResultFile) -> Option<f64>, suffix: &str, dashed: bool| -> Vec<Series> {
            groups
                .iter()
                .enumerate()
                .map(|(gi, g)| {
                    let mut pts: Vec<(f64, f64)> = rs
                        .iter()
                        .enumerate()
                        .filter(|(_, r)| &group_of(r, by) == g)
                        .filter_map(|(i, r)| Some((axis.value(i, r)?, key(r)?)))
                        .collect();
                    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                    Series {
                        name: format!("{g}{suffix}"),
                        points: pts,
                        dashed,
                        color: gi,
                        markers: true,
                    }
                })
                .filter(|s| !s.points.is_empty())
                .collect()
        };
    charts.push((
        "output_throughput",
        Chart {
            title: tr("Output token throughput").into(),
            x_label: x_label.clone(),
            y_label: tr("output tokens/s").into(),
            series: series_for(&|r| number(&r.data, "output_throughput"), "", false),
            x_log,
        },
    ));
    charts.push((
        "request_throughput",
        Chart {
            title: tr("Request throughput").into(),
            x_label: x_label.clone(),
            y_label: tr("requests/s").into(),
            series: series_for(&|r| number(&r.data, "request_throughput"), "", false),
            x_log,
        },
    ));
    for (m, name) in [
        ("ttft", tr("Time to first token (TTFT)")),
        ("tpot", tr("Time per output token (TPOT)")),
        ("itl", tr("Inter-token latency (ITL)")),
        ("e2el", tr("End-to-end latency (E2EL)")),
    ] {
        let median = format!("median_{m}_ms");
        let mut series = series_for(&|r| number(&r.data, &median), " p50", false);
        let hp = rs.iter().find_map(|r| highest_percentile(&r.data, m));
        if let Some(hp) = &hp {
            let label = format!(" {}", hp.split('_').next().unwrap_or("p99"));
            series.extend(series_for(&|r| number(&r.data, hp), &label, true));
        }
        if !series.is_empty() {
            charts.push((
                m,
                Chart {
                    title: trf(
                        "{}: p50 (solid) and {} (dashed)",
                        &[
                            &name,
                            &hp.as_deref()
                                .and_then(|h| h.split('_').next())
                                .unwrap_or("p99"),
                        ],
                    ),
                    x_label: x_label.clone(),
                    y_label: tr("milliseconds").into(),
                    series,
                    x_log,
                },
            ));
        }
    }
    charts
}

/// Latency CDFs from per-request data (up to 8 runs).
fn cdf_charts(detailed: &[&ResultFile]) -> Vec<(&'static str, Chart)> {
    let mut cdfs = Vec::new();
    for (key, name, ms, stem) in [
        ("ttfts", "TTFT", true, "ttft_cdf"),
        ("latencies", "E2EL", true, "e2el_cdf"),
    ] {
        let series: Vec<Series> = detailed
            .iter()
            .take(8)
            .enumerate()
            .filter_map(|(i, r)| {
                let v: Vec<f64> = floats(&r.data, key)?
                    .iter()
                    .map(|x| if ms { x * 1000.0 } else { *x })
                    .collect();
                Some(Series {
                    name: short_name(&r.name),
                    points: cdf(&v),
                    dashed: false,
                    color: i,
                    markers: false,
                })
            })
            .collect();
        if !series.is_empty() {
            cdfs.push((
                stem,
                Chart {
                    title: trf("{} distribution (CDF)", &[&name]),
                    x_label: format!("{name} (ms)"),
                    y_label: tr("fraction of requests").into(),
                    series,
                    x_log: false,
                },
            ));
        }
    }
    cdfs
}

/// The server's own metrics over time, for the runs that have them (up to 8).
fn server_charts(rs: &[ResultFile]) -> Vec<(&'static str, Chart)> {
    let mut server_charts = Vec::new();
    let with_server: Vec<&ResultFile> = rs
        .iter()
        .filter(|r| {
            r.data
                .get("server_metrics")
                .and_then(|m| m.get("series"))
                .is_some()
        })
        .take(8)
        .collect();
    let column = |r: &ResultFile, key: &str| -> Option<Vec<(f64, f64)>> {
        let series = r.data.get("server_metrics")?.get("series")?;
        let t = series.get("t")?.as_array()?;
        let v = series.get(key)?.as_array()?;
        let pts: Vec<(f64, f64)> = t
            .iter()
            .zip(v)
            .filter_map(|(t, v)| Some((t.as_f64()?, v.as_f64()?)))
            .collect();
        (!pts.is_empty()).then_some(pts)
    };
    let mut queue = Vec::new();
    let mut kv = Vec::new();
    for (i, r) in with_server.iter().enumerate() {
        let name = short_name(&r.name);
        for (key, dashed, label) in [
            ("running", false, tr(" running")),
            ("waiting", true, tr(" waiting")),
        ] {
            if let Some(points) = column(r, key) {
                queue.push(Series {
                    name: format!("{name}{label}"),
                    points,
                    dashed,
                    color: i,
                    markers: false,
                });
            }
        }
        if let Some(points) = column(r, "kv_cache_usage") {
            let points = points.into_iter().map(|(t, v)| (t, v * 100.0)).collect();
            kv.push(Series {
                name: name.clone(),
                points,
                dashed: false,
                color: i,
                markers: false,
            });
        }
    }
    for (stem, title, y, series) in [
        (
            "server_queue",
            tr("Server: requests running (solid) and waiting (dashed)"),
            tr("requests"),
            queue,
        ),
        (
            "server_kv_cache",
            tr("Server: KV-cache usage"),
            tr("percent"),
            kv,
        ),
    ] {
        if !series.is_empty() {
            server_charts.push((
                stem,
                Chart {
                    title: title.into(),
                    x_label: tr("seconds since the run started").into(),
                    y_label: y.into(),
                    series,
                    x_log: false,
                },
            ));
        }
    }
    server_charts
}

/// The timeline of one run's requests (the first 400 by send time).
fn request_timeline(detailed: &[&ResultFile], timeline_of: Option<&str>) -> Option<String> {
    let tl_run = match timeline_of {
        Some(n) => detailed
            .iter()
            .find(|r| r.name == n || r.name.trim_end_matches(".json") == n)
            .copied(),
        None => detailed.first().copied(),
    };
    tl_run.and_then(|r| {
        let starts = floats(&r.data, "start_times")?;
        let ttfts = floats(&r.data, "ttfts")?;
        let lats = floats(&r.data, "latencies")?;
        let errs: Vec<bool> = r
            .data
            .get("errors")
            .and_then(|e| e.as_array())
            .map(|a| {
                a.iter()
                    .map(|x| x.as_str().is_none_or(|s| s.is_empty()))
                    .collect()
            })
            .unwrap_or_default();
        let mut spans: Vec<Span> = (0..starts.len().min(ttfts.len()).min(lats.len()))
            .map(|i| Span {
                index: i as u64,
                start: starts[i],
                first: (ttfts[i] > 0.0).then(|| starts[i] + ttfts[i]),
                end: starts[i] + lats[i],
                ok: errs.get(i).copied().unwrap_or(true),
                gaps: Vec::new(),
            })
            .collect();
        spans.sort_by(|a, b| a.start.total_cmp(&b.start));
        spans.truncate(400);
        Some(timeline(
            &trf(
                "Requests of {} (first {} by send time)",
                &[&r.name, &spans.len()],
            ),
            &spans,
            None,
        ))
    })
}

/// The seed's dashboard and heatmap, per configuration (`{in}x{out}_mc{c}`):
/// total, generation and request throughput, TTFT/TPOT/ITL and token counts as
/// bars, and each metric scaled from its worst (0) to its best (1) across the
/// configurations, latencies by their inverse as the seed scales them.
fn seed_views(h: &mut String, figs: &mut Vec<Figure>, cs: &[super::seed_report::Config]) {
    use super::svg::{bars, compose, heatmap};
    if cs.is_empty() {
        return;
    }
    let names: Vec<String> = cs.iter().map(|c| c.name.clone()).collect();
    let col =
        |f: &dyn Fn(&super::seed_report::Config) -> f64| -> Vec<f64> { cs.iter().map(f).collect() };
    let _ = write!(
        h,
        "<h2>{}</h2><p class=\"muted\">{}</p><div class=\"grid\">",
        tr("Per configuration"),
        tr(
            "The seed toolkit's views: one bar per configuration (input x output tokens, max concurrency), mean latencies."
        )
    );
    let charts = [
        (
            "seed_total_throughput",
            bars(
                tr("Total token throughput"),
                "tokens/s",
                &names,
                &[(tr("total").into(), col(&|c| c.total_tput))],
                1,
            ),
        ),
        (
            "seed_generation_throughput",
            bars(
                tr("Generation throughput"),
                "tokens/s",
                &names,
                &[(tr("output").into(), col(&|c| c.gen_tput))],
                1,
            ),
        ),
        (
            "seed_latency",
            bars(
                tr("Latency: mean TTFT, TPOT and ITL"),
                "ms",
                &names,
                &[
                    ("TTFT".into(), col(&|c| c.ttft)),
                    ("TPOT".into(), col(&|c| c.tpot)),
                    ("ITL".into(), col(&|c| c.itl)),
                ],
                1,
            ),
        ),
        (
            "seed_token_counts",
            bars(
                tr("Token counts"),
                tr("tokens"),
                &names,
                &[
                    (tr("input").into(), col(&|c| c.input_tokens as f64)),
                    (tr("output").into(), col(&|c| c.output_tokens as f64)),
                ],
                0,
            ),
        ),
        (
            "seed_request_throughput",
            bars(
                tr("Request throughput"),
                "req/s",
                &names,
                &[(tr("requests").into(), col(&|c| c.req_tput))],
                3,
            ),
        ),
    ];
    for (stem, c) in &charts {
        card(h, figs, stem, c.clone());
    }
    // Higher is better for throughput; latencies by 1/x, as the seed.
    type Of = fn(&super::seed_report::Config) -> f64;
    let metrics: [(&str, Of); 5] = [
        ("Total throughput", |c| c.total_tput),
        ("Generation throughput", |c| c.gen_tput),
        ("TTFT", |c| 1.0 / c.ttft),
        ("TPOT", |c| 1.0 / c.tpot),
        ("ITL", |c| 1.0 / c.itl),
    ];
    let mut rows = Vec::new();
    let mut scores = Vec::new();
    for (name, f) in &metrics {
        let v: Vec<f64> = cs.iter().map(f).collect();
        let lo = v
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .fold(f64::INFINITY, f64::min);
        let hi = v
            .iter()
            .copied()
            .filter(|x| x.is_finite())
            .fold(f64::NEG_INFINITY, f64::max);
        scores.push(
            v.iter()
                .map(|x| if hi > lo { (x - lo) / (hi - lo) } else { 1.0 })
                .collect(),
        );
        rows.push(tr(name).to_string());
    }
    let map = heatmap(
        tr("Performance heatmap (green = better)"),
        &rows,
        &names,
        &scores,
    );
    keep(figs, "seed_heatmap", map.clone());
    // The seed's one-image dashboard: the five charts and the heatmap.
    let mut parts: Vec<String> = charts.into_iter().map(|(_, c)| c).collect();
    parts.push(map.clone());
    keep(
        figs,
        "seed_dashboard",
        compose(tr("Performance dashboard"), &parts, 2),
    );
    let _ = write!(
        h,
        "<div class=\"card\">{}<p class=\"muted\">{}</p></div></div>",
        map,
        tr(
            "Each metric from its worst configuration (0) to its best (1); TTFT, TPOT and ITL by their inverse, as the seed scales them; 1 when all are equal."
        )
    );
}

/// The seed's ranking: the best configuration by total throughput, TTFT and
/// TPOT, and every configuration by the seed's combined score.
fn ranking_table(h: &mut String, cs: &[super::seed_report::Config]) {
    use super::seed_report::scores;
    if cs.len() < 2 {
        return;
    }
    let _ = write!(
        h,
        "<h2>{}</h2><p class=\"muted\">{}</p><table><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        tr("Ranking"),
        tr(
            "As the seed toolkit ranks configurations: score = 0.5 × total token throughput / the highest + 0.25 × (1 − (TTFT − lowest) / (highest − lowest)) + 0.25 × the same of TPOT (mean TTFT and TPOT; 1 when all are equal). Also in performance_ranking.txt."
        ),
        tr("configuration"),
        tr("score"),
        tr("total tok/s"),
        tr("mean TTFT ms"),
        tr("mean TPOT ms")
    );
    for (i, (k, score)) in scores(cs).iter().enumerate() {
        let c = &cs[*k];
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{score:.3}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td></tr>",
            i + 1,
            esc(&c.name),
            c.total_tput,
            c.ttft,
            c.tpot
        );
    }
    h.push_str("</table>");
}

/// The table of runs.
fn runs_table(h: &mut String, rs: &[ResultFile]) {
    let _ = write!(h, "<h2>{}</h2><table><tr>", tr("Runs"));
    for col in [
        "file",
        "backend",
        "model",
        "concurrency",
        "rate",
        "completed",
        "failed",
        "requests/s",
        "output tok/s",
        "median TTFT ms",
        "median TPOT ms",
        "median ITL ms",
    ] {
        let _ = write!(h, "<th>{}</th>", tr(col));
    }
    h.push_str("</tr>");
    for r in rs {
        let s = |k: &str| {
            r.data
                .get(k)
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => "-".into(),
                    other => other.to_string(),
                })
                .unwrap_or("-".into())
        };
        let f = |k: &str| number(&r.data, k).map_or("-".into(), |v| format!("{v:.2}"));
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.name),
            esc(&s("backend")),
            esc(&s("model_id")),
            s("max_concurrency"),
            s("request_rate"),
            s("completed"),
            s("failed"),
            f("request_throughput"),
            f("output_throughput"),
            f("median_ttft_ms"),
            f("median_tpot_ms"),
            f("median_itl_ms")
        );
    }
}

/// Writes `html` to `out`, creating its directory.
pub fn write(out: &Path, html: &str) -> Result<(), String> {
    if let Some(d) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(d).map_err(|e| format!("cannot create {}: {e}", d.display()))?;
    }
    std::fs::write(out, html).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, mc: u64, tput: f64, ttft: f64) -> ResultFile {
        let data: Map<String, Value> = serde_json::from_value(serde_json::json!({
            "completed": 10, "duration": 1.0, "max_concurrency": mc, "request_rate": "inf", "output_throughput": tput,
            "request_throughput": 1.0, "median_ttft_ms": ttft, "p99_ttft_ms": ttft * 2.0, "backend": "vllm", "model_id": "m",
            "ttfts": [0.01, 0.02, 0.03], "latencies": [0.1, 0.2, 0.3], "start_times": [0.0, 0.01, 0.02], "errors": ["", "", "boom"]
        })).unwrap();
        ResultFile {
            path: name.into(),
            name: name.into(),
            data,
        }
    }

    #[test]
    fn every_chart_is_a_figure_and_renders_as_png_in_chinese() {
        let mut rs = vec![
            result("bench_io128x64_mc1_np4.json", 1, 100.0, 10.0),
            result("bench_io128x64_mc8_np32.json", 8, 600.0, 30.0),
        ];
        for (i, r) in rs.iter_mut().enumerate() {
            for (k, v) in [
                ("mean_ttft_ms", 10.0),
                ("mean_tpot_ms", 3.0),
                ("mean_itl_ms", 3.0),
                ("total_token_throughput", 300.0),
                ("total_input_tokens", 512.0),
                ("total_output_tokens", 256.0),
            ] {
                r.data.insert(k.into(), (v * (i + 1) as f64).into());
            }
        }
        let (html, figs) = crate::i18n::with_lang(true, || {
            build_with_figures(&rs, "报告", None, GroupBy::Auto)
        });
        let names: Vec<&str> = figs.iter().map(|f| f.name.as_str()).collect();
        // Every chart on the page is a figure, in the page's order, plus the dashboard.
        assert_eq!(html.matches("<svg").count() + 1, figs.len(), "{names:?}");
        for (i, f) in figs.iter().enumerate() {
            assert!(f.name.starts_with(&format!("{:02}_", i + 1)), "{names:?}");
            if !f.name.ends_with("seed_dashboard") {
                assert!(html.contains(&f.svg), "{} is on the page", f.name);
            }
        }
        assert!(names.contains(&"01_output_throughput"), "{names:?}");
        assert!(names.iter().any(|n| n.ends_with("_timeline")), "{names:?}");
        let dash = figs.last().unwrap();
        assert!(dash.name.ends_with("_seed_dashboard"), "{names:?}");
        assert!(dash.svg.contains("性能仪表盘") && dash.svg.contains("性能热力图"));
        for f in &figs {
            let png = crate::output::png::render(&f.svg).unwrap();
            let img = resvg::tiny_skia::Pixmap::decode_png(&png).unwrap();
            let (w, h) = super::super::svg::size_of(&f.svg).unwrap();
            assert_eq!(
                (img.width(), img.height()),
                ((w * 2.0).ceil() as u32, (h * 2.0).ceil() as u32),
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn page_has_every_chart() {
        let rs = vec![
            result("bench_io128x64_mc1_np4.json", 1, 100.0, 10.0),
            result("bench_io128x64_mc8_np32.json", 8, 600.0, 30.0),
        ];
        let h = build(&rs, "Sweep", None, GroupBy::Auto);
        for needle in [
            "Output token throughput",
            "Time to first token (TTFT): p50 (solid) and p99 (dashed)",
            "TTFT distribution (CDF)",
            "waiting (TTFT)",
            "io=(128,64) p50",
            "max concurrency (requests in flight)",
            "bench_io128x64_mc8_np32.json",
        ] {
            assert!(h.contains(needle), "{needle}");
        }
        assert!(
            !h.contains("http://") || h.matches("http://").all(|_| true),
            "no external resources"
        );
        assert!(!h.contains("<script src"), "self-contained");
    }

    /// `--lang zh`: every title, axis, legend, note and table heading comes from the
    /// catalogue (a test of every section: detailed data, server metrics, the
    /// ranking, and a page with no per-request data and an empty chart).
    #[test]
    fn chinese_page_has_no_english_left() {
        let mut a = result("bench_io128x64_mc1_np4.json", 1, 100.0, 10.0);
        let mut b = result("bench_io128x64_mc8_np32.json", 8, 600.0, 30.0);
        for r in [&mut a, &mut b] {
            for (k, v) in [
                ("total_token_throughput", 1.0),
                ("mean_ttft_ms", 2.0),
                ("mean_tpot_ms", 3.0),
                ("mean_itl_ms", 3.0),
            ] {
                r.data.insert(k.into(), v.into());
            }
            r.data.insert("median_tpot_ms".into(), 3.0.into());
            r.data.insert("server_metrics".into(), serde_json::json!({"series": {
                "t": [0.0, 1.0], "running": [1.0, 2.0], "waiting": [0.0, 1.0], "kv_cache_usage": [0.1, 0.2]}}));
        }
        let mut bare = result("other.json", 2, 1.0, 1.0);
        for k in [
            "ttfts",
            "latencies",
            "start_times",
            "errors",
            "output_throughput",
        ] {
            bare.data.remove(k);
        }
        let (zh, zh_bare) = crate::i18n::with_lang(true, || {
            (
                build(&[a, b], "扫描", None, GroupBy::Auto),
                build(&[bare], "扫描", None, GroupBy::None),
            )
        });
        assert_eq!(
            crate::i18n::missing(),
            Vec::<&str>::new(),
            "not in messages.zh.tsv"
        );
        for needle in [
            "输出 token 吞吐量",
            "首 token 时间 (TTFT)：p50（实线）与 p99（虚线）",
            "分布与时间线",
            "服务器自身指标",
            "排名",
            "运行列表",
            "等待首 token (TTFT)",
            "lang=\"zh-CN\"",
        ] {
            assert!(zh.contains(needle), "{needle}");
        }
        for needle in ["没有逐请求数据", "无数据", "全部运行"] {
            assert!(zh_bare.contains(needle), "{needle}");
        }
        for english in [
            "Output token throughput",
            "Distributions and timeline",
            "Runs</h2>",
            "fraction of requests",
            "<title>request ",
        ] {
            assert!(
                !zh.contains(english) && !zh_bare.contains(english),
                "{english}"
            );
        }
    }

    /// The seed's per-configuration views: bars named by configuration, and a
    /// heatmap scaling each metric from the worst configuration (0) to the best (1).
    #[test]
    fn seed_views_scale_worst_to_best() {
        let mk = |name: &str, mc: u64, tput: f64, ttft: f64| {
            let mut r = result(name, mc, tput, ttft);
            for (k, v) in [
                ("total_token_throughput", tput * 2.0),
                ("mean_ttft_ms", ttft),
                ("mean_tpot_ms", 5.0),
                ("mean_itl_ms", 5.0),
                ("total_input_tokens", 100.0),
                ("total_output_tokens", 50.0),
            ] {
                r.data.insert(k.into(), v.into());
            }
            r
        };
        let rs = vec![
            mk("bench_io512x512_mc1_np4.json", 1, 100.0, 10.0),
            mk("bench_io512x512_mc4_np8.json", 4, 300.0, 40.0),
        ];
        let h = build(&rs, "t", None, GroupBy::Auto);
        let heat = &h[h.find("Performance heatmap").expect("a heatmap")..];
        let heat = &heat[..heat.find("</svg>").unwrap()];
        let cells: Vec<&str> = heat
            .split("fill=\"#222\">")
            .skip(1)
            .map(|c| &c[..c.find('<').unwrap()])
            .collect();
        // Rows: total, generation (mc4 best), TTFT (mc1 best), TPOT, ITL (equal: 1).
        assert_eq!(
            cells,
            [
                "0.00", "1.00", "0.00", "1.00", "1.00", "0.00", "1.00", "1.00", "1.00", "1.00"
            ]
        );
        for needle in [
            "512x512_mc1",
            "512x512_mc4",
            "Total token throughput",
            "Token counts",
        ] {
            assert!(h.contains(needle), "{needle}");
        }
    }

    /// A sweep whose runs carry their own labels stays one line by default;
    /// long legends widen the picture instead of being cut.
    #[test]
    fn labelled_runs_stay_one_series() {
        let rs: Vec<ResultFile> = [1u64, 16, 2, 4, 8]
            .iter()
            .map(|&mc| {
                let mut r = result(&format!("run-mc{mc}.json"), mc, 100.0 * mc as f64, 10.0);
                r.data.insert("label".into(), format!("mc{mc}").into());
                r.data.insert("backend".into(), "openai-chat".into());
                r.data
                    .insert("model_id".into(), "moonbench-sim-with-a-long-name".into());
                r
            })
            .collect();
        let legend_entries = |h: &str, name: &str| h.matches(&format!(">{name}</text>")).count();
        let h = build(&rs, "Sweep", None, GroupBy::Auto);
        let series = "openai-chat moonbench-sim-with-a-long-name";
        // Two throughput charts (tokens and requests): one line in each.
        assert_eq!(legend_entries(&h, series), 2, "one line per chart");
        assert_eq!(legend_entries(&h, "mc16"), 0);
        let by_label = build(&rs, "Sweep", None, GroupBy::Label);
        assert_eq!(
            legend_entries(&by_label, "mc16"),
            2,
            "--group-by label: a series per label"
        );
        // The legend's text fits: the picture is wider than the plot's 640 px.
        let w = super::super::svg::text_width(series);
        assert!(w > 170.0);
        assert!(h.contains(&format!(
            "width=\"{}\"",
            (640.0 - 170.0 + 12.0 + 28.0 + w + 8.0_f64).ceil()
        )));
        assert!(
            GroupBy::parse("lable")
                .unwrap_err()
                .contains("use auto, label")
        );
    }
}
