//! CLOSE_WAIT lingering: the peer closed and the local process never called close(). One
//! alert per owning process, with how fast its count grows over `alerts.growth-window`
//! (`model::growth`, the dashboard's CW/MIN too).

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;

use super::{Alert, LingerRule, RuleId, Rules, human_duration, place_of, severity_of};
use crate::model::connection::Connection;
use crate::model::growth::growth_span;
use crate::model::netns::{NetnsId, NetnsTable};
use crate::model::tracker::Sample;

/// The CLOSE_WAIT connections past the rule's age, per network namespace and owning
/// process (connections without an owner are grouped together, per namespace).
pub(super) struct CloseWaits<'r> {
    rule: &'r LingerRule,
    by_pid: FxHashMap<(NetnsId, Option<u32>), Vec<usize>>,
}

impl<'r> CloseWaits<'r> {
    pub(super) fn new(rules: &'r Rules) -> Self {
        CloseWaits {
            rule: &rules.close_wait,
            by_pid: FxHashMap::default(),
        }
    }

    /// Takes connection `i`, in CLOSE_WAIT.
    pub(super) fn visit(&mut self, i: usize, c: &Connection, now: SystemTime) {
        let rule = self.rule;
        if rule.enabled && c.state_age(now).is_some_and(|a| a >= rule.min_age) {
            self.by_pid
                .entry((c.netns(), c.owner().map(|o| o.pid)))
                .or_default()
                .push(i);
        }
    }

    /// One alert per process at a threshold; `history` gives the growth over `window`;
    /// `netns` names the namespace where it is not the host's ("in container orders-api").
    pub(super) fn alerts(
        self,
        conns: &[Connection],
        netns: &NetnsTable,
        now: SystemTime,
        history: &VecDeque<Sample>,
        window: Duration,
        alerts: &mut Vec<Alert>,
    ) {
        let rule = self.rule;
        if !rule.enabled {
            return;
        }
        // The one growth definition, shared with the dashboard's CW/MIN.
        let span = growth_span(history, now, window);
        for ((ns, pid), idx) in self.by_pid {
            let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
            let Some(sev) = severity_of(n, rule.warning, rule.critical) else {
                continue;
            };
            let name = conns[idx[0]].owner().and_then(|o| o.name.clone());
            let growth = pid.zip(span).map(|(pid, span)| span.per_min(pid));
            let who = match (pid, &name) {
                (Some(pid), Some(name)) => format!("{name} (pid {pid})"),
                (Some(pid), None) => format!("pid {pid}"),
                (None, _) => "an unknown process (no owner visible; run as root)".to_string(),
            };
            let (in_place, place) = place_of(netns, ns);
            let mut msg = format!(
                "{n} CLOSE_WAIT held by {who}{in_place} for > {}",
                human_duration(rule.min_age)
            );
            match (growth, span) {
                (Some(g), _) => msg.push_str(&format!(", {}", rate(g))),
                // Ages can come from the kernel on one poll; a growth needs two.
                (None, None) if history.len() <= 1 => msg.push_str(", growth unknown (one poll)"),
                (None, None) => {
                    msg.push_str(", growth unknown (no earlier poll in the growth window)")
                }
                (None, Some(_)) => {}
            }
            msg.push_str(": the peer closed and the process never called close()");
            let mut a = Alert::new(RuleId::CloseWaitLingering, sev, msg, idx);
            a.pid = pid;
            a.process = name;
            a.growth_per_min = growth;
            a.netns = place;
            alerts.push(a);
        }
    }
}

/// `+40/min`, `-3/min`, `steady`.
fn rate(per_min: f64) -> String {
    let r = per_min.round();
    if r == 0.0 {
        "steady".to_string()
    } else {
        format!("{r:+}/min")
    }
}
