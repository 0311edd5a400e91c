//! Unit tests of the row engine on small fixture connections: the sort orders written out
//! by hand, the packed-key sort against the comparing one, grouping, the filter, and the
//! process and remote aggregation.

use std::collections::{BTreeSet, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use rustc_hash::FxHashMap;

use super::aggregate::{aggregate_processes, aggregate_remotes, sort_processes, sort_remotes};
use super::keyed::keyed_rows;
use super::{ConnRows, Ghost, Row, RowFilter, compared_rows};
use crate::model::growth::growth_span;
use crate::model::tracker::Sample;
use crate::model::{Connection, Filter, Owner, PortRange, StateCounts, TcpState};

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

fn conn(local: &str, remote: &str, state: TcpState) -> Connection {
    Connection::new(addr(local), addr(remote), state)
}

fn owned(local: &str, remote: &str, state: TcpState, pid: u32, name: Option<&str>) -> Connection {
    let mut c = conn(local, remote, state);
    c.owners = vec![Owner {
        pid,
        name: name.map(Into::into),
    }]
    .into();
    c
}

/// Both families, two connections sharing a local address, and a ghost.
fn mixed() -> (Vec<Connection>, Vec<Ghost>) {
    let conns = vec![
        conn("10.0.0.2:5000", "10.0.0.9:80", TcpState::Established),
        conn(
            "[2001:db8::1]:443",
            "[2001:db8::9]:5000",
            TcpState::CloseWait,
        ),
        conn("10.0.0.1:6000", "10.0.0.9:80", TcpState::TimeWait),
        conn(
            "[2001:db8::1]:80",
            "[2001:db8::2]:4000",
            TcpState::Established,
        ),
        conn("10.0.0.2:5000", "10.0.0.8:80", TcpState::CloseWait),
    ];
    let ghosts = vec![Ghost {
        conn: conn("10.0.0.1:7000", "10.0.0.9:80", TcpState::FinWait2),
        polls_left: 2,
    }];
    (conns, ghosts)
}

fn query<'a>(
    conns: &'a [Connection],
    ghosts: &'a [Ghost],
    filter: &'a RowFilter<'a>,
    collapsed: &'a BTreeSet<TcpState>,
    by_state: bool,
    col: usize,
    desc: bool,
) -> ConnRows<'a> {
    ConnRows {
        conns,
        ghosts,
        filter,
        by_state,
        col,
        desc,
        collapsed,
    }
}

const C: fn(usize) -> Row = Row::Conn;
const G: fn(usize) -> Row = Row::Ghost;

#[test]
fn the_connection_views_sort_as_written_out() {
    let (conns, ghosts) = mixed();
    let no_filter = Filter::default();
    let filter = RowFilter::new(&no_filter, &BTreeSet::new(), false);
    let none = BTreeSet::new();
    let rows = |col, desc| {
        let q = query(&conns, &ghosts, &filter, &none, false, col, desc);
        keyed_rows(&q, None)
            .expect("state, local and remote sort on keys")
            .0
    };
    // State in kernel order, then local, then remote.
    assert_eq!(rows(0, false), [C(0), C(3), G(0), C(2), C(4), C(1)]);
    // Local: IPv4 before IPv6 (as `SocketAddr` sorts), ties on the remote.
    assert_eq!(rows(1, false), [C(2), G(0), C(4), C(0), C(3), C(1)]);
    // Descending reverses the local address only: the tie stays remote ascending.
    assert_eq!(rows(1, true), [C(1), C(3), C(4), C(0), G(0), C(2)]);
    // Remote, ties on the local address.
    assert_eq!(rows(2, false), [C(4), C(2), G(0), C(0), C(3), C(1)]);
}

#[test]
fn the_by_state_view_counts_live_rows_folds_and_finds_the_selection() {
    let (conns, ghosts) = mixed();
    let no_filter = Filter::default();
    let filter = RowFilter::new(&no_filter, &BTreeSet::new(), false);
    let sel = Some((conns[4].local(), conns[4].remote()));
    let none = BTreeSet::new();
    let q = query(&conns, &ghosts, &filter, &none, true, 0, false);
    let (rows, found) = keyed_rows(&q, sel).unwrap();
    let est = Row::Group(TcpState::Established, 2);
    // The ghost shows under its state but is not counted in the header.
    let fw2 = Row::Group(TcpState::FinWait2, 0);
    let tw = Row::Group(TcpState::TimeWait, 1);
    let cw = Row::Group(TcpState::CloseWait, 2);
    assert_eq!(rows, [est, C(0), C(3), fw2, G(0), tw, C(2), cw, C(4), C(1)]);
    assert_eq!(found, Some(8));

    let folded = BTreeSet::from([TcpState::CloseWait]);
    let q = query(&conns, &ghosts, &filter, &folded, true, 0, false);
    let (rows, found) = keyed_rows(&q, sel).unwrap();
    assert_eq!(rows, [est, C(0), C(3), fw2, G(0), tw, C(2), cw]);
    assert_eq!(found, None, "the selection is folded away");
}

#[test]
fn the_packed_keys_order_rows_as_comparing_them_does() {
    let (conns, ghosts) = mixed();
    let no_filter = Filter::default();
    let filter = RowFilter::new(&no_filter, &BTreeSet::new(), false);
    let now = SystemTime::UNIX_EPOCH;
    for collapsed in [BTreeSet::new(), BTreeSet::from([TcpState::TimeWait])] {
        for by_state in [false, true] {
            for col in 0..=2 {
                for desc in [false, true] {
                    let q = query(&conns, &ghosts, &filter, &collapsed, by_state, col, desc);
                    let keyed = keyed_rows(&q, None).unwrap().0;
                    assert_eq!(
                        keyed,
                        compared_rows(&q, now),
                        "by state {by_state}, column {col}, desc {desc}, folded {collapsed:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_process_sort_compares_owner_names() {
    let conns = vec![
        owned(
            "10.0.0.1:1",
            "10.0.0.9:80",
            TcpState::Established,
            2,
            Some("zed"),
        ),
        conn("10.0.0.1:2", "10.0.0.9:80", TcpState::Established),
        owned(
            "10.0.0.1:3",
            "10.0.0.9:80",
            TcpState::Established,
            1,
            Some("api"),
        ),
    ];
    let no_filter = Filter::default();
    let filter = RowFilter::new(&no_filter, &BTreeSet::new(), false);
    let none = BTreeSet::new();
    let q = query(&conns, &[], &filter, &none, false, 3, false);
    assert!(keyed_rows(&q, None).is_none(), "only state, local, remote");
    // No owner sorts as an empty name, first.
    assert_eq!(
        compared_rows(&q, SystemTime::UNIX_EPOCH),
        [C(1), C(2), C(0)]
    );
    let q = query(&conns, &[], &filter, &none, false, 3, true);
    assert_eq!(
        compared_rows(&q, SystemTime::UNIX_EPOCH),
        [C(0), C(2), C(1)]
    );
}

#[test]
fn the_filter_combines_lab_quick_states_and_the_prompt() {
    let mut conns = vec![
        conn("10.0.0.1:1", "10.0.0.9:443", TcpState::CloseWait),
        conn("10.0.0.1:2", "10.0.0.9:80", TcpState::CloseWait),
        conn("10.0.0.1:3", "10.0.0.9:443", TcpState::TimeWait),
        conn("10.0.0.1:4", "10.0.0.9:443", TcpState::CloseWait),
    ];
    conns[3].lab = true;
    let empty = Filter::default();
    let port = Filter::parse("rport:443").unwrap();
    let cw = BTreeSet::from([TcpState::CloseWait]);
    let none = BTreeSet::new();
    assert_eq!(
        RowFilter::new(&empty, &none, false).matching(&conns),
        [0, 1, 2, 3]
    );
    assert_eq!(
        RowFilter::new(&empty, &cw, false).matching(&conns),
        [0, 1, 3]
    );
    assert_eq!(
        RowFilter::new(&port, &none, false).matching(&conns),
        [0, 2, 3]
    );
    assert_eq!(RowFilter::new(&port, &cw, false).matching(&conns), [0, 3]);
    assert_eq!(RowFilter::new(&empty, &none, true).matching(&conns), [3]);
}

/// java (pid 10) with CLOSE_WAIT growing, nginx (pid 20) with the FIN_WAITs, a process
/// whose name was not read (pid 30), and connections without a visible owner.
fn processes() -> Vec<Connection> {
    let java = |port: u16, s| {
        owned(
            &format!("10.0.0.1:{port}"),
            "10.0.0.9:80",
            s,
            10,
            Some("java"),
        )
    };
    let nginx = |port: u16, s| {
        owned(
            &format!("10.0.0.2:{port}"),
            "10.0.0.9:80",
            s,
            20,
            Some("nginx"),
        )
    };
    vec![
        java(1, TcpState::CloseWait),
        java(2, TcpState::CloseWait),
        java(3, TcpState::CloseWait),
        java(4, TcpState::Established),
        nginx(1, TcpState::Established),
        nginx(2, TcpState::Established),
        nginx(3, TcpState::FinWait1),
        nginx(4, TcpState::FinWait2),
        owned("10.0.0.3:1", "10.0.0.9:80", TcpState::LastAck, 30, None),
        conn("10.0.0.4:1", "10.0.0.9:80", TcpState::TimeWait),
        conn("10.0.0.4:2", "10.0.0.9:80", TcpState::TimeWait),
    ]
}

#[test]
fn processes_are_counted_per_pid_with_close_wait_growth_per_minute() {
    let conns = processes();
    // The first java CLOSE_WAIT is filtered out.
    let matching: Vec<usize> = (1..conns.len()).collect();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
    let sample = |at, cw: FxHashMap<u32, u32>| Sample {
        at,
        counts: StateCounts::default(),
        close_wait_by_pid: cw,
    };
    let history = VecDeque::from([
        sample(t0, FxHashMap::from_iter([(10, 1)])),
        sample(
            t0 + Duration::from_secs(30),
            FxHashMap::from_iter([(10, 3), (20, 0)]),
        ),
    ]);
    let window = Duration::from_secs(60);
    let growth = |h| growth_span(h, t0 + Duration::from_secs(30), window);
    let mut procs = aggregate_processes(&conns, &matching, growth(&history));
    procs.sort_by_key(|p| p.pid);
    let summary: Vec<_> = procs
        .iter()
        .map(|p| {
            (
                p.pid,
                p.name.as_str(),
                p.total,
                p.counts.get(TcpState::CloseWait),
                p.close_wait_per_min,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (None, "(no process)", 2, 0, None),
            (Some(10), "java", 3, 2, Some(4.0)),
            (Some(20), "nginx", 4, 0, Some(0.0)),
            (Some(30), "?", 1, 0, Some(0.0)),
        ]
    );
    assert_eq!(procs[2].counts.get(TcpState::FinWait1), 1);
    assert_eq!(procs[2].counts.get(TcpState::FinWait2), 1);

    // One poll is no span: no growth.
    let one = VecDeque::from([history[1].clone()]);
    let procs = aggregate_processes(&conns, &matching, growth(&one));
    assert!(procs.iter().all(|p| p.close_wait_per_min.is_none()));
}

#[test]
fn the_process_view_lists_the_worst_close_wait_holder_first() {
    let conns = processes();
    let matching: Vec<usize> = (1..conns.len()).collect();
    let procs = aggregate_processes(&conns, &matching, None);
    let names = |rows: Vec<Row>| -> Vec<&str> {
        rows.iter()
            .map(|r| match r {
                Row::Process(i) => procs[*i].name.as_str(),
                other => panic!("not a process row: {other:?}"),
            })
            .collect()
    };
    // Default: most CLOSE_WAIT first, then by name.
    assert_eq!(
        names(sort_processes(&procs, 0, false)),
        ["java", "(no process)", "?", "nginx"]
    );
    // By name, descending.
    assert_eq!(
        names(sort_processes(&procs, 0, true)),
        ["nginx", "java", "?", "(no process)"]
    );
    // Total, descending.
    assert_eq!(
        names(sort_processes(&procs, 2, true)),
        ["nginx", "java", "(no process)", "?"]
    );
    // FIN_WAIT_1 + FIN_WAIT_2, ties by pid (no pid first).
    assert_eq!(
        names(sort_processes(&procs, 7, false)),
        ["(no process)", "java", "?", "nginx"]
    );
}

#[test]
fn remotes_are_counted_with_the_port_pressure_of_their_busiest_local_address() {
    let conns = vec![
        conn("10.0.0.1:40000", "10.0.0.9:443", TcpState::TimeWait),
        conn("10.0.0.1:40001", "10.0.0.9:443", TcpState::TimeWait),
        conn("10.0.0.8:80", "10.0.0.7:40000", TcpState::Established),
        conn("10.0.0.1:40002", "10.0.0.9:443", TcpState::Established),
        conn("10.0.0.2:40000", "10.0.0.9:443", TcpState::TimeWait),
        // Not an ephemeral port: counted, but no pressure.
        conn("10.0.0.1:5000", "10.0.0.9:443", TcpState::Established),
        conn("0.0.0.0:8080", "0.0.0.0:0", TcpState::Listen),
        // Filtered out below.
        conn("10.0.0.3:40005", "10.0.0.9:443", TcpState::TimeWait),
        // Two local addresses with one port each: the lower one is named.
        conn("10.0.0.5:40000", "10.0.0.6:22", TcpState::Established),
        conn("10.0.0.4:40001", "10.0.0.6:22", TcpState::Established),
    ];
    let range = PortRange {
        low: 40000,
        high: 40009,
    };
    let matching: Vec<usize> = (0..conns.len()).filter(|&i| i != 7).collect();
    let table = crate::model::NetnsTable::default();
    let ranges = crate::model::netns::Ranges::new(range, &table);
    let remotes = aggregate_remotes(&conns, ranges, &matching);
    let summary: Vec<_> = remotes
        .iter()
        .map(|r| {
            (
                r.remote,
                r.total,
                r.time_wait,
                r.ports_used,
                format!("{:.2} {:?}", r.pressure, r.from),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                addr("10.0.0.9:443"),
                5,
                3,
                3,
                "0.30 Some(10.0.0.1)".to_string()
            ),
            // The server side holds no ephemeral port of its own.
            (addr("10.0.0.7:40000"), 1, 0, 0, "0.00 None".to_string()),
            (
                addr("10.0.0.6:22"),
                2,
                0,
                1,
                "0.10 Some(10.0.0.4)".to_string()
            ),
        ]
    );
    let order = |rows: Vec<Row>| -> Vec<SocketAddr> {
        rows.iter()
            .map(|r| match r {
                Row::Remote(i) => remotes[*i].remote,
                other => panic!("not a remote row: {other:?}"),
            })
            .collect()
    };
    let busy = addr("10.0.0.9:443");
    let quiet = addr("10.0.0.7:40000");
    let ssh = addr("10.0.0.6:22");
    // Default: most TIME_WAIT first, then by address.
    assert_eq!(order(sort_remotes(&remotes, 0, false)), [busy, ssh, quiet]);
    // By address, descending.
    assert_eq!(order(sort_remotes(&remotes, 0, true)), [busy, quiet, ssh]);
    // By pressure, ascending.
    assert_eq!(order(sort_remotes(&remotes, 3, false)), [quiet, ssh, busy]);
}
