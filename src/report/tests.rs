//! The table, JSON and CSV writers on a fixed fixture: two polls 185 s apart through the real
//! tracker and rules, so ages, previous states, attributions, alerts and port pressure are
//! all in it. Nothing volatile is redacted: every value of the fixture is fixed.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::model::alerts::{detect, port_pressure};
use crate::model::{
    Attribution, Connection, Owner, ProcessInfo, Rules, TcpState, Timer, TimerKind, Tracker, User,
};

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
}

fn conn(
    local: &str,
    remote: &str,
    state: TcpState,
    inode: u32,
    owners: &[(u32, Option<&str>)],
) -> Connection {
    let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
    c.inode = inode;
    c.owners = owners
        .iter()
        .map(|&(pid, name)| Owner {
            pid,
            name: name.map(Arc::from),
        })
        .collect();
    // As the collector sets it.
    c.attribution = (!c.owners.is_empty()).then_some(Attribution::Owner);
    c
}

fn alice() -> Option<Arc<User>> {
    Some(Arc::new(User {
        uid: 1000,
        name: Some("alice".into()),
    }))
}

/// The first poll: what the second is joined to.
fn first() -> Vec<Connection> {
    vec![
        conn(
            "10.0.0.1:40002",
            "10.0.0.5:5432",
            TcpState::Established,
            22,
            &[(3121, Some("java"))],
        ),
        conn(
            "10.0.0.1:8080",
            "10.0.0.9:51000",
            TcpState::CloseWait,
            23,
            &[(3121, Some("java"))],
        ),
        conn(
            "10.0.0.1:40001",
            "10.0.0.5:5432",
            TcpState::Established,
            21,
            &[(3121, Some("java")), (3122, Some("java"))],
        ),
    ]
}

/// The second poll, 185 s later.
fn second() -> Vec<Connection> {
    let mut est = conn(
        "10.0.0.1:40001",
        "10.0.0.5:5432",
        TcpState::Established,
        21,
        &[(3121, Some("java")), (3122, Some("java"))],
    );
    est.user = alice();
    est.timer = Some(Timer {
        kind: TimerKind::Keepalive,
        expires_ms: 7_000_000,
        retransmits: 0,
    });
    est.set_queues(Some(0), Some(12));
    let mut cw = conn(
        "10.0.0.1:8080",
        "10.0.0.9:51000",
        TcpState::CloseWait,
        23,
        &[(3121, Some("java"))],
    );
    cw.user = alice();
    // Was ESTABLISHED and owned: now TIME_WAIT, no file, the kernel's timer.
    let mut tw = conn(
        "10.0.0.1:40002",
        "10.0.0.5:5432",
        TcpState::TimeWait,
        0,
        &[],
    );
    tw.timer = Some(Timer {
        kind: TimerKind::TimeWait,
        expires_ms: 20_000,
        retransmits: 0,
    });
    // As the collector seeds it from that countdown (`model::age`): 60 s − 20 s left.
    tw.tracking = Some(crate::model::Tracking::from_kernel(
        at(185),
        std::time::Duration::from_secs(40),
    ));
    let listen = conn(
        "0.0.0.0:8080",
        "0.0.0.0:0",
        TcpState::Listen,
        30,
        &[(1, None)],
    );
    let mut lab = conn("[::1]:9000", "[::1]:45000", TcpState::FinWait2, 31, &[]);
    lab.lab = true;
    lab.set_queues(Some(4), None);
    vec![est, cw, tw, listen, lab]
}

/// The view of the second poll, with its alerts and port pressure, as `snapshot` builds it.
pub(super) fn fixture(f: impl FnOnce(&Snapshot, &[Alert], &[Pressure]) -> String) -> String {
    let mut tracker = Tracker::new(10);
    let mut one = Snapshot::fixture(at(0), first());
    tracker.observe(&mut one);
    tracker.keep(Arc::new(one));
    let mut two = Snapshot::fixture(at(185), second());
    two.process_info = ProcessInfo::Partial {
        reason: "not running as root: 1 socket of another user shows no process; run with sudo for full process information".into(),
    };
    tracker.observe(&mut two);
    let alerts = detect(
        &two.connections,
        two.taken_at,
        two.ephemeral_ports,
        tracker.history(),
        &Rules::default(),
    );
    let pressure = port_pressure(&two.connections, two.port_ranges());
    f(&two, &alerts, &pressure)
}

fn write(format: Format, v: &SnapshotView<'_>) -> String {
    write_as(format, true, v)
}

fn write_as(format: Format, pretty: bool, v: &SnapshotView<'_>) -> String {
    let mut out = Vec::new();
    write_snapshot(format, pretty, v, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The fixture written in `format`; JSON indented, the documented shape.
fn written(format: Format) -> String {
    written_as(format, true)
}

fn written_as(format: Format, pretty: bool) -> String {
    fixture(|snapshot, alerts, pressure| {
        let v = SnapshotView {
            snapshot,
            backend: "netlink",
            polls: 2,
            interval: Some(Duration::from_secs(185)),
            total_connections: 7,
            filter: "!state:syn-sent".to_string(),
            alerts,
            pressure,
            names: None,
        };
        write_as(format, pretty, &v)
    })
}

#[test]
fn table() {
    insta::assert_snapshot!(written(Format::Table));
}

#[test]
fn json() {
    insta::assert_snapshot!(written(Format::Json));
}

#[test]
fn ndjson() {
    insta::assert_snapshot!(written(Format::Ndjson));
}

#[test]
fn compact_json_is_the_pretty_document_on_one_line() {
    let pretty = written(Format::Json);
    let compact = written_as(Format::Json, false);
    assert_eq!(compact.lines().count(), 1);
    let a: serde_json::Value = serde_json::from_str(&compact).unwrap();
    let b: serde_json::Value = serde_json::from_str(&pretty).unwrap();
    assert_eq!(a, b);
    // Without the indentation.
    assert!(
        compact.len() < pretty.len(),
        "{} vs {}",
        compact.len(),
        pretty.len()
    );
}

#[test]
fn csv() {
    insta::assert_snapshot!(written(Format::Csv));
}

#[test]
fn one_empty_poll_says_how_to_measure_ages() {
    let s = Snapshot::fixture(at(0), Vec::new());
    let v = SnapshotView {
        snapshot: &s,
        backend: "netstat2",
        polls: 1,
        interval: None,
        total_connections: 0,
        filter: String::new(),
        alerts: &[],
        pressure: &[],
        names: None,
    };
    assert_eq!(
        write(Format::Table, &v),
        "lingertop snapshot of fixture at 2027-01-15T08:00:00.000Z (1 poll: ages unknown, add --interval 2s to measure them)\n\
         0 TCP connections\n\
         \n\
         no alerts\n"
    );
    assert_eq!(
        write(Format::Csv, &v),
        "state,local,remote,pid,process,user,attribution,state_age_secs,state_age_from,inode,lab,timer,timer_expires_ms,retransmits,recv_q,send_q\n"
    );
    // On netlink one poll has the kernel's ages, and says so.
    let v = SnapshotView {
        backend: "netlink",
        ..v
    };
    assert!(
        write(Format::Table, &v).starts_with(
            "lingertop snapshot of fixture at 2027-01-15T08:00:00.000Z (1 poll: ages from the kernel's clocks, ≥ at least; add --interval 2s for growth)\n"
        )
    );
}

/// The compact JSON document of `v` as lingertop writes it, and as serde writes it.
fn by_hand_and_by_serde(v: &SnapshotView<'_>) -> (Vec<u8>, Vec<u8>) {
    let mut by_hand = Vec::new();
    write_snapshot(Format::Json, false, v, &mut by_hand).unwrap();
    let mut by_serde = Vec::new();
    json::write_compact_by_serde(v, &mut by_serde).unwrap();
    by_serde.push(b'\n');
    (by_hand, by_serde)
}

#[test]
fn compact_json_by_hand_is_the_bytes_serde_writes() {
    // The fixture (ages, timers, previous states, pids, users), then hostile names: a
    // terminal escape, a quote, a backslash, a line separator, a multi-byte name.
    let from_fixture = fixture(|snapshot, alerts, pressure| {
        let mut s = snapshot.clone();
        let hostile = [
            "a\u{1b}[2Jb",
            "q\"uote\\",
            "ls\u{2028}sep",
            "naïve≥",
            "\u{85}",
        ];
        for (c, name) in s.connections.iter_mut().zip(hostile) {
            c.owners = vec![Owner {
                pid: 7,
                name: Some(Arc::from(name)),
            }]
            .into();
        }
        let v = SnapshotView {
            snapshot: &s,
            backend: "netlink",
            polls: 2,
            interval: None,
            total_connections: 9,
            filter: String::new(),
            alerts,
            pressure,
            names: None,
        };
        let (by_hand, by_serde) = by_hand_and_by_serde(&v);
        assert_eq!(
            String::from_utf8(by_hand).unwrap(),
            String::from_utf8(by_serde).unwrap()
        );
        String::new()
    });
    assert!(from_fixture.is_empty());
    // No connections at all: still one document with an empty list.
    let s = Snapshot::fixture(at(0), Vec::new());
    let v = SnapshotView {
        snapshot: &s,
        backend: "netlink",
        polls: 1,
        interval: None,
        total_connections: 0,
        filter: String::new(),
        alerts: &[],
        pressure: &[],
        names: None,
    };
    let doc: serde_json::Value = serde_json::from_str(&write_as(Format::Json, false, &v)).unwrap();
    assert_eq!(doc["connections"], serde_json::json!([]));
}

#[test]
fn compact_json_rows_of_every_shape_are_the_bytes_serde_writes() {
    use crate::model::{Netns, NetnsKind, NetnsTable, Tracking, Tuple};
    // Every value each field can take, drawn pseudo-randomly over a few thousand rows (more
    // than one thread's chunk): IPv4 and IPv6 ends, none to three owners with and without
    // names (hostile ones too), users with and without names, every attribution, ages from
    // the kernel (to the nanosecond, so every rounding of the milliseconds), observed and
    // first-sight ages (none when the state began at the poll), earlier states, timers,
    // unknown queues, lab sockets, namespaces with odd names and one missing from the table.
    let mut next = crate::model::draw::from(0x2545_f491_4f6c_dd1d);
    let now = at(1000);
    let names = ["java", "a\u{1b}[2Jb", "q\"uote\\", "naïve≥", "", "\u{85}"];
    let rows: Vec<Connection> = (0..9000)
        .map(|i| {
            let mut end = || -> std::net::SocketAddr {
                let port = [0, 80, 9999, 65535][next(4) as usize];
                match next(4) {
                    0 => format!("[fe80::{:x}%{}]:{port}", next(65536), next(5)),
                    1 => format!("[::ffff:10.0.0.{}]:{port}", next(256)),
                    _ => format!(
                        "{}.{}.{}.{}:{port}",
                        next(256),
                        next(256),
                        next(256),
                        next(256)
                    ),
                }
                .parse()
                .unwrap()
            };
            let (local, remote) = (end(), end());
            let state = TcpState::ALL[next(TcpState::ALL.len() as u64) as usize];
            let mut c = Connection::on(Tuple::in_netns(local, remote, next(3) as u16), state);
            c.inode = next(1 << 32) as u32;
            c.cookie = i;
            c.owners = (0..next(4))
                .map(|_| Owner {
                    pid: next(1 << 22) as u32,
                    name: (next(4) > 0)
                        .then(|| Arc::from(names[next(names.len() as u64) as usize])),
                })
                .collect();
            c.attribution = [
                None,
                Some(Attribution::Owner),
                Some(Attribution::LastOwner),
                Some(Attribution::Listener),
                Some(Attribution::Event),
                Some(Attribution::Pending),
            ][next(6) as usize];
            c.user = match next(3) {
                0 => None,
                n => Some(Arc::new(User {
                    uid: next(70000) as u32,
                    name: (n == 2).then(|| names[next(names.len() as u64) as usize].into()),
                })),
            };
            let age = Duration::from_nanos(next(400_000_000_000_000));
            c.tracking = match next(5) {
                0 => None,
                1 => Some(Tracking::from_kernel(now, age)),
                2 => Some(Tracking::new(now - age, now, false)),
                3 => Some(Tracking::new(now - age, now - age / 2, next(2) == 0)),
                _ => Some(Tracking::from_kernel(now, age).entering(
                    TcpState::Established,
                    crate::model::connection::nanos(now) - next(1_000_000_000),
                    1 + next(3) as usize,
                )),
            };
            c.timer = (next(2) == 0).then(|| Timer {
                kind: [
                    TimerKind::Retransmit,
                    TimerKind::Keepalive,
                    TimerKind::TimeWait,
                    TimerKind::ZeroWindowProbe,
                ][next(4) as usize],
                expires_ms: next(1 << 32) as u32,
                retransmits: next(256) as u8,
            });
            let queue = |n: u64| (n > 0).then_some(n as u32 * 1000);
            c.set_queues(queue(next(3)), queue(next(3)));
            c.lab = next(5) == 0;
            c
        })
        .collect();
    let mut s = Snapshot::fixture(now, rows);
    let ns = |id, name: &str| Netns {
        id,
        inode: 4026531840 + u64::from(id),
        kind: NetnsKind::Host,
        name: Arc::from(name),
        pid: None,
        ports: None,
    };
    s.netns = Arc::new(NetnsTable::new(vec![ns(0, "host"), ns(1, "web\"\u{1b}1")]));
    let v = SnapshotView {
        snapshot: &s,
        backend: "netlink",
        polls: 1,
        interval: None,
        total_connections: s.connections.len(),
        filter: String::new(),
        alerts: &[],
        pressure: &[],
        names: None,
    };
    let (by_hand, by_serde) = by_hand_and_by_serde(&v);
    let (by_hand, by_serde) = (
        String::from_utf8(by_hand).unwrap(),
        String::from_utf8(by_serde).unwrap(),
    );
    // The first row that differs, rather than two 3 MB strings.
    let rows = |doc: &str| doc.split("},{").map(str::to_string).collect::<Vec<_>>();
    let (hand, serde) = (rows(&by_hand), rows(&by_serde));
    if let Some(i) = (0..hand.len().min(serde.len())).find(|&i| hand[i] != serde[i]) {
        panic!("row {i} differs:\n{}\n{}", hand[i], serde[i]);
    }
    assert!(by_hand == by_serde, "the documents differ");
}

#[test]
fn ages_by_hand_are_the_floats_serde_writes() {
    let serde = |d: Duration| serde_json::to_string(&json::secs(d)).unwrap();
    let by_hand = |d: Duration| {
        let mut b = Vec::new();
        json::secs_json(&mut b, d);
        String::from_utf8(b).unwrap()
    };
    // Every millisecond of the first ten minutes, and each with half a millisecond more
    // (rounded as the float rounds it).
    for ms in 0..600_000u64 {
        for d in [
            Duration::from_millis(ms),
            Duration::from_micros(ms * 1000 + 500),
        ] {
            assert_eq!(by_hand(d), serde(d), "{d:?}");
        }
    }
    // Spread over every magnitude, up to and past where the hand-written form gives way.
    let mut next = crate::model::draw::from(0x9e37_79b9_7f4a_7c15);
    for _ in 0..200_000 {
        let x = next(u64::MAX);
        let d = Duration::from_nanos(x >> (x % 64));
        assert_eq!(by_hand(d), serde(d), "{d:?}");
    }
    for secs in [99_999_999_999, 100_000_000_000, u64::MAX / 4, u64::MAX] {
        let d = Duration::from_secs(secs);
        assert_eq!(by_hand(d), serde(d), "{d:?}");
    }
}

#[test]
fn addresses_by_hand_are_as_display_writes_them() {
    let addrs = [
        "0.0.0.0:0",
        "255.255.255.255:65535",
        "10.0.100.9:80",
        "127.0.1.1:40000",
        "[::1]:9000",
        "[::ffff:10.0.0.1]:443",
        "[fe80::1%4294967295]:65535",
        "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff%4294967295]:65535",
    ];
    for a in addrs {
        let sa: SocketAddr = a.parse().unwrap();
        assert_eq!(AddrText::of(&sa).as_str(), addr(&sa), "{a}");
    }
}

#[test]
fn compact_json_of_many_rows_written_on_two_threads_is_the_bytes_serde_writes() {
    // More rows than one thread's chunk, an odd number of chunks and a short last one.
    let out = fixture(|snapshot, alerts, pressure| {
        let mut s = snapshot.clone();
        let base = s.connections.clone();
        s.connections = (0..3 * 8192 + 5)
            .map(|i| {
                let mut c = base[i % base.len()].clone();
                c.cookie = i as u64;
                c.inode = i as u32;
                c
            })
            .collect();
        let v = SnapshotView {
            snapshot: &s,
            backend: "netlink",
            polls: 2,
            interval: None,
            total_connections: s.connections.len(),
            filter: String::new(),
            alerts,
            pressure,
            names: None,
        };
        let (by_hand, by_serde) = by_hand_and_by_serde(&v);
        assert!(by_hand == by_serde, "the two documents differ");
        let doc: serde_json::Value = serde_json::from_slice(&by_hand).unwrap();
        let inodes: Vec<u64> = doc["connections"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["inode"].as_u64().unwrap())
            .collect();
        assert_eq!(inodes, (0..3 * 8192 + 5).collect::<Vec<u64>>());
        // The rows started ahead, before the alerts, on this snapshot: the same bytes. Rows
        // started on another snapshot are not used.
        // (Its rows differ, so that using them would show.)
        let mut other = s.clone();
        for c in &mut other.connections {
            c.inode += 7;
        }
        for started_on in [&s, &other] {
            let mut ahead_bytes = Vec::new();
            std::thread::scope(|scope| {
                let ahead = RowsAhead::start(scope, started_on, None);
                assert!(ahead.is_some());
                write_snapshot_ahead(Format::Json, false, &v, ahead, &mut ahead_bytes).unwrap();
            });
            assert!(ahead_bytes == by_hand, "rows started ahead differ");
        }
        String::new()
    });
    assert!(out.is_empty());
}

#[test]
fn own_names_need_no_escaping() {
    use crate::model::{AgeSource, Attribution, TimerKind};
    let mut names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
    names.extend(
        [
            AgeSource::Kernel,
            AgeSource::Observed,
            AgeSource::FirstSight,
        ]
        .map(AgeSource::name),
    );
    names.extend(
        [
            Attribution::Owner,
            Attribution::LastOwner,
            Attribution::Listener,
            Attribution::Event,
            Attribution::Pending,
        ]
        .map(Attribution::name),
    );
    names.extend(
        [
            TimerKind::Retransmit,
            TimerKind::Keepalive,
            TimerKind::TimeWait,
            TimerKind::ZeroWindowProbe,
        ]
        .map(TimerKind::name),
    );
    for n in names {
        assert!(json::needs_no_escape(n), "{n:?}");
        assert_eq!(serde_json::to_string(n).unwrap(), format!("\"{n}\""));
    }
    assert!(!json::needs_no_escape("a\"b"));
}
