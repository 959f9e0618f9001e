//! The `/k8slogin/token/user` bootstrap JSON: what a login brings home (display
//! name, cluster name, API server URL, CA PEMs, and a fresh k8sIdp session's
//! id_token and refresh_token). Parsed with a real JSON parser, Gson's
//! `\u003d` escapes and CRLF PEMs included; the field names are OpenUnison's
//! (the API server URL really is in `kubectl Windows Command`,
//! docs/openunison.md, section 4).

use serde_json::{Map, Value};

use super::client::{HttpError, Response};
use super::clock::Receipt;
use super::tls::{decode_pem_certificates, normalise_line_ends, parse_pem_certificates};
use crate::error::Hint;

const CLUSTER_NAME_KEY: &str = "kubectl Command";
const SERVER_KEY: &str = "kubectl Windows Command";
const OU_CA_KEY: &str = "OpenUnison Server CA Certificate";
const K8S_CA_KEY: &str = "Kubernetes API Server CA Certificate";

/// How a PEM field is checked.
type PemCheck = fn(&str) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, super::tls::PemProblem>;

/// What `/k8slogin/token/user` returns, checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Bootstrap {
    /// `displayName` (the user's `sub`); OpenUnison sends `Unknown` when it has none.
    pub display_name: String,
    /// `kubectl Command`: the cluster (and default context) name.
    pub cluster_name: String,
    /// `kubectl Windows Command`: the API server URL, always `https://`.
    pub server: String,
    /// The OpenUnison CA PEM (LF line ends), when the server has one.
    pub ou_ca_pem: Option<String>,
    /// The API server CA PEM (LF line ends), when the server sends one.
    pub k8s_ca_pem: Option<String>,
    /// A k8sIdp id_token for the new session.
    pub id_token: String,
    /// The new session's refresh token.
    pub refresh_token: String,
    /// When the answer came, and the server's clock then.
    pub receipt: Receipt,
}

impl std::fmt::Debug for Bootstrap {
    // Tokens never reach Debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("display_name", &self.display_name)
            .field("cluster_name", &self.cluster_name)
            .field("server", &self.server)
            .field("ou_ca_pem", &self.ou_ca_pem.as_ref().map(|_| "<pem>"))
            .field("k8s_ca_pem", &self.k8s_ca_pem.as_ref().map(|_| "<pem>"))
            .field("id_token", &"<redacted>")
            .field("refresh_token", &"<redacted>")
            .finish()
    }
}

/// Why the bootstrap answer is unusable. Every variant names the URL.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// Transport, status, size, or not JSON at all.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// `401`: OpenUnison did not take the verified `cli-local` token, almost
    /// always because its issuer names the host differently from OpenUnison's
    /// configuration (an alias, another port, other capitals).
    #[error("`{url}` refused the login's token (HTTP 401)")]
    TokenRefused { url: String, issuer: String },
    /// A required field is missing or empty.
    #[error("the answer from `{url}` has no {what}")]
    Missing { url: String, what: String },
    /// A field has the wrong type or an unusable value.
    #[error("the answer from `{url}` has an invalid {what}: {why}")]
    Invalid { url: String, what: String, why: String },
}

impl Hint for BootstrapError {
    fn hint(&self) -> Option<String> {
        match self {
            BootstrapError::Http(err) => err.hint(),
            BootstrapError::TokenRefused { issuer, .. } => Some(format!(
                "`--host` must be exactly the host name OpenUnison is configured with (`network.openunison_host` \
                 in its Helm values, letter for letter), served on port 443: OpenUnison accepts only tokens issued \
                 by `https://<network.openunison_host>/auth/idp/k8s-login-cli`, and this one was issued by `{issuer}`"
            )),
            BootstrapError::Missing { .. } | BootstrapError::Invalid { .. } => Some(
                "check that `--host` is an OpenUnison with `kubeAuth` enabled; its `/k8slogin/token/user` answer is not what this version understands"
                    .to_string(),
            ),
        }
    }
}

impl Bootstrap {
    /// Checks the HTTP answer and parses it.
    pub fn from_response(response: Response) -> Result<Bootstrap, BootstrapError> {
        let response = response.success()?;
        let object = response.json_object()?;
        Bootstrap::from_object(&response.url, &object, response.receipt)
    }

    /// Parses the JSON text served at `url`.
    #[cfg(test)]
    pub fn parse(url: &str, body: &[u8]) -> Result<Bootstrap, BootstrapError> {
        let response = Response {
            url: url.to_string(),
            status: reqwest::StatusCode::OK,
            content_type: Some("application/json".to_string()),
            body: body.to_vec(),
            receipt: Receipt::now(),
        };
        Bootstrap::from_object(url, &response.json_object()?, response.receipt)
    }

    fn from_object(url: &str, object: &Map<String, Value>, receipt: Receipt) -> Result<Bootstrap, BootstrapError> {
        let missing = |what: &str| BootstrapError::Missing { url: url.to_string(), what: what.to_string() };
        let invalid = |what: &str, why: &str| BootstrapError::Invalid {
            url: url.to_string(),
            what: what.to_string(),
            why: why.to_string(),
        };
        let display_name = match object.get("displayName") {
            None | Some(Value::Null) => "Unknown".to_string(),
            // Shown in messages and part of the kubeconfig user's name: never
            // let it carry terminal control sequences anywhere.
            Some(Value::String(name)) if !name.trim().is_empty() => crate::output::sanitize_line(name),
            Some(Value::String(_)) => return Err(invalid("`displayName`", "it is empty")),
            Some(_) => return Err(invalid("`displayName`", "it is not a string")),
        };
        let token = match object.get("token") {
            Some(Value::Object(token)) => token,
            None | Some(Value::Null) => return Err(missing("`token` object")),
            Some(_) => return Err(invalid("`token`", "it is not an object")),
        };
        // A required, non-empty string field of `token`.
        let field = |key: &str, what: &str| -> Result<String, BootstrapError> {
            match token.get(key) {
                Some(Value::String(text)) if !text.trim().is_empty() => Ok(text.trim().to_string()),
                None | Some(Value::Null) => Err(missing(what)),
                Some(Value::String(_)) => Err(invalid(what, "it is empty")),
                Some(_) => Err(invalid(what, "it is not a string")),
            }
        };
        let optional = |key: &str, what: &str| -> Result<Option<String>, BootstrapError> {
            match token.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
                Some(Value::String(text)) => Ok(Some(text.clone())),
                Some(_) => Err(invalid(what, "it is not a string")),
            }
        };

        let cluster_name = field(CLUSTER_NAME_KEY, "cluster name (`kubectl Command`)")?;
        if cluster_name.chars().any(char::is_control) {
            return Err(invalid("cluster name (`kubectl Command`)", "it contains control characters"));
        }
        let server_what = "API server URL (`kubectl Windows Command`)";
        let server = field(SERVER_KEY, server_what)?;
        super::server_url(&server).map_err(|why| invalid(server_what, &why))?;
        let id_token = field("id_token", "`id_token`")?;
        super::jwt::read_times(&id_token).map_err(|err| invalid("`id_token`", &err.to_string()))?;
        let refresh_token = field("refresh_token", "`refresh_token`")?;
        // The OpenUnison CA becomes our own trust anchor, so webpki must take
        // it; the API server's is only handed to kubectl (Go's x509 takes more
        // than webpki does), so it is only decoded.
        let pem = |key: &str, check: PemCheck| -> Result<Option<String>, BootstrapError> {
            let what = format!("`{key}`");
            let Some(text) = optional(key, &what)? else { return Ok(None) };
            let text = normalise_line_ends(&text);
            check(&text).map_err(|problem| invalid(&what, &problem.to_string()))?;
            Ok(Some(text))
        };
        Ok(Bootstrap {
            display_name,
            cluster_name,
            server,
            ou_ca_pem: pem(OU_CA_KEY, parse_pem_certificates)?,
            k8s_ca_pem: pem(K8S_CA_KEY, decode_pem_certificates)?,
            id_token,
            refresh_token,
            receipt,
        })
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::openunison::testing::ca_and_leaf;

    const URL: &str = "https://ou.example.com/k8slogin/token/user";
    // A JWT whose payload is {"exp":1800000060,"iat":1800000000}.
    const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE4MDAwMDAwNjAsImlhdCI6MTgwMDAwMDAwMH0.c2ln";

    /// What Gson writes: `=` as `\u003d`, CRLF PEMs, a trailing newline.
    fn gson_body(ou_ca: &str, k8s_ca: &str) -> String {
        // rcgen's PEM ends its lines with CRLF on Windows, LF elsewhere.
        let crlf = |pem: &str| pem.replace("\r\n", "\n").replace('\n', "\\r\\n");
        format!(
            "{{\"displayName\":\"jdoe\",\"token\":{{\"kubectl Command\":\"kubernetes\",\
             \"kubectl Windows Command\":\"https://k8sapi.example.com\",\"Usage\":\"Run the kubectl command to set your user-context and server connection\",\
             \"id_token\":\"{ID_TOKEN}\",\"refresh_token\":\"q1bK/x+y\\u003d\\u003d\",\
             \"OpenUnison Server CA Certificate\":\"{}\",\"Kubernetes API Server CA Certificate\":\"{}\",\
             \"something new\":\"ignored\"}},\"extra\":[1,2]}}\n",
            crlf(ou_ca),
            crlf(k8s_ca)
        )
    }

    #[test]
    fn the_real_shape_parses() {
        let (ca, leaf) = ca_and_leaf(&["k8sapi.example.com"]);
        let bootstrap = Bootstrap::parse(URL, gson_body(&ca.cert_pem, &leaf.cert_pem).as_bytes()).unwrap();
        assert_eq!(bootstrap.display_name, "jdoe");
        assert_eq!(bootstrap.cluster_name, "kubernetes");
        assert_eq!(bootstrap.server, "https://k8sapi.example.com");
        assert_eq!(bootstrap.refresh_token, "q1bK/x+y==");
        assert_eq!(bootstrap.id_token, ID_TOKEN);
        let ou_ca = bootstrap.ou_ca_pem.as_deref().unwrap();
        assert!(!ou_ca.contains('\r'));
        // rcgen's own PEM has CRLF on Windows; the parsed one has LF everywhere.
        assert_eq!(ou_ca, ca.cert_pem.replace("\r\n", "\n"));
        assert_eq!(bootstrap.k8s_ca_pem, Some(leaf.cert_pem.replace("\r\n", "\n")));
        let debug = format!("{bootstrap:?}");
        assert!(!debug.contains("q1bK") && !debug.contains(ID_TOKEN), "{debug}");
    }

    fn body(token: serde_json::Value) -> Vec<u8> {
        serde_json::json!({"displayName": "jdoe", "token": token}).to_string().into_bytes()
    }

    fn minimal() -> serde_json::Value {
        serde_json::json!({"kubectl Command": "c", "kubectl Windows Command": "https://api:6443",
                           "id_token": ID_TOKEN, "refresh_token": "r"})
    }

    fn without(key: &str) -> Vec<u8> {
        let mut token = minimal();
        token.as_object_mut().unwrap().remove(key);
        body(token)
    }

    fn with(key: &str, value: serde_json::Value) -> Vec<u8> {
        let mut token = minimal();
        token.as_object_mut().unwrap().insert(key.to_string(), value);
        body(token)
    }

    #[test]
    fn cas_may_be_absent() {
        let bootstrap = Bootstrap::parse(URL, &body(minimal())).unwrap();
        assert_eq!((bootstrap.ou_ca_pem, bootstrap.k8s_ca_pem), (None, None));
        let bootstrap = Bootstrap::parse(URL, br#"{"token":{"kubectl Command":"c","kubectl Windows Command":"https://a","id_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.c2ln","refresh_token":"r"}}"#).unwrap();
        assert_eq!(bootstrap.display_name, "Unknown");
    }

    #[test]
    fn missing_fields_are_named() {
        for (key, named) in [
            ("id_token", "`id_token`"),
            ("refresh_token", "`refresh_token`"),
            ("kubectl Windows Command", "API server URL"),
            ("kubectl Command", "cluster name"),
        ] {
            let err = Bootstrap::parse(URL, &without(key)).unwrap_err();
            assert!(matches!(err, BootstrapError::Missing { .. }), "{err:?}");
            let message = err.to_string();
            assert!(message.contains(named) && message.contains(URL), "{message}");
        }
        assert!(matches!(Bootstrap::parse(URL, b"{}"), Err(BootstrapError::Missing { .. })));
    }

    #[test]
    fn bad_values_are_refused() {
        let invalid = |body: &[u8]| match Bootstrap::parse(URL, body) {
            Err(BootstrapError::Invalid { what, .. }) => what,
            other => panic!("{other:?}"),
        };
        assert!(invalid(&with("kubectl Windows Command", "http://api:6443".into())).contains("API server"));
        assert!(
            invalid(&with("kubectl Windows Command", "kubectl config set-cluster ...".into())).contains("API server")
        );
        assert!(invalid(&with("id_token", "not-a-jwt".into())).contains("id_token"));
        assert!(invalid(&with("refresh_token", 42.into())).contains("refresh_token"));
        assert!(invalid(&with("refresh_token", "".into())).contains("refresh_token"));
        assert!(invalid(&with("kubectl Command", "a\u{1b}[2Jb".into())).contains("cluster"));
        for bad in ["https://api\n.example.com", "https://api.example.com:6443/\tx", "https://api.example.com\r:6443"] {
            assert!(invalid(&with("kubectl Windows Command", bad.into())).contains("API server"), "{bad:?}");
        }
        let escaped = serde_json::json!({"displayName": "j\u{1b}[31m\ndoe", "token": minimal()}).to_string();
        let bootstrap = Bootstrap::parse(URL, escaped.as_bytes()).unwrap();
        assert_eq!(bootstrap.display_name, "j\\u{1b}[31m\\ndoe");
        let (ca, _) = ca_and_leaf(&["x"]);
        let truncated = &ca.cert_pem[..ca.cert_pem.len() - 40];
        assert!(invalid(&with(OU_CA_KEY, truncated.into())).contains(OU_CA_KEY));
        assert!(invalid(&with(K8S_CA_KEY, "hello".into())).contains(K8S_CA_KEY));
        let lines: Vec<&str> = ca.cert_pem.lines().filter(|line| !line.contains("MII")).collect();
        assert!(invalid(&with(K8S_CA_KEY, lines.join("\r\n").into())).contains(K8S_CA_KEY));
    }

    #[test]
    fn an_html_page_is_not_json() {
        let response = Response {
            url: URL.to_string(),
            status: reqwest::StatusCode::OK,
            content_type: Some("text/html;charset=UTF-8".to_string()),
            body: b"<!DOCTYPE html><html><body>Login</body></html>".to_vec(),
            receipt: Receipt::now(),
        };
        let err = Bootstrap::from_response(response).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("not answer JSON") && message.contains(URL), "{message}");
        let err = Bootstrap::parse(URL, b"[]").unwrap_err();
        assert!(err.to_string().contains(URL));
    }

    #[test]
    fn an_error_status_is_an_error() {
        let response = Response {
            url: URL.to_string(),
            status: reqwest::StatusCode::UNAUTHORIZED,
            content_type: None,
            body: Vec::new(),
            receipt: Receipt::now(),
        };
        let err = Bootstrap::from_response(response).unwrap_err();
        assert!(err.to_string().contains("401") && err.to_string().contains(URL), "{err}");
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn parsing_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
            let _ = Bootstrap::parse(URL, &bytes);
        }

        #[test]
        fn parsing_never_panics_on_near_misses(
            server in ".{0,30}",
            id_token in ".{0,40}",
            pem in "(-----BEGIN CERTIFICATE-----)?[A-Za-z0-9+/=\r\n]{0,80}(-----END CERTIFICATE-----)?",
            name in prop::option::of(".{0,10}"),
        ) {
            let mut token = minimal();
            let map = token.as_object_mut().unwrap();
            map.insert("kubectl Windows Command".into(), server.into());
            map.insert("id_token".into(), id_token.into());
            map.insert(OU_CA_KEY.into(), pem.into());
            let document = serde_json::json!({"displayName": name, "token": token}).to_string();
            let _ = Bootstrap::parse(URL, document.as_bytes());
        }
    }
}
