//! The shipped `conf/tessera.toml` is what `/etc/tessera/tessera.toml` starts as: it must load,
//! and every key it documents (commented out) must be a key the parser knows.

use pam_tessera::config::Config;
use std::path::Path;

const SHIPPED: &str = include_str!("../conf/tessera.toml");

#[test]
fn shipped_config_loads_as_defaults() {
    let c = Config::parse(SHIPPED, Path::new("conf/tessera.toml")).unwrap();
    let d = Config::default();
    assert_eq!(c.store.path, d.store.path);
    assert_eq!(c.auth.max_fail, d.auth.max_fail);
    assert_eq!(c.prompts.pin, d.prompts.pin);
}

#[test]
fn every_documented_key_is_known() {
    // Uncomment every `#key = value` and `#[table]` line: deny_unknown_fields refuses a
    // documented key the parser does not have, and a bad example value fails too.
    let uncommented: String = SHIPPED
        .lines()
        .map(|l| match l.strip_prefix('#') {
            // Prose comments are `# text`; commented-out keys and tables have no space.
            Some(rest) if !rest.starts_with(' ') && !rest.is_empty() => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let n = uncommented.lines().filter(|l| l.contains(" = ")).count();
    assert!(n >= 30, "only {n} keys documented");
    let c = Config::parse(&uncommented, Path::new("uncommented.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.auth.realm_separator.as_deref(), Some("@"));
    assert_eq!(c.remote.url.len(), 2);
    assert_eq!(c.sms.parameters.len(), 2);
}
