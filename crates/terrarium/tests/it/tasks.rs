//! Background tasks run on demand, and the adjustable clock: who may use them, and what a
//! server on the system clock says.

use std::time::Duration;

use crate::support::{Server, client, stderr, stdout};

#[test]
fn an_admin_lists_and_runs_tasks_and_others_are_refused() {
    let server = Server::start("");
    let listed = server.cli_ok(&["tasks", "list"]);
    for task in ["metering.flush", "budgets.evaluate", "secrets.sweep", "policy.audit", "governance.deadlines"] {
        assert!(listed.contains(task), "{task} in:\n{listed}");
    }
    let ran = server.cli_ok(&["tasks", "run", "policy.audit"]);
    assert!(ran.starts_with("policy.audit: ok at "), "{ran}");
    let tasks: serde_json::Value = serde_json::from_str(&server.cli_ok(&["tasks", "list", "-o", "json"])).unwrap();
    let audit = tasks.as_array().unwrap().iter().find(|task| task["name"] == "policy.audit").unwrap();
    assert!(audit["runs"].as_u64().unwrap() >= 1 && audit["last"]["error"].is_null(), "{audit}");

    // An unknown name says which tasks there are.
    let unknown = server.cli(&["tasks", "run", "nope"]);
    assert!(!unknown.status.success());
    assert!(stderr(&unknown).contains("there is no background task \"nope\"; tasks: "), "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("secrets.sweep"), "{}", stderr(&unknown));

    // A builder may neither run tasks nor move the clock; both refusals are audited.
    let builder = server.user_token("bea", &["it:builder"]);
    let refused = server.cli_as(&builder, &["tasks", "run", "secrets.sweep"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("only a platform admin may run background tasks"), "{}", stderr(&refused));
    let listing = server.cli_as(&builder, &["tasks", "list"]);
    assert!(!listing.status.success(), "{}", stdout(&listing));
    let moved = client()
        .post(format!("{}/api/v1/clock", server.url))
        .bearer_auth(&builder)
        .json(&serde_json::json!({ "advance_secs": 60 }))
        .send()
        .unwrap();
    assert_eq!(moved.status(), 403);
    let anonymous = client().post(format!("{}/api/v1/tasks/secrets.sweep/run", server.url)).send().unwrap();
    assert_eq!(anonymous.status(), 401);
    let events = server.audit_events("limit=100");
    let denied = |action: &str| {
        events.as_array().unwrap().iter().any(|event| event["action"] == action && event["outcome"] == "denied")
    };
    assert!(denied("tasks.run") && denied("clock.advance"), "{events}");
    assert!(events.as_array().unwrap().iter().any(|event| event["action"] == "tasks.run"
        && event["outcome"] == "success"
        && event["detail"] == "ran policy.audit"));
}

#[test]
fn the_clock_moves_only_forward_and_only_where_the_operator_allowed_it() {
    // A server on the system clock refuses, and says how a test server would allow it.
    let server = Server::start("[server]\nlisten = \"127.0.0.1:0\"\n");
    let clock: serde_json::Value =
        client().get(format!("{}/api/v1/clock", server.url)).bearer_auth(&server.token).send().unwrap().json().unwrap();
    assert_eq!((clock["adjustable"].as_bool(), clock["offset_secs"].as_i64()), (Some(false), Some(0)), "{clock}");
    let refused = client()
        .post(format!("{}/api/v1/clock", server.url))
        .bearer_auth(&server.token)
        .json(&serde_json::json!({ "advance_secs": 86_400 }))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 409);
    let message = refused.text().unwrap();
    assert!(message.contains("adjustable_clock = true") && message.contains("never production"), "{message}");

    // An adjustable clock moves forward by what was asked, and not by nothing or backwards.
    let server = Server::start("");
    server.advance_clock(Duration::from_secs(86_400));
    let clock: serde_json::Value =
        client().get(format!("{}/api/v1/clock", server.url)).bearer_auth(&server.token).send().unwrap().json().unwrap();
    assert_eq!(clock["offset_secs"], 86_400, "{clock}");
    for body in [serde_json::json!({ "advance_secs": 0 }), serde_json::json!({ "advance_secs": -5 })] {
        let response = client()
            .post(format!("{}/api/v1/clock", server.url))
            .bearer_auth(&server.token)
            .json(&body)
            .send()
            .unwrap();
        assert!(response.status().is_client_error(), "{body}: {}", response.status());
    }
}
