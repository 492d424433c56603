//! Errors of the library, and the documented exit codes they map to.
//!
//! Codes follow AIDE's numbering where AIDE has the same kind of error, so that
//! existing cron wrappers keep working. Every error renders as one line that
//! says what went wrong and what to do about it.

use std::io;
use std::path::PathBuf;

use crate::escape::escape_path;
use crate::rules::RulesError;

/// Why a baseline's seal was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealFailure {
    Unsigned,
    Untrusted,
    Altered,
    Rollback,
    Unreadable,
    /// `<db>.accepted` exists but is not a record tripseal wrote.
    AcceptedUnreadable,
    /// Every trusted signature over this content has expired.
    Expired,
}

impl SealFailure {
    pub fn name(self) -> &'static str {
        match self {
            SealFailure::Unsigned => "unsigned",
            SealFailure::Untrusted => "untrusted",
            SealFailure::Altered => "altered",
            SealFailure::Rollback => "rollback",
            SealFailure::Unreadable => "unreadable",
            SealFailure::AcceptedUnreadable => "accepted-unreadable",
            SealFailure::Expired => "expired",
        }
    }

    /// What the user can do about it.
    pub fn hint(self) -> &'static str {
        match self {
            SealFailure::Unsigned => {
                "sign it on the operator's machine (`tripseal sign --key KEY DB`) and \
             install KEY.pub in the trust store; --allow-unsigned skips the seal on purpose"
            }
            SealFailure::Untrusted => {
                "if you trust the signer, install its public key in the trust store \
             (--trust PATH, default /etc/tripseal/trusted.d/)"
            }
            SealFailure::Altered => {
                "the baseline changed after it was signed: restore the signed copy, or \
             review it (`tripseal diff`) and sign it again"
            }
            SealFailure::Rollback => {
                "restore the newest signed generation, or pass --allow-rollback if the \
             rollback is yours"
            }
            SealFailure::Unreadable => "restore the signed baseline from a copy",
            SealFailure::Expired => {
                "review the present state and sign the newest generation again, with a \
             new expiry (`tripseal sign --expires 30d --key KEY DB`)"
            }
            SealFailure::AcceptedUnreadable => {
                "that file is the rollback protection and is never taken as absent: \
             restore it, or, after checking why it changed, delete it (the next check \
             records the generation it accepts)"
            }
        }
    }
}

/// The process exit codes tripseal documents (README, "Exit codes").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitCode {
    Ok = 0,
    Write = 14,
    InvalidArgument = 15,
    Config = 17,
    Io = 18,
    Lock = 21,
    Database = 24,
    Seal = 26,
}

/// How a command that did its work ended. With [`Error::exit_code`], the
/// one path from a command to its exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done, nothing to tell: 0.
    Done,
    /// `check` and `diff`: the drift found, as the documented bits (1 added,
    /// 2 removed, 4 changed or unreadable; 0 when there is none).
    Drift(u8),
    /// `rules explain`: no rule selects the path: 1.
    NotSelected,
    /// `audit`: something to fix was found: 1.
    Findings,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => ExitCode::Ok as u8,
            Outcome::Drift(bits) => bits & 7,
            Outcome::NotSelected | Outcome::Findings => 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Rules(#[from] RulesError),

    /// The configuration file: unreadable as TOML, unsafe, or naming a sink
    /// that does not exist.
    #[error("{}: {detail}", escape_path(path))]
    Config { path: PathBuf, detail: String },

    /// The file-system watcher could not start, or stopped.
    #[error("{detail}")]
    Watcher { detail: String },

    /// The daemon could not set up its signal handling.
    #[error("cannot handle signals: {source}")]
    Signals { source: io::Error },

    #[error("{message}")]
    InvalidArgument { message: String },

    #[error("cannot write {}: {source}", escape_path(path))]
    Write { path: PathBuf, source: io::Error },

    #[error("cannot read {}: {source}", escape_path(path))]
    Read { path: PathBuf, source: io::Error },

    #[error(
        "{} is locked: another tripseal is writing this baseline",
        escape_path(path)
    )]
    Locked { path: PathBuf },

    #[error("{}: {detail}", escape_path(path))]
    Database { path: PathBuf, detail: String },

    /// The collector's store.
    #[error("collector store {}: {detail}", escape_path(path))]
    Store { path: PathBuf, detail: String },

    #[error("not updated: {count} entries could not be read or held still (first: {first})")]
    ScanProblems { count: u64, first: String },

    #[error("trust store: {detail}")]
    TrustStore { detail: String },

    /// A configuration, rules or trust file that others could have written.
    #[error("{detail}")]
    Unsafe { detail: String },

    #[error("events not delivered to {sink} ({reason}); {waiting} wait in the outbox")]
    Undelivered {
        sink: String,
        reason: String,
        waiting: u64,
    },

    #[error("{}: seal refused ({}): {detail}", escape_path(path), reason.name())]
    Seal {
        path: PathBuf,
        reason: SealFailure,
        detail: String,
    },
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::InvalidArgument {
            message: message.into(),
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        match self {
            Error::Rules(_) => ExitCode::Config,
            Error::Config { .. } => ExitCode::Config,
            Error::Watcher { .. } => ExitCode::Io,
            Error::Signals { .. } => ExitCode::Io,
            Error::InvalidArgument { .. } => ExitCode::InvalidArgument,
            Error::Write { .. } => ExitCode::Write,
            Error::Read { .. } => ExitCode::Io,
            Error::Locked { .. } => ExitCode::Lock,
            Error::Database { .. } => ExitCode::Database,
            Error::Store { .. } => ExitCode::Database,
            Error::ScanProblems { .. } => ExitCode::Io,
            Error::TrustStore { .. } => ExitCode::Config,
            Error::Unsafe { .. } => ExitCode::Config,
            Error::Undelivered { .. } => ExitCode::Write,
            Error::Seal { .. } => ExitCode::Seal,
        }
    }

    /// What the user can do about it, where the message does not say it already.
    pub fn hint(&self) -> Option<&'static str> {
        Some(match self {
            Error::Rules(_) => "fix the rules file; `tripseal rules check FILE` validates it",
            Error::Config { .. } => {
                "fix the configuration file (--config, default /etc/tripseal/config.toml)"
            }
            // Written to say what to do (which limit to raise).
            Error::Watcher { .. } => return None,
            Error::Signals { .. } => "this is a bug or a very unusual system; please report it",
            // These messages are written to say what to do.
            Error::InvalidArgument { .. } | Error::Unsafe { .. } => return None,
            Error::Write { .. } => {
                "check that the directory exists, is writable by this user and has free space"
            }
            Error::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                "check the path; a baseline is made with `tripseal init`"
            }
            Error::Read { .. } => "check the path and its permissions",
            Error::Locked { .. } => {
                "wait for the other run to finish; the lock is released when it exits"
            }
            Error::Undelivered { .. } => {
                "check that the sink is reachable and accepts tripseal; `tripseal flush` \
                 sends the waiting events, in order"
            }
            Error::TrustStore { .. } => {
                "put only Ed25519 public keys (SPKI PEM, as `tripseal keygen` or \
                 `openssl pkey -pubout` write them) in the trust store"
            }
            Error::Seal { reason, .. } => reason.hint(),
            Error::ScanProblems { .. } => {
                "fix those entries (permissions, a process rewriting them), or pass \
                 --accept-errors to record them as they are"
            }
            // Written to say what to do.
            Error::Store { .. } => return None,
            Error::Database { .. } => {
                "this file is not a usable tripseal baseline: point --db at the right file, \
                 restore it from a copy, or make a new one with `tripseal init`"
            }
        })
    }
}
