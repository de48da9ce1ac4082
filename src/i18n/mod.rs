//! Translations: the user's language ([`default_lang`]) and catalogues of
//! English text and its Chinese, read once at first use: the Lua options'
//! descriptions (`options.zh.tsv`) and the one catalogue of everything else a
//! user reads — what `report` draws and writes, the help of the clap-parsed
//! subcommands, the CLI's messages — (`messages.zh.tsv`, through [`tr`] and
//! [`trf`] inside [`with_lang`]); the process's language for lines printed
//! from any thread ([`set_process_lang`], [`say`]); the Chinese of finished
//! English errors ([`zh_of_message`], [`eprint_error`]). A
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
    /// This thread's language, when [`with_lang`] set one.
    static ZH: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// The language of threads [`with_lang`] did not set (the I/O threads, a
/// signal's message): the command line's, from [`set_process_lang`].
static PROCESS_ZH: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sets the language of what is printed from threads without a [`with_lang`]
/// ([`is_zh`], [`say`]); the CLI calls it once with [`wants_zh`] of its command
/// line. Errors are still made in English there ([`tr`] does not translate), to
/// be printed in both languages ([`eprint_error`]).
pub fn set_process_lang(zh: bool) {
    PROCESS_ZH.store(zh, std::sync::atomic::Ordering::Relaxed);
}

/// Whether what is printed now should be Chinese: this thread's [`with_lang`],
/// else the process's ([`set_process_lang`]).
pub fn is_zh() -> bool {
    ZH.with(|z| z.get())
        .unwrap_or_else(|| PROCESS_ZH.load(std::sync::atomic::Ordering::Relaxed))
}

/// [`trf`] in the language of [`is_zh`]: for a progress line or warning printed
/// as a run goes, from any thread.
pub fn say(en: &'static str, args: &[&dyn std::fmt::Display]) -> String {
    with_lang(is_zh(), || trf(en, args))
}

/// English texts asked for in Chinese that the catalogue lacks (a test fails on any).
static MISSING: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

/// Runs `f` with [`tr`] translating into Chinese when `zh` (on this thread).
pub fn with_lang<R>(zh: bool, f: impl FnOnce() -> R) -> R {
    let before = ZH.with(|z| z.replace(Some(zh)));
    let r = f();
    ZH.with(|z| z.set(before));
    r
}

/// `en` in the current language ([`with_lang`]): its line of the message
/// catalogue in Chinese, else `en` itself (and the miss is remembered).
pub fn tr(en: &'static str) -> &'static str {
    if !ZH.with(|z| z.get()).unwrap_or(false) {
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

/// Whether a command line asks for Chinese: its `--lang zh` (`--lang=zh`), else
/// [`default_lang`].
pub fn wants_zh(args: &[String]) -> bool {
    for (i, a) in args.iter().enumerate() {
        let v = match a.strip_prefix("--lang=") {
            Some(v) => Some(v),
            None if a == "--lang" => args.get(i + 1).map(String::as_str),
            None => None,
        };
        if let Some(v) = v {
            return v.starts_with("zh");
        }
    }
    default_lang() == "zh"
}

/// Prints an error message to stderr as a script run's end does: the
/// English, then its Chinese ([`zh_of_message`]) when this thread reads Chinese.
pub fn eprint_error(msg: &str) {
    eprintln!("{msg}");
    if is_zh() {
        if let Some(z) = zh_of_message(msg) {
            eprintln!("{z}");
        }
    }
}

/// The Chinese of a finished message — an error made deep inside with [`trf`]'s
/// English, its values already filled in — line by line: a line is its catalogue
/// line, or a catalogue template whose `{}`s match it (each value itself
/// translated when it is a catalogue text), after any prefix ending in `": "`
/// (`moonbench bench: `, `file.lua:3: `), which stays as it is. Lines no template
/// matches (a path, a server's own words) stay as they are. `None` when no line
/// was translated.
pub fn zh_of_message(msg: &str) -> Option<String> {
    let mut any = false;
    let lines: Vec<String> = msg
        .lines()
        .map(|line| match zh_of_line(line, 2) {
            Some(z) => {
                any = true;
                z
            }
            None => line.to_string(),
        })
        .collect();
    any.then(|| lines.join("\n"))
}

/// The line of `messages.zh.tsv` after which its templates are for
/// [`zh_of_message`]; templates above it (`request {}: {}`, a chart label) would
/// match unrelated errors.
const DEEP_SECTION: &str = "# Errors made deep inside";

/// The `{}` templates of the catalogue's section of errors made deep inside
/// ([`DEEP_SECTION`] to the end), each with enough literal text to be specific.
fn deep_templates() -> &'static [(&'static str, &'static str)] {
    static LIST: OnceLock<Vec<(&'static str, &'static str)>> = OnceLock::new();
    LIST.get_or_init(|| {
        let start = MESSAGES_ZH
            .find(DEEP_SECTION)
            .expect("messages.zh.tsv has its section of deep errors");
        MESSAGES_ZH[start..]
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            // A template of little but `{}`s would match almost any line.
            .filter(|(en, _)| en.contains("{}") && en.replace("{}", "").trim().len() >= 4)
            .collect()
    })
}

/// One line of [`zh_of_message`]; `depth` bounds how deep values are translated.
fn zh_of_line(line: &str, depth: u32) -> Option<String> {
    // An indented line keeps its indent as a prefix.
    let mut starts = vec![line.len() - line.trim_start().len()];
    starts.extend(line.match_indices(": ").map(|(i, _)| i + 2));
    for start in starts {
        let (prefix, rest) = line.split_at(start);
        if rest.is_empty() {
            continue;
        }
        if let Some(z) = messages_zh().get(rest) {
            return Some(format!("{prefix}{z}"));
        }
        for &(en, zh) in deep_templates() {
            if let Some(values) = match_template(en, rest) {
                let mut out = prefix.to_string();
                let mut parts = zh.split("{}");
                out.push_str(parts.next().unwrap_or(""));
                for (v, p) in values.iter().zip(parts) {
                    let v = (depth > 0)
                        .then(|| zh_of_line(v, depth - 1))
                        .flatten()
                        .unwrap_or_else(|| v.to_string());
                    out.push_str(&v);
                    out.push_str(p);
                }
                return Some(out);
            }
        }
    }
    None
}

/// The values of `text` at `template`'s `{}`s (each non-empty, the leftmost match
/// of each literal piece after it), or `None` if it does not fit.
fn match_template<'a>(template: &str, text: &'a str) -> Option<Vec<&'a str>> {
    let pieces: Vec<&str> = template.split("{}").collect();
    let (first, last) = (pieces[0], pieces[pieces.len() - 1]);
    let mut rest = text.strip_prefix(first)?;
    let mut values = Vec::new();
    for (k, piece) in pieces[1..].iter().enumerate() {
        let is_last = k == pieces.len() - 2;
        let at = if is_last {
            if piece.is_empty() {
                rest.len()
            } else {
                rest.strip_suffix(last)?.len()
            }
        } else {
            rest.get(1..)?.find(piece)? + 1
        };
        values.push(&rest[..at]);
        rest = &rest[at + piece.len()..];
        if values.last().is_some_and(|v| v.is_empty()) {
            return None;
        }
    }
    rest.is_empty().then_some(values)
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

    /// A finished message back to its template: values found between the literal
    /// pieces (and translated themselves when they are catalogue texts), a prefix
    /// ending in ": " kept, lines nothing matches kept, `None` when nothing matched.
    #[test]
    fn finished_messages_are_translated_line_by_line() {
        assert_eq!(
            match_template(
                "cannot connect to {}: {}",
                "cannot connect to http://h:1: refused"
            ),
            Some(vec!["http://h:1", "refused"])
        );
        assert_eq!(
            match_template("cannot connect to {}: {}", "cannot connect to : x"),
            None
        );
        assert_eq!(match_template("a {} b", "a x b c"), None);
        let msg = "moonbench bench: the server at http://h:1 is not ready after 3 s (last error: cannot connect to http://h:1: Connection refused (os error 111)).\n  some path";
        assert_eq!(
            zh_of_message(msg).unwrap(),
            "moonbench bench: 服务器 http://h:1 在 3 秒内没有就绪（最后一次错误：无法连接 http://h:1：连接被拒绝（os error 111））。\n  some path"
        );
        assert_eq!(zh_of_message("nothing the catalogue knows\nat all"), None);
        // A chart label's template (`request {}: {}`) does not match an error.
        let hub = "  the Hub: downloading https://h/t.json failed: request error: https://h/t.json: Dns Failed (HF_ENDPOINT=https://h, HF_HUB_OFFLINE to stay offline, HF_TOKEN for gated models; cache /c)";
        let zh = zh_of_message(hub).unwrap();
        assert!(
            zh.starts_with("  Hub：下载 https://h/t.json 失败：request error: "),
            "{zh}"
        );
        assert!(!zh.contains("请求"), "{zh}");
        assert_eq!(
            zh_of_message("--dataset-name custom: cannot read /x.jsonl: No such file or directory (os error 2)").unwrap(),
            "--dataset-name custom: 无法读取 /x.jsonl：没有这个文件或目录（os error 2）"
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
