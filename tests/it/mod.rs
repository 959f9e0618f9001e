//! The integration test modules; one line per file under `tests/it/`.

mod browser;
mod crash;
mod debug;
mod fake_server;
mod harness;
mod hostile;
mod isolation;
mod login;
mod manage;
mod packaging;
mod proxy;
mod race;
mod sandbox;
mod security;
mod token;
