//! Finding the keys that occur often in a list, without a map of every distinct key.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// counters keeps every key occurring more than `len / (counters + 1)` times; so one pass
/// with a small map finds the candidates and a second counts them exactly, however many
/// distinct keys there are (100k TIME_WAIT toward 100k client ports cost no 100k-entry map).
pub(super) fn frequent<K: Copy + Hash + Eq>(keys: &[K], min: usize) -> Vec<(K, Vec<usize>)> {
    let min = min.max(1);
    let slots = keys.len() / min;
    if slots == 0 {
        return Vec::new();
    }
    // Few counters (the usual thresholds) live in a short list, searched faster than hashed.
    let candidates: Vec<K> = if slots <= SHORT {
        let mut counters: Vec<(K, usize)> = Vec::with_capacity(slots);
        for &k in keys {
            if let Some(c) = counters.iter_mut().find(|c| c.0 == k) {
                c.1 += 1;
            } else if counters.len() < slots {
                counters.push((k, 1));
            } else {
                counters.retain_mut(|c| {
                    c.1 -= 1;
                    c.1 > 0
                });
            }
        }
        counters.into_iter().map(|c| c.0).collect()
    } else {
        let mut counters: FxHashMap<K, usize> = FxHashMap::default();
        for &k in keys {
            if let Some(n) = counters.get_mut(&k) {
                *n += 1;
            } else if counters.len() < slots {
                counters.insert(k, 1);
            } else {
                counters.retain(|_, n| {
                    *n -= 1;
                    *n > 0
                });
            }
        }
        counters.into_keys().collect()
    };
    // Count the candidates exactly, each numbered when first met.
    let mut found: Vec<(K, Vec<usize>)> = Vec::new();
    if candidates.len() <= SHORT {
        let mut slot_of: Vec<(K, usize)> =
            candidates.into_iter().map(|k| (k, usize::MAX)).collect();
        for (pos, k) in keys.iter().enumerate() {
            if let Some(c) = slot_of.iter_mut().find(|c| c.0 == *k) {
                if c.1 == usize::MAX {
                    c.1 = found.len();
                    found.push((*k, Vec::new()));
                }
                found[c.1].1.push(pos);
            }
        }
    } else {
        let mut slot_of: FxHashMap<K, usize> =
            candidates.into_iter().map(|k| (k, usize::MAX)).collect();
        for (pos, k) in keys.iter().enumerate() {
            if let Some(s) = slot_of.get_mut(k) {
                if *s == usize::MAX {
                    *s = found.len();
                    found.push((*k, Vec::new()));
                }
                found[*s].1.push(pos);
            }
        }
    }
    found.retain(|(_, at)| at.len() >= min);
    found
}

/// Up to this many counters, [`frequent`] keeps them in a list rather than a map.
const SHORT: usize = 16;
