//! Proxies: with `HTTPS_PROXY` set, an error names the proxy (never its
//! credentials), and a proxy that answers 407 is said to need authentication.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::common::Output;

use super::hostile::Scene;

/// A proxy on a loopback port that answers every `CONNECT` with 407, for at
/// most `connections` connections or 30 s. Returns its port and the request
/// lines it saw.
fn proxy_requiring_authentication(connections: usize) -> (u16, std::thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        while seen.len() < connections && Instant::now() < deadline {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            stream.set_nonblocking(false).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut request = Vec::new();
            let mut buffer = [0u8; 1024];
            while !request.windows(4).any(|window| window == b"\r\n\r\n") && request.len() < 16 * 1024 {
                match stream.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buffer[..n]),
                }
            }
            seen.push(String::from_utf8_lossy(&request).lines().next().unwrap_or_default().to_string());
            let _ = stream.write_all(
                b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
        seen
    });
    (port, handle)
}

/// The `error:` line of a failed run.
fn error_line(output: &Output) -> &str {
    output.stderr.lines().find(|line| line.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{output}"))
}

#[test]
fn a_proxy_asking_for_authentication_is_named_without_its_credentials() {
    let scene = Scene::new().logged_in();
    scene.expire_session_token();
    let (port, proxy) = proxy_requiring_authentication(2);
    let through_proxy = |proxy_url: String| {
        scene.env.oulogin(scene.token_args()).env("HTTPS_PROXY", proxy_url).env("OULOGIN_DEBUG", "1").run()
    };
    let token = through_proxy(format!("http://127.0.0.1:{port}"));
    token.assert_code(1);
    let error = error_line(&token);
    assert!(error.contains(&format!("through the proxy `http://127.0.0.1:{port}`")), "{token}");
    assert!(error.contains("the proxy requires proxy authentication (HTTP 407)"), "{token}");
    assert!(token.stderr.contains("HTTPS_PROXY=http://USER:PASSWORD@HOST:PORT"), "the hint says how:\n{token}");
    let request = format!("debug: HTTP POST {}/auth/idp/k8sIdp/token -> failed after ", scene.fake.base_url());
    let through = format!(" ms, through the proxy http://127.0.0.1:{port}: ");
    assert!(token.stderr.lines().any(|line| line.starts_with(&request) && line.contains(&through)), "{token}");

    // With credentials in the proxy URL, the proxy refused them; they are never shown.
    let refused = through_proxy(format!("http://jdoe:s3cret-proxy-pw@127.0.0.1:{port}"));
    refused.assert_code(1);
    let error = error_line(&refused);
    assert!(error.contains(&format!("through the proxy `http://127.0.0.1:{port}`")), "{refused}");
    assert!(error.contains("refused the user name and password in the proxy URL"), "{refused}");
    assert!(!refused.stderr.contains("s3cret-proxy-pw") && !refused.stderr.contains("jdoe"), "{refused}");
    let connect = format!("CONNECT {} HTTP/1.1", scene.fake.host());
    assert_eq!(proxy.join().unwrap(), [connect.clone(), connect]);
    // The session is kept for when the proxy lets us through.
    let direct = scene.token();
    direct.assert_success();
}

#[test]
fn a_dead_proxy_is_named_and_no_proxy_bypasses_it() {
    let scene = Scene::new().logged_in();
    scene.expire_session_token();
    let dead = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let through_dead_proxy = || scene.env.oulogin(scene.token_args()).env("HTTPS_PROXY", format!("127.0.0.1:{dead}"));
    let token = through_dead_proxy().run();
    token.assert_code(1);
    let error = error_line(&token);
    let endpoint = format!("{}/auth/idp/k8sIdp/token", scene.fake.base_url());
    assert!(error.contains(&endpoint) && error.contains(&format!("the proxy `http://127.0.0.1:{dead}`")), "{token}");
    assert!(token.stderr.contains("`NO_PROXY`"), "{token}");

    // `NO_PROXY` sends the request past the proxy, straight to OpenUnison.
    let direct = through_dead_proxy().env("NO_PROXY", "127.0.0.1").run();
    direct.assert_success();
    assert!(!direct.stderr.contains("proxy"), "{direct}");
}
