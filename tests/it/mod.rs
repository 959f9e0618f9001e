//! The integration test modules; one line per file under `tests/it/`.

mod browser;
mod clients;
mod crash;
mod debug;
mod deployments;
mod fake_server;
mod files;
mod harness;
mod hostile;
mod isolation;
mod listener;
mod login;
mod manage;
mod packaging;
mod preflight;
mod proxy;
mod race;
mod resilience;
mod sandbox;
mod security;
mod token;
mod windows;
