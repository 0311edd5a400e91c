//! The human-readable snapshot: a header, counts per state, alerts, then aligned rows.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::time::SystemTime;

use super::{AddrText, SnapshotView, timestamp};
use crate::model::duration::{Age, human_duration};
use crate::model::{AgeSource, Connection, ProcessInfo, Snapshot};
use crate::resolve::Names;
use crate::sanitize::terminal;

pub(super) fn write<W: Write>(v: &SnapshotView<'_>, out: &mut W) -> io::Result<()> {
    header(v, out)?;
    if v.snapshot.connections.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    rows(v.snapshot, v.names, out)
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
    Ok(())
}

/// The columns a row's cells fill, in order; the state's name needs no cell.
const LOCAL: usize = 0;
const REMOTE: usize = 1;
const PROCESS: usize = 2;
const AGE: usize = 3;
const VIA: usize = 4;
const NETNS: usize = 5;
const CELLS: usize = 6;

/// Every row's cells written once into one string, each cell found by its end offset, with
/// its width in characters: no `String` per cell (a 100k-row table had 600k of them).
struct Cells {
    text: String,
    /// Per row, each cell's end in `text` and its width in characters.
    rows: Vec<[(u32, u32); CELLS]>,
}

impl Cells {
    fn of(s: &Snapshot, names: Option<&Names>) -> Cells {
        let now = s.taken_at;
        // Fifty bytes a row holds a loopback row's cells; the string grows if not.
        let mut cells = Cells {
            text: String::with_capacity(s.connections.len() * 50),
            rows: Vec::with_capacity(s.connections.len()),
        };
        for c in &s.connections {
            let mut row = [(0, 0); CELLS];
            let mut start = cells.text.len();
            let mut end_cell = |text: &mut String, i: usize| {
                let cell = &text[start..];
                // Characters, as `format!` pads them (`≥` is three bytes).
                let width = if cell.is_ascii() {
                    cell.len()
                } else {
                    cell.chars().count()
                };
                row[i] = (text.len() as u32, width as u32);
                start = text.len();
            };
            let t = &mut cells.text;
            // Writing into a `String` cannot fail.
            t.push_str(AddrText::of(&c.local()).as_str());
            end_cell(t, LOCAL);
            // With --resolve, `name:port` where the address has a name.
            match names.and_then(|n| n.get(c.remote().ip())) {
                Some(name) => {
                    t.push_str(&terminal(name));
                    let _ = write!(t, ":{}", c.remote().port());
                }
                None => t.push_str(AddrText::of(&c.remote()).as_str()),
            }
            end_cell(t, REMOTE);
            match c.owner() {
                Some(o) => {
                    t.push_str(&terminal(o.name.as_deref().unwrap_or("?")));
                    let _ = write!(t, " ({})", o.pid);
                    if c.owners.len() > 1 {
                        let _ = write!(t, " +{}", c.owners.len() - 1);
                    }
                }
                None => t.push('-'),
            }
            end_cell(t, PROCESS);
            age_cell(t, c, now);
            end_cell(t, AGE);
            let via = match c.attribution {
                Some(a) if a != crate::model::Attribution::Owner => a.name(),
                _ => "",
            };
            // The lab's own sockets say so, so nobody mistakes them for a real leak.
            t.push_str(via);
            if c.lab {
                t.push_str(if via.is_empty() { "lab" } else { ", lab" });
            }
            end_cell(t, VIA);
            t.push_str(s.netns.name(c.netns()).unwrap_or("-"));
            end_cell(t, NETNS);
            cells.rows.push(row);
        }
        cells
    }

    /// Row `r`'s cell `i` and its width in characters.
    fn get(&self, r: usize, i: usize) -> (&str, usize) {
        let row = &self.rows[r];
        let start = match i {
            0 if r == 0 => 0,
            0 => self.rows[r - 1][CELLS - 1].0,
            _ => row[i - 1].0,
        } as usize;
        let (end, width) = row[i];
        (&self.text[start..end as usize], width as usize)
    }

    /// The widest cell of column `i`, at least as wide as its heading.
    fn width(&self, i: usize, head: &str) -> usize {
        self.rows
            .iter()
            .map(|r| r[i].1 as usize)
            .max()
            .unwrap_or(0)
            .max(head.len())
    }
}

/// [`state_age_cell`], written into `t`.
fn age_cell(t: &mut String, c: &Connection, now: SystemTime) {
    let age = c.state_age(now);
    let mark = match (age, c.age_source(now)) {
        (Some(_), Some(AgeSource::Kernel)) => Some(" k"),
        (Some(_), Some(AgeSource::FirstSight)) => Some(" f"),
        _ => None,
    };
    if mark.is_some() {
        t.push('≥');
    }
    let _ = write!(t, "{}", Age(age));
    if let Some(m) = mark {
        t.push_str(m);
    }
}

/// Appends `cell` to `line`, padded with spaces to `width` characters: left-aligned, or
/// right-aligned when `right` (as `{:<w$}` and `{:>w$}` pad).
fn pad(line: &mut String, (cell, chars): (&str, usize), width: usize, right: bool) {
    let fill = width.saturating_sub(chars);
    if !right {
        line.push_str(cell);
    }
    line.extend(std::iter::repeat_n(' ', fill));
    if right {
        line.push_str(cell);
    }
}

/// The connections, one aligned row each.
fn rows<W: Write>(s: &Snapshot, names: Option<&Names>, out: &mut W) -> io::Result<()> {
    let with_netns = super::shows_netns(&s.connections);
    let cells = Cells::of(s, names);
    let (wl, wr, wp, wa) = (
        cells.width(LOCAL, "LOCAL"),
        cells.width(REMOTE, "REMOTE"),
        cells.width(PROCESS, "PROCESS"),
        cells.width(AGE, "AGE"),
    );
    // The namespace leads the row where several are shown: it is what tells two equal
    // loopback 4-tuples apart.
    let wn = cells.width(NETNS, "NETNS");
    let mut line = String::new();
    let heading = [
        ("LOCAL", wl, false),
        ("REMOTE", wr, false),
        ("PROCESS", wp, false),
        ("AGE", wa, true),
    ];
    if with_netns {
        pad(&mut line, ("NETNS", 5), wn, false);
        line.push_str("  ");
    }
    pad(&mut line, ("STATE", 5), 11, false);
    for (head, width, right) in heading {
        line.push_str("  ");
        pad(&mut line, (head, head.len()), width, right);
    }
    line.push_str("  VIA");
    writeln!(out, "{line}")?;
    for (r, c) in s.connections.iter().enumerate() {
        line.clear();
        if with_netns {
            pad(&mut line, cells.get(r, NETNS), wn, false);
            line.push_str("  ");
        }
        let state = c.state.name();
        pad(&mut line, (state, state.len()), 11, false);
        for (i, width, right) in [
            (LOCAL, wl, false),
            (REMOTE, wr, false),
            (PROCESS, wp, false),
            (AGE, wa, true),
        ] {
            line.push_str("  ");
            pad(&mut line, cells.get(r, i), width, right);
        }
        line.push_str("  ");
        line.push_str(cells.get(r, VIA).0);
        out.write_all(line.trim_end().as_bytes())?;
        out.write_all(b"\n")?;
    }
    Ok(())
}
