//! The outbox: events wait here, durably, until every sink they were meant for
//! has accepted them.
//!
//! One SQLite file beside the baseline (`<db>.outbox`, which scans skip like
//! every file named after the baseline). `events` holds each event once;
//! `pending` holds one row per (sink, event) still to deliver. An event row
//! goes when no pending row refers to it. Writes are synchronous (fsynced): an
//! event the outbox accepted survives a crash.

use std::collections::VecDeque;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, params};

use super::sink::Sink;
use super::{Event, Sequence};
use crate::error::Error;

/// The outbox's tables. `IF NOT EXISTS`: an outbox left by an earlier run
/// is used as it is, once its schema is checked.
const OUTBOX_SCHEMA: [&str; 2] = [OUTBOX_EVENTS, OUTBOX_SEQUENCE];

/// The outbox as tripseal 0.1 made it, before events were numbered.
const OUTBOX_EVENTS: &str = "
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
CREATE INDEX IF NOT EXISTS pending_by_seq ON pending (seq);
";

const OUTBOX_SEQUENCE: &str = "
-- The numbering of the host's events (one row): the stream's id and the
-- number the next event gets. Added to outboxes of earlier versions as is.
CREATE TABLE IF NOT EXISTS sequence (
    stream TEXT NOT NULL,
    next INTEGER NOT NULL
);
";

/// The rows of `sqlite_master` of an outbox.
fn expected_schema() -> &'static [crate::sqlite::SchemaRow] {
    static EXPECTED: std::sync::OnceLock<Vec<crate::sqlite::SchemaRow>> =
        std::sync::OnceLock::new();
    EXPECTED.get_or_init(|| crate::sqlite::schema_made_by(&OUTBOX_SCHEMA))
}

/// The most events the outbox keeps. Past it, new events are not kept, and
/// every run says how many were lost until the sinks catch up.
pub const MAX_OUTBOX_EVENTS: u64 = 100_000;

pub struct Outbox {
    conn: Connection,
    db: PathBuf,
    path: PathBuf,
    /// (device, inode) of the file this connection writes.
    identity: (u64, u64),
    /// The numbering, as last committed.
    sequence: Option<Sequence>,
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
        let path = crate::files::sibling(db, ".outbox");
        // "Not an outbox" (InvalidData) is told apart from failures to
        // write one (a full disk, a lock): only the former is moved aside.
        let werr = |e: rusqlite::Error| {
            let not_ours = matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
            );
            Error::Write {
                path: path.clone(),
                source: if not_ours {
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
                } else {
                    std::io::Error::other(e)
                },
            }
        };
        refuse_non_files(&path)?;
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .map_err(werr)?;
        // A planted outbox is data: its triggers never fire.
        crate::sqlite::harden(&conn).map_err(werr)?;
        conn.execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; PRAGMA cache_size = -16384;",
        )
        .and_then(|()| conn.execute_batch(&OUTBOX_SCHEMA.concat()))
        .map_err(werr)?;
        // A file found there is used only if it is exactly an outbox: a
        // planted one whose tables swallow inserts would lose events.
        let rows = crate::sqlite::schema_rows(&conn).map_err(werr)?;
        if rows != expected_schema() {
            return Err(Error::Write {
                path: path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "not an event outbox of tripseal's (its schema differs); move it away",
                ),
            });
        }
        let identity = std::fs::symlink_metadata(&path)
            .map(|m| (m.dev(), m.ino()))
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        let sequence = read_sequence(&conn).map_err(werr)?;
        Ok(Outbox {
            conn,
            db: db.to_path_buf(),
            path,
            identity,
            sequence,
        })
    }

    /// The numbering events kept here follow (`None`: none kept yet).
    pub fn sequence(&self) -> Option<&Sequence> {
        self.sequence.as_ref()
    }

    /// Makes the next events follow `seq` (the daemon's, carried over from
    /// an outbox that was lost or from memory), so that a consumer sees one
    /// unbroken numbering.
    pub fn continue_sequence(&mut self, seq: &Sequence) -> Result<(), Error> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| wrap(&path, e))?;
        write_sequence(&tx, seq).map_err(|e| wrap(&path, e))?;
        tx.commit().map_err(|e| wrap(&path, e))?;
        self.sequence = Some(seq.clone());
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The baseline this is the outbox of.
    pub fn db(&self) -> &Path {
        &self.db
    }

    /// Whether the path still names the file this connection writes, with
    /// nothing planted beside it where SQLite would write its journal.
    /// Otherwise what happened: a short reason and a sentence.
    pub fn check_in_place(&self) -> Result<(), (&'static str, String)> {
        let shown = crate::escape::escape_path(&self.path);
        match std::fs::symlink_metadata(&self.path) {
            Err(_) => {
                return Err((
                    "removed",
                    format!("the event outbox {shown} was removed or renamed"),
                ));
            }
            Ok(m) if m.file_type().is_symlink() => {
                return Err((
                    "symlink",
                    format!("the event outbox {shown} was replaced by a symbolic link"),
                ));
            }
            Ok(m) if !m.is_file() => {
                return Err((
                    "not-a-file",
                    format!(
                        "the event outbox {shown} was replaced by {}",
                        crate::files::kind_name(&m)
                    ),
                ));
            }
            Ok(m) if (m.dev(), m.ino()) != self.identity => {
                return Err((
                    "replaced",
                    format!("the event outbox {shown} was replaced by another file"),
                ));
            }
            Ok(_) => {}
        }
        let journal = crate::files::sibling(&self.path, "-journal");
        match std::fs::symlink_metadata(&journal) {
            Ok(m) if !m.is_file() => Err((
                "journal-planted",
                format!(
                    "{} was planted beside the event outbox ({}), where SQLite writes its \
                     journal",
                    crate::escape::escape_path(&journal),
                    crate::files::kind_name(&m)
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Every event held, oldest first, with the sinks it still waits for;
    /// the outbox is left as it was.
    pub fn waiting(&self) -> Result<Vec<(Event, Vec<String>)>, Error> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT e.seq, e.id, e.type, e.body, p.sink FROM events e \
                 JOIN pending p ON p.seq = e.seq ORDER BY e.seq, p.sink",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((r.get::<_, i64>(0)?, event_at(r, 1)?, r.get(4)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out: Vec<(i64, Event, Vec<String>)> = Vec::new();
        for row in rows {
            let (seq, event, sink) = row.map_err(|e| self.err(e))?;
            match out.last_mut() {
                Some((s, _, sinks)) if *s == seq => sinks.push(sink),
                _ => out.push((seq, event, vec![sink])),
            }
        }
        Ok(out.into_iter().map(|(_, e, s)| (e, s)).collect())
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

    /// Keeps `events` for each of `sinks`, in one transaction, numbering
    /// those not numbered yet. Returns how many could not be kept because
    /// the outbox is full: they are numbered all the same, so that a
    /// consumer sees the gap they leave.
    pub fn add(&mut self, events: &[Event], sinks: &[String]) -> Result<u64, Error> {
        if sinks.is_empty() || events.is_empty() {
            return Ok(0);
        }
        // Immediate: the numbering is read and written under the write
        // lock, so that the daemon and a check timer sharing this outbox
        // never give the same number twice.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|e| wrap(&self.path, e))?;
        let held = tx
            .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
            .map_err(|e| wrap(&self.path, e))? as u64;
        let room = MAX_OUTBOX_EVENTS.saturating_sub(held) as usize;
        let mut sequence = read_sequence(&tx)
            .map_err(|e| wrap(&self.path, e))?
            .or_else(|| self.sequence.clone())
            .unwrap_or_else(Sequence::start);
        let mut events = events.to_vec();
        for e in &mut events {
            sequence.stamp(e);
        }
        let kept = &events[..events.len().min(room)];
        write_sequence(&tx, &sequence).map_err(|e| wrap(&self.path, e))?;
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
        let dropped = (events.len() - kept.len()) as u64;
        self.sequence = Some(sequence);
        Ok(dropped)
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
                        Ok((r.get::<_, i64>(0)?, event_at(r, 1)?))
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
                crate::progress::tick();
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
        // The cache holds a burst's pages while it is delivered; a daemon
        // keeps this connection for its life and gives them back.
        let _ = self.conn.execute_batch("PRAGMA shrink_memory");
        Ok(d)
    }

    fn forget(&mut self, sink_name: &str, seqs: &[i64]) -> Result<(), Error> {
        if seqs.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        // `seqs` are the first of what waits for this sink, in order: every
        // row of the sink from the first to the last is one of them, so a
        // range deletes them in one statement rather than one each.
        debug_assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order");
        let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
        let tx = self.conn.transaction().map_err(|e| wrap(&path, e))?;
        tx.prepare_cached("DELETE FROM pending WHERE sink = ?1 AND seq >= ?2 AND seq <= ?3")
            .and_then(|mut del| del.execute(params![sink_name, first, last]))
            .map_err(|e| wrap(&path, e))?;
        tx.prepare_cached(
            "DELETE FROM events WHERE seq >= ?1 AND seq <= ?2 \
             AND NOT EXISTS (SELECT 1 FROM pending WHERE pending.seq = events.seq)",
        )
        .and_then(|mut gone| gone.execute(params![first, last]))
        .map_err(|e| wrap(&path, e))?;
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

/// Never through a symlink, never a FIFO or a device, nor a journal that is
/// one: what is at the outbox's path must be what SQLite would have made.
fn refuse_non_files(path: &Path) -> Result<(), Error> {
    for file in [path.to_path_buf(), crate::files::sibling(path, "-journal")] {
        if let Ok(m) = std::fs::symlink_metadata(&file)
            && !m.is_file()
        {
            return Err(Error::Write {
                source: std::io::Error::other(format!(
                    "it is {}, where tripseal keeps its event outbox in a regular file; remove \
                     it (events that waited there are lost)",
                    crate::files::kind_name(&m)
                )),
                path: file,
            });
        }
    }
    Ok(())
}

/// The outbox's numbering. More than one row is not an outbox tripseal
/// wrote; the highest numbering wins, so that no number is given twice.
fn read_sequence(conn: &Connection) -> rusqlite::Result<Option<Sequence>> {
    use rusqlite::OptionalExtension;
    conn.query_row(
        "SELECT stream, next FROM sequence ORDER BY next DESC LIMIT 1",
        [],
        |r| {
            Ok(Sequence {
                stream: r.get(0)?,
                next: r.get::<_, i64>(1)?.max(1) as u64,
            })
        },
    )
    .optional()
}

fn write_sequence(tx: &rusqlite::Transaction<'_>, seq: &Sequence) -> rusqlite::Result<()> {
    tx.execute("DELETE FROM sequence", [])?;
    tx.execute(
        "INSERT INTO sequence (stream, next) VALUES (?1, ?2)",
        params![seq.stream, seq.next as i64],
    )?;
    Ok(())
}

/// The event in columns `at..at + 3` (id, type, body) of a row.
fn event_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Event> {
    Ok(Event {
        id: r.get(at)?,
        kind: r.get(at + 1)?,
        body: r.get(at + 2)?,
        // As kept: numbered then, or kept before outboxes numbered events.
        numbered: true,
    })
}

fn wrap(path: &Path, e: rusqlite::Error) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source: std::io::Error::other(e),
    }
}

/// Events moved from memory into a new outbox per transaction.
const EVENTS_PER_MOVE: usize = 1000;

/// The most events the daemon keeps in memory while it has no sound outbox.
pub const MAX_HELD_EVENTS: usize = 10_000;

/// The daemon's outbox, which outlives whatever is done to the file: it is
/// checked before every use, and when it was removed, renamed, replaced, or
/// had its journal planted, what waited in it is taken out of the still open
/// connection, the problem is reported, and a new outbox is made in a safe
/// state. Until one can be made, events wait in memory (at most
/// [`MAX_HELD_EVENTS`]) and go to the sinks from there.
pub struct GuardedOutbox {
    db: PathBuf,
    path: PathBuf,
    outbox: Option<Outbox>,
    held: VecDeque<(Event, Vec<String>)>,
    /// Events not kept since the last report, for want of room in memory.
    dropped: u64,
    /// Problems not reported yet.
    found: Vec<OutboxProblem>,
    /// Why no outbox can be made, as last reported.
    failing: Option<String>,
    /// The numbering, carried from outbox to outbox and through memory:
    /// an outbox that is lost does not restart the host's sequence.
    sequence: Option<Sequence>,
}

/// What [`GuardedOutbox::inspect`] found wrong, to be reported.
pub struct OutboxProblem {
    pub reason: &'static str,
    pub detail: String,
}

impl GuardedOutbox {
    /// The outbox of the baseline at `db`; when it cannot be opened safely,
    /// the daemon starts with events in memory and says why at the first
    /// [`GuardedOutbox::inspect`].
    pub fn open(db: &Path) -> GuardedOutbox {
        let mut g = GuardedOutbox {
            db: db.to_path_buf(),
            path: crate::files::sibling(db, ".outbox"),
            outbox: None,
            held: VecDeque::new(),
            dropped: 0,
            found: Vec::new(),
            failing: None,
            sequence: None,
        };
        g.try_reopen();
        g
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn db(&self) -> &Path {
        &self.db
    }

    /// Checks the outbox and repairs what was done to it. Returns the
    /// problems found, for the caller to report (through this outbox).
    pub fn inspect(&mut self) -> Vec<OutboxProblem> {
        if let Some(o) = &self.outbox
            && let Err((reason, detail)) = o.check_in_place()
        {
            let o = self.outbox.take().expect("checked above");
            let kept = if reason == "journal-planted" {
                // The file is still ours and holds its events: reopened
                // once the planted journal is gone.
                "its events stay in it".to_string()
            } else {
                // The connection still reads the file it opened, wherever
                // that went: what waited there moves to memory.
                self.take_waiting(&o)
            };
            self.found.push(OutboxProblem {
                reason,
                detail: format!("{detail}; {kept}, and a new outbox is made"),
            });
        }
        if self.outbox.is_none() {
            self.try_reopen();
        }
        if self.dropped > 0 {
            self.found.push(OutboxProblem {
                reason: "memory-full",
                detail: format!(
                    "{} events were not kept: events wait in memory, at most \
                     {MAX_HELD_EVENTS}, while there is no usable outbox, and the outbox holds \
                     at most {MAX_OUTBOX_EVENTS}",
                    self.dropped
                ),
            });
            self.dropped = 0;
        }
        std::mem::take(&mut self.found)
    }

    /// [`GuardedOutbox::reopen`], saying a failure once, not at every try.
    fn try_reopen(&mut self) {
        match self.reopen() {
            Ok(()) => self.failing = None,
            Err(p) => {
                // Said again only when the reason changes.
                if self.failing.as_deref() != Some(p.detail.as_str()) {
                    self.failing = Some(p.detail.clone());
                    self.found.push(p);
                }
            }
        }
    }

    /// Moves what waits in `o` to the front of memory; says how it went.
    fn take_waiting(&mut self, o: &Outbox) -> String {
        if let Some(seq) = o.sequence() {
            self.sequence = Some(seq.clone());
        }
        match o.waiting() {
            Ok(waiting) => {
                let n = waiting.len();
                for w in waiting.into_iter().rev() {
                    self.held.push_front(w);
                }
                format!("the {n} events that waited in it were kept")
            }
            Err(e) => format!(
                "the events that waited in it could not be read ({})",
                crate::escape::sanitize_line(&e.to_string())
            ),
        }
    }

    /// The outbox failed under us (`why`): what waits in it is taken into
    /// memory as far as it can be read, and the file is moved aside, never
    /// deleted, so that nothing in it is lost unsaid.
    fn retire(&mut self, why: String) {
        let Some(o) = self.outbox.take() else {
            return;
        };
        let kept = self.take_waiting(&o);
        let still_ours = matches!(o.check_in_place(), Ok(()) | Err(("journal-planted", _)));
        drop(o);
        let moved = if still_ours {
            self.move_aside()
        } else {
            String::new()
        };
        self.found.push(OutboxProblem {
            reason: "unusable",
            detail: format!("{why}; {kept}{moved}; events wait in memory until a new one is made"),
        });
    }

    /// Renames the file at the outbox's path out of the way (its events
    /// may be read from it by hand), and says where it went.
    fn move_aside(&self) -> String {
        let aside = self.aside_name(&self.path);
        match std::fs::rename(&self.path, &aside) {
            Ok(()) => format!(
                "; the file was moved to {}",
                crate::escape::escape_path(&aside)
            ),
            Err(e) => format!("; the file could not be moved aside ({e})"),
        }
    }

    /// A name beside `path` for moving it out of the way, unique by time.
    fn aside_name(&self, path: &Path) -> PathBuf {
        crate::files::sibling(path, &format!(".aside.{}", crate::units::now_ns()))
    }

    /// A new outbox in a safe state: nothing but a regular file at its
    /// path and its journal's (a planted link, FIFO or device is removed,
    /// never followed; a file that is not an outbox is moved aside), then
    /// what waited in memory moved into it.
    fn reopen(&mut self) -> Result<(), OutboxProblem> {
        self.clear_planted();
        let shown = crate::escape::escape_path(&self.path);
        let unusable = |e: Error| OutboxProblem {
            reason: "unusable",
            detail: format!(
                "no event outbox can be made at {shown} ({}); events wait in memory meanwhile",
                crate::escape::sanitize_line(&e.to_string())
            ),
        };
        let not_an_outbox = |e: &Error| matches!(e, Error::Write { source, .. } if source.kind() == std::io::ErrorKind::InvalidData);
        let mut o = match Outbox::open(&self.db) {
            Ok(o) => o,
            // A regular file there that is not an outbox at all (another
            // schema, not SQLite): kept aside, and a new one made. Any other
            // failure (a full disk, a lock held) leaves the file alone.
            // What was moved is said at once (it happened); a failure to
            // make the new one is said as any other.
            Err(e) if not_an_outbox(&e) => {
                let moved = self.move_aside();
                self.found.push(OutboxProblem {
                    reason: "unusable",
                    detail: format!(
                        "the file at {shown} was not a usable event outbox ({}){moved}",
                        crate::escape::sanitize_line(&e.to_string())
                    ),
                });
                Outbox::open(&self.db).map_err(unusable)?
            }
            Err(e) => return Err(unusable(e)),
        };
        if let Err((reason, detail)) = o.check_in_place() {
            return Err(OutboxProblem {
                reason,
                detail: format!("{detail}; events wait in memory meanwhile"),
            });
        }
        self.carry_sequence_into(&mut o)?;
        self.move_held_into(&mut o)?;
        self.outbox = Some(o);
        Ok(())
    }

    /// Removes what was planted at the outbox's path or its journal's (a
    /// link, a FIFO, a device; never followed); a directory where the
    /// journal goes is moved aside, and said.
    fn clear_planted(&mut self) {
        let journal = crate::files::sibling(&self.path, "-journal");
        for p in [&self.path, &journal] {
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() && *p == journal => {
                    // A directory where SQLite writes its journal would
                    // stop every write: out of the way, kept.
                    let aside = self.aside_name(p);
                    if std::fs::rename(p, &aside).is_ok() {
                        self.found.push(OutboxProblem {
                            reason: "journal-planted",
                            detail: format!(
                                "a directory stood where SQLite writes the outbox's journal; \
                                 it was moved to {}",
                                crate::escape::escape_path(&aside)
                            ),
                        });
                    }
                }
                Ok(m) if !m.is_file() && !m.is_dir() => {
                    let _ = std::fs::remove_file(p);
                }
                _ => {}
            }
        }
    }

    /// Makes `o` number on from where this daemon's numbering is, unless it
    /// is further on already.
    fn carry_sequence_into(&mut self, o: &mut Outbox) -> Result<(), OutboxProblem> {
        let Some(ours) = &self.sequence else {
            self.sequence = o.sequence().cloned();
            return Ok(());
        };
        let behind = match o.sequence() {
            Some(theirs) => theirs.stream != ours.stream || theirs.next < ours.next,
            None => true,
        };
        if behind {
            o.continue_sequence(ours).map_err(|e| OutboxProblem {
                reason: "unusable",
                detail: format!(
                    "the new event outbox {} refuses writes ({}); events wait in memory",
                    crate::escape::escape_path(&self.path),
                    crate::escape::sanitize_line(&e.to_string())
                ),
            })?;
        }
        Ok(())
    }

    /// Moves what waited in memory into `o`, in runs of events meant for
    /// the same sinks: one transaction each.
    fn move_held_into(&mut self, o: &mut Outbox) -> Result<(), OutboxProblem> {
        while let Some((_, sinks)) = self.held.front() {
            let sinks = sinks.clone();
            let run = self
                .held
                .iter()
                .take(EVENTS_PER_MOVE)
                .take_while(|(_, s)| *s == sinks)
                .count();
            let events: Vec<Event> = self.held.iter().take(run).map(|(e, _)| e.clone()).collect();
            match o.add(&events, &sinks) {
                Ok(dropped) => self.dropped += dropped,
                Err(e) => {
                    return Err(OutboxProblem {
                        reason: "unusable",
                        detail: format!(
                            "the new event outbox {} refuses events ({}); they wait in memory",
                            crate::escape::escape_path(&self.path),
                            crate::escape::sanitize_line(&e.to_string())
                        ),
                    });
                }
            }
            self.held.drain(..run);
        }
        Ok(())
    }

    /// Keeps `events` for `sinks`: in the outbox, or in memory while there
    /// is none. Returns how many could not be kept.
    pub fn add(&mut self, events: &[Event], sinks: &[String]) -> u64 {
        if sinks.is_empty() {
            return 0;
        }
        if let Some(o) = &mut self.outbox {
            match o.add(events, sinks) {
                Ok(dropped) => {
                    self.sequence = o.sequence().cloned();
                    return dropped;
                }
                // A file that fails under us: its events go to memory.
                Err(e) => self.retire(format!(
                    "the event outbox refused events ({})",
                    crate::escape::sanitize_line(&e.to_string())
                )),
            }
        }
        let mut dropped = 0;
        let sequence = self.sequence.get_or_insert_with(Sequence::start);
        for e in events {
            // Numbered even when dropped: the consumer sees the gap.
            let mut e = e.clone();
            sequence.stamp(&mut e);
            if self.held.len() >= MAX_HELD_EVENTS {
                dropped += 1;
            } else {
                self.held.push_back((e, sinks.to_vec()));
            }
        }
        self.dropped += dropped;
        dropped
    }

    /// Sends what waits for `sink_name`, in order, stopping at the first
    /// refusal. Events wait in memory only while there is no outbox (a new
    /// one is tried first, so that they join the file after what waits
    /// there), and are then older than anything in the outbox.
    pub fn deliver(&mut self, sink_name: &str, sink: &mut dyn Sink) -> Delivery {
        if self.outbox.is_none() {
            self.try_reopen();
        }
        let mut d = Delivery::default();
        let mut sent = 0;
        for (event, _) in self
            .held
            .iter()
            .filter(|(_, s)| s.iter().any(|k| k == sink_name))
        {
            crate::progress::tick();
            if let Err(e) = sink.send(event) {
                d.error = Some(e);
                break;
            }
            sent += 1;
        }
        if let Err(e) = sink.flush() {
            sent = sent.min(e.delivered);
            d.error.get_or_insert(e.error);
        }
        // The first `sent` events waiting for this sink arrived.
        let mut left = sent;
        for (_, sinks) in self.held.iter_mut() {
            if left == 0 {
                break;
            }
            if let Some(i) = sinks.iter().position(|k| k == sink_name) {
                sinks.remove(i);
                left -= 1;
            }
        }
        self.held.retain(|(_, s)| !s.is_empty());
        d.delivered += sent as u64;
        if d.error.is_none()
            && let Some(o) = &mut self.outbox
        {
            match o.deliver(sink_name, sink) {
                Ok(more) => {
                    d.delivered += more.delivered;
                    d.waiting = more.waiting;
                    d.error = more.error;
                }
                Err(e) => {
                    let why = format!(
                        "the event outbox failed ({})",
                        crate::escape::sanitize_line(&e.to_string())
                    );
                    d.error = Some(format!("{why}; events wait in memory"));
                    self.retire(why);
                }
            }
        }
        d.waiting += self
            .held
            .iter()
            .filter(|(_, s)| s.iter().any(|k| k == sink_name))
            .count() as u64;
        d
    }

    /// Events waiting, in the outbox and in memory.
    pub fn len(&self) -> u64 {
        let stored = self.outbox.as_ref().and_then(|o| o.len().ok()).unwrap_or(0);
        stored + self.held.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::super::sink::SinkError;
    use super::*;

    /// Takes `accept` events, then refuses.
    struct Limited {
        accept: usize,
        got: Vec<String>,
    }

    impl Sink for Limited {
        fn send(&mut self, event: &Event) -> Result<(), String> {
            if self.got.len() >= self.accept {
                return Err("down".into());
            }
            self.got.push(event.id.clone());
            Ok(())
        }

        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn event(i: usize) -> Event {
        Event {
            kind: "fim-test".into(),
            id: format!("e{i}"),
            body: "{}".into(),
            numbered: false,
        }
    }

    #[test]
    fn without_an_outbox_events_wait_in_memory_in_order_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        // A directory where the outbox goes: none can be made.
        std::fs::create_dir(sibling_outbox(&db)).unwrap();
        let mut g = GuardedOutbox::open(&db);
        let found = g.inspect();
        assert_eq!(found[0].reason, "unusable", "{}", found[0].detail);
        let sinks = vec!["a".to_string(), "b".to_string()];
        let events: Vec<Event> = (0..MAX_HELD_EVENTS + 5).map(event).collect();
        assert_eq!(g.add(&events, &sinks), 5);
        assert!(g.inspect().iter().any(|p| p.reason == "memory-full"));
        // Sink a takes three, then refuses: the rest wait, in order.
        let mut a = Limited {
            accept: 3,
            got: Vec::new(),
        };
        let d = g.deliver("a", &mut a);
        assert_eq!(d.delivered, 3);
        assert_eq!(d.waiting, MAX_HELD_EVENTS as u64 - 3);
        assert_eq!(a.got, ["e0", "e1", "e2"]);
        let mut a = Limited {
            accept: 2,
            got: Vec::new(),
        };
        g.deliver("a", &mut a);
        assert_eq!(a.got, ["e3", "e4"]);
        // Nothing is forgotten while sink b has not had it.
        assert_eq!(g.len(), MAX_HELD_EVENTS as u64);
        // The outbox can be made again: what waited moves into it, in order.
        std::fs::remove_dir(sibling_outbox(&db)).unwrap();
        assert!(g.inspect().is_empty());
        let mut b = Limited {
            accept: 4,
            got: Vec::new(),
        };
        g.deliver("b", &mut b);
        assert_eq!(b.got, ["e0", "e1", "e2", "e3"]);
        let mut a = Limited {
            accept: 1,
            got: Vec::new(),
        };
        g.deliver("a", &mut a);
        assert_eq!(a.got, ["e5"]);
    }

    /// The (stream, seq) of what `sink` got.
    fn numbers(got: &[String]) -> Vec<(String, u64)> {
        got.iter()
            .map(|b| {
                let v: serde_json::Value = serde_json::from_str(b).unwrap();
                (
                    v["stream"].as_str().unwrap().to_string(),
                    v["seq"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    struct Bodies(Vec<String>);

    impl Sink for Bodies {
        fn send(&mut self, event: &Event) -> Result<(), String> {
            self.0.push(event.body.clone());
            Ok(())
        }

        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    #[test]
    fn numbering_survives_restarts_and_a_removed_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        let sinks = vec!["a".to_string()];
        let mut o = Outbox::open(&db).unwrap();
        o.add(&[event(0), event(1)], &sinks).unwrap();
        drop(o);
        // A new process numbers on.
        let mut g = GuardedOutbox::open(&db);
        g.add(&[event(2)], &sinks);
        // The file is removed under the daemon: its events move to memory,
        // and the numbering goes on in memory and then in the new file.
        std::fs::remove_file(sibling_outbox(&db)).unwrap();
        std::fs::create_dir(sibling_outbox(&db)).unwrap();
        assert_eq!(g.inspect()[0].reason, "not-a-file");
        g.add(&[event(3)], &sinks);
        std::fs::remove_dir(sibling_outbox(&db)).unwrap();
        g.inspect();
        g.add(&[event(4)], &sinks);
        let mut got = Bodies(Vec::new());
        let d = g.deliver("a", &mut got);
        assert_eq!(d.delivered, 5, "{d:?}");
        let n = numbers(&got.0);
        assert!(n.iter().all(|(s, _)| *s == n[0].0), "{n:?}");
        assert_eq!(
            n.iter().map(|(_, q)| *q).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn two_processes_on_one_outbox_never_give_a_number_twice() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        let sinks = vec!["a".to_string()];
        // The daemon's and a check's, each opened before the other wrote.
        let mut daemon = Outbox::open(&db).unwrap();
        let mut check = Outbox::open(&db).unwrap();
        daemon.add(&[event(0)], &sinks).unwrap();
        check.add(&[event(1), event(2)], &sinks).unwrap();
        daemon.add(&[event(3)], &sinks).unwrap();
        let mut got = Bodies(Vec::new());
        check.deliver("a", &mut got).unwrap();
        let n = numbers(&got.0);
        assert!(n.iter().all(|(s, _)| *s == n[0].0), "one stream: {n:?}");
        assert_eq!(n.iter().map(|(_, q)| *q).collect::<Vec<_>>(), [1, 2, 3, 4]);
    }

    #[test]
    fn an_outbox_of_an_earlier_version_is_used_and_numbers_from_one() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("b.db");
        {
            let old = Connection::open(sibling_outbox(&db)).unwrap();
            old.execute_batch(OUTBOX_EVENTS).unwrap();
            old.execute_batch(
                "INSERT INTO events (id, type, body) VALUES ('old', 'fim-test', '{\"x\":1}'); \
                 INSERT INTO pending VALUES ('a', 1);",
            )
            .unwrap();
        }
        let mut o = Outbox::open(&db).unwrap();
        o.add(&[event(1)], &["a".to_string()]).unwrap();
        let mut got = Bodies(Vec::new());
        o.deliver("a", &mut got).unwrap();
        assert_eq!(got.0[0], r#"{"x":1}"#);
        assert_eq!(numbers(&got.0[1..])[0].1, 1);
    }

    fn sibling_outbox(db: &Path) -> PathBuf {
        crate::files::sibling(db, ".outbox")
    }
}
