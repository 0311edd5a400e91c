//! The closes part of `serve`'s exposition: closes by kind and by process from the kernel's
//! events, and the kernel's close counters, each series saying its source.
//!
//! Every series is a counter since lingertop started. The per-process breakdown lists the
//! top N processes plus `other`; a process once listed stays listed (see
//! [`CloseTally::top`]), so no exported counter ever goes down.

use std::fmt;

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::model::close::ActionCounts;
use crate::model::{CloseKind, CloseSource, CloseTally, CounterCloses, KindCounts};

/// One process's row: pid (as text), name and counts.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessRow {
    pub pid: String,
    pub process: String,
    pub counts: KindCounts,
}

/// What `/metrics` shows of closes.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosesExposition {
    pub source: CloseSource,
    /// From the kernel's events; `None` on the counters only.
    pub kernel: Option<KernelCloses>,
    /// The kernel's counters since start (this network namespace).
    pub counters: Option<CounterCloses>,
}

/// The kernel's events' part.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelCloses {
    pub all: KindCounts,
    /// Closes lingertop made from outside, never in `all` nor a process's counts.
    pub actions: ActionCounts,
    pub by_process: Vec<ProcessRow>,
    pub lost: u64,
}

impl KernelCloses {
    /// The tally's figures, `top_n` processes (growing `shown`) plus `other`.
    pub fn of(tally: &CloseTally, top_n: usize, shown: &mut Vec<u32>, lost: u64) -> Self {
        let (listed, other) = tally.top(top_n, shown);
        let mut by_process: Vec<ProcessRow> = listed
            .into_iter()
            .map(|p| ProcessRow {
                pid: p.pid.to_string(),
                process: p.name.to_string(),
                counts: p.counts.clone(),
            })
            .collect();
        by_process.push(ProcessRow {
            pid: String::new(),
            process: super::OTHER.to_string(),
            counts: other,
        });
        KernelCloses {
            all: tally.all.clone(),
            actions: tally.actions,
            by_process,
            lost,
        }
    }
}

fn counter_family<'a>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Vec<(&'a str, &'a str)>, u64)>,
) -> fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in rows {
        ConstCounter::new(v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

const REASONS: [&str; 3] = ["unread-data", "linger-0", "other"];

fn reason_counts(c: &KindCounts) -> [u64; 3] {
    [
        c.reset_sent_unread_data,
        c.reset_sent_linger0,
        c.reset_sent_other,
    ]
}

impl ClosesExposition {
    /// Writes every closes family.
    pub fn encode(&self, enc: &mut DescriptorEncoder<'_>) -> fmt::Result {
        {
            let mut family = enc.encode_descriptor(
                "lingertop_closes_source",
                "1 for where closes come from: kernel (eBPF events, every close with its process) or counters (/proc/net/snmp and netstat: some kinds, no process).",
                None,
                MetricType::Gauge,
            )?;
            for s in [CloseSource::Kernel, CloseSource::Counters] {
                ConstGauge::new(u64::from(s == self.source))
                    .encode(family.encode_family(&[("source", s.name())])?)?;
            }
        }
        if let Some(k) = &self.kernel {
            counter_family(
                enc,
                "lingertop_closes",
                "Connections closed since start, by how they ended (kernel events).",
                CloseKind::ALL
                    .iter()
                    .map(|kind| (vec![("kind", kind.name())], k.all.get(*kind))),
            )?;
            counter_family(
                enc,
                "lingertop_actions",
                "Connections lingertop closed from outside since start (lingertop close), by how; never counted as their owner's closes (kernel events).",
                [
                    (vec![("how", "graceful")], k.actions.graceful),
                    (vec![("how", "abort")], k.actions.abort),
                ],
            )?;
            counter_family(
                enc,
                "lingertop_resets_sent",
                "RSTs this host's connections ended with since start, by reason (kernel events).",
                REASONS
                    .iter()
                    .zip(reason_counts(&k.all))
                    .map(|(r, v)| (vec![("reason", *r)], v)),
            )?;
            counter_family(
                enc,
                "lingertop_process_closes",
                "Connections closed since start by owning process (top N by closes, then other; a process once listed stays listed) and kind (kernel events).",
                k.by_process.iter().flat_map(|p| {
                    CloseKind::ALL.iter().map(move |kind| {
                        (
                            vec![
                                ("pid", p.pid.as_str()),
                                ("process", p.process.as_str()),
                                ("kind", kind.name()),
                            ],
                            p.counts.get(*kind),
                        )
                    })
                }),
            )?;
            counter_family(
                enc,
                "lingertop_process_resets_sent",
                "RSTs sent since start by owning process (the same processes as lingertop_process_closes_total) and reason (kernel events): unread-data is close() with data left unread (the application closed without reading: a bug), linger-0 is SO_LINGER {1,0} (an abort on purpose).",
                k.by_process.iter().flat_map(|p| {
                    REASONS
                        .iter()
                        .zip(reason_counts(&p.counts))
                        .map(move |(reason, v)| {
                            (
                                vec![
                                    ("pid", p.pid.as_str()),
                                    ("process", p.process.as_str()),
                                    ("reason", *reason),
                                ],
                                v,
                            )
                        })
                }),
            )?;
            let c = ConstCounter::new(k.lost);
            c.encode(enc.encode_descriptor(
                "lingertop_events_lost",
                "Kernel event records dropped since start (ring buffer full, or the reader behind): the close counts miss about that many events.",
                None,
                c.metric_type(),
            )?)?;
        }
        if let Some(c) = &self.counters {
            counter_family(
                enc,
                "lingertop_kernel_tcp_events",
                "The kernel's TCP close counters of this network namespace, grown since start (/proc/net/snmp Tcp: and /proc/net/netstat TcpExt:, named as there).",
                [
                    ("OutRsts", c.resets_sent),
                    ("TCPAbortOnClose", c.reset_sent_unread_data),
                    ("TCPAbortOnData", c.reset_sent_linger0),
                    ("TCPAbortOnMemory", c.reset_sent_memory),
                    ("TCPAbortOnTimeout", c.timeout),
                    ("EstabResets", c.established_resets),
                    ("TCPTimeWaitOverflow", c.time_wait_overflow),
                    ("TW", c.time_wait_done),
                    ("ActiveOpens", c.active_opens),
                    ("PassiveOpens", c.passive_opens),
                    ("AttemptFails", c.attempt_fails),
                ]
                .map(|(name, v)| (vec![("counter", name)], v)),
            )?;
            let o = ConstCounter::new(c.time_wait_overflow);
            o.encode(enc.encode_descriptor(
                "lingertop_time_wait_overflow",
                "TIME_WAIT sockets the kernel did not create since start because tcp_max_tw_buckets was reached (TCPTimeWaitOverflow): their connections lost TIME_WAIT's protection.",
                None,
                o.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// What `serve` keeps between polls to expose closes from its source: the counters at
/// start and the processes already listed.
pub struct ClosesFeed {
    counters_start: Option<CounterCloses>,
    shown: Vec<u32>,
}

impl ClosesFeed {
    /// Starts from `closes`, reading the counters' baseline now.
    pub fn new(closes: &crate::events::Closes) -> Self {
        let counters_start = match closes {
            crate::events::Closes::Counters(b) => Some(b.at_start),
            crate::events::Closes::Kernel(_) => crate::events::counters::read().ok(),
        };
        ClosesFeed {
            counters_start,
            shown: Vec::new(),
        }
    }

    /// The closes of `closes` as they stand now.
    pub fn exposition(&mut self, closes: &crate::events::Closes, top_n: usize) -> ClosesExposition {
        use std::sync::atomic::Ordering::Relaxed;
        let kernel = match closes {
            crate::events::Closes::Kernel(k) => {
                let s = k.shared();
                let lost = s.lost.load(Relaxed) + s.queue_dropped.load(Relaxed);
                Some(KernelCloses::of(&s.tally(), top_n, &mut self.shown, lost))
            }
            crate::events::Closes::Counters(_) => None,
        };
        let counters = self.counters_start.and_then(|start| {
            crate::events::counters::read()
                .ok()
                .map(|now| now.since(&start))
        });
        ClosesExposition {
            source: closes.source(),
            kernel,
            counters,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::{Close, CloseOwner, ResetReason};
    use std::sync::Arc;

    /// An exposition with every closes family: kernel events and counters.
    pub(crate) fn both_sources() -> ClosesExposition {
        let mut tally = CloseTally::default();
        for (pid, kind, reason) in [
            (1, CloseKind::ResetSent, Some(ResetReason::Linger0)),
            (1, CloseKind::ResetSent, Some(ResetReason::Linger0)),
            (2, CloseKind::GracefulPassive, None),
        ] {
            tally.add(&Close {
                kind,
                reason,
                owner: Some(CloseOwner {
                    pid,
                    name: Arc::from(format!("p{pid}")),
                }),
                owner_via_listener: false,
                local: None,
                remote: None,
                cookie: 0,
                netns: 0,
                lifetime_ns: None,
                states: vec![],
                linger_ticks: None,
                at_ns: 0,
                action: None,
            });
        }
        ClosesExposition {
            source: CloseSource::Kernel,
            kernel: Some(KernelCloses::of(&tally, 1, &mut Vec::new(), 5)),
            counters: Some(CounterCloses {
                time_wait_overflow: 7,
                ..CounterCloses::default()
            }),
        }
    }

    #[test]
    fn closes_by_kind_by_process_top_n_plus_other_and_the_counters() {
        #[derive(Debug)]
        struct Only(ClosesExposition);
        impl prometheus_client::collector::Collector for Only {
            fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
                self.0.encode(&mut enc)
            }
        }
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Only(both_sources())));
        // The samples read the same in the OpenMetrics text the crate writes and in the
        // classic form `prometheus/` derives from it.
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        for line in [
            r#"lingertop_closes_source{source="kernel"} 1"#,
            r#"lingertop_closes_source{source="counters"} 0"#,
            r#"lingertop_closes_total{kind="reset-sent"} 2"#,
            r#"lingertop_closes_total{kind="graceful-passive"} 1"#,
            r#"lingertop_resets_sent_total{reason="linger-0"} 2"#,
            r#"lingertop_process_closes_total{pid="1",process="p1",kind="reset-sent"} 2"#,
            r#"lingertop_process_closes_total{pid="",process="other",kind="graceful-passive"} 1"#,
            r#"lingertop_process_resets_sent_total{pid="1",process="p1",reason="linger-0"} 2"#,
            r#"lingertop_process_resets_sent_total{pid="1",process="p1",reason="unread-data"} 0"#,
            r#"lingertop_process_resets_sent_total{pid="",process="other",reason="linger-0"} 0"#,
            "lingertop_events_lost_total 5",
            r#"lingertop_kernel_tcp_events_total{counter="TCPTimeWaitOverflow"} 7"#,
            "lingertop_time_wait_overflow_total 7",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
    }
}
