//! A synchronous HTTPS client for tests and the fake browser: reqwest on a
//! private current-thread runtime, never following redirects, trusting only
//! the PEM certificates it is given. A certificate given to it is also pinned,
//! so a self-signed `CA:TRUE` server certificate (which webpki refuses as an
//! end-entity certificate) is accepted exactly, and nothing else is.

use std::sync::Arc;
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

#[derive(Debug, Clone)]
pub struct TestResponse {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl TestResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| panic!("response is not JSON ({err}): {}", self.text()))
    }
}

pub struct TestClient {
    runtime: tokio::runtime::Runtime,
    client: reqwest::Client,
}

impl TestClient {
    /// Trusts the certificates in these PEM texts (CAs or pinned server certificates).
    pub fn new(trusted_pems: &[&str]) -> TestClient {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        let tls = client_config(trusted_pems);
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .no_proxy()
            .build()
            .expect("reqwest client");
        TestClient { runtime, client }
    }

    /// GET with extra headers.
    pub fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<TestResponse, reqwest::Error> {
        let mut request = self.client.get(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request)
    }

    /// POST `application/x-www-form-urlencoded` with extra headers.
    pub fn post_form(
        &self,
        url: &str,
        form: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Result<TestResponse, reqwest::Error> {
        let mut request = self.client.post(url).form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request)
    }

    pub fn send(&self, request: reqwest::RequestBuilder) -> Result<TestResponse, reqwest::Error> {
        self.runtime.block_on(async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok(TestResponse { status, headers, body })
        })
    }

    pub fn reqwest(&self) -> &reqwest::Client {
        &self.client
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn parse_pems(pems: &[&str]) -> Vec<CertificateDer<'static>> {
    pems.iter()
        .flat_map(|pem| CertificateDer::pem_slice_iter(pem.as_bytes()))
        .map(|cert| cert.expect("test PEM parses"))
        .collect()
}

/// A rustls client configuration trusting exactly these PEMs, HTTP/1.1 only.
pub fn client_config(trusted_pems: &[&str]) -> rustls::ClientConfig {
    let certs = parse_pems(trusted_pems);
    let mut roots = rustls::RootCertStore::empty();
    for cert in &certs {
        // A self-signed leaf is not a usable root; it is still pinned below.
        let _ = roots.add(cert.clone());
    }
    let provider = provider();
    let webpki = (!roots.is_empty()).then(|| {
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .expect("verifier builds")
    });
    let verifier = Arc::new(PinningVerifier { pinned: certs, webpki, provider: provider.clone() });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    config
}

#[derive(Debug)]
struct PinningVerifier {
    pinned: Vec<CertificateDer<'static>>,
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pinned.iter().any(|pinned| pinned.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        match &self.webpki {
            Some(webpki) => webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now),
            None => Err(rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer)),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
