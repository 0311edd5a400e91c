//! What `lingertop close` did, as a table or one JSON document: one row per connection it
//! selected, with how it was closed and where it ended (or what it would do, in a dry run).

use std::io::{self, Write};

use serde::Serialize;

use crate::model::action::{CloseHow, Outcome};
use crate::model::{Connection, NetnsTable, TcpState};

/// One connection of a close, as every output shows it.
#[derive(Clone, Debug, Serialize)]
pub struct CloseRow {
    /// The network namespace it is in, by name.
    pub netns: String,
    pub local: String,
    pub remote: String,
    /// Its state when it was listed.
    pub state: TcpState,
    /// Every process holding it, as `name[pid]`.
    pub owners: Vec<String>,
    pub cookie: u64,
    /// `closed`, `half-closed`, `still-there`, `refused`; in a dry run `would-close` or
    /// `would-refuse`.
    pub result: &'static str,
    /// Where it is now, when still there.
    pub state_now: Option<TcpState>,
    /// Why it was refused (`listen`, `no-descriptor`, `no-ptrace`, `no-net-admin`, ...).
    pub why: Option<&'static str>,
    /// The result in words.
    pub detail: String,
}

/// The name of a connection's network namespace, for a person.
pub fn netns_name(c: &Connection, netns: &NetnsTable) -> String {
    netns
        .get(c.netns())
        .map_or_else(|| "host".to_string(), |n| n.name.to_string())
}

impl CloseRow {
    /// A listed connection, not judged yet.
    pub fn of(c: &Connection, netns: &NetnsTable) -> CloseRow {
        CloseRow {
            netns: netns_name(c, netns),
            local: super::addr(&c.local()),
            remote: super::addr(&c.remote()),
            state: c.state,
            owners: c
                .owners
                .iter()
                .map(|o| format!("{}[{}]", o.name.as_deref().unwrap_or("?"), o.pid))
                .collect(),
            cookie: c.cookie,
            result: "would-close",
            state_now: None,
            why: None,
            detail: String::new(),
        }
    }

    /// The row's result from `outcome`; `None` is a dry run's "would close".
    pub fn judged(mut self, outcome: Option<&Outcome>, dry_run: bool) -> CloseRow {
        match outcome {
            None => {
                self.result = "would-close";
                self.detail = "would close".into();
            }
            Some(Outcome::Refused { refusal }) => {
                self.result = if dry_run { "would-refuse" } else { "refused" };
                self.why = Some(refusal.code());
                self.detail = format!("refused: {refusal}");
            }
            Some(o) => {
                self.result = o.code();
                if let Outcome::StillThere { state } = o {
                    self.state_now = Some(*state);
                }
                self.detail = o.to_string();
            }
        }
        self
    }
}

/// A whole close, for the JSON document.
#[derive(Clone, Debug, Serialize)]
pub struct CloseReport {
    pub how: CloseHow,
    pub dry_run: bool,
    /// What the peer of each connection sees.
    pub peer_sees: &'static str,
    /// Connections the filter matched that the rails left out: lingertop's own, and the
    /// SSH connection the command runs over.
    pub left_out_lingertop: usize,
    pub left_out_ssh: usize,
    pub connections: Vec<CloseRow>,
}

/// Writes `report` as one JSON document (indented).
pub fn write_json<W: Write>(out: &mut W, report: &CloseReport) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Writes `report` as an aligned table, outside text escaped.
pub fn write_table<W: Write>(out: &mut W, report: &CloseReport) -> io::Result<()> {
    let header = ["NETNS", "LOCAL", "REMOTE", "STATE", "PROCESS", "RESULT"];
    let rows: Vec<[String; 6]> = report
        .connections
        .iter()
        .map(|r| {
            [
                crate::sanitize::message(&r.netns).into_owned(),
                r.local.clone(),
                r.remote.clone(),
                r.state.to_string(),
                crate::sanitize::message(&r.owners.join(",")).into_owned(),
                crate::sanitize::message(&r.detail).into_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut W, cells: &[&str]| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(out, &header)?;
    for r in &rows {
        line(out, &r.each_ref().map(String::as_str))?;
    }
    Ok(())
}
