//! The kernel's TCP counters, read without privilege from `/proc/net/snmp` and
//! `/proc/net/netstat` (the reading process's network namespace), as closes by kind.

use std::io;

use crate::model::CounterCloses;

/// The closes the counters tell, from the two files' texts (see [`CounterCloses::parse`]).
pub fn parse(snmp: &str, netstat: &str) -> CounterCloses {
    CounterCloses::parse(snmp, netstat)
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
        let names = snmp.lines().find(|l| l.starts_with("Tcp:")).unwrap();
        assert!(names.split_whitespace().any(|n| n == "OutRsts"), "{names}");
    }
}
