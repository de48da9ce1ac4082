//! Result writers: the vLLM-compatible result JSON, per-request JSONL records, and
//! the terminal progress bar.

pub mod aggregate;
pub mod compare;
pub mod progress;
pub mod pytorch;
pub mod records;
pub mod report;
pub mod result;
pub mod svg;
