//! The crate's error type, how errors are rendered (`error:` / `caused by:` /
//! `hint:`), and the process exit statuses (README, "Exit codes").

use std::path::PathBuf;
use std::process::ExitCode;

/// Anything that ends a command unsuccessfully.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Login(#[from] crate::login::LoginError),
    #[error(transparent)]
    OpenUnison(#[from] crate::openunison::OpenUnisonError),
    #[error(transparent)]
    Kubeconfig(#[from] crate::kubeconfig::KubeconfigError),
    #[error(transparent)]
    Session(#[from] crate::session::SessionError),
    #[error(transparent)]
    Exec(#[from] crate::exec::ExecError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Manage(#[from] crate::manage::ManageError),
    /// The command line or environment asked for something impossible (exit 2).
    #[error("{message}")]
    Usage { message: String, hint: Option<String> },
}

/// Errors that can say what the user should do about them.
pub trait Hint {
    /// A `hint:` line naming what to do, where one helps.
    fn hint(&self) -> Option<String> {
        None
    }
}

impl Hint for Error {
    fn hint(&self) -> Option<String> {
        match self {
            Error::Login(err) => err.hint(),
            Error::OpenUnison(err) => err.hint(),
            Error::Kubeconfig(err) => err.hint(),
            Error::Session(err) => err.hint(),
            Error::Exec(err) => err.hint(),
            Error::File(err) => err.hint(),
            Error::Manage(err) => err.hint(),
            Error::Usage { hint, .. } => hint.clone(),
        }
    }
}

impl Error {
    /// A signal held during a refresh arrived: the command must end (exit
    /// 130/143/129) instead of carrying on as if the refresh had just failed.
    pub fn is_interrupted(&self) -> bool {
        matches!(self, Error::Session(crate::session::SessionError::Interrupted { .. }))
    }

    pub fn usage(message: impl Into<String>, hint: Option<String>) -> Self {
        Error::Usage { message: message.into(), hint }
    }

    /// What caused the error, outermost first (the error itself left out).
    pub fn causes(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        std::iter::successors(std::error::Error::source(self), |cause| cause.source())
    }

    /// Renders the error as the lines printed on stderr.
    pub fn render(&self) -> String {
        let mut text = format!("error: {}", crate::output::sanitize(&self.to_string()));
        for cause in self.causes() {
            text.push_str(&format!("\n  caused by: {}", crate::output::sanitize(&cause.to_string())));
        }
        if let Some(hint) = self.hint() {
            text.push_str(&format!("\nhint: {}", crate::output::sanitize(&hint)));
        }
        text
    }

    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::Usage { .. } => ExitStatus::Usage,
            Error::Login(crate::login::LoginError::Cancelled) => ExitStatus::Interrupted,
            Error::Session(crate::session::SessionError::Interrupted { signal }) => {
                ExitStatus::Signalled(u8::try_from(*signal).unwrap_or(0))
            }
            Error::Exec(err) => err.exit_status(),
            _ => ExitStatus::Failure,
        }
    }
}

/// An I/O failure on a named file: every file error names its file.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} `{path}`")]
pub struct FileError {
    pub action: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    pub fn new(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError { action, path: path.into(), source }
    }
}

impl Hint for FileError {
    fn hint(&self) -> Option<String> {
        let quoted = || shell_words::quote(&self.path.to_string_lossy()).into_owned();
        match self.action {
            crate::files::ACTION_TRUST_DIR => return Some(format!("make it private with `chmod 700 {}`", quoted())),
            crate::files::ACTION_USE_FOREIGN_DIR => {
                return Some(format!(
                    "sessions must live in a directory of your own: remove `{}` (it is created again) or set \
                     `KUBECACHEDIR` to a directory of yours",
                    self.path.display()
                ));
            }
            crate::files::ACTION_KEEP_UNDER => {
                return Some(format!(
                    "set `KUBECACHEDIR` to a directory of yours, or (if `{}` is yours) make it sticky with \
                     `chmod +t {}` or private with `chmod go-w {}`",
                    self.path.display(),
                    quoted(),
                    quoted()
                ));
            }
            crate::files::ACTION_TRUST_FILE => {
                return Some(format!(
                    "make it private with `chmod 600 {}`; if someone else could have read it, log in again with \
                     `--force` so that its tokens are replaced",
                    quoted()
                ));
            }
            crate::files::ACTION_USE_FOREIGN_FILE => {
                return Some(format!("remove `{}` and log in again", self.path.display()));
            }
            _ => {}
        }
        match self.source.kind() {
            std::io::ErrorKind::PermissionDenied => {
                Some(format!("check the permissions of `{}` and its directory", self.path.display()))
            }
            _ => None,
        }
    }
}

/// How the process ends (README, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Success,
    /// The operation failed (login, server, kubeconfig).
    Failure,
    /// Usage error, as clap's own.
    Usage,
    /// Ctrl-C cancelled the operation: 130, as a shell reports SIGINT.
    Interrupted,
    /// `exec` passes its child's status through.
    Child(u8),
    /// `token` acted on a signal it held during a refresh: 128 + its number, as a shell reports it.
    Signalled(u8),
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        match status {
            ExitStatus::Success => ExitCode::SUCCESS,
            ExitStatus::Failure => ExitCode::from(1),
            ExitStatus::Usage => ExitCode::from(2),
            ExitStatus::Interrupted => ExitCode::from(130),
            ExitStatus::Child(code) => ExitCode::from(code),
            ExitStatus::Signalled(signal) => ExitCode::from(128u8.saturating_add(signal)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_follow_the_contract() {
        assert_eq!(Error::usage("bad flag", None).exit_status(), ExitStatus::Usage);
        assert_eq!(Error::from(crate::login::LoginError::Cancelled).exit_status(), ExitStatus::Interrupted);
        let file = FileError::new("read", "/x", std::io::Error::from(std::io::ErrorKind::NotFound));
        assert_eq!(Error::from(file).exit_status(), ExitStatus::Failure);
        // SIGHUP's number (and Windows' console closing).
        let hangup = Error::from(crate::session::SessionError::Interrupted { signal: 1 });
        assert_eq!(hangup.exit_status(), ExitStatus::Signalled(1));
    }

    #[test]
    fn rendering_shows_cause_and_hint() {
        let err = Error::usage("no host", Some("run `kubectl oulogin --host HOST`".into()));
        assert_eq!(err.render(), "error: no host\nhint: run `kubectl oulogin --host HOST`");
        let file = FileError::new("read", "/etc/x", std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let text = Error::from(file).render();
        assert!(text.starts_with("error: cannot read `/etc/x`\n  caused by: "), "{text}");
        assert!(text.contains("\nhint: "), "{text}");
    }
}
