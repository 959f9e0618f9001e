//! A login checks the OpenUnison host (its `k8s-login-cli` discovery
//! document, with the same trust and proxy settings as every later request)
//! before any browser opens: a dead port, a wrong CA or a broken proxy is an
//! error within seconds that names the URL, and no browser command runs.

use std::time::{Duration, Instant};

use super::hostile::{Scene, assert_failed_naming};
use crate::common::{Output, free_port};
use crate::fake::pki::TestCa;

/// Far longer than these logins may take: a login that opened the browser
/// and waits for it shows as a run that took this long.
const LOGIN_TIMEOUT: &str = "45s";
/// What "within seconds" means here: well short of [`LOGIN_TIMEOUT`].
const WITHIN_SECONDS: Duration = Duration::from_secs(20);

/// `--host HOST` and the other login flags of `scene`, through its fake browser.
fn login_to(scene: &Scene, host: &str, ca_file: &std::path::Path) -> Vec<String> {
    let mut args = scene.login_args();
    let at = |flag: &str| args.iter().position(|arg| arg == flag).unwrap() + 1;
    let (host_at, ca_at) = (at("--host"), at("--certificate-authority"));
    args[host_at] = host.to_string();
    args[ca_at] = ca_file.display().to_string();
    args.extend(["--timeout", LOGIN_TIMEOUT].map(String::from));
    args
}

/// Failed within seconds naming `url`, with the fake browser's log empty.
#[track_caller]
fn assert_refused_before_the_browser(scene: &Scene, output: &Output, took: Duration, url: &str) {
    assert!(took < WITHIN_SECONDS, "took {took:?}:\n{output}");
    assert_failed_naming(output, url, true);
    let opened = std::fs::read_to_string(scene.browser.urls_file()).unwrap();
    assert!(opened.is_empty(), "a browser command ran for {opened:?}:\n{output}");
    assert!(!output.stderr.contains("Opening "), "{output}");
}

#[test]
fn a_dead_port_is_an_error_before_the_browser_opens() {
    let scene = Scene::new();
    let dead = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let output = scene.env.oulogin(login_to(&scene, &dead, &scene.ca_file)).timeout(Duration::from_secs(90)).run();
    let url = format!("https://{dead}/auth/idp/k8s-login-cli/.well-known/openid-configuration");
    assert_refused_before_the_browser(&scene, &output, started.elapsed(), &url);
    assert!(output.stderr.contains("cannot connect"), "{output}");
}

#[test]
fn a_wrong_ca_is_an_error_before_the_browser_opens() {
    let scene = Scene::new();
    let other_ca = scene.env.root().join("other-ca.pem");
    std::fs::write(&other_ca, TestCa::generate("not-the-openunison-ca").pem).unwrap();
    let started = Instant::now();
    let output =
        scene.env.oulogin(login_to(&scene, &scene.fake.host(), &other_ca)).timeout(Duration::from_secs(90)).run();
    let url = format!("{}/.well-known/openid-configuration", scene.fake.cli_issuer());
    assert_refused_before_the_browser(&scene, &output, started.elapsed(), &url);
    assert!(output.stderr.contains("TLS"), "{output}");
    assert_eq!(scene.fake.counters().cli_login_hits, 0);
}

#[test]
fn a_broken_proxy_is_an_error_before_the_browser_opens() {
    let scene = Scene::new();
    let dead_proxy = format!("http://127.0.0.1:{}", free_port());
    let with_password = dead_proxy.replace("http://", "http://jdoe:proxy-secret@");
    let started = Instant::now();
    let output = scene
        .env
        .oulogin(login_to(&scene, &scene.fake.host(), &scene.ca_file))
        .env("HTTPS_PROXY", &with_password)
        .timeout(Duration::from_secs(90))
        .run();
    let url = format!("{}/.well-known/openid-configuration", scene.fake.cli_issuer());
    assert_refused_before_the_browser(&scene, &output, started.elapsed(), &url);
    // The proxy is named, its password never.
    assert!(output.stderr.contains(&format!("through the proxy `{dead_proxy}`")), "{output}");
    assert!(!output.stderr.contains("proxy-secret"), "{output}");
    assert_eq!(scene.fake.counters().cli_login_hits, 0);
}
