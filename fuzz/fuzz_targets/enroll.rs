//! The enrollment dialogue's inputs: whatever the user answers to its prompts (the new PIN
//! twice, up to three codes from the app: any bytes, NULL answers, too few answers) against a
//! real store, and any registration code typed at a login. Besides "no panic": a token is saved
//! only when the dialogue says so, and then with its code used up; otherwise nothing is saved.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use std::cell::RefCell;
use tessera_engine::auth::{Clock, Conversation};
use tessera_engine::config::Config;
use tessera_engine::crypto::{secret, Secret, StoreKey};
use tessera_engine::enroll::dialogue::{make_token, Enrolled, Enrollee, Wanted};
use tessera_engine::enroll::qr::Background;
use tessera_engine::error::Error;
use tessera_engine::store::{SqliteStore, Store};
use tessera_engine::tokens::registration::{Registration, CODE_LEN};
use tessera_engine::tokens::{CheckContext, Token, TokenType};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    answers: Vec<Option<&'a [u8]>>,
    hotp: bool,
    now: u32,
    code: &'a [u8],
    counter: u8,
}

struct Answers<'a>(std::vec::IntoIter<Option<&'a [u8]>>);

impl Conversation for Answers<'_> {
    fn prompt(&mut self, _text: &str, _echo: bool) -> Result<Option<Secret>, Error> {
        match self.0.next() {
            Some(a) => Ok(a.map(secret)),
            None => Err(Error::conversation("no more answers")),
        }
    }
    fn info(&mut self, _text: &str) -> Result<(), Error> {
        Ok(())
    }
    fn error(&mut self, _text: &str) -> Result<(), Error> {
        Ok(())
    }
}

struct At(u64);
impl Clock for At {
    fn now(&self) -> u64 {
        self.0
    }
    fn sleep(&self, _d: std::time::Duration) {}
}

struct World {
    cfg: Config,
    store: SqliteStore,
    key: StoreKey,
}

thread_local! {
    static WORLD: RefCell<Option<World>> = const { RefCell::new(None) };
}

fn world() -> World {
    let dir = std::env::temp_dir().join(format!("tessera-fuzz-enroll-{}", std::process::id()));
    let _ = std::fs::create_dir(&dir);
    let db = dir.join("t.db");
    let _ = std::fs::remove_file(&db);
    // otppin = "none": no new PIN is asked, so no Argon2 hash per run.
    let text =
        format!("[store]\npath = {db:?}\nkey_file = \"/nonexistent\"\n[auth]\notppin = \"none\"\n");
    let cfg = Config::parse(&text, std::path::Path::new("fuzz.toml")).unwrap();
    World {
        store: SqliteStore::create(&db, 2000).unwrap(),
        key: StoreKey::generate(),
        cfg,
    }
}

fuzz_target!(|i: Input<'_>| {
    // A registration code of any bytes: matched only by its own code, never when used, never
    // once expired (a code that expires at 0 is expired at the check's time, 0).
    let expires = Some(u64::from(!i.hotp));
    let r = Registration {
        len: CODE_LEN,
        expires,
    };
    let ctx = CheckContext {
        now: 0,
        hotp_window: 10,
        totp_window: 1,
    };
    let g = tessera_engine::tokens::registration::generate(&mut rand::rngs::OsRng).unwrap();
    let counter = u64::from(i.counter);
    if r.check(&g.key, i.code, counter, &ctx).is_some() {
        assert!(counter == 0 && i.code.eq_ignore_ascii_case(&g.code) && expires == Some(1));
    }
    let _ = r.refusal_reason(&g.key, i.code, counter, &ctx);

    WORLD.with(|w| {
        let mut w = w.borrow_mut();
        let w = w.get_or_insert_with(world);
        let who = Enrollee {
            user: "fuzz".into(),
            realm: "default".into(),
            uid: 1000,
            service: "tessera-enroll".into(),
            rhost: String::new(),
        };
        let before = w.store.tokens_of("fuzz", "default").unwrap().len();
        let wanted = Wanted {
            kind: if i.hotp {
                TokenType::Hotp
            } else {
                TokenType::Totp
            },
            qr: Background::Dark,
            first: false,
            spend: None,
        };
        let mut conv = Answers(i.answers.into_iter());
        let out = make_token(
            &w.cfg,
            &w.store,
            &w.key,
            &At(u64::from(i.now)),
            &who,
            wanted,
            &mut conv,
        );
        let after = w.store.tokens_of("fuzz", "default").unwrap();
        match out.outcome {
            Enrolled::Saved { serial } => {
                assert_eq!(after.len(), before + 1);
                let t = after.iter().find(|t| t.serial == serial).unwrap();
                assert!(t.counter > 0, "the confirming code is used up");
            }
            _ => assert_eq!(after.len(), before, "nothing saved"),
        }
        assert!(!out.events.is_empty(), "every enrollment is audited");
    });
});
