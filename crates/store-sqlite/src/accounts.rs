//! Users and role bindings, for `accounts`.

use ::accounts::store::{AccountStore, AccountStoreError, RoleBindingRow, UserChange, UserRow};
use async_trait::async_trait;
use audit::AuditEvent;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{BEGIN_WRITE, SqliteStore, insert_audit, is_unique_violation};

fn account_backend(error: impl std::fmt::Display) -> AccountStoreError {
    AccountStoreError::Backend(error.to_string())
}

fn user_row(row: &SqliteRow) -> Result<UserRow, AccountStoreError> {
    let groups: String = row.get("groups");
    Ok(UserRow {
        name: row.get("name"),
        password_hash: row.get("password_hash"),
        display_name: row.get("display_name"),
        email: row.get("email"),
        groups: serde_json::from_str(&groups).map_err(account_backend)?,
        disabled: row.get("disabled"),
        created_at: row.get("created_at"),
        created_by: row.get("created_by"),
    })
}

fn binding_row(row: &SqliteRow) -> RoleBindingRow {
    RoleBindingRow {
        namespace: row.get("namespace"),
        subject: row.get("subject"),
        role: row.get("role"),
        created_at: row.get("created_at"),
        created_by: row.get("created_by"),
    }
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn count_users(&self) -> Result<u64, AccountStoreError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await.map_err(account_backend)?;
        Ok(n as u64)
    }

    async fn create_user(&self, user: UserRow, audit: AuditEvent) -> Result<(), AccountStoreError> {
        let groups = serde_json::to_string(&user.groups).map_err(account_backend)?;
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(account_backend)?;
        let inserted = sqlx::query(
            "INSERT INTO users (name, password_hash, display_name, email, groups, disabled, created_at, created_by)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&user.name)
        .bind(&user.password_hash)
        .bind(&user.display_name)
        .bind(&user.email)
        .bind(&groups)
        .bind(user.disabled)
        .bind(&user.created_at)
        .bind(&user.created_by)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(error) if is_unique_violation(&error) => return Err(AccountStoreError::UserExists { name: user.name }),
            other => other.map_err(account_backend)?,
        };
        insert_audit(&mut tx, &audit).await.map_err(account_backend)?;
        tx.commit().await.map_err(account_backend)
    }

    async fn get_user(&self, name: &str) -> Result<UserRow, AccountStoreError> {
        let row = sqlx::query("SELECT * FROM users WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(account_backend)?;
        match row {
            Some(row) => user_row(&row),
            None => Err(AccountStoreError::UnknownUser { name: name.to_owned() }),
        }
    }

    async fn list_users(&self) -> Result<Vec<UserRow>, AccountStoreError> {
        let rows =
            sqlx::query("SELECT * FROM users ORDER BY name").fetch_all(&self.pool).await.map_err(account_backend)?;
        rows.iter().map(user_row).collect()
    }

    async fn update_user(
        &self,
        name: &str,
        change: UserChange,
        audit: AuditEvent,
    ) -> Result<UserRow, AccountStoreError> {
        let groups = change.groups.as_ref().map(serde_json::to_string).transpose().map_err(account_backend)?;
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(account_backend)?;
        let updated = sqlx::query(
            "UPDATE users SET disabled = COALESCE(?, disabled), groups = COALESCE(?, groups),
             password_hash = COALESCE(?, password_hash) WHERE name = ?",
        )
        .bind(change.disabled)
        .bind(groups)
        .bind(&change.password_hash)
        .bind(name)
        .execute(&mut *tx)
        .await
        .map_err(account_backend)?;
        if updated.rows_affected() == 0 {
            return Err(AccountStoreError::UnknownUser { name: name.to_owned() });
        }
        insert_audit(&mut tx, &audit).await.map_err(account_backend)?;
        tx.commit().await.map_err(account_backend)?;
        self.get_user(name).await
    }

    async fn grant_role(&self, binding: RoleBindingRow, audit: AuditEvent) -> Result<(), AccountStoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(account_backend)?;
        sqlx::query(
            // ON CONFLICT, not OR IGNORE: OR IGNORE would also swallow a failed CHECK on the role.
            "INSERT INTO role_bindings (namespace, subject, role, created_at, created_by) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (namespace, subject, role) DO NOTHING",
        )
        .bind(&binding.namespace)
        .bind(&binding.subject)
        .bind(&binding.role)
        .bind(&binding.created_at)
        .bind(&binding.created_by)
        .execute(&mut *tx)
        .await
        .map_err(account_backend)?;
        insert_audit(&mut tx, &audit).await.map_err(account_backend)?;
        tx.commit().await.map_err(account_backend)
    }

    async fn revoke_role(
        &self,
        namespace: &str,
        subject: &str,
        role: &str,
        audit: AuditEvent,
    ) -> Result<(), AccountStoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(account_backend)?;
        let deleted = sqlx::query("DELETE FROM role_bindings WHERE namespace = ? AND subject = ? AND role = ?")
            .bind(namespace)
            .bind(subject)
            .bind(role)
            .execute(&mut *tx)
            .await
            .map_err(account_backend)?;
        if deleted.rows_affected() == 0 {
            return Err(AccountStoreError::UnknownBinding {
                namespace: namespace.to_owned(),
                subject: subject.to_owned(),
                role: role.to_owned(),
            });
        }
        insert_audit(&mut tx, &audit).await.map_err(account_backend)?;
        tx.commit().await.map_err(account_backend)
    }

    async fn list_role_bindings(&self, namespace: Option<&str>) -> Result<Vec<RoleBindingRow>, AccountStoreError> {
        let rows = sqlx::query(
            "SELECT * FROM role_bindings WHERE (?1 IS NULL OR namespace = ?1 OR namespace = '*')
             ORDER BY namespace, subject, role",
        )
        .bind(namespace)
        .fetch_all(&self.pool)
        .await
        .map_err(account_backend)?;
        Ok(rows.iter().map(binding_row).collect())
    }

    async fn bindings_of(&self, subjects: &[String]) -> Result<Vec<RoleBindingRow>, AccountStoreError> {
        // One JSON array parameter instead of a query built from strings.
        let subjects = serde_json::to_string(subjects).map_err(account_backend)?;
        let rows = sqlx::query(
            "SELECT * FROM role_bindings WHERE subject IN (SELECT value FROM json_each(?)) ORDER BY namespace, role",
        )
        .bind(subjects)
        .fetch_all(&self.pool)
        .await
        .map_err(account_backend)?;
        Ok(rows.iter().map(binding_row).collect())
    }

    async fn append_audit(&self, event: AuditEvent) -> Result<(), AccountStoreError> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await.map_err(account_backend)?;
        insert_audit(&mut tx, &event).await.map_err(account_backend)?;
        tx.commit().await.map_err(account_backend)
    }
}
