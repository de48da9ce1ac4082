//! Lua scripts end to end: the API tour, module overrides, Ctrl-C and SIGTERM.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

/// Runs `tests/lua/{name}` with `args` and `env` (plus `{dir_var}` set to a fresh
/// directory); it must succeed and end by printing `marker`. Returns its stdout.
fn lua_test(
    name: &str,
    args: &[&str],
    env: &[(&str, &str)],
    dir_var: &str,
    marker: &str,
) -> String {
    let dir = tmpdir(name);
    let script = format!("{}/tests/lua/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut cmd = bin();
    cmd.args(["run", &script, "--"])
        .args(args)
        .env(dir_var, dir.to_str().unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait(child, Duration::from_secs(180));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.trim_end().ends_with(marker), "{stdout}");
    stdout
}

#[test]
fn api_tour() {
    let stdout = lua_test(
        "api_tour.lua",
        &["first", "--second"],
        &[("MOONBENCH_TOUR_VAR", "set-by-test")],
        "MOONBENCH_TOUR_DIR",
        "TOUR OK",
    );
    assert!(stdout.contains("Serving Benchmark Result"));
}

/// Virtual users: counts, multi-turn growth, per-turn metrics, think time, errors.
#[test]
fn virtual_users() {
    lua_test("users.lua", &[], &[], "MOONBENCH_USERS_DIR", "USERS OK");
}

#[test]
fn every_example_runs_quick() {
    every_example_runs(&["--quick"]);
}

/// slo_search's decisions match the simulator's own record; rate_sweep writes its points.
#[test]
fn slo_search_and_rate_sweep() {
    lua_test("search.lua", &[], &[], "MOONBENCH_SEARCH_DIR", "SEARCH OK");
}

/// The simulator's step engine: TPOT rises with concurrency, preemption stalls, prefix
/// hits, the step log reconciled with every chunk, impossible configurations refused.
#[test]
fn sim_step_engine() {
    lua_test(
        "sim_engine.lua",
        &[],
        &[],
        "MOONBENCH_ENGINE_DIR",
        "ENGINE OK",
    );
}

/// openai-responses, vllm-rerank and batched embeddings, judged by the simulator's record.
#[test]
fn responses_and_pooling_backends() {
    lua_test(
        "pooling_responses.lua",
        &[],
        &[],
        "MOONBENCH_POOLING_DIR",
        "POOLING OK",
    );
}

/// A user's own module next to the script wins over the bundled one.
#[test]
fn user_module_overrides_the_stdlib() {
    let dir = tmpdir("override");
    std::fs::create_dir_all(dir.join("moonbench")).unwrap();
    std::fs::write(
        dir.join("moonbench/report.lua"),
        "return { print = function(s) print('MY REPORT ' .. s.completed) end }\n",
    )
    .unwrap();
    let script = dir.join("s.lua");
    std::fs::write(
        &script,
        "local mb = require 'moonbench'\nlocal t = mb.target{ sim = { ttft_ms = 1, itl_ms = 1 } }\n\
         mb.run{ target = t, requests = {{prompt = 'x', max_tokens = 2}}, progress = false }:print()\n",
    )
    .unwrap();
    let out = run(&["run", script.to_str().unwrap()], Duration::from_secs(60));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), "MY REPORT 1");
}

/// Bundled examples run from any directory by their bundled path.
#[test]
fn bundled_example_runs_from_anywhere() {
    let out = bin()
        .args(["run", "examples/quickstart.lua", "--", "--num-prompts", "5"])
        .current_dir(std::env::temp_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait(out, Duration::from_secs(60));
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("TTFT"));
}

fn interrupted_run_saves_partial(signal: i32) {
    let dir = tmpdir(&format!("sig{signal}"));
    let records = dir.join("records.jsonl");
    let child = bin()
        .args([
            "bench",
            "--num-prompts",
            "5000",
            "--request-rate",
            "40",
            "--random-input-len",
            "8",
            "--random-output-len",
            "100",
            "--sim-ttft-ms",
            "20",
            "--sim-itl-ms",
            "10",
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "partial.json",
            "--grace-period",
            "0.3",
            "--save-records",
            records.to_str().unwrap(),
            "--disable-tqdm",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = wait(child, Duration::from_secs(30));
    let (stdout, stderr) = text(&out);
    // 128 + the signal, as shells expect: 130 for SIGINT, 143 for SIGTERM.
    assert_eq!(
        out.status.code(),
        Some(128 + signal),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("partial.json")).unwrap()).unwrap();
    assert_eq!(r["partial"], true);
    let completed = r["completed"].as_u64().unwrap();
    assert!((20..200).contains(&completed), "completed {completed}");
    // Requests cut off after the grace period are records too, marked cancelled.
    let cancelled = r["cancelled"].as_u64().unwrap();
    assert!(cancelled > 0, "some requests were in flight when cut off");
    assert_eq!(r["failed"], 0);
    let lines = std::fs::read_to_string(&records).unwrap().lines().count() as u64;
    assert_eq!(
        lines,
        completed + cancelled,
        "every measured request is in the records file"
    );
    assert!(stdout.contains("PARTIAL RESULT"), "{stdout}");
    // The table says what the file says: failed 0, the cut-off ones apart.
    let value = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_string)
    };
    assert_eq!(value("Failed requests:").as_deref(), Some("0"), "{stdout}");
    assert_eq!(
        value("Cancelled requests (cut off):"),
        Some(cancelled.to_string()),
        "{stdout}"
    );
}

#[test]
fn ctrl_c_saves_partial_results() {
    interrupted_run_saves_partial(libc::SIGINT);
}

#[test]
fn sigterm_saves_partial_results() {
    interrupted_run_saves_partial(libc::SIGTERM);
}

/// With --lang zh the interrupt's message, printed from the signal task, is Chinese.
#[test]
fn the_interrupt_message_follows_lang_zh() {
    let child = bin()
        .args([
            "bench",
            "--lang",
            "zh",
            "--num-prompts",
            "2000",
            "--request-rate",
            "40",
            "--random-output-len",
            "100",
            "--sim-itl-ms",
            "10",
            "--grace-period",
            "0.3",
            "--disable-tqdm",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = wait(child, Duration::from_secs(30));
    let stderr = text(&out).1;
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("已中断：不再发送新请求") && !stderr.contains("no new requests"),
        "{stderr}"
    );
}

/// Ctrl-C during a virtual-users run stops the users, lets requests in flight finish
/// within the grace period, and returns what was measured, marked partial.
#[test]
fn ctrl_c_stops_virtual_users_and_keeps_their_records() {
    let dir = tmpdir("users-sigint");
    let script = dir.join("u.lua");
    std::fs::write(
        &script,
        "local mb = require 'moonbench'\n\
         local t = mb.target{ body = { ignore_eos = true }, sim = { ttft_ms = 5, itl_ms = 5 } }\n\
         local res = mb.users{ target = t, count = 20, duration = 60, grace = 0.2, progress = false,\n\
           scenario = function(u) while true do u:complete{ prompt = 'a b', max_tokens = 400 }; u:sleep(0.01) end end }\n\
         local s = res:summary()\n\
         print(string.format('USERS PARTIAL %s %d %d', tostring(s.partial), s.completed, s.cancelled or 0))\n",
    )
    .unwrap();
    let child = bin()
        .args(["run", script.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let started = std::time::Instant::now();
    let out = wait(child, Duration::from_secs(30));
    let (stdout, stderr) = text(&out);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "stopped promptly"
    );
    let line = stdout
        .lines()
        .find(|l| l.starts_with("USERS PARTIAL"))
        .unwrap_or_else(|| panic!("stdout: {stdout}\nstderr: {stderr}"));
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[2], "true", "{line}");
    // Each request takes ~2 s (400 tokens x 5 ms), so requests were in flight at the
    // signal; they were cut off after the 0.2 s grace and kept as records.
    let completed: u64 = f[3].parse().unwrap();
    let cancelled: u64 = f[4].parse().unwrap();
    assert!(cancelled > 0, "{line}");
    assert!(completed + cancelled >= 20, "{line}");
}

#[test]
fn datasets_and_tokenizers_from_lua() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/lua/datasets.lua");
    let child = bin()
        .args(["run", script])
        .env("MOONBENCH_ROOT", env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait(child, Duration::from_secs(120));
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.trim_end().ends_with("DATASETS OK"), "{stdout}");
}

/// A typo in any option table, a wrong type, an unknown mb.* name: each fails
/// before sending and names the key and the fix; lengths come back as asked.
#[test]
fn typos_and_lengths() {
    lua_test("typos.lua", &[], &[], "MOONBENCH_TYPOS_DIR", "TYPOS OK");
}

/// A script stops its own run (on_response "stop", mb.stop, a callback error
/// that carries the result) and later runs still start.
#[test]
fn scripts_stop_their_runs() {
    lua_test("stop.lua", &[], &[], "MOONBENCH_STOP_DIR", "STOP OK");
}
