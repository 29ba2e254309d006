//! Tests of the SQLite store against a real database file.

use std::collections::BTreeMap;

use deployment::{FunctionLimits, StaticSite};

use super::*;

fn audit(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        time: "2026-11-22T00:00:00Z".into(),
        principal: "admin".into(),
        action: action.into(),
        namespace: Some("growth".into()),
        app: Some("where2eat".into()),
        revision: None,
        outcome: "success".into(),
        detail: String::new(),
    }
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
            limits: FunctionLimits {
                cpu_ms_per_request: 50,
                memory_bytes: 1 << 26,
                stack_bytes: 1 << 19,
                wall_timeout_ms: 1000,
                max_response_bytes: 1 << 20,
                max_outbound_requests: 10,
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
        store.insert_revision(revision(1, false), audit("deploy")).await,
        Err(StoreError::UnknownNamespace { .. })
    ));
    assert_eq!(store.list_audit(AuditFilter { limit: 10, ..Default::default() }).await.unwrap().len(), 0);

    assert_eq!(store.next_revision(&app).await.unwrap(), 1);
    store.insert_revision(revision(1, true), audit("deploy")).await.unwrap();
    assert_eq!(store.next_revision(&app).await.unwrap(), 2);
    store.insert_revision(revision(2, false), audit("deploy")).await.unwrap();
    assert!(matches!(
        store.insert_revision(revision(2, false), audit("deploy")).await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(store.get_app(&app).await.unwrap().active_revision, 2);

    assert_eq!(store.get_deployment(&app, 1).await.unwrap().bundle_digest, "sha256:1");
    assert!(matches!(store.get_deployment(&app, 7).await, Err(StoreError::UnknownRevision { .. })));
    let rolled_back = store.set_active_revision(&app, 1, audit("rollback")).await.unwrap();
    assert_eq!(rolled_back.revision, 1);
    assert!(matches!(
        store.set_active_revision(&app, 9, audit("rollback")).await,
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
        .map(|row| row.event.action)
        .collect();
    assert_eq!(actions, ["rollback", "deploy", "deploy"]);
    assert_eq!(store.list_namespaces().await.unwrap()[0].n_apps, 1);

    store.delete_app(&app, audit("delete")).await.unwrap();
    assert!(matches!(store.get_app(&app).await, Err(StoreError::UnknownApp { .. })));
    assert!(store.active_deployments().await.unwrap().is_empty());
    assert!(matches!(store.delete_app(&app, audit("delete")).await, Err(StoreError::UnknownApp { .. })));
}

#[tokio::test]
async fn namespaces_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.create_namespace("growth", "admin", audit("namespace.create")).await.unwrap();
    assert!(matches!(
        store.create_namespace("growth", "admin", audit("namespace.create")).await,
        Err(StoreError::NamespaceExists { .. })
    ));
    assert_eq!(store.list_namespaces().await.unwrap().len(), 1);
}
