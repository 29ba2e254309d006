//! Tests of minting and verification, with the JWT attack suite as data: every hostile token
//! is crafted by hand from base64url pieces and must be refused with its own error.

use aws_lc_rs::hmac;
use aws_lc_rs::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use serde_json::{Value, json};

use super::*;

const ISSUER: &str = "https://terrarium.test";
const APP_A: &str = "app:team-a/expenses";
const APP_B: &str = "app:team-a/payroll";
const FIVE_MINUTES: Duration = Duration::from_secs(300);

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap()
}

fn seconds(n: i64) -> time::Duration {
    time::Duration::seconds(n)
}

fn issuer() -> TokenIssuer {
    TokenIssuer::new(ISSUER, KeyRing::generate().unwrap())
}

fn app_claims(audience: &str) -> TokenClaims {
    TokenClaims {
        sub: "alice".to_owned(),
        aud: audience.to_owned(),
        token_use: TokenUse::App,
        namespace: Some("team-a".to_owned()),
        groups: vec!["finance".to_owned()],
        roles: vec!["builder".to_owned()],
        email: Some("alice@example.com".to_owned()),
        name: Some("Alice".to_owned()),
        act: Some(Actor { sub: "gateway".to_owned() }),
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn part(value: &Value) -> String {
    b64(value.to_string().as_bytes())
}

fn decode_part(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// A payload the platform would accept at `now()` for `audience`.
fn payload(audience: &str) -> Value {
    let now = now().unix_timestamp();
    json!({
        "iss": ISSUER, "sub": "mallory", "aud": audience, "token_use": "app",
        "iat": now, "nbf": now, "exp": now + 300, "jti": "hand-made",
    })
}

/// `header.payload.` with no signature at all.
fn unsigned(header: &Value, payload: &Value) -> String {
    format!("{}.{}.", part(header), part(payload))
}

/// `header.payload.signature` with a signature that was never computed.
fn with_signature(header: &Value, payload: &Value, signature: &[u8]) -> String {
    format!("{}.{}.{}", part(header), part(payload), b64(signature))
}

/// Signs with an Ed25519 private key given as a PKCS#8 document.
fn sign_ed25519(pkcs8: &[u8], header: &Value, payload: &Value) -> String {
    sign_ed25519_header_text(pkcs8, &header.to_string(), payload)
}

/// Signs a header written as text, for headers that JSON values cannot hold (duplicate members).
fn sign_ed25519_header_text(pkcs8: &[u8], header: &str, payload: &Value) -> String {
    let signing_input = format!("{}.{}", b64(header.as_bytes()), part(payload));
    let key_pair = Ed25519KeyPair::from_pkcs8(pkcs8).unwrap();
    format!("{signing_input}.{}", b64(key_pair.sign(signing_input.as_bytes()).as_ref()))
}

/// Signs with the platform's own active key: a hostile header with a genuine signature.
fn sign_with_platform_key(issuer: &TokenIssuer, header: &Value, payload: &Value) -> String {
    sign_ed25519(issuer.ring.signing_key().1.as_bytes(), header, payload)
}

/// HMAC-SHA256 over the signing input, keyed with `secret`.
fn sign_hs256(secret: &[u8], header: &Value, payload: &Value) -> String {
    let signing_input = format!("{}.{}", part(header), part(payload));
    let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret), signing_input.as_bytes());
    format!("{signing_input}.{}", b64(tag.as_ref()))
}

/// A key pair of the attacker's own: its PKCS#8 document, its public JWK and its kid.
struct AttackerKey {
    pkcs8: Vec<u8>,
    jwk: Value,
    kid: String,
}

fn attacker_key() -> AttackerKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let public_key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap().public_key().as_ref().to_vec();
    AttackerKey {
        pkcs8: pkcs8.as_ref().to_vec(),
        jwk: json!({ "kty": "OKP", "crv": "Ed25519", "x": b64(&public_key) }),
        kid: b64(&public_key[..8]),
    }
}

/// One hostile token and the error it must be refused with.
struct Case {
    name: String,
    token: String,
    expected: TokenError,
}

fn case(name: impl Into<String>, token: String, expected: TokenError) -> Case {
    Case { name: name.into(), token, expected }
}

/// The attack suite of issue 3, against tokens for [`APP_A`] at [`now`].
fn attack_cases(issuer: &TokenIssuer) -> Vec<Case> {
    let kid = issuer.ring.active_kid().to_owned();
    let genuine_header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid });
    let payload = payload(APP_A);
    let attacker = attacker_key();
    let jwks = issuer.jwks();
    let platform_jwk = jwks["keys"][0].clone();
    let platform_x = platform_jwk["x"].as_str().unwrap().to_owned();
    let mut cases = Vec::new();

    // `alg: none` in any letter case, with and without a signature, with and without a kid.
    for alg in ["none", "None", "NONE", "nOnE", "NoNe"] {
        let header = json!({ "alg": alg, "typ": "JWT", "kid": kid });
        cases.push(case(format!("alg {alg}, no signature"), unsigned(&header, &payload), TokenError::AlgorithmNone));
        cases.push(case(
            format!("alg {alg}, genuine signature"),
            sign_with_platform_key(issuer, &header, &payload),
            TokenError::AlgorithmNone,
        ));
        let header = json!({ "alg": alg });
        cases.push(case(format!("alg {alg}, no kid"), unsigned(&header, &payload), TokenError::AlgorithmNone));
    }

    // Duplicate members, read one way by a lenient parser and another way by a strict one.
    let platform_pkcs8 = issuer.ring.signing_key().1.as_bytes();
    let header = format!(r#"{{"alg":"none","alg":"EdDSA","kid":"{kid}"}}"#);
    cases.push(case(
        "alg none then EdDSA",
        sign_ed25519_header_text(platform_pkcs8, &header, &payload),
        TokenError::Malformed,
    ));
    let header = format!(r#"{{"alg":"EdDSA","alg":"none","kid":"{kid}"}}"#);
    cases.push(case(
        "alg EdDSA then none",
        sign_ed25519_header_text(platform_pkcs8, &header, &payload),
        TokenError::AlgorithmNone,
    ));
    let header = format!(r#"{{"alg":"EdDSA","kid":"../../etc/passwd","kid":"{kid}"}}"#);
    cases.push(case("two kids", sign_ed25519_header_text(platform_pkcs8, &header, &payload), TokenError::Malformed));

    // The right algorithm and kid, but no signature.
    cases.push(case("empty signature", unsigned(&genuine_header, &payload), TokenError::EmptySignature));

    // Algorithm confusion: HMAC keyed with the platform's public key in every form it is published in.
    let hs256_header = json!({ "alg": "HS256", "typ": "JWT", "kid": kid });
    let public_key = URL_SAFE_NO_PAD.decode(&platform_x).unwrap();
    let secrets: [(&str, Vec<u8>); 4] = [
        ("raw public key", public_key),
        ("base64url x", platform_x.clone().into_bytes()),
        ("JWK text", platform_jwk.to_string().into_bytes()),
        ("JWKS text", jwks.to_string().into_bytes()),
    ];
    for (form, secret) in secrets {
        cases.push(case(
            format!("HS256 keyed with the {form}"),
            sign_hs256(&secret, &hs256_header, &payload),
            TokenError::AlgorithmNotAllowed,
        ));
    }
    for alg in ["HS256", "HS512", "RS256", "PS256", "ES256", "EDDSA", "eddsa", "Ed25519", ""] {
        let header = json!({ "alg": alg, "typ": "JWT", "kid": kid });
        cases.push(case(
            format!("alg {alg:?}"),
            with_signature(&header, &payload, &[7; 64]),
            TokenError::AlgorithmNotAllowed,
        ));
    }

    // A key carried in the token itself: the attacker's, or even the platform's own.
    let header = json!({ "alg": "EdDSA", "kid": attacker.kid, "jwk": attacker.jwk });
    cases.push(case(
        "embedded attacker jwk",
        sign_ed25519(&attacker.pkcs8, &header, &payload),
        TokenError::EmbeddedKey,
    ));
    let header = json!({ "alg": "EdDSA", "kid": kid, "jwk": attacker.jwk });
    cases.push(case(
        "embedded attacker jwk, platform kid",
        sign_ed25519(&attacker.pkcs8, &header, &payload),
        TokenError::EmbeddedKey,
    ));
    let header = json!({ "alg": "EdDSA", "kid": kid, "jwk": platform_jwk });
    cases.push(case(
        "embedded platform jwk, genuine signature",
        sign_with_platform_key(issuer, &header, &payload),
        TokenError::EmbeddedKey,
    ));

    // Keys or certificates to be fetched from elsewhere or carried along.
    let elsewhere = [
        ("jku", json!("https://evil.example/jwks.json")),
        ("x5u", json!("https://evil.example/cert.pem")),
        ("x5c", json!(["MIIBszCCAVmgAwIBAgIUevil"])),
    ];
    for (member, value) in elsewhere {
        let mut header = json!({ "alg": "EdDSA", "kid": attacker.kid });
        header[member] = value.clone();
        cases.push(case(
            format!("{member} with the attacker's key"),
            sign_ed25519(&attacker.pkcs8, &header, &payload),
            TokenError::KeyReference,
        ));
        let mut header = genuine_header.clone();
        header[member] = value;
        cases.push(case(
            format!("{member} with a genuine signature"),
            sign_with_platform_key(issuer, &header, &payload),
            TokenError::KeyReference,
        ));
    }

    // Extensions the platform does not understand.
    let header = json!({ "alg": "EdDSA", "kid": kid, "crit": ["b64"], "b64": false });
    cases.push(case("crit b64", sign_with_platform_key(issuer, &header, &payload), TokenError::CriticalHeader));

    // A kid with path traversal or injection text is just a kid the ring does not have.
    let hostile_kids = [
        "../../../../../../dev/null".to_owned(),
        "/etc/passwd".to_owned(),
        "..\\..\\keys\\active.json".to_owned(),
        "' OR '1'='1".to_owned(),
        "x'; DROP TABLE keys; --".to_owned(),
        "$(curl https://evil.example)".to_owned(),
        "`id`".to_owned(),
        "{\"$ne\": null}".to_owned(),
        "*".to_owned(),
        "kid\u{0}".to_owned(),
        String::new(),
        format!("{kid}/../{kid}"),
        format!("{kid}\u{0}"),
        format!(" {kid}"),
        kid.to_uppercase(),
        kid[..kid.len() - 1].to_owned(),
    ];
    for hostile_kid in hostile_kids {
        let header = json!({ "alg": "EdDSA", "kid": hostile_kid });
        cases.push(case(
            format!("kid {hostile_kid:?}"),
            sign_ed25519(&attacker.pkcs8, &header, &payload),
            TokenError::UnknownKeyId,
        ));
    }
    let header = json!({ "alg": "EdDSA", "typ": "JWT" });
    cases.push(case("no kid", sign_with_platform_key(issuer, &header, &payload), TokenError::MissingKeyId));
    let header = json!({ "alg": "EdDSA", "kid": 1 });
    cases.push(case("numeric kid", sign_with_platform_key(issuer, &header, &payload), TokenError::Malformed));

    // Signatures that are not the platform's.
    cases.push(case(
        "attacker signature, platform kid",
        sign_ed25519(&attacker.pkcs8, &genuine_header, &payload),
        TokenError::BadSignature,
    ));
    cases.push(case("zero signature", with_signature(&genuine_header, &payload, &[0; 64]), TokenError::BadSignature));
    cases.push(case("short signature", with_signature(&genuine_header, &payload, &[1; 10]), TokenError::BadSignature));
    let genuine = sign_with_platform_key(issuer, &genuine_header, &payload);
    let [header_part, _, signature_part] = genuine.split('.').collect::<Vec<_>>()[..] else { unreachable!() };
    let mut elevated = payload.clone();
    elevated["sub"] = json!("admin");
    elevated["roles"] = json!(["admin"]);
    cases.push(case(
        "payload changed under a genuine signature",
        format!("{header_part}.{}.{signature_part}", part(&elevated)),
        TokenError::BadSignature,
    ));
    let mut signature = URL_SAFE_NO_PAD.decode(signature_part).unwrap();
    signature[0] ^= 1;
    cases.push(case(
        "one bit of a genuine signature flipped",
        format!("{header_part}.{}.{}", part(&payload), b64(&signature)),
        TokenError::BadSignature,
    ));
    cases.push(case("padded signature", format!("{genuine}=="), TokenError::Malformed));

    // Not a compact JWS at all.
    let not_tokens = [
        "",
        "token",
        "a.b",
        "a.b.c.d",
        "!!!.e30.c2ln",
        "e30.e30.c2ln",
        "W10.e30.c2ln",
        "eyJhbGciOjF9.e30.c2ln",
        "eyJhbGciOiJFZERTQSJ9.e30",
    ];
    for not_token in not_tokens {
        cases.push(case(format!("not a token: {not_token:?}"), not_token.to_owned(), TokenError::Malformed));
    }
    cases.push(case("a huge token", "a".repeat(MAX_TOKEN_BYTES + 1), TokenError::TooLarge));

    // Genuinely signed, but with claims the platform never writes.
    let mut without_exp = payload.clone();
    without_exp.as_object_mut().unwrap().remove("exp");
    let mut audience_list = payload.clone();
    audience_list["aud"] = json!([APP_A]);
    let mut unknown_use = payload.clone();
    unknown_use["token_use"] = json!("root");
    let mut text_time = payload.clone();
    text_time["exp"] = json!("tomorrow");
    for (name, claims) in [
        ("no exp", without_exp),
        ("aud as a list", audience_list),
        ("unknown token_use", unknown_use),
        ("exp as text", text_time),
    ] {
        cases.push(case(name, sign_with_platform_key(issuer, &genuine_header, &claims), TokenError::InvalidClaims));
    }

    // Genuinely signed, well-formed claims that fail their checks.
    let now = now().unix_timestamp();
    let claim_cases = [
        ("another issuer", json!({ "iss": "https://evil.example" }), TokenError::WrongIssuer),
        ("issuer with a trailing slash", json!({ "iss": format!("{ISSUER}/") }), TokenError::WrongIssuer),
        ("another app's audience", json!({ "aud": APP_B }), TokenError::WrongAudience { expected: APP_A.to_owned() }),
        ("platform audience", json!({ "aud": ISSUER }), TokenError::WrongAudience { expected: APP_A.to_owned() }),
        ("expired", json!({ "exp": now - LEEWAY_SECONDS }), TokenError::Expired),
        ("not yet valid", json!({ "nbf": now + LEEWAY_SECONDS + 1 }), TokenError::NotYetValid),
        ("issued in the future", json!({ "iat": now + LEEWAY_SECONDS + 1 }), TokenError::IssuedInFuture),
    ];
    for (name, changes, expected) in claim_cases {
        let mut claims = payload.clone();
        for (member, value) in changes.as_object().unwrap() {
            claims[member] = value.clone();
        }
        cases.push(case(name, sign_with_platform_key(issuer, &genuine_header, &claims), expected));
    }
    cases
}

#[test]
fn the_jwt_attack_suite_is_refused_case_by_case() {
    let issuer = issuer();
    let cases = attack_cases(&issuer);
    assert!(cases.len() > 70, "{} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        let outcome = issuer.verify(&case.token, APP_A, now());
        if outcome.as_ref().err() != Some(&case.expected) {
            failures.push(format!("{}: expected {:?}, got {outcome:?}", case.name, case.expected));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[test]
fn refusal_messages_say_nothing_of_the_token() {
    let issuer = issuer();
    for case in attack_cases(&issuer) {
        let message = issuer.verify(&case.token, APP_A, now()).unwrap_err().to_string();
        assert!(message.starts_with("the token") || message.ends_with("are refused"), "{message}");
        for fragment in ["evil", "mallory", "admin", "../", "DROP", "passwd", "none", "HS256", "root"] {
            assert!(!message.contains(fragment), "{}: {message:?} mentions {fragment:?}", case.name);
        }
        for piece in case.token.split('.').filter(|piece| piece.len() > 8) {
            assert!(!message.contains(piece), "{}: {message:?} repeats the token", case.name);
        }
    }
}

#[test]
fn a_minted_token_verifies_with_every_claim() {
    let issuer = issuer();
    let token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    let verified = issuer.verify(&token, APP_A, now()).unwrap();
    let now = now().unix_timestamp();
    assert_eq!(verified.claims, app_claims(APP_A));
    assert_eq!(verified.iss, ISSUER);
    assert_eq!((verified.iat, verified.nbf, verified.exp), (now, now, now + 300));
    assert_eq!(URL_SAFE_NO_PAD.decode(&verified.jti).unwrap().len(), 16);

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(decode_part(parts[0]), json!({ "alg": "EdDSA", "typ": "JWT", "kid": issuer.ring.active_kid() }));
    let payload = decode_part(parts[1]);
    assert_eq!(payload["aud"], APP_A, "one audience, as a string");
    assert_eq!(payload["act"], json!({ "sub": "gateway" }));
    assert_eq!(payload["token_use"], "app");
    assert_eq!(payload["groups"], json!(["finance"]));
}

#[test]
fn optional_claims_are_left_out_of_the_token() {
    let issuer = issuer();
    let claims = TokenClaims {
        sub: "alice".to_owned(),
        aud: ISSUER.to_owned(),
        token_use: TokenUse::Access,
        namespace: None,
        groups: Vec::new(),
        roles: Vec::new(),
        email: None,
        name: None,
        act: None,
    };
    let token = issuer.mint_at(claims.clone(), FIVE_MINUTES, now()).unwrap();
    let payload = decode_part(token.split('.').nth(1).unwrap());
    let mut members: Vec<&str> = payload.as_object().unwrap().keys().map(String::as_str).collect();
    members.sort();
    assert_eq!(members, ["aud", "exp", "iat", "iss", "jti", "nbf", "sub", "token_use"]);
    assert_eq!(issuer.verify(&token, ISSUER, now()).unwrap().claims, claims);
}

#[test]
fn every_token_has_its_own_jti() {
    let issuer = issuer();
    let first = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    let second = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    let first = issuer.verify(&first, APP_A, now()).unwrap();
    let second = issuer.verify(&second, APP_A, now()).unwrap();
    assert_ne!(first.jti, second.jti);
}

#[test]
fn a_token_minted_on_the_real_clock_verifies_now() {
    let issuer = issuer();
    let token = issuer.mint(app_claims(APP_A), FIVE_MINUTES).unwrap();
    assert!(issuer.verify(&token, APP_A, OffsetDateTime::now_utc()).is_ok());
}

#[test]
fn times_are_checked_with_a_leeway_of_one_minute() {
    let issuer = issuer();
    let token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    let verify_at = |at: OffsetDateTime| issuer.verify(&token, APP_A, at).map(|_| ());

    assert_eq!(verify_at(now() + seconds(300 + LEEWAY_SECONDS - 1)), Ok(()));
    assert_eq!(verify_at(now() + seconds(300 + LEEWAY_SECONDS)), Err(TokenError::Expired));
    assert_eq!(verify_at(now() + seconds(3600)), Err(TokenError::Expired));
    assert_eq!(verify_at(now() - seconds(LEEWAY_SECONDS)), Ok(()));
    assert_eq!(verify_at(now() - seconds(LEEWAY_SECONDS + 1)), Err(TokenError::NotYetValid));
}

#[test]
fn an_expired_token_is_refused() {
    let issuer = issuer();
    let token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now() - seconds(3600)).unwrap();
    assert_eq!(issuer.verify(&token, APP_A, now()), Err(TokenError::Expired));
}

#[test]
fn a_token_not_yet_valid_is_refused() {
    let issuer = issuer();
    let token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now() + seconds(600)).unwrap();
    assert_eq!(issuer.verify(&token, APP_A, now()), Err(TokenError::NotYetValid));
}

#[test]
fn a_token_of_another_issuer_with_the_same_keys_is_refused() {
    let issuer = issuer();
    let document = issuer.ring.to_json();
    let impostor = TokenIssuer::new("https://other.test", KeyRing::from_json(&document).unwrap());
    let token = impostor.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    assert_eq!(issuer.verify(&token, APP_A, now()), Err(TokenError::WrongIssuer));
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let issuer = issuer();
    let access = issuer.mint_at(app_claims(ISSUER), FIVE_MINUTES, now()).unwrap();
    assert!(issuer.verify(&access, ISSUER, now()).is_ok());
    assert_eq!(issuer.verify(&access, APP_A, now()), Err(TokenError::WrongAudience { expected: APP_A.to_owned() }));
}

#[test]
fn another_apps_token_replayed_at_this_app_is_refused() {
    let issuer = issuer();
    let token_of_a = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    assert!(issuer.verify(&token_of_a, APP_A, now()).is_ok());
    let refused = issuer.verify(&token_of_a, APP_B, now()).unwrap_err();
    assert_eq!(refused, TokenError::WrongAudience { expected: APP_B.to_owned() });
    assert_eq!(refused.to_string(), "the token is not meant for app:team-a/payroll");
}

#[test]
fn a_token_of_a_retired_key_verifies_until_the_key_is_pruned() {
    let mut issuer = issuer();
    let old_kid = issuer.ring.active_kid().to_owned();
    let old_token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();

    issuer.ring.rotate().unwrap();
    assert_ne!(issuer.ring.active_kid(), old_kid);
    assert!(issuer.verify(&old_token, APP_A, now()).is_ok(), "the retired key still verifies");
    let new_token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    assert_eq!(decode_part(new_token.split('.').next().unwrap())["kid"], issuer.ring.active_kid());
    assert!(issuer.verify(&new_token, APP_A, now()).is_ok());

    assert_eq!(issuer.ring.prune(), 1);
    assert_eq!(issuer.verify(&old_token, APP_A, now()), Err(TokenError::UnknownKeyId));
    assert!(issuer.verify(&new_token, APP_A, now()).is_ok());
}

#[test]
fn tokens_verify_after_the_ring_is_saved_and_loaded() {
    let mut issuer = issuer();
    let old_token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    issuer.ring.rotate().unwrap();
    let new_token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();

    let reloaded = TokenIssuer::new(ISSUER, KeyRing::from_json(&issuer.ring.to_json()).unwrap());
    assert!(reloaded.verify(&old_token, APP_A, now()).is_ok());
    assert!(reloaded.verify(&new_token, APP_A, now()).is_ok());
    let minted_after_reload = reloaded.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    assert!(issuer.verify(&minted_after_reload, APP_A, now()).is_ok());
}

/// Proves that any standard Ed25519 implementation can check the platform's tokens from the
/// published JWKS alone: this goes straight to aws-lc-rs, not through jsonwebtoken.
#[test]
fn a_minted_token_verifies_with_the_jwks_and_a_plain_ed25519_verifier() {
    let issuer = issuer();
    let token = issuer.mint_at(app_claims(APP_A), FIVE_MINUTES, now()).unwrap();
    let jwks: Value = serde_json::from_str(&issuer.jwks().to_string()).unwrap();

    let (signing_input, signature) = token.rsplit_once('.').unwrap();
    let kid = decode_part(signing_input.split('.').next().unwrap())["kid"].clone();
    let jwk = jwks["keys"].as_array().unwrap().iter().find(|key| key["kid"] == kid).unwrap();
    assert_eq!((&jwk["kty"], &jwk["crv"], &jwk["alg"]), (&json!("OKP"), &json!("Ed25519"), &json!("EdDSA")));
    let public_key = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();

    let verifier = UnparsedPublicKey::new(&ED25519, &public_key);
    assert!(verifier.verify(signing_input.as_bytes(), &signature).is_ok());
    assert!(verifier.verify(format!("{signing_input}x").as_bytes(), &signature).is_err());
}

#[test]
fn the_discovery_document_points_at_the_jwks_and_token_endpoint() {
    let expected = json!({
        "issuer": ISSUER,
        "jwks_uri": "https://terrarium.test/.well-known/jwks.json",
        "token_endpoint": "https://terrarium.test/oauth/token",
        "grant_types_supported": ["urn:ietf:params:oauth:grant-type:token-exchange"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
    });
    assert_eq!(discovery_document(ISSUER), expected);
    assert_eq!(issuer().discovery_document(), expected);

    let with_slash = discovery_document("https://terrarium.test/");
    assert_eq!(with_slash["issuer"], "https://terrarium.test/", "the issuer stays exactly as configured");
    assert_eq!(with_slash["jwks_uri"], "https://terrarium.test/.well-known/jwks.json");
}
