//! Private, atomic file handling shared by sessions and kubeconfigs: 0700
//! directories that belong to us, 0600 files written by temp-file-and-rename,
//! and OS advisory locks that a crashed holder can never leave stuck.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::FileError;

/// What [`FileError`]s about untrustworthy files and directories say they
/// cannot do; their hints tell how to fix each.
pub const ACTION_TRUST_DIR: &str = "trust directory";
pub const ACTION_USE_FOREIGN_DIR: &str = "use directory";
pub const ACTION_TRUST_FILE: &str = "trust";
pub const ACTION_USE_FOREIGN_FILE: &str = "use";

/// Creates `dir` (and parents) as 0700 if missing, and refuses a directory that
/// another user owns or that group or others may write to.
pub fn ensure_private_dir(dir: &Path) -> Result<(), FileError> {
    if !dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|err| FileError::new("create directory", dir, err))?;
    }
    check_private_dir(dir)
}

/// Refuses a directory owned by someone else or writable by group/others.
pub fn check_private_dir(dir: &Path) -> Result<(), FileError> {
    let meta = fs::metadata(dir).map_err(|err| FileError::new("read directory", dir, err))?;
    // SAFETY: geteuid(2) cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(FileError::new(
            ACTION_USE_FOREIGN_DIR,
            dir,
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("it is owned by uid {}, not by you (uid {uid})", meta.uid()),
            ),
        ));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(FileError::new(
            ACTION_TRUST_DIR,
            dir,
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("it is writable by group or others (mode {:o})", meta.mode() & 0o777),
            ),
        ));
    }
    Ok(())
}

/// Reads a file that holds secrets, refusing it when group or others can read or
/// write it, or when another user owns it.
pub fn read_private(path: &Path) -> Result<Vec<u8>, FileError> {
    let mut file = File::open(path).map_err(|err| FileError::new("read", path, err))?;
    let meta = file.metadata().map_err(|err| FileError::new("read", path, err))?;
    // SAFETY: geteuid(2) cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid || meta.mode() & 0o077 != 0 {
        let action = if meta.uid() != uid { ACTION_USE_FOREIGN_FILE } else { ACTION_TRUST_FILE };
        return Err(FileError::new(
            action,
            path,
            io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "it holds secrets but has mode {:o} and owner uid {}; it must be 0600 and yours",
                    meta.mode() & 0o777,
                    meta.uid()
                ),
            ),
        ));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).map_err(|err| FileError::new("read", path, err))?;
    Ok(bytes)
}

/// Our temporary files are `.oulogin-<pid>-<random>.tmp`: the PID lets a
/// later run recognise, and remove, one that a killed process left behind.
const TEMP_PREFIX: &str = ".oulogin-";
const TEMP_SUFFIX: &str = ".tmp";

/// A new temporary file in `dir`, named for this process, with `mode`.
fn temp_file_in(dir: &Path, mode: u32) -> io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
        .suffix(TEMP_SUFFIX)
        .permissions(fs::Permissions::from_mode(mode))
        .tempfile_in(dir)
}

/// Removes temporary files in `dir` that kubectl-oulogin processes which no
/// longer exist left behind (killed between creating and renaming them).
/// Best effort: a file whose process may still run is left alone.
pub fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temp_file_pid) else { continue };
        if pid != std::process::id() && !process_exists(pid) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// The PID in a temporary file's name `.oulogin-<pid>-<random>.tmp`.
fn temp_file_pid(name: &str) -> Option<u32> {
    let middle = name.strip_prefix(TEMP_PREFIX)?.strip_suffix(TEMP_SUFFIX)?;
    let (pid, random) = middle.split_once('-')?;
    if random.is_empty() {
        return None;
    }
    pid.parse().ok()
}

/// Whether a process with this PID exists (one we may not signal counts).
pub fn process_exists(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let signalled = unsafe { libc::kill(pid, 0) } == 0;
    signalled || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Creates `path` only if nothing has that name yet (as `O_CREAT|O_EXCL`
/// does), already holding `content`: the content goes into a temporary file
/// that is then hard-linked to `path`, and link(2) fails on an existing name.
/// So `path` never exists without its content, even if we are killed
/// midway. An existing `path` gives [`io::ErrorKind::AlreadyExists`].
pub fn create_new_with(path: &Path, content: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temp_files(&dir);
    let mut temp = temp_file_in(&dir, mode)?;
    temp.write_all(content)?;
    match fs::hard_link(temp.path(), path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Err(err),
        // A file system without hard links: create, then write.
        Err(_) => {
            let mut file = OpenOptions::new().write(true).create_new(true).mode(mode).open(path)?;
            file.write_all(content)
        }
    }
}

/// Replaces `path` atomically with `bytes`: a temporary file in the same
/// directory, created with `mode`, synced, then renamed over the target. A
/// symlinked target is followed so the link keeps pointing at the new content.
/// Temporary files that killed runs left in that directory are removed first.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    let target = resolve_symlinks(path);
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temp_files(&dir);
    let mut temp = temp_file_in(&dir, mode).map_err(|err| FileError::new("create a temporary file in", &dir, err))?;
    // The umask may have narrowed the mode; set it exactly.
    fs::set_permissions(temp.path(), fs::Permissions::from_mode(mode))
        .map_err(|err| FileError::new("set permissions of", temp.path(), err))?;
    temp.write_all(bytes).map_err(|err| FileError::new("write", temp.path(), err))?;
    temp.as_file().sync_all().map_err(|err| FileError::new("sync", temp.path(), err))?;
    temp.persist(&target).map_err(|err| FileError::new("replace", &target, err.error))?;
    Ok(())
}

/// Like [`write_atomic`], but keeps the mode of an existing file (0600 for a new one).
pub fn write_atomic_keep_mode(path: &Path, bytes: &[u8]) -> Result<(), FileError> {
    let mode = fs::metadata(resolve_symlinks(path)).map(|meta| meta.mode() & 0o7777).unwrap_or(0o600);
    write_atomic(path, bytes, mode)
}

/// Follows a chain of symlinks (bounded) to the file they point at, even when
/// that file does not exist yet.
pub fn resolve_symlinks(path: &Path) -> PathBuf {
    let mut current = path.to_path_buf();
    for _ in 0..40 {
        match fs::read_link(&current) {
            Ok(target) => {
                current = if target.is_absolute() {
                    target
                } else {
                    current.parent().map(|parent| parent.join(&target)).unwrap_or(target)
                };
            }
            Err(_) => break,
        }
    }
    current
}

/// What a lock holder is doing, written into the lock file so that waiters can
/// say what they wait for.
pub const HOLDER_REFRESH: &str = "refresh";
pub const HOLDER_LOGIN: &str = "browser login";

/// An exclusive OS advisory lock on a dedicated lock file, released when
/// dropped or when the process dies (`flock(2)`).
#[derive(Debug)]
pub struct Lock {
    file: File,
}

/// The outcome of waiting for a lock that stayed busy.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(transparent)]
    File(#[from] FileError),
    #[error("gave up after {waited:?} waiting for {holder} to release `{path}`")]
    TimedOut { path: PathBuf, holder: String, waited: Duration },
}

impl Lock {
    /// Takes the lock, waiting at most `timeout`. After `notice_after`,
    /// `on_wait` is called once with a description of the holder (its PID and
    /// what it is doing), so the caller can tell the user what it waits for.
    ///
    /// A busy lock is waited for with a blocking `flock` on a helper thread,
    /// so the waiter wakes the moment the holder lets go (polling with a
    /// back-off made a storm of waiters queue for tens of milliseconds each).
    /// If the wait runs out, the helper stays blocked until the lock frees up
    /// and then drops it at once: nobody is kept waiting by a waiter that gave up.
    pub fn acquire(
        path: &Path,
        timeout: Duration,
        notice_after: Duration,
        mut on_wait: impl FnMut(&str),
    ) -> Result<Lock, LockError> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => {
                crate::debug!(2, "lock {}: taken", path.display());
                return Ok(Lock { file });
            }
            Err(fs::TryLockError::WouldBlock) => {}
            Err(fs::TryLockError::Error(err)) => return Err(FileError::new("lock", path, err).into()),
        }
        let started = Instant::now();
        crate::debug!("lock {} is held by {}; waiting", path.display(), describe_holder(path));
        let (sender, receiver) = std::sync::mpsc::sync_channel::<io::Result<File>>(1);
        std::thread::Builder::new()
            .name("lock-wait".into())
            .spawn(move || {
                let locked = file.lock().map(|()| file);
                // When the receiver is gone, the unsent file is dropped here,
                // which releases the lock at once.
                let _ = sender.send(locked);
            })
            .map_err(|err| FileError::new("wait for lock", path, err))?;
        let mut noticed = false;
        loop {
            let waited = started.elapsed();
            if waited >= timeout {
                return Err(LockError::TimedOut { path: path.to_path_buf(), holder: describe_holder(path), waited });
            }
            let until = if noticed { timeout } else { notice_after.min(timeout) };
            match receiver.recv_timeout(until.saturating_sub(waited)) {
                Ok(Ok(file)) => {
                    crate::debug!("lock {}: taken after waiting {} ms", path.display(), started.elapsed().as_millis());
                    return Ok(Lock { file });
                }
                Ok(Err(err)) => return Err(FileError::new("lock", path, err).into()),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if !noticed && started.elapsed() >= notice_after && started.elapsed() < timeout {
                        noticed = true;
                        on_wait(&describe_holder(path));
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    let err = io::Error::other("the thread waiting for the lock ended without it");
                    return Err(FileError::new("lock", path, err).into());
                }
            }
        }
    }

    /// Takes the lock only if it is free right now.
    pub fn try_acquire(path: &Path) -> Result<Option<Lock>, FileError> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => {
                crate::debug!(2, "lock {}: taken", path.display());
                Ok(Some(Lock { file }))
            }
            Err(fs::TryLockError::WouldBlock) => Ok(None),
            Err(fs::TryLockError::Error(err)) => Err(FileError::new("lock", path, err)),
        }
    }

    /// Records who holds the lock and why, for waiters' messages.
    pub fn set_holder(&mut self, activity: &str) {
        let line = format!("{} {}\n", std::process::id(), activity);
        // Best effort: the record only feeds a message.
        let _ = self.file.set_len(0);
        let _ = self.file.rewind();
        let _ = self.file.write_all(line.as_bytes());
    }
}

/// Opens (creating, 0600) a lock file without touching its holder record.
fn open_lock_file(path: &Path) -> Result<File, FileError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|err| FileError::new("open lock file", path, err))
}

/// "process 1234 (refresh)" from a lock file's holder record.
pub fn describe_holder(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut words = text.split_whitespace();
    match (words.next(), words.collect::<Vec<_>>().join(" ")) {
        (Some(pid), activity) if !activity.is_empty() => format!("process {pid} ({activity})"),
        (Some(pid), _) => format!("process {pid}"),
        _ => "another process".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_is_private_and_follows_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"one", 0o600).unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"one");
        assert_eq!(fs::metadata(&real).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn keep_mode_keeps_an_existing_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(&path, b"x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic_keep_mode(&path, b"y").unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o640);
        let fresh = dir.path().join("fresh");
        write_atomic_keep_mode(&fresh, b"z").unwrap();
        assert_eq!(fs::metadata(&fresh).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn loose_secret_files_and_dirs_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        fs::write(&path, b"x").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read_private(&path).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_private(&path).unwrap(), b"x");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o777)).unwrap();
        assert!(check_private_dir(dir.path()).is_err());
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_private_dir(dir.path()).is_ok());
    }

    #[test]
    fn temporary_files_of_dead_processes_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        // PIDs above the kernel's maximum (4194304) never belong to a process.
        let dead = dir.path().join(".oulogin-999999999-AbC123.tmp");
        let ours = dir.path().join(format!(".oulogin-{}-XyZ789.tmp", std::process::id()));
        let alive = dir.path().join(".oulogin-1-QqQqQq.tmp");
        let unrelated = dir.path().join(".oulogin-999999999.tmp");
        for path in [&dead, &ours, &alive, &unrelated] {
            fs::write(path, b"x").unwrap();
        }
        write_atomic(&dir.path().join("config"), b"new", 0o600).unwrap();
        assert!(!dead.exists(), "a dead process's temporary file stayed");
        assert!(ours.exists() && alive.exists() && unrelated.exists());
        assert_eq!(temp_file_pid(".oulogin-42-abc.tmp"), Some(42));
        assert_eq!(temp_file_pid(".oulogin-42-.tmp"), None);
        assert_eq!(temp_file_pid("config"), None);
    }

    #[test]
    fn create_new_with_refuses_an_existing_name_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("config.lock");
        create_new_with(&lock, b"record\n", 0o600).unwrap();
        assert_eq!(fs::read(&lock).unwrap(), b"record\n");
        assert_eq!(fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
        let err = create_new_with(&lock, b"other\n", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&lock).unwrap(), b"record\n");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(names, ["config.lock"]);
    }

    #[test]
    fn a_held_lock_times_out_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.lock");
        let mut first = Lock::acquire(&path, Duration::from_secs(1), Duration::from_secs(1), |_| {}).unwrap();
        first.set_holder(HOLDER_REFRESH);
        let mut told = None;
        let err = Lock::acquire(&path, Duration::from_millis(300), Duration::from_millis(50), |holder| {
            told = Some(holder.to_string())
        })
        .unwrap_err();
        let expected = format!("process {} (refresh)", std::process::id());
        assert_eq!(told.as_deref(), Some(expected.as_str()));
        assert!(matches!(err, LockError::TimedOut { .. }), "{err}");
        drop(first);
        // The waiter that gave up takes the freed lock on its helper thread and
        // drops it at once: the lock is free again within a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Lock::try_acquire(&path).unwrap().is_none() {
            assert!(Instant::now() < deadline, "a waiter that gave up kept the lock");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_waiter_gets_the_lock_when_the_holder_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.lock");
        let holder = Lock::try_acquire(&path).unwrap().expect("a free lock");
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(holder);
        });
        let mut told = false;
        let lock = Lock::acquire(&path, Duration::from_secs(30), Duration::from_secs(20), |_| told = true);
        assert!(lock.is_ok(), "{lock:?}");
        assert!(!told, "no notice for a short wait");
        releaser.join().unwrap();
        assert!(Lock::try_acquire(&path).unwrap().is_none(), "the waiter holds it now");
    }
}
