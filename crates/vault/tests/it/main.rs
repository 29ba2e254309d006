//! The Vault client against the Vault-shaped test server of `test-support` (not Vault itself:
//! none can be installed here; see that module).

use std::sync::Arc;
use std::time::Duration;

use runtime::SecretValue;
use serde_json::json;
use test_support::vault::VaultShapedServer;
use vault::{VaultAuth, VaultClient, VaultConfig, VaultError};

const ROOT: &str = "hvs.root-test-token";

fn client(server: &VaultShapedServer, auth: VaultAuth, cache_ttl: Duration) -> VaultClient {
    VaultClient::new(VaultConfig {
        address: server.url().parse().unwrap(),
        auth,
        namespace: None,
        cache_ttl,
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn approle() -> VaultAuth {
    VaultAuth::AppRole {
        mount: "approle".to_owned(),
        role_id: "role-1".to_owned(),
        secret_id: SecretValue::new("secret-id-1".to_owned()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kv_v2_secrets_are_read_with_a_token_and_cached() {
    let server = VaultShapedServer::start(ROOT, "role-1", "secret-id-1", Duration::from_secs(60));
    server.put_kv("microapp", "growth/where2eat", json!({ "MAPS_KEY": "maps-123", "RETRIES": 3 }));
    let vault = client(&server, VaultAuth::Token(SecretValue::new(ROOT.to_owned())), Duration::from_secs(60));

    let secret = vault.read_kv("microapp", "growth/where2eat").await.unwrap();
    assert_eq!(secret.values["MAPS_KEY"].expose(), "maps-123");
    assert_eq!(secret.values["RETRIES"].expose(), "3", "non-string values become their JSON text");
    assert_eq!(secret.version, 1);
    vault.read_kv("microapp", "growth/where2eat").await.unwrap();
    assert_eq!(server.calls("kv_read"), 1, "the second read comes from the cache");

    let missing = vault.read_kv("microapp", "growth/missing").await.unwrap_err();
    assert!(matches!(missing, VaultError::NotFound { .. }));
    assert!(missing.to_string().contains("vault kv put microapp/growth/missing"), "{missing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_short_cache_sees_new_versions() {
    let server = VaultShapedServer::start(ROOT, "role-1", "secret-id-1", Duration::from_secs(60));
    server.put_kv("kv", "growth/app", json!({ "A": "one" }));
    let vault = client(&server, VaultAuth::Token(SecretValue::new(ROOT.to_owned())), Duration::ZERO);
    assert_eq!(vault.read_kv("kv", "growth/app").await.unwrap().values["A"].expose(), "one");
    server.put_kv("kv", "growth/app", json!({ "A": "two" }));
    let secret = vault.read_kv("kv", "growth/app").await.unwrap();
    assert_eq!((secret.values["A"].expose(), secret.version), ("two", 2));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_token_is_refused_without_showing_it() {
    let server = VaultShapedServer::start(ROOT, "role-1", "secret-id-1", Duration::from_secs(60));
    server.put_kv("kv", "growth/app", json!({ "A": "one" }));
    let vault = client(&server, VaultAuth::Token(SecretValue::new("hvs.wrong-token".to_owned())), Duration::ZERO);
    let error = vault.read_kv("kv", "growth/app").await.unwrap_err().to_string();
    assert!(error.contains("refused to read vault://kv/growth/app") && !error.contains("hvs.wrong"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approle_tokens_are_renewed_and_obtained_again_when_revoked() {
    let server = VaultShapedServer::start(ROOT, "role-1", "secret-id-1", Duration::from_secs(6));
    server.put_kv("kv", "growth/app", json!({ "A": "one" }));
    let vault = client(&server, approle(), Duration::ZERO);
    vault.read_kv("kv", "growth/app").await.unwrap();
    assert_eq!(server.calls("login"), 1);
    // Past two thirds of the 6 s lease, the token is renewed rather than replaced (a busy machine
    // has almost two seconds to send the next read before the lease runs out).
    tokio::time::sleep(Duration::from_millis(4200)).await;
    vault.read_kv("kv", "growth/app").await.unwrap();
    assert_eq!((server.calls("login"), server.calls("renew")), (1, 1));
    // A revoked token is noticed (403) and replaced by signing in again, once.
    server.revoke_all_tokens_but(ROOT);
    assert_eq!(vault.read_kv("kv", "growth/app").await.unwrap().values["A"].expose(), "one");
    assert_eq!(server.calls("login"), 2);

    let wrong = VaultAuth::AppRole {
        mount: "approle".to_owned(),
        role_id: "role-1".to_owned(),
        secret_id: SecretValue::new("not-the-secret-id".to_owned()),
    };
    let error = client(&server, wrong, Duration::ZERO).read_kv("kv", "growth/app").await.unwrap_err();
    assert!(matches!(error, VaultError::Auth { .. }) && !error.to_string().contains("not-the-secret"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn transit_wraps_data_keys_and_rotation_rewraps_them() {
    use secrets::{SecretName, SecretStore};
    let server = VaultShapedServer::start(ROOT, "role-1", "secret-id-1", Duration::from_secs(60));
    let vault = Arc::new(client(&server, VaultAuth::Token(SecretValue::new(ROOT.to_owned())), Duration::ZERO));
    let kek = Arc::new(vault::TransitKek::new(vault, "transit", "terrarium"));
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(store_sqlite::SqliteStore::open(&dir.path().join("t.db")).await.unwrap());
    let store = SecretStore::new(db.clone(), kek.clone());
    let name = SecretName { namespace: "growth".into(), app: "app".into(), name: "TOKEN".into() };
    store.set(&name, &SecretValue::new("tok-1".into()), None, "ana", "2026-11-22T00:00:00Z").await.unwrap();
    assert_eq!(server.calls("encrypt"), 1);

    let mut events = Vec::new();
    assert_eq!(store.rotate_kek(false, &mut |event| events.push(event)).await.unwrap(), 1);
    assert_eq!(server.calls("rotate"), 1);
    assert!(!store.rotation_pending().await.unwrap());
    // A new process unwraps through Vault with the rewrapped key.
    let fresh = SecretStore::new(db, kek);
    assert_eq!(fresh.open_app("growth", "app", "2026-11-22T00:00:00Z").await.unwrap()["TOKEN"].expose(), "tok-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_that_a_url_parser_would_rewrite_are_refused() {
    let server = VaultShapedServer::start(ROOT, "role-1", "secret-id-1", Duration::from_secs(60));
    server.put_kv("kv", "finance/db", json!({ "PASSWORD": "finance-only" }));
    let vault = client(&server, VaultAuth::Token(SecretValue::new(ROOT.to_owned())), Duration::ZERO);
    for path in
        ["growth/%2e%2e/finance/db", "growth/../finance/db", "growth\\..\\finance/db", "growth//db", "growth/./db"]
    {
        let error = vault.read_kv("kv", path).await.unwrap_err();
        assert!(matches!(error, VaultError::Protocol { .. }), "{path}: {error}");
    }
    assert_eq!(server.calls("kv_read"), 0, "nothing reached Vault");
}
