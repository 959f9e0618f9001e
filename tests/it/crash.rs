//! Crashes and concurrent writers: the plugin SIGKILLed at random moments
//! while it writes the kubeconfig or a session, a stale `<file>.lock` left by
//! someone else, and many logins writing one kubeconfig while real
//! `kubectl config set-context` runs write it too.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::hostile::{FOREIGN_KUBECONFIG, Scene, assert_failed_naming};
use crate::common::{Output, Running, free_port};
use crate::fake::{FakeConfig, random_bytes};

/// A uniformly random number below `bound`.
fn random_below(bound: u64) -> u64 {
    u64::from_le_bytes(random_bytes::<8>()) % bound.max(1)
}

fn millis(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

/// A YAML file as JSON values, through serde-saphyr (not the plugin's own loader).
fn parse_yaml(bytes: &[u8]) -> Result<Value, String> {
    let text = std::str::from_utf8(bytes).map_err(|err| err.to_string())?;
    serde_saphyr::from_str::<Value>(text).map_err(|err| err.to_string())
}

fn names(config: &Value, list: &str) -> Vec<String> {
    config[list]
        .as_array()
        .map(|entries| entries.iter().filter_map(|entry| entry["name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default()
}

/// `<path>.lock`, kubectl's lock file for a kubeconfig.
fn kubectl_lock(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

/// Files in `dir` that look like our temporary files.
fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
                .filter(|name| name.starts_with(".oulogin-") && name.ends_with(".tmp"))
                .collect()
        })
        .unwrap_or_default()
}

fn process_exists(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid, 0) == 0 }
}

/// What a killed run may leave: the kubeconfig either as it was, or as the
/// whole login would have left it (one more context, made current); the
/// session either as it was, or a complete session with tokens the fake
/// issued; kubectl's lock file absent, or one of ours whose writer is dead
/// (which the next run clears). Never a mix, never a torn file, never an
/// empty lock file that would pass for kubectl's.
fn check_after_kill(scene: &Scene, kubeconfig_before: &[u8], session_before: &[u8], round: &str, run: &Output) {
    let kubeconfig_now = std::fs::read(&scene.env.kubeconfig).unwrap();
    let before = parse_yaml(kubeconfig_before).unwrap();
    let now =
        parse_yaml(&kubeconfig_now).unwrap_or_else(|err| panic!("{round}: the kubeconfig is torn ({err}):\n{run}"));
    if kubeconfig_now != kubeconfig_before {
        let mut expected = before.clone();
        let added = now["contexts"]
            .as_array()
            .and_then(|contexts| contexts.iter().find(|context| context["name"] == json!(round)))
            .unwrap_or_else(|| panic!("{round}: the kubeconfig changed without the new context:\n{now:#}"))
            .clone();
        assert_eq!(added["context"]["cluster"], json!(scene.ou.cluster_name()), "{round}");
        expected["contexts"].as_array_mut().unwrap().push(added);
        expected["current-context"] = json!(round);
        assert_eq!(now, expected, "{round}: the kubeconfig is neither the old nor the new content");
    }

    let session_now = std::fs::read(scene.session_file()).unwrap();
    if session_now != session_before {
        let session: Value = serde_json::from_slice(&session_now)
            .unwrap_or_else(|err| panic!("{round}: the session file is torn ({err}):\n{run}"));
        let issued = scene.ou.issued_tokens();
        for field in ["id_token", "refresh_token"] {
            let token = session[field].as_str().unwrap_or_else(|| panic!("{round}: no {field} in {session:#}"));
            assert!(issued.iter().any(|known| known == token), "{round}: the session's {field} was never issued");
        }
        assert_eq!(session["host"], json!(scene.ou.host()), "{round}");
    }

    let lock = kubectl_lock(&scene.env.kubeconfig);
    if let Ok(record) = std::fs::read_to_string(&lock) {
        let mut words = record.split_whitespace();
        assert_eq!(words.next(), Some("kubectl-oulogin"), "{round}: a lock file without our record was left:\n{run}");
        let pid: i32 = words.next().and_then(|pid| pid.parse().ok()).expect("a pid in our lock record");
        assert!(!process_exists(pid), "{round}: the lock's writer {pid} still runs");
    }
}

/// Waits until `path`'s content differs from `before` (bounded).
fn wait_for_change(path: &Path, before: &[u8], timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if std::fs::read(path).is_ok_and(|now| now != before) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    false
}

#[test]
fn killing_the_plugin_at_random_moments_never_tears_a_file_or_leaves_a_lock() {
    let scene = Scene::new().logged_in();
    // How long a forced login and a refresh take here, to spread the kills over.
    let started = Instant::now();
    scene.login(&["--force", "--context", "calibration"]).assert_success();
    let login_time = started.elapsed();
    scene.expire_session_token();
    let started = Instant::now();
    scene.token().assert_success();
    let refresh_time = started.elapsed();

    const ROUNDS: usize = 24;
    for index in 0..ROUNDS {
        let round = format!("round-{index}");
        let kubeconfig_before = std::fs::read(&scene.env.kubeconfig).unwrap();
        let session_before = std::fs::read(scene.session_file()).unwrap();
        let mut args = scene.login_args();
        args.extend(["--force".to_string(), "--context".into(), round.clone()]);
        let run = match index % 4 {
            // A login, killed at any moment of its run.
            0 => {
                let running = scene.env.oulogin(&args).spawn();
                std::thread::sleep(Duration::from_millis(random_below(millis(login_time) * 3 / 2)));
                running.kill()
            }
            // A login, killed just as it writes the kubeconfig: kubectl's lock
            // holds it up after the session is stored, then goes away.
            1 => {
                let lock = kubectl_lock(&scene.env.kubeconfig);
                std::fs::write(&lock, "").unwrap();
                let running = scene.env.oulogin(&args).spawn();
                let waiting = wait_for_change(&scene.session_file(), &session_before, Duration::from_secs(20));
                std::fs::remove_file(&lock).unwrap();
                assert!(waiting, "{round}: the login never stored its session");
                std::thread::sleep(Duration::from_micros(random_below(15_000)));
                running.kill()
            }
            // A refresh, killed at any moment of its run.
            2 => {
                scene.expire_session_token();
                let session_before = std::fs::read(scene.session_file()).unwrap();
                let running = spawn_token(&scene);
                std::thread::sleep(Duration::from_millis(random_below(millis(refresh_time) * 3 / 2)));
                let run = running.kill();
                check_after_kill(&scene, &kubeconfig_before, &session_before, &round, &run);
                continue;
            }
            // A refresh, killed around its write: the session lock holds it
            // up, then is released.
            _ => {
                scene.expire_session_token();
                let session_before = std::fs::read(scene.session_file()).unwrap();
                let lock_file =
                    std::fs::File::open(scene.env.session_dir().join(format!("{}.lock", scene.stem()))).unwrap();
                lock_file.lock().unwrap();
                let running = spawn_token(&scene);
                std::thread::sleep(Duration::from_millis(150));
                lock_file.unlock().unwrap();
                std::thread::sleep(Duration::from_micros(random_below(millis(refresh_time) * 1000)));
                let run = running.kill();
                check_after_kill(&scene, &kubeconfig_before, &session_before, &round, &run);
                continue;
            }
        };
        check_after_kill(&scene, &kubeconfig_before, &session_before, &round, &run);
    }

    // The next run works and clears whatever the killed ones left.
    scene.login(&["--force", "--context", "after"]).assert_success();
    scene.expire_session_token();
    scene.token().assert_success();
    assert!(!kubectl_lock(&scene.env.kubeconfig).exists(), "our kubectl lock file was left behind");
    for dir in [scene.env.kubeconfig.parent().unwrap().to_path_buf(), scene.env.session_dir()] {
        assert_eq!(temp_files(&dir), Vec::<String>::new(), "temporary files left in {}", dir.display());
    }
    let config = parse_yaml(&std::fs::read(&scene.env.kubeconfig).unwrap()).unwrap();
    let foreign = parse_yaml(FOREIGN_KUBECONFIG.as_bytes()).unwrap();
    for list in ["clusters", "users", "contexts"] {
        for entry in foreign[list].as_array().unwrap() {
            assert!(config[list].as_array().unwrap().contains(entry), "{list} entry {entry} changed");
        }
    }
}

fn spawn_token(scene: &Scene) -> Running {
    scene
        .env
        .oulogin(scene.token_args())
        .env("KUBERNETES_EXEC_INFO", r#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential"}"#)
        .spawn()
}

#[test]
fn a_stale_kubectl_lock_is_a_clear_error_naming_it_after_a_bounded_retry() {
    let scene = Scene::new();
    // What a kubectl killed while writing leaves: an empty `<file>.lock`.
    let lock = kubectl_lock(&scene.env.kubeconfig);
    std::fs::write(&lock, "").unwrap();
    let output = scene.login(&[]);
    assert_failed_naming(&output, &format!("`{}`", lock.display()), true);
    assert!(output.stderr.contains(&format!("kubeconfig `{}` is locked", scene.env.kubeconfig.display())), "{output}");
    assert!(output.stderr.contains(&format!("rm {}", lock.display())), "the hint says how to remove it:\n{output}");
    // It retried for a moment (kubectl holds its lock for milliseconds), but not for long.
    assert!(output.elapsed >= Duration::from_secs(2), "gave up at once:\n{output}");
    assert!(output.elapsed < Duration::from_secs(15), "{output}");
    assert!(lock.exists(), "someone else's lock file was removed");
    assert_eq!(std::fs::read(&lock).unwrap(), b"", "someone else's lock file was changed");
    assert_eq!(std::fs::read_to_string(&scene.env.kubeconfig).unwrap(), FOREIGN_KUBECONFIG);
}
