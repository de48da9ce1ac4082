//! Tokenizers: a Hugging Face `tokenizer.json` (file — also gzip'd as
//! `tokenizer.json.gz` —, model directory, or a model id found in the local Hugging
//! Face cache; nothing is downloaded), or the documented
//! word-count fallback `words`, where one token is one whitespace-separated word.

pub mod words;

use std::path::{Path, PathBuf};

/// A tokenizer used to build prompts and to count tokens the server did not report.
pub enum Tokenizer {
    /// A Hugging Face tokenizer.
    Hf {
        /// The tokenizer.
        inner: Box<tokenizers::Tokenizer>,
        /// The name it was loaded by (for `tokenizer_id`).
        name: String,
        /// Where it was loaded from.
        path: PathBuf,
    },
    /// One token per whitespace-separated word.
    Words,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({})", self.name())
    }
}

/// Candidate Hugging Face hub cache directories, in the order they are searched.
pub fn hf_cache_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(p) = std::env::var("HF_HUB_CACHE") {
        v.push(PathBuf::from(p));
    }
    if let Ok(p) = std::env::var("HUGGINGFACE_HUB_CACHE") {
        v.push(PathBuf::from(p));
    }
    if let Ok(p) = std::env::var("HF_HOME") {
        v.push(PathBuf::from(p).join("hub"));
    }
    if let Ok(h) = std::env::var("HOME") {
        v.push(PathBuf::from(h).join(".cache/huggingface/hub"));
    }
    v
}

/// Reads a `tokenizer.json` (or a gzip'd one, by its `.gz` name).
fn read_tokenizer_file(path: &Path) -> Result<tokenizers::Tokenizer, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read tokenizer {}: {e}", path.display()))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| format!("cannot decompress tokenizer {}: {e}", path.display()))?;
        out
    } else {
        bytes
    };
    tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| {
        format!(
            "{} is not a valid Hugging Face tokenizer.json: {e}",
            path.display()
        )
    })
}

impl Tokenizer {
    /// Loads a tokenizer: `words`, a `tokenizer.json` path, a directory holding one,
    /// or a Hugging Face model id (`Org/Name`) from the local cache. An error lists
    /// every place that was looked in and how to fix it.
    pub fn load(spec: &str) -> Result<Tokenizer, String> {
        if spec == "words" {
            return Ok(Tokenizer::Words);
        }
        let mut looked = Vec::new();
        let p = Path::new(spec);
        let candidates: Vec<PathBuf> = if p.is_file() {
            vec![p.to_path_buf()]
        } else if p.is_dir() {
            vec![p.join("tokenizer.json"), p.join("tokenizer.json.gz")]
        } else {
            let mut c = vec![p.to_path_buf()];
            if spec.contains('/') && !spec.starts_with('.') && !spec.starts_with('/') {
                let folder = format!("models--{}", spec.replace('/', "--"));
                for cache in hf_cache_dirs() {
                    let snaps = cache.join(&folder).join("snapshots");
                    let mut found = false;
                    if let Ok(rd) = std::fs::read_dir(&snaps) {
                        let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                        dirs.sort();
                        for d in dirs {
                            c.push(d.join("tokenizer.json"));
                            found = true;
                        }
                    }
                    if !found {
                        looked.push(format!("{}/*/tokenizer.json", snaps.display()));
                    }
                }
            }
            c
        };
        for path in candidates {
            if path.is_file() {
                let inner = read_tokenizer_file(&path)?;
                return Ok(Tokenizer::Hf {
                    inner: Box::new(inner),
                    name: spec.to_string(),
                    path,
                });
            }
            looked.insert(0, path.display().to_string());
        }
        Err(format!(
            "tokenizer '{spec}' not found; looked in:\n  {}\nPass --tokenizer with a tokenizer.json file or a model directory \
             (nothing is downloaded), or --tokenizer words to count one token per word.",
            looked.join("\n  ")
        ))
    }

    /// The name used in results (`tokenizer_id`).
    pub fn name(&self) -> String {
        match self {
            Tokenizer::Hf { name, .. } => name.clone(),
            Tokenizer::Words => "words".to_string(),
        }
    }

    /// Whether this is the word-count fallback.
    pub fn is_words(&self) -> bool {
        matches!(self, Tokenizer::Words)
    }

    /// Token ids of `text` (without special tokens).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match self {
            Tokenizer::Hf { inner, .. } => inner
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default(),
            Tokenizer::Words => words::encode(text),
        }
    }

    /// Text of token ids (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> String {
        match self {
            Tokenizer::Hf { inner, .. } => inner.decode(ids, true).unwrap_or_default(),
            Tokenizer::Words => words::decode(ids),
        }
    }

    /// Number of tokens in `text` (without special tokens).
    pub fn count(&self, text: &str) -> usize {
        match self {
            Tokenizer::Hf { .. } => self.encode(text).len(),
            Tokenizer::Words => text.split_whitespace().count(),
        }
    }

    /// Vocabulary size (with added tokens).
    pub fn vocab_size(&self) -> u32 {
        match self {
            Tokenizer::Hf { inner, .. } => inner.get_vocab_size(true) as u32,
            Tokenizer::Words => words::WORDS.len() as u32,
        }
    }

    /// Ids of special tokens (never used in random prompts).
    pub fn special_ids(&self) -> Vec<u32> {
        match self {
            Tokenizer::Hf { inner, .. } => inner
                .get_added_tokens_decoder()
                .iter()
                .filter(|(_, t)| t.special)
                .map(|(id, _)| *id)
                .collect(),
            Tokenizer::Words => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_fallback_counts_words() {
        let t = Tokenizer::load("words").unwrap();
        assert_eq!(t.count("  the quick\nbrown fox "), 4);
        let ids = t.encode("the of and");
        assert_eq!(t.decode(&ids), "the of and");
    }

    /// The real Qwen3 tokenizer (vendored fixture): load it gzip'd, round-trip text.
    #[test]
    fn loads_gzipped_hf_tokenizer() {
        let t = Tokenizer::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/qwen3/tokenizer.json.gz"
        ))
        .unwrap();
        let ids = t.encode("Hello, moonbench! 你好");
        assert!(!ids.is_empty());
        assert_eq!(t.decode(&ids), "Hello, moonbench! 你好");
        assert!(t.vocab_size() > 150_000);
        assert!(!t.special_ids().is_empty());
        let dir =
            Tokenizer::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/qwen3")).unwrap();
        assert_eq!(dir.count("one two three"), t.count("one two three"));
    }

    #[test]
    fn missing_tokenizer_lists_places() {
        let e = Tokenizer::load("NoSuchOrg/NoSuchModel").unwrap_err();
        assert!(e.contains("looked in"), "{e}");
        assert!(e.contains("models--NoSuchOrg--NoSuchModel"), "{e}");
        assert!(e.contains("--tokenizer words"), "{e}");
    }
}
