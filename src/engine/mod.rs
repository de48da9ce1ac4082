//! The engine: arrival schedules (`schedule.rs`), the open-loop run
//! (`run.rs`) and the closed-loop session of virtual users (`users.rs`), both
//! measured by one `Measurement` (`measure.rs`: t0, the record sinks, health,
//! scraper, the outcome),
//! interruption and run-local stops (`cancel.rs`), CPU time and the open-file
//! limit (`os.rs`), the ready check (`ready.rs`),
//! the client-health monitor (`health.rs`), the `/metrics` scraper (`scrape.rs`)
//! and the live consumers of records: the JSONL records file (`records.rs`) and
//! the progress bar (`progress.rs`); which share of a sharded run this process
//! sends (`shard.rs`). Takes and returns plain Rust types; Lua
//! never runs here.

pub mod cancel;
pub mod health;
pub mod measure;
pub mod os;
pub mod progress;
pub mod ready;
pub mod records;
pub mod run;
pub mod schedule;
pub mod scrape;
pub mod shard;
pub mod users;

pub use run::{RunOutcome, RunSpec, reset_prefix_cache, run};
pub use schedule::Arrival;
