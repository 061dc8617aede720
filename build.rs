//! Links the unwinder statically into `pam_tessera.so` (and the other targets of the package).
//!
//! Rust's std asks the linker for `-lgcc_s`, so the module would pull `libgcc_s.so.1` into every
//! sshd and sudo process that loads it — on every login, since they dlopen the module per PAM
//! handle — and that library's constructor alone costs more than the whole check (it runs CPUID
//! about ten times; each one traps to the hypervisor in a VM). `-static-libgcc` is ignored for
//! Rust targets, so a linker script named `libgcc_s.so` that stands for the static unwinder
//! (`libgcc_eh.a`) is put first on the link search path. `panic = "unwind"` keeps working: a
//! panic is still caught at the FFI boundary and becomes PAM_ABORT.
//! See docs/benchmarks.md for the figures.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS")?;
    let env = std::env::var("CARGO_CFG_TARGET_ENV")?;
    if os == "linux" && env == "gnu" {
        let dir = PathBuf::from(std::env::var("OUT_DIR")?).join("static-libgcc");
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join("libgcc_s.so"), "INPUT ( -lgcc_eh )\n")?;
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
    // Every symbol of the module must be defined at link time: this is what makes the shipped
    // build (no std, panic = "abort") fail to link while any path to a panic is left in it (its
    // panic handler calls a function that nothing defines: src/ffi/hooks.rs). Not in a fuzzing
    // or sanitizer build, which leaves the sanitizers' symbols to its executable.
    let instrumented = std::env::var_os("CARGO_CFG_FUZZING").is_some()
        || std::env::var_os("CARGO_CFG_SANITIZE").is_some();
    if !instrumented {
        println!("cargo:rustc-cdylib-link-arg=-Wl,--no-undefined");
    }
    Ok(())
}
