//! `kubectl oulogin token`, the exec credential plugin kubectl runs: the
//! work is in `session::token`; here only its dispatch, and the failure of
//! the stanza `logout` leaves (`token --logged-out`).

use crate::cli::{GlobalArgs, TokenArgs};
use crate::error::{Error, ExitStatus};
use crate::openunison::Host;
use crate::session;
use crate::session::ended::EndedError;
use crate::settings::{Paths, TokenSettings};

/// `token`: hands kubectl a fresh id_token (refreshed under the session's lock).
pub fn token_command(global: &GlobalArgs, args: &TokenArgs) -> Result<ExitStatus, Error> {
    if args.logged_out {
        return Err(logged_out_error(args.host.as_deref(), global.context.as_deref()));
    }
    session::run_token(session::TokenRequest::new(TokenSettings::resolve(args)?))?;
    Ok(ExitStatus::Success)
}

/// What `token --logged-out` fails with: names the command that logs in
/// again, with the port and CA that `logout` noted for the context.
fn logged_out_error(host: Option<&str>, context: Option<&str>) -> Error {
    let flags = Paths::from_env()
        .ok()
        .and_then(|paths| {
            let host = Host::parse(host?).ok()?;
            session::logouts::load(&paths.session_dir).find_by_host(context, &host)
        })
        .map(|note| note.remembered.without_removed_ca_file().login_flags())
        .unwrap_or_default();
    EndedError::LoggedOut { context: context.map(str::to_string), host: host.map(str::to_string), flags }.into()
}
