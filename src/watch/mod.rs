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
//!
//! Its parts: [`set`] (what is watched), [`debounce`] (when a change is
//! re-read), [`memory`] (what was reported), [`guard`] (the baseline file
//! itself); events go through the [`Courier`], as for every command.

mod actor;
mod debounce;
mod fanotify;
mod guard;
mod memory;
mod set;
mod systemd;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::INotifyWatcher;
use notify::event::{AccessKind, AccessMode, EventKind, ModifyKind, RenameMode};

use crate::baseline::{Baseline, Keep, RuleInfo};
use crate::check;
use crate::compare::{Drift, drift_of};
use crate::error::Error;
use crate::escape::{escape_path, sanitize_line};
use crate::events::courier::{Courier, log_warnings};
use crate::events::outbox::GuardedOutbox;
use crate::events::{BaselineRef, Event, EventFactory, SinkSpec};
use crate::origin::{Explainer, Query, Sources};
use crate::progress::NoProgress;
use crate::rules::Rules;
use crate::scan::{self, Entry, OwnOutputs, ScanHints};
use crate::seal::{self, SealFailure, SealPolicy};
use actor::Actor;
use debounce::Debounce;
use guard::BaselineGuard;
use memory::{DriftMemory, Verdict};
use set::{Kernel, WatchSet};
use systemd::Notifier;

/// Not a loss of notifications: the rescan after a reload.
const RELOADED: &str = "reloaded";
/// The `reason` of `fim-baseline-tampered` for a baseline file that changed
/// while the daemon runs.
const CHANGED_UNDER_DAEMON: &str = "changed-under-daemon";
/// `fim-baseline-tampered`: the daemon's private copy of what it verified
/// failed its check (see `baseline::paged`).
const COPY_ALTERED: &str = "copy-altered";
const QUEUE_OVERFLOWED: &str = "the kernel's inotify queue overflowed \
     (fs.inotify.max_queued_events); notifications were dropped";
/// Processes named for one change, at most.
const MAX_ACTORS_PER_PATH: usize = 16;
const FANOTIFY_OVERFLOWED: &str = "the kernel's fanotify queue overflowed (16384 \
     events); notifications were dropped";

pub struct WatchOptions {
    pub db: PathBuf,
    pub policy: SealPolicy,
    pub rescan: Duration,
    pub heartbeat: Duration,
    pub sinks: Vec<SinkSpec>,
    pub host: String,
    /// `fim-baseline-expiring` when the seal expires within this.
    pub expiry_warning: Duration,
    /// `fim-cert-expiring` for a certificate that expires within this.
    pub cert_warning: Duration,
    pub backend: Backend,
    /// Where drift's origin is looked up.
    pub sources: crate::origin::Sources,
}

/// Which kernel interface tells the daemon of changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// fanotify where it works (root, Linux 5.9 or later), inotify elsewhere.
    Auto,
    Inotify,
    Fanotify,
}

pub(crate) enum Msg {
    /// A change, and with fanotify the process that made it (boxed: inotify
    /// queues every read of the start-up scan here, so each byte of a
    /// message counts hundreds of thousands of times).
    Fs(notify::Result<notify::Event>, Option<Box<Actor>>),
    /// The backend's reader ended (why): nothing is watched any more.
    Stopped(String),
    Signal(i32),
}

/// The generation the daemon verified (at start or at the last accepted
/// SIGHUP), in memory: every re-read and rescan compares with it, whatever
/// the file at `--db` holds meanwhile.
struct Held {
    baseline: Rc<Baseline>,
    digest: Option<[u8; 32]>,
    /// When its seal expires (`None`: never).
    expires_ns: Option<i64>,
    rules: Rules,
    /// What a scan needs from the baseline (growing files' sizes); kept,
    /// not rebuilt for every re-read.
    hints: ScanHints<'static>,
}

struct Daemon {
    opts: WatchOptions,
    held: Held,
    guard: BaselineGuard,
    own: OwnOutputs,
    set: WatchSet,
    memory: DriftMemory,
    debounce: Debounce,
    courier: Courier<GuardedOutbox>,
    /// Set when notifications may have been lost: a full rescan is due.
    rescan_due: Option<String>,
    /// systemd's notification socket, when it started the daemon.
    systemd: Notifier,
    /// The processes that changed each path since it was last reported.
    actors: HashMap<PathBuf, Vec<Actor>>,
    /// The package records for the watched trees, kept between batches.
    explainer: Explainer,
    /// The certificates the last full scan found, said again daily.
    certificates: Vec<crate::certs::CertFile>,
}

/// The baseline at `opts.db`, read once into memory and its seal verified;
/// never a generation below `floor` (the one the daemon holds).
fn load(opts: &WatchOptions, floor: Option<i64>) -> Result<(Held, EventFactory), Error> {
    let policy = SealPolicy {
        min_generation: floor,
        ..opts.policy.clone()
    };
    let opened = seal::open_sealed(&opts.db, &policy, true, crate::units::now_ns(), Keep::Disk)?;
    let rules = check::stored_rules(&opened.baseline)?;
    let named = BaselineRef::of(&opened.baseline, opened.digest)?;
    let held = Held {
        hints: ScanHints {
            growing_sizes: opened.baseline.growing_sizes()?,
            known: None,
            relocate: None,
        },
        baseline: Rc::new(opened.baseline),
        digest: opened.digest,
        expires_ns: opened.expires_ns,
        rules,
    };
    Ok((held, EventFactory::new(&opts.host, &opts.db, Some(named))))
}

/// Runs the daemon until SIGTERM or SIGINT. Refuses to start on a baseline
/// whose seal does not verify (said as `fim-baseline-tampered` first).
pub fn watch(opts: WatchOptions) -> Result<(), Error> {
    let outbox = GuardedOutbox::open(&opts.db);
    let mut own = OwnOutputs::for_baseline(&opts.db);
    own.add(outbox.path());
    let unnamed = EventFactory::new(&opts.host, &opts.db, None);
    let mut courier = Courier::new(outbox, &opts.sinks, unnamed)?;
    let (held, factory) = match load(&opts, None) {
        Ok(loaded) => loaded,
        Err(e) => {
            courier.refused(&opts.db, &e)?;
            log_warnings(&mut courier);
            return Err(e);
        }
    };
    courier.set_factory(factory);
    let (tx, rx) = mpsc::channel::<Msg>();
    let kernel = start_kernel(opts.backend, crate::files::parent_dir(&opts.db), tx.clone())?;
    forward_signals(tx)?;
    let explainer = explainer_for(&held, &opts.sources);
    let mut d = Daemon {
        explainer,
        certificates: Vec::new(),
        held,
        guard: BaselineGuard::new(&opts.db),
        own,
        set: WatchSet::new(kernel),
        actors: HashMap::new(),
        memory: DriftMemory::default(),
        debounce: Debounce::default(),
        courier,
        rescan_due: None,
        systemd: Notifier::from_env(),
        opts,
    };
    match d.run(&rx) {
        Err(e) if d.held.baseline.copy_error().is_some() => {
            // Nothing verified can be read any more: say so where the
            // operators look, then stop; a restart verifies `--db` again.
            if let Some(why) = d.held.baseline.copy_altered() {
                let ev = d.tampered(COPY_ALTERED, &why);
                d.emit(vec![ev])?;
            }
            Err(Error::Watcher {
                detail: format!(
                    "{e}; tripseal watch stops: restart it to verify the baseline again \
                     (systemd does, Restart=on-failure)"
                ),
            })
        }
        result => result,
    }
}

/// The backend asked for; with `Auto`, fanotify where it starts, inotify
/// (said why) where it does not.
fn start_kernel(backend: Backend, first: &Path, tx: mpsc::Sender<Msg>) -> Result<Kernel, Error> {
    if backend == Backend::Inotify {
        return start_watcher(tx).map(Kernel::Inotify);
    }
    match fanotify::Fanotify::start(tx.clone(), first) {
        Ok(f) => Ok(Kernel::Fanotify(f)),
        Err(why) if backend == Backend::Auto => {
            log::info!("fanotify is not available ({why}); watching with inotify");
            start_watcher(tx).map(Kernel::Inotify)
        }
        Err(why) => Err(Error::Watcher {
            detail: format!(
                "cannot start fanotify: {why}; run as root on Linux 5.9 or later, or use \
                 --backend inotify"
            ),
        }),
    }
}

fn start_watcher(tx: mpsc::Sender<Msg>) -> Result<INotifyWatcher, Error> {
    use notify::Watcher;
    INotifyWatcher::new(
        move |ev| {
            let _ = tx.send(Msg::Fs(ev, None));
        },
        notify::Config::default(),
    )
    .map_err(|e| Error::Watcher {
        detail: format!(
            "cannot start inotify: {e}; if the per-user instance limit is reached \
             (fs.inotify.max_user_instances), raise it, e.g. \
             sysctl fs.inotify.max_user_instances=512"
        ),
    })
}

/// How long after a batch of changes its freed heap is given back: once
/// things are quiet, not after every batch of a long burst.
const TRIM_AFTER: Duration = Duration::from_secs(2);

/// How often the daemon says which certificates expired or expire soon.
const CERTIFICATES_EVERY: Duration = Duration::from_secs(86_400);

/// Gives back to the kernel the heap a scan or a batch freed: glibc keeps
/// most of it free but mapped, and a daemon that sits idle for hours
/// should not hold it (after a rescan about 17 MiB, after the 200 changes
/// of benches/watch.sh about 6 MiB, on the 100k-file corpus).
fn release_freed_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free pages; it takes no pointer.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Package records kept for what the held baseline's rules walk; the
/// archive's keys anchored to it when its seal verified.
fn explainer_for(held: &Held, sources: &Sources) -> Explainer {
    let roots = held
        .rules
        .walk_roots()
        .into_iter()
        .map(|r| r.path)
        .collect();
    let anchor = match held.digest {
        Some(_) => Ok(&*held.baseline),
        None => Err("the seal of the baseline was skipped (--allow-unsigned)"),
    };
    Explainer::new(sources.clone(), Some(roots), anchor)
}

/// SIGTERM, SIGINT and SIGHUP arrive as messages, in order with the rest.
fn forward_signals(tx: mpsc::Sender<Msg>) -> Result<(), Error> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|source| Error::Signals { source })?;
    std::thread::spawn(move || {
        for s in signals.forever() {
            if tx.send(Msg::Signal(s)).is_err() {
                break;
            }
        }
    });
    Ok(())
}

/// The full rescan's timer, the heartbeat's, and systemd's watchdog's.
struct Timers {
    heartbeat: Instant,
    rescan: Instant,
    /// When the certificates' expiry is said again.
    certificates: Instant,
    watchdog: Option<Instant>,
    /// When the heap a batch freed goes back to the kernel.
    trim: Option<Instant>,
}

impl Daemon {
    fn run(&mut self, rx: &mpsc::Receiver<Msg>) -> Result<(), Error> {
        if let Some(e) = self.held.baseline.copy_error() {
            return Err(e);
        }
        let problems = self.set.add(self.watch_targets());
        log::info!(
            "watching {} directories for {} with {}",
            self.set.len(),
            escape_path(&self.opts.db),
            self.set.backend()
        );
        let online = self.liveness("fim-online");
        self.emit(vec![online])?;
        self.overflowed(problems)?;
        // Whatever changed before the watches were in place.
        self.full_rescan("rescan")?;
        self.say_certificates()?;
        self.systemd.ready(&self.status());
        let mut timers = Timers {
            heartbeat: Instant::now() + self.opts.heartbeat,
            rescan: Instant::now() + self.opts.rescan,
            certificates: Instant::now() + CERTIFICATES_EVERY,
            watchdog: self
                .systemd
                .watchdog_every()
                .map(|t| Instant::now() + t / 2),
            trim: None,
        };
        self.systemd.start_watchdog();
        loop {
            crate::progress::tick();
            // Whatever read failed on the copy, even one whose caller took
            // the error for "not there", ends the run here.
            if let Some(e) = self.held.baseline.copy_error() {
                return Err(e);
            }
            let wake = self.next_wake(&timers);
            match rx.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(Msg::Stopped(why)) => {
                    return Err(Error::Watcher {
                        detail: format!(
                            "{why}; nothing is watched any more, so tripseal watch stops: \
                             restart it (systemd does, Restart=on-failure)"
                        ),
                    });
                }
                Ok(Msg::Fs(ev, actor)) => self.note(ev, actor),
                Ok(Msg::Signal(signal_hook::consts::SIGHUP)) => self.reload()?,
                Ok(Msg::Signal(_)) => return self.stop(),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(Error::Watcher {
                        detail: format!(
                            "the {} reader stopped; nothing is watched any more, so tripseal \
                             watch stops: restart it (systemd does, Restart=on-failure)",
                            self.set.backend()
                        ),
                    });
                }
            }
            self.due_work(&mut timers)?;
        }
    }

    fn next_wake(&self, timers: &Timers) -> Instant {
        [
            self.debounce.due_at(),
            self.courier.retry_at(),
            self.guard.due_at(),
            timers.watchdog,
            timers.trim,
        ]
        .into_iter()
        .flatten()
        .fold(
            timers.heartbeat.min(timers.rescan).min(timers.certificates),
            Instant::min,
        )
    }

    /// Whatever is due after a message or a timeout, in order.
    fn due_work(&mut self, timers: &mut Timers) -> Result<(), Error> {
        let now = Instant::now();
        if let Some(reason) = self.rescan_due.take() {
            self.rescan_after(&reason)?;
            timers.rescan = now + self.opts.rescan;
        }
        if let Some(paths) = self.debounce.take_due(now) {
            self.settle(paths)?;
            timers.trim = Some(Instant::now() + TRIM_AFTER);
        }
        if timers.trim.is_some_and(|t| now >= t) {
            release_freed_memory();
            timers.trim = None;
        }
        if self.guard.due_at().is_some_and(|t| now >= t) {
            self.check_baseline_file(false)?;
        }
        if now >= timers.heartbeat {
            let hb = self.liveness("fim-heartbeat");
            self.emit(vec![hb])?;
            self.systemd.ping();
            timers.heartbeat = now + self.opts.heartbeat;
        }
        // The loop turns at least this often, so the watchdog sees it live.
        if let Some(every) = self.systemd.watchdog_every()
            && timers.watchdog.is_some_and(|t| now >= t)
        {
            timers.watchdog = Some(now + every / 2);
        }
        if now >= timers.rescan {
            self.full_rescan("rescan")?;
            timers.rescan = Instant::now() + self.opts.rescan;
        }
        if now >= timers.certificates {
            self.say_certificates()?;
            timers.certificates = Instant::now() + CERTIFICATES_EVERY;
        }
        if self.courier.retry_at().is_some_and(|t| now >= t) {
            self.courier.retry()?;
            log_warnings(&mut self.courier);
        }
        Ok(())
    }

    /// `fim-cert-expired` and `fim-cert-expiring` for what the last full
    /// scan found: after the first comparison, then daily, since a
    /// certificate expires with nothing changing.
    fn say_certificates(&mut self) -> Result<(), Error> {
        let due = self
            .courier
            .certificates(&self.certificates, self.opts.cert_warning);
        self.emit(due)
    }

    /// SIGTERM or SIGINT: what changed is read, `fim-offline` sent.
    fn stop(&mut self) -> Result<(), Error> {
        self.systemd.stopping();
        let paths = self.debounce.take();
        self.settle(paths)?;
        let offline = self.liveness("fim-offline");
        self.emit(vec![offline])?;
        // One last try, whatever the backoff said.
        if self.courier.retry_at().is_some() {
            self.courier.retry()?;
            log_warnings(&mut self.courier);
        }
        log::info!("stopped");
        Ok(())
    }

    /// A full rescan because notifications may have been lost (`reason`),
    /// or after a reload; the watches are brought up to date first.
    fn rescan_after(&mut self, reason: &str) -> Result<(), Error> {
        if reason != RELOADED {
            let ev = self.courier.factory().overflow(reason);
            self.emit(vec![ev])?;
        }
        self.debounce.take();
        let problems = self.set.add(self.watch_targets());
        self.overflowed(problems)?;
        let kind = if reason == RELOADED {
            "rescan"
        } else {
            "watch-rescan"
        };
        self.full_rescan(kind)
    }

    /// `fim-watch-overflow` for each watch that could not be placed.
    fn overflowed(&mut self, problems: Vec<String>) -> Result<(), Error> {
        for p in problems {
            let ev = self.courier.factory().overflow(&p);
            self.emit(vec![ev])?;
        }
        Ok(())
    }

    /// SIGHUP: the baseline again (a newly signed generation, its rules).
    /// One whose seal fails is refused, said with `fim-baseline-tampered`,
    /// and the daemon goes on with the one it had verified.
    fn reload(&mut self) -> Result<(), Error> {
        // With a verified seal, never back below the generation held: the
        // rollback record beside the file may have been deleted.
        let generation = self.held.baseline.header().generation;
        let floor = self.held.digest.is_some().then_some(generation);
        match load(&self.opts, floor) {
            Ok((held, factory)) => {
                log::info!(
                    "SIGHUP: baseline generation {} loaded",
                    held.baseline.header().generation
                );
                self.held = held;
                self.explainer = explainer_for(&self.held, &self.opts.sources);
                self.courier.set_factory(factory);
                // The file now holds what was verified.
                self.guard.reset();
                // Drift is now measured against the new generation.
                self.memory.clear();
                self.set.retain(&self.watch_targets());
                self.rescan_due = Some(RELOADED.into());
                self.systemd.status(&self.status());
                Ok(())
            }
            Err(e) => {
                log::warn!(
                    "SIGHUP: the baseline was refused, watching on with generation \
                     {generation}: {}",
                    sanitize_line(&e.to_string())
                );
                // Sent as any other event: after the backoff, if a sink refuses.
                match self.courier.tampered_event(&self.opts.db, &e) {
                    Some(ev) => self.emit(vec![ev]),
                    None => Ok(()),
                }
            }
        }
    }

    /// Compares the file at `--db` with what was verified, and reports a
    /// difference as `fim-baseline-tampered` (`changed-under-daemon`): a
    /// new one always, the same one again only when `again`.
    fn check_baseline_file(&mut self, again: bool) -> Result<(), Error> {
        let held = &self.held;
        let Some(detail) = self.guard.look(&held.baseline, held.digest, again) else {
            return Ok(());
        };
        log::warn!("{}: {detail}", escape_path(&self.opts.db));
        let ev = self.tampered(CHANGED_UNDER_DAEMON, &detail);
        self.emit(vec![ev])
    }

    /// `fim-baseline-tampered` about the baseline at `--db`.
    fn tampered(&self, reason: &str, detail: &str) -> Event {
        let db = self.opts.db.as_os_str().as_encoded_bytes();
        self.courier.factory().tampered(db, reason, detail)
    }

    /// `fim-baseline-expiring` when the seal expires soon; once it has
    /// expired, `fim-baseline-tampered` (`expired`): the daemon watches on
    /// (stopping would blind the host) but says at every rescan that nothing
    /// vouches for its baseline any more.
    fn check_expiry(&mut self) -> Result<(), Error> {
        let Some(t) = self.held.expires_ns else {
            return Ok(());
        };
        let now = crate::units::now_ns();
        let ev = if t <= now {
            let detail = format!(
                "generation {} was signed to be trusted until {}, and that has passed; the \
                 daemon goes on comparing with it: sign the next generation and reload",
                self.held.baseline.header().generation,
                crate::units::iso8601(t)
            );
            self.tampered(SealFailure::Expired.name(), &detail)
        } else if let Some(t) = seal::expiring_within(Some(t), now, self.opts.expiry_warning) {
            let db = self.opts.db.as_os_str().as_encoded_bytes();
            self.courier.factory().expiring(db, t, now)
        } else {
            return Ok(());
        };
        self.emit(vec![ev])
    }

    /// What systemd shows in `systemctl status`.
    fn status(&self) -> String {
        format!(
            "watching {} directories for {}, generation {}",
            self.set.len(),
            escape_path(&self.opts.db),
            self.held.baseline.header().generation
        )
    }

    fn liveness(&self, kind: &str) -> Event {
        let waiting = self.courier.store().len();
        self.courier.factory().liveness(
            kind,
            self.set.backend(),
            self.opts.heartbeat.as_secs_f64(),
            self.set.len(),
            self.debounce.len() as u64 + waiting,
        )
    }

    /// Takes one notification in: which paths to re-read, which directories
    /// to forget, or a rescan when notifications were lost.
    fn note(&mut self, ev: notify::Result<notify::Event>, actor: Option<Box<Actor>>) {
        let ev = match ev {
            Ok(ev) if ev.need_rescan() => {
                self.rescan_due = Some(match self.set.backend() {
                    "fanotify" => FANOTIFY_OVERFLOWED.into(),
                    _ => QUEUE_OVERFLOWED.into(),
                });
                return;
            }
            Ok(ev) => ev,
            Err(e) => {
                self.rescan_due = Some(match e.kind {
                    notify::ErrorKind::MaxFilesWatch => set::watch_limit_reason(),
                    _ => format!("the watcher reported an error: {e}"),
                });
                return;
            }
        };
        match ev.kind {
            // Reads, tripseal's own included, change nothing.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return,
            EventKind::Modify(ModifyKind::Name(RenameMode::From)) | EventKind::Remove(_) => {
                for p in &ev.paths {
                    self.set.forget_under(p);
                }
            }
            _ => {}
        }
        // Only marked here; what each path is now is read once it settles.
        let now = Instant::now();
        for p in ev.paths {
            if self.guard.concerns(&p) {
                self.guard.suspect(now);
            } else if !self.own.contains(&p) {
                if let Some(a) = &actor {
                    let seen = self.actors.entry(p.clone()).or_default();
                    if seen.len() < MAX_ACTORS_PER_PATH && !seen.iter().any(|s| s.pid == a.pid) {
                        seen.push(Actor::clone(a));
                    }
                }
                self.debounce.note(p, now);
            }
        }
        self.debounce.touch(now);
    }

    fn watch_targets(&self) -> Vec<PathBuf> {
        set::targets(&self.held.rules, &self.own, &self.opts.db)
    }

    /// Re-reads the paths that changed and reports what differs.
    fn settle(&mut self, paths: BTreeSet<PathBuf>) -> Result<(), Error> {
        log::debug!("re-reading {} changed paths", paths.len());
        let mut events = Outgoing::default();
        let mut seen = HashSet::new();
        let problems = self.adopt_new_dirs(&paths, &mut seen, &mut events)?;
        for path in paths {
            crate::progress::tick();
            if !seen.insert(path.clone()) {
                continue;
            }
            let h = &self.held;
            let now = scan::capture_one(&h.rules, &self.own, &h.hints, &path);
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
            events.push(self.courier.factory().overflow(&p));
        }
        self.emit_batch(events)
    }

    /// Directories among `paths` not watched yet (made, or moved in): watched
    /// first, then read whole, so nothing created in between is missed.
    /// Returns the watches that could not be placed.
    fn adopt_new_dirs(
        &mut self,
        paths: &BTreeSet<PathBuf>,
        seen: &mut HashSet<PathBuf>,
        events: &mut Outgoing,
    ) -> Result<Vec<String>, Error> {
        let mut problems = Vec::new();
        let new_dirs = paths.iter().filter(|p| {
            !self.set.contains(p) && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir())
        });
        for dir in new_dirs.cloned().collect::<Vec<_>>() {
            let h = &self.held;
            problems.extend(
                self.set
                    .add(scan::walk_dirs(&h.rules, &self.own, Some(&dir))),
            );
            if h.rules
                .walk_roots()
                .iter()
                .any(|r| r.path.starts_with(&dir) && r.path != dir)
            {
                // An ancestor of a walk root appeared: watch toward the root.
                problems.extend(self.set.add(self.watch_targets()));
            }
            let found = std::sync::Mutex::new(Vec::new());
            scan::scan_under(&h.rules, &self.own, &h.hints, &dir, |batch| {
                found
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(batch);
                true
            });
            for e in found.into_inner().unwrap_or_else(|e| e.into_inner()) {
                seen.insert(e.path.clone());
                let path = e.path.clone();
                self.judge(&path, Some(e), events)?;
            }
        }
        Ok(problems)
    }

    /// Baseline entries and reported paths below `path` that no longer exist.
    fn vanished_below(
        &mut self,
        path: &Path,
        seen: &mut HashSet<PathBuf>,
        events: &mut Outgoing,
    ) -> Result<(), Error> {
        let mut below = Vec::new();
        self.held.baseline.for_each_entry(Some(path), |e| {
            if e.path != path {
                below.push(e.path);
            }
            Ok(())
        })?;
        below.extend(self.memory.below(path));
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
        events: &mut Outgoing,
    ) -> Result<(), Error> {
        let b = &self.held.baseline;
        let old = b.entry(path)?;
        let drift = {
            let old_rule = old.as_ref().map(|e| &b.rules()[e.rule]);
            let new_rule = now.as_ref().and_then(|e| self.rule_info(e.rule));
            drift_of(old.zip(old_rule), now.zip(new_rule))
        };
        self.report(path, drift, events);
        Ok(())
    }

    fn report(&mut self, path: &Path, drift: Option<Drift>, events: &mut Outgoing) {
        let actors = self.actors.remove(path).unwrap_or_default();
        match (self.memory.judge(path, drift.as_ref()), drift) {
            (Verdict::Drifted, Some(d)) => events.drift(d, actors),
            (Verdict::Restored, _) => {
                let rules = &self.held.rules;
                let (rule, severity) = rules
                    .select(path)
                    .map(|s| {
                        let r = &rules.rules[s.rule];
                        (r.name.clone(), r.severity.name())
                    })
                    .unwrap_or_default();
                let ev =
                    self.courier
                        .factory()
                        .restored(path, &rule, severity, actor_fields(&actors));
                events.push(ev);
            }
            _ => {}
        }
    }

    /// The baseline's description of rule `i` of the loaded rules.
    fn rule_info(&self, i: usize) -> Option<&RuleInfo> {
        let name = &self.held.rules.rules[i].name;
        self.held.baseline.rules().iter().find(|r| &r.name == name)
    }

    /// Scans everything and reports what differs from the baseline and from
    /// what was reported; paths that are back to their baseline state are
    /// reported restored.
    fn full_rescan(&mut self, kind: &str) -> Result<(), Error> {
        // What a rescan finds has no known author: after an overflow the
        // processes heard of are not all that wrote.
        self.actors.clear();
        let started = self.courier.factory().scan_started(kind);
        self.emit(vec![started])?;
        // Said again at every rescan for as long as it lasts.
        self.check_baseline_file(true)?;
        self.check_expiry()?;
        let mut c = check::rescan(
            (Rc::clone(&self.held.baseline), self.held.digest),
            &self.opts.db,
            None,
            &self.opts.sources,
            &self.opts.host,
            &NoProgress,
        )?;
        let mut events = Outgoing::default();
        let mut drifted = HashSet::new();
        c.each_drift(|d| {
            drifted.insert(d.path.clone());
            let path = d.path.clone();
            self.report(&path, Some(d), &mut events);
            Ok(())
        })?;
        for p in self.memory.not_in(&drifted) {
            self.report(&p, None, &mut events);
        }
        log::debug!(
            "{kind}: {} entries scanned, {} drifted",
            c.scan.as_ref().map_or(0, |s| s.entries),
            drifted.len()
        );
        events.push(self.courier.factory().scan_finished(kind, &c));
        let sent = self.emit_batch(events);
        self.certificates = std::mem::take(&mut c.certificates);
        drop(c);
        release_freed_memory();
        sent
    }

    /// Emits a batch: the drift in it explained by package origin (the
    /// package records read once for the batch), with who made it.
    fn emit_batch(&mut self, out: Outgoing) -> Result<(), Error> {
        let queries: Vec<Query> = out
            .items
            .iter()
            .filter_map(|i| match i {
                Item::Drift(d, _) if d.origin.is_none() => Some(Query::of(d)),
                _ => None,
            })
            .collect();
        let origins = match queries.is_empty() {
            true => HashMap::new(),
            false => self.explainer.explain(&queries),
        };
        let factory = self.courier.factory();
        let events = out
            .items
            .into_iter()
            .flat_map(|i| match i {
                Item::Ready(ev) => vec![ev],
                Item::Drift(mut d, actors) => {
                    if d.origin.is_none() {
                        d.origin = origins.get(&d.path).cloned();
                    }
                    if d.finding.is_none() {
                        d.finding = crate::python::inspect(&d);
                    }
                    let finding = factory.finding(&d);
                    let mut evs = vec![drift_event(factory, *d, &actors)];
                    evs.extend(finding);
                    evs
                }
            })
            .collect();
        self.emit(events)
    }

    /// Keeps `events` in the outbox and delivers what the sinks take.
    fn emit(&mut self, events: Vec<Event>) -> Result<(), Error> {
        self.courier.send(events)?;
        log_warnings(&mut self.courier);
        Ok(())
    }
}

/// What one batch of the daemon reports, in order: events ready to send,
/// and drift that gets its origin and actors when the batch is complete.
#[derive(Default)]
struct Outgoing {
    items: Vec<Item>,
}

enum Item {
    Ready(Event),
    Drift(Box<Drift>, Vec<Actor>),
}

impl Outgoing {
    fn push(&mut self, ev: Event) {
        self.items.push(Item::Ready(ev));
    }

    fn drift(&mut self, d: Drift, actors: Vec<Actor>) {
        self.items.push(Item::Drift(Box::new(d), actors));
    }
}

/// The drift event, with its `actor`s; a change only the package manager
/// made, whose content is what its package records, is one severity step
/// lower, and says why (`severity_lowered`).
fn drift_event(factory: &EventFactory, mut d: Drift, actors: &[Actor]) -> Event {
    let mut extra = actor_fields(actors);
    if let Some(why) = made_by_its_package_manager(&d, actors) {
        let from = d.severity;
        d.severity = from.lower();
        extra.insert(
            "severity_lowered".into(),
            serde_json::json!({"from": from.name(), "why": why}),
        );
    }
    factory.drift_with(&d, extra)
}

/// `actor`, when there are any.
fn actor_fields(actors: &[Actor]) -> serde_json::Map<String, serde_json::Value> {
    let mut extra = serde_json::Map::new();
    if !actors.is_empty() {
        let list: Vec<serde_json::Value> = actors.iter().map(Actor::json).collect();
        extra.insert("actor".into(), list.into());
    }
    extra
}

/// Why `d` is the package manager's own work, when it is: every process
/// that changed it is dpkg, and the change is one its package vouches for.
fn made_by_its_package_manager(d: &Drift, actors: &[Actor]) -> Option<String> {
    let origin = d.origin.as_ref()?;
    let package = origin.package.as_ref()?;
    // What --only-packaged would accept, and nothing else: no mode or owner
    // change, no conffile, no new file that is not root's.
    if crate::origin::vouches_for(d, crate::origin::Evidence::HostRecordsOnly).is_err()
        || actors.is_empty()
    {
        return None;
    }
    // dpkg by its executable file (device and inode, as /proc/PID/exe
    // resolves it), never by a name a process may give itself; pip runs
    // as the Python interpreter and cannot be told apart: never lowered.
    let dpkg = std::fs::metadata("/usr/bin/dpkg").ok().map(|m| {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    });
    let is_manager = |a: &Actor| {
        a.seen.as_ref().is_some_and(|s| match package.manager {
            crate::origin::Manager::Dpkg => dpkg.is_some() && s.exe_id == dpkg,
            crate::origin::Manager::Pip => false,
        })
    };
    if !actors.iter().all(is_manager) {
        return None;
    }
    let pids: Vec<String> = actors.iter().map(|a| a.pid.to_string()).collect();
    Some(format!(
        "made by {} (pid {}), and its content is what {} {} records ({})",
        package.manager.name(),
        pids.join(", "),
        package.name,
        package.version,
        origin.evidence.map_or("", crate::origin::Evidence::name)
    ))
}
