//! A database's objects and rows in a form any backend can take: what export and import move
//! between a SQLite file (the export format, whatever the backend) and another backend. Object
//! definitions are in SQLite's dialect, the apps' own.

use std::path::Path;

use runtime::sql::SqlValue;
use rusqlite::{Connection, OpenFlags};

use crate::{SqlAdminError, copy};

/// A table (with its rows), index, view or trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct PortableObject {
    /// `table`, `index`, `view` or `trigger`.
    pub kind: String,
    pub name: String,
    /// Its `CREATE` statement, in SQLite's dialect.
    pub sql: String,
    /// A table's columns, and its rows in that order.
    pub columns: Vec<String>,
    pub rows: Vec<Vec<SqlValue>>,
}

/// The objects of a SQLite database file given by a user, checked first: a sound database,
/// each definition one `CREATE` of its kind. Tables come first, then indexes, views, triggers.
pub fn read_file(file: &[u8], scratch_dir: &Path) -> Result<Vec<PortableObject>, SqlAdminError> {
    let scratch = tempfile::Builder::new().prefix(".scratch-").suffix(".sqlite").tempfile_in(scratch_dir)?;
    std::fs::write(scratch.path(), file)?;
    copy::check_sound(scratch.path())?;
    let conn = Connection::open_with_flags(
        scratch.path(),
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    crate::database::harden(&conn)?;
    // Each definition is checked by making it in an empty scratch database, in order.
    let check = Connection::open_in_memory()?;
    crate::database::harden(&check)?;
    let mut objects = Vec::new();
    for object in copy::objects(&conn, "main")? {
        copy::check_definition(&check, &object)?;
        check.execute_batch(&object.sql)?;
        let (mut columns, mut rows) = (Vec::new(), Vec::new());
        if object.kind == "table" {
            let mut statement = conn.prepare(&format!("SELECT * FROM \"{}\"", object.name.replace('"', "\"\"")))?;
            columns = statement.column_names().into_iter().map(str::to_owned).collect();
            let width = columns.len();
            let mut cursor = statement.query([])?;
            while let Some(row) = cursor.next()? {
                let mut values = Vec::with_capacity(width);
                for index in 0..width {
                    values.push(match row.get_ref(index)? {
                        rusqlite::types::ValueRef::Null => SqlValue::Null,
                        rusqlite::types::ValueRef::Integer(n) => SqlValue::Integer(n),
                        rusqlite::types::ValueRef::Real(x) => SqlValue::Real(x),
                        rusqlite::types::ValueRef::Text(text) => {
                            SqlValue::Text(String::from_utf8_lossy(text).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(bytes) => SqlValue::Blob(bytes::Bytes::copy_from_slice(bytes)),
                    });
                }
                rows.push(values);
            }
        }
        objects.push(PortableObject { kind: object.kind, name: object.name, sql: object.sql, columns, rows });
    }
    Ok(objects)
}

/// A SQLite database file holding `objects`, made in a scratch file under `scratch_dir`.
pub fn write_file(objects: &[PortableObject], scratch_dir: &Path) -> Result<Vec<u8>, SqlAdminError> {
    let scratch = tempfile::Builder::new().prefix(".scratch-").suffix(".sqlite").tempfile_in(scratch_dir)?;
    let conn = Connection::open(scratch.path())?;
    crate::database::harden(&conn)?;
    conn.execute_batch("BEGIN")?;
    for object in objects {
        conn.execute_batch(&object.sql)?;
        if object.kind != "table" || object.rows.is_empty() {
            continue;
        }
        let names: Vec<String> =
            object.columns.iter().map(|column| format!("\"{}\"", column.replace('"', "\"\""))).collect();
        let marks: Vec<String> = (1..=names.len()).map(|n| format!("?{n}")).collect();
        let mut insert = conn.prepare(&format!(
            "INSERT INTO \"{}\" ({}) VALUES ({})",
            object.name.replace('"', "\"\""),
            names.join(", "),
            marks.join(", ")
        ))?;
        for row in &object.rows {
            let values = row.iter().map(|value| match value {
                SqlValue::Null => rusqlite::types::Value::Null,
                SqlValue::Integer(n) => rusqlite::types::Value::Integer(*n),
                SqlValue::Real(x) => rusqlite::types::Value::Real(*x),
                SqlValue::Text(text) => rusqlite::types::Value::Text(text.clone()),
                SqlValue::Blob(bytes) => rusqlite::types::Value::Blob(bytes.to_vec()),
            });
            insert.execute(rusqlite::params_from_iter(values))?;
        }
    }
    conn.execute_batch("COMMIT")?;
    drop(conn);
    Ok(std::fs::read(scratch.path())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_and_rows_go_through_a_file_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let objects = vec![
            PortableObject {
                kind: "table".into(),
                name: "expenses".into(),
                sql: "CREATE TABLE expenses (id INTEGER PRIMARY KEY, who TEXT, cents INTEGER, photo BLOB, rate REAL)"
                    .into(),
                columns: vec!["id".into(), "who".into(), "cents".into(), "photo".into(), "rate".into()],
                rows: vec![vec![
                    SqlValue::Integer(1),
                    SqlValue::Text("ana".into()),
                    SqlValue::Integer(1250),
                    SqlValue::Blob(bytes::Bytes::from_static(&[1, 2])),
                    SqlValue::Real(0.5),
                ]],
            },
            PortableObject {
                kind: "index".into(),
                name: "by_who".into(),
                sql: "CREATE INDEX by_who ON expenses (who)".into(),
                columns: Vec::new(),
                rows: Vec::new(),
            },
        ];
        let file = write_file(&objects, dir.path()).unwrap();
        assert!(file.starts_with(b"SQLite format 3\0"));
        assert_eq!(read_file(&file, dir.path()).unwrap(), objects);
        assert!(matches!(read_file(b"not a database", dir.path()), Err(SqlAdminError::Invalid(_))));
    }
}
