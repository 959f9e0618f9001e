//! Name-service lookups in the statically linked Linux release: pinned to the
//! services compiled into glibc itself, so that no NSS module is ever loaded.
//!
//! The Linux release binary links glibc statically (static-pie, see
//! `scripts/build-release.sh`): it starts in a fraction of the time of a
//! dynamically linked one and runs on any glibc. The one thing a static glibc
//! cannot do safely is load an NSS module (`libnss_mdns4_minimal.so.2`,
//! `libnss_systemd.so.2`, `libnss_sss.so.2`, …) that `/etc/nsswitch.conf`
//! names: the module would bring in the machine's shared libc, of another
//! version, beside the static one. `files` and `dns` are built into glibc
//! since 2.34, so pinning `hosts` to `files dns` and `passwd` to `files`
//! resolves names as a static kubectl's own (pure Go) resolver does, and never
//! loads a module. In every other build this does nothing: the dynamic libc
//! follows `/etc/nsswitch.conf` as usual.

/// Pins `hosts` and `passwd` lookups to glibc's built-in services; call before
/// anything that may look up a host name or a user (first thing in `main`).
#[cfg(all(target_os = "linux", target_env = "gnu", target_feature = "crt-static"))]
pub fn pin_builtin_services() {
    unsafe extern "C" {
        /// glibc's documented override of one database's `nsswitch.conf` line;
        /// it also stops later reloads of the file.
        fn __nss_configure_lookup(dbname: *const libc::c_char, service_line: *const libc::c_char) -> libc::c_int;
    }
    for (database, services) in [(c"hosts", c"files dns"), (c"passwd", c"files")] {
        // SAFETY: both arguments are NUL-terminated strings that outlive the
        // call (glibc parses the line into its own storage); called on the main
        // thread before any other thread or lookup exists. A failure (-1, out
        // of memory) leaves the system's configuration in place, which is no
        // worse than not pinning.
        unsafe {
            __nss_configure_lookup(database.as_ptr(), services.as_ptr());
        }
    }
}

/// Nothing to pin: the dynamically linked libc loads NSS modules safely.
#[cfg(not(all(target_os = "linux", target_env = "gnu", target_feature = "crt-static")))]
pub fn pin_builtin_services() {}
