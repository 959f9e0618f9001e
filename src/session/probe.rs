//! Whether a session still works, asked of OpenUnison without ever opening a
//! browser: for `kubectl oulogin` reusing a login, `status --check`, and the
//! clean-up of isolated directories nobody uses any more.

use crate::error::Error;
use crate::files;
use crate::platform::process::HeldSignals;

use super::SessionError;
use super::store::{self, SessionLocation};
use super::token::{RefreshFailure, Renewer, stop_if_signalled};

/// Refreshes the session under its lock and stores the rotated tokens: `true`
/// when OpenUnison accepted the refresh, `false` when the session is gone (or
/// there is no session file). A refresh proves more than a fresh-looking token,
/// since the server may have ended the session since.
pub fn check_alive(location: &SessionLocation) -> Result<bool, Error> {
    check_alive_with(location, &super::renewer::OpenUnison)
}

pub(crate) fn check_alive_with(location: &SessionLocation, renewer: &dyn Renewer) -> Result<bool, Error> {
    match store::check_dir(location) {
        Err(SessionError::Missing { .. }) => return Ok(false),
        other => other?,
    }
    let mut lock = store::lock(location)?;
    let mut session = match store::read_in_checked_dir(location) {
        Ok(session) => session,
        Err(SessionError::Missing { .. }) => return Ok(false),
        Err(err) => return Err(err.into()),
    };
    lock.set_holder(files::HOLDER_REFRESH);
    // As for `token`: no Ctrl-C between the server spending the refresh token and our saving its successor.
    let mut held = HeldSignals::hold();
    let alive = match renewer.refresh(&session) {
        Ok(renewal) => {
            session.id_token = renewal.id_token;
            session.refresh_token = renewal.refresh_token;
            session.id_token_received = Some(renewal.receipt);
            store::save(location, &session).map(|()| true).map_err(Error::from)
        }
        Err(RefreshFailure::SessionGone { .. }) => Ok(false),
        Err(RefreshFailure::Other(err)) => Err(err),
    };
    stop_if_signalled(&mut held)?;
    alive
}
