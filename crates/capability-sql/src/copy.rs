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
/// platform's, not the shadow tables a virtual table keeps; tables first, virtual ones first
/// among them.
pub(crate) fn objects(conn: &Connection, schema: &str) -> rusqlite::Result<Vec<Object>> {
    let mut statement = conn.prepare(&format!(
        "SELECT type, name, sql FROM \"{schema}\".sqlite_schema \
         WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name NOT LIKE '\\_terrarium%' ESCAPE '\\' \
         ORDER BY CASE WHEN type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%' THEN 0 WHEN type = 'table' THEN 1 \
         WHEN type = 'index' THEN 2 WHEN type = 'view' THEN 3 ELSE 4 END, rowid"
    ))?;
    let all: Vec<Object> = statement
        .query_map([], |row| Ok(Object { kind: row.get(0)?, name: row.get(1)?, sql: row.get(2)? }))?
        .collect::<rusqlite::Result<_>>()?;
    let virtual_tables: Vec<String> = all
        .iter()
        .filter(|object| object.sql.to_ascii_uppercase().starts_with("CREATE VIRTUAL TABLE"))
        .map(|object| format!("{}_", object.name.to_ascii_lowercase()))
        .collect();
    Ok(all
        .into_iter()
        .filter(|object| {
            let lower = object.name.to_ascii_lowercase();
            !(object.kind == "table" && virtual_tables.iter().any(|prefix| lower.starts_with(prefix)))
        })
        .collect())
}

/// Copies the objects of the attached `src` (all, or those named in `only`) into `main` with
/// their rows, inside the caller's transaction; answers the tables copied. A name `main`
/// already has stops the copy before anything is written.
pub(crate) fn copy_objects(conn: &Connection, only: Option<&HashSet<String>>) -> Result<Vec<String>, SqlAdminError> {
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
    let mut tables = Vec::new();
    for object in &wanted {
        conn.execute_batch(&object.sql)?;
        if object.kind == "table" {
            let name = object.name.replace('"', "\"\"");
            conn.execute(&format!("INSERT INTO main.\"{name}\" SELECT * FROM src.\"{name}\""), [])?;
            tables.push(object.name.clone());
        }
    }
    let has_sequence: bool =
        conn.query_row("SELECT count(*) > 0 FROM src.sqlite_schema WHERE name = 'sqlite_sequence'", [], |row| {
            row.get(0)
        })?;
    if has_sequence && !tables.is_empty() {
        let names = serde_json::to_string(&tables).unwrap_or_default();
        conn.execute(
            "INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM src.sqlite_sequence \
             WHERE name IN (SELECT value FROM json_each(?1))",
            [names],
        )?;
    }
    Ok(tables)
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
