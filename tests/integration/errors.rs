//! Bad input gets one line on stderr that says what to do, and exit status 1.

use crate::common::lingertop;

/// Runs the binary and returns its single stderr line; fails unless it exits 1 with
/// exactly one line and nothing on stdout.
fn one_line_error(args: &[&str]) -> String {
    let out = lingertop().args(args).output().expect("run lingertop");
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line: {stderr}");
    assert!(lines[0].starts_with("lingertop: "), "{stderr}");
    lines[0].to_string()
}

fn config_file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
    f
}

#[test]
fn unknown_config_key_names_key_line_and_allowed_keys() {
    let f =
        config_file("[collector]\ninterval = \"1s\"\n\n[alerts.close-wait]\nmin_age = \"5s\"\n");
    let path = f.path().to_str().unwrap();
    let e = one_line_error(&["--config", path, "snapshot"]);
    assert!(e.contains(path), "{e}");
    assert!(e.contains("line 5"), "{e}");
    assert!(e.contains("alerts.close-wait.min_age"), "{e}");
    assert!(e.contains("min-age"), "names what is allowed: {e}");
}

#[test]
fn bad_config_value_says_what_is_allowed() {
    let f = config_file("[alerts.port-pressure]\nwarning = 2\n");
    let e = one_line_error(&["--config", f.path().to_str().unwrap(), "snapshot"]);
    assert!(e.contains("line 2") && e.contains("0.0 to 1.0"), "{e}");
}

#[test]
fn missing_config_file_says_so() {
    let e = one_line_error(&["--config", "/nonexistent/lingertop.toml", "snapshot"]);
    assert!(
        e.contains("/nonexistent/lingertop.toml") && e.contains("--config"),
        "{e}"
    );
}

#[test]
fn bad_filters_say_what_is_allowed() {
    let e = one_line_error(&["snapshot", "--state", "close-wiat"]);
    assert!(e.contains("--state") && e.contains("close-wait"), "{e}");
    assert!(e.contains("did you mean close-wait?"), "{e}");
    let e = one_line_error(&["snapshot", "--filter", "port:1 state:listen,close-wiat"]);
    assert!(
        e.contains("at column 21: unknown TCP state \"close-wiat\"; did you mean close-wait?"),
        "{e}"
    );
    let e = one_line_error(&["snapshot", "--port", "http"]);
    assert!(e.contains("--port") && e.contains("not a port"), "{e}");
    let e = one_line_error(&["snapshot", "--remote", "nowhere:80"]);
    assert!(e.contains("ADDR[:PORT]"), "{e}");
    let e = one_line_error(&["snapshot", "--filter", "colour:red"]);
    assert!(e.contains("keys are state"), "{e}");
}

#[test]
fn bad_flags_are_one_line() {
    let e = one_line_error(&["snapshot", "--bogus"]);
    assert!(e.contains("--bogus") && e.contains("--help"), "{e}");
    let e = one_line_error(&["snapshot", "--format", "xml"]);
    assert!(e.contains("xml"), "{e}");
    let e = one_line_error(&["snapshot", "--interval", "soon"]);
    assert!(e.contains("not a duration"), "{e}");
    let e = one_line_error(&["snapshot", "--set", "alerts.close-wait.min-age"]);
    assert!(e.contains("KEY=VALUE"), "{e}");
}

#[test]
fn dashboard_on_a_dumb_terminal_points_to_snapshot_and_watch() {
    let out = lingertop().env("TERM", "dumb").output().expect("run");
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(
        e.contains("TERM=dumb")
            && e.contains("lingertop snapshot")
            && e.contains("lingertop watch"),
        "{e}"
    );
}

#[test]
fn dashboard_without_a_terminal_points_to_snapshot() {
    let e = one_line_error(&[]);
    assert!(e.contains("lingertop snapshot"), "{e}");
}

/// stderr on /dev/full: every write to it fails.
fn full() -> std::process::Stdio {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full")
        .into()
}

#[test]
fn an_unwritable_stderr_leaves_the_exit_status_alone() {
    // It used to panic (exit 101) at the first message.
    for (args, code) in [
        (&["snapshot", "--filter", "!!state:listen"][..], 1),
        (&["--bogus"], 1),
        (&["snapshot", "--interval", "100ms", "--state", "listen"], 0),
    ] {
        let out = lingertop()
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(full())
            .status()
            .expect("run");
        assert_eq!(out.code(), Some(code), "{args:?}");
    }
    // The live modes speak at start and stop cleanly on SIGINT.
    for args in [
        &["watch", "--events", "--interval", "100ms"][..],
        &["serve", "--listen", "127.0.0.1:0", "--interval", "100ms"],
    ] {
        let mut child = lingertop()
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(full())
            .spawn()
            .expect("spawn");
        std::thread::sleep(std::time::Duration::from_millis(700));
        assert_eq!(child.try_wait().unwrap(), None, "{args:?} ended early");
        crate::common::live::signal(&child, libc::SIGINT);
        let status = crate::common::live::wait_exit(&mut child, std::time::Duration::from_secs(10));
        assert_eq!(status.code(), Some(0), "{args:?}");
    }
}

/// Issue 15 item 7: clap's detail survives the one line: the missing arguments named, the
/// possible values, "did you mean", and a pointer to the subcommand's own help.
#[test]
fn parse_errors_keep_their_detail_and_point_to_the_subcommands_help() {
    let e = one_line_error(&["lab"]);
    assert!(
        e.contains("--mode") && e.contains("--all") && e.contains("--scenario"),
        "names the missing arguments: {e}"
    );
    assert!(e.contains("lingertop lab --help"), "{e}");
    let e = one_line_error(&["lab", "--mode", "bogus"]);
    assert!(
        e.contains("possible values") && e.contains("half-close"),
        "lists the values: {e}"
    );
    assert!(e.contains("lingertop lab --help"), "{e}");
    let e = one_line_error(&["snapshot", "--stat", "close-wait"]);
    assert!(e.contains("'--state'"), "did you mean: {e}");
    assert!(e.contains("lingertop snapshot --help"), "{e}");
    let e = one_line_error(&["--mode", "abort"]);
    assert!(e.contains("option of: lingertop lab"), "{e}");
}

#[test]
fn a_snapshot_into_a_full_disk_fails_and_says_so() {
    // A small snapshot fits the output buffer: the only write is the last flush, whose
    // error used to be dropped (exit 0, nothing written, nothing said).
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port().to_string();
    for format in ["json", "table", "csv"] {
        let out = lingertop()
            .args(["snapshot", "--format", format, "--port", &port])
            .stdout(full())
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {err}");
        assert!(
            err.contains("cannot write the snapshot to stdout"),
            "{format}: {err}"
        );
        assert!(err.contains("No space left on device"), "{format}: {err}");
    }
}

#[test]
fn a_set_before_the_subcommand_is_kept_beside_one_after_it() {
    // The first --set makes the run fail; it used to be dropped by the second one (clap keeps
    // a global argument's values from one level only), and the run went on with the default.
    let out = lingertop()
        .args([
            "--set",
            "collector.netns=no/such",
            "snapshot",
            "--format",
            "json",
        ])
        .args(["--set", "alerts.close-wait.min-age=1s"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("no/such"), "{err}");
}
