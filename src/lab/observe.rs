//! Watching exact 4-tuples in the kernel socket table while a close is in flight.
//!
//! The trace of a close polls both ends every few milliseconds, so a poll must be cheap and
//! must never be fooled by the thousands of other loopback sockets other programs make. On
//! Linux, [`SockDiagProbe`] asks the kernel for each 4-tuple by exact lookup over
//! `NETLINK_SOCK_DIAG` (no dump, no `/proc` scan): a few microseconds per tuple whatever the
//! size of the table (`cargo bench --bench lab_probe` prints the figures). Elsewhere, or when
//! netlink is refused, [`SourceProbe`] reads the whole table through a
//! [`SocketSource`](crate::collector::SocketSource) without process names and picks the
//! tuples out of it.

use std::net::SocketAddr;

use crate::collector::{Netstat2Source, RawSocket, SocketSource};
use crate::model::TcpState;

/// What the kernel reports for one socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Probed {
    pub state: TcpState,
    /// Bytes queued for sending (unacknowledged or unsent); 0 where the backend has no figure.
    pub send_queue: u32,
    /// Bytes received and not yet read by the application.
    pub recv_queue: u32,
}

/// Looks up sockets by exact 4-tuple (local, remote).
pub trait TupleProbe: Send {
    /// Short name for traces (`sock_diag`, `netstat2`).
    fn name(&self) -> &'static str;
    /// Fills `out` with one entry per tuple: `None` when the kernel has no such socket.
    fn lookup(
        &mut self,
        tuples: &[(SocketAddr, SocketAddr)],
        out: &mut Vec<Option<Probed>>,
    ) -> std::io::Result<()>;
}

/// The fastest probe this platform has: sock_diag exact lookups on Linux, else a full table
/// read through netstat2.
pub fn system_probe() -> Box<dyn TupleProbe> {
    #[cfg(target_os = "linux")]
    if let Ok(p) = SockDiagProbe::new() {
        return Box::new(p);
    }
    Box::new(SourceProbe::new(Netstat2Source))
}

/// Reads the whole table through a [`SocketSource`] and picks the tuples out of it.
pub struct SourceProbe<S: SocketSource> {
    source: S,
    raw: Vec<RawSocket>,
}

impl<S: SocketSource> SourceProbe<S> {
    pub fn new(source: S) -> Self {
        SourceProbe {
            source,
            raw: Vec::new(),
        }
    }
}

impl<S: SocketSource> TupleProbe for SourceProbe<S> {
    fn name(&self) -> &'static str {
        self.source.name()
    }

    fn lookup(
        &mut self,
        tuples: &[(SocketAddr, SocketAddr)],
        out: &mut Vec<Option<Probed>>,
    ) -> std::io::Result<()> {
        self.source
            .read(&mut self.raw)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        out.clear();
        for (local, remote) in tuples {
            // A 4-tuple can show twice for a moment (an old TIME_WAIT and a new socket);
            // the live one is the one being watched.
            let found = self
                .raw
                .iter()
                .filter(|r| r.tuple.local() == *local && r.tuple.remote() == *remote)
                .min_by_key(|r| r.state == TcpState::TimeWait)
                .map(|r| Probed {
                    state: r.state,
                    send_queue: 0,
                    recv_queue: 0,
                });
            out.push(found);
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
pub use sockdiag::SockDiagProbe;

#[cfg(target_os = "linux")]
mod sockdiag {
    use std::io;
    use std::net::SocketAddr;

    use netlink_packet_core::{NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload};
    use netlink_packet_sock_diag::SockDiagMessage;
    use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
    use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
    use netlink_sys::{Socket, SocketAddr as NlAddr, protocols::NETLINK_SOCK_DIAG};

    use super::{Probed, TupleProbe};
    use crate::model::TcpState;

    /// Exact-lookup sock_diag requests (`NLM_F_REQUEST` without `NLM_F_DUMP`): the kernel
    /// finds the one socket with that 4-tuple in its hash tables, TIME_WAIT included, and
    /// answers it or `ENOENT`.
    pub struct SockDiagProbe {
        socket: Socket,
        seq: u32,
        send: Vec<u8>,
        recv: Vec<u8>,
    }

    impl SockDiagProbe {
        /// Opens the netlink socket; fails where sock_diag is unavailable.
        pub fn new() -> io::Result<Self> {
            let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
            socket.bind_auto()?;
            socket.connect(&NlAddr::new(0, 0))?;
            Ok(SockDiagProbe {
                socket,
                seq: 0,
                send: Vec::with_capacity(128),
                recv: vec![0; 8192],
            })
        }

        fn one(&mut self, local: SocketAddr, remote: SocketAddr) -> io::Result<Option<Probed>> {
            let mut id = if local.is_ipv4() {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            };
            id.source_address = local.ip();
            id.source_port = local.port();
            id.destination_address = remote.ip();
            id.destination_port = remote.port();
            // INET_DIAG_NOCOOKIE: match whatever socket holds the tuple now.
            id.cookie = [0xff; 8];
            self.seq = self.seq.wrapping_add(1);
            let mut header = NetlinkHeader::default();
            header.flags = NLM_F_REQUEST;
            header.sequence_number = self.seq;
            let mut packet = NetlinkMessage::new(
                header,
                SockDiagMessage::InetRequest(InetRequest {
                    family: if local.is_ipv4() { AF_INET } else { AF_INET6 },
                    protocol: IPPROTO_TCP,
                    extensions: ExtensionFlags::empty(),
                    states: StateFlags::all(),
                    socket_id: id,
                })
                .into(),
            );
            packet.finalize();
            self.send.resize(packet.buffer_len(), 0);
            packet.serialize(&mut self.send[..]);
            self.socket.send(&self.send, 0)?;

            loop {
                let n = self.socket.recv(&mut &mut self.recv[..], 0)?;
                let mut offset = 0;
                while offset < n {
                    let msg: NetlinkMessage<SockDiagMessage> =
                        NetlinkMessage::deserialize(&self.recv[offset..n])
                            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let len = msg.header.length as usize;
                    // Answers to an earlier request that timed out are not ours.
                    let ours = msg.header.sequence_number == self.seq;
                    match msg.payload {
                        NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) if ours => {
                            // The kernel's lookup falls back to a listener on the local
                            // address when no connection has the tuple: that is not ours.
                            let id = &r.header.socket_id;
                            let exact = id.source_port == local.port()
                                && id.destination_port == remote.port()
                                && id.source_address == local.ip()
                                && id.destination_address == remote.ip();
                            let Some(state) = state_of(r.header.state).filter(|_| exact) else {
                                return Ok(None);
                            };
                            return Ok(Some(Probed {
                                state,
                                send_queue: r.header.send_queue,
                                recv_queue: r.header.recv_queue,
                            }));
                        }
                        NetlinkPayload::Error(e) if ours => {
                            return match e.code.map(|c| -c.get()) {
                                Some(libc::ENOENT) => Ok(None),
                                Some(code) => Err(io::Error::from_raw_os_error(code)),
                                None => Ok(None),
                            };
                        }
                        _ => {}
                    }
                    if len == 0 {
                        break;
                    }
                    offset += len;
                }
            }
        }
    }

    impl TupleProbe for SockDiagProbe {
        fn name(&self) -> &'static str {
            "sock_diag"
        }

        fn lookup(
            &mut self,
            tuples: &[(SocketAddr, SocketAddr)],
            out: &mut Vec<Option<Probed>>,
        ) -> io::Result<()> {
            out.clear();
            for &(local, remote) in tuples {
                let found = self.one(local, remote)?;
                out.push(found);
            }
            Ok(())
        }
    }

    /// The kernel's state numbers (`include/net/tcp_states.h`).
    fn state_of(n: u8) -> Option<TcpState> {
        Some(match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynRecv,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Close,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            12 => TcpState::SynRecv, // NEW_SYN_RECV: a request socket, shown as SYN_RECV
            _ => return None,
        })
    }
}
