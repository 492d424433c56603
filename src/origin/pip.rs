//! Python distributions: the `RECORD` of each `*.dist-info` in a
//! site-packages (or Debian's dist-packages) directory, SHA-256 per file.
//!
//! A drifted path is looked up in the site directories above it, and, for
//! `PREFIX/bin/x` (a console script), in `PREFIX/lib/python*/site-packages`.
//! A record may name paths outside its site directory (`../../../bin/x`),
//! but never outside the environment's prefix: a `RECORD` claiming
//! `/etc/shadow` explains nothing.

use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use base64::Engine;

use super::{Manager, Owned, Package, Recorded, lexical, read_record};

/// The site directories read so far, and what their records own.
#[derive(Default)]
pub(super) struct Sites {
    read: HashMap<PathBuf, HashMap<PathBuf, Owned>>,
}

impl Sites {
    /// The distribution whose `RECORD` lists `path`, if any.
    pub(super) fn owner(&mut self, path: &Path) -> Option<Owned> {
        for site in candidates(path) {
            let owned = self
                .read
                .entry(site.clone())
                .or_insert_with(|| read_site(&site));
            if let Some(o) = owned.get(path) {
                return Some(o.clone());
            }
        }
        None
    }
}

fn is_site(name: &[u8]) -> bool {
    name == b"site-packages" || name == b"dist-packages"
}

/// The site directories whose records could list `path`.
fn candidates(path: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = path
        .ancestors()
        .skip(1)
        .filter(|a| a.file_name().is_some_and(|n| is_site(n.as_bytes())))
        .map(Path::to_path_buf)
        .collect();
    // PREFIX/bin/x: the scripts of PREFIX's distributions.
    if let Some(bin) = path.parent()
        && bin.file_name().is_some_and(|n| n == "bin")
        && let Some(prefix) = bin.parent()
        && let Ok(dirs) = std::fs::read_dir(prefix.join("lib"))
    {
        let mut found: Vec<PathBuf> = dirs
            .flatten()
            .filter(|d| d.file_name().as_bytes().starts_with(b"python"))
            .flat_map(|d| {
                [
                    d.path().join("site-packages"),
                    d.path().join("dist-packages"),
                ]
            })
            .filter(|s| std::fs::symlink_metadata(s).is_ok_and(|m| m.is_dir()))
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

/// Every path the `RECORD`s of `site` list within its prefix.
fn read_site(site: &Path) -> HashMap<PathBuf, Owned> {
    let mut out = HashMap::new();
    // site-packages → pythonX.Y → lib → the prefix.
    let Some(prefix) = site.parent().and_then(Path::parent).and_then(Path::parent) else {
        return out;
    };
    let Ok(dirs) = std::fs::read_dir(site) else {
        return out;
    };
    let mut infos: Vec<PathBuf> = dirs
        .flatten()
        .filter(|d| d.file_name().as_bytes().ends_with(b".dist-info"))
        .map(|d| d.path())
        .filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()))
        .collect();
    infos.sort();
    for info in infos {
        // A RECORD another user than root may rewrite vouches for nothing
        // that user could not have planted.
        if let Err(why) = root_only(&info) {
            log::debug!("{why}");
            continue;
        }
        let record = match read_record(&info.join("RECORD")) {
            Ok(r) => r,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                log::warn!(
                    "{} is not read, so drift is not explained by it: {e}",
                    crate::escape::escape_path(&info.join("RECORD"))
                );
                continue;
            }
        };
        let package = distribution(&info);
        for (name, sha) in parse_record(&record) {
            let name = Path::new(std::ffi::OsStr::from_bytes(&name));
            let full = lexical(&site.join(name));
            if !full.starts_with(prefix) {
                continue;
            }
            out.entry(full).or_insert_with(|| Owned {
                package: package.clone(),
                recorded: sha.map(Recorded::Sha256),
                note: None,
                conffile: false,
                evidence: super::Evidence::HostRecordsOnly,
            });
        }
    }
    out
}

/// Whether only root can change `info` and its RECORD (and the site
/// directory holding it): owned by root, neither group- nor other-writable.
fn root_only(info: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    for p in [info.join("RECORD"), info.to_path_buf()]
        .into_iter()
        .chain(info.parent().map(Path::to_path_buf))
    {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.uid() == 0 && m.mode() & 0o022 == 0 => {}
            Ok(_) => {
                return Err(format!(
                    "{} can be changed by another user than root: its RECORD explains nothing",
                    crate::escape::escape_path(&p)
                ));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}

/// The name and version a `*.dist-info` directory's `METADATA` gives (its
/// directory name, `NAME-VERSION.dist-info`, when that cannot be read).
fn distribution(info: &Path) -> Package {
    let stem = info
        .file_name()
        .map(|n| {
            n.to_string_lossy()
                .trim_end_matches(".dist-info")
                .to_string()
        })
        .unwrap_or_default();
    let (mut name, mut version) = match stem.split_once('-') {
        Some((n, v)) => (n.to_string(), v.to_string()),
        None => (stem.clone(), String::new()),
    };
    if let Ok(meta) = read_record(&info.join("METADATA")) {
        let text = String::from_utf8_lossy(&meta);
        for line in text.lines().take_while(|l| !l.is_empty()) {
            if let Some(v) = line.strip_prefix("Name:") {
                name = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("Version:") {
                version = v.trim().to_string();
            }
        }
    }
    Package {
        manager: Manager::Pip,
        name,
        version,
    }
}

/// The rows of a `RECORD` (CSV: path, `sha256=` urlsafe base64 without
/// padding, size): each path with its SHA-256, `None` where the row has
/// none (the `RECORD` itself, bytecode) or another algorithm.
fn parse_record(text: &[u8]) -> Vec<(Vec<u8>, Option<[u8; 32]>)> {
    let mut out = Vec::new();
    for line in text.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let fields = csv_fields(line);
        let Some(path) = fields.first().filter(|p| !p.is_empty()) else {
            continue;
        };
        let sha = fields
            .get(1)
            .and_then(|h| h.strip_prefix(b"sha256="))
            .and_then(|b| {
                base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(b)
                    .ok()
            })
            .and_then(|d| <[u8; 32]>::try_from(d).ok());
        out.push((path.clone(), sha));
    }
    out
}

/// The fields of one CSV line, with `"…"` quoting and `""` inside quotes.
fn csv_fields(line: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut field = Vec::new();
    let mut quoted = false;
    let mut i = 0;
    while i < line.len() {
        let b = line[i];
        match (quoted, b) {
            (true, b'"') if line.get(i + 1) == Some(&b'"') => {
                field.push(b'"');
                i += 1;
            }
            (true, b'"') => quoted = false,
            (false, b'"') if field.is_empty() => quoted = true,
            (false, b',') => out.push(std::mem::take(&mut field)),
            (_, b) => field.push(b),
        }
        i += 1;
    }
    out.push(field);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_rows_with_and_without_hashes() {
        let text = b"pkg/__init__.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
\"pkg/a,b.py\",sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
pkg-1.0.dist-info/RECORD,,\n../../../bin/tool,md5=abc,3\n";
        let rows = parse_record(text);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].0, b"pkg/__init__.py");
        assert!(rows[0].1.is_some());
        assert_eq!(rows[1].0, b"pkg/a,b.py");
        assert_eq!(rows[2].1, None);
        assert_eq!(rows[3].1, None, "only sha256 is taken");
    }

    #[test]
    fn records_never_reach_outside_their_prefix() {
        let d = tempfile::tempdir().unwrap();
        let site = d.path().join("venv/lib/python3.11/site-packages");
        let info = site.join("evil-1.0.dist-info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::write(
            info.join("RECORD"),
            "../../../../../../../../etc/shadow,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n\
../../../bin/evil,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n",
        )
        .unwrap();
        let owned = read_site(&site);
        assert_eq!(owned.len(), 1);
        let script = d.path().join("venv/bin/evil");
        assert_eq!(owned[&script].package.name, "evil");
        assert_eq!(owned[&script].package.version, "1.0");
        let mut sites = Sites::default();
        assert!(sites.owner(&script).is_some(), "found from PREFIX/bin");
        assert!(sites.owner(Path::new("/etc/shadow")).is_none());
    }

    #[test]
    fn a_record_another_user_may_rewrite_explains_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let site = d.path().join("venv/lib/python3.11/site-packages");
        let info = site.join("app-1.0.dist-info");
        std::fs::create_dir_all(&info).unwrap();
        std::fs::write(
            info.join("RECORD"),
            "app.py,sha256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU,0\n",
        )
        .unwrap();
        assert_eq!(read_site(&site).len(), 1);
        let writable = std::fs::Permissions::from_mode(0o666);
        std::fs::set_permissions(info.join("RECORD"), writable).unwrap();
        assert!(
            read_site(&site).is_empty(),
            "a group- or other-writable RECORD"
        );
    }
}
