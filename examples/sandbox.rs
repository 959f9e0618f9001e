//! The sandbox: the strict fake OpenUnison and fake Kubernetes API server
//! from the test suite (the same code, `tests/fake/`), runnable by hand.
//!
//! - `sandbox serve [--token-lifetime 60s] [--grace-period 0ms] [--inactivity-timeout 15m]
//!   [--cluster-name kubernetes] [--port 8400]`: start both servers on loopback and print the
//!   `--host` and `--certificate-authority` to use, then log what happens until Ctrl-C.
//! - `sandbox browse URL [--ca FILE]`: the test suite's headless browser: follow
//!   the redirect chain from URL with a cookie jar and print every hop.
//! - `sandbox demo`: (to come) login plus the refresh race, legacy vs exec stanza.

#[path = "../tests/fake/mod.rs"]
mod fake;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Try kubectl-oulogin without an OpenUnison: a strict fake one on loopback.
#[derive(Debug, Parser)]
#[command(name = "sandbox")]
struct Sandbox {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Start the fake OpenUnison and Kubernetes API server and wait for Ctrl-C.
    Serve(ServeArgs),
    /// Follow a login URL like a browser would, and print each hop.
    Browse(BrowseArgs),
    /// Log in with kubectl-oulogin and race it against the legacy auth-provider (not yet available).
    Demo,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Lifetime of the k8sIdp id_tokens.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    token_lifetime: Duration,
    /// OpenUnison's refresh-token grace period (0 = one-time refresh tokens).
    #[arg(long, default_value = "0ms", value_parser = parse_duration)]
    grace_period: Duration,
    /// Sliding session lifetime without refreshes.
    #[arg(long, default_value = "15m", value_parser = parse_duration)]
    inactivity_timeout: Duration,
    /// Cluster (and context) name the bootstrap JSON announces.
    #[arg(long, default_value = "kubernetes")]
    cluster_name: String,
    /// Loopback port of the registered redirect URI (`kubectl oulogin --port`).
    #[arg(long, default_value_t = 8400)]
    port: u16,
    /// Serve OpenUnison with a self-signed CA:TRUE certificate instead of a CA-issued one.
    #[arg(long)]
    self_signed: bool,
}

#[derive(Debug, Args)]
struct BrowseArgs {
    /// The URL the plugin would open (`https://HOST/cli-login` or an authorization URL).
    url: String,
    /// PEM file to trust (the CA file `serve` printed).
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// Stop before the loopback `/redirect` URL and print it (for pasting into `--no-browser`).
    #[arg(long)]
    stop_at_redirect: bool,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|err| format!("`{text}` is not a duration ({err})"))
}

fn main() -> std::process::ExitCode {
    let sandbox = Sandbox::parse();
    let result = match sandbox.mode {
        Mode::Serve(args) => serve(args),
        Mode::Browse(args) => browse(args),
        Mode::Demo => Err("`sandbox demo` is not implemented yet; use `sandbox serve`".to_string()),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(args: ServeArgs) -> Result<(), String> {
    let config = fake::FakeConfig {
        redirect_port: args.port,
        cluster_name: args.cluster_name,
        token_lifetime_secs: args.token_lifetime.as_secs().max(1),
        grace_period_ms: args.grace_period.as_millis() as u64,
        inactivity_timeout_secs: args.inactivity_timeout.as_secs().max(1),
        self_signed: args.self_signed,
        ..fake::FakeConfig::default()
    };
    let fake = fake::FakeOpenUnison::start(config);
    println!("fake OpenUnison:          {}", fake.base_url());
    println!("fake Kubernetes API:      {}", fake.api_server_url());
    println!("OpenUnison CA file:       {}", fake.ca_file().display());
    println!("redirect URI registered:  {}", fake.redirect_uri());
    println!();
    println!("Log in with:");
    println!(
        "  kubectl oulogin --host {} --certificate-authority {} --port {}",
        fake.host(),
        fake.ca_file().display(),
        fake.redirect_port()
    );
    println!("Use a scratch kubeconfig to keep yours untouched: export KUBECONFIG=$(mktemp)");
    println!("Ctrl-C stops the servers and removes their files.");
    println!();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .map_err(|err| format!("cannot handle signal {signal}: {err}"))?;
    }
    let mut printed = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        let events = fake.events();
        for event in &events[printed..] {
            println!("{}  {event}", humantime::format_rfc3339_seconds(std::time::SystemTime::now()));
        }
        printed = events.len();
        std::thread::sleep(Duration::from_millis(200));
    }
    let counters = fake.counters();
    println!(
        "\nstopping: {} sessions minted, {} refreshes ({} refused), {} API requests ({} unauthorized)",
        counters.sessions_minted,
        counters.refreshes_ok,
        counters.refreshes_failed,
        fake.api().ok_requests(),
        fake.api().unauthorized_requests()
    );
    Ok(())
}

fn browse(args: BrowseArgs) -> Result<(), String> {
    let pem = match &args.ca {
        Some(path) => {
            std::fs::read_to_string(path).map_err(|err| format!("cannot read `{}`: {err}", path.display()))?
        }
        None => String::new(),
    };
    let trusted: Vec<&str> = if pem.is_empty() { vec![] } else { vec![pem.as_str()] };
    let browser = fake::browser::Browser::new(&trusted);
    let outcome = if args.stop_at_redirect {
        browser.follow_until_loopback_redirect(&args.url)
    } else {
        browser.follow(&args.url)
    };
    for (url, status) in &outcome.hops {
        println!("{status}  {url}");
    }
    if args.stop_at_redirect
        && let Some(redirect) = &outcome.loopback_redirect
    {
        println!("{redirect}");
    }
    match outcome.error {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
