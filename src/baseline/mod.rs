//! The baseline file: SQLite schema, atomic writing, locking and reading.
//!
//! Guarantees:
//! - a baseline is written to a temporary file beside the target, fsynced,
//!   renamed into place and the directory fsynced: a crash or a kill at any
//!   moment leaves the previous baseline or the new one, never a torn one;
//! - one writer per baseline path at a time (`flock` on `<db>.lock`);
//! - entries are inserted in bounded batches, so memory does not grow with
//!   the number of entries;
//! - paths are stored as raw bytes (BLOB) and come back byte for byte;
//! - opening a file that is not a tripseal baseline, or one of a newer schema,
//!   is a clear [`Error::Database`].

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

pub mod columns;
pub mod paged;
mod path_order;
pub mod stat_cache;

use crate::attrs::{Attr, AttrSet};
use crate::error::Error;
use crate::files::{Companion, parent_dir};
use crate::files::{create_exclusive, hex, sibling};
use crate::rules::{Rules, Severity};
use crate::scan::{Entry, FileKind, Meta, Problem};
use crate::sqlite::{self, SchemaRow, harden};
use columns::Column;

/// The schema this version writes and the newest it reads.
/// Schema 2 added the owner's and group's names; schema 3 keeps each
/// directory's path once (see [`columns`]).
pub const SCHEMA_VERSION: i64 = 3;
const FORMAT_MARK: &str = "tripseal-baseline";
/// Rows per transaction while a baseline is written: large enough that commits
/// are rare, small enough that the batch stays a few MB.
const INSERT_BATCH_ROWS: usize = 20_000;

/// The header of a baseline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub schema: i64,
    /// The host a host's baseline describes (empty in a role baseline).
    pub host: String,
    /// The role a role baseline serves (its rules' `role`).
    pub role: Option<String>,
    /// Creation time, nanoseconds since the epoch (UTC).
    pub created_ns: i64,
    pub generation: i64,
    pub tool_version: String,
    /// BLAKE3 of the rules text and overrides, hex.
    pub rules_digest: String,
    /// Where the rules came from when the baseline was made.
    pub rules_origin: String,
    pub rules_text: String,
    /// `--var` overrides in effect.
    pub rules_vars: BTreeMap<String, String>,
}

impl Header {
    pub fn new(rules: &Rules, host: String, created_ns: i64, generation: i64) -> Header {
        Header {
            schema: SCHEMA_VERSION,
            host: if rules.role.is_some() {
                String::new()
            } else {
                host
            },
            role: rules.role.clone(),
            created_ns,
            generation,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            rules_digest: hex(&rules.digest()),
            rules_origin: rules.source.name.clone(),
            rules_text: rules.source.text.clone(),
            rules_vars: rules.overrides.clone(),
        }
    }
}

/// A rule as recorded in a baseline (what reports need without re-parsing).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleInfo {
    pub name: String,
    pub severity: Severity,
    pub attrs: AttrSet,
}

/// An exclusive lock on one baseline path, held until dropped.
#[derive(Debug)]
pub struct BaselineLock {
    _file: File,
}

impl BaselineLock {
    /// Takes the lock `<db>.lock`, failing at once if another process holds it.
    pub fn acquire(db: &Path) -> Result<BaselineLock, Error> {
        let path = sibling(db, ".lock");
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open(&path)
            // A FIFO or a device planted under the lock's name is no lock.
            .and_then(|f| crate::files::ensure_regular(&f).map(|_| f))
            .map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: db.to_path_buf(),
                });
            }
            Err(std::fs::TryLockError::Error(source)) => {
                return Err(Error::Write { path, source });
            }
        }
        Ok(BaselineLock { _file: file })
    }
}

/// Writes a new baseline; nothing is visible at the target until [`finish`].
///
/// [`finish`]: BaselineWriter::finish
pub struct BaselineWriter {
    conn: Option<Connection>,
    tmp: PathBuf,
    target: PathBuf,
    rule_names: Vec<String>,
    in_batch: usize,
    lock: Option<BaselineLock>,
    /// Whether rows keep the stat fields only this host has (see
    /// [`Column::value`]): in a host's baseline and in every check's scan,
    /// not in a role baseline.
    host_fields: bool,
    /// The id of each directory part written so far (see [`columns::split`]).
    dirs: HashMap<Vec<u8>, i64>,
    /// The directory part of the entry inserted last, and its id.
    last_dir: Option<(Vec<u8>, i64)>,
}

/// A written, closed baseline file that is not in place yet: a check's scan,
/// or a new generation under review. Removed when dropped, unless
/// [`Snapshot::persist`]ed.
#[derive(Debug)]
pub struct Snapshot {
    path: PathBuf,
    target: PathBuf,
    lock: Option<BaselineLock>,
}

impl Snapshot {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Syncs and renames the file into place (then syncs the directory).
    /// With `keep_previous`, the baseline it replaces stays as `<db>.prev`.
    pub fn persist(mut self, keep_previous: bool) -> Result<(), Error> {
        let werr = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Write { path, source }
        };
        File::open(&self.path)
            .and_then(|f| f.sync_all())
            .map_err(werr(&self.path))?;
        if keep_previous && self.target.exists() {
            // A hard link, then a rename: the target never goes missing.
            let prev = sibling(&self.target, ".prev");
            let prev_tmp = sibling(&self.target, ".prev.tmp");
            let _ = std::fs::remove_file(&prev_tmp);
            std::fs::hard_link(&self.target, &prev_tmp).map_err(werr(&prev_tmp))?;
            std::fs::rename(&prev_tmp, &prev).map_err(werr(&prev))?;
        }
        std::fs::rename(&self.path, &self.target).map_err(werr(&self.target))?;
        let dir = parent_dir(&self.target);
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(werr(dir))?;
        self.path = PathBuf::new(); // persisted: nothing to remove
        drop(self.lock.take());
        Ok(())
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl BaselineWriter {
    /// Starts a baseline for `target`, holding `lock` until it is finished.
    pub fn create(
        target: &Path,
        header: &Header,
        rules: &Rules,
        lock: BaselineLock,
    ) -> Result<BaselineWriter, Error> {
        // With the lock held: no live writer owns a temporary left here.
        crate::files::remove_dead(target, Companion::Writing);
        let tmp = Companion::Writing.with_pid(target, std::process::id());
        let mut w = Self::start(tmp, target, header, rules, Some(lock))?;
        w.host_fields = rules.role.is_none();
        Ok(w)
    }

    /// Starts a scan snapshot of the baseline at `db`, to compare with it and
    /// then discard ([`BaselineWriter::finish_snapshot`]). It goes beside the
    /// baseline, or, where that directory cannot be written (a baseline on
    /// read-only media), to the temporary directory. The scan must skip
    /// [`BaselineWriter::path`].
    pub fn create_snapshot(
        db: &Path,
        header: &Header,
        rules: &Rules,
    ) -> Result<BaselineWriter, Error> {
        let pid = std::process::id();
        // Checks run without the writer lock: only the snapshots (and stat
        // cache temporaries) of processes that are gone are removed, before
        // the scan that would find them.
        crate::files::remove_dead(db, Companion::Snapshot);
        crate::files::remove_dead(db, Companion::StatCacheTmp);
        let beside = Companion::Snapshot.with_pid(db, pid);
        match Self::start(beside.clone(), &beside, header, rules, None) {
            Ok(w) => Ok(w),
            Err(beside_err) => {
                let mut stem = std::ffi::OsString::from("tripseal-");
                stem.push(db.file_name().unwrap_or_default());
                let stand_in = std::env::temp_dir().join(stem);
                crate::files::remove_dead(&stand_in, Companion::Snapshot);
                let tmp = Companion::Snapshot.with_pid(&stand_in, pid);
                Self::start(tmp.clone(), &tmp, header, rules, None).map_err(|_| beside_err)
            }
        }
    }

    /// The file being written.
    pub fn path(&self) -> &Path {
        &self.tmp
    }

    fn start(
        tmp: PathBuf,
        target: &Path,
        header: &Header,
        rules: &Rules,
        lock: Option<BaselineLock>,
    ) -> Result<BaselineWriter, Error> {
        let conn = open_new(&tmp)?;
        let werr = |e: rusqlite::Error| Error::Write {
            path: tmp.clone(),
            source: io::Error::other(e),
        };
        // The temporary file is discarded unless finished, so it needs no
        // journal; durability comes from the fsync + rename in `finish`.
        // SQLite's default page cache (2 MiB) is enough: rows come in key
        // order, so each page fills and is written once. 16 MiB measured no
        // faster (`init` of the million-file corpus: 5.8 s vs 5.6 s) and
        // was most of the daemon's peak at every rescan.
        conn.execute_batch(
            "PRAGMA journal_mode = OFF;
             PRAGMA synchronous = OFF;
             PRAGMA locking_mode = EXCLUSIVE;
             PRAGMA cache_size = -2048;",
        )
        .map_err(werr)?;
        conn.execute_batch(SCHEMA).map_err(werr)?;
        conn.execute_batch(columns::create_table(SCHEMA_VERSION))
            .map_err(werr)?;
        write_header(&conn, header, rules).map_err(werr)?;
        conn.execute_batch("BEGIN").map_err(werr)?;
        Ok(BaselineWriter {
            conn: Some(conn),
            tmp,
            target: target.to_path_buf(),
            rule_names: rules.rules.iter().map(|r| r.name.clone()).collect(),
            in_batch: 0,
            lock,
            host_fields: true,
            dirs: HashMap::new(),
            last_dir: None,
        })
    }

    fn write_error(&self, e: rusqlite::Error) -> Error {
        Error::Write {
            path: self.tmp.clone(),
            source: io::Error::other(e),
        }
    }

    /// Adds one entry; each path comes once (the walk merges what it knows).
    pub fn insert(&mut self, e: &Entry) -> Result<(), Error> {
        let conn = self.conn.as_ref().expect("writer is open until finished");
        let (dir, name) = columns::split(e.path.as_os_str().as_bytes());
        // A batch of the walk mostly holds one directory's entries.
        let known = match &self.last_dir {
            Some((last, id)) if last == dir => Some(*id),
            _ => self.dirs.get(dir).copied(),
        };
        let dir_id = match known {
            Some(id) => id,
            None => {
                let id = self.dirs.len() as i64 + 1;
                conn.prepare_cached(columns::INSERT_DIR)
                    .and_then(|mut stmt| stmt.execute(params![dir, id]))
                    .map_err(|err| self.write_error(err))?;
                self.dirs.insert(dir.to_vec(), id);
                id
            }
        };
        if self.last_dir.as_ref().is_none_or(|(last, _)| last != dir) {
            self.last_dir = Some((dir.to_vec(), dir_id));
        }
        let rule = &self.rule_names[e.rule];
        let values = Column::ALL[1..]
            .iter()
            .map(|c| c.value(e, rule, self.host_fields));
        let result = conn.prepare_cached(columns::insert()).and_then(|mut stmt| {
            let head = [
                rusqlite::types::ToSqlOutput::from(dir_id),
                rusqlite::types::ToSqlOutput::from(name),
            ];
            stmt.execute(rusqlite::params_from_iter(head.into_iter().chain(values)))
        });
        result.map_err(|err| self.write_error(err))?;
        self.in_batch += 1;
        if self.in_batch >= INSERT_BATCH_ROWS {
            conn.execute_batch("COMMIT; BEGIN")
                .map_err(|err| self.write_error(err))?;
            self.in_batch = 0;
        }
        Ok(())
    }

    /// Adds an entry read from a baseline whose rules are `rules` (an
    /// entry's rule is an index into its own baseline's rules).
    pub fn insert_from(&mut self, e: &Entry, rules: &[RuleInfo]) -> Result<(), Error> {
        let name = &rules[e.rule].name;
        let Some(rule) = self.rule_names.iter().position(|n| n == name) else {
            return Err(
                self.write_error(rusqlite::Error::InvalidParameterName(format!(
                    "no rule {name} in the new generation"
                ))),
            );
        };
        let mut e = e.clone();
        e.rule = rule;
        self.insert(&e)
    }

    fn commit_and_close(&mut self) -> Result<(), Error> {
        let conn = self.conn.take().expect("finish runs once");
        let result = conn
            .execute_batch("COMMIT")
            .map_err(|e| self.write_error(e))
            .and_then(|()| conn.close().map_err(|(_, e)| self.write_error(e)));
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }

    /// Commits and closes the file, and hands it over: to compare, then
    /// persist or drop.
    pub fn finish_snapshot(mut self) -> Result<Snapshot, Error> {
        let baseline = self.target != self.tmp;
        {
            let conn = self.conn.as_ref().expect("finish runs once");
            // prefix_hash belongs to a check's comparison, never to a baseline.
            if baseline {
                conn.execute_batch(
                    "UPDATE entries SET prefix_hash = NULL WHERE prefix_hash IS NOT NULL",
                )
                .map_err(|e| self.write_error(e))?;
            }
        }
        if baseline {
            self.pack()?;
        } else {
            self.commit_and_close()?;
        }
        Ok(Snapshot {
            path: self.tmp.clone(),
            target: self.target.clone(),
            lock: self.lock.take(),
        })
    }

    /// Commits, then rewrites the file compactly, in place. Rows arrive in
    /// the order the parallel scan finishes them, not in path order, so the
    /// table's pages end up about three quarters full; `VACUUM` writes them
    /// in order and full: a quarter less to sign, ship, verify and hold in
    /// memory. The logical content, and so the digest, is the same. In
    /// place, so the file stays the one `open_new` made and checked;
    /// SQLite's intermediate copy is an unnamed temporary file (already
    /// unlinked) in `TMPDIR`, `/var/tmp` or `/tmp`. Through a small page
    /// cache (the copy's takes the same size), so memory stays flat
    /// however large the baseline.
    fn pack(&mut self) -> Result<(), Error> {
        let conn = self.conn.take().expect("finish runs once");
        let result = conn
            .execute_batch("COMMIT; PRAGMA cache_size = -2048; VACUUM")
            .map_err(|e| {
                io::Error::other(format!(
                    "cannot pack it ({e}); SQLite copies it through a temporary file, \
                     which needs room in TMPDIR, /var/tmp or /tmp"
                ))
            })
            .and_then(|()| conn.close().map_err(|(_, e)| io::Error::other(e)))
            .map_err(|source| Error::Write {
                path: self.tmp.clone(),
                source,
            });
        if result.is_err() {
            let _ = std::fs::remove_file(&self.tmp);
        }
        result
    }

    /// Commits a check's scan and reads it back through the connection that
    /// wrote it, never by opening the path again (where another file could
    /// have been put meanwhile). The snapshot file goes when the returned
    /// [`Snapshot`] is dropped.
    pub fn finish_for_reading(mut self) -> Result<(Snapshot, Baseline), Error> {
        let conn = self.conn.take().expect("finish runs once");
        // prefix_hash stays: a check compares it with the baseline's hash.
        let committed = conn.execute_batch("COMMIT").and_then(|()| harden(&conn));
        let snapshot = Snapshot {
            path: self.tmp.clone(),
            target: self.target.clone(),
            lock: self.lock.take(),
        };
        committed.map_err(|e| self.write_error(e))?;
        let mut new = Baseline::validate(conn, &self.tmp, None, None)?;
        new.own_scan = true;
        Ok((snapshot, new))
    }

    /// Commits, syncs and renames the baseline into place.
    pub fn finish(self, keep_previous: bool) -> Result<(), Error> {
        self.finish_snapshot()?.persist(keep_previous)
    }
}

impl Drop for BaselineWriter {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // Not finished: an error unwound past us. Leave no partial file.
            drop(conn);
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// A new, empty SQLite file at `tmp`, opened. Created here, exclusively
/// and without following a link, so that a name planted in a shared
/// directory (the TMPDIR fallback) is refused rather than written through.
fn open_new(tmp: &Path) -> Result<Connection, Error> {
    use std::os::unix::fs::MetadataExt;
    let _ = std::fs::remove_file(tmp);
    let failed = |source: io::Error| Error::Write {
        path: tmp.to_path_buf(),
        source,
    };
    let created = create_exclusive(tmp, 0o600)
        .and_then(|f| f.metadata())
        .map_err(failed)?;
    let conn = Connection::open_with_flags(
        tmp,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(|e| failed(io::Error::other(e)))?;
    // What SQLite opened is the file made above, not one swapped in.
    let opened = std::fs::symlink_metadata(tmp).map_err(failed)?;
    if (opened.dev(), opened.ino()) != (created.dev(), created.ino()) {
        return Err(failed(io::Error::other(
            "another file was put in its place as it was opened; something else writes in \
             that directory: find it, then run the command again",
        )));
    }
    Ok(conn)
}

/// The header (`meta`) and the rules of a new baseline.
fn write_header(conn: &Connection, header: &Header, rules: &Rules) -> rusqlite::Result<()> {
    let vars = serde_json::to_string(&header.rules_vars).unwrap_or_else(|_| "{}".into());
    let mut put = conn.prepare("INSERT INTO meta(key, value) VALUES (?1, ?2)")?;
    put.execute(params!["format", FORMAT_MARK])?;
    put.execute(params!["schema", header.schema])?;
    match &header.role {
        Some(role) => put.execute(params!["role", role])?,
        None => put.execute(params!["host", header.host])?,
    };
    put.execute(params!["created_ns", header.created_ns])?;
    put.execute(params!["generation", header.generation])?;
    for (key, text) in [
        ("tool_version", &header.tool_version),
        ("rules_digest", &header.rules_digest),
        ("rules_origin", &header.rules_origin),
        ("rules_text", &header.rules_text),
        ("rules_vars", &vars),
    ] {
        put.execute(params![key, text])?;
    }
    let mut rule = conn.prepare("INSERT INTO rules(name, severity, attrs) VALUES (?1, ?2, ?3)")?;
    for r in &rules.rules {
        rule.execute(params![r.name, r.severity.name(), r.attrs.bits()])?;
    }
    Ok(())
}

/// The tables besides `entries` (whose statement [`columns`] makes).
const SCHEMA: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value) WITHOUT ROWID;
CREATE TABLE rules (
    name TEXT PRIMARY KEY NOT NULL,
    severity TEXT NOT NULL,
    attrs INTEGER NOT NULL
) WITHOUT ROWID;
";

/// The signatures a baseline carries: a table the canonical digest does not
/// cover, made by the first `sign`.
pub const SIGNATURES_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS signatures (
    fingerprint TEXT PRIMARY KEY NOT NULL,
    public_key BLOB NOT NULL,
    signature BLOB NOT NULL,
    signed_at_ns INTEGER NOT NULL
) WITHOUT ROWID";

/// Where `update` found the drift it accepted came from (see
/// [`crate::origin`]): a table the canonical digest does not cover, read
/// only by `diff` to show the reviewer. It is the host's word, as every
/// row of a generation is until an operator signs it.
pub const ORIGINS_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS origins (
    path BLOB PRIMARY KEY NOT NULL,
    manager TEXT,
    package TEXT,
    version TEXT,
    verdict TEXT NOT NULL,
    evidence TEXT,
    note TEXT
) WITHOUT ROWID";

/// Records `origins` in the closed, not yet persisted baseline file at
/// `path` (one [`Snapshot`] of `update`'s).
pub fn record_origins(
    path: &Path,
    origins: &std::collections::HashMap<PathBuf, crate::origin::Origin>,
) -> Result<(), Error> {
    if origins.is_empty() {
        return Ok(());
    }
    let werr = |e: rusqlite::Error| Error::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    };
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_NOFOLLOW,
    )
    .map_err(werr)?;
    harden(&conn).map_err(werr)?;
    conn.execute_batch("PRAGMA journal_mode = OFF; BEGIN")
        .map_err(werr)?;
    conn.execute_batch(ORIGINS_SCHEMA).map_err(werr)?;
    {
        let mut put = conn
            .prepare(
                "INSERT OR REPLACE INTO origins(path, manager, package, version, verdict, \
                 evidence, note) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(werr)?;
        for (p, o) in origins {
            let pkg = o.package.as_ref();
            put.execute(params![
                p.as_os_str().as_encoded_bytes(),
                pkg.map(|p| p.manager.name()),
                pkg.map(|p| p.name.as_str()),
                pkg.map(|p| p.version.as_str()),
                o.verdict.name(),
                o.evidence.map(crate::origin::Evidence::name),
                o.note,
            ])
            .map_err(werr)?;
        }
    }
    conn.execute_batch("COMMIT").map_err(werr)?;
    conn.close().map_err(|(_, e)| werr(e))
}

/// The expiry column, added by `sign` to a signatures table made before
/// expiries existed (and to every new one: one way to reach one schema).
pub const SIGNATURES_ADD_EXPIRY: &str = "ALTER TABLE signatures ADD COLUMN expires_ns INTEGER";

/// The largest baseline tripseal reads into memory: a million entries take
/// about 150 MB, so this is some 25 million; a planted giant file is
/// refused rather than read.
const MAX_BASELINE_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// A baseline opened for reading.
pub struct Baseline {
    conn: Connection,
    path: PathBuf,
    header: Header,
    rules: Vec<RuleInfo>,
    image: Option<FileImage>,
    /// The private copy read through, when it is not held in memory.
    copy: Option<std::sync::Arc<paged::Copy>>,
    /// This process's own scan (a check's snapshot, read back through the
    /// connection that wrote it): the only rows whose `trusted` flag means
    /// anything. In any file opened by path it is data an intruder may
    /// have written, and is ignored.
    own_scan: bool,
}

/// The file a baseline was read from, as it was then: its identity and the
/// BLAKE3 of the bytes read, so that a long-running reader can tell whether
/// the path still holds what it verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileImage {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub hash: [u8; 32],
}

impl FileImage {
    /// The image of the file `meta` describes, whose bytes hash to `hash`.
    fn of(meta: &std::fs::Metadata, hash: [u8; 32]) -> FileImage {
        use std::os::unix::fs::MetadataExt;
        FileImage {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(),
            ctime_ns: meta.ctime() * 1_000_000_000 + meta.ctime_nsec(),
            hash,
        }
    }

    fn stat_matches(&self, m: &std::fs::Metadata) -> bool {
        FileImage::of(m, self.hash) == *self
    }

    /// `Ok` while `path` holds exactly the bytes this image was read from;
    /// otherwise what became of it, in words.
    pub fn still_at(&self, path: &Path) -> Result<(), String> {
        // Followed, as Baseline::open follows a symlinked --db.
        let meta = match std::fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err("the file was deleted".into());
            }
            Err(e) => return Err(format!("it cannot be examined ({e})")),
        };
        if !meta.is_file() {
            return Err(format!(
                "it was replaced by {}",
                crate::files::kind_name(&meta)
            ));
        }
        if self.stat_matches(&meta) {
            return Ok(());
        }
        use std::os::unix::fs::MetadataExt;
        let replaced = (meta.dev(), meta.ino()) != (self.dev, self.ino);
        // Touched, or rewritten with the same bytes: read it to tell.
        let same = crate::files::open_untrusted(path, MAX_BASELINE_BYTES, true)
            .and_then(|(mut f, _)| {
                let mut h = blake3::Hasher::new();
                io::copy(&mut crate::progress::Ticking(&mut f), &mut h)?;
                Ok(*h.finalize().as_bytes() == self.hash)
            })
            .unwrap_or(false);
        match (same, replaced) {
            (true, _) => Ok(()),
            (false, true) => Err("another file was put in its place".into()),
            (false, false) => Err("it was written in place".into()),
        }
    }
}

/// `detail`, with why the private copy failed if it has (SQLite itself
/// only says "disk I/O error").
fn with_copy_state(detail: String, copy: Option<&paged::Copy>) -> String {
    let Some(copy) = copy else {
        return detail;
    };
    match (copy.altered(), copy.io_error()) {
        (Some(why), _) => format!(
            "{detail}: the private copy of the verified baseline was altered after it was \
             verified ({why})"
        ),
        (None, Some(e)) => format!(
            "{detail}: the private copy of the verified baseline could not be read back ({e})"
        ),
        (None, None) => detail,
    }
}

/// Reads the `len` bytes of a baseline through `reader` into `writer`'s
/// private copy. The inner error: the copy could not be written (no room
/// where nothing could be reserved), which the caller survives.
fn copy_aside(
    reader: &mut ImageReader<'_>,
    len: u64,
    mut writer: paged::CopyWriter,
    path: &Path,
) -> Result<Result<std::sync::Arc<paged::Copy>, io::Error>, Error> {
    let mut buf = vec![0u8; 1 << 16];
    let mut left = len;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = match io::Read::read(reader, &mut buf[..want]) {
            Ok(0) => {
                return Err(Error::Database {
                    path: path.to_path_buf(),
                    detail: "it could not be read whole (it shrank while it was read)".into(),
                });
            }
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        if let Err(e) = io::Write::write_all(&mut writer, &buf[..n]) {
            return Ok(Err(e));
        }
        left -= n as u64;
    }
    Ok(Ok(writer.finish()))
}

/// Reads a baseline file, hashing the bytes as they pass. A file left in
/// WAL mode (and checkpointed) is read as the same content in rollback mode,
/// which is all an in-memory copy can be.
struct ImageReader<'a> {
    file: &'a File,
    hasher: blake3::Hasher,
    pos: u64,
}

impl io::Read for ImageReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        crate::progress::tick();
        let n = io::Read::read(&mut self.file, buf)?;
        self.hasher.update(&buf[..n]);
        // Bytes 18 and 19 of the header: the file format versions (2: WAL).
        for at in 18u64..20 {
            if (self.pos..self.pos + n as u64).contains(&at) {
                let i = (at - self.pos) as usize;
                if buf[i] == 2 {
                    buf[i] = 1;
                }
            }
        }
        self.pos += n as u64;
        Ok(n)
    }
}

/// The rows of `sqlite_master` a baseline may have: its tables, and the
/// signatures table as `sign` makes it or as it was before expiries.
fn expected_schema() -> &'static [SchemaRow] {
    static EXPECTED: std::sync::OnceLock<Vec<SchemaRow>> = std::sync::OnceLock::new();
    EXPECTED.get_or_init(|| {
        let mut rows = sqlite::schema_made_by(&[
            SCHEMA,
            columns::create_table(SCHEMA_VERSION),
            SIGNATURES_SCHEMA,
            ORIGINS_SCHEMA,
        ]);
        // The entries of the schemas before.
        for &older in &columns::SCHEMAS[..columns::SCHEMAS.len() - 1] {
            rows.extend(
                sqlite::schema_made_by(&[columns::create_table(older)])
                    .into_iter()
                    .filter(|(_, n, _)| n == "entries"),
            );
        }
        rows.extend(
            sqlite::schema_made_by(&[SIGNATURES_SCHEMA, SIGNATURES_ADD_EXPIRY])
                .into_iter()
                .filter(|(_, n, _)| n == "signatures"),
        );
        rows
    })
}

/// Refuses any schema that is not exactly tripseal's: a trigger, a view, an
/// index, a virtual table or a table of its own would be code or data the
/// file brings along.
fn check_schema(conn: &Connection) -> Result<(), String> {
    let rows = sqlite::schema_rows(conn).map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
            "not a tripseal baseline (not an SQLite database)".to_string()
        }
        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::DatabaseCorrupt => {
            "the database is corrupt".to_string()
        }
        e => format!("cannot read its schema: {e}"),
    })?;
    let expected = expected_schema();
    // Tables some baselines have and others not.
    let ours = |n: &str| {
        !["signatures", "origins", "dirs"].contains(&n) && expected.iter().any(|(_, e, _)| e == n)
    };
    if !rows.iter().any(|(_, n, _)| ours(n)) {
        return Err(
            "not a tripseal baseline (an SQLite database without tripseal's tables)".into(),
        );
    }
    for (kind, name, sql) in &rows {
        let mut defined = expected.iter().filter(|(k, n, _)| k == kind && n == name);
        let shown = crate::escape::escape_bytes(name.as_bytes());
        match defined.clone().next() {
            None => {
                return Err(format!(
                    "not tripseal's schema: it holds a {} named {shown}, which no tripseal \
                     baseline has; tripseal refuses a file that carries its own code or tables",
                    crate::escape::escape_bytes(kind.as_bytes()),
                ));
            }
            Some(_) if !defined.any(|(_, _, want)| want == sql) => {
                return Err(format!(
                    "not tripseal's schema: {kind} {shown} is defined differently; \
                     tripseal refuses a file whose schema is not exactly its own"
                ));
            }
            Some(_) => {}
        }
    }
    for (_, name, _) in expected.iter().filter(|(_, n, _)| ours(n)) {
        if !rows.iter().any(|(_, n, _)| n == name) {
            return Err(format!(
                "not a tripseal baseline (its table {name} is missing)"
            ));
        }
    }
    Ok(())
}

/// Where an opened baseline's bytes are held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// In memory: for a command, which holds it for seconds.
    Memory,
    /// In a private file beside it, every block checked as it is read back
    /// (see [`paged`]): for the daemon, which holds it for weeks. Where no
    /// such file can be made, in memory, and a warning says so.
    Disk,
}

impl Baseline {
    /// Opens the baseline at `path`, held in memory ([`Baseline::open_keeping`]).
    pub fn open(path: &Path) -> Result<Baseline, Error> {
        Self::open_keeping(path, Keep::Memory)
    }

    /// Opens the baseline at `path`. Its bytes are read once (a FIFO or a
    /// device is refused, never waited on), into memory or into a private
    /// copy as `keep` says; its schema must be exactly tripseal's before
    /// anything else is read; nothing done to the file afterwards changes
    /// what this value holds.
    pub fn open_keeping(path: &Path, keep: Keep) -> Result<Baseline, Error> {
        let db_err = |detail: String| Error::Database {
            path: path.to_path_buf(),
            detail,
        };
        let (file, meta) = match crate::files::open_untrusted(path, MAX_BASELINE_BYTES, true) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
                return Err(db_err(format!("not a tripseal baseline: {e}")));
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(db_err(e.to_string()));
            }
            Err(source) => {
                return Err(Error::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let mut reader = ImageReader {
            file: &file,
            hasher: blake3::Hasher::new(),
            pos: 0,
        };
        if keep == Keep::Disk {
            // Where no copy can be made (a file system without O_TMPFILE,
            // no room for one more baseline, as at a reload while the old
            // copy is held), the daemon still runs, on a copy in memory.
            let copied = match paged::CopyWriter::create(parent_dir(path), meta.len()) {
                Ok(writer) => copy_aside(&mut reader, meta.len(), writer, path)?,
                Err(e) => Err(e),
            };
            match copied {
                Ok(copy) => {
                    let conn = paged::connect(&copy)
                        .and_then(|c| harden(&c).map(|()| c))
                        .map_err(|e| {
                            db_err(format!("cannot open its private copy as SQLite: {e}"))
                        })?;
                    let image = FileImage::of(&meta, *reader.hasher.finalize().as_bytes());
                    return Self::validate(conn, path, Some(image), Some(copy));
                }
                Err(e) => {
                    log::warn!(
                        "{}: cannot keep a private copy in {} ({e}); holding it in memory",
                        crate::escape::escape_path(path),
                        crate::escape::escape_path(parent_dir(path))
                    );
                    // Read again from the start: nothing of a partial copy
                    // (where no room could be reserved) is used.
                    io::Seek::rewind(&mut &file).map_err(|source| Error::Read {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    reader = ImageReader {
                        file: &file,
                        hasher: blake3::Hasher::new(),
                        pos: 0,
                    };
                }
            }
        }
        let mut conn = Connection::open_in_memory()
            .and_then(|c| harden(&c).map(|()| c))
            .map_err(|e| db_err(format!("cannot open as SQLite: {e}")))?;
        // Read straight into SQLite's memory, hashed on the way.
        if meta.len() > 0 {
            conn.deserialize_read_exact(rusqlite::MAIN_DB, &mut reader, meta.len() as usize, true)
                .map_err(|e| match e.sqlite_error_code() {
                    Some(rusqlite::ErrorCode::CannotOpen) => {
                        db_err(format!("it could not be read whole (it shrank, or: {e})"))
                    }
                    _ => db_err(format!("cannot open as SQLite: {e}")),
                })?;
        }
        let image = FileImage::of(&meta, *reader.hasher.finalize().as_bytes());
        Self::validate(conn, path, Some(image), None)
    }

    /// Opens the baseline at `path` to add a signature: read-write, in an
    /// immediate transaction the caller commits, so that the schema checked,
    /// the content digested and the row added are one state of the file.
    ///
    /// SQLite would first play back a journal or a write-ahead log found
    /// beside the file, content that `show` and `diff` never read: a baseline
    /// with such files beside it, or left in WAL mode, is refused, as is a
    /// symlink (never written through).
    pub fn open_for_signing(path: &Path) -> Result<Baseline, Error> {
        let meta = std::fs::symlink_metadata(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let db_err = |detail: String| Error::Database {
            path: path.to_path_buf(),
            detail,
        };
        if !meta.is_file() {
            return Err(db_err(format!(
                "not a baseline tripseal signs in place: it is {}, not a regular file",
                crate::files::kind_name(&meta)
            )));
        }
        for suffix in ["-journal", "-wal", "-shm"] {
            let beside = sibling(path, suffix);
            if std::fs::symlink_metadata(&beside).is_ok() {
                return Err(db_err(format!(
                    "{} lies beside it: SQLite would replay it into what is signed, and \
                     nothing reviewed it; remove it if no tripseal or sqlite3 is running on \
                     this file, then review and sign again",
                    crate::escape::escape_path(&beside)
                )));
            }
        }
        let mut header = [0u8; 20];
        let wal = crate::files::open_untrusted(path, MAX_BASELINE_BYTES, false)
            .and_then(|(mut f, _)| io::Read::read_exact(&mut f, &mut header))
            .is_ok_and(|()| header[18] == 2 || header[19] == 2);
        if wal {
            return Err(db_err(
                "it is in WAL mode; make it a plain file first: \
                 sqlite3 FILE 'PRAGMA journal_mode=DELETE'"
                    .into(),
            ));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_NOFOLLOW,
        )
        .and_then(|c| harden(&c).map(|()| c))
        .map_err(|e| db_err(format!("cannot open as SQLite: {e}")))?;
        conn.execute_batch("BEGIN IMMEDIATE").map_err(|e| match e {
            rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::NotADatabase => {
                db_err("not a tripseal baseline (not an SQLite database)".into())
            }
            e => db_err(format!("cannot lock it to sign: {e}")),
        })?;
        Self::validate(conn, path, None, None)
    }

    /// The checks every open makes, in this order: schema, format mark,
    /// header, rules.
    fn validate(
        conn: Connection,
        path: &Path,
        image: Option<FileImage>,
        copy: Option<std::sync::Arc<paged::Copy>>,
    ) -> Result<Baseline, Error> {
        let db_err = |detail: String| Error::Database {
            path: path.to_path_buf(),
            detail: with_copy_state(detail, copy.as_deref()),
        };
        check_schema(&conn).map_err(db_err)?;
        let format: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'format'", [], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| db_err(format!("cannot read: {e}")))?;
        if format.as_deref() != Some(FORMAT_MARK) {
            return Err(db_err(
                "not a tripseal baseline (no tripseal format mark)".into(),
            ));
        }
        let header = read_header(&conn).map_err(db_err)?;
        if header.schema > SCHEMA_VERSION {
            return Err(db_err(format!(
                "made by a newer tripseal (schema {}; this tripseal {} reads up to {}): upgrade tripseal",
                header.schema,
                env!("CARGO_PKG_VERSION"),
                SCHEMA_VERSION
            )));
        }
        if !columns::SCHEMAS.contains(&header.schema) {
            return Err(db_err(format!("invalid schema version {}", header.schema)));
        }
        // The entries table (and from schema 3 the dirs table) must be the
        // one its header's schema has: the queries, and the seal's digest,
        // follow the header.
        let tables = sqlite::schema_made_by(&[columns::create_table(header.schema)]);
        let rows = sqlite::schema_rows(&conn).map_err(|e| db_err(format!("cannot read: {e}")))?;
        if let Some((_, name, _)) = tables.iter().find(|want| !rows.contains(want)) {
            return Err(db_err(format!(
                "not tripseal's schema: its header says schema {}, and its {name} table is \
                 not that schema's (or missing)",
                header.schema
            )));
        }
        let dirs = columns::has_dirs(header.schema);
        if !dirs && rows.iter().any(|(_, n, _)| n == "dirs") {
            return Err(db_err(format!(
                "not tripseal's schema: its header says schema {}, which has no dirs table",
                header.schema
            )));
        }
        // Every text value is UTF-8 as SQLite stores it; in a file
        // re-encoded to UTF-16 the same rows would read otherwise.
        let encoding: String = conn
            .query_row("PRAGMA encoding", [], |r| r.get(0))
            .map_err(|e| db_err(format!("cannot read: {e}")))?;
        if encoding != "UTF-8" {
            return Err(db_err(format!(
                "not a tripseal baseline: its text is {}, tripseal writes UTF-8",
                crate::escape::escape_bytes(encoding.as_bytes())
            )));
        }
        // What a read meets first: a directory is bytes, empty or ending
        // in '/' (see columns::split).
        if dirs {
            let bad: i64 = conn
                .query_row(
                    "SELECT count(*) FROM dirs WHERE typeof(path) != 'blob' \
                     OR (length(path) > 0 AND substr(path, -1) != x'2f')",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| db_err(format!("cannot read: {e}")))?;
            if bad > 0 {
                return Err(db_err(format!(
                    "its dirs table holds {bad} that are no directory (not bytes, or not \
                     ending in '/'): the file was not written by tripseal"
                )));
            }
        }
        let rules = read_rules(&conn).map_err(db_err)?;
        Ok(Baseline {
            conn,
            path: path.to_path_buf(),
            header,
            rules,
            image,
            copy,
            own_scan: false,
        })
    }

    /// The file this baseline was read from, as it was then (`None` for a
    /// file opened in place).
    pub fn image(&self) -> Option<&FileImage> {
        self.image.as_ref()
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The file this baseline was read from now lives at `path` (`update`
    /// renamed it into place); what was read, in memory, is unchanged.
    pub fn renamed(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// The origins `update` recorded (see [`ORIGINS_SCHEMA`]); rows it
    /// could not have written are refused, never guessed at.
    pub fn recorded_origins(
        &self,
    ) -> Result<std::collections::HashMap<PathBuf, crate::origin::Origin>, Error> {
        use crate::origin::{Evidence, Manager, Origin, Package, Verdict};
        let mut out = std::collections::HashMap::new();
        let has: bool = self
            .conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'origins'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| self.db_err(format!("cannot read: {e}")))?;
        if !has {
            return Ok(out);
        }
        let bad = |what: &str| {
            self.db_err(format!(
                "its origins table holds {what}, which tripseal never writes: this generation \
                 was edited after update made it: do not sign it; put the generation before \
                 it (<db>.prev) back in its place and run `tripseal update` again"
            ))
        };
        let mut stmt = self
            .conn
            .prepare("SELECT path, manager, package, version, verdict, evidence, note FROM origins")
            .map_err(|e| self.db_err(format!("cannot read origins: {e}")))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| self.db_err(format!("cannot read origins: {e}")))?;
        while let Some(r) = rows
            .next()
            .map_err(|e| self.db_err(format!("cannot read origins: {e}")))?
        {
            let text = |i| {
                r.get::<_, Option<String>>(i)
                    .map_err(|_| bad("a value that is not text"))
            };
            let path: Vec<u8> = r.get(0).map_err(|_| bad("a path that is not bytes"))?;
            let manager = match text(1)?.as_deref() {
                None => None,
                Some("dpkg") => Some(Manager::Dpkg),
                Some("pip") => Some(Manager::Pip),
                Some(_) => return Err(bad("an unknown package manager")),
            };
            let verdict = text(4)?
                .and_then(|v| Verdict::parse(&v))
                .ok_or_else(|| bad("an unknown verdict"))?;
            let evidence = match text(5)?.map(|e| Evidence::parse(&e)) {
                None => None,
                // Only dpkg's packages have an archive to check against.
                Some(Some(Evidence::VerifiedByArchive)) if manager != Some(Manager::Dpkg) => {
                    return Err(bad("the archive's word on a package not of dpkg"));
                }
                Some(Some(e)) => Some(e),
                Some(None) => return Err(bad("an evidence this tripseal never records")),
            };
            let package = match (manager, text(2)?, text(3)?) {
                (Some(manager), Some(name), Some(version)) => Some(Package {
                    manager,
                    name,
                    version,
                }),
                (None, None, None) => None,
                _ => return Err(bad("a package without its manager, name or version")),
            };
            out.insert(
                PathBuf::from(std::ffi::OsString::from_vec(path)),
                Origin {
                    package,
                    verdict,
                    evidence,
                    note: text(6)?,
                    conffile: false,
                },
            );
        }
        Ok(out)
    }

    /// The read-only connection, for the seal's digest.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn rules(&self) -> &[RuleInfo] {
        &self.rules
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn db_err(&self, detail: String) -> Error {
        Error::Database {
            path: self.path.clone(),
            detail: with_copy_state(detail, self.copy.as_deref()),
        }
    }

    /// Why the private copy this baseline is read through failed its check,
    /// once it has: nothing more can be read from it.
    pub fn copy_altered(&self) -> Option<String> {
        self.copy.as_ref().and_then(|c| c.altered())
    }

    /// The error to stop on once a read of the private copy failed (its
    /// check, or the disk): a query that failed may have been one whose
    /// error was taken for "not recorded".
    pub fn copy_error(&self) -> Option<Error> {
        let copy = self.copy.as_ref()?;
        (copy.altered().is_some() || copy.io_error().is_some())
            .then(|| self.db_err("cannot read it any more".into()))
    }

    /// Entry count, and how many of them carry a problem.
    pub fn counts(&self) -> Result<(u64, u64), Error> {
        let (tables, _) = columns::from(self.header.schema);
        self.conn
            .query_row(
                &format!("SELECT count(*), count(problem) FROM {tables}"),
                [],
                |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
            )
            .map_err(|e| self.db_err(format!("cannot count entries: {e}")))
    }

    /// Calls `f` for every entry at or below `prefix` (a whole-component path
    /// prefix; all entries when `None`), in path byte order. `Entry::rule`
    /// indexes [`Baseline::rules`]. Stops at the first error `f` returns.
    pub fn for_each_entry(
        &self,
        prefix: Option<&Path>,
        mut f: impl FnMut(Entry) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let read_err = |e: rusqlite::Error| self.db_err(format!("cannot read entries: {e}"));
        let mut exact = prefix.map(|p| p.as_os_str().as_bytes().to_vec());
        if let Some(p) = &mut exact {
            while p.len() > 1 && p.ends_with(b"/") {
                p.pop();
            }
        }
        let below = match exact.filter(|p| p != b"/") {
            None => None,
            Some(p) => {
                // "p" itself first: it precedes every path below it.
                if let Some(own) = self.entry(Path::new(std::ffi::OsStr::from_bytes(&p)))? {
                    f(own)?;
                }
                let mut below = p;
                below.push(b'/');
                Some(below)
            }
        };
        let mut stmt;
        let mut cursor = Cursor::in_path_order(if columns::has_dirs(self.header.schema) {
            Source::Tree(path_order::PathOrder::new(self, below.as_deref())?)
        } else {
            let index = self.rule_index();
            Source::Rows(
                match below {
                    None => {
                        stmt = self
                            .conn
                            .prepare(columns::Select::All.sql(self.header.schema))
                            .map_err(read_err)?;
                        stmt.query([])
                    }
                    Some(below) => {
                        // From "p/" up to "p0" ('0' follows '/').
                        let mut end = below.clone();
                        *end.last_mut().expect("ends with '/'") = b'0';
                        stmt = self
                            .conn
                            .prepare(columns::Select::Below.sql(self.header.schema))
                            .map_err(read_err)?;
                        stmt.query(params![below, end])
                    }
                }
                .map_err(read_err)?,
                index,
            )
        });
        while let Some(entry) = self.next_of(&mut cursor)? {
            f(entry)?;
        }
        Ok(())
    }

    /// The next entry of `cursor` (over this baseline).
    /// Each path comes after the one before in the cursor's order: a
    /// damaged file (a b-tree whose keys are out of order, which SQLite
    /// does not check as it reads) is refused, not compared out of step.
    fn next_of(&self, cursor: &mut Cursor<'_, '_>) -> Result<Option<Entry>, Error> {
        let next = match &mut cursor.source {
            Source::Rows(rows, index) => self.next_entry(rows, index)?,
            Source::Tree(order) => order.next()?,
        };
        if let Some(e) = &next {
            let path = e.path.as_os_str().as_bytes();
            if cursor.started && (cursor.order)(&cursor.last, path) != std::cmp::Ordering::Less {
                return Err(self.db_err(format!(
                    "entries out of order ({} after {}): the file is damaged or was not \
                     written by tripseal",
                    crate::escape::escape_bytes(path),
                    crate::escape::escape_bytes(&cursor.last)
                )));
            }
            cursor.started = true;
            cursor.last.clear();
            cursor.last.extend_from_slice(path);
        }
        Ok(next)
    }

    /// The entry recorded for exactly `path`, if any.
    pub fn entry(&self, path: &Path) -> Result<Option<Entry>, Error> {
        let read_err = |e: rusqlite::Error| self.db_err(format!("cannot read entries: {e}"));
        let mut stmt = self
            .conn
            .prepare_cached(columns::Select::One.sql(self.header.schema))
            .map_err(read_err)?;
        let key = columns::key(self.header.schema, path.as_os_str().as_bytes());
        let mut rows = stmt
            .query(rusqlite::params_from_iter(key))
            .map_err(read_err)?;
        self.next_entry(&mut rows, &self.rule_index())
    }

    /// The next row of `rows` (a query of every column on this baseline).
    fn next_entry(
        &self,
        rows: &mut rusqlite::Rows<'_>,
        index: &RuleIndex,
    ) -> Result<Option<Entry>, Error> {
        crate::progress::tick();
        match rows
            .next()
            .map_err(|e| self.db_err(format!("cannot read entries: {e}")))?
        {
            None => Ok(None),
            Some(row) => entry_from_row(row, index, columns::has_dirs(self.header.schema))
                .map(|mut e| {
                    e.trusted &= self.own_scan;
                    Some(e)
                })
                .map_err(|e| self.db_err(format!("malformed entry: {e}"))),
        }
    }

    /// Every entry in path byte order, or with `tree` in the file's own
    /// order; `stmt` holds the statement that reads them in the file's.
    fn cursor<'c: 's, 's>(
        &'c self,
        stmt: &'s mut Option<rusqlite::Statement<'c>>,
        tree: bool,
    ) -> Result<Cursor<'s, 'c>, Error> {
        let read_err = |e: rusqlite::Error| self.db_err(format!("cannot read entries: {e}"));
        if columns::has_dirs(self.header.schema) && !tree {
            let order = path_order::PathOrder::new(self, None)?;
            return Ok(Cursor::in_path_order(Source::Tree(order)));
        }
        let stmt = stmt.insert(
            self.conn
                .prepare(columns::Select::All.sql(self.header.schema))
                .map_err(read_err)?,
        );
        let rows = Source::Rows(stmt.query([]).map_err(read_err)?, self.rule_index());
        Ok(if tree {
            Cursor {
                source: rows,
                order: columns::tree_order,
                last: Vec::new(),
                started: false,
            }
        } else {
            Cursor::in_path_order(rows)
        })
    }

    fn rule_index(&self) -> RuleIndex {
        self.rules
            .iter()
            .enumerate()
            .map(|(i, r)| (r.name.clone(), i))
            .collect()
    }

    /// Walks this baseline and `other` together, calling `f` with the
    /// entry of each side (`None` where a side lacks the path), in path
    /// byte order, or with [`Order::Any`] in whichever order costs least.
    /// Memory stays bounded: both sides are read as they go.
    pub fn merge_with(
        &self,
        other: &Baseline,
        order: Order,
        mut f: impl FnMut(Option<Entry>, Option<Entry>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        // Both files' own order where both keep directories apart: one
        // query a side, rather than one a directory.
        let tree = order == Order::Any
            && columns::has_dirs(self.header.schema)
            && columns::has_dirs(other.header.schema);
        let (mut sa, mut sb) = (None, None);
        let mut ca = self.cursor(&mut sa, tree)?;
        let mut cb = other.cursor(&mut sb, tree)?;
        let cmp = if tree {
            columns::tree_order
        } else {
            <[u8]>::cmp
        };
        let mut next_a = || self.next_of(&mut ca);
        let mut next_b = || other.next_of(&mut cb);
        let (mut a, mut b) = (next_a()?, next_b()?);
        loop {
            let order = match (&a, &b) {
                (None, None) => return Ok(()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(x), Some(y)) => {
                    cmp(x.path.as_os_str().as_bytes(), y.path.as_os_str().as_bytes())
                }
            };
            match order {
                std::cmp::Ordering::Less => {
                    f(a.take(), None)?;
                    a = next_a()?;
                }
                std::cmp::Ordering::Greater => {
                    f(None, b.take())?;
                    b = next_b()?;
                }
                std::cmp::Ordering::Equal => {
                    f(a.take(), b.take())?;
                    a = next_a()?;
                    b = next_b()?;
                }
            }
        }
    }

    /// The baseline size of every entry whose rule checks `growing`: what a
    /// check must hash of each log to verify that it only grew.
    pub fn growing_sizes(&self) -> Result<HashMap<PathBuf, u64>, Error> {
        let read_err = |e: rusqlite::Error| self.db_err(format!("cannot read entries: {e}"));
        let (tables, path) = columns::from(self.header.schema);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {path}, size FROM {tables} WHERE attrs & ?1 != 0 AND size IS NOT NULL"
            ))
            .map_err(read_err)?;
        let growing = AttrSet::from_iter([Attr::Growing]).bits();
        let rows = stmt
            .query_map([growing], |r| {
                Ok((
                    PathBuf::from(std::ffi::OsString::from_vec(r.get::<_, Vec<u8>>(0)?)),
                    r.get::<_, i64>(1)? as u64,
                ))
            })
            .map_err(read_err)?;
        rows.collect::<Result<_, _>>().map_err(read_err)
    }

    /// The stat fields of every entry that was read completely, for `--fast`,
    /// into `index`.
    pub fn stat_index(&self, index: &mut StatIndex) -> Result<(), Error> {
        let read_err = |e: rusqlite::Error| self.db_err(format!("cannot read entries: {e}"));
        let (tables, path) = columns::from(self.header.schema);
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {path}, type, size, mtime_ns, ctime_ns, inode, dev, attrs FROM {tables} \
                 WHERE problem IS NULL AND type IS NOT NULL"
            ))
            .map_err(read_err)?;
        let mut rows = stmt.query([]).map_err(read_err)?;
        while let Some(row) = rows.next().map_err(read_err)? {
            let int = |i: usize| row.get::<_, Option<i64>>(i).map(Option::unwrap_or_default);
            let kind: String = row.get(1).map_err(read_err)?;
            let (Some(kind), Some(attrs)) = (
                FileKind::from_name(&kind),
                u16::try_from(int(7).map_err(read_err)?)
                    .ok()
                    .and_then(AttrSet::from_bits),
            ) else {
                continue; // not trusted: such a row is read again and compared in full
            };
            let meta = Meta {
                kind,
                mode: 0,
                uid: 0,
                gid: 0,
                size: int(2).map_err(read_err)? as u64,
                mtime_ns: int(3).map_err(read_err)?,
                ctime_ns: int(4).map_err(read_err)?,
                inode: int(5).map_err(read_err)? as u64,
                nlink: 0,
                dev: int(6).map_err(read_err)? as u64,
            };
            if !StatIndex::settled(meta.ctime_ns, self.header.created_ns) {
                continue;
            }
            let path = row
                .get_ref(0)
                .map_err(read_err)?
                .as_blob()
                .map_err(|e| self.db_err(format!("malformed entry path: {e}")))?;
            index.insert(path, &meta, attrs);
        }
        Ok(())
    }
}

/// The stat fields of every readable baseline entry, keyed by path, for
/// `check --fast`: 16 bytes an entry, whatever the path length. Both keys are
/// SipHash with a per-process random key, so nobody can craft collisions.
pub struct StatIndex {
    keys: std::collections::hash_map::RandomState,
    stats: HashMap<u64, u64>,
    /// Paths whose key falls below this are read whatever their stat says:
    /// the share `--reread` asks for, drawn afresh by every process (the
    /// keys are random), so nobody can tell which entries the next run reads.
    reread_below: u64,
    /// How many matched but were re-read for the share.
    rereads: std::sync::atomic::AtomicU64,
}

impl StatIndex {
    /// An empty index that re-reads `reread_percent` of the entries.
    pub fn new(reread_percent: f64) -> StatIndex {
        let share = (reread_percent / 100.0).clamp(0.0, 1.0);
        StatIndex {
            keys: std::collections::hash_map::RandomState::new(),
            stats: HashMap::new(),
            reread_below: if share >= 1.0 {
                u64::MAX
            } else {
                (share * u64::MAX as f64) as u64
            },
            rereads: Default::default(),
        }
    }

    /// How many entries whose stat fields matched were re-read anyway.
    pub fn rereads(&self) -> u64 {
        self.rereads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether stat fields seen by a read that began at `read_started_ns`
    /// vouch for the content read: not when the file changed in the second
    /// before. A file rewritten in the clock tick it is read in can show the
    /// very stat fields it was read with (the race git's index knows); such
    /// an entry is read again by the next `--fast`, never trusted.
    pub fn settled(ctime_ns: i64, read_started_ns: i64) -> bool {
        ctime_ns < read_started_ns.saturating_sub(1_000_000_000)
    }

    /// Records what an entry's stat fields were when it was last read.
    pub fn insert(&mut self, path: &[u8], meta: &Meta, attrs: AttrSet) {
        let k = self.path_key(path);
        let v = self.stat_key(meta, attrs);
        self.stats.insert(k, v);
    }

    fn path_key(&self, path: &[u8]) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one(path)
    }

    fn stat_key(&self, m: &Meta, attrs: AttrSet) -> u64 {
        use std::hash::BuildHasher;
        self.keys.hash_one((
            m.kind.name(),
            m.size,
            m.mtime_ns,
            m.ctime_ns,
            m.inode,
            m.dev,
            attrs.bits(),
        ))
    }
}

impl crate::scan::KnownEntries for StatIndex {
    fn unchanged(&self, path: &Path, meta: &Meta, attrs: AttrSet) -> bool {
        let key = self.path_key(path.as_os_str().as_bytes());
        // The share to re-read, keyed apart from the table's key.
        let matched = self.stats.get(&key) == Some(&self.stat_key(meta, attrs));
        let reread = || {
            use std::hash::BuildHasher;
            self.reread_below == u64::MAX
                || self.keys.hash_one((path.as_os_str().as_bytes(), "reread")) < self.reread_below
        };
        if matched && self.reread_below > 0 && reread() {
            self.rereads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return false;
        }
        matched
    }
}

/// Rule name to its index in [`Baseline::rules`].
type RuleIndex = BTreeMap<String, usize>;

/// A baseline's entries as they are read, in `order`.
struct Cursor<'s, 'b> {
    source: Source<'s, 'b>,
    order: fn(&[u8], &[u8]) -> std::cmp::Ordering,
    /// The path read last (once `started`).
    last: Vec<u8>,
    started: bool,
}

impl<'s, 'b> Cursor<'s, 'b> {
    fn in_path_order(source: Source<'s, 'b>) -> Cursor<'s, 'b> {
        Cursor {
            source,
            order: <[u8]>::cmp,
            last: Vec::new(),
            started: false,
        }
    }
}

enum Source<'s, 'b> {
    /// One query, in the file's own order.
    Rows(rusqlite::Rows<'s>, RuleIndex),
    /// Schema 3 in path byte order.
    Tree(path_order::PathOrder<'b>),
}

/// The order two baselines are walked in by [`Baseline::merge_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Path byte order: what reports and events show.
    Path,
    /// Any one order both sides share: for passes whose result does not
    /// depend on it (counts, sets, a new baseline's rows).
    Any,
}

/// One entry from a row read with [`columns::list`]; `dirs`: the file
/// keeps directories apart (the row's path is its directory's).
fn entry_from_row(
    row: &rusqlite::Row<'_>,
    rule_index: &RuleIndex,
    dirs: bool,
) -> Result<Entry, String> {
    let err = |e: rusqlite::Error| e.to_string();
    let get = |c: Column| row.get_ref(c.at()).map_err(err);
    let mut path: Vec<u8> = row.get(Column::Path.at()).map_err(err)?;
    if dirs {
        let name = row
            .get_ref(columns::NAME_AT)
            .map_err(err)?
            .as_blob()
            .map_err(|e| format!("a name that is not stored as bytes ({e})"))?;
        // Only what `columns::split` makes: anything else would read as a
        // path the file's order does not place where it stands.
        let dir_ok = path.is_empty() || path.ends_with(b"/");
        let name_ok = !name.contains(&b'/') && (!name.is_empty() || path == b"/");
        if !(dir_ok && name_ok) {
            return Err(format!(
                "a directory and name that do not make a path ({} and {})",
                crate::escape::escape_bytes(&path),
                crate::escape::escape_bytes(name)
            ));
        }
        path.extend_from_slice(name);
    }
    let rule_name = get(Column::Rule)?.as_str().map_err(|e| e.to_string())?;
    let rule = *rule_index
        .get(rule_name)
        .ok_or_else(|| format!("unknown rule {rule_name:?}"))?;
    let bits: i64 = row.get(Column::Attrs.at()).map_err(err)?;
    let attrs = u16::try_from(bits)
        .ok()
        .and_then(AttrSet::from_bits)
        .ok_or_else(|| format!("unknown attribute bits {bits:#x}"))?;
    let hash32 = |c: Column| -> Result<Option<[u8; 32]>, String> {
        match row.get::<_, Option<Vec<u8>>>(c.at()).map_err(err)? {
            None => Ok(None),
            Some(h) => <[u8; 32]>::try_from(h.as_slice())
                .map(Some)
                .map_err(|_| format!("{}: not a 32-byte hash", c.name())),
        }
    };
    let problem = match row
        .get::<_, Option<String>>(Column::Problem.at())
        .map_err(err)?
    {
        None => None,
        Some(k) => {
            let reason: Option<String> = row.get(Column::Reason.at()).map_err(err)?;
            Some(
                Problem::from_parts(&k, reason.unwrap_or_default())
                    .ok_or_else(|| format!("unknown problem {k:?}"))?,
            )
        }
    };
    Ok(Entry {
        path: PathBuf::from(std::ffi::OsString::from_vec(path)),
        rule,
        attrs,
        meta: meta_from_row(row)?,
        link: row.get(Column::Link.at()).map_err(err)?,
        hash: hash32(Column::Hash)?,
        xattrs: row.get(Column::Xattrs.at()).map_err(err)?,
        owner: row.get(Column::OwnerName.at()).map_err(err)?,
        group: row.get(Column::GroupName.at()).map_err(err)?,
        problem,
        prefix_hash: hash32(Column::PrefixHash)?,
        trusted: row
            .get::<_, Option<i64>>(Column::Trusted.at())
            .map_err(err)?
            == Some(1),
    })
}

/// The stat fields of a row; `None` for an entry that was not there.
fn meta_from_row(row: &rusqlite::Row<'_>) -> Result<Option<Meta>, String> {
    let err = |e: rusqlite::Error| e.to_string();
    let Some(kind) = row
        .get::<_, Option<String>>(Column::Type.at())
        .map_err(err)?
    else {
        return Ok(None);
    };
    let int = |c: Column| -> Result<i64, String> {
        row.get::<_, Option<i64>>(c.at())
            .map_err(err)
            .map(|v| v.unwrap_or(0))
    };
    Ok(Some(Meta {
        kind: FileKind::from_name(&kind).ok_or_else(|| format!("unknown type {kind:?}"))?,
        mode: int(Column::Mode)? as u32,
        uid: int(Column::Uid)? as u32,
        gid: int(Column::Gid)? as u32,
        size: int(Column::Size)? as u64,
        mtime_ns: int(Column::MtimeNs)?,
        ctime_ns: int(Column::CtimeNs)?,
        inode: int(Column::Inode)? as u64,
        nlink: int(Column::Nlink)? as u64,
        dev: int(Column::Dev)? as u64,
    }))
}

fn read_header(conn: &Connection) -> Result<Header, String> {
    let mut stmt = conn
        .prepare("SELECT key, value FROM meta")
        .map_err(|e| e.to_string())?;
    let mut map: BTreeMap<String, rusqlite::types::Value> = BTreeMap::new();
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get(1)?)))
        .map_err(|e| e.to_string())?;
    for row in rows {
        let (k, v) = row.map_err(|e| e.to_string())?;
        map.insert(k, v);
    }
    use rusqlite::types::Value;
    let text = |k: &str| match map.get(k) {
        Some(Value::Text(s)) => Ok(s.clone()),
        _ => Err(format!("header field {k:?} is missing or not text")),
    };
    let int = |k: &str| match map.get(k) {
        Some(Value::Integer(i)) => Ok(*i),
        _ => Err(format!("header field {k:?} is missing or not an integer")),
    };
    let vars: BTreeMap<String, String> = serde_json::from_str(&text("rules_vars")?)
        .map_err(|e| format!("header field \"rules_vars\": {e}"))?;
    let role = match map.get("role") {
        None => None,
        Some(_) => Some(text("role")?),
    };
    Ok(Header {
        schema: int("schema")?,
        // A role baseline names no host.
        host: if role.is_some() && !map.contains_key("host") {
            String::new()
        } else {
            text("host")?
        },
        role,
        created_ns: int("created_ns")?,
        generation: int("generation")?,
        tool_version: text("tool_version")?,
        rules_digest: text("rules_digest")?,
        rules_origin: text("rules_origin")?,
        rules_text: text("rules_text")?,
        rules_vars: vars,
    })
}

fn read_rules(conn: &Connection) -> Result<Vec<RuleInfo>, String> {
    let mut stmt = conn
        .prepare("SELECT name, severity, attrs FROM rules ORDER BY name")
        .map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })
        .map_err(|e| e.to_string())?;
    let mut rules = Vec::new();
    for row in rows {
        let (name, severity, bits) = row.map_err(|e| e.to_string())?;
        let severity = toml::Value::String(severity.clone())
            .try_into::<Severity>()
            .map_err(|_| format!("rule {name:?} has unknown severity {severity:?}"))?;
        let attrs = u16::try_from(bits)
            .ok()
            .and_then(AttrSet::from_bits)
            .ok_or_else(|| format!("rule {name:?} has unknown attribute bits {bits:#x}"))?;
        rules.push(RuleInfo {
            name,
            severity,
            attrs,
        });
    }
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_creation_refuses_a_planted_link() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let planted = dir.path().join("b.db.check.123");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let e = create_exclusive(&planted, 0o600).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let fresh = dir.path().join("fresh");
        create_exclusive(&fresh, 0o600).unwrap();
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
