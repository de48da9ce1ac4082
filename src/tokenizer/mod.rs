//! Tokenizers: a Hugging Face `tokenizer.json` (a file — also gzip'd as
//! `tokenizer.json.gz` —, a model directory, or a model id from the local Hugging
//! Face cache or the Hub) with its chat template, the tokenizer inside a GGUF model
//! file ([`gguf`]), or the documented word-count fallback `words`, where one token
//! is one whitespace-separated word. `bpe.rs` reads BPE `tokenizer.json` files fast
//! (finding the word pool's candidates while it builds); `pool.rs` holds the word
//! pool random prompts are made of, and its cache.

mod bpe;
pub mod chat;
pub mod gguf;
pub mod hub;
pub mod pool;
pub mod words;

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use chat::ChatTemplate;
use pool::WordPool;

/// What a [`Tokenizer`] is underneath.
pub(crate) enum Kind {
    Hf {
        inner: Box<tokenizers::Tokenizer>,
        path: PathBuf,
        chat: Option<Box<ChatTemplate>>,
    },
    Words,
}

/// A tokenizer used to build prompts, apply chat templates and count tokens the
/// server did not report.
pub struct Tokenizer {
    pub(crate) kind: Kind,
    name: String,
    pool: OnceLock<Result<Arc<WordPool>, String>>,
    /// The word pool's candidates, when the loader found them on the way.
    candidates: std::sync::Mutex<Option<pool::Candidates>>,
    /// The hash of the tokenizer file, the word pool cache's key.
    file_hash: Option<u128>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokenizer({})", self.name)
    }
}

/// Candidate Hugging Face hub cache directories, in the order they are searched.
pub fn hf_cache_dirs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for var in ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"] {
        if let Ok(p) = std::env::var(var) {
            v.push(PathBuf::from(p));
        }
    }
    if let Ok(p) = std::env::var("HF_HOME") {
        v.push(PathBuf::from(p).join("hub"));
    }
    if let Ok(h) = std::env::var("HOME") {
        v.push(PathBuf::from(h).join(".cache/huggingface/hub"));
    }
    v
}

/// Whether `spec` reads as a Hub model id (`Org/Name`), not a path.
fn is_model_id(spec: &str) -> bool {
    spec.matches('/').count() == 1
        && !spec.starts_with('.')
        && !spec.starts_with('/')
        && !spec.ends_with(".json")
        && !spec.ends_with(".gz")
        && !spec.to_ascii_lowercase().ends_with(".gguf")
        && !Path::new(spec).exists()
}

/// Reads a `tokenizer.json` (or a gzip'd one, by its `.gz` name), with the word
/// pool's candidates when the fast BPE reader found them on the way, and the
/// hash of the file's JSON.
fn read_tokenizer_file(
    path: &Path,
) -> Result<(tokenizers::Tokenizer, Option<pool::Candidates>, u128), String> {
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
    let hash = twox_hash::XxHash3_128::oneshot(&bytes);
    // With the pool in the cache, its candidates are not looked for.
    let scan = !pool::is_cached(hash);
    if let Some((t, candidates)) = bpe::bpe_tokenizer(&bytes, scan) {
        return Ok((t, candidates, hash));
    }
    let t = tokenizers::Tokenizer::from_bytes(&bytes).map_err(|e| {
        format!(
            "{} is not a valid Hugging Face tokenizer.json: {e}",
            path.display()
        )
    })?;
    Ok((t, None, hash))
}

impl Tokenizer {
    /// The word-count fallback: one token per whitespace-separated word.
    pub fn words() -> Tokenizer {
        Tokenizer {
            kind: Kind::Words,
            name: "words".into(),
            pool: OnceLock::new(),
            candidates: Default::default(),
            file_hash: None,
        }
    }

    /// Loads a tokenizer: `words`, a `tokenizer.json` path, a GGUF model file, a
    /// directory holding a `tokenizer.json`, or a Hugging Face model id (`Org/Name`) from the local cache, else from the
    /// Hub ([`hub::fetch`]). The chat template
    /// is read from `chat_template.jinja` or `tokenizer_config.json` beside it. An
    /// error lists every place that was looked in and how to fix it.
    pub fn load(spec: &str) -> Result<Tokenizer, String> {
        Tokenizer::load_at(spec, None)
    }

    /// [`Tokenizer::load`] of a model id at `revision` (a branch, tag or commit,
    /// as `--revision`): the cached snapshot that revision names (`refs/<rev>`, or
    /// the commit itself), else downloaded at it. Paths ignore the revision.
    pub fn load_at(spec: &str, revision: Option<&str>) -> Result<Tokenizer, String> {
        if spec == "words" {
            return Ok(Tokenizer::words());
        }
        let mut looked = Vec::new();
        let p = Path::new(spec);
        let candidates: Vec<PathBuf> = if p.is_file() {
            vec![p.to_path_buf()]
        } else if p.is_dir() {
            vec![p.join("tokenizer.json"), p.join("tokenizer.json.gz")]
        } else {
            let mut c = vec![p.to_path_buf()];
            if is_model_id(spec) {
                let folder = format!("models--{}", spec.replace('/', "--"));
                for cache in hf_cache_dirs() {
                    let snaps = cache.join(&folder).join("snapshots");
                    let mut found = false;
                    if let Some(rev) = revision {
                        // The snapshot of that revision only: refs/<rev> holds its commit.
                        let commit =
                            std::fs::read_to_string(cache.join(&folder).join("refs").join(rev))
                                .map(|c| c.trim().to_string())
                                .unwrap_or_else(|_| rev.to_string());
                        let d = snaps.join(&commit);
                        if d.join("tokenizer.json").is_file() {
                            c.push(d.join("tokenizer.json"));
                        } else {
                            looked.push(format!("{}/tokenizer.json (revision {rev})", d.display()));
                        }
                        continue;
                    }
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
            if path.is_file() && gguf::is_gguf(&path) {
                let g = gguf::load(&path)?;
                let chat = match &g.chat_template {
                    Some(t) => Some(Box::new(ChatTemplate::new(t, g.bos, g.eos, path.clone())?)),
                    None => None,
                };
                return Ok(Tokenizer {
                    kind: Kind::Hf {
                        inner: Box::new(g.tokenizer),
                        path,
                        chat,
                    },
                    name: spec.to_string(),
                    pool: OnceLock::new(),
                    candidates: Default::default(),
                    file_hash: None,
                });
            }
            if path.is_file() {
                let (inner, candidates, file_hash) = read_tokenizer_file(&path)?;
                let chat = ChatTemplate::find_beside(&path)?.map(Box::new);
                return Ok(Tokenizer {
                    kind: Kind::Hf {
                        inner: Box::new(inner),
                        path,
                        chat,
                    },
                    name: spec.to_string(),
                    pool: OnceLock::new(),
                    candidates: std::sync::Mutex::new(candidates),
                    file_hash: Some(file_hash),
                });
            }
            looked.insert(0, path.display().to_string());
        }
        // A model id not in the cache: from the Hub, as vLLM would.
        if is_model_id(spec) {
            let cache = hf_cache_dirs()
                .into_iter()
                .next()
                .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
            match hub::fetch(spec, revision.unwrap_or("main"), cache.clone()) {
                Ok(path) => {
                    eprintln!("tokenizer of {spec} downloaded to {}", path.display());
                    return Tokenizer::load(&path.display().to_string()).map(|mut t| {
                        t.name = spec.to_string();
                        t
                    });
                }
                Err(e) => looked.push(format!(
                    "the Hub: {e} (HF_ENDPOINT={}, HF_HUB_OFFLINE to stay offline, HF_TOKEN for gated models; cache {})",
                    hub::endpoint(),
                    cache.display()
                )),
            }
        }
        Err(format!(
            "{}\n  {}\n{}",
            crate::i18n::trf("tokenizer '{}' not found; looked in:", &[&spec]),
            looked.join("\n  "),
            crate::i18n::tr(
                "Pass --tokenizer with a tokenizer.json file, a model directory or a GGUF model file, \
                 or --tokenizer words to count one token per word."
            )
        ))
    }

    /// The name used in results (`tokenizer_id`).
    pub fn name(&self) -> String {
        self.name.clone()
    }

    /// Whether this is the word-count fallback.
    pub fn is_words(&self) -> bool {
        matches!(self.kind, Kind::Words)
    }

    /// Token ids of `text` (without special tokens).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        match &self.kind {
            Kind::Hf { inner, .. } => inner
                .encode_fast(text, false)
                .map(|e| e.get_ids().to_vec())
                .unwrap_or_default(),
            Kind::Words => words::encode(text),
        }
    }

    /// Text of token ids (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> String {
        match &self.kind {
            Kind::Hf { inner, .. } => inner.decode(ids, true).unwrap_or_default(),
            Kind::Words => words::decode(ids),
        }
    }

    /// Number of tokens in `text` (without special tokens).
    pub fn count(&self, text: &str) -> usize {
        match &self.kind {
            Kind::Hf { .. } => self.encode(text).len(),
            Kind::Words => text.split_whitespace().count(),
        }
    }

    /// Vocabulary size (with added tokens).
    pub fn vocab_size(&self) -> u32 {
        match &self.kind {
            Kind::Hf { inner, .. } => inner.get_vocab_size(true) as u32,
            Kind::Words => words::vocab_size(),
        }
    }

    /// Ids of special tokens (never used in random prompts).
    pub fn special_ids(&self) -> Vec<u32> {
        match &self.kind {
            Kind::Hf { inner, .. } => inner
                .get_added_tokens_decoder()
                .iter()
                .filter(|(_, t)| t.special)
                .map(|(id, _)| *id)
                .collect(),
            Kind::Words => Vec::new(),
        }
    }

    /// Whether a chat template is available.
    pub fn has_chat_template(&self) -> bool {
        matches!(&self.kind, Kind::Hf { chat: Some(_), .. })
    }

    /// Renders `messages` with the model's chat template.
    pub fn apply_chat_template(
        &self,
        messages: &serde_json::Value,
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, String> {
        match &self.kind {
            Kind::Hf { chat: Some(c), .. } => c.render(messages, add_generation_prompt, extra),
            Kind::Hf { path, .. } => Err(format!(
                "tokenizer '{}' has no chat template (no chat_template in tokenizer_config.json or \
                 chat_template.jinja beside {}); use a model directory that has one",
                self.name,
                path.display()
            )),
            Kind::Words => Err(
                "tokenizer 'words' has no chat template; pass --tokenizer with a model directory \
                 whose tokenizer_config.json has a chat_template"
                    .into(),
            ),
        }
    }

    /// A single user message rendered with the chat template (generation prompt on).
    pub fn template_user_prompt(&self, text: &str) -> Result<String, String> {
        self.apply_chat_template(
            &serde_json::json!([{"role": "user", "content": text}]),
            true,
            &Default::default(),
        )
    }

    /// The verified word pool (built once, on first use, or read from the cache of
    /// pools [`pool::cached`]). Fails for tokenizers whose whole-word tokens do not
    /// concatenate exactly (then datasets fall back to decode/re-encode).
    pub fn word_pool(&self) -> Result<Arc<WordPool>, String> {
        self.pool
            .get_or_init(|| {
                let cached = match &self.kind {
                    Kind::Hf { inner, .. } => self.file_hash.and_then(|k| pool::cached(inner, k)),
                    Kind::Words => None,
                };
                // A cached pool that fails the check is built afresh, and checked again.
                let pool = match cached.filter(|p| p.verify(|t| self.encode(t)).is_ok()) {
                    Some(p) => p,
                    None => {
                        let p = match &self.kind {
                            Kind::Hf { inner, .. } => {
                                let candidates =
                                    self.candidates.lock().ok().and_then(|mut c| c.take());
                                WordPool::from_hf(inner, candidates)?
                            }
                            Kind::Words => WordPool::from_words(),
                        };
                        p.verify(|t| self.encode(t))?;
                        if let Some(k) = self.file_hash {
                            pool::store(&p, k);
                        }
                        p
                    }
                };
                crate::clock::startup_mark("word pool built");
                Ok(Arc::new(pool))
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen() -> Tokenizer {
        Tokenizer::load(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/qwen3/tokenizer.json.gz"
        ))
        .unwrap()
    }

    #[test]
    fn words_fallback_counts_words() {
        let t = Tokenizer::load("words").unwrap();
        assert_eq!(t.count("  the quick\nbrown fox "), 4);
        let ids = t.encode("the of and");
        assert_eq!(t.decode(&ids), "the of and");
        assert!(!t.has_chat_template());
        assert!(
            t.template_user_prompt("hi")
                .unwrap_err()
                .contains("no chat template")
        );
    }

    /// The real Qwen3 tokenizer (vendored fixture): load it gzip'd, round-trip text.
    #[test]
    fn loads_gzipped_hf_tokenizer() {
        let t = qwen();
        let ids = t.encode("Hello, moonbench! 你好");
        assert!(!ids.is_empty());
        assert_eq!(t.decode(&ids), "Hello, moonbench! 你好");
        assert!(t.vocab_size() > 150_000);
        assert!(!t.special_ids().is_empty());
        let dir =
            Tokenizer::load(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/qwen3")).unwrap();
        assert_eq!(dir.count("one two three"), t.count("one two three"));
    }

    /// The BPE reader gives the tokenizer `tokenizers`' own reader gives: the same
    /// ids for ordinary text, special tokens and added tokens, the same vocabulary.
    #[test]
    fn bpe_reader_matches_the_crates_reader() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/qwen3/tokenizer.json.gz"
        );
        let gz = std::fs::read(path).unwrap();
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut bytes).unwrap();
        let (ours, candidates) =
            bpe::bpe_tokenizer(&bytes, true).expect("Qwen3's tokenizer is BPE");
        let theirs = tokenizers::Tokenizer::from_bytes(&bytes).unwrap();
        assert_eq!(ours.get_vocab_size(true), theirs.get_vocab_size(true));
        assert_eq!(ours.get_vocab(true).len(), theirs.get_vocab(true).len());
        for text in [
            "Hello, moonbench! 你好，世界",
            "<|im_start|>user\nwhat is 2+2?<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
            "  spaces\tand\ttabs\n\nnewlines 12345 😀 ÿ",
            "<|endoftext|><tool_call>{\"a\": 1}</tool_call>",
        ] {
            let a = ours.encode(text, true).unwrap();
            let b = theirs.encode(text, true).unwrap();
            assert_eq!(a.get_ids(), b.get_ids(), "{text:?}");
        }
        for (content, id) in theirs
            .get_added_tokens_decoder()
            .iter()
            .map(|(id, t)| (t.content.clone(), *id))
        {
            assert_eq!(ours.token_to_id(&content), Some(id), "{content}");
        }
        // The word pool from the candidates found while loading is the one a scan
        // of the finished tokenizer's vocabulary gives.
        let found = WordPool::from_hf(&ours, candidates).unwrap();
        let scanned = WordPool::from_hf(&ours, None).unwrap();
        assert_eq!(found.ids, scanned.ids);
        assert_eq!(found.texts, scanned.texts);
        assert!(found.len() > 20_000, "{}", found.len());
        // Not BPE, or not a tokenizer: the crate's reader (and its messages) decide.
        assert!(
            bpe::bpe_tokenizer(br#"{"model": {"type": "WordPiece", "vocab": {}}}"#, true).is_none()
        );
        assert!(bpe::bpe_tokenizer(b"not json", true).is_none());
    }

    /// Qwen3's real chat template, rendered as transformers renders it.
    #[test]
    fn qwen3_chat_template() {
        let t = qwen();
        assert!(t.has_chat_template());
        let msgs = serde_json::json!([
            {"role": "system", "content": "You are helpful."},
            {"role": "user", "content": "What is 2+2?"},
        ]);
        let s = t
            .apply_chat_template(&msgs, true, &Default::default())
            .unwrap();
        assert_eq!(
            s,
            "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
        );
        let mut extra = serde_json::Map::new();
        extra.insert("enable_thinking".into(), false.into());
        let s = t.apply_chat_template(&msgs, true, &extra).unwrap();
        assert!(
            s.ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n"),
            "{s:?}"
        );
        // A multi-turn history with an assistant turn that carried reasoning.
        let msgs = serde_json::json!([
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "<think>\nhm\n</think>\n\nhello"},
            {"role": "user", "content": "again"},
        ]);
        let s = t
            .apply_chat_template(&msgs, false, &Default::default())
            .unwrap();
        assert_eq!(
            s,
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nhello<|im_end|>\n<|im_start|>user\nagain<|im_end|>\n"
        );
    }

    #[test]
    fn qwen3_word_pool_concatenates_exactly() {
        let t = qwen();
        let pool = t.word_pool().unwrap();
        assert!(pool.len() > 5_000, "{}", pool.len());
        let mut text = String::new();
        pool.push_text(
            (0..1000u32).map(|i| (i * 7919) % pool.len() as u32),
            &mut text,
        );
        assert_eq!(t.count(&text), 1000);
    }

    #[test]
    fn missing_tokenizer_lists_places() {
        let e = Tokenizer::load("NoSuchOrg/NoSuchModel").unwrap_err();
        assert!(e.contains("looked in"), "{e}");
        assert!(e.contains("models--NoSuchOrg--NoSuchModel"), "{e}");
        assert!(e.contains("--tokenizer words"), "{e}");
    }
}
