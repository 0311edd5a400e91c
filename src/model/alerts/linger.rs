//! The close states other than CLOSE_WAIT and TIME_WAIT lingering past an age: FIN_WAIT_1,
//! FIN_WAIT_2, LAST_ACK and CLOSING, each with its own thresholds and its own reason.

use std::time::SystemTime;

use super::{Alert, LingerRule, RuleId, Rules, human_duration, severity_of};
use crate::model::connection::Connection;
use crate::model::state::TcpState;

/// One lingering rule: its thresholds, the state it watches, its id and why it matters.
type Family<'r> = (&'r LingerRule, TcpState, RuleId, &'static str);

/// The connections past each lingering rule's age.
pub(super) struct Lingering<'r> {
    families: [Family<'r>; 4],
    found: [Vec<usize>; 4],
}

impl<'r> Lingering<'r> {
    pub(super) fn new(rules: &'r Rules) -> Self {
        let families = [
            (
                &rules.fin_wait_1,
                TcpState::FinWait1,
                RuleId::FinWait1Lingering,
                "our FIN is not acknowledged, often data queued to a peer that does not read",
            ),
            (
                &rules.fin_wait_2,
                TcpState::FinWait2,
                RuleId::FinWait2Lingering,
                "we closed, the peer never sent its FIN",
            ),
            (
                &rules.last_ack,
                TcpState::LastAck,
                RuleId::LastAckLingering,
                "our FIN is sent, the peer's last ACK never came",
            ),
            (
                &rules.closing,
                TcpState::Closing,
                RuleId::ClosingLingering,
                "both sides closed at once and the final ACK is missing",
            ),
        ];
        Lingering {
            families,
            found: Default::default(),
        }
    }

    /// Takes connection `i`, in `state` (any state; those no rule watches are skipped).
    pub(super) fn visit(&mut self, i: usize, c: &Connection, state: TcpState, now: SystemTime) {
        if let Some(k) = self.families.iter().position(|r| r.1 == state) {
            let rule = self.families[k].0;
            if rule.enabled && c.state_age(now).is_some_and(|a| a >= rule.min_age) {
                self.found[k].push(i);
            }
        }
    }

    /// One alert per rule at a threshold.
    pub(super) fn alerts(self, alerts: &mut Vec<Alert>) {
        for ((rule, state, id, why), idx) in self.families.into_iter().zip(self.found) {
            if !rule.enabled {
                continue;
            }
            let n = u32::try_from(idx.len()).unwrap_or(u32::MAX);
            if let Some(sev) = severity_of(n, rule.warning, rule.critical) {
                let msg = format!(
                    "{n} {} for > {}: {why}",
                    state.name(),
                    human_duration(rule.min_age)
                );
                alerts.push(Alert::new(id, sev, msg, idx));
            }
        }
    }
}
