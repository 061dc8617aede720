//! The `tessera` admin command; everything is in `pam_tessera::cli`.

fn main() -> std::process::ExitCode {
    pam_tessera::cli::main()
}
