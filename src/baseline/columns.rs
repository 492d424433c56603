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
}

impl Column {
    pub const ALL: [Column; 20] = [
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
        }
    }

    pub fn name(self) -> &'static str {
        self.spec().0
    }

    /// What `e` (governed by the rule named `rule`) stores in this column.
    /// type, size, times, inode and dev are kept for every entry (`check
    /// --fast` needs them); the other attributes only when the rule checks
    /// them, else NULL.
    pub fn value<'a>(self, e: &'a Entry, rule: &'a str) -> ToSqlOutput<'a> {
        let m = e.meta;
        let checked = |a: Attr, v: Option<i64>| v.filter(|_| e.attrs.contains(a));
        match self {
            Column::Path => blob(Some(e.path.as_os_str().as_bytes())),
            Column::Rule => text(Some(rule)),
            Column::Attrs => int(Some(i64::from(e.attrs.bits()))),
            Column::Type => text(m.map(|m| m.kind.name())),
            Column::Size => int(m.map(|m| m.size as i64)),
            Column::MtimeNs => int(m.map(|m| m.mtime_ns)),
            Column::CtimeNs => int(m.map(|m| m.ctime_ns)),
            Column::Inode => int(m.map(|m| m.inode as i64)),
            Column::Dev => int(m.map(|m| m.dev as i64)),
            Column::Mode => int(checked(Attr::Mode, m.map(|m| i64::from(m.mode)))),
            Column::Uid => int(checked(Attr::Uid, m.map(|m| i64::from(m.uid)))),
            Column::Gid => int(checked(Attr::Gid, m.map(|m| i64::from(m.gid)))),
            Column::Nlink => int(checked(Attr::Nlink, m.map(|m| m.nlink as i64))),
            Column::Link => blob(e.link.as_deref()),
            Column::Hash => blob(e.hash.as_ref().map(|h| &h[..])),
            Column::Xattrs => blob(e.xattrs.as_deref()),
            Column::Problem => text(e.problem.as_ref().map(Problem::kind)),
            Column::Reason => text(e.problem.as_ref().map(Problem::reason)),
            Column::PrefixHash => blob(e.prefix_hash.as_ref().map(|h| &h[..])),
            Column::Trusted => int(e.trusted.then_some(1)),
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

/// `path, rule, ...`: every column, in order.
pub fn list() -> &'static str {
    static LIST: OnceLock<String> = OnceLock::new();
    LIST.get_or_init(|| {
        Column::ALL
            .iter()
            .map(|c| c.name())
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// The queries of entries: every column, made once per process (the daemon
/// reads one entry per path that changes).
pub enum Select {
    /// All of them, in path byte order.
    All,
    /// The one at `?1`.
    One,
    /// `?1` and everything from `?2` up to (not including) `?3`.
    Range,
}

impl Select {
    pub fn sql(self) -> &'static str {
        static SQL: OnceLock<[String; 3]> = OnceLock::new();
        let [all, one, range] = SQL.get_or_init(|| {
            let select = |tail: &str| format!("SELECT {} FROM entries {tail}", list());
            [
                select("ORDER BY path"),
                select("WHERE path = ?1"),
                select("WHERE path = ?1 OR (path >= ?2 AND path < ?3) ORDER BY path"),
            ]
        });
        match self {
            Select::All => all,
            Select::One => one,
            Select::Range => range,
        }
    }
}

/// The table's `CREATE TABLE` statement.
pub fn create_table() -> &'static str {
    static CREATE: OnceLock<String> = OnceLock::new();
    CREATE.get_or_init(|| {
        let columns: Vec<String> = Column::ALL
            .iter()
            .map(|c| format!("    {} {}", c.name(), c.spec().1))
            .collect();
        format!(
            "CREATE TABLE entries (\n{}\n) WITHOUT ROWID;\n",
            columns.join(",\n")
        )
    })
}

/// `INSERT INTO entries (<every column>) VALUES (?1, ...)`.
pub fn insert() -> &'static str {
    static INSERT: OnceLock<String> = OnceLock::new();
    INSERT.get_or_init(|| {
        let params: Vec<String> = (1..=Column::ALL.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO entries ({}) VALUES ({})",
            list(),
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

    /// The table as every baseline made so far has it: a file made before
    /// the list must still be tripseal's schema.
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
            crate::sqlite::schema_made_by(&[create_table()]),
            crate::sqlite::schema_made_by(&[MADE_SO_FAR])
        );
    }
}
