//! `kubectl oulogin token`: the exec credential plugin. Prints exactly one
//! ExecCredential on stdout. Under the session lock it hands out the cached
//! id_token while it is fresh (the hot path: a lock, two small reads and one
//! small write; no async runtime, HTTP client or trust store), and otherwise
//! refreshes, or, when OpenUnison says the session is gone, logs in again in
//! the browser once for every process waiting on the lock.

use std::path::PathBuf;
use std::time::SystemTime;

use crate::error::Error;
use crate::files::{self, Lock};
use crate::openunison::clock::Receipt;
use crate::platform::process::HeldSignals;
use crate::settings::{BrowserChoice, BrowserEnvironment, TokenSettings};

use super::SessionError;
use super::cooldown;
use super::expiry::{self, Lifetime};
use super::handouts::{Fingerprint, Handouts, Kind, Record, fingerprint};
use super::store::{self, ApiServer, Secret, Session, SessionLocation};
use super::verify::Verdict;

/// The ExecCredential versions client-go may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecApiVersion {
    V1,
    V1Beta1,
}

impl ExecApiVersion {
    pub const V1_NAME: &str = "client.authentication.k8s.io/v1";
    pub const V1BETA1_NAME: &str = "client.authentication.k8s.io/v1beta1";

    /// The version `KUBERNETES_EXEC_INFO` asks for. Absent or unreadable means
    /// an old client: v1beta1. A version we do not speak is an error, since
    /// client-go rejects an answer in another version anyway.
    pub fn from_exec_info(exec_info: Option<&str>) -> Result<ExecApiVersion, SessionError> {
        let requested = exec_info
            .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
            .and_then(|value| value.get("apiVersion").and_then(|version| version.as_str()).map(str::to_string));
        match requested.as_deref() {
            None => Ok(ExecApiVersion::V1Beta1),
            Some(Self::V1_NAME) => Ok(ExecApiVersion::V1),
            Some(Self::V1BETA1_NAME) => Ok(ExecApiVersion::V1Beta1),
            Some(other) => Err(SessionError::UnsupportedExecApiVersion { version: other.to_string() }),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExecApiVersion::V1 => Self::V1_NAME,
            ExecApiVersion::V1Beta1 => Self::V1BETA1_NAME,
        }
    }
}

/// The one JSON document `token` prints.
pub fn exec_credential(version: ExecApiVersion, token: &str, expires_at: i64) -> String {
    let document = serde_json::json!({
        "kind": "ExecCredential",
        "apiVersion": version.as_str(),
        "spec": {"interactive": false},
        "status": {"token": token, "expirationTimestamp": expiry::rfc3339(expires_at)},
    });
    format!("{document}\n")
}

/// Why no browser may be opened for a session that remembers `browser`, if so.
fn browser_refusal(environment: &BrowserEnvironment, browser: &BrowserChoice) -> Option<&'static str> {
    if environment.forbidden {
        Some("`OULOGIN_NO_BROWSER=1` is set")
    } else if *browser == BrowserChoice::NoBrowser {
        Some("the session was created with `--no-browser`")
    } else if *browser == BrowserChoice::System && !environment.display.unwrap_or_else(is_wsl_kernel) {
        Some("there is no display to open a browser on (neither `DISPLAY` nor `WAYLAND_DISPLAY` is set)")
    } else {
        None
    }
}

/// A WSL kernel (started without WSL's variables) opens Windows' browser without an X display.
fn is_wsl_kernel() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease").is_ok_and(|text| text.to_lowercase().contains("microsoft"))
}

/// Everything `token` needs: its settings, and the process that runs it.
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub location: SessionLocation,
    /// `--host`, for messages that name the login command.
    pub host: Option<String>,
    /// `$KUBECACHEDIR/oulogin`: where login port locks live, also for isolated sessions.
    pub session_dir: PathBuf,
    /// `KUBERNETES_EXEC_INFO`.
    pub exec_info: Option<String>,
    pub browser_environment: BrowserEnvironment,
    /// The client process that runs us (the 401 heuristic's key).
    pub parent: u32,
}

impl TokenRequest {
    pub fn new(settings: TokenSettings) -> TokenRequest {
        TokenRequest {
            location: settings.location,
            host: settings.host,
            session_dir: settings.paths.session_dir,
            exec_info: settings.exec_info,
            browser_environment: settings.browser_environment,
            parent: crate::platform::process::parent_id(),
        }
    }
}

/// New tokens for a session, from a refresh or a browser login.
#[derive(Debug)]
pub struct Renewal {
    pub id_token: Secret,
    pub refresh_token: Secret,
    /// When the tokens arrived, and the server's clock then.
    pub receipt: Receipt,
    /// From a browser login: the OpenUnison CA of the bootstrap JSON.
    pub ou_ca_pem: Option<String>,
    /// From a browser login: the user's display name.
    pub user: Option<String>,
    /// From a browser login: the API server of the bootstrap JSON.
    pub api_server: Option<ApiServer>,
}

/// Why a refresh gave no tokens.
#[derive(Debug)]
pub enum RefreshFailure {
    /// `401`: the OpenUnison session is gone (spent refresh token, logout, timeout).
    SessionGone { url: String },
    /// Anything else (network, TLS, server error): the session may still be alive.
    Other(Error),
}

/// The network side of `token`, so the locking logic can be tested without a server.
pub trait Renewer {
    fn refresh(&self, session: &Session) -> Result<Renewal, RefreshFailure>;
    fn browser_login(&self, session: &Session, session_dir: &std::path::Path) -> Result<Renewal, Error>;
    /// Whether the API server takes `token`.
    fn verify(&self, api_server: &ApiServer, token: &Secret) -> Verdict;
}

/// Runs `kubectl oulogin token`.
pub fn run_token(request: TokenRequest) -> Result<(), Error> {
    let credential = issue(&request, &super::renewer::OpenUnison)?;
    // The session is saved by now; a reader that has gone is its own business.
    crate::output::stdout(credential)
}

/// The ExecCredential text for `request`, doing whatever the session needs.
pub fn issue(request: &TokenRequest, renewer: &dyn Renewer) -> Result<String, Error> {
    let started_us = unix_micros(SystemTime::now());
    let version = ExecApiVersion::from_exec_info(request.exec_info.as_deref())?;
    let location = &request.location;
    let with_host = |err: SessionError| match err {
        SessionError::Missing { path, isolated, .. } => {
            SessionError::Missing { path, isolated, host: request.host.clone() }
        }
        other => other,
    };
    store::check_dir(location).map_err(with_host)?;
    let mut lock = store::lock(location)?;
    let mut session = store::read_in_checked_dir(location).map_err(with_host)?;

    let now = SystemTime::now();
    let handouts_path = location.handouts_path();
    let mut handouts = Handouts::load(&handouts_path);
    handouts.prune(unix_micros(now));

    let cached =
        lifetime_of(&session.id_token, session.id_token_received).filter(|lifetime| expiry::is_fresh(*lifetime, now));
    let cached_fingerprint = fingerprint(session.id_token.expose());
    // The same parent asking again for the fresh token it holds may have seen a 401.
    let rejected = match cached {
        Some(lifetime) if handouts.suggests_rejection(request.parent, cached_fingerprint, started_us) => {
            rejection_confirmed(
                request.parent,
                &session,
                (cached_fingerprint, lifetime),
                &mut handouts,
                &mut lock,
                renewer,
            )
        }
        _ => false,
    };
    // The lifetime of the token handed out, its fingerprint, and whether a
    // rejection forced the refresh that brought it: the cached token's unless
    // a renewal replaced it.
    let (lifetime, handed_out, kind) = match cached {
        Some(lifetime) if !rejected => {
            crate::debug!("token: the cached token is fresh ({}); handing it out", describe_lifetime(lifetime, now));
            (lifetime, cached_fingerprint, Kind::Handed)
        }
        Some(lifetime) => {
            crate::debug!(
                "token: the cached token is fresh ({}), but process {} asks again for it and it looks rejected: \
                 refreshing",
                describe_lifetime(lifetime, now),
                request.parent
            );
            match renew(request, &mut session, &mut lock, renewer) {
                Ok(renewed) => (renewed, fingerprint(session.id_token.expose()), Kind::Forced),
                // The token looked rejected but we cannot get another; the cached one
                // is still within its lifetime, so it is the best answer there is.
                Err(Renewed::Unreachable(err)) => {
                    crate::output::warn_error_with(
                        format!(
                            "could not refresh the session for `{}`, so the cached token is handed out",
                            session.host
                        ),
                        &err,
                    );
                    (lifetime, cached_fingerprint, Kind::Handed)
                }
                Err(Renewed::Failed(err)) => return Err(err),
            }
        }
        None => {
            crate::debug!("token: the cached token is stale or unreadable; refreshing");
            let renewed = renew(request, &mut session, &mut lock, renewer).map_err(Renewed::into_error)?;
            (renewed, fingerprint(session.id_token.expose()), Kind::Handed)
        }
    };

    let now = SystemTime::now();
    let expires_at = expiry::reported_expiry(lifetime, now);
    handouts.record(Record {
        parent: request.parent,
        token: handed_out,
        at_us: unix_micros(now),
        until: expiry::expiry_point(lifetime),
        kind,
    });
    // A hint only: failing to remember a handout must not fail the handout.
    let _ = handouts.save(&handouts_path);
    drop(lock);
    Ok(exec_credential(version, session.id_token.expose(), expires_at))
}

/// The same parent asks again for the fresh token `cached` it was handed:
/// client-go after a 401, or a client that runs the plugin before every
/// request (the Python client counts a credential as expired five minutes
/// before its `expirationTimestamp`). Whether to take it as a rejection: not
/// when the API server took the token a moment ago or takes it now (one
/// `GET /api`); when it cannot be asked (a session from before it was
/// recorded, or no answer), at most one forced refresh per parent per token
/// lifetime, so that such a client costs two refreshes per lifetime, not one
/// per request.
fn rejection_confirmed(
    parent: u32,
    session: &Session,
    (cached, lifetime): (Fingerprint, Lifetime),
    handouts: &mut Handouts,
    lock: &mut Lock,
    renewer: &dyn Renewer,
) -> bool {
    if handouts.verified_recently(cached, unix_micros(SystemTime::now())) {
        return false;
    }
    if let Some(api_server) = &session.api_server {
        lock.set_holder(files::HOLDER_VERIFY);
        match renewer.verify(api_server, &session.id_token) {
            Verdict::Rejected => return true,
            Verdict::Accepted => {
                handouts.record(Record {
                    parent,
                    token: cached,
                    at_us: unix_micros(SystemTime::now()),
                    until: expiry::expiry_point(lifetime),
                    kind: Kind::Verified,
                });
                return false;
            }
            Verdict::Unknown => {}
        }
    }
    !handouts.had_forced_refresh(parent)
}

/// How getting new tokens failed.
enum Renewed {
    /// The refresh failed for a reason other than a dead session.
    Unreachable(Error),
    /// The session is dead and could not be brought back, or it could not be stored.
    Failed(Error),
}

impl Renewed {
    fn into_error(self) -> Error {
        match self {
            Renewed::Unreachable(err) | Renewed::Failed(err) => err,
        }
    }
}

/// Refreshes, or logs in again when the session is gone; stores the result
/// before anything is printed. The caller holds the session lock throughout,
/// so this happens once for every process waiting on it.
fn renew(
    request: &TokenRequest,
    session: &mut Session,
    lock: &mut Lock,
    renewer: &dyn Renewer,
) -> Result<Lifetime, Renewed> {
    let location = &request.location;
    lock.set_holder(files::HOLDER_REFRESH);
    // From sending the refresh until its tokens are saved, Ctrl-C must not
    // strike: the server spends the old refresh token as it answers.
    let mut held = HeldSignals::hold();
    let renewal = match renewer.refresh(session) {
        Ok(renewal) => {
            crate::debug!("token: refreshed");
            renewal
        }
        Err(failure) => {
            // Nothing to save: a signal that came meanwhile ends us now, and
            // a browser login keeps its own Ctrl-C.
            stop_if_signalled(&mut held).map_err(Renewed::Failed)?;
            match failure {
                RefreshFailure::Other(err) => {
                    crate::debug!("token: the refresh failed; the session is kept");
                    return Err(Renewed::Unreachable(err));
                }
                RefreshFailure::SessionGone { url } => {
                    crate::debug!(
                        "token: {} refused the refresh token (401): the session is gone",
                        crate::debug::redact_url(&url)
                    );
                    login_again(request, session, &url, lock, renewer).map_err(Renewed::Failed)?
                }
            }
        }
    };
    let lifetime = lifetime_of(&renewal.id_token, Some(renewal.receipt))
        .ok_or_else(|| Renewed::Failed(SessionError::NoExpiry { host: session.host.to_string() }.into()))?;
    session.id_token = renewal.id_token;
    session.refresh_token = renewal.refresh_token;
    session.id_token_received = Some(renewal.receipt);
    if let Some(pem) = renewal.ou_ca_pem {
        session.trust.ca_pem = Some(pem);
    }
    if let Some(user) = renewal.user {
        session.user = user;
    }
    if let Some(api_server) = renewal.api_server {
        session.api_server = Some(api_server);
    }
    if let Err(err) = store::save(location, session) {
        // The server has already rotated the refresh token: the one on disk is
        // spent. Failing now would throw away a good id_token as well, so this
        // call still gets it; only the session is lost.
        crate::output::warn_error_with(
            format!("the new tokens for `{}` could not be saved", session.host),
            &Error::from(err),
        );
        crate::output::warn(
            "the session is not kept: this call gets the new token, and the next one will need a login",
        );
    }
    stop_if_signalled(&mut held).map_err(Renewed::Failed)?;
    Ok(lifetime)
}

/// Ends a hold of SIGINT, SIGTERM and SIGHUP; one that arrived during it
/// becomes the error that exits with 128 + its number.
pub(crate) fn stop_if_signalled(held: &mut HeldSignals) -> Result<(), Error> {
    match held.release() {
        Some(signal) => Err(SessionError::Interrupted { signal }.into()),
        None => Ok(()),
    }
}

/// The session is gone: one browser login, unless a recent one failed or no
/// browser may be opened.
fn login_again(
    request: &TokenRequest,
    session: &Session,
    refused_by: &str,
    lock: &mut Lock,
    renewer: &dyn Renewer,
) -> Result<Renewal, Error> {
    let location = &request.location;
    let host = session.host.to_string();
    let isolated = location.is_isolated();
    if let Some(left) = cooldown::remaining(location, SystemTime::now()) {
        crate::debug!(
            "token: a browser login failed {} s ago or less; no new one during the cool-down",
            left.as_secs()
        );
        let remembered = super::LoginFlags::of(session);
        return Err(SessionError::CoolingDown { host, left_secs: left.as_secs().max(1), isolated, remembered }.into());
    }
    if let Some(reason) = browser_refusal(&request.browser_environment, &session.browser) {
        crate::debug!("token: no browser login: {reason}");
        let remembered = super::LoginFlags::of(session);
        return Err(
            SessionError::Ended { host, refused_by: refused_by.to_string(), reason, isolated, remembered }.into()
        );
    }
    lock.set_holder(files::HOLDER_LOGIN);
    crate::debug!("token: starting a browser login with {}", session.browser.describe());
    crate::output::info(format!(
        "the OpenUnison session for `{host}` has ended (`{refused_by}` refused its refresh token); \
         logging in again in the browser"
    ));
    match renewer.browser_login(session, &request.session_dir) {
        Ok(renewal) => {
            cooldown::clear(location)?;
            Ok(renewal)
        }
        Err(err) => {
            // Without the marker every background caller would open its own tab.
            if let Err(marker) = cooldown::start(location) {
                crate::output::warn_error(&Error::from(marker));
            }
            Err(err)
        }
    }
}

/// `exp`/`iat` of an id_token received as `received` says; `None` when it is
/// no readable JWT (then it counts as stale).
fn lifetime_of(token: &Secret, received: Option<Receipt>) -> Option<Lifetime> {
    let times = crate::openunison::jwt::read_times(token.expose()).ok()?;
    Some(Lifetime { exp: times.exp, iat: times.iat, received })
}

/// "expires in 42 s" for debug lines.
fn describe_lifetime(lifetime: Lifetime, now: SystemTime) -> String {
    // By our clock, as freshness is judged: the skew the receipt showed taken out.
    let left_ms = expiry::local_expiry_ms(lifetime).saturating_sub(expiry::unix_millis(now));
    format!("expires in {} s, refresh margin {} ms", left_ms.div_euclid(1000), expiry::margin_ms(lifetime))
}

fn unix_micros(time: SystemTime) -> i64 {
    match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(since) => since.as_micros() as i64,
        Err(before) => -(before.duration().as_micros() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::store::tests::{private_dir, sample};
    use base64::Engine;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// An unsigned JWT with `exp`/`iat` relative to now, marked so tests can tell tokens apart.
    fn jwt(mark: &str, lifetime_secs: i64, age_secs: i64) -> String {
        let now = expiry::unix_millis(SystemTime::now()) / 1000;
        let iat = now - age_secs;
        let claims = serde_json::json!({"iat": iat, "exp": iat + lifetime_secs, "jti": mark});
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!("{}.{}.sig", engine.encode(br#"{"alg":"RS256"}"#), engine.encode(claims.to_string()))
    }

    #[derive(Default)]
    struct FakeOpenUnison {
        refreshes: AtomicUsize,
        logins: AtomicUsize,
        /// `None`: refresh works; `Some(true)`: session gone; `Some(false)`: unreachable.
        refresh_fails: Option<bool>,
        login_fails: bool,
        refresh_delay: Duration,
        refreshed_with: Mutex<Vec<String>>,
        /// Runs while the refresh is on the server.
        during_refresh: Option<Box<dyn Fn() + Send + Sync>>,
        /// What the API server says of every token (`None`: no answer).
        verdict: Option<Verdict>,
        verifications: AtomicUsize,
    }

    impl Renewer for FakeOpenUnison {
        fn refresh(&self, session: &Session) -> Result<Renewal, RefreshFailure> {
            std::thread::sleep(self.refresh_delay);
            if let Some(action) = &self.during_refresh {
                action();
            }
            let count = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
            self.refreshed_with.lock().unwrap().push(session.refresh_token.expose().to_string());
            match self.refresh_fails {
                Some(true) => Err(RefreshFailure::SessionGone { url: session.token_endpoint.clone() }),
                Some(false) => Err(RefreshFailure::Other(Error::usage("connection refused", None))),
                None => Ok(Renewal {
                    id_token: Secret::new(jwt(&format!("refreshed-{count}"), 60, 0)),
                    refresh_token: Secret::new(format!("rt-{count}")),
                    receipt: Receipt::now(),
                    ou_ca_pem: None,
                    user: None,
                    api_server: None,
                }),
            }
        }

        fn browser_login(&self, _session: &Session, _session_dir: &std::path::Path) -> Result<Renewal, Error> {
            let count = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
            if self.login_fails {
                return Err(Error::usage("the browser login timed out", None));
            }
            Ok(Renewal {
                id_token: Secret::new(jwt(&format!("login-{count}"), 60, 0)),
                refresh_token: Secret::new(format!("login-rt-{count}")),
                receipt: Receipt::now(),
                ou_ca_pem: Some("PEM".to_string()),
                user: Some("Jane Doe".to_string()),
                api_server: Some(ApiServer { url: "https://k8s.example.com".to_string(), ca_pem: None }),
            })
        }

        fn verify(&self, _api_server: &ApiServer, _token: &Secret) -> Verdict {
            self.verifications.fetch_add(1, Ordering::SeqCst);
            self.verdict.unwrap_or(Verdict::Unknown)
        }
    }

    struct Setup {
        _temp: tempfile::TempDir,
        request: TokenRequest,
    }

    fn setup(id_token: &str, browser: BrowserChoice) -> Setup {
        let (temp, dir) = private_dir();
        let location = SessionLocation::named(&dir, "ou.example.com_8443").unwrap();
        let mut session = sample(id_token, "rt-0");
        session.browser = browser;
        store::save(&location, &session).unwrap();
        let request = TokenRequest {
            location,
            host: Some("ou.example.com:8443".to_string()),
            session_dir: dir,
            exec_info: Some(r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#.to_string()),
            browser_environment: BrowserEnvironment { forbidden: false, display: Some(true) },
            parent: 4242,
        };
        Setup { _temp: temp, request }
    }

    fn token_of(credential: &str) -> String {
        let value: serde_json::Value = serde_json::from_str(credential).unwrap();
        value["status"]["token"].as_str().unwrap().to_string()
    }

    fn stored(request: &TokenRequest) -> Session {
        store::load(&request.location).unwrap()
    }

    #[test]
    fn exec_info_versions_are_echoed_and_unknown_ones_refused() {
        let v1 =
            r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#;
        assert_eq!(ExecApiVersion::from_exec_info(Some(v1)).unwrap(), ExecApiVersion::V1);
        let beta = r#"{"apiVersion":"client.authentication.k8s.io/v1beta1"}"#;
        assert_eq!(ExecApiVersion::from_exec_info(Some(beta)).unwrap(), ExecApiVersion::V1Beta1);
        assert_eq!(ExecApiVersion::from_exec_info(None).unwrap(), ExecApiVersion::V1Beta1);
        assert_eq!(ExecApiVersion::from_exec_info(Some("{oops")).unwrap(), ExecApiVersion::V1Beta1);
        let alpha = r#"{"apiVersion":"client.authentication.k8s.io/v1alpha1"}"#;
        assert!(matches!(
            ExecApiVersion::from_exec_info(Some(alpha)),
            Err(SessionError::UnsupportedExecApiVersion { .. })
        ));
    }

    #[test]
    fn the_exec_credential_is_one_exact_document() {
        assert_eq!(
            exec_credential(ExecApiVersion::V1, "tok", 1_700_000_000),
            "{\"kind\":\"ExecCredential\",\"apiVersion\":\"client.authentication.k8s.io/v1\",\
             \"spec\":{\"interactive\":false},\"status\":{\"token\":\"tok\",\
             \"expirationTimestamp\":\"2023-11-14T22:13:20Z\"}}\n"
        );
        assert!(exec_credential(ExecApiVersion::V1Beta1, "t", 0).contains("\"client.authentication.k8s.io/v1beta1\""));
    }

    #[test]
    fn a_fresh_token_is_handed_out_without_a_refresh() {
        let cached = jwt("cached", 60, 5);
        let setup = setup(&cached, BrowserChoice::System);
        let fake = FakeOpenUnison::default();
        let credential = issue(&setup.request, &fake).unwrap();
        assert_eq!(token_of(&credential), cached);
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 0);
        let lifetime = lifetime_of(&Secret::new(cached), None).unwrap();
        assert!(credential.contains(&expiry::rfc3339(lifetime.exp - 10)), "{credential}");
    }

    #[test]
    fn a_stale_token_is_refreshed_and_the_rotated_session_stored() {
        let setup = setup(&jwt("old", 60, 55), BrowserChoice::System);
        let fake = FakeOpenUnison::default();
        let credential = issue(&setup.request, &fake).unwrap();
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1);
        assert_eq!(*fake.refreshed_with.lock().unwrap(), ["rt-0"]);
        let session = stored(&setup.request);
        assert_eq!(session.refresh_token.expose(), "rt-1");
        assert_eq!(token_of(&credential), session.id_token.expose());
        // Another client now gets the refreshed token without a second refresh.
        let other = TokenRequest { parent: 1, ..setup.request.clone() };
        assert_eq!(token_of(&issue(&other, &fake).unwrap()), session.id_token.expose());
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn the_same_parent_asking_again_for_a_fresh_token_forces_a_refresh() {
        let setup = setup(&jwt("cached", 60, 0), BrowserChoice::System);
        let fake = FakeOpenUnison::default();
        let first = token_of(&issue(&setup.request, &fake).unwrap());
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 0);
        std::thread::sleep(Duration::from_millis(2));
        let second = token_of(&issue(&setup.request, &fake).unwrap());
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1, "a re-run by the same client means a 401");
        assert_ne!(first, second);
    }

    #[test]
    fn a_token_got_by_refreshing_is_remembered_as_handed_out() {
        // A stale token is refreshed; the same client asking again for the
        // new token is a re-run after a 401 of that token, so it refreshes again.
        let setup = setup(&jwt("old", 60, 55), BrowserChoice::System);
        let fake = FakeOpenUnison::default();
        let first = token_of(&issue(&setup.request, &fake).unwrap());
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1);
        std::thread::sleep(Duration::from_millis(2));
        let second = token_of(&issue(&setup.request, &fake).unwrap());
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 2, "the refreshed token was rejected");
        assert_ne!(first, second);
    }

    /// `setup` for a session that knows its API server, which says `verdict`.
    fn setup_with_api_server(verdict: Option<Verdict>) -> (Setup, FakeOpenUnison) {
        let setup = setup(&jwt("cached", 60, 0), BrowserChoice::System);
        let mut session = stored(&setup.request);
        session.api_server = Some(ApiServer { url: "https://k8s.example.com".to_string(), ca_pem: None });
        store::save(&setup.request.location, &session).unwrap();
        (setup, FakeOpenUnison { verdict, ..Default::default() })
    }

    /// The same parent asks `times` times; returns the distinct tokens it got.
    fn ask_repeatedly(request: &TokenRequest, fake: &FakeOpenUnison, times: usize) -> Vec<String> {
        let mut tokens: Vec<String> = Vec::new();
        for _ in 0..times {
            let token = token_of(&issue(request, fake).unwrap());
            if tokens.last() != Some(&token) {
                tokens.push(token);
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        tokens
    }

    #[test]
    fn a_token_the_api_server_takes_is_handed_out_again_and_the_check_remembered() {
        // The Python client runs the plugin before every request.
        let (setup, fake) = setup_with_api_server(Some(Verdict::Accepted));
        let tokens = ask_repeatedly(&setup.request, &fake, 6);
        assert_eq!(tokens.len(), 1, "one token throughout");
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 0);
        assert_eq!(fake.verifications.load(Ordering::SeqCst), 1, "checked once, then remembered");
        let holder = std::fs::read_to_string(setup.request.location.lock_path()).unwrap();
        assert!(holder.ends_with(" check with the API server\n"), "waiters are told what they wait for: {holder:?}");
        // The memory is about the token, whoever asks.
        let other = TokenRequest { parent: 7, ..setup.request.clone() };
        ask_repeatedly(&other, &fake, 3);
        assert_eq!(fake.verifications.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_token_the_api_server_rejects_is_refreshed_every_time() {
        // client-go after a 401: a new token, and again for that one.
        let (setup, fake) = setup_with_api_server(Some(Verdict::Rejected));
        let tokens = ask_repeatedly(&setup.request, &fake, 4);
        assert_eq!(tokens.len(), 4, "{tokens:?}");
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 3);
        assert_eq!(fake.verifications.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn without_an_answer_each_parent_forces_one_refresh_per_token_lifetime() {
        for (name, setup, fake) in [
            ("no answer", setup_with_api_server(None).0, FakeOpenUnison::default()),
            ("no API server", setup(&jwt("cached", 60, 0), BrowserChoice::System), FakeOpenUnison::default()),
        ] {
            let tokens = ask_repeatedly(&setup.request, &fake, 6);
            assert_eq!(tokens.len(), 2, "{name}: {tokens:?}");
            assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1, "{name}");
            // Another client has its own one.
            let other = TokenRequest { parent: 7, ..setup.request.clone() };
            ask_repeatedly(&other, &fake, 4);
            assert_eq!(fake.refreshes.load(Ordering::SeqCst), 2, "{name}");
            ask_repeatedly(&setup.request, &fake, 3);
            assert_eq!(fake.refreshes.load(Ordering::SeqCst), 2, "{name}");
        }
    }

    #[test]
    fn different_parents_sharing_a_token_do_not_refresh() {
        let setup = setup(&jwt("cached", 60, 0), BrowserChoice::System);
        let fake = FakeOpenUnison::default();
        for parent in [100, 101, 102] {
            issue(&TokenRequest { parent, ..setup.request.clone() }, &fake).unwrap();
        }
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_suspected_rejection_that_cannot_be_refreshed_hands_out_the_cached_token() {
        let cached = jwt("cached", 60, 0);
        let setup = setup(&cached, BrowserChoice::System);
        let fake = FakeOpenUnison { refresh_fails: Some(false), ..Default::default() };
        issue(&setup.request, &fake).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(token_of(&issue(&setup.request, &fake).unwrap()), cached);
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_stale_token_that_cannot_be_refreshed_is_an_error() {
        let setup = setup(&jwt("old", 60, 55), BrowserChoice::System);
        let fake = FakeOpenUnison { refresh_fails: Some(false), ..Default::default() };
        assert!(issue(&setup.request, &fake).is_err());
        assert_eq!(stored(&setup.request).refresh_token.expose(), "rt-0");
    }

    #[test]
    fn a_refresh_that_cannot_be_saved_still_hands_out_the_new_token() {
        let old = jwt("old", 60, 55);
        let setup = setup(&old, BrowserChoice::System);
        // While the refresh is on the server, the session file's place is
        // taken by a directory: the rename that saves it fails, even for root.
        let path = setup.request.location.json_path();
        let fake = FakeOpenUnison {
            during_refresh: Some(Box::new(move || {
                std::fs::remove_file(&path).unwrap();
                std::fs::create_dir(&path).unwrap();
                std::fs::write(path.join("keep"), b"").unwrap();
            })),
            ..Default::default()
        };
        let credential = issue(&setup.request, &fake).unwrap();
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1);
        let token = token_of(&credential);
        assert_ne!(token, old);
        assert!(
            lifetime_of(&Secret::new(token), None)
                .is_some_and(|lifetime| expiry::is_fresh(lifetime, SystemTime::now()))
        );
    }

    #[test]
    fn a_gone_session_is_replaced_in_place_by_one_browser_login() {
        let setup = setup(&jwt("old", 60, 55), BrowserChoice::Command("fake-browser".to_string()));
        cooldown::start_at(&setup.request.location, SystemTime::now() - Duration::from_secs(61)).unwrap();
        let fake = FakeOpenUnison { refresh_fails: Some(true), ..Default::default() };
        let credential = issue(&setup.request, &fake).unwrap();
        assert_eq!(fake.logins.load(Ordering::SeqCst), 1);
        let session = stored(&setup.request);
        assert_eq!(token_of(&credential), session.id_token.expose());
        assert_eq!(session.refresh_token.expose(), "login-rt-1");
        assert_eq!(session.trust.ca_pem.as_deref(), Some("PEM"));
        assert_eq!(session.user, "Jane Doe");
        assert_eq!(session.api_server.unwrap().url, "https://k8s.example.com", "learnt from the new bootstrap JSON");
        assert!(!setup.request.location.cooldown_path().exists(), "a successful login ends the cool-down");
    }

    #[test]
    fn a_failed_browser_login_starts_a_cool_down_that_fails_fast() {
        let setup = setup(&jwt("old", 60, 55), BrowserChoice::System);
        let fake = FakeOpenUnison { refresh_fails: Some(true), login_fails: true, ..Default::default() };
        assert!(issue(&setup.request, &fake).is_err());
        assert_eq!(fake.logins.load(Ordering::SeqCst), 1);
        let started = std::time::Instant::now();
        let err = issue(&setup.request, &fake).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(fake.logins.load(Ordering::SeqCst), 1, "no second browser tab");
        assert!(matches!(err, Error::Session(SessionError::CoolingDown { .. })), "{err:?}");
        assert!(err.render().contains("kubectl oulogin --host ou.example.com:8443 --force"), "{}", err.render());
    }

    #[test]
    fn no_browser_is_opened_when_none_may_be() {
        let cases = [
            (BrowserChoice::System, BrowserEnvironment { forbidden: true, display: Some(true) }, "OULOGIN_NO_BROWSER"),
            (BrowserChoice::NoBrowser, BrowserEnvironment { forbidden: false, display: Some(true) }, "--no-browser"),
            (BrowserChoice::System, BrowserEnvironment { forbidden: false, display: Some(false) }, "no display"),
        ];
        for (browser, environment, reason) in cases {
            let mut setup = setup(&jwt("old", 60, 55), browser);
            setup.request.browser_environment = environment;
            let fake = FakeOpenUnison { refresh_fails: Some(true), ..Default::default() };
            let err = issue(&setup.request, &fake).unwrap_err();
            assert_eq!(fake.logins.load(Ordering::SeqCst), 0);
            let text = err.render();
            assert!(
                text.contains(reason) && text.contains("kubectl oulogin --host ou.example.com:8443 --force"),
                "{text}"
            );
        }
        // A browser command of its own needs no display.
        let mut setup = setup(&jwt("old", 60, 55), BrowserChoice::Command("w3m".to_string()));
        setup.request.browser_environment = BrowserEnvironment { forbidden: false, display: Some(false) };
        let fake = FakeOpenUnison { refresh_fails: Some(true), ..Default::default() };
        issue(&setup.request, &fake).unwrap();
        assert_eq!(fake.logins.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn hints_repeat_the_port_and_ca_file_the_session_remembers() {
        let setup = setup(&jwt("old", 60, 55), BrowserChoice::NoBrowser);
        let mut session = stored(&setup.request);
        session.login_port = 8401;
        session.trust.ca_file = Some("/etc/ou ca.pem".into());
        store::save(&setup.request.location, &session).unwrap();
        let fake = FakeOpenUnison { refresh_fails: Some(true), ..Default::default() };
        let text = issue(&setup.request, &fake).unwrap_err().render();
        assert!(
            text.contains(
                "kubectl oulogin --host ou.example.com:8443 --force --certificate-authority '/etc/ou ca.pem' --port 8401"
            ),
            "{text}"
        );
    }

    #[test]
    fn isolated_sessions_that_end_point_to_a_new_isolated_session() {
        let (_temp, dir) = private_dir();
        let location = SessionLocation::isolated(&dir);
        let mut session = sample(&jwt("old", 60, 55), "rt-0");
        session.browser = BrowserChoice::NoBrowser;
        store::save(&location, &session).unwrap();
        let request = TokenRequest {
            location,
            host: None,
            session_dir: dir.clone(),
            exec_info: None,
            browser_environment: BrowserEnvironment { forbidden: false, display: Some(true) },
            parent: 1,
        };
        let fake = FakeOpenUnison { refresh_fails: Some(true), ..Default::default() };
        let text = issue(&request, &fake).unwrap_err().render();
        assert!(text.contains("isolated session has ended") && text.contains("kubectl oulogin exec"), "{text}");
    }

    #[test]
    fn a_missing_session_names_the_file_and_the_login_command() {
        let setup = setup(&jwt("x", 60, 0), BrowserChoice::System);
        store::delete(&setup.request.location).unwrap();
        let text = issue(&setup.request, &FakeOpenUnison::default()).unwrap_err().render();
        assert!(text.contains("ou.example.com_8443.json"), "{text}");
        assert!(text.contains("kubectl oulogin --host ou.example.com:8443"), "{text}");
    }

    #[test]
    fn threads_racing_through_an_expiry_share_one_refresh() {
        let setup = setup(&jwt("old", 60, 55), BrowserChoice::System);
        let fake = FakeOpenUnison { refresh_delay: Duration::from_millis(200), ..Default::default() };
        let tokens: Vec<String> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|parent| {
                    let request = TokenRequest { parent, ..setup.request.clone() };
                    let fake = &fake;
                    scope.spawn(move || token_of(&issue(&request, fake).unwrap()))
                })
                .collect();
            handles.into_iter().map(|handle| handle.join().unwrap()).collect()
        });
        assert_eq!(fake.refreshes.load(Ordering::SeqCst), 1);
        assert!(tokens.iter().all(|token| *token == tokens[0]));
    }
}
