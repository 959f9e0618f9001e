//! Removing what killed runs and discarded shells left behind.
//!
//! Every `exec` and `--isolated` run first cleans up, quietly (it never fails
//! the run):
//! - a directory whose `active.lock` is held is in use, and kept;
//! - an `exec` directory whose lock is free can be used by nobody: removed;
//! - an `--isolated` directory whose lock is free belongs to a shell we cannot
//!   see. Its last use is the newest mtime of `kubeconfig`, `session.json` and
//!   `session.handouts` (every refresh rewrites `session.json`). Without a
//!   kubeconfig, its login never finished: removed. Unused for
//!   [`ISOLATED_IDLE_BEFORE_PROBE`], it is probed (one refresh, at most once per
//!   that period as recorded by touching `session.probed`, and not while its
//!   session lock is held) and removed once OpenUnison says the session is
//!   gone. A probe is not a use (it puts `session.json`'s mtime back), but it
//!   does keep the server session alive, so a directory unused for
//!   [`ISOLATED_MAX_IDLE`] is removed without asking; so is an `--auth-provider`
//!   one, which has no session file to probe;
//! - a directory without `active.lock` after [`CREATION_GRACE`] is a run killed
//!   while creating it: removed.
//!
//! Removing the files is all a client can do: OpenUnison keeps a discarded

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::private_dir::{Purpose, private_root};
use super::{ACTIVE_LOCK, PROBED_MARKER};
use crate::error::Error;
use crate::files;
use crate::session::{self, SessionLocation};

/// An `--isolated` session left unused this long is probed, and removed once
/// OpenUnison no longer refreshes it (OpenUnison's default inactivity timeout).
pub const ISOLATED_IDLE_BEFORE_PROBE: Duration = Duration::from_secs(900);
/// An `--isolated` directory left unused this long is removed without a probe.
pub const ISOLATED_MAX_IDLE: Duration = Duration::from_secs(24 * 3600);
/// A directory still without `active.lock` this long after its last change
/// belongs to a run killed while creating it.
const CREATION_GRACE: Duration = Duration::from_secs(60);

/// A leftover directory and what to do with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Leftover {
    /// Nobody can use it any more: remove it.
    Remove(PathBuf),
    /// An `--isolated` session unused for long: remove it if its session is dead.
    Probe(PathBuf),
}

/// Whether anybody holds a directory's `active.lock`.
enum Activity {
    InUse,
    Unused,
    /// No lock file (yet).
    NoLock,
}

fn activity(dir: &Path) -> Activity {
    match OpenOptions::new().write(true).open(dir.join(ACTIVE_LOCK)) {
        // The lock is ours only for this look: the file closes at once.
        Ok(file) => match file.try_lock() {
            Ok(()) => Activity::Unused,
            Err(_) => Activity::InUse,
        },
        Err(err) if err.kind() == io::ErrorKind::NotFound => Activity::NoLock,
        Err(_) => Activity::InUse,
    }
}

/// Decides, for every private directory, whether a later run removes it, probes
/// its session, or leaves it alone (see the module documentation).
pub fn find_leftovers(session_dir: &Path, now: SystemTime) -> Vec<Leftover> {
    let Ok(entries) = fs::read_dir(private_root(session_dir)) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let purpose = if name.starts_with(Purpose::Exec.prefix()) {
            Purpose::Exec
        } else if name.starts_with(Purpose::Isolated.prefix()) {
            Purpose::Isolated
        } else {
            continue;
        };
        let verdict = match (activity(&path), purpose) {
            (Activity::InUse, _) => None,
            (Activity::NoLock, _) => (idle_for(&path, now) > CREATION_GRACE).then_some(Leftover::Remove(path)),
            (Activity::Unused, Purpose::Exec) => Some(Leftover::Remove(path)),
            (Activity::Unused, Purpose::Isolated) => isolated_verdict(path, now),
        };
        found.extend(verdict);
    }
    found
}

fn isolated_verdict(dir: PathBuf, now: SystemTime) -> Option<Leftover> {
    let unused_for = ["kubeconfig", "session.json", "session.handouts"]
        .iter()
        .map(|name| idle_for(&dir.join(name), now))
        .min()
        .unwrap_or(Duration::MAX);
    let has_session = dir.join("session.json").exists();
    if !dir.join("kubeconfig").exists() || unused_for > ISOLATED_MAX_IDLE {
        Some(Leftover::Remove(dir))
    } else if has_session
        && unused_for > ISOLATED_IDLE_BEFORE_PROBE
        && idle_for(&dir.join(PROBED_MARKER), now) > ISOLATED_IDLE_BEFORE_PROBE
    {
        Some(Leftover::Probe(dir))
    } else {
        None
    }
}

/// How long ago `path` last changed (forever when it does not exist).
fn idle_for(path: &Path, now: SystemTime) -> Duration {
    fs::metadata(path)
        .and_then(|meta| meta.modified())
        .map(|modified| now.duration_since(modified).unwrap_or_default())
        .unwrap_or(Duration::MAX)
}

/// Removes what killed runs and discarded shells left behind; never fails the run.
pub fn remove_leftovers(session_dir: &Path) -> Result<(), Error> {
    remove_leftovers_with(session_dir, SystemTime::now(), &|location| session::check_alive(location))
}

/// [`remove_leftovers`], asking `probe` whether a session still works.
/// Fails only when a signal held during a probe's refresh arrived (the run
/// must end then, with its exit status).
fn remove_leftovers_with(
    session_dir: &Path,
    now: SystemTime,
    probe: &dyn Fn(&SessionLocation) -> Result<bool, Error>,
) -> Result<(), Error> {
    for leftover in find_leftovers(session_dir, now) {
        match leftover {
            Leftover::Remove(dir) => remove_unused(&dir),
            Leftover::Probe(dir) => {
                let location = SessionLocation::isolated(&dir);
                // Held: a refresh (or a re-login) is going on, so it is in use.
                if files::Lock::try_acquire(&location.lock_path()).ok().flatten().is_none() {
                    continue;
                }
                let session_file = location.json_path();
                let last_used = fs::metadata(&session_file).and_then(|meta| meta.modified()).ok();
                match probe(&location) {
                    Ok(false) => remove_unused(&dir),
                    Ok(true) => {
                        // A probe is not a use: keep counting from the last real one.
                        if let Some(last_used) = last_used {
                            let _ = File::options()
                                .write(true)
                                .open(&session_file)
                                .and_then(|file| file.set_modified(last_used));
                        }
                        let _ = File::create(dir.join(PROBED_MARKER));
                    }
                    Err(err) if err.is_interrupted() => return Err(err),
                    Err(_) => {}
                }
            }
        }
    }
    Ok(())
}

/// Removes a leftover directory, unless a refresh holds its session lock
/// right now; quietly, since cleaning up must never fail a run.
fn remove_unused(dir: &Path) {
    let lock_path = SessionLocation::isolated(dir).lock_path();
    let Ok(Some(held)) = files::Lock::try_acquire(&lock_path) else {
        return;
    };
    // All but the lock while it is held: no refresh can start on a session
    // that is gone. Then the lock, closed first: Windows does not remove a
    // file that is still open (it stays "delete pending" in its directory).
    if let Ok(entries) = fs::read_dir(dir) {
        for path in entries.flatten().map(|entry| entry.path()).filter(|path| *path != lock_path) {
            let _ = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        }
    }
    drop(held);
    let _ = fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolation::private_dir::PrivateDir;

    #[test]
    fn exec_dirs_are_leftovers_only_when_nobody_holds_them() {
        let cache = tempfile::tempdir().unwrap();
        let session_dir = cache.path().join("oulogin");
        let held = PrivateDir::create(&session_dir, Purpose::Exec).unwrap();
        let released = PrivateDir::create(&session_dir, Purpose::Exec).unwrap();
        let released_path = released.path().to_path_buf();
        // Simulate a SIGKILLed plugin: the directory stays, the lock goes.
        let _ = released.keep();
        // Another test of this process that forks at the wrong moment shares
        // the lock until its child execs (the descriptor is close-on-exec):
        // look again for a moment before calling the lock held.
        let mut found = find_leftovers(&session_dir, SystemTime::now());
        for _ in 0..100 {
            if !found.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            found = find_leftovers(&session_dir, SystemTime::now());
        }
        assert_eq!(found, vec![Leftover::Remove(released_path)]);
        assert!(held.path().exists());
    }

    /// An `--isolated` directory as a finished login leaves it, its files last
    /// changed `ago`; `session` false: an `--auth-provider` one.
    fn isolated_dir(session_dir: &Path, ago: Duration, session: bool) -> PathBuf {
        let dir = PrivateDir::create(session_dir, Purpose::Isolated).unwrap().keep();
        let mut names = vec!["kubeconfig"];
        if session {
            names.push("session.json");
        }
        for name in names {
            let file = File::create(dir.join(name)).unwrap();
            file.set_modified(SystemTime::now() - ago).unwrap();
        }
        dir
    }

    #[test]
    fn isolated_dirs_are_probed_once_idle_and_removed_once_their_session_is_gone() {
        let cache = tempfile::tempdir().unwrap();
        let session_dir = cache.path().join("oulogin");
        let minutes = |n: u64| Duration::from_secs(60 * n);
        let fresh = isolated_dir(&session_dir, minutes(1), true);
        let dead = isolated_dir(&session_dir, minutes(20), true);
        let alive = isolated_dir(&session_dir, minutes(20), true);
        let ancient = isolated_dir(&session_dir, minutes(25 * 60), true);
        let legacy = isolated_dir(&session_dir, minutes(20), false);
        let unfinished = PrivateDir::create(&session_dir, Purpose::Isolated).unwrap().keep();
        let logging_in = PrivateDir::create(&session_dir, Purpose::Isolated).unwrap();
        File::create(logging_in.path().join("kubeconfig"))
            .unwrap()
            .set_modified(SystemTime::now() - minutes(30 * 60))
            .unwrap();
        let alive_used = fs::metadata(alive.join("session.json")).unwrap().modified().unwrap();
        // Each directory was locked while it was made: another test of this
        // process that forked meanwhile shares that lock until its child execs
        // (the descriptor is close-on-exec), and the directory would look in
        // use. Wait for those children (bounded) before judging.
        for dir in [&fresh, &dead, &alive, &ancient, &legacy, &unfinished] {
            for _ in 0..100 {
                if !matches!(activity(dir), Activity::InUse) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }

        let probed = std::cell::RefCell::new(Vec::new());
        let probe = |location: &SessionLocation| {
            probed.borrow_mut().push(location.dir().to_path_buf());
            if location.dir() == alive {
                // As a real probe does: the refresh rewrites the session file.
                fs::write(location.json_path(), "{}").unwrap();
            }
            Ok(location.dir() == alive)
        };
        remove_leftovers_with(&session_dir, SystemTime::now(), &probe).unwrap();

        let mut expected_probes = vec![dead.clone(), alive.clone()];
        expected_probes.sort();
        probed.borrow_mut().sort();
        assert_eq!(*probed.borrow(), expected_probes, "only idle directories with a session are probed");
        assert!(!dead.exists(), "a dead session's directory goes");
        assert!(!ancient.exists(), "a directory unused for a day goes without a probe");
        assert!(!unfinished.exists(), "a login that never finished leaves nothing");
        assert!(fresh.exists() && alive.exists() && legacy.exists());
        assert!(logging_in.path().exists(), "a login in progress holds its directory");
        assert_eq!(
            fs::metadata(alive.join("session.json")).unwrap().modified().unwrap(),
            alive_used,
            "a probe is not a use"
        );

        // The next run does not probe the live one again at once.
        probed.borrow_mut().clear();
        remove_leftovers_with(&session_dir, SystemTime::now(), &probe).unwrap();
        assert!(probed.borrow().is_empty(), "{:?}", probed.borrow());
        // ... but still counts its idle time from the last real use.
        remove_leftovers_with(&session_dir, SystemTime::now() + minutes(24 * 60), &probe).unwrap();
        assert!(!alive.exists() && !legacy.exists() && !fresh.exists());
        assert!(logging_in.path().exists());
    }
}
