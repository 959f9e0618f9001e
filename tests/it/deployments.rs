//! Real OpenUnison deployments differ from the default fake: the host name
//! OpenUnison is configured with (`network.openunison_host`) against the one
//! typed, a refresh 401 that is only a failed session-store write, the chart's
//! self-signed certificates, an API server CA only Go can read, an expired CA,
//! a `--auth-provider` login without an OpenUnison CA, a hand-patched
//! `insecure-skip-tls-verify`, and a server URL with a line break in it.

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;

use super::hostile::{FOREIGN_KUBECONFIG, Scene, assert_failed_naming};
use super::login::{assert_kubectl_works_across_an_expiry, entry, kubectl_get, read_yaml};
use crate::common::{Output, TestContext, free_port, login_args};
use crate::fake::{FakeBrowser, FakeConfig, FakeOpenUnison, Fault};

fn config() -> FakeConfig {
    FakeConfig::with_redirect_port(free_port())
}

/// `login_args` with `--host` replaced by `host`.
fn args_for_host(fake: &FakeOpenUnison, browser: &FakeBrowser, host: &str) -> Vec<String> {
    let mut args = login_args(fake, browser);
    let at = args.iter().position(|arg| arg == "--host").expect("the host flag");
    args[at + 1] = host.to_string();
    args
}

fn decoded(data: &serde_json::Value) -> String {
    let data = data.as_str().unwrap_or_else(|| panic!("not base64 text: {data}"));
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data).expect("base64")).expect("UTF-8")
}

#[test]
fn a_host_other_than_network_openunison_host_gets_a_hint_naming_it_and_the_issuer() {
    // OpenUnison is configured as `ou.example`; the user reaches it as 127.0.0.1.
    let scene = Scene::with(FakeConfig { ou_host_name: Some("ou.example".into()), ..config() });
    let before = scene.files();
    let output = scene.login(&[]);
    let bootstrap_url = format!("{}/k8slogin/token/user", scene.fake.base_url());
    assert_failed_naming(&output, &bootstrap_url, true);
    let hint = output.stderr.split("hint: ").nth(1).unwrap_or_else(|| panic!("no hint:\n{output}"));
    for needed in ["`--host`", "network.openunison_host", "port 443", &scene.fake.cli_issuer()] {
        assert!(hint.contains(needed), "the hint does not say {needed:?}:\n{output}");
    }
    // Our own checks passed (the token was verified); the bootstrap refused it.
    assert_eq!(scene.fake.code_exchanges(), 1);
    assert_eq!(scene.fake.counters().bootstrap_failures, 1);
    assert_eq!(scene.files(), before);
}

#[test]
fn a_host_name_with_capitals_is_sent_as_typed_and_the_session_works() {
    // OpenUnison compares the issuer letter for letter: lower-casing `--host`
    // would make the bootstrap refuse the token.
    let TestContext { env, fake, browser } = TestContext::with_config(FakeConfig {
        ou_host_name: Some("LocalHost".into()),
        token_lifetime_secs: 5,
        ..config()
    });
    let typed = format!("LocalHost:{}", fake.port());
    assert_eq!(fake.ou_host(), typed);
    let login = env.oulogin(args_for_host(&fake, &browser, &typed)).run();
    login.assert_success();
    assert_eq!(fake.host_headers(), [typed.clone(), typed.clone()], "code exchange and bootstrap, as typed");
    let config = read_yaml(&env.kubeconfig);
    let args = &entry(&config, "users", "jdoe@kubernetes").expect("our user")["user"]["exec"]["args"];
    assert!(args.as_array().unwrap().contains(&json!(typed)), "--host as typed: {args}");
    // The session file name is the same for every spelling of the host.
    assert!(env.session_dir().join(format!("localhost_{}.json", fake.port())).is_file());
    assert_kubectl_works_across_an_expiry(&env, &fake);
}

#[test]
fn a_transient_refresh_401_is_asked_again_instead_of_opening_a_browser() {
    let scene = Scene::new().logged_in();
    scene.expire_session_token();
    scene.fake.set_fault(Fault::RefreshTransient401);
    let output = scene.token();
    output.assert_success();
    assert_eq!(scene.fake.successful_refreshes(), 1, "events: {:#?}", scene.fake.events());
    assert_eq!(scene.fake.failed_refreshes(), 1, "events: {:#?}", scene.fake.events());
    assert_eq!(scene.browser.opened(), 1, "only the first login opened a browser:\n{output}");
    assert_eq!(scene.fake.sessions_minted(), 1);
    let credential: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    assert_eq!(credential["status"]["token"], scene.session_json()["id_token"]);
}

#[test]
fn auth_provider_without_an_openunison_ca_writes_the_users_ca_for_client_go() {
    let TestContext { env, fake, browser } =
        TestContext::with_config(FakeConfig { include_ou_ca: false, token_lifetime_secs: 5, ..config() });
    let mut args = login_args(&fake, &browser);
    args.push("--auth-provider".into());
    env.oulogin(args).run().assert_success();
    let config = read_yaml(&env.kubeconfig);
    let provider = &entry(&config, "users", "jdoe@kubernetes").expect("the user")["user"]["auth-provider"];
    assert_eq!(decoded(&provider["config"]["idp-certificate-authority-data"]), fake.ca_pem());
    // client-go's in-tree oidc provider refreshes over TLS trusting only that CA.
    assert_kubectl_works_across_an_expiry(&env, &fake);
}

#[test]
fn insecure_skip_tls_verify_goes_when_the_cluster_gets_a_ca() {
    // The old Go plugin resets this flag whenever it writes the cluster; users
    // patched it in to get past a broken CA, and kubectl refuses it beside one.
    let TestContext { env, fake, browser } = TestContext::with_config(config());
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let patched = String::from_utf8(env.read_kubeconfig()).unwrap().replacen(
        "    server: ",
        "    insecure-skip-tls-verify: true\n    server: ",
        1,
    );
    env.write_kubeconfig(&patched);
    let refused = kubectl_get(&env);
    assert!(!refused.success(), "kubectl takes both the flag and a CA?\n{refused}");
    let mut again = login_args(&fake, &browser);
    again.push("--force".into());
    env.oulogin(again).run().assert_success();
    let config = read_yaml(&env.kubeconfig);
    let cluster = &entry(&config, "clusters", "kubernetes").expect("the cluster")["cluster"];
    assert!(cluster.get("insecure-skip-tls-verify").is_none(), "{cluster}");
    assert!(cluster["certificate-authority-data"].is_string(), "{cluster}");
    kubectl_get(&env).assert_success();
}

/// Login, kubectl, and a refresh through the plugin, all over the one
/// self-signed certificate that OpenUnison (and, with impersonation, the API
/// server) presents; then once more with the CA the bootstrap handed out as
/// the only trust.
fn login_kubectl_refresh_over_one_self_signed_certificate(config: FakeConfig) {
    let TestContext { env, fake, browser } =
        TestContext::with_config(FakeConfig { impersonation: true, token_lifetime_secs: 5, ..config });
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let config = read_yaml(&env.kubeconfig);
    let cluster = &entry(&config, "clusters", "kubernetes").expect("the cluster")["cluster"];
    assert_eq!(decoded(&cluster["certificate-authority-data"]), fake.ca_pem(), "the API server CA is OpenUnison's");
    kubectl_get(&env).assert_success();
    std::thread::sleep(Duration::from_secs(6));
    kubectl_get(&env).assert_success();
    assert_eq!(fake.successful_refreshes(), 1, "events: {:#?}", fake.events());
    // Without the `--certificate-authority` file, the CA from the bootstrap serves.
    let session = env.session_dir().join(format!("{}.json", fake.host().replace(':', "_")));
    let mut stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&session).unwrap()).unwrap();
    assert_eq!(stored["trust"]["ca_pem"], json!(fake.ca_pem()));
    stored["trust"].as_object_mut().unwrap().remove("ca_file");
    std::fs::write(&session, serde_json::to_vec(&stored).unwrap()).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    kubectl_get(&env).assert_success();
    assert_eq!(fake.successful_refreshes(), 2, "events: {:#?}", fake.events());
}

#[test]
fn the_charts_self_signed_leaf_certificate_serves_login_kubectl_and_refresh() {
    login_kubectl_refresh_over_one_self_signed_certificate(FakeConfig { self_signed_leaf: true, ..config() });
}

#[test]
fn a_self_signed_ca_certificate_serves_login_kubectl_and_refresh() {
    login_kubectl_refresh_over_one_self_signed_certificate(FakeConfig { self_signed: true, ..config() });
}

#[test]
fn an_api_server_ca_only_go_can_read_is_passed_on_to_kubectl() {
    let TestContext { env, fake, browser } =
        TestContext::with_config(FakeConfig { oversized_api_ca: true, ..config() });
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let config = read_yaml(&env.kubeconfig);
    let cluster = &entry(&config, "clusters", "kubernetes").expect("the cluster")["cluster"];
    let api_ca = std::fs::read_to_string(fake.api_ca_file()).unwrap();
    assert!(api_ca.len() > 64 * 1024, "webpki's limit is exceeded");
    assert_eq!(decoded(&cluster["certificate-authority-data"]), api_ca);
    kubectl_get(&env).assert_success();
}

#[test]
fn an_expired_certificate_authority_is_refused_naming_it() {
    let TestContext { env, fake, browser } = TestContext::with_config(FakeConfig { expired_ca: true, ..config() });
    env.write_kubeconfig(FOREIGN_KUBECONFIG);
    let output = env.oulogin(login_args(&fake, &browser)).run();
    assert_failed_naming(&output, &fake.host(), true);
    for needed in ["CN=fake-openunison-test-ca", &fake.ca_file().display().to_string(), "expired on 2002-01-01"] {
        assert!(output.stderr.contains(needed), "the error does not say {needed:?}:\n{output}");
    }
    assert_eq!(env.read_kubeconfig(), FOREIGN_KUBECONFIG.as_bytes());
    assert_eq!(fake.code_exchanges(), 0);
}

#[test]
fn a_server_url_with_a_line_break_or_tab_is_refused() {
    let scene = Scene::new().logged_in();
    let url = format!("{}/k8slogin/token/user", scene.fake.base_url());
    let api = scene.fake.api_server_url();
    for (bad, shown) in [(api.replace("127.0.0.1:", "127.0.0.1\n:"), "'\\n'"), (format!("{api}/\tx"), "'\\t'")] {
        let before = scene.files();
        scene.fake.set_fault(Fault::BootstrapServerUrl(bad.clone()));
        let output: Output = scene.login(&["--force"]);
        scene.fake.clear_faults();
        assert_failed_naming(&output, &url, true);
        assert!(output.stderr.contains("API server URL") && output.stderr.contains(shown), "{bad:?}:\n{output}");
        assert_eq!(scene.files(), before, "{bad:?}: a file changed:\n{output}");
    }
}
