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
}

/// Whether `OULOGIN_NO_BROWSER=1` forbids `token` to open a browser.
pub fn no_browser_from_env() -> bool {
    std::env::var(env::OULOGIN_NO_BROWSER).is_ok_and(|value| value == "1")
}
