//! `kubectl oulogin exec -- CMD` and `kubectl oulogin --isolated` against the
//! strict fake OpenUnison (grace period 0, so any shared or replayed refresh
//! token fails) with the real kubectl inside the child: private 0700
//! directories with 0600 files, exit statuses passed through, signals
//! forwarded, directories removed (also after SIGKILL, by a later run), logins
//! queued on the one redirect port, `eval` of the `--isolated` output, and the
//! line `--shell` chooses (fish, PowerShell, cmd) checked as text.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Output, TestContext};
use crate::fake::BrowserMode;

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

/// What the exec and `--isolated` tests do with the shared context.
impl TestContext {
    /// The context with the user's kubeconfig in place.
    fn with_user_kubeconfig(self) -> TestContext {
        self.env.write_kubeconfig(USER_KUBECONFIG);
        self
    }

    /// `exec [login flags] -- sh -c SCRIPT`.
    fn exec_args(&self, script: &str) -> Vec<String> {
        let mut args = vec!["exec".to_string()];
        args.extend(self.login_args(&[]));
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

#[test]
fn exec_runs_the_command_in_a_private_kubeconfig_and_passes_its_status_through() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let before = ctx.env.read_kubeconfig();
    let minted_before = ctx.fake.sessions_minted();
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
    let output = ctx.env.oulogin(ctx.exec_args(script)).run();
    output.assert_code(7);

    let kubeconfig = PathBuf::from(reported(&output, "KUBECONFIG"));
    let dir = kubeconfig.parent().unwrap().to_path_buf();
    assert_eq!(dir.parent().unwrap(), ctx.private_root(), "{output}");
    assert_eq!(reported(&output, "FILE_MODE"), "600", "{output}");
    assert_eq!(reported(&output, "DIR_MODE"), "700", "{output}");
    assert_eq!(reported(&output, "SESSION_MODE"), "600", "{output}");
    assert_eq!(reported(&output, "HOME_SEEN"), ctx.env.home.display().to_string(), "the rest of the environment");
    let api = std::fs::read_to_string(ctx.env.root().join("api.json")).unwrap_or_default();
    assert!(api.contains("APIVersions"), "kubectl reached the API server:\n{api}\n{output}");

    assert!(!dir.exists(), "the private directory outlived the run:\n{output}");
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
    assert_eq!(ctx.env.read_kubeconfig(), before, "the user's kubeconfig changed");
    assert_eq!(ctx.fake.sessions_minted(), minted_before + 1, "a new session of its own");
    assert_eq!(ctx.browser.opened(), 1);

    // The login speaks before the command starts, and nobody after it.
    let start = output.stderr.find("child: start\n").expect("child start");
    let end = output.stderr.find("child: end\n").expect("child end");
    assert!(output.stderr[..start].contains("Opening "), "the login's own lines come first:\n{output}");
    assert_eq!(output.stderr[start..end], *"child: start\n", "nothing while the command runs:\n{output}");
    assert_eq!(&output.stderr[end..], "child: end\n", "nothing after the command:\n{output}");
}

#[test]
fn a_command_that_outlives_several_token_expiries_keeps_working() {
    let ctx = TestContext::with_token_lifetime(4).with_user_kubeconfig();
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
    let output = ctx.env.oulogin(ctx.exec_args(script)).timeout(Duration::from_secs(180)).run();
    output.assert_success();
    let runs: u64 = reported(&output, "RUNS").parse().unwrap();
    let refreshes = ctx.fake.successful_refreshes();
    assert!(refreshes >= 3, "{refreshes} refreshes over 12 s of 4 s tokens ({runs} kubectl runs):\n{output}");
    assert!(runs > refreshes, "{runs} kubectl runs, {refreshes} refreshes: tokens are reused while fresh");
    assert_eq!(ctx.fake.failed_refreshes(), 0, "events: {:#?}", ctx.fake.events());
    assert_eq!(ctx.fake.sessions_minted(), 1, "refreshed, never logged in again");
    assert_eq!(ctx.browser.opened(), 1);
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
}

/// Starts `exec` with a child that reports its KUBECONFIG, traps `signal`
/// with `on_signal` (after writing the signal's name to a marker file), and
/// otherwise sleeps for up to a minute.
fn start_trapping_child(ctx: &TestContext, signal: &str, on_signal: &str) -> (crate::common::Running, PathBuf) {
    let marker = ctx.file("trapped");
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
    let mut running = ctx.env.oulogin(ctx.exec_args(&script)).env("MARKER", &marker).spawn();
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
    let ctx = TestContext::new().with_user_kubeconfig();
    let (running, marker) = start_trapping_child(&ctx, "TERM", "exit 42");
    running.signal(libc::SIGTERM);
    let output = running.wait(Duration::from_secs(30));
    output.assert_code(42);
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default().trim(), "TERM", "{output}");
    let dir = PathBuf::from(reported(&output, "KUBECONFIG")).parent().unwrap().to_path_buf();
    assert!(!dir.exists(), "{output}");
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
    let after_start = &output.stderr[output.stderr.find("child: ready\n").unwrap()..];
    assert_eq!(after_start, "child: ready\n", "nothing printed once the command started:\n{output}");
}

#[test]
fn sigint_to_the_plugin_reaches_the_command_and_its_death_by_signal_is_128_plus_n() {
    let ctx = TestContext::new().with_user_kubeconfig();
    // The child dies of the signal itself, as a program without a handler would.
    let (running, marker) = start_trapping_child(&ctx, "INT", "trap - INT; kill -INT $$");
    running.signal(libc::SIGINT);
    let output = running.wait(Duration::from_secs(30));
    output.assert_code(128 + libc::SIGINT);
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default().trim(), "INT", "{output}");
    let dir = PathBuf::from(reported(&output, "KUBECONFIG")).parent().unwrap().to_path_buf();
    assert!(!dir.exists(), "{output}");
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
}

#[test]
fn sighup_to_the_plugin_reaches_the_command() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let (running, marker) = start_trapping_child(&ctx, "HUP", "exit 5");
    running.signal(libc::SIGHUP);
    let output = running.wait(Duration::from_secs(30));
    output.assert_code(5);
    assert_eq!(std::fs::read_to_string(&marker).unwrap_or_default().trim(), "HUP", "{output}");
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
}

#[test]
fn signals_ignored_by_whoever_started_the_plugin_stay_ignored_for_the_command() {
    let ctx = TestContext::new().with_user_kubeconfig();
    // As `nohup` (SIGHUP) and a non-interactive shell's `&` (SIGINT) start programs.
    let mut args = vec!["-c".to_string(), r#"trap "" HUP INT; exec "$0" "$@""#.into(), "kubectl-oulogin".into()];
    args.extend(ctx.exec_args(r#"kill -HUP $$; kill -INT $$; echo "child: survived" >&2"#));
    let output = ctx.env.command("/bin/sh", args).run();
    output.assert_success().assert_stderr_contains("child: survived");
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
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
    let ctx = TestContext::new().with_user_kubeconfig();
    let script = r#"
        echo "KUBECONFIG=$KUBECONFIG"
        echo "CHILD_PID=$$"
        echo "child: ready" >&2
        exec sleep 120
    "#;
    let mut running = ctx.env.oulogin(ctx.exec_args(script)).spawn();
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
    ctx.env.oulogin(ctx.exec_args("exit 0")).run().assert_success();
    assert!(dir.join("kubeconfig").exists(), "removed while its command still runs");
    assert_eq!(ctx.private_dirs(), vec![dir.clone()]);

    // SAFETY: kill(2) on the sleep this test started (checked alive just above).
    unsafe {
        libc::kill(child_pid as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !process_ended(child_pid) {
        assert!(Instant::now() < deadline, "the command did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    ctx.env.oulogin(ctx.exec_args("exit 0")).run().assert_success();
    assert!(!dir.exists(), "the next run after the command ended removes the leftover");
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
    running.wait(Duration::from_secs(10));
}

#[test]
fn a_command_that_does_not_exist_fails_with_127_before_any_login() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let mut args = ctx.exec_args("unused");
    args.truncate(args.len() - 3);
    args.push("kubectl-definitely-not-installed".into());
    let output = ctx.env.oulogin(&args).run();
    output.assert_code(127);
    output.assert_stderr_contains("`kubectl-definitely-not-installed`");
    output.assert_stderr_contains("No such file or directory");
    assert!(output.stdout.is_empty(), "{output}");
    assert_eq!(ctx.browser.opened(), 0, "no browser login for a command that cannot run");
    assert_eq!(ctx.fake.sessions_minted(), 0);
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
}

#[test]
fn a_command_that_cannot_be_executed_fails_with_126() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let script = ctx.file("not-executable.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut args = ctx.exec_args("unused");
    args.truncate(args.len() - 3);
    args.push(script.display().to_string());
    let output = ctx.env.oulogin(&args).run();
    output.assert_code(126);
    output.assert_stderr_contains(&format!("`{}`", script.display()));
    output.assert_stderr_contains("Permission denied");
    assert_eq!(ctx.fake.sessions_minted(), 0);
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
}

#[test]
fn two_exec_runs_started_together_queue_their_logins_and_run_side_by_side() {
    let ctx = TestContext::with_token_lifetime(4).with_user_kubeconfig();
    // A user who takes a moment in the browser: the second login has to wait.
    let visitor = crate::fake::browser::Browser::new(&[&ctx.fake.ca_pem()]);
    ctx.browser.set_mode(BrowserMode::Custom(std::sync::Arc::new(move |url: &str| {
        std::thread::sleep(Duration::from_millis(1500));
        visitor.follow(url);
    })));
    let ready = ctx.file("ready");
    std::fs::create_dir(&ready).unwrap();
    let script = r#"
        echo "KUBECONFIG=$KUBECONFIG"
        touch "$READY/$$"
        i=0
        while [ "$(ls "$READY" | wc -l)" -lt 2 ] && [ "$i" -lt 900 ]; do sleep 0.1; i=$((i + 1)); done
        [ "$(ls "$READY" | wc -l)" -ge 2 ] || { echo "child: the other never ran beside me" >&2; exit 98; }
        end=$(( $(date +%s) + 8 )); runs=0
        while [ "$(date +%s)" -lt "$end" ] && [ "$runs" -lt 200 ]; do
            kubectl get --raw /api > /dev/null || { echo "child: kubectl run $runs failed" >&2; exit 99; }
            runs=$((runs + 1))
            sleep 0.2
        done
        echo "RUNS=$runs"
    "#;
    let start = || ctx.env.oulogin(ctx.exec_args(script)).env("READY", &ready).timeout(Duration::from_secs(180));
    let (first, second) = (start().spawn(), start().spawn());
    let outputs = [first.wait_default(), second.wait_default()];
    for output in &outputs {
        output.assert_success();
    }

    let port = ctx.fake.redirect_port();
    let waited: Vec<&Output> = outputs
        .iter()
        .filter(|output| output.stderr.contains(&format!("to finish its login on port {port}")))
        .collect();
    assert_eq!(waited.len(), 1, "exactly one login waited for the other:\n{}\n{}", outputs[0], outputs[1]);
    assert!(waited[0].stderr.contains("waiting for process"), "{}", waited[0]);
    assert_ne!(reported(&outputs[0], "KUBECONFIG"), reported(&outputs[1], "KUBECONFIG"));
    assert_eq!(ctx.browser.opened(), 2);
    assert_eq!(ctx.fake.sessions_minted(), 2, "one session each");
    assert_eq!(ctx.fake.live_sessions(), 2);
    // Grace period 0: a refresh token used by both, or a stale one, would be refused.
    assert_eq!(ctx.fake.failed_refreshes(), 0, "events: {:#?}", ctx.fake.events());
    assert!(ctx.fake.successful_refreshes() >= 4, "events: {:#?}", ctx.fake.events());
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
}

#[test]
fn another_program_on_the_redirect_port_is_an_error_naming_the_port() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let port = ctx.fake.redirect_port();
    let _squatter = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind the redirect port");
    let started = Instant::now();
    let output = ctx.env.oulogin(ctx.exec_args("echo child: ran >&2")).run();
    output.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(20), "{output}");
    output.assert_stderr_contains(&format!("port {port} on 127.0.0.1 is already in use"));
    assert!(!output.stderr.contains("child: ran"), "{output}");
    assert_eq!(ctx.browser.opened(), 0);
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
}

#[test]
fn waiting_for_another_login_on_the_port_is_bounded_by_the_timeout() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let port = ctx.fake.redirect_port();
    // Another kubectl-oulogin login holding the port: this test process, by its record.
    std::fs::create_dir_all(ctx.env.session_dir()).unwrap();
    std::fs::set_permissions(ctx.env.session_dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let lock_path = ctx.env.session_dir().join(format!("login-{port}.lock"));
    std::fs::write(&lock_path, format!("{} browser login\n", std::process::id())).unwrap();
    let held = std::fs::File::options().write(true).open(&lock_path).unwrap();
    held.lock().unwrap();

    let mut args = ctx.exec_args("echo child: ran >&2");
    let command_at = args.iter().position(|arg| arg == "--").unwrap();
    args.splice(command_at..command_at, ["--timeout".to_string(), "2s".to_string()]);
    let started = Instant::now();
    let output = ctx.env.oulogin(&args).run();
    output.assert_code(1);
    assert!(started.elapsed() >= Duration::from_secs(2), "{output}");
    assert!(started.elapsed() < Duration::from_secs(30), "{output}");
    output.assert_stderr_contains(&format!(
        "waiting for process {} (browser login) to finish its login on port {port}",
        std::process::id()
    ));
    output.assert_stderr_contains("gave up after 2s");
    assert!(!output.stderr.contains("child: ran"), "{output}");
    assert_eq!(ctx.browser.opened(), 0);
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
    drop(held);
}

/// `--isolated [login flags]`.
fn isolated_args(ctx: &TestContext) -> Vec<String> {
    let mut args = vec!["--isolated".to_string()];
    args.extend(ctx.login_args(&[]));
    args
}

/// The path in `export KUBECONFIG='<path>'`, the only line allowed on stdout.
fn exported_path(output: &Output) -> PathBuf {
    let line = output.stdout.strip_suffix('\n').unwrap_or_else(|| panic!("one line on stdout:\n{output}"));
    assert!(!line.contains('\n'), "one line on stdout:\n{output}");
    let quoted = line.strip_prefix("export KUBECONFIG=").unwrap_or_else(|| panic!("an export line:\n{output}"));
    let path = quoted.strip_prefix('\'').and_then(|rest| rest.strip_suffix('\'')).expect("single-quoted");
    PathBuf::from(path)
}

#[test]
fn isolated_prints_an_export_line_that_bash_and_sh_can_eval() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let before = ctx.env.read_kubeconfig();

    let direct = ctx.env.oulogin(isolated_args(&ctx)).run();
    direct.assert_success();
    let kubeconfig = exported_path(&direct);
    let dir = kubeconfig.parent().unwrap();
    assert_eq!(dir.parent().unwrap(), ctx.private_root());
    assert_eq!(mode_of(dir), 0o700);
    assert_eq!(mode_of(&kubeconfig), 0o600);
    assert_eq!(mode_of(&dir.join("session.json")), 0o600);
    // The hint for the user's shell only: POSIX unless `SHELL` is fish.
    direct.assert_stderr_contains(&format!("in this shell: export KUBECONFIG='{}'", kubeconfig.display()));
    direct.assert_stderr_contains(&format!("`eval \"$(kubectl oulogin --host {} --port ", ctx.fake.host()));
    assert!(!direct.stderr.contains("fish"), "{direct}");
    let in_fish = ctx.env.oulogin(isolated_args(&ctx)).env("SHELL", "/usr/bin/fish").run();
    in_fish.assert_success();
    let fish_kubeconfig = exported_path(&in_fish);
    in_fish.assert_stderr_contains(&format!("in fish: set -gx KUBECONFIG '{}'", fish_kubeconfig.display()));
    in_fish.assert_stderr_contains(&format!("`eval (kubectl oulogin --host {} --port ", ctx.fake.host()));
    assert!(!in_fish.stderr.contains("$("), "{in_fish}");
    ctx.env.kubectl(["get", "--raw", "/api"]).env("KUBECONFIG", &kubeconfig).run().assert_success();

    let script = r#"eval "$(kubectl-oulogin "$@")" || exit 90
        echo "KUBECONFIG=$KUBECONFIG"
        kubectl get --raw /api > /dev/null || exit 91"#;
    for shell in ["/bin/bash", "/bin/sh"] {
        let mut args = vec!["-c".to_string(), script.into(), "shell".into()];
        args.extend(isolated_args(&ctx));
        let output = ctx.env.command(shell, args).run();
        output.assert_success();
        let evaluated = PathBuf::from(reported(&output, "KUBECONFIG"));
        assert_eq!(evaluated.parent().unwrap().parent().unwrap(), ctx.private_root(), "{shell}:\n{output}");
        assert!(evaluated.is_file(), "{shell}: {}", evaluated.display());
        assert_ne!(evaluated, kubeconfig, "{shell}: a new private kubeconfig each time");
    }
    // fish, where installed: the documented `set -gx` line, and `eval` of the export line.
    if Path::new("/usr/bin/fish").exists() {
        let script = format!(
            "set -gx KUBECONFIG '{}'; and kubectl get --raw /api > /dev/null; and eval (kubectl-oulogin $argv); \
             and kubectl get --raw /api > /dev/null; and echo \"KUBECONFIG=$KUBECONFIG\"",
            kubeconfig.display()
        );
        let mut args = vec!["-c".to_string(), script, "--".into()];
        args.extend(isolated_args(&ctx));
        let output = ctx.env.command("/usr/bin/fish", args).run();
        output.assert_success();
        assert_ne!(PathBuf::from(reported(&output, "KUBECONFIG")), kubeconfig, "{output}");
    }
    assert_eq!(ctx.env.read_kubeconfig(), before, "the default kubeconfig is untouched");
    assert_eq!(ctx.fake.sessions_minted() as usize, ctx.private_dirs().len(), "one session per private kubeconfig");
    assert_eq!(ctx.fake.failed_refreshes(), 0);
}

/// `--isolated --shell SHELL [login flags]`.
fn isolated_args_for(ctx: &TestContext, shell: &str) -> Vec<String> {
    let mut args = isolated_args(ctx);
    args.extend(["--shell".to_string(), shell.to_string()]);
    args
}

/// The one line on stdout, without its line break.
fn the_line(output: &Output) -> &str {
    let line = output.stdout.strip_suffix('\n').unwrap_or_else(|| panic!("one line on stdout:\n{output}"));
    assert!(!line.contains('\n'), "one line on stdout:\n{output}");
    line
}

/// The private kubeconfig a line names: a new one, under the private root, that kubectl can use.
fn check_private_kubeconfig(ctx: &TestContext, path: &str, output: &Output) -> PathBuf {
    let path = PathBuf::from(path);
    assert_eq!(path.parent().unwrap().parent().unwrap(), ctx.private_root(), "{output}");
    ctx.env.kubectl(["get", "--raw", "/api"]).env("KUBECONFIG", &path).run().assert_success();
    path
}

#[test]
fn isolated_prints_the_line_of_the_shell_chosen_with_shell_without_that_shell_installed() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let before = ctx.env.read_kubeconfig();
    let host = ctx.fake.host();

    // `SHELL` says bash, `--shell` wins; the text is checked, no fish or pwsh runs.
    let fish = ctx.env.oulogin(isolated_args_for(&ctx, "fish")).env("SHELL", "/bin/bash").run();
    fish.assert_success();
    let quoted = the_line(&fish).strip_prefix("set -gx KUBECONFIG ").unwrap_or_else(|| panic!("{fish}"));
    let path = quoted.strip_prefix('\'').and_then(|rest| rest.strip_suffix('\'')).expect("single-quoted");
    let fish_kubeconfig = check_private_kubeconfig(&ctx, path, &fish);
    fish.assert_stderr_contains(&format!("in fish: set -gx KUBECONFIG '{path}'"));
    fish.assert_stderr_contains(&format!("`eval (kubectl oulogin --host {host} --port "));
    fish.assert_stderr_contains(" --isolated --shell fish)` does it");

    let powershell = ctx.env.oulogin(isolated_args_for(&ctx, "pwsh")).run();
    powershell.assert_success();
    let quoted = the_line(&powershell).strip_prefix("$env:KUBECONFIG = ").unwrap_or_else(|| panic!("{powershell}"));
    let path = quoted.strip_prefix('\'').and_then(|rest| rest.strip_suffix('\'')).expect("single-quoted");
    let powershell_kubeconfig = check_private_kubeconfig(&ctx, path, &powershell);
    powershell.assert_stderr_contains(&format!("in PowerShell: $env:KUBECONFIG = '{path}'"));
    powershell.assert_stderr_contains(&format!("`kubectl oulogin --host {host} --port "));
    powershell.assert_stderr_contains(" --isolated --shell powershell | Invoke-Expression` does it");

    let cmd = ctx.env.oulogin(isolated_args_for(&ctx, "cmd")).run();
    cmd.assert_success();
    let path = the_line(&cmd).strip_prefix("set \"KUBECONFIG=").and_then(|rest| rest.strip_suffix('"'));
    let cmd_kubeconfig = check_private_kubeconfig(&ctx, path.unwrap_or_else(|| panic!("{cmd}")), &cmd);
    cmd.assert_stderr_contains(&format!("`for /f \"delims=\" %i in ('kubectl oulogin --host {host} --port "));
    cmd.assert_stderr_contains(" --isolated --shell cmd') do %i` does it");

    // `bash` is `sh`: the POSIX line, and its hint, whatever `SHELL` says.
    let bash = ctx.env.oulogin(isolated_args_for(&ctx, "bash")).env("SHELL", "/usr/bin/fish").run();
    bash.assert_success();
    let bash_kubeconfig = exported_path(&bash);
    bash.assert_stderr_contains(" --isolated --shell sh)\"` does it");
    assert!(!bash.stderr.contains("fish"), "{bash}");

    let all = [fish_kubeconfig, powershell_kubeconfig, cmd_kubeconfig, bash_kubeconfig];
    assert_eq!(all.iter().collect::<std::collections::BTreeSet<_>>().len(), all.len(), "a new one each time");
    assert_eq!(ctx.env.read_kubeconfig(), before, "the default kubeconfig is untouched");
}

#[test]
fn a_path_cmd_cannot_express_is_refused_before_the_browser_opens() {
    let ctx = TestContext::new();
    let cache = ctx.env.root().join("50%off");
    let output = ctx.env.oulogin(isolated_args_for(&ctx, "cmd")).env("KUBECACHEDIR", &cache).run();
    output.assert_code(2);
    assert!(output.stdout.is_empty(), "{output}");
    output.assert_stderr_contains("error: cmd cannot express the private kubeconfig's path `");
    output.assert_stderr_contains("50%off");
    output.assert_stderr_contains("hint: choose another shell with `--shell`");
    assert_eq!(ctx.browser.opened(), 0);
    assert_eq!(ctx.fake.sessions_minted(), 0);
    let left: Vec<_> = std::fs::read_dir(cache.join("oulogin").join("isolated")).unwrap().flatten().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn shell_without_isolated_is_a_usage_error() {
    let ctx = TestContext::new();
    let mut args = ctx.login_args(&[]);
    args.extend(["--shell".to_string(), "fish".to_string()]);
    let output = ctx.env.oulogin(args).run();
    output.assert_code(2);
    output.assert_stderr_contains("the following required arguments were not provided:\n  --isolated");
    assert_eq!(ctx.browser.opened(), 0);
}

/// Sets every file's mtime in `dir` back by `ago`, as if unused that long.
fn age_dir(dir: &Path, ago: Duration) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let file = std::fs::File::options().write(true).open(entry.path()).unwrap();
        file.set_modified(std::time::SystemTime::now() - ago).unwrap();
    }
}

#[test]
fn an_idle_isolated_kubeconfig_is_removed_by_a_later_run_once_its_session_is_gone() {
    let ctx = TestContext::new().with_user_kubeconfig();
    let dead = exported_path(ctx.env.oulogin(isolated_args(&ctx)).run().assert_success());
    ctx.fake.kill_all_sessions();
    let alive = exported_path(ctx.env.oulogin(isolated_args(&ctx)).run().assert_success());
    let recent = exported_path(ctx.env.oulogin(isolated_args(&ctx)).run().assert_success());
    let twenty_minutes = Duration::from_secs(20 * 60);
    age_dir(dead.parent().unwrap(), twenty_minutes);
    age_dir(alive.parent().unwrap(), twenty_minutes);
    let alive_used = std::fs::metadata(alive.parent().unwrap().join("session.json")).unwrap().modified().unwrap();
    let refreshes_before = ctx.fake.successful_refreshes();

    ctx.env.oulogin(ctx.exec_args("exit 0")).run().assert_success();
    assert!(!dead.parent().unwrap().exists(), "the dead session's directory is removed");
    assert!(alive.exists(), "a live session is kept");
    assert!(recent.exists(), "a recently used one is not even probed");
    assert_eq!(ctx.fake.successful_refreshes(), refreshes_before + 1, "one probe of the live session");
    // One 401, asked once more before it counts (a refresh 401 may be transient).
    assert_eq!(ctx.fake.failed_refreshes(), 2, "one probe of the dead one");
    let session = alive.parent().unwrap().join("session.json");
    assert_eq!(std::fs::metadata(&session).unwrap().modified().unwrap(), alive_used, "a probe is not a use");
    // The probed session still works for its shell.
    ctx.env.kubectl(["get", "--raw", "/api"]).env("KUBECONFIG", &alive).run().assert_success();
}

#[test]
fn exec_takes_the_host_from_the_current_or_named_context_without_touching_the_kubeconfig() {
    let ctx = TestContext::new().with_user_kubeconfig();
    ctx.login(&[]).assert_success();
    let context = ctx.env.kubectl(["config", "current-context"]).run();
    let context = context.assert_success().stdout.trim().to_string();
    let before = ctx.env.read_kubeconfig();
    let shared_session = ctx.session_file();
    let shared_before = std::fs::read(&shared_session).unwrap();
    let minted_before = ctx.fake.sessions_minted();

    let flags_without_host = |ctx: &TestContext| {
        let mut args = ctx.login_args(&[]);
        let host_at = args.iter().position(|arg| arg == "--host").unwrap();
        args.drain(host_at..host_at + 2);
        args
    };
    let script = ["--", "sh", "-c", r#"kubectl get --raw /api > /dev/null && echo "KUBECONFIG=$KUBECONFIG""#];
    for named in [None, Some(context.as_str())] {
        let mut args = vec!["exec".to_string()];
        args.extend(flags_without_host(&ctx));
        if let Some(name) = named {
            args.extend(["--context".to_string(), name.to_string()]);
        }
        args.extend(script.iter().map(|arg| arg.to_string()));
        let output = ctx.env.oulogin(&args).run();
        output.assert_success();
        assert_ne!(reported(&output, "KUBECONFIG"), ctx.env.kubeconfig.display().to_string());
    }
    assert_eq!(ctx.fake.sessions_minted(), minted_before + 2, "a new session for each run");
    assert_eq!(ctx.env.read_kubeconfig(), before, "the kubeconfig is only read");
    assert_eq!(std::fs::read(&shared_session).unwrap(), shared_before, "the shared session is not used");
    assert!(ctx.private_dirs().is_empty(), "{:?}", ctx.private_dirs());
}
