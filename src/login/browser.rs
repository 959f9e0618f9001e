//! Opening the browser: the system default (`open`), `--browser-command`
//! (split like a shell would, no shell run, URL appended), or `BROWSER`
//! (xdg convention: `:`-separated commands, `%s` replaced by the URL, else the
//! URL appended; the first that starts wins). A command's output goes to our
//! stderr, never stdout, which may carry an ExecCredential.

use std::process::{Child, Command, Stdio};

use crate::settings::BrowserChoice;

/// What happened when we tried to open the browser.
#[derive(Debug)]
pub enum Launch {
    /// The system opener was asked (it reports nothing more).
    Opened,
    /// A browser command is running; its exit status is worth watching.
    Running { command: String, child: Child },
    /// Nothing could be started.
    Failed { why: String },
    /// `--no-browser`: nothing to start.
    NotWanted,
}

/// Opens `url` as `choice` says.
pub fn launch(choice: &BrowserChoice, url: &str) -> Launch {
    match choice {
        BrowserChoice::NoBrowser => Launch::NotWanted,
        BrowserChoice::System => match open::that_detached(url) {
            Ok(()) => Launch::Opened,
            Err(err) => Launch::Failed { why: format!("the system browser did not open: {err}") },
        },
        BrowserChoice::Command(command) => match shell_words::split(command) {
            Ok(words) if !words.is_empty() => {
                let mut argv = words;
                argv.push(url.to_string());
                spawn(&argv, command)
            }
            Ok(_) => Launch::Failed { why: "`--browser-command` is empty".to_string() },
            Err(err) => Launch::Failed { why: format!("cannot split `--browser-command` into words: {err}") },
        },
        BrowserChoice::BrowserEnv(list) => {
            let candidates = browser_env_commands(list, url);
            if candidates.is_empty() {
                return Launch::Failed { why: "`BROWSER` names no command".to_string() };
            }
            let mut failures = Vec::new();
            for (shown, argv) in candidates {
                match spawn(&argv, &shown) {
                    Launch::Failed { why } => failures.push(why),
                    started => return started,
                }
            }
            Launch::Failed { why: failures.join("; ") }
        }
    }
}

fn spawn(argv: &[String], shown: &str) -> Launch {
    let Some((program, args)) = argv.split_first() else {
        return Launch::Failed { why: format!("`{shown}` is empty") };
    };
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::null()).stdout(std::io::stderr()).stderr(std::io::stderr());
    match command.spawn() {
        Ok(child) => Launch::Running { command: shown.to_string(), child },
        Err(err) => Launch::Failed { why: format!("could not run `{shown}`: {err}") },
    }
}

/// The commands a `BROWSER` value names, each as argv with the URL in place:
/// `%s` replaced (`%%` is a literal `%`), or the URL appended when no `%s`.
/// Entries that cannot be split into words are skipped.
pub fn browser_env_commands(list: &str, url: &str) -> Vec<(String, Vec<String>)> {
    list.split(':')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let words = shell_words::split(entry).ok().filter(|words| !words.is_empty())?;
            let mut substituted = false;
            let mut argv: Vec<String> = words
                .iter()
                .map(|word| {
                    let (replaced, found) = substitute(word, url);
                    substituted |= found;
                    replaced
                })
                .collect();
            if !substituted {
                argv.push(url.to_string());
            }
            Some((entry.to_string(), argv))
        })
        .collect()
}

/// Replaces `%s` with `url` and `%%` with `%`; reports whether `%s` occurred.
fn substitute(word: &str, url: &str) -> (String, bool) {
    let mut out = String::with_capacity(word.len());
    let mut found = false;
    let mut chars = word.chars().peekable();
    while let Some(ch) = chars.next() {
        match (ch, chars.peek()) {
            ('%', Some('s')) => {
                chars.next();
                out.push_str(url);
                found = true;
            }
            ('%', Some('%')) => {
                chars.next();
                out.push('%');
            }
            (ch, _) => out.push(ch),
        }
    }
    (out, found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://ou.example.com/cli-login";

    fn argvs(list: &str) -> Vec<Vec<String>> {
        browser_env_commands(list, URL).into_iter().map(|(_, argv)| argv).collect()
    }

    #[test]
    fn browser_lists_follow_the_xdg_convention() {
        assert_eq!(argvs("firefox"), vec![vec!["firefox".to_string(), URL.to_string()]]);
        assert_eq!(
            argvs("firefox --new-tab %s:w3m"),
            vec![vec!["firefox".into(), "--new-tab".into(), URL.to_string()], vec!["w3m".into(), URL.to_string()]]
        );
        assert_eq!(argvs("open-it url=%s%%"), vec![vec!["open-it".to_string(), format!("url={URL}%")]]);
        assert_eq!(argvs("::  :"), Vec::<Vec<String>>::new());
        assert_eq!(argvs("'unclosed:ok"), vec![vec!["ok".to_string(), URL.to_string()]]);
        assert_eq!(
            argvs("\"/opt/My Browser/bin\" -x"),
            vec![vec!["/opt/My Browser/bin".to_string(), "-x".to_string(), URL.to_string()]]
        );
    }

    #[test]
    fn the_first_command_that_starts_wins() {
        match launch(&BrowserChoice::BrowserEnv("definitely-not-a-browser-xyz:true".to_string()), URL) {
            Launch::Running { command, mut child } => {
                assert_eq!(command, "true");
                assert!(child.wait().unwrap().success());
            }
            other => panic!("{other:?}"),
        }
        let failed = launch(&BrowserChoice::BrowserEnv("definitely-not-a-browser-xyz".to_string()), URL);
        assert!(matches!(failed, Launch::Failed { why } if why.contains("definitely-not-a-browser-xyz")));
    }

    #[test]
    fn a_browser_command_gets_the_url_as_its_last_argument() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("args");
        let command = format!("sh -c 'printf \"%s|\" \"$@\" > {}' browser --flag", out.display());
        match launch(&BrowserChoice::Command(command), URL) {
            Launch::Running { mut child, .. } => assert!(child.wait().unwrap().success()),
            other => panic!("{other:?}"),
        }
        assert_eq!(std::fs::read_to_string(&out).unwrap(), format!("--flag|{URL}|"));
        assert!(matches!(launch(&BrowserChoice::Command("'oops".into()), URL), Launch::Failed { .. }));
        assert!(matches!(launch(&BrowserChoice::Command("  ".into()), URL), Launch::Failed { .. }));
        assert!(matches!(launch(&BrowserChoice::NoBrowser, URL), Launch::NotWanted));
    }
}
