//! The command line as clap sees it: declarations only, no side effects and no
//! imports from the rest of the crate, so `--help` and `--version` can never
//! touch the network or a kubeconfig.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Log in to Kubernetes through OpenUnison, and stay logged in.
///
/// With `--host`, opens the browser on OpenUnison's login page and writes the
/// cluster, user and context into the active kubeconfig. Kubeconfigs written this
/// way call `kubectl oulogin token`, which refreshes the one-minute OpenUnison
/// tokens under a cross-process lock, so any number of tools can share one
/// session safely.
#[derive(Debug, Parser)]
#[command(
    name = "kubectl-oulogin",
    bin_name = "kubectl oulogin",
    version,
    // Login flags and commands exclude each other (see `parse_from_words`).
    override_usage = "kubectl oulogin [OPTIONS]\n       kubectl oulogin <COMMAND>",
    after_help = LOGIN_EXAMPLES
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(flatten)]
    pub login: LoginArgs,

    /// Log in to a fresh private kubeconfig with its own OpenUnison session,
    /// and print the line that sets KUBECONFIG to it on stdout (`export
    /// KUBECONFIG=<path>` for `eval`; see `--shell`).
    #[arg(long)]
    pub isolated: bool,

    /// The shell whose syntax `--isolated` prints: `sh` (also `bash`, `zsh`), `fish`,
    /// `powershell` (also `pwsh`) or `cmd` [default: powershell on Windows, else sh].
    #[arg(long, value_enum, value_name = "SHELL", requires = "isolated")]
    pub shell: Option<ShellArg>,

    /// Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl Cli {
    /// Parses the process's command line, exiting on errors as clap does.
    /// Login flags cannot go with a command (they would be ignored); the
    /// global ones (`--kubeconfig`, `--context`, `-v`) go anywhere.
    pub fn parse_command_line() -> Cli {
        Cli::parse_from_words(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    pub fn parse_from_words<I, T>(words: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Cli::command();
        let mut matches = command.try_get_matches_from_mut(words)?;
        if let Some((name, _)) = matches.subcommand() {
            let misplaced = command.get_arguments().find(|arg| {
                !arg.is_global_set()
                    && matches.value_source(arg.get_id().as_str()) == Some(clap::parser::ValueSource::CommandLine)
            });
            if let Some(arg) = misplaced {
                let flag = arg.get_long().map(|long| format!("--{long}")).unwrap_or_else(|| arg.get_id().to_string());
                return Err(command.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("the command `{name}` cannot be used with `{flag}`, a flag of the login"),
                ));
            }
        }
        // `_mut` takes the values out instead of cloning every match first.
        Cli::from_arg_matches_mut(&mut matches).map_err(|err| err.format(&mut command))
    }
}

const LOGIN_EXAMPLES: &str = "Examples:
  kubectl oulogin --host ou.example.com                       log in; the new context becomes current
  kubectl oulogin                                             log in again for the current context
  kubectl oulogin --context prod --force                      log in again for `prod`
  eval \"$(kubectl oulogin --host ou.example.com --isolated)\"  a private kubeconfig for this shell
  kubectl oulogin exec --host ou.example.com -- k9s           one command with its own session

Exit codes: 0 success; 1 the operation failed; 2 usage error; 130 Ctrl-C; `exec` passes its command's \
status through (128+N when it died of signal N; 127 when it is not found, 126 when it cannot be run).";

/// Flags kubectl users give before or after the command, as kubectl's own.
#[derive(Debug, Args, Clone, Default)]
pub struct GlobalArgs {
    /// Use this kubeconfig file instead of the KUBECONFIG rules.
    #[arg(long, value_name = "PATH", global = true)]
    pub kubeconfig: Option<PathBuf>,

    /// The context to act on: to log in (again) for, to log out of, to show.
    /// With `--host`, the name of the new context.
    #[arg(long, value_name = "NAME", global = true)]
    pub context: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command with its own fresh kubeconfig and OpenUnison session,
    /// removed again when the command exits.
    #[command(after_help = "Examples:
  kubectl oulogin exec --host ou.example.com -- k9s
  kubectl oulogin exec --context prod -- kubectl get pods -A
  kubectl oulogin exec --host ou.example.com --no-browser -- helm list")]
    Exec(ExecArgs),

    /// The exec credential plugin that kubeconfigs written by this tool call.
    ///
    /// Prints one ExecCredential JSON document on stdout. Not meant to be typed
    /// by people.
    #[command(
        hide = true,
        after_help = "Examples (what a kubeconfig's exec stanza runs):
  kubectl-oulogin token --session ou.example.com --host ou.example.com
  kubectl-oulogin token --session-file /tmp/oulogin-x/session.json --host ou.example.com"
    )]
    Token(TokenArgs),

    /// Show the contexts this tool manages and the state of their sessions.
    #[command(after_help = "Examples:
  kubectl oulogin status
  kubectl oulogin status -o wide --check
  kubectl oulogin status -o name
  kubectl oulogin --kubeconfig ~/.kube/other status -o json")]
    Status(StatusArgs),

    /// Remove the local session and the credentials of a context.
    ///
    /// kubectl through the context then fails at once, naming the command that
    /// logs in again.
    #[command(after_help = "Examples:
  kubectl oulogin logout
  kubectl oulogin logout --context prod
  kubectl oulogin logout --all --purge")]
    Logout(LogoutArgs),

    /// Print a shell completion script.
    #[command(after_help = "Examples:
  source <(kubectl oulogin completion bash)
  kubectl oulogin completion fish > ~/.config/fish/completions/kubectl-oulogin.fish")]
    Completion(CompletionArgs),

    /// Print the version, as `--version` does.
    #[command(after_help = "Examples:\n  kubectl oulogin version")]
    Version,

    /// Answer kubectl's plugin completion protocol (used by `kubectl_complete-oulogin`).
    #[command(name = "__complete", hide = true, disable_help_flag = true)]
    Complete(CompleteArgs),

    /// Print the man page (roff) on stdout.
    #[command(name = "__man", hide = true)]
    Man,
}

/// Flags shared by the login forms and `exec`.
#[derive(Debug, Args, Clone, Default)]
pub struct LoginArgs {
    /// OpenUnison host, `HOST[:PORT]`; `https://` is implied.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub host: Option<String>,

    /// Extra CA certificate (PEM) to trust for the OpenUnison host, on top of the system roots.
    #[arg(long, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,

    /// The same as `--certificate-authority`, as base64 PEM (as in a kubeconfig); both may be given.
    #[arg(long, value_name = "BASE64")]
    pub certificate_authority_data: Option<String>,

    /// Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin.
    #[arg(long)]
    pub no_browser: bool,

    /// Open the login URL with this command (split like a shell would; the URL is appended).
    #[arg(long, value_name = "CMD")]
    pub browser_command: Option<String>,

    /// Loopback port for the browser redirect (OpenUnison registers 8400; default: the
    /// port the session was created with, else 8400).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,

    /// How long to wait for the browser login.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_timeout)]
    pub timeout: Duration,

    /// Log in even if the existing session still works.
    #[arg(long)]
    pub force: bool,

    /// Write the legacy in-tree `auth-provider: oidc` user instead of an exec stanza (race-prone).
    #[arg(long)]
    pub auth_provider: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub login: LoginArgs,

    /// The command to run, and its arguments.
    #[arg(required = true, last = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["session", "session_file", "logged_out"])))]
pub struct TokenArgs {
    /// Name of a session under `$KUBECACHEDIR/oulogin/`.
    #[arg(long, value_name = "NAME")]
    pub session: Option<String>,

    /// Path of a session file (isolated kubeconfigs keep theirs beside them).
    #[arg(long, value_name = "PATH")]
    pub session_file: Option<PathBuf>,

    /// OpenUnison host of the session, used in messages when the session is missing.
    #[arg(long, value_name = "HOST[:PORT]")]
    pub host: Option<String>,

    /// Written by `logout`: fail at once, naming the command that logs in again.
    #[arg(long)]
    pub logged_out: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format: `wide` adds the session file, the server session's inactivity timeout and
    /// the groups; `name` prints context names only.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Ask OpenUnison whether each session is still alive (costs one refresh per session);
    /// exit 1 when one is not.
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Wide,
    Name,
    Json,
    Yaml,
}

/// The shells `--isolated` can print for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShellArg {
    // POSIX shells: bash, zsh, dash, sh (a doc comment would turn the help into a list).
    #[value(alias = "bash", alias = "zsh")]
    Sh,
    Fish,
    #[value(alias = "pwsh")]
    Powershell,
    Cmd,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Log out of every context this tool manages (instead of `--context NAME`, default: the current one).
    #[arg(long, conflicts_with = "context")]
    pub all: bool,

    /// Also remove the context and cluster entries, not only the credentials.
    #[arg(long)]
    pub purge: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print the completion script for [default: the one the SHELL variable
    /// names; on Windows without it, powershell].
    #[arg(value_enum)]
    pub shell: Option<clap_complete::Shell>,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The words typed after `kubectl oulogin`, the last one being the word to complete.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

/// The range `--timeout` accepts. Past a day nobody is waiting for a browser,
/// and an unbounded value would overflow the deadline arithmetic downstream.
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> = Duration::from_secs(1)..=Duration::from_secs(24 * 3600);

fn parse_timeout(text: &str) -> Result<Duration, String> {
    parse_bounded_duration(text, TIMEOUT_RANGE)
}

/// A human duration (`90s`, `5m`, `1h 30m`) within `range`; every duration
/// flag goes through here, so no value clap accepts can overflow later.
fn parse_bounded_duration(text: &str, range: std::ops::RangeInclusive<Duration>) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|err| format!("`{text}` is not a duration ({err}); use e.g. `90s` or `5m`"))?;
    if !range.contains(&duration) {
        return Err(format!(
            "`{text}` is out of range: give between {} and {}",
            humantime::format_duration(*range.start()),
            humantime::format_duration(*range.end())
        ));
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn exec_takes_the_command_after_double_dash() {
        let cli = Cli::try_parse_from(["kubectl-oulogin", "exec", "--host", "h", "--", "k9s", "-A"]).unwrap();
        let Some(Command::Exec(exec)) = cli.command else { panic!("not exec") };
        assert_eq!(exec.login.host.as_deref(), Some("h"));
        assert_eq!(exec.command, ["k9s", "-A"]);
    }

    #[test]
    fn global_flags_go_before_or_after_the_command_and_login_flags_only_before_none() {
        for words in [
            &["kubectl-oulogin", "--kubeconfig", "k", "--context", "c", "logout"][..],
            &["kubectl-oulogin", "logout", "--kubeconfig", "k", "--context", "c"],
            &["kubectl-oulogin", "--context", "c", "logout", "--kubeconfig", "k"],
        ] {
            let cli = Cli::parse_from_words(words).unwrap_or_else(|err| panic!("{words:?}: {err}"));
            assert!(matches!(cli.command, Some(Command::Logout(_))), "{words:?}");
            assert_eq!(cli.global.kubeconfig.as_deref(), Some(std::path::Path::new("k")), "{words:?}");
            assert_eq!(cli.global.context.as_deref(), Some("c"), "{words:?}");
        }
        let misplaced = Cli::parse_from_words(["kubectl-oulogin", "--port", "8401", "status"]).unwrap_err();
        assert_eq!(misplaced.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert!(misplaced.to_string().contains("`--port`"), "{misplaced}");
        let login = Cli::parse_from_words(["kubectl-oulogin", "--port", "8401", "--context", "c"]).unwrap();
        assert_eq!((login.login.port, login.global.context.as_deref()), (Some(8401), Some("c")));
        assert!(Cli::parse_from_words(["kubectl-oulogin", "logout", "--all", "--context", "c"]).is_err());
    }

    #[test]
    fn verbose_counts_before_and_after_the_subcommand() {
        let parse =
            |args: &[&str]| Cli::parse_from_words(std::iter::once("kubectl-oulogin").chain(args.iter().copied()));
        assert_eq!(parse(&["-v", "token", "--session", "s"]).unwrap().verbose, 1);
        assert_eq!(parse(&["token", "--session", "s", "-vv"]).unwrap().verbose, 2);
        assert_eq!(parse(&["-vv", "status"]).unwrap().verbose, 2);
        assert_eq!(parse(&["--host", "h", "--verbose"]).unwrap().verbose, 1);
        assert_eq!(parse(&["status"]).unwrap().verbose, 0);
        // Login flags still do not mix with a subcommand.
        let err = parse(&["--host", "h", "status"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
        assert!(err.to_string().contains("--host") && err.to_string().contains("status"), "{err}");
        assert!(parse(&["--isolated", "-v", "exec", "--", "true"]).is_err());
    }

    #[test]
    fn shell_takes_the_names_users_type_and_only_goes_with_isolated() {
        let parse =
            |args: &[&str]| Cli::parse_from_words(std::iter::once("kubectl-oulogin").chain(args.iter().copied()));
        for (name, shell) in [
            ("sh", ShellArg::Sh),
            ("bash", ShellArg::Sh),
            ("zsh", ShellArg::Sh),
            ("fish", ShellArg::Fish),
            ("powershell", ShellArg::Powershell),
            ("pwsh", ShellArg::Powershell),
            ("cmd", ShellArg::Cmd),
        ] {
            let cli =
                parse(&["--host", "h", "--isolated", "--shell", name]).unwrap_or_else(|err| panic!("{name}: {err}"));
            assert_eq!(cli.shell, Some(shell), "{name}");
        }
        assert_eq!(parse(&["--host", "h", "--isolated"]).unwrap().shell, None);
        // Without `--isolated` nothing would print a shell line: a usage error, not a silent no-op.
        for words in [
            &["--host", "h", "--shell", "fish"][..],
            &["--shell", "cmd"],
            &["--shell", "fish", "status"],
            &["exec", "--shell", "fish", "--", "true"],
            &["--host", "h", "--isolated", "--shell", "tcsh"],
        ] {
            let err = parse(words).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{words:?}: {err}");
        }
        let err = parse(&["--host", "h", "--shell", "fish"]).unwrap_err();
        assert!(err.to_string().contains("--isolated"), "{err}");
    }

    #[test]
    fn completion_names_its_shell_or_leaves_it_to_the_environment() {
        let cli = Cli::parse_from_words(["kubectl-oulogin", "completion"]).unwrap();
        let Some(Command::Completion(args)) = cli.command else { panic!("not completion") };
        assert_eq!(args.shell, None);
        let cli = Cli::parse_from_words(["kubectl-oulogin", "completion", "powershell"]).unwrap();
        let Some(Command::Completion(args)) = cli.command else { panic!("not completion") };
        assert_eq!(args.shell, Some(clap_complete::Shell::PowerShell));
    }

    #[test]
    fn timeout_accepts_human_durations() {
        let cli = Cli::try_parse_from(["kubectl-oulogin", "--host", "h", "--timeout", "90s"]).unwrap();
        assert_eq!(cli.login.timeout, Duration::from_secs(90));
        assert!(Cli::try_parse_from(["kubectl-oulogin", "--timeout", "soon"]).is_err());
    }

    #[test]
    fn durations_outside_their_range_are_usage_errors() {
        for text in ["18446744073709551615s", "25h", "0s", "500ms", "1000000000000y"] {
            let err = Cli::try_parse_from(["kubectl-oulogin", "--host", "h", "--timeout", text]).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{text}: {err}");
        }
        for (text, secs) in [("1s", 1), ("24h", 24 * 3600)] {
            let cli = Cli::try_parse_from(["kubectl-oulogin", "--host", "h", "--timeout", text]).unwrap();
            assert_eq!(cli.login.timeout, Duration::from_secs(secs));
        }
    }
}
