//! The Prometheus exposition of one poll, with no HTTP in it.
//!
//! [`Exposition`] is a small DTO computed once per poll from the live loop's [`Update`]: the
//! per-process, per-remote and per-destination figures are already cut to the top N with the
//! rest summed into one `other` series, so a scrape's size and the label cardinality stay
//! bounded whatever the machine does. [`render`] turns it into text through
//! `prometheus-client`: the OpenMetrics format that Prometheus asks for, or the classic
//! Prometheus text format for everything else (curl, `promtool check metrics`).
//!
//! `exposition` computes the figures (no text); `encode` writes them (no figures).

mod encode;
mod exposition;
#[cfg(test)]
mod tests;

pub use encode::{TextFormat, openmetrics_to_prometheus, render};
pub use exposition::{Exposition, PortUse, ProcessKey, Ranked, UNKNOWN_PROCESS, rank};
