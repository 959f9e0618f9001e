//! The refresh race with real kubectl against the strict fake OpenUnison
//! (grace period 0, one-time refresh tokens, 5 s tokens): waves of 24
//! concurrent `kubectl get` plus a long-running `kubectl proxy` on one
//! kubeconfig lose nothing and cost one refresh per expiry with our exec
//! stanza, and lose sessions with the legacy `--auth-provider` kubeconfig; a
//! session killed on the server while 10 kubectl processes wait comes back
//! through one browser login.
//!
//! The killed lock holder and the abandoned browser login's cool-down are
//! covered by `token.rs` (`a_lock_holder_killed_mid_refresh_…`,
//! `an_abandoned_browser_login_…`): the plugin behaves the same whoever runs it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{Output, Running, TestContext, TestEnv, fake_config, login_args};
use crate::fake::openunison::{RefreshEvent, RefreshOutcome};
use crate::fake::{FakeBrowser, FakeConfig, FakeOpenUnison};

/// Short tokens so that a test crosses several expiries in seconds.
const TOKEN_LIFETIME_SECS: u64 = 5;
/// Concurrent `kubectl get` processes per wave.
const WAVE_SIZE: usize = 24;
/// How long waves keep coming: three token lifetimes, so at least three
/// expiries (a token is handed out for about 3 of its 5 s).
const WORKLOAD: Duration = Duration::from_secs(3 * TOKEN_LIFETIME_SECS);
/// Bound on one kubectl run, far beyond what a loaded machine needs.
const RUN_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause between two requests through the proxy.
const PROXY_POLL_INTERVAL: Duration = Duration::from_millis(150);
/// The path every request asks for.
const PATH: &str = "/api/v1/namespaces/default";

/// Short tokens and no grace period for a reused refresh token.
fn race_config() -> FakeConfig {
    FakeConfig { token_lifetime_secs: TOKEN_LIFETIME_SECS, grace_period_ms: 0, ..fake_config() }
}

/// `kubectl oulogin --host …` through the fake browser, plus `extra` flags.
fn log_in(env: &TestEnv, fake: &FakeOpenUnison, browser: &FakeBrowser, extra: &[&str]) {
    let mut args = login_args(fake, browser);
    args.extend(extra.iter().map(|arg| arg.to_string()));
    env.oulogin(args).timeout(RUN_TIMEOUT).run().assert_success();
    assert_eq!(browser.opened(), 1, "the login opened one browser tab");
}

/// `GET path` through the proxy on `port`; the status code, or why there is none.
fn proxy_get(port: u16, path: &str) -> Result<u16, String> {
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(|err| err.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(30))).map_err(|err| err.to_string())?;
    stream.set_write_timeout(Some(Duration::from_secs(5))).map_err(|err| err.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).map_err(|err| err.to_string())?;
    let mut response = Vec::new();
    stream.take(1 << 20).read_to_end(&mut response).map_err(|err| err.to_string())?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split(' ').nth(1).and_then(|code| code.parse().ok());
    status.ok_or_else(|| format!("no status line in {:?}", text.lines().next().unwrap_or("")))
}

/// A long-running `kubectl proxy` (standing in for k9s) and a thread that
/// keeps requesting through it until stopped.
struct Proxy {
    process: Running,
    stop: Arc<AtomicBool>,
    poller: Option<JoinHandle<Vec<Result<u16, String>>>>,
}

impl Proxy {
    fn start(env: &TestEnv) -> Proxy {
        let mut process = env.kubectl(["proxy", "--port=0", "--address=127.0.0.1"]).timeout(RUN_TIMEOUT * 3).spawn();
        let announced = |stdout: &str, _: &str| stdout.contains("Starting to serve on 127.0.0.1:");
        assert!(process.wait_for_output(Duration::from_secs(30), announced), "kubectl proxy did not start");
        let stdout = process.stdout_so_far();
        let port = stdout
            .split("Starting to serve on 127.0.0.1:")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|port| port.parse().ok())
            .unwrap_or_else(|| panic!("no port in {stdout:?}"));
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut results = Vec::new();
                // Bounded even if the stop flag were never set.
                let deadline = Instant::now() + RUN_TIMEOUT * 3;
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    results.push(proxy_get(port, PATH));
                    std::thread::sleep(PROXY_POLL_INTERVAL);
                }
                results
            })
        };
        Proxy { process, stop, poller: Some(poller) }
    }

    /// Stops polling; returns every result and the proxy's own output.
    fn finish(mut self) -> (Vec<Result<u16, String>>, Output) {
        self.stop.store(true, Ordering::SeqCst);
        let results = self.poller.take().expect("poller").join().expect("the poller does not panic");
        assert!(self.process.is_running(), "kubectl proxy exited:\n{}", self.process.stderr_so_far());
        (results, self.process.kill())
    }
}

/// What the workload saw.
struct Tally {
    kubectl_runs: usize,
    kubectl_failures: Vec<Output>,
    proxy_requests: usize,
    proxy_failures: Vec<String>,
    proxy_output: Output,
    elapsed: Duration,
}

impl Tally {
    fn summary(&self) -> String {
        let first_kubectl = self.kubectl_failures.first().map(|output| output.to_string()).unwrap_or_default();
        format!(
            "{} of {} kubectl runs failed, {} of {} proxy requests failed ({:?}) in {:.1?}\n\
             first failed kubectl run:\n{first_kubectl}\nkubectl proxy:\n{}",
            self.kubectl_failures.len(),
            self.kubectl_runs,
            self.proxy_failures.len(),
            self.proxy_requests,
            self.proxy_failures.iter().take(5).collect::<Vec<_>>(),
            self.elapsed,
            self.proxy_output,
        )
    }
}

/// Waves of [`WAVE_SIZE`] concurrent `kubectl get --raw` for [`WORKLOAD`],
/// while a `kubectl proxy` on the same kubeconfig serves requests.
fn run_workload(env: &TestEnv) -> Tally {
    let started = Instant::now();
    let proxy = Proxy::start(env);
    let mut kubectl_runs = 0;
    let mut kubectl_failures = Vec::new();
    // Bounded in count as well as time.
    for _ in 0..100 {
        if started.elapsed() >= WORKLOAD {
            break;
        }
        let wave: Vec<Running> =
            (0..WAVE_SIZE).map(|_| env.kubectl(["get", "--raw", PATH]).timeout(RUN_TIMEOUT).spawn()).collect();
        for run in wave {
            let output = run.wait_default();
            kubectl_runs += 1;
            if !output.success() || !output.stdout.contains("\"name\":\"default\"") {
                kubectl_failures.push(output);
            }
        }
    }
    let (results, proxy_output) = proxy.finish();
    let proxy_failures = results
        .iter()
        .filter_map(|result| match result {
            Ok(200) => None,
            Ok(status) => Some(format!("status {status}")),
            Err(err) => Some(err.clone()),
        })
        .collect();
    Tally {
        kubectl_runs,
        kubectl_failures,
        proxy_requests: results.len(),
        proxy_failures,
        proxy_output,
        elapsed: started.elapsed(),
    }
}

fn unix_secs_f64(at: SystemTime) -> f64 {
    at.duration_since(UNIX_EPOCH).map(|since| since.as_secs_f64()).unwrap_or(0.0)
}

/// The expiry point of a token issued at `iat` (the documented rule:
/// `exp - min(10 s, lifetime / 3)`, rounded down to whole seconds).
fn expiry_point(iat: i64, lifetime_secs: i64) -> i64 {
    let margin_ms = (lifetime_secs * 1000 / 3).min(10_000);
    (iat * 1000 + lifetime_secs * 1000 - margin_ms).div_euclid(1000)
}

/// Every successful refresh came only once the token of the refresh before it
/// (`lifetime_secs` long) had reached its expiry point: one refresh per
/// expiry, never two.
pub(super) fn assert_one_refresh_per_expiry(events: &[RefreshEvent], lifetime_secs: u64) {
    let rotations: Vec<f64> = events
        .iter()
        .filter(|event| event.outcome == RefreshOutcome::Rotated)
        .map(|event| unix_secs_f64(event.at))
        .collect();
    for pair in rotations.windows(2) {
        // The fake stamps `iat` just before it records the event; allow for a slow moment in between.
        let earliest_iat = (pair[0] - 0.5).floor() as i64;
        let stale_from = expiry_point(earliest_iat, lifetime_secs as i64) as f64;
        assert!(
            pair[1] >= stale_from,
            "a refresh at {:.3} came before the token refreshed at {:.3} was stale ({stale_from}): {rotations:?}",
            pair[1],
            pair[0]
        );
    }
}

#[test]
fn kubectl_processes_and_a_proxy_sharing_one_kubeconfig_lose_nothing_and_refresh_once_per_expiry() {
    let TestContext { env, fake, browser } = TestContext::with_config(race_config());
    log_in(&env, &fake, &browser, &[]);

    let tally = run_workload(&env);
    let events = fake.refresh_events();
    let counters = fake.counters();
    let context = format!("{}\nrefresh events: {events:?}\nfake events: {:#?}", tally.summary(), fake.events());
    eprintln!("{counters:?}\n{context}");

    assert!(tally.kubectl_failures.is_empty() && tally.proxy_failures.is_empty(), "{context}");
    assert!(tally.kubectl_runs >= WAVE_SIZE && tally.proxy_requests >= 10, "too little traffic: {context}");
    assert!(events.iter().all(|event| event.outcome == RefreshOutcome::Rotated), "{context}");
    assert_eq!(counters.refreshes_failed, 0, "{context}");
    assert!(counters.refreshes_ok >= 3, "fewer than three expiries crossed: {context}");
    assert_one_refresh_per_expiry(&events, TOKEN_LIFETIME_SECS);
    // A token is handed out for at least 2 s of its 5 (margin 1.67 s, whole seconds).
    let most = tally.elapsed.as_secs() / 2 + 1;
    assert!(counters.refreshes_ok <= most, "more than one refresh per expiry: {context}");
    assert_eq!(counters.sessions_minted, 1, "no second login: {context}");
    assert_eq!(browser.opened(), 1, "no browser tab after the login: {context}");
    assert_eq!(fake.api().unauthorized_requests(), 0, "{context}");
}

#[test]
fn the_same_workload_with_a_legacy_auth_provider_kubeconfig_loses_sessions() {
    let TestContext { env, fake, browser } = TestContext::with_config(race_config());
    log_in(&env, &fake, &browser, &["--auth-provider"]);
    let kubeconfig = String::from_utf8(env.read_kubeconfig()).unwrap();
    assert!(kubeconfig.contains("auth-provider") && !kubeconfig.contains("exec:"), "{kubeconfig}");

    let tally = run_workload(&env);
    let events = fake.refresh_events();
    let rejected = events.iter().filter(|event| event.outcome == RefreshOutcome::Rejected).count();
    let context = format!("{}\nrefresh events: {events:?}", tally.summary());
    eprintln!("{:?}\n{context}", fake.counters());
    assert!(!tally.kubectl_failures.is_empty() || !tally.proxy_failures.is_empty(), "nothing failed: {context}");
    assert!(rejected > 0, "no replayed refresh token was refused: {context}");
    let refused = tally.kubectl_failures.iter().any(|output| output.stderr.contains("401"))
        || tally.proxy_failures.iter().any(|failure| failure.contains("401"));
    assert!(refused, "the failures are not refused refreshes: {context}");
}

#[test]
fn a_session_killed_on_the_server_while_ten_kubectl_processes_wait_needs_one_browser_login() {
    let TestContext { env, fake, browser } = TestContext::with_config(race_config());
    log_in(&env, &fake, &browser, &[]);
    env.kubectl(["get", "--raw", PATH]).timeout(RUN_TIMEOUT).run().assert_success();
    // Let the login's token go stale, so that every process needs the server.
    std::thread::sleep(Duration::from_secs(TOKEN_LIFETIME_SECS));
    fake.kill_all_sessions();
    let minted_before = fake.sessions_minted();

    let running: Vec<Running> =
        (0..10).map(|_| env.kubectl(["get", "--raw", PATH]).timeout(RUN_TIMEOUT).spawn()).collect();
    let outputs: Vec<Output> = running.into_iter().map(Running::wait_default).collect();
    for output in &outputs {
        output.assert_success();
        assert!(output.stdout.contains("\"name\":\"default\""), "{output}");
    }
    assert_eq!(browser.opened(), 2, "the login, then one browser login for all ten: {:#?}", browser.urls());
    assert_eq!(fake.sessions_minted(), minted_before + 1, "events: {:#?}", fake.events());
    // One 401, asked once more before it counts (a refresh 401 may be transient).
    assert_eq!(fake.failed_refreshes(), 2, "only the first process found the session gone: {:#?}", fake.events());
}
