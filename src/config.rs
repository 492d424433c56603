//! `/etc/tripseal/config.toml`: settings an operator gives once instead of on
//! every command line: the event sinks, and the collector's feeds.
//!
//! ```toml
//! [events]
//! emit = ["amqp://fim:secret@broker:5672//", "syslog+tcp://logs:601"]
//!
//! [collector]
//! from = ["amqp://collector:secret@broker:5672//?queue=fim.fleet"]
//! listen = "127.0.0.1:9817"
//!
//! [origin]
//! apt_lists = "/var/lib/apt/lists"
//! apt_archives = "/var/cache/apt/archives"
//! apt_keyrings = ["/etc/apt/trusted.gpg.d", "/usr/share/keyrings"]
//! apt_sources = ["/etc/apt/sources.list", "/etc/apt/sources.list.d"]
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
    #[serde(default)]
    pub collector: CollectorConfig,
    #[serde(default)]
    pub origin: OriginConfig,
}

/// Where drift's origin is looked up, when not where Debian keeps it (a
/// chroot's apt, a test's archive).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    /// apt's `Dir::State::Lists` (default `/var/lib/apt/lists`).
    pub apt_lists: Option<PathBuf>,
    /// apt's `Dir::Cache::Archives` (default `/var/cache/apt/archives`).
    pub apt_archives: Option<PathBuf>,
    /// The keyrings, files or directories of them, whose keys may sign an
    /// archive (default: apt's `trusted.gpg`, `trusted.gpg.d`, `keyrings`
    /// and `/usr/share/keyrings`). A keyring counts only when the verified
    /// baseline records it as it is.
    pub apt_keyrings: Option<Vec<PathBuf>>,
    /// apt's sources, files or directories of them (default
    /// `/etc/apt/sources.list` and `sources.list.d`): a source's
    /// `Signed-By` names the only keyring its index is checked with.
    pub apt_sources: Option<Vec<PathBuf>>,
}

/// `tripseal collect` when its flags do not say (the packaged unit runs it
/// with none).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectorConfig {
    /// The fleet feeds, as `--from`.
    #[serde(default)]
    pub from: Vec<String>,
    /// As `--listen`.
    pub listen: Option<std::net::SocketAddr>,
    /// As `--listen-beyond-loopback`.
    #[serde(default)]
    pub listen_beyond_loopback: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// Sinks for `check` when no `--emit` is given; also where `flush` finds
    /// the passwords of sinks whose events wait.
    #[serde(default)]
    pub emit: Vec<String>,
}

/// Reads `path`, or the system file if there is one when `path` is `None`;
/// returns the file it read (for messages) and what it holds.
pub fn load(path: Option<&Path>) -> Result<(PathBuf, Config), Error> {
    let path: PathBuf = match path {
        Some(p) => p.to_path_buf(),
        None if Path::new(SYSTEM_CONFIG).exists() => PathBuf::from(SYSTEM_CONFIG),
        None => return Ok((PathBuf::from(SYSTEM_CONFIG), Config::default())),
    };
    let bad = |detail: String| Error::Config {
        path: path.clone(),
        detail,
    };
    // Opened first (a FIFO is refused, never waited on), then judged.
    let text =
        crate::files::read_strict_checked(&path, crate::files::MAX_SMALL_FILE_BYTES, |meta| {
            if meta.mode() & 0o004 != 0 {
                return Err(bad(format!(
                    "can be read by every user, and may hold broker passwords; chmod o-r {} \
                     (tripseal reads it as root or its own user)",
                    escape_path(&path)
                )));
            }
            Ok(())
        })?;
    let text = String::from_utf8(text).map_err(|_| bad("not UTF-8 text".into()))?;
    let config = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
    Ok((path, config))
}
