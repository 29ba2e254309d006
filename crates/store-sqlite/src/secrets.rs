//! The secret store's rows in SQLite: wrapped data keys and sealed values only.

use async_trait::async_trait;
use secrets::SecretError;
use secrets::kek::WrappedKey;
use secrets::records::{NewSecretVersion, SealedSecret, SecretRecords, SecretRow, StoredDataKey, VersionRow};
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{BEGIN_WRITE, SqliteStore};

fn storage(error: impl std::fmt::Display) -> SecretError {
    SecretError::Storage(error.to_string())
}

fn data_key_row(row: &SqliteRow) -> StoredDataKey {
    StoredDataKey {
        namespace: row.get("namespace"),
        version: row.get("version"),
        wrapped: WrappedKey { kek_id: row.get("kek_id"), bytes: row.get("wrapped") },
        created_at: row.get("created_at"),
    }
}

#[async_trait]
impl SecretRecords for SqliteStore {
    async fn data_key(&self, namespace: &str) -> Result<Option<StoredDataKey>, SecretError> {
        let row = sqlx::query("SELECT * FROM secret_data_keys WHERE namespace = ? ORDER BY version DESC LIMIT 1")
            .bind(namespace)
            .fetch_optional(&self.pool)
            .await
            .map_err(storage)?;
        Ok(row.as_ref().map(data_key_row))
    }

    async fn insert_data_key(&self, key: StoredDataKey) -> Result<StoredDataKey, SecretError> {
        sqlx::query(
            "INSERT OR IGNORE INTO secret_data_keys (namespace, version, kek_id, wrapped, created_at)
             VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key.namespace)
        .bind(key.version)
        .bind(&key.wrapped.kek_id)
        .bind(&key.wrapped.bytes)
        .bind(&key.created_at)
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        self.data_key(&key.namespace)
            .await?
            .ok_or_else(|| SecretError::Storage("the data key just stored is missing".to_owned()))
    }

    async fn all_data_keys(&self) -> Result<Vec<StoredDataKey>, SecretError> {
        let rows = sqlx::query("SELECT * FROM secret_data_keys ORDER BY namespace, version")
            .fetch_all(&self.pool)
            .await
            .map_err(storage)?;
        Ok(rows.iter().map(data_key_row).collect())
    }

    async fn rewrap_data_key(
        &self,
        namespace: &str,
        version: i64,
        expected_kek_id: &str,
        new: &WrappedKey,
    ) -> Result<bool, SecretError> {
        let result = sqlx::query(
            "UPDATE secret_data_keys SET kek_id = ?, wrapped = ? WHERE namespace = ? AND version = ? AND kek_id = ?",
        )
        .bind(&new.kek_id)
        .bind(&new.bytes)
        .bind(namespace)
        .bind(version)
        .bind(expected_kek_id)
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(result.rows_affected() == 1)
    }

    async fn insert_version(&self, row: NewSecretVersion) -> Result<i64, SecretError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(storage)?;
        // One statement picks the next number and inserts it, so concurrent sets of one secret
        // are ordered by SQLite's write lock rather than racing on a read.
        let version: i64 = sqlx::query_scalar(
            "INSERT INTO secret_versions (namespace, app, name, version, data_key_version, sealed, created_at,
                                          created_by, expires_at)
             SELECT ?1, ?2, ?3, COALESCE(MAX(version), 0) + 1, ?4, ?5, ?6, ?7, ?8
             FROM secret_versions WHERE namespace = ?1 AND app = ?2 AND name = ?3
             RETURNING version",
        )
        .bind(&row.namespace)
        .bind(&row.app)
        .bind(&row.name)
        .bind(row.data_key_version)
        .bind(&row.sealed)
        .bind(&row.created_at)
        .bind(&row.created_by)
        .bind(&row.expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(storage)?;
        // A new value is the rotation the flag asked for.
        sqlx::query(
            "INSERT INTO secret_state (namespace, app, name) VALUES (?, ?, ?)
             ON CONFLICT (namespace, app, name) DO UPDATE SET rotation_reason = NULL",
        )
        .bind(&row.namespace)
        .bind(&row.app)
        .bind(&row.name)
        .execute(&mut *tx)
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(version)
    }

    async fn latest_sealed(&self, namespace: &str, app: &str) -> Result<Vec<SealedSecret>, SecretError> {
        let rows = sqlx::query(
            "SELECT v.name, v.version, v.data_key_version, v.sealed FROM secret_versions v
             WHERE v.namespace = ?1 AND v.app = ?2
               AND v.version = (SELECT MAX(version) FROM secret_versions
                                WHERE namespace = ?1 AND app = ?2 AND name = v.name)
             ORDER BY v.name",
        )
        .bind(namespace)
        .bind(app)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        Ok(rows
            .iter()
            .map(|row| SealedSecret {
                name: row.get("name"),
                version: row.get("version"),
                data_key_version: row.get("data_key_version"),
                sealed: row.get("sealed"),
            })
            .collect())
    }

    async fn list_secrets(&self, namespace: Option<&str>, app: Option<&str>) -> Result<Vec<SecretRow>, SecretError> {
        let rows = sqlx::query(
            "SELECT v.namespace, v.app, v.name, v.version, v.created_at, v.created_by, v.expires_at, v.expiry_notice,
                    (SELECT COUNT(*) FROM secret_versions c
                     WHERE c.namespace = v.namespace AND c.app = v.app AND c.name = v.name) AS n_versions,
                    s.last_read_at, s.rotation_reason
             FROM secret_versions v
             LEFT JOIN secret_state s ON s.namespace = v.namespace AND s.app = v.app AND s.name = v.name
             WHERE (?1 IS NULL OR v.namespace = ?1) AND (?2 IS NULL OR v.app = ?2)
               AND v.version = (SELECT MAX(version) FROM secret_versions m
                                WHERE m.namespace = v.namespace AND m.app = v.app AND m.name = v.name)
             ORDER BY v.namespace, v.app, v.name",
        )
        .bind(namespace)
        .bind(app)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        Ok(rows
            .iter()
            .map(|row| SecretRow {
                namespace: row.get("namespace"),
                app: row.get("app"),
                name: row.get("name"),
                version: row.get("version"),
                n_versions: row.get("n_versions"),
                created_at: row.get("created_at"),
                created_by: row.get("created_by"),
                expires_at: row.get("expires_at"),
                last_read_at: row.get("last_read_at"),
                rotation_reason: row.get("rotation_reason"),
                expiry_notice: row.get("expiry_notice"),
            })
            .collect())
    }

    async fn list_versions(&self, namespace: &str, app: &str, name: &str) -> Result<Vec<VersionRow>, SecretError> {
        let rows = sqlx::query(
            "SELECT version, created_at, created_by, expires_at FROM secret_versions
             WHERE namespace = ? AND app = ? AND name = ? ORDER BY version DESC",
        )
        .bind(namespace)
        .bind(app)
        .bind(name)
        .fetch_all(&self.pool)
        .await
        .map_err(storage)?;
        Ok(rows
            .iter()
            .map(|row| VersionRow {
                version: row.get("version"),
                created_at: row.get("created_at"),
                created_by: row.get("created_by"),
                expires_at: row.get("expires_at"),
            })
            .collect())
    }

    async fn remove_secret(&self, namespace: &str, app: &str, name: &str) -> Result<u64, SecretError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(storage)?;
        let removed = sqlx::query("DELETE FROM secret_versions WHERE namespace = ? AND app = ? AND name = ?")
            .bind(namespace)
            .bind(app)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(storage)?
            .rows_affected();
        sqlx::query("DELETE FROM secret_state WHERE namespace = ? AND app = ? AND name = ?")
            .bind(namespace)
            .bind(app)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        Ok(removed)
    }

    async fn record_reads(&self, namespace: &str, app: &str, names: &[String], at: &str) -> Result<(), SecretError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(storage)?;
        for name in names {
            sqlx::query(
                "INSERT INTO secret_state (namespace, app, name, last_read_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (namespace, app, name) DO UPDATE SET last_read_at = excluded.last_read_at",
            )
            .bind(namespace)
            .bind(app)
            .bind(name)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)
    }

    async fn flag_rotation(&self, namespace: &str, app: &str, reason: &str) -> Result<Vec<String>, SecretError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(storage)?;
        let names: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT name FROM secret_versions WHERE namespace = ? AND app = ? ORDER BY name",
        )
        .bind(namespace)
        .bind(app)
        .fetch_all(&mut *tx)
        .await
        .map_err(storage)?;
        for name in &names {
            sqlx::query(
                "INSERT INTO secret_state (namespace, app, name, rotation_reason) VALUES (?, ?, ?, ?)
                 ON CONFLICT (namespace, app, name) DO UPDATE SET rotation_reason = excluded.rotation_reason",
            )
            .bind(namespace)
            .bind(app)
            .bind(name)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(storage)?;
        }
        tx.commit().await.map_err(storage)?;
        Ok(names)
    }

    async fn set_expiry_notice(
        &self,
        namespace: &str,
        app: &str,
        name: &str,
        version: i64,
        notice: &str,
    ) -> Result<(), SecretError> {
        sqlx::query(
            "UPDATE secret_versions SET expiry_notice = ? WHERE namespace = ? AND app = ? AND name = ? AND version = ?",
        )
        .bind(notice)
        .bind(namespace)
        .bind(app)
        .bind(name)
        .bind(version)
        .execute(&self.pool)
        .await
        .map_err(storage)?;
        Ok(())
    }
}
