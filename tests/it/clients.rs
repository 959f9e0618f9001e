//! Real clients beyond kubectl through the exec stanza a real login wrote,
//! against the strict fake with 6 s tokens, across several expiries, one
//! process and eight at once: the official Python client (`kubernetes` from
//! PyPI, which runs the plugin before every request because it counts a
//! credential as expired five minutes early) and the JavaScript client
//! (`@kubernetes/client-node` from npm, which runs it once per
//! `expirationTimestamp`). No request may fail, and the fake must see one
//! refresh per expiry, not one per request. Also client-go's re-run after a
//! real 401 when the session knows its API server, and the fallback for
//! sessions that do not.
//!
//! The clients are installed by `scripts/test` into `target/test-clients/`
//! (the scripts that drive them are in `tests/clients/`); without them these
//! tests fail, naming that script.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{Output, TestContext, TestEnv, fake_config, login_args};
use crate::fake::openunison::RefreshOutcome;
use crate::fake::{FakeBrowser, FakeConfig, FakeOpenUnison};

/// Short tokens, so that a loop crosses several expiries: each is handed out
/// for 3 to 4 s (margin 2 s, whole seconds).
const TOKEN_LIFETIME_SECS: u64 = 6;
/// The shortest time a token is handed out for.
const SERVED_AT_LEAST_SECS: u64 = 3;
/// How long each client loops: four token lifetimes or more.
const LOOP_SECS: u64 = 16;
/// Requests per second per client process.
const RATE: u32 = 2;
/// Client processes in the parallel tests.
const PARALLEL: usize = 8;
/// Bound on one client process, start-up included, far beyond what a loaded machine needs.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(LOOP_SECS + 90);

/// `<repo>/target/test-clients/<name>`, which must exist.
fn installed(name: &str, probe: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-clients").join(name);
    assert!(
        dir.join(probe).exists(),
        "`{}` is missing: the real-client tests need the Python and JavaScript Kubernetes clients that \
         `scripts/test` installs into `target/test-clients/` (run `scripts/test`, or its two install commands)",
        dir.join(probe).display()
    );
    dir
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients").join(name)
}

#[derive(Debug, Clone, Copy)]
enum Client {
    Python,
    JavaScript,
}

impl Client {
    /// `(program, args)` that loop for `LOOP_SECS` against `kubeconfig`.
    fn command(self, kubeconfig: &Path) -> (PathBuf, Vec<String>) {
        let kubeconfig = kubeconfig.display().to_string();
        let (seconds, rate) = (LOOP_SECS.to_string(), RATE.to_string());
        match self {
            Client::Python => {
                let python = installed("python", "bin/python").join("bin/python");
                (python, vec![script("python_loop.py").display().to_string(), kubeconfig, seconds, rate])
            }
            Client::JavaScript => {
                let prefix = installed("node", "node_modules/@kubernetes/client-node/package.json");
                let args = vec![script("node_loop.mjs").display().to_string(), prefix.display().to_string()];
                (PathBuf::from("node"), args.into_iter().chain([kubeconfig, seconds, rate]).collect())
            }
        }
    }
}

/// A login through the fake browser with the kubeconfig it wrote.
struct LoggedIn {
    fake: FakeOpenUnison,
    _browser: FakeBrowser,
    env: TestEnv,
}

impl LoggedIn {
    fn new() -> LoggedIn {
        let TestContext { env, fake, browser } =
            TestContext::with_config(FakeConfig { token_lifetime_secs: TOKEN_LIFETIME_SECS, ..fake_config() });
        env.oulogin(login_args(&fake, &browser)).run().assert_success();
        LoggedIn { fake, _browser: browser, env }
    }

    fn session_file(&self) -> PathBuf {
        self.env.session_dir().join(format!("{}.json", self.fake.host().replace(':', "_")))
    }

    fn session(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.session_file()).unwrap()).unwrap()
    }

    /// Makes the session look like one written before sessions knew their API server.
    fn forget_the_api_server(&self) {
        let mut session = self.session();
        assert!(session.as_object_mut().unwrap().remove("api_server").is_some(), "the login kept the API server");
        // Rewritten in place: the file keeps its 0600 mode.
        std::fs::write(self.session_file(), serde_json::to_vec_pretty(&session).unwrap()).unwrap();
    }

    /// Runs `processes` copies of `client` at once; their results and the wall time.
    fn run(&self, client: Client, processes: usize) -> (Vec<Tally>, Duration) {
        let (program, args) = client.command(&self.env.kubeconfig);
        let started = Instant::now();
        let running: Vec<_> =
            (0..processes).map(|_| self.env.command(&program, &args).timeout(CLIENT_TIMEOUT).spawn()).collect();
        let tallies = running.into_iter().map(|run| Tally::of(&run.wait_default())).collect();
        (tallies, started.elapsed())
    }

    /// What went on, for failure messages.
    fn context(&self, tallies: &[Tally], elapsed: Duration) -> String {
        let errors: Vec<&Value> = tallies
            .iter()
            .map(|tally| &tally.errors)
            .filter(|errors| errors.as_array().is_some_and(|list| !list.is_empty()))
            .collect();
        format!(
            "{} processes over {elapsed:.1?}, asking for {:.1} s: {tallies:?}\nerrors: {errors:#?}\n\
             fake counters: {:?}\nrefresh events: {:?}",
            tallies.len(),
            active_secs(tallies),
            self.fake.counters(),
            self.fake.refresh_events()
        )
    }
}

/// What one client process printed.
#[derive(Debug)]
struct Tally {
    ok: u64,
    failed: u64,
    /// When it started (before loading the kubeconfig) and ended, seconds since the epoch.
    started: f64,
    ended: f64,
    errors: Value,
}

/// Seconds from the first client's start to the last one's end: the time
/// in which tokens were asked for.
fn active_secs(tallies: &[Tally]) -> f64 {
    let first = tallies.iter().map(|tally| tally.started).fold(f64::INFINITY, f64::min);
    let last = tallies.iter().map(|tally| tally.ended).fold(f64::NEG_INFINITY, f64::max);
    last - first
}

/// The most expiries `secs` of asking for tokens can cross.
fn expiries_in(secs: f64) -> u64 {
    (secs / SERVED_AT_LEAST_SECS as f64).ceil() as u64 + 1
}

impl Tally {
    fn of(output: &Output) -> Tally {
        output.assert_success();
        let last = output.stdout.lines().last().unwrap_or_else(|| panic!("no result line:\n{output}"));
        let result: Value = serde_json::from_str(last).unwrap_or_else(|err| panic!("not JSON ({err}):\n{output}"));
        Tally {
            ok: result["ok"].as_u64().unwrap_or_else(|| panic!("no `ok`:\n{output}")),
            failed: result["failed"].as_u64().unwrap_or_else(|| panic!("no `failed`:\n{output}")),
            started: result["started"].as_f64().unwrap_or_else(|| panic!("no `started`:\n{output}")),
            ended: result["ended"].as_f64().unwrap_or_else(|| panic!("no `ended`:\n{output}")),
            errors: result["errors"].clone(),
        }
    }
}

/// Every request of every process succeeded, the loops ran (at least half
/// their requests), the API server never saw a rejected token, and OpenUnison
/// saw at least three expiries' refreshes, none refused, each one only once
/// the token before it was stale.
fn assert_every_request_and_one_refresh_per_expiry(world: &LoggedIn, tallies: &[Tally], elapsed: Duration) {
    let context = world.context(tallies, elapsed);
    let least = LOOP_SECS * u64::from(RATE) / 2;
    assert!(tallies.iter().all(|tally| tally.failed == 0), "failed requests: {context}");
    assert!(tallies.iter().all(|tally| tally.ok >= least), "a loop made fewer than {least} requests: {context}");
    assert_eq!(world.fake.api().unauthorized_requests(), 0, "{context}");
    let counters = world.fake.counters();
    assert_eq!(counters.refreshes_failed, 0, "{context}");
    assert!(counters.refreshes_ok >= 3, "fewer than three expiries crossed: {context}");
    let most = expiries_in(active_secs(tallies));
    assert!(counters.refreshes_ok <= most, "more than one refresh per token lifetime (at most {most}): {context}");
    super::race::assert_one_refresh_per_expiry(&world.fake.refresh_events(), TOKEN_LIFETIME_SECS);
}

#[test]
fn the_python_client_costs_one_refresh_per_token_lifetime() {
    let world = LoggedIn::new();
    let (tallies, elapsed) = world.run(Client::Python, 1);
    assert_every_request_and_one_refresh_per_expiry(&world, &tallies, elapsed);
}

#[test]
fn eight_python_clients_at_once_cost_one_refresh_per_token_lifetime() {
    let world = LoggedIn::new();
    let (tallies, elapsed) = world.run(Client::Python, PARALLEL);
    assert_every_request_and_one_refresh_per_expiry(&world, &tallies, elapsed);
}

#[test]
fn the_javascript_client_costs_one_refresh_per_token_lifetime() {
    let world = LoggedIn::new();
    let (tallies, elapsed) = world.run(Client::JavaScript, 1);
    assert_every_request_and_one_refresh_per_expiry(&world, &tallies, elapsed);
}

#[test]
fn eight_javascript_clients_at_once_cost_one_refresh_per_token_lifetime() {
    let world = LoggedIn::new();
    let (tallies, elapsed) = world.run(Client::JavaScript, PARALLEL);
    assert_every_request_and_one_refresh_per_expiry(&world, &tallies, elapsed);
}

#[test]
fn a_session_that_does_not_know_its_api_server_costs_the_python_client_at_most_two_refreshes_per_lifetime() {
    let world = LoggedIn::new();
    world.forget_the_api_server();
    let (tallies, elapsed) = world.run(Client::Python, 1);
    let context = world.context(&tallies, elapsed);
    assert!(tallies.iter().all(|tally| tally.failed == 0), "failed requests: {context}");
    let least = LOOP_SECS * u64::from(RATE) / 2;
    assert!(tallies.iter().all(|tally| tally.ok >= least), "a loop made fewer than {least} requests: {context}");
    let counters = world.fake.counters();
    assert_eq!(counters.refreshes_failed, 0, "{context}");
    // One at each expiry, and one forced by the client's second run of the
    // plugin for each token (it cannot be told from client-go after a 401).
    let most = 2 * expiries_in(active_secs(&tallies));
    assert!(counters.refreshes_ok <= most, "more than two refreshes per lifetime (at most {most}): {context}");
    assert!(world.session().get("api_server").is_none(), "nothing put it back: {context}");
}

#[test]
fn kubectl_rerunning_the_plugin_after_a_401_gets_a_new_token_when_the_session_asks_the_api_server() {
    let TestContext { env, fake, browser } = TestContext::new();
    env.oulogin(login_args(&fake, &browser)).run().assert_success();
    let kubectl_get = || env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).run();
    kubectl_get().assert_success();
    assert_eq!(fake.successful_refreshes(), 0);
    // The API server now rejects the still-fresh token: client-go runs the
    // plugin again, whose check with the API server gets the same 401.
    fake.api().set_reject_all(true);
    let rejected = kubectl_get();
    assert!(!rejected.success());
    assert_eq!(fake.successful_refreshes(), 1, "a re-run after a 401 refreshes once:\n{rejected}");
    assert!(
        fake.api().requests().iter().any(|(line, status)| line == "GET /api" && *status == 401),
        "the plugin asked the API server: {:?}",
        fake.api().requests()
    );
    fake.api().set_reject_all(false);
    kubectl_get().assert_success();
    assert_eq!(fake.successful_refreshes(), 1);
    assert!(fake.refresh_events().iter().all(|event| event.outcome == RefreshOutcome::Rotated));
}
