//! The recorder: each poll written as one transaction of deltas (a connection's row when it
//! is first seen, a change row when its state or owner changes, its end when a poll no
//! longer sees it), a keyframe of the poll's counts, the kernel's closes and the alerts as
//! they fire and resolve; then retention, by age and by size, in whole pieces.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{OptionalExtension, params};
use rustc_hash::FxHashMap;

use super::store::{StoreError, Writable, open_writable};
use crate::live::Update;
use crate::model::close::ResetReason;
use crate::model::{AgeSource, Alert, Attribution, Close, Connection, TcpState, Tuple};

/// How much a recording may keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retention {
    /// `--retain`: pieces whose newest poll is older than this are dropped.
    pub age: Option<Duration>,
    /// `--max-size`: the database plus its `-wal`, in bytes.
    pub max_size: Option<u64>,
}

/// What the recorder knows of a connection the last poll saw.
struct Live {
    id: i64,
    cookie: u64,
    state: TcpState,
    process: Option<i64>,
    attribution: Option<Attribution>,
    seen: i64,
    at: i64,
}

/// What identifies one alert from poll to poll.
#[derive(Clone, PartialEq, Eq)]
struct AlertKey {
    rule: &'static str,
    pid: Option<u32>,
    netns: Option<Arc<str>>,
    local: Option<IpAddr>,
    remote: Option<std::net::SocketAddr>,
}

impl AlertKey {
    fn of(a: &Alert) -> Self {
        AlertKey {
            rule: a.rule.name(),
            pid: a.pid,
            netns: a.netns.clone(),
            local: a.local_ip,
            remote: a.remote,
        }
    }
}

/// Writes polls into a recording.
pub struct Recorder {
    store: Writable,
    retention: Retention,
    run: i64,
    live: FxHashMap<Tuple, Live>,
    addrs: FxHashMap<IpAddr, i64>,
    processes: FxHashMap<(u32, Option<Arc<str>>), i64>,
    users: FxHashMap<u32, Option<Box<str>>>,
    netns: FxHashMap<u64, (i64, Arc<str>)>,
    open_alerts: Vec<(AlertKey, i64, u32)>,
    last_alerts: String,
    /// The piece being written and when it began.
    piece: Option<(i64, i64)>,
    /// Since when writes fail (a full disk): said once, a gap when they work again.
    failing: Option<i64>,
    last_poll_at: i64,
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn attribution_code(a: Option<Attribution>) -> Option<i64> {
    a.map(|a| a as i64)
}

fn age_code(s: AgeSource) -> i64 {
    s as i64
}

/// The `reason` column: 0 unread-data, 1 linger-0, 256 + the kernel's number otherwise.
pub(crate) fn reason_code(r: ResetReason) -> i64 {
    match r {
        ResetReason::UnreadData => 0,
        ResetReason::Linger0 => 1,
        ResetReason::Other(n) => 256 + i64::from(n),
    }
}

/// The alerts of one poll as the recording keeps them (and replay and `snapshot --from`
/// give them back).
#[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug, Clone)]
pub(crate) struct AlertRow {
    pub rule: String,
    pub severity: String,
    pub message: String,
    pub count: u32,
    pub pid: Option<u32>,
    pub process: Option<String>,
    pub local_ip: Option<IpAddr>,
    pub remote: Option<std::net::SocketAddr>,
    pub ratio: Option<f64>,
    pub growth_per_min: Option<f64>,
    pub netns: Option<String>,
    /// The recording's ids (`conn.id`) of the first connections behind it.
    pub conns: Vec<i64>,
}

const ALERT_CONNS_KEPT: usize = 100;

impl Recorder {
    /// Opens `path` (see [`open_writable`]) and starts a run: the connections the last run
    /// left open end where it stopped, and the time since is a gap.
    pub fn open(
        path: &Path,
        retention: Retention,
        interval: Duration,
        events: &str,
    ) -> Result<Self, StoreError> {
        let store = open_writable(path)?;
        let now = ns(SystemTime::now());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        let e = |why| StoreError::Sql {
            path: path.to_path_buf(),
            why,
        };
        let db = &store.db;
        let last: Option<(i64, i64)> = db
            .query_row(
                "SELECT id, at_ns FROM poll ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(e)?;
        db.execute_batch("BEGIN").map_err(e)?;
        if let Some((id, at)) = last {
            db.execute(
                "UPDATE conn SET gone_poll = ?1 + 1, last_seen_ns = ?2 WHERE gone_poll IS NULL",
                params![id, at],
            )
            .map_err(e)?;
            db.execute(
                "UPDATE alert SET resolved_poll = ?1, resolved_ns = ?2 WHERE resolved_poll IS NULL",
                params![id, at],
            )
            .map_err(e)?;
            db.execute(
                "INSERT INTO gap(kind, from_ns, to_ns) VALUES ('stopped', ?1, ?2)",
                params![at, now],
            )
            .map_err(e)?;
        }
        db.execute(
            "INSERT INTO run(started_ns, host, version, interval_ms, events) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                now,
                host,
                env!("CARGO_PKG_VERSION"),
                i64::try_from(interval.as_millis()).unwrap_or(i64::MAX),
                events
            ],
        )
        .map_err(e)?;
        let run = db.last_insert_rowid();
        let piece: Option<(i64, i64)> = db
            .query_row(
                "SELECT id, started_ns FROM piece ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(e)?;
        db.execute_batch("COMMIT").map_err(e)?;
        Ok(Recorder {
            store,
            retention,
            run,
            live: FxHashMap::default(),
            addrs: FxHashMap::default(),
            processes: FxHashMap::default(),
            users: FxHashMap::default(),
            netns: FxHashMap::default(),
            open_alerts: Vec::new(),
            last_alerts: String::new(),
            piece,
            failing: None,
            last_poll_at: last.map_or(0, |l| l.1),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.store.path
    }

    /// Writes one poll, the closes drained with it and its alerts (the socket table's and
    /// the close rules') as one transaction, then holds the retention. A failed write (a
    /// full disk) is rolled back and returned; the caller says it once, and the next poll
    /// that can be written starts afresh after a gap.
    pub fn write(
        &mut self,
        u: &Update,
        closes: &[Close],
        alerts: &[Alert],
    ) -> rusqlite::Result<()> {
        let at = ns(u.snapshot.taken_at);
        let result = self
            .store
            .db
            .execute_batch("BEGIN")
            .and_then(|()| self.write_poll(u, closes, alerts, at))
            .and_then(|()| self.store.db.execute_batch("COMMIT"));
        match result {
            Ok(()) => {
                self.last_poll_at = at;
                self.hold_retention(at)?;
                Ok(())
            }
            Err(err) => {
                let _ = self.store.db.execute_batch("ROLLBACK");
                // What the rolled-back transaction inserted is gone: forget every id it
                // may have given out, and start again from the next poll.
                self.forget();
                if self.failing.is_none() {
                    self.failing = Some(self.last_poll_at.max(at));
                }
                Err(err)
            }
        }
    }

    /// Whether the last write failed (a full disk): the caller said so once.
    pub fn failing(&self) -> bool {
        self.failing.is_some()
    }

    fn forget(&mut self) {
        self.live.clear();
        self.addrs.clear();
        self.processes.clear();
        self.users.clear();
        self.netns.clear();
        self.open_alerts.clear();
        self.last_alerts.clear();
        self.piece = None;
    }

    fn write_poll(
        &mut self,
        u: &Update,
        closes: &[Close],
        alerts: &[Alert],
        at: i64,
    ) -> rusqlite::Result<()> {
        if let Some(since) = self.failing.take() {
            // Back after failing writes: what was open then ends at the last written poll.
            let db = &self.store.db;
            db.execute(
                "UPDATE conn SET gone_poll = (SELECT max(id) + 1 FROM poll), last_seen_ns = ?1 WHERE gone_poll IS NULL",
                params![self.last_poll_at],
            )?;
            db.execute(
                "UPDATE alert SET resolved_poll = (SELECT max(id) FROM poll), resolved_ns = ?1 WHERE resolved_poll IS NULL",
                params![self.last_poll_at],
            )?;
            db.execute(
                "INSERT INTO gap(kind, from_ns, to_ns) VALUES ('write-failed', ?1, ?2)",
                params![since, at],
            )?;
            // The piece table may have lost a row too: start a new one.
            self.piece = None;
        }
        let snap = &u.snapshot;
        let counts = u.sample.counts;
        let c = |s: TcpState| i64::from(counts.get(s));
        let full = snap
            .unread
            .as_ref()
            .is_none_or(|un| !un.contains(TcpState::Established));
        let process_info = match &snap.process_info {
            crate::model::ProcessInfo::Full => None,
            crate::model::ProcessInfo::Partial { reason } => Some(reason.as_str()),
        };
        self.store.db.prepare_cached(
            "INSERT INTO poll(run, at_ns, duration_us, read_established, connections, process_info, ports_low, ports_high,
              established, syn_sent, syn_recv, fin_wait1, fin_wait2, time_wait, close, close_wait, last_ack, listen, closing)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19)",
        )?
        .execute(params![
            self.run,
            at,
            i64::try_from(snap.poll_duration.as_micros()).unwrap_or(i64::MAX),
            full,
            i64::try_from(snap.connections.len()).unwrap_or(i64::MAX),
            process_info,
            snap.ephemeral_ports.low,
            snap.ephemeral_ports.high,
            c(TcpState::Established),
            c(TcpState::SynSent),
            c(TcpState::SynRecv),
            c(TcpState::FinWait1),
            c(TcpState::FinWait2),
            c(TcpState::TimeWait),
            c(TcpState::Close),
            c(TcpState::CloseWait),
            c(TcpState::LastAck),
            c(TcpState::Listen),
            c(TcpState::Closing),
        ])?;
        let poll = self.store.db.last_insert_rowid();
        self.rotate_piece(poll, at)?;
        // The namespaces by the id each connection carries in this snapshot.
        let mut netns_ids: FxHashMap<u16, i64> = FxHashMap::default();
        for n in snap.netns.iter() {
            let id = self.netns_id(n)?;
            netns_ids.insert(n.id, id);
        }
        let mut conn_ids = Vec::with_capacity(snap.connections.len());
        for conn in &snap.connections {
            let id = self.connection(conn, poll, at, &netns_ids)?;
            conn_ids.push(id);
        }
        // What this poll no longer sees has ended.
        let mut gone = Vec::new();
        self.live.retain(|_, l| {
            let keep = l.seen == poll;
            if !keep {
                gone.push((l.id, l.at));
            }
            keep
        });
        {
            let mut st = self.store.db.prepare_cached(
                "UPDATE conn SET gone_poll = ?1, last_seen_ns = ?2 WHERE id = ?3",
            )?;
            for (id, last) in gone {
                st.execute(params![poll, last, id])?;
            }
        }
        for close in closes {
            self.close(close, poll)?;
        }
        self.alerts(alerts, &conn_ids, poll, at)?;
        Ok(())
    }

    /// Starts a new piece when the current one is old enough or large enough that dropping
    /// it frees an eighth of what retention allows.
    fn rotate_piece(&mut self, poll: i64, at: i64) -> rusqlite::Result<()> {
        let span = self
            .retention
            .age
            .map_or(Duration::from_secs(3600), |a| {
                (a / 8).min(Duration::from_secs(3600))
            })
            .max(Duration::from_secs(1));
        let span = i64::try_from(span.as_nanos()).unwrap_or(i64::MAX);
        let new = match self.piece {
            None => true,
            Some((_, started)) => {
                at - started >= span
                    || self.retention.max_size.is_some_and(|max| {
                        let first: i64 = self
                            .store
                            .db
                            .query_row(
                                "SELECT first_poll FROM piece ORDER BY id DESC LIMIT 1",
                                [],
                                |r| r.get(0),
                            )
                            .unwrap_or(poll);
                        // Polls are alike in size: a piece of 1/8 of the bound in polls.
                        let size = self.size();
                        let polls: i64 = self
                            .store
                            .db
                            .query_row("SELECT count(*) FROM poll", [], |r| r.get(0))
                            .unwrap_or(1)
                            .max(1);
                        let per_poll = size / u64::try_from(polls).unwrap_or(1);
                        u64::try_from(poll - first).unwrap_or(0) * per_poll >= max / 8
                    })
            }
        };
        if new {
            self.store.db.execute(
                "INSERT INTO piece(first_poll, started_ns) VALUES (?1, ?2)",
                params![poll, at],
            )?;
            self.piece = Some((self.store.db.last_insert_rowid(), at));
        }
        Ok(())
    }

    fn netns_id(&mut self, n: &crate::model::Netns) -> rusqlite::Result<i64> {
        if let Some((id, name)) = self.netns.get(&n.inode) {
            if **name == *n.name {
                return Ok(*id);
            }
        }
        let db = &self.store.db;
        db.execute(
            "INSERT INTO netns(inode, kind, name, pid, ports_low, ports_high) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(inode) DO UPDATE SET kind = excluded.kind, name = excluded.name, pid = excluded.pid,
               ports_low = excluded.ports_low, ports_high = excluded.ports_high",
            params![
                i64::try_from(n.inode).unwrap_or(i64::MAX),
                n.kind.key(),
                &*n.name,
                n.pid,
                n.ports.map(|p| p.low),
                n.ports.map(|p| p.high)
            ],
        )?;
        let id: i64 = db.query_row(
            "SELECT id FROM netns WHERE inode = ?1",
            params![i64::try_from(n.inode).unwrap_or(i64::MAX)],
            |r| r.get(0),
        )?;
        self.netns.insert(n.inode, (id, Arc::clone(&n.name)));
        Ok(id)
    }

    fn addr(&mut self, ip: IpAddr) -> rusqlite::Result<i64> {
        if let Some(id) = self.addrs.get(&ip) {
            return Ok(*id);
        }
        let db = &self.store.db;
        let text = ip.to_string();
        db.prepare_cached("INSERT OR IGNORE INTO addr(ip) VALUES (?1)")?
            .execute(params![text])?;
        let id: i64 = db
            .prepare_cached("SELECT id FROM addr WHERE ip = ?1")?
            .query_row(params![text], |r| r.get(0))?;
        self.addrs.insert(ip, id);
        Ok(id)
    }

    fn process(&mut self, pid: u32, name: Option<&Arc<str>>) -> rusqlite::Result<i64> {
        let key = (pid, name.cloned());
        if let Some(id) = self.processes.get(&key) {
            return Ok(*id);
        }
        let db = &self.store.db;
        let name = name.map(|n| &**n);
        // `UNIQUE(pid, name)` does not hold for a NULL name: look it up first.
        let found: Option<i64> = db
            .prepare_cached("SELECT id FROM process WHERE pid = ?1 AND name IS ?2")?
            .query_row(params![pid, name], |r| r.get(0))
            .optional()?;
        let id = match found {
            Some(id) => id,
            None => {
                db.prepare_cached("INSERT INTO process(pid, name) VALUES (?1, ?2)")?
                    .execute(params![pid, name])?;
                db.last_insert_rowid()
            }
        };
        self.processes.insert(key, id);
        Ok(id)
    }

    fn user(&mut self, conn: &Connection) -> rusqlite::Result<()> {
        let Some(u) = &conn.user else { return Ok(()) };
        if self.users.get(&u.uid).is_some_and(|n| *n == u.name) {
            return Ok(());
        }
        self.store
            .db
            .prepare_cached("INSERT OR REPLACE INTO user(uid, name) VALUES (?1, ?2)")?
            .execute(params![u.uid, u.name.as_deref()])?;
        self.users.insert(u.uid, u.name.clone());
        Ok(())
    }

    /// Records what changed of one connection; returns its id.
    fn connection(
        &mut self,
        conn: &Connection,
        poll: i64,
        at: i64,
        netns_ids: &FxHashMap<u16, i64>,
    ) -> rusqlite::Result<i64> {
        let process = match conn.owner() {
            Some(o) => Some(self.process(o.pid, o.name.as_ref())?),
            None => None,
        };
        let tracking = conn.tracking.as_ref();
        let since = tracking.map(|t| ns(t.state_since()));
        let source = tracking.map(|t| age_code(t.source()));
        if let Some(l) = self.live.get_mut(conn.tuple()) {
            let same_socket = l.cookie == 0 || conn.cookie == 0 || l.cookie == conn.cookie;
            if same_socket {
                l.seen = poll;
                l.at = at;
                if l.cookie == 0 {
                    l.cookie = conn.cookie;
                }
                if l.state != conn.state
                    || l.process != process
                    || l.attribution != conn.attribution
                {
                    l.state = conn.state;
                    l.process = process;
                    l.attribution = conn.attribution;
                    let id = l.id;
                    self.store
                        .db
                        .prepare_cached("INSERT INTO change VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
                        .execute(params![
                            id,
                            poll,
                            conn.state.index(),
                            since,
                            source,
                            process,
                            attribution_code(conn.attribution)
                        ])?;
                }
                return Ok(l.id);
            }
            // The same four numbers, another socket: the first one ended.
            let (old, last) = (l.id, l.at);
            self.store
                .db
                .prepare_cached("UPDATE conn SET gone_poll = ?1, last_seen_ns = ?2 WHERE id = ?3")?
                .execute(params![poll, last, old])?;
        }
        self.user(conn)?;
        let local = conn.local();
        let remote = conn.remote();
        let (la, ra) = (self.addr(local.ip())?, self.addr(remote.ip())?);
        let first_seen = tracking.map_or(at, |t| ns(t.first_seen()));
        let db = &self.store.db;
        db.prepare_cached(
            "INSERT INTO conn(netns, local_addr, local_port, remote_addr, remote_port, cookie, inode, uid, first_poll, first_seen_ns)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            netns_ids.get(&conn.netns()),
            la,
            local.port(),
            ra,
            remote.port(),
            (conn.cookie != 0).then_some(conn.cookie as i64),
            (conn.inode != 0).then_some(conn.inode),
            conn.uid(),
            poll,
            first_seen
        ])?;
        let id = db.last_insert_rowid();
        db.prepare_cached("INSERT INTO change VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")?
            .execute(params![
                id,
                poll,
                conn.state.index(),
                since,
                source,
                process,
                attribution_code(conn.attribution)
            ])?;
        self.live.insert(
            conn.tuple().clone(),
            Live {
                id,
                cookie: conn.cookie,
                state: conn.state,
                process,
                attribution: conn.attribution,
                seen: poll,
                at,
            },
        );
        Ok(id)
    }

    fn close(&mut self, c: &Close, poll: i64) -> rusqlite::Result<()> {
        let process = match &c.owner {
            Some(o) => Some(self.process(o.pid, Some(&o.name))?),
            None => None,
        };
        let la = match c.local {
            Some(a) => Some(self.addr(a.ip())?),
            None => None,
        };
        let ra = match c.remote {
            Some(a) => Some(self.addr(a.ip())?),
            None => None,
        };
        self.store
            .db
            .prepare_cached(
                "INSERT INTO close(at_ns, poll, kind, reason, process, via_listener, netns_inode, local_addr, local_port,
                  remote_addr, remote_port, cookie, lifetime_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                ns(crate::events::wall_time(c.at_ns)),
                poll,
                c.kind as u8,
                c.reason.map(reason_code),
                process,
                c.owner_via_listener,
                c.netns,
                la,
                c.local.map(|a| a.port()),
                ra,
                c.remote.map(|a| a.port()),
                c.cookie as i64,
                c.lifetime_ns.map(|l| i64::try_from(l).unwrap_or(i64::MAX)),
            ])?;
        Ok(())
    }

    fn alerts(
        &mut self,
        alerts: &[Alert],
        conn_ids: &[i64],
        poll: i64,
        at: i64,
    ) -> rusqlite::Result<()> {
        let rows: Vec<AlertRow> = alerts
            .iter()
            .map(|a| AlertRow {
                rule: a.rule.name().to_string(),
                severity: a.severity.name().to_string(),
                message: a.message.clone(),
                count: a.count,
                pid: a.pid,
                process: a.process.as_deref().map(str::to_string),
                local_ip: a.local_ip,
                remote: a.remote,
                ratio: a.ratio,
                growth_per_min: a.growth_per_min,
                netns: a.netns.as_deref().map(str::to_string),
                conns: a
                    .connections
                    .iter()
                    .take(ALERT_CONNS_KEPT)
                    .filter_map(|&i| conn_ids.get(i).copied())
                    .collect(),
            })
            .collect();
        let json = serde_json::to_string(&rows).unwrap_or_default();
        let db = &self.store.db;
        if json != self.last_alerts {
            db.prepare_cached("INSERT INTO alert_set(poll, alerts) VALUES (?1, ?2)")?
                .execute(params![poll, json])?;
            self.last_alerts = json;
        }
        let mut still = Vec::new();
        for a in alerts {
            let key = AlertKey::of(a);
            match self.open_alerts.iter().position(|(k, _, _)| *k == key) {
                Some(i) => {
                    let (k, id, max) = self.open_alerts.swap_remove(i);
                    if a.count > max {
                        db.prepare_cached(
                            "UPDATE alert SET max_count = ?1, severity = ?2 WHERE id = ?3",
                        )?
                        .execute(params![
                            a.count,
                            a.severity.name(),
                            id
                        ])?;
                    }
                    still.push((k, id, max.max(a.count)));
                }
                None => {
                    db.prepare_cached(
                        "INSERT INTO alert(rule, severity, pid, process, netns, local_ip, remote, message, max_count, fired_poll, fired_ns)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )?
                    .execute(params![
                        a.rule.name(),
                        a.severity.name(),
                        a.pid,
                        a.process.as_deref(),
                        a.netns.as_deref(),
                        a.local_ip.map(|i| i.to_string()),
                        a.remote.map(|r| r.to_string()),
                        &a.message,
                        a.count,
                        poll,
                        at
                    ])?;
                    still.push((key, db.last_insert_rowid(), a.count));
                }
            }
        }
        for (_, id, _) in std::mem::replace(&mut self.open_alerts, still) {
            db.prepare_cached(
                "UPDATE alert SET resolved_poll = ?1, resolved_ns = ?2 WHERE id = ?3",
            )?
            .execute(params![poll, at, id])?;
        }
        Ok(())
    }

    /// The database and its `-wal`, in bytes.
    pub fn size(&self) -> u64 {
        let len = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.store.path.clone().into_os_string();
        wal.push("-wal");
        len(&self.store.path) + len(Path::new(&wal))
    }

    /// Drops the oldest pieces, whole, while they are older than `--retain` or the file is
    /// over `--max-size`; never the newest. Connections open across a dropped piece are
    /// carried over: their row and their last change before the cut stay.
    fn hold_retention(&mut self, now: i64) -> rusqlite::Result<()> {
        loop {
            let pieces: Vec<(i64, i64, i64)> = {
                let mut st = self.store.db.prepare_cached(
                    "SELECT id, first_poll, started_ns FROM piece ORDER BY id LIMIT 2",
                )?;
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<rusqlite::Result<_>>()?
            };
            let [(oldest, _, _), (_, next_first, next_started)] = pieces[..] else {
                break;
            };
            let too_old = self.retention.age.is_some_and(|age| {
                now - next_started > i64::try_from(age.as_nanos()).unwrap_or(i64::MAX)
            });
            let too_big = self.retention.max_size.is_some_and(|max| {
                self.checkpoint();
                self.size() > max
            });
            if !too_old && !too_big {
                break;
            }
            self.drop_piece(oldest, next_first)?;
            // The freed pages back to the file system before the size is measured again.
            self.store.db.execute_batch("PRAGMA incremental_vacuum")?;
            self.checkpoint();
        }
        Ok(())
    }

    /// Folds the WAL into the database and truncates it, as far as readers allow.
    fn checkpoint(&self) {
        let _ = self
            .store
            .db
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    fn drop_piece(&mut self, piece: i64, cut: i64) -> rusqlite::Result<()> {
        let cut_ns: i64 = self
            .store
            .db
            .query_row(
                "SELECT at_ns FROM poll WHERE id >= ?1 ORDER BY id LIMIT 1",
                params![cut],
                |r| r.get(0),
            )
            .unwrap_or(i64::MAX);
        self.store.db.execute_batch("BEGIN")?;
        let r = self.store.db.execute_batch(&format!(
            "DELETE FROM change WHERE conn IN (SELECT id FROM conn WHERE gone_poll <= {cut});
             DELETE FROM conn WHERE gone_poll <= {cut};
             DELETE FROM change WHERE poll < {cut} AND EXISTS (SELECT 1 FROM change c2
               WHERE c2.conn = change.conn AND c2.poll > change.poll AND c2.poll <= {cut});
             UPDATE conn SET first_poll = {cut} WHERE first_poll < {cut};
             UPDATE OR IGNORE change SET poll = {cut} WHERE poll < {cut};
             DELETE FROM change WHERE poll < {cut};
             DELETE FROM close WHERE at_ns < {cut_ns};
             DELETE FROM alert WHERE resolved_poll IS NOT NULL AND resolved_poll <= {cut};
             DELETE FROM alert_set WHERE poll < (SELECT coalesce(max(poll), 0) FROM alert_set WHERE poll <= {cut});
             UPDATE alert_set SET poll = {cut} WHERE poll < {cut};
             DELETE FROM gap WHERE to_ns < {cut_ns};
             DELETE FROM poll WHERE id < {cut};
             DELETE FROM piece WHERE id = {piece};
             COMMIT;"
        ));
        if r.is_err() {
            let _ = self.store.db.execute_batch("ROLLBACK");
        }
        r
    }

    /// Ends the run: its end time, and the WAL folded into the database.
    pub fn finish(self) {
        let _ = self.store.db.execute(
            "UPDATE run SET ended_ns = ?1 WHERE id = ?2",
            params![ns(SystemTime::now()), self.run],
        );
    }
}
