//! The guide (`README.md` and `docs/`) checked against what it describes, so it cannot
//! drift from the code: every relative link and `#anchor` leads somewhere; every chapter is
//! in the table of contents; every dashboard key of the keymap, every lab panel key, every
//! config key of `config.example.toml` (with its default) and every flag and value of the
//! command line is in its chapter; every invalid-input message is in Troubleshooting; the
//! README stays a landing page; and nothing of the README before the guide
//! (`tests/fixtures/readme-7e644a1.md`: its headings and code blocks) was lost in the move.
//!
//! The keymap, the lab's keys and the command line are read from the crate itself
//! (`config::keys::BINDABLE`, `tui::lab_panel::ACTION_KEYS`, `Cli::command()`, as the man page
//! is made); the config keys from the example file the man page is made from. No root, no
//! network: files only.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Component, Path, PathBuf};

use clap::CommandFactory;
use lingertop::cli::Cli;
use lingertop::config::keys::BINDABLE;
use lingertop::tui::lab_panel::ACTION_KEYS;

/// The README's ceiling: a landing page a newcomer reads in two minutes.
const README_MAX_LINES: usize = 250;

/// The chapter that documents each command's flags; `None` is the dashboard (no command).
/// A new command fails `every_flag_of_the_command_line_is_in_its_chapter` until it is here.
const CHAPTERS: &[(Option<&str>, &str)] = &[
    (None, "docs/dashboard.md"),
    (Some("snapshot"), "docs/snapshot.md"),
    (Some("watch"), "docs/watch.md"),
    (Some("serve"), "docs/serve.md"),
    (Some("lab"), "docs/lab.md"),
    (Some("close"), "docs/close.md"),
    (Some("record"), "docs/record.md"),
    (Some("replay"), "docs/record.md"),
    (Some("completions"), "docs/install.md"),
    (Some("man"), "docs/install.md"),
];

/// The path the config-error examples in Troubleshooting show for `{path}`.
const SHOWN_CONFIG_PATH: &str = "/etc/lingertop/config.toml";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("cannot read {rel}: {e}"))
}

/// One Markdown file, split into what the checks need.
struct Page {
    /// Relative to the repository, with `/`.
    rel: String,
    /// Prose outside fenced code blocks, by paragraph (a run of non-blank lines).
    paragraphs: Vec<String>,
    /// The text of each fenced code block, its lines' trailing spaces trimmed.
    fenced: Vec<String>,
    /// Heading texts as written, in order.
    headings: Vec<String>,
}

impl Page {
    fn parse(rel: &str, text: &str) -> Page {
        let mut paragraphs = Vec::new();
        let mut fenced = Vec::new();
        let mut headings = Vec::new();
        let mut para = String::new();
        // The open fence's character and length, and the block's lines so far.
        let mut fence: Option<(char, usize, Vec<&str>)> = None;
        for line in text.lines() {
            let t = line.trim_start();
            let run = |c: char| t.chars().take_while(|&x| x == c).count();
            if let Some((c, n, body)) = &mut fence {
                if run(*c) >= *n && t.trim_end().chars().all(|x| x == *c) {
                    fenced.push(body.join("\n").trim_end().to_string());
                    fence = None;
                } else {
                    body.push(line.trim_end());
                }
                continue;
            }
            if let Some(c) = ['`', '~'].into_iter().find(|&c| run(c) >= 3) {
                flush(&mut para, &mut paragraphs);
                fence = Some((c, run(c), Vec::new()));
                continue;
            }
            if line.trim().is_empty() {
                flush(&mut para, &mut paragraphs);
                continue;
            }
            if let Some(h) = heading(line) {
                flush(&mut para, &mut paragraphs);
                headings.push(h.to_string());
                paragraphs.push(line.to_string());
                continue;
            }
            para.push_str(line);
            para.push('\n');
        }
        flush(&mut para, &mut paragraphs);
        Page {
            rel: rel.to_string(),
            paragraphs,
            fenced,
            headings,
        }
    }

    fn load(rel: &str) -> Page {
        Page::parse(rel, &read(rel))
    }

    /// Every anchor GitHub makes for this page's headings.
    fn anchors(&self) -> BTreeSet<String> {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut out = BTreeSet::new();
        for h in &self.headings {
            let slug = slug(h);
            let n = seen.entry(slug.clone()).or_insert(0);
            out.insert(if *n == 0 {
                slug.clone()
            } else {
                format!("{slug}-{n}")
            });
            *n += 1;
        }
        out
    }

    /// Link targets in the prose (code spans and blocks are not links).
    fn links(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.paragraphs {
            let prose = without_code_spans(p);
            let mut rest = prose.as_str();
            while let Some(i) = rest.find("](") {
                let after = &rest[i + 2..];
                let end = after.find(')').unwrap_or(after.len());
                let target = after[..end].split_whitespace().next().unwrap_or("");
                out.push(target.trim_matches(['<', '>']).to_string());
                rest = &after[end..];
            }
        }
        out
    }

    /// The words written as code (inline spans and fenced blocks): what a reader would type.
    fn code_words(&self) -> BTreeSet<String> {
        let mut text: Vec<String> = self.fenced.clone();
        for p in &self.paragraphs {
            text.extend(code_spans(p));
        }
        text.iter()
            .flat_map(|t| {
                t.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                    .filter(|w| !w.is_empty())
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The rows of its tables, as trimmed cells (`\|` inside a cell is a `|`).
    fn table_rows(&self) -> Vec<Vec<String>> {
        self.paragraphs
            .iter()
            .flat_map(|p| p.lines())
            .filter(|l| l.trim_start().starts_with('|'))
            .map(|l| {
                let l = l.trim().replace("\\|", "\u{0}");
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().replace('\u{0}', "|"))
                    .collect()
            })
            .collect()
    }
}

fn flush(para: &mut String, out: &mut Vec<String>) {
    if !para.is_empty() {
        out.push(std::mem::take(para));
    }
}

/// The text of an ATX heading (`## Text ##`), or `None`.
fn heading(line: &str) -> Option<&str> {
    let hashes = line.chars().take_while(|&c| c == '#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !rest.starts_with(' ') {
        return None;
    }
    Some(rest.trim().trim_end_matches('#').trim_end())
}

/// The anchor GitHub gives a heading: its rendered text (code spans and links become their
/// text, emphasis marks go), lower case, every character but letters, digits, `-`, `_` and
/// spaces dropped, spaces made `-`.
fn slug(heading: &str) -> String {
    let mut text = String::new();
    let mut rest = heading;
    // [text](target) and ![alt](target) become text.
    while let Some(open) = rest.find('[') {
        let Some(mid) = rest[open..].find("](") else {
            break;
        };
        let Some(close) = rest[open + mid..].find(')') else {
            break;
        };
        text.push_str(rest[..open].trim_end_matches('!'));
        text.push_str(&rest[open + 1..open + mid]);
        rest = &rest[open + mid + close + 1..];
    }
    text.push_str(rest);
    text.chars()
        .filter(|&c| c != '`' && c != '*')
        .flat_map(char::to_lowercase)
        .filter(|&c| c.is_alphanumeric() || c == '-' || c == '_' || c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Splits out the code spans of a paragraph: (the prose with each span removed, the spans).
fn split_code_spans(p: &str) -> (String, Vec<String>) {
    let mut prose = String::new();
    let mut spans = Vec::new();
    let mut rest = p;
    while let Some(i) = rest.find('`') {
        prose.push_str(&rest[..i]);
        let ticks = rest[i..].chars().take_while(|&c| c == '`').count();
        let fence = "`".repeat(ticks);
        let body = &rest[i + ticks..];
        match body.find(&fence) {
            Some(j) => {
                spans.push(body[..j].replace('\n', " "));
                rest = &body[j + ticks..];
            }
            None => {
                // A lone backtick is text.
                prose.push_str(&fence);
                rest = body;
            }
        }
    }
    prose.push_str(rest);
    (prose, spans)
}

fn without_code_spans(p: &str) -> String {
    split_code_spans(p).0
}

fn code_spans(p: &str) -> Vec<String> {
    split_code_spans(p).1
}

/// `README.md` and every Markdown file under `docs/`, by path.
fn guide() -> Vec<Page> {
    let mut rels = vec!["README.md".to_string()];
    let mut dirs = vec![root().join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                let rel = path.strip_prefix(root()).unwrap();
                rels.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    rels.sort();
    rels.iter().map(|r| Page::load(r)).collect()
}

fn page<'a>(pages: &'a [Page], rel: &str) -> &'a Page {
    pages
        .iter()
        .find(|p| p.rel == rel)
        .unwrap_or_else(|| panic!("the guide has no {rel}"))
}

/// `base/../x` made `x`, without touching the file system; `None` when it leaves the repository.
fn normalise(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Some(out)
}

fn fail_with(problems: Vec<String>, what: &str) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn every_relative_link_and_anchor_leads_somewhere() {
    let pages = guide();
    let anchors: BTreeMap<&str, BTreeSet<String>> = pages
        .iter()
        .map(|p| (p.rel.as_str(), p.anchors()))
        .collect();
    let mut problems = Vec::new();
    let mut checked = 0;
    for p in &pages {
        for link in p.links() {
            if link.contains("://") || link.starts_with("mailto:") {
                continue;
            }
            checked += 1;
            let (file, fragment) = link.split_once('#').unwrap_or((&link, ""));
            let target = if file.is_empty() {
                Some(PathBuf::from(&p.rel))
            } else {
                normalise(
                    &Path::new(&p.rel)
                        .parent()
                        .unwrap_or(Path::new(""))
                        .join(file),
                )
            };
            let Some(target) = target else {
                problems.push(format!("{}: {link} leaves the repository", p.rel));
                continue;
            };
            if !root().join(&target).exists() {
                problems.push(format!(
                    "{}: {link} points at {}, which does not exist",
                    p.rel,
                    target.display()
                ));
                continue;
            }
            if fragment.is_empty() {
                continue;
            }
            let key = target.to_string_lossy().replace('\\', "/");
            let known = match anchors.get(key.as_str()) {
                Some(a) => a.clone(),
                // A Markdown file outside the guide (ARCHITECTURE.md, ...).
                None if key.ends_with(".md") => Page::load(&key).anchors(),
                None => {
                    problems.push(format!(
                        "{}: {link}: #{fragment} in a file that is not Markdown",
                        p.rel
                    ));
                    continue;
                }
            };
            if !known.contains(fragment) {
                problems.push(format!(
                    "{}: {link}: {key} has no heading with the anchor #{fragment}",
                    p.rel
                ));
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} relative links found: is the link reader broken?"
    );
    fail_with(problems, "broken links in the guide");
}

#[test]
fn the_readme_links_the_table_of_contents_and_it_every_chapter() {
    let pages = guide();
    let linked = |p: &Page| -> BTreeSet<PathBuf> {
        p.links()
            .iter()
            .filter(|l| !l.contains("://"))
            .filter_map(|l| {
                let file = l.split('#').next().unwrap_or("");
                normalise(&Path::new(&p.rel).parent().unwrap().join(file))
            })
            .collect()
    };
    let mut problems = Vec::new();
    if !linked(page(&pages, "README.md")).contains(Path::new("docs/README.md")) {
        problems
            .push("README.md does not link the guide's table of contents, docs/README.md".into());
    }
    let toc = linked(page(&pages, "docs/README.md"));
    for p in &pages {
        if p.rel.starts_with("docs/")
            && p.rel != "docs/README.md"
            && !toc.contains(Path::new(&p.rel))
        {
            problems.push(format!(
                "{} is not in the table of contents (docs/README.md)",
                p.rel
            ));
        }
    }
    fail_with(problems, "chapters no one can find");
}

#[test]
fn the_readme_stays_a_landing_page() {
    let lines = read("README.md").lines().count();
    assert!(
        lines <= README_MAX_LINES,
        "README.md has {lines} lines; it is a landing page of at most {README_MAX_LINES}: move the detail into a chapter of docs/"
    );
}

/// The dashboard's keys table: `[keys]` action name to the keys cell of its row.
fn key_rows(dashboard: &Page) -> BTreeMap<String, String> {
    dashboard
        .table_rows()
        .into_iter()
        .filter(|r| r.len() >= 3)
        .filter_map(|r| {
            let action = r[1].strip_prefix('`')?.strip_suffix('`')?;
            (!action.contains(' ')).then(|| (action.to_string(), r[0].clone()))
        })
        .collect()
}

#[test]
fn every_key_of_the_keymap_is_in_the_dashboard_chapter() {
    let pages = guide();
    let rows = key_rows(page(&pages, "docs/dashboard.md"));
    let example: toml::Table = read("config.example.toml")
        .parse()
        .expect("the example parses");
    let example_keys = example["keys"].as_table().expect("a [keys] table");
    let mut problems = Vec::new();
    for (action, defaults) in BINDABLE {
        let Some(cell) = rows.get(*action) else {
            problems.push(format!(
                "action {action} (default {defaults:?}) has no row `| keys | `{action}` | ... |` in docs/dashboard.md"
            ));
            continue;
        };
        let mut keys: Vec<String> = defaults.iter().map(|k| k.to_string()).collect();
        match example_keys.get(*action) {
            Some(toml::Value::Array(a)) => {
                keys.extend(a.iter().filter_map(|v| v.as_str()).map(str::to_string))
            }
            Some(toml::Value::String(s)) => keys.push(s.clone()),
            _ => problems.push(format!("config.example.toml's [keys] lacks {action}")),
        }
        for key in keys {
            if !cell.contains(&format!("`{key}`")) {
                problems.push(format!(
                    "docs/dashboard.md: the row of {action} does not name its default key `{key}`"
                ));
            }
        }
    }
    for action in rows.keys() {
        if !BINDABLE.iter().any(|(a, _)| a == action) {
            problems.push(format!(
                "docs/dashboard.md documents an action {action} the keymap does not have"
            ));
        }
    }
    // The lab panel's close keys, each with the close mode it runs.
    let lab_rows = page(&pages, "docs/lab.md").table_rows();
    for (key, mode) in ACTION_KEYS {
        let (k, m) = (format!("`{key}`"), format!("`{}`", mode.name()));
        if !lab_rows
            .iter()
            .any(|r| r.len() >= 2 && r[0] == k && r[1] == m)
        {
            problems.push(format!(
                "docs/lab.md has no row `| {k} | {m} |` for the lab panel's close key"
            ));
        }
    }
    fail_with(
        problems,
        "keys the dashboard has and the guide does not say",
    );
}

#[test]
fn every_config_key_is_in_the_configuration_chapter_with_its_default() {
    let pages = guide();
    let rows: BTreeMap<String, String> = page(&pages, "docs/configuration.md")
        .table_rows()
        .into_iter()
        .filter(|r| r.len() >= 3)
        .filter_map(|r| {
            let key = r[0].strip_prefix('`')?.strip_suffix('`')?.to_string();
            let default = r[1].strip_prefix('`')?.strip_suffix('`')?.to_string();
            Some((key, default))
        })
        .collect();
    let example: toml::Table = read("config.example.toml")
        .parse()
        .expect("the example parses");
    let mut leaves = Vec::new();
    let mut stack: Vec<(String, &toml::Table)> = vec![(String::new(), &example)];
    while let Some((prefix, table)) = stack.pop() {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => stack.push((key, t)),
                v => leaves.push((key, v.clone())),
            }
        }
    }
    assert!(
        leaves.len() > 40,
        "only {} keys read from config.example.toml",
        leaves.len()
    );
    let mut problems = Vec::new();
    for (key, value) in &leaves {
        // The [keys] entries are the dashboard's keys table, checked above.
        if key.starts_with("keys.") {
            continue;
        }
        let Some(written) = rows.get(key) else {
            problems.push(format!(
                "config key {key} (default {value}) has no row `| `{key}` | `{value}` | ... |` in docs/configuration.md"
            ));
            continue;
        };
        let documented = format!("v = {written}")
            .parse::<toml::Table>()
            .ok()
            .and_then(|mut t| t.remove("v"));
        if documented.as_ref() != Some(value) {
            problems.push(format!(
                "docs/configuration.md gives {key} the default `{written}`; config.example.toml has {value}"
            ));
        }
    }
    for key in rows.keys() {
        if !leaves.iter().any(|(k, _)| k == key) {
            problems.push(format!(
                "docs/configuration.md documents a key {key} that config.example.toml does not have"
            ));
        }
    }
    fail_with(
        problems,
        "config keys the code has and the guide does not say",
    );
}

#[test]
fn every_flag_of_the_command_line_is_in_its_chapter() {
    let pages = guide();
    let cli = Cli::command();
    let mut commands: Vec<(Option<&str>, &clap::Command)> = vec![(None, &cli)];
    commands.extend(cli.get_subcommands().map(|s| (Some(s.get_name()), s)));
    let mut problems = Vec::new();
    let mut checked = 0;
    for (name, cmd) in commands {
        if cmd
            .get_subcommands()
            .any(|s| s.get_subcommands().next().is_some())
        {
            problems.push(format!(
                "{name:?} has nested subcommands; walk them here too"
            ));
        }
        let shown = name.map_or("lingertop (the dashboard)".to_string(), |n| {
            format!("lingertop {n}")
        });
        let Some((_, rel)) = CHAPTERS.iter().find(|(n, _)| *n == name) else {
            problems.push(format!(
                "{shown} has no chapter: add one to docs/ and to CHAPTERS in this test"
            ));
            continue;
        };
        let words = page(&pages, rel).code_words();
        for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
            let id = arg.get_id().as_str();
            if id == "help" || id == "version" {
                continue;
            }
            let mut wanted: Vec<String> = Vec::new();
            wanted.extend(arg.get_long().map(|l| format!("--{l}")));
            wanted.extend(arg.get_short().map(|s| format!("-{s}")));
            // The values an option takes (a switch's true/false are not written).
            if arg.get_action().takes_values() {
                wanted.extend(
                    arg.get_possible_values()
                        .iter()
                        .filter(|v| !v.is_hide_set())
                        .map(|v| v.get_name().to_string()),
                );
            }
            for w in wanted {
                checked += 1;
                if !words.contains(&w) {
                    problems.push(format!(
                        "{shown}: `{w}` (of its argument {id}) is not written as code in {rel}"
                    ));
                }
            }
        }
    }
    assert!(
        checked > 50,
        "only {checked} flags and values checked: is the walk broken?"
    );
    fail_with(problems, "flags the man page has and the guide does not");
}

#[test]
fn every_invalid_input_message_is_in_troubleshooting() {
    let text = read("docs/troubleshooting.md");
    let mut problems = Vec::new();
    let dir = root().join("tests/invalid/configs");
    let mut fixtures: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "stderr"))
        .collect();
    fixtures.sort();
    for path in &fixtures {
        let message = fs::read_to_string(path).unwrap();
        let message = message.trim_end().replace("{path}", SHOWN_CONFIG_PATH);
        if !text.contains(&message) {
            problems.push(format!(
                "{} ({{path}} shown as {SHOWN_CONFIG_PATH}): {message}",
                path.strip_prefix(root()).unwrap().display()
            ));
        }
    }
    let filters = read("tests/invalid/filters.tsv");
    for line in filters
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (_, message) = line.split_once('\t').expect("FILTER<tab>MESSAGE");
        if !text.contains(message) {
            problems.push(format!("tests/invalid/filters.tsv: {message}"));
        }
    }
    assert!(
        fixtures.len() >= 20,
        "only {} config fixtures",
        fixtures.len()
    );
    fail_with(
        problems,
        "messages a user can meet that docs/troubleshooting.md does not show",
    );
}

#[test]
fn nothing_of_the_old_readme_was_lost() {
    let old = Page::load("tests/fixtures/readme-7e644a1.md");
    assert!(
        old.headings.len() > 30 && old.fenced.len() > 20,
        "the fixture is not the old README"
    );
    let pages = guide();
    let headings: BTreeSet<&str> = pages
        .iter()
        .flat_map(|p| p.headings.iter().map(String::as_str))
        .collect();
    let blocks: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.fenced.iter().map(String::as_str))
        .collect();
    let mut problems = Vec::new();
    for h in &old.headings {
        if !headings.contains(h.as_str()) {
            problems.push(format!(
                "the heading \"{h}\" is nowhere in README.md or docs/"
            ));
        }
    }
    for b in &old.fenced {
        if !blocks.iter().any(|n| n.contains(b.as_str())) {
            let first = b.lines().next().unwrap_or("");
            problems.push(format!(
                "the code block starting \"{first}\" is nowhere in README.md or docs/"
            ));
        }
    }
    fail_with(
        problems,
        "the README before the guide had these, and the move lost them",
    );
}

/// Every file under `dir` (recursively), relative to the repository.
fn files_under(dir: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut dirs = vec![root().join(dir)];
    while let Some(d) = dirs.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                out.push(
                    path.strip_prefix(root())
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/"),
                );
            }
        }
    }
    out.sort();
    out
}

/// `docs/NAME.md` and `docs/NAME.md#anchor` as written in `text`.
fn guide_pointers(text: &str) -> Vec<(String, Option<String>)> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("docs/") {
        rest = &rest[i + 5..];
        let name_len = rest.find(|c: char| !word(c)).unwrap_or(rest.len());
        let Some(after) = rest[name_len..].strip_prefix(".md") else {
            continue;
        };
        let anchor = after
            .strip_prefix('#')
            .map(|a| a[..a.find(|c: char| !word(c)).unwrap_or(a.len())].to_string());
        out.push((format!("docs/{}.md", &rest[..name_len]), anchor));
    }
    out
}

#[test]
fn the_binary_and_the_packaging_point_at_the_guide_not_the_readme() {
    let mut problems = Vec::new();
    let mut sources = files_under("src");
    sources.retain(|f| f.ends_with(".rs"));
    let mut others = files_under("packaging");
    others.extend(files_under("deploy"));
    others.extend(["fuzz/Cargo.toml", "BENCHMARKS.md", "ARCHITECTURE.md"].map(String::from));
    let mut pointers = 0;
    for rel in sources.iter().chain(&others) {
        let Ok(text) = fs::read_to_string(root().join(rel)) else {
            continue; // not text
        };
        for (file, anchor) in guide_pointers(&text) {
            pointers += 1;
            if !root().join(&file).exists() {
                problems.push(format!("{rel} points at {file}, which does not exist"));
            } else if let Some(a) = anchor
                && !Page::load(&file).anchors().contains(&a)
            {
                problems.push(format!(
                    "{rel} points at {file}#{a}, a heading it does not have"
                ));
            }
        }
        // What the binary says and its comments: the README is a landing page now.
        if sources.contains(rel) {
            for (n, line) in text.lines().enumerate() {
                if line.replace("docs/README.md", "").contains("README") {
                    problems.push(format!(
                        "{rel}:{}: points at the README; point at the chapter of the guide (docs/) instead",
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(pointers >= 5, "only {pointers} pointers into docs/ found");
    fail_with(problems, "pointers that lead nowhere");
}

/// The Markdown reader itself, on the cases the guide relies on.
#[test]
fn headings_give_the_anchors_github_gives() {
    assert_eq!(
        slug("Close lab: `lingertop lab`"),
        "close-lab-lingertop-lab"
    );
    assert_eq!(
        slug("Every close, from the kernel's events"),
        "every-close-from-the-kernels-events"
    );
    assert_eq!(
        slug("Remote names (reverse DNS)"),
        "remote-names-reverse-dns"
    );
    assert_eq!(slug("`[keys]` and TIME_WAIT"), "keys-and-time_wait");
    assert_eq!(slug("[The guide](docs/README.md)"), "the-guide");
    let p = Page::parse(
        "x.md",
        "# A\n\n```\n# not a heading\n[no](link.md)\n```\n\n## A\n\nsee [b](b.md#c) and `[code](no.md)`\n",
    );
    assert_eq!(p.headings, ["A", "A"]);
    assert_eq!(
        p.anchors(),
        BTreeSet::from(["a".to_string(), "a-1".to_string()])
    );
    assert_eq!(p.links(), ["b.md#c"]);
    assert_eq!(p.fenced, ["# not a heading\n[no](link.md)"]);
}
