//! Approval requests, grants, exceptions and policy violations in SQLite.

use api_types::policy::{ApprovalVote, StoredViolation, Violation};
use async_trait::async_trait;
use control::store::{ApprovalEnd, ApprovalRow, ExceptionRow, GovernanceStore, NewAuditEvent, StoreError};
use deployment::AppKey;
use sqlx::Row;
use sqlx::sqlite::SqliteRow;

use crate::{SqliteStore, backend, insert_audit};

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(backend)
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(backend)
}

/// A string column holding a serde enum (`"deny"`), as the enum.
fn enum_column<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    from_json(&format!("\"{text}\""))
}

fn approval_row(row: &SqliteRow, votes: Vec<ApprovalVote>) -> Result<ApprovalRow, StoreError> {
    Ok(ApprovalRow {
        id: row.get("id"),
        app: AppKey::new(row.get::<&str, _>("namespace"), row.get::<&str, _>("app")),
        state: row.get("state"),
        requested_by: row.get("requested_by"),
        requested_at: row.get("requested_at"),
        expires_at: row.get("expires_at"),
        digest: row.get("digest"),
        requests: from_json(row.get("requests"))?,
        required: row.get::<i64, _>("required").clamp(1, i64::from(u32::MAX)) as u32,
        approvers: from_json(row.get("approvers"))?,
        votes,
        revision: row.get("revision"),
        decided_at: row.get("decided_at"),
        outcome: row.get("outcome"),
        pending: row.get("pending"),
    })
}

fn exception_row(row: &SqliteRow) -> ExceptionRow {
    ExceptionRow {
        id: row.get("id"),
        app: AppKey::new(row.get::<&str, _>("namespace"), row.get::<&str, _>("app")),
        policy: row.get("policy"),
        reason: row.get("reason"),
        granted_by: row.get("granted_by"),
        granted_at: row.get("granted_at"),
        expires_at: row.get("expires_at"),
        removed_at: row.get("removed_at"),
    }
}

impl SqliteStore {
    async fn votes(&self, id: i64) -> Result<Vec<ApprovalVote>, StoreError> {
        let rows = sqlx::query("SELECT * FROM approval_votes WHERE approval_id = ? ORDER BY time, approver")
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows
            .iter()
            .map(|row| ApprovalVote {
                approver: row.get("approver"),
                decision: row.get("decision"),
                reason: row.get("reason"),
                time: row.get("time"),
            })
            .collect())
    }
}

#[async_trait]
impl GovernanceStore for SqliteStore {
    async fn create_approval(&self, row: ApprovalRow, audit: NewAuditEvent) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "UPDATE approvals SET state = 'superseded', decided_at = ?, outcome = 'a newer deploy replaced it'
             WHERE namespace = ? AND app = ? AND state = 'pending'",
        )
        .bind(&row.requested_at)
        .bind(&row.app.namespace)
        .bind(&row.app.name)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO approvals (namespace, app, state, requested_by, requested_at, expires_at, digest, requests,
                                    required, approvers, pending)
             VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&row.app.namespace)
        .bind(&row.app.name)
        .bind(&row.requested_by)
        .bind(&row.requested_at)
        .bind(&row.expires_at)
        .bind(&row.digest)
        .bind(json(&row.requests)?)
        .bind(i64::from(row.required))
        .bind(json(&row.approvers)?)
        .bind(&row.pending)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let mut audit = audit;
        audit.detail = format!("request {id}: {}", audit.detail);
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)?;
        Ok(id)
    }

    async fn get_approval(&self, id: i64) -> Result<Option<ApprovalRow>, StoreError> {
        let row = sqlx::query("SELECT * FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        match row {
            None => Ok(None),
            Some(row) => Ok(Some(approval_row(&row, self.votes(id).await?)?)),
        }
    }

    async fn list_approvals(
        &self,
        namespace: Option<&str>,
        app: Option<&str>,
        state: Option<&str>,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM approvals
             WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR app = ?2) AND (?3 IS NULL OR state = ?3)
             ORDER BY id DESC LIMIT 1000",
        )
        .bind(namespace)
        .bind(app)
        .bind(state)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        let mut approvals = Vec::with_capacity(rows.len());
        for row in &rows {
            approvals.push(approval_row(row, self.votes(row.get("id")).await?)?);
        }
        Ok(approvals)
    }

    async fn add_vote(&self, id: i64, vote: ApprovalVote, audit: NewAuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM approvals WHERE id = ?")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if state.as_deref() != Some("pending") {
            return Err(StoreError::Refused(format!("approval request {id} is not pending")));
        }
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO approval_votes (approval_id, approver, decision, reason, time) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(id)
        .bind(&vote.approver)
        .bind(&vote.decision)
        .bind(&vote.reason)
        .bind(&vote.time)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Refused(format!("{} has voted on approval request {id} already", vote.approver)));
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)
    }

    async fn finish_approval(&self, id: i64, end: ApprovalEnd, audit: NewAuditEvent) -> Result<bool, StoreError> {
        let mut tx = self.begin().await?;
        let updated = sqlx::query(
            "UPDATE approvals SET state = ?, outcome = ?, decided_at = ?, revision = ? WHERE id = ? AND state = 'pending'
             RETURNING namespace, app",
        )
        .bind(&end.state)
        .bind(&end.outcome)
        .bind(&end.decided_at)
        .bind(end.revision)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        let Some(updated) = updated else { return Ok(false) };
        let (namespace, app): (String, String) = (updated.get("namespace"), updated.get("app"));
        for (policy, message) in &end.grants {
            sqlx::query(
                "INSERT OR REPLACE INTO policy_grants (namespace, app, policy, message, approval_id, granted_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
            )
            .bind(&namespace)
            .bind(&app)
            .bind(policy)
            .bind(message)
            .bind(id)
            .bind(&end.decided_at)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn grants(&self, app: &AppKey) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query("SELECT policy, message FROM policy_grants WHERE namespace = ? AND app = ?")
            .bind(&app.namespace)
            .bind(&app.name)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(|row| (row.get("policy"), row.get("message"))).collect())
    }

    async fn manifest_source(&self, app: &AppKey, revision: i64) -> Result<String, StoreError> {
        let source: Option<String> = sqlx::query_scalar(
            "SELECT manifest_source FROM revisions WHERE namespace = ? AND app = ? AND revision = ?",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .bind(revision)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        source.ok_or_else(|| StoreError::UnknownRevision { app: app.clone(), revision })
    }

    async fn replace_violations(
        &self,
        app: &AppKey,
        revision: i64,
        violations: &[Violation],
        time: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        // First-seen times of what was found before; everything else of the app goes.
        let earlier = sqlx::query(
            "DELETE FROM policy_violations WHERE namespace = ? AND app = ? RETURNING policy, kind, message, first_seen",
        )
        .bind(&app.namespace)
        .bind(&app.name)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let first_seen: std::collections::HashMap<(String, String, String), String> = earlier
            .iter()
            .map(|row| ((row.get("policy"), row.get("kind"), row.get("message")), row.get("first_seen")))
            .collect();
        for violation in violations {
            let key = (violation.policy.clone(), violation.kind.as_str().to_owned(), violation.message.clone());
            sqlx::query(
                "INSERT OR IGNORE INTO policy_violations
                    (namespace, app, revision, policy, kind, mode, message, first_seen, last_seen)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&app.namespace)
            .bind(&app.name)
            .bind(revision)
            .bind(&violation.policy)
            .bind(violation.kind.as_str())
            .bind(violation.mode.as_str())
            .bind(&violation.message)
            .bind(first_seen.get(&key).map_or(time, String::as_str))
            .bind(time)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn list_violations(
        &self,
        namespace: Option<&str>,
        app: Option<&str>,
        policy: Option<&str>,
    ) -> Result<Vec<StoredViolation>, StoreError> {
        let rows = sqlx::query(
            "SELECT * FROM policy_violations
             WHERE (?1 IS NULL OR namespace = ?1) AND (?2 IS NULL OR app = ?2) AND (?3 IS NULL OR policy = ?3)
             ORDER BY namespace, app, policy, kind, message",
        )
        .bind(namespace)
        .bind(app)
        .bind(policy)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(StoredViolation {
                    namespace: row.get("namespace"),
                    app: row.get("app"),
                    revision: row.get("revision"),
                    violation: Violation {
                        policy: row.get("policy"),
                        kind: enum_column(row.get("kind"))?,
                        mode: enum_column(row.get("mode"))?,
                        message: row.get("message"),
                    },
                    first_seen: row.get("first_seen"),
                    last_seen: row.get("last_seen"),
                })
            })
            .collect()
    }

    async fn add_exception(&self, row: ExceptionRow, audit: NewAuditEvent) -> Result<i64, StoreError> {
        let mut tx = self.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO policy_exceptions (namespace, app, policy, reason, granted_by, granted_at, expires_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(&row.app.namespace)
        .bind(&row.app.name)
        .bind(&row.policy)
        .bind(&row.reason)
        .bind(&row.granted_by)
        .bind(&row.granted_at)
        .bind(&row.expires_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(backend)?;
        let mut audit = audit;
        audit.detail = format!("exception {id}: {}", audit.detail);
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)?;
        Ok(id)
    }

    async fn list_exceptions(&self, namespace: Option<&str>) -> Result<Vec<ExceptionRow>, StoreError> {
        let rows = sqlx::query("SELECT * FROM policy_exceptions WHERE (?1 IS NULL OR namespace = ?1) ORDER BY id DESC")
            .bind(namespace)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        Ok(rows.iter().map(exception_row).collect())
    }

    async fn remove_exception(
        &self,
        id: i64,
        time: &str,
        audit: NewAuditEvent,
    ) -> Result<Option<ExceptionRow>, StoreError> {
        let mut tx = self.begin().await?;
        let row =
            sqlx::query("UPDATE policy_exceptions SET removed_at = coalesce(removed_at, ?) WHERE id = ? RETURNING *")
                .bind(time)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        insert_audit(&mut tx, &audit).await?;
        tx.commit().await.map_err(backend)?;
        Ok(Some(exception_row(&row)))
    }
}
