//! `kubectl oulogin --host` end to end against the strict fake OpenUnison and
//! the real kubectl: the written exec stanza and session, refusals that leave
//! the kubeconfig byte-identical, TLS trust, `--no-browser`, kubectl's
//! KUBECONFIG rules, reuse of a working session, conversion of the old Go
//! plugin's contexts, `--auth-provider`, and `--version`/`--help` that touch
//! nothing.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Output, TestContext, TestEnv, fake_config, login_args};
use crate::fake::browser::Browser;
use crate::fake::{BrowserMode, FakeBrowser, FakeConfig, FakeOpenUnison, Fault};

/// A kubeconfig with nothing of ours in it: a cluster, a token user and a
/// context, with fields kubectl does not know at every level.
pub(super) const UNRELATED_KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
preferences:
  colors: true
x-team-note: keep me
clusters:
- name: prod
  cluster:
    server: https://prod.example.com:6443
    insecure-skip-tls-verify: true
    x-unknown-cluster-field: 42
users:
- name: admin
  user:
    token: not-a-real-token
    x-unknown-user-field: [a, b]
contexts:
- name: prod
  context:
    cluster: prod
    user: admin
    namespace: web
current-context: prod
"#;

/// `kubectl get --raw /api/v1/namespaces/default` through the current context.
pub(super) fn kubectl_get(env: &TestEnv) -> Output {
    env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).run()
}

/// kubectl gets through now and again once the fake's 5 s token has expired,
/// which took at least one refresh.
#[track_caller]
pub(super) fn assert_kubectl_works_across_an_expiry(env: &TestEnv, fake: &FakeOpenUnison) {
    kubectl_get(env).assert_success();
    std::thread::sleep(Duration::from_secs(6));
    kubectl_get(env).assert_success();
    assert!(fake.successful_refreshes() >= 1, "events: {:#?}", fake.events());
}

/// A YAML file as JSON values (the kubeconfig module's own parser is not ours to test with).
pub(super) fn yaml(bytes: &[u8]) -> Value {
    serde_saphyr::from_str(std::str::from_utf8(bytes).expect("UTF-8 kubeconfig")).expect("YAML kubeconfig")
}

pub(super) fn read_yaml(path: &Path) -> Value {
    yaml(&std::fs::read(path).unwrap_or_else(|err| panic!("read {}: {err}", path.display())))
}

/// The entry called `name` in the list `list` (`clusters`, `users`, `contexts`).
pub(super) fn entry<'a>(config: &'a Value, list: &str, name: &str) -> Option<&'a Value> {
    config[list].as_array()?.iter().find(|entry| entry["name"] == name)
}

pub(super) fn names(config: &Value, list: &str) -> Vec<String> {
    config[list]
        .as_array()
        .map(|entries| entries.iter().filter_map(|entry| entry["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

pub(super) fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|err| panic!("stat {}: {err}", path.display())).permissions().mode() & 0o777
}

/// `login_args` plus more flags.
pub(super) fn args_with(fake: &FakeOpenUnison, browser: &FakeBrowser, more: &[&str]) -> Vec<String> {
    let mut args = login_args(fake, browser);
    args.extend(more.iter().map(|arg| arg.to_string()));
    args
}

/// The fake's session file stem: the host with `:` as `_`.
pub(super) fn stem(fake: &FakeOpenUnison) -> String {
    fake.host().replace(':', "_")
}

#[test]
fn login_then_kubectl_works_before_and_after_the_token_expires() {
    let TestContext { env, fake, browser } =
        TestContext::with_config(FakeConfig { token_lifetime_secs: 5, ..fake_config() });
    let login = env.oulogin(login_args(&fake, &browser)).run();
    login.assert_success();
    assert_eq!(browser.opened(), 1);
    let visits = browser.finished_visits(1, Duration::from_secs(10));
    assert!(visits.iter().any(|outcome| outcome.reached_login_complete()), "{visits:#?}");
    kubectl_get(&env).assert_success();
    let ok_before = fake.api().ok_requests();
    assert!(ok_before >= 1);
    // 5 s tokens: past the expiry, kubectl must get a refreshed one.
    std::thread::sleep(Duration::from_secs(6));
    kubectl_get(&env).assert_success();
    assert!(fake.successful_refreshes() >= 1, "events: {:#?}", fake.events());
    assert_eq!(fake.failed_refreshes(), 0, "events: {:#?}", fake.events());
    assert!(fake.api().ok_requests() > ok_before);
}

#[test]
fn a_plain_login_prints_nothing_on_stdout() {
    let TestContext { env, fake, browser } = TestContext::new();
    let login = env.oulogin(login_args(&fake, &browser)).run();
    login.assert_success();
    assert!(login.stdout.is_empty(), "{login}");
    login.assert_stderr_contains("logged in to");
}

#[test]
fn the_written_user_is_an_exec_stanza_without_secrets() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let config = read_yaml(&env.kubeconfig);
    assert_eq!(config["current-context"], "kubernetes");
    let context = entry(&config, "contexts", "kubernetes").expect("context `kubernetes`");
    assert_eq!(context["context"]["cluster"], "kubernetes");
    assert_eq!(context["context"]["user"], "jdoe@kubernetes");
    let cluster = entry(&config, "clusters", "kubernetes").expect("cluster `kubernetes`");
    assert_eq!(cluster["cluster"]["server"], fake.api_server_url().as_str());
    assert!(cluster["cluster"]["certificate-authority-data"].is_string());
    let exec = &entry(&config, "users", "jdoe@kubernetes").expect("user `jdoe@kubernetes`")["user"]["exec"];
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
    assert_eq!(exec["command"], "kubectl-oulogin");
    assert_eq!(exec["interactiveMode"], "Never");
    assert_eq!(exec["provideClusterInfo"], false);
    // Through the project's own krew index: the default index's `oulogin` is another plugin.
    let hint = exec["installHint"].as_str().unwrap_or_default();
    let index = format!("kubectl krew index add oulogin {}", env!("CARGO_PKG_REPOSITORY"));
    assert!(hint.contains(&index) && hint.contains("kubectl krew install oulogin/oulogin"), "{hint}");
    let args: Vec<&str> = exec["args"].as_array().expect("args").iter().map(|arg| arg.as_str().unwrap()).collect();
    assert_eq!(args, ["token", "--session", &stem(&fake), "--host", &fake.host()]);
    assert!(exec.get("env").is_none_or(Value::is_null), "no env: {exec}");
    let written = String::from_utf8(env.read_kubeconfig()).unwrap();
    for token in fake.issued_tokens() {
        assert!(!written.contains(&token), "a token issued by the fake is in the kubeconfig:\n{written}");
    }
    assert_eq!(mode(&env.kubeconfig), 0o600);
}

#[test]
fn the_session_file_is_private_in_a_private_directory() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let session_file = env.session_dir().join(format!("{}.json", stem(&fake)));
    assert_eq!(mode(&env.session_dir()), 0o700);
    assert_eq!(mode(&session_file), 0o600);
    let session: Value = serde_json::from_slice(&std::fs::read(&session_file).unwrap()).unwrap();
    assert_eq!(session["host"], fake.host().as_str());
    assert_eq!(session["token_endpoint"], format!("{}/token", fake.k8s_issuer()).as_str());
    assert!(fake.issued_tokens().contains(&session["refresh_token"].as_str().unwrap().to_string()));
    // Lock and marker files beside it are private too.
    for file in std::fs::read_dir(env.session_dir()).unwrap() {
        let path = file.unwrap().path();
        assert_eq!(mode(&path) & 0o077, 0, "{} is readable by others", path.display());
    }
}

/// A login against `fake` with `fault` on: exit 1 with an `error:` line, the
/// unrelated kubeconfig byte-identical, no session file.
fn assert_refused_with_kubeconfig_unchanged(fault: Fault, expected_in_error: &str) -> Output {
    let TestContext { env, fake, browser } = TestContext::new();
    fake.set_fault(fault);
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let login = env.oulogin(args_with(&fake, &browser, &["--timeout", "30s"])).run();
    assert_refusal(&env, &login);
    login.assert_stderr_contains(expected_in_error).assert_stderr_contains(&format!("`{}`", fake.cli_issuer()));
    assert_eq!(fake.sessions_minted(), 0, "no session may be minted with a refused token");
    login
}

/// Exit 1, one `error:` line, nothing on stdout, the kubeconfig untouched, no session.
#[track_caller]
fn assert_refusal(env: &TestEnv, login: &Output) {
    login.assert_code(1);
    assert!(login.stderr.lines().any(|line| line.starts_with("error: ")), "{login}");
    assert!(login.stdout.is_empty(), "{login}");
    assert_eq!(env.read_kubeconfig(), UNRELATED_KUBECONFIG.as_bytes(), "the kubeconfig changed:\n{login}");
    let sessions: Vec<_> = std::fs::read_dir(env.session_dir())
        .map(|dir| dir.filter_map(Result::ok).map(|file| file.file_name()).collect())
        .unwrap_or_default();
    assert!(!sessions.iter().any(|name| name.to_string_lossy().ends_with(".json")), "{sessions:?}\n{login}");
}

#[test]
fn a_token_with_a_bad_signature_is_refused() {
    assert_refused_with_kubeconfig_unchanged(Fault::CliTokenBadSignature, "invalid signature")
        .assert_stderr_contains("/auth/idp/k8s-login-cli`");
}

#[test]
fn a_token_from_another_issuer_is_refused() {
    assert_refused_with_kubeconfig_unchanged(Fault::CliTokenWrongIss, "issued by")
        .assert_stderr_contains("/auth/idp/someone-else");
}

#[test]
fn a_token_for_another_audience_is_refused() {
    assert_refused_with_kubeconfig_unchanged(Fault::CliTokenWrongAud, "not meant for `cli-local`");
}

#[test]
fn an_expired_token_is_refused() {
    assert_refused_with_kubeconfig_unchanged(Fault::CliTokenExpired, "expired");
}

#[test]
fn a_token_with_another_nonce_is_refused() {
    assert_refused_with_kubeconfig_unchanged(Fault::CliTokenWrongNonce, "nonce");
}

/// `url` with its `state` query parameter replaced.
fn with_state(url: &str, state: &str) -> String {
    let mut parsed = url::Url::parse(url).expect("a URL");
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(name, value)| {
            let value = if name == "state" { state.to_string() } else { value.into_owned() };
            (name.into_owned(), value)
        })
        .collect();
    parsed.query_pairs_mut().clear().extend_pairs(pairs);
    parsed.to_string()
}

#[test]
fn a_callback_with_the_wrong_state_is_refused_and_the_login_keeps_waiting() {
    use std::sync::Mutex;
    use std::sync::mpsc::{Receiver, Sender, channel};
    let TestContext { env, fake, browser } = TestContext::new();
    let (wrong_done, wrong_seen) = channel::<(u16, String)>();
    let (go_on, go_on_seen) = channel::<()>();
    let wrong_done: Mutex<Sender<(u16, String)>> = Mutex::new(wrong_done);
    let go_on_seen: Mutex<Receiver<()>> = Mutex::new(go_on_seen);
    let ca = fake.ca_pem();
    let visit = move |url: &str| {
        let profile = Browser::new(&[&ca]);
        let right = profile.loopback_redirect(url);
        let wrong = profile.follow(&with_state(&right, "not-this-logins-state"));
        wrong_done.lock().unwrap().send((wrong.final_status, wrong.final_body)).unwrap();
        go_on_seen.lock().unwrap().recv_timeout(Duration::from_secs(30)).expect("the test says go on");
        let finished = profile.follow(&right);
        assert!(finished.reached_login_complete(), "{finished:#?}");
    };
    browser.set_mode(BrowserMode::Custom(Arc::new(visit)));
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let mut login = env.oulogin(args_with(&fake, &browser, &["--timeout", "60s"])).spawn();
    let (status, body) = wrong_seen.recv_timeout(Duration::from_secs(30)).expect("the wrong-state callback was sent");
    assert_eq!(status, 400, "{body}");
    assert!(login.wait_for_output(Duration::from_secs(10), |_, stderr| stderr.contains("without this login's state")));
    std::thread::sleep(Duration::from_millis(500));
    assert!(login.is_running(), "the login ended on a wrong state:\n{}", login.stderr_so_far());
    assert_eq!(env.read_kubeconfig(), UNRELATED_KUBECONFIG.as_bytes());
    assert_eq!(fake.code_exchanges(), 0, "a wrong-state callback must not exchange the code");
    go_on.send(()).unwrap();
    let login = login.wait(Duration::from_secs(60));
    login.assert_success();
    assert_eq!(fake.code_exchanges(), 1);
    kubectl_get(&env).assert_success();
}

#[test]
fn a_busy_port_is_a_clear_error_naming_the_port() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let squatter = std::net::TcpListener::bind(("127.0.0.1", fake.redirect_port())).expect("bind the redirect port");
    let started = Instant::now();
    let login = env.oulogin(login_args(&fake, &browser)).timeout(Duration::from_secs(30)).run();
    let took = started.elapsed();
    drop(squatter);
    assert_refusal(&env, &login);
    assert!(took < Duration::from_secs(5), "took {took:?}:\n{login}");
    login.assert_stderr_contains(&format!("port {}", fake.redirect_port()));
    assert_eq!(browser.opened(), 0, "no browser for a login that cannot be completed");
}

#[test]
fn an_abandoned_login_times_out() {
    let TestContext { env, fake, browser } = TestContext::start(fake_config(), BrowserMode::Ignore);
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let started = Instant::now();
    let login = env.oulogin(args_with(&fake, &browser, &["--timeout", "2s"])).timeout(Duration::from_secs(30)).run();
    let took = started.elapsed();
    assert_refusal(&env, &login);
    assert!(took >= Duration::from_secs(2) && took < Duration::from_secs(15), "took {took:?}:\n{login}");
    login.assert_stderr_contains("within 2s");
    assert_eq!(browser.opened(), 1);
}

#[test]
fn ctrl_c_cancels_a_waiting_login_with_status_130_and_changes_nothing() {
    let TestContext { env, fake, browser } = TestContext::start(fake_config(), BrowserMode::Ignore);
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let running = env.oulogin(login_args(&fake, &browser)).timeout(Duration::from_secs(30)).spawn();
    assert!(browser.wait_for_opened(1, Duration::from_secs(20)), "the login never opened the browser");
    let interrupted = Instant::now();
    running.signal(libc::SIGINT);
    let login = running.wait(Duration::from_secs(20));
    assert!(interrupted.elapsed() < Duration::from_secs(5), "Ctrl-C took {:?}:\n{login}", interrupted.elapsed());
    login.assert_code(130);
    assert!(login.stderr.lines().any(|line| line.starts_with("error: ")), "{login}");
    assert!(login.stdout.is_empty(), "{login}");
    assert_eq!(env.read_kubeconfig(), UNRELATED_KUBECONFIG.as_bytes(), "the kubeconfig changed:\n{login}");
}

/// The flags of a login against `fake` through `browser`, without `--certificate-authority`.
fn args_without_ca(fake: &FakeOpenUnison, browser: &FakeBrowser) -> Vec<String> {
    let mut args = login_args(fake, browser);
    let at = args.iter().position(|arg| arg == "--certificate-authority").expect("the CA flag");
    args.drain(at..at + 2);
    args
}

#[test]
fn a_self_signed_openunison_certificate_is_trusted_when_given_as_the_certificate_authority() {
    let TestContext { env, fake, browser } =
        TestContext::with_config(FakeConfig { self_signed: true, token_lifetime_secs: 5, ..fake_config() });
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    // Past the expiry, `token` refreshes over the same self-signed certificate.
    assert_kubectl_works_across_an_expiry(&env, &fake);
}

#[test]
fn a_self_signed_openunison_certificate_is_refused_without_the_certificate_authority() {
    let TestContext { env, fake, browser } =
        TestContext::with_config(FakeConfig { self_signed: true, ..fake_config() });
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let login = env.oulogin(args_without_ca(&fake, &browser)).run();
    assert_refusal(&env, &login);
    login.assert_stderr_contains(&fake.host()).assert_stderr_contains("--certificate-authority");
    assert_eq!(fake.code_exchanges(), 0);
}

#[test]
fn ssl_cert_file_adds_trust() {
    let TestContext { mut env, fake, browser } = TestContext::new();
    env.set_env("SSL_CERT_FILE", fake.ca_file());
    env.oulogin(args_without_ca(&fake, &browser)).run().assert_success();
    kubectl_get(&env).assert_success();
}

#[test]
fn without_any_trust_for_the_openunison_ca_the_login_fails() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let login = env.oulogin(args_without_ca(&fake, &browser)).run();
    assert_refusal(&env, &login);
    login.assert_stderr_contains(&fake.host()).assert_stderr_contains("not signed by a trusted CA");
}

/// The flags of a `--no-browser` login against `fake`.
fn no_browser_args(fake: &FakeOpenUnison) -> Vec<String> {
    let ca = fake.ca_file().display().to_string();
    let port = fake.redirect_port().to_string();
    let args =
        ["--host", &fake.host(), "--certificate-authority", &ca, "--port", &port, "--no-browser", "--timeout", "60s"];
    args.iter().map(|arg| arg.to_string()).collect()
}

/// The authorization URL a `--no-browser` login printed on stderr.
fn printed_authorization_url(stderr: &str) -> Option<String> {
    stderr.lines().map(str::trim).find(|line| line.starts_with("https://")).map(str::to_string)
}

#[test]
fn no_browser_prints_the_url_and_takes_the_pasted_redirect_url() {
    use std::io::Write;
    let TestContext { env, fake, .. } = TestContext::new();
    let mut login = env.oulogin(no_browser_args(&fake)).spawn();
    assert!(
        login.wait_for_output(Duration::from_secs(20), |_, stderr| printed_authorization_url(stderr).is_some()),
        "no URL printed:\n{}",
        login.stderr_so_far()
    );
    let url = printed_authorization_url(&login.stderr_so_far()).unwrap();
    assert!(url.starts_with(&format!("{}/auth?", fake.cli_issuer())), "{url}");
    // The user's browser on another machine ends on the loopback address, which it cannot load.
    let pasted = Browser::new(&[&fake.ca_pem()]).loopback_redirect(&url);
    assert!(pasted.starts_with(&format!("http://127.0.0.1:{}/redirect?", fake.redirect_port())));
    writeln!(login.stdin.as_mut().unwrap(), "{pasted}").unwrap();
    let login = login.wait(Duration::from_secs(60));
    login.assert_success();
    assert!(login.stdout.is_empty(), "{login}");
    kubectl_get(&env).assert_success();
}

#[test]
fn no_browser_keeps_waiting_after_the_end_of_input() {
    let TestContext { env, fake, .. } = TestContext::new();
    let mut login = env.oulogin(no_browser_args(&fake)).spawn();
    assert!(login.wait_for_output(Duration::from_secs(20), |_, stderr| printed_authorization_url(stderr).is_some()));
    drop(login.stdin.take());
    std::thread::sleep(Duration::from_secs(1));
    assert!(login.is_running(), "end of input cancelled the login:\n{}", login.stderr_so_far());
    // The browser on this computer reaches the listener itself.
    let url = printed_authorization_url(&login.stderr_so_far()).unwrap();
    let finished = Browser::new(&[&fake.ca_pem()]).follow(&url);
    assert!(finished.reached_login_complete(), "{finished:#?}");
    login.wait(Duration::from_secs(60)).assert_success();
    kubectl_get(&env).assert_success();
}

/// A second kubeconfig with nothing of ours: another CA-less cluster, a
/// foreign exec user, unknown fields, and an extra YAML comment.
pub(super) const SECOND_KUBECONFIG: &str = r#"# team staging config
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: bm90IGEgcmVhbCBDQQ==
    server: https://staging.example.com
  name: staging
users:
- name: dev
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, staging]
      env:
      - name: AWS_PROFILE
        value: staging
contexts:
- name: staging
  context: {cluster: staging, user: dev}
extensions:
- name: team
  extension: {owner: platform}
"#;

/// Every entry and top-level field of `before` is in `after`, unchanged.
#[track_caller]
pub(super) fn assert_everything_kept(before: &Value, after: &Value) {
    for (key, value) in before.as_object().expect("a mapping") {
        match key.as_str() {
            "clusters" | "users" | "contexts" => {
                for old in value.as_array().expect("a list") {
                    let name = old["name"].as_str().expect("a name");
                    assert_eq!(entry(after, key, name), Some(old), "{key} entry `{name}` changed");
                }
            }
            "current-context" => {}
            _ => assert_eq!(after.get(key), Some(value), "top-level `{key}` changed"),
        }
    }
}

#[test]
fn a_kubeconfig_list_keeps_everything_not_ours_and_new_entries_go_to_the_first_file() {
    let TestContext { mut env, fake, browser } = TestContext::new();
    let first = env.root().join("first.yaml");
    let second = env.root().join("second.yaml");
    std::fs::write(&first, UNRELATED_KUBECONFIG).unwrap();
    std::fs::set_permissions(&first, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::write(&second, SECOND_KUBECONFIG).unwrap();
    env.set_kubeconfig_var(Some(&[&first, &second]));
    env.oulogin(login_args(&fake, &browser)).run().assert_success();

    assert_eq!(std::fs::read_to_string(&second).unwrap(), SECOND_KUBECONFIG, "the second file was rewritten");
    let before = yaml(UNRELATED_KUBECONFIG.as_bytes());
    let after = read_yaml(&first);
    assert_everything_kept(&before, &after);
    assert_eq!(names(&after, "clusters"), ["prod", "kubernetes"]);
    assert_eq!(names(&after, "users"), ["admin", "jdoe@kubernetes"]);
    assert_eq!(names(&after, "contexts"), ["prod", "kubernetes"]);
    assert_eq!(after["current-context"], "kubernetes");
    assert_eq!(mode(&first), 0o640, "the file's mode is kept");
    assert!(!env.root().join("first.yaml.lock").exists(), "kubectl's lock file is released");
    kubectl_get(&env).assert_success();
    let contexts = env.kubectl(["config", "get-contexts", "-o", "name"]).run();
    assert_eq!(contexts.stdout.lines().collect::<Vec<_>>(), ["kubernetes", "prod", "staging"], "{contexts}");
}

#[test]
fn entries_defined_in_the_second_file_are_written_back_there() {
    let TestContext { mut env, fake, browser } = TestContext::new();
    let first = env.root().join("first.yaml");
    let second = env.root().join("second.yaml");
    env.set_kubeconfig_var(Some(&[&second]));
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    // Break the cluster entry the login wrote into the second file.
    let mut ours = read_yaml(&second);
    let cluster = ours["clusters"].as_array_mut().unwrap().iter_mut().find(|entry| entry["name"] == "kubernetes");
    cluster.unwrap()["cluster"]["server"] = "https://127.0.0.1:1".into();
    std::fs::write(&second, serde_json::to_vec_pretty(&ours).unwrap()).unwrap();

    std::fs::write(&first, UNRELATED_KUBECONFIG).unwrap();
    env.set_kubeconfig_var(Some(&[&first, &second]));
    env.oulogin(args_with(&fake, &browser, &["--force"])).run().assert_success();
    let first_after = read_yaml(&first);
    assert_everything_kept(&yaml(UNRELATED_KUBECONFIG.as_bytes()), &first_after);
    assert_eq!(names(&first_after, "clusters"), ["prod"], "no entry of ours in the first file");
    assert_eq!(names(&first_after, "users"), ["admin"]);
    assert_eq!(names(&first_after, "contexts"), ["prod"]);
    assert_eq!(first_after["current-context"], "kubernetes", "current-context goes to the first file");
    let second_after = read_yaml(&second);
    assert_eq!(
        entry(&second_after, "clusters", "kubernetes").unwrap()["cluster"]["server"],
        fake.api_server_url().as_str()
    );
    assert_eq!(names(&second_after, "clusters"), ["kubernetes"]);
    kubectl_get(&env).assert_success();
}

#[test]
fn the_kubeconfig_flag_writes_that_file_only() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let chosen = env.root().join("elsewhere").join("config");
    let chosen_arg = chosen.display().to_string();
    env.oulogin(args_with(&fake, &browser, &["--kubeconfig", &chosen_arg])).run().assert_success();
    assert_eq!(env.read_kubeconfig(), UNRELATED_KUBECONFIG.as_bytes(), "KUBECONFIG's file was touched");
    let written = read_yaml(&chosen);
    assert_eq!(written["current-context"], "kubernetes");
    assert_eq!(mode(&chosen), 0o600, "a new kubeconfig is private");
    env.kubectl(["--kubeconfig", &chosen_arg, "get", "--raw", "/api/v1/namespaces/default"]).run().assert_success();
}

#[test]
fn a_symlinked_kubeconfig_stays_a_symlink() {
    let TestContext { env, fake, browser } = TestContext::new();
    let target = env.root().join("dotfiles").join("kubeconfig");
    std::fs::create_dir_all(target.parent().unwrap()).unwrap();
    std::fs::write(&target, UNRELATED_KUBECONFIG).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&target, &env.kubeconfig).unwrap();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let link = std::fs::symlink_metadata(&env.kubeconfig).unwrap();
    assert!(link.file_type().is_symlink(), "the symlink was replaced by a file");
    assert_eq!(std::fs::read_link(&env.kubeconfig).unwrap(), target);
    let written = read_yaml(&target);
    assert_everything_kept(&yaml(UNRELATED_KUBECONFIG.as_bytes()), &written);
    assert_eq!(written["current-context"], "kubernetes");
    assert_eq!(mode(&target), 0o600);
    kubectl_get(&env).assert_success();
}

#[test]
fn a_second_login_reuses_a_working_session_unless_forced() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    assert_eq!(browser.opened(), 1);
    let written = env.read_kubeconfig();

    let again = env.oulogin(login_args(&fake, &browser)).run();
    again.assert_success().assert_stderr_contains("already logged in");
    assert!(again.stdout.is_empty(), "{again}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(browser.opened(), 1, "no browser for a session that still works");
    assert_eq!(fake.sessions_minted(), 1);
    assert_eq!(env.read_kubeconfig(), written, "nothing to rewrite");

    let forced = env.oulogin(args_with(&fake, &browser, &["--force"])).run();
    forced.assert_success();
    assert!(!forced.stderr.contains("already logged in"), "{forced}");
    assert_eq!(browser.opened(), 2, "--force logs in again");
    assert_eq!(fake.sessions_minted(), 2);
    kubectl_get(&env).assert_success();
}

/// What the old Go `oulogin` wrote for `fake`: an `auth-provider: oidc`
/// user under its own names, with a token that has expired and a refresh
/// token the server does not know; beside an unrelated context.
pub(super) fn old_plugin_kubeconfig(fake: &FakeOpenUnison) -> String {
    use base64::Engine;
    let b64 = |text: String| base64::engine::general_purpose::STANDARD.encode(text);
    let mut claims = fake.k8s_claims(60);
    claims["iat"] = (crate::fake::now_secs() - 3600).into();
    claims["exp"] = (crate::fake::now_secs() - 3540).into();
    let expired = fake.sign(&claims);
    let api_ca = std::fs::read_to_string(fake.api_ca_file()).unwrap();
    format!(
        r#"apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {api_ca}
    server: {server}
  name: old-cluster
- name: prod
  cluster:
    server: https://prod.example.com:6443
contexts:
- context:
    cluster: old-cluster
    user: jdoe@old-cluster
  name: old-context
- name: prod
  context: {{cluster: prod, user: admin}}
current-context: old-context
preferences: {{}}
users:
- name: jdoe@old-cluster
  user:
    auth-provider:
      config:
        client-id: kubernetes
        client-secret: ""
        id-token: {expired}
        idp-certificate-authority-data: {ou_ca}
        idp-issuer-url: {issuer}
        refresh-token: bm90LWEtbGl2ZS1yZWZyZXNoLXRva2Vu
      name: oidc
- name: admin
  user: {{token: not-a-real-token}}
"#,
        api_ca = b64(api_ca),
        server = fake.api_server_url(),
        ou_ca = b64(fake.ca_pem()),
        issuer = fake.k8s_issuer(),
    )
}

/// The login flags for `fake` without `--host`.
pub(super) fn args_without_host(fake: &FakeOpenUnison, browser: &FakeBrowser) -> Vec<String> {
    let mut args = login_args(fake, browser);
    args.drain(0..2);
    args
}

#[test]
fn an_old_plugin_context_is_converted_in_place() {
    let TestContext { env, fake, browser } = TestContext::new();
    let old = old_plugin_kubeconfig(&fake);
    env.write_kubeconfig(&old);
    assert!(!kubectl_get(&env).success(), "the old entry's session is dead");

    let mut args = args_without_host(&fake, &browser);
    args.extend(["--context".to_string(), "old-context".to_string()]);
    let login = env.oulogin(args).run();
    login.assert_success().assert_stderr_contains("converted context `old-context`");
    assert!(!login.stderr.contains("already taken"), "no name was taken:\n{login}");
    assert_eq!(browser.opened(), 1);

    let before = yaml(old.as_bytes());
    let after = read_yaml(&env.kubeconfig);
    assert_eq!(after["current-context"], "old-context");
    assert_eq!(names(&after, "contexts"), ["old-context", "prod"], "no new context");
    assert_eq!(names(&after, "clusters"), ["old-cluster", "prod"], "no new cluster");
    assert_eq!(names(&after, "users"), ["jdoe@old-cluster", "admin"], "no new user");
    assert_eq!(entry(&after, "contexts", "old-context"), entry(&before, "contexts", "old-context"));
    for unrelated in [("clusters", "prod"), ("contexts", "prod"), ("users", "admin")] {
        assert_eq!(entry(&after, unrelated.0, unrelated.1), entry(&before, unrelated.0, unrelated.1));
    }
    let user = &entry(&after, "users", "jdoe@old-cluster").unwrap()["user"];
    assert!(user.get("auth-provider").is_none(), "the legacy block is gone: {user}");
    assert_eq!(user["exec"]["command"], "kubectl-oulogin");
    assert_eq!(user["exec"]["args"][2], stem(&fake).as_str());
    kubectl_get(&env).assert_success();
}

/// What a user types to log in again: no `--host`, no `--certificate-authority`
/// and no `--browser-command` (the port only because each fake has its own).
/// Bounded, so that a login that opens no browser fails instead of waiting.
fn bare_args(fake: &FakeOpenUnison, more: &[&str]) -> Vec<String> {
    let mut args = vec!["--port".to_string(), fake.redirect_port().to_string(), "--timeout".into(), "20s".into()];
    args.extend(more.iter().map(|arg| arg.to_string()));
    args
}

#[test]
fn logging_in_again_uses_the_certificate_authority_and_browser_command_the_session_remembers() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let context = "kubernetes";
    let host = fake.host();
    let again: [&[&str]; 3] = [&[], &["--context", context], &["--host", &host]];
    for (round, flags) in again.iter().enumerate() {
        fake.kill_all_sessions();
        let login = env.oulogin(bare_args(&fake, flags)).run();
        login.assert_success().assert_stderr_contains(&format!("context `{context}` is now current"));
        assert_eq!(browser.opened(), round + 2, "{flags:?}: the remembered browser command ran\n{login}");
        kubectl_get(&env).assert_success();
    }
    // `exec` taking the host from the current context: its own session, same CA.
    let mut exec_args = vec!["exec".to_string()];
    exec_args.extend(bare_args(&fake, &["--", "kubectl", "get", "--raw", "/api"]));
    let exec = env.oulogin(exec_args).run();
    exec.assert_success();
    assert_eq!(browser.opened(), 5, "{exec}");
    // A CA given on the command line wins over the remembered one.
    fake.kill_all_sessions();
    let other_ca = env.root().join("other-ca.pem");
    std::fs::write(&other_ca, crate::fake::pki::TestCa::generate("another CA").pem).unwrap();
    let before = env.read_kubeconfig();
    let refused = env.oulogin(bare_args(&fake, &["--certificate-authority", other_ca.to_str().unwrap()])).run();
    refused.assert_code(1).assert_stderr_contains("not signed by a trusted CA");
    assert_eq!(env.read_kubeconfig(), before);
}

#[test]
fn a_remembered_certificate_authority_file_removed_since_does_not_fail_the_login() {
    let TestContext { env, fake, browser } = TestContext::new();
    let ca_copy = env.root().join("ou-ca.pem");
    std::fs::copy(fake.ca_file(), &ca_copy).unwrap();
    let mut args = args_without_ca(&fake, &browser);
    args.extend(["--certificate-authority".to_string(), ca_copy.display().to_string()]);
    env.oulogin(args).run().assert_success();
    std::fs::remove_file(&ca_copy).unwrap();
    fake.kill_all_sessions();
    // The OpenUnison CA the bootstrap JSON handed out is remembered too.
    env.oulogin(bare_args(&fake, &[])).run().assert_success();
    assert_eq!(browser.opened(), 2);
    kubectl_get(&env).assert_success();
}

#[test]
fn an_old_plugin_context_is_converted_with_the_openunison_ca_it_carries() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.write_kubeconfig(&old_plugin_kubeconfig(&fake));
    let login =
        env.oulogin(bare_args(&fake, &["--context", "old-context", "--browser-command", browser.command()])).run();
    login.assert_success().assert_stderr_contains("converted context `old-context`");
    kubectl_get(&env).assert_success();
}

#[test]
fn auth_provider_writes_the_legacy_block_that_kubectl_can_use() {
    let TestContext { env, fake, browser } =
        TestContext::with_config(FakeConfig { token_lifetime_secs: 5, ..fake_config() });
    let login = env.oulogin(args_with(&fake, &browser, &["--auth-provider"])).run();
    login.assert_success().assert_stderr_contains("--auth-provider");
    let config = read_yaml(&env.kubeconfig);
    let user = &entry(&config, "users", "jdoe@kubernetes").expect("the user")["user"];
    assert!(user.get("exec").is_none(), "{user}");
    let provider = &user["auth-provider"];
    assert_eq!(provider["name"], "oidc");
    assert_eq!(provider["config"]["idp-issuer-url"], fake.k8s_issuer().as_str());
    assert_eq!(provider["config"]["client-id"], "kubernetes");
    assert!(provider["config"]["idp-certificate-authority-data"].is_string());
    assert!(!env.session_dir().join(format!("{}.json", stem(&fake))).exists(), "client-go keeps this session");
    // client-go's own oidc provider refreshes it once the 5 s token has expired.
    assert_kubectl_works_across_an_expiry(&env, &fake);
}

#[test]
fn version_and_help_touch_no_kubeconfig_and_no_network() {
    let mut env = TestEnv::new();
    let garbage = env.root().join("garbage");
    std::fs::write(&garbage, "\u{0}\u{1}: [not yaml").unwrap();
    let unreadable = env.root().join("unreadable");
    std::fs::write(&unreadable, UNRELATED_KUBECONFIG).unwrap();
    std::fs::set_permissions(&unreadable, std::fs::Permissions::from_mode(0o000)).unwrap();
    env.set_kubeconfig_var(Some(&[&unreadable, &garbage]));
    // Any network use would go to a closed port.
    env.set_env("HTTPS_PROXY", "http://127.0.0.1:1");
    env.set_env("https_proxy", "http://127.0.0.1:1");
    let modified = |path: &Path| std::fs::metadata(path).unwrap().modified().unwrap();
    let before = (modified(&garbage), modified(&unreadable));
    let version = env.oulogin(["--version"]).run();
    version.assert_success();
    assert!(version.stdout.contains(env!("CARGO_PKG_VERSION")), "{version}");
    for args in [
        vec!["--help"],
        vec!["-h"],
        vec!["status", "--help"],
        vec!["logout", "--help"],
        vec!["token", "--help"],
        vec!["exec", "--help"],
        vec!["help"],
    ] {
        let help = env.oulogin(&args).run();
        help.assert_success();
        assert!(help.stdout.contains("kubectl oulogin"), "{help}");
    }
    assert_eq!((modified(&garbage), modified(&unreadable)), before);
    assert_eq!(mode(&unreadable), 0);
    assert!(!env.cache_dir.exists(), "the session directory was created");
    let left: Vec<_> = std::fs::read_dir(env.root()).unwrap().map(|file| file.unwrap().file_name()).collect();
    assert!(!left.iter().any(|name| name.to_string_lossy().ends_with(".lock")), "{left:?}");
    // Both files really would fail a command that reads them.
    let status = env.oulogin(["status"]).run();
    status.assert_code(1);
}

#[test]
fn a_foreign_context_is_never_overwritten_by_a_login_naming_it() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let login = env.oulogin(args_with(&fake, &browser, &["--context", "prod"])).run();
    login.assert_code(2).assert_stderr_contains("`prod`").assert_stderr_contains("--context");
    assert!(login.stderr.lines().any(|line| line.starts_with("error: ")), "{login}");
    assert_eq!(env.read_kubeconfig(), UNRELATED_KUBECONFIG.as_bytes());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(browser.opened(), 0, "refused before any browser opens");
}

#[test]
fn logging_in_to_the_host_of_an_old_plugin_context_converts_it_instead_of_adding_another() {
    let TestContext { env, fake, browser } = TestContext::new();
    // The old plugin's own names: cluster and context `kubernetes`, user `jdoe@kubernetes`.
    let old = old_plugin_kubeconfig(&fake).replace("old-cluster", "kubernetes").replace("old-context", "kubernetes");
    env.write_kubeconfig(&old);
    let login = env.oulogin(login_args(&fake, &browser)).run();
    login.assert_success().assert_stderr_contains("converted context `kubernetes`");
    let after = read_yaml(&env.kubeconfig);
    assert_eq!(names(&after, "contexts"), ["kubernetes", "prod"]);
    assert_eq!(names(&after, "clusters"), ["kubernetes", "prod"]);
    assert_eq!(names(&after, "users"), ["jdoe@kubernetes", "admin"]);
    assert_eq!(entry(&after, "users", "jdoe@kubernetes").unwrap()["user"]["exec"]["command"], "kubectl-oulogin");
    kubectl_get(&env).assert_success();
}
