//! Bad input of every kind: one clear message naming the thing and the fix,
//! a non-zero exit, and nothing sent.

mod common;

use std::time::Duration;

use common::*;

const LIMIT: Duration = Duration::from_secs(60);

fn fails_with(args: &[&str], needle: &str) -> String {
    let out = run(args, LIMIT);
    let (stdout, stderr) = text(&out);
    assert!(
        !out.status.success(),
        "expected failure for {args:?}\nstdout: {stdout}"
    );
    assert!(
        stderr.contains(needle),
        "for {args:?} expected {needle:?} in stderr:\n{stderr}"
    );
    assert!(
        !stdout.contains("Serving Benchmark Result"),
        "nothing may run: {stdout}"
    );
    stderr
}

#[test]
fn unknown_flag_suggests_the_right_one() {
    fails_with(
        &["bench", "--max-concurency", "4"],
        "unknown flag --max-concurency (did you mean --max-concurrency?)",
    );
    // With --lang zh the script parser's messages follow in Chinese.
    for (args, zh) in [
        (
            &["bench", "--lang", "zh", "--max-concurency", "4"][..],
            "moonbench bench: 未知参数 --max-concurency（是不是 --max-concurrency？）\n用 --help 查看全部参数。",
        ),
        (
            &["bench", "--lang", "zh", "--num-prompts", "x"],
            "moonbench bench: --num-prompts 需要一个整数，实际是 'x'",
        ),
        (
            &["bench", "--lang", "zh", "--backend", "opneai"],
            "之一，实际是 'opneai'（是不是 'openai'？）",
        ),
    ] {
        let e = fails_with(args, "Run with --help to see every flag.");
        assert!(e.contains(zh), "{args:?}: {e}");
    }
    fails_with(
        &["bench", "--num_prompt", "4"],
        "did you mean --num-prompts?",
    );
}

#[test]
fn bad_values_name_the_flag() {
    fails_with(
        &["bench", "--request-rate", "fast"],
        "--request-rate expects a number (or inf), got 'fast'",
    );
    fails_with(
        &["bench", "--num-prompts", "1.5"],
        "--num-prompts expects a whole number",
    );
    fails_with(&["bench", "--backend", "tgii"], "(did you mean 'tgi'?)");
    fails_with(&["bench", "--goodput", "ttft=5"], "is not KEY:VALUE");
    fails_with(
        &["bench", "--metric-percentiles", "99,abc"],
        "'abc' is not a percentile",
    );
    fails_with(
        &["bench", "--random-range-ratio", "1.5"],
        "--random-range-ratio must be in [0, 1)",
    );
    fails_with(
        &[
            "bench",
            "--base-url",
            "localhost:8000",
            "--tokenizer",
            "words",
        ],
        "must start with http://",
    );
}

#[test]
fn unreadable_tokenizer_lists_where_it_looked() {
    let e = fails_with(
        &["bench", "--tokenizer", "/nonexistent/dir/tokenizer.json"],
        "not found; looked in",
    );
    assert!(e.contains("--tokenizer words"), "{e}");
    assert!(
        !e.contains("找不到分词器"),
        "English only unless asked: {e}"
    );
    // With --lang zh, the same error in Chinese after it, the path kept as it is.
    let e = fails_with(
        &[
            "bench",
            "--lang",
            "zh",
            "--tokenizer",
            "/nonexistent/dir/tokenizer.json",
        ],
        "moonbench bench: 找不到分词器 '/nonexistent/dir/tokenizer.json'，查找过这些位置：\n  /nonexistent/dir/tokenizer.json\n请用 --tokenizer",
    );
    assert!(e.contains("not found; looked in"), "{e}");
}

#[test]
fn unreachable_server_after_the_ready_timeout() {
    let port = closed_port().to_string();
    let args = |lang: &'static str| {
        let mut a = vec!["bench", "--host", "127.0.0.1", "--port", &port];
        // Long enough for the "waiting for the server" line (after 2 s).
        a.extend(["--tokenizer", "words", "--ready-check-timeout-sec", "3"]);
        a.extend((!lang.is_empty()).then_some(lang));
        a
    };
    let e = fails_with(&args(""), "is not ready after 3 s");
    assert!(e.contains("--base-url / --host / --port"), "{e}");
    assert!(
        e.contains("waiting for the server at http://127.0.0.1:"),
        "{e}"
    );
    let e = fails_with(
        &args("--lang=zh"),
        &format!(
            "服务器 http://127.0.0.1:{port} 在 3 秒内没有就绪（最后一次错误：无法连接 http://127.0.0.1:{port}："
        ),
    );
    // The progress line, printed from the I/O thread, is Chinese alone.
    assert!(
        e.contains(&format!(
            "正在等待服务器 http://127.0.0.1:{port}（最多 3 秒）：无法连接 http://127.0.0.1:{port}：连接被拒绝"
        )) && !e.contains("waiting for the server"),
        "{e}"
    );
    assert!(
        e.contains("服务器在运行吗？--base-url / --host / --port 写对了吗？（等待多久由"),
        "{e}"
    );
}

#[test]
fn unknown_subcommand_and_missing_script() {
    let out = run(&["benchh"], LIMIT);
    assert!(!out.status.success());
    fails_with(
        &["run", "/nonexistent/script.lua"],
        "script not found: /nonexistent/script.lua",
    );
}

#[test]
fn lua_syntax_error_names_file_and_line() {
    let dir = tmpdir("syntax");
    let f = dir.join("bad.lua");
    std::fs::write(&f, "local mb = require 'moonbench'\nlocal x = (\n").unwrap();
    let e = fails_with(&["run", f.to_str().unwrap()], "bad.lua:");
    assert!(e.contains("bad.lua:3:") || e.contains("bad.lua:2:"), "{e}");
}

#[test]
fn lua_runtime_error_names_file_and_line() {
    let dir = tmpdir("rterr");
    let f = dir.join("boom.lua");
    std::fs::write(&f, "local mb = require 'moonbench'\n\nerror('boom here')\n").unwrap();
    fails_with(&["run", f.to_str().unwrap()], "boom.lua:3: boom here");
    // Raised inside a C function (ipairs' iterator), which has no line of its own:
    // the user's line from the traceback.
    std::fs::write(
        &f,
        "local mb = require 'moonbench'\nlocal recs\nfor _ in ipairs(recs) do end\n",
    )
    .unwrap();
    fails_with(
        &["run", f.to_str().unwrap()],
        "boom.lua:3: attempt to index a nil value",
    );
}

#[test]
fn bad_run_option_stops_before_sending() {
    let dir = tmpdir("badopt");
    let f = dir.join("opt.lua");
    std::fs::write(
        &f,
        "local mb = require 'moonbench'\nlocal t = mb.target{}\n\
         mb.run{ target = t, requests = {{prompt = 'hi', max_tokens = 2}}, max_concurency = 3 }\n",
    )
    .unwrap();
    fails_with(
        &["run", f.to_str().unwrap()],
        "opt.lua:3: mb.run: unknown option 'max_concurency' (did you mean 'max_concurrency'?)",
    );
    std::fs::write(
        &f,
        "local mb = require 'moonbench'\nmb.target{ sim = { ttft = 5 } }\n",
    )
    .unwrap();
    fails_with(
        &["run", f.to_str().unwrap()],
        "mb.target: unknown option 'sim.ttft' (did you mean 'ttft_ms'?)",
    );
    std::fs::write(&f, "local mb = require 'moonbench'\nlocal t = mb.target{}\nmb.run{ target = t, requests = {{prompt='a', max_token=2}} }\n").unwrap();
    fails_with(
        &["run", f.to_str().unwrap()],
        "request 1: unknown option 'max_token' (did you mean 'max_tokens'?)",
    );
}

/// A malformed --header never echoes its value (it may be a secret).
#[test]
fn a_malformed_header_does_not_echo_the_secret() {
    let out = run(
        &["bench", "--header", "Authorization: Bearer sk-very-secret"],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        !stdout.contains("sk-very-secret") && !stderr.contains("sk-very-secret"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--header 'Authorization=VALUE'"),
        "{stderr}"
    );
}

/// `--save-pytorch-format --result-dir pt` writes pt/NAME.pytorch.json, not pt/pt/...
#[test]
fn pytorch_format_lands_in_the_result_dir_once() {
    let dir = tmpdir("pt");
    let out = run(
        &[
            "bench",
            "--num-prompts",
            "3",
            "--random-input-len",
            "8",
            "--random-output-len",
            "4",
            "--save-pytorch-format",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "r.json",
        ],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(
        dir.join("r.pytorch.json").exists(),
        "{:?}",
        std::fs::read_dir(&dir).unwrap().collect::<Vec<_>>()
    );
    assert!(!dir.join(dir.file_name().unwrap()).exists());
}

/// The language: `--lang zh` before or after `--help`, `MOONBENCH_LANG`, and a
/// Chinese locale (`LANG=zh_CN.UTF-8`) all give Chinese; MOONBENCH_LANG wins
/// over the locale.
#[test]
fn chinese_from_the_flag_in_any_order_the_variable_or_the_locale() {
    let zh_line = "像 vLLM 的 benchmark_serving.py 一样测试 LLM 推理服务";
    let help = |args: &[&str], env: &[(&str, &str)]| -> String {
        let mut c = bin();
        c.args(args).env("MOONBENCH_LANG", "");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = c
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(help(&["bench", "--help", "--lang", "zh"], &[("LANG", "C")]).contains(zh_line));
    assert!(help(&["bench", "--lang=zh", "--help"], &[("LANG", "C")]).contains(zh_line));
    assert!(help(&["bench", "--help"], &[("LANG", "zh_CN.UTF-8")]).contains(zh_line));
    assert!(help(&["sweep", "--help"], &[("MOONBENCH_LANG", "zh")]).contains("语言"));
    let en = help(
        &["bench", "--help"],
        &[("LANG", "zh_CN.UTF-8"), ("MOONBENCH_LANG", "en")],
    );
    assert!(en.contains("Benchmark an LLM server") && !en.contains(zh_line));
    // Every subcommand takes --lang, before or after --help, and before the
    // subcommand too; serve-sim's and calibrate's flags are in Chinese.
    let c = &[("LANG", "C")];
    for args in [
        &["serve-sim", "--help", "--lang", "zh"][..],
        &["--lang", "zh", "serve-sim", "--help"],
        &["--lang=zh", "--help"],
    ] {
        let h = help(args, c);
        assert!(
            h.contains("用法：moonbench") && h.contains("模拟服务器"),
            "{args:?}: {h}"
        );
    }
    assert!(help(&["serve-sim", "--help", "--lang", "zh"], c).contains("监听的地址"));
    let h = help(&["calibrate", "--lang", "zh", "--help"], c);
    assert!(
        h.contains("精度测试的并发流数") && !h.contains("Concurrent streams"),
        "{h}"
    );
    for sub in ["merge", "compare", "scripts", "aggregate", "report"] {
        assert!(
            help(&[sub, "--lang", "zh", "--help"], c).contains("用法："),
            "{sub}"
        );
    }
    let dir = tmpdir("lang-list");
    let mut c = bin();
    let out = c
        .args(["aggregate", "--list"])
        .current_dir(&dir)
        .env("MOONBENCH_LANG", "")
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "zh_CN.UTF-8")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("下没有结果目录"));
}
