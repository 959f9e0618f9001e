//! The fake browser: follows a redirect chain by hand (no automatic
//! redirects, at most 10 hops) with a per-host cookie jar, trusting only the
//! test certificates, and stops at the first response that is not a redirect
//! (the loopback `/redirect` handler's page or OpenUnison's "Login Complete").
//! `FakeBrowser` plugs it into `--browser-command`: the command only appends
//! the URL to a file, and a background thread opens each URL that appears.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::TestClient;

const MAX_HOPS: usize = 10;

/// Where a visit went.
#[derive(Debug, Clone, Default)]
pub struct BrowseOutcome {
    /// Every URL requested, with the status it answered.
    pub hops: Vec<(String, u16)>,
    /// The last URL requested and its answer.
    pub final_url: String,
    pub final_status: u16,
    pub final_body: String,
    /// The `http://127.0.0.1:PORT/redirect?…` URL the chain reached, if any.
    pub loopback_redirect: Option<String>,
    /// Why the visit stopped early (connection refused, too many hops, …).
    pub error: Option<String>,
}

impl BrowseOutcome {
    /// Ended on a 200 page (the loopback's own page or "Login Complete").
    pub fn completed(&self) -> bool {
        self.error.is_none() && self.final_status == 200
    }

    pub fn reached_login_complete(&self) -> bool {
        self.completed() && self.final_url.contains("/auth/forms/cli-login-finished.jsp")
    }
}

/// A browser profile: an HTTPS client and a cookie jar that persist across visits.
pub struct Browser {
    client: TestClient,
    /// `host:port` → cookies (name → value).
    jar: Mutex<HashMap<String, Vec<(String, String)>>>,
}

fn is_loopback_redirect(url: &url::Url) -> bool {
    url.scheme() == "http" && url.host_str() == Some("127.0.0.1") && url.path() == "/redirect"
}

fn jar_key(url: &url::Url) -> String {
    format!("{}:{}", url.host_str().unwrap_or(""), url.port_or_known_default().unwrap_or(0))
}

impl Browser {
    /// Trusts exactly these PEMs (the fake's CA file contents).
    pub fn new(trusted_pems: &[&str]) -> Browser {
        Browser { client: TestClient::new(trusted_pems), jar: Mutex::new(HashMap::new()) }
    }

    /// Follows redirects from `url` until a non-redirect answer.
    pub fn follow(&self, url: &str) -> BrowseOutcome {
        self.visit(url, false)
    }

    /// Follows redirects but stops before requesting the loopback
    /// `/redirect` URL, which it returns in `loopback_redirect` — what a user
    /// on another machine would copy from the address bar (`--no-browser`).
    pub fn follow_until_loopback_redirect(&self, url: &str) -> BrowseOutcome {
        self.visit(url, true)
    }

    /// The loopback `/redirect?code=…&state=…` URL the fake sends this
    /// browser to from `url`, not yet requested; panics with the visit shown
    /// if there is none.
    pub fn loopback_redirect(&self, url: &str) -> String {
        let reached = self.follow_until_loopback_redirect(url);
        reached.loopback_redirect.clone().unwrap_or_else(|| panic!("no loopback redirect: {reached:#?}"))
    }

    fn visit(&self, start: &str, stop_at_loopback_redirect: bool) -> BrowseOutcome {
        let mut outcome = BrowseOutcome::default();
        let mut current = match url::Url::parse(start) {
            Ok(url) => url,
            Err(err) => {
                outcome.error = Some(format!("`{start}` is not a URL: {err}"));
                return outcome;
            }
        };
        for _ in 0..MAX_HOPS {
            if is_loopback_redirect(&current) {
                outcome.loopback_redirect = Some(current.to_string());
                if stop_at_loopback_redirect {
                    return outcome;
                }
            }
            let cookie_header = self.cookie_header(&current);
            let headers: Vec<(&str, &str)> = cookie_header.iter().map(|value| ("cookie", value.as_str())).collect();
            let response = match self.client.get(current.as_str(), &headers) {
                Ok(response) => response,
                Err(err) => {
                    outcome.error = Some(format!("GET {current}: {err}"));
                    return outcome;
                }
            };
            self.store_cookies(&current, &response.headers);
            outcome.hops.push((current.to_string(), response.status));
            outcome.final_url = current.to_string();
            outcome.final_status = response.status;
            outcome.final_body = response.text();
            let location = response.header("location").map(str::to_string);
            match (response.status, location) {
                (300..=399, Some(location)) => match current.join(&location) {
                    Ok(next) => current = next,
                    Err(err) => {
                        outcome.error = Some(format!("bad Location `{location}`: {err}"));
                        return outcome;
                    }
                },
                _ => return outcome,
            }
        }
        outcome.error = Some(format!("more than {MAX_HOPS} redirects"));
        outcome
    }

    fn cookie_header(&self, url: &url::Url) -> Option<String> {
        let jar = self.jar.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cookies = jar.get(&jar_key(url)).filter(|cookies| !cookies.is_empty())?;
        Some(cookies.iter().map(|(name, value)| format!("{name}={value}")).collect::<Vec<_>>().join("; "))
    }

    fn store_cookies(&self, url: &url::Url, headers: &reqwest::header::HeaderMap) {
        let mut jar = self.jar.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let cookies = jar.entry(jar_key(url)).or_default();
        for value in headers.get_all("set-cookie").iter().filter_map(|value| value.to_str().ok()) {
            let pair = value.split(';').next().unwrap_or("");
            if let Some((name, value)) = pair.split_once('=') {
                cookies.retain(|(existing, _)| existing != name.trim());
                cookies.push((name.trim().to_string(), value.trim().to_string()));
            }
        }
    }
}

/// One visit with a fresh profile.
pub fn follow(url: &str, trusted_pems: &[&str]) -> BrowseOutcome {
    Browser::new(trusted_pems).follow(url)
}

/// What `FakeBrowser` does with each URL it is asked to open.
#[derive(Clone)]
pub enum BrowserMode {
    /// Follow the redirect chain (a user who logs in).
    Follow,
    /// Record the URL and do nothing (a user who abandons the login).
    Ignore,
    /// Hand the URL to a test's own function (run on its own thread).
    Custom(Arc<dyn Fn(&str) + Send + Sync>),
}

#[derive(Default)]
struct Seen {
    urls: Vec<String>,
    outcomes: Vec<BrowseOutcome>,
}

/// A browser to pass as `--browser-command`; it watches a file of URLs.
pub struct FakeBrowser {
    command: String,
    urls_file: PathBuf,
    mode: Arc<Mutex<BrowserMode>>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    watcher: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl FakeBrowser {
    /// `trusted_pems`: what the browser trusts (the fake OpenUnison's CA file contents).
    pub fn start(mode: BrowserMode, trusted_pems: &[&str]) -> FakeBrowser {
        let dir = tempfile::Builder::new().prefix("fake-browser-").tempdir().expect("temporary directory");
        let urls_file = dir.path().join("urls");
        std::fs::write(&urls_file, "").expect("create the URL file");
        let path = urls_file.to_str().expect("UTF-8 temporary path");
        assert!(!path.contains(['\'', '"', ' ', '\\', '$']), "temporary path {path} needs no quoting");
        // The plugin appends the URL as the last argument, which `sh -c` makes `$0`.
        let command = format!(r#"sh -c 'printf "%s\n" "$0" >> {path}'"#);
        let mode = Arc::new(Mutex::new(mode));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let browser = Arc::new(Browser::new(trusted_pems));
        let watcher = {
            let (urls_file, mode, seen, stop) = (urls_file.clone(), mode.clone(), seen.clone(), stop.clone());
            std::thread::Builder::new()
                .name("fake-browser".into())
                .spawn(move || watch(urls_file, mode, seen, stop, browser))
                .expect("spawn the browser thread")
        };
        FakeBrowser { command, urls_file, mode, seen, stop, watcher: Some(watcher), _dir: dir }
    }

    /// A browser that trusts this fake OpenUnison (its CA file).
    pub fn for_fake(fake: &super::FakeOpenUnison, mode: BrowserMode) -> FakeBrowser {
        FakeBrowser::start(mode, &[&fake.ca_pem()])
    }

    /// The value for `--browser-command` (or `BROWSER`).
    pub fn command(&self) -> &str {
        &self.command
    }

    pub fn urls_file(&self) -> &std::path::Path {
        &self.urls_file
    }

    pub fn set_mode(&self, mode: BrowserMode) {
        *self.mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = mode;
    }

    /// How many URLs the plugin asked to open.
    pub fn opened(&self) -> usize {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).urls.len()
    }

    pub fn urls(&self) -> Vec<String> {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).urls.clone()
    }

    /// Outcomes of finished `Follow` visits, in completion order.
    pub fn outcomes(&self) -> Vec<BrowseOutcome> {
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).outcomes.clone()
    }

    /// The finished `Follow` visits once there are at least `count` (or all
    /// there are after `timeout`). A login can end before the browser has
    /// loaded the page the listener answered with, so a test that looks at
    /// a visit waits for it here.
    pub fn finished_visits(&self, count: usize, timeout: Duration) -> Vec<BrowseOutcome> {
        let deadline = Instant::now() + timeout;
        while self.outcomes().len() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.outcomes()
    }

    /// Waits until `count` URLs were opened; false on timeout.
    pub fn wait_for_opened(&self, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.opened() >= count {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.opened() >= count
    }
}

impl Drop for FakeBrowser {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
    }
}

fn watch(
    urls_file: PathBuf,
    mode: Arc<Mutex<BrowserMode>>,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    browser: Arc<Browser>,
) {
    let mut consumed = 0usize;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
        let Ok(content) = std::fs::read_to_string(&urls_file) else {
            continue;
        };
        let Some(complete) = content.get(consumed..).and_then(|rest| rest.rfind('\n').map(|end| &rest[..=end])) else {
            continue;
        };
        consumed += complete.len();
        for url in complete.lines().filter(|line| !line.is_empty()) {
            let url = url.to_string();
            seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).urls.push(url.clone());
            let mode = mode.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
            match mode {
                BrowserMode::Ignore => {}
                BrowserMode::Follow => {
                    let (browser, seen) = (browser.clone(), seen.clone());
                    std::thread::spawn(move || {
                        let outcome = browser.follow(&url);
                        seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).outcomes.push(outcome);
                    });
                }
                BrowserMode::Custom(visit) => {
                    std::thread::spawn(move || visit(&url));
                }
            }
        }
    }
}
