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
        smtp.output.lock().unwrap().contains("App team/board expires in 29 days")
    });
    let mail = smtp.output.lock().unwrap().clone();
    assert!(mail.contains("To: ana@test.example"), "{mail}");
    assert!(mail.contains("terrarium apps extend team/board"), "the mail says how to keep it: {mail}");

    // Six days left: the 7-day reminder, saying the days really left.
    server.advance_clock(Duration::from_secs(23 * DAY));
    server.run_task("lifecycle.reminders");
    assert_eq!(notices(&server), 2);
    wait_until("the 7-day reminder is mailed", || smtp.output.lock().unwrap().contains("expires in 6 days"));

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

    // A day before: the last reminder.
    server.advance_clock(Duration::from_secs(37 * DAY + DAY / 2));
    server.run_task("lifecycle.reminders");
    wait_until("the last reminder is mailed", || smtp.output.lock().unwrap().contains("expires within a day"));

    // Past the date: Expired; a reminder missed (the server was down) says it has expired.
    server.advance_clock(Duration::from_secs(DAY));
    assert_eq!(app(&server)["phase"], "Expired");
    server.run_task("lifecycle.reminders");
    assert_eq!(notices(&server), 3, "the reminder of the day before was sent already");

    // A deploy of a new revision renews the TTL from now.
    write_app(folder.path(), "v2");
    server.deploy(folder.path());
    let renewed = app(&server);
    assert_eq!((renewed["phase"].as_str(), days_left(&server, &renewed)), (Some("Active"), 40));

    // Past the renewed date, the archive task archives it and tells its owner how to get it back.
    server.advance_clock(Duration::from_secs(41 * DAY));
    server.run_task("lifecycle.archive");
    assert_eq!(app(&server)["phase"], "Archived");
    wait_until("the archive is mailed to the owner", || {
        let mail = smtp.output.lock().unwrap();
        mail.contains("App team/board was archived") && mail.contains("terrarium apps restore team/board")
    });
}

/// An app with key-value and SQL data, which lists both.
fn write_notes(dir: &Path) {
    std::fs::create_dir_all(dir.join("functions")).unwrap();
    std::fs::write(
        dir.join("terrarium.yaml"),
        "apiVersion: terrarium.dev/v1\nkind: MicroApp\nmetadata:\n  name: notes\n  namespace: team\nspec:\n  owner: user:admin\n  ttlDays: 30\n  access:\n    visibility: public\n  runtime: function\n  functions:\n    - route: /*\n      entry: functions/index.js\n  data:\n    kv: true\n    sql:\n      isolation: isolated\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("functions/index.js"),
        "export default { async fetch(request, env) {\n\
           const url = new URL(request.url);\n\
           await env.DB.prepare('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)').run();\n\
           if (url.pathname === '/add') {\n\
             const n = url.searchParams.get('n');\n\
             await env.KV.put('note:' + n, 'text ' + n, { metadata: { n } });\n\
             await env.DB.prepare('INSERT INTO notes (body) VALUES (?)').bind('note ' + n).run();\n\
             return new Response('added');\n\
           }\n\
           const { results } = await env.DB.prepare('SELECT id, body FROM notes ORDER BY id').all();\n\
           const listed = await env.KV.list();\n\
           const values = await Promise.all(listed.keys.map((key) => env.KV.get(key.name)));\n\
           return Response.json({ rows: results, keys: listed.keys, values });\n\
         } };\n",
    )
    .unwrap();
}

#[test]
fn an_archived_app_answers_410_and_restores_with_its_data_byte_identical() {
    let server = Server::start("");
    let folder = tempfile::tempdir().unwrap();
    write_notes(folder.path());
    server.deploy(folder.path());
    let http = crate::support::client();
    for n in 1..=5 {
        let added = http.get(server.app_url("team", "notes", &format!("/add?n={n}"))).send().unwrap();
        assert_eq!(added.status(), 200);
    }
    let listing = || {
        let response = http.get(server.app_url("team", "notes", "/")).send().unwrap();
        (response.status().as_u16(), response.text().unwrap())
    };
    let export_kv = || {
        http.get(format!("{}/api/v1/apps/team/notes/data/kv", server.url))
            .bearer_auth(&server.token)
            .send()
            .unwrap()
            .bytes()
            .unwrap()
    };
    let (status, before) = listing();
    assert_eq!(status, 200);
    assert!(before.contains("note 5") && before.contains("text 5"), "{before}");
    let kv_before = export_kv();
    assert!(!kv_before.is_empty());
    let revision_before = app_named(&server, "team/notes")["active_revision"].clone();

    // Archived by hand: 410 with who to ask and how to restore; its phase says so.
    let archived = server.cli_ok(&["apps", "archive", "team/notes", "--reason", "the quarter is over"]);
    assert!(archived.contains("Archived team/notes"), "{archived}");
    let gone = http.get(server.app_url("team", "notes", "/")).send().unwrap();
    assert_eq!(gone.status(), 410);
    let page = gone.text().unwrap();
    assert!(page.contains("terrarium apps restore team/notes"), "{page}");
    assert!(!page.contains("user:admin"), "anyone can read this page: no owner on it: {page}");
    assert_eq!(app_named(&server, "team/notes")["phase"], "Archived");
    let audit = server.cli_ok(&["audit", "--app", "team/notes", "--action", "app.archive"]);
    assert!(audit.contains("the quarter is over"), "{audit}");
    // Its stores are freed; a deploy over it is refused until it is restored.
    assert!(export_kv().is_empty(), "the live KV entries are gone");
    // Nothing is imported into an archived app's stores (restoring empties them first).
    let import = http
        .put(format!("{}/api/v1/apps/team/notes/data/kv", server.url))
        .bearer_auth(&server.token)
        .body(kv_before.clone())
        .send()
        .unwrap();
    assert_eq!(import.status(), 409);
    assert!(import.text().unwrap().contains("restore it first"));
    let redeploy = server.cli(&["deploy", folder.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&redeploy.stderr).contains("is archived"), "{redeploy:?}");

    // Restored with one command: the same revision, the same rows and keys, byte for byte.
    let restored = server.cli_ok(&["apps", "restore", "team/notes"]);
    assert!(restored.contains("Restored team/notes"), "{restored}");
    let (status, after) = listing();
    assert_eq!(status, 200);
    assert_eq!(after, before, "the app reads the same data");
    assert_eq!(export_kv(), kv_before, "the KV export is byte-identical");
    let back = app_named(&server, "team/notes");
    assert_eq!(back["active_revision"], revision_before);
    assert_eq!(back["phase"], "Expiring", "a 30-day TTL, renewed");

    // Past its TTL, the archive task archives it by itself; restoring gives a fresh TTL.
    server.advance_clock(Duration::from_secs(31 * DAY));
    server.run_task("lifecycle.archive");
    assert_eq!(listing().0, 410);
    // This time from the console's app page, with its form token.
    let page = http
        .get(format!("{}/console/apps/team/notes", server.url))
        .header("cookie", format!("__Host-terrarium_session={}", server.token))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(page.contains("This app is archived") && page.contains("Restore with its data"), "{page}");
    let start = page.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let restored = http
        .post(format!("{}/console/apps/team/notes/restore", server.url))
        .header("cookie", format!("__Host-terrarium_session={}", server.token))
        .form(&[("csrf", &page[start..start + 64])])
        .send()
        .unwrap();
    assert_eq!(restored.status(), 303);
    assert_eq!(restored.headers()["location"], "/console/apps/team/notes?notice=restored");
    let (status, again) = listing();
    assert_eq!((status, again), (200, before));
    assert_eq!(days_left(&server, &app_named(&server, "team/notes")), 30);

    // A revision that no longer binds KV: its KV entries are not in its archive, so they are
    // not freed either; deleting the archived app removes its archive and its 410.
    let manifest = std::fs::read_to_string(folder.path().join("terrarium.yaml")).unwrap();
    std::fs::write(folder.path().join("terrarium.yaml"), manifest.replace("    kv: true\n", "")).unwrap();
    server.deploy(folder.path());
    server.cli_ok(&["apps", "archive", "team/notes", "--reason", "done"]);
    assert_eq!(export_kv(), kv_before, "the unbound KV entries stay");
    let audit = server.cli_ok(&["audit", "--app", "team/notes", "--action", "app.archive", "-o", "json"]);
    let start = audit.find("archived as sha256:").unwrap() + "archived as ".len();
    let digest = &audit[start..start + "sha256:".len() + 64];
    let record = server.data_dir.join("blobs/sha256").join(&digest[7..9]).join(&digest[7..]);
    assert!(record.exists(), "{}", record.display());
    server.cli_ok(&["apps", "delete", "team/notes", "--yes"]);
    assert_eq!(listing().0, 404);
    assert!(!record.exists(), "the archive went with its app");
}

fn app_named(server: &Server, app: &str) -> serde_json::Value {
    serde_json::from_str(&server.cli_ok(&["apps", "get", app, "-o", "json"])).unwrap()
}

#[test]
fn an_archive_is_deleted_with_its_app_after_its_retention_and_a_last_notice() {
    let data_dir = tempfile::tempdir().unwrap().keep();
    let server = Server::start_in("[lifecycle]\narchive_retention_days = 10\n", &data_dir, &[]);
    let folder = tempfile::tempdir().unwrap();
    write_notes(folder.path());
    server.deploy(folder.path());
    let http = crate::support::client();
    assert_eq!(http.get(server.app_url("team", "notes", "/add?n=1")).send().unwrap().status(), 200);
    server.cli_ok(&["apps", "archive", "team/notes", "--reason", "done"]);
    let audit = server.cli_ok(&["audit", "--app", "team/notes", "--action", "app.archive", "-o", "json"]);
    let start = audit.find("archived as sha256:").unwrap() + "archived as ".len();
    let digest = &audit[start..start + "sha256:".len() + 64];
    let blob = data_dir.join("blobs/sha256").join(&digest[7..9]).join(&digest[7..]);
    assert!(blob.exists(), "the archive record is in the blob store: {}", blob.display());

    // Three days before the end: the last notice, once; the archive is kept. Its TTL's
    // reminders are not sent for an archived app.
    server.advance_clock(Duration::from_secs(4 * DAY));
    server.run_task("lifecycle.archive");
    server.run_task("lifecycle.archive");
    server.run_task("lifecycle.reminders");
    let reminders = server.cli_ok(&["audit", "--app", "team/notes", "--action", "app.expiry_notice"]);
    assert!(!reminders.contains("expires in"), "{reminders}");
    let notices = server.cli_ok(&["audit", "--app", "team/notes", "--action", "app.expiry_notice"]);
    assert_eq!(notices.matches("will be deleted on").count(), 1, "{notices}");
    assert_eq!(app_named(&server, "team/notes")["phase"], "Archived");

    // Past the retention: the app and its archive are gone.
    server.advance_clock(Duration::from_secs(7 * DAY));
    server.run_task("lifecycle.archive");
    let gone = server.cli(&["apps", "get", "team/notes"]);
    assert!(!gone.status.success());
    assert_eq!(http.get(server.app_url("team", "notes", "/")).send().unwrap().status(), 404);
    assert!(!blob.exists(), "the archive record is deleted");
    let audit = server.cli_ok(&["audit", "--app", "team/notes", "--action", "app.delete"]);
    assert!(audit.contains("reached its retention of 10 days"), "{audit}");

    // An archive whose last notice never went out (the task did not run that week) is not
    // deleted on its date: its owner is told first, and it is kept a week from then.
    server.deploy(folder.path());
    server.cli_ok(&["apps", "archive", "team/notes", "--reason", "done again"]);
    server.advance_clock(Duration::from_secs(11 * DAY));
    server.run_task("lifecycle.archive");
    assert_eq!(app_named(&server, "team/notes")["phase"], "Archived", "told, not deleted");
    let notices = server.cli_ok(&["audit", "--app", "team/notes", "--action", "app.expiry_notice"]);
    assert_eq!(notices.matches("will be deleted on").count(), 2, "{notices}");
    server.advance_clock(Duration::from_secs(6 * DAY));
    server.run_task("lifecycle.archive");
    assert_eq!(app_named(&server, "team/notes")["phase"], "Archived", "a week after the notice, not sooner");
    server.advance_clock(Duration::from_secs(DAY));
    server.run_task("lifecycle.archive");
    assert!(!server.cli(&["apps", "get", "team/notes"]).status.success());
}
