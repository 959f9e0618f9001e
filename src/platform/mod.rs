//! The platform seam: everything that differs between Unix and Windows
//! (file modes and owners, devices and inodes, atomic replace, process
//! liveness and parent ids, signals and child control, terminals, name-service
//! lookups of the static Linux build). The rest
//! of the crate calls `platform::files` and `platform::process` and never
//! `std::os::unix`, `libc` or `windows_sys` itself; a port adds a sibling
//! directory beside `unix/` and `windows/`.

// The Windows side's decisions (access lists, retries), platform-free so
// that they are unit-tested everywhere.
#[cfg(any(windows, test))]
mod access;

#[cfg(unix)]
mod unix;
#[cfg(unix)]
pub use unix::{files, pin_builtin_services, process};

#[cfg(windows)]
mod windows;
#[cfg(windows)]
pub use windows::{files, pin_builtin_services, process};

// Windows' program lookup, pure so that it is tested everywhere.
#[cfg(any(windows, test))]
pub mod pathext;
