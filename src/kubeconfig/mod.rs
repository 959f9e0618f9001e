//! The KUBECONFIG list as kubectl reads and writes it: files loaded one by one
//! with the origin of every entry, fields we do not own kept verbatim, and
//! writes that follow kubectl's rules, take its `<file>.lock` and replace files
//! atomically.
//!
//! Reading merges like kubectl: the first file to define a cluster, user or
//! context name wins, and the first non-empty `current-context` wins. Missing
//! files in a `KUBECONFIG` list are skipped; a missing `--kubeconfig` or
//! `~/.kube/config` is an empty config that a write creates. Comments are not
//! kept in files we rewrite (neither does kubectl); files we do not change are
//! never rewritten.

pub mod ours;
mod write;
mod yaml;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{FileError, Hint};
use crate::files::LockError;
use crate::settings::KubeconfigSelection;

pub use write::{Change, update};

/// Failures reading or writing kubeconfig files; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    /// The file exists but cannot be read (permissions, a directory, ...).
    #[error("cannot read kubeconfig `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The bytes are not YAML (or not UTF-8).
    #[error("kubeconfig `{path}` is not valid YAML: {reason}")]
    NotYaml { path: PathBuf, reason: String },
    /// YAML, but not shaped like a kubeconfig (kubectl refuses it too).
    #[error("kubeconfig `{path}` is not shaped like a kubeconfig: {problem}")]
    Shape { path: PathBuf, problem: String },
    /// `kind` is set to something other than `Config`.
    #[error("`{path}` is not a kubeconfig: its `kind` is `{kind}`, not `Config`")]
    WrongKind { path: PathBuf, kind: String },
    /// `apiVersion` is set to something other than `v1`.
    #[error("kubeconfig `{path}` has `apiVersion` `{api_version}`; only `v1` exists")]
    WrongApiVersion { path: PathBuf, api_version: String },
    /// kubectl's `<file>.lock` stayed in place while we waited.
    #[error("kubeconfig `{path}` is locked: `{lock}` was still there after {} s", waited.as_secs())]
    Locked { path: PathBuf, lock: PathBuf, waited: Duration },
    /// kubectl's `<file>.lock` could not be created (read-only directory, ...).
    #[error("cannot create the lock file `{lock}` for kubeconfig `{path}`")]
    LockFile {
        path: PathBuf,
        lock: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The directory of a new kubeconfig could not be created.
    #[error("cannot create the directory `{dir}` for kubeconfig `{path}`")]
    CreateDir {
        path: PathBuf,
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Replacing the file failed.
    #[error("cannot write kubeconfig `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: FileError,
    },
    /// The document could not be turned back into YAML.
    #[error("cannot write kubeconfig `{path}` as YAML: {reason}")]
    Serialize { path: PathBuf, reason: String },
    /// Another kubectl-oulogin held the writers' lock for too long.
    #[error("cannot take the kubeconfig writers' lock")]
    WritersLock(#[source] LockError),
    /// The kubeconfig is a device, a directory, a pipe, ...: kubectl writes
    /// such a file in place, we replace files, and we replace regular files only.
    #[error("kubeconfig `{path}` is {kind}, not a regular file")]
    NotAFile { path: PathBuf, kind: &'static str },
    /// The file may not be written (kubectl's "permission denied").
    #[error("cannot write kubeconfig `{path}`: {reason}")]
    NotWritable { path: PathBuf, reason: String },
    /// Other programs kept rewriting the files while we tried to update them.
    #[error("the kubeconfig files kept changing while kubectl-oulogin tried to update `{path}`")]
    KeptChanging { path: PathBuf },
}

impl KubeconfigError {
    /// The kubeconfig file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            KubeconfigError::Read { path, .. }
            | KubeconfigError::NotYaml { path, .. }
            | KubeconfigError::Shape { path, .. }
            | KubeconfigError::WrongKind { path, .. }
            | KubeconfigError::WrongApiVersion { path, .. }
            | KubeconfigError::Locked { path, .. }
            | KubeconfigError::LockFile { path, .. }
            | KubeconfigError::CreateDir { path, .. }
            | KubeconfigError::Write { path, .. }
            | KubeconfigError::Serialize { path, .. }
            | KubeconfigError::NotAFile { path, .. }
            | KubeconfigError::NotWritable { path, .. }
            | KubeconfigError::KeptChanging { path } => path,
            KubeconfigError::WritersLock(LockError::TimedOut { path, .. }) => path,
            KubeconfigError::WritersLock(LockError::File(err)) => &err.path,
        }
    }

    /// Whether the file's content was refused (as opposed to an I/O failure).
    fn is_content_error(&self) -> bool {
        matches!(
            self,
            KubeconfigError::NotYaml { .. }
                | KubeconfigError::Shape { .. }
                | KubeconfigError::WrongKind { .. }
                | KubeconfigError::WrongApiVersion { .. }
        )
    }
}

impl Hint for KubeconfigError {
    fn hint(&self) -> Option<String> {
        let fix_or_leave_out =
            |path: &Path| format!("fix `{}`, or leave it out of `KUBECONFIG` / `--kubeconfig`", path.display());
        match self {
            // Windows refuses to open a directory as a file with "access denied".
            KubeconfigError::Read { path, source }
                if source.kind() == io::ErrorKind::PermissionDenied && path.is_dir() =>
            {
                Some(format!("`{}` is a directory; point `KUBECONFIG` at a file", path.display()))
            }
            KubeconfigError::Read { path, source } => match source.kind() {
                io::ErrorKind::PermissionDenied => Some(format!(
                    "check the permissions of `{}`; kubectl-oulogin needs to read and write it",
                    path.display()
                )),
                io::ErrorKind::IsADirectory => {
                    Some(format!("`{}` is a directory; point `KUBECONFIG` at a file", path.display()))
                }
                _ => None,
            },
            KubeconfigError::NotYaml { path, .. } | KubeconfigError::Shape { path, .. } => Some(fix_or_leave_out(path)),
            KubeconfigError::WrongKind { path, .. } | KubeconfigError::WrongApiVersion { path, .. } => Some(format!(
                "`{}` is some other Kubernetes object; point `KUBECONFIG` or `--kubeconfig` at a kubeconfig file",
                path.display()
            )),
            KubeconfigError::Locked { lock, .. } => Some(format!(
                "kubectl creates `{}` while it writes the file; if no kubectl is running, it was left behind by a \
                 crash: remove it with `rm {}`",
                lock.display(),
                shell_words::quote(&lock.to_string_lossy())
            )),
            KubeconfigError::LockFile { lock, .. } => Some(format!(
                "check that you may create files in `{}`",
                lock.parent().unwrap_or(Path::new(".")).display()
            )),
            KubeconfigError::CreateDir { dir, .. } => {
                Some(format!("check the permissions of `{}`", dir.parent().unwrap_or(Path::new(".")).display()))
            }
            KubeconfigError::Write { source, .. } => source.hint(),
            KubeconfigError::Serialize { .. } => None,
            KubeconfigError::WritersLock(LockError::TimedOut { .. }) => Some(
                "another kubectl-oulogin is writing kubeconfigs; wait for it to finish, or end it if it hangs"
                    .to_string(),
            ),
            KubeconfigError::WritersLock(LockError::File(err)) => err.hint(),
            KubeconfigError::NotAFile { path, .. } => Some(format!(
                "kubectl oulogin writes a kubeconfig by replacing the file, and never replaces a device, pipe or \
                 directory (`{}` was left as it is); point `KUBECONFIG` or `--kubeconfig` at a regular file",
                path.display()
            )),
            KubeconfigError::NotWritable { path, .. } => Some(format!(
                "kubectl cannot write it either; if it should change, make it writable with `chmod u+w {}`, or \
                 log in with another file: `--kubeconfig FILE`",
                shell_words::quote(&path.to_string_lossy())
            )),
            KubeconfigError::KeptChanging { .. } => {
                Some("another program is rewriting the kubeconfig in a loop; stop it and try again".to_string())
            }
        }
    }
}

/// A context as the merged view sees it, with the file that defines it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedContext {
    pub name: String,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub namespace: Option<String>,
    /// The file that defines the context (where a change to it is written).
    pub origin: PathBuf,
}

/// One file of the list, in precedence order.
#[derive(Clone)]
pub struct KubeconfigFile {
    path: PathBuf,
    /// The bytes read (`None`: the file did not exist), to tell whether the
    /// file changed under us and to leave unchanged files alone.
    bytes: Option<Vec<u8>>,
    parsed: yaml::Parsed,
}

impl KubeconfigFile {
    /// Whether the file existed when it was read (a dangling symlink does not).
    pub fn exists(&self) -> bool {
        self.bytes.is_some()
    }

    /// The file's (first) YAML document; an empty mapping for a missing or empty file.
    #[cfg(test)]
    pub fn doc(&self) -> &Map<String, Value> {
        &self.parsed.doc
    }

    fn entries<'a>(&'a self, list: &str) -> impl Iterator<Item = &'a Map<String, Value>> + 'a {
        self.parsed.doc.get(list).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
    }

    fn current_context(&self) -> Option<&str> {
        self.parsed.doc.get("current-context").and_then(Value::as_str).filter(|name| !name.is_empty())
    }
}

/// The files of a kubeconfig selection, in precedence order, with kubectl's
/// merged view on top.
#[derive(Clone)]
pub struct Kubeconfigs {
    files: Vec<KubeconfigFile>,
    /// Index into `files` of the file new entries go to.
    default_index: usize,
    /// Where the first definition of each name is, so that a lookup does not
    /// scan the lists (callers look up every context's user: with a scan,
    /// 20,000 contexts cost 400 million comparisons).
    names: NameIndex,
}

/// (file index, entry index) of the first definition of each name, per list.
#[derive(Clone, Default)]
struct NameIndex {
    clusters: HashMap<String, (usize, usize)>,
    users: HashMap<String, (usize, usize)>,
    contexts: HashMap<String, (usize, usize)>,
}

impl NameIndex {
    fn of(files: &[KubeconfigFile]) -> NameIndex {
        let mut index = NameIndex::default();
        for (list, _) in yaml::LISTS {
            let map = index.list_mut(list);
            for (file_index, file) in files.iter().enumerate() {
                let Some(entries) = file.parsed.doc.get(list).and_then(Value::as_array) else { continue };
                for (entry_index, entry) in entries.iter().enumerate() {
                    if let Some(name) = entry.get("name").and_then(Value::as_str) {
                        map.entry(name.to_string()).or_insert((file_index, entry_index));
                    }
                }
            }
        }
        index
    }

    fn list(&self, list: &str) -> Option<&HashMap<String, (usize, usize)>> {
        match list {
            "clusters" => Some(&self.clusters),
            "users" => Some(&self.users),
            "contexts" => Some(&self.contexts),
            _ => None,
        }
    }

    fn list_mut(&mut self, list: &str) -> &mut HashMap<String, (usize, usize)> {
        match list {
            "clusters" => &mut self.clusters,
            "users" => &mut self.users,
            _ => &mut self.contexts,
        }
    }
}

/// Debug output names files and entries only: the documents hold credentials.
impl fmt::Debug for Kubeconfigs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kubeconfigs")
            .field("files", &self.files.iter().map(|file| (file.path.display(), file.exists())).collect::<Vec<_>>())
            .field("default_file", &self.default_file())
            .field("current_context", &self.current_context())
            .field("contexts", &self.contexts().into_iter().map(|context| context.name).collect::<Vec<_>>())
            .field("users", &self.user_names())
            .field("clusters", &self.cluster_names())
            .finish()
    }
}

impl fmt::Debug for KubeconfigFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeconfigFile").field("path", &self.path).field("exists", &self.exists()).finish()
    }
}

/// The files a selection names, in precedence order: the explicit or default
/// file alone, else the `KUBECONFIG` list.
pub fn selected_files(selection: &KubeconfigSelection) -> &[PathBuf] {
    match selection {
        KubeconfigSelection::Explicit(path) | KubeconfigSelection::Default(path) => std::slice::from_ref(path),
        KubeconfigSelection::List(paths) => paths,
    }
}

static NULL: Value = Value::Null;

impl Kubeconfigs {
    /// Reads every file of the selection (kubectl's rules: missing list entries
    /// are skipped, a missing explicit or default file is an empty config).
    /// kubectl rewrites files in place under its `<file>.lock`, so a file that
    /// does not parse while that lock exists is read again, briefly, until
    /// kubectl is done.
    pub fn load(selection: &KubeconfigSelection) -> Result<Kubeconfigs, KubeconfigError> {
        write::load_settled(selection)
    }

    /// [`Kubeconfigs::load`] without waiting for a writer.
    fn load_once(selection: &KubeconfigSelection) -> Result<Kubeconfigs, KubeconfigError> {
        let paths = selected_files(selection).to_vec();
        let single = paths.len() == 1;
        let mut files = Vec::with_capacity(paths.len());
        let mut seen_targets = HashSet::new();
        for path in paths {
            let bytes = read_if_exists(&path)?;
            crate::debug!(
                "kubeconfig {}: {}",
                path.display(),
                bytes.as_ref().map_or("absent".to_string(), |bytes| format!("read ({} bytes)", bytes.len()))
            );
            if bytes.is_some()
                && let Ok(target) = std::fs::canonicalize(&path)
                && !seen_targets.insert(target)
            {
                // Two list entries naming one file (through a symlink): the
                // second adds nothing to the merged view, and writing both
                // would let one write undo the other.
                continue;
            }
            let parsed = match &bytes {
                Some(bytes) => yaml::parse(&path, bytes)?,
                None => yaml::Parsed { doc: Map::new(), extra_documents: Vec::new() },
            };
            files.push(KubeconfigFile { path, bytes, parsed });
        }
        // docs/kubectl.md, section 1: the explicit file; the single entry; the first existing
        // entry; else the first entry (the auth-provider persister's rule).
        let default_index = if single { 0 } else { files.iter().position(KubeconfigFile::exists).unwrap_or(0) };
        let names = NameIndex::of(&files);
        Ok(Kubeconfigs { files, default_index, names })
    }

    /// The files in precedence order (missing ones included, duplicates of an
    /// earlier entry through symlinks left out).
    #[cfg(test)]
    pub fn files(&self) -> &[KubeconfigFile] {
        &self.files
    }

    /// The first non-empty `current-context`.
    pub fn current_context(&self) -> Option<&str> {
        self.files.iter().find_map(KubeconfigFile::current_context)
    }

    /// Every context, first definition of each name wins, in file order.
    pub fn contexts(&self) -> Vec<NamedContext> {
        let mut seen = HashSet::new();
        let mut contexts = Vec::new();
        for file in &self.files {
            for entry in file.entries("contexts") {
                let Some(name) = entry.get("name").and_then(Value::as_str) else {
                    continue;
                };
                if seen.insert(name.to_string()) {
                    contexts.push(named_context(name, entry, &file.path));
                }
            }
        }
        contexts
    }

    /// The context called `name`, as the merged view sees it.
    pub fn context(&self, name: &str) -> Option<NamedContext> {
        let (file, entry) = self.find("contexts", name)?;
        Some(named_context(name, self.entry(file, "contexts", entry), &self.files[file].path))
    }

    /// The inner `user` map of the user called `name` (`null` when the entry has none).
    pub fn user(&self, name: &str) -> Option<&Value> {
        self.inner("users", "user", name)
    }

    /// The inner `cluster` map of the cluster called `name` (`null` when the entry has none).
    pub fn cluster(&self, name: &str) -> Option<&Value> {
        self.inner("clusters", "cluster", name)
    }

    #[cfg(test)]
    pub fn context_names(&self) -> Vec<String> {
        self.names("contexts")
    }

    pub fn user_names(&self) -> Vec<String> {
        self.names("users")
    }

    pub fn cluster_names(&self) -> Vec<String> {
        self.names("clusters")
    }

    /// The file that defines the user called `name`.
    #[cfg(test)]
    pub fn user_origin(&self, name: &str) -> Option<&Path> {
        self.find("users", name).map(|(file, _)| self.files[file].path.as_path())
    }

    /// The file that defines the cluster called `name`.
    #[cfg(test)]
    pub fn cluster_origin(&self, name: &str) -> Option<&Path> {
        self.find("clusters", name).map(|(file, _)| self.files[file].path.as_path())
    }

    /// [`check_writable`] for the files a login will write, so that it fails
    /// before a browser opens: the default file (new entries and
    /// `current-context`) and the files defining `context`, its user and its
    /// cluster. A file found to change only later is checked when written.
    pub fn check_writable_for_login(&self, context: Option<&str>) -> Result<(), KubeconfigError> {
        let mut paths = vec![self.default_file()];
        if let Some((file, _)) = context.and_then(|name| self.find("contexts", name)) {
            paths.push(&self.files[file].path);
        }
        if let Some(context) = context.and_then(|name| self.context(name)) {
            for (list, name) in [("users", context.user), ("clusters", context.cluster)] {
                if let Some((file, _)) = name.and_then(|name| self.find(list, &name)) {
                    paths.push(&self.files[file].path);
                }
            }
        }
        paths.dedup();
        paths.into_iter().try_for_each(check_writable)
    }

    /// Where new entries and `current-context` go (kubectl's rules, docs/kubectl.md, section 1).
    pub fn default_file(&self) -> &Path {
        &self.files[self.default_index].path
    }

    /// (file index, entry index) of the first definition of `name` in `list`.
    fn find(&self, list: &str, name: &str) -> Option<(usize, usize)> {
        self.names.list(list)?.get(name).copied()
    }

    /// Brings the name index up to date after the documents changed.
    fn reindex(&mut self) {
        self.names = NameIndex::of(&self.files);
    }

    fn entry(&self, file: usize, list: &str, entry: usize) -> &Map<String, Value> {
        self.files[file].parsed.doc[list][entry].as_object().expect("entries are checked to be mappings on load")
    }

    fn inner(&self, list: &str, inner: &str, name: &str) -> Option<&Value> {
        let (file, entry) = self.find(list, name)?;
        Some(self.entry(file, list, entry).get(inner).unwrap_or(&NULL))
    }

    fn names(&self, list: &str) -> Vec<String> {
        let mut seen = HashSet::new();
        self.files
            .iter()
            .flat_map(|file| file.entries(list))
            .filter_map(|entry| entry.get("name").and_then(Value::as_str))
            .filter(|name| seen.insert(name.to_string()))
            .map(str::to_string)
            .collect()
    }
}

fn named_context(name: &str, entry: &Map<String, Value>, origin: &Path) -> NamedContext {
    let field = |key: &str| {
        entry.get("context").and_then(|context| context.get(key)).and_then(Value::as_str).map(str::to_string)
    };
    NamedContext {
        name: name.to_string(),
        cluster: field("cluster"),
        user: field("user"),
        namespace: field("namespace"),
        origin: origin.to_path_buf(),
    }
}

/// Refuses a kubeconfig we could not write the way kubectl does: one that is
/// not a regular file (or a symlink to one), and one the user may not write
/// (kubectl's "permission denied"; root may write a read-only file, as with
/// kubectl). A missing file, or a dangling symlink's missing target, is fine:
/// the write creates it.
pub fn check_writable(path: &Path) -> Result<(), KubeconfigError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(KubeconfigError::Read { path: path.to_path_buf(), source }),
    };
    if let Some(kind) = crate::platform::files::special_file_kind(path, &meta) {
        return Err(KubeconfigError::NotAFile { path: path.to_path_buf(), kind });
    }
    match crate::platform::files::write_refusal(path, &meta) {
        None => Ok(()),
        Some(reason) => Err(KubeconfigError::NotWritable { path: path.to_path_buf(), reason }),
    }
}

/// The file's bytes, or `None` when it does not exist (a dangling symlink
/// included, as for kubectl).
fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, KubeconfigError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KubeconfigError::Read { path: path.to_path_buf(), source }),
    }
}

// The tests make files of every kind, modes and owners the Unix way.
#[cfg(test)]
mod tests;
