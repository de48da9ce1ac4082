//! What a run leaves behind: the vLLM-compatible result JSON (`result.rs`), vLLM's
//! PyTorch format (`pytorch.rs`), the aggregation of result files into tables
//! (`aggregate.rs`), the HTML report with its SVG charts (`report.rs`, `svg.rs`) and their PNG
//! export (`png.rs`), the
//! pages of `--plot-timeline` and `--plot-dataset-stats` (`plots.rs`) and
//! the comparison of runs (`compare.rs`), the merge of a sharded run's files
//! (`merge.rs`), and the one reader of result files
//! they all use (`files.rs`). Reads the engine's outcome; the engine
//! never reads this layer (its live consumers — the records file and the progress
//! bar — live in the engine).

pub mod aggregate;
pub mod compare;
pub mod files;
pub mod merge;
pub mod plots;
pub mod png;
pub mod pytorch;
pub mod report;
pub mod result;
pub mod runs;
pub mod seed_report;
pub mod svg;
