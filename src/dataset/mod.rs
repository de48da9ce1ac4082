//! Prompt sources: every dataset of vLLM's `benchmark_dataset.py` plus trace
//! replay. A dataset produces [`Request`]s; a [`RequestSet`] is a shared, immutable
//! list of them that Lua indexes like an array without copying it.
//!
//! Synthetic prompts (random, prefix repetition, BurstGPT, Mooncake) are built from
//! the tokenizer's verified word pool ([`crate::tokenizer::pool`]), so their
//! lengths are exact without re-encoding; text datasets (ShareGPT, sonnet, custom)
//! are counted with the tokenizer, in parallel.

pub mod audio;
pub mod burstgpt;
pub mod custom;
pub mod hf;
pub mod mooncake;
pub mod prefix_repetition;
pub mod random;
pub mod random_mm;
pub mod random_rerank;
pub mod sharegpt;
pub mod sonnet;

use std::path::Path;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::tokenizer::Tokenizer;

/// What is sent as the input of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Prompt {
    /// A text prompt (completions), or the single user message (chat).
    Text(String),
    /// A text prompt stored as pieces of shared texts (trace blocks, windows of
    /// the random dataset's token ring), joined when sent.
    Parts(Vec<Piece>),
    /// A full chat message list (`[{role, content}, ...]`), as JSON.
    Messages(Value),
    /// Token ids, for servers that accept them instead of text.
    TokenIds(Vec<u32>),
    /// Several texts in one request: a batch of embeddings inputs (vLLM's
    /// `--random-batch-size`), or a rerank query followed by its documents.
    Texts(Vec<String>),
    /// An audio clip (and its text): a transcription request, or a chat message
    /// with an `input_audio` part.
    Audio(audio::Audio),
}

impl Prompt {
    /// The prompt as one text (`None` for messages and token ids).
    pub fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Prompt::Text(t) => Some(t.as_str().into()),
            Prompt::Parts(p) => Some(join(p).into()),
            _ => None,
        }
    }
}

/// `text[start..end]` of a shared text: prompts made of the same blocks, or of
/// windows of one long text, hold them once.
#[derive(Debug, Clone, PartialEq)]
pub struct Piece {
    text: Arc<str>,
    start: usize,
    end: usize,
}

impl Piece {
    /// All of `text`.
    pub fn whole(text: Arc<str>) -> Piece {
        let end = text.len();
        Piece {
            text,
            start: 0,
            end,
        }
    }

    /// `text[range]`; the range must fall on character boundaries.
    pub fn slice(text: &Arc<str>, range: std::ops::Range<usize>) -> Piece {
        assert!(
            text.is_char_boundary(range.start) && text.is_char_boundary(range.end),
            "a piece must cut at character boundaries"
        );
        Piece {
            text: text.clone(),
            start: range.start,
            end: range.end,
        }
    }

    /// The piece's text.
    pub fn as_str(&self) -> &str {
        &self.text[self.start..self.end]
    }

    /// The whole shared text it is cut from (to count shared memory once).
    pub fn shared(&self) -> &Arc<str> {
        &self.text
    }
}

/// The pieces of a prompt joined into one text.
pub fn join(parts: &[Piece]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.end - p.start).sum());
    for p in parts {
        s.push_str(p.as_str());
    }
    s
}

/// One request to send: the prompt, how many tokens to ask for, and extra fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The input.
    pub prompt: Prompt,
    /// Prompt length in tokens, by the dataset's tokenizer.
    pub prompt_tokens: u32,
    /// Output tokens to ask for (`max_tokens`); `None` leaves it to the server.
    pub max_tokens: Option<u32>,
    /// Fields merged last into this request's JSON body (sampling parameters, ...).
    pub extra: Option<Map<String, Value>>,
    /// Send time in seconds from the start of a trace, for trace replay.
    pub timestamp: Option<f64>,
}

impl Request {
    /// A text request.
    pub fn text(prompt: impl Into<String>, prompt_tokens: u32, max_tokens: Option<u32>) -> Self {
        Request {
            prompt: Prompt::Text(prompt.into()),
            prompt_tokens,
            max_tokens,
            extra: None,
            timestamp: None,
        }
    }
}

/// Serde helper: `-1` (or any negative number) means "none" (vLLM's `-1`
/// convention for "use the dataset's own length").
pub fn minus_one_is_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    use serde::Deserialize as _;
    let v = Option::<i64>::deserialize(d)?;
    match v {
        None => Ok(None),
        Some(v) if v < 0 => Ok(None),
        Some(v) => u32::try_from(v).map(Some).map_err(serde::de::Error::custom),
    }
}

/// A shared list of requests.
pub type RequestSet = Arc<Vec<Request>>;

/// A local image file as a `data:image/...;base64,` URL, for chat `image_url` parts.
pub fn image_data_url(path: &Path) -> Result<String, String> {
    use base64::Engine;
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    let mime = match ext.as_str() {
        "png" => "png",
        "jpg" | "jpeg" => "jpeg",
        "webp" => "webp",
        "gif" => "gif",
        "bmp" => "bmp",
        _ => {
            return Err(format!(
                "{}: unknown image type '.{ext}'; use .png, .jpg, .jpeg, .webp, .gif or .bmp",
                path.display()
            ));
        }
    };
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read image {}: {e}", path.display()))?;
    Ok(format!(
        "data:image/{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// The image type of `bytes` by their magic number (`png`, `jpeg`, `gif`, `webp`,
/// `bmp`), or `None` when they are none of these.
pub fn image_mime(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG") {
        Some("png")
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        Some("jpeg")
    } else if bytes.starts_with(b"GIF8") {
        Some("gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("webp")
    } else if bytes.starts_with(b"BM") {
        Some("bmp")
    } else {
        None
    }
}

/// `%XX` escapes of a `file://` URL decoded (`chart%20b.png` is `chart b.png`).
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A JSONL line: its number (from 1) and its object.
pub type JsonlLine = (usize, Map<String, Value>);

/// The non-empty lines of a JSONL file (gzip'd when it ends in `.gz`) as objects
/// with their line numbers; a line that is not valid JSON, or not an object, is an
/// error naming `file:line` (with `example`, the shape a line should have).
pub fn jsonl_objects(path: &Path, example: &str) -> Result<Vec<JsonlLine>, String> {
    let text = read_text(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(Value::Object(o)) => out.push((i + 1, o)),
            Ok(_) => {
                return Err(format!(
                    "{}: each line must be a JSON object like {example}",
                    at(path, i + 1)
                ));
            }
            Err(e) => return Err(format!("{}: not valid JSON: {e}", at(path, i + 1))),
        }
    }
    Ok(out)
}

/// The lines a file dataset sends: shuffled with `seed` when asked (vLLM's
/// default), then the first `n` (all when `n` is `None` or 0).
pub fn shuffle_take<T>(v: &mut Vec<T>, shuffled: bool, seed: u64, n: Option<usize>) {
    if shuffled {
        shuffle(v, seed);
    }
    if let Some(n) = n.filter(|n| *n > 0) {
        v.truncate(n);
    }
}

/// Reads a text file (gzip'd when it ends in `.gz`); the error names the file.
pub fn read_text(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let bytes = if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .map_err(|e| format!("cannot decompress {}: {e}", path.display()))?;
        out
    } else {
        bytes
    };
    String::from_utf8(bytes).map_err(|e| format!("{} is not UTF-8 text: {e}", path.display()))
}

/// vLLM's oversampling: when fewer than `n` samples are valid, draw more from them
/// at random (seeded) until there are `n`. Returns how many were added.
pub fn oversample(reqs: &mut Vec<Request>, n: usize, seed: u64) -> usize {
    if reqs.is_empty() || reqs.len() >= n {
        return 0;
    }
    let have = reqs.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for _ in have..n {
        let r = reqs[rng.random_range(0..have)].clone();
        reqs.push(r);
    }
    n - have
}

/// Shuffles `v` with a seed.
pub fn shuffle<T>(v: &mut [T], seed: u64) {
    v.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
}

/// Maps `f` over `items` on all cores, keeping order.
pub fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(usize, &T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(items.len().max(1));
    if threads <= 1 || items.len() < 64 {
        return items.iter().enumerate().map(|(i, t)| f(i, t)).collect();
    }
    let chunk = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                let f = &f;
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(i, t)| f(c * chunk + i, t))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("dataset worker"))
            .collect()
    })
}

/// Renders every text prompt through the tokenizer's chat template as one user
/// message (and message lists as they are), recounting tokens: for sending
/// templated prompts to a completions endpoint (`--apply-chat-template`).
pub fn apply_chat_template(
    reqs: &mut [Request],
    tok: &Tokenizer,
    add_generation_prompt: bool,
    vars: &Map<String, Value>,
) -> Result<(), String> {
    let out: Vec<Result<(String, u32), String>> = par_map(reqs, |_, r| {
        let msgs = match &r.prompt {
            Prompt::Messages(m) => m.clone(),
            Prompt::TokenIds(_) => {
                return Err("token-id prompts cannot take a chat template".into());
            }
            p => serde_json::json!([{"role": "user", "content": p.text().unwrap_or_default()}]),
        };
        let text = tok.apply_chat_template(&msgs, add_generation_prompt, vars)?;
        let n = tok.count(&text) as u32;
        Ok((text, n))
    });
    for (r, o) in reqs.iter_mut().zip(out) {
        let (text, n) = o?;
        r.prompt = Prompt::Text(text);
        r.prompt_tokens = n;
    }
    Ok(())
}

/// How [`assign_models`] picks each request's model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Assignment {
    /// A seeded random choice per request (vLLM's default).
    #[default]
    Random,
    /// Request i takes model i mod n.
    RoundRobin,
}

/// Sends each request with one of `models` as its `model` (vLLM's
/// `--lora-modules` with `--lora-assignment`): the name goes into the request's
/// own body fields, so it overrides the target's model.
pub fn assign_models(
    reqs: &mut [Request],
    models: &[String],
    how: Assignment,
    seed: u64,
) -> Result<(), String> {
    if models.is_empty() || models.iter().any(|m| m.trim().is_empty()) {
        return Err("assign_models: give at least one model name, and no empty ones".into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for (i, r) in reqs.iter_mut().enumerate() {
        let m = match how {
            Assignment::RoundRobin => &models[i % models.len()],
            Assignment::Random => &models[rng.random_range(0..models.len())],
        };
        r.extra
            .get_or_insert_with(Map::new)
            .insert("model".into(), Value::String(m.clone()));
    }
    Ok(())
}

/// Joins every `size` consecutive text requests into one request of several
/// inputs (vLLM's `--random-batch-size`, for embeddings servers that take a list):
/// its prompt tokens are the sum, it asks for no output.
pub fn batch(reqs: &[Request], size: usize) -> Result<Vec<Request>, String> {
    if size == 0 {
        return Err("a batch size must be at least 1".into());
    }
    if size == 1 {
        return Ok(reqs.to_vec());
    }
    reqs.chunks(size)
        .map(|group| {
            let texts = group
                .iter()
                .map(|r| {
                    r.prompt.text().map(|t| t.into_owned()).ok_or_else(|| {
                        "only text prompts can be batched (chat messages, token ids and batches cannot)"
                            .to_string()
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Request {
                prompt: Prompt::Texts(texts),
                prompt_tokens: group.iter().map(|r| r.prompt_tokens).sum(),
                max_tokens: None,
                extra: group[0].extra.clone(),
                timestamp: group[0].timestamp,
            })
        })
        .collect()
}

/// Turns text prompts into token ids (`--prompt-token-ids` for text datasets),
/// encoding in parallel; the counts become the ids' lengths.
pub fn to_token_ids(reqs: &mut [Request], tok: &Tokenizer) -> Result<(), String> {
    let ids: Vec<Result<Option<Vec<u32>>, String>> = par_map(reqs, |_, r| match &r.prompt {
        Prompt::TokenIds(_) => Ok(None),
        Prompt::Messages(_) => Err(
            "chat message prompts cannot be sent as token ids; use --apply-chat-template first"
                .into(),
        ),
        p => Ok(Some(tok.encode(&p.text().unwrap_or_default()))),
    });
    for (r, v) in reqs.iter_mut().zip(ids) {
        if let Some(v) = v? {
            r.prompt_tokens = v.len() as u32;
            r.prompt = Prompt::TokenIds(v);
        }
    }
    Ok(())
}

/// Numbers lines for error messages: `file:line`.
pub fn at(path: &Path, line: usize) -> String {
    format!("{}:{line}", path.display())
}
