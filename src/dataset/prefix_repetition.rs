//! vLLM's `prefix_repetition` dataset: `num_prefixes` random prefixes, each shared by
//! ⌊n / num_prefixes⌋ prompts with their own random suffix (so a server's prefix
//! cache gets hits), shuffled. As in vLLM, the total is num_prefixes·⌊n/num_prefixes⌋.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::random::{pool_prompt, spot_check};
use super::{Request, shuffle};
use crate::tokenizer::Tokenizer;

/// Parameters (vLLM's `--prefix-repetition-*` flags).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PrefixRepetitionSpec {
    /// Requests asked for.
    pub n: usize,
    /// Tokens of each prefix.
    pub prefix_len: u32,
    /// Tokens of each suffix.
    pub suffix_len: u32,
    /// Number of distinct prefixes.
    pub num_prefixes: usize,
    /// Output tokens.
    pub output_len: u32,
    /// Seed.
    pub seed: u64,
    /// Send token ids instead of text.
    pub token_ids: bool,
}

impl Default for PrefixRepetitionSpec {
    fn default() -> Self {
        PrefixRepetitionSpec {
            n: 1000,
            prefix_len: 256,
            suffix_len: 256,
            num_prefixes: 10,
            output_len: 128,
            seed: 0,
            token_ids: false,
        }
    }
}

/// Builds the prompts.
pub fn generate(tok: &Tokenizer, spec: &PrefixRepetitionSpec) -> Result<Vec<Request>, String> {
    if spec.num_prefixes == 0 || spec.num_prefixes > spec.n {
        return Err(format!(
            "`num_prefixes` must be between 1 and `n` ({}), got {}",
            spec.n, spec.num_prefixes
        ));
    }
    if spec.prefix_len + spec.suffix_len == 0 {
        return Err("`prefix_len` plus `suffix_len` must be at least 1".into());
    }
    let pool = tok
        .word_pool()
        .map_err(|e| format!("tokenizer '{}' cannot build exact prompts: {e}", tok.name()))?;
    let p = pool.len() as u32;
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let per = spec.n / spec.num_prefixes;
    let mut out = Vec::with_capacity(per * spec.num_prefixes);
    for _ in 0..spec.num_prefixes {
        let prefix: Vec<u32> = (0..spec.prefix_len)
            .map(|_| rng.random_range(0..p))
            .collect();
        for _ in 0..per {
            let suffix: Vec<u32> = (0..spec.suffix_len)
                .map(|_| rng.random_range(0..p))
                .collect();
            let (prompt, n) = pool_prompt(
                &pool,
                prefix.iter().chain(suffix.iter()).copied(),
                spec.token_ids,
            );
            out.push(Request {
                prompt,
                prompt_tokens: n,
                max_tokens: Some(spec.output_len),
                extra: None,
                timestamp: None,
            });
        }
    }
    shuffle(&mut out, spec.seed);
    spot_check(tok, &out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_shared() {
        let tok = Tokenizer::words();
        let spec = PrefixRepetitionSpec {
            n: 25,
            prefix_len: 6,
            suffix_len: 3,
            num_prefixes: 4,
            output_len: 2,
            ..Default::default()
        };
        let r = generate(&tok, &spec).unwrap();
        assert_eq!(r.len(), 24, "4 x floor(25/4), as vLLM");
        let mut prefixes: Vec<String> = r
            .iter()
            .map(|x| {
                x.prompt
                    .text()
                    .unwrap()
                    .split_whitespace()
                    .take(6)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        prefixes.sort();
        prefixes.dedup();
        assert_eq!(prefixes.len(), 4);
        assert!(r.iter().all(|x| x.prompt_tokens == 9));
        assert!(
            generate(
                &tok,
                &PrefixRepetitionSpec {
                    num_prefixes: 0,
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
