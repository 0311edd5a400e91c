//! Unit tests of the parent module.

use super::*;
use crate::collector::KernelTable;

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
    // Every state lingertop shows, and not TCP_BOUND_INACTIVE (13), whose walk of the
    // bind hash table costs every namespace's dump more than its sockets do.
    assert_eq!(state_mask(None), state_mask(Some(&TcpState::ALL)));
    assert_eq!(state_mask(None) & (1 << 13), 0);
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
    b[44..48].copy_from_slice(&0x89ab_cdefu32.to_ne_bytes());
    b[48..52].copy_from_slice(&0x0123_4567u32.to_ne_bytes());
    b
}

/// `msg` followed by attributes of `(type, payload)`, each padded to 4 bytes.
fn with_attrs(mut b: Vec<u8>, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
    for (kind, payload) in attrs {
        b.extend_from_slice(&u16::try_from(4 + payload.len()).unwrap().to_ne_bytes());
        b.extend_from_slice(&kind.to_ne_bytes());
        b.extend_from_slice(payload);
        b.resize(b.len().next_multiple_of(4), 0);
    }
    b
}

fn tcp_info(len: usize) -> Vec<u8> {
    let mut i = vec![0u8; len];
    for (at, v) in [(8, 200_000u32), (44, 3040), (52, 3041), (56, 5728)] {
        if at + 4 <= len {
            i[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        }
    }
    i
}

#[test]
fn reads_the_cookie_and_the_times_of_tcp_info() {
    let local = Ipv6Addr::LOCALHOST.octets();
    // An attribute before it (INET_DIAG_SHUTDOWN, 1 byte, padded), then tcp_info as a
    // 6.x kernel sends it (longer than what is read).
    let b = with_attrs(
        msg(AF_INET6, 8, 0, local, 80),
        &[(8, vec![1]), (INET_DIAG_INFO, tcp_info(248))],
    );
    let d = parse_diag(&b, true, SystemTime::UNIX_EPOCH).unwrap();
    assert_eq!(d.cookie, 0x0123_4567_89ab_cdef);
    let info = d.info.unwrap();
    assert_eq!(
        (
            info.rto_us,
            info.last_data_sent_ms,
            info.last_data_recv_ms,
            info.last_ack_recv_ms
        ),
        (200_000, 3040, 3041, 5728)
    );
    // Not asked for: not read.
    assert_eq!(
        parse_diag(&b, false, SystemTime::UNIX_EPOCH).unwrap().info,
        None
    );
    // Too short to hold the times: none, not garbage.
    let short = with_attrs(
        msg(AF_INET6, 8, 0, local, 80),
        &[(INET_DIAG_INFO, tcp_info(56))],
    );
    assert_eq!(
        parse_diag(&short, true, SystemTime::UNIX_EPOCH)
            .unwrap()
            .info,
        None
    );
    // An attribute claiming more bytes than there are.
    let mut bad = with_attrs(
        msg(AF_INET6, 8, 0, local, 80),
        &[(INET_DIAG_INFO, tcp_info(64))],
    );
    bad[DIAG_MSG_LEN..DIAG_MSG_LEN + 2].copy_from_slice(&200u16.to_ne_bytes());
    assert!(matches!(
        parse_diag(&bad, true, SystemTime::UNIX_EPOCH),
        Err(DiagError::Malformed(_))
    ));
}

#[test]
fn reads_the_shutdown_bits_with_or_without_tcp_info() {
    let local = Ipv4Addr::LOCALHOST.octets();
    let mut local16 = [0u8; 16];
    local16[..4].copy_from_slice(&local);
    // After tcp_info, as the kernel orders them when both are there; then alone.
    let both = with_attrs(
        msg(AF_INET, 8, 0, local16, 80),
        &[
            (INET_DIAG_INFO, tcp_info(248)),
            (INET_DIAG_SHUTDOWN, vec![3]),
        ],
    );
    for with_info in [true, false] {
        let d = parse_diag(&both, with_info, SystemTime::UNIX_EPOCH).unwrap();
        assert_eq!(d.shutdown, Some(3), "with_info {with_info}");
        assert_eq!(d.info.is_some(), with_info);
    }
    let none = msg(AF_INET, 8, 0, local16, 80);
    assert_eq!(
        parse_diag(&none, false, SystemTime::UNIX_EPOCH)
            .unwrap()
            .shutdown,
        None,
        "TIME_WAIT and request sockets carry no attribute"
    );
}

#[test]
fn the_first_read_asks_for_tcp_info_and_later_ones_do_not() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (s, _) = l.accept().unwrap();
    let Ok(mut src) = NetlinkSource::open() else {
        return; // no sock_diag here
    };
    let ends = (c.local_addr().unwrap(), s.local_addr().unwrap());
    let read = |src: &mut NetlinkSource| {
        let (mut conns, mut held) = (Vec::new(), Vec::new());
        src.read_direct(&mut conns, &mut held).unwrap();
        conns
            .into_iter()
            .find(|c| c.tuple().ends() == ends)
            .expect("our client socket")
    };
    let first = read(&mut src);
    assert_ne!(first.cookie, 0);
    let seed = first
        .tracking
        .as_ref()
        .expect("an ESTABLISHED age from tcp_info");
    assert_eq!(seed.source(), crate::model::AgeSource::Kernel);
    let again = read(&mut src);
    assert_eq!(again.cookie, first.cookie, "a socket keeps its cookie");
    assert!(again.tracking.is_none(), "tcp_info only at the first read");
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
    let d = parse_diag(
        &msg(AF_INET, 6, 3, local, 40000),
        false,
        SystemTime::UNIX_EPOCH,
    )
    .unwrap();
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
    let d = parse_diag(
        &msg(AF_INET6, 1, 0, local, 8080),
        true,
        SystemTime::UNIX_EPOCH,
    )
    .unwrap();
    assert_eq!(d.info, None, "no attribute, no tcp_info");
    assert_eq!(d.local, "[::1]:8080".parse().unwrap());
    assert_eq!(timer_of(&d), None);
    assert!(matches!(
        parse_diag(
            &msg(AF_INET6, 1, 0, local, 1)[..70],
            false,
            SystemTime::UNIX_EPOCH
        ),
        Err(DiagError::Malformed(_))
    ));
}

#[test]
fn a_datagram_splits_into_its_messages_and_a_bad_length_ends_it() {
    // Two messages: one with a 5-byte body (padded to 8), one empty.
    let mut d = vec![0u8; 24 + 16];
    put_header(&mut d, 21, 20, 2, 7);
    d[16..21].copy_from_slice(b"hello");
    put_header(&mut d[24..], 16, 3, 0, 8);
    let got: Vec<(u16, u16, u32, Vec<u8>)> = messages(&d)
        .map(|m| m.map(|m| (m.kind, m.flags, m.seq, m.body.to_vec())))
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        got,
        vec![(20, 2, 7, b"hello".to_vec()), (3, 0, 8, Vec::new())]
    );
    // A length past the datagram's end: an error, then nothing more.
    put_header(&mut d[24..], 99, 3, 0, 8);
    let mut it = messages(&d);
    assert!(it.next().unwrap().is_ok());
    assert!(matches!(it.next(), Some(Err(DiagError::Malformed(_)))));
    assert!(it.next().is_none());
}
