//! `tripseal watch`: the daemon. inotify watches on every directory a scan
//! descends into, a targeted re-read of what changed, and full rescans as
//! the backstop (at start, on the `--rescan` period, and whenever the
//! kernel may have dropped notifications).
//!
//! What it promises: a change to a selected path is reported (as the drift
//! from the baseline, once per distinct state, and `fim-file-restored` when
//! the path is back to its baseline state); notifications the kernel
//! dropped, or watches it refused, are reported as `fim-watch-overflow` and
//! followed by a full rescan; heartbeats say the monitor is alive.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};
use notify::{INotifyWatcher, RecursiveMode, Watcher};

use crate::baseline::{Baseline, RuleInfo};
use crate::check;
use crate::compare::{Drift, drift_of};
use crate::error::Error;
use crate::events::outbox::GuardedOutbox;
use crate::events::sinks::{self, Sink};
use crate::events::{BaselineRef, Event, EventFactory, SinkSpec};
use crate::progress::NoProgress;
use crate::rules::Rules;
use crate::scan::{self, Entry, OwnOutputs, ScanHints};
use crate::seal::{self, SealFailure, SealPolicy};
use crate::shapes::drift_json;

/// How long a path must be quiet before it is re-read: bursts of writes to
/// one file become one re-read.
const SETTLE: Duration = Duration::from_millis(30);
/// The longest a busy path waits to be re-read anyway.
const SETTLE_MAX: Duration = Duration::from_millis(500);
/// Not a loss of notifications: the rescan after a reload.
const RELOADED: &str = "reloaded";
/// How long the file at `--db` may differ from what was verified before
/// that is reported: an operator who installs a signed generation and
/// reloads at once is not reported.
const BASELINE_GRACE: Duration = Duration::from_secs(2);
/// The `reason` of `fim-baseline-tampered` for a baseline file that changed
/// while the daemon runs.
const CHANGED_UNDER_DAEMON: &str = "changed-under-daemon";
/// The longest wait between tries of a sink that refused.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

pub struct WatchOptions {
    pub db: PathBuf,
    pub policy: SealPolicy,
    pub rescan: Duration,
    pub heartbeat: Duration,
    pub sinks: Vec<SinkSpec>,
    pub host: String,
    /// `fim-baseline-expiring` when the seal expires within this.
    pub expiry_warning: Duration,
}

enum Msg {
    Fs(notify::Result<notify::Event>),
    Signal(i32),
}

struct Daemon {
    opts: WatchOptions,
    /// The generation verified at start or at the last accepted SIGHUP, in
    /// memory: every re-read and rescan compares with it, whatever the file
    /// at `--db` holds meanwhile.
    baseline: Rc<Baseline>,
    digest: Option<[u8; 32]>,
    /// When the verified generation's seal expires (`None`: never).
    expires_ns: Option<i64>,
    /// The directory `--db` is in (device, inode), to know its notifications.
    db_dir: Option<(u64, u64)>,
    /// The file at `--db` may no longer hold what was verified: since when.
    baseline_suspect: Option<Instant>,
    /// What was last reported of the file at `--db`, while it differs.
    baseline_problem: Option<String>,
    /// Why `<db>.accepted` could not be written, when it could not.
    record_unwritable: Option<String>,
    rules: Rules,
    factory: EventFactory,
    own: OwnOutputs,
    /// What a scan needs from the baseline (growing files' sizes); kept,
    /// not rebuilt for every re-read.
    hints: ScanHints<'static>,
    watcher: INotifyWatcher,
    /// Ordered, so that a directory's watched descendants are one range.
    watched: BTreeSet<PathBuf>,
    /// For each path that drifted: the drift last reported.
    reported: HashMap<PathBuf, String>,
    /// Checked before every use; survives being removed or replaced.
    outbox: GuardedOutbox,
    sinks: Vec<(SinkSpec, Box<dyn Sink>)>,
    retry_at: Option<Instant>,
    backoff: Duration,
    pending: BTreeSet<PathBuf>,
    first_pending: Option<Instant>,
    last_change: Instant,
    /// Set when notifications may have been lost: a full rescan is due.
    rescan_due: Option<String>,
}

/// A baseline the daemon took: verified (unless the seal is skipped), with
/// its digest, its rules and the event factory that names it.
struct Loaded {
    opened: seal::Opened,
    rules: Rules,
    factory: EventFactory,
}

/// The baseline at `opts.db`, read once into memory and its seal verified;
/// never a generation below `floor` (the one the daemon holds).
fn load(opts: &WatchOptions, floor: Option<i64>) -> Result<Loaded, Error> {
    let policy = SealPolicy {
        min_generation: floor,
        ..opts.policy.clone()
    };
    let opened = seal::open_sealed(&opts.db, &policy, true, crate::units::now_ns())?;
    let rules = check::stored_rules(&opened.baseline)?;
    let factory = EventFactory::new(
        &opts.host,
        Some(BaselineRef::of(&opened.baseline, opened.digest)?),
    );
    Ok(Loaded {
        opened,
        rules,
        factory,
    })
}

/// Runs the daemon until SIGTERM or SIGINT. Refuses to start on a baseline
/// whose seal does not verify.
pub fn watch(opts: WatchOptions) -> Result<(), Error> {
    let mut outbox = GuardedOutbox::open(&opts.db);
    let loaded = match load(&opts, None) {
        Ok(l) => l,
        Err(e) => {
            if let Some(ev) = crate::events::tampered_event(&opts.host, &opts.db, &e) {
                outbox.add(&[ev], &crate::events::keys(&opts.sinks));
                for spec in &opts.sinks {
                    if let Ok(mut sink) = sinks::open(&spec.url) {
                        outbox.deliver(&spec.key, sink.as_mut());
                    }
                }
            }
            return Err(e);
        }
    };
    let (tx, rx) = mpsc::channel::<Msg>();
    let fs_tx = tx.clone();
    let watcher = INotifyWatcher::new(
        move |ev| {
            let _ = fs_tx.send(Msg::Fs(ev));
        },
        notify::Config::default(),
    )
    .map_err(|e| {
        Error::invalid(format!(
            "cannot start inotify: {e}; if the per-user instance limit is reached \
             (fs.inotify.max_user_instances), raise it, e.g. \
             sysctl fs.inotify.max_user_instances=512"
        ))
    })?;
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ])
    .map_err(|e| Error::invalid(format!("cannot handle signals: {e}")))?;
    std::thread::spawn(move || {
        for s in signals.forever() {
            if tx.send(Msg::Signal(s)).is_err() {
                break;
            }
        }
    });
    let mut own = OwnOutputs::for_baseline(&opts.db);
    own.add(outbox.path());
    let sinks = opts
        .sinks
        .iter()
        .map(|s| Ok((s.clone(), sinks::open(&s.url)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    let db_dir = std::fs::metadata(crate::files::parent_dir(&opts.db))
        .ok()
        .map(|m| (m.dev(), m.ino()));
    let mut d = Daemon {
        hints: ScanHints {
            growing_sizes: loaded.opened.baseline.growing_sizes()?,
            known: None,
        },
        baseline: Rc::new(loaded.opened.baseline),
        digest: loaded.opened.digest,
        expires_ns: loaded.opened.expires_ns,
        db_dir,
        baseline_suspect: None,
        baseline_problem: None,
        record_unwritable: None,
        rules: loaded.rules,
        factory: loaded.factory,
        own,
        watcher,
        watched: BTreeSet::new(),
        reported: HashMap::new(),
        outbox,
        sinks,
        retry_at: None,
        backoff: Duration::from_secs(1),
        pending: BTreeSet::new(),
        first_pending: None,
        last_change: Instant::now(),
        rescan_due: None,
        opts,
    };
    d.run(&rx)
}

impl Daemon {
    fn run(&mut self, rx: &mpsc::Receiver<Msg>) -> Result<(), Error> {
        let dirs = self.watch_targets();
        let mut problems = Vec::new();
        self.add_watches(dirs, &mut problems);
        eprintln!(
            "tripseal watch: watching {} directories for {}",
            self.watched.len(),
            crate::escape::escape_path(&self.opts.db)
        );
        let online = self.liveness("fim-online");
        self.emit(vec![online])?;
        for p in problems {
            let ev = self.factory.overflow(&p);
            self.emit(vec![ev])?;
        }
        // Whatever changed before the watches were in place.
        self.full_rescan("rescan")?;
        let mut next_heartbeat = Instant::now() + self.opts.heartbeat;
        let mut next_rescan = Instant::now() + self.opts.rescan;
        loop {
            let mut wake = next_heartbeat.min(next_rescan);
            if let Some(first) = self.first_pending {
                wake = wake.min((self.last_change + SETTLE).min(first + SETTLE_MAX));
            }
            if let Some(t) = self.retry_at {
                wake = wake.min(t);
            }
            if let Some(t) = self.baseline_suspect {
                wake = wake.min(t + BASELINE_GRACE);
            }
            let msg = rx.recv_timeout(wake.saturating_duration_since(Instant::now()));
            match msg {
                Ok(Msg::Fs(ev)) => self.note(ev),
                Ok(Msg::Signal(s)) if s == signal_hook::consts::SIGHUP => self.reload()?,
                Ok(Msg::Signal(_)) => {
                    self.settle()?;
                    let offline = self.liveness("fim-offline");
                    self.emit(vec![offline])?;
                    // One last try, whatever the backoff said.
                    if self.retry_at.is_some() {
                        self.deliver()?;
                    }
                    eprintln!("tripseal watch: stopped");
                    return Ok(());
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::invalid(
                        "the inotify watcher thread stopped; nothing is watched any more, \
                         so tripseal watch stops: restart it (systemd does, Restart=on-failure)",
                    ));
                }
            }
            let now = Instant::now();
            if let Some(reason) = self.rescan_due.take() {
                if reason != RELOADED {
                    let ev = self.factory.overflow(&reason);
                    self.emit(vec![ev])?;
                }
                self.pending.clear();
                self.first_pending = None;
                let dirs = self.watch_targets();
                let mut problems = Vec::new();
                self.add_watches(dirs, &mut problems);
                for p in problems {
                    let ev = self.factory.overflow(&p);
                    self.emit(vec![ev])?;
                }
                let kind = if reason == RELOADED {
                    "rescan"
                } else {
                    "watch-rescan"
                };
                self.full_rescan(kind)?;
                next_rescan = now + self.opts.rescan;
            }
            if let Some(first) = self.first_pending
                && (now >= self.last_change + SETTLE || now >= first + SETTLE_MAX)
            {
                self.settle()?;
            }
            if self
                .baseline_suspect
                .is_some_and(|t| now >= t + BASELINE_GRACE)
            {
                self.check_baseline_file(false)?;
            }
            if now >= next_heartbeat {
                let hb = self.liveness("fim-heartbeat");
                self.emit(vec![hb])?;
                next_heartbeat = now + self.opts.heartbeat;
            }
            if now >= next_rescan {
                self.full_rescan("rescan")?;
                next_rescan = Instant::now() + self.opts.rescan;
            }
            if self.retry_at.is_some_and(|t| now >= t) {
                self.deliver()?;
            }
        }
    }

    /// SIGHUP: the baseline again (a newly signed generation, its rules).
    /// One whose seal fails is refused, said with `fim-baseline-tampered`,
    /// and the daemon goes on with the one it had verified.
    fn reload(&mut self) -> Result<(), Error> {
        // With a verified seal, never back below the generation held: the
        // rollback record beside the file may have been deleted.
        let floor = self
            .digest
            .is_some()
            .then(|| self.baseline.header().generation);
        match load(&self.opts, floor) {
            Ok(loaded) => {
                eprintln!(
                    "tripseal watch: SIGHUP: baseline generation {} loaded",
                    loaded.opened.baseline.header().generation
                );
                self.hints.growing_sizes = loaded.opened.baseline.growing_sizes()?;
                self.baseline = Rc::new(loaded.opened.baseline);
                self.digest = loaded.opened.digest;
                self.expires_ns = loaded.opened.expires_ns;
                self.rules = loaded.rules;
                self.factory = loaded.factory;
                // The file now holds what was verified.
                self.baseline_suspect = None;
                self.baseline_problem = None;
                // Drift is now measured against the new generation.
                self.reported.clear();
                let keep: HashSet<PathBuf> = self.watch_targets().into_iter().collect();
                let stale: Vec<PathBuf> = self
                    .watched
                    .iter()
                    .filter(|w| !keep.contains(*w))
                    .cloned()
                    .collect();
                for w in stale {
                    let _ = self.watcher.unwatch(&w);
                    self.watched.remove(&w);
                }
                self.rescan_due = Some(RELOADED.into());
            }
            Err(e) => {
                eprintln!(
                    "tripseal watch: SIGHUP: the baseline was refused, watching on with \
                     generation {}: {}",
                    self.baseline.header().generation,
                    crate::escape::sanitize_line(&e.to_string())
                );
                if let Some(ev) = crate::events::tampered_event(&self.opts.host, &self.opts.db, &e)
                {
                    self.emit(vec![ev])?;
                }
            }
        }
        Ok(())
    }

    /// Whether a notification concerns the file at `--db` itself, or the
    /// record of the generation accepted for it.
    fn is_baseline_path(&self, p: &Path) -> bool {
        let db_name = crate::files::name_bytes(&self.opts.db);
        if !matches!(
            crate::files::Companion::of(db_name, crate::files::name_bytes(p)),
            Some(crate::files::Companion::Baseline | crate::files::Companion::Accepted)
        ) {
            return false;
        }
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        std::fs::metadata(dir.unwrap_or(Path::new(".")))
            .is_ok_and(|m| Some((m.dev(), m.ino())) == self.db_dir)
    }

    /// Compares the file at `--db` with what was verified, and reports a
    /// difference as `fim-baseline-tampered` (`changed-under-daemon`): a
    /// new one always, the same one again only when `again`.
    fn check_baseline_file(&mut self, again: bool) -> Result<(), Error> {
        self.baseline_suspect = None;
        let Some(image) = self.baseline.image() else {
            return Ok(());
        };
        // Both, each said: the file, and the record beside it.
        let problems: Vec<String> = [image.still_at(&self.opts.db), self.check_accepted_record()]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        let state = if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        };
        match state {
            Ok(()) => self.baseline_problem = None,
            Err(what) => {
                if !again && self.baseline_problem.as_ref() == Some(&what) {
                    return Ok(());
                }
                let generation = self.baseline.header().generation;
                eprintln!(
                    "tripseal watch: warning: the baseline {} changed under the daemon ({what}); \
                     still comparing with generation {generation}, as verified",
                    crate::escape::escape_path(&self.opts.db)
                );
                let detail = format!(
                    "the baseline file changed while the daemon runs ({what}); drift is still \
                     measured against generation {generation}, as verified at start or at the \
                     last reload; to take a new generation, sign it and send SIGHUP \
                     (systemctl reload tripseal-watch)"
                );
                let ev = self.tampered(CHANGED_UNDER_DAEMON, &detail);
                self.baseline_problem = Some(what);
                self.emit(vec![ev])?;
            }
        }
        Ok(())
    }

    /// `fim-baseline-tampered` about the baseline at `--db`.
    fn tampered(&self, reason: &str, detail: &str) -> Event {
        self.factory
            .tampered(self.opts.db.as_os_str().as_encoded_bytes(), reason, detail)
    }

    /// `fim-baseline-expiring` when the seal expires soon; once it has
    /// expired, `fim-baseline-tampered` (`expired`): the daemon watches on
    /// (stopping would blind the host) but says at every rescan that nothing
    /// vouches for its baseline any more.
    fn check_expiry(&mut self) -> Result<(), Error> {
        let Some(t) = self.expires_ns else {
            return Ok(());
        };
        let now = crate::units::now_ns();
        let ev = if t <= now {
            let detail = format!(
                "generation {} was signed to be trusted until {}, and that has passed; the \
                 daemon goes on comparing with it: sign the next generation and reload",
                self.baseline.header().generation,
                crate::units::iso8601(t)
            );
            self.tampered(SealFailure::Expired.name(), &detail)
        } else if let Some(t) = seal::expiring_within(Some(t), now, self.opts.expiry_warning) {
            self.factory
                .expiring(self.opts.db.as_os_str().as_encoded_bytes(), t, now)
        } else {
            return Ok(());
        };
        self.emit(vec![ev])
    }

    /// The rollback record must still vouch for the generation held: one
    /// deleted, garbled or set back is said, and written again from what
    /// the daemon verified, so that the next `check` still refuses a
    /// rollback.
    fn check_accepted_record(&mut self) -> Result<(), String> {
        let Some(digest) = self.digest else {
            return Ok(()); // the seal was skipped: no record is kept
        };
        let generation = self.baseline.header().generation;
        let state = seal::accepted_state_path(&self.opts.db);
        let found = seal::read_accepted(&state);
        let what = match &found {
            Ok(Some(g)) if *g >= generation => return Ok(()),
            Ok(Some(g)) => format!("its rollback record says generation {g}, below {generation}"),
            Ok(None) => "its rollback record was deleted".to_string(),
            Err(e) => format!("its rollback record {e}"),
        };
        match seal::record_accepted(&self.opts.db, generation, &digest) {
            Ok(()) => {
                self.record_unwritable = None;
                Err(format!("{what}; written again for generation {generation}"))
            }
            Err(e) => {
                let e = e.to_string();
                // Where it could never be written (read-only media), a
                // missing record is said once, not at every rescan.
                let again = self.record_unwritable.as_deref() == Some(e.as_str());
                self.record_unwritable = Some(e.clone());
                if again && matches!(found, Ok(None)) {
                    return Ok(());
                }
                Err(format!("{what}; it cannot be written again ({e})"))
            }
        }
    }

    fn liveness(&self, kind: &str) -> Event {
        let waiting = self.outbox.len();
        self.factory.liveness(
            kind,
            self.opts.heartbeat.as_secs_f64(),
            self.watched.len(),
            self.pending.len() as u64 + waiting,
        )
    }

    /// Takes one notification in: which paths to re-read, which directories
    /// to adopt, or a rescan when notifications were lost.
    fn note(&mut self, ev: notify::Result<notify::Event>) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                let reason = match e.kind {
                    notify::ErrorKind::MaxFilesWatch => watch_limit_reason(),
                    _ => format!("the watcher reported an error: {e}"),
                };
                self.rescan_due = Some(reason);
                return;
            }
        };
        if ev.need_rescan() {
            self.rescan_due = Some(
                "the kernel's inotify queue overflowed (fs.inotify.max_queued_events); \
                 notifications were dropped"
                    .into(),
            );
            return;
        }
        match ev.kind {
            // Reads, tripseal's own included, change nothing.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return,
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                for p in &ev.paths {
                    self.forget_watches_under(p);
                }
            }
            EventKind::Remove(_) => {
                for p in &ev.paths {
                    self.forget_watches_under(p);
                }
            }
            _ => {}
        }
        // Only marked here; what each path is now is read once it settles.
        for p in ev.paths {
            if self.is_baseline_path(&p) {
                self.baseline_suspect.get_or_insert_with(Instant::now);
            } else if !self.own.contains(&p) {
                self.pending.insert(p);
            }
        }
        let now = Instant::now();
        self.last_change = now;
        self.first_pending.get_or_insert(now);
    }

    fn forget_watches_under(&mut self, p: &Path) {
        // Paths order by component, so `p` and all below it are contiguous.
        let gone: Vec<PathBuf> = self
            .watched
            .range(p.to_path_buf()..)
            .take_while(|w| w.starts_with(p))
            .cloned()
            .collect();
        for w in gone {
            let _ = self.watcher.unwatch(&w);
            self.watched.remove(&w);
        }
    }

    /// Every directory a scan descends into, and for each walk root that is
    /// not a directory (or does not exist yet) its nearest existing ancestor,
    /// where it would appear.
    fn watch_targets(&self) -> Vec<PathBuf> {
        let mut dirs = scan::walk_dirs(&self.rules, &self.own, None);
        // Where the baseline is: a change to it is reported too.
        dirs.push(crate::files::parent_dir(&self.opts.db).to_path_buf());
        for root in self.rules.walk_roots() {
            if std::fs::symlink_metadata(&root.path).is_ok_and(|m| m.is_dir()) {
                continue;
            }
            let mut up = root.path.parent();
            while let Some(a) = up {
                if std::fs::symlink_metadata(a).is_ok_and(|m| m.is_dir()) {
                    dirs.push(a.to_path_buf());
                    break;
                }
                up = a.parent();
            }
        }
        dirs
    }

    fn add_watches(&mut self, dirs: Vec<PathBuf>, problems: &mut Vec<String>) {
        for dir in dirs {
            if self.watched.contains(&dir) {
                continue;
            }
            match self.watcher.watch(&dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    self.watched.insert(dir);
                }
                Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    problems.push(watch_limit_reason());
                    return;
                }
                // Gone since it was listed: its removal is an event of its own.
                Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
                Err(e) => problems.push(format!(
                    "cannot watch {}: {e}",
                    crate::escape::escape_path(&dir)
                )),
            }
        }
    }

    /// Re-reads the paths that changed and reports what differs.
    fn settle(&mut self) -> Result<(), Error> {
        let paths = std::mem::take(&mut self.pending);
        self.first_pending = None;
        let mut events = Vec::new();
        let mut problems = Vec::new();
        let mut seen = HashSet::new();
        // Directories not watched yet appeared (made, or moved in): watched
        // and read whole.
        let dirs: Vec<PathBuf> = paths
            .iter()
            .filter(|p| {
                !self.watched.contains(*p) && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
            })
            .cloned()
            .collect();
        for dir in &dirs {
            // Watch first, then read: nothing created in between is missed.
            let below = scan::walk_dirs(&self.rules, &self.own, Some(dir));
            self.add_watches(below, &mut problems);
            if self
                .rules
                .walk_roots()
                .iter()
                .any(|r| r.path.starts_with(dir) && &r.path != dir)
            {
                // An ancestor of a walk root appeared: watch toward the root.
                let targets = self.watch_targets();
                self.add_watches(targets, &mut problems);
            }
            let found = std::sync::Mutex::new(Vec::new());
            scan::scan_under(&self.rules, &self.own, &self.hints, dir, |batch| {
                found.lock().expect("not poisoned").extend(batch);
                true
            });
            for e in found.into_inner().expect("not poisoned") {
                seen.insert(e.path.clone());
                let path = e.path.clone();
                self.judge(&path, Some(e), &mut events)?;
            }
        }
        for path in paths {
            if !seen.insert(path.clone()) {
                continue;
            }
            let now = scan::capture_one(&self.rules, &self.own, &self.hints, &path);
            let is_dir = now
                .as_ref()
                .and_then(|e| e.meta)
                .is_some_and(|m| m.kind == scan::FileKind::Dir);
            self.judge(&path, now, &mut events)?;
            if !is_dir {
                // A directory removed or moved away takes its entries along.
                self.vanished_below(&path, &mut seen, &mut events)?;
            }
        }
        for p in problems {
            events.push(self.factory.overflow(&p));
        }
        self.emit(events)
    }

    /// Baseline entries and reported paths below `path` that no longer exist.
    fn vanished_below(
        &mut self,
        path: &Path,
        seen: &mut HashSet<PathBuf>,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let mut below = Vec::new();
        self.baseline.for_each_entry(Some(path), |e| {
            if e.path != path {
                below.push(e.path);
            }
            Ok(())
        })?;
        below.extend(
            self.reported
                .keys()
                .filter(|p| p.starts_with(path) && p.as_path() != path)
                .cloned(),
        );
        for p in below {
            if seen.insert(p.clone()) && std::fs::symlink_metadata(&p).is_err() {
                self.judge(&p, None, events)?;
            }
        }
        Ok(())
    }

    /// Compares `now` (the path's present state, `None` if it is not there
    /// or not selected) with the baseline and with what was last reported.
    fn judge(
        &mut self,
        path: &Path,
        now: Option<Entry>,
        events: &mut Vec<Event>,
    ) -> Result<(), Error> {
        let old = self.baseline.entry(path)?;
        let drift = {
            let old_rule = old.as_ref().map(|e| &self.baseline.rules()[e.rule]);
            let new_rule = now.as_ref().and_then(|e| self.rule_info(e.rule));
            drift_of(old.zip(old_rule), now.zip(new_rule))
        };
        self.report(path, drift, events);
        Ok(())
    }

    fn report(&mut self, path: &Path, drift: Option<Drift>, events: &mut Vec<Event>) {
        match drift {
            Some(d) => {
                let state = drift_json(&d).to_string();
                if self.reported.get(path) != Some(&state) {
                    events.push(self.factory.drift(&d));
                    self.reported.insert(path.to_path_buf(), state);
                }
            }
            None => {
                if self.reported.remove(path).is_some() {
                    let (rule, severity) = self
                        .rules
                        .select(path)
                        .map(|s| {
                            let r = &self.rules.rules[s.rule];
                            (r.name.clone(), r.severity.name())
                        })
                        .unwrap_or_default();
                    events.push(self.factory.restored(path, &rule, severity));
                }
            }
        }
    }

    /// The baseline's description of rule `i` of the loaded rules.
    fn rule_info(&self, i: usize) -> Option<&RuleInfo> {
        let name = &self.rules.rules[i].name;
        self.baseline.rules().iter().find(|r| &r.name == name)
    }

    /// Scans everything and reports what differs from the baseline and from
    /// what was reported; paths that are back to their baseline state are
    /// reported restored.
    fn full_rescan(&mut self, kind: &str) -> Result<(), Error> {
        let started = self.factory.scan_started(kind);
        self.emit(vec![started])?;
        // Said again at every rescan for as long as it lasts.
        self.check_baseline_file(true)?;
        self.check_expiry()?;
        let c = check::rescan(
            (Rc::clone(&self.baseline), self.digest),
            &self.opts.db,
            false,
            &self.opts.host,
            &NoProgress,
        )?;
        let mut events = Vec::new();
        let mut drifted = HashSet::new();
        crate::compare::compare(&c.old, &c.new, |d| {
            drifted.insert(d.path.clone());
            let path = d.path.clone();
            self.report(&path, Some(d), &mut events);
            Ok(())
        })?;
        let back: Vec<PathBuf> = self
            .reported
            .keys()
            .filter(|p| !drifted.contains(*p))
            .cloned()
            .collect();
        for p in back {
            self.report(&p, None, &mut events);
        }
        events.push(self.factory.scan_finished(kind, &c));
        self.emit(events)
    }

    /// Keeps `events` in the outbox and delivers what the sinks take.
    fn emit(&mut self, events: Vec<Event>) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        let keys = crate::events::keys(&self.opts.sinks);
        // What was done to the outbox since the last time is said first, on
        // the sinks that still work.
        let mut all = Vec::with_capacity(events.len() + 1);
        for p in self.outbox.inspect() {
            eprintln!(
                "tripseal watch: warning: {}",
                crate::escape::sanitize_line(&p.detail)
            );
            all.push(self.factory.outbox_tampered(
                self.outbox.path().as_os_str().as_encoded_bytes(),
                p.reason,
                &p.detail,
            ));
        }
        all.extend(events);
        let dropped = self.outbox.add(&all, &keys);
        if dropped > 0 {
            eprintln!(
                "tripseal watch: warning: the event outbox is full: {dropped} events were not kept"
            );
        }
        if self.retry_at.is_none() {
            self.deliver()?;
        }
        Ok(())
    }

    fn deliver(&mut self) -> Result<(), Error> {
        let mut failed = None;
        for (spec, sink) in &mut self.sinks {
            let d = self.outbox.deliver(&spec.key, sink.as_mut());
            if let Some(w) = sink.warning() {
                eprintln!(
                    "tripseal watch: warning: {}",
                    crate::escape::escape_bytes(w.as_bytes())
                );
            }
            if let Some(e) = d.error {
                failed = Some((spec.key.clone(), e, d.waiting));
            }
        }
        match failed {
            None => {
                self.retry_at = None;
                self.backoff = Duration::from_secs(1);
            }
            Some((key, e, waiting)) => {
                eprintln!(
                    "tripseal watch: warning: events not delivered to {} ({}); {waiting} wait; \
                     trying again in {}s",
                    crate::escape::escape_bytes(key.as_bytes()),
                    crate::escape::escape_bytes(e.as_bytes()),
                    self.backoff.as_secs()
                );
                self.retry_at = Some(Instant::now() + self.backoff);
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
            }
        }
        Ok(())
    }
}

/// Which limit stopped a watch, and how to raise it.
fn watch_limit_reason() -> String {
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into());
    format!(
        "the per-user inotify watch limit is reached (fs.inotify.max_user_watches = {limit}); \
         directories past it are not watched, only rescanned: raise it, e.g. \
         sysctl fs.inotify.max_user_watches=524288"
    )
}
