//! `mb.users{...}`: closed-loop virtual users. Each user is a Lua coroutine running
//! the script's `scenario(u)`; `u:chat{...}` / `u:complete{...}` hand a request to
//! the native engine (`engine/users.rs`) and suspend the coroutine until its record
//! is back, so thousands of users share one Lua state while the I/O runtime does
//! the streaming and timestamping. `u:sleep(s)` is think time; `u:prompt(n)` is n
//! tokens of random text from the run's tokenizer.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use mlua::{Function, Lua, Table};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::data::request_from_lua;
use super::format_error;
use super::opts::{LuaObject, LuaOptions};
use super::run::{LuaResult, secs};
use super::session::Common;
use crate::clock;
use crate::engine::cancel;
use crate::engine::measure::Sink;
use crate::engine::progress::Progress;
use crate::engine::users::{Sender, Session, SessionSpec};
use crate::metrics::UserTag;
use crate::output::result::RunInfo;
use crate::tokenizer::pool::WordPool;

/// The error a user's calls raise once the run is over (duration reached, Ctrl-C,
/// or another user's script error); it ends the user's coroutine quietly.
const OVER: &str = "moonbench: this users run is over";

struct UserState {
    conversation: u64,
    turn: u32,
    rng: ChaCha8Rng,
}

struct Shared {
    sender: Sender,
    users: RefCell<Vec<UserState>>,
    conversations: Cell<u64>,
    stop: Cell<bool>,
    deadline_ns: Option<u64>,
    pool: Option<Arc<WordPool>>,
}

impl Shared {
    fn over(&self) -> bool {
        self.stop.get()
            || cancel::level() > 0
            || self.deadline_ns.is_some_and(|d| clock::now_ns() >= d)
    }

    /// Sleeps until `until_ns`, or less if the run ends first; true if it ended.
    async fn sleep_until(&self, until_ns: u64) -> bool {
        let end = self.deadline_ns.map_or(until_ns, |d| d.min(until_ns));
        let mut lvl = cancel::subscribe();
        let now = clock::now_ns();
        if end > now {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_nanos(end - now)) => {}
                _ = lvl.wait_for(|v| *v > 0) => {}
            }
        }
        self.over()
    }
}

fn is_over(e: &mlua::Error) -> bool {
    e.to_string().contains(OVER)
}

fn user_index(u: &Table) -> mlua::Result<usize> {
    let id: usize = u.raw_get("id").map_err(|_| {
        mlua::Error::runtime(
            "u:chat/u:complete/u:sleep/u:prompt must be called as methods, with ':' (u:chat{...})",
        )
    })?;
    Ok(id.saturating_sub(1))
}

/// The table a request's caller gets (times in seconds): success, status, error,
/// text, ttft, ttfa, tpot, e2el, itls, prompt_tokens, output_tokens,
/// reasoning_tokens, user, conversation, turn, request_id. Built field by field:
/// it is on every user's path, so it skips the full record's arrays.
fn answer_table(lua: &Lua, rec: &crate::metrics::RequestRecord) -> mlua::Result<Table> {
    let t = lua.create_table_with_capacity(0, 16)?;
    t.raw_set("success", rec.success())?;
    t.raw_set("status", rec.status)?;
    if let Some(e) = &rec.error {
        t.raw_set("error", e.message.as_str())?;
        t.raw_set("error_kind", e.count_key(rec.status))?;
    }
    t.raw_set("text", rec.text.as_str())?;
    t.raw_set("ttft", rec.ttft())?;
    t.raw_set("ttfa", rec.ttfa())?;
    t.raw_set("tpot", rec.tpot())?;
    t.raw_set("e2el", rec.e2el())?;
    t.raw_set("itls", lua.create_sequence_from(rec.itls())?)?;
    t.raw_set("prompt_tokens", rec.prompt_tokens)?;
    t.raw_set("output_tokens", rec.output_tokens)?;
    t.raw_set("reasoning_tokens", rec.reasoning_tokens)?;
    t.raw_set("request_id", rec.request_id.as_str())?;
    if let Some(u) = &rec.user {
        t.raw_set("user", u.user)?;
        t.raw_set("conversation", u.conversation)?;
        t.raw_set("turn", u.turn)?;
    }
    Ok(t)
}

async fn send(
    lua: Lua,
    sh: Rc<Shared>,
    u: Table,
    t: Table,
    what: &'static str,
) -> mlua::Result<Table> {
    if sh.over() {
        return Err(mlua::Error::runtime(OVER));
    }
    let i = user_index(&u)?;
    let req = request_from_lua(&lua, t, what, sh.sender.tokenizer())?;
    let tag = {
        let mut users = sh.users.borrow_mut();
        let st = &mut users[i];
        st.turn += 1;
        UserTag {
            user: i as u32 + 1,
            conversation: st.conversation,
            turn: st.turn,
        }
    };
    let rec = sh.sender.send(req, tag).await;
    answer_table(&lua, &rec)
}

fn methods(lua: &Lua, sh: &Rc<Shared>) -> mlua::Result<Table> {
    let m = lua.create_table()?;
    let s = sh.clone();
    m.set(
        "chat",
        lua.create_async_function(move |lua, (u, t): (Table, Table)| {
            send(lua, s.clone(), u, t, "u:chat")
        })?,
    )?;
    let s = sh.clone();
    m.set(
        "complete",
        lua.create_async_function(move |lua, (u, t): (Table, Table)| {
            send(lua, s.clone(), u, t, "u:complete")
        })?,
    )?;
    let s = sh.clone();
    m.set(
        "sleep",
        lua.create_async_function(move |_, (_u, secs): (Table, f64)| {
            let s = s.clone();
            async move {
                if !(secs >= 0.0 && secs.is_finite()) {
                    return Err(mlua::Error::runtime(format!(
                        "u:sleep: seconds must be a number >= 0, got {secs}"
                    )));
                }
                if s.sleep_until(clock::now_ns() + clock::ns_of_secs(secs))
                    .await
                {
                    return Err(mlua::Error::runtime(OVER));
                }
                Ok(())
            }
        })?,
    )?;
    let s = sh.clone();
    m.set(
        "prompt",
        lua.create_function(move |_, (u, n): (Table, usize)| {
            let pool = s.pool.as_ref().ok_or_else(|| {
                mlua::Error::runtime(
                    "u:prompt: the target's tokenizer has no pool of whole-word tokens to draw from",
                )
            })?;
            let i = user_index(&u)?;
            let start = s.users.borrow_mut()[i].rng.random_range(0..pool.len() as u32);
            let mut text = String::new();
            let len = pool.len() as u32;
            pool.push_text((0..n as u32).map(|j| (start + j) % len), &mut text);
            Ok(text)
        })?,
    )?;
    Ok(m)
}

#[allow(clippy::too_many_arguments)]
async fn run_user(
    lua: Lua,
    sh: Rc<Shared>,
    scenario: Function,
    meta: Table,
    i: usize,
    start_ns: u64,
    iterations: Option<u64>,
) -> mlua::Result<()> {
    if sh.sleep_until(start_ns).await {
        return Ok(());
    }
    let u = lua.create_table()?;
    u.raw_set("id", i + 1)?;
    u.set_metatable(Some(meta))?;
    let mut it = 0u64;
    while iterations.is_none_or(|n| it < n) && !sh.over() {
        it += 1;
        {
            let c = sh.conversations.get() + 1;
            sh.conversations.set(c);
            let mut users = sh.users.borrow_mut();
            users[i].conversation = c;
            users[i].turn = 0;
        }
        u.raw_set("iteration", it)?;
        let th = lua.create_thread(scenario.clone())?;
        match th.into_async::<()>(u.clone())?.await {
            Ok(()) => {}
            Err(e) if is_over(&e) => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Options of `mb.users` (plus the result options).
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Lua-object and shared fields are read through `Decoded`
pub struct UsersOpts {
    /// Virtual users (each runs `scenario`; also the largest concurrency). Required.
    count: usize,
    /// `function(u)`: what one user does in one iteration; `u:chat{...}`,
    /// `u:complete{...}`, `u:prompt(n)`, `u:sleep(s)`; `u.id` (1-based),
    /// `u.iteration` (1-based). Required.
    scenario: LuaObject,
    /// Times each user runs the scenario (default 1 when no duration is given).
    iterations: Option<u64>,
    /// Seconds after which no user starts another request (requests in flight finish).
    duration: Option<f64>,
    /// Users started per second (default: all at once).
    spawn_rate: Option<f64>,
    /// Seconds over which all users are started, evenly (instead of spawn_rate).
    ramp: Option<f64>,
    /// Seed of `u:prompt` (default 0).
    seed: Option<u64>,
    /// Run only this process's shard of the users (`mb.shard()`: user i when i mod count = index, at its own start time); false runs them all (default true).
    shard: Option<bool>,
}

impl LuaOptions for UsersOpts {
    const WHAT: &'static str = "mb.users";
}

/// `mb.users`: the result, and the error of a scenario that stopped it (raised
/// with the result by the Lua wrapper in moonbench.lua).
async fn lua_users(lua: Lua, t: Table) -> mlua::Result<(LuaResult, Option<String>)> {
    let (d, c) = super::session::begin::<UsersOpts>(&lua, t)?;
    let o = &d.opts;
    let count = o.count;
    let scenario: Option<Function> = d.get(&lua, "scenario")?;
    let duration = secs("mb.users", "duration", o.duration, None)?;
    let mut iterations = o.iterations;
    let spawn_rate = o.spawn_rate;
    let ramp = secs("mb.users", "ramp", o.ramp, None)?;
    let seed = o.seed.unwrap_or(0);
    let scenario = scenario.ok_or_else(|| {
        mlua::Error::runtime(
            "mb.users: option 'scenario' is required (scenario = function(u) local r = u:chat{ messages = ... } end)",
        )
    })?;
    if count == 0 {
        return Err(mlua::Error::runtime("mb.users: count must be at least 1"));
    }
    if spawn_rate.is_some() && ramp.is_some() {
        return Err(mlua::Error::runtime(
            "mb.users: give spawn_rate (users started per second) or ramp (seconds to start them all), not both",
        ));
    }
    if let Some(r) = spawn_rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        return Err(mlua::Error::runtime(format!(
            "mb.users: spawn_rate must be a number > 0, got {r}"
        )));
    }
    if duration.is_none() && iterations.is_none() {
        iterations = Some(1);
    }
    // User i starts at offset(i): all at once, spawn_rate per second, or spread over ramp.
    let offset = move |i: usize| -> f64 {
        match (spawn_rate, ramp) {
            (Some(r), _) => i as f64 / r,
            (_, Some(d)) => d.as_secs_f64() * i as f64 / count as f64,
            _ => 0.0,
        }
    };

    // A sharded run: this process runs the users i with i mod N = I (each with the
    // id, seed and start time it has in the whole run).
    let shard = crate::engine::shard::current().filter(|_| o.shard.unwrap_or(true));
    let mine: Vec<usize> = (0..count)
        .filter(|i| shard.is_none_or(|s| s.owns(*i as u64)))
        .collect();
    if mine.is_empty() {
        return Err(mlua::Error::runtime(format!(
            "mb.users: {count} users cannot be split over {} shards (each needs at least 1); \
             add users or use fewer shards",
            shard.map_or(1, |s| s.count)
        )));
    }
    let tg = &c.target;
    let spec = SessionSpec {
        target: tg.target.clone(),
        tokenizer: tg.tokenizer.clone(),
        users: mine.len(),
        ready_timeout: c.ready_timeout,
        records_path: c.records_path.clone(),
        keep_text: c.keep_text,
        bounded: c.bounded.then(|| c.options.slo.clone()),
        server_metrics: c.server_metrics,
        io_threads: c.io_threads,
        grace: c.grace,
        start_at: crate::engine::shard::take_start_at(),
    };
    if let Some(e) = crate::engine::os::fd_budget_error(mine.len() as u64, tg.sim.is_some(), true) {
        return Err(mlua::Error::runtime(format!(
            "mb.users: {count} users: {e}"
        )));
    }
    let pool = tg.tokenizer.word_pool().ok();
    let info = RunInfo {
        max_concurrency: Some(mine.len()),
        shard,
        start_at: spec.start_at,
        ..c.info()
    };
    let (io, options, progress) = (c.io.clone(), c.options.clone(), c.progress);
    drop(c);
    let sinks: Vec<Box<dyn Sink>> = vec![Box::new(Progress::new(None, progress))];
    let session = Session::open(spec, io, sinks)
        .await
        .map_err(|e| mlua::Error::runtime(format!("mb.users: {e}")))?;
    let t0 = session.t0_ns();
    let sh = Rc::new(Shared {
        sender: session.sender(),
        users: RefCell::new(
            (0..count)
                .map(|i| UserState {
                    conversation: 0,
                    turn: 0,
                    rng: ChaCha8Rng::seed_from_u64(
                        seed.wrapping_mul(0x9E37_79B9).wrapping_add(i as u64),
                    ),
                })
                .collect(),
        ),
        conversations: Cell::new(0),
        stop: Cell::new(false),
        deadline_ns: duration.map(|d| t0 + d.as_nanos() as u64),
        pool,
    });
    let meta = lua.create_table()?;
    meta.set("__index", methods(&lua, &sh)?)?;
    let active = super::ActiveRun::new(&lua, {
        let sh = sh.clone();
        Box::new(move || sh.stop.set(true))
    });

    let cpu0 = crate::engine::os::current_thread_cpu_secs();
    let mut users = FuturesUnordered::new();
    for &i in &mine {
        let start = t0 + clock::ns_of_secs(offset(i));
        users.push(run_user(
            lua.clone(),
            sh.clone(),
            scenario.clone(),
            meta.clone(),
            i,
            start,
            iterations,
        ));
    }
    let mut script_error: Option<String> = None;
    while let Some(r) = users.next().await {
        if let Err(e) = r {
            if script_error.is_none() {
                let msg = format_error(&e);
                crate::i18n::eprint_error(&msg);
                eprintln!(
                    "{}",
                    crate::i18n::say("stopping the users (what was measured is kept)", &[])
                );
                active.stop.ask(format!("error in the scenario: {msg}"));
                script_error = Some(msg);
            }
        }
    }
    let script_cpu = crate::engine::os::current_thread_cpu_secs() - cpu0;
    let partial = cancel::level() > 0;
    let outcome = session.close(partial).await;
    let res = Common::result(options, info, outcome, script_cpu, &active, false);
    drop(active);
    Ok((res, script_error))
}

/// Registers `users`.
pub fn register(lua: &Lua, m: &Table) -> mlua::Result<()> {
    functions!(lua, m, { "users" => async lua_users });
    Ok(())
}
