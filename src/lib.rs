//! moonbench: a load tester for LLM inference servers, driven by Lua workload
//! scripts. See `DESIGN.md` in the docs for the map of layers:
//! script → engine → backend → metrics → output, with datasets, tokenizers and
//! the simulated server beside them.

pub mod backend;
pub mod calibrate;
pub mod cli;
pub mod clock;
pub mod dataset;
pub mod engine;
pub mod metrics;
pub mod output;
pub mod script;
pub mod sim;
pub mod tokenizer;
pub mod yaml;
