//! Everything printed for people: stderr-only messages, escaping of
//! server-supplied text, and the waiting spinner. Stdout belongs to what a
//! command exists to print (ExecCredential, `export` line, status, completions).

use std::io::IsTerminal;
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

/// A line for the user on stderr.
pub fn info(message: impl AsRef<str>) {
    eprintln!("{}", message.as_ref());
}

/// A `warning:` line on stderr.
pub fn warn(message: impl AsRef<str>) {
    eprintln!("warning: {}", message.as_ref());
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
    fn escape_sequences_are_escaped() {
        assert_eq!(sanitize("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(sanitize("bell\u{7}"), "bell\\u{7}");
        assert_eq!(sanitize("two\nlines"), "two\nlines");
        assert!(!sanitize("x\u{202e}y").contains('\u{202e}'));
        assert_eq!(sanitize_line("a\nb\tc\u{1b}"), "a\\nb\\tc\\u{1b}");
    }
}
