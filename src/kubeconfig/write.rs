//! Writing kubeconfigs the way kubectl's `ModifyConfig` does (an entry goes
//! back to the file that defines it, new entries and `current-context` go to
//! the default file), but safely: our writers are serialised by a flock,
//! kubectl's own `<file>.lock` is held while a file is replaced, decisions are
//! made on what the files hold under those locks, and every file is replaced
//! atomically with its mode and symlinks kept.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use super::{KubeconfigError, KubeconfigFile, Kubeconfigs, yaml};
use crate::files::{self, Lock};
use crate::platform::files as platform;
use crate::settings::KubeconfigSelection;

/// The flock serialising our own writers, in the lock directory.
pub const WRITERS_LOCK_FILE: &str = "kubeconfig.lock";
/// How long we wait for another kubectl-oulogin's kubeconfig write.
const WRITERS_LOCK_WAIT: Duration = Duration::from_secs(60);
/// When we tell the user what we are waiting for.
const WRITERS_LOCK_NOTICE: Duration = Duration::from_secs(2);
/// How long one kubectl `<file>.lock` may stay in place before we give up.
/// kubectl holds it for a few milliseconds; one that stays longer was left by
/// a crash.
const KUBECTL_LOCK_WAIT: Duration = Duration::from_secs(3);
/// How long we wait in all while kubectl keeps taking the lock anew (a loop
/// of kubectl writes on a loaded machine): each new lock restarts the
/// [`KUBECTL_LOCK_WAIT`] clock, but never past this.
const KUBECTL_BUSY_WAIT: Duration = Duration::from_secs(30);
/// The longest pause between two tries: short enough to catch the gap
/// between two kubectl runs.
const KUBECTL_LOCK_POLL: Duration = Duration::from_millis(50);
/// What our `<file>.lock` files say, so that one left by a killed
/// kubectl-oulogin can be told from kubectl's own (which are empty).
const LOCK_MARKER: &str = "kubectl-oulogin";
/// Rounds of "apply, lock, check nothing changed meanwhile" before giving up.
const MAX_ROUNDS: usize = 10;

/// One change to the merged kubeconfig, placed by kubectl's rules.
#[derive(Clone, PartialEq)]
pub enum Change {
    /// Merges keys into the cluster's inner `cluster` map (`null` removes a key);
    /// creates the entry in the default file if no file defines it.
    SetCluster {
        name: String,
        cluster: Map<String, Value>,
    },
    /// Replaces the user's inner `user` map (the credentials are ours);
    /// creates the entry in the default file if no file defines it.
    SetUser {
        name: String,
        user: Map<String, Value>,
    },
    /// Merges keys into the context's inner `context` map, like `SetCluster`.
    SetContext {
        name: String,
        context: Map<String, Value>,
    },
    /// Sets `current-context` in the default file.
    SetCurrentContext(String),
    /// Removes the entry from the file that defines it.
    RemoveCluster(String),
    RemoveUser(String),
    RemoveContext(String),
    /// Clears `current-context` in the first file that sets it (to `""`, as kubectl does).
    UnsetCurrentContext,
}

/// Debug output never shows a user map: it holds credentials.
impl fmt::Debug for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::SetCluster { name, cluster } => {
                f.debug_struct("SetCluster").field("name", name).field("cluster", cluster).finish()
            }
            Change::SetUser { name, user } => f
                .debug_struct("SetUser")
                .field("name", name)
                .field("user_keys", &user.keys().collect::<Vec<_>>())
                .finish_non_exhaustive(),
            Change::SetContext { name, context } => {
                f.debug_struct("SetContext").field("name", name).field("context", context).finish()
            }
            Change::SetCurrentContext(name) => f.debug_tuple("SetCurrentContext").field(name).finish(),
            Change::RemoveCluster(name) => f.debug_tuple("RemoveCluster").field(name).finish(),
            Change::RemoveUser(name) => f.debug_tuple("RemoveUser").field(name).finish(),
            Change::RemoveContext(name) => f.debug_tuple("RemoveContext").field(name).finish(),
            Change::UnsetCurrentContext => f.write_str("UnsetCurrentContext"),
        }
    }
}

/// Applies changes to the kubeconfig files under our writers' lock.
///
/// Takes the flock `lock_dir/kubeconfig.lock` (waiting up to 60 s), re-reads
/// the files, and lets `plan` decide the changes on that fresh state. It then
/// takes kubectl's `<file>.lock` for every file that will change (sorted) and
/// checks that no file changed since it was read; if one did (kubectl wrote
/// meanwhile, or the first read caught kubectl half-way), `plan` decides
/// again on the new content. `plan` only decides: it must not print. Changed files
/// are replaced atomically (mode kept, 0600 for new files, symlinks
/// followed); unchanged files are not touched. Returns the new state and what
/// `plan` returned.
pub fn update<T>(
    selection: &KubeconfigSelection,
    lock_dir: &Path,
    mut plan: impl FnMut(&Kubeconfigs) -> Result<(Vec<Change>, T), crate::error::Error>,
) -> Result<(Kubeconfigs, T), crate::error::Error> {
    files::ensure_private_dir(lock_dir)?;
    let mut writers =
        Lock::acquire(&lock_dir.join(WRITERS_LOCK_FILE), WRITERS_LOCK_WAIT, WRITERS_LOCK_NOTICE, |holder| {
            crate::output::info(format!("waiting for {holder} to finish writing kubeconfigs"))
        })
        .map_err(KubeconfigError::WritersLock)?;
    writers.set_holder("kubeconfig update");

    let mut held: BTreeMap<PathBuf, KubectlLock> = BTreeMap::new();
    let mut base = load_settled_holding(selection, &held)?;
    for _ in 0..MAX_ROUNDS {
        let (changes, planned) = plan(&base)?;
        let mut next = base.clone();
        let mut given_secrets = Vec::new();
        for change in &changes {
            next.apply(change);
            if let Change::SetUser { name, user } = change
                && holds_secret(user)
                && let Some((file, _)) = next.find("users", name)
            {
                given_secrets.push(file);
            }
        }
        let changed: Vec<usize> =
            (0..next.files.len()).filter(|&index| next.files[index].parsed != base.files[index].parsed).collect();
        if changed.is_empty() {
            return Ok((next, planned));
        }
        let mut to_lock: Vec<PathBuf> = changed
            .iter()
            .map(|&index| next.files[index].path.clone())
            .filter(|path| !held.contains_key(path))
            .collect();
        to_lock.sort();
        for path in to_lock {
            // Before anything is created beside it (kubectl's lock): never a
            // `/dev/null.lock`, and no browser login lost to a file we may not write.
            super::check_writable(&path)?;
            if let Some(dir) = path.parent() {
                create_dir(&path, dir)?;
            }
            let lock = KubectlLock::acquire(&path)?;
            held.insert(path, lock);
        }
        // kubectl writes without our flock; what we planned on must still be
        // what the files hold now that it cannot write the files we change.
        let now = load_settled_holding(selection, &held)?;
        if now.same_content(&base) {
            for index in changed {
                write_file(&mut next.files[index], given_secrets.contains(&index))?;
            }
            return Ok((next, planned));
        }
        base = now;
    }
    Err(KubeconfigError::KeptChanging { path: base.default_file().to_path_buf() }.into())
}

impl Kubeconfigs {
    fn same_content(&self, other: &Kubeconfigs) -> bool {
        self.files.len() == other.files.len()
            && self.files.iter().zip(&other.files).all(|(a, b)| a.path == b.path && a.bytes == b.bytes)
    }

    fn apply(&mut self, change: &Change) {
        self.apply_unindexed(change);
        self.reindex();
    }

    fn apply_unindexed(&mut self, change: &Change) {
        match change {
            Change::SetCluster { name, cluster } => self.set_entry("clusters", "cluster", name, cluster, Mode::Merge),
            Change::SetUser { name, user } => self.set_entry("users", "user", name, user, Mode::Replace),
            Change::SetContext { name, context } => self.set_entry("contexts", "context", name, context, Mode::Merge),
            Change::SetCurrentContext(name) => {
                let file = self.default_index;
                let doc = self.doc_for_insert(file);
                if doc.get("current-context").and_then(Value::as_str) != Some(name) {
                    doc.insert("current-context".to_string(), Value::String(name.clone()));
                }
            }
            Change::RemoveCluster(name) => self.remove_entry("clusters", name),
            Change::RemoveUser(name) => self.remove_entry("users", name),
            Change::RemoveContext(name) => self.remove_entry("contexts", name),
            Change::UnsetCurrentContext => {
                if let Some(file) = self.files.iter_mut().find(|file| file.current_context().is_some()) {
                    file.parsed.doc.insert("current-context".to_string(), Value::String(String::new()));
                }
            }
        }
    }

    fn set_entry(&mut self, list: &str, inner: &str, name: &str, fields: &Map<String, Value>, mode: Mode) {
        if let Some((file, index)) = self.find(list, name) {
            let entry = self.files[file].parsed.doc[list][index].as_object_mut().expect("entries are mappings");
            match mode {
                Mode::Replace => {
                    entry.insert(inner.to_string(), Value::Object(without_nulls(fields)));
                }
                Mode::Merge => {
                    let slot = entry.entry(inner.to_string()).or_insert(Value::Null);
                    if !slot.is_object() {
                        *slot = Value::Object(Map::new());
                    }
                    let map = slot.as_object_mut().expect("just made a mapping");
                    for (key, value) in fields {
                        if value.is_null() {
                            map.shift_remove(key);
                        } else {
                            map.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            return;
        }
        let file = self.default_index;
        let doc = self.doc_for_insert(file);
        let slot = doc.entry(list.to_string()).or_insert(Value::Null);
        if !slot.is_array() {
            *slot = Value::Array(Vec::new());
        }
        let mut entry = Map::new();
        entry.insert("name".to_string(), Value::String(name.to_string()));
        entry.insert(inner.to_string(), Value::Object(without_nulls(fields)));
        slot.as_array_mut().expect("just made a list").push(Value::Object(entry));
    }

    fn remove_entry(&mut self, list: &str, name: &str) {
        if let Some((file, index)) = self.find(list, name) {
            self.files[file].parsed.doc[list].as_array_mut().expect("entries are in a list").remove(index);
        }
    }

    /// The document of `file`, given kubectl's skeleton first if it is empty
    /// (a new or empty file).
    fn doc_for_insert(&mut self, file: usize) -> &mut Map<String, Value> {
        let doc = &mut self.files[file].parsed.doc;
        if doc.is_empty() {
            doc.insert("apiVersion".to_string(), Value::from("v1"));
            doc.insert("kind".to_string(), Value::from("Config"));
            doc.insert("clusters".to_string(), Value::Array(Vec::new()));
            doc.insert("contexts".to_string(), Value::Array(Vec::new()));
            doc.insert("users".to_string(), Value::Array(Vec::new()));
            doc.insert("current-context".to_string(), Value::from(""));
            doc.insert("preferences".to_string(), Value::Object(Map::new()));
        }
        doc
    }
}

#[derive(Clone, Copy)]
enum Mode {
    Merge,
    Replace,
}

fn without_nulls(fields: &Map<String, Value>) -> Map<String, Value> {
    fields.iter().filter(|(_, value)| !value.is_null()).map(|(key, value)| (key.clone(), value.clone())).collect()
}

/// Reads the selection, waiting briefly while a file is being written.
/// kubectl truncates and rewrites in place under its `<file>.lock`, so a
/// reader can catch the file empty or half-written:
/// - a file that does not parse is read again while its lock exists or while
///   it changes between two failed reads (kubectl may have finished and
///   removed the lock by the time we look); one that fails unchanged with no
///   lock in place is refused;
/// - a file read empty is read again while its lock exists or once it is no
///   longer empty; an empty file nobody writes is an empty kubeconfig.
pub(super) fn load_settled(selection: &KubeconfigSelection) -> Result<Kubeconfigs, KubeconfigError> {
    load_settled_holding(selection, &BTreeMap::new())
}

/// [`load_settled`] while we hold the locks in `ours`: nobody else writes
/// those files, and their locks are no sign of a writer.
fn load_settled_holding(
    selection: &KubeconfigSelection,
    ours: &BTreeMap<PathBuf, KubectlLock>,
) -> Result<Kubeconfigs, KubeconfigError> {
    load_settled_pausing(selection, ours, std::thread::sleep)
}

/// [`load_settled_holding`], calling `pause_for` between two looks. Whether
/// a writer is still at work is judged from what the looks find (a lock, or
/// a file that changed between two failed looks), so a test can make the
/// pause the writer's next step and fix the interleaving instead of racing
/// a writer thread for it. A writer that takes no lock and leaves the file
/// torn and unchanged for a whole pause looks like a broken file, and is
/// refused as one.
pub(super) fn load_settled_pausing(
    selection: &KubeconfigSelection,
    ours: &BTreeMap<PathBuf, KubectlLock>,
    mut pause_for: impl FnMut(Duration),
) -> Result<Kubeconfigs, KubeconfigError> {
    let locked_by_another = |path: &Path| !ours.contains_key(path) && lock_path(path).exists();
    let started = Instant::now();
    let mut pause = Duration::from_millis(10);
    let mut failed_on: Option<FileState> = None;
    loop {
        let waited_enough = started.elapsed() >= KUBECTL_LOCK_WAIT;
        match Kubeconfigs::load_once(selection) {
            Err(err) if err.is_content_error() && !waited_enough => {
                let now = FileState::of(err.path());
                if !locked_by_another(err.path()) && failed_on.as_ref() == Some(&now) {
                    return Err(err);
                }
                failed_on = Some(now);
            }
            Ok(config)
                if !waited_enough && config.files.iter().any(|file| file.emptied_by_a_writer(locked_by_another)) => {}
            result => return result,
        }
        pause_for(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
}

impl KubeconfigFile {
    /// Whether the file was read empty in the middle of an in-place rewrite:
    /// another's lock is there, or it holds something now.
    fn emptied_by_a_writer(&self, locked_by_another: impl Fn(&Path) -> bool) -> bool {
        self.bytes.as_deref().is_some_and(<[u8]>::is_empty)
            && (locked_by_another(&self.path) || fs::metadata(&self.path).map_or(true, |meta| meta.len() != 0))
    }
}

/// A file (symlinks followed) as far as its metadata tells: the same value
/// twice means nobody wrote it in between (an in-place write changes the
/// modification time or the length; a replacing write, or a lock taken anew,
/// changes the inode or the change time).
#[derive(PartialEq)]
struct FileState {
    path: PathBuf,
    identity: Option<platform::ChangeStamp>,
}

impl FileState {
    fn of(path: &Path) -> FileState {
        let identity = fs::metadata(path).ok().map(|meta| platform::change_stamp(&meta));
        FileState { path: path.to_path_buf(), identity }
    }
}

/// Creates `dir` (private, with parents) if it is missing.
fn create_dir(path: &Path, dir: &Path) -> Result<(), KubeconfigError> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    platform::make_private_dir(dir).map_err(|source| KubeconfigError::CreateDir {
        path: path.to_path_buf(),
        dir: dir.to_path_buf(),
        source,
    })
}

/// Replaces one file with its new content (through a symlink to its target),
/// keeping the mode, owner and group of the file it replaces (0600 for a new
/// one), as kubectl's in-place write does. A file that now holds a secret of
/// ours and that group or others could read is made private, and we say so.
fn write_file(file: &mut KubeconfigFile, holds_secret: bool) -> Result<(), KubeconfigError> {
    let text = yaml::render(&file.path, &file.parsed)?;
    let target = files::resolve_symlinks(&file.path);
    if let Some(dir) = target.parent() {
        create_dir(&file.path, dir)?;
    }
    let existing = fs::metadata(&target).ok();
    let mode = existing.as_ref().map_or(0o600, |meta| platform::mode_of(&target, meta));
    let owner = existing.as_ref().map(platform::owner_of);
    let new_mode = if holds_secret { mode & !0o077 } else { mode };
    files::replace_file(&file.path, text.as_bytes(), new_mode, owner)
        .map_err(|source| KubeconfigError::Write { path: file.path.clone(), source })?;
    if new_mode != mode {
        crate::output::warn(format!(
            "kubeconfig `{}` was readable by others (mode {mode:o}); it now holds a refresh token, so it was made \
             private (mode {new_mode:o})",
            file.path.display()
        ));
    }
    crate::debug!("kubeconfig {}: written ({} bytes, to {})", file.path.display(), text.len(), target.display());
    file.bytes = Some(text.into_bytes());
    Ok(())
}

/// Whether a user map carries a secret (the `--auth-provider` user's tokens,
/// or any static credential), as opposed to the exec stanza, which names a
/// session only.
fn holds_secret(user: &Map<String, Value>) -> bool {
    const SECRET_FIELDS: [&str; 4] = ["token", "password", "client-key-data", "auth-provider"];
    SECRET_FIELDS.iter().any(|field| user.get(*field).is_some_and(|value| !value.is_null()))
}

/// kubectl's lock file for `file`: the path as listed, plus `.lock`.
pub(super) fn lock_path(file: &Path) -> PathBuf {
    let mut name = OsString::from(file.as_os_str());
    name.push(".lock");
    PathBuf::from(name)
}

/// kubectl's `<file>.lock` (created with `O_CREAT|O_EXCL`), removed on drop.
/// We also hold a flock on it while it stands: that is how a later run tells
/// a lock a killed kubectl-oulogin left from a live one (kubectl's own
/// locks are empty and never flock-ed; we never remove those).
#[derive(Debug)]
pub(super) struct KubectlLock {
    path: PathBuf,
    _held: fs::File,
}

impl KubectlLock {
    /// Creates `<file>.lock`, retrying while someone else holds it. We give
    /// up when one and the same lock file has stood for [`KUBECTL_LOCK_WAIT`]
    /// (left by a crash), or after [`KUBECTL_BUSY_WAIT`] of locks that keep
    /// being taken anew.
    fn acquire(file: &Path) -> Result<KubectlLock, KubeconfigError> {
        let lock = lock_path(file);
        let started = Instant::now();
        let mut standing = StandingLock::default();
        let mut pause = Duration::from_millis(5);
        loop {
            // The record lets a later run recognise a lock a killed
            // kubectl-oulogin left behind; it is in place the moment the lock
            // exists, so no crash can leave an empty lock that passes for kubectl's.
            let record = format!("{LOCK_MARKER} {}\n", std::process::id());
            match files::create_new_locked(&lock, record.as_bytes(), 0o600) {
                Ok(held) => return Ok(KubectlLock { path: lock, _held: held }),
                Err(err) if err.kind() == io::ErrorKind::AlreadyExists => {
                    if remove_if_left_by_dead_oulogin(&lock) {
                        continue;
                    }
                    let stood = standing.observe(&lock);
                    let waited = started.elapsed();
                    if waited < pause {
                        crate::debug!("kubectl's lock {} exists; waiting for it to go", lock.display());
                    }
                    if stood >= KUBECTL_LOCK_WAIT || waited >= KUBECTL_BUSY_WAIT {
                        return Err(KubeconfigError::Locked { path: file.to_path_buf(), lock, waited });
                    }
                    std::thread::sleep(pause.min(KUBECTL_LOCK_WAIT - stood));
                    pause = (pause * 2).min(KUBECTL_LOCK_POLL);
                }
                Err(source) => {
                    return Err(KubeconfigError::LockFile { path: file.to_path_buf(), lock, source });
                }
            }
        }
    }
}

/// Which lock file we found in our way, and since when. kubectl removes its
/// lock after every write, so a lock with another inode or change time is a
/// new holder, not a stale one.
#[derive(Default)]
struct StandingLock {
    seen: Option<(FileState, Instant)>,
}

impl StandingLock {
    /// Notes the lock at `path` as it is now and says how long that very
    /// file has been in our way (zero when it is new, or gone already).
    fn observe(&mut self, path: &Path) -> Duration {
        let now = FileState::of(path);
        if now.identity.is_none() {
            self.seen = None;
            return Duration::ZERO;
        }
        match &self.seen {
            Some((seen, since)) if *seen == now => since.elapsed(),
            _ => {
                self.seen = Some((now, Instant::now()));
                Duration::ZERO
            }
        }
    }
}

impl Drop for KubectlLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Removes a `<file>.lock` that a kubectl-oulogin process which no longer
/// exists left behind (killed while writing); says whether it did. kubectl's
/// own locks are empty and are never removed by us.
///
/// Judging and removing are two steps, and another run (with another cache
/// directory, so not behind our writers' flock) may in between remove the same
/// stale lock and take the lock anew: removing by name would then remove its
/// fresh lock. So the verdict is tied to the very file: we open it, take its
/// flock (a live holder keeps it, see [`KubectlLock`]; a second remover
/// cannot get it while we judge), and unlink the name only while it still
/// names the file we hold. Only the flock's holder unlinks a lock, so the
/// name cannot change between that check and the unlink.
fn remove_if_left_by_dead_oulogin(lock: &Path) -> bool {
    remove_if_left_by_dead_oulogin_with(lock, || {})
}

/// [`remove_if_left_by_dead_oulogin`] with a hook run after the verdict and
/// before the removal (tests put a new lock in place there).
pub(super) fn remove_if_left_by_dead_oulogin_with(lock: &Path, after_verdict: impl FnOnce()) -> bool {
    use std::io::Read;
    let Ok(mut file) = fs::File::open(lock) else {
        return false;
    };
    let mut text = String::new();
    if file.read_to_string(&mut text).is_err() || !written_by_dead_oulogin(&text) || file.try_lock().is_err() {
        return false;
    }
    after_verdict();
    platform::still_names(&file, lock) && fs::remove_file(lock).is_ok()
}

/// Whether a lock's record names a kubectl-oulogin process that is gone.
fn written_by_dead_oulogin(text: &str) -> bool {
    let mut words = text.split_whitespace();
    if words.next() != Some(LOCK_MARKER) {
        return false;
    }
    let Some(pid) = words.next().and_then(|pid| pid.parse::<i32>().ok()) else {
        return false;
    };
    if pid <= 0 || pid as u32 == std::process::id() {
        return false;
    }
    !files::process_exists(pid as u32)
}
