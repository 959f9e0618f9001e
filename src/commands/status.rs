//! `kubectl oulogin status`: the contexts this plugin manages, how their
//! sessions are (`--check` asks OpenUnison), as a table, names, JSON or YAML.

use std::time::SystemTime;

use serde::Serialize;

use super::target::remembered_for;
use crate::cli::{GlobalArgs, OutputFormat, StatusArgs};
use crate::error::{Error, ExitStatus};
use crate::kubeconfig::Kubeconfigs;
use crate::kubeconfig::ours::{self, Credentials, ManagedContext};
use crate::output;
use crate::session;
use crate::session::ended::{EndedError, login_again_command};
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
    let mut contexts = ours::contexts_with_logged_out(&config, &notes);
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
                    let flags = ours::logged_out_note(&config, context, &notes)
                        .map(|note| note.remembered.without_removed_ca_file().login_flags())
                        .unwrap_or_default();
                    output::info(format!(
                        "logged out of `{}` ({}); `{}` logs in there again",
                        output::sanitize_line(&row.context),
                        row.host.as_deref().unwrap_or("unknown host"),
                        output::sanitize_line(&login_again_command(Some(&row.context), None, &flags)),
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
    output::stdout(&text)?;
    let logins: Vec<String> = rows
        .iter()
        .zip(&contexts)
        .filter(|(row, _)| args.check && checked_and_not_alive(row))
        .map(|(_, context)| {
            let remembered = remembered_for(&config, context.user.as_deref(), &context.credentials, &paths.session_dir);
            login_again_command(Some(&context.name), None, &remembered.login_flags())
        })
        .collect();
    if !logins.is_empty() {
        return Err(EndedError::NotAlive { logins }.into());
    }
    Ok(ExitStatus::Success)
}

/// With `--check`: a session of ours that did not prove alive. Contexts
/// logged out of on purpose, and old-plugin users (kubectl refreshes those
/// itself), are not checked.
fn checked_and_not_alive(row: &ContextStatus) -> bool {
    row.credentials == "exec" && matches!(row.state, "expired" | "missing" | "unknown")
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
