//! The fleet: `tripseal collect` consumes the events every host sends to a
//! fleet feed, keeps the fleet's state ([`store`]), flags hosts that went
//! silent, rolled back, run an unpublished baseline or lost events, and
//! says so as events of its own; `tripseal fleet` reads and acts on that
//! state.
//!
//! Guarantees:
//! - a message leaves the feed only once what it says is stored (and the
//!   flags it raised are in the collector's outbox): a collector killed
//!   mid-batch is given the batch again, and takes each event once;
//! - silence is judged only while every feed is connected, and counted from
//!   the moment the collector could hear: a collector or broker restart does
//!   not make the whole fleet silent.

pub mod source;
pub mod store;
pub mod web;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::error::Error;
use crate::escape::{escape_bytes, escape_path};
use crate::events::courier::{Courier, log_warnings};
use crate::events::outbox::Outbox;
use crate::events::{Event, EventFactory, SinkSpec};
use crate::report::Format;
use crate::seal::TrustStore;
use crate::units::{iso8601, now_ns};
use source::Source;
use store::{Flag, HostState, Published, Store, Taken};

/// The default store, where the Debian package makes tripseal's state.
pub const DEFAULT_STORE: &str = "/var/lib/tripseal/collector.db";

/// How often silence is judged.
const JUDGE_EVERY: Duration = Duration::from_secs(1);
/// Waits between tries of a feed that is down: doubling up to the last.
const FEED_BACKOFF: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(15));

pub struct CollectOptions {
    pub store: PathBuf,
    /// The feeds' URLs.
    pub from: Vec<String>,
    /// Where the collector's own events go.
    pub sinks: Vec<SinkSpec>,
    /// The collector's own host name, for its events.
    pub host: String,
    /// The period assumed for hosts that announce none (scheduled checks).
    pub default_period: Duration,
    /// Where to serve metrics, the API and the status page.
    pub listen: Option<std::net::SocketAddr>,
}

/// How often the feeds' lag is asked for.
const LAG_EVERY: Duration = Duration::from_secs(5);
/// How often old event ids are forgotten.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// One feed and how it is doing.
struct Feed {
    source: Box<dyn Source>,
    retry_at: Option<Instant>,
    backoff: Duration,
    /// Why it is down, as last said.
    down: Option<String>,
}

/// Runs the collector until SIGTERM or SIGINT.
pub fn collect(opts: CollectOptions) -> Result<(), Error> {
    // The feeds' URLs are checked before anything is made.
    let mut feeds = opts
        .from
        .iter()
        .map(|u| {
            Ok(Feed {
                source: source::open(u)?,
                retry_at: None,
                backoff: FEED_BACKOFF.0,
                down: None,
            })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let mut store = Store::open(&opts.store, true)?;
    let factory = EventFactory::new(&opts.host, &opts.store, None);
    let mut courier = Courier::new(Outbox::open(&opts.store)?, &opts.sinks, factory)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .map_err(|source| Error::Signals { source })?;
    }
    log::info!(
        "collecting from {} into {}",
        feeds
            .iter()
            .map(|f| f.source.name().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        escape_path(&opts.store)
    );
    store.begin()?;
    store.prune(now_ns())?;
    store.commit()?;
    let _web = match opts.listen {
        Some(addr) => {
            let web = web::Web::start(addr, opts.store.clone())?;
            log::info!(
                "serving the status page, /metrics and /api/hosts on http://{}/",
                web.addr
            );
            Some(web)
        }
        None => None,
    };
    let mut lag_asked: Option<Instant> = None;
    let mut lag_stored: Option<u64> = None;
    let mut pruned = Instant::now();
    let mut listening_since: Option<i64> = None;
    let mut judged = Instant::now();
    let wait = Duration::from_millis(if feeds.len() > 1 { 100 } else { 500 });
    while !stop.load(Ordering::Relaxed) {
        crate::progress::tick();
        let mut took = 0;
        for feed in &mut feeds {
            if feed.retry_at.is_some_and(|t| Instant::now() < t) {
                continue;
            }
            match feed.source.receive(source::BATCH, wait) {
                Ok(messages) => {
                    if feed.down.take().is_some() {
                        log::info!("{}: connected again", feed.source.name());
                    }
                    feed.retry_at = None;
                    feed.backoff = FEED_BACKOFF.0;
                    if messages.is_empty() {
                        // What was received had nothing to store (entries
                        // a capped stream dropped before they were read):
                        // acknowledged, or it would be handed out again.
                        if let Err(e) = feed.source.ack() {
                            log::debug!("{}: {e}", feed.source.name());
                        }
                        continue;
                    }
                    took += messages.len();
                    take_batch(&mut store, &mut courier, &messages)?;
                    if let Err(e) = feed.source.ack() {
                        // Stored already: the redelivery changes nothing.
                        log::warn!(
                            "{}: cannot acknowledge ({}); the batch comes again and is \
                             recognised",
                            feed.source.name(),
                            crate::escape::sanitize_line(&e)
                        );
                    }
                }
                Err(_) if stop.load(Ordering::Relaxed) => break,
                Err(e) => {
                    let e = crate::escape::sanitize_line(&e);
                    if feed.down.as_deref() != Some(e.as_str()) {
                        log::warn!(
                            "{}: {e}; trying again, no host is judged silent meanwhile",
                            feed.source.name()
                        );
                    }
                    feed.down = Some(e);
                    feed.retry_at = Some(Instant::now() + feed.backoff);
                    feed.backoff = (feed.backoff * 2).min(FEED_BACKOFF.1);
                }
            }
        }
        let hearing = feeds
            .iter()
            .all(|f| f.down.is_none() && f.source.connected());
        listening_since = match (hearing, listening_since) {
            (false, _) => None,
            (true, None) => Some(now_ns()),
            (true, since) => since,
        };
        // Not while events wait in the feed: a host's last word may be
        // among them.
        let behind = lag_stored.is_some_and(|l| l > 0);
        if let Some(since) = listening_since
            && !behind
            && judged.elapsed() >= JUDGE_EVERY
        {
            judged = Instant::now();
            store.begin()?;
            let flags = store.judge_silence(now_ns(), since, opts.default_period.as_secs_f64());
            let flags = match flags {
                Ok(f) => f,
                Err(e) => {
                    store.rollback();
                    return Err(e);
                }
            };
            say(&mut store, &mut courier, flags)?;
        }
        if hearing && lag_asked.is_none_or(|t| t.elapsed() >= LAG_EVERY) {
            lag_asked = Some(Instant::now());
            let lags: Option<Vec<u64>> = feeds.iter_mut().map(|f| f.source.lag()).collect();
            let lag = lags.map(|l| l.iter().sum::<u64>());
            if let Some(lag) = lag.filter(|l| Some(*l) != lag_stored) {
                store.begin()?;
                match store.set_gauge("lag", lag as i64) {
                    Ok(()) => store.commit()?,
                    Err(e) => {
                        store.rollback();
                        return Err(e);
                    }
                }
                lag_stored = Some(lag);
            }
        }
        if pruned.elapsed() >= PRUNE_EVERY {
            pruned = Instant::now();
            store.begin()?;
            match store.prune(now_ns()) {
                Ok(()) => store.commit()?,
                Err(e) => {
                    store.rollback();
                    return Err(e);
                }
            }
        }
        if courier.retry_at().is_some_and(|t| Instant::now() >= t) {
            courier.retry()?;
        }
        log_warnings(&mut courier);
        if took == 0 && !hearing {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    log::info!("stopping: every stored event was acknowledged");
    courier.deliver_before_exit()?;
    log_warnings(&mut courier);
    Ok(())
}

/// Stores a batch in one transaction; the flags it raised are kept in the
/// outbox before the transaction commits, so that none is lost (a crash in
/// between says a flag twice, never not at all).
fn take_batch(
    store: &mut Store,
    courier: &mut Courier<Outbox>,
    messages: &[source::Message],
) -> Result<(), Error> {
    store.begin()?;
    let mut flags = Vec::new();
    let now = now_ns();
    for m in messages {
        match store.take(&m.body, m.publisher.as_deref(), now) {
            Ok(Taken::Stored(f) | Taken::Impostor(f)) => flags.extend(f),
            Ok(Taken::Duplicate | Taken::Own) => {}
            Ok(Taken::Malformed(why)) => log::warn!(
                "a message in the feed is not a tripseal event ({}); it is dropped",
                crate::escape::sanitize_line(&why)
            ),
            Err(e) => {
                store.rollback();
                return Err(e);
            }
        }
    }
    say(store, courier, flags)
}

/// Keeps `flags` as events (and says them on stderr), then commits the
/// store's transaction.
fn say(store: &mut Store, courier: &mut Courier<Outbox>, flags: Vec<Flag>) -> Result<(), Error> {
    let events: Vec<Event> = flags
        .into_iter()
        .map(|f| {
            log::warn!(
                "{} {}: {}",
                f.kind,
                escape_bytes(store::shown(&f.host, &f.instance).as_bytes()),
                crate::escape::sanitize_line(
                    f.fields.get("detail").and_then(Value::as_str).unwrap_or("")
                )
            );
            courier.factory().event(f.kind, f.fields)
        })
        .collect();
    if let Err(e) = courier.keep(events) {
        store.rollback();
        return Err(e);
    }
    store.commit()?;
    if courier.retry_at().is_none() {
        courier.retry()?;
    }
    Ok(())
}

/// `tripseal fleet publish DB`: records a signed baseline (its seal verified
/// with the collector's trust store) as one the fleet may use.
pub fn publish(store: &Path, db: &Path, trust: &str) -> Result<Published, Error> {
    let baseline = crate::baseline::Baseline::open(db)?;
    let trust_store = TrustStore::load(trust)?;
    let v = crate::seal::verify(&baseline, &trust_store, now_ns())?;
    v.accept(db, &trust_store)?;
    let hex = crate::files::hex(&v.digest);
    let header = baseline.header();
    let p = Published {
        digest: hex[..16].to_string(),
        full_digest: hex,
        role: header.role.clone(),
        host: header.role.is_none().then(|| header.host.clone()),
        generation: v.generation,
        signers: v
            .signatures
            .iter()
            .filter(|s| s.valid && s.trusted && !s.expired)
            .map(|s| s.fingerprint.clone())
            .collect(),
        published_ns: now_ns(),
    };
    let mut s = Store::open(store, true)?;
    s.publish(&p)?;
    Ok(p)
}

/// A monitor as JSON (`fleet status --format json`, the API).
pub fn host_json(h: &HostState, now: i64) -> Value {
    json!({
        "host": h.host,
        "instance": h.instance,
        "name": store::shown(&h.host, &h.instance),
        "state": h.state,
        "state_since": iso8601(h.state_since_ns),
        "problems": store::problems(h),
        "role": h.role,
        "first_seen": iso8601(h.first_seen_ns),
        "last_seen": iso8601(h.last_seen_ns),
        "seconds_since_seen": ((now - h.last_seen_ns).max(0) as f64 / 1e9).round(),
        "heartbeat_period": h.period_s,
        "baseline": {
            "digest": h.digest,
            "generation": h.generation,
            "highest_generation": h.max_generation,
            "published": h.published.is_some(),
            "signers": h.published.as_ref().map(|p| p.signers.clone()).unwrap_or_default(),
        },
        "tampered": h.tampered,
        "backend": h.backend,
        "version": h.version,
        "events_lost": h.missing,
        "sequence": {"stream": h.stream, "last": h.last_seq},
        "open_drift": h.open_drift.iter().map(|(s, n)| (s.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "last_scan": h.last_scan,
    })
}

/// JSON of what hosts sent, safe for a terminal (no control or reordering
/// character reaches it raw).
fn json_out(v: &Value) -> String {
    crate::escape::json_for_terminal(&v.to_string()).into_owned()
}

/// An open drift record as JSON (`fleet drift --format json`, the API).
pub fn drift_json(d: &store::DriftRow) -> Value {
    json!({
        "path": d.path,
        "kind": d.kind,
        "severity": d.severity,
        "rule": d.rule,
        "first_seen": iso8601(d.first_seen_ns),
        "last_seen": iso8601(d.last_seen_ns),
        "acknowledged_by": d.acked_by,
        "event": d.event,
    })
}

/// `tripseal fleet status`: one line per monitor, worst first.
pub fn status(store: &Path, format: Format, out: &mut dyn Write) -> Result<bool, Error> {
    let mut s = Store::open(store, false)?;
    s.snapshot()?;
    let hosts = s.hosts()?;
    let now = now_ns();
    let werr = |e: std::io::Error| Error::Write {
        path: PathBuf::from("standard output"),
        source: e,
    };
    if format == Format::Json {
        let v = json!({
            "hosts": hosts.iter().map(|h| host_json(h, now)).collect::<Vec<_>>(),
            "collector": {
                "events_consumed": s.counter("consumed")?,
                "duplicates": s.counter("duplicates")?,
                "malformed": s.counter("malformed")?,
                "impostors": s.counter("impostors")?,
            },
        });
        s.commit()?;
        writeln!(out, "{}", json_out(&v)).map_err(werr)?;
    } else {
        if hosts.is_empty() {
            writeln!(out, "no host has reported to this collector yet").map_err(werr)?;
        }
        for h in &hosts {
            let problems = store::problems(h);
            let drift: i64 = h.open_drift.iter().map(|(_, n)| n).sum();
            writeln!(
                out,
                "{:<24} {:<8} {:<28} {} gen {} {}{}  heard {} ago  drift {drift}{}",
                escape_bytes(store::shown(&h.host, &h.instance).as_bytes()),
                h.state,
                if problems.is_empty() {
                    "-".to_string()
                } else {
                    problems.join(",")
                },
                match &h.role {
                    Some(r) => format!("role {}", escape_bytes(r.as_bytes())),
                    None => "host baseline".into(),
                },
                h.generation.map_or("?".to_string(), |g| g.to_string()),
                h.digest
                    .as_deref()
                    .map_or("?".to_string(), |d| escape_bytes(d.as_bytes())),
                if h.published.is_some() {
                    " (published)"
                } else {
                    ""
                },
                crate::units::human_duration(now - h.last_seen_ns),
                if h.missing > 0 {
                    format!("  lost {}", h.missing)
                } else {
                    String::new()
                },
            )
            .map_err(werr)?;
        }
    }
    Ok(hosts.iter().all(|h| store::problems(h).is_empty()))
}

/// `tripseal fleet drift HOST`: the open drift of a host's monitors.
pub fn drift(store: &Path, name: &str, format: Format, out: &mut dyn Write) -> Result<bool, Error> {
    let s = Store::open(store, false)?;
    let werr = |e: std::io::Error| Error::Write {
        path: PathBuf::from("standard output"),
        source: e,
    };
    let mut all = Vec::new();
    for (host, instance) in s.resolve(name)? {
        for d in s.drift(&host, &instance)? {
            all.push((host.clone(), instance.clone(), d));
        }
    }
    let open = all.iter().filter(|(_, _, d)| d.acked_by.is_none()).count();
    if format == Format::Json {
        let v = json!({
            "drift": all.iter().map(|(h, i, d)| {
                let mut v = drift_json(d);
                v["host"] = h.as_str().into();
                v["instance"] = i.as_str().into();
                v
            }).collect::<Vec<_>>(),
        });
        writeln!(out, "{}", json_out(&v)).map_err(werr)?;
    } else {
        if all.is_empty() {
            writeln!(out, "no open drift").map_err(werr)?;
        }
        for (h, i, d) in &all {
            let changes = d
                .event
                .get("changes")
                .and_then(Value::as_object)
                .map(|c| c.keys().cloned().collect::<Vec<_>>().join(","))
                .unwrap_or_default();
            writeln!(
                out,
                "{:<24} {:<8} {:<8} {}{}  (rule {}, since {}){}",
                escape_bytes(store::shown(h, i).as_bytes()),
                d.kind,
                escape_bytes(d.severity.as_deref().unwrap_or("-").as_bytes()),
                escape_bytes(d.path.as_bytes()),
                if changes.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", escape_bytes(changes.as_bytes()))
                },
                escape_bytes(d.rule.as_deref().unwrap_or("-").as_bytes()),
                iso8601(d.first_seen_ns),
                match &d.acked_by {
                    Some(by) => format!("  acknowledged by {}", escape_bytes(by.as_bytes())),
                    None => String::new(),
                }
            )
            .map_err(werr)?;
        }
    }
    Ok(open == 0)
}

/// What `tripseal fleet ack` is told to accept.
pub struct Ack<'a> {
    pub name: &'a str,
    pub paths: &'a [String],
    pub lost: bool,
    pub rollback: bool,
    pub by: &'a str,
}

/// `tripseal fleet ack HOST PATH…`: hides drift an operator has reviewed
/// (until it changes again); `--lost` and `--rollback` accept a host's
/// lost events and its present generation.
pub fn ack(store: &Path, a: &Ack<'_>) -> Result<(), Error> {
    let mut s = Store::open(store, false)?;
    let monitors = s.resolve(a.name)?;
    s.begin()?;
    let mut unknown: Option<Vec<String>> = None;
    for (host, instance) in &monitors {
        let missing = match s.ack(host, instance, a.paths, a.by, now_ns()) {
            Ok(m) => m,
            Err(e) => {
                s.rollback();
                return Err(e);
            }
        };
        // A path is unknown only if no monitor of the host had it.
        unknown = Some(match unknown {
            None => missing,
            Some(u) => u.into_iter().filter(|p| missing.contains(p)).collect(),
        });
        if let Err(e) = s.ack_host(host, instance, a.lost, a.rollback) {
            s.rollback();
            return Err(e);
        }
    }
    let unknown = unknown.unwrap_or_default();
    if !unknown.is_empty() {
        s.rollback();
        return Err(Error::invalid(format!(
            "{} has no open drift at {}; nothing was acknowledged (`tripseal fleet drift {}` \
             lists what is open)",
            escape_bytes(a.name.as_bytes()),
            unknown
                .iter()
                .map(|p| escape_bytes(p.as_bytes()))
                .collect::<Vec<_>>()
                .join(", "),
            escape_bytes(a.name.as_bytes())
        )));
    }
    s.commit()
}
