//! The Windows side of the platform seam (see `platform`): one file per concern.

pub mod files;
pub mod process;

/// Nothing to pin: Windows resolves names without loadable NSS modules
/// (see the Unix side's `nss.rs` for why a static glibc must).
pub fn pin_builtin_services() {}
