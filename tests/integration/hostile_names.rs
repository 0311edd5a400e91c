//! Real processes with hostile names (a terminal escape sequence; a newline followed by what
//! looks like a table row) holding real loopback sockets: no output of lingertop carries the
//! escape raw or lets the name forge a row.
//!
//! The processes are the lingertop binary itself, run through a symlink with the hostile name
//! (the kernel takes a process's name, `comm`, from the file name it executed) as
//! `lab --scenario close-wait-leak --hold`, which holds CLOSE_WAIT sockets on 127.0.0.1.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::lingertop;
use crate::common::live::{Served, line_reader, next_line, signal, wait_exit};
use lingertop::model::TcpState;

const PWN: &str = "\x1b]0;PWN\x07\x1b[2J";
/// A newline, then text shaped like the start of a row.
const FORGED: &str = "x\nCLOSE_WAIT 1";

/// A process named `name` holding 2 CLOSE_WAIT sockets on loopback, once it says it holds them.
struct Holder {
    child: Child,
}

impl Holder {
    fn start(dir: &Path, name: &str) -> Holder {
        let link = dir.join(name);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lingertop"), &link).expect("symlink");
        let mut child = Command::new(&link)
            .args(["lab", "--scenario", "close-wait-leak", "-n", "2"])
            .args(["--hold", "60s", "--format", "json"])
            .env("XDG_CONFIG_HOME", dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the hostile-named lab");
        let stderr = line_reader(child.stderr.take().expect("stderr"));
        let line = next_line(&stderr, Duration::from_secs(20), "from the lab");
        assert!(line.contains("holding 2 CLOSE_WAIT"), "{line}");
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", child.id())).unwrap();
        assert_eq!(
            comm.trim_end_matches('\n'),
            name,
            "the kernel took the name"
        );
        Holder { child }
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        signal(&self.child, libc::SIGINT);
        wait_exit(&mut self.child, Duration::from_secs(10));
    }
}

fn snapshot(format: &str, pids: &str, extra: &[&str]) -> (String, String) {
    let out = lingertop()
        .args([
            "snapshot",
            "--format",
            format,
            "--filter",
            &format!("pid:{pids} state:close-wait"),
        ])
        .args(extra)
        .output()
        .expect("run snapshot");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8 stderr");
    (stdout, stderr)
}

fn assert_no_controls(what: &str, text: &str) {
    let bad: Vec<char> = text
        .chars()
        .filter(|&c| c != '\n' && lingertop::sanitize::is_unsafe(c))
        .collect();
    assert!(bad.is_empty(), "{what} carries {bad:?}:\n{text}");
}

#[test]
fn hostile_process_names_reach_no_output_raw() {
    let dir = tempfile::tempdir().unwrap();
    let pwn = Holder::start(dir.path(), PWN);
    let forged = Holder::start(dir.path(), FORGED);
    let pids = format!("{},{}", pwn.child.id(), forged.child.id());
    // Two polls and a CLOSE_WAIT rule that fires at once, so the alert lines name them too.
    let alerts = [
        "--interval",
        "200ms",
        "--quiet",
        "--set",
        "alerts.close-wait.min-age=0s",
        "--set",
        "alerts.close-wait.warning=1",
    ];

    let (table, stderr) = snapshot("table", &pids, &alerts);
    assert_no_controls("the table", &table);
    assert_no_controls("stderr", &stderr);
    assert!(table.contains("\\x1b]0;PWN\\x07\\x1b[2J ("), "{table}");
    assert!(table.contains("x\\nCLOSE_WAIT 1 ("), "{table}");
    // Exactly the 4 sockets' rows, each a state and two addresses: no forged row.
    let rows: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with("STATE "))
        .skip(1)
        .collect();
    assert_eq!(rows.len(), 4, "{table}");
    for row in &rows {
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cols[0].parse::<TcpState>(),
            Ok(TcpState::CloseWait),
            "{row}"
        );
        assert!(cols[1].parse::<SocketAddr>().is_ok(), "{row}");
        assert!(cols[2].parse::<SocketAddr>().is_ok(), "{row}");
    }
    // The alert lines are one line each, and name the processes escaped.
    let alert_lines: Vec<&str> = table.lines().filter(|l| l.contains("close-wait")).collect();
    assert!(
        alert_lines.iter().any(|l| l.contains("\\x1b]0;PWN")),
        "{table}"
    );
    assert!(
        !table.lines().any(|l| l.starts_with("CLOSE_WAIT 1")),
        "{table}"
    );

    // CSV: one line per connection, the names escaped.
    let (csv, _) = snapshot("csv", &pids, &[]);
    assert_no_controls("the CSV", &csv);
    assert_eq!(csv.lines().count(), 1 + 4, "{csv}");
    assert!(csv.contains("x\\nCLOSE_WAIT 1,"), "{csv}");

    // JSON: the names exact once decoded, the document free of raw controls.
    let (json, _) = snapshot("json", &pids, &[]);
    assert_no_controls("the JSON", &json);
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut names: Vec<&str> = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["process"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, [PWN, PWN, FORGED, FORGED]);
}

#[test]
fn hostile_process_names_reach_metrics_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let _pwn = Holder::start(dir.path(), PWN);
    let served = Served::start(&["--interval", "200ms"]);
    let scrape = served.scrape_until("the hostile process's series", |s| s.text.contains("PWN"));
    assert_no_controls("the scrape", &scrape.text);
    // On the wire the label's backslash is escaped once more, as the format asks.
    assert!(
        scrape
            .text
            .contains(r#"process="\\x1b]0;PWN\\x07\\x1b[2J""#),
        "{}",
        scrape.text
    );
}
