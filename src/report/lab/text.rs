//! One trace as text: the blocks `lingertop lab` prints (who closes how, the calls, the
//! states both ends went through, the verdict) and the dashboard's lab panel shows.

use std::io::{self, Write};
use std::time::Duration;

use super::fmt_ms;
use crate::lab::Trace;
use crate::lab::trace::final_name;
use crate::model::TcpState;

/// Writes one trace as aligned text: its blocks, blank lines between.
pub(super) fn trace_table(t: &Trace, out: &mut dyn Write) -> io::Result<()> {
    let text = trace_text(t);
    for block in [&text.head, &text.calls, &text.states] {
        for line in block {
            writeln!(out, "{line}")?;
        }
        writeln!(out)?;
    }
    for (_, line) in &text.verdict {
        writeln!(out, "{line}")?;
    }
    Ok(())
}

/// One trace's table text in its blocks, each line as the table prints it (calls and
/// states indented). The dashboard's lab panel shows the same blocks, verdict first.
#[derive(Clone, Debug, PartialEq)]
pub struct TraceText {
    /// The connection and the close mode.
    pub head: Vec<String>,
    /// `CALLS`, then one line per call.
    pub calls: Vec<String>,
    /// `STATES (how observed)`, then the closer's and the peer's states.
    pub states: Vec<String>,
    /// What the close returned, what each end read, where TIME_WAIT stayed, what the
    /// documents say, the deviation: (label, line).
    pub verdict: Vec<(&'static str, String)>,
}

/// The text of one trace, as `lingertop lab` prints it.
pub fn trace_text(t: &Trace) -> TraceText {
    TraceText {
        head: head(t),
        calls: calls(t),
        states: states(t),
        verdict: verdict(t),
    }
}

/// Which connection, which end closes how, the server's behaviour.
fn head(t: &Trace) -> Vec<String> {
    let (closer_end, peer_end) = (t.end, t.end.other());
    let linger = t
        .linger
        .map(|d| format!(", SO_LINGER {} s", d.as_secs()))
        .unwrap_or_default();
    vec![
        format!(
            "lab connection {}: {closer_end} {} <-> {peer_end} {}",
            t.conn, t.closer.0, t.closer.1
        ),
        format!(
            "mode {}: the {closer_end} end closes{linger}; server behaviour {}",
            t.action, t.behaviour
        ),
    ]
}

/// `CALLS`, then one line a call: when, on which end, what, its result, how long it blocked.
fn calls(t: &Trace) -> Vec<String> {
    let mut calls = vec!["CALLS".to_string()];
    for c in &t.calls {
        let took = if c.took >= Duration::from_millis(1) {
            format!("  (blocked {})", fmt_ms(c.took))
        } else {
            String::new()
        };
        let detail = c
            .detail
            .as_deref()
            .map(|d| format!("  {d}"))
            .unwrap_or_default();
        calls.push(format!(
            "  {:>11}  {:<6}  {:<40} {}{detail}{took}",
            format!("+{}", fmt_ms(c.at)),
            c.end.name(),
            c.call,
            c.result.name()
        ));
    }
    calls
}

/// `STATES (how observed)`, then the closer's and the peer's states with their times.
fn states(t: &Trace) -> Vec<String> {
    let (closer_end, peer_end) = (t.end, t.end.other());
    let mut states = vec![format!(
        "STATES (kernel socket table by exact 4-tuple via {}: every 5 ms during the close, then 50 ms; {} polls)",
        t.observer, t.polls
    )];
    for (role, end, steps) in [
        ("closer", closer_end, &t.closer_states),
        ("peer", peer_end, &t.peer_states),
    ] {
        let line: Vec<String> = steps
            .iter()
            .map(|s| {
                format!(
                    "{} +{}",
                    s.state.map_or("gone", TcpState::name),
                    fmt_ms(s.at)
                )
            })
            .collect();
        states.push(format!(
            "  {role:<6}  {:<6}  {}",
            end.name(),
            line.join(" > ")
        ));
    }
    states
}

/// What the close returned, what each end read, where TIME_WAIT stayed, what the documents
/// say, the deviation: (label, line).
fn verdict(t: &Trace) -> Vec<(&'static str, String)> {
    let rows: Vec<(&'static str, String)> = vec![
        (
            t.documented.call,
            format!(
                "{} after {}",
                t.close_result.name(),
                fmt_ms(t.close_blocked)
            ),
        ),
        (
            "peer read",
            format!(
                "{}{} at +{}{}; {} bytes after the close",
                t.peer_read.outcome,
                t.peer_read
                    .then
                    .as_ref()
                    .map(|r| format!(", then {}", r.name()))
                    .unwrap_or_default(),
                fmt_ms(t.peer_read.at),
                if t.peer_read.probe {
                    " (read by the lab: this behaviour never reads on its own)"
                } else {
                    ""
                },
                t.peer_read.bytes_after_close
            ),
        ),
        (
            "closer read",
            t.closer_read
                .as_ref()
                .map_or_else(|| "-".to_string(), ToString::to_string),
        ),
        (
            "TIME_WAIT",
            format!(
                "{} ({}: closer {}, peer {})",
                t.time_wait.name(),
                if t.settled {
                    "settled"
                } else {
                    "deadline passed before both ends settled"
                },
                final_name(&t.closer_states),
                final_name(&t.peer_states)
            ),
        ),
        ("documented", t.documented.text.to_string()),
        (
            "deviation",
            t.deviation
                .clone()
                .unwrap_or_else(|| "none: the kernel did what the documents say".to_string()),
        ),
    ];
    rows.into_iter()
        .map(|(k, v)| (k, format!("{k:<12}  {v}")))
        .collect()
}
