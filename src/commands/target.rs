//! What every login command shares: which host to log in to (decided here
//! only), what the last login there remembers, a context's session that
//! still works, the browser login with the session it stores, the entries it
//! writes, and the errors and hints that name the command that logs in again.

use serde_json::{Map, Value};

use crate::error::Error;
use crate::kubeconfig::ours::{self, Credentials, EntryNames, SessionRef};
use crate::kubeconfig::{self, Kubeconfigs};
use crate::login::{self, LoginRequest};
use crate::openunison::{Bootstrap, Host, TrustConfig};
use crate::output;
use crate::session::{self, Secret, Session, SessionLocation};
use crate::settings::{KubeconfigSelection, LoginSettings, Remembered};

/// What a finished browser login hands the kubeconfig: the bootstrap
/// (cluster, names) and the user entry that reaches its session.
pub struct LoggedIn {
    pub bootstrap: Bootstrap,
    pub user: Map<String, Value>,
}

/// The browser login for `host`; its session is stored at `location`, which
/// the exec stanza names as `session` (with `--auth-provider`, no session:
/// the legacy user carries the tokens).
pub fn log_in(
    settings: &LoginSettings,
    host: &Host,
    location: &SessionLocation,
    session: SessionRef,
) -> Result<LoggedIn, Error> {
    let bootstrap = browser_login(settings, host, location)?;
    let user = if settings.auth_provider {
        legacy_user(settings, host, &bootstrap)?
    } else {
        session::store_login(location, &new_session(settings, host, &bootstrap))?;
        ours::exec_user(host, &session)
    };
    Ok(LoggedIn { bootstrap, user })
}

/// Writes a login's cluster, user and context into `selection`, named on the
/// freshly read config, and makes the context current. Our writers' lock
/// lives beside the shared sessions.
pub fn write_entries(
    selection: &KubeconfigSelection,
    settings: &LoginSettings,
    target: &LoginTarget,
    logged_in: &LoggedIn,
) -> Result<EntryNames, Error> {
    let (_, names) = kubeconfig::update(selection, &settings.paths.session_dir, |fresh| {
        let names = ours::choose_names(fresh, &target.host, &logged_in.bootstrap, target.context.as_deref());
        Ok((ours::login_changes(&names, &logged_in.bootstrap, logged_in.user.clone()), names))
    })?;
    Ok(names)
}

/// Runs the browser login; a failed or abandoned one starts the session's
/// cool-down so that background `token` calls do not open tab after tab.
fn browser_login(settings: &LoginSettings, host: &Host, location: &SessionLocation) -> Result<Bootstrap, Error> {
    let request = LoginRequest {
        host: host.clone(),
        trust: settings.trust.clone(),
        browser: settings.browser.clone(),
        port: settings.port,
        timeout: settings.timeout,
        lock_dir: settings.paths.session_dir.clone(),
    };
    login::browser_login(&request).inspect_err(|_| {
        let _ = session::start_cool_down(location);
    })
}

/// The `--auth-provider` user: the bootstrap's OpenUnison CA, else the CA the
/// login trusted (`--certificate-authority`, or one remembered), for client-go.
fn legacy_user(settings: &LoginSettings, host: &Host, bootstrap: &Bootstrap) -> Result<Map<String, Value>, Error> {
    let user_ca = crate::openunison::tls::supplied_ca_pem(&settings.trust)?;
    Ok(ours::auth_provider_user(host, bootstrap, user_ca.as_deref()))
}

/// The session file a login writes.
fn new_session(settings: &LoginSettings, host: &Host, bootstrap: &Bootstrap) -> Session {
    Session {
        version: session::SESSION_FORMAT_VERSION,
        host: host.clone(),
        token_endpoint: host.k8s_token_endpoint(),
        trust: TrustConfig {
            ca_file: settings.trust.ca_file.as_ref().map(|path| std::path::absolute(path).unwrap_or(path.clone())),
            ca_pem: bootstrap.ou_ca_pem.clone(),
            ca_data: settings.trust.ca_data.clone(),
        },
        browser: settings.browser.clone(),
        login_timeout_secs: settings.timeout.as_secs().max(1),
        login_port: settings.port,
        id_token: Secret::new(bootstrap.id_token.clone()),
        refresh_token: Secret::new(bootstrap.refresh_token.clone()),
        id_token_received: Some(bootstrap.receipt),
        cluster: bootstrap.cluster_name.clone(),
        user: bootstrap.display_name.clone(),
        api_server: Some(session::ApiServer { url: bootstrap.server.clone(), ca_pem: bootstrap.k8s_ca_pem.clone() }),
        extra: Default::default(),
    }
}

/// Where a login writes its entries.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// The user's kubeconfig, already read.
    UserKubeconfig(&'a Kubeconfigs),
    /// A private directory (`exec`, `--isolated`): the user's kubeconfig is
    /// read only when `--host` is absent, to find the host.
    PrivateDir,
}

/// Which host a login is for, and which context it should (re)write.
#[derive(Debug)]
pub struct LoginTarget {
    pub host: Host,
    /// `--context`: the context to log in again for, or the new context's name.
    pub context: Option<String>,
    /// How the last login to this host (for this context) reached OpenUnison.
    pub remembered: Remembered,
}

impl LoginTarget {
    /// `--host HOST`: what the shared session of that host remembers.
    fn for_host(settings: &LoginSettings, host: &Host, context: Option<String>) -> LoginTarget {
        let remembered = remembered_by(&SessionLocation::shared(&settings.paths.session_dir, host)).unwrap_or_default();
        LoginTarget { host: host.clone(), context, remembered }
    }

    /// Which host to log in to: `--host`; else the host of `--context`; else
    /// the host of the current context.
    pub fn resolve(settings: &LoginSettings, destination: Destination<'_>) -> Result<LoginTarget, Error> {
        if let Some(host) = &settings.host {
            if let Destination::UserKubeconfig(config) = destination
                && let Some(name) = &settings.context
                && foreign_context(config, name)
            {
                return Err(Error::usage(
                    format!("context `{name}` exists and was not written by kubectl oulogin; it is left as it is"),
                    Some("give the new context another name with `--context NAME`, or leave `--context` out".into()),
                ));
            }
            return Ok(LoginTarget::for_host(settings, host, settings.context.clone()));
        }
        let loaded;
        let config = match destination {
            Destination::UserKubeconfig(config) => config,
            Destination::PrivateDir => {
                loaded = Kubeconfigs::load(&settings.kubeconfig)?;
                &loaded
            }
        };
        LoginTarget::of_context(settings, config)
    }

    /// The host of `--context`, else of the current context, and what its
    /// last login remembers.
    fn of_context(settings: &LoginSettings, config: &Kubeconfigs) -> Result<LoginTarget, Error> {
        let (name, how) = match (&settings.context, config.current_context()) {
            (Some(name), _) => (name.clone(), "`--context`"),
            (None, Some(current)) => (current.to_string(), "the current context"),
            (None, None) => {
                return Err(Error::usage(
                    "no OpenUnison host to log in to: no `--host`, no `--context` and no current context",
                    Some("run `kubectl oulogin --host HOST` with your OpenUnison host name".to_string()),
                ));
            }
        };
        let quoted = shell_words::quote(&name);
        let Some(context) = config.context(&name) else {
            let create = if settings.context.is_some() {
                format!("`kubectl oulogin --host HOST --context {quoted}` creates it")
            } else {
                "`kubectl oulogin --host HOST` logs in to an OpenUnison host".to_string()
            };
            return Err(Error::usage(
                format!("{how} `{name}` does not exist in the kubeconfig"),
                Some(format!("{create}; `kubectl config get-contexts` lists the contexts there are")),
            ));
        };
        let credentials = ours::credentials_of(config, &context);
        let logged_out = ours::missing_user(config, &context).is_some();
        let session_dir = &settings.paths.session_dir;
        if let Credentials::LoggedOut { host: Some(host) } = &credentials {
            output::info(format!(
                "{how} `{}` was logged out of {host}; logging in there again",
                output::sanitize(&name)
            ));
            let server = ours::cluster_server(config, context.cluster.as_deref());
            let remembered = session::logouts::load(session_dir)
                .find(&name, server.as_deref())
                .filter(|note| &note.host == host)
                .map(|note| note.remembered.without_removed_ca_file())
                .unwrap_or_default();
            return Ok(LoginTarget { host: host.clone(), context: Some(name), remembered });
        }
        // What `logout` noted of the context, when its user entry is gone.
        let note = match credentials.host() {
            None if logged_out => session::logouts::load(session_dir)
                .find(&name, ours::cluster_server(config, context.cluster.as_deref()).as_deref()),
            _ => None,
        };
        match (credentials.host(), note) {
            (Some(host), _) => Ok(LoginTarget {
                host: host.clone(),
                remembered: remembered_for(config, context.user.as_deref(), &credentials, session_dir),
                context: Some(name),
            }),
            (None, Some(note)) => {
                output::info(format!(
                    "{how} `{}` was logged out of {}; logging in there again",
                    output::sanitize(&name),
                    note.host
                ));
                let remembered = note.remembered.without_removed_ca_file();
                Ok(LoginTarget { host: note.host, context: Some(name), remembered })
            }
            (None, None) if logged_out => Err(Error::usage(
                format!("{how} `{name}` has no user entry (logged out?), so its OpenUnison host is unknown"),
                Some(format!("log in for it again with `kubectl oulogin --host HOST --context {quoted}`")),
            )),
            (None, None) => Err(Error::usage(
                format!("{how} `{name}` was not written by kubectl oulogin, so its OpenUnison host is unknown"),
                // Not `--context {name}`: that would point the user's own context at OpenUnison's cluster.
                Some(format!(
                    "run `kubectl oulogin --host HOST` with your OpenUnison host name; it writes a context of its \
                     own and leaves `{name}` as it is"
                )),
            )),
        }
    }
}

/// How the login behind a context's credentials reached OpenUnison: what its
/// session remembers, else the CA an old-plugin user carries.
pub fn remembered_for(
    config: &Kubeconfigs,
    user: Option<&str>,
    credentials: &Credentials,
    session_dir: &std::path::Path,
) -> Remembered {
    let Some(host) = credentials.host() else {
        return Remembered::default();
    };
    let location = match credentials {
        Credentials::Exec { session: Some(session_ref), .. } => session_ref.location(session_dir),
        _ => None,
    }
    .unwrap_or_else(|| SessionLocation::shared(session_dir, host));
    let mut remembered = remembered_by(&location).unwrap_or_default();
    if remembered.trust.is_none() {
        remembered.trust = user.and_then(|user| config.user(user)).and_then(ours::legacy_idp_trust);
    }
    remembered
}

/// What the session at `location` remembers of its login, if it can be read
/// (a missing or refused session file simply remembers nothing).
fn remembered_by(location: &SessionLocation) -> Option<Remembered> {
    let session = session::load(location).ok()?;
    let trust = (session.trust != TrustConfig::default()).then_some(session.trust);
    Some(Remembered { trust, browser: Some(session.browser), port: Some(session.login_port) }.without_removed_ca_file())
}

/// Whether the context `name` exists with credentials that are not ours (a
/// context without a user entry, as `logout` leaves it, is not foreign).
fn foreign_context(config: &Kubeconfigs, name: &str) -> bool {
    let Some(context) = config.context(name) else {
        return false;
    };
    context
        .user
        .as_deref()
        .and_then(|user| config.user(user))
        .is_some_and(|user| !Credentials::of_user(user).is_managed())
}

/// A context of ours for `target`'s host whose session still works (refreshed
/// if need be, never with a browser).
/// A Ctrl-C (or SIGTERM/SIGHUP) that arrived while a check held it ends the
/// command; any other failure of the check only means "not reusable".
pub fn reusable_context(
    config: &Kubeconfigs,
    target: &LoginTarget,
    settings: &LoginSettings,
) -> Result<Option<String>, Error> {
    for context in ours::managed_contexts(config) {
        if target.context.as_deref().is_some_and(|wanted| wanted != context.name) {
            continue;
        }
        let Credentials::Exec { host: Some(host), session: Some(session_ref) } = &context.credentials else {
            continue;
        };
        if host != &target.host {
            continue;
        }
        let Some(location) = session_ref.location(&settings.paths.session_dir) else { continue };
        match session::check_alive(&location) {
            Ok(true) => return Ok(Some(context.name.clone())),
            Err(err) if err.is_interrupted() => return Err(err),
            Ok(false) | Err(_) => {}
        }
    }
    Ok(None)
}
