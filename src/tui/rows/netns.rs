//! The by-namespace view: the connections counted per network namespace (host, container,
//! pod, `ip netns`, a process's own), with the oldest CLOSE_WAIT and how fast CLOSE_WAIT
//! grows there, and those rows sorted on the view's column.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustc_hash::{FxHashMap, FxHashSet};

use super::Row;
use crate::model::growth::GrowthSpan;
use crate::model::{Connection, NetnsId, NetnsTable, StateCounts, TcpState};

/// Counts of each close state in one network namespace.
#[derive(Clone, Debug, PartialEq)]
pub struct NetnsRow {
    pub id: NetnsId,
    /// The name a person knows it by (`host`, a container's name, `blue`, `sleep[812]`).
    pub name: Arc<str>,
    /// What it is: `host`, `docker`, `pod`, `netns`, `process`... (`NetnsKind::key`).
    pub kind: &'static str,
    /// The lowest pid holding it, where a process does.
    pub pid: Option<u32>,
    pub counts: StateCounts,
    pub total: u32,
    /// How long the oldest CLOSE_WAIT there has been in it, where an age is known.
    pub oldest_close_wait: Option<Duration>,
    /// CLOSE_WAIT change per minute of the processes holding CLOSE_WAIT there (the alert
    /// rule's growth, summed over them; pids are unique across namespaces).
    pub close_wait_per_min: Option<f64>,
}

/// Counts the `matching` connections per namespace; names from `netns` (the snapshot's
/// table; a namespace it does not know reads as `host` for lingertop's own, else `ns N`).
/// `now` is when the snapshot was taken (ages); `growth` as in the process view.
pub fn aggregate_netns(
    conns: &[Connection],
    matching: &[usize],
    netns: &NetnsTable,
    now: SystemTime,
    growth: Option<GrowthSpan<'_>>,
) -> Vec<NetnsRow> {
    let mut at: FxHashMap<NetnsId, usize> = FxHashMap::default();
    let mut rows: Vec<NetnsRow> = Vec::new();
    let mut holders: Vec<FxHashSet<u32>> = Vec::new();
    for &i in matching {
        let c = &conns[i];
        let id = c.netns();
        let r = *at.entry(id).or_insert_with(|| {
            rows.push(empty_row(id, netns));
            holders.push(FxHashSet::default());
            rows.len() - 1
        });
        let row = &mut rows[r];
        row.counts.add(c.state);
        row.total += 1;
        if c.state == TcpState::CloseWait {
            if let Some(age) = c.state_age(now) {
                row.oldest_close_wait = Some(row.oldest_close_wait.map_or(age, |a| a.max(age)));
            }
            if let Some(o) = c.owner() {
                holders[r].insert(o.pid);
            }
        }
    }
    if let Some(span) = growth {
        for (row, pids) in rows.iter_mut().zip(&holders) {
            // `+ 0.0`: an empty sum is -0.0, which would print as "-0".
            row.close_wait_per_min = Some(pids.iter().map(|&p| span.per_min(p)).sum::<f64>() + 0.0);
        }
    }
    rows
}

fn empty_row(id: NetnsId, netns: &NetnsTable) -> NetnsRow {
    let (name, kind, pid): (Arc<str>, &'static str, Option<u32>) = match netns.get(id) {
        Some(n) => (n.name.clone(), n.kind.key(), n.pid),
        None if id == crate::model::OWN_NETNS => ("host".into(), "host", None),
        None => (format!("ns {id}").into(), "?", None),
    };
    NetnsRow {
        id,
        name,
        kind,
        pid,
        counts: StateCounts::default(),
        total: 0,
        oldest_close_wait: None,
        close_wait_per_min: None,
    }
}

/// The rows of the namespace view sorted on column `col` (see `View::columns`); the
/// default (column 0 ascending) lists the most CLOSE_WAIT first, then the most TIME_WAIT.
pub fn sort_netns(rows: &[NetnsRow], col: usize, desc: bool) -> Vec<Row> {
    sort_netns_with(rows, col, desc, true)
}

/// [`sort_netns`]; with `worst_default` false, column 0 ascending is by name.
pub fn sort_netns_with(rows: &[NetnsRow], col: usize, desc: bool, worst_default: bool) -> Vec<Row> {
    let mut idx: Vec<usize> = (0..rows.len()).collect();
    let get = |r: &NetnsRow, s| r.counts.get(s);
    idx.sort_by(|&a, &b| {
        let (ra, rb) = (&rows[a], &rows[b]);
        let o = match col {
            0 => ra.name.cmp(&rb.name),
            1 => ra.kind.cmp(rb.kind),
            2 => ra.total.cmp(&rb.total),
            3 => get(ra, TcpState::Established).cmp(&get(rb, TcpState::Established)),
            4 => get(ra, TcpState::CloseWait).cmp(&get(rb, TcpState::CloseWait)),
            5 => ra.oldest_close_wait.cmp(&rb.oldest_close_wait),
            6 => ra
                .close_wait_per_min
                .unwrap_or(0.0)
                .total_cmp(&rb.close_wait_per_min.unwrap_or(0.0)),
            7 => get(ra, TcpState::TimeWait).cmp(&get(rb, TcpState::TimeWait)),
            8 => fin_waits(ra).cmp(&fin_waits(rb)),
            _ => get(ra, TcpState::LastAck).cmp(&get(rb, TcpState::LastAck)),
        };
        let o = if worst_default && col == 0 && !desc {
            let cw = get(rb, TcpState::CloseWait).cmp(&get(ra, TcpState::CloseWait));
            let tw = get(rb, TcpState::TimeWait).cmp(&get(ra, TcpState::TimeWait));
            cw.then(tw).then(o)
        } else if desc {
            o.reverse()
        } else {
            o
        };
        o.then(ra.id.cmp(&rb.id))
    });
    idx.into_iter().map(Row::Netns).collect()
}

fn fin_waits(r: &NetnsRow) -> u32 {
    r.counts.get(TcpState::FinWait1) + r.counts.get(TcpState::FinWait2)
}
