//! Prometheus' text exposition format, written: a metric family's `# HELP`/`# TYPE`
//! header, samples, and classic (cumulative-bucket) histograms. Used by the
//! simulator's `/metrics` (vLLM's names) and by moonbench's own live metrics
//! (`--metrics-port`, [`super::live`]).

use std::fmt::Write;

/// Writes a family's `# HELP` and `# TYPE` lines (`kind`: counter, gauge, histogram).
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Writes one sample `name{labels} value`; `labels` is `a="x",b="y"` or empty.
pub fn sample(out: &mut String, name: &str, labels: &str, value: f64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value:?}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value:?}");
    }
}

/// Escapes a label value (backslash, quote, newline), as the format requires.
pub fn label_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A classic histogram: counts per bucket (upper bounds in `bounds`, seconds),
/// the sum and the count of every observation (values above the last bound
/// count only in `+Inf`).
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    bounds: &'static [f64],
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    /// An empty histogram with these bucket upper bounds (ascending).
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: vec![0; bounds.len()],
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds one observation.
    pub fn observe(&mut self, v: f64) {
        if let Some(b) = self.bounds.iter().position(|&le| v <= le) {
            self.buckets[b] += 1;
        }
        self.sum += v;
        self.count += 1;
    }

    /// Adds every observation of `other` (same bounds).
    pub fn add(&mut self, other: &Histogram) {
        for (t, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *t += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes the `_bucket` (cumulative, `le` after `labels`), `_sum` and `_count`
    /// samples of family `name`.
    pub fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cum = 0;
        for (b, le) in self.bounds.iter().enumerate() {
            cum += self.buckets[b];
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le:?}\"}} {cum}.0");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}.0",
            self.count
        );
        sample(out, &format!("{name}_sum"), labels, self.sum);
        sample(out, &format!("{name}_count"), labels, self.count as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative_and_inf_counts_all() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.5, 0.7, 3.0] {
            h.observe(v);
        }
        let mut s = String::new();
        h.write(&mut s, "x", "a=\"1\"");
        assert_eq!(
            s,
            "x_bucket{a=\"1\",le=\"0.1\"} 1.0\nx_bucket{a=\"1\",le=\"1.0\"} 3.0\n\
             x_bucket{a=\"1\",le=\"+Inf\"} 4.0\nx_sum{a=\"1\"} 4.25\nx_count{a=\"1\"} 4.0\n"
        );
        assert_eq!(label_value("a\"b\\"), "a\\\"b\\\\");
    }
}
