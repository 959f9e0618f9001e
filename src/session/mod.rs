//! Sessions: the file that holds one OpenUnison session's tokens (0600 in a
//! 0700 directory), its lock, and the `token` exec credential plugin that
//! refreshes it so that any number of processes share one refresh per expiry.
//!
//! Files of a session `X.json`: `X.lock` (flock held from reading the session
//! through a refresh or re-login to writing it back; never deleted),
//! `X.cooldown` (a browser login failed recently: fail fast, open no tab) and
//! `X.handouts` (which parent process got which token: the 401 heuristic).
//! Beside them, `.logouts.json` notes the host of contexts logged out of.

mod cooldown;
mod expiry;
mod handouts;
pub mod logouts;
mod probe;
mod renewer;
mod store;
mod token;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{FileError, Hint};

pub use cooldown::start as start_cool_down;
pub use probe::check_alive;
pub use store::{SESSION_FORMAT_VERSION, Secret, Session, SessionLocation, delete, load, store_login};
pub use token::{ExecApiVersion, TokenRequest, run_token};

/// Failures of the session store and the `token` command. No variant carries a token.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("no OpenUnison session in `{}`", path.display())]
    Missing { path: PathBuf, isolated: bool, host: Option<String> },

    #[error("the session file `{}` is damaged: {detail}", path.display())]
    Corrupt { path: PathBuf, detail: String },

    #[error("the session file `{}` has format version {version}, which this kubectl-oulogin does not know", path.display())]
    UnsupportedVersion { path: PathBuf, version: u32 },

    #[error("`{name}` is not a session name")]
    InvalidName { name: String },

    #[error("gave up after {} s waiting for {holder} to release `{}`", waited.as_secs(), path.display())]
    Busy { path: PathBuf, holder: String, waited: Duration },

    #[error("`KUBERNETES_EXEC_INFO` asks for `{version}`, which kubectl-oulogin does not speak")]
    UnsupportedExecApiVersion { version: String },

    #[error(
        "the OpenUnison session for `{host}` has ended (`{refused_by}` refused its refresh token) and no browser \
         may be opened to log in again: {reason}"
    )]
    Ended { host: String, refused_by: String, reason: &'static str, isolated: bool, flags: String },

    #[error(
        "the OpenUnison session for `{host}` has ended, and a browser login for it failed or was abandoned \
         recently; not opening another one for {left_secs} s"
    )]
    CoolingDown { host: String, left_secs: u64, isolated: bool, flags: String },

    #[error("OpenUnison at `{host}` returned an id_token without a readable expiry (`exp`)")]
    NoExpiry { host: String },

    #[error("cannot write the ExecCredential to stdout")]
    Output {
        #[source]
        source: std::io::Error,
    },

    #[error(transparent)]
    File(#[from] FileError),
}

/// The command that logs in again: shared sessions name the host; isolated
/// ones cannot be renewed in place by the user, only replaced.
/// `flags` are those the session remembers (`--port`, `--certificate-authority`).
fn login_again_hint(host: Option<&str>, isolated: bool, flags: &str) -> String {
    let host = host.unwrap_or("HOST");
    if isolated {
        format!(
            "this isolated session has ended; start a new one with `kubectl oulogin exec --host {host}{flags} -- \
             COMMAND` or `kubectl oulogin --isolated --host {host}{flags}`"
        )
    } else {
        format!("log in again with `kubectl oulogin --host {host}{flags} --force`")
    }
}

impl Hint for SessionError {
    fn hint(&self) -> Option<String> {
        match self {
            SessionError::Missing { isolated: true, host, .. } => Some(login_again_hint(host.as_deref(), true, "")),
            SessionError::Missing { host, .. } => {
                Some(format!("log in with `kubectl oulogin --host {}`", host.as_deref().unwrap_or("HOST")))
            }
            SessionError::Corrupt { .. } | SessionError::UnsupportedVersion { .. } => Some(
                "log in again with `kubectl oulogin --host HOST --force`, which rewrites the session file".to_string(),
            ),
            SessionError::InvalidName { .. } => {
                Some("the kubeconfig's exec stanza is damaged; log in again to rewrite it".to_string())
            }
            SessionError::Busy { .. } => {
                Some("if that process is stuck, end it: its lock is released as soon as it exits".to_string())
            }
            SessionError::UnsupportedExecApiVersion { .. } => Some(format!(
                "set `apiVersion: {}` in the kubeconfig's exec stanza, or log in again to rewrite it",
                ExecApiVersion::V1_NAME
            )),
            SessionError::Ended { host, isolated, flags, .. }
            | SessionError::CoolingDown { host, isolated, flags, .. } => {
                Some(login_again_hint(Some(host), *isolated, flags))
            }
            SessionError::NoExpiry { .. } | SessionError::Output { .. } => None,
            SessionError::File(err) => err.hint(),
        }
    }
}
