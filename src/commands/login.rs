//! The login command: which host (see `target`), reusing a session that
//! still works, else the browser login, the shared session file and the
//! entries in the user's kubeconfig.

use super::target::{self, Destination, LoginTarget, reusable_context};
use crate::cli::{GlobalArgs, LoginArgs};
use crate::error::{Error, ExitStatus};
use crate::files;
use crate::kubeconfig::ours::{EntryNames, NameChoice, SessionRef};
use crate::kubeconfig::{self, Kubeconfigs};
use crate::openunison::Bootstrap;
use crate::output;
use crate::session::SessionLocation;
use crate::settings::LoginSettings;

/// `kubectl oulogin [--host H] [--context C]`: logs in, or reuses a session
/// that still works, and writes the entries into the user's kubeconfig.
pub fn login_command(global: &GlobalArgs, args: &LoginArgs) -> Result<ExitStatus, Error> {
    let settings = LoginSettings::resolve(global, args)?;
    if settings.auth_provider {
        output::warn(
            "`--auth-provider` writes the legacy in-tree oidc user: tools sharing this kubeconfig refresh on their own \
             and can burn each other's one-time refresh token",
        );
    }
    let config = Kubeconfigs::load(&settings.kubeconfig)?;
    let target = LoginTarget::resolve(&settings, Destination::UserKubeconfig(&config))?;
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
    files::ensure_private_dir(&settings.paths.session_dir)?;
    let session_ref = SessionRef::Named(location.stem().to_string());
    let logged_in = target::log_in(&settings, &target.host, &location, session_ref)?;
    let names = target::write_entries(&settings.kubeconfig, &settings, &target, &logged_in)?;
    report_login(&target, &logged_in.bootstrap, &names, settings.auth_provider);
    Ok(ExitStatus::Success)
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
