//! Translations: the user's language ([`default_lang`]) and catalogues of
//! English text and its Chinese, read once at first use. Today it holds the Lua options' descriptions (`options.zh.tsv`), which the
//! Chinese API reference prints; a catalogue is keyed by the English itself, so a
//! changed English text has no translation until its line is updated.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The language a user reads when no `--lang` says otherwise: `MOONBENCH_LANG`
/// (`zh`, `zh-CN`, `en`, ...), else the locale (`LC_ALL`, `LC_MESSAGES`, `LANG`:
/// Chinese when it starts with `zh`); `"zh"` or `"en"`.
pub fn default_lang() -> &'static str {
    let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let zh = |v: &str| v.trim().to_ascii_lowercase().starts_with("zh");
    if let Some(v) = get("MOONBENCH_LANG") {
        return if zh(&v) { "zh" } else { "en" };
    }
    // The first locale variable set decides, as the C library reads them.
    for k in ["LC_ALL", "LC_MESSAGES", "LANG"] {
        if let Some(v) = get(k) {
            return if zh(&v) { "zh" } else { "en" };
        }
    }
    "en"
}

/// The Chinese of the Lua option descriptions, as `English<TAB>Chinese` lines.
const OPTIONS_ZH: &str = include_str!("options.zh.tsv");

/// A catalogue's `English<TAB>translation` lines (`#` lines and blank lines are
/// comments); a line with no tab or a key given twice is an error naming the line.
pub fn parse(text: &'static str) -> Result<HashMap<&'static str, &'static str>, String> {
    let mut map = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((en, zh)) = line.split_once('\t') else {
            return Err(format!(
                "line {}: no tab between English and translation",
                i + 1
            ));
        };
        if zh.trim().is_empty() {
            return Err(format!("line {}: empty translation of {en:?}", i + 1));
        }
        if map.insert(en, zh).is_some() {
            return Err(format!("line {}: {en:?} is translated twice", i + 1));
        }
    }
    Ok(map)
}

/// The option-description catalogue.
pub fn options_zh() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| parse(OPTIONS_ZH).unwrap_or_else(|e| panic!("options.zh.tsv {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_lines_are_checked() {
        assert!(options_zh().len() > 100);
        assert!(parse("a\tb\nc d\n").unwrap_err().starts_with("line 2"));
        assert!(parse("a\tb\n# c\na\tx\n").unwrap_err().contains("twice"));
        assert!(parse("a\t \n").unwrap_err().contains("empty"));
    }
}
