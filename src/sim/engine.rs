//! The step engine: a simulated serving engine modelled on vLLM's V1 scheduler
//! (`vllm/v1/core/sched/scheduler.py`, `kv_cache_manager.py`, `block_pool.py`).
//!
//! One thread per engine runs the loop: take the requests that arrived, schedule
//! a step ([`Core::schedule`]: running requests first, then waiting ones, within
//! `max_num_seqs` sequences and `max_num_batched_tokens` tokens, prefills chunked
//! to the budget), wait as long as the [`CostModel`] says the step takes, then
//! hand each request that finished its prefill or decoded its next token that
//! token ([`Core::finish_step`]). The KV cache is a pool of blocks ([`Kv`]) with
//! vLLM's free queue (least recently freed evicted first) and prefix caching by
//! chained block hash; when a running request needs a block and none is free,
//! the newest running request is preempted (its blocks freed, recomputed later).
//! Every step can be kept in a [`StepLog`], the ground truth of the schedule.
//! [`closed_loop`] runs the same [`Core`] in virtual time (no sleeping), to check
//! presets against published measured runs in milliseconds.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use tokio::sync::mpsc::UnboundedSender;

use super::metrics::SimStats;
use super::preset::CostModel;
use crate::clock;

/// The step engine's limits and costs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The preset the costs and limits started from.
    pub preset: String,
    /// Most sequences in one step.
    pub max_num_seqs: usize,
    /// Most tokens (prefill and decode) in one step.
    pub max_num_batched_tokens: u32,
    /// Tokens per KV block.
    pub block_size: u32,
    /// KV blocks in the cache.
    pub num_blocks: u32,
    /// Split long prompts over several steps.
    pub chunked_prefill: bool,
    /// Reuse cached KV blocks of identical prefixes.
    pub prefix_caching: bool,
    /// Longest prompt plus answer a request may ask for.
    pub max_model_len: u32,
    /// Step durations.
    pub cost: CostModel,
    /// Relative jitter of each step's duration.
    pub jitter: f64,
    /// Seed of the jitter.
    pub seed: u64,
}

impl EngineConfig {
    /// Refuses configurations no request could run under, naming the option.
    pub fn check(&self) -> Result<(), String> {
        self.cost.check()?;
        if self.block_size == 0 {
            return Err("block_size (--block-size) must be at least 1 (vLLM uses 16)".into());
        }
        if self.max_num_seqs == 0 {
            return Err("max_num_seqs (--max-num-seqs) must be at least 1".into());
        }
        if self.max_num_batched_tokens == 0 {
            return Err(
                "max_num_batched_tokens (--max-num-batched-tokens) must be at least 1".into(),
            );
        }
        if self.max_model_len == 0 {
            return Err("max_model_len (--max-model-len) must be at least 1".into());
        }
        let capacity = self.num_blocks as u64 * self.block_size as u64;
        if capacity < self.max_model_len as u64 {
            return Err(format!(
                "the KV cache holds {capacity} tokens ({} blocks of {}), fewer than one request of max_model_len {} needs; raise num_gpu_blocks/kv_cache_tokens (--num-gpu-blocks/--kv-cache-tokens) or lower max_model_len (--max-model-len)",
                self.num_blocks, self.block_size, self.max_model_len
            ));
        }
        if !self.chunked_prefill && self.max_num_batched_tokens < self.max_model_len {
            return Err(format!(
                "with chunked prefill off, a prompt must fit one step, but max_num_batched_tokens ({}) is below max_model_len ({}); raise --max-num-batched-tokens, lower --max-model-len, or keep chunked prefill on",
                self.max_num_batched_tokens, self.max_model_len
            ));
        }
        if self.chunked_prefill && (self.max_num_batched_tokens as usize) < self.max_num_seqs {
            return Err(format!(
                "max_num_batched_tokens ({}) must be at least max_num_seqs ({}), as vLLM requires: every running sequence needs a token per step; raise --max-num-batched-tokens or lower --max-num-seqs",
                self.max_num_batched_tokens, self.max_num_seqs
            ));
        }
        Ok(())
    }
}

/// A request handed to the engine.
pub struct Submission {
    /// Prompt tokens.
    pub prompt_tokens: u32,
    /// Tokens to generate (at least 1: a pooling request's one forward pass).
    pub output_tokens: u32,
    /// Chained hashes of the request's full blocks (prompt, then answer), for the
    /// prefix cache; blocks past the list are never cached.
    pub block_hashes: Vec<u64>,
    /// Receives, for each token generated, the clock time (ns) its step ended.
    /// A closed receiver (the client left) aborts the request.
    pub tx: UnboundedSender<u64>,
    /// When the server received the request (clock ns).
    pub arrived_ns: u64,
}

/// Which of vLLM's per-request histograms an observation goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Arrival to first token (`vllm:time_to_first_token_seconds`).
    Ttft,
    /// Between two tokens of a request (`vllm:inter_token_latency_seconds`).
    Itl,
    /// Arrival to last token (`vllm:e2e_request_latency_seconds`).
    E2e,
    /// Arrival to first scheduled (`vllm:request_queue_time_seconds`).
    Queue,
    /// First scheduled to first token (`vllm:request_prefill_time_seconds`).
    Prefill,
    /// First to last token (`vllm:request_decode_time_seconds`).
    Decode,
}

/// One engine step, as the engine ran it.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Step {
    /// When the step started (clock ns).
    pub start_ns: u64,
    /// When it ended and its tokens were handed out (clock ns).
    pub end_ns: u64,
    /// Sequences in the step.
    pub seqs: u32,
    /// Prompt (or recomputed) tokens prefilled.
    pub prefill_tokens: u32,
    /// Sequences that decoded one token.
    pub decode_seqs: u32,
    /// KV-cache tokens attended to.
    pub kv_tokens: u64,
    /// Tokens handed out at the end of the step.
    pub tokens_out: u32,
    /// Requests left waiting after scheduling.
    pub waiting: u32,
    /// Requests preempted while scheduling this step.
    pub preempted: u32,
    /// Prompt tokens found in the prefix cache by the requests admitted.
    pub cached_tokens: u32,
    /// KV blocks in use after the step.
    pub kv_blocks_used: u32,
}

/// At most this many steps are kept.
pub const MAX_STEPS: usize = 1_000_000;

/// The steps an engine ran, kept when the simulator keeps its truth.
#[derive(Debug, Default)]
pub struct StepLog {
    enabled: bool,
    steps: Mutex<Vec<Step>>,
}

impl StepLog {
    /// A log that keeps steps if `enabled`.
    pub fn new(enabled: bool) -> StepLog {
        StepLog {
            enabled,
            steps: Mutex::new(Vec::new()),
        }
    }

    fn push(&self, s: Step) {
        if self.enabled {
            let mut v = self.steps.lock().unwrap();
            if v.len() < MAX_STEPS {
                v.push(s);
            }
        }
    }

    /// A copy of the steps so far.
    pub fn steps(&self) -> Vec<Step> {
        self.steps.lock().unwrap().clone()
    }

    /// Forgets the steps so far.
    pub fn clear(&self) {
        self.steps.lock().unwrap().clear();
    }
}

const NIL: u32 = u32::MAX;

/// The KV cache: a pool of blocks with reference counts, vLLM's free queue
/// (blocks freed last are evicted last) and the prefix cache (hash → block).
#[derive(Debug)]
pub struct Kv {
    refs: Vec<u32>,
    hash: Vec<Option<u64>>,
    cached: HashMap<u64, u32>,
    prev: Vec<u32>,
    next: Vec<u32>,
    head: u32,
    tail: u32,
    free: u32,
}

impl Kv {
    /// A cache of `n` free blocks.
    pub fn new(n: u32) -> Kv {
        let mut kv = Kv {
            refs: vec![0; n as usize],
            hash: vec![None; n as usize],
            cached: HashMap::new(),
            prev: vec![NIL; n as usize],
            next: vec![NIL; n as usize],
            head: NIL,
            tail: NIL,
            free: 0,
        };
        for b in 0..n {
            kv.push_tail(b);
        }
        kv
    }

    /// Blocks in the pool.
    pub fn total(&self) -> u32 {
        self.refs.len() as u32
    }

    /// Blocks free (cached ones with no user included, as vLLM counts them).
    pub fn free(&self) -> u32 {
        self.free
    }

    fn push_tail(&mut self, b: u32) {
        self.prev[b as usize] = self.tail;
        self.next[b as usize] = NIL;
        if self.tail != NIL {
            self.next[self.tail as usize] = b;
        } else {
            self.head = b;
        }
        self.tail = b;
        self.free += 1;
    }

    fn unlink(&mut self, b: u32) {
        let (p, n) = (self.prev[b as usize], self.next[b as usize]);
        if p != NIL {
            self.next[p as usize] = n;
        } else {
            self.head = n;
        }
        if n != NIL {
            self.prev[n as usize] = p;
        } else {
            self.tail = p;
        }
        self.prev[b as usize] = NIL;
        self.next[b as usize] = NIL;
        self.free -= 1;
    }

    /// The cached blocks holding the first blocks of `hashes` (at most `max`).
    fn lookup(&self, hashes: &[u64], max: usize) -> Vec<u32> {
        hashes
            .iter()
            .take(max)
            .map_while(|h| self.cached.get(h).copied())
            .collect()
    }

    /// Takes a reference to a cached block (out of the free queue if unused).
    fn touch(&mut self, b: u32) {
        if self.refs[b as usize] == 0 {
            self.unlink(b);
        }
        self.refs[b as usize] += 1;
    }

    /// A fresh block from the head of the free queue (evicting what it cached).
    fn alloc(&mut self) -> Option<u32> {
        let b = self.head;
        if b == NIL {
            return None;
        }
        self.unlink(b);
        if let Some(h) = self.hash[b as usize].take() {
            if self.cached.get(&h) == Some(&b) {
                self.cached.remove(&h);
            }
        }
        self.refs[b as usize] = 1;
        Some(b)
    }

    /// Drops a request's references, last block first, so its tail is evicted
    /// before its head (as vLLM frees them).
    fn release(&mut self, blocks: &[u32]) {
        for &b in blocks.iter().rev() {
            self.refs[b as usize] -= 1;
            if self.refs[b as usize] == 0 {
                self.push_tail(b);
            }
        }
    }

    /// Forgets every cached block's content (vLLM's `reset_prefix_cache`): done
    /// only when no block is in use, as vLLM refuses otherwise; says whether it was.
    fn reset(&mut self) -> bool {
        if self.free != self.total() {
            return false;
        }
        self.cached.clear();
        self.hash.iter_mut().for_each(|h| *h = None);
        true
    }

    /// Records that block `b` holds the content hashed `h`.
    fn register(&mut self, b: u32, h: u64) {
        if self.hash[b as usize].is_none() && !self.cached.contains_key(&h) {
            self.cached.insert(h, b);
            self.hash[b as usize] = Some(h);
        }
    }
}

struct Req {
    prompt: u32,
    n: u32,
    generated: u32,
    computed: u32,
    blocks: Vec<u32>,
    hashes: Vec<u64>,
    registered: usize,
    tx: UnboundedSender<u64>,
    arrived_ns: u64,
    scheduled_ns: Option<u64>,
    first_ns: u64,
    last_ns: u64,
}

impl Req {
    fn num_tokens(&self) -> u32 {
        self.prompt + self.generated
    }
}

/// What one step runs: (index into the running list, tokens to compute).
#[derive(Debug, Default)]
pub struct Plan {
    items: Vec<(usize, u32)>,
    /// The step's record so far (start, composition, preemptions, cache hits).
    pub step: Step,
}

impl Plan {
    /// Whether nothing was scheduled.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The scheduler's state: queues, the KV cache and the counters it reports.
pub struct Core {
    cfg: EngineConfig,
    kv: Kv,
    waiting: VecDeque<Req>,
    running: Vec<Req>,
    rng: ChaCha8Rng,
    /// Preemptions so far.
    pub preemptions: u64,
    /// Prompt tokens looked up in the prefix cache so far.
    pub prefix_queries: u64,
    /// Of those, tokens found.
    pub prefix_hits: u64,
    /// Per-request timings observed since last taken (seconds).
    pub timings: Vec<(Timing, f64)>,
    /// Requests that left the engine (finished or abandoned) so far.
    pub left: u64,
}

impl Core {
    /// An idle engine.
    pub fn new(cfg: EngineConfig) -> Core {
        Core {
            kv: Kv::new(cfg.num_blocks),
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5354_4550),
            cfg,
            waiting: VecDeque::new(),
            running: Vec::new(),
            preemptions: 0,
            prefix_queries: 0,
            prefix_hits: 0,
            timings: Vec::new(),
            left: 0,
        }
    }

    /// Queues a request.
    pub fn add(&mut self, s: Submission) {
        self.waiting.push_back(Req {
            prompt: s.prompt_tokens,
            n: s.output_tokens.max(1),
            generated: 0,
            computed: 0,
            blocks: Vec::new(),
            hashes: s.block_hashes,
            registered: 0,
            tx: s.tx,
            arrived_ns: s.arrived_ns,
            scheduled_ns: None,
            first_ns: 0,
            last_ns: 0,
        });
    }

    /// Drops the prefix cache when no request holds a block; says whether it did.
    pub fn reset_prefix_cache(&mut self) -> bool {
        self.idle() && self.kv.reset()
    }

    /// No request is waiting or running.
    pub fn idle(&self) -> bool {
        self.waiting.is_empty() && self.running.is_empty()
    }

    /// Requests running and waiting.
    pub fn queues(&self) -> (usize, usize) {
        (self.running.len(), self.waiting.len())
    }

    /// KV blocks in use and in the pool.
    pub fn kv_usage(&self) -> (u32, u32) {
        (self.kv.total() - self.kv.free(), self.kv.total())
    }

    fn blocks_for(&self, tokens: u32) -> usize {
        tokens.div_ceil(self.cfg.block_size) as usize
    }

    /// Frees the newest running request and puts it back at the head of the
    /// waiting queue, to be recomputed (vLLM's preemption by recompute).
    fn preempt_newest(&mut self) {
        let mut r = self.running.pop().expect("a running request to preempt");
        self.kv.release(&r.blocks);
        r.blocks.clear();
        r.computed = 0;
        r.registered = 0;
        self.preemptions += 1;
        self.waiting.push_front(r);
    }

    /// Chooses this step's work as vLLM's scheduler does: every running request
    /// its next tokens (a decode, or the next chunk of its prefill), preempting the
    /// newest running requests when blocks run out; then, if none was preempted,
    /// waiting requests in order while sequences, tokens and blocks last.
    pub fn schedule(&mut self) -> Plan {
        let mut plan = Plan::default();
        let mut budget = self.cfg.max_num_batched_tokens;
        let bs = self.cfg.block_size;
        // Requests whose client left are dropped before they cost a step.
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].tx.is_closed() {
                let r = self.running.remove(i);
                self.kv.release(&r.blocks);
                self.left += 1;
            } else {
                i += 1;
            }
        }
        let before = self.waiting.len();
        self.waiting.retain(|r| !r.tx.is_closed());
        self.left += (before - self.waiting.len()) as u64;
        let mut i = 0;
        while i < self.running.len() && budget > 0 {
            let r = &self.running[i];
            let new = (r.num_tokens() - r.computed).min(budget);
            let need = self
                .blocks_for(r.computed + new)
                .saturating_sub(r.blocks.len());
            if need as u32 > self.kv.free() {
                // Preempt the newest (perhaps this one) and try again.
                let is_self = i + 1 == self.running.len();
                self.preempt_newest();
                plan.step.preempted += 1;
                if is_self {
                    break;
                }
                continue;
            }
            let r = &mut self.running[i];
            for _ in 0..need {
                let b = self.kv.alloc().expect("a free block");
                r.blocks.push(b);
            }
            plan.items.push((i, new));
            budget -= new;
            i += 1;
        }
        if plan.step.preempted == 0 {
            while budget > 0 && self.running.len() < self.cfg.max_num_seqs {
                let Some(r) = self.waiting.front() else { break };
                let tokens = r.num_tokens();
                // A full hit still recomputes the last token, as vLLM does.
                let hits = if self.cfg.prefix_caching {
                    self.kv.lookup(&r.hashes, ((tokens - 1) / bs) as usize)
                } else {
                    Vec::new()
                };
                let computed = hits.len() as u32 * bs;
                let mut new = tokens - computed;
                if !self.cfg.chunked_prefill && new > budget {
                    break;
                }
                new = new.min(budget);
                let need = self.blocks_for(computed + new) - hits.len();
                let hits_free = hits
                    .iter()
                    .filter(|&&b| self.kv.refs[b as usize] == 0)
                    .count();
                if need + hits_free > self.kv.free() as usize {
                    break;
                }
                let mut r = self.waiting.pop_front().unwrap();
                for &b in &hits {
                    self.kv.touch(b);
                }
                r.blocks = hits;
                for _ in 0..need {
                    let b = self.kv.alloc().expect("a free block");
                    r.blocks.push(b);
                }
                r.computed = computed;
                r.registered = r.blocks.len().min(computed as usize / bs as usize);
                self.prefix_queries += tokens as u64;
                self.prefix_hits += computed as u64;
                plan.step.cached_tokens += computed;
                self.running.push(r);
                plan.items.push((self.running.len() - 1, new));
                budget -= new;
            }
        }
        for &(i, new) in &plan.items {
            let r = &self.running[i];
            if r.generated > 0 && new == 1 && r.computed + 1 == r.num_tokens() {
                plan.step.decode_seqs += 1;
            } else {
                plan.step.prefill_tokens += new;
            }
            plan.step.kv_tokens += (r.computed + new) as u64;
        }
        plan.step.seqs = plan.items.len() as u32;
        plan.step.waiting = self.waiting.len() as u32;
        plan
    }

    /// How long the planned step takes (ns), with jitter.
    pub fn step_ns(&mut self, plan: &Plan) -> u64 {
        let s = &plan.step;
        let base =
            self.cfg
                .cost
                .step_ns(s.prefill_tokens as u64, s.decode_seqs as u64, s.kv_tokens);
        let f = if self.cfg.jitter > 0.0 {
            1.0 + self.rng.random_range(-self.cfg.jitter..=self.cfg.jitter)
        } else {
            1.0
        };
        (base * f).max(0.0) as u64
    }

    /// Applies a step that ended at `end_ns`: computed tokens advance, full blocks
    /// enter the prefix cache, each request that reached its end gets a token (sent
    /// with `end_ns`), and finished or abandoned requests free their blocks.
    pub fn finish_step(&mut self, plan: &mut Plan, end_ns: u64) {
        let bs = self.cfg.block_size as usize;
        let secs = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1e9;
        let mut done = Vec::new();
        for &(i, new) in &plan.items {
            let r = &mut self.running[i];
            if r.scheduled_ns.is_none() {
                r.scheduled_ns = Some(plan.step.start_ns);
                self.timings
                    .push((Timing::Queue, secs(r.arrived_ns, plan.step.start_ns)));
            }
            r.computed += new;
            let full = (r.computed as usize / bs)
                .min(r.hashes.len())
                .min(r.blocks.len());
            if self.cfg.prefix_caching {
                for j in r.registered..full {
                    self.kv.register(r.blocks[j], r.hashes[j]);
                }
            }
            r.registered = r.registered.max(full);
            if r.computed >= r.num_tokens() {
                r.generated += 1;
                plan.step.tokens_out += 1;
                if r.generated == 1 {
                    r.first_ns = end_ns;
                    self.timings
                        .push((Timing::Ttft, secs(r.arrived_ns, end_ns)));
                    let start = r.scheduled_ns.unwrap_or(end_ns);
                    self.timings.push((Timing::Prefill, secs(start, end_ns)));
                } else {
                    self.timings.push((Timing::Itl, secs(r.last_ns, end_ns)));
                }
                r.last_ns = end_ns;
                let gone = r.tx.send(end_ns).is_err();
                if gone || r.generated >= r.n {
                    if !gone {
                        self.timings.push((Timing::E2e, secs(r.arrived_ns, end_ns)));
                        self.timings
                            .push((Timing::Decode, secs(r.first_ns, end_ns)));
                    }
                    done.push(i);
                }
            }
        }
        for &i in done.iter().rev() {
            let r = self.running.remove(i);
            self.kv.release(&r.blocks);
            self.left += 1;
        }
        plan.step.end_ns = end_ns;
        plan.step.kv_blocks_used = self.kv.total() - self.kv.free();
    }
}

/// What an engine's thread is sent.
enum Msg {
    /// A request to serve.
    Submit(Submission),
    /// Drop the prefix cache; the answer says whether it was dropped.
    ResetPrefixCache(tokio::sync::oneshot::Sender<bool>),
}

/// A running step engine: its thread takes submissions until the engine is dropped.
pub struct Engine {
    tx: Mutex<mpsc::Sender<Msg>>,
    /// The steps it ran (kept when the simulator keeps its truth).
    pub steps: Arc<StepLog>,
    /// Its own counters and histograms for `/metrics`.
    pub stats: Arc<SimStats>,
    /// Requests handed to it that have not left it yet (for routing).
    pub in_flight: Arc<AtomicU64>,
}

impl Engine {
    /// Starts an engine's thread (named `mb-sim-engine`); `cfg` is checked.
    pub fn start(cfg: &EngineConfig, keep_steps: bool) -> Result<Engine, String> {
        let (tx, rx) = mpsc::channel();
        let steps = Arc::new(StepLog::new(keep_steps));
        let stats = Arc::new(SimStats::default());
        let in_flight = Arc::new(AtomicU64::new(0));
        let (log, st, fl) = (steps.clone(), stats.clone(), in_flight.clone());
        let core = Core::new(cfg.clone());
        std::thread::Builder::new()
            .name("mb-sim-engine".into())
            .spawn(move || run(core, rx, &st, &log, &fl))
            .map_err(|e| format!("cannot start the simulated engine: {e}"))?;
        Ok(Engine {
            tx: Mutex::new(tx),
            steps,
            stats,
            in_flight,
        })
    }

    /// Hands a request to the engine.
    pub fn submit(&self, s: Submission) -> Result<(), String> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.tx
            .lock()
            .unwrap()
            .send(Msg::Submit(s))
            .map_err(|_| "the simulated engine has stopped".to_string())
    }

    /// Asks the engine to drop its prefix cache; true when it did (it refuses,
    /// as vLLM does, while a request holds blocks).
    pub async fn reset_prefix_cache(&self) -> bool {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sent = self.tx.lock().unwrap().send(Msg::ResetPrefixCache(tx));
        sent.is_ok() && rx.await.unwrap_or(false)
    }
}

/// How requests are spread over data-parallel engines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Router {
    /// Each engine in turn.
    RoundRobin,
    /// The engine with the fewest requests in flight.
    LeastLoaded,
    /// The engine chosen by the request's first KV block (so requests sharing a
    /// prefix share an engine and its cache), unless that engine has more than
    /// twice the least loaded one's requests plus 8; then the least loaded.
    PrefixAware,
}

impl Router {
    /// Parses `round-robin`, `least-loaded` or `prefix-aware`.
    pub fn parse(s: &str) -> Result<Router, String> {
        const NAMES: [&str; 3] = ["round-robin", "least-loaded", "prefix-aware"];
        match s {
            "round-robin" => Ok(Router::RoundRobin),
            "least-loaded" => Ok(Router::LeastLoaded),
            "prefix-aware" => Ok(Router::PrefixAware),
            other => {
                let near = crate::suggest::suggest(other, NAMES)
                    .map(|n| format!(" (did you mean '{n}'?)"))
                    .unwrap_or_default();
                Err(format!(
                    "unknown router '{other}'{near} (router, --router); routers: {}",
                    NAMES.join(", ")
                ))
            }
        }
    }

    /// The router's name.
    pub fn name(self) -> &'static str {
        match self {
            Router::RoundRobin => "round-robin",
            Router::LeastLoaded => "least-loaded",
            Router::PrefixAware => "prefix-aware",
        }
    }
}

/// One or more engines behind a router (`data_parallel` replicas), all with the
/// same configuration.
pub struct Engines {
    /// The engines.
    pub list: Vec<Engine>,
    /// Their configuration.
    pub config: EngineConfig,
    /// How requests are spread.
    pub router: Router,
    next: AtomicU64,
}

impl Engines {
    /// Checks `cfg` and starts `replicas` engines.
    pub fn start(
        cfg: EngineConfig,
        replicas: usize,
        router: Router,
        keep_steps: bool,
    ) -> Result<Engines, String> {
        cfg.check()?;
        if replicas == 0 {
            return Err("data_parallel (--data-parallel) must be at least 1".into());
        }
        let list = (0..replicas)
            .map(|_| Engine::start(&cfg, keep_steps))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Engines {
            list,
            config: cfg,
            router,
            next: AtomicU64::new(0),
        })
    }

    /// Checks a request fits the model's context, with vLLM's message if not.
    pub fn admissible(&self, prompt_tokens: u32, max_tokens: u32) -> Result<(), String> {
        let total = prompt_tokens as u64 + max_tokens as u64;
        if total > self.config.max_model_len as u64 {
            return Err(format!(
                "This model's maximum context length is {} tokens. However, you requested {total} tokens ({prompt_tokens} in the messages, {max_tokens} in the completion). Please reduce the length of the messages or completion.",
                self.config.max_model_len
            ));
        }
        Ok(())
    }

    /// The engine the router picks for a request with these block hashes.
    pub fn pick(&self, block_hashes: &[u64]) -> usize {
        let n = self.list.len();
        if n == 1 {
            return 0;
        }
        let load = |i: usize| self.list[i].in_flight.load(Ordering::Relaxed);
        let least = || (0..n).min_by_key(|&i| load(i)).unwrap_or(0);
        match self.router {
            Router::RoundRobin => (self.next.fetch_add(1, Ordering::Relaxed) % n as u64) as usize,
            Router::LeastLoaded => least(),
            Router::PrefixAware => match block_hashes.first() {
                Some(h) => {
                    let home = (h % n as u64) as usize;
                    let l = least();
                    if load(home) > 2 * load(l) + 8 {
                        l
                    } else {
                        home
                    }
                }
                None => least(),
            },
        }
    }

    /// Routes a request to an engine; returns the engine's index.
    pub fn submit(&self, s: Submission) -> Result<usize, String> {
        let i = self.pick(&s.block_hashes);
        self.list[i].submit(s)?;
        Ok(i)
    }

    /// Asks every engine to drop its prefix cache; true when all did.
    pub async fn reset_prefix_cache(&self) -> bool {
        let mut all = true;
        for e in &self.list {
            all &= e.reset_prefix_cache().await;
        }
        all
    }

    /// Every engine's steps, `(engine, step)`, in order of their start.
    pub fn steps(&self) -> Vec<(usize, Step)> {
        let mut all: Vec<(usize, Step)> = self
            .list
            .iter()
            .enumerate()
            .flat_map(|(i, e)| e.steps.steps().into_iter().map(move |s| (i, s)))
            .collect();
        all.sort_by_key(|(_, s)| s.start_ns);
        all
    }

    /// Every engine's counters, in engine order.
    pub fn stats(&self) -> Vec<&SimStats> {
        self.list.iter().map(|e| e.stats.as_ref()).collect()
    }
}

fn run(
    mut core: Core,
    rx: mpsc::Receiver<Msg>,
    stats: &SimStats,
    log: &StepLog,
    in_flight: &AtomicU64,
) {
    let (_, total) = core.kv_usage();
    let take = |core: &mut Core, m: Msg| match m {
        Msg::Submit(s) => core.add(s),
        Msg::ResetPrefixCache(answer) => {
            let _ = answer.send(core.reset_prefix_cache());
        }
    };
    loop {
        if core.idle() {
            stats.engine_gauges(0, 0, 0, total);
            match rx.recv() {
                Ok(m) => take(&mut core, m),
                Err(_) => return,
            }
        }
        loop {
            match rx.try_recv() {
                Ok(m) => take(&mut core, m),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        let start = clock::now_ns();
        let (q0, h0, p0) = (core.prefix_queries, core.prefix_hits, core.preemptions);
        let mut plan = core.schedule();
        in_flight.fetch_sub(std::mem::take(&mut core.left), Ordering::Relaxed);
        stats.add_engine_counts(
            core.prefix_queries - q0,
            core.prefix_hits - h0,
            core.preemptions - p0,
        );
        let (running, waiting) = core.queues();
        let (used, _) = core.kv_usage();
        stats.engine_gauges(running, waiting, used, total);
        if plan.is_empty() {
            // Only requests whose clients left were there.
            if !core.idle() {
                std::thread::sleep(Duration::from_millis(1));
            }
            continue;
        }
        plan.step.start_ns = start;
        let until = clock::instant_of(start + core.step_ns(&plan));
        let now = std::time::Instant::now();
        if until > now {
            std::thread::sleep(until - now);
        }
        core.finish_step(&mut plan, clock::now_ns());
        stats.observe(&core.timings);
        core.timings.clear();
        in_flight.fetch_sub(std::mem::take(&mut core.left), Ordering::Relaxed);
        log.push(plan.step);
    }
}

/// What [`closed_loop`] measured: per request, in the order they finished.
#[derive(Debug, Clone, Default)]
pub struct ClosedLoop {
    /// Time to first token (ms).
    pub ttft_ms: Vec<f64>,
    /// Time per output token after the first (ms), as vLLM's benchmark computes it.
    pub tpot_ms: Vec<f64>,
    /// From the first request sent to the last token (s).
    pub duration_s: f64,
    /// Output tokens in all.
    pub output_tokens: u64,
}

impl ClosedLoop {
    /// The mean of a list (0 for none).
    pub fn mean(v: &[f64]) -> f64 {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    }

    /// Output tokens per second over the run.
    pub fn output_throughput(&self) -> f64 {
        self.output_tokens as f64 / self.duration_s.max(1e-12)
    }
}

/// A closed-loop benchmark in virtual time: `concurrency` clients send
/// `requests` requests of `input` prompt and `output` answer tokens, each client
/// its next one the moment its last finished (`vllm bench serve --max-concurrency
/// C --request-rate inf`), no two prompts sharing a block. Steps take what the
/// cost model says (jitter included), but nothing sleeps, so a sweep that takes
/// minutes on a GPU is replayed in milliseconds. Errors are the configuration's.
pub fn closed_loop(
    cfg: &EngineConfig,
    concurrency: usize,
    requests: usize,
    input: u32,
    output: u32,
) -> Result<ClosedLoop, String> {
    cfg.check()?;
    if input + output > cfg.max_model_len {
        return Err(format!(
            "{input} + {output} tokens exceed max_model_len {}",
            cfg.max_model_len
        ));
    }
    let mut core = Core::new(cfg.clone());
    let mut out = ClosedLoop::default();
    let blocks = (input + output) / cfg.block_size;
    let mut sent = 0usize;
    // (receiver, arrival, first token, tokens so far)
    let mut active: Vec<(tokio::sync::mpsc::UnboundedReceiver<u64>, u64, u64, u32)> = Vec::new();
    let submit = |core: &mut Core, sent: &mut usize, now: u64| {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let id = *sent as u64;
        core.add(Submission {
            prompt_tokens: input,
            output_tokens: output.max(1),
            block_hashes: (0..blocks as u64)
                .map(|b| (id << 32 | b).wrapping_mul(0x9E37_79B9_7F4A_7C15))
                .collect(),
            tx,
            arrived_ns: now,
        });
        *sent += 1;
        (rx, now, 0u64, 0u32)
    };
    let mut now = 0u64;
    while sent < requests.min(concurrency) {
        let a = submit(&mut core, &mut sent, now);
        active.push(a);
    }
    while !active.is_empty() {
        let mut plan = core.schedule();
        if plan.is_empty() {
            return Err("the engine can schedule nothing (KV cache too small?)".into());
        }
        plan.step.start_ns = now;
        now += core.step_ns(&plan).max(1);
        core.finish_step(&mut plan, now);
        let mut i = 0;
        while i < active.len() {
            let (rx, arrived, first, got) = &mut active[i];
            while let Ok(t) = rx.try_recv() {
                if *got == 0 {
                    *first = t;
                    out.ttft_ms.push((t - *arrived) as f64 / 1e6);
                }
                *got += 1;
                if *got == output.max(1) {
                    if *got > 1 {
                        out.tpot_ms
                            .push((t - *first) as f64 / 1e6 / (*got - 1) as f64);
                    }
                    out.output_tokens += *got as u64;
                }
            }
            if *got == output.max(1) {
                active.swap_remove(i);
                if sent < requests {
                    let a = submit(&mut core, &mut sent, now);
                    active.push(a);
                }
            } else {
                i += 1;
            }
        }
    }
    out.duration_s = now as f64 / 1e9;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(blocks: u32) -> EngineConfig {
        EngineConfig {
            preset: "test".into(),
            max_num_seqs: 8,
            max_num_batched_tokens: 64,
            block_size: 4,
            num_blocks: blocks,
            chunked_prefill: true,
            prefix_caching: true,
            max_model_len: 32,
            cost: CostModel {
                step_ms: 1.0,
                prefill_us: 0.0,
                prefill_ms: 0.0,
                decode_us: 0.0,
                kv_ns: 0.0,
            },
            jitter: 0.0,
            seed: 0,
        }
    }

    fn submit(
        core: &mut Core,
        prompt: u32,
        n: u32,
        hashes: Vec<u64>,
    ) -> tokio::sync::mpsc::UnboundedReceiver<u64> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        core.add(Submission {
            prompt_tokens: prompt,
            output_tokens: n,
            block_hashes: hashes,
            tx,
            arrived_ns: 0,
        });
        rx
    }

    /// Runs steps until idle; returns each step's record.
    fn drain(core: &mut Core) -> Vec<Step> {
        let mut out = Vec::new();
        let mut t = 0;
        while !core.idle() {
            let mut p = core.schedule();
            t += 1;
            core.finish_step(&mut p, t);
            out.push(p.step);
            assert!(out.len() < 10_000, "the engine never finished");
        }
        out
    }

    #[test]
    fn long_prompts_are_chunked_and_decodes_share_steps() {
        let mut core = Core::new(cfg(64));
        let mut a = submit(&mut core, 100, 3, vec![]);
        let steps = drain(&mut core);
        // 100 tokens at 64 per step: two prefill steps, the first token at the
        // end of the second, then two decode steps.
        assert_eq!(steps.len(), 4);
        assert_eq!(steps[0].prefill_tokens, 64);
        assert_eq!(steps[1].prefill_tokens, 36);
        assert_eq!(steps[2].decode_seqs, 1);
        let times: Vec<u64> = std::iter::from_fn(|| a.try_recv().ok()).collect();
        assert_eq!(times, vec![2, 3, 4]);
    }

    #[test]
    fn a_short_cache_preempts_the_newest_request() {
        // 6 blocks of 4 tokens: two requests of 8 prompt + 8 answer tokens need 8.
        let mut core = Core::new(cfg(6));
        let mut a = submit(&mut core, 8, 8, vec![]);
        let mut b = submit(&mut core, 8, 8, vec![]);
        let steps = drain(&mut core);
        let preempted: u32 = steps.iter().map(|s| s.preempted).sum();
        assert!(preempted >= 1, "{steps:?}");
        assert_eq!(core.preemptions, preempted as u64);
        let ta: Vec<u64> = std::iter::from_fn(|| a.try_recv().ok()).collect();
        let tb: Vec<u64> = std::iter::from_fn(|| b.try_recv().ok()).collect();
        assert_eq!((ta.len(), tb.len()), (8, 8));
        // The older request never waits; the newer one stalls while preempted.
        assert!(ta.windows(2).all(|w| w[1] == w[0] + 1), "{ta:?}");
        assert!(tb.windows(2).any(|w| w[1] > w[0] + 1), "{tb:?}");
        assert_eq!(core.kv_usage().0, 0, "every block is free again");
    }

    #[test]
    fn shared_prefixes_hit_the_cache_and_cost_no_prefill() {
        let mut core = Core::new(cfg(64));
        let hashes: Vec<u64> = (1..=6).collect();
        let _a = submit(&mut core, 24, 1, hashes.clone());
        drain(&mut core);
        // The same 24 tokens again: 5 blocks hit (the last token is recomputed).
        let _b = submit(&mut core, 24, 1, hashes);
        let steps = drain(&mut core);
        assert_eq!(steps[0].cached_tokens, 20);
        assert_eq!(steps[0].prefill_tokens, 4);
        assert_eq!(core.prefix_hits, 20);
        assert_eq!(core.prefix_queries, 48);
    }

    #[test]
    fn max_num_seqs_and_the_token_budget_bound_each_step() {
        let mut c = cfg(256);
        c.max_num_seqs = 3;
        let mut core = Core::new(c);
        let _rx: Vec<_> = (0..5).map(|_| submit(&mut core, 30, 2, vec![])).collect();
        let steps = drain(&mut core);
        assert!(steps.iter().all(|s| s.seqs <= 3));
        assert!(steps.iter().all(|s| s.prefill_tokens + s.decode_seqs <= 64));
        assert_eq!(steps[0].seqs, 3, "64 tokens: 30 + 30 + a 4-token chunk");
        assert_eq!(steps[0].prefill_tokens, 64);
    }

    #[test]
    fn abandoned_requests_free_their_blocks() {
        let mut core = Core::new(cfg(64));
        let rx = submit(&mut core, 8, 100, vec![]);
        let mut p = core.schedule();
        core.finish_step(&mut p, 1);
        drop(rx);
        drain(&mut core);
        assert_eq!(core.kv_usage().0, 0);
    }

    #[test]
    fn routers_spread_requests_as_named() {
        let rr = Engines::start(cfg(64), 3, Router::RoundRobin, false).unwrap();
        let picks: Vec<usize> = (0..6).map(|_| rr.pick(&[7])).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2]);
        let pa = Engines::start(cfg(64), 3, Router::PrefixAware, false).unwrap();
        assert_eq!(pa.pick(&[7, 1]), pa.pick(&[7, 2]), "one prefix, one engine");
        assert_eq!(pa.pick(&[7]), 1);
        // An engine far busier than the others loses its prefix's requests.
        pa.list[1].in_flight.store(20, Ordering::Relaxed);
        assert_ne!(pa.pick(&[7]), 1);
        let ll = Engines::start(cfg(64), 3, Router::LeastLoaded, false).unwrap();
        ll.list[0].in_flight.store(2, Ordering::Relaxed);
        ll.list[1].in_flight.store(1, Ordering::Relaxed);
        ll.list[2].in_flight.store(3, Ordering::Relaxed);
        assert_eq!(ll.pick(&[]), 1);
        assert!(
            Router::parse("least-loadd")
                .unwrap_err()
                .contains("did you mean 'least-loaded'")
        );
    }

    #[test]
    fn impossible_configurations_name_the_option() {
        let mut c = cfg(64);
        c.block_size = 0;
        assert!(c.check().unwrap_err().contains("--block-size"));
        let c = cfg(4);
        assert!(c.check().unwrap_err().contains("--kv-cache-tokens"));
        let mut c = cfg(64);
        c.chunked_prefill = false;
        c.max_num_batched_tokens = 16;
        assert!(c.check().unwrap_err().contains("--max-num-batched-tokens"));
    }
}
