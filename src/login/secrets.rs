//! The login's one-time secrets: `state` and `nonce` (256 bits each from the
//! OS random number generator, base64url) and the PKCE S256 verifier and
//! challenge (RFC 7636).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SecureRandom;

/// Bytes of randomness in each secret (RFC 7636 recommends 32 for the verifier).
const RANDOM_BYTES: usize = 32;

/// The secrets of one login attempt.
pub struct LoginSecrets {
    pub state: String,
    pub nonce: String,
    pub code_verifier: String,
    pub code_challenge: String,
}

impl std::fmt::Debug for LoginSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginSecrets { <redacted> }")
    }
}

/// The OS random number generator failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the operating system's random number generator failed")]
pub struct RandomError;

impl LoginSecrets {
    pub fn generate() -> Result<LoginSecrets, RandomError> {
        let rng = ring::rand::SystemRandom::new();
        let code_verifier = random_token(&rng)?;
        Ok(LoginSecrets {
            state: random_token(&rng)?,
            nonce: random_token(&rng)?,
            code_challenge: pkce_challenge(&code_verifier),
            code_verifier,
        })
    }
}

/// 256 random bits, base64url without padding (43 characters).
pub fn random_token(rng: &dyn SecureRandom) -> Result<String, RandomError> {
    let mut bytes = [0u8; RANDOM_BYTES];
    rng.fill(&mut bytes).map_err(|_| RandomError)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// `BASE64URL(SHA256(verifier))`, the S256 code challenge.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
}

/// Compares secrets without an early exit on the first difference.
pub fn secrets_equal(left: &str, right: &str) -> bool {
    left.len() == right.len() && left.bytes().zip(right.bytes()).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn the_s256_challenge_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn secrets_are_long_random_and_distinct() {
        let mut seen = HashSet::new();
        for _ in 0..50 {
            let secrets = LoginSecrets::generate().unwrap();
            for secret in [&secrets.state, &secrets.nonce, &secrets.code_verifier] {
                // 43 base64url characters = 256 bits (at least 128 required).
                assert_eq!(secret.len(), 43);
                assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
                assert!(seen.insert(secret.clone()), "a secret repeated");
            }
            assert_eq!(secrets.code_challenge, pkce_challenge(&secrets.code_verifier));
            assert!(!format!("{secrets:?}").contains(&secrets.state));
        }
        // Decoding gives back 32 bytes, and the bits are not stuck.
        let decoded = URL_SAFE_NO_PAD.decode(random_token(&ring::rand::SystemRandom::new()).unwrap()).unwrap();
        assert_eq!(decoded.len(), 32);
        let ones: u32 = (0..64)
            .map(|_| URL_SAFE_NO_PAD.decode(random_token(&ring::rand::SystemRandom::new()).unwrap()).unwrap())
            .flat_map(|bytes| bytes.into_iter())
            .map(u8::count_ones)
            .sum();
        // 16384 bits; a fair source gives 8192 ± a few hundred.
        assert!((7600..8800).contains(&ones), "{ones}");
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
        assert!(!secrets_equal("", "a"));
    }
}
