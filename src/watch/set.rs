//! The directories the daemon watches: every directory a scan descends
//! into, the baseline's own directory, and for each walk root that does not
//! exist yet its nearest existing ancestor, where it would appear.

use std::collections::{BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use notify::{INotifyWatcher, RecursiveMode, Watcher};

use crate::escape::escape_path;
use crate::rules::Rules;
use crate::scan::{self, OwnOutputs};

/// What tells the daemon of changes.
pub enum Kernel {
    /// A watch per directory.
    Inotify(INotifyWatcher),
    /// A mark per file system, filtered by the directories in the set.
    Fanotify(super::fanotify::Fanotify),
}

impl Kernel {
    /// The name events and `systemctl status` give it.
    pub fn name(&self) -> &'static str {
        match self {
            Kernel::Inotify(_) => "inotify",
            Kernel::Fanotify(_) => "fanotify",
        }
    }
}

pub struct WatchSet {
    kernel: Kernel,
    /// Ordered, so that a directory's watched descendants are one range.
    watched: BTreeSet<PathBuf>,
}

impl WatchSet {
    pub fn new(kernel: Kernel) -> WatchSet {
        WatchSet {
            kernel,
            watched: BTreeSet::new(),
        }
    }

    pub fn backend(&self) -> &'static str {
        self.kernel.name()
    }

    pub fn len(&self) -> usize {
        self.watched.len()
    }

    pub fn contains(&self, dir: &Path) -> bool {
        self.watched.contains(dir)
    }

    /// Watches each of `dirs` not watched yet; returns what went wrong, to
    /// be reported as `fim-watch-overflow` (past the kernel's limit, the
    /// rest are not tried: rescans cover them).
    pub fn add(&mut self, dirs: Vec<PathBuf>) -> Vec<String> {
        let mut problems = Vec::new();
        for dir in dirs {
            if self.watched.contains(&dir) {
                continue;
            }
            let watcher = match &mut self.kernel {
                Kernel::Inotify(w) => w,
                Kernel::Fanotify(f) => {
                    match f.watch(&dir) {
                        Ok(()) => {
                            self.watched.insert(dir);
                        }
                        Err(Some(e)) => problems.push(e),
                        Err(None) => {}
                    }
                    continue;
                }
            };
            match watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir);
                }
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    problems.push(watch_limit_reason());
                    break;
                }
                // Gone since it was listed: its removal is an event of its own.
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
                Err(e) => problems.push(format!("cannot watch {}: {e}", escape_path(&dir))),
            }
        }
        problems
    }

    /// Stops watching `p` and everything below it (removed, or moved away).
    pub fn forget_under(&mut self, p: &Path) {
        // Paths order by component, so `p` and all below it are contiguous.
        let gone: Vec<PathBuf> = self
            .watched
            .range(p.to_path_buf()..)
            .take_while(|w| w.starts_with(p))
            .cloned()
            .collect();
        self.unwatch(gone);
    }

    /// Stops watching what is not in `keep` (the targets of new rules).
    pub fn retain(&mut self, keep: &[PathBuf]) {
        let keep: HashSet<&PathBuf> = keep.iter().collect();
        let stale: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|w| !keep.contains(w))
            .cloned()
            .collect();
        self.unwatch(stale);
    }

    fn unwatch(&mut self, dirs: Vec<PathBuf>) {
        for w in dirs {
            match &mut self.kernel {
                Kernel::Inotify(i) => {
                    let _ = i.unwatch(&w);
                }
                Kernel::Fanotify(f) => f.unwatch(&w),
            }
            self.watched.remove(&w);
        }
    }
}

/// Every directory to watch for `rules` with the baseline at `db`.
pub fn targets(rules: &Rules, own: &OwnOutputs, db: &Path) -> Vec<PathBuf> {
    let mut dirs = scan::walk_dirs(rules, own, None);
    // Where the baseline is: a change to it is reported too.
    dirs.push(crate::files::parent_dir(db).to_path_buf());
    for root in rules.walk_roots() {
        if is_dir(&root.path) {
            continue;
        }
        if let Some(a) = root.path.ancestors().skip(1).find(|a| is_dir(a)) {
            dirs.push(a.to_path_buf());
        }
    }
    dirs
}

fn is_dir(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
}

/// Which limit stopped a watch, and how to raise it.
pub fn watch_limit_reason() -> String {
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "the per-user inotify watch limit is reached (fs.inotify.max_user_watches = {limit}); \
         directories past it are not watched, only rescanned: raise it, e.g. \
         sysctl fs.inotify.max_user_watches=524288"
    )
}
