//! One file per command, and the dispatch between them. Every command file
//! calls `target` (which host, what is remembered, the browser login) and
//! the domains below; no command file uses another.

mod completion;
mod exec;
mod login;
mod logout;
mod status;
pub mod target;
mod token;

use crate::cli::{Cli, Command};
use crate::error::{Error, ExitStatus};
use crate::output;

/// Runs the command `cli` names. A closed stdout (`| head -1`) ends a command
/// normally: exit 0, nothing more printed.
pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    match dispatch(cli) {
        Err(Error::StdoutClosed) => Ok(ExitStatus::Success),
        outcome => outcome,
    }
}

fn dispatch(cli: Cli) -> Result<ExitStatus, Error> {
    let global = &cli.global;
    match cli.command {
        None if cli.isolated => exec::isolated_command(global, &cli.login, cli.shell),
        None => login::login_command(global, &cli.login),
        Some(Command::Token(args)) => token::token_command(global, &args),
        Some(Command::Exec(args)) => exec::exec_command(global, &args.login, &args.command),
        Some(Command::Status(args)) => status::status_command(global, &args),
        Some(Command::Logout(args)) => logout::logout_command(global, &args),
        Some(Command::Version) => {
            use clap::CommandFactory as _;
            output::stdout(Cli::command().render_version())?;
            Ok(ExitStatus::Success)
        }
        Some(Command::Completion(args)) => completion::print_completion(args.shell),
        Some(Command::Complete(args)) => completion::print_kubectl_completions(&args.words),
        Some(Command::Man) => completion::print_man(),
    }
}
