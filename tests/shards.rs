//! Sharded runs (`--shard I/N`): 4 shard processes against one `serve-sim` send
//! exactly the unsharded run's requests between them — the same prompts at the
//! same schedule positions and intended times — each with its part of the
//! concurrency limit; bad shard specs stop before anything is sent.

mod common;

use std::process::{Child, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(120);

/// The wall clock `secs` from now in Unix seconds, as `--start-at` takes it:
/// whole seconds, or with a fraction when `fraction`.
fn unix_in(secs: f64, fraction: bool) -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        + secs;
    if fraction {
        t.to_string()
    } else {
        (t as u64).to_string()
    }
}

fn floats(v: &Value, key: &str) -> Vec<f64> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("no {key}"))
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn four_shards_make_the_unsharded_run() {
    let sim = serve_sim(&["--engine", "fixed", "--ttft-ms", "5", "--itl-ms", "1"]);
    let url = sim.url.clone();
    let dir = tmpdir("shards");
    let bench = |name: &str, extra: &[&str], env: Option<(&str, &str)>| -> Child {
        let d = dir.to_str().unwrap().to_string();
        let mut c = bin();
        c.args([
            "bench",
            "--base-url",
            &url,
            "--tokenizer",
            "words",
            "--num-prompts",
            "20",
            "--random-input-len",
            "40",
            "--random-range-ratio",
            "0.5",
            "--random-output-len",
            "3",
            "--request-rate",
            "50",
            "--seed",
            "7",
            "--max-concurrency",
            "8",
            "--disable-tqdm",
            "--save-result",
            "--save-detailed",
            "--result-dir",
            &d,
            "--result-filename",
            name,
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        if let Some((k, v)) = env {
            c.env(k, v);
        }
        c.spawn().unwrap()
    };
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let whole = wait(bench("whole.json", &[], None), LIMIT);
    assert!(whole.status.success(), "{}", text(&whole).1);
    // Four processes at once with a common start 3 s ahead: flags for three,
    // Kubernetes' index for the fourth.
    let start = unix_in(3.0, false);
    let shards: Vec<Child> = (0..4)
        .map(|i| {
            let name = format!("shard{i}.json");
            if i == 3 {
                bench(
                    &name,
                    &["--shards", "4", "--start-at", &start],
                    Some(("JOB_COMPLETION_INDEX", "3")),
                )
            } else {
                let flag = format!("{i}/4");
                bench(&name, &["--shard", &flag, "--start-at", &start], None)
            }
        })
        .collect();
    for c in shards {
        let out = wait(c, LIMIT);
        assert!(out.status.success(), "{}", text(&out).1);
    }
    let w = read("whole.json");
    let lens = floats(&w, "input_lens");
    // Intended send times: start time minus the client queue time.
    let intended = |v: &Value| -> Vec<f64> {
        floats(v, "start_times")
            .iter()
            .zip(floats(v, "queue_times"))
            .map(|(s, q)| s - q)
            .collect()
    };
    let whole_times = intended(&w);
    let mut total = 0;
    for i in 0..4 {
        let s = read(&format!("shard{i}.json"));
        assert_eq!(s["shard"]["index"], i);
        assert_eq!(s["start_at"].as_f64(), start.parse::<f64>().ok());
        assert_eq!(s["shard"]["count"], 4);
        assert_eq!(s["completed"], 5, "shard {i}");
        assert_eq!(s["max_concurrency"], 2, "each shard holds 8 / 4");
        total += s["completed"].as_u64().unwrap();
        let mine: Vec<f64> = lens.iter().skip(i).step_by(4).copied().collect();
        assert_eq!(
            floats(&s, "input_lens"),
            mine,
            "shard {i}: the same prompts"
        );
        let want: Vec<f64> = whole_times.iter().skip(i).step_by(4).copied().collect();
        for (a, b) in intended(&s).iter().zip(&want) {
            assert!((a - b).abs() < 1e-6, "shard {i}: intended {a} vs {b}");
        }
    }
    assert_eq!(total, 20);
    assert_eq!(
        w["total_input_tokens"].as_f64().unwrap(),
        lens.iter().sum::<f64>()
    );

    // The merge: one result whose requests are the unsharded run's and whose every
    // statistic is the one computed from all the shards' records together.
    let files: Vec<String> = (0..4)
        .map(|i| dir.join(format!("shard{i}.json")).display().to_string())
        .collect();
    let merged = dir.join("merged.json");
    let merge = |files: &[&str], extra: &[&str]| {
        let mut a = vec!["merge"];
        a.extend_from_slice(files);
        a.extend_from_slice(&["-o", merged.to_str().unwrap()]);
        a.extend_from_slice(extra);
        run(&a, LIMIT)
    };
    let all: Vec<&str> = files.iter().map(String::as_str).collect();
    let out = merge(
        &all,
        &[
            "--save-detailed",
            "--metric-percentiles",
            "50,90,99",
            "--percentile-metrics",
            "ttft,tpot,itl,e2el",
        ],
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let m = read("merged.json");
    assert_eq!(m["completed"], 20);
    assert_eq!(m["merged_shards"], 4);
    assert_eq!(m["max_concurrency"], 8);
    assert_eq!(
        floats(&m, "input_lens"),
        lens,
        "the unsharded run's prompts, in order"
    );
    assert_eq!(m["total_input_tokens"], w["total_input_tokens"]);
    // numpy's linear percentile over the concatenated per-request values.
    let pct = |xs: &[f64], p: f64| {
        let mut v = xs.to_vec();
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let rank = p / 100.0 * (v.len() - 1) as f64;
        let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (rank - lo as f64)
    };
    let concat = |key: &str| -> Vec<f64> {
        (0..4)
            .flat_map(|i| floats(&read(&format!("shard{i}.json")), key))
            .collect()
    };
    for (key, metric) in [("ttfts", "ttft"), ("latencies", "e2el")] {
        let xs = concat(key);
        let mut a = xs.clone();
        let mut b = floats(&m, key);
        a.sort_by(|x, y| x.partial_cmp(y).unwrap());
        b.sort_by(|x, y| x.partial_cmp(y).unwrap());
        assert_eq!(a, b, "{key}: the shards' requests, all of them");
        for p in [50.0, 90.0, 99.0] {
            let got = m[format!("p{p}_{metric}_ms").replace(".0_", "_")]
                .as_f64()
                .unwrap();
            let want = pct(&xs, p) * 1000.0;
            assert!(
                (got - want).abs() < 1e-9 * want.max(1.0),
                "p{p} {metric}: {got} vs {want}"
            );
        }
    }
    // Each shard measured its clock against the server's Date header; on one
    // machine the truth is 0, and the shards agree.
    for i in 0..4 {
        let c = &read(&format!("shard{i}.json"))["shard"]["clock"];
        let (o, u) = (
            c["offset_s"].as_f64().unwrap(),
            c["uncertainty_s"].as_f64().unwrap(),
        );
        assert!(o - u <= 0.0 && 0.0 <= o + u, "shard {i}: clock {c}");
        assert!(c["probes"].as_u64().unwrap() >= 1);
    }
    assert_eq!(m["shard_clock_disagreement_s"], 0.0);
    assert_eq!(m["shard_timeline"], "wall_clock");
    // A shard whose clock is 5 s behind (its wall-clock start and its measured
    // offset moved together, as such a machine would write them): the merge
    // places it by the server's clock, so the run does not grow by 5 s.
    let mut late = read("shard3.json");
    let t0 = late["shard"]["t0_unix"].as_f64().unwrap();
    late["shard"]["t0_unix"] = (t0 - 5.0).into();
    let off = late["shard"]["clock"]["offset_s"].as_f64().unwrap();
    late["shard"]["clock"]["offset_s"] = (off + 5.0).into();
    let late_path = dir.join("shard3-late.json");
    std::fs::write(&late_path, late.to_string()).unwrap();
    let late_files = [all[0], all[1], all[2], late_path.to_str().unwrap()];
    let out = merge(&late_files, &[]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("clocks disagree by at least"), "{err}");
    let fixed = read("merged.json");
    assert_eq!(fixed["shard_timeline"], "server_date");
    assert!(fixed["shard_clock_disagreement_s"].as_f64().unwrap() > 3.0);
    let (d0, d1) = (
        m["duration"].as_f64().unwrap(),
        fixed["duration"].as_f64().unwrap(),
    );
    assert!((d1 - d0).abs() < 1.1, "duration {d0} became {d1}");
    assert!(fixed["shard_start_skew_s"].as_f64().unwrap() < 1.1);

    // A shard whose server sent no Date header (llama-server sends none): the
    // merge says the clocks were not compared, and trusts the wall clocks.
    let mut blind = read("shard2.json");
    blind["shard"]["clock"] = Value::Null;
    let blind_path = dir.join("shard2-no-date.json");
    std::fs::write(&blind_path, blind.to_string()).unwrap();
    let out = merge(&[all[0], all[1], blind_path.to_str().unwrap(), all[3]], &[]);
    let (_, err) = text(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("the shards' clocks were not compared: ")
            && err.contains("shard2-no-date.json measured no offset"),
        "{err}"
    );
    let m2 = read("merged.json");
    assert_eq!(m2["shard_clock_disagreement_s"], Value::Null);
    assert_eq!(m2["shard_timeline"], "wall_clock");

    // Shards missing, repeated, from another run, or not shards at all.
    let out = merge(&all[..3], &[]);
    assert!(
        text(&out).1.contains("shard 3/4 missing"),
        "{}",
        text(&out).1
    );
    let out = merge(&[all[0], all[0], all[1], all[2]], &[]);
    assert!(
        text(&out).1.contains("are both shard 0/4"),
        "{}",
        text(&out).1
    );
    let whole_file = dir.join("whole.json").display().to_string();
    let out = merge(&[&whole_file], &[]);
    assert!(
        text(&out).1.contains("not a shard's result"),
        "{}",
        text(&out).1
    );
    let other = wait(
        bench("other.json", &["--shard", "1/4", "--seed", "8"], None),
        LIMIT,
    );
    assert!(other.status.success(), "{}", text(&other).1);
    let other_file = dir.join("other.json").display().to_string();
    let out = merge(&[all[0], &other_file, all[2], all[3]], &[]);
    assert!(
        !out.status.success() && text(&out).1.contains("different flags"),
        "{}",
        text(&out).1
    );
}

#[test]
fn bad_shards_stop_before_sending() {
    for (args, want) in [
        (&["--shard", "4/4"][..], "the last of 4 is 3"),
        (&["--shard", "1/0"][..], "N must be at least 1"),
        (&["--shards", "4"][..], "needs this process's index"),
        (
            &["--shard", "1/4", "--max-concurrency", "3"][..],
            "cannot be split over 4 shards",
        ),
        (
            &["--shard", "0/2", "--start-at", "1000000000"][..],
            "s in the past",
        ),
        (&["--start-at", "noon"][..], "not a time"),
    ] {
        let mut a = vec!["bench", "--num-prompts", "4", "--disable-tqdm"];
        a.extend_from_slice(args);
        let out = run(&a, LIMIT);
        let (stdout, stderr) = text(&out);
        assert!(
            !out.status.success()
                && stderr.contains(want)
                && !stdout.contains("Successful requests"),
            "{args:?}: {stderr}"
        );
    }
}

/// In Lua, `mb.shard()` says which shard this is, `mb.users` runs only its users
/// (user i when i mod N = I) and `mb.run{ shard = false }` sends everything.
#[test]
fn lua_scripts_see_and_follow_the_shard() {
    let dir = tmpdir("shard-lua");
    let script = dir.join("s.lua");
    std::fs::write(
        &script,
        r#"local mb = require "moonbench"
local s = mb.shard()
local t = mb.target{ sim = { ttft_ms = 1, itl_ms = 0.5 } }
local r = mb.users{ target = t, count = 5, progress = false, scenario = function(u)
  u:complete{ prompt = "hi " .. u.id, max_tokens = 2 }
end }
local after_users = mb.time()
local all = mb.run{ target = t, requests = { "a", "b", "c", "d" }, shard = false, progress = false }
local some = mb.run{ target = t, requests = { "a", "b", "c", "d" }, progress = false }
print(string.format("SHARD %d %d users=%d all=%d some=%d", s.index, s.count, r:summary().completed,
  all:summary().completed, some:summary().completed))
local start = tonumber(mb.env("START", "0"))
print("AFTER_START " .. tostring(after_users >= start))
"#,
    )
    .unwrap();
    for (flag, want) in [
        ("0/2", "SHARD 0 2 users=3 all=4 some=2"),
        ("1/2", "SHARD 1 2 users=2 all=4 some=2"),
    ] {
        let out = run(&["run", script.to_str().unwrap(), "--shard", flag], LIMIT);
        let (stdout, stderr) = text(&out);
        assert!(stdout.contains(want), "{flag}: {stdout}{stderr}");
    }
    let out = run(&["run", script.to_str().unwrap()], LIMIT);
    assert!(
        text(&out).0.contains("SHARD 0 1 users=5 all=4 some=4"),
        "{}",
        text(&out).1
    );
    // mb.users waits for a common start too: its users cannot finish before it.
    let start = unix_in(2.0, true);
    let out = wait(
        bin()
            .args([
                "run",
                script.to_str().unwrap(),
                "--shard",
                "1/2",
                "--start-at",
                &start,
            ])
            .env("START", &start)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        LIMIT,
    );
    let (stdout, stderr) = text(&out);
    assert!(
        out.status.success() && stdout.contains("AFTER_START true"),
        "{stdout}{stderr}"
    );
}

/// The container arguments of a manifest's first `args:` list, `$(VAR)` expanded
/// from `vars` as Kubernetes expands them.
fn manifest_args(file: &str, vars: &[(&str, String)]) -> Vec<String> {
    let text = std::fs::read_to_string(format!(
        "{}/deploy/kubernetes/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let mut out = Vec::new();
    let mut lines = text.lines().skip_while(|l| l.trim() != "args:").skip(1);
    for l in lines.by_ref() {
        let Some(v) = l.trim().strip_prefix("- ") else {
            break;
        };
        let mut v = v.trim_matches('"').to_string();
        for (k, val) in vars {
            v = v.replace(&format!("$({k})"), val);
        }
        out.push(v);
    }
    out
}

/// The Kubernetes manifests run as written: the shard Job's arguments (values
/// from the ConfigMap's keys, a simulator as the server, a few prompts) make 4
/// shards, and the merge Job's arguments merge them.
#[test]
fn kubernetes_manifests_run_as_written() {
    let sim = serve_sim(&["--engine", "fixed", "--ttft-ms", "5", "--itl-ms", "1"]);
    let url = sim.url.clone();
    let dir = tmpdir("k8s");
    let start = unix_in(3.0, false);
    let mut shards = Vec::new();
    for i in 0..4 {
        let vars = [
            ("START_AT", start.clone()),
            ("BASE_URL", url.clone()),
            ("MODEL", "moonbench-sim".to_string()),
            ("NUM_PROMPTS", "8".into()),
            ("REQUEST_RATE", "40".into()),
            ("MAX_CONCURRENCY", "8".into()),
            ("RANDOM_INPUT_LEN", "16".into()),
            ("RANDOM_OUTPUT_LEN", "2".into()),
            ("SEED", "0".into()),
            ("JOB_COMPLETION_INDEX", i.to_string()),
            ("METRICS_PORT", "0".into()),
            ("POD_IP", "127.0.0.1".into()),
        ];
        let mut args = manifest_args("shards-job.yaml", &vars);
        assert!(args.len() > 20 && args[0] == "bench", "{args:?}");
        // The image's tokenizer comes from the Hub; here every word is a token.
        let t = args.iter().position(|a| a == "--tokenizer").unwrap();
        args[t + 1] = "words".into();
        for a in args.iter_mut() {
            *a = a.replace("/results", dir.to_str().unwrap());
        }
        shards.push(
            bin()
                .args(&args)
                .env("JOB_COMPLETION_INDEX", i.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for c in shards {
        let out = wait(c, LIMIT);
        assert!(out.status.success(), "{}", text(&out).1);
    }
    let mut args = manifest_args("merge-job.yaml", &[]);
    for a in args.iter_mut() {
        *a = a.replace("/results", dir.to_str().unwrap());
    }
    let out = wait(
        bin()
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("merged.json")).unwrap()).unwrap();
    assert_eq!(
        (m["completed"].as_u64(), m["merged_shards"].as_u64()),
        (Some(8), Some(4))
    );
}

/// Bounded shards keep digests, not records: their merge adds the histograms on
/// one timeline and states their precision. Checked against the truth the shards
/// streamed to their records files: the union's exact counts and mean TTFT equal
/// the merged ones, its percentiles within the stated 0.1% (plus a neighbouring
/// rank). A shard that kept records merges with a bounded one the same way.
#[test]
fn bounded_shards_merge_their_histograms() {
    let sim = serve_sim(&[
        "--engine",
        "fixed",
        "--ttft-ms",
        "5",
        "--itl-ms",
        "1",
        "--jitter",
        "0.5",
    ]);
    let dir = tmpdir("bounded-shards");
    let shard = |i: u32, bounded: bool| -> Child {
        let (res, rec) = (format!("s{i}.json"), dir.join(format!("s{i}.jsonl")));
        let mut c = bin();
        c.args([
            "bench",
            "--base-url",
            &sim.url,
            "--tokenizer",
            "words",
            "--num-prompts",
            "120",
        ])
        .args([
            "--random-output-len",
            "12",
            "--seed",
            "3",
            "--max-concurrency",
            "12",
        ])
        .args(["--disable-tqdm", "--save-result", "--goodput", "ttft:6"])
        .args([
            "--shard",
            &format!("{i}/3"),
            "--result-dir",
            dir.to_str().unwrap(),
        ])
        .args([
            "--result-filename",
            &res,
            "--save-records",
            rec.to_str().unwrap(),
        ]);
        if bounded {
            c.arg("--bounded");
        }
        c.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let kids = [shard(0, true), shard(1, true), shard(2, false)];
    for c in kids {
        let out = wait(c, LIMIT);
        assert!(out.status.success(), "{}", text(&out).1);
    }
    let files: Vec<String> = (0..3)
        .map(|i| dir.join(format!("s{i}.json")).display().to_string())
        .collect();
    let s0: Value = serde_json::from_str(&std::fs::read_to_string(&files[0]).unwrap()).unwrap();
    assert!(s0.get("shard_digest").is_some() && s0.get("shard_records").is_none());
    let merged = dir.join("m.json");
    let out = run(
        &[
            "merge",
            &files[0],
            &files[1],
            &files[2],
            "-o",
            merged.to_str().unwrap(),
            "--metric-percentiles",
            "50,99",
            "--goodput",
            "ttft:6",
        ],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out).1);
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&merged).unwrap()).unwrap();
    let mut ttft: Vec<f64> = (0..3)
        .flat_map(|i| {
            std::fs::read_to_string(dir.join(format!("s{i}.jsonl")))
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap())
                .filter(|v| v["warmup"] == false && v["success"] == true)
                .map(|v| v["ttft"].as_f64().unwrap() * 1e3)
                .collect::<Vec<_>>()
        })
        .collect();
    ttft.sort_by(f64::total_cmp);
    assert_eq!(ttft.len(), 120);
    assert_eq!(m["completed"], 120);
    assert_eq!(m["merged_shards"], 3);
    assert!(
        m["summary_precision"].as_str().unwrap().contains("HDR"),
        "{m}"
    );
    let mean = ttft.iter().sum::<f64>() / 120.0;
    assert!((m["mean_ttft_ms"].as_f64().unwrap() - mean).abs() < 1e-6 * mean);
    let good = ttft.iter().filter(|&&t| t <= 6.0).count() as f64;
    let ratio = m["goodput_ratio"].as_f64().unwrap();
    assert!(
        (ratio - good / 120.0).abs() < 1e-9,
        "{ratio} vs {}",
        good / 120.0
    );
    for p in [50.0, 99.0] {
        let i = (p / 100.0 * 119.0) as usize;
        let (lo, hi) = (ttft[i.saturating_sub(1)], ttft[(i + 2).min(119)]);
        let got = m[format!("p{p}_ttft_ms")].as_f64().unwrap();
        assert!(
            got >= lo * 0.999 && got <= hi * 1.001,
            "p{p}: {got} not in {lo}..{hi}"
        );
    }
    assert!(m["max_concurrent_requests"].as_u64().unwrap() <= 12);
}
