//! The sandbox demo (`examples/sandbox.rs`, issue 9) run end to end in headless
//! mode with a small N: its table must show the legacy kubeconfig losing
//! requests and the exec stanza losing none with one refresh per expiry, and
//! it must leave nothing behind (temporary HOME, CA files) nor touch the
//! caller's kubeconfig.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::common::{Output, TestEnv, free_port, plugin_path};

/// `target/<profile>/examples/sandbox`, beside the plugin's directory.
fn sandbox_path() -> PathBuf {
    let profile_dir = plugin_path().parent().expect("plugin directory").to_path_buf();
    let sandbox = profile_dir.join("examples").join("sandbox");
    assert!(
        sandbox.is_file(),
        "`{}` is missing: `cargo test` builds the examples (`cargo test --test cli` alone does not; \
         run `cargo build --examples` first)",
        sandbox.display()
    );
    let built = modified(&sandbox);
    let sources = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = vec![sources.join("examples/sandbox.rs")];
    inputs
        .extend(std::fs::read_dir(sources.join("tests/fake")).expect("tests/fake").map(|entry| entry.unwrap().path()));
    for input in inputs {
        assert!(
            modified(&input) <= built,
            "`{}` is older than `{}`: rebuild it with `cargo build --examples`",
            sandbox.display(),
            input.display()
        );
    }
    sandbox
}

fn modified(path: &Path) -> SystemTime {
    std::fs::metadata(path).and_then(|meta| meta.modified()).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// One row of the demo's table.
#[derive(Debug)]
struct Row {
    runs: usize,
    failed: usize,
    refresh_calls: usize,
    refresh_ok: usize,
    refresh_rejected: usize,
    per_expiry: Vec<usize>,
}

/// Parses `LABEL  RUNS  FAILED  CALLS (OK/REJECTED)  PER-EXPIRY…` below the table's `mode …` header.
fn row(output: &Output, label: &str) -> Row {
    let line = output
        .stdout
        .lines()
        .skip_while(|line| !line.starts_with("mode "))
        .find(|line| line.starts_with(label))
        .unwrap_or_else(|| panic!("no table row `{label}`:\n{output}"));
    let words: Vec<&str> = line[label.len()..].split_whitespace().collect();
    let number = |word: &str| word.parse::<usize>().unwrap_or_else(|_| panic!("`{word}` in `{line}`:\n{output}"));
    let (ok, rejected) = words[3]
        .strip_prefix('(')
        .and_then(|rest| rest.strip_suffix(')'))
        .and_then(|pair| pair.split_once('/'))
        .unwrap_or_else(|| panic!("no (ok/rejected) in `{line}`"));
    Row {
        runs: number(words[0]),
        failed: number(words[1]),
        refresh_calls: number(words[2]),
        refresh_ok: number(ok),
        refresh_rejected: number(rejected),
        per_expiry: words[4..].iter().map(|word| number(word)).collect(),
    }
}

#[test]
fn the_headless_demo_shows_the_legacy_race_and_none_with_the_exec_stanza_and_cleans_up() {
    let env = TestEnv::new();
    // The demo's temporary HOME and the fakes' CA files go here, so that
    // "nothing left behind" is checkable.
    let tmp = env.root().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let port = free_port().to_string();
    let args = ["demo", "--headless", "-n", "4", "--expiries", "3", "--token-lifetime", "6s"];
    // A little refresh latency, as a real server has, keeps the four legacy
    // kubectl processes overlapping on a loaded machine.
    let args = args.iter().copied().chain(["--refresh-delay", "300ms", "--port", &port]);
    let output = env.command(sandbox_path(), args).env("TMPDIR", &tmp).timeout(Duration::from_secs(240)).run();
    output.assert_success();

    assert!(output.stdout.contains("\"name\":\"default\""), "kubectl get --raw shows the namespace:\n{output}");
    assert!(output.stdout.contains("command: kubectl-oulogin"), "the exec stanza is shown:\n{output}");

    let legacy = row(&output, "legacy auth-provider");
    assert_eq!(legacy.runs, 12, "{output}");
    assert!(legacy.failed > 0, "the legacy kubeconfig loses requests to the race:\n{output}");
    assert!(legacy.refresh_rejected > 0, "{output}");

    let exec = row(&output, "oulogin exec stanza");
    assert_eq!(exec.runs, 12, "{output}");
    assert_eq!(exec.failed, 0, "no request fails with the exec stanza:\n{output}");
    assert_eq!(exec.per_expiry, [1, 1, 1], "one refresh per expiry:\n{output}");
    assert_eq!((exec.refresh_calls, exec.refresh_ok, exec.refresh_rejected), (3, 3, 0), "{output}");

    let leftovers: Vec<_> = std::fs::read_dir(&tmp).unwrap().map(|entry| entry.unwrap().path()).collect();
    assert!(leftovers.is_empty(), "the demo left {leftovers:?} behind:\n{output}");
    assert!(output.stdout.contains("removed"), "{output}");
    assert!(!env.kubeconfig.exists(), "the caller's kubeconfig is not touched:\n{output}");
    assert!(!env.cache_dir.exists(), "the caller's KUBECACHEDIR is not touched:\n{output}");
}

#[test]
fn the_demo_names_the_build_command_when_the_plugin_is_missing() {
    let env = TestEnv::new();
    // A copy of the sandbox in a directory tree without the plugin beside it.
    let examples = env.root().join("target/debug/examples");
    std::fs::create_dir_all(&examples).unwrap();
    let copy = examples.join("sandbox");
    std::fs::copy(sandbox_path(), &copy).unwrap();
    let tmp = env.root().join("tmp");
    std::fs::create_dir(&tmp).unwrap();
    let output = env.command(&copy, ["--headless"]).env("TMPDIR", &tmp).timeout(Duration::from_secs(30)).run();
    output.assert_code(1);
    output.assert_stderr_contains("kubectl-oulogin` is missing");
    output.assert_stderr_contains("cargo build --release --bins --examples");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "{output}");
}
