//! Running `exec`'s command: found before any login, started with the
//! private kubeconfig and `active.lock`, and its exit status passed through
//! the way a shell reports it. How a platform finds, starts and waits for a
//! program (signals, Job Objects) is `platform::process`'s; this file holds
//! what `exec` makes of it.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::Path;
use std::process::Command;

use crate::error::{ExitStatus, Hint};
use crate::platform::process::{self, ChildError, IgnoredSignals};

/// Exit status when the command cannot be found (shell convention).
pub const EXIT_NOT_FOUND: u8 = 127;
/// Exit status when the command exists but cannot be started (shell convention).
pub const EXIT_CANNOT_RUN: u8 = 126;

/// Failures of `exec` and `--isolated`.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    /// The command to run does not exist or cannot be executed.
    #[error("cannot run `{program}`")]
    CannotStart {
        program: String,
        #[source]
        source: io::Error,
    },
    /// The handling of termination requests while the command runs could not be set up.
    #[error("cannot forward signals to `{program}`")]
    Signals {
        program: String,
        #[source]
        source: io::Error,
    },
    /// Waiting for the command failed.
    #[error("lost track of `{program}`")]
    Wait {
        program: String,
        #[source]
        source: io::Error,
    },
}

impl ExecError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            ExecError::CannotStart { source, .. } if source.kind() == io::ErrorKind::NotFound => {
                ExitStatus::Child(EXIT_NOT_FOUND)
            }
            ExecError::CannotStart { .. } => ExitStatus::Child(EXIT_CANNOT_RUN),
            ExecError::Signals { .. } | ExecError::Wait { .. } => ExitStatus::Failure,
        }
    }
}

impl Hint for ExecError {
    fn hint(&self) -> Option<String> {
        match self {
            ExecError::CannotStart { source, program } if source.kind() == io::ErrorKind::NotFound => {
                Some(process::not_found_advice(program))
            }
            ExecError::CannotStart { program, .. } => Some(process::cannot_run_advice(program)),
            _ => None,
        }
    }
}

/// `exec`'s command, found and ready to start once the login is done.
#[derive(Debug)]
pub struct Runnable {
    /// The program as the user wrote it, for messages.
    shown: String,
    /// What to start: the program as given (Unix, where exec looks it up on
    /// `PATH`) or the file found through `PATH` and `PATHEXT` (Windows).
    program: OsString,
    args: Vec<OsString>,
}

impl Runnable {
    /// Finds `command`'s program, before any login, so that a mistyped command
    /// costs none: 127 when it is nowhere, 126 when what is there cannot be
    /// executed. Starting it can still fail later; that is reported the same way.
    pub fn find(command: &[OsString]) -> Result<Runnable, ExecError> {
        let (program, args) = command.split_first().expect("clap requires a command");
        let shown = program.to_string_lossy().into_owned();
        match process::find_program(program) {
            Ok(found) => Ok(Runnable { shown, program: found, args: args.to_vec() }),
            Err(source) => Err(ExecError::CannotStart { program: shown, source }),
        }
    }

    /// Runs the command with `KUBECONFIG` pointing at `kubeconfig` and the rest
    /// of the environment untouched, and returns its exit status as the shell
    /// reports it (128+N when it died of signal N). `shared` (a private
    /// directory's `active.lock`) stays held for as long as the command runs;
    /// the `ignored` signals are ignored in it as they were in the plugin (see
    /// `platform::process::run_child`).
    pub fn run(
        self,
        kubeconfig: &Path,
        shared: Option<&File>,
        ignored: &IgnoredSignals,
    ) -> Result<ExitStatus, ExecError> {
        let mut command = Command::new(&self.program);
        command.args(&self.args).env(crate::settings::env::KUBECONFIG, kubeconfig);
        let program = self.shown;
        match process::run_child(command, shared, ignored) {
            Ok(code) => Ok(ExitStatus::Child(code)),
            Err(ChildError::Start(source)) => Err(ExecError::CannotStart { program, source }),
            Err(ChildError::Signals(source)) => Err(ExecError::Signals { program, source }),
            Err(ChildError::Wait(source)) => Err(ExecError::Wait { program, source }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cannot_start(kind: io::ErrorKind) -> ExecError {
        ExecError::CannotStart { program: "k9s".into(), source: io::Error::from(kind) }
    }

    #[test]
    fn start_failures_get_the_shells_exit_statuses() {
        assert_eq!(cannot_start(io::ErrorKind::NotFound).exit_status(), ExitStatus::Child(EXIT_NOT_FOUND));
        assert_eq!(cannot_start(io::ErrorKind::PermissionDenied).exit_status(), ExitStatus::Child(EXIT_CANNOT_RUN));
        let lost = ExecError::Wait { program: "k9s".into(), source: io::Error::other("gone") };
        assert_eq!(lost.exit_status(), ExitStatus::Failure);
        assert!(cannot_start(io::ErrorKind::NotFound).hint().unwrap().contains("PATH"));
        assert!(cannot_start(io::ErrorKind::PermissionDenied).hint().unwrap().contains("`k9s`"));
    }

    #[test]
    fn a_missing_command_is_found_missing_before_anything_runs() {
        let err = Runnable::find(&["definitely-not-a-command-oulogin".into(), "arg".into()]).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::Child(EXIT_NOT_FOUND));
        assert!(err.to_string().contains("definitely-not-a-command-oulogin"), "{err}");
    }
}
