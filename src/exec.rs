//! Isolation: private per-tool kubeconfig directories for `--isolated` and
//! `exec`, running the command with signals forwarded and its exit status
//! passed through, and removing what killed runs and discarded shells left.
//!
//! Every directory lives under `$KUBECACHEDIR/oulogin/isolated/`, is 0700, and
//! holds `kubeconfig` and `session.json` (0600), the session's lock, cool-down
//! and handouts files, and `active.lock`. The plugin creates `active.lock`
//! already flocked and holds it while it logs in; `exec` hands the open file
//! to its command, so the lock stays held for as long as the command (or
//! anything it started) runs, even when the plugin is killed with SIGKILL.
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
//! session refreshable until its inactivity timeout.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, SystemTime};

use crate::app::LoginTarget;
use crate::cli::{GlobalArgs, LoginArgs};
use crate::error::{Error, ExitStatus, FileError, Hint};
use crate::kubeconfig::{self, Kubeconfigs};
use crate::managed::{self, SessionRef};
use crate::session::{self, SessionLocation};
use crate::settings::{KubeconfigSelection, LoginSettings};
use crate::{files, output};

/// Locked while the plugin logs in, and for `exec` while its command runs.
const ACTIVE_LOCK: &str = "active.lock";
/// In an `--isolated` directory: touched when its session was last probed.
const PROBED_MARKER: &str = "session.probed";

/// Exit status when the command cannot be found (shell convention).
pub const EXIT_NOT_FOUND: u8 = 127;
/// Exit status when the command exists but cannot be started (shell convention).
pub const EXIT_CANNOT_RUN: u8 = 126;

/// An `--isolated` session left unused this long is probed, and removed once
/// OpenUnison no longer refreshes it (OpenUnison's default inactivity timeout).
pub const ISOLATED_IDLE_BEFORE_PROBE: Duration = Duration::from_secs(900);
/// An `--isolated` directory left unused this long is removed without a probe.
pub const ISOLATED_MAX_IDLE: Duration = Duration::from_secs(24 * 3600);
/// A directory still without `active.lock` this long after its last change
/// belongs to a run killed while creating it.
const CREATION_GRACE: Duration = Duration::from_secs(60);

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

/// What a private directory is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `exec`: removed when the command exits.
    Exec,
    /// `--isolated`: kept for the user's shell, removed once its session is dead.
    Isolated,
}

impl Purpose {
    fn prefix(self) -> &'static str {
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
    /// Creates a new 0700 directory under `private_root`, with `active.lock`
    /// already locked by this process.
    pub fn create(session_dir: &Path, purpose: Purpose) -> Result<PrivateDir, FileError> {
        let root = private_root(session_dir);
        files::ensure_private_dir(session_dir)?;
        files::ensure_private_dir(&root)?;
        let dir = tempfile::Builder::new()
            .prefix(purpose.prefix())
            .permissions(fs::Permissions::from_mode(0o700))
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

    /// Runs `command` with `KUBECONFIG` pointing at this directory's kubeconfig
    /// and the rest of the environment untouched, forwarding SIGINT, SIGTERM and
    /// SIGHUP (except those in `ignored`, which the command inherits ignored),
    /// and returns its exit status (128+N when it died of signal N).
    pub fn run(&self, command: &[OsString], ignored: &IgnoredSignals) -> Result<ExitStatus, ExecError> {
        let (program, args) = command.split_first().expect("clap requires a command");
        let shown = program.to_string_lossy().into_owned();
        let mut child_command = Command::new(program);
        child_command.args(args).env(crate::settings::env::KUBECONFIG, self.kubeconfig());
        prepare_child(&mut child_command, self.active.as_ref().map(AsRawFd::as_raw_fd), ignored);
        let forwarder = SignalForwarder::install(ignored)
            .map_err(|source| ExecError::Signals { program: shown.clone(), source })?;
        let mut child =
            child_command.spawn().map_err(|source| ExecError::CannotStart { program: shown.clone(), source })?;
        let status = forwarder.wait(&mut child).map_err(|source| ExecError::Wait { program: shown, source })?;
        Ok(ExitStatus::Child(exit_code(status)))
    }

    /// Removes the directory now; unlike dropping the guard, says when that fails.
    pub fn remove(mut self) -> Result<(), FileError> {
        self.keep = true;
        // Still holding `active.lock`, so no concurrent clean-up races this one.
        match fs::remove_dir_all(&self.path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(FileError::new("remove", &self.path, err)),
            _ => Ok(()),
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Creates `path` already locked: the lock is taken on a file under another
/// name, which is then renamed, so that a clean-up running at the same moment
/// never finds `path` unlocked.
fn create_locked(path: &Path) -> Result<File, FileError> {
    let pending = path.with_extension("lock.new");
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&pending)
        .map_err(|err| FileError::new("create", &pending, err))?;
    file.lock().map_err(|err| FileError::new("lock", &pending, err))?;
    fs::rename(&pending, path).map_err(|err| FileError::new("create", path, err))?;
    Ok(file)
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
fn remove_leftovers(session_dir: &Path) -> Result<(), Error> {
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
    let location = SessionLocation::isolated(dir);
    if let Ok(Some(_held)) = files::Lock::try_acquire(&location.lock_path()) {
        let _ = fs::remove_dir_all(dir);
    }
}

/// The `export` line that `eval "$(kubectl oulogin --isolated ...)"` runs, quoted
/// for POSIX shells (bash, zsh, sh; fish accepts `export` too).
pub fn export_line(kubeconfig: &Path) -> String {
    format!("export KUBECONFIG={}", shell_quote(kubeconfig.as_os_str()))
}

/// How to take the private kubeconfig into the user's shell (fish, or else
/// a POSIX shell), now and next time.
/// `login` is what follows `--host`: the host and the flags to repeat.
/// `host` is quoted for the shell, `flags` (the remembered login flags) come quoted.
fn shell_hint(kubeconfig: &Path, host: &str, flags: &str, fish: bool) -> String {
    let login = format!("{}{flags}", shell_words::quote(host));
    if fish {
        format!(
            "in fish: set -gx KUBECONFIG {}; next time `eval (kubectl oulogin --host {login} --isolated)` does it",
            fish_quote(kubeconfig.as_os_str())
        )
    } else {
        format!(
            "in this shell: {}; next time `eval \"$(kubectl oulogin --host {login} --isolated)\"` does it",
            export_line(kubeconfig)
        )
    }
}

/// Single quotes for fish, where `\\` and `\'` are escapes inside them.
fn fish_quote(text: &OsStr) -> String {
    let text = text.to_string_lossy();
    format!("'{}'", text.replace('\\', r"\\").replace('\'', r"\'"))
}

fn shell_quote(text: &OsStr) -> String {
    let text = text.to_string_lossy();
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// `kubectl oulogin exec [login flags] -- CMD [ARGS...]`.
pub fn exec_command(global: &GlobalArgs, args: &LoginArgs, command: &[OsString]) -> Result<ExitStatus, Error> {
    let ignored = IgnoredSignals::at_start();
    let settings = LoginSettings::resolve(global, args)?;
    if let Some(program) = command.first() {
        // A mistyped command must not cost a browser login.
        check_runnable(program)?;
    }
    remove_leftovers(&settings.paths.session_dir)?;
    let target = private_target(&settings)?;
    let settings = settings.with_remembered(&target.remembered);
    let dir = PrivateDir::create(&settings.paths.session_dir, Purpose::Exec)?;
    log_in_privately(&settings, &target, &dir)?;
    let status = dir.run(command, &ignored);
    // The command has ended; only a failure is worth a line now.
    if let Err(err) = dir.remove() {
        output::warn(format!("{err}: {}", err.source));
    }
    Ok(status?)
}

/// `kubectl oulogin --host H --isolated`: prints the `export` line on stdout.
pub fn isolated_command(settings: &LoginSettings) -> Result<ExitStatus, Error> {
    remove_leftovers(&settings.paths.session_dir)?;
    let target = private_target(settings)?;
    let settings = &settings.with_remembered(&target.remembered);
    let dir = PrivateDir::create(&settings.paths.session_dir, Purpose::Isolated)?;
    log_in_privately(settings, &target, &dir)?;
    let kubeconfig = dir.kubeconfig();
    dir.keep();
    output::info(format!(
        "logged in to {} in a private kubeconfig with its own session; a later run removes it once \
         OpenUnison has ended that session (or it was unused for a day)",
        target.host
    ));
    let flags = crate::settings::Remembered {
        trust: Some(settings.trust.clone()),
        port: Some(settings.port),
        ..Default::default()
    }
    .login_flags();
    output::info(shell_hint(&kubeconfig, target.host.as_str(), &flags, crate::settings::user_shell_is_fish()));
    println!("{}", export_line(&kubeconfig));
    Ok(ExitStatus::Success)
}

/// The host to log in to; the user's kubeconfig is read only when `--host` is absent.
fn private_target(settings: &LoginSettings) -> Result<LoginTarget, Error> {
    match &settings.host {
        Some(host) => Ok(LoginTarget::for_host(settings, host, settings.context.clone())),
        None => LoginTarget::resolve(settings, &Kubeconfigs::load(&settings.kubeconfig)?),
    }
}

/// Browser login into `dir`: a new OpenUnison session, its session file and a
/// kubeconfig whose only user is the exec stanza pointing at it.
fn log_in_privately(settings: &LoginSettings, target: &LoginTarget, dir: &PrivateDir) -> Result<(), Error> {
    let location = SessionLocation::isolated(dir.path());
    let bootstrap = crate::app::browser_login(settings, &target.host, &location)?;
    let user = if settings.auth_provider {
        crate::app::legacy_user(settings, &target.host, &bootstrap)?
    } else {
        session::store_login(&location, &crate::app::new_session(settings, &target.host, &bootstrap))?;
        managed::exec_user(&target.host, &SessionRef::File(location.json_path()))
    };
    let selection = KubeconfigSelection::Explicit(dir.kubeconfig());
    // Our writers' lock lives beside the shared sessions: in `dir` its name,
    // `kubeconfig.lock`, would be kubectl's own lock for `dir/kubeconfig`.
    kubeconfig::update(&selection, &settings.paths.session_dir, |fresh| {
        let names = managed::choose_names(fresh, &target.host, &bootstrap, target.context.as_deref());
        Ok((managed::login_changes(&names, &bootstrap, user.clone()), ()))
    })?;
    Ok(())
}

/// Fails, before any login, when `program` cannot be run, looking it up on
/// `PATH` the way `execvp` does: 127 when it is nowhere, 126 when what is
/// there cannot be executed. Spawning can still fail later; that is reported
/// the same way.
fn check_runnable(program: &OsStr) -> Result<(), ExecError> {
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
    fn export_lines_are_quoted() {
        assert_eq!(export_line(Path::new("/tmp/a b/kubeconfig")), "export KUBECONFIG='/tmp/a b/kubeconfig'");
        assert_eq!(export_line(Path::new("/tmp/it's")), r"export KUBECONFIG='/tmp/it'\''s'");
        assert_eq!(fish_quote(OsStr::new(r"/tmp/it's a\b")), r"'/tmp/it\'s a\\b'");
    }

    #[test]
    fn the_isolated_hint_is_for_the_users_shell_only() {
        let kubeconfig = Path::new("/tmp/x/kubeconfig");
        let fish = shell_hint(kubeconfig, "ou.example.com", "", true);
        assert_eq!(
            fish,
            "in fish: set -gx KUBECONFIG '/tmp/x/kubeconfig'; next time \
             `eval (kubectl oulogin --host ou.example.com --isolated)` does it"
        );
        let posix = shell_hint(kubeconfig, "ou.example.com", "", false);
        assert_eq!(
            posix,
            "in this shell: export KUBECONFIG='/tmp/x/kubeconfig'; next time \
             `eval \"$(kubectl oulogin --host ou.example.com --isolated)\"` does it"
        );
        assert!(!posix.contains("fish") && !fish.contains("$("));
        // A host from someone else's kubeconfig cannot smuggle a command into an `eval`.
        let hostile = shell_hint(kubeconfig, "ou.example.com;touch${IFS}pwned", " --port 8401", false);
        assert!(
            hostile.contains("kubectl oulogin --host 'ou.example.com;touch${IFS}pwned' --port 8401 --isolated"),
            "{hostile}"
        );
    }

    #[test]
    fn exec_dirs_are_leftovers_only_when_nobody_holds_them() {
        let cache = tempfile::tempdir().unwrap();
        let session_dir = cache.path().join("oulogin");
        let held = PrivateDir::create(&session_dir, Purpose::Exec).unwrap();
        let released = PrivateDir::create(&session_dir, Purpose::Exec).unwrap();
        let released_path = released.path().to_path_buf();
        // Simulate a SIGKILLed plugin: the directory stays, the lock goes.
        let mut released = released;
        released.keep = true;
        drop(released);
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

    #[test]
    fn a_missing_command_maps_to_127() {
        let cache = tempfile::tempdir().unwrap();
        let dir = PrivateDir::create(&cache.path().join("oulogin"), Purpose::Exec).unwrap();
        let err = dir.run(&["definitely-not-a-command-oulogin".into()], &IgnoredSignals::default()).unwrap_err();
        assert_eq!(err.exit_status(), ExitStatus::Child(127));
        assert!(err.to_string().contains("definitely-not-a-command-oulogin"));
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
