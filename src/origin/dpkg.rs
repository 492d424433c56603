//! dpkg's records: the status file (which packages are installed, their
//! versions and conffiles), each package's file list (`info/P.list`) and
//! checksums (`info/P.md5sums`), and the diversions.
//!
//! The file lists are read in one pass, keeping only the paths a filter
//! selects (a check's drifted paths; the daemon's watched trees, kept until
//! dpkg writes its database again): memory stays small however many
//! packages the host has.

use std::collections::{HashMap, HashSet};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::apt::{Archive, Deb};
use super::{Evidence, Manager, Owned, Package, Recorded, hex_digest, read_record};

/// An installed package, as the status file says.
struct Installed {
    name: String,
    arch: String,
    version: String,
    /// Conffiles and the checksum of the version the package shipped.
    conffiles: Vec<(Vec<u8>, Option<[u8; 16]>)>,
}

/// dpkg's database as read once: the installed packages, and the owner of
/// each listed path a filter kept. Read again only when dpkg changed it.
pub(super) struct Db {
    admindir: PathBuf,
    installed: Vec<Installed>,
    merged: UsrMerge,
    /// Canonical path (see [`UsrMerge`]) → index in `installed`.
    owners: HashMap<Vec<u8>, usize>,
    diverted: HashSet<Vec<u8>>,
    stamp: Stamp,
}

/// What changes when dpkg writes its database: the status file (replaced
/// at every operation), the info directory, the diversions, and the
/// journal of an operation not folded into the status file yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp([(u64, i64, u64); 4]);

impl Stamp {
    fn of(admindir: &Path) -> Stamp {
        use std::os::unix::fs::MetadataExt;
        let one = |p: PathBuf| {
            std::fs::symlink_metadata(p).map_or((0, 0, 0), |m| {
                (
                    m.ino(),
                    m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                    m.size(),
                )
            })
        };
        Stamp([
            one(admindir.join("status")),
            one(admindir.join("info")),
            one(admindir.join("diversions")),
            one(admindir.join("updates")),
        ])
    }
}

impl Db {
    /// Reads the status file, and every installed package's file list,
    /// keeping the paths `keep` selects (given in their /usr form).
    pub(super) fn load(admindir: &Path, keep: &dyn Fn(&[u8]) -> bool) -> Result<Db, String> {
        let stamp = Stamp::of(admindir);
        let status = read_record(&admindir.join("status")).map_err(|e| format!("status: {e}"))?;
        let installed = parse_status(&status);
        let merged = UsrMerge::of_root();
        let mut owners: HashMap<Vec<u8>, usize> = HashMap::new();
        for (i, pkg) in installed.iter().enumerate() {
            let Some(list) = info_file(admindir, pkg, "list") else {
                continue;
            };
            let text = match read_record(&list) {
                Ok(t) => t,
                Err(e) => {
                    log::warn!(
                        "{} is not read, so drift is not explained by package {}: {e}",
                        crate::escape::escape_path(&list),
                        crate::escape::escape_bytes(pkg.name.as_bytes())
                    );
                    continue;
                }
            };
            for line in text.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let key = merged.canonical(line);
                if keep(&key) {
                    owners.entry(key).or_insert(i);
                }
            }
        }
        let diverted = diversions(admindir, &merged)?;
        Ok(Db {
            admindir: admindir.to_path_buf(),
            installed,
            merged,
            owners,
            diverted,
            stamp,
        })
    }

    /// Whether dpkg has not written its database since it was read.
    pub(super) fn current(&self) -> bool {
        Stamp::of(&self.admindir) == self.stamp
    }

    /// The /usr form of each of `paths`, as the filter of [`Db::load`]
    /// sees it (the root's links looked at once, not once per path).
    pub(super) fn canonical<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<Vec<u8>> {
        let merged = UsrMerge::of_root();
        paths
            .into_iter()
            .map(|p| merged.canonical(p.as_os_str().as_bytes()))
            .collect()
    }

    /// The owner of each of `paths` that an installed package lists, with
    /// what it records of it (each owner's `md5sums` read once).
    pub(super) fn owners(
        &self,
        paths: &[&Path],
        archive: &mut Archive,
    ) -> Result<HashMap<PathBuf, Owned>, String> {
        let mut md5sums: HashMap<usize, HashMap<Vec<u8>, [u8; 16]>> = HashMap::new();
        // What the archive says each package shipped (canonical paths), or
        // why it cannot say.
        type Sums = HashMap<Vec<u8>, [u8; 16]>;
        let mut shipped: HashMap<usize, Result<(Sums, String), String>> = HashMap::new();
        let mut out = HashMap::new();
        for p in paths {
            let key = self.merged.canonical(p.as_os_str().as_bytes());
            let Some(&i) = self.owners.get(&key) else {
                continue;
            };
            let pkg = &self.installed[i];
            let sums = match md5sums.get(&i) {
                Some(s) => s,
                None => {
                    // One unreadable md5sums costs its own package's
                    // verdicts (listed without a checksum), no others.
                    let s = read_md5sums(&self.admindir, pkg, &self.merged).unwrap_or_else(|e| {
                        log::warn!("{e}: package {} is not checked against it", pkg.name);
                        HashMap::new()
                    });
                    md5sums.entry(i).or_insert(s)
                }
            };
            let conffile = pkg
                .conffiles
                .iter()
                .find(|(c, _)| self.merged.canonical(c) == key);
            let host = Evidence::HostRecordsOnly;
            let (recorded, note, evidence) = match (self.diverted.contains(&key), conffile) {
                (true, _) => (
                    None,
                    Some("dpkg-divert moved a package's file to or from this path".to_string()),
                    host,
                ),
                (false, Some((_, md5))) => (
                    md5.map(Recorded::Md5),
                    Some(
                        "a conffile (what the package shipped; an administrator's edit differs)"
                            .to_string(),
                    ),
                    host,
                ),
                (false, None) => {
                    let host_sum = sums.get(&key).copied().map(Recorded::Md5);
                    let from_archive = shipped.entry(i).or_insert_with(|| {
                        let deb = Deb {
                            name: pkg.name.clone(),
                            version: pkg.version.clone(),
                            arch: pkg.arch.clone(),
                        };
                        archive.shipped(&deb).map(|s| {
                            let sums = s
                                .md5sums
                                .iter()
                                .map(|(p, m)| (self.merged.canonical(p), *m))
                                .collect();
                            (sums, s.via.clone())
                        })
                    });
                    match from_archive {
                        Ok((sums, via)) => match sums.get(&key) {
                            Some(m) => (
                                Some(Recorded::Md5(*m)),
                                Some(format!("checked through the archive: {via}")),
                                Evidence::VerifiedByArchive,
                            ),
                            None => (
                                None,
                                Some(
                                    "the package's .deb, as the archive signs it, records no \
                                     checksum for it"
                                        .to_string(),
                                ),
                                host,
                            ),
                        },
                        Err(why) => (
                            host_sum,
                            Some(format!("not checked through the archive: {why}")),
                            host,
                        ),
                    }
                }
            };
            out.insert(
                p.to_path_buf(),
                Owned {
                    package: Package {
                        manager: Manager::Dpkg,
                        name: pkg.name.clone(),
                        version: pkg.version.clone(),
                    },
                    recorded,
                    note,
                    conffile: conffile.is_some(),
                    evidence,
                },
            );
        }
        Ok(out)
    }
}

/// `info/NAME.SUFFIX`, or `info/NAME:ARCH.SUFFIX` for a Multi-Arch: same
/// package, whichever exists.
fn info_file(admindir: &Path, pkg: &Installed, suffix: &str) -> Option<PathBuf> {
    // dpkg's own rule for names; anything else (a `/`, `..`) is no package.
    let valid = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
            && !s.starts_with('.')
    };
    if !valid(&pkg.name) || !(pkg.arch.is_empty() || valid(&pkg.arch)) {
        return None;
    }
    let info = admindir.join("info");
    [
        format!("{}.{suffix}", pkg.name),
        format!("{}:{}.{suffix}", pkg.name, pkg.arch),
    ]
    .into_iter()
    .map(|n| info.join(n))
    .find(|p| std::fs::symlink_metadata(p).is_ok())
}

fn read_md5sums(
    admindir: &Path,
    pkg: &Installed,
    merged: &UsrMerge,
) -> Result<HashMap<Vec<u8>, [u8; 16]>, String> {
    let mut out = HashMap::new();
    let Some(file) = info_file(admindir, pkg, "md5sums") else {
        return Ok(out);
    };
    let text = read_record(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    for (path, md5) in md5sums_lines(&text) {
        out.insert(merged.canonical(&path), md5);
    }
    Ok(out)
}

/// The lines of an `md5sums` file (dpkg's, or a `.deb`'s): each path, with
/// its leading `/` put back, and its checksum.
pub(super) fn md5sums_lines(text: &[u8]) -> impl Iterator<Item = (Vec<u8>, [u8; 16])> + '_ {
    text.split(|&b| b == b'\n').filter_map(|line| {
        // "<32 hex>  <path without its leading slash>"
        if line.len() < 35 || &line[32..34] != b"  " {
            return None;
        }
        let md5 = hex_digest::<16>(&line[..32])?;
        let mut path = b"/".to_vec();
        path.extend_from_slice(&line[34..]);
        Some((path, md5))
    })
}

/// Paths dpkg-divert moved a file from or to.
fn diversions(admindir: &Path, merged: &UsrMerge) -> Result<HashSet<Vec<u8>>, String> {
    let file = admindir.join("diversions");
    let text = match read_record(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashSet::new()),
        Err(e) => return Err(format!("diversions: {e}")),
    };
    // Triples of lines: the original path, where it went, who diverted it.
    let lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    Ok(lines
        .chunks(3)
        .filter(|c| c.len() == 3)
        .flat_map(|c| [merged.canonical(c[0]), merged.canonical(c[1])])
        .collect())
}

/// The fields of a deb822 stanza (a status file's, a `Packages` index's);
/// a continuation line is joined to its field by a newline.
pub(super) fn fields(stanza: &str) -> HashMap<&str, String> {
    let mut fields: HashMap<&str, String> = HashMap::new();
    let mut last: Option<&str> = None;
    for line in stanza.lines() {
        if let Some(rest) = line.strip_prefix([' ', '\t']) {
            if let Some(f) = last.and_then(|k| fields.get_mut(k)) {
                f.push('\n');
                f.push_str(rest);
            }
        } else if let Some((k, v)) = line.split_once(':') {
            fields.insert(k, v.trim().to_string());
            last = Some(k);
        }
    }
    fields
}

/// The installed packages of a status file (Status' last word neither
/// `not-installed` nor `config-files`: their files are on the disk).
fn parse_status(text: &[u8]) -> Vec<Installed> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let fields = fields(stanza);
        let state = fields
            .get("Status")
            .and_then(|s| s.split_whitespace().last())
            .unwrap_or("not-installed");
        if matches!(state, "not-installed" | "config-files") {
            continue;
        }
        let (Some(name), Some(version)) = (fields.get("Package"), fields.get("Version")) else {
            continue;
        };
        let conffiles = fields.get("Conffiles").map_or(Vec::new(), |c| {
            c.lines()
                .filter_map(|l| {
                    let mut w = l.split_whitespace();
                    let path = w.next()?;
                    let md5 = hex_digest::<16>(w.next()?.as_bytes());
                    // An obsolete conffile's checksum is of a version gone.
                    let md5 = md5.filter(|_| w.next() != Some("obsolete"));
                    Some((path.as_bytes().to_vec(), md5))
                })
                .collect()
        });
        out.push(Installed {
            name: name.clone(),
            arch: fields.get("Architecture").cloned().unwrap_or_default(),
            version: version.clone(),
            conffiles,
        });
    }
    out
}

/// Which top-level directories are links into /usr (a merged /usr), so that
/// `/bin/x` and `/usr/bin/x` are one path.
struct UsrMerge {
    aliased: Vec<&'static str>,
}

impl UsrMerge {
    fn of_root() -> UsrMerge {
        let aliased = ["bin", "sbin", "lib", "lib32", "lib64", "libx32"]
            .into_iter()
            .filter(|d| {
                std::fs::read_link(Path::new("/").join(d))
                    .is_ok_and(|t| t == Path::new("usr").join(d) || t == Path::new("/usr").join(d))
            })
            .collect();
        UsrMerge { aliased }
    }

    /// The /usr form of `path`.
    fn canonical(&self, path: &[u8]) -> Vec<u8> {
        for d in &self.aliased {
            let top = [b"/", d.as_bytes()].concat();
            if let Some(rest) = path.strip_prefix(top.as_slice())
                && (rest.is_empty() || rest[0] == b'/')
            {
                return [b"/usr".as_slice(), path].concat();
            }
        }
        path.to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_archive() -> Archive {
        Archive::new(
            super::super::apt::AptPaths::default(),
            Err("none here".into()),
        )
    }

    const STATUS: &str = "Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n\
Package: tool\nStatus: install ok installed\nArchitecture: amd64\nVersion: 2.1-3\n\
Conffiles:\n /etc/tool.conf 0123456789abcdef0123456789abcdef\n /etc/old.conf newconffile obsolete\n\
Description: a tool\n with a long description\n";

    #[test]
    fn status_keeps_installed_packages_and_their_conffiles() {
        let p = parse_status(STATUS.as_bytes());
        assert_eq!(p.len(), 1);
        assert_eq!(
            (p[0].name.as_str(), p[0].version.as_str()),
            ("tool", "2.1-3")
        );
        assert_eq!(p[0].conffiles.len(), 2);
        assert_eq!(p[0].conffiles[0].0, b"/etc/tool.conf");
        assert!(p[0].conffiles[0].1.is_some());
        assert_eq!(p[0].conffiles[1].1, None);
    }

    #[test]
    fn merged_usr_paths_are_one_path() {
        let m = UsrMerge {
            aliased: vec!["bin", "lib"],
        };
        assert_eq!(m.canonical(b"/bin/ls"), b"/usr/bin/ls");
        assert_eq!(m.canonical(b"/usr/bin/ls"), b"/usr/bin/ls");
        assert_eq!(m.canonical(b"/binary/x"), b"/binary/x");
        assert_eq!(m.canonical(b"/sbin/x"), b"/sbin/x");
    }

    #[test]
    fn a_tree_of_records_explains_its_paths() {
        let d = tempfile::tempdir().unwrap();
        let admin = d.path().join("admin");
        std::fs::create_dir_all(admin.join("info")).unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, b"shipped\n").unwrap();
        let md5 = crate::files::hex(&md5::Md5::digest(b"shipped\n"));
        std::fs::write(admin.join("status"), STATUS).unwrap();
        std::fs::write(
            admin.join("info/tool.list"),
            format!("/.\n{}\n", file.display()),
        )
        .unwrap();
        std::fs::write(
            admin.join("info/tool.md5sums"),
            format!("{md5}  {}\n", &file.display().to_string()[1..]),
        )
        .unwrap();
        let unowned = d.path().join("other");
        let db = Db::load(&admin, &|_| true).unwrap();
        assert!(db.current());
        let found = db
            .owners(&[file.as_path(), unowned.as_path()], &mut no_archive())
            .unwrap();
        assert_eq!(found.len(), 1);
        let o = &found[&file];
        assert_eq!(o.package.name, "tool");
        assert!(matches!(o.recorded, Some(Recorded::Md5(_))));
    }

    #[test]
    fn an_unreadable_md5sums_costs_its_own_package_only() {
        let d = tempfile::tempdir().unwrap();
        let admin = d.path().join("admin");
        std::fs::create_dir_all(admin.join("info")).unwrap();
        let file = d.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        std::fs::write(admin.join("status"), STATUS).unwrap();
        std::fs::write(
            admin.join("info/tool.list"),
            format!("{}\n", file.display()),
        )
        .unwrap();
        let fifo = std::ffi::CString::new(
            admin
                .join("info/tool.md5sums")
                .as_os_str()
                .as_encoded_bytes(),
        )
        .unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        let db = Db::load(&admin, &|_| true).unwrap();
        let found = db
            .owners(&[file.as_path()], &mut no_archive())
            .expect("no error for the batch");
        assert_eq!(found[&file].package.name, "tool");
        assert_eq!(found[&file].recorded, None, "listed, without a checksum");
    }

    use md5::Digest;
}
