//! Reading a recording back: its polls, and the table as it stood at one of them (the
//! snapshot a live poll gave then, fields not recorded left unknown), with the alerts
//! recorded at it.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection as Db, OptionalExtension, params};
use rustc_hash::FxHashMap;

use super::store::{StoreError, open_readable};
use super::writer::AlertRow;
use crate::model::{
    AgeSource, Alert, Attribution, Connection, Netns, NetnsKind, NetnsTable, Owner, PortRange,
    ProcessInfo, RuleId, Severity, Snapshot, StateCounts, TcpState, Tracking, Tuple, User,
};

/// One recorded poll.
#[derive(Clone, Debug, PartialEq)]
pub struct PollRow {
    pub id: i64,
    pub at: SystemTime,
    /// Whether it read ESTABLISHED (else those were carried from an earlier read).
    pub read_established: bool,
    pub counts: StateCounts,
}

/// A recording open for reading.
pub struct Recording {
    db: Db,
}

fn time(ns: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_nanos(u64::try_from(ns).unwrap_or(0))
}

fn ns(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

const POLL_COLUMNS: &str = "id, at_ns, read_established, established, syn_sent, syn_recv, fin_wait1, fin_wait2, time_wait, close, close_wait, last_ack, listen, closing";

fn poll_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<PollRow> {
    let mut counts = StateCounts::default();
    // The counts' columns are in the states' kernel order.
    for (i, s) in TcpState::ALL.into_iter().enumerate() {
        counts.0[s.index()] = r.get::<_, Option<u32>>(3 + i)?.unwrap_or(0);
    }
    Ok(PollRow {
        id: r.get(0)?,
        at: time(r.get(1)?),
        read_established: r.get(2)?,
        counts,
    })
}

fn rule(name: &str) -> Option<RuleId> {
    RuleId::ALL.into_iter().find(|r| r.name() == name)
}

fn attribution(code: Option<i64>) -> Option<Attribution> {
    [
        Attribution::Owner,
        Attribution::LastOwner,
        Attribution::Listener,
        Attribution::Event,
        Attribution::Pending,
    ]
    .into_iter()
    .find(|a| Some(*a as i64) == code)
}

fn age_source(code: Option<i64>) -> AgeSource {
    [
        AgeSource::Kernel,
        AgeSource::Observed,
        AgeSource::FirstSight,
    ]
    .into_iter()
    .find(|a| Some(*a as i64) == code)
    .unwrap_or(AgeSource::FirstSight)
}

fn netns_kind(key: &str) -> NetnsKind {
    match key {
        "host" => NetnsKind::Host,
        "own" => NetnsKind::Own,
        "pod" => NetnsKind::Pod,
        "machine" => NetnsKind::Machine,
        "netns" => NetnsKind::Named,
        "docker" => NetnsKind::Container { runtime: "docker" },
        "podman" => NetnsKind::Container { runtime: "podman" },
        "containerd" => NetnsKind::Container {
            runtime: "containerd",
        },
        "cri-o" => NetnsKind::Container { runtime: "cri-o" },
        "lxc" => NetnsKind::Container { runtime: "lxc" },
        _ => NetnsKind::Process,
    }
}

impl Recording {
    /// Opens `path` for reading (see [`open_readable`]).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Ok(Recording {
            db: open_readable(path)?,
        })
    }

    /// Every recorded poll, oldest first.
    pub fn polls(&self) -> rusqlite::Result<Vec<PollRow>> {
        let mut st = self
            .db
            .prepare(&format!("SELECT {POLL_COLUMNS} FROM poll ORDER BY id"))?;
        st.query_map([], poll_row)?.collect()
    }

    /// The last poll at or before `at`.
    pub fn poll_at(&self, at: SystemTime) -> rusqlite::Result<Option<PollRow>> {
        self.db
            .query_row(
                &format!(
                    "SELECT {POLL_COLUMNS} FROM poll WHERE at_ns <= ?1 ORDER BY at_ns DESC, id DESC LIMIT 1"
                ),
                params![ns(at)],
                poll_row,
            )
            .optional()
    }

    /// The first and last recorded instants, if any poll was recorded.
    pub fn span(&self) -> rusqlite::Result<Option<(SystemTime, SystemTime)>> {
        self.db
            .query_row("SELECT min(at_ns), max(at_ns) FROM poll", [], |r| {
                Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?))
            })
            .map(|s| s.map(|(a, b)| (time(a), time(b))))
    }

    /// The table as it stood at `poll`, and the alerts recorded then.
    pub fn snapshot(&self, poll: &PollRow) -> rusqlite::Result<(Snapshot, Vec<Alert>)> {
        let db = &self.db;
        let (host,): (Option<String>,) = db.query_row(
            "SELECT r.host FROM poll p JOIN run r ON r.id = p.run WHERE p.id = ?1",
            params![poll.id],
            |r| Ok((r.get(0)?,)),
        )?;
        let (duration_us, process_info, low, high): (
            Option<i64>,
            Option<String>,
            Option<u16>,
            Option<u16>,
        ) = db.query_row(
            "SELECT duration_us, process_info, ports_low, ports_high FROM poll WHERE id = ?1",
            params![poll.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let mut netns = Vec::new();
        {
            let mut st =
                db.prepare("SELECT id, inode, kind, name, pid, ports_low, ports_high FROM netns")?;
            let rows = st.query_map([], |r| {
                let low: Option<u16> = r.get(5)?;
                let high: Option<u16> = r.get(6)?;
                Ok(Netns {
                    id: u16::try_from(r.get::<_, i64>(0)?).unwrap_or(u16::MAX),
                    inode: u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                    kind: netns_kind(&r.get::<_, Option<String>>(2)?.unwrap_or_default()),
                    name: Arc::from(r.get::<_, Option<String>>(3)?.unwrap_or_default()),
                    pid: r.get(4)?,
                    ports: low.zip(high).map(|(low, high)| PortRange { low, high }),
                })
            })?;
            for n in rows {
                netns.push(n?);
            }
        }
        // Every change, up to this poll, of the connections alive at it; the last is the
        // state it was in, the earlier ones its history.
        let mut st = db.prepare_cached(
            "SELECT c.id, c.netns, la.ip, c.local_port, ra.ip, c.remote_port, c.cookie, c.inode,
                    c.uid, u.name, c.first_seen_ns, ch.state, ch.since_ns, ch.age_source,
                    pr.pid, pr.name, ch.attribution
             FROM conn c JOIN change ch ON ch.conn = c.id
             JOIN addr la ON la.id = c.local_addr JOIN addr ra ON ra.id = c.remote_addr
             LEFT JOIN user u ON u.uid = c.uid LEFT JOIN process pr ON pr.id = ch.process
             WHERE c.first_poll <= ?1 AND (c.gone_poll IS NULL OR c.gone_poll > ?1) AND ch.poll <= ?1
             ORDER BY c.id, ch.poll",
        )?;
        let mut rows = st.query(params![poll.id])?;
        let mut connections: Vec<Connection> = Vec::new();
        let mut ids: FxHashMap<i64, usize> = FxHashMap::default();
        let mut history: Vec<(TcpState, SystemTime)> = Vec::new();
        let mut users: FxHashMap<u32, Arc<User>> = FxHashMap::default();
        let mut owners: FxHashMap<(u32, Option<String>), crate::model::Owners> =
            FxHashMap::default();
        let mut current: Option<i64> = None;
        while let Some(r) = rows.next()? {
            let id: i64 = r.get(0)?;
            let state = TcpState::ALL
                .get(usize::try_from(r.get::<_, i64>(11)?).unwrap_or(usize::MAX))
                .copied()
                .unwrap_or(TcpState::Close);
            let since = r.get::<_, Option<i64>>(12)?.map(time);
            if current != Some(id) {
                current = Some(id);
                history.clear();
                let ip = |s: String| s.parse::<IpAddr>().unwrap_or(IpAddr::from([0, 0, 0, 0]));
                let local = SocketAddr::new(ip(r.get(2)?), r.get(3)?);
                let remote = SocketAddr::new(ip(r.get(4)?), r.get(5)?);
                let netns_id = r
                    .get::<_, Option<i64>>(1)?
                    .and_then(|n| u16::try_from(n).ok())
                    .unwrap_or(crate::model::OWN_NETNS);
                let mut c = Connection::on(Tuple::in_netns(local, remote, netns_id), state);
                c.cookie = r.get::<_, Option<i64>>(6)?.map_or(0, |v| v as u64);
                c.inode = r.get::<_, Option<u32>>(7)?.unwrap_or(0);
                if let Some(uid) = r.get::<_, Option<u32>>(8)? {
                    let name: Option<String> = r.get(9)?;
                    c.user = Some(Arc::clone(users.entry(uid).or_insert_with(|| {
                        Arc::new(User {
                            uid,
                            name: name.map(String::into_boxed_str),
                        })
                    })));
                }
                ids.insert(id, connections.len());
                connections.push(c);
            }
            let Some(c) = connections.last_mut() else {
                continue;
            };
            let first_seen = time(r.get(10)?);
            if c.tracking.is_some() && c.state != state {
                let began = c
                    .tracking
                    .as_ref()
                    .map_or(first_seen, Tracking::state_since);
                history.push((c.state, began));
            }
            c.state = state;
            c.tracking = Some(Tracking::restored(
                first_seen,
                since.unwrap_or(first_seen),
                history.clone(),
                age_source(r.get(13)?),
            ));
            let pid: Option<u32> = r.get(14)?;
            let pname: Option<String> = r.get(15)?;
            c.owners = match pid {
                Some(pid) => owners
                    .entry((pid, pname.clone()))
                    .or_insert_with(|| {
                        vec![Owner {
                            pid,
                            name: pname.map(Arc::from),
                        }]
                        .into()
                    })
                    .clone(),
                None => crate::model::Owners::default(),
            };
            c.attribution = attribution(r.get(16)?);
        }
        let alerts_json: Option<String> = db
            .query_row(
                "SELECT alerts FROM alert_set WHERE poll <= ?1 ORDER BY poll DESC LIMIT 1",
                params![poll.id],
                |r| r.get(0),
            )
            .optional()?;
        let rows: Vec<AlertRow> = alerts_json
            .and_then(|j| serde_json::from_str(&j).ok())
            .unwrap_or_default();
        let alerts = rows
            .into_iter()
            .filter_map(|a| {
                let connections: Vec<usize> = a
                    .conns
                    .iter()
                    .filter_map(|id| ids.get(id).copied())
                    .collect();
                let alert = Alert {
                    rule: rule(&a.rule)?,
                    severity: if a.severity == "critical" {
                        Severity::Critical
                    } else {
                        Severity::Warning
                    },
                    message: a.message,
                    count: a.count,
                    pid: a.pid,
                    process: a.process.map(Arc::from),
                    local_ip: a.local_ip,
                    remote: a.remote,
                    ratio: a.ratio,
                    growth_per_min: a.growth_per_min,
                    connections,
                    netns: a.netns.map(Arc::from),
                };
                Some(alert)
            })
            .collect();
        let snapshot = Snapshot {
            taken_at: poll.at,
            host: host.unwrap_or_default(),
            process_info: match process_info {
                Some(reason) => ProcessInfo::Partial { reason },
                None => ProcessInfo::Full,
            },
            ephemeral_ports: low.zip(high).map_or(
                PortRange {
                    low: 32768,
                    high: 60999,
                },
                |(low, high)| PortRange { low, high },
            ),
            poll_duration: Duration::from_micros(
                u64::try_from(duration_us.unwrap_or(0)).unwrap_or(0),
            ),
            connections,
            unread: None,
            netns: Arc::new(NetnsTable::new(netns)),
            counters: Vec::new(),
        };
        Ok((snapshot, alerts))
    }
}
