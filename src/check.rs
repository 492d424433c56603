//! `check`, `update` and `diff`: drift between a baseline and the present, or
//! between two baselines.
//!
//! Guarantees: `check` scans with the rules stored in the baseline, never the
//! rules file on the disk (which is itself monitored); its scan goes to a
//! snapshot beside the baseline that is removed afterwards; `update` writes
//! generation N+1 atomically, keeps generation N as `<db>.prev`, and refuses a
//! scan with unreadable entries unless told to accept them.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::baseline::stat_cache::{self, CacheWriter};
use crate::baseline::{
    self, Baseline, BaselineLock, BaselineWriter, Header, Keep, Snapshot, StatIndex,
};
use crate::compare::{self, Drift, DriftCounts, DriftKind};
use crate::error::Error;
use crate::escape::escape_path;
use crate::files::sibling;
use crate::origin::{self, Evidence, Origin, Query, Sources};
use crate::pipeline::{self, ScanSummary};
use crate::progress::Progress;
use crate::rules::{Rules, RulesSource};
use crate::scan::{OwnOutputs, Relocation, ScanHints};
use crate::seal::{self, SealPolicy};

/// Two entry sets and how they differ. `new` may be a check's snapshot, which
/// lives as long as this does.
pub struct Comparison {
    /// Shared: the daemon compares every rescan with the one baseline it
    /// verified, never with a copy read again from the path.
    pub old: Rc<Baseline>,
    pub new: Baseline,
    pub counts: DriftCounts,
    /// The scan that made `new`, for `check` and `update`.
    pub scan: Option<ScanSummary>,
    pub fast: bool,
    /// The canonical digest of `old`, when its seal was verified.
    pub old_digest: Option<[u8; 32]>,
    /// When `old`'s seal expires (`check`; `None`: never, or not verified).
    pub expires_ns: Option<i64>,
    /// The origin of each drifted path that was explained.
    origins: HashMap<PathBuf, Origin>,
    /// Python start-up hooks and bytecode among the drifted paths.
    findings: HashMap<PathBuf, crate::python::Finding>,
    /// The certificates among what was scanned (present content only).
    pub certificates: Vec<crate::certs::CertFile>,
    /// The audit of the files rules mark as Celery configuration.
    pub audit: Option<crate::audit::Audit>,
    _snapshot: Option<Snapshot>,
}

/// Where the origins of drift come from.
#[derive(Clone, Copy, Debug)]
enum Explain<'a> {
    Nothing,
    /// The package records of this host, for the content at each path now
    /// (`check`, `update`, the daemon's rescans).
    Present(&'a Sources),
    /// What `update` recorded in the new baseline (`diff`).
    Recorded,
}

impl Comparison {
    /// Counts the drift between `old` and `new` (one streaming pass), and
    /// writes the entries that did not drift into a role baseline's stat
    /// `cache` in the same pass.
    fn of(
        (old, old_digest): (Rc<Baseline>, Option<[u8; 32]>),
        new: Baseline,
        scan: Option<ScanSummary>,
        fast: bool,
        snapshot: Option<Snapshot>,
        mut cache: Option<CacheWriter>,
        explain: Explain,
    ) -> Result<Comparison, Error> {
        let read_started = new.header().created_ns;
        let caching = cache.is_some();
        let mut row = |path: &Path, meta: &crate::scan::Meta, attrs| {
            if let Some(w) = cache.as_mut()
                && StatIndex::settled(meta.ctime_ns, read_started)
            {
                w.row(path, meta, attrs);
            }
        };
        let mut queries = Vec::new();
        let mut findings = HashMap::new();
        let counts = compare::compare_with(
            &old,
            &new,
            |d| {
                if matches!(explain, Explain::Present(_)) {
                    queries.push(Query::of(&d));
                    if let Some(f) = crate::python::inspect(&d) {
                        findings.insert(d.path.clone(), f);
                    }
                }
                Ok(())
            },
            caching.then_some(&mut row as &mut compare::Unchanged<'_>),
        )?;
        if let Some(w) = cache {
            w.finish();
        }
        let origins = match explain {
            Explain::Nothing => HashMap::new(),
            Explain::Present(sources) => {
                let started = std::time::Instant::now();
                // The archive's keys are trusted as the verified generation N
                // records them, never as an unverified one does.
                let anchor = match old_digest {
                    Some(_) => Ok(&*old),
                    None => Err(
                        "the seal of generation N was skipped or did not verify (give its \
                         signers' keys with --trust)",
                    ),
                };
                let found = origin::explain(&queries, sources, anchor);
                // benches/origin.sh reads this line.
                log::debug!(
                    "origin: {} drifted paths explained in {:.1} ms",
                    queries.len(),
                    started.elapsed().as_secs_f64() * 1000.0
                );
                found
            }
            Explain::Recorded => new.recorded_origins()?,
        };
        // What --fast did not read again is generation N's content.
        let hashed = |files: &[(PathBuf, Option<[u8; 32]>)]| -> Result<Vec<_>, Error> {
            let mut known = Vec::with_capacity(files.len());
            for (path, hash) in files {
                let hash = match hash {
                    Some(h) => Some(*h),
                    None => old.entry(path)?.and_then(|e| e.hash),
                };
                known.extend(hash.map(|h| (path.clone(), h)));
            }
            Ok(known)
        };
        let certificates = match (explain, &scan) {
            (Explain::Present(_), Some(scan)) => {
                crate::certs::inspect(&hashed(&scan.certificates)?)
            }
            _ => Vec::new(),
        };
        let audit = match (explain, &scan) {
            (Explain::Present(_), Some(scan)) if !scan.audited.is_empty() => {
                Some(crate::audit::audit_files(&hashed(&scan.audited)?))
            }
            _ => None,
        };
        Ok(Comparison {
            old,
            new,
            counts,
            scan,
            fast,
            old_digest,
            expires_ns: None,
            origins,
            findings,
            certificates,
            audit,
            _snapshot: snapshot,
        })
    }

    /// Streams the drift records in path byte order, each with its origin
    /// where it was explained.
    pub fn each_drift(&self, mut f: impl FnMut(Drift) -> Result<(), Error>) -> Result<(), Error> {
        // The counting pass walked the same two files: nothing to stream.
        if DriftKind::ALL.iter().all(|&k| self.counts.of(k) == 0) {
            return Ok(());
        }
        let counts = compare::compare(&self.old, &self.new, |mut d| {
            d.origin = self.origins.get(&d.path).cloned();
            d.finding = self.findings.get(&d.path).cloned();
            f(d)
        })?;
        // Path order reads the files otherwise than the counting pass (by
        // directory, in chunks): the two must agree.
        if counts != self.counts {
            return Err(Error::Database {
                path: self.old.path().to_path_buf(),
                detail: format!(
                    "it and {} read otherwise in path order than in their own order: one of \
                     them is damaged or was not written by tripseal",
                    crate::escape::escape_path(self.new.path())
                ),
            });
        }
        Ok(())
    }
}

/// The rules a baseline was made with, as stored in it.
pub fn stored_rules(baseline: &Baseline) -> Result<Rules, Error> {
    let h = baseline.header();
    let source = RulesSource {
        name: format!("<rules stored in {}>", escape_path(baseline.path())),
        text: h.rules_text.clone(),
    };
    Rules::load(source, &h.rules_vars).map_err(|e| Error::Database {
        path: baseline.path().to_path_buf(),
        detail: format!("the rules stored in this baseline do not load ({e})"),
    })
}

/// `check --fast`: entries whose stat fields match what was recorded are
/// not read, except for a share re-read whatever they say.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fast {
    pub reread_percent: f64,
}

/// Scans what the baseline's own rules select and compares it with the
/// baseline. For a role baseline, also writes this host's stat cache.
pub fn check(
    db: &Path,
    seal: &SealPolicy,
    fast: Option<Fast>,
    sources: &Sources,
    host: &str,
    progress: &dyn Progress,
) -> Result<Comparison, Error> {
    let opened = seal::open_sealed(db, seal, true, crate::units::now_ns(), Keep::Memory)?;
    let expires_ns = opened.expires_ns;
    let mut c = scan_and_compare(
        (Rc::new(opened.baseline), opened.digest),
        db,
        (fast, true),
        sources,
        host,
        progress,
    )?;
    c.expires_ns = expires_ns;
    Ok(c)
}

/// The stat fields `--fast` trusts: a host's baseline holds them, signed; a
/// role baseline cannot (each host has its own), so they come from this
/// host's stat cache, which is used whole or not at all.
fn fast_index(
    old: &Baseline,
    role_digest: Option<[u8; 32]>,
    db: &Path,
    fast: Fast,
) -> Result<StatIndex, Error> {
    let mut index = StatIndex::new(fast.reread_percent);
    let Some(digest) = role_digest else {
        old.stat_index(&mut index)?;
        return Ok(index);
    };
    if let Err(why) = stat_cache::read(db, &digest, &mut index) {
        log::warn!(
            "check --fast: the stat cache {} is not used: {why}; this check reads every entry",
            escape_path(&stat_cache::path(db))
        );
        index = StatIndex::new(fast.reread_percent);
    }
    Ok(index)
}

/// Scans what `old`'s own rules select (its seal verified already, giving
/// `old_digest`) and compares it with `old`, the baseline read from `db`
/// (which is not read again).
pub fn rescan(
    old: (Rc<Baseline>, Option<[u8; 32]>),
    db: &Path,
    fast: Option<Fast>,
    sources: &Sources,
    host: &str,
    progress: &dyn Progress,
) -> Result<Comparison, Error> {
    scan_and_compare(old, db, (fast, false), sources, host, progress)
}

/// [`rescan`]; with `cache`, a role baseline's stat cache is written from
/// the comparison (a check's, not the daemon's).
fn scan_and_compare(
    (old, old_digest): (Rc<Baseline>, Option<[u8; 32]>),
    db: &Path,
    (fast, cache): (Option<Fast>, bool),
    sources: &Sources,
    host: &str,
    progress: &dyn Progress,
) -> Result<Comparison, Error> {
    let rules = stored_rules(&old)?;
    let header = next_header(&old, &rules, host);
    // What a role baseline's stat cache is bound to.
    let role = old.header().role.is_some() && (fast.is_some() || cache);
    let role_digest = match (role, old_digest) {
        (false, _) => None,
        (true, Some(d)) => Some(d),
        (true, None) => Some(seal::digest(&old)?),
    };
    let index = match fast {
        Some(f) => Some(fast_index(&old, role_digest, db, f)?),
        None => None,
    };
    let hints = ScanHints {
        growing_sizes: old.growing_sizes()?,
        known: index.as_ref().map(|i| i as &dyn crate::scan::KnownEntries),
        relocate: None,
    };
    let mut writer = BaselineWriter::create_snapshot(db, &header, &rules)?;
    let mut own = OwnOutputs::for_baseline(db);
    own.add(writer.path());
    let mut scan = pipeline::fill(&mut writer, &rules, &own, &hints, progress)?;
    scan.db = db.to_path_buf();
    scan.reread = index.as_ref().map_or(0, StatIndex::rereads);
    let (snapshot, new) = writer.finish_for_reading()?;
    let cache = role_digest
        .filter(|_| cache)
        .and_then(|digest| CacheWriter::create(db, &digest));
    Comparison::of(
        (old, old_digest),
        new,
        Some(scan),
        fast.is_some(),
        Some(snapshot),
        cache,
        Explain::Present(sources),
    )
}

/// A drift record `update --only-packaged` did not accept, and why.
pub type LeftOut = (Drift, String);

/// What `update` made: the comparison of generation N (now `<db>.prev`)
/// with N+1, and, with `--only-packaged`, the drift it left out.
pub struct Updated {
    pub comparison: Comparison,
    /// `--only-packaged`: the evidence asked for.
    pub only_packaged: Option<Evidence>,
    /// `--only-packaged`: each drift record not accepted, with why.
    pub left: Vec<LeftOut>,
}

/// Accepts the present state as generation N+1 (with `rules`, or the
/// baseline's own), keeping generation N as `<db>.prev`. With `relocate`,
/// the present state is a tree not installed yet (the next release). With
/// `only_packaged`, only drift whose content the owning package vouches
/// for at that evidence is accepted; everything else keeps its generation
/// N entry. The origins of the accepted drift are recorded in N+1 for
/// `diff`. apt's keyrings are trusted (to check packages through their
/// archive) only as generation N records them, and only when its seal
/// verifies with the keys of `trust`.
pub fn update(
    db: &Path,
    rules: Option<Rules>,
    (accept_errors, only_packaged): (bool, Option<Evidence>),
    relocate: Option<Relocation>,
    (sources, trust): (&Sources, &str),
    host: &str,
    progress: &dyn Progress,
) -> Result<Updated, Error> {
    let lock = BaselineLock::acquire(db)?;
    let old = Baseline::open(db)?;
    if only_packaged.is_some() && (rules.is_some() || relocate.is_some()) {
        return Err(Error::invalid(
            "--only-packaged keeps the baseline's own rules and its paths: it cannot be \
             combined with --rules or --root; run those updates apart",
        ));
    }
    let rules = match rules {
        Some(r) => r,
        None => stored_rules(&old)?,
    };
    if let Some(r) = &relocate {
        crate::init::check_relocation(&rules, r)?;
    }
    let header = next_header(&old, &rules, host);
    let hints = ScanHints {
        growing_sizes: old.growing_sizes()?,
        known: None,
        relocate,
    };
    // The package records describe this host's paths, not a release tree.
    let explain = match hints.relocate {
        Some(_) => Explain::Nothing,
        None => Explain::Present(sources),
    };
    // Generation N is trusted to anchor apt's keyrings only when its seal
    // verifies.
    let old_digest = match explain {
        Explain::Present(_) => match seal::verified_digest(&old, db, trust) {
            Ok(d) => Some(d),
            Err(e) => {
                log::info!("no package is checked through the archive: {e}");
                None
            }
        },
        _ => None,
    };
    let old = Rc::new(old);
    // Generation N+1 is compared with N before it is put in place, from the
    // two images in memory: the report says what was written, whatever is
    // at the path afterwards.
    let (snapshot, left, mut comparison) = match only_packaged {
        None => {
            let mut writer = BaselineWriter::create(db, &header, &rules, lock)?;
            let own = OwnOutputs::for_baseline(db);
            let mut scan = pipeline::fill(&mut writer, &rules, &own, &hints, progress)?;
            scan.db = db.to_path_buf();
            refuse_problems(&scan, accept_errors)?;
            pipeline::warn_unnamed(&rules, &scan);
            let snapshot = writer.finish_snapshot()?;
            let written = Baseline::open(snapshot.path())?;
            let c = Comparison::of(
                (Rc::clone(&old), old_digest),
                written,
                Some(scan),
                false,
                None,
                None,
                explain,
            )?;
            baseline::record_origins(snapshot.path(), &c.origins)?;
            (snapshot, Vec::new(), c)
        }
        Some(at) => {
            let mut scanner = BaselineWriter::create_snapshot(db, &header, &rules)?;
            let mut own = OwnOutputs::for_baseline(db);
            own.add(scanner.path());
            let mut scan = pipeline::fill(&mut scanner, &rules, &own, &hints, progress)?;
            scan.db = db.to_path_buf();
            // Entries that cannot be read are never accepted (they keep
            // generation N's), so they need no --accept-errors here.
            pipeline::warn_unnamed(&rules, &scan);
            let (scanned_file, scanned) = scanner.finish_for_reading()?;
            let mut present = Comparison::of(
                (Rc::clone(&old), old_digest),
                scanned,
                Some(scan),
                false,
                Some(scanned_file),
                None,
                explain,
            )?;
            let mut writer = BaselineWriter::create(db, &header, &rules, lock)?;
            let (accepted, left) = write_vouched(&present, &mut writer, at)?;
            let snapshot = writer.finish_snapshot()?;
            let origins: HashMap<PathBuf, Origin> = present
                .origins
                .iter()
                .filter(|(p, _)| accepted.contains(p.as_path()))
                .map(|(p, o)| (p.clone(), o.clone()))
                .collect();
            baseline::record_origins(snapshot.path(), &origins)?;
            let written = Baseline::open(snapshot.path())?;
            let mut c = Comparison::of(
                (Rc::clone(&old), None),
                written,
                present.scan.take(),
                false,
                None,
                None,
                Explain::Nothing,
            )?;
            c.origins = origins;
            (snapshot, left, c)
        }
    };
    snapshot.persist(true)?;
    // Generation N now lives at <db>.prev, and N+1 at <db>.
    drop(old);
    Rc::get_mut(&mut comparison.old)
        .expect("the comparison holds the only reference to generation N")
        .renamed(sibling(db, ".prev"));
    comparison.new.renamed(db.to_path_buf());
    Ok(Updated {
        comparison,
        only_packaged,
        left,
    })
}

fn refuse_problems(scan: &ScanSummary, accept_errors: bool) -> Result<(), Error> {
    if scan.problems > 0 && !accept_errors {
        let (path, problem) = &scan.problem_samples[0];
        return Err(Error::ScanProblems {
            count: scan.problems,
            first: format!(
                "{}: {}: {}",
                problem.kind(),
                escape_path(path),
                problem.reason()
            ),
        });
    }
    Ok(())
}

/// Writes generation N+1 of `--only-packaged`: each entry as scanned where
/// it did not drift or its package vouches for it, and as generation N had
/// it otherwise. Returns the paths accepted, and the drift left out.
fn write_vouched(
    present: &Comparison,
    writer: &mut BaselineWriter,
    at: Evidence,
) -> Result<(HashSet<PathBuf>, Vec<LeftOut>), Error> {
    let (old, new) = (&present.old, &present.new);
    let mut accepted = HashSet::new();
    let mut left = Vec::new();
    old.merge_with(new, crate::baseline::Order::Any, |a, b| {
        let drift = compare::drift_of(
            a.clone().map(|e| {
                let r = &old.rules()[e.rule];
                (e, r)
            }),
            b.clone().map(|e| {
                let r = &new.rules()[e.rule];
                (e, r)
            }),
        );
        let keep_new = match drift {
            None => true,
            Some(mut d) => {
                d.origin = present.origins.get(&d.path).cloned();
                match origin::vouches_for(&d, at) {
                    Ok(()) => {
                        accepted.insert(d.path);
                        true
                    }
                    Err(why) => {
                        left.push((d, why));
                        false
                    }
                }
            }
        };
        match (keep_new, a, b) {
            (true, _, Some(e)) => writer.insert_from(&e, new.rules()),
            (false, Some(e), _) => writer.insert_from(&e, old.rules()),
            _ => Ok(()),
        }
    })?;
    // Walked in the files' own order: shown in path order, as all drift is.
    left.sort_by(|(a, _), (b, _)| {
        (a.path.as_os_str().as_encoded_bytes()).cmp(b.path.as_os_str().as_encoded_bytes())
    });
    Ok((accepted, left))
}

/// Compares two baselines: the first, the trusted reference, must carry a
/// valid seal; the second is usually the new generation under review.
pub fn diff(old: &Path, new: &Path, seal: &SealPolicy) -> Result<Comparison, Error> {
    let reference = seal::open_sealed(old, seal, false, crate::units::now_ns(), Keep::Memory)?;
    Comparison::of(
        (Rc::new(reference.baseline), reference.digest),
        Baseline::open(new)?,
        None,
        false,
        None,
        None,
        Explain::Recorded,
    )
}

fn next_header(old: &Baseline, rules: &Rules, host: &str) -> Header {
    Header::new(
        rules,
        host.to_string(),
        crate::units::now_ns(),
        old.header().generation + 1,
    )
}
