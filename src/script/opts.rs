//! Reading option tables from Lua strictly: every key must be known, and an
//! unknown key gets the nearest valid one suggested.
//!
//! The one mechanism is [`decode`]: an option table becomes a Rust struct with
//! serde (`deny_unknown_fields`), so the struct is the whole truth about a
//! function's options — their names, types, defaults and docs (the API reference
//! is generated from the same structs with schemars). Values serde cannot carry
//! (functions, targets, request sets, tokenizers) are fields of type [`LuaObject`]
//! and are read back with [`Decoded::value`].

use std::collections::HashMap;

use mlua::{FromLua, Lua, Table, Value};
use serde::de::DeserializeOwned;

pub use crate::suggest::{edit_distance, suggest};

/// An option struct decoded from a Lua table by [`decode`].
pub trait LuaOptions: DeserializeOwned + schemars::JsonSchema {
    /// The function these are the options of, as scripts call it (`mb.run`).
    const WHAT: &'static str;
}

/// An option whose value stays a Lua value (a function, a target, a request set,
/// a tokenizer, a table read by Lua code): serde only notes it is there.
#[derive(Debug, Default, Clone, Copy)]
pub struct LuaObject;

impl<'de> serde::Deserialize<'de> for LuaObject {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        serde::de::IgnoredAny::deserialize(d).map(|_| LuaObject)
    }
}

impl schemars::JsonSchema for LuaObject {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "LuaObject".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "lua" })
    }
}

/// A decoded option table: the typed options and the table's raw values.
pub struct Decoded<T> {
    /// The typed options.
    pub opts: T,
    raw: HashMap<String, Value>,
}

impl<T: LuaOptions> Decoded<T> {
    /// The raw Lua value of option `key` (nil when absent).
    pub fn value(&self, key: &str) -> Value {
        self.raw.get(key).cloned().unwrap_or(Value::Nil)
    }

    /// Option `key` converted to `V` (a function, a userdata reference, ...);
    /// `None` when absent; a wrong type names the option.
    pub fn get<V: FromLua>(&self, lua: &Lua, key: &str) -> mlua::Result<Option<V>> {
        let v = self.value(key);
        if v.is_nil() {
            return Ok(None);
        }
        let tn = v.type_name();
        V::from_lua(v, lua).map(Some).map_err(|e| {
            let why = match &e {
                mlua::Error::FromLuaConversionError { to, .. } => format!("expected {to}"),
                other => other.to_string(),
            };
            mlua::Error::runtime(format!(
                "{}: option '{key}' has the wrong type ({tn}): {why}",
                T::WHAT
            ))
        })
    }

    /// Like [`Decoded::get`], but required.
    pub fn req<V: FromLua>(&self, lua: &Lua, key: &str) -> mlua::Result<V> {
        self.get(lua, key)?
            .ok_or_else(|| mlua::Error::runtime(format!("{}: option '{key}' is required", T::WHAT)))
    }
}

/// How a value serde cannot carry is shown to it (and so in type errors).
const OPAQUE: &str = "<lua object>";

/// Lua → JSON for option decoding: integral numbers become integers (Lua's `1e3`
/// is a count), functions and userdata become a placeholder, empty tables `{}`.
fn to_opts_json(v: Value) -> mlua::Result<serde_json::Value> {
    use serde_json::Value as J;
    Ok(match v {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(b),
        Value::Integer(i) => J::from(i),
        Value::Number(n) if n.fract() == 0.0 && n.abs() < 9.0e15 => J::from(n as i64),
        Value::Number(n) => serde_json::Number::from_f64(n).map_or(J::Null, J::Number),
        Value::String(s) => J::String(s.to_string_lossy()),
        Value::Table(t) => {
            let len = t.raw_len();
            let mut pairs = 0usize;
            for p in t.clone().pairs::<Value, Value>() {
                p?;
                pairs += 1;
            }
            if len > 0 && pairs == len {
                let mut a = Vec::with_capacity(len);
                for i in 1..=len {
                    a.push(to_opts_json(t.raw_get(i)?)?);
                }
                J::Array(a)
            } else {
                let mut m = serde_json::Map::new();
                for p in t.pairs::<Value, Value>() {
                    let (k, v) = p?;
                    let k = match k {
                        Value::String(s) => s.to_string_lossy(),
                        Value::Integer(i) => i.to_string(),
                        other => format!("<{} key>", other.type_name()),
                    };
                    m.insert(k, to_opts_json(v)?);
                }
                J::Object(m)
            }
        }
        Value::LightUserData(u) if u.0.is_null() => J::Null,
        _ => J::String(OPAQUE.into()),
    })
}

/// Decodes option table `t` (nil counts as `{}`) into `T`: an unknown key, a
/// missing required key or a wrong type is an error naming the function, the key
/// and, for a typo, the nearest valid key.
pub fn decode<T: LuaOptions>(lua: &Lua, t: Option<Table>) -> mlua::Result<Decoded<T>> {
    decode_with(lua, t, &[])
}

/// [`decode`], with `shared` keys that `T` does not hold but its caller reads
/// from [`Decoded::value`] (options common to a family of functions).
pub fn decode_with<T: LuaOptions>(
    _lua: &Lua,
    t: Option<Table>,
    shared: &[&str],
) -> mlua::Result<Decoded<T>> {
    let mut raw = HashMap::new();
    let mut obj = serde_json::Map::new();
    if let Some(t) = t {
        for p in t.pairs::<Value, Value>() {
            let (k, v) = p?;
            let Value::String(k) = k else {
                return Err(mlua::Error::runtime(format!(
                    "{}: options must be named (key = value), got a {} key",
                    T::WHAT,
                    k.type_name()
                )));
            };
            let k = k.to_string_lossy();
            if !shared.contains(&k.as_str()) {
                obj.insert(k.clone(), to_opts_json(v.clone())?);
            }
            raw.insert(k, v);
        }
    }
    let opts = serde_path_to_error::deserialize(serde_json::Value::Object(obj))
        .map_err(|e| mlua::Error::runtime(explain(T::WHAT, &e, shared)))?;
    Ok(Decoded { opts, raw })
}

/// The part of `d` that belongs to a family's shared options `P` (the `keys` `d`
/// was decoded with as shared): decoded into `P`, errors naming `T`'s function.
pub fn decode_part<P: LuaOptions, T: LuaOptions>(
    lua: &Lua,
    d: &Decoded<T>,
    keys: &[&str],
) -> mlua::Result<Decoded<P>> {
    let t = lua.create_table()?;
    for k in keys {
        t.raw_set(*k, d.value(k))?;
    }
    decode::<P>(lua, Some(t))
        .map_err(|e| mlua::Error::runtime(super::format_error(&e).replacen(P::WHAT, T::WHAT, 1)))
}

/// Validates a table against `T` without keeping the result (for option tables
/// that Lua code reads itself).
pub fn check<T: LuaOptions>(lua: &Lua, t: Option<Table>) -> mlua::Result<()> {
    decode::<T>(lua, t).map(|_| ())
}

/// A serde error as a person reads it.
fn explain(
    what: &str,
    e: &serde_path_to_error::Error<serde_json::Error>,
    shared: &[&str],
) -> String {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    let inner = inner.split(" at line ").next().unwrap_or(&inner);
    let at = |key: &str| {
        if path == "." || path.is_empty() {
            key.to_string()
        } else if key.is_empty() {
            path.clone()
        } else {
            format!("{path}.{key}")
        }
    };
    if let Some(rest) = inner.strip_prefix("unknown field `") {
        // `unknown field `x`, expected one of `a`, `b``: backticked names.
        let names: Vec<&str> = rest.split('`').collect();
        let bad = names[0];
        let mut valid: Vec<&str> = names.iter().skip(2).step_by(2).copied().collect();
        if !path.contains('.') {
            valid.extend(shared);
        }
        let hint = suggest(bad, valid.iter().copied())
            .map(|s| format!(" (did you mean '{s}'?)"))
            .unwrap_or_else(|| format!("; valid options: {}", valid.join(", ")));
        // serde's path includes the unknown key itself.
        let full = if path.ends_with(bad) {
            path.clone()
        } else {
            at(bad)
        };
        return format!("{what}: unknown option '{full}'{hint}");
    }
    if let Some(rest) = inner.strip_prefix("missing field `") {
        let key = rest.split('`').next().unwrap_or(rest);
        return format!("{what}: option '{}' is required", at(key));
    }
    let inner = inner.replace(&format!("string \"{OPAQUE}\""), "a Lua object");
    format!("{what}: option '{}': {inner}", at(""))
}

/// Serde helper for list options: Lua's `{}` is an empty list too.
pub fn seq<'de, D, V>(d: D) -> Result<V, D::Error>
where
    D: serde::Deserializer<'de>,
    V: DeserializeOwned + Default,
{
    use serde::Deserialize as _;
    let v = serde_json::Value::deserialize(d)?;
    if v.as_object().is_some_and(|m| m.is_empty()) {
        return Ok(V::default());
    }
    V::deserialize(v).map_err(serde::de::Error::custom)
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
        assert_eq!(
            suggest("vllm-rerenk", ["vllm", "vllm-rerank"]),
            Some("vllm-rerank")
        );
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        ttft_ms: Option<f64>,
    }

    #[derive(serde::Deserialize, schemars::JsonSchema)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        n: u32,
        #[serde(default)]
        rate: Option<f64>,
        #[serde(default, deserialize_with = "seq")]
        percentiles: Vec<f64>,
        #[serde(default)]
        slo: Option<Inner>,
        #[serde(default)]
        on_response: Option<LuaObject>,
    }

    impl LuaOptions for Example {
        const WHAT: &'static str = "mb.example";
    }

    fn try_decode(lua: &Lua, code: &str) -> Result<Decoded<Example>, String> {
        let t: Table = lua.load(code).eval().unwrap();
        decode::<Example>(lua, Some(t)).map_err(|e| e.to_string())
    }

    #[test]
    fn typed_options_name_the_function_the_key_and_the_fix() {
        let lua = Lua::new();
        let d = try_decode(
            &lua,
            "return { n = 1e3, percentiles = {}, on_response = print }",
        )
        .unwrap();
        assert_eq!(d.opts.n, 1000);
        assert!(d.opts.percentiles.is_empty());
        assert!(
            d.get::<mlua::Function>(&lua, "on_response")
                .unwrap()
                .is_some()
        );
        for (code, want) in [
            (
                "return { n = 1, rte = 2 }",
                "mb.example: unknown option 'rte' (did you mean 'rate'?)",
            ),
            (
                "return { n = 1, slo = { ttft = 2 } }",
                "unknown option 'slo.ttft' (did you mean 'ttft_ms'?)",
            ),
            ("return { rate = 2 }", "mb.example: option 'n' is required"),
            (
                "return { n = 'x' }",
                "mb.example: option 'n': invalid type: string \"x\"",
            ),
            (
                "return { n = 1.5 }",
                "mb.example: option 'n': invalid type: floating point",
            ),
            (
                "return { n = 1, rate = print }",
                "option 'rate': invalid type: a Lua object",
            ),
            (
                "return { n = 1, percentiles = 'p99' }",
                "option 'percentiles'",
            ),
            (
                "return { n = 1, zzzzzzzz = 1 }",
                "valid options: n, rate, percentiles, slo, on_response",
            ),
            ("return { 5 }", "options must be named"),
        ] {
            let e = try_decode(&lua, code).err().unwrap_or_default();
            assert!(e.contains(want), "{code}: {e}");
        }
    }
}
