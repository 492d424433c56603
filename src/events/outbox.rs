//! The outbox: events wait here, durably, until every sink they were meant for
//! has accepted them.
//!
//! One SQLite file beside the baseline (`<db>.outbox`, which scans skip like
//! every file named after the baseline). `events` holds each event once;
//! `pending` holds one row per (sink, event) still to deliver. An event row
//! goes when no pending row refers to it. Writes are synchronous (fsynced): an
//! event the outbox accepted survives a crash.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use super::Event;
use super::sinks::Sink;
use crate::error::Error;

/// The most events the outbox keeps. Past it, new events are not kept, and
/// every run says how many were lost until the sinks catch up.
pub const MAX_OUTBOX_EVENTS: u64 = 100_000;

pub struct Outbox {
    conn: Connection,
    path: PathBuf,
}

/// What one delivery run did for one sink.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: u64,
    /// Still waiting for this sink.
    pub waiting: u64,
    /// Why the sink stopped, if it did.
    pub error: Option<String>,
}

impl Outbox {
    /// Opens (creating if needed) the outbox of the baseline at `db`.
    pub fn open(db: &Path) -> Result<Outbox, Error> {
        let path = crate::baseline::sibling(db, ".outbox");
        let werr = |e: rusqlite::Error| Error::Write {
            path: path.clone(),
            source: std::io::Error::other(e),
        };
        // Never through a symlink, never a FIFO or a device, nor a journal
        // that is one: what is there must be what SQLite would have made.
        for file in [path.clone(), crate::files::sibling(&path, "-journal")] {
            match std::fs::symlink_metadata(&file) {
                Ok(m) if !m.is_file() => {
                    return Err(Error::Write {
                        source: std::io::Error::other(format!(
                            "it is {}, where tripseal keeps its event outbox in a regular \
                             file; remove it (events that waited there are lost)",
                            crate::files::kind_name(&m)
                        )),
                        path: file,
                    });
                }
                _ => {}
            }
        }
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(werr)?;
        // A planted outbox is data: its triggers never fire.
        crate::baseline::harden(&conn).map_err(werr)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL;
             PRAGMA busy_timeout = 10000;
             CREATE TABLE IF NOT EXISTS events (
                 seq INTEGER PRIMARY KEY AUTOINCREMENT,
                 id TEXT NOT NULL,
                 type TEXT NOT NULL,
                 body TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS pending (
                 sink TEXT NOT NULL,
                 seq INTEGER NOT NULL REFERENCES events(seq),
                 PRIMARY KEY (sink, seq)
             ) WITHOUT ROWID;
             -- An event goes when no sink waits for it any more: found by seq.
             CREATE INDEX IF NOT EXISTS pending_by_seq ON pending (seq);",
        )
        .map_err(werr)?;
        Ok(Outbox { conn, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: rusqlite::Error) -> Error {
        Error::Write {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        }
    }

    /// Events held, whatever sinks they wait for.
    pub fn len(&self) -> Result<u64, Error> {
        self.conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map(|n| n as u64)
            .map_err(|e| self.err(e))
    }

    pub fn is_empty(&self) -> Result<bool, Error> {
        self.len().map(|n| n == 0)
    }

    /// Keeps `events` for each of `sinks`, in one transaction. Returns how
    /// many could not be kept because the outbox is full.
    pub fn add(&mut self, events: &[Event], sinks: &[String]) -> Result<u64, Error> {
        if sinks.is_empty() || events.is_empty() {
            return Ok(0);
        }
        let held = self.len()?;
        let room = MAX_OUTBOX_EVENTS.saturating_sub(held) as usize;
        let kept = &events[..events.len().min(room)];
        let tx = self.conn.transaction().map_err(|e| Error::Write {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        {
            let mut ev = tx
                .prepare_cached("INSERT INTO events (id, type, body) VALUES (?1, ?2, ?3)")
                .map_err(|e| wrap(&self.path, e))?;
            let mut pend = tx
                .prepare_cached("INSERT INTO pending (sink, seq) VALUES (?1, ?2)")
                .map_err(|e| wrap(&self.path, e))?;
            for e in kept {
                ev.execute(params![e.id, e.kind, e.body])
                    .map_err(|e| wrap(&self.path, e))?;
                let seq = tx.last_insert_rowid();
                for s in sinks {
                    pend.execute(params![s, seq])
                        .map_err(|e| wrap(&self.path, e))?;
                }
            }
        }
        tx.commit().map_err(|e| wrap(&self.path, e))?;
        Ok((events.len() - kept.len()) as u64)
    }

    /// Sends what waits for `sink` in order, removing each event as the sink
    /// accepts it; stops at the first refusal, keeping the rest.
    pub fn deliver(&mut self, sink_name: &str, sink: &mut dyn Sink) -> Result<Delivery, Error> {
        let mut d = Delivery::default();
        // Batches bound memory and commit progress as it is made.
        const BATCH: i64 = 500;
        'batches: loop {
            let batch: Vec<(i64, Event)> = {
                let mut stmt = self
                    .conn
                    .prepare_cached(
                        "SELECT e.seq, e.id, e.type, e.body FROM pending p \
                         JOIN events e ON e.seq = p.seq WHERE p.sink = ?1 \
                         ORDER BY e.seq LIMIT ?2",
                    )
                    .map_err(|e| self.err(e))?;
                let rows = stmt
                    .query_map(params![sink_name, BATCH], |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            Event {
                                id: r.get(1)?,
                                kind: r.get(2)?,
                                body: r.get(3)?,
                            },
                        ))
                    })
                    .map_err(|e| self.err(e))?;
                rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
            };
            if batch.is_empty() {
                break;
            }
            let mut sent = Vec::new();
            let mut stopped = None;
            for (seq, event) in &batch {
                match sink.send(event) {
                    Ok(()) => sent.push(*seq),
                    Err(e) => {
                        stopped = Some(e);
                        break;
                    }
                }
            }
            // Also after a failed send: the flush tells which of the events
            // handed over before it arrived.
            if let Err(e) = sink.flush() {
                sent.truncate(e.delivered);
                stopped.get_or_insert(e.error);
            }
            self.forget(sink_name, &sent)?;
            d.delivered += sent.len() as u64;
            if let Some(e) = stopped {
                d.error = Some(e);
                break 'batches;
            }
        }
        d.waiting = self
            .conn
            .query_row(
                "SELECT count(*) FROM pending WHERE sink = ?1",
                [sink_name],
                |r| r.get::<_, i64>(0),
            )
            .map_err(|e| self.err(e))? as u64;
        Ok(d)
    }

    fn forget(&mut self, sink_name: &str, seqs: &[i64]) -> Result<(), Error> {
        if seqs.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let tx = self.conn.transaction().map_err(|e| wrap(&path, e))?;
        {
            let mut del = tx
                .prepare_cached("DELETE FROM pending WHERE sink = ?1 AND seq = ?2")
                .map_err(|e| wrap(&path, e))?;
            let mut gone = tx
                .prepare_cached(
                    "DELETE FROM events WHERE seq = ?1 \
                     AND NOT EXISTS (SELECT 1 FROM pending WHERE seq = ?1)",
                )
                .map_err(|e| wrap(&path, e))?;
            for seq in seqs {
                del.execute(params![sink_name, seq])
                    .map_err(|e| wrap(&path, e))?;
                gone.execute([seq]).map_err(|e| wrap(&path, e))?;
            }
        }
        tx.commit().map_err(|e| wrap(&path, e))
    }

    /// The sinks that have events waiting, for `flush` without `--emit`.
    pub fn waiting_sinks(&self) -> Result<Vec<String>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT sink FROM pending ORDER BY sink")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.err(e))
    }
}

fn wrap(path: &Path, e: rusqlite::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}
