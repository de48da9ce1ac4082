//! The native module `moonbench.core`: the functions behind `mb.*`. Small utilities
//! live here; targets, datasets and runs are registered from their own files.

use std::io::Write;

use mlua::{Function, Lua, LuaSerdeExt, MultiValue, Table, Value, Variadic};

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

/// Builds the `moonbench.core` table: each namespace from its registration
/// list (`mb.json`, `mb.yaml` here; `mb.dataset` in `data.rs`, `mb.arrival` in
/// `run.rs`).
pub fn module(lua: &Lua) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    m.set("version", env!("CARGO_PKG_VERSION"))?;
    functions!(lua, m, {
        "env" => sync env,
        "shard" => sync shard,
        "now" => sync now,
        "time" => sync time,
        "date" => sync date,
        "sleep" => async sleep,
        "log" => sync log,
        "suggest" => sync suggest,
        "stop" => sync stop,
        "check_options" => sync check_options,
        "mkdir" => sync mkdir,
        "exists" => sync exists,
        "image_data_url" => sync image_data_url,
        "bundled" => sync bundled,
        "script" => async script,
        "http_get" => async http_get,
        "interrupted" => sync interrupted,
        "aggregate" => sync aggregate,
        "read_result" => sync read_result,
        "model_short" => sync model_short,
        "default_lang" => sync default_lang,
        "tr" => sync tr,
        "run_folder" => sync run_folder,
        "run_folders" => sync run_folders,
    });
    let json = lua.create_table()?;
    functions!(lua, json, {
        "encode" => sync json_encode,
        "decode" => sync json_decode,
    });
    json.set("null", Value::NULL)?;
    m.set("json", json)?;
    let yaml = lua.create_table()?;
    functions!(lua, yaml, {
        "load" => sync yaml_load,
        "decode" => sync yaml_decode,
    });
    m.set("yaml", yaml)?;
    super::target::register(lua, &m)?;
    super::data::register(lua, &m)?;
    super::run::register(lua, &m)?;
    super::users::register(lua, &m)?;
    Ok(m)
}

/// `mb.env(name [, default])`: an environment variable, or `default`.
fn env(lua: &Lua, (name, default): (String, Option<Value>)) -> mlua::Result<Value> {
    Ok(match std::env::var(&name) {
        Ok(v) => Value::String(lua.create_string(v)?),
        Err(_) => default.unwrap_or(Value::Nil),
    })
}

/// `mb.shard()`: `{ index, count }` of this process's shard (`{ index = 0,
/// count = 1 }` when the run is not sharded).
fn shard(lua: &Lua, _: ()) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    let s = crate::engine::shard::current();
    t.set("index", s.map_or(0, |s| s.index))?;
    t.set("count", s.map_or(1, |s| s.count))?;
    Ok(t)
}

/// `mb.now()`: the monotonic clock, in seconds.
fn now(_: &Lua, _: ()) -> mlua::Result<f64> {
    Ok(clock::now_ns() as f64 / 1e9)
}

/// `mb.time()`: wall-clock Unix time, in seconds.
fn time(_: &Lua, _: ()) -> mlua::Result<f64> {
    Ok(std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64()))
}

/// `mb.date()`: local time as `YYYYmmdd-HHMMSS` (vLLM's result-file format).
fn date(_: &Lua, _: ()) -> mlua::Result<String> {
    Ok(chrono::Local::now().format("%Y%m%d-%H%M%S").to_string())
}

/// `mb.sleep(s)`: pauses this coroutine (requests in flight go on).
async fn sleep(_: Lua, secs: f64) -> mlua::Result<()> {
    if secs > 0.0 && secs.is_finite() {
        tokio::time::sleep(std::time::Duration::from_secs_f64(secs)).await;
    }
    Ok(())
}

/// `mb.json.encode(v [, pretty])`.
fn json_encode(lua: &Lua, (v, pretty): (Value, Option<bool>)) -> mlua::Result<String> {
    let j = to_json(lua, v)?;
    let s = if pretty == Some(true) {
        serde_json::to_string_pretty(&j)
    } else {
        serde_json::to_string(&j)
    };
    s.map_err(mlua::Error::external)
}

/// `mb.json.decode(s)`: JSON null becomes nil.
fn json_decode(lua: &Lua, s: mlua::LuaString) -> mlua::Result<Value> {
    let v: serde_json::Value = serde_json::from_slice(&s.as_bytes())
        .map_err(|e| mlua::Error::runtime(format!("mb.json.decode: invalid JSON: {e}")))?;
    to_lua(lua, &v)
}

/// `mb.log(...)`: a time-stamped line on stderr.
fn log(lua: &Lua, args: Variadic<Value>) -> mlua::Result<()> {
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
}

/// `mb.suggest(word, candidates)`: the nearest candidate, if close.
fn suggest(_: &Lua, (word, cands): (String, Vec<String>)) -> mlua::Result<Option<String>> {
    Ok(super::opts::suggest(&word, cands.iter().map(|s| s.as_str())).map(str::to_string))
}

/// `mb.stop([reason])`: stops the innermost run in progress.
fn stop(lua: &Lua, reason: Option<String>) -> mlua::Result<()> {
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
}

/// `mb.tr(english [, lang])`: `english` in `lang` (default: the user's language)
/// from moonbench's one message catalogue (`src/i18n/messages.zh.tsv`; a
/// newline is written `\n` there). A text the catalogue lacks comes back as
/// it is; a test checks that every text the bundled scripts pass has its line.
fn tr(_: &Lua, (en, lang): (String, Option<String>)) -> mlua::Result<String> {
    let zh = match lang.as_deref() {
        None => crate::i18n::default_lang() == "zh",
        Some("zh") => true,
        Some("en") => false,
        Some(other) => {
            return Err(mlua::Error::runtime(format!(
                "mb.tr: lang must be \"en\" or \"zh\", not {other:?}"
            )));
        }
    };
    if !zh {
        return Ok(en);
    }
    Ok(crate::i18n::zh_of(&en).unwrap_or(en))
}

/// `core.check_options(name, t)`: validates a Lua-written function's options.
fn check_options(lua: &Lua, (name, t): (String, Option<Table>)) -> mlua::Result<()> {
    super::stdlib_opts::check_options(lua, &name, t)
}

/// `mb.mkdir(path)`: creates a directory and its parents.
fn mkdir(_: &Lua, path: String) -> mlua::Result<()> {
    std::fs::create_dir_all(&path)
        .map_err(|e| mlua::Error::runtime(format!("cannot create directory {path}: {e}")))
}

/// `mb.exists(path)`.
fn exists(_: &Lua, path: String) -> mlua::Result<bool> {
    Ok(std::path::Path::new(&path).exists())
}

/// `mb.image_data_url(path)`: a local image as a data URL.
fn image_data_url(_: &Lua, path: String) -> mlua::Result<String> {
    crate::dataset::image_data_url(std::path::Path::new(&path)).map_err(mlua::Error::runtime)
}

/// `mb.bundled(path)`: a bundled file's text, or nil.
fn bundled(_: &Lua, path: String) -> mlua::Result<Option<&'static str>> {
    Ok(super::embedded(&path))
}

/// `mb.yaml.load(path)`: a YAML file (or a bundled one) and the line of every key.
fn yaml_load(
    lua: &Lua,
    path: String,
) -> mlua::Result<(Value, std::collections::BTreeMap<String, usize>)> {
    // A file on disk, else a bundled file with that path (scripts/config.yaml).
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) => super::embedded(&path)
            .map(str::to_string)
            .ok_or_else(|| mlua::Error::runtime(format!("cannot read {path}: {e}")))?,
    };
    let doc = super::yaml::load(&text, &path).map_err(mlua::Error::runtime)?;
    Ok((to_lua(lua, &doc.value)?, doc.lines))
}

/// `mb.yaml.decode(text [, name])`: YAML text and the line of every key.
fn yaml_decode(
    lua: &Lua,
    (text, name): (String, Option<String>),
) -> mlua::Result<(Value, std::collections::BTreeMap<String, usize>)> {
    let doc = super::yaml::load(&text, name.as_deref().unwrap_or("yaml"))
        .map_err(mlua::Error::runtime)?;
    Ok((to_lua(lua, &doc.value)?, doc.lines))
}

/// `mb.script(path [, argv])`: runs another script with arguments; returns what it returns.
async fn script(lua: Lua, (path, argv): (String, Option<Vec<String>>)) -> mlua::Result<MultiValue> {
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
}

/// `mb.http_get(url [, timeout])`: status and body, or nil and the reason.
async fn http_get(lua: Lua, (url, timeout): (String, Option<f64>)) -> mlua::Result<(Value, Value)> {
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
                Ok(Ok((status, body))) => Ok((status, String::from_utf8_lossy(&body).into_owned())),
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
}

/// `mb.interrupted()`: whether Ctrl-C was pressed.
fn interrupted(_: &Lua, _: ()) -> mlua::Result<bool> {
    Ok(crate::engine::cancel::level() > 0)
}

/// `mb.read_result(path)`: a result file as a table, or nil and why it is not one
/// (the reader `aggregate`, `report` and `compare` use).
fn read_result(lua: &Lua, path: String) -> mlua::Result<(Value, Option<String>)> {
    match crate::output::files::read(std::path::Path::new(&path)) {
        Ok(r) => Ok((to_lua(lua, &serde_json::Value::Object(r.data))?, None)),
        Err(why) => Ok((Value::Nil, Some(format!("{path}: {why}")))),
    }
}

/// `mb.default_lang()`: "zh" or "en", from MOONBENCH_LANG or the locale.
fn default_lang(_: &Lua, _: ()) -> mlua::Result<&'static str> {
    Ok(crate::i18n::default_lang())
}

/// `mb.model_short(model)`: the seed's short model name for run folders.
fn model_short(_: &Lua, model: String) -> mlua::Result<String> {
    Ok(crate::output::runs::model_short(&model))
}

/// `mb.run_folder(parent, model)`: creates a new run folder and returns its path.
fn run_folder(_: &Lua, (parent, model): (String, String)) -> mlua::Result<String> {
    crate::output::runs::create(std::path::Path::new(&parent), &model)
        .map(|p| p.display().to_string())
        .map_err(mlua::Error::runtime)
}

/// `mb.run_folders(parent)`: the run folders holding results, newest first.
fn run_folders(lua: &Lua, parent: String) -> mlua::Result<Table> {
    let out = lua.create_table()?;
    for f in crate::output::runs::list(std::path::Path::new(&parent)) {
        let t = lua.create_table()?;
        t.set("path", f.path.display().to_string())?;
        t.set("name", f.name)?;
        t.set("json_files", f.json_files)?;
        out.push(t)?;
    }
    Ok(out)
}

/// `mb.aggregate(dir [, out, opts])`: the result files of `dir` as a table file; returns its path and rows.
fn aggregate(
    lua: &Lua,
    (dir, out, opts): (String, Option<String>, Option<Table>),
) -> mlua::Result<(String, Table)> {
    use crate::output::aggregate::{Format, Header, collect, default_output, write};
    let o = super::opts::decode::<AggregateOpts>(lua, opts)?.opts;
    let format =
        Format::parse(o.format.as_deref().unwrap_or("csv")).map_err(mlua::Error::runtime)?;
    let header =
        Header::parse(o.header.as_deref().unwrap_or("both")).map_err(mlua::Error::runtime)?;
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
