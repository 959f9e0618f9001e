//! RS256 JWTs as OpenUnison signs them: header `{"kid":…,"alg":"RS256"}`,
//! signed with a fixed test-only RSA-2048 key (ring cannot generate RSA keys,
//! so the keys are fixtures), the JWKS that publishes it, and verification for
//! the fake servers' own checks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, KeyPair, RsaKeyPair, RsaPublicKeyComponents};
use serde_json::{Value, json};

/// The key OpenUnison's `unison-saml2-rp-sig` stands for. Test-only.
const SIGNING_KEY_PKCS8: &[u8] = include_bytes!("../fixtures/jwt-signing-key.pk8");
/// A second, unpublished key, for "bad signature" faults. Test-only.
const OTHER_KEY_PKCS8: &[u8] = include_bytes!("../fixtures/jwt-other-key.pk8");

/// The published key's id, shaped like OpenUnison's `<subject>-<issuer>-<serial>`.
pub const KID: &str = "CN=unison-saml2-rp-sig-CN=ca-1234-1734545842";

pub struct Signer {
    key: RsaKeyPair,
    kid: String,
}

impl Signer {
    /// The key published in the JWKS.
    pub fn published() -> Signer {
        Signer { key: RsaKeyPair::from_pkcs8(SIGNING_KEY_PKCS8).expect("fixture key parses"), kid: KID.to_string() }
    }

    /// A key the JWKS does not contain, presented under the published `kid`.
    pub fn impostor() -> Signer {
        Signer { key: RsaKeyPair::from_pkcs8(OTHER_KEY_PKCS8).expect("fixture key parses"), kid: KID.to_string() }
    }

    /// The published key under a `kid` the JWKS does not list.
    pub fn unknown_kid() -> Signer {
        Signer { kid: "CN=some-other-key-CN=ca-1234-99".to_string(), ..Signer::published() }
    }

    /// `header.payload.signature`, RS256.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"kid": self.kid, "alg": "RS256"});
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(claims));
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing");
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn public_components(&self) -> RsaPublicKeyComponents<Vec<u8>> {
        RsaPublicKeyComponents::<Vec<u8>>::from(self.key.public_key())
    }

    /// The JWKS document (`/certs`) with this one key.
    pub fn jwks(&self) -> Value {
        let public = self.public_components();
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "alg": "RS256",
            "e": URL_SAFE_NO_PAD.encode(trim_leading_zeros(&public.e)),
            "n": URL_SAFE_NO_PAD.encode(trim_leading_zeros(&public.n)),
        }]})
    }

    /// Verifies an RS256 JWT made by this key (and `kid`); returns its claims.
    /// Says why it refused, for the fakes' logs; never includes the token.
    pub fn verify(&self, token: &str) -> Result<Value, String> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("not a JWT".into());
        };
        let header = decode_json(header).ok_or("header is not base64url JSON")?;
        if header["alg"] != "RS256" {
            return Err(format!("alg {} is not RS256", header["alg"]));
        }
        if header["kid"] != self.kid.as_str() {
            return Err("unknown kid".into());
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| "signature is not base64url")?;
        let signing_input = &token[..header_and_payload_len(token)];
        self.public_components()
            .verify(&signature::RSA_PKCS1_2048_8192_SHA256, signing_input.as_bytes(), &signature)
            .map_err(|_| "bad signature")?;
        decode_json(payload).ok_or_else(|| "payload is not base64url JSON".into())
    }
}

fn header_and_payload_len(token: &str) -> usize {
    token.rfind('.').unwrap_or(token.len())
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&byte| byte != 0).unwrap_or(bytes.len().saturating_sub(1));
    &bytes[first..]
}

pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("JSON serialises"))
}

fn decode_json(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// The claims of a JWT without checking anything (for tests that inspect tokens).
pub fn claims_unverified(token: &str) -> Option<Value> {
    decode_json(token.split('.').nth(1)?)
}

/// An unsigned token (`alg: none`), as a hostile server might send.
pub fn unsigned(claims: &Value) -> String {
    format!("{}.{}.", b64_json(&json!({"alg": "none", "typ": "JWT"})), b64_json(claims))
}

/// Checks `iss`, that `aud` (string or array) contains `audience`, `exp` in
/// the future and `nbf` not in the future.
pub fn check_claims(claims: &Value, issuer: &str, audience: &str, now: i64) -> Result<(), String> {
    if claims["iss"] != issuer {
        return Err(format!("iss {} is not {issuer}", claims["iss"]));
    }
    let audience_ok = match &claims["aud"] {
        Value::String(aud) => aud == audience,
        Value::Array(auds) => auds.iter().any(|aud| aud == audience),
        _ => false,
    };
    if !audience_ok {
        return Err(format!("aud {} does not contain {audience}", claims["aud"]));
    }
    match claims["exp"].as_i64() {
        Some(exp) if exp > now => {}
        _ => return Err("expired".into()),
    }
    if claims["nbf"].as_i64().is_some_and(|nbf| nbf > now) {
        return Err("not yet valid".into());
    }
    Ok(())
}
