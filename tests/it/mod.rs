//! The integration test modules; one line per file under `tests/it/`.

mod browser;
mod clients;
mod crash;
mod fake_server;
mod harness;
mod hostile;
mod isolation;
mod login;
mod manage;
mod packaging;
mod race;
mod sandbox;
mod security;
mod token;
