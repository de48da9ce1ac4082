//! The step engine's cost model ([`CostModel`]: how long one engine step takes)
//! and its presets ([`PRESETS`]): a model on a GPU, with the cost terms either
//! derived from the model's published configuration and the GPU's datasheet (a
//! roofline estimate, checked against a published measured sweep where one
//! exists) or fitted to a published measured run ([`Basis`]); plus `--preset-file`
//! ([`load_file`]) and the `--preset list` table ([`list`]).

use serde::Deserialize;

/// How long one engine step takes: a fixed overhead plus a term per prefill
/// token (compute-bound), per decoding sequence and per KV-cache token read
/// (memory-bound attention).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CostModel {
    /// Fixed time of every step (ms): reading the weights once, plus launch overhead.
    pub step_ms: f64,
    /// Time per prompt token prefilled in the step (µs).
    pub prefill_us: f64,
    /// Extra fixed time of a step that prefills any tokens (ms; 0 for the
    /// roofline presets): what a measured run shows beyond the per-token cost,
    /// e.g. a prefill step run without CUDA graphs.
    #[serde(default)]
    pub prefill_ms: f64,
    /// Time per sequence decoding one token in the step (µs).
    pub decode_us: f64,
    /// Time per token of KV cache the step's attention reads (ns).
    pub kv_ns: f64,
}

impl CostModel {
    /// The step's duration in ns, before jitter.
    pub fn step_ns(&self, prefill_tokens: u64, decode_seqs: u64, kv_tokens: u64) -> f64 {
        let prefill_fixed = if prefill_tokens > 0 {
            self.prefill_ms * 1e6
        } else {
            0.0
        };
        self.step_ms * 1e6
            + prefill_fixed
            + self.prefill_us * 1e3 * prefill_tokens as f64
            + self.decode_us * 1e3 * decode_seqs as f64
            + self.kv_ns * kv_tokens as f64
    }

    /// Checks every term is finite and non-negative, and a step takes some time.
    pub fn check(&self) -> Result<(), String> {
        for (name, v) in [
            ("step_ms", self.step_ms),
            ("prefill_us", self.prefill_us),
            ("prefill_ms", self.prefill_ms),
            ("decode_us", self.decode_us),
            ("kv_ns", self.kv_ns),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(format!("cost model: {name} must be a number >= 0, got {v}"));
            }
        }
        if self.step_ms <= 0.0 && self.decode_us <= 0.0 {
            return Err("cost model: step_ms or decode_us must be above 0, or a decoding step would take no time".into());
        }
        Ok(())
    }
}

/// A transformer's shape, as its `config.json` on the Hugging Face Hub gives it.
#[derive(Debug, Clone, Copy)]
pub struct ModelShape {
    /// Parameters.
    pub params: f64,
    /// `num_hidden_layers`.
    pub layers: u32,
    /// `num_key_value_heads`.
    pub kv_heads: u32,
    /// `head_dim` (or hidden_size / num_attention_heads).
    pub head_dim: u32,
    /// Bytes per weight and per KV element (2 for bf16).
    pub bytes: f64,
}

impl ModelShape {
    /// Bytes of KV cache per token: K and V for every layer.
    pub fn kv_bytes_per_token(&self) -> f64 {
        2.0 * self.layers as f64 * self.kv_heads as f64 * self.head_dim as f64 * self.bytes
    }
}

/// A GPU's datasheet numbers.
#[derive(Debug, Clone, Copy)]
pub struct Gpu {
    /// Memory (bytes).
    pub memory: f64,
    /// Memory bandwidth (bytes/s).
    pub bandwidth: f64,
    /// Dense bf16 tensor throughput (FLOP/s), without sparsity.
    pub flops: f64,
}

/// Where a preset's costs come from.
#[derive(Debug, Clone, Copy)]
pub enum Basis {
    /// A roofline estimate from the model's shape and the GPU's datasheet
    /// ([`Preset::cost`] says how).
    Roofline {
        /// The model.
        model: ModelShape,
        /// The GPU.
        gpu: Gpu,
    },
    /// Fitted to a published measured run (the preset's doc comment cites it).
    Fitted {
        /// The fitted costs.
        cost: CostModel,
        /// KV-cache tokens (assumed where the source does not say).
        kv_cache_tokens: u64,
    },
}

/// A model on a GPU, with vLLM's default batch limits for that GPU.
#[derive(Debug, Clone, Copy)]
pub struct Preset {
    /// Name for `--preset`.
    pub name: &'static str,
    /// One line for `--preset list`.
    pub about: &'static str,
    /// Where its costs come from.
    pub basis: Basis,
    /// vLLM's default `max_num_seqs` for the API server on this GPU.
    pub max_num_seqs: usize,
    /// vLLM's default `max_num_batched_tokens` for the API server on this GPU.
    pub max_num_batched_tokens: u32,
}

/// Share of peak bandwidth a decode step achieves reading weights and KV cache.
/// Measured: vLLM decoding Llama-3.1-8B on an A100 40GB at one request ran at
/// "roughly 77% of the GPU's memory-bandwidth ceiling" (John Musgrave, "vLLM
/// throughput-latency sweep on NVIDIA A100").
pub const BANDWIDTH_EFFICIENCY: f64 = 0.8;
/// Share of peak tensor throughput prefill achieves (model FLOPs utilisation).
pub const MFU: f64 = 0.5;
/// Launch and scheduling overhead of a step (ms), on top of reading the weights.
pub const STEP_OVERHEAD_MS: f64 = 0.5;
/// vLLM's default `--gpu-memory-utilization`.
pub const GPU_MEMORY_UTILIZATION: f64 = 0.9;
/// Memory kept for activations and CUDA graphs (bytes), outside the KV cache.
pub const ACTIVATION_RESERVE: f64 = 2e9;

impl Preset {
    /// The cost model. By roofline: a step reads every weight once
    /// (`params × bytes / (bandwidth × 0.8)`, plus 0.5 ms of overhead); each token
    /// computed costs `2 × params` FLOPs at 50% of peak (prefill and decode alike);
    /// each KV token read costs its bytes at 80% of peak bandwidth. Fitted: as
    /// fitted.
    pub fn cost(&self) -> CostModel {
        let (model, gpu) = match self.basis {
            Basis::Fitted { cost, .. } => return cost,
            Basis::Roofline { model, gpu } => (model, gpu),
        };
        let bw = gpu.bandwidth * BANDWIDTH_EFFICIENCY;
        let per_token_s = 2.0 * model.params / (gpu.flops * MFU);
        CostModel {
            step_ms: model.params * model.bytes / bw * 1e3 + STEP_OVERHEAD_MS,
            prefill_us: per_token_s * 1e6,
            prefill_ms: 0.0,
            decode_us: per_token_s * 1e6,
            kv_ns: model.kv_bytes_per_token() / bw * 1e9,
        }
    }

    /// KV-cache tokens that fit. By roofline: 90% of memory, less the weights and
    /// 2 GB of activations, divided by the KV bytes per token (vLLM sizes it the
    /// same way). Fitted: as the preset says.
    pub fn kv_cache_tokens(&self) -> u64 {
        let (model, gpu) = match self.basis {
            Basis::Fitted {
                kv_cache_tokens, ..
            } => return kv_cache_tokens,
            Basis::Roofline { model, gpu } => (model, gpu),
        };
        let free =
            gpu.memory * GPU_MEMORY_UTILIZATION - model.params * model.bytes - ACTIVATION_RESERVE;
        (free.max(0.0) / model.kv_bytes_per_token()) as u64
    }
}

/// Llama-3-8B (`meta-llama/Meta-Llama-3-8B` config.json: 32 layers, 8 KV heads,
/// head dim 128; 8.03 B parameters).
const LLAMA3_8B: ModelShape = ModelShape {
    params: 8.03e9,
    layers: 32,
    kv_heads: 8,
    head_dim: 128,
    bytes: 2.0,
};
/// Qwen3-8B (`Qwen/Qwen3-8B` config.json: 36 layers, 8 KV heads, head dim 128;
/// 8.19 B parameters).
const QWEN3_8B: ModelShape = ModelShape {
    params: 8.19e9,
    layers: 36,
    kv_heads: 8,
    head_dim: 128,
    bytes: 2.0,
};
/// Qwen3-32B (`Qwen/Qwen3-32B` config.json: 64 layers, 8 KV heads, head dim 128;
/// 32.8 B parameters).
const QWEN3_32B: ModelShape = ModelShape {
    params: 32.8e9,
    layers: 64,
    kv_heads: 8,
    head_dim: 128,
    bytes: 2.0,
};
/// Qwen3-0.6B (`Qwen/Qwen3-0.6B` config.json: 28 layers, 8 KV heads, head dim 128;
/// 0.6 B parameters).
const QWEN3_0_6B: ModelShape = ModelShape {
    params: 0.6e9,
    layers: 28,
    kv_heads: 8,
    head_dim: 128,
    bytes: 2.0,
};
/// NVIDIA H100 SXM datasheet: 80 GB HBM3, 3.35 TB/s, 989 TFLOPS bf16 dense.
const H100: Gpu = Gpu {
    memory: 80e9,
    bandwidth: 3.35e12,
    flops: 989e12,
};
/// NVIDIA H200 datasheet: 141 GB HBM3e, 4.8 TB/s, 989 TFLOPS bf16 dense.
const H200: Gpu = Gpu {
    memory: 141e9,
    bandwidth: 4.8e12,
    flops: 989e12,
};
/// NVIDIA L40S datasheet: 48 GB GDDR6, 864 GB/s, 362 TFLOPS bf16 dense.
const L40S: Gpu = Gpu {
    memory: 48e9,
    bandwidth: 864e9,
    flops: 362e12,
};
/// NVIDIA A100 40GB SXM datasheet: 40 GB HBM2, 1,555 GB/s, 312 TFLOPS bf16 dense.
const A100_40GB: Gpu = Gpu {
    memory: 40e9,
    bandwidth: 1.555e12,
    flops: 312e12,
};
/// NVIDIA A10 datasheet: 24 GB GDDR6, 600 GB/s, 125 TFLOPS bf16 dense.
const A10: Gpu = Gpu {
    memory: 24e9,
    bandwidth: 600e9,
    flops: 125e12,
};

/// DeepSeek-R1 (AWQ) fitted to the seed toolkit's published run
/// (FlyAIBox/llm_benchmark, `charts/performance_report.txt`, 2025-07-31: `vllm
/// bench serve`, random 512/512 and 1024/1024 prompts at concurrency 1 and 4, 10
/// and 40 requests): TTFT 551.1, 792.1, 1184.1 and 2142.5 ms, TPOT 42.6, 42.7, 54.7
/// and 55.7 ms. TPOT at concurrency 1 and 4 gives `step_ms + decode_us` and
/// `decode_us` (KV reads add 0.1 ms over 768 more tokens); the four TTFTs, whose
/// concurrency-4 runs prefill four prompts in one step (the clients move in
/// lockstep: equal lengths, all sent at once), give `prefill_us` and `prefill_ms`
/// by least squares. The source names no GPU or KV-cache size: 8192 batched
/// tokens, 1024 sequences and 200,000 KV tokens are assumed. The closed-loop replay
/// in this module's tests predicts all eight numbers within 5%.
const DEEPSEEK_R1_AWQ_SEED: Preset = Preset {
    name: "deepseek-r1-awq-seed",
    about: "DeepSeek-R1 AWQ, fitted to the seed toolkit's published run (GPUs not stated)",
    basis: Basis::Fitted {
        cost: CostModel {
            step_ms: 38.6,
            prefill_us: 441.5,
            prefill_ms: 280.9,
            decode_us: 3930.0,
            kv_ns: 130.0,
        },
        kv_cache_tokens: 200_000,
    },
    max_num_seqs: 1024,
    max_num_batched_tokens: 8192,
};

/// Every preset. vLLM's defaults for the API server (`EngineArgs.get_batch_defaults`):
/// 8192 batched tokens and 1024 sequences on GPUs of 70 GiB or more (not A100),
/// else 2048 and 256.
pub const PRESETS: &[Preset] = &[
    Preset {
        name: "llama3-8b-h100",
        about: "Llama-3-8B, bf16, one H100 SXM",
        basis: Basis::Roofline {
            model: LLAMA3_8B,
            gpu: H100,
        },
        max_num_seqs: 1024,
        max_num_batched_tokens: 8192,
    },
    // Checked against a published measured sweep (John Musgrave, "vLLM
    // throughput-latency sweep on NVIDIA A100", johnmusgrave.com, vLLM 0.23.0,
    // Llama-3.1-8B-Instruct bf16, `vllm bench serve` random 1024/128, concurrency 1
    // to 64): decode at concurrency 1 about 75 tokens/s, output throughput 6.6x
    // higher at concurrency 8. The module's tests replay that sweep.
    Preset {
        name: "llama3-8b-a100-40gb",
        about: "Llama-3-8B, bf16, one A100 40GB SXM",
        basis: Basis::Roofline {
            model: LLAMA3_8B,
            gpu: A100_40GB,
        },
        max_num_seqs: 256,
        max_num_batched_tokens: 2048,
    },
    Preset {
        name: "qwen3-8b-l40s",
        about: "Qwen3-8B, bf16, one L40S",
        basis: Basis::Roofline {
            model: QWEN3_8B,
            gpu: L40S,
        },
        max_num_seqs: 256,
        max_num_batched_tokens: 2048,
    },
    Preset {
        name: "qwen3-32b-h200",
        about: "Qwen3-32B, bf16, one H200",
        basis: Basis::Roofline {
            model: QWEN3_32B,
            gpu: H200,
        },
        max_num_seqs: 1024,
        max_num_batched_tokens: 8192,
    },
    Preset {
        name: "qwen3-0.6b-a10",
        about: "Qwen3-0.6B, bf16, one A10 (a small card)",
        basis: Basis::Roofline {
            model: QWEN3_0_6B,
            gpu: A10,
        },
        max_num_seqs: 256,
        max_num_batched_tokens: 2048,
    },
    DEEPSEEK_R1_AWQ_SEED,
];

/// What the engine takes from a preset: its costs and limits. A `--preset-file`
/// is this as JSON, e.g. `{"name": "my-gpu", "step_ms": 12, "prefill_us": 60,
/// "decode_us": 60, "kv_ns": 120, "kv_cache_tokens": 200000, "max_num_seqs": 256,
/// "max_num_batched_tokens": 2048}`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresetValues {
    /// A name for the printed configuration.
    pub name: String,
    /// One line about it.
    #[serde(default)]
    pub about: String,
    /// Fixed time of every step (ms).
    pub step_ms: f64,
    /// Time per prompt token prefilled (µs).
    pub prefill_us: f64,
    /// Extra fixed time of a step that prefills any tokens (ms; default 0).
    #[serde(default)]
    pub prefill_ms: f64,
    /// Time per sequence decoded (µs).
    pub decode_us: f64,
    /// Time per KV-cache token read (ns).
    pub kv_ns: f64,
    /// KV-cache size in tokens.
    pub kv_cache_tokens: u64,
    /// Most sequences per step.
    pub max_num_seqs: usize,
    /// Most tokens per step.
    pub max_num_batched_tokens: u32,
}

impl PresetValues {
    /// The cost model part.
    pub fn cost(&self) -> CostModel {
        CostModel {
            step_ms: self.step_ms,
            prefill_us: self.prefill_us,
            prefill_ms: self.prefill_ms,
            decode_us: self.decode_us,
            kv_ns: self.kv_ns,
        }
    }
}

impl Preset {
    /// This preset's costs and limits.
    pub fn values(&self) -> PresetValues {
        let c = self.cost();
        PresetValues {
            name: self.name.into(),
            about: self.about.into(),
            step_ms: c.step_ms,
            prefill_us: c.prefill_us,
            prefill_ms: c.prefill_ms,
            decode_us: c.decode_us,
            kv_ns: c.kv_ns,
            kv_cache_tokens: self.kv_cache_tokens(),
            max_num_seqs: self.max_num_seqs,
            max_num_batched_tokens: self.max_num_batched_tokens,
        }
    }
}

/// Reads a preset file (JSON of [`PresetValues`]); errors name the file, the line
/// and the field.
pub fn load_file(path: &str) -> Result<PresetValues, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("preset file {path} (--preset-file): {e}"))?;
    let v: PresetValues = serde_json::from_str(&text).map_err(|e| {
        format!(
            "preset file {path}:{}:{}: {e} (fields: name, about, step_ms, prefill_us, prefill_ms, decode_us, kv_ns, kv_cache_tokens, max_num_seqs, max_num_batched_tokens)",
            e.line(),
            e.column()
        )
    })?;
    v.cost()
        .check()
        .map_err(|e| format!("preset file {path}: {e}"))?;
    Ok(v)
}

/// The preset used when none is named.
pub const DEFAULT_PRESET: &str = "llama3-8b-h100";

/// The preset called `name`, or an error listing them (with the nearest name).
pub fn find(name: &str) -> Result<&'static Preset, String> {
    PRESETS.iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<&str> = PRESETS.iter().map(|p| p.name).collect();
        // Two templates, not an optional part, so each is a catalogue line.
        match crate::suggest::suggest(name, names.iter().copied()) {
            Some(s) => format!(
                "unknown preset (--preset) '{name}' (did you mean '{s}'?); presets: {}",
                names.join(", ")
            ),
            None => format!(
                "unknown preset (--preset) '{name}'; presets: {}",
                names.join(", ")
            ),
        }
    })
}

/// The table `serve-sim --preset list` prints.
pub fn list() -> String {
    let mut s = String::from(
        "preset                step_ms  prefill_ms  prefill_us  decode_us  kv_ns  kv_cache_tokens  max_num_seqs  max_num_batched_tokens  basis     about\n",
    );
    for p in PRESETS {
        let c = p.cost();
        s.push_str(&format!(
            "{:<21} {:>7.2}  {:>10.1}  {:>10.1}  {:>9.1}  {:>5.1}  {:>15}  {:>12}  {:>22}  {:<8}  {}\n",
            p.name,
            c.step_ms,
            c.prefill_ms,
            c.prefill_us,
            c.decode_us,
            c.kv_ns,
            p.kv_cache_tokens(),
            p.max_num_seqs,
            p.max_num_batched_tokens,
            match p.basis {
                Basis::Roofline { .. } => "roofline",
                Basis::Fitted { .. } => "fitted",
            },
            p.about
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama3_8b_on_h100_is_as_the_roofline_says() {
        let p = find("llama3-8b-h100").unwrap();
        let c = p.cost();
        // 16.06 GB of weights at 2.68 TB/s = 5.99 ms, plus 0.5 ms.
        assert!((c.step_ms - 6.49).abs() < 0.01, "{c:?}");
        // 16.06 GFLOP per token at 494.5 TFLOP/s = 32.5 µs.
        assert!((c.prefill_us - 32.48).abs() < 0.01, "{c:?}");
        // 128 KiB of KV per token at 2.68 TB/s = 48.9 ns.
        assert!((c.kv_ns - 48.91).abs() < 0.01, "{c:?}");
        assert_eq!(LLAMA3_8B.kv_bytes_per_token(), 131072.0);
        assert!((400_000..420_000).contains(&p.kv_cache_tokens()));
    }

    #[test]
    fn preset_files_are_read_and_checked() {
        let dir = std::env::temp_dir().join(format!("mb-preset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.json");
        std::fs::write(
            &good,
            r#"{"name": "mine", "step_ms": 12.5, "prefill_us": 60, "decode_us": 55.25, "kv_ns": 120,
               "kv_cache_tokens": 200000, "max_num_seqs": 128, "max_num_batched_tokens": 4096}"#,
        )
        .unwrap();
        let v = load_file(good.to_str().unwrap()).unwrap();
        assert_eq!(
            (v.name.as_str(), v.max_num_seqs, v.kv_cache_tokens),
            ("mine", 128, 200000)
        );
        assert_eq!(
            v.cost(),
            CostModel {
                step_ms: 12.5,
                prefill_us: 60.0,
                prefill_ms: 0.0,
                decode_us: 55.25,
                kv_ns: 120.0
            }
        );
        let bad = dir.join("bad.json");
        std::fs::write(&bad, "{\"name\": \"x\",\n \"step_msec\": 3}").unwrap();
        let e = load_file(bad.to_str().unwrap()).unwrap_err();
        assert!(e.contains("bad.json:2:") && e.contains("step_msec"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unknown_presets_are_named_with_a_suggestion() {
        let e = find("llama3-8b-h10").unwrap_err();
        assert!(e.contains("did you mean 'llama3-8b-h100'"), "{e}");
        assert!(list().contains("qwen3-32b-h200"));
    }
}

/// Presets replayed against the published measured runs they cite, in virtual
/// time ([`super::engine::closed_loop`]).
#[cfg(test)]
mod published {
    use super::super::SimOptions;
    use super::super::engine::{ClosedLoop, closed_loop};

    fn run(preset: &str, c: usize, n: usize, input: u32, output: u32) -> ClosedLoop {
        let o = SimOptions {
            preset: Some(preset.into()),
            ..Default::default()
        };
        let (cfg, _, _) = o.engine_config().unwrap().expect("a step engine");
        closed_loop(&cfg, c, n, input, output).unwrap()
    }

    fn within(what: &str, got: f64, want: f64, share: f64) {
        let err = (got - want) / want;
        eprintln!(
            "{what}: {got:.1} predicted, {want:.1} published ({:+.1}%)",
            err * 100.0
        );
        assert!(
            err.abs() <= share,
            "{what}: {got:.1} vs published {want:.1}"
        );
    }

    /// The seed toolkit's four configurations (FlyAIBox/llm_benchmark,
    /// charts/performance_report.txt): every mean TTFT and TPOT within 5%.
    #[test]
    fn deepseek_r1_awq_seed_replays_the_seed_run() {
        for (input, c, n, ttft, tpot) in [
            (512, 1, 10, 551.1, 42.6),
            (512, 4, 40, 1184.1, 54.7),
            (1024, 1, 10, 792.1, 42.7),
            (1024, 4, 40, 2142.5, 55.7),
        ] {
            let r = run("deepseek-r1-awq-seed", c, n, input, input);
            let at = format!("{input}x{input} mc{c}");
            within(
                &format!("{at} TTFT"),
                ClosedLoop::mean(&r.ttft_ms),
                ttft,
                0.05,
            );
            within(
                &format!("{at} TPOT"),
                ClosedLoop::mean(&r.tpot_ms),
                tpot,
                0.05,
            );
        }
    }

    /// John Musgrave's A100 40GB sweep (Llama-3.1-8B, 1024/128): about 75 tokens/s
    /// of decode at concurrency 1; throughput still rising past concurrency 8 while
    /// per-token latency climbs. The roofline preset, not fitted to it, matches the
    /// decode rate within 10% and the shape; the source's 6.6x throughput gain at
    /// concurrency 8 it does not reach (about 5.3x: docs/simulator.md says why),
    /// which this test prints and keeps below 6.6x so a change that moves it shows.
    #[test]
    fn llama3_8b_a100_roofline_matches_a_published_sweep() {
        let at = |c: usize| run("llama3-8b-a100-40gb", c, c * 20, 1024, 128);
        let (one, eight, many) = (at(1), at(8), at(64));
        within(
            "decode tokens/s at concurrency 1",
            1000.0 / ClosedLoop::mean(&one.tpot_ms),
            75.0,
            0.10,
        );
        let gain = eight.output_throughput() / one.output_throughput();
        eprintln!(
            "output throughput at concurrency 8 over 1: {gain:.2}x predicted, 6.6x published"
        );
        assert!((4.5..6.6).contains(&gain), "gain {gain}");
        assert!(many.output_throughput() > eight.output_throughput());
        let (t8, t64) = (
            ClosedLoop::mean(&eight.tpot_ms),
            ClosedLoop::mean(&many.tpot_ms),
        );
        assert!(t64 > 2.0 * t8, "TPOT {t8:.1} ms at 8, {t64:.1} ms at 64");
    }
}
