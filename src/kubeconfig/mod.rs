//! The KUBECONFIG list as kubectl reads and writes it: files loaded one by one
//! with the origin of every entry, fields we do not own kept verbatim, and
//! writes that follow kubectl's rules, take its `<file>.lock` and replace files
//! atomically.

use crate::error::Hint;

/// Failures reading or writing kubeconfig files; each names its file.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {}

impl Hint for KubeconfigError {}
