//! The process and remote endpoint views: connections counted per owning process and per
//! remote endpoint, and those rows sorted on the view's column.

use std::net::{IpAddr, SocketAddr};

use rustc_hash::FxHashMap;

use super::Row;
use crate::model::alerts::{endpoint_key, pair_groups};
use crate::model::close_stats::Resets;
use crate::model::growth::GrowthSpan;
use crate::model::netns::Ranges;
use crate::model::{Connection, StateCounts, TcpState};

/// Counts of each close state held by one process.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcRow {
    pub pid: Option<u32>,
    pub name: String,
    pub counts: StateCounts,
    pub total: u32,
    /// CLOSE_WAIT change per minute over the last polls.
    pub close_wait_per_min: Option<f64>,
    /// Resets sent (and why) and received, from the kernel's events (the RST columns);
    /// `None` without.
    pub resets: Option<Resets>,
}

/// Connections toward one remote endpoint.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteRow {
    pub remote: SocketAddr,
    pub time_wait: u32,
    pub total: u32,
    /// Highest ephemeral-port use toward it from one local address, and that address.
    pub pressure: f64,
    pub ports_used: u32,
    pub from: Option<IpAddr>,
}

/// Counts the `matching` connections per owning pid (one row for connections without a
/// visible owner). Given a `growth` span (`model::growth`, over `alerts.growth-window` as
/// the alert rule measures it), each process's CLOSE_WAIT change per minute over it.
pub fn aggregate_processes(
    conns: &[Connection],
    matching: &[usize],
    growth: Option<GrowthSpan<'_>>,
) -> Vec<ProcRow> {
    let mut by: FxHashMap<Option<u32>, ProcRow> = FxHashMap::default();
    for &i in matching {
        let c = &conns[i];
        let owner = c.owner();
        let pid = owner.map(|o| o.pid);
        let row = by.entry(pid).or_insert_with(|| ProcRow {
            pid,
            name: owner
                .and_then(|o| o.name.as_deref())
                .unwrap_or(if pid.is_some() { "?" } else { "(no process)" })
                .to_string(),
            counts: StateCounts::default(),
            total: 0,
            close_wait_per_min: None,
            resets: None,
        });
        row.counts.add(c.state);
        row.total += 1;
    }
    let mut out: Vec<ProcRow> = by.into_values().collect();
    if let Some(span) = growth {
        for p in &mut out {
            p.close_wait_per_min = p.pid.map(|pid| span.per_min(pid));
        }
    }
    out
}

/// The rows of the process view sorted on column `col` (see `View::columns`).
pub fn sort_processes(procs: &[ProcRow], col: usize, desc: bool) -> Vec<Row> {
    sort_processes_with(procs, col, desc, true)
}

/// [`sort_processes`]; with `worst_default` false, column 0 ascending is by name, A to Z
/// (the dashboard's default is then CLOSE_W descending, which a header click can leave).
pub fn sort_processes_with(
    procs: &[ProcRow],
    col: usize,
    desc: bool,
    worst_default: bool,
) -> Vec<Row> {
    let mut idx: Vec<usize> = (0..procs.len()).collect();
    idx.sort_by(|&a, &b| {
        let (pa, pb) = (&procs[a], &procs[b]);
        let cw = TcpState::CloseWait;
        let o = match col {
            0 => pa.name.cmp(&pb.name),
            1 => pa.pid.cmp(&pb.pid),
            2 => pa.total.cmp(&pb.total),
            3 => pa
                .counts
                .get(TcpState::Established)
                .cmp(&pb.counts.get(TcpState::Established)),
            4 => pa.counts.get(cw).cmp(&pb.counts.get(cw)),
            5 => pa
                .close_wait_per_min
                .unwrap_or(0.0)
                .total_cmp(&pb.close_wait_per_min.unwrap_or(0.0)),
            6 => pa
                .counts
                .get(TcpState::TimeWait)
                .cmp(&pb.counts.get(TcpState::TimeWait)),
            7 => fin_waits(pa).cmp(&fin_waits(pb)),
            9 => pa.resets.map(|r| r.sent).cmp(&pb.resets.map(|r| r.sent)),
            10 => pa
                .resets
                .map(|r| r.received)
                .cmp(&pb.resets.map(|r| r.received)),
            11 => pa
                .resets
                .map(|r| r.unread_data)
                .cmp(&pb.resets.map(|r| r.unread_data)),
            12 => pa
                .resets
                .map(|r| r.linger0)
                .cmp(&pb.resets.map(|r| r.linger0)),
            _ => pa
                .counts
                .get(TcpState::LastAck)
                .cmp(&pb.counts.get(TcpState::LastAck)),
        };
        // Default (column 0 ascending) lists the worst CLOSE_WAIT holders first.
        let o = if worst_default && col == 0 && !desc {
            pb.counts.get(cw).cmp(&pa.counts.get(cw)).then(o)
        } else if desc {
            o.reverse()
        } else {
            o
        };
        o.then(pa.pid.cmp(&pb.pid))
    });
    idx.into_iter().map(Row::Process).collect()
}

/// The rows of the remote view sorted on column `col` (see `View::columns`).
pub fn sort_remotes(rs: &[RemoteRow], col: usize, desc: bool) -> Vec<Row> {
    sort_remotes_with(rs, col, desc, true)
}

/// [`sort_remotes`]; with `worst_default` false, column 0 ascending is by address.
pub fn sort_remotes_with(
    rs: &[RemoteRow],
    col: usize,
    desc: bool,
    worst_default: bool,
) -> Vec<Row> {
    let mut idx: Vec<usize> = (0..rs.len()).collect();
    idx.sort_by(|&a, &b| {
        let (ra, rb) = (&rs[a], &rs[b]);
        let o = match col {
            0 => ra.remote.cmp(&rb.remote),
            1 => ra.time_wait.cmp(&rb.time_wait),
            2 => ra.total.cmp(&rb.total),
            3 => ra.pressure.total_cmp(&rb.pressure),
            _ => ra.from.cmp(&rb.from),
        };
        // Default (column 0 ascending): most TIME_WAIT first.
        let o = if worst_default && col == 0 && !desc {
            rb.time_wait.cmp(&ra.time_wait).then(o)
        } else if desc {
            o.reverse()
        } else {
            o
        };
        o.then(ra.remote.cmp(&rb.remote))
    });
    idx.into_iter().map(Row::Remote).collect()
}

fn fin_waits(p: &ProcRow) -> u32 {
    p.counts.get(TcpState::FinWait1) + p.counts.get(TcpState::FinWait2)
}

/// Counts the `matching` connections per remote endpoint (listeners left out); for each,
/// the local address using most ports of the ephemeral `range` toward it, and that share
/// of the range.
pub fn aggregate_remotes(
    conns: &[Connection],
    ranges: Ranges<'_>,
    matching: &[usize],
) -> Vec<RemoteRow> {
    // Remotes keyed as integers (cheap to hash); neighbouring rows often share one.
    let mut others = FxHashMap::default();
    let mut ids: FxHashMap<u64, usize> = FxHashMap::default();
    let mut last: Option<(u64, usize)> = None;
    let mut rows: Vec<RemoteRow> = Vec::new();
    for &i in matching {
        let c = &conns[i];
        if c.state == TcpState::Listen {
            continue;
        }
        let k = endpoint_key(&c.remote(), &mut others);
        let r = match last {
            Some((lk, r)) if lk == k => r,
            _ => {
                let r = *ids.entry(k).or_insert_with(|| {
                    rows.push(RemoteRow {
                        remote: c.remote(),
                        time_wait: 0,
                        total: 0,
                        pressure: 0.0,
                        ports_used: 0,
                        from: None,
                    });
                    rows.len() - 1
                });
                last = Some((k, r));
                r
            }
        };
        rows[r].total += 1;
        rows[r].time_wait += u32::from(c.state == TcpState::TimeWait);
    }
    // Per remote, the local address using most ephemeral ports toward it (the lowest
    // address among equals: groups come sorted by local address).
    for members in pair_groups(conns, matching.iter().copied(), ranges).iter() {
        let c = &conns[members[0]];
        let size = f64::from(ranges.of(c.netns()).len().max(1));
        let Some(&r) = ids.get(&endpoint_key(&c.remote(), &mut others)) else {
            continue;
        };
        let in_use = u32::try_from(members.len()).unwrap_or(u32::MAX);
        let ratio = f64::from(in_use) / size;
        let row = &mut rows[r];
        if ratio > row.pressure {
            row.pressure = ratio;
            row.ports_used = in_use;
            row.from = Some(c.local().ip());
        }
    }
    rows
}
