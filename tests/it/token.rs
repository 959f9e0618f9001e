//! `kubectl oulogin token` against the strict fake OpenUnison with grace period
//! 0: many processes through one expiry share one refresh, a killed lock holder
//! blocks nobody, a re-run by the same client after a 401 gets a new token,
//! the ExecCredential is in the version asked for, and the happy path is
//! silent. Sessions are written directly in the documented format, with
//! tokens minted through the fake's own endpoints.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{Output, TestContext, plugin_path};
use crate::fake::browser::Browser;
use crate::fake::{BrowserMode, FakeOpenUnison, TestClient, now_secs};

const V1: &str = "client.authentication.k8s.io/v1";
const V1BETA1: &str = "client.authentication.k8s.io/v1beta1";

fn exec_info(version: &str) -> String {
    json!({"kind": "ExecCredential", "apiVersion": version, "spec": {"interactive": false}}).to_string()
}

/// Logs in at the fake by hand (authorize, code exchange, bootstrap) and
/// returns the new k8sIdp session's id_token and refresh token.
pub(super) fn mint_session(ou: &FakeOpenUnison) -> (String, String) {
    let ca = ou.ca_pem();
    let redirect_uri = ou.redirect_uri();
    let mut authorize = url::Url::parse(&format!("{}/auth", ou.cli_issuer())).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "cli-local")
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", "test-state")
        .append_pair("nonce", "test-nonce");
    let loopback = url::Url::parse(&Browser::new(&[&ca]).loopback_redirect(authorize.as_str())).unwrap();
    let code = loopback.query_pairs().find(|(name, _)| name == "code").expect("a code").1.into_owned();
    let client = TestClient::new(&[&ca]);
    let exchanged = client
        .post_form(
            &format!("{}/token", ou.cli_issuer()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", "cli-local"),
                ("redirect_uri", &redirect_uri),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(exchanged.status, 200, "{}", exchanged.text());
    let cli_token = exchanged.json()["id_token"].as_str().unwrap().to_string();
    let bootstrap = client
        .get(&format!("{}/k8slogin/token/user", ou.base_url()), &[("authorization", &format!("Bearer {cli_token}"))])
        .unwrap()
        .json();
    let tokens = &bootstrap["token"];
    (tokens["id_token"].as_str().unwrap().to_string(), tokens["refresh_token"].as_str().unwrap().to_string())
}

/// A k8sIdp id_token signed by the fake whose expiry has just passed.
pub(super) fn just_expired_token(ou: &FakeOpenUnison) -> String {
    let mut claims = ou.k8s_claims(60);
    claims["iat"] = json!(now_secs() - 61);
    claims["exp"] = json!(now_secs() - 1);
    ou.sign(&claims)
}

/// What the token tests do with the shared context: sessions written as the
/// session format defines (0600 in a 0700 directory), and `token` runs.
impl TestContext {
    fn write_session(&self, id_token: &str, refresh_token: &str, browser: Value) {
        self.write_session_with_timeout(id_token, refresh_token, browser, 30);
    }

    fn write_session_with_timeout(&self, id_token: &str, refresh_token: &str, browser: Value, login_timeout_secs: u64) {
        let session = json!({
            "version": 1,
            "host": self.fake.host(),
            "token_endpoint": format!("{}/token", self.fake.k8s_issuer()),
            "trust": {"ca_file": self.fake.ca_file(), "ca_pem": self.fake.ca_pem()},
            "browser": browser,
            "login_timeout_secs": login_timeout_secs,
            "login_port": self.fake.redirect_port(),
            "id_token": id_token,
            "refresh_token": refresh_token,
            "cluster": self.fake.cluster_name(),
            "user": self.fake.display_name(),
        });
        write_private(&self.session_file(), &serde_json::to_vec_pretty(&session).unwrap());
    }

    /// A live session at the fake whose id_token has just expired.
    fn with_expired_session(self) -> TestContext {
        let (_, refresh_token) = mint_session(&self.fake);
        self.write_session(&just_expired_token(&self.fake), &refresh_token, json!("system"));
        self
    }

    /// A live session at the fake with a fresh one-minute id_token.
    fn with_fresh_session(self) -> (TestContext, String) {
        let (id_token, refresh_token) = mint_session(&self.fake);
        self.write_session(&id_token, &refresh_token, json!("system"));
        (self, id_token)
    }

    /// `kubectl-oulogin token …` run directly by the test process (its parent).
    fn token(&self, version: &str) -> Output {
        self.env.oulogin(self.token_args()).env("KUBERNETES_EXEC_INFO", exec_info(version)).run()
    }

    /// The same through `sh`, so that each call has a parent of its own, as
    /// each kubectl process is the parent of its plugin run.
    fn token_via_own_parent(&self) -> crate::common::Running {
        let mut args =
            vec!["-c".to_string(), "\"$@\"; exit $?".into(), "sh".into(), plugin_path().display().to_string()];
        args.extend(self.token_args());
        self.env.command("/bin/sh", args).env("KUBERNETES_EXEC_INFO", exec_info(V1)).spawn()
    }

    /// A `token` run that holds the session's lock for a refresh the fake
    /// answers after `delay`, once its lock file says so.
    fn refresh_holder(&self, delay: Duration) -> crate::common::Running {
        self.fake.set_refresh_delay(delay);
        let holder = self.env.oulogin(self.token_args()).env("KUBERNETES_EXEC_INFO", exec_info(V1)).spawn();
        let lock_file = self.env.session_dir().join(format!("{}.lock", self.stem()));
        let holding = format!("{} refresh", holder.pid());
        let deadline = Instant::now() + Duration::from_secs(20);
        while !std::fs::read_to_string(&lock_file).unwrap_or_default().contains(&holding) {
            assert!(Instant::now() < deadline, "the holder never started its refresh");
            std::thread::sleep(Duration::from_millis(20));
        }
        holder
    }

    fn stored(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.session_file()).unwrap()).unwrap()
    }

    fn stored_id_token(&self) -> String {
        self.stored()["id_token"].as_str().unwrap().to_string()
    }
}

fn write_private(path: &Path, bytes: &[u8]) {
    let dir = path.parent().unwrap();
    std::fs::create_dir_all(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The one ExecCredential document a successful run printed.
fn credential(output: &Output) -> Value {
    output.assert_success();
    let mut documents = serde_json::Deserializer::from_str(&output.stdout).into_iter::<Value>();
    let document = documents.next().expect("one document").unwrap_or_else(|err| panic!("not JSON ({err}):\n{output}"));
    assert!(documents.next().is_none(), "more than one document on stdout:\n{output}");
    document
}

fn token_of(output: &Output) -> String {
    credential(output)["status"]["token"].as_str().unwrap_or_else(|| panic!("no token:\n{output}")).to_string()
}

#[test]
fn twenty_four_processes_through_one_expiry_share_one_refresh() {
    let ctx = TestContext::new().with_expired_session();
    ctx.fake.set_refresh_delay(Duration::from_millis(300));
    let running: Vec<_> = (0..24).map(|_| ctx.token_via_own_parent()).collect();
    let outputs: Vec<Output> = running.into_iter().map(|run| run.wait(Duration::from_secs(60))).collect();
    let tokens: Vec<String> = outputs.iter().map(token_of).collect();
    assert_eq!(ctx.fake.successful_refreshes(), 1, "events: {:#?}", ctx.fake.events());
    assert_eq!(ctx.fake.failed_refreshes(), 0, "events: {:#?}", ctx.fake.events());
    let stored = ctx.stored_id_token();
    assert!(tokens.iter().all(|token| *token == stored), "every process hands out the one refreshed token");
}

#[test]
fn a_lock_holder_killed_mid_refresh_does_not_hold_up_the_next_call() {
    let ctx = TestContext::new().with_expired_session();
    let holder = ctx.refresh_holder(Duration::from_secs(30));
    holder.kill();
    ctx.fake.set_refresh_delay(Duration::ZERO);
    let started = Instant::now();
    let output = ctx.token(V1);
    let token = token_of(&output);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}:\n{output}", started.elapsed());
    assert_eq!(token, ctx.stored_id_token());
    assert!(output.stderr.is_empty(), "no wait to report:\n{output}");
}

#[test]
fn the_same_client_asking_again_for_a_fresh_token_gets_a_new_one() {
    let (ctx, minted) = TestContext::new().with_fresh_session();
    let first = token_of(&ctx.token(V1));
    assert_eq!(first, minted);
    assert_eq!(ctx.fake.successful_refreshes(), 0);
    // Same parent (this test process), same still-fresh token: client-go's re-run after a 401.
    let second = token_of(&ctx.token(V1));
    assert_eq!(ctx.fake.successful_refreshes(), 1);
    assert_ne!(second, first);
    assert_eq!(second, ctx.stored_id_token());
    // Other clients sharing that token are normal and cost nothing.
    for _ in 0..3 {
        let output = ctx.token_via_own_parent().wait(Duration::from_secs(30));
        assert_eq!(token_of(&output), second);
    }
    assert_eq!(ctx.fake.successful_refreshes(), 1);
}

#[test]
fn the_credential_comes_in_the_version_asked_for() {
    let (ctx, minted) = TestContext::new().with_fresh_session();
    let v1 = credential(&ctx.token(V1));
    assert_eq!(v1["kind"], "ExecCredential");
    assert_eq!(v1["apiVersion"], V1);
    assert_eq!(v1["spec"], json!({"interactive": false}));
    assert_eq!(v1["status"]["token"], minted.as_str());
    // One-minute tokens: reported as expiring 10 s before their `exp`.
    let claims: Value = {
        use base64::Engine;
        let payload = minted.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let exp = claims["exp"].as_i64().unwrap();
    let expected = humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs((exp - 10) as u64));
    assert_eq!(v1["status"]["expirationTimestamp"], expected.to_string());

    let run = |exec_info: Option<&str>| {
        let mut args = ctx.token_args();
        args.insert(0, "-c".into());
        args.insert(1, "\"$@\"; exit $?".into());
        args.insert(2, "sh".into());
        args.insert(3, plugin_path().display().to_string());
        let command = ctx.env.command("/bin/sh", args);
        match exec_info {
            Some(info) => command.env("KUBERNETES_EXEC_INFO", info).run(),
            None => command.run(),
        }
    };
    assert_eq!(credential(&run(Some(&exec_info(V1BETA1))))["apiVersion"], V1BETA1);
    assert_eq!(credential(&run(None))["apiVersion"], V1BETA1, "no KUBERNETES_EXEC_INFO: v1beta1");
    let unknown = run(Some(&exec_info("client.authentication.k8s.io/v1alpha1")));
    unknown.assert_code(1).assert_stderr_contains("v1alpha1");
    assert!(unknown.stdout.is_empty(), "{unknown}");
    assert_eq!(ctx.fake.successful_refreshes(), 0);
}

#[test]
fn the_happy_path_writes_nothing_to_stderr() {
    let ctx = TestContext::new().with_expired_session();
    let refreshed = ctx.token(V1);
    token_of(&refreshed);
    assert_eq!(ctx.fake.successful_refreshes(), 1);
    assert!(refreshed.stderr.is_empty(), "refresh:\n{refreshed}");
    let cached = ctx.token_via_own_parent().wait(Duration::from_secs(30));
    token_of(&cached);
    assert!(cached.stderr.is_empty(), "cached:\n{cached}");
    assert_eq!(ctx.fake.successful_refreshes(), 1);
}

#[test]
fn a_missing_session_names_the_file_and_the_login_command() {
    let ctx = TestContext::new();
    let output = ctx.token(V1);
    output.assert_code(1);
    assert!(output.stdout.is_empty(), "{output}");
    output.assert_stderr_contains(&format!("{}.json", ctx.stem()));
    output.assert_stderr_contains(&format!("kubectl oulogin --host {}", ctx.fake.host()));
}

#[test]
fn a_gone_session_with_browsers_forbidden_names_the_login_command_at_once() {
    let ctx = TestContext::new().with_expired_session();
    ctx.fake.kill_all_sessions();
    let started = Instant::now();
    let output = ctx
        .env
        .oulogin(ctx.token_args())
        .env("KUBERNETES_EXEC_INFO", exec_info(V1))
        .env("OULOGIN_NO_BROWSER", "1")
        .run();
    output.assert_code(1);
    assert!(started.elapsed() < Duration::from_secs(5), "{output}");
    assert!(output.stdout.is_empty(), "{output}");
    output.assert_stderr_contains("OULOGIN_NO_BROWSER");
    // The port and CA file the session was created with are repeated.
    output.assert_stderr_contains(&format!(
        "kubectl oulogin --host {} --force --certificate-authority {} --port {}",
        ctx.fake.host(),
        ctx.fake.ca_file().display(),
        ctx.fake.redirect_port()
    ));
}

#[test]
fn the_session_file_must_be_private() {
    let (ctx, _) = TestContext::new().with_fresh_session();
    std::fs::set_permissions(ctx.session_file(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let output = ctx.token(V1);
    output.assert_code(1).assert_stderr_contains(&ctx.session_file().display().to_string());
    assert!(output.stdout.is_empty(), "{output}");
}

/// A kubeconfig whose only user is our exec stanza for the ctx's session.
fn write_exec_kubeconfig(ctx: &TestContext) {
    let kubeconfig = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": {"server": ctx.fake.api_server_url(), "certificate-authority": ctx.fake.api_ca_file()}}],
        "users": [{"name": "jdoe", "user": {"exec": {
            "apiVersion": V1,
            "command": "kubectl-oulogin",
            "args": ctx.token_args(),
            "interactiveMode": "Never",
            "provideClusterInfo": false,
        }}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "jdoe"}}],
        "current-context": "fake",
    });
    std::fs::write(&ctx.env.kubeconfig, serde_json::to_vec_pretty(&kubeconfig).unwrap()).unwrap();
}

#[test]
fn kubectl_through_the_exec_stanza_refreshes_once_per_expiry() {
    let ctx = TestContext::with_token_lifetime(4).with_expired_session();
    write_exec_kubeconfig(&ctx);
    // 4 s tokens are handed out until 2 s before `exp` (margin 1.33 s, rounded
    // down to whole seconds), so each serves about 2 s.
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut runs = 0u64;
    while Instant::now() < deadline {
        ctx.kubectl_get().assert_success();
        runs += 1;
        std::thread::sleep(Duration::from_millis(250));
    }
    let refreshes = ctx.fake.successful_refreshes();
    assert!((3..=6).contains(&refreshes), "{refreshes} refreshes for {runs} kubectl runs over 8 s");
    assert!(runs > refreshes + 3, "{refreshes} refreshes for {runs} kubectl runs: not one per run");
    assert_eq!(ctx.fake.failed_refreshes(), 0);
}

#[test]
fn kubectl_rerunning_the_plugin_after_a_401_gets_a_new_token() {
    let ctx = TestContext::new().with_expired_session();
    write_exec_kubeconfig(&ctx);
    ctx.kubectl_get().assert_success();
    assert_eq!(ctx.fake.successful_refreshes(), 1);
    ctx.kubectl_get().assert_success();
    assert_eq!(ctx.fake.successful_refreshes(), 1, "a fresh token is shared by other kubectl processes");
    // The API server now rejects the still-fresh token: client-go runs the
    // plugin again, which must not hand the same token back.
    ctx.fake.api().set_reject_all(true);
    let rejected = ctx.kubectl_get();
    assert!(!rejected.success());
    assert!(ctx.fake.successful_refreshes() >= 2, "a re-run after a 401 refreshes:\n{rejected}");
    ctx.fake.api().set_reject_all(false);
    ctx.kubectl_get().assert_success();
}

#[test]
fn a_session_killed_on_the_server_is_brought_back_by_one_browser_login_for_all_waiters() {
    let ctx = TestContext::new();
    let browser = &ctx.browser;
    let (_, refresh_token) = mint_session(&ctx.fake);
    ctx.write_session(&just_expired_token(&ctx.fake), &refresh_token, json!({"command": browser.command()}));
    ctx.fake.kill_all_sessions();
    let minted_before = ctx.fake.sessions_minted();

    let running: Vec<_> = (0..10).map(|_| ctx.token_via_own_parent()).collect();
    let outputs: Vec<Output> = running.into_iter().map(|run| run.wait(Duration::from_secs(60))).collect();
    let tokens: Vec<String> = outputs.iter().map(token_of).collect();
    assert_eq!(browser.opened(), 1, "one browser login for everyone");
    assert_eq!(ctx.fake.sessions_minted(), minted_before + 1);
    // One 401, asked once more before it counts (a refresh 401 may be transient).
    assert_eq!(ctx.fake.failed_refreshes(), 2, "only the first process found the session gone");
    let stored = ctx.stored();
    assert!(tokens.iter().all(|token| token == stored["id_token"].as_str().unwrap()));
    assert_ne!(stored["refresh_token"], refresh_token.as_str(), "the session was replaced in place");
    assert!(!ctx.env.session_dir().join(format!("{}.cooldown", ctx.stem())).exists());
}

#[test]
fn an_abandoned_browser_login_makes_later_calls_fail_fast_without_a_browser() {
    let ctx = TestContext::new();
    let browser = ctx.browser(BrowserMode::Ignore);
    let (_, refresh_token) = mint_session(&ctx.fake);
    ctx.write_session_with_timeout(
        &just_expired_token(&ctx.fake),
        &refresh_token,
        json!({"command": browser.command()}),
        2,
    );
    ctx.fake.kill_all_sessions();

    let abandoned = ctx.token(V1);
    abandoned.assert_code(1);
    assert!(abandoned.stdout.is_empty(), "{abandoned}");
    assert_eq!(browser.opened(), 1);
    for _ in 0..3 {
        let started = Instant::now();
        let output = ctx.token_via_own_parent().wait(Duration::from_secs(30));
        output.assert_code(1);
        assert!(started.elapsed() < Duration::from_secs(3), "took {:?}:\n{output}", started.elapsed());
        output.assert_stderr_contains("failed or was abandoned recently");
        output.assert_stderr_contains(&format!("kubectl oulogin --host {} --force ", ctx.fake.host()));
        output.assert_stderr_contains(" --port ");
        assert!(output.stdout.is_empty(), "{output}");
    }
    assert_eq!(browser.opened(), 1, "no new browser tab during the cool-down");
}

#[test]
fn a_waiter_says_once_what_it_waits_for_and_then_reuses_the_result() {
    let ctx = TestContext::new().with_expired_session();
    let holder = ctx.refresh_holder(Duration::from_millis(2500));
    let holder_pid = holder.pid();
    let waiter = ctx.token_via_own_parent().wait(Duration::from_secs(60));
    let holder = holder.wait(Duration::from_secs(60));
    assert_eq!(token_of(&waiter), token_of(&holder));
    assert_eq!(ctx.fake.successful_refreshes(), 1);
    let expected = format!("waiting for process {holder_pid} (refresh)");
    assert_eq!(waiter.stderr.lines().count(), 1, "one line:\n{waiter}");
    waiter.assert_stderr_contains(&expected);
}
