//! One TCP socket as lingertop sees it, and the snapshot of all of them at one poll.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::age::AgeSource;
use super::netns::{NetnsId, NetnsTable, OWN_NETNS, Ranges};
use super::ports::PortRange;
use super::state::{StateCounts, TcpState};
use super::timer::Timer;

mod receive;
pub use receive::{ReceiveQueue, Shutdown};

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
    /// No owner from the socket table or an earlier poll; the kernel's events saw this
    /// process act on the socket (by its cookie) in its own system call: connect, listen,
    /// send, receive, shutdown or close.
    Event,
    /// No owner yet: the socket's lookup was deferred by the rate limit of the `/proc` scan,
    /// so nobody is named, not because nobody visible holds it (a later poll, or the
    /// kernel's events, names it). The only attribution that comes with no owner.
    Pending,
}

impl Attribution {
    pub fn name(self) -> &'static str {
        match self {
            Attribution::Owner => "owner",
            Attribution::LastOwner => "last-owner",
            Attribution::Listener => "listener",
            Attribution::Event => "event",
            Attribution::Pending => "pending",
        }
    }

    /// The VIA column's word: how the owner is known when it does not hold the socket now
    /// (empty for [`Attribution::Owner`]).
    pub fn short(attribution: Option<Attribution>) -> &'static str {
        match attribution {
            Some(Attribution::LastOwner) => "last",
            Some(Attribution::Listener) => "lsn",
            Some(Attribution::Event) => "evt",
            Some(Attribution::Pending) => "pend",
            Some(Attribution::Owner) | None => "",
        }
    }
}

/// What is known of a connection's history: 32 bytes, carried by every connection of every
/// snapshot (times as [`Nanos`], earlier states shared between polls). The collector seeds
/// it with the kernel's bound on the state's start where it reads one
/// ([`Tracking::from_kernel`]); the tracker folds that into what it learns across polls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tracking {
    first_seen: Nanos,
    /// The latest time the current state can have begun (ages are lower bounds).
    state_since: Nanos,
    /// States seen before the current one, oldest first, with when each began; `None`
    /// while there are none, as nearly always. Shared: a connection that stays in its state
    /// hands the same list to the next poll without copying it. Behind a thin pointer, 8
    /// bytes where an `Arc<[_]>` takes 16, for the room of the socket cookie.
    previous: Option<History>,
    source: AgeSource,
}

/// Earlier states with when each began, behind one thin pointer.
type History = Arc<Box<[(TcpState, Nanos)]>>;

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
            source: if state_start_observed {
                AgeSource::Observed
            } else {
                AgeSource::FirstSight
            },
        }
    }

    /// The kernel's word, at the read that ended at `read_at`, that the connection has been
    /// in its state for at least `age` (see [`super::age::kernel_age`]).
    pub fn from_kernel(read_at: SystemTime, age: Duration) -> Self {
        let read = nanos(read_at);
        let age = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
        Tracking {
            first_seen: read,
            state_since: read.saturating_sub(age),
            previous: None,
            source: AgeSource::Kernel,
        }
    }

    /// Takes the kernel's bound in `seed` (from [`Tracking::from_kernel`]) where it is older
    /// than what is known, or where only the first sight is known: a kernel age shorter
    /// than the read (a state that began during it) still says more than "unknown", and
    /// counts from the poll.
    pub(crate) fn absorb(&mut self, seed: Option<&Tracking>) {
        let Some(k) = seed.filter(|k| k.source == AgeSource::Kernel) else {
            return;
        };
        if k.state_since < self.state_since || self.source == AgeSource::FirstSight {
            self.state_since = self.state_since.min(k.state_since);
            self.source = AgeSource::Kernel;
        }
    }

    /// The same connection entering `state` at `at`, after the states it went through so far
    /// (at most `keep` of the latest are remembered) and `was`, the one it leaves.
    pub(crate) fn entering(&self, was: TcpState, at: Nanos, keep: usize) -> Self {
        let earlier = self.previous.as_deref().map_or(&[][..], |p| p);
        let skip = (earlier.len() + 1).saturating_sub(keep);
        let previous: Box<[(TcpState, Nanos)]> = earlier
            .iter()
            .copied()
            .chain([(was, self.state_since)])
            .skip(skip)
            .collect();
        Tracking {
            first_seen: self.first_seen,
            state_since: at,
            previous: Some(Arc::new(previous)),
            source: AgeSource::Observed,
        }
    }

    /// What a recording kept of a connection's history (`record`): when it was first
    /// seen, when its state began, the states before it with when each began, and where
    /// its age comes from.
    pub fn restored(
        first_seen: SystemTime,
        state_since: SystemTime,
        previous: Vec<(TcpState, SystemTime)>,
        source: AgeSource,
    ) -> Self {
        Tracking {
            first_seen: nanos(first_seen),
            state_since: nanos(state_since),
            previous: (!previous.is_empty())
                .then(|| Arc::new(previous.into_iter().map(|(s, t)| (s, nanos(t))).collect())),
            source,
        }
    }

    /// The first poll that saw this connection.
    pub fn first_seen(&self) -> SystemTime {
        time(self.first_seen)
    }

    /// The latest time the current state can have begun: the first poll that saw it in the
    /// state, or earlier where the kernel says so.
    pub fn state_since(&self) -> SystemTime {
        time(self.state_since)
    }

    /// Where the age in the state comes from.
    pub fn source(&self) -> AgeSource {
        self.source
    }

    /// Whether lingertop saw the state begin (see [`Tracking::new`]).
    pub fn state_start_observed(&self) -> bool {
        self.source == AgeSource::Observed
    }

    /// States seen before the current one, oldest first, with when each began.
    pub fn previous(&self) -> impl ExactSizeIterator<Item = (TcpState, SystemTime)> + '_ {
        self.previous
            .as_deref()
            .map_or(&[][..], |p| p)
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

/// The two ends of a connection, local then remote, and the network namespace they are
/// ends in, in 16 bytes where a pair of `SocketAddr`s takes 64: two IPv4 ends (nearly every
/// socket of a busy machine) packed inline, anything else boxed. Each pair of ends has
/// exactly one form, so tuples are equal (and hash alike) exactly when their ends and
/// namespaces are; the ends come back exactly as given (IPv4-mapped IPv6 addresses stay
/// IPv6).
///
/// The namespace is part of the identity because `127.0.0.1:80` in two containers is two
/// endpoints: the same four numbers in two namespaces are two connections. It lives in the
/// bytes the enum's tag leaves free in either form, so it costs no space at all.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Tuple(Ends);

#[derive(Clone, PartialEq, Eq, Hash)]
enum Ends {
    /// Local address and port, then remote address and port, ports big-endian.
    V4(NetnsId, [u8; 12]),
    Other(NetnsId, Box<(SocketAddr, SocketAddr)>),
}

impl Tuple {
    /// Both ends in lingertop's own network namespace ([`OWN_NETNS`]).
    pub fn new(local: SocketAddr, remote: SocketAddr) -> Self {
        Tuple::in_netns(local, remote, OWN_NETNS)
    }

    /// Both ends in the network namespace `netns` (an id of the snapshot's [`NetnsTable`]).
    pub fn in_netns(local: SocketAddr, remote: SocketAddr, netns: NetnsId) -> Self {
        match (local, remote) {
            (SocketAddr::V4(l), SocketAddr::V4(r)) => {
                let mut k = [0u8; 12];
                k[..6].copy_from_slice(&pack_v4(l));
                k[6..].copy_from_slice(&pack_v4(r));
                Tuple(Ends::V4(netns, k))
            }
            _ => Tuple(Ends::Other(netns, Box::new((local, remote)))),
        }
    }

    /// The network namespace of both ends.
    pub fn netns(&self) -> NetnsId {
        match &self.0 {
            Ends::V4(ns, _) | Ends::Other(ns, _) => *ns,
        }
    }

    pub fn local(&self) -> SocketAddr {
        match &self.0 {
            Ends::V4(_, k) => unpack_v4(&k[..6]),
            Ends::Other(_, t) => t.0,
        }
    }

    pub fn remote(&self) -> SocketAddr {
        match &self.0 {
            Ends::V4(_, k) => unpack_v4(&k[6..]),
            Ends::Other(_, t) => t.1,
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
            .field("netns", &self.netns())
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
    /// The kernel's socket cookie (netlink backend), unique for the socket's life and kept
    /// from SYN_RECV to TIME_WAIT: a new socket on a reused 4-tuple has another. 0 where the
    /// backend has none (netstat2).
    pub cookie: u64,
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
    /// The kernel's shutdown bits, where the backend reports them (sock_diag, full
    /// sockets); they tell the peer's FIN from data in the receive queue.
    pub shutdown: Option<Shutdown>,
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
            cookie: 0,
            user: None,
            owners: Owners::default(),
            attribution: None,
            tracking: None,
            lab: false,
            timer: None,
            recv_q: UNKNOWN_QUEUE,
            send_q: UNKNOWN_QUEUE,
            shutdown: None,
        }
    }

    pub fn local(&self) -> SocketAddr {
        self.tuple.local()
    }

    pub fn remote(&self) -> SocketAddr {
        self.tuple.remote()
    }

    /// Both ends and their namespace, as one value (the tracker's key).
    pub fn tuple(&self) -> &Tuple {
        &self.tuple
    }

    /// The network namespace the connection lives in (an id of [`Snapshot::netns`]).
    pub fn netns(&self) -> NetnsId {
        self.tuple.netns()
    }

    /// The same connection in namespace `netns` instead (fixtures that spread one set of
    /// connections over several namespaces).
    pub fn moved_to(mut self, netns: NetnsId) -> Self {
        self.tuple = Tuple::in_netns(self.local(), self.remote(), netns);
        self
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

    /// Whether its owner lookup was deferred (see [`Attribution::Pending`]).
    pub fn owner_pending(&self) -> bool {
        self.attribution == Some(Attribution::Pending)
    }

    /// How long the connection has been in its state at `now`, at least (see
    /// [`Connection::age_source`] for how it is known, and `model::age`). `None` when
    /// nothing is known of when the state began: no kernel clock, and only lingertop's first
    /// poll has seen it.
    pub fn state_age(&self, now: SystemTime) -> Option<Duration> {
        self.state_age_at(nanos(now))
    }

    /// [`Connection::state_age`] at `now` given as nanoseconds since the epoch: the same
    /// duration, in integer arithmetic (a writer of many rows converts `now` once).
    pub(crate) fn state_age_at(&self, now: Nanos) -> Option<Duration> {
        let t = self.tracking.as_ref()?;
        if t.source == AgeSource::FirstSight && t.state_since >= now {
            return None;
        }
        Some(Duration::from_nanos(now.saturating_sub(t.state_since)))
    }

    /// Where [`Connection::state_age`] comes from; `None` when there is no age.
    pub fn age_source(&self, now: SystemTime) -> Option<AgeSource> {
        self.state_age(now)?;
        self.tracking.as_ref().map(Tracking::source)
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
    /// The network namespaces read, by the id each connection carries; empty where the
    /// backend reads only its own (netstat2).
    pub netns: Arc<NetnsTable>,
    /// Each namespace's close counters (`/proc/net/snmp`, `/proc/net/netstat` read inside
    /// it) at this poll; empty where the backend does not read them (netstat2).
    pub counters: Vec<(NetnsId, crate::model::CounterCloses)>,
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
    /// Owners this poll's `/proc` scan found for sockets of these states whose lookup was
    /// pending (by socket inode): the tracker gives them to the connections it carries.
    pub found_owners: Vec<(u32, Owners)>,
}

impl Unread {
    pub fn contains(&self, s: TcpState) -> bool {
        self.states.contains(&s)
    }
}

impl Snapshot {
    /// The ephemeral port range of each namespace it read.
    pub fn port_ranges(&self) -> Ranges<'_> {
        Ranges::new(self.ephemeral_ports, &self.netns)
    }

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
            netns: Arc::default(),
            counters: Vec::new(),
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
mod tests;
