//! Security properties: no token anywhere but the ExecCredential, the
//! loopback listener on 127.0.0.1 only and answering two paths, PKCE S256 and
//! long random `state` and `nonce` in every authorization request, and
//! private files and directories whatever the umask.

use std::collections::HashSet;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::hostile::{Scene, WaitingLogin, query_param, raw_request};
use crate::common::{CapturedRun, Output, captured_runs};
use crate::fake::Fault;
use crate::fake::openunison::issued_by_any_fake;

/// Where in a captured run a token was found.
fn leaks_in(runs: &[CapturedRun], tokens: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for run in runs {
        let first = run.args.first().map(String::as_str).unwrap_or_default();
        // Streams a token may not reach: stderr always; stdout except where
        // it legitimately carries one (the ExecCredential of `token`) or
        // belongs to a test's own child program (`exec -- CMD`).
        let mut streams = vec![("stderr", &run.stderr)];
        let plugin = run.program == "kubectl-oulogin" || run.program == "setpriv";
        if plugin && first != "token" && first != "exec" {
            streams.push(("stdout", &run.stdout));
        }
        if !plugin && run.program != "kubectl" {
            continue;
        }
        for (stream, text) in streams {
            for token in tokens.iter().filter(|token| token.len() >= 16) {
                if text.contains(token.as_str()) {
                    found.push(format!("{} {} ({stream})", run.program, run.args.join(" ")));
                }
            }
        }
    }
    found
}

/// The ExecCredential's token is the only token on `token`'s stdout.
#[track_caller]
fn assert_only_the_credential(output: &Output, tokens: &[String]) {
    output.assert_success();
    let credential: serde_json::Value = serde_json::from_str(&output.stdout).unwrap();
    let handed_out = credential["status"]["token"].as_str().unwrap();
    let rest = output.stdout.replace(handed_out, "");
    for token in tokens.iter().filter(|token| token.len() >= 16) {
        assert!(!rest.contains(token.as_str()), "a second token on stdout:\n{output}");
    }
}

#[test]
fn no_token_reaches_output_argv_or_the_environment_of_children() {
    let scene = Scene::new();
    // (first argument, as the leak search reads it; the run)
    let mut runs: Vec<(&str, Output)> = Vec::new();
    runs.push(("login", scene.login(&[])));
    let cached = scene.token();
    scene.expire_session_token();
    let refreshed = scene.token();
    runs.push(("status", scene.env.oulogin(["status"]).run()));
    runs.push(("status", scene.env.oulogin(["status", "-o", "json"]).run()));
    runs.push(("status", scene.env.oulogin(["status", "-o", "yaml"]).run()));
    runs.push(("kubectl", scene.env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).run()));
    // An `exec` child sees KUBECONFIG, never a token: its whole environment is searched.
    let mut exec_args = vec!["exec".to_string()];
    exec_args.extend(scene.login_args());
    exec_args.extend(["--".to_string(), "env".into()]);
    let exec = scene.env.oulogin(&exec_args).run();
    exec.assert_success();
    assert!(exec.stdout.contains("KUBECONFIG="), "{exec}");
    runs.push(("exec-env", exec));
    // Failures: the server's answers carry tokens, the errors must not.
    for fault in [Fault::BootstrapMissingRefreshToken, Fault::CliTokenNotJwt, Fault::CodeExchangeStatus(403)] {
        scene.fake.set_fault(fault);
        runs.push(("login", scene.login(&["--force"])));
        scene.fake.clear_faults();
    }
    scene.expire_session_token();
    scene.fake.set_fault(Fault::RefreshNoIdToken);
    runs.push(("failed-token", scene.token()));
    scene.fake.clear_faults();
    scene.fake.set_fault(Fault::RefreshStatus(401));
    runs.push(("failed-token", scene.env.oulogin(scene.token_args()).env("OULOGIN_NO_BROWSER", "1").run()));
    scene.fake.clear_faults();
    let session = scene.session_file();
    std::fs::set_permissions(&session, std::fs::Permissions::from_mode(0o644)).unwrap();
    runs.push(("failed-token", scene.token()));
    std::fs::set_permissions(&session, std::fs::Permissions::from_mode(0o600)).unwrap();
    runs.push(("logout", scene.env.oulogin(["logout", "--all"]).run()));
    runs.push(("status", scene.env.oulogin(["status"]).run()));

    let tokens = scene.fake.issued_tokens();
    assert!(tokens.len() >= 10, "the fake issued only {} tokens", tokens.len());
    assert_only_the_credential(&cached, &tokens);
    assert_only_the_credential(&refreshed, &tokens);
    for (what, output) in &runs {
        if what.starts_with("failed") {
            output.assert_code(1);
        }
    }
    let mine: Vec<CapturedRun> = runs
        .iter()
        .map(|(what, output)| CapturedRun {
            program: if *what == "kubectl" { "kubectl" } else { "kubectl-oulogin" }.into(),
            args: vec![what.to_string()],
            stdout: output.stdout.clone(),
            stderr: output.stderr.clone(),
        })
        .chain([&cached, &refreshed].map(|output| CapturedRun {
            program: "kubectl-oulogin".into(),
            args: vec!["token".into()],
            stdout: output.stdout.clone(),
            stderr: output.stderr.clone(),
        }))
        .collect();
    let leaks = leaks_in(&mine, &tokens);
    assert!(leaks.is_empty(), "tokens reached the output of: {leaks:#?}");

    // The only program the plugin started itself (the browser) got the URL and nothing else.
    let cli_login = format!("{}/cli-login", scene.fake.base_url());
    assert!(scene.browser.urls().iter().all(|url| *url == cli_login), "{:?}", scene.browser.urls());
    // Nor is there a token in the kubeconfig (the exec stanza names the session, not its tokens).
    let kubeconfig = String::from_utf8(scene.env.read_kubeconfig()).unwrap();
    assert!(tokens.iter().all(|token| !kubeconfig.contains(token.as_str())), "{kubeconfig}");

    // Every plugin run of this test process so far (other tests' included), against
    // every token any fake issued.
    let leaks = leaks_in(&captured_runs(), &issued_by_any_fake());
    assert!(leaks.is_empty(), "tokens reached the output of: {leaks:#?}");
}

#[test]
fn debug_output_carries_no_token_code_cookie_or_authorization() {
    let scene = Scene::new();
    let mut runs: Vec<(&str, Output)> = Vec::new();
    runs.push(("login", scene.login(&["-vv"])));
    scene.expire_session_token();
    let refreshed = scene.env.oulogin(scene.token_args()).env("OULOGIN_DEBUG", "2").run();
    runs.push(("token", refreshed.clone()));
    // A token that looks rejected (asked for again at once) is refreshed too.
    runs.push(("token", scene.env.oulogin(scene.token_args()).env("OULOGIN_DEBUG", "2").run()));
    runs.push(("login", scene.login(&["--force", "-vv"])));
    let mut exec_args = vec!["exec".to_string(), "-vv".into()];
    exec_args.extend(scene.login_args());
    exec_args.extend([
        "--".to_string(),
        "kubectl".into(),
        "get".into(),
        "--raw".into(),
        "/api/v1/namespaces/default".into(),
    ]);
    runs.push(("exec", scene.env.oulogin(&exec_args).env("OULOGIN_DEBUG", "2").run()));
    for (_, output) in &runs {
        output.assert_success();
        assert!(output.stderr.lines().any(|line| line.starts_with("debug: HTTP ")), "no debug output:\n{output}");
    }
    assert_only_the_credential(&refreshed, &scene.fake.issued_tokens());

    let mut secrets = scene.fake.issued_tokens();
    let codes = scene.fake.issued_codes();
    assert_eq!(codes.len(), 3, "three browser logins, three codes");
    secrets.extend(codes);
    let captured: Vec<CapturedRun> = runs
        .iter()
        .map(|(what, output)| CapturedRun {
            program: "kubectl-oulogin".into(),
            args: vec![what.to_string()],
            stdout: output.stdout.clone(),
            stderr: output.stderr.clone(),
        })
        .collect();
    let leaks = leaks_in(&captured, &secrets);
    assert!(leaks.is_empty(), "a token or code reached the debug output of: {leaks:#?}");
    for (_, output) in &runs {
        for word in ["Bearer", "authorization:", "Authorization:", "cookie", "Cookie", "refresh_token="] {
            assert!(!output.stderr.contains(word), "`{word}` in:\n{output}");
        }
    }
}

/// Listening TCP sockets on `port`: (`tcp` or `tcp6`, local address in /proc's hex, inode).
fn listeners_on(port: u16) -> Vec<(String, String, String)> {
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(state), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else {
                continue;
            };
            let Some((address, hex_port)) = local.rsplit_once(':') else { continue };
            // 0A: LISTEN.
            if *state == "0A" && u16::from_str_radix(hex_port, 16) == Ok(port) {
                found.push((table.to_string(), address.to_string(), inode.to_string()));
            }
        }
    }
    found
}

/// Socket inodes a process has open.
fn socket_inodes(pid: u32) -> HashSet<String> {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|entries| {
            entries
                .filter_map(|entry| std::fs::read_link(entry.ok()?.path()).ok())
                .filter_map(|target| {
                    let target = target.to_string_lossy().into_owned();
                    Some(target.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn the_loopback_listener_binds_127_0_0_1_only_and_answers_two_paths() {
    let login = WaitingLogin::start(&[]);
    let listeners = listeners_on(login.port);
    // 127.0.0.1 is 0100007F in /proc's little-endian hex; nothing on tcp6, nothing on 0.0.0.0.
    assert_eq!(
        listeners.iter().map(|(table, address, _)| (table.as_str(), address.as_str())).collect::<Vec<_>>(),
        [("tcp", "0100007F")],
        "{listeners:?}"
    );
    assert!(socket_inodes(login.running.pid()).contains(&listeners[0].2), "the listener is not the plugin's");

    let host = login.own_host();
    let state = login.state();
    for (method, target) in [
        ("GET", "/favicon.ico"),
        ("GET", "/redirect/"),
        ("GET", "/redirect/../etc/passwd"),
        ("GET", "/index.html"),
        ("GET", "//redirect"),
        ("POST", "/redirect"),
        ("PUT", "/"),
        ("HEAD", "/"),
        ("OPTIONS", "/redirect"),
        ("DELETE", "/redirect"),
    ] {
        let answer = raw_request(login.port, method, target, &host).unwrap();
        assert_eq!(answer.status, 404, "{method} {target}: {answer:?}");
        assert!(answer.header("location").is_none() && !answer.body.contains(&state), "{method} {target}: {answer:?}");
    }
    let (scene, _) = login.complete_in_browser_and_finish();
    assert_eq!(scene.fake.code_exchanges(), 1);
    assert!(listeners_on(scene.fake.redirect_port()).is_empty(), "the listener outlived the login");
}

/// The bits a base64url secret carries, or a failure naming it.
fn secret_bytes(name: &str, value: &str) -> Vec<u8> {
    let bytes = URL_SAFE_NO_PAD.decode(value).unwrap_or_else(|err| panic!("{name} `{value}` is not base64url: {err}"));
    assert!(bytes.len() >= 16, "{name} carries {} bits; at least 128 are needed", bytes.len() * 8);
    bytes
}

#[test]
fn every_authorization_request_has_pkce_s256_and_long_random_state_and_nonce() {
    let scene = Scene::new();
    let mut seen = HashSet::new();
    let mut all_bits = Vec::new();
    for round in 0..3 {
        scene.login(&["--force"]).assert_success();
        let outcomes = scene.browser.finished_visits(round + 1, Duration::from_secs(10));
        let visit = &outcomes[round];
        let authorization = visit
            .hops
            .iter()
            .map(|(url, _)| url)
            .find(|url| url.contains("/auth/idp/k8s-login-cli/auth?"))
            .unwrap_or_else(|| panic!("no authorization request in {visit:?}"));
        let param = |name: &str| query_param(authorization, name).unwrap_or_else(|| panic!("no {name}"));
        assert_eq!(param("code_challenge_method"), "S256", "{authorization}");
        // A SHA-256 digest, base64url: 43 characters.
        assert_eq!(secret_bytes("code_challenge", &param("code_challenge")).len(), 32);
        assert_eq!(param("client_id"), "cli-local");
        assert_eq!(param("redirect_uri"), scene.fake.redirect_uri());
        for name in ["state", "nonce", "code_challenge"] {
            let value = param(name);
            assert!(seen.insert(value.clone()), "{name} repeated: {value}");
            all_bits.extend(secret_bytes(name, &value));
        }
    }
    // The fake checked each verifier against its S256 challenge, and each code once.
    assert_eq!((scene.fake.code_exchanges(), scene.fake.counters().code_exchange_failures), (3, 0));
    // 9 secrets of at least 128 bits: an OS RNG sets about half of them.
    let ones: u32 = all_bits.iter().map(|byte| byte.count_ones()).sum();
    let bits = all_bits.len() as u32 * 8;
    assert!(ones > bits * 2 / 5 && ones < bits * 3 / 5, "{ones} of {bits} bits set: not random");
}

/// Files and directories that are not private (mode bits for group or others).
fn loose_entries(dir: &Path) -> Vec<String> {
    let mut loose = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.permissions().mode() & 0o077 != 0 {
            loose.push(format!("{} {:o}", path.display(), meta.permissions().mode() & 0o777));
        }
        if meta.is_dir() {
            loose.extend(loose_entries(&path));
        }
    }
    loose
}

#[test]
fn session_files_are_private_in_private_directories_whatever_the_umask() {
    let scene = Scene::new();
    // The plugin through `sh` with umask 000, so that nothing private is so by accident.
    let umask_000 = |args: Vec<String>| {
        let mut full = vec!["-c".to_string(), "umask 000; exec \"$@\"".into(), "sh".into()];
        full.push(crate::common::plugin_path().display().to_string());
        full.extend(args);
        scene.env.command("/bin/sh", full).timeout(Duration::from_secs(60)).run()
    };
    std::fs::remove_file(&scene.env.kubeconfig).unwrap();
    umask_000(scene.login_args()).assert_success();
    scene.expire_session_token();
    umask_000(scene.token_args()).assert_success();
    // A failed login leaves its cool-down marker.
    scene.fake.set_fault(Fault::CodeExchangeStatus(403));
    let mut forced = scene.login_args();
    forced.push("--force".into());
    umask_000(forced).assert_code(1);
    scene.fake.clear_faults();
    let mut isolated = scene.login_args();
    isolated.push("--isolated".into());
    let export = umask_000(isolated);
    export.assert_success();

    let session_dir = scene.env.session_dir();
    assert_eq!(std::fs::metadata(&session_dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert!(scene.session_file().is_file());
    assert_eq!(loose_entries(&session_dir), Vec::<String>::new(), "under {}", session_dir.display());
    assert_eq!(std::fs::metadata(&scene.env.kubeconfig).unwrap().permissions().mode() & 0o777, 0o600);
    let isolated_kubeconfig = export
        .stdout
        .trim()
        .strip_prefix("export KUBECONFIG=")
        .map(|path| path.trim_matches('\''))
        .unwrap_or_else(|| panic!("no export line:\n{export}"));
    let isolated_dir = Path::new(isolated_kubeconfig).parent().unwrap();
    assert_eq!(std::fs::metadata(isolated_dir).unwrap().permissions().mode() & 0o777, 0o700);
    assert_eq!(loose_entries(isolated_dir), Vec::<String>::new(), "under {}", isolated_dir.display());
}
