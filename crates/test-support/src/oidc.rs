//! Test support: the real OpenID provider of `tests/oidc` run with Node on 127.0.0.1, and a
//! small scripted browser (cookies, redirects, HTML forms) that signs users in over plain HTTP.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;

use oidc::{OidcConfig, OidcProvider};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use url::Url;

/// The redirect URI registered for the `terrarium` client unless a test registers its own.
/// Nothing listens there: the browser stops at the redirect and the test reads the code from it.
pub const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// The provider's packages live beside it; `npm ci` runs once per test binary when missing.
fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc")
}

fn install_provider_packages() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let dir = provider_dir();
        if dir.join("node_modules").exists() {
            return;
        }
        let status =
            Command::new("npm").args(["ci", "--no-audit", "--no-fund", "--prefix"]).arg(&dir).status().unwrap_or_else(
                |error| panic!("these tests need Node.js and npm (Debian: apt-get install nodejs npm): {error}"),
            );
        assert!(status.success(), "npm ci --prefix {} failed: {status}", dir.display());
    });
}

/// A running `node tests/oidc/provider.mjs`, killed on drop. Set `OIDC_PROVIDER_LOG=1` to see
/// its warnings and errors.
pub struct TestProvider {
    child: Child,
    pub issuer: String,
}

impl TestProvider {
    pub fn start() -> TestProvider {
        TestProvider::start_with(&[])
    }

    /// Starts the provider with extra environment variables (`DEVICE_CODE_TTL`). A provider
    /// that has not said where it listens after a minute is stopped and started again: Node has
    /// been seen to hang at start, idle, on a machine kept busy by stress-ng.
    pub fn start_with(env: &[(&str, &str)]) -> TestProvider {
        install_provider_packages();
        for attempt in 1..=3 {
            match TestProvider::try_start(env) {
                Some(provider) => return provider,
                None => eprintln!("the OpenID provider did not start within 60 s (attempt {attempt} of 3)"),
            }
        }
        panic!("the OpenID provider did not start in three attempts (set OIDC_PROVIDER_LOG=1 to see why)");
    }

    fn try_start(env: &[(&str, &str)]) -> Option<TestProvider> {
        let stderr = match std::env::var_os("OIDC_PROVIDER_LOG") {
            Some(_) => Stdio::inherit(),
            None => Stdio::null(),
        };
        let mut child = Command::new("node")
            .arg(provider_dir().join("provider.mjs"))
            .env("PORT", "0")
            .env("REDIRECT_URIS", REDIRECT_URI)
            // A test's own REDIRECT_URIS (a Terrarium server's callback) replaces the default.
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|error| panic!("these tests need Node.js (Debian: apt-get install nodejs npm): {error}"));
        let stdout = child.stdout.take().unwrap();
        let (first_line, first) = std::sync::mpsc::channel();
        // Reads the first line, then keeps reading, so the provider never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = first_line.send(lines.next().and_then(Result::ok).unwrap_or_default());
            lines.for_each(drop);
        });
        let Ok(first) = first.recv_timeout(std::time::Duration::from_secs(60)) else {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        };
        let Some(issuer) = first.strip_prefix("oidc provider listening on ") else {
            let _ = child.kill();
            panic!("the OpenID provider did not start (set OIDC_PROVIDER_LOG=1 to see why); it printed {first:?}");
        };
        Some(TestProvider { issuer: issuer.trim().to_owned(), child })
    }

    pub fn config(&self) -> OidcConfig {
        OidcConfig {
            issuer: self.issuer.clone(),
            client_id: "terrarium".to_owned(),
            client_secret: Some("terrarium-secret".to_owned()),
            scopes: vec!["openid".to_owned(), "email".to_owned(), "profile".to_owned(), "groups".to_owned()],
            groups_claim: "groups".to_owned(),
            audience: "terrarium".to_owned(),
        }
    }

    pub async fn discover(&self) -> OidcProvider {
        OidcProvider::discover(self.config()).await.expect("discovery of the test provider")
    }

    /// A JWT signed by the provider's current key for `alg`, with default `iss`, `sub` (ana),
    /// `aud` (terrarium), `iat` and `exp` (in 5 minutes), overridden or removed (null) by `claims`.
    pub async fn sign(&self, alg: &str, claims: serde_json::Value) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/test/sign", self.issuer))
            .json(&serde_json::json!({ "alg": alg, "claims": claims }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.text().await.unwrap()
    }

    /// New signing keys at the provider, published first in its JWKS; returns the new key ids.
    pub async fn rotate_keys(&self) -> Vec<String> {
        let response = reqwest::Client::new().post(format!("{}/test/rotate-keys", self.issuer)).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let body: serde_json::Value = response.json().await.unwrap();
        body["kids"].as_array().unwrap().iter().map(|kid| kid.as_str().unwrap().to_owned()).collect()
    }

    /// The provider's published JWKS, as an attacker would read it.
    pub async fn jwks(&self) -> serde_json::Value {
        reqwest::get(format!("{}/jwks", self.issuer)).await.unwrap().json().await.unwrap()
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One response as the browser saw it.
pub struct Page {
    pub url: Url,
    pub status: u16,
    /// The redirect target, resolved against `url`.
    pub location: Option<Url>,
    pub body: String,
}

/// The first HTML form of a page: where it posts and its hidden fields.
pub struct Form {
    pub action: Url,
    pub fields: Vec<(String, String)>,
    pub asks_for_login: bool,
}

impl Form {
    pub fn find(page: &Page) -> Option<Form> {
        let start = page.body.find("<form")?;
        let end = page.body[start..].find("</form>").map_or(page.body.len(), |end| start + end);
        let html = &page.body[start..end];
        let form_tag = &html[..html.find('>')?];
        let action = page.url.join(&attribute(form_tag, "action").unwrap_or_default()).ok()?;
        let mut fields = Vec::new();
        let mut asks_for_login = false;
        for input in html.split("<input").skip(1) {
            let tag = &input[..input.find('>').unwrap_or(input.len())];
            let Some(name) = attribute(tag, "name") else { continue };
            match attribute(tag, "type").as_deref() {
                Some("hidden") => fields.push((name, attribute(tag, "value").unwrap_or_default())),
                _ if name == "login" => asks_for_login = true,
                _ => {}
            }
        }
        Some(Form { action, fields, asks_for_login })
    }
}

/// The value of `name="…"` in an HTML tag, with the entities oidc-provider writes decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let flat = tag.replace('\n', " ");
    let start = flat.find(&needle)? + needle.len();
    let value = &flat[start..start + flat[start..].find('"')?];
    let decoded = value
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    Some(decoded)
}

/// How a scripted sign-in ended.
pub enum Outcome {
    /// Redirected to the client's callback: the code flow's answer.
    Redirected(Url),
    /// A page with no form: the device flow's success page, or an error page.
    Page(Page),
}

/// A browser without JavaScript: keeps cookies (by name, whatever their path), follows nothing
/// on its own, and submits the forms it is shown.
pub struct Browser {
    client: reqwest::Client,
    cookies: BTreeMap<String, String>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Browser { client, cookies: BTreeMap::new() }
    }

    pub async fn get(&mut self, url: &Url) -> Page {
        let request = self.client.get(url.as_str());
        self.send(url, request).await
    }

    pub async fn submit(&mut self, form: &Form, extra: &[(&str, &str)]) -> Page {
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        body.extend_pairs(form.fields.iter().map(|(name, value)| (name.as_str(), value.as_str())));
        body.extend_pairs(extra);
        let request = self
            .client
            .post(form.action.as_str())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.finish());
        self.send(&form.action, request).await
    }

    async fn send(&mut self, url: &Url, mut request: reqwest::RequestBuilder) -> Page {
        if !self.cookies.is_empty() {
            let header: Vec<String> = self.cookies.iter().map(|(name, value)| format!("{name}={value}")).collect();
            request = request.header(COOKIE, header.join("; "));
        }
        let response = request.send().await.unwrap_or_else(|error| panic!("request to {url} failed: {error}"));
        for set_cookie in response.headers().get_all(SET_COOKIE) {
            let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            match value.is_empty() {
                true => self.cookies.remove(name),
                false => self.cookies.insert(name.to_owned(), value.to_owned()),
            };
        }
        let status = response.status().as_u16();
        let location = response.headers().get(LOCATION).map(|value| url.join(value.to_str().unwrap()).unwrap());
        let body = response.text().await.unwrap();
        Page { url: url.clone(), status, location, body }
    }

    /// Opens `start` and plays the user: follows redirects, submits each form it is shown
    /// (hidden fields as they are, `login` and `password` where the login form asks), until the
    /// provider redirects to [`REDIRECT_URI`] or shows a page without a form.
    pub async fn sign_in(&mut self, start: &str, login: &str) -> Outcome {
        self.sign_in_until(start, login, REDIRECT_URI).await
    }

    /// Like [`Browser::sign_in`], stopping at a redirect to `stop_at` (a client's callback).
    pub async fn sign_in_until(&mut self, start: &str, login: &str, stop_at: &str) -> Outcome {
        let mut page = self.get(&Url::parse(start).unwrap()).await;
        for _ in 0..20 {
            if let Some(location) = page.location.clone() {
                if location.as_str().starts_with(stop_at) {
                    return Outcome::Redirected(location);
                }
                page = self.get(&location).await;
                continue;
            }
            let Some(form) = Form::find(&page) else { return Outcome::Page(page) };
            let credentials: &[(&str, &str)] = match form.asks_for_login {
                true => &[("login", login), ("password", "password")],
                false => &[],
            };
            page = self.submit(&form, credentials).await;
        }
        panic!("the sign-in did not end after 20 steps; last page {} ({})", page.url, page.status);
    }
}
