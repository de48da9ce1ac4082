//! `moonbench compare A.json B.json`: two results side by side with absolute and
//! relative change, and thresholds (`--fail-if "p99_ttft_ms>+10%"`) that make the
//! command fail, so a comparison can gate CI as k6 thresholds do.

use serde_json::{Map, Value};

/// One compared metric.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Result key.
    pub key: String,
    /// Value in A.
    pub a: f64,
    /// Value in B.
    pub b: f64,
}

impl Row {
    /// B − A.
    pub fn diff(&self) -> f64 {
        self.b - self.a
    }

    /// (B − A) / A in percent (`None` when A is 0).
    pub fn pct(&self) -> Option<f64> {
        (self.a != 0.0).then(|| (self.b - self.a) / self.a.abs() * 100.0)
    }
}

/// A threshold: `KEY>VALUE`, `KEY<VALUE`, with `%` for change relative to A
/// (`p99_ttft_ms>+10%`: fail if B is more than 10% above A).
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    /// The text as given.
    pub text: String,
    /// Result key.
    pub key: String,
    /// `>` (true) or `<` (false).
    pub greater: bool,
    /// The limit.
    pub value: f64,
    /// Whether the limit is a change in percent of A.
    pub relative: bool,
}

impl Threshold {
    /// Parses `KEY>VALUE[%]` or `KEY<VALUE[%]`.
    pub fn parse(s: &str) -> Result<Threshold, String> {
        let (pos, greater) = match (s.find('>'), s.find('<')) {
            (Some(i), None) => (i, true),
            (None, Some(i)) => (i, false),
            _ => {
                return Err(format!(
                    "--fail-if '{s}': write KEY>VALUE or KEY<VALUE, e.g. \"p99_ttft_ms>+10%\" or \"failed>0\""
                ));
            }
        };
        let key = s[..pos].trim().to_string();
        let mut rhs = s[pos + 1..].trim();
        let relative = rhs.ends_with('%');
        if relative {
            rhs = rhs[..rhs.len() - 1].trim();
        }
        let value: f64 = rhs
            .trim_start_matches('+')
            .parse()
            .map_err(|_| format!("--fail-if '{s}': '{rhs}' is not a number"))?;
        if key.is_empty() {
            return Err(format!("--fail-if '{s}': the metric name is missing"));
        }
        Ok(Threshold {
            text: s.to_string(),
            key,
            greater,
            value,
            relative,
        })
    }

    /// A failure message if `row` breaks the threshold.
    pub fn check(&self, row: &Row) -> Option<String> {
        let (got, unit) = if self.relative {
            match row.pct() {
                Some(p) => (p, "%"),
                None => (
                    if row.b == 0.0 {
                        0.0
                    } else {
                        f64::INFINITY.copysign(row.b)
                    },
                    "%",
                ),
            }
        } else {
            (row.b, "")
        };
        let broken = if self.greater {
            got > self.value
        } else {
            got < self.value
        };
        broken.then(|| {
            format!(
                "{}: {} is {}{got:.2}{unit} (A {:.3}, B {:.3}), limit {} {}{}{unit}",
                self.key,
                if self.relative { "change" } else { "B" },
                if self.relative && got >= 0.0 { "+" } else { "" },
                row.a,
                row.b,
                if self.greater { ">" } else { "<" },
                if self.relative && self.value >= 0.0 {
                    "+"
                } else {
                    ""
                },
                self.value
            )
        })
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == "inf" => Some(f64::INFINITY),
        Value::Bool(_) => None,
        _ => None,
    }
}

/// Whether a key is one of the headline metrics shown by default.
fn headline(k: &str) -> bool {
    matches!(
        k,
        "completed"
            | "failed"
            | "duration"
            | "total_input_tokens"
            | "total_output_tokens"
            | "request_throughput"
            | "request_goodput"
            | "request_goodput:"
            | "output_throughput"
            | "total_token_throughput"
    ) || k
        .strip_suffix("_ms")
        .and_then(|r| r.split_once('_'))
        .is_some_and(|(stat, m)| {
            let stat_ok = matches!(stat, "mean" | "median" | "std")
                || stat
                    .strip_prefix('p')
                    .is_some_and(|p| p.parse::<f64>().is_ok());
            stat_ok && matches!(m, "ttft" | "tpot" | "itl" | "e2el")
        })
}

/// The numeric keys present in both results, in A's order (headline metrics only
/// unless `all`).
pub fn rows(a: &Map<String, Value>, b: &Map<String, Value>, all: bool) -> Vec<Row> {
    a.iter()
        .filter(|(k, _)| all || headline(k))
        .filter_map(|(k, va)| {
            Some(Row {
                key: k.clone(),
                a: number(va)?,
                b: number(b.get(k)?)?,
            })
        })
        .collect()
}

/// Renders the comparison table.
pub fn table(rows: &[Row], name_a: &str, name_b: &str) -> String {
    let mut s = format!("A: {name_a}\nB: {name_b}\n\n");
    s.push_str(&format!(
        "{:<28} {:>14} {:>14} {:>14} {:>10}\n",
        "metric", "A", "B", "B - A", "change"
    ));
    for r in rows {
        let pct = r.pct().map_or("-".to_string(), |p| format!("{p:+.1}%"));
        s.push_str(&format!(
            "{:<28} {:>14.3} {:>14.3} {:>+14.3} {:>10}\n",
            r.key,
            r.a,
            r.b,
            r.diff(),
            pct
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds() {
        let t = Threshold::parse("p99_ttft_ms>+10%").unwrap();
        assert!(t.relative && t.greater && t.value == 10.0);
        let row = Row {
            key: "p99_ttft_ms".into(),
            a: 100.0,
            b: 115.0,
        };
        assert!(t.check(&row).unwrap().contains("+15.00%"));
        assert!(
            t.check(&Row {
                b: 105.0,
                ..row.clone()
            })
            .is_none()
        );
        let drop = Threshold::parse("request_throughput<-5%").unwrap();
        assert!(
            drop.check(&Row {
                key: "request_throughput".into(),
                a: 10.0,
                b: 9.0
            })
            .is_some()
        );
        assert!(
            drop.check(&Row {
                key: "request_throughput".into(),
                a: 10.0,
                b: 9.8
            })
            .is_none()
        );
        let abs = Threshold::parse("failed>0").unwrap();
        assert!(
            abs.check(&Row {
                key: "failed".into(),
                a: 0.0,
                b: 2.0
            })
            .is_some()
        );
        assert!(Threshold::parse("p99").unwrap_err().contains("KEY>VALUE"));
        assert!(
            Threshold::parse("x>abc")
                .unwrap_err()
                .contains("not a number")
        );
    }

    #[test]
    fn rows_in_both() {
        let a: Map<String, Value> = serde_json::from_str(
            r#"{"completed": 10, "mean_ttft_ms": 5.0, "date": "x", "p99_itl_ms": 1}"#,
        )
        .unwrap();
        let b: Map<String, Value> =
            serde_json::from_str(r#"{"completed": 9, "mean_ttft_ms": 6.0}"#).unwrap();
        let r = rows(&a, &b, false);
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].pct(), Some(20.0));
    }
}
