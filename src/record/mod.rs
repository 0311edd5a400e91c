//! `record`'s store, beside the report writers: every poll of the live loop, the kernel's
//! closes and the alerts, kept in one SQLite file (rusqlite with SQLite compiled in) as
//! deltas and keyframes, and read back as the table stood at any recorded poll (`replay`,
//! `snapshot --from`). The schema and its views are in [`schema`] and the guide's
//! docs/record.md.

pub mod read;
pub mod schema;
pub mod store;
pub mod writer;

pub use read::{PollRow, Recording};
pub use store::StoreError;
pub use writer::{Recorder, Retention};
