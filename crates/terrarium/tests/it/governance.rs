//! Policies on the server as they ship: admission in each mode, approvals of elevated requests
//! (the whole flow, N-of-M, timeout), exceptions that lapse, the background audit and reloads.

use std::path::Path;
use std::time::Duration;

use crate::support::{Server, stderr, stdout};

/// An org-only function app answering `version`, owned by `owner`, with `extra` appended to its spec.
fn write_app(dir: &Path, namespace: &str, name: &str, owner: &str, version: &str, extra: &str) {
    write_app_as(dir, namespace, name, owner, version, "org", extra);
}

fn write_app_as(dir: &Path, namespace: &str, name: &str, owner: &str, version: &str, visibility: &str, extra: &str) {
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(
        dir.join("terrarium.yaml"),
        format!(
            "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n  owner: {owner}\n  runtime: function\n  access:\n    visibility: {visibility}\n  functions:\n    - route: /*\n      entry: functions/index.js\n{extra}"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("functions/index.js"),
        format!("export default {{ fetch() {{ return new Response({version:?}); }} }};\n"),
    )
    .unwrap();
}

fn egress(hosts: &[&str]) -> String {
    let mut text = "  allowedEgress:\n".to_owned();
    for host in hosts {
        text.push_str(&format!("    - {host}\n"));
    }
    text
}

/// What the app answers to a signed-in user (the admin).
fn answer(server: &Server, namespace: &str, app: &str) -> (u16, String) {
    let response =
        crate::support::client().get(server.app_url(namespace, app, "/")).bearer_auth(&server.token).send().unwrap();
    (response.status().as_u16(), response.text().unwrap())
}

fn json(output: &std::process::Output) -> serde_json::Value {
    assert!(output.status.success(), "{}\n{}", stdout(output), stderr(output));
    serde_json::from_str(&stdout(output)).unwrap_or_else(|_| panic!("JSON expected, got {}", stdout(output)))
}

const APPROVAL_CONFIG: &str = r#"
[policy]
bundled = true

[namespaces]
allowed_egress = ["api.example.com"]

[approvals.namespaces.fin]
approvers = ["user:olu", "user:pat"]
required = 2
"#;

#[test]
fn a_new_egress_host_waits_for_an_operator_then_goes_live() {
    let server = Server::start(APPROVAL_CONFIG);
    server.cli_ok(&["namespaces", "create", "shop"]);
    let bea = server.user_token("bea", &["shop:builder"]);
    let olu = server.user_token("olu", &["shop:operator", "fin:operator"]);
    let pat = server.user_token("pat", &["shop:operator", "fin:operator"]);
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("weather");
    let dir_arg = dir.to_str().unwrap();

    // Revision 1 calls a host on the namespace's list: it goes live at once.
    write_app(&dir, "shop", "weather", "user:bea", "v1", &egress(&["api.example.com"]));
    let first = json(&server.cli_as(&bea, &["deploy", dir_arg, "-o", "json"]));
    assert_eq!(first["revision"], 1);
    assert_eq!(answer(&server, "shop", "weather"), (200, "v1".to_owned()));

    // Revision 2 adds a new host: it waits for approval and revision 1 keeps serving.
    write_app(&dir, "shop", "weather", "user:bea", "v2", &egress(&["api.example.com", "api.weather.dev"]));
    let pending = server.cli_as(&bea, &["deploy", dir_arg]);
    let said = stdout(&pending);
    assert!(pending.status.success(), "{said}{}", stderr(&pending));
    assert!(said.contains("Waiting for approval: shop/weather"), "{said}");
    assert!(
        said.contains("egress_hosts: egress to api.weather.dev, which is not on the namespace's allowed list"),
        "{said}"
    );
    assert!(said.contains("Revision 1 keeps serving until then"), "{said}");
    assert_eq!(answer(&server, "shop", "weather"), (200, "v1".to_owned()));
    let listed = json(&server.cli_as(&olu, &["approvals", "list", "-o", "json"]));
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let id = listed[0]["id"].as_i64().unwrap().to_string();
    assert_eq!(listed[0]["requested_by"], "bea");
    let get = server.cli_as(&bea, &["apps", "get", "shop/weather"]);
    assert!(stdout(&get).contains(&format!("Pending:      approval request {id} by bea")), "{}", stdout(&get));

    // Bea cannot approve (no operator role), and nobody approves without a reason.
    let own = server.cli_as(&bea, &["approvals", "approve", &id, "--reason", "I need it"]);
    assert!(stderr(&own).contains("only operators of namespace"), "{}", stderr(&own));
    let unreasoned = crate::support::client()
        .post(format!("{}/api/v1/approvals/{id}/approve", server.url))
        .bearer_auth(&olu)
        .json(&serde_json::json!({ "reason": "  " }))
        .send()
        .unwrap();
    assert_eq!(unreasoned.status(), 400);
    assert!(unreasoned.text().unwrap().contains("a reason is required"));

    // Olu approves: revision 2 is live, with a grant for exactly that host.
    let approved =
        json(&server.cli_as(&olu, &["approvals", "approve", &id, "--reason", "public weather data", "-o", "json"]));
    assert_eq!(approved["state"], "approved", "{approved}");
    assert_eq!(approved["revision"], 2);
    assert_eq!(answer(&server, "shop", "weather"), (200, "v2".to_owned()));
    let again = server.cli_as(&pat, &["approvals", "approve", &id, "--reason", "late"]);
    assert!(stderr(&again).contains("is approved already"), "{}", stderr(&again));

    // Asking for the granted hosts again needs nothing; asking for one more needs a new approval.
    write_app(&dir, "shop", "weather", "user:bea", "v3", &egress(&["api.weather.dev", "api.example.com"]));
    assert_eq!(json(&server.cli_as(&bea, &["deploy", dir_arg, "-o", "json"]))["revision"], 3);
    assert_eq!(answer(&server, "shop", "weather"), (200, "v3".to_owned()));
    write_app(&dir, "shop", "weather", "user:bea", "v4", &egress(&["api.weather.dev", "api.stripe.dev"]));
    let escalation = json(&server.cli_as(&bea, &["deploy", dir_arg, "-o", "json"]));
    let request = &escalation["pending_approval"];
    assert_eq!(request["requests"].as_array().unwrap().len(), 1, "only the new host: {request}");
    assert!(request["requests"][0]["message"].as_str().unwrap().contains("api.stripe.dev"));
    let id = request["id"].as_i64().unwrap().to_string();

    // While the app is archived, an approval is refused before it counts: Pat can still
    // decide once it is restored.
    server.cli_ok(&["apps", "archive", "shop/weather", "--reason", "paused"]);
    let archived = server.cli_as(&pat, &["approvals", "approve", &id, "--reason", "fine"]);
    assert!(stderr(&archived).contains("is archived"), "{}", stderr(&archived));
    server.cli_ok(&["apps", "restore", "shop/weather"]);

    // Pat denies it: the request ends and revision 3 keeps serving.
    let denied =
        json(&server.cli_as(&pat, &["approvals", "deny", &id, "--reason", "payments need a review", "-o", "json"]));
    assert_eq!(denied["state"], "denied");
    assert!(denied["outcome"].as_str().unwrap().contains("denied by pat: payments need a review"));
    assert_eq!(answer(&server, "shop", "weather"), (200, "v3".to_owned()));

    // No self-approval, even for an operator: olu deploys a public app and cannot approve it.
    let site = folder.path().join("site");
    write_app_as(&site, "shop", "site", "user:bea", "public", "public", "");
    let public = json(&server.cli_as(&olu, &["deploy", site.to_str().unwrap(), "-o", "json"]));
    let id = public["pending_approval"]["id"].as_i64().unwrap().to_string();
    assert!(public["pending_approval"]["requests"][0]["policy"] == "exposure", "{public}");
    let (status, _) = answer(&server, "shop", "site");
    assert_eq!(status, 404, "a new app is not live before approval");
    let get = server.cli(&["apps", "get", "shop/site"]);
    assert!(stderr(&get).contains(&format!("waits for approval in request {id}")), "{}", stderr(&get));
    let own = server.cli_as(&olu, &["approvals", "approve", &id, "--reason", "mine"]);
    assert!(stderr(&own).contains("you asked for it"), "{}", stderr(&own));
    server.cli_ok(&["approvals", "approve", &id, "--reason", "the status page is public by design"]);
    assert_eq!(answer(&server, "shop", "site").0, 200);

    // N of M: in namespace fin, two of the listed approvers must agree.
    server.cli_ok(&["namespaces", "create", "fin"]);
    server.cli_ok(&["roles", "grant", "fin", "user:bea", "builder"]);
    let ledger = folder.path().join("ledger");
    write_app(&ledger, "fin", "ledger", "user:bea", "ledger", &egress(&["api.bank.dev"]));
    let asked = json(&server.cli_as(&bea, &["deploy", ledger.to_str().unwrap(), "-o", "json"]));
    let id = asked["pending_approval"]["id"].as_i64().unwrap().to_string();
    assert_eq!(asked["pending_approval"]["required"], 2);
    let not_listed = server.cli(&["approvals", "approve", &id, "--reason", "admin says yes"]);
    assert!(stderr(&not_listed).contains("are decided by user:olu, user:pat"), "{}", stderr(&not_listed));
    let one =
        json(&server.cli_as(&olu, &["approvals", "approve", &id, "--reason", "bank API is vetted", "-o", "json"]));
    assert_eq!(one["state"], "pending");
    assert_eq!(answer(&server, "fin", "ledger").0, 404);
    let two = json(&server.cli_as(&pat, &["approvals", "approve", &id, "--reason", "agreed", "-o", "json"]));
    assert_eq!(two["state"], "approved");
    assert!(two["outcome"].as_str().unwrap().contains("approved by olu, pat"), "{two}");
    assert_eq!(answer(&server, "fin", "ledger"), (200, "ledger".to_owned()));

    // Every step is in the audit log.
    let audit: serde_json::Value = crate::support::client()
        .get(format!("{}/api/v1/audit?namespace=shop", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let actions: Vec<(String, String)> = audit
        .as_array()
        .unwrap()
        .iter()
        .map(|event| (event["action"].as_str().unwrap().to_owned(), event["outcome"].as_str().unwrap().to_owned()))
        .collect();
    for expected in ["approval.request", "approval.vote", "approval.approve", "approval.deny"] {
        assert!(actions.iter().any(|(action, _)| action == expected), "{expected} missing: {actions:?}");
    }
    assert!(
        actions.contains(&("approval.approve".to_owned(), "denied".to_owned())),
        "the refused self-approval: {actions:?}"
    );
}

#[test]
fn an_undecided_request_is_denied_when_it_times_out() {
    let config = "[policy]\nbundled = true\n\n[approvals]\ntimeout_secs = 3600\n";
    let server = Server::start(config);
    let folder = tempfile::tempdir().unwrap();
    write_app(folder.path(), "it", "slowpoke", "user:admin", "v1", &egress(&["api.example.com"]));
    let asked = server.deploy(folder.path());
    let id = asked["pending_approval"]["id"].as_i64().unwrap().to_string();

    // The server restarts before the timeout; the request still times out, with nobody reading
    // it (the audit log does not look at requests).
    let data_dir = server.kill();
    let server = Server::start_in(config, &data_dir, &[]);
    server.run_task("governance.deadlines");
    assert!(server.cli_ok(&["approvals", "show", &id]).contains("State:        pending"), "not before its time");
    server.advance_clock(Duration::from_secs(3601));
    server.run_task("governance.deadlines");
    let audit = server.audit_events("namespace=it");
    assert!(audit.as_array().unwrap().iter().any(|event| event["action"] == "approval.expire"), "{audit}");
    let shown = server.cli_ok(&["approvals", "show", &id]);
    assert!(shown.contains("State:        denied"), "{shown}");
    assert!(shown.contains("timed out: 0 of 1 approvals within 1 h"), "{shown}");
    let late = server.cli(&["approvals", "approve", &id, "--reason", "too late"]);
    assert!(stderr(&late).contains("is denied already"), "{}", stderr(&late));
    assert_eq!(answer(&server, "it", "slowpoke").0, 404);
}

#[test]
fn modes_exceptions_audit_and_reload_without_restart() {
    let policies = tempfile::tempdir().unwrap();
    let config = format!(
        "[policy]\ndir = {:?}\naudit_secs = 3600\nreload_secs = 3600\n[policy.modes]\nttl = \"warn\"\nruntime = \"dryrun\"\n\n[namespaces]\napproved_runtimes = [\"static\"]\n",
        policies.path()
    );
    let server = Server::start(&config);
    let folder = tempfile::tempdir().unwrap();

    // deny mode: an IP address in allowedEgress is refused, naming the policy and what to do.
    let raw = folder.path().join("raw");
    write_app(&raw, "it", "raw", "user:admin", "v1", &egress(&["10.1.2.3"]));
    let refused = server.cli(&["deploy", raw.to_str().unwrap()]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("egress: allowedEgress entry \"10.1.2.3\" is an IP address"),
        "{}",
        stderr(&refused)
    );

    // warn mode: a TTL over the namespace's maximum deploys with a warning; dryrun (runtime) is only recorded.
    let long = folder.path().join("long");
    write_app(&long, "it", "long", "user:admin", "v1", "  ttlDays: 400\n");
    let deployed = server.cli(&["deploy", long.to_str().unwrap()]);
    assert!(deployed.status.success(), "{}", stderr(&deployed));
    assert!(
        stderr(&deployed).contains("warning: policy ttl: spec.ttlDays is 400, over the 90 days"),
        "{}",
        stderr(&deployed)
    );
    assert!(!stderr(&deployed).contains("runtime"), "dryrun says nothing to the builder: {}", stderr(&deployed));

    // A policy dropped into the directory is picked up without a restart: it governs new
    // deploys at once, and the audit that follows the change reports the running apps.
    std::fs::write(
        policies.path().join("describe.rego"),
        "package terrarium.policies.describe\n\ndeny contains \"spec.description is missing: say in a sentence what the app does\" if {\n\tnot input.manifest.spec.description\n}\n",
    )
    .unwrap();
    server.run_task("policy.reload");
    assert!(server.cli_ok(&["policy", "status"]).contains("describe.rego"), "the new policy loaded");
    let undescribed = folder.path().join("undescribed");
    write_app(&undescribed, "it", "undescribed", "user:admin", "v1", "");
    let refused = server.cli(&["deploy", undescribed.to_str().unwrap()]);
    assert!(stderr(&refused).contains("describe: spec.description is missing"), "{}", stderr(&refused));
    let policies_of = |server: &Server| -> Vec<(String, String)> {
        let found = json(&server.cli(&["policy", "violations", "--app", "it/long", "-o", "json"]));
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|v| (v["policy"].as_str().unwrap().to_owned(), v["mode"].as_str().unwrap().to_owned()))
            .collect()
    };
    server.run_task("policy.audit");
    let found = policies_of(&server);
    for expected in [("describe", "deny"), ("runtime", "dryrun"), ("ttl", "warn")] {
        assert!(found.contains(&(expected.0.to_owned(), expected.1.to_owned())), "{expected:?} in {found:?}");
    }
    let ttl_only = server.cli_ok(&["policy", "violations", "--policy", "ttl"]);
    assert!(ttl_only.contains("spec.ttlDays is 400, over the 90 days this namespace allows; renew the app by deploying again before it expires"), "in full: {ttl_only}");
    assert!(!ttl_only.contains("describe"), "{ttl_only}");
    let get = server.cli_ok(&["apps", "get", "it/long"]);
    assert!(get.contains("Violations:   deny describe (deny mode"), "{get}");

    // An exception lifts the ttl violation until it lapses; then the audit reports it again.
    let added = json(&server.cli(&[
        "policy",
        "exceptions",
        "add",
        "it/long",
        "ttl",
        "--reason",
        "migrating in December",
        "--for",
        "1d",
        "-o",
        "json",
    ]));
    assert_eq!(added[0]["active"], true);
    let unknown = server.cli(&["policy", "exceptions", "add", "it/long", "nope", "--reason", "x", "--for", "1d"]);
    assert!(stderr(&unknown).contains("there is no policy named \"nope\""), "{}", stderr(&unknown));
    server.run_task("policy.audit");
    assert!(!policies_of(&server).iter().any(|(policy, _)| policy == "ttl"), "the exception lifts the violation");
    assert!(server.cli_ok(&["apps", "get", "it/long"]).contains("Exceptions:   ttl until"));
    server.run_task("governance.deadlines");
    assert!(!policies_of(&server).iter().any(|(policy, _)| policy == "ttl"), "not lapsed yet");
    server.advance_clock(Duration::from_secs(86_401));
    server.run_task("governance.deadlines");
    assert!(policies_of(&server).iter().any(|(policy, _)| policy == "ttl"), "the lapsed exception is audited");
    let listed = server.cli_ok(&["policy", "exceptions", "list"]);
    assert!(listed.contains("ended") && listed.contains("migrating in December"), "{listed}");

    // A broken policy file does not replace working policies: the error is shown, the old set runs.
    std::fs::write(policies.path().join("broken.rego"), "package terrarium.policies.broken\ndeny contains if {")
        .unwrap();
    let reload = server.cli(&["policy", "reload"]);
    assert!(!reload.status.success() && stderr(&reload).contains("broken.rego"), "{}", stderr(&reload));
    assert!(stderr(&reload).contains("the previous ones keep running"), "{}", stderr(&reload));
    let status = server.cli_ok(&["policy", "status"]);
    assert!(status.contains("Reload error:") && status.contains("describe.rego"), "{status}");
    assert!(
        stderr(&server.cli(&["deploy", undescribed.to_str().unwrap()]))
            .contains("describe: spec.description is missing")
    );
    std::fs::remove_file(policies.path().join("broken.rego")).unwrap();
    std::fs::remove_file(policies.path().join("describe.rego")).unwrap();
    server.run_task("policy.reload");
    assert!(!server.cli_ok(&["policy", "status"]).contains("describe.rego"), "the fixed policies loaded");
    assert!(server.cli(&["deploy", undescribed.to_str().unwrap()]).status.success());
}

/// A wildcard over a public suffix never reaches an allow list; one over a shared-hosting domain
/// waits for a person, and the request says that anyone can publish there, even when the
/// namespace's list already has it.
#[test]
fn public_suffix_wildcards_are_refused_and_shared_hosting_is_an_ask() {
    let config = "[policy]\nbundled = true\n\n[namespaces]\nallowed_egress = [\"*.github.io\", \"api.example.com\"]\n";
    let server = Server::start(config);
    server.cli_ok(&["namespaces", "create", "shop"]);
    let bea = server.user_token("bea", &["shop:builder"]);
    let folder = tempfile::tempdir().unwrap();
    let dir = folder.path().join("pages");
    let dir_arg = dir.to_str().unwrap();

    write_app(&dir, "shop", "pages", "user:bea", "v1", &egress(&["api.example.com", "\"*.co.uk\""]));
    let validated = std::process::Command::new(crate::support::BIN).args(["validate", dir_arg]).output().unwrap();
    for refused in [validated, server.cli_as(&bea, &["deploy", dir_arg])] {
        assert!(!refused.status.success());
        let said = stderr(&refused);
        assert!(
            said.contains("\"*.co.uk\" would allow every site registered under the public suffix \".co.uk\""),
            "{said}"
        );
    }

    write_app(&dir, "shop", "pages", "user:bea", "v1", &egress(&["api.example.com", "\"*.github.io\""]));
    let pending = server.cli_as(&bea, &["deploy", dir_arg]);
    let said = stdout(&pending);
    assert!(pending.status.success(), "{said}{}", stderr(&pending));
    assert!(said.contains("Waiting for approval: shop/pages"), "{said}");
    assert!(said.contains("anyone can publish a site under github.io"), "{said}");
}
