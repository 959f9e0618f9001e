//! The session file: where it lives (shared under `$KUBECACHEDIR/oulogin/` or
//! isolated in a private directory), its JSON format, and reading and writing
//! it safely (0600 files in a 0700 directory that is ours, atomic replacement).

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::FileError;
use crate::files::{self, Lock};
use crate::openunison::clock::Receipt;
use crate::openunison::{Host, TrustConfig};
use crate::settings::BrowserChoice;

use super::SessionError;

/// The `version` written into session files by this build.
pub const SESSION_FORMAT_VERSION: u32 = 1;

/// The browser-login timeout assumed when a session cannot be read to learn its own.
pub const DEFAULT_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The longest browser-login timeout a session file is believed (what
/// `--timeout` allows): a damaged or hostile file must not make the lock
/// wait's deadline arithmetic overflow.
pub const MAX_LOGIN_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// How much longer than a browser login a waiter for the session lock waits, so
/// that it outlasts a login in progress (which gives up at its own timeout).
pub const LOCK_WAIT_BEYOND_LOGIN: Duration = Duration::from_secs(30);

/// A waiter says what it waits for after this long.
pub const LOCK_NOTICE_AFTER: Duration = Duration::from_secs(1);

/// A token or refresh token: serialised as is, never shown by `Debug`.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (a request body, the ExecCredential).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One OpenUnison session, as stored on disk.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Session {
    pub version: u32,
    pub host: Host,
    /// The k8sIdp token endpoint refreshes go to.
    pub token_endpoint: String,
    /// `--certificate-authority` and the OpenUnison CA, reused for refreshes and re-logins.
    #[serde(default)]
    pub trust: TrustConfig,
    /// How a re-login started by `token` opens the browser.
    pub browser: BrowserChoice,
    pub login_timeout_secs: u64,
    pub login_port: u16,
    pub id_token: Secret,
    pub refresh_token: Secret,
    /// When `id_token` arrived by our clock, and the server's clock then; its
    /// freshness is judged from these (absent in files older versions wrote).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_received: Option<Receipt>,
    /// The cluster name from the bootstrap JSON (for messages).
    #[serde(default)]
    pub cluster: String,
    /// The user's display name from the bootstrap JSON (for messages).
    #[serde(default)]
    pub user: String,
    /// The API server the login's kubeconfig points at, from the bootstrap
    /// JSON; `token` asks it whether it still takes a token before refreshing
    /// on a suspected 401. Absent in sessions older than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_server: Option<ApiServer>,
    /// Fields a newer version added, kept when this version rewrites the file.
    #[serde(flatten)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

/// The Kubernetes API server of a session's cluster.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApiServer {
    /// `https://…`, as the bootstrap JSON's `kubectl Windows Command` gave it.
    pub url: String,
    /// The API server CA PEM from the bootstrap JSON; without it the system roots apply, as for kubectl.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
}

impl Session {
    /// The browser-login timeout this session was created with.
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout_secs).min(MAX_LOGIN_TIMEOUT)
    }
}

/// Where a session's files are: `X.json` with `X.lock`, `X.cooldown` and
/// `X.handouts` beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionLocation {
    dir: PathBuf,
    stem: String,
    /// Private to one isolated kubeconfig (`exec`, `--isolated`), not shared by host.
    isolated: bool,
}

impl SessionLocation {
    /// The shared session for `host`.
    pub fn shared(session_dir: &Path, host: &Host) -> SessionLocation {
        let stem = Self::stem_for(host);
        SessionLocation { dir: session_dir.to_path_buf(), stem, isolated: false }
    }

    /// `--session NAME`: a shared session by its stem.
    pub fn named(session_dir: &Path, name: &str) -> Result<SessionLocation, SessionError> {
        let plain = !name.is_empty()
            && !name.starts_with('.')
            && !name.contains(['/', '\\'])
            && !name.chars().any(|c| c.is_control() || c.is_whitespace());
        if !plain {
            return Err(SessionError::InvalidName { name: name.to_string() });
        }
        let stem = name.strip_suffix(".json").unwrap_or(name).to_string();
        Ok(SessionLocation { dir: session_dir.to_path_buf(), stem, isolated: false })
    }

    /// The session of an isolated kubeconfig in the private directory `dir`.
    pub fn isolated(dir: &Path) -> SessionLocation {
        SessionLocation { dir: dir.to_path_buf(), stem: "session".to_string(), isolated: true }
    }

    /// `--session-file PATH`: only isolated kubeconfigs name their session by path.
    pub fn from_file(path: &Path) -> SessionLocation {
        let dir = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        let stem = name.strip_suffix(".json").unwrap_or(&name).to_string();
        SessionLocation { dir, stem, isolated: true }
    }

    /// `ou.example.com:8443` → `ou.example.com_8443`; lower case, so that every
    /// spelling of a host shares one session (and one file on any file system).
    pub fn stem_for(host: &Host) -> String {
        host.key().replace(':', "_")
    }

    /// `X` of `X.json`: what `--session` names for a shared session.
    pub fn stem(&self) -> &str {
        &self.stem
    }

    pub fn is_isolated(&self) -> bool {
        self.isolated
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn json_path(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.stem))
    }

    /// The dedicated lock file; never the data file, and never deleted.
    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.stem))
    }

    /// Present for [`super::cooldown::COOL_DOWN`] after a failed or abandoned browser login.
    pub fn cooldown_path(&self) -> PathBuf {
        self.dir.join(format!("{}.cooldown", self.stem))
    }

    /// Which parent process got which token (the 401 heuristic).
    pub fn handouts_path(&self) -> PathBuf {
        self.dir.join(format!("{}.handouts", self.stem))
    }
}

/// Reads a session, refusing a directory or file that others could have
/// written, and a file that others could read.
pub fn load(location: &SessionLocation) -> Result<Session, SessionError> {
    check_dir(location)?;
    read_in_checked_dir(location)
}

/// [`load`] for callers that checked the directory already (before taking
/// the session lock), so the hot path stats it once.
pub(crate) fn read_in_checked_dir(location: &SessionLocation) -> Result<Session, SessionError> {
    let path = location.json_path();
    let bytes = files::read_private(&path).map_err(|err| {
        if err.source.kind() == std::io::ErrorKind::NotFound {
            SessionError::Missing { path: path.clone(), isolated: location.is_isolated(), host: None }
        } else {
            SessionError::File(err)
        }
    })?;
    crate::debug!("session {}: read ({} bytes)", path.display(), bytes.len());
    parse(&path, &bytes)
}

/// The session dir must exist, be ours, and be writable by nobody else.
pub(crate) fn check_dir(location: &SessionLocation) -> Result<(), SessionError> {
    files::check_private_dir(location.dir()).map_err(|err| {
        if err.source.kind() == std::io::ErrorKind::NotFound {
            SessionError::Missing { path: location.json_path(), isolated: location.is_isolated(), host: None }
        } else {
            SessionError::File(err)
        }
    })
}

pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Session, SessionError> {
    #[derive(serde::Deserialize)]
    struct VersionOnly {
        version: Option<u32>,
    }
    let corrupt =
        |err: serde_json::Error| SessionError::Corrupt { path: path.to_path_buf(), detail: describe_json_error(&err) };
    let version = serde_json::from_slice::<VersionOnly>(bytes).map_err(corrupt)?.version;
    match version {
        Some(SESSION_FORMAT_VERSION) => serde_json::from_slice(bytes).map_err(corrupt),
        Some(version) => Err(SessionError::UnsupportedVersion { path: path.to_path_buf(), version }),
        None => Err(SessionError::Corrupt { path: path.to_path_buf(), detail: "it has no `version`".to_string() }),
    }
}

/// serde_json's own message can quote a value from the file, and the file
/// holds tokens; say only what kind of problem it is and where.
fn describe_json_error(err: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let kind = match err.classify() {
        Category::Io => "it could not be read",
        Category::Syntax => "it is not valid JSON",
        Category::Data => "a field is missing or has the wrong type",
        Category::Eof => "it ends too early",
    };
    format!("{kind} (line {}, column {})", err.line(), err.column())
}

/// Writes a session atomically (0600, synced, renamed into place), creating
/// the 0700 directory if needed. The caller holds the session lock.
pub fn save(location: &SessionLocation, session: &Session) -> Result<(), SessionError> {
    files::ensure_private_dir(location.dir())?;
    let mut bytes = serde_json::to_vec_pretty(session).expect("a session always serialises");
    bytes.push(b'\n');
    files::write_atomic(&location.json_path(), &bytes, 0o600)?;
    crate::debug!("session {}: written", location.json_path().display());
    Ok(())
}

/// Takes the session lock. Free right now: no cost beyond one `flock`. Busy: the
/// bound covers a browser login in progress (the session's login timeout, read
/// without the lock, plus a margin), and after [`LOCK_NOTICE_AFTER`] one line on
/// stderr says what we wait for.
pub fn lock(location: &SessionLocation) -> Result<Lock, SessionError> {
    let path = location.lock_path();
    if let Some(lock) = Lock::try_acquire(&path)? {
        return Ok(lock);
    }
    let login_timeout = peek_login_timeout(location).unwrap_or(DEFAULT_LOGIN_TIMEOUT);
    let session_file = location.json_path();
    Lock::acquire(&path, login_timeout + LOCK_WAIT_BEYOND_LOGIN, LOCK_NOTICE_AFTER, |holder| {
        crate::output::info(format!("waiting for {holder} on the session `{}`…", session_file.display()))
    })
    .map_err(|err| match err {
        files::LockError::File(err) => SessionError::File(err),
        files::LockError::TimedOut { path, holder, waited } => SessionError::Busy { path, holder, waited },
    })
}

/// The login timeout of a session, read without the lock (the file is only
/// ever replaced whole, so an unlocked read sees one version or the other).
fn peek_login_timeout(location: &SessionLocation) -> Option<Duration> {
    let bytes = files::read_private(&location.json_path()).ok()?;
    parse(&location.json_path(), &bytes).ok().map(|session| session.login_timeout())
}

/// Stores the session a login (`kubectl oulogin`) produced: under the session
/// lock, atomically, and ends any cool-down, since a login the user asked for
/// is always allowed.
pub fn store_login(location: &SessionLocation, session: &Session) -> Result<(), SessionError> {
    files::ensure_private_dir(location.dir())?;
    let mut lock = lock(location)?;
    lock.set_holder(files::HOLDER_LOGIN);
    save(location, session)?;
    super::cooldown::clear(location)?;
    Ok(())
}

/// Logout: removes the session, its cool-down marker and its handout record.
/// The lock file stays (a waiter may hold it open). Returns whether there was a
/// session to remove.
pub fn delete(location: &SessionLocation) -> Result<bool, SessionError> {
    match files::check_private_dir(location.dir()) {
        Err(err) if err.source.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        other => other?,
    }
    let _lock = lock(location)?;
    let existed = remove_if_present(&location.json_path())?;
    crate::debug!("session {}: {}", location.json_path().display(), if existed { "removed" } else { "absent" });
    remove_if_present(&location.cooldown_path())?;
    remove_if_present(&location.handouts_path())?;
    Ok(existed)
}

pub(crate) fn remove_if_present(path: &Path) -> Result<bool, FileError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(FileError::new("remove", path, err)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fs;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    pub(crate) fn sample(id_token: &str, refresh_token: &str) -> Session {
        Session {
            version: SESSION_FORMAT_VERSION,
            host: Host::parse("ou.example.com:8443").unwrap(),
            token_endpoint: "https://ou.example.com:8443/auth/idp/k8sIdp/token".to_string(),
            trust: TrustConfig::default(),
            browser: BrowserChoice::System,
            login_timeout_secs: 300,
            login_port: 8400,
            id_token: Secret::new(id_token),
            refresh_token: Secret::new(refresh_token),
            id_token_received: None,
            cluster: "kubernetes".to_string(),
            user: "jdoe".to_string(),
            api_server: None,
            extra: Default::default(),
        }
    }

    /// A 0700 session dir inside a temp dir.
    pub(crate) fn private_dir() -> (tempfile::TempDir, PathBuf) {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path().join("oulogin");
        files::ensure_private_dir(&dir).unwrap();
        (temp, dir)
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let session = sample("eyJ.secret-id-token.sig", "secret-refresh-token");
        let shown = format!("{session:?} {:?}", session.id_token);
        assert!(!shown.contains("secret-id-token"), "{shown}");
        assert!(!shown.contains("secret-refresh-token"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn the_file_format_is_the_documented_json() {
        let mut session = sample("id", "rt");
        session.browser = BrowserChoice::Command("firefox --new-window".to_string());
        session.trust.ca_file = Some(PathBuf::from("/abs/ca.pem"));
        let value = serde_json::to_value(&session).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"version":1,"host":"ou.example.com:8443",
                "token_endpoint":"https://ou.example.com:8443/auth/idp/k8sIdp/token",
                "trust":{"ca_file":"/abs/ca.pem"},"browser":{"command":"firefox --new-window"},
                "login_timeout_secs":300,"login_port":8400,"id_token":"id","refresh_token":"rt",
                "cluster":"kubernetes","user":"jdoe"})
        );
        for (choice, json) in [
            (BrowserChoice::System, serde_json::json!("system")),
            (BrowserChoice::NoBrowser, serde_json::json!("no-browser")),
            (BrowserChoice::BrowserEnv("w3m".into()), serde_json::json!({"browser-env":"w3m"})),
        ] {
            assert_eq!(serde_json::to_value(&choice).unwrap(), json);
        }
    }

    #[test]
    fn the_api_server_is_kept_and_sessions_written_before_it_still_load() {
        let (_temp, dir) = private_dir();
        let location = SessionLocation::isolated(&dir);
        let mut session = sample("id", "rt");
        session.api_server =
            Some(ApiServer { url: "https://k8s.example.com:6443".to_string(), ca_pem: Some("PEM".to_string()) });
        let value = serde_json::to_value(&session).unwrap();
        assert_eq!(value["api_server"], serde_json::json!({"url": "https://k8s.example.com:6443", "ca_pem": "PEM"}));
        save(&location, &session).unwrap();
        assert_eq!(load(&location).unwrap(), session);
        // What builds before the field wrote: no `api_server`, and none read back.
        let mut older = value.clone();
        older.as_object_mut().unwrap().remove("api_server");
        files::write_atomic(&location.json_path(), older.to_string().as_bytes(), 0o600).unwrap();
        assert_eq!(load(&location).unwrap().api_server, None);
        let without_ca = serde_json::json!({"url": "https://k8s.example.com"});
        older["api_server"] = without_ca;
        files::write_atomic(&location.json_path(), older.to_string().as_bytes(), 0o600).unwrap();
        assert_eq!(load(&location).unwrap().api_server.unwrap().ca_pem, None);
    }

    #[test]
    fn save_then_load_round_trips_privately_and_keeps_unknown_fields() {
        let (_temp, dir) = private_dir();
        let location = SessionLocation::shared(&dir, &Host::parse("ou.example.com:8443").unwrap());
        assert_eq!(location.json_path(), dir.join("ou.example.com_8443.json"));
        assert_eq!(location.lock_path(), dir.join("ou.example.com_8443.lock"));
        let mut session = sample("id", "rt");
        session.extra.insert("future".to_string(), serde_json::json!({"x": 1}));
        save(&location, &session).unwrap();
        #[cfg(unix)]
        assert_eq!(fs::metadata(location.json_path()).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(load(&location).unwrap(), session);
    }

    #[cfg(unix)]
    #[test]
    fn loose_files_and_directories_are_refused() {
        let (_temp, dir) = private_dir();
        let location = SessionLocation::isolated(&dir);
        save(&location, &sample("id", "rt")).unwrap();
        fs::set_permissions(location.json_path(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = load(&location).unwrap_err();
        assert!(matches!(err, SessionError::File(_)), "{err:?}");
        assert!(crate::error::Hint::hint(&err).is_some());
        fs::set_permissions(location.json_path(), fs::Permissions::from_mode(0o600)).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let err = load(&location).unwrap_err();
        assert!(err.to_string().contains(&dir.display().to_string()), "{err}");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        assert!(load(&location).is_ok());
    }

    #[test]
    fn corrupt_files_are_named_without_quoting_their_content() {
        let (_temp, dir) = private_dir();
        let location = SessionLocation::isolated(&dir);
        files::write_atomic(&location.json_path(), br#"{"version":1,"login_port":"secret-token"}"#, 0o600).unwrap();
        let err = load(&location).unwrap_err();
        let text = format!("{err} {:?}", crate::error::Hint::hint(&err));
        assert!(text.contains("session.json"), "{text}");
        assert!(!text.contains("secret-token"), "{text}");
        assert!(text.contains("log in again"), "{text}");
        files::write_atomic(&location.json_path(), b"{not json", 0o600).unwrap();
        assert!(matches!(load(&location).unwrap_err(), SessionError::Corrupt { .. }));
        files::write_atomic(&location.json_path(), br#"{"version":7}"#, 0o600).unwrap();
        assert!(matches!(load(&location).unwrap_err(), SessionError::UnsupportedVersion { version: 7, .. }));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 256, ..Default::default() })]

        /// A damaged session file is an error, never a panic, and the error never quotes it.
        #[test]
        fn parsing_never_panics_or_quotes_the_file(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            if let Err(err) = parse(Path::new("/s/session.json"), &bytes) {
                proptest::prop_assert!(err.to_string().contains("/s/session.json"));
            }
        }

        #[test]
        fn near_miss_sessions_never_panic(
            version in proptest::prelude::any::<i64>(),
            port in proptest::prelude::any::<i64>(),
            token in ".{0,20}",
        ) {
            let text = serde_json::json!({"version": version, "host": token, "token_endpoint": token,
                "browser": token, "login_timeout_secs": port, "login_port": port,
                "id_token": token, "refresh_token": token});
            let _ = parse(Path::new("/s/session.json"), text.to_string().as_bytes());
        }
    }

    #[test]
    fn an_absurd_login_timeout_in_the_file_is_capped() {
        let mut session = sample("id", "rt");
        session.login_timeout_secs = u64::MAX;
        assert_eq!(session.login_timeout(), MAX_LOGIN_TIMEOUT);
        // What the lock wait adds to it must not overflow.
        let _ = session.login_timeout() + LOCK_WAIT_BEYOND_LOGIN;
    }

    #[test]
    fn missing_sessions_say_so() {
        let (_temp, dir) = private_dir();
        let err = load(&SessionLocation::named(&dir, "nobody.example.com").unwrap()).unwrap_err();
        assert!(matches!(err, SessionError::Missing { .. }), "{err:?}");
        let err = load(&SessionLocation::isolated(&dir.join("gone"))).unwrap_err();
        assert!(matches!(err, SessionError::Missing { .. }), "{err:?}");
    }

    #[test]
    fn session_names_cannot_escape_the_session_dir() {
        let dir = Path::new("/cache/oulogin");
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(SessionLocation::named(dir, bad).is_err(), "{bad}");
        }
        let named = SessionLocation::named(dir, "ou.example.com_8443").unwrap();
        assert_eq!(named.json_path(), dir.join("ou.example.com_8443.json"));
        let file = SessionLocation::from_file(Path::new("/p/iso-1/session.json"));
        assert!(file.is_isolated());
        assert_eq!(file.handouts_path(), Path::new("/p/iso-1/session.handouts"));
        assert_eq!(file, SessionLocation::isolated(Path::new("/p/iso-1")));
    }

    #[test]
    fn login_ends_a_cool_down_and_logout_removes_everything_but_the_lock() {
        let (_temp, dir) = private_dir();
        let location = SessionLocation::named(&dir, "h").unwrap();
        super::super::cooldown::start(&location).unwrap();
        fs::write(location.handouts_path(), b"[]").unwrap();
        store_login(&location, &sample("id", "rt")).unwrap();
        assert!(!location.cooldown_path().exists());
        assert!(delete(&location).unwrap());
        assert!(!location.json_path().exists() && !location.handouts_path().exists());
        assert!(!delete(&location).unwrap());
    }
}
