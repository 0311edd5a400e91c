//! The portable backend: the `netstat2` crate (sock_diag plus a `/proc` scan on Linux,
//! sysctl on macOS, the IP Helper API on Windows).

use std::net::SocketAddr;

use netstat2::{
    AddressFamilyFlags, ProtocolFlags, ProtocolSocketInfo, TcpState as NsState, get_sockets_info,
};

use super::{CollectError, RawSocket, SocketSource};
use crate::model::{TcpState, Tuple};

/// Reads the socket table through `netstat2::get_sockets_info`.
#[derive(Debug, Default)]
pub struct Netstat2Source;

fn map_state(s: NsState) -> Option<TcpState> {
    Some(match s {
        NsState::Established => TcpState::Established,
        NsState::SynSent => TcpState::SynSent,
        NsState::SynReceived => TcpState::SynRecv,
        NsState::FinWait1 => TcpState::FinWait1,
        NsState::FinWait2 => TcpState::FinWait2,
        NsState::TimeWait => TcpState::TimeWait,
        NsState::Closed => TcpState::Close,
        NsState::CloseWait => TcpState::CloseWait,
        NsState::LastAck => TcpState::LastAck,
        NsState::Listen => TcpState::Listen,
        NsState::Closing => TcpState::Closing,
        // Windows' DELETE_TCB and states netstat2 cannot name carry nothing we can show.
        NsState::DeleteTcb | NsState::Unknown => return None,
    })
}

impl SocketSource for Netstat2Source {
    fn name(&self) -> &'static str {
        "netstat2"
    }

    fn read(&mut self, out: &mut Vec<RawSocket>) -> Result<(), CollectError> {
        out.clear();
        let infos = get_sockets_info(
            AddressFamilyFlags::IPV4 | AddressFamilyFlags::IPV6,
            ProtocolFlags::TCP,
        )
        .map_err(|e| CollectError::Backend {
            backend: "netstat2",
            detail: e.to_string(),
        })?;
        out.reserve(infos.len());
        for info in infos {
            let ProtocolSocketInfo::Tcp(tcp) = &info.protocol_socket_info else {
                continue;
            };
            let Some(state) = map_state(tcp.state) else {
                continue;
            };
            #[cfg(any(target_os = "linux", target_os = "android"))]
            // A socket without a file (TIME_WAIT, orphans, not yet accepted) reports uid 0,
            // which would read as "root": say nothing rather than something false.
            let (inode, uid) = (info.inode, (info.inode != 0).then_some(info.uid));
            #[cfg(not(any(target_os = "linux", target_os = "android")))]
            let (inode, uid) = (0, None);
            let mut pids = info.associated_pids;
            pids.sort_unstable();
            out.push(RawSocket {
                tuple: Tuple::new(
                    SocketAddr::new(tcp.local_addr, tcp.local_port),
                    SocketAddr::new(tcp.remote_addr, tcp.remote_port),
                ),
                state,
                inode,
                // No cookies, no kernel clocks: ages count from lingertop's first sight.
                cookie: 0,
                kernel_since: None,
                uid,
                pids,
                // netstat2 drops the timers and queues the kernel sends.
                timer: None,
                recv_q: None,
                send_q: None,
                owner_pending: false,
            });
        }
        Ok(())
    }
}
