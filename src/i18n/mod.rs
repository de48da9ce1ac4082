//! Translations: the user's language ([`default_lang`]) and catalogues of
//! English text and its Chinese, read once at first use: the Lua options'
//! descriptions (`options.zh.tsv`) and the one catalogue of everything else a
//! user reads — what `report` draws and writes, the help of the clap-parsed
//! subcommands, the CLI's messages — (`messages.zh.tsv`, through [`tr`] and
//! [`trf`] inside [`with_lang`]). A
//! catalogue is keyed by the English itself, so a changed English text has no
//! translation until its line is updated (tests list what is missing).

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

/// The Chinese of what users read outside the Lua option reference — what
/// `report` draws and writes (titles, axes, legends, notes), subcommand help,
/// CLI messages — as `English<TAB>Chinese` lines; `{}` marks where values go.
const MESSAGES_ZH: &str = include_str!("messages.zh.tsv");

/// The message catalogue.
pub fn messages_zh() -> &'static HashMap<&'static str, &'static str> {
    static MAP: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    MAP.get_or_init(|| parse(MESSAGES_ZH).unwrap_or_else(|e| panic!("messages.zh.tsv {e}")))
}

thread_local! {
    static ZH: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// English texts asked for in Chinese that the catalogue lacks (a test fails on any).
static MISSING: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// Runs `f` with [`tr`] translating into Chinese when `zh` (on this thread).
pub fn with_lang<R>(zh: bool, f: impl FnOnce() -> R) -> R {
    let before = ZH.with(|z| z.replace(zh));
    let r = f();
    ZH.with(|z| z.set(before));
    r
}

/// `en` in the current language ([`with_lang`]): its line of the message
/// catalogue in Chinese, else `en` itself (and the miss is remembered).
pub fn tr(en: &'static str) -> &'static str {
    if !ZH.with(|z| z.get()) {
        return en;
    }
    match messages_zh().get(en) {
        Some(zh) => zh,
        None => {
            let mut m = MISSING.lock().unwrap();
            if !m.contains(&en) {
                m.push(en);
            }
            en
        }
    }
}

/// [`tr`] of a template with `{}` placeholders, filled in order with `args`.
pub fn trf(en: &'static str, args: &[&dyn std::fmt::Display]) -> String {
    let mut out = String::new();
    let mut parts = tr(en).split("{}");
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    for (i, p) in parts.enumerate() {
        if let Some(a) = args.get(i) {
            out.push_str(&a.to_string());
        }
        out.push_str(p);
    }
    out
}

/// The texts [`tr`] could not translate so far.
pub fn missing() -> Vec<&'static str> {
    MISSING.lock().unwrap().clone()
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
        assert!(!messages_zh().is_empty());
        // Every translation keeps its template's placeholders.
        for (en, zh) in messages_zh() {
            assert_eq!(en.matches("{}").count(), zh.matches("{}").count(), "{en}");
        }
        let s = with_lang(true, || {
            trf("Requests of {} (first {} by send time)", &[&"a.json", &400])
        });
        assert_eq!(s, "a.json 的请求（按发送时间的前 400 个）");
        assert_eq!(
            trf("Requests of {} (first {} by send time)", &[&"a", &1]),
            "Requests of a (first 1 by send time)"
        );
    }
}
