//! `lingertop snapshot`: poll the socket table once, or twice with `--interval` so states
//! have ages and CLOSE_WAIT growth has a rate, and print counts, alerts and connections as
//! a table, JSON or CSV. Exit status 2 when an alert reaches `--fail-on`.

use std::io::{self, Write};
use std::net::IpAddr;
#[cfg(unix)]
use std::os::fd::AsFd;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use super::closes::{CloseFeed, close_matches};
use super::settings::Snapshot;
use crate::EXIT_ALERT;
use crate::cli::{self, Format};
use crate::collector::ReadOptions;
use crate::config::Config;
use crate::lab::LabRecogniser;
use crate::model::alerts::{detect_in, port_pressure_top};
use crate::model::{Alert, Connection, Filter, ProcessInfo, TcpState, Tracker};
use crate::report;
use crate::resolve::{Names, Resolver};

/// The states to ask the kernel for: only those the filter can match, plus LISTEN so
/// server-side connections can still be attributed to their listener. A snapshot with
/// `--interval` reads everything, because a connection's earlier state (and so its last
/// owner) may lie outside the filter.
fn kernel_states(filter: &Filter, two_polls: bool) -> Option<Vec<TcpState>> {
    if two_polls {
        return None;
    }
    let mut states = filter.states()?;
    if !states.contains(&TcpState::Listen) {
        states.push(TcpState::Listen);
    }
    Some(states)
}

/// The names of the remote ends of `connections` and `alerts`, waiting at most `timeout`
/// in all. Without a resolver (no /etc/resolv.conf) it says why and every name is null.
fn resolve_names(connections: &[Connection], alerts: &[Alert], timeout: Duration) -> Names {
    let ips: Vec<IpAddr> = connections
        .iter()
        .map(|c| c.remote().ip())
        .chain(alerts.iter().filter_map(|a| a.remote.map(|r| r.ip())))
        .collect();
    let runtime = match super::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            crate::stderr::say!("lingertop: no reverse DNS: {e:#}; every remote_name is null");
            return Names::default();
        }
    };
    // Dropped on return: the lookups still on the wire are abandoned with it.
    runtime.block_on(async {
        match Resolver::system(timeout) {
            Ok(r) => r.resolve_all(ips, timeout).await,
            Err(why) => {
                crate::stderr::say!("lingertop: {why}; every remote_name is null");
                Names::default()
            }
        }
    })
}

/// Runs `lingertop snapshot`: one poll (two with `--interval`), printed once.
pub fn run(cfg: Config, args: &Snapshot) -> Result<ExitCode> {
    if let Some((path, at)) = &args.from {
        return super::snapshot_from::run(&cfg, args, path, *at);
    }
    let filter = cfg.default_filter.clone();
    let format = args.format;

    let mut collector = super::open_collector(cfg.backend, &cfg.netns, args.quiet)?;
    collector.set_options(&ReadOptions {
        states: kernel_states(&filter, args.second_poll.is_some()),
        // A snapshot is read once or twice and must be complete: no deferred owners.
        exact_owners: true,
    });
    let mut tracker = Tracker::new(cfg.history);
    // Between two polls the close rules have a window: a reset storm from the kernel's
    // events (when `--events` lets them load) and TIME_WAIT the kernel dropped (its
    // `TCPTimeWaitOverflow` in lingertop's own namespace, from the counters).
    let mut closes = match args.second_poll {
        Some(interval) => Some(CloseFeed::start(
            args.events,
            &cfg.netns,
            interval,
            &cfg.rules,
        )?),
        None => None,
    };
    let mut snap = collector.poll().context("first poll failed")?;
    tracker.observe(&mut snap);
    if let Some(interval) = args.second_poll {
        if !args.quiet {
            crate::stderr::say!(
                "lingertop: first poll saw {} sockets; polling again in {} to measure ages",
                snap.connections.len(),
                crate::model::duration::compact(interval)
            );
        }
        // The first poll's counters are the start of the close rules' window.
        if let Some((feed, stats)) = closes.as_mut() {
            feed.judge(stats, Some(&snap));
        }
        tracker.keep(std::sync::Arc::new(snap));
        std::thread::sleep(interval);
        snap = collector.poll().context("second poll failed")?;
        // Owners the kernel's events saw name the sockets whose file is gone (TIME_WAIT)
        // and that no earlier poll saw owned.
        match closes.as_ref().and_then(|(feed, _)| feed.owners()) {
            Some(owners) => {
                owners.catch_up(std::time::Duration::from_millis(200));
                owners.with_lookup(|known| tracker.observe_known(&mut snap, known));
            }
            None => {
                tracker.observe(&mut snap);
            }
        }
    }
    LabRecogniser::new(cli::is_lab_command).mark(&mut snap);

    // The states the filter let the read skip still count in the total: the kernel counts
    // them in a dump of those states alone (a few ms at 10k sockets; see the guide's docs/socket-table.md).
    let unread = collector
        .count_unread()
        .context("cannot count the sockets outside the filter")?;
    let total_connections = snap.connections.len() + unread.map_or(0, |c| c.total() as usize);
    let netns = std::sync::Arc::clone(&snap.netns);
    snap.connections.retain(|c| filter.matches_in(c, &netns));
    sort_rows(&mut snap.connections);
    let (pretty, resolve) = (args.pretty, args.resolve);
    let snap = snap;
    let written = std::thread::scope(|scope| {
        // The rows are in their final order. Beside the alerts worked out here, another
        // thread works out the port pressure and then starts on a large compact JSON's rows
        // (`RowsAhead`, which this thread joins once the document's head is written): rows
        // written before the head are held in memory, and faulting in that memory cost more
        // than the pressure, so the pressure goes first.
        let rows_ahead = format == Format::Json && !pretty && !resolve;
        let snap_ref = &snap;
        let pressure_then_rows = move || {
            let pressure = port_pressure_top(
                &snap_ref.connections,
                snap_ref.port_ranges(),
                report::PRESSURE_LISTED,
            );
            let ahead = rows_ahead
                .then(|| report::RowsAhead::start(scope, snap_ref, None))
                .flatten();
            (pressure, ahead)
        };
        let beside = std::thread::Builder::new()
            .name("lingertop-rows".into())
            .spawn_scoped(scope, pressure_then_rows)
            // No thread to be had: worked out here, after the alerts.
            .map_err(|_| pressure_then_rows);
        let mut alerts = detect_in(
            &snap.connections,
            &snap.netns,
            snap.taken_at,
            snap.ephemeral_ports,
            tracker.history(),
            &cfg.rules,
        );
        if let Some((feed, stats)) = closes.as_mut() {
            let drained = feed.drain();
            stats.add_closes(
                drained
                    .iter()
                    .filter(|c| close_matches(&filter, &snap.netns, c)),
            );
            alerts.extend(feed.judge(stats, Some(&snap)));
            // Worst first, as the rules give them (a stable sort keeps their order within).
            alerts.sort_by_key(|a| std::cmp::Reverse(a.severity));
        }
        let (pressure, ahead) = match beside {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(here) => here(),
        };
        let names = resolve.then(|| resolve_names(&snap.connections, &alerts, cfg.resolve.timeout));
        let view = report::SnapshotView {
            snapshot: &snap,
            backend: collector.backend_name(),
            polls: tracker.polls(),
            interval: args.second_poll,
            total_connections,
            filter: filter.to_string(),
            alerts: &alerts,
            pressure: &pressure,
            names: names.as_ref(),
        };
        // CSV has no place for it, so the partial-information notice goes to stderr.
        if let (Format::Csv, ProcessInfo::Partial { reason }) = (format, &snap.process_info) {
            crate::stderr::say!("lingertop: process info is partial: {reason}");
        }
        // A large buffer: a 100k-connection JSON is tens of megabytes. Straight to the file
        // descriptor, where it can be had: `Stdout`'s line buffering searched every 256 KiB
        // chunk for its last newline.
        #[cfg(unix)]
        let stdout: Box<dyn Write> = match io::stdout().as_fd().try_clone_to_owned() {
            Ok(fd) => {
                widen_pipe(&fd);
                Box::new(std::fs::File::from(fd))
            }
            Err(_) => Box::new(io::stdout().lock()),
        };
        #[cfg(not(unix))]
        let stdout: Box<dyn Write> = Box::new(io::stdout().lock());
        let mut out = io::BufWriter::with_capacity(1 << 18, stdout);
        let written = report::write_snapshot_ahead(format, pretty, &view, ahead, &mut out)
            .and_then(|()| out.flush());
        (written, alerts, pressure)
    });
    let (written, alerts, pressure) = written;
    match written {
        Ok(()) => {}
        // The reader went away (`| head`): nothing left to say to it.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        // A full disk shows here, at the last write: the output is incomplete, so say so.
        Err(e) => return Err(e).context("cannot write the snapshot to stdout"),
    }

    let failing = args
        .fail_on
        .is_some_and(|f| alerts.iter().any(|a| a.severity >= f));
    // The process exits next: freeing 100k connections one allocation at a time would
    // cost a fifth of a large snapshot's time, and the OS takes the memory back at once.
    std::mem::forget((snap, tracker, alerts, pressure, collector));
    Ok(if failing {
        ExitCode::from(EXIT_ALERT)
    } else {
        ExitCode::SUCCESS
    })
}

/// Grows the pipe stdout is, when it is one, to 1 MiB (the unprivileged ceiling,
/// `fs.pipe-max-size`): a 100k-connection JSON is ~30 MB, and through the default 64 KiB
/// pipe every 64 KiB written waits for the reader to wake and drain it (a quarter of the
/// snapshot's time at 100k TIME_WAIT). Anything else (a file, a terminal, a refusal) is
/// left as it is.
#[cfg(target_os = "linux")]
fn widen_pipe(fd: &std::os::fd::OwnedFd) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileTypeExt;
    let Ok(file) = fd.try_clone().map(std::fs::File::from) else {
        return;
    };
    if !file.metadata().is_ok_and(|m| m.file_type().is_fifo()) {
        return;
    }
    // SAFETY: F_SETPIPE_SZ on a descriptor we hold open; it changes only the pipe's buffer
    // size and fails harmlessly (EPERM, EBUSY) when it cannot.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
}

#[cfg(all(unix, not(target_os = "linux")))]
fn widen_pipe(_: &std::os::fd::OwnedFd) {}

/// Sorts the rows by state, then local end, then remote end, equal rows in the read's
/// order. The whole key and the row's position pack into one `u128`, so the sort compares
/// integers: an IPv4 end as its address and port, an IPv6 end (which has no room in it) as
/// its rank among the IPv6 ends of the rows, above every IPv4 one as `SocketAddr` orders
/// them. One IPv6 socket (a `[::]:22` listener) used to send every row to a sort on the
/// key itself, four times as slow at 35k rows. Each row is moved once, as
/// `sort_by_cached_key` does.
fn sort_rows(rows: &mut [Connection]) {
    let mut v6: Vec<std::net::SocketAddrV6> = rows
        .iter()
        .flat_map(|c| [c.local(), c.remote()])
        .filter_map(|a| match a {
            std::net::SocketAddr::V6(a) => Some(a),
            std::net::SocketAddr::V4(_) => None,
        })
        .collect();
    v6.sort_unstable();
    v6.dedup();
    if rows.len() > POSITION + 1 {
        rows.sort_by_cached_key(|c| (c.state, c.local(), c.remote()));
        return;
    }
    let mut keys: Vec<u128> = rows
        .iter()
        .enumerate()
        .map(|(i, c)| sort_key(c, i, &v6))
        .collect();
    keys.sort_unstable();
    let mut from: Vec<usize> = keys.iter().map(|k| (*k as usize) & POSITION).collect();
    // In place, as `sort_by_cached_key` does: the row for place `i` is at `from[i]`, or,
    // where that place was already filled, wherever the row there was moved.
    for i in 0..rows.len() {
        let mut j = from[i];
        while j < i {
            j = from[j];
        }
        from[i] = j;
        rows.swap(i, j);
    }
}

/// The low bits of a packed key: the row's position.
const POSITION: usize = (1 << 26) - 1;

/// State (4 bits), local end and remote end (49 bits each: [`end_key`]), then the position
/// (26 bits): ordered as `(state, local, remote)` then position. `v6` holds the rows' IPv6
/// ends, sorted and without repeats.
fn sort_key(c: &Connection, position: usize, v6: &[std::net::SocketAddrV6]) -> u128 {
    ((c.state.index() as u128) << 124)
        | (end_key(c.local(), v6) << 75)
        | (end_key(c.remote(), v6) << 26)
        | position as u128
}

/// An end as 49 bits ordered as `SocketAddr` orders ends: an IPv4 one as its address and
/// port, an IPv6 one as bit 48 (after every IPv4 end) and its rank in `v6`.
fn end_key(a: std::net::SocketAddr, v6: &[std::net::SocketAddrV6]) -> u128 {
    match a {
        std::net::SocketAddr::V4(a) => (u128::from(a.ip().to_bits()) << 16) | u128::from(a.port()),
        std::net::SocketAddr::V6(a) => {
            (1 << 48) | v6.binary_search(&a).map_or(0, |rank| rank as u128)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Tuple;
    use std::net::SocketAddr;

    /// Rows with few distinct ends, so that many are equal, each told apart by its cookie.
    fn rows(v6: bool) -> Vec<Connection> {
        let mut next = crate::model::draw::from(0x9e37_79b9_7f4a_7c15);
        (0..2000)
            .map(|i| {
                let state = TcpState::ALL[next(TcpState::ALL.len() as u64) as usize];
                // With IPv6: a few distinct IPv6 ends (a mapped IPv4 one, scope ids) among
                // the IPv4 ones.
                let end = |n: u64, salt: u64, port: u16| -> SocketAddr {
                    match n {
                        3 if v6 => format!("[::1]:{port}").parse().unwrap(),
                        2 if v6 => format!("[fe80::{}%{}]:{port}", salt % 3, salt / 3)
                            .parse()
                            .unwrap(),
                        1 if v6 => format!("[::ffff:10.0.0.1]:{port}").parse().unwrap(),
                        _ => SocketAddr::new(
                            std::net::Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8).into(),
                            port,
                        ),
                    }
                };
                let local = end(next(4) * 255 % 4, next(6), 8080 + next(3) as u16);
                let remote = end(next(4), next(6), 40000 + next(5) as u16);
                let mut c = Connection::on(Tuple::in_netns(local, remote, 0), state);
                c.cookie = i;
                c
            })
            .collect()
    }

    fn order(rows: &[Connection]) -> Vec<u64> {
        rows.iter().map(|c| c.cookie).collect()
    }

    #[test]
    fn rows_sort_by_state_then_ends_equal_ones_in_read_order() {
        for v6 in [false, true] {
            let mut want = rows(v6);
            // The reference: a stable sort on the key itself.
            want.sort_by(|a, b| {
                (a.state, a.local(), a.remote()).cmp(&(b.state, b.local(), b.remote()))
            });
            let mut got = rows(v6);
            sort_rows(&mut got);
            assert_eq!(order(&got), order(&want), "with IPv6: {v6}");
        }
    }

    #[test]
    fn a_packed_key_orders_as_its_fields() {
        let c = |state, l: &str, r: &str| {
            Connection::on(
                Tuple::in_netns(l.parse().unwrap(), r.parse().unwrap(), 0),
                state,
            )
        };
        let v6: Vec<std::net::SocketAddrV6> = ["[::]:0", "[::1]:80", "[::1]:81", "[::1%1]:81"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let rows = [
            c(TcpState::Established, "10.0.0.1:80", "10.0.0.9:9"),
            c(TcpState::Established, "10.0.0.1:81", "10.0.0.0:0"),
            c(
                TcpState::Established,
                "10.0.0.1:81",
                "255.255.255.255:65535",
            ),
            c(TcpState::Established, "10.0.0.1:81", "[::]:0"),
            c(TcpState::Established, "10.0.0.1:81", "[::1%1]:81"),
            c(TcpState::Established, "10.0.0.2:1", "10.0.0.0:0"),
            c(TcpState::Established, "255.255.255.255:65535", "[::1%1]:81"),
            c(TcpState::Established, "[::]:0", "0.0.0.0:0"),
            c(TcpState::Established, "[::1]:80", "0.0.0.0:0"),
            c(TcpState::Established, "[::1]:81", "0.0.0.0:0"),
            c(TcpState::Established, "[::1%1]:81", "[::1%1]:81"),
            c(TcpState::TimeWait, "0.0.0.0:0", "0.0.0.0:0"),
            c(TcpState::Listen, "[::1%1]:81", "[::1%1]:81"),
        ];
        // As the key itself orders them.
        assert!(
            rows.windows(2)
                .all(|w| (w[0].state, w[0].local(), w[0].remote())
                    < (w[1].state, w[1].local(), w[1].remote())),
            "the fixture is in order"
        );
        let keys: Vec<u128> = rows.iter().map(|c| sort_key(c, POSITION, &v6)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:x?}");
        // The position breaks ties only.
        let same = sort_key(&keys_row(), 1, &v6);
        assert!(sort_key(&keys_row(), 0, &v6) < same);
        assert!(same < sort_key(&rows[0], 0, &v6));
    }

    fn keys_row() -> Connection {
        Connection::on(
            Tuple::in_netns(
                "10.0.0.1:1".parse().unwrap(),
                "10.0.0.2:2".parse().unwrap(),
                0,
            ),
            TcpState::Established,
        )
    }
}
