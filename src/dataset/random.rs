//! vLLM's `random` dataset: prompts of random tokens with exact lengths.
//!
//! Lengths are drawn uniformly from [⌊L(1−r)⌋, ⌈L(1+r)⌉] (outputs at least 1). Request
//! i's tokens are a shared random prefix followed by `allowed[(offset_i + i + j) % A]`,
//! where `allowed` is the vocabulary without special tokens (vLLM ≥ 0.11). The ids
//! are decoded and re-encoded, then topped up or truncated until the text encodes
//! to exactly the target length (vLLM's `gen_prompt_decode_to_target_len`), so
//! `prompt_tokens` is the true count for this tokenizer. Deterministic for a seed,
//! whatever the number of threads.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::Request;
use crate::tokenizer::Tokenizer;

/// Parameters of the random dataset (vLLM's `--random-*` flags).
#[derive(Debug, Clone, PartialEq)]
pub struct RandomSpec {
    /// Number of prompts.
    pub n: usize,
    /// Mean input length in tokens (excluding the shared prefix).
    pub input_len: u32,
    /// Mean output length in tokens.
    pub output_len: u32,
    /// Lengths vary uniformly within ±ratio (0 ≤ ratio < 1).
    pub range_ratio: f64,
    /// Tokens of a random prefix shared by every prompt.
    pub prefix_len: u32,
    /// Seed.
    pub seed: u64,
}

impl Default for RandomSpec {
    fn default() -> Self {
        RandomSpec {
            n: 1000,
            input_len: 1024,
            output_len: 128,
            range_ratio: 0.0,
            prefix_len: 0,
            seed: 0,
        }
    }
}

fn bounds(len: u32, r: f64, min: u32) -> (u32, u32) {
    let lo = ((len as f64) * (1.0 - r)).floor().max(min as f64) as u32;
    let hi = ((len as f64) * (1.0 + r)).ceil().max(lo as f64) as u32;
    (lo, hi)
}

/// Builds the prompts; an error names the bad parameter.
pub fn generate(tok: &Tokenizer, spec: &RandomSpec) -> Result<Vec<Request>, String> {
    if !(0.0..1.0).contains(&spec.range_ratio) {
        return Err(format!(
            "--random-range-ratio must be in [0, 1), got {}",
            spec.range_ratio
        ));
    }
    let (in_lo, in_hi) = bounds(spec.input_len, spec.range_ratio, 0);
    if in_lo + spec.prefix_len == 0 {
        return Err(
            "--random-input-len plus --random-prefix-len must give at least one token".into(),
        );
    }
    let (out_lo, out_hi) = bounds(spec.output_len, spec.range_ratio, 1);
    let allowed: Vec<u32> = {
        let special: std::collections::HashSet<u32> = tok.special_ids().into_iter().collect();
        (0..tok.vocab_size())
            .filter(|id| !special.contains(id))
            .collect()
    };
    if allowed.is_empty() {
        return Err(format!("tokenizer '{}' has no ordinary tokens", tok.name()));
    }
    let a = allowed.len() as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let prefix: Vec<u32> = (0..spec.prefix_len)
        .map(|_| allowed[rng.random_range(0..a) as usize])
        .collect();
    let plan: Vec<(u32, u32, u64)> = (0..spec.n)
        .map(|_| {
            (
                rng.random_range(in_lo..=in_hi),
                rng.random_range(out_lo..=out_hi),
                rng.random_range(0..a),
            )
        })
        .collect();
    let build = |i: usize| -> Request {
        let (len, out, off) = plan[i];
        let mut ids = prefix.clone();
        ids.extend((0..len as u64).map(|j| allowed[((off + i as u64 + j) % a) as usize]));
        let target = spec.prefix_len + len;
        let (text, count) = fit_to_length(
            tok,
            ids,
            target as usize,
            &allowed,
            spec.seed ^ (i as u64 + 1),
        );
        Request::text(text, count as u32, Some(out))
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(spec.n.max(1));
    if threads <= 1 || tok.is_words() {
        return Ok((0..spec.n).map(build).collect());
    }
    let chunk = spec.n.div_ceil(threads);
    let mut out: Vec<Request> = Vec::with_capacity(spec.n);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let build = &build;
                s.spawn(move || {
                    (t * chunk..((t + 1) * chunk).min(spec.n))
                        .map(build)
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            out.extend(h.join().expect("prompt builder thread"));
        }
    });
    Ok(out)
}

/// Decodes `ids` and adjusts until the text re-encodes to exactly `target` tokens
/// (at most 10 rounds); returns the text and its true token count.
fn fit_to_length(
    tok: &Tokenizer,
    mut ids: Vec<u32>,
    target: usize,
    allowed: &[u32],
    seed: u64,
) -> (String, usize) {
    if tok.is_words() {
        ids.truncate(target);
        return (tok.decode(&ids), ids.len());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut text = tok.decode(&ids);
    for _ in 0..10 {
        let re = tok.encode(&text);
        if re.len() == target {
            return (text, target);
        }
        ids = re;
        if ids.len() < target {
            let need = target - ids.len();
            ids.extend((0..need).map(|_| allowed[rng.random_range(0..allowed.len())]));
        } else {
            ids.truncate(target);
        }
        text = tok.decode(&ids);
    }
    let n = tok.count(&text);
    (text, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_prompts_have_exact_lengths_and_are_deterministic() {
        let tok = Tokenizer::Words;
        let spec = RandomSpec {
            n: 50,
            input_len: 100,
            output_len: 20,
            range_ratio: 0.5,
            prefix_len: 10,
            seed: 3,
        };
        let a = generate(&tok, &spec).unwrap();
        let b = generate(&tok, &spec).unwrap();
        assert_eq!(a, b);
        for r in &a {
            let crate::dataset::Prompt::Text(t) = &r.prompt else {
                panic!()
            };
            assert_eq!(tok.count(t) as u32, r.prompt_tokens);
            assert!(
                (10 + 50..=10 + 150).contains(&r.prompt_tokens),
                "{}",
                r.prompt_tokens
            );
            assert!((10..=30).contains(&r.max_tokens.unwrap()));
        }
        // The prefix is shared.
        let first: Vec<&str> = a
            .iter()
            .map(|r| match &r.prompt {
                crate::dataset::Prompt::Text(t) => {
                    t.split(' ').take(10).collect::<Vec<_>>().join(" ").leak() as &str
                }
                _ => "",
            })
            .collect();
        assert!(first.windows(2).all(|w| w[0] == w[1]));
    }

    /// With the real Qwen3 tokenizer every prompt re-encodes to exactly its length.
    #[test]
    fn hf_prompts_have_exact_lengths() {
        let tok = Tokenizer::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/qwen3/tokenizer.json.gz"
        ))
        .unwrap();
        let spec = RandomSpec {
            n: 40,
            input_len: 256,
            output_len: 8,
            range_ratio: 0.25,
            prefix_len: 32,
            seed: 1,
        };
        let reqs = generate(&tok, &spec).unwrap();
        assert_eq!(
            reqs,
            generate(&tok, &spec).unwrap(),
            "deterministic for a seed"
        );
        let mut exact = 0;
        for r in &reqs {
            let crate::dataset::Prompt::Text(t) = &r.prompt else {
                panic!()
            };
            assert_eq!(
                tok.count(t) as u32,
                r.prompt_tokens,
                "prompt_tokens is the true count"
            );
            exact += ((32 + 192..=32 + 320).contains(&r.prompt_tokens)) as usize;
        }
        assert_eq!(exact, reqs.len());
        let special: std::collections::HashSet<u32> = tok.special_ids().into_iter().collect();
        for r in &reqs {
            let crate::dataset::Prompt::Text(t) = &r.prompt else {
                panic!()
            };
            assert!(
                tok.encode(t).iter().all(|id| !special.contains(id)),
                "no special tokens in prompts"
            );
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let tok = Tokenizer::Words;
        let e = generate(
            &tok,
            &RandomSpec {
                range_ratio: 1.0,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("--random-range-ratio"));
        let e = generate(
            &tok,
            &RandomSpec {
                input_len: 0,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("--random-input-len"));
    }
}
