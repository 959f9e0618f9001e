//! Whole logins against a small fake `cli-local` issuer, with `curl` as the
//! browser (it follows the redirect chain like a browser with a session would).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use super::*;
use crate::openunison::jwt::tests::TestKey;
use crate::openunison::testing::{Reply, Seen, TestServer, self_signed};

/// How the fake's authorization endpoint answers.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AuthMode {
    /// Redirect back with a code and the state.
    Code,
    /// Redirect back with `error=access_denied` and the state.
    #[cfg_attr(windows, allow(dead_code, reason = "its tests browse with curl"))]
    Deny,
    /// Mint an id_token with another nonce.
    #[cfg_attr(windows, allow(dead_code, reason = "its tests browse with curl"))]
    WrongNonce,
}

struct Fake {
    #[cfg_attr(windows, allow(dead_code, reason = "its tests browse with curl"))]
    server: TestServer,
    host: Host,
    ca_file: tempfile::NamedTempFile,
}

fn query_value(path: &str, name: &str) -> Option<String> {
    let query = path.split_once('?')?.1;
    url::form_urlencoded::parse(query.as_bytes()).find(|(key, _)| key == name).map(|(_, value)| value.into_owned())
}

fn fake(mode: AuthMode, listener_port: u16) -> Fake {
    let cert = self_signed(&["127.0.0.1"]);
    let base = Arc::new(Mutex::new(String::new()));
    let nonce = Arc::new(Mutex::new(String::new()));
    let (base_seen, nonce_seen) = (base.clone(), nonce.clone());
    let key = TestKey::a();
    let jwks = json!({"keys": [key.jwk()]}).to_string();
    let server = TestServer::start(
        &cert,
        Arc::new(move |seen: &Seen| {
            let base = base_seen.lock().unwrap().clone();
            let path = seen.path.split('?').next().unwrap_or("");
            match (seen.method.as_str(), path) {
                ("GET", "/cli-login") => Reply::Headers {
                    status: 302,
                    headers: vec![("location".into(), format!("http://127.0.0.1:{listener_port}"))],
                },
                ("GET", "/auth/idp/k8s-login-cli/auth") => {
                    *nonce_seen.lock().unwrap() = query_value(&seen.path, "nonce").unwrap_or_default();
                    let redirect = query_value(&seen.path, "redirect_uri").unwrap_or_default();
                    let state = query_value(&seen.path, "state").unwrap_or_default();
                    let answer = match mode {
                        AuthMode::Deny => "error=access_denied".to_string(),
                        _ => "code=THE-CODE".to_string(),
                    };
                    Reply::Headers {
                        status: 302,
                        headers: vec![("location".into(), format!("{redirect}?{answer}&state={state}"))],
                    }
                }
                ("POST", "/auth/idp/k8s-login-cli/token") => {
                    let now =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
                    let nonce = match mode {
                        AuthMode::WrongNonce => "not-the-nonce".to_string(),
                        _ => nonce_seen.lock().unwrap().clone(),
                    };
                    let id_token = TestKey::a().id_token(&json!({"iss": format!("{base}/auth/idp/k8s-login-cli"),
                        "aud": "cli-local", "exp": now + 60, "iat": now, "nonce": nonce, "sub": "jdoe"}));
                    Reply::json(200, json!({"id_token": id_token}).to_string())
                }
                ("GET", "/auth/idp/k8s-login-cli/.well-known/openid-configuration") => {
                    Reply::json(200, json!({"jwks_uri": format!("{base}/auth/idp/k8s-login-cli/certs")}).to_string())
                }
                ("GET", "/auth/idp/k8s-login-cli/certs") => Reply::json(200, jwks.clone()),
                ("GET", "/k8slogin/token/user") => Reply::json(
                    200,
                    json!({"displayName": "jdoe", "token": {"kubectl Command": "kubernetes",
                        "kubectl Windows Command": "https://api.example.com:6443",
                        "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE4MDAwMDAwNjB9.c2ln", "refresh_token": "rt"}})
                    .to_string(),
                ),
                ("GET", "/auth/forms/cli-login-finished.jsp") => Reply::html(200, "Login Complete"),
                _ => Reply::html(404, "nope"),
            }
        }),
    );
    *base.lock().unwrap() = format!("https://127.0.0.1:{}", server.addr.port());
    let host = Host::parse(&format!("127.0.0.1:{}", server.addr.port())).unwrap();
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut ca_file, cert.cert_pem.as_bytes()).unwrap();
    Fake { server, host, ca_file }
}

/// Whether a login listener still answers on `port` (the port may since have
/// gone to another test's server, which does not count).
#[cfg(unix)]
fn login_listener_on(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = write!(stream, "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("k8s-login-cli")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn request(fake: &Fake, port: u16, browser: BrowserChoice, lock_dir: &std::path::Path) -> LoginRequest {
    LoginRequest {
        host: fake.host.clone(),
        trust: TrustConfig { ca_file: Some(fake.ca_file.path().to_path_buf()), ca_pem: None, ca_data: None },
        browser,
        port,
        timeout: Duration::from_secs(20),
        lock_dir: lock_dir.to_path_buf(),
    }
}

/// `curl` following redirects, trusting the fake's certificate; `before` runs
/// first. The tests that browse with `curl` and `sh` run on Unix only: a
/// Windows test run (under wine) has neither.
#[cfg(unix)]
fn curl_browser(fake: &Fake, before: &str) -> BrowserChoice {
    let ca = fake.ca_file.path().display();
    BrowserChoice::Command(format!(
        "sh -c '{before} curl -sS -L --max-redirs 10 --max-time 15 --cacert {ca} -o /dev/null \"$1\"' browser"
    ))
}

#[cfg(unix)]
#[test]
fn a_login_follows_the_browser_through_to_the_bootstrap() {
    let port = free_port();
    let fake = fake(AuthMode::Code, port);
    let dir = tempfile::tempdir().unwrap();
    // A foreign callback first: refused without ending the login.
    let foreign = format!("curl -sS -o /dev/null \"http://127.0.0.1:{port}/redirect?code=x&state=forged\";");
    let bootstrap = browser_login(&request(&fake, port, curl_browser(&fake, &foreign), dir.path())).unwrap();
    assert_eq!(bootstrap.cluster_name, "kubernetes");
    assert_eq!(bootstrap.display_name, "jdoe");
    // The browser follows the final redirect after the login has returned.
    let finished = Instant::now();
    while fake.server.requests().len() < 7 && finished.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let seen = fake.server.requests();
    let paths: Vec<&str> = seen.iter().map(|seen| seen.path.split('?').next().unwrap()).collect();
    assert_eq!(
        paths,
        [
            // Checked before the browser opens, and not fetched again.
            "/auth/idp/k8s-login-cli/.well-known/openid-configuration",
            "/cli-login",
            "/auth/idp/k8s-login-cli/auth",
            "/auth/idp/k8s-login-cli/token",
            "/auth/idp/k8s-login-cli/certs",
            "/k8slogin/token/user",
            "/auth/forms/cli-login-finished.jsp",
        ]
    );
    // PKCE S256 was sent, and its verifier came with the code.
    let auth = &seen[2].path;
    assert_eq!(query_value(auth, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(query_value(auth, "scope").as_deref(), Some("openid profile email"));
    let challenge = query_value(auth, "code_challenge").unwrap();
    let verifier = url::form_urlencoded::parse(seen[3].body.as_bytes())
        .find(|(key, _)| key == "code_verifier")
        .map(|(_, value)| value.into_owned())
        .unwrap();
    assert_eq!(secrets::pkce_challenge(&verifier), challenge);
    // The listener is gone once the login is over.
    assert!(!login_listener_on(port));
}

#[cfg(unix)]
#[test]
fn a_refusal_from_openunison_ends_the_login_with_its_error() {
    let port = free_port();
    let fake = fake(AuthMode::Deny, port);
    let dir = tempfile::tempdir().unwrap();
    let err = browser_login(&request(&fake, port, curl_browser(&fake, ""), dir.path())).unwrap_err();
    assert!(err.to_string().contains("access_denied"), "{err}");
    assert!(!fake.server.requests().iter().any(|seen| seen.method == "POST"), "no code exchange");
}

#[cfg(unix)]
#[test]
fn a_token_that_fails_verification_ends_the_login_before_the_bootstrap() {
    let port = free_port();
    let fake = fake(AuthMode::WrongNonce, port);
    let dir = tempfile::tempdir().unwrap();
    let err = browser_login(&request(&fake, port, curl_browser(&fake, ""), dir.path())).unwrap_err();
    assert!(err.to_string().contains("nonce") && err.to_string().contains(&fake.host.cli_issuer()), "{err}");
    assert!(!fake.server.requests().iter().any(|seen| seen.path.starts_with("/k8slogin")));
}

#[test]
fn nobody_logging_in_times_out_naming_the_url() {
    let port = free_port();
    let fake = fake(AuthMode::Code, port);
    let dir = tempfile::tempdir().unwrap();
    let mut login = request(&fake, port, BrowserChoice::Command("true".to_string()), dir.path());
    login.timeout = Duration::from_millis(600);
    let started = Instant::now();
    let err = browser_login(&login).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    let message = err.to_string();
    assert!(message.contains("/cli-login") && message.contains("600ms"), "{message}");
}

#[cfg(unix)]
#[test]
fn a_foreign_host_header_is_refused_and_other_paths_are_not_found() {
    let port = free_port();
    let fake = fake(AuthMode::Code, port);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("statuses");
    let probes = format!(
        "curl -s -o /dev/null -w \"%{{http_code}} \" -H \"Host: evil.example.com:{port}\" \"http://127.0.0.1:{port}/\" >> {out}; \
         curl -s -o /dev/null -w \"%{{http_code}} \" \"http://127.0.0.1:{port}/favicon.ico\" >> {out}; \
         curl -s -o /dev/null -w \"%{{http_code}} \" \"http://127.0.0.1:{port}/redirect?state=x\" >> {out};",
        out = out.display()
    );
    browser_login(&request(&fake, port, curl_browser(&fake, &probes), dir.path())).unwrap();
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "403 404 400 ");
}

/// A pipe standing in for stdin: `(read end for the login, write end for the test)`.
fn stdin_pipe() -> (paste::Input, std::io::PipeWriter) {
    let (read, write) = std::io::pipe().unwrap();
    (paste::Input::Pipe(read), write)
}

/// A browser's visit to `url`, trusting the fake's certificate: the
/// response, with redirects followed when `follow` (at most 10).
fn visit(url: &str, ca: &std::path::Path, follow: bool) -> Option<reqwest::Response> {
    let trust = TrustConfig { ca_file: Some(ca.to_path_buf()), ca_pem: None, ca_data: None };
    let policy = if follow { reqwest::redirect::Policy::limited(10) } else { reqwest::redirect::Policy::none() };
    let tls = crate::openunison::tls::client_config(&trust).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // Built inside the runtime, whose reactor its connections use.
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(policy)
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        client.get(url).send().await.ok()
    })
}

/// Where `url` redirects to, without following; empty when it does not.
fn redirect_of(url: &str, ca: &std::path::Path) -> String {
    let Some(response) = visit(url, ca, false) else { return String::new() };
    let location = response.headers().get(reqwest::header::LOCATION).and_then(|value| value.to_str().ok());
    location.and_then(|location| response.url().join(location).ok()).map(String::from).unwrap_or_default()
}

#[test]
fn with_no_browser_the_pasted_redirect_url_completes_the_login() {
    let port = free_port();
    let fake = fake(AuthMode::Code, port);
    let dir = tempfile::tempdir().unwrap();
    let (input, mut paste) = stdin_pipe();
    let ca = fake.ca_file.path().to_path_buf();
    let user = std::thread::spawn(move || {
        // What the user does on another computer: open the authorization URL
        // (here taken from the listener's `/`), log in, copy where it ends.
        let mut authorization = String::new();
        for _ in 0..100 {
            authorization = redirect_of(&format!("http://127.0.0.1:{port}/"), &ca);
            if !authorization.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let loopback = redirect_of(&authorization, &ca);
        assert!(loopback.starts_with(&format!("http://127.0.0.1:{port}/redirect?code=")), "{loopback}");
        std::io::Write::write_all(&mut paste, format!("not a url\n  '{loopback}'  \n").as_bytes()).unwrap();
        paste
    });
    let bootstrap = login(&request(&fake, port, BrowserChoice::NoBrowser, dir.path()), input).unwrap();
    assert_eq!(bootstrap.cluster_name, "kubernetes");
    drop(user.join().unwrap());
}

#[test]
fn with_no_browser_the_end_of_input_does_not_cancel_the_login() {
    let port = free_port();
    let fake = fake(AuthMode::Code, port);
    let dir = tempfile::tempdir().unwrap();
    let (input, paste) = stdin_pipe();
    drop(paste);
    let ca = fake.ca_file.path().to_path_buf();
    let browser = std::thread::spawn(move || {
        // A browser on this computer still reaches the listener.
        std::thread::sleep(Duration::from_millis(300));
        visit(&format!("http://127.0.0.1:{port}/"), &ca, true).map(|response| response.status())
    });
    let bootstrap = login(&request(&fake, port, BrowserChoice::NoBrowser, dir.path()), input).unwrap();
    assert_eq!(bootstrap.display_name, "jdoe");
    let status = browser.join().unwrap();
    assert!(status.is_some_and(|status| status.is_success()), "{status:?}");
}

/// Set in the child process of [`ctrl_c_cancels_the_login_cleanly`].
#[cfg(unix)]
const CTRL_C_CHILD: &str = "OULOGIN_TEST_CTRL_C_CHILD";

/// Runs in a child process only: a login nobody completes, until SIGINT.
#[cfg(unix)]
#[test]
#[ignore = "runs only as the child process of ctrl_c_cancels_the_login_cleanly"]
fn ctrl_c_child() {
    let Some(lock_dir) = std::env::var_os(CTRL_C_CHILD) else { return };
    let port = free_port();
    // A host that answers: the login checks it before the browser opens.
    let fake = fake(AuthMode::Code, port);
    let mut login = request(&fake, port, BrowserChoice::Command("true".to_string()), std::path::Path::new(&lock_dir));
    login.timeout = Duration::from_secs(60);
    let err = browser_login(&login).unwrap_err();
    eprintln!("CHILD-RESULT: {err}");
    // The listener is closed again.
    assert!(!login_listener_on(port));
}

#[cfg(unix)]
#[test]
fn ctrl_c_cancels_the_login_cleanly() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "login::flow_tests::ctrl_c_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env(CTRL_C_CHILD, dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    // The "Opening ..." line comes after the SIGINT handler is in place.
    for _ in 0..50 {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 || line.starts_with("Opening ") {
            break;
        }
    }
    assert!(line.starts_with("Opening "), "{line}");
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) }, 0);
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(signalled.elapsed() < Duration::from_secs(10));
    assert!(rest.contains("CHILD-RESULT: the login was cancelled"), "{rest}");
    assert!(status.success(), "{rest}");
}
