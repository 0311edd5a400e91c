//! The real binary in a real terminal (tmux): open the dashboard, filter to CLOSE_WAIT,
//! open help, switch views, quit; the pane must be back to a normal shell. Also: SIGTERM
//! and a panic restore the terminal too.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::tmux::Tmux;
use crate::common::*;
use lingertop::model::TcpState;

/// A tmux server of our own (its own socket), killed when dropped.
fn close_wait_socket() -> (std::net::TcpListener, std::net::TcpStream, SocketAddr) {
    let l = listener(V4);
    let (c, s) = pair(&l);
    let (client, server) = addr_of(&c);
    drop(c);
    wait_for_state(server, client, TcpState::CloseWait);
    (l, s, server)
}

#[test]
fn dashboard_filters_helps_switches_views_and_quits_cleanly() {
    let (_l, _s, server) = close_wait_socket();
    let port = server.port();
    let t = Tmux::start("flow");
    t.start_dashboard("");
    t.wait_for("LIVE", Duration::from_secs(10));
    assert!(t.alternate_screen_on());

    t.keys(&["/"]);
    t.wait_for("filter:", Duration::from_secs(5));
    t.literal(&format!("state:close-wait port:{port}"));
    t.keys(&["Enter"]);
    let s = t.wait_for_filtered(&format!("filter state:close-wait port:{port}"), server);
    let table = table_rows(&s);
    assert!(!table.is_empty(), "{s}");
    assert!(
        table.iter().all(|l| l.starts_with("CLOSE_WAIT")),
        "only CLOSE_WAIT rows after the filter:\n{s}"
    );

    t.keys(&["?"]);
    t.wait_for("TCP close states", Duration::from_secs(5));
    t.wait_for(
        "CLOSE_WAIT    (app never calls close(): a leak)",
        Duration::from_secs(5),
    );
    t.keys(&["Escape"]);
    t.wait_until("help closed", Duration::from_secs(5), |t| {
        !t.screen().contains("TCP close states")
    });

    t.keys(&["Tab"]);
    t.wait_for("By state", Duration::from_secs(5));
    t.wait_for("▼ CLOSE_WAIT", Duration::from_secs(5));
    t.keys(&["Tab"]);
    t.wait_for("By process", Duration::from_secs(5));
    t.keys(&["Tab"]);
    t.wait_for("By remote endpoint", Duration::from_secs(5));

    t.keys(&["q"]);
    t.assert_normal_shell();
}

/// Issue 15 item 2: `quit = "s"` takes `s` from `sort`; the config is refused, naming the
/// key and both actions, before any terminal is taken.
#[test]
fn a_key_bound_to_two_actions_is_a_config_error_naming_both() {
    let t = Tmux::start("conflict");
    let file = t.start_dashboard_with_config("conflict", "[keys]\nquit = \"s\"\n");
    let s = t.wait_for(":ex", Duration::from_secs(10));
    let _ = std::fs::remove_file(file);
    assert!(s.contains(":ex1"), "exit status 1 for a config error:\n{s}");
    // The message is one line; the pane wraps it at 120 columns.
    let joined = s.replace('\n', "");
    let error = joined
        .split_once("config error")
        .and_then(|(_, rest)| rest.split(":ex").next())
        .unwrap_or_else(|| panic!("no config error on screen:\n{s}"));
    for needle in ["keys.quit", "\"s\"", "sort", "quit"] {
        assert!(error.contains(needle), "{needle:?} missing in {error}");
    }
    assert!(!t.alternate_screen_on());
}

/// Issue 15 item 2: with quit bound elsewhere, ctrl-c still quits.
#[test]
fn ctrl_c_quits_whatever_the_bindings() {
    let t = Tmux::start("ctrlc");
    let file = t.start_dashboard_with_config("ctrlc", "[keys]\nquit = \"z\"\n");
    t.wait_for("LIVE", Duration::from_secs(10));
    t.keys(&["C-c"]);
    let s = t.wait_for(":ex", Duration::from_secs(10));
    let _ = std::fs::remove_file(file);
    assert!(s.contains(":ex0"), "ctrl-c quits with status 0:\n{s}");
    t.assert_normal_shell();
}

/// Issue 15 item 6: after the window grows and `q`, the shell shows nothing of the
/// dashboard (tmux used to bring back the alternate screen's top lines above the prompt).
#[test]
fn quitting_after_the_window_grew_leaves_no_fragment_of_the_dashboard() {
    let (_l, _s, _server) = close_wait_socket();
    let t = Tmux::start("grow");
    t.keys(&["clear", "Enter"]);
    t.start_dashboard("");
    t.wait_for("LIVE", Duration::from_secs(10));
    assert!(
        t.cmd(&["resize-window", "-t", "t", "-x", "160", "-y", "50"])
            .status()
            .unwrap()
            .success()
    );
    // A frame at the new size: its footer row is row 50.
    t.wait_until("a frame at 160x50", Duration::from_secs(10), |t| {
        let s = t.screen();
        s.lines().count() >= 50 && s.lines().nth(49).is_some_and(|l| !l.trim().is_empty())
    });
    // Opening and closing the filter prompt redraws the bottom row, so the last frame
    // leaves the cursor there, as any frame that changes the footer does.
    t.keys(&["/"]);
    t.wait_for("filter:", Duration::from_secs(5));
    t.keys(&["Escape"]);
    t.wait_until("filter prompt closed", Duration::from_secs(5), |t| {
        !t.screen().contains("filter:")
    });
    t.keys(&["q"]);
    t.wait_until("left the alternate screen", Duration::from_secs(5), |t| {
        !t.alternate_screen_on()
    });
    // Let tmux settle the restored screen before reading it.
    t.wait_for("shell> ", Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    let s = t.screen();
    for fragment in ["LIVE", "All connections", "CLOSE_WAIT", "│", "help"] {
        assert!(
            !s.contains(fragment),
            "the shell shows {fragment:?} of the dashboard:\n{s}"
        );
    }
    t.assert_normal_shell();
}

#[test]
fn sigterm_restores_the_terminal() {
    let t = Tmux::start("term");
    t.start_dashboard("");
    t.wait_for("LIVE", Duration::from_secs(10));
    let shell = t.shell_pid();
    let killed = Command::new("pkill")
        .args(["-TERM", "-P", &shell, "lingertop"])
        .status()
        .expect("pkill (procps)");
    assert!(killed.success(), "no lingertop child of the pane's shell");
    t.assert_normal_shell();
}

#[test]
fn a_panic_restores_the_terminal_and_prints_its_message() {
    let t = Tmux::start("panic");
    t.start_dashboard("RUST_BACKTRACE=0 LINGERTOP_TEST_PANIC=1");
    // The message is printed after the restore, so it lands on the normal screen.
    let s = t.wait_for("panicking on purpose", Duration::from_secs(10));
    assert!(s.contains("panicked"), "{s}");
    t.assert_normal_shell();
}

/// Issue 4's dashboard path: open the lab with `L`, create connections, abort one, read its
/// trace; after quitting, nothing of the lab is left in the socket table but TIME_WAIT.
#[test]
fn lab_panel_opens_aborts_traces_and_cleans_up_on_quit() {
    let t = Tmux::start("lab");
    t.start_dashboard("");
    t.wait_for("LIVE", Duration::from_secs(10));
    t.keys(&["L"]);
    let s = t.wait_for("listening 127.0.0.1:", Duration::from_secs(10));
    let listeners: Vec<SocketAddr> = s
        .lines()
        .find_map(|l| l.split("listening ").nth(1))
        .expect("listener line")
        .split_whitespace()
        .take_while(|w| w.parse::<SocketAddr>().is_ok())
        .map(|w| w.parse().unwrap())
        .collect();
    assert!(!listeners.is_empty(), "{s}");

    t.keys(&["c", "o"]);
    t.wait_for("opened 5 normal connections", Duration::from_secs(10));
    t.keys(&["a"]);
    let s = t.wait_for("abort on #5 client: done", Duration::from_secs(15));
    assert!(s.contains("peer read     econnreset"), "{s}");
    assert!(s.contains("TIME_WAIT     none"), "{s}");
    assert!(s.contains("mode abort: the client end closes"), "{s}");
    // The table shows the lab's sockets: the other four connections, both ends.
    t.wait_until(
        "the four other lab connections in the table",
        Duration::from_secs(30),
        |t| {
            let s = t.screen();
            let rows = s
                .lines()
                .filter(|l| l.starts_with("ESTABLISHED") && l.contains("lingertop ("));
            rows.count() == 8
        },
    );

    t.keys(&["q"]);
    t.assert_normal_shell();

    // The lab closed everything it held: only kernel TIME_WAIT may remain.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let snap = lingertop::collector::Collector::system().poll().unwrap();
        let left: Vec<String> = snap
            .connections
            .iter()
            .filter(|c| listeners.contains(&c.local()) || listeners.contains(&c.remote()))
            .filter(|c| c.state != TcpState::TimeWait)
            .map(|c| format!("{} {} -> {}", c.state, c.local(), c.remote()))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "lab sockets left after quit: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Closing the terminal under the dashboard (SIGHUP, then a dead tty) ends it promptly
/// instead of leaving it behind spinning.
/// Issue 15 item 10: seven alerts or more, the one naming a process (this test's CLOSE_WAIT)
/// below six TIME_WAIT piles; `a` opens the list, Down reaches it, the opened alert names
/// the process and the rule's threshold, Enter filters the table to its connection.
#[test]
fn the_alert_naming_a_process_is_reached_opened_and_filters_the_table() {
    let (_l, _s, server) = close_wait_socket();
    // Six remotes with 2 TIME_WAIT each: critical at 2, so above the CLOSE_WAIT warning.
    let listeners: Vec<std::net::TcpListener> = (0..6).map(|_| listener(V4)).collect();
    for l in &listeners {
        for _ in 0..2 {
            client_time_wait(l);
        }
    }
    let t = Tmux::start("alerts");
    let bin = env!("CARGO_BIN_EXE_lingertop");
    let file =
        std::env::temp_dir().join(format!("lingertop-tmux-alerts-{}.toml", std::process::id()));
    std::fs::write(
        &file,
        "[alerts.time-wait-per-remote]\nwarning = 1\ncritical = 2\n\n[alerts.close-wait]\nmin-age = \"1s\"\n",
    )
    .unwrap();
    t.literal(&format!(
        "{bin} --config {} --netns host --interval 500ms",
        file.display()
    ));
    t.keys(&["Enter"]);
    let me = my_comm();
    let pid = std::process::id();
    let count = |s: &str| -> usize {
        s.split_once("ALERTS (")
            .and_then(|(_, r)| r.split(')').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // The CLOSE_WAIT alert comes once its socket is a second old (min-age), maybe a poll
    // after the TIME_WAIT ones.
    t.wait_until("seven alerts or more", Duration::from_secs(15), |t| {
        count(&t.screen()) >= 7
    });
    let s = t.screen();
    // The box shows the worst five: not this process's CLOSE_WAIT.
    assert!(!s.contains(&format!("held by {me}")), "{s}");

    t.keys(&["a"]);
    t.wait_for("Enter: its connections", Duration::from_secs(5));
    let wanted = format!("› warning  1 CLOSE_WAIT held by {me} (pid {pid})");
    let at = |s: &str| -> usize {
        s.split_once(" Alerts ")
            .and_then(|(_, r)| r.split(" of ").next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no position:\n{s}"))
    };
    let total = |s: &str| -> usize {
        s.split_once(" Alerts ")
            .and_then(|(_, r)| r.split_once(" of "))
            .and_then(|(_, r)| r.split(',').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    // Other tests' sockets come and go beside this one's, so the list can reorder under the
    // selection: from the top, step down one at a time (each step seen on screen before the
    // next), and from the top again if the end came first.
    let mut downs = 0;
    let s = 'found: loop {
        t.keys(&["Home"]);
        t.wait_until("the first alert selected", Duration::from_secs(5), |t| {
            at(&t.screen()) == 1
        });
        loop {
            let s = t.screen();
            if s.contains(&wanted) {
                break 'found s;
            }
            assert!(downs < 300, "never reached {wanted:?}:\n{s}");
            let before = at(&s);
            if before >= total(&s) {
                break;
            }
            t.keys(&["Down"]);
            downs += 1;
            t.wait_until("the selection moved", Duration::from_secs(5), |t| {
                at(&t.screen()) != before
            });
        }
    };
    let position = at(&s);
    assert!(position >= 7, "below six others: {position}\n{s}");
    assert!(s.contains(&format!("who   {me} (pid {pid})")), "{s}");
    assert!(s.contains("warning at 1, critical at 100"), "{s}");

    t.keys(&["Enter"]);
    let s = t.wait_for_filtered(&format!("filter state:close-wait pid:{pid}"), server);
    let table = table_rows(&s);
    assert!(!table.is_empty(), "{s}");
    assert!(
        table
            .iter()
            .all(|l| l.starts_with("CLOSE_WAIT") && l.contains(&me)),
        "only this process's CLOSE_WAIT after Enter:\n{s}"
    );
    t.keys(&["q"]);
    t.assert_normal_shell();
    let _ = std::fs::remove_file(file);
}

/// Click-to-sort in a real terminal: the mouse (an SGR mouse report, as a terminal sends it
/// with mouse capture on) on a header sorts on it, worst first for a count, and a second
/// click reverses it; a name column sorts A to Z.
#[test]
fn clicking_a_header_sorts_on_it_and_a_second_click_reverses() {
    let (_l, _s, _server) = close_wait_socket();
    let t = Tmux::start("sortclick");
    t.start_dashboard("");
    t.wait_for("LIVE", Duration::from_secs(10));
    // Where `name` is on screen: 1-based column and row, as the mouse report counts.
    let find = |s: &str, name: &str| -> (usize, usize) {
        s.lines()
            .enumerate()
            .find_map(|(y, l)| {
                l.find(name)
                    .filter(|_| l.contains('▲') || l.contains('▼'))
                    .map(|x| (l[..x].chars().count() + 1, y + 1))
            })
            .unwrap_or_else(|| panic!("no header {name:?} on screen:\n{s}"))
    };
    let click = |(x, y): (usize, usize)| {
        t.literal(&format!("\x1b[<0;{x};{y}M\x1b[<0;{x};{y}m"));
    };
    t.keys(&["Tab", "Tab"]);
    let s = t.wait_for("By process", Duration::from_secs(5));
    click(find(&s, "TOTAL"));
    let s = t.wait_for("TOTAL ▼", Duration::from_secs(5));
    assert!(!s.contains("CLOSE_W ▼"), "the arrow moved to TOTAL:\n{s}");
    click(find(&s, "TOTAL"));
    t.wait_for("TOTAL ▲", Duration::from_secs(5));

    // Back to all connections: PROCESS sorts A to Z on its first click.
    t.keys(&["BTab", "BTab"]);
    let s = t.wait_for("All connections", Duration::from_secs(5));
    click(find(&s, "PROCESS"));
    t.wait_for("PROCESS ▲", Duration::from_secs(5));
    t.keys(&["q"]);
    t.assert_normal_shell();
}

#[test]
fn closing_the_terminal_ends_the_dashboard() {
    let t = Tmux::start("hangup");
    t.start_dashboard("");
    t.wait_for("LIVE", Duration::from_secs(10));
    let shell = t.shell_pid();
    let out = Command::new("pgrep")
        .args(["-P", &shell, "lingertop"])
        .output()
        .expect("pgrep (procps)");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!pid.is_empty(), "no lingertop under the pane's shell");
    assert!(t.cmd(&["kill-server"]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(10);
    // Gone, or a zombie waiting for its (also gone) parent.
    while std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
    {
        assert!(
            Instant::now() < deadline,
            "lingertop {pid} still runs after its terminal closed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The table rows on screen (between the table's header and the footer or detail pane).
fn table_rows(s: &str) -> Vec<&str> {
    s.lines()
        .skip_while(|l| !l.contains("All connections"))
        .skip(2)
        .take_while(|l| !l.starts_with(' ') && !l.starts_with("filter:") && !l.contains("? help"))
        .filter(|l| !l.trim().is_empty())
        .collect()
}

/// Issue 15, the live filter: typed one character at a time the table narrows before
/// Enter; a misspelt state shows the suggestion; Tab completes; Up recalls what Enter kept.
#[test]
fn the_live_filter_narrows_as_typed_suggests_completes_and_recalls() {
    let (_l, _s, server) = close_wait_socket();
    let port = server.port();
    let t = Tmux::start("live");
    // The state directory exists and is ours, so the history is written there (one
    // inside another user's directory, /tmp's for a test not run as root, is not).
    let cfg = t.home();
    std::fs::create_dir_all(&cfg).unwrap();
    t.start_dashboard("");
    t.wait_for("LIVE", Duration::from_secs(10));

    t.keys(&["/"]);
    t.wait_for("filter:", Duration::from_secs(5));
    // One key at a time, as a person types, and no Enter.
    for c in format!("port:{port}").chars() {
        t.literal(&c.to_string());
    }
    t.wait_until(
        "the table narrowed to the port",
        Duration::from_secs(5),
        |t| {
            let s = t.screen();
            let rows = table_rows(&s);
            s.contains(&format!("filter: port:{port}"))
                && !rows.is_empty()
                && rows.iter().all(|r| r.contains(&format!(":{port}")))
                && s.contains(&server.to_string())
        },
    );
    assert!(t.screen().contains("filter: "), "the prompt is still open");

    t.literal(" state:close-wiat");
    t.wait_until("the suggestion", Duration::from_secs(5), |t| {
        let s = t.screen();
        s.contains("state:close-wiat█") && s.contains("did you mean close-wait?")
    });
    let s = t.screen();
    let lines: Vec<&str> = s.lines().collect();
    let caret = lines
        .iter()
        .position(|l| l.contains("^ did you mean"))
        .unwrap();
    assert_eq!(
        lines[caret].find('^'),
        lines[caret - 1].find("close-wiat"),
        "the caret under the misspelt value:\n{s}"
    );

    // Ctrl-W drops the misspelt word; Tab finishes the key, then the state.
    t.keys(&["C-w"]);
    t.literal("st");
    t.keys(&["Tab"]);
    t.wait_for(
        &format!("filter: port:{port} state:"),
        Duration::from_secs(5),
    );
    t.literal("close-w");
    t.keys(&["Tab"]);
    let want = format!("filter: port:{port} state:close-wait");
    t.wait_until("completed and applied", Duration::from_secs(5), |t| {
        let s = t.screen();
        let rows = table_rows(&s);
        s.contains(&want) && !rows.is_empty() && rows.iter().all(|r| r.starts_with("CLOSE_WAIT"))
    });
    t.keys(&["Enter"]);
    t.wait_for(
        &format!("filter port:{port} state:close-wait"),
        Duration::from_secs(5),
    );

    // Up recalls it into an emptied prompt. (Esc, then a pause: an ESC followed at once by
    // `/` reads as Alt-/.)
    t.keys(&["Escape"]);
    t.wait_until("the filter cleared", Duration::from_secs(5), |t| {
        !t.screen().contains("filter port:")
    });
    t.keys(&["/"]);
    t.wait_for("filter: ", Duration::from_secs(5));
    t.keys(&["C-u"]);
    t.wait_until("prompt emptied", Duration::from_secs(5), |t| {
        t.screen().lines().any(|l| l.starts_with("filter: █"))
    });
    t.keys(&["Up"]);
    t.wait_for(&want, Duration::from_secs(5));
    t.keys(&["Escape"]);
    t.wait_until("the prompt closed", Duration::from_secs(5), |t| {
        !t.screen().contains("filter: ")
    });
    t.keys(&["q"]);
    t.assert_normal_shell();
    let saved = std::fs::read_to_string(cfg.join("lingertop").join("filter-history"))
        .expect("the history is kept in $XDG_STATE_HOME/lingertop");
    assert!(
        saved
            .lines()
            .any(|l| l == format!("port:{port} state:close-wait")),
        "{saved}"
    );
}

/// Issue 15: `y` copies the selected row as OSC 52; tmux with `set-clipboard on` keeps it
/// as a paste buffer: the row, tab-separated, and the owner's command line.
#[test]
fn y_copies_the_selected_row_into_tmuxs_buffer() {
    let (_l, _s, server) = close_wait_socket();
    let t = Tmux::start("copy");
    assert!(
        t.cmd(&["set", "-g", "set-clipboard", "on"])
            .status()
            .unwrap()
            .success()
    );
    t.start_dashboard("");
    t.wait_for("LIVE", Duration::from_secs(10));
    t.keys(&["/"]);
    t.literal(&format!("state:close-wait port:{}", server.port()));
    t.keys(&["Enter"]);
    t.wait_for(&server.to_string(), Duration::from_secs(5));
    t.keys(&["y"]);
    t.wait_for("copied 1 row", Duration::from_secs(5));
    let buffer = || {
        let out = t.cmd(&["show-buffer"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    t.wait_until("tmux holds the row", Duration::from_secs(5), |_| {
        buffer().starts_with("CLOSE_WAIT\t")
    });
    let row = buffer();
    let fields: Vec<&str> = row.split('\t').collect();
    assert_eq!(fields[1], server.to_string(), "{row:?}");
    assert!(
        fields[3].ends_with(&format!("({})", std::process::id())),
        "the owner is this test: {row:?}"
    );
    // This test binary's own command line.
    let exe = std::env::current_exe().unwrap();
    let exe = exe.file_name().unwrap().to_string_lossy();
    assert!(
        fields.last().unwrap().contains(&*exe),
        "the command line last: {row:?}"
    );
    assert!(!row.contains('\n'), "one line: {row:?}");
    t.keys(&["q"]);
    t.assert_normal_shell();
}
