//! The Unix side of the platform seam (see `platform`): one file per concern.

pub mod files;
mod nss;
pub mod process;

pub use nss::pin_builtin_services;
