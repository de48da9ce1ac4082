//! GGUF tokenizers (`--tokenizer model.gguf`) checked against llama.cpp's own
//! tokenizer test vectors: for each `ggml-vocab-*.gguf` llama.cpp ships a `.inp`
//! file of texts and a `.out` file of the token ids its tokenizer (and Hugging
//! Face's, from which they were generated) gives them. Two vocabularies are
//! vendored (tests/fixtures/gguf, provenance in tests/fixtures/README.md); the
//! interop suite runs every vocabulary of the llama.cpp it builds.

use std::path::{Path, PathBuf};

use moonbench::tokenizer::Tokenizer;

/// Texts and expected ids, split as llama.cpp's tests/test-tokenizer-0.cpp does.
fn vectors(inp: &str, out: &str) -> Vec<(String, Vec<u32>)> {
    let sep = "\n__ggml_vocab_test__\n";
    // As the C++ reader: a separator at the very end starts no further text.
    let texts: Vec<&str> = inp.strip_suffix(sep).unwrap_or(inp).split(sep).collect();
    let ids: Vec<Vec<u32>> = out
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(texts.len(), ids.len(), "input and output counts differ");
    texts.into_iter().map(String::from).zip(ids).collect()
}

fn gunzip(path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap()),
        &mut out,
    )
    .unwrap();
    out
}

/// Checks one vocabulary; returns the failures as readable lines.
fn check(gguf: &Path, inp: &Path, out: &Path) -> Vec<String> {
    let read = |p: &Path| {
        if p.extension().is_some_and(|e| e == "gz") {
            String::from_utf8(gunzip(p)).unwrap()
        } else {
            std::fs::read_to_string(p).unwrap()
        }
    };
    let t = Tokenizer::load(gguf.to_str().unwrap()).unwrap_or_else(|e| panic!("{e}"));
    let mut bad = Vec::new();
    for (text, want) in vectors(&read(inp), &read(out)) {
        let got = t.encode(&text);
        if got != want {
            bad.push(format!("{text:?}: got {got:?}, llama.cpp {want:?}"));
        }
    }
    bad
}

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gguf")
}

#[test]
fn vendored_vocabularies_match_llama_cpp_vectors() {
    let dir = std::env::temp_dir().join(format!("moonbench-gguf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["ggml-vocab-llama-spm", "ggml-vocab-gpt-2"] {
        let gguf = dir.join(format!("{name}.gguf"));
        std::fs::write(&gguf, gunzip(&fixtures().join(format!("{name}.gguf.gz")))).unwrap();
        let bad = check(
            &gguf,
            &fixtures().join(format!("{name}.gguf.inp")),
            &fixtures().join(format!("{name}.gguf.out")),
        );
        assert!(bad.is_empty(), "{name}:\n{}", bad.join("\n"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Every vocabulary with test vectors in the llama.cpp the interop suite builds
/// (`MOONBENCH_REALSERVERS/vocab`, from tests/realservers/setup.sh).
#[test]
#[ignore = "needs the real servers' files: tests/realservers/run.sh"]
fn every_llama_cpp_vocabulary_matches_its_vectors() {
    let dir = PathBuf::from(std::env::var("MOONBENCH_REALSERVERS").expect("MOONBENCH_REALSERVERS"))
        .join("vocab");
    let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "inp"))
        .collect();
    names.sort();
    let mut report = Vec::new();
    let mut failed = 0;
    for inp in names {
        let gguf = inp.with_extension("");
        let out = gguf.with_extension("gguf.out");
        match std::panic::catch_unwind(|| check(&gguf, &inp, &out)) {
            Ok(bad) if bad.is_empty() => report.push(format!("ok    {}", gguf.display())),
            Ok(bad) => {
                failed += 1;
                report.push(format!(
                    "FAIL  {}: {} texts\n  {}",
                    gguf.display(),
                    bad.len(),
                    bad.join("\n  ")
                ))
            }
            Err(_) => match Tokenizer::load(gguf.to_str().unwrap()) {
                // Vocabulary types not read from GGUF yet must say so, not misbehave.
                Err(e) if e.contains("is not read from GGUF files yet") => {
                    report.push(format!("unsupported (says so) {}", gguf.display()))
                }
                _ => {
                    failed += 1;
                    report.push(format!("FAIL  {}: does not load", gguf.display()))
                }
            },
        }
    }
    println!("{}", report.join("\n"));
    assert_eq!(failed, 0, "{}", report.join("\n"));
}
