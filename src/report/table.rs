//! The human-readable snapshot: a header, counts per state, alerts, then aligned rows.

use std::io::{self, Write};
use std::time::Duration;

use super::{SnapshotView, addr, timestamp};
use crate::model::ProcessInfo;
use crate::sanitize::terminal;

/// `850ms`, `42s`, `3m05s`, `2h04m`; `-` when unknown; `new` when the state began at this
/// very poll (it started within the last interval).
pub fn fmt_age(d: Option<Duration>) -> String {
    let Some(d) = d else {
        return "-".to_string();
    };
    let s = d.as_secs();
    if d.is_zero() {
        "new".to_string()
    } else if s == 0 {
        format!("{}ms", d.as_millis())
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

pub(super) fn write(v: &SnapshotView<'_>, out: &mut dyn Write) -> io::Result<()> {
    let s = v.snapshot;
    let polls = match v.interval {
        Some(i) => format!("{} polls {} apart", v.polls, humantime::format_duration(i)),
        None => "1 poll: ages unknown, add --interval 2s to measure them".to_string(),
    };
    writeln!(
        out,
        "lingertop snapshot of {} at {} ({polls})",
        terminal(&s.host),
        timestamp(s.taken_at)
    )?;
    if let ProcessInfo::Partial { reason } = &s.process_info {
        writeln!(out, "process info is partial: {}", terminal(reason))?;
    }
    let shown = s.connections.len();
    if v.filter.is_empty() {
        writeln!(out, "{shown} TCP connections")?;
    } else {
        writeln!(
            out,
            "{shown} of {} TCP connections match \"{}\"",
            v.total_connections,
            // A filter holds no raw control (the parser refuses them) but may hold the
            // escapes typed inside quotes, shown as typed.
            crate::sanitize::message(&v.filter)
        )?;
    }
    let counts: Vec<String> = s
        .counts()
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| format!("{} {n}", st.name()))
        .collect();
    if !counts.is_empty() {
        writeln!(out, "{}", counts.join("  "))?;
    }

    writeln!(out)?;
    if v.alerts.is_empty() {
        writeln!(out, "no alerts")?;
    } else {
        writeln!(out, "ALERTS")?;
        for a in v.alerts {
            writeln!(
                out,
                "  {:<8}  {:<20}  {}",
                a.severity.name(),
                a.rule.name(),
                terminal(&a.message)
            )?;
        }
    }
    if shown == 0 {
        return Ok(());
    }

    let now = s.taken_at;
    let rows: Vec<[String; 5]> = s
        .connections
        .iter()
        .map(|c| {
            let process = match c.owner() {
                Some(o) => {
                    let name = terminal(o.name.as_deref().unwrap_or("?"));
                    let more = if c.owners.len() > 1 {
                        format!(" +{}", c.owners.len() - 1)
                    } else {
                        String::new()
                    };
                    format!("{name} ({}){more}", o.pid)
                }
                None => "-".to_string(),
            };
            let via = match c.attribution {
                Some(a) if a != crate::model::Attribution::Owner => a.name(),
                _ => "",
            };
            // The lab's own sockets say so, so nobody mistakes them for a real leak.
            let via = match (c.lab, via) {
                (true, "") => "lab".to_string(),
                (true, v) => format!("{v}, lab"),
                (false, v) => v.to_string(),
            };
            [
                addr(&c.local()),
                addr(&c.remote()),
                process,
                fmt_age(c.state_age(now)),
                via,
            ]
        })
        .collect();
    let width = |i: usize, head: &str| {
        rows.iter()
            .map(|r| r[i].len())
            .max()
            .unwrap_or(0)
            .max(head.len())
    };
    let (wl, wr, wp, wa) = (
        width(0, "LOCAL"),
        width(1, "REMOTE"),
        width(2, "PROCESS"),
        width(3, "AGE"),
    );
    writeln!(out)?;
    writeln!(
        out,
        "{:<11}  {:<wl$}  {:<wr$}  {:<wp$}  {:>wa$}  VIA",
        "STATE", "LOCAL", "REMOTE", "PROCESS", "AGE"
    )?;
    for (c, r) in s.connections.iter().zip(&rows) {
        let line = format!(
            "{:<11}  {:<wl$}  {:<wr$}  {:<wp$}  {:>wa$}  {}",
            c.state.name(),
            r[0],
            r[1],
            r[2],
            r[3],
            r[4]
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}
