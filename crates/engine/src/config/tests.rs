//! The tests of the config: parsing, defaults, and the message of each bad key. Apart from
//! `mod.rs` so that the room's code reads without them.

use super::*;

#[test]
fn pin_hashes_at_once_fit_the_memory_limit() {
    assert_eq!(pin_hashes_that_fit(2, None), 2);
    assert_eq!(pin_hashes_that_fit(16, None), 16);
    // The unit's MemoryMax=256M: 8 places beside the base, whatever the CPUs.
    assert_eq!(pin_hashes_that_fit(16, Some(256 << 20)), 8);
    assert_eq!(pin_hashes_that_fit(4, Some(256 << 20)), 4);
    assert_eq!(pin_hashes_that_fit(8, Some(64 << 20)), 1, "at least one");
}

fn parse(t: &str) -> Result<Config> {
    Config::parse(t, Path::new("/x/tessera.toml"))
}

#[test]
fn empty_file_gives_defaults() {
    let c = parse("").unwrap();
    assert_eq!(c.auth.max_fail, 10);
    assert_eq!(c.auth.challenge_response, ["hotp", "totp"]);
    assert_eq!(c.prompts.pin, "PIN: ");
    assert_eq!(c.auth.otppin, OtpPin::Token);
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let e = parse("[auth]\nmax_fail = 3\nmax_fails = 4\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/x/tessera.toml:3"), "{e}");
    assert!(e.contains("max_fails"), "{e}");
}

#[test]
fn bad_value_names_file_line_and_key() {
    let e = parse("[auth]\n\nmax_fail = 0\n").unwrap_err().to_string();
    assert!(
        e.contains("/x/tessera.toml:3") && e.contains("max_fail"),
        "{e}"
    );
    let e = parse("[auth]\notppin = \"maybe\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains(":2") && e.contains("otppin"), "{e}");
    let e = parse("[auth]\nchallenge_response = [\"hotp\", \"yubikey\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("yubikey"), "{e}");
    let e = parse("[remote]\ndown_for = 0\n").unwrap_err().to_string();
    assert!(e.contains(":2") && e.contains("down_for"), "{e}");
    let e = parse("[[policy]]\nrhost = \"10.0.0.0/8\"\n[[policy]]\naction = \"skip\"\nrhost = \"10.0.0.0/99\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(":5") && e.contains("rhost") && e.contains("rule 2"),
        "{e}"
    );
    let e = parse("[[policy]]\naction = \"maybe\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains(":2") && e.contains("action"), "{e}");
}

#[test]
fn a_bad_value_is_named_in_its_own_section() {
    // `timeout` is a key of [email] too: the line is the one of [remote].
    let e = parse("[email]\ntimeout = 5\n\n[remote]\ntimeout = 0\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("/x/tessera.toml:5: key `remote.timeout`: "),
        "{e}"
    );
    // `url` of [sms] comes first; the one mode = "remote" misses is [remote]'s.
    let text = "[sms]\nurl = \"https://gw.example/send\"\n\n[auth]\nmode = \"remote\"\n\n\
                [remote]\nurl = []\n";
    let e = parse(text).unwrap_err().to_string();
    assert!(e.contains("/x/tessera.toml:8: key `remote.url`: "), "{e}");
    // A header with spaces and a comment is still that section.
    let e = parse("[email]\ntimeout = 5\n[ remote ] # the server\ntimeout = 301\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("/x/tessera.toml:4: "), "{e}");
}

#[test]
fn shipped_default_config_parses_to_the_defaults() {
    let text = include_str!("../../../../conf/tessera.toml");
    let c = parse(text).unwrap();
    let d = Config::default();
    assert_eq!(c.store.path, d.store.path);
    assert_eq!(c.auth.hotp_window, d.auth.hotp_window);
    assert_eq!(c.prompts.ocra, d.prompts.ocra);
    assert_eq!(c.remote.timeout, d.remote.timeout);
    assert_eq!(
        (c.remote.down_after, c.remote.down_for),
        (d.remote.down_after, d.remote.down_for)
    );
    assert_eq!(c.prompts.email, d.prompts.email);
    assert_eq!(c.prompts.sms, d.prompts.sms);
    assert_eq!(c.prompts.tan, d.prompts.tan);
    assert_eq!(c.email.smtp_host, d.email.smtp_host);
    assert_eq!(c.email.smtp_port, d.email.smtp_port);
    assert_eq!(c.email.tls, d.email.tls);
    assert_eq!(c.email.from, d.email.from);
    assert_eq!(c.email.subject, d.email.subject);
    assert_eq!(c.email.body, d.email.body);
    assert_eq!(c.email.timeout, d.email.timeout);
    assert_eq!(c.email.otp_length, d.email.otp_length);
    assert_eq!(c.email.validity, d.email.validity);
    assert_eq!(c.sms.method, d.sms.method);
    assert_eq!(c.sms.body, d.sms.body);
    assert_eq!(c.sms.parameters, d.sms.parameters);
    assert_eq!(c.sms.timeout, d.sms.timeout);
    assert_eq!(c.sms.otp_length, d.sms.otp_length);
    assert_eq!(c.sms.validity, d.sms.validity);
    assert_eq!(c.email.max_per_hour, d.email.max_per_hour);
    assert_eq!(c.sms.max_per_hour, d.sms.max_per_hour);
    assert_eq!(c.audit.keep_days, d.audit.keep_days);
}

#[test]
fn email_and_sms_keys_are_checked() {
    let c = parse(
        "[email]\nsmtp_host = \"mail.example.org\"\nsmtp_port = 587\ntls = \"none\"\n\
                   [sms]\nurl = \"https://sms.example.org/send?to={phone}\"\nmethod = \"GET\"\n\
                   [sms.headers]\nAuthorization = \"Bearer x\"\n",
    )
    .unwrap();
    assert_eq!(c.email.tls, SmtpTls::None);
    assert_eq!(c.sms.method, HttpMethod::GET);
    assert_eq!(c.sms.headers["Authorization"], "Bearer x");
    for (text, key) in [
        ("[email]\notp_length = 3\n", "otp_length"),
        ("[sms]\nvalidity = 0\n", "validity"),
        ("[email]\nfrom = \"not an address\"\n", "from"),
        ("[email]\nusername = \"u\"\n", "username"),
        ("[sms]\nurl = \"ftp://x\"\n", "url"),
        ("[email]\ntls = \"maybe\"\n", "tls"),
        ("[sms]\nbody = \"xml\"\n", "body"),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(":2"), "{text}: {e}");
    }
}

#[test]
fn send_limits_default_to_ten_and_take_zero_for_none() {
    let c = parse("").unwrap();
    assert_eq!((c.email.max_per_hour, c.sms.max_per_hour), (10, 10));
    let c = parse("[email]\nmax_per_hour = 0\n[sms]\nmax_per_hour = 3\n").unwrap();
    assert_eq!((c.email.max_per_hour, c.sms.max_per_hour), (0, 3));
    for text in [
        "[email]\n\nmax_per_hour = -1\n",
        "[sms]\n\nmax_per_hour = \"ten\"\n",
        "[email]\n\nmax_per_hour = 1.5\n",
        "[sms]\n\nmax_per_hour = 4294967296\n",
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(
            e.contains("/x/tessera.toml:3: key `max_per_hour`: ") && !e.contains('\n'),
            "{text}: {e}"
        );
    }
}

#[test]
fn plain_http_and_proxies_are_explicit() {
    for (text, key) in [
        ("[remote]\nurl = \"http://pi.example.org\"\n", "remote.url"),
        ("[sms]\nurl = \"http://sms.example.org/\"\n", "sms.url"),
        ("[remote]\nproxy = \"ftp://p\"\n", "remote.proxy"),
        ("[sms]\nproxy = \"proxy.example.org:3128\"\n", "sms.proxy"),
    ] {
        let e = parse(text).unwrap_err().to_string();
        assert!(e.contains(key) && e.contains(":2"), "{text}: {e}");
    }
    let e = parse("[remote]\nurl = \"http://127.0.0.1:5000\"\n").unwrap_err();
    assert!(e.to_string().contains("allow_plain_http"), "{e}");
    let c = parse(
        "[remote]\nurl = \"http://127.0.0.1:5000\"\nallow_plain_http = true\n\
         proxy = \"http://proxy.example.org:3128\"\n\
         [sms]\nurl = \"http://127.0.0.1/send\"\nallow_plain_http = true\n",
    )
    .unwrap();
    assert_eq!(
        c.remote.proxy.as_deref(),
        Some("http://proxy.example.org:3128")
    );
    assert!(c.sms.proxy.is_none() && c.sms.allow_plain_http);
}

#[test]
fn remote_url_may_be_one_or_many() {
    let c = parse("[remote]\nurl = \"https://a\"\n").unwrap();
    assert_eq!(c.remote.url, ["https://a"]);
    let c = parse("[remote]\nurl = [\"https://a\", \"https://b\"]\n").unwrap();
    assert_eq!(c.remote.url.len(), 2);
}
