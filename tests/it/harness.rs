//! Self-tests of the harness: the cleared environment, the plugin on PATH
//! for kubectl, timeouts that kill, and the captured-output log.

use std::time::Duration;

use crate::common::{TestEnv, captured_runs, plugin_path};

#[test]
fn programs_run_in_a_cleared_environment() {
    let env = TestEnv::new();
    let output = env.command("/usr/bin/env", Vec::<String>::new()).run();
    output.assert_success();
    let mut names: Vec<&str> =
        output.stdout.lines().filter_map(|line| line.split_once('=')).map(|(name, _)| name).collect();
    names.sort_unstable();
    assert_eq!(names, ["HOME", "KUBECACHEDIR", "KUBECONFIG", "LANG", "PATH"], "{output}");
    assert!(output.stdout.contains(&format!("HOME={}", env.home.display())));
    assert!(output.stdout.contains(&format!("KUBECONFIG={}", env.kubeconfig.display())));
}

#[test]
fn kubectl_finds_the_built_plugin_on_path() {
    let env = TestEnv::new();
    let output = env.kubectl(["plugin", "list", "--name-only"]).timeout(Duration::from_secs(30)).run();
    assert!(output.stdout.contains("kubectl-oulogin"), "{output}");
    assert!(plugin_path().is_file());
}

#[test]
fn a_run_past_its_timeout_is_killed_with_its_children() {
    let env = TestEnv::new();
    let marker = env.root().join("child-survived");
    let script = format!("(sleep 2; touch {}) & sleep 30", marker.display());
    let output = env.command("/bin/sh", ["-c", &script]).timeout(Duration::from_millis(300)).run();
    assert!(output.timed_out, "{output}");
    assert!(output.elapsed < Duration::from_secs(10), "{output}");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "the background child outlived the kill");
}

#[test]
fn every_run_is_captured_for_the_leak_search() {
    let env = TestEnv::new();
    let output = env.command("/bin/sh", ["-c", "echo captured-stdout-marker; echo captured-stderr-marker >&2"]).run();
    output.assert_success();
    let runs = captured_runs();
    assert!(
        runs.iter()
            .any(|run| run.stdout.contains("captured-stdout-marker") && run.stderr.contains("captured-stderr-marker"))
    );
}

#[test]
fn stdin_and_partial_output_work_for_interactive_runs() {
    let env = TestEnv::new();
    let mut running = env.command("/bin/sh", ["-c", "echo ready >&2; read line; echo got:$line"]).spawn();
    assert!(running.wait_for_output(Duration::from_secs(5), |_, stderr| stderr.contains("ready")));
    use std::io::Write;
    writeln!(running.stdin.as_mut().unwrap(), "pasted").unwrap();
    let output = running.wait(Duration::from_secs(5));
    output.assert_success();
    assert_eq!(output.stdout.trim(), "got:pasted");
}
