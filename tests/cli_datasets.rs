//! Every dataset through `moonbench bench` against the built-in simulator.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

fn bench_json(name: &str, args: &[&str]) -> Value {
    let dir = tmpdir(name);
    let mut all: Vec<&str> = vec![
        "bench",
        "--sim-ttft-ms",
        "2",
        "--sim-itl-ms",
        "1",
        "--disable-tqdm",
        "--save-detailed",
    ];
    all.extend_from_slice(args);
    let d = dir.to_str().unwrap().to_string();
    all.extend_from_slice(&["--result-dir", &d, "--result-filename", "r.json"]);
    let out = run(&all, LIMIT);
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success(),
        "{args:?}\nstdout: {stdout}\nstderr: {stderr}"
    );
    serde_json::from_str(&std::fs::read_to_string(dir.join("r.json")).unwrap()).unwrap()
}

fn lens(v: &Value, key: &str) -> Vec<u64> {
    v[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect()
}

#[test]
fn sharegpt() {
    let dir = tmpdir("sg-src");
    let words = |n: usize| vec!["moon"; n].join(" ");
    let mut entries = Vec::new();
    for i in 0..5 {
        entries.push(serde_json::json!({"id": i, "conversations": [
            {"from": "human", "value": words(10 + i)}, {"from": "gpt", "value": words(20 + i)}]}));
    }
    let p = dir.join("sg.json");
    std::fs::write(&p, Value::Array(entries).to_string()).unwrap();
    let r = bench_json(
        "sg",
        &[
            "--dataset-name",
            "sharegpt",
            "--dataset-path",
            p.to_str().unwrap(),
            "--num-prompts",
            "8",
        ],
    );
    assert_eq!(r["completed"], 8, "5 valid conversations oversampled to 8");
    assert!(lens(&r, "input_lens").iter().all(|n| (10..15).contains(n)));
}

#[test]
fn sonnet_from_the_bundled_file() {
    let r = bench_json(
        "sonnet",
        &[
            "--dataset-name",
            "sonnet",
            "--num-prompts",
            "6",
            "--sonnet-input-len",
            "120",
            "--sonnet-prefix-len",
            "50",
            "--sonnet-output-len",
            "5",
        ],
    );
    assert_eq!(r["completed"], 6);
    assert!(lens(&r, "input_lens").iter().all(|n| *n <= 120 && *n > 80));
}

#[test]
fn burstgpt_replayed_at_its_timestamps() {
    let csv = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/burstgpt_sample.csv"
    );
    let r = bench_json(
        "burst",
        &[
            "--dataset-name",
            "burstgpt",
            "--dataset-path",
            csv,
            "--num-prompts",
            "4",
            "--use-trace-timestamps",
            "--trace-time-scale",
            "0.05",
        ],
    );
    assert_eq!(r["completed"], 4);
    assert_eq!(
        lens(&r, "input_lens"),
        vec![40, 25, 70, 33],
        "GPT-4 rows with a response, in time order"
    );
    let starts: Vec<f64> = r["start_times"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect();
    for (s, want) in starts.iter().zip([0.0, 0.15, 0.35, 0.5]) {
        assert!(
            (s - want).abs() < 0.02,
            "sent at {s} s, scheduled at {want} s (timestamps x 0.05)"
        );
    }
}

#[test]
fn custom_jsonl_with_chat_messages() {
    let dir = tmpdir("custom-src");
    let p = dir.join("c.jsonl");
    std::fs::write(&p, "{\"prompt\": \"the moon is bright tonight\", \"output_tokens\": 4}\n\
                        {\"messages\": [{\"role\": \"user\", \"content\": \"hello there\"}], \"output_tokens\": 3}\n").unwrap();
    let r = bench_json(
        "custom",
        &[
            "--backend",
            "openai-chat",
            "--dataset-name",
            "custom",
            "--dataset-path",
            p.to_str().unwrap(),
            "--custom-output-len",
            "-1",
            "--disable-shuffle",
            "--num-prompts",
            "5",
        ],
    );
    // As vLLM, the two lines are reused to reach --num-prompts.
    assert_eq!(r["completed"], 5);
    assert_eq!(lens(&r, "input_lens"), vec![5, 2, 5, 2, 5]);
}

#[test]
fn custom_jsonl_with_images_sends_multimodal_chat() {
    let dir = tmpdir("custom-images-src");
    std::fs::write(
        dir.join("cat.png"),
        b"\x89PNG\r\n\x1a\n not really a picture",
    )
    .unwrap();
    let p = dir.join("c.jsonl");
    std::fs::write(
        &p,
        "{\"prompt\": \"what is in these pictures\", \"images\": [\"cat.png\", \"https://example.com/dog.jpg\"], \"output_tokens\": 3}\n",
    )
    .unwrap();
    let r = bench_json(
        "custom-images",
        &[
            "--backend",
            "openai-chat",
            "--dataset-name",
            "custom",
            "--dataset-path",
            p.to_str().unwrap(),
            "--custom-output-len",
            "-1",
            "--num-prompts",
            "1",
        ],
    );
    assert_eq!(r["completed"], 1, "{r}");
    // The client counts the text (5 words); the simulator adds 64 tokens per image.
    assert_eq!(lens(&r, "input_lens"), vec![5]);
    assert_eq!(r["total_server_input_tokens"], 5 + 2 * 64);
    // A file that is not an image type stops before sending, naming the line.
    std::fs::write(&p, "{\"prompt\": \"x\", \"images\": [\"notes.txt\"]}\n").unwrap();
    let out = run(
        &[
            "bench",
            "--backend",
            "openai-chat",
            "--dataset-name",
            "custom",
            "--dataset-path",
            p.to_str().unwrap(),
        ],
        LIMIT,
    );
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("c.jsonl:1") && stderr.contains("unknown image type '.txt'"),
        "{stderr}"
    );
}

#[test]
fn prefix_repetition() {
    let r = bench_json(
        "prefix",
        &[
            "--dataset-name",
            "prefix_repetition",
            "--num-prompts",
            "10",
            "--prefix-repetition-prefix-len",
            "20",
            "--prefix-repetition-suffix-len",
            "5",
            "--prefix-repetition-num-prefixes",
            "3",
            "--prefix-repetition-output-len",
            "4",
        ],
    );
    assert_eq!(r["completed"], 9, "3 x floor(10/3), as vLLM");
    assert!(lens(&r, "input_lens").iter().all(|n| *n == 25));
    assert_eq!(r["total_output_tokens"], 36);
}

/// The real Mooncake trace: exact input lengths and replay at the scaled timestamps.
#[test]
fn mooncake_trace_replay() {
    let trace = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/mooncake/synthetic_trace.jsonl.gz"
    );
    let recs_dir = tmpdir("moon-records");
    let recs_path = recs_dir.join("records.jsonl");
    let r = bench_json(
        "moon",
        &[
            "--dataset-name",
            "mooncake",
            "--dataset-path",
            trace,
            "--num-prompts",
            "30",
            "--trace-time-scale",
            "0.02",
            "--max-concurrency",
            "30",
            "--save-records",
            recs_path.to_str().unwrap(),
        ],
    );
    assert_eq!(r["completed"], 30);
    let text = moonbench::dataset::read_text(std::path::Path::new(trace)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .take(30)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let want: Vec<u64> = lines
        .iter()
        .map(|l| l["input_length"].as_u64().unwrap())
        .collect();
    assert_eq!(lens(&r, "input_lens"), want);
    let outs: u64 = lines
        .iter()
        .map(|l| l["output_length"].as_u64().unwrap().max(1))
        .sum();
    assert_eq!(
        r["total_output_tokens"], outs,
        "ignore_eos makes every output its traced length"
    );
    // The schedule is the trace's timestamps, scaled, relative to the first; each
    // request went out at or after its scheduled time, late by exactly the
    // schedule lag its record reports (measured, not a window around the setting).
    let recs: Vec<Value> = std::fs::read_to_string(&recs_path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let t_first = lines[0]["timestamp"].as_f64().unwrap();
    for rec in &recs {
        let i = rec["index"].as_u64().unwrap() as usize;
        let want = (lines[i]["timestamp"].as_f64().unwrap() - t_first) / 1000.0 * 0.02;
        let sched = rec["scheduled_time"].as_f64().unwrap();
        assert!(
            (sched - want).abs() < 1e-6,
            "request {i}: scheduled {sched} s, trace {want} s"
        );
        let start = rec["start_time"].as_f64().unwrap();
        let dispatch = rec["dispatch_time"].as_f64().unwrap();
        assert!(
            dispatch >= sched - 1e-6 && start >= dispatch - 1e-6,
            "{rec}"
        );
        let lag = rec["schedule_lag"].as_f64().unwrap();
        assert!(
            (lag - (dispatch - sched)).abs() < 1e-6 || (lag - (start - sched)).abs() < 1e-6,
            "{rec}"
        );
    }
}

#[test]
fn prompt_token_ids_are_sent_as_ids() {
    let r = bench_json(
        "ids",
        &[
            "--num-prompts",
            "5",
            "--random-input-len",
            "16",
            "--random-output-len",
            "3",
            "--prompt-token-ids",
        ],
    );
    assert_eq!(r["completed"], 5);
    assert_eq!(r["total_input_tokens"], 80);
    assert_eq!(
        r["total_server_input_tokens"], 80,
        "the server counted the ids it received"
    );
}

#[test]
fn dataset_errors_stop_before_sending() {
    for (args, needle) in [
        (
            vec!["--dataset-name", "sharegpt"],
            "--dataset-name sharegpt needs --dataset-path FILE",
        ),
        (
            vec![
                "--dataset-name",
                "custom",
                "--dataset-path",
                "/nonexistent/x.jsonl",
            ],
            "moonbench bench: --dataset-name custom: cannot read /nonexistent/x.jsonl",
        ),
        (
            vec![
                "--dataset-name",
                "burstgpt",
                "--dataset-path",
                concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/fixtures/burstgpt_sample.csv"
                ),
                "--burstgpt-model",
                "Claude",
            ],
            "no rows left after filtering",
        ),
        (
            vec![
                "--dataset-name",
                "sonnet",
                "--sonnet-input-len",
                "50",
                "--sonnet-prefix-len",
                "400",
            ],
            "--sonnet-prefix-len 400 is longer than --sonnet-input-len 50",
        ),
        (
            vec!["--random-range-ratio", "1.5"],
            "moonbench bench: --dataset-name random: --random-range-ratio must be in [0, 1)",
        ),
        (
            vec!["--dataset-name", "nope"],
            "--dataset-name must be one of",
        ),
        (
            vec!["--backend", "openai-chat", "--prompt-token-ids"],
            "only the completions API accepts",
        ),
        (
            vec!["--apply-chat-template"],
            "tokenizer 'words' has no chat template",
        ),
    ] {
        let mut all = vec!["bench", "--disable-tqdm"];
        all.extend(args.iter().copied());
        let out = run(&all, LIMIT);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{all:?} should fail");
        assert!(
            stderr.contains(needle),
            "{all:?}: expected {needle:?} in:\n{stderr}"
        );
        assert!(!stdout.contains("Serving Benchmark Result"));
        assert!(
            !stderr.contains("mb."),
            "a Lua API the user never called: {stderr}"
        );
    }
}

/// vLLM's timed_trace: its own field names, timestamps in the unit
/// --timed-trace-sec-multiplier gives, 16-token hash blocks, token ids sent; the
/// schedule is the trace's (or --request-rate's with --no-self-timed).
#[test]
fn timed_trace_as_vllm_reads_it() {
    let dir = tmpdir("timed-trace");
    let trace = dir.join("trace.jsonl");
    // Two requests sharing their first 16-token block, timestamps in seconds x 10.
    std::fs::write(
        &trace,
        "{\"ts\": 100, \"in\": 20, \"out\": 3, \"h\": [7, 8]}\n{\"ts\": 103, \"in\": 16, \"out\": 2, \"h\": [7]}\n",
    )
    .unwrap();
    let recs = dir.join("records.jsonl");
    let r = bench_json(
        "timed-trace-run",
        &[
            "--dataset-name",
            "timed_trace",
            "--dataset-path",
            trace.to_str().unwrap(),
            "--timed-trace-label-timestamp",
            "ts",
            "--timed-trace-label-input-length",
            "in",
            "--timed-trace-label-output-length",
            "out",
            "--timed-trace-label-hash-ids",
            "h",
            "--timed-trace-sec-multiplier",
            "0.1",
            "--save-records",
            recs.to_str().unwrap(),
        ],
    );
    assert_eq!(lens(&r, "input_lens"), [20, 16]);
    assert_eq!(
        r["total_output_tokens"], 5,
        "ignore_eos: the traced lengths"
    );
    let sched: Vec<f64> = std::fs::read_to_string(&recs)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| v["scheduled_time"].as_f64().unwrap())
        .collect();
    assert!(
        (sched[0] - 0.0).abs() < 1e-9 && (sched[1] - 0.3).abs() < 1e-9,
        "{sched:?}"
    );
    // --no-self-timed: the rate decides, not the trace (inf: both at once).
    let r = bench_json(
        "timed-trace-rate",
        &[
            "--dataset-name",
            "timed_trace",
            "--dataset-path",
            trace.to_str().unwrap(),
            "--timed-trace-label-timestamp",
            "ts",
            "--timed-trace-label-input-length",
            "in",
            "--timed-trace-label-output-length",
            "out",
            "--timed-trace-label-hash-ids",
            "h",
            "--no-self-timed",
        ],
    );
    assert!(r["duration"].as_f64().unwrap() < 0.25, "{}", r["duration"]);
    // Token ids go to a completions backend only; a missing label names what the line has.
    for (extra, want) in [
        (
            vec!["--backend", "openai-chat"],
            "only a completions backend",
        ),
        (
            vec![],
            "no field \"timestamp\" (the line has: h, in, out, ts)",
        ),
    ] {
        let mut args = vec![
            "bench",
            "--dataset-name",
            "timed_trace",
            "--dataset-path",
            trace.to_str().unwrap(),
        ];
        args.extend(extra);
        let out = run(&args, LIMIT);
        let (stdout, stderr) = text(&out);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{stdout}{stderr}"
        );
    }
}

/// Spec-Bench's question.jsonl layout (question_id, category, turns — the layout of
/// hemingkx/Spec-Bench data/spec_bench/question.jsonl, inherited from FastChat's
/// MT-Bench), filtered by category; the first turn is the prompt.
#[test]
fn spec_bench_by_category() {
    let dir = tmpdir("spec-bench");
    let q = dir.join("question.jsonl");
    std::fs::write(
        &q,
        "{\"question_id\": 81, \"category\": \"writing\", \"turns\": [\"one two three four\", \"again\"]}\n\
         {\"question_id\": 101, \"category\": \"reasoning\", \"turns\": [\"five six\", \"more\"]}\n\
         {\"question_id\": 82, \"category\": \"writing\", \"turns\": [\"seven eight nine\", \"x\"]}\n",
    )
    .unwrap();
    let r = bench_json(
        "spec-bench-run",
        &[
            "--dataset-name",
            "spec_bench",
            "--dataset-path",
            q.to_str().unwrap(),
            "--spec-bench-category",
            "writing",
            "--spec-bench-output-len",
            "3",
            "--num-prompts",
            "2",
            "--ignore-eos",
        ],
    );
    let mut l = lens(&r, "input_lens");
    l.sort();
    assert_eq!(l, [3, 4], "the writing questions' first turns");
    assert_eq!(lens(&r, "output_lens"), [3, 3]);
}

/// The `hf` fixtures: a few rows each in the dataset's Hub layout (see
/// tests/fixtures/hf/make.py).
fn hf_fixture(name: &str) -> String {
    format!("{}/tests/fixtures/hf/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// `--dataset-name hf` on local copies of the datasets vLLM knows by id: each
/// makes its prompts and output lengths the way vLLM's datasets.py does (the
/// counts are words: the simulator's tokenizer).
#[test]
fn hf_datasets_from_local_copies() {
    let hf = |dir: &str, id: &str, extra: &[&str]| {
        let path = hf_fixture(dir);
        let mut a = vec![
            "--backend",
            "openai-chat",
            "--dataset-name",
            "hf",
            "--dataset-path",
            &path,
            "--hf-name",
            id,
            "--disable-shuffle",
            "--no-oversample",
            "--ignore-eos",
        ];
        a.extend_from_slice(extra);
        bench_json(&format!("hf-{dir}"), &a)
    };
    // InstructCoder (zstd Parquet): input, instruction and vLLM's sentence; 200 out.
    let r = hf(
        "InstructCoder",
        "likaixin/InstructCoder",
        &["--num-prompts", "4"],
    );
    assert_eq!(lens(&r, "input_lens"), vec![21; 4]);
    assert_eq!(lens(&r, "output_lens"), vec![200; 4]);
    // VisionArena: conversation[0][0].content, with images[0] as an image part
    // (the simulator counts 64 tokens per image).
    let r = hf(
        "VisionArena-Chat",
        "lmarena-ai/VisionArena-Chat",
        &["--num-prompts", "3", "--hf-output-len", "2"],
    );
    assert_eq!(lens(&r, "input_lens"), vec![6; 3]);
    assert_eq!(r["total_server_input_tokens"], 3 * (6 + 64));
    // AIMO: the solution's length is the output length.
    let r = hf(
        "aimo-validation-aime",
        "AI-MO/aimo-validation-aime",
        &["--num-prompts", "3"],
    );
    assert_eq!(lens(&r, "input_lens"), vec![9; 3]);
    assert_eq!(lens(&r, "output_lens"), vec![15, 25, 35]);
    // ShareGPT_Vicuna (one JSON file, no split in its name: train): a conversation
    // of one turn is dropped.
    let r = hf(
        "ShareGPT_Vicuna_unfiltered",
        "Aeala/ShareGPT_Vicuna_unfiltered",
        &["--num-prompts", "3"],
    );
    assert_eq!(lens(&r, "input_lens"), vec![6, 6]);
    assert_eq!(lens(&r, "output_lens"), vec![9, 7]);
    // BlazeEdit: rows outside the edit-distance window are dropped.
    let r = hf(
        "edit_5k_char",
        "vdaita/edit_5k_char",
        &[
            "--num-prompts",
            "3",
            "--blazedit-max-distance",
            "0.6",
            "--hf-output-len",
            "3",
        ],
    );
    assert_eq!(r["completed"], 2, "{r}");
    // MLPerf: system prompt and question as messages; the reference's length out.
    let r = hf(
        "mlperf-inference-llama3.1-data",
        "mgoin/mlperf-inference-llama3.1-data",
        &["--num-prompts", "3"],
    );
    assert_eq!(lens(&r, "input_lens"), vec![12, 10, 11]);
    assert_eq!(lens(&r, "output_lens"), vec![9, 5, 8]);
    // MMStar: split val by default; the question up to "Options:", with its image.
    let r = hf(
        "MMStar",
        "Lin-Chen/MMStar",
        &["--num-prompts", "2", "--hf-output-len", "2"],
    );
    assert_eq!(lens(&r, "input_lens"), vec![4, 4]);
    assert_eq!(r["total_server_input_tokens"], 2 * (4 + 64));
    // MT-Bench (JSON Lines): the first turn; oversampled to --num-prompts by default.
    let path = hf_fixture("mt-bench");
    let r = bench_json(
        "hf-mtbench",
        &[
            "--backend",
            "openai-chat",
            "--dataset-name",
            "hf",
            "--dataset-path",
            &path,
            "--hf-name",
            "philschmid/mt-bench",
            "--num-prompts",
            "7",
            "--output-len",
            "2",
            "--ignore-eos",
        ],
    );
    assert_eq!(lens(&r, "input_lens"), vec![8; 7]);
    assert_eq!(lens(&r, "output_lens"), vec![2; 7]);
}

/// What goes wrong with `hf` is said before anything is sent: a local copy
/// without --hf-name, an id with a typo, a wrong split, a file without the
/// dataset's columns, images for a completions backend.
#[test]
fn hf_mistakes_are_named() {
    let fail = |args: &[&str]| {
        let mut a = vec!["bench", "--dataset-name", "hf", "--num-prompts", "2"];
        a.extend_from_slice(args);
        let out = run(&a, LIMIT);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{args:?} succeeded: {stdout}");
        stderr
    };
    let ic = hf_fixture("InstructCoder");
    let e = fail(&["--backend", "openai-chat", "--dataset-path", &ic]);
    assert!(e.contains("--hf-name"), "{e}");
    let e = fail(&[
        "--backend",
        "openai-chat",
        "--dataset-path",
        &ic,
        "--hf-name",
        "likaixin/InstructCodr",
    ]);
    assert!(e.contains("did you mean likaixin/InstructCoder"), "{e}");
    let e = fail(&[
        "--backend",
        "openai-chat",
        "--dataset-path",
        &ic,
        "--hf-name",
        "likaixin/InstructCoder",
        "--hf-split",
        "test",
    ]);
    assert!(
        e.contains("no split 'test'") && e.contains("splits found: train"),
        "{e}"
    );
    // MT-Bench's file read as InstructCoder: the columns it has are listed.
    let e = fail(&[
        "--backend",
        "openai-chat",
        "--dataset-path",
        &hf_fixture("mt-bench"),
        "--hf-name",
        "likaixin/InstructCoder",
    ]);
    assert!(
        e.contains("needs column 'input'") && e.contains("turns"),
        "{e}"
    );
    // A Parquet file without any of the columns: its columns are named.
    let e = fail(&[
        "--backend",
        "openai-chat",
        "--dataset-path",
        &hf_fixture("aimo-validation-aime/data/train-00000-of-00001.parquet"),
        "--hf-name",
        "philschmid/mt-bench",
    ]);
    assert!(
        e.contains("the file has: id, problem, solution, answer, url"),
        "{e}"
    );
    let e = fail(&[
        "--backend",
        "openai",
        "--dataset-path",
        &hf_fixture("VisionArena-Chat"),
        "--hf-name",
        "lmarena-ai/VisionArena-Chat",
    ]);
    assert!(e.contains("--backend openai-chat"), "{e}");
    // Offline with nothing cached: the cache searched and HF_HUB_OFFLINE are named.
    let home = tmpdir("hf-offline");
    let out = bin()
        .args([
            "bench",
            "--dataset-name",
            "hf",
            "--dataset-path",
            "likaixin/InstructCoder",
            "--backend",
            "openai-chat",
        ])
        .env("HF_HOME", &home)
        .env_remove("HF_HUB_CACHE")
        .env_remove("HUGGINGFACE_HUB_CACHE")
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("HF_HUB_OFFLINE") && e.contains("datasets--likaixin--InstructCoder"),
        "{e}"
    );
}

/// A dataset id missing from the cache is downloaded from the Hub (a stand-in
/// through HF_ENDPOINT): the file list from /api, then the split's files into the
/// standard cache layout, where a second, offline run finds them.
#[test]
fn hf_dataset_from_the_hub() {
    let parquet = std::fs::read(hf_fixture(
        "InstructCoder/data/train-00000-of-00001.parquet",
    ))
    .unwrap();
    let info = serde_json::json!({
        "sha": "0123456789abcdef0123456789abcdef01234567",
        "siblings": [
            {"rfilename": ".gitattributes"},
            {"rfilename": "README.md"},
            {"rfilename": "data/train-00000-of-00001.parquet"},
            {"rfilename": "data/test-00000-of-00001.parquet"},
        ]
    });
    let hub = hub_routes(vec![
        (
            "/api/datasets/likaixin/InstructCoder/revision/main".into(),
            info.to_string().into_bytes(),
        ),
        (
            "/datasets/likaixin/InstructCoder/resolve/main/data/train-00000-of-00001.parquet"
                .into(),
            parquet,
        ),
    ]);
    let home = tmpdir("hf-hub-ds");
    let go = |offline: bool| {
        let mut c = bin();
        c.args([
            "bench",
            "--backend",
            "openai-chat",
            "--dataset-name",
            "hf",
            "--dataset-path",
            "likaixin/InstructCoder",
            "--num-prompts",
            "3",
            "--output-len",
            "2",
            "--disable-tqdm",
            "--save-result",
            "--save-detailed",
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
        let out = wait(c.spawn().unwrap(), LIMIT);
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "{stdout}{stderr}");
        let r: Value =
            serde_json::from_str(&std::fs::read_to_string(home.join("r.json")).unwrap()).unwrap();
        r
    };
    let r = go(false);
    assert_eq!(lens(&r, "input_lens"), vec![21; 3]);
    let snap = home.join(
        "hub/datasets--likaixin--InstructCoder/snapshots/0123456789abcdef0123456789abcdef01234567",
    );
    assert!(snap.join("data/train-00000-of-00001.parquet").is_file());
    assert!(
        !snap.join("data/test-00000-of-00001.parquet").exists(),
        "only the split asked for"
    );
    let r = go(true);
    assert_eq!(lens(&r, "input_lens"), vec![21; 3]);
}

/// For a completions backend the datasets vLLM templates are rendered with the
/// tokenizer's chat template (a fixed number of tokens more per prompt, here the
/// Qwen3 template's), and sent as written with --skip-chat-template.
#[test]
fn hf_templates_prompts_for_completions_backends() {
    let tok = format!("{}/tests/fixtures/qwen3", env!("CARGO_MANIFEST_DIR"));
    let ic = hf_fixture("InstructCoder");
    let go = |name: &str, extra: &[&str]| {
        let mut a = vec![
            "--backend",
            "openai",
            "--tokenizer",
            &tok,
            "--dataset-name",
            "hf",
            "--dataset-path",
            &ic,
            "--hf-name",
            "likaixin/InstructCoder",
            "--disable-shuffle",
            "--num-prompts",
            "4",
            "--output-len",
            "2",
        ];
        a.extend_from_slice(extra);
        lens(&bench_json(name, &a), "input_lens")
    };
    let templated = go("hf-tmpl", &[]);
    let raw = go("hf-raw", &["--skip-chat-template"]);
    let extra: Vec<i64> = templated
        .iter()
        .zip(&raw)
        .map(|(t, r)| *t as i64 - *r as i64)
        .collect();
    assert!(
        extra[0] > 0 && extra.iter().all(|e| *e == extra[0]),
        "{templated:?} vs {raw:?}"
    );
}

/// `random-mm`: the random dataset with synthetic JPEG images (vLLM's bucket
/// config, limits and item-count range); the simulator counts 64 tokens an image.
/// A 1x1 PNG, as vLLM's own custom_image tests write with PIL.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x00, 0x00, 0x00, 0x90, 0x77, 0x53,
    0xDE, 0x00, 0x00, 0x00, 0x0C, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0x00,
    0x00, 0x03, 0x01, 0x01, 0x00, 0xC9, 0xFE, 0x92, 0xEF, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E,
    0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// vLLM's custom_image through `bench`, in the layouts of vLLM's own tests: every
/// image of every line reaches the server (which charges 64 tokens an image and
/// reads file:// URLs from its disk), as file:// URLs or client-side data URLs, to
/// a chat server and to the CLIP and VLM2Vec embedding backends.
#[test]
fn custom_image_sends_every_image() {
    let dir = tmpdir("custom-image-data");
    std::fs::write(dir.join("a.png"), PNG).unwrap();
    std::fs::write(dir.join("b.png"), PNG).unwrap();
    let path = dir.join("images.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\": \"two charts here\", \"image_files\": [\"a.png\", \"b.png\"]}\n\
         {\"content\": [{\"type\": \"text\", \"text\": \"one chart\"}, {\"type\": \"image\", \"image\": \"a.png\"}]}\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let base = |backend: &'static str| {
        vec![
            "--backend",
            backend,
            "--dataset-name",
            "custom_image",
            "--dataset-path",
            p,
            "--num-prompts",
            "4",
            "--custom-output-len",
            "3",
            "--disable-shuffle",
        ]
    };
    // Two lines reused to make 4 requests (vLLM's oversampling): lines 1, 2, 1, 2.
    for extra in [&[][..], &["--custom-ensure-client-side-data"][..]] {
        let mut a = base("openai-chat");
        a.extend_from_slice(extra);
        let r = bench_json("custom-image", &a);
        assert_eq!(r["completed"], 4, "{extra:?}");
        assert_eq!(
            r["total_server_input_tokens"],
            2 * (3 + 2 * 64) + 2 * (2 + 64)
        );
    }
    // CLIP: the image alone (an empty text); VLM2Vec: its instruction, alternating.
    let r = bench_json("custom-image", &base("openai-embeddings-clip"));
    assert_eq!(r["completed"], 4);
    assert_eq!(r["total_server_input_tokens"], 2 * (2 * 64) + 2 * 64);
    let r = bench_json("custom-image", &base("openai-embeddings-vlm2vec"));
    assert_eq!(
        r["total_server_input_tokens"],
        2 * (4 + 2 * 64) + 2 * (10 + 64)
    );
    let fail = |args: &[&str], want: &str| {
        let mut a = vec!["bench"];
        a.extend_from_slice(args);
        let out = run(&a, LIMIT);
        let (_, stderr) = text(&out);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{args:?}: {stderr}"
        );
    };
    fail(&base("openai"), "--backend openai-chat");
    std::fs::write(
        &path,
        "{\"prompt\": \"x\", \"image_files\": [\"nope.png\"]}\n",
    )
    .unwrap();
    let mut a = base("openai-chat");
    a.push("--custom-ensure-client-side-data");
    fail(&a, "images.jsonl:1: cannot read image");
}

/// A mono 16-bit PCM WAV of `seconds` of silence at 16 kHz.
fn wav(seconds: f64) -> Vec<u8> {
    let data = (seconds * 16_000.0) as u32 * 2;
    let mut b = b"RIFF".to_vec();
    b.extend_from_slice(&(36 + data).to_le_bytes());
    b.extend_from_slice(b"WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00");
    b.extend_from_slice(&16_000u32.to_le_bytes());
    b.extend_from_slice(&32_000u32.to_le_bytes());
    b.extend_from_slice(b"\x02\x00\x10\x00data");
    b.extend_from_slice(&data.to_le_bytes());
    b.resize(b.len() + data as usize, 0);
    b
}

/// vLLM's custom_audio through `bench`: to the transcription API (a multipart
/// form; the simulator charges 50 tokens per second of audio it reads from the
/// file's header) and to a chat API (an input_audio part), with vLLM's RTFx:
/// the seconds of audio sent over the run's duration.
#[test]
fn custom_audio_transcriptions_and_rtfx() {
    let dir = tmpdir("custom-audio-data");
    std::fs::write(dir.join("one.wav"), wav(1.0)).unwrap();
    std::fs::write(dir.join("two.wav"), wav(2.5)).unwrap();
    let path = dir.join("audio.jsonl");
    std::fs::write(
        &path,
        "{\"prompt\": \"Transcribe the audio.\", \"audio\": \"one.wav\"}\n{\"audio\": \"two.wav\"}\n",
    )
    .unwrap();
    let p = path.to_str().unwrap();
    let base = |backend: &'static str| {
        vec![
            "--backend",
            backend,
            "--dataset-name",
            "custom_audio",
            "--dataset-path",
            p,
            "--num-prompts",
            "4",
            "--custom-output-len",
            "5",
            "--disable-shuffle",
        ]
    };
    // Lines 1, 2, 1, 2 (oversampled): 2 x 1.0 s + 2 x 2.5 s of audio.
    for extra in [&[][..], &["--endpoint", "/v1/audio/translations"][..]] {
        let mut a = base("openai-audio");
        a.extend_from_slice(extra);
        let r = bench_json("custom-audio", &a);
        assert_eq!(r["completed"], 4, "{extra:?}");
        assert_eq!(r["total_server_input_tokens"], 2 * 50 + 2 * 125);
        let rtfx = r["rtfx"].as_f64().unwrap();
        let dur = r["duration"].as_f64().unwrap();
        assert!(
            (rtfx * dur - 7.0).abs() < 1e-6,
            "rtfx {rtfx} x duration {dur}"
        );
        assert!(r["total_output_tokens"].as_u64().unwrap() >= 4);
    }
    // vLLM's ASR datasets from the Hub's Parquet layout: each row's audio clip
    // (the 31 s one dropped, as Whisper takes at most 30 s), 128 tokens asked.
    let asr = |extra: &[&str]| {
        let path = hf_fixture("librispeech_asr");
        let mut a = vec![
            "--backend",
            "openai-audio",
            "--dataset-name",
            "hf",
            "--dataset-path",
            &path,
            "--hf-name",
            "openslr/librispeech_asr",
            "--hf-subset",
            "clean",
            "--hf-split",
            "validation",
            "--disable-shuffle",
            "--no-oversample",
            "--num-prompts",
            "5",
        ];
        a.extend_from_slice(extra);
        bench_json("hf-asr", &a)
    };
    let r = asr(&[]);
    assert_eq!(r["completed"], 2);
    assert_eq!(r["total_server_input_tokens"], 50 + 100);
    let rtfx = r["rtfx"].as_f64().unwrap() * r["duration"].as_f64().unwrap();
    assert!((rtfx - 3.0).abs() < 1e-6, "{rtfx}");
    let r = asr(&["--asr-max-audio-len-sec", "1.5"]);
    assert_eq!(r["completed"], 1);
    let r = asr(&["--asr-min-audio-len-sec", "1.5"]);
    assert_eq!(r["total_server_input_tokens"], 100);
    let r = bench_json("custom-audio", &base("openai-chat"));
    assert_eq!(r["total_server_input_tokens"], 2 * (3 + 50) + 2 * 125);
    assert!(r["rtfx"].as_f64().unwrap() > 0.0);
    let fail = |args: &[&str], want: &str| {
        let mut a = vec!["bench"];
        a.extend_from_slice(args);
        let out = run(&a, LIMIT);
        let (_, stderr) = text(&out);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{args:?}: {stderr}"
        );
    };
    fail(&base("openai"), "--backend openai-audio");
    fail(
        &["--backend", "openai-audio", "--num-prompts", "2"],
        "--dataset-name custom_audio",
    );
    std::fs::write(dir.join("song.mp3"), b"ID3\x04 not a wav").unwrap();
    std::fs::write(&path, "{\"audio\": \"song.mp3\"}\n").unwrap();
    fail(&base("openai-audio"), "audio.jsonl:1");
}

#[test]
fn random_mm_sends_images() {
    let r = bench_json(
        "random-mm",
        &[
            "--backend",
            "openai-chat",
            "--dataset-name",
            "random-mm",
            "--num-prompts",
            "10",
            "--random-input-len",
            "30",
            "--random-output-len",
            "2",
            "--random-mm-bucket-config",
            "{(32, 48, 1): 0.7, (16, 16, 1): 0.3, (720, 1280, 16): 0.0}",
            "--random-mm-base-items-per-request",
            "2",
            "--random-mm-limit-mm-per-prompt",
            "{\"image\": 2, \"video\": 1}",
        ],
    );
    assert_eq!(lens(&r, "input_lens"), vec![30; 10]);
    assert_eq!(r["total_server_input_tokens"], 10 * (30 + 2 * 64));
    let fail = |extra: &[&str], want: &str| {
        let mut a = vec!["bench", "--dataset-name", "random-mm", "--num-prompts", "2"];
        a.extend_from_slice(extra);
        let out = run(&a, LIMIT);
        let (_, stderr) = text(&out);
        assert!(
            !out.status.success() && stderr.contains(want),
            "{extra:?}: {stderr}"
        );
    };
    fail(&["--backend", "openai"], "--backend openai-chat");
    // Three asked for where the limit allows two (vLLM refuses it too).
    fail(
        &[
            "--backend",
            "openai-chat",
            "--random-mm-base-items-per-request",
            "3",
            "--random-mm-limit-mm-per-prompt",
            "{\"image\": 2, \"video\": 0}",
        ],
        "the limits allow 2",
    );
    fail(
        &[
            "--backend",
            "openai-chat",
            "--random-mm-bucket-config",
            "{(32, 32): 1}",
        ],
        "is not (height, width, frames): probability",
    );
    fail(
        &[
            "--backend",
            "openai-chat",
            "--random-mm-bucket-config",
            "{(32, 32, 8): 1}",
        ],
        "no MP4 encoder",
    );
}
