//! Who owns each socket, as the kernel's events saw it: the process that acted on the
//! socket in its own system call (connect, listen, send, receive, shutdown, close), by the
//! socket's cookie. The poll thread asks it for connections the `/proc` scan could not name
//! (a lookup the rate limit deferred, a TIME_WAIT whose file is gone before any poll saw it
//! owned), so every output names an owner that any of lingertop's sources knew.
//!
//! The reader thread writes it once per drain of the ring buffer; the poll thread reads it
//! once per poll, after [`EventOwners::catch_up`] has made sure every record written before
//! the poll's dump is in it. A TIME_WAIT keeps its socket's cookie, so owners of ended
//! sockets are kept for a while ([`ENDED_KEPT`], two generations) and then forgotten.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use crate::model::{CloseOwner, Owner, Owners};

/// How long the owner of an ended socket stays known at least: TIME_WAIT lasts 60 s on
/// Linux, and a poll may come up to an interval later.
pub const ENDED_KEPT: Duration = Duration::from_secs(120);

/// Ended sockets kept per generation at most: beyond, the generation turns early (a close
/// storm of 10k/s still keeps the last 26 s or more rather than growing without bound: at most
/// about 25 MiB for both generations).
const ENDED_PER_GENERATION: usize = 1 << 18;

/// What the joiner learned of owners, in the order it learned it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Learned {
    /// The socket of this cookie was acted on by this process.
    Owner(u64, CloseOwner),
    /// The socket of this cookie was destroyed (its TIME_WAIT, if any, keeps the cookie).
    Ended(u64),
}

/// Owners by socket cookie: of live sockets, and of ended ones for [`ENDED_KEPT`].
#[derive(Debug, Default)]
pub struct OwnerMemory {
    live: FxHashMap<u64, CloseOwner>,
    /// Ended sockets: the current generation and the one before.
    ended: [FxHashMap<u64, CloseOwner>; 2],
    /// When the current generation of `ended` began.
    turned: Option<Instant>,
}

impl OwnerMemory {
    /// Takes what the joiner learned, at `now`.
    pub fn learn(&mut self, learned: impl IntoIterator<Item = Learned>, now: Instant) {
        let turned = *self.turned.get_or_insert(now);
        if now.saturating_duration_since(turned) >= ENDED_KEPT / 2
            || self.ended[0].len() >= ENDED_PER_GENERATION
        {
            self.ended.swap(0, 1);
            self.ended[0].clear();
            self.turned = Some(now);
        }
        for l in learned {
            match l {
                Learned::Owner(cookie, owner) => {
                    self.live.insert(cookie, owner);
                }
                Learned::Ended(cookie) => {
                    if let Some(owner) = self.live.remove(&cookie) {
                        self.ended[0].insert(cookie, owner);
                    }
                }
            }
        }
    }

    /// The owner of the socket of `cookie`, live or ended lately.
    pub fn get(&self, cookie: u64) -> Option<&CloseOwner> {
        self.live
            .get(&cookie)
            .or_else(|| self.ended[0].get(&cookie))
            .or_else(|| self.ended[1].get(&cookie))
    }

    /// Sockets whose owner is known now.
    pub fn len(&self) -> usize {
        self.live.len() + self.ended[0].len() + self.ended[1].len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How far the reader thread has drained the ring buffer.
#[derive(Debug, Default)]
pub struct Drains {
    /// Drains begun so far (a drain reads until the ring is empty).
    started: u64,
    /// Drains finished so far.
    done: u64,
}

/// What the reader thread shares with the poll thread: the memory, and how far it has read.
#[derive(Debug, Default)]
pub struct SharedOwners {
    memory: Mutex<OwnerMemory>,
    drains: Mutex<Drains>,
    drained: Condvar,
}

impl SharedOwners {
    /// The memory, for the reader to write or the poll thread to read.
    pub fn memory(&self) -> MutexGuard<'_, OwnerMemory> {
        self.memory.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn drains(&self) -> MutexGuard<'_, Drains> {
        self.drains.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The reader begins a drain of the ring buffer.
    pub fn drain_started(&self) {
        self.drains().started += 1;
    }

    /// The reader finished the drain it began last, its owners learned.
    pub fn drain_done(&self) {
        let mut d = self.drains();
        d.done = d.started;
        self.drained.notify_all();
    }
}

/// The poll thread's handle on the kernel events' owners.
#[derive(Clone, Debug)]
pub struct EventOwners {
    shared: Arc<SharedOwners>,
    /// Wakes the reader thread at once (an eventfd in its poll set); `None` where it only
    /// wakes by its timeout.
    wake: Option<Arc<std::os::fd::OwnedFd>>,
}

impl EventOwners {
    pub(super) fn new(shared: Arc<SharedOwners>, wake: Option<Arc<std::os::fd::OwnedFd>>) -> Self {
        EventOwners { shared, wake }
    }

    /// Waits, at most `timeout`, until the reader has drained every record the kernel wrote
    /// before this call (a drain that begins after it has begun, and finished). Returns
    /// false when it timed out: owners of the last moment may then be missing.
    pub fn catch_up(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut d = self.shared.drains();
        let target = d.started + 1;
        self.wake_reader();
        while d.done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            d = match self.shared.drained.wait_timeout(d, left) {
                Ok((d, _)) => d,
                Err(p) => p.into_inner().0,
            };
        }
        true
    }

    fn wake_reader(&self) {
        #[cfg(target_os = "linux")]
        if let Some(fd) = &self.wake {
            use std::os::fd::AsRawFd;
            let one: u64 = 1;
            // SAFETY: writes 8 bytes from a valid u64 to an eventfd we keep open; a full
            // counter (EAGAIN) means the reader is already woken.
            unsafe { libc::write(fd.as_raw_fd(), (&one as *const u64).cast(), 8) };
        }
    }

    /// A lookup of owners by cookie for the tracker, over the memory locked once: each
    /// process's owners list is made once and shared by its sockets.
    pub fn with_lookup<R>(&self, f: impl FnOnce(&mut dyn FnMut(u64) -> Option<Owners>) -> R) -> R {
        let memory = self.shared.memory();
        let mut lists: FxHashMap<u32, Owners> = FxHashMap::default();
        let mut lookup = |cookie: u64| {
            let o = memory.get(cookie)?;
            let list = lists.entry(o.pid).or_insert_with(|| {
                vec![Owner {
                    pid: o.pid,
                    name: Some(o.name.clone()),
                }]
                .into()
            });
            // Another process of the same pid (the pid reused): a list of its own.
            if list.first().and_then(|l| l.name.as_deref()) != Some(&*o.name) {
                return Some(
                    vec![Owner {
                        pid: o.pid,
                        name: Some(o.name.clone()),
                    }]
                    .into(),
                );
            }
            Some(list.clone())
        };
        f(&mut lookup)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(pid: u32, name: &str) -> CloseOwner {
        CloseOwner {
            pid,
            name: name.into(),
        }
    }

    #[test]
    fn an_ended_socket_keeps_its_owner_for_a_while_then_is_forgotten() {
        let t0 = Instant::now();
        let mut m = OwnerMemory::default();
        m.learn(
            [
                Learned::Owner(1, owner(10, "ab")),
                Learned::Owner(2, owner(11, "nginx")),
            ],
            t0,
        );
        m.learn([Learned::Ended(1)], t0 + Duration::from_secs(1));
        assert_eq!(
            m.get(1).map(|o| o.pid),
            Some(10),
            "its TIME_WAIT asks by cookie"
        );
        assert_eq!(m.get(2).map(|o| o.pid), Some(11));
        // Still known a whole ENDED_KEPT / 2 later, gone after ENDED_KEPT and one more turn.
        m.learn([], t0 + ENDED_KEPT / 2 + Duration::from_secs(1));
        assert!(m.get(1).is_some());
        m.learn([], t0 + ENDED_KEPT + Duration::from_secs(2));
        assert!(m.get(1).is_none());
        assert_eq!(
            m.get(2).map(|o| o.pid),
            Some(11),
            "a live socket is never forgotten"
        );
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn the_latest_owner_wins() {
        let mut m = OwnerMemory::default();
        let t0 = Instant::now();
        m.learn(
            [
                Learned::Owner(5, owner(10, "parent")),
                Learned::Owner(5, owner(12, "child")),
            ],
            t0,
        );
        assert_eq!(m.get(5).map(|o| o.pid), Some(12));
    }

    #[test]
    fn catch_up_waits_for_a_drain_that_begins_after_it_and_times_out_without_one() {
        let shared = Arc::new(SharedOwners::default());
        let owners = EventOwners::new(shared.clone(), None);
        // A drain in progress when asked does not count: it may have begun before the dump.
        shared.drain_started();
        let reader = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                // Finish the old drain, then run new ones until the poll thread is served.
                shared.drain_done();
                for _ in 0..200 {
                    shared.drain_started();
                    shared.drain_done();
                    std::thread::sleep(Duration::from_millis(5));
                }
            })
        };
        assert!(owners.catch_up(Duration::from_secs(10)));
        let d = shared.drains();
        assert!(d.done >= 2, "a drain begun after the call finished");
        drop(d);
        reader.join().unwrap();
        // Nobody drains: it gives up at its deadline.
        assert!(!owners.catch_up(Duration::from_millis(20)));
    }
}
