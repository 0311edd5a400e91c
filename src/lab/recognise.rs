//! Which sockets of a snapshot are lab sockets, also when the lab runs in another process.
//!
//! In the process that runs a [`Lab`], the lab knows its 4-tuples ([`Lab::is_lab_tuple`]).
//! Another process (a `lingertop snapshot` beside a `lingertop lab`) cannot ask it, so it
//! recognises a *lab process* instead: a process named `lingertop` whose command line parses
//! as `lingertop lab ...` or as the dashboard (no subcommand: the dashboard's only TCP
//! sockets are its lab's). Which command lines those are is the command line's business
//! (`cli::is_lab_command`), handed in by the mode, so the lab knows nothing of clap. A
//! socket is a lab socket when
//! - a lab process holds it, or held it at an earlier poll (the tracker's last owner), or
//! - its local or remote address is a listener of a lab process: the server ends, and the
//!   client ends that lost their descriptor (FIN_WAIT_2 orphans, client-side TIME_WAIT).
//!
//! Once the lab process has exited, its leftover TIME_WAIT entries have no owner and no
//! listener, and are no longer recognised: nothing names them as lingertop's any more.

use std::ffi::OsString;
use std::net::SocketAddr;

use rustc_hash::{FxHashMap, FxHashSet};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, UpdateKind};

use super::Lab;
use crate::model::{Owner, Snapshot, TcpState};

/// The process name a lab process has.
const LINGERTOP: &str = "lingertop";

/// Whether a `lingertop` process's command line runs a lab.
pub type IsLabCommand = fn(&[OsString]) -> bool;

/// Marks lab sockets in snapshots; keeps what it learnt of each pid while the pid holds
/// sockets, so a command line is read once per process, not once per poll.
#[derive(Default)]
pub struct LabRecogniser {
    sys: Option<System>,
    verdicts: FxHashMap<u32, bool>,
    /// `None` (the default): no other process is taken for a lab, only the `own` lab.
    is_lab_command: Option<IsLabCommand>,
}

impl LabRecogniser {
    /// A recogniser that takes a `lingertop` process for a lab when `is_lab_command`
    /// says so of its command line.
    pub fn new(is_lab_command: IsLabCommand) -> Self {
        LabRecogniser {
            is_lab_command: Some(is_lab_command),
            ..LabRecogniser::default()
        }
    }

    /// Sets `lab` on every connection of `snap` that belongs to a lab process (see the
    /// module documentation), or to `own`, the lab running in this process. Call after the
    /// tracker has observed the snapshot, so earlier owners count.
    pub fn mark(&mut self, snap: &mut Snapshot, own: Option<&Lab>) {
        // One pass clears the marks and finds the pids named lingertop. A process's sockets
        // share one owners list, so a run of the same list is looked into once.
        let mut candidates: FxHashSet<u32> = FxHashSet::default();
        let mut last: *const Owner = std::ptr::null();
        for c in &mut snap.connections {
            c.lab = false;
            let list = c.owners.as_ptr();
            if list == last {
                continue;
            }
            last = list;
            for o in c.owners.iter() {
                if o.name.as_deref() == Some(LINGERTOP) {
                    candidates.insert(o.pid);
                }
            }
        }
        self.verdicts.retain(|pid, _| candidates.contains(pid));
        if let Some(is_lab_command) = self.is_lab_command {
            for &pid in &candidates {
                if !self.verdicts.contains_key(&pid) {
                    let verdict = self.command_line(pid).is_some_and(|c| is_lab_command(&c));
                    self.verdicts.insert(pid, verdict);
                }
            }
        }
        let lab_pids: FxHashSet<u32> = self
            .verdicts
            .iter()
            .filter(|(_, lab)| **lab)
            .map(|(pid, _)| *pid)
            .collect();
        if lab_pids.is_empty() && own.is_none() {
            // No lab anywhere (the usual case): every mark is already cleared.
            return;
        }
        let is_lab_pid =
            |c: &crate::model::Connection| c.owners.iter().any(|o| lab_pids.contains(&o.pid));
        let listeners: FxHashSet<SocketAddr> = snap
            .connections
            .iter()
            .filter(|c| c.state == TcpState::Listen && is_lab_pid(c))
            .map(|c| c.local())
            .collect();
        for c in &mut snap.connections {
            c.lab = own.is_some_and(|lab| lab.is_lab_tuple(c.local(), c.remote()))
                || is_lab_pid(c)
                || (c.state != TcpState::Listen
                    && (listeners.contains(&c.local()) || listeners.contains(&c.remote())));
        }
    }

    fn command_line(&mut self, pid: u32) -> Option<Vec<OsString>> {
        if self.sys.is_none() {
            // No process information on this platform: no pid is known to run a lab.
            self.sys = Some(System::new().ok()?);
        }
        let sys = self.sys.as_mut()?;
        let p = Pid::from_u32(pid);
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[p]),
            true,
            ProcessRefreshKind::nothing().with_cmd(UpdateKind::Always),
        );
        let cmd = sys.process(p)?.cmd().to_vec();
        // An empty command line is a process we may not inspect (or a kernel thread).
        (!cmd.is_empty()).then_some(cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Attribution, Connection, Owner};
    use std::time::{Duration, SystemTime};

    fn conn(local: &str, remote: &str, state: TcpState, pid: Option<u32>) -> Connection {
        let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
        if let Some(pid) = pid {
            c.owners = vec![Owner {
                pid,
                name: Some(LINGERTOP.into()),
            }]
            .into();
            c.attribution = Some(Attribution::Owner);
        }
        c
    }

    #[test]
    fn sockets_around_a_lab_listener_are_marked_and_others_are_not() {
        let mut r = LabRecogniser::default();
        // A pid known to run `lingertop lab`, and one known to run a snapshot.
        r.verdicts.insert(10, true);
        r.verdicts.insert(20, false);
        // Pretend both are current: `mark` forgets pids no connection names.
        let mut snap = Snapshot::fixture(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1),
            vec![
                conn("127.0.0.1:4000", "0.0.0.0:0", TcpState::Listen, Some(10)),
                conn(
                    "127.0.0.1:4000",
                    "127.0.0.1:50000",
                    TcpState::CloseWait,
                    Some(10),
                ),
                // The client end that lost its descriptor: no owner, remote is the listener.
                conn(
                    "127.0.0.1:50000",
                    "127.0.0.1:4000",
                    TcpState::FinWait2,
                    None,
                ),
                // Someone else's socket on another port, and a non-lab lingertop.
                conn(
                    "127.0.0.1:5000",
                    "127.0.0.1:50001",
                    TcpState::CloseWait,
                    None,
                ),
                conn("127.0.0.1:6000", "0.0.0.0:0", TcpState::Listen, Some(20)),
            ],
        );
        // Keep the command line lookups out of the test: the verdicts are already known.
        r.mark(&mut snap, None);
        let marks: Vec<bool> = snap.connections.iter().map(|c| c.lab).collect();
        assert_eq!(marks, vec![true, true, true, false, false]);
    }
}
