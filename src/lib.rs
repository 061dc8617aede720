//! pam_tessera: the PAM module. PAM items, module arguments and the conversation; the decision
//! is the engine's ([`tessera_engine`]).
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::todo,
    clippy::unimplemented
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod pam;
