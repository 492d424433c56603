//! Python's start-up hooks and bytecode, as findings of their own: a `.pth`
//! file with a line that `site` executes, a new or changed
//! `sitecustomize.py` or `usercustomize.py`, and a `.pyc` that does not
//! match its source (bytecode swapped under an unchanged `.py`) or has no
//! source at all.
//!
//! Only drifted paths are inspected, each once: what a baseline accepted
//! is the operator's call. Files are read as data, never through a
//! symlink, never a FIFO or a device, and never executed.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::compare::{Drift, DriftKind};
use crate::scan::FileKind;

/// A `.pth` file is read up to this size (`site` reads it whole, but one of
/// more is no path list).
const MAX_PTH_BYTES: u64 = 1 << 20;
/// A source file hashed for a hash-based `.pyc`, at most.
const MAX_SOURCE_BYTES: u64 = 64 << 20;

/// Which finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `fim-python-hook`: code that runs at every interpreter start.
    PythonHook,
    /// `fim-pyc-mismatch`: bytecode that is not its source's.
    PycMismatch,
}

impl Kind {
    /// The event type.
    pub fn event(self) -> &'static str {
        match self {
            Kind::PythonHook => "fim-python-hook",
            Kind::PycMismatch => "fim-pyc-mismatch",
        }
    }
}

/// What a drifted path is, beyond "a file changed".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub kind: Kind,
    /// A token: `pth-import`, `sitecustomize`, `usercustomize`,
    /// `pyc-header`, `pyc-no-source`.
    pub reason: &'static str,
    /// The sentence that says it (with the executing line, or the source).
    pub detail: String,
}

/// The finding on drift record `d`, if it is one: an added or changed
/// regular file, whose name makes it a hook or bytecode.
pub fn inspect(d: &Drift) -> Option<Finding> {
    if !matches!(d.kind, DriftKind::Added | DriftKind::Changed) || d.problem.is_some() {
        return None;
    }
    if d.entry.meta.map(|m| m.kind) != Some(FileKind::File) {
        return None;
    }
    let name = d.path.file_name()?.to_str()?;
    if name.ends_with(".pth") {
        return pth(&d.path, d.entry.hash);
    }
    if let Some(which) = customize(&d.path) {
        let what = match d.kind {
            DriftKind::Added => "a new",
            _ => "a changed",
        };
        return Some(Finding {
            kind: Kind::PythonHook,
            reason: which,
            detail: format!(
                "{what} {which} module ({}): the site module imports it at every start of the \
                 interpreters whose path holds it",
                crate::escape::escape_bytes(name.as_bytes())
            ),
        });
    }
    if name.ends_with(".pyc") {
        return pyc(&d.path);
    }
    None
}

/// `sitecustomize` or `usercustomize` when `path` is a module of that name
/// that an import can load: `NAME.py`, a sourceless `NAME.pyc`, an
/// extension `NAME.*.so`, or a package's `NAME/__init__.py` (bytecode in
/// `__pycache__` is judged as bytecode).
fn customize(path: &Path) -> Option<&'static str> {
    let name = path.file_name()?.to_str()?;
    let parent = path
        .parent()
        .and_then(Path::file_name)
        .and_then(|n| n.to_str());
    if parent == Some("__pycache__") {
        return None;
    }
    let module = if name == "__init__.py" {
        parent?
    } else {
        let (stem, ext) = name.split_once('.')?;
        let loadable = ext == "py" || ext == "pyc" || ext == "so" || ext.ends_with(".so");
        if !loadable {
            return None;
        }
        stem
    };
    ["sitecustomize", "usercustomize"]
        .into_iter()
        .find(|m| *m == module)
}

/// Python's line breaks (`str.splitlines`, which `site` uses since 3.13;
/// universal newlines before): `\n`, `\r`, and the rarer ones.
fn python_lines(text: &str) -> impl Iterator<Item = &str> {
    text.split([
        '\n', '\r', '\x0b', '\x0c', '\x1c', '\x1d', '\x1e', '\u{85}', '\u{2028}', '\u{2029}',
    ])
}

/// A `.pth` file's lines that `site` executes: those that begin with
/// `import` and a space or a tab. Only content that is still the scanned
/// (`hash`) is judged; one larger than tripseal reads is a finding of its
/// own, since `site` reads it whole.
fn pth(path: &Path, hash: Option<[u8; 32]>) -> Option<Finding> {
    let (file, meta) = crate::files::open_untrusted(path, u64::MAX, false).ok()?;
    let finding = |detail: String| {
        Some(Finding {
            kind: Kind::PythonHook,
            reason: "pth-import",
            detail,
        })
    };
    if meta.len() > MAX_PTH_BYTES {
        return finding(format!(
            "a .pth file of {} bytes, more than tripseal reads ({MAX_PTH_BYTES}); the site \
             module reads it whole and executes its import lines",
            meta.len()
        ));
    }
    let mut data = Vec::new();
    file.take(MAX_PTH_BYTES).read_to_end(&mut data).ok()?;
    if hash.is_some_and(|h| *blake3::hash(&data).as_bytes() != h) {
        return None;
    }
    let text = String::from_utf8_lossy(&data);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let line =
        python_lines(text).find(|l| l.starts_with("import ") || l.starts_with("import\t"))?;
    let shown: String = line.chars().take(200).collect();
    finding(format!(
        "the site module executes its line {} at every start of the interpreter",
        crate::escape::escape_bytes(shown.as_bytes())
    ))
}

/// Where CPython looks for the source of the bytecode at `pyc`: beside a
/// `__pycache__` directory, `NAME.py` for `NAME.TAG[.opt-N].pyc`; beside a
/// legacy `NAME.pyc`, `NAME.py`. The second is whether it is legacy
/// (importable without its source).
fn source_of(pyc: &Path) -> Option<(PathBuf, bool)> {
    let dir = pyc.parent()?;
    let stem = pyc.file_name()?.to_str()?.strip_suffix(".pyc")?;
    if dir.file_name().is_some_and(|d| d == "__pycache__") {
        let stem = match stem.rsplit_once(".opt-") {
            Some((s, level)) if level.bytes().all(|b| b.is_ascii_digit()) => s,
            _ => stem,
        };
        let (name, _tag) = stem.rsplit_once('.')?;
        Some((dir.parent()?.join(format!("{name}.py")), false))
    } else {
        Some((dir.join(format!("{stem}.py")), true))
    }
}

fn pyc(path: &Path) -> Option<Finding> {
    let (source, legacy) = source_of(path)?;
    let shown = crate::escape::escape_path(&source);
    let meta = match std::fs::metadata(&source) {
        // Python 3 never reads a legacy .pyc that has its source beside it.
        Ok(_) if legacy => return None,
        Ok(m) if m.is_file() => m,
        _ => {
            return Some(Finding {
                kind: Kind::PycMismatch,
                reason: "pyc-no-source",
                detail: if legacy {
                    format!(
                        "no source {shown} beside it: Python imports this bytecode as the \
                         module itself"
                    )
                } else {
                    format!(
                        "no source {shown}: nothing Python writes leaves bytecode without its \
                         source"
                    )
                },
            });
        }
    };
    let mut head = [0u8; 16];
    let (file, _) = crate::files::open_untrusted(path, u64::MAX, false).ok()?;
    let got = file.take(16).read(&mut head).ok()?;
    let mismatch = |why: String| {
        Some(Finding {
            kind: Kind::PycMismatch,
            reason: "pyc-header",
            detail: format!("its header does not match its source {shown}: {why}"),
        })
    };
    if got < 16 || &head[2..4] != b"\r\n" {
        return mismatch("it is no CPython bytecode file".into());
    }
    let magic = u16::from_le_bytes([head[0], head[1]]);
    // PEP 552 (3.7, magic 3390 up to 3.x's 3999): flags, then a source
    // hash or the source's mtime and size; 3.3 to 3.6 (3190-3389): mtime
    // and size at once. Anything else (Python 2, 3.0-3.2) has a header of
    // another shape: not judged.
    let (flags, fields) = match magic {
        3390..=3999 => (
            u32::from_le_bytes(head[4..8].try_into().ok()?),
            &head[8..16],
        ),
        3190..=3389 => (0, &head[4..12]),
        _ => return None,
    };
    if flags & 1 == 1 {
        let recorded = u64::from_le_bytes(fields.try_into().ok()?);
        let key = u32::from_le_bytes(head[0..4].try_into().ok()?) as u64;
        let Ok(text) = read(&source, MAX_SOURCE_BYTES) else {
            return None;
        };
        // CPython's _imp.source_hash: SipHash keyed by the magic number
        // (SipHash-1-3 since 3.11, SipHash-2-4 before).
        use std::hash::Hasher;
        let mut h13 = siphasher::sip::SipHasher13::new_with_keys(key, 0);
        h13.write(&text);
        let mut h24 = siphasher::sip::SipHasher24::new_with_keys(key, 0);
        h24.write(&text);
        if recorded != h13.finish() && recorded != h24.finish() {
            return mismatch(format!(
                "it records source hash {recorded:016x}, and the source hashes otherwise"
            ));
        }
        return None;
    }
    let mtime = u32::from_le_bytes(fields[0..4].try_into().ok()?);
    let size = u32::from_le_bytes(fields[4..8].try_into().ok()?);
    let (now_mtime, now_size) = (meta.mtime() as u32, meta.size() as u32);
    if (mtime, size) != (now_mtime, now_size) {
        return mismatch(format!(
            "it was compiled from a source of {size} bytes modified at {mtime}, and the source \
             is {now_size} bytes modified at {now_mtime}"
        ));
    }
    None
}

fn read(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    crate::files::read_no_follow(path, max).map(|(bytes, _)| bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_an_import_loads_is_a_customize_module() {
        for (path, is) in [
            ("/l/sitecustomize.py", Some("sitecustomize")),
            (
                "/l/usercustomize.cpython-311-x86_64-linux-gnu.so",
                Some("usercustomize"),
            ),
            ("/l/sitecustomize.so", Some("sitecustomize")),
            ("/l/sitecustomize/__init__.py", Some("sitecustomize")),
            ("/l/sitecustomize.also", None),
            ("/l/sitecustomize.py.bak", None),
            ("/l/__pycache__/sitecustomize.cpython-311.pyc", None),
        ] {
            assert_eq!(customize(Path::new(path)), is, "{path}");
        }
    }

    #[test]
    fn a_pycs_source_is_where_cpython_looks_for_it() {
        assert_eq!(
            source_of(Path::new("/a/p/__pycache__/m.cpython-311.pyc")),
            Some((PathBuf::from("/a/p/m.py"), false))
        );
        assert_eq!(
            source_of(Path::new("/a/p/__pycache__/m.x.cpython-311.opt-2.pyc")),
            Some((PathBuf::from("/a/p/m.x.py"), false))
        );
        assert_eq!(
            source_of(Path::new("/a/p/m.pyc")),
            Some((PathBuf::from("/a/p/m.py"), true))
        );
    }
}
