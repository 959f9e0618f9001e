//! The integration-test harness: `TestEnv` gives each test a temporary HOME,
//! KUBECONFIG and KUBECACHEDIR and runs the built `kubectl-oulogin` and the
//! real `kubectl` in a cleared environment, with a timeout that kills the
//! whole process group. Every run's output is also kept in a process-wide
//! list, so a security test can search all plugin output for issued tokens.
//! `TestContext` (in `context.rs`) adds a fake OpenUnison and a fake browser.

// Each test module uses a different part of the harness.
#![allow(dead_code)]

mod context;

pub use context::{TestContext, fake_config};

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Default limit for one run; a hung process fails its test instead of the suite.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The built plugin.
pub fn plugin_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-oulogin"))
}

/// The real kubectl the tests use.
pub fn kubectl_path() -> PathBuf {
    PathBuf::from("/usr/bin/kubectl")
}

/// A loopback port for a login's redirect listener: free a moment ago, never
/// handed out twice by this process, and below Linux's ephemeral range
/// (32768-60999). A port from `bind(":0")` would be in that range, where any
/// listener on port 0 or outgoing connection of a parallel test (kubectl opens
/// hundreds) can take it before the login that is to bind it starts.
pub fn free_port() -> u16 {
    const FIRST: u16 = 20_000;
    const COUNT: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Start where another run of the suite (if any) is unlikely to be.
    let offset = (std::process::id() % u32::from(COUNT)) as u16;
    for _ in 0..COUNT {
        let port = FIRST + (NEXT.fetch_add(1, Ordering::Relaxed).wrapping_add(offset)) % COUNT;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port in {FIRST}..{}", FIRST + COUNT);
}

/// The flags of a login against `fake` through `browser`:
/// `--host H --certificate-authority CA --port P --browser-command CMD`.
pub fn login_args(fake: &crate::fake::FakeOpenUnison, browser: &crate::fake::FakeBrowser) -> Vec<String> {
    vec![
        "--host".into(),
        fake.host(),
        "--certificate-authority".into(),
        fake.ca_file().display().to_string(),
        "--port".into(),
        fake.redirect_port().to_string(),
        "--browser-command".into(),
        browser.command().to_string(),
    ]
}

/// One finished (or killed) run, as kept in the process-wide log.
#[derive(Debug, Clone)]
pub struct CapturedRun {
    /// `kubectl-oulogin` or `kubectl`.
    pub program: String,
    pub args: Vec<String>,
    pub stdout: String,
    pub stderr: String,
}

static CAPTURED: Mutex<Vec<CapturedRun>> = Mutex::new(Vec::new());

/// Output of every run so far in this test process (plugin and kubectl alike;
/// kubectl passes its exec plugin's stderr through).
pub fn captured_runs() -> Vec<CapturedRun> {
    CAPTURED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// A private world for one test. Removed when dropped.
pub struct TestEnv {
    root: tempfile::TempDir,
    pub home: PathBuf,
    /// `$HOME/.kube/config`, also what `KUBECONFIG` is set to unless changed.
    pub kubeconfig: PathBuf,
    /// `KUBECACHEDIR`; the plugin keeps sessions in `<this>/oulogin`.
    pub cache_dir: PathBuf,
    kubeconfig_var: Option<OsString>,
    extra_env: Vec<(OsString, OsString)>,
}

impl Default for TestEnv {
    fn default() -> Self {
        TestEnv::new()
    }
}

impl TestEnv {
    pub fn new() -> TestEnv {
        TestEnv::new_in(&std::env::temp_dir())
    }

    /// A world whose temporary directory is made in `parent` rather than the
    /// system's (for a test whose files must not sit under a shared `/tmp`).
    pub fn new_in(parent: &Path) -> TestEnv {
        let root = tempfile::Builder::new().prefix("oulogin-test-").tempdir_in(parent).expect("temporary directory");
        let home = root.path().join("home");
        let cache_dir = root.path().join("kubecache");
        std::fs::create_dir_all(home.join(".kube")).expect("create HOME/.kube");
        let kubeconfig = home.join(".kube").join("config");
        TestEnv {
            kubeconfig_var: Some(kubeconfig.clone().into_os_string()),
            root,
            home,
            kubeconfig,
            cache_dir,
            extra_env: Vec::new(),
        }
    }

    /// The temporary directory everything lives in (for extra files).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// `$KUBECACHEDIR/oulogin`, where shared sessions live.
    pub fn session_dir(&self) -> PathBuf {
        self.cache_dir.join("oulogin")
    }

    /// Sets `KUBECONFIG` for every later run (`None`: leave it unset, so the
    /// default `~/.kube/config` applies). A list is joined with `:`.
    pub fn set_kubeconfig_var(&mut self, value: Option<&[&Path]>) {
        self.kubeconfig_var = value.map(|paths| std::env::join_paths(paths).expect("paths without `:`"));
    }

    /// An extra environment variable for every later run.
    pub fn set_env(&mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) {
        self.extra_env.push((name.as_ref().to_owned(), value.as_ref().to_owned()));
    }

    /// The kubeconfig file's bytes (empty if it does not exist).
    pub fn read_kubeconfig(&self) -> Vec<u8> {
        std::fs::read(&self.kubeconfig).unwrap_or_default()
    }

    /// Writes the kubeconfig file (`KUBECONFIG`'s default target).
    pub fn write_kubeconfig(&self, yaml: &str) {
        std::fs::write(&self.kubeconfig, yaml).expect("write the kubeconfig");
    }

    /// `kubectl-oulogin ARGS…`
    pub fn oulogin<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(plugin_path(), "kubectl-oulogin", args)
    }

    /// The real `kubectl ARGS…` (finds `kubectl-oulogin` on PATH as a plugin).
    pub fn kubectl<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run(kubectl_path(), "kubectl", args)
    }

    /// Any program in this environment.
    pub fn command<I, S>(&self, program: impl AsRef<OsStr>, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let label =
            Path::new(program.as_ref()).file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        self.run(PathBuf::from(program.as_ref()), &label, args)
    }

    fn run<I, S>(&self, program: PathBuf, label: &str, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<OsString> = args.into_iter().map(|arg| arg.as_ref().to_owned()).collect();
        let mut command = Command::new(&program);
        command.args(&args).current_dir(self.root.path()).env_clear().env("PATH", test_path()).env("HOME", &self.home);
        command.env("KUBECACHEDIR", &self.cache_dir).env("LANG", "C.UTF-8");
        if let Some(kubeconfig) = &self.kubeconfig_var {
            command.env("KUBECONFIG", kubeconfig);
        }
        for (name, value) in &self.extra_env {
            command.env(name, value);
        }
        Run {
            command,
            label: label.to_string(),
            args: args.iter().map(|arg| arg.to_string_lossy().into_owned()).collect(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// The plugin's directory first (so kubectl finds `kubectl-oulogin`), then the system.
fn test_path() -> OsString {
    let plugin_dir = plugin_path().parent().expect("plugin directory").to_path_buf();
    std::env::join_paths([plugin_dir, "/usr/local/bin".into(), "/usr/bin".into(), "/bin".into()]).expect("PATH joins")
}

/// A command about to run.
pub struct Run {
    command: Command,
    label: String,
    args: Vec<String>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
}

impl Run {
    pub fn env(mut self, name: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Run {
        self.command.env(name, value);
        self
    }

    pub fn env_remove(mut self, name: impl AsRef<OsStr>) -> Run {
        self.command.env_remove(name);
        self
    }

    /// Bytes written to stdin (then closed). Without this, stdin is `/dev/null`.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Run {
        self.stdin = Some(input.into());
        self
    }

    /// Kill the process group after this long (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Run {
        self.timeout = timeout;
        self
    }

    /// Runs to completion (or the timeout).
    pub fn run(self) -> Output {
        let input = self.stdin.clone();
        let timeout = self.timeout;
        let mut running = self.spawn_inner(input.is_some());
        if let Some(input) = input
            && let Some(mut stdin) = running.stdin.take()
        {
            // The child may exit without reading; a broken pipe is its business.
            let _ = stdin.write_all(&input);
        }
        running.wait(timeout)
    }

    /// Starts the process with a piped stdin, for interactive tests and
    /// long-running processes (`kubectl proxy`).
    pub fn spawn(self) -> Running {
        self.spawn_inner(true)
    }

    fn spawn_inner(mut self, piped_stdin: bool) -> Running {
        use std::os::unix::process::CommandExt;
        self.command
            .stdin(if piped_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Its own process group, so a timeout kills kubectl's plugin children too.
        self.command.process_group(0);
        let mut child = self.command.spawn().unwrap_or_else(|err| panic!("cannot start {}: {err}", self.label));
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            drain(child.stdout.take().expect("piped stdout"), stdout.clone()),
            drain(child.stderr.take().expect("piped stderr"), stderr.clone()),
        ];
        Running {
            stdin: child.stdin.take(),
            child,
            label: self.label,
            args: self.args,
            stdout,
            stderr,
            readers,
            started: Instant::now(),
            default_timeout: self.timeout,
            finished: false,
        }
    }
}

fn drain(mut pipe: impl Read + Send + 'static, sink: Arc<Mutex<Vec<u8>>>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 8192];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => sink.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).extend_from_slice(&buffer[..n]),
            }
        }
    })
}

/// A started process.
pub struct Running {
    child: Child,
    /// Write to it, or drop it to close stdin.
    pub stdin: Option<ChildStdin>,
    label: String,
    args: Vec<String>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
    started: Instant,
    default_timeout: Duration,
    finished: bool,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal to the process (not its group).
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, signal);
        }
    }

    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_owned()
    }

    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_owned()
    }

    /// Waits until `seen(stdout, stderr)` holds; false on timeout or exit.
    pub fn wait_for_output(&mut self, timeout: Duration, seen: impl Fn(&str, &str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if seen(&self.stdout_so_far(), &self.stderr_so_far()) {
                return true;
            }
            if Instant::now() >= deadline || self.child.try_wait().ok().flatten().is_some() {
                return seen(&self.stdout_so_far(), &self.stderr_so_far());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Waits for exit, killing the process group after `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Output {
        self.stdin.take();
        let deadline = Instant::now() + timeout;
        let mut timed_out = false;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                timed_out = true;
                self.kill_group();
                break self.child.wait().expect("wait after kill");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        self.finish(status, timed_out)
    }

    /// Waits with the timeout given to `Run::timeout` (default 60 s).
    pub fn wait_default(self) -> Output {
        let timeout = self.default_timeout.saturating_sub(self.started.elapsed());
        self.wait(timeout)
    }

    /// SIGKILLs the process group and collects what it wrote.
    pub fn kill(mut self) -> Output {
        self.stdin.take();
        self.kill_group();
        let status = self.child.wait().expect("wait after kill");
        self.finish(status, false)
    }

    fn kill_group(&mut self) {
        // SAFETY: kill(2) on the process group we created for this child.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
    }

    fn finish(mut self, status: ExitStatus, timed_out: bool) -> Output {
        // Grandchildren may still hold the pipes open: give them a moment, then kill the group.
        let grace = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|reader| !reader.is_finished()) && Instant::now() < grace {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.readers.iter().any(|reader| !reader.is_finished()) {
            self.kill_group();
        }
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.finished = true;
        let output = Output {
            status,
            stdout: self.stdout_so_far(),
            stderr: self.stderr_so_far(),
            timed_out,
            elapsed: self.started.elapsed(),
            label: self.label.clone(),
            args: self.args.clone(),
        };
        CAPTURED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(CapturedRun {
            program: self.label.clone(),
            args: self.args.clone(),
            stdout: output.stdout.clone(),
            stderr: output.stderr.clone(),
        });
        output
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.finished {
            self.kill_group();
            let _ = self.child.wait();
        }
    }
}

/// What a run left behind.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    /// Killed because it ran past its timeout.
    pub timed_out: bool,
    pub elapsed: Duration,
    label: String,
    args: Vec<String>,
}

impl Output {
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    pub fn success(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    /// Panics with the whole run shown unless it exited 0.
    #[track_caller]
    pub fn assert_success(&self) -> &Output {
        assert!(self.success(), "expected success:\n{self}");
        self
    }

    /// Panics with the whole run shown unless it exited with `code`.
    #[track_caller]
    pub fn assert_code(&self, code: i32) -> &Output {
        assert!(!self.timed_out && self.code() == Some(code), "expected exit code {code}:\n{self}");
        self
    }

    /// Panics unless stderr contains `needle`.
    #[track_caller]
    pub fn assert_stderr_contains(&self, needle: &str) -> &Output {
        assert!(self.stderr.contains(needle), "expected stderr to contain {needle:?}:\n{self}");
        self
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = if self.timed_out { "killed after timeout".to_string() } else { format!("{}", self.status) };
        writeln!(f, "$ {} {}   ({how}, {:.1?})", self.label, self.args.join(" "), self.elapsed)?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}
