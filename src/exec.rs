//! Isolation: private per-tool kubeconfig directories for `--isolated` and
//! `exec`, running the child with signals forwarded, its exit status passed
//! through, and leftovers of killed runs cleaned up.

use crate::error::{ExitStatus, Hint};

/// Failures of `exec` and `--isolated`.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {}

impl ExecError {
    pub fn exit_status(&self) -> ExitStatus {
        ExitStatus::Failure
    }
}

impl Hint for ExecError {}
