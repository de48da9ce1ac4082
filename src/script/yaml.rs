//! YAML with line numbers: a document as JSON plus the line of every key and list
//! item, so configuration files (e.g. a sweep's `config.yaml`) can be validated with
//! messages that say `file:line` — in Rust or in Lua.

use std::collections::BTreeMap;

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};
use serde_json::{Map, Number, Value};

/// A loaded document.
#[derive(Debug, Clone, PartialEq)]
pub struct Located {
    /// The document as JSON.
    pub value: Value,
    /// Line (1-based) of every node by path: keys joined with `.`, list items by
    /// their 1-based index (`input_output.2.1`); the root is `""`.
    pub lines: BTreeMap<String, usize>,
}

fn join(path: &str, k: &str) -> String {
    if path.is_empty() {
        k.to_string()
    } else {
        format!("{path}.{k}")
    }
}

fn key_text(n: &MarkedYaml<'_>) -> String {
    match &n.data {
        YamlData::Value(Scalar::String(s)) => s.to_string(),
        YamlData::Value(Scalar::Integer(i)) => i.to_string(),
        YamlData::Value(Scalar::FloatingPoint(f)) => f.to_string(),
        YamlData::Value(Scalar::Boolean(b)) => b.to_string(),
        YamlData::Value(Scalar::Null) => "null".into(),
        YamlData::Representation(s, ..) => s.to_string(),
        _ => "?".into(),
    }
}

fn convert(
    n: &MarkedYaml<'_>,
    path: &str,
    lines: &mut BTreeMap<String, usize>,
) -> Result<Value, String> {
    lines.entry(path.to_string()).or_insert(n.span.start.line());
    Ok(match &n.data {
        YamlData::Value(s) => match s {
            Scalar::Null => Value::Null,
            Scalar::Boolean(b) => Value::Bool(*b),
            Scalar::Integer(i) => Value::Number((*i).into()),
            Scalar::FloatingPoint(f) => {
                let f = f.into_inner();
                if f.is_finite() {
                    Number::from_f64(f).map_or(Value::Null, Value::Number)
                } else {
                    Value::String(if f > 0.0 {
                        "inf".into()
                    } else if f < 0.0 {
                        "-inf".into()
                    } else {
                        "nan".into()
                    })
                }
            }
            Scalar::String(s) => Value::String(s.to_string()),
        },
        YamlData::Representation(s, ..) => Value::String(s.to_string()),
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(convert(item, &join(path, &(i + 1).to_string()), lines)?);
            }
            Value::Array(out)
        }
        YamlData::Mapping(m) => {
            let mut out = Map::new();
            for (k, v) in m.iter() {
                let key = key_text(k);
                let p = join(path, &key);
                lines.insert(p.clone(), k.span.start.line());
                let val = convert(v, &p, lines)?;
                lines.insert(p, k.span.start.line());
                out.insert(key, val);
            }
            Value::Object(out)
        }
        YamlData::Alias(_) => {
            return Err(format!(
                "line {}: YAML aliases are not supported",
                n.span.start.line()
            ));
        }
        YamlData::BadValue => {
            return Err(format!(
                "line {}: this value cannot be read",
                n.span.start.line()
            ));
        }
        _ => Value::Null,
    })
}

/// Parses YAML text; `name` (the file) prefixes error messages as `name:line:col`.
pub fn load(text: &str, name: &str) -> Result<Located, String> {
    let docs = MarkedYaml::load_from_str(text).map_err(|e| {
        let m = e.marker();
        format!(
            "{name}:{}:{}: YAML syntax error: {}",
            m.line(),
            m.col() + 1,
            e.info()
        )
    })?;
    let mut lines = BTreeMap::new();
    let value = match docs.first() {
        Some(d) => convert(d, "", &mut lines).map_err(|e| format!("{name}: {e}"))?,
        None => Value::Null,
    };
    Ok(Located { value, lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_and_lines() {
        let text = "# the seed's config\nmodel: Qwen/Qwen3-8B\nbase_url: \"http://localhost:8010\"\ninput_output:\n  - [256, 256]\n  - [1024, 128]\nrate: .inf\nflag: true\n";
        let l = load(text, "config.yaml").unwrap();
        assert_eq!(l.value["model"], "Qwen/Qwen3-8B");
        assert_eq!(l.value["input_output"][1][0], 1024);
        assert_eq!(l.value["rate"], "inf");
        assert_eq!(l.value["flag"], true);
        assert_eq!(l.lines["model"], 2);
        assert_eq!(l.lines["input_output"], 4);
        assert_eq!(l.lines["input_output.2"], 6);
        assert_eq!(l.lines["flag"], 8);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = load("model: x\ninput_output: [1, 2\n", "c.yaml").unwrap_err();
        assert!(e.starts_with("c.yaml:"), "{e}");
        assert!(e.contains("YAML syntax error"), "{e}");
        let e = load("a: 1\na: 2\n", "d.yaml").unwrap_err();
        assert!(
            e.contains("d.yaml:2:1:") && e.contains("duplicated key"),
            "{e}"
        );
    }
}
