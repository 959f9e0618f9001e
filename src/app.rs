//! Dispatch, and the login command itself: which host to log in to, reusing a
//! session that still works, the browser login, and writing the session and
//! the kubeconfig entries.

use crate::cli::{Cli, Command, GlobalArgs, LoginArgs};
use crate::error::{Error, ExitStatus};
use crate::kubeconfig::{self, Kubeconfigs};
use crate::login::{self, LoginRequest};
use crate::managed::{self, Credentials, EntryNames, NameChoice, SessionRef};
use crate::openunison::{Bootstrap, Host, TrustConfig};
use crate::output;
use crate::session::{self, Secret, Session, SessionLocation};
use crate::settings::{LoginSettings, Remembered};

pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    let global = &cli.global;
    match cli.command {
        None => login_command(global, &cli.login, cli.isolated),
        Some(Command::Token(args)) if args.logged_out => {
            Err(crate::manage::logged_out_error(args.host.as_deref(), global.context.as_deref()))
        }
        Some(Command::Token(args)) => {
            session::run_token(session::TokenRequest::resolve(&args)?)?;
            Ok(ExitStatus::Success)
        }
        Some(Command::Exec(args)) => crate::exec::exec_command(global, &args.login, &args.command),
        Some(Command::Status(args)) => crate::manage::status_command(global, &args),
        Some(Command::Logout(args)) => crate::manage::logout_command(global, &args),
        Some(Command::Version) => {
            use clap::CommandFactory as _;
            print!("{}", Cli::command().render_version());
            Ok(ExitStatus::Success)
        }
        Some(Command::Completion(args)) => crate::completion::print_completion(args.shell),
        Some(Command::Complete(args)) => crate::completion::print_kubectl_completions(&args.words),
        Some(Command::Man) => crate::completion::print_man(),
    }
}

fn login_command(global: &GlobalArgs, args: &LoginArgs, isolated: bool) -> Result<ExitStatus, Error> {
    let settings = LoginSettings::resolve(global, args)?;
    if isolated {
        return crate::exec::isolated_command(&settings);
    }
    if settings.auth_provider {
        output::warn(
            "`--auth-provider` writes the legacy in-tree oidc user: tools sharing this kubeconfig refresh on their own \
             and can burn each other's one-time refresh token",
        );
    }
    let config = Kubeconfigs::load(&settings.kubeconfig)?;
    let target = LoginTarget::resolve(&settings, &config)?;
    let settings = settings.with_remembered(&target.remembered);
    let location = SessionLocation::shared(&settings.paths.session_dir, &target.host);

    if !settings.force
        && !settings.auth_provider
        && let Some(context) = reusable_context(&config, &target, &settings)?
    {
        if config.current_context() != Some(context.as_str()) {
            let name = context.clone();
            kubeconfig::update(&settings.kubeconfig, &settings.paths.session_dir, move |_| {
                Ok((vec![kubeconfig::Change::SetCurrentContext(name.clone())], ()))
            })?;
        }
        output::info(format!(
            "already logged in to {} (context `{}`); use `--force` to log in again",
            target.host, context
        ));
        return Ok(ExitStatus::Success);
    }

    // A kubeconfig we could not write must fail now, not after the browser login.
    config.check_writable_for_login(target.context.as_deref())?;
    let bootstrap = browser_login(&settings, &target.host, &location)?;
    let user = if settings.auth_provider {
        legacy_user(&settings, &target.host, &bootstrap)?
    } else {
        session::store_login(&location, &new_session(&settings, &target.host, &bootstrap))?;
        managed::exec_user(&target.host, &SessionRef::Named(location.stem().to_string()))
    };
    let (_, names) = kubeconfig::update(&settings.kubeconfig, &settings.paths.session_dir, |fresh| {
        let names = managed::choose_names(fresh, &target.host, &bootstrap, target.context.as_deref());
        Ok((managed::login_changes(&names, &bootstrap, user.clone()), names))
    })?;
    report_login(&target, &bootstrap, &names, settings.auth_provider);
    Ok(ExitStatus::Success)
}

/// Runs the browser login; a failed or abandoned one starts the session's
/// cool-down so that background `token` calls do not open tab after tab.
pub fn browser_login(settings: &LoginSettings, host: &Host, location: &SessionLocation) -> Result<Bootstrap, Error> {
    crate::files::ensure_private_dir(&settings.paths.session_dir)?;
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
pub fn legacy_user(
    settings: &LoginSettings,
    host: &Host,
    bootstrap: &Bootstrap,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let user_ca = crate::openunison::tls::supplied_ca_pem(&settings.trust)?;
    Ok(managed::auth_provider_user(host, bootstrap, user_ca.as_deref()))
}

/// The session file a login writes.
pub fn new_session(settings: &LoginSettings, host: &Host, bootstrap: &Bootstrap) -> Session {
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
    pub fn for_host(settings: &LoginSettings, host: &Host, context: Option<String>) -> LoginTarget {
        let remembered = remembered_by(&SessionLocation::shared(&settings.paths.session_dir, host)).unwrap_or_default();
        LoginTarget { host: host.clone(), context, remembered }
    }

    /// `--host`; else the host of `--context`; else the host of the current context.
    pub fn resolve(settings: &LoginSettings, config: &Kubeconfigs) -> Result<LoginTarget, Error> {
        if let Some(host) = &settings.host {
            if let Some(name) = &settings.context
                && foreign_context(config, name)
            {
                return Err(Error::usage(
                    format!("context `{name}` exists and was not written by kubectl oulogin; it is left as it is"),
                    Some("give the new context another name with `--context NAME`, or leave `--context` out".into()),
                ));
            }
            return Ok(LoginTarget::for_host(settings, host, settings.context.clone()));
        }
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
        let credentials = managed::credentials_of(config, &context);
        let logged_out = managed::missing_user(config, &context).is_some();
        let session_dir = &settings.paths.session_dir;
        if let Credentials::LoggedOut { host: Some(host) } = &credentials {
            output::info(format!(
                "{how} `{}` was logged out of {host}; logging in there again",
                output::sanitize(&name)
            ));
            let server = managed::cluster_server(config, context.cluster.as_deref());
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
                .find(&name, managed::cluster_server(config, context.cluster.as_deref()).as_deref()),
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
        remembered.trust = user.and_then(|user| config.user(user)).and_then(managed::legacy_idp_trust);
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
fn reusable_context(
    config: &Kubeconfigs,
    target: &LoginTarget,
    settings: &LoginSettings,
) -> Result<Option<String>, Error> {
    for context in managed::managed_contexts(config) {
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

fn report_login(target: &LoginTarget, bootstrap: &Bootstrap, names: &EntryNames, auth_provider: bool) {
    match names.choice {
        NameChoice::Renamed => output::info(format!(
            "the server's cluster name `{}` is already taken in the kubeconfig (by another OpenUnison host or by \
             entries kubectl oulogin did not write); this login uses cluster `{}`, user `{}` and context `{}`",
            output::sanitize(&bootstrap.cluster_name),
            output::sanitize(&names.cluster),
            output::sanitize(&names.user),
            output::sanitize(&names.context),
        )),
        NameChoice::Existing { legacy: true } if !auth_provider => output::info(format!(
            "converted context `{}` from the old oulogin's `auth-provider: oidc` user `{}` to the \
             `kubectl oulogin token` exec plugin (cluster `{}` kept)",
            output::sanitize(&names.context),
            output::sanitize(&names.user),
            output::sanitize(&names.cluster),
        )),
        NameChoice::Existing { .. } | NameChoice::New => {}
    }
    output::info(format!(
        "logged in to {} as {}; context `{}` is now current",
        target.host,
        output::sanitize(&bootstrap.display_name),
        output::sanitize(&names.context)
    ));
}
