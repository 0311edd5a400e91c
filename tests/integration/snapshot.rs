//! `lingertop snapshot` against real loopback sockets and the real kernel socket table.

use std::io::Read;
use std::net::{IpAddr, Shutdown, SocketAddr};

use crate::common::*;
use lingertop::model::TcpState;
use serde_json::Value;

/// LISTEN, ESTABLISHED, CLOSE_WAIT, FIN_WAIT_2 (owned and orphaned) and TIME_WAIT on one
/// address family, each checked for state, addresses and owner.
fn every_close_state(ip: IpAddr) {
    let me = std::process::id();
    let comm = my_comm();
    let l = listener(ip);
    let lport = l.local_addr().unwrap().port();

    let (est_c, _est_s) = pair(&l);

    // Client closes, server never does: server end in CLOSE_WAIT (owned by us), client end
    // orphaned in FIN_WAIT_2.
    let (cw_c, cw_s) = pair(&l);
    let (cw_client, cw_server) = addr_of(&cw_c);
    drop(cw_c);
    wait_for_state(cw_server, cw_client, TcpState::CloseWait);

    // Client half-closes and keeps its descriptor: FIN_WAIT_2 still owned.
    let (fw_c, _fw_s) = pair(&l);
    fw_c.shutdown(Shutdown::Write).unwrap();
    let (fw_client, fw_server) = addr_of(&fw_c);
    wait_for_state(fw_client, fw_server, TcpState::FinWait2);

    // Client closes first, server closes after EOF: client end in TIME_WAIT.
    let (tw_client, tw_server) = client_time_wait(&l);

    let (code, json) = snapshot_json(&["--port", &lport.to_string()]);
    assert_eq!(code, 0, "{json}");

    let listen = one(
        &json,
        l.local_addr().unwrap(),
        SocketAddr::new(unspecified(ip), 0),
    );
    assert_eq!(listen["state"], "LISTEN");
    assert_owned_by_me(listen, me, &comm);

    let (est_client, est_server) = addr_of(&est_c);
    let est = one(&json, est_client, est_server);
    assert_eq!(est["state"], "ESTABLISHED");
    assert_owned_by_me(est, me, &comm);
    let est_srv = one(&json, est_server, est_client);
    assert_eq!(est_srv["state"], "ESTABLISHED");
    assert_owned_by_me(est_srv, me, &comm);

    let cw = one(&json, cw_server, cw_client);
    assert_eq!(cw["state"], "CLOSE_WAIT");
    assert_owned_by_me(cw, me, &comm);
    let orphan = one(&json, cw_client, cw_server);
    assert_eq!(orphan["state"], "FIN_WAIT_2");
    assert_eq!(orphan["inode"], 0, "a closed socket has no file");

    let fw = one(&json, fw_client, fw_server);
    assert_eq!(fw["state"], "FIN_WAIT_2");
    assert_owned_by_me(fw, me, &comm);

    let tw = one(&json, tw_client, tw_server);
    assert_eq!(tw["state"], "TIME_WAIT");
    assert_eq!(tw["inode"], 0);

    // Counts agree with the rows listed.
    let rows = json["connections"].as_array().unwrap();
    let count_of = |s: &str| rows.iter().filter(|c| c["state"] == s).count() as u64;
    for s in [
        "LISTEN",
        "ESTABLISHED",
        "CLOSE_WAIT",
        "FIN_WAIT_2",
        "TIME_WAIT",
    ] {
        assert_eq!(json["counts"][s].as_u64(), Some(count_of(s)), "{s}");
    }
    drop(cw_s);
}

fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::from([0, 0, 0, 0]),
        IpAddr::V6(_) => IpAddr::from([0u16; 8]),
    }
}

fn assert_owned_by_me(c: &Value, me: u32, comm: &str) {
    assert_eq!(c["pid"], me, "{c}");
    assert_eq!(c["process"], comm, "{c}");
    assert_eq!(c["attribution"], "owner", "{c}");
    assert!(c["pids"].as_array().unwrap().contains(&Value::from(me)));
}

#[test]
fn every_close_state_over_ipv4() {
    every_close_state(V4);
}

#[test]
fn every_close_state_over_ipv6() {
    every_close_state(V6);
}

#[test]
fn time_wait_carries_the_owner_seen_at_an_earlier_poll() {
    let me = std::process::id();
    let l = listener(V4);
    let (c, mut s) = pair(&l);
    let (client, server) = addr_of(&c);

    let child = snapshot_two_polls(
        "2s",
        &["--port", &l.local_addr().unwrap().port().to_string()],
    );
    // Between the polls: the client closes first, then the server: client end in TIME_WAIT.
    drop(c);
    let mut buf = [0u8; 8];
    assert_eq!(s.read(&mut buf).unwrap(), 0);
    drop(s);
    wait_for_state(client, server, TcpState::TimeWait);
    let (code, json) = finish(child);
    assert_eq!(code, 0);

    assert_eq!(json["polls"], 2);
    let tw = one(&json, client, server);
    assert_eq!(tw["state"], "TIME_WAIT");
    assert_eq!(tw["pid"], me, "{tw}");
    assert_eq!(tw["process"], my_comm());
    assert_eq!(tw["attribution"], "last-owner");
    assert_eq!(tw["previous_states"][0], "ESTABLISHED", "{tw}");
    assert!(tw["state_age_secs"].as_f64().is_some());
}

#[test]
fn close_wait_past_its_threshold_alerts_on_the_owner_and_fails_the_run() {
    let me = std::process::id();
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    let (c, s) = pair(&l);
    let (client, server) = addr_of(&c);
    drop(c);
    wait_for_state(server, client, TcpState::CloseWait);

    let args = [
        "--port",
        port.as_str(),
        "--state",
        "close-wait",
        "--set",
        "alerts.close-wait.min-age=1s",
        "--fail-on",
        "warning",
    ];
    let (code, json) = finish(snapshot_two_polls("1500ms", &args));
    assert_eq!(
        code, 2,
        "--fail-on warning with a warning alert exits 2: {json}"
    );
    let alerts = json["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    let a = &alerts[0];
    assert_eq!(a["rule"], "close-wait-lingering");
    assert_eq!(a["severity"], "warning");
    assert_eq!(a["pid"], me);
    assert_eq!(a["process"], my_comm());
    assert_eq!(a["count"], 1);
    let msg = a["message"].as_str().unwrap();
    assert!(
        msg.starts_with(&format!(
            "1 CLOSE_WAIT held by {} (pid {me}) for > 1 s",
            my_comm()
        )),
        "{msg}"
    );
    assert_eq!(a["connections"][0]["local"], server.to_string());

    // The same population under the default 30 s threshold raises nothing and exits 0.
    let (code, json) = finish(snapshot_two_polls(
        "200ms",
        &["--port", port.as_str(), "--fail-on", "warning"],
    ));
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["alerts"].as_array().unwrap().len(), 0);
    drop(s);
}

/// `n` connections to `l` closed by the client first: `n` client ends in TIME_WAIT.
/// Returns the last one's (client, server) addresses, once it is in TIME_WAIT.
fn time_waits(l: &std::net::TcpListener, n: usize) -> (SocketAddr, SocketAddr) {
    let mut last = None;
    for _ in 0..n {
        let (c, mut s) = pair(l);
        last = Some(addr_of(&c));
        drop(c);
        let mut buf = [0u8; 8];
        assert_eq!(s.read(&mut buf).unwrap(), 0, "server reads EOF");
    }
    let (client, server) = last.expect("n > 0");
    wait_for_state(client, server, TcpState::TimeWait);
    (client, server)
}

#[test]
fn time_wait_buildup_past_a_threshold() {
    const N: usize = 60;
    let l = listener(V4);
    let port = l.local_addr().unwrap().port();
    let (_, server) = time_waits(&l, N);

    let port = port.to_string();
    let (code, json) = snapshot_json(&[
        "--port",
        &port,
        "--set",
        "alerts.time-wait.warning=50",
        "--set",
        "alerts.time-wait-per-remote.warning=40",
        "--fail-on",
        "warning",
    ]);
    assert_eq!(code, 2, "{json}");
    assert_eq!(json["counts"]["TIME_WAIT"], N);
    let alerts = json["alerts"].as_array().unwrap();
    let total = alerts
        .iter()
        .find(|a| a["rule"] == "time-wait-buildup")
        .expect("time-wait-buildup alert");
    assert_eq!(total["count"], N);
    assert_eq!(total["severity"], "warning");
    let remote = alerts
        .iter()
        .find(|a| a["rule"] == "time-wait-remote")
        .expect("time-wait-remote alert");
    assert_eq!(remote["remote"], server.to_string());
    assert_eq!(remote["count"], N);
    // The pressure figure toward the listener counts the same sockets.
    let p = &json["port_pressure"][0];
    assert_eq!(p["remote"], server.to_string());
    assert_eq!(p["time_wait"], N);

    // --fail-on critical does not fail on a warning.
    let (code, _) = snapshot_json(&[
        "--port",
        &port,
        "--set",
        "alerts.time-wait.warning=50",
        "--fail-on",
        "critical",
    ]);
    assert_eq!(code, 0);
}

#[test]
fn filters_select_states_addresses_and_processes() {
    let l = listener(V6);
    let port = l.local_addr().unwrap().port().to_string();
    let (c, _s) = pair(&l);
    let (client, server) = addr_of(&c);

    let (_, json) = snapshot_json(&["--port", &port, "--state", "ESTABLISHED"]);
    assert_eq!(json["connections"].as_array().unwrap().len(), 2);
    let (_, json) = snapshot_json(&["--local", &client.to_string()]);
    let rows = json["connections"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["remote"], server.to_string());
    let (_, json) = snapshot_json(&[
        "--remote",
        &server.to_string(),
        "--pid",
        &std::process::id().to_string(),
    ]);
    assert_eq!(json["connections"].as_array().unwrap().len(), 1);
    let (_, json) = snapshot_json(&["--port", &port, "--process", "no-such-process-xyz"]);
    assert_eq!(json["connections"].as_array().unwrap().len(), 0);
    let (_, json) = snapshot_json(&["--filter", &format!("port:{port} !state:listen")]);
    assert_eq!(json["connections"].as_array().unwrap().len(), 2);
    assert_eq!(json["filter"], format!("port:{port} !state:listen"));
}

#[test]
fn csv_and_table_list_the_same_connection() {
    let l = listener(V4);
    let local = l.local_addr().unwrap();

    let out = lingertop()
        .args([
            "snapshot",
            "--format",
            "csv",
            "--local",
            &local.to_string(),
            "--state",
            "listen",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "state,local,remote,pid,process,user,attribution,state_age_secs,state_age_from,inode,lab,timer,timer_expires_ms,retransmits,recv_q,send_q"
        )
    );
    let row = lines.next().expect("one row");
    assert!(
        row.starts_with(&format!("LISTEN,{local},0.0.0.0:0,{},", std::process::id())),
        "{row}"
    );

    let out = lingertop()
        .args([
            "snapshot",
            "--format",
            "table",
            "--local",
            &local.to_string(),
            "--state",
            "listen",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("LISTEN 1"), "{text}");
    let row = text
        .lines()
        .find(|l| l.starts_with("LISTEN ") && l.contains(&local.to_string()))
        .expect("a LISTEN row");
    assert!(row.contains(&format!("({})", std::process::id())), "{row}");
}

/// Without root, sockets of other users show no process and the output says why.
/// Runs the binary as `nobody` through `setpriv` (util-linux) when the test runs as root;
/// as a non-root user the test checks that its own sockets still show their process.
#[test]
fn without_root_process_info_is_partial_and_says_why() {
    let l = listener(V4);
    let local = l.local_addr().unwrap();
    let port = local.port().to_string();
    // SAFETY: geteuid has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    let run = |format: &str| {
        let mut cmd = if as_root {
            let mut c = std::process::Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
            c.arg(env!("CARGO_BIN_EXE_lingertop"));
            c
        } else {
            std::process::Command::new(env!("CARGO_BIN_EXE_lingertop"))
        };
        cmd.env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("lingertop-no-config"),
        )
        .args(["snapshot", "--format", format, "--port", &port])
        .output()
        .expect("run lingertop (through setpriv when root)")
    };
    let out = run("json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json = parse(&out);
    let row = one(&json, local, "0.0.0.0:0".parse().unwrap());
    if !as_root {
        assert_eq!(row["pid"], std::process::id());
        return;
    }
    assert_eq!(json["process_info"], "partial", "{json}");
    let reason = json["process_info_reason"].as_str().unwrap();
    assert!(
        reason.contains("not running as root") && reason.contains("sudo"),
        "{reason}"
    );
    assert_eq!(row["state"], "LISTEN");
    assert_eq!(
        row["pid"],
        serde_json::Value::Null,
        "root's socket shows no process: {row}"
    );

    // The table says it on its second line; CSV, which has no place for it, on stderr.
    let text = String::from_utf8_lossy(&run("table").stdout).to_string();
    let second = text.lines().nth(1).unwrap_or("");
    assert!(
        second.starts_with("process info is partial: not running as root"),
        "{text}"
    );
    let csv = run("csv");
    assert!(String::from_utf8_lossy(&csv.stderr).contains("process info is partial"));
}

#[test]
fn total_connections_counts_the_states_a_filter_leaves_unread() {
    // 20 ESTABLISHED pairs of our own: a LISTEN-only read leaves all 40 sockets out, and
    // the total must still count them (it used to count the LISTEN sockets alone).
    const PAIRS: usize = 20;
    let l = listener(V4);
    let pairs: Vec<_> = (0..PAIRS).map(|_| pair(&l)).collect();
    let (c, s) = addr_of(&pairs[PAIRS - 1].0);
    wait_for_state(c, s, TcpState::Established);
    for args in [&["--state", "listen"][..], &["--filter", "s:listen"]] {
        let (code, json) = snapshot_json(args);
        assert_eq!(code, 0, "{json}");
        let listening = json["counts"]["LISTEN"].as_u64().unwrap();
        let total = json["total_connections"].as_u64().unwrap();
        assert!(
            total > listening + 2 * PAIRS as u64,
            "{args:?}: total {total} with {listening} LISTEN shown and {PAIRS} pairs held"
        );
    }
    // The table says the same.
    let out = crate::common::lingertop()
        .args(["snapshot", "--format", "table", "--state", "listen"])
        .output()
        .unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    let line = table
        .lines()
        .find(|l| l.contains("TCP connections match"))
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    let (shown, of): (u64, u64) = (words[0].parse().unwrap(), words[2].parse().unwrap());
    assert!(of >= shown + 2 * PAIRS as u64, "{line}");
    drop(pairs);
}

/// Runs `lingertop snapshot ARGS` into a pipe and returns its stdout.
fn snapshot_stdout(args: &[&str]) -> String {
    let out = lingertop().arg("snapshot").args(args).output().unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 2)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The document without what differs between two runs on the same sockets.
fn stable(mut v: Value) -> Value {
    v["taken_at"] = Value::Null;
    // Machine-wide figures: other processes open and close sockets between the two runs.
    for key in [
        "total_connections",
        "process_info",
        "process_info_reason",
        "netns",
    ] {
        v[key] = Value::Null;
    }
    for c in v["connections"].as_array_mut().unwrap() {
        c["timer"] = Value::Null;
        // Ages run on the kernel's clocks between the two runs.
        c["state_age_secs"] = Value::Null;
    }
    v
}

#[test]
fn json_is_compact_into_a_pipe_and_indented_with_pretty() {
    let l = listener(V4);
    let (_c, _s) = pair(&l);
    let port = l.local_addr().unwrap().port().to_string();
    let compact = snapshot_stdout(&["--format", "json", "--port", &port]);
    assert_eq!(compact.lines().count(), 1, "one line: {compact}");
    let pretty = snapshot_stdout(&["--format", "json", "--pretty", "--port", &port]);
    assert!(pretty.lines().count() > 20, "{pretty}");
    assert!(pretty.contains("\n  \"connections\": ["), "{pretty}");
    // The same document either way.
    let a: Value = serde_json::from_str(&compact).unwrap();
    let b: Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(a["connections"].as_array().unwrap().len(), 3, "{a}");
    assert_eq!(stable(a), stable(b));
}

#[test]
fn ndjson_has_a_snapshot_line_then_alerts_then_connections_with_the_json_fields() {
    const N: usize = 3;
    let l = listener(V4);
    let port = l.local_addr().unwrap().port().to_string();
    time_waits(&l, N);
    let args = ["--port", &port, "--set", "alerts.time-wait.warning=2"];

    let text = snapshot_stdout(&[&["--format", "ndjson"][..], &args].concat());
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    assert_eq!(kinds[0], "snapshot", "{text}");
    let alerts = kinds.iter().filter(|k| **k == "alert").count();
    let conns = kinds.iter().filter(|k| **k == "connection").count();
    assert_eq!(kinds.len(), 1 + alerts + conns, "{kinds:?}");
    assert!(
        kinds[1..=alerts].iter().all(|k| *k == "alert"),
        "alerts before connections: {kinds:?}"
    );
    let head = &lines[0];
    assert_eq!(head["matched_connections"], conns);
    assert_eq!(head["counts"]["TIME_WAIT"], N);
    assert_eq!(head["counts"]["LISTEN"], 1);
    assert!(head["time"].is_string() && head["host"].is_string());

    // The same fields as the JSON document's alerts and connections, plus the type.
    let (_, doc) = snapshot_json(&args);
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.retain(|k| k != "type");
        k.sort();
        k
    };
    let alert = lines
        .iter()
        .find(|l| l["type"] == "alert")
        .expect("an alert line");
    assert_eq!(alert["rule"], "time-wait-buildup");
    assert_eq!(keys(alert), keys(&doc["alerts"][0]));
    let conn = lines.iter().find(|l| l["type"] == "connection").unwrap();
    assert_eq!(keys(conn), keys(&doc["connections"][0]));
    let tw = lines
        .iter()
        .filter(|l| l["type"] == "connection" && l["state"] == "TIME_WAIT")
        .count();
    assert_eq!(tw, N);
}
