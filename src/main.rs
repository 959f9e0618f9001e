//! `kubectl-oulogin`: pin name lookups (static builds), parse the command
//! line, run the command, turn the outcome into an exit status. Nothing else
//! lives here.

mod cli;
mod commands;
mod debug;
mod error;
mod files;
mod isolation;
mod kubeconfig;
mod kubectl_completion;
mod login;
mod openunison;
mod output;
mod platform;
mod session;
mod settings;

use std::process::ExitCode;

fn main() -> ExitCode {
    platform::pin_builtin_services();
    let cli = cli::Cli::parse_command_line();
    debug::set_level(settings::debug_level(cli.verbose));
    openunison::tls::set_environment(settings::trust_environment());
    match commands::run(cli) {
        Ok(status) => status.into(),
        Err(err) => {
            eprintln!("{}", err.render());
            err.exit_status().into()
        }
    }
}
