//! The benchmark behind `scripts/bench.sh`: starts the strict fake OpenUnison
//! and Kubernetes API server from the test suite (`tests/fake/`, grace period
//! 0), logs in with the release `kubectl-oulogin` through the fake browser,
//! and prints medians over repeated runs, each beside its reference measured
//! in the same run:
//!
//! 1. `kubectl-oulogin token` with a valid cached token vs `/bin/true`
//!    (wall time and peak RSS of the child, from `wait4`);
//! 2. real `kubectl get --raw /api` through our exec stanza vs a static `token:` user;
//! 3. refresh storms: N concurrent `kubectl get` at expiry, our exec stanza vs
//!    the legacy `--auth-provider` kubeconfig;
//! 4. `kubectl oulogin --host … --force` end to end with the fake browser;
//! 5. release binary size and dependency count.
//!
//! Usage: `bench [--plugin PATH] [--kubectl PATH] [--quick]`. `bench contexts
//! [--plugin PATH]` times a login and `status` in kubeconfigs of 10, 1,000 and
//! 20,000 other contexts (how the cost grows with the kubeconfig's size). `bench measure-one PROGRAM ARGS…`
//! is the helper it runs as each measured program's parent: it starts the
//! program once and prints `WALL_NS MAXRSS_KB EXIT_CODE`. A fresh parent per
//! run matters: `token` treats the same parent asking again for a token it
//! already got as client-go's re-run after a 401 and refreshes.

#[path = "../tests/fake/mod.rs"]
mod fake;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use fake::{BrowserMode, FakeBrowser, FakeConfig, FakeOpenUnison};

const EXEC_INFO: &str =
    r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#;
const STORM_SIZES: [usize; 3] = [8, 32, 64];
/// A storm's processes are killed after this; a hang counts as a failure.
const STORM_TIMEOUT: Duration = Duration::from_secs(120);

type Result<T> = std::result::Result<T, String>;

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("measure-one") => measure_one(&args[1..]),
        Some("contexts") => contexts(&args[1..]),
        _ => run(&args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bench: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Runs PROGRAM once with stdout and stdin on /dev/null, as the child of this process.
fn measure_one(command: &[String]) -> Result<()> {
    let (program, args) = command.split_first().ok_or("measure-one needs a program")?;
    let started = Instant::now();
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot start `{program}`: {err}"))?;
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for the child we just started; `status` and `usage` are valid for writes.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    let wall = started.elapsed();
    if pid < 0 {
        return Err(format!("wait4: {}", std::io::Error::last_os_error()));
    }
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -1 };
    println!("{} {} {code}", wall.as_nanos(), usage.ru_maxrss);
    Ok(())
}

struct Options {
    plugin: PathBuf,
    kubectl: PathBuf,
    quick: bool,
}

fn parse_options(args: &[String]) -> Result<Options> {
    let mut plugin = None;
    let mut kubectl = PathBuf::from("/usr/bin/kubectl");
    let mut quick = false;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--plugin" => plugin = Some(PathBuf::from(rest.next().ok_or("--plugin needs a path")?)),
            "--kubectl" => kubectl = PathBuf::from(rest.next().ok_or("--kubectl needs a path")?),
            "--quick" => quick = true,
            other => {
                return Err(format!("unknown argument `{other}` (expected --plugin PATH, --kubectl PATH, --quick)"));
            }
        }
    }
    let plugin = match plugin {
        Some(path) => path,
        None => {
            // target/release/examples/bench → target/release/kubectl-oulogin
            let exe = std::env::current_exe().map_err(|err| err.to_string())?;
            exe.parent().and_then(Path::parent).ok_or("no target directory")?.join("kubectl-oulogin")
        }
    };
    if !plugin.is_file() {
        return Err(format!("`{}` does not exist; build it with `cargo build --release`", plugin.display()));
    }
    let plugin = plugin.canonicalize().map_err(|err| err.to_string())?;
    if !kubectl.is_file() {
        return Err(format!("no kubectl at `{}`; pass --kubectl PATH", kubectl.display()));
    }
    Ok(Options { plugin, kubectl, quick })
}

/// One private world: HOME, KUBECACHEDIR and kubeconfigs in a temp dir, with
/// the plugin first on PATH.
struct World {
    root: tempfile::TempDir,
    plugin: PathBuf,
    fake: FakeOpenUnison,
    browser: FakeBrowser,
}

impl World {
    fn start(plugin: &Path) -> World {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let fake =
            FakeOpenUnison::start(FakeConfig { token_lifetime_secs: 3600, ..FakeConfig::with_redirect_port(port) });
        let browser = FakeBrowser::for_fake(&fake, BrowserMode::Follow);
        let root = tempfile::Builder::new().prefix("oulogin-bench-").tempdir().expect("temporary directory");
        std::fs::create_dir_all(root.path().join("home/.kube")).expect("create HOME");
        World { root, plugin: plugin.to_path_buf(), fake, browser }
    }

    fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    fn cache_dir(&self) -> PathBuf {
        self.root.path().join("kubecache")
    }

    fn kubeconfig(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    fn stem(&self) -> String {
        self.fake.host().replace(':', "_")
    }

    fn session_file(&self) -> PathBuf {
        self.cache_dir().join("oulogin").join(format!("{}.json", self.stem()))
    }

    /// A command in this world's cleared environment, using kubeconfig `name`.
    fn command(&self, program: &Path, kubeconfig: &str) -> Command {
        let mut command = Command::new(program);
        let path =
            std::env::join_paths([self.plugin.parent().expect("plugin dir"), Path::new("/usr/bin"), Path::new("/bin")])
                .expect("PATH joins");
        command
            .env_clear()
            .env("PATH", path)
            .env("HOME", self.home())
            .env("KUBECACHEDIR", self.cache_dir())
            .env("KUBECONFIG", self.kubeconfig(kubeconfig))
            .env("LANG", "C.UTF-8")
            .current_dir(self.root.path());
        command
    }

    /// `kubectl oulogin --host … --force [extra]` into kubeconfig `name`; its wall time.
    fn login(&self, kubeconfig: &str, extra: &[&str]) -> Result<Duration> {
        let port = self.fake.redirect_port().to_string();
        let ca = self.fake.ca_file().display().to_string();
        let host = self.fake.host();
        let mut args = vec!["--host", &host, "--certificate-authority", &ca, "--port", &port];
        args.extend(["--browser-command", self.browser.command(), "--force"]);
        args.extend(extra);
        let started = Instant::now();
        let output = self
            .command(&self.plugin, kubeconfig)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("cannot run the plugin: {err}"))?;
        let elapsed = started.elapsed();
        if !output.status.success() {
            return Err(format!("login failed: {}", String::from_utf8_lossy(&output.stderr)));
        }
        Ok(elapsed)
    }

    /// A k8sIdp id_token signed by the fake that expired a second ago.
    fn expired_token(&self) -> String {
        let mut claims = self.fake.k8s_claims(60);
        let now = fake::now_secs();
        claims["iat"] = json!(now - 61);
        claims["exp"] = json!(now - 1);
        self.fake.sign(&claims)
    }

    /// Puts an expired id_token into the shared session (its refresh token stays live).
    fn expire_session_token(&self) -> Result<()> {
        let path = self.session_file();
        let mut session: Value = serde_json::from_slice(&std::fs::read(&path).map_err(|err| err.to_string())?)
            .map_err(|err| err.to_string())?;
        session["id_token"] = json!(self.expired_token());
        write_private(&path, &serde_json::to_vec_pretty(&session).expect("JSON"))
    }

    /// Puts an expired id-token into a legacy `auth-provider` kubeconfig
    /// (rewritten as JSON, which kubectl reads as well).
    fn expire_legacy_token(&self, kubeconfig: &str) -> Result<()> {
        let path = self.kubeconfig(kubeconfig);
        let text = std::fs::read_to_string(&path).map_err(|err| err.to_string())?;
        let mut config: Value = serde_saphyr::from_str(&text).map_err(|err| format!("`{}`: {err}", path.display()))?;
        let users = config["users"].as_array_mut().ok_or("no users in the legacy kubeconfig")?;
        let expired = self.expired_token();
        let mut replaced = 0;
        for user in users.iter_mut() {
            if let Some(provider) = user["user"]["auth-provider"]["config"].as_object_mut() {
                provider.insert("id-token".into(), json!(expired));
                replaced += 1;
            }
        }
        if replaced != 1 {
            return Err(format!("expected one auth-provider user in `{}`, found {replaced}", path.display()));
        }
        write_private(&path, &serde_json::to_vec_pretty(&config).expect("JSON"))
    }

    fn refresh_calls(&self) -> u64 {
        let counters = self.fake.counters();
        counters.refreshes_ok + counters.refreshes_failed + counters.refreshes_grace
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let temp = path.with_extension("bench-tmp");
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temp)
        .and_then(|mut file| std::io::Write::write_all(&mut file, bytes))
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|err| format!("cannot write `{}`: {err}", path.display()))
}

/// One run measured by a fresh `bench measure-one` parent.
struct Sample {
    wall: Duration,
    max_rss_kb: u64,
}

fn measure(world: &World, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<Sample> {
    let runner = std::env::current_exe().map_err(|err| err.to_string())?;
    let mut command = world.command(&runner, "config");
    command.arg("measure-one").arg(program).args(args);
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().map_err(|err| format!("cannot run measure-one: {err}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let fields: Vec<i64> = text.split_whitespace().filter_map(|field| field.parse().ok()).collect();
    match fields[..] {
        [wall_ns, max_rss_kb, 0] => {
            Ok(Sample { wall: Duration::from_nanos(wall_ns as u64), max_rss_kb: max_rss_kb as u64 })
        }
        _ => Err(format!("`{}` failed: {text} {}", program.display(), String::from_utf8_lossy(&output.stderr))),
    }
}

fn median(values: &mut [Duration]) -> Duration {
    values.sort_unstable();
    values[values.len() / 2]
}

/// The median over rounds of `ours[i] / reference[i]` (runs of one round).
fn median_ratio(ours: &[Duration], reference: &[Duration]) -> f64 {
    let mut ratios: Vec<f64> =
        ours.iter().zip(reference).map(|(ours, reference)| ours.as_secs_f64() / reference.as_secs_f64()).collect();
    ratios.sort_unstable_by(f64::total_cmp);
    ratios[ratios.len() / 2]
}

/// Nearest-rank percentile.
fn percentile(values: &mut [Duration], pct: f64) -> Duration {
    values.sort_unstable();
    let rank = ((pct / 100.0) * values.len() as f64).ceil() as usize;
    values[rank.clamp(1, values.len()) - 1]
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn run(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    let world = World::start(&options.plugin);
    if std::env::var_os("BENCH_KEEP").is_some() {
        eprintln!("bench: working in {}", world.root.path().display());
    }
    let mut rows: Vec<[String; 6]> = Vec::new();

    // 4. Login end to end (also creates the session everything else uses).
    let logins = if options.quick { 3 } else { 11 };
    let mut login_times = Vec::new();
    for _ in 0..logins {
        login_times.push(world.login("config", &[])?);
    }
    let login_median = median(&mut login_times);

    // 1. Cached token vs /bin/true.
    let runs = if options.quick { 51 } else { 301 };
    let session = world.stem();
    let host = world.fake.host();
    let token_args = ["token", "--session", session.as_str(), "--host", host.as_str()];
    let exec_info = [("KUBERNETES_EXEC_INFO", EXEC_INFO)];
    let refreshes_before = world.refresh_calls();
    let (mut token_walls, mut true_walls, mut token_rss, mut true_rss) = (Vec::new(), Vec::new(), 0, 0);
    for _ in 0..runs {
        let reference = measure(&world, Path::new("/bin/true"), &[], &[])?;
        true_walls.push(reference.wall);
        true_rss = true_rss.max(reference.max_rss_kb);
        let ours = measure(&world, &options.plugin, &token_args, &exec_info)?;
        token_walls.push(ours.wall);
        token_rss = token_rss.max(ours.max_rss_kb);
    }
    if world.refresh_calls() != refreshes_before {
        return Err("the cached-token runs refreshed; the measurement is not of the cached path".into());
    }
    let (token_median, true_median) = (median(&mut token_walls), median(&mut true_walls));
    let token_ratio = token_median.as_secs_f64() / true_median.as_secs_f64();
    rows.push([
        format!("1. `token`, cached token (median of {runs})"),
        ms(token_median),
        format!("{} (`/bin/true`)", ms(true_median)),
        format!("{token_ratio:.2}x"),
        "≤ 3x".into(),
        verdict(token_ratio <= 3.0).into(),
    ]);
    rows.push([
        format!("1. `token` peak RSS (max of {runs})"),
        format!("{:.1} MB", token_rss as f64 / 1024.0),
        format!("{:.1} MB (`/bin/true`)", true_rss as f64 / 1024.0),
        format!("{:.2}x", token_rss as f64 / true_rss.max(1) as f64),
        "≤ 10 MB".into(),
        verdict(token_rss <= 10 * 1024).into(),
    ]);

    // 1b. The refresh path, for the storms below: how long a stale token keeps the lock.
    let refresh_runs = if options.quick { 5 } else { 21 };
    let mut refresh_walls = Vec::new();
    for _ in 0..refresh_runs {
        world.expire_session_token()?;
        let before = world.refresh_calls();
        refresh_walls.push(measure(&world, &options.plugin, &token_args, &exec_info)?.wall);
        if world.refresh_calls() != before + 1 {
            return Err("a run with a stale token did not refresh exactly once".into());
        }
    }
    let refresh_median = median(&mut refresh_walls);
    rows.push([
        format!("1. `token`, stale token: one refresh over HTTPS (median of {refresh_runs})"),
        ms(refresh_median),
        format!("{} (`/bin/true`)", ms(true_median)),
        format!("{:.1}x", refresh_median.as_secs_f64() / true_median.as_secs_f64()),
        "–".into(),
        "–".into(),
    ]);

    // 2. kubectl through the exec stanza vs a static token user.
    let (exec_config, static_config, cat_config) = kubeconfigs_for_kubectl(&world)?;
    let kubectl_runs = if options.quick { 9 } else { 301 };
    let (mut exec_walls, mut static_walls, mut cat_walls) = (Vec::new(), Vec::new(), Vec::new());
    let kubectl = options.kubectl.as_path();
    let refreshes_before = world.refresh_calls();
    for round in 0..kubectl_runs {
        let mut configs =
            [(&exec_config, &mut exec_walls), (&static_config, &mut static_walls), (&cat_config, &mut cat_walls)];
        // Each configuration goes first, second and third equally often, so
        // that whatever the position in a round costs falls on all three.
        configs.rotate_left(round % 3);
        for (config, walls) in configs {
            let sample = measure(&world, kubectl, &["get", "--raw", "/api", "--kubeconfig", config], &[])?;
            walls.push(sample.wall);
        }
    }
    if world.refresh_calls() != refreshes_before {
        return Err("the kubectl runs refreshed; the measurement is not of the cached path".into());
    }
    // The verdict is on the median of the rounds' own ratios: the three runs
    // of a round are a few hundred milliseconds apart, so a round's ratio is
    // free of whatever else the machine does over the minute of the loop.
    // (Paired by index, so taken before `median` sorts the walls.)
    let exec_ratio = median_ratio(&exec_walls, &static_walls);
    let cat_ratio = median_ratio(&cat_walls, &static_walls);
    let above_cat = median_ratio(&exec_walls, &cat_walls);
    let (exec_median, static_median) = (median(&mut exec_walls), median(&mut static_walls));
    let cat_median = median(&mut cat_walls);
    let ratio_of_medians = |median: Duration| median.as_secs_f64() / static_median.as_secs_f64();
    rows.push([
        format!("2. `kubectl get --raw /api`, exec stanza (medians of {kubectl_runs} rounds)"),
        ms(exec_median),
        format!("{} (static `token:`)", ms(static_median)),
        format!("{exec_ratio:.3}x (ratio of medians {:.3}x)", ratio_of_medians(exec_median)),
        "≤ 1.05x".into(),
        verdict(exec_ratio <= 1.05).into(),
    ]);
    rows.push([
        format!(
            "2. the same, exec stanza running `/bin/cat` (floor of any exec plugin; medians of {kubectl_runs} rounds)"
        ),
        ms(cat_median),
        format!("{} (static `token:`)", ms(static_median)),
        format!("{cat_ratio:.3}x (ratio of medians {:.3}x)", ratio_of_medians(cat_median)),
        "–".into(),
        "–".into(),
    ]);
    rows.push([
        format!("2. exec stanza against the `/bin/cat` stanza: what the plugin adds to any exec plugin ({kubectl_runs} rounds)"),
        ms(exec_median),
        format!("{} (`/bin/cat` stanza)", ms(cat_median)),
        format!("{above_cat:.3}x"),
        "–".into(),
        "–".into(),
    ]);

    // 4 (printed here, measured first).
    rows.push([
        format!("4. login end to end, fake browser (median of {logins})"),
        ms(login_median),
        "–".into(),
        "–".into(),
        "–".into(),
        "–".into(),
    ]);

    // 5. Binary size and dependencies.
    let size = std::fs::metadata(&options.plugin).map_err(|err| err.to_string())?.len();
    rows.push([
        "5. release binary size (stripped)".into(),
        format!("{:.2} MB", size as f64 / (1024.0 * 1024.0)),
        "–".into(),
        "–".into(),
        "≤ 8 MB".into(),
        verdict(size <= 8 * 1024 * 1024).into(),
    ]);
    rows.push([
        "5. dependencies (`cargo tree --edges normal --prefix none \\| sort -u \\| wc -l`)".into(),
        dependency_count().map(|count| count.to_string()).unwrap_or_else(|err| format!("n/a ({err})")),
        "–".into(),
        "–".into(),
        "–".into(),
        "–".into(),
    ]);

    println!("| measurement | ours | reference | ratio | target | verdict |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!("| {} |", row.join(" | "));
    }
    println!();

    // 3. Refresh storms.
    let trials = if options.quick { 1 } else { 3 };
    world.fake.set_token_lifetime_secs(60);
    world.login("legacy", &["--auth-provider"])?;
    println!(
        "3. refresh storm: N concurrent `kubectl get --raw /api/v1/namespaces/default` at expiry, {trials} trial(s) each"
    );
    println!(
        "   (wall time of every process from its start to its exit; refresh calls = POSTs to the k8sIdp token endpoint)"
    );
    println!();
    println!("| N | kubeconfig | failed runs | refresh calls per trial | p50 wall | p99 wall |");
    println!("|---|---|---|---|---|---|");
    let mut failure_samples = Vec::new();
    for n in STORM_SIZES {
        for subject in [Storm::Ours, Storm::Legacy, Storm::StaticToken] {
            let mut walls = Vec::new();
            let (mut failed, mut calls, mut first_failure) = (0, Vec::new(), None);
            for _ in 0..trials {
                let config = match subject {
                    Storm::Ours => {
                        world.expire_session_token()?;
                        "config"
                    }
                    Storm::Legacy => {
                        // A fresh session per trial: the last storm may have burnt it.
                        world.login("legacy", &["--auth-provider"])?;
                        world.expire_legacy_token("legacy")?;
                        "legacy"
                    }
                    Storm::StaticToken => "static.json",
                };
                let before = world.refresh_calls();
                let outcome = storm(&world, &options.kubectl, config, n);
                calls.push(world.refresh_calls() - before);
                failed += outcome.iter().filter(|(ok, _, _)| !ok).count();
                walls.extend(outcome.iter().map(|(_, wall, _)| *wall));
                if let Some((_, _, stderr)) = outcome.iter().find(|(ok, _, _)| !ok)
                    && first_failure.is_none()
                {
                    first_failure = Some(stderr.lines().find(|line| !line.trim().is_empty()).unwrap_or("").to_string());
                }
            }
            calls.sort_unstable();
            let label = subject.label();
            println!(
                "| {n} | {label} | {failed}/{} | {} | {} | {} |",
                n * trials,
                calls[calls.len() / 2],
                ms(percentile(&mut walls, 50.0)),
                ms(percentile(&mut walls, 99.0)),
            );
            if let Some(stderr) = first_failure {
                failure_samples.push(format!("N = {n}, {label}: {stderr}"));
            }
        }
    }
    if !failure_samples.is_empty() {
        println!();
        println!("First stderr line of one failed kubectl per row:");
        for sample in failure_samples {
            println!("- {sample}");
        }
    }
    // 3b. The plugin alone: no kubectl CPU in the way, so the lock's own cost shows.
    println!();
    println!(
        "3b. the plugin alone: N concurrent `kubectl-oulogin token` at expiry (each under its own parent), {trials} trial(s) each"
    );
    println!();
    println!("| N | failed runs | refresh calls per trial | p50 wall | p99 wall |");
    println!("|---|---|---|---|---|");
    for n in STORM_SIZES {
        let (mut walls, mut failed, mut calls) = (Vec::new(), 0, Vec::new());
        for _ in 0..trials {
            world.expire_session_token()?;
            let before = world.refresh_calls();
            let samples: Vec<Result<Sample>> = std::thread::scope(|scope| {
                let runs: Vec<_> =
                    (0..n).map(|_| scope.spawn(|| measure(&world, &options.plugin, &token_args, &exec_info))).collect();
                runs.into_iter().map(|run| run.join().unwrap_or_else(|_| Err("panicked".into()))).collect()
            });
            calls.push(world.refresh_calls() - before);
            for sample in samples {
                match sample {
                    Ok(sample) => walls.push(sample.wall),
                    Err(_) => failed += 1,
                }
            }
        }
        calls.sort_unstable();
        let (p50, p99) = if walls.is_empty() {
            ("–".to_string(), "–".to_string())
        } else {
            (ms(percentile(&mut walls, 50.0)), ms(percentile(&mut walls, 99.0)))
        };
        println!("| {n} | {failed}/{} | {} | {p50} | {p99} |", n * trials, calls[calls.len() / 2]);
    }
    Ok(())
}

/// Who takes part in a refresh storm.
#[derive(Clone, Copy)]
enum Storm {
    /// The login's kubeconfig (our exec stanza), its session's id_token just expired.
    Ours,
    /// An `--auth-provider` kubeconfig whose id-token just expired.
    Legacy,
    /// A static `token:` user: no plugin, no refresh; what N kubectl cost on this machine anyway.
    StaticToken,
}

impl Storm {
    fn label(self) -> &'static str {
        match self {
            Storm::Ours => "exec stanza (ours)",
            Storm::Legacy => "legacy `auth-provider: oidc`",
            Storm::StaticToken => "static `token:` (no refresh: contention floor)",
        }
    }
}

/// Kubeconfigs that differ only in the user: the one the login wrote (our
/// exec stanza), the same with a static `token:` the fake API accepts, and an
/// exec stanza running `/bin/cat` on a canned ExecCredential with that token
/// (what any exec plugin costs kubectl at the least). All as JSON, so kubectl
/// parses them the same way.
fn kubeconfigs_for_kubectl(world: &World) -> Result<(String, String, String)> {
    let written = std::fs::read_to_string(world.kubeconfig("config")).map_err(|err| err.to_string())?;
    let config: Value = serde_saphyr::from_str(&written).map_err(|err| format!("the login's kubeconfig: {err}"))?;
    let exec_path = world.kubeconfig("exec.json");
    write_private(&exec_path, &serde_json::to_vec_pretty(&config).expect("JSON"))?;
    let mut with_token = config.clone();
    let users = with_token["users"].as_array_mut().ok_or("no users in the login's kubeconfig")?;
    let token = world.fake.sign(&world.fake.k8s_claims(3600));
    for user in users.iter_mut() {
        user["user"] = json!({ "token": token });
    }
    let static_path = world.kubeconfig("static.json");
    write_private(&static_path, &serde_json::to_vec_pretty(&with_token).expect("JSON"))?;

    let credential_path = world.kubeconfig("credential.json");
    let credential = json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1",
        "spec": {"interactive": false},
        "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"},
    });
    write_private(&credential_path, credential.to_string().as_bytes())?;
    let mut with_cat = config;
    for user in with_cat["users"].as_array_mut().ok_or("no users")?.iter_mut() {
        user["user"] = json!({"exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": "/bin/cat",
            "args": [credential_path],
            "interactiveMode": "Never",
            "provideClusterInfo": false,
        }});
    }
    let cat_path = world.kubeconfig("cat.json");
    write_private(&cat_path, &serde_json::to_vec_pretty(&with_cat).expect("JSON"))?;
    Ok((exec_path.display().to_string(), static_path.display().to_string(), cat_path.display().to_string()))
}

/// Starts `n` kubectl processes at once on kubeconfig `config`; whether each
/// succeeded, how long it took and what it wrote on stderr. Stragglers are killed after [`STORM_TIMEOUT`].
fn storm(world: &World, kubectl: &Path, config: &str, n: usize) -> Vec<(bool, Duration, String)> {
    let started = Instant::now();
    let mut pids = Vec::new();
    let mut waiters = Vec::new();
    for _ in 0..n {
        let mut command = world.command(kubectl, config);
        command.args(["get", "--raw", "/api/v1/namespaces/default"]);
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
        let spawned = Instant::now();
        match command.spawn() {
            Ok(child) => {
                pids.push(child.id());
                waiters.push(std::thread::spawn(move || match child.wait_with_output() {
                    Ok(output) => {
                        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
                        (output.status.success(), spawned.elapsed(), stderr)
                    }
                    Err(err) => (false, spawned.elapsed(), err.to_string()),
                }));
            }
            Err(err) => waiters.push(std::thread::spawn(move || (false, Duration::ZERO, err.to_string()))),
        }
    }
    while waiters.iter().any(|waiter| !waiter.is_finished()) && started.elapsed() < STORM_TIMEOUT {
        std::thread::sleep(Duration::from_millis(20));
    }
    for (pid, waiter) in pids.iter().zip(&waiters) {
        if !waiter.is_finished() {
            // SAFETY: kill(2) on a child that has not been reaped yet (its waiter is still blocked).
            unsafe {
                libc::kill(*pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }
    waiters.into_iter().map(|waiter| waiter.join().unwrap_or((false, STORM_TIMEOUT, "killed".into()))).collect()
}

fn dependency_count() -> Result<usize> {
    let output = Command::new("cargo")
        .args(["tree", "--edges", "normal", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run cargo tree: {err}"))?;
    if !output.status.success() {
        return Err("cargo tree failed".into());
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let unique: std::collections::BTreeSet<&str> = text.lines().collect();
    Ok(unique.len())
}

/// `bench contexts`: login (`--force`) and `status` in a kubeconfig that
/// holds `count` contexts of other tools besides ours, for growing counts;
/// medians, and the cost per context, which must not grow with the count.
fn contexts(args: &[String]) -> Result<()> {
    let options = parse_options(args)?;
    let world = World::start(&options.plugin);
    let runs = if options.quick { 3 } else { 7 };
    println!("| contexts | kubeconfig | login (median of {runs}) | `status` (median of {runs}) |");
    println!("|---:|---:|---:|---:|");
    for count in [10, 1_000, 20_000] {
        let name = format!("contexts-{count}");
        std::fs::write(
            world.kubeconfig(&name),
            fake::kubeconfigs::other_tools_contexts(count, &fake::kubeconfigs::realistic_ca_data()),
        )
        .map_err(|err| err.to_string())?;
        let size = std::fs::metadata(world.kubeconfig(&name)).map_err(|err| err.to_string())?.len();
        let mut logins = Vec::new();
        let mut statuses = Vec::new();
        for _ in 0..runs {
            logins.push(world.login(&name, &[])?);
            let started = Instant::now();
            let output = world
                .command(&world.plugin, &name)
                .arg("status")
                .stdin(Stdio::null())
                .output()
                .map_err(|err| format!("cannot run the plugin: {err}"))?;
            statuses.push(started.elapsed());
            if !output.status.success() {
                return Err(format!("status failed: {}", String::from_utf8_lossy(&output.stderr)));
            }
        }
        let (login, status) = (median(&mut logins), median(&mut statuses));
        println!("| {count} | {:.1} MB | {} | {} |", size as f64 / 1e6, ms(login), ms(status));
    }
    Ok(())
}
