//! Fixture polls for render tests and the dashboard benchmark: fixed times, addresses and
//! pids, run through the real tracker and alert rules so every field is what a live poll
//! would carry.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::live::Update;
use crate::model::{
    Attribution, Connection, Netns, NetnsKind, NetnsTable, Owner, PortRange, ProcessInfo, Rules,
    Snapshot, TcpState, Tracker, User,
};

/// 2026-11-21T12:00:00Z.
pub fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_348_800)
}

fn conn(
    local: &str,
    remote: &str,
    state: TcpState,
    inode: u32,
    owner: Option<(u32, &str)>,
) -> Connection {
    let mut c = Connection::new(
        local.parse().expect("fixture address"),
        remote.parse().expect("fixture address"),
        state,
    );
    c.inode = inode;
    if let Some((pid, name)) = owner {
        c.owners = vec![Owner {
            pid,
            name: Some(name.into()),
        }]
        .into();
        c.attribution = Some(Attribution::Owner);
        c.user = Some(Arc::new(User {
            uid: 1000,
            name: Some("svc".into()),
        }));
    }
    c
}

const JAVA: Option<(u32, &str)> = Some((3121, "java"));
const NGINX: Option<(u32, &str)> = Some((812, "nginx"));
const CURL: Option<(u32, &str)> = Some((4410, "worker"));

/// The population at the first poll.
fn first() -> Vec<Connection> {
    let mut v = vec![
        conn("0.0.0.0:8080", "0.0.0.0:0", TcpState::Listen, 10, JAVA),
        conn("[::]:443", "[::]:0", TcpState::Listen, 11, NGINX),
        conn(
            "[2001:db8::10]:443",
            "[2001:db8::77]:51544",
            TcpState::Established,
            20,
            NGINX,
        ),
        conn(
            "10.0.0.2:8080",
            "10.0.0.9:40100",
            TcpState::Established,
            21,
            JAVA,
        ),
        // Will close actively between polls: ESTABLISHED -> TIME_WAIT (last owner kept).
        conn(
            "10.0.0.2:47000",
            "10.0.0.5:5432",
            TcpState::Established,
            22,
            CURL,
        ),
        // Will vanish.
        conn(
            "10.0.0.2:47001",
            "10.0.0.5:5432",
            TcpState::FinWait2,
            0,
            None,
        ),
        conn(
            "10.0.0.2:8080",
            "10.0.0.7:39000",
            TcpState::LastAck,
            0,
            None,
        ),
    ];
    for i in 0..6u16 {
        v.push(conn(
            "10.0.0.2:8080",
            &format!("10.0.0.{}:{}", 30 + i, 41000 + i),
            TcpState::CloseWait,
            100 + u32::from(i),
            JAVA,
        ));
    }
    for i in 0..8u16 {
        v.push(conn(
            &format!("10.0.0.2:{}", 46000 + i),
            "10.0.0.5:5432",
            TcpState::TimeWait,
            0,
            None,
        ));
    }
    v
}

/// The population 40 s later.
fn second() -> Vec<Connection> {
    let mut v: Vec<Connection> = first()
        .into_iter()
        .filter(|c| c.local().port() != 47001)
        .collect();
    for c in &mut v {
        if c.local().port() == 47000 {
            c.state = TcpState::TimeWait;
            c.inode = 0;
            c.owners = Default::default();
            c.attribution = None;
            c.user = None;
        }
    }
    v.push(conn(
        "10.0.0.2:8080",
        "10.0.0.44:41999",
        TcpState::CloseWait,
        140,
        JAVA,
    ));
    v.push(conn(
        "[2001:db8::10]:443",
        "[2001:db8::78]:50001",
        TcpState::Established,
        141,
        NGINX,
    ));
    // Server side TIME_WAIT, attributed to the listener.
    v.push(conn(
        "10.0.0.2:8080",
        "10.0.0.9:40001",
        TcpState::TimeWait,
        0,
        None,
    ));
    v
}

/// What the netlink backend adds: timers and queues, and the ages the timers bound, as
/// read at `at`.
fn with_kernel_fields(at: SystemTime, mut conns: Vec<Connection>) -> Vec<Connection> {
    use crate::model::age::{KernelClocks, kernel_age};
    use crate::model::connection::Tracking;
    use crate::model::timer::{Timer, TimerKind};
    let to_second = u32::try_from(
        (epoch() + Duration::from_secs(40))
            .duration_since(at)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(0);
    for c in &mut conns {
        c.set_queues(Some(0), Some(0));
        c.timer = match c.state {
            // One deadline per connection whatever the poll (40 s more left at the first),
            // so the ages the two polls' countdowns give agree.
            TcpState::TimeWait => Some(Timer {
                kind: TimerKind::TimeWait,
                expires_ms: 20_000 + 1000 * u32::from(c.local().port() % 16) + to_second,
                retransmits: 0,
            }),
            TcpState::LastAck => Some(Timer {
                kind: TimerKind::Retransmit,
                expires_ms: 400,
                retransmits: 3,
            }),
            TcpState::Established => Some(Timer {
                kind: TimerKind::Keepalive,
                expires_ms: 7_000_000,
                retransmits: 0,
            }),
            _ => None,
        };
        if c.state == TcpState::CloseWait {
            // The peer's FIN, unread: the receive side is shut.
            c.set_queues(Some(1), Some(0));
            c.shutdown = Some(crate::model::Shutdown::from_kernel(1));
        }
        let clocks = KernelClocks {
            timer: c.timer,
            send_q: c.send_q().unwrap_or(0),
            fin_timeout: Duration::from_secs(60),
            info: None,
        };
        c.tracking = kernel_age(c.state, &clocks).map(|age| Tracking::from_kernel(at, age));
    }
    conns
}

fn snapshot(at: SystemTime, connections: Vec<Connection>, partial: bool) -> Snapshot {
    Snapshot {
        taken_at: at,
        host: "fixture-host".into(),
        process_info: if partial {
            ProcessInfo::Partial {
                reason: "not running as root: 3 sockets of other users show no process; run with sudo for full process information".into(),
            }
        } else {
            ProcessInfo::Full
        },
        ephemeral_ports: PortRange {
            low: 32768,
            high: 60999,
        },
        poll_duration: Duration::from_millis(3),
        connections,
        unread: None,
        netns: Default::default(),
        counters: Vec::new(),
    }
}

/// Rules that make the small fixture raise alerts of several kinds.
pub fn rules() -> Rules {
    let mut r = Rules::default();
    r.time_wait_per_remote.warning = 5;
    r.time_wait_total.warning = 8;
    r.time_wait_total.critical = 9;
    r.last_ack.warning = 1;
    r
}

fn update(tracker: &mut Tracker, snap: Snapshot, rules: &Rules, errors: u64) -> Arc<Update> {
    let mut labs = crate::lab::LabRecogniser::default();
    Arc::new(Update::observe(tracker, snap, rules, errors, &mut labs))
}

/// Two polls 40 s apart: appearing, vanishing and state-changing connections, CLOSE_WAIT
/// past its threshold, TIME_WAIT buildup toward one destination.
pub fn two_polls(partial: bool) -> (Arc<Update>, Arc<Update>) {
    two_polls_from(partial, false)
}

/// [`two_polls`], with the timers and queues the netlink backend reads when `kernel`.
pub fn two_polls_from(partial: bool, kernel: bool) -> (Arc<Update>, Arc<Update>) {
    let (first, second) = if kernel {
        (
            with_kernel_fields(epoch(), first()),
            with_kernel_fields(epoch() + Duration::from_secs(40), second()),
        )
    } else {
        (first(), second())
    };
    let rules = rules();
    let mut tracker = Tracker::new(300);
    let a = update(&mut tracker, snapshot(epoch(), first, partial), &rules, 0);
    let b = update(
        &mut tracker,
        snapshot(epoch() + Duration::from_secs(40), second, partial),
        &rules,
        0,
    );
    (a, b)
}

/// A poll of `n` connections (mostly TIME_WAIT, as on a host under buildup), for benchmarks.
pub fn big_poll(n: usize) -> Arc<Update> {
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let a = (i / 250) % 250;
        let b = i % 250;
        let state = match i % 20 {
            0 => TcpState::Established,
            1 => TcpState::CloseWait,
            _ => TcpState::TimeWait,
        };
        let owner = if state == TcpState::TimeWait {
            None
        } else {
            JAVA
        };
        conns.push(conn(
            &format!("127.{a}.{b}.1:{}", 32768 + (i % 28000)),
            &format!("127.0.0.{}:{}", 1 + i % 4, 8080),
            state,
            if owner.is_some() { i as u32 + 1 } else { 0 },
            owner,
        ));
    }
    let rules = Rules::default();
    let mut tracker = Tracker::new(300);
    update(&mut tracker, snapshot(epoch(), conns, false), &rules, 0)
}

/// The closes panel's state after a fixed run: from the kernel's events (`kernel`) or the
/// counters, with resets by two processes, graceful closes, a timeout, lost events and a
/// TIME_WAIT overflow.
pub fn close_stats(kernel: bool) -> crate::model::close_stats::CloseStats {
    use crate::model::close_stats::CloseStats;
    use crate::model::{Close, CloseKind, CloseSource, CounterCloses, ResetReason};
    let close = |kind, reason, owner, life_us: Option<u64>| {
        Close::sample(kind, reason, owner, life_us.map(|us| us * 1000))
    };
    let source = if kernel {
        CloseSource::Kernel
    } else {
        CloseSource::Counters
    };
    let note = (!kernel).then(|| "kernel events need root or CAP_BPF and CAP_PERFMON".to_string());
    let mut s = CloseStats::new(source, note, Duration::from_secs(2));
    s.mark(Duration::ZERO);
    let mut v = Vec::new();
    if kernel {
        for i in 0..120u64 {
            v.push(close(
                CloseKind::ResetSent,
                Some(ResetReason::Linger0),
                CURL,
                Some(300 + i * 10),
            ));
        }
        for _ in 0..30 {
            v.push(close(
                CloseKind::ResetSent,
                Some(ResetReason::UnreadData),
                JAVA,
                Some(40_000),
            ));
        }
        for _ in 0..12 {
            v.push(close(
                CloseKind::ResetReceived,
                None,
                NGINX,
                Some(5_000_000),
            ));
        }
        for _ in 0..400 {
            v.push(close(CloseKind::GracefulActive, None, JAVA, Some(2_500)));
        }
        for _ in 0..380 {
            v.push(close(CloseKind::GracefulPassive, None, NGINX, Some(800)));
        }
        v.push(close(CloseKind::Timeout, None, None, None));
        s.add_closes(&v);
        s.lost = 7;
    }
    s.set_counters(CounterCloses {
        resets_sent: 150,
        reset_sent_unread_data: 30,
        reset_sent_linger0: 120,
        time_wait_overflow: 4,
        ..CounterCloses::default()
    });
    s.mark(Duration::from_secs(5));
    s
}

/// The namespaces of [`two_polls_in_netns`]: the host (id 0), a Docker container
/// `orders-7f9c` held by pid 812 (id 3) and the named netns `blue` (id 5).
pub fn three_namespaces() -> NetnsTable {
    let ns = |id, inode, kind, name: &str, pid| Netns {
        id,
        inode,
        kind,
        name: name.into(),
        pid,
        ports: None,
    };
    NetnsTable::new(vec![
        ns(0, 4026531840, NetnsKind::Host, "host", Some(1)),
        ns(
            3,
            4026532301,
            NetnsKind::Container { runtime: "docker" },
            "orders-7f9c",
            Some(812),
        ),
        ns(5, 4026532402, NetnsKind::Named, "blue", None),
    ])
}

/// [`two_polls`] with its connections spread over [`three_namespaces`] by their remote
/// port (the same connection stays in the same namespace across the polls).
pub fn two_polls_in_netns() -> (Arc<Update>, Arc<Update>) {
    let table = Arc::new(three_namespaces());
    let spread = |conns: Vec<Connection>| -> Vec<Connection> {
        conns
            .into_iter()
            .map(|c| {
                let id = [0, 3, 5][usize::from(c.remote().port() % 3)];
                c.moved_to(id)
            })
            .collect()
    };
    let in_table = |mut s: Snapshot| {
        s.netns = table.clone();
        s
    };
    let rules = rules();
    let mut tracker = Tracker::new(300);
    let first = in_table(snapshot(epoch(), spread(first()), false));
    let later = epoch() + Duration::from_secs(40);
    let second = in_table(snapshot(later, spread(second()), false));
    let a = update(&mut tracker, first, &rules, 0);
    let b = update(&mut tracker, second, &rules, 0);
    (a, b)
}

/// The rules of [`seven_alerts`]: TIME_WAIT toward one remote is a warning at 2 and
/// critical at 3; CLOSE_WAIT as shipped (a warning from one past 30 s).
pub fn seven_alerts_rules() -> Rules {
    let mut r = Rules::default();
    r.time_wait_per_remote.warning = 2;
    r.time_wait_per_remote.critical = 3;
    r
}

/// Two polls 40 s apart raising seven alerts: six TIME_WAIT piles toward six remotes (7, 6,
/// 5, 4 and 3 sockets: critical; 2: warning) and, last by severity and size, the one alert
/// that names a process: a CLOSE_WAIT java (pid 3121) has held since the first poll (the
/// alerts box's issue 15 item 10).
pub fn seven_alerts() -> (Arc<Update>, Arc<Update>) {
    let conns = || {
        let mut v = vec![conn(
            "10.0.0.1:8080",
            "10.0.2.9:5000",
            TcpState::CloseWait,
            70,
            JAVA,
        )];
        for r in 0..6u16 {
            for k in 0..(7 - r) {
                v.push(conn(
                    &format!("10.0.0.1:{}", 40000 + r * 10 + k),
                    &format!("10.0.1.{}:443", r + 1),
                    TcpState::TimeWait,
                    0,
                    None,
                ));
            }
        }
        v
    };
    let rules = seven_alerts_rules();
    let mut tracker = Tracker::new(300);
    let a = update(&mut tracker, snapshot(epoch(), conns(), false), &rules, 0);
    let later = epoch() + Duration::from_secs(40);
    let b = update(&mut tracker, snapshot(later, conns(), false), &rules, 0);
    (a, b)
}
