//! The sign-in flows: authorization code with PKCE (RFC 7636, S256) for browsers and the device
//! authorization grant (RFC 8628) for the CLI. Both end in a validated ID token.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::http::{self, ClientAuth};
use crate::{ExternalIdentity, OidcError, OidcProvider};

const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const TOKEN_ENDPOINT: &str = "token endpoint";
const DEVICE_ENDPOINT: &str = "device authorization endpoint";

/// RFC 8628, section 3.2: without an `interval`, clients wait 5 seconds between polls.
const DEFAULT_POLL_INTERVAL_SECONDS: u64 = 5;

/// A sign-in to send the browser to. Keep `state`, `nonce` and `pkce_verifier` on the server
/// side (or in an encrypted cookie) until the browser comes back.
#[derive(Clone)]
pub struct AuthorizationRequest {
    /// The provider's authorization endpoint with every parameter of this sign-in.
    pub url: String,
    /// Compare with the `state` of the redirect before exchanging its code.
    pub state: String,
    /// Pass to [`OidcProvider::exchange_code`]; the ID token must carry it.
    pub nonce: String,
    /// Pass to [`OidcProvider::exchange_code`]; only its hash travelled through the browser.
    pub pkce_verifier: String,
}

/// A started device sign-in: show `user_code` and `verification_uri` to the user, then poll
/// with `device_code` every `interval`.
#[derive(Clone)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    /// The verification URI with the user code in it, when the provider offers one.
    pub verification_uri_complete: Option<String>,
    /// Seconds until the device code expires.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

/// One poll of a device sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DevicePoll {
    /// The user has not finished yet: poll again after the interval.
    Pending,
    /// Polling too fast: add 5 seconds to the interval (RFC 8628, section 3.5).
    SlowDown,
    Granted(ExternalIdentity),
    /// The user refused.
    Denied,
    /// The device code expired: start again.
    Expired,
}

impl OidcProvider {
    /// A new sign-in for the browser, coming back to `redirect_uri` (registered at the provider).
    pub fn authorization_request(&self, redirect_uri: &str) -> AuthorizationRequest {
        let state = random_token();
        let nonce = random_token();
        let pkce_verifier = random_token();
        let mut url = self.metadata.authorization_endpoint.clone();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("scope", &self.config.scope_parameter())
            .append_pair("state", &state)
            .append_pair("nonce", &nonce)
            .append_pair("code_challenge", &pkce_challenge(&pkce_verifier))
            .append_pair("code_challenge_method", "S256");
        AuthorizationRequest { url: url.into(), state, nonce, pkce_verifier }
    }

    /// Exchanges the code of the redirect for tokens and validates the ID token, including its
    /// nonce. The caller has already checked the redirect's `state`.
    pub async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
        redirect_uri: &str,
        expected_nonce: &str,
    ) -> Result<ExternalIdentity, OidcError> {
        let fields = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri),
            ("code_verifier", pkce_verifier),
        ];
        let (status, body) =
            http::post_form(&self.client, &self.metadata.token_endpoint, TOKEN_ENDPOINT, &self.client_auth(), &fields)
                .await?;
        if status != 200 {
            return Err(refusal(TOKEN_ENDPOINT, &body, status));
        }
        let id_token = id_token(&body)?;
        self.validate_id_token(id_token, Some(expected_nonce)).await
    }

    /// Starts a device sign-in with the configured scopes.
    pub async fn start_device_authorization(&self) -> Result<DeviceAuthorization, OidcError> {
        let url = self.metadata.device_authorization_endpoint.as_ref().ok_or(OidcError::DeviceFlowUnsupported)?;
        let scope = self.config.scope_parameter();
        let (status, body) =
            http::post_form(&self.client, url, DEVICE_ENDPOINT, &self.client_auth(), &[("scope", &scope)]).await?;
        if status != 200 {
            return Err(refusal(DEVICE_ENDPOINT, &body, status));
        }
        let invalid = || OidcError::InvalidResponse { endpoint: DEVICE_ENDPOINT };
        let text = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
        let seconds = |name: &str| body.get(name).and_then(Value::as_u64);
        Ok(DeviceAuthorization {
            device_code: text("device_code").ok_or_else(invalid)?,
            user_code: text("user_code").ok_or_else(invalid)?,
            verification_uri: text("verification_uri").ok_or_else(invalid)?,
            verification_uri_complete: text("verification_uri_complete"),
            expires_in: seconds("expires_in").ok_or_else(invalid)?,
            interval: seconds("interval").unwrap_or(DEFAULT_POLL_INTERVAL_SECONDS),
        })
    }

    /// Asks the token endpoint once whether the user has finished the device sign-in.
    pub async fn poll_device_token(&self, device_code: &str) -> Result<DevicePoll, OidcError> {
        let fields = [("grant_type", DEVICE_CODE_GRANT), ("device_code", device_code)];
        let (status, body) =
            http::post_form(&self.client, &self.metadata.token_endpoint, TOKEN_ENDPOINT, &self.client_auth(), &fields)
                .await?;
        if status == 200 {
            // No nonce travels in the device flow.
            let identity = self.validate_id_token(id_token(&body)?, None).await?;
            return Ok(DevicePoll::Granted(identity));
        }
        match body.get("error").and_then(Value::as_str) {
            Some("authorization_pending") => Ok(DevicePoll::Pending),
            Some("slow_down") => Ok(DevicePoll::SlowDown),
            Some("access_denied") => Ok(DevicePoll::Denied),
            Some("expired_token") => Ok(DevicePoll::Expired),
            _ => Err(refusal(TOKEN_ENDPOINT, &body, status)),
        }
    }

    fn client_auth(&self) -> ClientAuth<'_> {
        ClientAuth { client_id: &self.config.client_id, client_secret: self.config.client_secret.as_deref() }
    }
}

/// The `id_token` member of a successful token response.
fn id_token(body: &Value) -> Result<&str, OidcError> {
    body.get("id_token").and_then(Value::as_str).ok_or(OidcError::MissingIdToken)
}

/// The error of a refused token or device request. Only the OAuth error code is kept, and only
/// if it looks like one: `error_description` is free text from the provider.
pub(crate) fn refusal(endpoint: &'static str, body: &Value, status: u16) -> OidcError {
    let code = body.get("error").and_then(Value::as_str).filter(|code| {
        !code.is_empty() && code.len() <= 64 && code.bytes().all(|byte| byte.is_ascii_lowercase() || byte == b'_')
    });
    match code {
        Some(code) => OidcError::Refused { endpoint, error: code.to_owned() },
        None => OidcError::Status { endpoint, status },
    }
}

/// 32 random bytes, base64url: 256 bits for state, nonce and the PKCE verifier (43 characters,
/// within RFC 7636's 43 to 128).
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge: base64url of the SHA-256 of the verifier.
pub(crate) fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

// The verifier, nonce and device code are credentials for a moment: they stay out of logs.
impl fmt::Debug for AuthorizationRequest {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AuthorizationRequest")
            .field("url", &self.url)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DeviceAuthorization")
            .field("user_code", &self.user_code)
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}
