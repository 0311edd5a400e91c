//! Reads the OS socket table and the processes behind it, and turns one read into a
//! [`Snapshot`]. The OS boundary is the small [`SocketSource`] trait: the portable netstat2
//! backend implements it, a faster Linux backend can slot in beside it, and tests feed
//! fixtures through it.
//!
//! Two backends: `netlink` (Linux: sock_diag with timers and queues, and an owner cache
//! that rescans `/proc` only when unknown sockets appear) and the portable `netstat2`.
//! [`Collector::from_choice`] is the one place that picks between them.
//!
//! What the socket table does not say (process and user names, the ephemeral port range,
//! our own uid, the host's name) comes through [`Host`], whose lookups tests replace with
//! fakes. The collector prints nothing: what the user should know comes back as [`Note`]s.

#[cfg(target_os = "linux")]
pub mod close;
mod host;
#[cfg(target_os = "linux")]
pub mod netlink;
mod netstat2_backend;
#[cfg(target_os = "linux")]
mod owners;
mod processes;
#[cfg(test)]
mod tests;
#[cfg(target_os = "linux")]
pub mod workload;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::model::{
    Attribution, Connection, CounterCloses, NetnsChoice, NetnsId, NetnsTable, Owner, Owners,
    PortRange, ProcessInfo, Snapshot, StateCounts, TcpState, Timer, Tracking, Tuple, Unread,
};

pub use host::{Host, ephemeral_ports, parse_port_range};

use crate::caps::{self, Caps};
use crate::model::action::Refusal;
#[cfg(target_os = "linux")]
use netlink::DiagError;
#[cfg(target_os = "linux")]
pub use netlink::NetlinkSource;
pub use netstat2_backend::Netstat2Source;
pub use processes::{
    ProcessCommand, ProcessLookup, SysProcesses, SysUsers, UserLookup, command_of,
};
use processes::{ProcessNames, UserNames};

/// One socket as the OS reports it, before process names are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSocket {
    /// Both ends, packed as the connection keeps them (16 bytes, where two `SocketAddr`s
    /// take 64: the buffer of a 100k-socket read is 5 MB smaller).
    pub tuple: Tuple,
    pub state: TcpState,
    /// 0 when the socket has no file (TIME_WAIT, orphans) or the OS has no inodes.
    pub inode: u32,
    /// The kernel's socket cookie, 0 where the backend has none.
    pub cookie: u64,
    /// The latest time the socket's state can have begun, by the kernel's clocks
    /// (`model::age`); `None` where they say nothing or the backend has none.
    pub kernel_since: Option<SystemTime>,
    pub uid: Option<u32>,
    /// Every process holding a descriptor for the socket.
    pub pids: Vec<u32>,
    /// The kernel timer on the socket, where the backend sees timers.
    pub timer: Option<Timer>,
    /// Receive and send queues, where the backend sees them.
    pub recv_q: Option<u32>,
    pub send_q: Option<u32>,
    /// The owner lookup of this new socket was deferred by the rate limit: `pids` is empty
    /// for now, not because nobody visible holds it.
    pub owner_pending: bool,
}

/// A socket with a file, as [`SocketSource::read_direct`] lists it for the owner lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Held {
    /// Its position in the connections read; [`Held::UNREAD`] for a socket of a state this
    /// read left out whose deferred owner lookup the read's scan made (its owners go to the
    /// snapshot's [`Unread::found_owners`]).
    pub index: u32,
    pub inode: u32,
    pub uid: u32,
    /// Every process holding a descriptor for the socket.
    pub pids: Vec<u32>,
    /// As [`RawSocket::owner_pending`].
    pub owner_pending: bool,
}

impl Held {
    /// The position of a socket that is not in this read.
    pub const UNREAD: u32 = u32::MAX;
}

/// Which backend reads the socket table (`--backend`, `collector.backend`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// netlink where sock_diag works (Linux), else netstat2.
    #[default]
    Auto,
    /// Linux sock_diag: timers, queues, kernel-side state selection, cached owners.
    Netlink,
    /// The portable netstat2 crate (Linux, macOS, Windows).
    Netstat2,
}

/// How a source should read; a backend ignores what it cannot do (the caller filters
/// anyway).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Ask the kernel for these states only; `None` for all. Callers that attribute
    /// connections to listeners include LISTEN.
    pub states: Option<Vec<TcpState>>,
    /// Look up the owner of every new socket at every read (one-shot snapshots, whose
    /// output must be complete) instead of rate-limited rescans (live modes).
    pub exact_owners: bool,
}

/// The socket table could not be read at all. Sockets that vanish mid-read are not errors.
#[derive(Debug, thiserror::Error)]
pub enum CollectError {
    #[error("cannot read the TCP socket table through {backend}: {detail}")]
    Backend {
        backend: &'static str,
        detail: String,
    },
}

/// Something the user should know about the collector that is not an error (a fallback
/// backend, say). The collector never prints: the mode that owns the terminal decides
/// whether and where to say it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// One line, without the `lingertop: ` prefix.
    pub message: String,
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// The OS boundary: something that lists every TCP socket (IPv4 and IPv6, every state).
/// The read is all a source must do (netstat2, a test's fake); what a source reading the
/// kernel's table itself can do besides is one optional capability, [`KernelTable`].
pub trait SocketSource: Send {
    /// Short name for messages (`netstat2`).
    fn name(&self) -> &'static str;
    /// Replaces `out`'s contents with the current sockets.
    fn read(&mut self, out: &mut Vec<RawSocket>) -> Result<(), CollectError>;
    /// The source's reading of the kernel's table beyond the plain list, where it has one
    /// (netlink); `None`, the default, for a source that only lists sockets.
    fn kernel_table(&mut self) -> Option<&mut dyn KernelTable> {
        None
    }
}

/// What a source that reads the kernel's table itself does besides listing it: the kernel
/// leaves out the states not asked for, counts states apart from a read, reads straight into
/// connections, and reads each network namespace apart (with its close counters).
pub trait KernelTable {
    /// Applies `opts` to later reads; the kernel then leaves out the states
    /// [`ReadOptions::states`] does not ask for, so that reading fewer states costs less.
    fn set_options(&mut self, opts: &ReadOptions);
    /// How many sockets are in each of `states`, without reading them into connections
    /// (what a read of fewer states leaves out still counts in a total).
    fn count_states(&mut self, states: &[TcpState]) -> Result<StateCounts, CollectError>;
    /// Reads straight into `out` (ends, state, inode, timer, queues; no owners or user),
    /// listing in `held` the sockets with a file and their holders: one pass and no
    /// intermediate buffer, where [`SocketSource::read`] builds a `RawSocket` per socket
    /// first.
    fn read_direct(
        &mut self,
        out: &mut Vec<Connection>,
        held: &mut Vec<Held>,
    ) -> Result<(), CollectError>;
    /// The network namespaces the last read covered, by the id its connections carry.
    fn netns(&self) -> Arc<NetnsTable>;
    /// How the last read went through the namespaces.
    fn netns_reads(&self) -> NetnsReads;
    /// Each namespace's close counters, read inside it.
    fn counters(&mut self) -> Vec<(NetnsId, CounterCloses)>;
    /// Aborts each socket of `targets` (its namespace and cookie) with `SOCK_DESTROY`, sent
    /// from inside its namespace: one result per target, in order.
    fn destroy(&mut self, targets: &[(NetnsId, u64)]) -> Vec<Result<(), Refusal>>;
}

/// Raw sockets converted between two shrinks of the collector's buffer: large enough that
/// shrinking costs nothing next to the conversion, small enough that little of the buffer
/// outlives its contents.
const SHRINK_EVERY: usize = 8192;

/// How one read went through the network namespaces: each was dumped (the kernel walked its
/// table), looked up (quiet and small: its known sockets asked for one by one) or skipped
/// (no TCP socket in it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetnsReads {
    pub dumped: usize,
    pub looked_up: usize,
    pub empty: usize,
}

/// Polls a [`SocketSource`] and resolves owners, users and the context of a snapshot.
pub struct Collector {
    source: Box<dyn SocketSource>,
    names: ProcessNames,
    users: UserNames,
    host: String,
    euid: Option<u32>,
    caps: Caps,
    ports: Box<dyn FnMut() -> PortRange + Send>,
    raw: Vec<RawSocket>,
    notes: Vec<Note>,
    /// The states the options leave out, where the source leaves them out.
    unread: Option<Vec<TcpState>>,
    /// Sockets the last complete read and the last read of fewer states returned.
    last_read: [usize; 2],
    /// The sockets with a file of the last direct read (kept for its capacity).
    held: Vec<Held>,
    /// Whether the source reads the kernel's table itself ([`KernelTable`]).
    selective: bool,
}

impl Collector {
    /// A collector over `source`, with this machine's lookups.
    pub fn new(source: Box<dyn SocketSource>) -> Self {
        Collector::with_host(source, Host::system())
    }

    /// A collector over `source` whose names, ports and uid come from `host`.
    pub fn with_host(mut source: Box<dyn SocketSource>, host: Host) -> Self {
        let selective = source.kernel_table().is_some();
        Collector {
            source,
            names: ProcessNames::new(host.processes),
            users: UserNames::new(host.users),
            host: host.name,
            euid: host.euid,
            caps: host.caps,
            ports: host.ephemeral_ports,
            raw: Vec::new(),
            notes: Vec::new(),
            unread: None,
            last_read: [0; 2],
            held: Vec::new(),
            selective,
        }
    }

    /// The collector for this platform's default backend (`auto`).
    pub fn system() -> Self {
        Collector::from_choice(Backend::Auto).unwrap_or_else(|_| Collector::netstat2())
    }

    fn netstat2() -> Self {
        Collector::new(Box::new(Netstat2Source))
    }

    /// The collector for `choice`, reading every network namespace it may. `auto` takes
    /// netlink where its first dump works and netstat2 otherwise, saying why in
    /// [`Collector::notes`]; an explicit `netlink` that cannot work is an error.
    pub fn from_choice(choice: Backend) -> Result<Self, CollectError> {
        Collector::in_netns(choice, &NetnsChoice::default())
    }

    /// The collector for `choice` reading the network namespaces `netns` asks for (netlink
    /// only: netstat2 reads lingertop's own namespace, and asking it for another is an
    /// error).
    pub fn in_netns(choice: Backend, netns: &NetnsChoice) -> Result<Self, CollectError> {
        let own_only = matches!(netns, NetnsChoice::All | NetnsChoice::Host);
        match choice {
            Backend::Netstat2 if !own_only => Err(CollectError::Backend {
                backend: "netstat2",
                detail: format!(
                    "it reads only lingertop's own network namespace, not {netns}; use --backend netlink (Linux) or run lingertop inside that namespace"
                ),
            }),
            Backend::Netstat2 => Ok(Collector::netstat2()),
            #[cfg(target_os = "linux")]
            Backend::Netlink => match NetlinkSource::open_in(netns.clone()) {
                Ok(src) => Ok(Collector::with_note(src)),
                Err(e) => Err(CollectError::Backend {
                    backend: "netlink",
                    detail: format!("{e}; use --backend netstat2 or auto"),
                }),
            },
            #[cfg(not(target_os = "linux"))]
            Backend::Netlink => Err(CollectError::Backend {
                backend: "netlink",
                detail: "sock_diag exists on Linux only; use --backend netstat2 or auto"
                    .to_string(),
            }),
            #[cfg(target_os = "linux")]
            Backend::Auto => Ok(match NetlinkSource::open_in(netns.clone()) {
                Ok(src) => Collector::with_note(src),
                Err(e @ DiagError::Enter(_)) if !own_only => {
                    return Err(CollectError::Backend {
                        backend: "netlink",
                        detail: e.to_string(),
                    });
                }
                Err(e) => Collector::netstat2().noting(netlink_fallback(&e)),
            }),
            #[cfg(not(target_os = "linux"))]
            Backend::Auto => Ok(Collector::netstat2()),
        }
    }

    /// A netlink collector, with what its first look at the namespaces could not see.
    #[cfg(target_os = "linux")]
    fn with_note(src: NetlinkSource) -> Self {
        let note = src.note();
        let mut c = Collector::new(Box::new(src));
        c.notes.extend(note.map(|message| Note { message }));
        c
    }

    pub fn backend_name(&self) -> &'static str {
        self.source.name()
    }

    /// What the user should know about this collector (why `auto` did not get the fastest
    /// backend, when it did not); the caller prints them, or not.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }

    fn noting(mut self, note: Note) -> Self {
        self.notes.push(note);
        self
    }

    /// Applies `opts` to the source's later reads (a source that only lists sockets reads
    /// every state, and finds owners its own way, whatever they say).
    pub fn set_options(&mut self, opts: &ReadOptions) {
        let Some(kernel) = self.source.kernel_table() else {
            self.unread = None;
            return;
        };
        kernel.set_options(opts);
        self.unread = opts
            .states
            .as_ref()
            .map(|read| {
                TcpState::ALL
                    .into_iter()
                    .filter(|s| !read.contains(s))
                    .collect::<Vec<_>>()
            })
            .filter(|unread| !unread.is_empty());
    }

    /// Whether asking for fewer states makes a read cheaper (netlink: the kernel leaves
    /// them out); where it does not, the live modes always read every state.
    pub fn selects_states(&self) -> bool {
        self.selective
    }

    /// The sockets in the states the options leave unread, counted per state by the
    /// kernel (one dump of those states, parsed no further than each socket's state);
    /// `None` when every state is read.
    pub fn count_unread(&mut self) -> Result<Option<StateCounts>, CollectError> {
        match (&self.unread, self.source.kernel_table()) {
            (Some(states), Some(kernel)) => kernel.count_states(states).map(Some),
            _ => Ok(None),
        }
    }

    /// Aborts each socket of `targets` (namespace, cookie) from inside its namespace; a
    /// source without the kernel's table (netstat2) refuses every one: it has no cookies to
    /// check a socket's identity with.
    pub fn destroy(&mut self, targets: &[(NetnsId, u64)]) -> Vec<Result<(), Refusal>> {
        match self.source.kernel_table() {
            Some(kernel) => kernel.destroy(targets),
            None => vec![Err(Refusal::NoCookie); targets.len()],
        }
    }

    /// How the last poll read the network namespaces (`None`: the source reads only its own).
    pub fn netns_reads(&mut self) -> Option<NetnsReads> {
        self.source.kernel_table().map(|k| k.netns_reads())
    }

    /// Reads the socket table once.
    pub fn poll(&mut self) -> Result<Snapshot, CollectError> {
        let started = Instant::now();
        let taken_at = SystemTime::now();
        // Sized once per read from the last one, rather than doubled up from nothing,
        // copying, 17 times at 100k.
        let kind = usize::from(self.unread.is_some());
        let expect = self.last_read[kind] + self.last_read[kind] / 16;
        let mut connections = Vec::with_capacity(expect);
        let mut found_owners = Vec::new();
        let (hidden, pending) = if let Some(kernel) = self.source.kernel_table() {
            kernel.read_direct(&mut connections, &mut self.held)?;
            self.last_read[kind] = connections.len();
            self.attach_held(&mut connections, &mut found_owners)
        } else {
            self.raw.reserve(expect);
            self.source.read(&mut self.raw)?;
            self.last_read[kind] = self.raw.len();
            self.convert_raw(&mut connections)
        };
        let (netns, counters) = match self.source.kernel_table() {
            Some(kernel) => (kernel.netns(), kernel.counters()),
            // Every connection in lingertop's own namespace (`model::OWN_NETNS`).
            None => (Arc::default(), Vec::new()),
        };
        let process_info = self.process_info(hidden, pending);

        Ok(Snapshot {
            taken_at,
            host: self.host.clone(),
            process_info,
            ephemeral_ports: (self.ports)(),
            poll_duration: started.elapsed(),
            connections,
            unread: self.unread.clone().map(|states| Unread {
                states,
                last_read: None,
                found_owners,
            }),
            netns,
            counters,
        })
    }

    /// Whether a socket with a file and no visible holder is hidden from us: another user's
    /// (without root), or in another PID namespace (a container), or closed during the read.
    fn hidden(&self, pids: &[u32], uid: Option<u32>) -> bool {
        pids.is_empty() && self.euid.is_none_or(|me| me == 0 || uid != Some(me))
    }

    /// The owners list for `pids`: one per set of holders, shared by all their sockets.
    fn owners_of(&self, pids: &[u32], shared: &mut FxHashMap<Vec<u32>, Owners>) -> Owners {
        if pids.is_empty() {
            return Owners::default();
        }
        if let Some(o) = shared.get(pids) {
            return o.clone();
        }
        let o: Owners = pids
            .iter()
            .map(|&pid| Owner {
                pid,
                name: self.names.get(pid),
            })
            .collect();
        shared.insert(pids.to_vec(), o.clone());
        o
    }

    /// Gives the connections of a direct read their owners and users, and lists in `found`
    /// the owners found for sockets the read left out; returns the counts of hidden and
    /// pending sockets.
    fn attach_held(
        &mut self,
        connections: &mut [Connection],
        found: &mut Vec<(u32, Owners)>,
    ) -> (usize, usize) {
        let pids: FxHashSet<u32> = self
            .held
            .iter()
            .flat_map(|h| h.pids.iter().copied())
            .collect();
        self.names.resolve(&pids, self.unread.is_none());
        let (mut hidden, mut pending) = (0, 0);
        let mut shared = FxHashMap::default();
        for h in &self.held {
            if h.index == Held::UNREAD {
                if !h.pids.is_empty() {
                    found.push((h.inode, self.owners_of(&h.pids, &mut shared)));
                }
                continue;
            }
            if h.owner_pending {
                pending += 1;
            } else if self.hidden(&h.pids, Some(h.uid)) {
                hidden += 1;
            }
            let owners = self.owners_of(&h.pids, &mut shared);
            let Some(c) = connections.get_mut(h.index as usize) else {
                continue;
            };
            c.attribution = attribution(&owners, h.owner_pending);
            c.owners = owners;
            c.user = Some(self.users.get(h.uid));
        }
        (hidden, pending)
    }

    /// Converts the raw sockets of [`SocketSource::read`] into `connections`; returns the
    /// counts of hidden and pending sockets.
    fn convert_raw(&mut self, connections: &mut Vec<Connection>) -> (usize, usize) {
        let pids: FxHashSet<u32> = self
            .raw
            .iter()
            .flat_map(|r| r.pids.iter().copied())
            .collect();
        self.names.resolve(&pids, self.unread.is_none());

        let mut hidden = 0usize;
        let mut pending = 0usize;
        // Converted from the end, giving the buffer's memory back as it empties, so the raw
        // sockets and the connections are never both whole (8 MiB less at the peak for
        // 100k sockets). The snapshot is in the source's order reversed: the same from one
        // poll to the next, which is all the tracker's join asks (no other reader relies on
        // the order, and reversing 10 MB of connections took 2 ms).
        let mut since_shrink = 0usize;
        // One owners list per set of holders, shared by all their sockets.
        let mut shared: FxHashMap<Vec<u32>, Owners> = FxHashMap::default();
        while let Some(r) = self.raw.pop() {
            since_shrink += 1;
            if since_shrink == SHRINK_EVERY {
                since_shrink = 0;
                self.raw.shrink_to_fit();
            }
            if r.owner_pending {
                pending += 1;
            } else if r.inode != 0 && self.hidden(&r.pids, r.uid) {
                hidden += 1;
            }
            let owners = self.owners_of(&r.pids, &mut shared);
            let mut c = Connection::on(r.tuple, r.state);
            c.attribution = attribution(&owners, r.owner_pending);
            c.owners = owners;
            c.inode = r.inode;
            c.cookie = r.cookie;
            c.tracking = r
                .kernel_since
                .map(|since| Tracking::from_kernel(since, std::time::Duration::ZERO));
            c.user = r.uid.map(|u| self.users.get(u));
            c.timer = r.timer;
            c.set_queues(r.recv_q, r.send_q);
            connections.push(c);
        }
        (hidden, pending)
    }

    /// What the read says of process information, given its hidden and pending sockets.
    fn process_info(&self, hidden: usize, pending: usize) -> ProcessInfo {
        // With the capabilities owners need, a uid other than root sees what root sees.
        let lacking = self.caps.missing(&caps::OWNERS);
        let euid = if lacking.is_empty() { None } else { self.euid };
        let mut process_info = match euid {
            Some(0) | None if hidden > 0 => ProcessInfo::Partial {
                reason: format!(
                    "{} no process: they belong to another PID namespace (a container) or closed mid-poll; run lingertop in the host's PID namespace to see them",
                    counted(hidden, "socket shows", "sockets show")
                ),
            },
            Some(0) | None => ProcessInfo::Full,
            Some(_) if hidden > 0 => ProcessInfo::Partial {
                reason: format!(
                    "not running as root: {} no process; lingertop lacks {lacking}: run with sudo or grant {} for full process information",
                    counted(
                        hidden,
                        "socket of another user shows",
                        "sockets of other users show"
                    ),
                    lacking.pronoun()
                ),
            },
            Some(_) if !cfg!(target_os = "linux") => ProcessInfo::Partial {
                reason: format!(
                    "not running as root: sockets of other users may show no process; lingertop lacks {lacking}: run with sudo or grant {} for full process information",
                    lacking.pronoun()
                ),
            },
            Some(_) => ProcessInfo::Full,
        };
        if pending > 0 {
            let deferred = format!(
                "{pending} new sockets are not matched to a process yet (the /proc scan that finds owners is rate-limited); a later poll shows them"
            );
            process_info = ProcessInfo::Partial {
                reason: match process_info {
                    ProcessInfo::Partial { reason } => format!("{reason}; {deferred}"),
                    ProcessInfo::Full => deferred,
                },
            };
        }

        process_info
    }
}

/// How the owners of a socket just read are known: it holds them, or its lookup waits.
fn attribution(owners: &Owners, pending: bool) -> Option<Attribution> {
    if !owners.is_empty() {
        Some(Attribution::Owner)
    } else if pending {
        Some(Attribution::Pending)
    } else {
        None
    }
}

/// The note of `auto` falling back to netstat2 because sock_diag failed with `why`.
fn netlink_fallback(why: &dyn std::fmt::Display) -> Note {
    Note {
        message: format!(
            "netlink sock_diag is not available ({why}); reading the socket table through netstat2, without timers, queues and kernel clocks (ages count from lingertop's first sight)"
        ),
    }
}

/// `N thing does` or `N things do`, as the count wants.
fn counted(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}
