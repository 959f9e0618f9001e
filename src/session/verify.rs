//! Whether the Kubernetes API server takes a token: one `GET /api` with it as
//! the bearer, to tell a client that runs the plugin before every request (the
//! Python client) from client-go's re-run after a 401, before a refresh is
//! spent on it. Short timeouts, since the session lock is held meanwhile; any
//! failure to get an answer (network, TLS, a CA that cannot be used) is
//! "unknown", never an error of `token`.

use std::time::Duration;

use crate::openunison::TrustConfig;
use crate::openunison::client::{self, Http};
use crate::openunison::tls;

use super::store::ApiServer;

/// Connect and whole-request bound of the check.
pub const VERIFY_TIMEOUT: Duration = Duration::from_secs(5);

/// What the API server said about a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A `2xx`, or `403`: authenticated, merely not allowed.
    Accepted,
    /// `401`: the API server does not take it.
    Rejected,
    /// No answer to go by: no connection, TLS we cannot trust, or a status
    /// that says nothing of the token (`404` from something that is not a
    /// Kubernetes API server, `429`, `5xx`).
    Unknown,
}

/// Asks `api_server` whether it takes `token`.
pub fn verify(api_server: &ApiServer, token: &str) -> Verdict {
    let url = format!("{}/api", api_server.url.trim_end_matches('/'));
    // The API server's CA as the kubeconfig has it, on top of the system roots.
    let trust = TrustConfig { ca_file: None, ca_pem: api_server.ca_pem.clone(), ca_data: None };
    let Ok(http) = tls::client_config(&trust).and_then(|tls| Http::with_tls(tls, VERIFY_TIMEOUT, VERIFY_TIMEOUT))
    else {
        return Verdict::Unknown;
    };
    match client::block_on(&url, http.get(&url, Some(token))) {
        Ok(Ok(response)) if response.status == reqwest::StatusCode::UNAUTHORIZED => Verdict::Rejected,
        Ok(Ok(response)) if response.status.is_success() || response.status == reqwest::StatusCode::FORBIDDEN => {
            Verdict::Accepted
        }
        Ok(Ok(_)) | Ok(Err(_)) | Err(_) => Verdict::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::openunison::testing::{Reply, TestCert, TestServer, ca_and_leaf, self_signed};

    fn answering(cert: &TestCert, status: u16) -> TestServer {
        TestServer::start(cert, Arc::new(move |_| Reply::json(status, r#"{"kind":"APIVersions"}"#)))
    }

    #[test]
    fn a_401_is_a_rejection_a_2xx_or_403_an_acceptance_and_other_statuses_say_nothing() {
        let (ca, leaf) = ca_and_leaf(&["127.0.0.1"]);
        for (status, expected) in [
            (401, Verdict::Rejected),
            (200, Verdict::Accepted),
            (403, Verdict::Accepted),
            (404, Verdict::Unknown),
            (429, Verdict::Unknown),
            (503, Verdict::Unknown),
        ] {
            let server = answering(&leaf, status);
            let api_server = ApiServer { url: server.url("/"), ca_pem: Some(ca.cert_pem.clone()) };
            assert_eq!(verify(&api_server, "tok"), expected, "HTTP {status}");
            let seen = server.requests();
            assert_eq!(seen.len(), 1);
            assert_eq!((seen[0].method.as_str(), seen[0].path.as_str()), ("GET", "/api"));
            assert_eq!(seen[0].header("authorization"), Some("Bearer tok"));
        }
    }

    #[test]
    fn no_answer_or_an_untrusted_server_is_unknown() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let api_server = ApiServer { url: format!("https://127.0.0.1:{}", closed.port()), ca_pem: None };
        assert_eq!(verify(&api_server, "tok"), Verdict::Unknown);
        let (_, leaf) = ca_and_leaf(&["127.0.0.1"]);
        let server = answering(&leaf, 401);
        let other = self_signed(&["127.0.0.1"]);
        let untrusted = ApiServer { url: server.url(""), ca_pem: Some(other.cert_pem) };
        assert_eq!(verify(&untrusted, "tok"), Verdict::Unknown, "a 401 through TLS we cannot trust says nothing");
        let unusable = ApiServer { url: server.url(""), ca_pem: Some("not a certificate".to_string()) };
        assert_eq!(verify(&unusable, "tok"), Verdict::Unknown);
        assert!(server.requests().is_empty(), "no token went to an untrusted server");
    }
}
