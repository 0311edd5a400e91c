//! lingertop's per-state counts agree with `ss -tan` on a population of a few thousand
//! loopback sockets this test creates.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;

use crate::common::*;
use lingertop::model::TcpState;

/// `ss` spells states its own way; map them to the kernel names lingertop uses.
fn ss_state(s: &str) -> String {
    match s {
        "ESTAB" => "ESTABLISHED",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        "FIN-WAIT-1" => "FIN_WAIT_1",
        "FIN-WAIT-2" => "FIN_WAIT_2",
        "TIME-WAIT" => "TIME_WAIT",
        "UNCONN" | "CLOSE" => "CLOSE",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        other => other,
    }
    .to_string()
}

#[test]
fn per_state_counts_agree_with_ss() {
    const TIME_WAITS: usize = 1500;
    const PAIRS: usize = 400;
    const CLOSE_WAITS: usize = 100;
    let l = listener(V4);
    let port = l.local_addr().unwrap().port();

    for _ in 0..TIME_WAITS {
        let (c, mut s) = pair(&l);
        drop(c);
        let mut buf = [0u8; 1];
        assert_eq!(s.read(&mut buf).unwrap(), 0);
    }
    let held: Vec<_> = (0..PAIRS).map(|_| pair(&l)).collect();
    let mut close_waits = Vec::new();
    let mut last = None;
    for _ in 0..CLOSE_WAITS {
        let (c, s) = pair(&l);
        last = Some(addr_of(&c));
        drop(c);
        close_waits.push(s);
    }
    let (client, server) = last.unwrap();
    wait_for_state(server, client, TcpState::CloseWait);

    let port_s = port.to_string();
    let (code, json) = snapshot_json(&["--port", &port_s]);
    assert_eq!(code, 0);
    let ss = Command::new("ss")
        .args(["-tanH", &format!("( sport = :{port} or dport = :{port} )")])
        .output()
        .expect("ss (iproute2) must be installed for this test");
    assert!(ss.status.success());
    let mut from_ss: BTreeMap<String, u64> = BTreeMap::new();
    for line in String::from_utf8_lossy(&ss.stdout).lines() {
        if let Some(state) = line.split_whitespace().next() {
            *from_ss.entry(ss_state(state)).or_default() += 1;
        }
    }
    let from_lingertop: BTreeMap<String, u64> = json["counts"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, n)| n.as_u64() != Some(0))
        .map(|(k, n)| (k.clone(), n.as_u64().unwrap()))
        .collect();
    eprintln!("ss: {from_ss:?}\nlingertop: {from_lingertop:?}");
    assert_eq!(from_lingertop, from_ss);
    assert!(from_ss["TIME_WAIT"] >= TIME_WAITS as u64);
    assert_eq!(from_ss["ESTABLISHED"], 2 * PAIRS as u64);
    drop(held);
}
