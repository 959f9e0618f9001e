//! Living with many clusters: `status` (what this plugin manages and how its
//! sessions are) and `logout` (removing exactly what this plugin wrote).

use std::time::SystemTime;

use serde::Serialize;

use crate::cli::{LogoutArgs, OutputFormat, StatusArgs};
use crate::error::{Error, ExitStatus};
use crate::kubeconfig::{self, Change, Kubeconfigs};
use crate::managed::{self, Credentials, ManagedContext};
use crate::output;
use crate::session::{self, logouts::LoggedOut};
use crate::settings::{KubeconfigSelection, Paths};

/// One row of `status`; also the documented `-o json|yaml` schema.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ContextStatus {
    /// The context name.
    pub context: String,
    /// Whether it is the current context.
    pub current: bool,
    /// The OpenUnison host, `host[:port]`.
    pub host: Option<String>,
    /// The kubeconfig user entry.
    pub user: Option<String>,
    /// `exec` (this plugin's exec stanza) or `auth-provider` (the legacy oidc block).
    pub credentials: &'static str,
    /// Where the session lives: a session file, or `kubeconfig` for auth-provider users.
    pub session: Option<String>,
    /// Seconds the current id_token has left (negative: expired that long ago).
    pub token_expires_in_seconds: Option<i64>,
    /// `alive`, `expired` (OpenUnison refused a refresh), `missing` (no session
    /// file), or `unknown` (the token expired and no `--check` was asked for).
    pub state: &'static str,
}

#[derive(Debug, Serialize)]
struct StatusDocument {
    contexts: Vec<ContextStatus>,
}

pub fn status_command(args: &StatusArgs) -> Result<ExitStatus, Error> {
    let paths = Paths::from_env()?;
    let selection = KubeconfigSelection::resolve(args.kubeconfig.as_deref(), &paths);
    let config = Kubeconfigs::load(&selection)?;
    let now = SystemTime::now();
    let rows: Vec<ContextStatus> = managed::managed_contexts(&config)
        .iter()
        .map(|context| context_status(&config, context, &paths, args.check, now))
        .collect();
    let text = match args.output {
        OutputFormat::Json => {
            let mut text = serde_json::to_string_pretty(&StatusDocument { contexts: rows }).expect("plain data");
            text.push('\n');
            text
        }
        OutputFormat::Yaml => serde_saphyr::to_string(&StatusDocument { contexts: rows }).expect("plain data"),
        OutputFormat::Table => {
            let logged_out = logged_out_contexts(&config, &paths.session_dir);
            if rows.is_empty() && logged_out.is_empty() {
                output::info(
                    "no context in the kubeconfig was written by kubectl oulogin; log in with `kubectl oulogin --host HOST`",
                );
            }
            if !logged_out.is_empty() {
                output::info(format!(
                    "logged out of {}; `kubectl oulogin --context NAME` logs in there again",
                    logged_out.join(", ")
                ));
            }
            if rows.is_empty() { String::new() } else { table(&rows) }
        }
    };
    print!("{text}");
    Ok(ExitStatus::Success)
}

/// The contexts `logout` left without a user entry and noted, as
/// "`NAME` (HOST)".
fn logged_out_contexts(config: &Kubeconfigs, session_dir: &std::path::Path) -> Vec<String> {
    let notes = session::logouts::load(session_dir);
    config
        .contexts()
        .iter()
        .filter(|context| managed::missing_user(config, context).is_some())
        .filter_map(|context| {
            let server = managed::cluster_server(config, context.cluster.as_deref());
            let note = notes.find(&context.name, server.as_deref())?;
            Some(format!("`{}` ({})", output::sanitize(&context.name), note.host))
        })
        .collect()
}

fn context_status(
    config: &Kubeconfigs,
    context: &ManagedContext,
    paths: &Paths,
    check: bool,
    now: SystemTime,
) -> ContextStatus {
    let current = config.current_context() == Some(context.name.as_str());
    let host = context.credentials.host().map(|host| host.to_string());
    let unix_now = now.duration_since(SystemTime::UNIX_EPOCH).map(|since| since.as_secs() as i64).unwrap_or(0);
    let mut row = ContextStatus {
        context: context.name.clone(),
        current,
        host,
        user: context.user.clone(),
        credentials: "exec",
        session: None,
        token_expires_in_seconds: None,
        state: "unknown",
    };
    match &context.credentials {
        Credentials::Exec { session: Some(session_ref), .. } => {
            let Some(location) = session_ref.location(&paths.session_dir) else {
                row.state = "missing";
                return row;
            };
            row.session = Some(location.json_path().display().to_string());
            let Ok(stored) = session::load(&location) else {
                row.state = "missing";
                return row;
            };
            let exp = crate::openunison::jwt::read_times(stored.id_token.expose()).ok().map(|times| times.exp);
            row.token_expires_in_seconds = exp.map(|exp| exp - unix_now);
            let fresh = exp.is_some_and(|exp| exp > unix_now);
            row.state = if check {
                match session::check_alive(&location) {
                    Ok(true) => "alive",
                    Ok(false) => "expired",
                    Err(_) => "unknown",
                }
            } else if fresh {
                "alive"
            } else {
                "unknown"
            };
        }
        Credentials::Exec { session: None, .. } => row.state = "missing",
        Credentials::LegacyOidc { .. } => {
            row.credentials = "auth-provider";
            row.session = Some("kubeconfig".to_string());
            let token = context
                .user
                .as_deref()
                .and_then(|user| config.user(user))
                .and_then(|user| user.pointer("/auth-provider/config/id-token"))
                .and_then(|token| token.as_str());
            let exp = token.and_then(|token| crate::openunison::jwt::read_times(token).ok()).map(|times| times.exp);
            row.token_expires_in_seconds = exp.map(|exp| exp - unix_now);
            if exp.is_some_and(|exp| exp > unix_now) {
                row.state = "alive";
            }
        }
        Credentials::Foreign => {}
    }
    row
}

fn table(rows: &[ContextStatus]) -> String {
    let header = ["CURRENT", "CONTEXT", "HOST", "USER", "SESSION", "TOKEN", "STATE"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|row| {
            [
                if row.current { "*".to_string() } else { String::new() },
                output::sanitize(&row.context),
                output::sanitize(row.host.as_deref().unwrap_or("-")),
                output::sanitize(row.user.as_deref().unwrap_or("-")),
                output::sanitize(row.session.as_deref().unwrap_or("-")),
                match row.token_expires_in_seconds {
                    Some(seconds) if seconds >= 0 => format!("{seconds}s left"),
                    Some(seconds) => format!("expired {}s ago", -seconds),
                    None => "-".to_string(),
                },
                row.state.to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &[String]| {
        let mut out = String::new();
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            if index + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   "));
            }
        }
        text.push_str(out.trim_end());
        text.push('\n');
    };
    line(&header.map(String::from));
    for row in &cells {
        line(row);
    }
    text
}

pub fn logout_command(args: &LogoutArgs) -> Result<ExitStatus, Error> {
    let paths = Paths::from_env()?;
    let selection = KubeconfigSelection::resolve(args.kubeconfig.as_deref(), &paths);
    let config = Kubeconfigs::load(&selection)?;
    let all = managed::managed_contexts(&config);
    let targets: Vec<ManagedContext> = if args.all {
        // Only what this plugin wrote: the old Go plugin's contexts are left
        // alone unless named with `--context`.
        all.iter().filter(|context| matches!(context.credentials, Credentials::Exec { .. })).cloned().collect()
    } else {
        let name = match (&args.context, config.current_context()) {
            (Some(name), _) => name.clone(),
            (None, Some(current)) => current.to_string(),
            (None, None) => {
                return Err(Error::usage(
                    "no context to log out of: no `--context` and no current context",
                    Some("name one with `--context NAME`, or use `--all`".into()),
                ));
            }
        };
        match all.iter().find(|context| context.name == name) {
            Some(context) => vec![context.clone()],
            None => return Err(not_ours_to_log_out(&config, &name)),
        }
    };
    if targets.is_empty() {
        output::info("no context in the kubeconfig was written by kubectl oulogin; nothing to do");
        return Ok(ExitStatus::Success);
    }

    // Noted before the sessions go: what they remember of how they reached
    // OpenUnison. A purge leaves no context to log in again for.
    let notes: Vec<LoggedOut> = if args.purge {
        Vec::new()
    } else {
        targets
            .iter()
            .filter_map(|context| {
                let host = context.credentials.host()?.clone();
                Some(LoggedOut {
                    context: context.name.clone(),
                    server: managed::cluster_server(&config, context.cluster.as_deref()),
                    remembered: crate::app::remembered_for(
                        &config,
                        context.user.as_deref(),
                        &context.credentials,
                        &paths.session_dir,
                    ),
                    host,
                })
            })
            .collect()
    };

    // Sessions first: once they are gone, no tool can refresh through them.
    let mut hosts: Vec<String> = Vec::new();
    for context in &targets {
        if let Credentials::Exec { session: Some(session_ref), .. } = &context.credentials
            && let Some(location) = session_ref.location(&paths.session_dir)
        {
            session::delete(&location)?;
            let sharing: Vec<String> = all
                .iter()
                .filter(|other| {
                    other.name != context.name
                        && !targets.iter().any(|target| target.name == other.name)
                        && matches!(&other.credentials, Credentials::Exec { session: Some(other_ref), .. } if other_ref == session_ref)
                })
                .map(|other| format!("`{}`", output::sanitize(&other.name)))
                .collect();
            if !sharing.is_empty() {
                output::info(format!(
                    "the session of `{}` was shared; these contexts are logged out too: {}",
                    output::sanitize(&context.name),
                    sharing.join(", ")
                ));
            }
        }
        if let Some(host) = context.credentials.host() {
            let host = host.to_string();
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }

    let purge = args.purge;
    let names: Vec<ManagedContext> = targets.clone();
    kubeconfig::update(&selection, &paths.session_dir, move |fresh| {
        let mut changes = Vec::new();
        let removed_contexts: Vec<&str> =
            if purge { names.iter().map(|context| context.name.as_str()).collect() } else { Vec::new() };
        for context in &names {
            if let Some(user) = &context.user
                && !changes.iter().any(|change| matches!(change, Change::RemoveUser(name) if name == user))
                && fresh.user(user).is_some()
            {
                changes.push(Change::RemoveUser(user.clone()));
            }
            if purge {
                changes.push(Change::RemoveContext(context.name.clone()));
                if let Some(cluster) = &context.cluster {
                    let used_elsewhere = fresh.contexts().iter().any(|other| {
                        other.cluster.as_deref() == Some(cluster.as_str())
                            && !removed_contexts.contains(&other.name.as_str())
                    });
                    if !used_elsewhere
                        && fresh.cluster(cluster).is_some()
                        && !changes
                            .iter()
                            .any(|change| matches!(change, Change::RemoveCluster(name) if name == cluster))
                    {
                        changes.push(Change::RemoveCluster(cluster.clone()));
                    }
                }
                if fresh.current_context() == Some(context.name.as_str()) {
                    changes.push(Change::UnsetCurrentContext);
                }
            }
        }
        Ok((changes, ()))
    })?;

    if let Err(err) = session::logouts::note(&paths.session_dir, &notes) {
        output::warn(format!("{err}; logging in again will need `--host`"));
    }

    let what = if purge { "credentials, contexts and clusters" } else { "credentials" };
    let list: Vec<String> = targets.iter().map(|context| format!("`{}`", output::sanitize(&context.name))).collect();
    output::info(format!("logged out of {}: removed the local session and the {what}", list.join(", ")));
    for host in hosts {
        output::info(format!(
            "note: OpenUnison keeps the server session on {host} until its inactivity timeout (15 minutes by default); \
             it offers no client-side revocation. Logging out in the browser at https://{host}/logout ends all your sessions now."
        ));
    }
    Ok(ExitStatus::Success)
}

/// Why `name` cannot be logged out of: it does not exist, its user entry is
/// gone (logged out already), or its credentials are not ours.
fn not_ours_to_log_out(config: &Kubeconfigs, name: &str) -> Error {
    let status_hint = Some("`kubectl oulogin status` lists the contexts this plugin manages".to_string());
    let Some(context) = config.context(name) else {
        return Error::usage(format!("context `{name}` does not exist in the kubeconfig"), status_hint);
    };
    match managed::missing_user(config, &context) {
        Some(user) => Error::usage(
            format!(
                "context `{name}` has no credentials: its user `{user}` is not in the kubeconfig (logged out already?)"
            ),
            Some(format!(
                "remove the context itself with `kubectl config delete-context {}`",
                shell_words::quote(name)
            )),
        ),
        _ => Error::usage(
            format!("context `{name}` was not written by kubectl oulogin; nothing to log out of"),
            status_hint,
        ),
    }
}
