//! The server side of a browser login against OpenUnison's `cli-local` client
//! (docs/openunison.md, sections 1 to 4): the URLs involved, the code
//! exchange at the `k8s-login-cli` token endpoint, the issuer's JWKS (through
//! its discovery document), verification of the `cli-local` id_token, and the
//! `/k8slogin/token/user` call that mints a new k8sIdp session.

use super::bootstrap::{Bootstrap, BootstrapError};
use super::client::{Http, HttpError};
use super::clock::Receipt;
use super::jwt::{self, Jwks};
use super::{Host, OpenUnisonError};

/// OpenUnison's public client for the CLI login.
pub const CLI_CLIENT_ID: &str = "cli-local";

/// `https://H/cli-login`: logs the browser in, then bounces it to
/// `http://127.0.0.1:8400/`.
pub fn cli_login_url(host: &Host) -> String {
    format!("{}/cli-login", host.base_url())
}

/// Where the browser ends up after a successful login.
pub fn finished_url(host: &Host) -> String {
    format!("{}/auth/forms/cli-login-finished.jsp", host.base_url())
}

/// `https://H/k8slogin/token/user`.
pub fn bootstrap_url(host: &Host) -> String {
    format!("{}/k8slogin/token/user", host.base_url())
}

/// The authorization request: code flow with `state`, `nonce` and PKCE S256.
pub fn authorization_url(host: &Host, redirect_uri: &str, state: &str, nonce: &str, code_challenge: &str) -> String {
    let pairs = [
        ("response_type", "code"),
        ("client_id", CLI_CLIENT_ID),
        ("redirect_uri", redirect_uri),
        // OpenUnison insists that the first scope is `openid`.
        ("scope", "openid profile email"),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", code_challenge),
        ("code_challenge_method", "S256"),
    ];
    let query: Vec<String> = pairs.iter().map(|(name, value)| format!("{name}={}", percent_encode(value))).collect();
    format!("{}/auth?{}", host.cli_issuer(), query.join("&"))
}

/// Percent-encodes everything but RFC 3986's unreserved characters (so a space
/// is `%20`, never `+`).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => out.push(char::from(byte)),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Exchanges the authorization code for the `cli-local` id_token, with when
/// the answer came and the server's clock then.
pub async fn exchange_code(
    http: &Http,
    host: &Host,
    code: &str,
    code_verifier: &str,
    redirect_uri: &str,
) -> Result<(String, Receipt), OpenUnisonError> {
    let url = format!("{}/token", host.cli_issuer());
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", CLI_CLIENT_ID),
        ("redirect_uri", redirect_uri),
        ("code_verifier", code_verifier),
    ];
    let response = http.post_form(&url, &form).await?;
    if matches!(response.status.as_u16(), 400 | 401 | 403) {
        return Err(OpenUnisonError::CodeRejected { url, status: response.status.as_u16() });
    }
    let receipt = response.receipt;
    let answer = response.success()?.json_object()?;
    match answer.get("id_token").and_then(serde_json::Value::as_str) {
        Some(id_token) if !id_token.is_empty() => Ok((id_token.to_string(), receipt)),
        _ => Err(OpenUnisonError::BadAnswer { url, why: "it has no `id_token`".to_string() }),
    }
}

/// What the login takes from the `cli-local` issuer's discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discovery {
    /// Where the issuer's signing keys are.
    pub jwks_uri: String,
}

/// `https://H/auth/idp/k8s-login-cli/.well-known/openid-configuration`.
pub fn discovery_url(host: &Host) -> String {
    format!("{}/.well-known/openid-configuration", host.cli_issuer())
}

/// The `cli-local` issuer's discovery document. Fetched before a browser
/// opens, it also shows that the host answers with the trust (and proxy)
/// settings given.
pub async fn fetch_discovery(http: &Http, host: &Host) -> Result<Discovery, OpenUnisonError> {
    let discovery_url = discovery_url(host);
    let discovery = match http.get(&discovery_url, None).await?.success() {
        // OpenUnison serves discovery, but a server without it still has its
        // keys where OpenUnison keeps them.
        Err(HttpError::Status { status, .. }) if status == reqwest::StatusCode::NOT_FOUND => {
            return Ok(Discovery { jwks_uri: format!("{}/certs", host.cli_issuer()) });
        }
        answer => answer?.json_object()?,
    };
    let jwks_uri = discovery
        .get("jwks_uri")
        .and_then(serde_json::Value::as_str)
        .filter(|uri| super::server_url(uri).is_ok())
        .ok_or_else(|| OpenUnisonError::BadAnswer {
            url: discovery_url.clone(),
            why: "it has no https `jwks_uri`".to_string(),
        })?
        .to_string();
    Ok(Discovery { jwks_uri })
}

/// The `cli-local` issuer's signing keys, from `jwks_uri` in its discovery document.
pub async fn fetch_jwks(http: &Http, discovery: &Discovery) -> Result<Jwks, OpenUnisonError> {
    let jwks_uri = &discovery.jwks_uri;
    let keys = http.get(jwks_uri, None).await?.success()?.json_object()?;
    serde_json::from_value::<Jwks>(serde_json::Value::Object(keys))
        .map_err(|_| OpenUnisonError::BadAnswer { url: jwks_uri.clone(), why: "it is not a JWK set".to_string() })
}

/// `GET /k8slogin/token/user` with the verified `cli-local` id_token (whose
/// issuer is `host`'s). OpenUnison answers 401 when that issuer is not exactly
/// `https://<its configured host>/auth/idp/k8s-login-cli`.
pub async fn fetch_bootstrap(http: &Http, host: &Host, id_token: &str) -> Result<Bootstrap, BootstrapError> {
    let url = bootstrap_url(host);
    let response = http.get(&url, Some(id_token)).await.map_err(BootstrapError::Http)?;
    if response.status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(BootstrapError::TokenRefused { url, issuer: host.cli_issuer() });
    }
    Bootstrap::from_response(response)
}

/// Everything after the browser came back with a code: exchange it, verify
/// the id_token (JWKS signature, `iss`, `aud`, `exp`, `nonce`; the keys from
/// the `discovery` fetched before the browser opened), and fetch the
/// bootstrap that mints the new session.
pub async fn complete_login(
    http: &Http,
    host: &Host,
    discovery: &Discovery,
    code: &str,
    code_verifier: &str,
    redirect_uri: &str,
    nonce: &str,
) -> Result<Bootstrap, OpenUnisonError> {
    let (id_token, receipt) = exchange_code(http, host, code, code_verifier, redirect_uri).await?;
    let jwks = fetch_jwks(http, discovery).await?;
    // `exp` and `nbf` are OpenUnison's times: judge them by its clock, which
    // may be minutes from ours.
    let server_now = receipt.server_secs_at(std::time::SystemTime::now());
    jwt::verify_at(&id_token, &jwks, &host.cli_issuer(), CLI_CLIENT_ID, nonce, server_now)?;
    Ok(fetch_bootstrap(http, host, &id_token).await?)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::json;

    use super::*;
    use crate::openunison::jwt::tests::TestKey;
    use crate::openunison::testing::{Reply, Seen, TestServer, self_signed, trust};

    #[test]
    fn the_authorization_url_is_what_openunison_expects() {
        let host = Host::parse("ou.example.com:8443").unwrap();
        let url = authorization_url(&host, "http://127.0.0.1:8400/redirect", "S", "N", "C");
        assert_eq!(
            url,
            "https://ou.example.com:8443/auth/idp/k8s-login-cli/auth?response_type=code&client_id=cli-local\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8400%2Fredirect&scope=openid%20profile%20email&state=S&nonce=N\
             &code_challenge=C&code_challenge_method=S256"
        );
        assert_eq!(cli_login_url(&host), "https://ou.example.com:8443/cli-login");
        assert_eq!(finished_url(&host), "https://ou.example.com:8443/auth/forms/cli-login-finished.jsp");
    }

    /// A fake `cli-local` issuer: token endpoint, discovery, JWKS, bootstrap.
    fn fake(token_reply: Reply, id_token: impl Fn(&str) -> String + Send + Sync + 'static) -> (TestServer, Host, Http) {
        let cert = self_signed(&["127.0.0.1"]);
        let port = Arc::new(Mutex::new(0u16));
        let port_seen = port.clone();
        let key = TestKey::a();
        let jwks = json!({"keys": [key.jwk()]}).to_string();
        let server = TestServer::start(
            &cert,
            Arc::new(move |seen: &Seen| {
                let base = format!("https://127.0.0.1:{}", port_seen.lock().unwrap());
                match (seen.method.as_str(), seen.path.as_str()) {
                    ("POST", "/auth/idp/k8s-login-cli/token") => match &token_reply {
                        Reply::Full { status: 200, .. } => {
                            Reply::json(200, json!({"id_token": id_token(&base), "token_type": "Bearer"}).to_string())
                        }
                        other => other.clone(),
                    },
                    ("GET", "/auth/idp/k8s-login-cli/.well-known/openid-configuration") => Reply::json(
                        200,
                        json!({"issuer": format!("{base}/auth/idp/k8s-login-cli"),
                               "jwks_uri": format!("{base}/auth/idp/k8s-login-cli/certs")})
                        .to_string(),
                    ),
                    ("GET", "/auth/idp/k8s-login-cli/certs") => Reply::json(200, jwks.clone()),
                    ("GET", "/k8slogin/token/user") => Reply::json(
                        200,
                        json!({"displayName": "jdoe", "token": {"kubectl Command": "kubernetes",
                            "kubectl Windows Command": "https://api.example.com:6443",
                            "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE4MDAwMDAwNjB9.c2ln", "refresh_token": "rt"}})
                        .to_string(),
                    ),
                    _ => Reply::html(404, "nope"),
                }
            }),
        );
        *port.lock().unwrap() = server.addr.port();
        let host = Host::parse(&format!("127.0.0.1:{}", server.addr.port())).unwrap();
        let http = Http::new(&trust(&cert)).unwrap();
        (server, host, http)
    }

    fn good_token(base: &str, nonce: &str) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        TestKey::a().id_token(&json!({"iss": format!("{base}/auth/idp/k8s-login-cli"), "aud": "cli-local",
            "exp": now + 60, "iat": now, "nonce": nonce, "sub": "jdoe"}))
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
    }

    #[test]
    fn a_login_completes_with_a_verified_token() {
        let (server, host, http) = fake(Reply::json(200, ""), |base| good_token(base, "N1"));
        let discovery = run(fetch_discovery(&http, &host)).unwrap();
        let bootstrap =
            run(complete_login(&http, &host, &discovery, "CODE", "VERIFIER", "http://127.0.0.1:8400/redirect", "N1"))
                .unwrap();
        assert_eq!(bootstrap.cluster_name, "kubernetes");
        let seen = server.requests();
        let exchange = seen.iter().find(|seen| seen.method == "POST").unwrap();
        assert_eq!(
            exchange.body,
            "grant_type=authorization_code&code=CODE&client_id=cli-local\
             &redirect_uri=http%3A%2F%2F127.0.0.1%3A8400%2Fredirect&code_verifier=VERIFIER"
        );
        let user = seen.iter().find(|seen| seen.path == "/k8slogin/token/user").unwrap();
        let authorization = user.header("authorization").unwrap();
        assert!(authorization.starts_with("Bearer ey"), "{authorization}");
    }

    #[test]
    fn a_token_with_the_wrong_nonce_never_reaches_the_bootstrap() {
        let (server, host, http) = fake(Reply::json(200, ""), |base| good_token(base, "other"));
        let discovery = run(fetch_discovery(&http, &host)).unwrap();
        let err = run(complete_login(&http, &host, &discovery, "CODE", "V", "http://127.0.0.1:8400/redirect", "N1"))
            .unwrap_err();
        assert!(matches!(err, OpenUnisonError::Jwt(jwt::JwtError::WrongNonce { .. })), "{err:?}");
        assert!(err.to_string().contains(&host.cli_issuer()), "{err}");
        assert!(!server.requests().iter().any(|seen| seen.path == "/k8slogin/token/user"));
    }

    #[test]
    fn a_jwks_uri_with_a_line_break_is_refused() {
        let cert = self_signed(&["127.0.0.1"]);
        let port = Arc::new(Mutex::new(0u16));
        let port_seen = port.clone();
        let server = TestServer::start(
            &cert,
            Arc::new(move |_: &Seen| {
                let certs = format!("https://127.0.0.1:{}/auth/idp/k8s-login-cli/certs\n", port_seen.lock().unwrap());
                Reply::json(200, json!({ "jwks_uri": certs }).to_string())
            }),
        );
        *port.lock().unwrap() = server.addr.port();
        let host = Host::parse(&format!("127.0.0.1:{}", server.addr.port())).unwrap();
        let err = run(fetch_discovery(&Http::new(&trust(&cert)).unwrap(), &host)).unwrap_err();
        assert!(matches!(&err, OpenUnisonError::BadAnswer { why, .. } if why.contains("jwks_uri")), "{err:?}");
        assert_eq!(server.requests().len(), 1, "the keys were not fetched");
    }

    #[test]
    fn refused_codes_are_explained() {
        for status in [400u16, 401, 403] {
            let (_server, host, http) = fake(Reply::json(status, ""), |base| good_token(base, "N1"));
            let err = run(exchange_code(&http, &host, "C", "V", "R")).unwrap_err();
            assert!(matches!(err, OpenUnisonError::CodeRejected { status: found, .. } if found == status), "{err:?}");
            assert!(err.to_string().contains("/auth/idp/k8s-login-cli/token"));
        }
        let (_server, host, http) = fake(Reply::json(500, ""), |base| good_token(base, "N1"));
        let err = run(exchange_code(&http, &host, "C", "V", "R")).unwrap_err();
        assert!(matches!(err, OpenUnisonError::Http(HttpError::Status { .. })), "{err:?}");
    }
}
