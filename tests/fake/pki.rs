//! Test certificates, generated fresh for every fake: a CA with one leaf per
//! server (SANs `127.0.0.1` and `localhost`), or a self-signed `CA:TRUE`
//! certificate that is the server's own, as small OpenUnison installs use, or
//! the chart's default self-signed `CA:FALSE` certificate.

use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// A certificate authority that issues server leaves.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    /// PEM of the CA certificate (LF line endings).
    pub pem: String,
    pub der: CertificateDer<'static>,
}

/// A server identity: its certificate and key, and the PEM a client must trust.
#[derive(Clone)]
pub struct ServerIdentity {
    pub cert_der: CertificateDer<'static>,
    pub key_pkcs8: Vec<u8>,
    /// What a client passes as `--certificate-authority`: the CA, or for a
    /// self-signed identity the certificate itself.
    pub trust_pem: String,
}

fn loopback_params(common_name: &str) -> CertificateParams {
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).expect("valid SANs");
    params.distinguished_name.push(DnType::CommonName, common_name);
    params
}

/// A fresh key and the parameters of a `CA:TRUE` certificate without SANs.
fn ca_params(common_name: &str) -> (KeyPair, CertificateParams) {
    let key = KeyPair::generate().expect("key generation");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("no SANs");
    params.distinguished_name.push(DnType::CommonName, common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    (key, params)
}

impl TestCa {
    fn self_sign(key: KeyPair, params: CertificateParams) -> TestCa {
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa { pem: cert.pem(), der: cert.der().clone(), issuer: Issuer::new(params, key) }
    }

    pub fn generate(common_name: &str) -> TestCa {
        let (key, params) = ca_params(common_name);
        TestCa::self_sign(key, params)
    }

    /// A CA that was valid in 2001 only.
    pub fn generate_expired(common_name: &str) -> TestCa {
        let (key, mut params) = ca_params(common_name);
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        TestCa::self_sign(key, params)
    }

    /// A CA whose certificate carries a 70 kB non-critical extension: Go's
    /// x509 takes it, webpki refuses any certificate over 64 KiB.
    pub fn generate_oversized(common_name: &str) -> TestCa {
        let (key, mut params) = ca_params(common_name);
        params.custom_extensions =
            vec![rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x04; 70_000])];
        TestCa::self_sign(key, params)
    }

    /// A leaf for 127.0.0.1 and localhost, signed by this CA.
    pub fn issue_leaf(&self, common_name: &str) -> ServerIdentity {
        let key = KeyPair::generate().expect("key generation");
        let mut params = loopback_params(common_name);
        params.is_ca = IsCa::ExplicitNoCa;
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("leaf signed by the CA");
        ServerIdentity { cert_der: cert.der().clone(), key_pkcs8: key.serialize_der(), trust_pem: self.pem.clone() }
    }
}

/// One `CA:TRUE` certificate that is both the trust anchor and the server's
/// certificate (rustls's verifier refuses this shape; Go clients accept it).
pub fn self_signed_ca_identity(common_name: &str) -> ServerIdentity {
    let key = KeyPair::generate().expect("key generation");
    let mut params = loopback_params(common_name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let cert = params.self_signed(&key).expect("self-signed certificate");
    ServerIdentity { cert_der: cert.der().clone(), key_pkcs8: key.serialize_der(), trust_pem: cert.pem() }
}

/// The OpenUnison chart's default `unison-ca`: one self-signed certificate
/// with `CA:FALSE` that is both the server's certificate and the trust anchor.
pub fn self_signed_leaf_identity(common_name: &str) -> ServerIdentity {
    let key = KeyPair::generate().expect("key generation");
    let mut params = loopback_params(common_name);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    let cert = params.self_signed(&key).expect("self-signed certificate");
    ServerIdentity { cert_der: cert.der().clone(), key_pkcs8: key.serialize_der(), trust_pem: cert.pem() }
}

impl ServerIdentity {
    /// A rustls server configuration (ring provider, HTTP/1.1 only).
    pub fn server_config(&self) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.clone()));
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("default protocol versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert_der.clone()], key)
            .expect("certificate and key match");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// The same PEM with CRLF line endings, as OpenUnison's commons-codec writes it.
pub fn crlf(pem: &str) -> String {
    pem.replace("\r\n", "\n").replace('\n', "\r\n")
}
