//! Shipping like a kubectl plugin: the krew manifest as krew validates it, the
//! release archive from `scripts/release.sh` installed in a krew-like layout
//! and found by the real `kubectl`, completion through real kubectl's
//! `__complete`, and the generated files checked in (completions, man page,
//! README usage block) not being stale.
//!
//! Stale generated files: `OULOGIN_BLESS=1 cargo test --test cli packaging`
//! rewrites them from the current clap definition.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const REGENERATE: &str = "OULOGIN_BLESS=1 cargo test --test cli packaging";

/// The plugin's (os, arch) pairs and the Rust target of the archive each one
/// gets, as in the manifest. A release builds one Windows archive, x86-64,
/// which Windows on Arm runs too.
const PLATFORMS: [(&str, &str, &str); 6] = [
    ("linux", "amd64", "x86_64-unknown-linux-gnu"),
    ("linux", "arm64", "aarch64-unknown-linux-gnu"),
    ("darwin", "amd64", "x86_64-apple-darwin"),
    ("darwin", "arm64", "aarch64-apple-darwin"),
    ("windows", "amd64", "x86_64-pc-windows-gnu"),
    ("windows", "arm64", "x86_64-pc-windows-gnu"),
];

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn plugin_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_kubectl-oulogin"))
}

fn bless() -> bool {
    std::env::var("OULOGIN_BLESS").is_ok_and(|value| value == "1")
}

/// The real kubectl (1.32 on the CI image).
fn kubectl() -> PathBuf {
    let path = PathBuf::from("/usr/bin/kubectl");
    assert!(path.exists(), "these tests need the real kubectl at `{}`", path.display());
    path
}

/// Runs `program` with a clean environment: `PATH` as given, a private
/// `HOME`, stdin closed and stdout/stderr captured, so the output does not
/// depend on the developer's terminal or kubeconfig.
fn run(program: &Path, args: &[&str], path: &str, home: &Path, extra_env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("KUBECONFIG", home.join("kubeconfig"))
        .env("KUBECACHEDIR", home.join("cache"))
        .env("COLUMNS", "100")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in extra_env {
        command.env(name, value);
    }
    let output = command.output().unwrap_or_else(|err| panic!("cannot run `{}`: {err}", program.display()));
    assert!(
        output.status.success(),
        "`{} {}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
        program.display(),
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs our binary directly.
fn plugin(args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let output = run(&plugin_binary(), args, "/usr/bin:/bin", home.path(), &[]);
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Compares a checked-in generated file with what the binary generates now;
/// with `OULOGIN_BLESS=1`, writes it instead.
fn check_generated(relative: &str, generated: &str) {
    let path = repo().join(relative);
    if bless() {
        std::fs::write(&path, generated).unwrap_or_else(|err| panic!("cannot write `{}`: {err}", path.display()));
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "`{relative}` is stale (it differs from what the clap definition generates now); \
         regenerate it with `{REGENERATE}`"
    );
}

// ---------------------------------------------------------------------------
// Generated files

#[test]
fn completion_scripts_in_completions_dir_are_current() {
    for (shell, file) in [
        ("bash", "completions/kubectl-oulogin.bash"),
        ("zsh", "completions/_kubectl-oulogin"),
        ("fish", "completions/kubectl-oulogin.fish"),
        ("powershell", "completions/_kubectl-oulogin.ps1"),
        ("elvish", "completions/kubectl-oulogin.elv"),
    ] {
        let script = plugin(&["completion", shell]);
        assert!(script.contains("kubectl-oulogin"), "{shell} script does not name the binary");
        check_generated(file, &script);
    }
}

#[test]
fn completion_without_a_shell_prints_the_script_for_the_shell_that_shell_names() {
    let home = tempfile::tempdir().unwrap();
    let zsh = run(&plugin_binary(), &["completion"], "/usr/bin:/bin", home.path(), &[("SHELL", "/usr/bin/zsh")]);
    assert_eq!(String::from_utf8(zsh.stdout).unwrap(), plugin(&["completion", "zsh"]));
    // No `SHELL`, or one without a script: a usage error naming the choices.
    for shell in [None, Some("/bin/sh")] {
        let mut command = Command::new(plugin_binary());
        command.arg("completion").env_clear().env("HOME", home.path()).stdin(Stdio::null());
        if let Some(shell) = shell {
            command.env("SHELL", shell);
        }
        let output = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{shell:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{shell:?}");
        assert!(stderr.starts_with("error: no shell named, and `SHELL`"), "{shell:?}: {stderr}");
        assert!(stderr.contains("hint: name one: `kubectl oulogin completion bash|zsh|fish|powershell|elvish`"));
    }
}

#[test]
fn man_page_is_current() {
    let page = plugin(&["__man"]);
    assert!(page.contains(".TH kubectl-oulogin 1"), "not a man page:\n{page}");
    check_generated("completions/kubectl-oulogin.1", &page);
}

#[test]
fn kubectl_complete_shim_is_an_executable_that_runs_the_plugin() {
    let shim = repo().join("completions/kubectl_complete-oulogin");
    let text = std::fs::read_to_string(&shim).expect("completions/kubectl_complete-oulogin");
    assert!(text.starts_with("#!/bin/sh\n"), "not a POSIX sh script");
    assert!(text.contains("\nexec kubectl-oulogin __complete -- \"$@\"\n"), "{text}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&shim).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "`{}` is not executable", shim.display());
    }
}

/// The visible subcommands, from the `Commands:` section of `--help`.
fn subcommands_from_help(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| *line != "Commands:")
        .skip(1)
        .take_while(|line| !line.trim().is_empty())
        .filter(|line| line.starts_with("  ") && !line.starts_with("   "))
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| *name != "help")
        .map(str::to_string)
        .collect()
}

/// `--help` output without trailing blanks, which editors strip from Markdown.
fn help_text(args: &[&str]) -> String {
    plugin(args).lines().map(|line| format!("{}\n", line.trim_end())).collect()
}

/// The README usage block: `--help` of the plugin and of every subcommand.
fn usage_block() -> String {
    let top = help_text(&["--help"]);
    let mut block = format!(
        "<!-- Generated from `--help`; regenerate with `{REGENERATE}`. -->\n\n\
         ### `kubectl oulogin`\n\n```text\n{}```\n",
        top
    );
    let mut subcommands = subcommands_from_help(&top);
    assert!(subcommands.len() >= 5, "too few subcommands found in `--help`: {subcommands:?}");
    // `token` is left out of the command list (it is for kubectl), not out of the README.
    subcommands.insert(1.min(subcommands.len()), "token".to_string());
    for sub in subcommands {
        let help = help_text(&[&sub, "--help"]);
        block.push_str(&format!("\n### `kubectl oulogin {sub}`\n\n```text\n{help}```\n"));
    }
    block
}

#[test]
fn readme_usage_block_matches_help() {
    const START: &str = "<!-- usage:start -->\n";
    const END: &str = "<!-- usage:end -->";
    let path = repo().join("README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md");
    let start = readme.find(START).expect("README.md has a `<!-- usage:start -->` line") + START.len();
    let end = readme[start..].find(END).expect("README.md has a `<!-- usage:end -->` line") + start;
    let block = usage_block();
    if bless() {
        let updated = format!("{}{}{}", &readme[..start], block, &readme[end..]);
        std::fs::write(&path, updated).expect("write README.md");
        return;
    }
    assert!(
        readme[start..end] == block,
        "the usage block of README.md is stale (it differs from `--help`); regenerate it with `{REGENERATE}`"
    );
}

// ---------------------------------------------------------------------------
// Completion through real kubectl

/// A directory with the plugin and its completion shim, as a user installs them.
fn plugin_path_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(plugin_binary(), dir.path().join("kubectl-oulogin")).unwrap();
    std::fs::copy(repo().join("completions/kubectl_complete-oulogin"), dir.path().join("kubectl_complete-oulogin"))
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in ["kubectl-oulogin", "kubectl_complete-oulogin"] {
            std::fs::set_permissions(dir.path().join(name), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
    dir
}

/// `kubectl __complete oulogin WORDS...`: the candidates (without their
/// descriptions) and the directive line.
fn kubectl_complete(bin: &Path, home: &Path, words: &[&str]) -> (Vec<String>, String) {
    let mut args = vec!["__complete", "oulogin"];
    args.extend_from_slice(words);
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let output = run(&kubectl(), &args, &path, home, &[]);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let mut lines: Vec<&str> = stdout.lines().filter(|line| !line.is_empty()).collect();
    let directive = lines.pop().unwrap_or_default().to_string();
    assert!(
        directive.starts_with(':'),
        "kubectl printed no directive for {words:?}:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let candidates = lines.iter().map(|line| line.split('\t').next().unwrap().to_string()).collect();
    (candidates, directive)
}

#[cfg(unix)]
#[test]
fn real_kubectl_completes_oulogin_through_the_shim() {
    let bin = plugin_path_dir();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(
        home.path().join("kubeconfig"),
        "apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts:\n\
         - name: prod-eu\n  context: {cluster: prod, user: jdoe}\n\
         - name: staging\n  context: {cluster: staging, user: jdoe}\n",
    )
    .unwrap();

    let (candidates, directive) = kubectl_complete(bin.path(), home.path(), &[""]);
    for expected in ["exec", "status", "logout", "completion", "version"] {
        assert!(candidates.contains(&expected.to_string()), "{expected} missing from {candidates:?}");
    }
    assert!(
        !candidates.iter().any(|candidate| candidate.starts_with("__") || candidate == "token"),
        "hidden commands: {candidates:?}"
    );
    assert_eq!(directive, ":4");

    assert_eq!(kubectl_complete(bin.path(), home.path(), &["st"]).0, ["status"]);
    assert_eq!(
        kubectl_complete(bin.path(), home.path(), &["status", "-o", ""]).0,
        ["table", "wide", "name", "json", "yaml"]
    );
    assert_eq!(
        kubectl_complete(bin.path(), home.path(), &["completion", ""]).0,
        ["bash", "elvish", "fish", "powershell", "zsh"]
    );
    // kubectl passes flags through to the plugin; the shim's `--` keeps a typed `--` a word.
    let (flags, _) = kubectl_complete(bin.path(), home.path(), &["--"]);
    assert!(flags.contains(&"--host".to_string()) && flags.contains(&"--no-browser".to_string()), "{flags:?}");
    // Context names come from the KUBECONFIG kubectl runs the shim with.
    assert_eq!(kubectl_complete(bin.path(), home.path(), &["--context", ""]).0, ["prod-eu", "staging"]);
    assert_eq!(kubectl_complete(bin.path(), home.path(), &["logout", "--context", "st"]).0, ["staging"]);
    // Paths are left to the shell (cobra's default directive).
    let (none, directive) = kubectl_complete(bin.path(), home.path(), &["--kubeconfig", ""]);
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(directive, ":0");
}

// ---------------------------------------------------------------------------
// The krew manifest

fn read_manifest(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|err| panic!("cannot read `{}`: {err}", path.display()));
    serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("`{}` is not YAML: {err}", path.display()))
}

fn field<'a>(value: &'a Value, name: &str, at: &str) -> &'a Value {
    value.get(name).unwrap_or_else(|| panic!("krew manifest: `{at}.{name}` is missing"))
}

fn text<'a>(value: &'a Value, name: &str, at: &str) -> &'a str {
    let text =
        field(value, name, at).as_str().unwrap_or_else(|| panic!("krew manifest: `{at}.{name}` is not a string"));
    assert!(!text.trim().is_empty(), "krew manifest: `{at}.{name}` is empty");
    text
}

/// krew decodes manifests strictly: unknown fields are errors.
fn only_fields(value: &Value, allowed: &[&str], at: &str) {
    let object = value.as_object().unwrap_or_else(|| panic!("krew manifest: `{at}` is not a mapping"));
    for key in object.keys() {
        assert!(allowed.contains(&key.as_str()), "krew manifest: unknown field `{at}.{key}`");
    }
}

fn is_sha256(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// Every (os, arch) krew knows (validate-krew-manifest's list); a selector
/// must match one of them.
const KREW_PLATFORMS: [(&str, &str); 11] = [
    ("windows", "386"),
    ("windows", "amd64"),
    ("windows", "arm64"),
    ("linux", "386"),
    ("linux", "amd64"),
    ("linux", "arm"),
    ("linux", "arm64"),
    ("linux", "ppc64le"),
    ("darwin", "386"),
    ("darwin", "amd64"),
    ("darwin", "arm64"),
];

/// The file names krew's validation accepts as the license (case ignored).
const KREW_LICENSE_NAMES: [&str; 8] =
    ["license", "license.txt", "license.md", "licenses", "licenses.txt", "licenses.md", "copying", "copying.txt"];

/// krew's version rule: a leading `v`, then a semantic version as
/// Kubernetes parses it (three numeric parts without leading zeros, an
/// optional `-pre.release` and `+build`, each of dot-separated alphanumerics
/// and hyphens).
fn is_krew_semver(version: &str) -> bool {
    let Some(rest) = version.strip_prefix('v') else { return false };
    let identifiers = |text: &str| {
        text.split('.')
            .all(|part| !part.is_empty() && part.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-'))
    };
    let (rest, build) = rest.split_once('+').map_or((rest, None), |(rest, build)| (rest, Some(build)));
    let (core, pre) = rest.split_once('-').map_or((rest, None), |(core, pre)| (core, Some(pre)));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.bytes().all(|byte| byte.is_ascii_digit())
                && (part.len() == 1 || !part.starts_with('0'))
        })
        && pre.is_none_or(identifiers)
        && build.is_none_or(identifiers)
}

/// krew's `IsSafePluginName`: `^[\w-]+$` and no reserved Windows device name.
fn is_safe_plugin_name(name: &str) -> bool {
    const RESERVED: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1",
        "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    !name.is_empty()
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
        && !RESERVED.iter().any(|reserved| reserved.eq_ignore_ascii_case(name))
}

/// What `validate-krew-manifest -manifest PATH` checks before installing:
/// a `.yaml` file named after the plugin, then the manifest itself.
fn validate_manifest_file(path: &Path) -> Vec<(String, String, String)> {
    let file_name = path.file_name().and_then(|name| name.to_str()).expect("a manifest file name");
    let plugin = file_name.strip_suffix(".yaml").unwrap_or_else(|| panic!("`{file_name}` does not end in `.yaml`"));
    assert!(is_safe_plugin_name(plugin), "`{plugin}` is no plugin name krew allows");
    let manifest = read_manifest(path);
    assert_eq!(
        manifest["metadata"]["name"].as_str(),
        Some(plugin),
        "krew wants `{}` to hold the plugin named after the file",
        path.display()
    );
    validate_manifest(&manifest)
}

/// Checks the manifest the way `krew install --manifest` and the krew-index
/// validation do; returns the target triple each (os, arch) pair points at.
fn validate_manifest(manifest: &Value) -> Vec<(String, String, String)> {
    only_fields(manifest, &["apiVersion", "kind", "metadata", "spec"], "");
    assert_eq!(text(manifest, "apiVersion", ""), "krew.googlecontainertools.github.com/v1alpha2");
    assert_eq!(text(manifest, "kind", ""), "Plugin");
    let metadata = field(manifest, "metadata", "");
    assert_eq!(
        text(metadata, "name", "metadata"),
        "oulogin",
        "the plugin name must match the binary `kubectl-oulogin`"
    );

    let spec = field(manifest, "spec", "");
    only_fields(spec, &["version", "homepage", "shortDescription", "description", "caveats", "platforms"], "spec");
    let version = text(spec, "version", "spec");
    assert!(is_krew_semver(version), "spec.version `{version}` is not `v` and a semantic version");
    assert_eq!(version, format!("v{}", env!("CARGO_PKG_VERSION")), "spec.version is not Cargo.toml's version");
    let short = text(spec, "shortDescription", "spec");
    assert!(short.len() <= 50 && !short.contains(['\r', '\n']), "shortDescription must be one short line: {short:?}");
    // krew's guide: say what the plugin is for, not how to use it.
    let description = text(spec, "description", "spec");
    assert!(description.contains("OpenUnison") && description.contains("lock"), "description: {description}");
    assert!(!description.contains("--") && !description.contains("kubectl oulogin"), "no usage in: {description}");
    let caveats = text(spec, "caveats", "spec");
    assert!(caveats.contains("PATH"), "caveats must say the plugin has to stay on PATH: {caveats}");
    assert!(text(spec, "homepage", "spec").starts_with("https://"), "homepage must be an https URL");

    let platforms = field(spec, "platforms", "spec").as_array().expect("spec.platforms is a list");
    let bare_version = version.trim_start_matches('v');
    let mut pairs = BTreeSet::new();
    let mut targets = Vec::new();
    for (index, platform) in platforms.iter().enumerate() {
        let at = format!("spec.platforms[{index}]");
        only_fields(platform, &["selector", "uri", "sha256", "bin", "files"], &at);
        let selected = selected_platforms(field(platform, "selector", &at), &format!("{at}.selector"));
        for (os, arch) in &selected {
            assert!(pairs.insert((os.to_string(), arch.to_string())), "two platforms select {os}/{arch}");
        }
        // One archive per entry: every (os, arch) it selects must get the same target.
        let targets_selected: BTreeSet<&str> = selected
            .iter()
            .map(|(os, arch)| {
                PLATFORMS
                    .iter()
                    .find(|(known_os, known_arch, _)| known_os == os && known_arch == arch)
                    .unwrap_or_else(|| panic!("{at} selects an unexpected platform {os}/{arch}"))
                    .2
            })
            .collect();
        assert_eq!(targets_selected.len(), 1, "{at} selects platforms that need different archives: {selected:?}");
        let (os, arch) = (selected[0].0.to_string(), selected[0].1.to_string());

        let uri = text(platform, "uri", &at);
        assert!(uri.starts_with("https://"), "{at}.uri is not https: {uri}");
        assert!(uri.contains(&format!("/download/{version}/")), "{at}.uri is not for {version}: {uri}");
        let sha256 = text(platform, "sha256", &at);
        assert!(is_sha256(sha256), "{at}.sha256 is not 64 lowercase hex digits: {sha256}");

        let target = targets_selected.first().unwrap();
        let windows = os == "windows";
        let extension = if windows { "zip" } else { "tar.gz" };
        assert!(
            uri.ends_with(&format!("/kubectl-oulogin-{bare_version}-{target}.{extension}")),
            "{at}.uri does not name the archive release.sh builds for {target}: {uri}"
        );

        let bin = text(platform, "bin", &at);
        assert_eq!(bin, if windows { "kubectl-oulogin.exe" } else { "kubectl-oulogin" }, "{at}.bin");
        let files = field(platform, "files", &at).as_array().expect("files is a list");
        assert!(!files.is_empty(), "{at}.files must be left out or non-empty");
        let mut installed = Vec::new();
        for (file_index, file) in files.iter().enumerate() {
            let file_at = format!("{at}.files[{file_index}]");
            only_fields(file, &["from", "to"], &file_at);
            let from = text(file, "from", &file_at);
            let to = text(file, "to", &file_at);
            assert!(!from.starts_with('/') && !from.contains(".."), "{file_at}.from leaves the archive");
            assert!(!to.starts_with('/') && !to.contains(".."), "{file_at}.to leaves the install directory");
            let name = Path::new(from).file_name().unwrap().to_str().unwrap();
            installed.push(if to == "." { name.to_string() } else { to.to_string() });
        }
        assert!(
            installed.iter().any(|name| name == bin),
            "{at}: bin `{bin}` is not among the installed files {installed:?}"
        );
        assert!(
            installed.iter().any(|name| KREW_LICENSE_NAMES.contains(&name.to_ascii_lowercase().as_str())),
            "{at}: no license file is installed (krew looks for {KREW_LICENSE_NAMES:?})"
        );
        // The completion-shim caveat speaks to exactly the systems whose archive has the shim.
        let has_shim = installed.iter().any(|name| name == "kubectl_complete-oulogin");
        let os_word = match os.as_str() {
            "linux" => "Linux",
            "darwin" => "macOS",
            _ => "Windows",
        };
        let shim_caveat = caveats.split("\n\n").find(|paragraph| paragraph.contains("kubectl_complete-oulogin"));
        let told = shim_caveat.is_some_and(|paragraph| paragraph.contains(os_word));
        assert_eq!(told, has_shim, "{at}: the completion-shim caveat does not match the archive ({os_word})");
        targets.push((os, arch, target.to_string()));
    }
    let expected: BTreeSet<_> = PLATFORMS.iter().map(|(os, arch, _)| (os.to_string(), arch.to_string())).collect();
    assert_eq!(pairs, expected, "platforms must be linux/darwin/windows on amd64 and arm64");
    targets
}

/// The krew platforms (os, arch) a platform entry's selector matches, as a
/// Kubernetes label selector matches the labels `os` and `arch`: every
/// `matchLabels` pair equal, every `matchExpressions` requirement met. Only
/// the `In` operator is accepted (the one a manifest needs to give one
/// archive to several architectures); it must match at least one platform.
fn selected_platforms(selector: &Value, at: &str) -> Vec<(&'static str, &'static str)> {
    only_fields(selector, &["matchLabels", "matchExpressions"], at);
    let mut requirements: Vec<(String, Vec<String>)> = Vec::new();
    if let Some(labels) = selector.get("matchLabels") {
        only_fields(labels, &["os", "arch"], &format!("{at}.matchLabels"));
        for key in ["os", "arch"] {
            if labels.get(key).is_some() {
                requirements.push((key.to_string(), vec![text(labels, key, &format!("{at}.matchLabels")).to_string()]));
            }
        }
    }
    if let Some(expressions) = selector.get("matchExpressions") {
        let expressions = expressions.as_array().unwrap_or_else(|| panic!("{at}.matchExpressions is not a list"));
        for (index, expression) in expressions.iter().enumerate() {
            let expression_at = format!("{at}.matchExpressions[{index}]");
            only_fields(expression, &["key", "operator", "values"], &expression_at);
            let key = text(expression, "key", &expression_at);
            assert!(key == "os" || key == "arch", "{expression_at}: krew sets no label `{key}`");
            assert_eq!(text(expression, "operator", &expression_at), "In", "{expression_at}: only `In` is checked");
            let values = field(expression, "values", &expression_at)
                .as_array()
                .filter(|values| !values.is_empty())
                .unwrap_or_else(|| panic!("{expression_at}.values must be a non-empty list"));
            let values = values
                .iter()
                .map(|value| value.as_str().unwrap_or_else(|| panic!("{expression_at}.values holds a non-string")))
                .map(str::to_string)
                .collect();
            requirements.push((key.to_string(), values));
        }
    }
    assert!(!requirements.is_empty(), "{at} is empty, which would select every platform");
    let selected: Vec<_> = KREW_PLATFORMS
        .iter()
        .copied()
        .filter(|(os, arch)| {
            requirements.iter().all(|(key, values)| values.iter().any(|v| v == if key == "os" { os } else { arch }))
        })
        .collect();
    assert!(!selected.is_empty(), "{at} selects no platform krew knows");
    selected
}

#[test]
fn krew_manifest_is_valid_as_krew_reads_it() {
    let manifest = read_manifest(&repo().join("krew-manifest.yaml"));
    let targets = validate_manifest(&manifest);
    assert_eq!(targets.len(), 5, "one platform entry per archive a release builds");
    // Windows on Arm gets the x86-64 build, through the same entry.
    let amd64 = platform_entry(&manifest, "windows", "amd64");
    assert_eq!(amd64, platform_entry(&manifest, "windows", "arm64"));
    assert!(amd64["uri"].as_str().unwrap().ends_with("-x86_64-pc-windows-gnu.zip"));
}

#[test]
fn krew_versions_and_names_follow_krews_rules() {
    for good in ["v0.1.0", "v1.20.3", "v1.0.0-rc.1", "v1.0.0+build.5", "v10.0.0-alpha-1"] {
        assert!(is_krew_semver(good), "{good}");
    }
    for bad in ["0.1.0", "v0.1", "v1.2.3.4", "v01.2.3", "v1.2.3-", "v1.2.3-a..b", "v1.2.x", "V1.2.3", "v"] {
        assert!(!is_krew_semver(bad), "{bad}");
    }
    assert!(is_safe_plugin_name("oulogin") && is_safe_plugin_name("open_unison-cli"));
    for bad in ["", "ou/login", "ou.login", "con", "LPT1"] {
        assert!(!is_safe_plugin_name(bad), "{bad:?}");
    }
    // The index file must carry the plugin's name.
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("openunison.yaml");
    std::fs::copy(repo().join("krew-manifest.yaml"), &renamed).unwrap();
    assert!(
        std::panic::catch_unwind(|| validate_manifest_file(&renamed)).is_err(),
        "a file not named after the plugin"
    );
    let named = dir.path().join("oulogin.yaml");
    std::fs::copy(repo().join("krew-manifest.yaml"), &named).unwrap();
    validate_manifest_file(&named);
}

#[test]
fn manifest_validation_rejects_what_krew_rejects() {
    let good = read_manifest(&repo().join("krew-manifest.yaml"));
    type Breakage = fn(&mut Value);
    let broken: [(&str, Breakage); 16] = [
        // An unquoted all-digit checksum is a YAML number, which krew's decoding rejects.
        ("numeric sha256", |m| m["spec"]["platforms"][0]["sha256"] = Value::from(0)),
        ("duplicate os/arch", |m| {
            let first = m["spec"]["platforms"][0].clone();
            m["spec"]["platforms"][1] = first;
        }),
        ("uppercase sha256", |m| m["spec"]["platforms"][0]["sha256"] = Value::from("A".repeat(64))),
        ("bin not installed", |m| m["spec"]["platforms"][0]["bin"] = Value::from("other")),
        ("missing selector", |m| {
            m["spec"]["platforms"][2].as_object_mut().unwrap().remove("selector");
        }),
        ("unknown field", |m| m["spec"]["platforms"][0]["shasum"] = Value::from("x")),
        ("version without v", |m| m["spec"]["version"] = Value::from(env!("CARGO_PKG_VERSION"))),
        ("a platform krew does not know", |m| {
            m["spec"]["platforms"][0]["selector"]["matchLabels"]["os"] = Value::from("plan9");
        }),
        ("no license installed", |m| {
            let files = m["spec"]["platforms"][0]["files"].as_array_mut().unwrap();
            files.retain(|file| file["from"] != "LICENSE");
        }),
        ("empty files", |m| m["spec"]["platforms"][0]["files"] = Value::Array(Vec::new())),
        ("a shim caveat for an archive without the shim", |m| {
            let files = m["spec"]["platforms"][0]["files"].as_array_mut().unwrap();
            files.retain(|file| file["from"] != "kubectl_complete-oulogin");
        }),
        ("windows/arm64 selected twice", |m| {
            let mut arm = m["spec"]["platforms"][0].clone();
            arm["selector"] = serde_json::json!({"matchLabels": {"os": "windows", "arch": "arm64"}});
            m["spec"]["platforms"].as_array_mut().unwrap().push(arm);
        }),
        ("windows/arm64 selected by no entry", |m| {
            let windows = m["spec"]["platforms"].as_array_mut().unwrap().last_mut().unwrap();
            windows["selector"]["matchExpressions"][0]["values"] = serde_json::json!(["amd64"]);
        }),
        ("one entry for platforms with different archives", |m| {
            let linux = &mut m["spec"]["platforms"][0];
            linux["selector"] = serde_json::json!({"matchLabels": {"os": "linux"},
                "matchExpressions": [{"key": "arch", "operator": "In", "values": ["amd64", "arm64"]}]});
            m["spec"]["platforms"].as_array_mut().unwrap().remove(1);
        }),
        ("a selector operator the check does not model", |m| {
            let windows = m["spec"]["platforms"].as_array_mut().unwrap().last_mut().unwrap();
            windows["selector"]["matchExpressions"][0]["operator"] = Value::from("NotIn");
        }),
        ("usage in the description", |m| {
            m["spec"]["description"] =
                Value::from("Run `kubectl oulogin --host H` to log in through OpenUnison under a lock.");
        }),
    ];
    for (what, breaks) in broken {
        let mut manifest = good.clone();
        breaks(&mut manifest);
        let result = std::panic::catch_unwind(|| validate_manifest(&manifest));
        assert!(result.is_err(), "a manifest with {what} passed validation");
    }
}

// ---------------------------------------------------------------------------
// The release archive

/// The Rust target of the host, when it is one of the manifest's platforms.
fn host_platform() -> Option<(&'static str, &'static str, &'static str)> {
    let os = match std::env::consts::OS {
        "linux" => "linux",
        "macos" => "darwin",
        "windows" => "windows",
        _ => return None,
    };
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        _ => return None,
    };
    PLATFORMS.iter().copied().find(|(known_os, known_arch, _)| *known_os == os && *known_arch == arch)
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap_or_else(|err| panic!("cannot read `{}`: {err}", path.display()));
    ring::digest::digest(&ring::digest::SHA256, &bytes).as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

fn platform_entry<'a>(manifest: &'a Value, os: &str, arch: &str) -> &'a Value {
    manifest["spec"]["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|platform| {
            selected_platforms(&platform["selector"], "selector")
                .iter()
                .any(|&(known_os, known_arch)| known_os == os && known_arch == arch)
        })
        .unwrap_or_else(|| panic!("no platform {os}/{arch}"))
}

/// Builds the host archive from the already built (debug) binary with
/// `scripts/release.sh --binary`, into a copy of the manifest; installs it the
/// way krew does (files moved into `store/oulogin/VERSION/`, the bin symlinked
/// into `bin/`); and runs it through the real kubectl.
#[cfg(unix)]
#[test]
fn release_archive_matches_manifest_and_installs_like_krew() {
    let Some((os, arch, target)) = host_platform() else {
        eprintln!("skipped: no krew platform for this host");
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let manifest_copy = work.path().join("krew-manifest.yaml");
    std::fs::copy(repo().join("krew-manifest.yaml"), &manifest_copy).unwrap();
    let dist = work.path().join("dist");
    release_with_this_binary(&manifest_copy, &dist, target);

    // The manifest copy is still valid, and only the host platform's sha256 changed.
    let original = read_manifest(&repo().join("krew-manifest.yaml"));
    let filled = read_manifest(&manifest_copy);
    validate_manifest(&filled);
    // The project's krew index: `plugins/oulogin.yaml`, the manifest as filled in.
    let index_file = dist.join("krew-index").join("plugins").join("oulogin.yaml");
    validate_manifest_file(&index_file);
    assert_eq!(
        std::fs::read_to_string(&index_file).unwrap(),
        std::fs::read_to_string(&manifest_copy).unwrap(),
        "the index holds another manifest than the one release.sh filled in"
    );
    let entry = platform_entry(&filled, os, arch);
    let uri = entry["uri"].as_str().unwrap();
    let archive = dist.join(uri.rsplit('/').next().unwrap());
    assert!(archive.is_file(), "release.sh did not write `{}` (the manifest's uri)", archive.display());
    let sha256 = sha256_hex(&archive);
    assert_eq!(entry["sha256"], sha256.as_str(), "the manifest's sha256 is not the archive's");
    let sidecar = std::fs::read_to_string(format!("{}.sha256", archive.display())).expect("the .sha256 file");
    assert!(sidecar.starts_with(&sha256), "{sidecar}");
    let mut expected = original.clone();
    let index =
        original["spec"]["platforms"].as_array().unwrap().iter().position(|p| p == platform_entry(&original, os, arch));
    expected["spec"]["platforms"][index.unwrap()]["sha256"] = Value::from(sha256.as_str());
    assert_eq!(filled, expected, "release.sh changed more than the host platform's sha256");

    // Unpack and install like krew: every `files` entry moved into the version's store directory.
    let unpacked = work.path().join("unpacked");
    std::fs::create_dir(&unpacked).unwrap();
    let tar = Command::new("tar").arg("-xzf").arg(&archive).arg("-C").arg(&unpacked).status().unwrap();
    assert!(tar.success(), "cannot unpack `{}`", archive.display());
    for shipped in ["LICENSE", "kubectl-oulogin.1", "completions/kubectl-oulogin.bash", "kubectl_complete-oulogin"] {
        assert!(unpacked.join(shipped).is_file(), "the archive lacks `{shipped}`");
    }
    let version = filled["spec"]["version"].as_str().unwrap();
    let krew = work.path().join("krew");
    let store = krew.join("store").join("oulogin").join(version);
    std::fs::create_dir_all(&store).unwrap();
    for file in entry["files"].as_array().unwrap() {
        let from = unpacked.join(file["from"].as_str().unwrap());
        let to = match file["to"].as_str().unwrap() {
            "." => store.join(from.file_name().unwrap()),
            to => store.join(to),
        };
        std::fs::rename(&from, &to).unwrap_or_else(|err| panic!("krew would fail to move `{}`: {err}", from.display()));
    }
    let bin_dir = krew.join("bin");
    std::fs::create_dir(&bin_dir).unwrap();
    let bin = entry["bin"].as_str().unwrap();
    std::os::unix::fs::symlink(store.join(bin), bin_dir.join("kubectl-oulogin")).unwrap();

    let home = tempfile::tempdir().unwrap();
    let path = format!("{}:/usr/bin:/bin", bin_dir.display());
    let listed = run(&kubectl(), &["plugin", "list"], &path, home.path(), &[]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.lines().any(|line| line.trim() == bin_dir.join("kubectl-oulogin").display().to_string()),
        "`kubectl plugin list` does not list the krew-installed plugin:\n{listed}"
    );
    let version_output = run(&kubectl(), &["oulogin", "--version"], &path, home.path(), &[]);
    assert_eq!(
        String::from_utf8_lossy(&version_output.stdout).trim(),
        format!("kubectl-oulogin {}", version.trim_start_matches('v'))
    );
}

/// The Windows zip, packaged by `scripts/release.sh --binary` on Linux (a
/// stand-in binary: the packaging and the manifest are under test, not the
/// build): the entry krew picks for windows/amd64 and windows/arm64 gets its
/// checksum; the zip holds what that entry installs, the man page and the
/// completion scripts (PowerShell's among them), and no Unix completion shim.
#[test]
fn release_zip_for_windows_matches_manifest() {
    let work = tempfile::tempdir().unwrap();
    let manifest_copy = work.path().join("krew-manifest.yaml");
    std::fs::copy(repo().join("krew-manifest.yaml"), &manifest_copy).unwrap();
    let dist = work.path().join("dist");
    release_with_this_binary(&manifest_copy, &dist, "x86_64-pc-windows-gnu");
    let filled = read_manifest(&manifest_copy);
    validate_manifest(&filled);
    let entry = platform_entry(&filled, "windows", "arm64");
    assert_eq!(entry, platform_entry(&filled, "windows", "amd64"));
    let uri = entry["uri"].as_str().unwrap();
    let archive = dist.join(uri.rsplit('/').next().unwrap());
    assert!(archive.is_file(), "release.sh did not write `{}` (the manifest's uri)", archive.display());
    assert_eq!(entry["sha256"], sha256_hex(&archive).as_str(), "the manifest's sha256 is not the zip's");

    let listing = Command::new("python3")
        .args(["-c", "import sys, zipfile; print('\\n'.join(zipfile.ZipFile(sys.argv[1]).namelist()))"])
        .arg(&archive)
        .output()
        .expect("python3 lists the zip");
    assert!(listing.status.success(), "{}", String::from_utf8_lossy(&listing.stderr));
    let names: BTreeSet<String> = String::from_utf8(listing.stdout).unwrap().lines().map(str::to_string).collect();
    for file in entry["files"].as_array().unwrap() {
        let from = file["from"].as_str().unwrap();
        assert!(names.contains(from), "the zip lacks `{from}`, which krew installs: {names:?}");
    }
    for shipped in ["kubectl-oulogin.1", "completions/_kubectl-oulogin.ps1"] {
        assert!(names.contains(shipped), "the zip lacks `{shipped}`: {names:?}");
    }
    assert!(!names.contains("kubectl_complete-oulogin"), "the Unix completion shim is in the Windows zip");
    // The same binary, renamed as Windows wants it.
    let unpacked = Command::new("python3")
        .args(["-c", "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))"])
        .arg(&archive)
        .arg("kubectl-oulogin.exe")
        .output()
        .expect("python3 reads the zip");
    assert!(unpacked.stdout == std::fs::read(plugin_binary()).unwrap(), "kubectl-oulogin.exe is not the binary given");
}

/// Runs `scripts/release.sh` for `target` with this build's binary (the
/// archive's shape is under test, not the cross-build), writing archives
/// into `dist` and filling in `manifest`.
fn release_with_this_binary(manifest: &Path, dist: &Path, target: &str) {
    let output = Command::new("bash")
        .arg(repo().join("scripts/release.sh"))
        .args(["--binary".as_ref(), plugin_binary().as_os_str()])
        .args(["--manifest".as_ref(), manifest.as_os_str()])
        .args(["--dist".as_ref(), dist.as_os_str()])
        .arg(target)
        .env("SOURCE_DATE_EPOCH", "0")
        .stdin(Stdio::null())
        .output()
        .expect("run scripts/release.sh");
    assert!(
        output.status.success(),
        "scripts/release.sh failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
