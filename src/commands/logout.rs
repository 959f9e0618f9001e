//! `kubectl oulogin logout`: removes exactly what this plugin wrote (the
//! sessions first), and leaves a stanza that makes kubectl fail at once,
//! naming the command that logs in again, instead of prompting.

use super::target::remembered_for;
use crate::cli::{GlobalArgs, LogoutArgs};
use crate::error::{Error, ExitStatus};
use crate::kubeconfig::ours::{self, Credentials, ManagedContext};
use crate::kubeconfig::{self, Kubeconfigs};
use crate::output;
use crate::session::ended::login_again_command;
use crate::session::{self, logouts::LoggedOut};
use crate::settings::{KubeconfigSelection, Paths};

/// `kubectl oulogin logout [--context C | --all] [--purge]`.
pub fn logout_command(global: &GlobalArgs, args: &LogoutArgs) -> Result<ExitStatus, Error> {
    let paths = Paths::from_env()?;
    let selection = KubeconfigSelection::resolve(global.kubeconfig.as_deref(), &paths);
    let config = Kubeconfigs::load(&selection)?;
    let notes = session::logouts::load(&paths.session_dir);
    let all = ours::contexts_with_logged_out(&config, &notes);
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
            let flags = ours::logged_out_note(&config, context, &notes)
                .map(|note| note.remembered.without_removed_ca_file().login_flags())
                .unwrap_or_default();
            output::info(format!(
                "already logged out of `{}`; `{}` logs in there again",
                output::sanitize_line(&context.name),
                output::sanitize_line(&login_again_command(Some(&context.name), None, &flags)),
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
                    server: ours::cluster_server(&config, context.cluster.as_deref()),
                    remembered: remembered_for(
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
    kubeconfig::update(&selection, &paths.session_dir, move |fresh| {
        Ok((ours::logout_changes(fresh, &names, purge), ()))
    })?;

    if let Err(err) = session::logouts::note(&paths.session_dir, &new_notes) {
        output::warn_error_with(
            "the logged-out hosts could not be noted, so logging in again will need `--host`",
            &Error::from(err),
        );
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

/// Why `name` cannot be logged out of: it does not exist, its user entry is
/// gone without a note of ours, or its credentials are not ours.
fn not_ours_to_log_out(config: &Kubeconfigs, name: &str) -> Error {
    let status_hint = Some("`kubectl oulogin status` lists the contexts this plugin manages".to_string());
    let Some(context) = config.context(name) else {
        return Error::usage(format!("context `{name}` does not exist in the kubeconfig"), status_hint);
    };
    match ours::missing_user(config, &context) {
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
