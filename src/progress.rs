//! Progress of long work, injected by the caller.
//!
//! The library reports counts through [`Progress`]; the binary chooses a
//! [`TerminalProgress`] when a person is watching standard error and
//! [`NoProgress`] otherwise (cron, pipes), so logs never carry redraws.

use std::cell::Cell;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::units::human_bytes;

/// A count that moves whenever this process makes progress: a chunk
/// hashed, an entry written or compared, an event handed to a sink, a turn
/// of the daemon's loop. A watchdog tells a slow process from a hung one by
/// it (see `watch/systemd.rs`).
static WORK: AtomicU64 = AtomicU64::new(0);

/// One step of progress.
pub fn tick() {
    WORK.fetch_add(1, Ordering::Relaxed);
}

/// The steps so far.
pub fn ticks() -> u64 {
    WORK.load(Ordering::Relaxed)
}

/// A reader that counts each read as progress (a baseline read or hashed
/// whole: up to 4 GiB).
pub struct Ticking<R>(pub R);

impl<R: std::io::Read> std::io::Read for Ticking<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        tick();
        self.0.read(buf)
    }
}

/// Receives running totals; implementations decide when to show them.
pub trait Progress {
    fn update(&self, entries: u64, bytes: u64);
    /// Called once when the work is done, before any summary is printed.
    fn finish(&self);
}

/// Shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn update(&self, _: u64, _: u64) {}
    fn finish(&self) {}
}

/// How often the terminal line is redrawn at most.
const REDRAW_INTERVAL: Duration = Duration::from_millis(200);

/// One line on standard error, redrawn in place: entries, bytes, rate.
pub struct TerminalProgress {
    start: Instant,
    last: Cell<Option<Instant>>,
    drawn: Cell<bool>,
}

impl TerminalProgress {
    pub fn new() -> Self {
        TerminalProgress {
            start: Instant::now(),
            last: Cell::new(None),
            drawn: Cell::new(false),
        }
    }
}

impl Default for TerminalProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl Progress for TerminalProgress {
    fn update(&self, entries: u64, bytes: u64) {
        let now = Instant::now();
        if self
            .last
            .get()
            .is_some_and(|t| now.duration_since(t) < REDRAW_INTERVAL)
        {
            return;
        }
        self.last.set(Some(now));
        let secs = now.duration_since(self.start).as_secs_f64().max(1e-3);
        let rate = human_bytes((bytes as f64 / secs) as u64);
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r\x1b[2K{entries} entries, {} hashed, {rate}/s, {:.0} s",
            human_bytes(bytes),
            secs
        );
        let _ = err.flush();
        self.drawn.set(true);
    }

    fn finish(&self) {
        if self.drawn.get() {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
