//! Test-only: a fixed pseudo-random sequence (xorshift64) for fixtures drawn at random, the
//! same at every run.

/// A draw of numbers below `n` at each call, from `seed`.
pub(crate) fn from(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut x = seed;
    move |n| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    }
}
