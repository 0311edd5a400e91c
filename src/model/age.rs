//! How long a connection has been in its state, and how lingertop knows it: the one place
//! that says which kernel clock bounds the age of each state (the guide: docs/ages.md).
//!
//! An age is always a **lower bound** on the time since the state began ("at least"), from
//! one of three sources, the oldest winning:
//!
//! - **kernel**: a clock the kernel keeps on the socket, read at the poll. No kernel clock is
//!   exact: each is reset by some later event (an ACK, a retransmitted FIN), which can only
//!   make the age read *younger* than it is, never older.
//! - **observed**: lingertop saw the state begin: the connection was in another state, or
//!   absent, at the previous read, so the age is right to within one poll interval.
//! - **first sight**: lingertop first saw the connection already in its state and nothing
//!   better is known (the netstat2 backend, or a state without a kernel clock): the age counts
//!   from that poll, and a single poll has none.
//!
//! Per state (netlink backend; `tcp_info` is `INET_DIAG_INFO`, times in ms since the event):
//!
//! | state | clock | why it bounds the age |
//! |---|---|---|
//! | CLOSE_WAIT | `tcpi_last_ack_recv` | the peer's FIN carried an ACK; any later ACK (of data we send, a keepalive) is later still |
//! | FIN_WAIT_2 with its socket | `tcpi_last_ack_recv` | the ACK of our FIN began the state; the peer's later data only moves it later |
//! | FIN_WAIT_2 orphaned (a timewait socket) | `tcp_fin_timeout` − timer left | the kernel armed the timer at the state's start (or later, at `close()` after `shutdown()`) |
//! | TIME_WAIT | 60 s − timer left | armed at 60 s on entry; a retransmitted FIN or stray ACK re-arms it |
//! | ESTABLISHED | the oldest of `tcpi_last_data_sent`, `_data_recv`, `_ack_recv` | all three are set at the handshake and only move later |
//! | SYN_RECV (request) | SYN-ACK retransmits: 1 s, doubling to 120 s, minus timer left | the timer starts at the SYN with the initial 1 s timeout |
//! | SYN_SENT, FIN_WAIT_1, LAST_ACK | completed retransmit intervals of the one segment outstanding (`tcpi_rto` halved back), plus the current one's elapsed part | only when the SYN or FIN is all that is unacknowledged and it has been retransmitted: the timer then began with the state |
//! | LISTEN, CLOSING, CLOSED | none | no clock starts with the state |
//!
//! Limits, all of which only ever make an age read younger except the first: a socket whose
//! `TCP_LINGER2` is below `tcp_fin_timeout` reads older by the difference when orphaned in
//! FIN_WAIT_2 (the kernel does not report the option); the kernel's millisecond clocks are
//! 32 bits and wrap after 49.7 days.

use std::time::Duration;

use super::state::TcpState;
use super::timer::{TIME_WAIT_LEN, Timer, TimerKind};

/// Where a connection's age in its state comes from (see the module documentation).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AgeSource {
    /// A kernel clock on the socket: at least this old.
    Kernel,
    /// lingertop saw the state begin, within one poll interval.
    Observed,
    /// Counted from the poll that first saw the connection in its state: at least this old.
    FirstSight,
}

impl AgeSource {
    /// The name outputs use: `kernel`, `observed`, `first-sight`.
    pub fn name(self) -> &'static str {
        match self {
            AgeSource::Kernel => "kernel",
            AgeSource::Observed => "observed",
            AgeSource::FirstSight => "first-sight",
        }
    }

    /// Whether the age is only a lower bound (kernel and first-sight ages), where an
    /// observed one is right to within a poll interval.
    pub fn at_least(self) -> bool {
        self != AgeSource::Observed
    }
}

/// The times `tcp_info` (`struct tcp_info`, `linux/tcp.h`) reports that bound ages.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct TcpTimes {
    /// `tcpi_rto`: the current retransmission timeout (backed off), microseconds.
    pub rto_us: u32,
    /// `tcpi_last_data_sent`, ms ago.
    pub last_data_sent_ms: u32,
    /// `tcpi_last_data_recv`, ms ago.
    pub last_data_recv_ms: u32,
    /// `tcpi_last_ack_recv`, ms ago.
    pub last_ack_recv_ms: u32,
}

/// What the kernel reported of one socket at a read, as far as ages go.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct KernelClocks {
    pub timer: Option<Timer>,
    /// `tcp_info`, where the read asked for it and the socket is a full one.
    pub info: Option<TcpTimes>,
    /// Bytes (sequence numbers) sent and not acknowledged: a SYN or FIN alone counts 1.
    pub send_q: u32,
    /// `net.ipv4.tcp_fin_timeout` of the socket's namespace.
    pub fin_timeout: Duration,
}

/// The longest retransmission timeout (`TCP_RTO_MAX`).
const RTO_MAX: Duration = Duration::from_secs(120);
/// The first SYN-ACK timeout (`TCP_TIMEOUT_INIT`).
const TIMEOUT_INIT: Duration = Duration::from_secs(1);

fn ms(v: u32) -> Duration {
    Duration::from_millis(u64::from(v))
}

/// How long the kernel's clocks say a socket in `state` has been in it, at least, as of the
/// read; `None` where no clock bounds it (see the module documentation for each state).
pub fn kernel_age(state: TcpState, k: &KernelClocks) -> Option<Duration> {
    use TcpState::*;
    let timer = k.timer;
    let left = |kind: TimerKind| timer.filter(|t| t.kind == kind).map(|t| t.expires());
    match (state, k.info) {
        (Established, Some(i)) => Some(ms(i
            .last_data_sent_ms
            .max(i.last_data_recv_ms)
            .max(i.last_ack_recv_ms))),
        (CloseWait | FinWait2, Some(i)) => Some(ms(i.last_ack_recv_ms)),
        (FinWait2, None) => {
            // A timewait socket. Above 60 s the kernel spends the first tcp_fin_timeout − 60 s
            // as a full socket and arms the timewait timer for the rest.
            let full = if k.fin_timeout > TIME_WAIT_LEN {
                k.fin_timeout - TIME_WAIT_LEN
            } else {
                k.fin_timeout
            };
            full.checked_sub(left(TimerKind::TimeWait)?)
        }
        (TimeWait, _) => TIME_WAIT_LEN.checked_sub(left(TimerKind::TimeWait)?),
        (SynRecv, None) => {
            let t = timer.filter(|t| t.kind == TimerKind::Retransmit)?;
            let interval = |i: u8| (TIMEOUT_INIT * 2u32.pow(u32::from(i.min(8)))).min(RTO_MAX);
            let done: Duration = (0..t.retransmits).map(interval).sum();
            Some(done + interval(t.retransmits).saturating_sub(t.expires()))
        }
        (SynSent | FinWait1 | LastAck, Some(i)) => {
            let t = timer.filter(|t| t.kind == TimerKind::Retransmit && t.retransmits > 0)?;
            if k.send_q > 1 {
                // Data is outstanding too: its retransmits may predate the state.
                return None;
            }
            // Each timeout doubled the one before: halve the current one back.
            let rto = Duration::from_micros(u64::from(i.rto_us));
            let done: Duration = (1..=t.retransmits.min(16))
                .map(|n| rto / 2u32.pow(u32::from(n)))
                .sum();
            Some(done + rto.saturating_sub(t.expires()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timer(kind: TimerKind, left_ms: u32, retransmits: u8) -> Option<Timer> {
        Some(Timer {
            kind,
            expires_ms: left_ms,
            retransmits,
        })
    }

    fn clocks(timer: Option<Timer>, info: Option<TcpTimes>) -> KernelClocks {
        KernelClocks {
            timer,
            info,
            send_q: 0,
            fin_timeout: Duration::from_secs(60),
        }
    }

    fn times(sent: u32, recv: u32, ack: u32) -> Option<TcpTimes> {
        Some(TcpTimes {
            rto_us: 800_000,
            last_data_sent_ms: sent,
            last_data_recv_ms: recv,
            last_ack_recv_ms: ack,
        })
    }

    #[test]
    fn time_wait_age_comes_from_the_kernel_countdown_on_a_single_poll() {
        let k = clocks(timer(TimerKind::TimeWait, 45_500, 0), None);
        assert_eq!(
            kernel_age(TcpState::TimeWait, &k),
            Some(Duration::from_millis(14_500))
        );
        // A countdown longer than TIME_WAIT lasts is not one this rule knows.
        let k = clocks(timer(TimerKind::TimeWait, 61_000, 0), None);
        assert_eq!(kernel_age(TcpState::TimeWait, &k), None);
        let k = clocks(timer(TimerKind::Keepalive, 30_000, 0), None);
        assert_eq!(kernel_age(TcpState::TimeWait, &k), None);
    }

    #[test]
    fn an_orphaned_fin_wait_2_counts_down_from_tcp_fin_timeout() {
        let mut k = clocks(timer(TimerKind::TimeWait, 30_000, 0), None);
        k.fin_timeout = Duration::from_secs(40);
        assert_eq!(
            kernel_age(TcpState::FinWait2, &k),
            Some(Duration::from_secs(10))
        );
        // Above 60 s the timewait part is the remainder beyond 60 s.
        k.fin_timeout = Duration::from_secs(100);
        assert_eq!(
            kernel_age(TcpState::FinWait2, &k),
            Some(Duration::from_secs(10))
        );
        // More left than the timeout: armed by an option lingertop cannot see; no bound.
        k.fin_timeout = Duration::from_secs(20);
        assert_eq!(kernel_age(TcpState::FinWait2, &k), None);
    }

    #[test]
    fn close_wait_and_held_fin_wait_2_use_the_last_ack() {
        let k = clocks(None, times(9_000, 8_000, 5_728));
        for s in [TcpState::CloseWait, TcpState::FinWait2] {
            assert_eq!(kernel_age(s, &k), Some(Duration::from_millis(5_728)));
        }
        assert_eq!(kernel_age(TcpState::CloseWait, &clocks(None, None)), None);
    }

    #[test]
    fn established_is_as_old_as_its_quietest_clock() {
        let k = clocks(None, times(4_000, 12_000, 200));
        assert_eq!(
            kernel_age(TcpState::Established, &k),
            Some(Duration::from_secs(12))
        );
    }

    #[test]
    fn syn_recv_adds_up_its_syn_ack_timeouts() {
        // Two retransmits (1 s, 2 s), 4 s timer with 1.5 s left: 3 + 2.5.
        let k = clocks(timer(TimerKind::Retransmit, 1_500, 2), None);
        assert_eq!(
            kernel_age(TcpState::SynRecv, &k),
            Some(Duration::from_millis(5_500))
        );
        // Capped at 120 s per timeout.
        let k = clocks(timer(TimerKind::Retransmit, 120_000, 8), None);
        assert_eq!(
            kernel_age(TcpState::SynRecv, &k),
            Some(Duration::from_secs(247))
        );
    }

    #[test]
    fn a_retransmitted_fin_bounds_last_ack_only_when_alone() {
        // rto now 800 ms after two timeouts: 400 + 200 done, 800 − 300 of the current.
        let mut k = clocks(timer(TimerKind::Retransmit, 300, 2), times(0, 0, 0));
        k.send_q = 1;
        assert_eq!(
            kernel_age(TcpState::LastAck, &k),
            Some(Duration::from_millis(1_100))
        );
        k.send_q = 500;
        assert_eq!(kernel_age(TcpState::LastAck, &k), None, "data outstanding");
        k.send_q = 1;
        k.timer = timer(TimerKind::Retransmit, 300, 0);
        assert_eq!(
            kernel_age(TcpState::LastAck, &k),
            None,
            "maybe a loss probe"
        );
        assert_eq!(kernel_age(TcpState::Listen, &k), None);
        assert_eq!(kernel_age(TcpState::Closing, &k), None);
    }
}
