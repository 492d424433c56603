//! SQLite files from untrusted hands: opened as data, never code, and
//! their schema compared with the one tripseal makes.

use rusqlite::Connection;

/// One row of `sqlite_master`: type, name, and its SQL without comments and
/// with runs of white space collapsed.
pub type SchemaRow = (String, String, String);

/// Treats the file as data, never code: no function a schema names is
/// trusted, triggers and views never run, and the schema itself cannot be
/// written through SQL.
pub fn harden(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::config::DbConfig;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_TRIGGER, false)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_VIEW, false)?;
    // A statement's plan never depends on the values bound to it. Without
    // this the planner marks a parameter compared with a key (its value
    // guides an estimate), and a statement whose bindings rusqlite's cache
    // clears is prepared again at its next use: a statement run once per
    // directory was parsed and planned each time (a third of `check`).
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    Ok(())
}

/// The rows of `sqlite_master` of `conn`, in (type, name) order.
pub fn schema_rows(conn: &Connection) -> rusqlite::Result<Vec<SchemaRow>> {
    let mut stmt = conn.prepare("SELECT type, name, sql FROM sqlite_master ORDER BY type, name")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            normalize_sql(r.get::<_, Option<String>>(2)?.as_deref().unwrap_or("")),
        ))
    })?;
    rows.collect()
}

/// The schema rows that running `statements` on an empty database makes:
/// what tripseal's own files look like, to compare a found one with.
pub fn schema_made_by(statements: &[&str]) -> Vec<SchemaRow> {
    let conn = Connection::open_in_memory().expect("an in-memory database opens");
    for sql in statements {
        conn.execute_batch(sql)
            .expect("tripseal's own schema is valid");
    }
    schema_rows(&conn).expect("an in-memory schema reads")
}

/// SQL without `--` comments and with white space collapsed, so that the
/// comments of tripseal's schema can change without refusing older files.
fn normalize_sql(sql: &str) -> String {
    sql.lines()
        .map(|l| l.split_once("--").map_or(l, |(code, _)| code))
        // ASCII white space only: SQLite takes U+00A0 and the like as part
        // of an identifier, so they must not vanish here.
        .flat_map(str::split_ascii_whitespace)
        .collect::<Vec<_>>()
        .join(" ")
}
