//! Everything printed for people: stderr-only messages, escaping of
//! server-supplied text, and the waiting spinner. Stdout belongs to what a
//! command exists to print (ExecCredential, `export` line, status, completions),
//! written through [`stdout`], which ends the command quietly on a closed pipe.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Escapes control characters (terminal escape sequences among them) so that a
/// string from a server or a file cannot drive the user's terminal.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\n' | '\t' => out.push(ch),
            c if c.is_control() => out.extend(c.escape_default()),
            // Bidirectional overrides can disguise text as well.
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => out.extend(ch.escape_unicode()),
            c => out.push(c),
        }
    }
    out
}

/// [`sanitize`] for a one-line value such as a name: line breaks and tabs
/// are escaped too.
pub fn sanitize_line(text: &str) -> String {
    sanitize(text).replace('\n', "\\n").replace('\t', "\\t")
}

/// Writes `text` to stdout, flushed. A closed pipe (`kubectl oulogin status |
/// head -1`) is a normal end of the command, as in ripgrep and zoxide:
/// [`Error::StdoutClosed`](crate::error::Error::StdoutClosed) ends it with exit
/// 0 and nothing printed (`print!` would panic, and abort a release build).
pub fn stdout(text: impl AsRef<[u8]>) -> Result<(), crate::error::Error> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_ref()).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Err(crate::error::Error::StdoutClosed),
        Err(err) => Err(crate::error::FileError::new("write to", "standard output", err).into()),
    }
}

/// A line for the user on stderr.
pub fn info(message: impl AsRef<str>) {
    eprintln!("{}", message.as_ref());
}

/// A `warning:` line on stderr.
pub fn warn(message: impl AsRef<str>) {
    eprintln!("warning: {}", message.as_ref());
}

/// An error that does not end the command, on stderr: `warning: ERROR`, its
/// causes and its hint, as `error:` would show them.
pub fn warn_error(err: &crate::error::Error) {
    eprintln!("{}", err.render_as_warning(None));
}

/// [`warn_error`] with what failed (and what follows) before the error:
/// `warning: CONTEXT: ERROR`.
pub fn warn_error_with(context: impl AsRef<str>, err: &crate::error::Error) {
    eprintln!("{}", err.render_as_warning(Some(context.as_ref())));
}

/// Whether stderr is a terminal a person watches.
pub fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// A spinner with the time left, shown only when stderr is a terminal.
pub struct Waiting {
    bar: Option<indicatif::ProgressBar>,
    message: String,
    deadline: Instant,
}

impl Waiting {
    pub fn start(message: impl Into<String>, timeout: Duration) -> Self {
        let message = message.into();
        let bar = stderr_is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        let waiting = Waiting { bar, message, deadline: Instant::now() + timeout };
        waiting.tick();
        waiting
    }

    /// Refreshes the time left; cheap, call it as often as convenient.
    pub fn tick(&self) {
        if let Some(bar) = &self.bar {
            let left = self.deadline.saturating_duration_since(Instant::now()).as_secs();
            bar.set_message(format!("{} ({}:{:02} left, Ctrl-C to cancel)", self.message, left / 60, left % 60));
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_non_fatal_error_renders_as_a_warning_with_its_cause_and_hint_on_their_own_lines() {
        use crate::error::{Error, FileError};
        let denied = || {
            Error::from(FileError::new(
                "write",
                "/s/x.lock",
                std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            ))
        };
        let error = denied().render();
        let warning = denied().render_as_warning(None);
        assert!(!warning.contains("error:"), "no `warning: error:` doubling: {warning}");
        assert_eq!(warning.strip_prefix("warning: "), error.strip_prefix("error: "), "the same lines as `error:`");
        let lines: Vec<&str> = warning.lines().collect();
        assert_eq!(lines[0], "warning: cannot write `/s/x.lock`");
        assert!(lines[1].starts_with("  caused by: "), "{warning}");
        assert_eq!(lines[2], "hint: check the permissions of `/s/x.lock` and its directory");

        let with_context = denied().render_as_warning(Some("the new tokens could not be saved"));
        assert!(with_context.starts_with("warning: the new tokens could not be saved: cannot write `/s/x.lock`\n"));
        assert!(with_context.ends_with("\nhint: check the permissions of `/s/x.lock` and its directory"));
        let hostile = Error::usage("bad", None).render_as_warning(Some("host `a\u{1b}[31m`"));
        assert_eq!(hostile, "warning: host `a\\u{1b}[31m`: bad");
    }

    #[test]
    fn escape_sequences_are_escaped() {
        assert_eq!(sanitize("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(sanitize("bell\u{7}"), "bell\\u{7}");
        assert_eq!(sanitize("two\nlines"), "two\nlines");
        assert!(!sanitize("x\u{202e}y").contains('\u{202e}'));
        assert_eq!(sanitize_line("a\nb\tc\u{1b}"), "a\\nb\\tc\\u{1b}");
    }
}
