//! The dashboard's close keys on the real binary in tmux (root; in a network namespace the
//! test creates): a python3 child holds a CLOSE_WAIT (its peer closed, it never did).
//! Without `--allow-close`, `x` only says how to turn closing on; with it, `x` opens the
//! confirmation, `n` cancels (the socket still there, by `ss`), and `x` `y` closes it
//! gracefully: the footer gives the verified result, `ss` in the namespace no longer has
//! it, the process that held it is alive, and `watch --events` beside it sees the close
//! as lingertop's action, not the holder's own close.

#![cfg(target_os = "linux")]

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::live::{Watched, next_line};
use crate::common::netns::{Netns, privileged, wait_until};
use crate::common::resets::first_line;
use crate::common::tmux::Tmux;

/// Accepts one connection from itself and closes the client end: the accepted socket is a
/// CLOSE_WAIT this process holds and never closes. Prints the port, then waits.
const HOLDER: &str = r#"
import socket, time
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen(4)
port = l.getsockname()[1]
c = socket.create_connection(("127.0.0.1", port))
s, _ = l.accept()
c.close()
print(port, flush=True)
time.sleep(120)
"#;

#[test]
fn close_keys_say_how_to_enable_then_confirm_cancel_and_close_a_close_wait() {
    let test = "close_keys_say_how_to_enable_then_confirm_cancel_and_close_a_close_wait";
    if !privileged(test) {
        return;
    }
    let mut ns = Netns::new("closekeys").expect("a namespace");
    ns.sleeper();
    // Beside the dashboard from before the connection is made, so the kernel's events
    // follow its socket from the start.
    let watched = Watched::start(&[
        "--set",
        &format!("collector.netns={}", ns.name),
        "--events=on",
        "--interval",
        "500ms",
    ]);
    let said = next_line(
        &watched.stderr,
        Duration::from_secs(20),
        "watch's first poll",
    );
    assert!(said.contains("first poll saw"), "{said}");
    let mut holder = ns
        .command("python3")
        .args(["-c", HOLDER])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let port = first_line(&mut holder);
    let close_wait = || {
        ns.ss(&format!("state close-wait sport = :{port}"))
            .into_iter()
            .filter(|r| r.pids.contains(&holder.id()))
            .count()
    };
    wait_until("the CLOSE_WAIT is there", || close_wait() == 1);
    let row = format!("127.0.0.1:{port}");
    let args = format!(
        "--set collector.netns={} --interval 500ms --filter \"state:close-wait port:{port}\"",
        ns.name
    );

    // Off: the key says how to turn it on, nothing is asked, nothing closed.
    let tmux = Tmux::start("closekeys");
    tmux.start_dashboard_with("", &args);
    tmux.wait_for(&row, Duration::from_secs(20));
    tmux.wait_for("python3", Duration::from_secs(10));
    tmux.keys(&["x"]);
    let screen = tmux.wait_for("--allow-close", Duration::from_secs(5));
    assert!(!screen.contains("are you sure"), "{screen}");
    tmux.keys(&["q"]);
    tmux.wait_for("shell> ", Duration::from_secs(5));
    assert_eq!(close_wait(), 1, "closing is off, yet the CLOSE_WAIT went");

    // On: the confirmation, then n cancels.
    tmux.keys(&["clear", "Enter"]);
    tmux.start_dashboard_with("", &format!("--allow-close {args}"));
    tmux.wait_for(&row, Duration::from_secs(20));
    tmux.wait_for("python3", Duration::from_secs(10));
    tmux.keys(&["x"]);
    let screen = tmux.wait_for("are you sure", Duration::from_secs(5));
    for said in ["graceful close", "The peer sees", "python3["] {
        assert!(screen.contains(said), "no {said:?}:\n{screen}");
    }
    tmux.keys(&["n"]);
    tmux.wait_for("nothing closed", Duration::from_secs(5));
    assert_eq!(close_wait(), 1, "n cancelled, yet the CLOSE_WAIT went");

    // x y: closed, verified, gone from the namespace's table; its holder alive.
    tmux.keys(&["x"]);
    tmux.wait_for("are you sure", Duration::from_secs(5));
    tmux.keys(&["y"]);
    let screen = tmux.wait_for("): closed", Duration::from_secs(15));
    assert!(screen.contains("graceful close of"), "{screen}");
    wait_until("the CLOSE_WAIT is gone", || close_wait() == 0);
    assert!(
        holder.try_wait().expect("the holder's status").is_none(),
        "the process that held the connection must be alive"
    );
    // The kernel's events name lingertop as the actor: an action line for the holder's
    // connection, and no close of the holder's own.
    let (mut actions, mut own) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while actions == 0 && Instant::now() < deadline {
        let Ok(line) = watched.stdout.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        // The closed connection: the holder's end, on the listener's port (the holder's
        // own client end was closed by the holder itself, and is its own close).
        let closed = v["local"] == row.as_str() && v["remote"] != "0.0.0.0:0";
        if v["event"] == "action" && v["how"] == "graceful" && closed {
            actions += 1;
        }
        if v["event"] == "close" && closed {
            own += 1;
        }
    }
    assert_eq!(
        (actions, own),
        (1, 0),
        "one action of lingertop's, no close of the holder's own"
    );
    tmux.keys(&["q"]);
    tmux.wait_for("shell> ", Duration::from_secs(5));
    let _ = holder.kill();
    let _ = holder.wait();
    ns.delete();
}
