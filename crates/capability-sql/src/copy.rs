//! Copying an app's objects between database files: what export, import and moving between
//! tiers are made of. The platform's connections do this work, never an app's.

use std::collections::HashSet;
use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::SqlAdminError;

/// A table, index, view or trigger as `sqlite_schema` describes it.
pub(crate) struct Object {
    pub kind: String,
    pub name: String,
    pub sql: String,
}

/// The user's objects of `schema` (`main` or an attached name): not SQLite's own, not the
/// platform's, not the shadow tables a virtual table keeps (as SQLite lists them); tables
/// first, virtual ones first among them.
pub(crate) fn objects(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<Object>> {
    let shadows: HashSet<String> = conn
        .prepare("SELECT name FROM pragma_table_list WHERE schema = ?1 AND type = 'shadow'")?
        .query_map([schema], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut statement = conn.prepare(&format!(
        "SELECT type, name, sql FROM \"{schema}\".sqlite_schema \
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_terrarium%' ESCAPE '\\' \
         ORDER BY CASE WHEN type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' THEN 0 WHEN type = 'table' THEN 1 \
         WHEN type = 'index' THEN 2 WHEN type = 'view' THEN 3 ELSE 4 END, rowid"
    ))?;
    let all: Vec<Object> = statement
        .query_map([], |row| Ok(Object { kind: row.get(0)?, name: row.get(1)?, sql: row.get(2)? }))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(all.into_iter().filter(|object| !shadows.contains(&object.name)).collect())
}

impl Object {
    fn is_virtual(&self) -> bool {
        self.sql.trim_start().get(..20).is_some_and(|start| start.eq_ignore_ascii_case("CREATE VIRTUAL TABLE"))
    }
}

/// An imported object's SQL must be one `CREATE` of its own kind: a crafted file's catalog can
/// hold anything after the first statement, which SQLite itself ignores but a copy would run.
pub(crate) fn check_definition(conn: &Connection, object: &Object) -> Result<(), SqlAdminError> {
    let refuse = |why: &str| {
        SqlAdminError::Invalid(format!(
            "the file's definition of {} {} {why}; it is not imported",
            object.kind, object.name
        ))
    };
    let words: Vec<String> = object.sql.split_whitespace().take(4).map(|word| word.to_ascii_uppercase()).collect();
    let kind_ok = match object.kind.as_str() {
        "table" => words.get(1).is_some_and(|word| word == "TABLE" || word == "VIRTUAL"),
        "index" => words.get(1).is_some_and(|word| word == "INDEX" || word == "UNIQUE"),
        "view" => words.get(1).is_some_and(|word| word == "VIEW"),
        "trigger" => words.get(1).is_some_and(|word| word == "TRIGGER"),
        _ => false,
    };
    if words.first().map(String::as_str) != Some("CREATE") || !kind_ok {
        return Err(refuse("is not a CREATE of its kind"));
    }
    if object.is_virtual() && !object.sql.to_ascii_lowercase().contains("using fts5") {
        return Err(refuse("is a virtual table of another module than fts5"));
    }
    // One statement only: a tail is refused by prepare (which runs the app's authorizer).
    conn.prepare(&object.sql).map(drop).map_err(|error| match error {
        rusqlite::Error::MultipleStatement => refuse("holds more than one statement"),
        other => refuse(&format!("cannot be made here ({other})")),
    })
}

/// Copies the objects of the attached `src` (all, or those named in `only`) into `main` with
/// their rows, inside the caller's transaction; answers the tables copied. A name `main`
/// already has stops the copy before anything is written. `create` runs each object's
/// definition: an import runs it as the app (under its authorizer), so a definition cannot
/// reach what the app could not.
pub(crate) fn copy_objects(
    conn: &Connection,
    only: Option<&HashSet<String>>,
    create: &dyn Fn(&str) -> rusqlite::Result<()>,
    imported: bool,
) -> Result<Vec<String>, SqlAdminError> {
    let wanted: Vec<Object> = objects(conn, "src")?
        .into_iter()
        .filter(|object| only.is_none_or(|only| only.contains(&object.name.to_ascii_lowercase())))
        .collect();
    let existing: HashSet<String> =
        objects(conn, "main")?.into_iter().map(|object| object.name.to_ascii_lowercase()).collect();
    let taken: Vec<&str> = wanted
        .iter()
        .filter(|object| existing.contains(&object.name.to_ascii_lowercase()))
        .map(|object| object.name.as_str())
        .collect();
    if !taken.is_empty() {
        return Err(SqlAdminError::Invalid(format!(
            "the database already has {}; an import adds objects and never replaces them, so drop or rename those first",
            taken.join(", ")
        )));
    }
    // A contentless fts5 table keeps its text only in its index, which a copy of rows cannot
    // carry: say so rather than copy an empty index.
    if let Some(contentless) = wanted.iter().find(|object| {
        let lower = object.sql.to_ascii_lowercase().replace(' ', "");
        object.is_virtual() && (lower.contains("content=''") || lower.contains("content=\"\""))
    }) {
        return Err(SqlAdminError::Invalid(format!(
            "{} is a contentless fts5 table, whose index a copy cannot carry; drop it (and build it again after the copy) first",
            contentless.name
        )));
    }
    // Rows go in whatever order the tables come; foreign keys are checked at the commit.
    conn.pragma_update(None, "defer_foreign_keys", true)?;
    let mut tables = Vec::new();
    for object in &wanted {
        if imported {
            check_definition(conn, object)?;
        }
        create(&object.sql).map_err(|error| match error {
            rusqlite::Error::SqliteFailure(failure, Some(message))
                if failure.code == rusqlite::ErrorCode::AuthorizationForStatementDenied =>
            {
                SqlAdminError::Invalid(format!("the file's {} {} is refused: {message}", object.kind, object.name))
            }
            other => other.into(),
        })?;
        if object.kind == "table" {
            copy_rows(conn, object)?;
            tables.push(object.name.clone());
        }
    }
    let has_sequence: bool =
        conn.query_row("SELECT count(*) > 0 FROM src.sqlite_schema WHERE name = 'sqlite_sequence'", [], |row| {
            row.get(0)
        })?;
    if has_sequence && !tables.is_empty() {
        // The copied rows made their own counter rows: raise them to the source's high-water marks.
        let names = serde_json::to_string(&tables).unwrap_or_default();
        conn.execute(
            "UPDATE main.sqlite_sequence SET seq = max(seq, (SELECT seq FROM src.sqlite_sequence s WHERE s.name = main.sqlite_sequence.name)) \
             WHERE name IN (SELECT value FROM json_each(?1)) AND name IN (SELECT name FROM src.sqlite_sequence)",
            [&names],
        )?;
        conn.execute(
            "INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM src.sqlite_sequence \
             WHERE name IN (SELECT value FROM json_each(?1)) AND name NOT IN (SELECT name FROM main.sqlite_sequence)",
            [&names],
        )?;
    }
    let violations: i64 = conn.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |row| row.get(0))?;
    if violations > 0 {
        return Err(SqlAdminError::Invalid(format!(
            "the copied rows break {violations} foreign key reference(s); nothing was imported"
        )));
    }
    Ok(tables)
}

/// A table's rows with their rowids (an fts5 index or a join on rowid stays right), without
/// generated columns (which are computed again).
fn copy_rows(conn: &Connection, object: &Object) -> rusqlite::Result<()> {
    let name = object.name.replace('"', "\"\"");
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_xinfo(?1, 'src') WHERE hidden IN (0, 1) AND hidden = 0")?
        .query_map([&object.name], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<_>>()?;
    let without_rowid: bool = conn
        .query_row("SELECT wr FROM pragma_table_list WHERE schema = 'src' AND name = ?1", [&object.name], |row| {
            row.get::<_, i64>(0)
        })
        .map(|wr| wr != 0)
        .unwrap_or(false);
    let quoted: Vec<String> = columns.iter().map(|column| format!("\"{}\"", column.replace('"', "\"\""))).collect();
    let (into, from) = match (without_rowid, object.is_virtual()) {
        (true, _) => (quoted.join(", "), quoted.join(", ")),
        (false, _) => (format!("rowid, {}", quoted.join(", ")), format!("rowid, {}", quoted.join(", "))),
    };
    conn.execute(&format!("INSERT INTO main.\"{name}\" ({into}) SELECT {from} FROM src.\"{name}\""), [])?;
    Ok(())
}

/// A file an import may read: a SQLite database that passes SQLite's integrity check.
pub(crate) fn check_sound(path: &Path) -> Result<(), SqlAdminError> {
    let not_sqlite = || {
        SqlAdminError::Invalid(
            "the file is not a sound SQLite database; give one made by `terrarium data export --sql` or by sqlite3"
                .to_owned(),
        )
    };
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|_| not_sqlite())?;
    crate::database::harden(&conn).map_err(|_| not_sqlite())?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).map_err(|_| not_sqlite())?;
    match verdict == "ok" {
        true => Ok(()),
        false => Err(not_sqlite()),
    }
}

/// Drops what `app` created in a namespace's `schema` file; answers the names dropped.
pub(crate) fn drop_owned(path: &Path, app: &str) -> Result<Vec<String>, SqlAdminError> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    crate::database::harden(&conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch("BEGIN IMMEDIATE")?;
    let dropped = (|| -> rusqlite::Result<Vec<String>> {
        let owned: HashSet<String> = conn
            .prepare("SELECT name FROM _terrarium_owners WHERE app = ?1")?
            .query_map([app], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<_>>()?;
        let mut dropped = Vec::new();
        // Views and triggers go with a DROP of their own; indexes and triggers go with their table.
        for object in objects(&conn, "main")?.into_iter().rev() {
            if !owned.contains(&object.name.to_ascii_lowercase()) || object.kind == "index" || object.kind == "trigger"
            {
                continue;
            }
            let name = object.name.replace('"', "\"\"");
            conn.execute_batch(&format!("DROP {} IF EXISTS \"{name}\"", object.kind.to_ascii_uppercase()))?;
            if object.kind == "table" {
                dropped.push(object.name);
            }
        }
        conn.execute("DELETE FROM _terrarium_owners WHERE app = ?1", [app])?;
        Ok(dropped)
    })();
    match dropped {
        Ok(dropped) => {
            conn.execute_batch("COMMIT")?;
            Ok(dropped)
        }
        Err(error) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(error.into())
        }
    }
}

/// Compares every copied table's rows in `main` and the attached `src` by checksum (rows in
/// rowid order, or in full order for a table without rowid); names the first that differs.
pub(crate) fn verify_copies(conn: &Connection, tables: &[String]) -> rusqlite::Result<Result<(), SqlAdminError>> {
    for table in tables {
        let name = table.replace('"', "\"\"");
        let [ours, theirs] = ["main", "src"].map(|schema| table_checksum(conn, schema, &name));
        if ours? != theirs? {
            return Ok(Err(SqlAdminError::Storage(format!("the copy of table {table} differs from the original"))));
        }
    }
    Ok(Ok(()))
}

/// A checksum of a table's rows, each value with its type.
fn table_checksum(conn: &Connection, schema: &str, table: &str) -> rusqlite::Result<(u64, [u8; 32])> {
    use sha2::Digest;
    let width = conn.prepare(&format!("SELECT * FROM \"{schema}\".\"{table}\""))?.column_count();
    let order: Vec<String> = (1..=width.max(1)).map(|column| column.to_string()).collect();
    let mut statement =
        conn.prepare(&format!("SELECT * FROM \"{schema}\".\"{table}\" ORDER BY {}", order.join(", ")))?;
    let mut hash = sha2::Sha256::new();
    let mut rows = statement.query([])?;
    let mut count = 0u64;
    while let Some(row) = rows.next()? {
        count += 1;
        for index in 0..width {
            match row.get_ref(index)? {
                rusqlite::types::ValueRef::Null => hash.update(b"n"),
                rusqlite::types::ValueRef::Integer(number) => {
                    hash.update(b"i");
                    hash.update(number.to_le_bytes());
                }
                rusqlite::types::ValueRef::Real(number) => {
                    hash.update(b"r");
                    hash.update(number.to_le_bytes());
                }
                rusqlite::types::ValueRef::Text(text) => {
                    hash.update(b"t");
                    hash.update((text.len() as u64).to_le_bytes());
                    hash.update(text);
                }
                rusqlite::types::ValueRef::Blob(blob) => {
                    hash.update(b"b");
                    hash.update((blob.len() as u64).to_le_bytes());
                    hash.update(blob);
                }
            }
        }
    }
    Ok((count, hash.finalize().into()))
}
