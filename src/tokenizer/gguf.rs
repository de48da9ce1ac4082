//! Tokenizers read from a GGUF model file, as llama.cpp builds them: the
//! `tokenizer.ggml.*` metadata (tokens, merges or scores, token types, special
//! token ids, the pre-tokenizer name) and `tokenizer.chat_template` become a Hugging
//! Face [`tokenizers::Tokenizer`] plus a chat template.
//!
//! Holds the GGUF metadata reader ([`read_metadata`], which reads only the header,
//! never the tensors), the three vocabulary types llama.cpp users meet — byte-level
//! BPE (`gpt2`, with llama.cpp's pre-tokenizer regexes by `tokenizer.ggml.pre`),
//! SentencePiece BPE (`llama`, merges ranked by token score, byte fallback) and
//! WordPiece (`bert`, embedding models) — and [`load`]. The regexes and name lists follow llama.cpp's `src/llama-vocab.cpp`
//! (the version vendored by llama-cpp-python 0.3.36); the result is checked against
//! llama.cpp's own tokenizer test vectors and a running llama-server's `/tokenize`.

use std::collections::HashMap;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::bpe::{BPE, Vocab};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::{BertNormalizer, Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{AddedToken, DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior};

/// One metadata value of a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub enum Meta {
    /// Any unsigned integer type.
    U(u64),
    /// Any signed integer type.
    I(i64),
    /// `f32` or `f64`.
    F(f64),
    /// `bool`.
    Bool(bool),
    /// A UTF-8 string.
    Str(String),
    /// An array (of one element type).
    Arr(Vec<Meta>),
}

impl Meta {
    fn as_u64(&self) -> Option<u64> {
        match self {
            Meta::U(v) => Some(*v),
            Meta::I(v) if *v >= 0 => Some(*v as u64),
            _ => None,
        }
    }
}

/// Whether `path` starts with GGUF's magic bytes.
pub fn is_gguf(path: &Path) -> bool {
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && &magic == b"GGUF"
}

struct Reader<R> {
    r: R,
    len: u64,
}

impl<R: Read + Seek> Reader<R> {
    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], String> {
        let mut b = [0u8; N];
        self.r
            .read_exact(&mut b)
            .map_err(|e| format!("the file ends inside its metadata ({e})"))?;
        Ok(b)
    }
    fn u32(&mut self) -> Result<u32, String> {
        Ok(u32::from_le_bytes(self.bytes()?))
    }
    fn u64(&mut self) -> Result<u64, String> {
        Ok(u64::from_le_bytes(self.bytes()?))
    }
    /// A length that cannot exceed what is left of the file (a corrupt length must
    /// not make us allocate gigabytes).
    fn len_of(&mut self, unit: u64) -> Result<u64, String> {
        let n = self.u64()?;
        if n.saturating_mul(unit.max(1)) > self.len {
            return Err(format!(
                "a length of {n} is larger than the file ({} bytes)",
                self.len
            ));
        }
        Ok(n)
    }
    fn string(&mut self) -> Result<String, String> {
        let n = self.len_of(1)? as usize;
        let mut b = vec![0u8; n];
        self.r
            .read_exact(&mut b)
            .map_err(|e| format!("the file ends inside a string ({e})"))?;
        String::from_utf8(b).map_err(|_| "a metadata string is not UTF-8".to_string())
    }
    fn skip(&mut self, n: u64) -> Result<(), String> {
        self.r
            .seek(SeekFrom::Current(n as i64))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
    /// Size in bytes of a fixed-size value type, `None` for strings and arrays.
    fn fixed(t: u32) -> Result<Option<u64>, String> {
        Ok(Some(match t {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            8 | 9 => return Ok(None),
            other => return Err(format!("unknown metadata value type {other}")),
        }))
    }
    fn value(&mut self, t: u32) -> Result<Meta, String> {
        Ok(match t {
            0 => Meta::U(self.bytes::<1>()?[0] as u64),
            1 => Meta::I(self.bytes::<1>()?[0] as i8 as i64),
            2 => Meta::U(u16::from_le_bytes(self.bytes()?) as u64),
            3 => Meta::I(i16::from_le_bytes(self.bytes()?) as i64),
            4 => Meta::U(self.u32()? as u64),
            5 => Meta::I(i32::from_le_bytes(self.bytes()?) as i64),
            6 => Meta::F(f32::from_le_bytes(self.bytes()?) as f64),
            7 => Meta::Bool(self.bytes::<1>()?[0] != 0),
            8 => Meta::Str(self.string()?),
            9 => {
                let et = self.u32()?;
                let unit = Self::fixed(et)?.unwrap_or(8);
                let n = self.len_of(unit)?;
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(self.value(et)?);
                }
                Meta::Arr(v)
            }
            10 => Meta::U(self.u64()?),
            11 => Meta::I(i64::from_le_bytes(self.bytes()?)),
            12 => Meta::F(f64::from_le_bytes(self.bytes()?)),
            other => return Err(format!("unknown metadata value type {other}")),
        })
    }
    fn skip_value(&mut self, t: u32) -> Result<(), String> {
        match Self::fixed(t)? {
            Some(n) => self.skip(n),
            None if t == 8 => {
                let n = self.len_of(1)?;
                self.skip(n)
            }
            None => {
                let et = self.u32()?;
                let unit = Self::fixed(et)?;
                let n = self.len_of(unit.unwrap_or(8))?;
                match unit {
                    Some(u) => self.skip(n * u),
                    None => (0..n).try_for_each(|_| self.skip_value(et)),
                }
            }
        }
    }
}

/// Reads the metadata keys of a GGUF file for which `keep(key)` holds (other
/// values are skipped, tensors are never read).
pub fn read_metadata(
    path: &Path,
    keep: impl Fn(&str) -> bool,
) -> Result<HashMap<String, Meta>, String> {
    let what = |e: String| format!("{} is not a readable GGUF file: {e}", path.display());
    let f =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
    let mut r = Reader {
        r: BufReader::with_capacity(1 << 20, f),
        len,
    };
    if &r.bytes::<4>().map_err(what)? != b"GGUF" {
        return Err(what("it does not start with the bytes GGUF".into()));
    }
    let version = r.u32().map_err(what)?;
    if !(2..=3).contains(&version) {
        return Err(what(format!(
            "GGUF version {version} (versions 2 and 3 are read; convert older files with llama.cpp's tools)"
        )));
    }
    let _tensors = r.u64().map_err(what)?;
    let n = r.len_of(8).map_err(what)?;
    let mut out = HashMap::new();
    for _ in 0..n {
        let key = r.string().map_err(what)?;
        let t = r.u32().map_err(what)?;
        if keep(&key) {
            let v = r.value(t).map_err(|e| what(format!("{key}: {e}")))?;
            out.insert(key, v);
        } else {
            r.skip_value(t).map_err(|e| what(format!("{key}: {e}")))?;
        }
    }
    Ok(out)
}

/// A tokenizer built from a GGUF file, with what the chat template needs.
pub struct GgufTokenizer {
    /// The tokenizer (encode, decode, added tokens).
    pub tokenizer: tokenizers::Tokenizer,
    /// `tokenizer.chat_template`, when the file has one.
    pub chat_template: Option<String>,
    /// Text of the BOS token (empty when none).
    pub bos: String,
    /// Text of the EOS token (empty when none).
    pub eos: String,
}

// llama.cpp's pre-tokenizer regexes (src/llama-vocab.cpp, llm_tokenizer_bpe), by family.
// Characters outside ASCII are written as escapes, copied code point by code point:
// a normalizing editor would otherwise turn ranges such as U+1FD0-U+1FD3 empty.
const GPT2: &str = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)";
const CONTRACTIONS: &str = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const LLAMA3_TAIL: &str =
    r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN2_TAIL: &str =
    r"|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const QWEN35_TAIL: &str = r"|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const GPT4O: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const TEKKEN: &str = r"[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
const DEEPSEEK_LLM_LETTERS: &str = "\\s?[A-Za-z\u{b5}\u{c0}-\u{d6}\u{d8}-\u{f6}\u{f8}-\u{1ba}\u{1bc}-\u{1bf}\u{1c4}-\u{293}\u{295}-\u{2af}\u{370}-\u{373}\u{376}\u{377}\u{37b}-\u{37d}\u{37f}\u{386}\u{388}-\u{38a}\u{38c}\u{38e}-\u{3a1}\u{3a3}-\u{3f5}\u{3f7}-\u{481}\u{48a}-\u{52f}\u{531}-\u{556}\u{10a0}-\u{10c5}\u{13a0}-\u{13f5}\u{13f8}-\u{13fd}\u{1c90}-\u{1cba}\u{1cbd}-\u{1cbf}\u{1d00}-\u{1d2b}\u{1d6b}-\u{1d77}\u{1d79}-\u{1d9a}\u{1e00}-\u{1f15}\u{1f18}-\u{1f1d}\u{1f20}-\u{1f45}\u{1f48}-\u{1f4d}\u{1f50}-\u{1f57}\u{1f59}\u{1f5b}\u{1f5d}\u{1f5f}-\u{1f7d}\u{1f80}-\u{1fb4}\u{1fb6}-\u{1fbc}\u{1fbe}\u{1fc2}-\u{1fc4}\u{1fc6}-\u{1fcc}\u{1fd0}-\u{1fd3}\u{1fd6}-\u{1fdb}\u{1fe0}-\u{1fec}\u{1ff2}-\u{1ff4}\u{1ff6}-\u{1ffc}\u{2102}\u{2107}\u{210a}-\u{2113}\u{2115}\u{2119}-\u{211d}\u{2124}\u{2126}\u{2128}\u{212a}-\u{212d}\u{212f}-\u{2134}\u{2139}\u{213c}-\u{213f}\u{2145}-\u{2149}\u{214e}\u{2183}\u{2184}\u{2c00}-\u{2c7b}\u{2c7e}-\u{2ce4}\u{2ceb}-\u{2cee}\u{2cf2}\u{2cf3}\u{a640}-\u{a66d}\u{a680}-\u{a69b}\u{a722}-\u{a76f}\u{a771}-\u{a787}\u{a78b}-\u{a78e}\u{ab70}-\u{abbf}\u{fb00}-\u{fb06}\u{fb13}-\u{fb17}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}\u{10400}-\u{1044f}\u{104b0}-\u{104d3}\u{104d8}-\u{104fb}\u{10c80}-\u{10cb2}\u{10cc0}-\u{10cf2}\u{118a0}-\u{118df}\u{1e900}-\u{1e943}]+";
const DEEPSEEK3_MAIN: &str = r##"[!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"##;
const CJK_HANGUL: &str = "[\u{4e00}-\u{9fa5}\u{800}-\u{4e00}\u{ac00}-\u{d7ff}]+";
const PORO: &str = " ?[^(\\s|.,!?\u{2026}\u{3002}\u{ff0c}\u{3001}\u{964}\u{6d4}\u{60c})]+";

/// The regexes (applied one after another, each splitting the pieces of the last)
/// and whether whole-word vocabulary hits skip the merges, for a
/// `tokenizer.ggml.pre` name; `None` for a name we do not know.
fn pre_tokenizer(pre: &str) -> Option<(Vec<String>, bool)> {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let llama3 = format!("{CONTRACTIONS}{LLAMA3_TAIL}");
    let qwen2 = format!("{CONTRACTIONS}{QWEN2_TAIL}");
    Some(match pre {
        "" | "default" => (
            s(&[r"[\p{P}\$\+<=>\^~\|]+", GPT2, r"\p{N}+", "[0-9][0-9][0-9]"]),
            false,
        ),
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0"
        | "lfm2" | "jina-v5-nano" => (vec![llama3], true),
        "dbrx" | "smaug-bpe" => (vec![llama3], false),
        "chatglm-bpe" => (vec![llama3], false),
        "glm4" | "glm5" => (vec![llama3], true),
        "deepseek-llm" => (
            s(&[
                "[\r\n]",
                DEEPSEEK_LLM_LETTERS,
                "\\s?[!-/:-~\u{ff01}-\u{ff0f}\u{ff1a}-\u{ff5e}\u{2018}-\u{201f}\u{3000}-\u{3002}]+",
                r"\s+$",
                CJK_HANGUL,
                r"\p{N}+",
            ]),
            false,
        ),
        "deepseek-v3" | "hunyuan-dense" | "joyai-llm" | "hy_v4" => (
            s(&[
                r"\p{N}{1,3}",
                "[\u{4e00}-\u{9fa5}\u{3040}-\u{309f}\u{30a0}-\u{30ff}]+",
                DEEPSEEK3_MAIN,
            ]),
            false,
        ),
        "deepseek-coder" => (
            s(&["[\r\n]", r"\s?\p{L}+", r"\s?\p{P}+", CJK_HANGUL, r"\p{N}"]),
            false,
        ),
        "falcon" => (
            s(&[r"[\p{P}\$\+<=>\^~\|`]+", GPT2, "[0-9][0-9][0-9]"]),
            false,
        ),
        "starcoder" | "refact" | "command-r" | "smollm" | "codeshell" | "exaone" | "minerva-7b"
        | "mellum2" => (s(&[r"\p{N}", GPT2]), false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de"
        | "a.x-4.0" | "mellum" | "modern-bert" | "jina-v1-en" | "jina-v2-code" | "roberta-bpe"
        | "exaone4" | "mpt" | "olmo" | "jais" | "trillion" | "granite-docling" => {
            (vec![GPT2.to_string()], false)
        }
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" | "stablelm2" | "hunyuan"
        | "solar-open" | "grok-2" => (vec![qwen2], false),
        "qwen35" => (vec![format!("{CONTRACTIONS}{QWEN35_TAIL}")], false),
        "poro-chat" | "bloom" | "gpt3-finnish" => (s(&[PORO]), false),
        "viking" => (s(&[PORO, r"\p{N}"]), false),
        "tekken" => (s(&[TEKKEN]), true),
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => (s(&[GPT4O]), false),
        "seed-coder" => (
            vec![format!(
                r"{CONTRACTIONS}|[^\r\n\p{{L}}\p{{N}}]?\p{{L}}+|\p{{N}}{{1}}| ?[^\s\p{{L}}\p{{N}}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+"
            )],
            false,
        ),
        "bailingmoe" | "bailingmoe2" | "llada-moe" => (
            s(&[
                r"'(?:[sSdDmMtT]|[lL][lL]|[vV][eE]|[rR][eE])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+",
            ]),
            false,
        ),
        _ => return None,
    })
}

fn strings(meta: &HashMap<String, Meta>, key: &str) -> Result<Vec<String>, String> {
    match meta.get(key) {
        Some(Meta::Arr(v)) => v
            .iter()
            .map(|m| match m {
                Meta::Str(s) => Ok(s.clone()),
                _ => Err(format!("{key} holds a non-string")),
            })
            .collect(),
        Some(_) => Err(format!("{key} is not an array of strings")),
        None => Err(format!("it has no {key}")),
    }
}

fn numbers(meta: &HashMap<String, Meta>, key: &str) -> Option<Vec<f64>> {
    match meta.get(key) {
        Some(Meta::Arr(v)) => Some(
            v.iter()
                .map(|m| match m {
                    Meta::F(f) => *f,
                    Meta::U(u) => *u as f64,
                    Meta::I(i) => *i as f64,
                    _ => 0.0,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const CONTROL: i64 = 3;
const USER_DEFINED: i64 = 4;
const UNKNOWN: i64 = 2;
const BYTE: i64 = 6;

/// Builds the tokenizer stored in GGUF file `path`. Errors name the file and, for
/// vocabularies not read here, what to pass instead.
pub fn load(path: &Path) -> Result<GgufTokenizer, String> {
    let meta = read_metadata(path, |k| k.starts_with("tokenizer."))?;
    let fail = |e: String| format!("{}: {e}", path.display());
    let model = match meta.get("tokenizer.ggml.model") {
        Some(Meta::Str(m)) => m.clone(),
        _ => {
            return Err(fail(
                "this GGUF file holds no tokenizer (no tokenizer.ggml.model key); pass --tokenizer \
                 with the model's tokenizer.json, a model directory, or a Hub id"
                    .into(),
            ));
        }
    };
    let unsupported = fail(format!(
        "its tokenizer type '{model}' (tokenizer.ggml.model) is not read from GGUF files yet \
         (byte-level BPE 'gpt2', SentencePiece 'llama' and WordPiece 'bert' are); pass \
         --tokenizer with the model's tokenizer.json"
    ));
    if !matches!(model.as_str(), "gpt2" | "llama" | "bert") {
        return Err(unsupported);
    }
    let tokens = strings(&meta, "tokenizer.ggml.tokens").map_err(fail)?;
    let types: Vec<i64> = numbers(&meta, "tokenizer.ggml.token_type")
        .map(|v| v.into_iter().map(|x| x as i64).collect())
        .unwrap_or_else(|| vec![1; tokens.len()]);
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let flag = |k: &str| match meta.get(k) {
        Some(Meta::Bool(b)) => Some(*b),
        _ => None,
    };
    let mut tk = match model.as_str() {
        "gpt2" => {
            let pre = match meta.get("tokenizer.ggml.pre") {
                Some(Meta::Str(p)) => p.clone(),
                _ => String::new(),
            };
            let (regexes, ignore_merges) = pre_tokenizer(&pre).ok_or_else(|| {
                fail(format!(
                    "its pre-tokenizer '{pre}' (tokenizer.ggml.pre) is not one moonbench knows; \
                     pass --tokenizer with the model's tokenizer.json"
                ))
            })?;
            let merges = strings(&meta, "tokenizer.ggml.merges")
                .map_err(fail)?
                .into_iter()
                // Split at the first space after the first character, as llama.cpp does.
                .map(
                    |m| match m.char_indices().skip(1).find(|(_, c)| *c == ' ') {
                        Some((i, _)) => Ok((m[..i].to_string(), m[i + 1..].to_string())),
                        None => Err(fail(format!("merge '{m}' has no space"))),
                    },
                )
                .collect::<Result<Vec<_>, _>>()?;
            let bpe = BPE::builder()
                .vocab_and_merges(vocab, merges)
                .ignore_merges(ignore_merges)
                .build()
                .map_err(|e| fail(e.to_string()))?;
            let mut pres: Vec<PreTokenizerWrapper> = Vec::new();
            for re in regexes {
                let split = Split::new(
                    SplitPattern::Regex(re.clone()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .map_err(|e| fail(format!("pre-tokenizer regex {re}: {e}")))?;
                pres.push(split.into());
            }
            pres.push(ByteLevel::new(false, false, false).into());
            let mut tk = tokenizers::Tokenizer::new(bpe);
            tk.with_pre_tokenizer(Some(PreSequence::new(pres)));
            tk.with_decoder(Some(ByteLevelDecoder::default()));
            tk
        }
        "llama" => {
            let scores = numbers(&meta, "tokenizer.ggml.scores")
                .ok_or_else(|| fail("it has no tokenizer.ggml.scores".into()))?;
            let merges = spm_merges(&tokens, &scores, &types, &vocab);
            let unk = types
                .iter()
                .position(|t| *t == UNKNOWN)
                .map(|i| tokens[i].clone());
            let mut b = BPE::builder()
                .vocab_and_merges(vocab, merges)
                .byte_fallback(true)
                .fuse_unk(true);
            if let Some(u) = unk {
                b = b.unk_token(u);
            }
            let bpe = b.build().map_err(|e| fail(e.to_string()))?;
            let mut tk = tokenizers::Tokenizer::new(bpe);
            // llama.cpp: a space before the text (add_space_prefix, on unless the file
            // says otherwise), then every space becomes ▁.
            let mut norms = Vec::new();
            if flag("tokenizer.ggml.add_space_prefix").unwrap_or(true) {
                norms.push(Prepend::new("▁".into()).into());
            }
            norms.push(
                Replace::new(" ", "▁")
                    .map_err(|e| fail(e.to_string()))?
                    .into(),
            );
            tk.with_normalizer(Some(NormalizerSequence::new(norms)))
                .map_err(|e| fail(e.to_string()))?;
            let decoders: Vec<DecoderWrapper> = vec![
                tokenizers::decoders::DecoderWrapper::Replace(
                    Replace::new("▁", " ").map_err(|e| fail(e.to_string()))?,
                ),
                ByteFallback::new().into(),
                Fuse::new().into(),
                Strip::new(' ', 1, 0).into(),
            ];
            tk.with_decoder(Some(DecoderSequence::new(decoders)));
            tk
        }
        "bert" => {
            // llama.cpp stores WordPiece word starts with a leading ▁ and continuations
            // bare; Hugging Face's WordPiece wants word starts bare and `##` continuations.
            let wp_vocab: Vocab = tokens
                .iter()
                .zip(&types)
                .enumerate()
                .map(|(i, (t, ty))| {
                    let text = match t.strip_prefix('▁') {
                        Some(start) => start.to_string(),
                        None if *ty == CONTROL || t.is_empty() => t.clone(),
                        None => format!("##{t}"),
                    };
                    (text, i as u32)
                })
                .collect();
            let unk = text_of_id(&meta, &tokens, "tokenizer.ggml.unknown_token_id")
                .unwrap_or_else(|| "[UNK]".into());
            let wp = WordPiece::builder()
                .vocab(wp_vocab)
                .unk_token(unk)
                .continuing_subword_prefix("##".into())
                .build()
                .map_err(|e| fail(e.to_string()))?;
            let lowercase = flag("tokenizer.ggml.normalizer.lowercase").unwrap_or(true);
            let strip = flag("tokenizer.ggml.normalizer.strip_accents").unwrap_or(lowercase);
            let mut tk = tokenizers::Tokenizer::new(wp);
            tk.with_normalizer(Some(BertNormalizer::new(
                true,
                true,
                Some(strip),
                lowercase,
            )))
            .map_err(|e| fail(e.to_string()))?;
            tk.with_pre_tokenizer(Some(BertPreTokenizer));
            tk.with_decoder(Some(WordPieceDecoder::new("##".into(), true)));
            tk
        }
        _ => return Err(unsupported),
    };
    // Control and user-defined tokens are matched whole in the text, as llama.cpp's
    // tokenizer_st_partition does; control tokens are special (skipped when decoding).
    let added: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, t)| matches!(**t, CONTROL | USER_DEFINED | UNKNOWN))
        .map(|(s, t)| AddedToken::from(s.clone(), *t != USER_DEFINED).normalized(false))
        .collect();
    tk.add_special_tokens(added)
        .map_err(|e| fail(e.to_string()))?;
    let text_of = |key: &str| text_of_id(&meta, &tokens, key).unwrap_or_default();
    let chat_template = match meta.get("tokenizer.chat_template") {
        Some(Meta::Str(s)) => Some(s.clone()),
        _ => None,
    };
    Ok(GgufTokenizer {
        bos: text_of("tokenizer.ggml.bos_token_id"),
        eos: text_of("tokenizer.ggml.eos_token_id"),
        tokenizer: tk,
        chat_template,
    })
}

/// The text of the token whose id metadata key `key` holds.
fn text_of_id(meta: &HashMap<String, Meta>, tokens: &[String], key: &str) -> Option<String> {
    meta.get(key)
        .and_then(Meta::as_u64)
        .and_then(|i| tokens.get(i as usize).cloned())
}

/// Merges for a SentencePiece vocabulary: every split of a token into two tokens,
/// ranked by the merged token's score (highest first), so that BPE merges the pair
/// llama.cpp's SPM tokenizer would (the adjacent pair whose union scores highest).
fn spm_merges(
    tokens: &[String],
    scores: &[f64],
    types: &[i64],
    vocab: &Vocab,
) -> Vec<(String, String)> {
    let mut ranked: Vec<(f64, u32, u32, usize)> = Vec::new();
    for (id, tok) in tokens.iter().enumerate() {
        if matches!(types.get(id), Some(&BYTE) | Some(&CONTROL)) {
            continue;
        }
        for (k, _) in tok.char_indices().skip(1) {
            let (l, r) = tok.split_at(k);
            if let (Some(&li), Some(&ri)) = (vocab.get(l), vocab.get(r)) {
                ranked.push((scores.get(id).copied().unwrap_or(0.0), li, ri, id));
            }
        }
    }
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.3.cmp(&b.3)).then(a.1.cmp(&b.1)));
    ranked
        .into_iter()
        .map(|(_, l, r, _)| (tokens[l as usize].clone(), tokens[r as usize].clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GGUF v3 header with the given string keys (no tensors).
    fn gguf(keys: &[(&str, &str)]) -> Vec<u8> {
        let mut b = b"GGUF".to_vec();
        b.extend(3u32.to_le_bytes());
        b.extend(0u64.to_le_bytes());
        b.extend((keys.len() as u64).to_le_bytes());
        for (k, v) in keys {
            b.extend((k.len() as u64).to_le_bytes());
            b.extend(k.as_bytes());
            b.extend(8u32.to_le_bytes());
            b.extend((v.len() as u64).to_le_bytes());
            b.extend(v.as_bytes());
        }
        b
    }

    fn write(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("mb-gguf-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_only_the_keys_asked_for() {
        let p = write(
            "keys.gguf",
            &gguf(&[
                ("general.architecture", "llama"),
                ("tokenizer.ggml.pre", "smollm"),
            ]),
        );
        assert!(is_gguf(&p));
        let m = read_metadata(&p, |k| k.starts_with("tokenizer.")).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(m["tokenizer.ggml.pre"], Meta::Str("smollm".into()));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let p = write("none.gguf", &gguf(&[("general.architecture", "llama")]));
        let e = load(&p).err().unwrap();
        assert!(e.contains("holds no tokenizer"), "{e}");
        assert!(e.contains("--tokenizer"), "{e}");
        let mut cut = gguf(&[("tokenizer.ggml.model", "gpt2")]);
        cut.truncate(cut.len() - 2);
        let e = load(&write("cut.gguf", &cut)).err().unwrap();
        assert!(e.contains("not a readable GGUF file"), "{e}");
        // A length larger than the file is refused before anything is allocated.
        let mut huge = gguf(&[]);
        huge[16..24].copy_from_slice(&1u64.to_le_bytes());
        huge.extend(u64::MAX.to_le_bytes());
        let e = load(&write("huge.gguf", &huge)).err().unwrap();
        assert!(e.contains("larger than the file"), "{e}");
        let e = load(&write("t5.gguf", &gguf(&[("tokenizer.ggml.model", "t5")])))
            .err()
            .unwrap();
        assert!(
            e.contains("'t5'") && e.contains("not read from GGUF files yet"),
            "{e}"
        );
        assert!(!is_gguf(&write("json.gguf", b"{}")));
    }

    #[test]
    fn every_pre_tokenizer_regex_compiles() {
        for pre in [
            "default",
            "llama-bpe",
            "dbrx",
            "glm4",
            "deepseek-llm",
            "deepseek-v3",
            "deepseek-coder",
            "falcon",
            "smollm",
            "gpt-2",
            "qwen2",
            "qwen35",
            "poro-chat",
            "viking",
            "tekken",
            "gpt-4o",
            "seed-coder",
            "bailingmoe",
        ] {
            let (res, _) = pre_tokenizer(pre).unwrap();
            for re in res {
                Split::new(
                    SplitPattern::Regex(re.clone()),
                    SplitDelimiterBehavior::Isolated,
                    false,
                )
                .unwrap_or_else(|e| panic!("{pre}: {re}: {e}"));
            }
        }
        assert!(pre_tokenizer("no-such-pre").is_none());
    }
}
