//! The TTL lifecycle as an owner meets it: an app with `ttlDays` becomes Expiring, its owner
//! is mailed at 30 days, 7 days and on the day (once each), an extension moves the date within
//! the namespace's maximum, and a deploy renews it. The server's clock is moved, never waited on.

use std::path::Path;
use std::time::Duration;

use crate::budgets::{start_smtp, wait_until};
use crate::support::Server;

const DAY: u64 = 86_400;

fn write_app(dir: &Path, version: &str) {
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(
        dir.join("terrarium.yaml"),
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: board\n  namespace: team\nspec:\n  owner: user:ana\n  ttlDays: 40\n  access:\n    visibility: public\n  runtime: function\n  functions:\n    - route: /*\n      entry: functions/index.js\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("functions/index.js"),
        format!("export default {{ fetch() {{ return new Response(\"board {version}\"); }} }};\n"),
    )
    .unwrap();
}

fn app(server: &Server) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["apps", "get", "team/board", "-o", "json"])).unwrap()
}

fn days_left(server: &Server, app: &serde_json::Value) -> i64 {
    let parse = |text: &str| time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).unwrap();
    let now: serde_json::Value = crate::support::client()
        .get(format!("{}/api/v1/clock", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let left = parse(app["expires_at"].as_str().unwrap()) - parse(now["now"].as_str().unwrap());
    (left.whole_seconds() as f64 / DAY as f64).round() as i64
}

fn notices(server: &Server) -> usize {
    server
        .cli_ok(&["audit", "--app", "team/board", "--action", "app.expiry_notice"])
        .matches("app.expiry_notice")
        .count()
}

#[test]
fn an_app_with_a_ttl_reminds_its_owner_is_extended_and_renewed_by_a_deploy() {
    let smtp = start_smtp();
    let config = format!(
        "[namespaces]\nmax_ttl_days = 90\n\n[notify.smtp]\nhost = \"127.0.0.1\"\nport = {}\nsecurity = \"none\"\nfrom = \"Terrarium <terrarium@test.example>\"\nto = [\"platform@test.example\"]\n",
        smtp.port
    );
    let server = Server::start(&config);
    server.cli_ok(&["users", "add", "ana", "--email", "ana@test.example"]);
    let refused = server.cli(&["users", "add", "bob", "--email", "bob at example"]);
    assert!(String::from_utf8_lossy(&refused.stderr).contains("is not an e-mail address"), "{refused:?}");
    let folder = tempfile::tempdir().unwrap();
    write_app(folder.path(), "v1");
    server.deploy(folder.path());

    // Deployed with ttlDays 40: active, expiring in 40 days, no reminder yet.
    let fresh = app(&server);
    assert_eq!(fresh["phase"], "Active", "{fresh}");
    assert_eq!(days_left(&server, &fresh), 40);
    server.run_task("lifecycle.reminders");
    assert_eq!(notices(&server), 0);
    assert!(server.cli_ok(&["apps", "list", "--expiring", "30d"]).contains("No app expires within 30 days"));

    // Eleven days on: Expiring, in the expiring list, and its owner is mailed once.
    server.advance_clock(Duration::from_secs(11 * DAY));
    assert_eq!(app(&server)["phase"], "Expiring");
    let listed = server.cli_ok(&["apps", "list", "--expiring", "30d"]);
    assert!(listed.contains("board") && listed.contains("Expiring") && listed.contains("user:ana"), "{listed}");
    server.run_task("lifecycle.reminders");
    server.run_task("lifecycle.reminders");
    assert_eq!(notices(&server), 1, "once per reminder");
    wait_until("the 30-day reminder is mailed to the owner", || {
        smtp.output.lock().unwrap().contains("App team/board expires in 30 days")
    });
    let mail = smtp.output.lock().unwrap().clone();
    assert!(mail.contains("To: ana@test.example"), "{mail}");
    assert!(mail.contains("terrarium apps extend team/board"), "the mail says how to keep it: {mail}");

    // Six days left: the 7-day reminder.
    server.advance_clock(Duration::from_secs(23 * DAY));
    server.run_task("lifecycle.reminders");
    assert_eq!(notices(&server), 2);
    wait_until("the 7-day reminder is mailed", || smtp.output.lock().unwrap().contains("expires in 7 days"));

    // An extension within the namespace's maximum is immediate and audited with its reason;
    // beyond it, or without a reason, it is refused saying why.
    let extended = server.cli_ok(&["apps", "extend", "team/board", "--days", "30", "--reason", "used every Monday"]);
    assert!(extended.contains("Extended team/board"), "{extended}");
    let moved = app(&server);
    assert_eq!(days_left(&server, &moved), 36);
    assert_eq!(moved["phase"], "Active", "36 days left");
    let audit = server.cli_ok(&["audit", "--app", "team/board", "--action", "app.extend"]);
    assert!(audit.contains("used every Monday"), "{audit}");
    let too_far = server.cli(&["apps", "extend", "team/board", "--days", "60", "--reason", "longer"]);
    assert!(!too_far.status.success());
    assert!(String::from_utf8_lossy(&too_far.stderr).contains("maximum of 90 days"), "{too_far:?}");
    let no_reason = server.cli(&["apps", "extend", "team/board", "--days", "5", "--reason", " "]);
    assert!(String::from_utf8_lossy(&no_reason.stderr).contains("say why"), "{no_reason:?}");
    assert_eq!(days_left(&server, &app(&server)), 36, "a refused extension changes nothing");

    // The console's app page shows the date and extends the same way, with its form token.
    let http = crate::support::client();
    let page = || {
        http.get(format!("{}/console/apps/team/board", server.url))
            .header("cookie", format!("__Host-terrarium_session={}", server.token))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    let shown = page();
    assert!(shown.contains("Lifetime") && shown.contains("Expires"), "{shown}");
    let start = shown.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = shown[start..start + 64].to_owned();
    let extend = |days: &str| {
        http.post(format!("{}/console/apps/team/board/extend", server.url))
            .header("cookie", format!("__Host-terrarium_session={}", server.token))
            .form(&[("csrf", csrf.as_str()), ("days", days), ("reason", "the console works too")])
            .send()
            .unwrap()
    };
    let moved = extend("2");
    assert_eq!(moved.status(), 303);
    assert_eq!(moved.headers()["location"], "/console/apps/team/board?notice=extended");
    assert_eq!(days_left(&server, &app(&server)), 38);
    assert_eq!(extend("200").status(), 400, "past the maximum");
    assert_eq!(days_left(&server, &app(&server)), 38);

    // Past the date: Expired, and the owner is told on the day.
    server.advance_clock(Duration::from_secs(39 * DAY));
    assert_eq!(app(&server)["phase"], "Expired");
    server.run_task("lifecycle.reminders");
    wait_until("the reminder of the day is mailed", || smtp.output.lock().unwrap().contains("expires today"));

    // A deploy of a new revision renews the TTL from now.
    write_app(folder.path(), "v2");
    server.deploy(folder.path());
    let renewed = app(&server);
    assert_eq!((renewed["phase"].as_str(), days_left(&server, &renewed)), (Some("Active"), 40));
}
