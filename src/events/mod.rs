//! Celery-style events: the envelope, the durable outbox, and the sinks.
//!
//! Guarantees:
//! - every event carries the fields Celery's `EventDispatcher.publish` adds
//!   (`type`, `hostname` as `fim@<host>`, `timestamp`, `utcoffset` in hours
//!   west of UTC, `pid`, `clock`) plus an `id` (UUID v4) for de-duplication;
//! - events reach the outbox before any sink and leave it only when every
//!   sink they were meant for has accepted them; a sink that is down delays
//!   events, it never loses them, and they go out in order;
//! - a `path` that is not UTF-8 is carried exactly in `path_bytes`.

pub mod auth;
pub mod courier;
pub mod outbox;
pub mod sink;
pub mod url;

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::check::Comparison;
use crate::compare::{Drift, DriftKind};
use crate::error::Error;
use crate::shapes::{attributes_json, drift_json, json_path};

/// The Lamport clock of this process: Celery starts it at 1.
static CLOCK: AtomicU64 = AtomicU64::new(0);

/// Which baseline an event concerns.
#[derive(Clone, Debug)]
pub struct BaselineRef {
    /// The first 16 hex digits of the canonical digest, when known.
    pub digest: Option<String>,
    pub generation: i64,
    /// The role a role baseline serves (`None`: a host's baseline).
    pub role: Option<String>,
}

impl BaselineRef {
    /// How events name `baseline`: the digest its seal verification computed
    /// (`verified`), or computed now if the seal was skipped, and its generation.
    pub fn of(
        baseline: &crate::baseline::Baseline,
        verified: Option<[u8; 32]>,
    ) -> Result<BaselineRef, Error> {
        let digest = match verified {
            Some(d) => d,
            None => crate::seal::digest(baseline)?,
        };
        Ok(BaselineRef {
            digest: Some(crate::files::hex(&digest)[..16].to_string()),
            generation: baseline.header().generation,
            role: baseline.header().role.clone(),
        })
    }
}

/// Builds events for one host.
pub struct EventFactory {
    hostname: String,
    /// Which of the host's baselines the events concern: the baseline
    /// file's name without `.db` (template units run one per baseline).
    instance: String,
    baseline: Option<BaselineRef>,
}

/// One event: its type and its JSON body.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: String,
    pub id: String,
    pub body: String,
    /// The outbox gave it its sequence number (in the body), or it was
    /// kept before there were any: never numbered again.
    pub numbered: bool,
}

/// The fields the outbox adds to every event it keeps: a per-host sequence
/// number, in the sequence (`stream`) of that outbox, so that a consumer can
/// tell an event lost on the way from a quiet host.
pub const SEQUENCE_FIELDS: [&str; 2] = ["stream", "seq"];

/// One outbox's numbering: events are numbered from 1 within a stream,
/// which is a random id given when the numbering starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sequence {
    pub stream: String,
    /// The number the next event gets.
    pub next: u64,
}

impl Sequence {
    /// A numbering that starts now.
    pub fn start() -> Sequence {
        Sequence {
            stream: uuid_v4(),
            next: 1,
        }
    }

    /// Gives `event` the next number, written into its body; an event
    /// numbered already keeps its number.
    pub fn stamp(&mut self, event: &mut Event) {
        if event.numbered {
            return;
        }
        // The body is an object tripseal serialized, ending in '}'; the
        // factory keeps these keys out of it, so the splice adds no duplicate.
        let Some(open) = event.body.strip_suffix('}') else {
            return;
        };
        let seq = self.next;
        self.next += 1;
        let sep = if open.trim_end() == "{" { "" } else { "," };
        // The stream id comes from the outbox file: JSON-quoted, whatever
        // was planted there.
        event.body = format!(
            "{open}{sep}\"stream\":{},\"seq\":{seq}}}",
            Value::String(self.stream.clone())
        );
        event.numbered = true;
    }
}

impl Event {
    /// The AMQP routing key: the type with `-` replaced by `.`.
    pub fn routing_key(&self) -> String {
        self.kind.replace('-', ".")
    }

    /// The event's `hostname`, which brokers also carry in a message header.
    pub fn hostname(&self) -> String {
        // Only that field: building the whole body as a Value, per event
        // sent, was a third of a Redis sink's sending.
        #[derive(serde::Deserialize)]
        struct Head {
            #[serde(default)]
            hostname: Option<String>,
        }
        match serde_json::from_str::<Head>(&self.body) {
            Ok(head) => head.hostname.unwrap_or_default(),
            // Not ours as written (a key twice, a hostname not a string):
            // read as a whole, as a consumer would.
            Err(_) => serde_json::from_str::<Value>(&self.body)
                .ok()
                .and_then(|v| v.get("hostname")?.as_str().map(str::to_string))
                .unwrap_or_default(),
        }
    }
}

impl EventFactory {
    /// Events of `host` about the baseline at `db` (`baseline`, once known).
    pub fn new(host: &str, db: &Path, baseline: Option<BaselineRef>) -> EventFactory {
        EventFactory {
            hostname: format!("fim@{host}"),
            instance: instance_name(db),
            baseline,
        }
    }

    /// The same host's events, naming no baseline.
    pub fn unnamed(&self) -> EventFactory {
        EventFactory {
            hostname: self.hostname.clone(),
            instance: self.instance.clone(),
            baseline: None,
        }
    }

    /// An event of `kind` with `fields` added to the envelope.
    pub fn event(&self, kind: &str, fields: Map<String, Value>) -> Event {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let id = uuid_v4();
        // The event's own fields first: the envelope written over them wins,
        // so no field of a record can pose as `type`, `hostname` or `clock`.
        let mut body = fields;
        for key in SEQUENCE_FIELDS {
            body.remove(key);
        }
        body.insert("type".into(), kind.into());
        body.insert("hostname".into(), self.hostname.clone().into());
        body.insert("timestamp".into(), json!(now));
        body.insert("utcoffset".into(), json!(utcoffset_hours_west()));
        body.insert("pid".into(), std::process::id().into());
        body.insert(
            "clock".into(),
            (CLOCK.fetch_add(1, Ordering::Relaxed) + 1).into(),
        );
        body.insert("id".into(), id.clone().into());
        body.insert("instance".into(), self.instance.clone().into());
        if let Some(b) = &self.baseline {
            let mut named = json!({"digest": b.digest, "generation": b.generation});
            if let Some(role) = &b.role {
                named["role"] = role.clone().into();
            }
            body.insert("baseline".into(), named);
        }
        Event {
            kind: kind.to_string(),
            id,
            body: Value::Object(body).to_string(),
            numbered: false,
        }
    }

    /// The event for one drift record.
    pub fn drift(&self, d: &Drift) -> Event {
        self.drift_with(d, Map::new())
    }

    /// A drift event with more fields (the daemon's `actor`).
    pub fn drift_with(&self, d: &Drift, extra: Map<String, Value>) -> Event {
        let Value::Object(mut fields) = drift_json(d) else {
            unreachable!("drift_json returns an object")
        };
        fields.extend(extra);
        fields.remove("kind");
        // `type` is the event's; the entry's type travels as `file_type`.
        if let Some(t) = fields.remove("type") {
            fields.insert("file_type".into(), t);
        }
        let kind = match d.kind {
            DriftKind::Added => "fim-file-added",
            DriftKind::Removed => "fim-file-removed",
            DriftKind::Changed => "fim-file-modified",
            DriftKind::Error => "fim-file-error",
        };
        if let Some(problem) = fields.remove("problem") {
            fields.insert("error".into(), problem);
        }
        if matches!(d.kind, DriftKind::Added | DriftKind::Removed) {
            fields.insert("attributes".into(), attributes_json(&d.entry));
        }
        self.event(kind, fields)
    }

    /// The finding event of drift record `d` (`fim-python-hook`,
    /// `fim-pyc-mismatch`), when it has one: at least `high`, whatever the
    /// rule says, since code runs from it.
    pub fn finding(&self, d: &Drift) -> Option<Event> {
        let f = d.finding.as_ref()?;
        let mut fields = Map::new();
        crate::shapes::json_path(&mut fields, "path", d.path.as_os_str().as_encoded_bytes());
        fields.insert("rule".into(), d.rule.as_str().into());
        fields.insert(
            "severity".into(),
            d.severity.max(crate::rules::Severity::High).name().into(),
        );
        fields.insert("drift".into(), d.kind.name().into());
        fields.insert("reason".into(), f.reason.into());
        fields.insert("detail".into(), f.detail.as_str().into());
        Some(self.event(f.kind.event(), fields))
    }

    /// `fim-cert-expired` or `fim-cert-expiring` for certificate `c` of the
    /// file `path`, as it stands at `now` (seconds).
    pub fn certificate(
        &self,
        path: &std::path::Path,
        c: &crate::certs::Cert,
        status: crate::certs::Status,
        now: i64,
    ) -> Event {
        let Value::Object(mut fields) = c.json(now, 0) else {
            unreachable!("a certificate is an object")
        };
        fields.remove("status");
        crate::shapes::json_path(&mut fields, "path", path.as_os_str().as_encoded_bytes());
        fields.insert("expires_in".into(), json!(c.not_after - now));
        let (kind, severity) = match status {
            crate::certs::Status::Expired => ("fim-cert-expired", "high"),
            _ => ("fim-cert-expiring", "medium"),
        };
        fields.insert("severity".into(), severity.into());
        self.event(kind, fields)
    }

    /// `fim-celery-config`: a finding of the audit of the Celery
    /// configuration (see [`crate::audit`]).
    pub fn audit_finding(&self, f: &crate::audit::Finding) -> Event {
        let mut fields = Map::new();
        crate::shapes::json_path(&mut fields, "path", f.file.as_os_str().as_encoded_bytes());
        fields.insert("line".into(), json!(f.line));
        fields.insert("check".into(), f.check.into());
        fields.insert("detail".into(), f.detail.as_str().into());
        fields.insert("remedy".into(), f.remedy.into());
        fields.insert("severity".into(), "high".into());
        self.event("fim-celery-config", fields)
    }

    /// `fim-baseline-tampered`: the seal was refused.
    pub fn tampered(&self, baseline_path: &[u8], reason: &str, detail: &str) -> Event {
        self.problem(
            "fim-baseline-tampered",
            ("baseline_path", baseline_path),
            reason,
            detail,
        )
    }

    /// `fim-outbox-tampered`: the daemon's event outbox was removed,
    /// replaced or had its journal planted; what waited in it was kept.
    pub fn outbox_tampered(&self, outbox_path: &[u8], reason: &str, detail: &str) -> Event {
        self.problem(
            "fim-outbox-tampered",
            ("outbox_path", outbox_path),
            reason,
            detail,
        )
    }

    /// An event of `kind` about the file `path` (under its key): what
    /// happened (`reason`, a token) and the sentence that says it.
    fn problem(&self, kind: &str, path: (&str, &[u8]), reason: &str, detail: &str) -> Event {
        let mut fields = Map::new();
        fields.insert("reason".into(), reason.into());
        fields.insert("detail".into(), detail.into());
        json_path(&mut fields, path.0, path.1);
        self.event(kind, fields)
    }

    /// `fim-baseline-expiring`: the seal stops being accepted at
    /// `expires_ns`; time to sign the next generation.
    pub fn expiring(&self, baseline_path: &[u8], expires_ns: i64, now_ns: i64) -> Event {
        let mut fields = Map::new();
        fields.insert("expires".into(), crate::units::iso8601(expires_ns).into());
        fields.insert(
            "expires_in".into(),
            json!((expires_ns - now_ns).max(0) as f64 / 1e9),
        );
        json_path(&mut fields, "baseline_path", baseline_path);
        self.event("fim-baseline-expiring", fields)
    }
}

impl EventFactory {
    pub fn scan_started(&self, scan: &str) -> Event {
        let mut fields = Map::new();
        fields.insert("scan".into(), scan.into());
        self.event("fim-scan-started", fields)
    }

    /// `fim-scan-finished` with the counts of a comparison.
    pub fn scan_finished(&self, scan: &str, c: &Comparison) -> Event {
        let mut fields = Map::new();
        fields.insert("scan".into(), scan.into());
        crate::shapes::insert_counts(&mut fields, &c.counts);
        if let Some(s) = &c.scan {
            fields.insert("entries_scanned".into(), s.entries.into());
            fields.insert("duration".into(), json!(s.elapsed.as_secs_f64()));
        }
        self.event("fim-scan-finished", fields)
    }

    /// `fim-file-restored`: a path that drifted is back to its baseline state.
    pub fn restored(
        &self,
        path: &std::path::Path,
        rule: &str,
        severity: &str,
        extra: Map<String, Value>,
    ) -> Event {
        let mut fields = extra;
        json_path(&mut fields, "path", path.as_os_str().as_encoded_bytes());
        fields.insert("rule".into(), rule.into());
        fields.insert("severity".into(), severity.into());
        self.event("fim-file-restored", fields)
    }

    /// `fim-watch-overflow`: changes may have been missed; a rescan follows.
    pub fn overflow(&self, reason: &str) -> Event {
        let mut fields = Map::new();
        fields.insert("reason".into(), reason.into());
        self.event("fim-watch-overflow", fields)
    }

    /// `fim-online`, `fim-heartbeat`, `fim-offline`.
    pub fn liveness(
        &self,
        kind: &str,
        backend: &str,
        freq: f64,
        watched: usize,
        pending: u64,
    ) -> Event {
        let mut fields = Map::new();
        fields.insert("freq".into(), json!(freq));
        fields.insert("backend".into(), backend.into());
        fields.insert("version".into(), env!("CARGO_PKG_VERSION").into());
        fields.insert("watched_directories".into(), watched.into());
        fields.insert("pending".into(), pending.into());
        self.event(kind, fields)
    }
}

/// A sink as the user gave it (`url`, which may hold a password) and as the
/// outbox and every message name it (`key`, with the password hidden).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    pub url: String,
    pub key: String,
}

impl SinkSpec {
    /// Checks that `url` names a sink this tripseal can open.
    pub fn new(url: &str) -> Result<SinkSpec, Error> {
        sink::open(url)?;
        Ok(SinkSpec {
            url: url.to_string(),
            key: url::sink_key(url),
        })
    }

    /// The sink for events that wait under `key` in the outbox: one of
    /// `known` (from `--emit` or the configuration) with that key, or the key
    /// itself if it hides no password.
    pub fn for_waiting(key: &str, known: &[SinkSpec]) -> Result<SinkSpec, Error> {
        if let Some(s) = known.iter().find(|s| s.key == key) {
            return Ok(s.clone());
        }
        if url::is_redacted(key) {
            return Err(Error::invalid(format!(
                "events wait for {}, whose password tripseal does not keep; give the sink's \
                 URL with its password: tripseal flush --emit URL (or list it under \
                 [events] emit in the configuration)",
                crate::escape::escape_bytes(key.as_bytes())
            )));
        }
        SinkSpec::new(key)
    }
}

/// How events name the baseline at `db`: its file name without `.db`.
pub fn instance_name(db: &Path) -> String {
    let name = db.file_name().unwrap_or(db.as_os_str()).to_string_lossy();
    name.strip_suffix(".db").unwrap_or(&name).to_string()
}

/// Hours west of UTC, as Python's `time.timezone / 3600` (or `altzone` in DST).
pub fn utcoffset_hours_west() -> f64 {
    // SAFETY: time(NULL) and localtime_r into a zeroed struct we own. No
    // safe API: the time crate refuses the local offset in a process with
    // threads, because reading TZ races with setenv; tripseal never sets it.
    unsafe {
        let t = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() {
            return 0.0;
        }
        -(tm.tm_gmtoff as f64) / 3600.0
    }
}

/// A random (version 4) UUID in its usual text form. Without randomness
/// from the kernel (which does not happen once it has booted), an id still
/// unique to this process: the time, the pid and a count, hashed.
pub fn uuid_v4() -> String {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        let mut h = blake3::Hasher::new();
        h.update(&crate::units::now_ns().to_le_bytes());
        h.update(&std::process::id().to_le_bytes());
        h.update(&COUNT.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        bytes.copy_from_slice(&h.finalize().as_bytes()[..16]);
    }
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_celerys_fields() {
        let f = EventFactory::new(
            "web1",
            Path::new("/var/lib/tripseal/app.db"),
            Some(BaselineRef {
                digest: Some("abcd".into()),
                generation: 3,
                role: Some("celery-app".into()),
            }),
        );
        let a = f.event("fim-scan-started", Map::new());
        let b = f.event("fim-scan-started", Map::new());
        let va: Value = serde_json::from_str(&a.body).unwrap();
        let vb: Value = serde_json::from_str(&b.body).unwrap();
        for key in [
            "type",
            "hostname",
            "timestamp",
            "utcoffset",
            "pid",
            "clock",
            "id",
        ] {
            assert!(va.get(key).is_some(), "{key} missing: {va}");
        }
        assert_eq!(va["hostname"], "fim@web1");
        assert!(va["timestamp"].is_f64() && va["utcoffset"].is_f64());
        assert!(vb["clock"].as_u64() > va["clock"].as_u64());
        assert_ne!(va["id"], vb["id"]);
        assert_eq!(va["baseline"]["generation"], 3);
        assert_eq!(va["baseline"]["role"], "celery-app");
        assert_eq!(va["instance"], "app");
        assert_eq!(a.routing_key(), "fim.scan.started");
    }

    #[test]
    fn own_fields_cannot_pose_as_envelope_fields() {
        let f = EventFactory::new("web1", Path::new("b.db"), None);
        let mut own = Map::new();
        own.insert("seq".into(), 7.into());
        own.insert("type".into(), "file".into());
        own.insert("hostname".into(), "worker@evil".into());
        own.insert("path".into(), "/x".into());
        let v: Value = serde_json::from_str(&f.event("fim-file-added", own).body).unwrap();
        assert_eq!(v["type"], "fim-file-added");
        assert_eq!(v["hostname"], "fim@web1");
        assert_eq!(v["path"], "/x");
        assert!(v.get("seq").is_none());
    }

    #[test]
    fn stamps_number_events_in_order_once() {
        let f = EventFactory::new("web1", Path::new("b.db"), None);
        let mut seq = Sequence::start();
        let mut a = f.event("fim-scan-started", Map::new());
        let mut b = f.event("fim-scan-started", Map::new());
        seq.stamp(&mut a);
        seq.stamp(&mut b);
        seq.stamp(&mut a);
        let va: Value = serde_json::from_str(&a.body).unwrap();
        let vb: Value = serde_json::from_str(&b.body).unwrap();
        assert_eq!((va["seq"].as_u64(), vb["seq"].as_u64()), (Some(1), Some(2)));
        assert_eq!(va["stream"], seq.stream.as_str());
        assert_eq!(seq.next, 3);
        let mut empty = Event {
            kind: "fim-test".into(),
            id: "x".into(),
            body: "{}".into(),
            numbered: false,
        };
        seq.stamp(&mut empty);
        let v: Value = serde_json::from_str(&empty.body).unwrap();
        assert_eq!(v["seq"], 3);
    }

    #[test]
    fn uuids_are_version_4() {
        let u = uuid_v4();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert!("89ab".contains(&u[19..20]));
    }
}
