//! Metrics: per-request records, numpy-compatible statistics, and the run summary.

pub mod record;
pub mod stats;
pub mod summary;

pub use record::{ErrorKind, RequestError, RequestRecord, TokenSource};
pub use stats::{Stats, describe, percentile_label};
pub use summary::{Metric, Slo, Summary, SummaryOptions, summarize};
