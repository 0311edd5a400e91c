//! The pure model: connections, snapshots, tracking across polls, the filter language and
//! buildup detection. No I/O and no terminal code: everything here is tested with fixtures.

pub mod alerts;
pub mod connection;
pub mod duration;
pub mod filter;
pub mod state;
pub mod tracker;

pub use alerts::{Alert, RuleId, Rules, Severity};
pub use connection::{
    Attribution, Connection, Owner, Owners, PortRange, ProcessInfo, Snapshot, TIME_WAIT_LEN, Timer,
    TimerKind, Tracking, Tuple, Unread, User,
};
pub use filter::Filter;
pub use state::{StateCounts, TcpState};
pub use tracker::{Tracker, Transition};
