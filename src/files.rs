//! Private, atomic file handling shared by sessions and kubeconfigs: private
//! directories that belong to us, private files written by
//! temp-file-and-rename, and OS advisory locks that a crashed holder can
//! never leave stuck. What "private" means on each platform (modes and uids,
//! or access-control lists) is `platform::files`'.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{FileAction, FileError, Refusal};
use crate::platform::files as platform;

pub use crate::platform::files::Owner;

/// Creates `dir` (and parents) private if missing, and refuses a directory that
/// another user owns or that group or others may write to (see [`check_private_dir`]).
pub fn ensure_private_dir(dir: &Path) -> Result<(), FileError> {
    if fs::symlink_metadata(dir).is_err() {
        platform::make_private_dir(dir).map_err(|err| FileError::new("create directory", dir, err))?;
    }
    check_private_dir(dir)
}

/// Refuses a private directory that is a symlink, is owned by someone else or
/// is writable by group or others, and one that another user could swap for
/// another: every directory above it (as written and as resolved) must be one
/// that no other user may rename entries in, that is owned by root or by us,
/// and writable by others only with the sticky bit (as `/tmp`). Only we and
/// root can change what is checked here, so a check stays true until we write.
pub fn check_private_dir(dir: &Path) -> Result<(), FileError> {
    let meta = fs::symlink_metadata(dir).map_err(|err| FileError::new("read directory", dir, err))?;
    let refuse = |action: FileAction, why: String| Err(refused(dir, Refusal { action, why }));
    if meta.file_type().is_symlink() {
        let target = fs::read_link(dir).map(|target| target.display().to_string()).unwrap_or_default();
        return refuse(
            FileAction::UseForeignDir,
            format!(
                "it is a symbolic link (to `{target}`), not a directory; whoever made it chooses where sessions go"
            ),
        );
    }
    if !meta.is_dir() {
        return refuse(FileAction::UseForeignDir, "it is not a directory".to_string());
    }
    if let Some(refusal) = platform::private_dir_refusal(dir, &meta) {
        return Err(refused(dir, refusal));
    }
    check_parents(dir)
}

/// The [`FileError`] of a refusal to trust `path`.
fn refused(path: &Path, refusal: Refusal) -> FileError {
    FileError::new(refusal.action, path, io::Error::new(io::ErrorKind::PermissionDenied, refusal.why))
}

/// Every directory above `dir`, as written and as the kernel resolves it,
/// must keep other users from renaming `dir` or an ancestor away (see
/// [`check_private_dir`]).
fn check_parents(dir: &Path) -> Result<(), FileError> {
    let absolute = std::path::absolute(dir).map_err(|err| FileError::new("read directory", dir, err))?;
    let Some(parent) = absolute.parent() else { return Ok(()) };
    let resolved = fs::canonicalize(parent).map_err(|err| FileError::new("read directory", parent, err))?;
    let written = parent.ancestors();
    let real = if resolved == parent { None } else { Some(resolved.ancestors()) };
    for ancestor in written.chain(real.into_iter().flatten()) {
        let meta = fs::metadata(ancestor).map_err(|err| FileError::new("read directory", ancestor, err))?;
        if let Some(why) = platform::parent_refusal(ancestor, &meta) {
            return Err(FileError::new(
                FileAction::KeepUnder,
                ancestor,
                io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{why}, so they could replace `{}` with a directory of their choice", dir.display()),
                ),
            ));
        }
    }
    Ok(())
}

/// Reads a file that holds secrets, refusing it when group or others can read or
/// write it, or when another user owns it.
pub fn read_private(path: &Path) -> Result<Vec<u8>, FileError> {
    let mut file = File::open(path).map_err(|err| FileError::new("read", path, err))?;
    let meta = file.metadata().map_err(|err| FileError::new("read", path, err))?;
    if let Some(refusal) = platform::secret_file_refusal(&file, path, &meta) {
        return Err(refused(path, refusal));
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
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
    platform::temp_file_mode(&mut builder, mode).tempfile_in(dir)
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
    crate::platform::process::is_alive(pid)
}

/// Creates `path` only if nothing has that name yet (as `O_CREAT|O_EXCL`
/// does), already holding `content` and already flock-ed by us: the content
/// goes into a temporary file, locked, that is then hard-linked to `path`,
/// and link(2) fails on an existing name. So `path` never exists without its
/// content, or unlocked while we live, even if we are killed midway; the
/// returned file keeps the lock (the OS drops it when we die). An existing
/// `path` gives [`io::ErrorKind::AlreadyExists`].
pub fn create_new_locked(path: &Path, content: &[u8], mode: u32) -> io::Result<File> {
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temp_files(&dir);
    let mut temp = temp_file_in(&dir, mode)?;
    // A file system without flock is no worse off than before: the lock is
    // only what lets a later run tell a live holder from a dead one.
    let _ = temp.as_file().try_lock();
    temp.write_all(content)?;
    platform::publish_new(temp, path, content, mode)
}

/// Replaces `path` atomically with `bytes`: a temporary file in the same
/// directory, created with `mode`, synced, then renamed over the target. A
/// symlinked target is followed so the link keeps pointing at the new content.
/// Temporary files that killed runs left in that directory are removed first.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), FileError> {
    replace_file(path, bytes, mode, None)
}

/// [`write_atomic`] that also hands the new file to `owner` (where we may:
/// root may give it to anyone, others may keep a group they belong to), as
/// kubectl's in-place write keeps the owner. Without it, `sudo kubectl
/// oulogin` would leave a user's kubeconfig owned by root.
pub fn replace_file(path: &Path, bytes: &[u8], mode: u32, owner: Option<Owner>) -> Result<(), FileError> {
    let target = resolve_symlinks(path);
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    remove_stale_temp_files(&dir);
    let mut temp = temp_file_in(&dir, mode).map_err(|err| FileError::new("create a temporary file in", &dir, err))?;
    if let Some(owner) = owner {
        platform::give_to(temp.as_file(), owner).map_err(|err| FileError::new("keep the owner of", &target, err))?;
    }
    // The umask may have narrowed the mode (and a change of owner may have
    // cleared set-id bits); set it exactly.
    platform::set_mode(temp.path(), mode).map_err(|err| FileError::new("set permissions of", temp.path(), err))?;
    temp.write_all(bytes).map_err(|err| FileError::new("write", temp.path(), err))?;
    temp.as_file().sync_all().map_err(|err| FileError::new("sync", temp.path(), err))?;
    platform::replace_with(temp, &target).map_err(|err| FileError::new("replace", &target, err))
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
pub const HOLDER_VERIFY: &str = "check with the API server";

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
    #[error("gave up after {} waiting for {holder} to release `{path}`", humantime::format_duration(std::time::Duration::from_secs(.waited.as_secs())))]
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
    platform::create_mode(OpenOptions::new().read(true).write(true).create(true).truncate(false), 0o600)
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
    #[cfg(unix)]
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};

    /// The effective uid, whose files we may trust: a new file's owner.
    #[cfg(unix)]
    fn effective_uid() -> u32 {
        tempfile::tempfile().unwrap().metadata().unwrap().uid()
    }

    #[cfg(unix)]
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

    #[cfg(unix)]
    #[test]
    fn a_replaced_file_keeps_the_owner_and_group_it_is_given() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        fs::write(&path, b"x").unwrap();
        // Root can give the file to anyone (the `sudo` case); others keep their own.
        let nobody = Owner { uid: 65534, gid: 65534 };
        let wanted = if effective_uid() == 0 {
            std::os::unix::fs::chown(&path, Some(nobody.uid), Some(nobody.gid)).unwrap();
            nobody
        } else {
            let meta = fs::metadata(&path).unwrap();
            Owner { uid: meta.uid(), gid: meta.gid() }
        };
        replace_file(&path, b"y", 0o640, Some(wanted)).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!((meta.uid(), meta.gid(), meta.mode() & 0o7777), (wanted.uid, wanted.gid, 0o640));
        assert_eq!(fs::read(&path).unwrap(), b"y");
    }

    #[cfg(unix)]
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

    #[cfg(unix)]
    #[test]
    fn a_symlinked_private_dir_is_refused_and_nothing_is_made_where_it_points() {
        let temp = tempfile::tempdir().unwrap();
        let elsewhere = temp.path().join("chosen-by-someone-else");
        fs::DirBuilder::new().mode(0o700).create(&elsewhere).unwrap();
        let planted = temp.path().join("oulogin");
        std::os::unix::fs::symlink(&elsewhere, &planted).unwrap();
        let err = ensure_private_dir(&planted).unwrap_err();
        assert_eq!((err.action, err.path.as_path()), (FileAction::UseForeignDir, planted.as_path()));
        assert!(err.source.to_string().contains("symbolic link"), "{err:?}");
        // A dangling one neither creates its target nor passes.
        let dangling = temp.path().join("dangling");
        std::os::unix::fs::symlink(temp.path().join("not-yet"), &dangling).unwrap();
        assert!(ensure_private_dir(&dangling).is_err());
        assert!(!temp.path().join("not-yet").exists());
    }

    #[cfg(unix)]
    #[test]
    fn a_parent_others_may_write_must_be_sticky() {
        let temp = tempfile::tempdir().unwrap();
        let shared = temp.path().join("shared");
        fs::create_dir(&shared).unwrap();
        let dir = shared.join("oulogin");
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        let err = ensure_private_dir(&dir).unwrap_err();
        assert_eq!((err.action, err.path.as_path()), (FileAction::KeepUnder, shared.as_path()));
        assert!(err.source.to_string().contains("not sticky (mode 777)"), "{err:?}");
        assert!(err.source.to_string().contains(&format!("`{}`", dir.display())), "{err:?}");
        assert!(crate::error::Hint::hint(&err).unwrap().contains("chmod +t"), "{err:?}");
        // Like /tmp: others may write it, but not rename or remove what is ours.
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
        ensure_private_dir(&dir).unwrap();
        // A parent reached through a symlink is judged as what it resolves to.
        let link = temp.path().join("link");
        std::os::unix::fs::symlink(&shared, &link).unwrap();
        check_private_dir(&link.join("oulogin")).unwrap();
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o777)).unwrap();
        assert_eq!(check_private_dir(&link.join("oulogin")).unwrap_err().path, link);
        // ... also when the loose directory is further up the resolved path only.
        let sub = shared.join("sub");
        fs::DirBuilder::new().mode(0o700).recursive(true).create(sub.join("oulogin")).unwrap();
        let deep_link = temp.path().join("deep-link");
        std::os::unix::fs::symlink(&sub, &deep_link).unwrap();
        assert_eq!(check_private_dir(&deep_link.join("oulogin")).unwrap_err().path, shared);
        // Group write from our own primary group is ours (umask 002 setups).
        fs::set_permissions(&shared, fs::Permissions::from_mode(0o775)).unwrap();
        check_private_dir(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_parent_another_user_owns_is_refused() {
        let temp = tempfile::tempdir().unwrap();
        let theirs = temp.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        let dir = theirs.join("oulogin");
        fs::DirBuilder::new().mode(0o700).create(&dir).unwrap();
        check_private_dir(&dir).unwrap();
        if effective_uid() == 0 {
            // Sticky or not, the owner of a directory may rename anything in it.
            std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
            fs::set_permissions(&theirs, fs::Permissions::from_mode(0o1755)).unwrap();
            let err = check_private_dir(&dir).unwrap_err();
            assert_eq!(err.path, theirs);
            assert!(err.source.to_string().contains("owned by uid 65534"), "{err:?}");
        } else {
            // A directory root owns is trusted; one of another user is not.
            assert!(platform::parent_refusal(Path::new("/"), &fs::metadata("/").unwrap()).is_none());
        }
    }

    #[cfg(unix)]
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
    fn create_new_locked_refuses_an_existing_name_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("config.lock");
        let held = create_new_locked(&lock, b"record\n", 0o600).unwrap();
        assert_eq!(fs::read(&lock).unwrap(), b"record\n");
        #[cfg(unix)]
        assert_eq!(fs::metadata(&lock).unwrap().mode() & 0o777, 0o600);
        let err = create_new_locked(&lock, b"other\n", 0o600).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&lock).unwrap(), b"record\n");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|entry| entry.unwrap().file_name()).collect();
        assert_eq!(names, ["config.lock"]);
        // The new name is locked by its creator from the start, until it lets go.
        let other = File::open(&lock).unwrap();
        assert!(matches!(other.try_lock(), Err(fs::TryLockError::WouldBlock)));
        drop(held);
        assert!(other.try_lock().is_ok());
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
