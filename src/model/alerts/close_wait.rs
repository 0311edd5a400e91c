//! CLOSE_WAIT lingering: the peer closed and the local process never called close(). One
//! alert per owning process, with how fast its count grows over the tracker's window.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;

use super::{Alert, LingerRule, RuleId, Rules, human_duration, severity_of};
use crate::model::connection::Connection;
use crate::model::tracker::Sample;

/// The CLOSE_WAIT connections past the rule's age, per owning process (connections without
/// an owner are grouped together).
pub(super) struct CloseWaits<'r> {
    rule: &'r LingerRule,
    by_pid: FxHashMap<Option<u32>, Vec<usize>>,
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
                .entry(c.owner().map(|o| o.pid))
                .or_default()
                .push(i);
        }
    }

    /// One alert per process at a threshold; `history` gives the growth over `window`.
    pub(super) fn alerts(
        self,
        conns: &[Connection],
        now: SystemTime,
        history: &VecDeque<Sample>,
        window: Duration,
        alerts: &mut Vec<Alert>,
    ) {
        let rule = self.rule;
        if !rule.enabled {
            return;
        }
        // The oldest sample inside the window, other than the current one, anchors growth.
        let anchor = history
            .iter()
            .rev()
            .skip(1)
            .take_while(|s| now.duration_since(s.at).unwrap_or_default() <= window)
            .last();
        let current = history.back();
        for (pid, idx) in self.by_pid {
            let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
            let Some(sev) = severity_of(n, rule.warning, rule.critical) else {
                continue;
            };
            let name = conns[idx[0]].owner().and_then(|o| o.name.clone());
            let growth = match (pid, anchor, current) {
                (Some(pid), Some(a), Some(c)) => {
                    let span = c.at.duration_since(a.at).unwrap_or_default().as_secs_f64();
                    let then = f64::from(a.close_wait_by_pid.get(&pid).copied().unwrap_or(0));
                    let now_n = f64::from(c.close_wait_by_pid.get(&pid).copied().unwrap_or(0));
                    (span > 0.0).then(|| (now_n - then) * 60.0 / span)
                }
                _ => None,
            };
            let who = match (pid, &name) {
                (Some(pid), Some(name)) => format!("{name} (pid {pid})"),
                (Some(pid), None) => format!("pid {pid}"),
                (None, _) => "an unknown process (no owner visible; run as root)".to_string(),
            };
            let mut msg = format!(
                "{n} CLOSE_WAIT held by {who} for > {}",
                human_duration(rule.min_age)
            );
            if let Some(g) = growth {
                msg.push_str(&format!(", {}", rate(g)));
            }
            msg.push_str(": the peer closed and the process never called close()");
            let mut a = Alert::new(RuleId::CloseWaitLingering, sev, msg, idx);
            a.pid = pid;
            a.process = name;
            a.growth_per_min = growth;
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
