//! Interruption: Ctrl-C and SIGTERM. The first stops sending and lets requests in
//! flight finish within the grace period; the second cuts them off; either way the
//! run returns what it measured, marked partial. A third exits at once. With no run
//! in progress, an interruption exits immediately (status 130).

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::watch;

static LEVEL: OnceLock<watch::Sender<u8>> = OnceLock::new();
static ACTIVE_RUNS: AtomicUsize = AtomicUsize::new(0);

fn sender() -> &'static watch::Sender<u8> {
    LEVEL.get_or_init(|| watch::channel(0).0)
}

/// How many interruptions were received (0 = none).
pub fn level() -> u8 {
    *sender().borrow()
}

/// A receiver of the interruption level.
pub fn subscribe() -> watch::Receiver<u8> {
    sender().subscribe()
}

/// The last signal received (2 = SIGINT, 15 = SIGTERM), 0 if none.
static LAST_SIGNAL: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The exit status for a process that was interrupted by a signal: 128 + its
/// number (130 for Ctrl-C, 143 for SIGTERM), as shells expect; `None` when no
/// signal came (a run stopped by a script error exits 1, not 130).
pub fn signal_exit_code() -> Option<i32> {
    match LAST_SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(128 + s),
    }
}

/// Records one interruption (as if Ctrl-C was pressed); returns the new level.
pub fn interrupt() -> u8 {
    let mut new = 0;
    sender().send_modify(|v| {
        *v = v.saturating_add(1);
        new = *v;
    });
    new
}

/// A run-local stop: a script ends its own run (`mb.stop`, `on_response`
/// returning "stop"), as the first Ctrl-C does, without touching the process's
/// interruption level (later runs still start).
#[derive(Clone)]
pub struct Stop(std::sync::Arc<watch::Sender<bool>>);

impl Default for Stop {
    fn default() -> Self {
        Stop(std::sync::Arc::new(watch::channel(false).0))
    }
}

impl Stop {
    /// Asks the run to stop sending; requests in flight finish within its grace period.
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    /// Whether a stop was asked.
    pub fn is_stopped(&self) -> bool {
        *self.0.borrow()
    }

    /// A receiver that sees the stop.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// Marks a run as in progress while it lives.
pub struct RunGuard(());

impl RunGuard {
    /// Registers a run.
    pub fn new() -> RunGuard {
        ACTIVE_RUNS.fetch_add(1, Ordering::SeqCst);
        RunGuard(())
    }
}

impl Default for RunGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for RunGuard {
    fn drop(&mut self) {
        ACTIVE_RUNS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Installs the Ctrl-C / SIGTERM handler on the given runtime.
pub fn install(handle: &tokio::runtime::Handle) {
    handle.spawn(async {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        loop {
            #[cfg(unix)]
            {
                let term_fut = async {
                    match term.as_mut() {
                        Some(t) => {
                            t.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                let sig = tokio::select! {
                    _ = tokio::signal::ctrl_c() => 2,
                    _ = term_fut => 15,
                };
                LAST_SIGNAL.store(sig, Ordering::SeqCst);
            }
            #[cfg(not(unix))]
            {
                let _ = tokio::signal::ctrl_c().await;
                LAST_SIGNAL.store(2, Ordering::SeqCst);
            }
            on_signal();
        }
    });
}

fn on_signal() {
    let code = signal_exit_code().unwrap_or(130);
    let say = |en| crate::i18n::say(en, &[]);
    if ACTIVE_RUNS.load(Ordering::SeqCst) == 0 {
        eprintln!("\n{}", say("interrupted"));
        std::process::exit(code);
    }
    match interrupt() {
        1 => eprintln!(
            "\n{}",
            say(
                "interrupted: no new requests are sent; waiting for requests in flight \
             (press Ctrl-C again to cut them off). What was measured will be kept."
            )
        ),
        2 => eprintln!(
            "\n{}",
            say("interrupted again: cutting off requests in flight and saving what was measured")
        ),
        _ => {
            eprintln!("\n{}", say("interrupted three times: exiting now"));
            std::process::exit(code);
        }
    }
}
