//! A tenant's tables as [`PortableObject`]s and back: export (to a SQLite file), import (from
//! one) and moves between tiers are made of these. The platform runs this SQL on the tenant's
//! own connection, never the app.

use capability_sql::SqlAdminError;
use capability_sql::portable::PortableObject;
use runtime::sql::SqlValue;

use crate::admin::{describe, quote};
use crate::values::{Param, Raw, decode};

fn storage(error: tokio_postgres::Error) -> SqlAdminError {
    SqlAdminError::Storage(describe(&error))
}

/// A query's rows as D1 values.
async fn read_all(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<(Vec<String>, Vec<Vec<SqlValue>>), SqlAdminError> {
    let prepared = client.prepare(sql).await.map_err(storage)?;
    let columns: Vec<String> = prepared.columns().iter().map(|column| column.name().to_owned()).collect();
    let mut rows = Vec::new();
    for row in client.query(&prepared, &[]).await.map_err(storage)? {
        let mut values = Vec::with_capacity(columns.len());
        for (index, column) in prepared.columns().iter().enumerate() {
            let raw: Raw<'_> = row.try_get(index).map_err(storage)?;
            values.push(
                decode(column.type_(), raw.0).map_err(|problem| {
                    SqlAdminError::Invalid(format!("the column {} holds {problem}", column.name()))
                })?,
            );
        }
        rows.push(values);
    }
    Ok((columns, rows))
}

/// The tenant's tables (with rows, keys and NOT NULL), in SQLite's dialect. Indexes, views and
/// other constraints stay behind: the export says so.
pub(crate) async fn dump(client: &tokio_postgres::Client) -> Result<Vec<PortableObject>, SqlAdminError> {
    let tables = client
        .query(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace \
             AND c.relkind = 'r' ORDER BY c.oid",
            &[],
        )
        .await
        .map_err(storage)?;
    let mut objects = Vec::new();
    for table in tables {
        let name: String = table.get(0);
        let columns = client
            .query(
                "SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attidentity <> '', a.attnotnull, \
                 coalesce((SELECT i.indisprimary FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary \
                           AND a.attnum = ANY(i.indkey)), false) \
                 FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = $1 \
                 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&name],
            )
            .await
            .map_err(storage)?;
        let mut definitions = Vec::new();
        let mut keys = Vec::new();
        for column in &columns {
            let (column_name, pg_type, identity, not_null, primary): (String, String, bool, bool, bool) =
                (column.get(0), column.get(1), column.get(2), column.get(3), column.get(4));
            let sqlite_type = sqlite_type(&pg_type);
            if identity && primary {
                definitions.push(format!("{} INTEGER PRIMARY KEY", quote(&column_name)));
                continue;
            }
            if primary {
                keys.push(quote(&column_name));
            }
            let null = if not_null { " NOT NULL" } else { "" };
            definitions.push(format!("{} {sqlite_type}{null}", quote(&column_name)));
        }
        if !keys.is_empty() {
            definitions.push(format!("PRIMARY KEY ({})", keys.join(", ")));
        }
        let (names, rows) = read_all(client, &format!("SELECT * FROM {}", quote(&name))).await?;
        objects.push(PortableObject {
            kind: "table".to_owned(),
            sql: format!("CREATE TABLE {} ({})", quote(&name), definitions.join(", ")),
            name,
            columns: names,
            rows,
        });
    }
    Ok(objects)
}

/// SQLite's type for a PostgreSQL column type, by the affinity it would get.
fn sqlite_type(pg_type: &str) -> &'static str {
    match pg_type.split('(').next().unwrap_or_default() {
        "bigint" | "integer" | "smallint" | "boolean" => "INTEGER",
        "double precision" | "real" => "REAL",
        "numeric" => "NUMERIC",
        "bytea" => "BLOB",
        _ => "TEXT",
    }
}

/// Creates `objects` in the tenant with their rows, inside the caller's transaction; answers
/// the tables. Refused whole when a name is taken or a definition does not translate.
pub(crate) async fn load(
    client: &tokio_postgres::Client,
    objects: &[PortableObject],
) -> Result<Vec<String>, SqlAdminError> {
    let existing: Vec<String> = client
        .query(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace \
             AND c.relkind IN ('r', 'v', 'i', 'm')",
            &[],
        )
        .await
        .map_err(storage)?
        .into_iter()
        .map(|row| row.get(0))
        .collect();
    let taken: Vec<&str> = objects
        .iter()
        .map(|object| object.name.as_str())
        .filter(|name| existing.iter().any(|existing| existing.eq_ignore_ascii_case(name)))
        .collect();
    if !taken.is_empty() {
        return Err(SqlAdminError::Invalid(format!(
            "the database already has {}; an import adds objects and never replaces them, so drop or rename those first",
            taken.join(", ")
        )));
    }
    let mut tables = Vec::new();
    for object in objects {
        let statement = crate::translate::translate(&object.sql)
            .ok()
            .filter(|statements| statements.len() == 1)
            .and_then(|mut statements| statements.pop())
            .ok_or_else(|| {
                SqlAdminError::Invalid(format!(
                    "the file's {} {} cannot be made on PostgreSQL (only tables, indexes and views in what the \
                     SQL translation takes); it is not imported",
                    object.kind, object.name
                ))
            })?;
        client.batch_execute(&statement.sql).await.map_err(|error| {
            SqlAdminError::Invalid(format!(
                "the file's {} {} was refused: {}",
                object.kind,
                object.name,
                describe(&error)
            ))
        })?;
        if object.kind != "table" {
            continue;
        }
        let name = table_name(client, &object.name).await?;
        if !object.rows.is_empty() {
            let columns: Vec<String> = object.columns.iter().map(|column| quote(column)).collect();
            let marks: Vec<String> = (1..=columns.len()).map(|n| format!("${n}")).collect();
            let insert = client
                .prepare(&format!(
                    "INSERT INTO {} ({}) VALUES ({})",
                    quote(&name),
                    columns.join(", "),
                    marks.join(", ")
                ))
                .await
                .map_err(|error| {
                    SqlAdminError::Invalid(format!("the rows of {name} were refused: {}", describe(&error)))
                })?;
            for row in &object.rows {
                client.execute_raw(&insert, row.iter().map(Param)).await.map_err(|error| {
                    SqlAdminError::Invalid(format!("a row of {name} was refused: {}", describe(&error)))
                })?;
            }
        }
        // Ids carry on after the highest imported one.
        let identities = client
            .query(
                "SELECT a.attname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = $1 AND a.attidentity <> ''",
                &[&name],
            )
            .await
            .map_err(storage)?;
        for identity in identities {
            let column: String = identity.get(0);
            client
                .execute(
                    &format!(
                        "SELECT setval(pg_get_serial_sequence($1, $2), coalesce((SELECT max({}) FROM {}), 0) + 1, false)",
                        quote(&column),
                        quote(&name)
                    ),
                    &[&quote(&name), &column],
                )
                .await
                .map_err(storage)?;
        }
        tables.push(name);
    }
    Ok(tables)
}

/// The name PostgreSQL gave the table created for `name` (folded to lower case unless the
/// translation quoted it).
async fn table_name(client: &tokio_postgres::Client, name: &str) -> Result<String, SqlAdminError> {
    let found = client
        .query_opt(
            "SELECT c.relname FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace \
             AND c.relkind = 'r' AND c.relname::text IN ($1::text, lower($1::text)) \
             ORDER BY c.relname::text = $1::text DESC LIMIT 1",
            &[&name],
        )
        .await
        .map_err(storage)?;
    found.map(|row| row.get(0)).ok_or_else(|| SqlAdminError::Storage(format!("the table {name} was not made")))
}

/// Each table's rows as a digest independent of their order: what a move compares before it
/// switches.
pub(crate) fn checksums(objects: &[PortableObject]) -> Vec<(String, usize, [u8; 32])> {
    use sha2::Digest;
    let mut sums: Vec<(String, usize, [u8; 32])> = objects
        .iter()
        .filter(|object| object.kind == "table")
        .map(|object| {
            let mut rows: Vec<String> = object.rows.iter().map(|row| format!("{row:?}")).collect();
            rows.sort();
            let mut digest = sha2::Sha256::new();
            for row in &rows {
                digest.update(row.as_bytes());
                digest.update([0]);
            }
            (object.name.to_ascii_lowercase(), rows.len(), digest.finalize().into())
        })
        .collect();
    sums.sort();
    sums
}
