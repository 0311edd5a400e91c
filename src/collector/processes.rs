//! Process and user names for the pids and uids the socket table names, through `sysinfo`.
//! Only pids not seen at the previous poll are looked up: never every process every poll.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System, Uid, Users};

use crate::model::User;

/// Names of the processes holding sockets, cached while they keep holding some.
#[derive(Default)]
pub struct ProcessNames {
    sys: Option<System>,
    names: FxHashMap<u32, Option<Arc<str>>>,
}

impl ProcessNames {
    /// Looks up the names of `pids` not already known and, after a `complete` read (one
    /// that left no state out), forgets the pids no longer present.
    pub fn resolve(&mut self, pids: &FxHashSet<u32>, complete: bool) {
        if complete {
            self.names.retain(|pid, _| pids.contains(pid));
        }
        let new: Vec<Pid> = pids
            .iter()
            .filter(|p| !self.names.contains_key(p))
            .map(|&p| Pid::from_u32(p))
            .collect();
        if new.is_empty() {
            return;
        }
        // sysinfo keeps every process it refreshed; start afresh when it holds far more
        // than we still need, so a long run with churning pids stays small.
        let stale = self
            .sys
            .as_ref()
            .is_some_and(|s| s.processes().len() > 2 * self.names.len() + 256);
        if self.sys.is_none() || stale {
            self.sys = System::new().ok();
        }
        let Some(sys) = self.sys.as_mut() else {
            // No process information on this platform: names stay unknown.
            for p in new {
                self.names.insert(p.as_u32(), None);
            }
            return;
        };
        sys.refresh_processes_specifics(
            ProcessesToUpdate::Some(&new),
            true,
            ProcessRefreshKind::nothing(),
        );
        for p in new {
            // A process that exited since the socket table was read simply has no name.
            let name = sys
                .process(p)
                .map(|proc_| Arc::from(proc_.name().to_string_lossy().as_ref()));
            self.names.insert(p.as_u32(), name);
        }
    }

    pub fn get(&self, pid: u32) -> Option<Arc<str>> {
        self.names.get(&pid).cloned().flatten()
    }
}

/// Users by uid, with their names from the system's user database, reloaded (at most every
/// 10 s) when an unknown uid shows up. One [`User`] per uid, shared by all its sockets.
#[derive(Default)]
pub struct UserNames {
    users: Option<Users>,
    loaded_at: Option<Instant>,
    known: FxHashMap<u32, Arc<User>>,
}

impl UserNames {
    pub fn get(&mut self, uid: u32) -> Arc<User> {
        if let Some(u) = self.known.get(&uid) {
            return Arc::clone(u);
        }
        let due = self
            .loaded_at
            .is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        if due {
            self.users = Users::new_with_refreshed_list().ok();
            self.loaded_at = Some(Instant::now());
        }
        let name = Uid::try_from(uid as usize)
            .ok()
            .and_then(|u| self.users.as_ref()?.get_user_by_id(&u))
            .map(|u| Box::from(u.name()));
        let user = Arc::new(User { uid, name });
        self.known.insert(uid, Arc::clone(&user));
        user
    }
}
