//! The learning path (`docs/zh/README.md` and its English twin `docs/README.md`)
//! stays true: every file it links or names exists, both give the same commands,
//! and every command runs, in order, in one empty folder, with the output the
//! page tells the reader to look for.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `moonbench ...` lines of the page's ```sh blocks.
fn commands(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside && line.trim() == "```sh";
            continue;
        }
        if inside && line.trim_start().starts_with("moonbench ") {
            out.push(line.trim().to_string());
        }
    }
    out
}

/// Every link `](target)` that is not a web address, and every `code` span that
/// names a file of the repository, must exist.
fn check_paths(doc: &Path, text: &str) {
    let dir = doc.parent().unwrap();
    for (i, _) in text.match_indices("](") {
        let rest = &text[i + 2..];
        let target = &rest[..rest.find(')').unwrap()];
        if target.starts_with("http") || target.starts_with('#') {
            continue;
        }
        let p = dir.join(target.split('#').next().unwrap());
        assert!(
            p.exists(),
            "{}: link {target} does not exist",
            doc.display()
        );
    }
    for span in text.split('`').skip(1).step_by(2) {
        let first = span.split_whitespace().next().unwrap_or("");
        let names_a_file = ["scripts/", "examples/", "stdlib/", "docs/"]
            .iter()
            .any(|d| first.starts_with(d))
            && first.contains('.');
        // Lines of a command are checked by running them.
        if names_a_file && !span.starts_with("moonbench") {
            assert!(
                root().join(first).exists(),
                "{}: `{first}` does not exist",
                doc.display()
            );
        }
    }
}

#[test]
fn the_learning_path_runs_as_written() {
    let zh_doc = root().join("docs/zh/README.md");
    let en_doc = root().join("docs/README.md");
    let zh = std::fs::read_to_string(&zh_doc).unwrap();
    let en = std::fs::read_to_string(&en_doc).unwrap();
    check_paths(&zh_doc, &zh);
    check_paths(&en_doc, &en);
    let zh_cmds = commands(&zh);
    let en_cmds = commands(&en);
    assert!(zh_cmds.len() >= 12, "{zh_cmds:?}");
    let without_lang: Vec<String> = zh_cmds
        .iter()
        .map(|c| c.replace(" --lang zh", ""))
        .collect();
    assert_eq!(
        without_lang, en_cmds,
        "the English twin gives the same commands"
    );

    // What the page tells the reader to look for, by command.
    let expect: &[(&str, &[&str])] = &[
        (
            "sweep my_config.yaml --dry-run",
            &["4 points, 72 requests in all", "results/moonbench-sim_"],
        ),
        (
            "bench --num-prompts 20 --random-input-len 256",
            &[
                "输入 token 总数:                         5120",
                "生成 token 总数:                         1280",
            ],
        ),
        (
            "run my_bench.lua",
            &["成功请求数:                              10"],
        ),
        (
            "--save-detailed",
            &["调度滞后 P50/P99/最大", "客户端健康度:"],
        ),
        (
            "examples/engine_concurrency.lua",
            &["8x the concurrency gave"],
        ),
        (
            "examples/shared_system_prompt.lua",
            &["server prefix-cache hit rate"],
        ),
        ("sweep scripts/config.yaml --lang zh", &["成功 4，失败 0"]),
        ("aggregate --lang zh", &["已聚合 4 个测试结果"]),
        ("report", &["performance_ranking.txt"]),
        ("--png charts", &["张 PNG 图表 → charts"]),
    ];
    let dir = tmpdir("learning-path");
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_moonbench")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for cmd in &zh_cmds {
        let start = Instant::now();
        let child = std::process::Command::new("sh")
            .args(["-c", cmd])
            .current_dir(&dir)
            .env("PATH", &path)
            .env("MOONBENCH_IO_THREADS", "2")
            .env("HF_HUB_OFFLINE", "1")
            .env("MOONBENCH_LANG", "en")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait(child, Duration::from_secs(120));
        let (stdout, stderr) = text(&out);
        assert!(out.status.success(), "`{cmd}` failed:\n{stdout}\n{stderr}");
        for (part, needles) in expect {
            if cmd.contains(part) {
                for n in *needles {
                    assert!(
                        stdout.contains(n) || stderr.contains(n),
                        "`{cmd}`: the page says to look for '{n}':\n{stdout}\n{stderr}"
                    );
                }
            }
        }
        eprintln!("{:.1} s: {cmd}", start.elapsed().as_secs_f64());
    }
    // What the last steps left behind, where the page says.
    let run = std::fs::read_dir(dir.join("results"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.is_dir())
        .expect("a run folder");
    for f in [
        "report.html",
        "performance_report.txt",
        "performance_summary.csv",
        "performance_ranking.txt",
        "ascii_charts.txt",
    ] {
        assert!(run.join(f).exists(), "{f} in {}", run.display());
    }
    assert!(dir.join("detail.html").exists() && dir.join("my_bench.lua").exists());
    let dashboard = std::fs::read_dir(dir.join("charts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with("_seed_dashboard.png"));
    assert!(dashboard.is_some(), "the PNGs the page names, in charts/");
}
