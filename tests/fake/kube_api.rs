//! The fake Kubernetes API server: HTTPS on loopback with a leaf from the
//! fake's CA, accepting only `Authorization: Bearer <k8sIdp JWT>` (RS256 by
//! the fake OpenUnison's key, `iss` = its k8sIdp issuer, `aud` `kubernetes`,
//! not expired). Serves just enough for `kubectl get --raw` and `kubectl proxy`;
//! everything else gets a 401 Status (bad token) or a 404 Status.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::jwt::{self, Signer};
use super::now_secs;
use super::pki::ServerIdentity;
use super::server::{self, Request, Response, TlsServer};

struct Shared {
    issuer: String,
    signer: Signer,
    clock_offset_secs: i64,
    host: String,
    ok_requests: AtomicU64,
    unauthorized_requests: AtomicU64,
    reject_all: AtomicBool,
    last_rejection: Mutex<Option<String>>,
    log: Mutex<Vec<(String, u16)>>,
}

pub struct FakeKubeApi {
    server: TlsServer,
    shared: Arc<Shared>,
    ca_pem: String,
}

impl FakeKubeApi {
    /// Trusts tokens from the k8sIdp `issuer` (e.g. `https://127.0.0.1:PORT/auth/idp/k8sIdp`).
    pub fn start(identity: ServerIdentity, issuer: String) -> FakeKubeApi {
        FakeKubeApi::start_with_clock(identity, issuer, 0)
    }

    /// [`FakeKubeApi::start`], judging `exp` and `nbf` by a clock this many
    /// seconds ahead of the machine's (the fake OpenUnison's, when it has one).
    pub fn start_with_clock(identity: ServerIdentity, issuer: String, clock_offset_secs: i64) -> FakeKubeApi {
        let listener = TlsServer::bind_loopback();
        let host = format!("127.0.0.1:{}", listener.local_addr().expect("listener address").port());
        let shared = Arc::new(Shared {
            issuer,
            signer: Signer::published(),
            clock_offset_secs,
            host,
            ok_requests: AtomicU64::new(0),
            unauthorized_requests: AtomicU64::new(0),
            reject_all: AtomicBool::new(false),
            last_rejection: Mutex::new(None),
            log: Mutex::new(Vec::new()),
        });
        let handler_shared = shared.clone();
        let handler: server::Handler = Arc::new(move |request| {
            let shared = handler_shared.clone();
            Box::pin(async move { shared.handle(&request) })
        });
        let server = TlsServer::start("kubernetes-api", listener, identity.server_config(), handler);
        FakeKubeApi { server, shared, ca_pem: identity.trust_pem }
    }

    /// `https://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("https://{}", self.shared.host)
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The PEM of the CA that issued this server's certificate.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Requests answered with 200.
    pub fn ok_requests(&self) -> u64 {
        self.shared.ok_requests.load(Ordering::SeqCst)
    }

    /// Requests refused with 401.
    pub fn unauthorized_requests(&self) -> u64 {
        self.shared.unauthorized_requests.load(Ordering::SeqCst)
    }

    /// Every request as `METHOD /path` with the status it got.
    pub fn requests(&self) -> Vec<(String, u16)> {
        self.shared.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Why the last 401 was given (never the token itself).
    pub fn last_rejection(&self) -> Option<String> {
        self.shared.last_rejection.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Refuse every token (as after a revocation) until switched off again.
    pub fn set_reject_all(&self, reject: bool) {
        self.shared.reject_all.store(reject, Ordering::SeqCst);
    }
}

impl Shared {
    fn handle(&self, request: &Request) -> Response {
        let response = self.respond(request);
        let line = format!("{} {}", request.method, request.uri.path());
        self.log.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push((line, response.status().as_u16()));
        response
    }

    fn respond(&self, request: &Request) -> Response {
        if let Err(why) = self.authenticate(request) {
            self.unauthorized_requests.fetch_add(1, Ordering::SeqCst);
            *self.last_rejection.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(why);
            return status(401, "Unauthorized", "Unauthorized");
        }
        let body = match (request.method.as_str(), request.uri.path()) {
            ("GET", "/version") => version(),
            ("GET", "/api") => json!({
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": self.host}],
            }),
            ("GET", "/apis") => json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}),
            ("GET", "/api/v1") => api_v1_resources(),
            ("GET", "/api/v1/namespaces/default") => default_namespace(),
            _ => {
                return status(404, "NotFound", "the server could not find the requested resource");
            }
        };
        self.ok_requests.fetch_add(1, Ordering::SeqCst);
        server::json(200, &body)
    }

    fn authenticate(&self, request: &Request) -> Result<(), String> {
        if self.reject_all.load(Ordering::SeqCst) {
            return Err("rejecting every token".into());
        }
        let header = request.header("authorization").ok_or("no Authorization header")?;
        let token = header.strip_prefix("Bearer ").ok_or("not a bearer token")?.trim();
        let claims = self.signer.verify(token)?;
        jwt::check_claims(&claims, &self.issuer, "kubernetes", now_secs() + self.clock_offset_secs)
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    server::json(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }),
    )
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0",
        "gitCommit": "70d3cc986aa8221cd1dfb1121852688902d3bf53",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T17:59:15Z",
        "goVersion": "go1.23.3",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

fn api_v1_resources() -> Value {
    json!({
        "kind": "APIResourceList",
        "groupVersion": "v1",
        "resources": [{
            "name": "namespaces",
            "singularName": "namespace",
            "namespaced": false,
            "kind": "Namespace",
            "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            "shortNames": ["ns"],
        }],
    })
}

fn default_namespace() -> Value {
    json!({
        "kind": "Namespace",
        "apiVersion": "v1",
        "metadata": {
            "name": "default",
            "uid": "4f3b2c1a-0000-4000-8000-000000000001",
            "resourceVersion": "42",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"kubernetes.io/metadata.name": "default"},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}
