//! The collector on fixtures: a fake [`SocketSource`] and fake lookups, so that the owner
//! and user joins and the partial-information messages are checked without the OS.

use std::sync::{Arc, Mutex};

use super::*;
use crate::model::{AgeSource, TimerKind, User};

/// What the fakes were asked, shared with the test that made them.
#[derive(Default)]
struct Asked {
    pids: Vec<Vec<u32>>,
    uids: Vec<u32>,
    options: Vec<ReadOptions>,
}

type Log = Arc<Mutex<Asked>>;

/// Serves `reads` in turn (the last one again when they run out), through
/// [`SocketSource::read`] or, when `kernel`, as a [`KernelTable`] (its options logged,
/// served through [`KernelTable::read_direct`]).
struct FakeSource {
    reads: Vec<Vec<RawSocket>>,
    served: usize,
    kernel: bool,
    /// The direct read also lists a holder for a position past the read.
    stray: bool,
    fail: bool,
    log: Log,
}

impl FakeSource {
    fn next(&mut self) -> Vec<RawSocket> {
        let i = self.served.min(self.reads.len().saturating_sub(1));
        self.served += 1;
        self.reads.get(i).cloned().unwrap_or_default()
    }
}

impl SocketSource for FakeSource {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn read(&mut self, out: &mut Vec<RawSocket>) -> Result<(), CollectError> {
        if self.fail {
            return Err(CollectError::Backend {
                backend: "fake",
                detail: "no table".to_string(),
            });
        }
        *out = self.next();
        Ok(())
    }

    fn kernel_table(&mut self) -> Option<&mut dyn KernelTable> {
        if self.kernel { Some(self) } else { None }
    }
}

impl KernelTable for FakeSource {
    fn set_options(&mut self, opts: &ReadOptions) {
        self.log.lock().unwrap().options.push(opts.clone());
    }

    fn count_states(&mut self, _states: &[TcpState]) -> Result<StateCounts, CollectError> {
        Ok(StateCounts::default())
    }

    fn read_direct(
        &mut self,
        out: &mut Vec<Connection>,
        held: &mut Vec<Held>,
    ) -> Result<(), CollectError> {
        held.clear();
        for r in self.next() {
            if r.inode != 0 {
                held.push(Held {
                    index: out.len() as u32,
                    inode: r.inode,
                    uid: r.uid.unwrap_or(0),
                    pids: r.pids.clone(),
                    owner_pending: r.owner_pending,
                });
            }
            let mut c = Connection::on(r.tuple, r.state);
            c.inode = r.inode;
            out.push(c);
        }
        if self.stray {
            held.push(Held {
                index: out.len() as u32 + 4,
                inode: 9,
                uid: 0,
                pids: vec![10],
                owner_pending: false,
            });
        }
        Ok(())
    }

    fn netns(&self) -> Arc<NetnsTable> {
        Arc::default()
    }

    fn netns_reads(&self) -> NetnsReads {
        NetnsReads::default()
    }

    fn destroy(
        &mut self,
        targets: &[(NetnsId, u64)],
    ) -> Vec<Result<(), crate::model::action::Refusal>> {
        vec![Err(crate::model::action::Refusal::GoneBefore); targets.len()]
    }

    fn counters(&mut self) -> Vec<(NetnsId, CounterCloses)> {
        Vec::new()
    }
}

/// Names every pid `proc-<pid>` but pid 666 (exited), logging each question.
struct FakeProcesses(Log);

impl ProcessLookup for FakeProcesses {
    fn names(&mut self, pids: &[u32], _kept: usize) -> Vec<Option<Arc<str>>> {
        let mut sorted = pids.to_vec();
        sorted.sort_unstable();
        self.0.lock().unwrap().pids.push(sorted);
        pids.iter()
            .map(|&p| (p != 666).then(|| Arc::from(format!("proc-{p}").as_str())))
            .collect()
    }
}

/// Knows root and uid 1000 (`alice`), logging each question.
struct FakeUsers(Log);

impl UserLookup for FakeUsers {
    fn name(&mut self, uid: u32) -> Option<Box<str>> {
        self.0.lock().unwrap().uids.push(uid);
        match uid {
            0 => Some("root".into()),
            1000 => Some("alice".into()),
            _ => None,
        }
    }
}

const RANGE: PortRange = PortRange {
    low: 40000,
    high: 40999,
};

/// A collector over `reads`, running as `euid`.
fn collector(reads: Vec<Vec<RawSocket>>, euid: Option<u32>, direct: bool) -> (Collector, Log) {
    let log = Log::default();
    let source = FakeSource {
        reads,
        served: 0,
        kernel: direct,
        stray: false,
        fail: false,
        log: Arc::clone(&log),
    };
    (with_source(source, euid), log)
}

fn with_source(source: FakeSource, euid: Option<u32>) -> Collector {
    let log = Arc::clone(&source.log);
    let host = Host {
        name: "fixture-host".to_string(),
        euid,
        caps: Caps::NONE,
        processes: Box::new(FakeProcesses(Arc::clone(&log))),
        users: Box::new(FakeUsers(log)),
        ephemeral_ports: Box::new(|| RANGE),
    };
    Collector::with_host(Box::new(source), host)
}

/// A socket from 10.0.0.1:`port` to 10.0.0.2:80.
fn sock(port: u16, state: TcpState, inode: u32, uid: Option<u32>, pids: &[u32]) -> RawSocket {
    RawSocket {
        tuple: Tuple::new(
            format!("10.0.0.1:{port}").parse().unwrap(),
            "10.0.0.2:80".parse().unwrap(),
        ),
        state,
        inode,
        cookie: 0,
        kernel_since: None,
        uid,
        pids: pids.to_vec(),
        timer: None,
        recv_q: None,
        send_q: None,
        owner_pending: false,
    }
}

fn by_port(s: &Snapshot, port: u16) -> &Connection {
    s.connections
        .iter()
        .find(|c| c.local().port() == port)
        .unwrap_or_else(|| panic!("no connection from port {port}"))
}

fn names(c: &Connection) -> Vec<(u32, Option<&str>)> {
    c.owners
        .iter()
        .map(|o| (o.pid, o.name.as_deref()))
        .collect()
}

fn partial(s: &Snapshot) -> &str {
    match &s.process_info {
        ProcessInfo::Partial { reason } => reason,
        ProcessInfo::Full => panic!("process info is full"),
    }
}

#[test]
fn raw_sockets_get_their_owners_users_and_kernel_fields() {
    let mut with_timer = sock(40001, TcpState::Established, 11, Some(1000), &[10, 20]);
    with_timer.timer = Some(Timer {
        kind: TimerKind::Keepalive,
        expires_ms: 7000,
        retransmits: 0,
    });
    with_timer.recv_q = Some(3);
    with_timer.send_q = Some(5);
    with_timer.cookie = 0xc00c1e;
    let began = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    with_timer.kernel_since = Some(began);
    let reads = vec![vec![
        with_timer,
        sock(40002, TcpState::CloseWait, 12, Some(1000), &[10, 20]),
        sock(40003, TcpState::Established, 13, Some(0), &[666]),
        sock(40004, TcpState::TimeWait, 0, None, &[]),
    ]];
    let (mut c, log) = collector(reads, Some(0), false);
    let s = c.poll().unwrap();

    assert_eq!(s.host, "fixture-host");
    assert_eq!(s.ephemeral_ports, RANGE);
    assert_eq!(s.connections.len(), 4);
    let a = by_port(&s, 40001);
    assert_eq!(names(a), [(10, Some("proc-10")), (20, Some("proc-20"))]);
    assert_eq!(a.attribution, Some(Attribution::Owner));
    assert_eq!((a.inode, a.recv_q(), a.send_q()), (11, Some(3), Some(5)));
    assert_eq!(a.timer.map(|t| t.expires_ms), Some(7000));
    // The cookie and the kernel's bound on the state's start, for the tracker.
    assert_eq!(a.cookie, 0xc00c1e);
    let seed = a.tracking.as_ref().unwrap();
    assert_eq!(
        (seed.source(), seed.state_since()),
        (AgeSource::Kernel, began)
    );
    assert!(by_port(&s, 40002).tracking.is_none(), "no clock, no seed");
    let alice = a.user.as_deref().cloned();
    assert_eq!(
        alice,
        Some(User {
            uid: 1000,
            name: Some("alice".into())
        })
    );
    // One owners list per set of holders, and one user per uid, shared.
    let b = by_port(&s, 40002);
    assert!(std::ptr::eq(a.owners.as_ptr(), b.owners.as_ptr()));
    assert!(Arc::ptr_eq(
        a.user.as_ref().unwrap(),
        b.user.as_ref().unwrap()
    ));
    // A process that exited keeps its pid, without a name.
    assert_eq!(names(by_port(&s, 40003)), [(666, None)]);
    // TIME_WAIT: no file, no owner, no user, no attribution.
    let tw = by_port(&s, 40004);
    assert!(tw.owners.is_empty() && tw.user.is_none() && tw.attribution.is_none());
    assert_eq!(s.process_info, ProcessInfo::Full);

    let asked = log.lock().unwrap();
    assert_eq!(asked.pids, [vec![10, 20, 666]]);
    let mut uids = asked.uids.clone();
    uids.sort_unstable();
    assert_eq!(uids, [0, 1000]);
}

#[test]
fn the_snapshot_is_the_read_reversed_however_long() {
    // Longer than two shrinks of the buffer, so the conversion crosses them.
    let n = 2 * SHRINK_EVERY + 3;
    let read: Vec<RawSocket> = (0..n)
        .map(|i| sock(i as u16, TcpState::TimeWait, 0, None, &[]))
        .collect();
    let (mut c, _) = collector(vec![read], Some(0), false);
    let s = c.poll().unwrap();
    let ports: Vec<u16> = s.connections.iter().map(|c| c.local().port()).collect();
    let want: Vec<u16> = (0..n).rev().map(|i| i as u16).collect();
    assert_eq!(ports, want);
}

#[test]
fn names_are_looked_up_once_and_forgotten_only_after_complete_reads() {
    let with = vec![sock(40001, TcpState::Established, 11, Some(0), &[10])];
    let without = vec![sock(40002, TcpState::Established, 12, Some(0), &[20])];
    let log = Log::default();
    let source = FakeSource {
        reads: vec![with.clone(), with.clone(), without.clone(), with.clone()],
        served: 0,
        kernel: true,
        stray: false,
        fail: false,
        log: Arc::clone(&log),
    };
    let mut c = with_source(source, Some(0));
    c.poll().unwrap();
    c.poll().unwrap();
    // Pid 10 is gone from a read of fewer states: kept, it may hold a socket unread.
    c.set_options(&ReadOptions {
        states: Some(vec![TcpState::Established]),
        exact_owners: false,
    });
    c.poll().unwrap();
    c.poll().unwrap();
    assert_eq!(log.lock().unwrap().pids, [vec![10], vec![20]]);

    // After a complete read without it, pid 10 is asked again.
    let (mut c, log) = collector(vec![with.clone(), without, with], Some(0), false);
    for _ in 0..3 {
        c.poll().unwrap();
    }
    assert_eq!(log.lock().unwrap().pids, [vec![10], vec![20], vec![10]]);
}

#[test]
fn options_reach_the_source_and_name_the_unread_states() {
    let opts = ReadOptions {
        states: Some(vec![TcpState::Listen, TcpState::CloseWait]),
        exact_owners: true,
    };
    for selects in [true, false] {
        let log = Log::default();
        let source = FakeSource {
            reads: vec![vec![]],
            served: 0,
            kernel: selects,
            stray: false,
            fail: false,
            log: Arc::clone(&log),
        };
        let mut c = with_source(source, Some(0));
        c.set_options(&opts);
        assert_eq!(c.selects_states(), selects);
        // A source that only lists sockets has nothing to apply them to.
        let reached: &[ReadOptions] = if selects {
            std::slice::from_ref(&opts)
        } else {
            &[]
        };
        assert_eq!(log.lock().unwrap().options, reached);
        let unread = c.poll().unwrap().unread.map(|u| u.states);
        if selects {
            let want: Vec<TcpState> = TcpState::ALL
                .into_iter()
                .filter(|s| !matches!(s, TcpState::Listen | TcpState::CloseWait))
                .collect();
            assert_eq!(unread, Some(want));
        } else {
            // A source that reads every state anyway leaves nothing unread.
            assert_eq!(unread, None);
        }
    }
    // Asking for every state leaves nothing unread either.
    let (mut c, _) = collector(vec![vec![]], Some(0), false);
    c.set_options(&ReadOptions {
        states: Some(TcpState::ALL.to_vec()),
        exact_owners: false,
    });
    assert_eq!(c.poll().unwrap().unread, None);
}

#[test]
fn other_users_sockets_without_a_process_say_run_with_sudo() {
    let read = vec![
        // Another user's socket with a file and no visible holder: hidden from us.
        sock(40001, TcpState::Established, 11, Some(0), &[]),
        sock(40002, TcpState::Established, 12, Some(0), &[]),
        // Ours without a holder closed mid-read; TIME_WAIT has no file: neither is hidden.
        sock(40003, TcpState::Established, 13, Some(1000), &[]),
        sock(40004, TcpState::TimeWait, 0, None, &[]),
    ];
    for direct in [false, true] {
        let (mut c, _) = collector(vec![read.clone()], Some(1000), direct);
        assert_eq!(
            partial(&c.poll().unwrap()),
            "not running as root: 2 sockets of other users show no process; lingertop lacks CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: run with sudo or grant them for full process information",
            "direct read: {direct}"
        );
    }
    let (mut c, _) = collector(vec![read[2..].to_vec()], Some(1000), false);
    let s = c.poll().unwrap();
    if cfg!(target_os = "linux") {
        assert_eq!(s.process_info, ProcessInfo::Full);
    } else {
        assert!(partial(&s).starts_with("not running as root: sockets of other users"));
    }
}

#[test]
fn other_users_sockets_name_the_missing_capability() {
    let read = vec![sock(40001, TcpState::Established, 11, Some(0), &[])];
    let (mut c, _) = collector(vec![read.clone()], Some(1000), false);
    c.caps = caps::Caps::of(&[caps::Cap::SysPtrace]);
    assert_eq!(
        partial(&c.poll().unwrap()),
        "not running as root: 1 socket of another user shows no process; lingertop lacks CAP_DAC_READ_SEARCH: run with sudo or grant it for full process information"
    );
    // With both, another uid sees what root sees: what hides a holder is a PID namespace.
    let (mut c, _) = collector(vec![read], Some(1000), false);
    c.caps = caps::Caps::of(&caps::OWNERS);
    let s = c.poll().unwrap();
    let reason = partial(&s);
    assert!(reason.contains("another PID namespace"), "{reason}");
}

#[test]
fn root_without_a_process_points_at_pid_namespaces() {
    let read = vec![
        sock(40001, TcpState::Established, 11, Some(1000), &[]),
        sock(40002, TcpState::Established, 12, Some(0), &[10]),
    ];
    for euid in [Some(0), None] {
        let (mut c, _) = collector(vec![read.clone()], euid, false);
        assert_eq!(
            partial(&c.poll().unwrap()),
            "1 socket shows no process: they belong to another PID namespace (a container) or closed mid-poll; run lingertop in the host's PID namespace to see them",
            "euid {euid:?}"
        );
    }
}

#[test]
fn deferred_owners_are_said_alone_or_after_the_other_reason() {
    let mut pending = sock(40001, TcpState::Established, 11, Some(1000), &[]);
    pending.owner_pending = true;
    let deferred = "1 new sockets are not matched to a process yet (the /proc scan that finds owners is rate-limited); a later poll shows them";
    for direct in [false, true] {
        let (mut c, _) = collector(vec![vec![pending.clone()]], Some(0), direct);
        // Pending, not hidden: counted once, as pending.
        assert_eq!(
            partial(&c.poll().unwrap()),
            deferred,
            "direct read: {direct}"
        );

        let hidden = sock(40002, TcpState::Established, 12, Some(0), &[]);
        let (mut c, _) = collector(vec![vec![pending.clone(), hidden]], Some(1000), direct);
        assert_eq!(
            partial(&c.poll().unwrap()),
            format!(
                "not running as root: 1 socket of another user shows no process; lingertop lacks CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH: run with sudo or grant them for full process information; {deferred}"
            ),
            "direct read: {direct}"
        );
    }
}

#[test]
fn a_direct_read_gets_owners_and_users_by_position() {
    let read = vec![
        sock(40001, TcpState::Established, 11, Some(1000), &[10]),
        sock(40002, TcpState::TimeWait, 0, None, &[]),
        sock(40003, TcpState::CloseWait, 13, Some(0), &[20, 30]),
    ];
    let (mut c, log) = collector(vec![read], Some(0), true);
    let s = c.poll().unwrap();
    assert_eq!(s.connections.len(), 3);
    // A direct read keeps the source's order.
    let ports: Vec<u16> = s.connections.iter().map(|c| c.local().port()).collect();
    assert_eq!(ports, [40001, 40002, 40003]);
    assert_eq!(names(&s.connections[0]), [(10, Some("proc-10"))]);
    assert_eq!(s.connections[0].user.as_ref().map(|u| u.uid), Some(1000));
    assert!(s.connections[1].owners.is_empty() && s.connections[1].user.is_none());
    assert_eq!(
        names(&s.connections[2]),
        [(20, Some("proc-20")), (30, Some("proc-30"))]
    );
    assert_eq!(s.connections[2].attribution, Some(Attribution::Owner));
    assert_eq!(log.lock().unwrap().pids, [vec![10, 20, 30]]);
}

#[test]
fn a_held_socket_past_the_read_is_skipped() {
    let source = FakeSource {
        reads: vec![vec![sock(40001, TcpState::Established, 0, None, &[])]],
        served: 0,
        kernel: true,
        stray: true,
        fail: false,
        log: Log::default(),
    };
    let s = with_source(source, Some(0)).poll().unwrap();
    assert_eq!(s.connections.len(), 1);
    assert!(s.connections[0].owners.is_empty());
}

#[test]
fn a_failed_read_is_the_sources_error() {
    let log = Log::default();
    let source = FakeSource {
        reads: vec![],
        served: 0,
        kernel: false,
        stray: false,
        fail: true,
        log,
    };
    let mut c = with_source(source, Some(0));
    assert_eq!(c.backend_name(), "fake");
    let e = c.poll().unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot read the TCP socket table through fake: no table"
    );
}

#[test]
fn the_fallback_of_auto_is_a_note_not_a_print() {
    let (c, _) = collector(vec![], Some(0), false);
    assert!(c.notes().is_empty());
    let c = c.noting(netlink_fallback(&"permission denied"));
    let notes: Vec<String> = c.notes().iter().map(ToString::to_string).collect();
    assert_eq!(
        notes,
        [
            "netlink sock_diag is not available (permission denied); reading the socket table through netstat2, without timers, queues and kernel clocks (ages count from lingertop's first sight)"
        ]
    );
}

#[test]
fn the_port_range_file_is_two_ports_low_first() {
    assert_eq!(
        parse_port_range("32768\t60999\n"),
        Some(PortRange {
            low: 32768,
            high: 60999
        })
    );
    assert_eq!(
        parse_port_range("1024 1024"),
        Some(PortRange {
            low: 1024,
            high: 1024
        })
    );
    for bad in ["", "32768", "60999 32768", "a b", "1 70000"] {
        assert_eq!(parse_port_range(bad), None, "{bad:?}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_process_command_line_and_executable_come_from_proc() {
    let me = super::command_of(std::process::id()).expect("our own process");
    let exe = std::env::current_exe().unwrap();
    assert_eq!(me.exe.as_deref(), exe.to_str());
    let first = std::env::args().next().unwrap();
    assert!(me.line.starts_with(&first), "{:?} vs {first:?}", me.line);
    // A pid that cannot exist (above the kernel's pid_max limit of 2^22).
    assert_eq!(super::command_of(u32::MAX), None);
}
