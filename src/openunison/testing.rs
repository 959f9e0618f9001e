//! Test support for the OpenUnison client's unit tests: certificates made with
//! rcgen, and a tiny scripted HTTPS server on 127.0.0.1 (each connection gets
//! one request and one answer, then is closed).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::TrustConfig;

/// A PEM certificate with its key, for test servers.
pub struct TestCert {
    pub cert_pem: String,
    pub key_pem: String,
}

/// A self-signed `CA:TRUE` certificate for `names`, what `openssl req -x509` makes.
pub fn self_signed(names: &[&str]) -> TestCert {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names.iter().map(|name| name.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    TestCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

/// A self-signed `CA:FALSE` certificate for `names`: the OpenUnison chart's
/// default `unison-ca`, which is its own trust anchor.
pub fn self_signed_leaf(names: &[&str]) -> TestCert {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(names.iter().map(|name| name.to_string()).collect::<Vec<_>>()).unwrap();
    params.is_ca = IsCa::ExplicitNoCa;
    params.distinguished_name.push(rcgen::DnType::CommonName, "unison-ca");
    let cert = params.self_signed(&key).unwrap();
    TestCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() }
}

/// A CA and a leaf for `names` signed by it: `(ca, leaf)`.
pub fn ca_and_leaf(names: &[&str]) -> (TestCert, TestCert) {
    ca_and_leaf_with(names, |_| {})
}

/// [`ca_and_leaf`] with the CA's parameters changed by `edit` (its dates, say).
pub fn ca_and_leaf_with(names: &[&str], edit: impl FnOnce(&mut CertificateParams)) -> (TestCert, TestCert) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "test CA");
    edit(&mut ca_params);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_params = CertificateParams::new(names.iter().map(|name| name.to_string()).collect::<Vec<_>>()).unwrap();
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    (
        TestCert { cert_pem: ca_cert.pem(), key_pem: ca_key.serialize_pem() },
        TestCert { cert_pem: leaf.pem(), key_pem: leaf_key.serialize_pem() },
    )
}

/// A request as the test server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// What the test server answers.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Status, content type and body, with a content-length.
    Full { status: u16, content_type: &'static str, body: Vec<u8> },
    /// Status and body without a content-length (read until close).
    Unsized { status: u16, body: Vec<u8> },
    /// Status with extra headers and an empty body (redirects).
    Headers { status: u16, headers: Vec<(String, String)> },
    /// Never answers (the connection stays open for a minute).
    Stall,
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Reply {
        Reply::Full { status, content_type: "application/json", body: body.into().into_bytes() }
    }

    pub fn html(status: u16, body: impl Into<String>) -> Reply {
        Reply::Full { status, content_type: "text/html", body: body.into().into_bytes() }
    }
}

pub type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

/// A scripted HTTPS server on 127.0.0.1.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl TestServer {
    /// Serves `handler` with `cert` on a runtime of its own (a background
    /// thread), so that blocking client code can be tested against it.
    pub fn start(cert: &TestCert, handler: Handler) -> TestServer {
        let (sender, receiver) = std::sync::mpsc::channel();
        let cert_pem = cert.cert_pem.clone();
        let key_pem = cert.key_pem.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let server = TestServer::spawn(&TestCert { cert_pem, key_pem }, handler).await;
                sender.send((server.addr, server.seen.clone())).unwrap();
                // Serve until the test process ends.
                tokio::time::sleep(Duration::from_secs(600)).await;
            });
        });
        let (addr, seen) = receiver.recv_timeout(Duration::from_secs(10)).unwrap();
        TestServer { addr, seen }
    }

    /// Serves `handler` on the current runtime.
    pub async fn spawn(cert: &TestCert, handler: Handler) -> TestServer {
        let certs = CertificateDer::pem_slice_iter(cert.cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(cert.key_pem.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let recorded = seen.clone();
        tokio::spawn(async move {
            // Bounded: no test makes more connections than this.
            for _ in 0..200 {
                let Ok((stream, _)) = listener.accept().await else { return };
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                let recorded = recorded.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(stream).await else { return };
                    let Some(request) = read_request(&mut tls).await else { return };
                    recorded.lock().unwrap().push(request.clone());
                    let bytes = match handler(&request) {
                        Reply::Stall => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            return;
                        }
                        Reply::Full { status, content_type, body } => {
                            let mut bytes = format!(
                                "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            bytes.extend(body);
                            bytes
                        }
                        Reply::Unsized { status, body } => {
                            let mut bytes = format!("HTTP/1.1 {status} X\r\nconnection: close\r\n\r\n").into_bytes();
                            bytes.extend(body);
                            bytes
                        }
                        Reply::Headers { status, headers } => {
                            let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n");
                            for (name, value) in headers {
                                head.push_str(&format!("{name}: {value}\r\n"));
                            }
                            head.push_str("\r\n");
                            head.into_bytes()
                        }
                    };
                    let _ = tls.write_all(&bytes).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TestServer { addr, seen }
    }

    /// `https://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.addr.port())
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

async fn read_request(stream: &mut (impl AsyncReadExt + Unpin)) -> Option<Seen> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = data.windows(4).position(|window| window == b"\r\n\r\n") {
            break at;
        }
        if data.len() > 64 * 1024 {
            return None;
        }
        let read = stream.read(&mut buf).await.ok()?;
        if read == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..read]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let read = stream.read(&mut buf).await.ok()?;
        if read == 0 {
            break;
        }
        body.extend_from_slice(&buf[..read]);
    }
    Some(Seen { method, path, headers, body: String::from_utf8_lossy(&body).into_owned() })
}

/// Trust for a test server's certificate.
pub fn trust(cert: &TestCert) -> TrustConfig {
    TrustConfig { ca_file: None, ca_pem: Some(cert.cert_pem.clone()), ca_data: None }
}
