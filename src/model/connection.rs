//! One TCP socket as lingertop sees it, and the snapshot of all of them at one poll.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::state::{StateCounts, TcpState};

/// A process holding (or having held) a socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// Process name; `None` when the process vanished before its name could be read.
    pub name: Option<Arc<str>>,
}

/// The processes holding a socket, as a shared list behind one thin pointer: 8 bytes on
/// each connection where an `Arc<[Owner]>` takes 16, and no allocation at all while empty.
/// Reads as a slice.
#[derive(Clone, Default)]
pub struct Owners(Option<Arc<Box<[Owner]>>>);

impl Deref for Owners {
    type Target = [Owner];

    fn deref(&self) -> &[Owner] {
        self.0.as_deref().map_or(&[], |o| o)
    }
}

impl From<Vec<Owner>> for Owners {
    fn from(v: Vec<Owner>) -> Self {
        // Never an allocated empty list: empty is `None`, the same as the default.
        Owners((!v.is_empty()).then(|| Arc::new(v.into_boxed_slice())))
    }
}

impl FromIterator<Owner> for Owners {
    fn from_iter<I: IntoIterator<Item = Owner>>(iter: I) -> Self {
        Owners::from(iter.into_iter().collect::<Vec<_>>())
    }
}

impl PartialEq for Owners {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Owners {}

impl fmt::Debug for Owners {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}

/// The user a socket belongs to: one per uid, shared by all of its sockets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    /// `None` when the user database has no name for the uid.
    pub name: Option<Box<str>>,
}

/// How the owner of a connection was found.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Attribution {
    /// The kernel table maps the socket's inode to a process holding it now.
    Owner,
    /// No owner now (e.g. TIME_WAIT, inode 0); this process owned the same connection at an
    /// earlier poll.
    LastOwner,
    /// No owner now and never seen owned; this process listens on the connection's local port,
    /// so the connection is the server side of one of its connections.
    Listener,
}

impl Attribution {
    pub fn name(self) -> &'static str {
        match self {
            Attribution::Owner => "owner",
            Attribution::LastOwner => "last-owner",
            Attribution::Listener => "listener",
        }
    }
}

/// Which kernel timer is running on a socket (`ss -o` shows the same names).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum TimerKind {
    /// Retransmission (or loss probe, or a SYN_RECV's SYN-ACK resend): `on` in `ss`.
    Retransmit,
    /// Keepalive, or the FIN_WAIT_2 timeout of an orphan that still has its full socket.
    Keepalive,
    /// The TIME_WAIT (or orphaned FIN_WAIT_2) countdown of a socket with no file.
    TimeWait,
    /// Zero-window probe: the peer advertises no room, so we probe it (`persist` in `ss`).
    ZeroWindowProbe,
}

impl TimerKind {
    /// The name `ss -o` prints.
    pub fn name(self) -> &'static str {
        match self {
            TimerKind::Retransmit => "on",
            TimerKind::Keepalive => "keepalive",
            TimerKind::TimeWait => "timewait",
            TimerKind::ZeroWindowProbe => "persist",
        }
    }
}

/// A kernel timer on a socket, as read at the poll that carried it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Timer {
    pub kind: TimerKind,
    /// Milliseconds left until it fires, as of the poll (0 when already due): the kernel's
    /// own unit and width, 16 bytes less per connection than a `Duration`.
    pub expires_ms: u32,
    /// Retransmissions (for `on`) or unanswered probes (keepalive, persist) so far.
    pub retransmits: u8,
}

impl Timer {
    /// Time left until it fires, as of the poll.
    pub fn expires(&self) -> Duration {
        Duration::from_millis(u64::from(self.expires_ms))
    }
}

/// How long Linux keeps a socket in TIME_WAIT (`TCP_TIMEWAIT_LEN`, fixed at 60 s).
pub const TIME_WAIT_LEN: Duration = Duration::from_secs(60);

/// What the tracker learnt about a connection across polls: 40 bytes, carried by every
/// connection of every snapshot (times as [`Nanos`], earlier states shared between polls).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracking {
    first_seen: Nanos,
    state_since: Nanos,
    /// States seen before the current one, oldest first, with the poll that first saw each;
    /// `None` while there are none, as nearly always. Shared: a connection that stays in its
    /// state hands the same list to the next poll without copying it.
    previous: Option<Arc<[(TcpState, Nanos)]>>,
    state_start_observed: bool,
}

impl Tracking {
    /// `first_seen`: the first poll that saw the connection; `state_since`: the first poll
    /// that saw it in its current state; `state_start_observed`: whether that is a real
    /// observation of the state starting (the state began after lingertop started watching)
    /// or only the time lingertop first looked.
    pub fn new(
        first_seen: SystemTime,
        state_since: SystemTime,
        state_start_observed: bool,
    ) -> Self {
        Tracking {
            first_seen: nanos(first_seen),
            state_since: nanos(state_since),
            previous: None,
            state_start_observed,
        }
    }

    /// The same connection entering `state` at `at`, after the states it went through so far
    /// (at most `keep` of the latest are remembered) and `was`, the one it leaves.
    pub(crate) fn entering(&self, was: TcpState, at: Nanos, keep: usize) -> Self {
        let earlier = self.previous.as_deref().unwrap_or_default();
        let skip = (earlier.len() + 1).saturating_sub(keep);
        let previous: Arc<[(TcpState, Nanos)]> = earlier
            .iter()
            .copied()
            .chain([(was, self.state_since)])
            .skip(skip)
            .collect();
        Tracking {
            first_seen: self.first_seen,
            state_since: at,
            previous: Some(previous),
            state_start_observed: true,
        }
    }

    /// The first poll that saw this connection.
    pub fn first_seen(&self) -> SystemTime {
        time(self.first_seen)
    }

    /// The first poll that saw it in its current state.
    pub fn state_since(&self) -> SystemTime {
        time(self.state_since)
    }

    /// Whether [`Tracking::state_since`] saw the state begin (see [`Tracking::new`]).
    pub fn state_start_observed(&self) -> bool {
        self.state_start_observed
    }

    /// States seen before the current one, oldest first, with the poll that first saw each.
    pub fn previous(&self) -> impl ExactSizeIterator<Item = (TcpState, SystemTime)> + '_ {
        self.previous
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|&(s, at)| (s, time(at)))
    }
}

/// A time as nanoseconds since the Unix epoch: half the size of a `SystemTime`, and exact for
/// every time from 1970 to 2554 (an earlier clock reads as 1970).
pub(crate) type Nanos = u64;

pub(crate) fn nanos(t: SystemTime) -> Nanos {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

pub(crate) fn time(n: Nanos) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(n)
}

/// The two ends of a connection, local then remote, in 16 bytes where a pair of
/// `SocketAddr`s takes 64: two IPv4 ends (nearly every socket of a busy machine) packed
/// inline, anything else boxed. Each pair of ends has exactly one form, so tuples are equal
/// (and hash alike) exactly when their ends are; the ends come back exactly as given
/// (IPv4-mapped IPv6 addresses stay IPv6).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tuple(Ends);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Ends {
    /// Local address and port, then remote address and port, ports big-endian.
    V4([u8; 12]),
    Other(Box<(SocketAddr, SocketAddr)>),
}

impl Tuple {
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Self {
        match (local, remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => {
                let mut k = [0u8; 12];
                k[..6].copy_from_slice(&pack_v4(l));
                k[6..].copy_from_slice(&pack_v4(r));
                Tuple(Ends::V4(k))
            }
            _ => Tuple(Ends::Other(Box::new((local, remote)))),
        }
    }

    pub fn local(&self) -> SocketAddr {
        match &self.0 {
            Ends::V4(k) => unpack_v4(&k[..6]),
            Ends::Other(t) => t.0,
        }
    }

    pub fn remote(&self) -> SocketAddr {
        match &self.0 {
            Ends::V4(k) => unpack_v4(&k[6..]),
            Ends::Other(t) => t.1,
        }
    }

    /// Both ends, local then remote, exactly as given to [`Tuple::new`].
    pub fn ends(&self) -> (SocketAddr, SocketAddr) {
        (self.local(), self.remote())
    }
}

fn pack_v4(a: SocketAddrV4) -> [u8; 6] {
    let [a0, a1, a2, a3] = a.ip().octets();
    let [p0, p1] = a.port().to_be_bytes();
    [a0, a1, a2, a3, p0, p1]
}

fn unpack_v4(b: &[u8]) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::new(b[0], b[1], b[2], b[3]),
        u16::from_be_bytes([b[4], b[5]]),
    ))
}

impl fmt::Debug for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tuple")
            .field("local", &self.local())
            .field("remote", &self.remote())
            .finish()
    }
}

/// One TCP socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Connection {
    /// The two ends: [`Connection::local`], [`Connection::remote`].
    tuple: Tuple,
    pub state: TcpState,
    /// Socket inode; 0 when the kernel has no file for it (TIME_WAIT, orphans). 32 bits, as
    /// the kernel numbers socket inodes (`get_next_ino`) and reports them (`sock_diag`).
    pub inode: u32,
    /// Owning user, where the backend reports one. Shared: one pointer per connection
    /// where the uid and its name took 24 bytes.
    pub user: Option<Arc<User>>,
    /// Processes holding the socket now, or that held it (see `attribution`). Shared: the
    /// sockets of one process hold one list between them, and the tracker keeps it across
    /// polls, so 100k connections cost no 100k allocations.
    pub owners: Owners,
    pub attribution: Option<Attribution>,
    /// Set by the tracker; `None` on a snapshot no tracker has seen.
    pub tracking: Option<Tracking>,
    /// One of the close lab's own sockets (see `lab::LabRecogniser`).
    pub lab: bool,
    /// The kernel timer running on the socket; `None` when none runs or the backend cannot
    /// see timers (netstat2).
    pub timer: Option<Timer>,
    /// [`Connection::recv_q`], or [`UNKNOWN_QUEUE`]: 4 bytes where an `Option<u32>` takes 8.
    recv_q: u32,
    /// [`Connection::send_q`], or [`UNKNOWN_QUEUE`].
    send_q: u32,
}

/// A queue the backend cannot see. The kernel never reports this size: its queues are
/// bounded by `int`-sized buffers and backlogs (`sock_diag` clamps them to `INT_MAX`).
const UNKNOWN_QUEUE: u32 = u32::MAX;

fn queue(q: u32) -> Option<u32> {
    (q != UNKNOWN_QUEUE).then_some(q)
}

impl Connection {
    /// A connection with no owner information; the collector and fixtures fill in the rest.
    pub fn new(local: SocketAddr, remote: SocketAddr, state: TcpState) -> Self {
        Connection::on(Tuple::new(local, remote), state)
    }

    /// [`Connection::new`] on a packed 4-tuple.
    pub fn on(tuple: Tuple, state: TcpState) -> Self {
        Connection {
            tuple,
            state,
            inode: 0,
            user: None,
            owners: Owners::default(),
            attribution: None,
            tracking: None,
            lab: false,
            timer: None,
            recv_q: UNKNOWN_QUEUE,
            send_q: UNKNOWN_QUEUE,
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.tuple.local()
    }

    pub fn remote(&self) -> SocketAddr {
        self.tuple.remote()
    }

    /// Both ends, as one value (the tracker's key).
    pub fn tuple(&self) -> &Tuple {
        &self.tuple
    }

    /// Bytes received and not yet read by the application (for LISTEN: connections waiting
    /// for `accept()`); `None` when the backend cannot see queues (netstat2).
    pub fn recv_q(&self) -> Option<u32> {
        queue(self.recv_q)
    }

    /// Bytes sent and not yet acknowledged by the peer (for LISTEN: the accept backlog);
    /// `None` when the backend cannot see queues.
    pub fn send_q(&self) -> Option<u32> {
        queue(self.send_q)
    }

    /// Sets both queues; `None` where the backend cannot see one. A size the kernel cannot
    /// report (`u32::MAX`) reads back one less.
    pub fn set_queues(&mut self, recv: Option<u32>, send: Option<u32>) {
        let known = |q: Option<u32>| q.map_or(UNKNOWN_QUEUE, |q| q.min(UNKNOWN_QUEUE - 1));
        self.recv_q = known(recv);
        self.send_q = known(send);
    }

    /// Owning user id, where the backend reports one.
    pub fn uid(&self) -> Option<u32> {
        self.user.as_ref().map(|u| u.uid)
    }

    /// The owning user's name, where the uid resolves to one.
    pub fn user_name(&self) -> Option<&str> {
        self.user.as_ref()?.name.as_deref()
    }

    /// The first owner, the one shown where only one fits.
    pub fn owner(&self) -> Option<&Owner> {
        self.owners.first()
    }

    /// How long the connection has been in its state at `now`, as a lower bound: measured
    /// from the first poll that saw the state. `None` when only one poll has seen it and that
    /// poll was lingertop's first, so nothing is known of when the state began.
    ///
    /// A TIME_WAIT whose kernel timer is known has an exact age from a single poll: the
    /// kernel started a 60 s countdown when the state began, so the age is 60 s minus the time
    /// left (as of the poll that read it; the larger of that and the tracked bound is used).
    pub fn state_age(&self, now: SystemTime) -> Option<Duration> {
        let from_timer = self.time_wait_age();
        let tracked = self.tracking.as_ref().and_then(|t| {
            if !t.state_start_observed && t.state_since() >= now {
                return None;
            }
            Some(now.duration_since(t.state_since()).unwrap_or_default())
        });
        match (from_timer, tracked) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// The age of a TIME_WAIT from its kernel countdown, at the poll that read it.
    fn time_wait_age(&self) -> Option<Duration> {
        let t = self.timer.filter(|t| t.kind == TimerKind::TimeWait)?;
        // An orphaned FIN_WAIT_2 also counts down on a TIME_WAIT timer, but from
        // tcp_fin_timeout and not from the start of its state: only TIME_WAIT is exact.
        (self.state == TcpState::TimeWait && t.expires() <= TIME_WAIT_LEN)
            .then(|| TIME_WAIT_LEN - t.expires())
    }
}

/// Whether every socket could be mapped to its process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProcessInfo {
    Full,
    /// Some sockets show no process; `reason` says why and what to do.
    Partial {
        reason: String,
    },
}

impl ProcessInfo {
    pub fn name(&self) -> &'static str {
        match self {
            ProcessInfo::Full => "full",
            ProcessInfo::Partial { .. } => "partial",
        }
    }
}

/// An inclusive port range, such as the kernel's ephemeral range.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }

    pub fn len(&self) -> u32 {
        u32::from(self.high.saturating_sub(self.low)) + 1
    }

    pub fn is_empty(&self) -> bool {
        self.high < self.low
    }
}

/// Every TCP socket of the machine at one poll.
#[derive(Clone, Debug)]
pub struct Snapshot {
    pub taken_at: SystemTime,
    pub host: String,
    pub process_info: ProcessInfo,
    /// The local ephemeral port range in force at this poll.
    pub ephemeral_ports: PortRange,
    /// How long the poll took.
    pub poll_duration: Duration,
    pub connections: Vec<Connection>,
    /// States this poll did not read from the kernel; `None` when it read them all.
    pub unread: Option<Unread>,
}

/// States a poll did not ask the kernel for. On a big table the live modes read ESTABLISHED
/// only every few polls (see `config::EstablishedEvery`): the tracker then carries those
/// connections from the previous snapshot, as they were when last read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unread {
    pub states: Vec<TcpState>,
    /// When these states were last read (set by the tracker; `None` before it has seen a
    /// poll that read them).
    pub last_read: Option<SystemTime>,
}

impl Unread {
    pub fn contains(&self, s: TcpState) -> bool {
        self.states.contains(&s)
    }
}

impl Snapshot {
    /// A snapshot of `connections` taken at `taken_at` on host `fixture`, with full process
    /// information and Linux's default ephemeral range: the base of the fixtures.
    pub fn fixture(taken_at: SystemTime, connections: Vec<Connection>) -> Snapshot {
        Snapshot {
            taken_at,
            host: "fixture".into(),
            process_info: ProcessInfo::Full,
            ephemeral_ports: PortRange {
                low: 32768,
                high: 60999,
            },
            poll_duration: Duration::ZERO,
            connections,
            unread: None,
        }
    }

    pub fn counts(&self) -> StateCounts {
        let mut c = StateCounts::default();
        for conn in &self.connections {
            c.add(conn.state);
        }
        c
    }
}

/// `127.0.0.1:80`, `[::1]:80`; IPv4-mapped IPv6 addresses are shown as IPv4.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn time_wait(state: TcpState, left: Duration) -> Connection {
        let mut c = Connection::new(
            "127.0.0.1:40000".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap(),
            state,
        );
        c.timer = Some(Timer {
            kind: TimerKind::TimeWait,
            expires_ms: u32::try_from(left.as_millis()).unwrap(),
            retransmits: 0,
        });
        c
    }

    #[test]
    fn tuples_give_back_their_ends_exactly() {
        for (l, r) in [
            ("127.0.0.1:5000", "10.1.2.3:65535"),
            ("0.0.0.0:80", "0.0.0.0:0"),
            ("[::1]:80", "[::1]:40000"),
            ("[fe80::1%3]:80", "[::ffff:10.0.0.1]:1"),
            ("[::ffff:10.0.0.1]:80", "[::ffff:10.0.0.2]:1"),
            ("10.0.0.1:80", "[::1]:1"),
        ] {
            let ends: (SocketAddr, SocketAddr) = (l.parse().unwrap(), r.parse().unwrap());
            let t = Tuple::new(ends.0, ends.1);
            assert_eq!(t.ends(), ends);
            assert_eq!(t, Tuple::new(ends.0, ends.1));
            assert_ne!(t, Tuple::new(ends.1, ends.0));
        }
        // An IPv4-mapped end is not the IPv4 end it maps: the kernel reports them apart.
        assert_ne!(
            Tuple::new(
                "[::ffff:10.0.0.1]:80".parse().unwrap(),
                "[::ffff:10.0.0.2]:1".parse().unwrap()
            ),
            Tuple::new(
                "10.0.0.1:80".parse().unwrap(),
                "10.0.0.2:1".parse().unwrap()
            )
        );
        assert_eq!(std::mem::size_of::<Tuple>(), 16);
    }

    #[test]
    fn a_connection_stays_compact() {
        use std::mem::size_of;
        // Two snapshots of 100k connections are alive at the peak of the live modes: every
        // 8 bytes here is 1.5 MiB there. Each part in one word or less.
        assert_eq!(size_of::<Tuple>(), 16);
        assert_eq!(size_of::<Option<Arc<User>>>(), 8);
        assert_eq!(size_of::<Owners>(), 8);
        assert_eq!(size_of::<Option<Timer>>(), 8);
        assert_eq!(size_of::<Option<Tracking>>(), 40);
        assert!(
            size_of::<Connection>() <= 96,
            "Connection grew to {} bytes",
            size_of::<Connection>()
        );
    }

    #[test]
    fn queues_read_back_as_set() {
        let mut c = time_wait(TcpState::Established, Duration::ZERO);
        assert_eq!((c.recv_q(), c.send_q()), (None, None));
        c.set_queues(Some(0), Some(7));
        assert_eq!((c.recv_q(), c.send_q()), (Some(0), Some(7)));
        c.set_queues(Some(u32::MAX - 1), None);
        assert_eq!((c.recv_q(), c.send_q()), (Some(u32::MAX - 1), None));
    }

    #[test]
    fn empty_owners_are_the_default() {
        assert_eq!(Owners::from(Vec::new()), Owners::default());
        assert!(
            Owners::from(Vec::new()).0.is_none(),
            "no allocation while empty"
        );
        let o: Owners = [1, 2]
            .into_iter()
            .map(|pid| Owner { pid, name: None })
            .collect();
        assert_eq!(o.iter().map(|o| o.pid).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(o.clone(), o);
    }

    #[test]
    fn time_wait_age_comes_from_the_kernel_countdown_on_a_single_poll() {
        let c = time_wait(TcpState::TimeWait, Duration::from_millis(45_500));
        assert_eq!(c.state_age(at(0)), Some(Duration::from_millis(14_500)));
    }

    #[test]
    fn the_tracked_bound_wins_when_it_is_larger() {
        let mut c = time_wait(TcpState::TimeWait, Duration::from_secs(59));
        c.tracking = Some(Tracking::new(at(0), at(0), true));
        assert_eq!(c.state_age(at(5)), Some(Duration::from_secs(5)));
    }

    #[test]
    fn an_orphaned_fin_wait_2_countdown_is_no_age() {
        let c = time_wait(TcpState::FinWait2, Duration::from_secs(30));
        assert_eq!(c.state_age(at(0)), None);
        let mut keepalive = time_wait(TcpState::TimeWait, Duration::from_secs(30));
        keepalive.timer.as_mut().unwrap().kind = TimerKind::Keepalive;
        assert_eq!(keepalive.state_age(at(0)), None);
    }
}
