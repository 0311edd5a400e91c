//! The snapshot as one JSON document: the documented shape, connections serialised one at a
//! time as they are written.

use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{AddrText, AlertFields, PRESSURE_LISTED, SnapshotView, addr, remote_name, timestamp};
use crate::model::{
    AgeSource, Alert, Attribution, Connection, NetnsTable, PortRange, Snapshot, StateCounts,
    TcpState,
};
use crate::resolve::Names;

/// How many connections each alert lists in JSON (the count is always complete).
const ALERT_CONNECTIONS_LISTED: usize = 100;

#[derive(Serialize)]
struct JsonSnapshot<'a> {
    taken_at: String,
    host: &'a str,
    backend: &'static str,
    polls: u64,
    interval_secs: Option<f64>,
    process_info: &'static str,
    process_info_reason: Option<&'a str>,
    filter: &'a str,
    total_connections: usize,
    counts: StateCounts,
    ephemeral_ports: PortRangeJson,
    port_pressure: Vec<PressureJson<'a>>,
    alerts: Vec<AlertJson<'a>>,
    /// The network namespaces read, with the connections shown in each.
    netns: Vec<NetnsJson<'a>>,
    #[serde(skip_serializing_if = "ConnectionsJson::by_hand")]
    connections: ConnectionsJson<'a>,
}

#[derive(Serialize)]
struct NetnsJson<'a> {
    name: &'a str,
    kind: &'static str,
    inode: u64,
    pid: Option<u32>,
    connections: usize,
}

/// The connections, serialised one at a time as the JSON is written rather than gathered
/// into a vector first (at 100k connections that vector alone is tens of megabytes).
struct ConnectionsJson<'a> {
    connections: &'a [Connection],
    now: SystemTime,
    netns: &'a NetnsTable,
    names: Option<&'a Names>,
    /// Left out of the serde document: [`write_compact`] writes them after it.
    by_hand: bool,
}

impl ConnectionsJson<'_> {
    fn by_hand(&self) -> bool {
        self.by_hand
    }
}

impl Serialize for ConnectionsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            self.connections
                .iter()
                .map(|c| connection_json(c, self.now, self.netns, self.names)),
        )
    }
}

#[derive(Serialize)]
pub(super) struct PortRangeJson {
    low: u16,
    high: u16,
    size: u32,
}

#[derive(Serialize)]
pub(super) struct PressureJson<'a> {
    local_ip: IpAddr,
    remote: String,
    /// With `--resolve`: the destination's name, or null.
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_name: Option<Option<&'a str>>,
    in_use: u32,
    time_wait: u32,
    /// `in_use` over `range_size`, the ephemeral range of the namespace (`netns`).
    ratio: f64,
    range_size: u32,
    netns: Option<&'a str>,
}

#[derive(Serialize)]
pub(super) struct AlertJson<'a> {
    #[serde(flatten)]
    fields: AlertFields<'a>,
    /// The first connections behind the alert (at most 100; `count` has them all).
    connections: Vec<ConnRef<'a>>,
}

#[derive(Serialize)]
struct ConnRef<'a> {
    state: TcpState,
    local: String,
    remote: String,
    netns: Option<&'a str>,
}

/// An address as a JSON string, `127.0.0.1:80` or `[::1]:80` as [`addr`] spells it, written
/// straight into the output: no `String` per address (two per connection).
pub(super) struct AddrJson(SocketAddr);

impl Serialize for AddrJson {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // serde_json passes the text through the formatter's escaping like any string.
        s.collect_str(&self.0)
    }
}

/// A connection's owners' pids as a JSON array, without collecting them first.
pub(super) struct PidsJson<'a>(&'a [crate::model::Owner]);

impl Serialize for PidsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().map(|o| o.pid))
    }
}

#[derive(Serialize)]
pub(super) struct ConnectionJson<'a> {
    pub(super) state: TcpState,
    pub(super) local: AddrJson,
    pub(super) remote: AddrJson,
    /// The remote address's name, with `--resolve`: null where it has none (or none came
    /// in time); absent without.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) remote_name: Option<Option<&'a str>>,
    /// The network namespace's name (`host`, a container's); null where the backend reads
    /// only its own.
    pub(super) netns: Option<&'a str>,
    pub(super) pid: Option<u32>,
    pub(super) process: Option<&'a str>,
    /// Every process holding the socket (several after fork or fd passing).
    pub(super) pids: PidsJson<'a>,
    pub(super) user: Option<&'a str>,
    pub(super) uid: Option<u32>,
    pub(super) inode: u32,
    pub(super) attribution: Option<&'static str>,
    pub(super) state_age_secs: Option<f64>,
    /// How the age is known: `kernel` (a kernel clock: at least this), `observed`
    /// (lingertop saw the state begin, within one interval), `first-sight` (counted from
    /// lingertop's first poll that saw it: at least this); null with no age.
    pub(super) state_age_from: Option<&'static str>,
    /// The states seen before the current one, oldest first.
    pub(super) previous_states: Vec<TcpState>,
    /// One of the close lab's own sockets.
    pub(super) lab: bool,
    /// The kernel timer on the socket (netlink backend; null when none runs).
    pub(super) timer: Option<TimerJson>,
    /// Receive and send queues in bytes (for LISTEN: pending accepts and the backlog);
    /// null where the backend cannot see them.
    pub(super) recv_q: Option<u32>,
    pub(super) send_q: Option<u32>,
}

#[derive(Serialize)]
pub(super) struct TimerJson {
    /// `on`, `keepalive`, `timewait` or `persist`, as `ss -o` names them.
    pub(super) kind: &'static str,
    pub(super) expires_ms: u64,
    pub(super) retransmits: u8,
}

pub(super) fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

pub(super) fn connection_json<'a>(
    c: &'a Connection,
    now: SystemTime,
    netns: &'a NetnsTable,
    names: Option<&'a Names>,
) -> ConnectionJson<'a> {
    let owner = c.owner();
    ConnectionJson {
        state: c.state,
        local: AddrJson(c.local()),
        remote: AddrJson(c.remote()),
        remote_name: remote_name(names, &c.remote()),
        netns: netns.name(c.netns()),
        pid: owner.map(|o| o.pid),
        process: owner.and_then(|o| o.name.as_deref()),
        pids: PidsJson(&c.owners),
        user: c.user_name(),
        uid: c.uid(),
        inode: c.inode,
        attribution: c.attribution.map(|a| a.name()),
        state_age_secs: c.state_age(now).map(secs),
        state_age_from: c.age_source(now).map(AgeSource::name),
        previous_states: c
            .tracking
            .as_ref()
            .map(|t| t.previous().map(|(s, _)| s).collect())
            .unwrap_or_default(),
        lab: c.lab,
        timer: c.timer.map(|t| TimerJson {
            kind: t.kind.name(),
            expires_ms: u64::from(t.expires_ms),
            retransmits: t.retransmits,
        }),
        recv_q: c.recv_q(),
        send_q: c.send_q(),
    }
}

impl PortRangeJson {
    pub(super) fn of(range: PortRange) -> Self {
        PortRangeJson {
            low: range.low,
            high: range.high,
            size: range.len(),
        }
    }
}

/// Why process information is partial, where it is.
pub(super) fn process_info_reason(s: &Snapshot) -> Option<&str> {
    match &s.process_info {
        crate::model::ProcessInfo::Partial { reason } => Some(reason),
        crate::model::ProcessInfo::Full => None,
    }
}

/// The top destinations by ephemeral ports in use.
pub(super) fn port_pressure_json<'a>(v: &SnapshotView<'a>) -> Vec<PressureJson<'a>> {
    v.pressure
        .iter()
        .take(PRESSURE_LISTED)
        .map(|p| PressureJson {
            local_ip: p.local_ip,
            remote: addr(&p.remote),
            remote_name: remote_name(v.names, &p.remote),
            in_use: p.in_use,
            time_wait: p.time_wait,
            ratio: p.ratio,
            range_size: p.range_size,
            netns: v.snapshot.netns.name(p.netns),
        })
        .collect()
}

/// An alert with the first connections behind it.
pub(super) fn alert_json<'a>(
    a: &'a Alert,
    s: &'a Snapshot,
    names: Option<&'a Names>,
) -> AlertJson<'a> {
    AlertJson {
        fields: AlertFields::named(a, names),
        connections: a
            .connections
            .iter()
            .take(ALERT_CONNECTIONS_LISTED)
            .map(|&i| {
                let c = &s.connections[i];
                ConnRef {
                    state: c.state,
                    local: addr(&c.local()),
                    remote: addr(&c.remote()),
                    netns: s.netns.name(c.netns()),
                }
            })
            .collect(),
    }
}

fn to_json<'a>(v: &'a SnapshotView<'a>, by_hand: bool) -> JsonSnapshot<'a> {
    let s = v.snapshot;
    let range: PortRange = s.ephemeral_ports;
    JsonSnapshot {
        taken_at: timestamp(s.taken_at),
        host: &s.host,
        backend: v.backend,
        polls: v.polls,
        interval_secs: v.interval.map(secs),
        process_info: s.process_info.name(),
        process_info_reason: process_info_reason(s),
        filter: &v.filter,
        total_connections: v.total_connections,
        counts: s.counts(),
        ephemeral_ports: PortRangeJson::of(range),
        port_pressure: port_pressure_json(v),
        alerts: v.alerts.iter().map(|a| alert_json(a, s, v.names)).collect(),
        netns: s
            .netns
            .iter()
            .map(|n| NetnsJson {
                name: &n.name,
                kind: n.kind.key(),
                inode: n.inode,
                pid: n.pid,
                connections: s.connections.iter().filter(|c| c.netns() == n.id).count(),
            })
            .collect(),
        connections: ConnectionsJson {
            connections: &s.connections,
            now: s.taken_at,
            netns: &s.netns,
            names: v.names,
            by_hand,
        },
    }
}

/// Writes the snapshot as JSON and a newline: indented when `pretty` (for a person at a
/// terminal), else compact (a third of the bytes, for scripts).
pub(super) fn write<W: Write>(
    v: &SnapshotView<'_>,
    pretty: bool,
    ahead: Option<RowsAhead<'_>>,
    out: &mut W,
) -> io::Result<()> {
    if pretty {
        crate::sanitize::json_to_writer_pretty(&mut *out, &to_json(v, false))
            .map_err(io::Error::from)?;
    } else {
        write_compact(v, ahead, out)?;
    }
    writeln!(out)
}

/// The compact document, the same bytes serde writes: the head through serde, then the
/// connections with their keys and punctuation written directly and each value through
/// serde. Escaping every constant key of 100k connections was a fifth of the time.
fn write_compact<W: Write>(
    v: &SnapshotView<'_>,
    ahead: Option<RowsAhead<'_>>,
    out: &mut W,
) -> io::Result<()> {
    let s = v.snapshot;
    // Rows started ahead are used only for the very snapshot they were started on, and
    // only without names (they are written without).
    let ahead = ahead.filter(|a| a.snapshot == std::ptr::from_ref(s) as usize && v.names.is_none());
    if ahead.is_none() && s.connections.len() > CHUNK {
        return std::thread::scope(|scope| {
            write_compact_with(v, RowsAhead::start(scope, s, v.names), out)
        });
    }
    write_compact_with(v, ahead, out)
}

fn write_compact_with<W: Write>(
    v: &SnapshotView<'_>,
    ahead: Option<RowsAhead<'_>>,
    out: &mut W,
) -> io::Result<()> {
    let mut head = Vec::new();
    crate::sanitize::json_to_writer(&mut head, &to_json(v, true)).map_err(io::Error::from)?;
    // The head ends with its object's `}`: the connections go in before it.
    head.pop();
    head.extend_from_slice(b",\"connections\":[");
    out.write_all(&head)?;
    let s = v.snapshot;
    let Some(ahead) = ahead else {
        let mut buf = Vec::with_capacity(1 << 16);
        rows_compact(s, v.names, &s.connections, true, &mut buf)?;
        buf.extend_from_slice(b"]}");
        return out.write_all(&buf);
    };
    // Both threads take the next chunk not yet taken; this one writes them all out in
    // order, the helper's as they arrive (it takes its chunks in order too, so they arrive
    // in order). The helper has taken every chunk before the one this thread takes that
    // this thread did not write already.
    let chunks: Vec<&[Connection]> = s.connections.chunks(CHUNK).collect();
    let mut written = 0;
    let mut mine = Vec::with_capacity(CHUNK * 360);
    loop {
        let i = ahead.next.fetch_add(1, Ordering::Relaxed);
        if let Some(chunk) = chunks.get(i) {
            mine.clear();
            rows_compact(s, v.names, chunk, i == 0, &mut mine)?;
        }
        while written < i.min(chunks.len()) {
            let (at, theirs) = ahead
                .rows
                .recv()
                .map_err(|_| io::Error::other("the JSON writer thread stopped"))?;
            let theirs = theirs?;
            debug_assert_eq!(at, written, "the helper's chunks arrive in order");
            out.write_all(&theirs)?;
            // The helper may have finished: then the buffer is simply dropped.
            let _ = ahead.back.try_send(theirs);
            written += 1;
        }
        if i >= chunks.len() {
            break;
        }
        out.write_all(&mine)?;
        written += 1;
    }
    ahead.finish()?;
    out.write_all(b"]}")
}

/// `rows` of `s` as compact JSON, comma separated (and led by one unless `first`).
fn rows_compact(
    s: &Snapshot,
    names: Option<&Names>,
    rows: &[Connection],
    first: bool,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    let mut w = RowWriter::new(s, names);
    for (i, c) in rows.iter().enumerate() {
        if i > 0 || !first {
            buf.push(b',');
        }
        w.row(buf, c)?;
    }
    Ok(())
}

/// A large snapshot's compact rows written on two threads: a helper thread and the caller
/// each take the next chunk of rows not yet taken, the helper into buffers of its own. The
/// helper starts as soon as the rows are in their final order, while the caller still works
/// out the alerts that go before them in the document, so it has written the first chunks
/// by the time the caller comes to them, and the two share the rest as they go. Bounded:
/// at most [`AHEAD`] written chunks (about 370 KB each) wait.
pub struct RowsAhead<'scope> {
    /// The address of the snapshot the rows are of (an address only, so that the rows can
    /// be started on another thread and handed over).
    snapshot: usize,
    /// The next chunk not yet taken by either thread.
    next: Arc<AtomicUsize>,
    /// The helper's chunks, with their places, in order.
    rows: std::sync::mpsc::Receiver<(usize, io::Result<Vec<u8>>)>,
    /// Written buffers go back to the helper to be filled again: new ones each time would
    /// be mapped, faulted in and unmapped (a TLB shootdown) every chunk.
    back: std::sync::mpsc::SyncSender<Vec<u8>>,
    helper: std::thread::ScopedJoinHandle<'scope, ()>,
}

/// Chunks the helper may have written before they are asked for.
const AHEAD: usize = 8;

impl<'scope> RowsAhead<'scope> {
    /// Starts writing chunks of `s`'s rows (with `names`, as the document will carry them)
    /// on a helper thread; `None` where there is one chunk or none, which one thread writes.
    pub fn start<'env>(
        scope: &'scope std::thread::Scope<'scope, 'env>,
        s: &'env Snapshot,
        names: Option<&'env Names>,
    ) -> Option<RowsAhead<'scope>> {
        if s.connections.len() <= CHUNK {
            return None;
        }
        let next = Arc::new(AtomicUsize::new(0));
        let (tx, rows) = std::sync::mpsc::sync_channel::<(usize, io::Result<Vec<u8>>)>(AHEAD);
        let (back, returned) = std::sync::mpsc::sync_channel::<Vec<u8>>(AHEAD + 1);
        let taking = Arc::clone(&next);
        let helper = scope.spawn(move || {
            loop {
                let i = taking.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = s.connections.chunks(CHUNK).nth(i) else {
                    return;
                };
                let mut buf = returned
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(CHUNK * 360));
                buf.clear();
                let done = rows_compact(s, names, chunk, i == 0, &mut buf).map(|()| buf);
                let failed = done.is_err();
                // The writer gave up (an error, a closed pipe): nothing more to write.
                if tx.send((i, done)).is_err() || failed {
                    return;
                }
            }
        });
        Some(RowsAhead {
            snapshot: std::ptr::from_ref(s) as usize,
            next,
            rows,
            back,
            helper,
        })
    }

    fn finish(self) -> io::Result<()> {
        drop(self.rows);
        self.helper
            .join()
            .map_err(|_| io::Error::other("the JSON writer thread panicked"))
    }
}

/// Rows a thread writes at a time when a large snapshot's rows are written on two: small
/// enough that neither thread waits long for the other at the end, and that the buffers
/// of the chunks written ahead (every page of them faulted in fresh) stay few megabytes.
const CHUNK: usize = 1024;

/// Writes connections as compact JSON, fields in [`ConnectionJson`]'s order, straight from
/// the [`Connection`]: numbers, `null`s, addresses and lingertop's own names (states, age
/// sources, timer kinds) are written here, and runs of constant keys and `null`s go in as
/// one piece; text from outside (namespace, process and user names) goes through serde
/// with lingertop's escaping once per distinct text, its bytes kept for the rows that
/// repeat it; the age, a float, is written as serde writes it ([`secs_json`]). Every byte is
/// what serde writes (`compact_json_by_hand_is_the_bytes_serde_writes` and the tests after
/// it).
struct RowWriter<'a> {
    /// The snapshot's time, as nanoseconds since the epoch.
    now: crate::model::connection::Nanos,
    netns: &'a NetnsTable,
    names: Option<&'a Names>,
    /// The JSON value of each namespace's name met so far, by id.
    netns_json: Vec<(crate::model::NetnsId, Vec<u8>)>,
    /// The last process name and user name written, by where their text lives (owners of
    /// one process share one name), with their JSON values.
    process_json: Escaped,
    user_json: Escaped,
}

/// A text's JSON value, kept for the text at `key` (its address and length).
#[derive(Default)]
struct Escaped {
    key: Option<(usize, usize)>,
    json: Vec<u8>,
}

impl Escaped {
    /// Appends `text`'s JSON value (a string, with lingertop's escaping), escaping it only
    /// when it is not the text met last.
    fn put(&mut self, b: &mut Vec<u8>, text: &str) -> io::Result<()> {
        let key = (text.as_ptr() as usize, text.len());
        if self.key != Some(key) {
            self.json.clear();
            crate::sanitize::json_to_writer(&mut self.json, text).map_err(io::Error::from)?;
            self.key = Some(key);
        }
        b.extend_from_slice(&self.json);
        Ok(())
    }
}

impl<'a> RowWriter<'a> {
    fn new(s: &'a Snapshot, names: Option<&'a Names>) -> Self {
        RowWriter {
            now: crate::model::connection::nanos(s.taken_at),
            netns: &s.netns,
            names,
            netns_json: Vec::new(),
            process_json: Escaped::default(),
            user_json: Escaped::default(),
        }
    }

    fn row(&mut self, b: &mut Vec<u8>, c: &Connection) -> io::Result<()> {
        b.extend_from_slice(b"{\"state\":\"");
        b.extend_from_slice(c.state.name().as_bytes());
        b.extend_from_slice(b"\",\"local\":\"");
        push_addr(b, &c.local());
        b.extend_from_slice(b"\",\"remote\":\"");
        push_addr(b, &c.remote());
        b.push(b'"');
        if let Some(name) = remote_name(self.names, &c.remote()) {
            field(b, "remote_name", &name)?;
        }
        b.extend_from_slice(b",\"netns\":");
        self.netns_value(b, c.netns())?;
        match c.owner() {
            None => b.extend_from_slice(b",\"pid\":null,\"process\":null,\"pids\":["),
            Some(o) => {
                b.extend_from_slice(b",\"pid\":");
                push_int(b, o.pid);
                b.extend_from_slice(b",\"process\":");
                match o.name.as_deref() {
                    Some(name) => self.process_json.put(b, name)?,
                    None => b.extend_from_slice(b"null"),
                }
                b.extend_from_slice(b",\"pids\":[");
            }
        }
        for (i, o) in c.owners.iter().enumerate() {
            if i > 0 {
                b.push(b',');
            }
            push_int(b, o.pid);
        }
        match &c.user {
            None => b.extend_from_slice(b"],\"user\":null,\"uid\":null,\"inode\":"),
            Some(u) => {
                b.extend_from_slice(b"],\"user\":");
                match u.name.as_deref() {
                    Some(name) => self.user_json.put(b, name)?,
                    None => b.extend_from_slice(b"null"),
                }
                b.extend_from_slice(b",\"uid\":");
                push_int(b, u.uid);
                b.extend_from_slice(b",\"inode\":");
            }
        }
        push_int(b, c.inode);
        b.extend_from_slice(match c.attribution {
            None => b",\"attribution\":null,\"state_age_secs\":",
            Some(Attribution::Owner) => b",\"attribution\":\"owner\",\"state_age_secs\":",
            Some(Attribution::LastOwner) => b",\"attribution\":\"last-owner\",\"state_age_secs\":",
            Some(Attribution::Listener) => b",\"attribution\":\"listener\",\"state_age_secs\":",
            Some(Attribution::Event) => b",\"attribution\":\"event\",\"state_age_secs\":",
            Some(Attribution::Pending) => b",\"attribution\":\"pending\",\"state_age_secs\":",
        });
        let age = c.state_age_at(self.now);
        match age {
            Some(d) => secs_json(b, d),
            None => b.extend_from_slice(b"null"),
        }
        own_name(
            b,
            "state_age_from",
            age.and(c.tracking.as_ref()).map(|t| t.source().name()),
        );
        let previous = c.tracking.as_ref().map(|t| t.previous());
        match previous {
            Some(p) if p.len() > 0 => {
                b.extend_from_slice(b",\"previous_states\":[");
                for (i, (s, _)) in p.enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    quoted(b, s.name());
                }
                b.push(b']');
            }
            _ => b.extend_from_slice(b",\"previous_states\":[]"),
        }
        b.extend_from_slice(if c.lab {
            b",\"lab\":true,\"timer\":"
        } else {
            b",\"lab\":false,\"timer\":"
        });
        match &c.timer {
            None => b.extend_from_slice(b"null"),
            Some(t) => {
                b.extend_from_slice(b"{\"kind\":");
                quoted(b, t.kind.name());
                b.extend_from_slice(b",\"expires_ms\":");
                push_int(b, t.expires_ms);
                b.extend_from_slice(b",\"retransmits\":");
                push_int(b, t.retransmits);
                b.push(b'}');
            }
        }
        number(b, "recv_q", c.recv_q());
        number(b, "send_q", c.send_q());
        b.push(b'}');
        Ok(())
    }

    /// The namespace's name as JSON (a string, or null where it has none).
    fn netns_value(&mut self, b: &mut Vec<u8>, id: crate::model::NetnsId) -> io::Result<()> {
        if let Some((_, json)) = self.netns_json.iter().find(|(i, _)| *i == id) {
            b.extend_from_slice(json);
            return Ok(());
        }
        let mut json = Vec::new();
        crate::sanitize::json_to_writer(&mut json, &self.netns.name(id))
            .map_err(io::Error::from)?;
        b.extend_from_slice(&json);
        self.netns_json.push((id, json));
        Ok(())
    }
}

/// An address as [`addr`] spells it; IPv4 written digit by digit.
fn push_addr(b: &mut Vec<u8>, sa: &SocketAddr) {
    b.extend_from_slice(AddrText::of(sa).as_bytes());
}

fn push_int<N: itoa::Integer>(b: &mut Vec<u8>, n: N) {
    b.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// `d` in seconds, rounded to the millisecond, as serde writes [`secs`]`(d)`: the shortest
/// decimal that reads back as that float, which for the float nearest `k / 1000` (`k`
/// whole milliseconds, fewer than 15 digits, so no other decimal of as few digits is nearer
/// it) is `k / 1000` itself, with at least one digit after the point. Longer ones (over
/// 3,000 years) go through serde.
pub(super) fn secs_json(b: &mut Vec<u8>, d: Duration) {
    let k = (d.as_secs_f64() * 1000.0).round();
    if k >= 1e14 {
        let _ = crate::sanitize::json_to_writer(&mut *b, &secs(d));
        return;
    }
    let k = k as u64;
    push_int(b, k / 1000);
    let ms = k % 1000;
    let digit = |n: u64| b'0' + (n % 10) as u8;
    let digits = [b'.', digit(ms / 100), digit(ms / 10), digit(ms)];
    let len = if ms % 100 == 0 {
        2
    } else if ms % 10 == 0 {
        3
    } else {
        4
    };
    b.extend_from_slice(&digits[..len]);
}

/// `,"key":`
fn key(b: &mut Vec<u8>, key: &str) {
    b.extend_from_slice(b",\"");
    b.extend_from_slice(key.as_bytes());
    b.extend_from_slice(b"\":");
}

/// `,"key":N` or `,"key":null`.
fn number<N: itoa::Integer>(b: &mut Vec<u8>, name: &str, n: Option<N>) {
    key(b, name);
    match n {
        Some(n) => b.extend_from_slice(itoa::Buffer::new().format(n).as_bytes()),
        None => b.extend_from_slice(b"null"),
    }
}

/// One of lingertop's own names, quoted: ASCII letters, digits, `_`, `-` and `/` only
/// (`own_names_need_no_escaping` checks every one), which JSON writes as they are.
fn quoted(b: &mut Vec<u8>, name: &str) {
    debug_assert!(needs_no_escape(name), "{name:?}");
    b.push(b'"');
    b.extend_from_slice(name.as_bytes());
    b.push(b'"');
}

/// `,"key":"name"` or `,"key":null`.
fn own_name(b: &mut Vec<u8>, name: &str, value: Option<&str>) {
    key(b, name);
    match value {
        Some(v) => quoted(b, v),
        None => b.extend_from_slice(b"null"),
    }
}

pub(super) fn needs_no_escape(name: &str) -> bool {
    name.bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'/'))
}

/// `,"key":value`, the value through serde with lingertop's escaping.
fn field<T: Serialize + ?Sized>(b: &mut Vec<u8>, name: &str, value: &T) -> io::Result<()> {
    key(b, name);
    crate::sanitize::json_to_writer(&mut *b, value).map_err(io::Error::from)
}

#[cfg(test)]
pub(super) fn write_compact_by_serde<W: Write>(
    v: &SnapshotView<'_>,
    out: &mut W,
) -> io::Result<()> {
    crate::sanitize::json_to_writer(&mut *out, &to_json(v, false)).map_err(io::Error::from)
}
