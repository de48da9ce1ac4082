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

/// Records one interruption (as if Ctrl-C was pressed); returns the new level.
pub fn interrupt() -> u8 {
    let mut new = 0;
    sender().send_modify(|v| {
        *v = v.saturating_add(1);
        new = *v;
    });
    new
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
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term_fut => {},
                }
            }
            #[cfg(not(unix))]
            let _ = tokio::signal::ctrl_c().await;
            on_signal();
        }
    });
}

fn on_signal() {
    if ACTIVE_RUNS.load(Ordering::SeqCst) == 0 {
        eprintln!("\ninterrupted");
        std::process::exit(130);
    }
    match interrupt() {
        1 => eprintln!(
            "\ninterrupted: no new requests are sent; waiting for requests in flight \
             (press Ctrl-C again to cut them off). What was measured will be kept."
        ),
        2 => eprintln!(
            "\ninterrupted again: cutting off requests in flight and saving what was measured"
        ),
        _ => {
            eprintln!("\ninterrupted three times: exiting now");
            std::process::exit(130);
        }
    }
}
