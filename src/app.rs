//! Dispatch: which command runs, with which resolved settings.

use crate::cli::{Cli, Command};
use crate::error::{Error, ExitStatus};

pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    match cli.command {
        Some(Command::Completion(args)) => crate::completion::print_completion(args.shell),
        Some(Command::Complete(args)) => crate::completion::print_kubectl_completions(&args.words),
        Some(Command::Man) => crate::completion::print_man(),
        _ => Err(Error::usage("not implemented yet", None)),
    }
}
