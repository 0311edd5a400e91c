//! The Linux capabilities lingertop runs with, so that a message about missing privilege
//! names the capability that is missing rather than saying "run with sudo" to a process a
//! unit file or `setcap` already gave some of them.

use std::fmt;

/// A capability some feature of lingertop needs (numbers from `linux/capability.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    /// Reading directories of other users, such as their `/proc/PID/fd`.
    DacReadSearch,
    /// Looking at other users' processes: reading their `/proc/PID/fd` links and namespaces.
    SysPtrace,
    /// Entering another network namespace (`setns`).
    SysAdmin,
    /// Perf events and the tracepoints the kernel events attach to.
    Perfmon,
    /// Loading BPF programs and maps.
    Bpf,
}

impl Cap {
    fn number(self) -> u32 {
        match self {
            Cap::DacReadSearch => 2,
            Cap::SysPtrace => 19,
            Cap::SysAdmin => 21,
            Cap::Perfmon => 38,
            Cap::Bpf => 39,
        }
    }

    /// The name as `capabilities(7)` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Cap::DacReadSearch => "CAP_DAC_READ_SEARCH",
            Cap::SysPtrace => "CAP_SYS_PTRACE",
            Cap::SysAdmin => "CAP_SYS_ADMIN",
            Cap::Perfmon => "CAP_PERFMON",
            Cap::Bpf => "CAP_BPF",
        }
    }
}

/// What owners need: other users' `/proc/PID/fd` (a directory of mode 0500, and links the
/// kernel shows only to who may ptrace the process).
pub const OWNERS: [Cap; 2] = [Cap::SysPtrace, Cap::DacReadSearch];
/// What other network namespaces need: `setns` into them.
pub const NAMESPACES: [Cap; 1] = [Cap::SysAdmin];
/// What the kernel's close events need: loading the BPF object and attaching its tracepoints.
pub const EVENTS: [Cap; 2] = [Cap::Bpf, Cap::Perfmon];

/// An effective capability set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps(u64);

impl Caps {
    /// No capability at all.
    pub const NONE: Caps = Caps(0);

    /// A set of exactly `caps`.
    pub fn of(caps: &[Cap]) -> Caps {
        Caps(caps.iter().fold(0, |set, c| set | 1 << c.number()))
    }

    /// This process's effective set, from `/proc/self/status`. Where that cannot be read
    /// (not Linux, no /proc), root is taken to hold every capability and others none.
    pub fn current() -> Caps {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| Caps::parse(&s))
            .unwrap_or_else(|| Caps(if is_root() { !0 } else { 0 }))
    }

    /// The `CapEff:` line of a `/proc/PID/status`.
    pub fn parse(status: &str) -> Option<Caps> {
        let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
        u64::from_str_radix(hex.trim(), 16).ok().map(Caps)
    }

    /// Whether `cap` is in the set.
    pub fn has(self, cap: Cap) -> bool {
        self.0 & (1 << cap.number()) != 0
    }

    /// Those of `needed` that are not in the set; empty when all are.
    pub fn missing(self, needed: &[Cap]) -> Missing {
        Missing(needed.iter().copied().filter(|&c| !self.has(c)).collect())
    }
}

#[cfg(unix)]
fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(not(unix))]
fn is_root() -> bool {
    false
}

/// Capabilities a feature needs and lingertop lacks, written `CAP_BPF and CAP_PERFMON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing(Vec<Cap>);

impl Missing {
    /// Whether nothing is missing.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `it` or `them`, for "grant it".
    pub fn pronoun(&self) -> &'static str {
        if self.0.len() == 1 { "it" } else { "them" }
    }
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" and ")?;
            }
            f.write_str(c.name())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        // CapEff of a process given cap_sys_ptrace (19) and cap_bpf (39) alone.
        let status = "Name:\tlingertop\nCapInh:\t0000000000000000\nCapEff:\t0000008000080000\n";
        let caps = Caps::parse(status).expect("a CapEff line");
        assert!(caps.has(Cap::SysPtrace) && caps.has(Cap::Bpf));
        assert!(!caps.has(Cap::Perfmon) && !caps.has(Cap::SysAdmin));
        assert_eq!(caps.missing(&EVENTS).to_string(), "CAP_PERFMON");
        assert_eq!(caps.missing(&OWNERS).to_string(), "CAP_DAC_READ_SEARCH");
        assert_eq!(
            Caps(0).missing(&OWNERS).to_string(),
            "CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH"
        );
        assert!(Caps(!0).missing(&EVENTS).is_empty());
        assert_eq!(Caps::parse("Name:\tx\n"), None);
    }
}
