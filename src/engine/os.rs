//! What the engine asks of the operating system besides the clock: CPU time
//! (of threads by name, of the calling thread, of the process), for the
//! client-health verdict and calibration, and the open-file limit (raised at
//! start; checked against the connections a run needs).

/// CPU time (user + system) consumed so far by this process's threads whose name
/// starts with `prefix`, in seconds. Linux reads `/proc/self/task/*/stat`; elsewhere
/// (or if `/proc` is unreadable) the whole process's CPU time is returned.
pub fn thread_cpu_secs(prefix: &str) -> f64 {
    #[cfg(target_os = "linux")]
    {
        if let Some(v) = linux_thread_cpu(prefix) {
            return v;
        }
    }
    process_cpu_secs()
}

/// CPU time (user + system) of the calling thread so far, in seconds.
pub fn current_thread_cpu_secs() -> f64 {
    // SAFETY: clock_gettime writes into the zeroed struct we pass.
    unsafe {
        let mut ts: libc::timespec = std::mem::zeroed();
        if libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) != 0 {
            return 0.0;
        }
        ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
    }
}

/// CPU time (user + system) of the whole process so far, in seconds.
pub fn process_cpu_secs() -> f64 {
    // SAFETY: getrusage writes into the zeroed struct we pass.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0.0;
        }
        let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        tv(ru.ru_utime) + tv(ru.ru_stime)
    }
}

#[cfg(target_os = "linux")]
fn linux_thread_cpu(prefix: &str) -> Option<f64> {
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let mut total = 0.0;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path();
        let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
            continue;
        };
        if !comm.starts_with(prefix) {
            continue;
        }
        // schedstat's first field is the thread's run time in nanoseconds.
        let run_ns = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| {
                s.split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
            });
        if let Some(ns) = run_ns {
            total += ns as f64 / 1e9;
            continue;
        }
        // Fallback: utime + stime in clock ticks (fields 14 and 15 of stat).
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let fields: Vec<&str> = stat[close + 2..].split(' ').collect();
        let ut: f64 = fields.get(11)?.parse().ok()?;
        let st: f64 = fields.get(12)?.parse().ok()?;
        if ticks > 0.0 {
            total += (ut + st) / ticks;
        }
    }
    Some(total)
}

/// Raises the soft open-file limit to the hard limit, so thousands of concurrent
/// connections do not fail with "too many open files". Returns the new soft limit.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: plain getrlimit/setrlimit calls on a local struct.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = rl.rlim_max.min(1 << 20);
            let new = libc::rlimit {
                rlim_cur: want,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &new) == 0 {
                return want as u64;
            }
        }
        rl.rlim_cur as u64
    }
}

/// An error if `connections` sockets (doubled when the built-in simulator runs in
/// this process and holds the other end) would not fit the open-file limit; the
/// message suggests a separate `serve-sim` only when `sim_can_move`.
pub fn fd_budget_error(
    connections: u64,
    in_process_sim: bool,
    sim_can_move: bool,
) -> Option<String> {
    let limit = raise_fd_limit();
    let need = connections * if in_process_sim { 2 } else { 1 } + 256;
    // One line per part, each a line of the message catalogue (i18n::zh_of_message).
    (limit > 0 && need > limit).then(|| {
        let mut m = format!(
            "{connections} connections need about {need} open files but the limit is {limit}, \
             the hard limit (moonbench raises its own soft limit up to it); raise the hard limit \
             (as root: ulimit -Hn {need} in the shell that starts moonbench, LimitNOFILE={need} \
             for a systemd unit, nofile in /etc/security/limits.conf, --ulimit nofile={need} for \
             docker) or use fewer."
        );
        if in_process_sim {
            m.push_str(
                "\nThe built-in simulator in this process holds the other end of each connection.",
            );
        }
        if in_process_sim && sim_can_move {
            m.push_str(
                "\nOr run the simulator as its own process: moonbench serve-sim --port 8000",
            );
        }
        m
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_readable() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        assert!(process_cpu_secs() > 0.0);
    }
}
