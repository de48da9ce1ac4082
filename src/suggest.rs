//! Typo suggestions: the valid name nearest a mistyped one (`edit_distance`,
//! `suggest`), shared by option tables, flags and simulator presets.

/// Levenshtein distance between two strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

/// The candidate closest to `word`, if close enough to be a likely typo. A
/// candidate that extends the word (`ttft` → `ttft_ms`) counts as a near match.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| {
            // A truncated or extended name is near its full one, but never nearer
            // than a name one typo away ("vllm-rerenk" is vllm-rerank, not vllm).
            let prefix = word.len() >= 3 && (c.starts_with(word) || word.starts_with(c));
            let d = edit_distance(word, c);
            (if prefix { d.min(2) } else { d }, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}
