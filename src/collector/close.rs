//! Closing a connection from outside, at the OS boundary (Linux).
//!
//! Graceful: `pidfd_open` on an owner and `pidfd_getfd` on its descriptor give lingertop a
//! duplicate of the application's descriptor; `shutdown(SHUT_WR)` on it sends the FIN the
//! application never sent, for every process holding the socket, and leaves the
//! application's descriptor open. Before the shutdown the duplicate's `SO_COOKIE` must be
//! the listed socket's cookie: a descriptor number reused since the listing holds another
//! socket, which is never touched. The descriptor number is the one [`descriptors`] read at
//! the listing (`/proc/PID/fd/N`); when it holds another socket, the owner's descriptors are
//! looked at again for the listed socket's inode.
//!
//! Abortive: `SOCK_DESTROY` over sock_diag, sent on the reader of the socket's own network
//! namespace (`netlink::SockDiag::destroy`, through [`super::KernelTable::destroy`]).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use super::{CollectError, Collector, ReadOptions};
use crate::model::action::{CloseHow, Outcome, Refusal, at_deadline, judge};
use crate::model::{Connection, NetnsId, TcpState};

/// One connection to close, as it was listed: enough to find it again and to check that it
/// is still the same socket.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub netns: NetnsId,
    pub cookie: u64,
    pub inode: u32,
    /// Its state when listed.
    pub state: TcpState,
    /// Every process holding it, with the descriptor number it was held under at the
    /// listing (see [`Target::note_descriptors`]).
    pub holders: Vec<(u32, Option<i32>)>,
    pub uid: Option<u32>,
}

impl Target {
    /// The target a listed connection is.
    pub fn of(c: &Connection) -> Target {
        Target {
            netns: c.netns(),
            cookie: c.cookie,
            inode: c.inode,
            state: c.state,
            holders: c.owners.iter().map(|o| (o.pid, None)).collect(),
            uid: c.user.as_ref().map(|u| u.uid),
        }
    }

    /// Reads, for every holder of `targets`, the descriptor number it holds each socket
    /// under (one walk of `/proc/PID/fd` per process): kept so that the act checks the
    /// descriptor it listed, never just the first one holding the inode then.
    pub fn note_descriptors(targets: &mut [Target]) {
        let mut by_pid: FxHashMap<u32, FxHashSet<u32>> = FxHashMap::default();
        for t in targets.iter() {
            for &(pid, _) in &t.holders {
                by_pid.entry(pid).or_default().insert(t.inode);
            }
        }
        let found: FxHashMap<u32, FxHashMap<u32, i32>> = by_pid
            .into_iter()
            .filter_map(|(pid, inodes)| Some((pid, descriptors(pid, &inodes).ok()?)))
            .collect();
        for t in targets.iter_mut() {
            for (pid, fd) in &mut t.holders {
                *fd = found.get(pid).and_then(|m| m.get(&t.inode)).copied();
            }
        }
    }
}

/// How often the sockets are read again while waiting for them to reach their end.
const VERIFY_EVERY: Duration = Duration::from_millis(100);

impl Collector {
    /// Closes each of `targets` `how`: a graceful close through one of its holders'
    /// descriptors, an abort from inside its namespace. One result per target, in order;
    /// nothing is tried again, and a graceful close that cannot be done is never turned
    /// into an abort.
    pub fn close(&mut self, targets: &[Target], how: CloseHow) -> Vec<Result<(), Refusal>> {
        match how {
            CloseHow::Abort => {
                let keys: Vec<(NetnsId, u64)> =
                    targets.iter().map(|t| (t.netns, t.cookie)).collect();
                self.destroy(&keys)
            }
            CloseHow::Graceful => targets.iter().map(graceful_target).collect(),
        }
    }

    /// Reads the table again until every socket of `targets` that was `acted` on reached
    /// the end its close aims at, or `wait` has passed; one outcome per target acted on
    /// (`None` for the others).
    pub fn verify(
        &mut self,
        targets: &[Target],
        acted: &[bool],
        how: CloseHow,
        wait: Duration,
    ) -> Result<Vec<Option<Outcome>>, CollectError> {
        let deadline = Instant::now() + wait;
        self.set_options(&ReadOptions::default());
        let mut out: Vec<Option<Outcome>> = vec![None; targets.len()];
        loop {
            let snap = self.poll()?;
            let now: FxHashMap<(NetnsId, u64), TcpState> = snap
                .connections
                .iter()
                .filter(|c| c.cookie != 0)
                .map(|c| ((c.netns(), c.cookie), c.state))
                .collect();
            let last = Instant::now() >= deadline;
            let mut pending = false;
            for (i, t) in targets.iter().enumerate() {
                if !acted[i] || matches!(out[i], Some(Outcome::Closed)) {
                    continue;
                }
                let state = now.get(&(t.netns, t.cookie)).copied();
                match judge(how, t.state, state) {
                    // Half-closed may still become closed: keep looking until the end.
                    Some(o) => out[i] = Some(o),
                    None => {
                        pending = true;
                        if last {
                            out[i] = state.map(at_deadline);
                        }
                    }
                }
            }
            if !pending || last {
                return Ok(out);
            }
            std::thread::sleep(
                VERIFY_EVERY.min(deadline.saturating_duration_since(Instant::now())),
            );
        }
    }
}

/// A graceful close of `t` through the first holder that lets lingertop take its
/// descriptor.
fn graceful_target(t: &Target) -> Result<(), Refusal> {
    let how = if t.state == TcpState::Listen {
        libc::SHUT_RDWR
    } else {
        libc::SHUT_WR
    };
    let mut last = Err(Refusal::NoDescriptor);
    for &(pid, fd) in &t.holders {
        last = graceful(
            &Held {
                pid,
                fd,
                inode: t.inode,
                cookie: t.cookie,
                uid: t.uid,
            },
            how,
        );
        if !matches!(last, Err(Refusal::NoPtrace { .. } | Refusal::GoneBefore)) {
            return last;
        }
    }
    last
}

/// `SO_COOKIE` (`include/uapi/asm-generic/socket.h`); not in the libc crate.
const SO_COOKIE: libc::c_int = 57;

/// The descriptor number under which `pid` holds each of `inodes` (the first one found), read
/// from `/proc/PID/fd`. An error when the directory cannot be read (another user's process
/// without CAP_SYS_PTRACE: EACCES; gone: ENOENT).
pub fn descriptors(pid: u32, inodes: &FxHashSet<u32>) -> io::Result<FxHashMap<u32, i32>> {
    let mut found = FxHashMap::default();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(entry) = entry else { continue };
        let Some(fd) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        let Some(inode) = link
            .to_str()
            .and_then(|l| l.strip_prefix("socket:["))
            .and_then(|l| l.strip_suffix(']'))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if inodes.contains(&inode) {
            found.entry(inode).or_insert(fd);
        }
    }
    Ok(found)
}

/// A socket to close gracefully through one of its holders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub pid: u32,
    /// The descriptor number read at the listing, if it was.
    pub fd: Option<i32>,
    pub inode: u32,
    pub cookie: u64,
    /// The socket's owning uid, for the message when rights are missing.
    pub uid: Option<u32>,
}

/// Sends the FIN of the socket `held` names through a duplicate of its holder's
/// descriptor; `how` is `SHUT_WR` (a connection) or `SHUT_RDWR` (a listener, which stops
/// listening). Refuses, touching nothing, when the descriptor now holds another socket and
/// the listed one is not found again under the holder's other descriptors.
pub fn graceful(held: &Held, how: libc::c_int) -> Result<(), Refusal> {
    let no_ptrace = || Refusal::NoPtrace {
        pid: Some(held.pid),
        uid: held.uid,
    };
    // SAFETY: pidfd_open takes a pid and flags; the result is checked before use.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, held.pid as libc::pid_t, 0) };
    if raw < 0 {
        return Err(match io::Error::last_os_error().raw_os_error() {
            Some(libc::ESRCH) => Refusal::GoneBefore,
            _ => os_failure("pidfd_open"),
        });
    }
    // SAFETY: a descriptor pidfd_open just returned, owned here.
    let pidfd = unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) };
    let take = |fd: i32| -> Result<OwnedFd, io::Error> {
        // SAFETY: pidfd_getfd duplicates `fd` of the process into this one; checked.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: a new descriptor of ours.
        Ok(unsafe { OwnedFd::from_raw_fd(raw as libc::c_int) })
    };
    let mut tried = None;
    if let Some(fd) = held.fd {
        match take(fd) {
            Ok(dup) if cookie_of(&dup) == Some(held.cookie) => return shutdown(&dup, how),
            Ok(_) => tried = Some(fd),
            Err(e) if e.raw_os_error() == Some(libc::EPERM) => return Err(no_ptrace()),
            // Closed since the listing: looked for again below.
            Err(_) => tried = Some(fd),
        }
    }
    // Again by inode: the socket may be held under another number now.
    let inodes: FxHashSet<u32> = [held.inode].into_iter().collect();
    let fd = match descriptors(held.pid, &inodes) {
        Ok(found) => found.get(&held.inode).copied(),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => return Err(no_ptrace()),
        Err(_) => return Err(Refusal::GoneBefore),
    };
    let changed = |fd| Refusal::IdentityChanged { pid: held.pid, fd };
    let Some(fd) = fd else {
        return Err(match tried {
            Some(fd) => changed(fd),
            None => Refusal::GoneBefore,
        });
    };
    match take(fd) {
        Ok(dup) if cookie_of(&dup) == Some(held.cookie) => shutdown(&dup, how),
        Ok(_) => Err(changed(fd)),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => Err(no_ptrace()),
        Err(_) => Err(changed(fd)),
    }
}

fn os_failure(call: &str) -> Refusal {
    Refusal::Failed {
        detail: format!("{call} failed: {}", io::Error::last_os_error()),
    }
}

/// The socket cookie of a descriptor (`None`: not a socket, or a kernel without SO_COOKIE).
fn cookie_of(fd: &OwnedFd) -> Option<u64> {
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` outlive the call and `len` is its size.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_COOKIE,
            (&raw mut cookie).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cookie)
}

fn shutdown(fd: &OwnedFd, how: libc::c_int) -> Result<(), Refusal> {
    // SAFETY: shutdown on a descriptor we own; it acts on the socket all holders share.
    if unsafe { libc::shutdown(fd.as_raw_fd(), how) } != 0 {
        return Err(os_failure("shutdown"));
    }
    Ok(())
}

/// Whether process `pid` ignores SIGPIPE (`None`: its status cannot be read).
pub fn ignores_sigpipe(pid: u32) -> Option<bool> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    crate::model::action::ignores_sigpipe(&status)
}
