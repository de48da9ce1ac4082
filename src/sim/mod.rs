//! The built-in simulated LLM server: OpenAI-compatible `/v1/completions` and
//! `/v1/chat/completions` (streaming and not), `/v1/models` and `/health`, with a
//! pluggable timing model, fault injection and a ground-truth log of when every
//! chunk was really sent.
//!
//! `server.rs` answers requests; `stream.rs` is where the simulator decides when to
//! send the next token; `timing.rs` holds the fixed timing model and `engine.rs`
//! the step engine (continuous batching, KV cache, preemption, prefix cache,
//! chunked prefill), whose step costs and presets are in `preset.rs`.

pub mod engine;
pub mod faults;
pub mod metrics;
pub mod preset;
pub mod server;
pub mod stream;
pub mod timing;
pub mod truth;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde::Deserialize;

use crate::tokenizer::Tokenizer;
use engine::{EngineConfig, Engines, Router};
use faults::FaultRates;
use timing::{FixedTiming, TimingModel};
use truth::TruthLog;

/// Simulator settings (also accepted from Lua `mb.sim{...}` and `serve-sim` flags).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SimOptions {
    /// Model id the server reports and accepts.
    pub model: String,
    /// Fixed engine: time to first token (ms; default 50).
    pub ttft_ms: Option<f64>,
    /// Fixed engine: time between tokens (ms; default 10).
    pub itl_ms: Option<f64>,
    /// Fixed engine: extra TTFT per prompt token (µs), a crude prefill cost.
    pub prefill_us_per_token: Option<f64>,
    /// Relative jitter of TTFT and ITL (0.1 = ±10%).
    pub jitter: f64,
    /// Tokens packed into each SSE chunk.
    pub tokens_per_chunk: u32,
    /// `max_tokens` used when a chat request sets none.
    pub default_max_tokens: u32,
    /// Fixed engine: at most this many requests generate at once; others wait
    /// (adds to TTFT).
    pub max_running: Option<usize>,
    /// Random faults, `name=probability,...` (see `sim::faults`).
    pub faults: String,
    /// Seed for output lengths, jitter and faults.
    pub seed: u64,
    /// Keep the ground-truth send times of each request (the first
    /// [`truth::MAX_ENTRIES`]), for tests and the client-health verdict. The
    /// in-process simulator of `bench`/`mb.target` keeps it.
    pub record_truth: bool,
    /// Worker threads of the simulator's own runtime.
    pub threads: usize,
    /// Tokenizer for counting prompt tokens (default: words).
    pub tokenizer: Option<String>,
    /// Serve `/metrics`, the profiler endpoints and `/reset_prefix_cache` (off:
    /// answer 404, like a server started without them).
    pub metrics: bool,
    /// The first this-many tokens of every chat answer are reasoning
    /// (`reasoning_content`), as a reasoning model's server sends them.
    pub reasoning_tokens: u32,
    /// Honour `ignore_eos` (false: answer like a server that does not support it,
    /// stopping at a random length up to `max_tokens`).
    pub honor_ignore_eos: bool,
    /// `step` (a vLLM-like engine: continuous batching, a KV cache with preemption,
    /// prefix caching, chunked prefill; step times from `preset`) or `fixed` (every
    /// request gets `ttft_ms` and `itl_ms` whatever else runs). Default: `fixed` when
    /// a fixed-engine option (`ttft_ms`, `itl_ms`, `prefill_us_per_token`,
    /// `max_running`) is given, else `step`.
    pub engine: Option<String>,
    /// Step engine: the model and GPU to simulate (`moonbench serve-sim --preset
    /// list`; default `llama3-8b-h100`).
    pub preset: Option<String>,
    /// Step engine: a JSON file with your own costs and limits instead of a preset
    /// (`step_ms`, `prefill_us`, `decode_us`, `kv_ns`, `kv_cache_tokens`,
    /// `max_num_seqs`, `max_num_batched_tokens`, `name`).
    pub preset_file: Option<String>,
    /// Step engine: most sequences in one step (vLLM's `--max-num-seqs`; default the
    /// preset's).
    pub max_num_seqs: Option<usize>,
    /// Step engine: most tokens in one step (vLLM's `--max-num-batched-tokens`;
    /// default the preset's).
    pub max_num_batched_tokens: Option<u32>,
    /// Step engine: tokens per KV-cache block (default 16).
    pub block_size: Option<u32>,
    /// Step engine: KV-cache blocks (default: what fits the preset's GPU).
    pub num_gpu_blocks: Option<u32>,
    /// Step engine: KV-cache size in tokens (instead of `num_gpu_blocks`).
    pub kv_cache_tokens: Option<u64>,
    /// Step engine: longest prompt plus `max_tokens` accepted (default 32768, or
    /// the KV cache's size if smaller).
    pub max_model_len: Option<u32>,
    /// Step engine: prefill long prompts over several steps (default true).
    pub enable_chunked_prefill: Option<bool>,
    /// Step engine: reuse the KV blocks of identical prefixes (default true).
    pub enable_prefix_caching: Option<bool>,
    /// Step engine: fixed time of every step (ms; default the preset's).
    pub step_ms: Option<f64>,
    /// Step engine: time per prompt token prefilled (µs; default the preset's).
    pub step_prefill_us: Option<f64>,
    /// Step engine: extra fixed time of a step that prefills any tokens (ms;
    /// default the preset's).
    pub step_prefill_ms: Option<f64>,
    /// Step engine: time per sequence decoded (µs; default the preset's).
    pub step_decode_us: Option<f64>,
    /// Step engine: time per KV-cache token read (ns; default the preset's).
    pub step_kv_ns: Option<f64>,
    /// Step engine: this many engines in one process behind a router (default 1),
    /// to rehearse a data-parallel deployment.
    pub data_parallel: Option<usize>,
    /// Step engine: how requests are spread over the engines: `round-robin`,
    /// `least-loaded` (default) or `prefix-aware`.
    pub router: Option<String>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            model: "moonbench-sim".into(),
            ttft_ms: None,
            itl_ms: None,
            prefill_us_per_token: None,
            jitter: 0.0,
            tokens_per_chunk: 1,
            default_max_tokens: 256,
            max_running: None,
            faults: String::new(),
            seed: 0,
            record_truth: false,
            threads: 2,
            tokenizer: None,
            reasoning_tokens: 0,
            metrics: true,
            honor_ignore_eos: true,
            engine: None,
            preset: None,
            preset_file: None,
            max_num_seqs: None,
            max_num_batched_tokens: None,
            block_size: None,
            num_gpu_blocks: None,
            kv_cache_tokens: None,
            max_model_len: None,
            enable_chunked_prefill: None,
            enable_prefix_caching: None,
            step_ms: None,
            step_prefill_us: None,
            step_prefill_ms: None,
            step_decode_us: None,
            step_kv_ns: None,
            data_parallel: None,
            router: None,
        }
    }
}

/// The `serve-sim` flag of a simulator option (`max_num_seqs` → `--max-num-seqs`).
fn flag_of(option: &str) -> String {
    format!("--{}", option.replace('_', "-"))
}

impl SimOptions {
    /// The step engine's configuration, engine count and router, or `None` for the
    /// fixed engine; an error names the option that cannot work. The configuration
    /// and the count are checked where the engines start (`Engines::start`).
    pub fn engine_config(&self) -> Result<Option<(EngineConfig, usize, Router)>, String> {
        let given: Vec<&str> = [
            ("preset", self.preset.is_some()),
            ("preset_file", self.preset_file.is_some()),
            ("max_num_seqs", self.max_num_seqs.is_some()),
            (
                "max_num_batched_tokens",
                self.max_num_batched_tokens.is_some(),
            ),
            ("block_size", self.block_size.is_some()),
            ("num_gpu_blocks", self.num_gpu_blocks.is_some()),
            ("kv_cache_tokens", self.kv_cache_tokens.is_some()),
            ("max_model_len", self.max_model_len.is_some()),
            (
                "enable_chunked_prefill",
                self.enable_chunked_prefill.is_some(),
            ),
            (
                "enable_prefix_caching",
                self.enable_prefix_caching.is_some(),
            ),
            ("step_ms", self.step_ms.is_some()),
            ("step_prefill_us", self.step_prefill_us.is_some()),
            ("step_prefill_ms", self.step_prefill_ms.is_some()),
            ("step_decode_us", self.step_decode_us.is_some()),
            ("step_kv_ns", self.step_kv_ns.is_some()),
            ("data_parallel", self.data_parallel.is_some()),
            ("router", self.router.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect();
        let fixed: Vec<&str> = [
            ("ttft_ms", self.ttft_ms.is_some()),
            ("itl_ms", self.itl_ms.is_some()),
            ("prefill_us_per_token", self.prefill_us_per_token.is_some()),
            ("max_running", self.max_running.is_some()),
        ]
        .into_iter()
        .filter_map(|(n, set)| set.then_some(n))
        .collect();
        let engine = match self.engine.as_deref() {
            Some(e) => e,
            None if given.is_empty() && !fixed.is_empty() => "fixed",
            None => "step",
        };
        if engine == "step" {
            if let Some(f) = fixed.first() {
                let g = given.first().copied().unwrap_or("engine");
                let (ff, gf) = (flag_of(f), flag_of(g));
                return Err(format!(
                    "{f} ({ff}) is an option of the fixed engine, but {g} ({gf}) chooses the step engine; give one engine's options (the step engine's limit on concurrent requests is max_num_seqs (--max-num-seqs))"
                ));
            }
        }
        match engine {
            "fixed" => {
                if let Some(name) = given.first() {
                    let nf = flag_of(name);
                    return Err(format!(
                        "{name} ({nf}) is an option of the step engine, but engine is 'fixed'; drop engine = 'fixed' (--engine fixed) or the option"
                    ));
                }
                return Ok(None);
            }
            "step" => {}
            other => {
                let near = crate::suggest::suggest(other, ["fixed", "step"])
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_default();
                return Err(format!(
                    "unknown simulator engine '{other}'{near}; engines: fixed, step"
                ));
            }
        }
        let p = match (&self.preset, &self.preset_file) {
            (Some(_), Some(_)) => {
                return Err(
                    "give preset (--preset) or preset_file (--preset-file), not both".into(),
                );
            }
            (_, Some(f)) => preset::load_file(f)?,
            (p, None) => preset::find(p.as_deref().unwrap_or(preset::DEFAULT_PRESET))?.values(),
        };
        let base = p.cost();
        let cost = preset::CostModel {
            step_ms: self.step_ms.unwrap_or(base.step_ms),
            prefill_us: self.step_prefill_us.unwrap_or(base.prefill_us),
            prefill_ms: self.step_prefill_ms.unwrap_or(base.prefill_ms),
            decode_us: self.step_decode_us.unwrap_or(base.decode_us),
            kv_ns: self.step_kv_ns.unwrap_or(base.kv_ns),
        };
        let block_size = self.block_size.unwrap_or(16);
        // A block size of 0 is refused by `EngineConfig::check` (in `Engines::start`).
        let per_block = block_size.max(1) as u64;
        let num_blocks = match (self.num_gpu_blocks, self.kv_cache_tokens) {
            (Some(_), Some(_)) => {
                return Err("give num_gpu_blocks (--num-gpu-blocks) or kv_cache_tokens (--kv-cache-tokens), not both".into());
            }
            (Some(b), None) => b,
            (None, Some(t)) => (t / per_block).min(u32::MAX as u64) as u32,
            (None, None) => (p.kv_cache_tokens / per_block).min(u32::MAX as u64) as u32,
        };
        let capacity = (num_blocks as u64 * block_size as u64).min(u32::MAX as u64) as u32;
        let cfg = EngineConfig {
            preset: p.name.clone(),
            max_num_seqs: self.max_num_seqs.unwrap_or(p.max_num_seqs),
            max_num_batched_tokens: self
                .max_num_batched_tokens
                .unwrap_or(p.max_num_batched_tokens),
            block_size,
            num_blocks,
            chunked_prefill: self.enable_chunked_prefill.unwrap_or(true),
            prefix_caching: self.enable_prefix_caching.unwrap_or(true),
            max_model_len: self.max_model_len.unwrap_or(32768.min(capacity)),
            cost,
            jitter: self.jitter,
            seed: self.seed,
        };
        let router = Router::parse(self.router.as_deref().unwrap_or("least-loaded"))?;
        Ok(Some((cfg, self.data_parallel.unwrap_or(1), router)))
    }
}

/// Raises a listening socket's accept backlog to 4096 (capped by the kernel's
/// `somaxconn`): the default of 128 overflows when a client opens thousands of
/// connections at once, and each dropped SYN costs the client a 1 s retransmit.
pub fn widen_backlog(listener: &impl std::os::fd::AsRawFd) {
    // SAFETY: listen() on a socket that is already listening only changes its backlog.
    unsafe {
        libc::listen(listener.as_raw_fd(), 4096);
    }
}

/// Shared state of a running simulator.
pub struct SimState {
    /// Model id.
    pub model: String,
    /// Timing model.
    pub timing: Box<dyn TimingModel>,
    /// Tokens per SSE chunk.
    pub tokens_per_chunk: u32,
    /// Default `max_tokens` for chat.
    pub default_max_tokens: u32,
    /// Leading reasoning tokens of chat answers.
    pub reasoning_tokens: u32,
    /// Whether `ignore_eos` is honoured.
    pub honor_ignore_eos: bool,
    /// Whether `/metrics`, the profiler endpoints and `/reset_prefix_cache` exist.
    pub metrics: bool,
    /// Admission limit.
    pub running: Option<Arc<tokio::sync::Semaphore>>,
    /// Random faults.
    pub faults: FaultRates,
    /// Seed.
    pub seed: u64,
    /// Ground truth.
    pub truth: Arc<TruthLog>,
    /// Counts prompt tokens.
    pub tokenizer: Arc<Tokenizer>,
    /// Request sequence number.
    pub seq: AtomicU64,
    /// Live counters for `/metrics`.
    pub stats: Arc<metrics::SimStats>,
    /// The step engines (one, or `data_parallel` behind a router), when the
    /// simulator runs them (else the fixed timing model).
    pub engine: Option<Engines>,
    /// The admission limit (for KV-usage reporting).
    pub max_running: Option<usize>,
}

impl SimState {
    /// Builds the state from options, checking them.
    pub fn new(o: &SimOptions) -> Result<SimState, String> {
        let (ttft_ms, itl_ms, prefill_us) = (
            o.ttft_ms.unwrap_or(50.0),
            o.itl_ms.unwrap_or(10.0),
            o.prefill_us_per_token.unwrap_or(0.0),
        );
        if !(ttft_ms >= 0.0 && itl_ms >= 0.0 && prefill_us >= 0.0) {
            return Err(
                "simulator times (ttft_ms, itl_ms, prefill_us_per_token) must be >= 0".into(),
            );
        }
        if !(0.0..1.0).contains(&o.jitter) {
            return Err(format!(
                "simulator jitter must be within [0, 1), got {}",
                o.jitter
            ));
        }
        if o.tokens_per_chunk == 0 {
            return Err("simulator tokens_per_chunk must be at least 1".into());
        }
        let stats = Arc::new(metrics::SimStats::default());
        let engine = match o.engine_config()? {
            Some((cfg, replicas, router)) => {
                Some(Engines::start(cfg, replicas, router, o.record_truth)?)
            }
            None => None,
        };
        let tokenizer = Arc::new(match &o.tokenizer {
            Some(t) => Tokenizer::load(t)?,
            None => Tokenizer::words(),
        });
        Ok(SimState {
            model: o.model.clone(),
            timing: Box::new(FixedTiming {
                ttft: Duration::from_secs_f64(ttft_ms / 1000.0),
                itl: Duration::from_secs_f64(itl_ms / 1000.0),
                prefill_per_token: Duration::from_secs_f64(prefill_us / 1e6),
                jitter: o.jitter,
                seed: o.seed,
            }),
            tokens_per_chunk: o.tokens_per_chunk,
            default_max_tokens: o.default_max_tokens.max(1),
            reasoning_tokens: o.reasoning_tokens,
            honor_ignore_eos: o.honor_ignore_eos,
            metrics: o.metrics,
            running: o
                .max_running
                .map(|n| Arc::new(tokio::sync::Semaphore::new(n.max(1)))),
            faults: FaultRates::parse(&o.faults)?,
            seed: o.seed,
            truth: Arc::new(TruthLog::new(o.record_truth)),
            tokenizer,
            seq: AtomicU64::new(0),
            stats,
            engine,
            max_running: o.max_running,
        })
    }
}

/// A simulator running on its own thread and runtime; stops when dropped.
pub struct SimHandle {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// Its ground-truth log.
    pub truth: Arc<TruthLog>,
    /// Its model id.
    pub model: String,
    /// Its shared state (counters, options).
    pub state: Arc<SimState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Starts a simulator on `bind` (e.g. `127.0.0.1:0` for a free port) on a new
    /// thread with its own runtime (threads named `mb-sim`).
    pub fn start(opts: &SimOptions, bind: &str) -> Result<SimHandle, String> {
        let state = Arc::new(SimState::new(opts)?);
        let listener = std::net::TcpListener::bind(bind)
            .map_err(|e| format!("simulator cannot listen on {bind}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        widen_backlog(&listener);
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let truth = state.truth.clone();
        let shared = state.clone();
        let threads = opts.threads.max(1);
        let thread = std::thread::Builder::new()
            .name("mb-sim-main".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .thread_name("mb-sim")
                    .enable_all()
                    .build()
                    .expect("simulator runtime");
                rt.block_on(async move {
                    let l = tokio::net::TcpListener::from_std(listener).expect("listener");
                    server::serve(l, state, async {
                        let _ = stop_rx.await;
                    })
                    .await;
                });
                rt.shutdown_timeout(Duration::from_millis(100));
            })
            .map_err(|e| e.to_string())?;
        truth::register(addr.port(), &truth);
        Ok(SimHandle {
            addr,
            truth,
            model: opts.model.clone(),
            state: shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
