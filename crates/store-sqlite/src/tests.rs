//! Tests of the SQLite store against a real database file.

use std::collections::BTreeMap;

use deployment::{FunctionLimits, StaticSite};

use audit::Action;

use super::*;

fn audit(action: Action) -> NewAuditEvent {
    let mut event =
        NewAuditEvent::new("admin", action, audit::Outcome::Success).app(&AppKey::new("growth", "where2eat"));
    event.time = "2026-11-22T00:00:00Z".into();
    event
}

fn revision(revision: i64, create_namespace: bool) -> NewRevision {
    NewRevision {
        deployment: Deployment {
            app: AppKey::new("growth", "where2eat"),
            revision,
            bundle_digest: format!("sha256:{revision}"),
            static_site: Some(StaticSite { dir: "public".into(), spa: false }),
            files: BTreeMap::new(),
            functions: vec![],
            vars: BTreeMap::new(),
            allowed_egress: vec![],
            admission: deployment::Admission { requests_per_second: 1000, burst: 1000, concurrency: 100 },
            secrets: None,
            ttl_days: None,
            monthly_budget: None,
            monthly_requests: None,
            slo: None,
            kv_binding: None,
            kv_max_mib: None,
            ai_models: Vec::new(),
            vectors: None,
            seal_data: false,
            data_class: None,
            sql: None,
            access: deployment::AppAccess {
                owner: "user:tester".into(),
                visibility: deployment::Visibility::Public,
                groups: vec![],
            },
            limits: FunctionLimits {
                cpu_ms_per_request: 50,
                memory_bytes: 1 << 26,
                stack_bytes: 1 << 19,
                wall_timeout_ms: 1000,
                max_response_bytes: 1 << 20,
                max_outbound_requests: 10,
                max_outbound_bytes: 1 << 20,
            },
        },
        owner: "user:ana".into(),
        runtime: "static".into(),
        description: None,
        manifest_source: "apiVersion: terrarium.dev/v1".into(),
        created_by: "admin".into(),
        created_at: "2026-11-22T00:00:00Z".into(),
        size_bytes: 10,
        create_namespace,
        expires_at: None,
    }
}

#[tokio::test]
async fn revisions_activation_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("terrarium.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let app = AppKey::new("growth", "where2eat");

    // Without the namespace and without permission to create it, nothing is written.
    assert!(matches!(
        store.insert_revision(revision(1, false), audit(Action::AppDeploy)).await,
        Err(StoreError::UnknownNamespace { .. })
    ));
    assert_eq!(store.list_audit(AuditFilter { limit: 10, ..Default::default() }).await.unwrap().len(), 0);

    assert_eq!(store.next_revision(&app).await.unwrap(), 1);
    store.insert_revision(revision(1, true), audit(Action::AppDeploy)).await.unwrap();
    assert_eq!(store.next_revision(&app).await.unwrap(), 2);
    store.insert_revision(revision(2, false), audit(Action::AppDeploy)).await.unwrap();
    assert!(matches!(
        store.insert_revision(revision(2, false), audit(Action::AppDeploy)).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_app(&app).await.unwrap().active_revision, 2);

    assert_eq!(store.get_deployment(&app, 1).await.unwrap().bundle_digest, "sha256:1");
    assert!(matches!(store.get_deployment(&app, 7).await, Err(StoreError::UnknownRevision { .. })));
    let rolled_back = store.set_active_revision(&app, 1, audit(Action::AppRollback)).await.unwrap();
    assert_eq!(rolled_back.revision, 1);
    assert!(matches!(
        store.set_active_revision(&app, 9, audit(Action::AppRollback)).await,
        Err(StoreError::UnknownRevision { .. })
    ));
    drop(store);

    // A restarted server sees the same active revision and the audit trail.
    let store = SqliteStore::open(&path).await.unwrap();
    let active = store.active_deployments().await.unwrap();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0].revision, 1);
    assert_eq!(store.list_revisions(&app).await.unwrap().len(), 2);
    let actions: Vec<String> = store
        .list_audit(AuditFilter { namespace: Some("growth".into()), limit: 10, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|row| row.action)
        .collect();
    assert_eq!(actions, ["app.rollback", "app.deploy", "app.deploy"]);
    assert_eq!(store.list_namespaces().await.unwrap()[0].n_apps, 1);

    store.delete_app(&app, audit(Action::AppDelete)).await.unwrap();
    assert!(matches!(store.get_app(&app).await, Err(StoreError::UnknownApp { .. })));
    assert!(store.active_deployments().await.unwrap().is_empty());
    assert!(matches!(store.delete_app(&app, audit(Action::AppDelete)).await, Err(StoreError::UnknownApp { .. })));
}

#[tokio::test]
async fn namespaces_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.create_namespace("growth", "admin", audit(Action::NamespaceCreate)).await.unwrap();
    assert!(matches!(
        store.create_namespace("growth", "admin", audit(Action::NamespaceCreate)).await,
        Err(StoreError::NamespaceExists { .. })
    ));
    assert_eq!(store.list_namespaces().await.unwrap().len(), 1);
}

fn user(name: &str) -> ::accounts::store::UserRow {
    ::accounts::store::UserRow {
        name: name.into(),
        password_hash: Some("$argon2id$fake".into()),
        display_name: None,
        email: None,
        groups: vec!["growth".into()],
        disabled: false,
        created_at: "2026-11-22T00:00:00Z".into(),
        created_by: "admin".into(),
    }
}

fn binding(namespace: &str, subject: &str, role: &str) -> ::accounts::store::RoleBindingRow {
    ::accounts::store::RoleBindingRow {
        namespace: namespace.into(),
        subject: subject.into(),
        role: role.into(),
        created_at: "2026-11-22T00:00:00Z".into(),
        created_by: "admin".into(),
    }
}

#[tokio::test]
async fn users_and_role_bindings() {
    use ::accounts::store::{AccountStore, AccountStoreError};

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 0);
    store.create_user(user("ana"), audit(Action::UserCreate)).await.unwrap();
    assert!(matches!(
        store.create_user(user("ana"), audit(Action::UserCreate)).await,
        Err(AccountStoreError::UserExists { .. })
    ));
    assert_eq!(store.get_user("ana").await.unwrap().groups, ["growth"]);
    assert!(matches!(store.get_user("bob").await, Err(AccountStoreError::UnknownUser { .. })));

    let change = ::accounts::store::UserChange { disabled: Some(true), groups: Some(vec![]), ..Default::default() };
    let changed = store.update_user("ana", change, audit(Action::UserUpdate)).await.unwrap();
    assert!(changed.disabled);
    assert!(changed.groups.is_empty());
    assert_eq!(changed.password_hash.as_deref(), Some("$argon2id$fake"), "fields left out stay");

    store.grant_role(binding("growth", "user:ana", "builder"), audit(Action::RoleGrant)).await.unwrap();
    store.grant_role(binding("growth", "user:ana", "builder"), audit(Action::RoleGrant)).await.unwrap();
    store.grant_role(binding("*", "group:ops", "operator"), audit(Action::RoleGrant)).await.unwrap();
    store.grant_role(binding("other", "user:bob", "viewer"), audit(Action::RoleGrant)).await.unwrap();
    assert!(store.grant_role(binding("growth", "user:ana", "superuser"), audit(Action::RoleGrant)).await.is_err());
    let of_ana = store.bindings_of(&["user:ana".into(), "group:ops".into()]).await.unwrap();
    assert_eq!(of_ana.len(), 2);
    assert_eq!(
        store.list_role_bindings(Some("growth")).await.unwrap().len(),
        2,
        "growth's own and the platform-wide one"
    );
    assert_eq!(store.list_role_bindings(None).await.unwrap().len(), 3);
    store.revoke_role("growth", "user:ana", "builder", audit(Action::RoleRevoke)).await.unwrap();
    assert!(matches!(
        store.revoke_role("growth", "user:ana", "builder", audit(Action::RoleRevoke)).await,
        Err(AccountStoreError::UnknownBinding { .. })
    ));
}

mod secret_store {
    use std::sync::Arc;

    use secrets::kek::KeyFile;
    use secrets::{RotationEvent, SecretName, SecretStore, SecretValue};

    use crate::SqliteStore;

    fn name(namespace: &str, app: &str, name: &str) -> SecretName {
        SecretName { namespace: namespace.to_owned(), app: app.to_owned(), name: name.to_owned() }
    }

    #[tokio::test]
    async fn secrets_are_sealed_versioned_read_and_rewrapped() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
        let kek = Arc::new(KeyFile::open_or_create(&dir.path().join("kek.json")).unwrap());
        let store = SecretStore::new(db.clone(), kek.clone());
        let now = "2026-11-22T10:00:00Z";
        let key = name("growth", "where2eat", "MAPS_KEY");
        let v1 = SecretValue::new("maps-value-one".to_owned());
        let v2 = SecretValue::new("maps-value-two".to_owned());
        assert_eq!(store.set(&key, &v1, None, "ana", now).await.unwrap(), 1);
        assert_eq!(store.set(&key, &v2, Some("2027-01-01T00:00:00Z".into()), "ana", now).await.unwrap(), 2);
        store.set(&name("finance", "where2eat", "MAPS_KEY"), &v1, None, "bo", now).await.unwrap();

        // The database holds no value in clear.
        drop(store);
        let raw = std::fs::read(dir.path().join("t.db")).unwrap();
        let wal = std::fs::read(dir.path().join("t.db-wal")).unwrap_or_default();
        for bytes in [&raw, &wal] {
            assert!(!bytes.windows(9).any(|window| window == b"maps-valu"), "a value is stored in clear");
        }
        let store = SecretStore::new(db.clone(), kek.clone());

        let opened = store.open_app("growth", "where2eat", "2026-11-22T11:00:00Z").await.unwrap();
        assert_eq!(opened["MAPS_KEY"].expose(), "maps-value-two");
        assert!(store.open_app("growth", "other", now).await.unwrap().is_empty());
        let listed = store.list("growth", Some("where2eat")).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!((listed[0].version, listed[0].n_versions), (2, 2));
        assert_eq!(listed[0].last_read_at.as_deref(), Some("2026-11-22T11:00:00Z"));
        assert_eq!(listed[0].expires_at.as_deref(), Some("2027-01-01T00:00:00Z"));
        assert_eq!(store.versions(&key).await.unwrap().len(), 2);

        assert_eq!(store.flag_for_rotation("growth", "where2eat", "owner changed").await.unwrap(), ["MAPS_KEY"]);
        assert_eq!(store.list("growth", None).await.unwrap()[0].rotation_reason.as_deref(), Some("owner changed"));
        store.set(&key, &v1, None, "ana", now).await.unwrap();
        assert_eq!(store.list("growth", None).await.unwrap()[0].rotation_reason, None);

        let mut events = Vec::new();
        let rewrapped = store.rotate_kek(false, &mut |event| events.push(event)).await.unwrap();
        assert_eq!(rewrapped, 2, "one data key per namespace");
        assert!(matches!(events.last(), Some(RotationEvent::Finished { rewrapped: 2 })));
        assert_eq!(kek.key_count(), 1);
        // A fresh process (no cached data keys) opens everything under the new KEK.
        let reopened =
            SecretStore::new(db.clone(), Arc::new(KeyFile::open_or_create(&dir.path().join("kek.json")).unwrap()));
        assert_eq!(
            reopened.open_app("finance", "where2eat", now).await.unwrap()["MAPS_KEY"].expose(),
            "maps-value-one"
        );
        assert!(!reopened.rotation_pending().await.unwrap());

        assert_eq!(store.remove(&key).await.unwrap(), 3);
        assert!(store.remove(&key).await.is_err());
        assert!(store.open_app("growth", "where2eat", now).await.unwrap().is_empty());
    }
}

mod governance {
    use api_types::policy::{ApprovalVote, Kind, Mode, Violation};
    use control::store::{ApprovalEnd, ApprovalRow, GovernanceStore};

    use super::*;

    fn violation(policy: &str, message: &str) -> Violation {
        Violation { policy: policy.into(), kind: Kind::Elevated, mode: Mode::Deny, message: message.into() }
    }

    fn request(digest: &str) -> ApprovalRow {
        ApprovalRow {
            id: 0,
            app: AppKey::new("growth", "where2eat"),
            state: "pending".into(),
            requested_by: "bea".into(),
            requested_at: "2026-11-22T00:00:00Z".into(),
            expires_at: "2026-11-25T00:00:00Z".into(),
            digest: digest.into(),
            requests: vec![violation("egress_hosts", "egress to api.weather.dev")],
            required: 1,
            approvers: vec![],
            votes: vec![],
            revision: None,
            decided_at: None,
            outcome: None,
            pending: "{}".into(),
        }
    }

    #[tokio::test]
    async fn requests_votes_grants_and_violations() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("terrarium.db")).await.unwrap();
        let app = AppKey::new("growth", "where2eat");

        // A newer request supersedes the pending one.
        let first = store.create_approval(request("sha256:1"), audit(Action::ApprovalRequest)).await.unwrap();
        let second = store.create_approval(request("sha256:2"), audit(Action::ApprovalRequest)).await.unwrap();
        assert_eq!(store.get_approval(first).await.unwrap().unwrap().state, "superseded");
        let pending = store.list_approvals(Some("growth"), Some("where2eat"), Some("pending")).await.unwrap();
        assert_eq!(pending.iter().map(|row| row.id).collect::<Vec<_>>(), [second]);

        // One vote per approver, only while pending; ending mints the grants exactly once.
        let vote = |approver: &str| ApprovalVote {
            approver: approver.into(),
            decision: "approve".into(),
            reason: "vetted".into(),
            time: "2026-11-22T01:00:00Z".into(),
        };
        store.add_vote(second, vote("olu"), audit(Action::ApprovalVote)).await.unwrap();
        assert!(matches!(
            store.add_vote(second, vote("olu"), audit(Action::ApprovalVote)).await,
            Err(StoreError::Refused(_))
        ));
        let end = ApprovalEnd {
            state: "approved".into(),
            outcome: "approved by olu".into(),
            decided_at: "2026-11-22T01:00:00Z".into(),
            revision: Some(2),
            grants: vec![("egress_hosts".into(), "egress to api.weather.dev".into())],
        };
        assert!(store.finish_approval(second, end.clone(), audit(Action::ApprovalApprove)).await.unwrap());
        assert!(!store.finish_approval(second, end, audit(Action::ApprovalApprove)).await.unwrap(), "not twice");
        assert!(matches!(
            store.add_vote(second, vote("pat"), audit(Action::ApprovalVote)).await,
            Err(StoreError::Refused(_))
        ));
        assert_eq!(
            store.grants(&app).await.unwrap(),
            [("egress_hosts".to_owned(), "egress to api.weather.dev".to_owned())]
        );
        assert!(store.grants(&AppKey::new("other", "where2eat")).await.unwrap().is_empty(), "grants are per namespace");

        // An audit replaces what the previous one found (even within the same second) and keeps
        // the first-seen time of what it finds again.
        let found = [violation("ttl", "too long"), violation("owner", "unknown owner")];
        store.replace_violations(&app, 1, &found, "2026-11-22T02:00:00Z").await.unwrap();
        store.replace_violations(&app, 1, &found[..1], "2026-11-22T02:00:00Z").await.unwrap();
        store.replace_violations(&app, 2, &found[..1], "2026-11-22T03:00:00Z").await.unwrap();
        let stored = store.list_violations(Some("growth"), None, None).await.unwrap();
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(
            (stored[0].first_seen.as_str(), stored[0].last_seen.as_str()),
            ("2026-11-22T02:00:00Z", "2026-11-22T03:00:00Z")
        );
        assert_eq!(stored[0].revision, 2);
        assert!(store.list_violations(None, None, Some("owner")).await.unwrap().is_empty());
    }
}

/// Key-value namespaces on a real database: the contract every `KvStore` keeps.
#[tokio::test]
async fn kv_entries_per_app() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    capability_kv::contract::check(&store).await;
}
