//! Who is calling: passwords of local accounts, the platform's signing keys, and the tokens
//! the platform mints and verifies.
//!
//! Everything here is pure computation: no network, no files, no async runtime. Key material
//! comes in and goes out as strings; the caller stores it (the key ring document holds a
//! private key, so mode 0600). Signatures, digests and randomness come from aws-lc-rs (through
//! jsonwebtoken for the JWS format); password hashing is the argon2 crate's argon2id.

pub mod keys;
pub mod password;
pub mod principal;
pub mod token;

pub use keys::{KEY_RING_FORMAT, KeyError, KeyRing};
pub use password::{PasswordError, generate_password, hash_password, verify_password};
pub use principal::{ALL_NAMESPACES, Principal, Role};
pub use token::{
    Actor, LEEWAY_SECONDS, MAX_TOKEN_BYTES, TOKEN_EXCHANGE_GRANT_TYPE, TokenClaims, TokenError, TokenIssuer, TokenUse,
    VerifiedClaims, discovery_document,
};
