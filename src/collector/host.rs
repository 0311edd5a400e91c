//! What the collector learns beside the socket table, gathered in one [`Host`] so that tests
//! can hand the collector fakes: process and user names, the ephemeral port range, our own
//! effective uid and the host's name.

use crate::model::PortRange;

use super::processes::{ProcessLookup, SysProcesses, SysUsers, UserLookup};
use crate::caps::Caps;

/// The lookups of one machine. [`Host::system`] is this one; tests build their own.
pub struct Host {
    /// The host's name, as snapshots show it.
    pub name: String,
    /// Our effective uid, where the OS has uids: it decides which sockets without a visible
    /// process are another user's.
    pub euid: Option<u32>,
    /// Our effective capabilities: they decide which capability a message says is missing.
    pub caps: Caps,
    pub processes: Box<dyn ProcessLookup>,
    pub users: Box<dyn UserLookup>,
    /// Read at every poll: the range can be changed while lingertop runs.
    pub ephemeral_ports: Box<dyn FnMut() -> PortRange + Send>,
}

impl Host {
    /// This machine: sysinfo for names, the kernel's port range, `geteuid`.
    pub fn system() -> Self {
        Host {
            name: sysinfo::System::host_name()
                .ok()
                .unwrap_or_else(|| "unknown-host".to_string()),
            euid: effective_uid(),
            caps: Caps::current(),
            processes: Box::new(SysProcesses::default()),
            users: Box::new(SysUsers::default()),
            ephemeral_ports: Box::new(ephemeral_ports),
        }
    }
}

#[cfg(unix)]
fn effective_uid() -> Option<u32> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    Some(unsafe { libc::geteuid() })
}

#[cfg(not(unix))]
fn effective_uid() -> Option<u32> {
    None
}

/// The range used where the OS's cannot be read: IANA's dynamic ports.
const IANA: PortRange = PortRange {
    low: 49152,
    high: 65535,
};

/// The local ephemeral port range: the kernel's on Linux, the IANA range elsewhere or when
/// it cannot be read.
pub fn ephemeral_ports() -> PortRange {
    if cfg!(target_os = "linux") {
        if let Ok(text) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range") {
            if let Some(range) = parse_port_range(&text) {
                return range;
            }
        }
    }
    IANA
}

/// The range in the text of `ip_local_port_range` (`32768\t60999\n`); `None` when it is
/// not two ports, low first.
pub fn parse_port_range(text: &str) -> Option<PortRange> {
    let mut it = text.split_whitespace().map(|s| s.parse::<u16>());
    match (it.next(), it.next()) {
        (Some(Ok(low)), Some(Ok(high))) if low <= high => Some(PortRange { low, high }),
        _ => None,
    }
}
