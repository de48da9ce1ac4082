//! Metrics: per-request records (with their packed chunk lists), numpy-compatible statistics, the run summary
//! (from records, or from a bounded run's digest of histograms), and the server's own metrics read during the run.

pub mod chunks;
pub mod digest;
pub mod live;
pub mod prom;
pub mod record;
pub mod server;
pub mod stats;
pub mod summary;

pub use chunks::Chunks;
pub use record::{ErrorKind, RequestError, RequestRecord, ServerTiming, TokenSource, UserTag};
pub use stats::{Stats, describe, percentile_label};
pub use summary::{Metric, Slo, Summary, SummaryOptions, summarize};
