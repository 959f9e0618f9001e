//! The debug switch: `-v`/`-vv` and `OULOGIN_DEBUG` show the HTTP requests,
//! the TLS trust, the files read and written and `token`'s decisions as
//! `debug:` lines on stderr; without it, nothing of that shows.

use crate::common::Output;

use super::hostile::Scene;

/// The `debug:` lines of a run's stderr.
fn debug_lines(output: &Output) -> Vec<&str> {
    output.stderr.lines().filter(|line| line.starts_with("debug: ")).collect()
}

#[track_caller]
fn assert_line(output: &Output, what: &str, matches: impl Fn(&str) -> bool) {
    assert!(debug_lines(output).iter().any(|line| matches(line)), "no debug line for {what}:\n{output}");
}

#[test]
fn a_verbose_login_shows_requests_trust_and_files_and_a_plain_run_shows_none() {
    let scene = Scene::new();
    let base = scene.fake.base_url();
    let login = scene.login(&["-vv"]);
    login.assert_success();
    let kubeconfig = scene.env.kubeconfig.display().to_string();
    let session = scene.session_file().display().to_string();

    let request = |method: &str, path: &str| {
        let start = format!("debug: HTTP {method} {base}{path} -> 200 OK (");
        move |line: &str| line.starts_with(&start) && line.ends_with(" ms, direct")
    };
    assert_line(
        &login,
        "the discovery request",
        request("GET", "/auth/idp/k8s-login-cli/.well-known/openid-configuration"),
    );
    assert_line(&login, "the code exchange", request("POST", "/auth/idp/k8s-login-cli/token"));
    assert_line(&login, "the bootstrap request", request("GET", "/k8slogin/token/user"));
    assert_line(&login, "the TLS trust", |line| {
        line.contains("TLS trust:")
            && line.contains("system roots")
            && line.contains(&scene.ca_file.display().to_string())
    });
    assert_line(&login, "the callback, its query redacted", |line| {
        line.contains("loopback listener: GET /redirect?") && line.contains("code=…") && line.contains("state=…")
    });
    assert_line(&login, "the kubeconfig read", |line| {
        line.starts_with(&format!("debug: kubeconfig {kubeconfig}: read ("))
    });
    assert_line(&login, "the kubeconfig written", |line| {
        line.starts_with(&format!("debug: kubeconfig {kubeconfig}: written ("))
    });
    assert_line(&login, "the session written", |line| line == format!("debug: session {session}: written"));
    // No query value of any URL: `code=`, `state=` are followed by the ellipsis only.
    for line in debug_lines(&login) {
        for name in ["code=", "state=", "nonce=", "code_challenge="] {
            for (at, _) in line.match_indices(name) {
                assert!(line[at + name.len()..].starts_with('…'), "a query value in {line:?}");
            }
        }
    }

    // A plain `token` on the happy path says nothing at all; `status` and a
    // login without the switch print no `debug:` line.
    let token = scene.token();
    token.assert_success();
    assert_eq!(token.stderr, "", "{token}");
    let status = scene.env.oulogin(["status"]).run();
    let again = scene.login(&[]);
    for output in [&status, &again] {
        assert!(debug_lines(output).is_empty() && !output.stderr.contains("debug:"), "{output}");
    }
}

#[test]
fn oulogin_debug_shows_tokens_decisions_and_the_session_file() {
    let scene = Scene::new().logged_in();
    let session = scene.session_file().display().to_string();
    let cached = scene.env.oulogin(scene.token_args()).env("OULOGIN_DEBUG", "1").run();
    cached.assert_success();
    assert_line(&cached, "the cached decision", |line| line.starts_with("debug: token: the cached token is fresh"));
    assert_line(&cached, "the session read", |line| line.starts_with(&format!("debug: session {session}: read (")));
    assert!(!cached.stderr.contains("HTTP "), "a cached token makes no request:\n{cached}");

    scene.expire_session_token();
    let refreshed = scene.env.oulogin(scene.token_args()).env("OULOGIN_DEBUG", "2").run();
    refreshed.assert_success();
    assert_line(&refreshed, "the stale decision", |line| line.contains("token: the cached token is stale"));
    let refresh = format!("debug: HTTP POST {}/auth/idp/k8sIdp/token -> 200 OK", scene.fake.base_url());
    assert_line(&refreshed, "the refresh request", |line| line.starts_with(&refresh));
    assert_line(&refreshed, "the refresh", |line| line == "debug: token: refreshed");
    assert_line(&refreshed, "the session written", |line| line == format!("debug: session {session}: written"));
    assert_line(&refreshed, "the lock (level 2)", |line| line.starts_with("debug: lock ") && line.ends_with(": taken"));

    // `-v` after the subcommand works as well as before it.
    let flagged = scene.env.oulogin(scene.token_args().into_iter().chain(["-v".to_string()])).run();
    assert_line(&flagged, "the cached decision", |line| line.starts_with("debug: token: the cached token is fresh"));
    // Level 1 leaves out level 2's lock lines.
    assert!(!flagged.stderr.contains(": taken"), "{flagged}");

    // A session that OpenUnison ended, with no browser allowed.
    scene.expire_session_token();
    scene.fake.kill_all_sessions();
    let ended = scene.env.oulogin(scene.token_args()).env("OULOGIN_DEBUG", "1").env("OULOGIN_NO_BROWSER", "1").run();
    ended.assert_code(1);
    assert_line(&ended, "the 401", |line| line.contains("refused the refresh token (401): the session is gone"));
    assert_line(&ended, "the browser refusal", |line| line.contains("token: no browser login: `OULOGIN_NO_BROWSER=1`"));
}
