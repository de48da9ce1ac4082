//! The engine: arrival schedules, the dispatcher and run loop, interruption,
//! the ready check and the client-health monitor. Takes and returns plain Rust
//! types; Lua never runs here.

pub mod cancel;
pub mod health;
pub mod ready;
pub mod run;
pub mod schedule;
pub mod scrape;
pub mod users;

pub use run::{RunOutcome, RunSpec, run};
pub use schedule::Arrival;
