//! Unix processes: liveness, parent ids, signals held during a refresh, the
//! login's Ctrl-C, `exec`'s child (found on `PATH`, signals forwarded, exit
//! status passed through), the user id and the polled reading of stdin.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use libc::c_int;

/// Whether a process with this id exists (one we may not signal counts).
pub fn is_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let signalled = unsafe { libc::kill(pid, 0) } == 0;
    signalled || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The id of the process that started us (kubectl, for `token`).
pub fn parent_id() -> u32 {
    std::os::unix::process::parent_id()
}

/// The effective user id, which owns what we create and what we may read
/// (for the login listener's Linux-only check of who connected).
#[cfg(target_os = "linux")]
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() }
}

/// A termination request's number as the shell reports it (128 + it): a
/// signal number here.
pub type Signal = c_int;

/// The signal's conventional name, for messages.
pub fn signal_name(signal: Signal) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// How a child process ended, in words: `exited with status 3`, `was
/// killed by signal 9 (SIGKILL)`.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => match fatal_signal_name(signal) {
            Some(name) => format!("was killed by signal {signal} ({name})"),
            None => format!("was killed by signal {signal}"),
        },
        (None, None) => "ended without a status".to_string(),
    }
}

fn fatal_signal_name(signal: c_int) -> Option<&'static str> {
    Some(match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGABRT => "SIGABRT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGTERM => "SIGTERM",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// Holding termination requests during a refresh.

/// The signals held, in the order one is reported when several arrived.
const HELD: [c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

/// Holding SIGINT, SIGTERM and SIGHUP while a refresh is on the server. Ctrl-C
/// reaches the whole process group (kubectl and us); dying between OpenUnison
/// spending the old refresh token and our saving the rotated one would cost
/// the session. While held, the signals stay pending (blocked, not handled:
/// no handler lingers afterwards, so outside the hold their default action is
/// untouched); on release the caller learns which arrived and acts on it.
/// SIGKILL cannot be blocked by anyone.
///
/// The signals are blocked for this thread (and any thread it starts
/// meanwhile, such as the HTTP client's resolver) until released or dropped.
pub struct HeldSignals {
    /// The mask to restore; `None` once released (or if blocking failed).
    previous: Option<libc::sigset_t>,
}

impl HeldSignals {
    pub fn hold() -> HeldSignals {
        let held = signal_set(&HELD);
        let mut previous = MaybeUninit::<libc::sigset_t>::uninit();
        // SAFETY: `held` is an initialised set and `previous` is written by the call before it is read.
        let blocked = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &held, previous.as_mut_ptr()) } == 0;
        // SAFETY: initialised by the successful call above.
        HeldSignals { previous: blocked.then(|| unsafe { previous.assume_init() }) }
    }

    /// Ends the hold: the held signal that arrived meanwhile, if any, taken
    /// off the pending list (so it does not strike when unblocked), then the
    /// old mask back. Later calls return `None`.
    pub fn release(&mut self) -> Option<Signal> {
        let previous = self.previous.take()?;
        let arrived = take_pending(&previous);
        restore(&previous);
        arrived
    }
}

impl Drop for HeldSignals {
    /// Left without a release (an early error): the old mask comes back and a
    /// signal that arrived takes its default action.
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            restore(&previous);
        }
    }
}

fn signal_set(signals: &[c_int]) -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset only adds valid signal numbers to it.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for &signal in signals {
            libc::sigaddset(set.as_mut_ptr(), signal);
        }
        set.assume_init()
    }
}

/// Consumes the held signals that are pending (and were not already blocked
/// before the hold: those belong to whoever blocked them); returns the first.
fn take_pending(previous: &libc::sigset_t) -> Option<c_int> {
    let mut pending = signal_set(&[]);
    // SAFETY: `pending` is an initialised set for sigpending to fill.
    if unsafe { libc::sigpending(&mut pending) } != 0 {
        return None;
    }
    let mut first = None;
    for signal in HELD {
        // SAFETY: both sets are initialised.
        let arrived = unsafe { libc::sigismember(&pending, signal) } == 1;
        let ours = unsafe { libc::sigismember(previous, signal) } == 0;
        if arrived && ours {
            let only = signal_set(&[signal]);
            let mut taken: c_int = 0;
            // SAFETY: the signal is pending and blocked, so sigwait returns at once.
            unsafe { libc::sigwait(&only, &mut taken) };
            first.get_or_insert(signal);
        }
    }
    first
}

fn restore(previous: &libc::sigset_t) {
    // SAFETY: `previous` is the initialised mask pthread_sigmask gave us.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, previous, std::ptr::null_mut()) };
}

// ---------------------------------------------------------------------------
// The login's Ctrl-C.

/// The user's request to cancel (SIGINT), for an async wait. Registered
/// before anything is printed or opened, so that a Ctrl-C from then on
/// cancels cleanly; if it cannot be, Ctrl-C simply ends the process.
pub struct Interrupts(Option<tokio::signal::unix::Signal>);

impl Interrupts {
    /// Needs a tokio runtime with I/O enabled.
    pub fn listen() -> Interrupts {
        Interrupts(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok())
    }

    /// The next Ctrl-C, or never when no handler could be installed.
    pub async fn recv(&mut self) -> Option<()> {
        match &mut self.0 {
            Some(signal) => signal.recv().await,
            None => std::future::pending().await,
        }
    }
}

// ---------------------------------------------------------------------------
// Stdin, read in small steps so that the reader can stop between them.

/// What [`wait_readable`] and [`read_input`] read: stdin, or a pipe.
pub trait Readable: AsFd {}

impl<T: AsFd> Readable for T {}

/// Waits up to `timeout` for `input` to have something to read (or to be at
/// its end): `Ok(false)` when the time passed first.
pub fn wait_readable(input: &impl Readable, timeout: Duration) -> io::Result<bool> {
    let mut poll_fd = libc::pollfd { fd: input.as_fd().as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let millis = c_int::try_from(timeout.as_millis()).unwrap_or(c_int::MAX);
    // SAFETY: one valid pollfd for the duration of the call.
    match unsafe { libc::poll(&mut poll_fd, 1, millis) } {
        ready if ready < 0 => Err(io::Error::last_os_error()),
        ready => Ok(ready > 0),
    }
}

/// One read straight from `input`'s descriptor, past any buffer of std's
/// (what [`wait_readable`] saw is what this reads); 0 at the end of input.
pub fn read_input(input: &impl Readable, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: reading into a buffer we own, at most its length.
    let read = unsafe { libc::read(input.as_fd().as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
    if read < 0 { Err(io::Error::last_os_error()) } else { Ok(read as usize) }
}

// ---------------------------------------------------------------------------
// `exec`'s child.

pub use child::{ChildError, IgnoredSignals, find_program, run_child};

/// What to check when [`find_program`] (or starting it) found nothing to run.
pub fn not_found_advice(program: &str) -> String {
    if program.contains('/') {
        format!("check the path `{program}` (and, for a script, its `#!` line)")
    } else {
        format!("check that `{program}` is installed and on PATH")
    }
}

/// What to check when what was found cannot be run.
pub fn cannot_run_advice(program: &str) -> String {
    format!("check that `{program}` is an executable file (`chmod +x`) and not a directory")
}

mod child {
    use super::*;

    /// The shell's view of a finished process: its code, or 128+N for signal N.
    pub fn exit_code(status: std::process::ExitStatus) -> u8 {
        use std::os::unix::process::ExitStatusExt as _;
        match (status.code(), status.signal()) {
            (Some(code), _) => (code & 0xff) as u8,
            (None, Some(signal)) => (128 + signal).clamp(0, 255) as u8,
            (None, None) => 1,
        }
    }

    /// Why a child could not be run to its end.
    #[derive(Debug)]
    pub enum ChildError {
        /// It could not be started (not found: `NotFound`; not executable: any other kind).
        Start(io::Error),
        /// The plugin's own handling of termination requests could not be set up.
        Signals(io::Error),
        /// Waiting for it failed.
        Wait(io::Error),
    }

    /// The signals `exec` forwards to its command.
    const FORWARDED_SIGNALS: [c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

    /// Which of the forwarded signals the plugin was started with ignored (`nohup`,
    /// background jobs of non-interactive shells). The login's own Ctrl-C handling
    /// replaces those dispositions, so they are read before it, and the command
    /// gets them ignored again, as if it had been started directly.
    #[derive(Debug, Clone, Default)]
    pub struct IgnoredSignals(Vec<c_int>);

    impl IgnoredSignals {
        /// Reads the current dispositions; call it before anything installs handlers.
        pub fn at_start() -> IgnoredSignals {
            IgnoredSignals(FORWARDED_SIGNALS.into_iter().filter(|&signal| is_ignored(signal)).collect())
        }

        fn contains(&self, signal: c_int) -> bool {
            self.0.contains(&signal)
        }
    }

    fn is_ignored(signal: c_int) -> bool {
        // SAFETY: a zeroed sigaction is a valid out-parameter; a null new action
        // only reads the current disposition.
        unsafe {
            let mut current: libc::sigaction = std::mem::zeroed();
            libc::sigaction(signal, std::ptr::null(), &mut current) == 0 && current.sa_sigaction == libc::SIG_IGN
        }
    }

    /// What to start for `program`, checked before any login so that a mistyped
    /// command costs none: looked up on `PATH` the way `execvp` does, `NotFound`
    /// when it is nowhere, `PermissionDenied` when what is there cannot be
    /// executed. The program is returned as given (`execvp` looks it up again);
    /// spawning can still fail later, and [`run_child`] reports that the same way.
    pub fn find_program(program: &OsStr) -> io::Result<OsString> {
        use std::os::unix::ffi::OsStrExt;
        let candidates: Vec<PathBuf> = if program.as_bytes().contains(&b'/') {
            vec![PathBuf::from(program)]
        } else {
            let Some(path) = std::env::var_os("PATH") else {
                return Ok(program.to_owned());
            };
            std::env::split_paths(&path)
                .map(|dir| if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir })
                .map(|dir| dir.join(program))
                .collect()
        };
        let mut found_unusable = false;
        for candidate in &candidates {
            if let Ok(meta) = std::fs::metadata(candidate) {
                if meta.is_file() && is_executable(candidate) {
                    return Ok(program.to_owned());
                }
                found_unusable = true;
            }
        }
        Err(io::Error::from_raw_os_error(if found_unusable { libc::EACCES } else { libc::ENOENT }))
    }

    fn is_executable(path: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: access(2) reads a NUL-terminated path that outlives the call.
        unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 }
    }

    /// Runs `command` to its end and returns its exit code for the shell (128+N
    /// when it died of signal N). The child inherits `shared` (an open file whose
    /// flock must last as long as the child does) and gets the `ignored` signals
    /// ignored again; SIGINT, SIGTERM and SIGHUP that another process sends the
    /// plugin are forwarded to it (a terminal's Ctrl-C reaches it through its
    /// process group already).
    pub fn run_child(mut command: Command, shared: Option<&File>, ignored: &IgnoredSignals) -> Result<u8, ChildError> {
        prepare_child(&mut command, shared.map(AsRawFd::as_raw_fd), ignored);
        let forwarder = SignalForwarder::install(ignored).map_err(ChildError::Signals)?;
        let mut child = command.spawn().map_err(ChildError::Start)?;
        let status = forwarder.wait(&mut child).map_err(ChildError::Wait)?;
        Ok(exit_code(status))
    }

    /// Between fork and exec: lets the child inherit `inherited_fd` (and so its
    /// flock), and ignores the `ignored` signals again.
    fn prepare_child(command: &mut Command, inherited_fd: Option<c_int>, ignored: &IgnoredSignals) {
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
}

#[cfg(test)]
mod tests {
    use super::child::exit_code;
    use super::*;

    fn blocked(signal: c_int) -> bool {
        let mut current = signal_set(&[]);
        // SAFETY: reads this thread's mask into an initialised set.
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), &mut current) };
        // SAFETY: `current` is initialised.
        unsafe { libc::sigismember(&current, signal) == 1 }
    }

    #[test]
    fn a_signal_during_the_hold_is_reported_once_and_the_mask_restored() {
        let mut held = HeldSignals::hold();
        assert!(HELD.iter().all(|&signal| blocked(signal)));
        // SAFETY: SIGTERM is blocked in this thread, so raising it only makes it pending here.
        unsafe { libc::raise(libc::SIGTERM) };
        assert_eq!(held.release(), Some(libc::SIGTERM));
        assert!(!blocked(libc::SIGTERM) && !blocked(libc::SIGINT));
        assert_eq!(held.release(), None);
        let mut quiet = HeldSignals::hold();
        assert_eq!(quiet.release(), None);
        drop(HeldSignals::hold());
        assert!(!blocked(libc::SIGHUP), "dropping restores the mask");
        assert_eq!(signal_name(libc::SIGHUP), "SIGHUP");
    }

    #[test]
    fn exit_statuses_are_described_in_words() {
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(describe_exit(std::process::ExitStatus::from_raw(3 << 8)), "exited with status 3");
        assert_eq!(describe_exit(std::process::ExitStatus::from_raw(9)), "was killed by signal 9 (SIGKILL)");
        assert_eq!(describe_exit(std::process::ExitStatus::from_raw(60)), "was killed by signal 60");
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        let status = Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
        assert_eq!(exit_code(status), 7);
        let status = Command::new("sh").args(["-c", "kill -TERM $$"]).status().unwrap();
        assert_eq!(exit_code(status), 128 + 15);
    }

    #[test]
    fn liveness_and_parent() {
        assert!(is_alive(std::process::id()));
        assert!(is_alive(parent_id()));
        assert!(!is_alive(0), "0 is a process group, not a process");
        assert!(!is_alive(u32::MAX), "not a pid_t");
        let mut child = Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        // Reaped, so the id is free (the kernel does not hand it out again at once).
        assert!(!is_alive(pid));
    }

    #[test]
    fn programs_are_checked_like_execvp_would() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_program(OsStr::new("sh")).unwrap(), "sh");
        assert!(find_program(OsStr::new("/bin/sh")).is_ok());
        let missing = find_program(OsStr::new("definitely-not-a-command-oulogin")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "echo hi").unwrap();
        assert_eq!(find_program(plain.as_os_str()).unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(find_program(dir.path().as_os_str()).unwrap_err().kind(), io::ErrorKind::PermissionDenied);
    }

    #[test]
    fn a_child_runs_with_the_shared_file_and_its_code_comes_back() {
        let shared = tempfile::tempfile().unwrap();
        let fd = shared.as_raw_fd().to_string();
        let mut probe = Command::new("sh");
        probe.args(["-c", "[ -e /dev/fd/$1 ] && exit 7; exit 3", "sh", &fd]);
        assert_eq!(run_child(probe, Some(&shared), &IgnoredSignals::default()).unwrap(), 7);
        let mut unshared = Command::new("sh");
        unshared.args(["-c", "[ -e /dev/fd/$1 ] && exit 7; exit 3", "sh", &fd]);
        assert_eq!(run_child(unshared, None, &IgnoredSignals::default()).unwrap(), 3, "close-on-exec otherwise");
        let missing = Command::new("definitely-not-a-command-oulogin");
        match run_child(missing, None, &IgnoredSignals::default()) {
            Err(ChildError::Start(err)) => assert_eq!(err.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn stdin_steps_see_data_and_the_end() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        assert!(!wait_readable(&reader, Duration::from_millis(10)).unwrap());
        io::Write::write_all(&mut writer, b"line\n").unwrap();
        assert!(wait_readable(&reader, Duration::from_secs(5)).unwrap());
        let mut buf = [0u8; 16];
        assert_eq!(read_input(&reader, &mut buf).unwrap(), 5);
        drop(writer);
        assert!(wait_readable(&reader, Duration::from_secs(5)).unwrap());
        assert_eq!(read_input(&reader, &mut buf).unwrap(), 0);
    }
}
