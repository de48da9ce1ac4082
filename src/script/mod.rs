//! The Lua embedding: the only place that knows mlua types. It creates the Lua
//! state (on the calling thread, with a local executor for async functions) and the
//! multi-threaded I/O runtime, registers the native `moonbench.core` module, makes
//! `require` find the bundled `stdlib/` (a user's own file of the same name wins),
//! and runs a script with its arguments.
//!
//! Files: `core.rs` (the module's registration lists; small utilities, `mb.json`,
//! `mb.yaml`, `mb.stop`), `target.rs` (`mb.target`, `mb.sim`), `data.rs`
//! (tokenizers, request sets, `mb.dataset`), `run.rs` (`mb.run`, results,
//! `mb.arrival`), `users.rs` (`mb.users`), `session.rs` (what `mb.run` and
//! `mb.users` share), `opts.rs` (the one typed option mechanism),
//! `stdlib_opts.rs` (option structs of the Lua-written functions), `reference.rs`
//! (the generated API reference), `yaml.rs` (YAML with line numbers, for `mb.yaml`).

/// Sets named Rust functions into a Lua table under their Lua names: one
/// namespace's registration list, `functions!(lua, table, { "name" => sync f,
/// "other" => async g })`.
macro_rules! functions {
    ($lua:expr, $t:expr, { $($name:literal => $kind:ident $f:path),* $(,)? }) => {
        $( $t.set($name, functions!(@make $lua, $kind, $f))?; )*
    };
    (@make $lua:expr, sync, $f:path) => { $lua.create_function($f)? };
    (@make $lua:expr, async, $f:path) => { $lua.create_async_function($f)? };
}

pub mod core;
pub mod data;
pub mod opts;
pub mod reference;
pub mod run;
pub mod session;
pub mod stdlib_opts;
pub mod target;
pub mod users;
pub mod yaml;

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use mlua::{Function, Lua, MultiValue, Table, Value};

use crate::engine::cancel;
use crate::sim::SimHandle;

include!(concat!(env!("OUT_DIR"), "/embedded.rs"));

/// A bundled file by its path relative to the project root (`scripts/x.lua`).
pub fn embedded(path: &str) -> Option<&'static str> {
    let p = path.trim_start_matches("./");
    EMBEDDED.iter().find(|(k, _)| *k == p).map(|(_, v)| *v)
}

/// Names of all bundled files.
pub fn embedded_names() -> Vec<&'static str> {
    EMBEDDED.iter().map(|(k, _)| *k).collect()
}

/// State shared by the native functions (Lua app data).
pub struct Env {
    /// Handle of the multi-threaded I/O runtime.
    pub io: tokio::runtime::Handle,
    /// Its number of worker threads.
    pub io_threads: usize,
    /// Simulators started by the script; they live as long as the script.
    pub sims: std::cell::RefCell<Vec<Arc<SimHandle>>>,
    /// Runs in progress, innermost last: what `mb.stop` stops.
    pub runs: std::cell::RefCell<Vec<Rc<RunStop>>>,
}

/// How a script stops a run in progress (see `mb.stop`).
pub struct RunStop {
    /// Why, once asked (the first reason wins).
    pub reason: std::cell::RefCell<Option<String>>,
    /// Stops the run: it sends nothing more; requests in flight finish.
    pub stop: Box<dyn Fn()>,
}

impl RunStop {
    /// Asks the run to stop for `why` (a second ask keeps the first reason).
    pub fn ask(&self, why: String) {
        let mut r = self.reason.borrow_mut();
        if r.is_none() {
            *r = Some(why);
            (self.stop)();
        }
    }
}

/// Registers a run with [`Env::runs`] while it lives.
pub struct ActiveRun<'a> {
    lua: &'a Lua,
    /// The run's stop.
    pub stop: Rc<RunStop>,
}

impl<'a> ActiveRun<'a> {
    /// Pushes `stop` as the innermost run.
    pub fn new(lua: &'a Lua, stop: Box<dyn Fn()>) -> ActiveRun<'a> {
        let stop = Rc::new(RunStop {
            reason: Default::default(),
            stop,
        });
        if let Some(env) = lua.app_data_ref::<Env>() {
            env.runs.borrow_mut().push(stop.clone());
        }
        ActiveRun { lua, stop }
    }

    /// The reason the run was stopped, if it was.
    pub fn reason(&self) -> Option<String> {
        self.stop.reason.borrow().clone()
    }
}

impl Drop for ActiveRun<'_> {
    fn drop(&mut self) {
        if let Some(env) = self.lua.app_data_ref::<Env>() {
            env.runs.borrow_mut().retain(|r| !Rc::ptr_eq(r, &self.stop));
        }
    }
}

/// Where a script comes from.
pub enum Source {
    /// A file on disk.
    File(PathBuf),
    /// A bundled file (name, contents).
    Embedded(&'static str, &'static str),
}

impl Source {
    /// Finds a script: a file on disk first, else a bundled file with that path.
    pub fn find(path: &str) -> Result<Source, String> {
        let p = Path::new(path);
        if p.is_file() {
            return Ok(Source::File(p.to_path_buf()));
        }
        let name = path.trim_start_matches("./");
        if let Some((k, v)) = EMBEDDED.iter().find(|(k, _)| *k == name) {
            return Ok(Source::Embedded(k, v));
        }
        let bundled: Vec<&str> = EMBEDDED
            .iter()
            .map(|(k, _)| *k)
            .filter(|k| k.starts_with("scripts/") || k.starts_with("examples/"))
            .filter(|k| k.ends_with(".lua"))
            .collect();
        Err(format!(
            "script not found: {path}\nbundled scripts: {}",
            bundled.join(", ")
        ))
    }

    /// ` bench`, ` sweep` or ` check` for the script behind that command, else "".
    fn command(&self) -> &'static str {
        match self {
            Source::Embedded("scripts/benchmark_serving.lua", _) => " bench",
            Source::Embedded("scripts/sweep.lua", _) => " sweep",
            Source::Embedded("scripts/check_server.lua", _) => " check",
            _ => "",
        }
    }

    fn name(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Embedded(k, _) => k.to_string(),
        }
    }

    /// The script's name (for `file:line` messages) and its code.
    pub fn load(&self) -> Result<(String, std::borrow::Cow<'static, str>), String> {
        match self {
            Source::File(p) => std::fs::read_to_string(p)
                .map(|c| (self.name(), c.into()))
                .map_err(|e| format!("cannot read {}: {e}", p.display())),
            Source::Embedded(k, v) => Ok((k.to_string(), (*v).into())),
        }
    }

    /// The directory holding the script (`.` for bundled scripts).
    pub fn dir(&self) -> String {
        match self {
            Source::File(p) => p
                .parent()
                .map(|d| d.display().to_string())
                .filter(|d| !d.is_empty())
                .unwrap_or(".".into()),
            Source::Embedded(..) => ".".into(),
        }
    }
}

/// Sets the global `arg` table: the script's name at 0, its arguments from 1.
pub fn arg_table(lua: &Lua, name: &str, args: &[String]) -> mlua::Result<Table> {
    let arg = lua.create_table()?;
    arg.set(0, name)?;
    for (i, a) in args.iter().enumerate() {
        arg.set(i + 1, a.as_str())?;
    }
    Ok(arg)
}

/// Number of I/O worker threads: `MOONBENCH_IO_THREADS`, else the number of cores.
pub fn io_threads() -> usize {
    std::env::var("MOONBENCH_IO_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

/// Builds the multi-threaded I/O runtime (threads named `mb-io`).
pub fn io_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name(crate::engine::health::IO_THREAD_PREFIX)
        .enable_all()
        .build()
}

/// Runs a script with arguments; returns the process exit code (0 ok, 1 error,
/// 130 interrupted). Errors are printed as `file:line: message`.
pub fn run_script(source: Source, args: Vec<String>) -> i32 {
    crate::clock::epoch();
    crate::engine::os::raise_fd_limit();
    let threads = io_threads();
    let io = match io_runtime(threads) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("moonbench: cannot start the I/O runtime: {e}");
            return 1;
        }
    };
    cancel::install(io.handle());
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("local runtime");
    let zh = crate::i18n::wants_zh(&args) || crate::i18n::is_zh();
    let code = {
        let lua = match new_lua(Env {
            io: io.handle().clone(),
            io_threads: threads,
            sims: Default::default(),
            runs: Default::default(),
        }) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("moonbench: {}", format_error(&e));
                return 1;
            }
        };
        let result = local.block_on(exec(&lua, &source, args));
        let code = match result {
            Ok(()) => 0,
            Err(e) => {
                let mut msg = format_error(&e);
                if !(msg.starts_with("moonbench") || msg.contains(".lua:")) {
                    msg = format!("moonbench{}: {msg}", source.command());
                }
                // In Chinese too, as far as the message catalogue knows its lines.
                crate::i18n::with_lang(zh, || crate::i18n::eprint_error(&msg));
                1
            }
        };
        cancel::signal_exit_code().unwrap_or(code)
    };
    io.shutdown_timeout(std::time::Duration::from_millis(200));
    code
}

async fn exec(lua: &Lua, source: &Source, args: Vec<String>) -> mlua::Result<()> {
    let (name, code) = source.load().map_err(mlua::Error::runtime)?;
    // The script's own directory comes first in the module path.
    let dir = source.dir();
    let package: Table = lua.globals().get("package")?;
    let mut path = format!("{dir}/?.lua;{dir}/?/init.lua;");
    if let Ok(extra) = std::env::var("MOONBENCH_PATH") {
        for d in extra.split(':').filter(|d| !d.is_empty()) {
            path.push_str(&format!("{d}/?.lua;{d}/?/init.lua;"));
        }
    }
    path.push_str(&package.get::<String>("path")?);
    package.set("path", path)?;
    lua.globals().set("arg", arg_table(lua, &name, &args)?)?;
    let func = lua
        .load(code.as_ref())
        .set_name(format!("@{name}"))
        .into_function()?;
    let argv: MultiValue = args
        .iter()
        .map(|a| lua.create_string(a).map(Value::String))
        .collect::<mlua::Result<_>>()?;
    func.call_async::<()>(argv).await
}

/// Creates a Lua state with `moonbench.core` registered and bundled modules
/// reachable through `require`.
pub fn new_lua(env: Env) -> mlua::Result<Lua> {
    let lua = Lua::new();
    lua.set_app_data(env);
    let core_table = core::module(&lua)?;
    let package: Table = lua.globals().get("package")?;
    let preload: Table = package.get("preload")?;
    let core_fn = lua.create_function(move |_, ()| Ok(core_table.clone()))?;
    preload.set("moonbench.core", core_fn)?;
    // Searcher for bundled modules, after the file searchers so user files win.
    let searchers: Table = package.get("searchers")?;
    let searcher = lua.create_function(|lua, name: String| {
        let rel = name.replace('.', "/");
        for cand in [
            format!("stdlib/{rel}.lua"),
            format!("stdlib/{rel}/init.lua"),
        ] {
            if let Some(code) = embedded(&cand) {
                let f = lua
                    .load(code)
                    .set_name(format!("@{cand}"))
                    .into_function()?;
                return Ok((Value::Function(f), Value::String(lua.create_string(&cand)?)));
            }
        }
        Ok((
            Value::String(lua.create_string(format!("\n\tno bundled module 'stdlib/{rel}.lua'"))?),
            Value::Nil,
        ))
    })?;
    searchers.raw_insert(searchers.raw_len() as i64 + 1, searcher)?;
    core::install_print(&lua)?;
    Ok(lua)
}

/// Runs a Lua snippet in a fresh state (no I/O runtime needed): for tests.
pub fn eval_snippet(code: &str) -> Result<String, String> {
    let io = io_runtime(1).map_err(|e| e.to_string())?;
    let local = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let lua = new_lua(Env {
        io: io.handle().clone(),
        io_threads: 1,
        sims: Default::default(),
        runs: Default::default(),
    })
    .map_err(|e| format_error(&e))?;
    let f = lua
        .load(code)
        .set_name("@snippet")
        .into_function()
        .map_err(|e| format_error(&e))?;
    let r = local
        .block_on(f.call_async::<Value>(()))
        .map_err(|e| format_error(&e))?;
    let tostring: Function = lua.globals().get("tostring").map_err(|e| e.to_string())?;
    let s: String = tostring.call(r).map_err(|e| e.to_string())?;
    drop(lua);
    io.shutdown_timeout(std::time::Duration::from_millis(100));
    Ok(s)
}

/// Whether a chunk is one of moonbench's bundled scripts or stdlib modules: an
/// error raised there is about the user's flags or server, so its location is
/// not shown (the message names the flag, file or field).
fn bundled(file: &str) -> bool {
    file.starts_with("scripts/") || file.starts_with("stdlib/") || file.starts_with("moonbench")
}

/// The first `file:line` of the user's Lua code in a traceback.
fn first_location(traceback: &str) -> Option<String> {
    for line in traceback.lines().skip(1) {
        let l = line.trim();
        if l.starts_with("[C]") || l.starts_with("[string") || l.starts_with("__mlua") {
            continue;
        }
        if bundled(l) {
            continue;
        }
        let mut parts = l.splitn(3, ':');
        if let (Some(file), Some(line_no)) = (parts.next(), parts.next()) {
            if !file.is_empty()
                && line_no.chars().all(|c| c.is_ascii_digit())
                && !line_no.is_empty()
            {
                return Some(format!("{file}:{line_no}"));
            }
        }
    }
    None
}

/// Whether a traceback passes through a bundled script (and, when
/// [`first_location`] found none, only through bundled scripts).
fn called_from_bundled(traceback: &str) -> bool {
    traceback.lines().skip(1).any(|l| bundled(l.trim()))
}

/// An API error raised for a bundled script (`bench`, `sweep`, `check`) speaks of
/// the flags the script was given, not of the Lua call the user never wrote:
/// `mb.dataset.sharegpt: cannot read F` becomes `--dataset-name sharegpt: cannot
/// read F`; any other `mb.xxx: ` prefix is dropped.
fn api_to_flags(msg: &str) -> String {
    let Some(rest) = msg.strip_prefix("mb.") else {
        return msg.to_string();
    };
    let Some((api, tail)) = rest.split_once(": ") else {
        return msg.to_string();
    };
    if !api
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return msg.to_string();
    }
    let Some(name) = api.strip_prefix("dataset.") else {
        return tail.to_string();
    };
    let mut tail = tail.to_string();
    for (ds, opt, flag) in DATASET_FLAGS {
        if *ds == name || ds.is_empty() {
            tail = tail.replace(&format!("`{opt}`"), flag);
        }
    }
    // The Lua function's name, as the flag spells the dataset.
    let shown = if name == "random_rerank" {
        "random-rerank"
    } else {
        name
    };
    format!("--dataset-name {shown}: {tail}")
}

/// Which `bench` flag feeds which option of `mb.dataset.*` in
/// scripts/benchmark_serving.lua (dataset, option, flag; "" for every dataset):
/// dataset errors name options in backticks, and `bench` shows them as flags.
pub const DATASET_FLAGS: &[(&str, &str, &str)] = &[
    ("", "path", "--dataset-path"),
    ("", "n", "--num-prompts"),
    ("random", "input_len", "--random-input-len"),
    ("random", "output_len", "--random-output-len"),
    ("random", "range_ratio", "--random-range-ratio"),
    ("random", "output_range_ratio", "--random-range-ratio"),
    ("random", "prefix_len", "--random-prefix-len"),
    ("random", "batch_size", "--random-batch-size"),
    ("random_rerank", "input_len", "--random-input-len"),
    ("random_rerank", "range_ratio", "--random-range-ratio"),
    ("random_rerank", "batch_size", "--random-batch-size"),
    ("sonnet", "input_len", "--sonnet-input-len"),
    ("sonnet", "output_len", "--sonnet-output-len"),
    ("sonnet", "prefix_len", "--sonnet-prefix-len"),
    ("sharegpt", "output_len", "--sharegpt-output-len"),
    ("custom", "output_len", "--custom-output-len"),
    ("custom_image", "output_len", "--custom-output-len"),
    ("custom_audio", "output_len", "--custom-output-len"),
    (
        "custom_image",
        "client_side_data",
        "--custom-ensure-client-side-data",
    ),
    (
        "prefix_repetition",
        "prefix_len",
        "--prefix-repetition-prefix-len",
    ),
    (
        "prefix_repetition",
        "suffix_len",
        "--prefix-repetition-suffix-len",
    ),
    (
        "prefix_repetition",
        "num_prefixes",
        "--prefix-repetition-num-prefixes",
    ),
    (
        "prefix_repetition",
        "output_len",
        "--prefix-repetition-output-len",
    ),
    ("spec_bench", "output_len", "--spec-bench-output-len"),
    ("mooncake", "block_size", "--trace-block-size"),
    ("timed_trace", "block_size", "--timed-trace-chunk-hash-size"),
];

/// `msg` without a leading `file:line: ` of a bundled script.
fn strip_bundled_location(msg: &str) -> &str {
    let mut parts = msg.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(f), Some(n), Some(rest))
            if bundled(f) && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) =>
        {
            rest.trim_start()
        }
        _ => msg,
    }
}

fn has_location(msg: &str) -> bool {
    let mut parts = msg.splitn(3, ':');
    matches!((parts.next(), parts.next(), parts.next()), (Some(f), Some(n), Some(_)) if !f.contains(' ') && !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()))
}

/// Formats a Lua error for a person: `file:line: message`, without tracebacks.
pub fn format_error(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { traceback, cause } => {
            let msg = format_error(cause);
            match first_location(traceback) {
                Some(loc) if !has_location(&msg) => format!("{loc}: {msg}"),
                Some(_) => msg,
                None if called_from_bundled(traceback) => api_to_flags(&msg),
                None => msg,
            }
        }
        mlua::Error::RuntimeError(m) => {
            let (m, traceback) = m.split_once("\nstack traceback:").unwrap_or((m, ""));
            // An error raised inside a C function (`ipairs(nil)`'s iterator, …) has
            // no position of its own: the user's line from the traceback.
            match first_location(&format!("stack traceback:{traceback}")) {
                Some(loc) if !has_location(m) => format!("{loc}: {m}"),
                _ => strip_bundled_location(m).to_string(),
            }
        }
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::WithContext { context, cause } => {
            format!("{context}: {}", format_error(cause))
        }
        mlua::Error::ExternalError(inner) => inner.to_string(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each mapping names a real `bench` flag that benchmark_serving.lua passes to
    /// that option (`opt = args.flag_name`), so the map cannot drift from the script.
    #[test]
    fn dataset_flags_match_the_bench_script() {
        let flags = embedded("stdlib/moonbench/bench_flags.lua").unwrap();
        let script = embedded("scripts/benchmark_serving.lua").unwrap();
        for (_, opt, flag) in DATASET_FLAGS {
            assert!(
                flags.contains(&format!("\"{flag}\"")),
                "{flag} is not a bench flag"
            );
            let arg = flag.trim_start_matches("--").replace('-', "_");
            // --random-range-ratio is parsed first (a number or JSON per side).
            let uses = [
                format!("{opt} = args.{arg}"),
                format!("{opt} = dataset_path()"),
                format!("{opt} = range_in"),
                format!("{opt} = range_out"),
            ];
            assert!(
                uses.iter().any(|u| script.contains(u.as_str()))
                    || (*opt == "n" && script.contains("n = n")),
                "benchmark_serving.lua does not pass {flag} as {opt}"
            );
        }
    }

    #[test]
    fn api_errors_of_bundled_scripts_name_flags() {
        assert_eq!(
            api_to_flags(
                "mb.dataset.random: `input_len` plus `prefix_len` must give at least one token"
            ),
            "--dataset-name random: --random-input-len plus --random-prefix-len must give at least one token"
        );
        assert_eq!(
            api_to_flags("mb.dataset.sonnet: `input_len` 5 is not longer"),
            "--dataset-name sonnet: --sonnet-input-len 5 is not longer"
        );
        assert_eq!(api_to_flags("mb.target: bad url"), "bad url");
        assert_eq!(api_to_flags("no prefix: x"), "no prefix: x");
    }
}
