//! `init`, and the scan-into-a-baseline pipeline that `check` and `update`
//! share with it.
//!
//! Guarantees: one writer per baseline path (the lock is taken before anything
//! is scanned); an existing baseline is replaced only when asked, and only by
//! the rename at the very end; hashing runs on rayon's threads while the
//! calling thread alone writes SQLite, with a bounded queue between them.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::baseline::{BaselineLock, BaselineWriter, Header};
use crate::error::Error;
use crate::escape::escape_path;
use crate::progress::Progress;
use crate::rules::Rules;
use crate::scan::{self, FileKind, OwnOutputs, Problem, ScanHints};

/// Batches in flight between the hashers and the SQLite writer (each at most
/// a few hundred entries: see `scan`).
const QUEUE_BATCHES: usize = 16;
/// Problems kept for the report; the rest are counted and stay in the baseline.
const PROBLEM_SAMPLES: usize = 20;

/// What `init` needs besides the rules.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub db: PathBuf,
    /// Replace a baseline that already exists at `db`.
    pub replace: bool,
    pub host: String,
}

/// An entry with a problem, kept for the report.
pub type ProblemSample = (PathBuf, Problem);

/// What a scan into a baseline file did.
#[derive(Debug, Default)]
pub struct ScanSummary {
    /// The baseline written (init, update) or checked against (check).
    pub db: PathBuf,
    pub entries: u64,
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub other: u64,
    pub bytes_hashed: u64,
    /// `check --fast`: entries whose content was taken from the baseline.
    pub trusted: u64,
    pub problems: u64,
    pub problem_samples: Vec<ProblemSample>,
    pub elapsed: Duration,
}

/// Writes a new baseline of what `rules` select to `opts.db`.
pub fn init(
    rules: &Rules,
    opts: &InitOptions,
    progress: &dyn Progress,
) -> Result<ScanSummary, Error> {
    let start = Instant::now();
    check_target(&opts.db, opts.replace)?;
    let lock = BaselineLock::acquire(&opts.db)?;
    // Checked again under the lock: another init may have finished meanwhile.
    check_target(&opts.db, opts.replace)?;
    let header = Header::new(rules, opts.host.clone(), crate::units::now_ns(), 1);
    let mut writer = BaselineWriter::create(&opts.db, &header, rules, lock)?;
    let own = OwnOutputs::for_baseline(&opts.db);
    let mut summary = fill(&mut writer, rules, &own, &ScanHints::default(), progress)?;
    summary.db = opts.db.clone();
    writer.finish(false)?;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Scans what `rules` select, except tripseal's `own` files, into `writer`.
pub fn fill(
    writer: &mut BaselineWriter,
    rules: &Rules,
    own: &OwnOutputs,
    hints: &ScanHints<'_>,
    progress: &dyn Progress,
) -> Result<ScanSummary, Error> {
    let start = Instant::now();
    let mut summary = ScanSummary::default();
    let (tx, rx) = mpsc::sync_channel(QUEUE_BATCHES);
    let written = std::thread::scope(|s| {
        s.spawn(move || {
            // A failed send means the writer gave up; the rest is not wanted.
            scan::scan(rules, own, hints, |batch| tx.send(batch).is_ok());
        });
        for entry in rx.into_iter().flatten() {
            writer.insert(&entry)?;
            summary.entries += 1;
            match entry.meta.map(|m| m.kind) {
                Some(FileKind::File) => summary.files += 1,
                Some(FileKind::Dir) => summary.dirs += 1,
                Some(FileKind::Symlink) => summary.symlinks += 1,
                _ => summary.other += 1,
            }
            if entry.trusted {
                summary.trusted += 1;
            } else if entry.hash.is_some() {
                summary.bytes_hashed += entry.meta.map_or(0, |m| m.size);
            }
            if let Some(p) = entry.problem {
                summary.problems += 1;
                if summary.problem_samples.len() < PROBLEM_SAMPLES {
                    summary.problem_samples.push((entry.path, p));
                }
            }
            progress.update(summary.entries, summary.bytes_hashed);
        }
        Ok::<(), Error>(())
    });
    progress.finish();
    written?;
    summary.problem_samples.sort_by(|a, b| a.0.cmp(&b.0));
    summary.elapsed = start.elapsed();
    Ok(summary)
}

fn check_target(db: &Path, replace: bool) -> Result<(), Error> {
    match std::fs::symlink_metadata(db) {
        Ok(m) if m.file_type().is_symlink() => Err(Error::invalid(format!(
            "{} is a symlink; give the real path of the baseline with --db",
            escape_path(db)
        ))),
        Ok(_) if !replace => Err(Error::invalid(format!(
            "a baseline already exists at {}; pass --force to replace it with a new \
             generation-1 baseline, `tripseal update` to accept changes as the next \
             generation, or choose another --db",
            escape_path(db)
        ))),
        _ => Ok(()),
    }
}
