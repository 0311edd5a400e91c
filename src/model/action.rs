//! Closing connections from outside, as `lingertop close` does it: how a connection is closed ([`CloseHow`]), the rails that leave a connection out or
//! refuse it ([`Rails`], [`Refusal`]), and how each socket's end is judged once it is read
//! again by its cookie ([`judge`]). Pure: the acts themselves are the collector's
//! (`collector::close`), the runners' the asking and the printing.

use std::fmt;
use std::net::SocketAddr;

use serde::Serialize;

use super::{Connection, TcpState};

/// How a connection is closed from outside.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CloseHow {
    /// `shutdown(SHUT_WR)` on a duplicate of the owner's descriptor (`pidfd_getfd`): the
    /// FIN the application never sent; the peer reads an orderly EOF.
    Graceful,
    /// `SOCK_DESTROY` over sock_diag: the kernel aborts the socket, the peer gets a RST.
    Abort,
}

impl CloseHow {
    pub fn name(self) -> &'static str {
        match self {
            CloseHow::Graceful => "graceful",
            CloseHow::Abort => "abort",
        }
    }

    /// What the peer of a connection closed this way sees.
    pub fn peer_sees(self) -> &'static str {
        match self {
            CloseHow::Graceful => "an orderly EOF (FIN) after all data sent",
            CloseHow::Abort => "ECONNRESET (RST), unsent and unread data lost",
        }
    }

    /// What the application holding the socket sees afterwards.
    pub fn application_sees(self) -> &'static str {
        match self {
            CloseHow::Graceful => {
                "its descriptor stays open; reads return 0; its next write raises SIGPIPE"
            }
            CloseHow::Abort => "its descriptor stays open; its next call fails or reads 0",
        }
    }
}

impl fmt::Display for CloseHow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why lingertop did not close a connection it was asked to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A listening socket without `--include-listen`.
    Listen,
    /// A graceful close of a socket no process holds (TIME_WAIT, an orphan).
    NoDescriptor,
    /// The backend has no socket cookies to check identity with (netstat2).
    NoCookie,
    /// The owner's descriptor could not be taken: no ptrace-attach rights over it.
    NoPtrace { pid: Option<u32>, uid: Option<u32> },
    /// The kernel refused the destroy: no CAP_NET_ADMIN in the socket's namespace.
    NoNetAdmin { netns: String },
    /// The kernel was built without `CONFIG_INET_DIAG_DESTROY`.
    NoDestroy,
    /// The socket was gone before lingertop acted.
    GoneBefore,
    /// The descriptor lingertop listed now holds another socket, and the listed one is
    /// held under no other descriptor of the owner.
    IdentityChanged { pid: u32, fd: i32 },
    /// Anything else the kernel answered.
    Failed { detail: String },
}

impl Refusal {
    /// One word for tables and JSON.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Listen => "listen",
            Refusal::NoDescriptor => "no-descriptor",
            Refusal::NoCookie => "no-cookie",
            Refusal::NoPtrace { .. } => "no-ptrace",
            Refusal::NoNetAdmin { .. } => "no-net-admin",
            Refusal::NoDestroy => "no-destroy",
            Refusal::GoneBefore => "gone-before",
            Refusal::IdentityChanged { .. } => "identity-changed",
            Refusal::Failed { .. } => "failed",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Listen => f.write_str(
                "a listening socket: closing it stops a service; pass --include-listen to close listeners",
            ),
            Refusal::NoDescriptor => f.write_str(
                "no descriptor: no process holds this socket (TIME_WAIT, an orphan), so it cannot be closed gracefully; --abort can destroy it",
            ),
            Refusal::NoCookie => f.write_str(
                "the netstat2 backend has no socket cookies to check a socket's identity with; use --backend netlink",
            ),
            Refusal::NoPtrace { pid, uid } => {
                f.write_str("lingertop lacks ptrace rights over the owner")?;
                if let Some(pid) = pid {
                    write!(f, " (pid {pid}")?;
                    if let Some(uid) = uid {
                        write!(f, ", uid {uid}")?;
                    }
                    f.write_str(")")?;
                } else if let Some(uid) = uid {
                    write!(f, " (uid {uid}, whose descriptors lingertop cannot see)")?;
                }
                f.write_str(": run it as the owner's user or with CAP_SYS_PTRACE")
            }
            Refusal::NoNetAdmin { netns } => write!(
                f,
                "lingertop lacks CAP_NET_ADMIN in the socket's network namespace ({netns}): run it as root there"
            ),
            Refusal::NoDestroy => f.write_str(
                "this kernel cannot destroy sockets (built without CONFIG_INET_DIAG_DESTROY)",
            ),
            Refusal::GoneBefore => f.write_str("gone before lingertop acted"),
            Refusal::IdentityChanged { pid, fd } => write!(
                f,
                "identity changed: descriptor {fd} of pid {pid} now holds another socket, and the listed one is no longer held there; nothing touched"
            ),
            Refusal::Failed { detail } => f.write_str(detail),
        }
    }
}

/// Where one socket ended, once read again after the close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Gone from the table, or only the kernel's TIME_WAIT is left of it.
    Closed,
    /// A graceful close of an ESTABLISHED: our FIN sent and acknowledged, our end waits in
    /// FIN_WAIT_2 while the peer keeps its end open: the graceful close's success.
    HalfClosed,
    /// Still there at the deadline, in this state.
    StillThere { state: TcpState },
    /// Not acted on.
    Refused { refusal: Refusal },
}

impl Outcome {
    /// Whether the socket reached the end its close aims at.
    pub fn reached(&self) -> bool {
        matches!(self, Outcome::Closed | Outcome::HalfClosed)
    }

    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Closed => "closed",
            Outcome::HalfClosed => "half-closed",
            Outcome::StillThere { .. } => "still-there",
            Outcome::Refused { .. } => "refused",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Closed => f.write_str("closed"),
            Outcome::HalfClosed => f.write_str(
                "half-closed (FIN_WAIT_2: our FIN acknowledged, the peer keeps its end)",
            ),
            Outcome::StillThere { state } => write!(f, "still there ({state})"),
            Outcome::Refused { refusal } => write!(f, "refused: {refusal}"),
        }
    }
}

/// The end a socket closed `how` from state `before` has reached, given the state it is in
/// now (`None`: gone); `None` while it may still get there (its close is under way).
pub fn judge(how: CloseHow, before: TcpState, now: Option<TcpState>) -> Option<Outcome> {
    let Some(now) = now else {
        return Some(Outcome::Closed);
    };
    match (how, now) {
        // Our end is closed; the 4-tuple waits out 2*MSL in the kernel.
        (_, TcpState::TimeWait) if before != TcpState::TimeWait => Some(Outcome::Closed),
        (CloseHow::Graceful, TcpState::FinWait2) if before != TcpState::FinWait2 => {
            Some(Outcome::HalfClosed)
        }
        _ => None,
    }
}

/// What a socket still there at the deadline is reported as.
pub fn at_deadline(now: TcpState) -> Outcome {
    Outcome::StillThere { state: now }
}

/// Exit status of `lingertop close`: every socket reached its end.
pub const EXIT_ALL: u8 = 0;
/// Some did, some did not.
pub const EXIT_PARTIAL: u8 = 3;
/// None did (or nothing could be done).
pub const EXIT_NONE: u8 = 1;

/// The exit status for a run's outcomes.
pub fn exit_status(outcomes: &[Outcome]) -> u8 {
    let reached = outcomes.iter().filter(|o| o.reached()).count();
    if outcomes.is_empty() || reached == 0 {
        EXIT_NONE
    } else if reached == outcomes.len() {
        EXIT_ALL
    } else {
        EXIT_PARTIAL
    }
}

/// Why a connection a filter matched is left out of a close altogether.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum LeftOut {
    /// Held by a lingertop process (the lab, `serve`, another `close`).
    Lingertop,
    /// The SSH connection the operator is on (`$SSH_CONNECTION`).
    Ssh,
}

/// The rails every close goes through.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rails {
    pub include_listen: bool,
    /// The operator's SSH connection, server end first (`$SSH_CONNECTION`).
    pub ssh: Option<(SocketAddr, SocketAddr)>,
    /// lingertop's own pid.
    pub own_pid: u32,
}

/// The process name of every lingertop.
pub const LINGERTOP: &str = "lingertop";

impl Rails {
    /// Whether `c` is left out of any selection, and why.
    pub fn left_out(&self, c: &Connection) -> Option<LeftOut> {
        let lingertop = c.lab
            || c.owners
                .iter()
                .any(|o| o.pid == self.own_pid || o.name.as_deref() == Some(LINGERTOP));
        if lingertop {
            return Some(LeftOut::Lingertop);
        }
        let ssh = self.ssh.is_some_and(|(server, client)| {
            (c.local() == server && c.remote() == client)
                || (c.local() == client && c.remote() == server)
        });
        ssh.then_some(LeftOut::Ssh)
    }

    /// Why `c` cannot be closed `how`, known before acting.
    pub fn refuse(&self, c: &Connection, how: CloseHow) -> Option<Refusal> {
        if c.cookie == 0 {
            return Some(Refusal::NoCookie);
        }
        if c.state == TcpState::Listen && !self.include_listen {
            return Some(Refusal::Listen);
        }
        if how == CloseHow::Graceful && c.inode == 0 {
            return Some(Refusal::NoDescriptor);
        }
        if how == CloseHow::Graceful && c.owners.is_empty() {
            // A socket with a file whose holders lingertop cannot see: another user's.
            return Some(Refusal::NoPtrace {
                pid: None,
                uid: c.user.as_ref().map(|u| u.uid),
            });
        }
        None
    }
}

/// The two ends of `$SSH_CONNECTION` ("client-ip client-port server-ip server-port"),
/// server end first.
pub fn parse_ssh_connection(v: &str) -> Option<(SocketAddr, SocketAddr)> {
    let w: Vec<&str> = v.split_whitespace().collect();
    let [cip, cport, sip, sport] = w.as_slice() else {
        return None;
    };
    let addr = |ip: &str, port: &str| -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().ok()?, port.parse().ok()?))
    };
    Some((addr(sip, sport)?, addr(cip, cport)?))
}

/// Whether a `/proc/PID/status` text says the process ignores SIGPIPE (`SigIgn`, bit 12
/// for signal 13); `None` when the line is missing.
pub fn ignores_sigpipe(status: &str) -> Option<bool> {
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))?
        .trim();
    let mask = u64::from_str_radix(hex, 16).ok()?;
    Some(mask & (1 << (13 - 1)) != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Owner, Owners};

    fn conn(state: TcpState) -> Connection {
        let mut c = Connection::new(
            "127.0.0.1:80".parse().unwrap(),
            "127.0.0.1:40000".parse().unwrap(),
            state,
        );
        c.cookie = 7;
        c.inode = 1234;
        c.owners = Owners::from(vec![Owner {
            pid: 10,
            name: Some("python3".into()),
        }]);
        c
    }

    #[test]
    fn each_close_is_judged_by_where_its_socket_went() {
        use CloseHow::*;
        use TcpState::*;
        assert_eq!(judge(Graceful, CloseWait, None), Some(Outcome::Closed));
        assert_eq!(judge(Graceful, CloseWait, Some(LastAck)), None);
        assert_eq!(
            judge(Graceful, Established, Some(FinWait2)),
            Some(Outcome::HalfClosed)
        );
        assert_eq!(judge(Graceful, Established, Some(FinWait1)), None);
        assert_eq!(
            judge(Graceful, Established, Some(TimeWait)),
            Some(Outcome::Closed)
        );
        // A TIME_WAIT still there has not been destroyed.
        assert_eq!(judge(Abort, TimeWait, Some(TimeWait)), None);
        assert_eq!(judge(Abort, TimeWait, None), Some(Outcome::Closed));
        // An abort never leaves FIN_WAIT_2 as its success.
        assert_eq!(judge(Abort, Established, Some(FinWait2)), None);
    }

    #[test]
    fn exit_status_says_all_some_or_none() {
        let refused = Outcome::Refused {
            refusal: Refusal::Listen,
        };
        assert_eq!(exit_status(&[Outcome::Closed, Outcome::HalfClosed]), 0);
        assert_eq!(exit_status(&[Outcome::Closed, refused.clone()]), 3);
        assert_eq!(
            exit_status(&[
                refused,
                Outcome::StillThere {
                    state: TcpState::LastAck
                }
            ]),
            1
        );
        assert_eq!(exit_status(&[]), 1);
    }

    #[test]
    fn rails_leave_out_lingertop_and_the_ssh_session_and_refuse_what_cannot_be_done() {
        let rails = Rails {
            include_listen: false,
            ssh: parse_ssh_connection("127.0.0.1 40000 127.0.0.1 80"),
            own_pid: 99,
        };
        let c = conn(TcpState::Established);
        assert_eq!(rails.left_out(&c), Some(LeftOut::Ssh));
        let mut other = conn(TcpState::Established);
        other.owners = Owners::from(vec![Owner {
            pid: 5,
            name: Some("lingertop".into()),
        }]);
        assert_eq!(rails.left_out(&other), Some(LeftOut::Lingertop));
        let rails = Rails { ssh: None, ..rails };
        assert_eq!(rails.left_out(&c), None);
        assert_eq!(rails.refuse(&c, CloseHow::Graceful), None);
        assert_eq!(
            rails.refuse(&conn(TcpState::Listen), CloseHow::Abort),
            Some(Refusal::Listen)
        );
        let mut tw = conn(TcpState::TimeWait);
        tw.inode = 0;
        tw.owners = Owners::default();
        assert_eq!(
            rails.refuse(&tw, CloseHow::Graceful),
            Some(Refusal::NoDescriptor)
        );
        assert_eq!(rails.refuse(&tw, CloseHow::Abort), None);
        let mut no_cookie = conn(TcpState::CloseWait);
        no_cookie.cookie = 0;
        assert_eq!(
            rails.refuse(&no_cookie, CloseHow::Abort),
            Some(Refusal::NoCookie)
        );
        let with_listen = Rails {
            include_listen: true,
            ..Rails::default()
        };
        assert_eq!(
            with_listen.refuse(&conn(TcpState::Listen), CloseHow::Abort),
            None
        );
    }

    #[test]
    fn sigpipe_is_read_from_sigign() {
        assert_eq!(
            ignores_sigpipe("Name:\tpython3\nSigIgn:\t0000000001001000\n"),
            Some(true)
        );
        assert_eq!(ignores_sigpipe("SigIgn:\t0000000000000000\n"), Some(false));
        assert_eq!(ignores_sigpipe("Name:\tx\n"), None);
    }
}
