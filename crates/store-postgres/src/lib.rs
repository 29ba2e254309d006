//! Apps' data on PostgreSQL, for `[data] backend = "postgres"`: the key-value namespaces of
//! `capability-kv` (its `KvStore` trait). Every row carries the namespace and the app in its
//! key; each write is one statement, so compare-and-set and increment are atomic without a
//! read-then-write. Keys use the `C` collation: listings come in UTF-8 byte order, Workers'.

pub mod config;
mod kv;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

/// The data store on PostgreSQL.
pub struct PostgresStore {
    pool: sqlx::PgPool,
}

/// The schema this crate keeps: created when missing, never dropped.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS terrarium_kv_entries (
    namespace  TEXT   NOT NULL,
    app        TEXT   NOT NULL,
    key        TEXT   COLLATE "C" NOT NULL,
    value      BYTEA  NOT NULL,
    metadata   TEXT,
    expiration BIGINT,
    version    BIGINT NOT NULL,
    PRIMARY KEY (namespace, app, key)
);
-- The version of the namespace's data key a value is sealed under; NULL when clear.
ALTER TABLE terrarium_kv_entries ADD COLUMN IF NOT EXISTS sealed BIGINT;
CREATE INDEX IF NOT EXISTS terrarium_kv_entries_expiration ON terrarium_kv_entries (expiration)
    WHERE expiration IS NOT NULL;
"#;

impl PostgresStore {
    /// Connects and creates the tables it keeps when they are missing. The error names what to
    /// fix, never the password.
    pub async fn connect(url: &str, max_connections: u32) -> Result<PostgresStore, String> {
        let options: PgConnectOptions =
            url.parse().map_err(|error| format!("the PostgreSQL URL is not valid: {error}"))?;
        let target = format!("{}/{}", options.get_host(), options.get_database().unwrap_or("(default)"));
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect_with(options)
            .await
            .map_err(|error| format!("PostgreSQL at {target} could not be reached: {error}"))?;
        sqlx::raw_sql(SCHEMA)
            .execute(&pool)
            .await
            .map_err(|error| format!("the data tables could not be created in PostgreSQL at {target}: {error}"))?;
        Ok(PostgresStore { pool })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh database on the PostgreSQL that `scripts/test` started (its socket folder in
    /// `TERRARIUM_TEST_POSTGRES`): the URL of it.
    pub(crate) async fn fresh_database() -> String {
        let folder = std::env::var("TERRARIUM_TEST_POSTGRES")
            .expect("TERRARIUM_TEST_POSTGRES names the socket folder of the PostgreSQL scripts/test starts; run the suite with scripts/test");
        let admin = format!("postgres://terrarium@localhost/postgres?host={folder}");
        let pool = sqlx::PgPool::connect(&admin).await.expect("PostgreSQL answers");
        let name = format!(
            "kv_{}_{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos()
        );
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&pool).await.unwrap();
        format!("postgres://terrarium@localhost/{name}?host={folder}")
    }

    #[tokio::test]
    async fn key_value_keeps_the_contract() {
        let store = PostgresStore::connect(&fresh_database().await, 8).await.unwrap();
        capability_kv::contract::check(&store).await;
    }

    #[tokio::test]
    async fn a_bad_url_is_named_without_its_password() {
        let error = PostgresStore::connect("postgres://ana:s3cret@[not-a-host/db", 1).await.err().unwrap();
        assert!(error.starts_with("the PostgreSQL URL is not valid"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
}
