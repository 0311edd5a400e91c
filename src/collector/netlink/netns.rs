//! Every network namespace of the machine, each read through a sock_diag socket of its own.
//!
//! sock_diag answers only for the namespace of the socket that asks, so a container's
//! connections are invisible to a socket opened on the host. A netlink socket belongs for
//! its whole life to the namespace of the thread that created it (the kernel records it in
//! the socket at `socket()`), so for each namespace lingertop opens one socket *inside* it,
//! once, on a short-lived thread that enters the namespace (`setns`), opens the socket and
//! exits, and keeps the socket: every later dump on it, from any thread, reads that
//! namespace. A thread of its own because `setns` moves the calling thread: on the poll
//! thread, every socket opened afterwards (a re-opened reader, the lab's sockets) would land
//! in the container, and getting back needs a second `setns` that can itself fail.
//!
//! The namespaces are found at every poll: the distinct `/proc/PID/ns/net` of running
//! processes (by inode) and the bind mounts in `/run/netns` (`ip netns add`). A kept socket
//! (and the namespace file it was opened through) pins its namespace, so a namespace that is
//! no longer found is let go at the same poll: otherwise a deleted container's namespace,
//! with its veth and its sockets, would live on as long as lingertop does.
//!
//! What a namespace costs. Unless it was made with a table of its own
//! (`net.ipv4.tcp_child_ehash_entries`), every namespace's TCP sockets live in one hash table
//! of the whole machine (262144 buckets here), and a dump of any namespace walks all of it:
//! 2-3 ms for a namespace holding nothing, so a hundred small containers would cost a
//! hundred walks a poll. So each poll first looks at the namespace's own counts, a few
//! `pread`s of files opened inside it: `sockstat` and `sockstat6` (its TCP sockets) and
//! `/proc/net/dev` (its packets). A namespace holding no TCP socket is not read at all. A
//! small one ([`SMALL`] sockets at most) is dumped whole, every state, and each socket's
//! identity kept; at the next poll, if its counts did not move (see [`Stir`]: no packet, no
//! socket made or ended), its sockets are asked for by identity, a hash lookup each in the
//! kernel (`SockDiag::lookup`), which returns each one's state, timer and queues now; one
//! gone or replaced, or any count moved, and it is dumped again. A namespace in which
//! something happens is read exactly as before; a quiet one costs microseconds.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::{FxHashMap, FxHashSet};

use super::{DiagError, SockDiag, SockKey};
use crate::caps::{Cap, Caps, Missing, NAMESPACES};
use crate::collector::workload::{self, StateDirs, Workload};
use crate::model::{
    CounterCloses, Netns, NetnsChoice, NetnsId, NetnsKind, NetnsTable, OWN_NETNS, PortRange,
};

/// Where `ip netns add` mounts its named namespaces.
const NAMED_DIR: &str = "/run/netns";

/// The inode of a namespace file (`/proc/PID/ns/net` or a `/run/netns` mount).
fn inode_of(path: &Path) -> io::Result<u64> {
    std::fs::metadata(path).map(|m| m.ino())
}

/// The host's network namespace: the one kernel threads live in (the initial namespace),
/// through kthreadd, pid 2 of the initial PID namespace; else pid 1's. (pid 1's link can be
/// unreadable even to root, as under a VM's sandboxing init: the host was then named
/// `kthreadd[2]` as the first process holding it.)
fn host_netns() -> Option<u64> {
    let kthreadd = std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd");
    kthreadd
        .then(|| inode_of(Path::new("/proc/2/ns/net")).ok())
        .flatten()
        .or_else(|| inode_of(Path::new("/proc/1/ns/net")).ok())
}

/// The namespace inode `/proc/PID/ns/net` links to (`net:[4026531840]`), read without
/// allocating: this runs for every process at every poll.
fn netns_of_pid(pid: u32, path: &mut Vec<u8>) -> io::Result<u64> {
    use std::io::Write;
    path.clear();
    let _ = write!(path, "/proc/{pid}/ns/net\0");
    let mut link = [0u8; 64];
    // SAFETY: `path` is NUL-terminated and `link` is valid for its length.
    let n = unsafe { libc::readlink(path.as_ptr().cast(), link.as_mut_ptr().cast(), link.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    parse_link(&link[..n as usize]).ok_or_else(|| io::Error::other("not a namespace link"))
}

fn parse_link(link: &[u8]) -> Option<u64> {
    let digits = link.strip_prefix(b"net:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// One namespace as a scan found it.
#[derive(Debug, Default)]
struct Found {
    /// The processes in it, lowest first.
    pids: Vec<u32>,
    /// Its name in `/run/netns`, when mounted there.
    named: Option<String>,
}

/// The namespaces of the machine at one scan, by inode.
#[derive(Debug, Default)]
struct Scan {
    found: FxHashMap<u64, Found>,
    /// Processes whose namespace could not be read (another user's, without root).
    unreadable: usize,
}

fn scan(named_dir: &Path, nsfs_dev: u64) -> Scan {
    let mut s = Scan::default();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        let mut path = Vec::with_capacity(32);
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            match netns_of_pid(pid, &mut path) {
                Ok(ino) => s.found.entry(ino).or_default().pids.push(pid),
                Err(e) if e.raw_os_error() == Some(libc::EACCES) => s.unreadable += 1,
                // Exited meanwhile, or a kernel thread: nothing to read.
                Err(_) => {}
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir(named_dir) {
        for e in dir.flatten() {
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            // A file left by a failed `ip netns add` is no mount of a namespace.
            let Ok(m) = std::fs::metadata(e.path()) else {
                continue;
            };
            if m.dev() == nsfs_dev {
                s.found
                    .entry(m.ino())
                    .or_default()
                    .named
                    .get_or_insert(name);
            }
        }
    }
    for f in s.found.values_mut() {
        f.pids.sort_unstable();
    }
    s
}

/// A namespace holding at most this many TCP sockets is small: its dump asks for every
/// state (whatever the poll asks for) and keeps each socket's identity, so that a poll
/// finding it quiet asks for its sockets one by one instead of walking the table.
pub const SMALL: u64 = 256;

/// What a namespace's own counts said at one look: its TCP sockets (`inuse` of
/// `/proc/net/sockstat` and `sockstat6`, TIME_WAIT) and its interfaces' packet and byte
/// counters (`/proc/net/dev`). When two looks agree, no packet came in or went out of it
/// and no TCP socket was made, hashed, turned to TIME_WAIT or ended, its TIME_WAIT
/// included: every socket a dump would find was there at the look before (a new one counts
/// in `inuse`, a connection request needs a SYN to arrive), and every close counter
/// lingertop reads is unchanged (each moves with a packet or with a socket's end). Whatever
/// can still change in a known socket (a receive queue drained by the application, a
/// timer, a retransmission held back by a firewall) the lookups read again, and one gone
/// sends the namespace back to a dump.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Stir {
    sockets: [u64; 3],
    dev: String,
}

/// A sock_diag socket inside one namespace, and what the namespace is.
struct Reader {
    diag: SockDiag,
    netns: Netns,
    /// The namespace's `/proc/net/sockstat` and `/proc/net/sockstat6`, opened inside it:
    /// say in a few microseconds how many TCP sockets it holds (see [`tcp_sockets`]).
    sockstat: Option<(File, Option<File>)>,
    /// How many TCP sockets the last look found in it (`None`: unknown).
    sockets: Option<u64>,
    /// Whether the last look found no TCP socket in it: its dump is skipped.
    empty: bool,
    /// The namespace's `/proc/net/dev`, opened inside it.
    dev: Option<File>,
    /// What the last two looks found, and whether they agreed.
    stir: Option<Stir>,
    quiet: bool,
    /// The counters read at the last poll that read them.
    last_counters: Option<CounterCloses>,
    /// Every socket of the namespace at the last read, while it is small ([`SMALL`]).
    known: Option<Vec<SockKey>>,
    /// The namespace's `tcp_fin_timeout`, opened inside it (`/proc/sys/net` shows the
    /// namespace of the task that opens it): the clock of its orphaned FIN_WAIT_2 ages.
    /// `None` for lingertop's own namespace, whose value is read directly.
    fin_timeout: Option<File>,
    /// The namespace's `ip_local_port_range`, opened inside it likewise: its own ports run
    /// out against its own range. `None` for lingertop's own namespace (the snapshot's).
    port_range: Option<File>,
    /// The namespace's `/proc/net/snmp` and `/proc/net/netstat`, opened inside it: its own
    /// close counters (a container's TIME_WAIT overflow is counted in its namespace only).
    counters: Option<(File, File)>,
}

impl Reader {
    fn new(diag: SockDiag, netns: Netns, inside: Inside) -> Self {
        Reader {
            diag,
            netns,
            sockstat: inside.sockstat,
            sockets: None,
            empty: false,
            dev: inside.dev,
            stir: None,
            quiet: false,
            last_counters: None,
            known: None,
            fin_timeout: inside.fin_timeout,
            port_range: inside.port_range,
            counters: inside.counters,
        }
    }

    /// Looks at the namespace's counts: how many sockets it holds, and whether anything
    /// happened in it since the last look.
    fn look(&mut self) {
        let counts = self.sockstat.as_ref().and_then(|(v4, v6)| {
            let (inuse4, tw) = tcp_sockets(v4, "TCP:")?;
            let (inuse6, _) = match v6 {
                Some(v6) => tcp_sockets(v6, "TCP6:")?,
                None => (0, 0),
            };
            Some([inuse4, inuse6, tw])
        });
        self.sockets = counts.map(|c| c.iter().sum());
        self.empty = self.sockets == Some(0);
        let dev = self.dev.as_ref().and_then(read_whole);
        let stir = counts.zip(dev).map(|(sockets, dev)| Stir { sockets, dev });
        self.quiet = stir.is_some() && stir == self.stir;
        self.stir = stir;
        if !self.quiet {
            self.known = None;
        }
    }

    /// The namespace's close counters now, where its files could be opened inside it: the
    /// last ones again when nothing happened in it since (see [`Stir`]).
    fn counters(&mut self) -> Option<CounterCloses> {
        if self.quiet && self.last_counters.is_some() {
            return self.last_counters;
        }
        let (snmp, netstat) = self.counters.as_ref()?;
        let c = CounterCloses::parse(&read_whole(snmp)?, &read_whole(netstat)?);
        self.last_counters = Some(c);
        Some(c)
    }

    /// The namespace's own ephemeral port range, where it could be opened inside it.
    fn port_range(&self) -> Option<PortRange> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 32];
        let n = self.port_range.as_ref()?.read_at(&mut buf, 0).ok()?;
        crate::collector::parse_port_range(std::str::from_utf8(&buf[..n]).ok()?)
    }

    /// The namespace's own `tcp_fin_timeout`, where it could be opened inside it.
    fn fin_timeout(&self) -> Option<Duration> {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 32];
        let n = self.fin_timeout.as_ref()?.read_at(&mut buf, 0).ok()?;
        let secs = std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()?;
        Some(Duration::from_secs(secs))
    }
}

/// The TCP sockets hashed (`inuse`) and in TIME_WAIT (`tw`, 0 where absent: `sockstat6`
/// has none, the two families share one count) that the `prefix` line (`TCP:` or `TCP6:`) of
/// a namespace's `/proc/net/sockstat` or `sockstat6` counts; `None` when it cannot be read.
/// Each family counts its own hashed sockets: a namespace holding only IPv6 connections
/// reads `TCP: inuse 0` and `TCP6: inuse 3`.
///
/// Why: unless the namespace was made with a table of its own
/// (`net.ipv4.tcp_child_ehash_entries`), every namespace's TCP sockets live in one hash
/// table of the whole machine, and each namespace's dump walks all of it, skipping the
/// others' sockets: a dump of an empty namespace costs as much as a walk of the host's table.
/// `inuse` and `tw` are counted per namespace (`orphan` is not, but an orphan is still
/// hashed and so in `inuse`).
fn tcp_sockets(sockstat: &File, prefix: &str) -> Option<(u64, u64)> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 512];
    let n = sockstat.read_at(&mut buf, 0).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    sockstat_counts(text, prefix)
}

fn sockstat_counts(text: &str, prefix: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.starts_with(prefix))?;
    let field = |name: &str| -> Option<u64> {
        let mut words = line.split_whitespace();
        words.find(|w| *w == name)?;
        words.next()?.parse().ok()
    };
    Some((field("inuse")?, field("tw").unwrap_or(0)))
}

/// What a reader opens inside its namespace besides the netlink socket.
#[derive(Default)]
struct Inside {
    sockstat: Option<(File, Option<File>)>,
    dev: Option<File>,
    fin_timeout: Option<File>,
    port_range: Option<File>,
    counters: Option<(File, File)>,
}

impl Inside {
    /// The namespace's counts and counters, through the opening thread's own view of
    /// /proc/net: the namespace it is in.
    fn counts() -> Inside {
        let net = |f: &str| File::open(format!("/proc/thread-self/net/{f}"));
        Inside {
            // No sockstat6 where IPv6 is off: no IPv6 socket to count.
            sockstat: net("sockstat").ok().zip(match net("sockstat6") {
                Ok(v6) => Some(Some(v6)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Some(None),
                Err(_) => None,
            }),
            dev: net("dev").ok(),
            counters: net("snmp").and_then(|s| Ok((s, net("netstat")?))).ok(),
            ..Inside::default()
        }
    }

    /// [`Inside::counts`], and the namespace's own sysctls of the TCP clocks and ports.
    fn all() -> Inside {
        Inside {
            fin_timeout: File::open("/proc/sys/net/ipv4/tcp_fin_timeout").ok(),
            port_range: File::open("/proc/sys/net/ipv4/ip_local_port_range").ok(),
            ..Inside::counts()
        }
    }
}

/// The whole text of a procfs file kept open, read from its start (procfs files regenerate
/// on each read from offset 0).
fn read_whole(file: &File) -> Option<String> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; 8192];
    let mut len = 0;
    loop {
        if len == buf.len() {
            buf.resize(buf.len() * 2, 0);
        }
        let n = file.read_at(&mut buf[len..], len as u64).ok()?;
        if n == 0 {
            break;
        }
        len += n;
    }
    buf.truncate(len);
    String::from_utf8(buf).ok()
}

/// One namespace's reader at a poll, and what the look before it found.
pub struct NsPoll<'a> {
    pub id: NetnsId,
    pub diag: &'a mut SockDiag,
    /// The namespace's own `tcp_fin_timeout`, where read inside it.
    pub fin_timeout: Option<Duration>,
    /// At most [`SMALL`] sockets: read whole, each socket's identity kept in `known`.
    pub small: bool,
    /// Nothing happened in it since the previous look (see [`Stir`]).
    pub quiet: bool,
    /// Every socket of the last read, while small and quiet since (the caller fills it
    /// after a whole read of a small namespace; the look empties it when it stirs).
    pub known: &'a mut Option<Vec<SockKey>>,
}

/// How a namespace could not be read.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unseen {
    /// Namespaces found but not entered (no privilege).
    pub namespaces: usize,
    /// Processes whose namespace could not even be looked at.
    pub processes: usize,
}

/// The namespaces being read, each with its reader, kept across polls by inode.
pub struct Namespaces {
    choice: NetnsChoice,
    own: u64,
    host: Option<u64>,
    /// The device of namespace files (nsfs), to tell a `/run/netns` mount from a stray file.
    nsfs_dev: u64,
    /// lingertop's own cgroup: a namespace whose processes share it was made by whoever
    /// started lingertop (`ip netns exec`, a test), not by a container runtime.
    own_cgroup: String,
    named_dir: PathBuf,
    dirs: StateDirs,
    readers: FxHashMap<u64, Reader>,
    /// Namespaces that could not be entered, not tried again while they exist.
    refused: FxHashSet<u64>,
    /// Names found for namespaces not read (for `--netns NAME`), by inode.
    idents: FxHashMap<u64, (NetnsKind, Arc<str>, Option<u32>)>,
    next_id: NetnsId,
    free: VecDeque<NetnsId>,
    table: Arc<NetnsTable>,
    /// The first scan's reckoning of what could not be seen.
    first_unseen: Option<Unseen>,
}

impl Namespaces {
    /// Starts reading `choice`, the first scan included: fails when `choice` names a
    /// namespace that is not there or cannot be entered, or lingertop's own cannot be read.
    pub fn new(choice: NetnsChoice) -> Result<Self, DiagError> {
        let own = inode_of(Path::new("/proc/self/ns/net")).map_err(DiagError::Enter)?;
        let nsfs_dev = std::fs::metadata("/proc/self/ns/net")
            .map_err(DiagError::Enter)?
            .dev();
        let mut n = Namespaces {
            choice,
            own,
            host: host_netns(),
            nsfs_dev,
            own_cgroup: std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default(),
            named_dir: PathBuf::from(NAMED_DIR),
            dirs: StateDirs::default(),
            readers: FxHashMap::default(),
            refused: FxHashSet::default(),
            idents: FxHashMap::default(),
            next_id: OWN_NETNS + 1,
            free: VecDeque::new(),
            table: Arc::default(),
            first_unseen: None,
        };
        let unseen = n.refresh();
        n.first_unseen = Some(unseen);
        if n.readers.is_empty() {
            return Err(match &n.choice {
                NetnsChoice::All | NetnsChoice::Host => DiagError::Enter(io::Error::other(
                    "lingertop's own network namespace cannot be read",
                )),
                choice if unseen.namespaces > 0 => DiagError::Enter(io::Error::other(format!(
                    "network namespace {choice} exists but cannot be entered: {}",
                    advice(Caps::current().missing(&NAMESPACES))
                ))),
                choice => DiagError::Enter(io::Error::other(format!(
                    "no network namespace {choice}: give a name from `ip netns list`, a container's name or the pid of a process in it"
                ))),
            });
        }
        Ok(n)
    }

    /// The namespaces read, by id.
    pub fn table(&self) -> Arc<NetnsTable> {
        Arc::clone(&self.table)
    }

    /// What lingertop could not see at its start and how to see it, when it could not see
    /// everything asked for: said once, by the caller, at the start.
    pub fn note(&self) -> Option<String> {
        let u = self.first_unseen?;
        if self.choice != NetnsChoice::All {
            return None;
        }
        let caps = Caps::current();
        // Root, or whoever holds what entering and looking at namespaces takes.
        if caps.missing(&NAMESPACES).is_empty() && caps.missing(&[Cap::SysPtrace]).is_empty() {
            // Root sees every process's namespace link but pid 1's in some sandboxes:
            // only namespaces found and not entered are worth a word.
            return (u.namespaces > 0).then(|| {
                format!(
                    "{} network namespace{} could not be entered (lingertop lacks CAP_SYS_ADMIN there, e.g. it runs in a container of its own); their connections are not shown: run lingertop on the host with full privileges to see them",
                    u.namespaces,
                    plural(u.namespaces)
                )
            });
        }
        if u == Unseen::default() {
            return None;
        }
        let mut what = Vec::new();
        if u.namespaces > 0 {
            what.push(format!(
                "{} other network namespace{} (containers, `ip netns`) could not be entered",
                u.namespaces,
                plural(u.namespaces)
            ));
        }
        if u.processes > 0 {
            what.push(format!(
                "the network namespace of {} process{} of other users could not be looked at",
                u.processes,
                if u.processes == 1 { "" } else { "es" }
            ));
        }
        let mut needed = Vec::new();
        if u.namespaces > 0 {
            needed.extend(NAMESPACES);
        }
        if u.processes > 0 {
            needed.push(Cap::SysPtrace);
        }
        Some(format!(
            "without root, only lingertop's own network namespace is read: {}; {} to see the connections of every container, or pass --netns host to read only this namespace",
            what.join(", and "),
            advice(caps.missing(&needed))
        ))
    }

    /// The readers, each with the id its connections carry.
    /// Namespaces found to hold no TCP socket at all are left out.
    /// With each, the namespace's own `tcp_fin_timeout` where it was read (another
    /// namespace's; lingertop's own is the caller's to read).
    pub fn readers_mut(
        &mut self,
    ) -> impl Iterator<Item = (NetnsId, &mut SockDiag, Option<Duration>)> {
        self.readers.values_mut().filter(|r| !r.empty).map(|r| {
            let fin = r.fin_timeout();
            (r.netns.id, &mut r.diag, fin)
        })
    }

    /// The readers for a poll, with what the last look at each namespace found: as
    /// [`Namespaces::readers_mut`], with the sockets known of the quiet small ones.
    pub fn polls_mut(&mut self) -> impl Iterator<Item = NsPoll<'_>> {
        self.readers.values_mut().filter(|r| !r.empty).map(|r| {
            let fin_timeout = r.fin_timeout();
            NsPoll {
                id: r.netns.id,
                diag: &mut r.diag,
                fin_timeout,
                small: r.sockets.is_some_and(|n| n <= SMALL),
                quiet: r.quiet,
                known: &mut r.known,
            }
        })
    }

    /// The reader of namespace `id`, to act on its sockets (`SOCK_DESTROY` must be sent
    /// from inside the socket's own namespace).
    pub fn reader_of(&mut self, id: NetnsId) -> Option<&mut SockDiag> {
        self.readers
            .values_mut()
            .find(|r| r.netns.id == id)
            .map(|r| &mut r.diag)
    }

    /// Each namespace's close counters now, from the files opened inside it (lingertop's
    /// own: by the poll thread); a namespace whose files cannot be read is left out.
    pub fn counters(&mut self) -> Vec<(NetnsId, CounterCloses)> {
        self.readers
            .values_mut()
            .filter_map(|r| Some((r.netns.id, r.counters()?)))
            .collect()
    }

    /// Whether `id` is lingertop's own namespace (whose failure fails the poll).
    pub fn is_own(&self, id: NetnsId) -> bool {
        id == OWN_NETNS
    }

    /// Lets go of the reader of `id` after its dump failed: the next poll opens it again if
    /// the namespace is still there.
    pub fn drop_reader(&mut self, id: NetnsId) {
        let gone: Vec<u64> = self
            .readers
            .iter()
            .filter(|(_, r)| r.netns.id == id)
            .map(|(&ino, _)| ino)
            .collect();
        for ino in gone {
            self.remove(ino);
        }
        self.rebuild_table();
    }

    fn remove(&mut self, ino: u64) {
        if let Some(r) = self.readers.remove(&ino) {
            if r.netns.id != OWN_NETNS {
                self.free.push_back(r.netns.id);
            }
        }
    }

    /// Finds the namespaces now, opens a reader in each new one and drops the readers of
    /// those gone (the same poll: a kept reader pins its namespace). Returns what could not
    /// be seen.
    pub fn refresh(&mut self) -> Unseen {
        if self.choice == NetnsChoice::Host {
            if self.readers.is_empty() {
                let netns = self.ident_own(&[]);
                self.readers.insert(
                    self.own,
                    Reader::new(SockDiag::new(), netns, Inside::counts()),
                );
                self.rebuild_table();
            }
            for r in self.readers.values_mut() {
                r.look();
            }
            return Unseen::default();
        }
        let scan = scan(&self.named_dir, self.nsfs_dev);
        let mut changed = false;
        // Gone: let go at once.
        let gone: Vec<u64> = self
            .readers
            .keys()
            .copied()
            .filter(|ino| !scan.found.contains_key(ino))
            .collect();
        for ino in gone {
            self.remove(ino);
            changed = true;
        }
        self.refused.retain(|ino| scan.found.contains_key(ino));
        self.idents.retain(|ino, _| scan.found.contains_key(ino));

        let mut unseen = Unseen {
            namespaces: 0,
            processes: scan.unreadable,
        };
        for (&ino, found) in &scan.found {
            if self.readers.contains_key(&ino) {
                continue;
            }
            if self.refused.contains(&ino) {
                unseen.namespaces += 1;
                continue;
            }
            let (kind, name, pid) = match self.idents.get(&ino) {
                Some(i) => i.clone(),
                None => {
                    let i = if ino == self.own {
                        let n = self.ident_own(&found.pids);
                        (n.kind, n.name, n.pid)
                    } else if Some(ino) == self.host {
                        // lingertop runs in a namespace of its own (a container, `ip netns
                        // exec`): the host's is still the host.
                        (NetnsKind::Host, "host".into(), found.pids.first().copied())
                    } else {
                        self.ident(found)
                    };
                    self.idents.insert(ino, i.clone());
                    i
                }
            };
            if !self.wanted(ino, found, &name) {
                continue;
            }
            let netns = |id| Netns {
                id,
                inode: ino,
                kind: kind.clone(),
                name: Arc::clone(&name),
                pid,
                ports: None,
            };
            if ino == self.own {
                self.readers.insert(
                    ino,
                    Reader::new(SockDiag::new(), netns(OWN_NETNS), Inside::counts()),
                );
                changed = true;
                continue;
            }
            let Some(id) = self.take_id() else {
                unseen.namespaces += 1;
                continue;
            };
            match self.open(ino, found) {
                Ok((diag, inside)) => {
                    self.readers
                        .insert(ino, Reader::new(diag, netns(id), inside));
                    changed = true;
                }
                Err(_) => {
                    self.free.push_front(id);
                    self.refused.insert(ino);
                    unseen.namespaces += 1;
                }
            }
        }
        for r in self.readers.values_mut() {
            r.look();
            // A sysctl in the container can change it: a pread each poll, the table
            // rebuilt only when it did.
            let ports = r.port_range();
            if ports != r.netns.ports {
                r.netns.ports = ports;
                changed = true;
            }
        }
        if changed {
            self.rebuild_table();
        }
        unseen
    }

    fn wanted(&self, ino: u64, found: &Found, name: &str) -> bool {
        match &self.choice {
            NetnsChoice::All => true,
            NetnsChoice::Host => ino == self.own,
            NetnsChoice::Named(n) => found.named.as_deref() == Some(n) || name == n,
            NetnsChoice::Pid(p) => found.pids.binary_search(p).is_ok(),
        }
    }

    fn take_id(&mut self) -> Option<NetnsId> {
        // Fresh ids first, recycled ones only once all 65535 were used: an id is not
        // given to a new namespace while a snapshot that used it for another may still be
        // around.
        if self.next_id < NetnsId::MAX {
            self.next_id += 1;
            return Some(self.next_id - 1);
        }
        self.free.pop_front()
    }

    /// Opens a reader inside namespace `ino` through its `/run/netns` mount or one of its
    /// processes, checking that the file still is that namespace (a pid can be reused).
    fn open(&self, ino: u64, found: &Found) -> Result<(SockDiag, Inside), DiagError> {
        let named = found.named.iter().map(|n| self.named_dir.join(n));
        let procs = found
            .pids
            .iter()
            .take(8)
            .map(|p| PathBuf::from(format!("/proc/{p}/ns/net")));
        let mut last = DiagError::Enter(io::Error::other("no process holds it any more"));
        for path in named.chain(procs) {
            let file = match File::open(&path) {
                Ok(f) => f,
                Err(e) => {
                    last = DiagError::Enter(e);
                    continue;
                }
            };
            if file.metadata().map(|m| m.ino()).ok() != Some(ino) {
                continue;
            }
            let ns: OwnedFd = file.into();
            // The thread's own view of /proc/net: the namespace it entered.
            let inside = open_inside(&ns, || Ok(Inside::all())).unwrap_or_default();
            let mut diag = SockDiag::inside(ns);
            // Open now: a namespace that cannot be entered is known at once.
            match diag.connect() {
                Ok(()) => return Ok((diag, inside)),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn ident_own(&self, pids: &[u32]) -> Netns {
        let host = self.host.is_none_or(|h| h == self.own);
        Netns {
            id: OWN_NETNS,
            inode: self.own,
            kind: if host {
                NetnsKind::Host
            } else {
                NetnsKind::Own
            },
            name: if host { "host".into() } else { "self".into() },
            pid: pids.first().copied(),
            ports: None,
        }
    }

    /// Names a namespace for a person: the container or pod its processes' cgroups name
    /// (by the runtime's own name where readable), else its `ip netns` name, else its first
    /// process.
    fn ident(&self, found: &Found) -> (NetnsKind, Arc<str>, Option<u32>) {
        let pid = found.pids.first().copied();
        for &p in found.pids.iter().take(8) {
            let Ok(text) = std::fs::read_to_string(format!("/proc/{p}/cgroup")) else {
                continue;
            };
            if text == self.own_cgroup {
                continue;
            }
            if let Some(w) = workload::from_proc_cgroup(&text) {
                let kind = match &w {
                    Workload::Container { runtime, .. } => NetnsKind::Container { runtime },
                    Workload::Pod { .. } => NetnsKind::Pod,
                    Workload::Machine { .. } => NetnsKind::Machine,
                };
                return (kind, w.name(&self.dirs).into(), pid);
            }
        }
        if let Some(n) = &found.named {
            return (NetnsKind::Named, n.as_str().into(), pid);
        }
        let name = match pid {
            Some(p) => {
                let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                format!("{}[{p}]", comm.trim())
            }
            None => "unnamed".to_string(),
        };
        (NetnsKind::Process, name.into(), pid)
    }

    fn rebuild_table(&mut self) {
        self.table = Arc::new(NetnsTable::new(
            self.readers.values().map(|r| r.netns.clone()).collect(),
        ));
    }

    /// How many readers are open (one per namespace read).
    pub fn len(&self) -> usize {
        self.readers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.readers.is_empty()
    }
}

/// What to do about the capabilities lingertop lacks; where it lacks none, the kernel
/// refused for another reason (a user namespace of lingertop's own, a security module).
fn advice(lacking: Missing) -> String {
    if lacking.is_empty() {
        return "the kernel refused although lingertop holds CAP_SYS_ADMIN and CAP_SYS_PTRACE (in a user namespace of its own?); run lingertop on the host with full privileges".to_string();
    }
    format!(
        "lingertop lacks {lacking}: run with sudo or grant {}",
        lacking.pronoun()
    )
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Runs `open` on a new thread inside the namespace `ns` and hands back what it opened:
/// the thread does nothing else and exits, so no thread of lingertop stays in the other
/// namespace (see the module doc).
pub fn open_inside<T: Send>(
    ns: &OwnedFd,
    open: impl FnOnce() -> Result<T, DiagError> + Send,
) -> Result<T, DiagError> {
    let ns = ns.as_raw_fd();
    std::thread::scope(|scope| {
        let enter_and_open = move || {
            // SAFETY: `ns` is an open namespace file kept alive by the caller's borrow for
            // the whole scope; setns only changes this thread, which exits after `open`.
            if unsafe { libc::setns(ns, libc::CLONE_NEWNET) } != 0 {
                return Err(DiagError::Enter(io::Error::last_os_error()));
            }
            open()
        };
        std::thread::Builder::new()
            .name("lingertop-netns".into())
            .spawn_scoped(scope, enter_and_open)
            .map_err(DiagError::Enter)?
            .join()
            .unwrap_or_else(|_| {
                Err(DiagError::Enter(io::Error::other(
                    "the thread entering the namespace panicked",
                )))
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockstat_counts_a_namespaces_tcp_sockets() {
        let Ok(f) = File::open("/proc/self/net/sockstat") else {
            return;
        };
        let _l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(tcp_sockets(&f, "TCP:").is_some_and(|(inuse, _)| inuse >= 1));
        let text = "sockets: used 9\nTCP: inuse 0 orphan 3 tw 0 alloc 4 mem 1\nUDP: inuse 2\n";
        assert_eq!(sockstat_counts(text, "TCP:"), Some((0, 0)));
        let text = "TCP: inuse 2 orphan 3 tw 5 alloc 4 mem 1\n";
        assert_eq!(sockstat_counts(text, "TCP:"), Some((2, 5)));
        // sockstat6 counts the IPv6 sockets, and has no TIME_WAIT of its own.
        let text = "TCP6: inuse 3\nUDP6: inuse 0\n";
        assert_eq!(sockstat_counts(text, "TCP6:"), Some((3, 0)));
        assert_eq!(sockstat_counts(text, "TCP:"), None);
        assert_eq!(sockstat_counts("TCP: orphan 1\n", "TCP:"), None);
    }

    #[test]
    fn namespace_links_parse() {
        assert_eq!(parse_link(b"net:[4026531840]"), Some(4026531840));
        assert_eq!(parse_link(b"mnt:[4026531840]"), None);
        assert_eq!(parse_link(b"net:[]"), None);
    }

    #[test]
    fn our_own_namespace_is_found_and_read() {
        let Ok(mut n) = Namespaces::new(NetnsChoice::Host) else {
            return; // no sock_diag here
        };
        assert_eq!(n.len(), 1);
        let table = n.table();
        let own = table.get(OWN_NETNS).unwrap();
        assert_eq!(own.inode, inode_of(Path::new("/proc/self/ns/net")).unwrap());
        assert_eq!(n.refresh(), Unseen::default());
        let all = Namespaces::new(NetnsChoice::All).unwrap();
        assert!(all.table().get(OWN_NETNS).is_some());
    }
}
