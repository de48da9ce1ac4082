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

/// Ids of the words of `text` (unknown words get id `WORDS.len()`).
pub fn encode(text: &str) -> Vec<u32> {
    text.split_whitespace()
        .map(|w| WORDS.iter().position(|x| *x == w).unwrap_or(WORDS.len()) as u32)
        .collect()
}

/// The words of `ids`, joined by spaces (unknown ids become `<unk>`).
pub fn decode(ids: &[u32]) -> String {
    let mut s = String::new();
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(WORDS.get(*id as usize).copied().unwrap_or("<unk>"));
    }
    s
}
