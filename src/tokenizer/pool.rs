//! The word pool: token ids whose text is a space and a lowercase word (" moon")
//! and that encode back to exactly themselves. A pre-tokenizer splits text at such
//! spaces, so any concatenation of pool tokens encodes to exactly those tokens: a
//! prompt of N pool tokens has N tokens without re-encoding. This is what makes
//! building millions of prompt tokens cheap; [`WordPool::verify`] checks a tokenizer
//! really behaves so before a dataset relies on it.

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
/// letters after at most one space marker (up to 3 bytes, as `Ġ` and `▁` are).
fn may_be_word(raw: &str) -> bool {
    let letters = raw
        .bytes()
        .rev()
        .take_while(|b| b.is_ascii_lowercase())
        .count();
    (2..=12).contains(&letters) && raw.len() - letters <= 3
}

/// The ids in `range` whose text is a " word" that encodes back to that one id.
fn words_in(tok: &tokenizers::Tokenizer, range: std::ops::Range<u32>) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    for id in range {
        // A cheap look at the raw token first ("Ġmoon", "▁moon", " moon", "moon"):
        // decoding all 150,000 ids costs more than the rest of the check.
        if !tok.id_to_token(id).is_some_and(|raw| may_be_word(&raw)) {
            continue;
        }
        let Ok(text) = tok.decode(&[id], false) else {
            continue;
        };
        if !is_word(&text) {
            continue;
        }
        let Ok(enc) = tok.encode_fast(text.as_str(), false) else {
            continue;
        };
        if enc.get_ids() == [id] {
            out.push((id, text));
        }
    }
    out
}

impl WordPool {
    /// The pool of a Hugging Face tokenizer (vocabulary scan, each candidate verified).
    pub fn from_hf(tok: &tokenizers::Tokenizer) -> Result<WordPool, String> {
        let n = tok.get_vocab_size(false) as u32;
        // Checked on every core (a few hundred ms on one), each part in id order.
        let parts = std::thread::available_parallelism()
            .map_or(1, |p| p.get())
            .clamp(1, 8) as u32;
        let span = n.div_ceil(parts);
        let found: Vec<Vec<(u32, String)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..parts)
                .map(|k| s.spawn(move || words_in(tok, k * span..((k + 1) * span).min(n))))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
                .collect()
        });
        let (ids, texts): (Vec<u32>, Vec<Box<str>>) = found
            .into_iter()
            .flatten()
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

    #[test]
    fn words_pool_verifies() {
        let p = WordPool::from_words();
        p.verify(super::super::words::encode).unwrap();
    }
}
