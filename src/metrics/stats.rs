//! Descriptive statistics with numpy's semantics: population standard deviation
//! (`ddof=0`) and percentiles by linear interpolation (`np.percentile`'s default
//! method, "type 7": rank = p/100·(n−1)).
//! [`describe_passes`] gives the same numbers for samples too large to hold
//! (a run's per-token gaps) by walking them several times instead of sorting a copy.
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
    percentile_by_rank(sorted.len(), p, |i| sorted[i])
}

/// The two ranks (0-based, ascending order) the `p`-th percentile of `n` values
/// interpolates between, and the weight of the upper one.
fn percentile_ranks(n: usize, p: f64) -> (usize, usize, f64) {
    if n <= 1 {
        return (0, 0, 0.0);
    }
    let rank = (p / 100.0).clamp(0.0, 1.0) * (n - 1) as f64;
    let lo = rank.floor() as usize;
    (lo, rank.ceil() as usize, rank - lo as f64)
}

/// The `p`-th percentile of `n` values given the `i`-th smallest by `at(i)`.
fn percentile_by_rank(n: usize, p: f64, at: impl Fn(usize) -> f64) -> f64 {
    let (lo, hi, frac) = percentile_ranks(n, p);
    if lo == hi {
        at(lo)
    } else {
        at(lo) + (at(hi) - at(lo)) * frac
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

/// Up to this many values, [`describe_passes`] copies and sorts them (fastest);
/// above it, it selects the ranks it needs in four counting passes.
const SORT_LIMIT: usize = 1 << 16;

/// Up to this many values (32 MiB), [`describe_passes`] walks the sample twice and
/// works on a copy; above it, six times, holding nothing per value.
const COPY_LIMIT: usize = 1 << 22;

/// [`describe`] of a sample walked by `values()` — called once per pass, each
/// call yielding the same values in the same order — without holding it: a mean
/// and variance pass, then (above [`SORT_LIMIT`] values) [`select_ranks`] for the
/// median and percentiles, on a copy up to [`COPY_LIMIT`] values. The order
/// statistics are exactly those of sorting; the mean is summed in walk order, not
/// sorted order (they can differ in the last bit).
pub fn describe_passes<I: Iterator<Item = f64>>(values: impl Fn() -> I, ps: &[f64]) -> Stats {
    describe_passes_up_to(values, ps, COPY_LIMIT)
}

/// [`describe_passes`] with the copy limit given (tests walk both ways).
fn describe_passes_up_to<I: Iterator<Item = f64>>(
    values: impl Fn() -> I,
    ps: &[f64],
    copy_limit: usize,
) -> Stats {
    let (mut count, mut sum) = (0usize, 0.0f64);
    let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
    // Internal iteration (for_each, fold) throughout: a flat_map over records
    // runs as nested loops instead of one state-machine step per value.
    values().for_each(|v| {
        count += 1;
        sum += v;
        min = min.min(v);
        max = max.max(v);
    });
    if count == 0 {
        return describe_vec(Vec::new(), ps);
    }
    let mean = sum / count as f64;
    // Generic, so the walk of the records stays a concrete loop (no call per value).
    fn var_of(it: impl Iterator<Item = f64>, mean: f64, count: usize) -> f64 {
        it.fold(0.0, |acc, v| acc + (v - mean) * (v - mean)) / count as f64
    }
    // A copy (up to copy_limit values) is walked far faster than the records.
    let copy: Option<Vec<f64>> = (count > SORT_LIMIT && count <= copy_limit).then(|| {
        let mut v = Vec::with_capacity(count);
        values().for_each(|x| v.push(x));
        v
    });
    let var = match &copy {
        Some(v) => var_of(v.iter().copied(), mean, count),
        None => var_of(values(), mean, count),
    };
    let all: Vec<f64> = std::iter::once(50.0).chain(ps.iter().copied()).collect();
    let pick: Box<dyn Fn(f64) -> f64> = if count <= SORT_LIMIT {
        let mut sorted: Vec<f64> = values().collect();
        sorted.sort_unstable_by(|a, b| a.total_cmp(b));
        Box::new(move |p| percentile_sorted(&sorted, p))
    } else {
        let mut ranks: Vec<usize> = all
            .iter()
            .flat_map(|&p| {
                let (lo, hi, _) = percentile_ranks(count, p);
                [lo, hi]
            })
            .collect();
        ranks.sort_unstable();
        ranks.dedup();
        let found = match copy {
            Some(mut v) => select_in_place(&mut v, &ranks),
            None => select_ranks(&values, count, &ranks),
        };
        let at = move |i: usize| found[ranks.binary_search(&i).expect("rank selected")];
        Box::new(move |p| percentile_by_rank(count, p, &at))
    };
    Stats {
        count,
        mean,
        median: pick(50.0),
        std: var.sqrt(),
        min,
        max,
        percentiles: ps.iter().map(|&p| (p, pick(p))).collect(),
    }
}

/// The values at 0-based ascending `ranks` (sorted, distinct, each < `v.len()`) of
/// `v`, by selection in place: each rank's selection leaves the larger values
/// after it, where the next rank is selected.
fn select_in_place(v: &mut [f64], ranks: &[usize]) -> Vec<f64> {
    let mut from = 0;
    ranks
        .iter()
        .map(|&r| {
            let (_, x, _) = v[from..].select_nth_unstable_by(r - from, f64::total_cmp);
            let x = *x;
            from = r + 1;
            x
        })
        .collect()
}

/// A `u64` whose unsigned order is `f64::total_cmp`'s order.
fn order_key(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | 1 << 63 }
}

/// The inverse of [`order_key`].
fn from_order_key(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

/// The values at 0-based ascending `ranks` (sorted, distinct, each < `count`) of the
/// `count` values `values()` yields, by radix selection: four passes, each fixing 16
/// more bits of every wanted value's [`order_key`] by counting the values that share
/// the bits fixed so far. Memory: one 65,536-bucket count per distinct prefix.
fn select_ranks<I: Iterator<Item = f64>>(
    values: &impl Fn() -> I,
    count: usize,
    ranks: &[usize],
) -> Vec<f64> {
    // Per wanted rank: the key bits fixed so far, and its rank among the values
    // sharing them.
    let mut state: Vec<(u64, usize)> = ranks.iter().map(|&r| (0, r)).collect();
    for level in 0..4u32 {
        let fixed = 16 * level; // bits already fixed
        let mut prefixes: Vec<u64> = state.iter().map(|s| s.0).collect();
        prefixes.dedup(); // ranks ascend, so equal prefixes are adjacent
        let mut hist = vec![0u64; prefixes.len() << 16];
        values().for_each(|v| {
            let k = order_key(v);
            let prefix = if fixed == 0 { 0 } else { k >> (64 - fixed) };
            let slot = if prefixes.len() == 1 {
                if prefixes[0] != prefix {
                    return;
                }
                0
            } else {
                match prefixes.binary_search(&prefix) {
                    Ok(i) => i,
                    Err(_) => return,
                }
            };
            let digit = ((k >> (48 - fixed)) & 0xffff) as usize;
            hist[(slot << 16) | digit] += 1;
        });
        for s in &mut state {
            let slot = prefixes.binary_search(&s.0).expect("own prefix");
            let counts = &hist[slot << 16..(slot + 1) << 16];
            let mut below = 0u64;
            for (digit, &c) in counts.iter().enumerate() {
                if below + c > s.1 as u64 {
                    *s = ((s.0 << 16) | digit as u64, s.1 - below as usize);
                    break;
                }
                below += c;
            }
        }
    }
    debug_assert!(ranks.iter().all(|&r| r < count));
    state.into_iter().map(|(k, _)| from_order_key(k)).collect()
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

    /// A small deterministic generator, so the test needs no crate and fails the
    /// same way every time.
    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        *seed >> 11
    }

    #[test]
    fn radix_selection_equals_sorting() {
        let mut seed = 7;
        let samples: Vec<Vec<f64>> = vec![
            vec![4.25],
            vec![
                0.0,
                -0.0,
                1.0,
                -1.0,
                1e-300,
                -1e300,
                f64::MAX,
                f64::MIN_POSITIVE,
            ],
            // Many duplicates, as per-token gaps spread over a chunk give.
            (0..5000).map(|i| ((i * 7919) % 13) as f64 / 3.0).collect(),
            (0..20000)
                .map(|_| (lcg(&mut seed) % 1_000_000) as f64 / 1e3 - 100.0)
                .collect(),
            (0..3000)
                .map(|_| f64::from_bits(lcg(&mut seed) << 11 >> 2))
                .collect(),
        ];
        for v in samples {
            let mut sorted = v.clone();
            sorted.sort_unstable_by(|a, b| a.total_cmp(b));
            let ranks: Vec<usize> = [0, 1, v.len() / 2, v.len() * 99 / 100, v.len() - 1]
                .into_iter()
                .filter(|&r| r < v.len())
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect();
            let got = select_ranks(&|| v.iter().copied(), v.len(), &ranks);
            let in_place = select_in_place(&mut v.clone(), &ranks);
            for ((r, g), h) in ranks.iter().zip(got).zip(in_place) {
                assert_eq!(g.to_bits(), sorted[*r].to_bits(), "rank {r} of {}", v.len());
                assert_eq!(h.to_bits(), sorted[*r].to_bits(), "rank {r} of {}", v.len());
            }
        }
    }

    #[test]
    fn passes_equal_describe_above_the_sort_limit() {
        let mut seed = 11;
        let ps = [25.0, 50.0, 90.0, 99.0, 99.9, 100.0];
        for n in [SORT_LIMIT + 1, 3 * SORT_LIMIT + 17] {
            // Gaps in ms with heavy repetition, like ITL spread over chunks.
            let v: Vec<f64> = (0..n)
                .map(|_| (lcg(&mut seed) % 40_000) as f64 / 997.0)
                .collect();
            let want = describe(&v, &ps);
            // On a copy, and by walking the values again and again.
            for limit in [COPY_LIMIT, 0] {
                let got = describe_passes_up_to(|| v.iter().copied(), &ps, limit);
                assert_eq!(got.count, want.count);
                assert_eq!(
                    (got.min, got.max, got.median),
                    (want.min, want.max, want.median)
                );
                assert_eq!(got.percentiles, want.percentiles);
                assert!((got.mean - want.mean).abs() <= 1e-9 * want.mean.abs());
                assert!((got.std - want.std).abs() <= 1e-9 * want.std.abs());
            }
        }
        let small = [3.1, 0.5, 7.25, 2.0];
        assert_eq!(
            describe_passes(|| small.iter().copied(), &ps).percentiles,
            describe(&small, &ps).percentiles
        );
        assert_eq!(describe_passes(std::iter::empty, &ps), describe(&[], &ps));
    }

    #[test]
    fn labels_like_vllm() {
        assert_eq!(percentile_label(99.0), "99");
        assert_eq!(percentile_label(99.9), "99.9");
        assert_eq!(percentile_label(50.0), "50");
    }
}
