//! A fast reader for BPE `tokenizer.json` files (Qwen, Llama 3, GPT-style), the
//! kind most served models have: the same tokenizer `tokenizers`' own reader
//! builds, from the same parts, in about half the time and without its 70 MB of
//! intermediate JSON. [`bpe_tokenizer`] gives `None` for any other model or anything
//! unexpected, and the caller then uses the crate's reader and its error messages.

use serde_json::value::RawValue;

use super::pool;
use tokenizers::models::bpe::BPE;
use tokenizers::{
    AddedToken, DecoderWrapper, ModelWrapper, NormalizerWrapper, PaddingParams,
    PostProcessorWrapper, PreTokenizerWrapper, TokenizerBuilder, TruncationParams,
};

/// The top level of a `tokenizer.json`; the model's vocabulary and merges are left
/// as raw JSON, read afterwards on two threads.
#[derive(serde::Deserialize)]
struct Parts<'a> {
    version: Option<String>,
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    normalizer: Option<NormalizerWrapper>,
    pre_tokenizer: Option<PreTokenizerWrapper>,
    post_processor: Option<PostProcessorWrapper>,
    decoder: Option<DecoderWrapper>,
    truncation: Option<TruncationParams>,
    padding: Option<PaddingParams>,
    #[serde(borrow)]
    model: Model<'a>,
}

/// A BPE model object with the options `tokenizers`' BPE reader takes (others are
/// ignored, as there).
#[derive(serde::Deserialize)]
struct Model<'a> {
    #[serde(rename = "type")]
    kind: Option<String>,
    dropout: Option<f32>,
    unk_token: Option<String>,
    continuing_subword_prefix: Option<String>,
    end_of_word_suffix: Option<String>,
    fuse_unk: Option<bool>,
    byte_fallback: Option<bool>,
    ignore_merges: Option<bool>,
    #[serde(borrow)]
    vocab: &'a RawValue,
    #[serde(borrow)]
    merges: &'a RawValue,
}

/// One merge, as a `["a", "b"]` pair or a legacy `"a b"` string. The crate's reader
/// buffers the whole list as generic values to find out which form it has; this
/// reads each entry as what it is.
struct Merge(String, String);

impl<'de> serde::Deserialize<'de> for Merge {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Merge, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Merge;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(r#"a merge, ["a", "b"] or "a b""#)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Merge, E> {
                let mut parts = s.split(' ');
                match (parts.next(), parts.next(), parts.next()) {
                    (Some(a), Some(b), None) => Ok(Merge(a.to_owned(), b.to_owned())),
                    _ => Err(E::custom("a legacy merge is two tokens and one space")),
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Merge, A::Error> {
                use serde::de::Error;
                let a: String = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(0, &self))?;
                let b: String = seq
                    .next_element()?
                    .ok_or_else(|| A::Error::invalid_length(1, &self))?;
                if seq.next_element::<serde::de::IgnoredAny>()?.is_some() {
                    return Err(A::Error::invalid_length(3, &self));
                }
                Ok(Merge(a, b))
            }
        }
        d.deserialize_any(V)
    }
}

/// A BPE `tokenizer.json` built part by part, as `tokenizers`' own reader does (the
/// same components, then the added tokens through `add_tokens`), except that the
/// model goes straight into a `BPE`: the crate's reader first buffers the whole model
/// as generic JSON, twice, which for Qwen3's 151,643-entry vocabulary and merges took
/// 70 MB on top of the 90 MB the tokenizer keeps. While it is built, another thread
/// finds the word pool's candidates in the vocabulary ([`pool::scan_vocab_json`]),
/// if `scan`. `None` for any other model or anything unexpected.
pub(super) fn bpe_tokenizer(
    bytes: &[u8],
    scan: bool,
) -> Option<(tokenizers::Tokenizer, Option<pool::Candidates>)> {
    let p: Parts = serde_json::from_slice(bytes).ok()?;
    if p.version.as_deref().is_some_and(|v| v != "1.0") {
        return None;
    }
    // The decoder is cloned for the scan only when there is one to do.
    let decoder = scan.then(|| p.decoder.clone());
    let (bpe, mut candidates) = read_bpe(p.model, |vocab| {
        decoder.and_then(|d| pool::scan_vocab_json(vocab, d.as_ref()))
    })?;
    let mut t = TokenizerBuilder::new()
        .with_model(ModelWrapper::BPE(bpe))
        .with_normalizer(p.normalizer)
        .with_pre_tokenizer(p.pre_tokenizer)
        .with_post_processor(p.post_processor)
        .with_decoder(p.decoder)
        .with_truncation(p.truncation)
        .with_padding(p.padding)
        .build()
        .ok()?;
    t.add_tokens(p.added_tokens).ok()?;
    // An added token decodes to its own content, not the model's raw token.
    if let Some(c) = &mut candidates {
        let added = t.get_added_tokens_decoder();
        c.retain(|(id, _)| !added.contains_key(id));
    }
    Some((t.into(), candidates))
}

/// The `BPE` of a model object: vocabulary and merges read on two threads, then the
/// crate's builder with the model's options; `side` runs on a third thread all the
/// while, given the vocabulary's raw JSON.
fn read_bpe<T: Send>(m: Model, side: impl FnOnce(&str) -> T + Send) -> Option<(BPE, T)> {
    // `BPE`'s own reader refuses a model whose "type" is not "BPE"; one without a
    // "type" that has BPE's vocab and merges is what the crate's reader takes too.
    if m.kind.as_deref().is_some_and(|k| k != "BPE") {
        return None;
    }
    std::thread::scope(|s| {
        let side = s.spawn(|| side(m.vocab.get()));
        let merges = s.spawn(|| serde_json::from_str::<Vec<Merge>>(m.merges.get()).ok());
        let vocab = serde_json::from_str::<ahash::AHashMap<String, u32>>(m.vocab.get()).ok();
        let merges = merges.join().ok().flatten();
        let bpe = build(&m, vocab?, merges?);
        Some((bpe?, side.join().ok()?))
    })
}

/// The crate's builder with the model's options.
fn build(m: &Model, vocab: ahash::AHashMap<String, u32>, merges: Vec<Merge>) -> Option<BPE> {
    let merges = merges.into_iter().map(|Merge(a, b)| (a, b)).collect();
    let mut b = BPE::builder().vocab_and_merges(vocab, merges);
    if let Some(d) = m.dropout {
        b = b.dropout(d);
    }
    if let Some(u) = &m.unk_token {
        b = b.unk_token(u.clone());
    }
    if let Some(p) = &m.continuing_subword_prefix {
        b = b.continuing_subword_prefix(p.clone());
    }
    if let Some(s) = &m.end_of_word_suffix {
        b = b.end_of_word_suffix(s.clone());
    }
    if let Some(f) = m.fuse_unk {
        b = b.fuse_unk(f);
    }
    if let Some(f) = m.byte_fallback {
        b = b.byte_fallback(f);
    }
    if let Some(i) = m.ignore_merges {
        b = b.ignore_merges(i);
    }
    b.build().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both forms of merges, and malformed ones refused.
    #[test]
    fn merges_in_either_form() {
        let ms: Vec<Merge> = serde_json::from_str(r#"[["a", "b"], "c d", ["Ġ", "t"]]"#).unwrap();
        let got: Vec<(String, String)> = ms.into_iter().map(|Merge(a, b)| (a, b)).collect();
        assert_eq!(
            got,
            [("a", "b"), ("c", "d"), ("Ġ", "t")].map(|(a, b)| (a.to_string(), b.to_string()))
        );
        for bad in [
            r#"["a b c"]"#,
            r#"["ab"]"#,
            r#"[["a"]]"#,
            r#"[["a", "b", "c"]]"#,
            "[1]",
        ] {
            assert!(serde_json::from_str::<Vec<Merge>>(bad).is_err(), "{bad}");
        }
    }

    /// A tiny BPE in legacy form builds, and merges as it says; an unknown model
    /// type or a merge of tokens not in the vocabulary is left to the crate's reader.
    #[test]
    fn a_small_bpe_builds_and_bad_ones_are_declined() {
        let json = r#"{"version": "1.0", "added_tokens": [], "model": {"type": "BPE",
            "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}"#;
        let (t, candidates) = bpe_tokenizer(json.as_bytes(), true).unwrap();
        assert_eq!(candidates, Some(vec![]));
        assert_eq!(t.encode("ab", false).unwrap().get_ids(), [2]);
        let other = json.replace(r#""type": "BPE""#, r#""type": "Unigram""#);
        assert!(bpe_tokenizer(other.as_bytes(), true).is_none());
        let unknown = json.replace(r#""a b""#, r#""a c""#);
        assert!(bpe_tokenizer(unknown.as_bytes(), true).is_none());
    }
}
