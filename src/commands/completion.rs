//! What is generated from the clap definition for shells and manuals: the
//! completion scripts (`completion SHELL`), the man page (`__man`), and the
//! answers to kubectl's plugin completion protocol (`__complete`; the engine
//! is `kubectl_completion`).

use clap::CommandFactory;
use clap_mangen::roff::{Roff, bold, roman};

use crate::cli::Cli;
use crate::error::{Error, ExitStatus};
use crate::output;

/// The name the completion scripts and the man page are generated for: the
/// binary on `PATH`, so they also work when it is run directly.
const BINARY_NAME: &str = "kubectl-oulogin";

/// `completion [SHELL]`: prints the script clap_complete generates for the
/// binary, for the user's shell when none is named.
pub fn print_completion(shell: Option<clap_complete::Shell>) -> Result<ExitStatus, Error> {
    let shell = crate::settings::completion_shell(shell)?;
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), BINARY_NAME, &mut script);
    output::stdout(&script)?;
    Ok(ExitStatus::Success)
}

/// `__man`: prints the man page (roff) of the whole command tree.
pub fn print_man() -> Result<ExitStatus, Error> {
    output::stdout(man_page())?;
    Ok(ExitStatus::Success)
}

/// `__complete WORD...`: prints the kubectl plugin completion answer.
pub fn print_kubectl_completions(words: &[String]) -> Result<ExitStatus, Error> {
    output::stdout(crate::kubectl_completion::complete_for_kubectl(words))?;
    Ok(ExitStatus::Success)
}

/// The man page of the whole command tree in one page: clap_mangen's NAME,
/// SYNOPSIS, DESCRIPTION and OPTIONS of `kubectl oulogin`, a SUBCOMMANDS list,
/// then one section per visible subcommand (its synopsis, description and
/// options), then the after-help text and the version.
pub fn man_page() -> Vec<u8> {
    let mut command = Cli::command();
    command.build();
    let subcommands: Vec<&clap::Command> =
        // `token` is left out of the command list, not out of the manual.
        command
            .get_subcommands()
            .filter(|sub| (!sub.is_hide_set() || sub.get_name() == "token") && sub.get_name() != "help")
            .collect();
    let main = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    let rendered: std::io::Result<()> = (|| {
        main.render_title(&mut page)?;
        main.render_name_section(&mut page)?;
        main.render_synopsis_section(&mut page)?;
        main.render_description_section(&mut page)?;
        main.render_options_section(&mut page)?;

        let mut list = Roff::new();
        list.control("SH", ["SUBCOMMANDS"]);
        for sub in &subcommands {
            list.control("TP", []);
            list.text([bold(full_name(sub))]);
            if let Some(about) = sub.get_about() {
                list.text([roman(about.to_string())]);
            }
        }
        list.to_writer(&mut page)?;

        for sub in &subcommands {
            let man = clap_mangen::Man::new((*sub).clone());
            let mut heading = Roff::new();
            heading.control("SH", [full_name(sub).to_uppercase().as_str()]);
            heading.to_writer(&mut page)?;
            let mut parts = Vec::new();
            man.render_synopsis_section(&mut parts)?;
            man.render_description_section(&mut parts)?;
            if sub.get_arguments().any(|arg| !arg.is_hide_set()) {
                man.render_options_section(&mut parts)?;
            }
            // clap_mangen puts each part under its own `.SH`; inside this
            // subcommand's section they become `.SS`, the synopsis needs none.
            // Only control lines start with `.`: roff escapes such text.
            for line in String::from_utf8_lossy(&parts).lines() {
                let line = match line.strip_prefix(".SH ") {
                    Some("SYNOPSIS") => continue,
                    Some(title) => format!(".SS {title}"),
                    None => line.to_string(),
                };
                page.extend_from_slice(line.as_bytes());
                page.push(b'\n');
            }
        }

        if command.get_after_help().is_some() || command.get_after_long_help().is_some() {
            main.render_extra_section(&mut page)?;
        }
        main.render_version_section(&mut page)
    })();
    rendered.expect("rendering into memory cannot fail");
    // Every clap_mangen/roff render starts with the same apostrophe-string
    // preamble; one at the top of the page is enough.
    let mut seen = std::collections::HashSet::new();
    let mut deduplicated = Vec::with_capacity(page.len());
    for line in String::from_utf8_lossy(&page).lines() {
        let preamble = line.starts_with(".ie \\n(.g .ds Aq") || line.starts_with(".el .ds Aq");
        if preamble && !seen.insert(line.to_string()) {
            continue;
        }
        deduplicated.extend_from_slice(line.as_bytes());
        deduplicated.push(b'\n');
    }
    deduplicated
}

/// `kubectl oulogin exec`, as typed.
fn full_name(sub: &clap::Command) -> String {
    sub.get_bin_name().unwrap_or(sub.get_name()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_page_documents_every_subcommand_and_flag() {
        let page = String::from_utf8(man_page()).unwrap();
        assert!(page.starts_with(".ie \\n(.g .ds Aq") || page.contains(".TH kubectl-oulogin 1"), "{page}");
        for heading in [
            ".SH \"KUBECTL OULOGIN EXEC\"",
            ".SH \"KUBECTL OULOGIN TOKEN\"",
            ".SH \"KUBECTL OULOGIN STATUS\"",
            ".SH \"KUBECTL OULOGIN LOGOUT\"",
        ] {
            assert!(page.contains(heading), "{heading} missing");
        }
        for flag in ["no\\-browser", "purge", "session\\-file", "output"] {
            assert!(page.contains(flag), "{flag} missing");
        }
        assert!(!page.contains("__complete") && !page.contains("__man"), "hidden commands documented");
        assert!(!page.contains("kubectl-oulogin-exec(1)"), "refers to per-subcommand pages that are not shipped");
    }
}
