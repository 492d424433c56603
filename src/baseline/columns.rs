//! The columns of a baseline's `entries` table, named once. The schema, the
//! writer, the reader and the canonical digest all derive from this list,
//! so a new column cannot be written but left out of the signature.
//!
//! Schema 3 stores each directory's path once, in `dirs`, and each entry
//! under its directory's id with its own name: the path was more than half
//! of every row. Its rows come in tree order ([`tree_order`]: by directory,
//! then by name), which the join yields without a sort; schemas 1 and 2
//! come in path byte order.

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
pub const SCHEMAS: [i64; 3] = [1, 2, 3];

/// Whether a file of `schema` keeps directories in their own table.
pub fn has_dirs(schema: i64) -> bool {
    schema >= 3
}

/// The directory part of a path (up to and including its last `/`; empty
/// when it has none) and its name: `/etc/ssh/sshd_config` is `/etc/ssh/`
/// and `sshd_config`, `/` is `/` and nothing. Their concatenation is the
/// path, byte for byte.
pub fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => (&path[..=i], &path[i + 1..]),
        None => (&[], path),
    }
}

/// The order in which schema 3 keeps and yields entries: by directory
/// part, then by name ([`split`]), each compared byte by byte as SQLite
/// compares BLOBs. A directory's own entries come together, before those
/// of the directories below it.
pub fn tree_order(a: &[u8], b: &[u8]) -> std::cmp::Ordering {
    split(a).cmp(&split(b))
}

/// The tables entries are read from, and the expression of an entry's
/// full path, in `schema`.
pub fn from(schema: i64) -> (&'static str, &'static str) {
    if has_dirs(schema) {
        (
            "dirs d CROSS JOIN entries e ON e.dir = d.id",
            "CAST(d.path || e.name AS BLOB)",
        )
    } else {
        ("entries", "path")
    }
}

/// The table of directories of schema 3: keyed by path, so that the join
/// walks them in order; an entry names its directory by `id`.
const CREATE_DIRS: &str = "CREATE TABLE dirs (
    path BLOB PRIMARY KEY NOT NULL,
    id INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Per schema this version reads, something made once.
fn per_schema<T>(cell: &'static OnceLock<Vec<T>>, schema: i64, make: fn(i64) -> T) -> &'static T {
    let all = cell.get_or_init(|| SCHEMAS.iter().map(|&s| make(s)).collect());
    let at = SCHEMAS
        .iter()
        .position(|&s| s == schema)
        .expect("the schema was validated when the baseline was opened");
    &all[at]
}

/// `path, rule, ...`: every column, in order, then the entry's name where
/// the file keeps directories apart (the path column is then the
/// directory's: see [`NAME_AT`]). In a file of an older `schema`, NULL
/// stands for a column it does not have, so that every row reads the same
/// way.
pub fn list(schema: i64) -> &'static str {
    static LIST: OnceLock<Vec<String>> = OnceLock::new();
    per_schema::<String>(&LIST, schema, |schema| {
        let mut names: Vec<&str> = Column::ALL
            .iter()
            .map(|c| match c {
                Column::Path if has_dirs(schema) => "d.path",
                c if c.in_schema(schema) => c.name(),
                _ => "NULL",
            })
            .collect();
        names.push(if has_dirs(schema) { "e.name" } else { "NULL" });
        names.join(", ")
    })
}

/// Where a row read with [`list`] has the entry's name: NULL when the path
/// column holds the whole path.
pub const NAME_AT: usize = Column::ALL.len();

/// The queries of entries: every column, made once per process (the daemon
/// reads one entry per path that changes).
#[derive(Clone, Copy)]
pub enum Select {
    /// All of them, in the file's order: path byte order up to schema 2,
    /// [`tree_order`] from schema 3 (whose path order is
    /// `baseline::path_order`'s).
    All,
    /// The one at the path [`key`] gives.
    One,
    /// Up to schema 2: everything whose path starts with `?1` (a
    /// directory's path and a `/`), up to (not including) `?2`, in path
    /// order. (Schema 3 reads below a directory with `PathOrder`.)
    Below,
    /// All of them, in the file's order, with only the columns the file's
    /// schema has, each value as stored (schema 3: the directory's path
    /// and the name apart, so that neither the split nor a type can change
    /// unseen): what the seal digests, unchanged since that schema.
    Sealed,
}

impl Select {
    pub fn sql(self, schema: i64) -> &'static str {
        static SQL: OnceLock<Vec<[String; 4]>> = OnceLock::new();
        let [all, one, below, sealed] = per_schema(&SQL, schema, |schema| {
            let (tables, _) = from(schema);
            let select = |tail: &str| format!("SELECT {} FROM {tables} {tail}", list(schema));
            let present: Vec<&str> = Column::ALL
                .iter()
                .filter(|c| c.in_schema(schema))
                .map(|c| match c {
                    Column::Path if has_dirs(schema) => "d.path, e.name",
                    c => c.name(),
                })
                .collect();
            let sealed = |order: &str| {
                format!(
                    "SELECT {} FROM {tables} ORDER BY {order}",
                    present.join(", ")
                )
            };
            if has_dirs(schema) {
                [
                    select("ORDER BY d.path, e.name"),
                    select("WHERE d.path = ?1 AND e.name = ?2"),
                    String::new(),
                    sealed("d.path, e.name"),
                ]
            } else {
                [
                    select("ORDER BY path"),
                    select("WHERE path = ?1"),
                    select("WHERE path >= ?1 AND path < ?2 ORDER BY path"),
                    sealed("path"),
                ]
            }
        });
        match self {
            Select::All => all,
            Select::One => one,
            Select::Below if has_dirs(schema) => {
                unreachable!("schema 3 reads below a directory with PathOrder")
            }
            Select::Below => below,
            Select::Sealed => sealed,
        }
    }
}

/// How many entries of one directory [`dir_chunk`] reads at a time: most
/// directories hold fewer.
pub const DIR_CHUNK_ROWS: usize = 256;

/// Schema 3's entries of the directory part `?1`, by name, at most
/// [`DIR_CHUNK_ROWS`] of them; `after` a name: those after `?2`.
pub fn dir_chunk(after: bool) -> &'static str {
    static SQL: OnceLock<[String; 2]> = OnceLock::new();
    let [first, next] = SQL.get_or_init(|| {
        let (tables, _) = from(3);
        let select = |filter: &str| {
            format!(
                "SELECT {} FROM {tables} WHERE d.path = ?1{filter} ORDER BY e.name \
                 LIMIT {DIR_CHUNK_ROWS}",
                list(3),
            )
        };
        [select(""), select(" AND e.name > ?2")]
    });
    if after { next } else { first }
}

/// The parameters of [`Select::One`] for `path` in `schema`.
pub fn key(schema: i64, path: &[u8]) -> Vec<&[u8]> {
    if has_dirs(schema) {
        let (dir, name) = split(path);
        vec![dir, name]
    } else {
        vec![path]
    }
}

/// The `CREATE TABLE` statements of the entries (and, from schema 3, of
/// their directories) in `schema`.
pub fn create_table(schema: i64) -> &'static str {
    static CREATE: OnceLock<Vec<String>> = OnceLock::new();
    per_schema::<String>(&CREATE, schema, |schema| {
        let mut columns: Vec<String> = Column::ALL
            .iter()
            .filter(|c| c.in_schema(schema))
            .map(|c| match c {
                Column::Path if has_dirs(schema) => {
                    "    dir INTEGER NOT NULL,\n    name BLOB NOT NULL".to_string()
                }
                c => format!("    {} {}", c.name(), c.spec().1),
            })
            .collect();
        if has_dirs(schema) {
            columns.push("    PRIMARY KEY (dir, name)".into());
        }
        let entries = format!(
            "CREATE TABLE entries (\n{}\n) WITHOUT ROWID;\n",
            columns.join(",\n")
        );
        if has_dirs(schema) {
            format!("{CREATE_DIRS}{entries}")
        } else {
            entries
        }
    })
}

/// `INSERT INTO entries (dir, name, <every other column>) VALUES (?1, ...)`,
/// in the schema this version writes: the directory's id, the name, then
/// the columns of [`Column::ALL`] after the path.
pub fn insert() -> &'static str {
    static INSERT: OnceLock<String> = OnceLock::new();
    INSERT.get_or_init(|| {
        let mut names = vec!["dir", "name"];
        names.extend(Column::ALL[1..].iter().map(|c| c.name()));
        let params: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO entries ({}) VALUES ({})",
            names.join(", "),
            params.join(", ")
        )
    })
}

/// `INSERT INTO dirs (path, id) VALUES (?1, ?2)`.
pub const INSERT_DIR: &str = "INSERT INTO dirs (path, id) VALUES (?1, ?2)";

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
        assert!(list(1).ends_with("trusted, NULL, NULL, NULL"));
        // What the seal of a schema-1 baseline digests, exactly as before
        // schema 2: its signatures still verify.
        assert_eq!(
            Select::Sealed.sql(1),
            "SELECT path, rule, attrs, type, size, mtime_ns, ctime_ns, inode, dev, mode, uid, \
             gid, nlink, link, hash, xattrs, problem, reason, prefix_hash, trusted FROM entries \
             ORDER BY path"
        );
    }

    #[test]
    fn a_path_splits_into_directory_and_name_and_back() {
        for (path, dir, name) in [
            (
                &b"/etc/ssh/sshd_config"[..],
                &b"/etc/ssh/"[..],
                &b"sshd_config"[..],
            ),
            (b"/etc", b"/", b"etc"),
            (b"/", b"/", b""),
            (b"relative", b"", b"relative"),
            (b"/a/\xff\xfe", b"/a/", b"\xff\xfe"),
        ] {
            assert_eq!(split(path), (dir, name));
            assert_eq!([dir, name].concat(), path);
        }
    }

    /// A directory's entries come together, before those below it, even
    /// where a sibling's name continues the directory's with a byte that
    /// sorts before `/` (`b.c` beside `b/`).
    #[test]
    fn tree_order_groups_each_directory() {
        let mut paths: Vec<&[u8]> = vec![b"/r/b/x", b"/r/b0", b"/r/b.c", b"/r/b", b"/r", b"/"];
        paths.sort_by(|a, b| tree_order(a, b));
        assert_eq!(
            paths,
            [&b"/"[..], b"/r", b"/r/b", b"/r/b.c", b"/r/b0", b"/r/b/x"]
        );
    }

    #[test]
    fn schema_3_keeps_directories_apart() {
        let create = create_table(3);
        assert!(create.starts_with("CREATE TABLE dirs ("), "{create}");
        assert!(
            create.contains("dir INTEGER NOT NULL,\n    name BLOB NOT NULL,\n    rule TEXT"),
            "{create}"
        );
        assert!(
            create.ends_with("PRIMARY KEY (dir, name)\n) WITHOUT ROWID;\n"),
            "{create}"
        );
        assert!(list(3).starts_with("d.path, rule,") && list(3).ends_with(", e.name"));
        assert!(insert().starts_with("INSERT INTO entries (dir, name, rule, attrs,"));
        assert!(
            Select::Sealed
                .sql(3)
                .starts_with("SELECT d.path, e.name, rule,")
        );
    }
}
