//! The one definition of CLOSE_WAIT growth, shared by the `close-wait-lingering` alert and
//! the dashboard's CW/MIN column: the change in a process's CLOSE_WAIT count from the oldest
//! poll within `alerts.growth-window` to the current one, per minute. A single poll has no
//! growth; a leak that stops growing reads `steady` once its growth leaves the window.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use super::tracker::Sample;

/// The two polls a growth is measured between.
#[derive(Clone, Copy, Debug)]
pub struct GrowthSpan<'a> {
    from: &'a Sample,
    to: &'a Sample,
}

impl GrowthSpan<'_> {
    /// How many CLOSE_WAIT `pid` gained per minute over the span (negative when it lost).
    pub fn per_min(&self, pid: u32) -> f64 {
        let span = self
            .to
            .at
            .duration_since(self.from.at)
            .unwrap_or_default()
            .as_secs_f64();
        let count = |s: &Sample| f64::from(s.close_wait_by_pid.get(&pid).copied().unwrap_or(0));
        (count(self.to) - count(self.from)) * 60.0 / span
    }

    /// The span's length.
    pub fn length(&self) -> Duration {
        self.to.at.duration_since(self.from.at).unwrap_or_default()
    }
}

/// The span of `history` (the tracker's samples, oldest first, the current one last) a
/// growth at `now` is measured over: from the oldest sample other than the current one no
/// older than `window`, to the current one. `None` with fewer than two polls in the window.
pub fn growth_span(
    history: &VecDeque<Sample>,
    now: SystemTime,
    window: Duration,
) -> Option<GrowthSpan<'_>> {
    let to = history.back()?;
    let from = history
        .iter()
        .rev()
        .skip(1)
        .take_while(|s| now.duration_since(s.at).unwrap_or_default() <= window)
        .last()?;
    (to.at > from.at).then_some(GrowthSpan { from, to })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::StateCounts;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn sample(t: u64, cw: u32) -> Sample {
        Sample {
            at: at(t),
            counts: StateCounts::default(),
            close_wait_by_pid: [(7, cw)].into_iter().collect(),
        }
    }

    #[test]
    fn growth_is_over_the_window_and_steady_once_the_leak_stops() {
        let window = Duration::from_secs(60);
        // +1 a second for 120 s, then nothing new for 90 s.
        let mut h: VecDeque<Sample> = VecDeque::new();
        let mut seen = Vec::new();
        for t in 0..=210u64 {
            h.push_back(sample(t, t.min(120) as u32));
            seen.push(growth_span(&h, at(t), window).map(|g| g.per_min(7)));
        }
        assert_eq!(seen[0], None, "one poll: no growth");
        assert_eq!(seen[30], Some(60.0), "30 s in: over the 30 s there are");
        assert_eq!(seen[120], Some(60.0));
        // 15 s after it stopped: 45 gained over the last 60 s.
        assert_eq!(seen[135], Some(45.0));
        assert_eq!(seen[180], Some(0.0), "steady a window after");
        assert_eq!(seen[210], Some(0.0));
    }

    #[test]
    fn polls_further_apart_than_the_window_have_no_growth() {
        let h: VecDeque<Sample> = [sample(0, 1), sample(100, 5)].into_iter().collect();
        assert!(growth_span(&h, at(100), Duration::from_secs(60)).is_none());
        let g = growth_span(&h, at(100), Duration::from_secs(120)).unwrap();
        assert_eq!((g.per_min(7), g.length()), (2.4, Duration::from_secs(100)));
        assert_eq!(g.per_min(8), 0.0, "a pid without CLOSE_WAIT");
    }
}
