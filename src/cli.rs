//! Command-line definitions, and their mapping to library calls. Nothing else.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use tripseal::baseline::{Baseline, hex};
use tripseal::check;
use tripseal::config;
use tripseal::defaults;
use tripseal::error::Error;
use tripseal::escape::{escape_bytes, escape_path};
use tripseal::events::outbox::Outbox;
use tripseal::events::{self, BaselineRef, EventFactory, SinkSpec};
use tripseal::init::{self, InitOptions};
use tripseal::progress::{NoProgress, Progress, TerminalProgress};
use tripseal::report::{self, DriftReport, Format, out_err};
use tripseal::rules::{self, Rules};
use tripseal::seal::{self, SealPolicy};
use tripseal::units::{now_ns, parse_period, parse_time, parse_when};

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
        /// Print the summary even when nothing changed.
        #[arg(short, long)]
        verbose: bool,
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
        /// Print the summary even when nothing differs.
        #[arg(short, long)]
        verbose: bool,
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
    fn policy(self, allow_rollback: bool, db: &Path) -> SealPolicy {
        if self.allow_unsigned {
            eprintln!(
                "tripseal: WARNING: --allow-unsigned: the seal of {} was NOT verified; \
                 what follows is measured against a baseline nobody vouched for",
                escape_path(db)
            );
        }
        SealPolicy {
            trust: self.trust,
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

/// Runs the parsed command; the `Ok` value is the process exit code.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let mut stdout = std::io::stdout().lock();
    let config_path = cli.config;
    match cli.command {
        Command::Init {
            rules,
            db,
            vars,
            force,
        } => {
            let rules = load_rules(rules.as_deref(), &vars, true)?;
            let host = defaults::hostname();
            let db = match db {
                Some(db) => db,
                None => {
                    let db = defaults::default_db(&host);
                    if let Some(dir) = db.parent() {
                        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
                            path: dir.to_path_buf(),
                            source,
                        })?;
                    }
                    db
                }
            };
            let opts = InitOptions {
                db,
                replace: force,
                host,
            };
            let summary = init::init(&rules, &opts, progress().as_ref())?;
            report::problems(&mut std::io::stderr().lock(), &summary)?;
            report::init_summary(&mut stdout, &summary)?;
            Ok(0)
        }
        Command::Check {
            db,
            seal,
            allow_rollback,
            format,
            emit,
            fast,
            verbose,
            expiry_warning,
        } => {
            let host = defaults::hostname();
            let db = db.unwrap_or_else(|| defaults::default_db(&host));
            let mut urls = emit_or_configured(emit, config_path.as_deref())?;
            if format == CheckFormatArg::Events && !urls.iter().any(|s| s == "stdout") {
                urls.push("stdout".into());
            }
            let specs = sink_specs(&urls)?;
            let sinks = events::keys(&specs);
            let mut outbox = if sinks.is_empty() {
                None
            } else {
                Some(Outbox::open(&db)?)
            };
            if let Some(o) = &mut outbox {
                let started = EventFactory::new(&host, None).scan_started("check");
                warn_dropped(o.add(&[started], &sinks)?);
            }
            let policy = seal.policy(allow_rollback, &db);
            let comparison = match check::check(&db, &policy, fast, &host, progress().as_ref()) {
                Ok(c) => c,
                Err(e) => {
                    if let (Some(o), Some(tampered)) =
                        (&mut outbox, events::tampered_event(&host, &db, &e))
                    {
                        warn_dropped(o.add(&[tampered], &sinks)?);
                        let stopped = events::deliver(o, &specs)?;
                        warn_undelivered(o, &db, &stopped);
                    }
                    return Err(e);
                }
            };
            let now = now_ns();
            let expiring = seal::expiring_within(comparison.expires_ns, now, expiry_warning);
            warn_expiring(&db, expiring, now);
            if let Some(o) = &mut outbox {
                let baseline = BaselineRef::of(&comparison.old, comparison.old_digest)?;
                let factory = EventFactory::new(&host, Some(baseline));
                if let Some(t) = expiring {
                    let ev = factory.expiring(db.as_os_str().as_encoded_bytes(), t, now);
                    warn_dropped(o.add(&[ev], &sinks)?);
                }
                warn_dropped(events::record_comparison(
                    o,
                    &sinks,
                    &factory,
                    "check",
                    &comparison,
                )?);
                let stopped = events::deliver(o, &specs)?;
                warn_undelivered(o, &db, &stopped);
            }
            let format = match format {
                CheckFormatArg::Human => Some(Format::Human),
                CheckFormatArg::Json => Some(Format::Json),
                CheckFormatArg::Events => None,
            };
            if let Some(format) = format {
                let r = DriftReport {
                    command: "check",
                    comparison: &comparison,
                    verbose,
                };
                report::drift(&mut stdout, format, &r)?;
            }
            Ok(comparison.counts.exit_bits())
        }
        Command::Watch {
            db,
            seal,
            rescan,
            heartbeat,
            emit,
            expiry_warning,
        } => {
            let host = defaults::hostname();
            let db = db.unwrap_or_else(|| defaults::default_db(&host));
            let mut urls = emit_or_configured(emit, config_path.as_deref())?;
            if urls.is_empty() {
                urls.push("stdout".into());
            }
            let sinks = sink_specs(&urls)?;
            let policy = seal.policy(false, &db);
            tripseal::watch::watch(tripseal::watch::WatchOptions {
                db,
                policy,
                rescan,
                heartbeat,
                sinks,
                host,
                expiry_warning,
            })?;
            Ok(0)
        }
        Command::Flush { db, emit } => {
            let host = defaults::hostname();
            let db = db.unwrap_or_else(|| defaults::default_db(&host));
            let mut outbox = Outbox::open(&db)?;
            let given = sink_specs(&emit)?;
            // Sinks whose password is unknown are reported after the others
            // have had their events.
            let mut unresolved = None;
            let sinks = if given.is_empty() {
                let configured = sink_specs(&config::load(config_path.as_deref())?.events.emit)?;
                let mut sinks = Vec::new();
                for key in outbox.waiting_sinks()? {
                    match SinkSpec::for_waiting(&key, &configured) {
                        Ok(s) => sinks.push(s),
                        Err(e) => unresolved = unresolved.or(Some(e)),
                    }
                }
                sinks
            } else {
                given
            };
            let stopped = events::deliver(&mut outbox, &sinks)?;
            let left = outbox.len()?;
            writeln!(
                stdout,
                "tripseal flush: {} sinks; {left} events still wait in {}",
                sinks.len(),
                escape_path(outbox.path())
            )
            .map_err(out_err)?;
            if let Some((sink, d)) = stopped.into_iter().next() {
                return Err(Error::Undelivered {
                    sink,
                    reason: d.error.unwrap_or_default(),
                    waiting: d.waiting,
                });
            }
            if let Some(e) = unresolved {
                return Err(e);
            }
            Ok(0)
        }
        Command::Update {
            rules,
            vars,
            db,
            accept_errors,
            format,
        } => {
            let host = defaults::hostname();
            let db = db.unwrap_or_else(|| defaults::default_db(&host));
            let rules = match rules {
                Some(file) => Some(load_rules(Some(&file), &vars, true)?),
                None => None,
            };
            let comparison = check::update(&db, rules, accept_errors, &host, progress().as_ref())?;
            let r = DriftReport {
                command: "update",
                comparison: &comparison,
                verbose: true,
            };
            report::drift(&mut stdout, format.into(), &r)?;
            writeln!(
                stdout,
                "generation {} is not signed: `tripseal check` refuses it until an operator \
                 reviews it (`tripseal diff {} {}`) and signs it (`tripseal sign --key KEY {}`)",
                comparison.new.header().generation,
                escape_path(comparison.old.path()),
                escape_path(&db),
                escape_path(&db)
            )
            .map_err(out_err)?;
            Ok(0)
        }
        Command::Diff {
            old_db,
            new_db,
            seal,
            format,
            verbose,
        } => {
            let policy = seal.policy(false, &old_db);
            let comparison = check::diff(&old_db, &new_db, &policy)?;
            let r = DriftReport {
                command: "diff",
                comparison: &comparison,
                verbose,
            };
            report::drift(&mut stdout, format.into(), &r)?;
            Ok(comparison.counts.exit_bits())
        }
        Command::Keygen { out } => {
            let (public, fingerprint) = seal::keygen(&out)?;
            writeln!(
                stdout,
                "private key {} (mode 0600): keep it on the operator's machine, never on a worker\n\
                 public key  {}: copy it into each host's trust store (/etc/tripseal/trusted.d/)\n\
                 fingerprint {fingerprint}",
                escape_path(&out),
                escape_path(&public)
            )
            .map_err(out_err)?;
            Ok(0)
        }
        Command::Sign { key, db, expires } => {
            let now = now_ns();
            let expires_ns = match expires {
                Some(when) => Some(parse_when(&when, now).map_err(Error::invalid)?),
                None => None,
            };
            let key = seal::load_signing_key(&key)?;
            let outcome = seal::sign(&db, &key, now, expires_ns)?;
            let b = Baseline::open(&db)?;
            let (verb, fp) = match outcome {
                seal::Signed::Added { fingerprint } => ("signed", fingerprint),
                seal::Signed::AlreadySigned { fingerprint } => ("already signed", fingerprint),
            };
            let until = expires_ns.map_or(String::new(), |t| {
                format!(", trusted until {}", tripseal::units::iso8601(t))
            });
            writeln!(
                stdout,
                "{} generation {} {verb} by {fp}{until}",
                escape_path(&db),
                b.header().generation
            )
            .map_err(out_err)?;
            Ok(0)
        }
        Command::Verify {
            trust,
            db,
            expiry_warning,
        } => {
            let b = match Baseline::open(&db) {
                Ok(b) => b,
                Err(Error::Database { detail, .. }) => {
                    return Err(Error::Seal {
                        path: db,
                        reason: seal::SealFailure::Unreadable,
                        detail,
                    });
                }
                Err(e) => return Err(e),
            };
            let store =
                seal::TrustStore::load(trust.as_deref().unwrap_or(seal::DEFAULT_TRUST_STORE))?;
            let now = now_ns();
            let v = seal::verify(&b, &store, now)?;
            report::verification(&mut stdout, &b, &store, &v)?;
            v.accept(&db, &store)?;
            warn_expiring(
                &db,
                seal::expiring_within(v.expires_ns(), now, expiry_warning),
                now,
            );
            Ok(0)
        }
        Command::Digest {
            db,
            message,
            expires,
        } => {
            let b = Baseline::open(&db)?;
            let digest = seal::digest(&b)?;
            let generation = b.header().generation;
            let expires_ns = match expires {
                Some(when) => Some(parse_time(&when).map_err(Error::invalid)?),
                None => None,
            };
            if let Some(file) = message {
                tripseal::files::write_file(&file, &seal::message(generation, expires_ns, &digest))
                    .map_err(|source| Error::Write { path: file, source })?;
            }
            writeln!(stdout, "{}  generation {generation}", hex(&digest)).map_err(out_err)?;
            Ok(0)
        }
        Command::Show {
            db,
            path_prefix,
            format,
        } => {
            let baseline = Baseline::open(&db)?;
            let prefix = path_prefix.map(|p| absolute(&p));
            report::show(&mut stdout, &baseline, prefix.as_deref(), format.into())?;
            Ok(0)
        }
        Command::Rules { command } => match command {
            RulesCommand::Check { file, vars } => {
                let rules = load_rules(Some(&file), &vars, false)?;
                report::rules_ok(&mut stdout, &rules)?;
                Ok(0)
            }
            RulesCommand::Explain { path, rules, vars } => {
                let rules = load_rules(rules.as_deref(), &vars, false)?;
                let path = absolute(&path);
                report::explain(&mut stdout, &rules, &path)?;
                let _ = stdout.flush();
                Ok(if rules.select(&path).is_some() { 0 } else { 1 })
            }
        },
    }
}

/// The sinks given with `--emit`, else those of the configuration.
fn emit_or_configured(emit: Vec<String>, config: Option<&Path>) -> Result<Vec<String>, Error> {
    if emit.is_empty() {
        Ok(config::load(config)?.events.emit)
    } else {
        Ok(emit)
    }
}

/// Opens nothing yet, but refuses a bad sink before any work is done.
fn sink_specs(urls: &[String]) -> Result<Vec<SinkSpec>, Error> {
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

/// Says on standard error that the seal of `db` expires soon (at
/// `expiring`, from [`seal::expiring_within`]).
fn warn_expiring(db: &Path, expiring: Option<i64>, now_ns: i64) {
    if let Some(t) = expiring {
        eprintln!(
            "tripseal: warning: the seal of {} expires {} (in {}); sign the next generation \
             before then (`tripseal sign --expires 30d --key KEY DB`), or checks will refuse it",
            escape_path(db),
            tripseal::units::iso8601(t),
            tripseal::units::human_duration((t - now_ns).max(0))
        );
    }
}

/// Says on standard error that the outbox was full.
fn warn_dropped(dropped: u64) {
    if dropped > 0 {
        eprintln!(
            "tripseal: warning: the event outbox is full ({} events): {dropped} events were \
             not kept; deliver the waiting ones with `tripseal flush`",
            events::outbox::MAX_OUTBOX_EVENTS
        );
    }
}

/// Says on standard error which sinks did not take their events.
fn warn_undelivered(outbox: &Outbox, db: &Path, stopped: &[(String, events::outbox::Delivery)]) {
    for (sink, d) in stopped {
        eprintln!(
            "tripseal: warning: events not delivered to {} ({}); {} wait in {}; \
             `tripseal flush --db {}` sends them",
            escape_bytes(sink.as_bytes()),
            escape_bytes(d.error.as_deref().unwrap_or_default().as_bytes()),
            d.waiting,
            escape_path(outbox.path()),
            escape_path(db)
        );
    }
}

impl From<FormatArg> for Format {
    fn from(f: FormatArg) -> Format {
        match f {
            FormatArg::Human => Format::Human,
            FormatArg::Json => Format::Json,
        }
    }
}

/// A progress line when a person watches standard error; nothing otherwise.
fn progress() -> Box<dyn Progress> {
    if std::io::stderr().is_terminal() {
        Box::new(TerminalProgress::new())
    } else {
        Box::new(NoProgress)
    }
}

/// The rules from `file` or the default place; with `strict` (rules a
/// baseline is made with), refused when others could have written them.
fn load_rules(file: Option<&Path>, vars: &[String], strict: bool) -> Result<Rules, Error> {
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

/// `path` made absolute against the working directory, `.` and `..` resolved
/// lexically (rules match paths as the walk spells them, not as links resolve).
fn absolute(path: &Path) -> PathBuf {
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
