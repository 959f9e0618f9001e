//! The waiting part of a login: the hyper listener on the bound loopback port
//! (serving the user's own processes only, where the OS can tell, and handing
//! the authorization URL out once), the browser (or the pasted URL), and the
//! loop that ends on the one good callback, an error redirect, the timeout or
//! Ctrl-C.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::browser::{self, Launch};
use super::callback::{self, CallbackParams, Route};
use super::secrets::{LoginSecrets, secrets_equal};
use super::{LoginError, LoginRequest, paste};
use crate::error::Error;
use crate::openunison::cli_login::{self, Discovery};
use crate::openunison::client::Http;
use crate::openunison::{Bootstrap, Host};
use crate::output;
use crate::platform::process;
use crate::settings::BrowserChoice;

/// At most this many connections are kept at once; beyond that, a new one
/// pushes out the oldest that has not sent a whole request head yet.
const MAX_CONNECTIONS: usize = 32;
/// A connection that sends no whole request head in this time is dropped (a
/// browser sends its head at once; idle ones only hold a place).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// After the login ends, how long answers in flight (the final redirect) get.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a login attempt stands; the code is exchanged at most once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Waiting,
    Exchanging,
    Done,
}

/// What the waiting loop hears about.
enum Event {
    /// The login ended, one way or the other.
    Finished(Box<Result<Bootstrap, Error>>),
    /// Something the user should know (printed as a warning).
    Warning(String),
    /// The browser command failed; the user has to open the URL.
    BrowserFailed(String),
}

/// An answer to the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Reply {
    Redirect(String),
    Page { status: StatusCode, title: &'static str, message: String },
}

impl Reply {
    fn page(status: StatusCode, title: &'static str, message: impl Into<String>) -> Reply {
        Reply::Page { status, title, message: message.into() }
    }

    fn into_response(self) -> Response<Full<Bytes>> {
        let builder = Response::builder()
            .header("cache-control", "no-store")
            .header("referrer-policy", "no-referrer")
            .header("x-content-type-options", "nosniff");
        let response = match self {
            Reply::Redirect(location) => {
                builder.status(StatusCode::FOUND).header("location", location).body(Full::new(Bytes::new()))
            }
            Reply::Page { status, title, message } => builder
                .status(status)
                .header("content-type", "text/html; charset=utf-8")
                .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'")
                .body(Full::new(Bytes::from(callback::page(title, &message)))),
        };
        // The headers above are all valid; an error here would be a bug.
        response.unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
    }
}

/// State shared by the listener's connections and the pasted-URL path.
struct Shared {
    host: Host,
    http: Http,
    discovery: Discovery,
    secrets: LoginSecrets,
    port: u16,
    redirect_uri: String,
    authorization_url: String,
    phase: Mutex<Phase>,
    /// `GET /` gave out the authorization URL (it does so once).
    handed_out: AtomicBool,
    /// `--no-browser`: the authorization URL is printed for the user.
    no_browser: bool,
    warned_foreign: AtomicBool,
    warned_second_start: AtomicBool,
    // Only Linux can tell who connected (see `peer_is_own_user`).
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    warned_other_user: AtomicBool,
    #[cfg_attr(not(target_os = "linux"), allow(dead_code))]
    warned_owner_unknown: AtomicBool,
    events: mpsc::UnboundedSender<Event>,
}

impl Shared {
    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Moves from `Waiting` to `Exchanging`; false if the login already moved on.
    fn begin(&self) -> bool {
        let mut phase = self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if *phase != Phase::Waiting {
            return false;
        }
        *phase = Phase::Exchanging;
        true
    }

    /// Whether the authorization URL went out: to a browser through `GET /`,
    /// or printed for `--no-browser`.
    fn authorizing(&self) -> bool {
        self.no_browser || self.handed_out.load(Ordering::SeqCst)
    }

    /// Sends a warning the first time `flag` is raised.
    fn warn_once(&self, flag: &AtomicBool, message: impl FnOnce() -> String) {
        if !flag.swap(true, Ordering::SeqCst) {
            let _ = self.events.send(Event::Warning(message()));
        }
    }

    fn finish(&self, result: Result<Bootstrap, Error>) {
        *self.phase.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Phase::Done;
        let _ = self.events.send(Event::Finished(Box::new(result)));
    }

    fn already_over(&self) -> Reply {
        match self.phase() {
            Phase::Exchanging => Reply::page(
                StatusCode::CONFLICT,
                "Login in progress",
                "kubectl oulogin is already completing this login.",
            ),
            _ => Reply::page(StatusCode::NOT_FOUND, "Login over", "This login is over; you can close this window."),
        }
    }

    /// Answers `GET /`: the authorization URL, the first time only, so that
    /// its `state` and PKCE challenge go to one browser.
    fn start(&self) -> Reply {
        if !self.handed_out.swap(true, Ordering::SeqCst) {
            return Reply::Redirect(self.authorization_url.clone());
        }
        self.warn_once(&self.warned_second_start, || {
            format!(
                "http://127.0.0.1:{}/ was asked for again; this login's address goes to the first browser only \
                 (to start over, press Ctrl-C and log in again)",
                self.port
            )
        });
        Reply::page(
            StatusCode::CONFLICT,
            "Login already started",
            "This login was already started in a browser; finish it there. To start over, cancel kubectl oulogin \
             (Ctrl-C) and run it again.",
        )
    }

    /// Answers a `/redirect` callback (from the browser or pasted).
    async fn callback(self: &Arc<Self>, params: CallbackParams) -> Reply {
        if params.duplicated {
            return Reply::page(StatusCode::BAD_REQUEST, "Ambiguous request", "A parameter was given more than once.");
        }
        let state_matches = params.state.as_deref().is_some_and(|state| secrets_equal(state, &self.secrets.state));
        // OpenUnison's error redirects carry no `state` at all. One counts
        // once this login's authorization request went out (before that, it
        // can only come from some web page); one with another state never.
        let our_error = params.error.is_some() && (state_matches || (params.state.is_none() && self.authorizing()));
        if !state_matches && !our_error {
            self.warn_once(&self.warned_foreign, || {
                let what = match &params.error {
                    Some(error) => format!("an error `{}`", super::callback_text(error)),
                    None => "a request".to_string(),
                };
                format!(
                    "ignored {what} sent to http://127.0.0.1:{}/redirect without this login's state; still waiting",
                    self.port
                )
            });
            let shown = params
                .error
                .map(|error| format!("\n\nIt reported: {}", super::callback_text(&error)))
                .unwrap_or_default();
            return Reply::page(
                StatusCode::BAD_REQUEST,
                "Not this login",
                format!(
                    "This request does not belong to the login kubectl oulogin is waiting for, so it was ignored.{shown}"
                ),
            );
        }
        if let Some(error) = params.error {
            if !self.begin() {
                return self.already_over();
            }
            let err = LoginError::refused(&error, params.error_description.as_deref(), &self.redirect_uri);
            let message = err.to_string();
            self.finish(Err(err.into()));
            return Reply::page(StatusCode::BAD_REQUEST, "Login refused", message);
        }
        let Some(code) = params.code.filter(|code| !code.is_empty()) else {
            return Reply::page(
                StatusCode::BAD_REQUEST,
                "No code",
                "The redirect carries no authorization code; kubectl oulogin is still waiting.",
            );
        };
        if !self.begin() {
            return self.already_over();
        }
        // A task of its own: the exchange must finish (and end the phase) even
        // if the browser drops the connection meanwhile.
        let shared = self.clone();
        let exchange = tokio::spawn(async move {
            let result = cli_login::complete_login(
                &shared.http,
                &shared.host,
                &shared.discovery,
                &code,
                &shared.secrets.code_verifier,
                &shared.redirect_uri,
                &shared.secrets.nonce,
            )
            .await;
            match result {
                Ok(bootstrap) => {
                    shared.finish(Ok(bootstrap));
                    Reply::Redirect(cli_login::finished_url(&shared.host))
                }
                Err(err) => {
                    let err = Error::from(err);
                    let message = err.render();
                    shared.finish(Err(err));
                    Reply::page(
                        StatusCode::BAD_GATEWAY,
                        "Login failed",
                        format!("{message}\n\nThe terminal running kubectl oulogin says the same."),
                    )
                }
            }
        });
        exchange
            .await
            .unwrap_or_else(|_| Reply::page(StatusCode::INTERNAL_SERVER_ERROR, "Login failed", "See the terminal."))
    }
}

/// Waits for the login on `listener` (bound already) and returns its bootstrap.
pub(super) async fn run(
    request: &LoginRequest,
    http: Http,
    discovery: Discovery,
    secrets: LoginSecrets,
    listener: std::net::TcpListener,
    input: paste::Input,
) -> Result<Bootstrap, Error> {
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|source| LoginError::Bind { port: request.port, source })?;
    let port = listener.local_addr().map_err(|source| LoginError::Bind { port: request.port, source })?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}/redirect");
    let authorization_url = cli_login::authorization_url(
        &request.host,
        &redirect_uri,
        &secrets.state,
        &secrets.nonce,
        &secrets.code_challenge,
    );
    let (events_sender, mut events) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared {
        host: request.host.clone(),
        http,
        discovery,
        secrets,
        port,
        redirect_uri,
        authorization_url,
        phase: Mutex::new(Phase::Waiting),
        handed_out: AtomicBool::new(false),
        no_browser: request.browser == BrowserChoice::NoBrowser,
        warned_foreign: AtomicBool::new(false),
        warned_second_start: AtomicBool::new(false),
        warned_other_user: AtomicBool::new(false),
        warned_owner_unknown: AtomicBool::new(false),
        events: events_sender.clone(),
    });
    // Registered before anything is printed or opened, so that a Ctrl-C from
    // then on cancels cleanly. If it cannot be, Ctrl-C simply ends the process.
    let mut interrupt = process::Interrupts::listen();
    let (shutdown, shutdown_signal) = watch::channel(false);
    let server = tokio::spawn(serve(listener, shared.clone(), shutdown_signal));

    let open_url = cli_login::cli_login_url(&request.host);
    // Kept alive so `lines.recv()` waits instead of ending when nobody reads stdin.
    let (lines_sender, mut lines) = mpsc::unbounded_channel::<String>();
    let mut stdin_reader = None;
    let waiting = if request.browser == BrowserChoice::NoBrowser {
        output::info(format!(
            "Open this address in a browser (on any computer) and log in to {}:\n\n    {}\n\n\
             The browser then ends on an address starting with http://127.0.0.1:{port}/redirect \
             (it may fail to load there). Paste that whole address here and press Enter.",
            request.host, shared.authorization_url
        ));
        stdin_reader = Some(paste::read_lines(input, lines_sender.clone()));
        // No spinner: it would redraw over what the user pastes.
        None
    } else {
        output::info(format!("Opening {open_url} in the browser to log in to {}.", request.host));
        open_browser(&request.browser, &open_url, &events_sender);
        Some(output::Waiting::start("Waiting for the browser login", request.timeout))
    };

    let deadline = tokio::time::Instant::now() + request.timeout;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut expired = false;
    let outcome = loop {
        tokio::select! {
            Some(event) = events.recv() => match event {
                Event::Finished(result) => break *result,
                Event::Warning(message) => output::warn(output::sanitize(&message)),
                Event::BrowserFailed(why) => {
                    output::warn(output::sanitize(&why));
                    output::info(format!("Open this address in a browser on this computer to log in: {open_url}"));
                }
            },
            Some(line) = lines.recv() => paste_line(&shared, &line),
            _ = tokio::time::sleep_until(deadline), if !expired => {
                // A code exchange under way is bounded by its own timeouts; let it finish.
                if shared.phase() == Phase::Exchanging {
                    expired = true;
                } else {
                    break Err(LoginError::TimedOut {
                        timeout: request.timeout,
                        url: open_url.clone(),
                        pasting: (request.browser == BrowserChoice::NoBrowser).then_some(request.port),
                    }
                    .into());
                }
            }
            Some(()) = interrupt.recv() => break Err(LoginError::Cancelled.into()),
            _ = ticker.tick() => if let Some(waiting) = &waiting { waiting.tick() },
        }
    };
    drop(waiting);
    drop(stdin_reader);
    let _ = shutdown.send(true);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT + Duration::from_secs(1), server).await;
    drop(lines_sender);
    outcome
}

fn open_browser(choice: &BrowserChoice, url: &str, events: &mpsc::UnboundedSender<Event>) {
    crate::debug!("opening {} with {}", crate::debug::redact_url(url), choice.describe());
    match browser::launch(choice, url) {
        Launch::Opened | Launch::NotWanted => {}
        Launch::Failed { why } => {
            let _ = events.send(Event::BrowserFailed(why));
        }
        Launch::Running { command, mut child } => {
            let events = events.clone();
            // The browser may outlive the login (a real one usually does);
            // only its failure matters, so the thread just reports that.
            std::thread::spawn(move || {
                let why = match child.wait() {
                    Ok(status) if status.success() => return,
                    Ok(status) => format!("the browser command `{command}` {}", process::describe_exit(status)),
                    Err(err) => format!("lost track of the browser command `{command}`: {err}"),
                };
                let _ = events.send(Event::BrowserFailed(why));
            });
        }
    }
}

/// A line pasted with `--no-browser`.
fn paste_line(shared: &Arc<Shared>, line: &str) {
    if line.trim().is_empty() {
        return;
    }
    match callback::parse_pasted_url(line, shared.port) {
        Err(err) => output::warn(format!("{err}; paste the whole address from the browser's address bar")),
        Ok(params) => {
            let shared = shared.clone();
            tokio::spawn(async move {
                if let Reply::Page { message, .. } = shared.callback(params).await
                    && shared.phase() != Phase::Done
                {
                    let _ = shared.events.send(Event::Warning(message));
                }
            });
        }
    }
}

/// A connection being served, for the connection limit.
struct Tracked {
    /// The connection has delivered a whole request head.
    started: Arc<AtomicBool>,
    task: tokio::task::AbortHandle,
}

/// Accepts browser connections until told to stop, then lets answers in
/// flight finish (briefly) and closes the port. Idle connections cannot
/// starve a browser: each has [`HEADER_READ_TIMEOUT`] to send its request
/// head, and at [`MAX_CONNECTIONS`] a new one pushes out the oldest idle one.
async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    let mut tracked: VecDeque<Tracked> = VecDeque::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else {
                    // Out of descriptors or similar: do not spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                while connections.try_join_next().is_some() {}
                tracked.retain(|connection| !connection.task.is_finished());
                if tracked.len() >= MAX_CONNECTIONS {
                    match tracked.iter().position(|connection| !connection.started.load(Ordering::SeqCst)) {
                        Some(idle) => {
                            if let Some(evicted) = tracked.remove(idle) {
                                evicted.task.abort();
                            }
                        }
                        // Every place holds a request being answered.
                        None => continue,
                    }
                }
                let Ok(local) = stream.local_addr() else { continue };
                let started = Arc::new(AtomicBool::new(false));
                let task = connections.spawn(serve_connection(shared.clone(), stream, peer, local, started.clone()));
                tracked.push_back(Tracked { started, task });
            }
        }
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN_TIMEOUT, async { while connections.join_next().await.is_some() {} }).await;
}

/// Serves one connection: every request on it is refused (403) unless it
/// comes from a process of the user running the login.
async fn serve_connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
    started: Arc<AtomicBool>,
) {
    let own_user = peer_is_own_user(&shared, peer, local).await;
    let service = hyper::service::service_fn(move |request| {
        started.store(true, Ordering::SeqCst);
        respond(shared.clone(), request, own_user)
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

/// Whether the process at `peer` runs as the user running the login (or as
/// root, who can read this login's secrets anyway). Linux: the owner of the
/// connecting socket in `/proc/net/tcp*`.
#[cfg(target_os = "linux")]
async fn peer_is_own_user(shared: &Shared, peer: SocketAddr, local: SocketAddr) -> bool {
    use super::peer::{self, PeerOwner};
    let owner = tokio::task::spawn_blocking(move || peer::owner_of(peer, local)).await.unwrap_or(PeerOwner::Unknown);
    let own_uid = process::effective_uid();
    match owner {
        PeerOwner::Uid(uid) if uid == own_uid || uid == 0 => true,
        PeerOwner::Uid(uid) => {
            shared.warn_once(&shared.warned_other_user, || {
                format!(
                    "refused a request to the login listener from a process of another user (uid {uid}); \
                     only your own browser can finish this login"
                )
            });
            false
        }
        PeerOwner::Gone => false,
        PeerOwner::Unknown => {
            shared.warn_once(&shared.warned_owner_unknown, || {
                "cannot tell which user connected to the login listener (`/proc/net/tcp` does not list the \
                 connection); serving it"
                    .to_string()
            });
            true
        }
    }
}

/// Other systems offer no cheap way to learn who connected (see the README's
/// security notes): every local process is served.
#[cfg(not(target_os = "linux"))]
async fn peer_is_own_user(_shared: &Shared, _peer: SocketAddr, _local: SocketAddr) -> bool {
    true
}

async fn respond(
    shared: Arc<Shared>,
    request: Request<Incoming>,
    own_user: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if !own_user {
        let page = Reply::page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            "kubectl oulogin serves only the browser of the user who started the login.",
        );
        return Ok(page.into_response());
    }
    let host_header = request.headers().get(hyper::header::HOST).and_then(|value| value.to_str().ok());
    crate::debug!(
        "loopback listener: {} {}",
        request.method(),
        crate::debug::redact_target(request.uri().path(), request.uri().query())
    );
    let route = callback::route(
        request.method().as_str(),
        request.uri().path(),
        request.uri().query(),
        host_header,
        shared.port,
    );
    let reply = match route {
        Route::Forbidden => Reply::page(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "kubectl oulogin answers only requests for 127.0.0.1:{} or localhost:{}.",
                shared.port, shared.port
            ),
        ),
        Route::NotFound => Reply::page(StatusCode::NOT_FOUND, "Not found", "kubectl oulogin has nothing here."),
        Route::Start if shared.phase() == Phase::Waiting => shared.start(),
        Route::Start => shared.already_over(),
        Route::Callback(params) => shared.callback(params).await,
    };
    Ok(reply.into_response())
}
