//! `lingertop watch`: the live poll loop written to stdout as NDJSON, one line per poll
//! (counts and alerts) or, with `--events`, one line per observed state transition. Each
//! line is flushed as written; the stream ends quietly on Ctrl-C, SIGTERM or when the
//! reader closes the pipe.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use rustc_hash::FxHashMap;
use tokio::sync::mpsc;

use super::closes::{CloseFeed, close_matches};
use super::settings::Watch;
use crate::config::Config;
use crate::events::{self, Closes, EventsMode};
use crate::live::{self, Message, Update};
use crate::model::close_stats::CloseStats;
use crate::model::{
    Alert, Close, Connection, CounterCloses, Filter, NetnsChoice, NetnsId, NetnsTable, Rules,
    StateCounts, Transition, Tuple,
};
use crate::report::ndjson::{self, PollView};
use crate::resolve::{Known, Names, Resolver};
use crate::shutdown::Shutdown;

/// Runs `lingertop watch` until interrupted or until stdout is closed.
pub fn run(cfg: Config, args: &Watch) -> Result<ExitCode> {
    let filter = cfg.default_filter.clone();
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;
        // Without `--events`, the counters alone: they judge `time-wait-overflow`, and
        // loading eBPF is left to those who ask for closes. Started before the poll loop,
        // which names owners by the events too.
        let mode = args.events.unwrap_or(EventsMode::Off);
        let mut closes = KernelCloses::start(mode, &cfg.netns, cfg.interval, &cfg.rules)?;
        let (tx, mut rx) = mpsc::channel(4);
        // Dropped on return: stops the poll thread and waits for it.
        // The loop runs the alert rules over the filtered set, so a line's alerts are about
        // the connections it counts.
        let _live = live::spawn(
            super::open_collector(cfg.backend, &cfg.netns, args.quiet)?,
            &cfg,
            super::live_scope(filter.clone(), closes.feed.owners()),
            tx,
        )
        .context("cannot start the poll thread")?;
        let mut stream = Stream::new(filter, args.events.is_some());
        if args.resolve {
            let resolver = Resolver::system(cfg.resolve.timeout)
                .inspect_err(|why| {
                    crate::stderr::say!("lingertop: {why}; every remote_name is null")
                })
                .ok();
            stream = stream.with_names(resolver);
        }
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        let stdout = io::stdout();
        let mut out = stdout.lock();
        loop {
            let msg = tokio::select! {
                _ = shutdown.requested() => return Ok(ExitCode::SUCCESS),
                msg = rx.recv() => msg,
                // Closes wait (queued) for the first poll: its namespaces name theirs.
                _ = tick.tick(), if closes.is_kernel() && stream.polls > 0 => {
                    if let Err(e) = closes.write_kernel(&stream, &mut out) {
                        if e.kind() == io::ErrorKind::BrokenPipe {
                            return Ok(ExitCode::SUCCESS);
                        }
                        return Err(e).context("cannot write to stdout");
                    }
                    continue;
                }
            };
            let update = match msg {
                Some(Message::Update(u)) => u,
                Some(Message::PollFailed(e)) => {
                    stream.poll_errors += 1;
                    if stream.polls == 0 {
                        // The very first read failed: a setup problem, not a passing one.
                        bail!("{e}");
                    }
                    crate::stderr::say!(
                        "lingertop: {e}; trying again in {}",
                        crate::model::duration::compact(cfg.interval)
                    );
                    continue;
                }
                // watch asks for no close.
                Some(Message::Closed(_)) => continue,
                None => bail!("the poll thread stopped unexpectedly"),
            };
            let written = if stream.events {
                stream.write_update(&update, &mut out).and_then(|()| {
                    // The counters cover the whole namespace: with a filter they would speak
                    // of connections the filter leaves out.
                    if stream.filter.is_empty() {
                        closes.write_counters(&mut out)?;
                    }
                    closes.write_alerts(&update, &mut out)
                })
            } else {
                stream.close_alerts = closes.judge(&update);
                stream.write_update(&update, &mut out)
            };
            match written {
                Ok(()) => {}
                // The reader went away (`| head`): nothing left to say to it.
                Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
                Err(e) => return Err(e).context("cannot write to stdout"),
            }
            if stream.polls == 1 && !args.quiet && stream.events {
                let c = &closes.feed;
                let note = c.note.as_ref().map(|n| format!(" ({n})")).unwrap_or_default();
                crate::stderr::say!(
                    "lingertop: first poll saw {} sockets; printing state transitions, and closes from {}{note}, from now on (Ctrl-C to stop)",
                    update.snapshot.connections.len(),
                    c.source.described(),
                );
            }
        }
    })
}

/// The closes of `watch`: with `--events`, their lines (the kernel's closes as they come when
/// its events are in use, and the counters' closes at each poll) and the close rules' alerts
/// as `alert` lines; without, the close rules the counters can judge (`time-wait-overflow`)
/// in each poll line's alerts.
struct KernelCloses {
    feed: CloseFeed,
    /// The window the close rules run over, filled with the closes the filter matches.
    stats: CloseStats,
    counters_start: Option<CounterCloses>,
    counters_last: Option<(CounterCloses, std::time::Instant)>,
    lost_said: u64,
    /// The close alerts of the last poll, to say when one starts, changes or ends.
    firing: Vec<Alert>,
}

impl KernelCloses {
    fn start(
        mode: EventsMode,
        netns: &NetnsChoice,
        interval: std::time::Duration,
        rules: &Rules,
    ) -> Result<Self> {
        let (feed, stats) = CloseFeed::start(mode, netns, interval, rules)?;
        let start = events::counters::read().ok();
        Ok(KernelCloses {
            feed,
            stats,
            counters_start: start,
            counters_last: start.map(|c| (c, std::time::Instant::now())),
            lost_said: 0,
            firing: Vec::new(),
        })
    }

    fn is_kernel(&self) -> bool {
        matches!(self.feed.source, Closes::Kernel(_))
    }

    fn write_kernel(&mut self, stream: &Stream, out: &mut dyn Write) -> io::Result<()> {
        let closes = self.feed.drain();
        let matching: Vec<&Close> = closes.iter().filter(|c| stream.close_matches(c)).collect();
        self.stats.add_closes(matching.iter().copied());
        for c in matching {
            let names = stream.names_for(c.remote.iter().map(|r| r.ip()));
            ndjson::write_close(
                out,
                c,
                stream.netns_name(c.netns),
                events::wall_time(c.at_ns),
                names.as_ref(),
            )?;
            out.flush()?;
        }
        let lost = self.feed.lost();
        if lost > self.lost_said {
            self.lost_said = lost;
            ndjson::write_lost(out, std::time::SystemTime::now(), lost)?;
            out.flush()?;
        }
        Ok(())
    }

    /// The close rules over the window up to now, with the counters `u` read.
    fn judge(&mut self, u: &Update) -> Vec<Alert> {
        self.feed.judge(&mut self.stats, Some(&u.snapshot))
    }

    /// An `alert` line for each close alert that started or changed severity since the last
    /// call, and a `resolved` one for each that ended.
    fn write_alerts(&mut self, u: &Update, out: &mut dyn Write) -> io::Result<()> {
        let now = self.judge(u);
        let source = self.feed.source.source().name();
        let time = std::time::SystemTime::now();
        let same = |a: &Alert, b: &Alert| a.rule == b.rule && a.pid == b.pid;
        for a in &now {
            if !self
                .firing
                .iter()
                .any(|f| same(f, a) && f.severity == a.severity)
            {
                ndjson::write_alert(out, time, source, "firing", a)?;
            }
        }
        for f in &self.firing {
            if !now.iter().any(|a| same(f, a)) {
                ndjson::write_alert(out, time, source, "resolved", f)?;
            }
        }
        self.firing = now;
        out.flush()
    }

    fn write_counters(&mut self, out: &mut dyn Write) -> io::Result<()> {
        let (Some(start), Some((last, last_at))) = (self.counters_start, self.counters_last) else {
            return Ok(());
        };
        let Ok(now) = events::counters::read() else {
            return Ok(());
        };
        let since_last = now.since(&last);
        self.counters_last = Some((now, std::time::Instant::now()));
        if since_last == CounterCloses::default() {
            return Ok(());
        }
        ndjson::write_counters(
            out,
            std::time::SystemTime::now(),
            &now.since(&start),
            &since_last,
            last_at.elapsed().as_secs_f64(),
        )?;
        out.flush()
    }
}

/// Turns updates into lines: the state a stream keeps between polls. The updates' alerts
/// must be over the same filter (the live loop's [`Scope`](live::Scope)).
pub struct Stream {
    filter: Filter,
    filter_text: String,
    events: bool,
    /// The close rules' alerts to add to the next poll line's (the live loop judges the
    /// socket table; the closes are judged beside it).
    pub close_alerts: Vec<Alert>,
    /// The namespaces of the last poll, to name the namespace of a close.
    netns: std::sync::Arc<NetnsTable>,
    /// Updates written so far.
    pub polls: u64,
    /// Polls that failed so far.
    pub poll_errors: u64,
    /// `--resolve`: lines carry `remote_name`, from this resolver (none: it could not
    /// start, and every name is null).
    names: Option<Option<Resolver>>,
}

impl Stream {
    /// A stream of poll lines, or of event lines when `events`.
    pub fn new(filter: Filter, events: bool) -> Self {
        Stream {
            filter_text: filter.to_string(),
            filter,
            events,
            close_alerts: Vec::new(),
            netns: std::sync::Arc::default(),
            polls: 0,
            poll_errors: 0,
            names: None,
        }
    }

    /// The stream with `remote_name` on its lines, from `resolver`.
    pub fn with_names(mut self, resolver: Option<Resolver>) -> Self {
        self.names = Some(resolver);
        self
    }

    /// The names of `ips` known now (each not yet known is asked for, never waited for);
    /// `None` without `--resolve`.
    fn names_for(&self, ips: impl Iterator<Item = std::net::IpAddr>) -> Option<Names> {
        let resolver = self.names.as_ref()?;
        let mut names = Names::default();
        for ip in ips {
            let known = resolver.as_ref().map_or(Known::NoName, |r| r.want(ip));
            names.insert(ip, known);
        }
        Some(names)
    }

    /// Writes the lines of one update, flushing after each.
    pub fn write_update(&mut self, u: &Update, out: &mut dyn Write) -> io::Result<()> {
        self.polls += 1;
        self.netns = std::sync::Arc::clone(&u.snapshot.netns);
        if self.events {
            self.write_events(u, out)
        } else {
            self.write_poll(u, out)
        }
    }

    fn write_poll(&mut self, u: &Update, out: &mut dyn Write) -> io::Result<()> {
        let snap = &u.snapshot;
        let (counts, matched) = if self.filter.is_empty() {
            (snap.counts(), snap.connections.len())
        } else {
            let mut counts = StateCounts::default();
            let mut matched = 0;
            for c in snap
                .connections
                .iter()
                .filter(|c| self.filter.matches_in(c, &snap.netns))
            {
                counts.add(c.state);
                matched += 1;
            }
            (counts, matched)
        };
        let alerts: Vec<Alert> = if self.close_alerts.is_empty() {
            u.alerts.clone()
        } else {
            let mut all: Vec<Alert> = u.alerts.iter().chain(&self.close_alerts).cloned().collect();
            all.sort_by_key(|a| std::cmp::Reverse(a.severity));
            all
        };
        let names = self.names_for(alerts.iter().filter_map(|a| a.remote.map(|r| r.ip())));
        let view = PollView {
            update: u,
            filter: &self.filter_text,
            counts,
            matched,
            alerts: &alerts,
            poll_errors: self.poll_errors,
            names: names.as_ref(),
        };
        ndjson::write_poll(out, &view)?;
        out.flush()
    }

    fn write_events(&mut self, u: &Update, out: &mut dyn Write) -> io::Result<()> {
        if u.transitions.is_empty() {
            return Ok(());
        }
        // The connections as this poll saw them, for owners and attribution.
        type Key = (SocketAddr, SocketAddr, NetnsId, crate::model::TcpState);
        let now: FxHashMap<Key, &Connection> = u
            .snapshot
            .connections
            .iter()
            .map(|c| ((c.local(), c.remote(), c.netns(), c.state), c))
            .collect();
        let netns = &u.snapshot.netns;
        for t in &u.transitions {
            let current =
                t.to.and_then(|to| now.get(&(t.local, t.remote, t.netns, to)).copied());
            if self.event_matches(t, current, netns) {
                let names = self.names_for(std::iter::once(t.remote.ip()));
                ndjson::write_event(out, t, current, netns, names.as_ref())?;
                out.flush()?;
            }
        }
        Ok(())
    }

    /// A close matches when its connection, as last seen and owned, matches the filter in
    /// CLOSE.
    fn close_matches(&self, c: &Close) -> bool {
        close_matches(&self.filter, &self.netns, c)
    }

    /// The name of the namespace of inode `inode`, where more than one is read.
    fn netns_name(&self, inode: u32) -> Option<&str> {
        self.netns.by_inode(u64::from(inode)).map(|n| &*n.name)
    }

    /// A transition matches when the connection matches the filter in the state it left
    /// or in the state it entered (so `--state time-wait` shows both the arrival in
    /// TIME_WAIT and the disappearance out of it).
    fn event_matches(
        &self,
        t: &Transition,
        current: Option<&Connection>,
        netns: &NetnsTable,
    ) -> bool {
        if self.filter.is_empty() {
            return true;
        }
        [t.from, t.to].into_iter().flatten().any(|state| {
            let mut c = current.cloned().unwrap_or_else(|| {
                let mut c = Connection::on(Tuple::in_netns(t.local, t.remote, t.netns), state);
                c.owners = t.owner.iter().cloned().collect();
                c
            });
            c.state = state;
            self.filter.matches_in(&c, netns)
        })
    }
}

#[cfg(test)]
#[path = "watch_resolve_tests.rs"]
mod resolve_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::connection::{Owner, Snapshot};
    use crate::model::{Attribution, TcpState, Tracker};
    use serde_json::Value;
    use std::time::{Duration, SystemTime};

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs)
    }

    fn conn(local: &str, remote: &str, state: TcpState, inode: u32) -> Connection {
        let mut c = Connection::new(local.parse().unwrap(), remote.parse().unwrap(), state);
        c.inode = inode;
        if inode != 0 {
            c.owners = vec![Owner {
                pid: 42,
                name: Some("client".into()),
            }]
            .into();
            c.attribution = Some(Attribution::Owner);
        }
        c
    }

    /// Feeds successive tables through a real tracker, as the poll loop does.
    fn updates(tables: Vec<Vec<Connection>>) -> Vec<Update> {
        updates_over(tables, &Filter::default(), &Config::default())
    }

    /// As [`updates`], with the alert rules of `cfg` run over `filter` as the poll loop
    /// does for `watch`.
    fn updates_over(tables: Vec<Vec<Connection>>, filter: &Filter, cfg: &Config) -> Vec<Update> {
        let mut tracker = Tracker::new(10);
        let mut labs = crate::lab::LabRecogniser::default();
        tables
            .into_iter()
            .enumerate()
            .map(|(i, connections)| {
                let snapshot = Snapshot {
                    poll_duration: Duration::from_millis(3),
                    ..Snapshot::fixture(at(i as u64), connections)
                };
                Update::observe_over(&mut tracker, snapshot, &cfg.rules, filter, 0, &mut labs)
            })
            .collect()
    }

    pub(super) fn lines(stream: &mut Stream, updates: &[Update]) -> Vec<Value> {
        let mut out = Vec::new();
        for u in updates {
            stream.write_update(u, &mut out).unwrap();
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub(super) fn close_sequence() -> Vec<Update> {
        let c = "127.0.0.1:40000";
        let s = "127.0.0.1:5000";
        let other = conn(
            "127.0.0.1:40001",
            "127.0.0.1:6000",
            TcpState::Established,
            9,
        );
        updates(vec![
            vec![other.clone()],
            vec![other.clone(), conn(c, s, TcpState::Established, 7)],
            vec![other.clone(), conn(c, s, TcpState::FinWait2, 7)],
            vec![conn(c, s, TcpState::TimeWait, 0)],
            vec![],
        ])
    }

    #[test]
    fn events_follow_one_connection_through_its_close() {
        let filter = Filter::parse("port:5000").unwrap();
        let got = lines(&mut Stream::new(filter, true), &close_sequence());
        let seq: Vec<(&str, Value, Value, Value)> = got
            .iter()
            .map(|l| {
                (
                    l["event"].as_str().unwrap(),
                    l["from"].clone(),
                    l["to"].clone(),
                    l["pid"].clone(),
                )
            })
            .collect();
        assert_eq!(
            seq,
            vec![
                ("appeared", Value::Null, "ESTABLISHED".into(), 42.into()),
                (
                    "changed",
                    "ESTABLISHED".into(),
                    "FIN_WAIT_2".into(),
                    42.into()
                ),
                (
                    "changed",
                    "FIN_WAIT_2".into(),
                    "TIME_WAIT".into(),
                    42.into()
                ),
                ("vanished", "TIME_WAIT".into(), Value::Null, 42.into()),
            ]
        );
        assert_eq!(got[2]["attribution"], "last-owner", "{}", got[2]);
        assert_eq!(got[0]["attribution"], "owner");
        assert_eq!(got[0]["local"], "127.0.0.1:40000");
        assert_eq!(got[0]["time"], "2027-01-15T08:00:01.000Z");
    }

    #[test]
    fn a_state_filter_keeps_transitions_into_and_out_of_that_state() {
        let filter = Filter::parse("state:time-wait").unwrap();
        let got = lines(&mut Stream::new(filter, true), &close_sequence());
        let seq: Vec<(&str, &str)> = got
            .iter()
            .map(|l| (l["event"].as_str().unwrap(), l["local"].as_str().unwrap()))
            .collect();
        assert_eq!(
            seq,
            vec![
                ("changed", "127.0.0.1:40000"),
                ("vanished", "127.0.0.1:40000")
            ]
        );
        // Without a filter the other connection's disappearance shows too.
        let all = lines(&mut Stream::new(Filter::default(), true), &close_sequence());
        assert_eq!(all.len(), 5);
    }

    #[test]
    fn poll_lines_count_the_filtered_set() {
        let filter = Filter::parse("port:5000").unwrap();
        let got = lines(&mut Stream::new(filter, false), &close_sequence());
        assert_eq!(got.len(), 5, "one line per poll");
        assert_eq!(got[2]["seq"], 3);
        assert_eq!(got[2]["total_connections"], 2);
        assert_eq!(got[2]["matched_connections"], 1);
        assert_eq!(got[2]["counts"]["FIN_WAIT_2"], 1);
        assert_eq!(got[2]["counts"]["ESTABLISHED"], 0);
        assert_eq!(got[2]["filter"], "port:5000");
        assert_eq!(got[2]["alerts"], Value::Array(Vec::new()));
        assert_eq!(got[2]["carried_states"], serde_json::json!([]));
        assert_eq!(got[2]["carried_as_of"], Value::Null);
    }

    #[test]
    fn poll_lines_say_which_states_were_carried_and_as_of_when() {
        let mut u = close_sequence().remove(2);
        let mut snap = (*u.snapshot).clone();
        snap.unread = Some(crate::model::Unread {
            states: vec![TcpState::Established],
            last_read: Some(at(1)),
            found_owners: Vec::new(),
        });
        u.snapshot = std::sync::Arc::new(snap);
        let got = lines(&mut Stream::new(Filter::default(), false), &[u]);
        assert_eq!(got[0]["carried_states"], serde_json::json!(["ESTABLISHED"]));
        assert_eq!(
            got[0]["carried_as_of"],
            crate::report::timestamp(at(1)).as_str()
        );
    }

    #[test]
    fn poll_lines_carry_alerts_over_the_filtered_set() {
        let mut cfg = Config::default();
        cfg.rules.close_wait.min_age = Duration::ZERO;
        let cw = |port: u16, inode| {
            conn(
                &format!("127.0.0.1:{port}"),
                "127.0.0.1:40000",
                TcpState::CloseWait,
                inode,
            )
        };
        let filter = Filter::parse("port:6000").unwrap();
        // The poll loop runs the rules over watch's filter (its `Scope`).
        let ups = updates_over(
            vec![
                vec![cw(5000, 1), cw(6000, 2)],
                vec![cw(5000, 1), cw(6000, 2)],
            ],
            &filter,
            &cfg,
        );
        let got = lines(&mut Stream::new(filter, false), &ups);
        let alert = &got[1]["alerts"][0];
        assert_eq!(alert["rule"], "close-wait-lingering");
        assert_eq!(alert["count"], 1, "only the filtered connection: {alert}");
        assert_eq!(alert["pid"], 42);
    }

    #[test]
    fn a_closed_pipe_surfaces_as_broken_pipe() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let ups = close_sequence();
        let mut s = Stream::new(Filter::default(), false);
        let e = s.write_update(&ups[0], &mut Closed).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
    }
}
