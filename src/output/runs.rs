//! Run folders, the seed toolkit's layout: each sweep writes its result files
//! into `results/{model_short}_{YYYYmmdd_HHMMSS}/`, and `aggregate` and
//! `report` with no path read the newest one.
//!
//! What it holds: [`model_short`] (the seed's `get_model_short_name`),
//! [`create`] (a new, never reused folder), [`list`] (the run folders under a
//! parent, newest first, with how many JSON files each holds), [`choose`] (what
//! `aggregate`/`report` read for `--dir`, a path, or nothing), and [`listing`]
//! (the `--list` text).

use crate::i18n::trf;
use std::path::{Path, PathBuf};

/// The seed's short model name: the last path component, without the
/// quantization suffixes `-awq`, `-gptq`, `-gguf`; characters a file name
/// cannot hold become `_`.
pub fn model_short(model: &str) -> String {
    let base = model
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(model);
    let mut s = base.to_string();
    for suffix in ["-awq", "-gptq", "-gguf"] {
        s = s.replace(suffix, "");
    }
    let s: String = s
        .chars()
        .map(|c| {
            if c.is_control() || "\\/:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s.is_empty() { "model".into() } else { s }
}

/// Creates `parent/{model_short}_{YYYYmmdd_HHMMSS}` (local time), with `_2`,
/// `_3`, ... when a folder of that second exists: a run never writes into
/// another's folder.
pub fn create(parent: &Path, model: &str) -> Result<PathBuf, String> {
    let stamp = chrono::Local::now().format("%Y%m%d_%H%M%S").to_string();
    let base = format!("{}_{stamp}", model_short(model));
    std::fs::create_dir_all(parent)
        .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    for n in 1..1000 {
        let name = if n == 1 {
            base.clone()
        } else {
            format!("{base}_{n}")
        };
        let p = parent.join(name);
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", p.display())),
        }
    }
    Err(format!(
        "cannot create a new run folder in {}",
        parent.display()
    ))
}

/// One run folder found under a parent.
#[derive(Debug, Clone)]
pub struct RunFolder {
    /// Its path.
    pub path: PathBuf,
    /// Its name (`Qwen3-8B_20261204_101500`).
    pub name: String,
    /// Its start from the name (`20261204_101500`), if it has one.
    pub stamp: Option<String>,
    /// `*.json` files directly in it.
    pub json_files: usize,
}

/// The `YYYYmmdd_HHMMSS` at the end of a run folder's name (before any `_N`).
fn stamp_of(name: &str) -> Option<String> {
    let core = match name.rsplit_once('_') {
        Some((head, n))
            if !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()) =>
        {
            head
        }
        _ => name,
    };
    let b = core.as_bytes();
    if b.len() < 15 {
        return None;
    }
    let tail = &core[core.len() - 15..];
    let ok = tail.bytes().enumerate().all(|(i, c)| {
        if i == 8 {
            c == b'_'
        } else {
            c.is_ascii_digit()
        }
    });
    ok.then(|| tail.to_string())
}

/// The folders under `parent` that hold result JSON files, newest first: by the
/// time in their names (the seed's folders and ours), then by modification time.
pub fn list(parent: &Path) -> Vec<RunFolder> {
    let Ok(rd) = std::fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut out: Vec<(RunFolder, std::time::SystemTime)> = rd
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| {
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let json_files = super::files::json_files(&path).map_or(0, |v| v.len());
            let mtime = e
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (json_files > 0).then(|| {
                (
                    RunFolder {
                        stamp: stamp_of(&name),
                        path,
                        name,
                        json_files,
                    },
                    mtime,
                )
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (b.0.stamp.as_deref(), b.1, &b.0.name).cmp(&(a.0.stamp.as_deref(), a.1, &a.0.name))
    });
    out.into_iter().map(|(f, _)| f).collect()
}

/// What a reader of results uses, and why (for its first line of output).
#[derive(Debug, Clone)]
pub struct Chosen {
    /// The folder or file to read (folders are read recursively).
    pub path: PathBuf,
    /// Said to the user when the choice was made for them (the newest folder).
    pub note: Option<String>,
}

/// What `aggregate` and `report` read: `dir` (a run folder's name under
/// `parent`, or a path), else `path` as given, else the newest run folder under
/// `parent`, else `parent` itself (a flat layout). The error lists the run
/// folders there are.
pub fn choose(parent: &Path, dir: Option<&str>, path: Option<&Path>) -> Result<Chosen, String> {
    if let Some(d) = dir {
        let as_path = PathBuf::from(d);
        let p = if as_path.is_dir() {
            as_path
        } else {
            parent.join(d)
        };
        if !p.is_dir() {
            let have = list(parent);
            let names: Vec<&str> = have.iter().map(|f| f.name.as_str()).collect();
            let hint = crate::suggest::suggest(d, names.iter().copied())
                .map(|s| trf(" (did you mean {}?)", &[&s]))
                .unwrap_or_default();
            return Err(if names.is_empty() {
                trf(
                    "--dir {}: no such run folder, and {} has none",
                    &[&d, &parent.display()],
                )
            } else {
                trf(
                    "--dir {}: no such run folder in {}{}; there are: {}",
                    &[&d, &parent.display(), &hint, &names.join(", ")],
                )
            });
        }
        return Ok(Chosen {
            path: p,
            note: None,
        });
    }
    if let Some(p) = path {
        return Ok(Chosen {
            path: p.to_path_buf(),
            note: None,
        });
    }
    let folders = list(parent);
    match folders.first() {
        Some(newest) => Ok(Chosen {
            path: newest.path.clone(),
            note: Some(trf(
                "using the newest run folder, {} (of {} in {}; --list shows them, --dir NAME picks one)",
                &[&newest.path.display(), &folders.len(), &parent.display()],
            )),
        }),
        None => Ok(Chosen {
            path: parent.to_path_buf(),
            note: None,
        }),
    }
}

/// The `--list` text, in the current language ([`crate::i18n::with_lang`]): one
/// line per run folder under `parent`, newest first.
pub fn listing(parent: &Path) -> String {
    let folders = list(parent);
    if folders.is_empty() {
        return trf("no run folders in {}", &[&parent.display()]) + "\n";
    }
    let mut s = trf("run folders in {} (newest first):", &[&parent.display()]) + "\n";
    for (i, f) in folders.iter().enumerate() {
        let files = trf("{} JSON files", &[&f.json_files]);
        s.push_str(&format!("  {}. {}  ({files})\n", i + 1, f.name));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_and_stamps() {
        assert_eq!(model_short("Qwen/Qwen3-8B-AWQ"), "Qwen3-8B-AWQ");
        assert_eq!(model_short("TheBloke/Llama-2-7b-gptq"), "Llama-2-7b");
        assert_eq!(model_short("/models/deepseek-r1-awq/"), "deepseek-r1");
        assert_eq!(model_short("a:b"), "a_b");
        assert_eq!(
            stamp_of("Qwen3-8B_20261204_101500").as_deref(),
            Some("20261204_101500")
        );
        assert_eq!(
            stamp_of("Qwen3-8B_20261204_101500_2").as_deref(),
            Some("20261204_101500")
        );
        assert_eq!(stamp_of("old-results"), None);
    }

    #[test]
    fn newest_first_and_never_reused() {
        let dir = std::env::temp_dir().join(format!("moonbench-runs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for name in [
            "B_20260101_000000",
            "A_20261201_120000",
            "notes",
            "empty_20991231_000000",
        ] {
            std::fs::create_dir_all(dir.join(name)).unwrap();
        }
        for name in ["B_20260101_000000", "A_20261201_120000", "notes"] {
            std::fs::write(dir.join(name).join("r.json"), "{}").unwrap();
        }
        let names: Vec<String> = list(&dir).into_iter().map(|f| f.name).collect();
        assert_eq!(names, ["A_20261201_120000", "B_20260101_000000", "notes"]);
        let a = create(&dir, "Org/M").unwrap();
        let b = create(&dir, "Org/M").unwrap();
        assert_ne!(a, b);
        assert!(b.file_name().unwrap().to_string_lossy().starts_with("M_"));
        let c = choose(&dir, None, None).unwrap();
        assert!(c.path.ends_with("A_20261201_120000") && c.note.is_some());
        let e = choose(&dir, Some("A_20261201_12000"), None).unwrap_err();
        assert!(e.contains("did you mean A_20261201_120000?"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
