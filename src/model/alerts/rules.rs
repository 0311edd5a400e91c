//! The thresholds of every rule; `Rules::default()` is the shipped configuration.

use std::time::Duration;

/// Connections lingering in one state: alert when at least `warning` (or `critical`)
/// connections have been in `state` for `min_age` or longer.
#[derive(Clone, Debug, PartialEq)]
pub struct LingerRule {
    pub enabled: bool,
    pub min_age: Duration,
    pub warning: u32,
    pub critical: u32,
}

/// Count thresholds: alert when a count reaches `warning` (or `critical`).
#[derive(Clone, Debug, PartialEq)]
pub struct CountRule {
    pub enabled: bool,
    pub warning: u32,
    pub critical: u32,
}

/// Rate thresholds, per second over `window`.
#[derive(Clone, Debug, PartialEq)]
pub struct RateRule {
    pub enabled: bool,
    pub window: Duration,
    pub warning: u32,
    pub critical: u32,
}

/// Ratio thresholds in `0.0..=1.0`.
#[derive(Clone, Debug, PartialEq)]
pub struct RatioRule {
    pub enabled: bool,
    pub warning: f64,
    pub critical: f64,
}

/// Every rule's thresholds; `Default` is the shipped configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct Rules {
    /// Window over which CLOSE_WAIT growth per process is measured.
    pub growth_window: Duration,
    pub close_wait: LingerRule,
    pub time_wait_total: CountRule,
    pub time_wait_per_remote: CountRule,
    pub port_pressure: RatioRule,
    pub fin_wait_1: LingerRule,
    pub fin_wait_2: LingerRule,
    pub last_ack: LingerRule,
    pub closing: LingerRule,
    /// Resets per second of one process (sent plus received), from the kernel's events.
    pub reset_storm: RateRule,
    /// TIME_WAIT sockets the kernel dropped within `reset_storm.window`.
    pub time_wait_overflow: CountRule,
}

impl Default for Rules {
    fn default() -> Self {
        let linger = |secs, warning, critical| LingerRule {
            enabled: true,
            min_age: Duration::from_secs(secs),
            warning,
            critical,
        };
        Rules {
            growth_window: Duration::from_secs(60),
            close_wait: linger(30, 1, 100),
            time_wait_total: CountRule {
                enabled: true,
                warning: 10_000,
                critical: 50_000,
            },
            time_wait_per_remote: CountRule {
                enabled: true,
                warning: 2_000,
                critical: 10_000,
            },
            port_pressure: RatioRule {
                enabled: true,
                warning: 0.5,
                critical: 0.8,
            },
            fin_wait_1: linger(30, 10, 500),
            fin_wait_2: linger(60, 10, 500),
            last_ack: linger(30, 10, 500),
            closing: linger(30, 10, 500),
            reset_storm: RateRule {
                enabled: true,
                window: Duration::from_secs(10),
                warning: 50,
                critical: 500,
            },
            // Any overflow: a dropped TIME_WAIT is a connection that lost its protection.
            time_wait_overflow: CountRule {
                enabled: true,
                warning: 1,
                critical: 1000,
            },
        }
    }
}
