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

/// The Chinese of any `en` (not only a `'static` one), or `None`: a newline in
/// `en` is written `\n` in the catalogue, and comes back as a newline.
pub fn zh_of(en: &str) -> Option<String> {
    let key = en.replace('\n', "\\n");
    messages_zh()
        .get(key.as_str())
        .map(|z| z.replace("\\n", "\n"))
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
        // Every translation keeps its template's placeholders: Rust's {} and
        // Lua's %d/%s/%.1f, in the same order.
        for (en, zh) in messages_zh() {
            assert_eq!(en.matches("{}").count(), zh.matches("{}").count(), "{en}");
            assert_eq!(lua_specs(en), lua_specs(zh), "{en}");
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

    /// The `string.format` specifiers of a text, in order: `%` then digits,
    /// `.` or `-`, then one of `dsfgixXqc` (so "100% leads" has none).
    fn lua_specs(s: &str) -> Vec<String> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        for (i, _) in s.match_indices('%') {
            let mut j = i + 1;
            while j < b.len() && (b[j].is_ascii_digit() || b[j] == b'.' || b[j] == b'-') {
                j += 1;
            }
            if j < b.len() && b"dsfgixXqc".contains(&b[j]) {
                out.push(s[i..=j].to_string());
            }
        }
        out
    }

    /// The string literals a script passes first to its catalogue helpers
    /// (`say`, `step`'s second argument, `stop`, `t`).
    fn catalogue_texts(src: &str) -> Vec<String> {
        let mut out = Vec::new();
        for call in ["say(", "stop(", "t(", "step("] {
            let mut at = 0;
            while let Some(i) = src[at..].find(call) {
                let start = at + i;
                at = start + call.len();
                // Only the helper itself, not e.g. `print(` or `split(`.
                let before = src[..start].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == ':') {
                    continue;
                }
                let mut rest = src[at..].trim_start();
                if call == "step(" {
                    match rest.split_once(',') {
                        Some((n, r)) if n.trim().parse::<u32>().is_ok() => rest = r.trim_start(),
                        _ => continue,
                    }
                }
                let Some(body) = rest.strip_prefix('"') else {
                    continue;
                };
                let mut text = String::new();
                let mut chars = body.chars();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        // Kept as written: the catalogue spells a newline \n.
                        '\\' => {
                            text.push('\\');
                            text.extend(chars.next());
                        }
                        c => text.push(c),
                    }
                }
                out.push(text);
            }
        }
        out
    }

    #[test]
    fn every_text_the_bundled_scripts_translate_is_in_the_catalogue() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut checked = 0;
        let files = ["scripts", "stdlib/moonbench"]
            .iter()
            .flat_map(|d| std::fs::read_dir(format!("{root}/{d}")).unwrap())
            .map(|e| e.unwrap().path());
        for p in files {
            let src = std::fs::read_to_string(&p).unwrap_or_default();
            if !src.contains("mb.tr(") {
                continue;
            }
            for text in catalogue_texts(&src) {
                assert!(
                    messages_zh().contains_key(text.as_str()),
                    "{}: {text:?} is not in src/i18n/messages.zh.tsv",
                    p.display()
                );
                checked += 1;
            }
        }
        assert!(checked >= 20, "{checked}");
        assert_eq!(
            catalogue_texts("say(\"a %d\\n\", 1) print(\"x\") step(2, \"b\") split(\"c\")"),
            ["a %d\\n", "b"]
        );
    }
}
