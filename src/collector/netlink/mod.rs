//! The Linux fast path: the kernel's TCP socket table through netlink `sock_diag`
//! (`SOCK_DIAG_BY_FAMILY` with an `inet_diag_req_v2`), the interface `ss` uses.
//!
//! A reader of our own rather than `netlink-packet-sock-diag`: nearly everything lingertop
//! needs (addresses, state, timer, queues, uid, inode, cookie) is in the fixed 72-byte
//! `inet_diag_msg` that starts every answer, so the reader reads each message in place
//! without allocating, and keeps one receive buffer across polls. It reads two attributes:
//! `INET_DIAG_SHUTDOWN` (one byte, `sk_shutdown`; the kernel puts it in every full
//! socket's answer whether asked or not, so reading it costs no byte of the dump), which
//! tells the peer's FIN from data in a receive queue (`model::ReceiveQueue`), and
//! `tcp_info` (`INET_DIAG_INFO`, about 280 bytes a full socket), bounds the ages of
//! states that began before lingertop looked (`model::age`); a state's connections seen at
//! a later read began since the previous one, which lingertop observes itself, so tcp_info
//! is asked for only at the first read of each state. The reader takes from it only the
//! fields it needs, at their offsets in `struct tcp_info` (`linux/tcp.h`), which the kernel
//! only ever extends at the end; netlink-packet-sock-diag's `TcpInfo` would parse all 30-odd
//! fields of every socket and fails on a shorter one. It asks the kernel
//! for only the states wanted, and treats as errors what a dump can go wrong with: a netlink
//! error message, an error in `NLMSG_DONE`, `NLM_F_DUMP_INTR`, a truncated or malformed
//! datagram, an overrun. The interrupted, overrun and truncated cases are retried.
//!
//! This file is the wire: [`SockDiag`] and what it reads. Beside it, `netns.rs` opens a
//! reader inside each network namespace, and `source.rs` is the collector's source over
//! both ([`NetlinkSource`]).

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant, SystemTime};

use std::sync::Arc;

use super::owners::{OwnerCache, scan_proc};
use super::{CollectError, Held, RawSocket, ReadOptions, SocketSource};
use crate::model::age::{KernelClocks, TcpTimes, kernel_age};
use crate::model::{
    Connection, NetnsChoice, NetnsId, NetnsTable, OWN_NETNS, Shutdown, StateCounts, TcpState,
    Timer, TimerKind, Tracking, Tuple,
};

// From include/uapi/linux/{netlink,sock_diag,inet_diag}.h.
const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// The older request (`struct inet_diag_req`), which the kernel answers for both address
/// families in a single walk of its hash tables (`inet_diag_dump_compat` asks for
/// AF_UNSPEC); the newer one needs a walk per family, each skipping the other family's
/// sockets, which at 100k sockets is most of the kernel's time.
const TCPDIAG_GETSOCK: u16 = 18;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_req` (the older request).
const REQ_V1_LEN: usize = 60;
/// `struct inet_diag_msg`.
const DIAG_MSG_LEN: usize = 72;
/// `TCP_NEW_SYN_RECV`: a connection request not yet a full socket; shown as SYN_RECV.
const TCP_NEW_SYN_RECV: u8 = 12;
/// The attribute carrying `struct tcp_info`.
const INET_DIAG_INFO: u16 = 2;
/// Attribute types carry two flag bits above the type (`NLA_TYPE_MASK`).
const NLA_TYPE_MASK: u16 = 0x3fff;
/// The one-byte attribute carrying `sk_shutdown` (bits RCV_SHUTDOWN 1, SEND_SHUTDOWN 2).
const INET_DIAG_SHUTDOWN: u16 = 8;
/// The request's `idiag_ext` bit for `INET_DIAG_INFO` (bit N−1 asks for attribute N).
const EXT_INFO: u8 = 1 << (INET_DIAG_INFO - 1);
/// The bit for `INET_DIAG_SHUTDOWN`: the kernel sends the attribute without it
/// (`inet_diag_msg_attrs_fill`), the bit says it is wanted should that change.
const EXT_SHUTDOWN: u8 = 1 << (INET_DIAG_SHUTDOWN - 1);
/// Offsets in `struct tcp_info` of the fields read, and the length they need.
const TCPI_RTO: usize = 8;
const TCPI_LAST_DATA_SENT: usize = 44;
const TCPI_LAST_DATA_RECV: usize = 52;
const TCPI_LAST_ACK_RECV: usize = 56;
const TCPI_NEEDED: usize = 60;
/// Where `tcp_fin_timeout` of lingertop's network namespace is (the one it reads).
const FIN_TIMEOUT: &str = "/proc/sys/net/ipv4/tcp_fin_timeout";

/// IPv4 sockets, for [`SockDiag::dump`].
pub const AF_INET: u8 = libc::AF_INET as u8;
/// IPv6 sockets (IPv4-mapped ones included), for [`SockDiag::dump`].
pub const AF_INET6: u8 = libc::AF_INET6 as u8;
/// Both families in one walk of the kernel's tables (the older `TCPDIAG_GETSOCK` request).
pub const AF_BOTH: u8 = libc::AF_UNSPEC as u8;

/// The kernel answers a dump in datagrams of at most 32 KiB; a larger buffer can never
/// truncate one (truncation is still checked).
const RECV_BUF: usize = 64 * 1024;
/// A dump that makes no progress for this long is abandoned (the kernel always answers;
/// this only keeps a poll from hanging forever on a broken kernel).
const RECV_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts at a dump that was interrupted, overrun or truncated.
const ATTEMPTS: u32 = 3;

/// Every state a connection can be in: ESTABLISHED (1) to NEW_SYN_RECV (12), what `ss -ta`
/// asks (0xfff, the kernel adding NEW_SYN_RECV to SYN_RECV). Not TCP_BOUND_INACTIVE (13,
/// sockets bound and never connected nor listening): asking for it makes the kernel walk
/// the whole bind hash table (65536 buckets here, shared by every namespace) on top of the
/// socket table, in every namespace and at every poll.
pub const ALL_STATES: u32 = ((1 << (TCP_NEW_SYN_RECV + 1)) - 1) & !1;

/// What can go wrong reading the table.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("cannot open a netlink sock_diag socket: {0}")]
    Open(io::Error),
    #[error("cannot enter the network namespace: {0}")]
    Enter(io::Error),
    #[error("cannot send the sock_diag request: {0}")]
    Send(io::Error),
    #[error("cannot receive the sock_diag answer: {0}")]
    Recv(io::Error),
    #[error("the kernel refused the sock_diag request: {0}")]
    Kernel(io::Error),
    #[error("the socket table changed during the dump (NLM_F_DUMP_INTR)")]
    Interrupted,
    #[error("netlink messages were lost (overrun)")]
    Overrun,
    #[error("a netlink datagram was larger than the {0}-byte buffer")]
    Truncated(usize),
    #[error("malformed netlink message: {0}")]
    Malformed(&'static str),
}

impl DiagError {
    /// Whether the same dump may simply be tried again.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DiagError::Interrupted | DiagError::Overrun | DiagError::Truncated(_)
        )
    }
}

/// One socket as `inet_diag_msg` describes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiagSocket {
    /// [`AF_INET`] or [`AF_INET6`].
    pub family: u8,
    /// The kernel's state number (1 ESTABLISHED … 11 CLOSING, 12 NEW_SYN_RECV).
    pub state: u8,
    /// 0 none, 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero-window probe.
    pub timer: u8,
    /// Retransmissions (retransmit timer) or unanswered probes (keepalive, zero window).
    pub retrans: u8,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// Milliseconds until the timer fires.
    pub expires_ms: u32,
    /// Receive queue in bytes (LISTEN: connections waiting for accept()).
    pub rqueue: u32,
    /// Send queue in bytes (LISTEN: the backlog).
    pub wqueue: u32,
    /// Owner of the socket's file (0 for sockets without one).
    pub uid: u32,
    /// Socket inode; 0 for TIME_WAIT, orphans and not yet accepted connections.
    pub inode: u32,
    /// `idiag_cookie`: the socket's 64-bit cookie, unique for its life.
    pub cookie: u64,
    /// `idiag_if`: the interface a socket is bound to (0: none); part of its identity for
    /// a lookup ([`SockKey`]).
    pub if_index: u32,
    /// The times of `tcp_info`, where the dump asked for it and the socket is a full one.
    pub info: Option<TcpTimes>,
    /// `sk_shutdown` (`INET_DIAG_SHUTDOWN`), for full sockets (TIME_WAIT and request
    /// sockets carry no attributes).
    pub shutdown: Option<u8>,
    /// When the dump was asked for: the kernel's clocks are read back from it, so ages are
    /// as of the start of the read (the kernel reads them during the dump, a few ms later at
    /// most for a small table, about 0.1 s at 100k sockets).
    pub asked_at: SystemTime,
}

/// A netlink sock_diag socket with its receive buffer, reused across dumps.
pub struct SockDiag {
    fd: Option<OwnedFd>,
    /// The network namespace the socket is opened in, where it is not lingertop's own (see
    /// `netlink::netns`): kept to open it again there after an error.
    netns: Option<OwnedFd>,
    buf: Vec<u8>,
    seq: u32,
    /// Whether the kernel answers the one-walk request (found out at the first dump).
    one_walk: Option<bool>,
    /// Whether dumps ask for `tcp_info`.
    tcp_info: bool,
    /// The states this reader has already read with `tcp_info`: a namespace's later reads
    /// ask for it only for a state it has not read yet.
    info_read: u32,
}

impl SockDiag {
    /// A reader; the socket is opened at the first dump (and again after any error, so a
    /// half-read dump never leaks into the next one).
    pub fn new() -> Self {
        SockDiag {
            fd: None,
            netns: None,
            buf: vec![0; RECV_BUF],
            seq: 0,
            one_walk: None,
            tcp_info: false,
            info_read: 0,
        }
    }

    /// Whether later dumps ask the kernel for each full socket's `tcp_info`
    /// ([`DiagSocket::info`]); off by default.
    pub fn set_tcp_info(&mut self, yes: bool) {
        self.tcp_info = yes;
    }

    /// A reader of the network namespace `ns` (an open `/proc/PID/ns/net` or `/run/netns`
    /// file), whose socket is opened inside it.
    pub fn inside(ns: OwnedFd) -> Self {
        SockDiag {
            netns: Some(ns),
            ..SockDiag::new()
        }
    }

    /// Opens the socket now rather than at the first dump.
    pub fn connect(&mut self) -> Result<(), DiagError> {
        if self.fd.is_none() {
            self.fd = Some(match &self.netns {
                Some(ns) => netns::open_inside(ns, Self::open)?,
                None => Self::open()?,
            });
        }
        Ok(())
    }

    /// Dumps the TCP sockets of both address families whose state is in `states`: in one
    /// walk of the kernel's tables where the kernel takes the older request, else with one
    /// request per family (as `ss` does). One attempt, as [`SockDiag::dump`].
    pub fn dump_tcp(
        &mut self,
        states: u32,
        mut each: impl FnMut(&DiagSocket),
    ) -> Result<(), DiagError> {
        if self.one_walk()? {
            return self.dump(AF_BOTH, states, each);
        }
        for family in [AF_INET, AF_INET6] {
            self.dump(family, states, &mut each)?;
        }
        Ok(())
    }

    fn one_walk(&mut self) -> Result<bool, DiagError> {
        if let Some(yes) = self.one_walk {
            return Ok(yes);
        }
        // Listening sockets only: the cheapest question to find out whether it is answered.
        let yes = match self.dump(AF_BOTH, state_mask(Some(&[TcpState::Listen])), |_| {}) {
            Ok(()) => true,
            Err(DiagError::Kernel(_)) => false,
            Err(e) => return Err(e),
        };
        self.one_walk = Some(yes);
        Ok(yes)
    }

    fn open() -> Result<OwnedFd, DiagError> {
        // SAFETY: plain socket(2) call; the result is checked before use.
        let raw = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                NETLINK_SOCK_DIAG,
            )
        };
        if raw < 0 {
            return Err(DiagError::Open(io::Error::last_os_error()));
        }
        // SAFETY: `raw` is a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let tv = libc::timeval {
            tv_sec: RECV_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: `tv` lives across the call and its size is passed.
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&raw const tv).cast(),
                mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if rc < 0 {
            return Err(DiagError::Open(io::Error::last_os_error()));
        }
        Ok(fd)
    }

    /// Dumps the TCP sockets of `family` ([`AF_INET`], [`AF_INET6`], or [`AF_BOTH`] for both
    /// in one walk) whose state is in the kernel bit mask `states` (bit N for state N; see
    /// [`state_mask`]), calling `each` for every socket. One attempt:
    /// on an error the caller may retry when [`DiagError::is_transient`], after discarding
    /// what `each` saw.
    pub fn dump(
        &mut self,
        family: u8,
        states: u32,
        mut each: impl FnMut(&DiagSocket),
    ) -> Result<(), DiagError> {
        let result = self.dump_once(family, states, &mut each);
        if result.is_err() {
            // The kernel may still hold the rest of this dump for the socket: start afresh.
            self.fd = None;
        }
        result
    }

    fn dump_once(
        &mut self,
        family: u8,
        states: u32,
        each: &mut dyn FnMut(&DiagSocket),
    ) -> Result<(), DiagError> {
        self.connect()?;
        let fd = self.fd.as_ref().map_or(-1, |f| f.as_raw_fd());
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;

        let mut req = [0u8; NLMSG_HDRLEN + REQ_V1_LEN];
        let ext = EXT_SHUTDOWN | if self.tcp_info { EXT_INFO } else { 0 };
        let (req_kind, len) = if family == AF_BOTH {
            // inet_diag_req: family (ignored: both), address lengths, extensions, the
            // socket id (zero: a dump matches every socket), states, tables (unused).
            req[NLMSG_HDRLEN + 3] = ext;
            req[NLMSG_HDRLEN + 52..NLMSG_HDRLEN + 56].copy_from_slice(&states.to_ne_bytes());
            (TCPDIAG_GETSOCK, NLMSG_HDRLEN + REQ_V1_LEN)
        } else {
            // inet_diag_req_v2: family, protocol, extensions, pad, states, socket id.
            req[16] = family;
            req[17] = libc::IPPROTO_TCP as u8;
            req[18] = ext;
            req[20..24].copy_from_slice(&states.to_ne_bytes());
            (SOCK_DIAG_BY_FAMILY, NLMSG_HDRLEN + REQ_LEN)
        };
        put_header(&mut req, len, req_kind, NLM_F_REQUEST | NLM_F_DUMP, seq);
        let asked_at = SystemTime::now();
        send_to_kernel(fd, &req[..len])?;

        let mut interrupted = false;
        let with_info = self.tcp_info;
        loop {
            let n = recv_from_kernel(fd, &mut self.buf)?;
            for msg in messages(&self.buf[..n]) {
                let Message {
                    kind,
                    flags,
                    seq: msg_seq,
                    body,
                } = msg?;
                if msg_seq != seq {
                    // Left over from an earlier request on this socket: not ours to read.
                    continue;
                }
                if flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match kind {
                    // A socket: answers carry the request's type.
                    k if k == req_kind => each(&parse_diag(body, with_info, asked_at)?),
                    NLMSG_DONE => {
                        // The kernel puts the dump's final status in NLMSG_DONE.
                        if body.len() >= 4 {
                            let status = ne_u32(body, 0) as i32;
                            if status < 0 {
                                return Err(DiagError::Kernel(io::Error::from_raw_os_error(
                                    -status,
                                )));
                            }
                        }
                        return if interrupted {
                            Err(DiagError::Interrupted)
                        } else {
                            Ok(())
                        };
                    }
                    NLMSG_ERROR => {
                        if body.len() < 4 {
                            return Err(DiagError::Malformed("short NLMSG_ERROR"));
                        }
                        let errno = ne_u32(body, 0) as i32;
                        // 0 is an acknowledgement, which a dump does not ask for.
                        if errno != 0 {
                            return Err(DiagError::Kernel(io::Error::from_raw_os_error(-errno)));
                        }
                    }
                    NLMSG_OVERRUN => return Err(DiagError::Overrun),
                    NLMSG_NOOP => {}
                    _ => {}
                }
            }
        }
    }
}

/// Sockets asked for by identity in one datagram: their answers (at most a few hundred
/// bytes each) wait together in the socket's receive buffer.
const LOOKUP_BATCH: usize = 32;

/// The identity of one socket as the kernel finds it again: its family and
/// `inet_diag_sockid` (ports, addresses, bound interface, cookie), as a dump gave it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockKey {
    family: u8,
    id: [u8; 48],
}

impl SockKey {
    /// The identity of a socket a dump or a lookup gave.
    pub fn of(d: &DiagSocket) -> SockKey {
        let mut id = [0u8; 48];
        id[0..2].copy_from_slice(&d.local.port().to_be_bytes());
        id[2..4].copy_from_slice(&d.remote.port().to_be_bytes());
        for (at, addr) in [(4, d.local.ip()), (20, d.remote.ip())] {
            match addr {
                IpAddr::V4(a) => id[at..at + 4].copy_from_slice(&a.octets()),
                IpAddr::V6(a) => id[at..at + 16].copy_from_slice(&a.octets()),
            }
        }
        id[36..40].copy_from_slice(&d.if_index.to_ne_bytes());
        id[40..44].copy_from_slice(&(d.cookie as u32).to_ne_bytes());
        id[44..48].copy_from_slice(&((d.cookie >> 32) as u32).to_ne_bytes());
        SockKey {
            family: d.family,
            id,
        }
    }
}

impl SockDiag {
    /// Asks the kernel for each socket of `keys` by its identity, a few dozen requests to a
    /// datagram (`inet_diag_find_one_icsk`: a hash lookup, not a walk of the table), and
    /// calls `each` for every one still there. Returns how many were not: gone, or another
    /// socket on the same addresses (its cookie differs). One attempt; on an error the
    /// socket is opened afresh at the next request, as after a failed dump.
    pub fn lookup(
        &mut self,
        keys: &[SockKey],
        mut each: impl FnMut(&DiagSocket),
    ) -> Result<usize, DiagError> {
        let result = self.lookup_once(keys, &mut each);
        if result.is_err() {
            self.fd = None;
        }
        result
    }

    fn lookup_once(
        &mut self,
        keys: &[SockKey],
        each: &mut dyn FnMut(&DiagSocket),
    ) -> Result<usize, DiagError> {
        self.connect()?;
        let fd = self.fd.as_ref().map_or(-1, |f| f.as_raw_fd());
        let ext = EXT_SHUTDOWN | if self.tcp_info { EXT_INFO } else { 0 };
        let with_info = self.tcp_info;
        let mut missing = 0;
        let mut req = Vec::with_capacity(LOOKUP_BATCH * (NLMSG_HDRLEN + REQ_LEN));
        for batch in keys.chunks(LOOKUP_BATCH) {
            // One sequence number a request, so each answer is matched to its question and
            // a late answer to an earlier batch is told apart.
            let first = self.seq.wrapping_add(1);
            self.seq = self.seq.wrapping_add(batch.len() as u32);
            req.clear();
            for (i, key) in batch.iter().enumerate() {
                let mut m = [0u8; NLMSG_HDRLEN + REQ_LEN];
                put_header(
                    &mut m,
                    NLMSG_HDRLEN + REQ_LEN,
                    SOCK_DIAG_BY_FAMILY,
                    NLM_F_REQUEST,
                    first.wrapping_add(i as u32),
                );
                m[16] = key.family;
                m[17] = libc::IPPROTO_TCP as u8;
                m[18] = ext;
                m[20..24].copy_from_slice(&ALL_STATES.to_ne_bytes());
                m[24..72].copy_from_slice(&key.id);
                req.extend_from_slice(&m);
            }
            let asked_at = SystemTime::now();
            send_to_kernel(fd, &req)?;
            // Every request is answered once: by the socket, or by an error (ENOENT).
            let mut answered = 0;
            while answered < batch.len() {
                let n = recv_from_kernel(fd, &mut self.buf)?;
                for msg in messages(&self.buf[..n]) {
                    let Message {
                        kind,
                        seq: msg_seq,
                        body,
                        ..
                    } = msg?;
                    if msg_seq.wrapping_sub(first) as usize >= batch.len() {
                        continue;
                    }
                    match kind {
                        SOCK_DIAG_BY_FAMILY => {
                            answered += 1;
                            each(&parse_diag(body, with_info, asked_at)?);
                        }
                        NLMSG_ERROR => {
                            if body.len() < 4 {
                                return Err(DiagError::Malformed("short NLMSG_ERROR"));
                            }
                            answered += 1;
                            match -(ne_u32(body, 0) as i32) {
                                0 => {}
                                libc::ENOENT => missing += 1,
                                errno => {
                                    return Err(DiagError::Kernel(io::Error::from_raw_os_error(
                                        errno,
                                    )));
                                }
                            }
                        }
                        NLMSG_OVERRUN => return Err(DiagError::Overrun),
                        _ => {}
                    }
                }
            }
        }
        Ok(missing)
    }
}

/// `SOCK_DESTROY` (`include/uapi/linux/sock_diag.h`): the request that makes the kernel
/// abort one socket, found by its `inet_diag_sockid` (cookie included), what `ss -K` sends.
const SOCK_DESTROY: u16 = 21;
/// Ask for an acknowledgement: the kernel's answer to a destroy is its errno (0 or not).
const NLM_F_ACK: u16 = 0x4;

impl SockDiag {
    /// Asks the kernel to abort the socket `key` names (`SOCK_DESTROY`): a RST to the peer
    /// where there is one, the socket gone (a TIME_WAIT too). The request carries the
    /// socket's cookie, so a socket that took the same addresses since is never touched: the
    /// kernel answers ENOENT. Answers EPERM without CAP_NET_ADMIN in the socket's network
    /// namespace, EOPNOTSUPP on a kernel built without `CONFIG_INET_DIAG_DESTROY`; both as
    /// [`DiagError::Kernel`]. Runs in the calling task: the kernel's events see lingertop
    /// as the task that reset the socket.
    pub fn destroy(&mut self, key: &SockKey) -> Result<(), DiagError> {
        let result = self.destroy_once(key);
        if matches!(result, Err(ref e) if !matches!(e, DiagError::Kernel(_))) {
            self.fd = None;
        }
        result
    }

    fn destroy_once(&mut self, key: &SockKey) -> Result<(), DiagError> {
        self.connect()?;
        let fd = self.fd.as_ref().map_or(-1, |f| f.as_raw_fd());
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;
        let mut m = [0u8; NLMSG_HDRLEN + REQ_LEN];
        put_header(
            &mut m,
            NLMSG_HDRLEN + REQ_LEN,
            SOCK_DESTROY,
            NLM_F_REQUEST | NLM_F_ACK,
            seq,
        );
        m[16] = key.family;
        m[17] = libc::IPPROTO_TCP as u8;
        m[20..24].copy_from_slice(&ALL_STATES.to_ne_bytes());
        m[24..72].copy_from_slice(&key.id);
        send_to_kernel(fd, &m)?;
        loop {
            let n = recv_from_kernel(fd, &mut self.buf)?;
            for msg in messages(&self.buf[..n]) {
                let Message {
                    kind,
                    seq: msg_seq,
                    body,
                    ..
                } = msg?;
                if msg_seq != seq || kind != NLMSG_ERROR {
                    continue;
                }
                if body.len() < 4 {
                    return Err(DiagError::Malformed("short NLMSG_ERROR"));
                }
                return match -(ne_u32(body, 0) as i32) {
                    0 => Ok(()),
                    errno => Err(DiagError::Kernel(io::Error::from_raw_os_error(errno))),
                };
            }
        }
    }
}

impl Default for SockDiag {
    fn default() -> Self {
        SockDiag::new()
    }
}

fn kernel_addr() -> libc::sockaddr_nl {
    // SAFETY: sockaddr_nl is plain old data; all-zero is valid (pid 0 = the kernel).
    let mut a: libc::sockaddr_nl = unsafe { mem::zeroed() };
    a.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    a
}

/// Writes a netlink message header (`struct nlmsghdr`) at the start of `m`.
fn put_header(m: &mut [u8], len: usize, kind: u16, flags: u16, seq: u32) {
    m[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&kind.to_ne_bytes());
    m[6..8].copy_from_slice(&flags.to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
}

/// One netlink message of a datagram.
struct Message<'a> {
    kind: u16,
    flags: u16,
    seq: u32,
    body: &'a [u8],
}

/// The messages of one datagram from the kernel, in order; a length out of bounds ends
/// it with an error.
fn messages(data: &[u8]) -> impl Iterator<Item = Result<Message<'_>, DiagError>> {
    let mut off = 0;
    std::iter::from_fn(move || {
        if off + NLMSG_HDRLEN > data.len() {
            return None;
        }
        let len = ne_u32(data, off) as usize;
        if len < NLMSG_HDRLEN || off + len > data.len() {
            off = data.len();
            return Some(Err(DiagError::Malformed("message length out of bounds")));
        }
        let msg = Message {
            kind: ne_u16(data, off + 4),
            flags: ne_u16(data, off + 6),
            seq: ne_u32(data, off + 8),
            body: &data[off + NLMSG_HDRLEN..off + len],
        };
        off += (len + 3) & !3;
        Some(Ok(msg))
    })
}

/// Sends the requests in `req` (one or more netlink messages) to the kernel in one datagram.
fn send_to_kernel(fd: libc::c_int, req: &[u8]) -> Result<(), DiagError> {
    let kernel = kernel_addr();
    // SAFETY: `req` and `kernel` are valid for the lengths passed.
    let sent = unsafe {
        libc::sendto(
            fd,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&raw const kernel).cast(),
            mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(DiagError::Send(io::Error::last_os_error()));
    }
    Ok(())
}

/// Receives one datagram sent by the kernel (others are dropped), retrying on EINTR.
fn recv_from_kernel(fd: libc::c_int, buf: &mut [u8]) -> Result<usize, DiagError> {
    loop {
        let mut from = kernel_addr();
        let mut from_len = mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t;
        // SAFETY: `buf` and `from` are valid for the lengths passed. MSG_TRUNC makes the
        // call return the datagram's real length, so truncation can be detected.
        let n = unsafe {
            libc::recvfrom(
                fd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
                (&raw mut from).cast(),
                &mut from_len,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::ENOBUFS) => return Err(DiagError::Overrun),
                _ => return Err(DiagError::Recv(e)),
            }
        }
        let n = n as usize;
        if n > buf.len() {
            return Err(DiagError::Truncated(buf.len()));
        }
        if from.nl_pid != 0 {
            // Another process sent to our port: never part of the kernel's answer.
            continue;
        }
        return Ok(n);
    }
}

fn ne_u16(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn ne_u32(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The attributes read among those, `attrs`, that follow an `inet_diag_msg`: the times of
/// `tcp_info` (where `with_info`; `None` when it is absent or too short to hold them) and
/// the shutdown bits.
fn parse_attrs(
    mut attrs: &[u8],
    with_info: bool,
) -> Result<(Option<TcpTimes>, Option<u8>), DiagError> {
    let (mut info, mut shutdown) = (None, None);
    while attrs.len() >= 4 {
        let len = usize::from(ne_u16(attrs, 0));
        let kind = ne_u16(attrs, 2) & NLA_TYPE_MASK;
        if len < 4 || len > attrs.len() {
            return Err(DiagError::Malformed("attribute length out of bounds"));
        }
        let payload = &attrs[4..len];
        match kind {
            INET_DIAG_SHUTDOWN => shutdown = payload.first().copied(),
            INET_DIAG_INFO if with_info && payload.len() >= TCPI_NEEDED => {
                info = Some(TcpTimes {
                    rto_us: ne_u32(payload, TCPI_RTO),
                    last_data_sent_ms: ne_u32(payload, TCPI_LAST_DATA_SENT),
                    last_data_recv_ms: ne_u32(payload, TCPI_LAST_DATA_RECV),
                    last_ack_recv_ms: ne_u32(payload, TCPI_LAST_ACK_RECV),
                });
            }
            _ => {}
        }
        attrs = &attrs[((len + 3) & !3).min(attrs.len())..];
    }
    Ok((info, shutdown))
}

/// One socket of the answer; its `tcp_info` is read only when the dump asked for it
/// (`with_info`).
fn parse_diag(b: &[u8], with_info: bool, asked_at: SystemTime) -> Result<DiagSocket, DiagError> {
    if b.len() < DIAG_MSG_LEN {
        return Err(DiagError::Malformed("short inet_diag_msg"));
    }
    let (info, shutdown) = parse_attrs(&b[DIAG_MSG_LEN..], with_info)?;
    let family = b[0];
    // inet_diag_sockid: ports in network order, then 16-byte source and destination.
    let sport = u16::from_be_bytes([b[4], b[5]]);
    let dport = u16::from_be_bytes([b[6], b[7]]);
    let ip = |at: usize| -> IpAddr {
        if family == AF_INET6 {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[at..at + 16]);
            IpAddr::V6(Ipv6Addr::from(a))
        } else {
            IpAddr::V4(Ipv4Addr::new(b[at], b[at + 1], b[at + 2], b[at + 3]))
        }
    };
    Ok(DiagSocket {
        family,
        state: b[1],
        timer: b[2],
        retrans: b[3],
        local: SocketAddr::new(ip(8), sport),
        remote: SocketAddr::new(ip(24), dport),
        expires_ms: ne_u32(b, 52),
        rqueue: ne_u32(b, 56),
        wqueue: ne_u32(b, 60),
        uid: ne_u32(b, 64),
        inode: ne_u32(b, 68),
        // idiag_cookie[0] is the low half, [1] the high (`sock_diag_save_cookie`).
        cookie: u64::from(ne_u32(b, 44)) | (u64::from(ne_u32(b, 48)) << 32),
        if_index: ne_u32(b, 40),
        info,
        shutdown,
        asked_at,
    })
}

/// The kernel's state number for `s` (`include/net/tcp_states.h`: ESTABLISHED is 1).
fn kernel_state(s: TcpState) -> u8 {
    s.index() as u8 + 1
}

/// lingertop's state for a kernel state number.
pub fn state_of(n: u8) -> Option<TcpState> {
    TcpState::from_kernel(n)
}

/// The request mask for `states` (every state for `None`). SYN_RECV includes the kernel's
/// NEW_SYN_RECV, which `ss` also shows as SYN-RECV.
pub fn state_mask(states: Option<&[TcpState]>) -> u32 {
    let Some(states) = states else {
        return ALL_STATES;
    };
    let mut mask = 0u32;
    for &s in states {
        mask |= 1 << kernel_state(s);
        if s == TcpState::SynRecv {
            mask |= 1 << TCP_NEW_SYN_RECV;
        }
    }
    mask
}

fn timer_of(d: &DiagSocket) -> Option<Timer> {
    let kind = match d.timer {
        1 => TimerKind::Retransmit,
        2 => TimerKind::Keepalive,
        3 => TimerKind::TimeWait,
        4 => TimerKind::ZeroWindowProbe,
        _ => return None,
    };
    Some(Timer {
        kind,
        expires_ms: d.expires_ms,
        retransmits: d.retrans,
    })
}

/// `tcp_fin_timeout` of lingertop's network namespace, the one its sock_diag reads; the
/// kernel's default (60 s) where it cannot be read.
fn fin_timeout() -> Duration {
    std::fs::read_to_string(FIN_TIMEOUT)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(60), Duration::from_secs)
}

pub mod netns;
mod source;
use netns::Namespaces;
pub use source::NetlinkSource;

#[cfg(test)]
mod tests;
