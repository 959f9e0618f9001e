//! JWTs: reading a token's `exp`/`iat` without verifying it (what client-go
//! does with the id_tokens it caches), and verifying the `cli-local` id_token
//! of a login: RS256 only, key by `kid` from the issuer's JWKS, `iss`, `aud`,
//! `exp` and `nonce`. No JWT crate: base64url, serde_json and ring's RSA
//! verification are all it takes, and nothing here can panic on input.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde_json::{Map, Value};

use crate::error::Hint;

/// Clock skew tolerated on `exp` and `nbf`, beyond the estimate of the server's clock.
pub const LEEWAY_SECS: i64 = 30;

/// base64url, padding optional (some encoders add it).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_encode_padding(false).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// A token's lifetime as its claims state it (unverified).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimes {
    /// `exp`, Unix seconds.
    pub exp: i64,
    /// `iat`, Unix seconds, when present.
    pub iat: Option<i64>,
}

/// The verified claims of a `cli-local` id_token that the login uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub sub: Option<String>,
    pub preferred_username: Option<String>,
    pub exp: i64,
    pub iat: Option<i64>,
}

/// A JSON Web Key Set, as served at the issuer's `jwks_uri`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One key of a [`Jwks`]; only RSA signing keys are ever used.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Jwk {
    #[serde(default)]
    pub kty: String,
    #[serde(default)]
    pub kid: Option<String>,
    #[serde(default)]
    pub alg: Option<String>,
    #[serde(default, rename = "use")]
    pub usage: Option<String>,
    #[serde(default)]
    pub n: Option<String>,
    #[serde(default)]
    pub e: Option<String>,
}

/// Why a token is unreadable or fails verification. Verification errors name
/// the issuer; no variant ever holds the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// [`read_times`]: the token is not a JWT with an `exp`.
    #[error("the token is not a readable JWT: {why}")]
    Unreadable { why: &'static str },
    /// The id_token is not a well-formed JWT.
    #[error("the id_token from `{issuer}` is not a valid JWT: {why}")]
    Malformed { issuer: String, why: String },
    /// Signed with anything but RS256 (`none` and HS256 included).
    #[error("the id_token from `{issuer}` is signed with `{alg}`; only RS256 is accepted")]
    UnsupportedAlgorithm { issuer: String, alg: String },
    /// The JWKS has no key with the token's `kid`.
    #[error("the id_token from `{issuer}` names signing key `{kid}`, which the issuer's JWKS does not have")]
    UnknownKey { issuer: String, kid: String },
    /// The JWKS key is not a usable RS256 key.
    #[error("the signing key `{kid}` of `{issuer}` is unusable: {why}")]
    BadKey { issuer: String, kid: String, why: String },
    /// The signature does not verify.
    #[error("the id_token from `{issuer}` has an invalid signature")]
    BadSignature { issuer: String },
    /// `iss` is not the expected issuer.
    #[error("the id_token from `{issuer}` says it was issued by `{found}`")]
    WrongIssuer { issuer: String, found: String },
    /// `aud` does not contain the expected audience.
    #[error("the id_token from `{issuer}` is not meant for `{audience}`")]
    WrongAudience { issuer: String, audience: String },
    /// `exp` has passed (or `nbf` has not come).
    #[error("the id_token from `{issuer}` {why}")]
    Expired { issuer: String, why: String },
    /// `nonce` is not the one this login sent.
    #[error("the id_token from `{issuer}` does not carry this login's nonce")]
    WrongNonce { issuer: String },
}

impl Hint for JwtError {
    fn hint(&self) -> Option<String> {
        match self {
            JwtError::Expired { .. } => Some("check that this computer's clock is right".to_string()),
            JwtError::WrongNonce { .. } | JwtError::BadSignature { .. } => {
                Some("log in again; if it happens again, the answer did not come from your OpenUnison".to_string())
            }
            JwtError::UnknownKey { .. } => {
                Some("OpenUnison may have just changed its signing key; log in again".to_string())
            }
            JwtError::Malformed { .. }
            | JwtError::UnsupportedAlgorithm { .. }
            | JwtError::BadKey { .. }
            | JwtError::WrongIssuer { .. }
            | JwtError::WrongAudience { .. } => Some(
                "the token cannot be trusted, so the login stops here; check that `--host` names your OpenUnison"
                    .to_string(),
            ),
            JwtError::Unreadable { .. } => None,
        }
    }
}

/// Reads `exp` and `iat` from a JWT's payload without verifying anything.
pub fn read_times(token: &str) -> Result<TokenTimes, JwtError> {
    let unreadable = |why| JwtError::Unreadable { why };
    let mut parts = token.split('.');
    let (Some(_header), Some(payload)) = (parts.next(), parts.next()) else {
        return Err(unreadable("it has no `.`-separated payload"));
    };
    let bytes = BASE64URL.decode(payload).map_err(|_| unreadable("its payload is not base64url"))?;
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(unreadable("its payload is not a JSON object"));
    };
    let exp = claims.get("exp").ok_or(unreadable("it has no `exp`"))?;
    let exp = seconds(exp).ok_or(unreadable("its `exp` is not a number"))?;
    let iat = claims.get("iat").and_then(seconds);
    Ok(TokenTimes { exp, iat })
}

/// The last second an RFC 3339 timestamp (and so an ExecCredential's
/// `expirationTimestamp`) can show: 9999-12-31T23:59:59Z.
pub const LATEST_SECONDS: i64 = 253_402_300_799;

/// A NumericDate as whole seconds (fractions dropped), clamped to what a
/// timestamp can show (the epoch to the end of year 9999), so that no
/// arithmetic on a server's absurd value can overflow.
fn seconds(value: &Value) -> Option<i64> {
    let number = value.as_number()?;
    let whole = number.as_i64().or_else(|| number.as_f64().map(|float| float.floor() as i64))?;
    Some(whole.clamp(0, LATEST_SECONDS))
}

/// Verifies a `cli-local` id_token at `now`: the server's clock as its
/// answer showed it, in Unix seconds (see `clock`), so that a local clock
/// minutes off does not fail a good login.
pub fn verify_at(
    token: &str,
    jwks: &Jwks,
    issuer: &str,
    audience: &str,
    nonce: &str,
    now: i64,
) -> Result<Claims, JwtError> {
    let malformed = |why: &str| JwtError::Malformed { issuer: issuer.to_string(), why: why.to_string() };
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, payload_b64, signature_b64] = parts[..] else {
        return Err(malformed("it does not have three `.`-separated parts"));
    };
    let header = decode_object(header_b64).ok_or_else(|| malformed("its header is not base64url JSON"))?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("(none)");
    if alg != "RS256" {
        return Err(JwtError::UnsupportedAlgorithm { issuer: issuer.to_string(), alg: alg.to_string() });
    }
    if header.contains_key("crit") {
        return Err(malformed("its header has `crit` extensions"));
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.as_str()),
        Some(_) => return Err(malformed("its `kid` is not a string")),
    };
    let key = find_key(jwks, kid, issuer)?;
    let signature = BASE64URL.decode(signature_b64).map_err(|_| malformed("its signature is not base64url"))?;
    let signed = &token.as_bytes()[..header_b64.len() + 1 + payload_b64.len()];
    verify_rs256(key, signed, &signature, issuer)?;

    let claims = decode_object(payload_b64).ok_or_else(|| malformed("its payload is not base64url JSON"))?;
    check_claims(&claims, issuer, audience, nonce, now)
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    match serde_json::from_slice(&BASE64URL.decode(part).ok()?).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// The RSA signing key for `kid`; without a `kid`, the only RSA signing key.
fn find_key<'a>(jwks: &'a Jwks, kid: Option<&str>, issuer: &str) -> Result<&'a Jwk, JwtError> {
    let signing = |key: &&Jwk| key.kty == "RSA" && key.usage.as_deref().is_none_or(|usage| usage == "sig");
    match kid {
        Some(kid) => jwks
            .keys
            .iter()
            .filter(signing)
            .find(|key| key.kid.as_deref() == Some(kid))
            .ok_or_else(|| JwtError::UnknownKey { issuer: issuer.to_string(), kid: kid.to_string() }),
        None => {
            let mut candidates = jwks.keys.iter().filter(signing);
            match (candidates.next(), candidates.next()) {
                (Some(key), None) => Ok(key),
                _ => Err(JwtError::UnknownKey { issuer: issuer.to_string(), kid: "(none)".to_string() }),
            }
        }
    }
}

fn verify_rs256(key: &Jwk, signed: &[u8], signature: &[u8], issuer: &str) -> Result<(), JwtError> {
    let bad_key = |why: &str| JwtError::BadKey {
        issuer: issuer.to_string(),
        kid: key.kid.clone().unwrap_or_else(|| "(none)".to_string()),
        why: why.to_string(),
    };
    if key.alg.as_deref().is_some_and(|alg| alg != "RS256") {
        return Err(bad_key("it is not an RS256 key"));
    }
    let component = |value: &Option<String>, name: &str| -> Result<Vec<u8>, JwtError> {
        let bytes = value
            .as_deref()
            .and_then(|text| BASE64URL.decode(text).ok())
            .ok_or_else(|| bad_key(&format!("its `{name}` is missing or not base64url")))?;
        // ring wants minimal big-endian integers.
        let first = bytes.iter().position(|&byte| byte != 0).unwrap_or(bytes.len());
        Ok(bytes[first..].to_vec())
    };
    let public_key = ring::signature::RsaPublicKeyComponents { n: component(&key.n, "n")?, e: component(&key.e, "e")? };
    public_key
        .verify(&ring::signature::RSA_PKCS1_2048_8192_SHA256, signed, signature)
        .map_err(|_| JwtError::BadSignature { issuer: issuer.to_string() })
}

fn check_claims(
    claims: &Map<String, Value>,
    issuer: &str,
    audience: &str,
    nonce: &str,
    now: i64,
) -> Result<Claims, JwtError> {
    let owned_issuer = || issuer.to_string();
    match claims.get("iss") {
        Some(Value::String(found)) if found == issuer => {}
        found => {
            let found = match found {
                Some(Value::String(text)) => text.clone(),
                Some(other) => other.to_string(),
                None => "(nobody)".to_string(),
            };
            return Err(JwtError::WrongIssuer { issuer: owned_issuer(), found });
        }
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == audience,
        Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(JwtError::WrongAudience { issuer: owned_issuer(), audience: audience.to_string() });
    }
    let Some(exp) = claims.get("exp").and_then(seconds) else {
        return Err(JwtError::Malformed { issuer: owned_issuer(), why: "it has no numeric `exp`".to_string() });
    };
    if now > exp.saturating_add(LEEWAY_SECS) {
        return Err(JwtError::Expired { issuer: owned_issuer(), why: format!("expired {} s ago", now - exp) });
    }
    if let Some(nbf) = claims.get("nbf").and_then(seconds)
        && nbf > now.saturating_add(LEEWAY_SECS)
    {
        return Err(JwtError::Expired {
            issuer: owned_issuer(),
            why: format!("is not valid for another {} s", nbf - now),
        });
    }
    if claims.get("nonce").and_then(Value::as_str) != Some(nonce) {
        return Err(JwtError::WrongNonce { issuer: owned_issuer() });
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_string);
    Ok(Claims {
        sub: text("sub"),
        preferred_username: text("preferred_username"),
        exp,
        iat: claims.get("iat").and_then(seconds),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;
    use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use serde_json::json;

    use super::*;

    const ISSUER: &str = "https://ou.example.com/auth/idp/k8s-login-cli";
    const NOW: i64 = 1_800_000_000;

    /// A test signing key with its JWK.
    pub(crate) struct TestKey {
        pair: RsaKeyPair,
        pub(crate) kid: String,
    }

    impl TestKey {
        pub(crate) fn a() -> TestKey {
            TestKey::load(include_bytes!("testdata/test-rsa-a.pk8.der"), "CN=a-CN=ca-1")
        }

        pub(crate) fn b() -> TestKey {
            TestKey::load(include_bytes!("testdata/test-rsa-b.pk8.der"), "CN=b-CN=ca-2")
        }

        fn load(der: &[u8], kid: &str) -> TestKey {
            TestKey { pair: RsaKeyPair::from_pkcs8(der).unwrap(), kid: kid.to_string() }
        }

        pub(crate) fn jwk(&self) -> Value {
            let public = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public());
            json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid,
                   "n": BASE64URL.encode(&public.n), "e": BASE64URL.encode(&public.e)})
        }

        pub(crate) fn jwks(&self) -> Jwks {
            serde_json::from_value(json!({ "keys": [self.jwk()] })).unwrap()
        }

        /// Signs `claims` under `header`.
        pub(crate) fn sign(&self, header: &Value, claims: &Value) -> String {
            let signed = format!("{}.{}", BASE64URL.encode(header.to_string()), BASE64URL.encode(claims.to_string()));
            let mut signature = vec![0; self.pair.public().modulus_len()];
            self.pair
                .sign(&RSA_PKCS1_SHA256, &ring::rand::SystemRandom::new(), signed.as_bytes(), &mut signature)
                .unwrap();
            format!("{signed}.{}", BASE64URL.encode(signature))
        }

        pub(crate) fn id_token(&self, claims: &Value) -> String {
            self.sign(&json!({"alg": "RS256", "kid": self.kid}), claims)
        }
    }

    fn claims() -> Value {
        json!({"iss": ISSUER, "aud": "cli-local", "exp": NOW + 60, "iat": NOW, "nbf": NOW - 120,
               "sub": "jdoe", "preferred_username": "jdoe", "nonce": "N1"})
    }

    fn with(change: impl FnOnce(&mut Map<String, Value>)) -> Value {
        let mut value = claims();
        change(value.as_object_mut().unwrap());
        value
    }

    fn check(token: &str, jwks: &Jwks) -> Result<Claims, JwtError> {
        verify_at(token, jwks, ISSUER, "cli-local", "N1", NOW)
    }

    #[test]
    fn a_good_token_verifies() {
        let key = TestKey::a();
        let claims = check(&key.id_token(&claims()), &key.jwks()).unwrap();
        assert_eq!(claims.sub.as_deref(), Some("jdoe"));
        assert_eq!(claims.exp, NOW + 60);
        assert_eq!(claims.iat, Some(NOW));
        // `aud` as an array, and a JWKS with several keys.
        let mut jwks = TestKey::b().jwks();
        jwks.keys.extend(key.jwks().keys);
        let token = key.id_token(&with(|c| drop(c.insert("aud".into(), json!(["other", "cli-local"])))));
        check(&token, &jwks).unwrap();
    }

    #[test]
    fn only_rs256_is_accepted() {
        let key = TestKey::a();
        for alg in ["none", "HS256", "RS512", "PS256", "ES256"] {
            let token = key.sign(&json!({"alg": alg, "kid": key.kid}), &claims());
            let err = check(&token, &key.jwks()).unwrap_err();
            assert!(matches!(&err, JwtError::UnsupportedAlgorithm { alg: found, .. } if found == alg), "{err:?}");
            assert!(err.to_string().contains(ISSUER));
        }
        // An unsigned token with an empty signature.
        let unsigned = format!(
            "{}.{}.",
            BASE64URL.encode(json!({"alg": "none"}).to_string()),
            BASE64URL.encode(claims().to_string())
        );
        assert!(matches!(check(&unsigned, &key.jwks()), Err(JwtError::UnsupportedAlgorithm { .. })));
        let no_alg = key.sign(&json!({"kid": key.kid}), &claims());
        assert!(matches!(check(&no_alg, &key.jwks()), Err(JwtError::UnsupportedAlgorithm { .. })));
    }

    #[test]
    fn keys_are_found_by_kid() {
        let key = TestKey::a();
        let token = key.sign(&json!({"alg": "RS256", "kid": "someone-else"}), &claims());
        assert!(matches!(check(&token, &key.jwks()), Err(JwtError::UnknownKey { kid, .. }) if kid == "someone-else"));
        // Without a kid, the only key is used; with two keys, there is no telling.
        let no_kid = key.sign(&json!({"alg": "RS256"}), &claims());
        check(&no_kid, &key.jwks()).unwrap();
        let mut two = key.jwks();
        two.keys.extend(TestKey::b().jwks().keys);
        assert!(matches!(check(&no_kid, &two), Err(JwtError::UnknownKey { .. })));
        // An encryption key is never a signing key.
        let mut encryption = key.jwks();
        encryption.keys[0].usage = Some("enc".to_string());
        assert!(matches!(check(&key.id_token(&claims()), &encryption), Err(JwtError::UnknownKey { .. })));
    }

    #[test]
    fn a_signature_by_another_key_is_refused() {
        let (a, b) = (TestKey::a(), TestKey::b());
        // b signs, claiming a's kid.
        let forged = b.sign(&json!({"alg": "RS256", "kid": a.kid}), &claims());
        assert!(matches!(check(&forged, &a.jwks()), Err(JwtError::BadSignature { .. })));
        // A tampered payload.
        let token = a.id_token(&claims());
        let parts: Vec<&str> = token.split('.').collect();
        let tampered = format!(
            "{}.{}.{}",
            parts[0],
            BASE64URL.encode(with(|c| drop(c.insert("sub".into(), json!("root")))).to_string()),
            parts[2]
        );
        assert!(matches!(check(&tampered, &a.jwks()), Err(JwtError::BadSignature { .. })));
    }

    #[test]
    fn claims_are_checked() {
        let key = TestKey::a();
        let jwks = key.jwks();
        let refused = |claims: Value| check(&key.id_token(&claims), &jwks).unwrap_err();
        assert!(
            matches!(refused(with(|c| drop(c.insert("iss".into(), json!("https://evil/auth/idp/k8s-login-cli"))))),
            JwtError::WrongIssuer { found, .. } if found == "https://evil/auth/idp/k8s-login-cli")
        );
        assert!(matches!(
            refused(with(|c| drop(c.insert("iss".into(), json!(format!("{ISSUER}/")))))),
            JwtError::WrongIssuer { .. }
        ));
        assert!(matches!(refused(with(|c| drop(c.remove("iss")))), JwtError::WrongIssuer { .. }));
        assert!(matches!(
            refused(with(|c| drop(c.insert("aud".into(), json!("kubernetes"))))),
            JwtError::WrongAudience { .. }
        ));
        assert!(matches!(
            refused(with(|c| drop(c.insert("aud".into(), json!(["kubernetes"]))))),
            JwtError::WrongAudience { .. }
        ));
        assert!(matches!(refused(with(|c| drop(c.remove("aud")))), JwtError::WrongAudience { .. }));
        assert!(matches!(
            refused(with(|c| drop(c.insert("exp".into(), json!(NOW - LEEWAY_SECS - 1))))),
            JwtError::Expired { .. }
        ));
        assert!(matches!(refused(with(|c| drop(c.remove("exp")))), JwtError::Malformed { .. }));
        assert!(matches!(refused(with(|c| drop(c.insert("nbf".into(), json!(NOW + 600))))), JwtError::Expired { .. }));
        assert!(matches!(refused(with(|c| drop(c.insert("nonce".into(), json!("N2"))))), JwtError::WrongNonce { .. }));
        assert!(matches!(refused(with(|c| drop(c.remove("nonce")))), JwtError::WrongNonce { .. }));
        // Within the leeway, an expired token is still accepted.
        check(&key.id_token(&with(|c| drop(c.insert("exp".into(), json!(NOW - 5))))), &jwks).unwrap();
        for err in [refused(with(|c| drop(c.remove("nonce")))), refused(with(|c| drop(c.remove("aud"))))] {
            assert!(err.to_string().contains(ISSUER), "{err}");
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let jwks = TestKey::a().jwks();
        for token in ["", "abc", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.e30"] {
            let err = check(token, &jwks).unwrap_err();
            assert!(err.to_string().contains(ISSUER), "{err}");
        }
    }

    #[test]
    fn times_are_read_without_verification() {
        let key = TestKey::a();
        assert_eq!(read_times(&key.id_token(&claims())).unwrap(), TokenTimes { exp: NOW + 60, iat: Some(NOW) });
        let token = format!("x.{}.y", BASE64URL.encode(r#"{"exp":1700000000.7}"#));
        assert_eq!(read_times(&token).unwrap(), TokenTimes { exp: 1_700_000_000, iat: None });
        // client-go needs only two parts.
        let token = format!("x.{}", BASE64URL.encode(r#"{"exp":5,"iat":"soon"}"#));
        assert_eq!(read_times(&token).unwrap(), TokenTimes { exp: 5, iat: None });
        assert!(read_times("").is_err());
        assert!(read_times("opaque-refresh-token").is_err());
        assert!(read_times(&format!("x.{}.y", BASE64URL.encode("{}"))).is_err());
        assert!(read_times(&format!("x.{}.y", BASE64URL.encode(r#"{"exp":"tomorrow"}"#))).is_err());
        assert!(read_times(&format!("x.{}.y", BASE64URL.encode("[1]"))).is_err());
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::vec(
                    (prop_oneof![Just("exp".to_string()), Just("iat".to_string()), ".{0,4}"], inner),
                    0..4
                )
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn read_times_clamps_any_number_to_a_showable_time(exp in any::<i64>(), iat in any::<f64>()) {
            let payload = serde_json::json!({"exp": exp, "iat": iat});
            let times = read_times(&format!("x.{}.y", BASE64URL.encode(payload.to_string()))).unwrap();
            prop_assert!((0..=LATEST_SECONDS).contains(&times.exp));
            prop_assert!(times.iat.is_none_or(|iat| (0..=LATEST_SECONDS).contains(&iat)));
        }

        #[test]
        fn read_times_never_panics_on_text(token in ".{0,200}") {
            let _ = read_times(&token);
        }

        #[test]
        fn read_times_never_panics_on_json_payloads(payload in json_value(), header in ".{0,8}") {
            let token = format!("{header}.{}.sig", BASE64URL.encode(payload.to_string()));
            if let Ok(times) = read_times(&token) {
                prop_assert!(payload.get("exp").is_some());
                let _ = times;
            }
        }

        #[test]
        fn verify_never_panics(token in "[A-Za-z0-9_.=-]{0,120}", header in json_value(), payload in json_value()) {
            let jwks = TestKey::a().jwks();
            let _ = verify_at(&token, &jwks, ISSUER, "cli-local", "N1", NOW);
            let built = format!("{}.{}.c2ln", BASE64URL.encode(header.to_string()), BASE64URL.encode(payload.to_string()));
            let _ = verify_at(&built, &jwks, ISSUER, "cli-local", "N1", NOW);
        }
    }
}
