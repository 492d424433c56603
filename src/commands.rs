//! The commands, one function each, over resolved [`Settings`]. They write
//! reports to standard output through the report module, say warnings
//! through the log, and return an [`Outcome`] (or the error) for `main` to
//! turn into the exit code.

use std::io::{IsTerminal, Write};
use std::path::Path;

use tripseal::baseline::Baseline;
use tripseal::error::{Error, Outcome};
use tripseal::escape::escape_path;
use tripseal::events::courier::{Courier, log_warnings};
use tripseal::events::outbox::Outbox;
use tripseal::events::{BaselineRef, EventFactory, SinkSpec};
use tripseal::files::hex;
use tripseal::init::{self, InitOptions};
use tripseal::origin::{Evidence, Sources};
use tripseal::progress::{NoProgress, Progress, TerminalProgress};
use tripseal::report::{self, DriftReport, Format, out_err};
use tripseal::rules::Rules;
use tripseal::scan::Relocation;
use tripseal::seal::{self, SealPolicy};
use tripseal::settings::{CheckSettings, Settings};
use tripseal::units::{human_duration, iso8601, now_ns};
use tripseal::{check, fleet, watch};

/// Runs one command.
pub fn run(settings: Settings) -> Result<Outcome, Error> {
    match settings {
        Settings::Init {
            rules,
            db,
            db_defaulted,
            replace,
            host,
            relocate,
        } => init(
            &rules,
            InitOptions {
                db,
                replace,
                host,
                relocate,
            },
            db_defaulted,
        ),
        Settings::Check(s) => check(s),
        Settings::Update {
            db,
            rules,
            accept_errors,
            format,
            host,
            relocate,
            only_packaged,
            sources,
            trust,
        } => update(
            &db,
            rules,
            (accept_errors, only_packaged, (&sources, &trust)),
            relocate,
            format,
            &host,
        ),
        Settings::Diff {
            old,
            new,
            seal,
            format,
            verbose,
        } => diff(&old, &new, &seal, format, verbose),
        Settings::Watch(opts) => {
            warn_unsigned(&opts.policy, &opts.db);
            watch::watch(opts).map(|()| Outcome::Done)
        }
        Settings::Flush {
            db,
            given,
            configured,
            host,
        } => flush(&db, given, &configured, &host),
        Settings::Keygen { out } => keygen(&out),
        Settings::Sign {
            key,
            db,
            expires_ns,
        } => sign(&key, &db, expires_ns),
        Settings::Verify {
            trust,
            db,
            expiry_warning,
        } => verify(&trust, &db, expiry_warning),
        Settings::Digest {
            db,
            message,
            expires_ns,
        } => digest(&db, message.as_deref(), expires_ns),
        Settings::Show { db, prefix, format } => {
            let baseline = Baseline::open(&db)?;
            report::show(&mut stdout(), &baseline, prefix.as_deref(), format)?;
            Ok(Outcome::Done)
        }
        Settings::AuditCelery { places, format } => {
            let a = tripseal::audit::audit(&places);
            let mut out = stdout();
            match format {
                Format::Json => {
                    let mut safe = tripseal::escape::JsonForTerminal::new(&mut out);
                    writeln!(safe, "{}", a.json()).and_then(|()| safe.flush())
                }
                Format::Human => a.human(&mut out),
            }
            .map_err(report::out_err)?;
            Ok(match a.findings.is_empty() && a.unreadable.is_empty() {
                true => Outcome::Done,
                false => Outcome::Findings,
            })
        }
        Settings::RulesCheck { rules } => {
            report::rules_ok(&mut stdout(), &rules)?;
            Ok(Outcome::Done)
        }
        Settings::RulesExplain { rules, path } => rules_explain(&rules, &path),
        Settings::Collect(opts) => fleet::collect(opts).map(|()| Outcome::Done),
        Settings::FleetStatus { store, format } => {
            let fine = fleet::status(&store, format, &mut stdout())?;
            Ok(if fine {
                Outcome::Done
            } else {
                Outcome::NotSelected
            })
        }
        Settings::FleetDrift {
            store,
            host,
            format,
        } => {
            let none_open = fleet::drift(&store, &host, format, &mut stdout())?;
            Ok(if none_open {
                Outcome::Done
            } else {
                Outcome::NotSelected
            })
        }
        Settings::FleetAck {
            store,
            host,
            paths,
            lost,
            rollback,
            by,
        } => {
            if paths.is_empty() && !lost && !rollback {
                return Err(Error::invalid(
                    "say what to acknowledge: drift at PATH..., --lost (the events the host \
                     lost) or --rollback (its older generation)",
                ));
            }
            fleet::ack(
                &store,
                &fleet::Ack {
                    name: &host,
                    paths: &paths,
                    lost,
                    rollback,
                    by: &by,
                },
            )?;
            Ok(Outcome::Done)
        }
        Settings::FleetPublish { store, db, trust } => {
            let p = fleet::publish(&store, &db, &trust)?;
            writeln!(
                stdout(),
                "published {} generation {} (digest {}), signed by {}",
                match &p.role {
                    Some(r) => format!("role {}", tripseal::escape::escape_bytes(r.as_bytes())),
                    None => format!(
                        "the baseline of host {}",
                        tripseal::escape::escape_bytes(p.host.as_deref().unwrap_or("").as_bytes())
                    ),
                },
                p.generation,
                p.digest,
                p.signers
                    .iter()
                    .map(|f| f.chars().take(16).collect::<String>())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
            .map_err(out_err)?;
            Ok(Outcome::Done)
        }
    }
}

fn stdout() -> std::io::StdoutLock<'static> {
    std::io::stdout().lock()
}

fn init(rules: &Rules, opts: InitOptions, db_defaulted: bool) -> Result<Outcome, Error> {
    log::debug!(
        "init {} from the rules {} as host {}",
        escape_path(&opts.db),
        rules.source.name,
        opts.host
    );
    if db_defaulted && let Some(dir) = opts.db.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let summary = init::init(rules, &opts, progress().as_ref())?;
    report::problems(&mut std::io::stderr().lock(), &summary)?;
    report::init_summary(&mut stdout(), &summary)?;
    Ok(Outcome::Done)
}

fn check(s: CheckSettings) -> Result<Outcome, Error> {
    log::debug!(
        "check {} as host {}; trust {}; sinks [{}]",
        escape_path(&s.db),
        s.host,
        s.seal.trust.as_deref().unwrap_or("-"),
        s.sinks
            .iter()
            .map(|k| k.key.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut courier = match s.sinks.is_empty() {
        true => None,
        false => Some(Courier::new(
            Outbox::open(&s.db)?,
            &s.sinks,
            EventFactory::new(&s.host, &s.db, None),
        )?),
    };
    if let Some(c) = &mut courier {
        c.started("check")?;
    }
    warn_unsigned(&s.seal, &s.db);
    let comparison = match check::check(
        &s.db,
        &s.seal,
        s.fast,
        &s.sources,
        &s.host,
        progress().as_ref(),
    ) {
        Ok(c) => c,
        Err(e) => {
            if let Some(c) = &mut courier {
                c.refused(&s.db, &e)?;
                log_warnings(c);
            }
            return Err(e);
        }
    };
    let now = now_ns();
    let expiring = seal::expiring_within(comparison.expires_ns, now, s.expiry_warning);
    warn_expiring(&s.db, expiring, now);
    if let Some(c) = &mut courier {
        let named = BaselineRef::of(&comparison.old, comparison.old_digest)?;
        c.set_factory(EventFactory::new(&s.host, &s.db, Some(named)));
        if let Some(t) = expiring {
            let ev = c
                .factory()
                .expiring(s.db.as_os_str().as_encoded_bytes(), t, now);
            c.keep(vec![ev])?;
        }
        let mut found = c.certificates(&comparison.certificates, s.cert_warning);
        found.extend(c.audit(comparison.audit.as_ref()));
        c.keep(found)?;
        c.comparison("check", &comparison)?;
        c.deliver_before_exit()?;
        log_warnings(c);
    }
    if let Some(format) = s.report {
        let r = DriftReport {
            command: "check",
            comparison: &comparison,
            verbose: s.verbose,
            left_out: None,
            cert_window: s.cert_warning.as_secs() as i64,
        };
        report::drift(&mut stdout(), format, &r)?;
    }
    Ok(Outcome::Drift(comparison.counts.exit_bits()))
}

fn update(
    db: &Path,
    rules: Option<Rules>,
    (accept_errors, only_packaged, anchored): (bool, Option<Evidence>, (&Sources, &str)),
    relocate: Option<Relocation>,
    format: Format,
    host: &str,
) -> Result<Outcome, Error> {
    let updated = check::update(
        db,
        rules,
        (accept_errors, only_packaged),
        relocate,
        anchored,
        host,
        progress().as_ref(),
    )?;
    let comparison = &updated.comparison;
    let r = DriftReport {
        command: "update",
        comparison,
        verbose: true,
        left_out: updated.only_packaged.map(|e| (e, updated.left.as_slice())),
        cert_window: DEFAULT_CERT_WINDOW,
    };
    let mut out = stdout();
    report::drift(&mut out, format, &r)?;
    let unsigned = format!(
        "generation {} is not signed: `tripseal check` refuses it until an operator \
         reviews it (`tripseal diff {} {}`) and signs it (`tripseal sign --key KEY {}`)",
        comparison.new.header().generation,
        escape_path(comparison.old.path()),
        escape_path(db),
        escape_path(db)
    );
    // A JSON report is one document on standard output, for a program.
    match format {
        Format::Json => log::warn!("{unsigned}"),
        Format::Human => writeln!(out, "{unsigned}").map_err(out_err)?,
    }
    Ok(Outcome::Done)
}

fn diff(
    old: &Path,
    new: &Path,
    seal: &SealPolicy,
    format: Format,
    verbose: bool,
) -> Result<Outcome, Error> {
    warn_unsigned(seal, old);
    let comparison = check::diff(old, new, seal)?;
    let r = DriftReport {
        command: "diff",
        comparison: &comparison,
        verbose,
        left_out: None,
        cert_window: DEFAULT_CERT_WINDOW,
    };
    report::drift(&mut stdout(), format, &r)?;
    Ok(Outcome::Drift(comparison.counts.exit_bits()))
}

/// Delivers what waits in the outbox of `db`: to the `given` sinks, or to
/// every sink that has events waiting (passwords from `configured`).
fn flush(
    db: &Path,
    given: Vec<SinkSpec>,
    configured: &[SinkSpec],
    host: &str,
) -> Result<Outcome, Error> {
    let outbox = Outbox::open(db)?;
    // Sinks whose password is unknown are reported after the others have
    // had their events.
    let mut unresolved = None;
    let sinks = if given.is_empty() {
        let mut sinks = Vec::new();
        for key in outbox.waiting_sinks()? {
            match SinkSpec::for_waiting(&key, configured) {
                Ok(s) => sinks.push(s),
                Err(e) => unresolved = unresolved.or(Some(e)),
            }
        }
        sinks
    } else {
        given
    };
    let mut courier = Courier::new(outbox, &sinks, EventFactory::new(host, db, None))?;
    let stopped = courier.deliver()?;
    log_warnings(&mut courier);
    let left = courier.store().len()?;
    writeln!(
        stdout(),
        "tripseal flush: {} sinks; {left} events still wait in {}",
        sinks.len(),
        escape_path(courier.store().path())
    )
    .map_err(out_err)?;
    if let Some(s) = stopped.into_iter().next() {
        return Err(s.into());
    }
    match unresolved {
        Some(e) => Err(e),
        None => Ok(Outcome::Done),
    }
}

fn keygen(out: &Path) -> Result<Outcome, Error> {
    let (public, fingerprint) = seal::keygen(out)?;
    writeln!(
        stdout(),
        "private key {} (mode 0600): keep it on the operator's machine, never on a worker\n\
         public key  {}: copy it into each host's trust store (/etc/tripseal/trusted.d/)\n\
         fingerprint {fingerprint}",
        escape_path(out),
        escape_path(&public)
    )
    .map_err(out_err)?;
    Ok(Outcome::Done)
}

fn sign(key: &Path, db: &Path, expires_ns: Option<i64>) -> Result<Outcome, Error> {
    let key = seal::load_signing_key(key)?;
    let outcome = seal::sign(db, &key, now_ns(), expires_ns)?;
    let b = Baseline::open(db)?;
    let (verb, fp) = match outcome {
        seal::Signed::Added { fingerprint } => ("signed", fingerprint),
        seal::Signed::AlreadySigned { fingerprint } => ("already signed", fingerprint),
    };
    let until = expires_ns.map_or(String::new(), |t| format!(", trusted until {}", iso8601(t)));
    writeln!(
        stdout(),
        "{} generation {} {verb} by {fp}{until}",
        escape_path(db),
        b.header().generation
    )
    .map_err(out_err)?;
    Ok(Outcome::Done)
}

fn verify(trust: &str, db: &Path, expiry_warning: std::time::Duration) -> Result<Outcome, Error> {
    let b = match Baseline::open(db) {
        Ok(b) => b,
        Err(Error::Database { detail, .. }) => {
            return Err(Error::Seal {
                path: db.to_path_buf(),
                reason: seal::SealFailure::Unreadable,
                detail,
            });
        }
        Err(e) => return Err(e),
    };
    let store = seal::TrustStore::load(trust)?;
    let now = now_ns();
    let v = seal::verify(&b, &store, now)?;
    report::verification(&mut stdout(), &b, &store, &v)?;
    v.accept(db, &store)?;
    let expiring = seal::expiring_within(v.expires_ns(), now, expiry_warning);
    warn_expiring(db, expiring, now);
    Ok(Outcome::Done)
}

fn digest(db: &Path, message: Option<&Path>, expires_ns: Option<i64>) -> Result<Outcome, Error> {
    let b = Baseline::open(db)?;
    let digest = seal::digest(&b)?;
    let generation = b.header().generation;
    if let Some(file) = message {
        let bytes = seal::message(generation, expires_ns, &digest);
        tripseal::files::write_file(file, &bytes).map_err(|source| Error::Write {
            path: file.to_path_buf(),
            source,
        })?;
    }
    writeln!(stdout(), "{}  generation {generation}", hex(&digest)).map_err(out_err)?;
    Ok(Outcome::Done)
}

fn rules_explain(rules: &Rules, path: &Path) -> Result<Outcome, Error> {
    let mut out = stdout();
    report::explain(&mut out, rules, path)?;
    let _ = out.flush();
    Ok(match rules.select(path) {
        Some(_) => Outcome::Done,
        None => Outcome::NotSelected,
    })
}

/// `update` and `diff` say certificates that expire within 30 days, as
/// `check` does by default.
const DEFAULT_CERT_WINDOW: i64 = 30 * 86_400;

/// Says loudly that the seal of `db` is not verified, when it is not.
fn warn_unsigned(policy: &SealPolicy, db: &Path) {
    if policy.allow_unsigned {
        log::warn!(
            "--allow-unsigned: the seal of {} was NOT verified; what follows is measured \
             against a baseline nobody vouched for",
            escape_path(db)
        );
    }
}

/// Says that the seal of `db` expires soon (at `expiring`, from
/// [`seal::expiring_within`]).
fn warn_expiring(db: &Path, expiring: Option<i64>, now_ns: i64) {
    if let Some(t) = expiring {
        log::warn!(
            "the seal of {} expires {} (in {}); sign the next generation before then \
             (`tripseal sign --expires 30d --key KEY DB`), or checks will refuse it",
            escape_path(db),
            iso8601(t),
            human_duration((t - now_ns).max(0))
        );
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
