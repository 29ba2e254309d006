//! The few HTTP calls a relying party makes: GET a JSON document, POST a form with client
//! authentication. Bodies are size-capped and redirects are not followed.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use url::Url;

use crate::OidcError;

/// Discovery documents, key sets and token responses are small; anything larger is refused.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The HTTP client for one provider.
pub(crate) fn build_client() -> Result<reqwest::Client, OidcError> {
    reqwest::Client::builder()
        // A provider's endpoints answer directly; a redirect would move a credential elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .user_agent("terrarium-oidc")
        .build()
        .map_err(|source| OidcError::Client { source })
}

/// How this client proves who it is at the token and device authorization endpoints.
pub(crate) struct ClientAuth<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) client_secret: Option<&'a str>,
}

impl ClientAuth<'_> {
    /// `client_secret_basic` (RFC 6749, section 2.3.1): both parts are form-encoded before
    /// they are joined, so a secret with `:` or `%` in it survives.
    pub(crate) fn basic_header(&self) -> Option<String> {
        let secret = self.client_secret?;
        let id: String = url::form_urlencoded::byte_serialize(self.client_id.as_bytes()).collect();
        let secret: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        Some(format!("Basic {}", STANDARD.encode(format!("{id}:{secret}"))))
    }
}

/// GETs `url` and parses its JSON body; any status but 200 is an error.
pub(crate) async fn get_json(
    client: &reqwest::Client,
    url: &Url,
    endpoint: &'static str,
) -> Result<serde_json::Value, OidcError> {
    let response = client
        .get(url.as_str())
        .header(ACCEPT, "application/json")
        .send()
        .await
        .map_err(|source| OidcError::Request { endpoint, source })?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err(OidcError::Status { endpoint, status });
    }
    let body = read_capped(response, endpoint).await?;
    serde_json::from_slice(&body).map_err(|_| OidcError::InvalidResponse { endpoint })
}

/// POSTs `fields` as a form with client authentication and returns the status and the JSON
/// body, which OAuth endpoints send for errors too.
pub(crate) async fn post_form(
    client: &reqwest::Client,
    url: &Url,
    endpoint: &'static str,
    auth: &ClientAuth<'_>,
    fields: &[(&str, &str)],
) -> Result<(u16, serde_json::Value), OidcError> {
    let mut request = client
        .post(url.as_str())
        .header(ACCEPT, "application/json")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(header) = auth.basic_header() {
        request = request.header(AUTHORIZATION, header);
    }
    // Built in its own scope: the serializer is not Send, and callers' futures must be.
    let body = {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(fields);
        if auth.basic_header().is_none() {
            // A public client names itself in the body.
            form.append_pair("client_id", auth.client_id);
        }
        form.finish()
    };
    let response = request.body(body).send().await.map_err(|source| OidcError::Request { endpoint, source })?;
    let status = response.status().as_u16();
    let body = read_capped(response, endpoint).await?;
    match serde_json::from_slice(&body) {
        Ok(json) => Ok((status, json)),
        Err(_) if status != 200 => Err(OidcError::Status { endpoint, status }),
        Err(_) => Err(OidcError::InvalidResponse { endpoint }),
    }
}

/// Reads the body, refusing it once it passes [`MAX_BODY_BYTES`].
async fn read_capped(mut response: reqwest::Response, endpoint: &'static str) -> Result<Vec<u8>, OidcError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|source| OidcError::Request { endpoint, source })? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(OidcError::InvalidResponse { endpoint });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
