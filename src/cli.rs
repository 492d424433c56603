//! Command-line definitions, and their mapping to library calls. Nothing else.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Component, Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

use tripseal::defaults;
use tripseal::error::Error;
use tripseal::init::{self, InitOptions};
use tripseal::progress::{NoProgress, Progress, TerminalProgress};
use tripseal::report::{self, Format};
use tripseal::rules::{self, Rules};

#[derive(Parser)]
#[command(
    name = "tripseal",
    version,
    about = "File-integrity monitor for Celery worker hosts: sealed baselines, drift as events",
    after_help = "Exit codes: 0 success; 14 write error; 15 invalid argument; 17 rules error; \
                  18 I/O error; 21 baseline locked; 24 not a usable baseline."
)]
pub struct Cli {
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

#[derive(Clone, Copy, ValueEnum)]
enum FormatArg {
    Human,
    Json,
}

/// Runs the parsed command; the `Ok` value is the process exit code.
pub fn run(cli: Cli) -> Result<u8, Error> {
    let mut stdout = std::io::stdout().lock();
    match cli.command {
        Command::Init {
            rules,
            db,
            vars,
            force,
        } => {
            let rules = load_rules(rules.as_deref(), &vars)?;
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
            let progress: Box<dyn Progress> = if std::io::stderr().is_terminal() {
                Box::new(TerminalProgress::new())
            } else {
                Box::new(NoProgress)
            };
            let summary = init::init(&rules, &opts, progress.as_ref())?;
            report::problems(&mut std::io::stderr().lock(), &summary)?;
            report::init_summary(&mut stdout, &summary)?;
            Ok(0)
        }
        Command::Show {
            db,
            path_prefix,
            format,
        } => {
            let baseline = tripseal::baseline::Baseline::open(&db)?;
            let format = match format {
                FormatArg::Human => Format::Human,
                FormatArg::Json => Format::Json,
            };
            let prefix = path_prefix.map(|p| absolute(&p));
            report::show(&mut stdout, &baseline, prefix.as_deref(), format)?;
            Ok(0)
        }
        Command::Rules { command } => match command {
            RulesCommand::Check { file, vars } => {
                let rules = load_rules(Some(&file), &vars)?;
                report::rules_ok(&mut stdout, &rules)?;
                Ok(0)
            }
            RulesCommand::Explain { path, rules, vars } => {
                let rules = load_rules(rules.as_deref(), &vars)?;
                let path = absolute(&path);
                report::explain(&mut stdout, &rules, &path)?;
                let _ = stdout.flush();
                Ok(if rules.select(&path).is_some() { 0 } else { 1 })
            }
        },
    }
}

fn load_rules(file: Option<&Path>, vars: &[String]) -> Result<Rules, Error> {
    let mut overrides = BTreeMap::new();
    for v in vars {
        let (name, value) = rules::parse_var(v).map_err(Error::invalid)?;
        overrides.insert(name, value);
    }
    let source = match file {
        Some(f) => defaults::read_rules(f)?,
        None => defaults::default_rules()?,
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
