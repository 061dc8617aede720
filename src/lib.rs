//! tessera: a PAM module with its own OTP engine and privacyIDEA-style challenge response.
//!
//! Layers, from the outside in: [`pam`] (the only FFI, thin) → [`engine`] (every decision) →
//! [`store`] (SQLite) and [`tokens`] (one module per token type).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod cli;
pub mod config;
pub mod crypto;
pub mod delivery;
pub mod engine;
pub mod error;
pub mod fsperm;
pub mod http;
pub mod pam;
pub mod remote;
pub mod store;
pub mod sys;
pub mod tokens;
