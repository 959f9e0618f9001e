//! What the loopback listener accepts, as pure functions: which requests it
//! serves (`GET /` and `GET /redirect`, with a `Host` header naming the
//! loopback listener itself, against DNS rebinding), the callback query, the
//! redirect URL a user pastes with `--no-browser`, and the small HTML pages it
//! answers with (server-supplied text escaped).

/// The parameters of a `/redirect` callback that matter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// A parameter that matters was given more than once: the request is
    /// ambiguous and is refused.
    pub duplicated: bool,
}

/// Parses a callback's query string (without the `?`); never fails, never panics.
pub fn parse_callback_query(query: &str) -> CallbackParams {
    let mut params = CallbackParams::default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            "code" => &mut params.code,
            "state" => &mut params.state,
            "error" => &mut params.error,
            "error_description" => &mut params.error_description,
            _ => continue,
        };
        if slot.is_some() {
            params.duplicated = true;
        }
        *slot = Some(value.into_owned());
    }
    params
}

/// Whether a `Host` header names our listener: `127.0.0.1:PORT` or
/// `localhost:PORT` (a browser omits `:80`). Anything else is a page on some
/// other name that resolved to 127.0.0.1 (DNS rebinding).
pub fn host_allowed(host_header: Option<&str>, port: u16) -> bool {
    let Some(host) = host_header else { return false };
    let host = host.trim().to_ascii_lowercase();
    let (name, given_port) = match host.rsplit_once(':') {
        Some((name, given)) => (name.to_string(), given.parse::<u16>().ok()),
        None => (host.clone(), Some(80)),
    };
    matches!(name.as_str(), "127.0.0.1" | "localhost") && given_port == Some(port)
}

/// What the listener does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// `GET /`: send the browser to the authorization URL.
    Start,
    /// `GET /redirect?...`: the authorization server's answer.
    Callback(CallbackParams),
    /// Wrong `Host` header.
    Forbidden,
    /// Anything else.
    NotFound,
}

/// Routes a request by method, path, query and `Host` header.
pub fn route(method: &str, path: &str, query: Option<&str>, host_header: Option<&str>, port: u16) -> Route {
    if !host_allowed(host_header, port) {
        return Route::Forbidden;
    }
    match (method, path) {
        ("GET", "/") => Route::Start,
        ("GET", "/redirect") => Route::Callback(parse_callback_query(query.unwrap_or(""))),
        _ => Route::NotFound,
    }
}

/// Why a pasted line is not the redirect URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasteError {
    #[error("that is not a URL")]
    NotUrl,
    #[error("that is not the `http://127.0.0.1:{port}/redirect?...` address the browser ended on")]
    WrongPlace { port: u16 },
}

/// The callback parameters of a pasted `http://127.0.0.1:PORT/redirect?...` URL
/// (quotes, angle brackets and surrounding blanks are forgiven).
pub fn parse_pasted_url(line: &str, port: u16) -> Result<CallbackParams, PasteError> {
    let text = line.trim().trim_matches(|c| matches!(c, '"' | '\'' | '<' | '>')).trim();
    let url = url::Url::parse(text).map_err(|_| PasteError::NotUrl)?;
    let host_ok = matches!(url.host_str(), Some("127.0.0.1" | "localhost"));
    if url.scheme() != "http" || !host_ok || url.port_or_known_default() != Some(port) || url.path() != "/redirect" {
        return Err(PasteError::WrongPlace { port });
    }
    Ok(parse_callback_query(url.query().unwrap_or("")))
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// A small self-contained HTML page; `message` is plain text.
pub fn page(title: &str, message: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>kubectl oulogin: {title}</title>\
         <style>body{{font-family:sans-serif;max-width:40em;margin:3em auto;padding:0 1em}}\
         p{{white-space:pre-wrap}}</style></head>\
         <body><h1>{title}</h1><p>{message}</p></body></html>\n",
        title = escape_html(title),
        message = escape_html(message),
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn callback_queries_are_parsed() {
        let params = parse_callback_query("code=abc%2Bdef%3D&state=S1&unrelated=x");
        assert_eq!(params.code.as_deref(), Some("abc+def="));
        assert_eq!(params.state.as_deref(), Some("S1"));
        assert!(!params.duplicated);
        let params = parse_callback_query("error=unauthorized_client&error_description=bad+redirect");
        assert_eq!(params.error.as_deref(), Some("unauthorized_client"));
        assert_eq!(params.error_description.as_deref(), Some("bad redirect"));
        assert!(parse_callback_query("state=a&state=b&code=c").duplicated);
        assert_eq!(parse_callback_query(""), CallbackParams::default());
        assert_eq!(parse_callback_query("%ff%fe=%zz&code").code.as_deref(), Some(""));
    }

    #[test]
    fn only_our_own_host_header_is_served() {
        assert!(host_allowed(Some("127.0.0.1:8400"), 8400));
        assert!(host_allowed(Some("localhost:8400"), 8400));
        assert!(host_allowed(Some("LOCALHOST:8400"), 8400));
        assert!(host_allowed(Some("127.0.0.1"), 80));
        assert!(!host_allowed(Some("127.0.0.1"), 8400));
        assert!(!host_allowed(Some("127.0.0.1:8401"), 8400));
        assert!(!host_allowed(Some("evil.example.com:8400"), 8400));
        assert!(!host_allowed(Some("127.0.0.1.evil.example.com:8400"), 8400));
        assert!(!host_allowed(Some("[::1]:8400"), 8400));
        assert!(!host_allowed(Some(""), 8400));
        assert!(!host_allowed(None, 8400));
    }

    #[test]
    fn only_two_paths_are_served() {
        let host = Some("127.0.0.1:8400");
        assert_eq!(route("GET", "/", None, host, 8400), Route::Start);
        assert!(matches!(route("GET", "/redirect", Some("code=c&state=s"), host, 8400), Route::Callback(_)));
        assert_eq!(route("POST", "/redirect", None, host, 8400), Route::NotFound);
        assert_eq!(route("HEAD", "/", None, host, 8400), Route::NotFound);
        assert_eq!(route("GET", "/favicon.ico", None, host, 8400), Route::NotFound);
        assert_eq!(route("GET", "/redirect/", None, host, 8400), Route::NotFound);
        assert_eq!(route("GET", "/", None, Some("evil:8400"), 8400), Route::Forbidden);
        assert_eq!(route("GET", "/redirect", Some("code=c"), Some("evil:8400"), 8400), Route::Forbidden);
    }

    #[test]
    fn pasted_urls_are_checked() {
        let params = parse_pasted_url("  'http://127.0.0.1:8400/redirect?code=C&state=S'\n", 8400).unwrap();
        assert_eq!((params.code.as_deref(), params.state.as_deref()), (Some("C"), Some("S")));
        assert!(parse_pasted_url("http://localhost:8400/redirect?code=C", 8400).is_ok());
        assert_eq!(parse_pasted_url("hello", 8400), Err(PasteError::NotUrl));
        for wrong in [
            "https://127.0.0.1:8400/redirect?code=C",
            "http://127.0.0.1:8401/redirect?code=C",
            "http://evil:8400/redirect?code=C",
            "http://127.0.0.1:8400/other?code=C",
        ] {
            assert_eq!(parse_pasted_url(wrong, 8400), Err(PasteError::WrongPlace { port: 8400 }), "{wrong}");
        }
    }

    #[test]
    fn pages_escape_what_they_show() {
        let html = page("Login failed", "<script>alert('x')</script> & \u{1b}[31m");
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp;"));
        assert!(!html.contains('\u{1b}'));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

        #[test]
        fn callback_parsing_never_panics(query in ".{0,200}") {
            let _ = parse_callback_query(&query);
            let _ = route("GET", "/redirect", Some(&query), Some(&query), 8400);
            let _ = parse_pasted_url(&query, 8400);
            let _ = parse_pasted_url(&format!("http://127.0.0.1:8400/redirect?{query}"), 8400);
            let _ = host_allowed(Some(&query), 8400);
            prop_assert!(!page("t", &query).contains("<script"));
        }

        #[test]
        fn parsed_values_round_trip(code in ".{0,40}", state in ".{0,40}") {
            let query = format!(
                "code={}&state={}",
                crate::openunison::cli_login::percent_encode(&code),
                crate::openunison::cli_login::percent_encode(&state)
            );
            let params = parse_callback_query(&query);
            prop_assert_eq!(params.code, Some(code));
            prop_assert_eq!(params.state, Some(state));
        }
    }
}
