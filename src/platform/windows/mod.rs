//! The Windows side of the platform seam (see `platform`): one file per concern.

pub mod files;
pub mod process;
