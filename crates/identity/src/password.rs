//! Passwords of local accounts: argon2id hashes in PHC strings, and one-time passwords.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Characters of generated passwords: letters and digits without the look-alikes 0, O, o, 1, I and l.
const PASSWORD_ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";

/// Length of generated passwords: 24 characters from 56 give about 139 bits.
const GENERATED_PASSWORD_LEN: usize = 24;

/// Length of the random salt in bytes (the PHC recommendation is at least 16).
const SALT_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is empty")]
    Empty,
    #[error("the system random generator failed")]
    Random,
    #[error("password hashing failed")]
    Hashing,
}

/// The hasher: argon2id version 19 with the OWASP-recommended cost (19 MiB, 2 passes, 1 lane).
fn argon2id() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// Hashes a password with argon2id and a fresh random salt, as a PHC string
/// (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`) that carries its own parameters.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    if password.is_empty() {
        return Err(PasswordError::Empty);
    }
    let mut salt = [0u8; SALT_LEN];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| PasswordError::Random)?;
    let salt = SaltString::encode_b64(&salt).map_err(|_| PasswordError::Hashing)?;
    let hash = argon2id().hash_password(password.as_bytes(), &salt).map_err(|_| PasswordError::Hashing)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. The comparison is argon2's own,
/// in constant time; a malformed PHC string matches nothing.
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    argon2id().verify_password(password.as_bytes(), &hash).is_ok()
}

/// A one-time password of 24 characters from an unambiguous alphabet, drawn from the
/// system's cryptographic random generator.
///
/// Panics only if the system random generator fails, which happens at start-up if at all.
pub fn generate_password() -> String {
    let mut password = String::with_capacity(GENERATED_PASSWORD_LEN);
    // Bytes at or above the largest multiple of the alphabet's size are thrown away, so
    // every character is equally likely (no modulo bias).
    let limit = 256 - 256 % PASSWORD_ALPHABET.len();
    let mut bytes = [0u8; 64];
    while password.len() < GENERATED_PASSWORD_LEN {
        aws_lc_rs::rand::fill(&mut bytes).expect("the system random generator failed");
        for &byte in &bytes {
            if usize::from(byte) < limit && password.len() < GENERATED_PASSWORD_LEN {
                password.push(char::from(PASSWORD_ALPHABET[usize::from(byte) % PASSWORD_ALPHABET.len()]));
            }
        }
    }
    password
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hashed_password_verifies_and_another_does_not() {
        let phc = hash_password("correct horse battery staple").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
        assert!(!verify_password("", &phc));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        let first = hash_password("hunter2").unwrap();
        let second = hash_password("hunter2").unwrap();
        assert_ne!(first, second, "each hash has its own salt");
        assert!(verify_password("hunter2", &first));
        assert!(verify_password("hunter2", &second));
    }

    #[test]
    fn an_empty_password_is_refused() {
        assert!(matches!(hash_password(""), Err(PasswordError::Empty)));
    }

    #[test]
    fn a_malformed_phc_string_matches_nothing() {
        for phc in ["", "hunter2", "$argon2id$", "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$"] {
            assert!(!verify_password("hunter2", phc), "{phc:?}");
        }
    }

    #[test]
    fn generated_passwords_are_long_unambiguous_and_different() {
        let first = generate_password();
        let second = generate_password();
        assert_eq!(first.len(), GENERATED_PASSWORD_LEN);
        assert_ne!(first, second);
        for character in first.chars().chain(second.chars()) {
            assert!(PASSWORD_ALPHABET.contains(&(character as u8)), "{character:?}");
            assert!(!"0Oo1Il".contains(character), "{character:?}");
        }
        let phc = hash_password(&first).unwrap();
        assert!(verify_password(&first, &phc));
    }
}
