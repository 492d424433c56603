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
                  15 invalid argument; 17 rules or configuration error; 18 I/O error (a \
                  watcher or signal set-up that fails too); 21 baseline locked; \
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
    Init(InitArgs),
    /// Rescan what the baseline's rules select and report every difference.
    Check(CheckArgs),
    /// Accept the present state as the next generation of the baseline
    /// (the replaced one is kept as <db>.prev).
    Update(UpdateArgs),
    /// Compare two baselines: OLD is the reference, NEW the one under review.
    Diff(DiffArgs),
    /// Watch what the baseline's rules select and report drift as it
    /// happens (runs in the foreground until SIGTERM or SIGINT).
    Watch(WatchArgs),
    /// Deliver the events that wait in the outbox of a baseline.
    Flush(FlushArgs),
    /// Make an operator key pair: KEY (PKCS#8 PEM, mode 0600) and KEY.pub.
    Keygen {
        #[arg(long, value_name = "KEY")]
        out: PathBuf,
    },
    /// Seal a baseline with an operator's private key (on the operator's machine).
    Sign(SignArgs),
    /// Show a baseline's digest and signatures; exit 0 only if a trusted key
    /// signed exactly this content.
    Verify(VerifyArgs),
    /// Print a baseline's canonical digest; --message writes the exact bytes
    /// a signature covers (for checking it with openssl).
    Digest(DigestArgs),
    /// Print a baseline's header and entries.
    Show(ShowArgs),
    /// Validate a rules file, or explain which rule governs a path.
    Rules {
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Check a configuration against its project's security guide.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Consume the fleet's events (a RabbitMQ quorum queue or a Redis
    /// Stream), keep the fleet's state, and flag hosts that went silent,
    /// rolled back, run an unpublished baseline or lost events (runs until
    /// SIGTERM or SIGINT).
    Collect(CollectArgs),
    /// The fleet as the collector sees it: status, drift, acknowledgements,
    /// and the baselines hosts may use.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
}

#[derive(clap::Args)]
struct CollectArgs {
    /// A fleet feed, as the hosts' sink URL names it (repeatable):
    /// amqp://HOST/?queue=NAME (also amqps://) or redis+stream://HOST/DB
    /// (also rediss+stream://; ?key=, ?group=) [default: the
    /// configuration's [collector] from]
    #[arg(long, value_name = "URL")]
    from: Vec<String>,
    #[command(flatten)]
    store: StoreArg,
    /// Send the collector's own events (fim-host-silent, ...) to SINK
    /// (repeatable) [default: the configuration's [events] emit, else stdout]
    #[arg(long, value_name = "SINK")]
    emit: Vec<String>,
    /// The period assumed for hosts that run scheduled checks only (a
    /// daemon announces its heartbeat's); silent after three of them
    #[arg(long, value_name = "EVERY", default_value = "1h", value_parser = parse_period)]
    check_period: std::time::Duration,
    /// Serve the status page (/), Prometheus metrics (/metrics) and the
    /// fleet as JSON (/api/hosts) on ADDR, e.g. 127.0.0.1:9817. They have
    /// no authentication: an address other than loopback needs
    /// --listen-beyond-loopback
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Accept a --listen address other than loopback: anyone who can reach
    /// it reads every host's name, baseline and drifted paths (put it behind
    /// a reverse proxy with authentication, or a firewall)
    #[arg(long)]
    listen_beyond_loopback: bool,
}

#[derive(clap::Args)]
struct StoreArg {
    /// The collector's state [default: /var/lib/tripseal/collector.db if
    /// that directory exists, else ./baselines/collector.db]
    #[arg(long, value_name = "FILE")]
    store: Option<PathBuf>,
}

impl StoreArg {
    fn path(self) -> PathBuf {
        self.store.unwrap_or_else(defaults::default_store)
    }
}

#[derive(Subcommand)]
enum FleetCommand {
    /// One line per host, worst first (exit 1 when any host has a problem).
    Status {
        #[command(flatten)]
        store: StoreArg,
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
    },
    /// The open drift of HOST (or HOST/INSTANCE); exit 1 when some is not
    /// acknowledged.
    Drift {
        host: String,
        #[command(flatten)]
        store: StoreArg,
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
    },
    /// Acknowledge HOST's drift at PATH... (hidden until it changes again),
    /// its lost events (--lost) or its older generation (--rollback).
    Ack {
        host: String,
        paths: Vec<String>,
        /// Accept the events HOST is known to have lost
        #[arg(long)]
        lost: bool,
        /// Accept the generation HOST uses now as its highest
        #[arg(long)]
        rollback: bool,
        /// Who acknowledges [default: $SUDO_USER, else $USER]
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Publish a signed baseline as one that hosts of its role (or its host)
    /// may use, after verifying its seal with the collector's trust store.
    Publish {
        db: PathBuf,
        #[command(flatten)]
        store: StoreArg,
        /// Trusted public keys [default: /etc/tripseal/trusted.d/]
        #[arg(long, value_name = "PATH")]
        trust: Option<String>,
    },
}

#[derive(clap::Args)]
struct InitArgs {
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
    #[command(flatten)]
    relocate: RelocateArgs,
}

/// A tree that is not installed yet (a release, an unpacked image).
#[derive(clap::Args)]
struct RelocateArgs {
    /// Read the tree at DIR (a release directory, an unpacked wheel or
    /// image, a container's root file system) instead of the installed one;
    /// the rules must name a role.
    #[arg(long, value_name = "DIR", requires = "prefix")]
    root: Option<PathBuf>,
    /// With --root: the path DIR will have on the hosts; what is at DIR/x
    /// is recorded as PREFIX/x.
    #[arg(long = "as", value_name = "PREFIX", requires = "root")]
    prefix: Option<PathBuf>,
}

/// `5`, `5%` or `0.5%`: a share of 0 to 100 percent.
fn parse_percent(text: &str) -> Result<f64, String> {
    let number = text.trim().trim_end_matches('%');
    match number.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "{text:?} is not a share from 0 to 100 percent, such as 5 or 12.5%"
        )),
    }
}

impl RelocateArgs {
    fn relocation(self) -> Result<Option<tripseal::scan::Relocation>, Error> {
        match (self.root, self.prefix) {
            (Some(root), Some(prefix)) => settings::relocation(&root, &prefix).map(Some),
            _ => Ok(None),
        }
    }
}

#[derive(clap::Args)]
struct CheckArgs {
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
    /// trust the recorded content of the others (for a role baseline, as
    /// this host's stat cache recorded them at its last check).
    #[arg(long)]
    fast: bool,
    /// With --fast: re-read this share of the entries whatever their stat
    /// fields say, drawn at random on every run (0 to 100, "%" optional).
    #[arg(long, value_name = "PERCENT", default_value = "5", value_parser = parse_percent, requires = "fast")]
    reread: f64,
    /// Warn (and send fim-baseline-expiring) when the seal expires
    /// within this period
    #[arg(long, value_name = "EVERY", default_value = "7d", value_parser = parse_period)]
    expiry_warning: std::time::Duration,
    /// Report (and send fim-cert-expiring) a certificate the rules select
    /// that expires within this period
    #[arg(long, value_name = "EVERY", default_value = "30d", value_parser = parse_period)]
    cert_warning: std::time::Duration,
}

#[derive(clap::Args)]
struct UpdateArgs {
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
    #[command(flatten)]
    relocate: RelocateArgs,
    /// Accept only drift whose content is what its package (dpkg, a
    /// Python wheel) records, at this evidence or stronger; the rest stays
    /// drift [bare: host-records-only]
    #[arg(
        long,
        value_enum,
        value_name = "EVIDENCE",
        num_args = 0..=1,
        default_missing_value = "host-records-only"
    )]
    only_packaged: Option<EvidenceArg>,
    /// Keys that must verify generation N's seal before the apt keyrings
    /// it records are trusted to check packages through their archive
    /// [default: /etc/tripseal/trusted.d/]
    #[arg(long, value_name = "PATH")]
    trust: Option<String>,
}

/// How strong the evidence for `update --only-packaged` must be.
#[derive(Clone, Copy, ValueEnum)]
enum EvidenceArg {
    /// dpkg's md5sums and a wheel's RECORD, which root on the host can edit
    HostRecordsOnly,
    /// The package file in apt's cache, checked through the archive's
    /// signed InRelease
    VerifiedByArchive,
}

impl From<EvidenceArg> for tripseal::origin::Evidence {
    fn from(e: EvidenceArg) -> tripseal::origin::Evidence {
        match e {
            EvidenceArg::HostRecordsOnly => tripseal::origin::Evidence::HostRecordsOnly,
            EvidenceArg::VerifiedByArchive => tripseal::origin::Evidence::VerifiedByArchive,
        }
    }
}

#[derive(clap::Args)]
struct WatchArgs {
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
    /// Send fim-cert-expiring for a certificate the rules select that
    /// expires within this period (after the first comparison, then daily)
    #[arg(long, value_name = "EVERY", default_value = "30d", value_parser = parse_period)]
    cert_warning: std::time::Duration,
    /// What tells the daemon of changes
    #[arg(long, value_enum, default_value_t = BackendArg::Auto)]
    backend: BackendArg,
}

#[derive(Clone, Copy, ValueEnum)]
enum BackendArg {
    /// fanotify where it works (root, Linux 5.9 or later), else inotify
    Auto,
    /// A watch per directory; works unprivileged
    Inotify,
    /// One mark per file system, and the process behind each change
    Fanotify,
}

#[derive(clap::Args)]
struct FlushArgs {
    /// The baseline whose outbox to flush [default: as for init]
    #[arg(long, value_name = "FILE")]
    db: Option<PathBuf>,
    /// Only these sinks [default: every sink that has events waiting]
    #[arg(long, value_name = "SINK")]
    emit: Vec<String>,
}

#[derive(clap::Args)]
struct DiffArgs {
    old_db: PathBuf,
    new_db: PathBuf,
    #[command(flatten)]
    seal: SealArgs,
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    format: FormatArg,
}

#[derive(clap::Args)]
struct SignArgs {
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    db: PathBuf,
    /// Stop vouching for it after WHEN: a period from now (30d, 12h) or
    /// a UTC date or time (2027-01-31, 2027-01-31T12:00:00Z). Signed with
    /// the content, so an old generation cannot be replayed for ever.
    #[arg(long, value_name = "WHEN")]
    expires: Option<String>,
}

#[derive(clap::Args)]
struct VerifyArgs {
    #[arg(long, value_name = "PATH")]
    trust: Option<String>,
    db: PathBuf,
    /// Warn when the seal expires within this period
    #[arg(long, value_name = "EVERY", default_value = "7d", value_parser = parse_period)]
    expiry_warning: std::time::Duration,
}

#[derive(clap::Args)]
struct DigestArgs {
    db: PathBuf,
    #[arg(long, value_name = "FILE")]
    message: Option<PathBuf>,
    /// The message of a signature made with this expiry (a UTC date or
    /// time, as `verify` shows it) instead of one without
    #[arg(long, value_name = "WHEN", requires = "message")]
    expires: Option<String>,
}

#[derive(clap::Args)]
struct ShowArgs {
    /// The baseline file.
    db: PathBuf,
    /// Only entries at or below this path.
    path_prefix: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t = FormatArg::Human)]
    format: FormatArg,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// The Celery configuration, read as text (never imported), against
    /// Celery's security guide: serializers, auth signing, broker TLS,
    /// readable passwords, workers that run as root (exit 1 with findings).
    Celery {
        /// An application directory: celeryconfig.py, celery.py, Django
        /// settings, .env [default: /srv/app]; repeatable
        #[arg(long, value_name = "DIR")]
        app_dir: Vec<PathBuf>,
        /// A Celery configuration file (Python or NAME=value), or a
        /// directory of them [default: /etc/celery, and celery* in
        /// /etc/default, /etc/conf.d, /etc/sysconfig]; repeatable. `--config
        /// FILE` names one too: this command reads none of tripseal's own
        /// settings
        #[arg(long, value_name = "FILE")]
        celery_config: Vec<PathBuf>,
        /// A systemd unit, or a directory of them [default: the system's
        /// unit directories]; repeatable
        #[arg(long, value_name = "FILE")]
        unit: Vec<PathBuf>,
        #[arg(long, value_enum, default_value_t = FormatArg::Human)]
        format: FormatArg,
    },
}

impl AuditCommand {
    /// `config`: the global `--config`, which names a Celery
    /// configuration here (the audit reads no settings of tripseal's).
    fn settings(self, config: Option<PathBuf>) -> Settings {
        match self {
            AuditCommand::Celery {
                app_dir,
                mut celery_config,
                unit,
                format,
            } => {
                celery_config.extend(config);
                let named = [&app_dir, &celery_config, &unit]
                    .into_iter()
                    .flatten()
                    .cloned()
                    .collect();
                let d = tripseal::audit::Places::default();
                let or = |given: Vec<PathBuf>, default: Vec<PathBuf>| match given.is_empty() {
                    true => default,
                    false => given,
                };
                Settings::AuditCelery {
                    places: tripseal::audit::Places {
                        app_dirs: or(app_dir, d.app_dirs),
                        configs: or(celery_config, d.configs),
                        units: or(unit, d.units),
                        named,
                    },
                    format: format.into(),
                }
            }
        }
    }
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
        matches!(
            self.command,
            Command::Watch { .. } | Command::Collect { .. }
        )
    }

    /// The flags, the configuration file and the defaults, resolved.
    pub fn settings(self) -> Result<Settings, Error> {
        let ctx = Context {
            config: self.config,
            verbose: self.verbose > 0,
            host: defaults::hostname(),
        };
        match self.command {
            Command::Init(a) => a.settings(ctx),
            Command::Check(a) => a.settings(ctx),
            Command::Update(a) => a.settings(ctx),
            Command::Watch(a) => a.settings(ctx),
            Command::Flush(a) => a.settings(ctx),
            Command::Diff(a) => Ok(a.settings(ctx.verbose)),
            Command::Keygen { out } => Ok(Settings::Keygen { out }),
            Command::Sign(a) => a.settings(),
            Command::Verify(a) => Ok(a.settings()),
            Command::Digest(a) => a.settings(),
            Command::Show(a) => Ok(a.settings()),
            Command::Rules { command } => command.settings(),
            Command::Audit { command } => Ok(command.settings(ctx.config)),
            Command::Collect(a) => a.settings(ctx),
            Command::Fleet { command } => Ok(command.settings()),
        }
    }
}

impl CollectArgs {
    fn settings(self, ctx: Context) -> Result<Settings, Error> {
        let mut sinks = settings::sinks(&self.emit, ctx.config.as_deref())?;
        if sinks.is_empty() {
            sinks = settings::sink_specs(&["stdout".into()])?;
        }
        let (config_path, config) = tripseal::config::load(ctx.config.as_deref())?;
        let from = if self.from.is_empty() {
            config.collector.from
        } else {
            self.from
        };
        if from.is_empty() {
            return Err(Error::invalid(format!(
                "say where the fleet's events are: --from URL, or [collector] from = [\"URL\"] \
                 in {}",
                tripseal::escape::escape_path(&config_path)
            )));
        }
        let beyond = self.listen_beyond_loopback || config.collector.listen_beyond_loopback;
        let listen = self.listen.or(config.collector.listen);
        if let Some(addr) = listen
            && !addr.ip().is_loopback()
            && !beyond
        {
            return Err(Error::invalid(format!(
                "--listen {addr} is not a loopback address: the status page, metrics and API \
                 have no authentication, and show every host's name and drifted paths; add \
                 --listen-beyond-loopback if that is what you want (behind a firewall or a \
                 proxy that authenticates)"
            )));
        }
        Ok(Settings::Collect(tripseal::fleet::CollectOptions {
            store: self.store.path(),
            from,
            sinks,
            host: ctx.host,
            default_period: self.check_period,
            listen,
        }))
    }
}

impl FleetCommand {
    fn settings(self) -> Settings {
        match self {
            FleetCommand::Status { store, format } => Settings::FleetStatus {
                store: store.path(),
                format: format.into(),
            },
            FleetCommand::Drift {
                host,
                store,
                format,
            } => Settings::FleetDrift {
                store: store.path(),
                host,
                format: format.into(),
            },
            FleetCommand::Ack {
                host,
                paths,
                lost,
                rollback,
                by,
                store,
            } => Settings::FleetAck {
                store: store.path(),
                host,
                paths,
                lost,
                rollback,
                by: by
                    .or_else(|| std::env::var("SUDO_USER").ok())
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_else(|| "operator".into()),
            },
            FleetCommand::Publish { db, store, trust } => Settings::FleetPublish {
                store: store.path(),
                db,
                trust: settings::trust_or_default(trust),
            },
        }
    }
}

/// What every command's settings may need besides its own flags.
struct Context {
    config: Option<PathBuf>,
    verbose: bool,
    host: String,
}

impl InitArgs {
    fn settings(self, ctx: Context) -> Result<Settings, Error> {
        Ok(Settings::Init {
            rules: settings::rules(self.rules.as_deref(), &self.vars, true)?,
            db_defaulted: self.db.is_none(),
            db: settings::db_or_default(self.db, &ctx.host),
            replace: self.force,
            host: ctx.host,
            relocate: self.relocate.relocation()?,
        })
    }
}

impl CheckArgs {
    fn settings(self, ctx: Context) -> Result<Settings, Error> {
        let mut sinks = settings::sinks(&self.emit, ctx.config.as_deref())?;
        let report = match self.format {
            CheckFormatArg::Human => Some(Format::Human),
            CheckFormatArg::Json => Some(Format::Json),
            CheckFormatArg::Events => None,
        };
        if report.is_none() && !sinks.iter().any(|s| s.key == "stdout") {
            sinks.extend(settings::sink_specs(&["stdout".into()])?);
        }
        Ok(Settings::Check(CheckSettings {
            db: settings::db_or_default(self.db, &ctx.host),
            seal: self.seal.policy(self.allow_rollback),
            sinks,
            report,
            fast: self.fast.then_some(tripseal::check::Fast {
                reread_percent: self.reread,
            }),
            verbose: ctx.verbose,
            expiry_warning: self.expiry_warning,
            cert_warning: self.cert_warning,
            sources: settings::origin_sources(ctx.config.as_deref())?,
            host: ctx.host,
        }))
    }
}

impl UpdateArgs {
    fn settings(self, ctx: Context) -> Result<Settings, Error> {
        Ok(Settings::Update {
            db: settings::db_or_default(self.db, &ctx.host),
            rules: match self.rules {
                Some(file) => Some(settings::rules(Some(&file), &self.vars, true)?),
                None => None,
            },
            accept_errors: self.accept_errors,
            format: self.format.into(),
            host: ctx.host,
            relocate: self.relocate.relocation()?,
            only_packaged: self.only_packaged.map(Into::into),
            sources: settings::origin_sources(ctx.config.as_deref())?,
            trust: settings::trust_or_default(self.trust),
        })
    }
}

impl WatchArgs {
    fn settings(self, ctx: Context) -> Result<Settings, Error> {
        let mut sinks = settings::sinks(&self.emit, ctx.config.as_deref())?;
        if sinks.is_empty() {
            sinks = settings::sink_specs(&["stdout".into()])?;
        }
        Ok(Settings::Watch(WatchOptions {
            db: settings::db_or_default(self.db, &ctx.host),
            policy: self.seal.policy(false),
            rescan: self.rescan,
            heartbeat: self.heartbeat,
            sinks,
            host: ctx.host,
            expiry_warning: self.expiry_warning,
            cert_warning: self.cert_warning,
            sources: settings::origin_sources(ctx.config.as_deref())?,
            backend: match self.backend {
                BackendArg::Auto => tripseal::watch::Backend::Auto,
                BackendArg::Inotify => tripseal::watch::Backend::Inotify,
                BackendArg::Fanotify => tripseal::watch::Backend::Fanotify,
            },
        }))
    }
}

impl FlushArgs {
    fn settings(self, ctx: Context) -> Result<Settings, Error> {
        Ok(Settings::Flush {
            db: settings::db_or_default(self.db, &ctx.host),
            configured: if self.emit.is_empty() {
                settings::configured_sinks(ctx.config.as_deref())?
            } else {
                Vec::new()
            },
            given: settings::sink_specs(&self.emit)?,
            host: ctx.host,
        })
    }
}

impl DiffArgs {
    fn settings(self, verbose: bool) -> Settings {
        Settings::Diff {
            old: self.old_db,
            new: self.new_db,
            seal: self.seal.policy(false),
            format: self.format.into(),
            verbose,
        }
    }
}

impl SignArgs {
    fn settings(self) -> Result<Settings, Error> {
        let expires_ns = match self.expires {
            Some(when) => Some(parse_when(&when, now_ns()).map_err(Error::invalid)?),
            None => None,
        };
        Ok(Settings::Sign {
            key: self.key,
            db: self.db,
            expires_ns,
        })
    }
}

impl VerifyArgs {
    fn settings(self) -> Settings {
        Settings::Verify {
            trust: settings::trust_or_default(self.trust),
            db: self.db,
            expiry_warning: self.expiry_warning,
        }
    }
}

impl DigestArgs {
    fn settings(self) -> Result<Settings, Error> {
        let expires_ns = match self.expires {
            Some(when) => Some(parse_time(&when).map_err(Error::invalid)?),
            None => None,
        };
        Ok(Settings::Digest {
            db: self.db,
            message: self.message,
            expires_ns,
        })
    }
}

impl ShowArgs {
    fn settings(self) -> Settings {
        Settings::Show {
            db: self.db,
            prefix: self.path_prefix.map(|p| settings::absolute(&p)),
            format: self.format.into(),
        }
    }
}

impl RulesCommand {
    fn settings(self) -> Result<Settings, Error> {
        Ok(match self {
            RulesCommand::Check { file, vars } => Settings::RulesCheck {
                rules: settings::rules(Some(&file), &vars, false)?,
            },
            RulesCommand::Explain { path, rules, vars } => Settings::RulesExplain {
                rules: settings::rules(rules.as_deref(), &vars, false)?,
                path: settings::absolute(&path),
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

    /// The man pages (one per command) and the shell completions that the
    /// Debian package ships are made from these definitions and committed
    /// under packaging/, where a reviewer reads them; this fails when they
    /// are stale. `TRIPSEAL_BLESS=1 cargo test --bins packaged` rewrites them.
    #[test]
    fn packaged_man_pages_and_completions_are_current() {
        use clap::CommandFactory;
        use clap_complete::Shell;
        let made = tempfile::tempdir().unwrap();
        let man = made.path().join("man");
        let completions = made.path().join("completions");
        std::fs::create_dir(&man).unwrap();
        std::fs::create_dir(&completions).unwrap();
        clap_mangen::generate_to(Cli::command(), &man).unwrap();
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            clap_complete::generate_to(shell, &mut Cli::command(), "tripseal", &completions)
                .unwrap();
        }
        let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging");
        let bless = std::env::var_os("TRIPSEAL_BLESS").is_some();
        for (dir, committed) in [
            (&man, repo.join("man")),
            (&completions, repo.join("completions")),
        ] {
            let listing = |d: &std::path::Path| -> std::collections::BTreeMap<String, Vec<u8>> {
                std::fs::read_dir(d)
                    .map(|rd| {
                        rd.flatten()
                            .map(|e| {
                                let name = e.file_name().to_string_lossy().into_owned();
                                (name, std::fs::read(e.path()).unwrap())
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let (want, have) = (listing(dir), listing(&committed));
            if bless && want != have {
                let _ = std::fs::remove_dir_all(&committed);
                std::fs::create_dir_all(&committed).unwrap();
                for (name, bytes) in &want {
                    std::fs::write(committed.join(name), bytes).unwrap();
                }
                continue;
            }
            assert_eq!(
                want.keys().collect::<Vec<_>>(),
                have.keys().collect::<Vec<_>>(),
                "{}: run TRIPSEAL_BLESS=1 cargo test --bins packaged",
                committed.display()
            );
            for (name, bytes) in &want {
                assert!(
                    have[name] == *bytes,
                    "{}/{name} is stale: run TRIPSEAL_BLESS=1 cargo test --bins packaged",
                    committed.display()
                );
            }
        }
    }
}
