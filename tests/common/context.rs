//! The shared test context: one strict fake OpenUnison (with its fake API
//! server), a fake browser that trusts it, and a private `TestEnv` (temporary
//! HOME, KUBECONFIG and KUBECACHEDIR, cleared environment). Every integration
//! module starts from `TestContext::new()` (or `with_config`) instead of
//! wiring the three together itself.

use std::path::PathBuf;

use super::{Output, TestEnv, free_port, login_args};
use crate::fake::{BrowserMode, FakeBrowser, FakeConfig, FakeOpenUnison};

/// The chart's defaults on a redirect port of this test's own.
pub fn fake_config() -> FakeConfig {
    FakeConfig::with_redirect_port(free_port())
}

/// A fake OpenUnison, a browser for it and a private environment. Destructure
/// it (`let TestContext { env, fake, browser } = TestContext::new();`) or keep
/// it whole and use its helpers.
pub struct TestContext {
    pub env: TestEnv,
    pub fake: FakeOpenUnison,
    /// Follows every URL the plugin opens (a user who logs in) unless started
    /// with another mode or switched with `set_mode`.
    pub browser: FakeBrowser,
}

impl Default for TestContext {
    fn default() -> Self {
        TestContext::new()
    }
}

impl TestContext {
    /// A fake with the chart's defaults and a browser that logs in.
    pub fn new() -> TestContext {
        TestContext::start(fake_config(), BrowserMode::Follow)
    }

    /// A fake started with `config` and a browser that logs in.
    pub fn with_config(config: FakeConfig) -> TestContext {
        TestContext::start(config, BrowserMode::Follow)
    }

    /// A fake whose tokens live `secs` seconds, and a browser that logs in.
    pub fn with_token_lifetime(secs: u64) -> TestContext {
        TestContext::with_config(FakeConfig { token_lifetime_secs: secs, ..fake_config() })
    }

    /// A fake started with `config` and a browser in `mode`.
    pub fn start(config: FakeConfig, mode: BrowserMode) -> TestContext {
        let fake = FakeOpenUnison::start(config);
        let browser = FakeBrowser::for_fake(&fake, mode);
        TestContext { env: TestEnv::new(), fake, browser }
    }

    /// Another browser for the same fake (a second user, or one in another mode).
    pub fn browser(&self, mode: BrowserMode) -> FakeBrowser {
        FakeBrowser::for_fake(&self.fake, mode)
    }

    /// `--host H --certificate-authority CA --port P --browser-command CMD`
    /// for the context's fake and browser, then `more`.
    pub fn login_args(&self, more: &[&str]) -> Vec<String> {
        let mut args = login_args(&self.fake, &self.browser);
        args.extend(more.iter().map(|arg| arg.to_string()));
        args
    }

    /// `kubectl-oulogin <login flags> MORE…`, run to the end.
    pub fn login(&self, more: &[&str]) -> Output {
        self.env.oulogin(self.login_args(more)).run()
    }

    /// The fake's session file stem: the host with `:` as `_`.
    pub fn stem(&self) -> String {
        self.fake.host().replace(':', "_")
    }

    /// `$KUBECACHEDIR/oulogin/<stem>.json`.
    pub fn session_file(&self) -> PathBuf {
        self.env.session_dir().join(format!("{}.json", self.stem()))
    }

    /// The arguments of the exec stanza a login writes for this fake.
    pub fn token_args(&self) -> Vec<String> {
        vec!["token".into(), "--session".into(), self.stem(), "--host".into(), self.fake.host()]
    }

    /// `kubectl get --raw /api/v1/namespaces/default` through the current context.
    pub fn kubectl_get(&self) -> Output {
        self.env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).run()
    }
}
