//! Which changed paths are due to be re-read: a burst of writes to one path
//! becomes one re-read once the path has been quiet for [`SETTLE`], and a
//! path that never goes quiet is re-read after [`SETTLE_MAX`] anyway.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the changes must pause before they are re-read.
pub const SETTLE: Duration = Duration::from_millis(30);
/// The longest a busy path waits to be re-read.
pub const SETTLE_MAX: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Debounce {
    pending: BTreeSet<PathBuf>,
    /// When the oldest change not yet re-read came.
    first: Option<Instant>,
    /// When the newest change came.
    last: Option<Instant>,
}

impl Debounce {
    /// A change to `path` at `now`.
    pub fn note(&mut self, path: PathBuf, now: Instant) {
        self.pending.insert(path);
        self.touch(now);
    }

    /// A change whose paths are not re-read (tripseal's own files, the
    /// baseline) still delays the re-read of the others: it is one burst.
    pub fn touch(&mut self, now: Instant) {
        self.last = Some(now);
        self.first.get_or_insert(now);
    }

    /// When the paths noted so far are due, if any are.
    pub fn due_at(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        Some((last + SETTLE).min(first + SETTLE_MAX))
    }

    /// The paths to re-read, if they are due at `now`; they are forgotten.
    pub fn take_due(&mut self, now: Instant) -> Option<BTreeSet<PathBuf>> {
        if self.due_at()? > now {
            return None;
        }
        Some(self.take())
    }

    /// Every path noted, due or not (a shutdown, a full rescan).
    pub fn take(&mut self) -> BTreeSet<PathBuf> {
        self.first = None;
        self.last = None;
        std::mem::take(&mut self.pending)
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_is_one_re_read_after_it_pauses() {
        let t0 = Instant::now();
        let mut d = Debounce::default();
        assert_eq!(d.due_at(), None);
        for i in 0..10 {
            d.note(PathBuf::from("/a"), t0 + ms(i * 10));
        }
        d.note(PathBuf::from("/b"), t0 + ms(95));
        assert_eq!(d.len(), 2);
        assert_eq!(d.due_at(), Some(t0 + ms(95) + SETTLE));
        assert_eq!(d.take_due(t0 + ms(100)), None);
        let due = d.take_due(t0 + ms(95) + SETTLE).unwrap();
        assert_eq!(due.len(), 2);
        assert_eq!(d.len(), 0);
        assert_eq!(d.due_at(), None);
    }

    #[test]
    fn a_path_that_never_pauses_is_re_read_anyway() {
        let t0 = Instant::now();
        let mut d = Debounce::default();
        let mut t = t0;
        while t < t0 + SETTLE_MAX {
            d.note(PathBuf::from("/busy"), t);
            t += ms(10);
        }
        assert_eq!(d.due_at(), Some(t0 + SETTLE_MAX));
        assert!(d.take_due(t0 + SETTLE_MAX).is_some());
    }

    #[test]
    fn own_files_delay_but_are_not_re_read() {
        let t0 = Instant::now();
        let mut d = Debounce::default();
        d.note(PathBuf::from("/a"), t0);
        d.touch(t0 + ms(20));
        assert_eq!(d.due_at(), Some(t0 + ms(20) + SETTLE));
        assert_eq!(
            d.take_due(t0 + ms(60))
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [PathBuf::from("/a")]
        );
    }
}
