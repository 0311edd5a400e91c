//! The missing-privilege messages name the capability lingertop lacks: run as nobody with
//! exactly some capabilities (`setpriv --ambient-caps`), as a unit or `setcap` would give
//! them. Needs root (to hand capabilities out); skips clearly otherwise.

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::netns::{Netns, privileged};
use serde_json::Value;

/// Runs lingertop in `ns` as nobody holding exactly `caps` (setpriv's names: `sys_ptrace`),
/// for at most 60 s; its exit success, stdout and stderr. In a namespace of the test's own,
/// so the read is of a few sockets, not of the whole machine's.
fn as_nobody(ns: &Netns, caps: &[&str], args: &[&str]) -> (bool, String, String) {
    let plus: Vec<String> = caps.iter().map(|c| format!("+{c}")).collect();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &ns.name, "setpriv"]);
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"]);
    if plus.is_empty() {
        cmd.arg("--inh-caps=-all");
    } else {
        cmd.arg(format!("--inh-caps=-all,{}", plus.join(",")));
        cmd.arg(format!("--ambient-caps={}", plus.join(",")));
    }
    let mut child = cmd
        .arg(env!("CARGO_BIN_EXE_lingertop"))
        .args(args)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("setpriv (util-linux) must be installed for this test");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status.success(), out, err)
}

/// `process_info_reason` of a snapshot as nobody with `caps`, while root holds a listener.
fn owners_reason(ns: &Netns, caps: &[&str]) -> Option<String> {
    // Root's socket: nobody sees it in the table, and its owner only with privilege.
    let held = ns.enter(|| TcpListener::bind("127.0.0.1:0").unwrap());
    let port = held.local_addr().unwrap().port().to_string();
    let (ok, out, err) = as_nobody(
        ns,
        caps,
        &["snapshot", "--format", "json", "-q", "--netns", "host"],
    );
    assert!(ok, "snapshot as nobody failed: {err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    let mine = doc["connections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["local"].as_str().unwrap().ends_with(&format!(":{port}")))
        .expect("root's listener in the snapshot")
        .clone();
    drop(held);
    let reason = doc["process_info_reason"].as_str().map(str::to_string);
    // With both capabilities, nobody sees root's process as root does.
    if caps.len() == 2 {
        assert!(mine["pid"].is_u64(), "{mine}");
    }
    reason
}

#[test]
fn owners_name_the_missing_capability() {
    if !privileged("owners_name_the_missing_capability") {
        return;
    }
    let ns = Netns::new("caps").expect("ip netns add");
    let none = owners_reason(&ns, &[]).expect("partial without capabilities");
    assert!(
        none.contains("lacks CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: run with sudo or grant them"),
        "{none}"
    );
    let ptrace = owners_reason(&ns, &["sys_ptrace"]).expect("partial with SYS_PTRACE alone");
    assert!(
        ptrace.contains("lacks CAP_DAC_READ_SEARCH: run with sudo or grant it"),
        "{ptrace}"
    );
    let both = owners_reason(&ns, &["sys_ptrace", "dac_read_search"]);
    assert!(
        both.as_deref().is_none_or(|r| !r.contains("lacks")),
        "{both:?}"
    );
}

#[test]
fn events_name_the_missing_capability() {
    if !privileged("events_name_the_missing_capability") {
        return;
    }
    let ns = Netns::new("capsev").expect("ip netns add");
    let watch = [
        "watch",
        "--events",
        "on",
        "--interval",
        "1s",
        "--netns",
        "host",
    ];
    for (caps, lacking) in [
        (&["bpf"][..], "lingertop lacks CAP_PERFMON ("),
        (&["perfmon"][..], "lingertop lacks CAP_BPF ("),
        (&[][..], "lingertop lacks CAP_BPF and CAP_PERFMON ("),
    ] {
        let (ok, _, err) = as_nobody(&ns, caps, &watch);
        assert!(!ok, "--events on without {lacking} must fail: {err}");
        assert!(err.contains(lacking), "with {caps:?}: {err}");
    }
}
