//! Opening the browser: the system default (`open`), `--browser-command`
//! (split into words by the platform's rules, no shell run, URL appended), or
//! `BROWSER` (xdg convention: a list of commands separated by the platform's
//! path-list separator, `%s` replaced by the URL, else the URL appended; the
//! first that starts wins). A command's output goes to our stderr, never
//! stdout, which may carry an ExecCredential.

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
        BrowserChoice::Command(command) => match CommandLineRules::NATIVE.split(command) {
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

/// How a command line typed by the user becomes words, and how `BROWSER`
/// separates its commands: the conventions of the platform the plugin runs on.
/// Both sets of rules exist everywhere (and are tested everywhere); only the
/// choice of [`CommandLineRules::NATIVE`] depends on the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CommandLineRules {
    /// POSIX shell quoting (`'...'`, `"..."`, `\` escapes); `BROWSER` entries
    /// separated by `:`, as xdg-utils and Python's `webbrowser` do on Unix.
    Posix,
    /// The quoting Windows programs parse their own command line with (the
    /// Microsoft C runtime, `CommandLineToArgvW`); `BROWSER` entries separated
    /// by `;`, the Windows path-list separator (`:` is in every `C:\` path),
    /// as Python's `webbrowser` does there.
    Windows,
}

impl CommandLineRules {
    /// The rules of the platform we run on.
    const NATIVE: CommandLineRules = if cfg!(windows) { CommandLineRules::Windows } else { CommandLineRules::Posix };

    /// Splits `line` into words; an error says why it cannot be split.
    fn split(self, line: &str) -> Result<Vec<String>, String> {
        match self {
            CommandLineRules::Posix => shell_words::split(line).map_err(|err| err.to_string()),
            CommandLineRules::Windows => Ok(split_windows_command_line(line)),
        }
    }

    /// What separates the commands of a `BROWSER` list.
    fn browser_list_separator(self) -> char {
        match self {
            CommandLineRules::Posix => ':',
            CommandLineRules::Windows => ';',
        }
    }
}

/// Splits a command line as a Windows program's C runtime builds its `argv`
/// (the Microsoft C runtime's rules since 2008; `CommandLineToArgvW` differs
/// only in corner cases), so a command is split as the program it starts
/// would split its own command line. Spaces and tabs separate words;
/// double quotes group and are removed, and an unclosed quote runs to the end.
/// The first word is the program: inside it a backslash is always literal
/// (`"C:\Program Files\App\app.exe"` is one word). In the words after it,
/// backslashes are literal too unless a run of them precedes a double quote:
/// then each pair becomes one backslash, and an odd one out makes the quote
/// literal; `""` inside quotes is a literal quote. Leading whitespace is
/// skipped (the runtime would read it as an empty program name). Never fails:
/// every string is some command line.
fn split_windows_command_line(line: &str) -> Vec<String> {
    let mut chars = line.trim_start_matches([' ', '\t']).chars().peekable();
    let mut words = Vec::new();
    if chars.peek().is_none() {
        return words;
    }

    let mut program = String::new();
    let mut in_quotes = false;
    while let Some(ch) = chars.next_if(|&ch| in_quotes || !matches!(ch, ' ' | '\t')) {
        if ch == '"' {
            in_quotes = !in_quotes;
        } else {
            program.push(ch);
        }
    }
    words.push(program);

    loop {
        while chars.next_if(|&ch| matches!(ch, ' ' | '\t')).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        let mut in_quotes = false;
        loop {
            let mut backslashes = 0;
            while chars.next_if_eq(&'\\').is_some() {
                backslashes += 1;
            }
            if chars.peek() == Some(&'"') {
                word.extend(std::iter::repeat_n('\\', backslashes / 2));
                chars.next();
                // A quote is literal after an odd backslash, or as `""` inside quotes;
                // otherwise it opens or closes a quoted stretch.
                let escaped = backslashes % 2 == 1;
                if escaped || (in_quotes && chars.next_if_eq(&'"').is_some()) {
                    word.push('"');
                } else {
                    in_quotes = !in_quotes;
                }
                continue;
            }
            word.extend(std::iter::repeat_n('\\', backslashes));
            match chars.next_if(|&ch| in_quotes || !matches!(ch, ' ' | '\t')) {
                Some(ch) => word.push(ch),
                None => break,
            }
        }
        words.push(word);
    }
}

/// The commands a `BROWSER` value names, each as argv with the URL in place:
/// `%s` replaced (`%%` is a literal `%`), or the URL appended when no `%s`.
/// Entries that cannot be split into words are skipped.
pub fn browser_env_commands(list: &str, url: &str) -> Vec<(String, Vec<String>)> {
    browser_env_commands_by(CommandLineRules::NATIVE, list, url)
}

/// [`browser_env_commands`] by the given platform's rules.
fn browser_env_commands_by(rules: CommandLineRules, list: &str, url: &str) -> Vec<(String, Vec<String>)> {
    list.split(rules.browser_list_separator())
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let words = rules.split(entry).ok().filter(|words| !words.is_empty())?;
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

    fn argvs_by(rules: CommandLineRules, list: &str) -> Vec<Vec<String>> {
        browser_env_commands_by(rules, list, URL).into_iter().map(|(_, argv)| argv).collect()
    }

    fn argvs(list: &str) -> Vec<Vec<String>> {
        argvs_by(CommandLineRules::Posix, list)
    }

    fn words(line: &str) -> Vec<String> {
        split_windows_command_line(line)
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
    fn a_quoted_windows_program_path_with_spaces_is_one_word_and_unquoted_backslashes_stay() {
        assert_eq!(
            words(r#""C:\Program Files\Mozilla Firefox\firefox.exe" -private-window"#),
            [r"C:\Program Files\Mozilla Firefox\firefox.exe", "-private-window"]
        );
        assert_eq!(
            words(r"C:\Tools\browser.exe --profile C:\Users\me\profile\ \\server\share"),
            [r"C:\Tools\browser.exe", "--profile", r"C:\Users\me\profile\", r"\\server\share"]
        );
        // The program's own word never escapes: a backslash before its closing quote is literal.
        assert_eq!(words(r#""C:\My Apps\" -x"#), [r"C:\My Apps\", "-x"]);
        // POSIX rules would eat these backslashes; that is why Windows splits by its own.
        assert_eq!(CommandLineRules::Posix.split(r"C:\Tools\browser.exe").unwrap(), [r"C:Toolsbrowser.exe"]);
        assert_eq!(CommandLineRules::Windows.split(r"C:\Tools\browser.exe").unwrap(), [r"C:\Tools\browser.exe"]);
    }

    #[test]
    fn windows_arguments_follow_the_c_runtimes_quote_and_backslash_rules() {
        // The Microsoft C runtime's documented examples, after a program name.
        assert_eq!(words(r#"p a\\\b d"e f"g h"#), ["p", r"a\\\b", "de fg", "h"]);
        assert_eq!(words(r#"p a\\\"b c d"#), ["p", r#"a\"b"#, "c", "d"]);
        assert_eq!(words(r#"p a\\\\"b c" d e"#), ["p", r"a\\b c", "d", "e"]);
        assert_eq!(words(r#"p a"b"" c d"#), ["p", r#"ab" c d"#]);
        // A quoted path ending in a backslash doubles it before the quote.
        assert_eq!(words(r#"p "C:\Temp Dir\\" next"#), ["p", r"C:\Temp Dir\", "next"]);
        // Quotes in the middle of a word, empty words, unclosed quotes, tabs.
        assert_eq!(words(r#"p --url="a b"c "" last"#), ["p", "--url=a bc", "", "last"]);
        assert_eq!(words("p \"open to the end  "), ["p", "open to the end  "]);
        assert_eq!(words(" \t p\ta \t b \t"), ["p", "a", "b"]);
        assert_eq!(words(r#""My Browser"x y"#), ["My Browserx", "y"]);
        assert!(words("").is_empty());
        assert!(words(" \t ").is_empty());
    }

    #[test]
    fn windows_browser_lists_are_separated_by_semicolons_so_drive_letters_survive() {
        let list = r#""C:\Program Files\Mozilla Firefox\firefox.exe" -new-tab %s; C:\Tools\w3m.exe ;;"#;
        assert_eq!(
            argvs_by(CommandLineRules::Windows, list),
            vec![
                vec![r"C:\Program Files\Mozilla Firefox\firefox.exe".to_string(), "-new-tab".into(), URL.into()],
                vec![r"C:\Tools\w3m.exe".to_string(), URL.into()],
            ]
        );
        assert_eq!(argvs_by(CommandLineRules::Posix, "firefox;w3m"), vec![vec!["firefox;w3m".to_string(), URL.into()]]);
        assert_eq!(CommandLineRules::Posix.browser_list_separator(), ':');
        assert_eq!(CommandLineRules::Windows.browser_list_separator(), ';');
    }

    // These start real programs (`true`, `sh`) and so run where those exist.
    #[cfg(unix)]
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

    #[cfg(unix)]
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
