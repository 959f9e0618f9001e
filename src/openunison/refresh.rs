//! k8sIdp refreshes: `POST https://HOST/auth/idp/k8sIdp/token` with
//! `grant_type=refresh_token&refresh_token=…&client_id=kubernetes`. OpenUnison
//! rotates the refresh token on every refresh and answers a spent or unknown
//! one with `401` and an empty body (docs/openunison.md, section 5), which
//! is [`RefreshError::SessionGone`]; everything else keeps the session.

use std::time::Duration;

use super::client::{self, Http, HttpError};
use super::clock::Receipt;
use super::tls::TrustError;
use super::{Host, TrustConfig};
use crate::error::Hint;

/// The k8sIdp client OpenUnison's chart registers for kubectl.
pub const K8S_CLIENT_ID: &str = "kubernetes";

/// The tokens a refresh returns; both are required.
#[derive(Clone, PartialEq, Eq)]
pub struct Tokens {
    pub id_token: String,
    pub refresh_token: String,
    /// When the answer came, and the server's clock then.
    pub receipt: Receipt,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { id_token: <redacted>, refresh_token: <redacted> }")
    }
}

/// Why a refresh failed. Every variant names the token endpoint's URL.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// `401`: OpenUnison no longer knows the session (expired, logged out, or
    /// its refresh token was already used). Only a new login helps.
    #[error("OpenUnison ended the session: `{url}` refused its refresh token (HTTP 401)")]
    SessionGone { url: String },
    /// `5xx`: the server failed; the session may still be alive.
    #[error("`{url}` failed with HTTP {status}")]
    ServerError { url: String, status: u16 },
    /// Another non-success status (400, 403, a redirect...).
    #[error("`{url}` refused the refresh with HTTP {status}")]
    Rejected { url: String, status: u16 },
    /// No answer in time.
    #[error("`{url}` did not answer within {}: the refresh timed out", humantime::format_duration(*.after))]
    Timeout { url: String, after: Duration },
    /// No connection (refused, unreachable, DNS).
    #[error("cannot connect to `{url}`: {why}")]
    Unreachable { url: String, why: String },
    /// The TLS handshake failed.
    #[error("TLS with `{url}` failed: {why}")]
    Tls { url: String, why: String },
    /// A 200 answer without usable tokens.
    #[error("the refresh answer from `{url}` is unusable: {why}")]
    InvalidResponse { url: String, why: String },
    /// The session's token endpoint is not on its OpenUnison host.
    #[error("the token endpoint `{url}` is not an https URL on `{host}`")]
    WrongEndpoint { url: String, host: String },
    /// The CA certificates could not be loaded.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// The proxy failed or wants credentials; the session may still be alive.
    #[error(transparent)]
    Proxy(HttpError),
}

impl Hint for RefreshError {
    fn hint(&self) -> Option<String> {
        match self {
            RefreshError::SessionGone { .. } => Some(
                "sessions end after inactivity, on logout in the browser, or when their refresh token was used elsewhere; log in again"
                    .to_string(),
            ),
            RefreshError::Tls { why, .. } if why.starts_with(super::tls::OUT_OF_PERIOD_PREFIX) => {
                Some(super::tls::OUT_OF_PERIOD_HINT.to_string())
            }
            RefreshError::Tls { .. } => Some(
                "if OpenUnison uses a private CA or a self-signed certificate, log in again with `--certificate-authority FILE`"
                    .to_string(),
            ),
            RefreshError::Trust(err) => err.hint(),
            RefreshError::Proxy(err) => err.hint().map(|hint| format!("{hint}; the session is kept")),
            RefreshError::ServerError { .. } | RefreshError::Timeout { .. } | RefreshError::Unreachable { .. } => {
                Some("the session is kept; try again once OpenUnison is reachable".to_string())
            }
            _ => None,
        }
    }
}

impl From<HttpError> for RefreshError {
    fn from(err: HttpError) -> Self {
        match err {
            HttpError::Status { url, status } if status.as_u16() == 401 => RefreshError::SessionGone { url },
            HttpError::Status { url, status } if status.is_server_error() => {
                RefreshError::ServerError { url, status: status.as_u16() }
            }
            HttpError::Status { url, status } => RefreshError::Rejected { url, status: status.as_u16() },
            HttpError::Timeout { url, after } => RefreshError::Timeout { url, after },
            HttpError::Connect { url, why } | HttpError::Request { url, why } => RefreshError::Unreachable { url, why },
            HttpError::Tls { url, why } => RefreshError::Tls { url, why },
            err @ HttpError::Proxy { .. } => RefreshError::Proxy(err),
            HttpError::TooLarge { url } => RefreshError::InvalidResponse {
                url,
                why: format!("it is larger than {} bytes", client::MAX_BODY_BYTES),
            },
            HttpError::NotJson { url, why } => RefreshError::InvalidResponse { url, why },
            HttpError::Runtime { url, source } => RefreshError::Unreachable { url, why: source.to_string() },
        }
    }
}

/// Refreshes a k8sIdp session (blocking; runs its own small runtime).
pub fn refresh(
    host: &Host,
    token_endpoint: &str,
    trust: &TrustConfig,
    refresh_token: &str,
) -> Result<Tokens, RefreshError> {
    check_endpoint(host, token_endpoint)?;
    let http = Http::new(trust)?;
    client::block_on(token_endpoint, refresh_with(&http, token_endpoint, refresh_token))?
}

/// The refresh itself, on a caller's runtime. A 401 is asked once more after
/// [`RETRY_AFTER_401`] with the same refresh token: OpenUnison answers 401 for
/// any exception in the refresh, a failed write to its session store included,
/// and such a failure leaves the token unspent. A second 401 is final.
pub async fn refresh_with(http: &Http, token_endpoint: &str, refresh_token: &str) -> Result<Tokens, RefreshError> {
    match refresh_once(http, token_endpoint, refresh_token).await {
        Err(RefreshError::SessionGone { .. }) => {
            tokio::time::sleep(RETRY_AFTER_401).await;
            refresh_once(http, token_endpoint, refresh_token).await
        }
        answer => answer,
    }
}

/// How long to wait before asking again after a 401.
pub const RETRY_AFTER_401: Duration = Duration::from_millis(750);

async fn refresh_once(http: &Http, token_endpoint: &str, refresh_token: &str) -> Result<Tokens, RefreshError> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", K8S_CLIENT_ID)];
    let response = http.post_form(token_endpoint, &form).await?.success()?;
    let receipt = response.receipt;
    let answer = response.json_object()?;
    let invalid = |why: &str| RefreshError::InvalidResponse { url: token_endpoint.to_string(), why: why.to_string() };
    let text = |key: &str| answer.get(key).and_then(serde_json::Value::as_str).filter(|text| !text.trim().is_empty());
    let id_token = text("id_token").ok_or_else(|| invalid("it has no `id_token`"))?;
    super::jwt::read_times(id_token).map_err(|err| invalid(&format!("its `id_token` is unusable ({err})")))?;
    // OpenUnison always rotates the refresh token; an answer without one would
    // leave us holding a spent token.
    let refresh_token = text("refresh_token").ok_or_else(|| invalid("it has no new `refresh_token`"))?;
    Ok(Tokens { id_token: id_token.to_string(), refresh_token: refresh_token.to_string(), receipt })
}

/// A session file names its token endpoint; refresh tokens go nowhere but to
/// the session's own OpenUnison host, over https.
fn check_endpoint(host: &Host, token_endpoint: &str) -> Result<(), RefreshError> {
    let wrong = || RefreshError::WrongEndpoint { url: token_endpoint.to_string(), host: host.to_string() };
    let url = super::server_url(token_endpoint).map_err(|_| wrong())?;
    let authority = match (url.host_str(), url.port()) {
        (Some(name), Some(port)) => format!("{name}:{port}"),
        (Some(name), None) => name.to_string(),
        (None, _) => return Err(wrong()),
    };
    if url.scheme() != "https" || authority != host.key() || !url.username().is_empty() {
        return Err(wrong());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::openunison::testing::{Reply, TestServer, self_signed, trust};

    // A JWT whose payload is {"exp":1800000060,"iat":1800000000}.
    const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE4MDAwMDAwNjAsImlhdCI6MTgwMDAwMDAwMH0.c2ln";

    fn serve(reply: Reply) -> (TestServer, TrustConfig, Host) {
        let cert = self_signed(&["127.0.0.1"]);
        let server = TestServer::start(&cert, Arc::new(move |_| reply.clone()));
        let host = Host::parse(&format!("127.0.0.1:{}", server.addr.port())).unwrap();
        (server, trust(&cert), host)
    }

    fn refresh_at(reply: Reply) -> (Result<Tokens, RefreshError>, TestServer) {
        let (server, trust, host) = serve(reply);
        let result = refresh(&host, &host.k8s_token_endpoint(), &trust, "old-refresh");
        (result, server)
    }

    #[test]
    fn a_refresh_posts_the_form_and_returns_both_tokens() {
        let body = format!(
            r#"{{"access_token":"a","expires_in":60,"token_type":"Bearer","id_token":"{ID_TOKEN}","refresh_token":"new\u003d"}}"#
        );
        let (result, server) = refresh_at(Reply::json(200, body));
        let tokens = result.unwrap();
        assert_eq!((tokens.id_token.as_str(), tokens.refresh_token.as_str()), (ID_TOKEN, "new="));
        assert!(!format!("{tokens:?}").contains("new="));
        let seen = server.requests();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].method, "POST");
        assert_eq!(seen[0].path, "/auth/idp/k8sIdp/token");
        assert_eq!(seen[0].body, "grant_type=refresh_token&refresh_token=old-refresh&client_id=kubernetes");
    }

    #[test]
    fn a_401_with_any_body_asked_twice_means_the_session_is_gone() {
        for body in ["", r#"{"error":"invalid_grant"}"#] {
            let (result, server) = refresh_at(Reply::json(401, body));
            let err = result.unwrap_err();
            assert!(matches!(err, RefreshError::SessionGone { .. }), "{err:?}");
            assert!(err.to_string().contains("/auth/idp/k8sIdp/token"), "{err}");
            assert_eq!(server.requests().len(), 2, "one retry, no more");
        }
    }

    #[test]
    fn a_transient_401_is_retried_once_with_the_same_refresh_token() {
        let answered = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let cert = self_signed(&["127.0.0.1"]);
        let counter = answered.clone();
        let server = TestServer::start(
            &cert,
            Arc::new(move |_| match counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
                0 => Reply::json(401, ""),
                _ => Reply::json(200, format!(r#"{{"id_token":"{ID_TOKEN}","refresh_token":"rotated"}}"#)),
            }),
        );
        let host = Host::parse(&format!("127.0.0.1:{}", server.addr.port())).unwrap();
        let started = std::time::Instant::now();
        let tokens = refresh(&host, &host.k8s_token_endpoint(), &trust(&cert), "old-refresh").unwrap();
        assert_eq!(tokens.refresh_token, "rotated");
        assert!(started.elapsed() >= RETRY_AFTER_401, "it waited a moment before asking again");
        let seen = server.requests();
        assert_eq!(seen.len(), 2);
        assert!(seen.iter().all(|seen| seen.body.contains("refresh_token=old-refresh")), "the same token both times");
    }

    #[test]
    fn other_failures_keep_the_session() {
        let (result, _server) = refresh_at(Reply::json(500, ""));
        assert!(matches!(result, Err(RefreshError::ServerError { status: 500, .. })), "{result:?}");
        let (result, _server) = refresh_at(Reply::json(403, ""));
        assert!(matches!(result, Err(RefreshError::Rejected { status: 403, .. })), "{result:?}");
        let (result, _server) = refresh_at(Reply::json(200, r#"{"refresh_token":"r"}"#));
        let err = result.unwrap_err();
        assert!(matches!(&err, RefreshError::InvalidResponse { why, .. } if why.contains("id_token")), "{err:?}");
        let (result, _server) = refresh_at(Reply::json(200, format!(r#"{{"id_token":"{ID_TOKEN}"}}"#)));
        let err = result.unwrap_err();
        assert!(matches!(&err, RefreshError::InvalidResponse { why, .. } if why.contains("refresh_token")), "{err:?}");
        let (result, _server) = refresh_at(Reply::json(200, r#"{"id_token":"opaque","refresh_token":"r"}"#));
        assert!(matches!(result, Err(RefreshError::InvalidResponse { .. })), "{result:?}");
        let (result, _server) = refresh_at(Reply::html(200, "<html>maintenance</html>"));
        assert!(matches!(result, Err(RefreshError::InvalidResponse { .. })), "{result:?}");
    }

    #[test]
    fn transport_failures_are_told_apart() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let host = Host::parse(&format!("127.0.0.1:{}", closed.port())).unwrap();
        let cert = self_signed(&["127.0.0.1"]);
        let err = refresh(&host, &host.k8s_token_endpoint(), &trust(&cert), "r").unwrap_err();
        assert!(matches!(err, RefreshError::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains(&host.k8s_token_endpoint()));

        let (server, _, host) = serve(Reply::json(200, "{}"));
        let other = self_signed(&["127.0.0.1"]);
        let err = refresh(&host, &host.k8s_token_endpoint(), &trust(&other), "r").unwrap_err();
        assert!(matches!(err, RefreshError::Tls { .. }), "{err:?}");
        assert!(server.requests().is_empty());
    }

    #[test]
    fn a_stalled_refresh_times_out_naming_the_url_and_keeps_the_session() {
        let cert = self_signed(&["127.0.0.1"]);
        let server = TestServer::start(&cert, Arc::new(|_| Reply::Stall));
        let tls = crate::openunison::tls::client_config(&trust(&cert)).unwrap();
        let http = Http::with_tls(tls, client::CONNECT_TIMEOUT, Duration::from_millis(300)).unwrap();
        let url = server.url("/auth/idp/k8sIdp/token");
        let err = client::block_on(&url, refresh_with(&http, &url, "r")).unwrap().unwrap_err();
        assert!(matches!(err, RefreshError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains(&url) && err.to_string().contains("timed out"), "{err}");
        assert!(!matches!(err, RefreshError::SessionGone { .. }));
        assert!(err.hint().unwrap().contains("session is kept"));
    }

    #[test]
    fn refresh_tokens_only_go_to_the_sessions_host() {
        let host = Host::parse("ou.example.com").unwrap();
        let trust = TrustConfig::default();
        for endpoint in [
            "https://evil.example.com/auth/idp/k8sIdp/token",
            "http://ou.example.com/auth/idp/k8sIdp/token",
            "https://ou.example.com:8443/auth/idp/k8sIdp/token",
            "https://user@ou.example.com/auth/idp/k8sIdp/token",
            "https://ou.example.com/auth/idp/k8sIdp/token\n",
            "https://ou.exa\tmple.com/auth/idp/k8sIdp/token",
            "not a url",
        ] {
            let err = refresh(&host, endpoint, &trust, "r").unwrap_err();
            assert!(matches!(err, RefreshError::WrongEndpoint { .. }), "{endpoint}: {err:?}");
        }
        assert!(check_endpoint(&host, "https://OU.example.com:443/auth/idp/k8sIdp/token").is_ok());
        let typed = Host::parse("OU.Example.com").unwrap();
        assert!(check_endpoint(&typed, &typed.k8s_token_endpoint()).is_ok());
    }
}
