//! Running the bulk scenarios (see [`Scenario`]) on the lab's engine: batches of
//! connections opened and closed as the scenario says, the descriptor limit raised first.
//! Unix only (`setrlimit`, the engine's sockets).

use std::net::Shutdown;
use std::time::{Duration, Instant};

use super::engine::Inner;
use super::observe::system_probe;
use super::outcome::ReadOutcome;
use super::{
    Behaviour, ConnId, End, EndStatus, Family, LabError, Scenario, ScenarioReport, SideStates,
};

/// Connections opened at a time, so the population of live sockets stays small.
const BATCH: usize = 128;

pub(super) fn run(
    inner: &Inner,
    scenario: Scenario,
    count: usize,
    family: Family,
) -> Result<ScenarioReport, LabError> {
    let started = Instant::now();
    let listener = inner.listener_addr(family)?;
    let behaviour = match scenario {
        Scenario::TimeWaitStorm => Behaviour::Normal,
        Scenario::CloseWaitLeak => Behaviour::NeverClose,
    };
    let held = match scenario {
        Scenario::TimeWaitStorm => 0,
        Scenario::CloseWaitLeak => count,
    };
    ensure_descriptors(held + 2 * BATCH + 64)?;
    let resets_before = resets_sent();

    let mut ids = Vec::with_capacity(count);
    let mut stopped_early = None;
    while ids.len() < count {
        if inner.stopping() {
            return Err(LabError::Stopped);
        }
        let n = (count - ids.len()).min(BATCH);
        let batch = match inner.open(behaviour, n, family) {
            Ok(b) => b,
            Err(e) => {
                stopped_early = Some(e.to_string());
                break;
            }
        };
        match scenario {
            Scenario::TimeWaitStorm => close_gracefully(inner, &batch),
            Scenario::CloseWaitLeak => close_clients(inner, &batch),
        }
        ids.extend(batch);
    }
    if scenario == Scenario::CloseWaitLeak {
        // The engine reads each server end's EOF; wait until it has seen them all.
        let until = Instant::now() + Duration::from_secs(5);
        while !ids
            .iter()
            .all(|&id| inner.saw(id, End::Server, &ReadOutcome::Eof))
            && Instant::now() < until
            && !inner.stopping()
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let (client, server) = states(inner, &ids);
    let resets = resets_before
        .zip(resets_sent())
        .map(|(a, b)| b.saturating_sub(a));
    Ok(ScenarioReport {
        scenario,
        family,
        requested: count,
        done: ids.len(),
        listener,
        pid: std::process::id(),
        client,
        server,
        elapsed: started.elapsed(),
        stopped_early,
        resets_sent: resets,
        rfc1337: std::fs::read_to_string("/proc/sys/net/ipv4/tcp_rfc1337")
            .ok()
            .map(|v| v.trim() != "0"),
        ids,
    })
}

/// The RSTs lingertop's network namespace has sent (`OutRsts` of `/proc/net/snmp`).
fn resets_sent() -> Option<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").ok()?;
    Some(crate::model::CounterCloses::parse(&snmp, "").resets_sent)
}

/// The graceful recipe on each client: shutdown(SHUT_WR), read to EOF, close. The normal
/// server ends close on EOF, so every client end goes to TIME_WAIT.
fn close_gracefully(inner: &Inner, batch: &[ConnId]) {
    let status = EndStatus::Acting(super::CloseMode::Graceful);
    let taken: Vec<_> = batch
        .iter()
        .filter_map(|&id| Some((id, inner.take_end(id, End::Client, status.clone()).ok()?.0)))
        .collect();
    // All FINs first, then all reads: the batch closes in parallel, not one by one.
    for (_, s) in &taken {
        let _ = s.shutdown(Shutdown::Write);
    }
    let mut buf = [0u8; 512];
    for (id, s) in taken {
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until && !inner.stopping() {
            match std::io::Read::read(&mut &s, &mut buf) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => break,
            }
        }
        drop(s);
        inner.closed(id, End::Client, "time-wait-storm".into());
    }
}

/// Closes each client; its never-close server end stays in CLOSE_WAIT.
fn close_clients(inner: &Inner, batch: &[ConnId]) {
    for &id in batch {
        if let Ok((s, _)) =
            inner.take_end(id, End::Client, EndStatus::Acting(super::CloseMode::Plain))
        {
            drop(s);
            inner.closed(id, End::Client, "close-wait-leak".into());
        }
    }
}

/// The kernel states of both sides, by exact 4-tuple.
fn states(inner: &Inner, ids: &[ConnId]) -> (SideStates, SideStates) {
    let mut client = SideStates::default();
    let mut server = SideStates::default();
    let tuples: Vec<_> = ids
        .iter()
        .filter_map(|&id| inner.tuple(id, End::Client))
        .collect();
    let mut probe = system_probe();
    for (side, tuples) in [
        (&mut client, tuples.clone()),
        (&mut server, tuples.iter().map(|&(l, r)| (r, l)).collect()),
    ] {
        let mut found = Vec::new();
        // One call for all: a probe that reads the whole table reads it once.
        if probe.lookup(&tuples, &mut found).is_err() {
            continue;
        }
        for f in found {
            match f {
                Some(p) => side.counts.add(p.state),
                None => side.gone += 1,
            }
        }
    }
    (client, server)
}

/// Raises the soft limit on open descriptors to `needed` when the hard limit allows it.
fn ensure_descriptors(needed: usize) -> Result<(), LabError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit through the pointer, which points at `lim`.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Ok(()); // unknown: let the opens say so if it is too low
    }
    let needed = needed as libc::rlim_t;
    if lim.rlim_cur >= needed {
        return Ok(());
    }
    if lim.rlim_max < needed {
        return Err(LabError::TooManyFiles {
            what: format!(
                "the scenario needs {needed} descriptors and the hard limit is {}",
                lim.rlim_max
            ),
        });
    }
    lim.rlim_cur = needed;
    // SAFETY: setrlimit reads one rlimit through the pointer, which points at `lim`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(LabError::TooManyFiles {
            what: format!("the scenario needs {needed} descriptors"),
        });
    }
    Ok(())
}
