//! vLLM's `sonnet` dataset: prompts made of random lines of Shakespeare's sonnets
//! after a fixed instruction and a shared prefix of lines, sized to an input length.
//! The bundled `data/sonnet.txt` (vLLM's file) is used unless a path is given.
//!
//! With a chat template, prompts are measured (and, for completions backends, sent)
//! as the templated single user message, as vLLM does; without one (e.g. the word
//! tokenizer) the raw text is used.

use std::path::Path;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Prompt, Request, read_text};
use crate::tokenizer::Tokenizer;

/// vLLM's `benchmarks/sonnet.txt`.
pub const SONNET_TXT: &str = include_str!("../../data/sonnet.txt");

/// The instruction every sonnet prompt starts with (vLLM's).
pub const BASE_PROMPT: &str = "Pick as many lines as you can from these poem lines:\n";

/// Parameters of the sonnet dataset (vLLM's `--sonnet-*` flags).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SonnetSpec {
    /// Number of requests.
    pub n: usize,
    /// Target input tokens (a prompt is accepted if it is not longer).
    pub input_len: u32,
    /// Output tokens.
    pub output_len: u32,
    /// Tokens of the shared prefix (instruction + first lines).
    pub prefix_len: u32,
    /// Seed.
    pub seed: u64,
    /// Send the raw text for a chat backend, where the server applies the chat
    /// template; `false` sends the templated prompt (completions backends).
    pub chat: bool,
}

impl Default for SonnetSpec {
    fn default() -> Self {
        SonnetSpec {
            n: 1000,
            input_len: 550,
            output_len: 150,
            prefix_len: 200,
            seed: 0,
            chat: false,
        }
    }
}

/// Builds `spec.n` sonnet prompts from `path` (or the bundled file).
pub fn generate(
    tok: &Tokenizer,
    path: Option<&Path>,
    spec: &SonnetSpec,
) -> Result<Vec<Request>, String> {
    let owned;
    let text = match path {
        Some(p) => {
            owned = read_text(p)?;
            owned.as_str()
        }
        None => SONNET_TXT,
    };
    let lines: Vec<&str> = text
        .split_inclusive('\n')
        .filter(|l| !l.trim().is_empty())
        .collect();
    if lines.is_empty() {
        return Err(format!(
            "{}: no lines",
            path.map_or("sonnet.txt".into(), |p| p.display().to_string())
        ));
    }
    let templated = tok.has_chat_template();
    let measure = |raw: &str| -> Result<(String, u32), String> {
        if templated {
            let t = tok.template_user_prompt(raw)?;
            let n = tok.count(&t) as u32;
            Ok((t, n))
        } else {
            Ok((raw.to_string(), tok.count(raw) as u32))
        }
    };
    let avg_len = lines.iter().map(|l| tok.count(l) as f64).sum::<f64>() / lines.len() as f64;
    let base_offset = measure(BASE_PROMPT)?.1;
    if spec.input_len <= base_offset {
        return Err(format!(
            "`input_len` {} is not longer than the instruction alone ({base_offset} tokens); ask for more",
            spec.input_len
        ));
    }
    let n_in = ((spec.input_len - base_offset) as f64 / avg_len).round() as usize;
    let n_pre = ((spec.prefix_len as f64 - base_offset as f64) / avg_len)
        .round()
        .max(0.0) as usize;
    if n_pre > n_in {
        return Err(format!(
            "`prefix_len` {} is longer than `input_len` {}: a prompt cannot be shorter than its prefix",
            spec.prefix_len, spec.input_len
        ));
    }
    let prefix: String = lines.iter().cycle().take(n_pre).copied().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut out = Vec::with_capacity(spec.n);
    let mut attempts = 0;
    while out.len() < spec.n {
        attempts += 1;
        if attempts > spec.n * 100 + 1000 {
            return Err(format!(
                "could not build sonnet prompts of at most {} tokens; raise `input_len`",
                spec.input_len
            ));
        }
        let mut raw = String::from(BASE_PROMPT);
        raw.push_str(&prefix);
        for _ in 0..(n_in - n_pre) {
            raw.push_str(lines[rng.random_range(0..lines.len())]);
        }
        let (formatted, len) = measure(&raw)?;
        if len <= spec.input_len {
            let prompt = if spec.chat { raw } else { formatted };
            out.push(Request {
                prompt: Prompt::Text(prompt),
                prompt_tokens: len,
                max_tokens: Some(spec.output_len),
                extra: None,
                timestamp: None,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_file_is_vllms() {
        assert_eq!(
            SONNET_TXT.matches('\n').count(),
            517,
            "517 newlines, as `wc -l`"
        );
        assert_eq!(SONNET_TXT.len(), 22_706);
        assert!(SONNET_TXT.starts_with("FROM fairest creatures we desire increase,"));
    }

    #[test]
    fn prompts_share_the_prefix_and_fit_the_length() {
        let tok = Tokenizer::words();
        let spec = SonnetSpec {
            n: 20,
            input_len: 120,
            output_len: 10,
            prefix_len: 50,
            seed: 1,
            chat: false,
        };
        let r = generate(&tok, None, &spec).unwrap();
        assert_eq!(r.len(), 20);
        let texts: Vec<String> = r
            .iter()
            .map(|x| x.prompt.text().unwrap().into_owned())
            .collect();
        for (t, req) in texts.iter().zip(&r) {
            assert!(t.starts_with(BASE_PROMPT));
            assert!(
                t[BASE_PROMPT.len()..].starts_with("FROM fairest creatures"),
                "shared prefix lines"
            );
            assert!(
                req.prompt_tokens <= 120 && req.prompt_tokens > 80,
                "{}",
                req.prompt_tokens
            );
            assert_eq!(tok.count(t) as u32, req.prompt_tokens);
        }
    }

    #[test]
    fn templated_with_a_real_chat_template() {
        let tok =
            Tokenizer::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/qwen3")).unwrap();
        let spec = SonnetSpec {
            n: 5,
            input_len: 300,
            output_len: 10,
            prefix_len: 100,
            seed: 2,
            chat: false,
        };
        for r in generate(&tok, None, &spec).unwrap() {
            let t = r.prompt.text().unwrap();
            assert!(t.starts_with("<|im_start|>user\nPick as many lines"));
            assert_eq!(tok.count(&t) as u32, r.prompt_tokens);
            assert!(r.prompt_tokens <= 300);
        }
        let raw = generate(&tok, None, &SonnetSpec { chat: true, ..spec }).unwrap();
        assert!(raw[0].prompt.text().unwrap().starts_with(BASE_PROMPT));
    }

    #[test]
    fn impossible_lengths_are_errors() {
        let tok = Tokenizer::words();
        let e = generate(
            &tok,
            None,
            &SonnetSpec {
                input_len: 5,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("`input_len`"), "{e}");
        let e = generate(
            &tok,
            None,
            &SonnetSpec {
                input_len: 60,
                prefix_len: 500,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.contains("shorter than its prefix"), "{e}");
    }
}
