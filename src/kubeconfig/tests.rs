//! Unit tests for reading, merging and writing kubeconfig lists.

use std::fs;
use std::io::Write;
#[cfg(unix)]
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use super::write::{self, lock_path};
use super::*;
use crate::error::Error;

const REALISTIC: &str = include_str!("testdata/realistic.yaml");

fn put(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

fn explicit(path: &Path) -> KubeconfigSelection {
    KubeconfigSelection::Explicit(path.to_path_buf())
}

fn list(paths: &[&Path]) -> KubeconfigSelection {
    KubeconfigSelection::List(paths.iter().map(|path| path.to_path_buf()).collect())
}

fn fields(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

fn context_change(name: &str, cluster: &str) -> Change {
    Change::SetContext { name: name.to_string(), context: fields(json!({"cluster": cluster, "user": "u"})) }
}

/// Runs `update` with fixed changes.
fn apply(selection: &KubeconfigSelection, lock_dir: &Path, changes: Vec<Change>) -> Result<Kubeconfigs, Error> {
    update(selection, lock_dir, |_| Ok((changes.clone(), ()))).map(|(config, ())| config)
}

fn kubeconfig_error(err: Error) -> KubeconfigError {
    match err {
        Error::Kubeconfig(err) => err,
        other => panic!("expected a kubeconfig error, got {other:?}"),
    }
}

fn parse_text(text: &str) -> Result<yaml::Parsed, KubeconfigError> {
    yaml::parse(Path::new("/k/config"), text.as_bytes())
}

const TWO_ENTRIES: &str = "\
apiVersion: v1
kind: Config
clusters:
- name: c1
  cluster:
    server: https://one
users:
- name: u1
  user:
    token: t1
contexts:
- name: ctx1
  context:
    cluster: c1
    user: u1
current-context: ctx1
";

// ---------------------------------------------------------------- YAML layer

#[test]
fn realistic_file_round_trips_with_unknown_fields_and_ambiguous_strings() {
    let parsed = parse_text(REALISTIC).unwrap();
    let doc = &parsed.doc;
    let prod = &doc["clusters"][0];
    assert_eq!(prod["cluster"]["tls-server-name"], json!("on"));
    assert_eq!(prod["cluster"]["proxy-url"], json!("1.10"));
    assert_eq!(prod["cluster"]["some-future-field"], json!("0123"));
    assert_eq!(prod["cluster-level-unknown"], json!("kept"));
    assert_eq!(prod["cluster"]["extensions"][0]["extension"]["arbitrary"]["b"], Value::Null);
    assert_eq!(doc["clusters"][1]["name"], json!("yes"));
    assert_eq!(doc["users"][0]["user"]["exec"]["newExecField"], json!({"x": 1}));
    assert_eq!(doc["users"][0]["user"]["exec"]["env"], Value::Null);
    let pem = "-----BEGIN CERTIFICATE-----\nMIIBkTCB+wIJAO1\n-----END CERTIFICATE-----\n";
    assert_eq!(doc["users"][1]["user"]["auth-provider"]["config"]["idp-certificate-authority-data"], json!(pem));
    assert_eq!(doc["contexts"][0]["context"]["namespace"], json!("0123"));
    assert_eq!(doc["preferences"]["future-preference"], json!({"nested": [1, 2]}));
    assert_eq!(doc["unknown-top-level"], json!({"keep": ["me", {"too": "1e3"}]}));
    let top_keys: Vec<&str> = doc.keys().map(String::as_str).collect();
    assert_eq!(
        top_keys,
        ["apiVersion", "kind", "preferences", "clusters", "users", "contexts", "current-context", "unknown-top-level"]
    );

    let text = yaml::render(Path::new("/k/config"), &parsed).unwrap();
    for quoted in ["\"on\"", "\"1.10\"", "\"0123\"", "\"yes\"", "\"1e3\""] {
        assert!(text.contains(quoted), "{quoted} must stay a quoted string:\n{text}");
    }
    let again = parse_text(&text).unwrap();
    assert!(again == parsed, "round trip changed the document:\n{text}");
    // Rendering is stable: a file we wrote is written back byte for byte.
    assert_eq!(yaml::render(Path::new("/k/config"), &again).unwrap(), text);
}

#[test]
fn unquoted_leading_zero_numbers_keep_their_spelling() {
    let parsed = parse_text("a: 0123\nb: 0755\n").unwrap();
    assert_eq!(parsed.doc["a"], json!("0123"));
    let text = yaml::render(Path::new("/k/config"), &parsed).unwrap();
    assert!(text.contains("0123") && text.contains("0755"), "{text}");
}

#[test]
fn empty_whitespace_and_comment_only_files_are_empty_configs() {
    for text in ["", "   \n\n", "# only a comment\n# another\n", "---\n", "null\n", "~\n"] {
        let parsed = parse_text(text).unwrap_or_else(|err| panic!("{text:?}: {err}"));
        assert!(parsed.doc.is_empty(), "{text:?}");
    }
}

#[test]
fn later_documents_are_kept_and_only_the_first_is_read() {
    let text = "current-context: a\n---\ncurrent-context: b\n";
    let parsed = parse_text(text).unwrap();
    assert_eq!(parsed.doc["current-context"], json!("a"));
    let rendered = yaml::render(Path::new("/k/config"), &parsed).unwrap();
    assert!(rendered.contains("current-context: b"), "{rendered}");
    assert!(parse_text(&rendered).unwrap() == parsed);
}

#[test]
fn duplicate_keys_are_read_like_kubectl_reads_them() {
    // kubectl (go-yaml) lets the later key win instead of refusing the file.
    let parsed = parse_text("current-context: a\ncurrent-context: b\n").unwrap();
    assert_eq!(parsed.doc["current-context"], json!("b"));
}

#[test]
fn not_yaml_is_refused_naming_the_file_without_quoting_it() {
    let err = parse_text("users:\n- name: u\n  user:\n    token: \"SECRET-TOKEN\n  bad: [\n").unwrap_err();
    assert!(matches!(err, KubeconfigError::NotYaml { .. }), "{err:?}");
    let rendered = Error::from(err).render();
    assert!(rendered.contains("`/k/config` is not valid YAML"), "{rendered}");
    assert!(rendered.contains("hint:"), "{rendered}");
    assert!(!rendered.contains("SECRET-TOKEN"), "{rendered}");

    let err = yaml::parse(Path::new("/k/config"), b"kind: Config\xff\xfe\n").unwrap_err();
    assert!(matches!(err, KubeconfigError::NotYaml { .. }), "{err:?}");
}

#[test]
fn wrong_shapes_are_refused_naming_the_file_and_the_problem() {
    let cases = [
        ("- a\n- b\n", "the top level is a list"),
        ("just a string\n", "the top level is a string"),
        ("clusters: {a: b}\n", "`clusters` is a mapping, not a list"),
        ("users: SECRET-TOKEN\n", "`users` is a string, not a list"),
        ("contexts:\n- context: {cluster: c}\n", "entry 1 of `contexts` has no `name`"),
        ("clusters:\n- name: a\n- name: 12\n", "entry 2 of `clusters` is a number"),
        ("users:\n- name: u\n- name: u\n", "two entries named `u`"),
        ("users:\n- name: u\n  user: SECRET-TOKEN\n", "`user` of user `u` is a string, not a mapping"),
        ("users:\n- SECRET-TOKEN\n", "entry 1 of `users` is a string, not a mapping"),
        ("contexts:\n- name: c\n  context: {namespace: [a]}\n", "`namespace` of context `c` is a list"),
        ("current-context: [a]\n", "`current-context` is a list"),
    ];
    for (text, problem) in cases {
        let err = parse_text(text).expect_err(text);
        assert!(matches!(err, KubeconfigError::Shape { .. }), "{text:?}: {err:?}");
        let rendered = Error::from(err).render();
        assert!(rendered.contains("`/k/config`"), "{rendered}");
        assert!(rendered.contains(problem), "{text:?} should say {problem:?}: {rendered}");
        assert!(!rendered.contains("SECRET-TOKEN"), "{rendered}");
        assert!(rendered.contains("hint:"), "{rendered}");
    }
}

#[test]
fn a_kind_other_than_config_is_refused() {
    let err = parse_text("apiVersion: v1\nkind: Foo\n").unwrap_err();
    assert!(matches!(&err, KubeconfigError::WrongKind { kind, .. } if kind == "Foo"), "{err:?}");
    assert!(err.to_string().contains("`/k/config`"), "{err}");
    assert!(err.hint().is_some());
    let err = parse_text("apiVersion: v2\nkind: Config\n").unwrap_err();
    assert!(matches!(err, KubeconfigError::WrongApiVersion { .. }), "{err:?}");
    // What kubectl accepts, we accept.
    for text in ["kind: Config\napiVersion: v1\n", "kind: \"\"\napiVersion: \"\"\n", "clusters: null\n"] {
        parse_text(text).unwrap_or_else(|err| panic!("{text:?}: {err}"));
    }
}

// ---------------------------------------------------------------- loading and merging

#[test]
fn missing_list_entries_are_skipped_and_the_merge_is_first_wins() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let first = put(
        dir.path(),
        "first",
        "clusters:\n- name: shared\n  cluster: {server: https://first}\ncontexts:\n- name: a\n  context: {cluster: shared, user: ua, namespace: ns}\ncurrent-context: \"\"\n",
    );
    let second = put(
        dir.path(),
        "second",
        "clusters:\n- name: shared\n  cluster: {server: https://second}\n- name: only2\n  cluster: {server: https://2}\ncontexts:\n- name: b\n  context: {cluster: only2}\n- name: a\n  context: {cluster: other}\nusers:\n- name: ua\ncurrent-context: b\n",
    );
    let config = Kubeconfigs::load(&list(&[&missing, &first, &second])).unwrap();
    assert_eq!(config.files().len(), 3);
    assert!(!config.files()[0].exists());
    assert_eq!(config.current_context(), Some("b"), "the first non-empty current-context wins");
    assert_eq!(config.cluster("shared").unwrap()["server"], json!("https://first"));
    assert_eq!(config.cluster_names(), ["shared", "only2"]);
    assert_eq!(config.user("ua"), Some(&Value::Null));
    assert_eq!(config.user("nobody"), None);
    assert_eq!(config.user_origin("ua"), Some(second.as_path()));
    assert_eq!(config.cluster_origin("only2"), Some(second.as_path()));
    let contexts = config.contexts();
    assert_eq!(contexts.iter().map(|context| context.name.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    assert_eq!(
        config.context("a").unwrap(),
        NamedContext {
            name: "a".to_string(),
            cluster: Some("shared".to_string()),
            user: Some("ua".to_string()),
            namespace: Some("ns".to_string()),
            origin: first.clone(),
        }
    );
    assert_eq!(config.context("b").unwrap().origin, second);
    assert_eq!(config.default_file(), first, "new entries go to the first existing file");
}

#[test]
fn default_file_follows_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    // Nothing exists: the first entry.
    assert_eq!(Kubeconfigs::load(&list(&[&a, &b])).unwrap().default_file(), a);
    fs::write(&b, "").unwrap();
    // The first existing entry.
    assert_eq!(Kubeconfigs::load(&list(&[&a, &b])).unwrap().default_file(), b);
    // A single entry, existing or not.
    assert_eq!(Kubeconfigs::load(&list(&[&a])).unwrap().default_file(), a);
    // The explicit file, even when missing: an empty config.
    let config = Kubeconfigs::load(&explicit(&a)).unwrap();
    assert_eq!(config.default_file(), a);
    assert!(config.contexts().is_empty() && config.current_context().is_none());
    let config = Kubeconfigs::load(&KubeconfigSelection::Default(a.clone())).unwrap();
    assert_eq!(config.default_file(), a);
}

#[cfg(unix)]
#[test]
fn a_dangling_symlink_reads_as_missing() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("config");
    symlink(dir.path().join("nowhere/target"), &link).unwrap();
    let config = Kubeconfigs::load(&explicit(&link)).unwrap();
    assert!(!config.files()[0].exists());
}

#[cfg(unix)]
#[test]
fn the_same_file_listed_twice_through_a_symlink_is_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let real = put(dir.path(), "real", TWO_ENTRIES);
    let link = dir.path().join("link");
    symlink(&real, &link).unwrap();
    let config = Kubeconfigs::load(&list(&[&real, &link])).unwrap();
    assert_eq!(config.files().len(), 1);
}

#[test]
fn a_directory_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = Kubeconfigs::load(&explicit(dir.path())).unwrap_err();
    assert!(matches!(err, KubeconfigError::Read { .. }), "{err:?}");
    assert!(err.to_string().contains(&format!("`{}`", dir.path().display())), "{err}");
    assert!(err.hint().unwrap().contains("is a directory"), "{:?}", err.hint());
}

#[cfg(unix)]
#[test]
fn unreadable_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o000)).unwrap();
    run_unprivileged(UnprivilegedCase::Unreadable, dir.path());
}

/// The unreadable case, run by a user that file permissions apply to.
#[cfg(unix)]
fn check_unreadable(dir: &Path) {
    let path = dir.join("config");
    let err = Kubeconfigs::load(&explicit(&path)).unwrap_err();
    assert!(
        matches!(&err, KubeconfigError::Read { source, .. } if source.kind() == io::ErrorKind::PermissionDenied),
        "{err:?}"
    );
    assert!(err.to_string().contains(&format!("`{}`", path.display())), "{err}");
    assert!(err.hint().unwrap().contains("permissions"), "{:?}", err.hint());
}

/// Cases that need file permissions to apply, which they never do for root.
#[cfg(unix)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UnprivilegedCase {
    Unreadable,
    ReadOnlyDirectory,
    WriteProtected,
}

#[cfg(unix)]
impl UnprivilegedCase {
    const ALL: [UnprivilegedCase; 3] =
        [UnprivilegedCase::Unreadable, UnprivilegedCase::ReadOnlyDirectory, UnprivilegedCase::WriteProtected];

    fn name(self) -> &'static str {
        match self {
            UnprivilegedCase::Unreadable => "unreadable",
            UnprivilegedCase::ReadOnlyDirectory => "read-only-directory",
            UnprivilegedCase::WriteProtected => "write-protected",
        }
    }

    fn check(self, dir: &Path) {
        match self {
            UnprivilegedCase::Unreadable => check_unreadable(dir),
            UnprivilegedCase::ReadOnlyDirectory => check_read_only_directory(dir),
            UnprivilegedCase::WriteProtected => check_write_protected(dir),
        }
    }
}

/// Environment of the child process that runs an [`UnprivilegedCase`].
#[cfg(unix)]
const UNPRIVILEGED_CASE: &str = "OULOGIN_TEST_UNPRIVILEGED_CASE";
#[cfg(unix)]
const UNPRIVILEGED_DIR: &str = "OULOGIN_TEST_UNPRIVILEGED_DIR";
/// The user an unprivileged child runs as when the tests run as root.
#[cfg(unix)]
const NOBODY: u32 = 65534;

/// Runs `case` on the files in `dir` as a user that file permissions apply
/// to. Not root: in this process. Root (which reads and writes anything, so
/// the check would prove nothing): in a child process of this test binary,
/// as `nobody` through `setpriv`, with `dir` handed to `nobody`.
#[cfg(unix)]
fn run_unprivileged(case: UnprivilegedCase, dir: &Path) {
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        case.check(dir);
        return;
    }
    give_to_nobody(dir);
    let setpriv = Path::new("/usr/bin/setpriv");
    assert!(setpriv.exists(), "tests running as root need `setpriv` (util-linux) to check permission failures");
    let output = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", "kubeconfig::tests::unprivileged_child", "--test-threads=1", "--nocapture"])
        .env(UNPRIVILEGED_CASE, case.name())
        .env(UNPRIVILEGED_DIR, dir)
        .output()
        .unwrap();
    let shown = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the unprivileged {case:?} check failed:\n{shown}");
    assert!(shown.contains("1 passed"), "the unprivileged child did not run:\n{shown}");
}

#[cfg(unix)]
fn give_to_nobody(path: &Path) {
    std::os::unix::fs::lchown(path, Some(NOBODY), Some(NOBODY)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for entry in fs::read_dir(path).unwrap() {
            give_to_nobody(&entry.unwrap().path());
        }
    }
}

/// Not a test on its own: the body of the child process `run_unprivileged`
/// starts (it does nothing unless started that way).
#[cfg(unix)]
#[test]
fn unprivileged_child() {
    let (Some(name), Some(dir)) = (std::env::var(UNPRIVILEGED_CASE).ok(), std::env::var_os(UNPRIVILEGED_DIR)) else {
        return;
    };
    // SAFETY: geteuid(2) cannot fail.
    assert_ne!(unsafe { libc::geteuid() }, 0, "the child must not run as root");
    let case = UnprivilegedCase::ALL.into_iter().find(|case| case.name() == name).expect("a known case");
    case.check(Path::new(&dir));
}

#[test]
fn debug_output_shows_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", REALISTIC);
    let config = Kubeconfigs::load(&explicit(&path)).unwrap();
    let change = Change::SetUser { name: "u".into(), user: fields(json!({"token": "SECRET-NEW"})) };
    let debug = format!("{config:?} {:?} {change:?}", config.files());
    assert!(debug.contains("jdoe@prod"), "{debug}");
    for secret in ["SECRET", "MIIB"] {
        assert!(!debug.contains(secret), "{debug}");
    }
}

// ---------------------------------------------------------------- writing

#[test]
fn an_entry_from_the_second_file_is_written_back_there_and_the_first_file_stays_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let first_text = "# my comments stay because this file is not rewritten\nclusters:\n- name: a\n  cluster: {server: https://a, odd: yes}\n";
    let first = put(dir.path(), "first", first_text);
    let second = put(dir.path(), "second", REALISTIC);
    let selection = list(&[&first, &second]);
    let changes = vec![
        Change::SetUser { name: "legacy".into(), user: fields(json!({"token": "new"})) },
        Change::SetCluster {
            name: "prod".into(),
            cluster: fields(json!({"server": "https://moved", "proxy-url": null})),
        },
        Change::SetContext { name: "legacy".into(), context: fields(json!({"namespace": "x"})) },
    ];
    let config = apply(&selection, &dir.path().join("locks"), changes).unwrap();
    assert_eq!(fs::read_to_string(&first).unwrap(), first_text);
    let written = Kubeconfigs::load(&explicit(&second)).unwrap();
    assert_eq!(written.user("legacy").unwrap(), &json!({"token": "new"}), "SetUser replaces the map");
    let prod = written.cluster("prod").unwrap();
    assert_eq!(prod["server"], json!("https://moved"));
    assert!(prod.get("proxy-url").is_none(), "null removes a key");
    assert_eq!(prod["tls-server-name"], json!("on"), "other keys stay");
    let keys: Vec<&str> = prod.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys[0], "server", "keys keep their place");
    let legacy = written.context("legacy").unwrap();
    assert_eq!((legacy.cluster.as_deref(), legacy.namespace.as_deref()), (Some("prod"), Some("x")));
    // Everything else in the second file is as it was.
    let before = parse_text(REALISTIC).unwrap().doc;
    let after = written.files()[0].doc().clone();
    assert_eq!(after["unknown-top-level"], before["unknown-top-level"]);
    assert_eq!(after["preferences"], before["preferences"]);
    assert_eq!(after["users"][0], before["users"][0]);
    assert_eq!(after["users"][2], before["users"][2]);
    assert_eq!(after["contexts"][0], before["contexts"][0]);
    assert_eq!(after["clusters"][1], before["clusters"][1]);
    assert_eq!(after["clusters"][0]["cluster-level-unknown"], json!("kept"));
    // The returned state is the new state.
    assert_eq!(config.user("legacy").unwrap(), &json!({"token": "new"}));
    assert!(!lock_path(&second).exists() && !lock_path(&first).exists(), "locks are released");
}

#[test]
fn new_entries_go_to_the_first_existing_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let a = put(dir.path(), "a", TWO_ENTRIES);
    let b = put(dir.path(), "b", TWO_ENTRIES.replace("ctx1", "ctx2").as_str());
    let b_before = fs::read(&b).unwrap();
    let changes = vec![
        Change::SetCluster { name: "new".into(), cluster: fields(json!({"server": "https://new", "gone": null})) },
        Change::SetUser { name: "new".into(), user: fields(json!({"token": "t"})) },
        context_change("new", "new"),
        Change::SetCurrentContext("new".into()),
    ];
    apply(&list(&[&missing, &a, &b]), &dir.path().join("locks"), changes).unwrap();
    assert!(!missing.exists(), "a missing list entry is not created");
    assert_eq!(fs::read(&b).unwrap(), b_before);
    let written = Kubeconfigs::load(&explicit(&a)).unwrap();
    assert_eq!(written.cluster("new").unwrap(), &json!({"server": "https://new"}));
    assert_eq!(written.context_names(), ["ctx1", "new"]);
    assert_eq!(written.current_context(), Some("new"));
    let entry = &written.files()[0].doc()["clusters"][1];
    assert_eq!(entry.as_object().unwrap().keys().collect::<Vec<_>>(), ["name", "cluster"]);
}

#[test]
fn removals_and_unset_current_context_touch_the_defining_file() {
    let dir = tempfile::tempdir().unwrap();
    let a = put(dir.path(), "a", "contexts:\n- name: keep\n  context: {cluster: c}\n");
    let b = put(dir.path(), "b", TWO_ENTRIES);
    let a_before = fs::read(&a).unwrap();
    let changes = vec![
        Change::RemoveContext("ctx1".into()),
        Change::RemoveUser("u1".into()),
        Change::RemoveCluster("c1".into()),
        Change::RemoveCluster("not-there".into()),
        Change::UnsetCurrentContext,
    ];
    let config = apply(&list(&[&a, &b]), &dir.path().join("locks"), changes).unwrap();
    assert_eq!(fs::read(&a).unwrap(), a_before);
    assert!(config.context("ctx1").is_none() && config.user("u1").is_none() && config.cluster("c1").is_none());
    assert_eq!(config.current_context(), None);
    let written = fs::read_to_string(&b).unwrap();
    assert!(written.contains("current-context: \"\""), "{written}");
    assert!(!written.contains("u1") && !written.contains("c1"), "{written}");
}

#[test]
fn an_update_that_changes_nothing_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(
        dir.path(),
        "config",
        "# comment kept\ncontexts:\n- name: a\n  context: {cluster: c, user: u}\ncurrent-context: a\n",
    );
    let before = fs::read(&path).unwrap();
    #[cfg(unix)]
    let inode = fs::metadata(&path).unwrap().ino();
    let changes = vec![context_change("a", "c"), Change::SetCurrentContext("a".into()), Change::RemoveUser("x".into())];
    apply(&explicit(&path), &dir.path().join("locks"), changes).unwrap();
    assert_eq!(fs::read(&path).unwrap(), before);
    #[cfg(unix)]
    assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "not even replaced");
}

#[test]
fn a_failing_plan_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let result: Result<(Kubeconfigs, ()), Error> =
        update(&explicit(&path), &dir.path().join("locks"), |_| Err(Error::usage("no", None)));
    assert!(result.is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), TWO_ENTRIES);
}

#[test]
fn the_plan_sees_the_files_as_they_are_under_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let (_, seen) = update(&explicit(&path), &dir.path().join("locks"), |fresh| {
        Ok((vec![context_change("second", "c1")], fresh.context("ctx1").map(|context| context.origin)))
    })
    .unwrap();
    assert_eq!(seen, Some(path.clone()));
}

#[test]
fn when_kubectl_writes_between_our_read_and_our_lock_the_plan_decides_again_on_its_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let mut plans = 0;
    let (config, chosen) = update(&explicit(&path), &dir.path().join("locks"), |fresh| {
        plans += 1;
        if plans == 1 {
            // kubectl adds a context named like the one we are about to pick,
            // after our read and before we take its lock.
            fs::write(
                &path,
                TWO_ENTRIES.replace("contexts:\n", "contexts:\n- name: x\n  context: {cluster: k, user: k}\n"),
            )
            .unwrap();
        }
        // Like picking distinct names for a login: avoid a name in use.
        let name = if fresh.context("x").is_some() { "x-2" } else { "x" };
        Ok((vec![context_change(name, "ours")], name))
    })
    .unwrap();
    assert_eq!(plans, 2);
    assert_eq!(chosen, "x-2");
    assert_eq!(config.context("x").unwrap().cluster.as_deref(), Some("k"));
    let on_disk = Kubeconfigs::load(&explicit(&path)).unwrap();
    assert_eq!(on_disk.context("x").unwrap().cluster.as_deref(), Some("k"), "kubectl's context was taken over");
    assert_eq!(on_disk.context("x-2").unwrap().cluster.as_deref(), Some("ours"));
}

#[test]
fn a_new_explicit_file_is_created_private_with_kubectls_skeleton() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new-dir/sub/config");
    let config = apply(
        &explicit(&path),
        &dir.path().join("locks"),
        vec![context_change("ctx", "c"), Change::SetCurrentContext("ctx".into())],
    )
    .unwrap();
    assert!(config.files()[0].exists());
    #[cfg(unix)]
    {
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(path.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
    }
    let doc = Kubeconfigs::load(&explicit(&path)).unwrap().files()[0].doc().clone();
    assert_eq!(
        doc.keys().collect::<Vec<_>>(),
        ["apiVersion", "kind", "clusters", "contexts", "users", "current-context", "preferences"]
    );
    assert_eq!((&doc["apiVersion"], &doc["kind"]), (&json!("v1"), &json!("Config")));
    assert_eq!(doc["current-context"], json!("ctx"));
    assert_eq!(doc["preferences"], json!({}));
}

#[cfg(unix)]
#[test]
fn an_existing_mode_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
    assert!(Kubeconfigs::load(&explicit(&path)).unwrap().context("x").is_some());
}

#[cfg(unix)]
#[test]
fn a_symlinked_kubeconfig_stays_a_symlink_and_its_target_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let real = put(dir.path(), "real", TWO_ENTRIES);
    let link = dir.path().join("config");
    symlink("real", &link).unwrap();
    apply(&explicit(&link), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert!(Kubeconfigs::load(&explicit(&real)).unwrap().context("x").is_some());
    assert!(!lock_path(&link).exists());
}

#[cfg(unix)]
#[test]
fn a_dangling_symlink_gets_its_target_created() {
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("config");
    let target = dir.path().join("elsewhere/real-config");
    symlink(&target, &link).unwrap();
    apply(&explicit(&link), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap();
    assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
    assert!(Kubeconfigs::load(&explicit(&link)).unwrap().context("x").is_some());
}

#[test]
fn a_stale_kubectl_lock_is_an_error_naming_it_after_a_bounded_retry() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let lock = lock_path(&path);
    fs::write(&lock, "").unwrap();
    let started = Instant::now();
    let err = apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap_err();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(2) && waited < Duration::from_secs(30), "{waited:?}");
    let rendered = err.render();
    assert!(rendered.contains(&format!("`{}`", lock.display())), "{rendered}");
    assert!(rendered.contains("remove it"), "{rendered}");
    assert!(matches!(kubeconfig_error(err), KubeconfigError::Locked { .. }));
    assert_eq!(fs::read_to_string(&path).unwrap(), TWO_ENTRIES);
    assert!(lock.exists(), "kubectl's lock is not ours to remove");
}

#[test]
fn a_kubectl_lock_taken_anew_again_and_again_is_waited_for_not_called_stale() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let lock = lock_path(&path);
    // A loop of kubectl writes on a loaded machine: the lock is held for
    // 200 ms at a time and taken again at once, 20 times, so for longer than
    // one stale lock may stand. The gaps are too short to count on catching.
    let holds = 20;
    let writer = {
        let lock = lock.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut held = 0;
            while held < holds && started.elapsed() < Duration::from_secs(30) {
                if fs::OpenOptions::new().write(true).create_new(true).open(&lock).is_ok() {
                    held += 1;
                    std::thread::sleep(Duration::from_millis(200));
                    fs::remove_file(&lock).unwrap();
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            held
        })
    };
    std::thread::sleep(Duration::from_millis(50));
    apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap();
    assert!(Kubeconfigs::load(&explicit(&path)).unwrap().context("x").is_some());
    assert_eq!(writer.join().unwrap(), holds, "the writer did not get its turns");
    assert!(!lock.exists());
}

/// The id of a process that has surely exited.
fn exited_process_id() -> u32 {
    #[cfg(unix)]
    let mut child = std::process::Command::new("true").spawn().unwrap();
    #[cfg(windows)]
    let mut child = std::process::Command::new("cmd").args(["/c", "exit 0"]).spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    dead
}

#[test]
fn a_lock_left_by_a_killed_oulogin_is_cleared() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    // A process that has surely exited.
    let dead = exited_process_id();
    fs::write(lock_path(&path), format!("kubectl-oulogin {dead}\n")).unwrap();
    apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap();
    assert!(!lock_path(&path).exists());
    assert!(Kubeconfigs::load(&explicit(&path)).unwrap().context("x").is_some());
}

#[test]
fn the_kubectl_lock_is_held_while_writing_and_released_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    // The plan runs before the lock is taken; the lock is gone afterwards, also on error.
    let (_, held_during_plan) = update(&explicit(&path), &dir.path().join("locks"), |_| {
        Ok((vec![context_change("x", "c")], lock_path(&path).exists()))
    })
    .unwrap();
    assert!(!held_during_plan);
    assert!(!lock_path(&path).exists());
    fs::write(&path, "kind: Foo\n").unwrap();
    assert!(apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("y", "c")]).is_err());
    assert!(!lock_path(&path).exists());
}

#[test]
fn a_file_kubectl_is_rewriting_is_read_once_kubectl_is_done() {
    let dir = tempfile::tempdir().unwrap();
    // kubectl truncates and rewrites in place under its lock; a reader can catch this.
    let path = put(dir.path(), "config", "apiVersion: v1\nclusters:\n- name: c1\n  cluster: {server: \"https://o");
    fs::write(lock_path(&path), "").unwrap();
    let config = std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            fs::write(&path, TWO_ENTRIES).unwrap();
            fs::remove_file(lock_path(&path)).unwrap();
        });
        Kubeconfigs::load(&explicit(&path))
    });
    assert_eq!(config.unwrap().context_names(), ["ctx1"]);
    // Without kubectl's lock, a broken file that stays as it is is refused
    // after one second look.
    put(dir.path(), "config", "clusters: [\n");
    let started = Instant::now();
    assert!(matches!(Kubeconfigs::load(&explicit(&path)), Err(KubeconfigError::NotYaml { .. })));
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn a_file_rewritten_in_place_is_read_whole_even_when_the_writer_is_gone_before_we_look() {
    let dir = tempfile::tempdir().unwrap();
    // kubectl truncates, writes and removes its lock within a millisecond or
    // two: a reader that catches the half-written file may find no lock by the
    // time it looks. This writer takes no lock at all, so only "the file
    // changed since the failed look" tells the reader to look again. The
    // writer takes its steps in the reader's pauses: a writer thread that
    // stalls (a loaded machine) leaves a torn file unchanged and unlocked
    // across two looks, which is a broken file and rightly refused.
    let cut = TWO_ENTRIES.find("users:\n-").unwrap() + "users:\n-".len();
    let (torn, rest) = TWO_ENTRIES.split_at(cut);
    // A second torn state of another length, so that "changed" does not
    // depend on the clock resolution of file times.
    let (torn_again, rest_again) = TWO_ENTRIES.split_at(cut + 2);
    for half in [torn, torn_again] {
        assert!(parse_text(half).is_err(), "a torn half must be refused for this test to mean anything");
    }
    let path = put(dir.path(), "config", torn);
    let mut steps = 0;
    let loaded = write::load_settled_pausing(&explicit(&path), &Default::default(), |_| {
        steps += 1;
        match steps {
            // The writer finishes after our first look and rewrites again at
            // once: the second look finds it torn, but not as the first one did.
            1 => {
                let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
                file.write_all(rest.as_bytes()).unwrap();
                file.set_len(torn_again.len() as u64).unwrap();
            }
            2 => {
                let mut file = fs::OpenOptions::new().append(true).open(&path).unwrap();
                file.write_all(rest_again.as_bytes()).unwrap();
            }
            _ => panic!("looked again at a whole file"),
        }
    });
    assert_eq!(loaded.unwrap().context_names(), ["ctx1"]);
    assert_eq!(steps, 2, "the reader did not look at each torn state");
}

/// Loads `path` (holding [`TWO_ENTRIES`]) 40 times while another thread keeps
/// calling `rewrite` (which says whether it got to rewrite), and asserts that
/// every load saw the whole file. Returns how many plain reads beside the
/// loads were `caught` mid-write, to show the writer was in the way.
fn assert_every_load_reads_the_whole_file(
    path: &Path,
    caught: impl Fn(&[u8]) -> bool,
    rewrite: impl Fn() -> bool + Sync,
) -> usize {
    use std::sync::atomic::{AtomicBool, Ordering};
    let reads_done = AtomicBool::new(false);
    let (caught_reads, outcomes) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let started = Instant::now();
            let mut rewrites = 0;
            while !reads_done.load(Ordering::SeqCst) && started.elapsed() < Duration::from_secs(20) {
                if rewrite() {
                    rewrites += 1;
                    std::thread::sleep(Duration::from_millis(3));
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            rewrites
        });
        let mut caught_reads = 0;
        let outcomes: Vec<_> = (0..40)
            .map(|_| {
                caught_reads += usize::from(caught(&fs::read(path).unwrap()));
                let outcome = Kubeconfigs::load(&explicit(path)).map(|config| config.context_names());
                std::thread::sleep(Duration::from_millis(2));
                outcome
            })
            .collect();
        reads_done.store(true, Ordering::SeqCst);
        assert!(writer.join().unwrap() > 2, "the writer hardly ran");
        (caught_reads, outcomes)
    });
    for outcome in outcomes {
        assert_eq!(outcome.unwrap(), ["ctx1"]);
    }
    caught_reads
}

#[test]
fn a_file_kubectl_has_emptied_to_rewrite_is_not_read_as_an_empty_kubeconfig() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let lock = lock_path(&path);
    // kubectl's write: take the lock, truncate, write, remove the lock. An
    // empty file is a valid (empty) kubeconfig, so only the lock, or the file
    // holding something by the time we look, tells the reader it caught the
    // moment between truncating and writing.
    let empty_reads = assert_every_load_reads_the_whole_file(&path, <[u8]>::is_empty, || {
        if fs::OpenOptions::new().write(true).create_new(true).open(&lock).is_err() {
            return false;
        }
        let mut file = fs::OpenOptions::new().write(true).truncate(true).open(&path).unwrap();
        std::thread::sleep(Duration::from_millis(3));
        file.write_all(TWO_ENTRIES.as_bytes()).unwrap();
        drop(file);
        fs::remove_file(&lock).unwrap();
        true
    });
    assert!(empty_reads > 0, "no plain read caught the file emptied; the test proves little");
    // An empty file nobody is writing is an empty kubeconfig, read at once,
    // and our own lock on it while we update it is no sign of a writer.
    fs::write(&path, "").unwrap();
    let started = Instant::now();
    assert!(Kubeconfigs::load(&explicit(&path)).unwrap().context_names().is_empty());
    apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap();
    assert_eq!(Kubeconfigs::load(&explicit(&path)).unwrap().context_names(), ["x"]);
    assert!(started.elapsed() < Duration::from_millis(1000), "took {:?}", started.elapsed());
}

#[test]
fn broken_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let good = put(dir.path(), "good", TWO_ENTRIES);
    for (name, text) in [("not-yaml", "a: [\n"), ("wrong-kind", "kind: Foo\n"), ("wrong-shape", "users: 3\n")] {
        let bad = put(dir.path(), name, text);
        let err = apply(&list(&[&good, &bad]), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap_err();
        assert!(err.render().contains(&format!("`{}`", bad.display())), "{}", err.render());
        assert_eq!(fs::read_to_string(&bad).unwrap(), text);
        assert_eq!(fs::read_to_string(&good).unwrap(), TWO_ENTRIES);
    }
}

#[cfg(unix)]
#[test]
fn a_read_only_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("ro");
    fs::create_dir(&sub).unwrap();
    put(&sub, "config", TWO_ENTRIES);
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o500)).unwrap();
    run_unprivileged(UnprivilegedCase::ReadOnlyDirectory, dir.path());
    fs::set_permissions(&sub, fs::Permissions::from_mode(0o700)).unwrap();
}

/// The read-only directory case, run by a user that file permissions apply to.
#[cfg(unix)]
fn check_read_only_directory(dir: &Path) {
    let path = dir.join("ro").join("config");
    let err = apply(&explicit(&path), &dir.join("locks"), vec![context_change("x", "c")]).unwrap_err();
    let rendered = err.render();
    assert!(rendered.contains(&format!("`{}`", path.display())) && rendered.contains("hint:"), "{rendered}");
    assert!(rendered.contains(&format!("may create files in `{}`", dir.join("ro").display())), "{rendered}");
    assert_eq!(fs::read_to_string(&path).unwrap(), TWO_ENTRIES);
    assert!(!lock_path(&path).exists());
}

#[test]
fn concurrent_updates_from_threads_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let locks = dir.path().join("locks");
    std::thread::scope(|scope| {
        for index in 0..20 {
            let (path, locks) = (&path, &locks);
            scope.spawn(move || {
                let name = format!("thread-{index}");
                update(&explicit(path), locks, |fresh| {
                    assert!(fresh.context(&name).is_none());
                    Ok((vec![context_change(&name, "c1")], ()))
                })
                .unwrap();
            });
        }
    });
    let config = Kubeconfigs::load(&explicit(&path)).unwrap();
    for index in 0..20 {
        assert!(config.context(&format!("thread-{index}")).is_some(), "thread-{index} lost");
    }
    assert_eq!(config.context_names().len(), 21);
    assert_eq!(config.user("u1").unwrap(), &json!({"token": "t1"}));
}

/// Environment variables of the child process in `concurrent_updates_from_processes_all_land`.
const CHILD_FILE: &str = "OULOGIN_TEST_KUBECONFIG_CHILD_FILE";
const CHILD_LOCKS: &str = "OULOGIN_TEST_KUBECONFIG_CHILD_LOCKS";
const CHILD_PREFIX: &str = "OULOGIN_TEST_KUBECONFIG_CHILD_PREFIX";

/// Not a test on its own: the body of each child process of the test below
/// (it does nothing unless that test started it).
#[test]
fn child_process_adds_contexts() {
    let (Some(file), Some(locks), Some(prefix)) =
        (std::env::var_os(CHILD_FILE), std::env::var_os(CHILD_LOCKS), std::env::var(CHILD_PREFIX).ok())
    else {
        return;
    };
    for index in 0..5 {
        let selection = explicit(Path::new(&file));
        apply(&selection, Path::new(&locks), vec![context_change(&format!("{prefix}-{index}"), "c1")]).unwrap();
    }
}

#[test]
fn concurrent_updates_from_processes_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let locks = dir.path().join("locks");
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..4)
        .map(|child| {
            std::process::Command::new(&exe)
                .args(["--exact", "kubeconfig::tests::child_process_adds_contexts", "--test-threads=1", "-q"])
                .env(CHILD_FILE, &path)
                .env(CHILD_LOCKS, &locks)
                .env(CHILD_PREFIX, format!("process-{child}"))
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let config = Kubeconfigs::load(&explicit(&path)).unwrap();
    for child in 0..4 {
        for index in 0..5 {
            assert!(config.context(&format!("process-{child}-{index}")).is_some(), "process-{child}-{index} lost");
        }
    }
}

/// kubectl does not take our flock, only `<file>.lock`: our updates interleaved
/// with runs of `kubectl config set-context` must never lose kubectl's entries,
/// even when kubectl writes between our read and our taking its lock.
///
/// The reverse cannot be promised: kubectl's `ModifyConfig` builds its new
/// config from a read made before it takes the lock, re-reads under the lock,
/// and deletes every entry the second read has and the first had not, so an
/// entry we add in that window of a few milliseconds is removed by kubectl.
#[cfg(unix)]
#[test]
fn concurrent_kubectl_writes_are_not_lost() {
    let kubectl = Path::new("/usr/bin/kubectl");
    assert!(kubectl.exists(), "this test needs the real kubectl at {}", kubectl.display());
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let locks = dir.path().join("locks");
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for index in 0..8 {
                let mut landed = false;
                // kubectl fails fast on a held lock; retry, boundedly.
                for _ in 0..200 {
                    let status = std::process::Command::new(kubectl)
                        .args(["config", "set-context", &format!("kubectl-{index}"), "--cluster=c1"])
                        .arg("--kubeconfig")
                        .arg(&path)
                        .stdout(std::process::Stdio::null())
                        .stderr(std::process::Stdio::null())
                        .status()
                        .unwrap();
                    if status.success() {
                        landed = true;
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                assert!(landed, "kubectl never got its lock");
            }
        });
        for thread in 0..2 {
            let (path, locks) = (&path, &locks);
            scope.spawn(move || {
                for index in 0..5 {
                    let name = format!("ours-{thread}-{index}");
                    update(&explicit(path), locks, |_| {
                        // A slow plan leaves kubectl time to write after we read.
                        std::thread::sleep(Duration::from_millis(40));
                        Ok((vec![context_change(&name, "c1")], ()))
                    })
                    .unwrap();
                }
            });
        }
    });
    let config = Kubeconfigs::load(&explicit(&path)).unwrap();
    let names = config.context_names();
    for index in 0..8 {
        assert!(names.contains(&format!("kubectl-{index}")), "kubectl-{index} lost: {names:?}");
    }
    assert!(!lock_path(&path).exists());
}

/// What we write, kubectl reads, strings and all.
#[cfg(unix)]
#[test]
fn kubectl_reads_what_we_write() {
    let kubectl = Path::new("/usr/bin/kubectl");
    assert!(kubectl.exists(), "this test needs the real kubectl at {}", kubectl.display());
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", REALISTIC);
    let user = fields(json!({"token": "  leading spaces\nand lines", "username": "on"}));
    apply(
        &explicit(&path),
        &dir.path().join("locks"),
        vec![Change::SetUser { name: "1.10".into(), user }, context_change("0123", "yes")],
    )
    .unwrap();
    let output = std::process::Command::new(kubectl)
        .args(["config", "view", "--raw", "-o", "json", "--kubeconfig"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let seen: Value = serde_json::from_slice(&output.stdout).unwrap();
    let user = seen["users"].as_array().unwrap().iter().find(|user| user["name"] == json!("1.10")).unwrap();
    assert_eq!(user["user"]["token"], json!("  leading spaces\nand lines"));
    assert_eq!(user["user"]["username"], json!("on"));
    let prod = seen["clusters"].as_array().unwrap().iter().find(|cluster| cluster["name"] == json!("prod")).unwrap();
    assert_eq!(prod["cluster"]["tls-server-name"], json!("on"));
    assert_eq!(prod["cluster"]["proxy-url"], json!("1.10"));
    assert!(seen["contexts"].as_array().unwrap().iter().any(|context| context["name"] == json!("0123")));
    assert_eq!(seen["current-context"], json!("prod"));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn the_loader_never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = yaml::parse(Path::new("/k/config"), &bytes);
        }

        #[test]
        fn the_loader_never_panics_on_yaml_like_text(
            text in "([a-z:\\-\\[\\]{}\"'|>&*!#~ \n]|clusters|users|contexts|name|current-context|kind|Config){0,80}"
        ) {
            if let Ok(parsed) = yaml::parse(Path::new("/k/config"), text.as_bytes()) {
                // Whatever loads also writes and reloads the same.
                let rendered = yaml::render(Path::new("/k/config"), &parsed).unwrap();
                let again = yaml::parse(Path::new("/k/config"), rendered.as_bytes()).unwrap();
                prop_assert!(again == parsed, "{text:?} -> {rendered:?}");
            }
        }
    }
}

// ------------------------------------------- files we may not or must not replace

/// Makes a character device like `/dev/null` (1, 3) at `path`, which needs
/// root (CI runs as root); anyone else gets a named pipe, which must be
/// refused in the same way.
#[cfg(unix)]
fn make_device_or_pipe(path: &Path) -> &'static str {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path; mknod(2) creates a node in our temp dir only.
    if unsafe { libc::mknod(c_path.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0 {
        return "a character device";
    }
    // SAFETY: as above.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o666) }, 0, "{}", io::Error::last_os_error());
    "a named pipe"
}

#[cfg(unix)]
#[test]
fn a_kubeconfig_that_is_a_device_is_refused_and_left_a_device() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("null");
    let kind = make_device_or_pipe(&device);
    let link = dir.path().join("config");
    symlink(&device, &link).unwrap();
    for path in [&device, &link] {
        let err = check_writable(path).unwrap_err();
        assert!(matches!(&err, KubeconfigError::NotAFile { kind: found, .. } if *found == kind), "{err:?}");
        assert!(err.to_string().contains(&format!("`{}`", path.display())), "{err}");
        assert!(err.hint().unwrap().contains("regular file"), "{:?}", err.hint());
        // The writer refuses it too, before it makes kubectl's lock beside it.
        let err = apply(&explicit(path), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap_err();
        assert!(matches!(kubeconfig_error(err), KubeconfigError::NotAFile { .. }));
        assert!(!lock_path(path).exists(), "a lock file was made beside {}", path.display());
    }
    let file_type = fs::symlink_metadata(&device).unwrap().file_type();
    assert!(file_type.is_char_device() || file_type.is_fifo(), "{file_type:?}");
    // A missing file, and a dangling symlink's missing target, are created by the write.
    assert!(check_writable(&dir.path().join("new")).is_ok());
    symlink(dir.path().join("nowhere"), dir.path().join("dangling")).unwrap();
    assert!(check_writable(&dir.path().join("dangling")).is_ok());
}

#[cfg(unix)]
#[test]
fn a_write_protected_kubeconfig_is_refused_as_kubectl_refuses_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let link = dir.path().join("link");
    symlink("config", &link).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
    run_unprivileged(UnprivilegedCase::WriteProtected, dir.path());
    // SAFETY: geteuid(2) cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        // kubectl as root writes a 0444 file (root may); so do we, mode kept.
        // (In a directory of root's: the one above now belongs to `nobody`.)
        let dir = tempfile::tempdir().unwrap();
        let path = put(dir.path(), "config", TWO_ENTRIES);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o444)).unwrap();
        apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o444);
        assert!(Kubeconfigs::load(&explicit(&path)).unwrap().context("x").is_some());
    }
}

/// The write-protected case, run by a user that file permissions apply to.
#[cfg(unix)]
fn check_write_protected(dir: &Path) {
    for path in [dir.join("config"), dir.join("link")] {
        let err = Kubeconfigs::load(&explicit(&path)).unwrap().check_writable_for_login(None).unwrap_err();
        assert!(matches!(err, KubeconfigError::NotWritable { .. }), "{err:?}");
        assert!(err.to_string().contains(&format!("`{}`: permission denied", path.display())), "{err}");
        assert!(err.hint().unwrap().contains("chmod u+w"), "{:?}", err.hint());
        let err = apply(&explicit(&path), &dir.join("locks"), vec![context_change("x", "c")]).unwrap_err();
        assert!(matches!(kubeconfig_error(err), KubeconfigError::NotWritable { .. }));
        assert!(!lock_path(&path).exists());
    }
    assert_eq!(fs::read_to_string(dir.join("config")).unwrap(), TWO_ENTRIES);
}

#[cfg(unix)]
#[test]
fn the_login_check_covers_the_files_that_define_the_context_it_rewrites() {
    let dir = tempfile::tempdir().unwrap();
    let first = put(dir.path(), "first", TWO_ENTRIES);
    let second =
        put(dir.path(), "second", &TWO_ENTRIES.replace("c1", "c2").replace("u1", "u2").replace("ctx1", "ctx2"));
    let device = dir.path().join("device");
    make_device_or_pipe(&device);
    let config = Kubeconfigs::load(&list(&[&first, &second])).unwrap();
    assert!(config.check_writable_for_login(Some("ctx2")).is_ok());
    fs::remove_file(&second).unwrap();
    symlink(&device, &second).unwrap();
    let err = config.check_writable_for_login(Some("ctx2")).unwrap_err();
    assert_eq!(err.path(), second);
    // A file the login does not write is not its business.
    assert!(config.check_writable_for_login(Some("ctx1")).is_ok());
}

#[cfg(unix)]
#[test]
fn a_replaced_kubeconfig_keeps_its_owner_and_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    // SAFETY: geteuid(2) cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        // `sudo kubectl oulogin` on a user's kubeconfig.
        std::os::unix::fs::chown(&path, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let before = fs::metadata(&path).unwrap();
    apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("x", "c")]).unwrap();
    let after = fs::metadata(&path).unwrap();
    assert_ne!(before.ino(), after.ino(), "the file was replaced");
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    if root {
        assert_eq!((after.uid(), after.gid()), (NOBODY, NOBODY));
    }
}

#[cfg(unix)]
#[test]
fn a_secret_makes_a_readable_kubeconfig_private_and_anything_else_keeps_its_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let exec_user =
        fields(json!({"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": "kubectl-oulogin"}}));
    apply(&explicit(&path), &dir.path().join("locks"), vec![Change::SetUser { name: "e".into(), user: exec_user }])
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644, "the exec stanza holds no secret");
    let oidc_user =
        fields(json!({"auth-provider": {"name": "oidc", "config": {"refresh-token": "r", "id-token": "i"}}}));
    apply(&explicit(&path), &dir.path().join("locks"), vec![Change::SetUser { name: "o".into(), user: oidc_user }])
        .unwrap();
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert!(Kubeconfigs::load(&explicit(&path)).unwrap().user("o").is_some());
}

// ----------------------------------------------------------- the stale-lock race

/// Unix only: the other run creates the lock's name anew while we still hold
/// the file it named, which Windows allows only where a deleted file's name
/// goes at once (NTFS on Windows 10 and later), not under wine.
#[cfg(unix)]
#[test]
fn a_stale_lock_taken_anew_between_verdict_and_removal_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let lock = lock_path(&path);
    let dead = exited_process_id();
    fs::write(&lock, format!("kubectl-oulogin {dead}\n")).unwrap();
    // Another run (another cache directory, so not behind our writers' flock)
    // removes the same stale lock and takes the lock anew while we judge.
    let fresh = std::cell::RefCell::new(None);
    let removed = write::remove_if_left_by_dead_oulogin_with(&lock, || {
        fs::remove_file(&lock).unwrap();
        let record = format!("kubectl-oulogin {}\n", std::process::id());
        *fresh.borrow_mut() = Some(crate::files::create_new_locked(&lock, record.as_bytes(), 0o600).unwrap());
    });
    assert!(!removed, "we removed another run's fresh lock");
    assert_eq!(fs::read_to_string(&lock).unwrap(), format!("kubectl-oulogin {}\n", std::process::id()));
}

#[test]
fn a_lock_naming_a_dead_process_is_left_alone_while_its_holder_keeps_it_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", TWO_ENTRIES);
    let lock = lock_path(&path);
    let dead = exited_process_id();
    // A lock whose holder is alive keeps its flock, whatever its record says
    // (a PID from another PID namespace, say): not removed.
    let held = crate::files::create_new_locked(&lock, format!("kubectl-oulogin {dead}\n").as_bytes(), 0o600).unwrap();
    assert!(!write::remove_if_left_by_dead_oulogin_with(&lock, || {}));
    drop(held);
    // Its holder gone, it is.
    assert!(write::remove_if_left_by_dead_oulogin_with(&lock, || {}));
    assert!(!lock.exists());
}

// ------------------------------------------------------------------ size

/// A kubeconfig of `count` contexts, each with its own cluster and user,
/// shaped like real ones (CA data, exec and token users, namespaces,
/// extensions), without anchors or aliases. The CA data is cut short: the
/// parser's budget counts nodes, not bytes, and a debug build reads 30 MB slowly.
fn many_contexts(count: usize) -> String {
    let ca = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM";
    let mut text = String::from("apiVersion: v1\nkind: Config\nclusters:\n");
    for index in 0..count {
        text.push_str(&format!(
            "- name: cluster-{index}\n  cluster:\n    server: https://api-{index}.example.com:6443\n    \
             certificate-authority-data: {ca}\n    extensions:\n    - name: client.authentication.k8s.io/exec\n      \
             extension:\n        audience: a-{index}\n"
        ));
    }
    text.push_str("users:\n");
    for index in 0..count {
        if index % 2 == 0 {
            text.push_str(&format!("- name: user-{index}\n  user:\n    token: token-{index}\n"));
        } else {
            text.push_str(&format!(
                "- name: user-{index}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
                 command: aws\n      args: [eks, get-token, --cluster-name, c-{index}]\n      env: null\n      \
                 interactiveMode: IfAvailable\n"
            ));
        }
    }
    text.push_str("contexts:\n");
    for index in 0..count {
        text.push_str(&format!(
            "- name: context-{index}\n  context:\n    cluster: cluster-{index}\n    user: user-{index}\n    \
             namespace: team-{index}\n"
        ));
    }
    text.push_str("current-context: context-0\npreferences: {}\n");
    text
}

#[test]
fn a_kubeconfig_of_twenty_thousand_contexts_is_read_and_written_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = put(dir.path(), "config", &many_contexts(20_000));
    let config = apply(&explicit(&path), &dir.path().join("locks"), vec![context_change("x", "cluster-7")]).unwrap();
    assert_eq!(config.context_names().len(), 20_001);
    let again = Kubeconfigs::load(&explicit(&path)).unwrap();
    assert_eq!(again.context_names().len(), 20_001);
    assert_eq!(again.user_names().len(), 20_000);
    assert!(
        again
            .cluster("cluster-19999")
            .is_some_and(|cluster| cluster["extensions"][0]["extension"]["audience"] == "a-19999")
    );
}

#[test]
fn alias_bombs_are_refused_in_words_people_understand() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..10 {
        let previous = format!("*a{}", level - 1);
        text.push_str(&format!("a{level}: &a{level} [{}]\n", vec![previous; 10].join(", ")));
    }
    text.push_str("clusters: *a9\n");
    let started = Instant::now();
    let err = parse_text(&text).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(20), "the refusal took {:?}", started.elapsed());
    let shown = err.to_string();
    assert!(matches!(err, KubeconfigError::NotYaml { .. }), "{err:?}");
    assert!(shown.contains("anchors and aliases") && shown.contains("billion laughs"), "{shown}");
    assert!(!shown.contains("budget"), "{shown}");
    // A few aliases, as people use them, are fine.
    let modest = "x: &u {exec: {command: c}}\nusers:\n- name: a\n  user: *u\n- name: b\n  user: *u\n";
    assert_eq!(parse_text(modest).unwrap().doc["users"][1]["user"]["exec"]["command"], "c");
}
