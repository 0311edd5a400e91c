//! What the dashboard's closes panel shows, gathered from the closes as they come: counts
//! since start and per second by kind, the processes that reset most, how long the
//! connections lived (and how many lived and died between two polls, which the socket table
//! never shows), lost events, and which source all this came from.
//!
//! Pure: the caller hands in closes, counter readings and the time; nothing here reads the
//! kernel or a clock.

use std::collections::VecDeque;
use std::time::Duration;

use super::close::{Close, CloseSource, CloseTally, CounterCloses, KindCounts, ProcessCloses};

/// How far back "per second" looks: long enough to smooth one poll's burst, short enough
/// that a storm that stopped stops showing within seconds.
pub const RATE_WINDOW: Duration = Duration::from_secs(5);

/// The lifetime histogram's upper bounds; a last bucket takes the rest.
pub const LIFETIME_BOUNDS: [Duration; 5] = [
    Duration::from_millis(1),
    Duration::from_millis(10),
    Duration::from_millis(100),
    Duration::from_secs(1),
    Duration::from_secs(10),
];

/// Closes counted up to one moment (time since the panel started), for rates.
#[derive(Clone, Debug)]
struct Mark {
    at: Duration,
    all: KindCounts,
    counters: CounterCloses,
    /// Resets (sent, by reason, and received) of each process that had any, for the storm
    /// rule.
    resets: rustc_hash::FxHashMap<u32, Resets>,
}

/// What happened over one span of time, for the close rules.
#[derive(Clone, Debug)]
pub struct Over {
    /// Each process's resets (sent plus received) per second, busiest first, with what
    /// they were over the span (the sent ones by reason).
    pub resets_per_s: Vec<(u32, f64, Resets)>,
    /// The counters' growth.
    pub counters: CounterCloses,
    /// The span's length in seconds.
    pub secs: f64,
}

/// Everything the closes panel shows.
#[derive(Clone, Debug)]
pub struct CloseStats {
    /// Where the closes come from.
    pub source: CloseSource,
    /// Why the kernel's events are not in use, when they are not.
    pub note: Option<String>,
    /// Since start, by kind and by process (the kernel's events only).
    pub tally: CloseTally,
    /// The counters' growth since start (the counters only).
    pub counters: CounterCloses,
    /// Records the kernel could not hand over (ring buffer full) or that the dashboard's
    /// queue dropped: shown, never silent.
    pub lost: u64,
    /// Lifetimes of the closes whose start was seen, by [`LIFETIME_BOUNDS`].
    pub lifetimes: [u64; LIFETIME_BOUNDS.len() + 1],
    /// Closes of sockets already open when the source started (no lifetime known).
    pub lifetime_unknown: u64,
    /// Connections that lived shorter than the poll interval: opened and closed between
    /// two polls, so the socket table may never have shown them.
    pub between_polls: u64,
    /// The poll interval `between_polls` is measured against.
    pub interval: Duration,
    marks: VecDeque<Mark>,
    now: Duration,
    /// How far back marks are kept: the rate window or the storm rule's, the longer.
    keep: Duration,
}

impl CloseStats {
    /// Nothing counted yet, from `source`.
    pub fn new(source: CloseSource, note: Option<String>, interval: Duration) -> Self {
        CloseStats {
            source,
            note,
            tally: CloseTally::default(),
            counters: CounterCloses::default(),
            lost: 0,
            lifetimes: [0; LIFETIME_BOUNDS.len() + 1],
            lifetime_unknown: 0,
            between_polls: 0,
            interval,
            marks: VecDeque::new(),
            now: Duration::ZERO,
            keep: RATE_WINDOW,
        }
    }

    /// Counts closes from the kernel's events.
    pub fn add_closes<'a>(&mut self, closes: impl IntoIterator<Item = &'a Close>) {
        for c in closes {
            self.tally.add(c);
            match c.lifetime_ns {
                Some(ns) => {
                    let life = Duration::from_nanos(ns);
                    let bucket = LIFETIME_BOUNDS
                        .iter()
                        .position(|b| life < *b)
                        .unwrap_or(LIFETIME_BOUNDS.len());
                    self.lifetimes[bucket] += 1;
                    if life < self.interval {
                        self.between_polls += 1;
                    }
                }
                None => self.lifetime_unknown += 1,
            }
        }
    }

    /// The counters' growth since start, as last read.
    pub fn set_counters(&mut self, since_start: CounterCloses) {
        self.counters = since_start;
    }

    /// Ends a moment at `at` (time since start): the rates are over the moments of the last
    /// [`RATE_WINDOW`].
    pub fn mark(&mut self, at: Duration) {
        self.now = at;
        let resets = self
            .tally
            .processes()
            .into_iter()
            .filter(|p| resets(p) > 0)
            .map(|p| (p.pid, Resets::of(&p.counts)))
            .collect();
        self.marks.push_back(Mark {
            at,
            all: self.tally.all.clone(),
            counters: self.counters,
            resets,
        });
        // Keep one mark at or before the longest window's start, so rates span it.
        while self.marks.len() > 2 && self.marks[1].at + self.keep <= at {
            self.marks.pop_front();
        }
    }

    /// Keeps marks for `window` too (the storm rule's), besides [`RATE_WINDOW`].
    pub fn keep_for(&mut self, window: Duration) {
        self.keep = window.max(RATE_WINDOW);
    }

    /// The newest mark at least `span` before the last one (else the oldest), the last,
    /// and the seconds between; `None` before two marks.
    fn span(&self, span: Duration) -> Option<(&Mark, &Mark, f64)> {
        let last = self.marks.back()?;
        let start = last.at.saturating_sub(span);
        let first = self
            .marks
            .iter()
            .rev()
            .find(|m| m.at <= start)
            .or(self.marks.front())?;
        let secs = (last.at.saturating_sub(first.at)).as_secs_f64();
        (secs > 0.0).then_some((first, last, secs))
    }

    /// The closes of the rate window, and how long it is; `None` before two marks.
    fn window(&self) -> Option<(&Mark, &Mark, f64)> {
        self.span(RATE_WINDOW)
    }

    /// Each process's resets per second over `span` (the processes with any), busiest
    /// first; and the counters' growth over that span with its length in seconds.
    pub fn over(&self, span: Duration) -> Option<Over> {
        let (first, last, secs) = self.span(span)?;
        let mut v: Vec<(u32, f64, Resets)> = last
            .resets
            .iter()
            .map(|(pid, now)| {
                let grew = now.since(&first.resets.get(pid).copied().unwrap_or_default());
                (*pid, (grew.sent + grew.received) as f64 / secs, grew)
            })
            .filter(|(_, r, _)| *r > 0.0)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(Over {
            resets_per_s: v,
            counters: last.counters.since(&first.counters),
            secs,
        })
    }

    /// Closes per second of one kind's count over the window (`get` picks the count).
    pub fn rate(&self, get: impl Fn(&KindCounts) -> u64) -> Option<f64> {
        let (first, last, secs) = self.window()?;
        Some(get(&last.all).saturating_sub(get(&first.all)) as f64 / secs)
    }

    /// Per second of one counter over the window.
    pub fn counter_rate(&self, get: impl Fn(&CounterCloses) -> u64) -> Option<f64> {
        let (first, last, secs) = self.window()?;
        Some(get(&last.counters).saturating_sub(get(&first.counters)) as f64 / secs)
    }

    /// The `n` processes with the most resets (sent plus received), most first, then by pid.
    pub fn top_resetters(&self, n: usize) -> Vec<&ProcessCloses> {
        let mut v: Vec<&ProcessCloses> = self
            .tally
            .processes()
            .into_iter()
            .filter(|p| resets(p) > 0)
            .collect();
        v.sort_by_key(|p| (std::cmp::Reverse(resets(p)), p.pid));
        v.truncate(n);
        v
    }

    /// Resets sent (with why) and received by `pid`; `None` when the source cannot tell
    /// processes apart (the counters are per namespace).
    pub fn resets_of(&self, pid: u32) -> Option<Resets> {
        if self.source != CloseSource::Kernel {
            return None;
        }
        Some(
            self.tally
                .process(pid)
                .map_or(Resets::default(), |p| Resets::of(&p.counts)),
        )
    }

    /// Time since the panel started, as of the last mark.
    pub fn elapsed(&self) -> Duration {
        self.now
    }
}

/// One process's resets: sent, the sent ones by reason, and received.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resets {
    pub sent: u64,
    /// Sent by close() with data unread: the application closed without reading (a bug).
    pub unread_data: u64,
    /// Sent by close() with SO_LINGER {1, 0}: aborted on purpose.
    pub linger0: u64,
    pub received: u64,
}

impl Resets {
    pub fn of(k: &KindCounts) -> Self {
        Resets {
            sent: k.reset_sent,
            unread_data: k.reset_sent_unread_data,
            linger0: k.reset_sent_linger0,
            received: k.reset_received,
        }
    }

    /// What grew from `earlier` to `self`.
    pub fn since(&self, earlier: &Resets) -> Resets {
        Resets {
            sent: self.sent.saturating_sub(earlier.sent),
            unread_data: self.unread_data.saturating_sub(earlier.unread_data),
            linger0: self.linger0.saturating_sub(earlier.linger0),
            received: self.received.saturating_sub(earlier.received),
        }
    }

    /// The resets sent by why, for a message: `30 unread-data, 10 linger-0` (the reasons
    /// with any), or `none` when none were sent.
    pub fn sent_by_reason(&self) -> String {
        let parts: Vec<String> = [
            (self.unread_data, "unread-data"),
            (self.linger0, "linger-0"),
            (self.other(), "other"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Sent for another reason the kernel gave.
    pub fn other(&self) -> u64 {
        self.sent
            .saturating_sub(self.unread_data)
            .saturating_sub(self.linger0)
    }
}

fn resets(p: &ProcessCloses) -> u64 {
    p.counts.reset_sent + p.counts.reset_received
}

#[cfg(test)]
mod tests;
