//! The word-count fallback tokenizer and the vocabulary the simulator speaks.
//!
//! Used when no Hugging Face tokenizer is given (the default with the built-in
//! simulator): one token = one whitespace-separated word. The words are common
//! English words that are also single tokens in the usual BPE vocabularies.

/// The vocabulary: random prompts and simulated answers are drawn from it.
pub const WORDS: &[&str] = &[
    "the", "of", "and", "to", "in", "is", "that", "it", "for", "on", "with", "as", "was", "at",
    "by", "be", "this", "from", "or", "an", "are", "not", "but", "have", "all", "one", "can",
    "more", "time", "new", "data", "model", "large", "small", "fast", "slow", "token", "server",
    "request", "answer", "moon", "light", "river", "stone", "cloud", "green", "water", "paper",
    "music", "garden", "window", "city", "road", "night", "day", "year", "world", "people", "work",
    "home", "book", "word", "table", "sound", "field", "house", "story", "point", "power",
    "system", "number", "line", "place", "part", "hand", "head", "side", "thing", "way", "case",
    "group", "fact", "idea", "level", "order", "rate", "team", "game", "plan", "test", "value",
    "space", "state", "rule", "view", "form", "list", "step",
];

/// The whole vocabulary: the words, then every two-word compound (`moonriver`),
/// so random prompts draw from ~10k tokens as with a real tokenizer and unrelated
/// prompts do not share long runs of words (which a prefix cache would hit).
pub fn vocab() -> &'static [String] {
    static V: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    V.get_or_init(|| {
        let mut v: Vec<String> = WORDS.iter().map(|w| w.to_string()).collect();
        for a in WORDS {
            for b in WORDS {
                v.push(format!("{a}{b}"));
            }
        }
        v
    })
}

fn ids() -> &'static std::collections::HashMap<&'static str, u32> {
    static M: std::sync::OnceLock<std::collections::HashMap<&'static str, u32>> =
        std::sync::OnceLock::new();
    M.get_or_init(|| {
        let mut m = std::collections::HashMap::new();
        for (i, w) in vocab().iter().enumerate() {
            // Compounds that spell a word (or another compound) keep the first id.
            m.entry(w.as_str()).or_insert(i as u32);
        }
        m
    })
}

/// Number of ids, including the unknown-word id (the last).
pub fn vocab_size() -> u32 {
    vocab().len() as u32 + 1
}

/// Ids of the words of `text` (unknown words get the last id).
pub fn encode(text: &str) -> Vec<u32> {
    let m = ids();
    let unk = vocab().len() as u32;
    text.split_whitespace()
        .map(|w| m.get(w).copied().unwrap_or(unk))
        .collect()
}

/// The words of `ids`, joined by spaces (unknown ids become `<unk>`).
pub fn decode(ids: &[u32]) -> String {
    let v = vocab();
    let mut s = String::new();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(v.get(*id as usize).map_or("<unk>", |w| w.as_str()));
    }
    s
}
