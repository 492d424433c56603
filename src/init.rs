//! `init`: the first baseline of what the rules select.
//!
//! Guarantees: one writer per baseline path (the lock is taken before anything
//! is scanned); an existing baseline is replaced only when asked, and only by
//! the rename at the very end.

use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::baseline::{BaselineLock, BaselineWriter, Header};
use crate::error::Error;
use crate::escape::{escape_bytes, escape_path};
use crate::progress::Progress;
use crate::rules::Rules;
use crate::scan::{OwnOutputs, Relocation, ScanHints};

/// What `init` needs besides the rules.
#[derive(Debug, Clone)]
pub struct InitOptions {
    pub db: PathBuf,
    /// Replace a baseline that already exists at `db`.
    pub replace: bool,
    pub host: String,
    /// `--root DIR --as PREFIX`: a tree not installed yet.
    pub relocate: Option<Relocation>,
}

/// Writes a new baseline of what `rules` select to `opts.db`.
pub fn init(
    rules: &Rules,
    opts: &InitOptions,
    progress: &dyn Progress,
) -> Result<crate::pipeline::ScanSummary, Error> {
    let start = Instant::now();
    if let Some(r) = &opts.relocate {
        check_relocation(rules, r)?;
    }
    check_target(&opts.db, opts.replace)?;
    let lock = BaselineLock::acquire(&opts.db)?;
    // Checked again under the lock: another init may have finished meanwhile.
    check_target(&opts.db, opts.replace)?;
    let header = Header::new(rules, opts.host.clone(), crate::units::now_ns(), 1);
    let mut writer = BaselineWriter::create(&opts.db, &header, rules, lock)?;
    let own = OwnOutputs::for_baseline(&opts.db);
    let hints = ScanHints {
        relocate: opts.relocate.clone(),
        ..ScanHints::default()
    };
    let mut summary = crate::pipeline::fill(&mut writer, rules, &own, &hints, progress)?;
    summary.db = opts.db.clone();
    crate::pipeline::warn_unnamed(rules, &summary);
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

/// A tree baselined under the paths it will have (`--root DIR --as
/// PREFIX`) must be a role's: no host will have its inodes and change times.
/// What the rules select outside PREFIX is not in the tree; that is said,
/// and a selection with nothing inside PREFIX is refused.
pub fn check_relocation(rules: &Rules, r: &Relocation) -> Result<(), Error> {
    if rules.role.is_none() {
        return Err(Error::invalid(format!(
            "--root makes a baseline of a tree that is not installed yet, whose inodes and \
             change times no host will have: name the role it is for in the rules \
             (role = \"NAME\" in {}, or --var role=NAME where the rules say role = \"${{role}}\")",
            crate::escape::escape_bytes(rules.source.name.as_bytes())
        )));
    }
    let roots = r.roots(rules);
    for glob in &roots.outside {
        log::warn!(
            "the rules select {}, outside {}: that is not in {}, and is not recorded",
            escape_bytes(glob.as_bytes()),
            escape_path(&r.prefix),
            escape_path(&r.root)
        );
    }
    for glob in &roots.above {
        log::warn!(
            "the rules select {}, which reaches above {}: only what is below it is in {} and \
             recorded",
            escape_bytes(glob.as_bytes()),
            escape_path(&r.prefix),
            escape_path(&r.root)
        );
    }
    for link in &roots.through_links {
        log::warn!(
            "{} is a symlink in the tree: what the rules select beyond it is not in the tree, \
             and is not read (the link itself is recorded where a rule selects it)",
            escape_path(link)
        );
    }
    if roots.walks.is_empty() {
        return Err(Error::invalid(format!(
            "the rules select nothing below {}: check --as, or the rules' paths",
            escape_path(&r.prefix)
        )));
    }
    Ok(())
}
