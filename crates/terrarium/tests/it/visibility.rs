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
    let host = format!("whoami.growth.localhost:{}", server.port);
    let on_host = |path: &str| client().get(format!("{}{path}", server.url)).header("host", &host);

    // A browser is sent to the sign-in page, which will send it back to the app's own host:
    // path-routed apps share one origin, so cookies only count on an app's host.
    let first = client().get(&app_url).header("accept", "text/html").send().unwrap();
    assert_eq!(first.status(), 302);
    let login_url = first.headers()["location"].to_str().unwrap().to_owned();
    let return_to = format!("http://{host}/page?x=1");
    assert_eq!(login_url, format!("{}/auth/login?return_to={}", server.url, encode(&return_to)));
    let page = client().get(&login_url).send().unwrap();
    let csrf_cookie = page.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    assert!(csrf_cookie.starts_with("__Host-terrarium_csrf="), "{csrf_cookie}");
    let form = page.text().unwrap();
    assert!(form.contains("name=\"password\""));
    let token = form.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let post = |password: &str, cookie: &str, token: &str| {
        client().post(format!("{}/auth/login", server.url)).header("cookie", cookie).form(&[
            ("username", "ana"),
            ("password", password),
            ("return_to", &return_to),
            ("csrf", token),
        ])
    };

    // Login CSRF: a form without the page's token, or posted from an app's page, is refused.
    assert_eq!(post(&ana_password, "", "").send().unwrap().status(), 403);
    assert_eq!(post(&ana_password, &csrf_cookie, "forged").send().unwrap().status(), 403);
    let from_an_app =
        post(&ana_password, &csrf_cookie, &token).header("origin", format!("http://{host}")).send().unwrap();
    assert_eq!(from_an_app.status(), 403);
    let same_site = post(&ana_password, &csrf_cookie, &token).header("sec-fetch-site", "same-site").send().unwrap();
    assert_eq!(same_site.status(), 403);

    // A wrong password shows the form again; the right one sets the session cookie and hands
    // the app host a one-minute ticket.
    let wrong = post("nope, not it", &csrf_cookie, &token).send().unwrap();
    assert_eq!(wrong.status(), 401);
    assert!(wrong.text().unwrap().contains("wrong user name or password"));
    let signed_in = post(&ana_password, &csrf_cookie, &token).send().unwrap();
    assert_eq!(signed_in.status(), 303);
    let platform_cookie = signed_in.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(platform_cookie.contains("HttpOnly") && platform_cookie.contains("SameSite=Lax"), "{platform_cookie}");
    let location = signed_in.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(&format!("http://{host}/.terrarium/session?ticket=")), "{location}");
    let ticket_path = location.trim_start_matches(&format!("http://{host}")).to_owned();
    let redeemed = on_host(&ticket_path).send().unwrap();
    assert_eq!(redeemed.status(), 303);
    assert_eq!(redeemed.headers()["location"], "/page?x=1");
    let session = redeemed.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();

    // Two sessions on one request (one of them planted) count as none.
    let planted = on_host("/page").header("cookie", format!("{session}; {session}x")).send().unwrap();
    assert_eq!(planted.status(), 401, "two sessions: signed out");

    // With the cookie the app answers on its host; it sees env.USER and an app-scoped token,
    // never the session cookie, while its own cookies pass through.
    let seen: serde_json::Value = on_host("/page?x=1")
        .header("cookie", format!("theme=dark; {session}"))
        .header("x-terrarium-identity", "forged")
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(seen["user"]["sub"], "ana");
    assert_eq!(seen["cookie"], "theme=dark");
    let identity = seen["identity"].as_str().unwrap().to_owned();
    assert_ne!(identity, "forged");
    let claims = jwt_claims(&identity);
    assert_eq!(claims["aud"], "app:growth/whoami");
    assert_eq!(claims["sub"], "ana");
    assert_eq!(claims["act"]["sub"], "terrarium-gateway");
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 600, "minutes, not hours");
    assert_eq!(claims["namespace"], "growth");
    assert_eq!(claims["roles"], serde_json::json!(["builder"]));
    assert_eq!(claims["groups"], serde_json::Value::Null, "ana has no groups; empty lists are left out");
    // The app token is for this app only: the control API and another app refuse it.
    let replayed = client().get(format!("{}/api/v1/whoami", server.url)).bearer_auth(&identity).send().unwrap();
    assert_eq!(replayed.status(), 401);
    server.deploy(whoami_app("other", "org").path());
    let other_app = client().get(server.app_url("growth", "other", "/")).bearer_auth(&identity).send().unwrap();
    assert_eq!(other_app.status(), 401);
    // The same cookie does not open the app on the shared origin; the ticket is for its host only.
    let shared_origin = client().get(&app_url).header("cookie", &session).send().unwrap();
    assert_eq!(shared_origin.status(), 401);
    let elsewhere = client()
        .get(format!("{}{ticket_path}", server.url))
        .header("host", format!("open.growth.localhost:{}", server.port))
        .send()
        .unwrap();
    assert_eq!(elsewhere.status(), 401);

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

    // A sign-in form posted from another site is refused (login CSRF); from this server it works.
    let cross_site = client()
        .post(format!("{}/auth/login", server.url))
        .header("origin", "https://evil.example")
        .form(&[("username", "ana"), ("password", ana_password.as_str()), ("return_to", "/")])
        .send()
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let same_origin = client()
        .post(format!("{}/auth/login", server.url))
        .header("origin", &server.url)
        .header("cookie", &csrf_cookie)
        .form(&[("username", "ana"), ("password", ana_password.as_str()), ("return_to", "/"), ("csrf", &token)])
        .send()
        .unwrap();
    assert_eq!(same_origin.status(), 303);

    // A sign-in never sends the browser to a foreign site.
    let open_redirect = client()
        .post(format!("{}/auth/login", server.url))
        .header("cookie", &csrf_cookie)
        .form(&[
            ("username", "ana"),
            ("password", ana_password.as_str()),
            ("return_to", "https://evil.example/"),
            ("csrf", &token),
        ])
        .send()
        .unwrap();
    assert_eq!(open_redirect.headers()["location"], "/");
    let _ = ADMIN_PASSWORD;
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b.is_ascii_alphanumeric() {
            true => (b as char).to_string(),
            false => format!("%{b:02X}"),
        })
        .collect()
}

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
