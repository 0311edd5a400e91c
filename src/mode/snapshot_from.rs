//! `lingertop snapshot --from PATH --at TIME`: the snapshot a live `snapshot` gave at the
//! last recorded poll at or before TIME, read from a recording; in every format, through
//! the same writers. What the recording does not keep (timers, queues) is null.

use std::io::{self, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use super::settings::Snapshot;
use crate::EXIT_ALERT;
use crate::config::Config;
use crate::model::alerts::port_pressure;
use crate::record::Recording;
use crate::report;

/// Runs `snapshot --from PATH --at TIME`.
pub fn run(cfg: &Config, args: &Snapshot, path: &Path, at: SystemTime) -> Result<ExitCode> {
    let rec =
        Recording::open(path).map_err(|e| anyhow::anyhow!("cannot read the recording: {e}"))?;
    let sql = |e: rusqlite::Error| anyhow::anyhow!("cannot read {}: {e}", path.display());
    let Some(poll) = rec.poll_at(at).map_err(sql)? else {
        let span = rec.span().map_err(sql)?;
        match span {
            Some((first, last)) => bail!(
                "{} has no poll at or before {}: it starts at {} (and ends at {}); give a later --at",
                path.display(),
                humantime::format_rfc3339_millis(at),
                humantime::format_rfc3339_millis(first),
                humantime::format_rfc3339_millis(last)
            ),
            None => bail!("{} holds no poll yet", path.display()),
        }
    };
    let (mut snap, mut alerts) = rec.snapshot(&poll).map_err(sql)?;
    let filter = &cfg.default_filter;
    let total_connections = snap.connections.len();
    // Filter and sort as a live snapshot does, the alerts' connections following their rows.
    let netns = std::sync::Arc::clone(&snap.netns);
    let mut order: Vec<usize> = (0..snap.connections.len())
        .filter(|&i| filter.matches_in(&snap.connections[i], &netns))
        .collect();
    order.sort_by_cached_key(|&i| {
        let c = &snap.connections[i];
        (c.state, c.local(), c.remote())
    });
    let mut moved = vec![usize::MAX; snap.connections.len()];
    for (new, &old) in order.iter().enumerate() {
        moved[old] = new;
    }
    let old = std::mem::take(&mut snap.connections);
    snap.connections = order.iter().map(|&i| old[i].clone()).collect();
    if !filter.is_empty() {
        // The alerts were judged over every connection; with a filter, those about none
        // of the rows shown go, as a live filtered snapshot judges only its rows.
        alerts.retain(|a| a.connections.iter().any(|&i| moved[i] != usize::MAX));
    }
    for a in &mut alerts {
        a.connections = a
            .connections
            .iter()
            .filter_map(|&i| Some(moved[i]).filter(|&n| n != usize::MAX))
            .collect();
    }
    let pressure = port_pressure(&snap.connections, snap.port_ranges());
    let polls = u64::try_from(poll.id).unwrap_or(0);
    let view = report::SnapshotView {
        snapshot: &snap,
        backend: "recording",
        polls,
        interval: None,
        total_connections,
        filter: filter.to_string(),
        alerts: &alerts,
        pressure: &pressure,
        names: None,
    };
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 18, stdout.lock());
    match report::write_snapshot(args.format, args.pretty, &view, &mut out)
        .and_then(|()| out.flush())
    {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).context("cannot write the snapshot to stdout"),
    }
    let failing = args
        .fail_on
        .is_some_and(|f| alerts.iter().any(|a| a.severity >= f));
    Ok(if failing {
        ExitCode::from(EXIT_ALERT)
    } else {
        ExitCode::SUCCESS
    })
}
