//! vLLM's `random` dataset: prompts of random tokens with exact lengths.
//!
//! Lengths are drawn uniformly from [⌊L(1−r)⌋, ⌈L(1+r)⌉] (outputs at least 1). As in
//! vLLM, request i's tokens are a shared random prefix followed by the sequence
//! `pool[(offset_i + i + j) % P]`; here the pool is the tokenizer's verified
//! whole-word tokens, so the text encodes to exactly the intended tokens without a
//! decode/re-encode round per prompt (a sample is re-encoded to check). If a
//! tokenizer has no usable pool, prompts fall back to vLLM's method over the whole
//! vocabulary without special tokens: decode, re-encode, top up or truncate until
//! the length is exact. Deterministic for a seed, whatever the number of threads.
//! Text prompts are stored as slices of one shared ring of the pool's words
//! ([`Piece`]s), so memory does not grow with prompt length.

use std::sync::Arc;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Piece, Prompt, Request, par_map};
use crate::tokenizer::Tokenizer;
use crate::tokenizer::pool::WordPool;

/// Parameters of the random dataset (vLLM's `--random-*` flags).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RandomSpec {
    /// Number of prompts.
    pub n: usize,
    /// Mean input length in tokens (excluding the shared prefix).
    pub input_len: u32,
    /// Mean output length in tokens.
    pub output_len: u32,
    /// Lengths vary uniformly within ±ratio (0 ≤ ratio < 1).
    pub range_ratio: f64,
    /// Output lengths vary within ±this instead (vLLM's `--random-range-ratio
    /// '{"input": r1, "output": r2}'`; default: range_ratio).
    pub output_range_ratio: Option<f64>,
    /// Tokens of a random prefix shared by every prompt.
    pub prefix_len: u32,
    /// Seed.
    pub seed: u64,
    /// Send token ids instead of text (`--prompt-token-ids`).
    pub token_ids: bool,
    /// Prompts per request, sent together as one list to an embeddings or pooling
    /// server (vLLM's `--random-batch-size`); `n` prompts make ⌈n/batch_size⌉ requests.
    pub batch_size: usize,
}

impl Default for RandomSpec {
    fn default() -> Self {
        RandomSpec {
            n: 1000,
            input_len: 1024,
            output_len: 128,
            range_ratio: 0.0,
            output_range_ratio: None,
            prefix_len: 0,
            seed: 0,
            token_ids: false,
            batch_size: 1,
        }
    }
}

fn bounds(len: u32, r: f64, min: u32) -> (u32, u32) {
    let lo = ((len as f64) * (1.0 - r)).floor().max(min as f64) as u32;
    let hi = ((len as f64) * (1.0 + r)).ceil().max(lo as f64) as u32;
    (lo, hi)
}

/// The pool's words in order, twice over: any window of the cyclic pool
/// sequence shorter than the pool is one slice of it.
struct Ring {
    text: Arc<str>,
    /// Byte offset of each of the 2·len words, and the end.
    starts: Vec<usize>,
    len: usize,
}

impl Ring {
    fn new(pool: &WordPool) -> Ring {
        let len = pool.len();
        let mut text = String::new();
        let mut starts = Vec::with_capacity(2 * len + 1);
        for i in (0..len).chain(0..len) {
            starts.push(text.len());
            text.push_str(&pool.texts[i]);
        }
        starts.push(text.len());
        Ring {
            text: Arc::from(text),
            starts,
            len,
        }
    }

    /// The pieces of the `n` pool words from index `start` on, cyclically.
    fn window(&self, start: usize, n: usize, out: &mut Vec<Piece>) {
        let s = self.starts[start];
        for _ in 0..n / self.len {
            out.push(Piece::slice(&self.text, s..self.starts[start + self.len]));
        }
        if n % self.len > 0 {
            out.push(Piece::slice(
                &self.text,
                s..self.starts[start + n % self.len],
            ));
        }
    }
}

/// A prompt made of pool tokens: text (or ids) and its exact length.
pub fn pool_prompt(
    pool: &WordPool,
    idx: impl Iterator<Item = u32> + Clone,
    token_ids: bool,
) -> (Prompt, u32) {
    let n = idx.clone().count() as u32;
    if token_ids {
        (
            Prompt::TokenIds(idx.map(|i| pool.ids[i as usize]).collect()),
            n,
        )
    } else {
        let mut text = String::with_capacity(n as usize * 8);
        pool.push_text(idx, &mut text);
        (Prompt::Text(text), n)
    }
}

/// Re-encodes a few prompts (spread over the set) and checks their lengths.
pub fn spot_check(tok: &Tokenizer, reqs: &[Request]) -> Result<(), String> {
    if tok.is_words() || reqs.is_empty() {
        return Ok(());
    }
    let step = (reqs.len() / 4).max(1);
    for r in reqs.iter().step_by(step).take(4) {
        if let Some(t) = r.prompt.text() {
            let got = tok.count(&t) as u32;
            if got != r.prompt_tokens {
                return Err(format!(
                    "a prompt built for {} tokens encodes to {got}",
                    r.prompt_tokens
                ));
            }
        }
    }
    Ok(())
}

/// Builds the prompts (batched by `batch_size`); an error names the bad parameter.
pub fn generate(tok: &Tokenizer, spec: &RandomSpec) -> Result<Vec<Request>, String> {
    if spec.batch_size == 0 {
        return Err("`batch_size` must be at least 1".into());
    }
    if spec.batch_size > 1 && spec.token_ids {
        return Err(
            "`batch_size` above 1 batches text prompts; it cannot be used with `token_ids`".into(),
        );
    }
    let reqs = generate_prompts(tok, spec)?;
    super::batch(&reqs, spec.batch_size)
}

fn generate_prompts(tok: &Tokenizer, spec: &RandomSpec) -> Result<Vec<Request>, String> {
    let out_ratio = spec.output_range_ratio.unwrap_or(spec.range_ratio);
    for (name, r) in [
        ("range_ratio", spec.range_ratio),
        ("output_range_ratio", out_ratio),
    ] {
        if !(0.0..1.0).contains(&r) {
            return Err(format!("`{name}` must be in [0, 1), got {r}"));
        }
    }
    let (in_lo, in_hi) = bounds(spec.input_len, spec.range_ratio, 0);
    if in_lo + spec.prefix_len == 0 {
        return Err("`input_len` plus `prefix_len` must give at least one token".into());
    }
    let (out_lo, out_hi) = bounds(spec.output_len, out_ratio, 1);
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let plan: Vec<(u32, u32, u64)> = (0..spec.n)
        .map(|_| {
            (
                rng.random_range(in_lo..=in_hi),
                rng.random_range(out_lo..=out_hi),
                rng.random::<u64>(),
            )
        })
        .collect();
    match tok.word_pool() {
        Ok(pool) => {
            let p = pool.len() as u64;
            let prefix: Vec<u32> = (0..spec.prefix_len)
                .map(|_| rng.random_range(0..p) as u32)
                .collect();
            // Text prompts are windows of the cyclic pool sequence: slices of one
            // shared ring text, so 100,000 prompts of 8,192 tokens hold ~1 MB of text.
            let ring = (!spec.token_ids).then(|| Ring::new(&pool));
            let prefix_text: Arc<str> = {
                let mut t = String::new();
                pool.push_text(prefix.iter().copied(), &mut t);
                Arc::from(t)
            };
            let reqs = par_map(&plan, |i, &(len, out, off)| {
                let start = ((off % p + i as u64) % p) as usize;
                let (prompt, n) = match &ring {
                    Some(ring) => {
                        let mut parts = Vec::with_capacity(2);
                        if !prefix_text.is_empty() {
                            parts.push(Piece::whole(prefix_text.clone()));
                        }
                        ring.window(start, len as usize, &mut parts);
                        (Prompt::Parts(parts), spec.prefix_len + len)
                    }
                    None => {
                        let seq =
                            (0..len as u64).map(move |j| ((off % p + i as u64 + j) % p) as u32);
                        pool_prompt(&pool, prefix.iter().copied().chain(seq), true)
                    }
                };
                Request {
                    prompt,
                    prompt_tokens: n,
                    max_tokens: Some(out),
                    extra: None,
                    timestamp: None,
                }
            });
            match spot_check(tok, &reqs) {
                Ok(()) => Ok(reqs),
                Err(e) => {
                    eprintln!("note: {e}; building prompts by decode/re-encode instead (slower)");
                    Ok(generate_by_reencoding(tok, spec, &plan))
                }
            }
        }
        Err(e) => {
            eprintln!(
                "note: tokenizer '{}': {e}; building prompts by decode/re-encode (slower)",
                tok.name()
            );
            Ok(generate_by_reencoding(tok, spec, &plan))
        }
    }
}

/// vLLM's method over the whole vocabulary without special tokens.
fn generate_by_reencoding(
    tok: &Tokenizer,
    spec: &RandomSpec,
    plan: &[(u32, u32, u64)],
) -> Vec<Request> {
    let allowed: Vec<u32> = {
        let special: std::collections::HashSet<u32> = tok.special_ids().into_iter().collect();
        (0..tok.vocab_size())
            .filter(|id| !special.contains(id))
            .collect()
    };
    let a = allowed.len() as u64;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed ^ 0x5eed);
    let prefix: Vec<u32> = (0..spec.prefix_len)
        .map(|_| allowed[rng.random_range(0..a) as usize])
        .collect();
    par_map(plan, |i, &(len, out, off)| {
        let mut ids = prefix.clone();
        ids.extend((0..len as u64).map(|j| allowed[((off % a + i as u64 + j) % a) as usize]));
        let target = (spec.prefix_len + len) as usize;
        let (text, count) = fit_to_length(tok, ids, target, &allowed, spec.seed ^ (i as u64 + 1));
        let prompt = if spec.token_ids {
            Prompt::TokenIds(tok.encode(&text))
        } else {
            Prompt::Text(text)
        };
        Request {
            prompt,
            prompt_tokens: count as u32,
            max_tokens: Some(out),
            extra: None,
            timestamp: None,
        }
    })
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
        let tok = Tokenizer::words();
        let spec = RandomSpec {
            n: 50,
            input_len: 100,
            output_len: 20,
            range_ratio: 0.5,
            output_range_ratio: None,
            prefix_len: 10,
            seed: 3,
            token_ids: false,
            batch_size: 1,
        };
        let a = generate(&tok, &spec).unwrap();
        let b = generate(&tok, &spec).unwrap();
        assert_eq!(a, b);
        for r in &a {
            let t = r.prompt.text().expect("a text prompt");
            assert_eq!(tok.count(&t) as u32, r.prompt_tokens);
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

    /// Windows of the ring wrap around the pool, also when longer than it.
    #[test]
    fn ring_windows_wrap() {
        let pool = WordPool {
            ids: vec![1, 2, 3],
            texts: vec![" a".into(), " bb".into(), " c".into()],
        };
        let ring = Ring::new(&pool);
        let text = |start, n| {
            let mut v = Vec::new();
            ring.window(start, n, &mut v);
            crate::dataset::join(&v)
        };
        assert_eq!(text(1, 2), " bb c");
        assert_eq!(text(2, 2), " c a");
        assert_eq!(text(2, 7), " c a bb c a bb c");
        assert_eq!(text(0, 3), " a bb c");
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
            output_range_ratio: None,
            prefix_len: 32,
            seed: 1,
            token_ids: false,
            batch_size: 1,
        };
        let reqs = generate(&tok, &spec).unwrap();
        assert_eq!(
            reqs,
            generate(&tok, &spec).unwrap(),
            "deterministic for a seed"
        );
        let mut exact = 0;
        for r in &reqs {
            let t = r.prompt.text().expect("a text prompt");
            assert_eq!(
                tok.count(&t) as u32,
                r.prompt_tokens,
                "prompt_tokens is the true count"
            );
            exact += ((32 + 192..=32 + 320).contains(&r.prompt_tokens)) as usize;
        }
        assert_eq!(exact, reqs.len());
        let special: std::collections::HashSet<u32> = tok.special_ids().into_iter().collect();
        for r in &reqs {
            let t = r.prompt.text().expect("a text prompt");
            assert!(
                tok.encode(&t).iter().all(|id| !special.contains(id)),
                "no special tokens in prompts"
            );
        }
    }

    /// vLLM's JSON form: input lengths fixed, output lengths within ±50%.
    #[test]
    fn separate_output_range_ratio() {
        let tok = Tokenizer::words();
        let r = generate(
            &tok,
            &RandomSpec {
                n: 200,
                input_len: 40,
                output_len: 100,
                range_ratio: 0.0,
                output_range_ratio: Some(0.5),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(r.iter().all(|x| x.prompt_tokens == 40));
        let outs: Vec<u32> = r.iter().map(|x| x.max_tokens.unwrap()).collect();
        assert!(outs.iter().all(|&o| (50..=150).contains(&o)));
        assert!(
            outs.iter().min() < Some(&70) && outs.iter().max() > Some(&130),
            "spread"
        );
        let e = generate(
            &tok,
            &RandomSpec {
                output_range_ratio: Some(1.2),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("`output_range_ratio`"), "{e}");
    }

    #[test]
    fn bad_parameters_are_named() {
        let tok = Tokenizer::words();
        let e = generate(
            &tok,
            &RandomSpec {
                range_ratio: 1.0,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("`range_ratio`"));
        let e = generate(
            &tok,
            &RandomSpec {
                input_len: 0,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("`input_len`"));
    }
}
