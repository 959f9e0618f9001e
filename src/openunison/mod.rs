//! Talking to OpenUnison: the host and its endpoints, TLS trust, the
//! `cli-local` code exchange and id_token verification, the
//! `/k8slogin/token/user` bootstrap JSON, and k8sIdp refreshes.
//! Blocking functions; each runs its own small runtime only when called, so the
//! cached `token` path never builds an HTTP client.

use std::path::PathBuf;

use crate::error::Hint;

pub mod bootstrap;
pub mod cli_login;
pub mod client;
pub mod clock;
pub mod jwt;
mod refresh;
#[cfg(test)]
pub(crate) mod testing;
pub mod tls;

pub use bootstrap::{Bootstrap, BootstrapError};
pub use client::HttpError;
pub use jwt::JwtError;
pub use refresh::{RefreshError, refresh};
pub use tls::TrustError;

/// An OpenUnison host, `host[:port]`, without scheme or path, spelled as the
/// user typed it: OpenUnison compares the `cli-local` token's issuer (built
/// from the request's `Host` header) with its configured host name letter for
/// letter, so the case that goes into URLs, `Host` headers and issuers is the
/// user's. Two hosts that differ only in case are still the same host
/// (equality, hashing and [`Host::key`] ignore ASCII case), as DNS has it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Host(String);

impl PartialEq for Host {
    fn eq(&self, other: &Host) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }
}

impl Eq for Host {}

impl std::hash::Hash for Host {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl Host {
    /// Accepts `host`, `host:port` and, leniently, `https://host[:port][/]`.
    /// The default port 443 is dropped (OpenUnison's issuers never carry it);
    /// the host name keeps its case.
    pub fn parse(text: &str) -> Result<Host, OpenUnisonError> {
        let trimmed = text.trim();
        let bare = trimmed.strip_prefix("https://").unwrap_or(trimmed).trim_end_matches('/');
        let invalid = |why: &str| OpenUnisonError::InvalidHost { host: text.to_string(), why: why.to_string() };
        if bare.is_empty() {
            return Err(invalid("it is empty"));
        }
        if bare.contains("://") {
            return Err(invalid("only https is supported; give the host without a scheme"));
        }
        if bare.contains(['/', '?', '#', '@']) || bare.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid("give only `HOST` or `HOST:PORT`"));
        }
        let url = url::Url::parse(&format!("https://{bare}/")).map_err(|err| invalid(&err.to_string()))?;
        let normalised = url.host_str().ok_or_else(|| invalid("no host name"))?;
        // The URL parser lower-cases names (and rewrites IDNs, IPv6 and odd
        // IPv4 forms); keep what was typed when only the case differs.
        let typed = if bare.starts_with('[') { None } else { bare.split(':').next() };
        let name = typed.filter(|typed| typed.eq_ignore_ascii_case(normalised)).unwrap_or(normalised);
        Ok(Host(match url.port() {
            Some(port) => format!("{name}:{port}"),
            None => name.to_string(),
        }))
    }

    /// The host in lower case: the same for every spelling of one host (for
    /// file names and comparisons, never for what is sent).
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `https://host[:port]`
    pub fn base_url(&self) -> String {
        format!("https://{}", self.0)
    }

    /// The `cli-local` issuer: `https://HOST/auth/idp/k8s-login-cli`.
    pub fn cli_issuer(&self) -> String {
        format!("{}/auth/idp/k8s-login-cli", self.base_url())
    }

    /// The k8sIdp issuer: `https://HOST/auth/idp/k8sIdp`.
    pub fn k8s_issuer(&self) -> String {
        format!("{}/auth/idp/k8sIdp", self.base_url())
    }

    /// The k8sIdp token endpoint, where refreshes go.
    pub fn k8s_token_endpoint(&self) -> String {
        format!("{}/token", self.k8s_issuer())
    }

    /// Recovers the host from a legacy `idp-issuer-url` under `/auth/idp/`.
    pub fn from_issuer_url(issuer: &str) -> Option<Host> {
        let url = url::Url::parse(issuer).ok()?;
        if url.scheme() != "https" || !url.path().starts_with("/auth/idp/") {
            return None;
        }
        // The authority as written (the URL parser would lower-case it).
        let authority = issuer.get("https://".len()..)?.split(['/', '?', '#']).next()?;
        Host::parse(authority).ok()
    }
}

/// Parses a URL that came from the server (the bootstrap's API server URL, a
/// discovery document's endpoints): https only, and no control characters or
/// spaces anywhere. The URL parser silently drops tabs and line breaks, so a
/// URL with them would pass here while the raw text, stored for kubectl, fails
/// there.
pub fn server_url(text: &str) -> Result<url::Url, String> {
    if let Some(bad) = text.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!("`{}` contains the character {bad:?}", crate::output::sanitize_line(text)));
    }
    match url::Url::parse(text) {
        Ok(url) if url.scheme() == "https" && url.host_str().is_some_and(|host| !host.is_empty()) => Ok(url),
        Ok(_) => Err(format!("`{text}` is not an https:// URL")),
        Err(err) => Err(format!("`{text}` is not a URL ({err})")),
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Extra trust for the OpenUnison host on top of the system roots.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrustConfig {
    /// `--certificate-authority FILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM text kept with a session (the OpenUnison CA from the bootstrap JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// `--certificate-authority-data`, decoded: PEM the user gave on the command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_data: Option<String>,
}

impl TrustConfig {
    pub fn from_settings(ca_file: Option<PathBuf>) -> TrustConfig {
        TrustConfig { ca_file, ca_pem: None, ca_data: None }
    }
}

/// What the environment adds to the trust of every connection, resolved once
/// by the settings; never stored with a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustEnvironment {
    /// `SSL_CERT_FILE`: an extra CA bundle, on every platform.
    pub ssl_cert_file: Option<PathBuf>,
    /// `SSL_CERT_DIR` is set: the system store is read from there.
    pub ssl_cert_dir_set: bool,
}

/// Failures talking to OpenUnison. Every variant names the URL (or, for a
/// token that fails verification, the issuer).
#[derive(Debug, thiserror::Error)]
pub enum OpenUnisonError {
    /// `--host` is not a usable host.
    #[error("`{host}` is not a valid OpenUnison host: {why}")]
    InvalidHost { host: String, why: String },
    /// The CA certificates to trust could not be loaded.
    #[error(transparent)]
    Trust(#[from] TrustError),
    /// A request failed (transport, status, size, not JSON).
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The `cli-local` id_token failed verification.
    #[error(transparent)]
    Jwt(#[from] JwtError),
    /// The `/k8slogin/token/user` answer is unusable.
    #[error(transparent)]
    Bootstrap(#[from] BootstrapError),
    /// A k8sIdp refresh failed.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// The `cli-local` token endpoint refused the authorization code.
    #[error("`{url}` refused the authorization code (HTTP {status})")]
    CodeRejected { url: String, status: u16 },
    /// An answer is JSON, but not the JSON expected.
    #[error("the answer from `{url}` is unusable: {why}")]
    BadAnswer { url: String, why: String },
}

impl Hint for OpenUnisonError {
    fn hint(&self) -> Option<String> {
        match self {
            OpenUnisonError::InvalidHost { .. } => Some("give `--host HOST` or `--host HOST:PORT`".to_string()),
            OpenUnisonError::Trust(err) => err.hint(),
            OpenUnisonError::Http(err) => err.hint(),
            OpenUnisonError::Jwt(err) => err.hint(),
            OpenUnisonError::Bootstrap(err) => err.hint(),
            OpenUnisonError::Refresh(err) => err.hint(),
            OpenUnisonError::CodeRejected { status: 403, .. } => Some(
                "the code is only valid for a minute: log in again, and check that this computer's clock is right"
                    .to_string(),
            ),
            OpenUnisonError::CodeRejected { status: 400, .. } => {
                Some("OpenUnison did not accept the PKCE verifier; log in again".to_string())
            }
            OpenUnisonError::CodeRejected { .. } => Some("log in again".to_string()),
            OpenUnisonError::BadAnswer { .. } => {
                Some("check that `--host` names an OpenUnison with the `kubectl oulogin` CLI login enabled".to_string())
            }
        }
    }
}

/// Lets each of this module's errors end a command with `?`.
macro_rules! into_crate_error {
    ($($error:ty),*) => {$(
        impl From<$error> for crate::error::Error {
            fn from(err: $error) -> Self {
                crate::error::Error::OpenUnison(err.into())
            }
        }
    )*};
}
into_crate_error!(TrustError, HttpError, JwtError, BootstrapError, RefreshError);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised_but_keep_their_case() {
        assert_eq!(Host::parse("OU.Example.com").unwrap().as_str(), "OU.Example.com");
        assert_eq!(Host::parse("https://OU.Example.com:443/").unwrap().as_str(), "OU.Example.com");
        assert_eq!(Host::parse("OU.Example.com").unwrap(), Host::parse("ou.example.com").unwrap());
        assert_eq!(Host::parse("OU.Example.com").unwrap().key(), "ou.example.com");
        assert_eq!(Host::parse("127.1:8443").unwrap().as_str(), "127.0.0.1:8443");
        assert_eq!(Host::parse("[0:0::1]:8443").unwrap().as_str(), "[::1]:8443");
        assert_eq!(Host::parse("https://ou.example.com:8443/").unwrap().as_str(), "ou.example.com:8443");
        assert_eq!(Host::parse("ou.example.com:443").unwrap().as_str(), "ou.example.com");
        assert!(Host::parse("http://ou.example.com").is_err());
        assert!(Host::parse("ou.example.com/path").is_err());
        assert!(Host::parse("").is_err());
    }

    #[test]
    fn server_urls_with_control_characters_or_spaces_are_refused() {
        assert!(server_url("https://api.example.com:6443").is_ok());
        for bad in [
            "https://api.example.com\n:6443",
            "https://api.\texample.com",
            "https://api.example.com/\r",
            "https://api.example.com/a b",
            "https://api.example.com/\u{1b}[2J",
            "http://api.example.com",
            "https://",
            "api.example.com",
        ] {
            let err = server_url(bad).unwrap_err();
            assert!(!err.contains('\n') && !err.contains('\t') && !err.contains('\u{1b}'), "{err:?}");
        }
        // What the URL parser alone would have let through.
        assert!(url::Url::parse("https://api.example.com\n:6443").is_ok());
    }

    #[test]
    fn legacy_issuers_give_their_host() {
        let host = Host::from_issuer_url("https://ou.example.com:8443/auth/idp/k8sIdp").unwrap();
        assert_eq!(host.as_str(), "ou.example.com:8443");
        let host = Host::from_issuer_url("https://OU.Example.com/auth/idp/k8sIdp").unwrap();
        assert_eq!(host.as_str(), "OU.Example.com");
        assert!(Host::from_issuer_url("https://dex.example.com/dex").is_none());
    }
}
