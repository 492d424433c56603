//! The JSON shapes of tripseal's records: a baseline's header, an entry, a
//! drift record, the drift counts. Reports and events both build on these,
//! so a field means the same wherever it appears.
//!
//! Paths are carried exactly: a string when they are UTF-8, and otherwise
//! `\xNN`-escaped text plus `<key>_bytes` (standard base64 of the raw bytes).

use std::os::unix::ffi::OsStrExt;

use base64::Engine;
use serde_json::{Map, Value, json};

use crate::attrs::Attr;
use crate::baseline::{Baseline, Header};
use crate::compare::{Drift, DriftKind, Value as CValue};
use crate::escape::escape_bytes;
use crate::files::hex;
use crate::scan::Entry;
use crate::units::{iso8601, iso8601_ns};

/// Adds `path` (and `path_bytes` when not UTF-8) under `key` to a JSON object.
pub fn json_path(obj: &mut Map<String, Value>, key: &str, bytes: &[u8]) {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            obj.insert(key.into(), Value::String(s.into()));
        }
        Err(_) => {
            obj.insert(key.into(), Value::String(escape_bytes(bytes)));
            obj.insert(
                format!("{key}_bytes"),
                Value::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            );
        }
    }
}

pub fn header_json(baseline: &Baseline, counts: (u64, u64)) -> Value {
    let h: &Header = baseline.header();
    let mut obj = Map::new();
    json_path(&mut obj, "baseline", baseline.path().as_os_str().as_bytes());
    obj.insert(
        "header".into(),
        json!({
            "schema": h.schema,
            "host": h.host,
            "role": h.role,
            "created": iso8601(h.created_ns),
            "created_ns": h.created_ns,
            "generation": h.generation,
            "tool_version": h.tool_version,
            "rules_digest": h.rules_digest,
            "rules_origin": h.rules_origin,
            "rules_vars": h.rules_vars,
            "entries": counts.0,
            "problems": counts.1,
        }),
    );
    obj.insert(
        "rules".into(),
        baseline
            .rules()
            .iter()
            .map(|r| {
                json!({
                    "name": r.name,
                    "severity": r.severity.name(),
                    "checks": r.attrs.iter().map(Attr::name).collect::<Vec<_>>(),
                })
            })
            .collect(),
    );
    Value::Object(obj)
}

/// The JSON object for one stored entry, governed by rule `rule`.
pub fn entry_json(e: &Entry, rule: &str) -> Value {
    let mut obj = Map::new();
    json_path(&mut obj, "path", e.path.as_os_str().as_bytes());
    obj.insert("rule".into(), rule.into());
    obj.insert(
        "checks".into(),
        e.attrs.iter().map(Attr::name).collect::<Vec<_>>().into(),
    );
    if let Some(m) = e.meta {
        let a = e.attrs;
        obj.insert("type".into(), m.kind.name().into());
        obj.insert("size".into(), m.size.into());
        // A role baseline records no host's stat fields (they read as 0),
        // and the mtime only where a rule checks it.
        if m.mtime_ns != 0 || a.contains(Attr::Mtime) {
            obj.insert("mtime".into(), iso8601(m.mtime_ns).into());
            obj.insert("mtime_ns".into(), m.mtime_ns.into());
        }
        if m.inode != 0 {
            obj.insert("ctime_ns".into(), m.ctime_ns.into());
            obj.insert("inode".into(), m.inode.into());
            obj.insert("dev".into(), m.dev.into());
        }
        if a.contains(Attr::Mode) {
            obj.insert("mode".into(), format!("{:04o}", m.mode).into());
        }
        if a.contains(Attr::Uid) || a.contains(Attr::Owner) {
            obj.insert("uid".into(), m.uid.into());
        }
        if a.contains(Attr::Gid) || a.contains(Attr::Group) {
            obj.insert("gid".into(), m.gid.into());
        }
        if a.contains(Attr::Owner) {
            obj.insert("owner".into(), e.owner.clone().into());
        }
        if a.contains(Attr::Group) {
            obj.insert("group".into(), e.group.clone().into());
        }
        if a.contains(Attr::Nlink) {
            obj.insert("nlink".into(), m.nlink.into());
        }
    }
    if let Some(link) = &e.link {
        json_path(&mut obj, "link", link);
    }
    if let Some(h) = &e.hash {
        obj.insert("hash".into(), hex(h).into());
    }
    if let Some(x) = &e.xattrs {
        obj.insert("xattrs".into(), xattrs_json(x));
    }
    if let Some(p) = &e.problem {
        obj.insert("problem".into(), problem_json(p));
    }
    Value::Object(obj)
}

/// Extended attributes (as `scan::encode_xattrs` stores them): each name,
/// escaped, with its value in standard base64.
fn xattrs_json(encoded: &[u8]) -> Value {
    let b64 = &base64::engine::general_purpose::STANDARD;
    Value::Object(
        crate::scan::decode_xattrs(encoded)
            .unwrap_or_default()
            .iter()
            .map(|(n, v)| (escape_bytes(n), Value::String(b64.encode(v))))
            .collect(),
    )
}

fn problem_json(p: &crate::scan::Problem) -> Value {
    json!({"kind": p.kind(), "reason": p.reason()})
}

pub fn value_json(v: &CValue) -> Value {
    let b64 = &base64::engine::general_purpose::STANDARD;
    match v {
        CValue::Absent => Value::Null,
        CValue::Kind(k) => k.name().into(),
        CValue::Mode(m) => format!("{m:04o}").into(),
        CValue::Int(i) => (*i).into(),
        CValue::Time(ns) => iso8601_ns(*ns).into(),
        CValue::Link(bytes) => match std::str::from_utf8(bytes) {
            Ok(s) => s.into(),
            Err(_) => json!({"escaped": escape_bytes(bytes), "bytes": b64.encode(bytes)}),
        },
        CValue::Hash(h) => hex(h).into(),
        CValue::Xattrs(x) => xattrs_json(x),
        CValue::Growing { size, hash } => json!({"size": size, "hash": hash.map(|h| hex(&h))}),
        CValue::Account { name, id } => json!({"name": name, "id": id}),
    }
}

/// The counts of a comparison and its exit code, as the JSON report and
/// `fim-scan-finished` carry them: `added`, `removed`, `changed`, `errors`,
/// `exit_code`.
pub fn insert_counts(obj: &mut Map<String, Value>, counts: &crate::compare::DriftCounts) {
    for kind in DriftKind::ALL {
        let key = if kind == DriftKind::Error {
            "errors"
        } else {
            kind.name()
        };
        obj.insert(key.into(), counts.of(kind).into());
    }
    obj.insert("exit_code".into(), counts.exit_bits().into());
}

/// The JSON object of one drift record.
pub fn drift_json(d: &Drift) -> Value {
    let mut obj = Map::new();
    obj.insert("kind".into(), d.kind.name().into());
    json_path(&mut obj, "path", d.path.as_os_str().as_bytes());
    obj.insert("rule".into(), d.rule.clone().into());
    obj.insert("severity".into(), d.severity.name().into());
    if let Some(m) = d.entry.meta {
        obj.insert("type".into(), m.kind.name().into());
    }
    if !d.changes.is_empty() {
        let changes: Map<String, Value> = d
            .changes
            .iter()
            .map(|c| {
                let mut v = json!({"old": value_json(&c.old), "new": value_json(&c.new)});
                if let Some(note) = c.note {
                    v["note"] = note.into();
                }
                (c.attr.name().to_string(), v)
            })
            .collect();
        obj.insert("changes".into(), Value::Object(changes));
    }
    if let Some(p) = &d.problem {
        obj.insert("problem".into(), problem_json(p));
    }
    if let Some(o) = &d.origin {
        obj.insert("origin".into(), origin_json(o));
    }
    if let Some(f) = &d.finding {
        obj.insert("finding".into(), finding_json(f));
    }
    Value::Object(obj)
}

/// A Python finding on a drift record: the event it raises, why, and the
/// sentence that says it.
pub fn finding_json(f: &crate::python::Finding) -> Value {
    json!({"type": f.kind.event(), "reason": f.reason, "detail": f.detail})
}

/// Where a drifted path comes from: `manager`, `package`, `version` (all
/// null when not packaged), `verdict`, `evidence` (null when not
/// packaged) and, where there is one, `note`.
pub fn origin_json(o: &crate::origin::Origin) -> Value {
    let p = o.package.as_ref();
    let mut v = json!({
        "manager": p.map(|p| p.manager.name()),
        "package": p.map(|p| p.name.as_str()),
        "version": p.map(|p| p.version.as_str()),
        "verdict": o.verdict.name(),
        "evidence": o.evidence.map(crate::origin::Evidence::name),
    });
    if let Some(n) = &o.note {
        v["note"] = n.as_str().into();
    }
    v
}

/// An entry's recorded attributes, as `show --format json` has them.
pub fn attributes_json(e: &Entry) -> Value {
    let mut v = entry_json(e, "");
    if let Value::Object(m) = &mut v {
        for key in ["path", "path_bytes", "rule", "checks"] {
            m.remove(key);
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths_are_exact() {
        let mut m = Map::new();
        json_path(&mut m, "path", b"/ok/\xc3\xa9");
        assert_eq!(m["path"], "/ok/é");
        assert!(!m.contains_key("path_bytes"));
        let mut m = Map::new();
        json_path(&mut m, "path", b"/bad/\xff\n");
        assert_eq!(m["path"], "/bad/\\xff\\x0a");
        assert_eq!(m["path_bytes"], "L2JhZC//Cg==");
    }
}
