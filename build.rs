//! Embeds the bundled Lua code (stdlib/, scripts/, examples/) into the binary, so
//! `moonbench bench` and every example work from any directory.

use std::path::Path;

fn walk(dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("lua" | "yaml" | "yml" | "txt" | "jsonl")
        ) {
            out.push(p.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn main() {
    let root = std::env::var("CARGO_MANIFEST_DIR").unwrap();
    let mut files = Vec::new();
    for d in ["stdlib", "scripts", "examples"] {
        println!("cargo:rerun-if-changed={d}");
        walk(Path::new(&format!("{root}/{d}")), &mut files);
    }
    let mut code = String::from(
        "/// Bundled files: (path relative to the project root, contents).\npub static EMBEDDED: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        let rel = f.strip_prefix(&format!("{root}/")).unwrap_or(f);
        code.push_str(&format!("    ({rel:?}, include_str!({f:?})),\n"));
    }
    code.push_str("];\n");
    let out = std::env::var("OUT_DIR").unwrap();
    std::fs::write(format!("{out}/embedded.rs"), code).unwrap();
}
