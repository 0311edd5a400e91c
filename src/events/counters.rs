//! The kernel's TCP counters, read without privilege from `/proc/net/snmp` and
//! `/proc/net/netstat` (the reading process's network namespace), as closes by kind.

use std::io;

use crate::model::CounterCloses;

/// Finds `key` in the `prefix:` section of a `/proc/net/{snmp,netstat}` text, which holds a
/// line of names followed by a line of values for each section.
fn field(text: &str, prefix: &str, key: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(prefix));
    let (names, values) = (lines.next()?, lines.next()?);
    let i = names.split_whitespace().position(|n| n == key)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// The closes the counters tell, from the two files' texts. A counter the kernel does not
/// have reads as 0.
pub fn parse(snmp: &str, netstat: &str) -> CounterCloses {
    let tcp = |k| field(snmp, "Tcp:", k).unwrap_or(0);
    let ext = |k| field(netstat, "TcpExt:", k).unwrap_or(0);
    CounterCloses {
        resets_sent: tcp("OutRsts"),
        reset_sent_unread_data: ext("TCPAbortOnClose"),
        reset_sent_linger0: ext("TCPAbortOnData"),
        reset_sent_memory: ext("TCPAbortOnMemory"),
        timeout: ext("TCPAbortOnTimeout"),
        established_resets: tcp("EstabResets"),
        time_wait_overflow: ext("TCPTimeWaitOverflow"),
        time_wait_done: ext("TW"),
        active_opens: tcp("ActiveOpens"),
        passive_opens: tcp("PassiveOpens"),
        attempt_fails: tcp("AttemptFails"),
    }
}

/// Reads this namespace's counters now.
pub fn read() -> io::Result<CounterCloses> {
    let snmp = std::fs::read_to_string("/proc/net/snmp")?;
    let netstat = std::fs::read_to_string("/proc/net/netstat")?;
    Ok(parse(&snmp, &netstat))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_columns_of_the_right_sections() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\n\
                    Tcp: RtoAlgorithm ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab OutRsts\n\
                    Tcp: 1 12 11 1 4 0 9\n";
        let netstat = "TcpExt: SyncookiesSent TW TCPAbortOnData TCPAbortOnClose TCPTimeWaitOverflow\n\
                       TcpExt: 0 5 3 2 7\nIpExt: InNoRoutes\nIpExt: 0\n";
        let c = parse(snmp, netstat);
        assert_eq!(
            (
                c.active_opens,
                c.passive_opens,
                c.attempt_fails,
                c.established_resets,
                c.resets_sent
            ),
            (12, 11, 1, 4, 9)
        );
        assert_eq!(
            (
                c.time_wait_done,
                c.reset_sent_linger0,
                c.reset_sent_unread_data,
                c.time_wait_overflow
            ),
            (5, 3, 2, 7)
        );
        assert_eq!(c.timeout, 0);
    }

    #[test]
    fn this_namespace_has_the_counters() {
        // Every Linux kernel lingertop supports has these files and sections.
        let c = read().expect("/proc/net/snmp and /proc/net/netstat are readable");
        let again = read().unwrap();
        assert!(again.active_opens >= c.active_opens);
        let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap();
        assert!(field(&snmp, "Tcp:", "OutRsts").is_some());
    }
}
