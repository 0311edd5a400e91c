//! Process and user names for the pids and uids the socket table names. The caches here
//! decide what to ask; [`ProcessLookup`] and [`UserLookup`] ask the OS (through `sysinfo`),
//! or a fake in tests. Only pids not seen at the previous poll are looked up: never every
//! process every poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, Uid, Users};

use crate::model::User;

/// Finds the names of processes by pid.
pub trait ProcessLookup: Send {
    /// The names of `pids`, in their order: `None` for a process that exited or cannot be
    /// read. `kept` is how many names the caller still holds, so that a cache under the
    /// lookup can tell when it holds far more than is needed.
    fn names(&mut self, pids: &[u32], kept: usize) -> Vec<Option<Arc<str>>>;
}

/// Finds the names of users by uid.
pub trait UserLookup: Send {
    /// The name of user `uid`, where the user database has it.
    fn name(&mut self, uid: u32) -> Option<Box<str>>;
}

/// The OS's process table, through `sysinfo`.
#[derive(Default)]
pub struct SysProcesses {
    sys: Option<System>,
}

impl ProcessLookup for SysProcesses {
    fn names(&mut self, pids: &[u32], kept: usize) -> Vec<Option<Arc<str>>> {
        // sysinfo keeps every process it refreshed; start afresh when it holds far more
        // than we still need, so a long run with churning pids stays small.
        let stale = self
            .sys
            .as_ref()
            .is_some_and(|s| s.processes().len() > 2 * kept + 256);
        if self.sys.is_none() || stale {
            self.sys = System::new().ok();
        }
        let Some(sys) = self.sys.as_mut() else {
            // No process information on this platform: names stay unknown.
            return vec![None; pids.len()];
        };
        let wanted: Vec<Pid> = pids.iter().map(|&p| Pid::from_u32(p)).collect();
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&wanted),
            true,
            ProcessRefreshKind::nothing(),
        );
        // A process that exited since the socket table was read simply has no name.
        wanted
            .into_iter()
            .map(|p| {
                sys.process(p)
                    .map(|proc_| Arc::from(proc_.name().to_string_lossy().as_ref()))
            })
            .collect()
    }
}

/// The system's user database, through `sysinfo`, reloaded (at most every 10 s) when an
/// unknown uid shows up.
#[derive(Default)]
pub struct SysUsers {
    users: Option<Users>,
    loaded_at: Option<Instant>,
}

impl UserLookup for SysUsers {
    fn name(&mut self, uid: u32) -> Option<Box<str>> {
        let due = self
            .loaded_at
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        if due {
            self.users = Users::new_with_refreshed_list().ok();
            self.loaded_at = Some(Instant::now());
        }
        Uid::try_from(uid as usize)
            .ok()
            .and_then(|u| self.users.as_ref()?.get_user_by_id(&u))
            .map(|u| Box::from(u.name()))
    }
}

/// Names of the processes holding sockets, cached while they keep holding some.
pub struct ProcessNames {
    lookup: Box<dyn ProcessLookup>,
    names: FxHashMap<u32, Option<Arc<str>>>,
}

impl ProcessNames {
    pub fn new(lookup: Box<dyn ProcessLookup>) -> Self {
        ProcessNames {
            lookup,
            names: FxHashMap::default(),
        }
    }

    /// Looks up the names of `pids` not already known and, after a `complete` read (one
    /// that left no state out), forgets the pids no longer present.
    pub fn resolve(&mut self, pids: &FxHashSet<u32>, complete: bool) {
        if complete {
            self.names.retain(|pid, _| pids.contains(pid));
        }
        let new: Vec<u32> = pids
            .iter()
            .copied()
            .filter(|p| !self.names.contains_key(p))
            .collect();
        if new.is_empty() {
            return;
        }
        let found = self.lookup.names(&new, self.names.len());
        // A lookup that answers fewer names leaves the rest unknown rather than unasked.
        let found = found.into_iter().chain(std::iter::repeat(None));
        self.names.extend(new.into_iter().zip(found));
    }

    pub fn get(&self, pid: u32) -> Option<Arc<str>> {
        self.names.get(&pid).cloned().flatten()
    }
}

/// Users by uid, with their names. One [`User`] per uid, shared by all its sockets.
pub struct UserNames {
    lookup: Box<dyn UserLookup>,
    known: FxHashMap<u32, Arc<User>>,
}

impl UserNames {
    pub fn new(lookup: Box<dyn UserLookup>) -> Self {
        UserNames {
            lookup,
            known: FxHashMap::default(),
        }
    }

    pub fn get(&mut self, uid: u32) -> Arc<User> {
        if let Some(u) = self.known.get(&uid) {
            return Arc::clone(u);
        }
        let user = Arc::new(User {
            uid,
            name: self.lookup.name(uid),
        });
        self.known.insert(uid, Arc::clone(&user));
        user
    }
}

/// What a process runs: its command line (arguments joined by spaces) and the path of its
/// executable, as `/proc/PID/cmdline` and `/proc/PID/exe` give them. Read for one process
/// at a time (the dashboard's detail pane asks for the selected row's owner), so nothing
/// is kept. `None` where the process is gone or cannot be read (another user's `exe` needs
/// CAP_SYS_PTRACE); the text is the process's own and must be neutralised before it is
/// shown.
pub fn command_of(pid: u32) -> Option<ProcessCommand> {
    #[cfg(target_os = "linux")]
    {
        use std::io::Read;
        // A command line can be long (a JVM's classpath); the pane shows the start of it.
        const MAX: u64 = 4096;
        let mut raw = Vec::new();
        std::fs::File::open(format!("/proc/{pid}/cmdline"))
            .ok()?
            .take(MAX)
            .read_to_end(&mut raw)
            .ok()?;
        let args: Vec<String> = raw
            .split(|&b| b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned());
        if args.is_empty() && exe.is_none() {
            // A kernel thread, or a process that exited between the two reads.
            return None;
        }
        Some(ProcessCommand {
            line: args.join(" "),
            exe,
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// A process's command line and executable ([`command_of`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessCommand {
    /// The arguments, joined by spaces; empty for a process that has none.
    pub line: String,
    /// The executable's path, where it can be read.
    pub exe: Option<String>,
}
