//! moonbench: a load tester for LLM inference servers, driven by Lua workload
//! scripts. `ARCHITECTURE.md` at the repository's root is the map: the layers
//! (script → engine → backend → metrics, with output reading the engine's outcome,
//! and datasets, tokenizers and the simulated server beside them), the life of a
//! request, and where to add a backend, a dataset or a Lua function.

pub mod backend;
pub mod cli;
pub mod clock;
pub mod dataset;
pub mod engine;
pub mod i18n;
pub mod metrics;
pub mod output;
pub mod script;
pub mod sim;
pub mod suggest;
pub mod tokenizer;
