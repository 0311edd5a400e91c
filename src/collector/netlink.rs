//! The Linux fast path: the kernel's TCP socket table through netlink `sock_diag`
//! (`SOCK_DIAG_BY_FAMILY` with an `inet_diag_req_v2`), the interface `ss` uses.
//!
//! A reader of our own rather than `netlink-packet-sock-diag`: everything lingertop needs
//! (addresses, state, timer, queues, uid, inode) is in the fixed 72-byte `inet_diag_msg`
//! that starts every answer, so the reader asks for no attributes, reads each message in
//! place without allocating, and keeps one receive buffer across polls. It asks the kernel
//! for only the states wanted, and treats as errors what a dump can go wrong with: a netlink
//! error message, an error in `NLMSG_DONE`, `NLM_F_DUMP_INTR`, a truncated or malformed
//! datagram, an overrun. The interrupted, overrun and truncated cases are retried.

use std::io;
use std::mem;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use super::owners::{OwnerCache, scan_proc};
use super::{CollectError, Held, RawSocket, ReadOptions, SocketSource};
use crate::model::{Connection, TcpState, Timer, TimerKind, Tuple};

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

/// Every state: the request mask `ss -ta` sends.
pub const ALL_STATES: u32 = u32::MAX;

/// What can go wrong reading the table.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    #[error("cannot open a netlink sock_diag socket: {0}")]
    Open(io::Error),
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
}

/// A netlink sock_diag socket with its receive buffer, reused across dumps.
pub struct SockDiag {
    fd: Option<OwnedFd>,
    buf: Vec<u8>,
    seq: u32,
    /// Whether the kernel answers the one-walk request (found out at the first dump).
    one_walk: Option<bool>,
}

impl SockDiag {
    /// A reader; the socket is opened at the first dump (and again after any error, so a
    /// half-read dump never leaks into the next one).
    pub fn new() -> Self {
        SockDiag {
            fd: None,
            buf: vec![0; RECV_BUF],
            seq: 0,
            one_walk: None,
        }
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
        if self.fd.is_none() {
            self.fd = Some(Self::open()?);
        }
        let fd = self.fd.as_ref().map_or(-1, |f| f.as_raw_fd());
        self.seq = self.seq.wrapping_add(1);
        let seq = self.seq;

        let mut req = [0u8; NLMSG_HDRLEN + REQ_V1_LEN];
        let (req_kind, len) = if family == AF_BOTH {
            // inet_diag_req: family (ignored: both), address lengths, no extensions, the
            // socket id (zero: a dump matches every socket), states, tables (unused).
            req[NLMSG_HDRLEN + 52..NLMSG_HDRLEN + 56].copy_from_slice(&states.to_ne_bytes());
            (TCPDIAG_GETSOCK, NLMSG_HDRLEN + REQ_V1_LEN)
        } else {
            // inet_diag_req_v2: family, protocol, no extensions, pad, states, socket id.
            req[16] = family;
            req[17] = libc::IPPROTO_TCP as u8;
            req[20..24].copy_from_slice(&states.to_ne_bytes());
            (SOCK_DIAG_BY_FAMILY, NLMSG_HDRLEN + REQ_LEN)
        };
        req[0..4].copy_from_slice(&(len as u32).to_ne_bytes());
        req[4..6].copy_from_slice(&req_kind.to_ne_bytes());
        req[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        req[8..12].copy_from_slice(&seq.to_ne_bytes());
        let req = &req[..len];
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

        let mut interrupted = false;
        loop {
            let n = recv_from_kernel(fd, &mut self.buf)?;
            let data = &self.buf[..n];
            let mut off = 0;
            while off + NLMSG_HDRLEN <= n {
                let len = ne_u32(data, off) as usize;
                let kind = ne_u16(data, off + 4);
                let flags = ne_u16(data, off + 6);
                let msg_seq = ne_u32(data, off + 8);
                if len < NLMSG_HDRLEN || off + len > n {
                    return Err(DiagError::Malformed("message length out of bounds"));
                }
                let body = &data[off + NLMSG_HDRLEN..off + len];
                off += (len + 3) & !3;
                if msg_seq != seq {
                    // Left over from an earlier request on this socket: not ours to read.
                    continue;
                }
                if flags & NLM_F_DUMP_INTR != 0 {
                    interrupted = true;
                }
                match kind {
                    // A socket: answers carry the request's type.
                    k if k == req_kind => each(&parse_diag(body)?),
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

fn parse_diag(b: &[u8]) -> Result<DiagSocket, DiagError> {
    if b.len() < DIAG_MSG_LEN {
        return Err(DiagError::Malformed("short inet_diag_msg"));
    }
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
    })
}

/// The kernel's state number for `s` (`include/net/tcp_states.h`: ESTABLISHED is 1).
fn kernel_state(s: TcpState) -> u8 {
    s.index() as u8 + 1
}

/// lingertop's state for a kernel state number.
pub fn state_of(n: u8) -> Option<TcpState> {
    match n {
        1..=11 => Some(TcpState::ALL[usize::from(n) - 1]),
        TCP_NEW_SYN_RECV => Some(TcpState::SynRecv),
        _ => None,
    }
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

/// Reads the socket table through [`SockDiag`] and finds owners through an
/// owner cache that rescans `/proc` only when sockets it does not know appear.
pub struct NetlinkSource {
    diag: SockDiag,
    states: u32,
    owners: OwnerCache,
}

impl NetlinkSource {
    /// A source whose first dump already worked: fails where sock_diag is missing (old or
    /// sandboxed kernels) so the caller can fall back.
    pub fn open() -> Result<Self, DiagError> {
        let mut diag = SockDiag::new();
        // The cheapest possible probe: listening sockets only.
        diag.dump_tcp(state_mask(Some(&[TcpState::Listen])), |_| {})?;
        Ok(NetlinkSource {
            diag,
            states: ALL_STATES,
            owners: OwnerCache::default(),
        })
    }
}

/// Runs `dump` until it succeeds, retrying transient failures (an interrupted dump) up to
/// [`ATTEMPTS`] times.
fn retrying(mut dump: impl FnMut() -> Result<(), DiagError>) -> Result<(), CollectError> {
    let mut attempt = 1;
    loop {
        match dump() {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < ATTEMPTS => attempt += 1,
            Err(e) => {
                return Err(CollectError::Backend {
                    backend: "netlink",
                    detail: if e.is_transient() {
                        format!("{e}, {ATTEMPTS} times in a row; try again")
                    } else {
                        format!("{e}; try --backend netstat2")
                    },
                });
            }
        }
    }
}

impl SocketSource for NetlinkSource {
    fn name(&self) -> &'static str {
        "netlink"
    }

    fn set_options(&mut self, opts: &ReadOptions) {
        self.states = state_mask(opts.states.as_deref());
        self.owners.set_exact(opts.exact_owners);
        self.owners.set_partial_reads(self.states != ALL_STATES);
    }

    fn selects_states(&self) -> bool {
        true
    }

    /// The trait's general read, for callers that want raw sockets: the direct read, with
    /// each connection's holders put back beside it.
    fn read(&mut self, out: &mut Vec<RawSocket>) -> Result<(), CollectError> {
        let (mut conns, mut held) = (Vec::new(), Vec::new());
        self.read_direct(&mut conns, &mut held)?;
        let mut held = held.into_iter().peekable();
        out.clear();
        out.extend(conns.into_iter().enumerate().map(|(i, c)| {
            let h = held.next_if(|h| h.index as usize == i);
            RawSocket {
                tuple: c.tuple().clone(),
                state: c.state,
                inode: c.inode,
                uid: h.as_ref().map(|h| h.uid),
                timer: c.timer,
                recv_q: c.recv_q(),
                send_q: c.send_q(),
                owner_pending: h.as_ref().is_some_and(|h| h.owner_pending),
                pids: h.map(|h| h.pids).unwrap_or_default(),
            }
        }));
        Ok(())
    }

    fn read_direct(
        &mut self,
        out: &mut Vec<Connection>,
        held: &mut Vec<Held>,
    ) -> Result<bool, CollectError> {
        let (diag, states) = (&mut self.diag, self.states);
        retrying(|| {
            out.clear();
            held.clear();
            diag.dump_tcp(states, |d| {
                let Some(state) = state_of(d.state) else {
                    return;
                };
                if d.inode != 0 {
                    held.push(Held {
                        index: u32::try_from(out.len()).unwrap_or(u32::MAX),
                        inode: d.inode,
                        uid: d.uid,
                        pids: Vec::new(),
                        owner_pending: false,
                    });
                }
                let mut c = Connection::on(Tuple::new(d.local, d.remote), state);
                c.inode = d.inode;
                c.timer = timer_of(d);
                c.set_queues(Some(d.rqueue), Some(d.wqueue));
                out.push(c);
            })
        })
        .inspect_err(|_| {
            out.clear();
            held.clear();
        })?;
        self.owners.attach(held, Instant::now(), &mut scan_proc);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_numbers_are_the_kernels() {
        assert_eq!(state_of(1), Some(TcpState::Established));
        assert_eq!(state_of(6), Some(TcpState::TimeWait));
        assert_eq!(state_of(8), Some(TcpState::CloseWait));
        assert_eq!(state_of(10), Some(TcpState::Listen));
        assert_eq!(state_of(11), Some(TcpState::Closing));
        assert_eq!(state_of(12), Some(TcpState::SynRecv));
        assert_eq!(state_of(0), None);
        assert_eq!(state_of(13), None);
        for s in TcpState::ALL {
            assert_eq!(state_of(kernel_state(s)), Some(s));
        }
    }

    #[test]
    fn masks_select_kernel_bits() {
        assert_eq!(state_mask(None), u32::MAX);
        assert_eq!(
            state_mask(Some(&[TcpState::TimeWait, TcpState::Listen])),
            (1 << 6) | (1 << 10)
        );
        assert_eq!(state_mask(Some(&[TcpState::SynRecv])), (1 << 3) | (1 << 12));
    }

    /// An `inet_diag_msg` as the kernel lays it out (x86-64 and every little- or
    /// big-endian Linux: host order except ports and addresses).
    fn msg(family: u8, state: u8, timer: u8, local: [u8; 16], lport: u16) -> Vec<u8> {
        let mut b = vec![0u8; DIAG_MSG_LEN];
        b[0] = family;
        b[1] = state;
        b[2] = timer;
        b[3] = 2;
        b[4..6].copy_from_slice(&lport.to_be_bytes());
        b[6..8].copy_from_slice(&80u16.to_be_bytes());
        b[8..24].copy_from_slice(&local);
        b[24..28].copy_from_slice(&[10, 0, 0, 1]);
        b[52..56].copy_from_slice(&59_000u32.to_ne_bytes());
        b[56..60].copy_from_slice(&7u32.to_ne_bytes());
        b[60..64].copy_from_slice(&9u32.to_ne_bytes());
        b[64..68].copy_from_slice(&1000u32.to_ne_bytes());
        b[68..72].copy_from_slice(&4242u32.to_ne_bytes());
        b
    }

    #[test]
    fn the_raw_read_puts_each_socket_beside_its_holders() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let c = std::net::TcpStream::connect(addr).unwrap();
        let Ok(mut src) = NetlinkSource::open() else {
            return; // no sock_diag here: the netstat2 fallback is tested elsewhere
        };
        src.set_options(&ReadOptions {
            states: None,
            exact_owners: true,
        });
        let mut out = Vec::new();
        src.read(&mut out).unwrap();
        let me = std::process::id();
        let ours = |local, remote| {
            out.iter()
                .find(|r| r.tuple.ends() == (local, remote))
                .unwrap_or_else(|| panic!("{local} -> {remote} not read"))
        };
        let listener = ours(addr, "0.0.0.0:0".parse().unwrap());
        assert_eq!(listener.state, TcpState::Listen);
        assert!(listener.pids.contains(&me) && listener.inode != 0);
        let client = ours(c.local_addr().unwrap(), addr);
        assert_eq!(client.state, TcpState::Established);
        assert!(client.pids.contains(&me) && client.uid.is_some());
        assert!(out.iter().all(|r| (r.inode == 0) == r.uid.is_none()));
    }

    #[test]
    fn parses_an_ipv4_message() {
        let mut local = [0u8; 16];
        local[..4].copy_from_slice(&[127, 0, 0, 1]);
        let d = parse_diag(&msg(AF_INET, 6, 3, local, 40000)).unwrap();
        assert_eq!(d.local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(d.remote, "10.0.0.1:80".parse().unwrap());
        assert_eq!(state_of(d.state), Some(TcpState::TimeWait));
        assert_eq!((d.rqueue, d.wqueue, d.uid, d.inode), (7, 9, 1000, 4242));
        let t = timer_of(&d).unwrap();
        assert_eq!(t.kind, TimerKind::TimeWait);
        assert_eq!(t.expires(), Duration::from_secs(59));
        assert_eq!(t.retransmits, 2);
    }

    #[test]
    fn parses_an_ipv6_message_and_refuses_a_short_one() {
        let local = Ipv6Addr::LOCALHOST.octets();
        let d = parse_diag(&msg(AF_INET6, 1, 0, local, 8080)).unwrap();
        assert_eq!(d.local, "[::1]:8080".parse().unwrap());
        assert_eq!(timer_of(&d), None);
        assert!(matches!(
            parse_diag(&msg(AF_INET6, 1, 0, local, 1)[..70]),
            Err(DiagError::Malformed(_))
        ));
    }
}
