//! The browser login: loopback listener on 127.0.0.1, authorization code with
//! `state`, `nonce` and PKCE S256 against OpenUnison's `cli-local` client, and
//! the `/k8slogin/token/user` bootstrap that mints a new session.

use crate::error::Hint;

/// Failures of the browser login.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {}

impl Hint for LoginError {}
