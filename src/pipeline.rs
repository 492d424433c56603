//! The scan-into-a-baseline pipeline that `init`, `check` and `update`
//! share: hashing runs on rayon's threads while the calling thread alone
//! writes SQLite, with a bounded queue between them, and the summary counts
//! what was written.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::attrs::Attr;
use crate::baseline::BaselineWriter;
use crate::error::Error;
use crate::progress::Progress;
use crate::rules::Rules;
use crate::scan::{self, FileKind, OwnOutputs, Problem, ScanHints};

/// Batches in flight between the hashers and the SQLite writer (each at most
/// a few hundred entries: see `scan`).
const QUEUE_BATCHES: usize = 16;
/// Problems kept for the report; the rest are counted and stay in the baseline.
const PROBLEM_SAMPLES: usize = 20;

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
    /// `check --fast`: entries whose stat fields matched, re-read anyway as
    /// part of the `--reread` share.
    pub reread: u64,
    pub problems: u64,
    pub problem_samples: Vec<ProblemSample>,
    /// Entries whose rule compares the owner's or group's name, owned by an
    /// id that has none here.
    pub unnamed: u64,
    /// Regular files whose name says certificate, with the BLAKE3 the scan
    /// recorded (`None`: `--fast` took it from the baseline unread; see
    /// [`crate::certs`]).
    pub certificates: Vec<(PathBuf, Option<[u8; 32]>)>,
    /// Regular files of rules marked `audit = "celery"`.
    /// (`None`: as for certificates, `--fast` took it from the baseline.)
    pub audited: Vec<(PathBuf, Option<[u8; 32]>)>,
    pub elapsed: Duration,
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
            let named = |a: Attr, name: &Option<String>| !entry.attrs.contains(a) || name.is_some();
            if entry.meta.is_some()
                && entry.problem.is_none()
                && !(named(Attr::Owner, &entry.owner) && named(Attr::Group, &entry.group))
            {
                summary.unnamed += 1;
            }
            if entry.trusted {
                summary.trusted += 1;
            } else if entry.hash.is_some() {
                summary.bytes_hashed += entry.meta.map_or(0, |m| m.size);
            }
            if let (Some(m), None) = (entry.meta, &entry.problem)
                && m.kind == FileKind::File
                && (entry.hash.is_some() || entry.trusted)
                && m.size <= crate::certs::MAX_CERT_FILE_BYTES
                && crate::certs::is_candidate(&entry.path)
            {
                summary.certificates.push((entry.path.clone(), entry.hash));
            }
            if entry.meta.is_some_and(|m| m.kind == FileKind::File)
                && entry.problem.is_none()
                && rules
                    .rules
                    .get(entry.rule)
                    .is_some_and(|r| r.audit.is_some())
            {
                summary.audited.push((entry.path.clone(), entry.hash));
            }
            if let Some(p) = entry.problem {
                summary.problems += 1;
                if summary.problem_samples.len() < PROBLEM_SAMPLES {
                    summary.problem_samples.push((entry.path, p));
                }
            }
            progress.update(summary.entries, summary.bytes_hashed);
            crate::progress::tick();
        }
        Ok::<(), Error>(())
    });
    progress.finish();
    written?;
    summary.problem_samples.sort_by(|a, b| a.0.cmp(&b.0));
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Says when a role baseline records owners without a name: every host of
/// the role compares names, and would report those entries.
pub fn warn_unnamed(rules: &Rules, summary: &ScanSummary) {
    if rules.role.is_some() && summary.unnamed > 0 {
        log::warn!(
            "{} entries belong to a user or group that has no name on this machine: a role \
             baseline compares owners by name, so every host would report them; give the tree \
             the owners it has on the hosts (chown, or build it as that user), then make the \
             baseline again",
            summary.unnamed
        );
    }
}
