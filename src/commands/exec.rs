//! `exec -- CMD` and `--isolated`: a login of a tool's own, in a private
//! directory (see `isolation`), with a new OpenUnison session and a
//! kubeconfig whose only user is the exec stanza pointing at it.

use std::ffi::OsString;

use super::target::{self, Destination, LoginTarget};
use crate::cli::{GlobalArgs, LoginArgs};
use crate::error::{Error, ExitStatus};
use crate::isolation::child::Runnable;
use crate::isolation::leftovers::remove_leftovers;
use crate::isolation::private_dir::{PrivateDir, Purpose};
use crate::isolation::shell::{export_line, shell_hint};
use crate::kubeconfig::ours::SessionRef;
use crate::output;
use crate::platform::process::IgnoredSignals;
use crate::session::SessionLocation;
use crate::settings::{KubeconfigSelection, LoginSettings};

/// `kubectl oulogin exec [login flags] -- CMD [ARGS...]`.
pub fn exec_command(global: &GlobalArgs, args: &LoginArgs, command: &[OsString]) -> Result<ExitStatus, Error> {
    let ignored = IgnoredSignals::at_start();
    let settings = LoginSettings::resolve(global, args)?;
    // A mistyped command must not cost a browser login.
    let command = Runnable::find(command)?;
    let (settings, target, dir) = prepare(settings, Purpose::Exec)?;
    log_in_privately(&settings, &target, &dir)?;
    let status = dir.run(command, &ignored);
    // The command has ended; only a failure is worth a line now.
    if let Err(err) = dir.remove() {
        output::warn_error(&Error::from(err));
    }
    Ok(status?)
}

/// `kubectl oulogin --host H --isolated`: prints the `export` line on stdout.
pub fn isolated_command(global: &GlobalArgs, args: &LoginArgs) -> Result<ExitStatus, Error> {
    let settings = LoginSettings::resolve(global, args)?;
    let (settings, target, dir) = prepare(settings, Purpose::Isolated)?;
    log_in_privately(&settings, &target, &dir)?;
    let kubeconfig = dir.kubeconfig();
    dir.keep();
    output::info(format!(
        "logged in to {} in a private kubeconfig with its own session; a later run removes it once \
         OpenUnison has ended that session (or it was unused for a day)",
        target.host
    ));
    let flags = crate::settings::Remembered {
        trust: Some(settings.trust.clone()),
        port: Some(settings.port),
        ..Default::default()
    }
    .login_flags();
    output::info(shell_hint(&kubeconfig, target.host.as_str(), &flags, crate::settings::user_shell_is_fish()));
    output::stdout(format!("{}\n", export_line(&kubeconfig)))?;
    Ok(ExitStatus::Success)
}

/// Cleans up what earlier runs left, picks the host, and creates the one
/// private directory this run logs in to.
fn prepare(settings: LoginSettings, purpose: Purpose) -> Result<(LoginSettings, LoginTarget, PrivateDir), Error> {
    remove_leftovers(&settings.paths.session_dir)?;
    let target = LoginTarget::resolve(&settings, Destination::PrivateDir)?;
    let settings = settings.with_remembered(&target.remembered);
    let dir = PrivateDir::create(&settings.paths.session_dir, purpose)?;
    Ok((settings, target, dir))
}

/// Browser login into `dir`: a new OpenUnison session, its session file and a
/// kubeconfig whose only user is the exec stanza pointing at it.
fn log_in_privately(settings: &LoginSettings, target: &LoginTarget, dir: &PrivateDir) -> Result<(), Error> {
    let location = SessionLocation::isolated(dir.path());
    let session_ref = SessionRef::File(location.json_path());
    let logged_in = target::log_in(settings, &target.host, &location, session_ref)?;
    // Our writers' lock lives beside the shared sessions: in `dir` its name,
    // `kubeconfig.lock`, would be kubectl's own lock for `dir/kubeconfig`.
    target::write_entries(&KubeconfigSelection::Explicit(dir.kubeconfig()), settings, target, &logged_in)?;
    Ok(())
}
