//! Where drift comes from: whether a drifted path belongs to an installed
//! package (dpkg, or a Python distribution's `RECORD`), and whether its
//! present content is what that package shipped, with the strength of that
//! evidence.
//!
//! Guarantees:
//! - package records are read only when something drifted, in one pass over
//!   them for all the drifted paths (see [`explain`]), never per path;
//! - a verdict is about the content the drift record carries: the file is
//!   read again (never through a symlink, never a FIFO or a device), and
//!   when its BLAKE3 is no longer the scanned one the verdict is
//!   `unverified`, never a match;
//! - `matches-package` needs a positive match with a checksum the package
//!   records; a package that records none (a directory, a symlink, a file
//!   without a checksum) gives `unverified`;
//! - the records live on the host, where root can edit them: every verdict
//!   says so (`host-records-only`) unless the content was checked through
//!   the chain the archive signs (`verified-by-archive`).

pub mod apt;
mod dpkg;
mod openpgp;
mod pip;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use md5::Digest;

use crate::compare::DriftKind;
use crate::scan::FileKind;

/// Package records tripseal reads at most of one file (a dpkg status file
/// of a large host is a few MiB).
const MAX_RECORD_BYTES: u64 = 256 << 20;

/// Which package manager's records vouch for a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Manager {
    Dpkg,
    Pip,
}

impl Manager {
    pub fn name(self) -> &'static str {
        match self {
            Manager::Dpkg => "dpkg",
            Manager::Pip => "pip",
        }
    }
}

/// What the present content is, measured against the package's records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The content is what the package records.
    MatchesPackage,
    /// Owned by a package, and not what it records: the alarming case.
    DiffersFromPackage,
    /// Owned by a package that records nothing to compare with (a
    /// directory, a symlink, a file listed without a checksum), or the
    /// content could not be compared (see the note).
    Unverified,
    /// No installed package owns the path.
    NotPackaged,
}

impl Verdict {
    pub const ALL: [Verdict; 4] = [
        Verdict::MatchesPackage,
        Verdict::DiffersFromPackage,
        Verdict::Unverified,
        Verdict::NotPackaged,
    ];

    pub fn parse(s: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Verdict::MatchesPackage => "matches-package",
            Verdict::DiffersFromPackage => "differs-from-package",
            Verdict::Unverified => "unverified",
            Verdict::NotPackaged => "not-packaged",
        }
    }
}

/// How far a verdict can be trusted. Ordered: a later one is stronger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Evidence {
    /// The host's own records (dpkg's `md5sums`, a wheel's `RECORD`), which
    /// root on the host can edit.
    HostRecordsOnly,
    /// The package file in apt's cache, checked through the archive's
    /// signed `InRelease` and its `Packages` entry.
    VerifiedByArchive,
}

impl Evidence {
    pub fn name(self) -> &'static str {
        match self {
            Evidence::HostRecordsOnly => "host-records-only",
            Evidence::VerifiedByArchive => "verified-by-archive",
        }
    }

    pub fn parse(s: &str) -> Option<Evidence> {
        [Evidence::HostRecordsOnly, Evidence::VerifiedByArchive]
            .into_iter()
            .find(|e| e.name() == s)
    }
}

/// An installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub manager: Manager,
    pub name: String,
    pub version: String,
}

/// Where a drifted path comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// `None`: not packaged.
    pub package: Option<Package>,
    pub verdict: Verdict,
    /// `None` for `not-packaged`.
    pub evidence: Option<Evidence>,
    /// Why, where the verdict alone does not say it.
    pub note: Option<String>,
    /// A dpkg conffile: its shipped content may undo an administrator's
    /// edit, so `--only-packaged` never takes it back on its own.
    pub conffile: bool,
}

impl Origin {
    fn not_packaged() -> Origin {
        Origin {
            package: None,
            verdict: Verdict::NotPackaged,
            evidence: None,
            note: None,
            conffile: false,
        }
    }

    fn owned(
        package: Package,
        verdict: Verdict,
        note: Option<String>,
        evidence: Evidence,
    ) -> Origin {
        Origin {
            package: Some(package),
            verdict,
            evidence: Some(evidence),
            note,
            conffile: false,
        }
    }

    /// Whether this origin vouches for the content at `at_least` that
    /// strength.
    pub fn matches(&self, at_least: Evidence) -> bool {
        self.verdict == Verdict::MatchesPackage && self.evidence.is_some_and(|e| e >= at_least)
    }

    /// A short tag for the human report: `dpkg:openssl 3.0.11 matches-package`.
    pub fn tag(&self) -> String {
        let mut s = match &self.package {
            Some(p) => format!(
                "{}:{} {} {}",
                p.manager.name(),
                crate::escape::escape_bytes(p.name.as_bytes()),
                crate::escape::escape_bytes(p.version.as_bytes()),
                self.verdict.name()
            ),
            None => self.verdict.name().to_string(),
        };
        if let Some(e) = self.evidence {
            s.push_str(", ");
            s.push_str(e.name());
        }
        s
    }
}

/// Whether `update --only-packaged` may accept drift record `d`: its
/// content is what its package records, at `at` that evidence or
/// stronger, and nothing changed that package records do not vouch for
/// (a mode, an owner: a setuid bit set by hand on a packaged binary keeps
/// its content). Otherwise, why not.
pub fn vouches_for(d: &crate::compare::Drift, at: Evidence) -> Result<(), String> {
    use crate::attrs::Attr;
    let origin = d.origin.as_ref().ok_or("not explained")?;
    if let Some(p) = &d.problem {
        return Err(format!("{}: {}", p.kind(), p.reason()));
    }
    if origin.conffile {
        return Err(
            "a conffile: the package's version would undo an administrator's edit; \
                    review it and run update without --only-packaged"
                .into(),
        );
    }
    if !origin.matches(at) {
        return Err(match (origin.verdict, origin.evidence) {
            (Verdict::MatchesPackage, Some(e)) => {
                format!("the package vouches for it by {} only", e.name())
            }
            (v, _) => v.name().to_string(),
        });
    }
    match d.kind {
        DriftKind::Changed => {
            let content = [
                Attr::Hash,
                Attr::Size,
                Attr::Mtime,
                Attr::Ctime,
                Attr::Inode,
                Attr::Nlink,
                Attr::Dev,
                Attr::Growing,
            ];
            match d.changes.iter().find(|c| !content.contains(&c.attr)) {
                Some(c) => Err(format!(
                    "its {} changed too, which package records do not vouch for",
                    c.attr.name()
                )),
                None => Ok(()),
            }
        }
        DriftKind::Added => match d.entry.meta.map(|m| (m.mode & 0o7022, m.uid)) {
            Some((0, 0)) => Ok(()),
            _ => Err(
                "it is not owned by root, or its mode is setuid, setgid, sticky or \
                      writable by others, which package records do not vouch for"
                    .into(),
            ),
        },
        DriftKind::Removed | DriftKind::Error => Err(d.kind.name().into()),
    }
}

/// One drifted path to explain.
#[derive(Clone, Debug)]
pub struct Query {
    pub path: PathBuf,
    pub kind: DriftKind,
    /// What is at the path now (`Removed`: what was).
    pub file_kind: Option<FileKind>,
    /// The BLAKE3 of the content the drift record carries, when its rule
    /// checks the content: the verdict is about that content only.
    pub content: Option<[u8; 32]>,
    /// The size the scan saw: no more than that is read again.
    pub size: Option<u64>,
}

impl Query {
    /// The query for drift record `d`: its content is only what the scan
    /// read whole.
    pub fn of(d: &crate::compare::Drift) -> Query {
        Query {
            path: d.path.clone(),
            kind: d.kind,
            file_kind: d.entry.meta.map(|m| m.kind),
            content: d.entry.hash.filter(|_| d.problem.is_none()),
            size: d.entry.meta.map(|m| m.size),
        }
    }
}

/// Where the package records are: the real host's in production, a test
/// tree's in unit tests.
#[derive(Clone, Debug)]
pub struct Sources {
    pub dpkg_admindir: PathBuf,
    /// What checks dpkg's records through the archive.
    pub apt: apt::AptPaths,
}

impl Default for Sources {
    fn default() -> Sources {
        Sources {
            dpkg_admindir: PathBuf::from("/var/lib/dpkg"),
            apt: apt::AptPaths::default(),
        }
    }
}

impl Sources {
    /// The configured places (`[origin]` of the configuration), the
    /// system's where it says nothing.
    pub fn configured(c: &crate::config::OriginConfig) -> Sources {
        let d = Sources::default();
        Sources {
            dpkg_admindir: d.dpkg_admindir,
            apt: apt::AptPaths {
                lists: c.apt_lists.clone().unwrap_or(d.apt.lists),
                archives: c.apt_archives.clone().unwrap_or(d.apt.archives),
                keyrings: c.apt_keyrings.clone().unwrap_or(d.apt.keyrings),
                sources: c.apt_sources.clone().unwrap_or(d.apt.sources),
            },
        }
    }
}

/// What anchors the archive's keys: the verified baseline, or why there is
/// none (its seal was skipped).
pub type Anchor<'a> = Result<&'a crate::baseline::Baseline, &'a str>;

/// The digests of a file's present content that package records use.
struct Present {
    blake3: [u8; 32],
    md5: [u8; 16],
    sha256: [u8; 32],
}

/// Reads the regular file at `path` (never through a symlink, never a FIFO
/// or a device) once, for every digest a record may hold.
fn present(path: &Path, size: u64) -> Result<Present, String> {
    let (file, _) = crate::files::open_untrusted(path, size, false).map_err(|e| e.to_string())?;
    if xattr::get(path, "security.capability").is_ok_and(|c| c.is_some()) {
        return Err(
            "it carries file capabilities (security.capability), which package \
                    records do not vouch for"
                .into(),
        );
    }
    let mut file = file.take(size);
    let mut b3 = blake3::Hasher::new();
    let mut md5 = md5::Md5::new();
    let mut sha = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        b3.update(&buf[..n]);
        md5.update(&buf[..n]);
        sha.update(&buf[..n]);
    }
    Ok(Present {
        blake3: *b3.finalize().as_bytes(),
        md5: md5.finalize().into(),
        sha256: sha.finalize().into(),
    })
}

/// A checksum a package records for a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Recorded {
    Md5([u8; 16]),
    Sha256([u8; 32]),
}

/// What a package manager says of one path.
#[derive(Clone, Debug)]
struct Owned {
    package: Package,
    /// `None`: listed without a checksum.
    recorded: Option<Recorded>,
    /// Said with the verdict (a conffile, say).
    note: Option<String>,
    conffile: bool,
    /// Whose word `recorded` is.
    evidence: Evidence,
}

/// Explains each query: which package owns its path, and whether the
/// present content matches what the package records. Queries of `error`
/// records get no origin. Failing to read the package records is not an
/// error of the check: the paths they would have explained are said to be
/// `unverified`, with why. One-shot: the records are read for these paths
/// only (see [`Explainer`] for the daemon's).
pub fn explain(queries: &[Query], sources: &Sources, anchor: Anchor) -> HashMap<PathBuf, Origin> {
    if queries.iter().all(|q| q.kind == DriftKind::Error) {
        return HashMap::new();
    }
    Explainer::new(sources.clone(), None, anchor).explain(queries)
}

/// Explains drift again and again (the daemon): dpkg's file lists are read
/// once for every path under `roots`, and again only when dpkg has written
/// its database since; a site directory's records, when it changed.
pub struct Explainer {
    sources: Sources,
    roots: Option<Vec<PathBuf>>,
    dpkg: Option<dpkg::Db>,
    sites: pip::Sites,
    archive: apt::Archive,
}

impl Explainer {
    /// With `roots`, the records are kept for the paths under them between
    /// calls; without, each call reads them for its own paths only.
    /// The archive's keys are those of the keyrings `anchor` records as
    /// they are now, read here once.
    pub fn new(sources: Sources, roots: Option<Vec<PathBuf>>, anchor: Anchor) -> Explainer {
        let keys = apt::trusted_keys(&sources.apt, anchor);
        Explainer {
            archive: apt::Archive::new(sources.apt.clone(), keys),
            sources,
            roots,
            dpkg: None,
            sites: pip::Sites::default(),
        }
    }

    pub fn explain(&mut self, queries: &[Query]) -> HashMap<PathBuf, Origin> {
        // apt's cache and lists change with every upgrade: what was found
        // in them (or missing) is not kept from one batch to the next.
        self.archive.forget();
        let wanted: Vec<&Query> = queries
            .iter()
            .filter(|q| q.kind != DriftKind::Error)
            .collect();
        let mut out = HashMap::new();
        if wanted.is_empty() {
            return out;
        }
        let paths: Vec<&Path> = wanted.iter().map(|q| q.path.as_path()).collect();
        let found = match self.dpkg_db(&paths) {
            Ok(()) => {
                let db = self.dpkg.as_ref().expect("read above");
                db.owners(&paths, &mut self.archive)
            }
            Err(why) => Err(why),
        };
        let (dpkg, dpkg_failed) = match found {
            Ok(found) => (found, None),
            Err(why) => {
                log::warn!(
                    "the dpkg database {} could not be read, so drift is not explained by it: \
                     {why}",
                    crate::escape::escape_path(&self.sources.dpkg_admindir)
                );
                self.dpkg = None;
                (HashMap::new(), Some(why))
            }
        };
        for q in wanted {
            let owned = match dpkg.get(q.path.as_path()) {
                Some(o) => Some(o.clone()),
                None => self.sites.owner(&q.path),
            };
            let origin = match (owned, &dpkg_failed) {
                (Some(o), _) => judge(q, o),
                (None, Some(why)) => Origin {
                    package: None,
                    verdict: Verdict::Unverified,
                    evidence: None,
                    note: Some(format!("the dpkg database could not be read: {why}")),
                    conffile: false,
                },
                (None, None) => Origin::not_packaged(),
            };
            out.insert(q.path.clone(), origin);
        }
        out
    }

    /// dpkg's database, as read for `paths` (one-shot) or for the roots
    /// (kept while current).
    fn dpkg_db(&mut self, paths: &[&Path]) -> Result<(), String> {
        let admindir = self.sources.dpkg_admindir.clone();
        let fresh = match &self.roots {
            None => {
                let wanted: std::collections::HashSet<Vec<u8>> =
                    dpkg::Db::canonical(paths.iter().copied())
                        .into_iter()
                        .collect();
                Some(dpkg::Db::load(&admindir, &|k| wanted.contains(k))?)
            }
            Some(roots) if !self.dpkg.as_ref().is_some_and(dpkg::Db::current) => {
                let roots = dpkg::Db::canonical(roots.iter().map(PathBuf::as_path));
                let under = |k: &[u8]| {
                    roots.iter().any(|r| {
                        k.starts_with(r) && (k.len() == r.len() || k[r.len()] == b'/' || r == b"/")
                    })
                };
                Some(dpkg::Db::load(&admindir, &under)?)
            }
            Some(_) => None,
        };
        if let Some(db) = fresh {
            self.dpkg = Some(db);
        }
        Ok(())
    }
}

/// The verdict on one owned path.
fn judge(q: &Query, o: Owned) -> Origin {
    let note = |s: &str| {
        Some(match &o.note {
            Some(n) => format!("{n}; {s}"),
            None => s.to_string(),
        })
    };
    let evidence = o.evidence;
    let owned = |package, verdict, note| Origin::owned(package, verdict, note, evidence);
    if q.kind == DriftKind::Removed {
        return owned(
            o.package,
            Verdict::DiffersFromPackage,
            note("the package still lists it, and it is gone"),
        );
    }
    if q.file_kind != Some(FileKind::File) {
        let what = q.file_kind.map_or("nothing", FileKind::name);
        return owned(
            o.package,
            Verdict::Unverified,
            note(&format!(
                "it is a {what} now; packages record content of files only"
            )),
        );
    }
    let (Some(content), Some(size)) = (q.content, q.size) else {
        return owned(
            o.package,
            Verdict::Unverified,
            note("its rule does not record its content, or the scan could not read it whole"),
        );
    };
    let Some(recorded) = o.recorded else {
        return owned(
            o.package,
            Verdict::Unverified,
            note("the package lists it without a checksum"),
        );
    };
    let now = match present(&q.path, size) {
        Ok(p) => p,
        Err(why) => {
            return owned(
                o.package,
                Verdict::Unverified,
                note(&format!("it could not be read to compare: {why}")),
            );
        }
    };
    if content != now.blake3 {
        return owned(
            o.package,
            Verdict::Unverified,
            note("it changed again after the scan read it"),
        );
    }
    let same = match recorded {
        Recorded::Md5(m) => m == now.md5,
        Recorded::Sha256(s) => s == now.sha256,
    };
    let verdict = if same {
        Verdict::MatchesPackage
    } else {
        Verdict::DiffersFromPackage
    };
    let mut origin = owned(o.package, verdict, o.note);
    origin.conffile = o.conffile;
    origin
}

/// `path` with `.` and `..` components resolved without asking the file
/// system (a record names paths relative to its own directory).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn read_record(path: &Path) -> std::io::Result<Vec<u8>> {
    crate::files::read_untrusted(path, MAX_RECORD_BYTES)
}

fn hex_digest<const N: usize>(s: &[u8]) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lexical_resolves_parents_without_the_file_system() {
        assert_eq!(
            lexical(Path::new(
                "/v/lib/python3.11/site-packages/../../../bin/celery"
            )),
            Path::new("/v/bin/celery")
        );
        assert_eq!(lexical(Path::new("/a/./b/../c")), Path::new("/a/c"));
    }

    #[test]
    fn present_content_is_read_from_a_regular_file_only() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, b"abc").unwrap();
        assert!(present(&file, 3).is_ok());
        assert!(
            present(&file, 2).is_err(),
            "never more than the scanned size"
        );
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(
            present(&link, 3).is_err(),
            "a symlink planted after the scan"
        );
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        assert!(present(&fifo, 3).is_err(), "a FIFO is never waited on");
    }

    #[test]
    fn hex_digests_are_exact() {
        assert_eq!(hex_digest::<2>(b"0aff"), Some([0x0a, 0xff]));
        assert_eq!(hex_digest::<2>(b"0af"), None);
        assert_eq!(hex_digest::<2>(b"0agf"), None);
    }

    #[test]
    fn matches_needs_the_evidence_asked_for() {
        let o = Origin::owned(
            Package {
                manager: Manager::Dpkg,
                name: "p".into(),
                version: "1".into(),
            },
            Verdict::MatchesPackage,
            None,
            Evidence::HostRecordsOnly,
        );
        assert!(o.matches(Evidence::HostRecordsOnly));
        assert!(!o.matches(Evidence::VerifiedByArchive));
        assert!(!Origin::not_packaged().matches(Evidence::HostRecordsOnly));
    }
}
