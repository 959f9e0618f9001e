//! Command line plus environment, resolved once into the settings the rest of
//! the code takes; no module below this one sees clap types or reads the
//! environment variables named here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::LoginArgs;
use crate::error::Error;
use crate::openunison::{Host, TrustConfig};

/// Every environment variable the plugin reads, in one place.
pub mod env {
    /// The kubeconfig list, with kubectl's rules.
    pub const KUBECONFIG: &str = "KUBECONFIG";
    /// Parent of the session directory `oulogin/` (default `~/.kube/cache`).
    pub const KUBECACHEDIR: &str = "KUBECACHEDIR";
    /// Browser command when `--browser-command` is absent (xdg convention).
    pub const BROWSER: &str = "BROWSER";
    /// Extra trusted CA bundle, on every platform.
    pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
    /// `1`: `token` never opens a browser.
    pub const OULOGIN_NO_BROWSER: &str = "OULOGIN_NO_BROWSER";
    /// `1` or `2`: debug lines on stderr, as `-v`/`-vv` (for the commands kubectl runs).
    pub const OULOGIN_DEBUG: &str = "OULOGIN_DEBUG";
    /// The ExecCredential request client-go hands to `token`.
    pub const KUBERNETES_EXEC_INFO: &str = "KUBERNETES_EXEC_INFO";
}

/// Where files live.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The user's home directory.
    pub home: PathBuf,
    /// `$KUBECACHEDIR/oulogin` (default `~/.kube/cache/oulogin`): shared sessions and locks.
    pub session_dir: PathBuf,
}

impl Paths {
    pub fn from_env() -> Result<Paths, Error> {
        let home = dirs::home_dir()
            .ok_or_else(|| Error::usage("cannot find the home directory", Some("set `HOME`".to_string())))?;
        let cache = std::env::var_os(env::KUBECACHEDIR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".kube").join("cache"));
        Ok(Paths { session_dir: cache.join("oulogin"), home })
    }

    /// `~/.kube/config`.
    pub fn default_kubeconfig(&self) -> PathBuf {
        self.home.join(".kube").join("config")
    }
}

/// How the browser is opened, in order of precedence.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BrowserChoice {
    /// `--no-browser`: print the URL and accept the pasted redirect URL on stdin.
    NoBrowser,
    /// `--browser-command CMD`: split into words, URL appended.
    Command(String),
    /// `BROWSER`: `:`-separated commands, `%s` replaced by the URL, else appended.
    BrowserEnv(String),
    /// The system default (the `open` crate).
    System,
}

impl BrowserChoice {
    /// Which browser, in words (for debug lines).
    pub fn describe(&self) -> String {
        match self {
            BrowserChoice::NoBrowser => "no browser (`--no-browser`)".to_string(),
            BrowserChoice::Command(command) => format!("`{command}` (`--browser-command`)"),
            BrowserChoice::BrowserEnv(list) => format!("`{list}` (`BROWSER`)"),
            BrowserChoice::System => "the system browser".to_string(),
        }
    }

    pub fn resolve(no_browser: bool, command: Option<&str>) -> BrowserChoice {
        if no_browser {
            BrowserChoice::NoBrowser
        } else if let Some(command) = command {
            BrowserChoice::Command(command.to_string())
        } else {
            match std::env::var(env::BROWSER) {
                Ok(value) if !value.trim().is_empty() => BrowserChoice::BrowserEnv(value),
                _ => BrowserChoice::System,
            }
        }
    }
}

/// Which kubeconfig files to use: `--kubeconfig`, else `KUBECONFIG`, else `~/.kube/config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeconfigSelection {
    Explicit(PathBuf),
    List(Vec<PathBuf>),
    Default(PathBuf),
}

impl KubeconfigSelection {
    pub fn resolve(explicit: Option<&Path>, paths: &Paths) -> KubeconfigSelection {
        if let Some(path) = explicit {
            return KubeconfigSelection::Explicit(path.to_path_buf());
        }
        if let Some(list) = std::env::var_os(env::KUBECONFIG).filter(|value| !value.is_empty()) {
            let mut files: Vec<PathBuf> = Vec::new();
            for path in std::env::split_paths(&list).filter(|path| !path.as_os_str().is_empty()) {
                if !files.contains(&path) {
                    files.push(path);
                }
            }
            if !files.is_empty() {
                return KubeconfigSelection::List(files);
            }
        }
        KubeconfigSelection::Default(paths.default_kubeconfig())
    }
}

/// Everything a login needs, resolved.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub host: Option<Host>,
    pub context: Option<String>,
    pub kubeconfig: KubeconfigSelection,
    pub trust: TrustConfig,
    pub browser: BrowserChoice,
    pub port: u16,
    pub timeout: Duration,
    pub force: bool,
    pub auth_provider: bool,
    pub paths: Paths,
}

impl LoginSettings {
    pub fn resolve(args: &LoginArgs) -> Result<LoginSettings, Error> {
        let paths = Paths::from_env()?;
        let host = args.host.as_deref().map(Host::parse).transpose()?;
        if args.timeout.is_zero() {
            return Err(Error::usage("`--timeout` must be longer than zero", None));
        }
        Ok(LoginSettings {
            host,
            context: args.context.clone(),
            kubeconfig: KubeconfigSelection::resolve(args.kubeconfig.as_deref(), &paths),
            trust: TrustConfig::from_settings(args.certificate_authority.clone()),
            browser: BrowserChoice::resolve(args.no_browser, args.browser_command.as_deref()),
            port: args.port,
            timeout: args.timeout,
            force: args.force,
            auth_provider: args.auth_provider,
            paths,
        })
    }

    /// These settings, with what `remembered` knows filling in what the
    /// command line left open: the CA when `--certificate-authority` is
    /// absent, a remembered `--browser-command` when neither browser flag is
    /// given (it wins over `BROWSER`, as for `token`).
    pub fn with_remembered(&self, remembered: &Remembered) -> LoginSettings {
        let mut settings = self.clone();
        if settings.trust == TrustConfig::default()
            && let Some(trust) = &remembered.trust
        {
            settings.trust = trust.clone();
        }
        if matches!(settings.browser, BrowserChoice::BrowserEnv(_) | BrowserChoice::System)
            && let Some(command @ BrowserChoice::Command(_)) = &remembered.browser
        {
            settings.browser = command.clone();
        }
        settings
    }
}

/// How an earlier login for the same host reached OpenUnison: the CA and
/// browser command its session remembers (or the CA an old-plugin user
/// carries). A login again uses them where its command line says nothing, as
/// `token`'s own re-login does.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remembered {
    #[serde(default)]
    pub trust: Option<TrustConfig>,
    #[serde(default)]
    pub browser: Option<BrowserChoice>,
}

impl Remembered {
    /// Without a CA file removed since: that is no reason to fail a login the
    /// system roots or the CA the server handed out may still carry.
    pub fn without_removed_ca_file(mut self) -> Remembered {
        if let Some(trust) = &mut self.trust {
            trust.ca_file = trust.ca_file.take().filter(|file| file.is_file());
            if *trust == TrustConfig::default() {
                self.trust = None;
            }
        }
        self
    }
}

/// Whether `OULOGIN_NO_BROWSER=1` forbids `token` to open a browser.
pub fn no_browser_from_env() -> bool {
    std::env::var(env::OULOGIN_NO_BROWSER).is_ok_and(|value| value == "1")
}

/// The debug level: the higher of `-v` (counted) and `OULOGIN_DEBUG` (`1`,
/// `2`; `0`, `false`, `no` or empty is off; any other value is `1`).
pub fn debug_level(verbose: u8) -> u8 {
    let from_env = std::env::var(env::OULOGIN_DEBUG).map(|value| env_debug_level(&value)).unwrap_or(0);
    verbose.max(from_env).min(crate::debug::MAX_LEVEL)
}

fn env_debug_level(value: &str) -> u8 {
    let value = value.trim();
    match value.parse::<u8>() {
        Ok(level) => level,
        Err(_) if value.is_empty() || ["false", "no", "off"].iter().any(|off| value.eq_ignore_ascii_case(off)) => 0,
        Err(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(trust: TrustConfig, browser: BrowserChoice) -> LoginSettings {
        let paths = Paths { home: PathBuf::from("/home/u"), session_dir: PathBuf::from("/home/u/.kube/cache/oulogin") };
        LoginSettings {
            host: None,
            context: None,
            kubeconfig: KubeconfigSelection::Default(paths.default_kubeconfig()),
            trust,
            browser,
            port: 8400,
            timeout: Duration::from_secs(300),
            force: false,
            auth_provider: false,
            paths,
        }
    }

    #[test]
    fn oulogin_debug_values_read_as_levels() {
        for (value, level) in [("", 0), ("0", 0), ("no", 0), ("1", 1), ("2", 2), ("9", 9), ("yes", 1), (" 2 ", 2)] {
            assert_eq!(env_debug_level(value), level, "{value:?}");
        }
    }

    #[test]
    fn remembered_trust_and_browser_command_fill_only_what_the_command_line_left_open() {
        let remembered = Remembered {
            trust: Some(TrustConfig { ca_file: Some("/old/ca.pem".into()), ca_pem: Some("PEM".into()) }),
            browser: Some(BrowserChoice::Command("firefox".into())),
        };
        let open = settings(TrustConfig::default(), BrowserChoice::System).with_remembered(&remembered);
        assert_eq!(open.trust, remembered.trust.clone().unwrap());
        assert_eq!(open.browser, BrowserChoice::Command("firefox".into()));
        let from_env = settings(TrustConfig::default(), BrowserChoice::BrowserEnv("w3m".into()));
        assert_eq!(from_env.with_remembered(&remembered).browser, BrowserChoice::Command("firefox".into()));

        let given = TrustConfig::from_settings(Some("/new/ca.pem".into()));
        for browser in [BrowserChoice::NoBrowser, BrowserChoice::Command("chromium".into())] {
            let explicit = settings(given.clone(), browser.clone()).with_remembered(&remembered);
            assert_eq!(explicit.trust, given);
            assert_eq!(explicit.browser, browser);
        }
        // Only a remembered `--browser-command` carries over, not `--no-browser`.
        let no_browser = Remembered { trust: None, browser: Some(BrowserChoice::NoBrowser) };
        let fresh = settings(TrustConfig::default(), BrowserChoice::System).with_remembered(&no_browser);
        assert_eq!((fresh.trust, fresh.browser), (TrustConfig::default(), BrowserChoice::System));
    }

    #[test]
    fn a_remembered_ca_file_removed_since_is_left_out_and_the_servers_ca_kept() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("ca.pem");
        std::fs::write(&present, "pem").unwrap();
        let gone = dir.path().join("gone.pem");
        let remembered = |ca_file: &Path, ca_pem: Option<&str>| Remembered {
            trust: Some(TrustConfig { ca_file: Some(ca_file.to_path_buf()), ca_pem: ca_pem.map(String::from) }),
            browser: None,
        };
        assert_eq!(remembered(&present, None).without_removed_ca_file(), remembered(&present, None));
        assert_eq!(remembered(&gone, None).without_removed_ca_file(), Remembered::default());
        assert_eq!(
            remembered(&gone, Some("server pem")).without_removed_ca_file().trust,
            Some(TrustConfig { ca_file: None, ca_pem: Some("server pem".into()) })
        );
    }
}
