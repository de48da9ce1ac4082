//! Reading result files back: the one reader behind `aggregate`, `report`,
//! `compare` and `mb.aggregate` — a file (or every `*.json` in a folder and the
//! folders under it) that is
//! a benchmark result (a JSON object with `completed` and `duration`), or the
//! reason it is not — and the two facts read the same way everywhere: numbers
//! (vLLM writes an infinite rate as `"inf"`) and the lengths in a seed-style file
//! name (`..._io1024x128_mc8.json`).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// One result file read back.
#[derive(Debug, Clone)]
pub struct ResultFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its file name.
    pub name: String,
    /// Its JSON object.
    pub data: Map<String, Value>,
}

/// Whether a JSON object is a benchmark result.
pub fn is_result(o: &Map<String, Value>) -> bool {
    o.contains_key("completed") && o.contains_key("duration")
}

/// Reads one result file; the error says why it is not one (without the path).
pub fn read(path: &Path) -> Result<ResultFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let data = match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(o)) if is_result(&o) => o,
        Ok(Value::Object(_)) => {
            return Err("not a benchmark result (no completed/duration keys)".into());
        }
        Ok(_) => return Err("not a benchmark result (not a JSON object)".into()),
        Err(e) => return Err(format!("not valid JSON ({e})")),
    };
    Ok(ResultFile {
        path: path.to_path_buf(),
        name: path.file_name().map_or(path.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        }),
        data,
    })
}

/// The `*.json` files of `dir` (not hidden ones), sorted by name (not recursive).
pub fn json_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let rd = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?;
    let mut v: Vec<PathBuf> = rd
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json"))
        // Hidden files (a run folder's .sweep.json) are not results.
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    v.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    Ok(v)
}

/// Orders names as people count: runs of digits by their value, so `mc2`
/// comes before `mc16` (plain text order puts `mc16` first).
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut x, mut y) = (a.chars().peekable(), b.chars().peekable());
    loop {
        match (x.peek().copied(), y.peek().copied()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(c), Some(d)) if c.is_ascii_digit() && d.is_ascii_digit() => {
                let take = |it: &mut std::iter::Peekable<std::str::Chars>| {
                    let mut s = String::new();
                    while let Some(c) = it.peek().copied().filter(char::is_ascii_digit) {
                        s.push(c);
                        it.next();
                    }
                    s
                };
                let (m, n) = (take(&mut x), take(&mut y));
                let (mt, nt) = (m.trim_start_matches('0'), n.trim_start_matches('0'));
                let o = mt
                    .len()
                    .cmp(&nt.len())
                    .then_with(|| mt.cmp(nt))
                    .then_with(|| m.len().cmp(&n.len()));
                if o.is_ne() {
                    return o;
                }
            }
            (Some(c), Some(d)) => {
                if c != d {
                    return c.cmp(&d);
                }
                x.next();
                y.next();
            }
        }
    }
}

/// The `*.json` files of `dir` and of every folder under it (a results folder
/// of run folders), each folder's files sorted by name, the folder's own first.
pub fn json_files_under(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut out = json_files(dir)?;
    let mut subs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read directory {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort_by(|a, b| natural_cmp(&a.to_string_lossy(), &b.to_string_lossy()));
    for s in subs {
        out.extend(json_files_under(&s)?);
    }
    Ok(out)
}

/// Reads result files; a folder contributes its `*.json` files and those of the
/// folders under it. Returns the
/// results and, to warn about, every file (or folder) that is not one, with why.
pub fn read_all(paths: &[PathBuf]) -> (Vec<ResultFile>, Vec<(PathBuf, String)>) {
    let mut ok = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        let files = if p.is_dir() {
            match json_files_under(p) {
                Ok(v) => v,
                Err(e) => {
                    skipped.push((p.clone(), e));
                    continue;
                }
            }
        } else {
            vec![p.clone()]
        };
        for f in files {
            match read(&f) {
                Ok(r) => ok.push(r),
                Err(e) => skipped.push((f, e)),
            }
        }
    }
    (ok, skipped)
}

/// A number of a result (`"inf"` is infinity); `None` when absent or not one.
pub fn number(o: &Map<String, Value>, key: &str) -> Option<f64> {
    match o.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s == "inf" => Some(f64::INFINITY),
        _ => None,
    }
}

/// Numbers that follow `tag` in a file name (`io1024x128` → [1024, 128]).
pub fn numbers_after(name: &str, tag: &str) -> Option<Vec<u64>> {
    let i = name.find(tag)? + tag.len();
    let rest = &name[i..];
    let first: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    if first.is_empty() {
        return None;
    }
    let mut v = vec![first.parse().ok()?];
    let after = &rest[first.len()..];
    if let Some(r) = after.strip_prefix('x') {
        let second: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        v.push(second.parse().ok()?);
    }
    Some(v)
}

/// The input and output lengths a seed-style name carries (`io1024x128`).
pub fn io_lengths(name: &str) -> Option<(u64, u64)> {
    match numbers_after(name, "io")?.as_slice() {
        [i, o] => Some((*i, *o)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn natural_order_counts_digits() {
        let mut v = vec![
            "r_mc16.json",
            "r_mc2.json",
            "r_mc1.json",
            "r_mc8.json",
            "r_mc4.json",
            "a.json",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "a.json",
                "r_mc1.json",
                "r_mc2.json",
                "r_mc4.json",
                "r_mc8.json",
                "r_mc16.json"
            ]
        );
        assert!(natural_cmp("x010", "x10").is_gt() && natural_cmp("x9", "x10").is_lt());
    }

    #[test]
    fn names_and_numbers() {
        assert_eq!(
            numbers_after("bench_io1024x128_mc8_np80.json", "io"),
            Some(vec![1024, 128])
        );
        assert_eq!(
            numbers_after("bench_io1024x128_mc8_np80.json", "_mc"),
            Some(vec![8])
        );
        assert_eq!(numbers_after("vllm-8.0qps.json", "io"), None);
        assert_eq!(io_lengths("x_io512x64.json"), Some((512, 64)));
        assert_eq!(io_lengths("x_io512.json"), None);
        let o: Map<String, Value> =
            serde_json::from_str(r#"{"request_rate": "inf", "completed": 3}"#).unwrap();
        assert_eq!(number(&o, "request_rate"), Some(f64::INFINITY));
        assert_eq!(number(&o, "completed"), Some(3.0));
        assert_eq!(number(&o, "x"), None);
    }

    #[test]
    fn reads_results_and_says_why_others_are_not() {
        let dir = std::env::temp_dir().join(format!("mb-files-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.json"), r#"{"completed": 1, "duration": 2.0}"#).unwrap();
        std::fs::write(dir.join("b.json"), r#"{"x": 1}"#).unwrap();
        std::fs::write(dir.join("c.json"), "[1]").unwrap();
        std::fs::write(dir.join("d.json"), "{").unwrap();
        std::fs::write(dir.join("e.txt"), "ignored").unwrap();
        let (ok, skipped) = read_all(std::slice::from_ref(&dir));
        assert_eq!(ok.len(), 1);
        assert_eq!(ok[0].name, "a.json");
        let why: Vec<&str> = skipped.iter().map(|(_, w)| w.as_str()).collect();
        assert_eq!(why.len(), 3, "{why:?}");
        assert!(why[0].contains("no completed/duration"), "{why:?}");
        assert!(why[1].contains("not a JSON object"), "{why:?}");
        assert!(why[2].contains("not valid JSON"), "{why:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
