//! The recording's schema: its tables (small rows: deltas and keyframes, names interned),
//! the views a person queries with `sqlite3`, DuckDB or Datasette, and the one migration
//! path. Documented in the guide's docs/record.md; a change here is a new
//! [`VERSION`] with its step in [`MIGRATIONS`].

/// `PRAGMA application_id`: "LGTR". A database without it is someone else's: lingertop
/// never writes into it.
pub const APPLICATION_ID: i32 = 0x4C47_5452;

/// `PRAGMA user_version` of the schema this build writes. A file of a newer one is refused;
/// an older one is brought up to it by [`MIGRATIONS`].
pub const VERSION: i32 = 1;

/// The steps from each older version to the next: `MIGRATIONS[v]` takes version `v` to
/// `v + 1` (version 0 is the empty file).
pub const MIGRATIONS: &[&str] = &[TABLES_V1];

/// The tables of version 1. Times are nanoseconds since the Unix epoch (`*_ns`); the views
/// give them as RFC 3339 text.
const TABLES_V1: &str = r#"
CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE tcp_state(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
CREATE TABLE close_kind(id INTEGER PRIMARY KEY, name TEXT NOT NULL);
-- One row per start of a recorder.
CREATE TABLE run(id INTEGER PRIMARY KEY, started_ns INTEGER NOT NULL, ended_ns INTEGER,
  host TEXT, version TEXT, interval_ms INTEGER, events TEXT);
-- Retention drops whole pieces, oldest first, never the newest.
CREATE TABLE piece(id INTEGER PRIMARY KEY, first_poll INTEGER NOT NULL, started_ns INTEGER NOT NULL);
-- A keyframe per poll: its counts by state (the table as the kernel gave it).
CREATE TABLE poll(id INTEGER PRIMARY KEY, run INTEGER NOT NULL, at_ns INTEGER NOT NULL,
  duration_us INTEGER, read_established INTEGER NOT NULL, connections INTEGER NOT NULL,
  process_info TEXT, ports_low INTEGER, ports_high INTEGER,
  established INTEGER, syn_sent INTEGER, syn_recv INTEGER, fin_wait1 INTEGER,
  fin_wait2 INTEGER, time_wait INTEGER, close INTEGER, close_wait INTEGER,
  last_ack INTEGER, listen INTEGER, closing INTEGER);
CREATE INDEX poll_at ON poll(at_ns);
CREATE TABLE netns(id INTEGER PRIMARY KEY, inode INTEGER NOT NULL UNIQUE, kind TEXT,
  name TEXT, pid INTEGER, ports_low INTEGER, ports_high INTEGER);
CREATE TABLE addr(id INTEGER PRIMARY KEY, ip TEXT NOT NULL UNIQUE);
CREATE TABLE process(id INTEGER PRIMARY KEY, pid INTEGER NOT NULL, name TEXT,
  UNIQUE(pid, name));
CREATE TABLE user(uid INTEGER PRIMARY KEY, name TEXT);
-- Every connection a poll saw: first seen, and the first poll that no longer saw it.
CREATE TABLE conn(id INTEGER PRIMARY KEY, netns INTEGER, local_addr INTEGER NOT NULL,
  local_port INTEGER NOT NULL, remote_addr INTEGER NOT NULL, remote_port INTEGER NOT NULL,
  cookie INTEGER, inode INTEGER, uid INTEGER, first_poll INTEGER NOT NULL,
  first_seen_ns INTEGER NOT NULL, gone_poll INTEGER, last_seen_ns INTEGER);
CREATE INDEX conn_gone ON conn(gone_poll);
-- A row per change of a connection's state or owner (never per poll).
CREATE TABLE change(conn INTEGER NOT NULL, poll INTEGER NOT NULL, state INTEGER NOT NULL,
  since_ns INTEGER, age_source INTEGER, process INTEGER, attribution INTEGER,
  PRIMARY KEY(conn, poll)) WITHOUT ROWID;
-- Every close the kernel's events told.
CREATE TABLE close(id INTEGER PRIMARY KEY, at_ns INTEGER NOT NULL, poll INTEGER,
  kind INTEGER NOT NULL, reason INTEGER, process INTEGER, via_listener INTEGER,
  netns_inode INTEGER, local_addr INTEGER, local_port INTEGER, remote_addr INTEGER,
  remote_port INTEGER, cookie INTEGER, lifetime_ns INTEGER);
CREATE INDEX close_at ON close(at_ns);
-- Alerts as they fired and resolved (the rules in force then).
CREATE TABLE alert(id INTEGER PRIMARY KEY, rule TEXT NOT NULL, severity TEXT NOT NULL,
  pid INTEGER, process TEXT, netns TEXT, local_ip TEXT, remote TEXT, message TEXT,
  max_count INTEGER, fired_poll INTEGER NOT NULL, fired_ns INTEGER NOT NULL,
  resolved_poll INTEGER, resolved_ns INTEGER);
-- The alerts of a poll as it gave them (JSON), written when they differ from the last.
CREATE TABLE alert_set(poll INTEGER PRIMARY KEY, alerts TEXT NOT NULL);
-- Time nothing was recorded: the recorder stopped, or could not write (a full disk).
CREATE TABLE gap(id INTEGER PRIMARY KEY, kind TEXT NOT NULL, from_ns INTEGER NOT NULL,
  to_ns INTEGER);

CREATE VIEW polls AS SELECT p.id AS poll, strftime('%Y-%m-%dT%H:%M:%fZ', p.at_ns / 1e9, 'unixepoch') AS at,
  p.connections, p.read_established, p.established, p.syn_sent, p.syn_recv, p.fin_wait1,
  p.fin_wait2, p.time_wait, p.close, p.close_wait, p.last_ack, p.listen, p.closing
  FROM poll p;
CREATE VIEW states AS SELECT ch.conn, ch.poll,
  strftime('%Y-%m-%dT%H:%M:%fZ', p.at_ns / 1e9, 'unixepoch') AS at, s.name AS state,
  pr.pid, pr.name AS process
  FROM change ch JOIN poll p ON p.id = ch.poll JOIN tcp_state s ON s.id = ch.state
  LEFT JOIN process pr ON pr.id = ch.process;
CREATE VIEW connections AS SELECT c.id AS conn, n.name AS netns,
  la.ip AS local_ip, c.local_port, ra.ip AS remote_ip, c.remote_port,
  strftime('%Y-%m-%dT%H:%M:%fZ', c.first_seen_ns / 1e9, 'unixepoch') AS first_seen,
  strftime('%Y-%m-%dT%H:%M:%fZ', c.last_seen_ns / 1e9, 'unixepoch') AS last_seen,
  (SELECT s.name FROM change ch JOIN tcp_state s ON s.id = ch.state WHERE ch.conn = c.id
     ORDER BY ch.poll DESC LIMIT 1) AS last_state,
  (SELECT pr.pid FROM change ch JOIN process pr ON pr.id = ch.process WHERE ch.conn = c.id
     ORDER BY ch.poll DESC LIMIT 1) AS pid,
  (SELECT pr.name FROM change ch JOIN process pr ON pr.id = ch.process WHERE ch.conn = c.id
     ORDER BY ch.poll DESC LIMIT 1) AS process,
  c.uid, u.name AS user, c.cookie
  FROM conn c JOIN addr la ON la.id = c.local_addr JOIN addr ra ON ra.id = c.remote_addr
  LEFT JOIN netns n ON n.id = c.netns LEFT JOIN user u ON u.uid = c.uid;
CREATE VIEW stints AS SELECT ch.conn, s.name AS state, pr.pid, pr.name AS process,
  ch.since_ns AS began_ns,
  COALESCE(LEAD(ch.since_ns) OVER w, c.last_seen_ns) AS ended_ns,
  strftime('%Y-%m-%dT%H:%M:%fZ', ch.since_ns / 1e9, 'unixepoch') AS began,
  strftime('%Y-%m-%dT%H:%M:%fZ', COALESCE(LEAD(ch.since_ns) OVER w, c.last_seen_ns) / 1e9, 'unixepoch') AS ended,
  (COALESCE(LEAD(ch.since_ns) OVER w, c.last_seen_ns) - ch.since_ns) / 1e9 AS secs,
  ra.ip AS remote_ip, c.remote_port, la.ip AS local_ip, c.local_port
  FROM change ch JOIN conn c ON c.id = ch.conn JOIN tcp_state s ON s.id = ch.state
  JOIN addr la ON la.id = c.local_addr JOIN addr ra ON ra.id = c.remote_addr
  LEFT JOIN process pr ON pr.id = ch.process
  WINDOW w AS (PARTITION BY ch.conn ORDER BY ch.poll);
CREATE VIEW closes AS SELECT cl.id, strftime('%Y-%m-%dT%H:%M:%fZ', cl.at_ns / 1e9, 'unixepoch') AS at,
  cl.at_ns, k.name AS kind,
  CASE WHEN cl.reason IS NULL THEN NULL WHEN cl.reason = 0 THEN 'unread-data'
       WHEN cl.reason = 1 THEN 'linger-0' ELSE 'other' END AS reason,
  pr.pid, pr.name AS process, cl.via_listener,
  la.ip AS local_ip, cl.local_port, ra.ip AS remote_ip, cl.remote_port,
  n.name AS netns, cl.cookie, cl.lifetime_ns / 1e9 AS lifetime_secs
  FROM close cl JOIN close_kind k ON k.id = cl.kind LEFT JOIN process pr ON pr.id = cl.process
  LEFT JOIN addr la ON la.id = cl.local_addr LEFT JOIN addr ra ON ra.id = cl.remote_addr
  LEFT JOIN netns n ON n.inode = cl.netns_inode;
CREATE VIEW resets_by_process AS SELECT pid, process, kind, reason, count(*) AS resets
  FROM closes WHERE kind IN ('reset-sent', 'reset-received')
  GROUP BY pid, process, kind, reason;
CREATE VIEW alerts AS SELECT a.id, a.rule, a.severity, a.pid, a.process, a.netns, a.message,
  a.max_count, strftime('%Y-%m-%dT%H:%M:%fZ', a.fired_ns / 1e9, 'unixepoch') AS fired,
  strftime('%Y-%m-%dT%H:%M:%fZ', a.resolved_ns / 1e9, 'unixepoch') AS resolved
  FROM alert a;
CREATE VIEW gaps AS SELECT kind, strftime('%Y-%m-%dT%H:%M:%fZ', from_ns / 1e9, 'unixepoch') AS from_time,
  strftime('%Y-%m-%dT%H:%M:%fZ', to_ns / 1e9, 'unixepoch') AS to_time FROM gap
  UNION ALL SELECT 'established-unread', strftime('%Y-%m-%dT%H:%M:%fZ', at_ns / 1e9, 'unixepoch'),
  strftime('%Y-%m-%dT%H:%M:%fZ', at_ns / 1e9, 'unixepoch') FROM poll WHERE read_established = 0;
"#;
