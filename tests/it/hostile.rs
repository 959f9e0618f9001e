//! Hostile input: a misbehaving OpenUnison (bootstrap JSON, `cli-local`
//! token endpoint, keys), a hostile local web page at the loopback listener,
//! a failing refresh, broken kubeconfig and session files, stalled servers
//! and server text with terminal escapes. Every failure must end with exit 1,
//! an `error:` line naming the URL or file, a `hint:` where one helps, and
//! the kubeconfig and session file exactly as they were.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{Output, TestContext, TestEnv, fake_config, free_port};
use crate::fake::{BrowserMode, FakeConfig, Fault, now_secs};

/// A kubeconfig with entries that are not ours, so that "unchanged" means something.
pub const FOREIGN_KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://other.example.com:6443
    insecure-skip-tls-verify: true
users:
- name: other-admin
  user:
    token: not-ours-to-touch
contexts:
- name: other
  context:
    cluster: other
    user: other-admin
    namespace: team-a
current-context: other
preferences: {}
extensions:
- name: keep-me
  extension:
    anything: [1, 2, 3]
";

/// The shared context (a fake OpenUnison, a browser that logs in, a private
/// world) with a foreign kubeconfig in place.
pub struct Scene {
    pub ctx: TestContext,
    /// A copy of the fake's CA file that outlives the fake (for "server stopped" cases).
    pub ca_file: PathBuf,
}

impl std::ops::Deref for Scene {
    type Target = TestContext;

    fn deref(&self) -> &TestContext {
        &self.ctx
    }
}

impl std::ops::DerefMut for Scene {
    fn deref_mut(&mut self) -> &mut TestContext {
        &mut self.ctx
    }
}

/// The kubeconfig and session file as bytes (`None`: absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    pub kubeconfig: Option<Vec<u8>>,
    pub session: Option<Vec<u8>>,
}

impl Scene {
    pub fn new() -> Scene {
        Scene::with(fake_config())
    }

    pub fn with(config: FakeConfig) -> Scene {
        let ctx = TestContext::with_config(config);
        let ca_file = ctx.env.root().join("openunison-ca.pem");
        std::fs::write(&ca_file, ctx.fake.ca_pem()).unwrap();
        ctx.env.write_kubeconfig(FOREIGN_KUBECONFIG);
        Scene { ctx, ca_file }
    }

    /// `--host H --certificate-authority CA --port P --browser-command CMD`,
    /// with the CA copy that outlives the fake (where `TestContext::login_args`
    /// names the fake's own file).
    pub fn login_args(&self) -> Vec<String> {
        vec![
            "--host".into(),
            self.fake.host(),
            "--certificate-authority".into(),
            self.ca_file.display().to_string(),
            "--port".into(),
            self.fake.redirect_port().to_string(),
            "--browser-command".into(),
            self.browser.command().to_string(),
        ]
    }

    /// `kubectl-oulogin <login flags> EXTRA…`
    pub fn login(&self, extra: &[&str]) -> Output {
        let mut args = self.login_args();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        self.env.oulogin(args).timeout(Duration::from_secs(90)).run()
    }

    /// `kubectl-oulogin token …` as client-go runs it.
    pub fn token(&self) -> Output {
        self.env
            .oulogin(self.token_args())
            .env("KUBERNETES_EXEC_INFO", r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#)
            .timeout(Duration::from_secs(90))
            .run()
    }

    pub fn files(&self) -> Files {
        Files { kubeconfig: std::fs::read(&self.env.kubeconfig).ok(), session: std::fs::read(self.session_file()).ok() }
    }

    /// A successful login that leaves a session and our entries behind.
    pub fn logged_in(self) -> Scene {
        self.login(&[]).assert_success();
        assert!(self.session_file().is_file());
        self
    }

    pub fn session_json(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.session_file()).unwrap()).unwrap()
    }

    /// Rewrites the stored session (keeping it 0600) through `edit`.
    pub fn edit_session(&self, edit: impl FnOnce(&mut Value)) {
        let mut session = self.session_json();
        edit(&mut session);
        let path = self.session_file();
        std::fs::write(&path, serde_json::to_vec_pretty(&session).unwrap()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    /// Replaces the session's id_token with one signed by the fake that has
    /// just expired, so the next `token` must refresh.
    pub fn expire_session_token(&self) {
        let mut claims = self.fake.k8s_claims(60);
        claims["iat"] = json!(now_secs() - 61);
        claims["exp"] = json!(now_secs() - 1);
        let expired = self.fake.sign(&claims);
        self.edit_session(|session| session["id_token"] = json!(expired));
    }
}

/// Exit 1, an `error:` line containing `named` (a URL or a file), nothing on
/// stdout, and a `hint:` line when `hint` is true.
#[track_caller]
pub fn assert_failed_naming(output: &Output, named: &str, hint: bool) {
    output.assert_code(1);
    let error_line = output.stderr.lines().find(|line| line.starts_with("error: "));
    let error_line = error_line.unwrap_or_else(|| panic!("no `error:` line:\n{output}"));
    let error_text: String =
        output.stderr.lines().skip_while(|line| !line.starts_with("error: ")).collect::<Vec<_>>().join("\n");
    assert!(error_text.contains(named), "the error does not name {named:?} (first line: {error_line:?}):\n{output}");
    if hint {
        assert!(output.stderr.lines().any(|line| line.starts_with("hint: ")), "no `hint:` line:\n{output}");
    }
    assert!(output.stdout.is_empty(), "a failure printed on stdout:\n{output}");
    assert!(!output.stderr.contains('\u{1b}'), "a raw escape character reached the terminal:\n{output}");
}

/// Runs a forced login with `fault` switched on and checks that it fails
/// naming `url` (and saying `expected`), with a hint, and changes no file.
#[track_caller]
fn assert_login_refused(scene: &Scene, fault: Fault, url: &str, expected: &str) {
    let before = scene.files();
    scene.fake.set_fault(fault.clone());
    let output = scene.login(&["--force"]);
    scene.fake.clear_faults();
    assert_failed_naming(&output, url, true);
    assert!(output.stderr.contains(expected), "{fault:?}: expected {expected:?} in the error:\n{output}");
    assert!(scene.files() == before, "{fault:?}: the kubeconfig or the session file changed:\n{output}");
}

#[test]
fn unusable_bootstrap_answers_fail_the_login_and_change_no_file() {
    let scene = Scene::new().logged_in();
    let url = format!("{}/k8slogin/token/user", scene.fake.base_url());
    let cases = [
        (Fault::BootstrapNotJson, "did not answer JSON"),
        (Fault::BootstrapHtml200, "HTML page"),
        (Fault::BootstrapMissingIdToken, "no `id_token`"),
        (Fault::BootstrapMissingRefreshToken, "no `refresh_token`"),
        (Fault::BootstrapMissingServerUrl, "no API server URL"),
        (Fault::BootstrapHttpServerUrl, "is not an https:// URL"),
        (Fault::BootstrapBadCaPem, "invalid `OpenUnison Server CA Certificate`"),
        (Fault::BootstrapHuge, "larger than"),
        (Fault::BootstrapStatus(500), "HTTP 500"),
        (Fault::BootstrapStatus(404), "HTTP 404"),
    ];
    for (fault, expected) in cases {
        assert_login_refused(&scene, fault, &url, expected);
    }
}

#[test]
fn a_server_without_discovery_still_verifies_against_its_certs_endpoint() {
    let scene = Scene::new();
    scene.fake.set_fault(Fault::DiscoveryStatus(404));
    scene.login(&[]).assert_success();
    // The keys were fetched from `…/k8s-login-cli/certs` and the token verified:
    // a bad signature is still caught on that path.
    let scene = Scene::new();
    scene.fake.set_fault(Fault::DiscoveryStatus(404));
    scene.fake.set_fault(Fault::CliTokenBadSignature);
    assert_eq!(scene.login(&[]).status.code(), Some(1));
}

#[test]
fn unknown_extra_fields_in_the_bootstrap_are_accepted() {
    let scene = Scene::new();
    scene.fake.set_fault(Fault::BootstrapExtraFields);
    let output = scene.login(&[]);
    output.assert_success();
    let session = scene.session_json();
    assert_eq!(session["cluster"], json!(scene.fake.cluster_name()), "{output}");
    let kubeconfig = String::from_utf8(scene.files().kubeconfig.unwrap()).unwrap();
    assert!(!kubeconfig.contains("something new") && !kubeconfig.contains("schemaVersion"), "{kubeconfig}");
}

#[test]
fn cli_local_token_endpoint_and_key_failures_fail_the_login_and_change_no_file() {
    let scene = Scene::new().logged_in();
    let token_url = format!("{}/token", scene.fake.cli_issuer());
    let issuer = scene.fake.cli_issuer();
    let cases = [
        (Fault::CodeExchangeStatus(400), token_url.clone(), "HTTP 400"),
        (Fault::CodeExchangeStatus(401), token_url.clone(), "HTTP 401"),
        (Fault::CodeExchangeStatus(403), token_url.clone(), "HTTP 403"),
        (Fault::CodeExchangeStatus(500), token_url.clone(), "HTTP 500"),
        (Fault::CodeExchangeNoIdToken, token_url.clone(), "no `id_token`"),
        (Fault::CliTokenNotJwt, issuer.clone(), "not a valid JWT"),
        (Fault::CliTokenAlgNone, issuer.clone(), "signed with `none`"),
        (Fault::CliTokenUnknownKid, issuer.clone(), "JWKS does not have"),
        (Fault::JwksStatus(500), format!("{issuer}/certs"), "HTTP 500"),
        (Fault::DiscoveryStatus(500), format!("{issuer}/.well-known/openid-configuration"), "HTTP 500"),
    ];
    let minted = scene.fake.sessions_minted();
    for (fault, url, expected) in cases {
        assert_login_refused(&scene, fault, &url, expected);
    }
    assert_eq!(scene.fake.sessions_minted(), minted, "a refused token still reached the bootstrap");
}

/// An answer of the loopback listener, read from a raw connection.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.trim().eq_ignore_ascii_case(name).then(|| value.trim().to_string())
        })
    }
}

/// Sends one HTTP/1.1 request over a plain TCP connection to
/// `127.0.0.1:port`, with exactly the `Host` header given (as a hostile page
/// or a rebinding DNS name would), and reads the answer to the end.
pub fn raw_request(port: u16, method: &str, target: &str, host_header: &str) -> std::io::Result<RawAnswer> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: {host_header}\r\nConnection: close\r\nUser-Agent: hostile-page\r\n\r\n"
    )?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let status = head.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    Ok(RawAnswer { status, head: head.to_string(), body: body.to_string() })
}

/// A login waiting at its loopback listener, with a browser that does
/// nothing, so the test plays browser (and attacker) itself.
pub struct WaitingLogin {
    pub scene: Scene,
    pub running: crate::common::Running,
    pub port: u16,
    /// The listener hands the authorization URL out once; kept from then on.
    authorization: std::sync::OnceLock<String>,
}

impl WaitingLogin {
    pub fn start(extra: &[&str]) -> WaitingLogin {
        let scene = Scene::new();
        scene.browser.set_mode(BrowserMode::Ignore);
        let mut args = scene.login_args();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let running = scene.env.oulogin(args).timeout(Duration::from_secs(90)).spawn();
        // The browser is opened only once the listener is bound.
        assert!(scene.browser.wait_for_opened(1, Duration::from_secs(20)), "the login never opened the browser");
        let port = scene.fake.redirect_port();
        WaitingLogin { scene, running, port, authorization: std::sync::OnceLock::new() }
    }

    /// `127.0.0.1:PORT`, the only `Host` the listener serves.
    pub fn own_host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The authorization URL, as the listener's `/` redirects a browser to it
    /// (asked for once, as the listener gives it out once).
    pub fn authorization_url(&self) -> String {
        self.authorization
            .get_or_init(|| {
                let answer = raw_request(self.port, "GET", "/", &self.own_host()).unwrap();
                assert_eq!(answer.status, 302, "{answer:?}");
                answer.header("location").expect("a Location header")
            })
            .clone()
    }

    /// This login's `state`.
    pub fn state(&self) -> String {
        query_param(&self.authorization_url(), "state").expect("a state")
    }

    /// The fake's `/redirect?code=…&state=…` for this login, not yet delivered.
    pub fn callback_target(&self) -> String {
        let loopback = crate::fake::browser::Browser::new(&[&self.scene.fake.ca_pem()])
            .loopback_redirect(&self.authorization_url());
        let url = url::Url::parse(&loopback).unwrap();
        format!("{}?{}", url.path(), url.query().unwrap_or(""))
    }

    /// Logs in the way a user's browser does, from the authorization URL on.
    pub fn complete_in_browser(&self) -> crate::fake::browser::BrowseOutcome {
        crate::fake::browser::Browser::new(&[&self.scene.fake.ca_pem()]).follow(&self.authorization_url())
    }

    /// Logs in in a browser (which must reach the login-complete page), then
    /// waits for the plugin, which must succeed.
    pub fn complete_in_browser_and_finish(self) -> (Scene, Output) {
        assert!(self.complete_in_browser().reached_login_complete());
        let (scene, output) = self.finish();
        output.assert_success();
        (scene, output)
    }

    pub fn finish(self) -> (Scene, Output) {
        let output = self.running.wait(Duration::from_secs(60));
        (self.scene, output)
    }
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).ok()?.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

#[test]
fn a_callback_without_a_code_is_refused_and_the_login_keeps_waiting() {
    let login = WaitingLogin::start(&[]);
    let state = login.state();
    let answer = raw_request(login.port, "GET", &format!("/redirect?state={state}"), &login.own_host()).unwrap();
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("no authorization code"), "{answer:?}");
    let (scene, _) = login.complete_in_browser_and_finish();
    assert_one_code_exchange_none_failed(&scene);
}

#[test]
fn an_error_from_openunison_is_shown_in_the_browser_and_on_stderr() {
    let scene = Scene::new();
    scene.fake.set_fault(Fault::AuthorizeError("access_denied".into()));
    let before = scene.files();
    let output = scene.login(&[]);
    assert_failed_naming(&output, "access_denied", false);
    assert!(output.stderr.contains("OpenUnison refused the login"), "{output}");
    let outcomes = scene.browser.finished_visits(1, Duration::from_secs(10));
    let page = outcomes.last().expect("the browser finished its visit");
    assert_eq!(page.final_status, 400, "{page:?}");
    assert!(page.final_body.contains("access_denied") && page.final_body.contains("Login refused"), "{page:?}");
    assert_eq!(scene.files(), before);
}

#[test]
fn repeated_callbacks_exchange_the_code_once() {
    let login = WaitingLogin::start(&[]);
    let target = login.callback_target();
    // The same callback twice at once, as a double-clicked link or a replaying page would.
    let answers: Vec<std::io::Result<RawAnswer>> = std::thread::scope(|scope| {
        let sends: Vec<_> =
            (0..2).map(|_| scope.spawn(|| raw_request(login.port, "GET", &target, &login.own_host()))).collect();
        sends.into_iter().map(|send| send.join().unwrap()).collect()
    });
    let redirected = answers.iter().filter(|answer| answer.as_ref().is_ok_and(|answer| answer.status == 302)).count();
    assert_eq!(redirected, 1, "exactly one callback completes the login: {answers:?}");
    for answer in answers.iter().flatten().filter(|answer| answer.status != 302) {
        assert!(matches!(answer.status, 404 | 409), "{answer:?}");
    }
    let (scene, output) = login.finish();
    output.assert_success();
    // Once the login is over the listener is gone, or says so; the code is never sent again.
    if let Ok(late) =
        raw_request(scene.fake.redirect_port(), "GET", &target, &format!("127.0.0.1:{}", scene.fake.redirect_port()))
    {
        assert_ne!(late.status, 302, "{late:?}");
    }
    assert_one_code_exchange_none_failed(&scene);
}

#[test]
fn a_foreign_host_header_is_forbidden_and_the_login_continues() {
    let login = WaitingLogin::start(&[]);
    let state = login.state();
    let rebound = format!("attacker.example.com:{}", login.port);
    // A page on a name that resolves to 127.0.0.1 learns nothing and delivers nothing.
    let start = raw_request(login.port, "GET", "/", &rebound).unwrap();
    assert_eq!(start.status, 403, "{start:?}");
    assert!(start.header("location").is_none() && !start.body.contains(&state), "{start:?}");
    let forged = raw_request(login.port, "GET", &format!("/redirect?code=forged&state={state}"), &rebound).unwrap();
    assert_eq!(forged.status, 403, "{forged:?}");
    let (scene, _) = login.complete_in_browser_and_finish();
    assert_one_code_exchange_none_failed(&scene);
}

#[test]
fn a_cross_site_callback_without_the_state_is_refused_without_consuming_the_login() {
    let login = WaitingLogin::start(&[]);
    // An error without a state ends a login only once its authorization URL
    // went out (OpenUnison's own error redirects carry none); not yet here.
    for target in ["/redirect?code=attacker-code", "/redirect?code=attacker-code&state=guessed", "/redirect?error=x"] {
        let answer = raw_request(login.port, "GET", target, &login.own_host()).unwrap();
        assert_eq!(answer.status, 400, "{target}: {answer:?}");
        assert!(answer.body.contains("does not belong to the login"), "{target}: {answer:?}");
    }
    let (scene, output) = login.complete_in_browser_and_finish();
    assert!(output.stderr.contains("without this login's state; still waiting"), "{output}");
    // The attacker's code never reached OpenUnison.
    assert_one_code_exchange_none_failed(&scene);
}

/// The fake exchanged one code, and no exchange failed.
#[track_caller]
pub fn assert_one_code_exchange_none_failed(scene: &Scene) {
    assert_eq!((scene.fake.code_exchanges(), scene.fake.counters().code_exchange_failures), (1, 0));
}

/// A logged-in scene whose id_token has just expired, so `token` must refresh.
fn scene_due_for_refresh() -> Scene {
    let scene = Scene::new().logged_in();
    scene.expire_session_token();
    scene
}

#[track_caller]
fn assert_refresh_failed_keeping_the_session(scene: &Scene, before: &Files, output: &Output, expected: &str) {
    let endpoint = format!("{}/token", scene.fake.k8s_issuer());
    assert_failed_naming(output, &endpoint, true);
    assert!(output.stderr.contains(expected), "expected {expected:?}:\n{output}");
    assert!(scene.files() == *before, "the kubeconfig or the session file changed:\n{output}");
}

#[test]
fn a_refresh_answered_401_ends_the_session_and_names_the_login_command_without_a_browser() {
    let scene = scene_due_for_refresh();
    scene.fake.set_fault(Fault::RefreshStatus(401));
    let before = scene.files();
    let output = scene.env.oulogin(scene.token_args()).env("OULOGIN_NO_BROWSER", "1").run();
    output.assert_code(1);
    assert!(output.stderr.contains("has ended") && output.stderr.contains("OULOGIN_NO_BROWSER=1"), "{output}");
    assert!(output.stderr.contains(&format!("kubectl oulogin --host {}", scene.fake.host())), "{output}");
    assert!(output.stderr.contains(&format!("{}/token", scene.fake.k8s_issuer())), "the refusing URL: {output}");
    assert!(output.stdout.is_empty(), "{output}");
    assert_eq!(scene.browser.opened(), 1, "only the first login opened a browser");
    assert_eq!(scene.files(), before);
}

#[test]
fn a_refresh_answered_401_logs_in_again_through_the_remembered_browser() {
    let scene = scene_due_for_refresh();
    scene.fake.set_fault(Fault::RefreshStatus(401));
    let minted = scene.fake.sessions_minted();
    let output = scene.token();
    output.assert_success();
    assert!(output.stderr.contains("has ended"), "{output}");
    assert_eq!(scene.browser.opened(), 2, "one more browser login:\n{output}");
    assert_eq!(scene.fake.sessions_minted(), minted + 1);
    let credential: Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(credential["status"]["token"], scene.session_json()["id_token"]);
}

#[test]
fn a_refresh_answered_500_keeps_the_session() {
    let scene = scene_due_for_refresh();
    scene.fake.set_fault(Fault::RefreshStatus(500));
    let before = scene.files();
    let output = scene.token();
    assert_refresh_failed_keeping_the_session(&scene, &before, &output, "HTTP 500");
    assert!(output.stderr.contains("session is kept"), "{output}");
    assert_eq!(scene.browser.opened(), 1, "a server error is no reason to log in again");
}

#[test]
fn a_refresh_answer_without_an_id_token_is_refused() {
    let scene = scene_due_for_refresh();
    scene.fake.set_fault(Fault::RefreshNoIdToken);
    let before = scene.files();
    let output = scene.token();
    let endpoint = format!("{}/token", scene.fake.k8s_issuer());
    assert_failed_naming(&output, &endpoint, false);
    assert!(output.stderr.contains("no `id_token`"), "{output}");
    assert_eq!(scene.files(), before);
}

#[test]
fn a_refresh_against_a_stopped_server_says_it_cannot_connect() {
    let scene = scene_due_for_refresh();
    let (token_args, session_file) = (scene.token_args(), scene.session_file());
    let endpoint = format!("{}/token", scene.fake.k8s_issuer());
    let before = std::fs::read(&session_file).unwrap();
    // The fake goes away (its port closes); the world and the CA copy stay.
    let Scene { ctx: TestContext { env, fake, .. }, .. } = scene;
    drop(fake);
    let output = env.oulogin(&token_args).run();
    assert_failed_naming(&output, &endpoint, true);
    assert!(output.stderr.contains("cannot connect"), "{output}");
    assert_eq!(std::fs::read(&session_file).unwrap(), before);
}

#[test]
fn a_refresh_against_a_server_with_an_untrusted_certificate_is_a_tls_error() {
    let scene = scene_due_for_refresh();
    let other = crate::fake::pki::TestCa::generate("not-the-openunison-ca");
    let other_file = scene.env.root().join("other-ca.pem");
    std::fs::write(&other_file, &other.pem).unwrap();
    scene.edit_session(|session| {
        session["trust"] = json!({"ca_file": other_file, "ca_pem": other.pem});
    });
    let before = scene.files();
    let output = scene.token();
    assert_refresh_failed_keeping_the_session(&scene, &before, &output, "TLS");
    assert!(output.stderr.contains("--certificate-authority"), "{output}");
    assert_eq!(scene.fake.refresh_events().len(), 0, "the refresh token was sent to an untrusted server");
}

/// Whether the tests run as root, for whom file permissions do not apply.
pub fn running_as_root() -> bool {
    // SAFETY: geteuid(2) cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The uid and gid an unprivileged run uses when the tests run as root.
pub const NOBODY: u32 = 65534;

/// Gives everything under `dir` to `nobody` (when running as root), so that
/// an unprivileged run can use the test's world.
pub fn give_to_nobody(dir: &Path) {
    if !running_as_root() {
        return;
    }
    std::os::unix::fs::lchown(dir, Some(NOBODY), Some(NOBODY)).unwrap();
    if dir.is_dir() && !dir.is_symlink() {
        for entry in std::fs::read_dir(dir).unwrap() {
            give_to_nobody(&entry.unwrap().path());
        }
    }
}

/// `kubectl-oulogin ARGS…` as an ordinary user: as `nobody` through
/// `setpriv` when the tests run as root (root reads and writes any file, so
/// permission failures would never happen), else directly. The caller hands
/// the files the run needs to `nobody` first ([`give_to_nobody`]).
pub fn oulogin_unprivileged(env: &TestEnv, args: &[String]) -> crate::common::Run {
    if !running_as_root() {
        return env.oulogin(args);
    }
    let setpriv = Path::new("/usr/bin/setpriv");
    assert!(setpriv.exists(), "tests running as root need `setpriv` (util-linux) to run the plugin unprivileged");
    let plugin = crate::common::plugin_path();
    let probe = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&plugin)
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        probe.status.success(),
        "`nobody` cannot run {} (check the permissions of its directories): {}",
        plugin.display(),
        String::from_utf8_lossy(&probe.stderr)
    );
    let mut full = vec!["--reuid=65534".to_string(), "--regid=65534".into(), "--clear-groups".into(), "--".into()];
    full.push(plugin.display().to_string());
    full.extend(args.iter().cloned());
    env.command(setpriv, full)
}

/// Writes `text` as the kubeconfig, runs a login, and checks that it is
/// refused naming the file, before any browser opens, changing nothing.
#[track_caller]
fn assert_kubeconfig_refused(text: &str, expected: &str) {
    let scene = Scene::new();
    scene.env.write_kubeconfig(text);
    let output = scene.login(&[]);
    assert_failed_naming(&output, &format!("`{}`", scene.env.kubeconfig.display()), true);
    assert!(output.stderr.contains(expected), "expected {expected:?}:\n{output}");
    assert_eq!(std::fs::read_to_string(&scene.env.kubeconfig).unwrap(), text);
    assert_eq!(scene.browser.opened(), 0, "a browser opened for a login that cannot be written:\n{output}");
    assert!(!scene.session_file().exists());
}

#[test]
fn a_kubeconfig_that_is_not_yaml_is_refused() {
    assert_kubeconfig_refused("clusters: [\n  - name: a\n users:\n\tbad", "is not valid YAML");
    assert_kubeconfig_refused("\u{0}\u{1}binary\u{ff}", "is not valid YAML");
}

#[test]
fn a_kubeconfig_of_the_wrong_shape_or_kind_is_refused() {
    assert_kubeconfig_refused("clusters: 3\n", "`clusters` is a number, not a list");
    assert_kubeconfig_refused("users:\n- token: abc\n", "has no `name`");
    assert_kubeconfig_refused("- just\n- a list\n", "not a mapping");
    assert_kubeconfig_refused("apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n", "its `kind` is `Pod`");
}

#[test]
fn a_kubeconfig_that_is_a_directory_is_refused() {
    let scene = Scene::new();
    let dir = scene.env.root().join("config-dir");
    std::fs::create_dir(&dir).unwrap();
    let output = scene.env.oulogin(scene.login_args()).env("KUBECONFIG", &dir).run();
    assert_failed_naming(&output, &format!("`{}`", dir.display()), true);
    assert!(output.stderr.contains("is a directory"), "{output}");
    assert_eq!(scene.browser.opened(), 0);
}

#[test]
fn an_unreadable_kubeconfig_is_refused_naming_the_file() {
    let scene = Scene::new();
    give_to_nobody(scene.env.root());
    std::fs::set_permissions(&scene.env.kubeconfig, std::fs::Permissions::from_mode(0o000)).unwrap();
    let output = oulogin_unprivileged(&scene.env, &scene.login_args()).run();
    std::fs::set_permissions(&scene.env.kubeconfig, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_failed_naming(&output, &format!("cannot read kubeconfig `{}`", scene.env.kubeconfig.display()), true);
    assert!(output.stderr.contains("check the permissions"), "{output}");
    assert_eq!(std::fs::read_to_string(&scene.env.kubeconfig).unwrap(), FOREIGN_KUBECONFIG);
    assert_eq!(scene.browser.opened(), 0);
}

#[test]
fn a_kubeconfig_in_a_read_only_directory_is_a_clear_error_and_stays_unchanged() {
    let scene = Scene::new();
    give_to_nobody(scene.env.root());
    give_to_nobody(scene.browser.urls_file().parent().unwrap());
    let kube_dir = scene.env.kubeconfig.parent().unwrap().to_path_buf();
    std::fs::set_permissions(&kube_dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    let output = oulogin_unprivileged(&scene.env, &scene.login_args()).run();
    std::fs::set_permissions(&kube_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_failed_naming(&output, &format!("`{}`", scene.env.kubeconfig.display()), true);
    assert!(output.stderr.contains(&format!("{}.lock", scene.env.kubeconfig.display())), "{output}");
    assert!(output.stderr.contains(&format!("may create files in `{}`", kube_dir.display())), "{output}");
    assert_eq!(std::fs::read_to_string(&scene.env.kubeconfig).unwrap(), FOREIGN_KUBECONFIG);
    let leftovers: Vec<_> = std::fs::read_dir(&kube_dir).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    assert_eq!(leftovers, ["config"], "nothing else appeared beside the kubeconfig");
}

#[test]
fn a_dangling_kubeconfig_symlink_gets_its_target_written() {
    let scene = Scene::new();
    let target = scene.env.root().join("elsewhere").join("config");
    std::fs::remove_file(&scene.env.kubeconfig).unwrap();
    std::os::unix::fs::symlink(&target, &scene.env.kubeconfig).unwrap();
    scene.login(&[]).assert_success();
    assert!(
        std::fs::symlink_metadata(&scene.env.kubeconfig).unwrap().file_type().is_symlink(),
        "the link was replaced"
    );
    let written = std::fs::read_to_string(&target).unwrap();
    assert!(written.contains(&format!("name: {}", scene.fake.cluster_name())), "{written}");
    assert_eq!(std::fs::metadata(&target).unwrap().permissions().mode() & 0o777, 0o600);
}

#[test]
fn a_kubeconfig_list_with_missing_files_writes_the_first_existing_file_only() {
    let mut scene = Scene::new();
    let missing_first = scene.env.root().join("missing-first.yaml");
    let missing_last = scene.env.root().join("missing-last.yaml");
    let existing = scene.env.kubeconfig.clone();
    scene.env.set_kubeconfig_var(Some(&[&missing_first, &existing, &missing_last]));
    scene.login(&[]).assert_success();
    assert!(!missing_first.exists() && !missing_last.exists(), "a missing list entry was created");
    let written = std::fs::read_to_string(&existing).unwrap();
    assert!(written.contains("not-ours-to-touch") && written.contains("jdoe@"), "{written}");

    // With every entry missing, the first one is created (kubectl's rule).
    let mut fresh = Scene::new();
    let (one, two) = (fresh.env.root().join("one.yaml"), fresh.env.root().join("two.yaml"));
    fresh.env.set_kubeconfig_var(Some(&[&one, &two]));
    fresh.login(&[]).assert_success();
    assert!(one.is_file() && !two.exists());
}

/// A session file that `token` must refuse: exit 1 naming the file, a hint, and the file left as it was.
#[track_caller]
fn assert_session_refused(scene: &Scene, named: &Path, expected: &[&str]) {
    let before = scene.files();
    let output = scene.token();
    assert_failed_naming(&output, &format!("`{}`", named.display()), true);
    for expected in expected {
        assert!(output.stderr.contains(expected), "expected {expected:?}:\n{output}");
    }
    assert!(scene.files() == before, "the session or kubeconfig changed:\n{output}");
    for token in scene.fake.issued_tokens() {
        assert!(!output.stderr.contains(&token), "a token from the session file was printed:\n{output}");
    }
}

#[test]
fn a_corrupt_session_file_is_refused_with_a_hint() {
    let scene = Scene::new().logged_in();
    let path = scene.session_file();
    let original = std::fs::read(&path).unwrap();
    // Truncated in the middle of the refresh token, as a full disk might leave it.
    std::fs::write(&path, &original[..original.len() / 2]).unwrap();
    assert_session_refused(&scene, &path, &["is damaged", "--force"]);
    std::fs::write(&path, b"\x00\x00\x00").unwrap();
    assert_session_refused(&scene, &path, &["is damaged", "--force"]);
    std::fs::write(&path, br#"{"version":1,"host":42}"#).unwrap();
    assert_session_refused(&scene, &path, &["is damaged", "--force"]);
}

#[test]
fn a_session_file_others_can_read_is_refused_never_used() {
    let scene = Scene::new().logged_in();
    let path = scene.session_file();
    for mode in [0o644, 0o640, 0o604, 0o660] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_session_refused(&scene, &path, &["holds secrets", "chmod 600"]);
        let now = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(now, mode, "the mode was changed behind the user's back");
    }
}

#[test]
fn a_session_directory_others_can_write_or_own_is_refused() {
    let scene = Scene::new().logged_in();
    let dir = scene.env.session_dir();
    for mode in [0o777, 0o770, 0o707, 0o720] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        assert_session_refused(&scene, &dir, &["writable by group or others", "chmod 700"]);
        // A login does not write into it either, and opens no browser.
        let output = scene.login(&["--force"]);
        assert_failed_naming(&output, &format!("`{}`", dir.display()), true);
        assert_eq!(scene.browser.opened(), 1, "{output}");
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    if running_as_root() {
        // Owned by someone else: only root can give a directory away.
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
        assert_session_refused(&scene, &dir, &["owned by uid 65534", "KUBECACHEDIR"]);
    } else {
        // An ordinary user's session file in a directory root owns.
        let output = scene.env.oulogin(["token", "--session-file", "/tmp/oulogin-foreign-session.json"]).run();
        assert_failed_naming(&output, "`/tmp`", true);
        assert!(output.stderr.contains("owned by uid 0"), "{output}");
    }
}

#[test]
fn tokens_with_absurd_expiry_times_do_not_crash_token() {
    let scene = Scene::new().logged_in();
    // Far past year 9999, far before the epoch, and the extremes a JSON number reaches.
    for (exp, iat) in [
        (json!(1_000_000_000_000i64), json!(now_secs())),
        (json!(i64::MAX), json!(i64::MIN)),
        (json!(i64::MIN), json!(0)),
        (json!(1e300), json!(-1e300)),
        (json!(-9_000_000_000i64), Value::Null),
    ] {
        let mut claims = scene.fake.k8s_claims(60);
        claims["exp"] = exp.clone();
        claims["iat"] = iat.clone();
        let token = scene.fake.sign(&claims);
        scene.edit_session(|session| session["id_token"] = json!(token));
        let output = scene.token();
        assert!(!output.stderr.contains("panicked"), "exp {exp}, iat {iat}:\n{output}");
        assert!(matches!(output.code(), Some(0 | 1)), "exp {exp}, iat {iat}:\n{output}");
        if output.success() {
            let credential: Value = serde_json::from_str(&output.stdout).unwrap();
            let expiry = credential["status"]["expirationTimestamp"].as_str().unwrap().to_string();
            assert!(expiry.ends_with('Z') && expiry.len() == 20, "exp {exp}: {expiry}");
        }
    }
}

/// `REQUEST_TIMEOUT` in `src/openunison/client.rs`: the bound on every
/// request to OpenUnison (README, "Security notes": at most 30 s).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn every_stalled_call_times_out_within_its_bound_naming_the_call() {
    // The four stalls run at once, so the suite waits for one bound, not four.
    std::thread::scope(|scope| {
        let login_stalls = [
            (Fault::CodeExchangeStall, "/auth/idp/k8s-login-cli/token"),
            (Fault::JwksStall, "/auth/idp/k8s-login-cli/certs"),
            (Fault::BootstrapStall, "/k8slogin/token/user"),
        ];
        for (fault, path) in login_stalls {
            scope.spawn(move || {
                let scene = Scene::new().logged_in();
                let before = scene.files();
                scene.fake.set_fault(fault.clone());
                let output = scene.login(&["--force"]);
                let url = format!("{}{path}", scene.fake.base_url());
                assert_failed_naming(&output, &url, true);
                assert!(output.stderr.contains("timed out"), "{fault:?}:\n{output}");
                assert!(output.elapsed < REQUEST_TIMEOUT + Duration::from_secs(15), "{fault:?}:\n{output}");
                assert_eq!(scene.files(), before, "{fault:?}");
            });
        }
        scope.spawn(|| {
            let scene = scene_due_for_refresh();
            let before = scene.files();
            scene.fake.set_fault(Fault::RefreshStall);
            let output = scene.token();
            assert_refresh_failed_keeping_the_session(&scene, &before, &output, "the refresh timed out");
            assert!(output.elapsed < REQUEST_TIMEOUT + Duration::from_secs(15), "{output}");
        });
    });
}

/// Control sequences a hostile server might send: colour, clear screen, a
/// window-title OSC, and a bidirectional override.
const ESCAPES: &str = "\u{1b}[31m\u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}";

#[track_caller]
fn assert_no_raw_control(output: &Output) {
    let raw = |text: &str| text.chars().any(|c| (c.is_control() && c != '\n' && c != '\t') || c == '\u{202e}');
    assert!(!raw(&output.stderr) && !raw(&output.stdout), "raw control characters reached the terminal:\n{output:?}");
}

#[test]
fn a_display_name_with_terminal_escapes_is_printed_escaped() {
    let mut config = FakeConfig::with_redirect_port(free_port());
    config.display_name = format!("jdoe{ESCAPES}");
    let scene = Scene::with(config);
    let output = scene.login(&[]);
    output.assert_success();
    assert_no_raw_control(&output);
    assert!(output.stderr.contains("jdoe\\u{1b}[31m"), "the name is shown, escaped:\n{output}");
    // Nor does it reach the kubeconfig (the user's name), where kubectl would print it raw.
    let kubeconfig = String::from_utf8(scene.env.read_kubeconfig()).unwrap();
    assert!(
        !kubeconfig.contains('\u{1b}') && !kubeconfig.contains("\\e") && !kubeconfig.contains("\\x1b"),
        "{kubeconfig}"
    );
    assert!(!kubeconfig.contains('\u{202e}') && !kubeconfig.contains("\\u202E"), "{kubeconfig}");
    for args in [vec!["status"], vec!["status", "-o", "json"], vec!["status", "-o", "yaml"], vec!["logout", "--all"]] {
        let output = scene.env.oulogin(&args).run();
        assert!(matches!(output.code(), Some(0 | 1)), "{output}");
        assert_no_raw_control(&output);
    }
}

#[test]
fn a_cluster_name_with_terminal_escapes_is_refused_without_echoing_them() {
    let mut config = FakeConfig::with_redirect_port(free_port());
    config.cluster_name = format!("prod{ESCAPES}");
    let scene = Scene::with(config);
    let output = scene.login(&[]);
    assert_failed_naming(&output, &format!("{}/k8slogin/token/user", scene.fake.base_url()), true);
    assert!(output.stderr.contains("control characters"), "{output}");
    assert_no_raw_control(&output);
    assert_eq!(scene.env.read_kubeconfig(), FOREIGN_KUBECONFIG.as_bytes());
}

#[test]
fn an_error_text_with_terminal_escapes_is_printed_escaped_and_not_served_raw() {
    let scene = Scene::new();
    scene.fake.set_fault(Fault::AuthorizeError(format!("denied{ESCAPES}")));
    let output = scene.login(&[]);
    assert_failed_naming(&output, "denied\\u{1b}[31m", false);
    assert_no_raw_control(&output);
    let outcomes = scene.browser.finished_visits(1, Duration::from_secs(10));
    let page = &outcomes.last().expect("the browser finished its visit").final_body;
    assert!(page.contains("denied") && !page.contains('\u{1b}') && !page.contains('\u{7}'), "{page}");
}
