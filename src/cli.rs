//! The command line as clap sees it: declarations only, no side effects and no
//! imports from the rest of the crate, so `--help` and `--version` can never
//! touch the network or a kubeconfig.

use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
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
    // Login flags and commands exclude each other (see `try_parse_checked_from`).
    override_usage = "kubectl oulogin [OPTIONS]\n       kubectl oulogin <COMMAND>",
    after_help = "Exit codes: 0 success; 1 the operation failed; 2 usage error; 130 Ctrl-C; \
                  `exec` passes its command's status through (128+N when it died of signal N; 127 when it is not found, 126 when it cannot be run)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub login: LoginArgs,

    /// Log in into a fresh private kubeconfig with its own OpenUnison session,
    /// and print `export KUBECONFIG=<path>` on stdout for `eval`.
    #[arg(long)]
    pub isolated: bool,

    /// Debug output on stderr; repeat for more (`OULOGIN_DEBUG=1` or `2` does the same).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

impl Cli {
    /// The command line of this process; a usage error exits 2 (as clap's own).
    pub fn parse_checked() -> Cli {
        Cli::try_parse_checked_from(std::env::args_os()).unwrap_or_else(|err| err.exit())
    }

    /// Parses `args`. The login flags and the subcommands exclude each other,
    /// while the global flags (`-v`) go before or after a subcommand: clap's
    /// `args_conflicts_with_subcommands` would refuse those too.
    pub fn try_parse_checked_from<I, T>(args: I) -> Result<Cli, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let mut command = Cli::command();
        let mut matches = command.try_get_matches_from_mut(args)?;
        if let Some((name, _)) = matches.subcommand() {
            let login_flag = command.get_arguments().find(|arg| {
                !arg.is_global_set() && matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine)
            });
            if let Some(flag) = login_flag {
                return Err(command.error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!("`{flag}` cannot be used with the `{name}` command"),
                ));
            }
        }
        // `_mut` takes the values out instead of cloning every match first.
        Cli::from_arg_matches_mut(&mut matches).map_err(|err| err.format(&mut command))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command with its own fresh kubeconfig and OpenUnison session,
    /// removed again when the command exits.
    ///
    /// Example: `kubectl oulogin exec --host ou.example.com -- k9s`
    Exec(ExecArgs),

    /// The exec credential plugin that kubeconfigs written by this tool call.
    ///
    /// Prints one ExecCredential JSON document on stdout. Not meant to be typed
    /// by people.
    Token(TokenArgs),

    /// Show the contexts this tool manages and the state of their sessions.
    Status(StatusArgs),

    /// Remove the local session and the credentials of a context.
    Logout(LogoutArgs),

    /// Print a shell completion script.
    Completion(CompletionArgs),

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

    /// Use this kubeconfig file instead of the KUBECONFIG rules.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Existing context to log in again for; with `--host`, the name of the new context.
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Extra CA certificate (PEM) to trust for the OpenUnison host, on top of the system roots.
    #[arg(long, value_name = "FILE")]
    pub certificate_authority: Option<PathBuf>,

    /// Do not open a browser: print the URL, and accept the final redirect URL pasted on stdin.
    #[arg(long)]
    pub no_browser: bool,

    /// Open the login URL with this command (split like a shell would; the URL is appended).
    #[arg(long, value_name = "CMD")]
    pub browser_command: Option<String>,

    /// Loopback port for the browser redirect (OpenUnison registers 8400).
    #[arg(long, value_name = "N", default_value_t = 8400)]
    pub port: u16,

    /// How long to wait for the browser login.
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
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
#[command(group(clap::ArgGroup::new("which").required(true).args(["session", "session_file"])))]
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
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Use this kubeconfig file instead of the KUBECONFIG rules.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,

    /// Ask OpenUnison whether each session is still alive (costs one refresh per session).
    #[arg(long)]
    pub check: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Table,
    Json,
    Yaml,
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    /// Use this kubeconfig file instead of the KUBECONFIG rules.
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// The context to log out of (default: the current context).
    #[arg(long, value_name = "NAME", conflicts_with = "all")]
    pub context: Option<String>,

    /// Log out of every context this tool manages.
    #[arg(long)]
    pub all: bool,

    /// Also remove the context and cluster entries, not only the credentials.
    #[arg(long)]
    pub purge: bool,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell to print the completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct CompleteArgs {
    /// The words typed after `kubectl oulogin`, the last one being the word to complete.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub words: Vec<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("`{text}` is not a duration ({err}); use e.g. `90s` or `5m`"))
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
    fn verbose_counts_before_and_after_the_subcommand() {
        let parse =
            |args: &[&str]| Cli::try_parse_checked_from(std::iter::once("kubectl-oulogin").chain(args.iter().copied()));
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
    fn timeout_accepts_human_durations() {
        let cli = Cli::try_parse_from(["kubectl-oulogin", "--host", "h", "--timeout", "90s"]).unwrap();
        assert_eq!(cli.login.timeout, Duration::from_secs(90));
        assert!(Cli::try_parse_from(["kubectl-oulogin", "--timeout", "soon"]).is_err());
    }
}
