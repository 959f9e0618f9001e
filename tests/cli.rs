//! The one integration-test binary: drives the built `kubectl-oulogin` (and
//! the real `kubectl`) against the fakes in `fake/`, using the harness in
//! `common/`. Test modules are listed in `it/mod.rs`.

mod common;
mod fake;
mod it;
