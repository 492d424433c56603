//! Files tripseal opens but did not make, and the names of a baseline's
//! companions.
//!
//! Guarantees:
//! - [`read_untrusted`] never blocks on what it opens: a FIFO, a socket or a
//!   device is refused before it is opened, and again by `fstat` after the
//!   (non-blocking) open, so one swapped in between is refused too; it reads
//!   at most a stated number of bytes;
//! - [`create_exclusive`] never writes through a name that already exists (a
//!   planted symlink included);
//! - [`Companion`] is the one list of the files that belong to a baseline:
//!   scans skip exactly those, and nothing else named like the baseline.

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The most a configuration, rules, key or state file may hold: far beyond
/// any real one, small enough that a planted giant cannot exhaust memory.
pub const MAX_SMALL_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// What kind of thing is at a path, in words, for messages.
pub fn kind_name(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

/// The metadata of an opened file, which must be a regular file: what a
/// path named may have been swapped for a FIFO or a device meanwhile.
pub fn ensure_regular(file: &File) -> io::Result<Metadata> {
    let meta = file.metadata()?;
    if meta.is_file() {
        Ok(meta)
    } else {
        Err(not_regular(&meta))
    }
}

fn not_regular(meta: &Metadata) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "it is {}, not a regular file; tripseal opens only regular files here: remove \
             what was put there, or name the right file",
            kind_name(meta)
        ),
    )
}

/// Opens `path` for reading without ever blocking on it or reading a device:
/// what is there must be a regular file of at most `max_bytes`. A symlink is
/// followed (to a regular file) unless `follow` is false.
pub fn open_untrusted(path: &Path, max_bytes: u64, follow: bool) -> io::Result<(File, Metadata)> {
    let before = if follow {
        std::fs::metadata(path)?
    } else {
        std::fs::symlink_metadata(path)?
    };
    if !before.is_file() {
        return Err(not_regular(&before));
    }
    let mut flags = libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    let meta = ensure_regular(&file)?;
    if meta.len() > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "it holds {} bytes, more than the {max_bytes} tripseal reads of such a file",
                meta.len()
            ),
        ));
    }
    Ok((file, meta))
}

/// The whole of a small untrusted file ([`open_untrusted`], following links).
pub fn read_untrusted(path: &Path, max_bytes: u64) -> io::Result<Vec<u8>> {
    let (file, meta) = open_untrusted(path, max_bytes, true)?;
    read_bounded(file, &meta, max_bytes)
}

/// The whole of a small untrusted file, never through a symlink
/// ([`open_untrusted`]), with what fstat said of it.
pub fn read_no_follow(path: &Path, max_bytes: u64) -> io::Result<(Vec<u8>, Metadata)> {
    let (file, meta) = open_untrusted(path, max_bytes, false)?;
    let bytes = read_bounded(file, &meta, max_bytes)?;
    Ok((bytes, meta))
}

/// All of an opened file, at most `max_bytes` of it.
fn read_bounded(file: File, meta: &Metadata, max_bytes: u64) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One more byte than allowed: a file that grew since fstat is refused.
    file.take(max_bytes + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max_bytes {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("it grew past the {max_bytes} bytes tripseal reads of such a file"),
        ));
    }
    Ok(bytes)
}

/// sshd's StrictModes for a file or directory tripseal takes its
/// configuration or its trust from: neither group- nor other-writable, and
/// owned by root or by the user running tripseal. The message names the
/// file and the command that fixes it.
pub fn strict_mode(path: &Path, meta: &Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let shown = crate::escape::escape_path(path);
    let mode = meta.mode() & 0o7777;
    // A shared directory such as /tmp is not to be chmod'ed: what is in it
    // belongs somewhere else.
    if meta.is_dir() && mode & 0o1002 == 0o1002 {
        return Err(format!(
            "{shown} is a shared directory every user can write (mode {mode:04o}), so nothing \
             in it can be trusted; move the file into a directory only root or this user can \
             write, such as /etc/tripseal/trusted.d"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "{shown} is writable by {} (mode {mode:04o}), so its word cannot be trusted; \
             run `chmod go-w {shown}`",
            if mode & 0o002 != 0 {
                "every user"
            } else {
                "its group"
            }
        ));
    }
    // SAFETY: geteuid cannot fail and touches no memory (std has no safe
    // call for the effective user).
    let me = unsafe { libc::geteuid() };
    if meta.uid() != 0 && meta.uid() != me {
        return Err(format!(
            "{shown} is owned by user {}, neither root nor this user ({me}), so its word \
             cannot be trusted; run `chown root {shown}` (or chown it to the user that runs \
             tripseal)",
            meta.uid()
        ));
    }
    Ok(())
}

/// [`read_untrusted`] of a file tripseal takes its configuration or its
/// trust from, refused under [`strict_mode`] (checked on the opened file).
pub fn read_strict(path: &Path, max_bytes: u64) -> Result<Vec<u8>, crate::error::Error> {
    read_strict_checked(path, max_bytes, |_| Ok(()))
}

/// [`read_strict`], with `check` of the opened file's metadata first (a
/// file that may hold secrets: not readable by others).
pub fn read_strict_checked(
    path: &Path,
    max_bytes: u64,
    check: impl FnOnce(&Metadata) -> Result<(), crate::error::Error>,
) -> Result<Vec<u8>, crate::error::Error> {
    let io_err = |source| crate::error::Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let (file, meta) = open_untrusted(path, max_bytes, true).map_err(io_err)?;
    check(&meta)?;
    strict_mode(path, &meta).map_err(|detail| crate::error::Error::Unsafe { detail })?;
    read_bounded(file, &meta, max_bytes).map_err(io_err)
}

/// Creates `path` as a new file with `mode`: fails if anything, a symlink
/// included, already has that name, so nothing planted is written through.
pub fn create_exclusive(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Writes `bytes` to `path`, replacing what a regular file there held; never
/// through a symlink, never into a FIFO or a device (an output the user
/// named, such as `digest --message FILE`).
pub fn write_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)?;
    ensure_regular(&f)?;
    f.set_len(0)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// `path` with `suffix` appended to its file name: the names of a baseline's
/// companions, and `.pub` of a key.
pub fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_os_string();
    name.push(suffix);
    PathBuf::from(name)
}

/// The directory `path` is in (`.` for a bare name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The files that belong to a baseline `<db>`, by the suffix of their name.
/// Scans skip exactly these; a file merely named like the baseline is
/// scanned like any other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Companion {
    /// `<db>` itself.
    Baseline,
    /// `<db>.lock`: one writer at a time.
    Lock,
    /// `<db>.outbox` and SQLite's rollback journal of it.
    Outbox,
    OutboxJournal,
    /// `<db>.accepted`: the highest generation accepted, and its temporary
    /// `<db>.accepted.tmp.<pid>`.
    Accepted,
    AcceptedTmp,
    /// `<db>.prev`: the generation an `update` replaced, and its temporary.
    Prev,
    PrevTmp,
    /// `<db>-journal`: SQLite's journal while `sign` adds a signature.
    Journal,
    /// `<db>.tmp.<pid>`: a baseline being written.
    Writing,
    /// `<db>.check.<pid>`: a check's scan snapshot.
    Snapshot,
    /// `<db>.stat`: a role baseline's host-local stat cache, and its
    /// temporary `<db>.stat.tmp.<pid>`.
    StatCache,
    StatCacheTmp,
}

impl Companion {
    const FIXED: [(Companion, &'static str); 9] = [
        (Companion::Baseline, ""),
        (Companion::Lock, ".lock"),
        (Companion::Outbox, ".outbox"),
        (Companion::OutboxJournal, ".outbox-journal"),
        (Companion::Accepted, ".accepted"),
        (Companion::Prev, ".prev"),
        (Companion::PrevTmp, ".prev.tmp"),
        (Companion::Journal, "-journal"),
        (Companion::StatCache, ".stat"),
    ];
    /// Followed by the id of the process that writes them.
    const PID_NAMED: [(Companion, &'static str); 4] = [
        (Companion::Writing, ".tmp."),
        (Companion::Snapshot, ".check."),
        (Companion::AcceptedTmp, ".accepted.tmp."),
        (Companion::StatCacheTmp, ".stat.tmp."),
    ];

    /// Which companion of a baseline named `db_name` the file `name` is.
    pub fn of(db_name: &[u8], name: &[u8]) -> Option<Companion> {
        let suffix = name.strip_prefix(db_name)?;
        if let Some((c, _)) = Self::FIXED.iter().find(|(_, s)| s.as_bytes() == suffix) {
            return Some(*c);
        }
        Self::PID_NAMED
            .iter()
            .find(|(_, infix)| suffix.strip_prefix(infix.as_bytes()).is_some_and(is_pid))
            .map(|(c, _)| *c)
    }

    /// Where this companion (one without a process id) of the baseline at
    /// `db` is.
    pub fn beside(self, db: &Path) -> PathBuf {
        let (_, suffix) = Self::FIXED
            .iter()
            .find(|(c, _)| *c == self)
            .expect("a companion named without a process id");
        sibling(db, suffix)
    }

    /// The process id in `name`, for a companion named with one.
    pub fn owner_pid<'a>(db_name: &[u8], name: &'a [u8]) -> Option<&'a [u8]> {
        let suffix = name.strip_prefix(db_name)?;
        Self::PID_NAMED.iter().find_map(|(_, infix)| {
            suffix
                .strip_prefix(infix.as_bytes())
                .filter(|pid| is_pid(pid))
        })
    }

    /// The name of this companion of `db` written by process `pid`.
    pub fn with_pid(self, db: &Path, pid: u32) -> PathBuf {
        let infix = Self::PID_NAMED
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("", |(_, i)| i);
        sibling(db, &format!("{infix}{pid}"))
    }
}

/// Whether `pid` (decimal) is a live process of the same program as this
/// one (by `/proc/PID/comm`): the owner a temporary or snapshot name claims.
pub fn is_tripseal_process(pid: &[u8]) -> bool {
    if !is_pid(pid) {
        return false;
    }
    let Ok(pid) = std::str::from_utf8(pid) else {
        return false;
    };
    static OURS: std::sync::OnceLock<Option<Vec<u8>>> = std::sync::OnceLock::new();
    let comm = |p: &str| std::fs::read(format!("/proc/{p}/comm")).ok();
    match (comm(pid), OURS.get_or_init(|| comm("self"))) {
        (Some(theirs), Some(ours)) => theirs == *ours,
        _ => false,
    }
}

/// Removes the companions of kind `kind` beside `db` (named with a pid)
/// whose process is gone: what a killed tripseal left. Only regular files,
/// and only exact companion names; a file merely named like one, or one of
/// a live process, stays (and is scanned like anything else).
pub fn remove_dead(db: &Path, kind: Companion) {
    let db_name = name_bytes(db);
    let Ok(dir) = std::fs::read_dir(parent_dir(db)) else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let name = name.as_bytes();
        if Companion::of(db_name, name) != Some(kind) {
            continue;
        }
        let gone = Companion::owner_pid(db_name, name)
            .and_then(|pid| std::str::from_utf8(pid).ok()?.parse::<libc::pid_t>().ok())
            .is_some_and(process_gone);
        if gone && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn process_gone(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only asks whether the process exists; no memory is
    // involved (std can signal only its own children).
    let rc = unsafe { libc::kill(pid, 0) };
    rc != 0 && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
}

fn is_pid(s: &[u8]) -> bool {
    (1..=10).contains(&s.len()) && s.iter().all(u8::is_ascii_digit) && s[0] != b'0'
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    // By table, not `write!` per byte: twice per hash of every drift record
    // and event, where formatting was 3 % of delivering them.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// The file name of `path` as bytes (empty for `/` or `..`).
pub fn name_bytes(path: &Path) -> &[u8] {
    path.file_name().map_or(&[][..], |n| n.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff, 0x10]), "000fa5ff10");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn exactly_the_companions() {
        let c = |n: &str| Companion::of(b"b.db", n.as_bytes());
        assert_eq!(c("b.db"), Some(Companion::Baseline));
        assert_eq!(c("b.db.outbox-journal"), Some(Companion::OutboxJournal));
        assert_eq!(c("b.db.check.4242"), Some(Companion::Snapshot));
        assert_eq!(c("b.db.tmp.7"), Some(Companion::Writing));
        assert_eq!(c("b.db.accepted.tmp.7"), Some(Companion::AcceptedTmp));
        assert_eq!(
            Companion::owner_pid(b"b.db", b"b.db.accepted.tmp.7"),
            Some(&b"7"[..])
        );
        assert_eq!(Companion::owner_pid(b"b.db", b"b.db.lock"), None);
        assert_eq!(
            Companion::Snapshot.with_pid(Path::new("/x/b.db"), 42),
            Path::new("/x/b.db.check.42")
        );
        for other in [
            "b.dbx",
            "b.db.evil",
            "b.db.check.",
            "b.db.check.12a",
            "b.db.check.0",
            "b.db.tmp.1/x",
            "b.db.lock2",
            "b.db.accepted.tmp",
            "a.db",
            "b.d",
        ] {
            assert_eq!(c(other), None, "{other}");
        }
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_bytes()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_untrusted(&fifo, 10).unwrap_err();
        assert!(e.to_string().contains("a FIFO"), "{e}");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; 11]).unwrap();
        assert!(read_untrusted(&big, 10).is_err());
        assert_eq!(read_untrusted(&big, 11).unwrap().len(), 11);
    }
}
