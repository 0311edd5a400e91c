//! The pure model: connections, snapshots, tracking across polls, the filter language and
//! buildup detection. No I/O and no terminal code: everything here is tested with fixtures.

pub mod action;
pub mod age;
pub mod alerts;
pub mod close;
pub mod close_stats;
pub mod connection;
#[cfg(test)]
pub(crate) mod draw;
pub mod duration;
pub mod filter;
pub mod growth;
pub mod netns;
pub mod ports;
pub mod spelling;
pub mod state;
pub mod timer;
pub mod tracker;

pub use age::AgeSource;
pub use alerts::{Alert, RuleId, Rules, Severity};
pub use close::{
    Close, CloseKind, CloseOwner, CloseSource, CloseTally, CounterCloses, KindCounts, ResetReason,
};
pub use connection::{
    Attribution, Connection, Owner, Owners, ProcessInfo, ReceiveQueue, Shutdown, Snapshot,
    Tracking, Tuple, Unread, User,
};
pub use filter::Filter;
pub use netns::{Netns, NetnsChoice, NetnsId, NetnsKind, NetnsTable, OWN_NETNS};
pub use ports::PortRange;
pub use state::{StateCounts, TcpState};
pub use timer::{TIME_WAIT_LEN, Timer, TimerKind};
pub use tracker::{Tracker, Transition};
