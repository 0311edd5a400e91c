//! What an alert is in words a person opening it needs: the state its rule watches, the rule
//! with its thresholds as configured, and the filter (in the language of `model::filter`)
//! that shows the connections behind it. The dashboard's alerts list reads these; they are
//! plain functions of an alert and the rules, so every output could.

use super::{Alert, RuleId, Rules};
use crate::model::duration::human_duration;
use crate::model::state::TcpState;

impl RuleId {
    /// The TCP state the rule is about; `None` for resets, which end connections in any state.
    pub fn state(self) -> Option<TcpState> {
        Some(match self {
            RuleId::CloseWaitLingering => TcpState::CloseWait,
            RuleId::TimeWaitBuildup
            | RuleId::TimeWaitRemote
            | RuleId::PortPressure
            | RuleId::TimeWaitOverflow => TcpState::TimeWait,
            RuleId::FinWait1Lingering => TcpState::FinWait1,
            RuleId::FinWait2Lingering => TcpState::FinWait2,
            RuleId::LastAckLingering => TcpState::LastAck,
            RuleId::ClosingLingering => TcpState::Closing,
            RuleId::ResetStorm => return None,
        })
    }
}

impl Rules {
    /// The rule `rule` with its thresholds as configured, in one line, e.g.
    /// "close-wait-lingering: per process, warning at 1, critical at 100 connections in
    /// CLOSE_WAIT for 30s or longer".
    pub fn describe(&self, rule: RuleId) -> String {
        let name = rule.name();
        let linger = |r: &super::LingerRule, state: TcpState| {
            format!(
                "{name}: warning at {}, critical at {} connections in {} for {} or longer",
                r.warning,
                r.critical,
                state.name(),
                human_duration(r.min_age)
            )
        };
        match rule {
            RuleId::CloseWaitLingering => format!(
                "{name}: per process, warning at {}, critical at {} connections in CLOSE_WAIT for {} or longer",
                self.close_wait.warning,
                self.close_wait.critical,
                human_duration(self.close_wait.min_age)
            ),
            RuleId::TimeWaitBuildup => format!(
                "{name}: warning at {}, critical at {} TIME_WAIT sockets on the host",
                self.time_wait_total.warning, self.time_wait_total.critical
            ),
            RuleId::TimeWaitRemote => format!(
                "{name}: warning at {}, critical at {} TIME_WAIT toward one remote IP:port",
                self.time_wait_per_remote.warning, self.time_wait_per_remote.critical
            ),
            RuleId::PortPressure => format!(
                "{name}: warning at {:.0}%, critical at {:.0}% of the ephemeral ports toward one remote IP:port",
                self.port_pressure.warning * 100.0,
                self.port_pressure.critical * 100.0
            ),
            RuleId::FinWait1Lingering => linger(&self.fin_wait_1, TcpState::FinWait1),
            RuleId::FinWait2Lingering => linger(&self.fin_wait_2, TcpState::FinWait2),
            RuleId::LastAckLingering => linger(&self.last_ack, TcpState::LastAck),
            RuleId::ClosingLingering => linger(&self.closing, TcpState::Closing),
            RuleId::ResetStorm => format!(
                "{name}: per process, warning at {}/s, critical at {}/s resets over {}",
                self.reset_storm.warning,
                self.reset_storm.critical,
                human_duration(self.reset_storm.window)
            ),
            RuleId::TimeWaitOverflow => format!(
                "{name}: warning at {}, critical at {} TIME_WAIT sockets dropped by the kernel within {}",
                self.time_wait_overflow.warning,
                self.time_wait_overflow.critical,
                human_duration(self.reset_storm.window)
            ),
        }
    }
}

impl Alert {
    /// The filter that shows the connections behind this alert: its rule's state, and the
    /// process, endpoints and namespace it names. A lingering rule's age threshold has no
    /// filter term, so its filter shows the younger connections of that state too; port
    /// pressure counts every state toward the endpoint, so it names no state.
    pub fn filter_text(&self) -> String {
        let mut terms = Vec::new();
        match (self.rule, self.rule.state()) {
            (RuleId::PortPressure, _) | (_, None) => {}
            (_, Some(state)) => terms.push(format!("state:{}", state.filter_name())),
        }
        if let Some(pid) = self.pid {
            terms.push(format!("pid:{pid}"));
        }
        if let Some(ip) = self.local_ip {
            terms.push(format!("local:{ip}"));
        }
        if let Some(remote) = self.remote {
            terms.push(format!("remote:{remote}"));
        }
        if let Some(ns) = &self.netns {
            // Quoted: names such as `sleep[812]` hold characters the filter would read.
            terms.push(format!("netns:\"{}\"", ns.replace('"', "")));
        }
        terms.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::{Connection, Filter, Severity};

    fn alert(rule: RuleId) -> Alert {
        Alert::new(rule, Severity::Warning, "m".into(), Vec::new())
    }

    /// Each alert's filter parses and keeps exactly the connections it names.
    #[test]
    fn an_alerts_filter_keeps_its_connections_and_no_others() {
        let cw = |local: &str, remote: &str, pid: u32, state| {
            let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
            c.owners = vec![crate::model::Owner {
                pid,
                name: Some("java".into()),
            }]
            .into();
            c
        };
        let mine = cw("10.0.0.1:8080", "10.0.0.9:5000", 3121, TcpState::CloseWait);
        let other_pid = cw("10.0.0.1:8080", "10.0.0.9:5001", 99, TcpState::CloseWait);
        let other_state = cw("10.0.0.1:8080", "10.0.0.9:5002", 3121, TcpState::TimeWait);

        let mut a = alert(RuleId::CloseWaitLingering);
        a.pid = Some(3121);
        let f = Filter::parse(&a.filter_text()).unwrap();
        assert_eq!(a.filter_text(), "state:close-wait pid:3121");
        assert!(f.matches(&mine));
        assert!(!f.matches(&other_pid));
        assert!(!f.matches(&other_state));

        let mut tw = alert(RuleId::TimeWaitRemote);
        tw.remote = Some("[2001:db8::7]:443".parse().unwrap());
        let f = Filter::parse(&tw.filter_text()).unwrap();
        let toward = cw(
            "[2001:db8::1]:40000",
            "[2001:db8::7]:443",
            1,
            TcpState::TimeWait,
        );
        let elsewhere = cw(
            "[2001:db8::1]:40001",
            "[2001:db8::7]:80",
            1,
            TcpState::TimeWait,
        );
        assert!(f.matches(&toward));
        assert!(!f.matches(&elsewhere));

        // Pressure counts every state toward the pair: no state term.
        let mut p = alert(RuleId::PortPressure);
        p.local_ip = Some("10.0.0.1".parse().unwrap());
        p.remote = Some("10.0.0.9:5000".parse().unwrap());
        assert_eq!(p.filter_text(), "local:10.0.0.1 remote:10.0.0.9:5000");
        let f = Filter::parse(&p.filter_text()).unwrap();
        assert!(f.matches(&mine));
        assert!(!f.matches(&other_pid));

        let mut ns = alert(RuleId::TimeWaitBuildup);
        ns.netns = Some(Arc::from("sleep[\"812]"));
        assert!(
            Filter::parse(&ns.filter_text()).is_ok(),
            "{}",
            ns.filter_text()
        );
        assert_eq!(alert(RuleId::ResetStorm).filter_text(), "");
    }

    /// The description carries the thresholds as configured, not the defaults.
    #[test]
    fn a_rule_is_described_with_the_configured_thresholds() {
        let mut r = Rules::default();
        r.close_wait.warning = 7;
        r.close_wait.critical = 70;
        r.close_wait.min_age = std::time::Duration::from_secs(5);
        let d = r.describe(RuleId::CloseWaitLingering);
        assert!(d.contains("warning at 7, critical at 70"), "{d}");
        assert!(d.contains("for 5 s or longer"), "{d}");
        r.port_pressure.warning = 0.25;
        assert!(r.describe(RuleId::PortPressure).contains("warning at 25%"));
        r.fin_wait_2.warning = 3;
        assert!(
            r.describe(RuleId::FinWait2Lingering)
                .contains("warning at 3, critical at 500 connections in FIN_WAIT_2")
        );
    }
}
