//! The interop suite: `moonbench bench` against real LLM servers, each request
//! checked against the server's own account of it (usage, llama.cpp's `timings`,
//! `/metrics`, `/tokenize`), never against configured values.
//!
//! The servers are built by `tests/realservers/setup.sh` (llama.cpp's llama-server
//! and llama-cpp-python's OpenAI server, both on SmolLM2-135M) and found through
//! `MOONBENCH_REALSERVERS`. The tests are `#[ignore]`d so that plain `cargo test`
//! needs no build of them; `tests/realservers/run.sh` (the README's third command,
//! and `.ci/run`) builds them and runs this file with `--ignored`. Without
//! `MOONBENCH_REALSERVERS` an ignored run fails and says how to set it up.
//!
//! Every server is started here on 127.0.0.1 with port 0 (the port is read from its
//! log) and killed when its test ends.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(300);

fn servers_dir() -> PathBuf {
    let d = std::env::var("MOONBENCH_REALSERVERS").unwrap_or_else(|_| {
        panic!(
            "MOONBENCH_REALSERVERS is not set: run tests/realservers/run.sh, which builds the real servers \
             into target/realservers and runs this suite"
        )
    });
    let d = PathBuf::from(d);
    assert!(
        d.join("model/SmolLM2-135M-Instruct.Q4_1.gguf").exists(),
        "no model in {}: run tests/realservers/setup.sh {}",
        d.display(),
        d.display()
    );
    d
}

/// A real server process, killed on drop.
struct Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts `cmd` (which logs to `log`) and waits until its log names the port it
    /// listens on (`marker` followed by `127.0.0.1:PORT`) and `health` answers 200.
    fn start(mut cmd: Command, log: PathBuf, marker: &str, health: &str) -> Server {
        let f = std::fs::File::create(&log).unwrap();
        cmd.stdout(f.try_clone().unwrap()).stderr(f);
        let child = cmd.spawn().expect("cannot start the server");
        let mut s = Server {
            child,
            port: 0,
            log: log.clone(),
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(120) {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!(
                    "the server exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if s.port == 0 {
                if let Some(i) = text.find(marker) {
                    let rest = &text[i + marker.len()..];
                    if let Some(j) = rest.find("127.0.0.1:") {
                        let digits: String = rest[j + 10..]
                            .chars()
                            .take_while(|c| c.is_ascii_digit())
                            .collect();
                        s.port = digits.parse().unwrap_or(0);
                    }
                }
            }
            if s.port != 0 && matches!(http(s.port, "GET", health, ""), Ok((200, _))) {
                return s;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the server did not become ready in 120 s; log {}:\n{}",
            s.log.display(),
            std::fs::read_to_string(&s.log).unwrap_or_default()
        );
    }
}

fn llama_server(dir: &Path, extra: &[&str], tag: &str) -> Server {
    let bin = dir.join("llama-server/bin");
    let mut cmd = Command::new(bin.join("llama-server"));
    cmd.env("LD_LIBRARY_PATH", &bin)
        .arg("-m")
        .arg(dir.join("model/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "-t",
            "1",
            "-c",
            "8192",
        ])
        .args(extra)
        .stdin(Stdio::null());
    let log = tmpdir(&format!("llama-server-{tag}")).join("server.log");
    Server::start(cmd, log, "listening on http://", "/health")
}

/// llama-cpp-python's server; `interrupt` is its `--interrupt_requests` (on by
/// default: a new request aborts the stream in flight).
fn llama_cpp_python(dir: &Path, interrupt: bool) -> Server {
    let mut cmd = Command::new(dir.join("llama-cpp-python/venv/bin/python"));
    cmd.args(["-m", "llama_cpp.server", "--model"])
        .arg(dir.join("model/SmolLM2-135M-Instruct.Q4_1.gguf"))
        .args(["--n_threads", "1", "--host", "127.0.0.1", "--port", "0"])
        .args([
            "--interrupt_requests",
            if interrupt { "True" } else { "False" },
        ])
        .stdin(Stdio::null());
    let log = tmpdir(&format!("llama-cpp-python-{interrupt}")).join("server.log");
    Server::start(cmd, log, "Uvicorn running on http://", "/v1/models")
}

/// A minimal HTTP/1.1 exchange on loopback (for the server's own endpoints).
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    Ok((status, body.to_string()))
}

/// What one `bench` run left: its result JSON and its records.
struct Run {
    result: Value,
    records: Vec<Value>,
    stdout: String,
}

fn bench(url: &str, tag: &str, args: &[&str]) -> Run {
    let dir = tmpdir(&format!("interop-{tag}"));
    let records = dir.join("records.jsonl");
    let tokenizer = if args.contains(&"--tokenizer") {
        &[][..]
    } else {
        &["--tokenizer", "words"][..]
    };
    let mut all: Vec<String> = [
        "bench",
        "--base-url",
        url,
        "--disable-tqdm",
        "--save-result",
        "--result-dir",
        dir.to_str().unwrap(),
        "--result-filename",
        "r.json",
        "--save-records",
        records.to_str().unwrap(),
        "--server-metrics-interval",
        "0.2",
    ]
    .iter()
    .chain(tokenizer)
    .map(|s| s.to_string())
    .collect();
    all.extend(args.iter().map(|s| s.to_string()));
    let refs: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    let out = run(&refs, LIMIT);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{tag}: {stderr}\n{stdout}");
    let result: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let records = std::fs::read_to_string(&records)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Run {
        result,
        records,
        stdout,
    }
}

fn f(v: &Value, k: &str) -> f64 {
    v[k].as_f64()
        .unwrap_or_else(|| panic!("no number {k} in {v}"))
}

/// A record's numbers against llama.cpp's `timings` for the same request.
struct Check {
    ttft_above_prompt_ms: Vec<f64>,
    tpot_vs_server: Vec<(f64, f64)>,
}

/// Checks every record of a llama-server run against the server's own account:
/// output tokens = `usage.completion_tokens` = `timings.predicted_n`; the chunks'
/// token counts sum to them, with one ITL per token after the first chunk's; TTFT
/// no less than `timings.prompt_ms`; TPOT next to `timings.predicted_per_token_ms`.
fn check_against_timings(run: &Run, what: &str, streamed: bool) -> Check {
    let mut c = Check {
        ttft_above_prompt_ms: Vec::new(),
        tpot_vs_server: Vec::new(),
    };
    assert!(!run.records.is_empty(), "{what}: no records");
    for r in &run.records {
        assert_eq!(r["success"], true, "{what}: {}", r["error"]);
        let st = &r["server_timing"];
        assert!(
            st.is_object(),
            "{what}: the server's timings were kept: {r}"
        );
        let out = r["output_tokens"].as_u64().unwrap();
        assert_eq!(
            out,
            st["predicted_n"].as_u64().unwrap(),
            "{what}: output tokens vs timings.predicted_n"
        );
        if !r["server_output_tokens"].is_null() {
            assert_eq!(r["server_output_tokens"].as_u64().unwrap(), out, "{what}");
        }
        assert_eq!(r["output_tokens_source"], "usage", "{what}");
        let ttft = f(r, "ttft") * 1e3;
        let prompt_ms = f(st, "prompt_ms");
        assert!(
            ttft >= prompt_ms,
            "{what}: TTFT {ttft:.2} ms before the server finished the prompt ({prompt_ms:.2} ms)"
        );
        c.ttft_above_prompt_ms.push(ttft - prompt_ms);
        if streamed {
            // llama-server sends a chunk per token, except that tokens adding no text
            // yet (a partial UTF-8 character, a held-back stop word; the Responses
            // stream also waits for the parsed message to grow) come out with the
            // next one, so a chunk may carry several tokens; with the server's own
            // sampling (temperature 0.8, a random seed) that varies from run to run.
            // What must hold: the chunks' counts sum to the server's output tokens,
            // each is at least 1, and there is one ITL per token after the first
            // chunk's (vLLM counts the first chunk as TTFT only).
            let counts = r["chunk_tokens"].as_array().unwrap();
            let sum: u64 = counts.iter().map(|t| t.as_u64().unwrap()).sum();
            assert_eq!(sum, out, "{what}: chunk tokens sum to the output tokens");
            assert!(counts.iter().all(|t| t.as_u64().unwrap() >= 1), "{what}");
            assert_eq!(
                r["chunk_times"].as_array().unwrap().len(),
                counts.len(),
                "{what}: a count per chunk"
            );
            let first = counts[0].as_u64().unwrap();
            assert_eq!(
                r["itls"].as_array().unwrap().len() as u64,
                out - first,
                "{what}: ITL entries = output tokens - tokens of the first chunk ({counts:?})"
            );
            if out > 2 {
                c.tpot_vs_server
                    .push((f(r, "tpot") * 1e3, f(st, "predicted_per_token_ms")));
            }
        } else {
            assert_eq!(r["ttft"], r["e2el"], "{what}: one answer, TTFT = E2EL");
            let e2el = f(r, "e2el") * 1e3;
            let server = prompt_ms + f(st, "predicted_ms");
            assert!(
                e2el >= server,
                "{what}: E2EL {e2el:.2} ms below the server's own time {server:.2} ms"
            );
        }
    }
    c
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// llama-server at concurrency 1 and 8 (above its 4 slots), streaming and not, for
/// the completions, chat and native backends; its /metrics read during the run.
#[test]
#[ignore = "needs the real servers: tests/realservers/run.sh"]
fn llama_server_matches_its_own_account() {
    let dir = servers_dir();
    let srv = llama_server(&dir, &["-np", "4", "--metrics"], "main");
    let url = srv.url();
    let mut report = Vec::new();
    for backend in ["openai", "openai-chat", "llama.cpp", "openai-responses"] {
        for conc in ["1", "8"] {
            for stream in [true, false] {
                // llama-server's whole (non-streamed) Responses answer has no timings.
                if backend == "openai-responses" && !stream {
                    continue;
                }
                let what = format!("{backend} c={conc} stream={stream}");
                let mut args = vec![
                    "--backend",
                    backend,
                    "--num-prompts",
                    if conc == "1" { "6" } else { "16" },
                    "--max-concurrency",
                    conc,
                    "--random-input-len",
                    "24",
                    "--random-output-len",
                    "24",
                ];
                if !stream {
                    args.push("--disable-streaming");
                }
                let run = bench(&url, &what.replace([' ', '='], "_"), &args);
                let mut c = check_against_timings(&run, &what, stream);
                let over = median(&mut c.ttft_above_prompt_ms);
                if conc == "1" && stream {
                    // Alone on the server, the first token follows the prompt by the
                    // HTTP round trip and one sampling step.
                    for d in &c.ttft_above_prompt_ms {
                        assert!(
                            *d < 60.0,
                            "{what}: TTFT {d:.2} ms after the server's prompt time (bound 60 ms)"
                        );
                    }
                }
                let mut tpot_err = 0.0f64;
                for (ours, theirs) in &c.tpot_vs_server {
                    let err = (ours - theirs).abs();
                    tpot_err = tpot_err.max(err);
                    assert!(
                        err <= (0.15 * theirs).max(2.0),
                        "{what}: TPOT {ours:.3} ms vs the server's {theirs:.3} ms"
                    );
                }
                let mean = |k: &str| run.result[k].as_f64().unwrap_or(f64::NAN);
                report.push(format!(
                    "{what}: TTFT mean {:.1} ms, TTFT - server prompt_ms median {over:.2} ms; \
                     TPOT mean {:.2} ms, max |TPOT - server per-token| {tpot_err:.3} ms; health {}",
                    mean("mean_ttft_ms"),
                    mean("mean_tpot_ms"),
                    run.result["client_health"]["verdict"]
                ));
                if stream && backend == "openai" {
                    let sm = &run.result["server_metrics"];
                    assert_eq!(sm["source"], "llama.cpp", "{what}: {sm}");
                    assert!(
                        run.stdout.contains("Server metrics (llama.cpp)"),
                        "{}",
                        run.stdout
                    );
                }
            }
        }
    }
    eprintln!("{}", report.join("\n"));
}

/// The prompt tokens the server counted (usage.prompt_tokens) equal what its own
/// /tokenize says of the prompt moonbench sent (a custom dataset of known prompts).
#[test]
#[ignore = "needs the real servers: tests/realservers/run.sh"]
fn llama_server_prompt_tokens_match_its_tokenizer() {
    let dir = servers_dir();
    let srv = llama_server(&dir, &["-np", "2", "--metrics"], "tok");
    let data = tmpdir("prompts-tokenize").join("prompts.jsonl");
    let prompts = [
        "The moon is bright tonight.",
        "Write one line about rivers and stones.",
        "你好，世界",
    ];
    let lines: Vec<String> = prompts
        .iter()
        .map(|p| serde_json::json!({ "prompt": p }).to_string())
        .collect();
    std::fs::write(&data, lines.join("\n")).unwrap();
    let run = bench(
        &srv.url(),
        "tokenize",
        &[
            "--backend",
            "openai",
            "--dataset-name",
            "custom",
            "--dataset-path",
            data.to_str().unwrap(),
            "--disable-shuffle",
            "--num-prompts",
            "3",
            "--custom-output-len",
            "4",
        ],
    );
    let mut seen = Vec::new();
    for r in &run.records {
        assert_eq!(r["success"], true, "{}", r["error"]);
        seen.push(r["server_prompt_tokens"].as_u64().unwrap());
    }
    seen.sort();
    let mut want = Vec::new();
    for p in prompts {
        let (status, body) = http(
            srv.port,
            "POST",
            "/tokenize",
            &serde_json::json!({ "content": p, "add_special": true }).to_string(),
        )
        .unwrap();
        assert_eq!(status, 200, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        want.push(v["tokens"].as_array().unwrap().len() as u64);
    }
    want.sort();
    assert_eq!(seen, want, "usage.prompt_tokens vs /tokenize");
}

/// The tokenizer moonbench reads from the model's GGUF file (`--tokenizer
/// model.gguf`) is llama-server's: `/tokenize` gives the same ids for every text
/// of llama.cpp's own tokenizer test set and a few more (code, Chinese, emoji,
/// special tokens), `/apply-template` renders the same chat prompt, and a random
/// dataset built with it is exactly as long as the server's usage says.
#[test]
#[ignore = "needs the real servers: tests/realservers/run.sh"]
fn llama_server_tokenizes_as_the_gguf_tokenizer() {
    let dir = servers_dir();
    let srv = llama_server(&dir, &["-np", "2", "--metrics"], "gguf-tokenizer");
    let gguf = dir.join("model/SmolLM2-135M-Instruct.Q4_1.gguf");
    let tok = moonbench::tokenizer::Tokenizer::load(gguf.to_str().unwrap()).unwrap();
    let inp = std::fs::read_to_string(dir.join("vocab/ggml-vocab-gpt-2.gguf.inp")).unwrap();
    let mut texts: Vec<String> = inp
        .split("\n__ggml_vocab_test__\n")
        .map(String::from)
        .collect();
    texts.extend(
        [
            "你好，世界！今天的月亮很亮。",
            "fn main() {\n    println!(\"{}\", 1234567);\n}\n",
            "<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n",
            "emoji 🚀🌕 and tabs\t\tend",
        ]
        .map(String::from),
    );
    let mut differ = Vec::new();
    for t in &texts {
        let body = serde_json::json!({ "content": t }).to_string();
        let (status, answer) = http(srv.port, "POST", "/tokenize", &body).unwrap();
        assert_eq!(status, 200, "{answer}");
        let v: Value = serde_json::from_str(&answer).unwrap();
        let theirs: Vec<u32> = v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        if tok.encode(t) != theirs {
            differ.push(format!(
                "{t:?}: ours {:?}, server {theirs:?}",
                tok.encode(t)
            ));
        }
    }
    assert!(differ.is_empty(), "{}", differ.join("\n"));
    let msgs = serde_json::json!([
        {"role": "user", "content": "What is the moon?"},
        {"role": "assistant", "content": "A rock."},
        {"role": "user", "content": "How far?"},
    ]);
    let (status, answer) = http(
        srv.port,
        "POST",
        "/apply-template",
        &serde_json::json!({ "messages": msgs }).to_string(),
    )
    .unwrap();
    assert_eq!(status, 200, "{answer}");
    let theirs: Value = serde_json::from_str(&answer).unwrap();
    let ours = tok
        .apply_chat_template(&msgs, true, &Default::default())
        .unwrap();
    assert_eq!(ours, theirs["prompt"].as_str().unwrap(), "chat template");
    let measured = bench(
        &srv.url(),
        "gguf-tokenizer",
        &[
            "--tokenizer",
            gguf.to_str().unwrap(),
            "--backend",
            "openai",
            "--num-prompts",
            "8",
            "--max-concurrency",
            "2",
            "--random-input-len",
            "48",
            "--random-output-len",
            "4",
        ],
    );
    for r in &measured.records {
        assert_eq!(r["success"], true, "{}", r["error"]);
        let ours = r["prompt_tokens"].as_u64().unwrap();
        assert!(
            (44..=52).contains(&ours),
            "prompt of {ours} tokens for 48: {r}"
        );
        assert_eq!(
            Some(ours),
            r["server_prompt_tokens"].as_u64(),
            "random prompt length vs the server's usage: {r}"
        );
    }
    // --verify-prompt-lengths asks llama-server's /tokenize: all alike with the GGUF
    // tokenizer, not with another model's.
    let qwen = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/qwen3/tokenizer.json.gz"
    );
    for (tk, alike) in [(gguf.to_str().unwrap(), true), (qwen, false)] {
        let out = run(
            &[
                "bench",
                "--base-url",
                &srv.url(),
                "--tokenizer",
                tk,
                "--num-prompts",
                "6",
                "--random-input-len",
                "40",
                "--random-output-len",
                "2",
                "--verify-prompt-lengths",
                "--dry-run",
            ],
            LIMIT,
        );
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stderr}");
        assert!(stdout.contains("llama.cpp form): 6 checked, "), "{stdout}");
        assert_eq!(
            stdout.contains("6 checked, 6 counted alike, 0 differ"),
            alike,
            "{tk}: {stdout}"
        );
    }
    eprintln!(
        "{} texts tokenized alike; chat template alike; {} random prompts of the server's length",
        texts.len(),
        measured.records.len()
    );
}

/// A second llama-server with `--embeddings`: the embeddings backend succeeds and
/// takes its prompt-token counts from the server's usage.
#[test]
#[ignore = "needs the real servers: tests/realservers/run.sh"]
fn llama_server_embeddings() {
    let dir = servers_dir();
    let srv = llama_server(
        &dir,
        &["-np", "2", "--embeddings", "--pooling", "mean"],
        "emb",
    );
    for conc in ["1", "4"] {
        let run = bench(
            &srv.url(),
            &format!("emb{conc}"),
            &[
                "--backend",
                "openai-embeddings",
                "--num-prompts",
                "8",
                "--max-concurrency",
                conc,
                "--random-input-len",
                "16",
            ],
        );
        assert_eq!(run.result["completed"], 8, "{}", run.stdout);
        for r in &run.records {
            assert_eq!(r["success"], true, "{}", r["error"]);
            assert!(r["server_prompt_tokens"].as_u64().unwrap() > 0);
            assert_eq!(r["output_tokens"], 0);
        }
    }
    // Batches of 4 prompts as one `input` list: the server's token count for the
    // batch is the sum of what it counts for each prompt alone.
    let embed = |tag: &str, batch: &str| {
        bench(
            &srv.url(),
            tag,
            &[
                "--backend",
                "openai-embeddings",
                "--num-prompts",
                "8",
                "--random-input-len",
                "16",
                "--random-batch-size",
                batch,
            ],
        )
    };
    let (single, batched) = (embed("emb-single", "1"), embed("emb-batch", "4"));
    assert_eq!(batched.result["completed"], 2, "{}", batched.stdout);
    assert_eq!(batched.result["total_input_sequences"], 8);
    let server_total = |r: &Run| -> u64 {
        r.records
            .iter()
            .map(|x| x["server_prompt_tokens"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(server_total(&batched), server_total(&single));
}

/// Speculative decoding on a real llama-server (the model as its own draft):
/// moonbench's spec-decode result keys are the change of the server's own
/// `llamacpp:spec_decode_*` counters over the run, read back from its /metrics
/// afterwards (a fresh server starts them at 0).
#[test]
#[ignore = "needs the real servers: tests/realservers/run.sh"]
fn llama_server_speculative_decoding_counters() {
    let dir = servers_dir();
    let model = dir.join("model/SmolLM2-135M-Instruct.Q4_1.gguf");
    let srv = llama_server(
        &dir,
        &[
            "-np",
            "2",
            "--metrics",
            "-md",
            model.to_str().unwrap(),
            "--spec-type",
            "draft-simple",
        ],
        "spec",
    );
    let run = bench(
        &srv.url(),
        "spec",
        &[
            "--backend",
            "openai-chat",
            "--num-prompts",
            "6",
            "--max-concurrency",
            "2",
            "--random-input-len",
            "32",
            "--random-output-len",
            "48",
        ],
    );
    assert_eq!(run.result["completed"], 6, "{}", run.stdout);
    let (_, page) = http(srv.port, "GET", "/metrics", "").unwrap();
    let counter = |name: &str| -> f64 {
        page.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not on the page:\n{page}"))
    };
    let drafts = counter("llamacpp:spec_decode_num_drafts_total ");
    let tokens = counter("llamacpp:spec_decode_num_draft_tokens_total ");
    let accepted = counter("llamacpp:spec_decode_num_accepted_tokens_total ");
    assert!(drafts > 0.0, "the server drafted nothing:\n{page}");
    let r = &run.result;
    assert_eq!(f(r, "spec_decode_num_drafts"), drafts);
    assert_eq!(f(r, "spec_decode_draft_tokens"), tokens);
    assert_eq!(f(r, "spec_decode_accepted_tokens"), accepted);
    assert!((f(r, "spec_decode_acceptance_rate") - 100.0 * accepted / tokens).abs() < 1e-9);
    assert!((f(r, "spec_decode_acceptance_length") - (1.0 + accepted / drafts)).abs() < 1e-9);
    let pos0 = counter("llamacpp:spec_decode_num_accepted_tokens_per_pos_total{position=\"0\"} ");
    let rates = r["spec_decode_per_position_acceptance_rates"]
        .as_array()
        .unwrap();
    assert!(
        (rates[0].as_f64().unwrap() - pos0 / drafts).abs() < 1e-9,
        "{rates:?}"
    );
    assert!(
        run.stdout.contains("Spec-decode acceptance rate (%):"),
        "{}",
        run.stdout
    );
}

/// llama-cpp-python's own server (FastAPI, uvicorn, sse-starlette): different
/// framing, same engine. Its request-id middleware accepts only UUIDs — moonbench's
/// default — and a prefix it rejects gets an error that names the header. At
/// temperature 0 it generates the same text as llama-server for the same prompts.
#[test]
#[ignore = "needs the real servers: tests/realservers/run.sh"]
fn llama_cpp_python_server_same_tokens_other_framing() {
    let dir = servers_dir();
    let py = llama_cpp_python(&dir, false);
    let common = [
        "--num-prompts",
        "4",
        "--random-input-len",
        "16",
        "--random-output-len",
        "12",
        "--extra-body",
        // Greedy on both: llama-cpp-python's completions default to repeat_penalty 1.1,
        // llama-server's to 1.0.
        r#"{"temperature": 0, "repeat_penalty": 1.0}"#,
    ];
    let mut texts = Vec::new();
    for (backend, stream) in [("openai", true), ("openai", false), ("openai-chat", true)] {
        let mut args = vec!["--backend", backend, "--max-concurrency", "2"];
        args.extend(common);
        if !stream {
            args.push("--disable-streaming");
        }
        let run = bench(&py.url(), &format!("py-{backend}-{stream}"), &args);
        assert_eq!(run.result["completed"], 4, "{}", run.stdout);
        for r in &run.records {
            assert_eq!(r["success"], true, "{}", r["error"]);
            let id = r["request_id"].as_str().unwrap();
            assert_eq!(id.len(), 36, "a UUID: {id}");
        }
        if backend == "openai" {
            let mut t: Vec<(u64, String)> = run
                .records
                .iter()
                .map(|r| {
                    (
                        r["index"].as_u64().unwrap(),
                        r["text"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            t.sort();
            texts.push(t);
        }
        if !stream {
            for r in &run.records {
                assert_eq!(r["output_tokens_source"], "usage");
            }
        }
    }
    assert_eq!(
        texts[0], texts[1],
        "streamed and whole answers say the same"
    );

    // A prefix the middleware rejects: every request fails, and the error points at
    // the header instead of a bare "HTTP 400".
    let dir2 = tmpdir("py-prefix");
    let out = run(
        &[
            "bench",
            "--base-url",
            &py.url(),
            "--tokenizer",
            "words",
            "--num-prompts",
            "2",
            "--random-input-len",
            "8",
            "--random-output-len",
            "4",
            "--request-id-prefix",
            "moonbench-",
            "--save-detailed",
            "--save-result",
            "--result-dir",
            dir2.to_str().unwrap(),
            "--result-filename",
            "r.json",
        ],
        LIMIT,
    );
    let (stdout, stderr) = text(&out);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(dir2.join("r.json")).unwrap())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(r["completed"], 0);
    let all = format!("{stdout}{stderr}{}", r["errors"]);
    assert!(
        all.contains("x-request-id: moonbench-0") && all.contains("UUID"),
        "the error names the header: {all}"
    );

    // Same engine, same greedy tokens: llama-server gives the same text.
    let ls = llama_server(&dir, &["-np", "2"], "same");
    let mut args = vec![
        "--backend",
        "openai",
        "--max-concurrency",
        "1",
        "--disable-streaming",
    ];
    args.extend(common);
    let run = bench(&ls.url(), "ls-same", &args);
    let mut t: Vec<(u64, String)> = run
        .records
        .iter()
        .map(|r| {
            (
                r["index"].as_u64().unwrap(),
                r["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    t.sort();
    // Greedy decoding over the same weights: the answers start alike; they may part
    // after a few tokens, where the two servers' batch shapes round a near-tie apart.
    let mut same = 0;
    for ((_, a), (_, b)) in t.iter().zip(&texts[1]) {
        let common = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert!(
            common >= 8,
            "llama-server {a:?} and llama-cpp-python {b:?} part within 8 bytes"
        );
        same += (a == b) as usize;
    }
    eprintln!(
        "identical answers on the two servers: {same} of {}",
        t.len()
    );
}

/// With its default `--interrupt_requests`, llama-cpp-python aborts a stream when the
/// next request arrives: the cut streams are failed requests that keep what they got,
/// never short successes.
#[test]
#[ignore = "needs the real servers: tests/realservers/run.sh"]
fn llama_cpp_python_cut_streams_are_failures() {
    let dir = servers_dir();
    let py = llama_cpp_python(&dir, true);
    let d = tmpdir("py-cut");
    let records = d.join("records.jsonl");
    let out = run(
        &[
            "bench",
            "--base-url",
            &py.url(),
            "--tokenizer",
            "words",
            "--num-prompts",
            "6",
            "--max-concurrency",
            "3",
            "--random-input-len",
            "16",
            "--random-output-len",
            "24",
            "--save-records",
            records.to_str().unwrap(),
        ],
        LIMIT,
    );
    let (stdout, stderr) = text(&out);
    let recs: Vec<Value> = std::fs::read_to_string(&records)
        .unwrap_or_else(|e| panic!("{e}: {stdout}{stderr}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(recs.len(), 6);
    let cut: Vec<&Value> = recs.iter().filter(|r| r["success"] == false).collect();
    assert!(!cut.is_empty(), "some streams were interrupted: {stdout}");
    for r in &cut {
        let kind = r["error_kind"].as_str().unwrap();
        assert!(
            kind == "connection" || kind == "incomplete",
            "{kind}: {}",
            r["error"]
        );
    }
    for r in recs.iter().filter(|r| r["success"] == true) {
        // A success has its whole answer: the finish signal came.
        assert!(r["output_tokens"].as_u64().unwrap() > 0);
    }
}
