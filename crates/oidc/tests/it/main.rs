//! The relying party against a real, certified OpenID provider (`tests/oidc`, the
//! `oidc-provider` package on Node) started on 127.0.0.1 for each test: discovery, the browser's
//! code flow with PKCE, the device flow, group mapping, key rotation and hostile tokens.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use oidc::{DevicePoll, ExternalIdentity, OidcError, OidcProvider};
use serde_json::{Value, json};
use test_support::oidc::{Browser, Form, Outcome, REDIRECT_URI, TestProvider};
use url::Url;

fn ana() -> ExternalIdentity {
    ExternalIdentity {
        subject: "ana".to_owned(),
        email: Some("ana@example.test".to_owned()),
        name: Some("Ana Lima".to_owned()),
        groups: vec!["growth-team".to_owned(), "admins".to_owned()],
    }
}

fn bob() -> ExternalIdentity {
    ExternalIdentity {
        subject: "bob".to_owned(),
        email: Some("bob@example.test".to_owned()),
        name: Some("Bob Stone".to_owned()),
        groups: vec!["finance".to_owned()],
    }
}

/// The code and state of the provider's redirect to [`REDIRECT_URI`].
struct Callback {
    code: String,
    state: String,
    iss: Option<String>,
}

/// Signs `login` in through the authorization URL, as a browser would, and returns the redirect.
async fn browser_sign_in(url: &str, login: &str) -> Callback {
    let Outcome::Redirected(redirect) = Browser::new().sign_in(url, login).await else {
        panic!("the code flow did not redirect back to the client");
    };
    let query = |name: &str| redirect.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned());
    let code = query("code").unwrap_or_else(|| panic!("no code in the redirect {redirect}"));
    Callback { code, state: query("state").unwrap(), iss: query("iss") }
}

/// The whole browser sign-in: authorization request, login, code exchange.
async fn code_flow(provider: &OidcProvider, login: &str) -> Result<ExternalIdentity, OidcError> {
    let request = provider.authorization_request(REDIRECT_URI);
    let callback = browser_sign_in(&request.url, login).await;
    assert_eq!(callback.state, request.state);
    provider.exchange_code(&callback.code, &request.pkce_verifier, REDIRECT_URI, &request.nonce).await
}

#[tokio::test]
async fn discovery_reads_the_provider_and_refuses_a_look_alike_issuer() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;
    assert_eq!(provider.audience(), "terrarium");

    // The issuer with a trailing slash fetches the very same document, whose issuer is not the
    // configured one: identifiers compare exactly.
    for issuer in [format!("{}/", test_provider.issuer), format!("{}//", test_provider.issuer)] {
        let config = oidc::OidcConfig { issuer: issuer.clone(), ..test_provider.config() };
        match OidcProvider::discover(config).await {
            Err(OidcError::IssuerMismatch { expected, found }) => {
                assert_eq!(expected, issuer);
                assert_eq!(found, test_provider.issuer);
            }
            Err(other) => panic!("{issuer}: expected an issuer mismatch, got {other}"),
            Ok(_) => panic!("{issuer}: a look-alike issuer was accepted"),
        }
    }

    // Plain http is refused off loopback before anything is sent.
    let config = oidc::OidcConfig { issuer: "http://id.example.test".to_owned(), ..test_provider.config() };
    let error = OidcProvider::discover(config).await.err().unwrap();
    assert!(matches!(error, OidcError::InsecureUrl { field: "issuer", .. }), "{error}");
}

#[tokio::test]
async fn code_flow_with_pkce_signs_ana_in() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;
    let request = provider.authorization_request(REDIRECT_URI);
    let sent: Vec<(String, String)> = Url::parse(&request.url).unwrap().query_pairs().into_owned().collect();
    assert!(sent.contains(&("code_challenge_method".to_owned(), "S256".to_owned())), "{sent:?}");
    assert!(sent.contains(&("scope".to_owned(), "openid email profile groups".to_owned())), "{sent:?}");
    assert!(!request.url.contains(&request.pkce_verifier), "the verifier must not travel through the browser");

    let callback = browser_sign_in(&request.url, "ana").await;
    assert_eq!(callback.state, request.state);
    assert_eq!(callback.iss.as_deref(), Some(test_provider.issuer.as_str()));
    let identity =
        provider.exchange_code(&callback.code, &request.pkce_verifier, REDIRECT_URI, &request.nonce).await.unwrap();
    assert_eq!(identity, ana());

    // A code works once.
    let replay = provider.exchange_code(&callback.code, &request.pkce_verifier, REDIRECT_URI, &request.nonce).await;
    assert!(matches!(&replay, Err(OidcError::Refused { error, .. }) if error == "invalid_grant"), "{replay:?}");
}

#[tokio::test]
async fn code_flow_refuses_a_wrong_pkce_verifier_or_nonce() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;

    // A stolen code is useless without the verifier that stayed on the server.
    let request = provider.authorization_request(REDIRECT_URI);
    let callback = browser_sign_in(&request.url, "ana").await;
    let other_verifier = provider.authorization_request(REDIRECT_URI).pkce_verifier;
    let result = provider.exchange_code(&callback.code, &other_verifier, REDIRECT_URI, &request.nonce).await;
    assert!(matches!(&result, Err(OidcError::Refused { error, .. }) if error == "invalid_grant"), "{result:?}");

    // An ID token minted for another sign-in (another nonce) is refused.
    let request = provider.authorization_request(REDIRECT_URI);
    let callback = browser_sign_in(&request.url, "ana").await;
    let other_nonce = provider.authorization_request(REDIRECT_URI).nonce;
    let result = provider.exchange_code(&callback.code, &request.pkce_verifier, REDIRECT_URI, &other_nonce).await;
    assert!(matches!(result, Err(OidcError::WrongNonce)), "{result:?}");
}

#[tokio::test]
async fn groups_are_mapped_for_both_users() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;
    assert_eq!(code_flow(&provider, "ana").await.unwrap(), ana());
    assert_eq!(code_flow(&provider, "bob").await.unwrap(), bob());

    // Another claim: a single string becomes one group, a missing claim no groups.
    for (claim, groups) in [("email", vec!["bob@example.test"]), ("roles", vec![])] {
        let config = oidc::OidcConfig { groups_claim: claim.to_owned(), ..test_provider.config() };
        let provider = OidcProvider::discover(config).await.unwrap();
        assert_eq!(code_flow(&provider, "bob").await.unwrap().groups, groups, "groups claim {claim}");
    }
}

#[tokio::test]
async fn device_flow_signs_bob_in() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;
    let device = provider.start_device_authorization().await.unwrap();
    assert!(device.expires_in > 0 && device.interval > 0, "{device:?}");
    assert_eq!(device.verification_uri, format!("{}/device", test_provider.issuer));
    assert_eq!(provider.poll_device_token(&device.device_code).await.unwrap(), DevicePoll::Pending);

    // Bob opens the verification page, confirms the code and signs in.
    let start = device.verification_uri_complete.clone().unwrap();
    let Outcome::Page(page) = Browser::new().sign_in(&start, "bob").await else {
        panic!("the device flow redirected to the client");
    };
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Sign-in Success"), "{}", page.body);

    assert_eq!(provider.poll_device_token(&device.device_code).await.unwrap(), DevicePoll::Granted(bob()));
}

#[tokio::test]
async fn device_flow_reports_a_denial_and_an_unknown_code() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;
    let device = provider.start_device_authorization().await.unwrap();

    // The user opens the page, then presses abort on the confirmation form.
    let mut browser = Browser::new();
    let page = browser.get(&Url::parse(device.verification_uri_complete.as_ref().unwrap()).unwrap()).await;
    let page = browser.submit(&Form::find(&page).expect("the user code form"), &[]).await;
    let confirm = Form::find(&page).expect("the confirmation form");
    let fields = confirm.fields.iter().filter(|(name, _)| name != "confirm").cloned().collect();
    browser.submit(&Form { fields, ..confirm }, &[("abort", "yes")]).await;

    assert_eq!(provider.poll_device_token(&device.device_code).await.unwrap(), DevicePoll::Denied);
    let unknown = provider.poll_device_token("not-a-device-code").await;
    assert!(matches!(&unknown, Err(OidcError::Refused { error, .. }) if error == "invalid_grant"), "{unknown:?}");
}

#[tokio::test]
async fn device_flow_reports_an_expired_code() {
    let test_provider = TestProvider::start_with(&[("DEVICE_CODE_TTL", "1")]);
    let provider = test_provider.discover().await;
    let device = provider.start_device_authorization().await.unwrap();
    assert_eq!(device.expires_in, 1);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(provider.poll_device_token(&device.device_code).await.unwrap(), DevicePoll::Expired);
}

#[tokio::test]
async fn access_tokens_of_the_provider_are_validated() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;

    // A real access token from the token endpoint: the exchange is done by hand here, since the
    // relying party keeps only the identity.
    let request = provider.authorization_request(REDIRECT_URI);
    let callback = browser_sign_in(&request.url, "ana").await;
    let response: Value = reqwest::Client::new()
        .post(format!("{}/token", test_provider.issuer))
        .basic_auth("terrarium", Some("terrarium-secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&code={}&redirect_uri={}&code_verifier={}",
            callback.code,
            url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>(),
            request.pkce_verifier
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = response["access_token"].as_str().expect("an access token");
    assert_eq!(provider.validate_access_token(access_token, "terrarium").await.unwrap(), ana());
    let error = provider.validate_access_token(access_token, "app:team/other").await.unwrap_err();
    assert!(matches!(error, OidcError::WrongAudience { .. }), "{error}");

    // The ES256 key the provider also publishes verifies too.
    let es256 = test_provider.sign("ES256", json!({ "sub": "bob", "groups": ["finance"] })).await;
    let identity = provider.validate_access_token(&es256, "terrarium").await.unwrap();
    assert_eq!((identity.subject.as_str(), identity.groups), ("bob", vec!["finance".to_owned()]));
}

#[tokio::test]
async fn key_rotation_at_the_provider_is_followed() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;
    let before = test_provider.sign("RS256", json!({})).await;
    provider.validate_access_token(&before, "terrarium").await.unwrap();

    // New keys sign from now on; the first token with a new kid makes the cache fetch the JWKS.
    let kids = test_provider.rotate_keys().await;
    assert_eq!(code_flow(&provider, "ana").await.unwrap(), ana());
    let after = test_provider.sign("RS256", json!({})).await;
    assert!(
        after.starts_with(&URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, kids[0])))
    );
    provider.validate_access_token(&after, "terrarium").await.unwrap();
    // The old key stays published, so tokens it signed stay valid until they expire.
    provider.validate_access_token(&before, "terrarium").await.unwrap();

    // A second rotation within 30 seconds is not fetched: unknown kids refetch at most once per
    // interval, so tokens with made-up kids cannot make us hammer the provider.
    test_provider.rotate_keys().await;
    let too_soon = test_provider.sign("RS256", json!({})).await;
    let error = provider.validate_access_token(&too_soon, "terrarium").await.unwrap_err();
    assert!(matches!(error, OidcError::UnknownKeyId), "{error}");
    // A new relying party (a restart) reads the new keys at discovery.
    let restarted = test_provider.discover().await;
    restarted.validate_access_token(&too_soon, "terrarium").await.unwrap();
}

/// Replaces the payload of a signed token and keeps its signature.
fn with_payload(token: &str, payload: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(payload.to_string()), parts[2])
}

/// A token with any header, a good payload and a signature that cannot matter.
fn with_header(token: &str, header: &Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), parts[1], parts[2])
}

#[tokio::test]
async fn hostile_tokens_are_refused() {
    let test_provider = TestProvider::start();
    let provider = test_provider.discover().await;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;

    let good = test_provider.sign("RS256", json!({})).await;
    provider.validate_access_token(&good, "terrarium").await.unwrap();
    let header: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(good.split('.').next().unwrap()).unwrap()).unwrap();
    let kid = header["kid"].as_str().unwrap().to_owned();
    let payload: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(good.split('.').nth(1).unwrap()).unwrap()).unwrap();
    let mut tampered = payload.clone();
    tampered["sub"] = json!("bob");

    // HS256 keyed with the provider's own public key, as published: the RS/HS confusion attack.
    let jwks = test_provider.jwks().await;
    let public_key = jwks["keys"].as_array().unwrap().iter().find(|key| key["kid"] == kid).unwrap().to_string();
    let mut hs256_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs256_header.kid = Some(kid.clone());
    let hs256 =
        jsonwebtoken::encode(&hs256_header, &payload, &jsonwebtoken::EncodingKey::from_secret(public_key.as_bytes()))
            .unwrap();

    let mut cases: Vec<(&str, String, &str)> = vec![
        ("expired", test_provider.sign("RS256", json!({ "iat": now - 7200, "exp": now - 3600 })).await, "Expired"),
        ("not yet valid", test_provider.sign("RS256", json!({ "nbf": now + 3600 })).await, "NotYetValid"),
        ("issued in the future", test_provider.sign("RS256", json!({ "iat": now + 3600 })).await, "IssuedInFuture"),
        ("no expiry", test_provider.sign("RS256", json!({ "exp": null })).await, "MissingClaim"),
        ("wrong issuer", test_provider.sign("RS256", json!({ "iss": "https://evil.test" })).await, "WrongIssuer"),
        ("wrong audience", test_provider.sign("RS256", json!({ "aud": "app:team/other" })).await, "WrongAudience"),
        ("tampered payload", with_payload(&good, &tampered), "BadSignature"),
        ("empty signature", format!("{}.", good.rsplit_once('.').unwrap().0), "BadSignature"),
        ("HS256 keyed with the public key", hs256, "AlgorithmNotAllowed"),
        ("alg none", with_header(&good, &json!({ "alg": "none" })), "AlgorithmNone"),
        ("alg nOnE", with_header(&good, &json!({ "alg": "nOnE", "kid": kid })), "AlgorithmNone"),
        (
            "embedded jwk",
            with_header(&good, &json!({ "alg": "RS256", "kid": kid, "jwk": { "kty": "RSA" } })),
            "EmbeddedKey",
        ),
        (
            "jku elsewhere",
            with_header(&good, &json!({ "alg": "RS256", "kid": kid, "jku": "https://evil.test/jwks" })),
            "KeyReference",
        ),
        (
            "kid path traversal",
            with_header(&good, &json!({ "alg": "RS256", "kid": "../../../etc/passwd" })),
            "UnknownKeyId",
        ),
        ("kid injection", with_header(&good, &json!({ "alg": "RS256", "kid": "x' OR '1'='1" })), "UnknownKeyId"),
        ("not a JWT", "not-a-token".to_owned(), "MalformedToken"),
    ];
    for (name, token, expected) in cases.drain(..) {
        let error = provider.validate_access_token(&token, "terrarium").await.expect_err(name);
        let actual = format!("{error:?}");
        assert!(actual.starts_with(expected), "{name}: expected {expected}, got {actual}");
        // Messages are safe to show: nothing of the token comes back.
        assert!(!error.to_string().contains(&token), "{name}: {error}");
    }
}
