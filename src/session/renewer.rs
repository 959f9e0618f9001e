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

/// TEMPORARY stand-in for `crate::openunison::jwt::read_times` (unverified `exp`/`iat`).
pub mod jwt {
    use base64::Engine;

    pub struct TokenTimes {
        pub exp: i64,
        pub iat: Option<i64>,
    }

    pub fn read_times(token: &str) -> Result<TokenTimes, ()> {
        #[derive(serde::Deserialize)]
        struct Claims {
            exp: i64,
            iat: Option<i64>,
        }
        let payload = token.split('.').nth(1).ok_or(())?;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| ())?;
        let claims: Claims = serde_json::from_slice(&bytes).map_err(|_| ())?;
        Ok(TokenTimes { exp: claims.exp, iat: claims.iat })
    }
}
