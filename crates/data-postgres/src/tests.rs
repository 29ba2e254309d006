//! The service against the PostgreSQL `scripts/test` starts (its socket folder in
//! `TERRARIUM_TEST_POSTGRES`): what the end-to-end suite cannot reach through HTTP.

use std::sync::Arc;

use capability_sql::config::SqlSection;
use capability_sql::{DatabaseKeys, FileKey, SqlService};
use deployment::{AppKey, SqlDatabase, SqlTier};
use futures::future::BoxFuture;
use runtime::sql::{SqlAnswer, SqlHost, SqlOp, SqlResult, SqlStatement, SqlValue};

use super::PgSql;

struct TestKeys;

impl DatabaseKeys for TestKeys {
    fn key(&self, namespace: &str, purpose: &str) -> BoxFuture<'static, Result<FileKey, String>> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(format!("{namespace}\0{purpose}").as_bytes()).into();
        Box::pin(async move { Ok(zeroize::Zeroizing::new(digest)) })
    }
}

fn socket_folder() -> String {
    std::env::var("TERRARIUM_TEST_POSTGRES").expect(
        "TERRARIUM_TEST_POSTGRES names the socket folder of the PostgreSQL scripts/test starts; run the suite with scripts/test",
    )
}

/// A client as the cluster's superuser, on `database`.
async fn superuser(database: &str) -> tokio_postgres::Client {
    let url = format!("postgres://terrarium@localhost/{database}?host={}", socket_folder());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls).await.expect("PostgreSQL answers");
    tokio::spawn(connection);
    client
}

/// A service on a database of its own.
async fn service(dir: &std::path::Path) -> (PgSql, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!("dp_{}_{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    superuser("postgres").await.batch_execute(&format!("CREATE DATABASE {name}")).await.unwrap();
    let url = format!("postgres://terrarium@localhost/{name}?host={}", socket_folder());
    let section = SqlSection::default();
    let sealed =
        Arc::new(capability_sql::Sql::new(&section, dir, Arc::new(runtime::NoDataMeter)).with_keys(Arc::new(TestKeys)));
    let sealed: Arc<dyn SqlService> = Arc::new(sealed);
    let sql =
        PgSql::connect(&url, &section, dir, Arc::new(runtime::NoDataMeter), Arc::new(TestKeys), sealed).await.unwrap();
    (sql, name)
}

fn database(sql: &PgSql, namespace: &str, name: &str, isolation: SqlTier) -> Arc<dyn SqlHost> {
    let database = SqlDatabase { binding: "DB".into(), isolation, max_mib: None, restricted: false, encrypted: false };
    sql.for_app(&AppKey::new(namespace, name), &database).unwrap()
}

fn statement(sql: &str, params: Vec<SqlValue>) -> SqlStatement {
    SqlStatement { sql: sql.to_owned(), params }
}

async fn batch(db: &Arc<dyn SqlHost>, statements: Vec<SqlStatement>) -> Result<Vec<SqlResult>, String> {
    match db.call(SqlOp::Batch(statements)).await {
        Ok(SqlAnswer::Results(results)) => Ok(results),
        Ok(other) => panic!("a batch answered {other:?}"),
        Err(error) => Err(error.0),
    }
}

async fn one(db: &Arc<dyn SqlHost>, sql: &str, params: Vec<SqlValue>) -> SqlResult {
    let mut results = batch(db, vec![statement(sql, params)]).await.unwrap_or_else(|error| panic!("{sql}: {error}"));
    results.remove(0)
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

/// A call whose caller went away while its batch waited leaves nothing behind: the next call on
/// the same connection rolls the half-done batch back instead of committing it with its own.
#[tokio::test]
async fn a_batch_dropped_midway_is_rolled_back_not_committed_by_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let (sql, name) = service(dir.path()).await;
    let db = database(&sql, "team", "ledger", SqlTier::Isolated);
    one(&db, "CREATE TABLE entries (id INTEGER PRIMARY KEY, what TEXT)", vec![]).await;
    one(&db, "CREATE TABLE locked (id INTEGER PRIMARY KEY)", vec![]).await;

    // The platform holds a lock the batch's second statement waits on.
    let tenant = sql.0.tenant(&AppKey::new("team", "ledger"), SqlTier::Isolated);
    let holder = superuser(&tenant.database).await;
    holder.batch_execute("BEGIN; LOCK TABLE locked IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let waiting = tokio::spawn({
        let db = db.clone();
        async move {
            batch(
                &db,
                vec![
                    statement("INSERT INTO entries (what) VALUES ('half')", vec![]),
                    statement("INSERT INTO locked DEFAULT VALUES", vec![]),
                ],
            )
            .await
        }
    });
    // Until the server says the batch waits for the lock (bounded: 20 s of checks).
    let observer = superuser("postgres").await;
    let mut waits = false;
    for _ in 0..2000 {
        let row = observer
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1 AND wait_event_type = 'Lock'",
                &[&tenant.role],
            )
            .await
            .unwrap();
        if row.get::<_, i64>(0) > 0 {
            waits = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(waits, "the batch never reached the lock");
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    holder.batch_execute("COMMIT").await.unwrap();

    one(&db, "INSERT INTO entries (what) VALUES ('whole')", vec![]).await;
    let rows = one(&db, "SELECT what FROM entries ORDER BY id", vec![]).await.rows;
    assert_eq!(rows, [[text("whole")]], "the dropped batch's first insert must not be committed");
    let rows = one(&db, "SELECT count(*) AS n FROM locked", vec![]).await.rows;
    assert_eq!(rows, [[SqlValue::Integer(0)]]);
    drop(name);
}

/// `last_row_id` is the id of the row the insert made, in its own table: never the id another
/// table's insert drew, nor another app's of the namespace (under `shared`, one connection).
#[tokio::test]
async fn last_row_id_is_the_inserted_rows_own() {
    let dir = tempfile::tempdir().unwrap();
    let (sql, _name) = service(dir.path()).await;
    let form = database(&sql, "team", "form", SqlTier::Shared);
    let board = database(&sql, "team", "board", SqlTier::Shared);
    one(&form, "CREATE TABLE answers (id INTEGER PRIMARY KEY, what TEXT)", vec![]).await;
    one(&board, "CREATE TABLE notes (title TEXT)", vec![]).await;
    for _ in 0..5 {
        one(&form, "INSERT INTO answers (what) VALUES ('a')", vec![]).await;
    }
    let inserted = one(&board, "INSERT INTO notes (title) VALUES (?)", vec![text("no id")]).await;
    assert_eq!((inserted.meta.changes, inserted.meta.last_row_id), (1, 0), "a table without an id has none to give");
    assert!(inserted.rows.is_empty() && inserted.columns.is_empty());

    let explicit = one(&form, "INSERT INTO answers (id, what) VALUES (42, 'b')", vec![]).await;
    assert_eq!(explicit.meta.last_row_id, 42);
    let returning =
        one(&form, "INSERT INTO answers (what) VALUES ('c') RETURNING what, length(what) AS n", vec![]).await;
    assert_eq!(returning.columns, ["what", "n"]);
    assert_eq!(returning.rows, [[text("c"), SqlValue::Integer(1)]]);
    assert_eq!(returning.meta.last_row_id, 6);
    let several = one(&form, "INSERT INTO answers (what) SELECT what FROM answers WHERE id <= 2", vec![]).await;
    assert_eq!((several.meta.changes, several.meta.last_row_id), (2, 8));
}

/// A tenant's role logs in with a password the server keeps as a SCRAM verifier, owns neither
/// its database nor the right to make temporary tables, and its DDL never carried the password.
#[tokio::test]
async fn tenant_roles_are_scram_only_and_cannot_make_temporary_tables() {
    let dir = tempfile::tempdir().unwrap();
    let (sql, _name) = service(dir.path()).await;
    let app = AppKey::new("team", "vault");
    let db = database(&sql, &app.namespace, &app.name, SqlTier::Isolated);
    one(&db, "CREATE TABLE t (x INTEGER)", vec![]).await;
    let tenant = sql.0.tenant(&app, SqlTier::Isolated);
    let admin = superuser("postgres").await;
    let row = admin
        .query_one(
            "SELECT rolpassword, (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1) \
             FROM pg_authid WHERE rolname = $1",
            &[&tenant.role],
        )
        .await
        .unwrap();
    let (verifier, owner): (String, String) = (row.get(0), row.get(1));
    assert!(verifier.starts_with("SCRAM-SHA-256$4096:"), "{verifier}");
    assert_eq!(owner, "terrarium", "the platform, not the tenant, owns the tenant's database");

    // Logged in as the tenant (its password as the platform derives it), raw SQL past the
    // translation still cannot make a temporary table.
    let password = sql.0.password(&tenant).await.unwrap();
    let url = format!("postgres://{}@localhost/{}?host={}", tenant.role, tenant.database, socket_folder());
    let mut config: tokio_postgres::Config = url.parse().unwrap();
    config.password(password.as_str());
    let (client, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let error = client.batch_execute("CREATE TEMP TABLE leak (x int)").await.unwrap_err();
    assert_eq!(error.as_db_error().map(|db| db.code().code()), Some("42501"), "{error}");
}

/// After a table changes shape, in a batch or in a batch rolled back, statements prepared
/// against its old shape are not reused.
#[tokio::test]
async fn plans_follow_the_tables_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (sql, _name) = service(dir.path()).await;
    let db = database(&sql, "team", "todo", SqlTier::Schema);
    one(&db, "CREATE TABLE todo (id INTEGER PRIMARY KEY, title TEXT)", vec![]).await;
    one(&db, "INSERT INTO todo (title) VALUES ('a')", vec![]).await;
    assert_eq!(one(&db, "SELECT * FROM todo", vec![]).await.columns, ["id", "title"]);
    let results = batch(
        &db,
        vec![
            statement("ALTER TABLE todo ADD COLUMN done INTEGER DEFAULT 0", vec![]),
            statement("SELECT * FROM todo", vec![]),
        ],
    )
    .await
    .unwrap();
    assert_eq!(results[1].columns, ["id", "title", "done"]);
    // Dropped in a batch that fails: the shape is the old one again.
    let failed = batch(
        &db,
        vec![
            statement("ALTER TABLE todo DROP COLUMN done", vec![]),
            statement("SELECT * FROM todo", vec![]),
            statement("SELECT * FROM missing", vec![]),
        ],
    )
    .await
    .unwrap_err();
    assert!(failed.contains("no such table: missing"), "{failed}");
    let after = one(&db, "SELECT * FROM todo", vec![]).await;
    assert_eq!(after.columns, ["id", "title", "done"]);
    assert_eq!(after.rows, [[SqlValue::Integer(1), text("a"), SqlValue::Integer(0)]]);
}

/// `exec()` keeps the statement-size limit as `prepare()` does.
#[tokio::test]
async fn exec_keeps_the_statement_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (sql, _name) = service(dir.path()).await;
    let db = database(&sql, "team", "big", SqlTier::Isolated);
    let long = format!("SELECT '{}'", "x".repeat(SqlSection::default().max_statement_bytes as usize));
    let error = db.call(SqlOp::Exec(long)).await.unwrap_err().0;
    assert!(error.contains("max_statement_bytes"), "{error}");
}
