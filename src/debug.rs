//! The debug switch (`-v`/`--verbose`, `OULOGIN_DEBUG`): one level for the
//! whole process, set once at start, and the `debug:` lines on stderr.
//!
//! Off, a [`debug!`](crate::debug!) costs one relaxed atomic load: the
//! message is formatted only when its level is on. Messages never carry a
//! token, code, cookie or `Authorization` header; URLs go through
//! [`redact_url`] so that no query value (`code`, `state`) is shown.

use std::sync::atomic::{AtomicU8, Ordering};

/// The highest level: `-vv` or `OULOGIN_DEBUG=2`.
pub const MAX_LEVEL: u8 = 2;

static LEVEL: AtomicU8 = AtomicU8::new(0);

/// Sets the level for the rest of the process (0 is off).
pub fn set_level(level: u8) {
    LEVEL.store(level.min(MAX_LEVEL), Ordering::Relaxed);
}

/// Whether lines of `level` (1 or 2) are shown.
#[inline]
pub fn enabled(level: u8) -> bool {
    LEVEL.load(Ordering::Relaxed) >= level
}

/// Writes one `debug:` line (control characters escaped, so a name from a
/// file or server cannot drive the terminal or fake another line).
#[cold]
pub fn emit(message: std::fmt::Arguments<'_>) {
    eprintln!("debug: {}", crate::output::sanitize_line(&message.to_string()));
}

/// `debug!("...", args)` at level 1 (`-v`), `debug!(2, "...", args)` at level
/// 2 (`-vv`). The arguments are not evaluated when the level is off.
#[macro_export]
macro_rules! debug {
    (2, $($arg:tt)+) => {
        if $crate::debug::enabled(2) {
            $crate::debug::emit(format_args!($($arg)+));
        }
    };
    ($($arg:tt)+) => {
        if $crate::debug::enabled(1) {
            $crate::debug::emit(format_args!($($arg)+));
        }
    };
}

/// `url` without user name, password or fragment, and with every query value
/// replaced by `…` (names kept: `?code=…&state=…`). Text that is no URL is
/// cut at its first `?` or `#`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return url.split(['?', '#']).next().unwrap_or_default().to_string();
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    parsed.set_fragment(None);
    if parsed.query().is_some() {
        let names: Vec<String> = parsed.query_pairs().map(|(name, _)| name.into_owned()).collect();
        let query = names.iter().map(|name| format!("{name}=…")).collect::<Vec<_>>().join("&");
        parsed.set_query(None);
        return format!("{parsed}?{query}");
    }
    parsed.to_string()
}

/// [`redact_url`] for a request target as a server sees it (`/path?query`).
pub fn redact_target(path: &str, query: Option<&str>) -> String {
    match query {
        None => path.to_string(),
        Some(query) => {
            let names: Vec<String> = query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| format!("{}=…", pair.split('=').next().unwrap_or_default()))
                .collect();
            format!("{path}?{}", names.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_credentials_and_fragments_are_left_out_of_urls() {
        assert_eq!(
            redact_url("https://u:p@ou.example.com:8443/redirect?code=SECRET&state=STATE#frag"),
            "https://ou.example.com:8443/redirect?code=…&state=…"
        );
        assert_eq!(
            redact_url("https://ou.example.com/auth/idp/k8sIdp/token"),
            "https://ou.example.com/auth/idp/k8sIdp/token"
        );
        assert_eq!(redact_url("not a url?code=SECRET"), "not a url");
        assert_eq!(redact_target("/redirect", Some("code=SECRET&state=S&x")), "/redirect?code=…&state=…&x=…");
        assert_eq!(redact_target("/", None), "/");
    }

    #[test]
    fn the_level_gates_messages_and_their_arguments() {
        set_level(0);
        let mut evaluated = false;
        crate::debug!("{}", {
            evaluated = true;
            1
        });
        assert!(!evaluated, "a message was built while debugging was off");
        set_level(7);
        assert!(enabled(2) && LEVEL.load(Ordering::Relaxed) == MAX_LEVEL);
        set_level(0);
        assert!(!enabled(1));
    }
}
