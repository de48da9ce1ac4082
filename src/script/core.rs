//! The native module `moonbench.core`: the functions behind `mb.*`. Small utilities
//! live here; targets, datasets and runs are registered from their own files.

use std::io::Write;

use mlua::{Function, Lua, LuaSerdeExt, MultiValue, Table, Value, Variadic};

use super::opts::suggest;
use crate::clock;

/// Options for turning JSON into Lua: null becomes nil.
pub const TO_LUA: mlua::serde::SerializeOptions = mlua::serde::SerializeOptions::new()
    .serialize_none_to_null(false)
    .serialize_unit_to_null(false);

/// Converts a serde value to a Lua value (null → nil).
pub fn to_lua<T: serde::Serialize + ?Sized>(lua: &Lua, v: &T) -> mlua::Result<Value> {
    lua.to_value_with(v, TO_LUA)
}

/// Converts a Lua value to JSON (empty tables become `{}`).
pub fn to_json(lua: &Lua, v: Value) -> mlua::Result<serde_json::Value> {
    lua.from_value_with(
        v,
        mlua::serde::DeserializeOptions::new().deny_unsupported_types(false),
    )
}

/// Options of `mb.aggregate(dir, out, {...})`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateOpts {
    /// "csv" (default), "markdown" (or "md") or "json".
    format: Option<String>,
    /// Column names: "both" (default), "en" or "zh".
    header: Option<String>,
}

impl super::opts::LuaOptions for AggregateOpts {
    const WHAT: &'static str = "mb.aggregate";
}

/// Builds the `moonbench.core` table.
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("version", env!("CARGO_PKG_VERSION"))?;
    m.set(
        "env",
        lua.create_function(|lua, (name, default): (String, Option<Value>)| {
            Ok(match std::env::var(&name) {
                Ok(v) => Value::String(lua.create_string(v)?),
                Err(_) => default.unwrap_or(Value::Nil),
            })
        })?,
    )?;
    m.set(
        "now",
        lua.create_function(|_, ()| Ok(clock::now_ns() as f64 / 1e9))?,
    )?;
    m.set(
        "time",
        lua.create_function(|_, ()| {
            Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64()))
        })?,
    )?;
    m.set(
        "date",
        lua.create_function(|_, ()| Ok(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string()))?,
    )?;
    m.set(
        "sleep",
        lua.create_async_function(|_, secs: f64| async move {
            if secs > 0.0 && secs.is_finite() {
                tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
            }
            Ok(())
        })?,
    )?;
    m.set(
        "json_encode",
        lua.create_function(|lua, (v, pretty): (Value, Option<bool>)| {
            let j = to_json(lua, v)?;
            let s = if pretty == Some(true) {
                serde_json::to_string_pretty(&j)
            } else {
                serde_json::to_string(&j)
            };
            s.map_err(mlua::Error::external)
        })?,
    )?;
    m.set(
        "json_decode",
        lua.create_function(|lua, s: mlua::LuaString| {
            let v: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| mlua::Error::runtime(format!("mb.json.decode: invalid JSON: {e}")))?;
            to_lua(lua, &v)
        })?,
    )?;
    m.set("null", Value::NULL)?;
    m.set(
        "log",
        lua.create_function(|lua, args: Variadic<Value>| {
            let tostring: Function = lua.globals().get("tostring")?;
            let mut parts = Vec::with_capacity(args.len());
            for a in args {
                parts.push(tostring.call::<String>(a)?);
            }
            eprintln!(
                "[moonbench {:8.3}s] {}",
                clock::now_ns() as f64 / 1e9,
                parts.join(" ")
            );
            Ok(())
        })?,
    )?;
    m.set(
        "suggest",
        lua.create_function(|_, (word, cands): (String, Vec<String>)| {
            Ok(suggest(&word, cands.iter().map(|s| s.as_str())).map(str::to_string))
        })?,
    )?;
    m.set(
        "stop",
        lua.create_function(|lua, reason: Option<String>| {
            let env = lua.app_data_ref::<super::Env>().expect("env");
            let run = env.runs.borrow().last().cloned();
            match run {
                Some(r) => {
                    r.ask(reason.unwrap_or_else(|| "mb.stop()".into()));
                    Ok(())
                }
                None => Err(mlua::Error::runtime(
                    "mb.stop: no run in progress (call it from on_response or a scenario)",
                )),
            }
        })?,
    )?;
    m.set(
        "check_options",
        lua.create_function(|lua, (name, t): (String, Option<Table>)| {
            super::stdlib_opts::check_options(lua, &name, t)
        })?,
    )?;
    m.set(
        "is_tty",
        lua.create_function(|_, ()| Ok(std::io::IsTerminal::is_terminal(&std::io::stdout())))?,
    )?;
    m.set(
        "mkdir",
        lua.create_function(|_, path: String| {
            std::fs::create_dir_all(&path)
                .map_err(|e| mlua::Error::runtime(format!("cannot create directory {path}: {e}")))
        })?,
    )?;
    m.set(
        "exists",
        lua.create_function(|_, path: String| Ok(std::path::Path::new(&path).exists()))?,
    )?;
    m.set(
        "image_data_url",
        lua.create_function(|_, path: String| {
            crate::dataset::image_data_url(std::path::Path::new(&path))
                .map_err(mlua::Error::runtime)
        })?,
    )?;
    m.set(
        "bundled",
        lua.create_function(|_, path: String| Ok(super::embedded(&path)))?,
    )?;
    m.set(
        "yaml_load",
        lua.create_function(|lua, path: String| {
            // A file on disk, else a bundled file with that path (scripts/config.yaml).
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) => super::embedded(&path)
                    .map(str::to_string)
                    .ok_or_else(|| mlua::Error::runtime(format!("cannot read {path}: {e}")))?,
            };
            let doc = crate::yaml::load(&text, &path).map_err(mlua::Error::runtime)?;
            Ok((to_lua(lua, &doc.value)?, doc.lines))
        })?,
    )?;
    m.set(
        "yaml_decode",
        lua.create_function(|lua, (text, name): (String, Option<String>)| {
            let doc = crate::yaml::load(&text, name.as_deref().unwrap_or("yaml"))
                .map_err(mlua::Error::runtime)?;
            Ok((to_lua(lua, &doc.value)?, doc.lines))
        })?,
    )?;
    m.set(
        "script",
        lua.create_async_function(
            |lua, (path, argv): (String, Option<Vec<String>>)| async move {
                let argv = argv.unwrap_or_default();
                let src = super::Source::find(&path).map_err(mlua::Error::runtime)?;
                let (name, code) = src.load().map_err(mlua::Error::runtime)?;
                let func = lua
                    .load(code.as_ref())
                    .set_name(format!("@{name}"))
                    .into_function()?;
                let globals = lua.globals();
                let saved: Value = globals.get("arg")?;
                globals.set("arg", super::arg_table(&lua, &name, &argv)?)?;
                let args: MultiValue = argv
                    .iter()
                    .map(|a| lua.create_string(a).map(Value::String))
                    .collect::<mlua::Result<_>>()?;
                let r = func.call_async::<MultiValue>(args).await;
                globals.set("arg", saved)?;
                r
            },
        )?,
    )?;
    m.set(
        "http_get",
        lua.create_async_function(|lua, (url, timeout): (String, Option<f64>)| async move {
            let io = lua.app_data_ref::<super::Env>().expect("env").io.clone();
            let t = std::time::Duration::from_secs_f64(timeout.unwrap_or(5.0).max(0.01));
            let r = io
                .spawn(async move {
                    // The URL's path is requested on its host.
                    let mut base = crate::backend::BaseUrl::parse(&url)?;
                    let path = if base.prefix.is_empty() {
                        "/".to_string()
                    } else {
                        std::mem::take(&mut base.prefix)
                    };
                    let client = crate::backend::http::HttpClient::new(&base).await?;
                    match tokio::time::timeout(t, client.get(&path, &[])).await {
                        Ok(Ok((status, body))) => {
                            Ok((status, String::from_utf8_lossy(&body).into_owned()))
                        }
                        Ok(Err(e)) => Err(e.message),
                        Err(_) => Err(format!(
                            "no answer from {url} within {:.0} s",
                            t.as_secs_f64()
                        )),
                    }
                })
                .await
                .map_err(|e| mlua::Error::runtime(e.to_string()))?;
            Ok(match r {
                Ok((status, body)) => (
                    Value::Integer(status as i64),
                    Value::String(lua.create_string(body)?),
                ),
                Err(e) => (Value::Nil, Value::String(lua.create_string(e)?)),
            })
        })?,
    )?;
    m.set(
        "interrupted",
        lua.create_function(|_, ()| Ok(crate::engine::cancel::level() > 0))?,
    )?;
    m.set(
        "aggregate",
        lua.create_function(
            |lua, (dir, out, opts): (String, Option<String>, Option<Table>)| {
                use crate::output::aggregate::{Format, Header, collect, default_output, write};
                let o = super::opts::decode::<AggregateOpts>(lua, opts)?.opts;
                let format = Format::parse(o.format.as_deref().unwrap_or("csv"))
                    .map_err(mlua::Error::runtime)?;
                let header = Header::parse(o.header.as_deref().unwrap_or("both"))
                    .map_err(mlua::Error::runtime)?;
                let t = collect(std::path::Path::new(&dir)).map_err(mlua::Error::runtime)?;
                for (p, why) in &t.skipped {
                    eprintln!("warning: skipped {}: {why}", p.display());
                }
                if t.rows.is_empty() {
                    return Err(mlua::Error::runtime(format!(
                        "mb.aggregate: no result files in {dir}"
                    )));
                }
                let path = out
                    .map(std::path::PathBuf::from)
                    .unwrap_or_else(|| default_output(std::path::Path::new(&dir), format));
                write(&t, &path, format, header).map_err(mlua::Error::runtime)?;
                let rows = lua.create_table()?;
                for r in &t.rows {
                    rows.push(to_lua(lua, r)?)?;
                }
                Ok((path.display().to_string(), rows))
            },
        )?,
    )?;
    super::target::register(lua, &m)?;
    super::data::register(lua, &m)?;
    super::run::register(lua, &m)?;
    super::users::register(lua, &m)?;
    Ok(m)
}

/// Replaces `print` and `io.write` with versions that write through Rust's stdout,
/// so Lua output and moonbench's own output keep their order when piped.
pub fn install_print(lua: &Lua) -> mlua::Result<()> {
    let print = lua.create_function(|lua, args: MultiValue| {
        let tostring: Function = lua.globals().get("tostring")?;
        let mut out = std::io::stdout().lock();
        for (i, a) in args.into_iter().enumerate() {
            if i > 0 {
                let _ = out.write_all(b"\t");
            }
            let s: mlua::LuaString = tostring.call(a)?;
            let _ = out.write_all(&s.as_bytes());
        }
        let _ = out.write_all(b"\n");
        Ok(())
    })?;
    lua.globals().set("print", print)?;
    let io: Table = lua.globals().get("io")?;
    let write = lua.create_function(|lua, args: MultiValue| {
        let mut out = std::io::stdout().lock();
        for a in args {
            match a {
                Value::String(s) => {
                    let _ = out.write_all(&s.as_bytes());
                }
                Value::Integer(i) => {
                    let _ = write!(out, "{i}");
                }
                Value::Number(n) => {
                    let _ = write!(out, "{n}");
                }
                other => {
                    return Err(mlua::Error::runtime(format!(
                        "bad argument to 'write' (string expected, got {})",
                        other.type_name()
                    )));
                }
            }
        }
        let _ = out.flush();
        let io: Table = lua.globals().get("io")?;
        io.get::<Value>("stdout")
    })?;
    io.set("write", write)?;
    Ok(())
}
