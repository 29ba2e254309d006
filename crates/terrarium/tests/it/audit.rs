//! `terrarium audit`: the audit log filtered by namespace, app, actor, action and time, paged,
//! with the API's rules for who may read it.

use crate::support::{Server, fixture, stderr, stdout};

#[test]
fn operators_page_through_the_audit_log_with_filters() {
    let server = Server::start("");
    server.cli_ok(&["namespaces", "create", "team"]);
    let ola = server.user_token("ola", &["team:operator"]);
    let bea = server.user_token("bea", &["team:builder"]);
    server.deploy(&fixture("site"));
    server.deploy(&fixture("whoami"));

    // Everything, newest first, as JSON.
    let all: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["audit", "--action", "app.deploy", "-o", "json"])).unwrap();
    let deploys = all.as_array().unwrap();
    assert!(!deploys.is_empty() && deploys.iter().all(|event| event["action"] == "app.deploy"), "{all:#}");

    // Pages: a full page says how to get the next one, and the next one starts below it.
    let page = server.cli(&["audit", "--limit", "2", "-o", "json"]);
    assert!(page.status.success(), "{}", stderr(&page));
    let first: Vec<serde_json::Value> = serde_json::from_str(&stdout(&page)).unwrap();
    assert_eq!(first.len(), 2);
    let last = first[1]["id"].as_i64().unwrap();
    assert!(stderr(&page).contains(&format!("--before {last}")), "{}", stderr(&page));
    let next: Vec<serde_json::Value> =
        serde_json::from_str(&server.cli_ok(&["audit", "--limit", "2", "--before", &last.to_string(), "-o", "json"]))
            .unwrap();
    assert!(next.iter().all(|event| event["id"].as_i64().unwrap() < last), "{next:?}");

    // By actor and time; a bad time says what it takes.
    let mine = server.cli_ok(&["audit", "--actor", "admin", "--since", "1h"]);
    assert!(mine.contains("admin") && mine.contains("app.deploy"), "{mine}");
    let future = server.cli_ok(&["audit", "--since", "2099-01-01T00:00:00Z"]);
    assert!(future.contains("No audit events match."), "{future}");
    let bad = server.cli(&["audit", "--since", "yesterday"]);
    assert!(!bad.status.success() && stderr(&bad).contains("30m, 24h, 7d"), "{}", stderr(&bad));

    // A namespace's operator reads its events, not the whole log; a builder neither.
    let team = server.cli_as(&ola, &["audit", "--namespace", "team"]);
    assert!(team.status.success(), "{}", stderr(&team));
    let everything = server.cli_as(&ola, &["audit"]);
    assert!(!everything.status.success() && stderr(&everything).contains("platform admin"), "{}", stderr(&everything));
    let builder = server.cli_as(&bea, &["audit", "--namespace", "team"]);
    assert!(!builder.status.success() && stderr(&builder).contains("operator role"), "{}", stderr(&builder));
}
