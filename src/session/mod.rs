//! Sessions: the file that holds one OpenUnison session's tokens (0600 in a
//! 0700 directory), its lock, and the `token` exec credential plugin that
//! refreshes it so that any number of processes share one refresh per expiry.

use crate::error::Hint;

/// Failures of the session store and the `token` command.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {}

impl Hint for SessionError {}
