//! Walking and hashing: what the rules select becomes a stream of [`Entry`].
//!
//! Guarantees:
//! - symlinks are never followed (walk roots included) and walks stay on the
//!   root's file system unless the governing rule sets `cross_filesystems`;
//! - regular files are opened `O_NOFOLLOW | O_NONBLOCK | O_NOATIME` and checked
//!   with `fstat` on the descriptor: FIFOs, sockets and devices are recorded by
//!   metadata only and never read, even when one is swapped in after the walk
//!   listed a regular file;
//! - a file whose size, mtime or ctime moves while it is read is re-read up to
//!   [`READ_ATTEMPTS`] times and then recorded as unstable without a hash: a
//!   hash is always of one consistent state;
//! - a problem with one entry (vanished, unreadable, unstable) is an entry with
//!   its reason, and the scan goes on;
//! - tripseal's own outputs ([`OwnOutputs`]) are never recorded.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::iter::{
    IndexedParallelIterator, IntoParallelIterator, ParallelBridge, ParallelIterator,
};
use walkdir::WalkDir;

use crate::attrs::{Attr, AttrSet};
use crate::content;
use crate::files::Companion;
use crate::rules::Rules;

/// How many times a file that changes while it is read is read again before
/// it is recorded as unstable.
pub const READ_ATTEMPTS: u32 = 3;
/// Walk results taken at a time, and handed to the sink as one batch.
const WALK_CHUNK_ENTRIES: usize = 128;

/// The kind of a file system entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::File => "file",
            FileKind::Dir => "dir",
            FileKind::Symlink => "symlink",
            FileKind::Fifo => "fifo",
            FileKind::Socket => "socket",
            FileKind::CharDevice => "char",
            FileKind::BlockDevice => "block",
        }
    }

    /// Every kind; a kind's place here is its code in the stat cache.
    pub const ALL: [FileKind; 7] = [
        FileKind::File,
        FileKind::Dir,
        FileKind::Symlink,
        FileKind::Fifo,
        FileKind::Socket,
        FileKind::CharDevice,
        FileKind::BlockDevice,
    ];

    pub fn from_name(name: &str) -> Option<FileKind> {
        FileKind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn of(ft: std::fs::FileType) -> FileKind {
        if ft.is_symlink() {
            FileKind::Symlink
        } else if ft.is_dir() {
            FileKind::Dir
        } else if ft.is_fifo() {
            FileKind::Fifo
        } else if ft.is_socket() {
            FileKind::Socket
        } else if ft.is_char_device() {
            FileKind::CharDevice
        } else if ft.is_block_device() {
            FileKind::BlockDevice
        } else {
            FileKind::File
        }
    }
}

/// The `stat` fields tripseal records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    pub kind: FileKind,
    /// Permission bits including setuid, setgid and sticky (`st_mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub nlink: u64,
    pub dev: u64,
}

impl Meta {
    fn from_std(m: &Metadata) -> Meta {
        Meta {
            kind: FileKind::of(m.file_type()),
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
            size: m.size(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
            ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
            inode: m.ino(),
            nlink: m.nlink(),
            dev: m.dev(),
        }
    }

    /// Same file, same content as far as `stat` can tell.
    fn same_state(&self, other: &Meta) -> bool {
        (
            self.inode,
            self.dev,
            self.size,
            self.mtime_ns,
            self.ctime_ns,
        ) == (
            other.inode,
            other.dev,
            other.size,
            other.mtime_ns,
            other.ctime_ns,
        )
    }
}

/// Why an entry could not be captured completely.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// Listed by the walk, gone when it was opened or stat'ed.
    Vanished(String),
    /// Could not be stat'ed, opened, read or listed.
    Unreadable(String),
    /// Kept changing while it was read.
    Unstable(String),
}

impl Problem {
    pub fn kind(&self) -> &'static str {
        match self {
            Problem::Vanished(_) => "vanished",
            Problem::Unreadable(_) => "unreadable",
            Problem::Unstable(_) => "unstable",
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            Problem::Vanished(r) | Problem::Unreadable(r) | Problem::Unstable(r) => r,
        }
    }

    pub fn from_parts(kind: &str, reason: String) -> Option<Problem> {
        match kind {
            "vanished" => Some(Problem::Vanished(reason)),
            "unreadable" => Some(Problem::Unreadable(reason)),
            "unstable" => Some(Problem::Unstable(reason)),
            _ => None,
        }
    }
}

/// One captured file system entry, with what its rule asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: PathBuf,
    /// Index of the governing rule in [`Rules::rules`].
    pub rule: usize,
    pub attrs: AttrSet,
    pub meta: Option<Meta>,
    /// Symlink target, when the rule checks `link`.
    pub link: Option<Vec<u8>>,
    /// BLAKE3 of the content, when the rule checks `hash` or `growing`.
    pub hash: Option<[u8; 32]>,
    /// Canonical encoding of all extended attributes, when the rule checks `xattrs`.
    pub xattrs: Option<Vec<u8>>,
    /// The owner's and the group's names, when the rule checks `owner` and
    /// `group` (`None` too for an id that no account has).
    pub owner: Option<String>,
    pub group: Option<String>,
    pub problem: Option<Problem>,
    /// For a `growing` entry scanned by a check: the hash of its first
    /// baseline-size bytes (see [`ScanHints::growing_sizes`]).
    pub prefix_hash: Option<[u8; 32]>,
    /// `check --fast` only: the stat fields matched the baseline, so the
    /// content attributes (hash, link, xattrs) were not read; the comparison
    /// takes them from the baseline.
    pub trusted: bool,
}

/// What a baseline knows of a path's stat fields (`check --fast`).
pub trait KnownEntries: Sync {
    /// Whether the baseline has `path` with these exact kind, size, mtime,
    /// ctime, inode and dev, captured completely under the same attributes.
    fn unchanged(&self, path: &Path, meta: &Meta, attrs: AttrSet) -> bool;
}

/// What a scan may know from the baseline it will be compared with.
#[derive(Default)]
pub struct ScanHints<'a> {
    /// Baseline size of each `growing` entry: its prefix of that length is
    /// hashed into [`Entry::prefix_hash`].
    pub growing_sizes: HashMap<PathBuf, u64>,
    /// With `--fast`: entries whose (dev, inode, size, mtime, ctime) match
    /// the baseline are not read (see [`Entry::trusted`]).
    pub known: Option<&'a dyn KnownEntries>,
    /// `--root DIR --as PREFIX`: the tree is read at DIR and recorded as
    /// if it were at PREFIX.
    pub relocate: Option<Relocation>,
}

/// A tree read where it is (`root`) and recorded where it will be installed
/// (`prefix`): what is at `root/x` is the entry `prefix/x`. Rules select,
/// and entries are named by, the installed paths.
#[derive(Clone, Debug)]
pub struct Relocation {
    pub root: PathBuf,
    pub prefix: PathBuf,
}

impl Relocation {
    /// Where the tree holds what will be installed at `installed`, if it is
    /// below the prefix.
    fn real(&self, installed: &Path) -> Option<PathBuf> {
        let rest = installed.strip_prefix(&self.prefix).ok()?;
        Some(if rest.as_os_str().is_empty() {
            self.root.clone()
        } else {
            self.root.join(rest)
        })
    }

    /// The installed path of `real`, a path in the tree.
    fn installed(&self, real: &Path) -> PathBuf {
        match real.strip_prefix(&self.root) {
            Ok(rest) if rest.as_os_str().is_empty() => self.prefix.clone(),
            Ok(rest) => self.prefix.join(rest),
            Err(_) => real.to_path_buf(),
        }
    }

    /// The walks of `rules` in the tree: a root below the prefix is walked
    /// where the tree has it, a root above it from the tree's top. A root
    /// reached through a symlink inside the tree is not walked: the link
    /// leads out of the tree (to the build host's own files, say), and the
    /// link itself is recorded by the walk of the rule that selects it.
    pub fn roots(&self, rules: &Rules) -> RelocatedRoots {
        let mut out = RelocatedRoots::default();
        for r in rules.walk_roots() {
            let real = match self.real(&r.path) {
                Some(real) => real,
                None if self.prefix.starts_with(&r.path) => self.root.clone(),
                None => continue, // see `outside`
            };
            let mut dir = real.parent();
            let mut linked = None;
            while let Some(d) = dir.filter(|d| d.starts_with(&self.root) && *d != self.root) {
                if std::fs::symlink_metadata(d).is_ok_and(|m| m.file_type().is_symlink()) {
                    linked = Some(d.to_path_buf());
                }
                dir = d.parent();
            }
            match linked {
                Some(link) => out.through_links.push(self.installed(&link)),
                None => out.walks.push(crate::rules::WalkRoot {
                    path: real,
                    cross_filesystems: r.cross_filesystems,
                }),
            }
        }
        for p in &rules.patterns {
            if p.root.starts_with(&self.prefix) {
                continue;
            }
            if self.prefix.starts_with(&p.root) {
                out.above.push(p.glob.clone());
            } else {
                out.outside.push(p.glob.clone());
            }
        }
        out
    }
}

/// Where a relocated scan walks, and what of the rules it cannot reach.
#[derive(Debug, Default)]
pub struct RelocatedRoots {
    /// The walks, in the tree.
    pub walks: Vec<crate::rules::WalkRoot>,
    /// Patterns whose paths lie outside the prefix: not in the tree.
    pub outside: Vec<String>,
    /// Patterns that also reach above the prefix: only what is below it is.
    pub above: Vec<String>,
    /// Installed paths of symlinks in the tree that a walk root lies
    /// beyond: not walked.
    pub through_links: Vec<PathBuf>,
}

/// tripseal's own files: in each of a few directories (identified by device
/// and inode, whatever path leads there), the baseline and exactly its
/// companions ([`Companion`]), and single files added by name (a snapshot
/// in the temporary directory). Nothing else is skipped: a file merely named
/// like the baseline is scanned like any other.
#[derive(Clone, Debug, Default)]
pub struct OwnOutputs {
    places: Vec<OwnPlace>,
}

#[derive(Clone, Debug)]
struct OwnPlace {
    dir: (u64, u64),
    name: OsString,
    /// The baseline's companions too, or only this one name.
    companions: bool,
}

impl OwnOutputs {
    /// The baseline at `db` (which need not exist yet) and its companions.
    pub fn for_baseline(db: &Path) -> OwnOutputs {
        let mut own = OwnOutputs::default();
        own.push(db, true);
        own
    }

    /// Also skips exactly `file`.
    pub fn add(&mut self, file: &Path) {
        self.push(file, false);
    }

    fn push(&mut self, file: &Path, companions: bool) {
        let dir = crate::files::parent_dir(file);
        let (Ok(meta), Some(name)) = (std::fs::metadata(dir), file.file_name()) else {
            return;
        };
        self.places.push(OwnPlace {
            dir: (meta.dev(), meta.ino()),
            name: name.to_os_string(),
            companions,
        });
    }

    fn named_like(place: &OwnPlace, name: &[u8]) -> bool {
        if place.companions {
            Companion::of(place.name.as_bytes(), name).is_some()
        } else {
            place.name.as_bytes() == name
        }
    }

    /// What is at `path` (named like one of ours) is really ours: every
    /// companion is a regular file, and one named with a process id belongs
    /// to a live tripseal. A directory or a FIFO so named, or a file of a
    /// process that is not tripseal, is scanned like anything else. Gone,
    /// it is nothing to report either way.
    fn really_ours(&self, path: &Path, name: &[u8]) -> bool {
        let meta = match std::fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(_) => return true,
        };
        if !meta.is_file() {
            return false;
        }
        // Named with a pid: ours only while that process is a live tripseal.
        let owner = self.places.iter().find_map(|p| {
            p.companions
                .then(|| Companion::owner_pid(p.name.as_bytes(), name))
                .flatten()
        });
        owner.is_none_or(crate::files::is_tripseal_process)
    }

    pub fn contains(&self, path: &Path) -> bool {
        let Some(name) = path.file_name() else {
            return false;
        };
        let name = name.as_bytes();
        if !self.places.iter().any(|p| Self::named_like(p, name)) {
            return false;
        }
        // Only names that look like ours pay for this stat.
        let parent = path.parent().unwrap_or(Path::new("/"));
        let Ok(meta) = std::fs::metadata(parent) else {
            return false;
        };
        let dir = (meta.dev(), meta.ino());
        self.places
            .iter()
            .any(|p| p.dir == dir && Self::named_like(p, name))
            && self.really_ours(path, name)
    }
}

/// Something the walk found that a rule selects (or that could not be walked).
struct Probe {
    /// The path rules select and the entry is named by.
    path: PathBuf,
    /// Where it is read, when that is elsewhere (`--root`).
    real: Option<PathBuf>,
    rule: usize,
    /// The type the directory listing gave; `None` when the walk only knows
    /// that it could not list this path.
    hint: Option<FileKind>,
    root_dev: Option<u64>,
    walk_error: Option<Problem>,
}

/// Walks everything `rules` select and sends the captured entries to `sink`
/// in batches, hashing on rayon's threads. Returns when the walk is complete,
/// or early once `sink` returns false.
pub fn scan(
    rules: &Rules,
    own: &OwnOutputs,
    hints: &ScanHints<'_>,
    sink: impl Fn(Vec<Entry>) -> bool + Sync + Send,
) {
    let roots = match &hints.relocate {
        Some(r) => r.roots(rules).walks,
        None => rules.walk_roots(),
    };
    let roots = roots.into_iter().map(|r| (r, None)).collect();
    scan_roots(rules, own, hints, roots, sink);
}

/// Scans below `dir` only, exactly as a full scan would see that part of
/// the tree (the daemon, for a directory that appeared).
pub fn scan_under(
    rules: &Rules,
    own: &OwnOutputs,
    hints: &ScanHints<'_>,
    dir: &Path,
    sink: impl Fn(Vec<Entry>) -> bool + Sync + Send,
) {
    let Some(top) = rules
        .walk_roots()
        .into_iter()
        .find(|r| dir.starts_with(&r.path))
    else {
        return;
    };
    let root_dev = std::fs::symlink_metadata(&top.path).ok().map(|m| m.dev());
    let root = crate::rules::WalkRoot {
        path: dir.to_path_buf(),
        cross_filesystems: top.cross_filesystems,
    };
    scan_roots(rules, own, hints, vec![(root, root_dev)], sink);
}

/// Captures one path as a full scan would, or `None` when the rules do not
/// select it (or it is tripseal's own) or it does not exist.
pub fn capture_one(
    rules: &Rules,
    own: &OwnOutputs,
    hints: &ScanHints<'_>,
    path: &Path,
) -> Option<Entry> {
    let sel = rules.select(path)?;
    if own.contains(path) {
        return None;
    }
    let top = rules
        .walk_roots()
        .into_iter()
        .find(|r| path.starts_with(&r.path))?;
    // Only what a walk would reach: every directory on the way is descended.
    let mut dir = path.parent();
    while let Some(d) = dir.filter(|d| d.starts_with(&top.path)) {
        if rules.descend_pattern(d).is_none() || own.contains(d) {
            return None;
        }
        dir = d.parent();
    }
    let meta = std::fs::symlink_metadata(path).ok()?;
    let root_dev = std::fs::symlink_metadata(&top.path).ok().map(|m| m.dev());
    if !top.cross_filesystems
        && meta.is_dir()
        && root_dev.is_some_and(|d| d != meta.dev())
        && path != top.path
    {
        return None; // a mount point the walk does not enter
    }
    capture(
        rules,
        hints,
        Probe {
            path: path.to_path_buf(),
            real: None,
            rule: sel.rule,
            hint: Some(FileKind::of(meta.file_type())),
            root_dev,
            walk_error: None,
        },
    )
}

/// The directories a full scan descends into below `start` (the walk roots
/// when `None`): the ones to watch for changes.
pub fn walk_dirs(rules: &Rules, own: &OwnOutputs, start: Option<&Path>) -> Vec<PathBuf> {
    let roots = rules.walk_roots();
    let mut out = Vec::new();
    for root in &roots {
        let from = match start {
            None => root.path.clone(),
            Some(s) if s.starts_with(&root.path) => s.to_path_buf(),
            Some(_) => continue,
        };
        let walk = WalkDir::new(&from)
            .follow_links(false)
            .follow_root_links(false)
            .same_file_system(!root.cross_filesystems)
            .into_iter()
            .filter_entry(|e| {
                e.file_type().is_dir()
                    && !own.contains(e.path())
                    && rules.descend_pattern(e.path()).is_some()
            });
        out.extend(walk.flatten().map(walkdir::DirEntry::into_path));
    }
    out
}

fn scan_roots(
    rules: &Rules,
    own: &OwnOutputs,
    hints: &ScanHints<'_>,
    roots: Vec<(crate::rules::WalkRoot, Option<u64>)>,
    sink: impl Fn(Vec<Entry>) -> bool + Sync + Send,
) {
    crate::accounts::forget();
    let stopped = AtomicBool::new(false);
    let send = |batch: Vec<Entry>| {
        if !stopped.load(Ordering::Relaxed) && !sink(batch) {
            stopped.store(true, Ordering::Relaxed);
        }
    };
    let mut walk = Walk {
        rules,
        own,
        relocate: hints.relocate.as_ref(),
        roots: roots.into_iter(),
        current: None,
        held: None,
        ready: None,
    };
    // Workers take the walk's output in chunks, one lock per chunk rather
    // than per file; inside a chunk every entry is a task of its own, so an
    // idle worker steals from a chunk that holds a few very large files.
    let chunks = std::iter::from_fn(|| {
        if stopped.load(Ordering::Relaxed) {
            return None;
        }
        let chunk: Vec<Probe> = walk.by_ref().take(WALK_CHUNK_ENTRIES).collect();
        (!chunk.is_empty()).then_some(chunk)
    });
    chunks.par_bridge().for_each(|chunk| {
        let entries: Vec<Entry> = chunk
            .into_par_iter()
            .with_max_len(1)
            .filter_map(|probe| capture(rules, hints, probe))
            .collect();
        if !entries.is_empty() {
            send(entries);
        }
    });
}

struct Walk<'a> {
    rules: &'a Rules,
    own: &'a OwnOutputs,
    relocate: Option<&'a Relocation>,
    /// Where to walk, with the device of the rule's own walk root when the
    /// walk starts below it (else the start's device is the root's).
    roots: std::vec::IntoIter<(crate::rules::WalkRoot, Option<u64>)>,
    current: Option<(walkdir::IntoIter, Option<u64>)>,
    /// A selected directory, held back one step: when listing it fails,
    /// walkdir's very next item is that error, and it belongs in this entry.
    held: Option<Probe>,
    /// An item read while deciding about `held`, to be yielded next.
    ready: Option<Probe>,
}

impl Iterator for Walk<'_> {
    type Item = Probe;

    fn next(&mut self) -> Option<Probe> {
        if let Some(ready) = self.ready.take() {
            return Some(ready);
        }
        loop {
            let Some(probe) = self.next_unmerged() else {
                return self.held.take();
            };
            let is_dir = probe.hint == Some(FileKind::Dir);
            match self.held.take() {
                Some(mut held) if probe.hint.is_none() && probe.path == held.path => {
                    held.walk_error = probe.walk_error;
                    return Some(held);
                }
                Some(held) => {
                    if is_dir {
                        self.held = Some(probe);
                    } else {
                        self.ready = Some(probe);
                    }
                    return Some(held);
                }
                None if is_dir => self.held = Some(probe),
                None => return Some(probe),
            }
        }
    }
}

impl Walk<'_> {
    fn next_unmerged(&mut self) -> Option<Probe> {
        loop {
            let Some((it, root_dev)) = &mut self.current else {
                let (root, dev) = self.roots.next()?;
                let it = WalkDir::new(&root.path)
                    .follow_links(false)
                    .follow_root_links(false)
                    .same_file_system(!root.cross_filesystems)
                    .into_iter();
                self.current = Some((it, dev));
                continue;
            };
            let item = match it.next() {
                None => {
                    self.current = None;
                    continue;
                }
                Some(item) => item,
            };
            match item {
                Ok(de) => {
                    if de.depth() == 0 && root_dev.is_none() {
                        *root_dev = de.metadata().ok().map(|m| m.dev());
                    }
                    let is_dir = de.file_type().is_dir();
                    if self.own.contains(de.path()) {
                        if is_dir {
                            it.skip_current_dir();
                        }
                        continue;
                    }
                    let installed = self.relocate.map(|r| r.installed(de.path()));
                    let path = installed.as_deref().unwrap_or(de.path());
                    if is_dir && self.rules.descend_pattern(path).is_none() {
                        it.skip_current_dir();
                    }
                    if let Some(sel) = self.rules.select(path) {
                        let hint = Some(FileKind::of(de.file_type()));
                        let (path, real) = match installed {
                            Some(installed) => (installed, Some(de.into_path())),
                            None => (de.into_path(), None),
                        };
                        return Some(Probe {
                            hint,
                            path,
                            real,
                            rule: sel.rule,
                            root_dev: *root_dev,
                            walk_error: None,
                        });
                    }
                }
                Err(e) => {
                    if let Some(probe) = unlisted(self.rules, self.relocate, &e, *root_dev) {
                        return Some(probe);
                    }
                }
            }
        }
    }
}

/// A directory the walk could not list: it hides what is below it, so it is
/// a problem entry of the rule that governs it or would descend into it.
/// `None` for a root that does not exist on this host, or a path no rule
/// reaches.
fn unlisted(
    rules: &Rules,
    relocate: Option<&Relocation>,
    e: &walkdir::Error,
    root_dev: Option<u64>,
) -> Option<Probe> {
    let real = e.path()?;
    let path = relocate.map_or_else(|| real.to_path_buf(), |r| r.installed(real));
    let io = e.io_error().map(|e| e.kind());
    if e.depth() == 0 && io == Some(io::ErrorKind::NotFound) {
        return None;
    }
    let rule = match rules.select(&path) {
        Some(sel) => sel.rule,
        None => rules.patterns[rules.descend_pattern(&path)?].rule,
    };
    let reason = format!(
        "cannot list directory: {}",
        e.io_error().map_or_else(|| e.to_string(), io_reason)
    );
    Some(Probe {
        real: relocate.map(|_| real.to_path_buf()),
        path,
        rule,
        hint: None,
        root_dev,
        walk_error: Some(if io == Some(io::ErrorKind::NotFound) {
            Problem::Vanished(reason)
        } else {
            Problem::Unreadable(reason)
        }),
    })
}

fn capture(rules: &Rules, hints: &ScanHints<'_>, probe: Probe) -> Option<Entry> {
    let Probe {
        path,
        real,
        rule,
        hint,
        root_dev,
        walk_error,
    } = probe;
    let mut entry = Entry {
        path: PathBuf::new(), // set once the reading is done
        rule,
        attrs: rules.rules[rule].attrs,
        meta: None,
        link: None,
        hash: None,
        xattrs: None,
        owner: None,
        group: None,
        problem: None,
        prefix_hash: None,
        trusted: false,
    };
    // Where it is read: the entry's own path but under --root, borrowed, not
    // copied (this runs once for every file of every scan).
    let read_at = real.as_deref().unwrap_or(&path);
    let walk = (hint, root_dev, walk_error);
    let keep = capture_into(rules, hints, &mut entry, &path, read_at, walk);
    entry.path = path;
    keep.then_some(entry)
}

/// Fills `entry`, named `path` and read at `read_at`, from what the walk
/// said of it (`hint`, the device of its walk's root, a listing error).
/// False when it is not this rule's after all.
fn capture_into(
    rules: &Rules,
    hints: &ScanHints<'_>,
    entry: &mut Entry,
    path: &Path,
    read_at: &Path,
    (hint, root_dev, walk_error): (Option<FileKind>, Option<u64>, Option<Problem>),
) -> bool {
    let Some(hint) = hint else {
        entry.problem = walk_error;
        return true;
    };
    if walk_error.is_none()
        && let Some(known) = hints.known
        && reuse_unchanged(entry, path, read_at, known)
    {
        return true;
    }
    let prefix_len = hints.growing_sizes.get(path).copied();
    let file = capture_stat_and_content(entry, read_at, hint, prefix_len);
    if walk_error.is_some() {
        // Not being able to list a directory outweighs how its stat went.
        entry.problem = walk_error;
    }
    let Some(meta) = entry.meta else {
        return true; // stat failed: the entry carries its problem
    };
    if !rules.rules[entry.rule].cross_filesystems
        && meta.kind != FileKind::Dir
        && root_dev.is_some_and(|d| d != meta.dev)
    {
        // Reached through a walk that crosses for another rule; not this one's.
        return false;
    }
    name_accounts(entry);
    if entry.attrs.contains(Attr::Link) && meta.kind == FileKind::Symlink {
        match std::fs::read_link(read_at) {
            Ok(target) => entry.link = Some(target.into_os_string().into_encoded_bytes()),
            Err(e) => set_problem(entry, &e, "cannot read link"),
        }
    }
    if entry.attrs.contains(Attr::Xattrs) && entry.problem.is_none() {
        match read_xattrs(read_at, file.as_ref()) {
            Ok(x) => entry.xattrs = Some(x),
            Err(e) => set_problem(entry, &e, "cannot read extended attributes"),
        }
    }
    true
}

/// The owner's and group's names, where the rule compares them. A lookup
/// that fails makes the entry a problem: a name that could not be learnt is
/// not "no name", which would read as a change of owner.
fn name_accounts(entry: &mut Entry) {
    use crate::accounts::{group_name, user_name};
    let Some(meta) = entry.meta else { return };
    type Lookup = fn(u32) -> io::Result<Option<String>>;
    let lookups: [(Attr, &str, u32, Lookup); 2] = [
        (Attr::Owner, "user", meta.uid, user_name),
        (Attr::Group, "group", meta.gid, group_name),
    ];
    for (attr, what, id, lookup) in lookups {
        if !entry.attrs.contains(attr) {
            continue;
        }
        match lookup(id) {
            Ok(name) if attr == Attr::Owner => entry.owner = name,
            Ok(name) => entry.group = name,
            Err(e) => set_problem(
                entry,
                &e,
                &format!("cannot look up the name of {what} {id}"),
            ),
        }
    }
}

fn set_problem(entry: &mut Entry, e: &io::Error, what: &str) {
    let reason = format!("{what}: {}", io_reason(e));
    entry.problem = Some(if e.kind() == io::ErrorKind::NotFound {
        Problem::Vanished(reason)
    } else {
        Problem::Unreadable(reason)
    });
}

/// Fills `meta` and, for regular files whose rule needs it, `hash`; returns
/// the open file so that extended attributes come from the same inode.
/// `check --fast`: when lstat shows the same (dev, inode, size, mtime,
/// ctime) as the baseline, the attributes that need reading (content, link
/// target, xattrs) are not read. Changing any of them moves ctime.
fn reuse_unchanged(
    entry: &mut Entry,
    path: &Path,
    read_at: &Path,
    known: &dyn KnownEntries,
) -> bool {
    let Ok(now) = std::fs::symlink_metadata(read_at).map(|m| Meta::from_std(&m)) else {
        return false;
    };
    if !known.unchanged(path, &now, entry.attrs) {
        return false;
    }
    entry.meta = Some(now);
    entry.trusted = true;
    name_accounts(entry);
    true
}

fn capture_stat_and_content(
    entry: &mut Entry,
    read_at: &Path,
    hint: FileKind,
    prefix_len: Option<u64>,
) -> Option<File> {
    // Only what was listed as a regular file is opened; if something else was
    // swapped in since, O_NOFOLLOW and O_NONBLOCK keep the open harmless and
    // fstat shows what it is.
    if entry.attrs.needs_content() && hint == FileKind::File {
        match open_no_follow(read_at) {
            Ok(file) => match file.metadata() {
                Ok(m) => {
                    let meta = Meta::from_std(&m);
                    entry.meta = Some(meta);
                    if meta.kind == FileKind::File {
                        let how = content::Reading {
                            prefix_len,
                            ..content::Reading::of(&m)
                        };
                        hash_stable(entry, &file, meta, how);
                    }
                    return Some(file);
                }
                Err(e) => {
                    set_problem(entry, &e, "cannot stat");
                    return None;
                }
            },
            // ELOOP: it is a symlink (now); ENXIO: a socket. Both are recorded
            // from lstat below. Permission problems still get metadata.
            Err(e)
                if e.raw_os_error() == Some(libc::ELOOP)
                    || e.raw_os_error() == Some(libc::ENXIO) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                set_problem(entry, &e, "vanished before it was read");
                return None;
            }
            Err(e) => set_problem(entry, &e, "cannot open"),
        }
    }
    match std::fs::symlink_metadata(read_at) {
        Ok(m) => entry.meta = Some(Meta::from_std(&m)),
        Err(e) => set_problem(entry, &e, "cannot stat"),
    }
    None
}

/// Opens without following a final symlink, without blocking on a FIFO and,
/// where permitted, without touching the access time.
fn open_no_follow(path: &Path) -> io::Result<File> {
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK;
    match OpenOptions::new()
        .read(true)
        .custom_flags(flags | libc::O_NOATIME)
        .open(path)
    {
        // O_NOATIME is refused for files the caller does not own (unless root).
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            OpenOptions::new().read(true).custom_flags(flags).open(path)
        }
        other => other,
    }
}

/// Hashes `file` and records the hash only if the file held still. A
/// `growing` entry may be appended to meanwhile: exactly the size seen first
/// is hashed, and growth is not instability (shrinking or an in-place write
/// at the same size is).
fn hash_stable(entry: &mut Entry, file: &File, mut before: Meta, how: content::Reading) {
    let growing = entry.attrs.contains(Attr::Growing);
    for _ in 0..READ_ATTEMPTS {
        let read = content::hash(
            file,
            content::Reading {
                size: before.size,
                limit: growing.then_some(before.size),
                ..how
            },
        );
        let hashed = match read {
            Ok(r) => r,
            Err(e) => {
                set_problem(entry, &e, "cannot read");
                return;
            }
        };
        let mut after = match file.metadata() {
            Ok(m) => Meta::from_std(&m),
            Err(e) => {
                set_problem(entry, &e, "cannot stat");
                return;
            }
        };
        let stable = if growing {
            let same_file = (after.inode, after.dev) == (before.inode, before.dev);
            let grew = after.size > before.size;
            same_file && hashed.bytes == before.size && (grew || before.same_state(&after))
        } else {
            before.same_state(&after) && hashed.bytes == after.size
        };
        if growing {
            // What was hashed, not what the file has grown to since.
            after.size = hashed.bytes;
        }
        entry.meta = Some(after);
        if stable {
            entry.hash = Some(hashed.hash);
            entry.prefix_hash = hashed.prefix;
            return;
        }
        before = after;
    }
    entry.problem = Some(Problem::Unstable(format!(
        "changed while it was read, {READ_ATTEMPTS} times"
    )));
}

/// All extended attributes, sorted by name, each name and value prefixed by
/// its length (u32 LE): one byte string that compares equal iff the sets do.
fn read_xattrs(path: &Path, file: Option<&File>) -> io::Result<Vec<u8>> {
    use xattr::FileExt;
    let unsupported = |e: &io::Error| e.raw_os_error() == Some(libc::ENOTSUP);
    let names: Vec<OsString> = match file {
        Some(f) => f.list_xattr().map(Iterator::collect),
        None => xattr::list(path).map(Iterator::collect),
    }
    .or_else(|e| {
        if unsupported(&e) {
            Ok(Vec::new())
        } else {
            Err(e)
        }
    })?;
    let mut pairs = Vec::with_capacity(names.len());
    for name in names {
        let value = match file {
            Some(f) => f.get_xattr(&name),
            None => xattr::get(path, &name),
        }?;
        // An attribute removed between list and get is simply not there.
        if let Some(value) = value {
            pairs.push((name.into_encoded_bytes(), value));
        }
    }
    pairs.sort();
    Ok(encode_xattrs(&pairs))
}

pub fn encode_xattrs(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in pairs {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Inverse of [`encode_xattrs`]; `None` if the bytes are not such an encoding.
pub fn decode_xattrs(mut bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let take = |bytes: &mut &[u8]| -> Option<Vec<u8>> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (item, rest) = (rest.get(..len)?, rest.get(len..)?);
        *bytes = rest;
        Some(item.to_vec())
    };
    let mut pairs = Vec::new();
    while !bytes.is_empty() {
        let name = take(&mut bytes)?;
        let value = take(&mut bytes)?;
        pairs.push((name, value));
    }
    Some(pairs)
}

/// The OS error text without Rust's "(os error N)" suffix noise kept short.
fn io_reason(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = io::Error::from_raw_os_error(code).to_string();
            text.split(" (os error").next().unwrap_or(&text).to_string()
        }
        None => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Rules, RulesSource};
    use std::collections::BTreeMap;

    fn rules_for(dir: &Path, check: &str) -> Rules {
        Rules::load(
            RulesSource {
                name: "t".into(),
                text: format!(
                    "[[rule]]\nname = \"r\"\npaths = [\"{}/**\"]\ncheck = {check}\n",
                    dir.display()
                ),
            },
            &BTreeMap::new(),
        )
        .unwrap()
    }

    #[test]
    fn a_path_gone_after_the_walk_is_a_vanished_entry() {
        let dir = tempfile::tempdir().unwrap();
        // Both ways of capturing: open-and-hash, and lstat only.
        for check in ["[\"hash\", \"mode\"]", "[\"mode\"]"] {
            let rules = rules_for(dir.path(), check);
            let probe = Probe {
                path: dir.path().join("gone"),
                real: None,
                rule: 0,
                hint: Some(FileKind::File),
                root_dev: None,
                walk_error: None,
            };
            let e = capture(&rules, &ScanHints::default(), probe)
                .expect("the vanished entry is recorded");
            assert!(matches!(e.problem, Some(Problem::Vanished(_))), "{e:?}");
            assert_eq!(e.meta, None);
        }
    }

    #[test]
    fn xattr_encoding_round_trips() {
        let pairs = vec![
            (
                b"security.selinux".to_vec(),
                b"system_u:object_r:etc_t:s0\0".to_vec(),
            ),
            (b"user.x".to_vec(), vec![]),
        ];
        assert_eq!(decode_xattrs(&encode_xattrs(&pairs)), Some(pairs));
        assert_eq!(decode_xattrs(&[1, 0, 0]), None);
        assert_eq!(decode_xattrs(&[9, 0, 0, 0, b'a']), None);
    }

    #[test]
    fn hash_matches_blake3_of_content() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &content).unwrap();
        let rules = rules_for(dir.path(), "[\"hash\"]");
        let e = capture(
            &rules,
            &ScanHints::default(),
            Probe {
                path: p,
                real: None,
                rule: 0,
                hint: Some(FileKind::File),
                root_dev: None,
                walk_error: None,
            },
        )
        .unwrap();
        assert_eq!(e.hash, Some(*blake3::hash(&content).as_bytes()));
        assert_eq!(e.meta.unwrap().size, content.len() as u64);
    }
}
