//! Windows processes: liveness, parent ids, console control events (Ctrl-C,
//! Ctrl-Break, the console closing) held during a refresh, the login's
//! Ctrl-C, `exec`'s child (found through `PATH` and `PATHEXT`, run in a Job
//! Object that dies with the plugin, exit code passed through) and the polled
//! reading of stdin.
//!
//! Console control events reach every process attached to the console, so a
//! child that shares ours gets its own Ctrl-C; the plugin only decides what
//! it does itself. One handler, registered once, serves all of it.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::windows::io::{AsHandle, AsRawHandle, FromRawHandle};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    CloseHandle, ERROR_ACCESS_DENIED, ERROR_BROKEN_PIPE, FALSE, GetLastError, HANDLE, INVALID_HANDLE_VALUE,
    STATUS_CONTROL_C_EXIT, TRUE, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::Storage::FileSystem::{FILE_TYPE_CHAR, FILE_TYPE_PIPE, GetFileType, SYNCHRONIZE};
use windows_sys::Win32::System::Console::{
    CTRL_BREAK_EVENT, CTRL_C_EVENT, CTRL_CLOSE_EVENT, CTRL_LOGOFF_EVENT, CTRL_SHUTDOWN_EVENT, GetConsoleMode,
    INPUT_RECORD, KEY_EVENT, PeekConsoleInputW, ReadConsoleInputW, SetConsoleCtrlHandler,
};
use windows_sys::Win32::System::Diagnostics::ToolHelp::{
    CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW, TH32CS_SNAPPROCESS, TH32CS_SNAPTHREAD,
    THREADENTRY32, Thread32First, Thread32Next,
};
use windows_sys::Win32::System::JobObjects::{
    AssignProcessToJobObject, CreateJobObjectW, JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    JOBOBJECT_EXTENDED_LIMIT_INFORMATION, JobObjectExtendedLimitInformation, SetInformationJobObject,
};
use windows_sys::Win32::System::Pipes::PeekNamedPipe;
use windows_sys::Win32::System::Threading::{
    CREATE_SUSPENDED, OpenProcess, OpenThread, PROCESS_QUERY_LIMITED_INFORMATION, ResumeThread, THREAD_SUSPEND_RESUME,
    WaitForSingleObject,
};

/// A handle closed when dropped.
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: a handle we opened and close once.
        unsafe { CloseHandle(self.0) };
    }
}

/// Whether a process with this id exists (one we may not open counts).
pub fn is_alive(pid: u32) -> bool {
    // Id 0 is the idle process: never a holder of anything of ours.
    if pid == 0 {
        return false;
    }
    // SAFETY: OpenProcess takes no pointers; the handle is closed below.
    let handle = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, pid) };
    if handle.is_null() {
        // SAFETY: reads this thread's last error.
        return unsafe { GetLastError() } == ERROR_ACCESS_DENIED;
    }
    let handle = OwnedHandle(handle);
    // An exited process lives on as an object while anyone holds a handle to
    // it; only a wait tells it apart from a running one.
    // SAFETY: a valid process handle opened with SYNCHRONIZE.
    unsafe { WaitForSingleObject(handle.0, 0) == WAIT_TIMEOUT }
}

/// The id of the process that started us (kubectl, for `token`); 0 when the
/// system does not say.
pub fn parent_id() -> u32 {
    parent_of(std::process::id()).unwrap_or(0)
}

/// The parent process id of `pid`, from a snapshot of the process list.
fn parent_of(pid: u32) -> Option<u32> {
    // SAFETY: the snapshot handle is checked and closed below.
    let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0) };
    if snapshot == INVALID_HANDLE_VALUE {
        return None;
    }
    let snapshot = OwnedHandle(snapshot);
    let mut entry = PROCESSENTRY32W { dwSize: size_of::<PROCESSENTRY32W>() as u32, ..Default::default() };
    // SAFETY: `entry` is a PROCESSENTRY32W with its size set, as both calls require.
    let mut more = unsafe { Process32FirstW(snapshot.0, &mut entry) } != FALSE;
    while more {
        if entry.th32ProcessID == pid {
            return Some(entry.th32ParentProcessID);
        }
        // SAFETY: as above.
        more = unsafe { Process32NextW(snapshot.0, &mut entry) } != FALSE;
    }
    None
}

/// A termination request's number as the shell reports it (128 + it); the
/// console's events are given the numbers of the C runtime's signals.
pub type Signal = i32;

/// Ctrl-C: SIGINT's number, so that it ends with 130 as on Unix.
pub const CTRL_C: Signal = 2;
/// Ctrl-Break: the C runtime's SIGBREAK.
pub const CTRL_BREAK: Signal = 21;
/// The console closing (or the user logging off, or a shutdown): SIGHUP's
/// number, as the terminal going away is on Unix.
pub const CONSOLE_CLOSED: Signal = 1;

/// The event's name, for messages.
pub fn signal_name(signal: Signal) -> &'static str {
    match signal {
        CTRL_C => "Ctrl-C",
        CTRL_BREAK => "Ctrl-Break",
        CONSOLE_CLOSED => "the console closing",
        _ => "a console event",
    }
}

/// How a child process ended, in words: `exited with status 3`, or in hex
/// for an NTSTATUS such as `0xC000013A` (a Ctrl-C ended it).
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    match status.code() {
        Some(code) if (0..=255).contains(&code) => format!("exited with status {code}"),
        Some(code) if code == STATUS_CONTROL_C_EXIT => format!("exited with status 0x{:08X} (Ctrl-C)", code as u32),
        Some(code) => format!("exited with status 0x{:08X}", code as u32),
        None => "ended without a status".to_string(),
    }
}

// ---------------------------------------------------------------------------
// The console's control events.

/// What the console handler knows: the holds in force, the first event that
/// arrived during them, and the `exec` children running.
struct ConsoleState {
    /// Holds in force ([`HeldSignals`]): while above 0, events are recorded, not obeyed.
    holds: AtomicUsize,
    /// The first event recorded during a hold, 0 for none.
    arrived: AtomicI32,
    /// `exec` children running: while above 0, Ctrl-C and Ctrl-Break are theirs.
    children: AtomicUsize,
}

static CONSOLE: ConsoleState = ConsoleState::new();

/// How long a hold may keep a closing console waiting: Windows ends the
/// process 5 seconds after the close event anyway.
const CLOSE_GRACE: Duration = Duration::from_millis(4500);

impl ConsoleState {
    const fn new() -> ConsoleState {
        ConsoleState { holds: AtomicUsize::new(0), arrived: AtomicI32::new(0), children: AtomicUsize::new(0) }
    }

    /// `TRUE`: handled, nobody else acts; `FALSE`: the next handler does (in
    /// the end the default one, which ends the process).
    fn on_event(&self, event: u32) -> windows_sys::core::BOOL {
        let signal = match event {
            CTRL_C_EVENT => CTRL_C,
            CTRL_BREAK_EVENT => CTRL_BREAK,
            CTRL_CLOSE_EVENT | CTRL_LOGOFF_EVENT | CTRL_SHUTDOWN_EVENT => CONSOLE_CLOSED,
            _ => return FALSE,
        };
        if signal != CONSOLE_CLOSED && self.children.load(Ordering::SeqCst) > 0 {
            // The child got the same event from the console; we wait for it to end.
            return TRUE;
        }
        if self.holds.load(Ordering::SeqCst) == 0 {
            return FALSE;
        }
        let _ = self.arrived.compare_exchange(0, signal, Ordering::SeqCst, Ordering::SeqCst);
        if signal != CONSOLE_CLOSED {
            return TRUE;
        }
        // A closing console cannot be refused, only delayed: let the hold save
        // the rotated tokens first, then end as the default would.
        let deadline = Instant::now() + CLOSE_GRACE;
        while self.holds.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        FALSE
    }

    fn hold(&self) {
        self.holds.fetch_add(1, Ordering::SeqCst);
    }

    /// Ends one hold: the event recorded meanwhile, if any.
    fn release(&self) -> Option<Signal> {
        let arrived = self.arrived.swap(0, Ordering::SeqCst);
        self.holds.fetch_sub(1, Ordering::SeqCst);
        (arrived != 0).then_some(arrived)
    }
}

/// Registers [`on_console_event`] once; whether it is in place.
fn console_handler() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    // SAFETY: registers a handler that stays valid for the life of the process.
    *INSTALLED.get_or_init(|| unsafe { SetConsoleCtrlHandler(Some(on_console_event), TRUE) } != FALSE)
}

/// Runs on a thread of its own that Windows starts for each event.
unsafe extern "system" fn on_console_event(event: u32) -> windows_sys::core::BOOL {
    CONSOLE.on_event(event)
}

/// Holding Ctrl-C, Ctrl-Break and the console's closing while a refresh is on
/// the server. The console sends Ctrl-C to every process on it (kubectl and
/// us); dying between OpenUnison spending the old refresh token and our saving
/// the rotated one would cost the session. While held, an event is recorded
/// instead of ending the process (a closing console is kept waiting, for at
/// most the few seconds Windows allows); on release the caller learns which
/// arrived and acts on it. Outside a hold, events keep their default action.
pub struct HeldSignals {
    holding: bool,
}

impl HeldSignals {
    pub fn hold() -> HeldSignals {
        let holding = console_handler();
        if holding {
            CONSOLE.hold();
        }
        HeldSignals { holding }
    }

    /// Ends the hold: the event that arrived meanwhile, if any. Later calls
    /// return `None`.
    pub fn release(&mut self) -> Option<Signal> {
        if !std::mem::take(&mut self.holding) {
            return None;
        }
        CONSOLE.release()
    }
}

impl Drop for HeldSignals {
    /// Left without a release (an early error): an event that arrived takes
    /// its default action now, ending the process as the console would have.
    fn drop(&mut self) {
        if std::mem::take(&mut self.holding) && CONSOLE.release().is_some() {
            std::process::exit(STATUS_CONTROL_C_EXIT);
        }
    }
}

/// The user's request to cancel (Ctrl-C), for an async wait. Registered
/// before anything is printed or opened, so that a Ctrl-C from then on
/// cancels cleanly; if it cannot be, Ctrl-C simply ends the process.
pub struct Interrupts(Option<tokio::signal::windows::CtrlC>);

impl Interrupts {
    /// Needs a tokio runtime.
    pub fn listen() -> Interrupts {
        Interrupts(tokio::signal::windows::ctrl_c().ok())
    }

    /// The next Ctrl-C, or never when no handler could be installed.
    pub async fn recv(&mut self) -> Option<()> {
        match &mut self.0 {
            Some(ctrl_c) => ctrl_c.recv().await,
            None => std::future::pending().await,
        }
    }
}

// ---------------------------------------------------------------------------
// Stdin, read in small steps so that the reader can stop between them.

/// How often a pipe is looked at while waiting (pipes cannot be waited on).
const PIPE_POLL: Duration = Duration::from_millis(10);

/// What [`wait_readable`] and [`read_input`] read: stdin, or a pipe.
pub trait Readable: AsHandle {}

impl<T: AsHandle> Readable for T {}

/// Waits up to `timeout` for `input` to have something to read (or to be at
/// its end): `Ok(false)` when the time passed first. A console counts as
/// readable once a key is pressed (the read then takes the whole line); a
/// file or the `NUL` device always is.
pub fn wait_readable(input: &impl Readable, timeout: Duration) -> io::Result<bool> {
    let handle = input.as_handle().as_raw_handle() as HANDLE;
    // SAFETY: a valid handle borrowed for the call.
    match unsafe { GetFileType(handle) } {
        FILE_TYPE_PIPE => pipe_readable(handle, timeout),
        FILE_TYPE_CHAR if is_console(handle) => console_readable(handle, timeout),
        _ => Ok(true),
    }
}

fn pipe_readable(handle: HANDLE, timeout: Duration) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut available = 0u32;
        // SAFETY: only the count is asked for; the other pointers may be null.
        let peeked = unsafe {
            PeekNamedPipe(handle, std::ptr::null_mut(), 0, std::ptr::null_mut(), &mut available, std::ptr::null_mut())
        };
        if peeked == FALSE {
            let err = io::Error::last_os_error();
            // The writer is gone: the next read reports the end of input.
            return if err.raw_os_error() == Some(ERROR_BROKEN_PIPE as i32) { Ok(true) } else { Err(err) };
        }
        if available > 0 {
            return Ok(true);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        std::thread::sleep(left.min(PIPE_POLL));
    }
}

fn is_console(handle: HANDLE) -> bool {
    let mut mode = 0;
    // SAFETY: a valid handle and an out-parameter for the mode.
    unsafe { GetConsoleMode(handle, &mut mode) != FALSE }
}

fn console_readable(handle: HANDLE, timeout: Duration) -> io::Result<bool> {
    let millis = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX - 1);
    // SAFETY: a console input handle is waitable; it is signalled while input events are queued.
    match unsafe { WaitForSingleObject(handle, millis) } {
        WAIT_TIMEOUT => return Ok(false),
        WAIT_OBJECT_0 => {}
        _ => return Err(io::Error::last_os_error()),
    }
    let mut records = [INPUT_RECORD::default(); 64];
    let mut count = 0u32;
    // SAFETY: the buffer holds `records.len()` records; `count` receives how many were filled.
    if unsafe { PeekConsoleInputW(handle, records.as_mut_ptr(), records.len() as u32, &mut count) } == FALSE {
        return Err(io::Error::last_os_error());
    }
    let typed = records[..count as usize].iter().any(|record| {
        // SAFETY: the union is a KEY_EVENT_RECORD when the event type says so.
        u32::from(record.EventType) == KEY_EVENT && unsafe { record.Event.KeyEvent.bKeyDown } != FALSE
    });
    if !typed && count > 0 {
        // Only focus, mouse, resize or key-up events: a line read would skip
        // them anyway, and left queued they would keep the handle signalled.
        // SAFETY: as for the peek; exactly the peeked events are taken off.
        // A failure is an error: the events would stay queued and the
        // handle signalled, and the caller's wait would spin.
        if unsafe { ReadConsoleInputW(handle, records.as_mut_ptr(), count, &mut count) } == FALSE {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(typed)
}

/// One read straight from `input`'s handle, past any buffer of std's (what
/// [`wait_readable`] saw is what this reads); 0 at the end of input.
pub fn read_input(input: &impl Readable, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the handle is borrowed for the read and never closed here (ManuallyDrop).
    let file = ManuallyDrop::new(unsafe { File::from_raw_handle(input.as_handle().as_raw_handle()) });
    // std's File::read reports a broken pipe as the end of input.
    io::Read::read(&mut &*file, buf)
}

// ---------------------------------------------------------------------------
// `exec`'s child.

pub use child::{ChildError, IgnoredSignals, find_program, run_child};

/// What to check when [`find_program`] (or starting it) found nothing to run:
/// Windows looks for a file with one of `PATHEXT`'s extensions, which the
/// advice names.
pub fn not_found_advice(program: &str) -> String {
    let extensions = pathext_list();
    if crate::platform::pathext::has_directory(program) {
        format!(
            "check the path `{program}` (a name without an extension is tried with each of PATHEXT's: {extensions})"
        )
    } else {
        format!(
            "check that `{program}` is installed in a directory on PATH, as a file with one of PATHEXT's extensions \
             ({extensions})"
        )
    }
}

/// What to check when what was found cannot be run.
pub fn cannot_run_advice(program: &str) -> String {
    format!(
        "check that `{program}` is a program Windows can start (an `.exe`, or a script with one of PATHEXT's \
         extensions: {}) and not a directory",
        pathext_list()
    )
}

/// The extensions a program is looked up with, as `PATHEXT` lists them.
fn pathext_list() -> String {
    match std::env::var("PATHEXT") {
        Ok(list) if !list.trim().is_empty() => list,
        _ => crate::platform::pathext::DEFAULT_PATHEXT.to_string(),
    }
}

mod child {
    use super::*;

    /// The shell's view of a finished process, in the one byte an exit code of
    /// ours passes on: codes 0 to 255 as they are, a Ctrl-C's end as 130 (as on
    /// Unix), anything wider (an NTSTATUS crash code) as 1, never as success.
    pub fn exit_code(status: std::process::ExitStatus) -> u8 {
        match status.code() {
            Some(code) => match u8::try_from(code) {
                Ok(code) => code,
                Err(_) if code == STATUS_CONTROL_C_EXIT => 128 + CTRL_C as u8,
                Err(_) => 1,
            },
            None => 1,
        }
    }

    /// Why a child could not be run to its end.
    #[derive(Debug)]
    pub enum ChildError {
        /// It could not be started (not found: `NotFound`; not executable: any other kind).
        Start(io::Error),
        /// The plugin's own handling of console events could not be set up, or the
        /// child could not be let go after being put in its Job Object.
        Signals(io::Error),
        /// Waiting for it failed.
        Wait(io::Error),
    }

    /// Unix passes signals that were ignored at start on to the child; a console
    /// process's ignored Ctrl-C is inherited by its children as it is (the
    /// plugin never changes it: it handles events instead), so nothing is kept.
    #[derive(Debug, Clone, Default)]
    pub struct IgnoredSignals;

    impl IgnoredSignals {
        pub fn at_start() -> IgnoredSignals {
            IgnoredSignals
        }
    }

    /// What to start for `program`: found through `PATH` and `PATHEXT` as the
    /// command prompt would (`k9s` runs `k9s.exe`, see [`crate::platform::pathext`]);
    /// `NotFound` when there is nothing to run. Checked before any login so that
    /// a mistyped command costs none.
    pub fn find_program(program: &OsStr) -> io::Result<OsString> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let pathext = std::env::var_os("PATHEXT").unwrap_or_default();
        let found = crate::platform::pathext::find_program(
            &program.to_string_lossy(),
            &path.to_string_lossy(),
            &pathext.to_string_lossy(),
            |candidate| std::path::Path::new(candidate).is_file(),
        );
        found.map(OsString::from).ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))
    }

    /// Runs `command` (its program as [`find_program`] gave it) to its end and
    /// returns its exit code (see [`exit_code`]). The child is started suspended,
    /// put in a Job Object that kills everything in it when its last handle
    /// closes (ours, when the plugin ends, however it ends), then let go; so
    /// neither it nor anything it starts outlives the plugin. While it runs, the
    /// plugin leaves Ctrl-C and Ctrl-Break to it (the console delivers them to
    /// both) and waits. `shared` needs nothing here: a lock dies with the plugin,
    /// and the Job Object takes the child down with it.
    pub fn run_child(mut command: Command, shared: Option<&File>, ignored: &IgnoredSignals) -> Result<u8, ChildError> {
        use std::os::windows::process::CommandExt;
        let _ = (shared, ignored);
        if !console_handler() {
            return Err(ChildError::Signals(io::Error::last_os_error()));
        }
        let job = Job::kill_on_close();
        CONSOLE.children.fetch_add(1, Ordering::SeqCst);
        let _running = ChildRunning;
        command.creation_flags(CREATE_SUSPENDED);
        let mut child = command.spawn().map_err(ChildError::Start)?;
        match &job {
            Ok(job) => {
                if let Err(err) = job.assign(&child) {
                    crate::debug!("cannot put `exec`'s command in a Job Object ({err}); it may outlive the plugin");
                }
            }
            Err(err) => crate::debug!("cannot create a Job Object ({err}); `exec`'s command may outlive the plugin"),
        }
        if let Err(err) = resume(&child) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ChildError::Signals(err));
        }
        let status = child.wait().map_err(ChildError::Wait)?;
        Ok(exit_code(status))
    }

    /// Counts a running child for the console handler while alive.
    struct ChildRunning;

    impl Drop for ChildRunning {
        fn drop(&mut self) {
            CONSOLE.children.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// A Job Object that kills its processes when its last handle closes. The
    /// handle is not inheritable, so ours is the only one.
    pub(super) struct Job(OwnedHandle);

    impl Job {
        pub(super) fn kill_on_close() -> io::Result<Job> {
            // SAFETY: default security and no name; the handle is checked and owned below.
            let handle = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
            if handle.is_null() {
                return Err(io::Error::last_os_error());
            }
            let job = Job(OwnedHandle(handle));
            let mut limits = JOBOBJECT_EXTENDED_LIMIT_INFORMATION::default();
            limits.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
            // SAFETY: the information class matches the structure and its size.
            let set = unsafe {
                SetInformationJobObject(
                    job.0.0,
                    JobObjectExtendedLimitInformation,
                    (&raw const limits).cast(),
                    size_of::<JOBOBJECT_EXTENDED_LIMIT_INFORMATION>() as u32,
                )
            };
            if set == FALSE {
                return Err(io::Error::last_os_error());
            }
            Ok(job)
        }

        pub(super) fn assign(&self, child: &Child) -> io::Result<()> {
            // SAFETY: both handles are valid for the call.
            if unsafe { AssignProcessToJobObject(self.0.0, child.as_raw_handle() as HANDLE) } == FALSE {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }
    }

    /// Lets a child started with `CREATE_SUSPENDED` run: resumes its threads
    /// (a new process has exactly one), found in a snapshot of the thread list.
    pub(super) fn resume(child: &Child) -> io::Result<()> {
        // SAFETY: the snapshot handle is checked and closed below.
        let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
        if snapshot == INVALID_HANDLE_VALUE {
            return Err(io::Error::last_os_error());
        }
        let snapshot = OwnedHandle(snapshot);
        let mut entry = THREADENTRY32 { dwSize: size_of::<THREADENTRY32>() as u32, ..Default::default() };
        let mut resumed = 0;
        // SAFETY: `entry` is a THREADENTRY32 with its size set, as both calls require.
        let mut more = unsafe { Thread32First(snapshot.0, &mut entry) } != FALSE;
        while more {
            if entry.th32OwnerProcessID == child.id() {
                // SAFETY: OpenThread takes no pointers; the handle is checked and closed.
                let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, FALSE, entry.th32ThreadID) };
                if thread.is_null() {
                    return Err(io::Error::last_os_error());
                }
                let thread = OwnedHandle(thread);
                // SAFETY: a thread handle opened with THREAD_SUSPEND_RESUME.
                if unsafe { ResumeThread(thread.0) } == u32::MAX {
                    return Err(io::Error::last_os_error());
                }
                resumed += 1;
            }
            // SAFETY: as above.
            more = unsafe { Thread32Next(snapshot.0, &mut entry) } != FALSE;
        }
        if resumed == 0 {
            return Err(io::Error::new(io::ErrorKind::NotFound, "the new process has no thread to resume"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::child::{Job, exit_code, resume};
    use super::*;

    /// A command that runs for a while (without a console window's input).
    fn lingering() -> Command {
        let mut command = Command::new("cmd");
        command.args(["/c", "ping -n 30 127.0.0.1 >NUL"]);
        command
    }

    #[test]
    fn liveness_of_ourselves_and_of_a_finished_child() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(0));
        let mut child = Command::new("cmd").args(["/c", "exit 3"]).spawn().unwrap();
        let pid = child.id();
        // Our handle keeps the process object; the wait still tells it ended.
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(3));
        assert!(!is_alive(pid));
    }

    #[test]
    fn a_child_knows_us_as_its_parent() {
        let mut child = lingering().spawn().unwrap();
        assert_eq!(parent_of(child.id()), Some(std::process::id()));
        assert!(is_alive(child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn the_job_takes_its_processes_down_when_closed() {
        use std::os::windows::process::CommandExt;
        let job = Job::kill_on_close().unwrap();
        let mut command = lingering();
        command.creation_flags(CREATE_SUSPENDED);
        let mut child = command.spawn().unwrap();
        job.assign(&child).unwrap();
        resume(&child).unwrap();
        assert!(child.try_wait().unwrap().is_none(), "running");
        drop(job);
        // Killed by the job (with which exit code is Windows' choice): the
        // ping alone would take 29 seconds.
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(10), "the job did not kill its process");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn exit_codes_pass_through() {
        let mut command = Command::new("cmd");
        command.args(["/c", "exit 7"]);
        assert_eq!(run_child(command, None, &IgnoredSignals).unwrap(), 7);
        let missing = Command::new(r"C:\definitely\not\a\command-oulogin.exe");
        match run_child(missing, None, &IgnoredSignals) {
            Err(ChildError::Start(err)) => assert_eq!(err.kind(), io::ErrorKind::NotFound),
            other => panic!("{other:?}"),
        }
        assert_eq!(CONSOLE.children.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_advice_speaks_of_path_and_pathext() {
        let bare = not_found_advice("k9s");
        assert!(bare.contains("on PATH") && bare.contains(&pathext_list()), "{bare}");
        let path = not_found_advice(r"C:\tools\k9s");
        assert!(path.starts_with(r"check the path `C:\tools\k9s`") && path.contains("PATHEXT"), "{path}");
        assert!(!cannot_run_advice("k9s").contains("chmod"));
    }

    #[test]
    fn programs_are_found_through_pathext() {
        let found = find_program(OsStr::new("cmd")).unwrap();
        assert!(found.to_string_lossy().to_lowercase().ends_with(r"\cmd.exe"), "{found:?}");
        let missing = find_program(OsStr::new("definitely-not-a-command-oulogin")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn events_are_recorded_during_a_hold_and_left_to_a_running_child() {
        // A state of its own: the process-wide one is shared with every test.
        let state = ConsoleState::new();
        assert_eq!(state.on_event(CTRL_C_EVENT), FALSE, "outside a hold: the default action");
        state.hold();
        assert_eq!(state.on_event(CTRL_BREAK_EVENT), TRUE, "recorded, not obeyed");
        assert_eq!(state.on_event(CTRL_C_EVENT), TRUE);
        assert_eq!(state.release(), Some(CTRL_BREAK), "the first one");
        assert_eq!(state.on_event(CTRL_C_EVENT), FALSE);
        state.children.fetch_add(1, Ordering::SeqCst);
        assert_eq!(state.on_event(CTRL_C_EVENT), TRUE, "the child's to act on");
        assert_eq!(state.on_event(CTRL_CLOSE_EVENT), FALSE, "a closing console ends us too");
        state.hold();
        assert_eq!(state.release(), None, "what the child took is not recorded");
        assert_eq!(signal_name(CTRL_BREAK), "Ctrl-Break");
        let mut held = HeldSignals::hold();
        assert!(held.holding, "the handler is in place");
        held.release();
        assert_eq!(held.release(), None);
    }

    #[test]
    fn stdin_steps_see_data_and_the_end() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        assert!(!wait_readable(&reader, Duration::from_millis(10)).unwrap());
        io::Write::write_all(&mut writer, b"line\r\n").unwrap();
        assert!(wait_readable(&reader, Duration::from_secs(5)).unwrap());
        let mut buf = [0u8; 16];
        assert_eq!(read_input(&reader, &mut buf).unwrap(), 6);
        drop(writer);
        assert!(wait_readable(&reader, Duration::from_secs(5)).unwrap());
        assert_eq!(read_input(&reader, &mut buf).unwrap(), 0, "a broken pipe is the end of input");
    }

    #[test]
    fn exit_codes_for_the_shell() {
        use std::os::windows::process::ExitStatusExt;
        let of = |code: u32| exit_code(std::process::ExitStatus::from_raw(code));
        assert_eq!((of(0), of(7), of(255)), (0, 7, 255));
        assert_eq!(of(STATUS_CONTROL_C_EXIT as u32), 130);
        assert_eq!(of(0xC000_0005), 1, "a crash stays a failure");
        assert_eq!(of(256), 1, "never wraps to success");
        assert_eq!(describe_exit(std::process::ExitStatus::from_raw(0xC000_0005)), "exited with status 0xC0000005");
    }
}
