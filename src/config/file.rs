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
    pub keys: Option<KeysFile>,
    pub theme: Option<ThemeFile>,
    pub serve: Option<ServeFile>,
    pub resolve: Option<ResolveFile>,
    pub actions: Option<ActionsFile>,
}

/// `[keys]`: each action's keys, as a string or a list of strings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct KeysFile {
    pub quit: Option<KeyList>,
    pub help: Option<KeyList>,
    pub up: Option<KeyList>,
    pub down: Option<KeyList>,
    pub page_up: Option<KeyList>,
    pub page_down: Option<KeyList>,
    pub home: Option<KeyList>,
    pub end: Option<KeyList>,
    pub next_view: Option<KeyList>,
    pub prev_view: Option<KeyList>,
    pub filter: Option<KeyList>,
    pub clear_filter: Option<KeyList>,
    pub sort: Option<KeyList>,
    pub sort_direction: Option<KeyList>,
    pub pause: Option<KeyList>,
    pub faster: Option<KeyList>,
    pub slower: Option<KeyList>,
    pub detail: Option<KeyList>,
    pub toggle_group: Option<KeyList>,
    pub lab: Option<KeyList>,
    pub closes: Option<KeyList>,
    pub alerts: Option<KeyList>,
    pub copy: Option<KeyList>,
    pub names: Option<KeyList>,
    pub close: Option<KeyList>,
    pub abort: Option<KeyList>,
}

impl KeysFile {
    /// The overrides given, by action name.
    pub fn into_overrides(self) -> Vec<(&'static str, KeyList)> {
        [
            ("quit", self.quit),
            ("help", self.help),
            ("up", self.up),
            ("down", self.down),
            ("page-up", self.page_up),
            ("page-down", self.page_down),
            ("home", self.home),
            ("end", self.end),
            ("next-view", self.next_view),
            ("prev-view", self.prev_view),
            ("filter", self.filter),
            ("clear-filter", self.clear_filter),
            ("sort", self.sort),
            ("sort-direction", self.sort_direction),
            ("pause", self.pause),
            ("faster", self.faster),
            ("slower", self.slower),
            ("detail", self.detail),
            ("toggle-group", self.toggle_group),
            ("lab", self.lab),
            ("closes", self.closes),
            ("alerts", self.alerts),
            ("copy", self.copy),
            ("names", self.names),
            ("close", self.close),
            ("abort", self.abort),
        ]
        .into_iter()
        .filter_map(|(n, k)| k.map(|k| (n, k)))
        .collect()
    }
}

/// One or more keys, each checked as it is read.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyList(pub Vec<super::keys::Key>);

impl<'de> Deserialize<'de> for KeyList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum OneOrMany {
            One(String),
            Many(Vec<String>),
        }
        let names = match OneOrMany::deserialize(d)? {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        if names.is_empty() {
            return Err(serde::de::Error::custom(
                "no keys given; list at least one, e.g. [\"q\"]",
            ));
        }
        names
            .iter()
            .map(|n| n.parse().map_err(serde::de::Error::custom))
            .collect::<Result<_, _>>()
            .map(KeyList)
    }
}

/// `[theme]`: colours by role.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ThemeFile {
    pub accent: Option<ColorValue>,
    pub warning: Option<ColorValue>,
    pub critical: Option<ColorValue>,
    pub new: Option<ColorValue>,
    pub changed: Option<ColorValue>,
    pub vanished: Option<ColorValue>,
    pub selected: Option<ColorValue>,
    pub muted: Option<ColorValue>,
}

/// A colour: a name (red, darkgray, lightblue...), an index 0-255, or `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ColorValue(pub super::theme::Colour);

impl<'de> Deserialize<'de> for ColorValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse::<super::theme::Colour>().map(ColorValue).map_err(|_| {
            serde::de::Error::custom(format!(
                "\"{s}\" is not a colour; use a name (black, red, green, yellow, blue, magenta, cyan, gray, darkgray, lightred, ..., white), an index 0-255, or #rrggbb"
            ))
        })
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CollectorFile {
    pub interval: Option<Interval>,
    pub history: Option<History>,
    pub backend: Option<crate::collector::Backend>,
    pub established_every: Option<crate::config::EstablishedEvery>,
    pub netns: Option<crate::model::NetnsChoice>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FilterFile {
    pub default: Option<FilterText>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeFile {
    pub listen: Option<ListenAddr>,
    pub top_n: Option<TopN>,
    pub max_connections: Option<MaxConnections>,
    pub header_timeout: Option<Interval>,
    pub idle_timeout: Option<Interval>,
}

/// `[actions]`: what the dashboard may do to the connections it shows.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ActionsFile {
    pub allow_close: Option<bool>,
}

/// `[resolve]`: reverse DNS of remote addresses.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResolveFile {
    pub dashboard: Option<bool>,
    pub headless: Option<bool>,
    pub timeout: Option<LookupTimeout>,
}

/// One reverse lookup's deadline: 100 ms to 30 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LookupTimeout(pub Duration);

impl<'de> Deserialize<'de> for LookupTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let v = parse_duration(&s).map_err(serde::de::Error::custom)?;
        if v < Duration::from_millis(100) || v > Duration::from_secs(30) {
            return Err(serde::de::Error::custom(format!(
                "\"{s}\" is out of range; allowed: 100ms to 30s"
            )));
        }
        Ok(LookupTimeout(v))
    }
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
    pub reset_storm: Option<RateFile>,
    pub time_wait_overflow: Option<CountFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RateFile {
    pub enabled: Option<bool>,
    pub window: Option<Interval>,
    pub warning: Option<Threshold>,
    pub critical: Option<Threshold>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LingerFile {
    pub enabled: Option<bool>,
    pub min_age: Option<Age>,
    pub warning: Option<Threshold>,
    pub critical: Option<Threshold>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CountFile {
    pub enabled: Option<bool>,
    pub warning: Option<Threshold>,
    pub critical: Option<Threshold>,
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

/// A count an alert fires at: 1 or more. Zero is refused rather than raised to 1: "alert
/// at 0 connections" would fire on every host, and `enabled = false` is how a rule is
/// turned off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold(pub u32);

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        u32::try_from(v)
            .ok()
            .filter(|&v| v >= 1)
            .map(Threshold)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "{v} is out of range; allowed: 1 or more connections (to turn the rule off, set enabled = false)"
                ))
            })
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

/// The address `serve` listens on: `IP:PORT`, `[V6]:PORT` or `localhost:PORT`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenAddr(pub std::net::SocketAddr);

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_listen(&s)
            .map(ListenAddr)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses a listen address. `localhost` means 127.0.0.1 (never a name lookup, so the
/// default stays on loopback whatever /etc/hosts says).
pub fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    let t = s.trim();
    let parsed = match t.strip_prefix("localhost:") {
        Some(port) => port
            .parse::<u16>()
            .ok()
            .map(|p| std::net::SocketAddr::from(([127, 0, 0, 1], p))),
        None => t.parse().ok(),
    };
    parsed.ok_or_else(|| {
        format!("\"{s}\" is not an address to listen on; write IP:PORT, e.g. 127.0.0.1:9797 or [::1]:9797")
    })
}

/// How many labelled series a per-process, per-remote or per-destination metric keeps
/// before summing the rest into `other`: 1 to 10 000.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopN(pub usize);

impl<'de> Deserialize<'de> for TopN {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if !(1..=10_000).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is out of range; allowed: 1 to 10000 series"
            )));
        }
        Ok(TopN(v as usize))
    }
}

/// How many HTTP connections `serve` keeps open at once: 1 to 10 000.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MaxConnections(pub usize);

impl<'de> Deserialize<'de> for MaxConnections {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = i64::deserialize(d)?;
        if !(1..=10_000).contains(&v) {
            return Err(serde::de::Error::custom(format!(
                "{v} is out of range; allowed: 1 to 10000 connections"
            )));
        }
        Ok(MaxConnections(v as usize))
    }
}
