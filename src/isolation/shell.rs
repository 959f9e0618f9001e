//! What `--isolated` tells the user's shell: the line on stdout that sets
//! `KUBECONFIG` (POSIX `export`, fish `set -gx`, PowerShell `$env:`, cmd
//! `set`), and the hint on stderr for the shell the user is in, each quoted
//! for that shell, or refused when the shell cannot express a path safely.

use std::path::Path;

use crate::error::{Error, Hint};

/// A shell whose syntax `--isolated` can print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShellSyntax {
    /// bash, zsh, dash, sh (and fish, which reads `export` too).
    Posix,
    Fish,
    /// Windows PowerShell 5.1 and PowerShell 7 (`pwsh`).
    PowerShell,
    /// Windows' `cmd.exe`.
    Cmd,
}

impl ShellSyntax {
    /// The `--shell` value that selects this syntax.
    pub fn flag_value(self) -> &'static str {
        match self {
            ShellSyntax::Posix => "sh",
            ShellSyntax::Fish => "fish",
            ShellSyntax::PowerShell => "powershell",
            ShellSyntax::Cmd => "cmd",
        }
    }

    /// The shell's name in messages.
    fn name(self) -> &'static str {
        match self {
            ShellSyntax::Posix => "a POSIX shell",
            ShellSyntax::Fish => "fish",
            ShellSyntax::PowerShell => "PowerShell",
            ShellSyntax::Cmd => "cmd",
        }
    }
}

/// Which syntax goes where (resolved from `--shell` and the platform in `settings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsolatedShell {
    /// The syntax of the line on stdout.
    pub line: ShellSyntax,
    /// The shell the hint on stderr speaks to (fish evaluates the POSIX line too).
    pub hint: ShellSyntax,
    /// Whether `--shell` was given: the command in the hint then repeats it.
    pub given: bool,
}

impl IsolatedShell {
    /// `--shell SHELL`: its syntax on stdout and in the hint.
    pub fn chosen(syntax: ShellSyntax) -> IsolatedShell {
        IsolatedShell { line: syntax, hint: syntax, given: true }
    }
}

/// What `--isolated` prints: `line` on stdout, `hint` on stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsolatedText {
    pub line: String,
    pub hint: String,
}

/// A path or login flag the chosen shell cannot express safely: refused
/// before the login, rather than printing a line that sets something else.
#[derive(Debug, thiserror::Error)]
#[error("{shell} cannot express {what} `{text}` safely: {why}")]
pub struct InexpressibleError {
    shell: &'static str,
    what: &'static str,
    text: String,
    why: &'static str,
}

impl Hint for InexpressibleError {
    fn hint(&self) -> Option<String> {
        Some(if self.what == PATH {
            "choose another shell with `--shell` (`powershell` expresses any path), or set `KUBECACHEDIR` to a \
             directory whose path it can express"
                .to_string()
        } else {
            "choose another shell with `--shell` (`powershell` expresses any value)".to_string()
        })
    }
}

impl From<InexpressibleError> for Error {
    fn from(err: InexpressibleError) -> Error {
        let hint = err.hint();
        Error::usage(err.to_string(), hint)
    }
}

const PATH: &str = "the private kubeconfig's path";
const FLAG: &str = "the login flag";

/// The line for `shell.line` that sets `KUBECONFIG` to `kubeconfig`, and the
/// hint for `shell.hint`: that line now, and the command that does it next
/// time. `login` are the words after `kubectl oulogin`: `--host H` and the
/// login flags to repeat, unquoted.
pub fn render(shell: IsolatedShell, kubeconfig: &Path, login: &[String]) -> Result<IsolatedText, InexpressibleError> {
    let path = kubeconfig.to_str().ok_or_else(|| InexpressibleError {
        shell: shell.line.name(),
        what: PATH,
        text: kubeconfig.to_string_lossy().into_owned(),
        why: "it is not valid Unicode",
    })?;
    let line = set_line(shell.line, path)?;
    let mut words: Vec<&str> = login.iter().map(String::as_str).collect();
    words.push("--isolated");
    if shell.given {
        words.extend(["--shell", shell.hint.flag_value()]);
    }
    let command = command_line(shell.hint, &words)?;
    let now = set_line(shell.hint, path)?;
    let hint = match shell.hint {
        ShellSyntax::Posix => format!("in this shell: {now}; next time `eval \"$({command})\"` does it"),
        ShellSyntax::Fish => format!("in fish: {now}; next time `eval ({command})` does it"),
        ShellSyntax::PowerShell => format!("in PowerShell: {now}; next time `{command} | Invoke-Expression` does it"),
        // `%%i` in a batch file; `%i` is what a prompt takes.
        ShellSyntax::Cmd => format!("in cmd: {now}; next time `for /f \"delims=\" %i in ('{command}') do %i` does it"),
    };
    Ok(IsolatedText { line, hint })
}

/// The statement that sets `KUBECONFIG` to `path` in `syntax`.
fn set_line(syntax: ShellSyntax, path: &str) -> Result<String, InexpressibleError> {
    Ok(match syntax {
        ShellSyntax::Posix => format!("export KUBECONFIG={}", posix_quote(path)),
        ShellSyntax::Fish => format!("set -gx KUBECONFIG {}", fish_quote(path)),
        ShellSyntax::PowerShell => format!("$env:KUBECONFIG = {}", powershell_expression(path)),
        ShellSyntax::Cmd => {
            check_cmd(path, PATH, true)?;
            // `set "NAME=VALUE"`: the quotes keep `&`, `^`, `|`, `<`, `>` and
            // `(`/`)` literal when typed; in a `for /f` variable's value they
            // are literal anyway (cmd parses operators before it expands `%i`).
            format!("set \"KUBECONFIG={path}\"")
        }
    })
}

/// `kubectl oulogin WORDS...`, each word quoted for `syntax` where it needs it.
fn command_line(syntax: ShellSyntax, words: &[&str]) -> Result<String, InexpressibleError> {
    let mut line = String::from("kubectl oulogin");
    for word in words {
        line.push(' ');
        let bare = !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c));
        match syntax {
            _ if bare => line.push_str(word),
            ShellSyntax::Posix => line.push_str(&shell_words::quote(word)),
            ShellSyntax::Fish => line.push_str(&fish_quote(word)),
            ShellSyntax::PowerShell => line.push_str(&powershell_argument(word)),
            ShellSyntax::Cmd => line.push_str(&cmd_argument(word)?),
        }
    }
    Ok(line)
}

/// Single quotes for a POSIX shell: nothing is special inside them, and a
/// `'` is closed, escaped and reopened.
fn posix_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Single quotes for fish, where `\\` and `\'` are escapes inside them;
/// control characters (a line break would split `eval (…)`'s input) go
/// between quotes as `\xHH` escapes.
fn fish_quote(text: &str) -> String {
    let mut quoted = String::from("'");
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str(r"\\"),
            '\'' => quoted.push_str(r"\'"),
            c if c.is_ascii_control() => quoted.push_str(&format!(r"'\x{:02x}'", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('\'');
    quoted
}

/// A PowerShell expression for `text` in plain ASCII: single-quoted runs
/// (nothing is special inside them but the quote, doubled), joined with
/// `[char]0xXXXX` for every other character. PowerShell decodes a native
/// command's output in the console's code page, not UTF-8, so `... |
/// Invoke-Expression` would misread `é` or `’` (which PowerShell also takes
/// as a quote) printed as they are; a line break would split the statement.
fn powershell_expression(text: &str) -> String {
    let mut pieces: Vec<String> = Vec::new();
    let mut run = String::new();
    for c in text.chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            if c == '\'' {
                run.push('\'');
            }
            run.push(c);
            continue;
        }
        // A string first, so that `+` concatenates rather than adds.
        if !run.is_empty() || pieces.is_empty() {
            pieces.push(format!("'{}'", std::mem::take(&mut run)));
        }
        for unit in c.encode_utf16(&mut [0; 2]) {
            pieces.push(format!("[char]0x{unit:04X}"));
        }
    }
    if !run.is_empty() || pieces.is_empty() {
        pieces.push(format!("'{run}'"));
    }
    pieces.join(" + ")
}

/// An argument for a PowerShell command line typed by hand: single quotes,
/// with every quote PowerShell recognises (`'` and the typographic ones)
/// doubled; the ASCII expression in parentheses when control characters
/// leave nothing else.
fn powershell_argument(text: &str) -> String {
    if text.chars().any(|c| c.is_control()) {
        return format!("({})", powershell_expression(text));
    }
    let mut quoted = String::from("'");
    for c in text.chars() {
        if matches!(c, '\'' | '\u{2018}' | '\u{2019}' | '\u{201A}' | '\u{201B}') {
            quoted.push(c);
        }
        quoted.push(c);
    }
    quoted.push('\'');
    quoted
}

/// An argument for a cmd command line: double quotes, with the backslashes
/// before the closing quote doubled (the program's own argument parser
/// would read `\"` as a quote).
fn cmd_argument(text: &str) -> Result<String, InexpressibleError> {
    check_cmd(text, FLAG, false)?;
    let trailing = text.len() - text.trim_end_matches('\\').len();
    Ok(format!("\"{text}{}\"", "\\".repeat(trailing)))
}

/// What cmd cannot quote: `"` has no escape inside quotes; `%` is expanded
/// in a typed line even between quotes (`%USERNAME%`), `!` under delayed
/// expansion; a line break ends the line `for /f` reads. For the line on
/// stdout (`for_output`) also anything outside ASCII: `for /f` decodes a
/// command's output in the console's code page, not UTF-8.
fn check_cmd(text: &str, what: &'static str, for_output: bool) -> Result<(), InexpressibleError> {
    let why = if text.contains('"') {
        "cmd has no way to quote `\"`"
    } else if text.contains('%') {
        "cmd expands `%` as a variable even between quotes"
    } else if text.contains('!') {
        "cmd expands `!` as a variable under delayed expansion"
    } else if text.chars().any(|c| c.is_control()) {
        "it holds a control character (a line break ends cmd's line)"
    } else if for_output && !text.is_ascii() {
        "it holds characters outside ASCII, which `for /f` reads in the console's code page"
    } else {
        return Ok(());
    };
    Err(InexpressibleError { shell: ShellSyntax::Cmd.name(), what, text: text.to_string(), why })
}

#[cfg(test)]
#[path = "shell_tests.rs"]
mod tests;
