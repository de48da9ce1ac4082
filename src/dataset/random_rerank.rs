//! vLLM's `random-rerank` dataset: one random query and `n` random documents, sent
//! in batches of `batch_size` documents per request (`{query, documents}` to a
//! reranker, or `[query, docs...]` to an embeddings model without `reranker`).
//!
//! As vLLM's `RandomDatasetForReranking`: with a reranker, the query is about half
//! of `input_len` (less one separator token) and each document the rest, so a
//! query–document pair is `input_len` tokens; a request's prompt tokens count the
//! query (and its separator) once per document. Without a reranker, `n − 1`
//! documents of `input_len` tokens go in batches of `batch_size − 1` beside the
//! query, which counts once per request. Lengths vary by ±`range_ratio`.

use super::random::{RandomSpec, generate as random_prompts};
use super::{Prompt, Request};
use crate::tokenizer::Tokenizer;

/// Parameters of the random-rerank dataset (vLLM's `--random-*` flags with
/// `--dataset-name random-rerank`).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RandomRerankSpec {
    /// Number of documents (vLLM's `--num-prompts`).
    pub n: usize,
    /// Tokens of a query–document pair (reranker), or of a document (embeddings).
    pub input_len: u32,
    /// Lengths vary uniformly within ±ratio (0 ≤ ratio < 1).
    pub range_ratio: f64,
    /// Documents per request (with `reranker = false`: texts per request, the query included).
    pub batch_size: usize,
    /// The model reranks natively (vLLM's default; `--no-reranker` turns it off):
    /// the query and each document share `input_len`, and one separator token.
    pub reranker: bool,
    /// Seed.
    pub seed: u64,
}

impl Default for RandomRerankSpec {
    fn default() -> Self {
        RandomRerankSpec {
            n: 1000,
            input_len: 1024,
            range_ratio: 0.0,
            batch_size: 1,
            reranker: true,
            seed: 0,
        }
    }
}

/// Builds the requests: each one the query followed by its batch of documents.
pub fn generate(tok: &Tokenizer, spec: &RandomRerankSpec) -> Result<Vec<Request>, String> {
    let sep = u32::from(spec.reranker);
    let (mut n, mut batch) = (spec.n, spec.batch_size);
    if batch == 0 || n == 0 {
        return Err("`n` and `batch_size` must be at least 1".into());
    }
    if !spec.reranker {
        if n < 2 || batch < 2 {
            return Err(
                "for a model that is not a reranker (`reranker` false), `n` and `batch_size` must be at least 2 \
                 (the query is one of each request's texts)"
                    .into(),
            );
        }
        n -= 1;
        batch -= 1;
    }
    let query_len = if spec.reranker {
        (spec.input_len / 2).saturating_sub(sep)
    } else {
        spec.input_len
    };
    if query_len == 0 {
        return Err(format!(
            "`input_len` {} is too short for a query and a document",
            spec.input_len
        ));
    }
    let text = |n: usize, input_len: u32, seed: u64| {
        random_prompts(
            tok,
            &RandomSpec {
                n,
                input_len,
                output_len: 1,
                range_ratio: spec.range_ratio,
                seed,
                ..Default::default()
            },
        )
    };
    let query = text(1, query_len, spec.seed)?.remove(0);
    let doc_len = if spec.reranker {
        spec.input_len.saturating_sub(query.prompt_tokens + sep)
    } else {
        spec.input_len
    };
    if doc_len == 0 {
        return Err(format!(
            "`input_len` {} leaves no tokens for the documents after a {}-token query",
            spec.input_len, query.prompt_tokens
        ));
    }
    let docs = text(n, doc_len, spec.seed.wrapping_add(1))?;
    let q = query.prompt.text().unwrap_or_default().into_owned();
    Ok(docs
        .chunks(batch)
        .map(|group| {
            let query_tokens = if spec.reranker {
                (query.prompt_tokens + sep) * group.len() as u32
            } else {
                query.prompt_tokens
            };
            let mut texts = vec![q.clone()];
            texts.extend(
                group
                    .iter()
                    .map(|d| d.prompt.text().unwrap_or_default().into_owned()),
            );
            Request {
                prompt: Prompt::Texts(texts),
                prompt_tokens: query_tokens + group.iter().map(|d| d.prompt_tokens).sum::<u32>(),
                max_tokens: None,
                extra: None,
                timestamp: None,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_and_lengths_as_vllm() {
        let tok = Tokenizer::words();
        let spec = RandomRerankSpec {
            n: 5,
            input_len: 20,
            batch_size: 2,
            ..Default::default()
        };
        let reqs = generate(&tok, &spec).unwrap();
        assert_eq!(reqs.len(), 3);
        let Prompt::Texts(t) = &reqs[0].prompt else {
            panic!()
        };
        assert_eq!(t.len(), 3);
        // Query of 20/2 - 1 = 9 tokens, documents of 20 - 9 - 1 = 10.
        assert_eq!(tok.count(&t[0]), 9);
        assert_eq!(tok.count(&t[1]), 10);
        assert_eq!(reqs[0].prompt_tokens, (9 + 1) * 2 + 20);
        assert_eq!(reqs[2].prompt_tokens, 10 + 10);
        let emb = generate(
            &tok,
            &RandomRerankSpec {
                reranker: false,
                ..spec
            },
        )
        .unwrap();
        // 4 documents of 20 tokens in batches of 1, each beside the 20-token query.
        assert_eq!(emb.len(), 4);
        assert_eq!(emb[0].prompt_tokens, 40);
    }
}
