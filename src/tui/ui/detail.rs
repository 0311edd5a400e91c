//! The detail pane: everything known about the selected row.

use std::time::SystemTime;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use crate::model::Connection;
use crate::model::{AgeSource, Attribution, TcpState};
use crate::report::fmt_age;
use crate::tui::app::App;
use crate::tui::cells::{ago, process_text, timer_text};
use crate::tui::rows::{NetnsRow, ProcRow, RemoteRow, Row};
use crate::tui::theme::Theme;

/// Draws the detail of the selected row.
pub(super) fn render_detail(f: &mut Frame, app: &App, theme: &Theme, area: Rect) {
    let block = Block::default()
        .borders(Borders::TOP | Borders::LEFT)
        .title(Span::styled(" Detail (d hides) ", theme.title));
    let inner = block.inner(area);
    f.render_widget(block, area);
    let now = app
        .shown
        .as_ref()
        .map_or(SystemTime::UNIX_EPOCH, |u| u.snapshot.taken_at);
    let lines = match app.selected_row() {
        None => vec![Line::from(Span::styled("nothing selected", theme.muted))],
        Some(row @ (Row::Conn(_) | Row::Ghost(_))) => app.conn(row).map_or_else(Vec::new, |c| {
            let mut lines = conn_lines(c, matches!(row, Row::Ghost(_)), now, theme);
            // Under the owner line (the fourth): what the owner runs.
            let at = lines.len().min(4);
            lines.splice(at..at, command_lines(app, c, theme));
            if let Some(place) = netns_place(app, c) {
                // Under the two ends: the same ends can be another connection elsewhere.
                let label = Span::styled(format!("{:<8}", "netns"), theme.label);
                lines.insert(3, Line::from(vec![label, Span::raw(place)]));
            }
            if let Some(name) = app.names.get(c.remote().ip()) {
                // Under the remote address it names.
                let label = Span::styled(format!("{:<8}", "name"), theme.label);
                let name = crate::sanitize::terminal(name).into_owned();
                lines.insert(3, Line::from(vec![label, Span::raw(name)]));
            }
            if let Some(allows) = app.close_allows(c).filter(|_| matches!(row, Row::Conn(_))) {
                // Under the state: what the close keys would do here.
                let label = Span::styled(format!("{:<8}", "close"), theme.label);
                lines.insert(1, Line::from(vec![label, Span::raw(allows)]));
            }
            lines
        }),
        Some(Row::Group(state, n)) => group_lines(state, n, theme),
        Some(Row::Process(i)) => process_lines(&app.procs[i], theme),
        Some(Row::Remote(i)) => remote_lines(app, &app.remotes[i], theme),
        Some(Row::Netns(i)) => netns_lines(&app.netns_rows[i], theme),
    };
    f.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The owner's command line and executable, neutralised for the terminal: a process names
/// itself, and its arguments are whatever it was started with.
fn command_lines(app: &App, c: &Connection, theme: &Theme) -> Vec<Line<'static>> {
    let (Some(command_of), Some(owner)) = (app.command_of, c.owner()) else {
        return Vec::new();
    };
    let Some(cmd) = command_of(owner.pid) else {
        return Vec::new();
    };
    let label = |s: &str| Span::styled(format!("{s:<8}"), theme.label);
    let mut lines = Vec::new();
    if !cmd.line.is_empty() {
        lines.push(Line::from(vec![
            label("cmd"),
            Span::raw(crate::sanitize::terminal(&cmd.line).into_owned()),
        ]));
    }
    if let Some(exe) = &cmd.exe {
        lines.push(Line::from(vec![
            label("exe"),
            Span::raw(crate::sanitize::terminal(exe).into_owned()),
        ]));
    }
    lines
}

/// The namespace of `c` for a person ("blue (netns, pid 812)"), when the poll read more
/// than one.
fn netns_place(app: &App, c: &Connection) -> Option<String> {
    let table = &app.shown.as_ref()?.snapshot.netns;
    let n = table.get(c.netns()).filter(|_| table.several())?;
    Some(match n.pid {
        Some(pid) => format!("{} ({}, pid {pid})", n.name, n.kind.key()),
        None => format!("{} ({})", n.name, n.kind.key()),
    })
}

/// A network namespace: what it is, its connections per state, its oldest CLOSE_WAIT and
/// growth, and what Enter does.
fn netns_lines(r: &NetnsRow, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let pid = r.pid.map_or(String::new(), |p| format!(", pid {p}"));
    lines.push(Line::from(Span::styled(
        format!("{} ({}{pid})", r.name, r.kind),
        theme.title,
    )));
    for (s, n) in r.counts.iter().filter(|(_, n)| *n > 0) {
        lines.push(Line::from(format!("  {:<12}{n:>7}", s.name())));
    }
    if r.oldest_close_wait.is_some() {
        let age = fmt_age(r.oldest_close_wait);
        lines.push(Line::from(format!("oldest CLOSE_WAIT {age}")));
    }
    if let Some(g) = r.close_wait_per_min {
        lines.push(Line::from(format!("CLOSE_WAIT growth {g:+.1}/min")));
    }
    lines.push(Line::from(Span::styled(
        "Enter shows its connections (filter netns:NAME).",
        theme.muted,
    )));
    lines
}

/// A connection: its ends, owner, user, history, timer and queues, and what its state means.
fn conn_lines(
    c: &Connection,
    vanished: bool,
    now: SystemTime,
    theme: &Theme,
) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let label = |s: &str| Span::styled(format!("{s:<8}"), theme.label);
    lines.push(Line::from(vec![
        Span::styled(c.state.name(), theme.title),
        Span::raw(if vanished {
            "  (vanished at the last poll)"
        } else {
            ""
        }),
    ]));
    lines.push(Line::from(vec![
        label("local"),
        Span::raw(c.local().to_string()),
    ]));
    lines.push(Line::from(vec![
        label("remote"),
        Span::raw(c.remote().to_string()),
    ]));
    let owner = match (c.owner(), c.attribution) {
        (Some(_), Some(Attribution::Owner)) => {
            format!("{} (holds the socket now)", process_text(c))
        }
        (Some(_), Some(Attribution::LastOwner)) => {
            format!("{} (held it at an earlier poll)", process_text(c))
        }
        (Some(_), Some(Attribution::Listener)) => {
            format!("{} (listens on this port)", process_text(c))
        }
        (Some(_), Some(Attribution::Event)) => {
            format!(
                "{} (seen acting on it by the kernel's events)",
                process_text(c)
            )
        }
        (None, Some(Attribution::Pending)) => {
            "not looked up yet (the /proc scan is rate-limited; a later poll names it)".to_string()
        }
        _ => "none visible".to_string(),
    };
    lines.push(Line::from(vec![label("owner"), Span::raw(owner)]));
    let user = match (c.user_name(), c.uid()) {
        (Some(name), Some(id)) => format!("{name} (uid {id})"),
        (None, Some(id)) => format!("uid {id}"),
        _ => "-".to_string(),
    };
    lines.push(Line::from(vec![
        label("user"),
        Span::raw(format!("{user}  inode {}", c.inode)),
    ]));
    if let Some(t) = &c.tracking {
        let seen = if t.first_seen() >= now {
            "at this poll".to_string()
        } else {
            format!("first {} ago", ago(now, t.first_seen()))
        };
        lines.push(Line::from(vec![label("seen"), Span::raw(seen)]));
        lines.push(Line::from(Span::styled("history", theme.label)));
        for (s, at) in t.previous() {
            lines.push(Line::from(format!("  -{:>7}  {}", ago(now, at), s.name())));
        }
        // The age and how it is known (the guide's docs/ages.md).
        let for_how_long = match (c.state_age(now), c.age_source(now)) {
            (Some(a), Some(from)) if !a.is_zero() => {
                let how = match from {
                    AgeSource::Kernel => "by the kernel's clocks",
                    AgeSource::Observed => "seen to begin",
                    AgeSource::FirstSight => "since first seen",
                };
                let at_least = if from.at_least() { "≥ " } else { "" };
                format!(", {at_least}{} {how}", fmt_age(Some(a)))
            }
            _ => String::new(),
        };
        lines.push(Line::from(format!(
            "  -{:>7}  {} (now{for_how_long})",
            ago(now, t.state_since()),
            c.state.name(),
        )));
    }
    let timer = match (c.timer, c.recv_q()) {
        (Some(_), _) => Span::raw(timer_text(c)),
        (None, Some(_)) => Span::raw("none running"),
        (None, None) => Span::styled("not provided by this backend", theme.muted),
    };
    lines.push(Line::from(vec![label("timer"), timer]));
    if let (Some(r), Some(s)) = (c.recv_q(), c.send_q()) {
        let what = if c.state == TcpState::Listen {
            format!("{r} waiting for accept(), backlog {s}")
        } else {
            let recv = c
                .receive_queue()
                .map_or_else(|| format!("{r} B unread"), |q| q.describe());
            format!("recv-q {recv}, send-q {s} B unacked")
        };
        lines.push(Line::from(vec![label("queues"), Span::raw(what)]));
    }
    lines.push(Line::from(Span::styled(c.state.meaning(), theme.muted)));
    lines
}
/// A state group header: its count and what the state means.
fn group_lines(state: TcpState, n: u32, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    lines.push(Line::from(Span::styled(
        format!("{} · {n} connections", state.name()),
        theme.title,
    )));
    lines.push(Line::from("Enter folds or unfolds the group."));
    lines.push(Line::from(Span::styled(state.meaning(), theme.muted)));
    lines
}
/// A process: its connections per state and its CLOSE_WAIT growth.
fn process_lines(p: &ProcRow, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    lines.push(Line::from(Span::styled(
        format!(
            "{} {}",
            p.name,
            p.pid.map_or(String::new(), |x| format!("(pid {x})"))
        ),
        theme.title,
    )));
    for (s, n) in p.counts.iter().filter(|(_, n)| *n > 0) {
        lines.push(Line::from(format!("  {:<12}{n:>7}", s.name())));
    }
    if let Some(g) = p.close_wait_per_min {
        lines.push(Line::from(format!("CLOSE_WAIT growth {g:+.1}/min")));
    }
    if p.counts.get(TcpState::CloseWait) > 0 {
        lines.push(Line::from(Span::styled(
            TcpState::CloseWait.meaning(),
            theme.muted,
        )));
    }
    lines
}
/// A remote endpoint: its TIME_WAIT, connections and port pressure.
fn remote_lines(app: &App, r: &RemoteRow, theme: &Theme) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    lines.push(Line::from(Span::styled(r.remote.to_string(), theme.title)));
    if let Some(name) = app.names.get(r.remote.ip()) {
        lines.push(Line::from(crate::sanitize::terminal(name).into_owned()));
    }
    lines.push(Line::from(format!("TIME_WAIT   {:>7}", r.time_wait)));
    lines.push(Line::from(format!("connections {:>7}", r.total)));
    if let (Some(from), Some(u)) = (r.from, &app.shown) {
        lines.push(Line::from(format!(
            "{} of {} ephemeral ports ({:.1}%) used from {from}",
            r.ports_used,
            u.snapshot.ephemeral_ports.len(),
            r.pressure * 100.0
        )));
    }
    lines.push(Line::from(Span::styled(
        "Each connection to one destination needs its own local port; TIME_WAIT holds it for 60 s.",
        theme.muted,
    )));
    lines
}
