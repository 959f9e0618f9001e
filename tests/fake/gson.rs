//! JSON written the way OpenUnison's Gson writes it: HTML-safe escaping (`=`
//! as `\u003d`, `<` `>` `&` `'` as `\u003c` …), lower-case hex escapes, and a
//! trailing newline after the document. Only what the bootstrap body needs:
//! objects of strings, in insertion order.

/// One JSON string literal, Gson-escaped, with its quotes.
pub fn string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '<' | '>' | '&' | '=' | '\'' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", ch as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON value in Gson's compact form.
pub enum Gson {
    Str(String),
    /// Already-written JSON, inserted verbatim.
    Raw(String),
    Object(Vec<(String, Gson)>),
}

impl Gson {
    pub fn write(&self) -> String {
        match self {
            Gson::Str(text) => string(text),
            Gson::Raw(json) => json.clone(),
            Gson::Object(members) => {
                let members: Vec<String> =
                    members.iter().map(|(key, value)| format!("{}:{}", string(key), value.write())).collect();
                format!("{{{}}}", members.join(","))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_gson() {
        assert_eq!(string("a=b<c>&'d\"\\\r\n\u{1b}"), r#""a\u003db\u003cc\u003e\u0026\u0027d\"\\\r\n\u001b""#);
    }
}
