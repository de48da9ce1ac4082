//! The two pictures vLLM's `--plot-timeline` and `--plot-dataset-stats` write, as
//! self-contained HTML pages of SVG (no scripts, no network): every request on one
//! time axis with its tokens coloured by ITL class, and histograms of the prompt,
//! output and total tokens of the requests sent.

use std::fmt::Write;

use super::result::RunResult;
use super::svg::{Span, histogram, timeline};
use crate::clock::secs;

/// At most this many requests are drawn on a timeline (the first by send time).
pub const TIMELINE_ROWS: usize = 2000;

fn page(title: &str, intro: &str, body: &str) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{title}</title>\
         <style>body{{font-family:sans-serif;margin:24px;max-width:1100px}} svg{{max-width:100%;height:auto}}</style>\
         </head><body><h1>{title}</h1><p>{intro}</p>{body}</body></html>"
    );
    h
}

/// The timeline page: each measured request's wait for its first token (grey)
/// and its tokens, green below `thresholds_ms.0`, orange up to `.1`, red above.
pub fn timeline_page(r: &RunResult, thresholds_ms: (f64, f64)) -> String {
    let t0 = r.outcome.t0_ns;
    let at = |ns: u64| secs(ns.saturating_sub(t0));
    let mut spans: Vec<Span> = r
        .outcome
        .records
        .iter()
        .filter(|x| !x.warmup)
        .map(|x| Span {
            index: x.index,
            start: at(x.sent_ns),
            first: x.ttft().map(|t| at(x.sent_ns) + t),
            end: at(x.end_ns),
            ok: x.success(),
            gaps: x.itls(),
        })
        .collect();
    spans.sort_by(|a, b| a.start.total_cmp(&b.start));
    let all = spans.len();
    spans.truncate(TIMELINE_ROWS);
    let title = if all > spans.len() {
        format!("{} requests (the first {} by send time)", all, spans.len())
    } else {
        format!("{all} requests")
    };
    page(
        &format!("Request timeline: {}", r.info.model_id),
        &format!(
            "Each row is one request, in send order: grey from its send to its first token (TTFT), then its \
             tokens, coloured by the inter-token latency before each (green below {} ms, orange below {} ms, \
             red above); failed requests are pale red. Hover a bar for its request and duration.",
            thresholds_ms.0, thresholds_ms.1
        ),
        &timeline(&title, &spans, Some(thresholds_ms)),
    )
}

/// The dataset page: histograms of prompt, output and total tokens per request
/// (output tokens of successful requests).
pub fn dataset_page(r: &RunResult) -> String {
    let recs: Vec<_> = r.outcome.records.iter().filter(|x| !x.warmup).collect();
    let prompt: Vec<f64> = recs.iter().map(|x| x.prompt_tokens as f64).collect();
    let ok: Vec<_> = recs.iter().filter(|x| x.success()).collect();
    let output: Vec<f64> = ok.iter().map(|x| x.output_tokens as f64).collect();
    let total: Vec<f64> = ok
        .iter()
        .map(|x| (x.prompt_tokens + x.output_tokens) as f64)
        .collect();
    let bins = |n: usize| ((n as f64).sqrt().ceil() as usize).clamp(1, 40);
    let mut body = String::new();
    body.push_str(&histogram(
        "Prompt tokens",
        "tokens per request",
        &prompt,
        bins(prompt.len()),
    ));
    body.push_str(&histogram(
        "Output tokens",
        "tokens per request (successful)",
        &output,
        bins(output.len()),
    ));
    body.push_str(&histogram(
        "Prompt + output tokens",
        "tokens per request (successful)",
        &total,
        bins(total.len()),
    ));
    page(
        &format!("Dataset statistics: {}", r.info.model_id),
        &format!(
            "{} requests sent ({} successful), tokenizer {}.",
            recs.len(),
            ok.len(),
            r.info.tokenizer_id
        ),
        &body,
    )
}
