//! `lingertop record`, `snapshot --from` and the recording's guarantees, on the real kernel:
//! generator processes in a namespace the test makes close known numbers of connections
//! gracefully, by linger-0 and unread-data resets, and leak CLOSE_WAIT while `record`
//! runs; SQL over the file (the documented views) gives those numbers per process. A
//! `kill -9` leaves a file that passes `integrity_check` with its polls up to the kill;
//! `--max-size` drops the oldest pieces with a reader held open; a second recorder, a
//! symlinked path and a newer schema are refused; the file is 0600.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::Value;

use crate::common::live::{signal, wait_exit};
use crate::common::netns::{Netns, privileged, wait_until};
use crate::common::resets::{CLIENT, HOLD_CLIENT, LEAK_SERVER, SERVER, first_line, python, wait};
use crate::common::{lingertop, parse};

/// Accepts N connections and reads each to its end, then closes: the peer closed first, so
/// each close here is graceful-passive (and the client's graceful-active).
const GRACEFUL_SERVER: &str = r#"
import socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
print(l.getsockname()[1], flush=True)
l.settimeout(20)
for _ in range(int(sys.argv[1])):
    s, _ = l.accept(); s.settimeout(20)
    while s.recv(64):
        pass
    s.close()
print("done", flush=True)
"#;

/// Connects N times, sends a byte and closes first.
const GRACEFUL_CLIENT: &str = r#"
import socket, sys
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    c.sendall(b"x"); c.close()
print("done", flush=True)
"#;

/// Accepts N connections and closes each as soon as data waits unread: a reset sent for
/// unread data.
const UNREAD_SERVER: &str = r#"
import select, socket, sys
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(64)
print(l.getsockname()[1], flush=True)
l.settimeout(20)
for _ in range(int(sys.argv[1])):
    s, _ = l.accept()
    select.select([s], [], [], 20)
    s.close()
print("done", flush=True)
"#;

/// Connects N times, sends data and waits for the peer's reset.
const UNREAD_CLIENT: &str = r#"
import socket, sys
for _ in range(int(sys.argv[1])):
    c = socket.create_connection(("127.0.0.1", int(sys.argv[2])), timeout=20)
    c.sendall(b"unread")
    try:
        while c.recv(64):
            pass
    except ConnectionResetError:
        pass
    c.close()
print("done", flush=True)
"#;

fn temp_path(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lingertop-record-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir.join("rec.db")
}

/// `lingertop [--netns NS] record PATH --interval I ARGS`, its stderr kept.
fn start_record(ns: Option<&Netns>, path: &Path, interval: &str, args: &[&str]) -> Child {
    let mut cmd = lingertop();
    if let Some(ns) = ns {
        cmd.args(["--netns", &ns.name]);
    }
    cmd.arg("record")
        .arg(path)
        .args(["--interval", interval, "--quiet"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn lingertop record")
}

fn reader(path: &Path) -> Connection {
    Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open the recording")
}

fn count(db: &Connection, sql: &str) -> i64 {
    db.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Waits until `sql` over the recording gives at least `n`.
fn wait_rows(path: &Path, sql: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .ok()
            .and_then(|db| db.query_row(sql, [], |r| r.get::<_, i64>(0)).ok())
            .unwrap_or(0);
        if got >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{sql} gave {got}, never {n}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stop(mut rec: Child) -> String {
    signal(&rec, libc::SIGINT);
    let st = wait_exit(&mut rec, Duration::from_secs(20));
    let mut err = String::new();
    if let Some(mut e) = rec.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut err);
    }
    assert!(st.success(), "record ended with {st}: {err}");
    err
}

#[test]
fn sql_over_the_recording_gives_every_process_its_closes_by_kind_and_reason_and_its_close_wait() {
    if !privileged("record: closes per process") {
        return;
    }
    let _heavy = crate::common::heavy();
    let mut ns = Netns::new("rec").expect("a namespace");
    let path = temp_path("closes");
    let rec = start_record(Some(&ns), &path, "300ms", &["--events", "on"]);
    wait_rows(&path, "SELECT count(*) FROM poll", 2);

    let (graceful, linger0, unread, leak) = (7u32, 5u32, 4u32, 3u32);
    let run_pair = |server: &str, client: &str, n: u32| {
        let mut s = python(&ns, server, &[n.to_string()]);
        let port = first_line(&mut s);
        let c = python(&ns, client, &[n.to_string(), port]);
        (s.id(), c.id(), s, c)
    };
    let (g_srv, g_cli, s, c) = run_pair(GRACEFUL_SERVER, GRACEFUL_CLIENT, graceful);
    wait(c);
    wait(s);
    let (l_srv, l_cli, s, c) = run_pair(SERVER, CLIENT, linger0);
    wait(c);
    wait(s);
    let (u_srv, u_cli, s, c) = run_pair(UNREAD_SERVER, UNREAD_CLIENT, unread);
    wait(c);
    wait(s);
    // The leak: the clients close, the server never does.
    let mut leaker = python(&ns, LEAK_SERVER, &[leak.to_string()]);
    let port = first_line(&mut leaker);
    let mut holder = ns
        .command("python3")
        .args(["-c", HOLD_CLIENT, &leak.to_string(), &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    assert_eq!(first_line(&mut holder), "open");
    assert_eq!(first_line(&mut leaker), "held");
    use std::io::Write;
    holder.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    wait(holder);
    let leaker_pid = leaker.id();
    wait_rows(
        &path,
        &format!(
            "SELECT count(DISTINCT conn) FROM stints WHERE state = 'CLOSE_WAIT' AND pid = {leaker_pid}"
        ),
        i64::from(leak),
    );
    // The closes of the last generator reach the file with the next poll.
    wait_rows(
        &path,
        &format!("SELECT count(*) FROM closes WHERE pid = {u_srv} AND reason = 'unread-data'"),
        i64::from(unread),
    );
    wait_rows(
        &path,
        "SELECT count(*) FROM poll",
        count(&reader(&path), "SELECT count(*) FROM poll") + 2,
    );
    stop(rec);
    let _ = leaker.kill();
    let _ = leaker.wait();

    let db = reader(&path);
    let closes = |pid: u32, kind: &str, reason: Option<&str>| {
        let r = reason.map_or("reason IS NULL".to_string(), |r| format!("reason = '{r}'"));
        count(
            &db,
            &format!("SELECT count(*) FROM closes WHERE pid = {pid} AND kind = '{kind}' AND {r}"),
        )
    };
    let n = i64::from;
    assert_eq!(
        closes(g_cli, "graceful-active", None),
        n(graceful),
        "graceful client"
    );
    assert_eq!(
        closes(g_srv, "graceful-passive", None),
        n(graceful),
        "graceful server"
    );
    assert_eq!(
        closes(l_cli, "reset-sent", Some("linger-0")),
        n(linger0),
        "linger-0 client"
    );
    assert_eq!(
        closes(l_srv, "reset-received", None),
        n(linger0),
        "the linger-0 client's server"
    );
    assert_eq!(
        closes(u_srv, "reset-sent", Some("unread-data")),
        n(unread),
        "unread-data server"
    );
    assert_eq!(
        closes(u_cli, "reset-received", None),
        n(unread),
        "the unread-data server's client"
    );
    // The view a person asks "who reset the most" of gives the same numbers.
    let resets = |pid: u32, kind: &str| {
        count(
            &db,
            &format!(
                "SELECT coalesce(sum(resets), 0) FROM resets_by_process WHERE pid = {pid} AND kind = '{kind}'"
            ),
        )
    };
    assert_eq!(resets(l_cli, "reset-sent"), n(linger0));
    assert_eq!(resets(u_srv, "reset-sent"), n(unread));
    assert_eq!(resets(g_cli, "reset-sent") + resets(g_srv, "reset-sent"), 0);
    // The leak: exactly its connections in CLOSE_WAIT, each to the port the holder used.
    let leaked = count(
        &db,
        &format!(
            "SELECT count(DISTINCT conn) FROM stints WHERE state = 'CLOSE_WAIT' AND pid = {leaker_pid}"
        ),
    );
    assert_eq!(leaked, n(leak));
    let peers = count(
        &db,
        &format!(
            "SELECT count(DISTINCT remote_ip || ':' || remote_port) FROM stints WHERE state = 'CLOSE_WAIT' AND pid = {leaker_pid}"
        ),
    );
    assert_eq!(peers, n(leak), "each leaked connection's peer");
    let max_cw = count(&db, "SELECT max(close_wait) FROM poll");
    assert_eq!(max_cw, n(leak), "the keyframes' CLOSE_WAIT count");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    ns.delete();
}

/// One row of a snapshot JSON: state, local, remote, pid, process.
type Row = (String, String, String, Option<u64>, Option<String>);

/// The rows a snapshot JSON lists.
fn rows(json: &Value) -> BTreeSet<Row> {
    json["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .map(|c| {
            (
                c["state"].as_str().unwrap().to_string(),
                c["local"].as_str().unwrap().to_string(),
                c["remote"].as_str().unwrap().to_string(),
                c["pid"].as_u64(),
                c["process"].as_str().map(str::to_string),
            )
        })
        .collect()
}

#[test]
fn snapshot_from_between_two_polls_is_the_live_snapshot_of_the_poll_before() {
    if !privileged("record: snapshot --from") {
        return;
    }
    let _heavy = crate::common::heavy();
    let mut ns = Netns::new("from").expect("a namespace");
    let path = temp_path("from");
    // Connections that stay as they are while both look: a listener with three ESTABLISHED
    // pairs and two CLOSE_WAIT, each end held by a python child.
    let mut leaker = python(&ns, LEAK_SERVER, &["5".into()]);
    let port = first_line(&mut leaker);
    let mut keep = ns
        .command("python3")
        .args(["-c", HOLD_CLIENT, "3", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut gone = ns
        .command("python3")
        .args(["-c", HOLD_CLIENT, "2", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    assert_eq!(first_line(&mut keep), "open");
    assert_eq!(first_line(&mut gone), "open");
    assert_eq!(first_line(&mut leaker), "held");
    use std::io::Write;
    gone.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    wait(gone);
    wait_until("two CLOSE_WAIT", || ns.ss("state close-wait").len() == 2);

    let rec = start_record(Some(&ns), &path, "1s", &["--events", "off"]);
    // Owners the /proc scan deferred are named within a few polls.
    wait_rows(&path, "SELECT count(*) FROM poll", 4);
    let live = lingertop()
        .args(["--netns", &ns.name, "snapshot", "--format", "json"])
        .output()
        .expect("live snapshot");
    let live = parse(&live);
    wait_rows(&path, "SELECT count(*) FROM poll", 6);
    stop(rec);

    let db = reader(&path);
    let (a, b): (i64, i64) = db
        .query_row(
            "SELECT at_ns, (SELECT at_ns FROM poll p2 WHERE p2.id = p.id + 1) FROM poll p WHERE id = 5",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("polls 5 and 6");
    let between = a + (b - a) / 2;
    let at = humantime::format_rfc3339_nanos(
        std::time::UNIX_EPOCH + Duration::from_nanos(between as u64),
    )
    .to_string();
    let from = |format: &str| {
        lingertop()
            .args(["snapshot", "--format", format, "--from"])
            .arg(&path)
            .args(["--at", &at])
            .output()
            .expect("snapshot --from")
    };
    let out = from("json");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let replayed = parse(&out);
    let want =
        humantime::format_rfc3339_millis(std::time::UNIX_EPOCH + Duration::from_nanos(a as u64))
            .to_string();
    assert_eq!(
        replayed["taken_at"].as_str(),
        Some(want.as_str()),
        "the poll before --at"
    );
    assert_eq!(
        rows(&replayed),
        rows(&live),
        "same connections, states and owners"
    );
    assert_eq!(replayed["counts"], live["counts"]);
    assert!(
        replayed["connections"][0]["timer"].is_null(),
        "not recorded: null"
    );
    // Every format reads the same poll.
    let csv = from("csv");
    assert!(csv.status.success());
    assert_eq!(
        String::from_utf8_lossy(&csv.stdout).lines().count() - 1,
        rows(&live).len(),
        "one CSV row per connection"
    );
    for format in ["table", "ndjson"] {
        assert!(from(format).status.success(), "{format}");
    }
    let _ = keep.kill();
    let _ = leaker.kill();
    let _ = keep.wait();
    let _ = leaker.wait();
    ns.delete();
}

#[test]
fn a_kill_9_leaves_a_file_that_passes_integrity_check_with_every_poll_up_to_the_kill() {
    let path = temp_path("kill9");
    let mut rec = start_record(None, &path, "200ms", &["--events", "off"]);
    wait_rows(&path, "SELECT count(*) FROM poll", 8);
    let killed_at = std::time::SystemTime::now();
    signal(&rec, libc::SIGKILL);
    let _ = rec.wait();
    let db = reader(&path);
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("integrity_check");
    assert_eq!(check, "ok");
    let last: i64 = count(&db, "SELECT max(at_ns) FROM poll");
    let killed = killed_at
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    // At most the interval in progress (and the poll being taken) is lost.
    assert!(
        killed - last < 3 * 200_000_000 + 500_000_000,
        "the last poll kept is {} ms before the kill",
        (killed - last) / 1_000_000
    );
    let polls = count(&db, "SELECT count(*) FROM poll");
    let ids = count(&db, "SELECT max(id) - min(id) + 1 FROM poll");
    assert_eq!(polls, ids, "no poll missing before the last");
    // The next recorder carries on after a gap.
    let rec = start_record(None, &path, "200ms", &["--events", "off"]);
    wait_rows(&path, "SELECT count(*) FROM gap WHERE kind = 'stopped'", 1);
    stop(rec);
}

#[test]
fn a_second_recorder_a_symlink_another_database_and_a_newer_schema_are_refused_and_the_file_is_0600()
 {
    let path = temp_path("refuse");
    let rec = start_record(None, &path, "200ms", &["--events", "off"]);
    wait_rows(&path, "SELECT count(*) FROM poll", 1);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the recording's mode");
    let mut wal = path.clone().into_os_string();
    wal.push("-wal");
    if let Ok(m) = std::fs::metadata(&wal) {
        assert_eq!(m.permissions().mode() & 0o777, 0o600, "the -wal follows");
    }
    let refused = |p: &Path| {
        let out = lingertop()
            .args(["record", "--events", "off"])
            .arg(p)
            .output()
            .expect("run lingertop");
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).to_string()
    };
    let err = refused(&path);
    assert!(err.contains("being recorded by another lingertop"), "{err}");
    // Readers are not locked out: SQLite's exclusive locking is not used.
    assert!(count(&reader(&path), "SELECT count(*) FROM poll") >= 1);
    stop(rec);

    let link = path.with_file_name("link.db");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    let err = refused(&link);
    assert!(err.contains("is a symbolic link"), "{err}");

    let other = path.with_file_name("other.db");
    Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t(a)")
        .unwrap();
    let err = refused(&other);
    assert!(err.contains("not a lingertop recording"), "{err}");

    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = refused(&path);
    assert!(
        err.contains("written by a newer lingertop (schema 99"),
        "{err}"
    );
    let out = lingertop()
        .args(["snapshot", "--at", "2030-01-01T00:00:00Z", "--from"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("newer lingertop"));
}

/// Opens connections in a loop, each reset at once (SO_LINGER {1, 0}: two closes each and
/// no TIME_WAIT, so the table stays small while the closes fill the file).
const CHURN: &str = r#"
import socket, struct, sys, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(512)
port = l.getsockname()[1]
end = time.time() + float(sys.argv[1])
while time.time() < end:
    for _ in range(50):
        c = socket.create_connection(("127.0.0.1", port)); s, _ = l.accept()
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close(); s.close()
    time.sleep(0.02)
print("done", flush=True)
"#;

#[test]
fn max_size_drops_the_oldest_pieces_never_the_newest_with_a_reader_held_open() {
    if !privileged("record: --max-size") {
        return;
    }
    let _heavy = crate::common::heavy();
    let mut ns = Netns::new("size").expect("a namespace");
    let path = temp_path("size");
    let max: u64 = 1 << 20;
    let rec = start_record(
        Some(&ns),
        &path,
        "200ms",
        &["--events", "on", "--max-size", "1MiB"],
    );
    wait_rows(&path, "SELECT count(*) FROM poll", 1);
    // A reader left open the whole time, as a person with sqlite3 would.
    let held = reader(&path);
    assert!(count(&held, "SELECT count(*) FROM poll") >= 1);
    let churn = python(&ns, CHURN, &["25".into()]);
    let size = || {
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        len(&path) + len(Path::new(&wal))
    };
    // Sampled the whole time the churn runs (25 s): the bound is held after each poll.
    let mut peak = 0;
    let mut churn = churn;
    while churn.try_wait().expect("the churn").is_none() {
        peak = peak.max(size());
        std::thread::sleep(Duration::from_millis(100));
    }
    let newest_before = count(&held, "SELECT max(id) FROM poll");
    stop(rec);
    let db = reader(&path);
    assert!(
        count(&db, "SELECT min(id) FROM poll") > 1,
        "the oldest piece was dropped"
    );
    assert!(
        count(&db, "SELECT max(id) FROM poll") >= newest_before,
        "the newest kept"
    );
    assert!(
        count(&db, "SELECT count(*) FROM close") > 0,
        "closes of the kept pieces"
    );
    let end = size();
    let wal_len = {
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        std::fs::metadata(Path::new(&wal)).map_or(0, |m| m.len())
    };
    eprintln!(
        "pieces {} polls {} wal {wal_len}",
        count(&db, "SELECT count(*) FROM piece"),
        count(&db, "SELECT count(*) FROM poll")
    );
    eprintln!("--max-size 1MiB: {end} bytes at the end, {peak} at most while recording");
    assert!(end <= max, "{end} bytes is over --max-size {max}");
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(held);
    ns.delete();
}
