//! `collector.established-every`: how often the live modes read ESTABLISHED sockets. Plain
//! data with its parser, here so the config and the live loop (which acts on it) share it
//! without depending on each other.

use serde::{Deserialize, Deserializer};

/// How often the live loop reads ESTABLISHED sockets. Every other state is read at every
/// poll, so a close that passes through one of them shows at the next poll; ESTABLISHED is
/// most of a busy table and changes nothing lingertop watches until it ends. Between
/// reads, the tracker carries ESTABLISHED connections as last read (so one that ends by a
/// reset shows as gone only at the next read of ESTABLISHED).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EstablishedEvery {
    /// Every poll up to [`AUTO_PER_POLL`] ESTABLISHED sockets, then every
    /// ceil(N / [`AUTO_PER_POLL`]) polls, at most [`AUTO_MAX_POLLS`].
    Auto,
    /// Every this many polls, 1 (every poll) to 60.
    Polls(u32),
}

/// ESTABLISHED sockets `auto` reads per poll on average: about 15 ms of the kernel's dump.
pub const AUTO_PER_POLL: usize = 20_000;
/// The longest `auto` goes between two reads of ESTABLISHED, in polls.
pub const AUTO_MAX_POLLS: u32 = 10;

impl EstablishedEvery {
    /// Polls from one read of ESTABLISHED to the next, when the last read found
    /// `established` of them.
    pub fn polls(self, established: usize) -> u32 {
        match self {
            EstablishedEvery::Polls(n) => n.max(1),
            EstablishedEvery::Auto => u32::try_from(established.div_ceil(AUTO_PER_POLL))
                .unwrap_or(u32::MAX)
                .clamp(1, AUTO_MAX_POLLS),
        }
    }
}

impl std::fmt::Display for EstablishedEvery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EstablishedEvery::Auto => f.write_str("auto"),
            EstablishedEvery::Polls(n) => write!(f, "{n}"),
        }
    }
}

impl<'de> Deserialize<'de> for EstablishedEvery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        const EXPECTED: &str = "\"auto\" or a number of polls from 1 to 60";
        impl serde::de::Visitor<'_> for Visitor {
            type Value = EstablishedEvery;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                match s.trim() {
                    "auto" => Ok(EstablishedEvery::Auto),
                    n => match n.parse::<i64>() {
                        Ok(n) => self.visit_i64(n),
                        Err(_) => Err(E::custom(format!("\"{s}\" is not allowed; use {EXPECTED}"))),
                    },
                }
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Self::Value, E> {
                match u32::try_from(n) {
                    Ok(n @ 1..=60) => Ok(EstablishedEvery::Polls(n)),
                    _ => Err(E::custom(format!("{n} is out of range; use {EXPECTED}"))),
                }
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Self::Value, E> {
                self.visit_i64(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(Visitor)
    }
}
