//! TLS trust for talking to OpenUnison: a rustls client configuration (ring
//! provider, set explicitly) that trusts the system roots plus every CA the user
//! supplied (`--certificate-authority`, the CA kept with a session, and the
//! `SSL_CERT_FILE` bundle, read by us so it is an *extra* bundle on every
//! platform).
//!
//! It also accepts a self-signed server certificate, deliberately and narrowly:
//! webpki refuses a `CA:TRUE` certificate used as the server's own certificate
//! (`CaUsedAsEndEntity`) even when it is given as a root, which is exactly what
//! `openssl req -x509` makes for lab installs. [`PinningVerifier`] first asks
//! webpki; only if that fails, and the presented certificate is byte for byte
//! one that the user supplied (never a system root), valid for the server name
//! and within its validity period, is it accepted. Handshake signatures are
//! always verified with the presented certificate's key, so the server must hold
//! the private key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::DigitallySignedStruct;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use super::{TrustConfig, TrustEnvironment};
use crate::error::Hint;

/// Directories that hold the system's CA certificates when `SSL_CERT_FILE`
/// hides them from `rustls-native-certs` (it reads only that file when the
/// variable is set, but for us the variable adds to the system roots).
#[cfg(all(unix, not(target_os = "macos")))]
const SYSTEM_CA_DIRS: &[&str] = &["/etc/ssl/certs", "/etc/pki/tls/certs"];

/// The system CA bundles of the common distributions (Debian and Ubuntu,
/// Fedora and RHEL, openSUSE, Alpine), first found wins.
#[cfg(all(unix, not(target_os = "macos")))]
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// Why the TLS trust could not be set up. Each variant names the file or the
/// source of the certificates.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A CA file could not be read.
    #[error("cannot read the CA certificates in {origin}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    /// A CA source holds no certificate at all.
    #[error("{origin} holds no PEM certificate")]
    NoCertificate { origin: String },
    /// A CA source holds a certificate that cannot be parsed.
    #[error("{origin} holds a malformed certificate: {why}")]
    Malformed { origin: String, why: String },
    /// The only CA certificates there are lie outside their validity period.
    #[error("no usable CA certificate: {why}")]
    OutOfPeriod { why: String },
    /// Neither the system nor the user supplied any trusted certificate.
    #[error("no trusted CA certificates: the system store is empty or unreadable and no CA was given")]
    NoRoots,
    /// rustls refused the configuration (should not happen).
    #[error("cannot set up TLS: {why}")]
    Setup { why: String },
}

impl Hint for TrustError {
    fn hint(&self) -> Option<String> {
        match self {
            TrustError::Read { .. } | TrustError::NoCertificate { .. } | TrustError::Malformed { .. } => Some(
                "give a PEM file (`-----BEGIN CERTIFICATE-----`) with `--certificate-authority`, or fix `SSL_CERT_FILE`"
                    .to_string(),
            ),
            TrustError::OutOfPeriod { .. } => Some(OUT_OF_PERIOD_HINT.to_string()),
            TrustError::NoRoots => {
                Some("install the system CA certificates, or give the OpenUnison CA with `--certificate-authority`".to_string())
            }
            TrustError::Setup { .. } => None,
        }
    }
}

/// Why a piece of PEM text is not a usable certificate bundle; the caller names
/// where the text came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemProblem {
    #[error("no `-----BEGIN CERTIFICATE-----` section")]
    Empty,
    #[error("a certificate has no `-----END CERTIFICATE-----` line (truncated?)")]
    Truncated,
    #[error("a `-----BEGIN` line is malformed")]
    BadBegin,
    #[error("certificate {index} is not valid base64")]
    BadBase64 { index: usize },
    #[error("certificate {index} is not a valid X.509 certificate")]
    BadCertificate { index: usize },
    #[error("a PEM section is too large")]
    TooLarge,
}

/// Parses PEM text holding one or more certificates, strictly: CRLF line ends
/// are accepted, but a truncated, non-base64 or non-X.509 certificate is an
/// error, and so is text without any certificate. Other PEM sections (keys,
/// parameters) are skipped.
pub fn parse_pem_certificates(text: &str) -> Result<Vec<CertificateDer<'static>>, PemProblem> {
    let certs = decode_pem_certificates(text)?;
    for (index, cert) in certs.iter().enumerate() {
        // Parsing it as a trust anchor checks the DER structure (and accepts
        // the old v1 roots that some bundles still carry).
        rustls::RootCertStore::empty()
            .add(cert.clone())
            .map_err(|_| PemProblem::BadCertificate { index: index + 1 })?;
    }
    Ok(certs)
}

/// Decodes PEM text holding one or more certificates without judging them
/// beyond their DER framing: for certificates that only kubectl (Go's x509)
/// will use, such as the API server's CA, which webpki may refuse where Go
/// does not (a certificate over 64 KiB, unique identifiers, a v2 certificate).
pub fn decode_pem_certificates(text: &str) -> Result<Vec<CertificateDer<'static>>, PemProblem> {
    let normalised = normalise_line_ends(text);
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(normalised.as_bytes()) {
        let index = certs.len() + 1;
        let cert = item.map_err(|err| match err {
            rustls::pki_types::pem::Error::MissingSectionEnd { .. } => PemProblem::Truncated,
            rustls::pki_types::pem::Error::IllegalSectionStart { .. } => PemProblem::BadBegin,
            rustls::pki_types::pem::Error::SectionTooLarge => PemProblem::TooLarge,
            _ => PemProblem::BadBase64 { index },
        })?;
        if !der::is_certificate_shaped(cert.as_ref()) {
            return Err(PemProblem::BadCertificate { index });
        }
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(PemProblem::Empty);
    }
    Ok(certs)
}

/// Certificates as PEM text (LF line ends).
pub fn to_pem(certs: &[CertificateDer<'_>]) -> String {
    use base64::Engine as _;
    let mut pem = String::new();
    for cert in certs {
        pem.push_str("-----BEGIN CERTIFICATE-----\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        for line in encoded.as_bytes().chunks(64) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END CERTIFICATE-----\n");
    }
    pem
}

/// The certificates the user supplied for OpenUnison (`ca_file`, then the
/// kept `ca_pem`) as PEM text, for a kubeconfig; `None` when there are none.
/// Only certificates: a key that shares the file stays out.
pub fn supplied_ca_pem(trust: &TrustConfig) -> Result<Option<String>, TrustError> {
    let mut sources = TrustSources::default();
    sources.add_trust_config(trust)?;
    let certs: Vec<CertificateDer<'static>> = sources.supplied.into_iter().map(|(cert, _)| cert).collect();
    Ok((!certs.is_empty()).then(|| to_pem(&certs)))
}

/// `\r\n` (and stray `\r`) to `\n`: OpenUnison's PEMs use CRLF.
pub fn normalise_line_ends(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// The certificates a configuration trusts: the system store, and what the user
/// supplied (which may also be pinned as self-signed server certificates).
#[derive(Debug, Default)]
struct TrustSources {
    system: Vec<CertificateDer<'static>>,
    /// Each with where it came from, for messages.
    supplied: Vec<(CertificateDer<'static>, String)>,
}

impl TrustSources {
    /// Reads every source for `trust`: `SSL_CERT_FILE` from the environment,
    /// the system store, `ca_file` and `ca_pem`.
    fn load(trust: &TrustConfig, environment: &TrustEnvironment) -> Result<TrustSources, TrustError> {
        let ssl_cert_file = environment.ssl_cert_file.as_ref();
        let mut sources = TrustSources { system: load_system_roots(environment), supplied: Vec::new() };
        if let Some(path) = ssl_cert_file {
            let origin = format!("`{}` (`SSL_CERT_FILE`)", path.display());
            sources.add_supplied(read_bundle(path, &origin, true)?, &origin);
        }
        sources.add_trust_config(trust)?;
        crate::debug!(
            "TLS trust: {} system roots; {}",
            sources.system.len(),
            describe_supplied(sources.supplied.len(), ssl_cert_file.map(PathBuf::as_path), trust)
        );
        Ok(sources)
    }

    fn add_trust_config(&mut self, trust: &TrustConfig) -> Result<(), TrustError> {
        if let Some(path) = &trust.ca_file {
            let origin = format!("`{}`", path.display());
            self.add_supplied(read_bundle(path, &origin, false)?, &origin);
        }
        if let Some(pem) = &trust.ca_pem {
            let origin = "the OpenUnison CA kept with the session".to_string();
            self.add_supplied(
                parse_pem_certificates(pem).map_err(|problem| pem_error(origin.clone(), problem))?,
                &origin,
            );
        }
        if let Some(pem) = &trust.ca_data {
            let origin = "`--certificate-authority-data`".to_string();
            self.add_supplied(
                parse_pem_certificates(pem).map_err(|problem| pem_error(origin.clone(), problem))?,
                &origin,
            );
        }
        Ok(())
    }

    fn add_supplied(&mut self, certs: Vec<CertificateDer<'static>>, origin: &str) {
        self.supplied.extend(certs.into_iter().map(|cert| (cert, origin.to_string())));
    }

    fn client_config(self) -> Result<rustls::ClientConfig, TrustError> {
        self.client_config_at(UnixTime::now())
    }

    /// The configuration as of `now`: webpki does not check the dates of
    /// trust anchors, so an anchor outside its validity period is left out
    /// here (and named if the server's certificate needed it).
    fn client_config_at(self, now: UnixTime) -> Result<rustls::ClientConfig, TrustError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut out_of_period = Vec::new();
        let mut in_period = |cert: &CertificateDer<'static>, origin: &str| match OutOfPeriod::check(cert, origin, now) {
            Some(stale) => {
                out_of_period.push(stale);
                false
            }
            None => true,
        };
        let system: Vec<_> = self.system.into_iter().filter(|cert| in_period(cert, "the system CA store")).collect();
        let supplied: Vec<_> =
            self.supplied.into_iter().filter(|(cert, origin)| in_period(cert, origin)).map(|(cert, _)| cert).collect();
        let mut roots = rustls::RootCertStore::empty();
        // System stores carry the odd certificate webpki cannot use; skip those.
        roots.add_parsable_certificates(system);
        for cert in &supplied {
            // Already checked when parsed; a failure here would be a bug, and
            // skipping it only means it is not trusted.
            let _ = roots.add(cert.clone());
        }
        if roots.is_empty() {
            return Err(match out_of_period.into_iter().next() {
                Some(stale) => TrustError::OutOfPeriod { why: stale.why },
                None => TrustError::NoRoots,
            });
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|err| TrustError::Setup { why: err.to_string() })?;
        let verifier = PinningVerifier { webpki, pinned: supplied, out_of_period };
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|err| TrustError::Setup { why: err.to_string() })?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        // reqwest is built without HTTP/2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

/// The environment's part of every connection's trust: set once at start
/// (unset, as in unit tests, it adds nothing).
static ENVIRONMENT: OnceLock<TrustEnvironment> = OnceLock::new();

/// Sets what the environment adds to TLS trust, for the rest of the process.
pub fn set_environment(environment: TrustEnvironment) {
    let _ = ENVIRONMENT.set(environment);
}

/// The rustls configuration for talking to OpenUnison with `trust`.
pub fn client_config(trust: &TrustConfig) -> Result<rustls::ClientConfig, TrustError> {
    TrustSources::load(trust, ENVIRONMENT.get_or_init(TrustEnvironment::default))?.client_config()
}

/// The supplied certificates and where they came from, for the debug line.
fn describe_supplied(count: usize, ssl_cert_file: Option<&Path>, trust: &TrustConfig) -> String {
    let mut origins = Vec::new();
    origins.extend(ssl_cert_file.map(|path| format!("`SSL_CERT_FILE` {}", path.display())));
    origins.extend(trust.ca_file.as_ref().map(|path| format!("the CA file {}", path.display())));
    origins.extend(trust.ca_pem.as_ref().map(|_| "the OpenUnison CA kept with the session".to_string()));
    origins.extend(trust.ca_data.as_ref().map(|_| "`--certificate-authority-data`".to_string()));
    if origins.is_empty() {
        return "no CA supplied".to_string();
    }
    format!("{count} supplied certificate(s), also pinned when self-signed, from {}", origins.join(", "))
}

fn pem_error(origin: String, problem: PemProblem) -> TrustError {
    match problem {
        PemProblem::Empty => TrustError::NoCertificate { origin },
        problem => TrustError::Malformed { origin, why: problem.to_string() },
    }
}

/// Reads a PEM bundle. A `lenient` bundle (`SSL_CERT_FILE`, often a whole
/// system store) may hold certificates webpki cannot parse; they are skipped as
/// long as at least one is usable.
fn read_bundle(path: &Path, origin: &str, lenient: bool) -> Result<Vec<CertificateDer<'static>>, TrustError> {
    let bytes = std::fs::read(path).map_err(|source| TrustError::Read { origin: origin.to_string(), source })?;
    let text = String::from_utf8_lossy(&bytes);
    if !lenient {
        return parse_pem_certificates(&text).map_err(|problem| pem_error(origin.to_string(), problem));
    }
    let normalised = normalise_line_ends(&text);
    let mut certs = Vec::new();
    for item in CertificateDer::pem_slice_iter(normalised.as_bytes()) {
        match item {
            Ok(cert) if rustls::RootCertStore::empty().add(cert.clone()).is_ok() => certs.push(cert),
            Ok(_) => {}
            Err(_) => {
                return parse_pem_certificates(&text)
                    .map_err(|problem| pem_error(origin.to_string(), problem))
                    .map(|_| Vec::new());
            }
        }
    }
    if certs.is_empty() {
        return Err(TrustError::NoCertificate { origin: origin.to_string() });
    }
    Ok(certs)
}

/// The platform's trusted roots. Errors are not fatal: a missing system store
/// is fine when the user supplied the CA.
fn load_system_roots(environment: &TrustEnvironment) -> Vec<CertificateDer<'static>> {
    #[cfg(all(unix, not(target_os = "macos")))]
    if !environment.ssl_cert_dir_set
        && let Some(bundle) = SYSTEM_CA_BUNDLES.iter().map(Path::new).find(|bundle| bundle.is_file())
    {
        // The distribution's bundle holds every system root. The probe behind
        // `load_native_certs` also reads each file of the hashed directory,
        // which doubles the cost of a refresh while other processes wait on
        // the session lock. (`SSL_CERT_FILE` is added as a supplied bundle.)
        let certs = rustls_native_certs::load_certs_from_paths(Some(bundle), None).certs;
        if !certs.is_empty() {
            return certs;
        }
    }
    #[cfg_attr(
        not(all(unix, not(target_os = "macos"))),
        expect(unused_mut, reason = "only there is the system store added below")
    )]
    let mut certs = rustls_native_certs::load_native_certs().certs;
    #[cfg(all(unix, not(target_os = "macos")))]
    if environment.ssl_cert_file.is_some() && !environment.ssl_cert_dir_set {
        // rustls-native-certs loaded only `SSL_CERT_FILE`; add the system store.
        for dir in SYSTEM_CA_DIRS.iter().map(Path::new).filter(|dir| dir.is_dir()) {
            certs.extend(rustls_native_certs::load_certs_from_paths(None, Some(dir)).certs);
        }
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = environment;
    certs
}

/// What to do about a CA certificate outside its validity period.
pub const OUT_OF_PERIOD_HINT: &str =
    "get the current CA certificate from the OpenUnison administrator and give it with `--certificate-authority`";

/// How the message about such a certificate starts.
pub const OUT_OF_PERIOD_PREFIX: &str = "the CA certificate ";

/// Where a time stands against a certificate's validity period: the one
/// comparison behind both a trust anchor left out for its dates and a pinned
/// server certificate refused for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Period {
    Within,
    /// After `notAfter` (Unix seconds).
    Expired {
        not_after: i64,
    },
    /// Before `notBefore` (Unix seconds).
    NotYetValid {
        not_before: i64,
    },
}

impl Period {
    /// `None` when the certificate's dates cannot be read.
    fn of(cert: &CertificateDer<'_>, now: UnixTime) -> Option<Period> {
        let (not_before, not_after) = der::validity(cert.as_ref())?;
        let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
        Some(if now > not_after {
            Period::Expired { not_after }
        } else if now < not_before {
            Period::NotYetValid { not_before }
        } else {
            Period::Within
        })
    }
}

/// A trust anchor left out because the time is outside its validity period.
#[derive(Debug)]
struct OutOfPeriod {
    cert: CertificateDer<'static>,
    /// The raw DER of its subject, to match the issuer of the server's chain.
    subject: Vec<u8>,
    /// `the CA certificate `CN=…` from `FILE` expired on DATE`.
    why: String,
}

impl OutOfPeriod {
    /// `Some` when `now` is outside `cert`'s validity period. A certificate
    /// whose dates cannot be read is left to webpki.
    fn check(cert: &CertificateDer<'static>, origin: &str, now: UnixTime) -> Option<OutOfPeriod> {
        let date = |secs: i64| {
            let time = std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(secs.max(0).unsigned_abs()));
            time.map(|time| humantime::format_rfc3339_seconds(time).to_string()).unwrap_or_else(|| secs.to_string())
        };
        let when = match Period::of(cert, now)? {
            Period::Within => return None,
            Period::Expired { not_after } => format!("expired on {} (notAfter)", date(not_after)),
            Period::NotYetValid { not_before } => format!("is not valid before {} (notBefore)", date(not_before)),
        };
        let subject = der::subject(cert.as_ref())?;
        let why = format!("{OUT_OF_PERIOD_PREFIX}`{}` from {origin} {when}", der::describe_name(subject));
        Some(OutOfPeriod { cert: cert.clone(), subject: subject.to_vec(), why })
    }

    /// Whether the server's chain needed this anchor: it is the server's own
    /// certificate, or it issued the server's or an intermediate certificate.
    fn serves(&self, end_entity: &CertificateDer<'_>, intermediates: &[CertificateDer<'_>]) -> bool {
        end_entity.as_ref() == self.cert.as_ref()
            || std::iter::once(end_entity)
                .chain(intermediates)
                .any(|cert| der::issuer(cert.as_ref()) == Some(self.subject.as_slice()))
    }
}

/// Why the handshake failed: an anchor the server's chain needed is outside
/// its validity period.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AnchorOutOfPeriod(pub String);

/// Delegates to webpki, and falls back to accepting a self-signed server
/// certificate that the user supplied explicitly (see the module docs).
#[derive(Debug)]
struct PinningVerifier {
    webpki: Arc<WebPkiServerVerifier>,
    /// Every certificate the user supplied; never the system roots.
    pinned: Vec<CertificateDer<'static>>,
    /// Anchors left out for their dates, to name when the chain needed one.
    out_of_period: Vec<OutOfPeriod>,
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
        let webpki_error =
            match self.webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
                Ok(verified) => return Ok(verified),
                Err(err) => err,
            };
        if !self.pinned.iter().any(|pinned| pinned.as_ref() == end_entity.as_ref()) {
            if let Some(stale) = self.out_of_period.iter().find(|stale| stale.serves(end_entity, intermediates)) {
                return Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
                    Arc::new(AnchorOutOfPeriod(stale.why.clone())),
                ))));
            }
            return Err(webpki_error);
        }
        verify_pinned(end_entity, server_name, now)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// The checks a pinned (user-supplied, self-signed) server certificate must
/// still pass: it names the server, and `now` is within its validity period.
fn verify_pinned(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let parsed = rustls::server::ParsedCertificate::try_from(end_entity)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    let problem = match Period::of(end_entity, now) {
        Some(Period::Within) => return Ok(()),
        Some(Period::Expired { .. }) => rustls::CertificateError::Expired,
        Some(Period::NotYetValid { .. }) => rustls::CertificateError::NotValidYet,
        None => rustls::CertificateError::BadEncoding,
    };
    Err(rustls::Error::InvalidCertificate(problem))
}

/// Just enough DER to read a certificate's validity period, which webpki does
/// not expose.
mod der {
    /// The TBS fields up to the subject: `(issuer, validity, subject)`, each
    /// the content of its SEQUENCE.
    fn tbs_names(cert: &[u8]) -> Option<(&[u8], &[u8], &[u8])> {
        let (certificate, _) = expect(cert, 0x30)?;
        let (tbs, _) = expect(certificate, 0x30)?;
        let mut rest = tbs;
        if rest.first() == Some(&0xa0) {
            rest = read(rest)?.2; // [0] version
        }
        rest = expect(rest, 0x02)?.1; // serialNumber
        rest = expect(rest, 0x30)?.1; // signature AlgorithmIdentifier
        let (issuer, rest) = expect(rest, 0x30)?;
        let (validity, rest) = expect(rest, 0x30)?;
        let (subject, _) = expect(rest, 0x30)?;
        Some((issuer, validity, subject))
    }

    /// `(notBefore, notAfter)` as Unix seconds.
    pub(super) fn validity(cert: &[u8]) -> Option<(i64, i64)> {
        let (_, validity, _) = tbs_names(cert)?;
        let (not_before, rest) = time(validity)?;
        let (not_after, rest) = time(rest)?;
        rest.is_empty().then_some((not_before, not_after))
    }

    /// The issuer Name's content (what webpki compares with an anchor's subject).
    pub(super) fn issuer(cert: &[u8]) -> Option<&[u8]> {
        tbs_names(cert).map(|(issuer, _, _)| issuer)
    }

    /// The subject Name's content.
    pub(super) fn subject(cert: &[u8]) -> Option<&[u8]> {
        tbs_names(cert).map(|(_, _, subject)| subject)
    }

    /// One SEQUENCE holding exactly a SEQUENCE (the TBS certificate) and more:
    /// what a certificate looks like from outside, without judging its content.
    pub(super) fn is_certificate_shaped(cert: &[u8]) -> bool {
        let Some((0x30, content, [])) = read(cert) else { return false };
        matches!(read(content), Some((0x30, _, rest)) if !rest.is_empty())
    }

    /// A Name's content as `CN=…, O=…` (the common attributes; others are
    /// left out), for messages, control characters escaped.
    pub(super) fn describe_name(name: &[u8]) -> String {
        let mut parts = Vec::new();
        let mut sets = name;
        for _ in 0..32 {
            let Some((0x31, set, rest)) = read(sets) else { break };
            sets = rest;
            let Some((0x30, pair, _)) = read(set) else { continue };
            let Some((0x06, oid, value)) = read(pair) else { continue };
            let Some((_, text, _)) = read(value) else { continue };
            let label = match oid {
                [0x55, 0x04, 0x03] => "CN",
                [0x55, 0x04, 0x0a] => "O",
                [0x55, 0x04, 0x0b] => "OU",
                [0x55, 0x04, 0x06] => "C",
                [0x55, 0x04, 0x07] => "L",
                [0x55, 0x04, 0x08] => "ST",
                _ => continue,
            };
            parts.push(format!("{label}={}", crate::output::sanitize_line(&String::from_utf8_lossy(text))));
        }
        if parts.is_empty() { "(no common name)".to_string() } else { parts.join(", ") }
    }

    /// One TLV: `(tag, content, rest)`. Only single-byte tags, which is all a
    /// certificate's outer structure uses.
    fn read(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, input) = input.split_first()?;
        let (&first, mut input) = input.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || input.len() < count {
                return None;
            }
            let (bytes, after) = input.split_at(count);
            input = after;
            bytes.iter().fold(0usize, |len, &byte| (len << 8) | usize::from(byte))
        };
        if input.len() < len {
            return None;
        }
        let (content, rest) = input.split_at(len);
        Some((tag, content, rest))
    }

    fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
        let (found, content, rest) = read(input)?;
        (found == tag).then_some((content, rest))
    }

    /// A UTCTime (`YYMMDDHHMMSSZ`) or GeneralizedTime (`YYYYMMDDHHMMSSZ`).
    fn time(input: &[u8]) -> Option<(i64, &[u8])> {
        let (tag, content, rest) = read(input)?;
        let text = std::str::from_utf8(content).ok()?;
        let digits = text.strip_suffix('Z')?;
        if !digits.bytes().all(|byte| byte.is_ascii_digit()) {
            return None;
        }
        let (year, digits) = match (tag, digits.len()) {
            (0x17, 12) => {
                let short: i64 = digits[..2].parse().ok()?;
                (if short >= 50 { 1900 + short } else { 2000 + short }, &digits[2..])
            }
            (0x18, 14) => (digits[..4].parse().ok()?, &digits[4..]),
            _ => return None,
        };
        let field = |at: usize| -> Option<i64> { digits.get(at..at + 2)?.parse().ok() };
        let (month, day, hour, minute, second) = (field(0)?, field(2)?, field(4)?, field(6)?, field(8)?);
        if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
        Some((seconds, rest))
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
    fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
        let year = if month <= 2 { year - 1 } else { year };
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let month_index = (month + 9) % 12;
        let day_of_year = (153 * month_index + 2) / 5 + day - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        era * 146_097 + day_of_era - 719_468
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn civil_dates_count_from_the_epoch() {
            assert_eq!(days_from_civil(1970, 1, 1), 0);
            assert_eq!(days_from_civil(2000, 3, 1), 11_017);
            assert_eq!(days_from_civil(2024, 2, 29), 19_782);
            assert_eq!(days_from_civil(1969, 12, 31), -1);
        }

        #[test]
        fn garbage_has_no_validity() {
            assert_eq!(validity(b""), None);
            assert_eq!(validity(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
            assert_eq!(validity(&[0x30, 0x02, 0x30, 0x00]), None);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::openunison::testing::{
        Reply, TestCert, TestServer, ca_and_leaf, ca_and_leaf_with, self_signed, self_signed_leaf,
    };

    async fn tls_server(cert: &TestCert) -> SocketAddr {
        TestServer::spawn(cert, Arc::new(|_| Reply::html(200, "ok"))).await.addr
    }

    fn sources(supplied_pem: &str) -> TrustSources {
        let mut sources = TrustSources::default();
        sources
            .add_trust_config(&TrustConfig { ca_file: None, ca_pem: Some(supplied_pem.to_string()), ca_data: None })
            .unwrap();
        sources
    }

    /// Connects to `addr` as `server_name` with `config`; `Ok` when the
    /// handshake (and so the certificate check) succeeded.
    async fn handshake(config: rustls::ClientConfig, addr: SocketAddr, server_name: &str) -> Result<(), String> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(server_name.to_string()).unwrap();
        let mut tls = connector.connect(name, stream).await.map_err(|err| err.to_string())?;
        tls.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n").await.map_err(|err| err.to_string())?;
        let mut body = Vec::new();
        let _ = tls.read_to_end(&mut body).await;
        Ok(())
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn a_leaf_signed_by_a_supplied_ca_is_trusted() {
        let (ca, leaf) = ca_and_leaf(&["127.0.0.1", "localhost"]);
        runtime().block_on(async {
            let addr = tls_server(&leaf).await;
            handshake(sources(&ca.cert_pem).client_config().unwrap(), addr, "127.0.0.1").await.unwrap();
            // The same leaf without its CA is not.
            let unrelated = self_signed(&["127.0.0.1"]);
            let err =
                handshake(sources(&unrelated.cert_pem).client_config().unwrap(), addr, "127.0.0.1").await.unwrap_err();
            assert!(err.contains("UnknownIssuer"), "{err}");
        });
    }

    #[test]
    fn a_supplied_self_signed_ca_certificate_is_accepted_as_the_server_certificate() {
        let cert = self_signed(&["localhost", "127.0.0.1"]);
        runtime().block_on(async {
            let addr = tls_server(&cert).await;
            handshake(sources(&cert.cert_pem).client_config().unwrap(), addr, "localhost").await.unwrap();
            handshake(sources(&cert.cert_pem).client_config().unwrap(), addr, "127.0.0.1").await.unwrap();
        });
    }

    #[test]
    fn webpki_alone_rejects_the_self_signed_ca_certificate() {
        // Documents why the pinning fallback exists.
        let cert = self_signed(&["localhost"]);
        runtime().block_on(async {
            let addr = tls_server(&cert).await;
            let mut roots = rustls::RootCertStore::empty();
            roots.add_parsable_certificates(parse_pem_certificates(&cert.cert_pem).unwrap());
            let config =
                rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                    .with_safe_default_protocol_versions()
                    .unwrap()
                    .with_root_certificates(roots)
                    .with_no_client_auth();
            let err = handshake(config, addr, "localhost").await.unwrap_err();
            assert!(err.contains("CaUsedAsEndEntity"), "{err}");
        });
    }

    #[test]
    fn a_self_signed_certificate_that_was_not_supplied_is_refused() {
        let served = self_signed(&["localhost"]);
        let other = self_signed(&["localhost"]);
        runtime().block_on(async {
            let addr = tls_server(&served).await;
            let err =
                handshake(sources(&other.cert_pem).client_config().unwrap(), addr, "localhost").await.unwrap_err();
            assert!(err.contains("CaUsedAsEndEntity"), "{err}");
        });
    }

    #[test]
    fn a_self_signed_system_root_is_not_pinned() {
        // Only what the user supplied may be accepted as the server's own certificate.
        let served = self_signed(&["localhost"]);
        let sources = TrustSources { system: parse_pem_certificates(&served.cert_pem).unwrap(), supplied: Vec::new() };
        runtime().block_on(async {
            let addr = tls_server(&served).await;
            let err = handshake(sources.client_config().unwrap(), addr, "localhost").await.unwrap_err();
            assert!(err.contains("CaUsedAsEndEntity"), "{err}");
        });
    }

    #[test]
    fn a_pinned_certificate_for_another_name_is_refused() {
        let cert = self_signed(&["ou.example.com"]);
        runtime().block_on(async {
            let addr = tls_server(&cert).await;
            let err = handshake(sources(&cert.cert_pem).client_config().unwrap(), addr, "localhost").await.unwrap_err();
            assert!(err.contains("not valid for name"), "{err}");
            let err = handshake(sources(&cert.cert_pem).client_config().unwrap(), addr, "127.0.0.1").await.unwrap_err();
            assert!(err.contains("not valid for name"), "{err}");
        });
    }

    #[test]
    fn a_pinned_certificate_outside_its_validity_is_refused() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().clone();
        let name = ServerName::try_from("localhost").unwrap();
        let at = |secs| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
        // 2001-06-01
        assert!(verify_pinned(&der, &name, at(991_353_600)).is_ok());
        // 2003-01-01 and 2000-01-01
        assert!(matches!(
            verify_pinned(&der, &name, at(1_041_379_200)),
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::Expired))
        ));
        assert!(matches!(
            verify_pinned(&der, &name, at(946_684_800)),
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidYet))
        ));
    }

    /// A CA valid only in 2001, with a current leaf for `localhost` under it.
    fn expired_ca_and_leaf() -> (TestCert, TestCert) {
        ca_and_leaf_with(&["localhost"], |params| {
            params.distinguished_name.push(rcgen::DnType::CommonName, "old test CA");
            params.not_before = rcgen::date_time_ymd(2001, 1, 1);
            params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        })
    }

    /// Supplied `pem` (as a `--certificate-authority` file would be) beside an
    /// unrelated system root, so that the store is never empty.
    fn sources_with_system_root(pem: &str) -> TrustSources {
        let mut sources = sources(pem);
        sources.system = parse_pem_certificates(&self_signed(&["elsewhere.example"]).cert_pem).unwrap();
        sources
    }

    #[test]
    fn an_expired_ca_is_not_trusted_and_is_named() {
        let (ca, leaf) = expired_ca_and_leaf();
        runtime().block_on(async {
            let addr = tls_server(&leaf).await;
            let err = handshake(sources_with_system_root(&ca.cert_pem).client_config().unwrap(), addr, "localhost")
                .await
                .unwrap_err();
            assert!(err.contains("`CN=old test CA`") && err.contains("expired on 2002-01-01T00:00:00Z"), "{err}");
        });
        // Within its dates the same CA is not left out.
        let der = parse_pem_certificates(&ca.cert_pem).unwrap().remove(0);
        let in_2001 = UnixTime::since_unix_epoch(std::time::Duration::from_secs(991_353_600));
        assert!(OutOfPeriod::check(&der, "`ca.pem`", in_2001).is_none());
        let stale = OutOfPeriod::check(&der, "`ca.pem`", UnixTime::now()).unwrap();
        assert!(stale.why.contains("from `ca.pem` expired on 2002-01-01T00:00:00Z (notAfter)"), "{}", stale.why);
        // Nothing else to trust: the configuration itself names it.
        let err = sources(&ca.cert_pem).client_config().unwrap_err();
        assert!(matches!(err, TrustError::OutOfPeriod { .. }), "{err:?}");
        assert!(err.to_string().contains("CN=old test CA") && err.to_string().contains("2002-01-01"), "{err}");
        assert!(err.hint().unwrap().contains("--certificate-authority"));
    }

    #[test]
    fn a_ca_not_yet_valid_is_not_trusted() {
        let (ca, leaf) = ca_and_leaf_with(&["localhost"], |params| {
            params.not_before = rcgen::date_time_ymd(2090, 1, 1);
            params.not_after = rcgen::date_time_ymd(2091, 1, 1);
        });
        runtime().block_on(async {
            let addr = tls_server(&leaf).await;
            let err = handshake(sources_with_system_root(&ca.cert_pem).client_config().unwrap(), addr, "localhost")
                .await
                .unwrap_err();
            assert!(err.contains("is not valid before 2090-01-01T00:00:00Z"), "{err}");
        });
    }

    #[test]
    fn an_expired_self_signed_server_certificate_is_named() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "old self-signed");
        params.not_before = rcgen::date_time_ymd(2001, 1, 1);
        params.not_after = rcgen::date_time_ymd(2002, 1, 1);
        let cert = params.self_signed(&key).unwrap();
        let served = TestCert { cert_pem: cert.pem(), key_pem: key.serialize_pem() };
        runtime().block_on(async {
            let addr = tls_server(&served).await;
            let err = handshake(sources_with_system_root(&served.cert_pem).client_config().unwrap(), addr, "localhost")
                .await
                .unwrap_err();
            assert!(err.contains("`CN=old self-signed`") && err.contains("expired on 2002-01-01"), "{err}");
        });
    }

    #[test]
    fn a_self_signed_leaf_is_its_own_trust_anchor() {
        // The OpenUnison chart's default `unison-ca` (CA:FALSE).
        let cert = self_signed_leaf(&["localhost", "127.0.0.1"]);
        runtime().block_on(async {
            let addr = tls_server(&cert).await;
            handshake(sources(&cert.cert_pem).client_config().unwrap(), addr, "localhost").await.unwrap();
            handshake(sources(&cert.cert_pem).client_config().unwrap(), addr, "127.0.0.1").await.unwrap();
            let other = self_signed_leaf(&["localhost"]);
            handshake(sources(&other.cert_pem).client_config().unwrap(), addr, "localhost").await.unwrap_err();
        });
    }

    #[test]
    fn certificates_webpki_cannot_read_are_still_decoded() {
        // Over 64 KiB (webpki's limit; Go's x509 has none), as an odd extension would make it.
        let (ca, _) = ca_and_leaf_with(&["localhost"], |params| {
            params.custom_extensions =
                vec![rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 99999, 1], vec![0x04; 70_000])];
        });
        assert!(matches!(parse_pem_certificates(&ca.cert_pem), Err(PemProblem::BadCertificate { index: 1 })));
        assert_eq!(decode_pem_certificates(&ca.cert_pem).unwrap().len(), 1);
        assert!(matches!(decode_pem_certificates("hello"), Err(PemProblem::Empty)));
        let lines: Vec<&str> = ca.cert_pem.lines().collect();
        let mut cut = lines.clone();
        cut.remove(3);
        assert!(decode_pem_certificates(&cut.join("\n")).is_err(), "a line missing breaks the DER framing");
    }

    #[test]
    fn the_environments_ssl_cert_file_is_a_supplied_bundle_and_nothing_else_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, _) = ca_and_leaf(&["localhost"]);
        let bundle = dir.path().join("bundle.pem");
        std::fs::write(&bundle, &ca.cert_pem).unwrap();
        let environment = TrustEnvironment { ssl_cert_file: Some(bundle.clone()), ssl_cert_dir_set: false };
        let sources = TrustSources::load(&TrustConfig::default(), &environment).unwrap();
        let origins: Vec<&str> = sources.supplied.iter().map(|(_, origin)| origin.as_str()).collect();
        assert_eq!(origins, [format!("`{}` (`SSL_CERT_FILE`)", bundle.display())]);
        // What the settings resolved is all there is: no environment, no extra bundle.
        let without = TrustSources::load(&TrustConfig::default(), &TrustEnvironment::default()).unwrap();
        assert!(without.supplied.is_empty());
    }

    #[test]
    fn the_supplied_ca_is_given_back_as_certificates_only() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, leaf) = ca_and_leaf(&["localhost"]);
        let file = dir.path().join("ca-and-key.pem");
        std::fs::write(&file, format!("{}{}", ca.cert_pem, leaf.key_pem).replace('\n', "\r\n")).unwrap();
        let trust = TrustConfig { ca_file: Some(file), ca_pem: None, ca_data: None };
        let pem = supplied_ca_pem(&trust).unwrap().unwrap();
        assert_eq!(pem, ca.cert_pem.replace("\r\n", "\n"));
        assert!(!pem.contains("PRIVATE KEY"));
        assert_eq!(supplied_ca_pem(&TrustConfig::default()).unwrap(), None);
    }

    #[test]
    fn validity_is_read_from_utc_and_generalized_times() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(1999, 12, 31);
        params.not_after = rcgen::date_time_ymd(2051, 3, 1);
        let cert = params.self_signed(&key).unwrap();
        // 1999-12-31T00:00:00Z and 2051-03-01T00:00:00Z
        assert_eq!(der::validity(cert.der()), Some((946_598_400, 2_561_241_600)));
    }

    #[test]
    fn pem_bundles_are_parsed_strictly() {
        let (ca, leaf) = ca_and_leaf(&["localhost"]);
        let both = format!("{}{}", ca.cert_pem, leaf.cert_pem);
        assert_eq!(parse_pem_certificates(&both).unwrap().len(), 2);
        assert_eq!(parse_pem_certificates(&both.replace('\n', "\r\n")).unwrap().len(), 2);
        assert_eq!(parse_pem_certificates("hello"), Err(PemProblem::Empty));
        assert_eq!(parse_pem_certificates(""), Err(PemProblem::Empty));
        let truncated = &ca.cert_pem[..ca.cert_pem.len() / 2];
        assert_eq!(parse_pem_certificates(truncated), Err(PemProblem::Truncated));
        // Lines dropped from the middle: valid base64, invalid DER.
        let lines: Vec<&str> = ca.cert_pem.lines().collect();
        let mut cut = lines.clone();
        cut.remove(3);
        let cut = cut.join("\n");
        assert!(matches!(
            parse_pem_certificates(&cut),
            Err(PemProblem::BadCertificate { index: 1 } | PemProblem::BadBase64 { index: 1 })
        ));
        let mut garbled = lines;
        garbled[2] = "!!!!";
        assert!(parse_pem_certificates(&garbled.join("\n")).is_err());
    }

    #[test]
    fn ca_files_that_are_missing_or_not_pem_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = TrustSources::default()
            .add_trust_config(&TrustConfig { ca_file: Some(missing.clone()), ca_pem: None, ca_data: None })
            .unwrap_err();
        assert!(err.to_string().contains(&missing.display().to_string()), "{err}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let err = TrustSources::default()
            .add_trust_config(&TrustConfig { ca_file: Some(junk.clone()), ca_pem: None, ca_data: None })
            .unwrap_err();
        assert!(matches!(err, TrustError::NoCertificate { .. }));
        assert!(err.to_string().contains(&junk.display().to_string()), "{err}");
        let (ca, _) = ca_and_leaf(&["localhost"]);
        let crlf = dir.path().join("crlf.pem");
        std::fs::write(&crlf, ca.cert_pem.replace('\n', "\r\n")).unwrap();
        let mut sources = TrustSources::default();
        sources.add_trust_config(&TrustConfig { ca_file: Some(crlf), ca_pem: None, ca_data: None }).unwrap();
        assert_eq!(sources.supplied.len(), 1);
    }

    #[test]
    fn the_system_store_is_loaded_without_the_user_bundle() {
        // Nothing to assert about its content here; it must not fail.
        let _ = load_system_roots(&TrustEnvironment::default());
        assert!(matches!(TrustSources::default().client_config(), Err(TrustError::NoRoots)));
    }
}
