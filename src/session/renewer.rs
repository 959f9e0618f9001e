//! The real network side of `token`: k8sIdp refreshes and browser logins
//! through the `openunison` and `login` modules. Only reached when the cached
//! token will not do, so the hot path never builds an HTTP client.

use std::path::Path;

use crate::error::Error;

use super::store::{Secret, Session};
use super::token::{RefreshFailure, Renewal, Renewer};

/// Talks to the OpenUnison a session belongs to.
pub struct OpenUnison;

// TEMPORARY: until `crate::openunison::refresh` and `crate::login::browser_login` land.
impl Renewer for OpenUnison {
    fn refresh(&self, session: &Session) -> Result<Renewal, RefreshFailure> {
        let _ = (Secret::new(""), session);
        Err(RefreshFailure::Other(Error::usage("refresh is not wired yet", None)))
    }

    fn browser_login(&self, session: &Session, session_dir: &Path) -> Result<Renewal, Error> {
        let _ = (session, session_dir);
        Err(Error::usage("browser login is not wired yet", None))
    }
}
