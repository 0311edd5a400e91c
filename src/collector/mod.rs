//! Reads the OS socket table and the processes behind it, and turns one read into a
//! [`Snapshot`]. The OS boundary is the small [`SocketSource`] trait: the portable netstat2
//! backend implements it, a faster Linux backend can slot in beside it, and tests feed
//! fixtures through it.

mod netstat2_backend;
mod processes;

use std::net::SocketAddr;
use std::time::{Instant, SystemTime};

use rustc_hash::FxHashSet;

use crate::model::{Attribution, Connection, Owner, PortRange, ProcessInfo, Snapshot, TcpState};

pub use netstat2_backend::Netstat2Source;
use processes::{ProcessNames, UserNames};

/// One socket as the OS reports it, before process names are attached.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSocket {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    /// 0 when the socket has no file (TIME_WAIT, orphans) or the OS has no inodes.
    pub inode: u64,
    pub uid: Option<u32>,
    /// Every process holding a descriptor for the socket.
    pub pids: Vec<u32>,
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

/// The OS boundary: something that lists every TCP socket (IPv4 and IPv6, every state).
pub trait SocketSource: Send {
    /// Short name for messages (`netstat2`).
    fn name(&self) -> &'static str;
    /// Replaces `out`'s contents with the current sockets.
    fn read(&mut self, out: &mut Vec<RawSocket>) -> Result<(), CollectError>;
}

/// Polls a [`SocketSource`] and resolves owners, users and the context of a snapshot.
pub struct Collector {
    source: Box<dyn SocketSource>,
    names: ProcessNames,
    users: UserNames,
    host: String,
    euid: Option<u32>,
    raw: Vec<RawSocket>,
}

impl Collector {
    pub fn new(source: Box<dyn SocketSource>) -> Self {
        Collector {
            source,
            names: ProcessNames::default(),
            users: UserNames::default(),
            host: sysinfo::System::host_name()
                .ok()
                .unwrap_or_else(|| "unknown-host".to_string()),
            euid: effective_uid(),
            raw: Vec::new(),
        }
    }

    /// The collector for this platform's default backend.
    pub fn system() -> Self {
        Collector::new(Box::new(Netstat2Source))
    }

    pub fn backend_name(&self) -> &'static str {
        self.source.name()
    }

    /// Reads the socket table once.
    pub fn poll(&mut self) -> Result<Snapshot, CollectError> {
        let started = Instant::now();
        let taken_at = SystemTime::now();
        self.source.read(&mut self.raw)?;

        let pids: FxHashSet<u32> = self
            .raw
            .iter()
            .flat_map(|r| r.pids.iter().copied())
            .collect();
        self.names.resolve(&pids);

        // Sockets with a file but no visible process: other users' (without root), or
        // processes in another PID namespace (a container), or closed during the read.
        let mut hidden = 0usize;
        let mut connections = Vec::with_capacity(self.raw.len());
        for r in self.raw.drain(..) {
            if r.pids.is_empty()
                && r.inode != 0
                && self.euid.is_none_or(|me| me == 0 || r.uid != Some(me))
            {
                hidden += 1;
            }
            let owners: Vec<Owner> = r
                .pids
                .iter()
                .map(|&pid| Owner {
                    pid,
                    name: self.names.get(pid),
                })
                .collect();
            let mut c = Connection::new(r.local, r.remote, r.state);
            c.attribution = (!owners.is_empty()).then_some(Attribution::Owner);
            c.owners = owners;
            c.inode = r.inode;
            c.uid = r.uid;
            c.user = r.uid.and_then(|u| self.users.get(u));
            connections.push(c);
        }

        let process_info = match self.euid {
            Some(0) | None if hidden > 0 => ProcessInfo::Partial {
                reason: format!(
                    "{hidden} sockets show no process: they belong to another PID namespace (a container) or closed mid-poll; run lingertop in the host's PID namespace to see them"
                ),
            },
            Some(0) | None => ProcessInfo::Full,
            Some(_) if hidden > 0 => ProcessInfo::Partial {
                reason: format!(
                    "not running as root: {hidden} sockets of other users show no process; run with sudo for full process information"
                ),
            },
            Some(_) if !cfg!(target_os = "linux") => ProcessInfo::Partial {
                reason: "not running as root: sockets of other users may show no process; run with sudo for full process information".to_string(),
            },
            Some(_) => ProcessInfo::Full,
        };

        Ok(Snapshot {
            taken_at,
            host: self.host.clone(),
            process_info,
            ephemeral_ports: ephemeral_ports(),
            poll_duration: started.elapsed(),
            connections,
        })
    }
}

#[cfg(unix)]
fn effective_uid() -> Option<u32> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    Some(unsafe { libc::geteuid() })
}

#[cfg(not(unix))]
fn effective_uid() -> Option<u32> {
    None
}

/// The local ephemeral port range: the kernel's on Linux, the IANA range elsewhere or when
/// it cannot be read.
pub fn ephemeral_ports() -> PortRange {
    const IANA: PortRange = PortRange {
        low: 49152,
        high: 65535,
    };
    if cfg!(target_os = "linux") {
        if let Ok(text) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") {
            let mut it = text.split_whitespace().map(|s| s.parse::<u16>());
            if let (Some(Ok(low)), Some(Ok(high))) = (it.next(), it.next()) {
                if low <= high {
                    return PortRange { low, high };
                }
            }
        }
    }
    IANA
}
