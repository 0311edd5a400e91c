//! Reverse DNS of remote addresses: the name behind an address (its PTR record, with
//! /etc/hosts first), asked on the tokio runtime and never waited for by a frame or a poll.
//!
//! The resolver is hickory-resolver (pure Rust, reading /etc/resolv.conf and /etc/hosts):
//! its lookups are futures, so a lookup past its deadline is dropped and its slot is free
//! at once. libc's getnameinfo would honour nsswitch (mDNS, LDAP, systemd-resolved's own
//! names), but it blocks a thread for as long as the libc resolver retries (5 s per server
//! and attempt by default), which no deadline of ours can cut short.
//!
//! Bounded every way: [`IN_FLIGHT`] lookups at once, each cut at its deadline; at most
//! [`MAX_WAITING`] addresses queued behind them in the live modes; [`CACHE_ENTRIES`]
//! answers kept, a name for [`NAME_TTL`] and the want of one (no PTR, an error, a
//! deadline passed) for [`FAILED_TTL`]. Names are kept as the DNS gave them: every output
//! neutralises them with `crate::sanitize`, as it does any outside text.
//!
//! Loopback addresses are answered without a packet: /etc/hosts where it names them, else
//! `localhost` (RFC 6761, as hickory does); private ranges are asked like any other.

pub mod cache;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;

use cache::Cache;

/// Lookups on the wire at once.
pub const IN_FLIGHT: usize = 4;
/// Addresses the live modes queue behind the lookups in flight; past it an address is
/// asked for again at the next frame or poll that shows it.
pub const MAX_WAITING: usize = 256;
/// Answers kept.
pub const CACHE_ENTRIES: usize = 4096;
/// How long a name is kept before it is asked for again.
pub const NAME_TTL: Duration = Duration::from_secs(600);
/// How long an address without a name (or whose lookup failed) stays without one.
pub const FAILED_TTL: Duration = Duration::from_secs(60);
/// One lookup's deadline unless the config says otherwise (`resolve.timeout`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// One lookup: the address's name, or `None` when it has none or the lookup failed.
pub type LookupFuture = Pin<Box<dyn Future<Output = Option<String>> + Send>>;
/// What asks the DNS: hickory's in a real run, the tests' own elsewhere.
pub type Lookup = Arc<dyn Fn(IpAddr) -> LookupFuture + Send + Sync>;

/// What is known of an address's name right now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Known {
    /// Its name, as the DNS (or /etc/hosts) gave it, without the final dot.
    Name(Arc<str>),
    /// It has none, its lookup failed or passed its deadline (for [`FAILED_TTL`]).
    NoName,
    /// Its lookup is queued or on the wire: show the address meanwhile.
    Pending,
}

/// Names by address, as a report writes them: an address looked up without a name (or
/// not in time) is there as `None`.
#[derive(Clone, Debug, Default)]
pub struct Names(HashMap<IpAddr, Option<Arc<str>>>);

impl Names {
    /// The name of `ip`, if it has one here.
    pub fn get(&self, ip: IpAddr) -> Option<&str> {
        self.0.get(&ip.to_canonical()).and_then(|n| n.as_deref())
    }

    /// Records what is known of `ip` (a pending lookup counts as no name yet).
    pub fn insert(&mut self, ip: IpAddr, known: Known) {
        let name = match known {
            Known::Name(n) => Some(n),
            Known::NoName | Known::Pending => None,
        };
        self.0.insert(ip.to_canonical(), name);
    }

    /// Addresses recorded, with or without a name.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The one resolver of a run; cheap to clone (every clone shares the cache and the slots).
#[derive(Clone)]
pub struct Resolver {
    inner: Arc<Inner>,
}

struct Inner {
    lookup: Lookup,
    timeout: Duration,
    slots: Semaphore,
    state: Mutex<State>,
    changed: Notify,
    runtime: tokio::runtime::Handle,
}

struct State {
    cache: Cache,
    /// Addresses whose lookup is queued or in flight (the live modes' [`Resolver::want`]).
    pending: HashSet<IpAddr>,
}

impl Resolver {
    /// The system's resolver (/etc/resolv.conf, /etc/hosts), each lookup cut at `timeout`.
    /// Must be called on a tokio runtime, which runs the lookups.
    pub fn system(timeout: Duration) -> Result<Resolver, String> {
        Resolver::with_lookup(hickory(timeout)?, timeout)
    }

    /// A resolver asking `lookup`, each lookup cut at `timeout`, on the current tokio
    /// runtime.
    pub fn with_lookup(lookup: Lookup, timeout: Duration) -> Result<Resolver, String> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "reverse DNS needs the async runtime, and none is running".to_string())?;
        Ok(Resolver {
            inner: Arc::new(Inner {
                lookup,
                timeout,
                slots: Semaphore::new(IN_FLIGHT),
                state: Mutex::new(State {
                    cache: Cache::new(CACHE_ENTRIES, NAME_TTL, FAILED_TTL),
                    pending: HashSet::new(),
                }),
                changed: Notify::new(),
                runtime,
            }),
        })
    }

    /// One lookup's deadline.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// What is known of `ip` now, without waiting: a cached answer, or [`Known::Pending`]
    /// with its lookup started (unless already queued, or [`MAX_WAITING`] are). When an
    /// answer arrives, [`Resolver::changed`] wakes.
    pub fn want(&self, ip: IpAddr) -> Known {
        let ip = ip.to_canonical();
        if ip.is_unspecified() {
            return Known::NoName;
        }
        let mut state = self.state();
        if let Some(known) = state.cache.get(ip, Instant::now()) {
            return known.map_or(Known::NoName, Known::Name);
        }
        if state.pending.contains(&ip) || state.pending.len() >= MAX_WAITING {
            return Known::Pending;
        }
        state.pending.insert(ip);
        drop(state);
        let this = self.clone();
        self.inner.runtime.spawn(async move {
            // The answer is cached before the wake-up, so the woken reader finds it.
            this.lookup_now(ip).await;
            this.state().pending.remove(&ip);
            this.inner.changed.notify_one();
        });
        Known::Pending
    }

    /// Waits until an answer asked for by [`Resolver::want`] arrives (answers that came
    /// while nobody waited wake the next wait at once).
    pub async fn changed(&self) {
        self.inner.changed.notified().await;
    }

    /// The names of `ips`, waiting at most `within` in all: what is not known by then is
    /// there without a name. For the one-shot `snapshot`.
    pub async fn resolve_all(
        &self,
        ips: impl IntoIterator<Item = IpAddr>,
        within: Duration,
    ) -> Names {
        let deadline = tokio::time::Instant::now() + within;
        let mut names = Names::default();
        let mut asked = HashSet::new();
        let mut lookups = JoinSet::new();
        for ip in ips {
            let ip = ip.to_canonical();
            if !asked.insert(ip) {
                continue;
            }
            let known = if ip.is_unspecified() {
                Some(None)
            } else {
                self.state().cache.get(ip, Instant::now())
            };
            match known {
                Some(name) => {
                    names.0.insert(ip, name);
                }
                None => {
                    names.0.insert(ip, None);
                    let this = self.clone();
                    lookups.spawn_on(
                        async move { (ip, this.lookup_now(ip).await) },
                        &self.inner.runtime,
                    );
                }
            }
        }
        let _ = tokio::time::timeout_at(deadline, async {
            while let Some(done) = lookups.join_next().await {
                if let Ok((ip, name)) = done {
                    names.0.insert(ip, name);
                }
            }
        })
        .await;
        // Dropping the set aborts the lookups still queued or on the wire.
        names
    }

    /// Looks `ip` up in a slot, cut at the deadline, and keeps the answer.
    async fn lookup_now(&self, ip: IpAddr) -> Option<Arc<str>> {
        let name = {
            // The semaphore is never closed; were it, the lookup would go without a slot.
            let _slot = self.inner.slots.acquire().await.ok();
            // The slot is given back here, at the deadline at the latest: a server that
            // never answers holds it no longer.
            tokio::time::timeout(self.inner.timeout, (self.inner.lookup)(ip))
                .await
                .ok()
                .flatten()
        };
        let name = name.as_deref().and_then(tidy).map(Arc::<str>::from);
        self.state().cache.insert(ip, name.clone(), Instant::now());
        name
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding it leaves a cache that is still a cache.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A name as shown: without the root's final dot; `None` for an empty one.
fn tidy(name: &str) -> Option<&str> {
    let name = name.strip_suffix('.').unwrap_or(name);
    (!name.is_empty()).then_some(name)
}

/// A name in presentation form (`evil\\033\\[31m.example`, as hickory writes a label's
/// unusual bytes: `\\` and three octal digits, or `\\` before a character that would
/// read as syntax) back to its own characters, so that each output escapes it the one way
/// it escapes all outside text (`sanitize`), and JSON keeps it exact.
fn unescape(presented: &str) -> String {
    let mut bytes = Vec::with_capacity(presented.len());
    let mut rest = presented.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        if b != b'\\' {
            bytes.push(b);
            continue;
        }
        match rest {
            [
                d0 @ b'0'..=b'3',
                d1 @ b'0'..=b'7',
                d2 @ b'0'..=b'7',
                tail @ ..,
            ] => {
                bytes.push((d0 - b'0') << 6 | (d1 - b'0') << 3 | (d2 - b'0'));
                rest = tail;
            }
            [c, tail @ ..] if !c.is_ascii_digit() => {
                bytes.push(*c);
                rest = tail;
            }
            // Not an escape hickory writes: kept as it is.
            _ => bytes.push(b'\\'),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The lookup of hickory's resolver, configured from /etc/resolv.conf, its per-server
/// timeout no longer than ours.
fn hickory(timeout: Duration) -> Result<Lookup, String> {
    use hickory_resolver::TokioResolver;
    use hickory_resolver::proto::rr::RData;

    let mut builder = TokioResolver::builder_tokio().map_err(|e| {
        format!(
            "no reverse DNS: cannot use the resolver configuration /etc/resolv.conf ({e}); it needs a nameserver line"
        )
    })?;
    let options = builder.options_mut();
    options.timeout = options.timeout.min(timeout);
    let resolver = Arc::new(
        builder
            .build()
            .map_err(|e| format!("no reverse DNS: cannot start the resolver ({e})"))?,
    );
    Ok(Arc::new(move |ip| {
        let resolver = Arc::clone(&resolver);
        Box::pin(async move {
            let lookup = resolver.reverse_lookup(ip).await.ok()?;
            lookup.answers().iter().find_map(|r| match &r.data {
                RData::PTR(ptr) => Some(unescape(&ptr.0.to_utf8())),
                _ => None,
            })
        })
    }))
}
