//! What each command runs with: the flags, the configuration file and the
//! defaults resolved once, into plain values, before any command runs. A
//! default is computed here and nowhere else; the commands never see how
//! the user spelled a setting.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config;
use crate::defaults;
use crate::error::Error;
use crate::escape::{escape_bytes, escape_path};
use crate::events::SinkSpec;
use crate::report::Format;
use crate::rules::{self, Rules};
use crate::scan::Relocation;
use crate::seal::{self, SealPolicy};
use crate::watch::WatchOptions;

/// One command, ready to run.
pub enum Settings {
    Init {
        rules: Rules,
        db: PathBuf,
        /// `--db` was not given: its directory may be made.
        db_defaulted: bool,
        replace: bool,
        host: String,
        relocate: Option<Relocation>,
    },
    Check(CheckSettings),
    Update {
        db: PathBuf,
        /// New rules for the next generation (`None`: the baseline's own).
        rules: Option<Rules>,
        accept_errors: bool,
        format: Format,
        host: String,
        relocate: Option<Relocation>,
        /// `--only-packaged`: accept only drift whose package vouches for
        /// it at this evidence or stronger.
        only_packaged: Option<crate::origin::Evidence>,
        sources: crate::origin::Sources,
        /// What generation N's seal is verified with before the keyrings
        /// it records are trusted.
        trust: String,
    },
    Diff {
        old: PathBuf,
        new: PathBuf,
        seal: SealPolicy,
        format: Format,
        verbose: bool,
    },
    Watch(WatchOptions),
    Flush {
        db: PathBuf,
        /// Given with `--emit`: only these.
        given: Vec<SinkSpec>,
        /// From the configuration, for the passwords of waiting sinks.
        configured: Vec<SinkSpec>,
        host: String,
    },
    Keygen {
        out: PathBuf,
    },
    Sign {
        key: PathBuf,
        db: PathBuf,
        expires_ns: Option<i64>,
    },
    Verify {
        trust: String,
        db: PathBuf,
        expiry_warning: Duration,
    },
    Digest {
        db: PathBuf,
        message: Option<PathBuf>,
        expires_ns: Option<i64>,
    },
    Show {
        db: PathBuf,
        prefix: Option<PathBuf>,
        format: Format,
    },
    AuditCelery {
        places: crate::audit::Places,
        format: Format,
    },
    RulesCheck {
        rules: Rules,
    },
    RulesExplain {
        rules: Rules,
        path: PathBuf,
    },
    Collect(crate::fleet::CollectOptions),
    FleetStatus {
        store: PathBuf,
        format: Format,
    },
    FleetDrift {
        store: PathBuf,
        host: String,
        format: Format,
    },
    FleetAck {
        store: PathBuf,
        host: String,
        paths: Vec<String>,
        lost: bool,
        rollback: bool,
        by: String,
    },
    FleetPublish {
        store: PathBuf,
        db: PathBuf,
        trust: String,
    },
}

pub struct CheckSettings {
    pub db: PathBuf,
    pub seal: SealPolicy,
    pub sinks: Vec<SinkSpec>,
    /// The report on standard output (`None`: the events are).
    pub report: Option<Format>,
    /// `--fast`, with the share re-read anyway.
    pub fast: Option<crate::check::Fast>,
    pub verbose: bool,
    pub expiry_warning: Duration,
    /// Certificates that expire within this are reported.
    pub cert_warning: Duration,
    pub host: String,
    /// Where drift's origin is looked up.
    pub sources: crate::origin::Sources,
}

/// Where drift's origin is looked up: the configuration's `[origin]`, the
/// system's places where it says nothing.
pub fn origin_sources(config: Option<&Path>) -> Result<crate::origin::Sources, Error> {
    let (_, loaded) = config::load(config)?;
    Ok(crate::origin::Sources::configured(&loaded.origin))
}

/// The baseline path: `given`, or the default for this host.
pub fn db_or_default(given: Option<PathBuf>, host: &str) -> PathBuf {
    given.unwrap_or_else(|| defaults::default_db(host))
}

/// The trust store: `given`, or the system's.
pub fn trust_or_default(given: Option<String>) -> String {
    given.unwrap_or_else(|| seal::DEFAULT_TRUST_STORE.to_string())
}

/// The rules from `file` or the default place, with `vars` (`NAME=VALUE`)
/// set; with `strict` (rules a baseline is made with), refused when others
/// could have written them.
pub fn rules(file: Option<&Path>, vars: &[String], strict: bool) -> Result<Rules, Error> {
    let mut overrides = BTreeMap::new();
    for v in vars {
        let (name, value) = rules::parse_var(v).map_err(Error::invalid)?;
        overrides.insert(name, value);
    }
    let source = match file {
        Some(f) => defaults::read_rules(f, strict)?,
        None => defaults::default_rules(strict)?,
    };
    Ok(Rules::load(source, &overrides)?)
}

/// The sinks given with `--emit`, else those of the configuration file
/// (`config`, or the system's), checked before any work is done.
pub fn sinks(emit: &[String], config: Option<&Path>) -> Result<Vec<SinkSpec>, Error> {
    if emit.is_empty() {
        configured_sinks(config)
    } else {
        sink_specs(emit)
    }
}

/// The sinks of the configuration file; a bad one is the file's error.
pub fn configured_sinks(config: Option<&Path>) -> Result<Vec<SinkSpec>, Error> {
    let (path, loaded) = config::load(config)?;
    sink_specs(&loaded.events.emit).map_err(|e| Error::Config {
        path,
        detail: format!("[events] emit: {e}"),
    })
}

/// Opens nothing yet, but refuses a bad sink before any work is done.
pub fn sink_specs(urls: &[String]) -> Result<Vec<SinkSpec>, Error> {
    let specs = urls
        .iter()
        .map(|u| SinkSpec::new(u))
        .collect::<Result<Vec<_>, _>>()?;
    // The outbox keeps one row per sink and event: one sink named twice
    // would collide there.
    for (i, a) in specs.iter().enumerate() {
        if specs[..i].iter().any(|b| b.key == a.key) {
            return Err(Error::invalid(format!(
                "the sink {} is given twice (sinks that differ only in their password or TLS \
                 files are one sink); give it once",
                escape_bytes(a.key.as_bytes())
            )));
        }
    }
    Ok(specs)
}

/// `path` made absolute against the working directory, `.` and `..` resolved
/// lexically (rules match paths as the walk spells them, not as links resolve).
pub fn absolute(path: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// `--root DIR --as PREFIX`: DIR as it really is (a symlink given for it is
/// the operator's own, and followed once, here), PREFIX an absolute path
/// with nothing to resolve.
pub fn relocation(root: &Path, prefix: &Path) -> Result<Relocation, Error> {
    let real = std::fs::canonicalize(root).map_err(|source| Error::Read {
        path: root.to_path_buf(),
        source,
    })?;
    if !real.is_dir() {
        return Err(Error::invalid(format!(
            "--root {} is not a directory: give the directory that holds the tree",
            escape_path(root)
        )));
    }
    let normal = prefix.components().all(|c| {
        matches!(
            c,
            std::path::Component::RootDir | std::path::Component::Normal(_)
        )
    });
    if !prefix.is_absolute() || !normal {
        return Err(Error::invalid(format!(
            "--as {} is not an absolute path without \".\" or \"..\": give the path the tree \
             will have on the hosts, such as /srv/app",
            escape_path(prefix)
        )));
    }
    Ok(Relocation {
        root: real,
        prefix: prefix.components().collect(),
    })
}
