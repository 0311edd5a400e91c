//! How connections ended: the close kinds, defined once and shared by every output, and the
//! counts of closes by kind and by process.
//!
//! Each kind comes from the source that can really tell it. The kernel's events
//! (`events::`) see every close of a full socket and who owned it; the kernel's counters
//! (`/proc/net/snmp`, `/proc/net/netstat`) need no privilege but count only some kinds and
//! only host-wide (per network namespace); a TIME_WAIT overflow is only ever seen there.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::Serialize;

use super::TcpState;

/// How one connection ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseKind {
    /// This end sent its FIN first (FIN_WAIT_1 ... and TIME_WAIT, or CLOSING).
    GracefulActive,
    /// The peer's FIN came first; this end answered (CLOSE_WAIT -> LAST_ACK).
    GracefulPassive,
    /// This end aborted the connection with a RST; why is in [`ResetReason`].
    ResetSent,
    /// The peer aborted the connection with a RST.
    ResetReceived,
    /// The kernel gave up: retransmissions or keepalives unanswered, no FIN and no RST seen.
    Timeout,
}

impl CloseKind {
    /// Every kind, in the order outputs list them.
    pub const ALL: [CloseKind; 5] = [
        CloseKind::GracefulActive,
        CloseKind::GracefulPassive,
        CloseKind::ResetSent,
        CloseKind::ResetReceived,
        CloseKind::Timeout,
    ];

    /// The kebab-case name every output uses (JSON, metric labels).
    pub fn name(self) -> &'static str {
        match self {
            CloseKind::GracefulActive => "graceful-active",
            CloseKind::GracefulPassive => "graceful-passive",
            CloseKind::ResetSent => "reset-sent",
            CloseKind::ResetReceived => "reset-received",
            CloseKind::Timeout => "timeout",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for CloseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why this end sent a RST.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResetReason {
    /// close() with data still unread in the receive queue (the kernel's
    /// `TCP_ABORT_ON_CLOSE`, counted in `TCPAbortOnClose`).
    UnreadData,
    /// close() with SO_LINGER {1, 0}: an abortive close by request (counted in
    /// `TCPAbortOnData`, which also counts data arriving after close).
    Linger0,
    /// Any other reason the kernel gives (its `enum sk_rst_reason` number).
    Other(u8),
}

impl ResetReason {
    /// The label outputs use: `unread-data`, `linger-0`, `other`.
    pub fn name(self) -> &'static str {
        match self {
            ResetReason::UnreadData => "unread-data",
            ResetReason::Linger0 => "linger-0",
            ResetReason::Other(_) => "other",
        }
    }
}

/// Where a close or a count came from; every output says which.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseSource {
    /// The kernel's own events (eBPF): every close, with its owner.
    Kernel,
    /// The kernel's counters: per namespace, some kinds only, no owner.
    Counters,
}

impl CloseSource {
    /// `kernel` or `counters`.
    pub fn name(self) -> &'static str {
        match self {
            CloseSource::Kernel => "kernel",
            CloseSource::Counters => "counters",
        }
    }
}

/// The process a close is attributed to: the socket's owner as last seen in process
/// context (a connect, listen, send, receive or close on it), never the task that happened to
/// run the last event (passive transitions run in softirq, on loopback in the peer's task).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct CloseOwner {
    pub pid: u32,
    /// The task's name as the kernel keeps it (at most 15 bytes).
    pub name: Arc<str>,
}

/// One connection's end, as the kernel's events told it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Close {
    pub kind: CloseKind,
    /// Set for [`CloseKind::ResetSent`].
    pub reason: Option<ResetReason>,
    /// `None` when no process-context event was seen for the socket.
    pub owner: Option<CloseOwner>,
    /// The owner is the listener's: an accepted socket its process never acted on in
    /// process context before it ended (a reset received, say).
    pub owner_via_listener: bool,
    /// The connection's last known ends (the kernel zeroes them on a linger-0 close, so they
    /// are kept from earlier events).
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// The socket cookie, as sock_diag reports it.
    pub cookie: u64,
    /// Inode of the socket's network namespace.
    pub netns: u32,
    /// From the first event seen to the destroy; `None` when the socket was already open
    /// when the event source started.
    pub lifetime_ns: Option<u64>,
    /// Every state the socket went through, in order, as the kernel reported them.
    pub states: Vec<TcpState>,
    /// SO_LINGER was on at the close: its deadline in kernel ticks (jiffies). A deadline that
    /// passes moves no counter and makes no event; this is as much as the kernel shows.
    pub linger_ticks: Option<u64>,
    /// CLOCK_MONOTONIC nanoseconds of the destroy.
    pub at_ns: u64,
    /// The lingertop process that closed this connection from outside (`lingertop close`):
    /// lingertop's action, counted apart, never as the owner's own close or reset.
    pub action: Option<CloseOwner>,
}

impl Close {
    /// A close of `kind` with nothing else known but what is given: for fixtures.
    #[cfg(any(test, feature = "test-support"))]
    pub fn sample(
        kind: CloseKind,
        reason: Option<ResetReason>,
        owner: Option<(u32, &str)>,
        lifetime_ns: Option<u64>,
    ) -> Close {
        Close {
            kind,
            reason,
            owner: owner.map(|(pid, name)| CloseOwner {
                pid,
                name: name.into(),
            }),
            owner_via_listener: false,
            local: None,
            remote: None,
            cookie: 1,
            netns: 1,
            lifetime_ns,
            states: vec![],
            linger_ticks: None,
            at_ns: 0,
            action: None,
        }
    }
}

/// Counts per kind; reset-sent split by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    pub graceful_active: u64,
    pub graceful_passive: u64,
    pub reset_sent: u64,
    pub reset_sent_unread_data: u64,
    pub reset_sent_linger0: u64,
    pub reset_sent_other: u64,
    pub reset_received: u64,
    pub timeout: u64,
}

impl KindCounts {
    /// Counts one close.
    pub fn add(&mut self, kind: CloseKind, reason: Option<ResetReason>) {
        match kind {
            CloseKind::GracefulActive => self.graceful_active += 1,
            CloseKind::GracefulPassive => self.graceful_passive += 1,
            CloseKind::ResetSent => {
                self.reset_sent += 1;
                match reason {
                    Some(ResetReason::UnreadData) => self.reset_sent_unread_data += 1,
                    Some(ResetReason::Linger0) => self.reset_sent_linger0 += 1,
                    Some(ResetReason::Other(_)) | None => self.reset_sent_other += 1,
                }
            }
            CloseKind::ResetReceived => self.reset_received += 1,
            CloseKind::Timeout => self.timeout += 1,
        }
    }

    /// The count of one kind.
    pub fn get(&self, kind: CloseKind) -> u64 {
        [
            self.graceful_active,
            self.graceful_passive,
            self.reset_sent,
            self.reset_received,
            self.timeout,
        ][kind.index()]
    }

    /// Every close counted.
    pub fn total(&self) -> u64 {
        CloseKind::ALL.iter().map(|k| self.get(*k)).sum()
    }
}

/// The closes of one process.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProcessCloses {
    pub pid: u32,
    pub name: Arc<str>,
    pub counts: KindCounts,
    /// Inode of the network namespace of its latest close (a container's, say).
    #[serde(skip)]
    pub netns: u32,
}

/// The closes lingertop made from outside, by how: a graceful one ends as the graceful
/// closes do, an abort with the RST the destroy sent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ActionCounts {
    pub graceful: u64,
    pub abort: u64,
}

impl ActionCounts {
    fn add(&mut self, c: &Close) {
        match c.kind {
            CloseKind::ResetSent => self.abort += 1,
            _ => self.graceful += 1,
        }
    }
}

/// Closes since start, by kind and by process. Processes are kept by pid; `top` gives the
/// busiest few, and a process once listed stays listed (see [`CloseTally::shown`]) so a
/// counter a scraper has seen keeps counting.
#[derive(Clone, Debug, Default)]
pub struct CloseTally {
    /// Every close.
    pub all: KindCounts,
    /// Closes whose socket had no known owner.
    pub unowned: KindCounts,
    /// Closes lingertop made from outside ([`Close::action`]), counted here only.
    pub actions: ActionCounts,
    by_pid: rustc_hash::FxHashMap<u32, ProcessCloses>,
}

impl CloseTally {
    /// Counts one close.
    pub fn add(&mut self, c: &Close) {
        if c.action.is_some() {
            self.actions.add(c);
            return;
        }
        self.all.add(c.kind, c.reason);
        match &c.owner {
            Some(o) => {
                let p = self.by_pid.entry(o.pid).or_insert_with(|| ProcessCloses {
                    pid: o.pid,
                    name: o.name.clone(),
                    counts: KindCounts::default(),
                    netns: c.netns,
                });
                p.counts.add(c.kind, c.reason);
                p.netns = c.netns;
            }
            None => self.unowned.add(c.kind, c.reason),
        }
    }

    /// One process's closes.
    pub fn process(&self, pid: u32) -> Option<&ProcessCloses> {
        self.by_pid.get(&pid)
    }

    /// Every process with a close, busiest first (then by pid, so the order is stable).
    pub fn processes(&self) -> Vec<&ProcessCloses> {
        let mut v: Vec<&ProcessCloses> = self.by_pid.values().collect();
        v.sort_by_key(|p| (std::cmp::Reverse(p.counts.total()), p.pid));
        v
    }

    /// The processes `shown` already holds plus the busiest others until there are `n`, and
    /// the sum of everyone else as `other`. `shown` grows and never shrinks, so a series once
    /// exported keeps counting and every exported counter stays monotonic.
    pub fn top(&self, n: usize, shown: &mut Vec<u32>) -> (Vec<&ProcessCloses>, KindCounts) {
        for p in self.processes() {
            if shown.len() >= n {
                break;
            }
            if !shown.contains(&p.pid) {
                shown.push(p.pid);
            }
        }
        let listed: Vec<&ProcessCloses> = shown.iter().filter_map(|p| self.by_pid.get(p)).collect();
        let mut other = self.unowned.clone();
        for p in self.by_pid.values() {
            if !shown.contains(&p.pid) {
                other.merge(&p.counts);
            }
        }
        (listed, other)
    }
}

impl KindCounts {
    fn merge(&mut self, o: &KindCounts) {
        self.graceful_active += o.graceful_active;
        self.graceful_passive += o.graceful_passive;
        self.reset_sent += o.reset_sent;
        self.reset_sent_unread_data += o.reset_sent_unread_data;
        self.reset_sent_linger0 += o.reset_sent_linger0;
        self.reset_sent_other += o.reset_sent_other;
        self.reset_received += o.reset_received;
        self.timeout += o.timeout;
    }
}

/// The kernel's TCP counters of one network namespace, as closes by kind where they count
/// them (`/proc/net/snmp` `Tcp:` and `/proc/net/netstat` `TcpExt:`). Graceful closes and resets
/// received have no counter of their own; a TIME_WAIT overflow has nothing else.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CounterCloses {
    /// `OutRsts`: every RST sent, including answers to segments for no connection.
    pub resets_sent: u64,
    /// `TCPAbortOnClose`: close() with unread data.
    pub reset_sent_unread_data: u64,
    /// `TCPAbortOnData`: SO_LINGER {1, 0} closes, and data arriving after close.
    pub reset_sent_linger0: u64,
    /// `TCPAbortOnMemory`: orphans aborted for lack of memory.
    pub reset_sent_memory: u64,
    /// `TCPAbortOnTimeout`: given up after retransmissions or keepalives.
    pub timeout: u64,
    /// `EstabResets`: ESTABLISHED or CLOSE_WAIT straight to CLOSE, a RST either way.
    pub established_resets: u64,
    /// `TCPTimeWaitOverflow`: TIME_WAIT sockets not created (`tcp_max_tw_buckets` reached).
    pub time_wait_overflow: u64,
    /// `TW`: TIME_WAIT sockets that ended by their timer.
    pub time_wait_done: u64,
    /// `ActiveOpens`, `PassiveOpens`, `AttemptFails`.
    pub active_opens: u64,
    pub passive_opens: u64,
    pub attempt_fails: u64,
}

/// Finds `key` in the `prefix:` section of a `/proc/net/{snmp,netstat}` text, which holds a
/// line of names followed by a line of values for each section.
fn counter_field(text: &str, prefix: &str, key: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == key)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

impl CounterCloses {
    /// The closes the counters tell, from the texts of one namespace's `/proc/net/snmp` and
    /// `/proc/net/netstat`. A counter the kernel does not have reads as 0.
    pub fn parse(snmp: &str, netstat: &str) -> CounterCloses {
        let tcp = |k| counter_field(snmp, "Tcp:", k).unwrap_or(0);
        let ext = |k| counter_field(netstat, "TcpExt:", k).unwrap_or(0);
        CounterCloses {
            resets_sent: tcp("OutRsts"),
            reset_sent_unread_data: ext("TCPAbortOnClose"),
            reset_sent_linger0: ext("TCPAbortOnData"),
            reset_sent_memory: ext("TCPAbortOnMemory"),
            timeout: ext("TCPAbortOnTimeout"),
            established_resets: tcp("EstabResets"),
            time_wait_overflow: ext("TCPTimeWaitOverflow"),
            time_wait_done: ext("TW"),
            active_opens: tcp("ActiveOpens"),
            passive_opens: tcp("PassiveOpens"),
            attempt_fails: tcp("AttemptFails"),
        }
    }

    /// What grew from `earlier` to `self`; a counter that went back (another namespace, a
    /// wrapped value) counts as 0 rather than as a huge rise.
    pub fn since(&self, earlier: &CounterCloses) -> CounterCloses {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        CounterCloses {
            resets_sent: d(self.resets_sent, earlier.resets_sent),
            reset_sent_unread_data: d(self.reset_sent_unread_data, earlier.reset_sent_unread_data),
            reset_sent_linger0: d(self.reset_sent_linger0, earlier.reset_sent_linger0),
            reset_sent_memory: d(self.reset_sent_memory, earlier.reset_sent_memory),
            timeout: d(self.timeout, earlier.timeout),
            established_resets: d(self.established_resets, earlier.established_resets),
            time_wait_overflow: d(self.time_wait_overflow, earlier.time_wait_overflow),
            time_wait_done: d(self.time_wait_done, earlier.time_wait_done),
            active_opens: d(self.active_opens, earlier.active_opens),
            passive_opens: d(self.passive_opens, earlier.passive_opens),
            attempt_fails: d(self.attempt_fails, earlier.attempt_fails),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(kind: CloseKind, reason: Option<ResetReason>, pid: Option<u32>) -> Close {
        Close {
            kind,
            reason,
            owner: pid.map(|pid| CloseOwner {
                pid,
                name: format!("p{pid}").into(),
            }),
            owner_via_listener: false,
            local: None,
            remote: None,
            cookie: 1,
            netns: 1,
            lifetime_ns: None,
            states: vec![],
            linger_ticks: None,
            at_ns: 0,
            action: None,
        }
    }

    #[test]
    fn resets_sent_count_once_overall_and_once_by_reason() {
        let mut t = CloseTally::default();
        t.add(&close(
            CloseKind::ResetSent,
            Some(ResetReason::Linger0),
            Some(1),
        ));
        t.add(&close(
            CloseKind::ResetSent,
            Some(ResetReason::UnreadData),
            Some(1),
        ));
        t.add(&close(
            CloseKind::ResetSent,
            Some(ResetReason::Other(14)),
            None,
        ));
        t.add(&close(CloseKind::GracefulActive, None, Some(2)));
        assert_eq!(t.all.reset_sent, 3);
        assert_eq!(t.all.total(), 4);
        let p1 = t.process(1).unwrap();
        assert_eq!(
            (
                p1.counts.reset_sent_linger0,
                p1.counts.reset_sent_unread_data
            ),
            (1, 1)
        );
        assert_eq!(t.unowned.reset_sent_other, 1);
    }

    #[test]
    fn a_process_once_shown_stays_shown_and_other_takes_the_rest() {
        let mut t = CloseTally::default();
        for _ in 0..5 {
            t.add(&close(
                CloseKind::ResetSent,
                Some(ResetReason::Linger0),
                Some(1),
            ));
        }
        t.add(&close(CloseKind::ResetReceived, None, Some(2)));
        let mut shown = vec![];
        let (listed, other) = t.top(1, &mut shown);
        assert_eq!(listed.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![1]);
        assert_eq!(other.reset_received, 1);
        // Process 2 becomes the busiest: 1 keeps its series, 2 stays in `other`.
        for _ in 0..10 {
            t.add(&close(CloseKind::ResetReceived, None, Some(2)));
        }
        let (listed, other) = t.top(1, &mut shown);
        assert_eq!(listed.iter().map(|p| p.pid).collect::<Vec<_>>(), vec![1]);
        assert_eq!(other.reset_received, 11);
    }
}
