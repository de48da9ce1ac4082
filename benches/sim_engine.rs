//! Cost of the simulator's step engine itself: 1,000 running requests (128-token
//! prompts, 512-token answers) scheduled and stepped without sleeping, so the figure
//! is the engine thread's ceiling in simulated tokens per second (the goal:
//! at least 50,000). Run: `cargo bench --bench sim_engine`.

use moonbench::sim::engine::{Core, EngineConfig, Submission};
use moonbench::sim::preset;

fn main() {
    let p = preset::find("llama3-8b-h100").unwrap();
    let cfg = EngineConfig {
        preset: p.name.into(),
        max_num_seqs: 1024,
        max_num_batched_tokens: 8192,
        block_size: 16,
        num_blocks: (p.kv_cache_tokens() / 16) as u32,
        chunked_prefill: true,
        prefix_caching: true,
        max_model_len: 32768,
        cost: p.cost(),
        jitter: 0.0,
        seed: 0,
    };
    let mut core = Core::new(cfg);
    let mut rxs = Vec::new();
    for i in 0..1000u64 {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        core.add(Submission {
            prompt_tokens: 128,
            output_tokens: 512,
            block_hashes: (0..40).map(|b| i * 1000 + b).collect(),
            tx,
            arrived_ns: 0,
        });
        rxs.push(rx);
    }
    let t = std::time::Instant::now();
    let (mut steps, mut tokens, mut simulated_ns) = (0u64, 0u64, 0u64);
    while !core.idle() {
        let mut plan = core.schedule();
        simulated_ns += core.step_ns(&plan);
        core.finish_step(&mut plan, steps);
        tokens += plan.step.tokens_out as u64;
        core.timings.clear();
        steps += 1;
        if steps % 64 == 0 {
            for rx in &mut rxs {
                while rx.try_recv().is_ok() {}
            }
        }
    }
    let s = t.elapsed().as_secs_f64();
    println!(
        "{tokens} tokens in {steps} steps: {:.0} simulated tokens/s on one thread ({:.1} µs per step of ~1000 sequences); the simulated GPU time was {:.1} s",
        tokens as f64 / s,
        s * 1e6 / steps as f64,
        simulated_ns as f64 / 1e9
    );
}
