//! Sessions that have ended, as errors: a context logged out of (`token
//! --logged-out`) and `status --check`'s sessions that are not alive, each
//! with the command that logs in again.

use crate::error::Hint;

/// Failures of `status` and `logout`, and of `token` for a context logged out of.
#[derive(Debug, thiserror::Error)]
pub enum EndedError {
    /// `token --logged-out`: the stanza `logout` left ran.
    #[error("{} is logged out (`kubectl oulogin logout`); kubectl does not log in again by itself", what_was_logged_out(.context.as_deref(), .host.as_deref()))]
    LoggedOut { context: Option<String>, host: Option<String>, flags: String },
    /// `status --check`: some session is not alive.
    #[error("{} of the checked sessions {} not alive", .logins.len(), if .logins.len() == 1 { "is" } else { "are" })]
    NotAlive {
        /// The command that logs in again, per context.
        logins: Vec<String>,
    },
}

fn what_was_logged_out(context: Option<&str>, host: Option<&str>) -> String {
    match (context, host) {
        (Some(context), Some(host)) => format!("context `{context}` ({host})"),
        (Some(context), None) => format!("context `{context}`"),
        (None, Some(host)) => format!("this context ({host})"),
        (None, None) => "this context".to_string(),
    }
}

impl Hint for EndedError {
    fn hint(&self) -> Option<String> {
        match self {
            EndedError::LoggedOut { context, host, flags } => {
                Some(format!("log in again with `{}`", login_again_command(context.as_deref(), host.as_deref(), flags)))
            }
            EndedError::NotAlive { logins } => Some(format!(
                "log in again with {}",
                logins.iter().map(|login| format!("`{login}`")).collect::<Vec<_>>().join(", ")
            )),
        }
    }
}

/// The login command for a context (or, when its name is not known, its
/// host), with the flags it must repeat.
pub fn login_again_command(context: Option<&str>, host: Option<&str>, flags: &str) -> String {
    match (context, host) {
        (Some(context), _) => format!("kubectl oulogin --context {}{flags}", shell_words::quote(context)),
        (None, Some(host)) => format!("kubectl oulogin --host {}{flags}", shell_words::quote(host)),
        (None, None) => format!("kubectl oulogin --host HOST{flags}"),
    }
}
