//! The human-readable snapshot: a header, counts per state, alerts, then aligned rows.

use std::io::{self, Write};

use super::{AddrBuf, SnapshotView, timestamp};
use crate::model::duration::{Age, human_duration};
use crate::model::{ProcessInfo, Snapshot};

pub(super) fn write<W: Write>(v: &SnapshotView<'_>, out: &mut W) -> io::Result<()> {
    header(v, out)?;
    if v.snapshot.connections.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    rows(v.snapshot, out)
}

/// What was read, how, what matched, the counts per state and the alerts.
fn header<W: Write>(v: &SnapshotView<'_>, out: &mut W) -> io::Result<()> {
    let s = v.snapshot;
    let polls = match v.interval {
        Some(i) => format!("{} polls {} apart", v.polls, human_duration(i)),
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

/// The connections, one aligned row each. Every cell is formatted once into one arena and
/// each row keeps the ends of its cells: no allocation per row (five `String`s and a
/// `format!` a row were most of a big table's time).
fn rows<W: Write>(s: &Snapshot, out: &mut W) -> io::Result<()> {
    let now = s.taken_at;
    let mut arena: Vec<u8> = Vec::with_capacity(s.connections.len() * 48);
    let mut ends: Vec<[u32; CELLS]> = Vec::with_capacity(s.connections.len());
    let mut widths = [
        "LOCAL".len(),
        "REMOTE".len(),
        "PROCESS".len(),
        "AGE".len(),
        0,
    ];
    let mut addr = AddrBuf::new();
    for c in &s.connections {
        let mut row = [0u32; CELLS];
        let mut start = arena.len();
        for (i, end) in row.iter_mut().enumerate() {
            match i {
                0 => arena.extend_from_slice(addr.format(&c.local()).as_bytes()),
                1 => arena.extend_from_slice(addr.format(&c.remote()).as_bytes()),
                2 => match c.owner() {
                    Some(o) => {
                        let name = o.name.as_deref().unwrap_or("?");
                        write!(arena, "{name} ({})", o.pid)?;
                        if c.owners.len() > 1 {
                            write!(arena, " +{}", c.owners.len() - 1)?;
                        }
                    }
                    None => arena.push(b'-'),
                },
                3 => write!(arena, "{}", Age(c.state_age(now)))?,
                _ => {
                    let via = match c.attribution {
                        Some(a) if a != crate::model::Attribution::Owner => a.name(),
                        _ => "",
                    };
                    // The lab's own sockets say so, so nobody mistakes them for a real leak.
                    match (c.lab, via) {
                        (true, "") => arena.extend_from_slice(b"lab"),
                        (true, v) => write!(arena, "{v}, lab")?,
                        (false, v) => arena.extend_from_slice(v.as_bytes()),
                    }
                }
            }
            widths[i] = widths[i].max(arena.len() - start);
            start = arena.len();
            *end = u32::try_from(start).map_err(|_| io::Error::other("table too large"))?;
        }
        ends.push(row);
    }
    let [wl, wr, wp, wa, _] = widths;
    writeln!(
        out,
        "{:<11}  {:<wl$}  {:<wr$}  {:<wp$}  {:>wa$}  VIA",
        "STATE", "LOCAL", "REMOTE", "PROCESS", "AGE"
    )?;
    let mut begin = 0usize;
    for (c, row) in s.connections.iter().zip(&ends) {
        let cell = |i: usize| {
            let from = if i == 0 { begin } else { row[i - 1] as usize };
            &arena[from..row[i] as usize]
        };
        let name = c.state.name().as_bytes();
        out.write_all(name)?;
        pad(out, 11 - name.len().min(11))?;
        for (i, w) in [wl, wr, wp].into_iter().enumerate() {
            let text = cell(i);
            out.write_all(b"  ")?;
            out.write_all(text)?;
            pad(out, w - text.len())?;
        }
        let age = cell(3);
        out.write_all(b"  ")?;
        pad(out, wa - age.len())?;
        out.write_all(age)?;
        let via = cell(4);
        if !via.is_empty() {
            out.write_all(b"  ")?;
            out.write_all(via)?;
        }
        out.write_all(b"\n")?;
        begin = row[CELLS - 1] as usize;
    }
    Ok(())
}

/// Cells of a connection row after its state: local, remote, process, age, via.
const CELLS: usize = 5;

/// Writes `n` spaces.
fn pad<W: Write>(out: &mut W, n: usize) -> io::Result<()> {
    const SPACES: &[u8; 64] = &[b' '; 64];
    let mut left = n;
    while left > 0 {
        let k = left.min(SPACES.len());
        out.write_all(&SPACES[..k])?;
        left -= k;
    }
    Ok(())
}
