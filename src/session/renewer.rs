//! The real network side of `token`: k8sIdp refreshes and browser logins
//! through the `openunison` and `login` modules, and asking the API server
//! whether it takes a token. Only reached when the cached token will not do
//! (or may have been rejected), so the hot path never builds an HTTP client.

use std::path::Path;

use crate::error::Error;
use crate::login::{self, LoginRequest};
use crate::openunison::{self, OpenUnisonError, RefreshError};

use super::store::{ApiServer, Secret, Session};
use super::token::{RefreshFailure, Renewal, Renewer};
use super::verify::{self, Verdict};

/// Talks to the OpenUnison a session belongs to.
pub struct OpenUnison;

impl Renewer for OpenUnison {
    fn refresh(&self, session: &Session) -> Result<Renewal, RefreshFailure> {
        let refreshed =
            openunison::refresh(&session.host, &session.token_endpoint, &session.trust, session.refresh_token.expose());
        match refreshed {
            Ok(tokens) => Ok(Renewal {
                id_token: Secret::new(tokens.id_token),
                refresh_token: Secret::new(tokens.refresh_token),
                receipt: tokens.receipt,
                ou_ca_pem: None,
                user: None,
                api_server: None,
            }),
            Err(RefreshError::SessionGone { url }) => Err(RefreshFailure::SessionGone { url }),
            Err(other) => Err(RefreshFailure::Other(OpenUnisonError::from(other).into())),
        }
    }

    fn browser_login(&self, session: &Session, session_dir: &Path) -> Result<Renewal, Error> {
        let request = LoginRequest {
            host: session.host.clone(),
            trust: session.trust.clone(),
            browser: session.browser.clone(),
            port: session.login_port,
            timeout: session.login_timeout(),
            lock_dir: session_dir.to_path_buf(),
        };
        let bootstrap = login::browser_login(&request)?;
        Ok(Renewal {
            id_token: Secret::new(bootstrap.id_token),
            refresh_token: Secret::new(bootstrap.refresh_token),
            receipt: bootstrap.receipt,
            ou_ca_pem: bootstrap.ou_ca_pem,
            user: Some(bootstrap.display_name),
            api_server: Some(ApiServer { url: bootstrap.server, ca_pem: bootstrap.k8s_ca_pem }),
        })
    }

    fn verify(&self, api_server: &ApiServer, token: &Secret) -> Verdict {
        verify::verify(api_server, token.expose())
    }
}
