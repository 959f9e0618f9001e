//! Running `exec`'s command: checked before any login, started with the
//! private kubeconfig and `active.lock`, signals forwarded, and its exit
//! status passed through the way a shell reports it.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use crate::error::{ExitStatus, Hint};

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
    /// The signal handlers that forward signals to the command could not be installed.
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
                Some(if program.contains('/') {
                    format!("check the path `{program}` (and, for a script, its `#!` line)")
                } else {
                    format!("check that `{program}` is installed and on PATH")
                })
            }
            ExecError::CannotStart { program, .. } => {
                Some(format!("check that `{program}` is an executable file (`chmod +x`) and not a directory"))
            }
            _ => None,
        }
    }
}

/// Runs `command` with `KUBECONFIG` pointing at `kubeconfig`
/// and the rest of the environment untouched, forwarding SIGINT, SIGTERM and
/// SIGHUP (except those in `ignored`, which the command inherits ignored),
/// and returns its exit status (128+N when it died of signal N).
/// `inherited` (a private directory's `active.lock`) stays open in the
/// command, and with it its flock.
pub fn run(
    command: &[OsString],
    kubeconfig: &Path,
    inherited: Option<&File>,
    ignored: &IgnoredSignals,
) -> Result<ExitStatus, ExecError> {
    let (program, args) = command.split_first().expect("clap requires a command");
    let shown = program.to_string_lossy().into_owned();
    let mut child_command = Command::new(program);
    child_command.args(args).env(crate::settings::env::KUBECONFIG, kubeconfig);
    prepare_child(&mut child_command, inherited.map(AsRawFd::as_raw_fd), ignored);
    let forwarder =
        SignalForwarder::install(ignored).map_err(|source| ExecError::Signals { program: shown.clone(), source })?;
    let mut child =
        child_command.spawn().map_err(|source| ExecError::CannotStart { program: shown.clone(), source })?;
    let status = forwarder.wait(&mut child).map_err(|source| ExecError::Wait { program: shown, source })?;
    Ok(ExitStatus::Child(exit_code(status)))
}

/// The shell's view of a finished process: its code, or 128+N for signal N.
pub fn exit_code(status: std::process::ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
        (None, None) => 1,
    }
}

/// The signals `exec` forwards to its command.
const FORWARDED_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Which of [`FORWARDED_SIGNALS`] the plugin was started with ignored (`nohup`,
/// background jobs of non-interactive shells). The login's own Ctrl-C handling
/// replaces those dispositions, so they are read before it, and the command
/// gets them ignored again, as if it had been started directly.
#[derive(Debug, Clone, Default)]
pub struct IgnoredSignals(Vec<libc::c_int>);

impl IgnoredSignals {
    /// Reads the current dispositions; call it before anything installs handlers.
    pub fn at_start() -> IgnoredSignals {
        IgnoredSignals(FORWARDED_SIGNALS.into_iter().filter(|&signal| is_ignored(signal)).collect())
    }

    fn contains(&self, signal: libc::c_int) -> bool {
        self.0.contains(&signal)
    }
}

fn is_ignored(signal: libc::c_int) -> bool {
    // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action
    // only reads the current disposition.
    unsafe {
        let mut current: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
    }
}

/// Between fork and exec: lets the child inherit `inherited_fd` (and so its
/// flock), and ignores the `ignored` signals again.
fn prepare_child(command: &mut Command, inherited_fd: Option<libc::c_int>, ignored: &IgnoredSignals) {
    use std::os::unix::process::CommandExt;
    let ignored = ignored.0.clone();
    // SAFETY: only fcntl(2) and signal(2) run between fork and exec: they are
    // async-signal-safe and touch no memory of the parent.
    unsafe {
        command.pre_exec(move || {
            if let Some(fd) = inherited_fd {
                let flags = libc::fcntl(fd, libc::F_GETFD);
                if flags < 0 || libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for &signal in &ignored {
                if libc::signal(signal, libc::SIG_IGN) == libc::SIG_ERR {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// Forwards termination signals that another process sent us to the child.
/// Signals the terminal generated (Ctrl-C) already reach the child through its
/// process group, so those are not sent a second time.
struct SignalForwarder {
    signals: signal_hook::iterator::SignalsInfo<signal_hook::iterator::exfiltrator::WithOrigin>,
}

impl SignalForwarder {
    fn install(ignored: &IgnoredSignals) -> io::Result<SignalForwarder> {
        let wanted = FORWARDED_SIGNALS.into_iter().filter(|&signal| !ignored.contains(signal));
        let signals =
            signal_hook::iterator::SignalsInfo::<signal_hook::iterator::exfiltrator::WithOrigin>::new(wanted)?;
        Ok(SignalForwarder { signals })
    }

    fn wait(mut self, child: &mut Child) -> io::Result<std::process::ExitStatus> {
        let pid = child.id() as libc::pid_t;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            for origin in self.signals.pending() {
                let from_terminal = matches!(origin.cause, signal_hook::low_level::siginfo::Cause::Kernel);
                if !from_terminal {
                    // SAFETY: kill(2) on our own child's pid.
                    unsafe {
                        libc::kill(pid, origin.signal);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Fails, before any login, when `program` cannot be run, looking it up on
/// `PATH` the way `execvp` does: 127 when it is nowhere, 126 when what is
/// there cannot be executed. Spawning can still fail later; that is reported
/// the same way.
pub fn check_runnable(program: &OsStr) -> Result<(), ExecError> {
    use std::os::unix::ffi::OsStrExt;
    let candidates: Vec<PathBuf> = if program.as_bytes().contains(&b'/') {
        vec![PathBuf::from(program)]
    } else {
        let Some(path) = std::env::var_os("PATH") else {
            return Ok(());
        };
        std::env::split_paths(&path)
            .map(|dir| if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir })
            .map(|dir| dir.join(program))
            .collect()
    };
    let mut found_unusable = false;
    for candidate in &candidates {
        if let Ok(meta) = fs::metadata(candidate) {
            if meta.is_file() && is_executable(candidate) {
                return Ok(());
            }
            found_unusable = true;
        }
    }
    let errno = if found_unusable { libc::EACCES } else { libc::ENOENT };
    Err(ExecError::CannotStart {
        program: program.to_string_lossy().into_owned(),
        source: io::Error::from_raw_os_error(errno),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) reads a NUL-terminated path that outlives the call.
    unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_shell() {
        let status = Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
        assert_eq!(exit_code(status), 7);
        let status = Command::new("sh").args(["-c", "kill -TERM $$"]).status().unwrap();
        assert_eq!(exit_code(status), 128 + 15);
    }

    #[test]
    fn commands_are_checked_like_execvp_would() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_runnable(OsStr::new("sh")).is_ok());
        assert!(check_runnable(OsStr::new("/bin/sh")).is_ok());
        let missing = check_runnable(OsStr::new("definitely-not-a-command-oulogin")).unwrap_err();
        assert_eq!(missing.exit_status(), ExitStatus::Child(EXIT_NOT_FOUND));
        let plain = dir.path().join("plain");
        fs::write(&plain, "echo hi").unwrap();
        let not_executable = check_runnable(plain.as_os_str()).unwrap_err();
        assert_eq!(not_executable.exit_status(), ExitStatus::Child(EXIT_CANNOT_RUN));
        assert_eq!(
            check_runnable(dir.path().as_os_str()).unwrap_err().exit_status(),
            ExitStatus::Child(EXIT_CANNOT_RUN)
        );
    }
}
