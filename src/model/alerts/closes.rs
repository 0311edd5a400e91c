//! The close rules: a reset storm per process (resets sent plus received per second over
//! `alerts.reset-storm.window`, from the kernel's events) and any TIME_WAIT overflow (the
//! kernel's `TCPTimeWaitOverflow` grew within that window, from the counters). They run over
//! [`CloseStats`], which the dashboard, `watch` and `snapshot --interval` keep (`mode::closes`).

use std::collections::VecDeque;
use std::time::Duration;

use super::{Alert, RuleId, Rules, place_of, severity_of};
use crate::model::close_stats::CloseStats;
use crate::model::netns::{NetnsId, NetnsTable};
use crate::model::{CloseSource, CounterCloses};

/// The close rules' alerts over `stats`, worst first.
pub fn close_alerts(stats: &CloseStats, rules: &Rules) -> Vec<Alert> {
    close_alerts_in(stats, rules, &NetnsTable::default())
}

/// [`close_alerts`], a storm naming the namespace (`netns` knows it) of the process's
/// closes where it is not the host's.
pub fn close_alerts_in(stats: &CloseStats, rules: &Rules, netns: &NetnsTable) -> Vec<Alert> {
    let storm = &rules.reset_storm;
    let Some(over) = stats.over(storm.window) else {
        return Vec::new();
    };
    let secs = over.secs;
    let mut out = Vec::new();
    if storm.enabled && stats.source == CloseSource::Kernel {
        for &(pid, rate, grew) in &over.resets_per_s {
            // Rounded down: 49.9/s is not yet a storm at 50.
            let per_s = rate.floor() as u32;
            let Some(severity) = severity_of(per_s, storm.warning, storm.critical) else {
                continue;
            };
            let process = stats.tally.process(pid);
            let name = process.map(|p| p.name.clone());
            let shown = name.as_deref().map(crate::sanitize::message);
            let (in_place, place) = match process.and_then(|p| netns.by_inode(u64::from(p.netns))) {
                Some(n) => place_of(netns, n.id),
                None => (String::new(), None),
            };
            let mut a = Alert::new(
                RuleId::ResetStorm,
                severity,
                format!(
                    "{per_s} resets/s by {} (pid {pid}){in_place} over {}: connections abort instead of closing (sent {}: {}; received {})",
                    shown.as_deref().unwrap_or("?"),
                    crate::model::duration::compact(std::time::Duration::from_secs_f64(secs)),
                    grew.sent,
                    grew.sent_by_reason(),
                    grew.received,
                ),
                Vec::new(),
            );
            a.count = per_s;
            a.pid = Some(pid);
            a.process = name;
            a.netns = place;
            out.push(a);
        }
    }
    out.extend(time_wait_overflow(
        over.counters.time_wait_overflow,
        std::time::Duration::from_secs_f64(secs),
        rules,
        "",
    ));
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.count.cmp(&a.count)));
    out
}

/// The TIME_WAIT-overflow alert for `dropped` sockets the kernel's `TCPTimeWaitOverflow`
/// counted over `within` (`in_place`: " in netns blue", or "" for lingertop's own); none
/// below the rule's warning or with the rule off.
pub fn time_wait_overflow(
    dropped: u64,
    within: std::time::Duration,
    rules: &Rules,
    in_place: &str,
) -> Option<Alert> {
    let tw = &rules.time_wait_overflow;
    let dropped = u32::try_from(dropped).unwrap_or(u32::MAX);
    if !tw.enabled || dropped == 0 {
        return None;
    }
    let severity = severity_of(dropped, tw.warning, tw.critical)?;
    let mut a = Alert::new(
        RuleId::TimeWaitOverflow,
        severity,
        format!(
            "{dropped} TIME_WAIT sockets dropped by the kernel{in_place} in {}: tcp_max_tw_buckets reached; raise it or close fewer connections first",
            crate::model::duration::compact(within),
        ),
        Vec::new(),
    );
    a.count = dropped;
    Some(a)
}

/// Each network namespace's `TCPTimeWaitOverflow`, poll by poll, over the close rules'
/// window: the kernel counts a container's dropped TIME_WAIT in its namespace only.
#[derive(Debug, Default)]
pub struct OverflowWindow {
    /// (time since start, [(namespace inode, counter)]), oldest first.
    marks: VecDeque<(Duration, Vec<(u64, u64)>)>,
}

impl OverflowWindow {
    /// Adds the counters of one poll (`netns` names its ids) taken `at`, keeping one mark
    /// at or before `window` ago.
    pub fn mark(
        &mut self,
        at: Duration,
        counters: &[(NetnsId, CounterCloses)],
        netns: &NetnsTable,
        window: Duration,
    ) {
        // By inode: an id names another namespace once the first is gone.
        let now = counters
            .iter()
            .map(|(id, c)| (netns.get(*id).map_or(0, |n| n.inode), c.time_wait_overflow))
            .collect();
        self.marks.push_back((at, now));
        while self.marks.len() > 2 && self.marks[1].0 + window <= at {
            self.marks.pop_front();
        }
    }

    /// One alert per namespace whose counter grew over the window, naming it where it is not
    /// the host's, most dropped first.
    pub fn alerts(&self, netns: &NetnsTable, rules: &Rules) -> Vec<Alert> {
        let Some((last_at, last)) = self.marks.back() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for &(inode, value) in last {
            // The oldest mark that saw this namespace: one that appeared within the window
            // counts from its first sight.
            let Some((first_at, before)) = self
                .marks
                .iter()
                .find_map(|(at, m)| m.iter().find(|(i, _)| *i == inode).map(|(_, v)| (*at, *v)))
            else {
                continue;
            };
            let dropped = value.saturating_sub(before);
            let within = last_at.saturating_sub(first_at);
            if dropped == 0 || within.is_zero() {
                continue;
            }
            let ns = netns.by_inode(inode);
            let (in_place, place) = match ns {
                Some(n) => place_of(netns, n.id),
                None => (String::new(), None),
            };
            if let Some(mut a) = time_wait_overflow(dropped, within, rules, &in_place) {
                a.netns = place;
                out.push(a);
            }
        }
        out.sort_by(|a, b| b.severity.cmp(&a.severity).then(b.count.cmp(&a.count)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::close::{Close, CloseKind, CounterCloses, ResetReason};
    use crate::model::{RuleId, Severity};
    use std::time::Duration;

    fn resets(pid: u32, n: usize) -> Vec<Close> {
        let c = Close::sample(
            CloseKind::ResetSent,
            Some(ResetReason::Linger0),
            Some((pid, "storm")),
            None,
        );
        vec![c; n]
    }

    fn stats(source: CloseSource) -> CloseStats {
        let mut s = CloseStats::new(source, None, Duration::from_secs(1));
        s.keep_for(Rules::default().reset_storm.window);
        s.mark(Duration::ZERO);
        s
    }

    #[test]
    fn a_process_over_the_rate_storms_and_one_under_it_does_not() {
        let rules = Rules::default();
        let mut s = stats(CloseSource::Kernel);
        // Over 10 s: 60/s from pid 1 (warning at 50), 40/s from pid 2.
        s.add_closes(&resets(1, 600));
        s.add_closes(&resets(2, 400));
        s.mark(Duration::from_secs(10));
        let a = close_alerts(&s, &rules);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(
            (a[0].rule, a[0].severity, a[0].pid, a[0].count),
            (RuleId::ResetStorm, Severity::Warning, Some(1), 60)
        );
        // Why, from the window's own closes: all aborted on purpose.
        assert!(
            a[0].message
                .ends_with("(sent 600: 600 linger-0; received 0)"),
            "{}",
            a[0].message
        );
        // Quiet for a whole window: the storm is over.
        s.mark(Duration::from_secs(20));
        assert!(close_alerts(&s, &rules).is_empty());
    }

    #[test]
    fn any_time_wait_overflow_in_the_window_alerts_whatever_the_source() {
        let rules = Rules::default();
        let mut s = stats(CloseSource::Counters);
        s.set_counters(CounterCloses {
            time_wait_overflow: 3,
            ..CounterCloses::default()
        });
        s.mark(Duration::from_secs(2));
        let a = close_alerts(&s, &rules);
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!((a[0].rule, a[0].count), (RuleId::TimeWaitOverflow, 3));
        assert!(
            a[0].message.contains("tcp_max_tw_buckets"),
            "{}",
            a[0].message
        );
        let mut off = rules.clone();
        off.time_wait_overflow.enabled = false;
        assert!(close_alerts(&s, &off).is_empty());
    }
}
