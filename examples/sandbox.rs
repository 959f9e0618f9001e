//! The sandbox: the strict fake OpenUnison and fake Kubernetes API server
//! from the test suite (the same code, `tests/fake/`), runnable by hand.
//!
//! - `sandbox demo` (also what `sandbox` alone does): start both fakes with a
//!   fresh CA in a private temporary HOME, log in with the real
//!   `kubectl oulogin` (system browser, or the built-in headless one), use the
//!   context with the real `kubectl`, then race N kubectl processes across a few
//!   token expiries twice, with the legacy `auth-provider` kubeconfig and with
//!   the exec stanza, and print a table of failed requests and refresh calls.
//!   Everything started stops, and the temporary HOME is removed, when it ends
//!   (also on Ctrl-C).
//! - `sandbox serve [--token-lifetime 60s] [--grace-period 0ms] [--inactivity-timeout 15m]
//!   [--cluster-name kubernetes] [--port 8400]`: start both servers on loopback and print the
//!   `--host` and `--certificate-authority` to use, then log what happens until Ctrl-C.
//! - `sandbox browse URL [--ca FILE]`: the test suite's headless browser: follow
//!   the redirect chain from URL with a cookie jar and print every hop.

#[path = "../tests/fake/mod.rs"]
mod fake;

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Parser, Subcommand};

/// Try kubectl-oulogin without an OpenUnison: a strict fake one on loopback.
///
/// Without a subcommand, runs `demo`.
#[derive(Debug, Parser)]
#[command(name = "sandbox", args_conflicts_with_subcommands = true)]
struct Sandbox {
    #[command(subcommand)]
    mode: Option<Mode>,

    #[command(flatten)]
    demo: DemoArgs,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Log in with kubectl-oulogin against the fakes, then race N kubectl processes
    /// with the legacy auth-provider kubeconfig and with the exec stanza.
    Demo(DemoArgs),
    /// Start the fake OpenUnison and Kubernetes API server and wait for Ctrl-C.
    Serve(ServeArgs),
    /// Follow a login URL like a browser would, and print each hop.
    Browse(BrowseArgs),
    /// Open a URL in the system browser with the user's own HOME (the demo's browser command).
    #[command(hide = true)]
    OpenBrowser(OpenBrowserArgs),
}

#[derive(Debug, Args, Clone)]
struct DemoArgs {
    /// Log in with the built-in headless browser instead of the system browser
    /// (the default when there is no DISPLAY or WAYLAND_DISPLAY).
    #[arg(long)]
    headless: bool,
    /// How many kubectl processes run at once after each token expiry.
    #[arg(short = 'n', long = "processes", value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=128))]
    processes: u16,
    /// How many token expiries each race lasts.
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u16).range(1..=10))]
    expiries: u16,
    /// Lifetime of the k8sIdp id_tokens during the demo (whole seconds, 2s to 60s).
    #[arg(long, value_name = "DURATION", default_value = "4s", value_parser = parse_demo_lifetime)]
    token_lifetime: Duration,
    /// How long the fake OpenUnison takes to answer a refresh (a real one takes some milliseconds).
    #[arg(long, value_name = "DURATION", default_value = "0ms", value_parser = parse_duration)]
    refresh_delay: Duration,
    /// Loopback port of the registered redirect URI (default: a free one).
    #[arg(long, value_name = "N")]
    port: Option<u16>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Lifetime of the k8sIdp id_tokens.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    token_lifetime: Duration,
    /// OpenUnison's refresh-token grace period (0 = one-time refresh tokens).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    grace_period: Duration,
    /// Sliding session lifetime without refreshes.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    inactivity_timeout: Duration,
    /// Cluster (and context) name the bootstrap JSON announces.
    #[arg(long, default_value = "kubernetes")]
    cluster_name: String,
    /// Loopback port of the registered redirect URI (`kubectl oulogin --port`).
    #[arg(long, default_value_t = 8400)]
    port: u16,
    /// Serve OpenUnison with a self-signed CA:TRUE certificate instead of a CA-issued one.
    #[arg(long)]
    self_signed: bool,
}

#[derive(Debug, Args)]
struct BrowseArgs {
    /// The URL the plugin would open (`https://HOST/cli-login` or an authorization URL).
    url: String,
    /// PEM file to trust (the CA file `serve` printed).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Stop before the loopback `/redirect` URL and print it (for pasting into `--no-browser`).
    #[arg(long)]
    stop_at_redirect: bool,
    /// Print each hop without its query string.
    #[arg(long)]
    short: bool,
}

#[derive(Debug, Args)]
struct OpenBrowserArgs {
    /// The HOME the browser should see (the demo gives the plugin a temporary one).
    #[arg(long, value_name = "DIR")]
    home: Option<PathBuf>,
    url: String,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("`{text}` is not a duration ({err})"))
}

fn parse_demo_lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = parse_duration(text)?;
    if !(2..=60).contains(&lifetime.as_secs()) || lifetime.subsec_nanos() != 0 {
        return Err(format!("`{text}`: the demo's token lifetime is whole seconds from 2s to 60s"));
    }
    Ok(lifetime)
}

fn main() -> std::process::ExitCode {
    let sandbox = Sandbox::parse();
    let result = match sandbox.mode {
        None => demo(sandbox.demo),
        Some(Mode::Demo(args)) => demo(args),
        Some(Mode::Serve(args)) => serve(args).map_err(Stop::Failed),
        Some(Mode::Browse(args)) => browse(args).map_err(Stop::Failed),
        Some(Mode::OpenBrowser(args)) => open_browser(args).map_err(Stop::Failed),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Stop::Interrupted) => {
            eprintln!("interrupted");
            std::process::ExitCode::from(130)
        }
        Err(Stop::Failed(message)) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Why the sandbox stopped early.
#[derive(Debug)]
enum Stop {
    /// Ctrl-C (or SIGTERM/SIGHUP).
    Interrupted,
    Failed(String),
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let config = fake::FakeConfig {
        redirect_port: args.port,
        cluster_name: args.cluster_name,
        token_lifetime_secs: args.token_lifetime.as_secs().max(1),
        grace_period_ms: args.grace_period.as_millis() as u64,
        inactivity_timeout_secs: args.inactivity_timeout.as_secs().max(1),
        self_signed: args.self_signed,
        ..fake::FakeConfig::default()
    };
    let fake = fake::FakeOpenUnison::start(config);
    println!("fake OpenUnison:          {}", fake.base_url());
    println!("fake Kubernetes API:      {}", fake.api_server_url());
    println!("OpenUnison CA file:       {}", fake.ca_file().display());
    println!("redirect URI registered:  {}", fake.redirect_uri());
    println!();
    println!("Log in with:");
    println!(
        "  kubectl oulogin --host {} --certificate-authority {} --port {}",
        fake.host(),
        fake.ca_file().display(),
        fake.redirect_port()
    );
    println!("Use a scratch kubeconfig to keep yours untouched: export KUBECONFIG=$(mktemp)");
    println!("Ctrl-C stops the servers and removes their files.");
    println!();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|err| format!("cannot handle signal {signal}: {err}"))?;
    }
    let mut printed = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let events = fake.events();
        for event in &events[printed..] {
            println!("{}  {event}", humantime::format_rfc3339_seconds(std::time::SystemTime::now()));
        }
        printed = events.len();
        std::thread::sleep(Duration::from_millis(200));
    }
    let counters = fake.counters();
    println!(
        "\nstopping: {} sessions minted, {} refreshes ({} refused), {} API requests ({} unauthorized)",
        counters.sessions_minted,
        counters.refreshes_ok,
        counters.refreshes_failed,
        fake.api().ok_requests(),
        fake.api().unauthorized_requests()
    );
    Ok(())
}

fn browse(args: BrowseArgs) -> Result<(), String> {
    let pem = match &args.ca {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|err| format!("cannot read `{}`: {err}", path.display()))?
        }
        None => String::new(),
    };
    let trusted: Vec<&str> = if pem.is_empty() { vec![] } else { vec![pem.as_str()] };
    let browser = fake::browser::Browser::new(&trusted);
    let outcome = if args.stop_at_redirect {
        browser.follow_until_loopback_redirect(&args.url)
    } else {
        browser.follow(&args.url)
    };
    for (url, status) in &outcome.hops {
        let shown = match url.split_once('?') {
            Some((without_query, _)) if args.short => format!("{without_query}?…"),
            _ => url.clone(),
        };
        println!("{status}  {shown}");
    }
    if args.stop_at_redirect
        && let Some(redirect) = &outcome.loopback_redirect
    {
        println!("{redirect}");
    }
    match outcome.error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// The demo's `--browser-command` for the system browser: the plugin runs with
/// a temporary HOME, but the user's browser must see their own profile.
fn open_browser(args: OpenBrowserArgs) -> Result<(), String> {
    if let Some(home) = &args.home {
        // SAFETY: nothing else runs yet; this short-lived process has one thread.
        unsafe { std::env::set_var("HOME", home) };
    }
    open::that_detached(&args.url).map_err(|err| format!("the system browser did not open {}: {err}", args.url))
}

// ---------------------------------------------------------------------------
// The demo

/// How long the headless login may take, and how long one race wave may run.
const HEADLESS_LOGIN_TIMEOUT: Duration = Duration::from_secs(60);
const SYSTEM_BROWSER_LOGIN_TIMEOUT: Duration = Duration::from_secs(300);
const WAVE_TIMEOUT: Duration = Duration::from_secs(90);
const KUBECTL_TIMEOUT: Duration = Duration::from_secs(30);
/// client-go's oidc auth-provider refreshes a token this long before its `exp`.
const LEGACY_EXPIRY_MARGIN: Duration = Duration::from_secs(10);
/// What the demo asks the API server for.
const NAMESPACE_PATH: &str = "/api/v1/namespaces/default";

fn demo(args: DemoArgs) -> Result<(), Stop> {
    let interrupted = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM, signal_hook::consts::SIGHUP] {
        // A second signal while we clean up ends the process at once.
        signal_hook::flag::register_conditional_shutdown(signal, 130, interrupted.clone())
            .and_then(|_| signal_hook::flag::register(signal, interrupted.clone()))
            .map_err(|err| format!("cannot handle signal {signal}: {err}"))?;
    }
    let tools = Tools::find()?;
    let stage = Stage::start(&args, tools, interrupted)?;
    let root = stage.root.path().to_path_buf();
    let result = stage.run_demo(&args);
    // Children are already gone (each is killed when its guard drops); this
    // stops the fakes and removes the temporary HOME.
    drop(stage);
    if root.exists() {
        let _ = std::fs::remove_dir_all(&root);
    }
    match root.exists() {
        false => println!("\nStopped the fake servers and removed {}.", root.display()),
        true => eprintln!("warning: could not remove `{}`; remove it by hand", root.display()),
    }
    result
}

/// The programs the demo runs.
struct Tools {
    /// `target/<profile>/kubectl-oulogin`, beside this example's directory.
    plugin: PathBuf,
    kubectl: PathBuf,
    /// This executable (`sandbox browse` and `sandbox open-browser`).
    sandbox: PathBuf,
}

impl Tools {
    fn find() -> Result<Tools, String> {
        let sandbox = std::env::current_exe().map_err(|err| format!("cannot find the sandbox executable: {err}"))?;
        let profile_dir = sandbox.parent().and_then(Path::parent).map(Path::to_path_buf).unwrap_or_default();
        let plugin = profile_dir.join(format!("kubectl-oulogin{}", std::env::consts::EXE_SUFFIX));
        if !plugin.is_file() {
            return Err(format!(
                "the plugin `{}` is missing; build it beside the sandbox with `cargo build --release --bins --examples` \
                 (or without `--release` for `target/debug`)",
                plugin.display()
            ));
        }
        let kubectl = find_on_path("kubectl").ok_or_else(|| {
            "kubectl is not on PATH; install it (https://kubernetes.io/docs/tasks/tools/) and run the sandbox again"
                .to_string()
        })?;
        Ok(Tools { plugin, kubectl, sandbox })
    }
}

fn find_on_path(program: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|dir| dir.join(program)).find(|candidate| {
        std::fs::metadata(candidate).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
    })
}

fn display_available() -> bool {
    if cfg!(target_os = "macos") {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The running fakes and the private world the demo's processes see.
/// Field order is drop order: the fakes stop before the directory goes.
struct Stage {
    fake: fake::FakeOpenUnison,
    tools: Tools,
    interrupted: Arc<AtomicBool>,
    /// `--browser-command` for the first login.
    browser_command: String,
    /// The built-in headless browser, for the race logins.
    headless_command: String,
    headless: bool,
    home: PathBuf,
    kubeconfig: PathBuf,
    cache_dir: PathBuf,
    path: OsString,
    no_proxy: OsString,
    root: tempfile::TempDir,
}

/// One kubectl through one race.
#[derive(Debug, Default)]
struct RaceResult {
    runs: usize,
    failed: usize,
    refresh_ok: usize,
    refresh_rejected: usize,
    /// Refresh calls (any outcome) during each wave.
    per_expiry: Vec<usize>,
    /// Failures by cause, in the order first seen: (cause, count, first line of one).
    failure_causes: Vec<(&'static str, usize, String)>,
}

impl RaceResult {
    fn count_failure(&mut self, first_line: String) {
        let cause = failure_cause(&first_line);
        match self.failure_causes.iter_mut().find(|(known, _, _)| *known == cause) {
            Some((_, count, _)) => *count += 1,
            None => self.failure_causes.push((cause, 1, first_line)),
        }
    }
}

/// Why a kubectl failed, from the first line of its stderr.
fn failure_cause(first_line: &str) -> &'static str {
    if first_line.contains("401") {
        "its refresh token had already been used by another kubectl (401)"
    } else if first_line.contains("localhost:8080") {
        "it read the kubeconfig while another kubectl was rewriting it in place (empty file: localhost:8080)"
    } else {
        "another error"
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RaceMode {
    Legacy,
    Exec,
}

impl RaceMode {
    fn label(self) -> &'static str {
        match self {
            RaceMode::Legacy => "legacy auth-provider",
            RaceMode::Exec => "oulogin exec stanza",
        }
    }

    fn file_stem(self) -> &'static str {
        match self {
            RaceMode::Legacy => "legacy",
            RaceMode::Exec => "exec",
        }
    }
}

impl Stage {
    fn start(args: &DemoArgs, tools: Tools, interrupted: Arc<AtomicBool>) -> Result<Stage, String> {
        let root = tempfile::Builder::new()
            .prefix("oulogin-sandbox-")
            .tempdir()
            .map_err(|err| format!("cannot create a temporary directory: {err}"))?;
        let home = root.path().join("home");
        let kube_dir = home.join(".kube");
        std::fs::create_dir_all(&kube_dir).map_err(|err| format!("cannot create `{}`: {err}", kube_dir.display()))?;
        let port = match args.port {
            Some(port) => port,
            None => free_loopback_port()?,
        };
        let fake = fake::FakeOpenUnison::start(fake::FakeConfig {
            redirect_port: port,
            token_lifetime_secs: args.token_lifetime.as_secs(),
            grace_period_ms: 0,
            refresh_delay: args.refresh_delay,
            ..fake::FakeConfig::default()
        });

        let plugin_dir = tools.plugin.parent().map(Path::to_path_buf).unwrap_or_default();
        let inherited_path = std::env::var_os("PATH").unwrap_or_default();
        let path = std::env::join_paths(std::iter::once(plugin_dir).chain(std::env::split_paths(&inherited_path)))
            .map_err(|err| format!("cannot build PATH: {err}"))?;
        let mut no_proxy = OsString::from("127.0.0.1,localhost");
        if let Some(existing) = std::env::var_os("NO_PROXY").or_else(|| std::env::var_os("no_proxy")) {
            no_proxy.push(",");
            no_proxy.push(existing);
        }

        let sandbox = tools.sandbox.display().to_string();
        let ca = fake.ca_file().display().to_string();
        let headless_command = shell_words::join([sandbox.as_str(), "browse", "--short", "--ca", ca.as_str()]);
        let headless = args.headless || !display_available();
        let browser_command = if headless {
            headless_command.clone()
        } else {
            match std::env::var_os("HOME") {
                Some(real_home) => {
                    shell_words::join([sandbox.as_str(), "open-browser", "--home", &real_home.to_string_lossy()])
                }
                None => shell_words::join([sandbox.as_str(), "open-browser"]),
            }
        };
        Ok(Stage {
            fake,
            tools,
            interrupted,
            browser_command,
            headless_command,
            headless,
            kubeconfig: kube_dir.join("config"),
            cache_dir: kube_dir.join("cache"),
            home,
            path,
            no_proxy,
            root,
        })
    }

    fn run_demo(&self, args: &DemoArgs) -> Result<(), Stop> {
        self.print_setup(args);

        println!("\n1. Log in (the plugin writes an exec stanza into the private kubeconfig)");
        let login_timeout = if self.headless { HEADLESS_LOGIN_TIMEOUT } else { SYSTEM_BROWSER_LOGIN_TIMEOUT };
        if !self.headless {
            println!(
                "   Your browser opens {}/cli-login. Its certificate comes from a CA the sandbox just made up:\n   \
                 accept the warning for 127.0.0.1:{} once; the fake logs you in as `jdoe` by itself.",
                self.fake.base_url(),
                self.fake.port()
            );
        }
        let login = self.login_args(&self.browser_command, login_timeout, &[]);
        let status = self.run_shown(self.kubectl(&self.kubeconfig, &login), &login, login_timeout + KUBECTL_TIMEOUT)?;
        if !status.success() {
            return Err(Stop::Failed(format!("`kubectl oulogin` failed ({status}); see its output above")));
        }
        self.print_user_entry(&self.kubeconfig);

        println!("\n2. Use it");
        let get = ["get".to_string(), "--raw".to_string(), NAMESPACE_PATH.to_string()];
        let status = self.run_shown(self.kubectl(&self.kubeconfig, &get), &get, KUBECTL_TIMEOUT)?;
        if !status.success() {
            return Err(Stop::Failed(format!("`kubectl get --raw {NAMESPACE_PATH}` failed ({status})")));
        }

        println!(
            "\n3. The race: {} kubectl processes at once after each of {} token expiries \
             (tokens live {}, grace period 0), first with the legacy kubeconfig, then with the exec stanza",
            args.processes,
            args.expiries,
            humantime::format_duration(args.token_lifetime)
        );
        let legacy = self.race(RaceMode::Legacy, args)?;
        let exec = self.race(RaceMode::Exec, args)?;

        println!();
        print_table(&[(RaceMode::Legacy, &legacy), (RaceMode::Exec, &exec)]);
        println!();
        println!(
            "The legacy kubeconfig lost {} of {} requests: every kubectl refreshes on its own, with the one-time \
             refresh token it read, and writes the kubeconfig back in place.",
            legacy.failed, legacy.runs
        );
        println!(
            "With the exec stanza, {} of {} requests failed: `kubectl oulogin token` refreshed under a lock, once per \
             expiry, and the others reused the new token.",
            exec.failed, exec.runs
        );
        if args.token_lifetime <= LEGACY_EXPIRY_MARGIN {
            println!(
                "(kubectl's legacy oidc provider counts a token as expired {} before its `exp`, so with {} tokens \
                 every legacy run refreshes; with OpenUnison's usual one-minute tokens only runs in a token's last {} \
                 do, and those still collide. `--token-lifetime 15s` shows that, slower.)",
                humantime::format_duration(LEGACY_EXPIRY_MARGIN),
                humantime::format_duration(args.token_lifetime),
                humantime::format_duration(LEGACY_EXPIRY_MARGIN),
            );
        }
        if exec.failed > 0 {
            return Err(Stop::Failed(format!(
                "{} requests failed with the exec stanza; that is a bug in kubectl-oulogin",
                exec.failed
            )));
        }
        Ok(())
    }

    fn print_setup(&self, args: &DemoArgs) {
        println!("kubectl-oulogin sandbox: a strict fake OpenUnison and Kubernetes API server on loopback");
        println!("  fake OpenUnison      {}   (--host {})", self.fake.base_url(), self.fake.host());
        println!("  its CA (made now)    {}", self.fake.ca_file().display());
        println!("  fake Kubernetes API  {}", self.fake.api_server_url());
        println!("  redirect URI         {}", self.fake.redirect_uri());
        println!("  private HOME         {}", self.home.display());
        println!("  KUBECONFIG           {}", self.kubeconfig.display());
        println!("  KUBECACHEDIR         {}", self.cache_dir.display());
        println!("  plugin               {}", self.tools.plugin.display());
        println!("  kubectl              {}", self.tools.kubectl.display());
        let browser = if !self.headless {
            "the system browser"
        } else if args.headless {
            "the built-in headless browser (--headless)"
        } else {
            "the built-in headless browser (no DISPLAY or WAYLAND_DISPLAY)"
        };
        println!("  browser              {browser}");
        println!(
            "  OpenUnison settings  tokens live {}, refresh-token grace period 0, refresh latency {}",
            humantime::format_duration(args.token_lifetime),
            humantime::format_duration(args.refresh_delay)
        );
        println!("Your own kubeconfig is not touched. Ctrl-C stops everything and removes the files.");
    }

    /// `oulogin --host H --certificate-authority CA --port P --browser-command CMD --timeout T EXTRA…`
    fn login_args(&self, browser_command: &str, timeout: Duration, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "oulogin".into(),
            "--host".into(),
            self.fake.host(),
            "--certificate-authority".into(),
            self.fake.ca_file().display().to_string(),
            "--port".into(),
            self.fake.redirect_port().to_string(),
            "--browser-command".into(),
            browser_command.to_string(),
            "--timeout".into(),
            format!("{}s", timeout.as_secs()),
        ];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        args
    }

    /// `kubectl ARGS` in the private world, with this kubeconfig.
    fn kubectl(&self, kubeconfig: &Path, args: &[String]) -> Command {
        let mut command = Command::new(&self.tools.kubectl);
        command
            .args(args)
            .current_dir(&self.home)
            .env("HOME", &self.home)
            .env("KUBECONFIG", kubeconfig)
            .env("KUBECACHEDIR", &self.cache_dir)
            .env("PATH", &self.path)
            .env("NO_PROXY", &self.no_proxy)
            .env("no_proxy", &self.no_proxy)
            .env_remove("BROWSER")
            .stdin(Stdio::null());
        // Its own process group: Ctrl-C reaches only us, and we stop the whole
        // group (kubectl and the credential plugins it runs).
        command.process_group(0);
        command
    }

    /// Runs `command`, printing `$ kubectl ARGS` and its output indented.
    fn run_shown(&self, mut command: Command, args: &[String], timeout: Duration) -> Result<ExitStatus, Stop> {
        println!("$ kubectl {}", shell_words::join(args));
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = Guarded::spawn(&mut command, "kubectl")?;
        let readers: Vec<_> = [
            child.child.stdout.take().map(|pipe| Box::new(pipe) as Box<dyn std::io::Read + Send>),
            child.child.stderr.take().map(|pipe| Box::new(pipe) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        .map(|pipe| {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    println!("  | {line}");
                }
            })
        })
        .collect();
        let status = self.wait(&mut child, timeout)?;
        // A grandchild may hold the pipes open; do not wait for it long.
        let deadline = Instant::now() + Duration::from_secs(2);
        while readers.iter().any(|reader| !reader.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(status)
    }

    /// Waits for `child`, polling for Ctrl-C; kills its group on timeout or interrupt.
    fn wait(&self, child: &mut Guarded, timeout: Duration) -> Result<ExitStatus, Stop> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if self.interrupted.load(Ordering::SeqCst) {
                child.kill();
                return Err(Stop::Interrupted);
            }
            if Instant::now() >= deadline {
                child.kill();
                return Err(Stop::Failed(format!("kubectl did not finish within {}s", timeout.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn sleep_until(&self, until: Instant) -> Result<(), Stop> {
        while Instant::now() < until {
            if self.interrupted.load(Ordering::SeqCst) {
                return Err(Stop::Interrupted);
            }
            std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
        }
        Ok(())
    }

    /// Shows the `users:` part of a kubeconfig (exec stanzas hold no secrets).
    fn print_user_entry(&self, kubeconfig: &Path) {
        let Ok(text) = std::fs::read_to_string(kubeconfig) else { return };
        let mut lines = text.lines().skip_while(|line| *line != "users:");
        let Some(first) = lines.next() else { return };
        println!("The user entry it wrote in {}:", kubeconfig.display());
        println!("  {first}");
        for line in lines.take_while(|line| line.starts_with([' ', '-'])) {
            println!("  {line}");
        }
    }

    /// Logs in into a kubeconfig of its own, then runs the waves.
    fn race(&self, mode: RaceMode, args: &DemoArgs) -> Result<RaceResult, Stop> {
        let kubeconfig = self.root.path().join(format!("{}.kubeconfig", mode.file_stem()));
        let race_dir = self.root.path().join(format!("race-{}", mode.file_stem()));
        std::fs::create_dir_all(&race_dir).map_err(|err| format!("cannot create `{}`: {err}", race_dir.display()))?;
        let extra: &[&str] = match mode {
            RaceMode::Legacy => &["--auth-provider"],
            RaceMode::Exec => &["--force"],
        };
        println!(
            "\nRace with the {}: a fresh login into {} (with the built-in headless browser)",
            mode.label(),
            kubeconfig.display()
        );
        let login = self.login_args(&self.headless_command, HEADLESS_LOGIN_TIMEOUT, extra);
        let status =
            self.run_shown(self.kubectl(&kubeconfig, &login), &login, HEADLESS_LOGIN_TIMEOUT + KUBECTL_TIMEOUT)?;
        if !status.success() {
            return Err(Stop::Failed(format!("the {} login failed ({status}); see its output above", mode.label())));
        }

        let race_start = SystemTime::now();
        let mut result = RaceResult::default();
        let lifetime = args.token_lifetime;
        // Any token issued so far was issued before now: after a lifetime and a
        // second more, it has expired.
        let mut quiet_since = Instant::now();
        for wave in 1..=args.expiries {
            self.sleep_until(quiet_since + lifetime + Duration::from_secs(1))?;
            let wave_start = SystemTime::now();
            let (runs, failures) = self.wave(&kubeconfig, &race_dir, wave, args.processes)?;
            let wave_end = SystemTime::now();
            quiet_since = Instant::now();
            let calls = self
                .fake
                .refresh_events()
                .iter()
                .filter(|event| event.at >= wave_start && event.at <= wave_end)
                .count();
            println!("  expiry {wave}: {runs} kubectl runs, {} failed, {calls} refresh calls", failures.len());
            result.runs += runs;
            result.failed += failures.len();
            result.per_expiry.push(calls);
            for failure in failures {
                result.count_failure(failure);
            }
        }
        for event in self.fake.refresh_events().iter().filter(|event| event.at >= race_start) {
            match event.outcome {
                fake::openunison::RefreshOutcome::Rejected => result.refresh_rejected += 1,
                _ => result.refresh_ok += 1,
            }
        }
        for (cause, count, sample) in &result.failure_causes {
            println!("  {count} failed because {cause}, e.g.:\n    {sample}");
        }
        Ok(result)
    }

    /// Starts `processes` kubectl processes at once and waits for all of them.
    /// Returns how many ran and the first stderr line of each failure.
    fn wave(&self, kubeconfig: &Path, dir: &Path, wave: u16, processes: u16) -> Result<(usize, Vec<String>), Stop> {
        let get = ["get".to_string(), "--raw".to_string(), NAMESPACE_PATH.to_string()];
        let mut running = Vec::new();
        for index in 0..processes {
            let stderr_path = dir.join(format!("wave{wave}-{index}.stderr"));
            let stderr = std::fs::File::create(&stderr_path)
                .map_err(|err| format!("cannot create `{}`: {err}", stderr_path.display()))?;
            let mut command = self.kubectl(kubeconfig, &get);
            command.stdout(Stdio::null()).stderr(stderr);
            running.push((Guarded::spawn(&mut command, "kubectl")?, stderr_path));
        }
        let mut failures = Vec::new();
        let deadline = Instant::now() + WAVE_TIMEOUT;
        for (child, stderr_path) in &mut running {
            let status = self.wait(child, deadline.saturating_duration_since(Instant::now()))?;
            if !status.success() {
                let stderr = std::fs::read_to_string(&*stderr_path).unwrap_or_default();
                let first = stderr.lines().find(|line| !line.trim().is_empty()).unwrap_or("(no output)");
                failures.push(self.redact(first));
            }
        }
        Ok((running.len(), failures))
    }

    /// A line of kubectl output, short, with any token the fake issued blanked out.
    fn redact(&self, line: &str) -> String {
        let mut line = line.to_string();
        for token in self.fake.issued_tokens() {
            if !token.is_empty() {
                line = line.replace(&token, "<token>");
            }
        }
        if line.chars().count() > 200 {
            line = line.chars().take(200).collect::<String>() + "…";
        }
        line
    }
}

fn print_table(rows: &[(RaceMode, &RaceResult)]) {
    let header = ["mode", "kubectl runs", "failed requests", "refresh calls (ok/rejected)", "refresh calls per expiry"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|(mode, result)| {
            [
                mode.label().to_string(),
                result.runs.to_string(),
                result.failed.to_string(),
                format!(
                    "{} ({}/{})",
                    result.refresh_ok + result.refresh_rejected,
                    result.refresh_ok,
                    result.refresh_rejected
                ),
                result.per_expiry.iter().map(usize::to_string).collect::<Vec<_>>().join(" "),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|column| {
            cells.iter().map(|row| row[column].chars().count()).chain([header[column].len()]).max().unwrap_or(0)
        })
        .collect();
    let line = |row: &[&str]| {
        row.iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("   ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(&header));
    for row in &cells {
        println!("{}", line(&row.iter().map(String::as_str).collect::<Vec<_>>()));
    }
}

fn free_loopback_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|err| format!("cannot find a free loopback port: {err}"))
}

/// A child in its own process group, killed with its group unless it was reaped.
struct Guarded {
    child: Child,
    reaped: bool,
}

impl Guarded {
    fn spawn(command: &mut Command, what: &str) -> Result<Guarded, String> {
        let child = command.spawn().map_err(|err| format!("cannot start {what}: {err}"))?;
        Ok(Guarded { child, reaped: false })
    }

    fn try_wait(&mut self) -> Result<Option<ExitStatus>, String> {
        let status = self.child.try_wait().map_err(|err| format!("cannot wait for a child process: {err}"))?;
        self.reaped = status.is_some();
        Ok(status)
    }

    fn kill(&mut self) {
        self.kill_group();
        if !self.reaped {
            let _ = self.child.wait();
            self.reaped = true;
        }
    }

    fn kill_group(&self) {
        // SAFETY: kill(2) on the process group this child leads (process_group(0) at spawn).
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), libc::SIGKILL);
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if !self.reaped {
            self.kill();
        }
    }
}
