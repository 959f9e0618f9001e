//! Sessions: the file that holds one OpenUnison session's tokens (0600 in a
//! 0700 directory), its lock, and the `token` exec credential plugin that
//! refreshes it so that any number of processes share one refresh per expiry.
//!
//! Files of a session `X.json`: `X.lock` (flock held from reading the session
//! through a refresh or re-login to writing it back; never deleted),
//! `X.cooldown` (a browser login failed recently: fail fast, open no tab) and
//! `X.handouts` (which parent process got which token, which token the API
//! server took a moment ago: the 401 heuristic).
//! Beside them, `.logouts.json` notes the host of contexts logged out of.

mod cooldown;
pub mod ended;
mod expiry;
mod handouts;
pub mod logouts;
mod probe;
mod renewer;
mod store;
mod token;
mod verify;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{FileError, Hint};
use crate::settings::BrowserChoice;

pub use crate::openunison::clock::Receipt;
pub use cooldown::start as start_cool_down;
pub use expiry::{Lifetime, local_expiry_ms};
pub use probe::check_alive;
pub use store::{ApiServer, SESSION_FORMAT_VERSION, Secret, Session, SessionLocation, delete, load, store_login};
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
    Ended { host: String, refused_by: String, reason: &'static str, isolated: bool, remembered: LoginFlags },

    #[error(
        "the OpenUnison session for `{host}` has ended, and a browser login for it failed or was abandoned \
         recently; not opening another one for {left_secs} s"
    )]
    CoolingDown { host: String, left_secs: u64, isolated: bool, remembered: LoginFlags },

    #[error("OpenUnison at `{host}` returned an id_token without a readable expiry (`exp`)")]
    NoExpiry { host: String },

    /// SIGINT, SIGTERM or SIGHUP arrived while a refresh was held from it;
    /// acted on once the rotated tokens were saved.
    #[error("stopped by {} (after saving any refreshed tokens)", crate::platform::process::signal_name(*signal))]
    Interrupted { signal: i32 },

    #[error(transparent)]
    File(#[from] FileError),
}

/// The login flags a session remembers (`--certificate-authority`, `--port`,
/// the browser), as words for a login command in a hint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoginFlags(Vec<String>);

impl LoginFlags {
    pub fn of(session: &Session) -> LoginFlags {
        let mut words = Vec::new();
        if let Some(file) = &session.trust.ca_file {
            words.extend(["--certificate-authority".to_string(), file.to_string_lossy().into_owned()]);
        }
        if session.login_port != crate::settings::DEFAULT_PORT {
            words.extend(["--port".to_string(), session.login_port.to_string()]);
        }
        match &session.browser {
            BrowserChoice::Command(command) => words.extend(["--browser-command".to_string(), command.clone()]),
            BrowserChoice::NoBrowser => words.push("--no-browser".to_string()),
            BrowserChoice::BrowserEnv(_) | BrowserChoice::System => {}
        }
        LoginFlags(words)
    }
}

/// `kubectl oulogin WORDS...`, each word quoted for a POSIX shell, so that a
/// hint copied into a terminal runs what it says whatever the host name or
/// path holds. `COMMAND` stays a bare placeholder.
fn command_line<'a>(words: impl IntoIterator<Item = &'a str>) -> String {
    let mut line = String::from("kubectl oulogin");
    for word in words {
        line.push(' ');
        if word == "COMMAND" {
            line.push_str(word);
        } else {
            line.push_str(&shell_words::quote(word));
        }
    }
    line
}

/// The command that logs in again: shared sessions name the host; isolated
/// ones cannot be renewed in place by the user, only replaced.
fn login_again_hint(host: Option<&str>, isolated: bool, remembered: &LoginFlags) -> String {
    let host = host.unwrap_or("HOST");
    let flags = remembered.0.iter().map(String::as_str);
    if isolated {
        let exec = ["exec", "--host", host].into_iter().chain(flags.clone()).chain(["--", "COMMAND"]);
        let isolated = ["--isolated", "--host", host].into_iter().chain(flags);
        format!(
            "this isolated session has ended; start a new one with `{}` or `{}`",
            command_line(exec),
            command_line(isolated)
        )
    } else {
        let login = ["--host", host, "--force"].into_iter().chain(flags);
        format!("log in again with `{}`", command_line(login))
    }
}

impl Hint for SessionError {
    fn hint(&self) -> Option<String> {
        match self {
            SessionError::Missing { isolated: true, host, .. } => {
                Some(login_again_hint(host.as_deref(), true, &LoginFlags::default()))
            }
            SessionError::Missing { host, .. } => {
                Some(format!("log in with `{}`", command_line(["--host", host.as_deref().unwrap_or("HOST")])))
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
            SessionError::Ended { host, isolated, remembered, .. }
            | SessionError::CoolingDown { host, isolated, remembered, .. } => {
                Some(login_again_hint(Some(host), *isolated, remembered))
            }
            SessionError::NoExpiry { .. } | SessionError::Interrupted { .. } => None,
            SessionError::File(err) => err.hint(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command between the backticks of a hint, split as a POSIX shell would.
    fn commands_in(hint: &str) -> Vec<Vec<String>> {
        hint.split('`').skip(1).step_by(2).map(|command| shell_words::split(command).unwrap()).collect()
    }

    fn words(text: &[&str]) -> Vec<String> {
        text.iter().map(|word| word.to_string()).collect()
    }

    #[test]
    fn login_hints_quote_hosts_and_remembered_paths_for_the_shell() {
        let mut session = store::tests::sample("id", "rt");
        session.trust.ca_file = Some(PathBuf::from("/tmp/it's a dir/ca.pem"));
        session.login_port = 8401;
        session.browser = BrowserChoice::Command("firefox --new-window".to_string());
        let host = "ou.example.com;touch${IFS}pwned".to_string();
        let remembered = LoginFlags::of(&session);
        let ended = SessionError::Ended {
            host: host.clone(),
            refused_by: "u".into(),
            reason: "r",
            isolated: false,
            remembered: remembered.clone(),
        };
        let flags = [
            "--certificate-authority",
            "/tmp/it's a dir/ca.pem",
            "--port",
            "8401",
            "--browser-command",
            "firefox --new-window",
        ];
        let expected = [&["kubectl", "oulogin", "--host", &host, "--force"][..], &flags].concat();
        assert_eq!(commands_in(&ended.hint().unwrap()), [words(&expected)]);

        let cooling = SessionError::CoolingDown { host: host.clone(), left_secs: 5, isolated: true, remembered };
        let exec = [&["kubectl", "oulogin", "exec", "--host", &host][..], &flags, &["--", "COMMAND"]].concat();
        let isolated = [&["kubectl", "oulogin", "--isolated", "--host", &host][..], &flags].concat();
        assert_eq!(commands_in(&cooling.hint().unwrap()), [words(&exec), words(&isolated)]);

        let missing = SessionError::Missing { path: "/s.json".into(), isolated: false, host: Some(host.clone()) };
        assert_eq!(commands_in(&missing.hint().unwrap()), [words(&["kubectl", "oulogin", "--host", &host])]);
    }

    #[test]
    fn plain_sessions_need_no_flags_and_no_quotes() {
        let session = store::tests::sample("id", "rt");
        let ended = SessionError::Ended {
            host: "ou.example.com:8443".into(),
            refused_by: "u".into(),
            reason: "r",
            isolated: false,
            remembered: LoginFlags::of(&session),
        };
        assert_eq!(ended.hint().unwrap(), "log in again with `kubectl oulogin --host ou.example.com:8443 --force`");
    }
}
