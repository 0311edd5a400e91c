//! The resolver's memory of names: positive and negative answers, each kept for its own
//! time to live, in a bounded number of entries. Pure: the caller passes the clock, so the
//! tests step time without sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One address's answer and how long it holds.
#[derive(Clone, Debug)]
struct Entry {
    /// The name, or `None` for an address with no name (no PTR record, NXDOMAIN, an error
    /// or a lookup past its deadline).
    name: Option<Arc<str>>,
    stored: Instant,
    expires: Instant,
}

/// Names by address, at most `cap` of them; an entry past its time to live is as good as
/// absent (the address is looked up again).
#[derive(Debug)]
pub struct Cache {
    entries: HashMap<IpAddr, Entry>,
    cap: usize,
    name_ttl: Duration,
    failed_ttl: Duration,
}

impl Cache {
    /// A cache of at most `cap` entries (at least one): a name holds `name_ttl`, the want
    /// of one `failed_ttl` (shorter, so a resolver that was down is asked again soon).
    pub fn new(cap: usize, name_ttl: Duration, failed_ttl: Duration) -> Self {
        Cache {
            entries: HashMap::new(),
            cap: cap.max(1),
            name_ttl,
            failed_ttl,
        }
    }

    /// What is known of `ip` at `now`: `Some(Some(name))`, `Some(None)` for an address known
    /// to have no name, `None` when nothing is known (never asked, or expired).
    pub fn get(&self, ip: IpAddr, now: Instant) -> Option<Option<Arc<str>>> {
        self.entries
            .get(&ip)
            .filter(|e| now < e.expires)
            .map(|e| e.name.clone())
    }

    /// Keeps the answer for `ip`, found at `now`. At the bound, expired entries go first,
    /// then the oldest answer: a busy host's stream of new peers cannot grow it.
    pub fn insert(&mut self, ip: IpAddr, name: Option<Arc<str>>, now: Instant) {
        if !self.entries.contains_key(&ip) && self.entries.len() >= self.cap {
            self.entries.retain(|_, e| now < e.expires);
            if self.entries.len() >= self.cap {
                // O(cap), only when full of live entries: cheaper than an order kept on
                // every insert, and the cap is a few thousand.
                if let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, e)| e.stored)
                    .map(|(ip, _)| *ip)
                {
                    self.entries.remove(&oldest);
                }
            }
        }
        let ttl = if name.is_some() {
            self.name_ttl
        } else {
            self.failed_ttl
        };
        self.entries.insert(
            ip,
            Entry {
                name,
                stored: now,
                expires: now + ttl,
            },
        );
    }

    /// Entries held, expired ones included until they are pushed out.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it holds nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
