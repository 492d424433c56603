//! The collector's state: one SQLite file (`--store`), written by `tripseal
//! collect` and `tripseal fleet`, read by both at once (WAL).
//!
//! Guarantees:
//! - an event is taken at most once: its `id` is kept, and a redelivered
//!   event changes nothing;
//! - everything in it that came from a host is data: it is stored as text,
//!   bounded in size, and escaped wherever it is shown;
//! - a file found at the store's path is used only if its schema is exactly
//!   the collector's, and its triggers and views never run.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::{Map, Value, json};

use crate::error::Error;

const STORE_SCHEMA: &str = "
-- Every event taken, by id: a redelivery is recognised and changes nothing.
CREATE TABLE IF NOT EXISTS seen (
    id TEXT PRIMARY KEY,
    at_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS seen_by_time ON seen (at_ns);
-- One row per monitor: a host's baseline (template units run several).
CREATE TABLE IF NOT EXISTS hosts (
    host TEXT NOT NULL,
    instance TEXT NOT NULL,
    role TEXT,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    -- The heartbeat period the daemon announced (NULL: none runs).
    period_s REAL,
    digest TEXT,
    generation INTEGER,
    max_generation INTEGER,
    backend TEXT,
    version TEXT,
    last_scan TEXT,
    stream TEXT,
    last_seq INTEGER,
    -- Numbers it gave a second time, since this one (its numbering was set
    -- back): said once per setting back.
    reused_from INTEGER,
    -- ok, stopped (said fim-offline) or silent.
    state TEXT NOT NULL,
    state_since_ns INTEGER NOT NULL,
    -- Why its baseline was refused, until a verified one is in use again.
    tampered TEXT,
    -- The generation and digest flagged already, so a flag is raised once.
    rollback_flagged INTEGER,
    unknown_flagged TEXT,
    -- Where the last check's scan began in the collector's order of events.
    scan_mark INTEGER,
    -- The broker account its events came from first (AMQP's validated
    -- user_id); events for it from another account are refused.
    publisher TEXT,
    PRIMARY KEY (host, instance)
);
-- Numbers a monitor's stream skipped (events lost), first to last, until
-- one arrives late; what a monitor lost is their sum.
CREATE TABLE IF NOT EXISTS holes (
    host TEXT NOT NULL,
    instance TEXT NOT NULL,
    stream TEXT NOT NULL,
    first INTEGER NOT NULL,
    last INTEGER NOT NULL,
    PRIMARY KEY (host, instance, stream, first)
) WITHOUT ROWID;
-- Open drift: one row per path, the last event about it.
CREATE TABLE IF NOT EXISTS drift (
    host TEXT NOT NULL,
    instance TEXT NOT NULL,
    path TEXT NOT NULL,
    type TEXT NOT NULL,
    severity TEXT,
    rule TEXT,
    first_seen_ns INTEGER NOT NULL,
    last_seen_ns INTEGER NOT NULL,
    seen_order INTEGER NOT NULL,
    event TEXT NOT NULL,
    acked_by TEXT,
    acked_ns INTEGER,
    PRIMARY KEY (host, instance, path)
);
-- The signed baselines an operator published (`tripseal fleet publish`).
CREATE TABLE IF NOT EXISTS published (
    digest TEXT PRIMARY KEY,
    full_digest TEXT NOT NULL,
    role TEXT,
    host TEXT,
    generation INTEGER NOT NULL,
    signers TEXT NOT NULL,
    published_ns INTEGER NOT NULL
);
-- What the collector flagged, newest last.
CREATE TABLE IF NOT EXISTS flags (
    n INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ns INTEGER NOT NULL,
    type TEXT NOT NULL,
    host TEXT NOT NULL,
    instance TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The largest event the collector takes; a bigger one is malformed.
pub const MAX_EVENT_BYTES: usize = 1 << 20;
/// How long event ids are kept for recognising redeliveries: a broker gives
/// a message again within seconds of losing its consumer, and a host's sink
/// resends within its backoff; a day is ample, and bounds the table.
const SEEN_KEPT_NS: i64 = 86_400 * 1_000_000_000;

/// How many heartbeat periods without a word make a host silent.
pub const SILENT_AFTER_PERIODS: f64 = 3.0;
/// The heartbeat periods taken as a host announces them; outside, clamped,
/// so that one forged heartbeat can neither switch silence off nor make a
/// host flap.
const PERIOD_RANGE_S: (f64, f64) = (1.0, 86_400.0);
/// The largest sequence number taken (JSON's exact integers): arithmetic on
/// numbers a host sent can never overflow.
const MAX_SEQ: i64 = (1 << 53) - 1;
/// Flags kept in the store's history.
const FLAGS_KEPT: i64 = 10_000;

/// Something the collector found, to be said as an event of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Flag {
    pub kind: &'static str,
    pub host: String,
    pub instance: String,
    pub fields: Map<String, Value>,
}

/// What became of one message.
#[derive(Debug, PartialEq)]
pub enum Taken {
    Stored(Vec<Flag>),
    /// Taken before (a redelivery).
    Duplicate,
    /// Not an event of tripseal's; why.
    Malformed(String),
    /// One of the collector's own flags, come back through the feed.
    Own,
    /// Published by another broker account than the monitor's events come
    /// from: refused, with the flag that says so (the first time).
    Impostor(Vec<Flag>),
}

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// A monitor as `fleet status` and the API show it.
#[derive(Clone, Debug)]
pub struct HostState {
    pub host: String,
    pub instance: String,
    pub role: Option<String>,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub period_s: Option<f64>,
    pub digest: Option<String>,
    pub generation: Option<i64>,
    pub max_generation: Option<i64>,
    pub backend: Option<String>,
    pub version: Option<String>,
    pub last_scan: Option<Value>,
    pub missing: i64,
    /// The numbering of its events: the stream and the last number taken.
    pub stream: Option<String>,
    pub last_seq: Option<i64>,
    pub state: String,
    pub state_since_ns: i64,
    pub tampered: Option<String>,
    /// The published baseline its digest is (`None`: none is).
    pub published: Option<Published>,
    /// Open drift not acknowledged, by severity.
    pub open_drift: Vec<(String, i64)>,
}

/// A baseline an operator published.
#[derive(Clone, Debug)]
pub struct Published {
    pub digest: String,
    pub full_digest: String,
    pub role: Option<String>,
    pub host: Option<String>,
    pub generation: i64,
    pub signers: Vec<String>,
    pub published_ns: i64,
}

/// A flag as the store keeps it.
#[derive(Clone, Debug)]
pub struct FlagRecord {
    pub at_ns: i64,
    pub kind: String,
    pub host: String,
    pub instance: String,
    pub fields: Value,
}

/// One open drift record.
#[derive(Clone, Debug)]
pub struct DriftRow {
    pub path: String,
    pub kind: String,
    pub severity: Option<String>,
    pub rule: Option<String>,
    pub first_seen_ns: i64,
    pub last_seen_ns: i64,
    pub event: Value,
    pub acked_by: Option<String>,
}

/// The problems a monitor has, worst first; empty when all is well.
pub fn problems(h: &HostState) -> Vec<&'static str> {
    let mut p = Vec::new();
    if h.tampered.is_some() {
        p.push("tampered");
    }
    if h.state == "silent" {
        p.push("silent");
    }
    if let (Some(g), Some(max)) = (h.generation, h.max_generation)
        && g < max
    {
        p.push("rollback");
    }
    if h.digest.is_some() && h.published.is_none() {
        p.push("unknown-baseline");
    }
    if h.missing > 0 {
        p.push("gap");
    }
    if h.open_drift.iter().any(|(_, n)| *n > 0) {
        p.push("drift");
    }
    if h.state == "stopped" {
        p.push("stopped");
    }
    p
}

/// Every problem a monitor can have, worst first.
pub const PROBLEMS: [&str; 7] = [
    "tampered",
    "silent",
    "rollback",
    "unknown-baseline",
    "gap",
    "drift",
    "stopped",
];

/// How bad a monitor's state is: lower is worse (for "worst first").
pub fn rank(h: &HostState) -> usize {
    problems(h)
        .first()
        .and_then(|p| PROBLEMS.iter().position(|o| o == p))
        .unwrap_or(PROBLEMS.len())
}

impl Store {
    /// Opens the store at `path`, making it if `create`.
    pub fn open(path: &Path, create: bool) -> Result<Store, Error> {
        let fail = |detail: String| Error::Store {
            path: path.to_path_buf(),
            detail,
        };
        for p in [
            path.to_path_buf(),
            crate::files::sibling(path, "-wal"),
            crate::files::sibling(path, "-shm"),
        ] {
            if let Ok(m) = std::fs::symlink_metadata(&p)
                && !m.is_file()
            {
                return Err(fail(format!(
                    "{} is {}, where the collector keeps its state in a regular file; \
                     remove it",
                    crate::escape::escape_path(&p),
                    crate::files::kind_name(&m)
                )));
            }
        }
        if !create && !path.exists() {
            return Err(fail(
                "no collector store here: `tripseal collect --store FILE` makes it, and \
                 `tripseal fleet` reads the same --store"
                    .into(),
            ));
        }
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
            // The store names hosts and what drifted on them: not for others.
            if !path.exists() {
                crate::files::create_exclusive(path, 0o600).map_err(|e| {
                    fail(format!(
                        "cannot make it ({e}); make its directory (the package makes \
                         /var/lib/tripseal) or give another --store"
                    ))
                })?;
            }
        }
        let conn = Connection::open_with_flags(path, flags).map_err(|e| fail(e.to_string()))?;
        crate::sqlite::harden(&conn).map_err(|e| fail(e.to_string()))?;
        conn.execute_batch("PRAGMA busy_timeout = 10000;")
            .map_err(|e| fail(e.to_string()))?;
        // Judged before anything is written: a baseline or another file
        // given as --store by mistake is left exactly as it was.
        let rows = crate::sqlite::schema_rows(&conn).map_err(|e| fail(e.to_string()))?;
        if rows.is_empty() {
            conn.execute_batch(STORE_SCHEMA)
                .map_err(|e| fail(e.to_string()))?;
        } else if rows != crate::sqlite::schema_made_by(&[STORE_SCHEMA]) {
            return Err(fail(
                "not a collector store of tripseal's (its schema differs); move it away".into(),
            ));
        }
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;")
            .map_err(|e| fail(e.to_string()))?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::Store {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }

    /// Starts a transaction that [`Store::commit`] ends: what is taken in it
    /// is stored together, or not at all.
    pub fn begin(&mut self) -> Result<(), Error> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| self.err(e))
    }

    /// Starts a read transaction: what is read until [`Store::commit`] is
    /// one consistent state, whatever the collector writes meanwhile.
    pub fn snapshot(&mut self) -> Result<(), Error> {
        self.conn.execute_batch("BEGIN").map_err(|e| self.err(e))
    }

    pub fn commit(&mut self) -> Result<(), Error> {
        self.conn.execute_batch("COMMIT").map_err(|e| self.err(e))
    }

    pub fn rollback(&mut self) {
        let _ = self.conn.execute_batch("ROLLBACK");
    }

    fn bump(&self, name: &str, by: i64) -> Result<i64, Error> {
        self.conn
            .query_row(
                "INSERT INTO counters (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = value + ?2 RETURNING value",
                params![name, by],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }

    /// A counter's value (0 when never counted).
    pub fn counter(&self, name: &str) -> Result<i64, Error> {
        self.conn
            .query_row("SELECT value FROM counters WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::unwrap_or_default)
            .map_err(|e| self.err(e))
    }

    /// A value that is set, not counted (the feeds' lag).
    pub fn set_gauge(&mut self, name: &str, value: i64) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO counters (name, value) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET value = ?2",
                params![format!("gauge:{name}"), value],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// A gauge's value (`None`: never set).
    pub fn gauge(&self, name: &str) -> Result<Option<i64>, Error> {
        self.conn
            .query_row(
                "SELECT value FROM counters WHERE name = ?1",
                [format!("gauge:{name}")],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Takes one message from the feed, received at `now_ns`, inside the
    /// transaction [`Store::begin`] opened.
    pub fn take(
        &mut self,
        body: &[u8],
        publisher: Option<&str>,
        now_ns: i64,
    ) -> Result<Taken, Error> {
        let event = match parse(body) {
            Ok(e) => e,
            Err(why) => {
                self.bump("malformed", 1)?;
                return Ok(Taken::Malformed(why));
            }
        };
        let fresh = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO seen (id, at_ns) VALUES (?1, ?2)",
                params![event.id, now_ns],
            )
            .map_err(|e| self.err(e))?;
        if fresh == 0 {
            self.bump("duplicates", 1)?;
            return Ok(Taken::Duplicate);
        }
        let order = self.bump("order", 1)?;
        if event.kind.starts_with("fim-host-")
            || event.body.get("passed_on") == Some(&Value::Bool(true))
        {
            // The collector's own flags (its --emit may reach the feed it
            // reads): never judged as a host's word. (A host that marks its
            // own events so only silences itself, which it can anyway.)
            self.bump("own", 1)?;
            return Ok(Taken::Own);
        }
        let mut j = Judge {
            store: self,
            e: &event,
            publisher,
            now_ns,
            order,
            flags: Vec::new(),
        };
        let accepted = j.run()?;
        let flags = j.flags;
        self.record(&flags, now_ns)?;
        if !accepted {
            self.bump("impostors", 1)?;
            return Ok(Taken::Impostor(flags));
        }
        self.bump("consumed", 1)?;
        Ok(Taken::Stored(flags))
    }

    /// Keeps `flags` in the store's history.
    fn record(&self, flags: &[Flag], now_ns: i64) -> Result<(), Error> {
        for f in flags {
            self.conn
                .execute(
                    "INSERT INTO flags (at_ns, type, host, instance, detail) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        now_ns,
                        f.kind,
                        f.host,
                        f.instance,
                        Value::Object(f.fields.clone()).to_string()
                    ],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Flags the monitors nothing was heard from for
    /// [`SILENT_AFTER_PERIODS`] periods while the collector listened (since
    /// `listening_since_ns`); `default_period_s` for those that announced
    /// none (scheduled checks only). Inside a transaction.
    pub fn judge_silence(
        &mut self,
        now_ns: i64,
        listening_since_ns: i64,
        default_period_s: f64,
    ) -> Result<Vec<Flag>, Error> {
        struct Quiet {
            host: String,
            instance: String,
            role: Option<String>,
            last: i64,
            period: Option<f64>,
            state: String,
        }
        let rows: Vec<Quiet> = {
            let mut stmt = self
                .conn
                .prepare(
                    "SELECT host, instance, role, last_seen_ns, period_s, state FROM hosts \
                     WHERE state != 'silent'",
                )
                .map_err(|e| self.err(e))?;
            stmt.query_map([], |r| {
                Ok(Quiet {
                    host: r.get(0)?,
                    instance: r.get(1)?,
                    role: r.get(2)?,
                    last: r.get(3)?,
                    period: r.get(4)?,
                    state: r.get(5)?,
                })
            })
            .and_then(|rows| rows.collect::<Result<_, _>>())
            .map_err(|e| self.err(e))?
        };
        let mut flags = Vec::new();
        for Quiet {
            host,
            instance,
            role,
            last,
            period,
            state,
        } in rows
        {
            let period = period.filter(|p| *p > 0.0).unwrap_or(default_period_s);
            let limit_ns = (period * SILENT_AFTER_PERIODS * 1e9) as i64;
            let since = last.max(listening_since_ns);
            if now_ns - since <= limit_ns {
                continue;
            }
            self.conn
                .execute(
                    "UPDATE hosts SET state = 'silent', state_since_ns = ?3 \
                     WHERE host = ?1 AND instance = ?2",
                    params![host, instance, now_ns],
                )
                .map_err(|e| self.err(e))?;
            let mut fields = subject(&host, &instance, role.as_deref());
            fields.insert("last_heard".into(), crate::units::iso8601(last).into());
            fields.insert(
                "silent_for".into(),
                json!(((now_ns - last) as f64 / 1e9).round()),
            );
            fields.insert("period".into(), json!(period));
            fields.insert("was".into(), state.clone().into());
            fields.insert(
                "detail".into(),
                format!(
                    "nothing heard from {} for {} ({} periods of {}s){}",
                    shown(&host, &instance),
                    crate::units::human_duration(now_ns - last),
                    SILENT_AFTER_PERIODS,
                    period,
                    if state == "stopped" {
                        "; it said it was stopping"
                    } else {
                        ""
                    }
                )
                .into(),
            );
            flags.push(Flag {
                kind: "fim-host-silent",
                host,
                instance,
                fields,
            });
        }
        self.record(&flags, now_ns)?;
        Ok(flags)
    }

    /// Forgets event ids older than a day: redeliveries come within
    /// minutes, and the table must not grow for ever.
    pub fn prune(&mut self, now_ns: i64) -> Result<(), Error> {
        self.conn
            .execute("DELETE FROM seen WHERE at_ns < ?1", [now_ns - SEEN_KEPT_NS])
            .and_then(|_| {
                self.conn.execute(
                    "DELETE FROM flags WHERE n <= (SELECT max(n) FROM flags) - ?1",
                    [FLAGS_KEPT],
                )
            })
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Records a baseline the operator published (its seal verified by
    /// the caller).
    pub fn publish(&mut self, p: &Published) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO published (digest, full_digest, role, host, generation, signers, \
                 published_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
                 ON CONFLICT (digest) DO UPDATE SET full_digest = ?2, role = ?3, host = ?4, \
                 generation = ?5, signers = ?6, published_ns = ?7",
                params![
                    p.digest,
                    p.full_digest,
                    p.role,
                    p.host,
                    p.generation,
                    p.signers.join(","),
                    p.published_ns
                ],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The published baseline with this digest (16 hex digits), if any.
    pub fn published(&self, digest: &str) -> Result<Option<Published>, Error> {
        self.conn
            .query_row(
                "SELECT digest, full_digest, role, host, generation, signers, published_ns \
                 FROM published WHERE digest = ?1",
                [digest],
                |r| {
                    Ok(Published {
                        digest: r.get(0)?,
                        full_digest: r.get(1)?,
                        role: r.get(2)?,
                        host: r.get(3)?,
                        generation: r.get(4)?,
                        signers: r
                            .get::<_, String>(5)?
                            .split(',')
                            .filter(|s| !s.is_empty())
                            .map(str::to_string)
                            .collect(),
                        published_ns: r.get(6)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every monitor, worst first.
    pub fn hosts(&self) -> Result<Vec<HostState>, Error> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT host, instance, role, first_seen_ns, last_seen_ns, period_s, digest, \
                 generation, max_generation, backend, version, last_scan, \
                 (SELECT CAST(min(total(o.last - o.first + 1), 9007199254740991) AS INTEGER) \
                  FROM holes o WHERE o.host = hosts.host AND o.instance = hosts.instance), \
                 state, \
                 state_since_ns, tampered, stream, last_seq FROM hosts ORDER BY host, instance",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(HostState {
                    host: r.get(0)?,
                    instance: r.get(1)?,
                    role: r.get(2)?,
                    first_seen_ns: r.get(3)?,
                    last_seen_ns: r.get(4)?,
                    period_s: r.get(5)?,
                    digest: r.get(6)?,
                    generation: r.get(7)?,
                    max_generation: r.get(8)?,
                    backend: r.get(9)?,
                    version: r.get(10)?,
                    last_scan: r
                        .get::<_, Option<String>>(11)?
                        .and_then(|s| serde_json::from_str(&s).ok()),
                    missing: r.get(12)?,
                    state: r.get(13)?,
                    state_since_ns: r.get(14)?,
                    tampered: r.get(15)?,
                    stream: r.get(16)?,
                    last_seq: r.get(17)?,
                    published: None,
                    open_drift: Vec::new(),
                })
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(|e| self.err(e))?;
        let mut hosts = Vec::with_capacity(rows.len());
        for mut h in rows {
            if let Some(d) = &h.digest {
                h.published = self
                    .published(d)?
                    .filter(|p| serves(p, h.role.as_deref(), &h.host));
            }
            h.open_drift = self.open_drift_counts(&h.host, &h.instance)?;
            hosts.push(h);
        }
        hosts.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then_with(|| (&a.host, &a.instance).cmp(&(&b.host, &b.instance)))
        });
        Ok(hosts)
    }

    fn open_drift_counts(&self, host: &str, instance: &str) -> Result<Vec<(String, i64)>, Error> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT coalesce(severity, 'unknown'), count(*) FROM drift \
                 WHERE host = ?1 AND instance = ?2 AND acked_by IS NULL \
                 GROUP BY 1 ORDER BY 1",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([host, instance], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.err(e))
    }

    /// The monitors `name` designates: `HOST/INSTANCE`, or `HOST` (all of
    /// its instances).
    pub fn resolve(&self, name: &str) -> Result<Vec<(String, String)>, Error> {
        let all: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT host, instance FROM hosts ORDER BY host, instance")
                .map_err(|e| self.err(e))?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect::<Result<_, _>>())
                .map_err(|e| self.err(e))?
        };
        // HOST names every monitor of the host; HOST/INSTANCE one.
        let of_host: Vec<_> = all.iter().filter(|(h, _)| h == name).cloned().collect();
        if !of_host.is_empty() {
            return Ok(of_host);
        }
        let of_host: Vec<_> = all
            .into_iter()
            .filter(|(h, i)| shown(h, i) == name)
            .collect();
        if of_host.is_empty() {
            return Err(Error::invalid(format!(
                "no host {} has reported to this collector; `tripseal fleet status` lists \
                 those that have",
                crate::escape::escape_bytes(name.as_bytes())
            )));
        }
        Ok(of_host)
    }

    /// The open drift of one monitor, acknowledged or not.
    pub fn drift(&self, host: &str, instance: &str) -> Result<Vec<DriftRow>, Error> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT path, type, severity, rule, first_seen_ns, last_seen_ns, event, \
                 acked_by FROM drift WHERE host = ?1 AND instance = ?2 ORDER BY path",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([host, instance], |r| {
            Ok(DriftRow {
                path: r.get(0)?,
                kind: r.get(1)?,
                severity: r.get(2)?,
                rule: r.get(3)?,
                first_seen_ns: r.get(4)?,
                last_seen_ns: r.get(5)?,
                event: serde_json::from_str(&r.get::<_, String>(6)?).unwrap_or(Value::Null),
                acked_by: r.get(7)?,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }

    /// Acknowledges the open drift of `paths` on a monitor; returns the
    /// paths that had none.
    pub fn ack(
        &mut self,
        host: &str,
        instance: &str,
        paths: &[String],
        by: &str,
        now_ns: i64,
    ) -> Result<Vec<String>, Error> {
        let mut unknown = Vec::new();
        for p in paths {
            let n = self
                .conn
                .execute(
                    "UPDATE drift SET acked_by = ?4, acked_ns = ?5 \
                     WHERE host = ?1 AND instance = ?2 AND path = ?3",
                    params![host, instance, p, by, now_ns],
                )
                .map_err(|e| self.err(e))?;
            if n == 0 {
                unknown.push(p.clone());
            }
        }
        Ok(unknown)
    }

    /// Accepts a monitor's lost events and its present generation as they
    /// are: the operator has looked.
    pub fn ack_host(
        &mut self,
        host: &str,
        instance: &str,
        lost: bool,
        rollback: bool,
    ) -> Result<(), Error> {
        if lost {
            self.conn
                .execute(
                    "DELETE FROM holes WHERE host = ?1 AND instance = ?2",
                    [host, instance],
                )
                .map_err(|e| self.err(e))?;
        }
        if rollback {
            self.conn
                .execute(
                    "UPDATE hosts SET max_generation = generation, rollback_flagged = NULL \
                     WHERE host = ?1 AND instance = ?2",
                    [host, instance],
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The last `limit` flags, newest first.
    pub fn recent_flags(&self, limit: i64) -> Result<Vec<FlagRecord>, Error> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT at_ns, type, host, instance, detail FROM flags ORDER BY n DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        stmt.query_map([limit], |r| {
            Ok(FlagRecord {
                at_ns: r.get(0)?,
                kind: r.get(1)?,
                host: r.get(2)?,
                instance: r.get(3)?,
                fields: serde_json::from_str(&r.get::<_, String>(4)?).unwrap_or(Value::Null),
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(|e| self.err(e))
    }
}

/// Whether published baseline `p` is one a monitor of `role` on `host` may
/// use: a role's for hosts of that role, a host's for that host.
fn serves(p: &Published, role: Option<&str>, host: &str) -> bool {
    match &p.role {
        Some(r) => role == Some(r.as_str()),
        None => role.is_none() && p.host.as_deref() == Some(host),
    }
}

/// How a monitor is named to people: `HOST`, or `HOST/INSTANCE` when the
/// baseline is not the host's default one (named after the host).
pub fn shown(host: &str, instance: &str) -> String {
    if instance == host || instance.is_empty() {
        host.to_string()
    } else {
        format!("{host}/{instance}")
    }
}

/// The fields that say which monitor a flag is about.
fn subject(host: &str, instance: &str, role: Option<&str>) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("host".into(), host.into());
    // Not `instance`: the envelope's own field names the collector's.
    m.insert("host_instance".into(), instance.into());
    m.insert("monitor".into(), shown(host, instance).into());
    if let Some(r) = role {
        m.insert("role".into(), r.into());
    }
    m
}

/// The parts of an event the collector reads; the rest is kept as it came.
struct Incoming {
    id: String,
    kind: String,
    host: String,
    instance: String,
    stream: Option<String>,
    seq: Option<i64>,
    body: Value,
}

fn parse(body: &[u8]) -> Result<Incoming, String> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(format!("{} bytes, more than an event has", body.len()));
    }
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    let text = |k: &str, max: usize| -> Result<String, String> {
        match v.get(k).and_then(Value::as_str) {
            Some(s) if !s.is_empty() && s.len() <= max => Ok(s.to_string()),
            Some(_) => Err(format!("its {k} is empty or too long")),
            None => Err(format!("no {k}")),
        }
    };
    let kind = text("type", 64)?;
    if !kind.starts_with("fim-") {
        return Err(format!(
            "type {} is not a tripseal event",
            crate::escape::escape_bytes(kind.as_bytes())
        ));
    }
    let id = text("id", 64)?;
    let hostname = text("hostname", 300)?;
    let host = hostname
        .strip_prefix("fim@")
        .filter(|h| !h.is_empty())
        .ok_or("its hostname is not fim@HOST")?
        .to_string();
    let instance = match v.get("instance") {
        None => host.clone(),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 255 => s.clone(),
        Some(_) => return Err("its instance is not a short, non-empty string".into()),
    };
    let stream = match v.get("stream") {
        None => None,
        Some(Value::String(s)) if s.len() <= 64 => Some(s.clone()),
        Some(_) => return Err("its stream is not a short string".into()),
    };
    let seq = match v.get("seq") {
        None => None,
        Some(n) => Some(
            n.as_i64()
                .filter(|n| (1..=MAX_SEQ).contains(n))
                .ok_or("its seq is not a number from 1 to 2^53 - 1")?,
        ),
    };
    Ok(Incoming {
        id,
        kind,
        host,
        instance,
        stream,
        seq,
        body: v,
    })
}

/// The judgement of one event about one monitor.
struct Judge<'a> {
    store: &'a Store,
    e: &'a Incoming,
    /// The broker account that published it, when the broker vouches for it.
    publisher: Option<&'a str>,
    now_ns: i64,
    /// The event's place in the order the collector took events in.
    order: i64,
    flags: Vec<Flag>,
}

/// The row of a monitor that judging reads.
struct Row {
    role: Option<String>,
    digest: Option<String>,
    max_generation: Option<i64>,
    stream: Option<String>,
    last_seq: Option<i64>,
    state: String,
    state_since_ns: i64,
    rollback_flagged: Option<i64>,
    unknown_flagged: Option<String>,
    scan_mark: Option<i64>,
    tampered: Option<String>,
    publisher: Option<String>,
    reused_from: Option<i64>,
}

impl Judge<'_> {
    fn exec(&self, sql: &str, p: impl rusqlite::Params) -> Result<(), Error> {
        self.store
            .conn
            .execute(sql, p)
            .map(|_| ())
            .map_err(|e| self.store.err(e))
    }

    fn flag(&mut self, kind: &'static str, role: Option<&str>, more: Map<String, Value>) {
        let mut fields = subject(&self.e.host, &self.e.instance, role);
        fields.extend(more);
        self.flags.push(Flag {
            kind,
            host: self.e.host.clone(),
            instance: self.e.instance.clone(),
            fields,
        });
    }

    fn row(&self) -> Result<Option<Row>, Error> {
        self.store
            .conn
            .query_row(
                "SELECT role, digest, max_generation, stream, last_seq, state, \
                 state_since_ns, rollback_flagged, unknown_flagged, scan_mark, tampered, \
                 publisher, reused_from FROM hosts \
                 WHERE host = ?1 AND instance = ?2",
                [&self.e.host, &self.e.instance],
                |r| {
                    Ok(Row {
                        role: r.get(0)?,
                        digest: r.get(1)?,
                        max_generation: r.get(2)?,
                        stream: r.get(3)?,
                        last_seq: r.get(4)?,
                        state: r.get(5)?,
                        state_since_ns: r.get(6)?,
                        rollback_flagged: r.get(7)?,
                        unknown_flagged: r.get(8)?,
                        scan_mark: r.get(9)?,
                        tampered: r.get(10)?,
                        publisher: r.get(11)?,
                        reused_from: r.get(12)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.store.err(e))
    }

    /// An event for this monitor from another broker account than its own:
    /// refused, and flagged (once per account).
    fn impostor(&mut self, bound: &str, from: &str) -> Result<(), Error> {
        let (h, i) = (self.e.host.clone(), self.e.instance.clone());
        let said = self
            .store
            .conn
            .query_row(
                "SELECT count(*) FROM flags WHERE type = 'fim-host-impostor' AND host = ?1 \
                 AND instance = ?2 AND json_extract(detail, '$.publisher') = ?3",
                params![h, i, from],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.store.err(e))?;
        if said == 0 {
            let mut m = Map::new();
            m.insert("publisher".into(), from.into());
            m.insert("expected_publisher".into(), bound.into());
            m.insert("event_type".into(), self.e.kind.clone().into());
            m.insert(
                "detail".into(),
                format!(
                    "an event claiming to be from {} was published by broker account {}, \
                     while its events come from {}: refused (another host, or someone with \
                     its credentials, speaking for it)",
                    shown(&h, &i),
                    from,
                    bound
                )
                .into(),
            );
            self.flag("fim-host-impostor", None, m);
        }
        Ok(())
    }

    /// Judges the event; `false` when it was refused.
    fn run(&mut self) -> Result<bool, Error> {
        let (h, i, now) = (&self.e.host, &self.e.instance, self.now_ns);
        let row = match self.row()? {
            Some(r) => r,
            None => {
                self.exec(
                    "INSERT INTO hosts (host, instance, first_seen_ns, last_seen_ns, state, \
                     state_since_ns) VALUES (?1, ?2, ?3, ?3, 'ok', ?3)",
                    params![h, i, now],
                )?;
                self.row()?.expect("inserted above")
            }
        };
        if let Some(p) = self.publisher {
            match &row.publisher {
                Some(bound) if bound != p => {
                    self.impostor(bound, p)?;
                    return Ok(false);
                }
                Some(_) => {}
                None => self.exec(
                    "UPDATE hosts SET publisher = ?3 WHERE host = ?1 AND instance = ?2",
                    params![h, i, p],
                )?,
            }
        }
        // The baseline an event names says the role (none: a host's own);
        // an event that names none leaves it as it was.
        let role = match self.e.body.get("baseline") {
            Some(b) if b.is_object() => self.role(),
            _ => row.role.clone(),
        };
        // Alive: heard from, whatever it says.
        let state = if self.e.kind == "fim-offline" {
            "stopped"
        } else {
            "ok"
        };
        if row.state == "silent" {
            let mut m = Map::new();
            m.insert(
                "silent_for".into(),
                json!(((now - row.state_since_ns) as f64 / 1e9).round()),
            );
            m.insert(
                "detail".into(),
                format!(
                    "{} is heard from again after {} of silence",
                    shown(h, i),
                    crate::units::human_duration(now - row.state_since_ns)
                )
                .into(),
            );
            self.flag("fim-host-back", role.as_deref(), m);
        }
        let since = if state == row.state {
            row.state_since_ns
        } else {
            now
        };
        self.exec(
            "UPDATE hosts SET last_seen_ns = ?3, state = ?4, state_since_ns = ?5, \
             role = ?6 WHERE host = ?1 AND instance = ?2",
            params![h, i, now, state, since, role],
        )?;
        self.sequence(&row, role.as_deref())?;
        self.baseline(&row, role.as_deref())?;
        self.by_type(&row, role.as_deref())?;
        Ok(true)
    }

    fn role(&self) -> Option<String> {
        self.e
            .body
            .get("baseline")?
            .get("role")?
            .as_str()
            .filter(|r| r.len() <= 255)
            .map(str::to_string)
    }

    /// The hole of this monitor's `stream` that `seq` falls in, if any.
    fn hole_with(&self, stream: &str, seq: i64) -> Result<Option<(i64, i64)>, Error> {
        self.store
            .conn
            .query_row(
                "SELECT first, last FROM holes WHERE host = ?1 AND instance = ?2 \
                 AND stream = ?3 AND first <= ?4 AND last >= ?4",
                params![self.e.host, self.e.instance, stream, seq],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|e| self.store.err(e))
    }

    /// Numbers missing between the last one and this one are events lost.
    fn sequence(&mut self, row: &Row, role: Option<&str>) -> Result<(), Error> {
        let (Some(stream), Some(seq)) = (&self.e.stream, self.e.seq) else {
            return Ok(());
        };
        let (h, i) = (&self.e.host, &self.e.instance);
        match (&row.stream, row.last_seq) {
            (Some(s), Some(last)) if s == stream => {
                if seq > last + 1 {
                    let lost = seq - last - 1;
                    self.exec(
                        "UPDATE hosts SET last_seq = ?3, reused_from = NULL \
                         WHERE host = ?1 AND instance = ?2",
                        params![h, i, seq],
                    )?;
                    self.exec(
                        "INSERT OR REPLACE INTO holes (host, instance, stream, first, last) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![h, i, stream, last + 1, seq - 1],
                    )?;
                    let mut m = Map::new();
                    m.insert("reason".into(), "missing".into());
                    m.insert("missing".into(), lost.into());
                    m.insert("first".into(), (last + 1).into());
                    m.insert("last".into(), (seq - 1).into());
                    m.insert(
                        "detail".into(),
                        format!(
                            "{lost} events of {} never arrived (numbers {} to {}): lost on \
                             the way, dropped by a full outbox, or removed",
                            shown(h, i),
                            last + 1,
                            seq - 1
                        )
                        .into(),
                    );
                    self.flag("fim-host-gap", role, m);
                } else if let Some((first, end)) = self.hole_with(stream, seq)? {
                    // Late: a number counted missing arrived; its hole shrinks.
                    self.exec(
                        "DELETE FROM holes WHERE host = ?1 AND instance = ?2 AND stream = ?3 \
                         AND first = ?4",
                        params![h, i, stream, first],
                    )?;
                    for (a, b) in [(first, seq - 1), (seq + 1, end)] {
                        if a <= b {
                            self.exec(
                                "INSERT INTO holes (host, instance, stream, first, last) \
                                 VALUES (?1, ?2, ?3, ?4, ?5)",
                                params![h, i, stream, a, b],
                            )?;
                        }
                    }
                } else if seq <= last {
                    // A number already taken, in another event: the host's
                    // numbering was set back (its outbox edited), which
                    // would let lost events pass for late ones.
                    if row.reused_from.is_none_or(|from| seq <= from) {
                        let mut m = Map::new();
                        m.insert("reason".into(), "reused".into());
                        // Not `seq`: that field is the collector's own
                        // numbering of its events.
                        m.insert("number".into(), seq.into());
                        m.insert("reached".into(), last.into());
                        m.insert(
                            "detail".into(),
                            format!(
                                "{} gave number {seq} again (it had reached {last}): its \
                                 numbering was set back, as by an edit of its event outbox",
                                shown(h, i)
                            )
                            .into(),
                        );
                        self.flag("fim-host-gap", role, m);
                    }
                    self.exec(
                        "UPDATE hosts SET reused_from = ?3 WHERE host = ?1 AND instance = ?2",
                        params![h, i, seq],
                    )?;
                } else {
                    self.exec(
                        "UPDATE hosts SET last_seq = ?3, reused_from = NULL \
                         WHERE host = ?1 AND instance = ?2",
                        params![h, i, seq],
                    )?;
                }
            }
            (Some(_), _) => {
                // A new numbering: the host's outbox was made anew. What
                // waited in the old one is unaccounted for.
                self.exec(
                    "UPDATE hosts SET stream = ?3, last_seq = ?4, reused_from = NULL \
                     WHERE host = ?1 AND instance = ?2",
                    params![h, i, stream, seq],
                )?;
                // The old stream's holes can no longer be filled: what they
                // lost is said, and stays counted until acknowledged.
                let mut m = Map::new();
                m.insert("reason".into(), "new-stream".into());
                m.insert("host_stream".into(), stream.clone().into());
                m.insert(
                    "detail".into(),
                    format!(
                        "{} numbers its events anew (its event outbox was made again): events \
                         that waited in the old one may be lost",
                        shown(h, i)
                    )
                    .into(),
                );
                self.flag("fim-host-gap", role, m);
            }
            (None, _) => self.exec(
                "UPDATE hosts SET stream = ?3, last_seq = ?4 WHERE host = ?1 AND instance = ?2",
                params![h, i, stream, seq],
            )?,
        }
        Ok(())
    }

    /// Which baseline the host checks against: a rollback, or one that no
    /// published signed baseline of its role has.
    fn baseline(&mut self, row: &Row, role: Option<&str>) -> Result<(), Error> {
        let Some(b) = self.e.body.get("baseline") else {
            return Ok(());
        };
        let (Some(digest), Some(generation)) = (
            b.get("digest")
                .and_then(Value::as_str)
                .filter(|d| d.len() <= 64),
            b.get("generation").and_then(Value::as_i64),
        ) else {
            return Ok(());
        };
        let (h, i) = (self.e.host.clone(), self.e.instance.clone());
        if row.digest.as_deref() != Some(digest) {
            // Another baseline: drift judged against the old one is moot,
            // and a refusal of the old one no longer stands.
            self.exec(
                "DELETE FROM drift WHERE host = ?1 AND instance = ?2",
                params![h, i],
            )?;
            self.exec(
                "UPDATE hosts SET tampered = NULL WHERE host = ?1 AND instance = ?2",
                params![h, i],
            )?;
        }
        let max = row.max_generation.unwrap_or(generation).max(generation);
        self.exec(
            "UPDATE hosts SET digest = ?3, generation = ?4, max_generation = ?5 \
             WHERE host = ?1 AND instance = ?2",
            params![h, i, digest, generation, max],
        )?;
        if generation >= max && row.rollback_flagged.is_some() {
            self.exec(
                "UPDATE hosts SET rollback_flagged = NULL WHERE host = ?1 AND instance = ?2",
                params![h, i],
            )?;
        }
        if generation < max && row.rollback_flagged != Some(generation) {
            self.exec(
                "UPDATE hosts SET rollback_flagged = ?3 WHERE host = ?1 AND instance = ?2",
                params![h, i, generation],
            )?;
            let mut m = Map::new();
            m.insert("generation".into(), generation.into());
            m.insert("highest".into(), max.into());
            m.insert("digest".into(), digest.into());
            m.insert(
                "detail".into(),
                format!(
                    "{} checks against generation {generation}, older than generation {max} \
                     it reported before",
                    shown(&h, &i)
                )
                .into(),
            );
            self.flag("fim-host-rollback", role, m);
        }
        let known = self
            .store
            .published(digest)?
            .is_some_and(|p| serves(&p, role, &h));
        if known {
            if row.unknown_flagged.is_some() {
                self.exec(
                    "UPDATE hosts SET unknown_flagged = NULL WHERE host = ?1 AND instance = ?2",
                    params![h, i],
                )?;
            }
        } else if row.unknown_flagged.as_deref() != Some(digest) {
            self.exec(
                "UPDATE hosts SET unknown_flagged = ?3 WHERE host = ?1 AND instance = ?2",
                params![h, i, digest],
            )?;
            let mut m = Map::new();
            m.insert("digest".into(), digest.into());
            m.insert("generation".into(), generation.into());
            m.insert(
                "detail".into(),
                format!(
                    "{} checks against baseline {digest} (generation {generation}), which no \
                     baseline published for {} has: publish it (`tripseal fleet publish DB`) \
                     if it is yours",
                    shown(&h, &i),
                    match role {
                        Some(r) => format!("role {r}"),
                        None => "this host".into(),
                    }
                )
                .into(),
            );
            self.flag("fim-host-unknown-baseline", role, m);
        }
        Ok(())
    }

    fn by_type(&mut self, row: &Row, role: Option<&str>) -> Result<(), Error> {
        let (h, i, now) = (self.e.host.clone(), self.e.instance.clone(), self.now_ns);
        let body = &self.e.body;
        let text = |k: &str| {
            body.get(k)
                .and_then(Value::as_str)
                .map(|s| s.chars().take(4096).collect::<String>())
        };
        match self.e.kind.as_str() {
            "fim-online" | "fim-heartbeat" | "fim-offline" => {
                let period = body
                    .get("freq")
                    .and_then(Value::as_f64)
                    .filter(|f| f.is_finite())
                    .map(|f| f.clamp(PERIOD_RANGE_S.0, PERIOD_RANGE_S.1));
                self.exec(
                    "UPDATE hosts SET period_s = coalesce(?3, period_s), \
                     backend = coalesce(?4, backend), version = coalesce(?5, version) \
                     WHERE host = ?1 AND instance = ?2",
                    params![h, i, period, text("backend"), text("version")],
                )?;
                if self.e.kind == "fim-online" {
                    // The daemon verified the seal before it went online.
                    self.exec(
                        "UPDATE hosts SET tampered = NULL WHERE host = ?1 AND instance = ?2",
                        params![h, i],
                    )?;
                }
            }
            "fim-file-added" | "fim-file-removed" | "fim-file-modified" | "fim-file-error" => {
                let Some(path) = text("path") else {
                    return Ok(());
                };
                self.exec(
                    "INSERT INTO drift (host, instance, path, type, severity, rule, \
                     first_seen_ns, last_seen_ns, seen_order, event) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8, ?9) \
                     ON CONFLICT (host, instance, path) DO UPDATE SET type = ?4, severity = ?5, \
                     rule = ?6, last_seen_ns = ?7, seen_order = ?8, event = ?9, \
                     acked_by = CASE WHEN drift.event = ?9 THEN acked_by END, \
                     acked_ns = CASE WHEN drift.event = ?9 THEN acked_ns END",
                    params![
                        h,
                        i,
                        path,
                        self.e.kind.trim_start_matches("fim-file-"),
                        text("severity"),
                        text("rule"),
                        now,
                        self.order,
                        drift_fingerprint(body)
                    ],
                )?;
            }
            "fim-file-restored" => {
                if let Some(path) = text("path") {
                    self.exec(
                        "DELETE FROM drift WHERE host = ?1 AND instance = ?2 AND path = ?3",
                        params![h, i, path],
                    )?;
                }
            }
            "fim-scan-started" if text("scan").as_deref() == Some("check") => {
                self.exec(
                    "UPDATE hosts SET scan_mark = ?3 WHERE host = ?1 AND instance = ?2",
                    params![h, i, self.order],
                )?;
            }
            "fim-scan-finished" => {
                let mut scan = without_sending(body);
                for k in ["type", "instance"] {
                    scan.remove(k);
                }
                scan.insert("at".into(), crate::units::iso8601(now).into());
                self.exec(
                    "UPDATE hosts SET last_scan = ?3 WHERE host = ?1 AND instance = ?2",
                    params![h, i, Value::Object(scan).to_string()],
                )?;
                if text("scan").as_deref() == Some("check") {
                    // A check reports all drift there is, after verifying
                    // the seal: what it did not report again is gone.
                    if let Some(mark) = row.scan_mark {
                        self.exec(
                            "DELETE FROM drift WHERE host = ?1 AND instance = ?2 \
                             AND seen_order < ?3",
                            params![h, i, mark],
                        )?;
                    }
                    self.exec(
                        "UPDATE hosts SET tampered = NULL, scan_mark = NULL \
                         WHERE host = ?1 AND instance = ?2",
                        params![h, i],
                    )?;
                }
            }
            "fim-baseline-tampered" => {
                let reason = text("reason").unwrap_or_else(|| "unknown".into());
                let detail = text("detail").unwrap_or_default();
                let said = format!("{reason}: {detail}");
                if row.tampered.as_deref() == Some(said.as_str()) {
                    // Said again (the daemon repeats an expiry at every
                    // rescan): passed on once.
                    return Ok(());
                }
                self.exec(
                    "UPDATE hosts SET tampered = ?3 WHERE host = ?1 AND instance = ?2",
                    params![h, i, said],
                )?;
                let mut m = Map::new();
                m.insert("reason".into(), reason.into());
                m.insert("detail".into(), detail.into());
                m.insert("event_id".into(), self.e.id.clone().into());
                for k in ["baseline_path", "baseline_path_bytes"] {
                    if let Some(v) = text(k) {
                        m.insert(k.into(), v.into());
                    }
                }
                // Passed on under the host's own type, marked so that the
                // collector never takes it back from a feed as the host's.
                m.insert("passed_on".into(), true.into());
                self.flag("fim-baseline-tampered", role, m);
            }
            _ => {}
        }
        Ok(())
    }
}

/// The drift event as stored: without what changes with every report of
/// the same drift (time, ids, numbering), so that an acknowledgement holds
/// until the drift itself changes.
fn drift_fingerprint(body: &Value) -> String {
    Value::Object(without_sending(body)).to_string()
}

/// An event's fields without those that say when, by which process and in
/// which message it was sent: what stays the same when a host reports the
/// same fact again.
fn without_sending(body: &Value) -> Map<String, Value> {
    let mut v = body.as_object().cloned().unwrap_or_default();
    for k in ["hostname", "timestamp", "utcoffset", "pid", "clock", "id"]
        .into_iter()
        .chain(crate::events::SEQUENCE_FIELDS)
    {
        v.remove(k);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        store: Store,
        n: u64,
    }

    impl Fixture {
        fn new() -> Fixture {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&dir.path().join("c.db"), true).unwrap();
            Fixture {
                _dir: dir,
                store,
                n: 0,
            }
        }

        /// Takes an event of `kind` from `host` with `fields`, numbered
        /// `seq` in stream `stream`; the flags it raised.
        fn take(
            &mut self,
            host: &str,
            kind: &str,
            stream: &str,
            seq: i64,
            fields: Value,
        ) -> Vec<Flag> {
            self.n += 1;
            let mut v = json!({
                "type": kind,
                "hostname": format!("fim@{host}"),
                "id": format!("id-{}", self.n),
                "instance": "app",
                "stream": stream,
                "seq": seq,
            });
            for (k, x) in fields.as_object().unwrap() {
                v[k] = x.clone();
            }
            self.raw(v.to_string().as_bytes())
        }

        fn raw(&mut self, body: &[u8]) -> Vec<Flag> {
            self.store.begin().unwrap();
            let t = self.store.take(body, None, crate::units::now_ns()).unwrap();
            self.store.commit().unwrap();
            match t {
                Taken::Stored(f) => f,
                other => panic!("{other:?}"),
            }
        }

        fn host(&self, name: &str) -> HostState {
            self.store
                .hosts()
                .unwrap()
                .into_iter()
                .find(|h| h.host == name)
                .unwrap()
        }
    }

    fn kinds(flags: &[Flag]) -> Vec<&str> {
        flags.iter().map(|f| f.kind).collect()
    }

    fn baseline(digest: &str, generation: i64) -> Value {
        json!({"baseline": {"digest": digest, "generation": generation, "role": "app"}})
    }

    #[test]
    fn numbers_that_never_came_are_a_gap_and_late_ones_fill_it() {
        let mut f = Fixture::new();
        assert!(f.take("w", "fim-heartbeat", "s1", 1, json!({})).is_empty());
        let flags = f.take("w", "fim-heartbeat", "s1", 5, json!({}));
        assert_eq!(kinds(&flags), ["fim-host-gap"]);
        assert_eq!(flags[0].fields["missing"], 3);
        assert_eq!(
            (
                flags[0].fields["first"].as_i64(),
                flags[0].fields["last"].as_i64()
            ),
            (Some(2), Some(4))
        );
        assert_eq!(f.host("w").missing, 3);
        assert!(problems(&f.host("w")).contains(&"gap"));
        // One of them arrives late: one fewer lost, and no new flag.
        assert!(f.take("w", "fim-heartbeat", "s1", 3, json!({})).is_empty());
        assert_eq!(f.host("w").missing, 2);
        assert_eq!(f.host("w").last_seq, Some(5));
        // Every number taken: one given again is a numbering set back, said
        // once however many follow.
        f.take("w", "fim-heartbeat", "s1", 2, json!({}));
        f.take("w", "fim-heartbeat", "s1", 4, json!({}));
        assert_eq!(f.host("w").missing, 0);
        let flags = f.take("w", "fim-heartbeat", "s1", 2, json!({}));
        assert_eq!(kinds(&flags), ["fim-host-gap"]);
        assert_eq!(flags[0].fields["reason"], "reused");
        assert!(f.take("w", "fim-heartbeat", "s1", 3, json!({})).is_empty());
        assert!(f.take("w", "fim-heartbeat", "s1", 6, json!({})).is_empty());
        assert_eq!(
            kinds(&f.take("w", "fim-heartbeat", "s1", 9, json!({}))),
            ["fim-host-gap"]
        );
        // A new numbering (the outbox made anew) is said once.
        let flags = f.take("w", "fim-heartbeat", "s2", 1, json!({}));
        assert_eq!(kinds(&flags), ["fim-host-gap"]);
        assert_eq!(flags[0].fields["reason"], "new-stream");
        assert!(f.take("w", "fim-heartbeat", "s2", 2, json!({})).is_empty());
        // The old stream's holes stay counted, and the new stream cannot
        // fill them: its number 7 is simply next-but-some.
        assert_eq!(f.host("w").missing, 2);
        f.take("w", "fim-heartbeat", "s2", 7, json!({}));
        assert_eq!(f.host("w").missing, 2 + 4);
        // The operator looked.
        f.store.ack_host("w", "app", true, false).unwrap();
        assert!(!problems(&f.host("w")).contains(&"gap"));
    }

    #[test]
    fn a_redelivered_event_changes_nothing() {
        let mut f = Fixture::new();
        let body = json!({"type": "fim-file-added", "hostname": "fim@w", "id": "same",
                          "instance": "app", "stream": "s", "seq": 1, "path": "/x",
                          "severity": "high"})
        .to_string();
        f.raw(body.as_bytes());
        f.store.ack("w", "app", &["/x".into()], "ann", 1).unwrap();
        f.store.begin().unwrap();
        assert_eq!(
            f.store.take(body.as_bytes(), None, 2).unwrap(),
            Taken::Duplicate
        );
        f.store.commit().unwrap();
        assert_eq!(f.store.counter("consumed").unwrap(), 1);
        assert_eq!(f.store.counter("duplicates").unwrap(), 1);
        assert_eq!(
            f.store.drift("w", "app").unwrap()[0].acked_by.as_deref(),
            Some("ann")
        );
    }

    #[test]
    fn what_is_not_an_event_is_counted_and_dropped() {
        let mut f = Fixture::new();
        let too_big = vec![b' '; MAX_EVENT_BYTES + 1];
        for body in [
            &b"not json"[..],
            br#"[1,2]"#,
            br#"{"type":"task-succeeded","hostname":"celery@w","id":"1"}"#,
            br#"{"type":"fim-heartbeat","hostname":"w","id":"1"}"#,
            br#"{"type":"fim-heartbeat","hostname":"fim@w"}"#,
            br#"{"type":"fim-heartbeat","hostname":"fim@w","id":"1","seq":-1,"stream":"s"}"#,
            br#"{"type":"fim-heartbeat","hostname":"fim@w","id":"2","seq":9007199254740992,"stream":"s"}"#,
            br#"{"type":"fim-heartbeat","hostname":"fim@w","id":"3","instance":""}"#,
            &too_big,
        ] {
            f.store.begin().unwrap();
            let t = f.store.take(body, None, 1).unwrap();
            f.store.commit().unwrap();
            assert!(matches!(t, Taken::Malformed(_)), "{t:?}");
        }
        assert_eq!(f.store.counter("malformed").unwrap(), 9);
        assert!(f.store.hosts().unwrap().is_empty());
    }

    #[test]
    fn an_older_generation_is_a_rollback_said_once() {
        let mut f = Fixture::new();
        f.take("w", "fim-online", "s", 1, baseline("bbbb", 2));
        let flags = f.take("w", "fim-heartbeat", "s", 2, baseline("aaaa", 1));
        assert!(kinds(&flags).contains(&"fim-host-rollback"), "{flags:?}");
        let again = f.take("w", "fim-heartbeat", "s", 3, baseline("aaaa", 1));
        assert!(!kinds(&again).contains(&"fim-host-rollback"));
        assert!(problems(&f.host("w")).contains(&"rollback"));
        // Back to the highest, and rolled back again: said again.
        f.take("w", "fim-heartbeat", "s", 4, baseline("bbbb", 2));
        assert!(!problems(&f.host("w")).contains(&"rollback"));
        let twice = f.take("w", "fim-heartbeat", "s", 5, baseline("aaaa", 1));
        assert!(kinds(&twice).contains(&"fim-host-rollback"), "{twice:?}");
        f.store.ack_host("w", "app", false, true).unwrap();
        assert!(!problems(&f.host("w")).contains(&"rollback"));
    }

    #[test]
    fn a_baseline_is_known_once_published_for_its_role() {
        let mut f = Fixture::new();
        let flags = f.take("w", "fim-online", "s", 1, baseline("cccc", 1));
        assert_eq!(kinds(&flags), ["fim-host-unknown-baseline"]);
        assert!(
            f.take("w", "fim-heartbeat", "s", 2, baseline("cccc", 1))
                .is_empty()
        );
        // Published for another role: still unknown for this one.
        let mut p = Published {
            digest: "cccc".into(),
            full_digest: "cccc".repeat(16),
            role: Some("other".into()),
            host: None,
            generation: 1,
            signers: vec!["k".into()],
            published_ns: 0,
        };
        f.store.publish(&p).unwrap();
        assert!(problems(&f.host("w")).contains(&"unknown-baseline"));
        p.role = Some("app".into());
        f.store.publish(&p).unwrap();
        assert!(problems(&f.host("w")).is_empty());
        assert_eq!(f.host("w").published.unwrap().signers, ["k"]);
        // A host's baseline serves that host only.
        let own = |host: &str, digest: &str| Published {
            digest: digest.into(),
            full_digest: digest.repeat(16),
            role: None,
            host: Some(host.into()),
            generation: 1,
            signers: vec![],
            published_ns: 0,
        };
        f.store.publish(&own("w", "eeee")).unwrap();
        f.store.publish(&own("other", "ffff")).unwrap();
        let host_baseline = |d: &str| json!({"baseline": {"digest": d, "generation": 1}});
        assert_eq!(
            kinds(&f.take("h", "fim-online", "t", 1, host_baseline("ffff"))),
            ["fim-host-unknown-baseline"]
        );
        assert!(f.take("w2", "fim-online", "u", 1, json!({})).is_empty());
        let flags = f.take("w", "fim-heartbeat", "s", 3, host_baseline("eeee"));
        assert!(
            !kinds(&flags).contains(&"fim-host-unknown-baseline"),
            "{flags:?}"
        );
    }

    #[test]
    fn a_check_closes_the_drift_it_no_longer_reports() {
        let mut f = Fixture::new();
        let b = baseline("dddd", 1);
        let drift = |path: &str| {
            let mut v = b.clone();
            v["path"] = path.into();
            v["severity"] = "high".into();
            v
        };
        f.take("w", "fim-scan-started", "s", 1, json!({"scan": "check"}));
        f.take("w", "fim-file-modified", "s", 2, drift("/a"));
        f.take("w", "fim-file-added", "s", 3, drift("/b"));
        f.take("w", "fim-scan-finished", "s", 4, json!({"scan": "check"}));
        assert_eq!(f.store.drift("w", "app").unwrap().len(), 2);
        // The next check reports /b only: /a was put back.
        f.take("w", "fim-scan-started", "s", 5, json!({"scan": "check"}));
        f.take("w", "fim-file-added", "s", 6, drift("/b"));
        f.take("w", "fim-scan-finished", "s", 7, json!({"scan": "check"}));
        let open: Vec<String> = f
            .store
            .drift("w", "app")
            .unwrap()
            .into_iter()
            .map(|d| d.path)
            .collect();
        assert_eq!(open, ["/b"]);
        // An acknowledgement holds while the drift is the same, and ends
        // when it changes.
        f.store.ack("w", "app", &["/b".into()], "ann", 1).unwrap();
        f.take("w", "fim-file-added", "s", 8, drift("/b"));
        assert!(f.store.drift("w", "app").unwrap()[0].acked_by.is_some());
        let mut changed = drift("/b");
        changed["attributes"] = json!({"size": 9});
        f.take("w", "fim-file-added", "s", 9, changed);
        assert!(f.store.drift("w", "app").unwrap()[0].acked_by.is_none());
        // The daemon says it is back to its baseline state.
        f.take("w", "fim-file-restored", "s", 10, json!({"path": "/b"}));
        assert!(f.store.drift("w", "app").unwrap().is_empty());
    }

    #[test]
    fn a_refused_baseline_stands_until_a_verified_one_is_used() {
        let mut f = Fixture::new();
        let flags = f.take(
            "w",
            "fim-baseline-tampered",
            "s",
            1,
            json!({"reason": "altered", "detail": "its content is not what was signed"}),
        );
        assert_eq!(kinds(&flags), ["fim-baseline-tampered"]);
        assert_eq!(flags[0].fields["passed_on"], true);
        assert_eq!(flags[0].fields["reason"], "altered");
        assert_eq!(problems(&f.host("w"))[0], "tampered");
        f.take("w", "fim-heartbeat", "s", 2, json!({}));
        assert_eq!(problems(&f.host("w"))[0], "tampered");
        f.take("w", "fim-scan-finished", "s", 3, json!({"scan": "check"}));
        assert!(f.host("w").tampered.is_none());
    }

    #[test]
    fn silence_is_judged_only_while_listening_and_said_once() {
        let mut f = Fixture::new();
        f.take("w", "fim-online", "s", 1, json!({"freq": 1.0}));
        let last = f.host("w").last_seen_ns;
        let s = 1_000_000_000;
        f.store.begin().unwrap();
        // The collector started listening just now: no silence yet.
        assert!(
            f.store
                .judge_silence(last + 10 * s, last + 9 * s, 3600.0)
                .unwrap()
                .is_empty()
        );
        let flags = f.store.judge_silence(last + 10 * s, last, 3600.0).unwrap();
        assert_eq!(kinds(&flags), ["fim-host-silent"]);
        assert!(
            f.store
                .judge_silence(last + 11 * s, last, 3600.0)
                .unwrap()
                .is_empty()
        );
        f.store.commit().unwrap();
        assert_eq!(f.host("w").state, "silent");
        let flags = f.take("w", "fim-heartbeat", "s", 2, json!({"freq": 1.0}));
        assert_eq!(kinds(&flags), ["fim-host-back"]);
        assert_eq!(f.host("w").state, "ok");
        // A host that said it stops is stopped, and silent only later.
        f.take("w", "fim-offline", "s", 3, json!({"freq": 1.0}));
        assert_eq!(f.host("w").state, "stopped");
        assert!(problems(&f.host("w")).contains(&"stopped"));
        let last = f.host("w").last_seen_ns;
        f.store.begin().unwrap();
        assert!(
            f.store
                .judge_silence(last + 2 * s, last, 3600.0)
                .unwrap()
                .is_empty()
        );
        let flags = f.store.judge_silence(last + 4 * s, last, 3600.0).unwrap();
        f.store.commit().unwrap();
        assert_eq!(flags[0].fields["was"], "stopped");
        // A forged period can neither switch silence off nor make it flap.
        f.take("w", "fim-heartbeat", "s", 4, json!({"freq": 1e12}));
        assert_eq!(f.host("w").period_s, Some(86_400.0));
        f.take("w", "fim-heartbeat", "s", 5, json!({"freq": 0.001}));
        assert_eq!(f.host("w").period_s, Some(1.0));
    }

    #[test]
    fn a_monitor_speaks_through_one_broker_account() {
        let mut f = Fixture::new();
        let ev = |id: &str, seq: i64| {
            json!({"type": "fim-heartbeat", "hostname": "fim@w", "id": id, "instance": "app",
                   "stream": "s", "seq": seq})
            .to_string()
        };
        f.store.begin().unwrap();
        let first = f
            .store
            .take(ev("1", 1).as_bytes(), Some("w-account"), 1)
            .unwrap();
        assert_eq!(first, Taken::Stored(vec![]));
        // Another account, or none at all, speaking for w: refused, said once.
        let Taken::Impostor(flags) = f
            .store
            .take(ev("2", 2).as_bytes(), Some("intruder"), 2)
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(kinds(&flags), ["fim-host-impostor"]);
        assert_eq!(flags[0].fields["publisher"], "intruder");
        assert_eq!(flags[0].fields["expected_publisher"], "w-account");
        assert_eq!(
            f.store
                .take(ev("3", 3).as_bytes(), Some("intruder"), 3)
                .unwrap(),
            Taken::Impostor(vec![])
        );
        f.store.commit().unwrap();
        let h = f.host("w");
        assert_eq!(h.last_seq, Some(1), "the refused events changed nothing");
        assert_eq!(f.store.counter("impostors").unwrap(), 2);
        assert_eq!(f.store.counter("consumed").unwrap(), 1);
    }

    #[test]
    fn the_collectors_own_flags_coming_back_are_not_judged() {
        let mut f = Fixture::new();
        let own = json!({"type": "fim-baseline-tampered", "hostname": "fim@collector", "id": "x",
                         "reason": "altered", "passed_on": true, "host": "w"})
        .to_string();
        let silent =
            json!({"type": "fim-host-silent", "hostname": "fim@collector", "id": "y"}).to_string();
        f.store.begin().unwrap();
        assert_eq!(f.store.take(own.as_bytes(), None, 1).unwrap(), Taken::Own);
        assert_eq!(
            f.store.take(silent.as_bytes(), None, 1).unwrap(),
            Taken::Own
        );
        f.store.commit().unwrap();
        assert!(f.store.hosts().unwrap().is_empty());
        // A host's tampering is passed on under the collector's own type,
        // once however often the host repeats it, about the right monitor.
        let t = json!({"reason": "expired", "detail": "d"});
        let flags = f.take("w", "fim-baseline-tampered", "s", 1, t.clone());
        assert_eq!(kinds(&flags), ["fim-baseline-tampered"]);
        assert_eq!(flags[0].fields["host_instance"], "app");
        assert_eq!(flags[0].fields["monitor"], "w/app");
        assert!(f.take("w", "fim-baseline-tampered", "s", 2, t).is_empty());
    }

    #[test]
    fn a_host_names_all_its_monitors() {
        let mut f = Fixture::new();
        f.take("w", "fim-heartbeat", "s", 1, json!({}));
        f.raw(
            json!({"type": "fim-heartbeat", "hostname": "fim@w", "id": "other", "instance": "w"})
                .to_string()
                .as_bytes(),
        );
        assert_eq!(f.store.resolve("w").unwrap().len(), 2);
        assert_eq!(
            f.store.resolve("w/app").unwrap(),
            [("w".to_string(), "app".to_string())]
        );
        assert!(f.store.resolve("x").is_err());
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.db");
        let other = Connection::open(&p).unwrap();
        other.execute_batch("CREATE TABLE hosts (x)").unwrap();
        drop(other);
        let before = std::fs::read(&p).unwrap();
        let e = Store::open(&p, true).err().unwrap().to_string();
        assert!(e.contains("not a collector store"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), before, "left exactly as it was");
        assert!(!crate::files::sibling(&p, "-wal").exists());
        let link = dir.path().join("l.db");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        let e = Store::open(&link, true).err().unwrap().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let e = Store::open(&dir.path().join("none.db"), false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("no collector store here"), "{e}");
    }
}
