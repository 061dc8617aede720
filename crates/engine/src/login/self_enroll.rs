//! Who may enroll a token for themselves, and what they must do first: be in `[enroll]
//! groups`, ask for a type of `[enroll] types`, and, when they have a token already (active or
//! not: a token an admin disabled must not be sidestepped), pass it in the same dialogue, as a
//! login would (its PIN and OTP, the fail counters, the source lock, the audit row). Then the
//! [`dialogue`](crate::enroll::dialogue) makes the token.

use super::Resources;
use crate::auth::{Accounts, Clock, Conversation, Login, Options, Outcome, Verdict};
use crate::config::{Config, Mode, SELF_ENROLL_TYPES};
use crate::crypto::StoreKey;
use crate::enroll::dialogue::{make_token, Enrolled, Enrollee, Enrollment, Wanted};
use crate::enroll::qr::Background;
use crate::error::Kind;
use crate::store::{AuditEntry, Store};
use crate::tokens::TokenType;

/// Runs a user's enrollment of a token for themselves (`tessera enroll`). `who` was named by
/// the host (the daemon: the caller's uid); `kind` is the type asked for (`None`: the first of
/// `[enroll] types`).
#[allow(clippy::too_many_arguments)]
pub fn enroll_self<R: Resources>(
    res: &R,
    cfg: &Config,
    accounts: &dyn Accounts,
    who: &Enrollee,
    kind: Option<&str>,
    qr: Background,
    conv: &mut impl Conversation,
    clock: &impl Clock,
) -> Enrollment {
    let now = clock.now();
    let refuse = |told: &str, reason: &str| {
        let reason = format!("enrollment refused: {reason}");
        let refused = Enrollment::refused(who, now, told, &reason);
        refused
            .events
            .iter()
            .for_each(|e| res.audit_refusal(cfg, e));
        refused
    };
    if cfg.auth.mode != Mode::Local {
        return refuse(
            "tokens are kept on the remote server here: enroll there",
            "remote mode",
        );
    }
    let groups = accounts.groups(&who.user);
    if !cfg.enroll.groups.iter().any(|g| groups.contains(g)) {
        return refuse(
            "you may not enroll a token yourself here: ask your administrator",
            "not in [enroll] groups",
        );
    }
    let kind = match wanted_type(cfg, kind) {
        Ok(k) => k,
        Err(told) => return refuse(&told, &told),
    };
    let failed = |e| Enrollment {
        outcome: Enrolled::Failed(e),
        events: Vec::new(),
    };
    let store = match res.store(cfg) {
        Ok(s) => s,
        Err(e) => return failed(e),
    };
    let key = match res.key(cfg) {
        Ok(k) => k,
        Err(e) => return failed(e),
    };
    let mine = match store.tokens_of(&who.user, &who.realm) {
        Ok(t) => t,
        Err(e) => return failed(e),
    };
    let has = !mine.is_empty();
    // A registration code is passed like a token, and passing it enrolls the new token: that
    // is this enrollment, not a step before it.
    let only_codes = mine.iter().all(|t| t.kind == TokenType::Registration);
    let mut events = Vec::new();
    if has {
        let _ = conv.info(if only_codes {
            "You have a registration code: type it at the PIN prompt to enroll your token."
        } else {
            "You have a token already: log in with it first."
        });
        let login = Login {
            service: who.service.clone(),
            rhost: who.rhost.clone(),
            user: who.user.clone(),
            authtok: None,
            tty: String::new(),
            ruser: String::new(),
            caller: who.uid,
            uid: who.uid,
        };
        let passed = super::authenticate(res, cfg, &Options::default(), &login, conv, clock);
        events = passed.events;
        if !matches!(passed.verdict, Verdict::Accept { .. }) {
            let mut refused = Enrollment::refused(
                who,
                clock.now(),
                "the token you have was not passed; nothing was enrolled",
                "enrollment refused: the user's token was not passed",
            );
            refused
                .events
                .iter()
                .for_each(|e| res.audit_refusal(cfg, e));
            events.append(&mut refused.events);
            refused.events = events;
            return refused;
        }
        if let Verdict::Accept { serial } = passed.verdict {
            if !mine.iter().any(|t| t.serial == serial) {
                // Made just now from a registration code: enrolled once, and done.
                return Enrollment {
                    outcome: Enrolled::Saved { serial },
                    events,
                };
            }
        }
    }
    let wanted = Wanted {
        kind,
        qr,
        first: !has,
        spend: None,
    };
    let mut made = make_token(cfg, &store, &key, clock, who, wanted, conv);
    events.append(&mut made.events);
    made.events = events;
    made
}

/// A registration code matched (the local engine's [`Verdict::Enroll`]): the user's new token is
/// enrolled in the login's conversation, and the login's verdict is the enrollment's (in once
/// the token is saved; the code is used up then). The type is the first of `[enroll] types`;
/// the groups don't apply: the admin gave this user the code.
#[allow(clippy::too_many_arguments)]
pub(super) fn at_login<S: Store>(
    cfg: &Config,
    store: &S,
    key: &StoreKey,
    clock: &impl Clock,
    who: &Enrollee,
    registration: String,
    mut events: Vec<AuditEntry>,
    conv: &mut impl Conversation,
) -> Outcome {
    let kind = wanted_type(cfg, None).unwrap_or(TokenType::Totp);
    let wanted = Wanted {
        kind,
        qr: Background::Dark,
        first: false,
        spend: Some(registration),
    };
    let made = make_token(cfg, store, key, clock, who, wanted, conv);
    events.extend(made.events);
    let verdict = match made.outcome {
        Enrolled::Saved { serial } => Verdict::Accept { serial },
        Enrolled::Refused(told) => {
            let _ = conv.error(&format!("{told}."));
            Verdict::Reject { reason: told }
        }
        Enrolled::Failed(e) if e.kind() == Kind::Conversation => {
            Verdict::ConversationFailed(e.message().to_owned())
        }
        Enrolled::Failed(e) => Verdict::Unavailable(e),
    };
    Outcome { verdict, events }
}

/// The type to enroll: the one asked for if `[enroll] types` has it, else the first there.
fn wanted_type(cfg: &Config, asked: Option<&str>) -> Result<TokenType, String> {
    let allowed = |name: &str| {
        cfg.enroll.types.iter().any(|t| t == name)
            && SELF_ENROLL_TYPES.iter().any(|k| k.name() == name)
    };
    let name = match asked {
        Some(n) => n,
        None => cfg
            .enroll
            .types
            .first()
            .map(String::as_str)
            .ok_or("no token type may be enrolled here ([enroll] types is empty)")?,
    };
    if !allowed(name) {
        return Err(format!(
            "a {} token can't be enrolled here: [enroll] types allows {}",
            name.escape_debug(),
            if cfg.enroll.types.is_empty() {
                "none".to_string()
            } else {
                cfg.enroll.types.join(", ")
            }
        ));
    }
    TokenType::parse(name).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{Login, Options, Outcome, Verdict};
    use crate::crypto::{secret, Secret, StoreKey};
    use crate::error::Error;
    use crate::login::OneLogin;
    use crate::store::{AuditResult, SqliteStore};
    use crate::testing::FixedClock;
    use crate::tokens::{hotp_code, Algorithm};

    const NOW: u64 = 1_800_000_000;

    /// Accounts whose user is in these groups.
    struct InGroups(Vec<String>);
    impl Accounts for InGroups {
        fn canonical(&self, name: &str) -> Option<String> {
            Some(name.to_string())
        }
        fn groups(&self, _user: &str) -> Vec<String> {
            self.0.clone()
        }
    }

    /// A user at a terminal with an authenticator app: reads the URI shown, answers the PIN
    /// prompts with `pin` (and `repeat`), and the code prompts with the app's code (or
    /// `wrong` codes first). `None` for the PIN answers NULL (Ctrl-D).
    struct AppUser {
        /// New PINs typed first, one per "New PIN" prompt (ones the rule refuses).
        weak: Vec<&'static str>,
        pin: Option<&'static str>,
        repeat: Option<&'static str>,
        wrong: usize,
        /// Answers to other prompts (an existing token's PIN+OTP), in order.
        others: Vec<String>,
        infos: Vec<String>,
        prompts: Vec<String>,
        errors: Vec<String>,
    }

    impl AppUser {
        fn new(pin: &'static str) -> AppUser {
            AppUser {
                weak: Vec::new(),
                pin: Some(pin),
                repeat: Some(pin),
                wrong: 0,
                others: Vec::new(),
                infos: Vec::new(),
                prompts: Vec::new(),
                errors: Vec::new(),
            }
        }
        fn uri(&self) -> &str {
            self.infos
                .iter()
                .find(|l| l.starts_with("otpauth://"))
                .expect("a URI was shown")
        }
        /// The base32 key of the URI shown.
        fn secret(&self) -> &str {
            let uri = self.uri();
            uri.split("secret=")
                .nth(1)
                .unwrap()
                .split('&')
                .next()
                .unwrap()
        }
        fn app_code(&self) -> String {
            let uri = self.uri();
            let key = crate::crypto::decode_base32(self.secret()).unwrap();
            let moving = if uri.starts_with("otpauth://hotp/") {
                0
            } else {
                NOW / 30
            };
            let code = hotp_code(Algorithm::Sha1, &key, moving, 6);
            String::from_utf8(code.to_vec()).unwrap()
        }
    }

    impl Conversation for AppUser {
        fn prompt(&mut self, text: &str, _echo: bool) -> Result<Option<Secret>, Error> {
            self.prompts.push(text.into());
            let a = if text.starts_with("New PIN") && !self.weak.is_empty() {
                Some(self.weak.remove(0).to_string())
            } else if text.starts_with("New PIN") {
                self.pin.map(String::from)
            } else if text.starts_with("Repeat") {
                self.repeat.map(String::from)
            } else if text.starts_with("Code from the app") {
                if self.wrong > 0 {
                    self.wrong -= 1;
                    Some("000000".into())
                } else {
                    Some(self.app_code())
                }
            } else if self.others.is_empty() {
                panic!("unexpected prompt {text:?}")
            } else {
                Some(self.others.remove(0))
            };
            Ok(a.map(|a| secret(a.as_bytes())))
        }
        fn info(&mut self, text: &str) -> Result<(), Error> {
            self.infos.push(text.into());
            Ok(())
        }
        fn error(&mut self, text: &str) -> Result<(), Error> {
            self.errors.push(text.into());
            Ok(())
        }
    }

    struct World {
        _dir: tempfile::TempDir,
        cfg: Config,
        key: StoreKey,
    }

    impl World {
        fn new(enroll: &str) -> World {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("t.db");
            let key_file = dir.path().join("k");
            let key = StoreKey::generate();
            crate::os::fsperm::create_private_file(&key_file, key.to_hex().as_bytes()).unwrap();
            drop(SqliteStore::create(&db, 2000).unwrap());
            let text =
                format!("[store]\npath = {db:?}\nkey_file = {key_file:?}\n[enroll]\n{enroll}\n");
            let cfg = Config::parse(&text, std::path::Path::new("t.toml")).unwrap();
            World {
                _dir: dir,
                cfg,
                key,
            }
        }
        fn store(&self) -> SqliteStore {
            crate::auth::open_store(&self.cfg).unwrap()
        }
        fn enroll(&self, groups: &[&str], kind: Option<&str>, user: &mut AppUser) -> Enrollment {
            let who = Enrollee {
                user: "alice".into(),
                realm: self.cfg.auth.default_realm.clone(),
                uid: 10001,
                service: crate::enroll::dialogue::SERVICE.into(),
                rhost: String::new(),
            };
            let accounts = InGroups(groups.iter().map(|g| g.to_string()).collect());
            enroll_self(
                &OneLogin,
                &self.cfg,
                &accounts,
                &who,
                kind,
                Background::Dark,
                user,
                &FixedClock::at(NOW),
            )
        }
        fn tokens(&self) -> Vec<crate::store::TokenRecord> {
            self.store().list_tokens(Some("alice")).unwrap()
        }
        fn audit(&self) -> Vec<crate::store::AuditEntry> {
            self.store().audit_entries(Some("alice"), 100).unwrap()
        }
    }

    #[test]
    fn a_member_without_a_token_enrolls_one_with_a_right_code() {
        let w = World::new("groups = [\"staff\"]");
        let mut user = AppUser::new("432109");
        let out = w.enroll(&["users", "staff"], None, &mut user);
        let Enrolled::Saved { serial } = &out.outcome else {
            panic!("{out:?}")
        };
        assert!(serial.starts_with("TOTP"), "{serial}");
        assert!(user
            .uri()
            .starts_with("otpauth://totp/tessera:alice?secret="));
        let block = |c: char| matches!(c, ' ' | '\u{2580}' | '\u{2584}' | '\u{2588}');
        let qr_lines = user.infos.iter().filter(|l| l.chars().all(block)).count();
        assert!((15..=21).contains(&qr_lines), "{:?}", user.infos);
        assert_eq!(
            user.prompts,
            [
                "New PIN for the token: ",
                "Repeat the PIN: ",
                "Code from the app: "
            ]
        );
        let t = &w.tokens()[0];
        assert_eq!((&t.serial, t.kind), (serial, TokenType::Totp));
        assert!(t.active && t.has_pin());
        assert_eq!(t.counter, NOW / 30 + 1, "the code typed is used up");
        // The key saved is the key shown.
        let plain = w.key.open(&t.serial, &t.sealed_key).unwrap();
        assert!(user.uri().contains(&crate::crypto::encode_base32(&plain)));
        let rows = w.audit();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].result, AuditResult::Enroll);
        assert_eq!(rows[0].serial, *serial);
        assert_eq!(rows[0].caller, Some(10001));
        let secret = user.secret();
        assert!(out.events.iter().all(|e| !e.log_line().contains(secret)));
        assert!(rows.iter().all(|e| !e.reason.contains(secret)));
    }

    #[test]
    fn nobody_outside_the_groups_and_no_type_outside_the_types() {
        let w = World::new("groups = [\"staff\"]\ntypes = [\"totp\"]");
        let mut user = AppUser::new("432109");
        let out = w.enroll(&["users"], None, &mut user);
        assert!(
            matches!(&out.outcome, Enrolled::Refused(t) if t.contains("ask your administrator")),
            "{out:?}"
        );
        let out = w.enroll(&["staff"], Some("hotp"), &mut user);
        assert!(
            matches!(&out.outcome, Enrolled::Refused(t) if t.contains("[enroll] types allows totp")),
            "{out:?}"
        );
        // The default: nobody.
        let w2 = World::new("");
        let out = w2.enroll(&["staff"], None, &mut user);
        assert!(matches!(out.outcome, Enrolled::Refused(_)), "{out:?}");
        assert!(user.prompts.is_empty() && user.infos.is_empty());
        assert!(w.tokens().is_empty() && w2.tokens().is_empty());
        let rows = w.audit();
        assert_eq!(rows.len(), 2);
        assert!(
            rows.iter()
                .all(|r| r.result == AuditResult::Reject
                    && r.reason.starts_with("enrollment refused"))
        );
    }

    #[test]
    fn a_pin_the_rule_refuses_is_asked_again_with_the_rule() {
        let w = World::new("groups = [\"staff\"]");
        let mut user = AppUser::new("864213");
        user.weak = vec!["1", "12345"];
        let out = w.enroll(&["staff"], None, &mut user);
        let Enrolled::Saved { serial } = &out.outcome else {
            panic!("{out:?}")
        };
        assert_eq!(
            user.errors,
            [
                "a PIN must have at least 6 characters; try again.",
                "a PIN must have at least 6 characters; try again."
            ]
        );
        let new_pin = |p: &&String| p.starts_with("New PIN");
        assert_eq!(user.prompts.iter().filter(new_pin).count(), 3);
        let t = w.store().get_token(serial).unwrap();
        assert_eq!(
            t.info.pin_rule.as_deref(),
            Some("6:any"),
            "the rule it was set under"
        );
        let phc = t.pin_hash.as_deref().unwrap();
        assert!(crate::crypto::verify_pin(b"864213", phc, &w.key.pepper()));

        // Three refused in a row: given up, nothing saved; the rule of the config is the one
        // said (digits only here).
        let w = World::new("groups = [\"staff\"]");
        let mut cfg = w.cfg.clone();
        cfg.auth.pin_contents = crate::pin_rule::PinContents::Digits;
        let w = World { cfg, ..w };
        let mut user = AppUser::new("86421x");
        user.weak = vec!["abc", "12"];
        let out = w.enroll(&["staff"], None, &mut user);
        assert!(
            matches!(&out.outcome, Enrolled::Refused(t)
                if t.contains("a PIN must have at least 6 characters, digits only")),
            "{out:?}"
        );
        assert_eq!(user.errors.len(), 2, "told twice, then given up");
        assert!(w.tokens().is_empty());
    }

    #[test]
    fn wrong_codes_a_pin_mismatch_or_a_null_answer_save_nothing() {
        let w = World::new("groups = [\"staff\"]\ntypes = [\"totp\", \"hotp\"]");
        let mut user = AppUser::new("432109");
        user.wrong = CODE_TRIES_FOR_TEST;
        let out = w.enroll(&["staff"], Some("totp"), &mut user);
        assert!(
            matches!(&out.outcome, Enrolled::Refused(t) if t.contains("3 wrong codes")),
            "{out:?}"
        );
        assert_eq!(user.errors.len(), 2, "told twice to try again");
        let mut user = AppUser::new("432109");
        user.repeat = Some("432100");
        let out = w.enroll(&["staff"], Some("hotp"), &mut user);
        assert!(
            matches!(&out.outcome, Enrolled::Refused(t) if t.contains("the two PINs differ")),
            "{out:?}"
        );
        let mut user = AppUser::new("432109");
        user.pin = None;
        let out = w.enroll(&["staff"], None, &mut user);
        assert!(
            matches!(&out.outcome, Enrolled::Failed(e) if e.kind() == Kind::Conversation),
            "{out:?}"
        );
        assert!(w.tokens().is_empty());
        let rows = w.audit();
        assert_eq!(rows.len(), 3, "{rows:?}");
        assert!(
            rows.iter().all(|r| r.result == AuditResult::Reject),
            "{rows:?}"
        );
    }

    const CODE_TRIES_FOR_TEST: usize = crate::enroll::dialogue::CODE_TRIES;

    #[test]
    fn a_user_with_a_token_passes_it_first() {
        let w = World::new("groups = [\"staff\"]\ntypes = [\"totp\", \"hotp\"]");
        let mut user = AppUser::new("432109");
        assert!(matches!(
            w.enroll(&["staff"], None, &mut user).outcome,
            Enrolled::Saved { .. }
        ));
        let first = user.app_code();
        // A wrong pass of the token alice has: refused before any new token is made.
        let mut user = AppUser::new("111111");
        user.others = vec!["432109000000".into()];
        user.pin = None;
        let out = w.enroll(&["staff"], Some("hotp"), &mut user);
        assert!(
            matches!(&out.outcome, Enrolled::Refused(t) if t.contains("not passed")),
            "{out:?}"
        );
        assert!(user.infos.iter().all(|l| !l.starts_with("otpauth://")));
        assert_eq!(w.tokens().len(), 1);
        // Its PIN and a code it has not used yet: a second token.
        let mut user = AppUser::new("111111");
        let next = {
            let t = &w.tokens()[0];
            let key = w.key.open(&t.serial, &t.sealed_key).unwrap();
            String::from_utf8(hotp_code(Algorithm::Sha1, &key, NOW / 30 + 1, 6).to_vec()).unwrap()
        };
        assert_ne!(next, first);
        user.others = vec![format!("432109{next}")];
        let out = w.enroll(&["staff"], Some("hotp"), &mut user);
        assert!(matches!(out.outcome, Enrolled::Saved { .. }), "{out:?}");
        assert_eq!(w.tokens().len(), 2);
    }

    /// alice's registration token, and its code.
    fn registration(w: &World) -> (String, String) {
        let g = crate::tokens::registration::generate(&mut rand::rngs::OsRng).unwrap();
        let mut t = crate::store::TokenRecord::new(
            "REG1",
            "alice",
            "default",
            TokenType::Registration,
            w.key.seal("REG1", &g.key),
        );
        t.digits = crate::tokens::registration::CODE_LEN;
        // Made a day before the logins' time: good for a week.
        t.created = NOW - 86_400;
        w.store().insert_token(&t).unwrap();
        ("REG1".into(), String::from_utf8(g.code.to_vec()).unwrap())
    }

    fn login_with(w: &World, user: &mut AppUser) -> Outcome {
        let login = Login {
            service: "sshd".into(),
            rhost: "192.0.2.9".into(),
            user: "alice".into(),
            authtok: None,
            tty: String::new(),
            ruser: String::new(),
            caller: 0,
            uid: 0,
        };
        crate::login::authenticate(
            &OneLogin,
            &w.cfg,
            &Options::default(),
            &login,
            user,
            &FixedClock::at(NOW),
        )
    }

    #[test]
    fn a_registration_code_enrolls_a_token_at_login_and_is_used_up_by_it() {
        // No [enroll] groups: the admin gave alice the code.
        let w = World::new("");
        let (reg, code) = registration(&w);
        // Three wrong codes from the new token: refused, and the registration code still works.
        let mut user = AppUser::new("432109");
        user.others = vec![code.to_ascii_uppercase()];
        user.wrong = CODE_TRIES_FOR_TEST;
        let out = login_with(&w, &mut user);
        assert!(matches!(out.verdict, Verdict::Reject { .. }), "{out:?}");
        assert_eq!(w.tokens().len(), 1, "only the registration token");
        let mut user = AppUser::new("432109");
        user.others = vec![code.clone()];
        let out = login_with(&w, &mut user);
        let Verdict::Accept { serial } = &out.verdict else {
            panic!("{out:?}")
        };
        assert!(serial.starts_with("TOTP"), "{serial}");
        assert_eq!(user.prompts[0], "PIN: ", "the code at the first prompt");
        assert!(user.uri().starts_with("otpauth://totp/tessera:alice?"));
        let results: Vec<AuditResult> = out.events.iter().map(|e| e.result).collect();
        assert_eq!(results, [AuditResult::Challenge, AuditResult::Enroll]);
        assert_eq!(out.events[1].service, "sshd");
        let spent = w.tokens().into_iter().find(|t| t.serial == reg).unwrap();
        assert_eq!(spent.counter, crate::tokens::registration::USED);
        // The code again: refused, no new key shown.
        let mut user = AppUser::new("111111");
        user.others = vec![code];
        let out = login_with(&w, &mut user);
        assert!(matches!(out.verdict, Verdict::Reject { .. }), "{out:?}");
        assert!(user.infos.iter().all(|l| !l.starts_with("otpauth://")));
        assert!(
            out.events
                .iter()
                .any(|e| e.reason == "registration code already used"),
            "{out:?}"
        );
        assert_eq!(w.tokens().len(), 2);
        let made = w
            .tokens()
            .into_iter()
            .find(|t| &t.serial == serial)
            .unwrap();
        assert_eq!(made.info.registration.as_deref(), Some(reg.as_str()));
    }

    /// `tessera enroll` by a user whose only token is a registration code: the code, typed at
    /// the PIN prompt, enrolls the token, once (not a second one after it).
    #[test]
    fn tessera_enroll_with_only_a_registration_code_enrolls_once() {
        let w = World::new("groups = [\"staff\"]\ntypes = [\"totp\", \"hotp\"]");
        let (reg, code) = registration(&w);
        let mut user = AppUser::new("432109");
        user.others = vec![code];
        let out = w.enroll(&["staff"], None, &mut user);
        let Enrolled::Saved { serial } = &out.outcome else {
            panic!("{out:?}")
        };
        assert_eq!(
            user.infos[0],
            "You have a registration code: type it at the PIN prompt to enroll your token."
        );
        let asked = |what: &str| user.prompts.iter().filter(|p| p.starts_with(what)).count();
        assert_eq!(
            (asked("PIN"), asked("New PIN"), asked("Code from the app")),
            (1, 1, 1),
            "{:?}",
            user.prompts
        );
        let tokens = w.tokens();
        assert_eq!(tokens.len(), 2, "the code and one new token: {tokens:?}");
        let made = tokens.iter().find(|t| &t.serial == serial).unwrap();
        assert_eq!(made.info.registration.as_deref(), Some(reg.as_str()));
        let spent = tokens.iter().find(|t| t.serial == reg).unwrap();
        assert_eq!(spent.counter, crate::tokens::registration::USED);
        let enrolled = out
            .events
            .iter()
            .filter(|e| e.result == AuditResult::Enroll)
            .count();
        assert_eq!(enrolled, 1, "{:?}", out.events);
    }
}
