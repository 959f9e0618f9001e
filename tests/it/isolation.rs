//! `kubectl oulogin exec -- CMD` and `kubectl oulogin --isolated` against the
//! strict fake OpenUnison (grace period 0, so any shared or replayed refresh
//! token fails) with the real kubectl inside the child: private 0700
//! directories with 0600 files, exit statuses passed through, signals
//! forwarded, directories removed (also after SIGKILL, by a later run), logins
//! queued on the one redirect port, and `eval` of the `--isolated` output.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::{Output, TestEnv, free_port, login_args};
use crate::fake::{BrowserMode, FakeBrowser, FakeConfig, FakeOpenUnison};

/// A kubeconfig of the user's that exec and `--isolated` must never touch.
const USER_KUBECONFIG: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://127.0.0.1:1
contexts:
- name: other
  context:
    cluster: other
    user: other
current-context: other
users:
- name: other
  user:
    token: not-a-real-token  # a comment kept byte for byte
";

/// One fake OpenUnison, a browser that logs in, and a test world.
struct World {
    env: TestEnv,
    ou: FakeOpenUnison,
    browser: FakeBrowser,
}

impl World {
    fn start(config: FakeConfig) -> World {
        let ou = FakeOpenUnison::start(config);
        let browser = FakeBrowser::for_fake(&ou, BrowserMode::Follow);
        let env = TestEnv::new();
        env.write_kubeconfig(USER_KUBECONFIG);
        World { env, ou, browser }
    }

    fn new() -> World {
        World::start(FakeConfig::with_redirect_port(free_port()))
    }

    /// A fake whose tokens live `secs` seconds.
    fn with_token_lifetime(secs: u64) -> World {
        let mut config = FakeConfig::with_redirect_port(free_port());
        config.token_lifetime_secs = secs;
        World::start(config)
    }

    /// `exec [login flags] -- sh -c SCRIPT`.
    fn exec_args(&self, script: &str) -> Vec<String> {
        let mut args = vec!["exec".to_string()];
        args.extend(login_args(&self.ou, &self.browser));
        args.extend(["--".into(), "sh".into(), "-c".into(), script.into()]);
        args
    }

    /// `$KUBECACHEDIR/oulogin/isolated`: where private directories live.
    fn private_root(&self) -> PathBuf {
        self.env.session_dir().join("isolated")
    }

    /// The private directories that exist now.
    fn private_dirs(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.private_root()) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|entry| entry.path()).collect();
        dirs.sort();
        dirs
    }

    /// A file under the test's temporary root (for markers the child writes).
    fn file(&self, name: &str) -> PathBuf {
        self.env.root().join(name)
    }
}

/// The value of a `NAME=value` line the child printed on stdout.
fn reported<'a>(output: &'a Output, name: &str) -> &'a str {
    let prefix = format!("{name}=");
    output
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("the child did not report {name}:\n{output}"))
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Waits (bounded) until `path` exists.
#[track_caller]
fn wait_for_file(path: &Path, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(Instant::now() < deadline, "`{}` did not appear within {timeout:?}", path.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn exec_runs_the_command_in_a_private_kubeconfig_and_passes_its_status_through() {
    let world = World::new();
    let before = world.env.read_kubeconfig();
    let minted_before = world.ou.sessions_minted();
    let script = r#"
        echo "child: start" >&2
        echo "KUBECONFIG=$KUBECONFIG"
        echo "FILE_MODE=$(stat -c %a "$KUBECONFIG")"
        echo "DIR_MODE=$(stat -c %a "$(dirname "$KUBECONFIG")")"
        echo "SESSION_MODE=$(stat -c %a "$(dirname "$KUBECONFIG")/session.json")"
        echo "HOME_SEEN=$HOME"
        kubectl get --raw /api > api.json || exit 99  # the harness runs us in the test root
        echo "child: end" >&2
        exit 7
    "#;
    let output = world.env.oulogin(world.exec_args(script)).run();
    output.assert_code(7);

    let kubeconfig = PathBuf::from(reported(&output, "KUBECONFIG"));
    let dir = kubeconfig.parent().unwrap().to_path_buf();
    assert_eq!(dir.parent().unwrap(), world.private_root(), "{output}");
    assert_eq!(reported(&output, "FILE_MODE"), "600", "{output}");
    assert_eq!(reported(&output, "DIR_MODE"), "700", "{output}");
    assert_eq!(reported(&output, "SESSION_MODE"), "600", "{output}");
    assert_eq!(reported(&output, "HOME_SEEN"), world.env.home.display().to_string(), "the rest of the environment");
    let api = std::fs::read_to_string(world.env.root().join("api.json")).unwrap_or_default();
    assert!(api.contains("APIVersions"), "kubectl reached the API server:\n{api}\n{output}");

    assert!(!dir.exists(), "the private directory outlived the run:\n{output}");
    assert!(world.private_dirs().is_empty(), "{:?}", world.private_dirs());
    assert_eq!(world.env.read_kubeconfig(), before, "the user's kubeconfig changed");
    assert_eq!(world.ou.sessions_minted(), minted_before + 1, "a new session of its own");
    assert_eq!(world.browser.opened(), 1);

    // The login speaks before the command starts, and nobody after it.
    let start = output.stderr.find("child: start\n").expect("child start");
    let end = output.stderr.find("child: end\n").expect("child end");
    assert!(output.stderr[..start].contains("Opening "), "the login's own lines come first:\n{output}");
    assert_eq!(output.stderr[start..end], *"child: start\n", "nothing while the command runs:\n{output}");
    assert_eq!(&output.stderr[end..], "child: end\n", "nothing after the command:\n{output}");
}
