//! The layers import each other in one direction only: a test reads every
//! `crate::<module>` path under `src/<module>/` and fails on any cycle between
//! the top-level modules (this is how "no import cycles" is checked).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
}

#[test]
fn no_import_cycles_between_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut modules = Vec::new();
    for e in std::fs::read_dir(&src).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if name != "lib" && name != "main" {
            modules.push((name, p));
        }
    }
    let names: BTreeSet<String> = modules.iter().map(|m| m.0.clone()).collect();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (name, path) in &modules {
        let mut texts = Vec::new();
        if path.is_dir() {
            sources(path, &mut texts);
        } else {
            texts.push(std::fs::read_to_string(path).unwrap());
        }
        let d = deps.entry(name.clone()).or_default();
        for t in &texts {
            for (i, _) in t.match_indices("crate::") {
                let rest = &t[i + 7..];
                let m: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if m != *name && names.contains(&m) {
                    d.insert(m);
                }
            }
        }
    }
    // Depth-first search for a cycle.
    fn visit(
        n: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut c = stack[i..].to_vec();
            c.push(n.to_string());
            return Some(c);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in deps.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, deps, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in deps.keys() {
        if let Some(c) = visit(n, &deps, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}\n{deps:#?}", c.join(" -> "));
        }
    }
}
