//! Unit tests of the pure parts: discovery checks, key selection, header and claim checks,
//! identity mapping, PKCE and client authentication. The flows against a real provider are in
//! `tests/it`.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

use crate::discovery::{self, DiscoveryDocument};
use crate::http::ClientAuth;
use crate::jwks::{KeySet, Lookup};
use crate::jwt::{self, Audience, Claims, Expectations};
use crate::{OidcConfig, OidcError};

const ISSUER: &str = "https://id.example.test";
const NOW: i64 = 1_800_000_000;

fn encode(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A token with this header and a placeholder payload and signature: enough for header checks.
fn token_with_header(header: Value) -> String {
    format!("{}.{}.c2lnbmF0dXJl", encode(&header), encode(&json!({ "sub": "ana" })))
}

#[test]
fn header_checks() {
    let allowed = [Algorithm::RS256, Algorithm::ES256];
    let check = |header: Value, expect: Result<(Algorithm, Option<&str>), &str>| {
        let token = token_with_header(header.clone());
        let actual = jwt::check_header(&token, &allowed).map(|h| (h.alg, h.kid)).map_err(|error| format!("{error:?}"));
        let expect = expect.map(|(alg, kid)| (alg, kid.map(str::to_owned))).map_err(str::to_owned);
        assert_eq!(actual, expect, "header {header}");
    };
    check(json!({ "alg": "RS256", "kid": "k1" }), Ok((Algorithm::RS256, Some("k1"))));
    check(json!({ "alg": "ES256" }), Ok((Algorithm::ES256, None)));
    for none in ["none", "None", "NONE", "nOnE"] {
        check(json!({ "alg": none }), Err("AlgorithmNone"));
    }
    // HMAC is never accepted, least of all keyed with the provider's public key.
    check(json!({ "alg": "HS256", "kid": "k1" }), Err("AlgorithmNotAllowed"));
    // Known to jsonwebtoken but not published by this provider.
    check(json!({ "alg": "PS256" }), Err("AlgorithmNotAllowed"));
    check(json!({ "alg": "rs256" }), Err("AlgorithmNotAllowed"));
    check(json!({ "alg": "RS256", "jwk": { "kty": "RSA" } }), Err("EmbeddedKey"));
    check(json!({ "alg": "RS256", "jku": "https://evil.test/jwks" }), Err("KeyReference"));
    check(json!({ "alg": "RS256", "x5u": "https://evil.test/cert" }), Err("KeyReference"));
    check(json!({ "alg": "RS256", "x5c": ["MIIB"] }), Err("KeyReference"));
    check(json!({ "alg": "RS256", "crit": ["exp"] }), Err("CriticalHeader"));
    check(json!({ "alg": "RS256", "kid": 7 }), Err("MalformedToken"));
    check(json!({ "kid": "k1" }), Err("MalformedToken"));
}

#[test]
fn header_checks_refuse_malformed_and_oversized_tokens() {
    let allowed = [Algorithm::RS256];
    let check = |token: &str, expect: &str| {
        let actual = jwt::check_header(token, &allowed).map_err(|error| format!("{error:?}"));
        assert_eq!(actual.unwrap_err(), expect, "token {token:.40}");
    };
    check("", "MalformedToken");
    check("a.b", "MalformedToken");
    check("a.b.c.d", "MalformedToken");
    check("!!!.e30.c2ln", "MalformedToken");
    let unsigned = token_with_header(json!({ "alg": "RS256" }));
    let (signed_part, _) = unsigned.rsplit_once('.').unwrap();
    check(&format!("{signed_part}."), "BadSignature");
    let huge = format!("{}.{}.c2ln", encode(&json!({ "alg": "RS256" })), "A".repeat(crate::MAX_TOKEN_BYTES));
    check(&huge, "TokenTooLarge { max_bytes: 16384 }");
}

fn id_token_claims() -> Claims {
    let claims = json!({
        "iss": ISSUER, "sub": "ana", "aud": "terrarium", "exp": NOW + 300, "iat": NOW, "nonce": "n-1",
    });
    claims.as_object().unwrap().clone()
}

fn check_id_token(change: impl FnOnce(&mut Claims), expect: Result<(), &str>) {
    let mut claims = id_token_claims();
    change(&mut claims);
    let expectations = Expectations {
        issuer: ISSUER,
        audience: Audience::IdToken { client_id: "terrarium" },
        nonce: Some("n-1"),
        now: NOW,
    };
    let actual = jwt::check_claims(&claims, &expectations).map_err(|error| format!("{error:?}"));
    assert_eq!(actual, expect.map_err(str::to_owned), "claims {claims:?}");
}

#[test]
fn id_token_claim_checks() {
    check_id_token(|_| {}, Ok(()));
    check_id_token(|c| drop(c.insert("iss".into(), json!("https://id.example.test/"))), Err("WrongIssuer"));
    check_id_token(|c| drop(c.remove("iss")), Err("MissingClaim { claim: \"iss\" }"));
    check_id_token(
        |c| drop(c.insert("aud".into(), json!("other-app"))),
        Err("WrongAudience { expected: \"terrarium\" }"),
    );
    check_id_token(|c| drop(c.insert("aud".into(), json!(["terrarium"]))), Ok(()));
    // Several audiences need an `azp` naming this client.
    check_id_token(|c| drop(c.insert("aud".into(), json!(["terrarium", "other"]))), Err("WrongAuthorizedParty"));
    check_id_token(
        |c| {
            c.insert("aud".into(), json!(["terrarium", "other"]));
            c.insert("azp".into(), json!("terrarium"));
        },
        Ok(()),
    );
    check_id_token(|c| drop(c.insert("azp".into(), json!("other"))), Err("WrongAuthorizedParty"));
    check_id_token(|c| drop(c.remove("aud")), Err("MissingClaim { claim: \"aud\" }"));
    // exp, nbf and iat each get 60 seconds of leeway, and no more.
    check_id_token(|c| drop(c.insert("exp".into(), json!(NOW - 59))), Ok(()));
    check_id_token(|c| drop(c.insert("exp".into(), json!(NOW - 60))), Err("Expired"));
    check_id_token(|c| drop(c.remove("exp")), Err("MissingClaim { claim: \"exp\" }"));
    check_id_token(|c| drop(c.insert("exp".into(), json!("tomorrow"))), Err("MissingClaim { claim: \"exp\" }"));
    check_id_token(|c| drop(c.insert("nbf".into(), json!(NOW + 60))), Ok(()));
    check_id_token(|c| drop(c.insert("nbf".into(), json!(NOW + 61))), Err("NotYetValid"));
    check_id_token(|c| drop(c.insert("iat".into(), json!(NOW + 61))), Err("IssuedInFuture"));
    check_id_token(|c| drop(c.remove("iat")), Err("MissingClaim { claim: \"iat\" }"));
    check_id_token(|c| drop(c.insert("iat".into(), json!(NOW as f64 + 0.5))), Ok(()));
    check_id_token(|c| drop(c.insert("nonce".into(), json!("n-2"))), Err("WrongNonce"));
    check_id_token(|c| drop(c.remove("nonce")), Err("WrongNonce"));
    check_id_token(|c| drop(c.insert("sub".into(), json!(""))), Err("MissingClaim { claim: \"sub\" }"));
}

#[test]
fn access_token_claim_checks() {
    let check = |claims: Value, expect: Result<(), &str>| {
        let expectations = Expectations {
            issuer: ISSUER,
            audience: Audience::AccessToken { audience: "terrarium" },
            nonce: None,
            now: NOW,
        };
        let actual =
            jwt::check_claims(claims.as_object().unwrap(), &expectations).map_err(|error| format!("{error:?}"));
        assert_eq!(actual, expect.map_err(str::to_owned), "claims {claims}");
    };
    check(json!({ "iss": ISSUER, "sub": "ana", "aud": "terrarium", "exp": NOW + 60 }), Ok(()));
    // Access tokens often name several resources and need no azp.
    check(json!({ "iss": ISSUER, "sub": "ana", "aud": ["account", "terrarium"], "exp": NOW + 60 }), Ok(()));
    check(
        json!({ "iss": ISSUER, "sub": "ana", "aud": "app:team/other", "exp": NOW + 60 }),
        Err("WrongAudience { expected: \"terrarium\" }"),
    );
    check(json!({ "iss": ISSUER, "sub": "ana", "aud": "terrarium", "exp": NOW - 3600 }), Err("Expired"));
}

#[test]
fn identity_reads_groups_from_the_configured_claim() {
    let check = |claims: Value, groups_claim: &str, expect: Result<Vec<&str>, &str>| {
        let actual = jwt::identity(claims.as_object().unwrap(), groups_claim)
            .map(|identity| identity.groups)
            .map_err(|error| error.to_string());
        let expect = expect.map(|groups| groups.into_iter().map(str::to_owned).collect()).map_err(str::to_owned);
        assert_eq!(actual, expect, "claims {claims}");
    };
    check(json!({ "sub": "ana", "groups": ["growth-team", "admins"] }), "groups", Ok(vec!["growth-team", "admins"]));
    check(json!({ "sub": "ana", "roles": "finance" }), "roles", Ok(vec!["finance"]));
    check(json!({ "sub": "ana" }), "groups", Ok(vec![]));
    check(json!({ "sub": "ana", "groups": null }), "groups", Ok(vec![]));
    check(
        json!({ "sub": "ana", "groups": ["a", 1] }),
        "groups",
        Err("the token's groups claim is neither a string nor an array of strings"),
    );
    check(
        json!({ "sub": "ana", "groups": { "a": 1 } }),
        "groups",
        Err("the token's groups claim is neither a string nor an array of strings"),
    );
}

#[test]
fn identity_drops_an_unverified_email() {
    let check = |claims: Value, expect: Option<&str>| {
        let identity = jwt::identity(claims.as_object().unwrap(), "groups").unwrap();
        assert_eq!(identity.email.as_deref(), expect, "claims {claims}");
    };
    check(json!({ "sub": "a", "email": "a@example.test" }), Some("a@example.test"));
    check(json!({ "sub": "a", "email": "a@example.test", "email_verified": true }), Some("a@example.test"));
    check(json!({ "sub": "a", "email": "a@example.test", "email_verified": false }), None);
}

fn document(issuer: &str, algorithms: Value) -> DiscoveryDocument {
    serde_json::from_value(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/auth"),
        "token_endpoint": format!("{issuer}/token"),
        "jwks_uri": format!("{issuer}/jwks"),
        "id_token_signing_alg_values_supported": algorithms,
    }))
    .unwrap()
}

#[test]
fn discovery_requires_the_exact_issuer() {
    let metadata = discovery::check_metadata(ISSUER, document(ISSUER, json!(["RS256"]))).unwrap();
    assert_eq!(metadata.token_endpoint.as_str(), "https://id.example.test/token");
    assert!(metadata.device_authorization_endpoint.is_none());

    for found in ["https://id.example.test/", "https://ID.example.test", "https://evil.test"] {
        let error = discovery::check_metadata(ISSUER, document(found, json!(["RS256"]))).unwrap_err();
        assert!(matches!(error, OidcError::IssuerMismatch { .. }), "{found}: {error:?}");
    }
}

#[test]
fn discovery_pins_asymmetric_algorithms_only() {
    let published = |names: &[&str]| names.iter().map(|name| name.to_string()).collect::<Vec<_>>();
    assert_eq!(
        discovery::accepted_algorithms(&published(&["none", "HS256", "RS256", "ES256", "ES512", "RS256", "EdDSA"])),
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
    );
    let error = discovery::check_metadata(ISSUER, document(ISSUER, json!(["none", "HS256", "HS512"]))).unwrap_err();
    assert!(matches!(error, OidcError::NoUsableAlgorithm), "{error:?}");
}

#[test]
fn urls_must_be_https_unless_on_loopback() {
    let check = |url: &str, allowed: bool| {
        assert_eq!(discovery::secure_url("issuer", url).is_ok(), allowed, "{url}");
    };
    check("https://id.example.test", true);
    check("http://127.0.0.1:8080", true);
    check("http://[::1]:8080", true);
    check("http://localhost:8080", true);
    check("http://id.example.test", false);
    check("http://10.0.0.1", false);
    check("ftp://id.example.test", false);
    check("not a url", false);
}

#[test]
fn key_set_keeps_signing_keys_for_allowed_algorithms() {
    let document = json!({ "keys": [
        { "kty": "RSA", "kid": "rsa", "n": "AQAB", "e": "AQAB", "alg": "RS256", "use": "sig" },
        { "kty": "EC", "kid": "ec", "crv": "P-256", "x": "AQAB", "y": "AQAB" },
        { "kty": "EC", "kid": "p521", "crv": "P-521", "x": "AQAB", "y": "AQAB" },
        { "kty": "RSA", "kid": "enc", "n": "AQAB", "e": "AQAB", "use": "enc" },
        { "kty": "RSA", "kid": "ops", "n": "AQAB", "e": "AQAB", "key_ops": ["encrypt"] },
        { "kty": "oct", "kid": "hmac", "k": "c2VjcmV0" },
        { "kty": "AKP", "kid": "future", "alg": "ML-DSA-44", "pub": "AQAB" },
        { "kty": "RSA", "kid": "broken" },
    ]});
    let keys = KeySet::parse(&document, &[Algorithm::RS256, Algorithm::ES256]).unwrap();
    assert_eq!(keys.len(), 2);

    let found = |kid: Option<&str>, alg| match keys.find(kid, alg) {
        Lookup::Found(_) => "found",
        Lookup::Unknown => "unknown",
        Lookup::Ambiguous => "ambiguous",
    };
    assert_eq!(found(Some("rsa"), Algorithm::RS256), "found");
    assert_eq!(found(Some("ec"), Algorithm::ES256), "found");
    // A key is used only with the algorithms its type, curve and `alg` allow.
    assert_eq!(found(Some("rsa"), Algorithm::ES256), "unknown");
    assert_eq!(found(Some("rsa"), Algorithm::PS256), "unknown");
    assert_eq!(found(Some("hmac"), Algorithm::HS256), "unknown");
    assert_eq!(found(Some("enc"), Algorithm::RS256), "unknown");
    assert_eq!(found(None, Algorithm::RS256), "found");

    let two_rsa = json!({ "keys": [
        { "kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB" },
        { "kty": "RSA", "kid": "b", "n": "AQAB", "e": "AQAB" },
    ]});
    let keys = KeySet::parse(&two_rsa, &[Algorithm::RS256]).unwrap();
    assert!(matches!(keys.find(None, Algorithm::RS256), Lookup::Ambiguous));

    let error = KeySet::parse(&json!({ "keys": "none" }), &[Algorithm::RS256]).err().unwrap();
    assert!(matches!(error, OidcError::InvalidResponse { endpoint: "JWKS" }));
}

#[test]
fn pkce_challenge_matches_rfc_7636() {
    // The example of RFC 7636, appendix B.
    assert_eq!(
        crate::flows::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
}

#[test]
fn client_secret_basic_form_encodes_both_parts() {
    let header = ClientAuth { client_id: "terrarium", client_secret: Some("s3cr:t%&") }.basic_header().unwrap();
    let decoded = STANDARD.decode(header.strip_prefix("Basic ").unwrap()).unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), "terrarium:s3cr%3At%25%26");
    assert!(ClientAuth { client_id: "cli", client_secret: None }.basic_header().is_none());
}

#[test]
fn scopes_start_with_openid_and_debug_hides_the_secret() {
    let config = OidcConfig {
        issuer: ISSUER.into(),
        client_id: "terrarium".into(),
        client_secret: Some("terrarium-secret".into()),
        scopes: vec!["email".into(), "openid".into(), "groups".into()],
        groups_claim: "groups".into(),
        audience: "terrarium".into(),
    };
    assert_eq!(config.scope_parameter(), "openid email groups");
    let debug = format!("{config:?}");
    assert!(!debug.contains("terrarium-secret"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
}

#[test]
fn refusals_keep_only_a_well_formed_oauth_error_code() {
    let check = |body: Value, expect: &str| {
        assert_eq!(crate::flows::refusal("token endpoint", &body, 400).to_string(), expect, "body {body}");
    };
    check(
        json!({ "error": "invalid_grant", "error_description": "code ABC for ana@example.test is used" }),
        "the identity provider's token endpoint refused the request with the error invalid_grant",
    );
    check(
        json!({ "error": "<script>alert(1)</script>" }),
        "the identity provider's token endpoint answered with HTTP status 400",
    );
    check(json!({}), "the identity provider's token endpoint answered with HTTP status 400");
}
