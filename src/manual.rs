//! The manual page and the shell completions, generated from the clap definitions in
//! `cli.rs`, so `--help`, `man lingertop` and Tab completion cannot disagree.
//!
//! `lingertop man` prints lingertop(1): the options and commands from clap, then the parts a
//! command line cannot describe: the filter language, every config key (read from the
//! shipped `config.example.toml`, which a config test holds equal to the defaults), exit
//! statuses, files and environment. `lingertop man --dir DIR` also writes one page per
//! command (lingertop-snapshot(1), ...), as git does, for the package to install.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::CommandFactory;
use clap_mangen::Man;
use roff::{Roff, bold, italic, roman};

use crate::cli::{Cli, CompletionsArgs, ManArgs};

/// The example config, the source of the CONFIGURATION section.
const EXAMPLE_CONFIG: &str = include_str!("../config.example.toml");

/// The filter language, one row per term: an example that parses, and what it matches.
/// A unit test parses every example, so the page never documents a key that is not there.
pub(crate) const FILTER_TERMS: &[(&str, &str)] = &[
    (
        "state:close-wait,time-wait",
        "The TCP state (also s:). Kernel names in any case, with -, _ or nothing between words.",
    ),
    (
        "port:443, port:8000-8100",
        "Local or remote port, or a range (also p:); lport: and rport: for one side.",
    ),
    (
        "local:127.0.0.1, local:[::1]:80, local:*:22",
        "Local address with an optional port, or a prefix (also src:). IPv4-mapped IPv6 \
         addresses match their IPv4 form.",
    ),
    (
        "remote:10.0.0.0/8",
        "Remote address, as local: (also dst:).",
    ),
    ("pid:1234", "Owning pid, attributed owners included."),
    (
        "proc:nginx",
        "Process name contains the value, any case (also process:).",
    ),
    ("user:www-data", "The socket owner's user name, or uid."),
    (
        "lab:yes, lab:no",
        "One of the close lab's own sockets, or not.",
    ),
    (
        "java",
        "A bare word: the process name or either address contains it.",
    ),
];

/// Exit statuses, shared by every command.
const EXIT_STATUSES: &[(&str, &str)] = &[
    (
        "0",
        "Success. snapshot: no alert reached --fail-on (without --fail-on a snapshot never \
         fails on alerts). serve and watch: stopped by Ctrl-C or SIGTERM; watch also when the \
         reader of its output goes away. lab: the lab ran (a deviation from the documents is \
         a finding, not a failure).",
    ),
    (
        "1",
        "An error: a bad flag, filter or config, a socket table that cannot be read, an \
         address serve cannot listen on. One line on stderr says what to do.",
    ),
    (
        "2",
        "snapshot only: an alert at or above --fail-on warning or --fail-on critical was \
         raised.",
    ),
];

/// `lingertop completions SHELL`: the completion script on stdout.
pub fn completions(args: &CompletionsArgs) -> Result<ExitCode> {
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "lingertop", &mut out);
    print(&out)
}

/// `lingertop man`: lingertop(1) on stdout, or every page into `--dir`.
pub fn man(args: &ManArgs) -> Result<ExitCode> {
    match &args.dir {
        None => {
            let mut out = Vec::new();
            main_page(&mut out)?;
            print(&out)
        }
        Some(dir) => {
            for path in write_pages(dir)? {
                println!("{}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes lingertop.1 and one page per visible command into `dir` (created if missing),
/// and returns their paths.
pub fn write_pages(dir: &Path) -> Result<Vec<PathBuf>> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut paths = Vec::new();
    let write = |name: String, page: Vec<u8>| -> Result<PathBuf> {
        let path = dir.join(name);
        fs::write(&path, page).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let mut page = Vec::new();
    main_page(&mut page)?;
    paths.push(write("lingertop.1".to_string(), page)?);
    for sub in built().get_subcommands().filter(|s| !s.is_hide_set()) {
        let man = Man::new(sub.clone()).source(source());
        let mut page = Vec::new();
        man.render(&mut page)?;
        see_also(&mut page)?;
        paths.push(write(man.get_filename(), page)?);
    }
    Ok(paths)
}

/// The command tree as clap completes it: display names such as `lingertop-snapshot` set,
/// and no `help` subcommand (it has no page).
fn built() -> clap::Command {
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn source() -> String {
    format!("lingertop {}", env!("CARGO_PKG_VERSION"))
}

/// Renders lingertop(1).
pub fn main_page(w: &mut dyn Write) -> io::Result<()> {
    let man = Man::new(built()).source(source());
    man.render_title(w)?;
    man.render_name_section(w)?;
    man.render_synopsis_section(w)?;
    man.render_description_section(w)?;
    man.render_options_section(w)?;
    man.render_subcommands_section(w)?;

    let mut r = Roff::new();
    r.control("SH", ["FILTER LANGUAGE"]);
    r.text([roman(
        "The filter flags, --filter EXPR, the config's filter.default and the dashboard's / \
         share one language. Terms are separated by spaces and all must match; values after \
         a key are separated by commas and any may match; ! before a term negates it, e.g. ",
    )]);
    r.text([bold("state:close-wait port:443 !proc:sshd")]);
    for (term, meaning) in FILTER_TERMS {
        r.control("TP", []);
        r.text([bold(*term)]);
        r.text([roman(*meaning)]);
    }
    r.control("PP", []);
    r.text([roman(
        "--state X, --port X, --local X, --remote X, --pid X and --process X are shorthands \
         for state:X, port:X, local:X, remote:X, pid:X and proc:X, and may be repeated. \
         Filter flags on the command line replace the config's default filter.",
    )]);

    configuration(&mut r);

    r.control("SH", ["EXIT STATUS"]);
    for (status, meaning) in EXIT_STATUSES {
        r.control("TP", []);
        r.text([bold(*status)]);
        r.text([roman(*meaning)]);
    }

    r.control("SH", ["FILES"]);
    r.control("TP", []);
    r.text([italic("$XDG_CONFIG_HOME/lingertop/config.toml")]);
    r.text([roman(
        "The config file read when it exists (usually ~/.config/lingertop/config.toml), \
         unless --config PATH or LINGERTOP_CONFIG names another.",
    )]);
    r.control("TP", []);
    r.text([italic("/etc/lingertop/config.toml")]);
    r.text([roman(
        "The Debian package's config, read by its lingertop.service through --config.",
    )]);
    r.control("SH", ["ENVIRONMENT"]);
    r.control("TP", []);
    r.text([bold("NO_COLOR")]);
    r.text([roman(
        "When set and not empty, the dashboard draws without colour whatever the theme says.",
    )]);
    r.control("TP", []);
    r.text([bold("XDG_CONFIG_HOME")]);
    r.text([roman("Where the default config file is looked for.")]);
    r.control("TP", []);
    r.text([bold("XDG_STATE_HOME")]);
    r.text([roman(
        "Where the dashboard keeps its filter history (lingertop/filter-history; \
         ~/.local/state when unset).",
    )]);
    r.control("TP", []);
    r.text([bold("LINGERTOP_CONFIG")]);
    r.text([roman(
        "The config file to read when --config is not given (it must exist); when unset or \
         empty, the default path.",
    )]);
    r.control("TP", []);
    r.text([bold("LINGERTOP_NO_HISTORY")]);
    r.text([roman(
        "When set, the dashboard's filter history is kept for the session only, never written.",
    )]);
    r.to_writer(w)?;

    man.render_version_section(w)?;
    see_also(w)
}

/// The CONFIGURATION section: every table and key of the example config with its default
/// and the comment above it.
fn configuration(r: &mut Roff) {
    r.control("SH", ["CONFIGURATION"]);
    r.text([roman(
        "A TOML file; every key is optional and unknown keys are errors. Any key can be set \
         for one run with --set KEY=VALUE, which wins over the file; command-line flags win \
         over both. Durations are written like 500ms, 30s, 2m, 1h. The keys, their defaults \
         and what they mean:",
    )]);
    let mut comment: Vec<&str> = Vec::new();
    let mut table = "";
    for line in EXAMPLE_CONFIG.lines() {
        let line = line.trim();
        if let Some(text) = line.strip_prefix('#') {
            comment.push(text.trim());
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            table = name;
            r.control("SS", [format!("[{name}]").as_str()]);
            if !comment.is_empty() {
                r.text([roman(comment.join(" "))]);
            }
            comment.clear();
        } else if let Some((key, value)) = line.split_once('=') {
            r.control("TP", []);
            r.text([
                bold(format!("{table}.{}", key.trim())),
                roman(format!(" = {}", value.trim())),
            ]);
            if !comment.is_empty() {
                r.text([roman(comment.join(" "))]);
            }
            comment.clear();
        } else {
            // A blank line ends a comment that belongs to no key (the file's header).
            comment.clear();
        }
    }
}

fn see_also(w: &mut dyn Write) -> io::Result<()> {
    let mut r = Roff::new();
    r.control("SH", ["SEE ALSO"]);
    r.text([
        bold("ss"),
        roman("(8), "),
        bold("tcp"),
        roman("(7), "),
        bold("lingertop"),
        roman(
            "(1). The guide (/usr/share/doc/lingertop/docs/README.md in the Debian package, \
             docs/ in the source) has every mode with captures, every key, config key and \
             metric, the JSON shape, and every message with what to do.",
        ),
    ]);
    r.to_writer(w)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn print(bytes: &[u8]) -> Result<ExitCode> {
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(e).context("cannot write to stdout"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Filter;

    fn page() -> String {
        let mut out = Vec::new();
        main_page(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn every_documented_filter_term_parses() {
        for (terms, _) in FILTER_TERMS {
            for term in terms.split(", ") {
                assert!(Filter::parse(term).is_ok(), "the page documents {term}");
            }
        }
    }

    #[test]
    fn every_config_key_of_the_example_is_on_the_page() {
        let page = page();
        for key in [
            "collector.interval",
            "collector.established\\-every",
            "serve.listen",
            "serve.top\\-n",
            "alerts.close\\-wait.min\\-age",
            "keys.quit",
            "theme.accent",
        ] {
            assert!(page.contains(key), "the page lacks {key}");
        }
        // The default is shown beside the key.
        assert!(
            page.contains("\\fBserve.listen\\fR = \"127.0.0.1:9797\""),
            "{page}"
        );
    }

    #[test]
    fn the_page_has_every_section_and_command() {
        let page = page();
        for heading in [
            ".SH NAME",
            ".SH SYNOPSIS",
            ".SH OPTIONS",
            ".SH \"FILTER LANGUAGE\"",
            ".SH CONFIGURATION",
            ".SH \"EXIT STATUS\"",
            ".SH \"SEE ALSO\"",
        ] {
            assert!(page.contains(heading), "lacks {heading}");
        }
        for command in ["snapshot", "watch", "serve", "lab", "completions", "man"] {
            assert!(
                page.contains(&format!("lingertop\\-{command}(1)")),
                "lacks {command}"
            );
        }
    }

    #[test]
    fn every_command_gets_a_page() {
        let dir = tempfile::tempdir().unwrap();
        let paths = write_pages(dir.path()).unwrap();
        let names: Vec<String> = paths
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for name in ["lingertop.1", "lingertop-snapshot.1", "lingertop-serve.1"] {
            assert!(names.iter().any(|n| n == name), "{names:?}");
        }
        let snapshot = fs::read_to_string(dir.path().join("lingertop-snapshot.1")).unwrap();
        assert!(snapshot.contains("\\-\\-fail\\-on"), "{snapshot}");
    }
}
