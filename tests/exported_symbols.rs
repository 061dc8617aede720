//! The module exports the six PAM service functions and nothing else, like pam_u2f and
//! google-authenticator-libpam: no Rust symbol can clash with the host's.

mod support;

#[test]
fn the_module_exports_only_the_six_pam_sm_functions() {
    let so = support::module_path();
    let out = std::process::Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(&so)
        .output()
        .expect("nm (apt-get install binutils)");
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let mut all: Vec<(&str, &str)> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace().rev();
            let name = f.next()?;
            let kind = f.next()?;
            Some((kind, name))
        })
        .collect();
    all.sort();
    let functions: Vec<&str> = all
        .iter()
        .filter(|(k, _)| *k == "T" || *k == "t" || *k == "W" || *k == "i")
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(
        functions,
        [
            "pam_sm_acct_mgmt",
            "pam_sm_authenticate",
            "pam_sm_chauthtok",
            "pam_sm_close_session",
            "pam_sm_open_session",
            "pam_sm_setcred",
        ],
        "{}: {text}",
        so.display()
    );
    // No data symbols either (B, D, R, V ...).
    assert_eq!(all.len(), 6, "{text}");
}
