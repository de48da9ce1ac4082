//! Reading option tables from Lua strictly: every key must be known, and an
//! unknown key gets the nearest valid one suggested.

use std::cell::RefCell;

use mlua::{FromLua, Lua, Table, Value};

/// Levenshtein distance between two strings.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + (ca != *cb) as usize)
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The candidate closest to `word`, if close enough to be a likely typo. A
/// candidate that extends the word (`ttft` → `ttft_ms`) counts as a near match.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| {
            let prefix = word.len() >= 3 && (c.starts_with(word) || word.starts_with(c));
            (if prefix { 1 } else { edit_distance(word, c) }, c)
        })
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// An option table being read; [`Opts::finish`] rejects keys nobody asked for.
pub struct Opts<'a> {
    lua: &'a Lua,
    table: Table,
    what: &'a str,
    known: RefCell<Vec<&'static str>>,
}

impl<'a> Opts<'a> {
    /// Wraps `table`, the options of `what` (e.g. `mb.run`).
    pub fn new(lua: &'a Lua, table: Table, what: &'a str) -> Opts<'a> {
        Opts {
            lua,
            table,
            what,
            known: RefCell::new(Vec::new()),
        }
    }

    /// An optional option.
    pub fn get<T: FromLua>(&self, key: &'static str) -> mlua::Result<Option<T>> {
        self.known.borrow_mut().push(key);
        let v: Value = self.table.raw_get(key)?;
        if v.is_nil() {
            return Ok(None);
        }
        let tn = v.type_name();
        T::from_lua(v, self.lua).map(Some).map_err(|e| {
            let why = match &e {
                mlua::Error::FromLuaConversionError { to, message, .. } => {
                    format!(
                        "expected {to}{}",
                        message
                            .as_ref()
                            .map(|m| format!(" ({m})"))
                            .unwrap_or_default()
                    )
                }
                other => other.to_string(),
            };
            mlua::Error::runtime(format!(
                "{}: option '{key}' has the wrong type ({tn}): {why}",
                self.what
            ))
        })
    }

    /// A required option.
    pub fn req<T: FromLua>(&self, key: &'static str) -> mlua::Result<T> {
        self.get(key)?.ok_or_else(|| {
            mlua::Error::runtime(format!("{}: option '{key}' is required", self.what))
        })
    }

    /// What these are the options of (for messages).
    pub fn what(&self) -> &str {
        self.what
    }

    /// A raw value (no conversion).
    pub fn value(&self, key: &'static str) -> mlua::Result<Value> {
        self.known.borrow_mut().push(key);
        self.table.raw_get(key)
    }

    /// Fails on a key that was never read, suggesting the nearest known key.
    pub fn finish(self) -> mlua::Result<()> {
        let known = self.known.borrow();
        for pair in self.table.pairs::<Value, Value>() {
            let (k, _) = pair?;
            let name = match &k {
                Value::String(s) => s.to_string_lossy(),
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "{}: options must be named (key = value), got a {} key",
                        self.what,
                        other.type_name()
                    )));
                }
            };
            if !known.contains(&name.as_str()) {
                let hint = suggest(&name, known.iter().copied())
                    .map(|s| format!(" (did you mean '{s}'?)"))
                    .unwrap_or_else(|| format!("; valid options: {}", known.join(", ")));
                return Err(mlua::Error::runtime(format!(
                    "{}: unknown option '{name}'{hint}",
                    self.what
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            suggest("max_concurency", ["max_concurrency", "warmup"]),
            Some("max_concurrency")
        );
        assert_eq!(suggest("zzz", ["max_concurrency", "warmup"]), None);
        assert_eq!(suggest("ttft", ["ttft_ms", "itl_ms"]), Some("ttft_ms"));
    }

    #[test]
    fn unknown_keys_are_rejected_with_a_hint() {
        let lua = Lua::new();
        let t: Table = lua
            .load("return { rate = 3, burstyness = 1 }")
            .eval()
            .unwrap();
        let o = Opts::new(&lua, t, "mb.arrival.poisson");
        assert_eq!(o.get::<f64>("rate").unwrap(), Some(3.0));
        let _ = o.get::<f64>("burstiness").unwrap();
        let e = o.finish().unwrap_err().to_string();
        assert!(e.contains("did you mean 'burstiness'"), "{e}");
        let t: Table = lua.load("return { rate = 'fast' }").eval().unwrap();
        let o = Opts::new(&lua, t, "x");
        let e = o.get::<f64>("rate").unwrap_err().to_string();
        assert!(
            e.contains("option 'rate' has the wrong type (string)"),
            "{e}"
        );
    }
}
