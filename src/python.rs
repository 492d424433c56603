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
        return pth(&d.path);
    }
    if name == "sitecustomize.py" || name == "usercustomize.py" {
        let which = name.trim_end_matches(".py");
        let what = match d.kind {
            DriftKind::Added => "a new",
            _ => "a changed",
        };
        return Some(Finding {
            kind: Kind::PythonHook,
            reason: if which == "sitecustomize" {
                "sitecustomize"
            } else {
                "usercustomize"
            },
            detail: format!(
                "{what} {name}: the site module imports it at every start of the interpreters \
                 whose path holds its directory"
            ),
        });
    }
    if name.ends_with(".pyc") {
        return pyc(&d.path);
    }
    None
}

/// A `.pth` file's lines that `site` executes: those that begin with
/// `import` and a space or a tab.
fn pth(path: &Path) -> Option<Finding> {
    let text = read(path, MAX_PTH_BYTES).ok()?;
    let line = text
        .split(|&b| b == b'\n')
        .find(|l| l.starts_with(b"import ") || l.starts_with(b"import\t"))?;
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    Some(Finding {
        kind: Kind::PythonHook,
        reason: "pth-import",
        detail: format!(
            "the site module executes its line {} at every start of the interpreter",
            crate::escape::escape_bytes(&line[..line.len().min(200)])
        ),
    })
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
        return mismatch("it is no CPython 3.7+ bytecode file".into());
    }
    let magic = u16::from_le_bytes([head[0], head[1]]);
    // PEP 552 (3.7, magic 3390 and later): flags, then a source hash or
    // the source's mtime and size. Earlier 3.x: mtime and size at once.
    let (flags, fields) = if magic >= 3390 {
        (
            u32::from_le_bytes(head[4..8].try_into().ok()?),
            &head[8..16],
        )
    } else {
        (0, &head[4..12])
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
    let (file, _) = crate::files::open_untrusted(path, max, false)?;
    let mut v = Vec::new();
    file.take(max).read_to_end(&mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

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
