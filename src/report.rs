//! Rendering for people and machines: `show`, the `init` summary, `rules explain`.
//!
//! Guarantees: every untrusted name (paths, link targets) reaches a terminal
//! only through [`escape_bytes`]; JSON carries paths exactly, as a string when
//! they are UTF-8 and otherwise as `\xNN`-escaped text plus `path_bytes`
//! (standard base64 of the raw bytes).

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::attrs::{Attr, AttrSet};
use crate::baseline::{Baseline, RuleInfo};
use crate::check::Comparison;
use crate::compare::{Drift, DriftKind, Value as CValue};
use crate::error::Error;
use crate::escape::{JsonForTerminal, escape_bytes, escape_path};
use crate::files::hex;
use crate::origin::Evidence;
use crate::pipeline::ScanSummary;
use crate::rules::Rules;
use crate::scan::{Entry, FileKind};
use crate::seal::{TrustStore, Verification};
use crate::shapes::{drift_json, entry_json, header_json, insert_counts, json_path};
use crate::units::{human_bytes, iso8601, iso8601_ns};

/// Output format of `show` (and later reports).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Human,
    Json,
}

/// A failed write to standard output.
pub fn out_err(e: std::io::Error) -> Error {
    Error::Write {
        path: "<standard output>".into(),
        source: e,
    }
}

/// `show` says a certificate is expiring within this many seconds.
const SHOW_CERT_WINDOW: i64 = 30 * 86_400;

/// `tripseal show`: the header, then the entries at or below `prefix`;
/// a certificate file's certificates when it is still what the entry
/// records.
pub fn show(
    out: &mut dyn Write,
    baseline: &Baseline,
    prefix: Option<&Path>,
    format: Format,
) -> Result<(), Error> {
    let counts = baseline.counts()?;
    match format {
        Format::Json => show_json(out, baseline, prefix, counts),
        Format::Human => show_human(out, baseline, prefix, counts),
    }
}

fn show_json(
    out: &mut dyn Write,
    baseline: &Baseline,
    prefix: Option<&Path>,
    counts: (u64, u64),
) -> Result<(), Error> {
    let mut safe = JsonForTerminal::new(out);
    let out: &mut dyn Write = &mut safe;
    // Streamed: the entries array is written as rows arrive, never held whole.
    let head = serde_json::to_string(&header_json(baseline, counts)).expect("json");
    let head = head.strip_suffix('}').expect("object");
    write!(out, "{head},\"entries\":[").map_err(out_err)?;
    let mut first = true;
    baseline.for_each_entry(prefix, |e| {
        if !first {
            out.write_all(b",").map_err(out_err)?;
        }
        first = false;
        let rule = &baseline.rules()[e.rule].name;
        let mut v = entry_json(&e, rule);
        if let Some(certs) = crate::certs::of_entry(&e) {
            let now = crate::units::now_ns() / 1_000_000_000;
            v["certificates"] = certs
                .iter()
                .map(|c| c.json(now, SHOW_CERT_WINDOW))
                .collect::<Vec<_>>()
                .into();
        }
        serde_json::to_writer(&mut *out, &v).map_err(|e| out_err(e.into()))
    })?;
    out.write_all(b"]}\n").map_err(out_err)?;
    out.flush().map_err(out_err)
}

fn show_human(
    out: &mut dyn Write,
    baseline: &Baseline,
    prefix: Option<&Path>,
    counts: (u64, u64),
) -> Result<(), Error> {
    let h = baseline.header();
    let mut head = String::new();
    let mut line = |k: &str, v: String| head.push_str(&format!("{k:<11} {v}\n"));
    line("baseline", escape_path(baseline.path()));
    match &h.role {
        Some(role) => line(
            "role",
            format!(
                "{} (one baseline for every host of the role: owner and group compared by \
                 name; inode, dev, ctime and nlink never)",
                escape_bytes(role.as_bytes())
            ),
        ),
        None => line("host", escape_bytes(h.host.as_bytes())),
    }
    line("created", iso8601(h.created_ns));
    line("generation", h.generation.to_string());
    line(
        "tool",
        format!("tripseal {}", escape_bytes(h.tool_version.as_bytes())),
    );
    line(
        "rules",
        format!(
            "{} from {}",
            escape_bytes(h.rules_digest.as_bytes()),
            escape_bytes(h.rules_origin.as_bytes())
        ),
    );
    for (k, v) in &h.rules_vars {
        line("  --var", escape_bytes(format!("{k}={v}").as_bytes()));
    }
    line(
        "entries",
        format!("{} ({} with problems)", counts.0, counts.1),
    );
    writeln!(out, "{head}").map_err(out_err)?;
    writeln!(
        out,
        "{:<7} {:>5} {:>11} {:>12} {:<20} {:<18} {:<20} PATH",
        "TYPE", "MODE", "OWNER", "SIZE", "MTIME", "CONTENT", "RULE"
    )
    .map_err(out_err)?;
    baseline.for_each_entry(prefix, |e| {
        writeln!(out, "{}", human_entry_line(&e, baseline.rules())).map_err(out_err)?;
        if let Some(p) = &e.problem {
            writeln!(
                out,
                "        ! {}: {}",
                p.kind(),
                escape_bytes(p.reason().as_bytes())
            )
            .map_err(out_err)?;
        }
        let now = crate::units::now_ns() / 1_000_000_000;
        for c in crate::certs::of_entry(&e).unwrap_or_default() {
            writeln!(
                out,
                "        cert {}  issuer {}  serial {}  {} {}  not after {} [{}]  sha256 {}",
                escape_bytes(c.subject.as_bytes()),
                escape_bytes(c.issuer.as_bytes()),
                c.serial,
                c.key_type,
                c.key_bits.map_or("?".to_string(), |b| b.to_string()),
                iso8601(c.not_after.saturating_mul(1_000_000_000)),
                c.status(now, SHOW_CERT_WINDOW).name(),
                c.sha256
            )
            .map_err(out_err)?;
        }
        Ok(())
    })?;
    out.flush().map_err(out_err)
}

fn human_entry_line(e: &Entry, rules: &[RuleInfo]) -> String {
    let a: AttrSet = e.attrs;
    let dash = || "-".to_string();
    let (kind, mode, owner, size, mtime) = match e.meta {
        None => ("?".to_string(), dash(), dash(), dash(), dash()),
        Some(m) => (
            m.kind.name().to_string(),
            if a.contains(Attr::Mode) {
                format!("{:04o}", m.mode)
            } else {
                dash()
            },
            {
                // A role's rules check names; a host's, numbers.
                let part = |name: Attr, named: &Option<String>, id: Attr, n: u32| {
                    if a.contains(name) {
                        Some(
                            named
                                .as_deref()
                                .map_or_else(|| n.to_string(), |s| escape_bytes(s.as_bytes())),
                        )
                    } else {
                        a.contains(id).then(|| n.to_string())
                    }
                };
                match (
                    part(Attr::Owner, &e.owner, Attr::Uid, m.uid),
                    part(Attr::Group, &e.group, Attr::Gid, m.gid),
                ) {
                    (None, None) => dash(),
                    (u, g) => format!("{}:{}", u.unwrap_or_else(dash), g.unwrap_or_else(dash)),
                }
            },
            m.size.to_string(),
            if m.mtime_ns == 0 && !a.contains(Attr::Mtime) {
                dash() // a role baseline that does not check it
            } else {
                iso8601(m.mtime_ns)
            },
        ),
    };
    let content = match (&e.hash, &e.link) {
        (Some(h), _) => format!("b3:{}", &hex(h)[..16]),
        (None, Some(l)) => format!("-> {}", escape_bytes(l)),
        (None, None) if e.meta.is_some_and(|m| m.kind == FileKind::File) && a.needs_content() => {
            "(no hash)".to_string()
        }
        _ => dash(),
    };
    format!(
        "{kind:<7} {mode:>5} {owner:>11} {size:>12} {mtime:<20} {content:<18} {:<20} {}",
        escape_bytes(rules[e.rule].name.as_bytes()),
        escape_path(&e.path)
    )
}

/// The one summary line of `init` (for cron as much as for people).
pub fn init_summary(out: &mut dyn Write, s: &ScanSummary) -> Result<(), Error> {
    writeln!(
        out,
        "tripseal: baseline {} written: {} entries ({} files, {} dirs, {} symlinks, {} other), \
         {} hashed, {} with problems, {:.2} s",
        escape_path(&s.db),
        s.entries,
        s.files,
        s.dirs,
        s.symlinks,
        s.other,
        human_bytes(s.bytes_hashed),
        s.problems,
        s.elapsed.as_secs_f64()
    )
    .map_err(out_err)
}

/// Lists entries with problems (at most the ones the summary kept).
pub fn problems(out: &mut dyn Write, s: &ScanSummary) -> Result<(), Error> {
    for (path, p) in &s.problem_samples {
        writeln!(
            out,
            "tripseal: {}: {}: {}",
            p.kind(),
            escape_path(path),
            escape_bytes(p.reason().as_bytes())
        )
        .map_err(out_err)?;
    }
    let more = s.problems - s.problem_samples.len() as u64;
    if more > 0 {
        writeln!(
            out,
            "tripseal: and {more} more entries with problems; the report with --format json lists them all"
        )
        .map_err(out_err)?;
    }
    Ok(())
}

/// `tripseal rules check`: what the file holds.
pub fn rules_ok(out: &mut dyn Write, rules: &Rules) -> Result<(), Error> {
    writeln!(
        out,
        "{}: OK: {} rules, {} patterns, {} walk roots",
        escape_bytes(rules.source.name.as_bytes()),
        rules.rules.len(),
        rules.patterns.len(),
        rules.walk_roots().len()
    )
    .map_err(out_err)?;
    if let Some(role) = &rules.role {
        writeln!(
            out,
            "  role {}: one baseline for every host of the role; owner and group by name; \
             inode, dev, ctime and nlink never compared",
            escape_bytes(role.as_bytes())
        )
        .map_err(out_err)?;
    }
    for r in &rules.rules {
        writeln!(
            out,
            "  {:<24} {:<8} {}{}",
            escape_bytes(r.name.as_bytes()),
            r.severity.name(),
            r.attrs,
            if r.host_only.is_empty() {
                String::new()
            } else {
                format!(" (not compared in a role: {})", r.host_only)
            }
        )
        .map_err(out_err)?;
    }
    for root in rules.walk_roots() {
        writeln!(
            out,
            "  walks {}{}",
            escape_path(&root.path),
            if root.cross_filesystems {
                " (crossing file systems)"
            } else {
                ""
            }
        )
        .map_err(out_err)?;
    }
    Ok(())
}

/// `tripseal rules explain`: the decision for one path, and why.
pub fn explain(out: &mut dyn Write, rules: &Rules, path: &Path) -> Result<(), Error> {
    let e = rules.explain(path);
    let shown = escape_path(path);
    let pattern_line = |i: usize| {
        let p = &rules.patterns[i];
        format!(
            "rule \"{}\" by pattern {} (literal prefix {} bytes, {} literal characters)",
            escape_bytes(rules.rules[p.rule].name.as_bytes()),
            escape_bytes(p.glob.as_bytes()),
            p.literal_prefix,
            p.literal_chars
        )
    };
    match e.winner {
        Some(sel) => {
            let r = &rules.rules[sel.rule];
            writeln!(
                out,
                "{shown}: governed by rule \"{}\"",
                escape_bytes(r.name.as_bytes())
            )
            .map_err(out_err)?;
            writeln!(out, "  severity {}; checks {}", r.severity.name(), r.attrs)
                .map_err(out_err)?;
            if let Some(role) = &rules.role {
                let names = r.attrs.contains(Attr::Owner) || r.attrs.contains(Attr::Group);
                writeln!(
                    out,
                    "  role \"{}\": one baseline for every host of the role{}{}",
                    escape_bytes(role.as_bytes()),
                    if names {
                        "; owner and group compared by name"
                    } else {
                        ""
                    },
                    if r.host_only.is_empty() {
                        String::new()
                    } else {
                        format!("; not compared, as each host has its own: {}", r.host_only)
                    }
                )
                .map_err(out_err)?;
            }
            writeln!(out, "  matched by {}", pattern_line(sel.pattern)).map_err(out_err)?;
            for &i in e.matched.iter().skip(1) {
                writeln!(out, "  also matched, less specific: {}", pattern_line(i))
                    .map_err(out_err)?;
            }
        }
        None => writeln!(out, "{shown}: not selected by any rule").map_err(out_err)?,
    }
    for (i, x) in &e.excluded {
        writeln!(
            out,
            "  excluded from {} by exclude {}",
            pattern_line(*i),
            escape_bytes(x.as_bytes())
        )
        .map_err(out_err)?;
    }
    if e.winner.is_none() && e.excluded.is_empty() {
        writeln!(
            out,
            "  no pattern of {} matches it",
            escape_bytes(rules.source.name.as_bytes())
        )
        .map_err(out_err)?;
    }
    Ok(())
}

/// Output of a drift report (`check`, `update`, `diff`).
pub struct DriftReport<'a> {
    /// "check", "update" or "diff".
    pub command: &'a str,
    pub comparison: &'a Comparison,
    /// Print the summary even when nothing drifted.
    pub verbose: bool,
    /// `update --only-packaged`: the evidence asked for, and each drift
    /// record it did not accept, with why.
    pub left_out: Option<(Evidence, &'a [(Drift, String)])>,
    /// Certificates that expire within this many seconds are said.
    pub cert_window: i64,
}

fn summary_json(r: &DriftReport<'_>) -> Value {
    let c = r.comparison;
    let mut obj = Map::new();
    obj.insert("command".into(), r.command.into());
    json_path(&mut obj, "baseline", c.old.path().as_os_str().as_bytes());
    obj.insert("generation".into(), c.old.header().generation.into());
    if r.command == "diff" {
        json_path(
            &mut obj,
            "new_baseline",
            c.new.path().as_os_str().as_bytes(),
        );
    }
    if r.command != "check" {
        obj.insert("new_generation".into(), c.new.header().generation.into());
    }
    insert_counts(&mut obj, &c.counts);
    if let Some(scan) = &c.scan {
        obj.insert("entries_scanned".into(), scan.entries.into());
        obj.insert(
            "duration_s".into(),
            json!((scan.elapsed.as_secs_f64() * 1000.0).round() / 1000.0),
        );
        obj.insert("fast".into(), c.fast.into());
        obj.insert("trusted_unchanged".into(), scan.trusted.into());
        obj.insert("reread".into(), scan.reread.into());
    }
    Value::Object(obj)
}

fn value_human(v: &CValue) -> String {
    match v {
        CValue::Absent => "(none)".into(),
        CValue::Kind(k) => k.name().into(),
        CValue::Mode(m) => format!("{m:04o}"),
        CValue::Int(i) => i.to_string(),
        CValue::Time(ns) => iso8601_ns(*ns),
        CValue::Link(bytes) => escape_bytes(bytes),
        CValue::Hash(h) => format!("{}…", &hex(h)[..16]),
        CValue::Xattrs(x) => {
            let pairs = crate::scan::decode_xattrs(x).unwrap_or_default();
            if pairs.is_empty() {
                return "(none)".into();
            }
            let shown: Vec<String> = pairs
                .iter()
                .map(|(n, v)| {
                    if v.len() <= 16 {
                        format!("{}=0x{}", escape_bytes(n), hex(v))
                    } else {
                        format!(
                            "{}=<{} bytes b3:{}…>",
                            escape_bytes(n),
                            v.len(),
                            &hex(blake3::hash(v).as_bytes())[..8]
                        )
                    }
                })
                .collect();
            shown.join(" ")
        }
        CValue::Growing { size, hash } => match hash {
            Some(h) => format!("{size} bytes b3:{}…", &hex(h)[..16]),
            None => format!("{size} bytes"),
        },
        CValue::Account { name, id } => match name {
            Some(n) => format!("{} ({id})", escape_bytes(n.as_bytes())),
            None => format!("{id} (no name)"),
        },
    }
}

fn summary_human(r: &DriftReport<'_>) -> String {
    let c = r.comparison;
    let counts = format!(
        "{} added, {} removed, {} changed, {} errors",
        c.counts.added, c.counts.removed, c.counts.changed, c.counts.errors
    );
    let scanned = c.scan.as_ref().map_or(String::new(), |s| {
        format!(
            "; {} entries scanned in {:.2} s",
            s.entries,
            s.elapsed.as_secs_f64()
        )
    });
    let against = match r.command {
        "diff" => format!(
            "; {} (generation {}) vs {} (generation {})",
            escape_path(c.old.path()),
            c.old.header().generation,
            escape_path(c.new.path()),
            c.new.header().generation
        ),
        "update" => format!(
            "; accepted as generation {} of {} (generation {} kept as {})",
            c.new.header().generation,
            escape_path(c.new.path()),
            c.old.header().generation,
            escape_path(c.old.path())
        ),
        _ => format!(
            "; baseline {} generation {}",
            escape_path(c.old.path()),
            c.old.header().generation
        ),
    };
    let mut line = format!("tripseal {}: {counts}{scanned}{against}\n", r.command);
    if let (true, Some(s)) = (c.fast, &c.scan) {
        line.push_str(&format!(
            "--fast: the content of {} entries whose dev, inode, size, mtime and ctime had not \
             moved was trusted, not re-read; {} more were re-read anyway (the --reread share)\n",
            s.trusted, s.reread
        ));
    }
    line
}

fn drift_human(out: &mut dyn Write, d: &Drift) -> Result<(), Error> {
    write!(
        out,
        "  {}  [rule {}, {}]",
        escape_path(&d.path),
        escape_bytes(d.rule.as_bytes()),
        d.severity.name()
    )
    .map_err(out_err)?;
    if let Some(o) = &d.origin {
        write!(out, "  ({})", o.tag()).map_err(out_err)?;
    }
    if let Some(p) = &d.problem {
        write!(
            out,
            "  {}: {}",
            p.kind(),
            escape_bytes(p.reason().as_bytes())
        )
        .map_err(out_err)?;
    }
    writeln!(out).map_err(out_err)?;
    for c in &d.changes {
        let note = c.note.map_or(String::new(), |n| format!(" ({n})"));
        writeln!(
            out,
            "      {:<8} {} → {}{note}",
            c.attr.name(),
            value_human(&c.old),
            value_human(&c.new)
        )
        .map_err(out_err)?;
    }
    if let Some(f) = &d.finding {
        writeln!(
            out,
            "      {:<8} {}: {}",
            "python",
            f.kind.event(),
            escape_bytes(f.detail.as_bytes())
        )
        .map_err(out_err)?;
    }
    if let Some(note) = d.origin.as_ref().and_then(|o| o.note.as_deref()) {
        writeln!(
            out,
            "      {:<8} {}",
            "origin",
            escape_bytes(note.as_bytes())
        )
        .map_err(out_err)?;
    }
    Ok(())
}

/// Renders a drift report: the summary first, then the records. Human: grouped
/// by kind, each group in path order; nothing at all when nothing drifted,
/// unless verbose. JSON: one document, records in path order.
pub fn drift(out: &mut dyn Write, format: Format, r: &DriftReport<'_>) -> Result<(), Error> {
    let c = r.comparison;
    match format {
        Format::Json => {
            let mut safe = JsonForTerminal::new(&mut *out);
            let out: &mut dyn Write = &mut safe;
            let head = serde_json::to_string(&json!({"summary": summary_json(r)})).expect("json");
            let head = head.strip_suffix('}').expect("object");
            write!(out, "{head},\"drift\":[").map_err(out_err)?;
            let mut first = true;
            c.each_drift(|d| {
                if !first {
                    out.write_all(b",").map_err(out_err)?;
                }
                first = false;
                serde_json::to_writer(&mut *out, &drift_json(&d)).map_err(|e| out_err(e.into()))
            })?;
            out.write_all(b"]").map_err(out_err)?;
            let now = crate::units::now_ns() / 1_000_000_000;
            let certs: Vec<Value> = c
                .certificates
                .iter()
                .flat_map(|f| {
                    f.certs.iter().map(|cert| {
                        let mut v = cert.json(now, r.cert_window);
                        if let Value::Object(m) = &mut v {
                            json_path(m, "path", f.path.as_os_str().as_bytes());
                            m.insert("trust_store".into(), f.trust_store.into());
                        }
                        v
                    })
                })
                .collect();
            let certs = serde_json::to_string(&json!({ "certificates": certs })).expect("json");
            write!(out, ",{}", &certs[1..certs.len() - 1]).map_err(out_err)?;
            if let Some(a) = &c.audit {
                let a = serde_json::to_string(&json!({ "celery_audit": a.json() })).expect("json");
                write!(out, ",{}", &a[1..a.len() - 1]).map_err(out_err)?;
            }
            if let Some((at, left)) = r.left_out {
                let left: Vec<Value> = left
                    .iter()
                    .map(|(d, why)| {
                        let mut v = drift_json(d);
                        v["not_accepted_because"] = why.as_str().into();
                        v
                    })
                    .collect();
                let more = json!({"only_packaged": at.name(), "not_accepted": left});
                let more = serde_json::to_string(&more).expect("json");
                write!(out, ",{}", &more[1..more.len() - 1]).map_err(out_err)?;
            }
            out.write_all(b"}\n").map_err(out_err)?;
            out.flush().map_err(out_err)?;
        }
        Format::Human => {
            let now = crate::units::now_ns() / 1_000_000_000;
            let due = crate::certs::due(&c.certificates, now, r.cert_window);
            let audited = c.audit.as_ref().filter(|a| !a.findings.is_empty());
            if c.counts.total() == 0
                && due.is_empty()
                && audited.is_none()
                && !r.verbose
                && r.command != "update"
            {
                return Ok(());
            }
            out.write_all(summary_human(r).as_bytes())
                .map_err(out_err)?;
            for kind in DriftKind::ALL {
                let n = c.counts.of(kind);
                if n == 0 {
                    continue;
                }
                let title = if kind == DriftKind::Error {
                    "errors"
                } else {
                    kind.name()
                };
                writeln!(out, "\n{title} ({n}):").map_err(out_err)?;
                c.each_drift(|d| {
                    if d.kind == kind {
                        drift_human(out, &d)
                    } else {
                        Ok(())
                    }
                })?;
            }
            if let Some((at, left)) = r.left_out {
                writeln!(
                    out,
                    "\nnot accepted by --only-packaged={} ({}): still drift, as generation {} \
                     had them",
                    at.name(),
                    left.len(),
                    c.old.header().generation
                )
                .map_err(out_err)?;
                for (d, why) in left {
                    drift_human(out, d)?;
                    writeln!(out, "      {:<8} {}", "why", escape_bytes(why.as_bytes()))
                        .map_err(out_err)?;
                }
            }
            if !due.is_empty() {
                writeln!(
                    out,
                    "\ncertificates expired or expiring within {} ({}):",
                    match r.cert_window {
                        w if w % 86_400 == 0 => format!("{} days", w / 86_400),
                        w => crate::units::human_duration(w.saturating_mul(1_000_000_000)),
                    },
                    due.len()
                )
                .map_err(out_err)?;
                for (f, cert, status) in &due {
                    writeln!(
                        out,
                        "  {}  {}  not after {}  [{}]",
                        escape_path(&f.path),
                        escape_bytes(cert.subject.as_bytes()),
                        crate::units::iso8601(cert.not_after.saturating_mul(1_000_000_000)),
                        status.name()
                    )
                    .map_err(out_err)?;
                }
            }
            if let Some(a) = audited {
                writeln!(
                    out,
                    "\nCelery configuration, audited ({} findings):",
                    a.findings.len()
                )
                .map_err(out_err)?;
                a.human(out).map_err(out_err)?;
            }
        }
    }
    out.flush().map_err(out_err)
}

/// `tripseal verify`: the digest, the generation and every signature.
pub fn verification(
    out: &mut dyn Write,
    baseline: &Baseline,
    trust: &TrustStore,
    v: &Verification,
) -> Result<(), Error> {
    writeln!(out, "baseline    {}", escape_path(baseline.path())).map_err(out_err)?;
    writeln!(out, "digest      {}", hex(&v.digest)).map_err(out_err)?;
    writeln!(out, "generation  {}", v.generation).map_err(out_err)?;
    writeln!(
        out,
        "trust store {} ({} keys)",
        escape_bytes(trust.source.as_bytes()),
        trust.keys.len()
    )
    .map_err(out_err)?;
    if v.signatures.is_empty() {
        writeln!(out, "signatures  none").map_err(out_err)?;
    }
    for s in &v.signatures {
        let expiry = match s.expires_ns {
            None => "no expiry".to_string(),
            Some(t) if s.expired => format!("EXPIRED {}", iso8601(t)),
            Some(t) => format!("expires {}", iso8601(t)),
        };
        writeln!(
            out,
            "signature   {}  signed {}  {expiry}  {}  {}",
            escape_bytes(s.fingerprint.as_bytes()),
            iso8601(s.signed_at_ns),
            if s.valid {
                "valid"
            } else {
                "INVALID for this content"
            },
            if s.trusted { "trusted" } else { "not trusted" }
        )
        .map_err(out_err)?;
    }
    let verdict = match v.failure() {
        None => "accepted: a trusted key signed exactly this content".to_string(),
        Some(f) => format!("refused: {}", f.name()),
    };
    writeln!(out, "{verdict}").map_err(out_err)?;
    out.flush().map_err(out_err)
}
