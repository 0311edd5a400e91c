//! Configuration: defaults, overridden by the TOML file, overridden by the command line.
//!
//! The file is looked up at `--config PATH`, else at `$LINGERTOP_CONFIG`, else at the
//! platform's config directory (`$XDG_CONFIG_HOME/lingertop/config.toml` on Linux); which
//! one, and how the command line lies over it, is decided once in `mode::settings`. Every
//! key is documented in `config.example.toml`. Errors are one line naming the file, line,
//! key and what is allowed.

pub mod established;
mod file;
pub mod keys;
mod read;
pub mod theme;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::collector::Backend;
use crate::model::alerts::{CountRule, LingerRule, RateRule, RatioRule};
use crate::model::{Filter, Rules};
pub use established::EstablishedEvery;
pub use file::parse_listen;
use file::{CountFile, FileConfig, LingerFile, RateFile, RatioFile};
use keys::{Key, default_keys};
use theme::ThemeColors;

/// The validated configuration every mode runs with.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Poll interval of the live modes (dashboard, watch, serve).
    pub interval: Duration,
    /// Samples of per-state history kept.
    pub history: usize,
    /// Which collector backend reads the socket table.
    pub backend: Backend,
    /// How often the live modes read ESTABLISHED sockets (the other states: every poll).
    pub established_every: EstablishedEvery,
    /// Which network namespaces to read.
    pub netns: crate::model::NetnsChoice,
    /// Filter applied when the command line gives none.
    pub default_filter: Filter,
    pub rules: Rules,
    /// Every bindable dashboard action by name with its keys, in [`keys::BINDABLE`] order.
    pub keys: Vec<(String, Vec<Key>)>,
    pub theme: ThemeColors,
    /// Settings of `lingertop serve`.
    pub serve: ServeConfig,
    /// Reverse DNS of remote addresses.
    pub resolve: ResolveConfig,
    /// `[actions] allow-close`: the dashboard's close keys act (off: they say how to turn
    /// them on), as `--allow-close` does.
    pub allow_close: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            interval: Duration::from_secs(2),
            history: 300,
            backend: Backend::Auto,
            established_every: EstablishedEvery::Auto,
            netns: crate::model::NetnsChoice::All,
            default_filter: Filter::default(),
            rules: Rules::default(),
            keys: default_keys(),
            theme: ThemeColors::default(),
            serve: ServeConfig::default(),
            resolve: ResolveConfig::default(),
            allow_close: false,
        }
    }
}

/// Reverse DNS of remote addresses (the `resolve` table). Off unless asked: a lookup tells
/// the DNS server which peers this host talks to, and a monitoring tool sends no packet
/// of its own that nobody asked for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ResolveConfig {
    /// The dashboard starts showing names (its `names` key toggles them either way).
    pub dashboard: bool,
    /// `snapshot` and `watch` add `remote_name` as with `--resolve`.
    pub headless: bool,
    /// One lookup's deadline; `snapshot --resolve` waits at most this long in all.
    pub timeout: Duration,
}

impl Default for ResolveConfig {
    fn default() -> Self {
        ResolveConfig {
            dashboard: false,
            headless: false,
            timeout: crate::resolve::DEFAULT_TIMEOUT,
        }
    }
}

/// What one HTTP client of `serve` may hold (the `serve` table's max-connections,
/// header-timeout and idle-timeout).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ServeLimits {
    /// Connections open at once; the longest-silent one gives way to a new one at the cap.
    pub max_connections: usize,
    /// How long a request may take to arrive, from its first byte.
    pub header_timeout: Duration,
    /// How long a connection may stay silent with nothing in flight.
    pub idle_timeout: Duration,
}

/// Settings of the Prometheus exporter (`lingertop serve`).
#[derive(Clone, Debug, PartialEq)]
pub struct ServeConfig {
    /// Where `/metrics` and `/healthz` are served; loopback unless the user says otherwise.
    pub listen: SocketAddr,
    /// Labelled series kept per per-process, per-remote and per-destination metric; the
    /// rest are summed into one `other` series so cardinality stays bounded.
    pub top_n: usize,
    /// What an HTTP client may hold: connections at once, and how long one may stay
    /// silent or half-way through a request.
    pub limits: ServeLimits,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 9797)),
            top_n: 10,
            limits: ServeLimits {
                max_connections: 64,
                header_timeout: Duration::from_secs(10),
                idle_timeout: Duration::from_secs(90),
            },
        }
    }
}

/// A configuration that cannot be used; the message is one line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Where the config file is looked for when `--config` is not given.
pub fn default_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("lingertop").join("config.toml"))
}

/// The text of the config file at `path`, bounded in size and in waiting (`read.rs`); the
/// error is the end of a one-line message that starts with the path.
pub fn read_text(path: &Path) -> Result<String, String> {
    read::read_text(path, read::MAX_BYTES, read::WAIT)
}

/// Parses config `text` (named `shown` in errors) and applies `sets`.
pub fn parse(text: &str, shown: &str, sets: &[String]) -> Result<Config, ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        let key = line.and_then(|l| key_at(text, l));
        ConfigError(one_line(shown, line, key.as_deref(), e.message()))
    })?;
    let cfg = build(file).map_err(|(key, msg)| {
        let line = find_key(text, &key);
        ConfigError(one_line(shown, line, Some(&key), &msg))
    })?;
    if sets.is_empty() {
        return Ok(cfg);
    }
    // Overrides: merge each KEY=VALUE into the file's table, then validate the result again.
    let mut table: toml::Table = toml::from_str(text).unwrap_or_default();
    for set in sets {
        apply_set(&mut table, set)?;
    }
    let file = FileConfig::deserialize(toml::Value::Table(table))
        .map_err(|e| ConfigError(format!("bad --set: {}", e.message())))?;
    build(file).map_err(|(key, msg)| ConfigError(format!("bad --set {key}: {msg}")))
}

fn one_line(shown: &str, line: Option<usize>, key: Option<&str>, msg: &str) -> String {
    let msg = msg.trim().replace('\n', " ");
    match (line, key) {
        (Some(l), Some(k)) => format!("config error in {shown} line {l}, key {k}: {msg}"),
        (Some(l), None) => format!("config error in {shown} line {l}: {msg}"),
        (None, Some(k)) => format!("config error in {shown}, key {k}: {msg}"),
        (None, None) => format!("config error in {shown}: {msg}"),
    }
}

fn apply_set(table: &mut toml::Table, set: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| {
        ConfigError(format!(
            "bad --set \"{set}\": {why}; write KEY=VALUE, e.g. --set alerts.close-wait.min-age=5s"
        ))
    };
    let (key, value) = set.split_once('=').ok_or_else(|| bad("no '='"))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(bad("empty key"));
    }
    // A TOML value if it parses as one (numbers, booleans, quoted strings), else a string.
    let value = toml::from_str::<toml::Table>(&format!("v = {}", value.trim()))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.trim().to_string()));
    let (last, path) = parts.split_last().ok_or_else(|| bad("empty key"))?;
    let mut cur = table;
    for p in path {
        let entry = cur
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cur = entry
            .as_table_mut()
            .ok_or_else(|| bad(&format!("{p} is not a table")))?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

fn build(file: FileConfig) -> Result<Config, (String, String)> {
    let d = Config::default();
    let collector = file.collector.unwrap_or_default();
    let alerts = file.alerts.unwrap_or_default();
    let serve = file.serve.unwrap_or_default();
    let resolve = file.resolve.unwrap_or_default();
    let actions = file.actions.unwrap_or_default();
    let r = &d.rules;
    let rules = Rules {
        growth_window: alerts.growth_window.map_or(r.growth_window, |i| i.0),
        close_wait: linger(alerts.close_wait, &r.close_wait, "alerts.close-wait")?,
        time_wait_total: count(alerts.time_wait, &r.time_wait_total, "alerts.time-wait")?,
        time_wait_per_remote: count(
            alerts.time_wait_per_remote,
            &r.time_wait_per_remote,
            "alerts.time-wait-per-remote",
        )?,
        port_pressure: ratio(
            alerts.port_pressure,
            &r.port_pressure,
            "alerts.port-pressure",
        )?,
        fin_wait_1: linger(alerts.fin_wait_1, &r.fin_wait_1, "alerts.fin-wait-1")?,
        fin_wait_2: linger(alerts.fin_wait_2, &r.fin_wait_2, "alerts.fin-wait-2")?,
        last_ack: linger(alerts.last_ack, &r.last_ack, "alerts.last-ack")?,
        closing: linger(alerts.closing, &r.closing, "alerts.closing")?,
        reset_storm: rate(alerts.reset_storm, &r.reset_storm, "alerts.reset-storm")?,
        time_wait_overflow: count(
            alerts.time_wait_overflow,
            &r.time_wait_overflow,
            "alerts.time-wait-overflow",
        )?,
    };
    let mut keys = d.keys.clone();
    let mut set_by_file = Vec::new();
    for (name, list) in file.keys.map(|k| k.into_overrides()).unwrap_or_default() {
        if let Some(slot) = keys.iter_mut().find(|(n, _)| n == name) {
            slot.1 = list.0;
            set_by_file.push(name.to_string());
        }
    }
    // Checked with ctrl-c on quit, as the dashboard's keymap always adds it.
    keys::check_conflicts(&keys::with_fixed_keys(keys.clone())).map_err(|(names, msg)| {
        // Point at the entry the file wrote: the other action may have kept its default.
        let name = names
            .iter()
            .find(|n| set_by_file.contains(n))
            .or(names.first())
            .cloned()
            .unwrap_or_default();
        (format!("keys.{name}"), msg)
    })?;
    let mut theme = d.theme.clone();
    if let Some(t) = file.theme {
        for (role, c) in [
            ("accent", t.accent),
            ("warning", t.warning),
            ("critical", t.critical),
            ("new", t.new),
            ("changed", t.changed),
            ("vanished", t.vanished),
            ("selected", t.selected),
            ("muted", t.muted),
        ] {
            if let Some(c) = c {
                theme.set(role, c.0);
            }
        }
    }
    Ok(Config {
        keys,
        theme,
        interval: collector.interval.map_or(d.interval, |i| i.0),
        history: collector.history.map_or(d.history, |h| h.0),
        backend: collector.backend.unwrap_or(d.backend),
        established_every: collector.established_every.unwrap_or(d.established_every),
        netns: collector.netns.unwrap_or(d.netns),
        default_filter: file
            .filter
            .and_then(|f| f.default)
            .map_or(d.default_filter, |f| f.0),
        rules,
        serve: ServeConfig {
            listen: serve.listen.map_or(d.serve.listen, |l| l.0),
            top_n: serve.top_n.map_or(d.serve.top_n, |n| n.0),
            limits: ServeLimits {
                max_connections: serve
                    .max_connections
                    .map_or(d.serve.limits.max_connections, |n| n.0),
                header_timeout: serve
                    .header_timeout
                    .map_or(d.serve.limits.header_timeout, |i| i.0),
                idle_timeout: serve
                    .idle_timeout
                    .map_or(d.serve.limits.idle_timeout, |i| i.0),
            },
        },
        resolve: ResolveConfig {
            dashboard: resolve.dashboard.unwrap_or(d.resolve.dashboard),
            headless: resolve.headless.unwrap_or(d.resolve.headless),
            timeout: resolve.timeout.map_or(d.resolve.timeout, |t| t.0),
        },
        allow_close: actions.allow_close.unwrap_or(d.allow_close),
    })
}

fn ordered<T: PartialOrd + std::fmt::Display>(
    warning: T,
    critical: T,
    section: &str,
) -> Result<(), (String, String)> {
    if warning > critical {
        return Err((
            format!("{section}.critical"),
            format!(
                "critical ({critical}) is below warning ({warning}); critical must be at least warning"
            ),
        ));
    }
    Ok(())
}

fn linger(
    f: Option<LingerFile>,
    d: &LingerRule,
    section: &str,
) -> Result<LingerRule, (String, String)> {
    let f = f.unwrap_or_default();
    let rule = LingerRule {
        enabled: f.enabled.unwrap_or(d.enabled),
        min_age: f.min_age.map_or(d.min_age, |a| a.0),
        warning: f.warning.map_or(d.warning, |t| t.0),
        critical: f.critical.map_or(d.critical, |t| t.0),
    };
    ordered(rule.warning, rule.critical, section)?;
    Ok(rule)
}

fn count(
    f: Option<CountFile>,
    d: &CountRule,
    section: &str,
) -> Result<CountRule, (String, String)> {
    let f = f.unwrap_or_default();
    let rule = CountRule {
        enabled: f.enabled.unwrap_or(d.enabled),
        warning: f.warning.map_or(d.warning, |t| t.0),
        critical: f.critical.map_or(d.critical, |t| t.0),
    };
    ordered(rule.warning, rule.critical, section)?;
    Ok(rule)
}

fn rate(f: Option<RateFile>, d: &RateRule, section: &str) -> Result<RateRule, (String, String)> {
    let f = f.unwrap_or_default();
    let rule = RateRule {
        enabled: f.enabled.unwrap_or(d.enabled),
        window: f.window.map_or(d.window, |i| i.0),
        warning: f.warning.map_or(d.warning, |t| t.0),
        critical: f.critical.map_or(d.critical, |t| t.0),
    };
    ordered(rule.warning, rule.critical, section)?;
    Ok(rule)
}

fn ratio(
    f: Option<RatioFile>,
    d: &RatioRule,
    section: &str,
) -> Result<RatioRule, (String, String)> {
    let f = f.unwrap_or_default();
    let rule = RatioRule {
        enabled: f.enabled.unwrap_or(d.enabled),
        warning: f.warning.map_or(d.warning, |r| r.0),
        critical: f.critical.map_or(d.critical, |r| r.0),
    };
    ordered(rule.warning, rule.critical, section)?;
    Ok(rule)
}

/// 1-based line of byte offset `at`.
fn line_of(text: &str, at: usize) -> usize {
    text[..at.min(text.len())].matches('\n').count() + 1
}

/// The dotted key each line defines, in order: the table header for a `[table]` line, the
/// table plus the line's key otherwise. One pass over the text (a lookup per line made a
/// bad value after 60 000 comment lines take minutes).
fn line_keys(text: &str) -> impl Iterator<Item = String> + '_ {
    let mut section = String::new();
    text.lines().map(move |l| {
        let t = l.trim();
        if t.starts_with('[') {
            section = t.trim_matches(|c| c == '[' || c == ']').trim().to_string();
            section.clone()
        } else {
            let key = t.split('=').next().unwrap_or_default().trim();
            if section.is_empty() {
                key.to_string()
            } else {
                format!("{section}.{key}")
            }
        }
    })
}

/// The dotted key defined on 1-based `line`: the table header above it plus the line's key.
fn key_at(text: &str, line: usize) -> Option<String> {
    line_keys(text).nth(line.checked_sub(1)?)
}

/// The 1-based line defining dotted `key`, if the file has it.
fn find_key(text: &str, key: &str) -> Option<usize> {
    line_keys(text).position(|k| k == key).map(|i| i + 1)
}

#[cfg(test)]
mod tests;
