//! Living with many clusters, end to end: two OpenUnison hosts that both call
//! their cluster `kubernetes`, `status` (rows, table, JSON, `--check`, no
//! tokens), `logout` (one context, shared sessions, `--all`, `--purge`, the
//! current context) and the usage errors when there is nothing to act on.

use std::time::Duration;

use serde_json::{Value, json};

use super::login::{
    UNRELATED_KUBECONFIG, args_with, args_without_host, entry, kubectl_get, names, read_yaml, stem, yaml,
};
use crate::common::{Output, TestContext, TestEnv, fake_config, login_args};
use crate::fake::{BrowserMode, FakeBrowser, FakeOpenUnison};

/// `kubectl --context NAME get --raw /api/v1/namespaces/default`.
fn kubectl_get_in(env: &TestEnv, context: &str) -> Output {
    env.kubectl(["--context", context, "get", "--raw", "/api/v1/namespaces/default"]).run()
}

/// `status -o json`, parsed.
fn status_json(env: &TestEnv, extra: &[&str]) -> Value {
    let (output, status) = status_json_output(env, extra);
    output.assert_success();
    status
}

/// `status -o json` and its output, whatever its exit status.
fn status_json_output(env: &TestEnv, extra: &[&str]) -> (Output, Value) {
    let mut args = vec!["status", "-o", "json"];
    args.extend(extra);
    let output = env.oulogin(args).run();
    let status = serde_json::from_str(&output.stdout).unwrap_or_else(|err| panic!("not JSON ({err}):\n{output}"));
    (output, status)
}

/// The user entry `logout` leaves: `token --logged-out` for `host` (and the
/// context, when the user entry is its alone), nothing else.
#[track_caller]
fn assert_logged_out_user(config: &Value, user: &str, host: &str, context: Option<&str>) {
    let entry = entry(config, "users", user).unwrap_or_else(|| panic!("no user `{user}` in {config}"));
    let mut args = vec![json!("token"), json!("--logged-out"), json!("--host"), json!(host)];
    if let Some(context) = context {
        args.extend([json!("--context"), json!(context)]);
    }
    assert_eq!(
        entry["user"],
        json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "kubectl-oulogin",
            "args": args,
            "interactiveMode": "Never",
            "provideClusterInfo": false,
            "installHint": entry["user"]["exec"]["installHint"],
        }}),
        "user `{user}`"
    );
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
        let a = FakeOpenUnison::start(fake_config());
        let b = FakeOpenUnison::start(fake_config());
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
        row["idleSeconds"] = Value::Null;
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

/// `59s left` → `<n>s left`, `expired 60m ago` → `expired <n>m ago`.
fn mask_seconds(cell: &str) -> String {
    let words: Vec<String> = cell
        .split(' ')
        .map(|word| match word.char_indices().last() {
            Some((at, unit @ ('s' | 'm' | 'h' | 'd')))
                if at > 0 && word[..at].bytes().all(|byte| byte.is_ascii_digit()) =>
            {
                format!("<n>{unit}")
            }
            _ => word.to_string(),
        })
        .collect();
    words.join(" ")
}

#[test]
fn status_lists_exactly_our_contexts_and_the_old_plugins() {
    let TestContext { env, fake, browser } = TestContext::new();
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
        let idle = row["idleSeconds"].as_i64().unwrap_or_else(|| panic!("no idle time in {row}"));
        let expected = if row["context"] == "legacy" { 3650..=3670 } else { 0..=20 };
        assert!(expected.contains(&idle), "{idle} s idle for {row}");
        row["idleSeconds"] = json!("<n>");
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
                "idleSeconds": "<n>",
                "groups": ["k8s-cluster-admins", "developers"],
                "state": "unknown",
                "stateReason": "the old plugin's auth-provider user: kubectl refreshes it itself, it is not checked",
            },
            {
                "context": "kubernetes",
                "current": true,
                "host": "127.0.0.1:<port>",
                "user": "jdoe@kubernetes",
                "credentials": "exec",
                "session": "<sessions>/127.0.0.1_<port>.json",
                "tokenExpiresInSeconds": "<n>",
                "idleSeconds": "<n>",
                "groups": ["k8s-cluster-admins", "developers"],
                "state": "alive",
                "stateReason": null,
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
        vec!["CURRENT", "CONTEXT", "HOST", "USER", "TOKEN", "STATE"],
        vec!["", "legacy", "old-ou.example.com", "jdoe@legacy-cluster", "expired <n>m ago", "unknown"],
        vec!["*", "kubernetes", "127.0.0.1:<port>", "jdoe@kubernetes", "<n>s left", "alive"],
    ];
    assert_eq!(cells, expected, "\n{}", table.stdout);
    assert!(!table.stdout.contains(&sessions), "the default table leaves the session path to `-o wide`");
    // Typical names fit a 100-column terminal.
    assert!(table.stdout.lines().all(|line| line.chars().count() <= 100), "\n{}", table.stdout);

    // `-o wide`: the session path, the time since the last refresh, the groups.
    let wide = env.oulogin(["status", "-o", "wide"]).run();
    wide.assert_success();
    let cells = table_cells(&wide.stdout, &masks);
    let expected: Vec<Vec<&str>> = vec![
        vec!["CURRENT", "CONTEXT", "HOST", "USER", "TOKEN", "STATE", "IDLE", "SESSION", "GROUPS"],
        vec![
            "",
            "legacy",
            "old-ou.example.com",
            "jdoe@legacy-cluster",
            "expired <n>m ago",
            "unknown",
            "<n>m",
            "kubeconfig",
            "k8s-cluster-admins,developers",
        ],
        vec![
            "*",
            "kubernetes",
            "127.0.0.1:<port>",
            "jdoe@kubernetes",
            "<n>s left",
            "alive",
            "<n>s",
            "<sessions>/127.0.0.1_<port>.json",
            "k8s-cluster-admins,developers",
        ],
    ];
    assert_eq!(cells, expected, "\n{}", wide.stdout);

    // `-o name`: the names only, in kubeconfig order; `--context` picks one.
    let name = env.oulogin(["status", "-o", "name"]).run();
    name.assert_success();
    assert_eq!(name.stdout, "legacy\nkubernetes\n", "{name}");
    let one = env.oulogin(["status", "-o", "name", "--context", "kubernetes"]).run();
    one.assert_success();
    assert_eq!(one.stdout, "kubernetes\n", "{one}");

    // No token anywhere in what status printed.
    let check = env.oulogin(["status", "--check", "-o", "json"]).run();
    check.assert_success();
    let mut secrets = fake.issued_tokens();
    secrets.extend(legacy_tokens);
    for output in [&table, &as_yaml, &check, &wide, &name] {
        for secret in &secrets {
            assert!(!output.stdout.contains(secret.as_str()) && !output.stderr.contains(secret.as_str()), "{output}");
        }
    }
}

#[test]
fn status_check_asks_the_server_whether_the_session_is_alive() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let alive = status_rows(&status_json(&env, &["--check"]));
    assert_eq!(row(&alive, "kubernetes")["state"], "alive");
    assert_eq!(fake.successful_refreshes(), 1, "--check costs one refresh");

    // Without `--check`, an expired token is `unknown` and exits 0.
    let without_check = env.oulogin(["status"]).run();
    without_check.assert_success();

    fake.kill_all_sessions();
    let (output, expired) = status_json_output(&env, &["--check"]);
    output.assert_code(1);
    assert_eq!(row(&status_rows(&expired), "kubernetes")["state"], "expired");
    let table = env.oulogin(["status", "--check"]).run();
    table.assert_code(1);
    assert!(
        table.stderr.lines().any(|line| line.starts_with("error: 1 of the checked sessions is not alive")),
        "{table}"
    );
    let login =
        format!("hint: log in again with `kubectl oulogin --context kubernetes --port {}", fake.redirect_port());
    assert!(table.stderr.lines().any(|line| line.starts_with(&login)), "{table}");
    assert!(!table.stderr.contains("NAME"), "a placeholder:\n{table}");
    let line = table.stdout.lines().find(|line| line.contains("kubernetes")).expect("a row");
    assert!(line.trim_end().ends_with("expired"), "{table}");
    assert_eq!(browser.opened(), 1, "status never opens a browser");
}

#[test]
fn status_check_says_why_a_state_is_unknown_and_fails() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    // The session remembers a CA file that now holds no certificate: the
    // check cannot even reach OpenUnison.
    let session = session_file(&env, &fake);
    let mut stored: Value = serde_json::from_str(&std::fs::read_to_string(&session).unwrap()).unwrap();
    let junk = env.root().join("junk-ca.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    stored["trust"] = json!({"ca_file": junk});
    std::fs::write(&session, serde_json::to_vec(&stored).unwrap()).unwrap();

    let (output, status) = status_json_output(&env, &["--check"]);
    output.assert_code(1);
    let row = row(&status_rows(&status), "kubernetes").clone();
    assert_eq!(row["state"], "unknown", "{output}");
    let reason = row["stateReason"].as_str().unwrap_or_else(|| panic!("no reason in {row}"));
    assert!(reason.contains("junk-ca.pem"), "{reason}");
    let table = env.oulogin(["status", "--check"]).run();
    table.assert_code(1);
    assert!(
        table
            .stderr
            .lines()
            .any(|line| line.starts_with("`kubernetes`: state unknown: ") && line.contains("junk-ca.pem")),
        "{table}"
    );
}

/// Two hosts logged in through `KUBECONFIG=ours.yaml:unrelated.yaml`, where
/// `ours.yaml` starts empty, so that everything we write goes there and the
/// unrelated file must stay byte-identical.
struct TwoFiles {
    env: TestEnv,
    ours: std::path::PathBuf,
    unrelated: std::path::PathBuf,
}

impl TwoFiles {
    fn new() -> TwoFiles {
        let mut env = TestEnv::new();
        let ours = env.root().join("ours.yaml");
        let unrelated = env.root().join("unrelated.yaml");
        std::fs::write(&ours, "").unwrap();
        std::fs::write(&unrelated, UNRELATED_KUBECONFIG).unwrap();
        env.set_kubeconfig_var(Some(&[&ours, &unrelated]));
        TwoFiles { env, ours, unrelated }
    }

    #[track_caller]
    fn assert_unrelated_untouched(&self) {
        assert_eq!(std::fs::read_to_string(&self.unrelated).unwrap(), UNRELATED_KUBECONFIG);
    }
}

/// Both hosts logged in to (A first), with `KUBECONFIG` naming two files.
fn logged_in_to_both_across_two_files() -> (TwoHosts, TwoFiles) {
    let hosts = TwoHosts::start();
    let files = TwoFiles::new();
    hosts.log_in_to_both(&files.env);
    (hosts, files)
}

fn session_file(env: &TestEnv, fake: &FakeOpenUnison) -> std::path::PathBuf {
    env.session_dir().join(format!("{}.json", stem(fake)))
}

#[test]
fn logout_of_one_context_leaves_the_other_working_and_everything_else_unchanged() {
    let (hosts, files) = logged_in_to_both_across_two_files();
    let env = &files.env;
    let b_name = hosts.b_name();
    let before = read_yaml(&files.ours);

    let logout = env.oulogin(["logout", "--context", "kubernetes"]).run();
    logout.assert_success();
    assert!(logout.stdout.is_empty(), "{logout}");
    logout.assert_stderr_contains("inactivity timeout").assert_stderr_contains(&hosts.a.host());
    assert!(!logout.stderr.contains(&hosts.b.host()), "{logout}");
    assert!(!logout.stderr.contains("shared"), "nothing else shared A's session:\n{logout}");
    assert!(!session_file(env, &hosts.a).exists(), "A's session file is gone");
    assert!(session_file(env, &hosts.b).exists(), "B's session file is kept");

    files.assert_unrelated_untouched();
    let after = read_yaml(&files.ours);
    assert_eq!(names(&after, "users"), names(&before, "users"));
    assert_logged_out_user(&after, "jdoe@kubernetes", &hosts.a.host(), Some("kubernetes"));
    assert_eq!(names(&after, "contexts"), names(&before, "contexts"), "contexts stay without --purge");
    assert_eq!(names(&after, "clusters"), names(&before, "clusters"));
    for (list, name) in
        [("users", format!("jdoe@{b_name}")), ("contexts", b_name.clone()), ("clusters", b_name.clone())]
    {
        assert_eq!(entry(&after, list, &name), entry(&before, list, &name), "{list} `{name}` changed");
    }
    assert_eq!(after["current-context"], before["current-context"]);

    kubectl_get_in(env, &b_name).assert_success();
    assert!(!kubectl_get_in(env, "kubernetes").success(), "A has no credentials any more");
}

#[test]
fn logout_names_the_other_contexts_that_shared_the_session() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    env.oulogin(args_with(&fake, &browser, &["--context", "second"])).run().assert_success();
    kubectl_get_in(&env, "kubernetes").assert_success();
    kubectl_get_in(&env, "second").assert_success();

    let logout = env.oulogin(["logout", "--context", "kubernetes"]).run();
    logout.assert_success().assert_stderr_contains("`second`").assert_stderr_contains("inactivity timeout");
    assert!(!session_file(&env, &fake).exists());
    assert!(!kubectl_get_in(&env, "second").success(), "the shared session is gone for `second` too");
}

#[test]
fn logout_all_removes_only_what_we_wrote() {
    let TestContext { env, fake, browser } = TestContext::new();
    let (mixed, _) = mixed_kubeconfig(&fake);
    env.write_kubeconfig(&mixed);
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let before = read_yaml(&env.kubeconfig);

    let logout = env.oulogin(["logout", "--all"]).run();
    logout.assert_success().assert_stderr_contains("inactivity timeout");
    let after = read_yaml(&env.kubeconfig);
    assert_logged_out_user(&after, "jdoe@kubernetes", &fake.host(), Some("kubernetes"));
    let mut expected = before.clone();
    for user in expected["users"].as_array_mut().unwrap() {
        if user["name"] == "jdoe@kubernetes" {
            *user = entry(&after, "users", "jdoe@kubernetes").unwrap().clone();
        }
    }
    assert_eq!(after, expected, "only our user is logged out; the old plugin's and unrelated ones stay");
    assert!(!session_file(&env, &fake).exists());
    let rows = status_rows(&status_json(&env, &[]));
    assert_eq!(rows.len(), 2, "the old plugin's context and ours, logged out: {rows:#?}");
    assert_eq!(row(&rows, "legacy")["credentials"], "auth-provider");
    assert_eq!(row(&rows, "kubernetes")["state"], "logged-out");
    // Unrelated and old-plugin credentials are still in place, unchanged in the merged view.
    for user in ["admin", "dex-user", "aws", "jdoe@legacy-cluster"] {
        assert_eq!(entry(&after, "users", user), entry(&yaml(mixed.as_bytes()), "users", user));
    }
}

#[test]
fn logout_purge_removes_the_context_and_its_cluster() {
    let (hosts, files) = logged_in_to_both_across_two_files();
    let env = &files.env;
    let b_name = hosts.b_name();
    let before = read_yaml(&files.ours);

    let logout = env.oulogin(["logout", "--context", &b_name, "--purge"]).run();
    logout.assert_success().assert_stderr_contains("inactivity timeout");
    let after = read_yaml(&files.ours);
    assert_eq!(names(&after, "contexts"), ["kubernetes"]);
    assert_eq!(names(&after, "clusters"), ["kubernetes"]);
    assert_eq!(names(&after, "users"), ["jdoe@kubernetes"]);
    for list in ["contexts", "clusters", "users"] {
        let name = if list == "users" { "jdoe@kubernetes" } else { "kubernetes" };
        assert_eq!(entry(&after, list, name), entry(&before, list, name));
    }
    assert!(after["current-context"].as_str().unwrap_or_default().is_empty(), "B was current: {after}");
    assert!(!session_file(env, &hosts.b).exists());
    files.assert_unrelated_untouched();
    kubectl_get_in(env, "kubernetes").assert_success();
}

#[test]
fn logout_without_a_context_logs_out_of_the_current_one() {
    let hosts = TwoHosts::start();
    let env = TestEnv::new();
    hosts.log_in_to_both(&env);
    let b_name = hosts.b_name();
    let logout = env.oulogin(["logout"]).run();
    logout.assert_success().assert_stderr_contains(&b_name);
    let after = read_yaml(&env.kubeconfig);
    assert_logged_out_user(&after, &format!("jdoe@{b_name}"), &hosts.b.host(), Some(&b_name));
    assert_eq!(entry(&after, "users", "jdoe@kubernetes").unwrap()["user"]["exec"]["args"][1], "--session");
    assert!(!session_file(&env, &hosts.b).exists());
    assert!(session_file(&env, &hosts.a).exists());
    kubectl_get_in(&env, "kubernetes").assert_success();
}

#[test]
fn login_without_host_or_context_uses_the_current_context() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let alive = env.oulogin(args_without_host(&fake, &browser)).run();
    alive.assert_success().assert_stderr_contains("already logged in");
    assert_eq!(browser.opened(), 1);

    fake.kill_all_sessions();
    let again = env.oulogin(args_without_host(&fake, &browser)).run();
    again.assert_success().assert_stderr_contains(&fake.host());
    assert_eq!(browser.opened(), 2, "a dead session means a browser login");
    let config = read_yaml(&env.kubeconfig);
    assert_eq!(names(&config, "contexts"), ["prod", "kubernetes"]);
    kubectl_get(&env).assert_success();
}

/// Exit 2, an `error:` and a `hint:` line containing `hint`, the kubeconfig unchanged.
#[track_caller]
fn assert_usage_error(env: &TestEnv, output: &Output, hint: &str, kubeconfig: &[u8]) {
    output.assert_code(2);
    assert!(output.stderr.lines().any(|line| line.starts_with("error: ")), "{output}");
    assert!(output.stderr.lines().any(|line| line.starts_with("hint: ") && line.contains(hint)), "{output}");
    assert!(output.stdout.is_empty(), "{output}");
    assert_eq!(env.read_kubeconfig(), kubeconfig);
}

#[test]
fn without_a_usable_current_context_login_and_logout_are_usage_errors() {
    let TestContext { env, fake, browser } = TestContext::new();
    // No kubeconfig at all.
    let login = env.oulogin(args_without_host(&fake, &browser)).run();
    assert_usage_error(&env, &login, "--host", b"");
    assert_usage_error(&env, &env.oulogin(["logout"]).run(), "--context", b"");
    // A current context that is not ours.
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    let login = env.oulogin(args_without_host(&fake, &browser)).run();
    assert_usage_error(&env, &login, "--host HOST`", UNRELATED_KUBECONFIG.as_bytes());
    login.assert_stderr_contains("`prod`");
    assert!(
        !login.stderr.contains("--context prod"),
        "never suggest pointing a foreign context at OpenUnison:\n{login}"
    );
    let logout = env.oulogin(["logout"]).run();
    assert_usage_error(&env, &logout, "status", UNRELATED_KUBECONFIG.as_bytes());
    logout.assert_stderr_contains("`prod`");
    // A current context that names nothing.
    let dangling = UNRELATED_KUBECONFIG.replace("current-context: prod", "current-context: gone");
    env.write_kubeconfig(&dangling);
    let login = env.oulogin(args_without_host(&fake, &browser)).run();
    assert_usage_error(&env, &login, "--host", dangling.as_bytes());
    login.assert_stderr_contains("`gone`");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(browser.opened(), 0);
}

#[test]
fn logging_out_twice_says_the_context_is_logged_out_already() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    env.oulogin(["logout"]).run().assert_success();
    let written = env.read_kubeconfig();
    let again = env.oulogin(["logout", "--context", "kubernetes"]).run();
    again.assert_success();
    assert!(again.stdout.is_empty(), "{again}");
    // The login command with the port the session was created with (not
    // the default), and no placeholder.
    let login = format!("`kubectl oulogin --context kubernetes --port {}", fake.redirect_port());
    again.assert_stderr_contains("already logged out of `kubernetes`").assert_stderr_contains(&login);
    assert!(!again.stderr.contains("NAME"), "{again}");
    assert!(!again.stderr.contains("inactivity timeout"), "nothing was logged out now:\n{again}");
    assert_eq!(env.read_kubeconfig(), written, "the kubeconfig is unchanged");
    // `--all` says the same, and also exits 0.
    env.oulogin(["logout", "--all"]).run().assert_success().assert_stderr_contains("already logged out");
    assert_eq!(env.read_kubeconfig(), written);
    let unknown = env.oulogin(["logout", "--context", "nosuch"]).run();
    assert_usage_error(&env, &unknown, "status", &written);
    unknown.assert_stderr_contains("`nosuch` does not exist");
    // `--purge` still removes what is left of it.
    env.oulogin(["logout", "--purge"]).run().assert_success();
    let purged = read_yaml(&env.kubeconfig);
    assert!(names(&purged, "contexts").is_empty() && names(&purged, "users").is_empty(), "{purged}");
    assert!(names(&purged, "clusters").is_empty(), "{purged}");
}

/// `script -qec CMD /dev/null`: `CMD` run by `sh` on a pseudo-terminal (the
/// way a person runs kubectl, where kubectl asks for a password when a
/// context has no credentials), with nothing typed.
fn on_a_terminal(env: &TestEnv, command: &str) -> Output {
    env.command("/usr/bin/script", ["-qec", command, "/dev/null"]).stdin("").timeout(Duration::from_secs(30)).run()
}

#[test]
fn after_logout_kubectl_on_a_terminal_fails_at_once_naming_the_login_command() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let get = "kubectl get --raw /api/v1/namespaces/default";
    on_a_terminal(&env, get).assert_success();
    let logout = env.oulogin(["logout"]).run();
    logout.assert_success();

    let started = std::time::Instant::now();
    let after = on_a_terminal(&env, get);
    let took = started.elapsed();
    assert!(!after.success(), "kubectl must fail:\n{after}");
    let text = format!("{}{}", after.stdout, after.stderr);
    assert!(!text.contains("Username") && !text.contains("Password"), "a credentials prompt:\n{after}");
    let login = format!("kubectl oulogin --context kubernetes --port {}", fake.redirect_port());
    assert!(text.contains(&login), "the login command is named:\n{after}");
    assert!(text.contains("logged out"), "{after}");
    assert!(took < Duration::from_secs(20), "kubectl waited {took:?}:\n{after}");
    assert_eq!(browser.opened(), 1, "no browser for kubectl after logout");
    assert_eq!(fake.sessions_minted(), 1, "no login started");
    // No token is left anywhere: not in the kubeconfig, not in the session directory.
    let config = String::from_utf8(env.read_kubeconfig()).unwrap();
    let mut left = config.clone();
    for entry in std::fs::read_dir(env.session_dir()).unwrap().flatten() {
        left.push_str(&String::from_utf8_lossy(&std::fs::read(entry.path()).unwrap_or_default()));
    }
    for token in fake.issued_tokens().iter().chain(&fake.current_refresh_tokens()) {
        assert!(!left.contains(token.as_str()), "a token is left after logout");
    }
    // `status` shows the context as logged out, with the command that logs in again.
    let status = env.oulogin(["status"]).run();
    status.assert_success();
    let line = status.stdout.lines().find(|line| line.contains("kubernetes")).expect("a row");
    assert!(line.trim_end().ends_with("logged-out"), "{status}");
    status.assert_stderr_contains(&format!(
        "`{login} --certificate-authority {}` logs in there again",
        fake.ca_file().display()
    ));

    // The named command logs in there again, on the remembered port, and kubectl works.
    let again = env.oulogin(["--context", "kubernetes"]).run();
    again.assert_success().assert_stderr_contains(&format!("was logged out of {}", fake.host()));
    assert_eq!(browser.opened(), 2);
    on_a_terminal(&env, get).assert_success();
}

#[test]
fn logging_in_again_after_logout_reuses_the_entries_left_behind() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.write_kubeconfig(UNRELATED_KUBECONFIG);
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let before = read_yaml(&env.kubeconfig);
    env.oulogin(["logout"]).run().assert_success();
    let status = env.oulogin(["status"]).run();
    status.assert_success();
    status.assert_stderr_contains(&format!("logged out of `kubernetes` ({})", fake.host()));

    // Nothing on the command line: the host is the logged-out stanza's, and
    // the CA, browser command and redirect port (the sandbox fake's, not
    // 8400) are what logout noted of the context.
    let again = env.oulogin(Vec::<String>::new()).run();
    again.assert_success();
    again.assert_stderr_contains(&format!("was logged out of {}", fake.host()));
    assert!(!again.stderr.contains("already taken"), "{again}");
    let after = read_yaml(&env.kubeconfig);
    for list in ["clusters", "users", "contexts"] {
        assert_eq!(names(&after, list), names(&before, list), "{list}: the old names are reused");
    }
    assert_eq!(after["current-context"], "kubernetes");
    kubectl_get(&env).assert_success();

    // The note holds no token.
    let notes = std::fs::read_to_string(env.session_dir().join(".logouts.json")).unwrap();
    for token in fake.issued_tokens().iter().chain(&fake.current_refresh_tokens()) {
        assert!(!notes.contains(token.as_str()), "a token in the logout note:\n{notes}");
    }

    // A context an older version logged out of (its user entry removed) is
    // found by the note, and only while its cluster is the same API server:
    // a context of the same name that now points at another cluster is not
    // taken for it (a hint, not a guess).
    env.oulogin(["logout"]).run().assert_success();
    env.kubectl(["config", "delete-user", "jdoe@kubernetes"]).run().assert_success();
    let old_style = env.oulogin(Vec::<String>::new()).run();
    old_style.assert_success().assert_stderr_contains(&format!("was logged out of {}", fake.host()));
    env.oulogin(["logout"]).run().assert_success();
    env.kubectl(["config", "delete-user", "jdoe@kubernetes"]).run().assert_success();
    let ours = after["contexts"].as_array().unwrap().iter().find(|context| context["name"] == "kubernetes").unwrap();
    let cluster = ours["context"]["cluster"].as_str().unwrap().to_string();
    env.kubectl(["config", "set-cluster", &cluster, "--server=https://127.0.0.1:9"]).run().assert_success();
    let moved = env.read_kubeconfig();
    let guess = env.oulogin(Vec::<String>::new()).run();
    assert_usage_error(&env, &guess, "--host HOST --context kubernetes", &moved);

    let again = env.oulogin(login_args(&fake, &browser)).run();
    again.assert_success();
    kubectl_get(&env).assert_success();
}

/// Replaces the session's cached id_token with one that is no JWT, so that
/// the next `token` must refresh.
fn make_cached_token_stale(env: &TestEnv, fake: &FakeOpenUnison) {
    let path = session_file(env, fake);
    let mut stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    stored["id_token"] = json!("stale");
    std::fs::write(&path, serde_json::to_vec(&stored).unwrap()).unwrap();
}

#[test]
fn a_session_created_with_port_logs_in_again_on_it_and_hints_name_it() {
    let TestContext { env, fake, browser } = TestContext::new();
    let port = fake.redirect_port();
    assert_ne!(port, 8400);
    env.oulogin(login_args(&fake, &browser)).run().assert_success();

    // `--force` with no other flag: the remembered port (the fake browser
    // follows the redirect to it; OpenUnison accepts no other).
    env.oulogin(["--force"]).run().assert_success();
    assert_eq!((browser.opened(), fake.sessions_minted()), (2, 2));
    // `exec --context`: its own session, on the same port.
    env.oulogin(["exec", "--context", "kubernetes", "--", "true"]).run().assert_success();
    assert_eq!(fake.sessions_minted(), 3);

    // The session dies (and its cached token is stale): `token` logs in again on that port.
    fake.kill_all_sessions();
    make_cached_token_stale(&env, &fake);
    kubectl_get(&env).assert_success();
    assert_eq!(fake.sessions_minted(), 4);

    // When no browser may be opened, the hint names the port and the CA file.
    fake.kill_all_sessions();
    make_cached_token_stale(&env, &fake);
    let refused = env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).env("OULOGIN_NO_BROWSER", "1").run();
    assert!(!refused.success(), "{refused}");
    refused.assert_stderr_contains(&format!(
        "kubectl oulogin --host {} --force --certificate-authority {} --port {port}",
        fake.host(),
        fake.ca_file().display()
    ));
}

#[test]
fn kubectl_passes_global_flags_before_or_after_the_command() {
    let TestContext { env, fake, browser } = TestContext::new();
    let other = env.root().join("other-kubeconfig");
    let other_path = other.display().to_string();
    env.oulogin(args_with(&fake, &browser, &["--kubeconfig", &other_path])).run().assert_success();
    assert!(env.read_kubeconfig().is_empty(), "only the named kubeconfig is written");

    // Through the real kubectl, which hands everything after `oulogin` to the plugin.
    for args in [
        vec!["oulogin", "--kubeconfig", &other_path, "status", "-o", "name"],
        vec!["oulogin", "status", "--kubeconfig", &other_path, "-o", "name"],
        vec!["oulogin", "--kubeconfig", &other_path, "--context", "kubernetes", "status", "-o", "name"],
        vec!["oulogin", "status", "-o", "name", "--context", "kubernetes", "--kubeconfig", &other_path],
    ] {
        let status = env.kubectl(&args).run();
        status.assert_success();
        assert_eq!(status.stdout, "kubernetes\n", "{status}");
    }
    let logout = env.kubectl(["oulogin", "--kubeconfig", &other_path, "--context", "kubernetes", "logout"]).run();
    logout.assert_success().assert_stderr_contains("logged out of `kubernetes`");
    assert_logged_out_user(&read_yaml(&other), "jdoe@kubernetes", &fake.host(), Some("kubernetes"));
    // Login flags stay with the login: before a command they are a usage error.
    let misplaced = env.kubectl(["oulogin", "--force", "status"]).run();
    misplaced.assert_code(2).assert_stderr_contains("`--force`");

    // `version` says what `--version` says.
    let version = env.kubectl(["oulogin", "version"]).run();
    version.assert_success();
    let flag = env.oulogin(["--version"]).run();
    assert_eq!(version.stdout, flag.stdout);
    assert!(version.stdout.starts_with("kubectl-oulogin "), "{version}");
}

#[test]
fn every_help_ends_with_examples_and_token_is_left_out_of_the_list() {
    let env = TestEnv::new();
    let main = env.oulogin(["--help"]).run();
    main.assert_success();
    let commands: Vec<&str> = main
        .stdout
        .lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix("  ")?.split_whitespace().next())
        .collect();
    assert!(commands.contains(&"status") && commands.contains(&"version"), "{main}");
    assert!(!commands.contains(&"token"), "the command for kubectl is listed:\n{main}");
    assert!(!main.stdout.contains("Log in into"), "{main}");
    for command in [&[][..], &["exec"], &["token"], &["status"], &["logout"], &["completion"], &["version"]] {
        let mut args: Vec<&str> = command.to_vec();
        args.push("--help");
        let help = env.oulogin(&args).run();
        help.assert_success();
        let examples = help.stdout.rfind("\nExamples").unwrap_or_else(|| panic!("no examples:\n{help}"));
        let tail = &help.stdout[examples..];
        assert!(tail.contains("kubectl"), "{help}");
        // Only the exit codes may follow the examples (on the main help).
        assert!(!tail.contains("\nOptions:") && !tail.contains("\nUsage:"), "examples are not last:\n{help}");
    }
}

#[test]
fn certificate_authority_data_is_trusted_and_remembered() {
    use base64::Engine as _;
    let TestContext { env, fake, browser } = TestContext::new();
    let data = base64::engine::general_purpose::STANDARD.encode(fake.ca_pem());
    let mut args = login_args(&fake, &browser);
    let at = args.iter().position(|arg| arg == "--certificate-authority").unwrap();
    args.splice(at..at + 2, ["--certificate-authority-data".to_string(), data]);
    env.oulogin(&args).run().assert_success();
    kubectl_get(&env).assert_success();
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(session_file(&env, &fake)).unwrap()).unwrap();
    assert_eq!(stored["trust"]["ca_data"], fake.ca_pem().as_str());
    assert!(stored["trust"].get("ca_file").is_none(), "{stored}");
    // Remembered: a login again with no CA flag trusts it too.
    env.oulogin(["--force"]).run().assert_success();
    assert_eq!(browser.opened(), 2);

    let bad = env.oulogin(["--host", &fake.host(), "--certificate-authority-data", "bm90IHBlbQ=="]).run();
    bad.assert_code(2).assert_stderr_contains("`--certificate-authority-data` is not base64-encoded PEM");
}

#[test]
fn login_messages_speak_of_exit_statuses_and_the_paste_flow_in_words() {
    let TestContext { env, fake, .. } = TestContext::new();
    let port = fake.redirect_port().to_string();
    let ca = fake.ca_file().display().to_string();
    let login = |more: &[&str]| -> Vec<String> {
        let base = ["--host", &fake.host(), "--port", &port, "--timeout", "1s", "--certificate-authority", &ca];
        base.iter().chain(more).map(|arg| arg.to_string()).collect()
    };

    let failing = env.oulogin(login(&["--browser-command", "sh -c 'exit 3'"])).run();
    failing.assert_code(1).assert_stderr_contains("the browser command `sh -c 'exit 3'` exited with status 3");
    let killed = env.oulogin(login(&["--browser-command", "sh -c 'kill -9 $$'"])).run();
    killed.assert_code(1).assert_stderr_contains("was killed by signal 9 (SIGKILL)");
    for output in [&failing, &killed] {
        assert!(!output.stderr.contains("ExitStatus") && !output.stderr.contains("unix_wait_status"), "{output}");
    }

    let pasting = env.oulogin(login(&["--no-browser"])).stdin("").run();
    pasting.assert_code(1);
    assert!(
        pasting.stderr.lines().any(|line| line.starts_with("hint: ")
            && line.contains("paste")
            && line.contains(&format!("http://127.0.0.1:{port}/redirect"))),
        "{pasting}"
    );
}

/// `kubectl oulogin status | head -1` with contexts logged in to two hosts,
/// and so many contexts over them that the table is far larger than a pipe
/// holds: `head` closes the pipe while `status` is still writing. That is a
/// normal end, as in ripgrep and zoxide: exit 0, nothing on stderr (`print!`
/// panicked: exit 101, and SIGABRT in a release build).
#[test]
fn status_into_a_pipe_closed_after_the_first_line_ends_quietly_with_exit_0() {
    let hosts = TwoHosts::start();
    let env = TestEnv::new();
    hosts.log_in_to_both(&env);
    let mut config = read_yaml(&env.kubeconfig);
    let contexts = config["contexts"].as_array_mut().expect("contexts");
    let logged_in = contexts.clone();
    assert_eq!(logged_in.len(), 2);
    for index in 0..4000 {
        let mut context = logged_in[index % 2].clone();
        context["name"] = json!(format!("context-{index:04}"));
        contexts.push(context);
    }
    env.write_kubeconfig(&serde_json::to_string(&config).unwrap());
    let full = env.oulogin(["status"]).run();
    full.assert_success();
    assert!(full.stdout.len() > 4 * 65536, "the table must outgrow a pipe: {} bytes", full.stdout.len());

    // The plugin's exit status and stderr go to files beside the environment.
    let piped = env
        .command("/bin/sh", ["-c", "{ kubectl-oulogin status 2>status.stderr; echo $? >status.code; } | head -1"])
        .run();
    piped.assert_success();
    assert_eq!(piped.stdout.lines().collect::<Vec<_>>(), [full.stdout.lines().next().unwrap()], "{piped}");
    let code = std::fs::read_to_string(env.root().join("status.code")).unwrap();
    let stderr = std::fs::read_to_string(env.root().join("status.stderr")).unwrap();
    assert_eq!((code.trim(), stderr.as_str()), ("0", ""), "status into a closed pipe");
}
