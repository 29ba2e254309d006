//! The CLI's connection to the control API: finds the server and the caller's token, sends
//! requests and turns every failure into a sentence that says what to do.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use api_types::{API_PREFIX, ApiError};
use reqwest::StatusCode;
use reqwest::blocking::{Client, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ClientArgs;

/// How long an ordinary request (list, get, rollback, delete) may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to the server may take before we say it cannot be reached.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A client for one Terrarium server, authenticated with the caller's platform token.
pub struct ApiClient {
    server: String,
    token: String,
    http: Client,
}

impl ApiClient {
    /// Checks the server address and finds the caller's token; does not contact the server yet.
    pub fn new(args: &ClientArgs) -> anyhow::Result<ApiClient> {
        let server = server_url(&args.server)?;
        let token = match args.token.as_deref().map(str::trim).filter(|token| !token.is_empty()) {
            Some(token) => token.to_owned(),
            None => crate::client::credentials::Credentials::load()?.token_for(&server)?,
        };
        ApiClient::with_token(server, token)
    }

    /// A client that sends `token` (possibly empty, for sign-in itself).
    pub fn with_token(server: String, token: String) -> anyhow::Result<ApiClient> {
        let http = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // Each request sets its own deadline: a followed log stream has none.
            .timeout(None)
            .user_agent(concat!("terrarium-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("failed to set up the HTTP client")?;
        Ok(ApiClient { server, token, http })
    }

    pub fn server(&self) -> &str {
        &self.server
    }

    /// The full URL of a control API path such as `/apps`.
    fn url(&self, path: &str) -> String {
        match path.starts_with("/auth/") {
            true => format!("{}{path}", self.server),
            false => format!("{}{API_PREFIX}{path}", self.server),
        }
    }

    pub fn patch(&self, path: &str) -> RequestBuilder {
        self.http.patch(self.url(path)).timeout(REQUEST_TIMEOUT)
    }

    /// A GET request with the standard deadline; pass it to [`ApiClient::send`].
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path)).timeout(REQUEST_TIMEOUT)
    }

    /// A GET request that may last forever, for streams such as `logs --follow`.
    pub fn get_without_deadline(&self, path: &str) -> RequestBuilder {
        self.http.get(self.url(path))
    }

    /// A POST request with the standard deadline; pass it to [`ApiClient::send`].
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path)).timeout(REQUEST_TIMEOUT)
    }

    pub fn put(&self, path: &str) -> RequestBuilder {
        self.http.put(self.url(path)).timeout(REQUEST_TIMEOUT)
    }

    /// A POST request that may last as long as the server works, for streamed progress.
    pub fn post_without_deadline(&self, path: &str) -> RequestBuilder {
        self.http.post(self.url(path))
    }

    pub fn delete(&self, path: &str) -> RequestBuilder {
        self.http.delete(self.url(path)).timeout(REQUEST_TIMEOUT)
    }

    /// Sends a request with the token and returns the response when its status is 2xx.
    pub fn send(&self, request: RequestBuilder) -> anyhow::Result<Response> {
        let request = match self.token.is_empty() {
            true => request,
            false => request.bearer_auth(&self.token),
        };
        let response = request.send().map_err(|error| self.transport_error(error))?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body = response.text().unwrap_or_default();
        Err(ServerError::from_body(status, &body).into())
    }

    pub fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.send(self.get(path))?;
        self.read_json(response)
    }

    /// [`ApiClient::get_json`] with a query string: each pair escaped (`None` values left out).
    pub fn get_json_query<T: DeserializeOwned>(&self, path: &str, query: &[(&str, Option<&str>)]) -> anyhow::Result<T> {
        let pairs: Vec<(&str, &str)> =
            query.iter().filter_map(|(name, value)| value.map(|value| (*name, value))).collect();
        let response = self.send(self.get(path).query(&pairs))?;
        self.read_json(response)
    }

    pub fn post_json<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        let response = self.send(self.post(path).json(body))?;
        self.read_json(response)
    }

    pub fn read_json<T: DeserializeOwned>(&self, response: Response) -> anyhow::Result<T> {
        let url = response.url().to_string();
        let bytes = response.bytes().map_err(|error| self.transport_error(error))?;
        serde_json::from_slice(&bytes).with_context(|| {
            format!("the server's answer to {url} is not what this version of terrarium expects; is the server the same version?")
        })
    }

    /// Turns a failure to talk to the server into a sentence a person can act on.
    pub fn transport_error(&self, error: reqwest::Error) -> anyhow::Error {
        if error.is_connect() {
            return anyhow!(
                "cannot reach the Terrarium server at {}; is `terrarium serve` running? (use --server or TERRARIUM_SERVER to point at another server)",
                self.server
            );
        }
        if error.is_timeout() {
            return anyhow!("the Terrarium server at {} did not answer in time; try again in a moment", self.server);
        }
        anyhow!(error).context(format!("the connection to the Terrarium server at {} failed", self.server))
    }
}

/// An error answer from the server: its [`ApiError`] when it sent one, otherwise its status and text.
#[derive(Debug)]
pub struct ServerError {
    pub status: StatusCode,
    pub api_error: Option<ApiError>,
    pub body: String,
}

impl ServerError {
    pub fn from_body(status: StatusCode, body: &str) -> ServerError {
        let api_error = serde_json::from_str::<ApiError>(body).ok();
        let mut body = body.trim().to_owned();
        if body.len() > 500 {
            let cut = (0..=500).rev().find(|&index| body.is_char_boundary(index)).unwrap_or(0);
            body.truncate(cut);
            body.push('…');
        }
        ServerError { status, api_error, body }
    }
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.api_error {
            Some(api_error) => {
                write!(f, "{}", api_error.message)?;
                for detail in &api_error.details {
                    write!(f, "\n  {detail}")?;
                }
            }
            None if self.body.is_empty() => write!(f, "the server answered {}", self.status)?,
            None => write!(f, "the server answered {}: {}", self.status, self.body)?,
        }
        // The server's own 401 message says how to fix it; add a hint only when it sent none.
        if self.status == StatusCode::UNAUTHORIZED && self.api_error.is_none() {
            write!(f, "\n(the server did not accept your token: sign in again with `terrarium login`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

/// Checks and normalises a server base URL (`http://127.0.0.1:8080`, no trailing slash).
pub fn server_url(server: &str) -> anyhow::Result<String> {
    let trimmed = server.trim_end_matches('/').to_owned();
    match reqwest::Url::parse(&trimmed) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => Ok(trimmed),
        _ => bail!(
            "--server {server:?} is not a web address; give the server's base URL, for example http://127.0.0.1:8080"
        ),
    }
}

/// Whether `name` can be a namespace or app name: lowercase letters, digits and dashes.
/// The server checks the exact rules; this only keeps names safe inside URLs.
pub fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Splits `NAMESPACE/NAME` and checks both parts, so they are safe inside a URL path.
pub fn parse_app_ref(app: &str) -> anyhow::Result<(String, String)> {
    let is_label = is_plain_name;
    match app.split_once('/') {
        Some((namespace, name)) if is_label(namespace) && is_label(name) => Ok((namespace.to_owned(), name.to_owned())),
        _ => bail!(
            "{app:?} is not an app name; write it as NAMESPACE/NAME in lowercase, for example demo/where2eat \
             (`terrarium apps list` shows every app)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_are_checked_and_normalised() {
        assert_eq!(server_url("http://127.0.0.1:8080/").unwrap(), "http://127.0.0.1:8080");
        assert!(server_url("127.0.0.1:8080").is_err());
        assert!(server_url("ftp://x").is_err());
    }

    #[test]
    fn app_refs_are_namespace_slash_name() {
        assert_eq!(parse_app_ref("demo/where2eat").unwrap(), ("demo".into(), "where2eat".into()));
        for bad in ["where2eat", "demo/", "/x", "a/b/c", "Demo/x", "a/b?c=1"] {
            assert!(parse_app_ref(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_errors_show_the_message_and_every_detail() {
        let body = r#"{"code":"invalid_manifest","message":"the manifest has 2 problems","details":["a","b"]}"#;
        let error = ServerError::from_body(StatusCode::BAD_REQUEST, body);
        assert_eq!(error.to_string(), "the manifest has 2 problems\n  a\n  b");
        let error = ServerError::from_body(StatusCode::BAD_GATEWAY, "upstream down");
        assert_eq!(error.to_string(), "the server answered 502 Bad Gateway: upstream down");
    }
}
