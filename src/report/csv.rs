//! The snapshot as CSV: one row per connection, the JSON's connection fields flattened.

use std::io::{self, Write};

use super::json::connection_json;
use super::{SnapshotView, addr};

/// An optional CSV cell: empty when absent.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub(super) fn write<W: Write>(v: &SnapshotView<'_>, out: &mut W) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let now = v.snapshot.taken_at;
    w.write_record([
        "state",
        "local",
        "remote",
        "pid",
        "process",
        "user",
        "attribution",
        "state_age_secs",
        "inode",
        "lab",
        "timer",
        "timer_expires_ms",
        "retransmits",
        "recv_q",
        "send_q",
    ])?;
    for c in &v.snapshot.connections {
        let j = connection_json(c, now);
        w.write_record([
            j.state.name().to_string(),
            addr(&c.local()),
            addr(&c.remote()),
            j.pid.map(|p| p.to_string()).unwrap_or_default(),
            j.process.unwrap_or_default().to_string(),
            j.user.unwrap_or_default().to_string(),
            j.attribution.unwrap_or_default().to_string(),
            j.state_age_secs.map(|a| a.to_string()).unwrap_or_default(),
            j.inode.to_string(),
            j.lab.to_string(),
            opt(j.timer.as_ref().map(|t| t.kind)),
            opt(j.timer.as_ref().map(|t| t.expires_ms)),
            opt(j.timer.as_ref().map(|t| t.retransmits)),
            opt(j.recv_q),
            opt(j.send_q),
        ])?;
    }
    w.flush()
}
