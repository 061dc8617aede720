//! `Config::parse` on any UTF-8 text: a config file is written by an admin (or a package
//! script) and read by the daemon and the module's fallback; a bad one must be an error that
//! names file and line, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|text: &str| {
    let _ = tessera_engine::config::Config::parse(text, Path::new("/fuzz.toml"));
});
