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

mod write;
mod yaml;

use std::collections::HashSet;
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
        let (paths, single) = match selection {
            KubeconfigSelection::Explicit(path) | KubeconfigSelection::Default(path) => (vec![path.clone()], true),
            KubeconfigSelection::List(paths) => (paths.clone(), paths.len() == 1),
        };
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
        // notes §3.3: the explicit file; the single entry; the first existing
        // entry; else the first entry (the auth-provider persister's rule).
        let default_index = if single { 0 } else { files.iter().position(KubeconfigFile::exists).unwrap_or(0) };
        Ok(Kubeconfigs { files, default_index })
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

    /// Where new entries and `current-context` go (kubectl's rules, notes §3.3).
    pub fn default_file(&self) -> &Path {
        &self.files[self.default_index].path
    }

    /// (file index, entry index) of the first definition of `name` in `list`.
    fn find(&self, list: &str, name: &str) -> Option<(usize, usize)> {
        self.files.iter().enumerate().find_map(|(file_index, file)| {
            let entries = file.parsed.doc.get(list)?.as_array()?;
            let entry_index =
                entries.iter().position(|entry| entry.get("name").and_then(Value::as_str) == Some(name))?;
            Some((file_index, entry_index))
        })
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

/// The file's bytes, or `None` when it does not exist (a dangling symlink
/// included, as for kubectl).
fn read_if_exists(path: &Path) -> Result<Option<Vec<u8>>, KubeconfigError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(KubeconfigError::Read { path: path.to_path_buf(), source }),
    }
}

#[cfg(test)]
mod tests;
