//! A real browser end to end (issue 6): headless Chromium, started through
//! `--browser-command`, follows the whole login against the fake OpenUnison
//! over HTTPS (`/cli-login` → our loopback listener → authorization →
//! `/redirect` → "Login Complete"), and then the real kubectl works through the
//! written context. Chromium trusts the fake's certificate through an SPKI pin
//! of the fake's own leaf, nothing broader. `scripts/test` installs Chromium; a
//! machine without it fails this test rather than skipping it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

use crate::common::{TestContext, free_port};
use crate::fake::{FakeConfig, FakeOpenUnison};

/// How long Chromium may run before its wrapper kills it.
const CHROMIUM_LIMIT_SECS: u64 = 60;

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "Chromium is not installed (looked for /usr/bin/chromium): `scripts/test` installs Debian's \
                 `chromium` package; run the tests through it, or `apt-get install chromium`"
            )
        })
}

/// The server's leaf certificate, as a TLS client sees it.
fn leaf_certificate(fake: &FakeOpenUnison) -> Vec<u8> {
    let config = Arc::new(crate::fake::client::client_config(&[&fake.ca_pem()]));
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    let mut connection = rustls::ClientConnection::new(config, name).unwrap();
    let mut socket = std::net::TcpStream::connect(fake.host()).unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    socket.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..20 {
        if !connection.is_handshaking() {
            break;
        }
        connection.complete_io(&mut socket).expect("TLS handshake with the fake");
    }
    assert!(!connection.is_handshaking(), "the handshake did not finish");
    connection.peer_certificates().expect("the server sent certificates")[0].to_vec()
}

/// One DER element at the start of `input`: (tag, header length, whole length).
fn der_element(input: &[u8]) -> (u8, usize, usize) {
    let tag = input[0];
    let first = input[1] as usize;
    let (header, length) = if first < 0x80 {
        (2, first)
    } else {
        let count = first & 0x7f;
        assert!((1..=4).contains(&count), "DER length of {count} bytes");
        (2 + count, input[2..2 + count].iter().fold(0usize, |length, byte| (length << 8) | *byte as usize))
    };
    (tag, header, header + length)
}

/// base64(SHA-256(SubjectPublicKeyInfo)), what `--ignore-certificate-errors-spki-list` takes.
fn spki_pin(certificate: &[u8]) -> String {
    // Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version, serialNumber,
    //   signature, issuer, validity, subject, subjectPublicKeyInfo, … }, … }
    let (_, header, _) = der_element(certificate);
    let tbs = &certificate[header..];
    let (_, tbs_header, tbs_length) = der_element(tbs);
    let mut rest = &tbs[tbs_header..tbs_length];
    if rest[0] == 0xa0 {
        rest = &rest[der_element(rest).2..];
    }
    for _ in 0..5 {
        rest = &rest[der_element(rest).2..];
    }
    let (tag, _, spki_length) = der_element(rest);
    assert_eq!(tag, 0x30, "subjectPublicKeyInfo is a SEQUENCE");
    let digest = ring::digest::digest(&ring::digest::SHA256, &rest[..spki_length]);
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

/// A `--browser-command` script: Chromium as the docs say, with a
/// new empty profile, the SPKI pin, and `--dump-dom` so it loads the page
/// (following every redirect) and exits; `timeout` kills it if it does not.
/// It writes `exit` (Chromium's status) when done, and fails unless the page
/// it ended on is OpenUnison's "Login Complete".
fn write_browser_script(dir: &Path, chromium: &Path, pin: &str) -> PathBuf {
    let profile = dir.join("profile");
    std::fs::create_dir(&profile).unwrap();
    let script = dir.join("browser.sh");
    let text = format!(
        "#!/bin/sh\n\
         # The plugin appends the URL. Our output goes to files, so the plugin's pipes close with it.\n\
         exec >'{log}' 2>&1\n\
         timeout -k 5 {limit} '{chromium}' --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \\\n\
         \t--disable-background-networking --disable-component-update --disable-sync \\\n\
         \t--user-data-dir='{profile}' --ignore-certificate-errors-spki-list='{pin}' \\\n\
         \t--dump-dom \"$1\" >'{dom}'\n\
         status=$?\n\
         echo $status >'{exit}.tmp' && mv '{exit}.tmp' '{exit}'\n\
         # A browser that did not reach the finished page failed; the plugin says so.\n\
         [ $status -eq 0 ] && grep -q 'Login Complete' '{dom}'\n",
        log = dir.join("chromium.log").display(),
        limit = CHROMIUM_LIMIT_SECS,
        chromium = chromium.display(),
        profile = profile.display(),
        pin = pin,
        dom = dir.join("dom.html").display(),
        exit = dir.join("exit").display(),
    );
    for path in [dir, chromium] {
        assert!(!path.to_string_lossy().contains('\''), "`{}` fits in single quotes", path.display());
    }
    let mut file = std::fs::File::create(&script).unwrap();
    file.write_all(text.as_bytes()).unwrap();
    drop(file);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[test]
fn headless_chromium_logs_in_over_https_and_real_kubectl_then_works() {
    let chromium = chromium();
    let port = free_port();
    let TestContext { env, fake, .. } = TestContext::with_config(FakeConfig::with_redirect_port(port));
    let dir = env.root().join("chromium");
    std::fs::create_dir(&dir).unwrap();
    let script = write_browser_script(&dir, &chromium, &spki_pin(&leaf_certificate(&fake)));

    let ca = fake.ca_file().display().to_string();
    let mut login = env
        .oulogin([
            "--host",
            &fake.host(),
            "--certificate-authority",
            &ca,
            "--port",
            &port.to_string(),
            "--browser-command",
            &script.display().to_string(),
            "--timeout",
            "90s",
        ])
        .spawn();

    // The login ends when the browser reaches our listener; Chromium exits by
    // itself after dumping the final page, or its wrapper kills it. A Chromium
    // that ended elsewhere (a certificate error page) ends the wait early.
    let exit_file = dir.join("exit");
    let deadline = Instant::now() + Duration::from_secs(CHROMIUM_LIMIT_SECS + 30);
    let mut chromium_done_at = None;
    while Instant::now() < deadline {
        if exit_file.exists() {
            let done_at = *chromium_done_at.get_or_insert_with(Instant::now);
            if !login.is_running() || done_at.elapsed() > Duration::from_secs(5) {
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let login = login.wait(Duration::from_secs(5));
    let chromium_log = std::fs::read_to_string(dir.join("chromium.log")).unwrap_or_default();
    let dom = std::fs::read_to_string(dir.join("dom.html")).unwrap_or_default();
    let chromium_exit = std::fs::read_to_string(&exit_file).unwrap_or_default();
    let report = format!(
        "{login}\n--- chromium exit ---\n{chromium_exit}\n--- page ---\n{dom}\n--- chromium log ---\n{chromium_log}"
    );
    login.assert_success();
    assert_eq!(chromium_exit.trim(), "0", "Chromium exited by itself after the login:\n{report}");
    assert!(dom.contains("Login Complete"), "Chromium ended on OpenUnison's finished page:\n{report}");
    assert_eq!(fake.cli_login_hits(), 1, "{report}");
    assert_eq!(fake.code_exchanges(), 1, "{report}");
    assert_eq!(fake.sessions_minted(), 1, "{report}");

    let output = env.kubectl(["get", "--raw", "/api/v1/namespaces/default"]).timeout(Duration::from_secs(30)).run();
    output.assert_success();
    assert!(output.stdout.contains("\"name\":\"default\""), "{output}");
}
