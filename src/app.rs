//! Dispatch: which command runs, with which resolved settings.

use crate::cli::{Cli, Command};
use crate::error::{Error, ExitStatus};

pub fn run(cli: Cli) -> Result<ExitStatus, Error> {
    match cli.command {
        Some(Command::Completion(args)) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut command, "kubectl-oulogin", &mut std::io::stdout());
            Ok(ExitStatus::Success)
        }
        _ => Err(Error::usage("not implemented yet", None)),
    }
}
