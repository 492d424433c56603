//! The courier: the one way events travel, for `check`, `flush` and the
//! daemon alike. It keeps every event in the outbox before any sink sees it,
//! delivers to each sink in order, backs off from a sink that refused, and
//! frames a run with its started, tampered and finished events.
//!
//! It prints nothing: what the user should know comes back as [`Warning`]s,
//! and the caller decides how to say them.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::outbox::{Delivery, GuardedOutbox, MAX_OUTBOX_EVENTS, Outbox};
use super::sink::{self, Sink};
use super::{Event, EventFactory, SinkSpec};
use crate::check::Comparison;
use crate::error::Error;
use crate::escape::{escape_bytes, escape_path};

/// Events a batch of drift records goes to the outbox in.
const EVENTS_PER_TRANSACTION: usize = 1000;
/// The first wait before a sink that refused is tried again; it doubles up
/// to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Where the courier keeps events until every sink took them: the outbox
/// of a one-shot command, or the daemon's guarded one.
pub trait EventStore {
    fn path(&self) -> &Path;
    /// The baseline whose outbox this is (what `tripseal flush --db` takes).
    fn db(&self) -> &Path;
    /// Keeps `events` for the sinks `keys`; returns how many did not fit.
    fn add(&mut self, events: &[Event], keys: &[String]) -> Result<u64, Error>;
    /// Sends what waits for `key`, in order, stopping at the first refusal.
    fn deliver(&mut self, key: &str, sink: &mut dyn Sink) -> Result<Delivery, Error>;
    /// What was done to the store since the last look, to be reported.
    fn inspect(&mut self) -> Vec<super::outbox::OutboxProblem> {
        Vec::new()
    }
}

impl EventStore for Outbox {
    fn path(&self) -> &Path {
        Outbox::path(self)
    }
    fn db(&self) -> &Path {
        Outbox::db(self)
    }
    fn add(&mut self, events: &[Event], keys: &[String]) -> Result<u64, Error> {
        Outbox::add(self, events, keys)
    }
    fn deliver(&mut self, key: &str, sink: &mut dyn Sink) -> Result<Delivery, Error> {
        Outbox::deliver(self, key, sink)
    }
}

impl EventStore for GuardedOutbox {
    fn path(&self) -> &Path {
        GuardedOutbox::path(self)
    }
    fn db(&self) -> &Path {
        GuardedOutbox::db(self)
    }
    fn add(&mut self, events: &[Event], keys: &[String]) -> Result<u64, Error> {
        Ok(GuardedOutbox::add(self, events, keys))
    }
    fn deliver(&mut self, key: &str, sink: &mut dyn Sink) -> Result<Delivery, Error> {
        Ok(GuardedOutbox::deliver(self, key, sink))
    }
    fn inspect(&mut self) -> Vec<super::outbox::OutboxProblem> {
        GuardedOutbox::inspect(self)
    }
}

/// Something about the events the user should know; nothing was lost
/// unless it says so.
#[derive(Debug, Clone, PartialEq)]
pub enum Warning {
    /// The outbox was full: `dropped` events were not kept.
    OutboxFull { dropped: u64 },
    /// The outbox was removed, replaced or had its journal planted; what
    /// waited in it was kept.
    OutboxTampered { detail: String },
    /// A sink took the events but has something to say (no consumer).
    Sink { message: String },
    /// A sink refused; its events wait in the outbox of the baseline `db`.
    Undelivered {
        stopped: Stopped,
        db: PathBuf,
        /// The daemon tries again after this; a one-shot command leaves
        /// them to `tripseal flush`.
        retry_in: Option<Duration>,
    },
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::OutboxFull { dropped } => write!(
                f,
                "the event outbox is full ({MAX_OUTBOX_EVENTS} events): {dropped} events were \
                 not kept; deliver the waiting ones with `tripseal flush`"
            ),
            Warning::OutboxTampered { detail } => f.write_str(detail),
            Warning::Sink { message } => f.write_str(&escape_bytes(message.as_bytes())),
            Warning::Undelivered {
                stopped,
                db,
                retry_in,
            } => {
                write!(
                    f,
                    "events not delivered to {} ({}); {} wait in {}",
                    escape_bytes(stopped.sink.as_bytes()),
                    escape_bytes(stopped.reason.as_bytes()),
                    stopped.waiting,
                    escape_path(&crate::files::sibling(db, ".outbox"))
                )?;
                match retry_in {
                    Some(d) => write!(f, "; trying again in {}s", d.as_secs()),
                    None => write!(f, "; `tripseal flush --db {}` sends them", escape_path(db)),
                }
            }
        }
    }
}

/// Says what `courier` had to say, through the log (the binary's logger
/// decides where it goes).
pub fn log_warnings<S: EventStore>(courier: &mut Courier<S>) {
    for w in courier.take_warnings() {
        log::warn!("{w}");
    }
}

/// A sink that refused during one delivery run.
#[derive(Debug, Clone, PartialEq)]
pub struct Stopped {
    /// The sink's key (its URL, password hidden).
    pub sink: String,
    pub reason: String,
    /// Events still waiting for it.
    pub waiting: u64,
}

impl From<Stopped> for Error {
    fn from(s: Stopped) -> Error {
        Error::Undelivered {
            sink: s.sink,
            reason: s.reason,
            waiting: s.waiting,
        }
    }
}

pub struct Courier<S> {
    store: S,
    sinks: Vec<(SinkSpec, Box<dyn Sink>)>,
    keys: Vec<String>,
    factory: EventFactory,
    retry_at: Option<Instant>,
    backoff: Duration,
    warnings: Vec<Warning>,
}

impl<S: EventStore> Courier<S> {
    /// A courier for `specs`, keeping events in `store`; refuses a sink URL
    /// it cannot open before any event is made.
    pub fn new(store: S, specs: &[SinkSpec], factory: EventFactory) -> Result<Courier<S>, Error> {
        let sinks = specs
            .iter()
            .map(|s| Ok((s.clone(), sink::open(&s.url)?)))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Courier::with_sinks(store, sinks, factory))
    }

    /// A courier for sinks already open.
    pub fn with_sinks(
        store: S,
        sinks: Vec<(SinkSpec, Box<dyn Sink>)>,
        factory: EventFactory,
    ) -> Courier<S> {
        Courier {
            store,
            keys: sinks.iter().map(|(s, _)| s.key.clone()).collect(),
            sinks,
            factory,
            retry_at: None,
            backoff: FIRST_BACKOFF,
            warnings: Vec::new(),
        }
    }

    /// What builds this run's events (the host, the baseline they concern).
    pub fn factory(&self) -> &EventFactory {
        &self.factory
    }

    /// Events from now on concern another baseline (the daemon's reload).
    pub fn set_factory(&mut self, factory: EventFactory) {
        self.factory = factory;
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    /// When a sink that refused is due to be tried again.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// What happened that the user should know, since the last call.
    pub fn take_warnings(&mut self) -> Vec<Warning> {
        std::mem::take(&mut self.warnings)
    }

    /// Puts `events` in the store, after what was done to the store since
    /// the last look (as `fim-outbox-tampered`); delivers nothing yet.
    pub fn keep(&mut self, events: Vec<Event>) -> Result<(), Error> {
        if events.is_empty() || self.keys.is_empty() {
            return Ok(());
        }
        let mut all = Vec::with_capacity(events.len() + 1);
        for p in self.store.inspect() {
            let path = self.store.path().as_os_str().as_encoded_bytes();
            all.push(self.factory.outbox_tampered(path, p.reason, &p.detail));
            self.warnings
                .push(Warning::OutboxTampered { detail: p.detail });
        }
        all.extend(events);
        let dropped = self.store.add(&all, &self.keys)?;
        if dropped > 0 {
            self.warnings.push(Warning::OutboxFull { dropped });
        }
        Ok(())
    }

    /// Keeps `events` and delivers them, unless a sink is being backed off
    /// from (then they go with the next try).
    pub fn send(&mut self, events: Vec<Event>) -> Result<(), Error> {
        if events.is_empty() {
            return Ok(());
        }
        self.keep(events)?;
        if self.retry_at.is_none() {
            self.retry()?;
        }
        Ok(())
    }

    /// Delivers to every sink and, for the ones that refused, says when the
    /// next try is (doubling the wait each time).
    pub fn retry(&mut self) -> Result<(), Error> {
        let stopped = self.deliver()?;
        if stopped.is_empty() {
            self.retry_at = None;
            self.backoff = FIRST_BACKOFF;
            return Ok(());
        }
        for s in stopped {
            self.warnings.push(Warning::Undelivered {
                stopped: s,
                db: self.store.db().to_path_buf(),
                retry_in: Some(self.backoff),
            });
        }
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        Ok(())
    }

    /// Delivers what waits for each sink, in order; returns the sinks that
    /// refused, for the caller to judge (a warning, or `flush`'s error).
    pub fn deliver(&mut self) -> Result<Vec<Stopped>, Error> {
        let mut stopped = Vec::new();
        for (spec, sink) in &mut self.sinks {
            let d = self.store.deliver(&spec.key, sink.as_mut())?;
            if let Some(message) = sink.warning() {
                self.warnings.push(Warning::Sink { message });
            }
            if let Some(reason) = d.error {
                stopped.push(Stopped {
                    sink: spec.key.clone(),
                    reason,
                    waiting: d.waiting,
                });
            }
        }
        Ok(stopped)
    }

    /// A one-shot command's last delivery: every sink that refused is a
    /// warning that `tripseal flush` sends its events.
    pub fn deliver_before_exit(&mut self) -> Result<(), Error> {
        for s in self.deliver()? {
            self.warnings.push(Warning::Undelivered {
                stopped: s,
                db: self.store.db().to_path_buf(),
                retry_in: None,
            });
        }
        Ok(())
    }

    /// `fim-scan-started` for a scan of `kind` (`check`, `rescan`, ...).
    pub fn started(&mut self, kind: &str) -> Result<(), Error> {
        let ev = self.factory.scan_started(kind);
        self.keep(vec![ev])
    }

    /// `fim-baseline-tampered` for the baseline at `db` when `e` is a
    /// refused seal (`None` for any other error). It names no baseline: the
    /// one refused is not vouched for, and the one held is not the one meant.
    pub fn tampered_event(&self, db: &Path, e: &Error) -> Option<Event> {
        let Error::Seal { reason, detail, .. } = e else {
            return None;
        };
        let path = db.as_os_str().as_encoded_bytes();
        Some(self.factory.unnamed().tampered(path, reason.name(), detail))
    }

    /// A one-shot run refused the baseline at `db` (`e`): the tampered event
    /// is delivered at once, before the run exits.
    pub fn refused(&mut self, db: &Path, e: &Error) -> Result<(), Error> {
        if let Some(ev) = self.tampered_event(db, e) {
            self.keep(vec![ev])?;
            self.deliver_before_exit()?;
        }
        Ok(())
    }

    /// The events of a finished comparison: one per drift record, then
    /// `fim-scan-finished`, kept in batches (not delivered yet).
    pub fn comparison(&mut self, kind: &str, c: &Comparison) -> Result<(), Error> {
        let mut batch = Vec::with_capacity(EVENTS_PER_TRANSACTION);
        c.each_drift(|d| {
            batch.push(self.factory.drift(&d));
            batch.extend(self.factory.finding(&d));
            if batch.len() >= EVENTS_PER_TRANSACTION {
                self.keep(std::mem::take(&mut batch))?;
            }
            Ok(())
        })?;
        batch.push(self.factory.scan_finished(kind, c));
        self.keep(batch)
    }

    /// `fim-celery-config` for each finding of the audit of the files rules
    /// mark as Celery configuration.
    pub fn audit(&self, audit: Option<&crate::audit::Audit>) -> Vec<Event> {
        audit.map_or(Vec::new(), |a| {
            a.findings
                .iter()
                .map(|f| self.factory.audit_finding(f))
                .collect()
        })
    }

    /// `fim-cert-expired` and `fim-cert-expiring` for the certificates of
    /// `files` that expire within `window`.
    pub fn certificates(
        &self,
        files: &[crate::certs::CertFile],
        window: std::time::Duration,
    ) -> Vec<Event> {
        let now = crate::units::now_ns() / 1_000_000_000;
        crate::certs::due(files, now, window.as_secs() as i64)
            .into_iter()
            .map(|(f, c, s)| self.factory.certificate(&f.path, c, s, now))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::super::sink::SinkError;
    use super::*;

    /// What a test sink received, and whether it takes more.
    #[derive(Default)]
    struct Inbox {
        got: Vec<String>,
        down: bool,
    }

    struct Shared(Rc<RefCell<Inbox>>);

    impl Sink for Shared {
        fn send(&mut self, event: &Event) -> Result<(), String> {
            let mut inbox = self.0.borrow_mut();
            if inbox.down {
                return Err("connection refused".into());
            }
            inbox.got.push(event.kind.clone());
            Ok(())
        }

        fn flush(&mut self) -> Result<(), SinkError> {
            Ok(())
        }
    }

    fn courier(dir: &Path) -> (Courier<Outbox>, Rc<RefCell<Inbox>>) {
        let inbox = Rc::new(RefCell::new(Inbox::default()));
        let spec = SinkSpec {
            url: "test://".into(),
            key: "test://".into(),
        };
        let sink: Box<dyn Sink> = Box::new(Shared(Rc::clone(&inbox)));
        let outbox = Outbox::open(&dir.join("b.db")).unwrap();
        let factory = EventFactory::new("web1", Path::new("b.db"), None);
        (
            Courier::with_sinks(outbox, vec![(spec, sink)], factory),
            inbox,
        )
    }

    fn started(c: &Courier<Outbox>) -> Event {
        c.factory().scan_started("check")
    }

    #[test]
    fn events_reach_the_sink_in_order_and_leave_the_outbox() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, inbox) = courier(dir.path());
        let events = vec![started(&c), c.factory().overflow("x")];
        c.send(events).unwrap();
        assert_eq!(
            inbox.borrow().got,
            ["fim-scan-started", "fim-watch-overflow"]
        );
        assert_eq!(c.store().len().unwrap(), 0);
        assert!(c.take_warnings().is_empty());
    }

    #[test]
    fn a_refusing_sink_is_backed_off_and_nothing_is_lost() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, inbox) = courier(dir.path());
        inbox.borrow_mut().down = true;
        c.send(vec![started(&c)]).unwrap();
        let w = c.take_warnings();
        assert!(
            matches!(&w[..], [Warning::Undelivered { retry_in: Some(d), stopped, .. }]
                if *d == FIRST_BACKOFF && stopped.waiting == 1),
            "{w:?}"
        );
        assert!(w[0].to_string().contains("trying again in 1s"), "{}", w[0]);
        let first_retry = c.retry_at().expect("a retry is due");
        // While backing off, events are kept, not sent.
        inbox.borrow_mut().down = false;
        c.send(vec![c.factory().overflow("y")]).unwrap();
        assert!(inbox.borrow().got.is_empty());
        assert_eq!(c.store().len().unwrap(), 2);
        // Down again at the retry: the wait doubles.
        inbox.borrow_mut().down = true;
        c.retry().unwrap();
        assert!(c.retry_at().unwrap() > first_retry);
        let w = c.take_warnings();
        assert!(w[0].to_string().contains("trying again in 2s"), "{}", w[0]);
        // Back: everything, in order, and the backoff is over.
        inbox.borrow_mut().down = false;
        c.retry().unwrap();
        assert_eq!(
            inbox.borrow().got,
            ["fim-scan-started", "fim-watch-overflow"]
        );
        assert_eq!(c.retry_at(), None);
        assert_eq!(c.store().len().unwrap(), 0);
    }

    #[test]
    fn a_one_shot_run_leaves_refused_events_to_flush() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, inbox) = courier(dir.path());
        inbox.borrow_mut().down = true;
        c.started("check").unwrap();
        c.deliver_before_exit().unwrap();
        let w = c.take_warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        let db = dir.path().join("b.db");
        let hint = format!("`tripseal flush --db {}` sends them", db.display());
        assert!(w[0].to_string().ends_with(&hint), "{}", w[0]);
        assert_eq!(c.store().len().unwrap(), 1);
    }
}
