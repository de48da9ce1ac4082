//! Chat templates: the Jinja template in a model's `tokenizer_config.json` (or
//! `chat_template.jinja`), rendered with minijinja the way transformers renders it
//! (`trim_blocks`, `lstrip_blocks`, loop controls, Python string methods,
//! `raise_exception`, `tojson` as Python's `json.dumps`, `strftime_now`).

use std::path::{Path, PathBuf};

use minijinja::{Environment, Error, ErrorKind, Value};
use serde_json::Value as Json;

/// A model's chat template and the special tokens it refers to.
pub struct ChatTemplate {
    env: Environment<'static>,
    bos_token: String,
    eos_token: String,
    /// Where the template came from.
    pub source: PathBuf,
}

impl std::fmt::Debug for ChatTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ChatTemplate({})", self.source.display())
    }
}

fn read_maybe_gz(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut out)
            .ok()?;
        Some(out)
    } else {
        String::from_utf8(bytes).ok()
    }
}

fn token_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Object(o) => o
            .get("content")
            .and_then(|c| c.as_str())
            .unwrap_or("")
            .to_string(),
        _ => String::new(),
    }
}

impl ChatTemplate {
    /// Looks for a chat template beside a tokenizer file: `chat_template.jinja`, then
    /// `chat_template` in `tokenizer_config.json` (or `.json.gz`). `Ok(None)` if none.
    pub fn find_beside(tokenizer_file: &Path) -> Result<Option<ChatTemplate>, String> {
        let dir = tokenizer_file.parent().unwrap_or(Path::new("."));
        let config_path = ["tokenizer_config.json", "tokenizer_config.json.gz"]
            .iter()
            .map(|n| dir.join(n))
            .find(|p| p.is_file());
        let config: Option<Json> = match &config_path {
            Some(p) => {
                let text =
                    read_maybe_gz(p).ok_or_else(|| format!("cannot read {}", p.display()))?;
                Some(
                    serde_json::from_str(&text)
                        .map_err(|e| format!("{}: not valid JSON: {e}", p.display()))?,
                )
            }
            None => None,
        };
        let bos = config
            .as_ref()
            .map(|c| token_text(&c["bos_token"]))
            .unwrap_or_default();
        let eos = config
            .as_ref()
            .map(|c| token_text(&c["eos_token"]))
            .unwrap_or_default();
        let jinja = dir.join("chat_template.jinja");
        let (source, path) = if let Some(t) = read_maybe_gz(&jinja) {
            (t, jinja)
        } else if let (Some(c), Some(p)) = (&config, &config_path) {
            match &c["chat_template"] {
                Json::String(s) => (s.clone(), p.clone()),
                // A list of named templates: use "default" (or the first).
                Json::Array(list) => {
                    let pick = list
                        .iter()
                        .find(|t| t["name"] == "default")
                        .or_else(|| list.first())
                        .and_then(|t| t["template"].as_str());
                    match pick {
                        Some(s) => (s.to_string(), p.clone()),
                        None => return Ok(None),
                    }
                }
                _ => return Ok(None),
            }
        } else {
            return Ok(None);
        };
        ChatTemplate::new(&source, bos, eos, path).map(Some)
    }

    /// Compiles a template.
    pub fn new(
        template: &str,
        bos_token: String,
        eos_token: String,
        source: PathBuf,
    ) -> Result<ChatTemplate, String> {
        let mut env = Environment::new();
        let syntax = env
            .syntax()
            .to_builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .build()
            .map_err(|e| e.to_string())?;
        env.set_syntax(syntax);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |msg: String| -> Result<Value, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, msg))
        });
        env.add_function("strftime_now", |fmt: String| {
            chrono::Local::now().format(&fmt).to_string()
        });
        env.add_filter(
            "tojson",
            |v: Value, kwargs: minijinja::value::Kwargs| -> Result<String, Error> {
                let indent: Option<usize> = kwargs.get("indent")?;
                let _: Option<bool> = kwargs.get("ensure_ascii")?;
                kwargs.assert_all_used()?;
                let j = serde_json::to_value(&v)
                    .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
                let s = match indent {
                    Some(n) => {
                        let ind = " ".repeat(n);
                        let mut buf = Vec::new();
                        let fmt = serde_json::ser::PrettyFormatter::with_indent(ind.as_bytes());
                        let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
                        serde::Serialize::serialize(&j, &mut ser)
                            .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
                        String::from_utf8(buf).unwrap_or_default()
                    }
                    None => python_json(&j),
                };
                Ok(s)
            },
        );
        env.add_template_owned("chat", template.to_string())
            .map_err(|e| {
                format!(
                    "the chat template in {} does not compile: {e}",
                    source.display()
                )
            })?;
        Ok(ChatTemplate {
            env,
            bos_token,
            eos_token,
            source,
        })
    }

    /// Renders `messages` (a JSON list of `{role, content}`). `extra` adds template
    /// variables (e.g. `enable_thinking`).
    pub fn render(
        &self,
        messages: &Json,
        add_generation_prompt: bool,
        extra: &serde_json::Map<String, Json>,
    ) -> Result<String, String> {
        let tmpl = self.env.get_template("chat").map_err(|e| e.to_string())?;
        let mut ctx = serde_json::Map::new();
        ctx.insert("messages".into(), messages.clone());
        ctx.insert(
            "add_generation_prompt".into(),
            Json::Bool(add_generation_prompt),
        );
        ctx.insert("bos_token".into(), Json::String(self.bos_token.clone()));
        ctx.insert("eos_token".into(), Json::String(self.eos_token.clone()));
        for (k, v) in extra {
            ctx.insert(k.clone(), v.clone());
        }
        let value: Value = serde::Deserialize::deserialize(Json::Object(ctx))
            .map_err(|e: serde_json::Error| e.to_string())?;
        tmpl.render(value)
            .map_err(|e| format!("the chat template ({}) failed: {e}", self.source.display()))
    }
}

/// JSON as Python's `json.dumps` writes it: `", "` and `": "` separators.
fn python_json(v: &Json) -> String {
    match v {
        Json::Array(a) => format!(
            "[{}]",
            a.iter().map(python_json).collect::<Vec<_>>().join(", ")
        ),
        Json::Object(o) => format!(
            "{{{}}}",
            o.iter()
                .map(|(k, v)| format!("{}: {}", Json::String(k.clone()), python_json(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_simple_template_like_transformers() {
        let t = ChatTemplate::new(
            "{% for m in messages %}\n<|{{ m.role }}|>{{ m.content | trim }}\n{% endfor %}\n{% if add_generation_prompt %}<|assistant|>{% endif %}",
            "<s>".into(),
            "</s>".into(),
            "test".into(),
        )
        .unwrap();
        let msgs = serde_json::json!([{"role": "user", "content": " hi "}]);
        assert_eq!(
            t.render(&msgs, true, &Default::default()).unwrap(),
            "<|user|>hi\n<|assistant|>"
        );
        let t = ChatTemplate::new(
            "{{ raise_exception('no system role') }}",
            "".into(),
            "".into(),
            "t".into(),
        )
        .unwrap();
        assert!(
            t.render(&msgs, false, &Default::default())
                .unwrap_err()
                .contains("no system role")
        );
    }

    #[test]
    fn tojson_matches_python() {
        assert_eq!(
            python_json(&serde_json::json!({"a": [1, "x"]})),
            r#"{"a": [1, "x"]}"#
        );
    }
}
