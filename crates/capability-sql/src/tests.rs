//! The D1 semantics and the walls between apps, on real SQLite files: every escape an app
//! might try, under each tier.

use bytes::Bytes;
use runtime::sql::{SqlStatement, SqlValue};

use super::*;

fn service(section: config::SqlSection) -> (tempfile::TempDir, Arc<Sql>) {
    let dir = tempfile::tempdir().unwrap();
    let sql = Arc::new(Sql::new(&section, dir.path(), Arc::new(runtime::NoDataMeter)));
    (dir, sql)
}

fn database(sql: &Arc<Sql>, namespace: &str, name: &str, tier: SqlTier) -> Arc<dyn SqlHost> {
    let database =
        SqlDatabase { binding: "DB".into(), isolation: tier, max_mib: None, restricted: false, encrypted: false };
    sql.for_app(&AppKey::new(namespace, name), &database).unwrap()
}

fn statement(sql: &str, params: Vec<SqlValue>) -> SqlStatement {
    SqlStatement { sql: sql.to_owned(), params }
}

async fn run(db: &Arc<dyn SqlHost>, sql: &str, params: Vec<SqlValue>) -> Result<runtime::sql::SqlResult, String> {
    match db.call(SqlOp::Batch(vec![statement(sql, params)])).await {
        Ok(SqlAnswer::Results(mut results)) => Ok(results.remove(0)),
        Ok(other) => panic!("{other:?}"),
        Err(error) => Err(error.0),
    }
}

async fn ok(db: &Arc<dyn SqlHost>, sql: &str) -> Vec<Vec<SqlValue>> {
    run(db, sql, vec![]).await.unwrap_or_else(|error| panic!("{sql}: {error}")).rows
}

async fn refused(db: &Arc<dyn SqlHost>, sql: &str) -> String {
    match run(db, sql, vec![]).await {
        Ok(result) => panic!("{sql} was allowed: {result:?}"),
        Err(error) => {
            assert!(error.starts_with("D1_ERROR: "), "{error}");
            error
        }
    }
}

fn text(value: &str) -> SqlValue {
    SqlValue::Text(value.to_owned())
}

#[tokio::test]
async fn statements_bind_in_order_and_answer_d1s_meta() {
    let (_dir, sql) = service(config::SqlSection::default());
    let db = database(&sql, "team", "expenses", SqlTier::Isolated);
    ok(&db, "CREATE TABLE expenses (id INTEGER PRIMARY KEY, what TEXT NOT NULL, amount REAL, receipt BLOB)").await;
    let inserted = run(
        &db,
        "INSERT INTO expenses (what, amount, receipt) VALUES (?, ?2, ?3)",
        vec![text("lunch"), SqlValue::Real(12.5), SqlValue::Blob(Bytes::from_static(&[0, 1, 255]))],
    )
    .await
    .unwrap();
    assert_eq!((inserted.meta.changes, inserted.meta.last_row_id, inserted.meta.rows_written), (1, 1, 1));
    assert!(inserted.meta.changed_db && inserted.meta.size_after > 0);
    let selected = run(&db, "SELECT what, amount, receipt, id FROM expenses WHERE id = ?1", vec![SqlValue::Integer(1)])
        .await
        .unwrap();
    assert_eq!(selected.columns, ["what", "amount", "receipt", "id"]);
    assert_eq!(
        selected.rows,
        [[text("lunch"), SqlValue::Real(12.5), SqlValue::Blob(Bytes::from_static(&[0, 1, 255])), SqlValue::Integer(1)]]
    );
    assert_eq!((selected.meta.changes, selected.meta.changed_db), (0, false));

    let wrong = run(&db, "SELECT * FROM expenses WHERE id = ?", vec![]).await.unwrap_err();
    assert!(wrong.contains("Wrong number of parameter bindings"), "{wrong}");
    let two = refused(&db, "SELECT 1; SELECT 2").await;
    assert!(two.contains("prepare() takes one SQL statement"), "{two}");
    let missing = refused(&db, "SELECT * FROM missing").await;
    assert_eq!(missing, "D1_ERROR: no such table: missing: SQLITE_ERROR");
    let unique = refused(&db, "INSERT INTO expenses (id, what) VALUES (1, 'again')").await;
    assert!(unique.contains("UNIQUE constraint failed: expenses.id: SQLITE_CONSTRAINT"), "{unique}");
}

#[tokio::test]
async fn a_batch_is_one_transaction_and_exec_runs_several_statements() {
    let (_dir, sql) = service(config::SqlSection::default());
    let db = database(&sql, "team", "todo", SqlTier::Isolated);
    let executed = db
        .call(SqlOp::Exec(
            "CREATE TABLE todo (id INTEGER PRIMARY KEY, title TEXT UNIQUE);\nINSERT INTO todo (title) VALUES ('a');"
                .into(),
        ))
        .await
        .unwrap();
    assert!(matches!(executed, SqlAnswer::Executed { count: 2, rows_written: 1, .. }), "{executed:?}");
    let failed = db
        .call(SqlOp::Batch(vec![
            statement("INSERT INTO todo (title) VALUES (?)", vec![text("b")]),
            statement("INSERT INTO todo (title) VALUES (?)", vec![text("a")]),
        ]))
        .await
        .unwrap_err();
    assert!(failed.0.contains("UNIQUE constraint failed"), "{failed}");
    assert_eq!(ok(&db, "SELECT title FROM todo ORDER BY id").await, [[text("a")]], "the whole batch rolled back");

    for transaction in ["BEGIN", "BEGIN TRANSACTION", "COMMIT", "SAVEPOINT s", "RELEASE s", "ROLLBACK"] {
        let message = refused(&db, transaction).await;
        assert!(message.contains("please use the batch() API"), "{transaction}: {message}");
    }
}

#[tokio::test]
async fn no_way_out_of_an_apps_own_database() {
    let (dir, sql) = service(config::SqlSection::default());
    for tier in [SqlTier::Isolated, SqlTier::Schema, SqlTier::Shared] {
        let db = database(&sql, "team", &format!("app-{}", tier.as_str()), tier);
        ok(&db, "CREATE TABLE mine (x)").await;
        let outside = dir.path().join("outside.sqlite");
        let outside = outside.display();
        for escape in [
            format!("ATTACH DATABASE '{outside}' AS other"),
            "ATTACH DATABASE ':memory:' AS other".to_owned(),
            "DETACH DATABASE main".to_owned(),
            format!("VACUUM INTO '{outside}'"),
            "VACUUM".to_owned(),
            "SELECT load_extension('/tmp/evil.so')".to_owned(),
            "PRAGMA writable_schema = 1".to_owned(),
            "PRAGMA journal_mode = DELETE".to_owned(),
            "PRAGMA synchronous = OFF".to_owned(),
            "PRAGMA max_page_count = 1000000000".to_owned(),
            "PRAGMA database_list".to_owned(),
            "PRAGMA trusted_schema = 1".to_owned(),
            "SELECT * FROM pragma_database_list".to_owned(),
            "CREATE TEMP TABLE t (x)".to_owned(),
            "CREATE TEMP VIEW v AS SELECT 1".to_owned(),
            "SELECT * FROM temp.sqlite_master".to_owned(),
            "CREATE TABLE _terrarium_owners (x)".to_owned(),
            "SELECT * FROM _terrarium_owners".to_owned(),
            "CREATE VIRTUAL TABLE v USING rtree(id, a, b)".to_owned(),
        ] {
            let message = refused(&db, &escape).await;
            assert!(!message.contains("SQLITE_OK"), "{escape}: {message}");
        }
        assert!(!std::path::Path::new(&outside.to_string()).exists(), "nothing was written outside");
        // What stays allowed: describing its own tables, full-text search, deferring foreign keys.
        ok(&db, "PRAGMA table_info(mine)").await;
        ok(&db, "CREATE VIRTUAL TABLE notes USING fts5(body)").await;
        ok(&db, "PRAGMA defer_foreign_keys = ON").await;
    }
}

#[tokio::test]
async fn under_schema_an_app_reaches_only_the_tables_it_created() {
    let (_dir, sql) = service(config::SqlSection::default());
    let poll = database(&sql, "team", "poll", SqlTier::Schema);
    let thief = database(&sql, "team", "thief", SqlTier::Schema);
    ok(&poll, "CREATE TABLE votes (choice TEXT, n INTEGER)").await;
    ok(&poll, "INSERT INTO votes VALUES ('pizza', 2)").await;
    ok(&thief, "CREATE TABLE loot (x)").await;
    for escape in [
        "SELECT * FROM votes",
        "SELECT * FROM main.votes",
        "SELECT * FROM \"VOTES\"",
        "INSERT INTO votes VALUES ('soup', 1)",
        "UPDATE votes SET n = 0",
        "DELETE FROM votes",
        "DROP TABLE votes",
        "ALTER TABLE votes RENAME TO mine",
        "ALTER TABLE votes ADD COLUMN y",
        "CREATE INDEX steal ON votes (choice)",
        "CREATE TRIGGER spy AFTER INSERT ON votes BEGIN INSERT INTO loot VALUES (new.choice); END",
        "INSERT INTO loot SELECT choice FROM votes",
        "SELECT * FROM sqlite_master",
        "SELECT * FROM sqlite_schema",
        "SELECT name FROM pragma_table_list",
        "PRAGMA table_list",
        "PRAGMA table_info(votes)",
        "PRAGMA index_list(votes)",
        "SELECT * FROM dbstat",
        "WITH v AS (SELECT * FROM votes) SELECT * FROM v",
    ] {
        refused(&thief, escape).await;
    }
    ok(&poll, "CREATE TABLE counted (id INTEGER PRIMARY KEY AUTOINCREMENT, x)").await;
    ok(&poll, "INSERT INTO counted (x) VALUES (1)").await;
    for escape in [
        "CREATE TABLE loot2 AS SELECT sql FROM sqlite_master",
        "CREATE TABLE loot3 AS SELECT * FROM votes",
        "UPDATE sqlite_sequence SET seq = 9223372036854775807",
        "DELETE FROM sqlite_sequence",
        "INSERT INTO sqlite_stat1 VALUES ('votes', 'x', '1 1')",
        "CREATE VIRTUAL TABLE peek_fts USING fts5(choice, content='votes')",
        "SELECT name FROM _terrarium_owners WHERE app <> ?1",
        "PRAGMA quick_check",
    ] {
        refused(&thief, escape).await;
    }
    assert_eq!(
        ok(&thief, "SELECT value FROM json_each('[1,2]')").await.len(),
        2,
        "json_each is a function, not a table"
    );
    // No reference to a neighbour's table, which would let the thief refuse the poll's deletes.
    let reference = refused(&thief, "CREATE TABLE probe (x REFERENCES votes(choice))").await;
    assert!(reference.contains("references votes, which belongs to another app"), "{reference}");
    // A trigger that a DROP TABLE's cascade fires is the app's, not SQLite's own DDL work.
    ok(&thief, "CREATE TABLE p (id INTEGER PRIMARY KEY)").await;
    ok(&thief, "CREATE TABLE c (id, pid REFERENCES p ON DELETE CASCADE)").await;
    ok(&thief, "CREATE TABLE spied (x)").await;
    ok(&thief, "CREATE TRIGGER spy AFTER DELETE ON c BEGIN INSERT INTO spied SELECT sql FROM sqlite_master; END").await;
    ok(&thief, "INSERT INTO p VALUES (1)").await;
    ok(&thief, "INSERT INTO c VALUES (1, 1)").await;
    refused(&thief, "DROP TABLE p").await;
    assert!(ok(&thief, "SELECT * FROM spied").await.is_empty(), "no catalog row reached the app");
    // A renamed table stays its creator's.
    ok(&thief, "CREATE TABLE old_name (x)").await;
    ok(&thief, "ALTER TABLE old_name RENAME TO new_name").await;
    ok(&thief, "SELECT * FROM new_name").await;
    // A view over someone else's table is refused where it reads, not where it is made.
    ok(&thief, "CREATE VIEW window AS SELECT * FROM loot").await;
    ok(&thief, "CREATE VIEW peek AS SELECT * FROM votes").await;
    let through_view = refused(&thief, "SELECT * FROM peek").await;
    assert!(
        through_view.contains("no such table") || through_view.contains("belongs to another app"),
        "{through_view}"
    );
    // The poll's data is as it was; a table of the same name cannot be made twice.
    assert_eq!(ok(&poll, "SELECT choice, n FROM votes").await, [[text("pizza"), SqlValue::Integer(2)]]);
    let taken = refused(&thief, "CREATE TABLE votes (x)").await;
    assert!(taken.contains("votes is taken by another app"), "{taken}");
    let sneaky = thief
        .call(SqlOp::Batch(vec![
            statement("CREATE TABLE IF NOT EXISTS votes (x)", vec![]),
            statement("SELECT * FROM votes", vec![]),
        ]))
        .await
        .unwrap_err();
    assert!(sneaky.0.contains("taken by another app"), "{sneaky}");
    let usage = sql.usage(&AppKey::new("team", "thief")).await.unwrap();
    let names: Vec<&str> = usage.tables.iter().map(|table| table.name.as_str()).collect();
    assert_eq!(names, ["loot", "p", "c", "spied", "new_name"], "usage lists only the app's own tables");

    // Deleting the poll drops its tables and frees the name; the thief keeps its own.
    let said = sql.delete_app(&AppKey::new("team", "poll")).await.unwrap();
    assert_eq!(said.as_deref(), Some("SQL: counted, votes deleted with the app"));
    ok(&thief, "SELECT * FROM loot").await;
    ok(&thief, "CREATE TABLE votes (x)").await;
}

#[tokio::test]
async fn isolated_databases_never_meet_and_shared_ones_are_the_namespaces() {
    let (_dir, sql) = service(config::SqlSection::default());
    let ours = database(&sql, "team", "poll", SqlTier::Isolated);
    let theirs = database(&sql, "other", "poll", SqlTier::Isolated);
    ok(&ours, "CREATE TABLE votes (choice TEXT)").await;
    ok(&ours, "INSERT INTO votes VALUES ('pizza')").await;
    refused(&theirs, "SELECT * FROM votes").await;
    assert_eq!(ok(&theirs, "SELECT count(*) FROM sqlite_master").await, [[SqlValue::Integer(0)]]);

    let form = database(&sql, "team", "form", SqlTier::Shared);
    let dashboard = database(&sql, "team", "dashboard", SqlTier::Shared);
    let elsewhere = database(&sql, "other", "dashboard", SqlTier::Shared);
    ok(&form, "CREATE TABLE answers (a TEXT)").await;
    ok(&form, "INSERT INTO answers VALUES ('yes')").await;
    assert_eq!(ok(&dashboard, "SELECT a FROM answers").await, [[text("yes")]], "a namespace's apps share tables");
    refused(&elsewhere, "SELECT a FROM answers").await;
}

#[tokio::test]
async fn runaway_queries_stop_at_their_limits() {
    let section = config::SqlSection { max_statement_ms: 50, max_result_rows: 10, ..config::SqlSection::default() };
    let (_dir, sql) = service(section);
    let db = database(&sql, "team", "runaway", SqlTier::Isolated);
    let forever =
        refused(&db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n").await;
    assert!(forever.contains("ran longer than 50 ms") && forever.ends_with("SQLITE_INTERRUPT"), "{forever}");
    let many =
        refused(&db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 11) SELECT i FROM n").await;
    assert!(many.contains("more than 10 rows"), "{many}");
    assert_eq!(
        ok(&db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 10) SELECT i FROM n").await.len(),
        10
    );
    let huge = refused(&db, "SELECT zeroblob(3000000)").await;
    assert!(huge.contains("SQLITE_TOOBIG"), "{huge}");
}

#[tokio::test]
async fn a_database_stops_growing_at_its_quota() {
    let (_dir, sql) = service(config::SqlSection::default());
    let database_spec = SqlDatabase {
        binding: "DB".into(),
        isolation: SqlTier::Isolated,
        max_mib: Some(1),
        restricted: false,
        encrypted: false,
    };
    let db = sql.for_app(&AppKey::new("team", "hoarder"), &database_spec).unwrap();
    ok(&db, "CREATE TABLE blobs (b BLOB)").await;
    let mut full = None;
    for _ in 0..4 {
        if let Err(error) = run(&db, "INSERT INTO blobs VALUES (zeroblob(400000))", vec![]).await {
            full = Some(error);
            break;
        }
    }
    let full = full.expect("the quota stops the inserts");
    assert!(full.contains("may hold 1 MiB (spec.quotas.sqlStorageMiB)") && full.ends_with("SQLITE_FULL"), "{full}");
}

#[tokio::test]
async fn export_and_import_carry_tables_rows_and_indexes() {
    let (_dir, sql) = service(config::SqlSection::default());
    let app = AppKey::new("team", "todo");
    let db = database(&sql, "team", "todo", SqlTier::Schema);
    ok(&db, "CREATE TABLE todo (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT)").await;
    ok(&db, "CREATE INDEX todo_title ON todo (title)").await;
    ok(&db, "INSERT INTO todo (title) VALUES ('a'), ('b')").await;
    let neighbour = database(&sql, "team", "neighbour", SqlTier::Schema);
    ok(&neighbour, "CREATE TABLE secret (x)").await;
    let file = sql.export(&app).await.unwrap();
    assert!(file.starts_with(b"SQLite format 3\0"));

    // Into another namespace's fresh app: the rows, the index and the AUTOINCREMENT counter come along.
    let copy = AppKey::new("other", "todo");
    let copied = sql
        .for_app(
            &copy,
            &SqlDatabase {
                binding: "DB".into(),
                isolation: SqlTier::Isolated,
                max_mib: None,
                restricted: false,
                encrypted: false,
            },
        )
        .unwrap();
    assert_eq!(
        sql.import(&copy, file.clone()).await.unwrap(),
        ["todo"],
        "only the app's own tables, not its neighbour's"
    );
    assert_eq!(ok(&copied, "SELECT title FROM todo ORDER BY id").await, [[text("a")], [text("b")]]);
    assert_eq!(ok(&copied, "SELECT name FROM sqlite_master WHERE type = 'index'").await, [[text("todo_title")]]);
    ok(&copied, "DELETE FROM todo WHERE id = 2").await;
    let next = run(&copied, "INSERT INTO todo (title) VALUES ('c')", vec![]).await.unwrap();
    assert_eq!(next.meta.last_row_id, 3, "AUTOINCREMENT does not reuse ids");

    let again = sql.import(&copy, file).await.unwrap_err().to_string();
    assert!(again.contains("already has todo"), "{again}");
    let junk = sql.import(&copy, b"not a database".to_vec()).await.unwrap_err().to_string();
    assert!(junk.contains("not a sound SQLite database"), "{junk}");
}

/// A file whose catalog hides a second statement behind a table's definition (SQLite reads
/// only the first), or reaches another app's table, is refused whole on import.
#[tokio::test]
async fn a_crafted_import_cannot_run_sql_or_reach_a_neighbour() {
    let (dir, sql) = service(config::SqlSection::default());
    let victim = database(&sql, "team", "victim", SqlTier::Schema);
    ok(&victim, "CREATE TABLE payroll (who TEXT, cents INTEGER)").await;
    ok(&victim, "INSERT INTO payroll VALUES ('ana', 100)").await;
    let attacker_key = AppKey::new("team", "attacker");
    let attacker = database(&sql, "team", "attacker", SqlTier::Schema);
    ok(&attacker, "CREATE TABLE mine (x)").await;

    let crafted = |name: &str, definition: &str| {
        let path = dir.path().join(name);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE innocent (a)").unwrap();
        conn.execute_batch("PRAGMA writable_schema = ON").unwrap();
        conn.execute("UPDATE sqlite_schema SET sql = ?1 WHERE name = 'innocent'", [definition]).unwrap();
        drop(conn);
        std::fs::read(&path).unwrap()
    };
    for (file, definition) in [
        ("tail.sqlite", "CREATE TABLE innocent (a); DROP TABLE payroll"),
        ("owners.sqlite", "CREATE TABLE innocent (a); UPDATE _terrarium_owners SET app = 'attacker'"),
        ("ctas.sqlite", "CREATE TABLE innocent AS SELECT * FROM payroll"),
        ("view.sqlite", "CREATE VIEW innocent AS SELECT * FROM payroll"),
    ] {
        let refused = sql.import(&attacker_key, crafted(file, definition)).await;
        assert!(refused.is_err(), "{file} was imported");
    }
    assert_eq!(ok(&victim, "SELECT who FROM payroll").await, [[text("ana")]], "the victim's table is untouched");
    refused(&attacker, "SELECT * FROM payroll").await;
    refused(&attacker, "SELECT * FROM innocent").await;
}

#[tokio::test]
async fn copies_keep_rowids_generated_columns_foreign_keys_and_tables_named_like_shadows() {
    let (_dir, sql) = service(config::SqlSection::default());
    let source = AppKey::new("team", "blog");
    let db = database(&sql, "team", "blog", SqlTier::Schema);
    ok(&db, "CREATE VIRTUAL TABLE posts USING fts5(body)").await;
    ok(&db, "CREATE TABLE posts_tags (post INTEGER, tag TEXT)").await;
    ok(&db, "CREATE TABLE authors (id INTEGER PRIMARY KEY, name TEXT, shout TEXT GENERATED ALWAYS AS (upper(name)))")
        .await;
    ok(&db, "CREATE TABLE notes (body TEXT, author INTEGER REFERENCES authors(id))").await;
    ok(&db, "INSERT INTO authors (id, name) VALUES (7, 'ana')").await;
    ok(&db, "INSERT INTO notes (rowid, body, author) VALUES (42, 'hello', 7)").await;
    ok(&db, "INSERT INTO posts (rowid, body) VALUES (9, 'rust and sqlite')").await;
    ok(&db, "INSERT INTO posts_tags VALUES (9, 'db')").await;
    let file = sql.export(&source).await.unwrap();

    let copy = AppKey::new("other", "blog");
    let copied = sql
        .for_app(
            &copy,
            &SqlDatabase {
                binding: "DB".into(),
                isolation: SqlTier::Isolated,
                max_mib: None,
                restricted: false,
                encrypted: false,
            },
        )
        .unwrap();
    let mut tables = sql.import(&copy, file).await.unwrap();
    tables.sort();
    assert_eq!(tables, ["authors", "notes", "posts", "posts_tags"], "a table named like a shadow table is the app's");
    assert_eq!(ok(&copied, "SELECT rowid, body FROM notes").await, [[SqlValue::Integer(42), text("hello")]]);
    assert_eq!(ok(&copied, "SELECT shout FROM authors").await, [[text("ANA")]]);
    assert_eq!(ok(&copied, "SELECT rowid FROM posts WHERE posts MATCH 'sqlite'").await, [[SqlValue::Integer(9)]]);
    assert_eq!(ok(&copied, "SELECT tag FROM posts_tags").await, [[text("db")]]);

    // Deleting the app drops every table of its own, posts_tags too: the name is free again.
    sql.delete_app(&source).await.unwrap();
    let next = database(&sql, "team", "next", SqlTier::Schema);
    ok(&next, "CREATE TABLE posts_tags (x)").await;
    ok(&next, "SELECT * FROM posts_tags").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_moves_from_schema_to_isolated_with_its_rows() {
    let (_dir, sql) = service(config::SqlSection::default());
    let app = AppKey::new("team", "todo");
    let db = database(&sql, "team", "todo", SqlTier::Schema);
    ok(&db, "CREATE TABLE todo (id INTEGER PRIMARY KEY AUTOINCREMENT, title TEXT)").await;
    ok(&db, "INSERT INTO todo (title) VALUES ('a'), ('b')").await;
    let moved = tokio::time::timeout(std::time::Duration::from_secs(20), sql.migrate(&app, SqlTier::Isolated)).await;
    assert_eq!(moved.expect("the move finishes").unwrap(), ["todo"]);
    assert_eq!(ok(&db, "SELECT title FROM todo ORDER BY id").await, [[text("a")], [text("b")]]);
}

/// Keys as the secret store would give them: one per namespace and file, fixed for the test.
struct TestKeys;

impl DatabaseKeys for TestKeys {
    fn key(&self, namespace: &str, purpose: &str) -> BoxFuture<'static, Result<FileKey, String>> {
        use sha2::Digest;
        let digest: [u8; 32] = sha2::Sha256::digest(format!("{namespace}\0{purpose}").as_bytes()).into();
        Box::pin(async move { Ok(zeroize::Zeroizing::new(digest)) })
    }
}

fn encrypted_service(dir: &Path) -> Arc<Sql> {
    Arc::new(
        Sql::new(&config::SqlSection::default(), dir, Arc::new(runtime::NoDataMeter)).with_keys(Arc::new(TestKeys)),
    )
}

fn sealed(encrypted: bool) -> SqlDatabase {
    SqlDatabase { binding: "DB".into(), isolation: SqlTier::Isolated, max_mib: None, restricted: false, encrypted }
}

/// Whether `needle` appears anywhere in the app's files (database and journal).
fn on_disk(dir: &Path, needle: &str) -> bool {
    let folder = dir.join("sql").join("team");
    std::fs::read_dir(&folder).unwrap().any(|entry| {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        bytes.windows(needle.len()).any(|window| window == needle.as_bytes())
    })
}

#[tokio::test]
async fn a_confidential_apps_database_is_encrypted_at_rest_and_reopens_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let app = AppKey::new("team", "payroll");
    let path = dir.path().join("sql/team/app-payroll.sqlite");
    {
        let sql = encrypted_service(dir.path());
        let db = sql.for_app(&app, &sealed(true)).unwrap();
        ok(&db, "CREATE TABLE pay (who TEXT, amount INTEGER)").await;
        ok(&db, "INSERT INTO pay VALUES ('ana-the-secret-name', 4200)").await;
        assert!(!database::is_clear_database(&path));
        assert!(!on_disk(dir.path(), "ana-the-secret-name"), "rows reach the disk in clear");
        assert!(!on_disk(dir.path(), "CREATE TABLE pay"), "the schema reaches the disk in clear");
        // Another service (a restart) reads it with the same key.
    }
    let sql = encrypted_service(dir.path());
    let db = sql.for_app(&app, &sealed(true)).unwrap();
    assert_eq!(ok(&db, "SELECT amount FROM pay").await, vec![vec![SqlValue::Integer(4200)]]);

    // Without the key the file is refused, never read as empty; with another key too.
    let plain = Arc::new(Sql::new(&config::SqlSection::default(), dir.path(), Arc::new(runtime::NoDataMeter)));
    let refused = plain.for_app(&AppKey::new("team", "payroll"), &sealed(false)).unwrap();
    let error = run(&refused, "SELECT amount FROM pay", vec![]).await.unwrap_err();
    assert!(error.contains("SQLITE_CANTOPEN"), "{error}");
    let stolen = rusqlite::Connection::open(&path).unwrap();
    assert!(stolen.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get::<_, i64>(0)).is_err());

    // The export is the builder's copy, in clear; it imports into another encrypted app.
    let exported = sql.export(&app).await.unwrap();
    assert!(exported.starts_with(b"SQLite format 3\0"));
    let other = AppKey::new("team", "payroll-copy");
    sql.for_app(&other, &sealed(true)).unwrap();
    assert_eq!(sql.import(&other, exported).await.unwrap(), vec!["pay".to_owned()]);
    let copy = sql.for_app(&other, &sealed(true)).unwrap();
    assert_eq!(ok(&copy, "SELECT who FROM pay").await, vec![vec![text("ana-the-secret-name")]]);
    assert!(!database::is_clear_database(&dir.path().join("sql/team/app-payroll-copy.sqlite")));
}

#[tokio::test]
async fn a_database_in_clear_is_encrypted_in_place_when_its_app_becomes_confidential() {
    let dir = tempfile::tempdir().unwrap();
    let sql = encrypted_service(dir.path());
    let app = AppKey::new("team", "poll");
    let path = dir.path().join("sql/team/app-poll.sqlite");
    let clear = sql.for_app(&app, &sealed(false)).unwrap();
    ok(&clear, "CREATE TABLE votes (choice TEXT)").await;
    ok(&clear, "INSERT INTO votes VALUES ('pizza-margherita')").await;
    assert!(database::is_clear_database(&path));

    // The next revision is labelled confidential: the open file closes, is encrypted, reopens.
    let sealed_db = sql.for_app(&app, &sealed(true)).unwrap();
    assert_eq!(ok(&sealed_db, "SELECT choice FROM votes").await, vec![vec![text("pizza-margherita")]]);
    assert!(!database::is_clear_database(&path));
    assert!(!on_disk(dir.path(), "pizza-margherita"));
    // The revision still live in clear reaches the encrypted file too (it stays encrypted).
    let later = sql.for_app(&app, &sealed(false)).unwrap();
    ok(&later, "INSERT INTO votes VALUES ('sushi')").await;
    assert_eq!(ok(&sealed_db, "SELECT count(*) FROM votes").await, vec![vec![SqlValue::Integer(2)]]);
    let _ = clear;
}

#[tokio::test]
async fn a_labelled_app_is_never_served_from_an_unencrypted_tier_and_an_encrypted_file_moves_out_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let sql = encrypted_service(dir.path());
    // Moved to shared while unlabelled: labelling it now would serve confidential data in clear.
    let moved = AppKey::new("team", "board");
    let board = sql.for_app(&moved, &sealed(false)).unwrap();
    ok(&board, "CREATE TABLE notes (text TEXT)").await;
    sql.migrate(&moved, SqlTier::Shared).await.unwrap();
    let refused = sql.for_app(&moved, &sealed(true)).err().expect("refused");
    assert!(refused.contains("move it first"), "{refused}");

    // Encrypted while labelled, then the label went: its data still moves (read with its key).
    let app = AppKey::new("team", "payroll");
    let payroll = sql.for_app(&app, &sealed(true)).unwrap();
    ok(&payroll, "CREATE TABLE pay (amount INTEGER)").await;
    ok(&payroll, "INSERT INTO pay VALUES (4200)").await;
    sql.for_app(&app, &sealed(false)).unwrap();
    assert_eq!(sql.migrate(&app, SqlTier::Schema).await.unwrap(), vec!["pay".to_owned()]);
    let schema = sql.for_app(&app, &SqlDatabase { isolation: SqlTier::Schema, ..sealed(false) }).unwrap();
    assert_eq!(ok(&schema, "SELECT amount FROM pay").await, vec![vec![SqlValue::Integer(4200)]]);
}

#[tokio::test]
async fn under_schema_a_view_is_never_left_reading_a_dropped_table() {
    let (_dir, sql) = service(config::SqlSection::default());
    let a = database(&sql, "team", "a", SqlTier::Schema);
    let b = database(&sql, "team", "b", SqlTier::Schema);
    ok(&a, "CREATE TABLE items (x)").await;
    ok(&a, "CREATE VIEW recent AS SELECT x FROM items").await;
    let error = refused(&a, "DROP TABLE items").await;
    assert!(error.contains("the view recent") && error.contains("drop or change the view first"), "{error}");
    assert_eq!(ok(&a, "SELECT count(*) FROM recent").await, vec![vec![SqlValue::Integer(0)]]);
    // So a neighbour's rename keeps working; the view can go first, then its table.
    ok(&b, "CREATE TABLE notes (y)").await;
    ok(&b, "ALTER TABLE notes RENAME TO memos").await;
    ok(&a, "DROP VIEW recent").await;
    ok(&a, "DROP TABLE items").await;
}

#[tokio::test]
async fn under_schema_an_app_reads_while_its_data_moves() {
    let (_dir, sql) = service(config::SqlSection::default());
    let app = AppKey::new("team", "a");
    let db = database(&sql, "team", "a", SqlTier::Schema);
    ok(&db, "CREATE TABLE items (x)").await;
    ok(&db, "INSERT INTO items VALUES (1)").await;
    // What `migrate` does to the app's connection while it copies.
    let connection = sql.connection(&app, SqlTier::Schema, sql.limits.default_database_mib, None).await.unwrap();
    connection.lock().unwrap().set_read_only(true).unwrap();
    assert_eq!(ok(&db, "SELECT x FROM items").await, vec![vec![SqlValue::Integer(1)]]);
    let error = refused(&db, "INSERT INTO items VALUES (2)").await;
    assert!(error.contains("SQLITE_READONLY"), "{error}");
    connection.lock().unwrap().set_read_only(false).unwrap();
    ok(&db, "INSERT INTO items VALUES (2)").await;
}
