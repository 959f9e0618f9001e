//! The Windows build end to end, under wine, against the Linux fakes: the
//! Windows plugin logs in with `--no-browser` (the URL opened by the fake
//! browser, which ends on the plugin's loopback listener), the
//! kubeconfig it writes works with kubectl, 16 concurrent `token` calls at an
//! expiry share one refresh, and `exec` runs a Windows child with its own
//! session, passes its exit code through and removes its directory. Wine maps
//! Winsock onto Linux sockets, so the fakes on 127.0.0.1 and the plugin's
//! loopback listener reach each other. The Windows process gets Windows paths
//! (`Z:\…`, wine's drive for `/`) for its files, as a Windows user has.
//!
//! They need the cross-compiled plugin and wine, so a plain `cargo test`
//! leaves them out; `scripts/test-windows` builds the plugin and runs them
//! (`--ignored`) with `OULOGIN_WINDOWS_PLUGIN` (the `.exe`) and
//! `OULOGIN_WINE_RUN` (`scripts/wine-run`) set.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

use super::login::yaml;
use crate::common::{Output, Run, Running, TestContext, TestEnv, fake_config};
use crate::fake::browser::Browser;
use crate::fake::{BrowserMode, FakeBrowser, FakeConfig, FakeOpenUnison, TestClient, now_secs};

/// How long one Windows run may take: wine starts in about a second, but 16
/// at once on two cores take longer.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a login may wait for its pasted URL or browser.
const LOGIN_TIMEOUT: &str = "60s";
/// The `token` calls started together at one expiry.
const CONCURRENT_TOKEN_CALLS: usize = 16;

/// The cross-compiled plugin and the script that runs it under wine.
struct Wine {
    runner: PathBuf,
    plugin: PathBuf,
}

impl Wine {
    /// From `OULOGIN_WINE_RUN` and `OULOGIN_WINDOWS_PLUGIN`; a run asked for
    /// without them fails rather than passing without having run.
    fn from_env() -> Wine {
        let var = |name: &str| {
            let value = std::env::var_os(name)
                .filter(|value| !value.is_empty())
                .unwrap_or_else(|| panic!("{name} is not set: scripts/test-windows sets it and runs these tests"));
            let path = PathBuf::from(value);
            assert!(path.is_file(), "{name}: {} does not exist", path.display());
            path
        };
        Wine { runner: var("OULOGIN_WINE_RUN"), plugin: var("OULOGIN_WINDOWS_PLUGIN") }
    }

    /// The Windows `kubectl-oulogin.exe ARGS…` under wine in `env`, with
    /// `KUBECONFIG` and `KUBECACHEDIR` as Windows paths.
    fn plugin<S: AsRef<str>>(&self, env: &TestEnv, args: &[S]) -> Run {
        let mut command = vec![self.plugin.display().to_string()];
        command.extend(args.iter().map(|arg| arg.as_ref().to_string()));
        env.command(&self.runner, command)
            .env("KUBECONFIG", windows_path(&env.kubeconfig))
            .env("KUBECACHEDIR", windows_path(&env.cache_dir))
            .timeout(RUN_TIMEOUT)
    }

    /// A `kubectl-oulogin` on Linux that runs the Windows plugin under wine
    /// with the test's Windows paths, and notes each call in `calls`: kubectl
    /// runs it for the exec stanza the Windows plugin wrote. Returns its directory.
    fn kubectl_plugin_shim(&self, env: &TestEnv) -> PathBuf {
        let dir = env.root().join("windows-bin");
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!(
            "#!/bin/sh\necho call >> '{calls}'\nKUBECONFIG='{kubeconfig}' KUBECACHEDIR='{cache}' exec '{runner}' '{plugin}' \"$@\"\n",
            calls = dir.join("calls").display(),
            kubeconfig = windows_path(&env.kubeconfig),
            cache = windows_path(&env.cache_dir),
            runner = self.runner.display(),
            plugin = self.plugin.display(),
        );
        assert_eq!(script.matches('\'').count(), 10, "paths without `'`:\n{script}");
        let shim = dir.join("kubectl-oulogin");
        std::fs::write(&shim, script).unwrap();
        std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        dir
    }
}

/// A fake started with `config` and a private world in a directory no
/// ancestor of which others may write: wine gives a world-writable directory
/// such as `Z:\tmp` (mode 1777) an access list that lets Everyone delete what
/// is in it, and the plugin rightly refuses to keep private files below
/// such a directory. A Windows user's files are in their profile, which only
/// they and the administrators may change. The browser is unused: these
/// logins take the URL by paste or by the test.
fn windows_context(config: FakeConfig) -> TestContext {
    let fake = FakeOpenUnison::start(config);
    let browser = FakeBrowser::for_fake(&fake, BrowserMode::Ignore);
    TestContext { env: TestEnv::new_in(&private_parent()), fake, browser }
}

/// cargo's `target/tmp` when no directory above it is world-writable (a
/// checkout under `/tmp` has one), else `$HOME/.cache/kubectl-oulogin-tests`.
fn private_parent() -> PathBuf {
    fn others_may_write_above(dir: &Path) -> bool {
        dir.ancestors()
            .any(|ancestor| std::fs::metadata(ancestor).is_ok_and(|meta| meta.permissions().mode() & 0o002 != 0))
    }
    let target_tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if !others_may_write_above(&target_tmp) {
        return target_tmp;
    }
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    let cache = home.join(".cache").join("kubectl-oulogin-tests");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(
        !others_may_write_above(&cache),
        "neither {} nor {} is below directories only their owners may write",
        target_tmp.display(),
        cache.display()
    );
    cache
}

/// `/tmp/x/y` as the Windows process sees it: `Z:\tmp\x\y`.
fn windows_path(path: &Path) -> String {
    let path = path.to_str().expect("UTF-8 temporary path");
    assert!(path.starts_with('/'), "{path} is absolute");
    format!("Z:{}", path.replace('/', "\\"))
}

/// `Z:\tmp\x\y` back as `/tmp/x/y`.
fn linux_path(path: &str) -> PathBuf {
    let rest = path.strip_prefix("Z:").or_else(|| path.strip_prefix("z:")).unwrap_or_else(|| panic!("{path} is on Z:"));
    PathBuf::from(rest.replace('\\', "/"))
}

/// The login flags for `fake` with `--no-browser`, the CA as a Windows path.
fn no_browser_args(fake: &FakeOpenUnison) -> Vec<String> {
    vec![
        "--host".into(),
        fake.host(),
        "--certificate-authority".into(),
        windows_path(fake.ca_file()),
        "--port".into(),
        fake.redirect_port().to_string(),
        "--no-browser".into(),
        "--timeout".into(),
        LOGIN_TIMEOUT.into(),
    ]
}

/// The authorization URL a `--no-browser` login printed on stderr, once it has.
fn wait_for_authorization_url(login: &mut Running) -> String {
    let printed =
        |stderr: &str| stderr.lines().map(str::trim).find(|line| line.starts_with("https://")).map(String::from);
    let seen = login.wait_for_output(RUN_TIMEOUT, |_, stderr| printed(stderr).is_some());
    assert!(seen, "no authorization URL printed:\n{}", login.stderr_so_far());
    printed(&login.stderr_so_far()).unwrap()
}

/// A `--no-browser` login of the Windows plugin: the user's browser (the fake
/// one, on Linux) opens the printed URL and ends on the plugin's loopback
/// listener.
fn log_in_with_no_browser(wine: &Wine, ctx: &TestContext) -> Output {
    let mut login = wine.plugin(&ctx.env, &no_browser_args(&ctx.fake)).spawn();
    let url = wait_for_authorization_url(&mut login);
    assert!(url.starts_with(&format!("{}/auth?", ctx.fake.cli_issuer())), "{url}");
    let visit = Browser::new(&[&ctx.fake.ca_pem()]).follow(&url);
    assert!(visit.reached_login_complete(), "{visit:#?}\n{}", login.stderr_so_far());
    login.wait(RUN_TIMEOUT)
}

/// A `--no-browser` login of the Windows plugin whose redirect URL is pasted
/// into its console, as a Windows user does: the user's browser (the fake
/// one) stops at the loopback redirect URL, which is typed with Enter.
///
/// The plugin's stdin is a terminal (`script` gives it one), which wine makes
/// a Windows console. A pipe would not do: wine passes a Unix pipe as
/// FILE_TYPE_PIPE, but PeekNamedPipe on it fails with ERROR_NOT_SUPPORTED, so
/// the plugin's paste reader stops (on Windows, stdin pipes are named pipes).
/// Its stderr goes to a file, away from the console's escape sequences.
/// Returns the run of `script` and the plugin's stderr.
fn log_in_by_pasting_into_the_console(wine: &Wine, ctx: &TestContext) -> (Output, String) {
    let stderr_file = ctx.env.root().join("login-stderr.txt");
    let quote = |word: &str| {
        assert!(!word.contains('\''), "{word} needs no quoting");
        format!("'{word}'")
    };
    let mut words = vec![quote(&wine.runner.display().to_string()), quote(&wine.plugin.display().to_string())];
    words.extend(no_browser_args(&ctx.fake).iter().map(|arg| quote(arg)));
    let line = format!("{} 2>{}", words.join(" "), quote(&stderr_file.display().to_string()));
    let mut login = ctx
        .env
        .command("/usr/bin/script", ["--quiet", "--flush", "--return", "--command", &line, "/dev/null"])
        .env("KUBECONFIG", windows_path(&ctx.env.kubeconfig))
        .env("KUBECACHEDIR", windows_path(&ctx.env.cache_dir))
        .env("TERM", "dumb")
        .timeout(RUN_TIMEOUT)
        .spawn();
    let stderr = || std::fs::read_to_string(&stderr_file).unwrap_or_default();
    let printed =
        |stderr: &str| stderr.lines().map(str::trim).find(|line| line.starts_with("https://")).map(String::from);
    let printed_by = Instant::now() + RUN_TIMEOUT;
    while printed(&stderr()).is_none() && login.is_running() && Instant::now() < printed_by {
        std::thread::sleep(Duration::from_millis(50));
    }
    let url = printed(&stderr()).unwrap_or_else(|| panic!("no authorization URL printed:\n{}", stderr()));
    assert!(url.starts_with(&format!("{}/auth?", ctx.fake.cli_issuer())), "{url}");
    let pasted = Browser::new(&[&ctx.fake.ca_pem()]).loopback_redirect(&url);
    write!(login.stdin.as_mut().expect("piped stdin"), "{pasted}\r").expect("type the URL");
    // `script` ends on the end of its input: keep it open until the plugin is done.
    let done_by = Instant::now() + RUN_TIMEOUT;
    while login.is_running() && Instant::now() < done_by {
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = login.wait(Duration::from_secs(5));
    (output, stderr())
}

/// The `exp` claim of a JWT (not verified: the fake signed it).
fn expiry_of(jwt: &str) -> i64 {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["exp"].as_i64().expect("an exp claim")
}

/// The one ExecCredential a `token` run printed, and its token.
fn credential_token(output: &Output) -> String {
    output.assert_success();
    let credential: Value =
        serde_json::from_str(&output.stdout).unwrap_or_else(|err| panic!("not an ExecCredential ({err}):\n{output}"));
    assert_eq!(credential["kind"], "ExecCredential", "{output}");
    assert_eq!(credential["apiVersion"], "client.authentication.k8s.io/v1", "{output}");
    credential["status"]["token"].as_str().unwrap_or_else(|| panic!("no token:\n{output}")).to_string()
}

/// Whether the fake API server takes `token`.
fn api_server_accepts(fake: &FakeOpenUnison, token: &str) -> bool {
    let client = TestClient::new(&[fake.api().ca_pem()]);
    let response = client
        .get(
            &format!("{}/api/v1/namespaces/default", fake.api_server_url()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .expect("the fake API server answers");
    response.status == 200
}

#[test]
#[ignore = "needs a Windows build and wine: scripts/test-windows runs them"]
fn the_windows_plugin_logs_in_with_a_url_pasted_into_its_console_and_kubectl_uses_the_kubeconfig_it_wrote() {
    let wine = Wine::from_env();
    let ctx = windows_context(fake_config());
    let (login, stderr) = log_in_by_pasting_into_the_console(&wine, &ctx);
    login.assert_success();
    assert_eq!(ctx.fake.sessions_minted(), 1, "{login}\n--- the plugin's stderr ---\n{stderr}");
    assert_eq!(ctx.fake.code_exchanges(), 1, "{stderr}");

    // The stanza names the session the Windows plugin keeps under KUBECACHEDIR.
    let kubeconfig = yaml(&ctx.env.read_kubeconfig());
    let exec = &kubeconfig["users"][0]["user"]["exec"];
    assert_eq!(exec["command"], "kubectl-oulogin", "{kubeconfig:#}");
    let args: Vec<&str> = exec["args"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert_eq!(args, ctx.token_args().iter().map(String::as_str).collect::<Vec<_>>(), "{kubeconfig:#}");
    assert!(ctx.session_file().is_file(), "the session is in KUBECACHEDIR\\oulogin");

    // kubectl (on Linux) runs the Windows plugin for its credential: the only
    // `kubectl-oulogin` on its PATH runs the `.exe` under wine.
    let shim_dir = wine.kubectl_plugin_shim(&ctx.env);
    let get = ctx
        .env
        .kubectl(["get", "--raw", "/api/v1/namespaces/default"])
        .env("PATH", format!("{}:/usr/bin:/bin", shim_dir.display()))
        .timeout(RUN_TIMEOUT)
        .run();
    get.assert_success();
    assert!(get.stdout.contains("\"default\""), "{get}");
    let calls = std::fs::read_to_string(shim_dir.join("calls")).unwrap_or_default();
    assert_eq!(calls.lines().count(), 1, "kubectl ran the Windows plugin once:\n{get}");
    assert!(ctx.fake.api().ok_requests() >= 1, "{get}");
}

#[test]
#[ignore = "needs a Windows build and wine: scripts/test-windows runs them"]
fn sixteen_windows_token_calls_at_an_expiry_share_one_refresh_and_all_get_a_valid_credential() {
    const LOGIN_TOKEN_LIFETIME_SECS: u64 = 5;
    let wine = Wine::from_env();
    let ctx = windows_context(FakeConfig { token_lifetime_secs: LOGIN_TOKEN_LIFETIME_SECS, ..fake_config() });
    log_in_with_no_browser(&wine, &ctx).assert_success();
    let stored: Value = serde_json::from_slice(&std::fs::read(ctx.session_file()).unwrap()).unwrap();
    let login_token = stored["id_token"].as_str().expect("the session's id_token").to_string();

    // The refreshed token lives long, so that it is still fresh for the last of the 16.
    ctx.fake.set_token_lifetime_secs(600);
    let expiry = expiry_of(&login_token);
    let deadline = Instant::now() + Duration::from_secs(LOGIN_TOKEN_LIFETIME_SECS + 5);
    while now_secs() <= expiry {
        assert!(Instant::now() < deadline, "the login's token never expired");
        std::thread::sleep(Duration::from_millis(100));
    }

    // The first refresh to reach the fake is held there, so that the others
    // surely find the session locked (LockFileEx) and wait for it.
    ctx.fake.hold_refreshes(true);
    let info = json!({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1", "spec": {"interactive": false}});
    let running: Vec<Running> = (0..CONCURRENT_TOKEN_CALLS)
        .map(|_| wine.plugin(&ctx.env, &ctx.token_args()).env("KUBERNETES_EXEC_INFO", info.to_string()).spawn())
        .collect();
    let deadline = Instant::now() + RUN_TIMEOUT;
    let waiting =
        |running: &[Running]| running.iter().filter(|run| run.stderr_so_far().contains("waiting for")).count();
    while ctx.fake.counters().refresh_requests < 1 || waiting(&running) < CONCURRENT_TOKEN_CALLS - 1 {
        if Instant::now() >= deadline {
            ctx.fake.hold_refreshes(false);
            let states: Vec<String> = running.iter().map(Running::stderr_so_far).collect();
            panic!(
                "after {RUN_TIMEOUT:?}: {} refresh requests, {} of {} waiting; stderr: {states:#?}",
                ctx.fake.counters().refresh_requests,
                waiting(&running),
                CONCURRENT_TOKEN_CALLS - 1
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ctx.fake.hold_refreshes(false);
    let outputs: Vec<Output> = running.into_iter().map(|run| run.wait(RUN_TIMEOUT)).collect();

    let tokens: Vec<String> = outputs.iter().map(credential_token).collect();
    assert_eq!(ctx.fake.successful_refreshes(), 1, "events: {:#?}", ctx.fake.events());
    assert_eq!(ctx.fake.failed_refreshes(), 0, "events: {:#?}", ctx.fake.events());
    assert_eq!(ctx.fake.counters().refresh_requests, 1, "events: {:#?}", ctx.fake.events());
    let refreshed = &tokens[0];
    assert_ne!(*refreshed, login_token, "the expired token was handed out");
    assert!(tokens.iter().all(|token| token == refreshed), "every call hands out the one refreshed token");
    assert!(api_server_accepts(&ctx.fake, refreshed), "the fake API server takes the refreshed token");
}

#[test]
#[ignore = "needs a Windows build and wine: scripts/test-windows runs them"]
fn exec_runs_a_windows_child_with_its_own_session_and_passes_its_exit_code_through() {
    let wine = Wine::from_env();
    let ctx = windows_context(fake_config());
    let mut args = vec!["exec".to_string()];
    args.extend(no_browser_args(&ctx.fake));
    // cmd.exe from wine's C:\windows\system32, found through PATH and PATHEXT.
    args.extend(["--".into(), "cmd".into(), "/c".into(), "echo KUBECONFIG=%KUBECONFIG%& exit 3".into()]);
    let mut exec = wine.plugin(&ctx.env, &args).spawn();
    // A browser on this computer: the redirect reaches the plugin's loopback listener.
    let url = wait_for_authorization_url(&mut exec);
    let visit = Browser::new(&[&ctx.fake.ca_pem()]).follow(&url);
    assert!(visit.reached_login_complete(), "{visit:#?}\n{}", exec.stderr_so_far());
    let output = exec.wait(RUN_TIMEOUT);
    output.assert_code(3);

    let reported = output
        .stdout
        .lines()
        .find_map(|line| line.trim_end().strip_prefix("KUBECONFIG="))
        .unwrap_or_else(|| panic!("the child did not report KUBECONFIG:\n{output}"));
    let private_kubeconfig = linux_path(reported);
    let private_root = ctx.env.session_dir().join("isolated");
    assert_eq!(private_kubeconfig.parent().and_then(Path::parent), Some(private_root.as_path()), "{output}");
    let private_dir = private_kubeconfig.parent().unwrap();
    let left: Vec<_> = std::fs::read_dir(private_dir)
        .map(|entries| entries.flatten().map(|entry| entry.file_name()).collect())
        .unwrap_or_default();
    assert!(!private_dir.exists(), "the private directory outlived the run, holding {left:?}:\n{output}");
    assert_eq!(ctx.fake.sessions_minted(), 1, "a session of its own:\n{output}");
    assert!(ctx.env.read_kubeconfig().is_empty(), "the user's kubeconfig was written:\n{output}");
}
