//! Drift: how an entry differs between two entry sets (baseline and scan, or
//! two baselines), as records that reports and events render.
//!
//! Guarantees:
//! - only the attributes both sides' rules check are compared;
//! - a `growing` entry may grow; it drifts when it shrank or when the bytes it
//!   had at baseline time changed (compared through the scan's prefix hash);
//! - an entry that can no longer be read is an error record, never silently
//!   "unchanged": its exit bit is the "changed" one, since nothing vouches for it;
//! - both sides are streamed ([`Baseline::merge_with`]), so memory does not
//!   grow with the number of entries; drift comes in path byte order, except
//!   from [`compare_with`], whose caller only counts and collects it.

use std::path::PathBuf;

use crate::attrs::{Attr, AttrSet};
use crate::baseline::{Baseline, Order, RuleInfo};
use crate::error::Error;
use crate::rules::Severity;
use crate::scan::{Entry, FileKind, Meta, Problem};

/// The kind of a drift record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftKind {
    Added,
    Removed,
    Changed,
    /// The entry could not be read, listed, or held still in the new state.
    Error,
}

impl DriftKind {
    pub const ALL: [DriftKind; 4] = [
        DriftKind::Added,
        DriftKind::Removed,
        DriftKind::Changed,
        DriftKind::Error,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DriftKind::Added => "added",
            DriftKind::Removed => "removed",
            DriftKind::Changed => "changed",
            DriftKind::Error => "error",
        }
    }
}

/// The value of one attribute on one side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// Not recorded on this side.
    Absent,
    Kind(FileKind),
    Mode(u32),
    Int(u64),
    /// Nanoseconds since the epoch.
    Time(i64),
    /// A symlink target.
    Link(Vec<u8>),
    Hash([u8; 32]),
    /// Encoded extended attributes (see `scan::encode_xattrs`).
    Xattrs(Vec<u8>),
    /// A growing entry: its size, and the hash of what `growing` compares.
    Growing {
        size: u64,
        hash: Option<[u8; 32]>,
    },
    /// An owner or group: compared by name, the number kept for the report
    /// (it differs between the hosts of a role).
    Account {
        name: Option<String>,
        id: u32,
    },
}

impl Value {
    /// Whether two values count as the same: accounts by name (by number
    /// only when neither has one), everything else exactly.
    fn named(self, name: &Option<String>) -> Value {
        match self {
            Value::Account { id, .. } => Value::Account {
                name: name.clone(),
                id,
            },
            other => other,
        }
    }

    fn same(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Account { name: Some(a), .. }, Value::Account { name: Some(b), .. }) => a == b,
            (Value::Account { name: None, id: a }, Value::Account { name: None, id: b }) => a == b,
            (Value::Account { .. }, Value::Account { .. }) => false,
            (a, b) => a == b,
        }
    }
}

/// One attribute that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub attr: Attr,
    pub old: Value,
    pub new: Value,
    /// Why a `growing` entry drifted: "truncated" or "rewritten".
    pub note: Option<&'static str>,
}

/// One drift record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub kind: DriftKind,
    pub path: PathBuf,
    pub rule: String,
    pub severity: Severity,
    /// For `Changed` (and `Error`, what could still be compared).
    pub changes: Vec<Change>,
    /// For `Error`, and for an added entry that could not be read.
    pub problem: Option<Problem>,
    /// The entry as it is now (`Removed`: as it was).
    pub entry: Entry,
    /// Which package the path belongs to, and whether the content is what
    /// it shipped (see [`crate::origin`]); `None` when not explained.
    pub origin: Option<crate::origin::Origin>,
    /// A Python start-up hook or bytecode that is not its source's (see
    /// [`crate::python`]); `None` when there is none or it was not looked
    /// for.
    pub finding: Option<crate::python::Finding>,
}

/// How many records of each kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriftCounts {
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub errors: u64,
}

impl DriftCounts {
    pub fn add(&mut self, kind: DriftKind) {
        match kind {
            DriftKind::Added => self.added += 1,
            DriftKind::Removed => self.removed += 1,
            DriftKind::Changed => self.changed += 1,
            DriftKind::Error => self.errors += 1,
        }
    }

    pub fn of(&self, kind: DriftKind) -> u64 {
        match kind {
            DriftKind::Added => self.added,
            DriftKind::Removed => self.removed,
            DriftKind::Changed => self.changed,
            DriftKind::Error => self.errors,
        }
    }

    pub fn total(&self) -> u64 {
        self.added + self.removed + self.changed + self.errors
    }

    /// AIDE's bitmask: 1 added, 2 removed, 4 changed (errors count as changed).
    pub fn exit_bits(&self) -> u8 {
        u8::from(self.added > 0)
            | (u8::from(self.removed > 0) << 1)
            | (u8::from(self.changed > 0 || self.errors > 0) << 2)
    }
}

/// Streams the drift between `old` and `new`, in path byte order, into `f`.
pub fn compare(
    old: &Baseline,
    new: &Baseline,
    f: impl FnMut(Drift) -> Result<(), Error>,
) -> Result<DriftCounts, Error> {
    walk(old, new, Order::Path, f, None)
}

/// Told of an entry that did not drift: its path, stat fields, attributes.
pub type Unchanged<'a> = dyn FnMut(&std::path::Path, &Meta, AttrSet) + 'a;

/// As [`compare`], in whichever order costs least ([`Order::Any`]), and
/// `unchanged` hears of each entry that is on both sides as it was, with
/// the same size and nothing unreadable: its path, stat fields and
/// attributes on the `new` side.
pub fn compare_with(
    old: &Baseline,
    new: &Baseline,
    f: impl FnMut(Drift) -> Result<(), Error>,
    unchanged: Option<&mut Unchanged<'_>>,
) -> Result<DriftCounts, Error> {
    walk(old, new, Order::Any, f, unchanged)
}

fn walk(
    old: &Baseline,
    new: &Baseline,
    order: Order,
    mut f: impl FnMut(Drift) -> Result<(), Error>,
    mut unchanged: Option<&mut Unchanged<'_>>,
) -> Result<DriftCounts, Error> {
    let mut counts = DriftCounts::default();
    old.merge_with(new, order, |a, b| {
        let same = match (&a, &b, unchanged.is_some()) {
            (Some(a), Some(b), true)
                if a.problem.is_none()
                    && b.problem.is_none()
                    && content_carries(a.meta, b.meta) =>
            {
                b.meta.map(|m| (b.path.clone(), m, b.attrs))
            }
            _ => None,
        };
        let a = a.map(|e| {
            let r = &old.rules()[e.rule];
            (e, r)
        });
        let b = b.map(|e| {
            let r = &new.rules()[e.rule];
            (e, r)
        });
        match drift_of(a, b) {
            Some(d) => {
                counts.add(d.kind);
                f(d)?;
            }
            None => {
                if let (Some((path, meta, attrs)), Some(tell)) = (same, unchanged.as_mut()) {
                    tell(&path, &meta, attrs);
                }
            }
        }
        Ok(())
    })?;
    Ok(counts)
}

/// The drift record for one path, if it drifted.
pub fn drift_of(old: Option<(Entry, &RuleInfo)>, new: Option<(Entry, &RuleInfo)>) -> Option<Drift> {
    let record = |kind, entry: Entry, rule: &RuleInfo, changes, problem| Drift {
        kind,
        path: entry.path.clone(),
        rule: rule.name.clone(),
        severity: rule.severity,
        changes,
        problem,
        entry,
        origin: None,
        finding: None,
    };
    match (old, new) {
        (None, None) => None,
        (Some((o, rule)), None) => Some(record(DriftKind::Removed, o, rule, Vec::new(), None)),
        (None, Some((n, rule))) => {
            let problem = n.problem.clone();
            Some(record(DriftKind::Added, n, rule, Vec::new(), problem))
        }
        (Some((o, _)), Some((n, rule))) => {
            let n = adopt_trusted(&o, n);
            let changes = changes(&o, &n);
            match n.problem.clone() {
                Some(p) => Some(record(DriftKind::Error, n, rule, changes, Some(p))),
                None if changes.is_empty() => None,
                None => Some(record(DriftKind::Changed, n, rule, changes, None)),
            }
        }
    }
}

/// The attributes, among those both sides check, whose values differ.
pub fn changes(old: &Entry, new: &Entry) -> Vec<Change> {
    let kind_changed = old.meta.map(|m| m.kind) != new.meta.map(|m| m.kind);
    let mut out = Vec::new();
    for attr in old.attrs.iter().filter(|a| new.attrs.contains(*a)) {
        // After a change of type, the type says it all: the size, content and
        // identity of a file and of a directory are not comparable.
        if kind_changed && is_inherent(attr) {
            continue;
        }
        // What the new side could not read is reported by its problem.
        if new.problem.is_some() && is_content(attr) {
            continue;
        }
        let change = match attr {
            Attr::Growing => growing_drift(old, new).map(|(o, n, note)| (o, n, Some(note))),
            _ => Some((value(attr, old), value(attr, new), None)),
        };
        if let Some((old, new, note)) = change.filter(|(o, n, _)| !o.same(n)) {
            out.push(Change {
                attr,
                old,
                new,
                note,
            });
        }
    }
    out
}

/// How each attribute is read from an entry, to be compared (`growing`
/// compares two values at once: see [`growing_drift`]).
fn value(attr: Attr, e: &Entry) -> Value {
    let meta = |f: fn(&Meta) -> Value| e.meta.as_ref().map_or(Value::Absent, f);
    match attr {
        Attr::Type => meta(|m| Value::Kind(m.kind)),
        Attr::Mode => meta(|m| Value::Mode(m.mode)),
        Attr::Uid => meta(|m| Value::Int(m.uid.into())),
        Attr::Gid => meta(|m| Value::Int(m.gid.into())),
        Attr::Size => meta(|m| Value::Int(m.size)),
        Attr::Mtime => meta(|m| Value::Time(m.mtime_ns)),
        Attr::Ctime => meta(|m| Value::Time(m.ctime_ns)),
        Attr::Inode => meta(|m| Value::Int(m.inode)),
        Attr::Nlink => meta(|m| Value::Int(m.nlink)),
        Attr::Dev => meta(|m| Value::Int(m.dev)),
        Attr::Link => opt(&e.link, Value::Link),
        Attr::Hash | Attr::Growing => opt(&e.hash, Value::Hash),
        Attr::Xattrs => opt(&e.xattrs, Value::Xattrs),
        Attr::Owner => meta(|m| Value::Account {
            name: None,
            id: m.uid,
        })
        .named(&e.owner),
        Attr::Group => meta(|m| Value::Account {
            name: None,
            id: m.gid,
        })
        .named(&e.group),
    }
}

/// Attributes of what an entry is, not comparable across a change of type.
fn is_inherent(attr: Attr) -> bool {
    matches!(
        attr,
        Attr::Size | Attr::Inode | Attr::Nlink | Attr::Link | Attr::Hash | Attr::Growing
    )
}

/// Attributes read from the content, absent when it could not be read.
fn is_content(attr: Attr) -> bool {
    matches!(attr, Attr::Hash | Attr::Xattrs | Attr::Link | Attr::Growing)
}

/// Whether the content recorded with `old` can stand for an entry that
/// is now `new`: the same kind and size. What `--fast` takes from a
/// baseline, and what a stat cache may vouch for.
fn content_carries(old: Option<Meta>, new: Option<Meta>) -> bool {
    matches!((old, new), (Some(o), Some(n)) if (o.kind, o.size) == (n.kind, n.size))
}

/// `check --fast` did not read a `trusted` entry: its content attributes are
/// the baseline's. Only this process's own scan sets `trusted` (see
/// `Baseline::own_scan`), and only after every stat field it knows matched:
/// the signed baseline's, or a role baseline's host stat cache. Of an entry
/// whose kind or size moved since, the unread attributes stay absent and
/// show up as changed.
fn adopt_trusted(old: &Entry, mut new: Entry) -> Entry {
    let same_stat = content_carries(old.meta, new.meta);
    if new.trusted && same_stat && old.problem.is_none() {
        new.hash = old.hash;
        new.link = old.link.clone();
        new.xattrs = old.xattrs.clone();
        // Unchanged size: the baseline prefix is the whole recorded content.
        new.prefix_hash = new
            .attrs
            .contains(Attr::Growing)
            .then_some(old.hash)
            .flatten();
    }
    new
}

fn opt<T: Clone>(v: &Option<T>, f: fn(T) -> Value) -> Value {
    v.clone().map_or(Value::Absent, f)
}

/// A growing entry drifts when it is shorter than at baseline time, or when
/// its first baseline-size bytes hash differently.
fn growing_drift(old: &Entry, new: &Entry) -> Option<(Value, Value, &'static str)> {
    let (o, n) = (old.meta?, new.meta?);
    let was = Value::Growing {
        size: o.size,
        hash: old.hash,
    };
    if n.size < o.size {
        let now = Value::Growing {
            size: n.size,
            hash: new.hash,
        };
        return Some((was, now, "truncated"));
    }
    // A check's scan hashed the baseline-size prefix; two baselines can only
    // be compared where the size is the same.
    let prefix = new
        .prefix_hash
        .or((n.size == o.size).then_some(new.hash).flatten())?;
    (Some(prefix) != old.hash).then(|| {
        let now = Value::Growing {
            size: n.size,
            hash: Some(prefix),
        };
        (was, now, "rewritten")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attrs: &[Attr], size: u64, hash: u8) -> Entry {
        Entry {
            path: "/x".into(),
            rule: 0,
            attrs: attrs.iter().copied().collect(),
            meta: Some(Meta {
                kind: FileKind::File,
                mode: 0o644,
                uid: 0,
                gid: 0,
                size,
                mtime_ns: 1,
                ctime_ns: 1,
                inode: 7,
                nlink: 1,
                dev: 1,
            }),
            link: None,
            hash: Some([hash; 32]),
            xattrs: None,
            owner: Some("app".into()),
            group: Some("app".into()),
            problem: None,
            prefix_hash: None,
            trusted: false,
        }
    }

    #[test]
    fn only_checked_attributes_are_compared() {
        let old = entry(&[Attr::Mode], 10, 1);
        let mut new = entry(&[Attr::Mode], 20, 2);
        assert!(
            changes(&old, &new).is_empty(),
            "size and hash are not checked"
        );
        new.meta.as_mut().unwrap().mode = 0o666;
        let c = changes(&old, &new);
        assert_eq!(c.len(), 1);
        assert_eq!(
            (c[0].attr, &c[0].old, &c[0].new),
            (Attr::Mode, &Value::Mode(0o644), &Value::Mode(0o666))
        );
    }

    /// Each attribute on its own: a change to its field alone is exactly
    /// one change, of that attribute, and only when the rule checks it.
    #[test]
    fn each_attribute_is_compared_on_its_own() {
        type Edit = fn(&mut Entry);
        let edits: [(Attr, Edit); 15] = [
            (Attr::Type, |e| {
                e.meta.as_mut().unwrap().kind = FileKind::Dir
            }),
            (Attr::Mode, |e| e.meta.as_mut().unwrap().mode = 0o600),
            (Attr::Uid, |e| e.meta.as_mut().unwrap().uid = 5),
            (Attr::Gid, |e| e.meta.as_mut().unwrap().gid = 5),
            (Attr::Size, |e| e.meta.as_mut().unwrap().size = 11),
            (Attr::Mtime, |e| e.meta.as_mut().unwrap().mtime_ns = 2),
            (Attr::Ctime, |e| e.meta.as_mut().unwrap().ctime_ns = 2),
            (Attr::Inode, |e| e.meta.as_mut().unwrap().inode = 8),
            (Attr::Nlink, |e| e.meta.as_mut().unwrap().nlink = 2),
            (Attr::Dev, |e| e.meta.as_mut().unwrap().dev = 2),
            (Attr::Link, |e| e.link = Some(b"elsewhere".to_vec())),
            (Attr::Hash, |e| e.hash = Some([2; 32])),
            (Attr::Xattrs, |e| e.xattrs = Some(b"user.x".to_vec())),
            (Attr::Owner, |e| e.owner = Some("intruder".into())),
            (Attr::Group, |e| e.group = None),
        ];
        let all: Vec<Attr> = Attr::ALL
            .into_iter()
            .filter(|a| *a != Attr::Growing)
            .collect();
        for (attr, edit) in edits {
            let old = entry(&all, 10, 1);
            let mut new = old.clone();
            edit(&mut new);
            let c = changes(&old, &new);
            assert_eq!(c.iter().map(|c| c.attr).collect::<Vec<_>>(), [attr]);
            let others: Vec<Attr> = all.iter().copied().filter(|a| *a != attr).collect();
            let (old, mut new) = (entry(&others, 10, 1), entry(&others, 10, 1));
            edit(&mut new);
            let unchecked: Vec<Attr> = changes(&old, &new).iter().map(|c| c.attr).collect();
            assert!(unchecked.is_empty(), "{attr:?} unchecked: {unchecked:?}");
        }
    }

    #[test]
    fn growing_allows_appends_only() {
        let old = entry(&[Attr::Growing], 10, 1);
        let mut appended = entry(&[Attr::Growing], 15, 9);
        appended.prefix_hash = Some([1; 32]);
        assert!(changes(&old, &appended).is_empty());
        let mut edited = appended.clone();
        edited.prefix_hash = Some([3; 32]);
        assert_eq!(changes(&old, &edited)[0].note, Some("rewritten"));
        let truncated = entry(&[Attr::Growing], 4, 1);
        assert_eq!(changes(&old, &truncated)[0].note, Some("truncated"));
    }

    #[test]
    fn exit_bits_follow_aide() {
        let mut c = DriftCounts::default();
        assert_eq!(c.exit_bits(), 0);
        c.add(DriftKind::Added);
        c.add(DriftKind::Removed);
        assert_eq!(c.exit_bits(), 3);
        c.add(DriftKind::Error);
        assert_eq!(c.exit_bits(), 7);
    }
}
