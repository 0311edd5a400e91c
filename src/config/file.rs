//! The TOML file as written: every field optional, unknown keys refused, values checked as
//! they are read so errors point at their line.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub collector: Option<CollectorFile>,
    pub filter: Option<FilterFile>,
    pub alerts: Option<AlertsFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CollectorFile {
    pub interval: Option<Interval>,
    pub history: Option<History>,
    pub backend: Option<crate::collector::Backend>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterFile {
    pub default: Option<FilterText>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AlertsFile {
    pub growth_window: Option<Interval>,
    pub close_wait: Option<LingerFile>,
    pub time_wait: Option<CountFile>,
    pub time_wait_per_remote: Option<CountFile>,
    pub port_pressure: Option<RatioFile>,
    pub fin_wait_1: Option<LingerFile>,
    pub fin_wait_2: Option<LingerFile>,
    pub last_ack: Option<LingerFile>,
    pub closing: Option<LingerFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LingerFile {
    pub enabled: Option<bool>,
    pub min_age: Option<Age>,
    pub warning: Option<u32>,
    pub critical: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CountFile {
    pub enabled: Option<bool>,
    pub warning: Option<u32>,
    pub critical: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RatioFile {
    pub enabled: Option<bool>,
    pub warning: Option<Ratio>,
    pub critical: Option<Ratio>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("\"{s}\" is not a duration; write e.g. \"500ms\", \"30s\", \"2m\""))
}

/// A poll interval or window: 100 ms to 1 day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval(pub Duration);

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = parse_duration(&s).map_err(serde::de::Error::custom)?;
        if v < Duration::from_millis(100) || v > Duration::from_secs(86_400) {
            return Err(serde::de::Error::custom(format!(
                "\"{s}\" is out of range; allowed: 100ms to 1d"
            )));
        }
        Ok(Interval(v))
    }
}

/// A minimum age: 0 s to 1 day.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Age(pub Duration);

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = parse_duration(&s).map_err(serde::de::Error::custom)?;
        if v > Duration::from_secs(86_400) {
            return Err(serde::de::Error::custom(format!(
                "\"{s}\" is out of range; allowed: 0s to 1d"
            )));
        }
        Ok(Age(v))
    }
}

/// A fraction, 0.0 to 1.0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ratio(pub f64);

impl<'de> Deserialize<'de> for Ratio {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = f64::deserialize(d)?;
        if !(0.0..=1.0).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is out of range; allowed: a fraction from 0.0 to 1.0 (0.5 is 50 %)"
            )));
        }
        Ok(Ratio(v))
    }
}

/// Samples of history: 2 to 100 000.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct History(pub usize);

impl<'de> Deserialize<'de> for History {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if !(2..=100_000).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is out of range; allowed: 2 to 100000 samples"
            )));
        }
        Ok(History(v as usize))
    }
}

/// A filter expression, parsed when read.
#[derive(Debug, Clone, PartialEq)]
pub struct FilterText(pub crate::model::Filter);

impl<'de> Deserialize<'de> for FilterText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::model::Filter::parse(&s)
            .map(FilterText)
            .map_err(serde::de::Error::custom)
    }
}
