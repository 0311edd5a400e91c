//! Every close, from the kernel's own events: the eBPF program of `bpf/closes.bpf.c` loaded
//! with aya, its ring buffer read on a thread of its own, decoded and joined per socket into
//! [`Close`]s; and without privilege, the kernel's counters instead.
//!
//! Layered above `model` (the close kinds live there, shared by every output) and beside
//! `collector` (which samples the socket table; this sees what happens between samples).

pub mod counters;
pub mod decode;
pub mod join;
#[cfg(target_os = "linux")]
mod load;
pub mod owners;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::caps::{self, Caps};
use crate::model::{Close, CloseSource, CloseTally, CounterCloses};

/// Whether to use the kernel's events.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventsMode {
    /// Use them; fail when they cannot be loaded.
    On,
    /// Never load them: the counters only.
    Off,
    /// Use them when privileged (root, or CAP_BPF and CAP_PERFMON), else the counters.
    #[default]
    Auto,
}

/// Why the kernel's events are not available.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(
        "{lacking} ({0}); run as root, or use --events off to count closes from the kernel's counters",
        lacking = lacking_for_events()
    )]
    NotPermitted(String),
    #[error("cannot use the kernel's events: {0}")]
    Load(String),
    #[error("kernel events are only available on Linux")]
    Unsupported,
}

/// How the event source is set up.
#[derive(Clone, Debug)]
pub struct EventOptions {
    /// Ring buffer size in bytes: a power of two, at least one page.
    pub ring_bytes: u32,
    /// Only closes of this network namespace (inode); `None`: the caller's own.
    pub netns: Option<u32>,
    /// Closes of every network namespace (a container host's): `netns` is then ignored.
    pub every_netns: bool,
    /// Keep each close for [`KernelEvents::drain`] (up to this many waiting); 0 keeps only
    /// the tally.
    pub queue: usize,
}

impl Default for EventOptions {
    fn default() -> Self {
        EventOptions {
            ring_bytes: 4 << 20,
            netns: None,
            every_netns: false,
            queue: 0,
        }
    }
}

/// What the reader thread shares with the outputs.
#[derive(Debug, Default)]
pub struct Shared {
    tally: Mutex<CloseTally>,
    /// Records the kernel side could not write (ring buffer full).
    pub lost: AtomicU64,
    /// Records read.
    pub events: AtomicU64,
    /// Closes dropped because the consumer's queue was full.
    pub queue_dropped: AtomicU64,
    /// Sockets whose destroy record was missed (see `JoinStats`).
    pub missed_destroys: AtomicU64,
    /// Sockets followed now.
    pub tracked: AtomicU64,
    /// Records that did not decode (an object built for another decoder).
    pub malformed: AtomicU64,
}

impl Shared {
    /// The tally of closes so far.
    pub fn tally(&self) -> MutexGuard<'_, CloseTally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The kernel's events, read on their own thread. Dropping it stops the thread and detaches
/// the programs.
pub struct KernelEvents {
    shared: Arc<Shared>,
    owners: owners::EventOwners,
    closes: Option<Receiver<Close>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KernelEvents {
    /// Loads, attaches and starts reading.
    #[cfg(target_os = "linux")]
    pub fn start(opts: &EventOptions) -> Result<Self, EventsError> {
        let netns = match opts.netns {
            _ if opts.every_netns => None,
            Some(n) => Some(n),
            None => own_netns(),
        };
        let loaded = load::load(opts.ring_bytes, netns)?;
        let shared = Arc::new(Shared::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = if opts.queue > 0 {
            let (tx, rx) = std::sync::mpsc::sync_channel(opts.queue);
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let known = Arc::new(owners::SharedOwners::default());
        let wake = wake_fd().map(Arc::new);
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            let reader = Reader {
                shared,
                owners: known.clone(),
                wake: wake.clone(),
                tx,
            };
            std::thread::Builder::new()
                .name("lingertop-events".into())
                .spawn(move || read_loop(loaded, join::Joiner::new(netns), &reader, &stop))
                .map_err(|e| EventsError::Load(format!("cannot start the event thread: {e}")))?
        };
        Ok(KernelEvents {
            shared,
            owners: owners::EventOwners::new(known, wake),
            closes: rx,
            stop,
            thread: Some(thread),
        })
    }

    /// Kernel events exist only on Linux.
    #[cfg(not(target_os = "linux"))]
    pub fn start(_opts: &EventOptions) -> Result<Self, EventsError> {
        Err(EventsError::Unsupported)
    }

    /// What the reader shares: tally, lost records.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Who owns each socket as the events saw it, for the poll thread.
    pub fn owners(&self) -> owners::EventOwners {
        self.owners.clone()
    }

    /// The closes read since the last call (only with [`EventOptions::queue`] > 0).
    pub fn drain(&self) -> impl Iterator<Item = Close> + '_ {
        self.closes.iter().flat_map(|rx| rx.try_iter())
    }

    /// Waits up to `timeout` for the next close (only with a queue).
    pub fn next_timeout(&self, timeout: Duration) -> Option<Close> {
        self.closes.as_ref()?.recv_timeout(timeout).ok()
    }
}

impl Drop for KernelEvents {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The inode of this process's network namespace.
pub fn own_netns() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata("/proc/self/ns/net").ok()?.ino();
    u32::try_from(ino).ok()
}

/// How often the reader drains the ring buffer when the kernel side has not woken it: the
/// longest a close waits before it is counted.
#[cfg(target_os = "linux")]
const READ_EVERY_MS: i32 = 50;

/// An eventfd the poll thread writes to wake the reader at once; `None` if the kernel
/// refuses one (the reader then wakes by its timeout only).
#[cfg(target_os = "linux")]
fn wake_fd() -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: eventfd takes no pointers; the result is checked before use.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    // SAFETY: `fd` is a new descriptor nothing else owns.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })
}

/// What the reader thread writes to: the tally and counts, the owners, the closes' queue.
#[cfg(target_os = "linux")]
struct Reader {
    shared: Arc<Shared>,
    owners: Arc<owners::SharedOwners>,
    wake: Option<Arc<std::os::fd::OwnedFd>>,
    tx: Option<SyncSender<Close>>,
}

#[cfg(target_os = "linux")]
fn read_loop(
    mut loaded: load::Loaded,
    mut joiner: join::Joiner,
    reader: &Reader,
    stop: &AtomicBool,
) {
    use std::os::fd::AsRawFd;
    let (shared, tx) = (&*reader.shared, reader.tx.as_ref());
    let wake = reader.wake.as_ref().map_or(-1, |w| w.as_raw_fd());
    let mut batch: Vec<Close> = Vec::with_capacity(1024);
    while !stop.load(Ordering::Relaxed) {
        let mut pfds = [
            libc::pollfd {
                fd: loaded.fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            // A negative descriptor is ignored by poll.
            libc::pollfd {
                fd: wake,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds for descriptors kept open for the whole call (the ring
        // buffer's by `loaded`, the eventfd by `reader`). The kernel side submits without
        // waking us (bpf/closes.bpf.c, `wakeup_flag`) until an eighth of the ring waits, so
        // this timeout is what bounds how late a record is read, and how soon a stop request
        // is seen; the poll thread wakes us through the eventfd when it needs the owners now.
        unsafe { libc::poll(pfds.as_mut_ptr(), 2, READ_EVERY_MS) };
        if pfds[1].revents & libc::POLLIN != 0 {
            let mut count = 0u64;
            // SAFETY: reads the eventfd's 8-byte counter into a valid u64, resetting it.
            unsafe { libc::read(wake, (&mut count as *mut u64).cast(), 8) };
        }
        reader.owners.drain_started();
        while let Some(item) = loaded.ring.next() {
            match decode::decode(&item) {
                Ok(e) => {
                    if let Some(c) = joiner.handle(&e) {
                        batch.push(c);
                    }
                }
                // A mismatch of object and decoder: count it, do not stop the stream.
                Err(_) => {
                    shared.malformed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if batch.len() == batch.capacity() {
                publish(&mut batch, shared, tx);
            }
        }
        publish(&mut batch, shared, tx);
        if !joiner.learned.is_empty() {
            reader
                .owners
                .memory()
                .learn(joiner.learned.drain(..), std::time::Instant::now());
        }
        reader.owners.drain_done();
        shared.lost.store(loaded.lost(), Ordering::Relaxed);
        shared.events.store(joiner.stats.events, Ordering::Relaxed);
        shared
            .missed_destroys
            .store(joiner.stats.missed_destroys, Ordering::Relaxed);
        shared
            .tracked
            .store(joiner.tracked() as u64, Ordering::Relaxed);
    }
}

#[cfg(target_os = "linux")]
fn publish(batch: &mut Vec<Close>, shared: &Shared, tx: Option<&SyncSender<Close>>) {
    if batch.is_empty() {
        return;
    }
    {
        let mut t = shared.tally();
        for c in batch.iter() {
            t.add(c);
        }
    }
    for c in batch.drain(..) {
        if let Some(tx) = tx
            && let Err(TrySendError::Full(_)) = tx.try_send(c)
        {
            shared.queue_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Where closes come from in this run: the kernel's events, or the counters.
pub enum Closes {
    Kernel(KernelEvents),
    Counters(CounterBaseline),
}

/// The counters as they stood at start, so outputs show what grew since.
#[derive(Clone, Copy, Debug)]
pub struct CounterBaseline {
    pub at_start: CounterCloses,
}

impl CounterBaseline {
    /// Reads the counters now as the baseline.
    pub fn now() -> std::io::Result<Self> {
        Ok(CounterBaseline {
            at_start: counters::read()?,
        })
    }
}

/// Which capability the kernel's events lack, named: a unit or `setcap` may have given one.
fn lacking_for_events() -> String {
    let lacking = Caps::current().missing(&caps::EVENTS);
    if lacking.is_empty() {
        // Both held, and still refused: a lockdown, a security module or a sysctl.
        "kernel events were refused although lingertop holds CAP_BPF and CAP_PERFMON".to_string()
    } else {
        format!("kernel events need CAP_BPF and CAP_PERFMON: lingertop lacks {lacking}")
    }
}

impl Closes {
    /// The source `mode` asks for: for `auto`, the kernel's events when they load, else the
    /// counters, with a note saying why (for the caller to show once).
    pub fn choose(mode: EventsMode, opts: &EventOptions) -> anyhow::Result<(Self, Option<String>)> {
        let counters = || -> anyhow::Result<Closes> {
            Ok(Closes::Counters(CounterBaseline::now().map_err(|e| {
                anyhow::anyhow!("cannot read /proc/net/snmp or /proc/net/netstat: {e}")
            })?))
        };
        match mode {
            EventsMode::Off => Ok((counters()?, None)),
            EventsMode::On => Ok((Closes::Kernel(KernelEvents::start(opts)?), None)),
            EventsMode::Auto => match KernelEvents::start(opts) {
                Ok(k) => Ok((Closes::Kernel(k), None)),
                Err(e) => {
                    let why = match &e {
                        EventsError::NotPermitted(_) => lacking_for_events(),
                        other => other.to_string(),
                    };
                    Ok((
                        counters()?,
                        Some(format!(
                            "{why}; counting closes from /proc/net/snmp and /proc/net/netstat instead (this namespace, some kinds only, no processes)"
                        )),
                    ))
                }
            },
        }
    }

    /// Where closes come from, for a person: `the kernel's events` or `the kernel's counters`.
    pub fn described(&self) -> &'static str {
        match self {
            Closes::Kernel(_) => "the kernel's events",
            Closes::Counters(_) => "the kernel's counters",
        }
    }

    /// `kernel` or `counters`.
    pub fn source(&self) -> CloseSource {
        match self {
            Closes::Kernel(_) => CloseSource::Kernel,
            Closes::Counters(_) => CloseSource::Counters,
        }
    }
}

/// The wall-clock time of a CLOCK_MONOTONIC instant (as the eBPF side stamps records).
pub fn wall_time(mono_ns: u64) -> std::time::SystemTime {
    let now_wall = std::time::SystemTime::now();
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid, owned `ts`.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } != 0 {
        return now_wall;
    }
    let now_mono = (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64;
    now_wall - Duration::from_nanos(now_mono.saturating_sub(mono_ns))
}
