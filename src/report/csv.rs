//! The snapshot as CSV: one row per connection, the JSON's connection fields flattened.

use std::io::{self, Write};

use super::json::connection_json;
use super::{SnapshotView, addr};
use crate::sanitize::csv_cell;

/// An optional CSV cell: empty when absent.
fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

pub(super) fn write<W: Write>(v: &SnapshotView<'_>, out: &mut W) -> io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let now = v.snapshot.taken_at;
    let with_netns = super::shows_netns(&v.snapshot.connections);
    let mut head = vec![
        "state",
        "local",
        "remote",
        "pid",
        "process",
        "user",
        "attribution",
        "state_age_secs",
        "state_age_from",
        "inode",
        "lab",
        "timer",
        "timer_expires_ms",
        "retransmits",
        "recv_q",
        "send_q",
    ];
    // Appended, and only where other namespaces are shown: the columns scripts read stay.
    if with_netns {
        head.push("netns");
    }
    // Appended too, and only with --resolve.
    if v.names.is_some() {
        head.push("remote_name");
    }
    w.write_record(&head)?;
    for c in &v.snapshot.connections {
        let j = connection_json(c, now, &v.snapshot.netns, v.names);
        let netns = j.netns.unwrap_or_default().to_string();
        let mut row = vec![
            j.state.name().to_string(),
            addr(&c.local()),
            addr(&c.remote()),
            j.pid.map(|p| p.to_string()).unwrap_or_default(),
            csv_cell(j.process.unwrap_or_default()).into_owned(),
            csv_cell(j.user.unwrap_or_default()).into_owned(),
            j.attribution.unwrap_or_default().to_string(),
            j.state_age_secs.map(|a| a.to_string()).unwrap_or_default(),
            j.state_age_from.unwrap_or_default().to_string(),
            j.inode.to_string(),
            j.lab.to_string(),
            opt(j.timer.as_ref().map(|t| t.kind)),
            opt(j.timer.as_ref().map(|t| t.expires_ms)),
            opt(j.timer.as_ref().map(|t| t.retransmits)),
            opt(j.recv_q),
            opt(j.send_q),
        ];
        if with_netns {
            row.push(netns);
        }
        if let Some(name) = j.remote_name {
            row.push(csv_cell(name.unwrap_or_default()).into_owned());
        }
        w.write_record(&row)?;
    }
    w.flush()
}
