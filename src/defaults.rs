//! Where things are when nobody says: rules, baseline path, host name.
//!
//! A system install keeps its rules in `/etc/tripseal/` and its baselines in
//! `/var/lib/tripseal/`; run from a checkout, tripseal uses the repository's
//! `rules/` and `baselines/`; with neither, the rules built into the binary.

use std::ffi::CStr;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::rules::RulesSource;

pub const SYSTEM_RULES: &str = "/etc/tripseal/rules.toml";
pub const SYSTEM_STATE_DIR: &str = "/var/lib/tripseal";
pub const REPO_RULES: &str = "rules/celery-worker.toml";
pub const REPO_BASELINES: &str = "baselines";

/// Reads a rules file. With `strict`, for rules a baseline will be made
/// with, one that others could have written is refused (sshd's StrictModes).
pub fn read_rules(path: &Path, strict: bool) -> Result<RulesSource, Error> {
    let max = crate::files::MAX_SMALL_FILE_BYTES;
    let text = if strict {
        crate::files::read_strict(path, max)?
    } else {
        crate::files::read_untrusted(path, max).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?
    };
    let text = String::from_utf8(text).map_err(|e| {
        Error::Rules(crate::rules::RulesError {
            file: path.display().to_string(),
            line: 1,
            column: 1,
            message: format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        })
    })?;
    Ok(RulesSource {
        name: path.display().to_string(),
        text,
    })
}

/// The rules to use when `--rules` is not given.
pub fn default_rules(strict: bool) -> Result<RulesSource, Error> {
    for candidate in [SYSTEM_RULES, REPO_RULES] {
        if Path::new(candidate).exists() {
            return read_rules(Path::new(candidate), strict);
        }
    }
    Ok(RulesSource::embedded())
}

/// The baseline path to use when `--db` is not given.
pub fn default_db(host: &str) -> PathBuf {
    let dir = if Path::new(SYSTEM_STATE_DIR).is_dir() {
        Path::new(SYSTEM_STATE_DIR)
    } else {
        Path::new(REPO_BASELINES)
    };
    dir.join(format!("{}.db", file_safe(host)))
}

/// The collector's store: under the system's state directory when there is
/// one, else beside the repository's baselines.
pub fn default_store() -> PathBuf {
    let dir = if Path::new(SYSTEM_STATE_DIR).is_dir() {
        Path::new(SYSTEM_STATE_DIR)
    } else {
        Path::new(REPO_BASELINES)
    };
    dir.join("collector.db")
}

/// This machine's host name, as the kernel reports it.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname NUL-terminates
    // within it or truncates, and the last byte stays 0. No safe API: std
    // has none, and /proc may not be mounted (a chroot, a container).
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return "localhost".to_string();
    }
    CStr::from_bytes_until_nul(&buf)
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// A host name made safe as a file name.
fn file_safe(host: &str) -> String {
    let s: String = host
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("host{s}")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_become_safe_file_names() {
        assert_eq!(file_safe("worker-1.example"), "worker-1.example");
        assert_eq!(file_safe("../etc"), "host.._etc");
        assert_eq!(file_safe(""), "host");
    }
}
