//! Living with many clusters: `status` (what this plugin manages and how its
//! sessions are) and `logout` (removing exactly what this plugin wrote, and
//! leaving a stanza that makes kubectl fail at once instead of prompting).

use std::time::SystemTime;

use serde::Serialize;

use crate::cli::{GlobalArgs, LogoutArgs, OutputFormat, StatusArgs};
use crate::error::{Error, ExitStatus, Hint};
use crate::kubeconfig::{self, Change, Kubeconfigs};
use crate::managed::{self, Credentials, ManagedContext};
use crate::openunison::Host;
use crate::output;
use crate::session::{
    self,
    logouts::{LoggedOut, Notes},
};
use crate::settings::{KubeconfigSelection, Paths};

/// Failures of `status` and `logout`, and of `token` for a context logged out of.
#[derive(Debug, thiserror::Error)]
pub enum ManageError {
    /// `token --logged-out`: the stanza `logout` left ran.
    #[error("{} is logged out (`kubectl oulogin logout`); kubectl does not log in again by itself", what_was_logged_out(.context.as_deref(), .host.as_deref()))]
    LoggedOut { context: Option<String>, host: Option<String>, flags: String },
    /// `status --check`: some session is not alive.
    #[error("{} of the checked sessions {} not alive", .logins.len(), if .logins.len() == 1 { "is" } else { "are" })]
    NotAlive {
        /// The command that logs in again, per context.
        logins: Vec<String>,
    },
}

fn what_was_logged_out(context: Option<&str>, host: Option<&str>) -> String {
    match (context, host) {
        (Some(context), Some(host)) => format!("context `{context}` ({host})"),
        (Some(context), None) => format!("context `{context}`"),
        (None, Some(host)) => format!("this context ({host})"),
        (None, None) => "this context".to_string(),
    }
}

impl Hint for ManageError {
    fn hint(&self) -> Option<String> {
        match self {
            ManageError::LoggedOut { context, host, flags } => {
                Some(format!("log in again with `{}`", login_command(context.as_deref(), host.as_deref(), flags)))
            }
            ManageError::NotAlive { logins } => Some(format!(
                "log in again with {}",
                logins.iter().map(|login| format!("`{login}`")).collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// The login command for a context (or, when its name is not known, its
/// host), with the flags it must repeat.
fn login_command(context: Option<&str>, host: Option<&str>, flags: &str) -> String {
    match (context, host) {
        (Some(context), _) => format!("kubectl oulogin --context {}{flags}", shell_words::quote(context)),
        (None, Some(host)) => format!("kubectl oulogin --host {}{flags}", shell_words::quote(host)),
        (None, None) => format!("kubectl oulogin --host HOST{flags}"),
    }
}

/// What `token --logged-out` fails with: names the command that logs in
/// again, with the port and CA that `logout` noted for the context.
pub fn logged_out_error(host: Option<&str>, context: Option<&str>) -> Error {
    let flags = Paths::from_env()
        .ok()
        .and_then(|paths| {
            let host = Host::parse(host?).ok()?;
            session::logouts::load(&paths.session_dir).find_by_host(context, &host)
        })
        .map(|note| note.remembered.without_removed_ca_file().login_flags())
        .unwrap_or_default();
    ManageError::LoggedOut { context: context.map(str::to_string), host: host.map(str::to_string), flags }.into()
}

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
    /// `exec` (this plugin's exec stanza), `auth-provider` (the legacy oidc
    /// block) or `none` (a user entry an older `logout` removed).
    pub credentials: &'static str,
    /// Where the session lives: a session file, or `kubeconfig` for auth-provider users.
    pub session: Option<String>,
    /// Seconds the current id_token has left (negative: expired that long ago).
    pub token_expires_in_seconds: Option<i64>,
    /// Seconds since the cached id_token was issued, that is since the last
    /// refresh or login: OpenUnison ends a session after its inactivity
    /// timeout (`session_inactivity_timeout_seconds`, 900 by default) without one.
    pub idle_seconds: Option<i64>,
    /// The `groups` claim of the cached id_token (claims only; never the token).
    pub groups: Option<Vec<String>>,
    /// `alive`, `expired` (OpenUnison refused a refresh), `missing` (no session
    /// file), `logged-out`, or `unknown` (the token expired and no `--check`
    /// was asked for, or the check failed: see `stateReason`).
    pub state: &'static str,
    /// Why the state is `unknown` or `missing`.
    pub state_reason: Option<String>,
}

#[derive(Debug, Serialize)]
struct StatusDocument {
    contexts: Vec<ContextStatus>,
}

pub fn status_command(global: &GlobalArgs, args: &StatusArgs) -> Result<ExitStatus, Error> {
    let paths = Paths::from_env()?;
    let selection = KubeconfigSelection::resolve(global.kubeconfig.as_deref(), &paths);
    let config = Kubeconfigs::load(&selection)?;
    let notes = session::logouts::load(&paths.session_dir);
    let mut contexts = contexts_with_logged_out(&config, &notes);
    if let Some(wanted) = &global.context {
        contexts.retain(|context| &context.name == wanted);
        if contexts.is_empty() {
            return Err(Error::usage(
                format!("context `{wanted}` is not one kubectl oulogin manages"),
                Some("`kubectl oulogin status` lists the contexts it manages".into()),
            ));
        }
    }
    let now = SystemTime::now();
    let rows: Vec<ContextStatus> =
        contexts.iter().map(|context| context_status(&config, context, &paths, args.check, now)).collect();
    let text = match args.output {
        OutputFormat::Json => {
            let mut text =
                serde_json::to_string_pretty(&StatusDocument { contexts: rows.clone() }).expect("plain data");
            text.push('\n');
            text
        }
        OutputFormat::Yaml => serde_saphyr::to_string(&StatusDocument { contexts: rows.clone() }).expect("plain data"),
        OutputFormat::Name => rows.iter().map(|row| format!("{}\n", output::sanitize_line(&row.context))).collect(),
        OutputFormat::Table | OutputFormat::Wide => {
            if rows.is_empty() {
                output::info(
                    "no context in the kubeconfig was written by kubectl oulogin; log in with `kubectl oulogin --host HOST`",
                );
            }
            for (row, context) in rows.iter().zip(&contexts) {
                if row.state == "logged-out" {
                    let flags = logged_out_note(&config, context, &notes)
                        .map(|note| note.remembered.without_removed_ca_file().login_flags())
                        .unwrap_or_default();
                    output::info(format!(
                        "logged out of `{}` ({}); `{}` logs in there again",
                        output::sanitize_line(&row.context),
                        row.host.as_deref().unwrap_or("unknown host"),
                        output::sanitize_line(&login_command(Some(&row.context), None, &flags)),
                    ));
                }
            }
            if rows.is_empty() { String::new() } else { table(&rows, args.output == OutputFormat::Wide) }
        }
    };
    if args.check {
        for row in rows.iter().filter(|row| row.state == "unknown") {
            if let Some(reason) = &row.state_reason {
                output::info(format!(
                    "`{}`: state unknown: {}",
                    output::sanitize_line(&row.context),
                    output::sanitize(reason)
                ));
            }
        }
    }
    print!("{text}");
    let logins: Vec<String> = rows
        .iter()
        .zip(&contexts)
        .filter(|(row, _)| args.check && checked_and_not_alive(row))
        .map(|(_, context)| {
            let remembered =
                crate::app::remembered_for(&config, context.user.as_deref(), &context.credentials, &paths.session_dir);
            login_command(Some(&context.name), None, &remembered.login_flags())
        })
        .collect();
    if !logins.is_empty() {
        return Err(ManageError::NotAlive { logins }.into());
    }
    Ok(ExitStatus::Success)
}

/// With `--check`: a session of ours that did not prove alive. Contexts
/// logged out of on purpose, and old-plugin users (kubectl refreshes those
/// itself), are not checked.
fn checked_and_not_alive(row: &ContextStatus) -> bool {
    row.credentials == "exec" && matches!(row.state, "expired" | "missing" | "unknown")
}

/// The managed contexts, and those an older `logout` left without a user
/// entry and noted (shown as logged out), in file order.
fn contexts_with_logged_out(config: &Kubeconfigs, notes: &Notes) -> Vec<ManagedContext> {
    let managed = managed::managed_contexts(config);
    config
        .contexts()
        .into_iter()
        .filter_map(|context| {
            if let Some(ours) = managed.iter().find(|ours| ours.name == context.name) {
                return Some(ours.clone());
            }
            managed::missing_user(config, &context)?;
            let server = managed::cluster_server(config, context.cluster.as_deref());
            let note = notes.find(&context.name, server.as_deref())?;
            Some(ManagedContext {
                name: context.name,
                cluster: context.cluster,
                user: None,
                credentials: Credentials::LoggedOut { host: Some(note.host) },
            })
        })
        .collect()
}

/// What `logout` noted of a context logged out of (its host must match).
fn logged_out_note(config: &Kubeconfigs, context: &ManagedContext, notes: &Notes) -> Option<LoggedOut> {
    let server = managed::cluster_server(config, context.cluster.as_deref());
    notes.find(&context.name, server.as_deref()).filter(|note| Some(&note.host) == context.credentials.host())
}

/// `exp`, `iat` and `groups` of a cached id_token, read without verifying
/// it: only to show them.
struct CachedClaims {
    exp: Option<i64>,
    iat: Option<i64>,
    groups: Option<Vec<String>>,
}

fn cached_claims(token: &str) -> CachedClaims {
    let times = crate::openunison::jwt::read_times(token).ok();
    CachedClaims {
        exp: times.as_ref().map(|times| times.exp),
        iat: times.and_then(|times| times.iat),
        groups: groups_claim(token),
    }
}

fn groups_claim(token: &str) -> Option<Vec<String>> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    match claims.get("groups")? {
        serde_json::Value::Array(groups) => {
            Some(groups.iter().filter_map(|group| group.as_str()).map(str::to_string).collect())
        }
        serde_json::Value::String(group) => Some(vec![group.clone()]),
        _ => None,
    }
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
        idle_seconds: None,
        groups: None,
        state: "unknown",
        state_reason: None,
    };
    // A session's token is judged as `token` judges it: its lifetime counted
    // from when it arrived, with the server's clock skew taken out.
    let now_ms = unix_now.saturating_mul(1000);
    let show_claims = |row: &mut ContextStatus, token: &str, received: Option<session::Receipt>| {
        let claims = cached_claims(token);
        let expires_ms =
            claims.exp.map(|exp| session::local_expiry_ms(session::Lifetime { exp, iat: claims.iat, received }));
        row.token_expires_in_seconds = expires_ms.map(|expires| (expires - now_ms).div_euclid(1000));
        row.idle_seconds = match received {
            Some(received) => Some((now_ms - received.at_ms).div_euclid(1000).max(0)),
            None => claims.iat.map(|iat| (unix_now - iat).max(0)),
        };
        row.groups = claims.groups;
        expires_ms.is_some_and(|expires| expires > now_ms)
    };
    match &context.credentials {
        Credentials::Exec { session: Some(session_ref), .. } => {
            let Some(location) = session_ref.location(&paths.session_dir) else {
                row.state = "missing";
                row.state_reason = Some("the exec stanza names no usable session".into());
                return row;
            };
            row.session = Some(location.json_path().display().to_string());
            let stored = match session::load(&location) {
                Ok(stored) => stored,
                Err(err) => {
                    row.state = "missing";
                    row.state_reason = Some(err.to_string());
                    return row;
                }
            };
            let fresh = show_claims(&mut row, stored.id_token.expose(), stored.id_token_received);
            (row.state, row.state_reason) = if check {
                match session::check_alive(&location) {
                    Ok(true) => ("alive", None),
                    Ok(false) => ("expired", None),
                    Err(err) => ("unknown", Some(one_line_error(&err))),
                }
            } else if fresh {
                ("alive", None)
            } else {
                ("unknown", Some("the cached token has expired; `--check` asks OpenUnison".into()))
            };
            if check && let Ok(refreshed) = session::load(&location) {
                show_claims(&mut row, refreshed.id_token.expose(), refreshed.id_token_received);
            }
        }
        Credentials::Exec { session: None, .. } => {
            row.state = "missing";
            row.state_reason = Some("the exec stanza names no session".into());
        }
        Credentials::LoggedOut { .. } => {
            row.state = "logged-out";
            if context.user.is_none() {
                row.credentials = "none";
            }
        }
        Credentials::LegacyOidc { .. } => {
            row.credentials = "auth-provider";
            row.session = Some("kubeconfig".to_string());
            let token = context
                .user
                .as_deref()
                .and_then(|user| config.user(user))
                .and_then(|user| user.pointer("/auth-provider/config/id-token"))
                .and_then(|token| token.as_str());
            if token.is_some_and(|token| show_claims(&mut row, token, None)) {
                row.state = "alive";
            } else {
                row.state_reason =
                    Some("the old plugin's auth-provider user: kubectl refreshes it itself, it is not checked".into());
            }
        }
        Credentials::Foreign => {}
    }
    row
}

/// An error as one line: the message and its causes, without the hint.
fn one_line_error(err: &Error) -> String {
    let mut text = err.to_string();
    for cause in err.causes() {
        text.push_str(&format!(": {cause}"));
    }
    text
}

/// `59s`, `14m`, `3h`, `2d`: short enough for a table.
fn short_duration(seconds: i64) -> String {
    match seconds {
        ..120 => format!("{seconds}s"),
        120..7_200 => format!("{}m", seconds / 60),
        7_200..172_800 => format!("{}h", seconds / 3_600),
        _ => format!("{}d", seconds / 86_400),
    }
}

fn table(rows: &[ContextStatus], wide: bool) -> String {
    let mut header = vec!["CURRENT", "CONTEXT", "HOST", "USER", "TOKEN", "STATE"];
    if wide {
        header.extend(["IDLE", "SESSION", "GROUPS"]);
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            let mut cells = vec![
                if row.current { "*".to_string() } else { String::new() },
                output::sanitize_line(&row.context),
                output::sanitize_line(row.host.as_deref().unwrap_or("-")),
                output::sanitize_line(row.user.as_deref().unwrap_or("-")),
                match row.token_expires_in_seconds {
                    Some(seconds) if seconds >= 0 => format!("{} left", short_duration(seconds)),
                    Some(seconds) => format!("expired {} ago", short_duration(-seconds)),
                    None => "-".to_string(),
                },
                row.state.to_string(),
            ];
            if wide {
                cells.push(row.idle_seconds.map(short_duration).unwrap_or_else(|| "-".into()));
                cells.push(output::sanitize_line(row.session.as_deref().unwrap_or("-")));
                cells.push(match &row.groups {
                    Some(groups) if !groups.is_empty() => output::sanitize_line(&groups.join(",")),
                    _ => "-".to_string(),
                });
            }
            cells
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|title| title.len()).collect();
    for row in &cells {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    let mut line = |cells: &[String]| {
        let mut out = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index + 1 == cells.len() {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}   "));
            }
        }
        text.push_str(out.trim_end());
        text.push('\n');
    };
    line(&header.iter().map(|title| title.to_string()).collect::<Vec<_>>());
    for row in &cells {
        line(row);
    }
    text
}

pub fn logout_command(global: &GlobalArgs, args: &LogoutArgs) -> Result<ExitStatus, Error> {
    let paths = Paths::from_env()?;
    let selection = KubeconfigSelection::resolve(global.kubeconfig.as_deref(), &paths);
    let config = Kubeconfigs::load(&selection)?;
    let notes = session::logouts::load(&paths.session_dir);
    let all = contexts_with_logged_out(&config, &notes);
    let purge = args.purge;
    let targets: Vec<ManagedContext> = if args.all {
        // Only what this plugin wrote: the old Go plugin's contexts are left
        // alone unless named with `--context`.
        all.iter().filter(|context| !matches!(context.credentials, Credentials::LegacyOidc { .. })).cloned().collect()
    } else {
        let name = match (&global.context, config.current_context()) {
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
    let is_logged_out = |context: &ManagedContext| matches!(context.credentials, Credentials::LoggedOut { .. });
    if !purge {
        for context in targets.iter().filter(|context| is_logged_out(context)) {
            let flags = logged_out_note(&config, context, &notes)
                .map(|note| note.remembered.without_removed_ca_file().login_flags())
                .unwrap_or_default();
            output::info(format!(
                "already logged out of `{}`; `{}` logs in there again",
                output::sanitize_line(&context.name),
                output::sanitize_line(&login_command(Some(&context.name), None, &flags)),
            ));
        }
    }
    // Purging acts on contexts logged out of before as well; logging out only on the others.
    let targets: Vec<ManagedContext> = targets.into_iter().filter(|context| purge || !is_logged_out(context)).collect();
    if targets.is_empty() {
        return Ok(ExitStatus::Success);
    }

    // Noted before the sessions go: what they remember of how they reached
    // OpenUnison. A purge leaves no context to log in again for.
    let new_notes: Vec<LoggedOut> = if purge {
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

    // A kubeconfig that cannot take the logged-out entries (a device,
    // write-protected) is found before any session goes, so that a refused
    // logout leaves everything as it was.
    for context in &targets {
        config.check_writable_for_login(Some(&context.name))?;
    }

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
                .map(|other| format!("`{}`", output::sanitize_line(&other.name)))
                .collect();
            if !sharing.is_empty() {
                output::info(format!(
                    "the session of `{}` was shared; these contexts are logged out too: {}",
                    output::sanitize_line(&context.name),
                    sharing.join(", ")
                ));
            }
        }
        if !is_logged_out(context)
            && let Some(host) = context.credentials.host()
        {
            let host = host.to_string();
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
    }

    let names: Vec<ManagedContext> = targets.clone();
    kubeconfig::update(&selection, &paths.session_dir, move |fresh| Ok((logout_changes(fresh, &names, purge), ())))?;

    if let Err(err) = session::logouts::note(&paths.session_dir, &new_notes) {
        output::warn(format!("{err}; logging in again will need `--host`"));
    }

    let list: Vec<String> =
        targets.iter().map(|context| format!("`{}`", output::sanitize_line(&context.name))).collect();
    if purge {
        output::info(format!(
            "logged out of {}: removed the local session and the credentials, contexts and clusters",
            list.join(", ")
        ));
    } else {
        output::info(format!(
            "logged out of {}: removed the local session and the credentials; kubectl through {} now fails at once \
             and names the command that logs in again",
            list.join(", "),
            if targets.len() == 1 { "it" } else { "them" }
        ));
    }
    for host in hosts {
        output::info(format!(
            "note: OpenUnison keeps the server session on {host} until its inactivity timeout (15 minutes by default); \
             it offers no client-side revocation. Logging out in the browser at https://{host}/logout ends all your sessions now."
        ));
    }
    Ok(ExitStatus::Success)
}

/// The kubeconfig changes of a logout, on the freshly read config: each
/// user entry becomes the logged-out stanza (no token, no session), or with
/// `purge` goes, with the context and its cluster unless another context
/// uses that.
fn logout_changes(fresh: &Kubeconfigs, targets: &[ManagedContext], purge: bool) -> Vec<Change> {
    let mut changes = Vec::new();
    let removed_contexts: Vec<&str> =
        if purge { targets.iter().map(|context| context.name.as_str()).collect() } else { Vec::new() };
    let contexts = fresh.contexts();
    for context in targets {
        if let Some(user) = &context.user
            && fresh.user(user).is_some()
            && !changes
                .iter()
                .any(|change| matches!(change, Change::RemoveUser(name) | Change::SetUser { name, .. } if name == user))
        {
            if purge {
                changes.push(Change::RemoveUser(user.clone()));
            } else {
                // The context is named in the stanza only when the user entry is its alone.
                let users_contexts: Vec<&str> = contexts
                    .iter()
                    .filter(|other| other.user.as_deref() == Some(user.as_str()))
                    .map(|other| other.name.as_str())
                    .collect();
                let sole = (users_contexts == [context.name.as_str()]).then_some(context.name.as_str());
                changes.push(Change::SetUser {
                    name: user.clone(),
                    user: managed::logged_out_user(context.credentials.host(), sole),
                });
            }
        }
        if purge {
            changes.push(Change::RemoveContext(context.name.clone()));
            if let Some(cluster) = &context.cluster {
                let used_elsewhere = contexts.iter().any(|other| {
                    other.cluster.as_deref() == Some(cluster.as_str())
                        && !removed_contexts.contains(&other.name.as_str())
                });
                if !used_elsewhere
                    && fresh.cluster(cluster).is_some()
                    && !changes.iter().any(|change| matches!(change, Change::RemoveCluster(name) if name == cluster))
                {
                    changes.push(Change::RemoveCluster(cluster.clone()));
                }
            }
            if fresh.current_context() == Some(context.name.as_str()) {
                changes.push(Change::UnsetCurrentContext);
            }
        }
    }
    changes
}

/// Why `name` cannot be logged out of: it does not exist, its user entry is
/// gone without a note of ours, or its credentials are not ours.
fn not_ours_to_log_out(config: &Kubeconfigs, name: &str) -> Error {
    let status_hint = Some("`kubectl oulogin status` lists the contexts this plugin manages".to_string());
    let Some(context) = config.context(name) else {
        return Error::usage(format!("context `{name}` does not exist in the kubeconfig"), status_hint);
    };
    match managed::missing_user(config, &context) {
        Some(user) => Error::usage(
            format!("context `{name}` has no credentials: its user `{user}` is not in the kubeconfig"),
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
