//! The columns of a baseline's `entries` table, named once. The schema, the
//! writer, the reader and the canonical digest all derive from this list,
//! so a new column cannot be written but left out of the signature.

use std::os::unix::ffi::OsStrExt;
use std::sync::OnceLock;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};

use crate::attrs::Attr;
use crate::scan::{Entry, Problem};

/// One column of `entries`; its position in [`Column::ALL`] is its index in
/// every statement made from the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Path,
    Rule,
    Attrs,
    Type,
    Size,
    MtimeNs,
    CtimeNs,
    Inode,
    Dev,
    Mode,
    Uid,
    Gid,
    Nlink,
    Link,
    Hash,
    Xattrs,
    Problem,
    Reason,
    PrefixHash,
    Trusted,
    OwnerName,
    GroupName,
}

impl Column {
    pub const ALL: [Column; 22] = [
        Column::Path,
        Column::Rule,
        Column::Attrs,
        Column::Type,
        Column::Size,
        Column::MtimeNs,
        Column::CtimeNs,
        Column::Inode,
        Column::Dev,
        Column::Mode,
        Column::Uid,
        Column::Gid,
        Column::Nlink,
        Column::Link,
        Column::Hash,
        Column::Xattrs,
        Column::Problem,
        Column::Reason,
        Column::PrefixHash,
        Column::Trusted,
        Column::OwnerName,
        Column::GroupName,
    ];

    /// Its index in a row read with [`list`].
    pub fn at(self) -> usize {
        self as usize
    }

    /// Its name, and its declaration in the schema.
    fn spec(self) -> (&'static str, &'static str) {
        match self {
            Column::Path => ("path", "BLOB PRIMARY KEY NOT NULL"),
            Column::Rule => ("rule", "TEXT NOT NULL REFERENCES rules(name)"),
            Column::Attrs => ("attrs", "INTEGER NOT NULL"),
            Column::Type => ("type", "TEXT"),
            Column::Size => ("size", "INTEGER"),
            Column::MtimeNs => ("mtime_ns", "INTEGER"),
            Column::CtimeNs => ("ctime_ns", "INTEGER"),
            Column::Inode => ("inode", "INTEGER"),
            Column::Dev => ("dev", "INTEGER"),
            Column::Mode => ("mode", "INTEGER"),
            Column::Uid => ("uid", "INTEGER"),
            Column::Gid => ("gid", "INTEGER"),
            Column::Nlink => ("nlink", "INTEGER"),
            Column::Link => ("link", "BLOB"),
            Column::Hash => ("hash", "BLOB"),
            Column::Xattrs => ("xattrs", "BLOB"),
            Column::Problem => ("problem", "TEXT"),
            Column::Reason => ("reason", "TEXT"),
            Column::PrefixHash => ("prefix_hash", "BLOB"),
            Column::Trusted => ("trusted", "INTEGER"),
            Column::OwnerName => ("owner_name", "TEXT"),
            Column::GroupName => ("group_name", "TEXT"),
        }
    }

    /// The baseline schema that brought this column.
    fn since(self) -> i64 {
        match self {
            Column::OwnerName | Column::GroupName => 2,
            _ => 1,
        }
    }

    fn in_schema(self, schema: i64) -> bool {
        self.since() <= schema
    }

    pub fn name(self) -> &'static str {
        self.spec().0
    }

    /// What `e` (governed by the rule named `rule`) stores in this column.
    /// With `host_fields`, type, size, times, inode and dev are kept for
    /// every entry (`check --fast` needs them); without (a role baseline,
    /// whose hosts each have their own), only what the rule checks. The
    /// other attributes only when the rule checks them, else NULL; the
    /// numeric owner and group also when it checks their names, for reports.
    pub fn value<'a>(self, e: &'a Entry, rule: &'a str, host_fields: bool) -> ToSqlOutput<'a> {
        let m = e.meta;
        let checked = |a: Attr, v: Option<i64>| v.filter(|_| e.attrs.contains(a));
        let stat = |a: Attr, v: Option<i64>| v.filter(|_| host_fields || e.attrs.contains(a));
        let either = |a: Attr, b: Attr, v: Option<i64>| {
            v.filter(|_| e.attrs.contains(a) || e.attrs.contains(b))
        };
        match self {
            Column::Path => blob(Some(e.path.as_os_str().as_bytes())),
            Column::Rule => text(Some(rule)),
            Column::Attrs => int(Some(i64::from(e.attrs.bits()))),
            Column::Type => text(m.map(|m| m.kind.name())),
            Column::Size => int(m.map(|m| m.size as i64)),
            Column::MtimeNs => int(stat(Attr::Mtime, m.map(|m| m.mtime_ns))),
            Column::CtimeNs => int(stat(Attr::Ctime, m.map(|m| m.ctime_ns))),
            Column::Inode => int(stat(Attr::Inode, m.map(|m| m.inode as i64))),
            Column::Dev => int(stat(Attr::Dev, m.map(|m| m.dev as i64))),
            Column::Mode => int(checked(Attr::Mode, m.map(|m| i64::from(m.mode)))),
            Column::Uid => int(either(Attr::Uid, Attr::Owner, m.map(|m| i64::from(m.uid)))),
            Column::Gid => int(either(Attr::Gid, Attr::Group, m.map(|m| i64::from(m.gid)))),
            Column::Nlink => int(checked(Attr::Nlink, m.map(|m| m.nlink as i64))),
            Column::Link => blob(e.link.as_deref()),
            Column::Hash => blob(e.hash.as_ref().map(|h| &h[..])),
            Column::Xattrs => blob(e.xattrs.as_deref()),
            Column::Problem => text(e.problem.as_ref().map(Problem::kind)),
            Column::Reason => text(e.problem.as_ref().map(Problem::reason)),
            Column::PrefixHash => blob(e.prefix_hash.as_ref().map(|h| &h[..])),
            Column::Trusted => int(e.trusted.then_some(1)),
            Column::OwnerName => text(e.owner.as_deref()),
            Column::GroupName => text(e.group.as_deref()),
        }
    }
}

fn int(v: Option<i64>) -> ToSqlOutput<'static> {
    ToSqlOutput::Owned(v.map_or(Value::Null, Value::Integer))
}

fn blob(v: Option<&[u8]>) -> ToSqlOutput<'_> {
    v.map_or(ToSqlOutput::Owned(Value::Null), |b| {
        ToSqlOutput::Borrowed(ValueRef::Blob(b))
    })
}

fn text(v: Option<&str>) -> ToSqlOutput<'_> {
    v.map_or(ToSqlOutput::Owned(Value::Null), |t| {
        ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes()))
    })
}

/// The schemas this version reads; the last is the one it writes.
pub const SCHEMAS: [i64; 2] = [1, 2];

/// Per schema this version reads, something made once.
fn per_schema<T>(cell: &'static OnceLock<Vec<T>>, schema: i64, make: fn(i64) -> T) -> &'static T {
    let all = cell.get_or_init(|| SCHEMAS.iter().map(|&s| make(s)).collect());
    let at = SCHEMAS
        .iter()
        .position(|&s| s == schema)
        .expect("the schema was validated when the baseline was opened");
    &all[at]
}

/// `path, rule, ...`: every column, in order; in a file of an older
/// `schema`, NULL stands for a column it does not have, so that every row
/// reads the same way.
pub fn list(schema: i64) -> &'static str {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    per_schema::<String>(&LIST, schema, |schema| {
        Column::ALL
            .iter()
            .map(|c| {
                if c.in_schema(schema) {
                    c.name()
                } else {
                    "NULL"
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The queries of entries: every column, made once per process (the daemon
/// reads one entry per path that changes).
#[derive(Clone, Copy)]
pub enum Select {
    /// All of them, in path byte order.
    All,
    /// The one at `?1`.
    One,
    /// `?1` and everything from `?2` up to (not including) `?3`.
    Range,
    /// All of them, in path byte order, with only the columns the file's
    /// schema has: what the seal digests, unchanged since that schema.
    Sealed,
}

impl Select {
    pub fn sql(self, schema: i64) -> &'static str {
        static SQL: OnceLock<Vec<[String; 4]>> = OnceLock::new();
        let [all, one, range, sealed] = per_schema(&SQL, schema, |schema| {
            let select = |tail: &str| format!("SELECT {} FROM entries {tail}", list(schema));
            let present: Vec<&str> = Column::ALL
                .iter()
                .filter(|c| c.in_schema(schema))
                .map(|c| c.name())
                .collect();
            [
                select("ORDER BY path"),
                select("WHERE path = ?1"),
                select("WHERE path = ?1 OR (path >= ?2 AND path < ?3) ORDER BY path"),
                format!("SELECT {} FROM entries ORDER BY path", present.join(", ")),
            ]
        });
        match self {
            Select::All => all,
            Select::One => one,
            Select::Range => range,
            Select::Sealed => sealed,
        }
    }
}

/// The table's `CREATE TABLE` statement in `schema`.
pub fn create_table(schema: i64) -> &'static str {
    static CREATE: OnceLock<Vec<String>> = OnceLock::new();
    per_schema::<String>(&CREATE, schema, |schema| {
        let columns: Vec<String> = Column::ALL
            .iter()
            .filter(|c| c.in_schema(schema))
            .map(|c| format!("    {} {}", c.name(), c.spec().1))
            .collect();
        format!(
            "CREATE TABLE entries (\n{}\n) WITHOUT ROWID;\n",
            columns.join(",\n")
        )
    })
}

/// `INSERT INTO entries (<every column>) VALUES (?1, ...)`, in the schema
/// this version writes.
pub fn insert() -> &'static str {
    static INSERT: OnceLock<String> = OnceLock::new();
    INSERT.get_or_init(|| {
        let params: Vec<String> = (1..=Column::ALL.len()).map(|i| format!("?{i}")).collect();
        let names: Vec<&str> = Column::ALL.iter().map(|c| c.name()).collect();
        format!(
            "INSERT INTO entries ({}) VALUES ({})",
            names.join(", "),
            params.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_column_is_at_its_place() {
        for (i, c) in Column::ALL.iter().enumerate() {
            assert_eq!(c.at(), i, "{c:?}");
        }
    }

    /// The table as every baseline of schema 1 has it: a file made before
    /// the list, or before names, must still be tripseal's schema.
    #[test]
    fn the_table_is_the_one_baselines_have() {
        const MADE_SO_FAR: &str = "CREATE TABLE entries (
            path BLOB PRIMARY KEY NOT NULL, rule TEXT NOT NULL REFERENCES rules(name),
            attrs INTEGER NOT NULL, type TEXT, size INTEGER, mtime_ns INTEGER,
            ctime_ns INTEGER, inode INTEGER, dev INTEGER, mode INTEGER, uid INTEGER,
            gid INTEGER, nlink INTEGER, link BLOB, hash BLOB, xattrs BLOB, problem TEXT,
            reason TEXT, prefix_hash BLOB, trusted INTEGER
        ) WITHOUT ROWID;";
        assert_eq!(
            crate::sqlite::schema_made_by(&[create_table(1)]),
            crate::sqlite::schema_made_by(&[MADE_SO_FAR])
        );
        assert!(create_table(2).contains("owner_name TEXT,\n    group_name TEXT\n"));
        assert!(list(1).ends_with("trusted, NULL, NULL"));
        // What the seal of a schema-1 baseline digests, exactly as before
        // schema 2: its signatures still verify.
        assert_eq!(
            Select::Sealed.sql(1),
            "SELECT path, rule, attrs, type, size, mtime_ns, ctime_ns, inode, dev, mode, uid, \
             gid, nlink, link, hash, xattrs, problem, reason, prefix_hash, trusted FROM entries \
             ORDER BY path"
        );
    }
}
