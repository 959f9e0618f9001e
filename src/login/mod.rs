//! The browser login: loopback listener on 127.0.0.1, authorization code with
//! `state`, `nonce` and PKCE S256 against OpenUnison's `cli-local` client, and
//! the `/k8slogin/token/user` bootstrap that mints a new session.
//!
//! [`browser_login`] is blocking and runs a current-thread runtime of its own.
//! It first fetches the `cli-local` discovery document (so that a wrong host,
//! CA or proxy is an error before any browser opens), takes the port lock
//! (`login-<port>.lock`, so that two logins never fight over the one redirect
//! port OpenUnison knows), binds the port, opens the browser (or prints the
//! authorization URL and reads the pasted redirect URL with `--no-browser`),
//! and waits for one good callback, an error redirect, the timeout, or
//! Ctrl-C. The code is exchanged once; a callback with another `state` is
//! refused without ending the wait. On Linux the listener serves only the
//! user's own processes.

mod browser;
pub mod callback;
#[cfg(test)]
mod flow_tests;
mod paste;
#[cfg(target_os = "linux")]
mod peer;
mod secrets;
mod server;

use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Hint};
use crate::files::{self, Lock, LockError};
use crate::openunison::client::Http;
use crate::openunison::{Bootstrap, Host, TrustConfig, cli_login};
use crate::settings::BrowserChoice;

/// After this long waiting for the port lock, say who holds it.
const PORT_LOCK_NOTICE_AFTER: Duration = Duration::from_millis(300);

/// Everything one browser login needs.
#[derive(Debug, Clone)]
pub struct LoginRequest {
    pub host: Host,
    pub trust: TrustConfig,
    pub browser: BrowserChoice,
    /// The loopback port OpenUnison redirects to (8400 unless its chart was
    /// changed); 0 picks a free port (tests).
    pub port: u16,
    /// How long to wait for the browser (and, separately, for another login
    /// holding the port).
    pub timeout: Duration,
    /// Where `login-<port>.lock` lives (`$KUBECACHEDIR/oulogin`).
    pub lock_dir: PathBuf,
}

/// Failures of the browser login.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Another program listens on the port.
    #[error("port {port} on 127.0.0.1 is already in use, so the browser cannot be sent back to this login")]
    PortBusy { port: u16 },
    /// The port could not be bound for another reason.
    #[error("cannot listen on 127.0.0.1:{port}")]
    Bind {
        port: u16,
        #[source]
        source: std::io::Error,
    },
    /// Another `kubectl oulogin` login kept the port for longer than the timeout.
    #[error("gave up after {} waiting for {holder} to finish its login on port {port}", humantime::format_duration(*.waited))]
    PortLockTimeout { port: u16, holder: String, waited: Duration },
    /// Nobody completed the login in time.
    #[error("no browser login finished within {} (the login starts at `{url}`)", humantime::format_duration(*.timeout))]
    TimedOut {
        timeout: Duration,
        url: String,
        /// `--no-browser`: the redirect port of the address to paste.
        pasting: Option<u16>,
    },
    /// Ctrl-C.
    #[error("the login was cancelled")]
    Cancelled,
    /// OpenUnison sent the browser back with an `error` (texts on one line,
    /// control characters escaped: see [`LoginError::refused`]).
    #[error("OpenUnison refused the login: `{error}`{}", .description.as_deref().map(|text| format!(" ({text})")).unwrap_or_default())]
    Refused { error: String, description: Option<String>, redirect_uri: String },
    /// The OS random number generator failed.
    #[error(transparent)]
    Random(#[from] secrets::RandomError),
    /// The I/O runtime could not be started.
    #[error("cannot start the I/O runtime for the login")]
    Runtime {
        #[source]
        source: std::io::Error,
    },
}

impl Hint for LoginError {
    fn hint(&self) -> Option<String> {
        match self {
            LoginError::PortBusy { port } => Some(format!(
                "find the program with `ss -ltnp 'sport = :{port}'` or `lsof -i :{port}` and stop it; \
                 use `--port` only if your OpenUnison registers another redirect port"
            )),
            LoginError::PortLockTimeout { .. } => {
                Some("let the other login finish (or cancel it), then try again".to_string())
            }
            LoginError::TimedOut { pasting: Some(port), .. } => Some(format!(
                "run the login again, open the address it prints in a browser on any computer, log in, and paste \
                 the address the browser ends on (it starts with `http://127.0.0.1:{port}/redirect`) here; or allow \
                 more time with `--timeout`"
            )),
            LoginError::TimedOut { url, .. } => Some(format!(
                "run the login again and finish it in the browser (open `{url}` on this computer), \
                 or allow more time with `--timeout`"
            )),
            LoginError::Refused { error, redirect_uri, .. } if error == "unauthorized_client" => Some(format!(
                "OpenUnison's `cli-local` trust must list the redirect URI `{redirect_uri}`; its chart registers \
                 `http://127.0.0.1:8400/redirect`, so use `--port` only if yours registers another port"
            )),
            LoginError::Refused { redirect_uri, .. } => Some(format!(
                "ask your OpenUnison administrator to check the `cli-local` trust (redirect URI `{redirect_uri}`, \
                 scopes `openid profile email`) and that your user may log in to Kubernetes"
            )),
            _ => None,
        }
    }
}

/// The longest server text shown from a callback (an error description).
const MAX_CALLBACK_TEXT: usize = 300;

/// Text from a callback as it may be shown: one line, control characters
/// escaped, cut short when long. It comes from whoever sent the browser (or
/// the pasted URL) here.
fn callback_text(text: &str) -> String {
    let mut shown: String = text.chars().take(MAX_CALLBACK_TEXT).collect();
    if shown.len() < text.len() {
        shown.push_str("...");
    }
    crate::output::sanitize_line(&shown)
}

impl LoginError {
    /// An error redirect's code and description, as [`callback_text`] shows them.
    pub fn refused(error: &str, description: Option<&str>, redirect_uri: &str) -> LoginError {
        LoginError::Refused {
            error: callback_text(error),
            description: description.filter(|text| !text.trim().is_empty()).map(callback_text),
            redirect_uri: redirect_uri.to_string(),
        }
    }
}

/// Logs in through the browser and returns the new session's bootstrap.
pub fn browser_login(request: &LoginRequest) -> Result<Bootstrap, Error> {
    login(request, paste::Input::Stdin)
}

/// [`browser_login`], reading pasted URLs (`--no-browser`) from `input`.
fn login(request: &LoginRequest, input: paste::Input) -> Result<Bootstrap, Error> {
    // Trust problems (a bad `--certificate-authority`) show before any browser opens.
    let http = Http::new(&request.trust)?;
    let secrets = secrets::LoginSecrets::generate().map_err(LoginError::from)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| LoginError::Runtime { source })?;
    // So do an unknown host, a dead port, a wrong CA and a broken proxy: the
    // discovery document goes the way every later request goes, and the
    // id_token check later takes the keys from where it says they are.
    let discovery = runtime.block_on(cli_login::fetch_discovery(&http, &request.host))?;
    files::ensure_private_dir(&request.lock_dir)?;
    let _port_lock = take_port_lock(request)?;
    let listener = bind(request.port)?;
    let result = runtime.block_on(server::run(request, http, discovery, secrets, listener, input));
    // Nothing of the login may linger (a resolver thread at worst).
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The flock on `login-<port>.lock`, held while the listener runs.
fn take_port_lock(request: &LoginRequest) -> Result<Lock, Error> {
    let port = request.port;
    let path = request.lock_dir.join(format!("login-{port}.lock"));
    let mut lock = Lock::acquire(&path, request.timeout, PORT_LOCK_NOTICE_AFTER, |holder| {
        crate::output::info(format!("waiting for {holder} to finish its login on port {port}..."))
    })
    .map_err(|err| match err {
        LockError::File(err) => Error::File(err),
        LockError::TimedOut { holder, waited, .. } => LoginError::PortLockTimeout { port, holder, waited }.into(),
    })?;
    lock.set_holder(files::HOLDER_LOGIN);
    Ok(lock)
}

/// Binds 127.0.0.1 only; a busy port is an immediate, clear error.
fn bind(port: u16) -> Result<TcpListener, LoginError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AddrInUse {
            LoginError::PortBusy { port }
        } else {
            LoginError::Bind { port, source }
        }
    })?;
    listener.set_nonblocking(true).map_err(|source| LoginError::Bind { port, source })?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_port_is_named_at_once() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        let started = std::time::Instant::now();
        let err = bind(port).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(matches!(err, LoginError::PortBusy { port: found } if found == port), "{err:?}");
        assert!(err.to_string().contains(&port.to_string()));
        assert!(err.hint().unwrap().contains("--port"));
    }

    #[test]
    fn the_listener_binds_loopback_only() {
        let listener = bind(0).unwrap();
        assert_eq!(listener.local_addr().unwrap().ip(), Ipv4Addr::LOCALHOST);
    }

    #[test]
    fn callback_text_is_one_short_escaped_line() {
        assert_eq!(callback_text("denied\r\nerror: forged\u{1b}[2J"), "denied\\r\\nerror: forged\\u{1b}[2J");
        let long = callback_text(&"x".repeat(5000));
        assert_eq!(long.len(), MAX_CALLBACK_TEXT + 3);
        let err = LoginError::refused("invalid_scope", Some(" "), "http://127.0.0.1:8400/redirect");
        assert_eq!(err.to_string(), "OpenUnison refused the login: `invalid_scope`");
        assert!(err.hint().unwrap().contains("`http://127.0.0.1:8400/redirect`"));
    }

    #[test]
    fn a_held_port_lock_is_waited_for_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let request = LoginRequest {
            host: Host::parse("ou.example.com").unwrap(),
            trust: TrustConfig::default(),
            browser: BrowserChoice::NoBrowser,
            port: 8400,
            timeout: Duration::from_millis(500),
            lock_dir: dir.path().to_path_buf(),
        };
        let held = take_port_lock(&request).unwrap();
        let err = take_port_lock(&request).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("8400") && message.contains(&std::process::id().to_string()), "{message}");
        drop(held);
        take_port_lock(&request).unwrap();
    }
}
