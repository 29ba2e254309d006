//! The gateway's authenticate and authorize phases: visibility for every kind of caller,
//! browser sign-in and return, and what identity reaches the app.

use crate::support::{ADMIN_PASSWORD, Server, client, copy_fixture};

/// The `whoami` fixture as app `name` with `visibility`, owned by user:ana in namespace growth.
fn whoami_app(name: &str, visibility: &str) -> tempfile::TempDir {
    let app = copy_fixture("whoami");
    let path = app.path().join("terrarium.yaml");
    let manifest = std::fs::read_to_string(&path)
        .unwrap()
        .replace("name: whoami", &format!("name: {name}"))
        .replace("visibility: private", &format!("visibility: {visibility}"));
    std::fs::write(&path, manifest).unwrap();
    app
}

/// Signs `user` in over HTTP and returns their platform token.
fn token_of(server: &Server, user: &str, password: &str) -> String {
    let answer: serde_json::Value = client()
        .post(format!("{}/auth/login", server.url))
        .json(&serde_json::json!({"username": user, "password": password}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    answer["access_token"].as_str().unwrap_or_else(|| panic!("{user} signs in: {answer}")).to_owned()
}

fn add_user(server: &Server, name: &str) -> String {
    let added: serde_json::Value =
        serde_json::from_str(&server.cli_ok(&["users", "add", name, "--output", "json"])).unwrap();
    added["password"].as_str().unwrap().to_owned()
}

#[test]
fn visibility_matrix() {
    let server = Server::start("");
    server.cli_ok(&["namespaces", "create", "growth"]);
    // ana owns the apps; bea is a member of growth; carl is signed in elsewhere; olga operates growth.
    let passwords: Vec<(String, String)> =
        ["ana", "bea", "carl", "olga"].iter().map(|name| (name.to_string(), add_user(&server, name))).collect();
    server.cli_ok(&["roles", "grant", "growth", "user:ana", "builder"]);
    server.cli_ok(&["roles", "grant", "growth", "user:bea", "viewer"]);
    server.cli_ok(&["roles", "grant", "finance", "user:carl", "builder"]);
    server.cli_ok(&["roles", "grant", "growth", "user:olga", "operator"]);
    for visibility in ["private", "team", "org", "public"] {
        server.deploy(whoami_app(visibility, visibility).path());
    }
    let token = |name: &str| {
        let password = &passwords.iter().find(|(user, _)| user == name).unwrap().1;
        token_of(&server, name, password)
    };
    let callers: Vec<(&str, Option<String>)> = vec![
        ("anonymous", None),
        ("other user", Some(token("carl"))),
        ("namespace member", Some(token("bea"))),
        ("owner", Some(token("ana"))),
        ("operator", Some(token("olga"))),
    ];
    let expected: [(&str, [u16; 5]); 4] = [
        ("private", [401, 403, 403, 200, 403]),
        ("team", [401, 403, 200, 200, 200]),
        ("org", [401, 200, 200, 200, 200]),
        ("public", [200, 200, 200, 200, 200]),
    ];
    for (visibility, statuses) in expected {
        for ((caller, token), status) in callers.iter().zip(statuses) {
            let mut request = client().get(server.app_url("growth", visibility, "/"));
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            let response = request.send().unwrap();
            assert_eq!(response.status().as_u16(), status, "{visibility} app, {caller}");
            if status == 401 {
                assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
            }
        }
    }
    // Each refusal of a signed-in user is in the audit log.
    let audit: serde_json::Value = client()
        .get(format!("{}/api/v1/audit?limit=500", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let refused = audit.as_array().unwrap().iter().filter(|event| event["action"] == "app.access").count();
    assert_eq!(refused, 4, "carl, bea and olga at the private app, carl at the team app");
}

#[test]
fn browser_sign_in_and_what_the_app_sees() {
    let server = Server::start("");
    server.cli_ok(&["namespaces", "create", "growth"]);
    let ana_password = add_user(&server, "ana");
    server.cli_ok(&["roles", "grant", "growth", "user:ana", "builder"]);
    server.deploy(whoami_app("whoami", "private").path());
    let app_url = server.app_url("growth", "whoami", "/page?x=1");

    // A browser is sent to the sign-in page, which knows where to come back to.
    let first = client().get(&app_url).header("accept", "text/html").send().unwrap();
    assert_eq!(first.status(), 302);
    let login_url = first.headers()["location"].to_str().unwrap().to_owned();
    assert!(login_url.starts_with(&format!("{}/auth/login?return_to=", server.url)), "{login_url}");
    let form = client().get(&login_url).send().unwrap().text().unwrap();
    assert!(form.contains("name=\"password\""));

    // A wrong password shows the form again; the right one sets the session cookie and returns.
    let return_to = format!("http://127.0.0.1:{}/apps/growth/whoami/page?x=1", server.port);
    let wrong = client()
        .post(format!("{}/auth/login", server.url))
        .form(&[("username", "ana"), ("password", "nope, not it"), ("return_to", &return_to)])
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().unwrap().contains("wrong user name or password"));
    let signed_in = client()
        .post(format!("{}/auth/login", server.url))
        .form(&[("username", "ana"), ("password", ana_password.as_str()), ("return_to", &return_to)])
        .send()
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/apps/growth/whoami/page?x=1");
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();

    // With the cookie the app answers; it sees env.USER and an app-scoped token, never the
    // session cookie, while its own cookies pass through.
    let seen: serde_json::Value = client()
        .get(&app_url)
        .header("cookie", format!("theme=dark; {session}"))
        .header("x-terrarium-identity", "forged")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(seen["user"]["sub"], "ana");
    assert_eq!(seen["cookie"], "theme=dark");
    let identity = seen["identity"].as_str().unwrap();
    assert_ne!(identity, "forged");
    let claims = jwt_claims(identity);
    assert_eq!(claims["aud"], "app:growth/whoami");
    assert_eq!(claims["sub"], "ana");
    assert_eq!(claims["act"]["sub"], "terrarium-gateway");
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 600, "minutes, not hours");
    // The app token is for this app only: the control API refuses it.
    let replayed = client().get(format!("{}/api/v1/whoami", server.url)).bearer_auth(identity).send().unwrap();
    assert_eq!(replayed.status(), 401);

    // A platform bearer token is taken out before the app; an app's own scheme passes through.
    let ana_token = token_of(&server, "ana", &ana_password);
    let seen: serde_json::Value = client().get(&app_url).bearer_auth(&ana_token).send().unwrap().json().unwrap();
    assert_eq!(seen["authorization"], serde_json::Value::Null);
    let public = whoami_app("open", "public");
    server.deploy(public.path());
    let seen: serde_json::Value =
        client().get(server.app_url("growth", "open", "/")).bearer_auth("app-api-key").send().unwrap().json().unwrap();
    assert_eq!(seen["authorization"], "Bearer app-api-key");
    assert_eq!(seen["user"], serde_json::Value::Null);

    // Host-routed apps get their own cookie through a one-minute ticket.
    let host = format!("whoami.growth.localhost:{}", server.port);
    let signed_in = client()
        .post(format!("{}/auth/login", server.url))
        .form(&[("username", "ana"), ("password", ana_password.as_str()), ("return_to", &format!("http://{host}/x"))])
        .send()
        .unwrap();
    let location = signed_in.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("http://{host}/.terrarium/session?ticket=")), "{location}");
    let path = location.trim_start_matches(&format!("http://{host}"));
    let redeemed = client().get(format!("{}{path}", server.url)).header("host", &host).send().unwrap();
    assert_eq!(redeemed.status(), 303);
    assert_eq!(redeemed.headers()["location"], "/x");
    let host_cookie = redeemed.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let seen: serde_json::Value = client()
        .get(format!("{}/x", server.url))
        .header("host", &host)
        .header("cookie", &host_cookie)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(seen["user"]["sub"], "ana");
    // The ticket is for that host only.
    let elsewhere = client()
        .get(format!("{}{path}", server.url))
        .header("host", format!("open.growth.localhost:{}", server.port))
        .send()
        .unwrap();
    assert_eq!(elsewhere.status(), 401);

    // A sign-in never sends the browser to a foreign site.
    let open_redirect = client()
        .post(format!("{}/auth/login", server.url))
        .form(&[("username", "ana"), ("password", ana_password.as_str()), ("return_to", "https://evil.example/")])
        .send()
        .unwrap();
    assert_eq!(open_redirect.headers()["location"], "/");
    let _ = ADMIN_PASSWORD;
}

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
