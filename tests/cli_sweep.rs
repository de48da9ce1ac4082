//! Sweeps, aggregation, the PyTorch format, comparison, reports and the server check.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(180);

fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let child = bin()
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait(child, LIMIT)
}

/// The seed toolkit's config.yaml, keys and file names unchanged, over a 2x2 grid.
#[test]
fn seed_config_sweep_resume_and_aggregate() {
    let sim = serve_sim(&[
        "--model",
        "Org/Seed-Model",
        "--ttft-ms",
        "3",
        "--itl-ms",
        "1",
    ]);
    let dir = tmpdir("seed-sweep");
    std::fs::write(
        dir.join("config.yaml"),
        format!(
            "model: Org/Seed-Model\nbase_url: \"{}\"\ntokenizer: words\ninput_output:\n  - [32, 16]\n  - [64, 8]\nconcurrency_prompts:\n  - [1, 3]\n  - [4, 8]\n",
            sim.url
        ),
    )
    .unwrap();
    let out = run_in(&dir, &["sweep", "config.yaml"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("[3/4] io=(64,8) mc=1 np=3"), "{stdout}");
    // The seed's run folder: results/{model_short}_{YYYYmmdd_HHMMSS}/.
    let folders = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir.join("results"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        v.sort();
        v
    };
    let first = folders();
    assert_eq!(first.len(), 1, "{first:?}");
    let run = first[0].clone();
    let stamp = run
        .strip_prefix("Seed-Model_")
        .expect("named after the model");
    assert!(
        stamp.len() == 15 && stamp.as_bytes()[8] == b'_',
        "YYYYmmdd_HHMMSS: {run}"
    );
    let rd = dir.join("results").join(&run);
    let mut names: Vec<String> = std::fs::read_dir(&rd)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ".sweep.json",
            "bench_io32x16_mc1_np3.json",
            "bench_io32x16_mc4_np8.json",
            "bench_io64x8_mc1_np3.json",
            "bench_io64x8_mc4_np8.json"
        ]
    );
    let r: Value = serde_json::from_str(
        &std::fs::read_to_string(rd.join("bench_io64x8_mc4_np8.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        (
            r["completed"].as_u64(),
            r["max_concurrency"].as_u64(),
            r["total_input_tokens"].as_u64()
        ),
        (Some(8), Some(4), Some(8 * 64))
    );
    assert_eq!(r["model_id"], "Org/Seed-Model");
    assert!(
        r.get("mean_e2el_ms").is_some(),
        "run.py's --percentile-metrics ttft,tpot,itl,e2el"
    );

    // --resume continues that folder: complete points are skipped, a broken one is
    // run again and its old file kept.
    std::fs::write(rd.join("bench_io64x8_mc1_np3.json"), "{not json").unwrap();
    let out = run_in(&dir, &["sweep", "config.yaml", "--resume"]);
    let (stdout, _) = text(&out);
    assert!(out.status.success());
    assert!(
        stdout.contains(&format!("Resuming results/{run}")),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("already done, skipped").count(),
        3,
        "{stdout}"
    );
    assert!(
        stdout.contains("[3/4] io=(64,8) mc=1 np=3\n"),
        "the broken point ran again: {stdout}"
    );
    assert_eq!(
        std::fs::read_to_string(rd.join("bench_io64x8_mc1_np3.json.incomplete")).unwrap(),
        "{not json"
    );
    assert_eq!(
        folders(),
        std::slice::from_ref(&run),
        "--resume made no new folder"
    );
    let before = std::fs::read_to_string(rd.join("bench_io32x16_mc1_np3.json")).unwrap();
    // --overwrite without --resume is refused (it would replace nothing).
    let out = run_in(&dir, &["sweep", "config.yaml", "--overwrite"]);
    assert!(!out.status.success());
    assert!(
        text(&out)
            .1
            .contains("--overwrite replaces files of an earlier run folder")
    );
    // The same config again: a new folder; the first is untouched.
    std::thread::sleep(Duration::from_millis(1100));
    let out = run_in(&dir, &["sweep", "config.yaml"]);
    assert!(out.status.success(), "{}", text(&out).1);
    let both = folders();
    assert_eq!(both.len(), 2, "{both:?}");
    assert_eq!(
        std::fs::read_to_string(rd.join("bench_io32x16_mc1_np3.json")).unwrap(),
        before,
        "the first run's file was not overwritten"
    );
    let newest = both.iter().find(|n| **n != run).unwrap().clone();
    // aggregate and report with no path read the newest run folder; --list and --dir.
    let out = run_in(&dir, &["aggregate"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("using the newest run folder, results/{newest}")),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!(
            "aggregated 4 results -> results/{newest}/aggregate_results_"
        )),
        "{stdout}"
    );
    let out = run_in(&dir, &["aggregate", "--list"]);
    let listed = text(&out).0;
    assert!(
        listed.find(&newest).unwrap() < listed.find(&run).unwrap(),
        "newest first: {listed}"
    );
    let out = run_in(&dir, &["report", "--dir", &run]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(rd.join("report.html").exists());
    // PNGs for slides and chat, in Chinese, beside nothing else.
    let out = run_in(
        &dir,
        &["report", "--dir", &run, "--lang", "zh", "--png", "pngs"],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let mut pngs: Vec<String> = std::fs::read_dir(dir.join("pngs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    pngs.sort();
    assert!(
        stdout.contains(&format!("{} 张 PNG 图表 → pngs", pngs.len())),
        "{stdout}"
    );
    for want in [
        "01_output_throughput.png",
        "_seed_heatmap.png",
        "_seed_dashboard.png",
    ] {
        assert!(pngs.iter().any(|p| p.ends_with(want)), "{want}: {pngs:?}");
    }
    for p in &pngs {
        let bytes = std::fs::read(dir.join("pngs").join(p)).unwrap();
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n") && bytes.len() > 5000,
            "{p}"
        );
    }
    // A --png path that cannot be a folder: named, and the page is still written.
    std::fs::write(dir.join("taken"), "").unwrap();
    let out = run_in(&dir, &["report", "--dir", &run, "--png", "taken"]);
    let err = text(&out).1;
    assert!(
        !out.status.success() && err.contains("moonbench report: --png taken: cannot create taken"),
        "{err}"
    );
    let typo = run.replacen("Seed-", "Sed-", 1);
    let out = run_in(&dir, &["aggregate", "--dir", &typo]);
    let err = text(&out).1;
    assert!(
        !out.status.success() && err.contains(&format!("did you mean {run}?")),
        "{err}"
    );
    // The whole results folder, recursively: both runs, with their folders named.
    let out = run_in(
        &dir,
        &["aggregate", "results", "-o", "all.csv", "--header", "en"],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let all = std::fs::read_to_string(dir.join("all.csv")).unwrap();
    assert_eq!(all.lines().count(), 1 + 8, "{all}");
    assert!(all.lines().next().unwrap().ends_with(",result_dir"));
    assert!(all.contains(&format!(",{run}\n")) && all.contains(&format!(",{newest}\n")));
    // From here on, the first run's folder as a folder of results.
    let rel = format!("results/{run}");

    // aggregate: rows sorted by the grid, both header rows, plus a vLLM-written result.
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/vllm_results/bench_io256x256_mc4_np40.json"
        ),
        rd.join("bench_io256x256_mc4_np40.json"),
    )
    .unwrap();
    std::fs::write(rd.join("notes.json"), "[1, 2]").unwrap();
    let out = run_in(&dir, &["aggregate", &rel, "-o", "agg.csv"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout.contains("aggregated 5 results -> agg.csv"),
        "{stdout}"
    );
    assert!(
        stderr.contains(&format!("skipped {rel}/notes.json")),
        "non-results are named: {stderr}"
    );
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_path(dir.join("agg.csv"))
        .unwrap();
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let en = &rows[0];
    let zh = &rows[1];
    let col = |name: &str| {
        en.iter()
            .position(|c| c == name)
            .unwrap_or_else(|| panic!("column {name}"))
    };
    assert_eq!(&zh[col("date")], "日期");
    assert_eq!(&zh[col("mean_ttft_ms")], "平均首令牌时间(ms)");
    assert_eq!(
        &zh[col("request_goodput:")],
        "请求有效吞吐量",
        "vLLM 0.9's key keeps its column"
    );
    assert_eq!(&zh[col("filename")], "文件名");
    assert_eq!(
        en.iter().skip(en.len() - 3).collect::<Vec<_>>(),
        ["input_len", "output_len", "filename"]
    );
    let data = &rows[2..];
    assert_eq!(data.len(), 5);
    let order: Vec<&str> = data.iter().map(|r| &r[col("filename")]).collect();
    assert_eq!(
        order,
        [
            "bench_io32x16_mc1_np3.json",
            "bench_io32x16_mc4_np8.json",
            "bench_io64x8_mc1_np3.json",
            "bench_io64x8_mc4_np8.json",
            "bench_io256x256_mc4_np40.json"
        ]
    );
    assert_eq!(
        (&data[4][col("input_len")], &data[4][col("output_len")]),
        ("256", "256")
    );
    assert_eq!(&data[4][col("model_id")], "Qwen/Qwen2.5-7B-Instruct");
    // One plain header for pandas; markdown and JSON too.
    let out = run_in(
        &dir,
        &["aggregate", &rel, "-o", "plain.csv", "--header", "en"],
    );
    assert!(out.status.success());
    let plain = std::fs::read_to_string(dir.join("plain.csv")).unwrap();
    assert!(plain.starts_with("date,") && !plain.contains("日期"));
    let out = run_in(
        &dir,
        &["aggregate", &rel, "-o", "agg.md", "--format", "markdown"],
    );
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(dir.join("agg.md"))
            .unwrap()
            .starts_with("| date<br>日期 |")
    );
    // The default output name is the seed's.
    let out = run_in(&dir, &["aggregate", &rel, "--lang", "zh"]);
    assert!(
        text(&out)
            .0
            .contains(&format!("已聚合 5 个测试结果 → {rel}/aggregate_results_"))
    );
}

#[test]
fn dry_run_prints_the_plan_and_sends_nothing() {
    let dir = tmpdir("dry");
    let out = run_in(&dir, &["sweep", "scripts/config.yaml", "--dry-run"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("4 points, 72 requests in all"), "{stdout}");
    assert!(
        stdout.contains("[4/4] io=(512,128) mc=8 np=32 -> results/moonbench-sim_")
            && stdout.contains("/bench_io512x128_mc8_np32.json"),
        "{stdout}"
    );
    assert!(!dir.join("results").exists());
}

#[test]
fn bad_configs_name_file_line_and_the_fix() {
    let dir = tmpdir("badcfg");
    for (body, needle) in [
        ("input_output: [[1, 2]\n", "c.yaml:2:1: YAML syntax error"),
        (
            "input_ouput:\n  - [1, 2]\nconcurrency_prompts: [[1, 1]]\n",
            "c.yaml:1: unknown key 'input_ouput' (did you mean 'input_output'?)",
        ),
        (
            "input_output:\n  - [1, 2]\n  - [3]\nconcurrency_prompts: [[1, 1]]\n",
            "c.yaml:3: input_output item 2 must be [input_len, output_len]",
        ),
        (
            "base_url: http://127.0.0.1:1\ninput_output: [[1, 2]]\nconcurrency_prompts: [[1, 1]]\n",
            "c.yaml:1: missing key 'model'",
        ),
        (
            "input_output: [[1, 2]]\n",
            "missing key 'concurrency_prompts'",
        ),
        (
            "input_output: [[1, 2]]\nconcurrency_prompts: [[1, 1]]\ndefaults:\n  max-concurency: 3\n",
            "c.yaml:4: defaults: 'max-concurency' is not a `moonbench bench` flag (did you mean 'max-concurrency'?)",
        ),
        (
            "input_output: [[1, 2]]\nconcurrency_prompts: [[1, 1]]\nrepeats: two\n",
            "c.yaml:3: repeats must be a whole number",
        ),
        (
            "input_output: [[1, 2]]\nconcurrency_prompts: [[1, 1]]\nsim:\n  ttft: 3\n",
            "c.yaml:4: sim: unknown key 'ttft' (did you mean 'ttft_ms'?)",
        ),
    ] {
        std::fs::write(dir.join("c.yaml"), body).unwrap();
        let out = run_in(&dir, &["sweep", "c.yaml"]);
        let (stdout, stderr) = text(&out);
        assert!(!out.status.success(), "{body}");
        assert!(
            stderr.contains(needle),
            "for {body:?} expected {needle:?}, got:\n{stderr}"
        );
        assert!(!stdout.contains("[1/"), "nothing ran");
        assert!(!stderr.contains("runtime error"), "{stderr}");
    }
    // The same errors in Chinese, from the message catalogue.
    std::fs::write(
        dir.join("c.yaml"),
        "input_ouput:\n  - [1, 2]\nconcurrency_prompts: [[1, 1]]\n",
    )
    .unwrap();
    let out = run_in(&dir, &["sweep", "c.yaml", "--lang", "zh"]);
    let err = text(&out).1;
    assert!(
        !out.status.success()
            && err.contains("c.yaml:1: 未知的键 'input_ouput'（是不是 'input_output'？）"),
        "{err}"
    );
}

#[test]
fn pytorch_format_compare_and_report() {
    let dir = tmpdir("pt");
    let d = dir.to_str().unwrap();
    let base = [
        "bench",
        "--num-prompts",
        "6",
        "--random-input-len",
        "16",
        "--random-output-len",
        "8",
        "--disable-tqdm",
        "--percentile-metrics",
        "ttft,tpot,itl,e2el",
        "--save-detailed",
        "--result-dir",
        d,
    ];
    let mut a = base.to_vec();
    a.extend([
        "--result-filename",
        "a.json",
        "--sim-ttft-ms",
        "5",
        "--sim-itl-ms",
        "1",
        "--save-pytorch-format",
    ]);
    assert!(run(&a, LIMIT).status.success());
    let mut b = base.to_vec();
    b.extend([
        "--result-filename",
        "b.json",
        "--sim-ttft-ms",
        "40",
        "--sim-itl-ms",
        "1",
    ]);
    assert!(run(&b, LIMIT).status.success());
    // vLLM's PyTorch-benchmark records.
    let pt: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("a.pytorch.json")).unwrap())
            .unwrap();
    let recs = pt.as_array().unwrap();
    assert_eq!(recs.len(), 12);
    assert_eq!(recs[0]["benchmark"]["name"], "vLLM benchmark");
    assert_eq!(recs[0]["metric"]["name"], "median_ttft_ms");
    assert_eq!(
        recs[0]["benchmark"]["extra_info"]["args"]["request_rate"], "inf",
        "InfEncoder writes inf as a string"
    );
    assert!(recs[0]["metric"]["extra_info"].get("ttfts").is_none());
    assert!(
        recs[0]["benchmark"]["extra_info"]["args"]
            .get("api_key")
            .is_none()
    );
    // compare: a TTFT regression fails the gate, an unchanged metric passes.
    let out = run(
        &[
            "compare",
            &format!("{d}/a.json"),
            &format!("{d}/b.json"),
            "--fail-if",
            "mean_ttft_ms>+10%",
            "--fail-if",
            "failed>0",
        ],
        LIMIT,
    );
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL mean_ttft_ms: change is +"),
        "{stdout}"
    );
    let out = run(
        &[
            "compare",
            &format!("{d}/a.json"),
            &format!("{d}/a.json"),
            "--fail-if",
            "mean_ttft_ms>+10%",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(0));
    let out = run(
        &[
            "compare",
            &format!("{d}/a.json"),
            &format!("{d}/b.json"),
            "--fail-if",
            "nope>1",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2));
    // report: one self-contained file with every chart.
    let out = run(
        &[
            "report",
            &format!("{d}/a.json"),
            &format!("{d}/b.json"),
            "-o",
            &format!("{d}/r.html"),
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let html = std::fs::read_to_string(dir.join("r.html")).unwrap();
    for needle in [
        "<svg",
        "Output token throughput",
        "End-to-end latency (E2EL)",
        "TTFT distribution (CDF)",
        "waiting (TTFT)",
        "a.json",
        "b.json",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "no external resources"
    );
}

#[test]
fn check_runs_the_guided_first_run_on_the_simulator() {
    let dir = tmpdir("check");
    let out = run_in(&dir, &["check", "--yes"]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    for needle in [
        "[1/5] Checking the config scripts/config.yaml",
        "[3/5] Smoke test",
        "ok: 5/5 requests",
        "Summary over 4 results",
        "mean request throughput",
    ] {
        assert!(stdout.contains(needle), "{needle}\n{stdout}");
    }
    // The smoke test wrote nothing beside the run folders (it once left a result file here).
    let here: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(here, ["results"], "{here:?}");
    // The sweep's run folder, and the summary read from it.
    let run: Vec<_> = std::fs::read_dir(dir.join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(run.len(), 1, "{run:?}");
    assert!(run[0].join("bench_io512x128_mc8_np32.json").exists());
    assert!(
        stdout.contains(&format!(
            "Next: moonbench report --dir {}",
            run[0].strip_prefix(&dir).unwrap().display()
        )),
        "{stdout}"
    );
}

#[test]
fn check_gives_advice_for_a_wrong_server() {
    let dir = tmpdir("check-bad");
    let port = closed_port();
    std::fs::write(dir.join("config.yaml"), format!(
        "model: m\nbase_url: http://127.0.0.1:{port}\ntokenizer: words\ninput_output: [[8, 8]]\nconcurrency_prompts: [[1, 1]]\n")).unwrap();
    let out = run_in(&dir, &["check", "--yes"]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("cannot reach http://127.0.0.1:")
            && stderr.contains("Is the server running?"),
        "{stderr}"
    );
    let sim = serve_sim(&[
        "--model",
        "Org/Seed-Model",
        "--ttft-ms",
        "3",
        "--itl-ms",
        "1",
    ]);
    std::fs::write(dir.join("config.yaml"), format!(
        "model: Org/Seed-Modl\nbase_url: {}\ntokenizer: words\ninput_output: [[8, 8]]\nconcurrency_prompts: [[1, 1]]\n", sim.url)).unwrap();
    let out = run_in(&dir, &["check", "--yes"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("model 'Org/Seed-Modl' is not served here; set `model: Org/Seed-Model`"),
        "{stderr}"
    );
}

/// `bench --preset seed-single`: the seed's `main.py single` (100 prompts,
/// concurrency 10, 256/256) into a new run folder, explicit flags winning; the
/// folder is what `aggregate` then reads.
#[test]
fn seed_single_preset_runs_into_a_run_folder() {
    let dir = tmpdir("seed-single");
    let out = run_in(
        &dir,
        &["bench", "--preset", "seed-single", "--num-prompts", "12"],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let run: Vec<_> = std::fs::read_dir(dir.join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(run.len(), 1);
    assert!(
        run[0]
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("moonbench-sim_")
    );
    let files: Vec<_> = std::fs::read_dir(&run[0])
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files.len(), 1);
    assert!(
        files[0].starts_with("single_bench_") && files[0].ends_with(".json"),
        "{files:?}"
    );
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(run[0].join(&files[0])).unwrap()).unwrap();
    assert_eq!(
        r["completed"], 12,
        "--num-prompts given wins over the preset's 100"
    );
    assert_eq!(r["max_concurrency"], 10);
    assert_eq!(r["total_input_tokens"], 12 * 256);
    assert_eq!(r["total_output_tokens"], 12 * 256);
    assert!(
        r.get("mean_e2el_ms").is_some(),
        "the seed's percentile metrics"
    );
    let out = run_in(&dir, &["aggregate"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert!(text(&out).0.contains("aggregated 1 results"));
    let out = run_in(&dir, &["bench", "--preset", "seed-singel"]);
    assert!(!out.status.success());
    assert!(text(&out).1.contains("seed-single"), "{}", text(&out).1);
}
