//! HTTP to OpenUnison: one reqwest client on our own rustls configuration,
//! with a connect timeout, a whole-request timeout, no redirects followed
//! (a redirect from a token endpoint is an error, never a new place to send a
//! secret), HTTPS only, and response bodies capped. Every error names the URL.
//!
//! The client is async; [`block_on`] runs one request sequence on a small
//! current-thread runtime that exists only while it runs, so code paths that
//! never talk to the network (the cached `token`) never build one.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper_util::client::proxy::matcher::Matcher as ProxyMatcher;

use super::TrustConfig;
use super::clock::Receipt;
use super::tls::{self, TrustError};
use crate::error::Hint;

/// How long to wait for a TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take, body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body accepted; OpenUnison's answers are a few KiB.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// A failed HTTP exchange. Every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The request did not finish in time.
    #[error("`{url}` did not answer within {}: the request timed out", humantime::format_duration(*.after))]
    Timeout { url: String, after: Duration },
    /// No connection (refused, unreachable, DNS failure).
    #[error("cannot connect to `{url}`: {why}")]
    Connect { url: String, why: String },
    /// The TLS handshake failed, usually because the certificate is not trusted.
    #[error("TLS with `{url}` failed: {why}")]
    Tls { url: String, why: String },
    /// The server answered with an unexpected status.
    #[error("`{url}` answered HTTP {status}")]
    Status { url: String, status: reqwest::StatusCode },
    /// The response body exceeds [`MAX_BODY_BYTES`].
    #[error("the response from `{url}` is larger than {limit} bytes", limit = MAX_BODY_BYTES)]
    TooLarge { url: String },
    /// The response is not the JSON expected.
    #[error("`{url}` did not answer JSON: {why}")]
    NotJson { url: String, why: String },
    /// Any other failure sending the request or reading the answer.
    #[error("the request to `{url}` failed: {why}")]
    Request { url: String, why: String },
    /// The proxy in the way failed, or asks for credentials (`auth_required`:
    /// HTTP 407). `proxy` is `scheme://host:port`, never with credentials.
    #[error("cannot reach `{url}` through the proxy `{proxy}`: {why}")]
    Proxy { url: String, proxy: String, why: String, auth_required: bool },
    /// The I/O runtime could not be started.
    #[error("cannot start the I/O runtime for `{url}`")]
    Runtime {
        url: String,
        #[source]
        source: std::io::Error,
    },
}

impl Hint for HttpError {
    fn hint(&self) -> Option<String> {
        match self {
            HttpError::Tls { why, .. } if why.starts_with(tls::OUT_OF_PERIOD_PREFIX) => {
                Some(tls::OUT_OF_PERIOD_HINT.to_string())
            }
            HttpError::Tls { .. } => Some(
                "if OpenUnison uses a private CA or a self-signed certificate, give it with `--certificate-authority FILE`"
                    .to_string(),
            ),
            HttpError::Connect { .. } => Some("check the host name and port, and that OpenUnison is reachable from here".to_string()),
            HttpError::Proxy { auth_required: true, .. } => Some(
                "give the proxy's user name and password in its URL (`HTTPS_PROXY=http://USER:PASSWORD@HOST:PORT`), \
                 or list the OpenUnison host in `NO_PROXY` if it is reachable without the proxy"
                    .to_string(),
            ),
            HttpError::Proxy { .. } => Some(
                "check the proxy settings (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, or the system's) and that the proxy is \
                 reachable from here"
                    .to_string(),
            ),
            HttpError::Timeout { .. } => Some("check the network and the OpenUnison server, then try again".to_string()),
            HttpError::Status { status, .. } if status.is_redirection() => {
                Some("redirects are not followed; check that `--host` names the OpenUnison host itself".to_string())
            }
            HttpError::Status { status, .. } if status.is_server_error() => Some(
                "OpenUnison failed to answer; try again in a moment, and look at its logs if it keeps failing"
                    .to_string(),
            ),
            HttpError::Status { status, .. } if status.as_u16() == 404 => {
                Some("check that `--host` names the OpenUnison host itself".to_string())
            }
            HttpError::NotJson { .. } | HttpError::TooLarge { .. } => Some(
                "check that `--host` names the OpenUnison host itself, not a proxy or a login page in front of it"
                    .to_string(),
            ),
            _ => None,
        }
    }
}

/// A response read in full (up to [`MAX_BODY_BYTES`]).
pub struct Response {
    pub url: String,
    pub status: reqwest::StatusCode,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// When it arrived, and the server's clock by its `Date` header.
    pub receipt: Receipt,
}

impl std::fmt::Debug for Response {
    // The body may hold tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("url", &self.url)
            .field("status", &self.status)
            .field("content_type", &self.content_type)
            .field("body_len", &self.body.len())
            .finish()
    }
}

impl Response {
    /// This response, or [`HttpError::Status`] unless it is a 2xx.
    pub fn success(self) -> Result<Response, HttpError> {
        if self.status.is_success() { Ok(self) } else { Err(HttpError::Status { url: self.url, status: self.status }) }
    }

    /// The body as a JSON object. The error never quotes the body (it may hold
    /// tokens): it says what it looks like instead.
    pub fn json_object(&self) -> Result<serde_json::Map<String, serde_json::Value>, HttpError> {
        let not_json = |why: String| HttpError::NotJson { url: self.url.clone(), why };
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err(not_json("the body is JSON but not an object".to_string())),
            Err(_) if self.looks_like_html() => Err(not_json(format!(
                "the body is an HTML page (HTTP {}, content type `{}`)",
                self.status,
                self.content_type.as_deref().unwrap_or("none")
            ))),
            Err(_) if self.body.iter().all(u8::is_ascii_whitespace) => Err(not_json("the body is empty".to_string())),
            Err(err) => Err(not_json(format!("invalid JSON at line {} column {}", err.line(), err.column()))),
        }
    }

    fn looks_like_html(&self) -> bool {
        let start = String::from_utf8_lossy(&self.body[..self.body.len().min(256)]).trim_start().to_ascii_lowercase();
        self.content_type.as_deref().is_some_and(|kind| kind.to_ascii_lowercase().starts_with("text/html"))
            || start.starts_with("<!doctype")
            || start.starts_with("<html")
    }
}

/// The HTTP client for one OpenUnison host's trust.
#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    connect_timeout: Duration,
    request_timeout: Duration,
    /// The proxy rules reqwest applies (the same `hyper-util` matcher, read
    /// from the same environment and system settings), to name the proxy in
    /// errors and debug lines.
    proxies: Arc<ProxyMatcher>,
}

impl Http {
    /// A client trusting what `trust` (and the system, and `SSL_CERT_FILE`) trusts.
    pub fn new(trust: &TrustConfig) -> Result<Http, TrustError> {
        Http::with_tls(tls::client_config(trust)?, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    pub(crate) fn with_tls(
        tls: rustls::ClientConfig,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Http, TrustError> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .https_only(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .user_agent(concat!("kubectl-oulogin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| TrustError::Setup { why: err.to_string() })?;
        Ok(Http { client, connect_timeout, request_timeout, proxies: Arc::new(ProxyMatcher::from_system()) })
    }

    /// The proxy a request to `url` goes through, as `scheme://host:port`
    /// (credentials left out), or `None` for a direct connection.
    pub fn proxy_for(&self, url: &str) -> Option<String> {
        let uri = url.parse::<hyper::Uri>().ok()?;
        let proxy = self.proxies.intercept(&uri)?;
        let proxy = proxy.uri();
        let host = proxy.host()?;
        let port = proxy.port_u16().map(|port| format!(":{port}")).unwrap_or_default();
        Some(format!("{}://{host}{port}", proxy.scheme_str().unwrap_or("http")))
    }

    /// Whether the proxy for `url` was given a user name (and password).
    fn proxy_credentials_given(&self, url: &str) -> bool {
        let Ok(uri) = url.parse::<hyper::Uri>() else { return false };
        self.proxies.intercept(&uri).is_some_and(|proxy| proxy.basic_auth().is_some() || proxy.raw_auth().is_some())
    }

    /// `GET url`, with `Authorization: Bearer <token>` when given.
    pub async fn get(&self, url: &str, bearer: Option<&str>) -> Result<Response, HttpError> {
        let mut request =
            with_typed_host(self.client.get(url), url).header(reqwest::header::ACCEPT, "application/json");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        self.send("GET", url, request).await
    }

    /// `POST url` with a form-encoded body.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<Response, HttpError> {
        // OpenUnison answers some failures with JSON only when asked for it.
        let request =
            with_typed_host(self.client.post(url), url).header(reqwest::header::ACCEPT, "application/json").form(form);
        self.send("POST", url, request).await
    }

    async fn send(&self, method: &str, url: &str, request: reqwest::RequestBuilder) -> Result<Response, HttpError> {
        let started = Instant::now();
        let result = self.send_inner(url, request).await;
        crate::debug!(
            "HTTP {method} {} -> {} after {} ms, {}{}",
            crate::debug::redact_url(url),
            match &result {
                Ok(response) => format!("{} ({} bytes)", response.status, response.body.len()),
                Err(_) => "failed".to_string(),
            },
            started.elapsed().as_millis(),
            self.proxy_for(url).map(|proxy| format!("through the proxy {proxy}")).unwrap_or_else(|| "direct".into()),
            result.as_ref().err().map(|err| format!(": {err}")).unwrap_or_default()
        );
        result
    }

    async fn send_inner(&self, url: &str, request: reqwest::RequestBuilder) -> Result<Response, HttpError> {
        let sent = std::time::SystemTime::now();
        let mut response = request.send().await.map_err(|err| self.classify(url, err))?;
        let received = std::time::SystemTime::now();
        let receipt = Receipt::estimate(
            sent,
            received,
            response.headers().get(reqwest::header::DATE).and_then(|value| value.to_str().ok()),
        );
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        if response.content_length().is_some_and(|length| length > MAX_BODY_BYTES as u64) {
            return Err(HttpError::TooLarge { url: url.to_string() });
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|err| self.classify(url, err))? {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(HttpError::TooLarge { url: url.to_string() });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Response { url: url.to_string(), status, content_type, body, receipt })
    }

    /// Sorts a reqwest error into what the user can act on.
    fn classify(&self, url: &str, err: reqwest::Error) -> HttpError {
        let proxy = self.proxy_for(url);
        let url = url.to_string();
        let why = root_cause(&err);
        if let Some(proxy) = proxy.clone()
            && find_rustls_error(&err).is_none()
            && (err.is_connect() || why.contains("tunnel error"))
        {
            // hyper-util's tunnel says only "proxy authorization required" for a 407.
            let auth_required = why.contains("proxy authorization required");
            let why = match (auth_required, err.is_timeout()) {
                (true, _) if self.proxy_credentials_given(&url) => {
                    "the proxy refused the user name and password in the proxy URL (HTTP 407: proxy authentication required)"
                        .to_string()
                }
                (true, _) => "the proxy requires proxy authentication (HTTP 407)".to_string(),
                (false, true) => format!(
                    "no connection within {}",
                    humantime::format_duration(self.connect_timeout)
                ),
                (false, false) => why,
            };
            return HttpError::Proxy { url, proxy, why, auth_required };
        }
        if err.is_timeout() {
            let after = if err.is_connect() { self.connect_timeout } else { self.request_timeout };
            return HttpError::Timeout { url, after };
        }
        if let Some(tls) = find_rustls_error(&err) {
            let why = describe_tls_error(tls);
            // A proxy that intercepts TLS shows its own certificate.
            let why = match proxy {
                Some(proxy) => format!("{why} (through the proxy `{proxy}`)"),
                None => why,
            };
            return HttpError::Tls { url, why };
        }
        if err.is_connect() {
            return HttpError::Connect { url, why };
        }
        HttpError::Request { url, why }
    }
}

/// Sends the host name of `url` in the `Host` header with its capitals: the URL
/// parser lower-cases it, but OpenUnison builds the `cli-local` issuer from the
/// `Host` header and compares it with its configured name letter for letter.
fn with_typed_host(request: reqwest::RequestBuilder, url: &str) -> reqwest::RequestBuilder {
    match typed_authority(url) {
        Some(authority) => request.header(reqwest::header::HOST, authority),
        None => request,
    }
}

/// The `host[:port]` of an https `url` as written, when it has capitals
/// (plain ASCII only: anything else is the URL parser's to rewrite).
fn typed_authority(url: &str) -> Option<&str> {
    let scheme = url.get(.."https://".len())?;
    if !scheme.eq_ignore_ascii_case("https://") {
        return None;
    }
    let authority = url["https://".len()..].split(['/', '?', '#']).next()?;
    let plain = authority.bytes().all(|byte| byte.is_ascii_alphanumeric() || b".-:[]".contains(&byte));
    (plain && authority.bytes().any(|byte| byte.is_ascii_uppercase())).then_some(authority)
}

/// Runs `future` on a current-thread runtime made for it.
pub fn block_on<T>(url: &str, future: impl Future<Output = T>) -> Result<T, HttpError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| HttpError::Runtime { url: url.to_string(), source })?;
    Ok(runtime.block_on(future))
}

/// The common certificate failures in words; the rest as rustls says them.
fn describe_tls_error(err: &rustls::Error) -> String {
    use rustls::CertificateError;
    match err {
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted CA".to_string()
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if other.to_string().contains("CaUsedAsEndEntity") =>
        {
            "the server presents a self-signed CA certificate that is not the one given with `--certificate-authority`"
                .to_string()
        }
        rustls::Error::InvalidCertificate(CertificateError::Other(other))
            if let Some(stale) = other.0.downcast_ref::<tls::AnchorOutOfPeriod>() =>
        {
            stale.to_string()
        }
        rustls::Error::InvalidCertificate(CertificateError::Expired | CertificateError::ExpiredContext { .. }) => {
            "the server's certificate has expired".to_string()
        }
        other => other.to_string(),
    }
}

/// The innermost error's message: reqwest's own says only "error sending request".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut current = err;
    for _ in 0..16 {
        if let Some(io) = current.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            current = inner;
            continue;
        }
        match current.source() {
            Some(next) => current = next,
            None => break,
        }
    }
    current.to_string()
}

/// The rustls error in a chain; `io::Error` hides its payload from `source()`.
fn find_rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(err);
    for _ in 0..16 {
        let err = current?;
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
                return Some(tls);
            }
            current = Some(inner);
            continue;
        }
        current = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::openunison::testing::{Reply, TestServer, ca_and_leaf, self_signed, trust};

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn answers_are_read_and_requests_carry_what_they_should() {
        let (ca, leaf) = ca_and_leaf(&["127.0.0.1"]);
        runtime().block_on(async {
            let server = TestServer::spawn(&leaf, Arc::new(|_| Reply::json(200, r#"{"a":1}"#))).await;
            let http = Http::new(&trust(&ca)).unwrap();
            let response = http.get(&server.url("/x"), Some("tok")).await.unwrap().success().unwrap();
            assert_eq!(response.json_object().unwrap()["a"], 1);
            http.post_form(&server.url("/y"), &[("grant_type", "refresh_token"), ("client_id", "kubernetes")])
                .await
                .unwrap();
            let seen = server.requests();
            assert_eq!(seen[0].header("authorization"), Some("Bearer tok"));
            assert_eq!(seen[1].method, "POST");
            assert_eq!(seen[1].body, "grant_type=refresh_token&client_id=kubernetes");
            assert_eq!(seen[1].header("content-type"), Some("application/x-www-form-urlencoded"));
        });
    }

    #[test]
    fn a_host_name_with_capitals_goes_out_as_typed() {
        let (ca, leaf) = ca_and_leaf(&["localhost"]);
        runtime().block_on(async {
            let server = TestServer::spawn(&leaf, Arc::new(|_| Reply::json(200, "{}"))).await;
            let http = Http::new(&trust(&ca)).unwrap();
            let port = server.addr.port();
            http.get(&format!("https://LocalHost:{port}/x"), None).await.unwrap();
            http.post_form(&format!("https://LocalHost:{port}/y"), &[("a", "b")]).await.unwrap();
            http.get(&format!("https://localhost:{port}/z"), None).await.unwrap();
            let hosts: Vec<String> =
                server.requests().iter().map(|seen| seen.header("host").unwrap_or_default().to_string()).collect();
            assert_eq!(hosts, [format!("LocalHost:{port}"), format!("LocalHost:{port}"), format!("localhost:{port}")]);
        });
        assert_eq!(typed_authority("https://OU.Example.com/auth"), Some("OU.Example.com"));
        assert_eq!(typed_authority("https://ou.example.com/auth"), None);
        assert_eq!(typed_authority("http://OU.Example.com/auth"), None);
        assert_eq!(typed_authority("https://B\u{fc}cher.Example/"), None);
    }

    #[test]
    fn a_stalled_server_times_out_naming_the_url() {
        let cert = self_signed(&["127.0.0.1"]);
        runtime().block_on(async {
            let server = TestServer::spawn(&cert, Arc::new(|_| Reply::Stall)).await;
            let tls = tls::client_config(&trust(&cert)).unwrap();
            let http = Http::with_tls(tls, CONNECT_TIMEOUT, Duration::from_millis(300)).unwrap();
            let url = server.url("/stall");
            let started = std::time::Instant::now();
            let err = http.get(&url, None).await.unwrap_err();
            assert!(started.elapsed() < Duration::from_secs(5));
            assert!(matches!(err, HttpError::Timeout { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(&url) && message.contains("timed out"), "{message}");
        });
    }

    #[test]
    fn redirects_are_not_followed() {
        let cert = self_signed(&["127.0.0.1"]);
        runtime().block_on(async {
            let server = TestServer::spawn(
                &cert,
                Arc::new(|_| Reply::Headers {
                    status: 302,
                    headers: vec![("location".into(), "https://127.0.0.1:1/".into())],
                }),
            )
            .await;
            let http = Http::new(&trust(&cert)).unwrap();
            let err = http.get(&server.url("/r"), None).await.unwrap().success().unwrap_err();
            assert!(matches!(err, HttpError::Status { status, .. } if status.as_u16() == 302), "{err:?}");
            assert!(err.hint().unwrap().contains("redirects"));
            assert_eq!(server.requests().len(), 1);
        });
    }

    #[test]
    fn large_bodies_are_refused_with_or_without_a_length() {
        let cert = self_signed(&["127.0.0.1"]);
        runtime().block_on(async {
            let big = vec![b'x'; MAX_BODY_BYTES + 1];
            let sized = big.clone();
            let server = TestServer::spawn(
                &cert,
                Arc::new(move |seen| {
                    if seen.path == "/sized" {
                        Reply::Full { status: 200, content_type: "application/json", body: sized.clone() }
                    } else {
                        Reply::Unsized { status: 200, body: big.clone() }
                    }
                }),
            )
            .await;
            let http = Http::new(&trust(&cert)).unwrap();
            for path in ["/sized", "/unsized"] {
                let err = http.get(&server.url(path), None).await.unwrap_err();
                assert!(matches!(err, HttpError::TooLarge { .. }), "{err:?}");
                assert!(err.to_string().contains(&server.url(path)));
            }
        });
    }

    #[test]
    fn refused_connections_and_untrusted_certificates_are_told_apart() {
        let cert = self_signed(&["127.0.0.1"]);
        runtime().block_on(async {
            let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
            let http = Http::new(&trust(&cert)).unwrap();
            let url = format!("https://127.0.0.1:{}/token", closed.port());
            let err = http.get(&url, None).await.unwrap_err();
            assert!(matches!(err, HttpError::Connect { .. }), "{err:?}");
            assert!(err.to_string().contains(&url), "{err}");

            let server = TestServer::spawn(&cert, Arc::new(|_| Reply::json(200, "{}"))).await;
            let other = self_signed(&["127.0.0.1"]);
            let err = Http::new(&trust(&other)).unwrap().get(&server.url("/t"), None).await.unwrap_err();
            assert!(matches!(err, HttpError::Tls { .. }), "{err:?}");
            assert!(err.to_string().contains("self-signed CA certificate that is not the one given"), "{err}");
            let (_, leaf) = ca_and_leaf(&["127.0.0.1"]);
            let signed = TestServer::spawn(&leaf, Arc::new(|_| Reply::json(200, "{}"))).await;
            let err = Http::new(&trust(&other)).unwrap().get(&signed.url("/t"), None).await.unwrap_err();
            assert!(err.to_string().contains("not signed by a trusted CA"), "{err}");
            assert!(err.hint().unwrap().contains("--certificate-authority"));
        });
    }

    #[test]
    fn plain_http_is_refused() {
        let cert = self_signed(&["127.0.0.1"]);
        runtime().block_on(async {
            let http = Http::new(&trust(&cert)).unwrap();
            let err = http.get("http://127.0.0.1:1/x", None).await.unwrap_err();
            assert!(err.to_string().contains("http://127.0.0.1:1/x"), "{err}");
        });
    }

    #[test]
    fn json_errors_describe_the_body_without_quoting_it() {
        let response = |content_type: Option<&str>, body: &str| Response {
            url: "https://h/x".to_string(),
            status: reqwest::StatusCode::OK,
            content_type: content_type.map(str::to_string),
            body: body.as_bytes().to_vec(),
            receipt: Receipt::now(),
        };
        let err = response(Some("text/html"), "<html>secret-token</html>").json_object().unwrap_err();
        assert!(err.to_string().contains("HTML page") && !err.to_string().contains("secret"), "{err}");
        let err = response(None, "\"secret-token\"").json_object().unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        let err = response(None, "{\"a\": secret").json_object().unwrap_err();
        assert!(err.to_string().contains("line 1") && !err.to_string().contains("secret"), "{err}");
        assert!(response(None, "").json_object().unwrap_err().to_string().contains("empty"));
        let debug = format!("{:?}", response(None, "secret-token"));
        assert!(!debug.contains("secret"), "{debug}");
    }
}
