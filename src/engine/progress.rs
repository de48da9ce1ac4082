//! The terminal progress bar (indicatif on stderr): hidden when disabled or when
//! stderr is not a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Progress of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    failed: u64,
}

impl Progress {
    /// A bar for `total` requests (`None` = unknown, e.g. a duration-bound run).
    pub fn new(total: Option<u64>, enabled: bool) -> Progress {
        if !enabled || !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                failed: 0,
            };
        }
        let bar = match total {
            Some(n) => {
                ProgressBar::with_draw_target(Some(n), ProgressDrawTarget::stderr_with_hz(8))
            }
            None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(8)),
        };
        let tmpl = if total.is_some() {
            "{bar:40.cyan/blue} {pos}/{len} [{elapsed_precise}<{eta_precise}, {per_sec}] {msg}"
        } else {
            "{spinner} {pos} requests [{elapsed_precise}, {per_sec}] {msg}"
        };
        bar.set_style(
            ProgressStyle::with_template(tmpl)
                .unwrap()
                .progress_chars("=> "),
        );
        Progress {
            bar: Some(bar),
            failed: 0,
        }
    }

    /// One request finished.
    pub fn inc(&mut self, success: bool) {
        if let Some(b) = &self.bar {
            if !success {
                self.failed += 1;
                b.set_message(format!("{} failed", self.failed));
            }
            b.inc(1);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The bar counts measured requests from the run's start.
impl super::measure::Sink for Progress {
    fn name(&self) -> &'static str {
        "the progress bar"
    }
    fn start(&mut self, _t0_ns: u64) {
        if let Some(b) = &self.bar {
            b.reset_elapsed();
        }
    }
    fn record(&mut self, rec: &crate::metrics::RequestRecord) -> Result<(), String> {
        self.inc(rec.success());
        Ok(())
    }
    fn finish(&mut self) {
        Progress::finish(self);
    }
}
