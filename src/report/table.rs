//! The human-readable snapshot: a header, counts per state, alerts, then aligned rows.

use std::io::{self, Write};

use super::{SnapshotView, addr, timestamp};
use crate::model::duration::{human_duration, state_age_cell};
use crate::model::{ProcessInfo, Snapshot};

pub(super) fn write(v: &SnapshotView<'_>, out: &mut dyn Write) -> io::Result<()> {
    header(v, out)?;
    if v.snapshot.connections.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    rows(v.snapshot, out)
}

/// What was read, how, what matched, the counts per state and the alerts.
fn header(v: &SnapshotView<'_>, out: &mut dyn Write) -> io::Result<()> {
    let s = v.snapshot;
    let polls = match v.interval {
        Some(i) => format!("{} polls {} apart", v.polls, human_duration(i)),
        // The kernel's clocks give ages on one poll; netstat2 has none.
        None if v.backend == "netlink" => {
            "1 poll: ages from the kernel's clocks, ≥ at least; add --interval 2s for growth"
                .to_string()
        }
        None => "1 poll: ages unknown, add --interval 2s to measure them".to_string(),
    };
    writeln!(
        out,
        "lingertop snapshot of {} at {} ({polls})",
        s.host,
        timestamp(s.taken_at)
    )?;
    if let ProcessInfo::Partial { reason } = &s.process_info {
        writeln!(out, "process info is partial: {reason}")?;
    }
    let shown = s.connections.len();
    if v.filter.is_empty() {
        writeln!(out, "{shown} TCP connections")?;
    } else {
        writeln!(
            out,
            "{shown} of {} TCP connections match \"{}\"",
            v.total_connections, v.filter
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
                a.message
            )?;
        }
    }
    Ok(())
}

/// The connections, one aligned row each.
fn rows(s: &Snapshot, out: &mut dyn Write) -> io::Result<()> {
    let now = s.taken_at;
    let rows: Vec<[String; 5]> = s
        .connections
        .iter()
        .map(|c| {
            let process = match c.owner() {
                Some(o) => {
                    let name = o.name.as_deref().unwrap_or("?");
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
                state_age_cell(c, now),
                via,
            ]
        })
        .collect();
    let width = |i: usize, head: &str| {
        rows.iter()
            // Characters, as `format!` pads them (`≥` is three bytes).
            .map(|r| r[i].chars().count())
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
