//! A second opinion on dpkg's records, from the archive itself: when the
//! `.deb` of an installed package is still in apt's cache, its checksums
//! are read from the `.deb`, once the chain the archive signs holds:
//!
//! 1. a keyring a verified baseline records as it is now (the trust anchor:
//!    root on the host cannot add a key without the baseline's signer);
//! 2. an `InRelease` in apt's lists signed by one of its keys;
//! 3. a `Packages` index whose SHA-256 that `InRelease` gives;
//! 4. the `.deb` whose SHA-256 that index gives for the installed package,
//!    name, version and architecture;
//! 5. the `md5sums` inside that `.deb`.
//!
//! Any broken link leaves the verdict on the host's own records, and says
//! which link broke. A conffile is never checked this way (the `.deb`'s
//! `md5sums` leaves conffiles out).

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::Digest;

use super::hex_digest;
use super::openpgp::{self, Key};

/// A `Packages` index is read up to this size (Debian's main is ~100 MB).
const MAX_INDEX_BYTES: u64 = 1 << 30;
/// An `InRelease` is read up to this size (Debian's is ~150 KiB).
const MAX_RELEASE_BYTES: u64 = 16 << 20;
/// A `.deb`'s control archive, decompressed, up to this size.
const MAX_CONTROL_BYTES: u64 = 64 << 20;
/// A `.deb` of at most this size is checked.
const MAX_DEB_BYTES: u64 = 8 << 30;
/// A keyring of at most this size is read.
const MAX_KEYRING_BYTES: u64 = 16 << 20;

/// Where apt keeps what the chain needs.
#[derive(Clone, Debug)]
pub struct AptPaths {
    /// `Dir::State::Lists`: the `InRelease` and `Packages` files.
    pub lists: PathBuf,
    /// `Dir::Cache::Archives`: the downloaded `.deb`s.
    pub archives: PathBuf,
    /// Keyrings (files), and directories of them (`*.gpg`, `*.asc`).
    pub keyrings: Vec<PathBuf>,
    /// apt's sources (`sources.list`, `sources.list.d`): which keyring
    /// each source's `Signed-By` binds it to.
    pub sources: Vec<PathBuf>,
}

impl Default for AptPaths {
    fn default() -> AptPaths {
        AptPaths {
            lists: PathBuf::from("/var/lib/apt/lists"),
            archives: PathBuf::from("/var/cache/apt/archives"),
            keyrings: [
                "/etc/apt/trusted.gpg",
                "/etc/apt/trusted.gpg.d",
                "/etc/apt/keyrings",
                "/usr/share/keyrings",
            ]
            .map(PathBuf::from)
            .to_vec(),
            sources: ["/etc/apt/sources.list", "/etc/apt/sources.list.d"]
                .map(PathBuf::from)
                .to_vec(),
        }
    }
}

/// The trust apt's configuration gives, as far as the verified baseline
/// vouches for it: the keys of each keyring it records as it is now, which
/// keyrings are apt's default (`trusted.gpg`, `trusted.gpg.d`), and for each
/// source whose file it records as it is, the keyrings its `Signed-By`
/// names, by the lists-file prefix apt gives that source.
pub struct Anchored {
    keyrings: HashMap<PathBuf, Vec<Key>>,
    default: Vec<PathBuf>,
    bindings: HashMap<String, Vec<PathBuf>>,
}

impl Anchored {
    /// The keys that may sign the `InRelease` of lists prefix `prefix`: its
    /// source's `Signed-By` keyrings, or apt's default ones for a source
    /// that names none (or one the baseline does not vouch for).
    fn keys_for(&self, prefix: &str) -> Vec<&Key> {
        self.rings_for(prefix)
            .iter()
            .filter_map(|r| self.keyrings.get(r))
            .flatten()
            .collect()
    }

    fn rings_for(&self, prefix: &str) -> &[PathBuf] {
        self.bindings.get(prefix).unwrap_or(&self.default)
    }

    /// Binds the lists prefixes of `source` to its `Signed-By` keyrings;
    /// a source without the field is left to apt's default keyrings.
    fn bind(&mut self, source: &Source) {
        let Some(signed_by) = &source.signed_by else {
            return;
        };
        for prefix in source.prefixes() {
            self.bindings
                .entry(prefix)
                .or_default()
                .extend(signed_by.iter().cloned());
        }
    }
}

/// The content of `file` if the verified `baseline` records exactly it:
/// `Ok(None)` when the baseline does not record the file.
fn anchored(
    baseline: &crate::baseline::Baseline,
    file: &Path,
    max: u64,
) -> Result<Option<Vec<u8>>, String> {
    // A baseline that cannot be read (the daemon's copy failed its check)
    // is no record at all: fail closed, never as "not recorded".
    let recorded = baseline
        .entry(file)
        .map_err(|e| format!("the verified baseline cannot say what it records: {e}"))?
        .and_then(|e| e.hash);
    let Some(recorded) = recorded else {
        return Ok(None);
    };
    let data = read_record_nofollow(file, max)?;
    if *blake3::hash(&data).as_bytes() != recorded {
        return Err("it differs from what the verified baseline records".into());
    }
    Ok(Some(data))
}

/// The files named by `entries`: each file, and the files of each
/// directory whose name `keep` accepts, sorted.
fn files_of(entries: &[PathBuf], keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for k in entries {
        match std::fs::symlink_metadata(k) {
            Ok(m) if m.is_dir() => {
                let mut names: Vec<PathBuf> = std::fs::read_dir(k)
                    .map(|d| d.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                names.sort();
                files.extend(
                    names
                        .into_iter()
                        .filter(|p| keep(&p.file_name().unwrap_or_default().to_string_lossy())),
                );
            }
            Ok(_) => files.push(k.clone()),
            Err(_) => {}
        }
    }
    files
}

/// What of apt's trust `baseline` (whose seal verified) vouches for; an
/// error says why nothing is.
pub fn trusted_keys(
    paths: &AptPaths,
    baseline: Result<&crate::baseline::Baseline, &str>,
) -> Result<Anchored, String> {
    let baseline = baseline.map_err(|why| format!("no keyring is trusted: {why}"))?;
    // Debian's retired archive keys sign nothing current.
    let keyring_name =
        |n: &str| (n.ends_with(".gpg") || n.ends_with(".asc")) && !n.ends_with("-removed-keys.gpg");
    let mut keyrings = HashMap::new();
    let mut unrecorded = 0;
    for file in files_of(&paths.keyrings, &keyring_name) {
        let shown = crate::escape::escape_path(&file);
        match anchored(baseline, &file, MAX_KEYRING_BYTES) {
            Ok(Some(data)) => match openpgp::keys(&data) {
                Ok(k) => {
                    keyrings.insert(file, k);
                }
                Err(e) => log::warn!("keyring {shown} is not read: {e}"),
            },
            Ok(None) => unrecorded += 1,
            Err(e) => log::warn!("keyring {shown} is not trusted: {e}"),
        }
    }
    if keyrings.is_empty() {
        return Err(format!(
            "no keyring the verified baseline records is here as it records it \
             ({unrecorded} keyrings it does not record; add apt's keyrings to the rules)"
        ));
    }
    let mut default: Vec<PathBuf> = keyrings
        .keys()
        .filter(|k| {
            k.ends_with("trusted.gpg") || k.parent().is_some_and(|d| d.ends_with("trusted.gpg.d"))
        })
        .cloned()
        .collect();
    let mut found = Vec::new();
    let source_name = |n: &str| n.ends_with(".list") || n.ends_with(".sources");
    for file in files_of(&paths.sources, &source_name) {
        let shown = crate::escape::escape_path(&file);
        let text = match anchored(baseline, &file, crate::files::MAX_SMALL_FILE_BYTES) {
            Ok(Some(t)) => String::from_utf8_lossy(&t).into_owned(),
            Ok(None) => continue,
            Err(e) => {
                // Its Signed-By is unknown now: apt's default keyrings must
                // not take over its sources (fail closed, for all).
                log::warn!(
                    "apt source {shown} is not read: {e}; no package is verified through the \
                     archive until it is reviewed and recorded again (tripseal update)"
                );
                default.clear();
                continue;
            }
        };
        let deb822 = file.extension().is_some_and(|e| e == "sources");
        found.extend(sources(&text, deb822));
    }
    let mut anchored = Anchored {
        keyrings,
        default,
        bindings: HashMap::new(),
    };
    for source in &found {
        anchored.bind(source);
    }
    Ok(anchored)
}

/// One `deb` source of apt's configuration.
#[derive(Debug, PartialEq, Eq)]
struct Source {
    uri: String,
    suites: Vec<String>,
    /// The keyring files of `Signed-By`; `None` without the field (apt's
    /// default keyrings). A fingerprint or an inline key is not a file, and
    /// binds to nothing.
    signed_by: Option<Vec<PathBuf>>,
}

impl Source {
    /// The prefix of the lists files apt names after this source, one per
    /// suite (apt's `URItoFileName` of `URI/dists/SUITE/`, or of
    /// `URI/SUITE` for a flat repository).
    fn prefixes(&self) -> Vec<String> {
        self.suites
            .iter()
            .filter_map(|suite| lists_prefix(&self.uri, suite))
            .collect()
    }
}

/// apt's `URItoFileName` of the directory of a source's `InRelease`.
fn lists_prefix(uri: &str, suite: &str) -> Option<String> {
    let (_, rest) = uri.split_once(':')?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let mut base = format!("{host}{path}");
    if !base.ends_with('/') {
        base.push('/');
    }
    let full = if suite.ends_with('/') {
        format!("{base}{suite}")
    } else {
        format!("{base}dists/{suite}/")
    };
    // apt's QuoteString, then '/' -> '_'.
    let mut out = String::new();
    for b in full.bytes() {
        if b <= 0x20 || b >= 0x7f || b"\\|{}[]<>\"^~_=!@#$%&*".contains(&b) {
            out.push_str(&format!("%{b:02x}"));
        } else if b == b'/' {
            out.push('_');
        } else {
            out.push(b as char);
        }
    }
    Some(out)
}

/// The `deb` sources of a `sources.list` file (one-line style) or of a
/// `.sources` file (deb822).
fn sources(text: &str, deb822: bool) -> Vec<Source> {
    let keyrings = |v: &str| -> Vec<PathBuf> {
        v.split(|c: char| c == ',' || c.is_whitespace())
            .map(str::trim)
            .filter(|k| k.starts_with('/'))
            .map(PathBuf::from)
            .collect()
    };
    let mut out = Vec::new();
    if deb822 {
        for stanza in text.split("\n\n") {
            let fields = super::dpkg::fields(stanza);
            let get = |k: &str| {
                fields
                    .iter()
                    .find(|(f, _)| f.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.as_str())
            };
            if !get("Types").is_some_and(|t| t.split_whitespace().any(|t| t == "deb"))
                || get("Enabled").is_some_and(|e| e.eq_ignore_ascii_case("no"))
            {
                continue;
            }
            let signed_by = get("Signed-By").map(keyrings);
            let suites: Vec<String> = get("Suites")
                .unwrap_or("")
                .split_whitespace()
                .map(String::from)
                .collect();
            for uri in get("URIs").unwrap_or("").split_whitespace() {
                out.push(Source {
                    uri: uri.to_string(),
                    suites: suites.clone(),
                    signed_by: signed_by.clone(),
                });
            }
        }
        return out;
    }
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some(rest) = line
            .strip_prefix("deb ")
            .or_else(|| line.strip_prefix("deb\t"))
        else {
            continue;
        };
        let rest = rest.trim_start();
        let (options, rest) = match rest.strip_prefix('[') {
            Some(r) => match r.split_once(']') {
                Some((o, r)) => (o, r),
                None => continue,
            },
            None => ("", rest),
        };
        let signed_by = options
            .split_whitespace()
            .find_map(|o| o.strip_prefix("signed-by="))
            .map(keyrings);
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        out.push(Source {
            uri: uri.to_string(),
            suites: vec![suite.to_string()],
            signed_by,
        });
    }
    out
}

/// An installed package, as its `.deb` is named.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Deb {
    pub name: String,
    pub version: String,
    pub arch: String,
}

impl Deb {
    /// apt's file name for it (an epoch's `:` is written `%3a`).
    fn file_name(&self) -> String {
        format!(
            "{}_{}_{}.deb",
            self.name,
            self.version.replace(':', "%3a"),
            self.arch
        )
    }
}

/// What the archive says a package shipped: the paths of its `md5sums`
/// (with a leading `/`) and their checksums.
pub(super) struct Shipped {
    pub md5sums: HashMap<Vec<u8>, [u8; 16]>,
    /// Which `InRelease` vouched for it, and the key that signed it.
    pub via: String,
}

/// A package's checksums: path (with its leading `/`) → MD5.
type Md5Sums = HashMap<Vec<u8>, [u8; 16]>;

/// A `.deb` as a verified index lists it: SHA-256, size, and whose word.
type Listed = ([u8; 32], u64, std::rc::Rc<str>);

/// The `.deb`s checked so far, and the signed indexes, read once.
pub(super) struct Archive {
    paths: AptPaths,
    keys: Result<Anchored, String>,
    /// The `.deb` files in the cache.
    cached: Option<HashSet<String>>,
    /// SHA-256 and size of each cached `.deb` a verified index lists; or why
    /// there is none.
    /// Several indexes may list one file name (a point release and its
    /// security updates, or another archive): each is a candidate.
    index: Option<Result<HashMap<String, Vec<Listed>>, String>>,
    checked: HashMap<Deb, Result<std::rc::Rc<Shipped>, String>>,
}

impl Archive {
    pub(super) fn new(paths: AptPaths, keys: Result<Anchored, String>) -> Archive {
        Archive {
            paths,
            keys,
            cached: None,
            index: None,
            checked: HashMap::new(),
        }
    }

    /// Forgets what the cache and the lists held; the keys stay.
    pub(super) fn forget(&mut self) {
        self.cached = None;
        self.index = None;
        self.checked.clear();
    }

    /// What the archive says `deb` shipped, or why that cannot be known.
    pub(super) fn shipped(&mut self, deb: &Deb) -> Result<std::rc::Rc<Shipped>, String> {
        if let Some(r) = self.checked.get(deb) {
            return r.clone();
        }
        let r = self.check(deb);
        self.checked.insert(deb.clone(), r.clone());
        r
    }

    fn check(&mut self, deb: &Deb) -> Result<std::rc::Rc<Shipped>, String> {
        if let Err(why) = &self.keys {
            return Err(why.clone());
        }
        let name = deb.file_name();
        let archives = self.paths.archives.clone();
        let cached = self.cached.get_or_insert_with(|| {
            std::fs::read_dir(&archives)
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| e.file_name().into_string().ok())
                        .filter(|n| n.ends_with(".deb"))
                        .collect()
                })
                .unwrap_or_default()
        });
        if !cached.contains(&name) {
            return Err(format!(
                "its .deb is not in apt's cache ({})",
                archives.display()
            ));
        }
        if self.index.is_none() {
            let index = self.read_index();
            self.index = Some(index);
        }
        let index = match self.index.as_ref().expect("read above") {
            Ok(i) => i,
            Err(why) => return Err(why.clone()),
        };
        let Some(listed) = index.get(&name) else {
            return Err(format!(
                "no Packages index signed by a trusted key lists {name}"
            ));
        };
        let (md5sums, i) = read_deb(&archives.join(&name), listed)?;
        Ok(std::rc::Rc::new(Shipped {
            md5sums,
            via: listed[i].2.to_string(),
        }))
    }

    /// Every verified `InRelease` of the lists, and every `Packages` index
    /// it vouches for, kept for the cached `.deb`s only.
    fn read_index(&self) -> Result<HashMap<String, Vec<Listed>>, String> {
        let anchored = self.keys.as_ref().map_err(Clone::clone)?;
        let cached = self.cached.as_ref().expect("listed first");
        let lists = &self.paths.lists;
        let mut names: Vec<String> = std::fs::read_dir(lists)
            .map_err(|e| format!("apt's lists {}: {e}", lists.display()))?
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        let mut out: HashMap<String, Vec<Listed>> = HashMap::new();
        let mut refused = Vec::new();
        for release in names.iter().filter(|n| n.ends_with("_InRelease")) {
            let prefix = &release[..release.len() - "InRelease".len()];
            // Only the keys apt itself would check this source with.
            let keys = anchored.keys_for(prefix);
            let verified = read_record_nofollow(&lists.join(release), MAX_RELEASE_BYTES)
                .and_then(|m| openpgp::verify_cleartext(&m, &keys));
            let verified = match verified {
                Ok(v) => v,
                Err(e) => {
                    log::debug!("{release}: not used: {e}");
                    refused.push(format!("{release}: {e}"));
                    continue;
                }
            };
            let via: std::rc::Rc<str> =
                format!("{release}, signed by key {}", verified.signer).into();
            for (index, (sha, size)) in sha256_entries(&verified.text) {
                if !(index == "Packages" || index.ends_with("/Packages")) {
                    continue;
                }
                let base = format!("{prefix}{}", index.replace('/', "_"));
                let Some(text) = read_packages(lists, &base, &names) else {
                    continue;
                };
                let text = match text {
                    Ok(t) => t,
                    Err(e) => {
                        log::warn!("{base}: not used: {e}");
                        continue;
                    }
                };
                if text.len() as u64 != size || sha2::Sha256::digest(&text)[..] != sha {
                    log::warn!(
                        "{} is not what {release} signs, so it vouches for no package",
                        crate::escape::escape_path(&lists.join(&base))
                    );
                    continue;
                }
                for (file, (sha, size)) in packages_entries(&text) {
                    if cached.contains(&file) {
                        out.entry(file).or_default().push((sha, size, via.clone()));
                    }
                }
            }
        }
        if out.is_empty() && !refused.is_empty() {
            return Err(format!(
                "no InRelease of apt's lists verified: {}",
                refused.join("; ")
            ));
        }
        Ok(out)
    }
}

fn read_record_nofollow(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    crate::files::read_no_follow(path, max)
        .map(|(bytes, _)| bytes)
        .map_err(|e| e.to_string())
}

/// The `SHA256:` entries of a Release text: path → (digest, size).
fn sha256_entries(release: &[u8]) -> Vec<(String, ([u8; 32], u64))> {
    let text = String::from_utf8_lossy(release);
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if let Some(entry) = line.strip_prefix(' ') {
            if !inside {
                continue;
            }
            let mut w = entry.split_whitespace();
            let (Some(h), Some(s), Some(p), None) = (w.next(), w.next(), w.next(), w.next()) else {
                continue;
            };
            if let (Some(h), Ok(s)) = (hex_digest::<32>(h.as_bytes()), s.parse()) {
                out.push((p.to_string(), (h, s)));
            }
        } else {
            inside = line.trim_end() == "SHA256:";
        }
    }
    out
}

/// The `Packages` index apt stored under `base`, decompressed; `None` when
/// apt has none of that name.
fn read_packages(lists: &Path, base: &str, names: &[String]) -> Option<Result<Vec<u8>, String>> {
    let name = ["", ".lz4", ".gz", ".xz"]
        .into_iter()
        .map(|ext| format!("{base}{ext}"))
        .find(|n| names.contains(n))?;
    Some(
        read_record_nofollow(&lists.join(&name), MAX_INDEX_BYTES).and_then(|raw| {
            let mut out = Vec::new();
            let r = if name.ends_with(".lz4") {
                lz4_flex::frame::FrameDecoder::new(&raw[..])
                    .take(MAX_INDEX_BYTES)
                    .read_to_end(&mut out)
                    .map(drop)
                    .map_err(|e| e.to_string())
            } else if name.ends_with(".gz") {
                flate2::read::GzDecoder::new(&raw[..])
                    .take(MAX_INDEX_BYTES)
                    .read_to_end(&mut out)
                    .map(drop)
                    .map_err(|e| e.to_string())
            } else if name.ends_with(".xz") {
                xz(&raw, MAX_INDEX_BYTES).map(|v| out = v)
            } else {
                out = raw;
                Ok(())
            };
            r.map(|()| out)
        }),
    )
}

fn xz(raw: &[u8], max: u64) -> Result<Vec<u8>, String> {
    let mut out = Bounded(Vec::new(), max as usize);
    lzma_rs::xz_decompress(&mut std::io::BufReader::new(raw), &mut out)
        .map_err(|e| e.to_string())?;
    Ok(out.0)
}

/// A buffer that refuses to grow past its bound (a decompression bomb).
struct Bounded(Vec<u8>, usize);

impl std::io::Write for Bounded {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + buf.len() > self.1 {
            return Err(std::io::Error::other(format!(
                "it decompresses to more than {} bytes",
                self.1
            )));
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `.deb` file name, SHA-256 and size of each stanza of a `Packages`
/// index.
fn packages_entries(text: &[u8]) -> Vec<(String, ([u8; 32], u64))> {
    let text = String::from_utf8_lossy(text);
    let mut out = Vec::new();
    for stanza in text.split("\n\n") {
        let fields = super::dpkg::fields(stanza);
        let get = |k: &str| fields.get(k).map(String::as_str);
        let (Some(name), Some(version), Some(arch), Some(sha), Some(size)) = (
            get("Package"),
            get("Version"),
            get("Architecture"),
            get("SHA256").and_then(|h| hex_digest::<32>(h.as_bytes())),
            get("Size").and_then(|s| s.parse().ok()),
        ) else {
            continue;
        };
        let deb = Deb {
            name: name.into(),
            version: version.into(),
            arch: arch.into(),
        };
        out.push((deb.file_name(), (sha, size)));
    }
    out
}

/// Reads the `.deb` at `path` in one pass: its SHA-256 and size must be
/// those of one of the `listed` candidates (which one is returned), and
/// its control archive's `md5sums` is what it shipped. One pass, so what
/// is parsed is what was hashed.
fn read_deb(path: &Path, listed: &[Listed]) -> Result<(Md5Sums, usize), String> {
    let shown = crate::escape::escape_path(path);
    let (file, meta) = crate::files::open_untrusted(path, MAX_DEB_BYTES, false)
        .map_err(|e| format!("{shown}: {e}"))?;
    let size = meta.len();
    if !listed.iter().any(|l| l.1 == size) {
        return Err(format!(
            "{shown} is not the .deb the archive signed (its size differs)"
        ));
    }
    let mut r = Hashing {
        inner: std::io::BufReader::new(file.take(size)),
        sha: sha2::Sha256::new(),
    };
    let control = ar_control(&mut r).map_err(|e| format!("{shown}: {e}"))?;
    std::io::copy(&mut r, &mut std::io::sink()).map_err(|e| format!("{shown}: {e}"))?;
    let sha: [u8; 32] = r.sha.finalize().into();
    let Some(which) = listed.iter().position(|l| l.0 == sha && l.1 == size) else {
        return Err(format!("{shown} is not the .deb the archive signed"));
    };
    let (member, data) = control.ok_or(format!("{shown} holds no control archive"))?;
    let tar = decompress(&member, &data).map_err(|e| format!("{shown}: {member}: {e}"))?;
    let mut md5sums = HashMap::new();
    let mut archive = tar::Archive::new(&tar[..]);
    let entries = archive.entries().map_err(|e| format!("{shown}: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("{shown}: {e}"))?;
        let is_md5sums = entry
            .path()
            .is_ok_and(|p| p == Path::new("./md5sums") || p == Path::new("md5sums"));
        if !is_md5sums {
            continue;
        }
        let mut text = Vec::new();
        entry
            .read_to_end(&mut text)
            .map_err(|e| format!("{shown}: {e}"))?;
        md5sums.extend(super::dpkg::md5sums_lines(&text));
    }
    Ok((md5sums, which))
}

fn decompress(member: &str, data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    match member {
        "control.tar" => out.extend_from_slice(data),
        "control.tar.gz" => {
            let mut bounded = Bounded(Vec::new(), MAX_CONTROL_BYTES as usize);
            std::io::copy(&mut flate2::read::GzDecoder::new(data), &mut bounded)
                .map_err(|e| e.to_string())?;
            out = bounded.0;
        }
        "control.tar.xz" => out = xz(data, MAX_CONTROL_BYTES)?,
        // Ubuntu's .debs (dpkg-deb -Zzstd). The window bounds what an
        // unverified file makes the decoder hold (zstd -19 uses 8 MiB), and
        // more output than the bound is an error, not a cut.
        "control.tar.zst" => {
            let mut z = ruzstd::decoding::StreamingDecoder::new_with_max_window_size(data, 8 << 20)
                .map_err(|e| e.to_string())?;
            let mut bounded = Bounded(Vec::new(), MAX_CONTROL_BYTES as usize);
            std::io::copy(&mut z, &mut bounded).map_err(|e| e.to_string())?;
            out = bounded.0;
        }
        other => return Err(format!("{other} is a compression tripseal does not read")),
    }
    Ok(out)
}

/// Reads through, hashing everything read.
struct Hashing<R> {
    inner: R,
    sha: sha2::Sha256,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
}

/// Walks the `ar` members of a `.deb` up to and including its control
/// archive, returning that member's name and bytes.
fn ar_control(r: &mut impl Read) -> Result<Option<(String, Vec<u8>)>, String> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|e| e.to_string())?;
    if &magic != b"!<arch>\n" {
        return Err("it is not a .deb (no ar archive)".into());
    }
    loop {
        let mut head = [0u8; 60];
        // The archive may end between members, never inside a header.
        let mut got = 0;
        while got < head.len() {
            match r.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        match got {
            0 => return Ok(None),
            60 => {}
            _ => return Err("an ar member header cut short".into()),
        }
        if &head[58..60] != b"`\n" {
            return Err("a malformed ar member header".into());
        }
        let name = String::from_utf8_lossy(&head[..16])
            .trim_end()
            .trim_end_matches('/')
            .to_string();
        let size: u64 = std::str::from_utf8(&head[48..58])
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or("a malformed ar member size")?;
        let padded = size + size % 2;
        if name.starts_with("control.tar") {
            if size > MAX_CONTROL_BYTES {
                return Err(format!(
                    "its {name} is larger than {MAX_CONTROL_BYTES} bytes"
                ));
            }
            let mut data = vec![0u8; size as usize];
            r.read_exact(&mut data).map_err(|e| e.to_string())?;
            return Ok(Some((name, data)));
        }
        std::io::copy(&mut r.take(padded), &mut std::io::sink()).map_err(|e| e.to_string())?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_sha256_entries_are_read_from_their_own_field_only() {
        let release = b"Origin: x\nMD5Sum:\n 00000000000000000000000000000000 5 main/binary-all/Packages\n\
SHA256:\n 0000000000000000000000000000000000000000000000000000000000000001 12 main/binary-all/Packages\n \
bad line\nDate: now\n";
        let e = sha256_entries(release);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "main/binary-all/Packages");
        assert_eq!(e[0].1.1, 12);
    }

    #[test]
    fn a_source_names_its_lists_files_as_apt_does() {
        assert_eq!(
            lists_prefix("http://deb.debian.org/debian", "bookworm").unwrap(),
            "deb.debian.org_debian_dists_bookworm_"
        );
        assert_eq!(
            lists_prefix("https://u:p@h:8080/a_b/", "stable~x").unwrap(),
            "h:8080_a%5fb_dists_stable%7ex_"
        );
        assert_eq!(
            lists_prefix("copy:/srv/repo", "./").unwrap(),
            "_srv_repo_._"
        );
    }

    #[test]
    fn a_source_without_signed_by_takes_apts_default_keyrings_and_a_fingerprint_none() {
        let default = PathBuf::from("/etc/apt/trusted.gpg.d/debian.gpg");
        let mut a = Anchored {
            keyrings: HashMap::new(),
            default: vec![default.clone()],
            bindings: HashMap::new(),
        };
        let text = "deb http://h/plain bookworm main\n\
                    deb [signed-by=/k/a.gpg,/k/b.gpg] http://h/own bookworm main\n\
                    deb [signed-by=0123456789ABCDEF0123456789ABCDEF01234567] http://h/fpr s main\n";
        for source in sources(text, false) {
            a.bind(&source);
        }
        let rings =
            |uri: &str, suite: &str| a.rings_for(&lists_prefix(uri, suite).unwrap()).to_vec();
        assert_eq!(rings("http://h/plain", "bookworm"), [default]);
        assert_eq!(
            rings("http://h/own", "bookworm"),
            [PathBuf::from("/k/a.gpg"), PathBuf::from("/k/b.gpg")]
        );
        assert!(rings("http://h/fpr", "s").is_empty());
    }

    #[test]
    fn signed_by_is_read_from_both_styles_of_sources() {
        let one = sources(
            "# c\ndeb [arch=amd64 signed-by=/k/a.gpg] http://h/d bookworm main\n\
             deb-src http://h/d bookworm main\ndeb http://h/e stable main # x\n",
            false,
        );
        assert_eq!(one.len(), 2);
        assert_eq!(one[0].signed_by, Some(vec![PathBuf::from("/k/a.gpg")]));
        assert_eq!(one[1].signed_by, None);
        let deb822 = sources(
            "Types: deb deb-src\nURIs: http://h/d\nSuites: bookworm bookworm-updates\n\
             Components: main\nSigned-By: /usr/share/keyrings/x.gpg\n\n\
             Types: deb\nURIs: http://h/off\nSuites: s\nEnabled: no\n",
            true,
        );
        assert_eq!(deb822.len(), 1);
        assert_eq!(deb822[0].prefixes().len(), 2);
        assert_eq!(
            deb822[0].signed_by,
            Some(vec![PathBuf::from("/usr/share/keyrings/x.gpg")])
        );
    }

    #[test]
    fn an_epoch_is_escaped_in_a_deb_name() {
        let d = Deb {
            name: "p".into(),
            version: "1:2.0-1".into(),
            arch: "amd64".into(),
        };
        assert_eq!(d.file_name(), "p_1%3a2.0-1_amd64.deb");
    }

    #[test]
    fn a_file_that_is_no_ar_archive_is_refused() {
        assert!(ar_control(&mut &b"PK\x03\x04 not a deb"[..]).is_err());
        assert!(ar_control(&mut &b"!<arch>\nshort"[..]).is_err());
    }
}
