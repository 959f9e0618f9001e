//! The strict fake OpenUnison: `/cli-login`, the `k8s-login-cli` IdP
//! (discovery, JWKS, authorization, code exchange), `/k8slogin/token/user`
//! (the bootstrap JSON, Gson-escaped, a new k8sIdp session per call), the
//! k8sIdp refresh endpoint (one-time refresh tokens, optional grace period,
//! sliding inactivity timeout) and the "login complete" page, as described in
//! `docs/openunison.md`. Where the real server is lax and a
//! client could come to rely on it (code reuse), the fake is stricter.
//! Fault switches make it misbehave on purpose for the hostile-server tests.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hyper::Method;
use serde_json::{Value, json};

use super::gson::Gson;
use super::jwt::{self, Signer};
use super::kube_api::FakeKubeApi;
use super::pki::{self, ServerIdentity, TestCa};
use super::server::{self, Request, Response, TlsServer};
use super::{now_secs, random_bytes, random_hex};

/// The public client the CLI login uses.
pub const CLI_CLIENT_ID: &str = "cli-local";
/// The client kubeconfigs refresh as.
pub const K8S_CLIENT_ID: &str = "kubernetes";
/// The browser session cookie.
pub const SESSION_COOKIE: &str = "tremolosession";
/// Authorization codes are valid this long either side of their issue time.
const CODE_SKEW_MS: u128 = 60_000;
/// `cli-local` id_tokens live one minute, as the chart configures.
const CLI_TOKEN_LIFETIME_SECS: i64 = 60;
/// OpenUnison back-dates `nbf` by two minutes.
const NBF_BACKDATE_SECS: i64 = 120;
/// How long a "stall" fault keeps a request hanging (the server's drop ends it sooner).
const STALL: Duration = Duration::from_secs(3600);
/// The size of the `BootstrapHuge` body.
const HUGE_BODY_BYTES: usize = 10 * 1024 * 1024;

/// How to start the fake. `FakeConfig::default()` is the chart's defaults,
/// except that tests should pass a free `redirect_port`.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    /// The loopback port of the registered redirect URI `http://127.0.0.1:{port}/redirect`.
    pub redirect_port: u16,
    /// `kubectl Command` in the bootstrap JSON.
    pub cluster_name: String,
    /// The user's `sub`, returned as `displayName`.
    pub display_name: String,
    /// k8sIdp id_token lifetime.
    pub token_lifetime_secs: u64,
    /// `refreshTokenGraceMillis`.
    pub grace_period_ms: u64,
    /// `session_inactivity_timeout_seconds`: sliding session lifetime.
    pub inactivity_timeout_secs: u64,
    /// Sleep before handling each refresh, to widen race windows.
    pub refresh_delay: Duration,
    /// `kubectl Windows Command`. `None`: start a fake Kubernetes API server and use its URL.
    pub api_server_url: Option<String>,
    /// Serve OpenUnison with one self-signed `CA:TRUE` certificate instead of a CA-issued leaf.
    pub self_signed: bool,
    /// Include `OpenUnison Server CA Certificate` in the bootstrap JSON.
    pub include_ou_ca: bool,
    /// Include `Kubernetes API Server CA Certificate` in the bootstrap JSON.
    pub include_api_ca: bool,
    /// The name in `network.openunison_host`, the only issuer host
    /// `/k8slogin/token/user` accepts and the k8sIdp issuer's host. The fake's
    /// port is appended (tests cannot listen on 443; real OpenUnison names no
    /// port). `None`: `127.0.0.1`, the host the tests use.
    pub ou_host_name: Option<String>,
    /// Serve OpenUnison with the chart's default `unison-ca`: a self-signed
    /// `CA:FALSE` certificate, returned as the OpenUnison CA.
    pub self_signed_leaf: bool,
    /// Impersonation: the API server presents OpenUnison's own certificate,
    /// which the bootstrap then gives as the API server CA too.
    pub impersonation: bool,
    /// The API server's CA (its own, not OpenUnison's) carries a 70 kB
    /// extension: Go's x509 takes it, webpki refuses certificates over 64 KiB.
    pub oversized_api_ca: bool,
    /// The CA behind OpenUnison's leaf was valid in 2001 only (the leaf itself is current).
    pub expired_ca: bool,
    /// How far the fake's clock is ahead of the machine's (negative: behind),
    /// in seconds: its tokens' `iat`/`exp`/`nbf`, its `Date` header and the
    /// fake API server's expiry checks all follow it.
    pub clock_offset_secs: i64,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            redirect_port: 8400,
            cluster_name: "kubernetes".into(),
            display_name: "jdoe".into(),
            token_lifetime_secs: 60,
            grace_period_ms: 0,
            inactivity_timeout_secs: 900,
            refresh_delay: Duration::ZERO,
            api_server_url: None,
            self_signed: false,
            include_ou_ca: true,
            include_api_ca: true,
            ou_host_name: None,
            self_signed_leaf: false,
            impersonation: false,
            oversized_api_ca: false,
            expired_ca: false,
            clock_offset_secs: 0,
        }
    }
}

impl FakeConfig {
    pub fn with_redirect_port(port: u16) -> FakeConfig {
        FakeConfig { redirect_port: port, ..FakeConfig::default() }
    }
}

/// Deliberate misbehaviour, switched on at run time with `FakeOpenUnison::set_fault`.
/// Faults stay on until cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    // `/k8slogin/token/user`
    /// Body that is not JSON (status 200, JSON content type).
    BootstrapNotJson,
    /// An HTML error page with status 200.
    BootstrapHtml200,
    BootstrapMissingIdToken,
    BootstrapMissingRefreshToken,
    /// No `kubectl Windows Command`.
    BootstrapMissingServerUrl,
    /// The API server URL uses `http://`.
    BootstrapHttpServerUrl,
    /// Both CA PEMs truncated in the middle of the base64.
    BootstrapBadCaPem,
    /// A valid document padded to 10 MiB with an extra member.
    BootstrapHuge,
    /// Unknown extra members at the top level and in `token` (must be accepted).
    BootstrapExtraFields,
    /// This status with an empty body.
    BootstrapStatus(u16),
    /// Never answer.
    BootstrapStall,
    /// This text as the API server URL (`kubectl Windows Command`).
    BootstrapServerUrl(String),

    // `cli-local` token endpoint (code exchange) and the id_token it returns
    /// This status, `Content-Type: application/json`, empty body.
    CodeExchangeStatus(u16),
    /// JSON without `id_token`.
    CodeExchangeNoIdToken,
    /// Never answer.
    CodeExchangeStall,
    CliTokenNotJwt,
    CliTokenAlgNone,
    CliTokenUnknownKid,
    /// Signed by a key the JWKS does not publish.
    CliTokenBadSignature,
    CliTokenWrongIss,
    CliTokenWrongAud,
    /// `exp` ten minutes ago.
    CliTokenExpired,
    CliTokenWrongNonce,

    // discovery and keys
    /// `…/certs` answers this status with an empty body.
    JwksStatus(u16),
    /// `…/.well-known/openid-configuration` answers this status with an empty body.
    DiscoveryStatus(u16),
    /// `…/certs` never answers.
    JwksStall,

    // authorization endpoint
    /// Redirect back with `?error=<this>&state=<state>` instead of a code.
    AuthorizeError(String),
    /// Redirect back with `?error=<code>&error_description=<text>` and no
    /// `state`, as every error path of the real authorization endpoint does;
    /// an empty description is left out.
    AuthorizeErrorWithoutState {
        code: String,
        description: String,
    },
    /// Redirect back with a code and a different `state`.
    AuthorizeWrongState,

    // k8sIdp refresh
    /// This status, `Content-Type: application/json`, empty body.
    RefreshStatus(u16),
    /// Rotate as usual but leave `id_token` out of the response.
    RefreshNoIdToken,
    /// Never answer.
    RefreshStall,
    /// Answer the next refresh 401 with an empty body without spending its
    /// token (a failed session-store write), then clear this fault.
    RefreshTransient401,
}

/// What the fake has counted since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// `GET /cli-login` requests.
    pub cli_login_hits: u64,
    /// Browser sessions created (automatic logins of the configured user).
    pub browser_logins: u64,
    /// Codes issued by the authorization endpoint.
    pub authorizations: u64,
    /// Successful code exchanges at the `cli-local` token endpoint.
    pub code_exchanges: u64,
    /// Refused code exchanges.
    pub code_exchange_failures: u64,
    /// k8sIdp sessions minted by `/k8slogin/token/user`.
    pub sessions_minted: u64,
    /// Refused `/k8slogin/token/user` requests.
    pub bootstrap_failures: u64,
    /// Requests that reached the k8sIdp token endpoint (counted on arrival,
    /// before any `refresh_delay`).
    pub refresh_requests: u64,
    /// Refreshes that rotated the refresh token.
    pub refreshes_ok: u64,
    /// Replays answered with the current tokens within the grace period.
    pub refreshes_grace: u64,
    /// Refreshes refused (401 and injected faults).
    pub refreshes_failed: u64,
    /// `Host` headers of the requests the plugin sends (code exchange and bootstrap).
    pub host_headers: Vec<String>,
}

/// One call of the k8sIdp token endpoint, for per-expiry accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshEvent {
    pub at: SystemTime,
    pub outcome: RefreshOutcome,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshOutcome {
    Rotated,
    Grace,
    Rejected,
}

/// Settings that tests may change while the fake runs.
#[derive(Debug, Clone)]
struct Live {
    token_lifetime_secs: u64,
    grace_period_ms: u64,
    inactivity_timeout_secs: u64,
    refresh_delay: Duration,
    /// Refreshes that arrive wait (unanswered) while this is set.
    refreshes_held: bool,
    faults: Vec<Fault>,
}

struct CodeGrant {
    client_id: String,
    nonce: String,
    challenge: Option<(String, PkceMethod)>,
    issued_ms: u128,
    used: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PkceMethod {
    S256,
    Plain,
}

struct K8sSession {
    /// Sequence number, for readable event lines.
    label: u64,
    refresh_token: String,
    id_token: String,
    access_token: String,
    expires_ms: u128,
    /// Rotated-out refresh tokens and when they were rotated out.
    expired_tokens: Vec<(String, u128)>,
}

#[derive(Default)]
struct State {
    browser_sessions: HashSet<String>,
    codes: HashMap<String, CodeGrant>,
    sessions: HashMap<[u8; 16], K8sSession>,
    next_session_label: u64,
    issued: Vec<String>,
    counters: Counters,
    refresh_events: Vec<RefreshEvent>,
    events: Vec<String>,
}

struct Shared {
    host: String,
    /// `network.openunison_host`.
    ou_host: String,
    redirect_uri: String,
    redirect_port: u16,
    cluster_name: String,
    display_name: String,
    api_server_url: String,
    ou_ca_pem: Option<String>,
    api_ca_pem: Option<String>,
    signer: Signer,
    clock_offset_secs: i64,
    live: Mutex<Live>,
    state: Mutex<State>,
}

/// A running fake OpenUnison (and, unless configured otherwise, a fake
/// Kubernetes API server). Dropping it stops both.
pub struct FakeOpenUnison {
    server: TlsServer,
    api: Option<FakeKubeApi>,
    shared: Arc<Shared>,
    ca_file: PathBuf,
    api_ca_file: PathBuf,
    /// Holds the CA files; removed on drop.
    _files: tempfile::TempDir,
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis()).unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl FakeOpenUnison {
    pub fn start(config: FakeConfig) -> FakeOpenUnison {
        let ca = if config.expired_ca {
            TestCa::generate_expired("fake-openunison-test-ca")
        } else {
            TestCa::generate("fake-openunison-test-ca")
        };
        let oversized_api_ca = config.oversized_api_ca.then(|| TestCa::generate_oversized("fake-kubernetes-test-ca"));
        let api_ca = oversized_api_ca.as_ref().unwrap_or(&ca);
        let ou_identity: ServerIdentity = if config.self_signed {
            pki::self_signed_ca_identity("fake-openunison")
        } else if config.self_signed_leaf {
            pki::self_signed_leaf_identity("unison-ca")
        } else {
            ca.issue_leaf("fake-openunison")
        };
        let listener = TlsServer::bind_loopback();
        let host = format!("127.0.0.1:{}", listener.local_addr().expect("listener address").port());
        let ou_host = match &config.ou_host_name {
            Some(name) => format!("{name}:{}", listener.local_addr().expect("listener address").port()),
            None => host.clone(),
        };

        let (api, api_server_url) = match &config.api_server_url {
            Some(url) => (None, url.clone()),
            None => {
                let identity =
                    if config.impersonation { ou_identity.clone() } else { api_ca.issue_leaf("fake-kubernetes-api") };
                let api = FakeKubeApi::start_with_clock(
                    identity,
                    format!("https://{ou_host}/auth/idp/k8sIdp"),
                    config.clock_offset_secs,
                );
                let url = api.url();
                (Some(api), url)
            }
        };
        let api_ca_pem = if config.impersonation { ou_identity.trust_pem.clone() } else { api_ca.pem.clone() };

        let files = tempfile::Builder::new().prefix("fake-openunison-").tempdir().expect("temporary directory");
        let ca_file = files.path().join("openunison-ca.pem");
        std::fs::write(&ca_file, &ou_identity.trust_pem).expect("write the CA file");
        let api_ca_file = files.path().join("kubernetes-ca.pem");
        std::fs::write(&api_ca_file, &api_ca_pem).expect("write the API CA file");

        let shared = Arc::new(Shared {
            redirect_uri: format!("http://127.0.0.1:{}/redirect", config.redirect_port),
            redirect_port: config.redirect_port,
            host,
            ou_host,
            cluster_name: config.cluster_name.clone(),
            display_name: config.display_name.clone(),
            api_server_url,
            ou_ca_pem: config.include_ou_ca.then(|| ou_identity.trust_pem.clone()),
            api_ca_pem: config.include_api_ca.then_some(api_ca_pem),
            signer: Signer::published(),
            clock_offset_secs: config.clock_offset_secs,
            live: Mutex::new(Live {
                token_lifetime_secs: config.token_lifetime_secs,
                grace_period_ms: config.grace_period_ms,
                inactivity_timeout_secs: config.inactivity_timeout_secs,
                refresh_delay: config.refresh_delay,
                refreshes_held: false,
                faults: Vec::new(),
            }),
            state: Mutex::new(State::default()),
        });
        let handler_shared = shared.clone();
        let handler: server::Handler = Arc::new(move |request| {
            let shared = handler_shared.clone();
            Box::pin(async move { shared.handle(request).await })
        });
        let server = TlsServer::start("openunison", listener, ou_identity.server_config(), handler);
        FakeOpenUnison { server, api, shared, ca_file, api_ca_file, _files: files }
    }

    /// `127.0.0.1:PORT`, what `--host` takes.
    pub fn host(&self) -> String {
        self.shared.host.clone()
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// `https://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("https://{}", self.shared.host)
    }

    /// `https://HOST/auth/idp/k8s-login-cli`, for requests that reach the
    /// fake as `host()` (the issuer follows the request's `Host` header).
    pub fn cli_issuer(&self) -> String {
        format!("https://{}/auth/idp/k8s-login-cli", self.shared.host)
    }

    /// `network.openunison_host` (`host()` unless configured).
    pub fn ou_host(&self) -> String {
        self.shared.ou_host.clone()
    }

    /// `https://OU_HOST/auth/idp/k8sIdp`
    pub fn k8s_issuer(&self) -> String {
        self.shared.k8s_issuer()
    }

    /// The exact registered redirect URI.
    pub fn redirect_uri(&self) -> String {
        self.shared.redirect_uri.clone()
    }

    pub fn redirect_port(&self) -> u16 {
        self.shared.redirect_port
    }

    /// The PEM file to pass as `--certificate-authority` (the CA, or the
    /// self-signed server certificate itself).
    pub fn ca_file(&self) -> &Path {
        &self.ca_file
    }

    pub fn ca_pem(&self) -> String {
        std::fs::read_to_string(&self.ca_file).expect("read the CA file")
    }

    /// The CA of the fake Kubernetes API server.
    pub fn api_ca_file(&self) -> &Path {
        &self.api_ca_file
    }

    /// What the bootstrap JSON gives as the API server URL.
    pub fn api_server_url(&self) -> String {
        self.shared.api_server_url.clone()
    }

    /// The fake Kubernetes API server, unless `api_server_url` was configured.
    pub fn api(&self) -> &FakeKubeApi {
        self.api.as_ref().expect("this fake was started with an external api_server_url")
    }

    pub fn cluster_name(&self) -> &str {
        &self.shared.cluster_name
    }

    pub fn display_name(&self) -> &str {
        &self.shared.display_name
    }

    pub fn set_grace_period_ms(&self, millis: u64) {
        lock(&self.shared.live).grace_period_ms = millis;
    }

    pub fn set_token_lifetime_secs(&self, secs: u64) {
        lock(&self.shared.live).token_lifetime_secs = secs;
    }

    pub fn set_refresh_delay(&self, delay: Duration) {
        lock(&self.shared.live).refresh_delay = delay;
    }

    /// While `true`, refresh requests that arrive are counted and then left
    /// waiting for an answer (up to a minute), so a test can act while one is
    /// surely on the server.
    pub fn hold_refreshes(&self, hold: bool) {
        lock(&self.shared.live).refreshes_held = hold;
    }

    pub fn set_inactivity_timeout_secs(&self, secs: u64) {
        lock(&self.shared.live).inactivity_timeout_secs = secs;
    }

    /// Switches a fault on (it stays on until cleared).
    pub fn set_fault(&self, fault: Fault) {
        let mut live = lock(&self.shared.live);
        if !live.faults.contains(&fault) {
            live.faults.push(fault);
        }
    }

    pub fn clear_fault(&self, fault: &Fault) {
        lock(&self.shared.live).faults.retain(|active| active != fault);
    }

    pub fn clear_faults(&self) {
        lock(&self.shared.live).faults.clear();
    }

    pub fn counters(&self) -> Counters {
        lock(&self.shared.state).counters.clone()
    }

    pub fn successful_refreshes(&self) -> u64 {
        self.counters().refreshes_ok
    }

    pub fn failed_refreshes(&self) -> u64 {
        self.counters().refreshes_failed
    }

    pub fn sessions_minted(&self) -> u64 {
        self.counters().sessions_minted
    }

    pub fn authorizations(&self) -> u64 {
        self.counters().authorizations
    }

    pub fn code_exchanges(&self) -> u64 {
        self.counters().code_exchanges
    }

    /// The `Host` headers the plugin sent to the code exchange and the bootstrap, in order.
    pub fn host_headers(&self) -> Vec<String> {
        self.counters().host_headers
    }

    pub fn cli_login_hits(&self) -> u64 {
        self.counters().cli_login_hits
    }

    /// Every k8sIdp token endpoint call with its time and outcome.
    pub fn refresh_events(&self) -> Vec<RefreshEvent> {
        lock(&self.shared.state).refresh_events.clone()
    }

    /// Human-readable event lines (never containing tokens).
    pub fn events(&self) -> Vec<String> {
        lock(&self.shared.state).events.clone()
    }

    /// k8sIdp sessions that still exist (expired ones included until touched).
    pub fn live_sessions(&self) -> usize {
        lock(&self.shared.state).sessions.len()
    }

    /// Deletes every k8sIdp session, as a browser logout or an admin would.
    pub fn kill_all_sessions(&self) {
        let mut state = lock(&self.shared.state);
        let killed = state.sessions.len();
        state.sessions.clear();
        state.events.push(format!("all {killed} k8sIdp sessions deleted"));
    }

    /// Forgets browser sessions, so the next browser visit logs in again.
    pub fn forget_browser_sessions(&self) {
        lock(&self.shared.state).browser_sessions.clear();
    }

    /// Every id_token, access_token and refresh_token the fake ever issued.
    pub fn issued_tokens(&self) -> Vec<String> {
        lock(&self.shared.state).issued.clone()
    }

    /// Every authorization code the fake issued (used or not), for leak searches.
    pub fn issued_codes(&self) -> Vec<String> {
        lock(&self.shared.state).codes.keys().cloned().collect()
    }

    /// The refresh token a session currently holds, for tests that play client.
    pub fn current_refresh_tokens(&self) -> Vec<String> {
        lock(&self.shared.state).sessions.values().map(|session| session.refresh_token.clone()).collect()
    }

    /// Signs `claims` with the published key (for tests that forge tokens).
    pub fn sign(&self, claims: &Value) -> String {
        self.shared.signer.sign(claims)
    }

    /// Claims of a k8sIdp token for the configured user, valid for `lifetime_secs` from now.
    pub fn k8s_claims(&self, lifetime_secs: i64) -> Value {
        self.shared.user_claims(&self.shared.k8s_issuer(), K8S_CLIENT_ID, self.shared.now_secs(), lifetime_secs, None)
    }
}

impl Shared {
    /// The only `cli-local` issuer `/k8slogin/token/user` accepts.
    fn configured_cli_issuer(&self) -> String {
        format!("https://{}/auth/idp/k8s-login-cli", self.ou_host)
    }

    /// The `cli-local` issuer as OpenUnison builds it for a request: from its
    /// `Host` header, with `X-Forwarded-Port` in place of the port when given.
    fn request_cli_issuer(&self, request: &Request) -> String {
        format!("https://{}/auth/idp/k8s-login-cli", request_host(request).unwrap_or_else(|| self.host.clone()))
    }

    fn k8s_issuer(&self) -> String {
        format!("https://{}/auth/idp/k8sIdp", self.ou_host)
    }

    fn note_host_header(&self, request: &Request) {
        let host = request.header("host").unwrap_or("(none)").to_string();
        lock(&self.state).counters.host_headers.push(host);
    }

    fn live(&self) -> Live {
        lock(&self.live).clone()
    }

    /// The fake's own clock, Unix seconds.
    fn now_secs(&self) -> i64 {
        now_secs() + self.clock_offset_secs
    }

    fn has_fault(&self, fault: &Fault) -> bool {
        lock(&self.live).faults.contains(fault)
    }

    fn fault_matching<T>(&self, pick: impl Fn(&Fault) -> Option<T>) -> Option<T> {
        lock(&self.live).faults.iter().find_map(pick)
    }

    fn event(&self, state: &mut State, line: String) {
        state.events.push(line);
    }

    fn user_claims(&self, issuer: &str, audience: &str, now: i64, lifetime_secs: i64, nonce: Option<&str>) -> Value {
        let mut claims = json!({
            "iss": issuer,
            "aud": audience,
            "exp": now + lifetime_secs,
            "jti": random_hex::<16>(),
            "iat": now,
            "nbf": now - NBF_BACKDATE_SECS,
            "sub": self.display_name,
            "name": "Jane Doe",
            "groups": ["k8s-cluster-admins", "developers"],
            "preferred_username": self.display_name,
            "email": format!("{}@example.com", self.display_name),
        });
        if let Some(nonce) = nonce {
            claims["nonce"] = json!(nonce);
        }
        claims
    }

    fn k8s_token(&self, lifetime_secs: i64) -> String {
        self.signer.sign(&self.user_claims(&self.k8s_issuer(), K8S_CLIENT_ID, self.now_secs(), lifetime_secs, None))
    }

    async fn handle(self: Arc<Self>, request: Request) -> Response {
        let mut response = self.clone().route(request).await;
        // As every servlet container does, by the server's own clock.
        let offset = Duration::from_secs(self.clock_offset_secs.unsigned_abs());
        let clock = if self.clock_offset_secs >= 0 { SystemTime::now() + offset } else { SystemTime::now() - offset };
        let date = httpdate::fmt_http_date(clock);
        response.headers_mut().insert("date", date.parse().expect("a header value"));
        response
    }

    async fn route(self: Arc<Self>, request: Request) -> Response {
        let path = request.uri.path().to_string();
        let get = request.method == Method::GET;
        let post = request.method == Method::POST;
        if path.ends_with("/certs") && self.has_fault(&Fault::JwksStall) {
            tokio::time::sleep(STALL).await;
        }
        match path.as_str() {
            "/cli-login" if get => self.cli_login(&request),
            "/auth/idp/k8s-login-cli/.well-known/openid-configuration" if get => {
                self.discovery(&self.request_cli_issuer(&request))
            }
            "/auth/idp/k8sIdp/.well-known/openid-configuration" if get => self.discovery(&self.k8s_issuer()),
            "/auth/idp/k8s-login-cli/certs" | "/auth/idp/k8sIdp/certs" if get => self.certs(),
            "/auth/idp/k8s-login-cli/auth" if get => self.authorize(&request),
            "/auth/idp/k8s-login-cli/token" if post => self.code_exchange(&request).await,
            "/auth/idp/k8sIdp/token" if post => self.refresh(&request).await,
            "/k8slogin/token/user" if get => self.bootstrap(&request).await,
            "/auth/forms/cli-login-finished.jsp" if get => login_complete_page(),
            _ => server::response(404, &[("content-type", "text/html")], "<html><body>Not Found</body></html>"),
        }
    }

    /// Logs the browser in (automatically, as the configured user) and sends it
    /// to the loopback listener's root, as the chart's static redirect does.
    fn cli_login(&self, request: &Request) -> Response {
        let mut state = lock(&self.state);
        state.counters.cli_login_hits += 1;
        let cookie = self.ensure_browser_session(&mut state, request);
        self.event(&mut state, "GET /cli-login: browser sent to the loopback listener".into());
        let mut response = server::redirect(&format!("http://127.0.0.1:{}", self.redirect_port));
        if let Some(cookie) = cookie {
            response.headers_mut().append("set-cookie", cookie.parse().expect("cookie header"));
        }
        response
    }

    /// Returns a `Set-Cookie` value when a new browser session was created.
    fn ensure_browser_session(&self, state: &mut State, request: &Request) -> Option<String> {
        if request.cookie(SESSION_COOKIE).is_some_and(|id| state.browser_sessions.contains(&id)) {
            return None;
        }
        let id = random_hex::<16>();
        state.browser_sessions.insert(id.clone());
        state.counters.browser_logins += 1;
        self.event(state, format!("browser logged in as {}", self.display_name));
        Some(format!("{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly"))
    }

    fn discovery(&self, issuer: &str) -> Response {
        if let Some(status) = self.fault_matching(|fault| match fault {
            Fault::DiscoveryStatus(status) => Some(*status),
            _ => None,
        }) {
            return server::empty_json_error(status);
        }
        let document = json!({
            "issuer": issuer,
            "authorization_endpoint": format!("{issuer}/auth"),
            "token_endpoint": format!("{issuer}/token"),
            "userinfo_endpoint": format!("{issuer}/userinfo"),
            "revocation_endpoint": format!("{issuer}/revoke"),
            "jwks_uri": format!("{issuer}/certs"),
            "response_types_supported": ["code", "token", "id_token", "code id_token", "code token", "code id_token token", "token id_token", "none"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post"],
            "claims_supported": ["sub", "aud", "iss", "exp", "name", "preferred_username", "email", "groups"],
            "code_challenge_methods_supported": ["plain", "S256"],
        });
        let pretty = serde_json::to_string_pretty(&document).expect("JSON serialises");
        server::response(200, &[("content-type", "application/json")], pretty)
    }

    fn certs(&self) -> Response {
        if let Some(status) = self.fault_matching(|fault| match fault {
            Fault::JwksStatus(status) => Some(*status),
            _ => None,
        }) {
            return server::empty_json_error(status);
        }
        server::json(200, &self.signer.jwks())
    }

    /// `GET /auth/idp/k8s-login-cli/auth`: checks in the real server's order,
    /// answering errors by redirecting to the given `redirect_uri`.
    fn authorize(&self, request: &Request) -> Response {
        let param = |name: &str| request.query_param(name).filter(|value| !value.is_empty());
        let Some(redirect_uri) = param("redirect_uri") else {
            return server::response(400, &[("content-type", "text/plain")], "redirect_uri missing");
        };
        let back = |query: String| server::redirect(&format!("{redirect_uri}?{query}"));
        let error = |code: &str| back(format!("error={code}"));
        let Some(mut state_param) = param("state") else {
            return error("state_missing");
        };
        if param("client_id").as_deref() != Some(CLI_CLIENT_ID) || redirect_uri != self.redirect_uri {
            return error("unauthorized_client");
        }
        if param("response_type").as_deref() != Some("code") {
            return error("unsupported_response_type");
        }
        if param("scope").as_deref().and_then(|scope| scope.split(' ').next()) != Some("openid") {
            return error("invalid_scope");
        }
        let challenge = param("code_challenge").map(|challenge| {
            let method = match param("code_challenge_method") {
                Some(method) if method.eq_ignore_ascii_case("S256") => PkceMethod::S256,
                _ => PkceMethod::Plain,
            };
            (challenge, method)
        });
        let nonce = param("nonce").unwrap_or_else(random_hex::<16>);

        let mut state = lock(&self.state);
        let cookie = self.ensure_browser_session(&mut state, request);
        if let Some(code) = self.fault_matching(|fault| match fault {
            Fault::AuthorizeError(code) => Some(code.clone()),
            _ => None,
        }) {
            return back(format!("error={}&state={}", encode(&code), encode(&state_param)));
        }
        if let Some((code, description)) = self.fault_matching(|fault| match fault {
            Fault::AuthorizeErrorWithoutState { code, description } => Some((code.clone(), description.clone())),
            _ => None,
        }) {
            let description = if description.is_empty() {
                String::new()
            } else {
                format!("&error_description={}", encode(&description))
            };
            return back(format!("error={}{description}", encode(&code)));
        }
        if self.has_fault(&Fault::AuthorizeWrongState) {
            state_param = random_hex::<16>();
        }
        let code = authorization_code();
        state.codes.insert(
            code.clone(),
            CodeGrant { client_id: CLI_CLIENT_ID.into(), nonce, challenge, issued_ms: now_ms(), used: false },
        );
        state.counters.authorizations += 1;
        self.event(&mut state, "authorization: code issued".into());
        let mut response = back(format!("code={}&state={}", encode(&code), encode(&state_param)));
        if let Some(cookie) = cookie {
            response.headers_mut().append("set-cookie", cookie.parse().expect("cookie header"));
        }
        response
    }

    /// `POST /auth/idp/k8s-login-cli/token`.
    async fn code_exchange(&self, request: &Request) -> Response {
        self.note_host_header(request);
        if self.has_fault(&Fault::CodeExchangeStall) {
            tokio::time::sleep(STALL).await;
        }
        let result = self.code_exchange_inner(request);
        let mut state = lock(&self.state);
        match result {
            Ok((body, tokens)) => {
                state.counters.code_exchanges += 1;
                remember_everywhere(&tokens);
                state.issued.extend(tokens);
                self.event(&mut state, "code exchange: cli-local tokens issued".into());
                server::json(200, &body)
            }
            Err((status, why)) => {
                state.counters.code_exchange_failures += 1;
                self.event(&mut state, format!("code exchange refused ({status}): {why}"));
                server::empty_json_error(status)
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn code_exchange_inner(&self, request: &Request) -> Result<(Value, Vec<String>), (u16, String)> {
        if let Some(status) = self.fault_matching(|fault| match fault {
            Fault::CodeExchangeStatus(status) => Some(*status),
            _ => None,
        }) {
            return Err((status, "injected fault".into()));
        }
        let grant_type = request.form_param("grant_type").ok_or((400, "grant_type missing".to_string()))?;
        let client_id = client_id(request).ok_or((401, "no client_id".to_string()))?;
        if grant_type == "refresh_token" {
            return Err((401, "cli-local sessions cannot be refreshed".into()));
        }
        let code = request.form_param("code").ok_or((403, "code missing".to_string()))?;
        let grant = {
            let mut state = lock(&self.state);
            let grant = state.codes.get_mut(&code).ok_or((403, "unknown code".to_string()))?;
            if now_ms().abs_diff(grant.issued_ms) > CODE_SKEW_MS {
                return Err((403, "code expired".into()));
            }
            if grant.used {
                return Err((403, "code already used".into()));
            }
            grant.used = true;
            (grant.client_id.clone(), grant.nonce.clone(), grant.challenge.clone())
        };
        let (grant_client, nonce, challenge) = grant;
        if grant_client != client_id {
            return Err((401, "client_id does not match the code".into()));
        }
        if let Some((challenge, method)) = challenge {
            let verifier = request.form_param("code_verifier").ok_or((400, "code_verifier missing".to_string()))?;
            let computed = match method {
                PkceMethod::S256 => {
                    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()))
                }
                PkceMethod::Plain => verifier,
            };
            if computed != challenge {
                return Err((400, "code_verifier does not match the challenge".into()));
            }
        }

        let now = self.now_secs();
        let issuer = self.request_cli_issuer(request);
        let mut claims = self.user_claims(&issuer, CLI_CLIENT_ID, now, CLI_TOKEN_LIFETIME_SECS, Some(&nonce));
        let access_token = self.signer.sign(&claims);
        if self.has_fault(&Fault::CliTokenWrongIss) {
            claims["iss"] = json!(issuer.replace("/k8s-login-cli", "/someone-else"));
        }
        if self.has_fault(&Fault::CliTokenWrongAud) {
            claims["aud"] = json!("someone-else");
        }
        if self.has_fault(&Fault::CliTokenExpired) {
            claims["iat"] = json!(now - 660);
            claims["exp"] = json!(now - 600);
        }
        if self.has_fault(&Fault::CliTokenWrongNonce) {
            claims["nonce"] = json!(random_hex::<16>());
        }
        let id_token = if self.has_fault(&Fault::CliTokenNotJwt) {
            "this-is-not-a-jwt".to_string()
        } else if self.has_fault(&Fault::CliTokenAlgNone) {
            jwt::unsigned(&claims)
        } else if self.has_fault(&Fault::CliTokenUnknownKid) {
            Signer::unknown_kid().sign(&claims)
        } else if self.has_fault(&Fault::CliTokenBadSignature) {
            Signer::impostor().sign(&claims)
        } else {
            self.signer.sign(&claims)
        };
        // Useless (the cli-local IdP keeps no sessions), but the real server sends one.
        let refresh_token = refresh_token_for(&random_bytes::<16>());
        let mut body = json!({
            "access_token": access_token,
            "id_token": id_token,
            "refresh_token": refresh_token,
            "token_type": "Bearer",
            "expires_in": CLI_TOKEN_LIFETIME_SECS,
        });
        if self.has_fault(&Fault::CodeExchangeNoIdToken) {
            body.as_object_mut().expect("object").remove("id_token");
        }
        Ok((body, vec![access_token, id_token, refresh_token]))
    }

    /// `GET /k8slogin/token/user`: a new k8sIdp session per call.
    async fn bootstrap(&self, request: &Request) -> Response {
        self.note_host_header(request);
        if self.has_fault(&Fault::BootstrapStall) {
            tokio::time::sleep(STALL).await;
        }
        let token = match request.header("authorization") {
            Some(value) => value.split_once(' ').map_or(value, |(_, rest)| rest).to_string(),
            None => request.query_param("access_token").unwrap_or_default(),
        };
        let verdict = self.signer.verify(&token).and_then(|claims| {
            // `iss` must name the configured host exactly, whatever `Host` the request had.
            jwt::check_claims(&claims, &self.configured_cli_issuer(), CLI_CLIENT_ID, self.now_secs())?;
            if claims["sub"] != self.display_name.as_str() {
                return Err("unknown user".into());
            }
            Ok(())
        });
        if let Err(why) = verdict {
            let mut state = lock(&self.state);
            state.counters.bootstrap_failures += 1;
            self.event(&mut state, format!("/k8slogin/token/user refused: {why}"));
            // The servlet container's error page, as OpenUnison's 401 has one.
            return server::response(
                401,
                &[
                    ("www-authenticate", r#"Bearer realm="kubernetes",scope="auth""#),
                    ("content-type", "text/html;charset=UTF-8"),
                ],
                "<html><head><title>Error</title></head><body>Unauthorized</body></html>",
            );
        }
        if let Some(status) = self.fault_matching(|fault| match fault {
            Fault::BootstrapStatus(status) => Some(*status),
            _ => None,
        }) {
            return server::response(status, &[], "");
        }
        if self.has_fault(&Fault::BootstrapHtml200) {
            return server::response(
                200,
                &[("content-type", "text/html;charset=UTF-8")],
                "<!DOCTYPE html><html><head><title>Error</title></head><body><h1>Something went wrong</h1></body></html>",
            );
        }
        if self.has_fault(&Fault::BootstrapNotJson) {
            return server::response(
                200,
                &[("content-type", "application/json; charset=UTF-8")],
                "displayName=jdoe; token=<none>\n",
            );
        }

        let live = self.live();
        let lifetime = live.token_lifetime_secs as i64;
        let session_id = random_bytes::<16>();
        let refresh_token = refresh_token_for(&session_id);
        let session_id_token = self.k8s_token(lifetime);
        let session_access_token = self.k8s_token(lifetime);
        // The body carries a separately generated id_token (same claims, new jti).
        let id_token = self.k8s_token(lifetime);
        {
            let mut state = lock(&self.state);
            state.next_session_label += 1;
            let label = state.next_session_label;
            state.sessions.insert(
                session_id,
                K8sSession {
                    label,
                    refresh_token: refresh_token.clone(),
                    id_token: session_id_token.clone(),
                    access_token: session_access_token.clone(),
                    expires_ms: now_ms() + u128::from(live.inactivity_timeout_secs) * 1000,
                    expired_tokens: Vec::new(),
                },
            );
            state.counters.sessions_minted += 1;
            let tokens = [refresh_token.clone(), session_id_token, session_access_token, id_token.clone()];
            remember_everywhere(&tokens);
            state.issued.extend(tokens);
            self.event(&mut state, format!("/k8slogin/token/user: k8sIdp session s{label} created"));
        }

        let mut server_url = self.api_server_url.clone();
        if self.has_fault(&Fault::BootstrapHttpServerUrl) {
            server_url = server_url.replacen("https://", "http://", 1);
        }
        if let Some(url) = self.fault_matching(|fault| match fault {
            Fault::BootstrapServerUrl(url) => Some(url.clone()),
            _ => None,
        }) {
            server_url = url;
        }
        let bad_pem = self.has_fault(&Fault::BootstrapBadCaPem);
        let pem = |pem: &String| {
            let pem = pki::crlf(pem);
            if bad_pem { pem[..pem.len() / 2].to_string() } else { pem }
        };
        let mut token_map: Vec<(String, Gson)> = vec![
            ("kubectl Command".into(), Gson::Str(self.cluster_name.clone())),
            (
                "Usage".into(),
                Gson::Str("Run the kubectl command to set your user-context and server connection".into()),
            ),
        ];
        if !self.has_fault(&Fault::BootstrapMissingServerUrl) {
            token_map.push(("kubectl Windows Command".into(), Gson::Str(server_url)));
        }
        if !self.has_fault(&Fault::BootstrapMissingIdToken) {
            token_map.push(("id_token".into(), Gson::Str(id_token)));
        }
        if !self.has_fault(&Fault::BootstrapMissingRefreshToken) {
            token_map.push(("refresh_token".into(), Gson::Str(refresh_token)));
        }
        if let Some(ca) = &self.ou_ca_pem {
            token_map.push(("OpenUnison Server CA Certificate".into(), Gson::Str(pem(ca))));
        }
        if let Some(ca) = &self.api_ca_pem {
            token_map.push(("Kubernetes API Server CA Certificate".into(), Gson::Str(pem(ca))));
        }
        let mut top: Vec<(String, Gson)> = vec![("displayName".into(), Gson::Str(self.display_name.clone()))];
        if self.has_fault(&Fault::BootstrapExtraFields) {
            token_map.push(("ou login plugin".into(), Gson::Str("kubectl oulogin --host=<host>".into())));
            token_map.push(("something new".into(), Gson::Str("x=1&y=2".into())));
            top.push(("schemaVersion".into(), Gson::Raw("2".into())));
            top.push(("extra".into(), Gson::Object(vec![("nested".into(), Gson::Str("value".into()))])));
        }
        top.push(("token".into(), Gson::Object(token_map)));
        if self.has_fault(&Fault::BootstrapHuge) {
            top.push(("padding".into(), Gson::Str("A".repeat(HUGE_BODY_BYTES))));
        }
        let body = format!("{}\n", Gson::Object(top).write());
        server::response(
            200,
            &[
                ("content-type", "application/json; charset=UTF-8"),
                ("cache-control", "no-cache, no-store, must-revalidate"),
                ("pragma", "no-cache"),
                ("expires", "0"),
            ],
            body,
        )
    }

    /// `POST /auth/idp/k8sIdp/token`: refresh with one-time refresh tokens.
    async fn refresh(&self, request: &Request) -> Response {
        lock(&self.state).counters.refresh_requests += 1;
        let live = self.live();
        if self.has_fault(&Fault::RefreshStall) {
            tokio::time::sleep(STALL).await;
        }
        if !live.refresh_delay.is_zero() {
            tokio::time::sleep(live.refresh_delay).await;
        }
        for _ in 0..6000 {
            if !lock(&self.live).refreshes_held {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut state = lock(&self.state);
        let outcome = self.refresh_locked(&mut state, request, &live);
        let (response, event) = match outcome {
            Ok(RefreshAnswer { body, outcome, label }) => {
                match outcome {
                    RefreshOutcome::Rotated => state.counters.refreshes_ok += 1,
                    RefreshOutcome::Grace => state.counters.refreshes_grace += 1,
                    RefreshOutcome::Rejected => unreachable!("rejections are errors"),
                }
                let what =
                    if outcome == RefreshOutcome::Grace { "replay within grace period answered" } else { "refreshed" };
                (server::json(200, &body), (format!("refresh: session s{label} {what}"), outcome))
            }
            Err((status, why)) => {
                state.counters.refreshes_failed += 1;
                let response = if status == 500 && why == "no client_id" {
                    server::json(500, &json!({"error": "invalid_request"}))
                } else {
                    server::empty_json_error(status)
                };
                (response, (format!("refresh refused ({status}): {why}"), RefreshOutcome::Rejected))
            }
        };
        state.refresh_events.push(RefreshEvent { at: SystemTime::now(), outcome: event.1 });
        self.event(&mut state, event.0);
        response
    }

    fn refresh_locked(
        &self,
        state: &mut State,
        request: &Request,
        live: &Live,
    ) -> Result<RefreshAnswer, (u16, String)> {
        if let Some(status) = self.fault_matching(|fault| match fault {
            Fault::RefreshStatus(status) => Some(*status),
            _ => None,
        }) {
            return Err((status, "injected fault".into()));
        }
        {
            let mut live = lock(&self.live);
            if live.faults.contains(&Fault::RefreshTransient401) {
                live.faults.retain(|fault| *fault != Fault::RefreshTransient401);
                return Err((401, "transient failure (session store write failed); token not spent".into()));
            }
        }
        request.form_param("grant_type").ok_or((400, "grant_type missing".to_string()))?;
        let client_id = client_id(request).ok_or((500, "no client_id".to_string()))?;
        if client_id != K8S_CLIENT_ID {
            return Err((401, format!("unknown client {client_id:?}")));
        }
        // Without a refresh token the real server treats the call as a code exchange.
        let presented = request.form_param("refresh_token").ok_or((403, "no refresh_token and no code".to_string()))?;
        let session_id = session_id_of(&presented).ok_or((401, "refresh token does not decode".to_string()))?;
        let now = now_ms();
        let session = state.sessions.get_mut(&session_id).ok_or((401, "session does not exist".to_string()))?;
        let label = session.label;
        if presented != session.refresh_token {
            let grace = u128::from(live.grace_period_ms);
            let within_grace = grace > 0
                && session
                    .expired_tokens
                    .iter()
                    .any(|(token, rotated_ms)| *token == presented && rotated_ms + grace > now);
            if !within_grace {
                return Err((401, format!("session s{label}: refresh token already used")));
            }
            let seconds_left = session.expires_ms.saturating_sub(now) / 1000;
            let body = json!({
                "access_token": session.access_token,
                "id_token": session.id_token,
                "refresh_token": session.refresh_token,
                "token_type": "Bearer",
                "expires_in": seconds_left as u64,
            });
            return Ok(RefreshAnswer { body, outcome: RefreshOutcome::Grace, label });
        }
        if session.expires_ms <= now {
            state.sessions.remove(&session_id);
            return Err((401, format!("session s{label} expired by inactivity; deleted")));
        }
        let grace = u128::from(live.grace_period_ms);
        session.expired_tokens.retain(|(_, rotated_ms)| rotated_ms + grace > now);
        if grace > 0 {
            session.expired_tokens.push((presented, now));
        }
        let lifetime = live.token_lifetime_secs as i64;
        session.id_token = self.k8s_token(lifetime);
        session.access_token = self.k8s_token(lifetime);
        session.refresh_token = refresh_token_for(&session_id);
        session.expires_ms = now + u128::from(live.inactivity_timeout_secs) * 1000;
        let mut body = json!({
            "access_token": session.access_token,
            "expires_in": lifetime,
            "token_type": "Bearer",
            "id_token": session.id_token,
            "refresh_token": session.refresh_token,
        });
        let issued = [session.id_token.clone(), session.access_token.clone(), session.refresh_token.clone()];
        remember_everywhere(&issued);
        state.issued.extend(issued);
        if self.has_fault(&Fault::RefreshNoIdToken) {
            body.as_object_mut().expect("object").remove("id_token");
        }
        Ok(RefreshAnswer { body, outcome: RefreshOutcome::Rotated, label })
    }
}

/// Every token any fake in this process issued, for a leak search over the
/// output of every test (a fake's own list goes when the fake does).
static ISSUED_EVERYWHERE: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn remember_everywhere(tokens: &[String]) {
    lock(&ISSUED_EVERYWHERE).extend(tokens.iter().cloned());
}

/// Every id_token, access_token and refresh_token any fake in this process has issued so far.
pub fn issued_by_any_fake() -> Vec<String> {
    lock(&ISSUED_EVERYWHERE).clone()
}

/// An error status and why (for the event log).
type Refusal = (u16, String);

struct RefreshAnswer {
    body: Value,
    outcome: RefreshOutcome,
    label: u64,
}

/// `client_id` from the form, else the user of HTTP Basic (`kubernetes:`).
fn client_id(request: &Request) -> Option<String> {
    if let Some(client_id) = request.form_param("client_id") {
        return Some(client_id);
    }
    let basic = request.header("authorization")?.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
    let user = decoded.split_once(':').map_or(decoded.as_str(), |(user, _)| user);
    // RFC 6749 2.3.1: the client id is form-encoded inside Basic.
    Some(url::form_urlencoded::parse(format!("u={user}").as_bytes()).next()?.1.into_owned())
}

/// A refresh token that carries the session id, padded standard base64 like
/// the real ones (so `=`, `+` and `/` all occur and Gson's `\u003d` shows).
fn refresh_token_for(session_id: &[u8; 16]) -> String {
    let mut bytes = session_id.to_vec();
    bytes.extend_from_slice(&random_bytes::<19>());
    STANDARD.encode(bytes)
}

fn session_id_of(refresh_token: &str) -> Option<[u8; 16]> {
    let bytes = STANDARD.decode(refresh_token).ok()?;
    bytes.get(..16)?.try_into().ok()
}

/// A code like OpenUnison's: standard Base64 (its deflated, encrypted
/// last-mile token), here made to contain `+`, `/` and `=` every time, so that
/// every login shows the plugin round-trips them through the URL-encoded
/// redirect and the form-encoded exchange.
fn authorization_code() -> String {
    let mut bytes = vec![0xfb, 0xef, 0xff];
    bytes.extend_from_slice(&random_bytes::<29>());
    STANDARD.encode(bytes)
}

/// The `Host` header of `request`, the port replaced by `X-Forwarded-Port`
/// when that is given (and dropped when it is 443), as OpenUnison's
/// `ProxyTools` builds its URLs.
fn request_host(request: &Request) -> Option<String> {
    let host = request.header("host")?.to_string();
    let Some(port) = request.header("x-forwarded-port") else { return Some(host) };
    let name = match host.rsplit_once(':') {
        Some((name, digits)) if digits.bytes().all(|byte| byte.is_ascii_digit()) => name.to_string(),
        _ => host,
    };
    Some(if port == "443" { name } else { format!("{name}:{port}") })
}

fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

fn login_complete_page() -> Response {
    server::response(
        200,
        &[("content-type", "text/html;charset=UTF-8")],
        "<!DOCTYPE html><html><head><title>OpenUnison Login</title></head>\
         <body><h1>Login Complete</h1><p>You may close this window</p>\
         <button onclick=\"window.close()\">Close this window</button></body></html>",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_standard_base64_with_every_special_character() {
        let code = authorization_code();
        assert!(code.starts_with("++//") && code.ends_with('=') && !code.ends_with("=="), "{code}");
        assert_eq!(STANDARD.decode(&code).unwrap().len(), 32);
        assert_eq!(encode(&code)[..12].to_string(), "%2B%2B%2F%2F");
    }

    #[test]
    fn refresh_tokens_carry_their_session_and_padding() {
        let id = random_bytes::<16>();
        let token = refresh_token_for(&id);
        assert!(token.ends_with('=') && !token.ends_with("=="));
        assert_eq!(session_id_of(&token), Some(id));
        assert_ne!(refresh_token_for(&id), token);
    }
}
