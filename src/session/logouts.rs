//! What `logout` leaves behind so that logging in again for the same context
//! finds its OpenUnison host: `logout` removes the session and the context's
//! user entry, and with them the only place the host was written. Per context
//! it notes the host and how the session reached it (CA, browser command) in
//! `.logouts.json` in the session directory. No token is ever kept there.

use std::path::{Path, PathBuf};

use crate::error::FileError;
use crate::files;
use crate::openunison::Host;
use crate::settings::Remembered;

/// The file's name: a leading dot, so no session (whose names never start
/// with one) can be called that.
const FILE_NAME: &str = ".logouts.json";
/// Only the latest contexts are kept: the file is a convenience, not a log.
const MAX_RECORDS: usize = 64;

/// A context that was logged out of.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LoggedOut {
    /// The context's name.
    pub context: String,
    /// The API server of its cluster, so that another context that happens
    /// to have the same name is not taken for it.
    pub server: Option<String>,
    pub host: Host,
    #[serde(default)]
    pub remembered: Remembered,
}

/// The notes `logout` left, as read from the file.
#[derive(Default, serde::Serialize, serde::Deserialize)]
pub struct Notes {
    records: Vec<LoggedOut>,
}

impl Notes {
    /// The note for the context `name` whose cluster's server is `server`,
    /// if it was logged out of.
    pub fn find(&self, name: &str, server: Option<&str>) -> Option<LoggedOut> {
        self.records
            .iter()
            .rev()
            .find(|record| record.context == name && record.server.as_deref() == server)
            .filter(|record| Host::parse(record.host.as_str()).is_ok())
            .cloned()
    }

    /// The latest note for `host` (and the context `name`, when known): what
    /// `token --logged-out` finds, knowing no API server.
    pub fn find_by_host(&self, name: Option<&str>, host: &Host) -> Option<LoggedOut> {
        self.records
            .iter()
            .rev()
            .find(|record| &record.host == host && name.is_none_or(|name| record.context == name))
            .cloned()
    }
}

fn path_in(session_dir: &Path) -> PathBuf {
    session_dir.join(FILE_NAME)
}

/// Reads the notes; a file that is missing, damaged or not private holds none.
pub fn load(session_dir: &Path) -> Notes {
    files::read_private(&path_in(session_dir))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}

/// Notes these contexts as logged out, replacing older notes for them. Two
/// logouts at the same moment may keep only one of their notes; a lost note
/// only means a login again asks for `--host`.
pub fn note(session_dir: &Path, logged_out: &[LoggedOut]) -> Result<(), FileError> {
    if logged_out.is_empty() {
        return Ok(());
    }
    let mut notes = load(session_dir);
    notes.records.retain(|old| !logged_out.iter().any(|new| new.context == old.context && new.server == old.server));
    notes.records.extend(logged_out.iter().cloned());
    let excess = notes.records.len().saturating_sub(MAX_RECORDS);
    notes.records.drain(..excess);
    files::ensure_private_dir(session_dir)?;
    let text = serde_json::to_vec_pretty(&notes).expect("notes serialize");
    files::write_atomic(&path_in(session_dir), &text, 0o600)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openunison::TrustConfig;
    use crate::settings::BrowserChoice;

    fn logged_out(context: &str, server: &str, host: &str) -> LoggedOut {
        LoggedOut {
            context: context.to_string(),
            server: Some(server.to_string()),
            host: Host::parse(host).unwrap(),
            remembered: Remembered {
                trust: Some(TrustConfig { ca_file: Some("/etc/ou-ca.pem".into()), ca_pem: None, ca_data: None }),
                browser: Some(BrowserChoice::Command("firefox --private".into())),
                port: Some(8401),
            },
        }
    }

    #[test]
    fn a_noted_context_is_found_by_its_name_and_server_only() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = dir.path().join("oulogin");
        let record = logged_out("prod", "https://api.prod:6443", "ou.prod.example");
        note(&sessions, std::slice::from_ref(&record)).unwrap();
        assert_eq!(load(&sessions).find("prod", Some("https://api.prod:6443")), Some(record.clone()));
        assert_eq!(load(&sessions).find("prod", Some("https://api.other:6443")), None);
        assert_eq!(load(&sessions).find("dev", Some("https://api.prod:6443")), None);
        let host = Host::parse("ou.prod.example").unwrap();
        assert_eq!(load(&sessions).find_by_host(Some("prod"), &host), Some(record.clone()));
        assert_eq!(load(&sessions).find_by_host(None, &host), Some(record.clone()));
        assert_eq!(load(&sessions).find_by_host(Some("dev"), &host), None);
        assert_eq!(load(&sessions).find_by_host(None, &Host::parse("ou.other.example").unwrap()), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path_in(&sessions)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// A private session directory in `temp` (Windows' temporary directory,
    /// unlike Unix's `tempdir`, is not private).
    fn sessions_in(temp: &tempfile::TempDir) -> PathBuf {
        let dir = temp.path().join("oulogin");
        files::ensure_private_dir(&dir).unwrap();
        dir
    }

    #[test]
    fn a_newer_note_replaces_the_older_and_only_the_latest_are_kept() {
        let temp = tempfile::tempdir().unwrap();
        // The session directory, made private as every run makes it.
        let dir = sessions_in(&temp);
        note(&dir, &[logged_out("prod", "https://api", "ou-old.example")]).unwrap();
        note(&dir, &[logged_out("prod", "https://api", "ou-new.example")]).unwrap();
        assert_eq!(load(&dir).find("prod", Some("https://api")).unwrap().host.as_str(), "ou-new.example");
        for index in 0..MAX_RECORDS + 5 {
            note(&dir, &[logged_out(&format!("c{index}"), "https://api", "ou.example")]).unwrap();
        }
        assert_eq!(load(&dir).records.len(), MAX_RECORDS);
        assert!(load(&dir).find("prod", Some("https://api")).is_none());
        assert!(load(&dir).find(&format!("c{}", MAX_RECORDS + 4), Some("https://api")).is_some());
    }

    #[test]
    fn a_damaged_file_holds_no_notes_and_is_replaced_by_the_next() {
        let temp = tempfile::tempdir().unwrap();
        let dir = sessions_in(&temp);
        files::write_atomic(&path_in(&dir), b"{not json", 0o600).unwrap();
        assert_eq!(load(&dir).find("prod", Some("https://api")), None);
        note(&dir, &[logged_out("prod", "https://api", "ou.example")]).unwrap();
        assert!(load(&dir).find("prod", Some("https://api")).is_some());
    }
}
