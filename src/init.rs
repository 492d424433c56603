//! `init`: the first baseline of what the rules select.
//!
//! Guarantees: one writer per baseline path (the lock is taken before anything
//! is scanned); an existing baseline is replaced only when asked, and only by
//! the rename at the very end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::baseline::{BaselineLock, BaselineWriter, Header};
use crate::error::Error;
use crate::escape::escape_path;
use crate::progress::Progress;
use crate::rules::Rules;
use crate::scan::{OwnOutputs, ScanHints};

/// What `init` needs besides the rules.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub db: PathBuf,
    /// Replace a baseline that already exists at `db`.
    pub replace: bool,
    pub host: String,
}

/// Writes a new baseline of what `rules` select to `opts.db`.
pub fn init(
    rules: &Rules,
    opts: &InitOptions,
    progress: &dyn Progress,
) -> Result<crate::pipeline::ScanSummary, Error> {
    let start = Instant::now();
    check_target(&opts.db, opts.replace)?;
    let lock = BaselineLock::acquire(&opts.db)?;
    // Checked again under the lock: another init may have finished meanwhile.
    check_target(&opts.db, opts.replace)?;
    let header = Header::new(rules, opts.host.clone(), crate::units::now_ns(), 1);
    let mut writer = BaselineWriter::create(&opts.db, &header, rules, lock)?;
    let own = OwnOutputs::for_baseline(&opts.db);
    let mut summary =
        crate::pipeline::fill(&mut writer, rules, &own, &ScanHints::default(), progress)?;
    summary.db = opts.db.clone();
    writer.finish(false)?;
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
