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
    Exec(#[from] crate::isolation::child::ExecError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error(transparent)]
    Ended(#[from] crate::session::ended::EndedError),
    /// Stdout was closed (`| head -1`): the command ends normally, exit 0
    /// and nothing printed (see `output::stdout`).
    #[error("standard output was closed")]
    StdoutClosed,
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
            Error::Ended(err) => err.hint(),
            Error::Usage { hint, .. } => hint.clone(),
            Error::StdoutClosed => None,
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
        self.render_after(format!("error: {}", crate::output::sanitize(&self.to_string())))
    }

    /// Renders an error that does not end the command: `warning: CONTEXT:
    /// ERROR` (or `warning: ERROR`), then its causes and hint as
    /// [`render`](Error::render) shows them.
    pub fn render_as_warning(&self, context: Option<&str>) -> String {
        let message = crate::output::sanitize(&self.to_string());
        let first = match context {
            Some(context) => format!("warning: {}: {message}", crate::output::sanitize(context)),
            None => format!("warning: {message}"),
        };
        self.render_after(first)
    }

    /// `first`, then a `caused by:` line per cause and the `hint:` line.
    fn render_after(&self, first: String) -> String {
        let mut text = first;
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
            Error::StdoutClosed => ExitStatus::Success,
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
    pub action: FileAction,
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl FileError {
    pub fn new(action: impl Into<FileAction>, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FileError { action: action.into(), path: path.into(), source }
    }
}

/// What a [`FileError`] could not do. The refusals of untrustworthy files and
/// directories are variants of their own, each with the hint that fixes it;
/// everything else is plain I/O named by its verb ("read", "replace").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileAction {
    Io(&'static str),
    /// A private directory others may write.
    TrustDir,
    /// A private directory that is not ours (another owner, a symlink, not a directory).
    UseForeignDir,
    /// A file with secrets others may read or write.
    TrustFile,
    /// A file with secrets that another user owns.
    UseForeignFile,
    /// A directory above a private one that others could rename entries in.
    KeepUnder,
}

impl From<&'static str> for FileAction {
    fn from(verb: &'static str) -> Self {
        FileAction::Io(verb)
    }
}

impl std::fmt::Display for FileAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FileAction::Io(verb) => verb,
            FileAction::TrustDir => "trust directory",
            FileAction::UseForeignDir => "use directory",
            FileAction::TrustFile => "trust",
            FileAction::UseForeignFile => "use",
            FileAction::KeepUnder => "keep private files under",
        })
    }
}

/// Why a file or directory cannot hold secrets: the refused action and the
/// reason, in the platform's terms (modes and uids, or access-control entries).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub action: FileAction,
    pub why: String,
}

impl Hint for FileError {
    fn hint(&self) -> Option<String> {
        let quoted = || shell_words::quote(&self.path.to_string_lossy()).into_owned();
        match self.action {
            FileAction::TrustDir => {
                return Some(format!(
                    "make it private with `{}`",
                    crate::platform::files::make_private_command(&quoted(), true)
                ));
            }
            FileAction::UseForeignDir => {
                return Some(format!(
                    "sessions must live in a directory of your own: remove `{}` (it is created again) or set \
                     `KUBECACHEDIR` to a directory of yours",
                    self.path.display()
                ));
            }
            FileAction::KeepUnder => {
                return Some(format!(
                    "set `KUBECACHEDIR` to a directory of yours, or (if `{}` is yours) {}",
                    self.path.display(),
                    crate::platform::files::protect_entries_advice(&quoted()),
                ));
            }
            FileAction::TrustFile => {
                return Some(format!(
                    "make it private with `{}`; if someone else could have read it, log in again with `--force` \
                     so that its tokens are replaced",
                    crate::platform::files::make_private_command(&quoted(), false)
                ));
            }
            FileAction::UseForeignFile => {
                return Some(format!("remove `{}` and log in again", self.path.display()));
            }
            FileAction::Io(_) => {}
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
