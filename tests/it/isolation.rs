//! `kubectl oulogin exec -- CMD` and `kubectl oulogin --isolated` against the
//! strict fake OpenUnison (grace period 0, so any shared or replayed refresh
//! token fails) with the real kubectl inside the child: private 0700
//! directories with 0600 files, exit statuses passed through, signals
//! forwarded, directories removed (also after SIGKILL, by a later run), logins
//! queued on the one redirect port, and `eval` of the `--isolated` output.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Output, TestEnv, free_port, login_args};
use crate::fake::{BrowserMode, FakeBrowser, FakeConfig, FakeOpenUnison};

/// A kubeconfig of the user's that exec and `--isolated` must never touch.
const USER_KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: other
  context:
    cluster: other
    user: other
current-context: other
users:
- name: other
  user:
    token: not-a-real-token  # a comment kept byte for byte
";

/// One fake OpenUnison, a browser that logs in, and a test world.
struct World {
    env: TestEnv,
    ou: FakeOpenUnison,
    browser: FakeBrowser,
}

impl World {
    fn start(config: FakeConfig) -> World {
        let ou = FakeOpenUnison::start(config);
        let browser = FakeBrowser::for_fake(&ou, BrowserMode::Follow);
        let env = TestEnv::new();
        env.write_kubeconfig(USER_KUBECONFIG);
        World { env, ou, browser }
    }

    fn new() -> World {
        World::start(FakeConfig::with_redirect_port(free_port()))
    }

    /// A fake whose tokens live `secs` seconds.
    fn with_token_lifetime(secs: u64) -> World {
        let mut config = FakeConfig::with_redirect_port(free_port());
        config.token_lifetime_secs = secs;
        World::start(config)
    }

    /// `exec [login flags] -- sh -c SCRIPT`.
    fn exec_args(&self, script: &str) -> Vec<String> {
        let mut args = vec!["exec".to_string()];
        args.extend(login_args(&self.ou, &self.browser));
        args.extend(["--".into(), "sh".into(), "-c".into(), script.into()]);
        args
    }

    /// `$KUBECACHEDIR/oulogin/isolated`: where private directories live.
    fn private_root(&self) -> PathBuf {
        self.env.session_dir().join("isolated")
    }

    /// The private directories that exist now.
    fn private_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.private_root()) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        dirs.sort();
        dirs
    }

    /// A file under the test's temporary root (for markers the child writes).
    fn file(&self, name: &str) -> PathBuf {
        self.env.root().join(name)
    }
}

/// The value of a `NAME=value` line the child printed on stdout.
fn reported<'a>(output: &'a Output, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    output
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the child did not report {name}:\n{output}"))
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Waits (bounded) until `path` exists.
#[track_caller]
fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(Instant::now() < deadline, "`{}` did not appear within {timeout:?}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exec_runs_the_command_in_a_private_kubeconfig_and_passes_its_status_through() {
    let world = World::new();
    let before = world.env.read_kubeconfig();
    let minted_before = world.ou.sessions_minted();
    let script = r#"
        echo "child: start" >&2
        echo "KUBECONFIG=$KUBECONFIG"
        echo "FILE_MODE=$(stat -c %a "$KUBECONFIG")"
        echo "DIR_MODE=$(stat -c %a "$(dirname "$KUBECONFIG")")"
        echo "SESSION_MODE=$(stat -c %a "$(dirname "$KUBECONFIG")/session.json")"
        echo "HOME_SEEN=$HOME"
        kubectl get --raw /api > api.json || exit 99  # the harness runs us in the test root
        echo "child: end" >&2
        exit 7
    "#;
    let output = world.env.oulogin(world.exec_args(script)).run();
    output.assert_code(7);

    let kubeconfig = PathBuf::from(reported(&output, "KUBECONFIG"));
    let dir = kubeconfig.parent().unwrap().to_path_buf();
    assert_eq!(dir.parent().unwrap(), world.private_root(), "{output}");
    assert_eq!(reported(&output, "FILE_MODE"), "600", "{output}");
    assert_eq!(reported(&output, "DIR_MODE"), "700", "{output}");
    assert_eq!(reported(&output, "SESSION_MODE"), "600", "{output}");
    assert_eq!(reported(&output, "HOME_SEEN"), world.env.home.display().to_string(), "the rest of the environment");
    let api = std::fs::read_to_string(world.env.root().join("api.json")).unwrap_or_default();
    assert!(api.contains("APIVersions"), "kubectl reached the API server:\n{api}\n{output}");

    assert!(!dir.exists(), "the private directory outlived the run:\n{output}");
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
    assert_eq!(world.env.read_kubeconfig(), before, "the user's kubeconfig changed");
    assert_eq!(world.ou.sessions_minted(), minted_before + 1, "a new session of its own");
    assert_eq!(world.browser.opened(), 1);

    // The login speaks before the command starts, and nobody after it.
    let start = output.stderr.find("child: start\n").expect("child start");
    let end = output.stderr.find("child: end\n").expect("child end");
    assert!(output.stderr[..start].contains("Opening "), "the login's own lines come first:\n{output}");
    assert_eq!(output.stderr[start..end], *"child: start\n", "nothing while the command runs:\n{output}");
    assert_eq!(&output.stderr[end..], "child: end\n", "nothing after the command:\n{output}");
}

#[test]
fn a_command_that_outlives_several_token_expiries_keeps_working() {
    let world = World::with_token_lifetime(4);
    // 4 s tokens serve about 2 s each: 12 s of kubectl runs need several refreshes.
    let script = r#"
        end=$(( $(date +%s) + 12 )); runs=0
        while [ "$(date +%s)" -lt "$end" ] && [ "$runs" -lt 200 ]; do
            kubectl get --raw /api > /dev/null || { echo "kubectl run $runs failed" >&2; exit 99; }
            runs=$((runs + 1))
            sleep 0.2
        done
        echo "RUNS=$runs"
    "#;
    let output = world.env.oulogin(world.exec_args(script)).timeout(Duration::from_secs(180)).run();
    output.assert_success();
    let runs: u64 = reported(&output, "RUNS").parse().unwrap();
    let refreshes = world.ou.successful_refreshes();
    assert!(refreshes >= 3, "{refreshes} refreshes over 12 s of 4 s tokens ({runs} kubectl runs):\n{output}");
    assert!(runs > refreshes, "{runs} kubectl runs, {refreshes} refreshes: tokens are reused while fresh");
    assert_eq!(world.ou.failed_refreshes(), 0, "events: {:#?}", world.ou.events());
    assert_eq!(world.ou.sessions_minted(), 1, "refreshed, never logged in again");
    assert_eq!(world.browser.opened(), 1);
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
}

/// Starts `exec` with a child that reports its KUBECONFIG, traps `signal`
/// with `on_signal` (after writing the signal's name to a marker file), and
/// otherwise sleeps for up to a minute.
fn start_trapping_child(world: &World, signal: &str, on_signal: &str) -> (crate::common::Running, PathBuf) {
    let marker = world.file("trapped");
    let script = format!(
        r#"
        trap 'echo {signal} > "$MARKER"; {on_signal}' {signal}
        echo "KUBECONFIG=$KUBECONFIG"
        echo "child: ready" >&2
        i=0
        while [ "$i" -lt 600 ]; do sleep 0.1; i=$((i + 1)); done
        exit 3
    "#
    );
    let mut running = world.env.oulogin(world.exec_args(&script)).env("MARKER", &marker).spawn();
    assert!(
        running.wait_for_output(Duration::from_secs(90), |_, stderr| stderr.contains("child: ready")),
        "the child never started:\n{}\n{}",
        running.stdout_so_far(),
        running.stderr_so_far()
    );
    (running, marker)
}

#[test]
fn sigterm_to_the_plugin_reaches_the_command_and_its_status_comes_back() {
    let world = World::new();
    let (running, marker) = start_trapping_child(&world, "TERM", "exit 42");
    running.signal(libc::SIGTERM);
    let output = running.wait(Duration::from_secs(30));
    output.assert_code(42);
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default().trim(), "TERM", "{output}");
    let dir = PathBuf::from(reported(&output, "KUBECONFIG")).parent().unwrap().to_path_buf();
    assert!(!dir.exists(), "{output}");
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
    let after_start = &output.stderr[output.stderr.find("child: ready\n").unwrap()..];
    assert_eq!(after_start, "child: ready\n", "nothing printed once the command started:\n{output}");
}

#[test]
fn sigint_to_the_plugin_reaches_the_command_and_its_death_by_signal_is_128_plus_n() {
    let world = World::new();
    // The child dies of the signal itself, as a program without a handler would.
    let (running, marker) = start_trapping_child(&world, "INT", "trap - INT; kill -INT $$");
    running.signal(libc::SIGINT);
    let output = running.wait(Duration::from_secs(30));
    output.assert_code(128 + libc::SIGINT);
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default().trim(), "INT", "{output}");
    let dir = PathBuf::from(reported(&output, "KUBECONFIG")).parent().unwrap().to_path_buf();
    assert!(!dir.exists(), "{output}");
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
}

#[test]
fn sighup_to_the_plugin_reaches_the_command() {
    let world = World::new();
    let (running, marker) = start_trapping_child(&world, "HUP", "exit 5");
    running.signal(libc::SIGHUP);
    let output = running.wait(Duration::from_secs(30));
    output.assert_code(5);
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default().trim(), "HUP", "{output}");
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
}

#[test]
fn signals_ignored_by_whoever_started_the_plugin_stay_ignored_for_the_command() {
    let world = World::new();
    // As `nohup` (SIGHUP) and a non-interactive shell's `&` (SIGINT) start programs.
    let mut args = vec!["-c".to_string(), r#"trap "" HUP INT; exec "$0" "$@""#.into(), "kubectl-oulogin".into()];
    args.extend(world.exec_args(r#"kill -HUP $$; kill -INT $$; echo "child: survived" >&2"#));
    let output = world.env.command("/bin/sh", args).run();
    output.assert_success().assert_stderr_contains("child: survived");
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
}

/// Whether process `pid` is gone (or a zombie, which holds no files).
fn process_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ...": the state follows the last `)`.
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn after_sigkill_the_directory_stays_while_the_command_runs_and_a_later_run_removes_it() {
    let world = World::new();
    let script = r#"
        echo "KUBECONFIG=$KUBECONFIG"
        echo "CHILD_PID=$$"
        echo "child: ready" >&2
        exec sleep 120
    "#;
    let mut running = world.env.oulogin(world.exec_args(script)).spawn();
    assert!(running.wait_for_output(Duration::from_secs(90), |_, stderr| stderr.contains("child: ready")));
    let stdout = running.stdout_so_far();
    let value = |name: &str| {
        stdout.lines().find_map(|line| line.strip_prefix(&format!("{name}="))).map(str::to_string).unwrap()
    };
    let dir = PathBuf::from(value("KUBECONFIG")).parent().unwrap().to_path_buf();
    let child_pid: u32 = value("CHILD_PID").parse().unwrap();

    running.signal(libc::SIGKILL);
    let deadline = Instant::now() + Duration::from_secs(10);
    while running.is_running() {
        assert!(Instant::now() < deadline, "the plugin survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(dir.exists(), "the directory went with the plugin");
    assert!(!process_ended(child_pid), "the command died with the plugin");

    // A run while the orphaned command still uses the directory leaves it alone.
    world.env.oulogin(world.exec_args("exit 0")).run().assert_success();
    assert!(dir.join("kubeconfig").exists(), "removed while its command still runs");
    assert_eq!(world.private_dirs(), vec![dir.clone()]);

    // SAFETY: kill(2) on the sleep this test started (checked alive just above).
    unsafe {
        libc::kill(child_pid as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_ended(child_pid) {
        assert!(Instant::now() < deadline, "the command did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    world.env.oulogin(world.exec_args("exit 0")).run().assert_success();
    assert!(!dir.exists(), "the next run after the command ended removes the leftover");
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
    running.wait(Duration::from_secs(10));
}

#[test]
fn a_command_that_does_not_exist_fails_with_127_before_any_login() {
    let world = World::new();
    let mut args = world.exec_args("unused");
    args.truncate(args.len() - 3);
    args.push("kubectl-definitely-not-installed".into());
    let output = world.env.oulogin(&args).run();
    output.assert_code(127);
    output.assert_stderr_contains("`kubectl-definitely-not-installed`");
    output.assert_stderr_contains("No such file or directory");
    assert!(output.stdout.is_empty(), "{output}");
    assert_eq!(world.browser.opened(), 0, "no browser login for a command that cannot run");
    assert_eq!(world.ou.sessions_minted(), 0);
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
}

#[test]
fn a_command_that_cannot_be_executed_fails_with_126() {
    let world = World::new();
    let script = world.file("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut args = world.exec_args("unused");
    args.truncate(args.len() - 3);
    args.push(script.display().to_string());
    let output = world.env.oulogin(&args).run();
    output.assert_code(126);
    output.assert_stderr_contains(&format!("`{}`", script.display()));
    output.assert_stderr_contains("Permission denied");
    assert_eq!(world.ou.sessions_minted(), 0);
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
}
