//! vLLM's `hf` dataset without Python: a Hugging Face dataset read from Parquet,
//! JSON Lines or JSON files — one file, a local folder (a `save`d or cloned
//! dataset repository), the local Hub cache, or the Hub itself (through
//! [`crate::tokenizer::hub`], so `HF_ENDPOINT`, `HF_TOKEN` and `HF_HUB_OFFLINE`
//! apply) — with the prompt logic of every dataset vLLM knows by id ([`KNOWN`]).
//!
//! Rows are streamed: only the columns a dataset uses are decoded, files are read
//! one row group (Parquet) or one line (JSON Lines) at a time, and reading stops
//! once `n` requests are made. The order is shuffled the way `datasets` shuffles a
//! streamed dataset: the files in a seeded order, then a seeded 1,000-row buffer.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

use super::{Prompt, Request, oversample, read_text};
use crate::tokenizer::{Tokenizer, hf_cache_dirs, hub};

/// Parameters of the `hf` dataset (vLLM's `--hf-*` flags).
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct HfSpec {
    /// Number of requests.
    pub n: usize,
    /// The dataset's Hub id, which chooses its prompt logic (`--hf-name`); default:
    /// `path` when that is an id. Needed when `path` is a local copy.
    pub name: Option<String>,
    /// The subset (configuration) to read (`--hf-subset`): files under a folder of
    /// that name.
    pub subset: Option<String>,
    /// The split (`--hf-split`); default: the one vLLM uses for the dataset
    /// (mostly `train`).
    pub split: Option<String>,
    /// Branch, tag or commit of a dataset downloaded from the Hub.
    pub revision: Option<String>,
    /// Output tokens for every request (`--hf-output-len`); default: the
    /// dataset's own (its reference answer's length, or vLLM's fixed default).
    pub output_len: Option<u32>,
    /// Seed of the shuffle and of oversampling.
    pub seed: u64,
    /// Shuffle the rows (vLLM's default; `--disable-shuffle` turns it off).
    pub shuffle: bool,
    /// Fill up to `n` by repeating requests (vLLM's default; `--no-oversample`).
    pub oversample: bool,
    /// Requests for a chat endpoint (messages, images as `image_url` parts). With
    /// false (a completions endpoint), the datasets vLLM templates are rendered
    /// with the tokenizer's chat template, and datasets with images are refused.
    pub chat: bool,
    /// Do not render prompts with the chat template for a completions endpoint
    /// (`--skip-chat-template`).
    pub skip_chat_template: bool,
    /// Variables passed to the chat template (`--chat-template-kwargs`).
    pub chat_template_kwargs: Map<String, Value>,
    /// BlazeEdit: smallest normalized edit distance kept (`--blazedit-min-distance`).
    pub blazedit_min_distance: f64,
    /// BlazeEdit: largest normalized edit distance kept (`--blazedit-max-distance`).
    pub blazedit_max_distance: f64,
    /// Speech datasets: shortest clip kept, in seconds (`--asr-min-audio-len-sec`).
    pub asr_min_audio_len_sec: f64,
    /// Speech datasets: longest clip kept, in seconds (`--asr-max-audio-len-sec`;
    /// default none). Clips over 30 s are always dropped, as vLLM drops what
    /// Whisper cannot take.
    pub asr_max_audio_len_sec: Option<f64>,
}

impl Default for HfSpec {
    fn default() -> Self {
        HfSpec {
            n: 1000,
            name: None,
            subset: None,
            split: None,
            revision: None,
            output_len: None,
            seed: 0,
            shuffle: true,
            oversample: true,
            chat: true,
            skip_chat_template: false,
            chat_template_kwargs: Map::new(),
            blazedit_min_distance: 0.0,
            blazedit_max_distance: 1.0,
            asr_min_audio_len_sec: 0.0,
            asr_max_audio_len_sec: None,
        }
    }
}

/// The prompt logic of one family of datasets (one class of vLLM's `datasets.py`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ShareGPT-style `conversations` (`[{from, value}]`): first turn as prompt,
    /// second as reference answer, filtered as ShareGPT.
    Conversation,
    /// The same with an `image` column.
    MultiModalConversation,
    /// VisionArena-Chat: `conversation[0][0].content` and `images[0]`.
    VisionArena,
    /// vision-arena-bench: `turns[0][0].content` and `images[0]`.
    VisionArenaBench,
    /// MMVU: `question` and its `choices`, with the `video`.
    Mmvu,
    /// InstructCoder: `input` and `instruction`.
    InstructCoder,
    /// MT-Bench: the first of `turns`.
    MtBench,
    /// AIMO / NuminaMath: `problem`, with `solution` as reference answer.
    Aimo,
    /// Zed's zeta: `events`, `input` and `output` in the zeta prompt.
    NextEdit,
    /// Speech datasets (need an audio transcription backend).
    Asr,
    /// BlazeEdit: `code` and `change_request`, filtered by `norm_distance`.
    Blazedit,
    /// MLPerf inference data: `system_prompt` and `question` as chat messages,
    /// `output` as reference answer.
    MlPerf,
    /// MMStar: `question` up to "Options:", with the `image`.
    MmStar,
}

/// Every dataset id vLLM's `hf` dataset accepts, with its prompt logic.
pub const KNOWN: &[(&str, Kind)] = &[
    ("Aeala/ShareGPT_Vicuna_unfiltered", Kind::Conversation),
    (
        "lmms-lab/LLaVA-OneVision-Data",
        Kind::MultiModalConversation,
    ),
    ("lmarena-ai/VisionArena-Chat", Kind::VisionArena),
    ("lmarena-ai/vision-arena-bench-v0.1", Kind::VisionArenaBench),
    ("yale-nlp/MMVU", Kind::Mmvu),
    ("likaixin/InstructCoder", Kind::InstructCoder),
    ("philschmid/mt-bench", Kind::MtBench),
    ("AI-MO/aimo-validation-aime", Kind::Aimo),
    ("AI-MO/NuminaMath-1.5", Kind::Aimo),
    ("AI-MO/NuminaMath-CoT", Kind::Aimo),
    ("zed-industries/zeta", Kind::NextEdit),
    ("openslr/librispeech_asr", Kind::Asr),
    ("facebook/voxpopuli", Kind::Asr),
    ("LIUM/tedlium", Kind::Asr),
    ("edinburghcstr/ami", Kind::Asr),
    ("speechcolab/gigaspeech", Kind::Asr),
    ("kensho/spgispeech", Kind::Asr),
    ("vdaita/edit_5k_char", Kind::Blazedit),
    ("vdaita/edit_10k_char", Kind::Blazedit),
    ("mgoin/mlperf-inference-llama2-data", Kind::MlPerf),
    ("mgoin/mlperf-inference-llama3.1-data", Kind::MlPerf),
    ("Lin-Chen/MMStar", Kind::MmStar),
];

impl Kind {
    /// The split vLLM reads when none is given.
    fn default_split(self) -> &'static str {
        match self {
            Kind::Mmvu => "validation",
            Kind::MmStar => "val",
            _ => "train",
        }
    }

    /// The columns its prompts are made from (the others are never decoded).
    fn columns(self) -> &'static [&'static str] {
        match self {
            Kind::Conversation => &["conversations", "image"],
            Kind::MultiModalConversation => &["conversations", "image"],
            Kind::VisionArena => &["conversation", "images"],
            Kind::VisionArenaBench => &["turns", "images"],
            Kind::Mmvu => &["question", "choices", "video"],
            Kind::InstructCoder => &["input", "instruction"],
            Kind::MtBench => &["turns"],
            Kind::Aimo => &["problem", "solution"],
            Kind::NextEdit => &["events", "input", "output"],
            Kind::Asr => &["audio"],
            Kind::Blazedit => &["code", "change_request", "norm_distance"],
            Kind::MlPerf => &["system_prompt", "question", "output"],
            Kind::MmStar => &["question", "image"],
        }
    }

    /// The columns a row must have (the rest are optional).
    fn required(self) -> &'static [&'static str] {
        match self {
            Kind::Conversation | Kind::MultiModalConversation => &["conversations"],
            Kind::VisionArena => &["conversation", "images"],
            Kind::VisionArenaBench => &["turns", "images"],
            k => k.columns(),
        }
    }

    /// vLLM's fixed output length when `--hf-output-len` is not given (`None`:
    /// the reference answer's length).
    fn default_output_len(self) -> Option<u32> {
        match self {
            Kind::VisionArena | Kind::VisionArenaBench | Kind::Mmvu | Kind::MmStar => Some(128),
            Kind::Asr => Some(128),
            Kind::InstructCoder => Some(200),
            Kind::MtBench => Some(256),
            Kind::Blazedit => Some(4000),
            _ => None,
        }
    }

    /// Whether vLLM renders its prompt with the chat template (unless
    /// `--skip-chat-template`); MLPerf's messages always are.
    fn templated(self) -> bool {
        matches!(
            self,
            Kind::InstructCoder | Kind::MtBench | Kind::Blazedit | Kind::MlPerf
        )
    }
}

/// The prompt logic for dataset id `name`; an unknown id lists the known ones.
pub fn kind_of(name: &str) -> Result<Kind, String> {
    KNOWN
        .iter()
        .find(|(id, _)| *id == name)
        .map(|(_, k)| *k)
        .ok_or_else(|| {
            let ids: Vec<&str> = KNOWN.iter().map(|(id, _)| *id).collect();
            let near = crate::suggest::suggest(name, ids.iter().copied())
                .map(|s| format!(" (did you mean {s}?)"))
                .unwrap_or_default();
            format!(
                "dataset '{name}' has no prompt logic here{near}; the hf dataset knows: {}. \
                 For a local copy of one of them, give its id with --hf-name (Lua: name); \
                 for your own prompts use --dataset-name custom (a JSONL file)",
                ids.join(", ")
            )
        })
}

/// Whether `spec` reads as a Hub dataset id (`Org/Name`) rather than a local path.
fn is_hub_id(spec: &str) -> bool {
    spec.matches('/').count() == 1
        && !spec.starts_with('.')
        && !spec.starts_with('/')
        && !Path::new(spec).exists()
}

/// The data file kinds read here.
fn data_format(name: &str) -> Option<&'static str> {
    let n = name.to_ascii_lowercase();
    let n = n.strip_suffix(".gz").unwrap_or(&n);
    if n.ends_with(".parquet") {
        Some("parquet")
    } else if n.ends_with(".jsonl") {
        Some("jsonl")
    } else if n.ends_with(".json") {
        Some("json")
    } else {
        None
    }
}

/// Files that hold metadata, not rows.
fn is_metadata(rel: &str) -> bool {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    rel.split('/').any(|c| c.starts_with('.'))
        || file.starts_with("dataset_info")
        || file == "dataset_dict.json"
        || file == "state.json"
        || file == "dataset_infos.json"
}

/// Split names `datasets` recognises in file names when a repository does not
/// declare its splits.
const SPLIT_WORDS: &[&str] = &["train", "validation", "valid", "val", "dev", "test", "eval"];

/// Whether relative path `rel` belongs to split `split`: a folder of that name,
/// or a file named `split`, `split-…`, `split_…` or `split.…` (the Hub's layouts:
/// `data/train-00000-of-00001.parquet`, `train.jsonl`, `cfg/train/0000.parquet`).
fn in_split(rel: &str, split: &str) -> bool {
    let mut parts: Vec<&str> = rel.split('/').collect();
    let file = parts.pop().unwrap_or("");
    parts.contains(&split)
        || file
            .strip_prefix(split)
            .is_some_and(|rest| rest.starts_with(['-', '_', '.']))
}

/// Picks the data files of `subset`/`split` among a repository's relative paths.
/// When no file names any split, every data file is the `train` split, as
/// `datasets` decides.
pub fn choose_files(
    all: &[String],
    subset: Option<&str>,
    split: &str,
    place: &str,
) -> Result<Vec<String>, String> {
    let data: Vec<&String> = all
        .iter()
        .filter(|f| data_format(f).is_some() && !is_metadata(f))
        .collect();
    if data.is_empty() {
        return Err(format!(
            "{place} has no Parquet, JSON Lines or JSON data file (files: {})",
            listing(all)
        ));
    }
    let data: Vec<&String> = match subset {
        None => data,
        Some(s) => {
            let kept: Vec<&String> = data
                .iter()
                .copied()
                .filter(|f| f.split('/').rev().skip(1).any(|c| c == s))
                .collect();
            if kept.is_empty() {
                let subsets: BTreeSet<&str> = data
                    .iter()
                    .filter_map(|f| f.split_once('/').map(|(d, _)| d))
                    .collect();
                return Err(format!(
                    "{place} has no subset '{s}' (--hf-subset); folders there: {}",
                    if subsets.is_empty() {
                        "none (the dataset has no subsets: leave --hf-subset out)".to_string()
                    } else {
                        subsets.into_iter().collect::<Vec<_>>().join(", ")
                    }
                ));
            }
            kept
        }
    };
    let named = |f: &str| SPLIT_WORDS.iter().any(|w| in_split(f, w));
    let mut chosen: Vec<String> = data
        .iter()
        .filter(|f| in_split(f, split))
        .map(|f| f.to_string())
        .collect();
    if chosen.is_empty() && split == "train" && !data.iter().any(|f| named(f)) {
        chosen = data.iter().map(|f| f.to_string()).collect();
    }
    if chosen.is_empty() {
        let splits: BTreeSet<&str> = SPLIT_WORDS
            .iter()
            .copied()
            .filter(|w| data.iter().any(|f| in_split(f, w)))
            .collect();
        return Err(format!(
            "{place} has no split '{split}' (--hf-split); splits found: {} (data files: {})",
            if splits.is_empty() {
                "none named, so all files are 'train'".to_string()
            } else {
                splits.into_iter().collect::<Vec<_>>().join(", ")
            },
            listing(&data.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        ));
    }
    chosen.sort();
    Ok(chosen)
}

fn listing(files: &[String]) -> String {
    const SHOWN: usize = 12;
    let mut s = files
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        s.push_str(&format!(", … ({} in all)", files.len()));
    }
    if s.is_empty() { "none".into() } else { s }
}

/// Every file under `dir`, as paths relative to it with `/` separators.
fn walk(dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let rd = std::fs::read_dir(dir.join(&rel))
            .map_err(|e| format!("cannot read folder {}: {e}", dir.join(&rel).display()))?;
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            let r = rel.join(&name);
            // Follow symlinks: the Hub cache's snapshots are links to blobs.
            let meta = std::fs::metadata(e.path());
            if meta.as_ref().is_ok_and(|m| m.is_dir()) {
                stack.push(r);
            } else if meta.is_ok() {
                out.push(r.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Where the rows come from, resolved to local files.
struct Source {
    files: Vec<PathBuf>,
    /// For messages: the folder, cache snapshot or Hub URL.
    place: String,
}

/// Resolves `path` (a file, a folder, or a Hub id: cache first, then the Hub) to
/// the data files of the subset and split.
fn resolve(path: &str, spec: &HfSpec, split: &str) -> Result<Source, String> {
    let p = Path::new(path);
    if p.is_file() {
        if data_format(path).is_none() {
            return Err(format!(
                "{path}: not a Parquet (.parquet), JSON Lines (.jsonl) or JSON (.json) file"
            ));
        }
        return Ok(Source {
            files: vec![p.to_path_buf()],
            place: path.to_string(),
        });
    }
    if p.is_dir() {
        let files = choose_files(&walk(p)?, spec.subset.as_deref(), split, path)?;
        return Ok(Source {
            files: files.iter().map(|f| p.join(f)).collect(),
            place: path.to_string(),
        });
    }
    if !is_hub_id(path) {
        return Err(format!(
            "{path}: no such file or folder (and not a Hub dataset id like likaixin/InstructCoder)"
        ));
    }
    let revision = spec.revision.clone().unwrap_or_else(|| "main".into());
    let folder = format!("datasets--{}", path.replace('/', "--"));
    let mut searched = Vec::new();
    for cache in hf_cache_dirs() {
        let root = cache.join(&folder);
        searched.push(root.join("snapshots").display().to_string());
        let commit = std::fs::read_to_string(root.join("refs").join(&revision))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| revision.clone());
        let snap = root.join("snapshots").join(&commit);
        if snap.is_dir() {
            let place = snap.display().to_string();
            if let Ok(files) = choose_files(&walk(&snap)?, spec.subset.as_deref(), split, &place) {
                return Ok(Source {
                    files: files.iter().map(|f| snap.join(f)).collect(),
                    place,
                });
            }
        }
    }
    let cache = hf_cache_dirs()
        .into_iter()
        .next()
        .unwrap_or_else(|| PathBuf::from(".cache/huggingface/hub"));
    let subset = spec.subset.clone();
    let split_owned = split.to_string();
    let place = format!("{}/datasets/{path}", hub::endpoint());
    let place_owned = place.clone();
    match hub::fetch_dataset(path, &revision, cache.clone(), move |names| {
        choose_files(names, subset.as_deref(), &split_owned, &place_owned)
    }) {
        Ok(files) => {
            eprintln!(
                "dataset {path} ({} files) downloaded to {}",
                files.len(),
                cache.join(&folder).display()
            );
            Ok(Source { files, place })
        }
        Err(e) => Err(format!(
            "dataset '{path}' is not in the local cache (searched {}) and the Hub did not give it: {e} \
             (HF_ENDPOINT={}; HF_HUB_OFFLINE=1 stays offline; HF_TOKEN for gated datasets; \
             or pass --dataset-path with a local folder or file)",
            searched.join(", "),
            hub::endpoint()
        )),
    }
}

/// One row: its columns, and where it came from (for errors).
struct Row {
    cols: Map<String, Value>,
    at: String,
}

/// Streams the rows of `files` (only `columns`, where the format allows), in
/// order.
struct Rows {
    files: std::vec::IntoIter<PathBuf>,
    columns: &'static [&'static str],
    current: Option<Box<dyn Iterator<Item = Result<Row, String>>>>,
}

impl Iterator for Rows {
    type Item = Result<Row, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(it) = &mut self.current {
                if let Some(r) = it.next() {
                    return Some(r);
                }
                self.current = None;
            }
            let f = self.files.next()?;
            match open(&f, self.columns) {
                Ok(it) => self.current = Some(it),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

/// Opens one data file as a row iterator.
fn open(
    path: &Path,
    columns: &'static [&'static str],
) -> Result<Box<dyn Iterator<Item = Result<Row, String>>>, String> {
    let name = path.display().to_string();
    match data_format(&name) {
        Some("parquet") => parquet_rows(path, columns),
        Some("jsonl") => {
            let f = std::fs::File::open(path).map_err(|e| format!("cannot read {name}: {e}"))?;
            let r: Box<dyn BufRead> = if name.ends_with(".gz") {
                Box::new(std::io::BufReader::new(flate2::read::GzDecoder::new(f)))
            } else {
                Box::new(std::io::BufReader::new(f))
            };
            Ok(Box::new(r.lines().enumerate().filter_map(move |(i, l)| {
                let at = format!("{name}:{}", i + 1);
                match l {
                    Err(e) => Some(Err(format!("{at}: cannot read: {e}"))),
                    Ok(l) if l.trim().is_empty() => None,
                    Ok(l) => Some(json_row(&l, at)),
                }
            })))
        }
        Some("json") => {
            let text = read_text(path)?;
            let v: Value = match serde_json::from_str(&text) {
                Ok(v) => v,
                // `datasets` reads a .json file of one object per line too.
                Err(_) if text.trim_start().starts_with('{') => {
                    let rows: Vec<Result<Row, String>> = text
                        .lines()
                        .enumerate()
                        .filter(|(_, l)| !l.trim().is_empty())
                        .map(|(i, l)| json_row(l, format!("{name}:{}", i + 1)))
                        .collect();
                    return Ok(Box::new(rows.into_iter()));
                }
                Err(e) => return Err(format!("{name}: not valid JSON: {e}")),
            };
            let list = match v {
                Value::Array(a) => a,
                // A `{"data": [...]}` wrapper, as `datasets`' `field` option reads.
                Value::Object(mut o) if o.get("data").is_some_and(Value::is_array) => {
                    match o.remove("data") {
                        Some(Value::Array(a)) => a,
                        _ => unreachable!(),
                    }
                }
                _ => {
                    return Err(format!(
                        "{name}: a JSON data file holds a list of rows ([{{...}}, ...])"
                    ));
                }
            };
            Ok(Box::new(list.into_iter().enumerate().map(move |(i, v)| {
                let at = format!("{name}: row {}", i + 1);
                match v {
                    Value::Object(cols) => Ok(Row { cols, at }),
                    _ => Err(format!("{at}: each row must be a JSON object")),
                }
            })))
        }
        _ => Err(format!("{name}: not a Parquet, JSON Lines or JSON file")),
    }
}

fn json_row(line: &str, at: String) -> Result<Row, String> {
    match serde_json::from_str(line) {
        Ok(Value::Object(cols)) => Ok(Row { cols, at }),
        Ok(_) => Err(format!("{at}: each line must be a JSON object")),
        Err(e) => Err(format!("{at}: not valid JSON: {e}")),
    }
}

/// Rows of a Parquet file, decoding only the top-level `columns` it has, one row
/// group at a time.
fn parquet_rows(
    path: &Path,
    columns: &'static [&'static str],
) -> Result<Box<dyn Iterator<Item = Result<Row, String>>>, String> {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let name = path.display().to_string();
    let f = std::fs::File::open(path).map_err(|e| format!("cannot read {name}: {e}"))?;
    let reader = SerializedFileReader::new(f)
        .map_err(|e| format!("{name}: not a readable Parquet file: {e}"))?;
    let schema = reader.metadata().file_metadata().schema();
    let fields: Vec<_> = schema
        .get_fields()
        .iter()
        .filter(|t| columns.contains(&t.name()))
        .cloned()
        .collect();
    let all: Vec<String> = schema
        .get_fields()
        .iter()
        .map(|t| t.name().to_string())
        .collect();
    if fields.is_empty() {
        return Err(format!(
            "{name}: none of the columns {} this dataset reads; the file has: {}",
            columns.join(", "),
            all.join(", ")
        ));
    }
    let proj = parquet::schema::types::Type::group_type_builder(schema.name())
        .with_fields(fields)
        .build()
        .map_err(|e| format!("{name}: {e}"))?;
    let rows = parquet::record::reader::RowIter::from_file_into(Box::new(reader))
        .project(Some(proj))
        .map_err(|e| format!("{name}: {e}"))?;
    let have = all.join(", ");
    Ok(Box::new(rows.enumerate().map(move |(i, r)| {
        let at = format!("{name}: row {}", i + 1);
        match r {
            Ok(row) => match row.to_json_value() {
                Value::Object(cols) => Ok(Row { cols, at }),
                _ => Err(format!("{at}: not a row of columns")),
            },
            Err(e) => Err(format!("{at}: cannot decode ({e}); columns: {have}")),
        }
    })))
}

/// Shuffles a stream through a seeded buffer, as `datasets`' streamed shuffle
/// (buffer of 1,000): each row out is a random one of the buffered rows.
struct BufferShuffle<I: Iterator> {
    inner: I,
    buf: Vec<I::Item>,
    rng: ChaCha8Rng,
    size: usize,
}

impl<I: Iterator> Iterator for BufferShuffle<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        while self.buf.len() < self.size {
            match self.inner.next() {
                Some(x) => self.buf.push(x),
                None => break,
            }
        }
        if self.buf.is_empty() {
            return None;
        }
        let i = self.rng.random_range(0..self.buf.len());
        Some(self.buf.swap_remove(i))
    }
}

/// `datasets`' streamed shuffle buffer size.
const SHUFFLE_BUFFER: usize = 1000;

/// vLLM's `is_valid_sequence`.
fn valid(prompt: usize, output: usize, max_prompt: usize, max_total: usize) -> bool {
    prompt >= 4 && output >= 4 && prompt <= max_prompt && prompt + output <= max_total
}

/// The zeta prompt of vLLM's NextEditPrediction dataset.
const ZETA_PROMPT: &str = "### Instruction:\nYou are a code completion assistant and your task is to analyze user edits and then rewrite an excerpt that the user provides, suggesting the appropriate edits within the excerpt, taking into account the cursor location.\n\n### User Edits:\n\n{events}\n\n### User Excerpt:\n\n{input}\n\n### Response:\n\n";

/// Column `c` of a row as text; a missing or non-text column names the columns
/// the row has.
fn text<'a>(row: &'a Row, c: &str) -> Result<&'a str, String> {
    match row.cols.get(c) {
        Some(Value::String(s)) => Ok(s),
        Some(v) => Err(format!(
            "{}: column '{c}' should be text, found {}",
            row.at,
            short(v)
        )),
        None => Err(missing(row, c)),
    }
}

fn missing(row: &Row, c: &str) -> String {
    format!(
        "{}: no column '{c}'; the row has: {}",
        row.at,
        row.cols.keys().cloned().collect::<Vec<_>>().join(", ")
    )
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Follows a JSON path of indices and keys, naming the step that failed.
fn dig<'a>(row: &'a Row, col: &str, steps: &[Step]) -> Result<&'a Value, String> {
    let mut v = row.cols.get(col).ok_or_else(|| missing(row, col))?;
    let mut path = col.to_string();
    for s in steps {
        let next = match s {
            Step::I(i) => {
                path.push_str(&format!("[{i}]"));
                v.get(*i)
            }
            Step::K(k) => {
                path.push_str(&format!("[\"{k}\"]"));
                v.get(*k)
            }
        };
        v = next.ok_or_else(|| format!("{}: {path} is missing (found {})", row.at, short(v)))?;
    }
    Ok(v)
}

enum Step {
    I(usize),
    K(&'static str),
}

/// An image column value as a URL: HF's Image feature (`{bytes, path}`, bytes as
/// base64 here) becomes a data URL of the original bytes; a URL stays as it is.
fn image_url(v: &Value, at: &str) -> Result<String, String> {
    use base64::Engine;
    let bytes_b64 = v.get("bytes").and_then(Value::as_str);
    let path = v
        .get("path")
        .and_then(Value::as_str)
        .or_else(|| v.as_str())
        .unwrap_or("");
    if let Some(b64) = bytes_b64.filter(|b| !b.is_empty()) {
        // The first 16 base64 characters are 12 bytes: enough for the magic number.
        let head = base64::engine::general_purpose::STANDARD
            .decode(&b64[..b64.len().min(16) / 4 * 4])
            .unwrap_or_default();
        let mime = super::image_mime(&head)
            .ok_or_else(|| format!("{at}: the image bytes are not PNG, JPEG, GIF, WebP or BMP"))?;
        return Ok(format!("data:image/{mime};base64,{b64}"));
    }
    if path.starts_with("http://") || path.starts_with("https://") || path.starts_with("data:") {
        return Ok(path.to_string());
    }
    if !path.is_empty() && Path::new(path).is_file() {
        return super::image_data_url(Path::new(path)).map_err(|e| format!("{at}: {e}"));
    }
    Err(format!(
        "{at}: the image has neither bytes nor a URL or readable file (found {})",
        short(v)
    ))
}

/// The decoder prompt of Whisper that vLLM counts as a speech request's prompt.
const WHISPER_PREAMBLE: &str = "<|startoftranscript|><|en|><|transcribe|><|notimestamps|>";

/// An audio column value as a clip: HF's Audio feature (`{bytes, path}`, bytes as
/// base64 here, a WAV or FLAC file), a readable file path, or decoded samples
/// (`{array, sampling_rate}`, sent as a 16-bit WAV).
fn audio_clip(v: &Value, at: &str) -> Result<super::audio::Audio, String> {
    use base64::Engine;
    let with = |bytes: Vec<u8>| {
        super::audio::Audio::from_bytes(bytes, String::new()).map_err(|e| format!("{at}: {e}"))
    };
    if let Some(b64) = v
        .get("bytes")
        .and_then(Value::as_str)
        .filter(|b| !b.is_empty())
    {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("{at}: the audio bytes are not valid base64: {e}"))?;
        return with(bytes);
    }
    if let (Some(samples), Some(rate)) = (
        v.get("array").and_then(Value::as_array),
        v.get("sampling_rate").and_then(Value::as_u64),
    ) {
        let pcm: Vec<i16> = samples
            .iter()
            .map(|x| (x.as_f64().unwrap_or(0.0).clamp(-1.0, 1.0) * 32767.0) as i16)
            .collect();
        return with(super::audio::pcm16_wav(&pcm, rate as u32));
    }
    let path = v.get("path").and_then(Value::as_str).or_else(|| v.as_str());
    if let Some(p) = path.filter(|p| Path::new(p).is_file()) {
        return super::audio::load(Path::new(p), String::new()).map_err(|e| format!("{at}: {e}"));
    }
    Err(format!(
        "{at}: the audio has neither bytes, samples nor a readable file (found {})",
        short(v)
    ))
}

/// A video column value as a `video_url` part (vLLM's `process_video`).
fn video_part(v: &Value, at: &str) -> Result<Value, String> {
    let url = match (v.get("bytes").and_then(Value::as_str), v.as_str()) {
        (Some(b), _) if !b.is_empty() => format!("data:video/mp4;base64,{b}"),
        (_, Some(u)) if u.starts_with("http://") || u.starts_with("https://") => u.to_string(),
        _ => match v.get("path").and_then(Value::as_str) {
            Some(u) if u.starts_with("http") => u.to_string(),
            _ => {
                return Err(format!(
                    "{at}: the video is neither bytes nor a URL (found {})",
                    short(v)
                ));
            }
        },
    };
    Ok(json!({"type": "video_url", "video_url": {"url": url}}))
}

/// What one row gives: a prompt (text, or messages), its media parts, and the
/// reference answer when the dataset takes its output length from it.
struct Made {
    prompt: Prompt,
    media: Vec<Value>,
    reference: Option<String>,
    /// The length checks of vLLM's `is_valid_sequence` (max prompt, max total).
    limits: Option<(usize, usize)>,
}

/// Applies one dataset's prompt logic to a row; `Ok(None)` drops the row (as vLLM
/// filters it).
fn make(kind: Kind, row: &Row, spec: &HfSpec) -> Result<Option<Made>, String> {
    let plain = |t: String| Made {
        prompt: Prompt::Text(t),
        media: Vec::new(),
        reference: None,
        limits: None,
    };
    Ok(Some(match kind {
        Kind::Conversation | Kind::MultiModalConversation => {
            let conv = dig(row, "conversations", &[])?;
            let Some(turns) = conv.as_array() else {
                return Err(format!(
                    "{}: column 'conversations' should be a list of {{from, value}}, found {}",
                    row.at,
                    short(conv)
                ));
            };
            if turns.len() < 2 {
                return Ok(None);
            }
            let val = |i: usize| -> Result<String, String> {
                dig(row, "conversations", &[Step::I(i), Step::K("value")])?
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{}: conversations[{i}].value is not text", row.at))
            };
            let mut m = plain(val(0)?);
            m.reference = Some(val(1)?);
            m.limits = Some((1024, 2048));
            if let Some(img) = row.cols.get("image").filter(|v| !v.is_null()) {
                m.media.push(
                    json!({"type": "image_url", "image_url": {"url": image_url(img, &row.at)?}}),
                );
            }
            m
        }
        Kind::VisionArena | Kind::VisionArenaBench => {
            let col = if kind == Kind::VisionArena {
                "conversation"
            } else {
                "turns"
            };
            let t = dig(row, col, &[Step::I(0), Step::I(0), Step::K("content")])?;
            let t = t
                .as_str()
                .ok_or_else(|| format!("{}: {col}[0][0].content is not text", row.at))?;
            let img = dig(row, "images", &[Step::I(0)])?;
            let mut m = plain(t.to_string());
            m.media
                .push(json!({"type": "image_url", "image_url": {"url": image_url(img, &row.at)?}}));
            m
        }
        Kind::Mmvu => {
            let q = text(row, "question")?;
            let choices = dig(row, "choices", &[])?;
            let listed = match choices {
                Value::Object(o) => o
                    .iter()
                    .map(|(k, v)| {
                        format!("{k}.{}", v.as_str().map_or(v.to_string(), str::to_string))
                    })
                    .collect::<Vec<_>>()
                    .join(" "),
                v => {
                    return Err(format!(
                        "{}: column 'choices' should map letters to answers, found {}",
                        row.at,
                        short(v)
                    ));
                }
            };
            let mut m = plain(format!("{q} {listed}"));
            m.media.push(video_part(dig(row, "video", &[])?, &row.at)?);
            m
        }
        Kind::InstructCoder => plain(format!(
            "{}\n\n{} Just output the code, do not include any explanation.",
            text(row, "input")?,
            text(row, "instruction")?
        )),
        Kind::MtBench => {
            let t = dig(row, "turns", &[Step::I(0)])?;
            plain(
                t.as_str()
                    .ok_or_else(|| format!("{}: turns[0] is not text", row.at))?
                    .to_string(),
            )
        }
        Kind::Aimo => {
            let mut m = plain(text(row, "problem")?.to_string());
            m.reference = Some(text(row, "solution")?.to_string());
            m.limits = Some((2048, 32000));
            m
        }
        Kind::NextEdit => {
            let prompt = ZETA_PROMPT
                .replace("{events}", text(row, "events")?)
                .replace("{input}", text(row, "input")?);
            let out = text(row, "output")?;
            // As vLLM: from the editable region's start marker on (Python's find
            // gives -1 when it is missing, so then only the last character).
            let start = out
                .find("<|editable_region_start|>")
                .unwrap_or_else(|| out.char_indices().last().map_or(0, |(i, _)| i));
            let mut m = plain(prompt);
            m.reference = Some(out[start..].to_string());
            m
        }
        Kind::Asr => {
            // vLLM's ASRDataset: the clip, dropped when longer than Whisper takes
            // (30 s) or outside --asr-min/max-audio-len-sec.
            let audio = audio_clip(dig(row, "audio", &[])?, &row.at)?;
            let too_long = spec
                .asr_max_audio_len_sec
                .is_some_and(|m| audio.seconds > m);
            if audio.seconds > 30.0 || audio.seconds < spec.asr_min_audio_len_sec || too_long {
                return Ok(None);
            }
            Made {
                prompt: Prompt::Audio(audio),
                media: Vec::new(),
                reference: None,
                limits: None,
            }
        }
        Kind::Blazedit => {
            let d = dig(row, "norm_distance", &[])?
                .as_f64()
                .ok_or_else(|| format!("{}: column 'norm_distance' is not a number", row.at))?;
            if d < spec.blazedit_min_distance || d > spec.blazedit_max_distance {
                return Ok(None);
            }
            plain(format!(
                "Given a code file, please apply the change requests and generate the new file.\n\n\
                 Original file:\n```python\n{}\n```\n\nChange request:\n{}\n\n\
                 Please generate the new code file in the \"New file\" section below.",
                text(row, "code")?,
                text(row, "change_request")?
            ))
        }
        Kind::MlPerf => Made {
            prompt: Prompt::Messages(json!([
                {"role": "system", "content": text(row, "system_prompt")?},
                {"role": "user", "content": text(row, "question")?},
            ])),
            media: Vec::new(),
            reference: Some(text(row, "output")?.to_string()),
            limits: Some((1024, 2048)),
        },
        Kind::MmStar => {
            let q = text(row, "question")?;
            let q = q.split_once("Options:").map_or(q, |(a, _)| a).trim();
            let mut m = plain(q.to_string());
            m.media.push(json!({"type": "image_url", "image_url": {"url": image_url(dig(row, "image", &[])?, &row.at)?}}));
            m
        }
    }))
}

/// Tokens of a prompt: its text, or the text of its messages.
fn prompt_tokens(tok: &Tokenizer, p: &Prompt) -> usize {
    match p {
        Prompt::Messages(m) => m
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|msg| msg["content"].as_str())
                    .map(|s| tok.count(s))
                    .sum()
            })
            .unwrap_or(0),
        p => p.text().map_or(0, |t| tok.count(&t)),
    }
}

/// Counts (or templates and counts) one made prompt and sets its output length;
/// `None` when vLLM's length filter drops it.
fn finish(
    kind: Kind,
    m: &Made,
    tok: &Tokenizer,
    spec: &HfSpec,
    template: bool,
) -> Result<Option<Request>, String> {
    let mut req = Request {
        prompt: m.prompt.clone(),
        prompt_tokens: 0,
        max_tokens: None,
        extra: None,
        timestamp: None,
    };
    if template {
        super::apply_chat_template(
            std::slice::from_mut(&mut req),
            tok,
            true,
            &spec.chat_template_kwargs,
        )?;
    } else if kind == Kind::Asr {
        // As vLLM counts it: the Whisper preamble the server puts before the audio.
        req.prompt_tokens = tok.count(WHISPER_PREAMBLE) as u32;
    } else {
        req.prompt_tokens = prompt_tokens(tok, &req.prompt) as u32;
    }
    let reference = m.reference.as_deref().map(|r| tok.count(r));
    let output = spec
        .output_len
        .map(|o| o as usize)
        .or(kind.default_output_len().map(|o| o as usize))
        .or(reference)
        .unwrap_or(128);
    // vLLM filters by length only when the output length is the reference's.
    if let (Some((max_p, max_t)), true) = (m.limits, spec.output_len.is_none()) {
        if !valid(req.prompt_tokens as usize, output, max_p, max_t) {
            return Ok(None);
        }
    }
    // NextEdit takes its own reference length whatever --hf-output-len says (as vLLM).
    let output = if kind == Kind::NextEdit {
        reference.unwrap_or(output)
    } else {
        output
    };
    req.max_tokens = Some(output.max(1) as u32);
    if !m.media.is_empty() {
        let Prompt::Text(t) = &req.prompt else {
            unreachable!("media go with text prompts")
        };
        let mut parts = vec![json!({"type": "text", "text": t})];
        parts.extend(m.media.iter().cloned());
        req.prompt = Prompt::Messages(json!([{"role": "user", "content": parts}]));
    }
    Ok(Some(req))
}

/// Loads the dataset at `path` (file, folder or Hub id) and builds `spec.n`
/// requests with its prompt logic.
pub fn generate(tok: &Tokenizer, path: &str, spec: &HfSpec) -> Result<Vec<Request>, String> {
    let name = match (&spec.name, is_hub_id(path)) {
        (Some(n), _) => n.clone(),
        (None, true) => path.to_string(),
        (None, false) => {
            return Err(format!(
                "{path} is a local copy: say which dataset it is with --hf-name (Lua: name), \
                 e.g. --hf-name likaixin/InstructCoder, so its prompts are made the way vLLM makes them"
            ));
        }
    };
    let kind = kind_of(&name)?;
    let media_kind = matches!(
        kind,
        Kind::VisionArena | Kind::VisionArenaBench | Kind::Mmvu | Kind::MmStar
    );
    if media_kind && !spec.chat {
        return Err(format!(
            "{name} sends images or video, which only a chat endpoint takes: use --backend openai-chat"
        ));
    }
    if spec.n == 0 {
        return Err("`n` must be at least 1".into());
    }
    let split = spec
        .split
        .clone()
        .unwrap_or_else(|| kind.default_split().to_string());
    let mut src = resolve(path, spec, &split)?;
    if spec.shuffle {
        super::shuffle(&mut src.files, spec.seed);
    }
    let rows = Rows {
        files: src.files.into_iter(),
        columns: kind.columns(),
        current: None,
    };
    let rows: Box<dyn Iterator<Item = Result<Row, String>>> = if spec.shuffle {
        Box::new(BufferShuffle {
            inner: rows,
            buf: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(spec.seed),
            size: SHUFFLE_BUFFER,
        })
    } else {
        Box::new(rows)
    };
    let template =
        !spec.chat && kind.templated() && (!spec.skip_chat_template || kind == Kind::MlPerf);
    if template && !tok.has_chat_template() {
        return Err(format!(
            "{name}'s prompts are rendered with the model's chat template for a completions endpoint \
             (as vLLM does), but tokenizer '{}' has none: pass --tokenizer with the served model's, \
             use a chat backend (--backend openai-chat){}",
            tok.name(),
            if kind == Kind::MlPerf {
                ""
            } else {
                ", or --skip-chat-template"
            }
        ));
    }
    let mut out = Vec::new();
    let mut seen = 0usize;
    let mut rows = rows;
    // Rows are turned into prompts in order, then counted (and templated) in
    // parallel a batch at a time; reading stops once `n` requests are made.
    while out.len() < spec.n {
        let want = (spec.n - out.len()).clamp(16, 1024);
        let mut batch = Vec::with_capacity(want);
        for row in rows.by_ref() {
            let row = row?;
            seen += 1;
            for c in kind.required() {
                if !row.cols.contains_key(*c) {
                    return Err(format!(
                        "{}: the {name} dataset needs column '{c}'; the rows here have: {} \
                         (is --hf-name right for this file?)",
                        row.at,
                        row.cols.keys().cloned().collect::<Vec<_>>().join(", ")
                    ));
                }
            }
            if let Some(m) = make(kind, &row, spec)? {
                batch.push(m);
                if batch.len() >= want {
                    break;
                }
            }
        }
        if batch.is_empty() {
            break;
        }
        let done = super::par_map(&batch, |_, m| finish(kind, m, tok, spec, template));
        for r in done {
            if let Some(req) = r? {
                out.push(req);
            }
        }
    }
    out.truncate(spec.n);
    if out.is_empty() {
        return Err(format!(
            "{}: none of its {seen} rows made a request for {name} (split '{split}'{})",
            src.place,
            if kind == Kind::Blazedit {
                format!(
                    ", edit distance within {}..{}",
                    spec.blazedit_min_distance, spec.blazedit_max_distance
                )
            } else {
                ", or all were too long or too short".into()
            }
        ));
    }
    if spec.oversample {
        oversample(&mut out, spec.n, spec.seed);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn files_are_chosen_by_subset_and_split_as_on_the_hub() {
        let repo = files(&[
            ".gitattributes",
            "README.md",
            "data/train-00000-of-00002.parquet",
            "data/train-00001-of-00002.parquet",
            "data/test-00000-of-00001.parquet",
        ]);
        assert_eq!(
            choose_files(&repo, None, "train", "x").unwrap(),
            files(&[
                "data/train-00000-of-00002.parquet",
                "data/train-00001-of-00002.parquet"
            ])
        );
        let e = choose_files(&repo, None, "validation", "x").unwrap_err();
        assert!(
            e.contains("no split 'validation'") && e.contains("test, train"),
            "{e}"
        );
        // Subsets are folders; the refs/convert/parquet layout has split folders.
        let conv = files(&["default/train/0000.parquet", "extra/train/0000.parquet"]);
        assert_eq!(
            choose_files(&conv, Some("extra"), "train", "x").unwrap(),
            files(&["extra/train/0000.parquet"])
        );
        let e = choose_files(&conv, Some("nope"), "train", "x").unwrap_err();
        assert!(e.contains("default, extra"), "{e}");
        // No file names a split: all are train (ShareGPT_Vicuna_unfiltered's layout).
        let flat = files(&[
            "ShareGPT_V4.3_unfiltered_cleaned_split.json",
            "dataset_infos.json",
        ]);
        assert_eq!(
            choose_files(&flat, None, "train", "x").unwrap(),
            files(&["ShareGPT_V4.3_unfiltered_cleaned_split.json"])
        );
        assert!(choose_files(&files(&["README.md"]), None, "train", "x").is_err());
    }

    #[test]
    fn unknown_ids_list_the_known_ones() {
        let e = kind_of("likaixin/InstructCodr").unwrap_err();
        assert!(
            e.contains("likaixin/InstructCoder") && e.contains("philschmid/mt-bench"),
            "{e}"
        );
        assert_eq!(kind_of("AI-MO/NuminaMath-CoT").unwrap(), Kind::Aimo);
    }

    fn row(v: Value) -> Row {
        Row {
            cols: v.as_object().unwrap().clone(),
            at: "f: row 1".into(),
        }
    }

    #[test]
    fn prompt_logic_follows_vllm() {
        let s = HfSpec::default();
        let m = make(
            Kind::InstructCoder,
            &row(json!({"input": "x = 1", "instruction": "Rename x."})),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            m.prompt,
            Prompt::Text(
                "x = 1\n\nRename x. Just output the code, do not include any explanation.".into()
            )
        );
        let m = make(
            Kind::MmStar,
            &row(json!({"question": "What is shown? Options: A: cat", "image": {"bytes": "iVBORw0KGgoAAAANSUhEUg==", "path": null}})),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.prompt, Prompt::Text("What is shown?".into()));
        assert_eq!(
            m.media[0]["image_url"]["url"],
            "data:image/png;base64,iVBORw0KGgoAAAANSUhEUg=="
        );
        // Zeta: the reference starts at the editable region's marker.
        let m = make(
            Kind::NextEdit,
            &row(
                json!({"events": "E", "input": "I", "output": "junk<|editable_region_start|>new"}),
            ),
            &s,
        )
        .unwrap()
        .unwrap();
        assert_eq!(m.reference.as_deref(), Some("<|editable_region_start|>new"));
        assert!(
            matches!(&m.prompt, Prompt::Text(t) if t.contains("### User Edits:\n\nE\n\n### User Excerpt:\n\nI\n\n"))
        );
        // BlazeEdit rows outside the distance window are dropped.
        let s2 = HfSpec {
            blazedit_max_distance: 0.1,
            ..HfSpec::default()
        };
        let r = row(json!({"code": "c", "change_request": "r", "norm_distance": 0.5}));
        assert!(make(Kind::Blazedit, &r, &s2).unwrap().is_none());
        assert!(make(Kind::Blazedit, &r, &s).unwrap().is_some());
        // A missing nested field names the path and what was there.
        let e = make(
            Kind::VisionArena,
            &row(json!({"conversation": [[]], "images": []})),
            &s,
        )
        .err()
        .unwrap();
        assert!(e.contains("conversation[0][0]"), "{e}");
    }

    #[test]
    fn buffer_shuffle_keeps_every_row_once() {
        let it = BufferShuffle {
            inner: 0..5000,
            buf: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(1),
            size: SHUFFLE_BUFFER,
        };
        let v: Vec<i32> = it.collect();
        assert_eq!(v.len(), 5000);
        assert_ne!(v[..10], (0..10).collect::<Vec<_>>()[..]);
        let mut s = v.clone();
        s.sort();
        assert_eq!(s, (0..5000).collect::<Vec<_>>());
    }
}
