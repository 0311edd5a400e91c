//! Which processes hold each socket, on Linux: the kernel's socket table names a socket's
//! inode but not its holders, so they are found by reading the links in `/proc/*/fd`
//! (about 2 µs per descriptor). This cache keeps the answer across polls and rescans only
//! when a socket it has not looked up appears, at most as often as the rate limit allows;
//! sockets without a file (inode 0: TIME_WAIT, orphans) are never looked up. A lookup the
//! rate limit deferred waits for the next scan due, whether or not the read that follows
//! includes the socket's state: a read of fewer states still rescans for it, and reports
//! what it found apart ([`Held::UNREAD`]), since by the next read of its state the socket
//! may have no file left to look up.

use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::Held;

/// A rescan waits at least this many times as long as the previous one took, so scanning
/// takes at most about a tenth of a core however fast sockets churn.
const RATE: u32 = 10;
/// With nothing new, holders are still refreshed this often: a descriptor passed to
/// another process or inherited by a child keeps its inode, so only a rescan shows it.
const REFRESH: Duration = Duration::from_secs(30);

/// Receives each (pid, socket inode) pair a scan finds.
pub type Found<'a> = dyn FnMut(u32, u32) + 'a;

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// The lowest holding pid; 0 when the last scan found no holder (another user's
    /// process without root, another PID namespace, or closed meanwhile).
    pid: u32,
    /// The poll that last saw the socket.
    seen: u32,
    /// Whether a scan has looked for this socket yet.
    scanned: bool,
    /// More than one process holds it (the full list is in `multi`).
    multi: bool,
}

/// Socket inode → holding pids, kept across polls.
#[derive(Debug, Default)]
pub struct OwnerCache {
    map: FxHashMap<u32, Entry>,
    /// Every holder, sorted, of the inodes held by several processes (after fork, or fd
    /// passing): rare, so kept apart to keep `map` small.
    multi: FxHashMap<u32, Vec<u32>>,
    generation: u32,
    last_scan: Option<Instant>,
    last_scan_took: Duration,
    exact: bool,
    /// The reads leave some states out: a socket missing from one may still exist.
    partial_reads: bool,
    /// Entries no scan has looked for yet, in this read or not.
    unscanned: usize,
}

/// Whether to rescan now. `unscanned` sockets await a first look; `since` is the time since
/// the last scan (`None`: never scanned); `took` is what that scan cost.
fn rescan_due(unscanned: usize, since: Option<Duration>, took: Duration, exact: bool) -> bool {
    let Some(since) = since else {
        return unscanned > 0;
    };
    if exact && unscanned > 0 {
        return true;
    }
    let gap = took * RATE;
    (unscanned > 0 && since >= gap) || since >= REFRESH.max(gap)
}

impl OwnerCache {
    /// With `exact`, every read looks up every new socket with no rate limit: for one-shot
    /// snapshots, whose output must be complete. Live modes keep the rate limit.
    pub fn set_exact(&mut self, exact: bool) {
        self.exact = exact;
    }

    /// Whether the sockets given to [`OwnerCache::attach`] leave some states out (the live
    /// modes read ESTABLISHED only every few polls): then a socket missing from a read is
    /// not forgotten, or the next complete read would rescan `/proc` for all of them.
    pub fn set_partial_reads(&mut self, partial: bool) {
        self.partial_reads = partial;
    }

    /// Whether no walk of /proc has been made yet (the first read's will walk it all).
    pub fn never_scanned(&self) -> bool {
        self.last_scan.is_none()
    }

    /// Fills `pids` of every socket with a file, rescanning through `scan` when due.
    /// `scan` reports every (pid, socket inode) pair it finds. Sockets whose first lookup
    /// is deferred by the rate limit get `owner_pending`. When a rescan finds the holders of
    /// sockets whose lookup was pending and that this read left out (a state it did not
    /// ask for), they are appended to `sockets` at [`Held::UNREAD`].
    pub fn attach(
        &mut self,
        sockets: &mut Vec<Held>,
        now: Instant,
        scan: &mut dyn FnMut(&mut Found),
    ) {
        self.generation = self.generation.wrapping_add(1);
        let generation = self.generation;
        // One lookup per socket: mark it seen and, in the steady state where no rescan
        // follows, fill its owners at once.
        let mut live = 0usize;
        for s in sockets.iter_mut() {
            let Some(inode) = file_inode(s) else {
                continue;
            };
            let e = self.map.entry(inode).or_insert_with(|| {
                self.unscanned += 1;
                Entry {
                    pid: 0,
                    seen: generation.wrapping_sub(1),
                    scanned: false,
                    multi: false,
                }
            });
            if e.seen != generation {
                e.seen = generation;
                live += 1;
            }
            fill(s, inode, e, &self.multi);
        }
        // Forget sockets that are gone (nothing to do while the population is stable), once
        // a complete read says so.
        if self.map.len() > live && !self.partial_reads {
            self.map.retain(|_, e| e.seen == generation);
            self.unscanned = self.map.values().filter(|e| !e.scanned).count();
            if !self.multi.is_empty() {
                let map = &self.map;
                self.multi.retain(|inode, _| map.contains_key(inode));
            }
        }

        let since = self.last_scan.map(|t| now.saturating_duration_since(t));
        if rescan_due(self.unscanned, since, self.last_scan_took, self.exact) {
            // Pending sockets this read left out: their owners are reported apart.
            let unread: Vec<u32> = if self.map.len() > live {
                self.map
                    .iter()
                    .filter(|(_, e)| !e.scanned && e.seen != generation)
                    .map(|(inode, _)| *inode)
                    .collect()
            } else {
                Vec::new()
            };
            self.rescan(now, scan);
            for s in sockets.iter_mut() {
                let Some(inode) = file_inode(s) else {
                    continue;
                };
                s.pids.clear();
                s.owner_pending = false;
                if let Some(e) = self.map.get(&inode) {
                    fill(s, inode, e, &self.multi);
                }
            }
            for inode in unread {
                let Some(e) = self.map.get(&inode) else {
                    continue;
                };
                let mut found = Held {
                    index: Held::UNREAD,
                    inode,
                    uid: 0,
                    pids: Vec::new(),
                    owner_pending: false,
                };
                fill(&mut found, inode, e, &self.multi);
                if !found.pids.is_empty() {
                    sockets.push(found);
                }
            }
        }
    }

    fn rescan(&mut self, now: Instant, scan: &mut dyn FnMut(&mut Found)) {
        let started = Instant::now();
        for e in self.map.values_mut() {
            *e = Entry {
                pid: 0,
                scanned: true,
                multi: false,
                ..*e
            };
        }
        self.multi.clear();
        self.unscanned = 0;
        let map = &mut self.map;
        let multi = &mut self.multi;
        scan(&mut |pid, inode| {
            let Some(e) = map.get_mut(&inode) else {
                return;
            };
            if e.pid == 0 {
                e.pid = pid;
            } else if e.pid != pid {
                e.multi = true;
                let all = multi.entry(inode).or_insert_with(|| vec![e.pid]);
                if !all.contains(&pid) {
                    all.push(pid);
                }
            }
        });
        for (inode, all) in multi.iter_mut() {
            all.sort_unstable();
            if let Some(e) = map.get_mut(inode) {
                e.pid = all[0];
            }
        }
        self.last_scan = Some(now);
        self.last_scan_took = started.elapsed();
    }
}

/// Gives `s` the owners `e` knows, or marks it pending when no scan has looked yet.
fn fill(s: &mut Held, inode: u32, e: &Entry, multi: &FxHashMap<u32, Vec<u32>>) {
    if !e.scanned {
        s.owner_pending = true;
    } else if e.multi {
        if let Some(all) = multi.get(&inode) {
            s.pids.extend_from_slice(all);
        }
    } else if e.pid != 0 {
        s.pids.push(e.pid);
    }
}

/// The inode of a socket that has a file; `None` for inode 0.
fn file_inode(s: &Held) -> Option<u32> {
    Some(s.inode).filter(|&i| i != 0)
}

/// Reports every (pid, socket inode) found in `/proc/*/fd`. Processes that exit during the
/// walk and directories we may not read (other users' without root) are skipped. The
/// processes are shared among a few threads: at 100k descriptors the walk is the largest
/// cost of a fresh snapshot, and it is all independent system calls.
pub fn scan_proc(found: &mut Found) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    let pids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 4);
    if workers == 1 || pids.len() < 2 {
        scan_pids(pids.iter().copied(), found);
        return;
    }
    let shares: Vec<Vec<(u32, u32)>> = std::thread::scope(|scope| {
        let pids = &pids;
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let share = move || {
                    let mut pairs = Vec::new();
                    scan_pids(
                        pids.iter().copied().skip(w).step_by(workers),
                        &mut |p, i| pairs.push((p, i)),
                    );
                    pairs
                };
                std::thread::Builder::new()
                    .name("lingertop-scan".into())
                    .spawn_scoped(scope, share)
                    // No thread to be had: this share is walked by the next join instead.
                    .map_err(|_| w)
            })
            .collect();
        handles
            .into_iter()
            .map(|h| match h {
                Ok(h) => h.join().unwrap_or_default(),
                Err(w) => {
                    let mut pairs = Vec::new();
                    scan_pids(
                        pids.iter().copied().skip(w).step_by(workers),
                        &mut |p, i| pairs.push((p, i)),
                    );
                    pairs
                }
            })
            .collect()
    });
    for (pid, inode) in shares.into_iter().flatten() {
        found(pid, inode);
    }
}

/// Walks `/proc/PID/fd` of each of `pids`.
fn scan_pids(pids: impl Iterator<Item = u32>, found: &mut Found) {
    let mut path = Vec::with_capacity(32);
    let mut link = [0u8; 64];
    for pid in pids {
        path.clear();
        path.extend_from_slice(format!("/proc/{pid}/fd\0").as_bytes());
        // SAFETY: `path` is NUL-terminated; the result is checked.
        let fd = unsafe {
            libc::open(
                path.as_ptr().cast(),
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            )
        };
        if fd < 0 {
            continue;
        }
        // SAFETY: `fd` is an open directory we own; fdopendir takes it over.
        let d = unsafe { libc::fdopendir(fd) };
        if d.is_null() {
            // SAFETY: fdopendir failed, so `fd` is still ours to close.
            unsafe { libc::close(fd) };
            continue;
        }
        loop {
            // SAFETY: `d` is a valid DIR* until closedir below.
            let ent = unsafe { libc::readdir(d) };
            if ent.is_null() {
                break;
            }
            // SAFETY: readdir returned a valid dirent whose d_name is NUL-terminated.
            let fd_name = unsafe { (*ent).d_name.as_ptr() };
            // SAFETY: d_name has at least one byte (the NUL).
            if unsafe { *fd_name } == b'.' as libc::c_char {
                continue;
            }
            // SAFETY: `fd` stays open while `d` is; `link` is valid for its length.
            let n = unsafe { libc::readlinkat(fd, fd_name, link.as_mut_ptr().cast(), link.len()) };
            if n <= 0 {
                continue;
            }
            if let Some(inode) = socket_inode(&link[..n as usize]) {
                found(pid, inode);
            }
        }
        // SAFETY: `d` is valid; this also closes `fd`.
        unsafe { libc::closedir(d) };
    }
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &[u8]) -> Option<u32> {
    let digits = link.strip_prefix(b"socket:[")?.strip_suffix(b"]")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sock(inode: u32) -> Held {
        Held {
            index: 0,
            inode,
            uid: 0,
            pids: Vec::new(),
            owner_pending: false,
        }
    }

    /// A fixture of /proc: (pid, inode) pairs, and how many times it was walked.
    struct FakeProc {
        fds: Vec<(u32, u32)>,
        walks: u32,
    }

    impl FakeProc {
        fn attach(&mut self, cache: &mut OwnerCache, socks: &mut Vec<Held>, at: Instant) {
            let fds = self.fds.clone();
            let walks = &mut self.walks;
            cache.attach(socks, at, &mut |found| {
                *walks += 1;
                for &(pid, inode) in &fds {
                    found(pid, inode);
                }
            });
        }
    }

    #[test]
    fn owners_come_from_one_scan_and_are_reused() {
        let mut proc_ = FakeProc {
            fds: vec![(10, 100), (11, 101), (12, 999)],
            walks: 0,
        };
        let mut cache = OwnerCache::default();
        let t0 = Instant::now();
        let mut socks = vec![sock(100), sock(101), sock(0)];
        proc_.attach(&mut cache, &mut socks, t0);
        assert_eq!(proc_.walks, 1);
        assert_eq!(socks[0].pids, vec![10]);
        assert_eq!(socks[1].pids, vec![11]);
        assert!(socks[2].pids.is_empty());

        // Same sockets, plus new ones without a file: no rescan.
        let mut socks = vec![sock(100), sock(101), sock(0), sock(0)];
        proc_.attach(&mut cache, &mut socks, t0 + Duration::from_secs(1));
        assert_eq!(proc_.walks, 1, "inode 0 is never looked up");
        assert_eq!(socks[1].pids, vec![11]);
    }

    #[test]
    fn a_new_inode_triggers_a_rescan_and_gone_ones_are_forgotten() {
        let mut proc_ = FakeProc {
            fds: vec![(10, 100)],
            walks: 0,
        };
        let mut cache = OwnerCache::default();
        let t0 = Instant::now();
        proc_.attach(&mut cache, &mut vec![sock(100)], t0);
        proc_.fds.push((20, 200));
        let mut socks = vec![sock(200)];
        proc_.attach(&mut cache, &mut socks, t0 + Duration::from_secs(1));
        assert_eq!(proc_.walks, 2);
        assert_eq!(socks[0].pids, vec![20]);
        assert_eq!(cache.map.len(), 1, "inode 100 vanished and is forgotten");
    }

    #[test]
    fn reads_that_leave_states_out_forget_nothing_and_the_next_complete_one_needs_no_scan() {
        let mut proc_ = FakeProc {
            fds: vec![(10, 100), (10, 101)],
            walks: 0,
        };
        let mut cache = OwnerCache::default();
        let t0 = Instant::now();
        proc_.attach(&mut cache, &mut vec![sock(100), sock(101)], t0);
        // ESTABLISHED (101) left out of two reads.
        cache.set_partial_reads(true);
        for s in 1..3 {
            proc_.attach(
                &mut cache,
                &mut vec![sock(100)],
                t0 + Duration::from_secs(s),
            );
        }
        assert_eq!(cache.map.len(), 2, "101 is only unread, not gone");
        cache.set_partial_reads(false);
        let mut socks = vec![sock(100), sock(101)];
        proc_.attach(&mut cache, &mut socks, t0 + Duration::from_secs(3));
        assert_eq!(proc_.walks, 1, "nothing new: no rescan");
        assert_eq!(socks[1].pids, vec![10]);
        // A complete read without 101 forgets it.
        proc_.attach(
            &mut cache,
            &mut vec![sock(100)],
            t0 + Duration::from_secs(4),
        );
        assert_eq!(cache.map.len(), 1);
    }

    #[test]
    fn an_inode_nobody_holds_is_not_rescanned_for_every_poll() {
        let mut proc_ = FakeProc {
            fds: vec![],
            walks: 0,
        };
        let mut cache = OwnerCache::default();
        let t0 = Instant::now();
        for i in 0..5 {
            let mut socks = vec![sock(300)];
            proc_.attach(&mut cache, &mut socks, t0 + Duration::from_secs(i));
            assert!(socks[0].pids.is_empty());
            assert!(!socks[0].owner_pending);
        }
        assert_eq!(proc_.walks, 1);
        // ... but holders are refreshed after a while, in case the socket changed hands.
        proc_.fds.push((30, 300));
        let mut socks = vec![sock(300)];
        proc_.attach(
            &mut cache,
            &mut socks,
            t0 + REFRESH + Duration::from_secs(1),
        );
        assert_eq!(proc_.walks, 2);
        assert_eq!(socks[0].pids, vec![30]);
    }

    #[test]
    fn every_holder_is_listed_sorted_once() {
        let mut proc_ = FakeProc {
            fds: vec![(50, 400), (40, 400), (50, 400), (60, 400)],
            walks: 0,
        };
        let mut cache = OwnerCache::default();
        let mut socks = vec![sock(400)];
        proc_.attach(&mut cache, &mut socks, Instant::now());
        assert_eq!(socks[0].pids, vec![40, 50, 60]);
    }

    #[test]
    fn the_rate_limit_scales_with_the_cost_of_a_scan() {
        let took = Duration::from_millis(200);
        assert!(rescan_due(1, None, Duration::ZERO, false), "first scan");
        assert!(
            !rescan_due(0, None, Duration::ZERO, false),
            "nothing to find"
        );
        assert!(!rescan_due(5, Some(Duration::from_secs(1)), took, false));
        assert!(rescan_due(5, Some(Duration::from_secs(2)), took, false));
        assert!(
            rescan_due(5, Some(Duration::from_millis(1)), took, true),
            "exact"
        );
        assert!(!rescan_due(0, Some(Duration::from_secs(29)), took, true));
        assert!(
            rescan_due(0, Some(REFRESH), took, false),
            "periodic refresh"
        );
        // A scan costing 5 s waits 50 s even for the periodic refresh.
        assert!(!rescan_due(0, Some(REFRESH), took * 25, false));
    }

    #[test]
    fn deferred_lookups_are_marked_pending() {
        let mut cache = OwnerCache {
            last_scan: Some(Instant::now()),
            last_scan_took: Duration::from_secs(1),
            ..OwnerCache::default()
        };
        let mut walks = 0;
        let mut socks = vec![sock(500)];
        let at = cache.last_scan.unwrap() + Duration::from_millis(100);
        cache.attach(&mut socks, at, &mut |_| walks += 1);
        assert_eq!(walks, 0);
        assert!(socks[0].owner_pending);
    }

    /// The case: a new socket's lookup is deferred at a read of every state; the
    /// next reads leave its state (ESTABLISHED) out. The lookup is still made when the rate
    /// limit allows, and its owner reported apart, before the socket can lose its file.
    #[test]
    fn a_deferred_lookup_is_made_at_the_next_scan_due_even_by_a_read_that_leaves_it_out() {
        let t0 = Instant::now();
        let took = Duration::from_millis(100);
        let mut cache = OwnerCache {
            last_scan: Some(t0),
            last_scan_took: took,
            ..OwnerCache::default()
        };
        let mut proc_ = FakeProc {
            fds: vec![(70, 700), (71, 701)],
            walks: 0,
        };
        // A complete read finds 700 (listening, say) and 701, new: deferred (100 ms after a
        // scan that took 100 ms).
        let mut socks = vec![sock(700), sock(701)];
        proc_.attach(&mut cache, &mut socks, t0 + took);
        assert_eq!(proc_.walks, 0);
        assert!(socks[1].owner_pending);
        // Reads of fewer states: 701 is left out. Still too soon, then due.
        cache.set_partial_reads(true);
        let mut socks = vec![sock(700)];
        proc_.attach(&mut cache, &mut socks, t0 + took * 5);
        assert_eq!(proc_.walks, 0, "the rate limit still holds");
        assert_eq!(socks.len(), 1);
        let mut socks = vec![sock(700)];
        proc_.attach(&mut cache, &mut socks, t0 + took * 11);
        assert_eq!(
            proc_.walks, 1,
            "701's lookup is due although this read leaves it out"
        );
        assert_eq!(socks.len(), 2);
        assert_eq!(socks[1].index, Held::UNREAD);
        assert_eq!((socks[1].inode, socks[1].pids.clone()), (701, vec![71]));
        // Found once: the next scan reports nothing apart.
        let mut socks = vec![sock(700)];
        proc_.attach(&mut cache, &mut socks, t0 + REFRESH * 2);
        assert_eq!(proc_.walks, 2);
        assert_eq!(socks.len(), 1);
    }

    #[test]
    fn socket_links_parse() {
        assert_eq!(socket_inode(b"socket:[12345]"), Some(12345));
        assert_eq!(socket_inode(b"pipe:[12345]"), None);
        assert_eq!(socket_inode(b"socket:[12"), None);
        assert_eq!(socket_inode(b"/dev/null"), None);
    }

    #[test]
    fn the_real_proc_shows_a_socket_of_ours() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let me = std::process::id();
        let mut mine = Vec::new();
        scan_proc(&mut |pid, inode| {
            if pid == me {
                mine.push(inode);
            }
        });
        assert!(
            !mine.is_empty(),
            "the listener's socket is in /proc/self/fd"
        );
        drop(l);
    }
}
