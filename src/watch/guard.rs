//! The daemon's watch over its own baseline file and the rollback record
//! beside it: the daemon compares with what it verified, whatever the file
//! holds later, and a file that no longer holds that is said, as
//! `fim-baseline-tampered` (`changed-under-daemon`), within seconds and at
//! every rescan while it lasts.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::baseline::Baseline;
use crate::files::{Companion, name_bytes, parent_dir};
use crate::seal;

/// How long the file at `--db` may differ from what was verified before
/// that is reported: an operator who installs a signed generation and
/// reloads at once is not reported.
pub const BASELINE_GRACE: Duration = Duration::from_secs(2);

pub struct BaselineGuard {
    db: PathBuf,
    /// The directory `--db` is in (device, inode), to know its notifications.
    db_dir: Option<(u64, u64)>,
    /// The file may no longer hold what was verified: since when.
    suspect: Option<Instant>,
    /// What was last reported, while it lasts.
    problem: Option<String>,
    /// Why `<db>.accepted` could not be written, when it could not.
    record_unwritable: Option<String>,
}

impl BaselineGuard {
    pub fn new(db: &Path) -> BaselineGuard {
        BaselineGuard {
            db: db.to_path_buf(),
            db_dir: std::fs::metadata(parent_dir(db))
                .ok()
                .map(|m| (m.dev(), m.ino())),
            suspect: None,
            problem: None,
            record_unwritable: None,
        }
    }

    /// Whether a notification concerns the file at `--db` itself, or the
    /// record of the generation accepted for it.
    pub fn concerns(&self, p: &Path) -> bool {
        if !matches!(
            Companion::of(name_bytes(&self.db), name_bytes(p)),
            Some(Companion::Baseline | Companion::Accepted)
        ) {
            return false;
        }
        let dir = p.parent().filter(|d| !d.as_os_str().is_empty());
        std::fs::metadata(dir.unwrap_or(Path::new(".")))
            .is_ok_and(|m| Some((m.dev(), m.ino())) == self.db_dir)
    }

    /// The file was touched at `now`: it is looked at after the grace.
    pub fn suspect(&mut self, now: Instant) {
        self.suspect.get_or_insert(now);
    }

    /// When the file is due to be looked at.
    pub fn due_at(&self) -> Option<Instant> {
        self.suspect.map(|t| t + BASELINE_GRACE)
    }

    /// The file now holds a newly verified generation.
    pub fn reset(&mut self) {
        self.suspect = None;
        self.problem = None;
    }

    /// Compares the file at `--db`, and the rollback record, with
    /// `baseline` (verified, with `digest`). Returns what to report: a new
    /// difference always, the same one again only when `again`.
    pub fn look(
        &mut self,
        baseline: &Baseline,
        digest: Option<[u8; 32]>,
        again: bool,
    ) -> Option<String> {
        self.suspect = None;
        let image = baseline.image()?;
        let generation = baseline.header().generation;
        // Both, each said: the file, and the record beside it.
        let file = image.still_at(&self.db);
        let record = self.check_record(generation, digest, file.is_ok());
        let problems: Vec<String> = [file, record].into_iter().filter_map(Result::err).collect();
        if problems.is_empty() {
            self.problem = None;
            return None;
        }
        let what = problems.join("; ");
        if !again && self.problem.as_ref() == Some(&what) {
            return None;
        }
        self.problem = Some(what.clone());
        Some(format!(
            "the baseline file changed while the daemon runs ({what}); drift is still \
             measured against generation {generation}, as verified at start or at the \
             last reload; to take a new generation, sign it and send SIGHUP \
             (systemctl reload tripseal-watch)"
        ))
    }

    /// The rollback record must still vouch for the generation held: one
    /// deleted, garbled or set back is said, and written again from what
    /// the daemon verified, so that the next `check` still refuses a
    /// rollback. One raised above it while the file (`file_held`) still
    /// holds that generation is said and written again too: left, it would
    /// have the next check refuse the real baseline as a rollback.
    fn check_record(
        &mut self,
        generation: i64,
        digest: Option<[u8; 32]>,
        file_held: bool,
    ) -> Result<(), String> {
        let Some(digest) = digest else {
            return Ok(()); // the seal was skipped: no record is kept
        };
        let found = seal::read_accepted(&seal::accepted_state_path(&self.db));
        let what = match &found {
            Ok(Some(g)) if *g == generation => return Ok(()),
            // The file changed too (said already): a newer generation may
            // be on its way, checked before the reload.
            Ok(Some(g)) if *g > generation && !file_held => return Ok(()),
            Ok(Some(g)) if *g > generation => format!(
                "its rollback record says generation {g}, above generation {generation}, which \
                 the file still holds as verified: the next check would refuse the real \
                 baseline as a rollback"
            ),
            Ok(Some(g)) => format!("its rollback record says generation {g}, below {generation}"),
            Ok(None) => "its rollback record was deleted".to_string(),
            Err(e) => format!("its rollback record {e}"),
        };
        match seal::record_accepted(&self.db, generation, &digest) {
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
}
