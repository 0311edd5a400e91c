//! The layering of `src/`, checked: a top-level module may use only the modules in the layers
//! below its own. Read from the `crate::` paths of every source file, so a new import that points
//! up (the collector reaching into the dashboard, the model into a report) fails here with the
//! file and the line, and the shape of ARCHITECTURE.md stays true after the change that made it.
//!
//! Inside a folder the rule is weaker but still a rule: a folder's `mod.rs` and its children
//! are one room (children use what `mod.rs` declares, `mod.rs` re-exports the children), but
//! two children (files or sub-folders) that import each other, or a knot of three or more,
//! fail here: a type both sides need wants a leaf module of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Bottom first. A module may use any module of a lower layer, none of its own layer or above.
/// `lib.rs` and `main.rs` sit above every layer (the one `match` on the mode).
const LAYERS: &[&[&str]] = &[
    &["sanitize", "shutdown", "caps", "notify"],
    &["model", "stderr", "syslog"],
    &["collector", "events", "resolve"],
    &["config"],
    &["lab"],
    &["live"],
    &["report", "record"],
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

/// A module's path from the crate root: `["model", "alerts", "rules"]`.
type ModPath = Vec<String>;

/// One source file: where it is under `src/`, the module it is, its lines without comments.
struct Source {
    file: String,
    module: ModPath,
    lines: Vec<String>,
}

/// One `use` leaf or inline path: the line it is on, the module it is written in (inline
/// modules included) and the path as written.
struct Reference {
    line: usize,
    from: ModPath,
    path: Vec<String>,
}

/// The crate's modules as its files lay them out, and what each module's own `use`
/// statements bind (so a name re-exported by a `mod.rs` leads to the child defining it).
struct Tree {
    sources: Vec<Source>,
    modules: BTreeSet<ModPath>,
    folders: BTreeSet<ModPath>,
    bindings: BTreeMap<ModPath, BTreeMap<String, ModPath>>,
}

/// An import from one child of a folder into another: the folder, the two children, and
/// where it is written.
#[derive(Clone, Debug)]
struct Edge {
    folder: ModPath,
    from: String,
    to: String,
    at: String,
}

/// The module a file is: `model/alerts/mod.rs` is `model::alerts`, `lib.rs` the root.
fn module_of_file(rel: &str) -> ModPath {
    let mut parts: Vec<String> = rel
        .trim_end_matches(".rs")
        .split('/')
        .map(str::to_string)
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The line without its `//` comment.
fn code_of(line: &str) -> String {
    line.split("//").next().unwrap_or("").to_string()
}

/// `mod NAME {` opening an inline module, with its indentation.
fn inline_mod(line: &str) -> Option<(usize, String)> {
    let indent = line.len() - line.trim_start().len();
    let rest = line.trim_start();
    let rest = rest
        .strip_prefix("pub(crate) ")
        .or_else(|| rest.strip_prefix("pub "))
        .unwrap_or(rest);
    let name = rest.strip_prefix("mod ")?.strip_suffix(" {")?;
    name.chars()
        .all(|c| c.is_alphanumeric() || c == '_')
        .then(|| (indent, name.to_string()))
}

/// The tokens of a `use` tree: identifiers, `::`, braces, commas, `*`.
fn use_tokens(text: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut word = c.to_string();
            while let Some(&n) = chars.peek() {
                if !(n.is_alphanumeric() || n == '_') {
                    break;
                }
                word.push(n);
                chars.next();
            }
            tokens.push(word);
        } else if c == ':' && chars.peek() == Some(&':') {
            chars.next();
            tokens.push("::".into());
        } else if "{},*".contains(c) {
            tokens.push(c.to_string());
        }
    }
    tokens
}

/// Reads one tree of a `use` from `tokens[*at..]` under `prefix`, pushing each leaf as
/// (path, the name it binds).
fn use_tree(
    tokens: &[String],
    at: &mut usize,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let mut path = prefix.to_vec();
    while let Some(t) = tokens.get(*at) {
        *at += 1;
        match t.as_str() {
            "{" => loop {
                match tokens.get(*at).map(String::as_str) {
                    None => return,
                    Some("}") => {
                        *at += 1;
                        return;
                    }
                    Some(",") => *at += 1,
                    Some(_) => use_tree(tokens, at, &path, out),
                }
            },
            "*" => {
                out.push((path, None));
                return;
            }
            "::" => {}
            "," | "}" => {
                *at -= 1;
                break;
            }
            "as" => {
                let alias = tokens.get(*at).cloned();
                *at += 1;
                out.push((path, alias.filter(|a| a != "_")));
                return;
            }
            word => path.push(word.to_string()),
        }
    }
    if path.last().is_some_and(|l| l == "self") {
        path.pop();
    }
    let name = path.last().cloned();
    out.push((path, name));
}

/// The paths of one `use` statement (the text after `use`, up to the `;`).
fn use_leaves(text: &str) -> Vec<(Vec<String>, Option<String>)> {
    let tokens = use_tokens(text);
    let mut out = Vec::new();
    let mut at = 0;
    use_tree(&tokens, &mut at, &[], &mut out);
    out
}

/// The text after `use` when a line starts a `use` statement.
fn use_start(code: &str) -> Option<&str> {
    let t = code.trim_start();
    let t = t
        .strip_prefix("pub(crate) ")
        .or_else(|| t.strip_prefix("pub(super) "))
        .or_else(|| t.strip_prefix("pub "))
        .unwrap_or(t);
    t.strip_prefix("use ")
}

/// The paths written inline through `crate::`, `super::` or `self::` on a line of code.
fn inline_paths(code: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::", "self::"] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(start) {
            let at = from + pos;
            from = at + start.len();
            let preceded = at > 0 && {
                let c = bytes[at - 1] as char;
                c.is_alphanumeric() || c == '_' || c == '$' || c == ':'
            };
            if preceded {
                continue;
            }
            let mut whole = Vec::new();
            let mut rest = &code[at..];
            loop {
                let seg: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if seg.is_empty() {
                    break;
                }
                rest = &rest[seg.len()..];
                whole.push(seg);
                match rest.strip_prefix("::") {
                    Some(r) => rest = r,
                    None => break,
                }
            }
            found.push(whole);
        }
    }
    found
}

impl Tree {
    /// The tree of `files` (path under `src/`, text); `main.rs` is a crate of its own.
    fn new(files: &[(String, String)]) -> Tree {
        // `#[path = "x.rs"] mod y;` makes x.rs the module y of the file declaring it.
        let mut moved = BTreeMap::new();
        for (rel, text) in files {
            let lines: Vec<&str> = text.lines().collect();
            for (n, line) in lines.iter().enumerate() {
                let Some(target) = line
                    .trim()
                    .strip_prefix("#[path = \"")
                    .and_then(|r| r.strip_suffix("\"]"))
                else {
                    continue;
                };
                let decl = lines[n + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .find(|l| !l.starts_with("#["));
                if let Some(name) = decl
                    .and_then(|d| d.strip_prefix("mod "))
                    .map(|d| d.trim_end_matches(';'))
                {
                    let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
                    let file = if dir.is_empty() {
                        target.to_string()
                    } else {
                        format!("{dir}/{target}")
                    };
                    let mut module = module_of_file(rel);
                    module.push(name.to_string());
                    moved.insert(file, module);
                }
            }
        }
        let mut sources = Vec::new();
        let mut modules = BTreeSet::new();
        let mut folders = BTreeSet::new();
        for (rel, text) in files {
            if rel == "main.rs" {
                continue;
            }
            let module = moved
                .get(rel)
                .cloned()
                .unwrap_or_else(|| module_of_file(rel));
            if rel.ends_with("/mod.rs") || rel == "lib.rs" {
                folders.insert(module.clone());
            }
            for n in 0..=module.len() {
                modules.insert(module[..n].to_vec());
            }
            let lines = text.lines().map(code_of).collect();
            sources.push(Source {
                file: rel.clone(),
                module,
                lines,
            });
        }
        let mut tree = Tree {
            sources,
            modules,
            folders,
            bindings: BTreeMap::new(),
        };
        let mut bindings: BTreeMap<ModPath, BTreeMap<String, ModPath>> = BTreeMap::new();
        for source in &tree.sources {
            for r in tree
                .references(source)
                .into_iter()
                .filter(|r| r.from == source.module)
            {
                if let (Some(name), Some(abs)) =
                    (r.path.last().cloned(), tree.absolute(&r.from, &r.path))
                {
                    bindings
                        .entry(source.module.clone())
                        .or_default()
                        .insert(name, abs);
                }
            }
        }
        tree.bindings = bindings;
        tree
    }

    /// Every path a file writes: its `use` leaves (each with the name it binds last) and its
    /// inline `crate::`/`super::`/`self::` paths, with the module (inline ones included)
    /// each is written in.
    fn references(&self, source: &Source) -> Vec<Reference> {
        let mut out = Vec::new();
        let mut inline: Vec<(usize, String)> = Vec::new();
        let mut statement: Option<(usize, String)> = None;
        for (n, code) in source.lines.iter().enumerate() {
            let mut module = source.module.clone();
            module.extend(inline.iter().map(|(_, name)| name.clone()));
            if let Some((indent, name)) = inline_mod(code) {
                inline.push((indent, name));
            } else if inline
                .last()
                .is_some_and(|(indent, _)| code.trim_end() == format!("{}}}", " ".repeat(*indent)))
            {
                inline.pop();
            }
            if statement.is_none() {
                statement = use_start(code).map(|rest| (n, rest.to_string()));
            } else if let Some((_, text)) = statement.as_mut() {
                text.push(' ');
                text.push_str(code);
            }
            if let Some((start, text)) = statement.take_if(|(_, t)| t.contains(';')) {
                let text = text.split(';').next().unwrap_or("");
                for (mut path, name) in use_leaves(text) {
                    // A leaf renamed (`as`) binds its alias: kept as the path's last part
                    // only for the binding, so the path stays the one written.
                    if let Some(alias) = name.filter(|a| Some(a) != path.last()) {
                        path.push(format!("as {alias}"));
                    }
                    out.push(Reference {
                        line: start + 1,
                        from: module.clone(),
                        path,
                    });
                }
            }
            for path in inline_paths(code) {
                out.push(Reference {
                    line: n + 1,
                    from: module.clone(),
                    path,
                });
            }
        }
        out
    }

    /// `path` written in module `from`, from the crate root; `None` for another crate's.
    fn absolute(&self, from: &[String], path: &[String]) -> Option<ModPath> {
        let path: Vec<String> = path
            .iter()
            .filter(|s| !s.starts_with("as "))
            .cloned()
            .collect();
        let first = path.first()?;
        let (mut base, rest) = match first.as_str() {
            "crate" => (Vec::new(), &path[1..]),
            "self" => (from.to_vec(), &path[1..]),
            "super" => {
                let mut base = from.to_vec();
                let mut rest = &path[..];
                while rest.first().is_some_and(|s| s == "super") {
                    base.pop();
                    rest = &rest[1..];
                }
                (base, rest)
            }
            // A child of the module it is written in (a path relative to it).
            name => {
                let mut child = from.to_vec();
                child.push(name.to_string());
                if !self.modules.contains(&child) {
                    return None;
                }
                (from.to_vec(), &path[..])
            }
        };
        base.extend(rest.iter().cloned());
        Some(base)
    }

    /// The module an absolute path ends in: down the modules while its parts are modules,
    /// then through the `use` of the module reached when the next part is a name it
    /// imported (a re-export), else the module that defines the item.
    fn resolve(&self, path: &[String], hops: usize) -> ModPath {
        let mut module = Vec::new();
        for (i, seg) in path.iter().enumerate() {
            let mut next = module.clone();
            next.push(seg.clone());
            if self.modules.contains(&next) {
                module = next;
                continue;
            }
            if hops < 8 {
                if let Some(to) = self.bindings.get(&module).and_then(|b| b.get(seg)) {
                    let mut p = to.clone();
                    p.extend(path[i + 1..].iter().cloned());
                    return self.resolve(&p, hops + 1);
                }
            }
            break;
        }
        module
    }

    /// How a child of `folder` is shown: `name/` for a sub-folder, `name.rs` for a file.
    fn shown(&self, folder: &[String], child: &str) -> String {
        let mut path = folder.to_vec();
        path.push(child.to_string());
        if self.folders.contains(&path) {
            format!("{child}/")
        } else {
            format!("{child}.rs")
        }
    }

    /// Every import from one child of a folder into another child of the same folder.
    fn edges(&self) -> Vec<Edge> {
        let mut edges = Vec::new();
        for source in &self.sources {
            for r in self.references(source) {
                let Some(abs) = self.absolute(&r.from, &r.path) else {
                    continue;
                };
                let to = self.resolve(&abs, 0);
                let common = r.from.iter().zip(&to).take_while(|(a, b)| a == b).count();
                if common < r.from.len() && common < to.len() {
                    let folder = to[..common].to_vec();
                    edges.push(Edge {
                        from: self.shown(&folder, &r.from[common]),
                        to: self.shown(&folder, &to[common]),
                        at: format!("{}:{} ({})", source.file, r.line, abs.join("::")),
                        folder,
                    });
                }
            }
        }
        edges
    }

    /// The knots: in each folder, the children that reach one another through imports
    /// (two that import each other, or three and more in a circle), each with the imports
    /// that tie it (one place each).
    fn knots(&self) -> Vec<String> {
        let mut by_folder: BTreeMap<ModPath, BTreeMap<(String, String), String>> = BTreeMap::new();
        for e in self.edges() {
            by_folder
                .entry(e.folder)
                .or_default()
                .entry((e.from, e.to))
                .or_insert(e.at);
        }
        let mut knots = Vec::new();
        for (folder, edges) in by_folder {
            let nodes: BTreeSet<&String> = edges.keys().flat_map(|(a, b)| [a, b]).collect();
            let reach = |from: &String| {
                let mut seen = BTreeSet::new();
                let mut stack = vec![from];
                while let Some(n) = stack.pop() {
                    for (a, b) in edges.keys() {
                        if a == n && seen.insert(b) {
                            stack.push(b);
                        }
                    }
                }
                seen
            };
            let reaches: BTreeMap<&String, BTreeSet<&String>> =
                nodes.iter().map(|n| (*n, reach(n))).collect();
            let mut placed = BTreeSet::new();
            for n in &nodes {
                if placed.contains(n) || !reaches[n].contains(n) {
                    continue;
                }
                let knot: BTreeSet<&String> = nodes
                    .iter()
                    .filter(|m| reaches[n].contains(*m) && reaches[*m].contains(n))
                    .copied()
                    .collect();
                placed.extend(knot.iter().copied());
                let folder_shown = if folder.is_empty() {
                    "src/".to_string()
                } else {
                    format!("src/{}/", folder.join("/"))
                };
                let members: Vec<&str> = knot.iter().map(|s| s.as_str()).collect();
                let mut text = format!(
                    "{folder_shown}: a knot of {}: {}",
                    knot.len(),
                    members.join(", ")
                );
                for ((a, b), at) in &edges {
                    if knot.contains(a) && knot.contains(b) {
                        text.push_str(&format!("\n    {a} -> {b}  at {at}"));
                    }
                }
                knots.push(text);
            }
        }
        knots
    }
}

/// Every source file under `src/` as (path under `src/`, text).
fn source_files() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    files
        .iter()
        .map(|f| {
            let rel = f
                .strip_prefix(&src)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/");
            (rel, fs::read_to_string(f).expect("a readable source file"))
        })
        .collect()
}

#[test]
fn no_folder_holds_an_import_cycle() {
    let knots = Tree::new(&source_files()).knots();
    assert!(
        knots.is_empty(),
        "import cycles inside folders (ARCHITECTURE.md): move the type both sides need into a leaf module of its own\n{}",
        knots.join("\n")
    );
}

fn fixture(files: &[(&str, &str)]) -> Vec<(String, String)> {
    files
        .iter()
        .map(|(p, t)| (p.to_string(), t.to_string()))
        .collect()
}

#[test]
fn the_cycle_finder_finds_a_planted_knot() {
    // x -> y directly; y -> x through the folder's re-export; z -> x only; w/ and v.rs in a
    // circle of their own through an inline test module and a `#[path]` file.
    let files = fixture(&[
        ("lib.rs", "pub mod a;\npub mod b;\n"),
        ("a/mod.rs", "mod x;\nmod y;\nmod z;\npub use x::Thing;\n"),
        (
            "a/x.rs",
            "use super::y::{self, Y as Why};\npub struct Thing;\n",
        ),
        (
            "a/y.rs",
            "pub struct Y;\nfn f() -> crate::a::Thing { todo!() }\n",
        ),
        ("a/z.rs", "use super::x::Thing;\n"),
        ("b/mod.rs", "mod v;\nmod w;\nmod u;\n"),
        (
            "b/v.rs",
            "pub struct V;\n#[path = \"v_tests.rs\"]\nmod tests;\n",
        ),
        ("b/v_tests.rs", "use super::super::w::W;\n"),
        ("b/w/mod.rs", "pub struct W;\nmod inner;\n"),
        (
            "b/w/inner.rs",
            "pub fn f() {}\n#[cfg(test)]\nmod tests {\n    use super::super::super::u::{\n        U,\n    };\n}\n",
        ),
        ("b/u.rs", "pub struct U;\nuse super::v::V;\n"),
    ]);
    let knots = Tree::new(&files).knots();
    assert_eq!(knots.len(), 2, "{knots:#?}");
    assert!(
        knots[0].starts_with("src/a/: a knot of 2: x.rs, y.rs"),
        "{}",
        knots[0]
    );
    assert!(
        knots[0].contains("x.rs -> y.rs  at a/x.rs:1 (a::y)"),
        "{}",
        knots[0]
    );
    assert!(
        knots[0].contains("y.rs -> x.rs  at a/y.rs:2 (a::Thing)"),
        "{}",
        knots[0]
    );
    assert!(!knots[0].contains("z.rs"), "{}", knots[0]);
    assert!(
        knots[1].starts_with("src/b/: a knot of 3: u.rs, v.rs, w/"),
        "{}",
        knots[1]
    );
    assert!(
        knots[1].contains("w/ -> u.rs  at b/w/inner.rs:4 (b::u)"),
        "{}",
        knots[1]
    );
}

#[test]
fn a_folder_and_its_children_are_one_room() {
    // mod.rs uses its children and they use what it defines: no knot.
    let files = fixture(&[
        ("lib.rs", "pub mod a;\n"),
        (
            "a/mod.rs",
            "mod x;\nmod y;\nuse x::X;\npub struct Shared;\npub fn f() -> y::Y { todo!() }\n",
        ),
        (
            "a/x.rs",
            "use super::Shared;\npub struct X;\n// use super::y::Y; a comment is no import\n",
        ),
        ("a/y.rs", "use crate::a::{Shared, x::X};\npub struct Y;\n"),
    ]);
    let tree = Tree::new(&files);
    assert!(tree.knots().is_empty(), "{:#?}", tree.knots());
    assert_eq!(tree.edges().len(), 1, "{:#?}", tree.edges());
}
