//! Result writers: the vLLM-compatible result JSON, per-request JSONL records, and
//! the terminal progress bar.

pub mod progress;
pub mod records;
pub mod result;
