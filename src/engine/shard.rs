//! Sharded runs: this process is shard `index` of `count`, and sends only the
//! requests of the schedule whose position `k` has `k mod count == index`, at
//! their times in the whole schedule, so the union of the shards is the unsharded
//! run at the same overall rate. The shard comes from `--shard I/N` (taken out of
//! `bench`, `sweep` and `run` arguments before their scripts see them), else
//! `MOONBENCH_SHARD=I/N`, else Kubernetes' `JOB_COMPLETION_INDEX` with
//! `--shards N` (or `MOONBENCH_SHARDS=N`), else Slurm's
//! `SLURM_PROCID`/`SLURM_NTASKS`. Concurrency limits and warm-ups are split
//! between the shards ([`Shard::part`]). `--start-at TIME` (or
//! `MOONBENCH_START_AT`) gives the shards a common start: each prepares its
//! dataset and connections, then waits for that wall-clock time ([`start_at`]).

use std::sync::OnceLock;

/// Shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard's number, `0..count`.
    pub index: u64,
    /// How many shards the run has (at least 2 when sharded).
    pub count: u64,
}

impl Shard {
    /// Parses `I/N` (`where` names the flag or variable in errors).
    pub fn parse(s: &str, place: &str) -> Result<Shard, String> {
        let bad = |why: &str| {
            format!(
                "{place} {s}: {why}; write I/N with 0 <= I < N, e.g. --shard 0/4 for the first of four"
            )
        };
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| bad("not of the form I/N"))?;
        let index: u64 = i
            .trim()
            .parse()
            .map_err(|_| bad("I is not a whole number"))?;
        let count: u64 = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        if count == 0 {
            return Err(bad("N must be at least 1"));
        }
        if index >= count {
            return Err(bad(&format!(
                "shards are numbered from 0, so the last of {count} is {}",
                count - 1
            )));
        }
        Ok(Shard { index, count })
    }

    /// Whether schedule position `k` is this shard's.
    pub fn owns(&self, k: u64) -> bool {
        k % self.count == self.index
    }

    /// This shard's part of `total` (a concurrency limit, warm-ups): the total
    /// divided as evenly as whole numbers allow, the lower shards taking the
    /// remainder, so the parts add up to `total`.
    pub fn part(&self, total: u64) -> u64 {
        total / self.count + u64::from(self.index < total % self.count)
    }
}

static CURRENT: OnceLock<Option<Shard>> = OnceLock::new();
static START_AT: OnceLock<Option<f64>> = OnceLock::new();

/// A fingerprint of what a run sends, the same in every shard of one run and
/// different when the seed, dataset, lengths, rate or target differ: the
/// requests' lengths and first prompts, the first 1,000 send times, the request
/// count and the API (FNV-1a, stable across builds). `merge` compares them.
pub fn fingerprint(spec: &super::RunSpec) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain(std::iter::once(&0)) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    let t = &spec.target;
    eat(format!("{} {} {}", t.backend.name, t.endpoint, t.model).as_bytes());
    eat(format!("{:?} {:?}", spec.num_requests, spec.duration).as_bytes());
    for (i, r) in spec.requests.iter().enumerate() {
        eat(&r.prompt_tokens.to_le_bytes());
        eat(&r.max_tokens.unwrap_or(0).to_le_bytes());
        if i < 64 {
            match &r.prompt {
                // The clip's bytes, not their Debug listing (megabytes of numbers).
                crate::dataset::Prompt::Audio(a) => eat(&a.data),
                p => eat(format!("{p:?}").as_bytes()),
            }
        }
    }
    for offset in spec.arrival.iter().take(1000) {
        eat(&offset.to_bits().to_le_bytes());
    }
    format!("{h:016x}")
}

/// How far in the past a start time may be when it is given, or when a shard is
/// ready: clocks of different machines and process start-up differ this much.
pub const START_TOLERANCE_S: f64 = 2.0;

/// The common start (Unix seconds) given by `--start-at`, if one was.
pub fn start_at() -> Option<f64> {
    START_AT.get().copied().flatten()
}

/// The common start for the first run that asks (later runs of the same process
/// start when they are ready: one start time cannot be waited for twice).
pub fn take_start_at() -> Option<f64> {
    use std::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    start_at().filter(|_| !TAKEN.swap(true, Ordering::SeqCst))
}

/// This process's wall clock against the server's, from the `Date` headers of
/// a few `GET /v1/models`: the server's clock minus ours lies in
/// `[offset_s - uncertainty_s, offset_s + uncertainty_s]`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClockOffset {
    /// The middle of the interval, seconds (positive: the server's clock is ahead).
    pub offset_s: f64,
    /// Half the interval's width, seconds.
    pub uncertainty_s: f64,
    /// Answers with a `Date` header that narrowed it.
    pub probes: u32,
}

impl ClockOffset {
    /// The interval's bounds.
    pub fn bounds(&self) -> (f64, f64) {
        (
            self.offset_s - self.uncertainty_s,
            self.offset_s + self.uncertainty_s,
        )
    }
}

/// One answer's constraint on server − local: the server wrote `date` (its clock
/// truncated to whole seconds) between our `sent` and `received`, so server −
/// local lies in [date − received, date − sent + the Date's width]; returned
/// without the width: (date − received, date − sent).
fn probe_bounds(date: &str, sent: f64, received: f64) -> Option<(f64, f64)> {
    let d = chrono::DateTime::parse_from_rfc2822(date.trim()).ok()?;
    let d = d.timestamp() as f64;
    Some((d - received, d - sent))
}

/// The highest lower bound and the lowest upper bound of intervals `(lo, hi)`:
/// their intersection when `lo <= hi`, else the gap between them.
pub fn common(bounds: &[(f64, f64)]) -> (f64, f64) {
    let lo = bounds.iter().map(|b| b.0).fold(f64::NEG_INFINITY, f64::max);
    let hi = bounds.iter().map(|b| b.1).fold(f64::INFINITY, f64::min);
    (lo, hi)
}

/// Intersects probe intervals; `None` when there are none or they disagree (a
/// server clock that stepped, replicas with different clocks behind one address).
fn intersect(bounds: &[(f64, f64)]) -> Option<ClockOffset> {
    let (lo, hi) = common(bounds);
    (!bounds.is_empty() && lo <= hi).then(|| ClockOffset {
        offset_s: (lo + hi) / 2.0,
        uncertainty_s: (hi - lo) / 2.0,
        probes: bounds.len() as u32,
    })
}

/// Probes spaced by a tenth of a second and a bit, so their phases against the
/// server's second boundaries spread out; at most this many.
const CLOCK_PROBES: usize = 12;
const CLOCK_PROBE_GAP: std::time::Duration = std::time::Duration::from_millis(110);

/// Measures this process's clock against the server's `Date` header: `probes`
/// GETs `CLOCK_PROBE_GAP` apart, each bounded by 2 s. `None` when the server sends
/// no parsable `Date`.
pub async fn measure_clock(
    client: &crate::backend::http::HttpClient,
    headers: &[(String, String)],
    probes: usize,
) -> Option<ClockOffset> {
    let mut bounds = Vec::new();
    for i in 0..probes.max(1) {
        if i > 0 {
            tokio::time::sleep(CLOCK_PROBE_GAP).await;
        }
        let get = client.get_date("/v1/models", headers);
        let Ok(Ok((_, Some(date), sent, received))) =
            tokio::time::timeout(std::time::Duration::from_secs(2), get).await
        else {
            continue;
        };
        if let Some(b) = probe_bounds(&date, sent, received) {
            bounds.push(b);
        }
    }
    // The Date of most servers is their clock at the answer, truncated to the
    // second; uvicorn (vLLM's server) renders it once a second, so it may be a
    // second older still: each answer allows two seconds. (Trusting one second
    // would give narrower intervals that exclude the truth behind uvicorn.)
    let b: Vec<(f64, f64)> = bounds
        .iter()
        .map(|&(lo, hi)| (lo, hi + DATE_WIDTH_S))
        .collect();
    intersect(&b)
}

/// How much older than the server's clock a `Date` may be: the truncation to
/// the second and a second of caching.
const DATE_WIDTH_S: f64 = 2.0;

/// A sharded run's last step before its clock starts: measures this process's
/// clock against the server's (a dozen probes when there is time before the
/// common start `at`, else one) and waits for `at`. Unsharded runs do neither
/// probe nor wait without `at`.
pub async fn prepare_start(
    at: Option<f64>,
    client: &crate::backend::http::HttpClient,
    headers: &[(String, String)],
) -> Result<Option<ClockOffset>, String> {
    let clock = if current().is_some() {
        let time = CLOCK_PROBE_GAP.as_secs_f64() * CLOCK_PROBES as f64 + 0.5;
        let n = match at {
            Some(t) if t - unix_now() > time => CLOCK_PROBES,
            _ => 1,
        };
        measure_clock(client, headers, n).await
    } else {
        None
    };
    wait_for_start(at).await?;
    Ok(clock)
}

/// Waits until the common start `at` (Unix seconds), once everything is
/// prepared; an error when this process is ready more than the tolerance after
/// it (then nothing is sent), or when interrupted while waiting.
pub async fn wait_for_start(at: Option<f64>) -> Result<(), String> {
    let Some(at) = at else { return Ok(()) };
    let wait = at - unix_now();
    if wait < -START_TOLERANCE_S {
        return Err(format!(
            "this process was ready {:.1} s after --start-at, so it sent nothing; give a later start \
             (every shard must finish preparing before it)",
            -wait
        ));
    }
    if wait > 0.0 {
        let mut lvl = super::cancel::subscribe();
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs_f64(wait)) => {}
            _ = lvl.wait_for(|v| *v > 0) => {
                return Err("interrupted while waiting for --start-at; nothing was sent".into());
            }
        }
    }
    Ok(())
}

/// The wall clock, in Unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Parses a start time: Unix seconds (`1767225600`, `1767225600.5`) or RFC 3339
/// (`2026-01-01T00:00:00Z`); a time already past (beyond the tolerance) is refused.
pub fn parse_start(s: &str, place: &str, now: f64) -> Result<f64, String> {
    let t = match s.trim().parse::<f64>() {
        Ok(t) if t.is_finite() => t,
        _ => chrono::DateTime::parse_from_rfc3339(s.trim())
            .map(|d| d.timestamp_micros() as f64 / 1e6)
            .map_err(|e| {
                format!(
                    "{place} {s}: not a time ({e}); give Unix seconds or RFC 3339, e.g. \
                     {place} 2026-01-01T12:00:00Z, or $(( $(date +%s) + 30 )) for 30 s from now"
                )
            })?,
    };
    if t < now - START_TOLERANCE_S {
        return Err(format!(
            "{place} {s} is {:.1} s in the past; give a time far enough ahead for every shard to \
             prepare (e.g. $(( $(date +%s) + 30 )))",
            now - t
        ));
    }
    Ok(t)
}

/// The shard this process runs as (`None`: not sharded), once [`init`] has set it.
pub fn current() -> Option<Shard> {
    CURRENT.get().copied().flatten()
}

/// A number of shards (`place` is the flag or variable and its separator).
fn parse_count(v: &str, place: &str) -> Result<u64, String> {
    v.parse::<u64>()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or_else(|| format!("{place}{v}: must be a whole number of shards >= 1"))
}

/// Takes every `name VALUE` or `name=VALUE` out of `args` (a flag of moonbench's
/// own, not the script's) and returns the last value; `example` shows a value
/// when one is missing.
pub fn take_flag(
    args: &mut Vec<String>,
    name: &str,
    example: &str,
) -> Result<Option<String>, String> {
    let mut found = None;
    let mut i = 0;
    while i < args.len() {
        if let Some(v) = args[i].strip_prefix(name).and_then(|r| r.strip_prefix('=')) {
            found = Some(v.to_string());
            args.remove(i);
        } else if args[i] == name {
            if i + 1 >= args.len() {
                return Err(format!("{name} needs a value (e.g. {name} {example})"));
            }
            args.remove(i);
            found = Some(args.remove(i));
        } else {
            i += 1;
        }
    }
    Ok(found)
}

/// Takes `--shard I/N` and `--shards N` (also `--shard=I/N`) out of `args` and
/// sets this process's shard from them or the environment (see the module docs);
/// a wrong value is an error naming the flag or variable. Called once.
pub fn init(args: &mut Vec<String>) -> Result<Option<Shard>, String> {
    let flag_shard = match take_flag(args, "--shard", "0/4")? {
        Some(v) => Some(Shard::parse(&v, "--shard")?),
        None => None,
    };
    let flag_count = match take_flag(args, "--shards", "4")? {
        Some(v) => Some(parse_count(&v, "--shards ")?),
        None => None,
    };
    let flag_start = match take_flag(args, "--start-at", "2026-01-01T12:00:00Z")? {
        Some(v) => Some(parse_start(&v, "--start-at", unix_now())?),
        None => None,
    };
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let shard = if let Some(s) = flag_shard {
        if let Some(n) = flag_count.filter(|n| *n != s.count) {
            return Err(format!(
                "--shard {}/{} and --shards {n} disagree on the number of shards",
                s.index, s.count
            ));
        }
        Some(s)
    } else if let Some(v) = env("MOONBENCH_SHARD") {
        Some(Shard::parse(&v, "MOONBENCH_SHARD")?)
    } else if let Some(idx) = env("JOB_COMPLETION_INDEX") {
        let count = match flag_count {
            Some(n) => Some(n),
            None => match env("MOONBENCH_SHARDS") {
                Some(v) => Some(parse_count(&v, "MOONBENCH_SHARDS=")?),
                None => None,
            },
        };
        match count {
            Some(n) => Some(Shard::parse(&format!("{idx}/{n}"), "JOB_COMPLETION_INDEX")?),
            None => {
                eprintln!(
                    "note: JOB_COMPLETION_INDEX={idx} is set (a Kubernetes Indexed Job) but not the number of \
                     shards; pass --shards N (or MOONBENCH_SHARDS=N) to send only this pod's share; not sharding"
                );
                None
            }
        }
    } else if let (Some(id), Some(n)) = (env("SLURM_PROCID"), env("SLURM_NTASKS")) {
        Some(Shard::parse(
            &format!("{id}/{n}"),
            "SLURM_PROCID/SLURM_NTASKS",
        )?)
    } else if let Some(n) = flag_count {
        return Err(format!(
            "--shards {n} needs this process's index: --shard I/{n}, or JOB_COMPLETION_INDEX (Kubernetes)"
        ));
    } else {
        None
    };
    let start = match (flag_start, env("MOONBENCH_START_AT")) {
        (Some(t), _) => Some(t),
        (None, Some(v)) => Some(parse_start(&v, "MOONBENCH_START_AT", unix_now())?),
        (None, None) => None,
    };
    // One shard of one is the whole run.
    let shard = shard.filter(|s| s.count > 1);
    let _ = CURRENT.set(shard);
    let _ = START_AT.set(start);
    Ok(shard)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server on 127.0.0.1 whose `Date` is its clock `offset` s ahead of ours,
    /// re-rendered every `every` s at phase `phase` (0: rendered per answer).
    async fn date_server(offset: f64, every: f64, phase: f64) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((mut tcp, _)) = l.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = tcp.read(&mut buf).await;
                let now = unix_now() + offset;
                let t = if every > 0.0 {
                    ((now - phase) / every).floor() * every + phase
                } else {
                    now
                };
                let d = chrono::DateTime::from_timestamp(t.floor() as i64, 0).unwrap();
                let head = format!(
                    "HTTP/1.1 200 OK\r\ndate: {}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}",
                    d.format("%a, %d %b %Y %H:%M:%S GMT")
                );
                let _ = tcp.write_all(head.as_bytes()).await;
            }
        });
        url
    }

    #[test]
    fn clock_offset_contains_the_servers_true_offset() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // A Date per answer, and uvicorn's once-a-second Date at two phases.
            for (offset, every, phase) in [(3.7, 0.0, 0.0), (-2.3, 1.0, 0.9), (0.4, 1.0, 0.2)] {
                let url = date_server(offset, every, phase).await;
                let base = crate::backend::BaseUrl::parse(&url).unwrap();
                let client = crate::backend::http::HttpClient::new(&base).await.unwrap();
                let c = measure_clock(&client, &[], CLOCK_PROBES).await.unwrap();
                let (lo, hi) = c.bounds();
                assert!(lo <= offset && offset <= hi, "{offset} outside {c:?}");
                assert!(c.uncertainty_s <= 0.6, "{c:?}");
                assert_eq!(c.probes as usize, CLOCK_PROBES);
                let one = measure_clock(&client, &[], 1).await.unwrap();
                assert!(
                    one.bounds().0 <= offset && offset <= one.bounds().1,
                    "{one:?}"
                );
            }
        });
    }

    #[test]
    fn parse_own_and_part() {
        let s = Shard::parse("1/4", "--shard").unwrap();
        assert!(s.owns(5) && !s.owns(4));
        assert_eq!(
            (0..4)
                .map(|i| Shard { index: i, count: 4 }.part(10))
                .collect::<Vec<_>>(),
            vec![3, 3, 2, 2]
        );
        for (bad, want) in [
            ("4/4", "the last of 4 is 3"),
            ("1/0", "N must be at least 1"),
            ("x/2", "I is not a whole number"),
            ("2", "not of the form I/N"),
        ] {
            let e = Shard::parse(bad, "--shard").unwrap_err();
            assert!(e.contains(want) && e.contains("--shard"), "{bad}: {e}");
        }
    }

    #[test]
    fn start_times() {
        let now = 1_767_225_600.0;
        assert_eq!(
            parse_start("1767225630", "--start-at", now).unwrap(),
            now + 30.0
        );
        assert_eq!(
            parse_start("2026-01-01T00:00:30Z", "--start-at", now).unwrap(),
            now + 30.0
        );
        let e = parse_start("1767225500", "--start-at", now).unwrap_err();
        assert!(e.contains("100.0 s in the past"), "{e}");
        let e = parse_start("tomorrow", "--start-at", now).unwrap_err();
        assert!(e.contains("not a time") && e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn flags_come_out_of_the_arguments() {
        let mut a: Vec<String> = ["--num-prompts", "8", "--shard", "2/3", "--seed", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        // (Tests share the process: read the parsed value, not `current()`.)
        let got = init(&mut a).unwrap();
        assert_eq!(got, Some(Shard { index: 2, count: 3 }));
        assert_eq!(a, ["--num-prompts", "8", "--seed", "1"]);
        let mut b: Vec<String> = vec!["--shard=0/2".into(), "--shards".into(), "3".into()];
        assert!(init(&mut b).unwrap_err().contains("disagree"));
    }
}
