//! `/etc/tripseal/config.toml`: settings an operator gives once instead of on
//! every command line. Today: the event sinks.
//!
//! ```toml
//! [events]
//! emit = ["amqp://fim:secret@broker:5672//", "syslog+tcp://logs:601"]
//! ```
//!
//! The file may hold broker passwords, so tripseal refuses one that other
//! users can read, as it refuses such a private key.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;
use crate::escape::escape_path;

pub const SYSTEM_CONFIG: &str = "/etc/tripseal/config.toml";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub events: EventsConfig,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Sinks for `check` when no `--emit` is given; also where `flush` finds
    /// the passwords of sinks whose events wait.
    #[serde(default)]
    pub emit: Vec<String>,
}

/// Reads `path`, or the system file if there is one when `path` is `None`.
pub fn load(path: Option<&Path>) -> Result<Config, Error> {
    let path: PathBuf = match path {
        Some(p) => p.to_path_buf(),
        None if Path::new(SYSTEM_CONFIG).exists() => PathBuf::from(SYSTEM_CONFIG),
        None => return Ok(Config::default()),
    };
    // Opened first (a FIFO is refused, never waited on), then judged.
    let text =
        crate::files::read_strict_checked(&path, crate::files::MAX_SMALL_FILE_BYTES, |meta| {
            if meta.mode() & 0o004 != 0 {
                return Err(Error::invalid(format!(
                    "{} can be read by every user, and may hold broker passwords; \
                 chmod o-r {} (tripseal reads it as root or its own user)",
                    escape_path(&path),
                    escape_path(&path)
                )));
            }
            Ok(())
        })?;
    let text = String::from_utf8(text)
        .map_err(|_| Error::invalid(format!("{}: not UTF-8 text", escape_path(&path))))?;
    toml::from_str(&text).map_err(|e| Error::invalid(format!("{}: {e}", escape_path(&path))))
}
