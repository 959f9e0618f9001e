//! A private directory holding one tool's kubeconfig and session: created
//! owner-only (0700; Windows: an owner-only access list) under
//! `$KUBECACHEDIR/oulogin/isolated/` with `active.lock` already held, then
//! kept (`--isolated`) or removed (`exec`, and any failed run).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use super::ACTIVE_LOCK;
use super::child::{ExecError, Runnable};
use crate::error::{ExitStatus, FileError};
use crate::files;
use crate::platform::process::IgnoredSignals;

/// What a private directory is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `exec`: removed when the command exits.
    Exec,
    /// `--isolated`: kept for the user's shell, removed once its session is dead.
    Isolated,
}

impl Purpose {
    pub(super) fn prefix(self) -> &'static str {
        match self {
            Purpose::Exec => "exec-",
            Purpose::Isolated => "isolated-",
        }
    }
}

/// A private directory holding one tool's kubeconfig and session.
#[derive(Debug)]
pub struct PrivateDir {
    path: PathBuf,
    /// The flock on `active.lock`; `exec`'s command inherits it.
    active: Option<File>,
    keep: bool,
}

/// The parent of all private directories.
pub fn private_root(session_dir: &Path) -> PathBuf {
    session_dir.join("isolated")
}

impl PrivateDir {
    /// Creates a new owner-only directory under `private_root`, with `active.lock`
    /// already locked by this process.
    pub fn create(session_dir: &Path, purpose: Purpose) -> Result<PrivateDir, FileError> {
        let root = private_root(session_dir);
        files::ensure_private_dir(session_dir)?;
        files::ensure_private_dir(&root)?;
        let mut builder = tempfile::Builder::new();
        let dir = crate::platform::files::temp_file_mode(builder.prefix(purpose.prefix()), 0o700)
            .tempdir_in(&root)
            .map_err(|err| FileError::new("create a private directory in", &root, err))?;
        // Our own Drop decides when the directory goes, not the TempDir guard.
        let mut private = PrivateDir { path: dir.keep(), active: None, keep: false };
        private.active = Some(create_locked(&private.path.join(ACTIVE_LOCK))?);
        Ok(private)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.path.join("kubeconfig")
    }

    /// Keeps the directory when this guard is dropped (a finished `--isolated` login).
    pub fn keep(mut self) -> PathBuf {
        self.keep = true;
        self.path.clone()
    }

    /// Runs `command` with `KUBECONFIG` pointing at this directory's kubeconfig,
    /// handing it `active.lock` (see [`Runnable::run`]).
    pub fn run(&self, command: Runnable, ignored: &IgnoredSignals) -> Result<ExitStatus, ExecError> {
        command.run(&self.kubeconfig(), self.active.as_ref(), ignored)
    }

    /// Closes `active.lock` before the directory goes: where deleting leaves an
    /// open file "delete pending" until it is closed (Windows without POSIX
    /// delete semantics, as under wine), the directory would not be empty. A
    /// later run's clean-up may then remove it at the same time, which is
    /// harmless: both only remove, and an entry already gone is no error.
    fn release(&mut self) {
        drop(self.active.take());
    }

    /// Removes the directory now; unlike dropping the guard, says when that fails.
    pub fn remove(mut self) -> Result<(), FileError> {
        self.keep = true;
        self.release();
        match fs::remove_dir_all(&self.path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(FileError::new("remove", &self.path, err)),
            _ => Ok(()),
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if !self.keep {
            self.release();
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Creates `path` already locked: the lock is taken on a file under another
/// name, which is then renamed, so that a clean-up running at the same moment
/// never finds `path` unlocked.
fn create_locked(path: &Path) -> Result<File, FileError> {
    let pending = path.with_extension("lock.new");
    let file = crate::platform::files::create_mode(OpenOptions::new().write(true).create_new(true), 0o600)
        .open(&pending)
        .map_err(|err| FileError::new("create", &pending, err))?;
    file.lock().map_err(|err| FileError::new("lock", &pending, err))?;
    fs::rename(&pending, path).map_err(|err| FileError::new("create", path, err))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_gone_by_the_time_it_starts_maps_to_127() {
        let cache = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&cache.path().join("oulogin"), Purpose::Exec).unwrap();
        // Found before the login, removed during it. On Windows a program
        // (a `.cmd` would start `cmd.exe`, which exits 1 on a missing script);
        // on Unix a script.
        #[cfg(windows)]
        let script = {
            let program = cache.path().join("vanishing.exe");
            fs::copy(std::env::current_exe().unwrap(), &program).unwrap();
            program
        };
        #[cfg(not(windows))]
        let script = {
            let script = cache.path().join("vanishing.cmd");
            fs::write(&script, "exit 0\n").unwrap();
            crate::platform::files::set_mode(&script, 0o700).unwrap();
            script
        };
        let command = Runnable::find(&[script.clone().into_os_string()]).unwrap();
        fs::remove_file(&script).unwrap();
        let err = dir.run(command, &IgnoredSignals::at_start()).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::Child(127));
        assert!(err.to_string().contains("vanishing."), "{err}");
    }
}
