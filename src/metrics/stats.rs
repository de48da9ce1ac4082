//! Descriptive statistics with numpy's semantics: population standard deviation
//! (`ddof=0`) and percentiles by linear interpolation (`np.percentile`'s default
//! method, "type 7": rank = p/100·(n−1)).
//! Also the microsecond histogram (HDR) that timing-error measurements share.

/// Mean, median, standard deviation and the requested percentiles of a sample.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stats {
    /// Number of values.
    pub count: usize,
    /// Arithmetic mean (0 for an empty sample, as vLLM).
    pub mean: f64,
    /// Median (= the 50th percentile).
    pub median: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// `(p, value)` for each requested percentile, in the order requested.
    pub percentiles: Vec<(f64, f64)>,
}

/// The `p`-th percentile of an ascending-sorted, non-empty slice, interpolated linearly.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    debug_assert!(!sorted.is_empty());
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    if lo == hi {
        sorted[lo]
    } else {
        sorted[lo] + (sorted[hi] - sorted[lo]) * frac
    }
}

/// Computes [`Stats`] of `values` (any order), with the percentiles `ps` (0–100).
/// An empty sample gives all zeros, as vLLM does.
pub fn describe(values: &[f64], ps: &[f64]) -> Stats {
    describe_vec(values.to_vec(), ps)
}

/// [`describe`] of values the caller no longer needs: sorts them in place, so a
/// run's millions of inter-token gaps are held once, not twice.
pub fn describe_vec(mut sorted: Vec<f64>, ps: &[f64]) -> Stats {
    if sorted.is_empty() {
        return Stats {
            percentiles: ps.iter().map(|&p| (p, 0.0)).collect(),
            ..Default::default()
        };
    }
    sorted.sort_unstable_by(|a, b| a.total_cmp(b));
    let n = sorted.len() as f64;
    let mean = sorted.iter().sum::<f64>() / n;
    let var = sorted.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    Stats {
        count: sorted.len(),
        mean,
        median: percentile_sorted(&sorted, 50.0),
        std: var.sqrt(),
        min: sorted[0],
        max: sorted[sorted.len() - 1],
        percentiles: ps
            .iter()
            .map(|&p| (p, percentile_sorted(&sorted, p)))
            .collect(),
    }
}

/// The label vLLM gives percentile `p` in key names: `99` for 99.0, `99.9` for 99.9.
pub fn percentile_label(p: f64) -> String {
    if p.fract() == 0.0 {
        format!("{}", p as i64)
    } else {
        format!("{p}")
    }
}

/// A new histogram of microseconds (1 µs .. 1 h, 3 significant digits).
pub fn micros_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values computed with numpy 1.26:
    //   x = [3.1, 0.5, 7.25, 2.0, 9.0, 4.4, 1.75]
    //   np.percentile(x, [0, 10, 25, 50, 90, 95, 99, 99.9, 100])
    //   -> [0.5, 1.25, 1.875, 3.1, 7.95, 8.475, 8.895, 8.9895, 9.0]
    //   np.mean(x) = 4.0, np.std(x) = 2.874642834957315
    #[test]
    fn matches_numpy_linear_percentiles() {
        let x = [3.1, 0.5, 7.25, 2.0, 9.0, 4.4, 1.75];
        let ps = [0.0, 10.0, 25.0, 50.0, 90.0, 95.0, 99.0, 99.9, 100.0];
        let want = [0.5, 1.25, 1.875, 3.1, 7.95, 8.475, 8.895, 8.9895, 9.0];
        let s = describe(&x, &ps);
        for ((p, got), w) in s.percentiles.iter().zip(want) {
            assert!((got - w).abs() < 1e-9, "p{p}: got {got}, want {w}");
        }
        assert!((s.mean - 4.0).abs() < 1e-12);
        let var: f64 = x.iter().map(|v| (v - 4.0) * (v - 4.0)).sum::<f64>() / 7.0;
        assert!((s.std - var.sqrt()).abs() < 1e-12);
        assert!((s.std - 2.874_642_834_957_315).abs() < 1e-12);
        assert_eq!(s.median, 3.1);
    }

    #[test]
    fn even_count_median_interpolates() {
        let s = describe(&[4.0, 1.0, 3.0, 2.0], &[50.0, 75.0]);
        assert_eq!(s.median, 2.5);
        assert_eq!(s.percentiles[1].1, 3.25);
    }

    #[test]
    fn empty_is_zero() {
        let s = describe(&[], &[99.0]);
        assert_eq!(s.mean, 0.0);
        assert_eq!(s.percentiles, vec![(99.0, 0.0)]);
    }

    #[test]
    fn labels_like_vllm() {
        assert_eq!(percentile_label(99.0), "99");
        assert_eq!(percentile_label(99.9), "99.9");
        assert_eq!(percentile_label(50.0), "50");
    }
}
