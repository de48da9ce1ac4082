//! The word pool: token ids whose text is a space and a lowercase word (" moon")
//! and that encode back to exactly themselves. A pre-tokenizer splits text at such
//! spaces, so any concatenation of pool tokens encodes to exactly those tokens: a
//! prompt of N pool tokens has N tokens without re-encoding. This is what makes
//! building millions of prompt tokens cheap; [`WordPool::verify`] checks a tokenizer
//! really behaves so before a dataset relies on it.
//!
//! Checking every candidate costs about 80 ms for Qwen3's vocabulary, so a verified
//! pool is kept in the user's cache (`$XDG_CACHE_HOME/moonbench/word-pools/` or
//! `~/.cache/moonbench/word-pools/`), named by a hash of the tokenizer file: a file
//! of ids ([`cached`], [`store`]).

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Token ids with their exact text.
#[derive(Debug, Clone)]
pub struct WordPool {
    /// Token ids.
    pub ids: Vec<u32>,
    /// Their text (each " word").
    pub texts: Vec<Box<str>>,
}

fn is_word(s: &str) -> bool {
    let Some(w) = s.strip_prefix(' ') else {
        return false;
    };
    (2..=12).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase())
}

/// Whether a raw vocabulary entry can decode to a " word": 2–12 ASCII lowercase
/// letters after one space marker of 1 to 3 bytes (` `, `Ġ`, `▁`). A single token
/// with no marker decodes without a leading space.
fn may_be_word(raw: &str) -> bool {
    let letters = raw
        .bytes()
        .rev()
        .take_while(|b| b.is_ascii_lowercase())
        .count();
    (2..=12).contains(&letters) && (1..=3).contains(&(raw.len() - letters))
}

/// Candidate pool tokens: ids with their decoded text, a " word", in id order; not
/// yet checked to encode back to themselves.
pub type Candidates = Vec<(u32, String)>;

/// The candidates among ids `range`, by their raw tokens and decoded text.
fn scan(tok: &tokenizers::Tokenizer, range: std::ops::Range<u32>) -> Candidates {
    let mut out = Vec::new();
    for id in range {
        // A cheap look at the raw token first ("Ġmoon", "▁moon", " moon"):
        // decoding all 150,000 ids costs more than the rest of the check.
        if !tok.id_to_token(id).is_some_and(|raw| may_be_word(&raw)) {
            continue;
        }
        if let Ok(text) = tok.decode(&[id], false)
            && is_word(&text)
        {
            out.push((id, text));
        }
    }
    out
}

/// The candidates of a BPE model's vocabulary (its raw JSON object, token to id),
/// decoded as `tokenizers` decodes one id: its raw token through the decoder (or
/// as it is, without one); the caller leaves out added tokens, which decode to their
/// own content. Run while the tokenizer itself is being built; `None` if the JSON
/// is not such an object.
pub fn scan_vocab_json(
    vocab: &str,
    decoder: Option<&tokenizers::DecoderWrapper>,
) -> Option<Candidates> {
    use tokenizers::Decoder;
    /// The (id, raw) entries that may be words, kept while the map is read.
    struct Raw(Vec<(u32, String)>);
    impl<'de> serde::Deserialize<'de> for Raw {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Raw, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Raw;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a vocabulary: token to id")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut m: A,
                ) -> Result<Raw, A::Error> {
                    let mut out = Vec::new();
                    while let Some(raw) = m.next_key::<std::borrow::Cow<'de, str>>()? {
                        let id: u32 = m.next_value()?;
                        if may_be_word(&raw) {
                            out.push((id, raw.into_owned()));
                        }
                    }
                    Ok(Raw(out))
                }
            }
            d.deserialize_map(V)
        }
    }
    let Raw(mut raw) = serde_json::from_str(vocab).ok()?;
    raw.sort_unstable_by_key(|(id, _)| *id);
    let mut out = Vec::with_capacity(raw.len());
    for (id, token) in raw {
        let text = match decoder {
            Some(d) => match d.decode(vec![token]) {
                Ok(t) => t,
                Err(_) => continue,
            },
            None => token,
        };
        if is_word(&text) {
            out.push((id, text));
        }
    }
    Some(out)
}

/// How many candidates one encoding call checks together.
const BATCH: usize = 256;

/// The candidates that encode back to their one id. They are checked a batch at a
/// time: when a batch's concatenated text encodes to exactly its ids, each is
/// verified (the pre-tokenizer split them at their spaces); a batch that does not
/// is checked one candidate at a time.
fn verified(tok: &tokenizers::Tokenizer, candidates: &[(u32, String)]) -> Candidates {
    let encodes_to = |text: &str, ids: &[u32]| {
        tok.encode_fast(text, false)
            .is_ok_and(|e| e.get_ids() == ids)
    };
    let mut out = Vec::with_capacity(candidates.len());
    let mut text = String::new();
    for batch in candidates.chunks(BATCH) {
        text.clear();
        batch.iter().for_each(|(_, t)| text.push_str(t));
        let ids: Vec<u32> = batch.iter().map(|(id, _)| *id).collect();
        if encodes_to(&text, &ids) {
            out.extend_from_slice(batch);
        } else {
            out.extend(
                batch
                    .iter()
                    .filter(|(id, t)| encodes_to(t, &[*id]))
                    .cloned(),
            );
        }
    }
    out
}

/// Runs `f` over `parts` contiguous pieces of `items` on as many threads, and
/// concatenates the results in order.
fn par_pieces<T: Sync, R: Send>(
    items: &[T],
    parts: usize,
    f: impl Fn(&[T]) -> Vec<R> + Sync,
) -> Vec<R> {
    let size = items.len().div_ceil(parts.max(1)).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = items.chunks(size).map(|c| s.spawn(|| f(c))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

/// The cache file of a tokenizer file's pool, by the hash of its bytes.
fn cache_path(key: u128) -> Option<std::path::PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cache")))?;
    Some(
        base.join("moonbench/word-pools")
            .join(format!("{key:032x}")),
    )
}

/// Whether the tokenizer file hashed to `key` has a cached pool.
pub fn is_cached(key: u128) -> bool {
    cache_path(key).is_some_and(|p| p.is_file())
}

/// The first line of a cache file.
const CACHE_HEADER: &str = "moonbench word pool 1";

/// The cached pool of the tokenizer file hashed to `key`, if there is one whose
/// every id still decodes to a " word" (each text is that decoding). `None` on
/// any doubt; the caller then builds the pool and [`WordPool::verify`]s either.
pub fn cached(tok: &tokenizers::Tokenizer, key: u128) -> Option<WordPool> {
    read_cache(&cache_path(key)?, tok)
}

/// The pool in cache file `path` (see [`cached`]).
fn read_cache(path: &std::path::Path, tok: &tokenizers::Tokenizer) -> Option<WordPool> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next() != Some(CACHE_HEADER) {
        return None;
    }
    let (mut ids, mut texts) = (Vec::new(), Vec::new());
    for line in lines {
        let id: u32 = line.parse().ok()?;
        let t = tok.decode(&[id], false).ok()?;
        if !is_word(&t) {
            return None;
        }
        ids.push(id);
        texts.push(t.into_boxed_str());
    }
    (ids.len() >= 256).then_some(WordPool { ids, texts })
}

/// Keeps `pool` as the tokenizer file `key`'s (written whole, then renamed into
/// place; a cache that cannot be written is only not kept).
pub fn store(pool: &WordPool, key: u128) {
    if let Some(path) = cache_path(key) {
        write_cache(&path, pool);
    }
}

/// Writes cache file `path` (see [`store`]).
fn write_cache(path: &std::path::Path, pool: &WordPool) {
    let mut text = String::with_capacity(pool.len() * 7 + 32);
    text.push_str(CACHE_HEADER);
    for id in &pool.ids {
        text.push('\n');
        text.push_str(&id.to_string());
    }
    text.push('\n');
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = path
        .parent()
        .is_some_and(|d| std::fs::create_dir_all(d).is_ok())
        && std::fs::write(&tmp, text).is_ok()
        && std::fs::rename(&tmp, path).is_ok();
    if !written {
        let _ = std::fs::remove_file(&tmp);
    }
}

impl WordPool {
    /// The pool of a Hugging Face tokenizer: every candidate (from `candidates`, if
    /// the loader already found them, else from a scan of the vocabulary) verified.
    /// Both steps run on every core (about 150 ms on one for Qwen3's vocabulary).
    pub fn from_hf(
        tok: &tokenizers::Tokenizer,
        candidates: Option<Candidates>,
    ) -> Result<WordPool, String> {
        let parts = std::thread::available_parallelism().map_or(1, |p| p.get().clamp(1, 8));
        let candidates = candidates.unwrap_or_else(|| {
            // Whole words crowd the low ids (the common ones): blocks of ids, dealt
            // out in turn, keep the threads evenly loaded.
            let n = tok.get_vocab_size(false) as u32;
            let blocks: Vec<u32> = (0..n).step_by(2048).collect();
            let dealt: Vec<u32> = (0..parts)
                .flat_map(|k| blocks.iter().copied().skip(k).step_by(parts))
                .collect();
            let mut found = par_pieces(&dealt, parts, |bs| {
                bs.iter()
                    .flat_map(|&b| scan(tok, b..(b + 2048).min(n)))
                    .collect()
            });
            found.sort_unstable_by_key(|(id, _)| *id);
            found
        });
        let (ids, texts): (Vec<u32>, Vec<Box<str>>) =
            par_pieces(&candidates, parts, |c| verified(tok, c))
                .into_iter()
                .map(|(id, t)| (id, t.into_boxed_str()))
                .unzip();
        if ids.len() < 256 {
            return Err(format!("only {} whole-word tokens found", ids.len()));
        }
        Ok(WordPool { ids, texts })
    }

    /// The pool of the word-count tokenizer: every word of its vocabulary whose id
    /// it encodes back to (compounds that spell another word are left out).
    pub fn from_words() -> WordPool {
        let v = super::words::vocab();
        let (mut ids, mut texts) = (Vec::new(), Vec::new());
        for (i, w) in v.iter().enumerate() {
            if super::words::encode(w) == [i as u32] {
                ids.push(i as u32);
                texts.push(format!(" {w}").into_boxed_str());
            }
        }
        // A fixed stride through the list, so neighbouring pool entries (which random
        // prompts use in sequence) are unrelated words rather than `casehouse casestory`.
        let n = ids.len();
        let stride = (7919..).find(|s| gcd(*s, n) == 1).unwrap_or(1);
        let order: Vec<usize> = (0..n).map(|k| k * stride % n).collect();
        WordPool {
            ids: order.iter().map(|&i| ids[i]).collect(),
            texts: order.iter().map(|&i| texts[i].clone()).collect(),
        }
    }

    /// Number of tokens in the pool.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Appends the text of pool indices `idx` to `out`.
    pub fn push_text(&self, idx: impl IntoIterator<Item = u32>, out: &mut String) {
        for i in idx {
            out.push_str(&self.texts[i as usize]);
        }
    }

    /// Checks that concatenations of pool tokens encode to exactly those tokens
    /// (a few random sequences of 300 tokens).
    pub fn verify(&self, encode: impl Fn(&str) -> Vec<u32>) -> Result<(), String> {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..4 {
            let idx: Vec<u32> = (0..300)
                .map(|_| rng.random_range(0..self.len() as u32))
                .collect();
            let mut text = String::new();
            self.push_text(idx.iter().copied(), &mut text);
            let want: Vec<u32> = idx.iter().map(|&i| self.ids[i as usize]).collect();
            if encode(&text) != want {
                return Err(
                    "concatenated whole-word tokens do not encode back to themselves".into(),
                );
            }
        }
        Ok(())
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_filter() {
        assert!(is_word(" moon"));
        assert!(!is_word("moon"));
        assert!(!is_word(" Moon"));
        assert!(!is_word(" a"));
        assert!(!is_word(" moon!"));
    }

    /// A stored pool reads back the same; a cache file that is not one, or whose ids
    /// no longer decode to words (another tokenizer's), is not used.
    #[test]
    fn the_pool_cache_reads_back_only_what_fits() {
        let tok = crate::tokenizer::Tokenizer::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/qwen3/tokenizer.json.gz"
        ))
        .unwrap();
        let crate::tokenizer::Kind::Hf { inner, .. } = &tok.kind else {
            panic!("Qwen3 is a Hugging Face tokenizer")
        };
        let pool = tok.word_pool().unwrap();
        let dir = std::env::temp_dir().join(format!("moonbench-pool-cache-{}", std::process::id()));
        let path = dir.join("pools").join("k");
        write_cache(&path, &pool);
        let back = read_cache(&path, inner).expect("the pool just stored");
        assert_eq!((&back.ids, &back.texts), (&pool.ids, &pool.texts));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replacen(CACHE_HEADER, "moonbench word pool 0", 1),
        )
        .unwrap();
        assert!(read_cache(&path, inner).is_none(), "another format");
        // Id 151644 is <|im_start|>, not a word.
        std::fs::write(&path, format!("{text}151644\n")).unwrap();
        assert!(
            read_cache(&path, inner).is_none(),
            "an id that is not a word"
        );
        std::fs::write(&path, format!("{text}moon\n")).unwrap();
        assert!(read_cache(&path, inner).is_none(), "not an id");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn words_pool_verifies() {
        let p = WordPool::from_words();
        p.verify(super::super::words::encode).unwrap();
    }
}
