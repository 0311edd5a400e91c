//! Every invalid input in `tests/invalid/` run through the real binary: each config fixture
//! (`configs/NAME.toml`) must make `lingertop --config NAME.toml snapshot` exit 1 with
//! exactly the line in `configs/NAME.stderr` (`{path}` stands for the fixture's path) and
//! nothing on stdout; each line of `filters.tsv` does the same for `snapshot --filter`.
//! Inputs no fixture file can hold (too big, endless, a pipe) are built here.
//!
//! To add a case: add the fixture and its expected line; a wrong or missing line fails with
//! what the binary said, ready to paste after review.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::common::lingertop;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid")
}

/// The one stderr line of a run that must fail with status 1 and print nothing on stdout.
fn failure(out: &Output, what: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{what}: {stderr}");
    assert!(out.stdout.is_empty(), "{what} printed to stdout");
    assert_eq!(stderr.lines().count(), 1, "{what}: not one line: {stderr}");
    stderr.trim_end_matches('\n').to_string()
}

#[test]
fn every_invalid_config_fixture_gives_its_message() {
    let dir = fixtures().join("configs");
    let mut mismatches = Vec::new();
    let mut seen = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    entries.sort();
    for path in entries {
        let shown = path.to_str().unwrap();
        let out = lingertop()
            .args(["--config", shown, "snapshot"])
            .output()
            .unwrap();
        let got = failure(&out, shown).replace(shown, "{path}");
        let expected = std::fs::read_to_string(path.with_extension("stderr"))
            .unwrap_or_else(|_| format!("(no {})", path.with_extension("stderr").display()));
        if got != expected.trim_end_matches('\n') {
            mismatches.push(format!(
                "{shown}\n  expected: {expected}\n  got:      {got}"
            ));
        }
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} config fixtures");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn every_invalid_filter_gives_its_message() {
    let table = std::fs::read_to_string(fixtures().join("filters.tsv")).unwrap();
    let mut mismatches = Vec::new();
    let mut seen = 0;
    for line in table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (written, expected) = line.split_once('\t').expect("FILTER<tab>MESSAGE");
        let filter = lingertop::sanitize::unescape(written)
            .unwrap_or_else(|| panic!("bad escape in the fixture {written:?}"));
        let out = lingertop()
            .args(["snapshot", "--filter", &filter])
            .output()
            .unwrap();
        let got = failure(&out, written);
        if got != expected {
            mismatches.push(format!(
                "{written}\n  expected: {expected}\n  got:      {got}"
            ));
        }
        seen += 1;
    }
    assert!(seen >= 20, "only {seen} filters");
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn lingertop_config_names_the_file_when_config_does_not() {
    let fixture = fixtures().join("configs/interval_too_short.toml");
    let shown = fixture.to_str().unwrap();
    let expected = std::fs::read_to_string(fixture.with_extension("stderr")).unwrap();
    let expected = expected.trim_end_matches('\n');
    // Through the environment, the fixture gives the line it gives through --config.
    let out = lingertop()
        .env("LINGERTOP_CONFIG", shown)
        .arg("snapshot")
        .output()
        .unwrap();
    assert_eq!(failure(&out, shown).replace(shown, "{path}"), expected);
    // A file it names must exist, and the message says where the path came from.
    let out = lingertop()
        .env("LINGERTOP_CONFIG", "/nonexistent/lingertop.toml")
        .arg("snapshot")
        .output()
        .unwrap();
    let e = failure(&out, "a missing LINGERTOP_CONFIG");
    assert!(
        e.starts_with("lingertop: config file /nonexistent/lingertop.toml cannot be read")
            && e.ends_with("; check the path in LINGERTOP_CONFIG"),
        "{e}"
    );
    // --config wins over it.
    let out = lingertop()
        .env("LINGERTOP_CONFIG", "/nonexistent/lingertop.toml")
        .args(["--config", shown, "snapshot"])
        .output()
        .unwrap();
    assert_eq!(failure(&out, shown).replace(shown, "{path}"), expected);
}

#[test]
fn configs_too_big_or_endless_are_refused_and_pipes_are_read() {
    let e = failure(
        &lingertop()
            .args(["--config", "/dev/zero", "snapshot"])
            .output()
            .unwrap(),
        "/dev/zero",
    );
    assert_eq!(
        e,
        "lingertop: config file /dev/zero is larger than 1024 kB; a lingertop config is a few kB of TOML; check the path given to --config"
    );

    let mut big = tempfile::NamedTempFile::new().unwrap();
    big.write_all("# padding\n".repeat(110_000).as_bytes())
        .unwrap();
    let e = failure(
        &lingertop()
            .args(["--config", big.path().to_str().unwrap(), "snapshot"])
            .output()
            .unwrap(),
        "a 1.1 MB file",
    );
    assert!(e.contains("larger than 1024 kB"), "{e}");

    // A pipe, as `--config <(...)` gives: read to its end, errors with their line.
    let piped = |text: &str| {
        let mut child = lingertop()
            .args(["--config", "/dev/stdin", "snapshot", "--format", "json"])
            .args(["--state", "listen"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let out = piped("[alerts.time-wait]\nwarning = 5\n");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let e = failure(&piped("[alerts.time-wait]\n\nwarning = 0\n"), "a pipe");
    assert!(
        e.contains("/dev/stdin line 3, key alerts.time-wait.warning"),
        "{e}"
    );
}
