//! The records `bpf/closes.bpf.c` writes into the ring buffer, decoded into typed events.
//! The layout is the C `struct close_event`: 104 bytes, every field at a fixed offset.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::model::TcpState;

/// Size of one record.
pub const RECORD_LEN: usize = 104;

const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const F_KTHREAD: u8 = 1;
const F_LINGER: u8 = 2;

/// What a record reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `inet_sock_set_state`: old and new state (kernel numbers).
    State { old: u8, new: u8 },
    /// `tcp_send_reset` with the kernel's `enum sk_rst_reason`.
    SendReset { reason: u8 },
    /// `tcp_receive_reset`.
    ReceiveReset,
    /// `tcp_destroy_sock`.
    Destroy,
    /// A send or receive on the socket, in the process that made it.
    Owner,
}

/// One decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    /// CLOCK_MONOTONIC nanoseconds.
    pub ts_ns: u64,
    /// The socket's kernel address: the join key while the socket lives.
    pub sk: u64,
    pub cookie: u64,
    pub kind: EventKind,
    /// The socket's state when the record was written (the new state for a state change).
    pub state: u8,
    /// The current task's process and name: the owner only where the event runs in the
    /// owner's process context (the joiner decides which those are).
    pub tgid: u32,
    pub comm: String,
    /// The current task is a kernel thread (ksoftirqd, a worker): never an owner.
    pub kthread: bool,
    pub netns: u32,
    /// Both ends; `None` while the kernel has the port zeroed (before bind or connect, once
    /// closed).
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    /// SO_LINGER's deadline in kernel ticks, when SO_LINGER is on.
    pub linger_ticks: Option<u64>,
}

/// A record that is not one: shorter than [`RECORD_LEN`] or of an unknown kind. Only a
/// mismatch between the embedded object and this decoder can produce one.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("malformed kernel event record ({0})")]
pub struct Malformed(&'static str);

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_ne_bytes(a)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(a)
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_ne_bytes([b[at], b[at + 1]])
}

fn addr(family: u8, raw: &[u8], port: u16) -> Option<SocketAddr> {
    let ip = match family {
        AF_INET => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
        AF_INET6 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&raw[..16]);
            let v6 = Ipv6Addr::from(a);
            // A v4-mapped address is how a dual-stack socket holds an IPv4 peer.
            match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(v6),
            }
        }
        _ => return None,
    };
    // Port 0: not bound or connected yet, or already unhashed (the kernel zeroes the local
    // port when a closed socket leaves its bind bucket, and both ends on a linger-0 close).
    if port == 0 {
        return None;
    }
    Some(SocketAddr::new(ip, port))
}

/// Decodes one record.
pub fn decode(b: &[u8]) -> Result<RawEvent, Malformed> {
    if b.len() < RECORD_LEN {
        return Err(Malformed("short"));
    }
    let (old, new, family, reason, flags) = (b[41], b[42], b[43], b[44], b[45]);
    let kind = match b[40] {
        1 => EventKind::State { old, new },
        2 => EventKind::SendReset { reason },
        3 => EventKind::ReceiveReset,
        4 => EventKind::Destroy,
        5 => EventKind::Owner,
        _ => return Err(Malformed("unknown kind")),
    };
    let comm_raw = &b[88..104];
    let comm_len = comm_raw
        .iter()
        .position(|&c| c == 0)
        .unwrap_or(comm_raw.len());
    Ok(RawEvent {
        ts_ns: u64_at(b, 0),
        sk: u64_at(b, 8),
        cookie: u64_at(b, 16),
        linger_ticks: (flags & F_LINGER != 0).then(|| u64_at(b, 24)),
        tgid: u32_at(b, 32),
        netns: u32_at(b, 36),
        kind,
        state: new,
        kthread: flags & F_KTHREAD != 0,
        local: addr(family, &b[56..72], u16_at(b, 46)),
        remote: addr(family, &b[72..88], u16_at(b, 48)),
        comm: String::from_utf8_lossy(&comm_raw[..comm_len]).into_owned(),
    })
}

/// lingertop's state for a kernel state number (`NEW_SYN_RECV` shown as SYN_RECV).
pub fn state_of(n: u8) -> Option<TcpState> {
    TcpState::from_kernel(n)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A record laid out as the C struct is, for the joiner's tests.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record(
        kind: u8,
        sk: u64,
        old: u8,
        new: u8,
        reason: u8,
        tgid: u32,
        comm: &str,
        ts_ns: u64,
    ) -> Vec<u8> {
        let mut b = vec![0u8; RECORD_LEN];
        b[0..8].copy_from_slice(&ts_ns.to_ne_bytes());
        b[8..16].copy_from_slice(&sk.to_ne_bytes());
        b[16..24].copy_from_slice(&(sk ^ 0xc00c1e).to_ne_bytes());
        b[32..36].copy_from_slice(&tgid.to_ne_bytes());
        b[36..40].copy_from_slice(&4026531840u32.to_ne_bytes());
        b[40] = kind;
        b[41] = old;
        b[42] = new;
        b[43] = AF_INET;
        b[44] = reason;
        b[46..48].copy_from_slice(&40000u16.to_ne_bytes());
        b[48..50].copy_from_slice(&8080u16.to_ne_bytes());
        b[56..60].copy_from_slice(&[127, 0, 0, 1]);
        b[72..76].copy_from_slice(&[127, 0, 0, 2]);
        b[88..88 + comm.len()].copy_from_slice(comm.as_bytes());
        b
    }

    #[test]
    fn decodes_every_field_at_its_offset() {
        let mut b = record(1, 0xffff_8880_1234_5678, 1, 4, 0, 4242, "curl", 99);
        b[45] = F_LINGER;
        b[24..32].copy_from_slice(&250u64.to_ne_bytes());
        let e = decode(&b).unwrap();
        assert_eq!(e.kind, EventKind::State { old: 1, new: 4 });
        assert_eq!(
            (e.sk, e.tgid, e.comm.as_str(), e.ts_ns),
            (0xffff_8880_1234_5678, 4242, "curl", 99)
        );
        assert_eq!(e.local, Some("127.0.0.1:40000".parse().unwrap()));
        assert_eq!(e.remote, Some("127.0.0.2:8080".parse().unwrap()));
        assert_eq!(e.linger_ticks, Some(250));
        assert!(!e.kthread);
    }

    #[test]
    fn zeroed_addresses_are_none_and_short_records_are_refused() {
        let mut b = record(4, 1, 7, 7, 0, 1, "x", 1);
        b[46..50].fill(0);
        b[56..88].fill(0);
        let e = decode(&b).unwrap();
        assert_eq!((e.local, e.remote), (None, None));
        assert!(decode(&b[..50]).is_err());
        b[40] = 9;
        assert!(decode(&b).is_err());
    }
}
