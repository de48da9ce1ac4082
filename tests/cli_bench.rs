//! `moonbench bench` end to end against the built-in simulator (127.0.0.1 only).

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(120);

/// Counts that make no run, and more streams than the open-file limit holds, are
/// refused before anything starts, naming the flag and (for the limit) how to raise it.
#[test]
fn calibrate_refuses_impossible_stream_counts() {
    for (args, want) in [
        (&["--streams", "0"][..], "--streams: give one or more"),
        (&["--throughput-streams", "0"][..], "--throughput-streams 0"),
        (&["--throughput-itl-ms=-2"][..], "--throughput-itl-ms -2"),
    ] {
        let out = run(&[&["calibrate", "--quick"][..], args].concat(), LIMIT);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let (stdout, err) = text(&out);
        assert!(err.contains(want), "{args:?}: {err}");
        assert!(!stdout.contains("Throughput"), "nothing ran: {stdout}");
    }
    // A hard limit of 256 open files cannot hold 10,000 streams (20,000 sockets with
    // the simulator in the process), and moonbench cannot raise a hard limit.
    let out = with_fd_limit(256, &["calibrate", "--quick", "--streams", "10000"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out).1;
    assert!(
        err.contains("--streams 10000")
            && err.contains("the limit is 256, the hard limit")
            && err.contains("ulimit -Hn"),
        "{err}"
    );
    assert!(
        !err.contains("serve-sim"),
        "the accuracy runs need the simulator in the process: {err}"
    );
    // With --lang zh each message follows in Chinese.
    let out = with_fd_limit(
        256,
        &["calibrate", "--quick", "--streams", "10000", "--lang", "zh"],
    );
    let err = text(&out).1;
    assert!(
        err.contains("--streams 10000: 10000 个连接大约需要 20256 个打开的文件，但上限是 256")
            && err.contains("ulimit -Hn 20256")
            && err.contains("本进程里的内置模拟服务器持有每个连接的另一端。"),
        "{err}"
    );
    let out = run(&["calibrate", "--streams", "0", "--lang", "zh"], LIMIT);
    let err = text(&out).1;
    assert!(
        err.contains("--streams：请给出一个或多个至少为 1 的流数"),
        "{err}"
    );
}

/// Runs moonbench with a hard (and soft) open-file limit of `n`.
fn with_fd_limit(n: u64, args: &[&str]) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(args);
    // SAFETY: setrlimit on the child between fork and exec, nothing else.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            let rl = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait(child, LIMIT)
}

/// Streams that one process cannot hold at both ends move the simulator into a
/// child `serve-sim --record-truth`, whose send times come back over HTTP onto the
/// client's clock. With TTFT 0 the true send of each first chunk lies between the
/// request's send and its arrival, microseconds apart: a wrong clock offset (the
/// child started well after the client) would put the TTFT error far outside.
#[test]
fn calibrate_moves_the_simulator_out_when_the_fd_limit_needs_it() {
    // 1,500 streams: 3,256 files in one process, 1,756 each in two; the limit 2,500.
    let out = with_fd_limit(
        2500,
        &[
            "calibrate",
            "--quick",
            "--streams",
            "1500",
            "--ttft-ms",
            "0",
            "--itl-ms",
            "1",
            "--accuracy-tokens",
            "4",
            "--throughput-streams",
            "4",
            "--throughput-tokens",
            "8",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["simulator"], "process");
    assert_eq!(r["throughput"]["tokens"], 4 * 3 * 8, "--quick: 3 waves");
    let a = &r["accuracy"][0];
    assert_eq!(a["failed"], 0);
    assert_eq!(a["compared"], 1500, "every request's truth came back");
    let p50 = a["ttft_err_p50_ms"].as_f64().unwrap();
    assert!((-0.01..50.0).contains(&p50), "TTFT error p50 {p50} ms");
}

/// Known simulator timing in, vLLM's result file out, with means within tolerance.
#[test]
fn bench_measures_the_simulators_timing() {
    let dir = tmpdir("bench");
    let out = run(
        &[
            "bench",
            "--num-prompts",
            "60",
            "--random-input-len",
            "32",
            "--random-output-len",
            "16",
            "--max-concurrency",
            "20",
            "--sim-ttft-ms",
            "40",
            "--sim-itl-ms",
            "8",
            "--save-detailed",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "r.json",
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
            "--metric-percentiles",
            "50,99",
            "--metadata",
            "gpu=none",
            "--disable-tqdm",
            "--api-key",
            "sk-moonbench-test-secret",
            "--header",
            "X-Team=bench",
        ],
        LIMIT,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stdout.contains("Serving Benchmark Result"), "{stdout}");
    assert!(stdout.contains("Mean TTFT (ms):"));
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["completed"], 60);
    assert_eq!(r["failed"], 0);
    assert_eq!(r["total_input_tokens"], 60 * 32);
    assert_eq!(r["total_output_tokens"], 60 * 16);
    assert_eq!(r["request_rate"], "inf");
    assert_eq!(r["max_concurrency"], 20);
    assert_eq!(r["model_id"], "moonbench-sim");
    assert_eq!(r["tokenizer_id"], "words");
    assert_eq!(r["gpu"], "none");
    assert_eq!(r["partial"], false);
    assert_eq!(r["input_lens"].as_array().unwrap().len(), 60);
    assert_eq!(r["itls"][0].as_array().unwrap().len(), 15);
    // Against truth, not settings: the built-in simulator recorded when it sent every
    // chunk, and client health compared each measured arrival with it.
    let f = |k: &str| r[k].as_f64().unwrap_or_else(|| panic!("missing {k}"));
    let h = &r["client_health"];
    assert_eq!(h["truth_chunks"], 60 * 16, "{h}");
    let err = h["truth_error_p99_ms"].as_f64().unwrap();
    assert!(
        err < 25.0,
        "chunks read {err} ms (p99) after the simulator sent them: {h}"
    );
    // An "ok" verdict is a promise: the error is within 5% of what was measured.
    if h["verdict"] == "ok" {
        assert!(err <= 0.05 * f("mean_itl_ms"), "{h}");
    }
    // TPOT and ITL describe the same gaps (one token per chunk).
    assert!((f("mean_tpot_ms") - f("mean_itl_ms")).abs() < 0.5);
    for k in [
        "median_ttft_ms",
        "std_ttft_ms",
        "p50_ttft_ms",
        "p99_ttft_ms",
        "p99_e2el_ms",
        "p99_schedule_lag_ms",
        "p99_intended_ttft_ms",
        "request_throughput",
        "output_throughput",
        "total_token_throughput",
    ] {
        f(k);
    }
    assert!(r.get("api_key").is_none());
    let raw = std::fs::read_to_string(dir.join("r.json")).unwrap();
    assert!(
        !raw.contains("sk-moonbench-test-secret"),
        "the API key is never written to a result file"
    );
    let verdict = r["client_health"]["verdict"].as_str().unwrap();
    assert!(verdict == "ok" || verdict == "warning", "{verdict}");
    assert!(r["client_health"]["cpu_seconds"].as_f64().unwrap() > 0.0);
    // The simulator's /metrics was read (at least at the start and at the end).
    let sm = &r["server_metrics"];
    assert_eq!(sm["source"], "vllm", "{sm}");
    assert!(sm["summary"]["samples"].as_u64().unwrap() >= 2, "{sm}");
    assert!(
        sm["summary"]["max_running"].as_f64().unwrap() <= 20.0,
        "{sm}"
    );
    assert_eq!(
        sm["series"]["t"].as_array().unwrap().len(),
        sm["series"]["running"].as_array().unwrap().len()
    );
    assert!(stdout.contains("Server metrics (vllm)"), "{stdout}");
}

#[test]
fn default_file_name_is_vllms() {
    let dir = tmpdir("name");
    let out = run(
        &[
            "bench",
            "--num-prompts",
            "5",
            "--random-input-len",
            "8",
            "--random-output-len",
            "4",
            "--max-concurrency",
            "4",
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--disable-tqdm",
            "--sim-ttft-ms",
            "1",
            "--sim-itl-ms",
            "1",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 1);
    let n = &names[0];
    assert!(
        n.starts_with("vllm-infqps-concurrency4-moonbench-sim-") && n.ends_with(".json"),
        "{n}"
    );
    assert_eq!(
        n.len(),
        "vllm-infqps-concurrency4-moonbench-sim-".len() + "20260101-000000.json".len(),
        "{n}"
    );
}

#[test]
fn ramp_up_as_vllm() {
    let dir = tmpdir("ramp");
    let d = dir.to_str().unwrap();
    let out = run(
        &[
            "bench",
            "--num-prompts",
            "40",
            "--random-input-len",
            "8",
            "--random-output-len",
            "2",
            "--ramp-up-strategy",
            "exponential",
            "--ramp-up-start-rps",
            "50",
            "--ramp-up-end-rps",
            "400",
            "--save-result",
            "--result-dir",
            d,
            "--disable-tqdm",
            "--sim-ttft-ms",
            "1",
            "--sim-itl-ms",
            "1",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let path = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let name = path.file_name().unwrap().to_str().unwrap().to_string();
    assert!(
        name.starts_with("vllm-ramp-up-exponential-50qps-400qps-moonbench-sim-"),
        "{name}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(r["completed"], 40);
    assert_eq!(r["request_rate"], "inf");
    assert_eq!(
        (r["ramp_up_start_rps"].clone(), r["ramp_up_end_rps"].clone()),
        (json!(50), json!(400))
    );
    let ev = r["rps_change_events"].as_array().unwrap();
    assert_eq!(ev[0]["rps"], 50);
    assert_eq!(ev.last().unwrap()["rps"], 400);
    assert!(
        ev.windows(2)
            .all(|w| w[0]["rps"].as_i64() < w[1]["rps"].as_i64())
    );
    // A ramp and a finite rate together is an error that names both.
    let out = run(
        &[
            "bench",
            "--ramp-up-strategy",
            "linear",
            "--ramp-up-start-rps",
            "1",
            "--ramp-up-end-rps",
            "2",
            "--request-rate",
            "5",
        ],
        LIMIT,
    );
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("cannot be used together"),
        "{}",
        text(&out).1
    );
}

#[test]
fn chinese_table() {
    let out = run(
        &[
            "bench",
            "--num-prompts",
            "4",
            "--random-input-len",
            "8",
            "--random-output-len",
            "4",
            "--lang",
            "zh",
            "--disable-tqdm",
            "--sim-ttft-ms",
            "1",
            "--sim-itl-ms",
            "1",
        ],
        LIMIT,
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("服务基准测试结果"), "{stdout}");
    assert!(stdout.contains("成功请求数:"));
    assert!(stdout.contains("首 token 时间 TTFT"));
}

/// Faults from the simulator become error records; counts match the faults injected.
#[test]
fn server_faults_are_counted_not_fatal() {
    let dir = tmpdir("faults");
    let faults = "http500=0.2,reset=0.1";
    let out = run(
        &[
            "bench",
            "--num-prompts",
            "50",
            "--random-input-len",
            "8",
            "--random-output-len",
            "6",
            "--max-concurrency",
            "10",
            "--sim-ttft-ms",
            "2",
            "--sim-itl-ms",
            "1",
            "--sim-faults",
            faults,
            "--seed",
            "5",
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "f.json",
            "--disable-tqdm",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let rates = moonbench::sim::faults::FaultRates::parse(faults).unwrap();
    let picks: Vec<_> = (0..50).filter_map(|i| rates.pick(5, i)).collect();
    let n500 = picks
        .iter()
        .filter(|f| **f == moonbench::sim::faults::Fault::Http500)
        .count();
    let nreset = picks.len() - n500;
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("f.json")).unwrap()).unwrap();
    assert_eq!(r["failed"], picks.len());
    assert_eq!(r["completed"], 50 - picks.len());
    assert_eq!(r["errors_by_kind"]["http_500"], n500);
    assert_eq!(r["errors_by_kind"]["connection"], nreset);
}

#[test]
fn all_requests_failing_exits_non_zero() {
    let out = run(
        &[
            "bench",
            "--num-prompts",
            "3",
            "--random-input-len",
            "4",
            "--random-output-len",
            "2",
            "--sim-faults",
            "http500=1",
            "--disable-tqdm",
        ],
        LIMIT,
    );
    assert!(!out.status.success());
    assert!(
        text(&out)
            .1
            .contains("no request succeeded (first error: HTTP 500"),
        "{}",
        text(&out).1
    );
}

/// The standalone simulator and a real-server run: ready check, model discovery.
#[test]
fn bench_against_serve_sim_discovers_the_model() {
    let sim = serve_sim(&[
        "--model",
        "Org/Served-7B",
        "--ttft-ms",
        "2",
        "--itl-ms",
        "1",
    ]);
    let url = sim.url.clone();
    let dir = tmpdir("servesim");
    let out = run(
        &[
            "bench",
            "--base-url",
            &url,
            "--tokenizer",
            "words",
            "--num-prompts",
            "8",
            "--random-input-len",
            "8",
            "--random-output-len",
            "4",
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--disable-tqdm",
        ],
        LIMIT,
    );
    drop(sim);
    assert!(out.status.success(), "{}", text(&out).1);
    let f = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(
        f.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("vllm-infqps-Served-7B-"),
        "{f:?}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
    assert_eq!(r["model_id"], "Org/Served-7B");
    assert_eq!(r["completed"], 8);
}

#[test]
fn real_tokenizer_gives_exact_input_lengths() {
    let dir = tmpdir("hftok");
    let tok = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/qwen3/tokenizer.json.gz"
    );
    let out = run(
        &[
            "bench",
            "--tokenizer",
            tok,
            "--num-prompts",
            "10",
            "--random-input-len",
            "100",
            "--random-output-len",
            "4",
            "--save-detailed",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "t.json",
            "--sim-ttft-ms",
            "1",
            "--sim-itl-ms",
            "1",
            "--disable-tqdm",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("t.json")).unwrap()).unwrap();
    assert_eq!(r["total_input_tokens"], 1000);
    assert!(r["input_lens"].as_array().unwrap().iter().all(|v| v == 100));
    assert!(
        r["tokenizer_id"]
            .as_str()
            .unwrap()
            .ends_with("tokenizer.json.gz")
    );
}

/// `calibrate` is a benchmark, not a test: here only that it runs and reports every
/// number (tiny sizes, no timing assertions).
#[test]
fn calibrate_reports_its_numbers() {
    let out = run(
        &[
            "calibrate",
            "--streams",
            "3,6",
            "--waves",
            "1",
            "--throughput-streams",
            "4",
            "--throughput-tokens",
            "8",
            "--accuracy-tokens",
            "4",
            "--ttft-ms",
            "2",
            "--itl-ms",
            "1",
            "--json",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["throughput"]["tokens"], 32);
    assert!(
        r["throughput"]["tokens_per_client_cpu_second"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        r["throughput"]["itl_ms"], 0.0,
        "as fast as the simulator sends"
    );
    let acc = r["accuracy"].as_array().unwrap();
    assert_eq!(acc.len(), 2);
    for a in acc {
        assert_eq!(a["failed"], 0);
        assert!(
            a["ttft_err_p99_ms"].as_f64().unwrap() >= 0.0,
            "a chunk is never read before it was sent"
        );
    }
}

/// Every flag of today's `vllm bench serve` (vLLM's own list) is a flag of `bench`,
/// documented in its `--help`, and parses the way vLLM's parser takes it.
#[test]
fn every_vllm_bench_serve_flag_is_documented() {
    let list = include_str!("fixtures/vllm_serve_flags.txt");
    let flags: Vec<&str> = list
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("--"))
        .collect();
    assert!(flags.len() > 100, "the list has {} flags", flags.len());
    let out = run(&["bench", "--help"], Duration::from_secs(30));
    let (help, _) = text(&out);
    let documented: std::collections::HashSet<&str> = help
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| w.starts_with("--"))
        .collect();
    let missing: Vec<&&str> = flags.iter().filter(|f| !documented.contains(**f)).collect();
    assert!(missing.is_empty(), "bench --help lacks {missing:?}");
}

/// A server on 127.0.0.1 that keeps the body of every POST it gets and answers it
/// as a completions server would (whole JSON answers); `/v1/models` lists model `m`.
fn capturing_server() -> (String, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use std::io::{BufReader, Write};
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let keep = bodies.clone();
    std::thread::spawn(move || {
        for conn in l.incoming().take(64) {
            let Ok(conn) = conn else { break };
            let keep = keep.clone();
            std::thread::spawn(move || {
                conn.set_read_timeout(Some(Duration::from_secs(30))).ok();
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                while let Some((line, _, body)) = read_request(&mut r) {
                    let answer = if line.starts_with("POST") {
                        keep.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        r#"{"choices":[{"index":0,"text":" a b","finish_reason":"length"}],"usage":{"prompt_tokens":3,"completion_tokens":2}}"#
                    } else {
                        r#"{"object":"list","data":[{"id":"m","object":"model"}]}"#
                    };
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                        answer.len()
                    );
                    if w.write_all(head.as_bytes())
                        .and_then(|_| w.write_all(answer.as_bytes()))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, bodies)
}

/// vLLM's sampling flags reach the request body as vLLM sends them, in either
/// spelling vLLM's parser takes (`--flag value`, `--flag_name=value`); LoRA modules
/// take turns as the model; no temperature is sent unless one is given.
#[test]
fn sampling_flags_and_lora_modules_reach_the_body() {
    let (url, bodies) = capturing_server();
    let out = run(
        &[
            "bench",
            "--base-url",
            &url,
            "--model",
            "m",
            "--tokenizer",
            "words",
            "--num-prompts",
            "4",
            "--random-input-len",
            "3",
            "--random-output-len",
            "2",
            "--disable-streaming",
            "--ready-check-timeout-sec",
            "0",
            "--no-server-metrics",
            "--frequency_penalty=0.25",
            "--presence-penalty",
            "0.5",
            "--repetition-penalty",
            "1.1",
            "--logprobs",
            "3",
            "--use-beam-search",
            "--top-k",
            "7",
            "--lora-modules",
            "lora-a",
            "lora-b",
            "--lora-assignment",
            "round-robin",
        ],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("no --temperature"), "{stdout}");
    let b = bodies.lock().unwrap().clone();
    assert_eq!(b.len(), 4, "{b:?}");
    for v in &b {
        for (k, want) in [
            ("frequency_penalty", json!(0.25)),
            ("presence_penalty", json!(0.5)),
            ("repetition_penalty", json!(1.1)),
            ("logprobs", json!(3)),
            ("use_beam_search", json!(true)),
            ("top_k", json!(7)),
            ("ignore_eos", json!(true)),
        ] {
            assert_eq!(v[k], want, "{k} in {v}");
        }
        assert!(v.get("temperature").is_none(), "{v}");
        assert_eq!(v["stream"], false, "--disable-streaming");
    }
    let mut models: Vec<&str> = b.iter().map(|v| v["model"].as_str().unwrap()).collect();
    models.sort();
    assert_eq!(models, ["lora-a", "lora-a", "lora-b", "lora-b"]);
}

/// --plot-timeline and --plot-dataset-stats write their pages beside the result;
/// --probe-request-rate probes are reported apart and left out of the run's numbers.
#[test]
fn plots_and_probes_beside_the_result() {
    let dir = tmpdir("plots-probes");
    let d = dir.to_str().unwrap();
    let out = run(
        &[
            "bench",
            "--sim-ttft-ms",
            "5",
            "--sim-itl-ms",
            "2",
            "--num-prompts",
            "20",
            "--request-rate",
            "40",
            "--random-input-len",
            "8",
            "--random-output-len",
            "6",
            "--probe-request-rate",
            "50",
            "--plot-timeline",
            "--timeline-itl-thresholds",
            "1.5,3",
            "--plot-dataset-stats",
            "--save-result",
            "--result-dir",
            d,
            "--result-filename",
            "r.json",
            "--disable-tqdm",
        ],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["completed"], 20);
    assert_eq!(r["total_output_tokens"], 120, "probes are not counted");
    let probes = r["probe_completed"].as_u64().unwrap();
    assert!(
        probes >= 3 && r["probe_failed"] == 0,
        "{probes} probes, {}",
        r["probe_failed"]
    );
    let (med, p99, max) = (
        r["probe_median_e2el_ms"].as_f64().unwrap(),
        r["probe_p99_e2el_ms"].as_f64().unwrap(),
        r["probe_max_e2el_ms"].as_f64().unwrap(),
    );
    assert!(med > 0.0 && med <= p99 && p99 <= max, "{med} {p99} {max}");
    assert!(
        stdout.contains("Probe Requests") && stdout.contains("Probe requests completed:"),
        "{stdout}"
    );
    let tl = std::fs::read_to_string(dir.join("r.timeline.html")).unwrap();
    assert!(
        tl.matches("<title>request ").count() >= 40,
        "a TTFT bar and token bars per request"
    );
    for i in 0..20 {
        assert!(
            tl.contains(&format!("<title>request {i}: TTFT ")),
            "request {i}"
        );
    }
    assert!(tl.contains("1.5 ≤ ITL &lt; 3 ms"), "the thresholds given");
    let ds = std::fs::read_to_string(dir.join("r.dataset.html")).unwrap();
    assert!(
        ds.contains("Prompt tokens") && ds.matches("n = 20").count() == 3,
        "{ds}"
    );
    // A bad threshold list is an error naming the flag.
    let out = run(
        &[
            "bench",
            "--plot-timeline",
            "--timeline-itl-thresholds",
            "25",
        ],
        Duration::from_secs(60),
    );
    assert!(!out.status.success() && text(&out).1.contains("--timeline-itl-thresholds"));
}

/// --dry-run builds the dataset and prints its shape without sending anything;
/// --num-runs N repeats the run and its summary is what the N result files hold.
#[test]
fn dry_run_sends_nothing_and_num_runs_summarizes_the_runs() {
    let (url, bodies) = capturing_server();
    let out = run(
        &[
            "bench",
            "--base-url",
            &url,
            "--model",
            "m",
            "--tokenizer",
            "words",
            "--num-prompts",
            "7",
            "--random-input-len",
            "10",
            "--random-output-len",
            "4",
            "--dry-run",
        ],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("Prompt tokens:") && stdout.contains("7 / 70 / 10.0"),
        "{stdout}"
    );
    assert!(bodies.lock().unwrap().is_empty(), "a dry run sent requests");

    let dir = tmpdir("num-runs");
    let d = dir.to_str().unwrap();
    let out = run(
        &[
            "bench",
            "--sim-ttft-ms",
            "3",
            "--sim-itl-ms",
            "1",
            "--num-prompts",
            "10",
            "--random-output-len",
            "5",
            "--num-runs",
            "3",
            "--save-result",
            "--result-dir",
            d,
            "--result-filename",
            "r.json",
            "--disable-tqdm",
        ],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let runs: Vec<Value> = (1..=3)
        .map(|i| {
            serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("r-run{i}.json"))).unwrap(),
            )
            .unwrap()
        })
        .collect();
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.runs.json")).unwrap()).unwrap();
    assert_eq!(s["num_runs"], 3);
    for key in ["request_throughput", "mean_ttft_ms", "p99_itl_ms"] {
        let vals: Vec<f64> = runs.iter().map(|r| r[key].as_f64().unwrap()).collect();
        let mean = vals.iter().sum::<f64>() / 3.0;
        let std = (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        let m = &s["metrics"][key];
        assert!(
            (m["mean"].as_f64().unwrap() - mean).abs() < 1e-9 * mean.abs().max(1.0),
            "{key}: {m}"
        );
        assert!(
            (m["std"].as_f64().unwrap() - std).abs() < 1e-9 * std.max(1.0),
            "{key}: {m}"
        );
        let lo = vals.iter().cloned().fold(f64::MAX, f64::min);
        assert_eq!(m["min"].as_f64().unwrap(), lo, "{key}");
    }
    assert!(stdout.contains("Across runs"), "{stdout}");
}

/// vLLM's queue metrics: with a concurrency cap and a finite rate they are reported
/// (the schedule lag and the E2EL from the intended send under vLLM's names); the
/// per-request latencies, start and queue times are written without --save-detailed.
#[test]
fn client_queue_metrics_as_vllm() {
    let dir = tmpdir("queue-metrics");
    let d = dir.to_str().unwrap();
    let json = |extra: &[&str]| -> Value {
        let mut args = vec![
            "bench",
            "--sim-ttft-ms",
            "5",
            "--sim-itl-ms",
            "2",
            "--num-prompts",
            "12",
            "--random-output-len",
            "5",
            "--request-rate",
            "200",
            "--percentile-metrics",
            "ttft,client_queue_time,e2el_including_client_queue",
            "--save-result",
            "--result-dir",
            d,
            "--result-filename",
            "q.json",
            "--disable-tqdm",
        ];
        args.extend_from_slice(extra);
        let out = run(&args, Duration::from_secs(60));
        assert!(out.status.success(), "{}", text(&out).1);
        serde_json::from_str(&std::fs::read_to_string(dir.join("q.json")).unwrap()).unwrap()
    };
    let r = json(&["--max-concurrency", "2"]);
    assert_eq!(r["mean_client_queue_time_ms"], r["mean_schedule_lag_ms"]);
    assert_eq!(
        r["p99_e2el_including_client_queue_ms"],
        r["p99_intended_e2el_ms"]
    );
    assert!(
        r["mean_client_queue_time_ms"].as_f64().unwrap() > 0.0,
        "2 slots for 12 requests: some waited"
    );
    for k in ["latencies", "start_times", "queue_times"] {
        assert_eq!(r[k].as_array().map(|a| a.len()), Some(12), "{k}");
    }
    assert!(r.get("ttfts").is_none() && r["rtfx"] == 0.0);
    let r = json(&[]);
    assert!(r.get("mean_client_queue_time_ms").is_none() && r.get("mean_ttft_ms").is_some());
}

/// The vendored Qwen3 `tokenizer.json`, uncompressed (what the Hub serves).
fn qwen3_tokenizer_json() -> Vec<u8> {
    let gz = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/qwen3/tokenizer.json.gz"
    ))
    .unwrap();
    let mut json = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut json).unwrap();
    json
}

/// A Hub stand-in serving `files` of model `repo` at their `resolve/main` paths.
fn hub_stand_in(repo: &'static str, files: Vec<(&'static str, Vec<u8>)>) -> String {
    hub_routes(
        files
            .into_iter()
            .map(|(n, d)| (format!("/{repo}/resolve/main/{n}"), d))
            .collect(),
    )
}

/// A model id missing from the local cache is downloaded from the Hub (here a
/// stand-in through HF_ENDPOINT) into the standard cache layout, then found there
/// offline; a missing id and an offline miss say what was tried and where.
#[test]
fn tokenizer_by_model_id_from_the_hub() {
    let json = qwen3_tokenizer_json();
    let hub = hub_stand_in("Qwen/Qwen3-0.6B", vec![("tokenizer.json", json)]);
    let home = tmpdir("hf-home");
    let bench = |model: &str, offline: bool| {
        let mut c = bin();
        c.args([
            "bench",
            "--model",
            model,
            "--num-prompts",
            "3",
            "--random-input-len",
            "40",
            "--random-output-len",
            "2",
            "--disable-tqdm",
            "--save-result",
            "--result-filename",
        ])
        .arg(home.join("r.json"))
        .env("HF_HOME", &home)
        .env("HF_ENDPOINT", &hub)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        if !offline {
            c.env_remove("HF_HUB_OFFLINE");
        }
        wait(c.spawn().unwrap(), Duration::from_secs(120))
    };
    let out = bench("Qwen/Qwen3-0.6B", false);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let snap = home
        .join("hub/models--Qwen--Qwen3-0.6B/snapshots/0123456789abcdef0123456789abcdef01234567");
    assert!(snap.join("tokenizer.json").is_file(), "{stderr}");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["tokenizer_id"], "Qwen/Qwen3-0.6B");
    assert_eq!(
        r["total_input_tokens"], 120,
        "exact lengths by the downloaded tokenizer"
    );
    // Now cached: found offline.
    let out = bench("Qwen/Qwen3-0.6B", true);
    assert!(out.status.success(), "{}", text(&out).1);
    // Not on the Hub: the URL tried; offline with nothing cached: the variable and the cache.
    let out = bench("Nobody/no-such-model", false);
    let e = text(&out).1;
    assert!(
        !out.status.success()
            && e.contains(&format!(
                "{hub}/Nobody/no-such-model/resolve/main/tokenizer.json"
            )),
        "{e}"
    );
    let out = bench("Nobody/no-such-model", true);
    let e = text(&out).1;
    assert!(
        e.contains("HF_HUB_OFFLINE") && e.contains(home.join("hub").to_str().unwrap()),
        "{e}"
    );
}

/// `--revision` names the tokenizer's branch, tag or commit on the Hub: it is
/// downloaded at that revision (the stand-in serves only `resolve/v2/...`), kept
/// in the cache under refs/v2, found there offline, and a revision not cached is
/// named in the error.
#[test]
fn tokenizer_at_a_revision() {
    let json = qwen3_tokenizer_json();
    let hub = hub_routes(vec![(
        "/Qwen/Qwen3-0.6B/resolve/v2/tokenizer.json".into(),
        json,
    )]);
    let home = tmpdir("hf-home-rev");
    let bench = |rev: &str, offline: bool| {
        let mut c = bin();
        c.args([
            "bench",
            "--model",
            "Qwen/Qwen3-0.6B",
            "--revision",
            rev,
            "--num-prompts",
            "2",
            "--random-input-len",
            "30",
            "--random-output-len",
            "2",
            "--disable-tqdm",
        ])
        .env("HF_HOME", &home)
        .env("HF_ENDPOINT", &hub)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
        if offline {
            c.env("HF_HUB_OFFLINE", "1");
        } else {
            c.env_remove("HF_HUB_OFFLINE");
        }
        wait(c.spawn().unwrap(), Duration::from_secs(120))
    };
    let out = bench("v2", false);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let model = home.join("hub/models--Qwen--Qwen3-0.6B");
    assert_eq!(
        std::fs::read_to_string(model.join("refs/v2"))
            .unwrap()
            .trim(),
        "0123456789abcdef0123456789abcdef01234567"
    );
    assert!(bench("v2", true).status.success(), "cached: found offline");
    // main was never downloaded: not on the stand-in, and not in the cache.
    let out = bench("main", false);
    assert!(!out.status.success() && text(&out).1.contains("resolve/main/tokenizer.json"));
    let out = bench("v3", true);
    let e = text(&out).1;
    assert!(!out.status.success() && e.contains("(revision v3)"), "{e}");
}

/// vLLM's --no-stream is about loading a Hugging Face dataset: the answers are
/// still streamed (only --disable-streaming turns that off).
#[test]
fn no_stream_keeps_answers_streamed() {
    let (url, bodies) = capturing_server();
    let out = run(
        &[
            "bench",
            "--base-url",
            &url,
            "--model",
            "m",
            "--tokenizer",
            "words",
            "--num-prompts",
            "1",
            "--random-input-len",
            "3",
            "--random-output-len",
            "2",
            "--ready-check-timeout-sec",
            "0",
            "--no-server-metrics",
            "--no-stream",
        ],
        Duration::from_secs(60),
    );
    // The capturing server answers with whole JSON, so the streamed request fails; what counts is what was asked.
    let _ = out;
    let b = bodies.lock().unwrap().clone();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0]["stream"], true, "{}", b[0]);
}

/// --sweep-max-concurrency with --sweep-num-prompts-factor: one run per cap, each
/// sending factor x cap requests and never exceeding its cap, then one sweep file
/// naming every point's result.
#[test]
fn sweep_over_concurrency_as_vllms_rust_client() {
    let dir = tmpdir("sweep");
    let out = run(
        &[
            "bench",
            "--sweep-max-concurrency",
            "1,3",
            "--sweep-num-prompts-factor",
            "2",
            "--random-input-len",
            "8",
            "--random-output-len",
            "4",
            "--sim-ttft-ms",
            "5",
            "--sim-itl-ms",
            "1",
            "--disable-tqdm",
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "s.json",
        ],
        Duration::from_secs(60),
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let sweep: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("s-c1.sweep.json")).unwrap())
            .unwrap();
    let points = sweep["points"].as_array().unwrap();
    assert_eq!(points.len(), 2, "{sweep}");
    for (p, cap) in points.iter().zip([1u64, 3]) {
        assert_eq!(p["max_concurrency"], cap);
        let file = p["result"].as_str().unwrap();
        let r: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        assert_eq!(r["max_concurrency"], cap, "{file}");
        assert_eq!(r["completed"], 2 * cap, "{file}: factor x cap requests");
        assert!(r["peak_in_flight"].as_u64().unwrap() <= cap, "{file}");
    }
    let bad = run(
        &["bench", "--sweep-request-rate", "2,fast"],
        Duration::from_secs(20),
    );
    assert!(!bad.status.success());
    assert!(text(&bad).1.contains("got 'fast'"), "{}", text(&bad).1);
}

/// The in-process simulator's refusals name bench's own `--sim-*` flags, not the
/// Lua option or serve-sim flag behind them, and stop before anything is sent.
#[test]
fn simulator_errors_name_the_bench_flags() {
    for (flags, want) in [
        (
            &["--sim-preset", "qwen3-8b-l40s", "--sim-ttft-ms", "5"][..],
            "--sim-ttft-ms is an option of the fixed engine, but --sim-preset chooses the step engine",
        ),
        (
            &["--sim-engine", "fixed", "--sim-max-num-seqs", "4"][..],
            "--sim-max-num-seqs is an option of the step engine, but engine is 'fixed'; drop --sim-engine fixed",
        ),
        (
            &[
                "--sim-kv-cache-tokens",
                "100",
                "--sim-max-model-len",
                "4096",
            ][..],
            "raise --sim-kv-cache-tokens or lower --sim-max-model-len",
        ),
        (
            &["--sim-preset", "qwen3-8b-l4"][..],
            "unknown --sim-preset 'qwen3-8b-l4' (did you mean 'qwen3-8b-l40s'?)",
        ),
    ] {
        let mut args = vec!["bench", "--num-prompts", "2", "--disable-tqdm"];
        args.extend_from_slice(flags);
        let out = run(&args, LIMIT);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{flags:?}: {stderr}");
        assert!(stderr.contains(want), "{flags:?}: {stderr}");
        assert!(!stderr.contains("runtime error"), "{stderr}");
        assert!(!stdout.contains("Successful requests"), "{stdout}");
    }
}

/// `--multi-turn` (vLLM's Rust client): conversations of 1–4 turns, each turn
/// sending the whole history plus 16 new tokens; the same seed gives the same
/// conversations, and a typo'd turn range is refused.
#[test]
fn multi_turn_conversations_grow_their_prompts() {
    let dir = tmpdir("multi-turn");
    let go = |file: &str| {
        let out = run(
            &[
                "bench",
                "--multi-turn",
                "--num-prompts",
                "5",
                "--multi-turn-min-turns",
                "1",
                "--multi-turn-max-turns",
                "4",
                "--random-input-len",
                "16",
                "--random-output-len",
                "4",
                "--multi-turn-delay-ms",
                "5",
                "--sim-ttft-ms",
                "2",
                "--sim-itl-ms",
                "1",
                "--save-result",
                "--result-dir",
                dir.to_str().unwrap(),
                "--result-filename",
                file,
                "--disable-tqdm",
            ],
            LIMIT,
        );
        assert!(out.status.success(), "{}", text(&out).1);
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        v
    };
    let a = go("a.json");
    let u = &a["users"];
    assert_eq!(u["conversations"], 5);
    let turns = u["by_turn"].as_array().unwrap();
    assert_eq!(
        turns[0]["requests"], 5,
        "every conversation has a first turn"
    );
    let total: u64 = turns.iter().map(|t| t["requests"].as_u64().unwrap()).sum();
    assert_eq!(a["completed"].as_u64().unwrap(), total);
    assert!((5..=20).contains(&total) && turns.len() <= 4, "{u}");
    for w in turns.windows(2) {
        let (p0, p1) = (
            w[0]["mean_prompt_tokens"].as_f64().unwrap(),
            w[1]["mean_prompt_tokens"].as_f64().unwrap(),
        );
        assert!(
            p1 >= p0 + 16.0,
            "turn prompts carry the history: {p0} then {p1}"
        );
        assert!(w[1]["requests"].as_u64() <= w[0]["requests"].as_u64());
    }
    let b = go("b.json");
    assert_eq!(
        b["completed"], a["completed"],
        "the seed fixes the turn counts"
    );
    // ShareGPT's own turns, in order, with the dataset's answers as history: the
    // prompts are 10, 10+6+8 and 24+5+4 words long.
    let w = |n: usize, t: &str| vec![t; n].join(" ");
    let convs: Vec<Value> = (0..4)
        .map(|i| {
            serde_json::json!({"conversations": [
                {"from": "human", "value": w(10, &format!("a{i}"))}, {"from": "gpt", "value": w(6, "x")},
                {"from": "human", "value": w(8, "b")}, {"from": "gpt", "value": w(5, "y")},
                {"from": "human", "value": w(4, "c")}, {"from": "gpt", "value": w(3, "z")}]})
        })
        .collect();
    let sg = dir.join("sharegpt.json");
    std::fs::write(&sg, Value::Array(convs).to_string()).unwrap();
    let out = run(
        &[
            "bench",
            "--multi-turn",
            "--dataset-name",
            "sharegpt",
            "--dataset-path",
            sg.to_str().unwrap(),
            "--num-prompts",
            "4",
            "--backend",
            "openai-chat",
            "--multi-turn-concurrency",
            "2",
            "--sim-ttft-ms",
            "2",
            "--sim-itl-ms",
            "1",
            "--save-result",
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "sg.json",
            "--disable-tqdm",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("sg.json")).unwrap()).unwrap();
    let by_turn: Vec<(u64, f64)> = v["users"]["by_turn"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["requests"].as_u64().unwrap(),
                t["mean_prompt_tokens"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(by_turn, [(4, 10.0), (4, 24.0), (4, 33.0)]);
    let out = run(
        &[
            "bench",
            "--multi-turn",
            "--multi-turn-min-turns",
            "3",
            "--num-prompts",
            "2",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out)
            .1
            .contains("give --multi-turn-min-turns and --multi-turn-max-turns together"),
        "{}",
        text(&out).1
    );
}

/// `--random-range-ratio` as a number or vLLM's JSON `{"input": r1, "output": r2}`;
/// a misspelt key is refused, naming the flag and the keys.
#[test]
fn random_range_ratio_takes_vllms_json() {
    let dry = |ratio: &str| {
        run(
            &[
                "bench",
                "--dry-run",
                "--num-prompts",
                "200",
                "--random-input-len",
                "100",
                "--random-output-len",
                "100",
                "--random-range-ratio",
                ratio,
            ],
            LIMIT,
        )
    };
    let out = dry(r#"{"input": 0, "output": 0.5}"#);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let line = |name: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap()
            .to_string()
    };
    assert!(
        line("Prompt tokens:").ends_with("100 / 100 / 100"),
        "{stdout}"
    );
    let asked = line("Output tokens asked");
    let max: u32 = asked.rsplit('/').next().unwrap().trim().parse().unwrap();
    assert!((130..=150).contains(&max), "{asked}");
    let out = dry(r#"{"inptu": 0.1}"#);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out)
            .1
            .contains("--random-range-ratio: unknown key 'inptu' (keys: input, output)")
    );
}

/// numpy's linear-interpolation percentile of `v` (sorted here).
fn np_percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let r = p / 100.0 * (v.len() - 1) as f64;
    let (lo, hi) = (r.floor() as usize, r.ceil() as usize);
    v[lo] + (v[hi] - v[lo]) * (r - lo as f64)
}

/// `--bounded` keeps no record in memory: the result's numbers come from its
/// histograms, and are checked here against the exact statistics of the records
/// it streamed to `--save-records` (the truth of what it measured): counts and
/// means equal, percentiles within the 0.1% the result states. What needs the
/// records in memory is refused before anything is sent.
#[test]
fn bounded_run_keeps_no_records_and_states_its_precision() {
    let dir = tmpdir("bounded");
    let rec = dir.join("records.jsonl");
    let out = run(
        &[
            "bench",
            "--num-prompts",
            "400",
            "--max-concurrency",
            "40",
            "--random-output-len",
            "24",
            "--sim-ttft-ms",
            "20",
            "--sim-itl-ms",
            "2",
            "--sim-jitter",
            "0.5",
            "--save-result",
            "--seed",
            "7",
            "--bounded",
            "--save-records",
            rec.to_str().unwrap(),
            "--result-dir",
            dir.to_str().unwrap(),
            "--result-filename",
            "r.json",
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
            "--metric-percentiles",
            "50,90,99",
            "--goodput",
            "ttft:300",
            "--disable-tqdm",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap();
    let recs: Vec<Value> = std::fs::read_to_string(&rec)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["warmup"] == false && v["success"] == true)
        .collect();
    assert_eq!(recs.len(), 400);
    assert_eq!(r["completed"], 400);
    assert!(
        r["summary_precision"].as_str().unwrap().contains("HDR"),
        "{r}"
    );
    assert!(
        r.get("latencies").is_none(),
        "no per-request lists in memory"
    );
    let good = recs
        .iter()
        .filter(|v| v["ttft"].as_f64().unwrap() <= 0.3)
        .count();
    let dur = r["duration"].as_f64().unwrap();
    assert!((r["request_goodput"].as_f64().unwrap() - good as f64 / dur).abs() < 1e-9);
    let ms = |k: &str| -> Vec<f64> {
        match k {
            "itl" => recs
                .iter()
                .flat_map(|v| v["itls"].as_array().unwrap().clone())
                .map(|x| x.as_f64().unwrap() * 1e3)
                .collect(),
            _ => recs.iter().map(|v| v[k].as_f64().unwrap() * 1e3).collect(),
        }
    };
    for k in ["ttft", "itl", "e2el"] {
        let mut v = ms(k);
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        let got = r[format!("mean_{k}_ms")].as_f64().unwrap();
        assert!(
            (got - mean).abs() <= 1e-6 * mean,
            "{k} mean {got} vs {mean}"
        );
        for p in [50.0, 90.0, 99.0] {
            let exact = np_percentile(&mut v, p);
            let got = r[format!("p{p}_{k}_ms").replace(".0", "")]
                .as_f64()
                .unwrap();
            // 0.1% from the histogram; the rest is nearest rank vs interpolation,
            // at most one neighbouring value away.
            let i = (p / 100.0 * (v.len() - 1) as f64) as usize;
            let (lo, hi) = (v[i.saturating_sub(1)], v[(i + 2).min(v.len() - 1)]);
            assert!(
                got >= lo * 0.999 && got <= hi * 1.001,
                "{k} p{p}: bounded {got}, exact {exact}, neighbours {lo}..{hi}"
            );
        }
    }
    // Refused before the run, naming both flags: nothing is measured to be lost.
    for (extra, want) in [
        (
            &["--save-detailed"][..],
            "--save-detailed needs every request's record",
        ),
        (&["--plot-timeline"][..], "--plot-timeline needs"),
    ] {
        let out = run(
            &[
                &[
                    "bench",
                    "--num-prompts",
                    "5",
                    "--bounded",
                    "--save-records",
                    rec.to_str().unwrap(),
                ][..],
                extra,
            ]
            .concat(),
            LIMIT,
        );
        let (stdout, err) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want) && err.contains("--bounded"), "{err}");
        assert!(!stdout.contains("Serving Benchmark Result"), "nothing ran");
    }
    // In Lua, what needs the records says so instead of handing back nothing.
    let script = dir.join("bounded.lua");
    std::fs::write(
        &script,
        format!(
            "local mb = require \"moonbench\"\n\
             local r = mb.run{{ target = mb.target{{}}, requests = mb.dataset.random{{ n = 4, input_len = 8, output_len = 2 }}, \
             bounded = true, records_file = {:?}, progress = false }}\n\
             print(r:summary().completed)\n\
             print(select(2, pcall(function() return r:records() end)))\n\
             print(select(2, pcall(function() return r:plot_timeline({:?}) end)))\n",
            dir.join("lua.jsonl").to_str().unwrap(),
            dir.join("t.html").to_str().unwrap()
        ),
    )
    .unwrap();
    let out = run(&["run", script.to_str().unwrap()], LIMIT);
    let (stdout, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(stdout.starts_with("4\n"), "{stdout}");
    assert!(
        stdout.contains("res:records() needs every request's record")
            && stdout.contains("res:plot_timeline needs every request's record"),
        "{stdout}"
    );
    assert!(!dir.join("t.html").exists(), "no empty plot written");
    let out = run(&["bench", "--num-prompts", "5", "--bounded"], LIMIT);
    assert!(
        text(&out).1.contains("add --save-records FILE"),
        "{}",
        text(&out).1
    );
}
