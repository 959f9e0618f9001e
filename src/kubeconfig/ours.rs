//! The entries this plugin owns in a kubeconfig: recognising them (ours,
//! with an exec stanza that calls `kubectl-oulogin token`, or the old Go
//! plugin's `auth-provider: oidc`, and the contexts `logout` left), building
//! the stanzas, choosing names that never overwrite another host's or a
//! foreign entry, and the change plans of login and logout side by side.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::kubeconfig::{Change, Kubeconfigs, NamedContext};
use crate::openunison::{Bootstrap, Host, TrustConfig};
use crate::session::SessionLocation;
use crate::session::logouts::{LoggedOut, Notes};

/// The program name written into exec stanzas: the plugin's name, not an install
/// path, so that krew upgrades and moves keep working.
pub const PLUGIN_COMMAND: &str = "kubectl-oulogin";

/// How kubectl should tell a user that the plugin is missing. Through this
/// project's krew index: the default index's `oulogin` is an older,
/// deprecated plugin.
pub const INSTALL_HINT: &str = concat!(
    "kubectl-oulogin is not on PATH; install it with `kubectl krew index add oulogin ",
    env!("CARGO_PKG_REPOSITORY"),
    "` and then `kubectl krew install oulogin/oulogin`, or with `cargo install kubectl-oulogin`"
);

/// Where the session behind an exec stanza lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionRef {
    /// `--session NAME`: `$KUBECACHEDIR/oulogin/NAME.json`.
    Named(String),
    /// `--session-file PATH`: an isolated session.
    File(PathBuf),
}

impl SessionRef {
    /// The session files this reference names; `None` for a name that is not a
    /// plain file stem (never produced by us).
    pub fn location(&self, session_dir: &Path) -> Option<SessionLocation> {
        match self {
            SessionRef::Named(name) => SessionLocation::named(session_dir, name).ok(),
            SessionRef::File(path) => Some(SessionLocation::from_file(path)),
        }
    }
}

/// What kind of credentials a kubeconfig user holds, as far as we care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Our exec stanza.
    Exec { host: Option<Host>, session: Option<SessionRef> },
    /// The stanza `logout` leaves (`token --logged-out`): no session, no
    /// token, only what makes kubectl fail at once with the command that logs
    /// in again.
    LoggedOut { host: Option<Host> },
    /// The in-tree `auth-provider: oidc` block with an issuer under `/auth/idp/`
    /// (the old Go plugin, or ours with `--auth-provider`).
    LegacyOidc { host: Host },
    /// Anything else: not ours to touch.
    Foreign,
}

impl Credentials {
    /// Classifies the inner `user` map of a kubeconfig user entry.
    pub fn of_user(user: &Value) -> Credentials {
        if let Some(exec) = user.get("exec") {
            let command = exec.get("command").and_then(Value::as_str).unwrap_or_default();
            let args: Vec<&str> =
                exec.get("args").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let program = Path::new(command).file_name().and_then(|name| name.to_str()).unwrap_or_default();
            let ours = program.trim_end_matches(".exe") == PLUGIN_COMMAND && args.first() == Some(&"token");
            if !ours {
                return Credentials::Foreign;
            }
            let value_of = |flag: &str| args.windows(2).find(|pair| pair[0] == flag).map(|pair| pair[1]);
            if args.contains(&"--logged-out") {
                return Credentials::LoggedOut { host: value_of("--host").and_then(|host| Host::parse(host).ok()) };
            }
            let session = value_of("--session")
                .map(|name| SessionRef::Named(name.to_string()))
                .or_else(|| value_of("--session-file").map(|path| SessionRef::File(PathBuf::from(path))));
            let host = value_of("--host").and_then(|host| Host::parse(host).ok());
            return Credentials::Exec { host, session };
        }
        if let Some(provider) = user.get("auth-provider")
            && provider.get("name").and_then(Value::as_str) == Some("oidc")
            && let Some(issuer) =
                provider.get("config").and_then(|config| config.get("idp-issuer-url")).and_then(Value::as_str)
            && let Some(host) = Host::from_issuer_url(issuer)
        {
            return Credentials::LegacyOidc { host };
        }
        Credentials::Foreign
    }

    pub fn host(&self) -> Option<&Host> {
        match self {
            Credentials::Exec { host, .. } | Credentials::LoggedOut { host } => host.as_ref(),
            Credentials::LegacyOidc { host } => Some(host),
            Credentials::Foreign => None,
        }
    }

    pub fn is_managed(&self) -> bool {
        !matches!(self, Credentials::Foreign)
    }
}

/// A context whose user this plugin manages (or the old plugin wrote).
#[derive(Debug, Clone)]
pub struct ManagedContext {
    pub name: String,
    pub cluster: Option<String>,
    pub user: Option<String>,
    pub credentials: Credentials,
}

/// The credentials of a context's user (`Foreign` when it has none).
pub fn credentials_of(config: &Kubeconfigs, context: &NamedContext) -> Credentials {
    context.user.as_deref().and_then(|user| config.user(user)).map(Credentials::of_user).unwrap_or(Credentials::Foreign)
}

/// Every managed context in the merged kubeconfig, in file order.
pub fn managed_contexts(config: &Kubeconfigs) -> Vec<ManagedContext> {
    config
        .contexts()
        .into_iter()
        .filter_map(|context| {
            let credentials = credentials_of(config, &context);
            credentials.is_managed().then_some(ManagedContext {
                name: context.name,
                cluster: context.cluster,
                user: context.user,
                credentials,
            })
        })
        .collect()
}

/// The managed context called `name`, if it is one.
pub fn managed_context(config: &Kubeconfigs, name: &str) -> Option<ManagedContext> {
    managed_contexts(config).into_iter().find(|context| context.name == name)
}

/// The names a login writes under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryNames {
    pub cluster: String,
    pub user: String,
    pub context: String,
    /// How the names came about, for what the login tells the user.
    pub choice: NameChoice,
}

/// Why a login writes under the names it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameChoice {
    /// An existing context for this host (`legacy`: written by the old Go
    /// plugin, so the login converts it) is written again in place.
    Existing { legacy: bool },
    /// New entries under the server's cluster name (or `--context`).
    New,
    /// New entries under other names, because the server's were taken by
    /// another host or by entries that are not ours.
    Renamed,
}

/// Chooses the names for a login to `host`, on the freshly read config.
///
/// - `--context NAME` naming an existing context of ours or of the old plugin:
///   keep its context, cluster and user names (conversion in place).
/// - A context that already belongs to `host`: reuse its names.
/// - Otherwise the server's cluster name, unless another host (or a foreign
///   entry) already uses it, in which case the host is added to keep both.
pub fn choose_names(config: &Kubeconfigs, host: &Host, bootstrap: &Bootstrap, requested: Option<&str>) -> EntryNames {
    let user_for = |cluster: &str| format!("{}@{}", bootstrap.display_name, cluster);
    let existing_names = |existing: ManagedContext| {
        let cluster = existing.cluster.clone().unwrap_or_else(|| bootstrap.cluster_name.clone());
        let user = existing.user.clone().unwrap_or_else(|| user_for(&cluster));
        let legacy = matches!(existing.credentials, Credentials::LegacyOidc { .. });
        EntryNames { cluster, user, context: existing.name, choice: NameChoice::Existing { legacy } }
    };
    if let Some(name) = requested
        && let Some(existing) = managed_context(config, name)
    {
        return existing_names(existing);
    }
    let mine = managed_contexts(config).into_iter().find(|context| {
        context.credentials.host() == Some(host)
            && context.cluster.as_deref().is_some_and(|cluster| cluster.starts_with(&bootstrap.cluster_name))
    });
    if let Some(existing) = mine
        && requested.is_none()
    {
        return existing_names(existing);
    }
    if let Some(names) = logged_out_context(config, bootstrap, requested) {
        return names;
    }
    let cluster = free_name(&bootstrap.cluster_name, host, |name| cluster_taken_by_other(config, name, host));
    let context = match requested {
        Some(name) => name.to_string(),
        None => free_name(&cluster, host, |name| context_taken_by_other(config, name, host)),
    };
    let user = free_name(&user_for(&cluster), host, |name| user_taken_by_other(config, name, host));
    let renamed = cluster != bootstrap.cluster_name
        || user != user_for(&bootstrap.cluster_name)
        || requested.is_none() && context != bootstrap.cluster_name;
    EntryNames { user, cluster, context, choice: if renamed { NameChoice::Renamed } else { NameChoice::New } }
}

/// A context that `logout` left behind (its user entry removed, so nothing
/// says which host it was for) whose cluster points at this login's API
/// server: logging in again writes its user back under the same names.
fn logged_out_context(config: &Kubeconfigs, bootstrap: &Bootstrap, requested: Option<&str>) -> Option<EntryNames> {
    config.contexts().into_iter().find_map(|context| {
        if requested.is_some_and(|wanted| wanted != context.name) {
            return None;
        }
        let user = missing_user(config, &context)?.to_string();
        let server = cluster_server(config, context.cluster.as_deref())?;
        (server == bootstrap.server).then_some(EntryNames {
            cluster: context.cluster?,
            user,
            context: context.name,
            choice: NameChoice::Existing { legacy: false },
        })
    })
}

/// `base`, or `base-<host>` when `base` is taken (then `base-<host>-2`, ...).
fn free_name(base: &str, host: &Host, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    let qualified = format!("{base}-{}", host.as_str().replace(':', "-"));
    if !taken(&qualified) {
        return qualified;
    }
    (2..1000).map(|n| format!("{qualified}-{n}")).find(|name| !taken(name)).unwrap_or(qualified)
}

/// Whether a cluster entry called `name` exists and is not `host`'s.
fn cluster_taken_by_other(config: &Kubeconfigs, name: &str, host: &Host) -> bool {
    if config.cluster(name).is_none() {
        return false;
    }
    let users_of_cluster: Vec<Credentials> = config
        .contexts()
        .into_iter()
        .filter(|context| context.cluster.as_deref() == Some(name))
        .map(|context| credentials_of(config, &context))
        .collect();
    users_of_cluster.is_empty() || users_of_cluster.iter().any(|credentials| credentials.host() != Some(host))
}

/// Whether a user called `name` exists and does not hold `host`'s credentials
/// (its entry is replaced whole by a login, so a foreign one must not be reused).
fn user_taken_by_other(config: &Kubeconfigs, name: &str, host: &Host) -> bool {
    config.user(name).is_some_and(|user| Credentials::of_user(user).host() != Some(host))
}

/// Whether a context called `name` exists and is not `host`'s.
fn context_taken_by_other(config: &Kubeconfigs, name: &str, host: &Host) -> bool {
    match config.context(name) {
        None => false,
        Some(context) => {
            let credentials = credentials_of(config, &context);
            credentials.host() != Some(host)
        }
    }
}

/// The exec stanza of a user whose session is `session`.
pub fn exec_user(host: &Host, session: &SessionRef) -> Map<String, Value> {
    let mut args = vec![json!("token")];
    match session {
        SessionRef::Named(name) => args.extend([json!("--session"), json!(name)]),
        SessionRef::File(path) => args.extend([json!("--session-file"), json!(path.display().to_string())]),
    }
    args.extend([json!("--host"), json!(host.as_str())]);
    let exec = json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": PLUGIN_COMMAND,
        "args": args,
        "env": null,
        "interactiveMode": "Never",
        "provideClusterInfo": false,
        "installHint": INSTALL_HINT,
    });
    let mut exec = exec.as_object().cloned().unwrap_or_default();
    exec.remove("env");
    Map::from_iter([("exec".to_string(), Value::Object(exec))])
}

/// The user `logout` leaves: an exec stanza that runs `token --logged-out`,
/// which fails at once naming the command that logs in again (client-go shows
/// its stderr), so that kubectl never falls back to asking for a username.
/// It holds no token and names no session. `context` is named when the user
/// entry belongs to that one context, for the message.
pub fn logged_out_user(host: Option<&Host>, context: Option<&str>) -> Map<String, Value> {
    let mut args = vec![json!("token"), json!("--logged-out")];
    if let Some(host) = host {
        args.extend([json!("--host"), json!(host.as_str())]);
    }
    if let Some(context) = context {
        args.extend([json!("--context"), json!(context)]);
    }
    let exec = json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "command": PLUGIN_COMMAND,
        "args": args,
        "interactiveMode": "Never",
        "provideClusterInfo": false,
        "installHint": INSTALL_HINT,
    });
    Map::from_iter([("exec".to_string(), exec)])
}

/// The legacy in-tree `auth-provider: oidc` user, exactly as the old Go plugin
/// wrote it: client-go refreshes it itself and writes tokens back (race-prone).
/// client-go trusts OpenUnison through `idp-certificate-authority-data` only,
/// so without an OpenUnison CA in the bootstrap, the CA the user logged in
/// with (`user_ca_pem`) goes there.
pub fn auth_provider_user(host: &Host, bootstrap: &Bootstrap, user_ca_pem: Option<&str>) -> Map<String, Value> {
    use base64::Engine as _;
    let mut config = Map::new();
    config.insert("client-id".into(), json!("kubernetes"));
    config.insert("client-secret".into(), json!(""));
    config.insert("id-token".into(), json!(bootstrap.id_token));
    config.insert("idp-issuer-url".into(), json!(host.k8s_issuer()));
    config.insert("refresh-token".into(), json!(bootstrap.refresh_token));
    if let Some(pem) = bootstrap.ou_ca_pem.as_deref().or(user_ca_pem) {
        config.insert(
            "idp-certificate-authority-data".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())),
        );
    }
    Map::from_iter([("auth-provider".to_string(), json!({ "name": "oidc", "config": config }))])
}

/// The user a context names that the kubeconfig no longer has: what `logout`
/// leaves behind.
pub fn missing_user<'a>(config: &Kubeconfigs, context: &'a NamedContext) -> Option<&'a str> {
    context.user.as_deref().filter(|user| config.user(user).is_none())
}

/// The API server of the cluster called `cluster`, if the kubeconfig has it.
pub fn cluster_server(config: &Kubeconfigs, cluster: Option<&str>) -> Option<String> {
    let cluster = config.cluster(cluster?)?;
    cluster.get("server").and_then(Value::as_str).map(str::to_string)
}

/// The OpenUnison CA an `auth-provider: oidc` user carries (the old Go
/// plugin wrote the bootstrap's CA there), as extra trust for a login again.
pub fn legacy_idp_trust(user: &Value) -> Option<TrustConfig> {
    use base64::Engine as _;
    let config = user.get("auth-provider")?.get("config")?;
    if let Some(data) = config.get("idp-certificate-authority-data").and_then(Value::as_str) {
        let pem = base64::engine::general_purpose::STANDARD.decode(data.trim()).ok()?;
        return Some(TrustConfig { ca_file: None, ca_pem: Some(String::from_utf8(pem).ok()?), ca_data: None });
    }
    // kubectl reads a relative path against the kubeconfig's directory; only
    // an absolute one means the same file here.
    let file = config.get("idp-certificate-authority").and_then(Value::as_str).map(PathBuf::from)?;
    file.is_absolute().then_some(TrustConfig { ca_file: Some(file), ca_pem: None, ca_data: None })
}

/// The cluster entry's fields we own.
pub fn cluster_fields(bootstrap: &Bootstrap) -> Map<String, Value> {
    use base64::Engine as _;
    let mut cluster = Map::new();
    cluster.insert("server".into(), json!(bootstrap.server));
    match &bootstrap.k8s_ca_pem {
        Some(pem) => {
            cluster.insert(
                "certificate-authority-data".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())),
            );
            // A file reference would override the embedded data.
            cluster.insert("certificate-authority".into(), Value::Null);
            // kubectl refuses a CA beside this flag, which people patched in
            // by hand to get past a broken CA; the old Go plugin reset it too.
            cluster.insert("insecure-skip-tls-verify".into(), Value::Null);
        }
        None => {
            cluster.insert("certificate-authority-data".into(), Value::Null);
        }
    }
    cluster
}

/// The changes that write a login's cluster, user and context and make the
/// context current.
pub fn login_changes(names: &EntryNames, bootstrap: &Bootstrap, user: Map<String, Value>) -> Vec<Change> {
    let context =
        Map::from_iter([("cluster".to_string(), json!(names.cluster)), ("user".to_string(), json!(names.user))]);
    vec![
        Change::SetCluster { name: names.cluster.clone(), cluster: cluster_fields(bootstrap) },
        Change::SetUser { name: names.user.clone(), user },
        Change::SetContext { name: names.context.clone(), context },
        Change::SetCurrentContext(names.context.clone()),
    ]
}

/// The kubeconfig changes of a logout, on the freshly read config: each
/// user entry becomes the logged-out stanza (no token, no session), or with
/// `purge` goes, with the context and its cluster unless another context
/// uses that.
pub fn logout_changes(fresh: &Kubeconfigs, targets: &[ManagedContext], purge: bool) -> Vec<Change> {
    let mut changes = Vec::new();
    let removed_contexts: Vec<&str> =
        if purge { targets.iter().map(|context| context.name.as_str()).collect() } else { Vec::new() };
    let contexts = fresh.contexts();
    for context in targets {
        if let Some(user) = &context.user
            && fresh.user(user).is_some()
            && !changes
                .iter()
                .any(|change| matches!(change, Change::RemoveUser(name) | Change::SetUser { name, .. } if name == user))
        {
            if purge {
                changes.push(Change::RemoveUser(user.clone()));
            } else {
                // The context is named in the stanza only when the user entry is its alone.
                let users_contexts: Vec<&str> = contexts
                    .iter()
                    .filter(|other| other.user.as_deref() == Some(user.as_str()))
                    .map(|other| other.name.as_str())
                    .collect();
                let sole = (users_contexts == [context.name.as_str()]).then_some(context.name.as_str());
                changes.push(Change::SetUser {
                    name: user.clone(),
                    user: logged_out_user(context.credentials.host(), sole),
                });
            }
        }
        if purge {
            changes.push(Change::RemoveContext(context.name.clone()));
            if let Some(cluster) = &context.cluster {
                let used_elsewhere = contexts.iter().any(|other| {
                    other.cluster.as_deref() == Some(cluster.as_str())
                        && !removed_contexts.contains(&other.name.as_str())
                });
                if !used_elsewhere
                    && fresh.cluster(cluster).is_some()
                    && !changes.iter().any(|change| matches!(change, Change::RemoveCluster(name) if name == cluster))
                {
                    changes.push(Change::RemoveCluster(cluster.clone()));
                }
            }
            if fresh.current_context() == Some(context.name.as_str()) {
                changes.push(Change::UnsetCurrentContext);
            }
        }
    }
    changes
}

/// The managed contexts, and those an older `logout` left without a user
/// entry and noted (shown as logged out), in file order.
pub fn contexts_with_logged_out(config: &Kubeconfigs, notes: &Notes) -> Vec<ManagedContext> {
    let managed = managed_contexts(config);
    config
        .contexts()
        .into_iter()
        .filter_map(|context| {
            if let Some(ours) = managed.iter().find(|ours| ours.name == context.name) {
                return Some(ours.clone());
            }
            missing_user(config, &context)?;
            let server = cluster_server(config, context.cluster.as_deref());
            let note = notes.find(&context.name, server.as_deref())?;
            Some(ManagedContext {
                name: context.name,
                cluster: context.cluster,
                user: None,
                credentials: Credentials::LoggedOut { host: Some(note.host) },
            })
        })
        .collect()
}

/// What `logout` noted of a context logged out of (its host must match).
pub fn logged_out_note(config: &Kubeconfigs, context: &ManagedContext, notes: &Notes) -> Option<LoggedOut> {
    let server = cluster_server(config, context.cluster.as_deref());
    notes.find(&context.name, server.as_deref()).filter(|note| Some(&note.host) == context.credentials.host())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> Host {
        Host::parse(text).unwrap()
    }

    #[test]
    fn our_exec_stanza_is_recognised_with_its_session() {
        let user =
            Value::Object(exec_user(&host("ou.example.com:8443"), &SessionRef::Named("ou.example.com_8443".into())));
        assert_eq!(
            Credentials::of_user(&user),
            Credentials::Exec {
                host: Some(host("ou.example.com:8443")),
                session: Some(SessionRef::Named("ou.example.com_8443".into()))
            }
        );
        let exec = &user["exec"];
        assert_eq!(exec["interactiveMode"], "Never");
        assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1");
        assert_eq!(exec["command"], "kubectl-oulogin");
    }

    #[test]
    fn the_stanza_logout_leaves_is_recognised_and_holds_no_session() {
        let user = Value::Object(logged_out_user(Some(&host("ou.example.com:8443")), Some("prod")));
        assert_eq!(Credentials::of_user(&user), Credentials::LoggedOut { host: Some(host("ou.example.com:8443")) });
        let exec = &user["exec"];
        assert_eq!(exec["interactiveMode"], "Never");
        assert_eq!(
            exec["args"],
            json!(["token", "--logged-out", "--host", "ou.example.com:8443", "--context", "prod"])
        );
        assert!(!exec.to_string().contains("--session"), "{exec}");
    }

    #[test]
    fn legacy_and_foreign_users_are_told_apart() {
        let legacy = json!({"auth-provider": {"name": "oidc", "config": {"idp-issuer-url": "https://ou.example.com/auth/idp/k8sIdp"}}});
        assert_eq!(Credentials::of_user(&legacy), Credentials::LegacyOidc { host: host("ou.example.com") });
        let dex =
            json!({"auth-provider": {"name": "oidc", "config": {"idp-issuer-url": "https://dex.example.com/dex"}}});
        assert_eq!(Credentials::of_user(&dex), Credentials::Foreign);
        let other_exec = json!({"exec": {"command": "aws", "args": ["token"]}});
        assert_eq!(Credentials::of_user(&other_exec), Credentials::Foreign);
        assert_eq!(Credentials::of_user(&json!({"token": "abc"})), Credentials::Foreign);
    }

    fn bootstrap(server: &str) -> Bootstrap {
        Bootstrap {
            display_name: "jdoe".into(),
            cluster_name: "kubernetes".into(),
            server: server.into(),
            ou_ca_pem: None,
            k8s_ca_pem: None,
            id_token: String::new(),
            refresh_token: String::new(),
            receipt: Default::default(),
        }
    }

    /// The kubeconfig `yaml`, loaded as the login loads it.
    fn config(yaml: &str) -> (tempfile::TempDir, Kubeconfigs) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(&path, yaml).unwrap();
        let config = Kubeconfigs::load(&crate::settings::KubeconfigSelection::Explicit(path)).unwrap();
        (dir, config)
    }

    #[test]
    fn a_foreign_user_with_the_name_a_login_would_use_is_left_alone() {
        let (_dir, config) = config("users:\n- name: jdoe@kubernetes\n  user: {token: someone-elses}\n");
        let names = choose_names(&config, &host("ou.example.com"), &bootstrap("https://api.example.com"), None);
        assert_eq!(names.cluster, "kubernetes");
        assert_eq!(names.user, "jdoe@kubernetes-ou.example.com");
        assert_eq!(names.choice, NameChoice::Renamed);
    }

    #[test]
    fn a_context_left_by_logout_is_reused_when_its_cluster_is_this_api_server() {
        let yaml = "clusters:\n- name: kubernetes\n  cluster: {server: 'https://api.example.com'}\n\
                    contexts:\n- name: kubernetes\n  context: {cluster: kubernetes, user: jdoe@kubernetes}\n";
        let (_dir, config) = config(yaml);
        let ou = host("ou.example.com");
        let names = choose_names(&config, &ou, &bootstrap("https://api.example.com"), None);
        assert_eq!(
            (names.cluster.as_str(), names.user.as_str(), names.context.as_str()),
            ("kubernetes", "jdoe@kubernetes", "kubernetes")
        );
        assert_eq!(names.choice, NameChoice::Existing { legacy: false });
        // Another API server's leftovers are not ours to take over.
        let other = choose_names(&config, &ou, &bootstrap("https://other-api.example.com"), None);
        assert_eq!(other.choice, NameChoice::Renamed);
        assert_eq!(other.cluster, "kubernetes-ou.example.com");
    }

    #[test]
    fn an_old_plugin_context_named_with_context_keeps_its_names() {
        let yaml = "clusters:\n- name: old\n  cluster: {server: 'https://api.example.com'}\n\
                    users:\n- name: me@old\n  user:\n    auth-provider:\n      name: oidc\n      config: \
                    {idp-issuer-url: 'https://ou.example.com/auth/idp/k8sIdp'}\n\
                    contexts:\n- name: work\n  context: {cluster: old, user: me@old}\n";
        let (_dir, config) = config(yaml);
        let names = choose_names(&config, &host("ou.example.com"), &bootstrap("https://api.example.com"), Some("work"));
        assert_eq!((names.cluster.as_str(), names.user.as_str(), names.context.as_str()), ("old", "me@old", "work"));
        assert_eq!(names.choice, NameChoice::Existing { legacy: true });
    }

    #[test]
    fn a_cluster_getting_a_ca_loses_insecure_skip_tls_verify() {
        let mut with_ca = bootstrap("https://api.example.com");
        with_ca.k8s_ca_pem = Some("PEM".into());
        let fields = cluster_fields(&with_ca);
        assert_eq!(fields["insecure-skip-tls-verify"], Value::Null);
        assert!(fields["certificate-authority-data"].is_string());
        // Without a CA the user's choice stands.
        assert!(!cluster_fields(&bootstrap("https://api.example.com")).contains_key("insecure-skip-tls-verify"));
    }

    #[test]
    fn the_legacy_user_carries_the_bootstrap_ca_else_the_users() {
        use base64::Engine as _;
        let decoded = |user: &Map<String, Value>| {
            user["auth-provider"]["config"]
                .get("idp-certificate-authority-data")
                .and_then(Value::as_str)
                .map(|data| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(data).unwrap()).unwrap())
        };
        let ou = host("ou.example.com");
        let mut with_ca = bootstrap("https://api.example.com");
        with_ca.ou_ca_pem = Some("SERVER".into());
        assert_eq!(decoded(&auth_provider_user(&ou, &with_ca, Some("USER"))).as_deref(), Some("SERVER"));
        let without = bootstrap("https://api.example.com");
        assert_eq!(decoded(&auth_provider_user(&ou, &without, Some("USER"))).as_deref(), Some("USER"));
        assert_eq!(decoded(&auth_provider_user(&ou, &without, None)), None);
    }

    #[test]
    fn free_names_add_the_host_when_taken() {
        let h = host("ou2.example.com:8443");
        assert_eq!(free_name("kubernetes", &h, |_| false), "kubernetes");
        assert_eq!(free_name("kubernetes", &h, |name| name == "kubernetes"), "kubernetes-ou2.example.com-8443");
        assert_eq!(
            free_name("kubernetes", &h, |name| name != "kubernetes-ou2.example.com-8443-2"),
            "kubernetes-ou2.example.com-8443-2"
        );
    }

    #[test]
    fn an_old_plugin_user_lends_its_openunison_ca_as_data_or_absolute_file() {
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.encode("-----BEGIN CERTIFICATE-----\n");
        let with_data = json!({"auth-provider": {"name": "oidc", "config": {"idp-certificate-authority-data": data}}});
        assert_eq!(
            legacy_idp_trust(&with_data),
            Some(TrustConfig { ca_file: None, ca_pem: Some("-----BEGIN CERTIFICATE-----\n".into()), ca_data: None })
        );
        let absolute = if cfg!(windows) { r"C:\ou\ca.pem" } else { "/etc/ou/ca.pem" };
        let with_file = json!({"auth-provider": {"config": {"idp-certificate-authority": absolute}}});
        assert_eq!(
            legacy_idp_trust(&with_file),
            Some(TrustConfig { ca_file: Some(absolute.into()), ca_pem: None, ca_data: None })
        );
        let relative = json!({"auth-provider": {"config": {"idp-certificate-authority": "ca.pem"}}});
        assert_eq!(legacy_idp_trust(&relative), None);
        assert_eq!(
            legacy_idp_trust(&json!({"auth-provider": {"config": {"idp-certificate-authority-data": "%%"}}})),
            None
        );
        assert_eq!(legacy_idp_trust(&json!({"token": "x"})), None);
    }
}
