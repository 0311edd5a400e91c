//! `lingertop replay` in a real terminal (tmux), over a recording the test makes (root; in a
//! network namespace it creates): a CLOSE_WAIT leak starts part-way through the recording
//! and its alert fires a poll or more later. The time cursor moves poll by poll and to a
//! typed time; the header's instant, poll number and connection count follow the recording,
//! and the leak's alert is on screen at the instant it fired, not before.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant, UNIX_EPOCH};

use rusqlite::{Connection, OpenFlags};

use crate::common::lingertop;
use crate::common::live::{signal, wait_exit};
use crate::common::netns::{Netns, privileged};
use crate::common::resets::{HOLD_CLIENT, LEAK_SERVER, first_line, python, wait};
use crate::common::tmux::Tmux;

fn query<T: rusqlite::types::FromSql>(db: &Connection, sql: &str) -> T {
    db.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn wait_for_rows(path: &std::path::Path, sql: &str, n: i64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
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

fn rfc3339(ns: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_nanos(ns as u64)).to_string()
}

#[test]
fn the_time_cursor_moves_the_header_and_counts_follow_and_the_leaks_alert_is_there_when_it_fired() {
    if !privileged("replay in tmux") {
        return;
    }
    let mut ns = Netns::new("replay").expect("a namespace");
    let dir = std::env::temp_dir().join(format!("lingertop-replay-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("rec.db");
    let mut rec = lingertop()
        .args(["--netns", &ns.name, "--set", "alerts.close-wait.min-age=1s"])
        .arg("record")
        .arg(&path)
        .args(["--interval", "500ms", "--events", "off", "--quiet"])
        .stdin(Stdio::null())
        .spawn()
        .expect("lingertop record");
    wait_for_rows(&path, "SELECT count(*) FROM poll", 3);
    let mut leaker = python(&ns, LEAK_SERVER, &["4".into()]);
    let port = first_line(&mut leaker);
    let mut client = ns
        .command("python3")
        .args(["-c", HOLD_CLIENT, "4", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    assert_eq!(first_line(&mut client), "open");
    assert_eq!(first_line(&mut leaker), "held");
    client.stdin.as_mut().unwrap().write_all(b"\n").unwrap();
    wait(client);
    wait_for_rows(
        &path,
        "SELECT count(*) FROM alert WHERE rule = 'close-wait-lingering'",
        1,
    );
    let polls_now: i64 = query(
        &Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap(),
        "SELECT count(*) FROM poll",
    );
    wait_for_rows(&path, "SELECT count(*) FROM poll", polls_now + 2);
    signal(&rec, libc::SIGINT);
    assert!(wait_exit(&mut rec, Duration::from_secs(20)).success());
    let _ = leaker.kill();
    let _ = leaker.wait();

    let db = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    let total: i64 = query(&db, "SELECT count(*) FROM poll");
    let fired: i64 = query(
        &db,
        "SELECT fired_poll FROM alert WHERE rule = 'close-wait-lingering'",
    );
    let first_id: i64 = query(&db, "SELECT min(id) FROM poll");
    let at = |id: i64| {
        rfc3339(query(
            &db,
            &format!("SELECT at_ns FROM poll WHERE id = {id}"),
        ))
    };
    let conns = |id: i64| {
        query::<i64>(
            &db,
            &format!("SELECT connections FROM poll WHERE id = {id}"),
        )
    };
    assert!(
        fired - first_id >= 3,
        "the alert fired after the first polls"
    );
    // The leak's count at the poll it fired.
    let leaked = conns(fired);
    assert!(leaked > conns(first_id), "the leak adds connections");

    let t = Tmux::start("replay");
    t.start_dashboard_with("", &format!("replay {}", path.display()));
    t.wait_for(
        &format!("REPLAY {}  poll 1/{total}", at(first_id)),
        Duration::from_secs(10),
    );
    let s = t.screen();
    assert!(
        s.contains(&format!("{} connections", conns(first_id))),
        "{s}"
    );
    assert!(
        !s.contains("CLOSE_WAIT held"),
        "no alert before the leak:\n{s}"
    );
    t.keys(&["]"]);
    t.wait_for(
        &format!("REPLAY {}  poll 2/{total}", at(first_id + 1)),
        Duration::from_secs(5),
    );
    t.keys(&["["]);
    t.wait_for(
        &format!("REPLAY {}  poll 1/{total}", at(first_id)),
        Duration::from_secs(5),
    );
    // A typed time: the poll the alert fired at, and one before it.
    t.keys(&["t"]);
    // To the nanosecond: a time in milliseconds falls before the poll it names.
    let exact: i64 = query(
        &db,
        &format!("SELECT at_ns FROM poll WHERE id = {}", fired - 1),
    );
    t.literal(
        &humantime::format_rfc3339_nanos(UNIX_EPOCH + Duration::from_nanos(exact as u64))
            .to_string(),
    );
    t.wait_for("go to time:", Duration::from_secs(5));
    t.keys(&["Enter"]);
    let n = fired - first_id + 1;
    let s = t.wait_for(
        &format!("REPLAY {}  poll {}/{total}", at(fired - 1), n - 1),
        Duration::from_secs(5),
    );
    assert!(
        !s.contains("CLOSE_WAIT held"),
        "the alert is not there a poll before it fired:\n{s}"
    );
    t.keys(&["]"]);
    let s = t.wait_for(
        &format!("REPLAY {}  poll {n}/{total}", at(fired)),
        Duration::from_secs(5),
    );
    assert!(
        s.contains(&format!("{leaked} connections")),
        "the header's count:\n{s}"
    );
    t.wait_for("CLOSE_WAIT held", Duration::from_secs(5));
    // The lab is off in a replay.
    t.keys(&["L"]);
    t.wait_for("the lab is off in a replay", Duration::from_secs(5));
    t.keys(&["q"]);
    t.assert_normal_shell();
    ns.delete();
    let _ = std::fs::remove_dir_all(&dir);
}
