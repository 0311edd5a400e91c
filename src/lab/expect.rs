//! What the documents claim each close action does (the SO_LINGER table and the close-state
//! diagrams of `close-semantics.md`, which restate the BSD and Winsock texts), and the one-line
//! deviation when an observation differs. Pure: the traces feed it, fixtures test it.

use std::time::Duration;

use super::CloseMode;
use super::outcome::{CallResult, ReadOutcome, TimeWaitSide};

/// A call that should return at once counts as blocking past this. Loopback closes take
/// microseconds; the margin keeps a busy machine from reading as a deviation.
pub const AT_ONCE: Duration = Duration::from_millis(200);

/// How long the closing call may block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocking {
    AtOnce,
    /// Until the queued data is acknowledged, at most the linger time.
    UpTo(Duration),
}

/// What the closing call returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedResult {
    Ok,
    WouldBlock,
    /// `EWOULDBLOCK` if the linger time ran out, else ok.
    WouldBlockOnTimeout,
}

/// The documented behaviour of one action in one setting.
#[derive(Clone, Debug, PartialEq)]
pub struct Documented {
    /// The closing call: `close()` or `shutdown()`.
    pub call: &'static str,
    /// One sentence, as close-semantics.md puts it.
    pub text: &'static str,
    pub result: ExpectedResult,
    pub blocking: Blocking,
    /// The peer's next read, where the documents say.
    pub peer_read: Option<&'static str>,
    /// Where a TIME_WAIT is left, where the documents say.
    pub time_wait: Option<TimeWaitSide>,
    /// The texts say queued data is discarded when the linger time runs out.
    pub data_lost_on_timeout: bool,
}

impl Documented {
    /// A compact form for one table cell: `ok at once, peer eof, TIME_WAIT closer`.
    pub fn short(&self) -> String {
        let result = match self.result {
            ExpectedResult::Ok => "ok",
            ExpectedResult::WouldBlock => "EWOULDBLOCK",
            ExpectedResult::WouldBlockOnTimeout => "EWOULDBLOCK",
        };
        let blocking = match self.blocking {
            Blocking::AtOnce => "at once".to_string(),
            Blocking::UpTo(d) => format!("after <= {}s", d.as_secs()),
        };
        let mut parts = vec![format!("{result} {blocking}")];
        if let Some(r) = self.peer_read {
            parts.push(format!("peer {r}"));
        }
        if self.data_lost_on_timeout {
            parts.push("queued data lost".to_string());
        }
        if let Some(tw) = self.time_wait {
            parts.push(format!("TIME_WAIT {}", tw.name()));
        }
        parts.join(", ")
    }
}

/// What the documents say `action` does. `peer_closes` tells whether the other end closes
/// once it reads EOF (a `normal` server end does): only then does the closer reach TIME_WAIT.
/// `unread` tells whether the closing end held unread bytes when it called close(): the
/// documents make any such close abortive.
pub fn documented(
    action: CloseMode,
    peer_closes: bool,
    linger: Duration,
    unread: bool,
) -> Documented {
    let action = if unread && action != CloseMode::HalfClose {
        CloseMode::UnreadData
    } else {
        action
    };
    let tw_if_peer_closes = Some(if peer_closes {
        TimeWaitSide::Closer
    } else {
        TimeWaitSide::None
    });
    match action {
        CloseMode::Plain => Documented {
            call: "close()",
            text: "SO_LINGER off (the default): close() returns at once; the kernel still delivers queued data, then FIN; the peer reads EOF; the closer reaches TIME_WAIT once the peer closes too",
            result: ExpectedResult::Ok,
            blocking: Blocking::AtOnce,
            peer_read: Some("eof"),
            time_wait: tw_if_peer_closes,
            data_lost_on_timeout: false,
        },
        CloseMode::Graceful => Documented {
            call: "close()",
            text: "the graceful recipe: shutdown(SHUT_WR), read until recv returns 0, then close(); the peer sees an orderly EOF after all data; TIME_WAIT on the closer",
            result: ExpectedResult::Ok,
            blocking: Blocking::AtOnce,
            peer_read: Some("eof"),
            time_wait: tw_if_peer_closes,
            data_lost_on_timeout: false,
        },
        CloseMode::Abort => Documented {
            call: "close()",
            text: "SO_LINGER on with 0 (abortive): close() returns at once, queued data is discarded, RST instead of FIN, no TIME_WAIT; the peer's next recv fails with ECONNRESET",
            result: ExpectedResult::Ok,
            blocking: Blocking::AtOnce,
            peer_read: Some("econnreset"),
            time_wait: Some(TimeWaitSide::None),
            data_lost_on_timeout: false,
        },
        CloseMode::Linger => Documented {
            call: "close()",
            text: "SO_LINGER on with N s: close() blocks until queued data is sent and acknowledged, or N s elapse; on timeout close() fails with EWOULDBLOCK and the queued data is lost",
            result: ExpectedResult::WouldBlockOnTimeout,
            blocking: Blocking::UpTo(linger),
            peer_read: None,
            time_wait: None,
            data_lost_on_timeout: true,
        },
        CloseMode::LingerNonblocking => Documented {
            call: "close()",
            text: "SO_LINGER on with N s on a non-blocking socket: close() fails at once with EWOULDBLOCK",
            result: ExpectedResult::WouldBlock,
            blocking: Blocking::AtOnce,
            peer_read: None,
            time_wait: None,
            data_lost_on_timeout: false,
        },
        CloseMode::HalfClose => Documented {
            call: "shutdown()",
            text: "shutdown(SHUT_WR) sends FIN but keeps the socket readable and the descriptor open; the peer reads EOF; TIME_WAIT only once the peer closes too",
            result: ExpectedResult::Ok,
            blocking: Blocking::AtOnce,
            peer_read: Some("eof"),
            time_wait: tw_if_peer_closes,
            data_lost_on_timeout: false,
        },
        CloseMode::UnreadData => Documented {
            call: "close()",
            text: "closing a socket whose receive buffer still holds unread data turns the close abortive: RST, no TIME_WAIT, the peer's next recv fails with ECONNRESET",
            result: ExpectedResult::Ok,
            blocking: Blocking::AtOnce,
            peer_read: Some("econnreset"),
            time_wait: Some(TimeWaitSide::None),
            data_lost_on_timeout: false,
        },
        CloseMode::PeerNeverCloses => Documented {
            call: "close()",
            text: "the peer reads EOF but never calls close(): it stays in CLOSE_WAIT (the leak) and the closer in FIN_WAIT_2 until tcp_fin_timeout; no TIME_WAIT",
            result: ExpectedResult::Ok,
            blocking: Blocking::AtOnce,
            peer_read: Some("eof"),
            time_wait: Some(TimeWaitSide::None),
            data_lost_on_timeout: false,
        },
    }
}

/// The observed facts a deviation is judged on.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    pub close_result: &'a CallResult,
    pub blocked: Duration,
    pub peer_read: &'a ReadOutcome,
    /// How the peer's reading ended when its first read got data.
    pub peer_then: Option<&'a ReadOutcome>,
    /// Bytes the peer read after the close began, through EOF.
    pub peer_bytes: u64,
    /// Bytes the closer had queued when it closed, for the linger actions.
    pub bytes_queued: Option<u64>,
    pub time_wait: TimeWaitSide,
    /// TIME_WAIT is only judged when both ends settled.
    pub settled: bool,
}

/// One line saying where `obs` differs from `doc`, or `None` when it agrees.
pub fn deviation(doc: &Documented, obs: &Observed<'_>) -> Option<String> {
    let mut clauses: Vec<String> = Vec::new();
    let ms = obs.blocked.as_millis();
    let timed_out = match doc.blocking {
        Blocking::UpTo(n) => obs.blocked + Duration::from_millis(100) >= n,
        Blocking::AtOnce => false,
    };

    match doc.blocking {
        Blocking::AtOnce if obs.blocked > AT_ONCE => {
            clauses.push(format!(
                "{} blocked {ms} ms (documented: returns at once)",
                doc.call
            ));
        }
        Blocking::UpTo(n) if obs.blocked > n + Duration::from_millis(500) => {
            clauses.push(format!(
                "{} blocked {ms} ms, past the {} s linger time",
                doc.call,
                n.as_secs()
            ));
        }
        _ => {}
    }

    let expected = match doc.result {
        ExpectedResult::Ok => "ok",
        ExpectedResult::WouldBlock => "EWOULDBLOCK",
        ExpectedResult::WouldBlockOnTimeout if timed_out => "EWOULDBLOCK",
        ExpectedResult::WouldBlockOnTimeout => "ok",
    };
    if obs.close_result.name() != expected {
        let when = if doc.result == ExpectedResult::WouldBlockOnTimeout && timed_out {
            " when the linger time ran out"
        } else {
            ""
        };
        clauses.push(format!(
            "{} returned {}{when} (documented: {expected})",
            doc.call,
            obs.close_result.name()
        ));
    }

    if doc.data_lost_on_timeout && timed_out {
        if let Some(q) = obs.bytes_queued.filter(|&q| q > 0) {
            if obs.peer_bytes >= q {
                clauses.push(format!(
                    "the queued data was not lost: the peer read all {q} bytes (documented: discarded)"
                ));
            }
        }
    }

    if let Some(want) = doc.peer_read {
        let got = obs.peer_read.name();
        let then = obs.peer_then.map(ReadOutcome::name);
        match (got.as_str(), then.as_deref()) {
            (g, _) if g == want => {}
            // Data queued before the close, then the orderly EOF behind it: as documented.
            ("data", Some("eof")) if want == "eof" => {}
            ("data", Some(t)) => clauses.push(format!(
                "the peer's next read got data that had arrived before the close, then {t} (documented: {want})"
            )),
            (g, _) => clauses.push(format!("the peer's read got {g} (documented: {want})")),
        }
    }

    if let Some(want) = doc.time_wait {
        if obs.settled && obs.time_wait != want {
            clauses.push(format!(
                "TIME_WAIT left: {} (documented: {})",
                obs.time_wait.name(),
                want.name()
            ));
        }
    }

    if clauses.is_empty() {
        None
    } else {
        Some(clauses.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs<'a>(
        result: &'a CallResult,
        blocked_ms: u64,
        read: &'a ReadOutcome,
        tw: TimeWaitSide,
    ) -> Observed<'a> {
        Observed {
            close_result: result,
            blocked: Duration::from_millis(blocked_ms),
            peer_read: read,
            peer_then: None,
            peer_bytes: 0,
            bytes_queued: None,
            time_wait: tw,
            settled: true,
        }
    }

    #[test]
    fn an_abort_that_resets_agrees() {
        let doc = documented(CloseMode::Abort, true, Duration::ZERO, false);
        let read = ReadOutcome::Error("ECONNRESET");
        let o = obs(&CallResult::Ok, 0, &read, TimeWaitSide::None);
        assert_eq!(deviation(&doc, &o), None);
    }

    #[test]
    fn an_abort_that_sends_fin_deviates_on_read_and_time_wait() {
        let doc = documented(CloseMode::Abort, true, Duration::ZERO, false);
        let read = ReadOutcome::Eof;
        let o = obs(&CallResult::Ok, 0, &read, TimeWaitSide::Closer);
        let d = deviation(&doc, &o).expect("deviation");
        assert!(d.contains("read got eof (documented: econnreset)"), "{d}");
        assert!(
            d.contains("TIME_WAIT left: closer (documented: none)"),
            "{d}"
        );
    }

    #[test]
    fn linger_returning_ok_with_data_delivered_deviates_from_the_bsd_text() {
        let doc = documented(CloseMode::Linger, false, Duration::from_secs(2), false);
        let read = ReadOutcome::Data(65536);
        let mut o = obs(&CallResult::Ok, 2003, &read, TimeWaitSide::None);
        o.bytes_queued = Some(1000);
        o.peer_bytes = 1000;
        let d = deviation(&doc, &o).expect("deviation");
        assert!(
            d.contains(
                "close() returned ok when the linger time ran out (documented: EWOULDBLOCK)"
            ),
            "{d}"
        );
        assert!(d.contains("the peer read all 1000 bytes"), "{d}");
        assert!(!d.contains("past the"), "{d}");
    }

    #[test]
    fn linger_that_returned_early_with_ok_agrees() {
        let doc = documented(CloseMode::Linger, false, Duration::from_secs(2), false);
        let read = ReadOutcome::Eof;
        let o = obs(&CallResult::Ok, 40, &read, TimeWaitSide::None);
        assert_eq!(deviation(&doc, &o), None);
    }

    #[test]
    fn nonblocking_linger_that_blocks_deviates_twice() {
        let doc = documented(
            CloseMode::LingerNonblocking,
            false,
            Duration::from_secs(1),
            false,
        );
        let read = ReadOutcome::Data(10);
        let o = obs(&CallResult::Ok, 1001, &read, TimeWaitSide::None);
        let d = deviation(&doc, &o).expect("deviation");
        assert!(
            d.contains("blocked 1001 ms (documented: returns at once)"),
            "{d}"
        );
        assert!(d.contains("returned ok (documented: EWOULDBLOCK)"), "{d}");
    }

    #[test]
    fn unread_data_makes_any_close_abortive_but_not_a_half_close() {
        let plain = documented(CloseMode::Plain, true, Duration::ZERO, true);
        assert_eq!(plain.peer_read, Some("econnreset"));
        assert_eq!(plain.time_wait, Some(TimeWaitSide::None));
        let half = documented(CloseMode::HalfClose, true, Duration::ZERO, true);
        assert_eq!(half.peer_read, Some("eof"));
    }

    #[test]
    fn data_before_eof_agrees_and_data_before_a_reset_deviates() {
        let doc = documented(CloseMode::Plain, false, Duration::ZERO, false);
        let read = ReadOutcome::Data(4096);
        let eof = ReadOutcome::Eof;
        let mut o = obs(&CallResult::Ok, 0, &read, TimeWaitSide::None);
        o.peer_then = Some(&eof);
        assert_eq!(deviation(&doc, &o), None);

        let doc = documented(CloseMode::Abort, false, Duration::ZERO, false);
        let reset = ReadOutcome::Error("ECONNRESET");
        o.peer_then = Some(&reset);
        let d = deviation(&doc, &o).expect("deviation");
        assert!(
            d.contains("data that had arrived before the close, then econnreset"),
            "{d}"
        );
    }

    #[test]
    fn time_wait_is_not_judged_before_the_ends_settle() {
        let doc = documented(CloseMode::Plain, true, Duration::ZERO, false);
        let read = ReadOutcome::Eof;
        let mut o = obs(&CallResult::Ok, 0, &read, TimeWaitSide::None);
        o.settled = false;
        assert_eq!(deviation(&doc, &o), None);
        o.settled = true;
        assert!(deviation(&doc, &o).is_some());
    }

    #[test]
    fn the_closer_reaches_time_wait_only_when_the_peer_closes() {
        let closes = documented(CloseMode::Plain, true, Duration::ZERO, false);
        let never = documented(CloseMode::Plain, false, Duration::ZERO, false);
        assert_eq!(closes.time_wait, Some(TimeWaitSide::Closer));
        assert_eq!(never.time_wait, Some(TimeWaitSide::None));
        assert_eq!(
            closes.short(),
            "ok at once, peer eof, TIME_WAIT closer",
            "the table cell"
        );
    }
}
