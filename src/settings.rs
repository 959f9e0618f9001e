//! Command line plus environment, resolved once into the settings the rest of
//! the code takes; no module below this one sees clap types or reads the
//! environment variables named here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cli::{GlobalArgs, LoginArgs, ShellArg, TokenArgs};
use crate::error::Error;
use crate::isolation::shell::{IsolatedShell, ShellSyntax};
use crate::openunison::{Host, TrustConfig, TrustEnvironment};
use crate::session::SessionLocation;

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
    /// The user's login shell: which `eval` form the `--isolated` hint
    /// shows, and which completion script `completion` prints by default.
    pub const SHELL: &str = "SHELL";
    /// Set: rustls-native-certs reads the system store from there, so the
    /// distribution's bundle is not read in its place.
    pub const SSL_CERT_DIR: &str = "SSL_CERT_DIR";
    /// X11 and Wayland displays: whether `token` has one to open the system browser on.
    pub const DISPLAY: &str = "DISPLAY";
    pub const WAYLAND_DISPLAY: &str = "WAYLAND_DISPLAY";
    /// Set inside WSL, which opens Windows' browser without a display.
    pub const WSL_DISTRO_NAME: &str = "WSL_DISTRO_NAME";
    pub const WSL_INTEROP: &str = "WSL_INTEROP";
}

/// Whether an environment variable is set to something.
fn is_set(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|value| !value.is_empty())
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
    /// `BROWSER`: commands separated by `:` (`;` on Windows), `%s` replaced by
    /// the URL, else appended.
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

/// The loopback port OpenUnison's chart registers for the redirect.
pub const DEFAULT_PORT: u16 = 8400;

/// Everything a login needs, resolved.
#[derive(Debug, Clone)]
pub struct LoginSettings {
    pub host: Option<Host>,
    pub context: Option<String>,
    pub kubeconfig: KubeconfigSelection,
    pub trust: TrustConfig,
    pub browser: BrowserChoice,
    pub port: u16,
    /// Whether `--port` was given (else a remembered port wins over the default).
    pub port_given: bool,
    pub timeout: Duration,
    pub force: bool,
    pub auth_provider: bool,
    pub paths: Paths,
}

impl LoginSettings {
    pub fn resolve(global: &GlobalArgs, args: &LoginArgs) -> Result<LoginSettings, Error> {
        let paths = Paths::from_env()?;
        let host = args.host.as_deref().map(Host::parse).transpose()?;
        let mut trust = TrustConfig::from_settings(args.certificate_authority.clone());
        trust.ca_data = args.certificate_authority_data.as_deref().map(decode_ca_data).transpose()?;
        Ok(LoginSettings {
            host,
            context: global.context.clone(),
            kubeconfig: KubeconfigSelection::resolve(global.kubeconfig.as_deref(), &paths),
            trust,
            browser: BrowserChoice::resolve(args.no_browser, args.browser_command.as_deref()),
            port: args.port.unwrap_or(DEFAULT_PORT),
            port_given: args.port.is_some(),
            timeout: args.timeout,
            force: args.force,
            auth_provider: args.auth_provider,
            paths,
        })
    }

    /// These settings, with what `remembered` knows filling in what the
    /// command line left open: the CA when `--certificate-authority` is
    /// absent, a remembered `--browser-command` when neither browser flag is
    /// given (it wins over `BROWSER`, as for `token`), the port when `--port`
    /// is absent.
    pub fn with_remembered(&self, remembered: &Remembered) -> LoginSettings {
        let mut settings = self.clone();
        if !settings.port_given
            && let Some(port) = remembered.port
        {
            settings.port = port;
        }
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

/// Whether `token` may open a browser, as far as the environment goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrowserEnvironment {
    /// `OULOGIN_NO_BROWSER=1`.
    pub forbidden: bool,
    /// A display to open the system browser on: `Some(true)` outside Linux or
    /// with `DISPLAY`, `WAYLAND_DISPLAY` or a WSL variable set; `None` when
    /// none is set and only the kernel can tell whether this is WSL (asked
    /// only when a browser login is in question, to keep the hot path lean).
    pub display: Option<bool>,
}

impl BrowserEnvironment {
    pub fn from_env() -> BrowserEnvironment {
        let display = !cfg!(target_os = "linux")
            || [env::DISPLAY, env::WAYLAND_DISPLAY, env::WSL_DISTRO_NAME, env::WSL_INTEROP].into_iter().any(is_set);
        BrowserEnvironment {
            forbidden: std::env::var(env::OULOGIN_NO_BROWSER).is_ok_and(|value| value == "1"),
            display: display.then_some(true),
        }
    }
}

/// Everything `token` needs from its command line and the environment.
#[derive(Debug, Clone)]
pub struct TokenSettings {
    /// `--session NAME` under the session directory, or `--session-file PATH`.
    pub location: SessionLocation,
    /// `--host`, for messages that name the login command.
    pub host: Option<String>,
    pub paths: Paths,
    /// `KUBERNETES_EXEC_INFO`.
    pub exec_info: Option<String>,
    pub browser_environment: BrowserEnvironment,
}

impl TokenSettings {
    pub fn resolve(args: &TokenArgs) -> Result<TokenSettings, Error> {
        let paths = Paths::from_env()?;
        let location = match (&args.session, &args.session_file) {
            (_, Some(file)) => SessionLocation::from_file(file),
            (Some(name), None) => SessionLocation::named(&paths.session_dir, name)?,
            (None, None) => {
                return Err(Error::usage("`token` needs `--session` or `--session-file`", None));
            }
        };
        Ok(TokenSettings {
            location,
            host: args.host.clone(),
            paths,
            exec_info: std::env::var(env::KUBERNETES_EXEC_INFO).ok(),
            browser_environment: BrowserEnvironment::from_env(),
        })
    }
}

/// `--certificate-authority-data`: base64 PEM, as in a kubeconfig.
fn decode_ca_data(data: &str) -> Result<String, Error> {
    use base64::Engine as _;
    let bad = |why: &str| {
        Error::usage(
            format!("`--certificate-authority-data` is not base64-encoded PEM: {why}"),
            Some("pass the value of a kubeconfig's `certificate-authority-data`, or a file with `--certificate-authority`".into()),
        )
    };
    let compact: String = data.chars().filter(|c| !c.is_whitespace()).collect();
    let bytes = base64::engine::general_purpose::STANDARD.decode(compact).map_err(|_| bad("it is not base64"))?;
    let pem = String::from_utf8(bytes).map_err(|_| bad("it does not decode to text"))?;
    if !pem.contains("-----BEGIN CERTIFICATE-----") {
        return Err(bad("it holds no `BEGIN CERTIFICATE` block"));
    }
    Ok(pem)
}

/// How an earlier login for the same host reached OpenUnison: the CA,
/// browser command and redirect port its session remembers (or the CA an
/// old-plugin user carries). A login again uses them where its command line
/// says nothing, as `token`'s own re-login does, and hints repeat them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remembered {
    #[serde(default)]
    pub trust: Option<TrustConfig>,
    #[serde(default)]
    pub browser: Option<BrowserChoice>,
    #[serde(default)]
    pub port: Option<u16>,
}

impl Remembered {
    /// The flags a login command in a hint must repeat: `--port N` unless it
    /// is the default, `--certificate-authority FILE` when one is remembered
    /// (each with a leading space; empty when there is nothing to repeat).
    pub fn login_flags(&self) -> String {
        self.login_flag_words().iter().map(|word| format!(" {}", shell_words::quote(word))).collect()
    }

    /// [`login_flags`](Remembered::login_flags) as words, unquoted, for
    /// hints quoted for another shell.
    pub fn login_flag_words(&self) -> Vec<String> {
        let mut words = Vec::new();
        if let Some(port) = self.port.filter(|port| *port != DEFAULT_PORT) {
            words.extend(["--port".to_string(), port.to_string()]);
        }
        if let Some(file) = self.trust.as_ref().and_then(|trust| trust.ca_file.as_ref()) {
            words.extend(["--certificate-authority".to_string(), file.to_string_lossy().into_owned()]);
        }
        words
    }

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

/// The syntax `--isolated` prints: `--shell` when given; else PowerShell on
/// Windows; elsewhere the POSIX `export` line (which fish evaluates too),
/// with the hint for fish when `SHELL` is fish.
pub fn isolated_shell(given: Option<ShellArg>) -> IsolatedShell {
    match given {
        Some(shell) => IsolatedShell::chosen(match shell {
            ShellArg::Sh => ShellSyntax::Posix,
            ShellArg::Fish => ShellSyntax::Fish,
            ShellArg::Powershell => ShellSyntax::PowerShell,
            ShellArg::Cmd => ShellSyntax::Cmd,
        }),
        None if cfg!(windows) => {
            IsolatedShell { line: ShellSyntax::PowerShell, hint: ShellSyntax::PowerShell, given: false }
        }
        None => IsolatedShell {
            line: ShellSyntax::Posix,
            hint: if user_shell_is_fish() { ShellSyntax::Fish } else { ShellSyntax::Posix },
            given: false,
        },
    }
}

/// Whether the user's shell (`SHELL`) is fish, whose `eval` takes `(…)`
/// rather than POSIX `"$(…)"`.
fn user_shell_is_fish() -> bool {
    std::env::var_os(env::SHELL).is_some_and(|shell| Path::new(&shell).file_name().is_some_and(|name| name == "fish"))
}

/// The shell `completion` prints for: the one named, else the one `SHELL`
/// names (PowerShell on Windows without `SHELL`), as clap_complete reads it.
pub fn completion_shell(given: Option<clap_complete::Shell>) -> Result<clap_complete::Shell, Error> {
    given.or_else(clap_complete::Shell::from_env).ok_or_else(|| {
        let why = match std::env::var_os(env::SHELL) {
            Some(shell) => format!("`SHELL` (`{}`) is not a shell with a completion script", shell.to_string_lossy()),
            None => "`SHELL` is not set".to_string(),
        };
        Error::usage(
            format!("no shell named, and {why}"),
            Some("name one: `kubectl oulogin completion bash|zsh|fish|powershell|elvish`".to_string()),
        )
    })
}

/// What the environment adds to TLS trust (`SSL_CERT_FILE`, `SSL_CERT_DIR`),
/// read once for the process.
pub fn trust_environment() -> TrustEnvironment {
    TrustEnvironment {
        ssl_cert_file: std::env::var_os(env::SSL_CERT_FILE).filter(|value| !value.is_empty()).map(PathBuf::from),
        ssl_cert_dir_set: std::env::var_os(env::SSL_CERT_DIR).is_some(),
    }
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
            port_given: false,
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
            trust: Some(TrustConfig { ca_file: Some("/old/ca.pem".into()), ca_pem: Some("PEM".into()), ca_data: None }),
            browser: Some(BrowserChoice::Command("firefox".into())),
            port: Some(8401),
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
        let no_browser = Remembered { browser: Some(BrowserChoice::NoBrowser), ..Remembered::default() };
        let fresh = settings(TrustConfig::default(), BrowserChoice::System).with_remembered(&no_browser);
        assert_eq!((fresh.trust, fresh.browser), (TrustConfig::default(), BrowserChoice::System));
    }

    #[test]
    fn a_remembered_port_is_used_unless_port_is_given_and_hints_repeat_it() {
        let remembered = Remembered { port: Some(8401), ..Remembered::default() };
        let open = settings(TrustConfig::default(), BrowserChoice::System);
        assert_eq!(open.with_remembered(&remembered).port, 8401);
        let given = LoginSettings { port: 8402, port_given: true, ..open.clone() };
        assert_eq!(given.with_remembered(&remembered).port, 8402);
        let given_default = LoginSettings { port: DEFAULT_PORT, port_given: true, ..open };
        assert_eq!(given_default.with_remembered(&remembered).port, DEFAULT_PORT);

        assert_eq!(remembered.login_flags(), " --port 8401");
        assert_eq!(Remembered { port: Some(DEFAULT_PORT), ..Remembered::default() }.login_flags(), "");
        let with_ca =
            Remembered { trust: Some(TrustConfig::from_settings(Some("/my ca/ou.pem".into()))), ..remembered };
        assert_eq!(with_ca.login_flags(), " --port 8401 --certificate-authority '/my ca/ou.pem'");
    }

    #[test]
    fn certificate_authority_data_is_base64_pem() {
        use base64::Engine as _;
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let data = base64::engine::general_purpose::STANDARD.encode(pem);
        assert_eq!(decode_ca_data(&data).unwrap(), pem);
        assert_eq!(decode_ca_data(&format!(" {data}\n")).unwrap(), pem, "whitespace around it is fine");
        for bad in ["%%%", &base64::engine::general_purpose::STANDARD.encode("not pem"), ""] {
            let err = decode_ca_data(bad).unwrap_err();
            assert!(err.render().contains("`--certificate-authority-data`"), "{}", err.render());
        }
    }

    #[test]
    fn a_remembered_ca_file_removed_since_is_left_out_and_the_servers_ca_kept() {
        let dir = tempfile::tempdir().unwrap();
        let present = dir.path().join("ca.pem");
        std::fs::write(&present, "pem").unwrap();
        let gone = dir.path().join("gone.pem");
        let remembered = |ca_file: &Path, ca_pem: Option<&str>| Remembered {
            trust: Some(TrustConfig {
                ca_file: Some(ca_file.to_path_buf()),
                ca_pem: ca_pem.map(String::from),
                ca_data: None,
            }),
            browser: None,
            port: None,
        };
        assert_eq!(remembered(&present, None).without_removed_ca_file(), remembered(&present, None));
        assert_eq!(remembered(&gone, None).without_removed_ca_file(), Remembered::default());
        assert_eq!(
            remembered(&gone, Some("server pem")).without_removed_ca_file().trust,
            Some(TrustConfig { ca_file: None, ca_pem: Some("server pem".into()), ca_data: None })
        );
    }
}
