//! Limits and resilience of `token` and the login: duration flags bounded at
//! the parser, hints whose commands run as printed, a refresh that cannot be
//! saved still answering its caller, Ctrl-C (and SIGTERM, SIGHUP) held while
//! a refresh is on the server, and clock skew between us and OpenUnison.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::token::{just_expired_token, mint_session};
use crate::common::{TestContext, TestEnv, fake_config, login_args, plugin_path};
use crate::fake::openunison::RefreshOutcome;
use crate::fake::{FakeConfig, FakeOpenUnison, now_secs};

#[test]
fn a_huge_timeout_is_a_usage_error_not_a_panic() {
    let env = TestEnv::new();
    for timeout in ["18446744073709551615s", "25h", "0s"] {
        let output = env.oulogin(["--host", "ou.example.com", "--timeout", timeout]).run();
        output.assert_code(2);
        output.assert_stderr_contains("--timeout");
        assert!(output.stderr.contains("out of range") || output.stderr.contains("not a duration"), "{output}");
    }
}

/// A session file for `ou` in the documented format, 0600 in a 0700 directory.
fn write_session(env: &TestEnv, ou: &FakeOpenUnison, fields: Value) -> String {
    let stem = ou.host().replace(':', "_");
    let mut session = json!({
        "version": 1,
        "host": ou.host(),
        "token_endpoint": format!("{}/token", ou.k8s_issuer()),
        "trust": {"ca_file": ou.ca_file(), "ca_pem": ou.ca_pem()},
        "browser": "system",
        "login_timeout_secs": 30,
        "login_port": ou.redirect_port(),
        "id_token": "not-a-jwt",
        "refresh_token": "not-a-refresh-token",
        "cluster": ou.cluster_name(),
        "user": ou.display_name(),
    });
    for (key, value) in fields.as_object().expect("an object") {
        session[key] = value.clone();
    }
    let dir = env.session_dir();
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = dir.join(format!("{stem}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&session).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    stem
}

/// The commands between backticks on the `hint:` line of `stderr`.
fn hint_commands(stderr: &str) -> Vec<String> {
    let hint = stderr.lines().find(|line| line.starts_with("hint: ")).unwrap_or_else(|| panic!("no hint:\n{stderr}"));
    hint.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// Runs `command` in `sh` with a stand-in `kubectl` first on PATH that prints
/// its arguments one per line: what a user pasting the hint would run.
fn run_in_shell(env: &TestEnv, command: &str) -> Vec<String> {
    let bin = env.root().join("stand-in-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let kubectl = bin.join("kubectl");
    std::fs::write(&kubectl, "#!/bin/sh\nprintf '%s\\n' \"$@\"\n").unwrap();
    std::fs::set_permissions(&kubectl, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = env.command("/bin/sh", ["-c", command]).env("PATH", format!("{}:/usr/bin:/bin", bin.display())).run();
    output.assert_success();
    output.stdout.lines().map(str::to_string).collect()
}

#[test]
fn a_login_hint_pasted_into_a_shell_runs_exactly_what_it_says() {
    let TestContext { env, fake: ou, .. } = TestContext::new();
    // A remembered CA path with a space and a `'`, and a browser command of two words.
    let odd_dir = env.root().join("it's a dir");
    std::fs::create_dir_all(&odd_dir).unwrap();
    let ca = odd_dir.join("ca.pem");
    std::fs::copy(ou.ca_file(), &ca).unwrap();
    let stem = write_session(
        &env,
        &ou,
        json!({"trust": {"ca_file": ca}, "browser": {"command": "my-browser --new-window"}, "login_port": 8401}),
    );
    // The refresh token is unknown to the fake: a 401, the session is gone.
    let output = env.oulogin(["token", "--session", &stem]).env("OULOGIN_NO_BROWSER", "1").run();
    output.assert_code(1);
    let commands = hint_commands(&output.stderr);
    assert_eq!(commands.len(), 1, "{output}");
    let expected = [
        "oulogin",
        "--host",
        &ou.host(),
        "--force",
        "--certificate-authority",
        &ca.display().to_string(),
        "--port",
        "8401",
        "--browser-command",
        "my-browser --new-window",
    ];
    assert_eq!(run_in_shell(&env, &commands[0]), expected, "{output}");

    // A host from a damaged kubeconfig, echoed by the missing-session hint.
    let host = "ou.example.com;echo${IFS}injected";
    let output = env.oulogin(["token", "--session", "nothing-here", "--host", host]).run();
    output.assert_code(1);
    let commands = hint_commands(&output.stderr);
    assert_eq!(run_in_shell(&env, &commands[0]), ["oulogin", "--host", host], "{output}");
}

/// A live session at the fake whose id_token has just expired; its stem.
fn stale_session(env: &TestEnv, ou: &FakeOpenUnison) -> String {
    let (_, refresh_token) = mint_session(ou);
    write_session(env, ou, json!({"id_token": just_expired_token(ou), "refresh_token": refresh_token}))
}

fn exec_info() -> String {
    json!({"kind": "ExecCredential", "apiVersion": "client.authentication.k8s.io/v1", "spec": {"interactive": false}})
        .to_string()
}

fn credential_token(stdout: &str) -> String {
    let credential: Value = serde_json::from_str(stdout).unwrap_or_else(|err| panic!("{err}: {stdout}"));
    assert_eq!(credential["kind"], "ExecCredential", "{stdout}");
    credential["status"]["token"].as_str().expect("a token").to_string()
}

#[test]
fn a_refresh_that_cannot_be_saved_still_answers_this_call_and_says_the_session_is_lost() {
    let TestContext { env, fake: ou, .. } = TestContext::new();
    let stem = stale_session(&env, &ou);
    let session_file = env.session_dir().join(format!("{stem}.json"));
    let before = std::fs::read(&session_file).unwrap();
    // A disk that takes no more bytes, which root cannot bypass (a read-only
    // bind mount or `chattr +i` need privileges or filesystems a CI box may
    // lack; `chmod` does not stop root): a file size limit of 0 makes every
    // write to a file fail with EFBIG, while pipes (stdout, stderr) and the
    // network are untouched. SIGXFSZ is ignored so that the write fails
    // instead of killing the process.
    let script = r#"trap '' XFSZ; ulimit -f 0 && exec "$0" "$@""#;
    let output = env
        .command("/bin/sh", ["-c", script, &plugin_path().display().to_string(), "token", "--session", &stem])
        .env("KUBERNETES_EXEC_INFO", exec_info())
        .env("OULOGIN_NO_BROWSER", "1")
        .run();
    output.assert_success();
    let token = credential_token(&output.stdout);
    assert!(ou.issued_tokens().contains(&token), "not the refreshed id_token:\n{output}");
    assert_eq!(ou.successful_refreshes(), 1, "{output}");
    output.assert_stderr_contains("could not be saved");
    output.assert_stderr_contains("the next one will need a login");
    assert_eq!(std::fs::read(&session_file).unwrap(), before, "the session file is untouched");
    // The new token works at the API server.
    let api = crate::fake::TestClient::new(&[&std::fs::read_to_string(ou.api_ca_file()).unwrap()]);
    let answer = api.get(&format!("{}/version", ou.api_server_url()), &[("authorization", &format!("Bearer {token}"))]);
    assert_eq!(answer.unwrap().status, 200);

    // As said: the next call finds the spent refresh token and needs a login.
    let next = env.oulogin(["token", "--session", &stem]).env("OULOGIN_NO_BROWSER", "1").run();
    next.assert_code(1);
    next.assert_stderr_contains("has ended");
}

/// The refresh token a session file holds now.
fn stored_refresh_token(env: &TestEnv, stem: &str) -> String {
    let text = std::fs::read_to_string(env.session_dir().join(format!("{stem}.json"))).unwrap();
    serde_json::from_str::<Value>(&text).unwrap()["refresh_token"].as_str().unwrap().to_string()
}

#[test]
fn ctrl_c_sigterm_or_sighup_during_a_refresh_wait_for_the_save_and_the_session_survives() {
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
        let TestContext { env, fake: ou, .. } = TestContext::new();
        let stem = stale_session(&env, &ou);
        let spent = stored_refresh_token(&env, &stem);
        // The refresh stays on the server until the signal has been sent.
        ou.hold_refreshes(true);
        let token = || env.oulogin(["token", "--session", &stem]).env("KUBERNETES_EXEC_INFO", exec_info());
        let mut running = token().env("OULOGIN_NO_BROWSER", "1").spawn();
        let deadline = Instant::now() + Duration::from_secs(20);
        while ou.counters().refresh_requests == 0 && running.is_running() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(ou.counters().refresh_requests, 1, "the refresh never reached the server");
        // kill(2) returns once the signal is pending at the plugin; only then does the server answer.
        running.signal(signal);
        ou.hold_refreshes(false);
        let output = running.wait(Duration::from_secs(30));
        output.assert_code(code);
        assert!(output.stdout.is_empty(), "{output}");
        assert_eq!(ou.successful_refreshes(), 1, "{output}");
        assert_ne!(stored_refresh_token(&env, &stem), spent, "the rotated tokens were saved before exiting:\n{output}");

        // The next call uses the saved token: no refresh, no login.
        let next = token().env("OULOGIN_NO_BROWSER", "1").run();
        next.assert_success();
        assert!(ou.issued_tokens().contains(&credential_token(&next.stdout)), "{next}");
        assert_eq!(ou.counters().refresh_requests, 1, "{next}");
        assert_eq!(ou.sessions_minted(), 1, "no new login: {next}");
    }
}

#[test]
fn ctrl_c_during_the_reuse_checks_refresh_ends_the_login_instead_of_opening_the_browser() {
    let TestContext { env, fake: ou, browser } =
        TestContext::with_config(FakeConfig { token_lifetime_secs: 3, ..fake_config() });
    env.oulogin(login_args(&ou, &browser)).run().assert_success();
    // Past the token's margin (1 s of 3): the reuse check has to refresh.
    std::thread::sleep(Duration::from_millis(2_500));
    ou.hold_refreshes(true);
    let mut running = env.oulogin(login_args(&ou, &browser)).spawn();
    let deadline = Instant::now() + Duration::from_secs(20);
    while ou.counters().refresh_requests == 0 && running.is_running() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(ou.counters().refresh_requests, 1, "the reuse check never refreshed");
    running.signal(libc::SIGINT);
    ou.hold_refreshes(false);
    let output = running.wait(Duration::from_secs(30));
    output.assert_code(130);
    assert_eq!(browser.opened(), 1, "Ctrl-C went on to a browser login:\n{output}");
    assert_eq!(ou.successful_refreshes(), 1, "{output}");
}

/// Token lifetime for the skew tests: short, so that a test crosses expiries
/// in seconds, yet long enough that the estimate of the server's clock (off
/// by up to a second plus the round trip, `Date` having whole seconds) and
/// whole-second `iat` and `expirationTimestamp` leave a clear gap: margin 3 s,
/// a token is handed out for at least 3 s of its 9 and usually 5 to 6.
const SKEW_TOKEN_LIFETIME_SECS: u64 = 9;

/// A login and back-to-back real kubectl requests against a fake OpenUnison
/// (and API server) whose clock is `offset_secs` off ours, across two expiries.
fn works_across_expiries_with_the_server_clock_off_by(offset_secs: i64) {
    let TestContext { env, fake: ou, browser } = TestContext::with_config(FakeConfig {
        token_lifetime_secs: SKEW_TOKEN_LIFETIME_SECS,
        clock_offset_secs: offset_secs,
        ..fake_config()
    });
    // The fake really is that far off, in its `Date` header too.
    let client = crate::fake::TestClient::new(&[&ou.ca_pem()]);
    let answer = client.get(&format!("{}/.well-known/openid-configuration", ou.k8s_issuer()), &[]).unwrap();
    let date = httpdate::parse_http_date(answer.header("date").expect("a Date header")).unwrap();
    let shown = date.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    assert!((shown - now_secs() - offset_secs).abs() <= 2, "Date {shown} for an offset of {offset_secs} s");

    env.oulogin(login_args(&ou, &browser)).run().assert_success();
    // `status` counts the token's lifetime from its arrival too, not `exp`
    // against our clock (which would be ten minutes off either way).
    let status = env.oulogin(["status", "-o", "json"]).run();
    status.assert_success();
    let left =
        serde_json::from_str::<serde_json::Value>(&status.stdout).unwrap()["contexts"][0]["tokenExpiresInSeconds"]
            .as_i64()
            .unwrap_or_else(|| panic!("{status}"));
    assert!(
        (0..=SKEW_TOKEN_LIFETIME_SECS as i64).contains(&left),
        "{left} s left of a {SKEW_TOKEN_LIFETIME_SECS} s token: {status}"
    );

    let started = Instant::now();
    let mut runs = 0;
    // Two refreshes are two expiries crossed; one request more uses the last token.
    while ou.successful_refreshes() < 2 || runs == 0 {
        assert!(runs < 400 && started.elapsed() < Duration::from_secs(60), "too slow: {runs} runs");
        env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).run().assert_success();
        runs += 1;
    }
    env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).run().assert_success();
    let context = format!("{runs} kubectl runs in {:?}; events: {:#?}", started.elapsed(), ou.events());
    assert_eq!(ou.api().unauthorized_requests(), 0, "no 401 at the API server: {context}");
    assert_eq!(ou.failed_refreshes(), 0, "{context}");
    assert_eq!((ou.sessions_minted(), browser.opened()), (1, 1), "one login only: {context}");
    // One refresh per token lifetime: never a second one while a token is
    // still handed out (at least 3 s of its 9, less the round trip).
    let rotations: Vec<SystemTime> = ou
        .refresh_events()
        .iter()
        .filter(|event| event.outcome == RefreshOutcome::Rotated)
        .map(|event| event.at)
        .collect();
    for pair in rotations.windows(2) {
        let gap = pair[1].duration_since(pair[0]).unwrap_or_default();
        assert!(gap >= Duration::from_secs(2), "two refreshes {gap:?} apart: {context}");
    }
}

#[test]
fn the_server_clock_ten_minutes_ahead_still_logs_in_refreshes_once_per_lifetime_and_gets_no_401() {
    works_across_expiries_with_the_server_clock_off_by(600);
}

#[test]
fn the_server_clock_ten_minutes_behind_still_logs_in_refreshes_once_per_lifetime_and_gets_no_401() {
    works_across_expiries_with_the_server_clock_off_by(-600);
}
