//! Living with many clusters, end to end: two OpenUnison hosts that both call
//! their cluster `kubernetes`, `status` (rows, table, JSON, `--check`, no
//! tokens), `logout` (one context, shared sessions, `--all`, `--purge`, the
//! current context) and the usage errors when there is nothing to act on.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::login::{
    UNRELATED_KUBECONFIG, args_with, args_without_host, entry, kubectl_get, names, read_yaml, start_fake, stem, yaml,
};
use crate::common::{Output, TestEnv, login_args};
use crate::fake::{BrowserMode, FakeBrowser, FakeOpenUnison};

/// `kubectl --context NAME get --raw /api/v1/namespaces/default`.
fn kubectl_get_in(env: &TestEnv, context: &str) -> Output {
    env.kubectl(["--context", context, "get", "--raw", "/api/v1/namespaces/default"]).run()
}

/// `status -o json`, parsed.
fn status_json(env: &TestEnv, extra: &[&str]) -> Value {
    let mut args = vec!["status", "-o", "json"];
    args.extend(extra);
    let output = env.oulogin(args).run();
    output.assert_success();
    serde_json::from_str(&output.stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{output}"))
}

fn status_rows(status: &Value) -> Vec<Value> {
    status["contexts"].as_array().unwrap_or_else(|| panic!("no `contexts` list: {status}")).clone()
}

fn row<'a>(rows: &'a [Value], context: &str) -> &'a Value {
    rows.iter().find(|row| row["context"] == context).unwrap_or_else(|| panic!("no row `{context}` in {rows:#?}"))
}

/// Two fakes on different ports, both with the chart's cluster name `kubernetes`.
struct TwoHosts {
    a: FakeOpenUnison,
    b: FakeOpenUnison,
    browser_a: FakeBrowser,
    browser_b: FakeBrowser,
}

impl TwoHosts {
    fn start() -> TwoHosts {
        let a = start_fake();
        let b = start_fake();
        assert_eq!((a.cluster_name(), b.cluster_name()), ("kubernetes", "kubernetes"));
        let browser_a = FakeBrowser::for_fake(&a, BrowserMode::Follow);
        let browser_b = FakeBrowser::for_fake(&b, BrowserMode::Follow);
        TwoHosts { a, b, browser_a, browser_b }
    }

    /// The names the second host's entries get: the cluster name qualified by the host.
    fn b_name(&self) -> String {
        format!("kubernetes-127.0.0.1-{}", self.b.port())
    }

    fn login_a(&self, env: &TestEnv, more: &[&str]) -> Output {
        env.oulogin(args_with(&self.a, &self.browser_a, more)).run()
    }

    fn login_b(&self, env: &TestEnv, more: &[&str]) -> Output {
        env.oulogin(args_with(&self.b, &self.browser_b, more)).run()
    }

    /// Logs in to both, A first.
    fn log_in_to_both(&self, env: &TestEnv) -> Output {
        self.login_a(env, &[]).assert_success();
        let second = self.login_b(env, &[]);
        second.assert_success();
        second
    }
}

#[test]
fn two_hosts_with_the_same_cluster_name_get_distinct_names() {
    let hosts = TwoHosts::start();
    let env = TestEnv::new();
    let second = hosts.log_in_to_both(&env);
    let b_name = hosts.b_name();
    second.assert_stderr_contains("`kubernetes` is already taken");
    second.assert_stderr_contains(&format!("cluster `{b_name}`"));
    second.assert_stderr_contains(&format!("user `jdoe@{b_name}`"));
    second.assert_stderr_contains(&format!("context `{b_name}`"));

    let config = read_yaml(&env.kubeconfig);
    assert_eq!(names(&config, "clusters"), ["kubernetes".to_string(), b_name.clone()]);
    assert_eq!(names(&config, "users"), ["jdoe@kubernetes".to_string(), format!("jdoe@{b_name}")]);
    assert_eq!(names(&config, "contexts"), ["kubernetes".to_string(), b_name.clone()]);
    assert_eq!(config["current-context"], b_name.as_str());
    let a_cluster = &entry(&config, "clusters", "kubernetes").unwrap()["cluster"];
    assert_eq!(a_cluster["server"], hosts.a.api_server_url().as_str(), "A's cluster was overwritten");

    let (a_before, b_before) = (hosts.a.api().ok_requests(), hosts.b.api().ok_requests());
    kubectl_get_in(&env, "kubernetes").assert_success();
    let a_after = hosts.a.api().ok_requests();
    assert!(a_after > a_before && hosts.b.api().ok_requests() == b_before, "context `kubernetes` reaches A only");
    kubectl_get_in(&env, &b_name).assert_success();
    assert!(hosts.a.api().ok_requests() == a_after && hosts.b.api().ok_requests() > b_before, "B's context reaches B");

    let rows = status_rows(&status_json(&env, &[]));
    assert_eq!(rows.len(), 2, "{rows:#?}");
    assert_eq!(row(&rows, "kubernetes")["host"], hosts.a.host().as_str());
    assert_eq!(row(&rows, &b_name)["host"], hosts.b.host().as_str());
    assert_eq!(row(&rows, &b_name)["user"], format!("jdoe@{b_name}").as_str());
    assert_eq!(row(&rows, &b_name)["current"], true);
    assert_eq!(row(&rows, "kubernetes")["current"], false);
}

#[test]
fn logging_in_again_to_the_same_host_reuses_its_names() {
    let hosts = TwoHosts::start();
    let env = TestEnv::new();
    hosts.log_in_to_both(&env);
    let before = read_yaml(&env.kubeconfig);
    let b_name = hosts.b_name();

    let again_a = hosts.login_a(&env, &["--force"]);
    again_a.assert_success();
    assert!(!again_a.stderr.contains("already taken"), "{again_a}");
    let again_b = hosts.login_b(&env, &["--force"]);
    again_b.assert_success();
    assert!(!again_b.stderr.contains("already taken"), "{again_b}");
    assert_eq!(hosts.browser_a.opened() + hosts.browser_b.opened(), 4, "both were real logins");

    let after = read_yaml(&env.kubeconfig);
    for list in ["clusters", "users", "contexts"] {
        assert_eq!(names(&after, list), names(&before, list), "{list} changed");
    }
    assert_eq!(after["current-context"], b_name.as_str());
    // Without --force, a working session is reused under its own names too.
    let reused = hosts.login_a(&env, &[]);
    reused.assert_success().assert_stderr_contains("already logged in").assert_stderr_contains("`kubernetes`");
    assert_eq!(read_yaml(&env.kubeconfig)["current-context"], "kubernetes");
    kubectl_get(&env).assert_success();
    kubectl_get_in(&env, &b_name).assert_success();
}

/// A kubeconfig with one old-plugin context (for a host nobody contacts) and
/// unrelated contexts of every kind: a token user, a dex oidc user, a foreign
/// exec plugin, a context whose user does not exist. Returns it and the
/// legacy user's tokens.
fn mixed_kubeconfig(fake: &FakeOpenUnison) -> (String, Vec<String>) {
    let mut claims = fake.k8s_claims(60);
    claims["iss"] = json!("https://old-ou.example.com/auth/idp/k8sIdp");
    claims["iat"] = json!(crate::fake::now_secs() - 3660);
    claims["exp"] = json!(crate::fake::now_secs() - 3600);
    let legacy_id_token = fake.sign(&claims);
    let legacy_refresh_token = "bGVnYWN5LXJlZnJlc2gtdG9rZW4tdmFsdWU=";
    let yaml = format!(
        r#"apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {{server: "https://prod.example.com:6443"}}
- name: legacy-cluster
  cluster: {{server: "https://old-api.example.com"}}
- name: dex-cluster
  cluster: {{server: "https://dex-api.example.com"}}
users:
- name: admin
  user: {{token: not-a-real-token}}
- name: jdoe@legacy-cluster
  user:
    auth-provider:
      name: oidc
      config:
        client-id: kubernetes
        client-secret: ""
        id-token: {legacy_id_token}
        idp-issuer-url: https://old-ou.example.com/auth/idp/k8sIdp
        refresh-token: {legacy_refresh_token}
- name: dex-user
  user:
    auth-provider:
      name: oidc
      config: {{client-id: k8s, idp-issuer-url: "https://dex.example.com/dex", id-token: dex-token-value}}
- name: aws
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: aws
      args: [eks, get-token, --cluster-name, prod]
contexts:
- name: prod
  context: {{cluster: prod, user: admin}}
- name: legacy
  context: {{cluster: legacy-cluster, user: jdoe@legacy-cluster}}
- name: dex
  context: {{cluster: dex-cluster, user: dex-user}}
- name: eks
  context: {{cluster: prod, user: aws}}
- name: dangling
  context: {{cluster: prod, user: nobody}}
current-context: prod
"#
    );
    (yaml, vec![legacy_id_token, legacy_refresh_token.to_string()])
}

/// A status document with every `tokenExpiresInSeconds` nulled (they tick).
fn without_times(mut status: Value) -> Value {
    for row in status["contexts"].as_array_mut().expect("a `contexts` list") {
        row["tokenExpiresInSeconds"] = Value::Null;
    }
    status
}

/// `text` with `from` replaced by `to` everywhere.
fn filtered(text: &str, replacements: &[(&str, &str)]) -> String {
    replacements.iter().fold(text.to_string(), |text, (from, to)| text.replace(from, to))
}

/// The table's cells, cut at the columns the header starts (so that a
/// misaligned row shows as garbled cells), then masked.
fn table_cells(table: &str, masks: &[(&str, &str)]) -> Vec<Vec<String>> {
    let mut lines = table.lines();
    let header = lines.next().expect("a header line");
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|(at, ch)| *ch != ' ' && (*at == 0 || header.as_bytes()[at - 1] == b' '))
        .map(|(at, _)| at)
        .collect();
    let cut = |line: &str| -> Vec<String> {
        starts
            .iter()
            .enumerate()
            .map(|(column, &start)| {
                let end = starts.get(column + 1).copied().unwrap_or(usize::MAX).min(line.len());
                let cell = line.get(start.min(line.len())..end).expect("ASCII table").trim().to_string();
                mask_seconds(&filtered(&cell, masks))
            })
            .collect()
    };
    std::iter::once(cut(header)).chain(lines.map(cut)).collect()
}

/// `59s left` → `<n>s left`, `expired 3600s ago` → `expired <n>s ago`.
fn mask_seconds(cell: &str) -> String {
    let words: Vec<String> = cell
        .split(' ')
        .map(|word| match word.strip_suffix('s') {
            Some(number) if !number.is_empty() && number.bytes().all(|byte| byte.is_ascii_digit()) => "<n>s".into(),
            _ => word.to_string(),
        })
        .collect();
    words.join(" ")
}

#[test]
fn status_lists_exactly_our_contexts_and_the_old_plugins() {
    let fake = start_fake();
    let browser = FakeBrowser::for_fake(&fake, BrowserMode::Follow);
    let env = TestEnv::new();
    let (mixed, legacy_tokens) = mixed_kubeconfig(&fake);
    env.write_kubeconfig(&mixed);
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let sessions = env.session_dir().display().to_string();
    let port = fake.port().to_string();
    let masks = [(sessions.as_str(), "<sessions>"), (port.as_str(), "<port>")];

    // JSON: the documented schema, with the times checked and then masked.
    let mut status = status_json(&env, &[]);
    for row in status["contexts"].as_array_mut().unwrap() {
        let seconds = row["tokenExpiresInSeconds"].as_i64().unwrap_or_else(|| panic!("no time left in {row}"));
        let expected = if row["context"] == "legacy" { -3610..=-3590 } else { 40..=60 };
        assert!(expected.contains(&seconds), "{seconds} s for {row}");
        row["tokenExpiresInSeconds"] = json!("<n>");
    }
    let status: Value = serde_json::from_str(&filtered(&status.to_string(), &masks)).unwrap();
    assert_eq!(
        status,
        json!({"contexts": [
            {
                "context": "legacy",
                "current": false,
                "host": "old-ou.example.com",
                "user": "jdoe@legacy-cluster",
                "credentials": "auth-provider",
                "session": "kubeconfig",
                "tokenExpiresInSeconds": "<n>",
                "state": "unknown",
            },
            {
                "context": "kubernetes",
                "current": true,
                "host": "127.0.0.1:<port>",
                "user": "jdoe@kubernetes",
                "credentials": "exec",
                "session": "<sessions>/127.0.0.1_<port>.json",
                "tokenExpiresInSeconds": "<n>",
                "state": "alive",
            },
        ]})
    );

    // YAML says the same as JSON.
    let as_yaml = env.oulogin(["status", "-o", "yaml"]).run();
    as_yaml.assert_success();
    assert_eq!(without_times(yaml(as_yaml.stdout.as_bytes())), without_times(status_json(&env, &[])), "{as_yaml}");

    // The table, aligned, with ports, paths and times masked.
    let table = env.oulogin(["status"]).run();
    table.assert_success();
    let cells = table_cells(&table.stdout, &masks);
    let expected: Vec<Vec<&str>> = vec![
        vec!["CURRENT", "CONTEXT", "HOST", "USER", "SESSION", "TOKEN", "STATE"],
        vec!["", "legacy", "old-ou.example.com", "jdoe@legacy-cluster", "kubeconfig", "expired <n>s ago", "unknown"],
        vec![
            "*",
            "kubernetes",
            "127.0.0.1:<port>",
            "jdoe@kubernetes",
            "<sessions>/127.0.0.1_<port>.json",
            "<n>s left",
            "alive",
        ],
    ];
    assert_eq!(cells, expected, "\n{}", table.stdout);

    // No token anywhere in what status printed.
    let check = env.oulogin(["status", "--check", "-o", "json"]).run();
    check.assert_success();
    let mut secrets = fake.issued_tokens();
    secrets.extend(legacy_tokens);
    for output in [&table, &as_yaml, &check] {
        for secret in &secrets {
            assert!(!output.stdout.contains(secret.as_str()) && !output.stderr.contains(secret.as_str()), "{output}");
        }
    }
}
