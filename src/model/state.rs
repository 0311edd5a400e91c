//! TCP states as the Linux kernel names them, with the one-sentence meaning an operator needs.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A TCP state. The order is the kernel's (`include/net/tcp_states.h`), which is also the
/// order lingertop shows states in.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TcpState {
    Established,
    SynSent,
    SynRecv,
    FinWait1,
    FinWait2,
    TimeWait,
    Close,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

/// Number of distinct states; sizes per-state count arrays.
pub const STATE_COUNT: usize = 11;

impl TcpState {
    /// Every state, in kernel order.
    pub const ALL: [TcpState; STATE_COUNT] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
    ];

    /// lingertop's state for a kernel state number (`include/net/tcp_states.h`); the
    /// kernel's `TCP_NEW_SYN_RECV` (12, a request socket) shows as SYN_RECV, as `ss` does.
    pub fn from_kernel(n: u8) -> Option<TcpState> {
        match n {
            1..=11 => Some(TcpState::ALL[usize::from(n) - 1]),
            12 => Some(TcpState::SynRecv),
            _ => None,
        }
    }

    /// Dense index for per-state arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The kernel's name in upper snake case, as `ss` and the JSON output spell it.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT_1",
            TcpState::FinWait2 => "FIN_WAIT_2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// The lower kebab-case spelling used in filters (`state:close-wait`).
    pub fn filter_name(self) -> String {
        self.name().to_ascii_lowercase().replace('_', "-")
    }

    /// What lingering in this state means, in one sentence (from close-semantics).
    pub fn meaning(self) -> &'static str {
        match self {
            TcpState::Established => "The connection is open; data flows both ways.",
            TcpState::SynSent => "We sent a SYN and wait for the peer to answer the handshake.",
            TcpState::SynRecv => {
                "The peer's SYN arrived and we answered; waiting for its final ACK."
            }
            TcpState::FinWait1 => {
                "We closed first and our FIN is not yet acknowledged, often because unsent data is queued behind it."
            }
            TcpState::FinWait2 => {
                "We closed first and the peer acknowledged, but the peer has not sent its own FIN yet."
            }
            TcpState::TimeWait => {
                "This host closed first; the kernel keeps the 4-tuple for 2*MSL (60 s on Linux) so a lost final ACK can be resent."
            }
            TcpState::Close => "The socket is closed and about to be released.",
            TcpState::CloseWait => {
                "The peer closed, but the local application has not called close(): lingering here is almost always a descriptor leak."
            }
            TcpState::LastAck => {
                "We answered the peer's FIN with our own and wait for the last ACK."
            }
            TcpState::Listen => "A server socket waiting for incoming connections.",
            TcpState::Closing => {
                "Both sides sent FIN at the same time; waiting for the ACK of ours."
            }
        }
    }

    /// True for the states of a connection that is being torn down.
    pub fn is_closing(self) -> bool {
        matches!(
            self,
            TcpState::FinWait1
                | TcpState::FinWait2
                | TcpState::TimeWait
                | TcpState::Close
                | TcpState::CloseWait
                | TcpState::LastAck
                | TcpState::Closing
        )
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for TcpState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A state name nobody knows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown TCP state \"{given}\"{} (known: {known})", did_you_mean(*.suggestion))]
pub struct UnknownState {
    pub given: String,
    pub known: String,
    /// The state `given` is a typo of, when it is close to one (`close-wiat`).
    pub suggestion: Option<TcpState>,
}

/// `; did you mean close-wait?`, or nothing.
fn did_you_mean(s: Option<TcpState>) -> String {
    s.map(|s| format!("; did you mean {}?", s.filter_name()))
        .unwrap_or_default()
}

/// A state name squashed for comparison: upper case, no `-` or `_`.
pub(crate) fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '-' && *c != '_')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl TcpState {
    /// The state `given` is most likely a typo of (`close-wiat`: close-wait), compared
    /// without case or separators, so `CLOSE_WIAT` finds it too.
    pub fn suggest(given: &str) -> Option<TcpState> {
        let names: Vec<String> = TcpState::ALL.iter().map(|s| squash(s.name())).collect();
        let found = super::spelling::closest(&squash(given), names.iter().map(String::as_str))?;
        TcpState::ALL
            .into_iter()
            .find(|s| squash(s.name()) == found)
    }
}

impl FromStr for TcpState {
    type Err = UnknownState;

    /// Accepts the kernel names in any case, with `-`, `_` or nothing between words
    /// (`close-wait`, `CLOSE_WAIT`, `fin_wait1`, `FIN-WAIT-1`), and `SYN_RCVD`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let squashed = squash(s);
        let found = TcpState::ALL
            .into_iter()
            .find(|st| st.name().replace('_', "") == squashed)
            .or(match squashed.as_str() {
                "SYNRCVD" | "SYNRECEIVED" => Some(TcpState::SynRecv),
                "CLOSED" => Some(TcpState::Close),
                _ => None,
            });
        found.ok_or_else(|| UnknownState {
            given: s.to_string(),
            known: TcpState::ALL
                .iter()
                .map(|st| st.filter_name())
                .collect::<Vec<_>>()
                .join(", "),
            suggestion: TcpState::suggest(s),
        })
    }
}

/// A count per state, indexed by [`TcpState::index`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateCounts(pub [u32; STATE_COUNT]);

impl StateCounts {
    pub fn get(&self, s: TcpState) -> u32 {
        self.0[s.index()]
    }

    pub fn add(&mut self, s: TcpState) {
        self.0[s.index()] += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }

    /// The non-zero states with their counts, in kernel order.
    pub fn iter(&self) -> impl Iterator<Item = (TcpState, u32)> + '_ {
        TcpState::ALL.into_iter().map(|s| (s, self.get(s)))
    }
}

impl Serialize for StateCounts {
    /// Serialises as `{"ESTABLISHED": n, ...}` with every state present, zeros included, so
    /// consumers never have to treat a missing key as zero.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(STATE_COUNT))?;
        for (state, n) in self.iter() {
            map.serialize_entry(state.name(), &n)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_spelling_people_use() {
        for (text, want) in [
            ("close-wait", TcpState::CloseWait),
            ("CLOSE_WAIT", TcpState::CloseWait),
            ("Time_Wait", TcpState::TimeWait),
            ("fin-wait-1", TcpState::FinWait1),
            ("FIN_WAIT2", TcpState::FinWait2),
            ("syn-rcvd", TcpState::SynRecv),
            ("listen", TcpState::Listen),
        ] {
            assert_eq!(text.parse::<TcpState>(), Ok(want), "{text}");
        }
    }

    #[test]
    fn unknown_state_names_the_known_ones() {
        let err = "close-wiat".parse::<TcpState>().unwrap_err();
        assert!(err.to_string().contains("close-wait"), "{err}");
        assert!(err.to_string().contains("\"close-wiat\""), "{err}");
    }

    #[test]
    fn a_misspelt_state_gets_what_was_meant() {
        let err = "close-wiat".parse::<TcpState>().unwrap_err();
        assert_eq!(err.suggestion, Some(TcpState::CloseWait));
        assert!(
            err.to_string()
                .starts_with("unknown TCP state \"close-wiat\"; did you mean close-wait? (known: "),
            "{err}"
        );
        for (typo, meant) in [
            ("CLOSE_WIAT", TcpState::CloseWait),
            ("time_wiat", TcpState::TimeWait),
            ("fin-wait-3", TcpState::FinWait1),
            ("establsihed", TcpState::Established),
            ("lisen", TcpState::Listen),
        ] {
            assert_eq!(TcpState::suggest(typo), Some(meant), "{typo}");
        }
        let far = "bogus".parse::<TcpState>().unwrap_err();
        assert_eq!(far.suggestion, None);
        assert!(!far.to_string().contains("did you mean"), "{far}");
    }

    #[test]
    fn every_name_round_trips() {
        for s in TcpState::ALL {
            assert_eq!(s.name().parse::<TcpState>(), Ok(s));
            assert_eq!(s.filter_name().parse::<TcpState>(), Ok(s));
            assert_eq!(TcpState::ALL[s.index()], s);
        }
    }
}
