//! The README says every example runs with no flags: all of them at once against the
//! built-in simulator (about 80 s on 2 cores). Its own test binary, so this load
//! overlaps no other test.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Every example in examples/ runs against the simulator with `flags` (none: as the
/// README promises; `--quick`), all at once; each ends by printing its result, and any
/// error fails the test with its output.
fn every_example_runs(flags: &[&str]) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".lua"))
        .collect();
    names.sort();
    assert!(names.len() >= 10, "the gallery has ten examples: {names:?}");
    let children: Vec<_> = names
        .iter()
        .map(|n| {
            let child = bin()
                .args(["run", &format!("{dir}/{n}"), "--"])
                .args(flags)
                .current_dir(std::env::temp_dir())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (n.clone(), child)
        })
        .collect();
    for (name, child) in children {
        let out = wait(child, Duration::from_secs(400));
        let (stdout, stderr) = text(&out);
        assert!(
            out.status.success(),
            "{name} failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        assert!(!stdout.trim().is_empty(), "{name} printed nothing");
    }
}

#[test]
fn every_example_runs_with_no_flags() {
    every_example_runs(&[]);
}
