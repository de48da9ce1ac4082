//! Small SVG charts for the HTML report: line charts with nice ticks (optionally a
//! log2 x axis), legends and axis labels, and a per-request timeline. Plain SVG
//! text, no fonts or scripts, so the report stays one offline file.

use std::fmt::Write;

/// Colours of series, in order.
pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Points (x, y), drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Dashed line (e.g. p99 beside a solid p50).
    pub dashed: bool,
    /// Colour index into [`PALETTE`].
    pub color: usize,
    /// Draw markers at the points.
    pub markers: bool,
}

/// A line chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Title above the plot.
    pub title: String,
    /// X axis label (with unit).
    pub x_label: String,
    /// Y axis label (with unit).
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Log2 scale on x.
    pub x_log: bool,
}

const W: f64 = 640.0;
const H: f64 = 380.0;
const L: f64 = 72.0;
const R: f64 = 170.0;
const T: f64 = 40.0;
const B: f64 = 56.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// "Nice" tick positions covering [lo, hi] (steps of 1, 2 or 5 × 10^k).
pub fn nice_ticks(lo: f64, hi: f64, want: usize) -> Vec<f64> {
    let (lo, hi) = if hi > lo {
        (lo, hi)
    } else {
        (lo - 1.0, hi + 1.0)
    };
    let raw = (hi - lo) / want.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| raw <= *s)
        .unwrap_or(10.0 * mag);
    // Integer multiples of the step, rounded to its decimals (no 0.30000000000000004).
    let decimals = (-step.log10().floor()).max(0.0) as i32;
    let scale = 10f64.powi(decimals);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    (first..=last)
        .map(|k| (k as f64 * step * scale).round() / scale)
        .collect()
}

/// The y axis of a plot: a grid line and a label at each tick, `py` placing it.
fn y_grid(s: &mut String, ticks: &[f64], py: impl Fn(f64) -> f64) {
    for t in ticks {
        let y = py(*t);
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end" fill="#333">{}</text>"##,
            W - R,
            L - 6.0,
            y + 4.0,
            fmt_num(*t)
        );
    }
}

fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 10_000.0 {
        format!("{:.0}k", v / 1000.0)
    } else if v.abs() >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}").trim_end_matches('0').to_string()
    }
}

impl Chart {
    /// Renders the chart as an SVG element.
    pub fn to_svg(&self) -> String {
        let pts: Vec<(f64, f64)> = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .collect();
        let mut s = String::new();
        // The legend's names are never cut: the picture widens to the longest.
        let legend = self
            .series
            .iter()
            .map(|se| text_width(&se.name))
            .fold(0.0, f64::max);
        let width = W.max(W - R + 12.0 + 28.0 + legend + 8.0).ceil();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {H}" width="{width}" height="{H}" role="img" font-family="sans-serif" font-size="12">"#
        );
        let _ = write!(
            s,
            r#"<rect width="{width}" height="{H}" fill="white"/><text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
            (L + W - R) / 2.0,
            esc(&self.title)
        );
        if pts.is_empty() {
            let _ = write!(
                s,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="#777">{}</text></svg>"##,
                W / 2.0,
                H / 2.0,
                crate::i18n::tr("no data")
            );
            return s;
        }
        let xs = |v: f64| if self.x_log { v.max(1e-9).log2() } else { v };
        let (mut x0, mut x1) = pts.iter().fold((f64::MAX, f64::MIN), |(a, b), p| {
            (a.min(xs(p.0)), b.max(xs(p.0)))
        });
        let y1 = pts.iter().fold(f64::MIN, |m, p| m.max(p.1));
        if x1 <= x0 {
            x0 -= 1.0;
            x1 += 1.0;
        }
        let yt = nice_ticks(0.0, if y1 > 0.0 { y1 } else { 1.0 }, 5);
        let (ylo, yhi) = (0.0, *yt.last().unwrap());
        let px = |v: f64| L + (xs(v) - x0) / (x1 - x0) * (W - L - R);
        let py = |v: f64| H - B - (v - ylo) / (yhi - ylo).max(1e-12) * (H - T - B);
        y_grid(&mut s, &yt, py);
        // x ticks
        let xt: Vec<f64> = if self.x_log {
            let (a, b) = (x0.floor() as i32, x1.ceil() as i32);
            (a..=b).map(|e| 2f64.powi(e)).collect()
        } else {
            nice_ticks(x0, x1, 6)
                .into_iter()
                .filter(|v| *v >= x0 - 1e-9 && *v <= x1 + 1e-9)
                .collect()
        };
        for t in &xt {
            let x = px(*t);
            if !(L - 0.5..=W - R + 0.5).contains(&x) {
                continue;
            }
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#999"/><text x="{x:.1}" y="{}" text-anchor="middle" fill="#333">{}</text>"##,
                H - B,
                H - B + 5.0,
                H - B + 19.0,
                fmt_num(*t)
            );
        }
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{}" y2="{}" stroke="#333"/><line x1="{L}" x2="{L}" y1="{T}" y2="{}" stroke="#333"/>"##,
            W - R,
            H - B,
            H - B,
            H - B
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            (L + W - R) / 2.0,
            H - 14.0,
            esc(&self.x_label)
        );
        let _ = write!(
            s,
            r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
            (T + H - B) / 2.0,
            esc(&self.y_label)
        );
        // series and legend
        for (i, se) in self.series.iter().enumerate() {
            let color = PALETTE[se.color % PALETTE.len()];
            let dash = if se.dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let path: Vec<String> = se
                .points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1)))
                .collect();
            if !path.is_empty() {
                let _ = write!(
                    s,
                    r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
                    path.join(" ")
                );
                if se.markers {
                    for p in path {
                        let (x, y) = p.split_once(',').unwrap();
                        let _ = write!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
                    }
                }
            }
            let ly = T + 8.0 + i as f64 * 18.0;
            let lx = W - R + 12.0;
            let _ = write!(
                s,
                r#"<line x1="{lx}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"{dash}/><text x="{}" y="{}">{}</text>"#,
                lx + 22.0,
                lx + 28.0,
                ly + 4.0,
                esc(&se.name)
            );
        }
        s.push_str("</svg>");
        s
    }
}

/// Grouped bars, one group per category (the seed's per-configuration charts):
/// `groups` are (legend name, one value per category), each bar labelled with
/// its value (`decimals` after the point); category names are written slanted.
pub fn bars(
    title: &str,
    y_label: &str,
    categories: &[String],
    groups: &[(String, Vec<f64>)],
    decimals: usize,
) -> String {
    let slant = categories.iter().map(|c| text_width(c)).fold(0.0, f64::max) * 0.7;
    let h = H + slant.min(160.0);
    let bottom = B + slant.min(160.0);
    let legend = groups.iter().map(|g| text_width(&g.0)).fold(0.0, f64::max);
    let width = W.max(W - R + 40.0 + legend + 8.0).ceil();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img" font-family="sans-serif" font-size="12"><rect width="{width}" height="{h}" fill="white"/><text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        (L + W - R) / 2.0,
        esc(title)
    );
    let top = groups
        .iter()
        .flat_map(|g| g.1.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max);
    if categories.is_empty() || top <= 0.0 {
        let _ = write!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#777">{}</text></svg>"##,
            W / 2.0,
            h / 2.0,
            crate::i18n::tr("no data")
        );
        return s;
    }
    let ticks = nice_ticks(0.0, top, 5);
    let y1 = ticks.last().copied().unwrap_or(top).max(top);
    let py = |v: f64| h - bottom - (v / y1) * (h - bottom - T);
    y_grid(&mut s, &ticks, py);
    let slot = (W - R - L) / categories.len() as f64;
    let bw = (slot * 0.8) / groups.len().max(1) as f64;
    for (ci, cat) in categories.iter().enumerate() {
        let x0 = L + ci as f64 * slot + slot * 0.1;
        for (gi, (_, vals)) in groups.iter().enumerate() {
            let Some(v) = vals.get(ci).copied().filter(|v| v.is_finite()) else {
                continue;
            };
            let x = x0 + gi as f64 * bw;
            let y = py(v);
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{:.decimals$}</text>"#,
                (bw - 2.0).max(1.0),
                (h - bottom - y).max(0.0),
                PALETTE[gi % PALETTE.len()],
                x + bw / 2.0,
                y - 3.0,
                v
            );
        }
        let cx = x0 + slot * 0.4;
        let _ = write!(
            s,
            r#"<text transform="translate({cx:.1} {:.1}) rotate(-35)" text-anchor="end">{}</text>"#,
            h - bottom + 14.0,
            esc(cat)
        );
    }
    let _ = write!(
        s,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (T + h - bottom) / 2.0,
        esc(y_label)
    );
    if groups.len() > 1 {
        for (gi, (name, _)) in groups.iter().enumerate() {
            let ly = T + 8.0 + gi as f64 * 18.0;
            let lx = W - R + 12.0;
            let _ = write!(
                s,
                r#"<rect x="{lx}" y="{}" width="18" height="10" fill="{}"/><text x="{}" y="{}">{}</text>"#,
                ly - 5.0,
                PALETTE[gi % PALETTE.len()],
                lx + 24.0,
                ly + 4.0,
                esc(name)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A heatmap of scores in 0..1 (rows × columns), red (0) through yellow to
/// green (1), each cell annotated with its score (the seed's performance heatmap).
pub fn heatmap(title: &str, rows: &[String], cols: &[String], scores: &[Vec<f64>]) -> String {
    let left = rows.iter().map(|r| text_width(r)).fold(0.0, f64::max) + 16.0;
    let slant = cols.iter().map(|c| text_width(c)).fold(0.0, f64::max) * 0.7;
    let cell_w = 64.0f64.max(
        if cols.is_empty() {
            64.0
        } else {
            480.0 / cols.len() as f64
        }
        .min(110.0),
    );
    let cell_h = 30.0;
    let width = (left + cell_w * cols.len() as f64 + 24.0).max(320.0).ceil();
    let h = (T + cell_h * rows.len() as f64 + slant + 30.0).ceil();
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {h}" width="{width}" height="{h}" role="img" font-family="sans-serif" font-size="12"><rect width="{width}" height="{h}" fill="white"/><text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        width / 2.0,
        esc(title)
    );
    // RdYlGn's ends and middle, interpolated.
    let color = |v: f64| {
        let v = if v.is_finite() {
            v.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let (a, b, t) = if v < 0.5 {
            ((215.0, 48.0, 39.0), (255.0, 255.0, 191.0), v * 2.0)
        } else {
            ((255.0, 255.0, 191.0), (26.0, 152.0, 80.0), (v - 0.5) * 2.0)
        };
        let mix = |x: f64, y: f64| (x + (y - x) * t).round() as u8;
        format!(
            "#{:02x}{:02x}{:02x}",
            mix(a.0, b.0),
            mix(a.1, b.1),
            mix(a.2, b.2)
        )
    };
    for (ri, row) in rows.iter().enumerate() {
        let y = T + ri as f64 * cell_h;
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + cell_h / 2.0 + 4.0,
            esc(row)
        );
        for ci in 0..cols.len() {
            let v = scores
                .get(ri)
                .and_then(|r| r.get(ci))
                .copied()
                .unwrap_or(f64::NAN);
            let x = left + ci as f64 * cell_w;
            let _ = write!(
                s,
                r##"<rect x="{x:.1}" y="{y:.1}" width="{cell_w:.1}" height="{cell_h}" fill="{}" stroke="white"/><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#222">{}</text>"##,
                color(v),
                x + cell_w / 2.0,
                y + cell_h / 2.0 + 4.0,
                if v.is_finite() {
                    format!("{v:.2}")
                } else {
                    "-".into()
                }
            );
        }
    }
    let yb = T + cell_h * rows.len() as f64 + 12.0;
    for (ci, col) in cols.iter().enumerate() {
        let x = left + ci as f64 * cell_w + cell_w / 2.0;
        let _ = write!(
            s,
            r#"<text transform="translate({x:.1} {yb:.1}) rotate(-35)" text-anchor="end">{}</text>"#,
            esc(col)
        );
    }
    s.push_str("</svg>");
    s
}

/// The `width` and `height` of an SVG this module drew (its root's attributes).
pub fn size_of(svg: &str) -> Option<(f64, f64)> {
    let head = &svg[..svg.find('>')?];
    let attr = |name: &str| -> Option<f64> {
        let at = head.find(&format!(" {name}=\""))? + name.len() + 3;
        head[at..].split('"').next()?.parse().ok()
    };
    Some((attr("width")?, attr("height")?))
}

/// Charts of this module in one picture under a title, `columns` to a row, each
/// row as tall as its tallest chart (the seed's one-image dashboard).
pub fn compose(title: &str, parts: &[String], columns: usize) -> String {
    let columns = columns.max(1);
    let sizes: Vec<(f64, f64)> = parts.iter().map(|p| size_of(p).unwrap_or((W, H))).collect();
    let col_w: Vec<f64> = (0..columns)
        .map(|c| {
            sizes
                .iter()
                .skip(c)
                .step_by(columns)
                .map(|s| s.0)
                .fold(0.0, f64::max)
        })
        .collect();
    let gap = 12.0;
    let top = 44.0;
    let width = (col_w.iter().sum::<f64>() + gap * (columns as f64 + 1.0)).ceil();
    let mut body = String::new();
    let mut y = top;
    for (r, row) in sizes.chunks(columns).enumerate() {
        let mut x = gap;
        for (c, _) in row.iter().enumerate() {
            let part = &parts[r * columns + c];
            // A nested <svg> placed at (x, y): the chart keeps its own viewport.
            let _ = write!(
                body,
                "{}",
                part.replacen("<svg ", &format!("<svg x=\"{x}\" y=\"{y}\" "), 1)
            );
            x += col_w[c] + gap;
        }
        y += row.iter().map(|s| s.1).fold(0.0, f64::max) + gap;
    }
    let height = y.ceil();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" font-family="sans-serif" font-size="12"><rect width="{width}" height="{height}" fill="#f4f4f4"/><text x="{}" y="28" font-size="20" font-weight="bold" text-anchor="middle">{}</text>{body}</svg>"##,
        width / 2.0,
        esc(title)
    )
}

/// About how wide `text` is at the charts' 12 px sans-serif: 7 px a character,
/// 12 px for a wide (CJK) one.
pub fn text_width(text: &str) -> f64 {
    text.chars()
        .map(|c| if (c as u32) >= 0x2E80 { 12.0 } else { 7.0 })
        .sum()
}

/// One request in a timeline: start, first token (if any) and end, in seconds,
/// and the gaps between its tokens after the first (empty: drawn as one bar).
#[derive(Debug, Clone)]
pub struct Span {
    /// The request's index in the schedule (shown when hovering).
    pub index: u64,
    /// Send start.
    pub start: f64,
    /// First token.
    pub first: Option<f64>,
    /// End.
    pub end: f64,
    /// Whether it succeeded.
    pub ok: bool,
    /// Inter-token latencies after the first token (s), in order.
    pub gaps: Vec<f64>,
}

/// Colours of the ITL classes of [`timeline`]: below, between and above the thresholds.
const ITL_COLORS: [&str; 3] = ["#109618", "#ff7f0e", "#d62728"];

/// A per-request timeline: one row per request, grey while waiting for the first
/// token, then coloured while streaming — by ITL class (green, orange, red around
/// `itl_thresholds_ms`) when given and the span has its gaps — red if it failed.
/// Each bar names its request and duration on hover.
pub fn timeline(title: &str, spans: &[Span], itl_thresholds_ms: Option<(f64, f64)>) -> String {
    let mut s = String::new();
    let rows = spans.len().max(1) as f64;
    let h = (T + B + (rows * 3.0).clamp(120.0, 600.0)).round();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {h}" width="{W}" height="{h}" role="img" font-family="sans-serif" font-size="12"><rect width="{W}" height="{h}" fill="white"/>"#
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        (L + W - R) / 2.0,
        esc(title)
    );
    let t_max = spans.iter().map(|x| x.end).fold(0.0, f64::max).max(1e-6);
    let t_min = spans
        .iter()
        .map(|x| x.start)
        .fold(f64::MAX, f64::min)
        .min(0.0);
    let px = |t: f64| L + (t - t_min) / (t_max - t_min) * (W - L - R);
    let row_h = (h - T - B) / rows;
    for t in nice_ticks(t_min, t_max, 6)
        .into_iter()
        .filter(|t| *t >= t_min && *t <= t_max)
    {
        let x = px(t);
        let _ = write!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{T}" y2="{}" stroke="#e5e5e5"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
            h - B,
            h - B + 18.0,
            fmt_num(t)
        );
    }
    let class = |g: f64| match itl_thresholds_ms {
        Some((a, _)) if g * 1000.0 < a => 0,
        Some((_, b)) if g * 1000.0 < b => 1,
        _ => 2,
    };
    for (i, sp) in spans.iter().enumerate() {
        let y = T + i as f64 * row_h;
        let hh = (row_h * 0.8).max(0.5);
        let first = sp.first.unwrap_or(sp.end);
        let mut bar = |from: f64, to: f64, color: &str, what: String| {
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{hh:.2}" fill="{color}"><title>{}</title></rect>"#,
                px(from),
                (px(to) - px(from)).max(0.5),
                crate::i18n::trf("request {}: {}", &[&sp.index, &what])
            );
        };
        bar(
            sp.start,
            first,
            "#bbbbbb",
            format!("TTFT {:.1} ms", (first - sp.start) * 1000.0),
        );
        if !sp.ok {
            bar(first, sp.end, "#e88a8b", crate::i18n::tr("failed").into());
        } else if itl_thresholds_ms.is_some() && !sp.gaps.is_empty() {
            // Runs of tokens in the same ITL class become one bar.
            let mut t = first;
            let mut k = 0;
            while k < sp.gaps.len() {
                let c = class(sp.gaps[k]);
                let (from, mut n) = (t, 0);
                while k < sp.gaps.len() && class(sp.gaps[k]) == c {
                    t += sp.gaps[k];
                    k += 1;
                    n += 1;
                }
                bar(
                    from,
                    t,
                    ITL_COLORS[c],
                    crate::i18n::trf(
                        "{} token(s) over {} ms",
                        &[&n, &format!("{:.1}", (t - from) * 1000.0)],
                    ),
                );
            }
        } else {
            bar(
                first,
                sp.end,
                PALETTE[0],
                crate::i18n::trf(
                    "streaming {} ms",
                    &[&format!("{:.1}", (sp.end - first) * 1000.0)],
                ),
            );
        }
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (L + W - R) / 2.0,
        h - 14.0,
        crate::i18n::tr("time since the run started (s)")
    );
    let _ = write!(
        s,
        r#"<text transform="translate(16 {}) rotate(-90)" text-anchor="middle">{}</text>"#,
        (T + h - B) / 2.0,
        crate::i18n::tr("requests (in send order)")
    );
    let lx = W - R + 12.0;
    let _ = write!(
        s,
        r##"<rect x="{lx}" y="{}" width="18" height="10" fill="#bbbbbb"/><text x="{}" y="{}">{}</text>"##,
        T + 4.0,
        lx + 24.0,
        T + 13.0,
        crate::i18n::tr("waiting (TTFT)")
    );
    let classes: Vec<(String, &str)> = match itl_thresholds_ms {
        Some((a, b)) => vec![
            (format!("ITL < {a} ms"), ITL_COLORS[0]),
            (format!("{a} ≤ ITL < {b} ms"), ITL_COLORS[1]),
            (format!("ITL ≥ {b} ms"), ITL_COLORS[2]),
        ],
        None => vec![(crate::i18n::tr("streaming").into(), PALETTE[0])],
    };
    for (k, (name, color)) in classes.iter().enumerate() {
        let y = T + 22.0 + 18.0 * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{lx}" y="{y}" width="18" height="10" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            lx + 24.0,
            y + 9.0,
            esc(name)
        );
    }
    let y = T + 22.0 + 18.0 * classes.len() as f64;
    let _ = write!(
        s,
        r##"<rect x="{lx}" y="{y}" width="18" height="10" fill="#e88a8b"/><text x="{}" y="{}">failed</text>"##,
        lx + 24.0,
        y + 9.0
    );
    s.push_str("</svg>");
    s
}

/// A histogram of `values` in about `bins` equal-width bins (bar heights are
/// counts), with the mean and the range in the title line below.
pub fn histogram(title: &str, x_label: &str, values: &[f64], bins: usize) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" font-family="sans-serif" font-size="12"><rect width="{W}" height="{H}" fill="white"/><text x="{}" y="22" font-size="15" font-weight="bold" text-anchor="middle">{}</text>"#,
        (L + W - R) / 2.0,
        esc(title)
    );
    let vals: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let (lo, hi) = vals
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(*v), b.max(*v)));
    if vals.is_empty() {
        s.push_str("</svg>");
        return s;
    }
    let bins = bins.max(1);
    let width = ((hi - lo) / bins as f64).max(1.0);
    let mut counts = vec![0u64; bins];
    for v in &vals {
        let k = (((v - lo) / width) as usize).min(bins - 1);
        counts[k] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let x_hi = lo + width * bins as f64;
    let px = |x: f64| L + (x - lo) / (x_hi - lo) * (W - L - R);
    let py = |c: f64| H - B - c / top * (H - T - B);
    for t in nice_ticks(0.0, top, 5) {
        let y = py(t);
        let _ = write!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            W - R,
            L - 6.0,
            y + 4.0,
            fmt_num(t)
        );
    }
    for t in nice_ticks(lo, x_hi, 6)
        .into_iter()
        .filter(|t| *t >= lo && *t <= x_hi)
    {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            px(t),
            H - B + 18.0,
            fmt_num(t)
        );
    }
    for (k, c) in counts.iter().enumerate() {
        let x0 = lo + width * k as f64;
        let _ = write!(
            s,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}–{}: {c}</title></rect>"#,
            px(x0),
            py(*c as f64),
            (px(x0 + width) - px(x0) - 1.0).max(0.5),
            H - B - py(*c as f64),
            PALETTE[0],
            fmt_num(x0),
            fmt_num(x0 + width)
        );
    }
    let mean = vals.iter().sum::<f64>() / vals.len() as f64;
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(16 {}) rotate(-90)" text-anchor="middle">requests</text><text x="{}" y="{}">n = {}</text><text x="{}" y="{}">mean {}</text><text x="{}" y="{}">min {}</text><text x="{}" y="{}">max {}</text>"#,
        (L + W - R) / 2.0,
        H - 14.0,
        esc(x_label),
        (T + H - B) / 2.0,
        W - R + 12.0,
        T + 12.0,
        vals.len(),
        W - R + 12.0,
        T + 30.0,
        fmt_num((mean * 10.0).round() / 10.0),
        W - R + 12.0,
        T + 48.0,
        fmt_num(lo),
        W - R + 12.0,
        T + 66.0,
        fmt_num(hi)
    );
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_nice() {
        assert_eq!(
            nice_ticks(0.0, 97.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        // 0.9 / 4 = 0.225 per tick rounds up to a step of 0.5.
        assert_eq!(nice_ticks(0.0, 0.9, 4), vec![0.0, 0.5, 1.0]);
        assert_eq!(
            nice_ticks(0.0, 0.9, 10),
            vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
        );
    }

    #[test]
    fn chart_has_title_labels_and_legend() {
        let c = Chart {
            title: "Output throughput".into(),
            x_label: "max concurrency".into(),
            y_label: "tokens/s".into(),
            series: vec![Series {
                name: "io=(128,64)".into(),
                points: vec![(1.0, 10.0), (8.0, 70.0)],
                dashed: false,
                color: 0,
                markers: true,
            }],
            x_log: true,
        };
        let svg = c.to_svg();
        for needle in [
            "Output throughput",
            "max concurrency",
            "tokens/s",
            "io=(128,64)",
            "<polyline",
            "<circle",
        ] {
            assert!(svg.contains(needle), "{needle}");
        }
        let span = Span {
            index: 7,
            start: 0.0,
            first: Some(0.05),
            end: 0.3,
            ok: true,
            gaps: vec![0.01, 0.01, 0.03, 0.06, 0.06, 0.01],
        };
        let t = timeline("Timeline", std::slice::from_ref(&span), None);
        assert!(t.contains("waiting (TTFT)") && t.contains("request 7: streaming 250.0 ms"));
        // With thresholds, runs of tokens in one ITL class are one bar each.
        let t = timeline("Timeline", &[span], Some((25.0, 50.0)));
        for want in [
            "request 7: TTFT 50.0 ms",
            "request 7: 2 token(s) over 20.0 ms",
            "request 7: 1 token(s) over 30.0 ms",
            "request 7: 2 token(s) over 120.0 ms",
            "25 ≤ ITL &lt; 50 ms",
        ] {
            assert!(t.contains(want), "{want} in {t}");
        }
        assert_eq!(t.matches("<title>request 7").count(), 5);
        let h = histogram("Prompt tokens", "tokens", &[1.0, 2.0, 2.0, 9.0], 4);
        assert!(h.contains("n = 4") && h.contains(": 3</title>"), "{h}");
    }
}
