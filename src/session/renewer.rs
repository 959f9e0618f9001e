//! The real network side of `token`: k8sIdp refreshes and browser logins
//! through the `openunison` and `login` modules. Only reached when the cached
//! token will not do, so the hot path never builds an HTTP client.

use std::path::Path;

use crate::error::Error;
use crate::openunison::{self, OpenUnisonError, RefreshError};

use super::store::{Secret, Session};
use super::token::{RefreshFailure, Renewal, Renewer};

/// Talks to the OpenUnison a session belongs to.
pub struct OpenUnison;

impl Renewer for OpenUnison {
    fn refresh(&self, session: &Session) -> Result<Renewal, RefreshFailure> {
        let refreshed = openunison::refresh(
            &session.host,
            &session.token_endpoint,
            &session.trust,
            session.refresh_token.expose(),
        );
        match refreshed {
            Ok(tokens) => Ok(Renewal {
                id_token: Secret::new(tokens.id_token),
                refresh_token: Secret::new(tokens.refresh_token),
                ou_ca_pem: None,
                user: None,
            }),
            Err(RefreshError::SessionGone { url }) => Err(RefreshFailure::SessionGone { url }),
            Err(other) => Err(RefreshFailure::Other(OpenUnisonError::from(other).into())),
        }
    }

    // TEMPORARY: until `crate::login::browser_login` lands.
    fn browser_login(&self, session: &Session, session_dir: &Path) -> Result<Renewal, Error> {
        let _ = (session, session_dir);
        Err(Error::usage("browser login is not wired yet", None))
    }
}
