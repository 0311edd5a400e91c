//! The layering of `src/`, checked: a top-level module may use only the modules in the layers
//! below its own. Read from the `crate::` paths of every source file, so a new import that points
//! up (the collector reaching into the dashboard, the model into a report) fails here with the
//! file and the line, and the shape of ARCHITECTURE.md stays true after the change that made it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom first. A module may use any module of a lower layer, none of its own layer or above.
/// `lib.rs` and `main.rs` sit above every layer (the one `match` on the mode).
const LAYERS: &[&[&str]] = &[
    &["text", "sanitize", "shutdown", "caps", "notify"],
    &["model", "stderr"],
    &["collector", "events", "resolve"],
    &["config"],
    &["lab"],
    &["live"],
    &["report"],
    &["tui"],
    &["cli"],
    &["mode", "manual"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `src/tui/ui/strip.rs` is `tui`, `src/cli.rs` is `cli`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src/");
    let first = rel.components().next().expect("a path").as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The top-level modules a line of code names through `crate::`, comments left out.
fn crate_paths(line: &str) -> Vec<String> {
    let code = line.split("//").next().unwrap_or("");
    let mut found = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || c == ':');
        let after = &rest[at + "crate::".len()..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !preceded_by_ident && !name.is_empty() {
            found.push(name);
        }
        rest = after;
    }
    found
}

/// Modules declared at the top of the crate (`pub mod x;` in lib.rs).
fn declared_modules(lib: &str) -> BTreeSet<String> {
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l.strip_prefix("pub(crate) ").unwrap_or(l);
            l.strip_prefix("mod ")
                .map(|m| m.trim_end_matches(';').trim().to_string())
        })
        .collect()
}

#[test]
fn every_top_level_module_has_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    let missing: Vec<String> = declared_modules(&lib)
        .into_iter()
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        missing.is_empty(),
        "modules with no layer in tests/architecture.rs: {missing:?}; add each to LAYERS where it belongs (and to ARCHITECTURE.md)"
    );
}

#[test]
fn no_module_uses_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut violations = Vec::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(own) = layer_of(&module) else {
            continue; // lib.rs, main.rs: the root may use everything
        };
        let text = fs::read_to_string(file).expect("a readable source file");
        for (n, line) in text.lines().enumerate() {
            for target in crate_paths(line) {
                if target == module {
                    continue;
                }
                match layer_of(&target) {
                    Some(layer) if layer < own => {}
                    Some(_) => violations.push(format!(
                        "{}:{}: `{module}` uses `{target}`, which is not in a lower layer",
                        file.strip_prefix(&src).unwrap_or(file).display(),
                        n + 1
                    )),
                    // An item of the crate root (a function in lib.rs): only the modes may.
                    None if module == "mode" => {}
                    None => violations.push(format!(
                        "{}:{}: `{module}` uses the crate root's `{target}`; move it into a module of a lower layer",
                        file.strip_prefix(&src).unwrap_or(file).display(),
                        n + 1
                    )),
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports that point up the layers (see ARCHITECTURE.md):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_reader_finds_crate_paths() {
    assert_eq!(
        crate_paths("use crate::model::{Snapshot, Tracker}; // crate::tui"),
        vec!["model"]
    );
    assert_eq!(
        crate_paths("let x = crate::collector::read(); y::crate::no;"),
        vec!["collector"]
    );
    assert!(crate_paths("// use crate::tui;").is_empty());
}
