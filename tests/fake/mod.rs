//! Test doubles shared by the integration tests (`tests/cli.rs`) and the
//! sandbox (`examples/sandbox.rs`): a strict fake OpenUnison, a fake Kubernetes
//! API server, a fake browser, and the TLS and HTTP plumbing they stand on.
//! Everything listens on 127.0.0.1 only, on ephemeral ports, each server on its
//! own thread with its own tokio runtime, so synchronous tests can drive it.

// Shared by the test binary and two examples, each of which uses only part of
// it: what one of them leaves unused is not dead.
#![allow(dead_code, unused_imports)]

pub mod browser;
pub mod client;
pub mod gson;
pub mod jwt;
pub mod kube_api;
pub mod kubeconfigs;
pub mod openunison;
pub mod pki;
pub mod server;

pub use browser::{BrowserMode, FakeBrowser};
pub use client::{TestClient, TestResponse};
pub use openunison::{FakeConfig, FakeOpenUnison, Fault};

/// Seconds since the Unix epoch, as JWT claims count time.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// Fresh random bytes from the OS RNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new().fill(&mut bytes).expect("the OS RNG works");
    bytes
}

/// A random lower-case hex string of `2 * N` characters.
pub fn random_hex<const N: usize>() -> String {
    random_bytes::<N>().iter().map(|byte| format!("{byte:02x}")).collect()
}
