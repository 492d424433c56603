//! Command-line definitions, and their resolution into [`Settings`]. Nothing
//! else: the commands themselves are in `commands.rs`.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use tripseal::defaults;
use tripseal::error::Error;
use tripseal::report::Format;
use tripseal::seal::SealPolicy;
use tripseal::settings::{self, CheckSettings, Settings};
use tripseal::units::{now_ns, parse_period, parse_time, parse_when};
use tripseal::watch::WatchOptions;

#[derive(Parser)]
#[command(
    name = "tripseal",
    version,
    about = "File-integrity monitor for Celery worker hosts: sealed baselines, drift as events",
    after_help = "Exit codes: 0 success (check, diff: no drift); check and diff add 1 for \
                  added, 2 for removed, 4 for changed or unreadable entries; 14 write error; \
                  15 invalid argument; 17 rules error; 18 I/O error; 21 baseline locked; \
                  24 not a usable baseline; 26 the baseline's seal was refused."
)]
pub struct Cli {
    /// Settings file (event sinks) [default: /etc/tripseal/config.toml, if it exists]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Say more: the summary of check and diff even when nothing drifted;
    /// twice, debugging detail (also TRIPSEAL_LOG=debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Say less: warnings and errors only
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scan what the rules select and write a new (unsigned) baseline.
    Init {
        /// Rules file [default: /etc/tripseal/rules.toml, else ./rules/celery-worker.toml,
        /// else the rules built into tripseal]
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Baseline to write [default: /var/lib/tripseal/<host>.db if that directory
        /// exists, else ./baselines/<host>.db]
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Set a rules variable, overriding its value in [vars]; repeatable.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Replace a baseline that already exists at the --db path.
        #[arg(long)]
        force: bool,
    },
    /// Rescan what the baseline's rules select and report every difference.
    Check {
        /// Baseline to check against [default: as for init]
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        #[command(flatten)]
        seal: SealArgs,
        /// Accept a validly signed generation older than one accepted before.
        #[arg(long)]
        allow_rollback: bool,
        /// human, json, or events: the events themselves, as JSON lines on
        /// standard output (through the outbox, like --emit stdout).
        #[arg(long, value_enum, default_value_t = CheckFormatArg::Human)]
        format: CheckFormatArg,
        /// Send events to SINK (repeatable): stdout, file:PATH, syslog,
        /// syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT, a Celery broker URL
        /// (amqp://, pyamqp://, amqps://, redis://, rediss://) [default: the
        /// configuration's [events] emit]
        #[arg(long, value_name = "SINK")]
        emit: Vec<String>,
        /// Re-read only entries whose dev, inode, size, mtime or ctime moved;
        /// trust the recorded content of the others.
        #[arg(long)]
        fast: bool,
        /// Warn (and send fim-baseline-expiring) when the seal expires
        /// within this period
        #[arg(long, value_name = "EVERY", default_value = "7d", value_parser = parse_period)]
        expiry_warning: std::time::Duration,
    },
    /// Accept the present state as the next generation of the baseline
    /// (the replaced one is kept as <db>.prev).
    Update {
        /// New rules for the next generation [default: the baseline's own]
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Set a rules variable (with --rules); repeatable.
        #[arg(long = "var", value_name = "NAME=VALUE", requires = "rules")]
        vars: Vec<String>,
        /// Baseline to update [default: as for init]
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Record entries that cannot be read instead of refusing.
        #[arg(long)]
        accept_errors: bool,
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
    },
    /// Compare two baselines: OLD is the reference, NEW the one under review.
    Diff {
        old_db: PathBuf,
        new_db: PathBuf,
        #[command(flatten)]
        seal: SealArgs,
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
    },
    /// Watch what the baseline's rules select and report drift as it
    /// happens (runs in the foreground until SIGTERM or SIGINT).
    Watch {
        /// Baseline to watch against [default: as for init]
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        #[command(flatten)]
        seal: SealArgs,
        /// Full rescan period, the backstop (e.g. 1h, 30m, 90s)
        #[arg(long, value_name = "EVERY", default_value = "1h", value_parser = parse_period)]
        rescan: std::time::Duration,
        /// Heartbeat period
        #[arg(long, value_name = "EVERY", default_value = "30s", value_parser = parse_period)]
        heartbeat: std::time::Duration,
        /// Send events to SINK (repeatable), as for check [default: the
        /// configuration's [events] emit, else stdout]
        #[arg(long, value_name = "SINK")]
        emit: Vec<String>,
        /// Send fim-baseline-expiring when the seal expires within this
        /// period (at start and at every rescan)
        #[arg(long, value_name = "EVERY", default_value = "7d", value_parser = parse_period)]
        expiry_warning: std::time::Duration,
    },
    /// Deliver the events that wait in the outbox of a baseline.
    Flush {
        /// The baseline whose outbox to flush [default: as for init]
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Only these sinks [default: every sink that has events waiting]
        #[arg(long, value_name = "SINK")]
        emit: Vec<String>,
    },
    /// Make an operator key pair: KEY (PKCS#8 PEM, mode 0600) and KEY.pub.
    Keygen {
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
    },
    /// Seal a baseline with an operator's private key (on the operator's machine).
    Sign {
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        db: PathBuf,
        /// Stop vouching for it after WHEN: a period from now (30d, 12h) or
        /// a UTC date or time (2027-01-31, 2027-01-31T12:00:00Z). Signed with
        /// the content, so an old generation cannot be replayed for ever.
        #[arg(long, value_name = "WHEN")]
        expires: Option<String>,
    },
    /// Show a baseline's digest and signatures; exit 0 only if a trusted key
    /// signed exactly this content.
    Verify {
        #[arg(long, value_name = "PATH")]
        trust: Option<String>,
        db: PathBuf,
        /// Warn when the seal expires within this period
        #[arg(long, value_name = "EVERY", default_value = "7d", value_parser = parse_period)]
        expiry_warning: std::time::Duration,
    },
    /// Print a baseline's canonical digest; --message writes the exact bytes
    /// a signature covers (for checking it with openssl).
    Digest {
        db: PathBuf,
        #[arg(long, value_name = "FILE")]
        message: Option<PathBuf>,
        /// The message of a signature made with this expiry (a UTC date or
        /// time, as `verify` shows it) instead of one without
        #[arg(long, value_name = "WHEN", requires = "message")]
        expires: Option<String>,
    },
    /// Print a baseline's header and entries.
    Show {
        /// The baseline file.
        db: PathBuf,
        /// Only entries at or below this path.
        path_prefix: Option<PathBuf>,
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
    },
    /// Validate a rules file, or explain which rule governs a path.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Validate a rules file; errors name the file, line and column.
    Check {
        file: PathBuf,
        /// Set a rules variable; repeatable.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// Print the rule that governs PATH and why (exit 1 when none does).
    Explain {
        path: PathBuf,
        /// Rules file [default: as for init]
        #[arg(long, value_name = "FILE")]
        rules: Option<PathBuf>,
        /// Set a rules variable; repeatable.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
}

#[derive(clap::Args)]
struct SealArgs {
    /// Trusted public keys: a key file, a directory of them, or a glob
    /// [default: /etc/tripseal/trusted.d/]
    #[arg(long, value_name = "PATH")]
    trust: Option<String>,
    /// Do not verify the baseline's seal (first set-up, tests). Says so loudly.
    #[arg(long)]
    allow_unsigned: bool,
}

impl SealArgs {
    fn policy(self, allow_rollback: bool) -> SealPolicy {
        SealPolicy {
            trust: Some(settings::trust_or_default(self.trust)),
            allow_unsigned: self.allow_unsigned,
            allow_rollback,
            min_generation: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CheckFormatArg {
    Human,
    Json,
    Events,
}

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Human => Format::Human,
            FormatArg::Json => Format::Json,
        }
    }
}

impl Cli {
    /// How much to say on standard error.
    pub fn log_level(&self) -> log::LevelFilter {
        match (self.quiet, self.verbose) {
            (true, _) => log::LevelFilter::Warn,
            (false, 0 | 1) => log::LevelFilter::Info,
            (false, 2) => log::LevelFilter::Debug,
            (false, _) => log::LevelFilter::Trace,
        }
    }

    /// Whether this runs the daemon (whose log lines carry times).
    pub fn is_daemon(&self) -> bool {
        matches!(self.command, Command::Watch { .. })
    }

    /// The flags, the configuration file and the defaults, resolved.
    pub fn settings(self) -> Result<Settings, Error> {
        let config = self.config.as_deref();
        let verbose = self.verbose > 0;
        let host = defaults::hostname();
        Ok(match self.command {
            Command::Init {
                rules,
                db,
                vars,
                force,
            } => Settings::Init {
                rules: settings::rules(rules.as_deref(), &vars, true)?,
                db_defaulted: db.is_none(),
                db: settings::db_or_default(db, &host),
                replace: force,
                host,
            },
            Command::Check {
                db,
                seal,
                allow_rollback,
                format,
                emit,
                fast,
                expiry_warning,
            } => {
                let mut sinks = settings::sinks(&emit, config)?;
                if format == CheckFormatArg::Events && !sinks.iter().any(|s| s.key == "stdout") {
                    sinks.extend(settings::sink_specs(&["stdout".into()])?);
                }
                Settings::Check(CheckSettings {
                    db: settings::db_or_default(db, &host),
                    seal: seal.policy(allow_rollback),
                    sinks,
                    report: match format {
                        CheckFormatArg::Human => Some(Format::Human),
                        CheckFormatArg::Json => Some(Format::Json),
                        CheckFormatArg::Events => None,
                    },
                    fast,
                    verbose,
                    expiry_warning,
                    host,
                })
            }
            Command::Watch {
                db,
                seal,
                rescan,
                heartbeat,
                emit,
                expiry_warning,
            } => {
                let mut sinks = settings::sinks(&emit, config)?;
                if sinks.is_empty() {
                    sinks = settings::sink_specs(&["stdout".into()])?;
                }
                Settings::Watch(WatchOptions {
                    db: settings::db_or_default(db, &host),
                    policy: seal.policy(false),
                    rescan,
                    heartbeat,
                    sinks,
                    host,
                    expiry_warning,
                })
            }
            Command::Flush { db, emit } => Settings::Flush {
                db: settings::db_or_default(db, &host),
                configured: if emit.is_empty() {
                    settings::configured_sinks(config)?
                } else {
                    Vec::new()
                },
                given: settings::sink_specs(&emit)?,
            },
            Command::Update {
                rules,
                vars,
                db,
                accept_errors,
                format,
            } => Settings::Update {
                db: settings::db_or_default(db, &host),
                rules: match rules {
                    Some(file) => Some(settings::rules(Some(&file), &vars, true)?),
                    None => None,
                },
                accept_errors,
                format: format.into(),
                host,
            },
            Command::Diff {
                old_db,
                new_db,
                seal,
                format,
            } => Settings::Diff {
                old: old_db,
                new: new_db,
                seal: seal.policy(false),
                format: format.into(),
                verbose,
            },
            Command::Keygen { out } => Settings::Keygen { out },
            Command::Sign { key, db, expires } => Settings::Sign {
                key,
                db,
                expires_ns: match expires {
                    Some(when) => Some(parse_when(&when, now_ns()).map_err(Error::invalid)?),
                    None => None,
                },
            },
            Command::Verify {
                trust,
                db,
                expiry_warning,
            } => Settings::Verify {
                trust: settings::trust_or_default(trust),
                db,
                expiry_warning,
            },
            Command::Digest {
                db,
                message,
                expires,
            } => Settings::Digest {
                db,
                message,
                expires_ns: match expires {
                    Some(when) => Some(parse_time(&when).map_err(Error::invalid)?),
                    None => None,
                },
            },
            Command::Show {
                db,
                path_prefix,
                format,
            } => Settings::Show {
                db,
                prefix: path_prefix.map(|p| settings::absolute(&p)),
                format: format.into(),
            },
            Command::Rules { command } => match command {
                RulesCommand::Check { file, vars } => Settings::RulesCheck {
                    rules: settings::rules(Some(&file), &vars, false)?,
                },
                RulesCommand::Explain { path, rules, vars } => Settings::RulesExplain {
                    rules: settings::rules(rules.as_deref(), &vars, false)?,
                    path: settings::absolute(&path),
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
