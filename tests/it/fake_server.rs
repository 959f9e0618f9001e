//! Self-tests of the fakes: they must be at least as strict as the real
//! OpenUnison (one-time refresh tokens, exact redirect URIs, PKCE, empty-body
//! JSON errors, Gson escaping), or the plugin's tests prove nothing.

use std::io::{BufRead, BufReader, Write};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::common::{TestContext, fake_config};
use crate::fake::openunison::RefreshOutcome;
use crate::fake::{FakeConfig, FakeOpenUnison, Fault, TestClient, TestResponse, jwt};

fn start() -> FakeOpenUnison {
    FakeOpenUnison::start(fake_config())
}

fn client_for(fake: &FakeOpenUnison) -> TestClient {
    let api_ca = std::fs::read_to_string(fake.api_ca_file()).unwrap();
    TestClient::new(&[&fake.ca_pem(), &api_ca])
}

struct Pkce {
    verifier: String,
    challenge: String,
}

fn new_pkce() -> Pkce {
    let verifier = URL_SAFE_NO_PAD.encode(crate::fake::random_bytes::<32>());
    let challenge = URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, verifier.as_bytes()));
    Pkce { verifier, challenge }
}

fn authorize_url(fake: &FakeOpenUnison, redirect_uri: &str, pkce: &Pkce, state: &str, nonce: &str) -> String {
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", "cli-local")
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", state)
        .append_pair("nonce", nonce)
        .append_pair("code_challenge", &pkce.challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    format!("{}/auth?{query}", fake.cli_issuer())
}

fn query_of(location: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(location).unwrap();
    url.query_pairs().into_owned().collect()
}

fn param(location: &str, name: &str) -> Option<String> {
    query_of(location).into_iter().find(|(key, _)| key == name).map(|(_, value)| value)
}

/// The code the fake's authorization endpoint redirects to the registered URI with.
fn authorization_code(fake: &FakeOpenUnison, client: &TestClient, pkce: &Pkce) -> String {
    let response = client.get(&authorize_url(fake, &fake.redirect_uri(), pkce, "s", "n"), &[]).unwrap();
    param(response.header("location").unwrap(), "code").unwrap()
}

/// Authorization + code exchange as the plugin does it; returns the code-exchange response.
fn code_exchange(fake: &FakeOpenUnison, client: &TestClient, verifier_override: Option<&str>) -> TestResponse {
    let pkce = new_pkce();
    let response = client.get(&authorize_url(fake, &fake.redirect_uri(), &pkce, "state-1", "nonce-1"), &[]).unwrap();
    assert_eq!(response.status, 302);
    let location = response.header("location").unwrap().to_string();
    assert!(location.starts_with(&format!("{}?", fake.redirect_uri())), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("state-1"));
    let code = param(&location, "code").expect("a code");
    // OpenUnison's codes are standard Base64, URL-encoded in the redirect.
    assert!(code.contains('+') && code.contains('/') && code.ends_with('='), "{code}");
    assert!(["%2B", "%2F", "%3D"].iter().all(|escaped| location.contains(escaped)), "{location}");
    let verifier = verifier_override.unwrap_or(&pkce.verifier);
    client
        .post_form(
            &format!("{}/token", fake.cli_issuer()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("client_id", "cli-local"),
                ("redirect_uri", &fake.redirect_uri()),
                ("code_verifier", verifier),
            ],
            &[],
        )
        .unwrap()
}

fn cli_id_token(fake: &FakeOpenUnison, client: &TestClient) -> String {
    let response = code_exchange(fake, client, None);
    assert_eq!(response.status, 200, "{}", response.text());
    response.json()["id_token"].as_str().unwrap().to_string()
}

fn bootstrap(fake: &FakeOpenUnison, client: &TestClient) -> TestResponse {
    let id_token = cli_id_token(fake, client);
    client
        .get(&format!("{}/k8slogin/token/user", fake.base_url()), &[("authorization", &format!("Bearer {id_token}"))])
        .unwrap()
}

fn refresh(fake: &FakeOpenUnison, client: &TestClient, refresh_token: &str) -> TestResponse {
    client
        .post_form(
            &format!("{}/token", fake.k8s_issuer()),
            &[("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", "kubernetes")],
            &[],
        )
        .unwrap()
}

fn assert_empty_json_error(response: &TestResponse, status: u16) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json"));
    assert!(response.body.is_empty(), "body should be empty: {}", response.text());
}

#[test]
fn cli_login_logs_the_browser_in_and_bounces_to_the_loopback_root() {
    let fake = start();
    let client = client_for(&fake);
    let response = client.get(&format!("{}/cli-login", fake.base_url()), &[]).unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some(format!("http://127.0.0.1:{}", fake.redirect_port()).as_str()));
    assert!(response.header("set-cookie").unwrap().starts_with("tremolosession="));
    assert_eq!(fake.counters().cli_login_hits, 1);
    assert_eq!(fake.counters().browser_logins, 1);
}

#[test]
fn discovery_and_jwks_describe_the_signing_key() {
    let fake = start();
    let client = client_for(&fake);
    let discovery = client.get(&format!("{}/.well-known/openid-configuration", fake.cli_issuer()), &[]).unwrap().json();
    assert_eq!(discovery["issuer"], fake.cli_issuer());
    assert_eq!(discovery["jwks_uri"], format!("{}/certs", fake.cli_issuer()));
    let k8s = client.get(&format!("{}/.well-known/openid-configuration", fake.k8s_issuer()), &[]).unwrap().json();
    assert_eq!(k8s["token_endpoint"], format!("{}/token", fake.k8s_issuer()));
    let jwks = client.get(discovery["jwks_uri"].as_str().unwrap(), &[]).unwrap().json();
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert_eq!(jwks["keys"][0]["kid"], jwt::KID);
    assert_eq!(jwks["keys"][0]["e"], "AQAB");
}

#[test]
fn authorization_requires_the_exact_redirect_uri_state_and_openid_scope() {
    let fake = start();
    let client = client_for(&fake);
    let pkce = new_pkce();
    let port = fake.redirect_port();
    for wrong in [
        format!("http://localhost:{port}/redirect"),
        format!("http://127.0.0.1:{port}/redirect/"),
        format!("http://127.0.0.1:{}/redirect", port.wrapping_add(1)),
        format!("http://127.0.0.1:{port}/callback"),
    ] {
        let response = client.get(&authorize_url(&fake, &wrong, &pkce, "s", "n"), &[]).unwrap();
        assert_eq!(response.status, 302);
        assert_eq!(response.header("location"), Some(format!("{wrong}?error=unauthorized_client").as_str()));
    }
    let no_state = authorize_url(&fake, &fake.redirect_uri(), &pkce, "", "n");
    let response = client.get(&no_state, &[]).unwrap();
    assert_eq!(response.header("location"), Some(format!("{}?error=state_missing", fake.redirect_uri()).as_str()));
    let wrong_client = authorize_url(&fake, &fake.redirect_uri(), &pkce, "s", "n")
        .replace("client_id=cli-local", "client_id=kubernetes");
    let response = client.get(&wrong_client, &[]).unwrap();
    assert_eq!(param(response.header("location").unwrap(), "error").as_deref(), Some("unauthorized_client"));
    let wrong_scope = authorize_url(&fake, &fake.redirect_uri(), &pkce, "s", "n")
        .replace("scope=openid+profile", "scope=profile+openid");
    let response = client.get(&wrong_scope, &[]).unwrap();
    assert_eq!(param(response.header("location").unwrap(), "error").as_deref(), Some("invalid_scope"));
    assert_eq!(fake.authorizations(), 0);
}

#[test]
fn code_exchange_enforces_pkce_and_single_use() {
    let fake = start();
    let client = client_for(&fake);
    assert_empty_json_error(&code_exchange(&fake, &client, Some("a-verifier-that-does-not-match-the-challenge")), 400);

    let pkce = new_pkce();
    let code = authorization_code(&fake, &client, &pkce);
    let token_url = format!("{}/token", fake.cli_issuer());
    let without_verifier = client
        .post_form(
            &token_url,
            &[("grant_type", "authorization_code"), ("code", &code), ("client_id", "cli-local")],
            &[],
        )
        .unwrap();
    assert_empty_json_error(&without_verifier, 400);

    let pkce = new_pkce();
    let code = authorization_code(&fake, &client, &pkce);
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", "cli-local"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    assert_empty_json_error(
        &client.post_form(&token_url, &[("code", &code), ("client_id", "cli-local")], &[]).unwrap(),
        400,
    );
    let first = client.post_form(&token_url, &form, &[]).unwrap();
    assert_eq!(first.status, 200, "{}", first.text());
    let claims = jwt::claims_unverified(first.json()["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["iss"], fake.cli_issuer());
    assert_eq!(claims["aud"], "cli-local");
    assert_eq!(claims["nonce"], "n");
    assert_empty_json_error(&client.post_form(&token_url, &form, &[]).unwrap(), 403);
}

#[test]
fn bootstrap_json_is_gson_escaped_with_crlf_pems_and_mints_a_session_per_call() {
    let fake = start();
    let client = client_for(&fake);
    let response = bootstrap(&fake, &client);
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("application/json; charset=UTF-8"));
    let raw = response.text();
    assert!(raw.contains("\\u003d"), "refresh token `=` must be Gson-escaped: {raw}");
    assert!(raw.contains("\\r\\n"), "PEMs must have CRLF line endings");
    assert!(raw.ends_with("}\n"));
    let body = response.json();
    assert_eq!(body["displayName"], "jdoe");
    let token = &body["token"];
    assert_eq!(token["kubectl Command"], "kubernetes");
    assert_eq!(token["kubectl Windows Command"], fake.api_server_url());
    assert!(token["OpenUnison Server CA Certificate"].as_str().unwrap().starts_with("-----BEGIN CERTIFICATE-----\r\n"));
    assert!(token["Kubernetes API Server CA Certificate"].as_str().unwrap().contains("\r\n"));
    let claims = jwt::claims_unverified(token["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["iss"], fake.k8s_issuer());
    assert_eq!(claims["aud"], "kubernetes");
    assert!(token["refresh_token"].as_str().unwrap().ends_with('='));

    let again = bootstrap(&fake, &client);
    assert_ne!(again.json()["token"]["refresh_token"], body["token"]["refresh_token"]);
    assert_eq!(fake.sessions_minted(), 2);
    assert_eq!(fake.live_sessions(), 2);
}

#[test]
fn bootstrap_accepts_a_bare_jwt_and_refuses_anything_but_a_valid_cli_local_token() {
    let fake = start();
    let client = client_for(&fake);
    let url = format!("{}/k8slogin/token/user", fake.base_url());
    let id_token = cli_id_token(&fake, &client);
    assert_eq!(client.get(&url, &[("authorization", &id_token)]).unwrap().status, 200);

    let k8s_token = fake.sign(&fake.k8s_claims(60));
    let mut expired = fake.k8s_claims(-10);
    expired["iss"] = serde_json::json!(fake.cli_issuer());
    expired["aud"] = serde_json::json!("cli-local");
    for bad in
        [k8s_token, fake.sign(&expired), jwt::Signer::impostor().sign(&jwt::claims_unverified(&id_token).unwrap())]
    {
        let response = client.get(&url, &[("authorization", &format!("Bearer {bad}"))]).unwrap();
        assert_eq!(response.status, 401);
        assert_eq!(response.header("www-authenticate"), Some(r#"Bearer realm="kubernetes",scope="auth""#));
    }
    assert_eq!(client.get(&url, &[]).unwrap().status, 401);
    assert_eq!(fake.sessions_minted(), 1);
}

#[test]
fn a_replayed_refresh_token_gets_an_empty_401() {
    let fake = start();
    let client = client_for(&fake);
    let first = bootstrap(&fake, &client).json()["token"]["refresh_token"].as_str().unwrap().to_string();
    let rotated = refresh(&fake, &client, &first);
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    let body = rotated.json();
    let second = body["refresh_token"].as_str().unwrap();
    assert_ne!(second, first);
    let claims = jwt::claims_unverified(body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(claims["iss"], fake.k8s_issuer());
    assert_eq!(claims["nbf"].as_i64().unwrap(), claims["iat"].as_i64().unwrap() - 120);
    assert_eq!(claims["exp"].as_i64().unwrap(), claims["iat"].as_i64().unwrap() + 60);

    assert_empty_json_error(&refresh(&fake, &client, &first), 401);
    assert_eq!(fake.successful_refreshes(), 1);
    assert_eq!(fake.failed_refreshes(), 1);
    let outcomes: Vec<RefreshOutcome> = fake.refresh_events().iter().map(|event| event.outcome).collect();
    assert_eq!(outcomes, [RefreshOutcome::Rotated, RefreshOutcome::Rejected]);
    // The session survives a refused replay; its current token still works.
    assert_eq!(refresh(&fake, &client, second).status, 200);
}

#[test]
fn the_grace_period_answers_a_replay_with_the_current_tokens() {
    let fake = start();
    fake.set_grace_period_ms(5000);
    let client = client_for(&fake);
    let first = bootstrap(&fake, &client).json()["token"]["refresh_token"].as_str().unwrap().to_string();
    let rotated = refresh(&fake, &client, &first).json();
    let replay = refresh(&fake, &client, &first);
    assert_eq!(replay.status, 200, "{}", replay.text());
    let replay = replay.json();
    assert_eq!(replay["refresh_token"], rotated["refresh_token"]);
    assert_eq!(replay["id_token"], rotated["id_token"]);
    let seconds_left = replay["expires_in"].as_u64().unwrap();
    assert!((890..=900).contains(&seconds_left), "expires_in is the session's, not the token's: {seconds_left}");
    assert_eq!(fake.counters().refreshes_grace, 1);
    assert_eq!(fake.successful_refreshes(), 1);
}

#[test]
fn refresh_accepts_basic_client_authentication_and_refuses_other_clients() {
    let fake = start();
    let client = client_for(&fake);
    let token = bootstrap(&fake, &client).json()["token"]["refresh_token"].as_str().unwrap().to_string();
    let url = format!("{}/token", fake.k8s_issuer());
    let wrong_client = client
        .post_form(&url, &[("grant_type", "refresh_token"), ("refresh_token", &token), ("client_id", "cli-local")], &[])
        .unwrap();
    assert_empty_json_error(&wrong_client, 401);
    let no_grant = client.post_form(&url, &[("refresh_token", &token), ("client_id", "kubernetes")], &[]).unwrap();
    assert_empty_json_error(&no_grant, 400);
    let basic = client
        .post_form(
            &url,
            &[("grant_type", "refresh_token"), ("refresh_token", &token)],
            &[("authorization", "Basic a3ViZXJuZXRlczo=")],
        )
        .unwrap();
    assert_eq!(basic.status, 200, "{}", basic.text());
}

#[test]
fn an_inactive_session_is_refused_and_deleted() {
    let fake = start();
    fake.set_inactivity_timeout_secs(1);
    let client = client_for(&fake);
    let token = bootstrap(&fake, &client).json()["token"]["refresh_token"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    assert_empty_json_error(&refresh(&fake, &client, &token), 401);
    assert_eq!(fake.live_sessions(), 0);
    fake.set_inactivity_timeout_secs(900);
    assert_empty_json_error(&refresh(&fake, &client, &token), 401);
}

#[test]
fn killed_sessions_cannot_refresh() {
    let fake = start();
    let client = client_for(&fake);
    let token = bootstrap(&fake, &client).json()["token"]["refresh_token"].as_str().unwrap().to_string();
    fake.kill_all_sessions();
    assert_empty_json_error(&refresh(&fake, &client, &token), 401);
}

#[test]
fn the_api_server_accepts_only_valid_k8sidp_tokens() {
    let fake = start();
    let client = client_for(&fake);
    let url = format!("{}/api/v1/namespaces/default", fake.api_server_url());
    let bearer = |token: &str| format!("Bearer {token}");

    let valid = fake.sign(&fake.k8s_claims(60));
    let response = client.get(&url, &[("authorization", &bearer(&valid))]).unwrap();
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["metadata"]["name"], "default");

    let expired = fake.sign(&fake.k8s_claims(-1));
    let mut wrong_aud = fake.k8s_claims(60);
    wrong_aud["aud"] = serde_json::json!("cli-local");
    let cli_token = cli_id_token(&fake, &client);
    let impostor = jwt::Signer::impostor().sign(&fake.k8s_claims(60));
    for token in [expired, fake.sign(&wrong_aud), cli_token, impostor] {
        let response = client.get(&url, &[("authorization", &bearer(&token))]).unwrap();
        assert_eq!(response.status, 401);
        assert_eq!(response.json()["kind"], "Status");
    }
    assert_eq!(client.get(&format!("{}/version", fake.api_server_url()), &[]).unwrap().status, 401);
    assert_eq!(fake.api().ok_requests(), 1);
    assert_eq!(fake.api().unauthorized_requests(), 5);
}

#[test]
fn the_self_signed_variant_serves_its_ca_certificate_as_its_own() {
    let fake = FakeOpenUnison::start(FakeConfig { self_signed: true, ..fake_config() });
    let client = client_for(&fake);
    let response = bootstrap(&fake, &client);
    assert_eq!(response.status, 200);
    let served = response.json()["token"]["OpenUnison Server CA Certificate"].as_str().unwrap().replace("\r\n", "\n");
    assert_eq!(served, fake.ca_pem());
    // rustls's own verifier refuses this shape, which is what makes the variant worth testing.
    let cert = crate::fake::client::parse_pems(&[&fake.ca_pem()]).remove(0);
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(std::sync::Arc::new(roots), provider)
        .build()
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    use rustls::client::danger::ServerCertVerifier;
    let verdict = webpki.verify_server_cert(&cert, &[], &name, &[], rustls::pki_types::UnixTime::now());
    assert!(
        matches!(verdict, Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(_))))
            || verdict.is_err(),
        "{verdict:?}"
    );
    // Trusting an unrelated CA must not be enough.
    let other = crate::fake::pki::TestCa::generate("unrelated");
    assert!(TestClient::new(&[&other.pem]).get(&format!("{}/cli-login", fake.base_url()), &[]).is_err());
}

/// A stand-in for the plugin's loopback listener: `/` sends the browser to
/// the authorization URL, `/redirect` answers 200 and reports the query.
fn fake_plugin_listener(port: u16, authorize: String) -> std::thread::JoinHandle<Option<String>> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    std::thread::spawn(move || {
        for _ in 0..2 {
            let (stream, _) = listener.accept().ok()?;
            let mut reader = BufReader::new(stream.try_clone().ok()?);
            let mut request_line = String::new();
            reader.read_line(&mut request_line).ok()?;
            let target = request_line.split(' ').nth(1)?.to_string();
            let mut stream = stream;
            if target == "/" {
                write!(
                    stream,
                    "HTTP/1.1 302 Found\r\nLocation: {authorize}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                )
                .ok()?;
            } else {
                write!(stream, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").ok()?;
                return Some(target);
            }
        }
        None
    })
}

#[test]
fn the_fake_browser_follows_the_login_chain_from_a_browser_command() {
    let TestContext { fake, browser, .. } = TestContext::new();
    let authorize = authorize_url(&fake, &fake.redirect_uri(), &new_pkce(), "st", "n");
    let listener = fake_plugin_listener(fake.redirect_port(), authorize);
    let words = shell_words::split(browser.command()).unwrap();
    let url = format!("{}/cli-login", fake.base_url());
    let status = std::process::Command::new(&words[0]).args(&words[1..]).arg(&url).status().unwrap();
    assert!(status.success());
    assert!(browser.wait_for_opened(1, Duration::from_secs(5)));
    assert_eq!(browser.urls(), [url]);
    let callback = listener.join().unwrap().expect("the browser reached /redirect");
    assert!(callback.starts_with("/redirect?code="), "{callback}");
    assert!(callback.ends_with("&state=st"), "{callback}");
    let outcome = &browser.finished_visits(1, Duration::from_secs(5))[0];
    assert!(outcome.completed(), "{outcome:?}");
    assert_eq!(outcome.hops.len(), 4, "{outcome:?}");
    assert_eq!(fake.counters().browser_logins, 1, "the cookie from /cli-login is sent to /auth");
}

#[test]
fn fault_switches_break_the_named_endpoint_until_cleared() {
    let fake = start();
    let client = client_for(&fake);
    fake.set_fault(Fault::CodeExchangeStatus(500));
    assert_empty_json_error(&code_exchange(&fake, &client, None), 500);
    fake.clear_faults();

    fake.set_fault(Fault::CliTokenBadSignature);
    let id_token = cli_id_token(&fake, &client);
    assert!(jwt::Signer::published().verify(&id_token).is_err());
    fake.clear_fault(&Fault::CliTokenBadSignature);

    fake.set_fault(Fault::BootstrapHttpServerUrl);
    fake.set_fault(Fault::BootstrapMissingRefreshToken);
    let body = bootstrap(&fake, &client).json();
    assert!(body["token"]["kubectl Windows Command"].as_str().unwrap().starts_with("http://"));
    assert!(body["token"].get("refresh_token").is_none());
    fake.clear_faults();

    fake.set_fault(Fault::BootstrapHuge);
    assert!(bootstrap(&fake, &client).body.len() > 10 * 1024 * 1024);
    fake.clear_faults();

    let token = bootstrap(&fake, &client).json()["token"]["refresh_token"].as_str().unwrap().to_string();
    fake.set_fault(Fault::RefreshStatus(500));
    assert_empty_json_error(&refresh(&fake, &client, &token), 500);
    fake.clear_faults();
    assert_eq!(refresh(&fake, &client, &token).status, 200, "an injected failure does not consume the token");
}

fn legacy_kubeconfig(fake: &FakeOpenUnison, id_token: &str, refresh_token: &str) -> String {
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: kubernetes
  cluster:
    server: {server}
    certificate-authority: {api_ca}
users:
- name: jdoe@kubernetes
  user:
    auth-provider:
      name: oidc
      config:
        client-id: kubernetes
        client-secret: \"\"
        id-token: {id_token}
        refresh-token: {refresh_token}
        idp-issuer-url: {issuer}
        idp-certificate-authority: {ou_ca}
contexts:
- name: kubernetes
  context:
    cluster: kubernetes
    user: jdoe@kubernetes
current-context: kubernetes
",
        server = fake.api_server_url(),
        api_ca = fake.api_ca_file().display(),
        issuer = fake.k8s_issuer(),
        ou_ca = fake.ca_file().display(),
    )
}

/// kubectl's in-tree `oidc` auth-provider (what the old plugin configured)
/// must work against the fake, and lose its session on a replayed token, or
/// the legacy side of the race tests proves nothing.
#[test]
fn kubectls_legacy_oidc_provider_refreshes_against_the_fake_once_per_token() {
    let fake = start();
    let client = client_for(&fake);
    let refresh_token = bootstrap(&fake, &client).json()["token"]["refresh_token"].as_str().unwrap().to_string();
    let env = crate::common::TestEnv::new();
    let stale = legacy_kubeconfig(&fake, &fake.sign(&fake.k8s_claims(-5)), &refresh_token);
    std::fs::write(&env.kubeconfig, &stale).unwrap();

    let output = env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).timeout(Duration::from_secs(30)).run();
    output.assert_success();
    assert!(output.stdout.contains("\"name\":\"default\""), "{output}");
    assert_eq!(fake.successful_refreshes(), 1);
    let requests = fake.api().requests();
    assert!(requests.contains(&("GET /api/v1/namespaces/default".to_string(), 200)), "{requests:?}");
    let written = String::from_utf8(env.read_kubeconfig()).unwrap();
    assert!(!written.contains(&refresh_token), "kubectl stores the rotated refresh token");

    // A second copy of the old kubeconfig (another tool) replays the used token.
    std::fs::write(&env.kubeconfig, &stale).unwrap();
    let output = env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).timeout(Duration::from_secs(30)).run();
    assert!(!output.success(), "{output}");
    assert!(output.stderr.contains("401"), "{output}");
    // (golang oauth2 tries Basic, then the form; kubectl asks for /version first: several refusals.)
    assert!(fake.failed_refreshes() >= 1);
    assert_eq!(fake.successful_refreshes(), 1);
}

#[test]
fn cli_local_issuers_follow_the_host_header_and_the_bootstrap_wants_the_configured_host() {
    let fake = FakeOpenUnison::start(FakeConfig { ou_host_name: Some("ou.example".into()), ..fake_config() });
    let client = client_for(&fake);
    let id_token = cli_id_token(&fake, &client);
    assert_eq!(jwt::claims_unverified(&id_token).unwrap()["iss"], fake.cli_issuer(), "from the request's Host");
    let url = format!("{}/k8slogin/token/user", fake.base_url());
    let refused = client.get(&url, &[("authorization", &format!("Bearer {id_token}"))]).unwrap();
    assert_eq!(refused.status, 401);
    assert!(refused.header("www-authenticate").unwrap().starts_with("Bearer "));
    assert!(!refused.body.is_empty(), "the servlet container's error page");
    assert_eq!(fake.sessions_minted(), 0);
    // Asked under the configured name (here through `Host` and `X-Forwarded-Port`), it is taken.
    let port = fake.port().to_string();
    let headers = [("host", "ou.example"), ("x-forwarded-port", port.as_str())];
    let pkce = new_pkce();
    let location = client.get(&authorize_url(&fake, &fake.redirect_uri(), &pkce, "s", "n"), &[]).unwrap();
    let code = param(location.header("location").unwrap(), "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("client_id", "cli-local"),
        ("code_verifier", pkce.verifier.as_str()),
    ];
    let exchanged = client.post_form(&format!("{}/token", fake.cli_issuer()), &form, &headers).unwrap();
    let id_token = exchanged.json()["id_token"].as_str().unwrap().to_string();
    assert_eq!(
        jwt::claims_unverified(&id_token).unwrap()["iss"],
        format!("https://{}/auth/idp/k8s-login-cli", fake.ou_host())
    );
    let taken = client.get(&url, &[("authorization", &format!("Bearer {id_token}"))]).unwrap();
    assert_eq!(taken.status, 200, "{}", taken.text());
    assert_eq!(fake.host_headers().last().map(String::as_str), Some(fake.host().as_str()));
}

#[test]
fn a_transient_refresh_401_leaves_the_token_unspent_once() {
    let fake = start();
    let client = client_for(&fake);
    let token = bootstrap(&fake, &client).json()["token"]["refresh_token"].as_str().unwrap().to_string();
    fake.set_fault(Fault::RefreshTransient401);
    assert_empty_json_error(&refresh(&fake, &client, &token), 401);
    let rotated = refresh(&fake, &client, &token);
    assert_eq!(rotated.status, 200, "{}", rotated.text());
    assert_empty_json_error(&refresh(&fake, &client, &token), 401);
    assert_eq!((fake.successful_refreshes(), fake.failed_refreshes()), (1, 2));
}
