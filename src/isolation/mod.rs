//! Isolation: private per-tool kubeconfig directories for `--isolated` and
//! `exec`, running the command with signals forwarded and its exit status
//! passed through, and removing what killed runs and discarded shells left.
//!
//! Every directory lives under `$KUBECACHEDIR/oulogin/isolated/`, is
//! owner-only (0700, or an owner-only access list on Windows), and holds
//! `kubeconfig` and `session.json` (0600), the session's lock, cool-down and
//! handouts files, and `active.lock`. The plugin creates `active.lock`
//! already flocked and holds it while it logs in; `exec` hands the open file
//! to its command, so the lock stays held for as long as the command (or
//! anything it started) runs, even when the plugin is killed with SIGKILL.
//!
//! One file each: [`private_dir`] (creating, keeping and removing a
//! directory), [`child`] (the command: found before the login, run through
//! `platform::process`, which forwards signals, its exit status passed on),
//! [`leftovers`] (the clean-up every run starts with) and [`shell`] (what
//! `--isolated` prints for the user's shell). The commands themselves are in
//! `commands/exec.rs`.

pub mod child;
pub mod leftovers;
pub mod private_dir;
pub mod shell;

/// Locked while the plugin logs in, and for `exec` while its command runs.
const ACTIVE_LOCK: &str = "active.lock";
/// In an `--isolated` directory: touched when its session was last probed.
const PROBED_MARKER: &str = "session.probed";
