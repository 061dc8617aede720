//! The engine's check of a 4eyes token's pass (the token type and its rule are
//! `tokens/four_eyes.rs`). The pass is N other users' PIN+OTP, joined by the token's separator; it
//! succeeds when tokens of N distinct users of the token's realm accept their parts. Two steps:
//! the parts matched to members' tokens by PIN (outside any transaction: PIN hashes are slow),
//! then one write transaction that checks the members' OTPs and decides.

use super::{Attempt, LocalEngine, Verdict};
use crate::auth::Clock;
use crate::crypto::Secret;
use crate::error::Result;
use crate::store::{Store, StoreTx, TokenRecord};
use crate::tokens::four_eyes;

/// What one 4eyes token made of the pass.
enum Decision {
    /// Accepted, or the token is locked: the login ends here.
    Ends(Verdict),
    /// Refused: another 4eyes token of the user may still accept.
    Refused(Verdict),
    /// The token was removed meanwhile.
    Gone,
}

impl<S: Store, C: Clock> LocalEngine<'_, S, C> {
    pub(super) fn four_eyes(
        &self,
        at: &mut Attempt,
        tokens: &[TokenRecord],
        pass: &[u8],
        now: u64,
    ) -> Result<Verdict> {
        let mut last = Verdict::Reject {
            reason: "wrong PIN or unknown user".into(),
        };
        for t in tokens.iter().filter(|t| t.kind.spec().pass_of_others) {
            let policy = four_eyes::Policy::from_info(&t.serial, &t.info)?;
            let Some(parts) = policy.split(pass) else {
                return self.fail(at, &[t], now, "4eyes: too many parts in the pass");
            };
            let pairs = self.members_matching(at, &policy, &parts)?;
            match self.decide_four_eyes(at, t, &policy, &pairs, now)? {
                Decision::Ends(v) => return Ok(v),
                Decision::Refused(v) => last = v,
                Decision::Gone => {}
            }
        }
        // privacyIDEA shows its "Only found N tokens in realm R" to the user; that tells an
        // unauthenticated stranger who holds 4eyes tokens and names the realm. The reason goes
        // to the log and the audit table only: the user sees a failure like any other.
        Ok(last)
    }

    /// Each part of the pass against the realm's active tokens of other users: the first
    /// whose PIN matches, with the part's OTP. Every part costs one PIN check per member,
    /// also once a member matched it (one burnt where the member's token can't be used or the
    /// part is too short for its OTP): the work, and so the time, is the same whichever
    /// member a part matches and whether one does, so timing does not tell which parts of a
    /// pass hold a right PIN.
    fn members_matching(
        &self,
        at: &Attempt,
        policy: &four_eyes::Policy,
        parts: &[&[u8]],
    ) -> Result<Vec<(TokenRecord, Secret)>> {
        let members: Vec<TokenRecord> = self
            .store
            .tokens_in_realm(&policy.realm)?
            .into_iter()
            .filter(|m| m.active && m.user != at.user && m.kind.spec().four_eyes_member)
            .collect();
        // Each member's OTP length; `None` for a token this build can't use.
        let otp_lens: Vec<Option<usize>> = members
            .iter()
            .map(|m| self.logic(m).ok().map(|l| l.otp_len()))
            .collect();
        let mut pairs = Vec::new();
        for part in parts {
            let mut first: Option<(&TokenRecord, &[u8])> = None;
            for (m, n) in members.iter().zip(&otp_lens) {
                match *n {
                    Some(n) if part.len() >= n => {
                        let (pin, otp) = part.split_at(part.len() - n);
                        let right = self.pin_check(at, m, pin).is_right();
                        if right && first.is_none() {
                            first = Some((m, otp));
                        }
                    }
                    _ => self.hasher(at).burn(part),
                }
            }
            if let Some((m, otp)) = first {
                pairs.push((m.clone(), crate::crypto::secret(otp)));
            }
        }
        Ok(pairs)
    }

    /// In one write transaction: the 4eyes token's own state, each member's OTP (an accepted
    /// one moves that token's counter, a wrong one counts a failure), and the count of
    /// distinct users against the policy.
    fn decide_four_eyes(
        &self,
        at: &mut Attempt,
        own: &TokenRecord,
        policy: &four_eyes::Policy,
        pairs: &[(TokenRecord, Secret)],
        now: u64,
    ) -> Result<Decision> {
        let ctx = self.context(now);
        self.write(at, |tx, at| {
            let Some(own) = tx.token(&own.serial)? else {
                return Ok(Decision::Gone);
            };
            if let Some(why) = self.passed_over(tx, &own, now)? {
                tx.audit(&at.passed_over(now, &own, why))?;
                // Locked too: refused like a wrong pass, so the answer does not tell
                // that the members' codes were right.
                return Ok(Decision::Refused(Verdict::Reject {
                    reason: why.reason().into(),
                }));
            }
            let users = self.members_accepted(tx, pairs, &ctx, now)?;
            if users.len() >= policy.count as usize {
                self.passed(tx, at, now)?;
                tx.record_success(&own.serial, own.counter)?;
                let why = format!(
                    "4eyes: tokens of {} users of realm {} matched",
                    users.len(),
                    policy.realm
                );
                tx.audit(&at.accept(now, &own, &why))?;
                Ok(Decision::Ends(Verdict::Accept { serial: own.serial }))
            } else {
                tx.record_failure(&own.serial, now)?;
                self.failed(tx, at, now)?;
                let why = policy.shortfall(users.len());
                tx.audit(&at.reject(now, Some(&own), &why))?;
                Ok(Decision::Refused(Verdict::Reject { reason: why }))
            }
        })
    }

    /// The distinct users whose tokens accepted their OTP, re-read under the write lock.
    fn members_accepted(
        &self,
        tx: &dyn StoreTx,
        pairs: &[(TokenRecord, Secret)],
        ctx: &crate::tokens::CheckContext,
        now: u64,
    ) -> Result<Vec<String>> {
        let mut users: Vec<String> = Vec::new();
        for (m, otp) in pairs {
            let Some(m) = tx.token(&m.serial)? else {
                continue;
            };
            if self.passed_over(tx, &m, now)?.is_some() {
                continue;
            }
            let logic = self.logic(&m)?;
            let key = self.key.open(&m.serial, &m.sealed_key)?;
            match logic.check(&key, otp, m.counter, ctx) {
                Some(counter) => {
                    tx.record_success(&m.serial, counter)?;
                    if !users.contains(&m.user) {
                        users.push(m.user.clone());
                    }
                }
                None => tx.record_failure(&m.serial, now)?,
            }
        }
        Ok(users)
    }
}

#[cfg(test)]
mod tests {
    use super::super::LocalEngine;
    use crate::auth::{Accounts, Login, Options, Verdict};
    use crate::config::Config;
    use crate::crypto::{hash_pin, pin_checks, StoreKey};
    use crate::store::{SqliteStore, TokenRecord};
    use crate::testing::{FixedClock, ScriptedConv};
    use crate::tokens::{four_eyes, hotp_code, Algorithm, TokenType};

    const KEY: &[u8] = b"12345678901234567890";

    struct People;
    impl Accounts for People {
        fn canonical(&self, name: &str) -> Option<String> {
            ["alice", "bob", "carol", "dave"]
                .contains(&name)
                .then(|| name.to_string())
        }
    }

    /// The members of realm `admins` in the order they are looked at: (user, PIN), each with
    /// an HOTP token on [`KEY`].
    const MEMBERS: [(&str, &str); 3] = [("bob", "1111"), ("carol", "2222"), ("dave", "3333")];

    fn otp() -> String {
        String::from_utf8(hotp_code(Algorithm::Sha1, KEY, 0, 6).to_vec()).unwrap()
    }

    /// alice's 4eyes pass `pass` (two parts of admins, space separated) on a new store:
    /// the verdict, and the PIN checks the login made.
    fn four_eyes_login(pass: &str) -> (Verdict, u64) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(&dir.path().join("t.db"), 2000).unwrap();
        let key = StoreKey::generate();
        for (i, (user, pin)) in MEMBERS.iter().enumerate() {
            let serial = format!("M{i}");
            let mut t = TokenRecord::new(
                &serial,
                user,
                "admins",
                TokenType::Hotp,
                key.seal(&serial, KEY),
            );
            t.pin_hash = Some(hash_pin(pin.as_bytes(), &key.pepper()).unwrap());
            store.insert_token(&t).unwrap();
        }
        let mut f = TokenRecord::new("F1", "alice", "default", TokenType::FourEyes, vec![]);
        f.info = four_eyes::Policy::parse("admins:2", " ").unwrap().to_info();
        store.insert_token(&f).unwrap();

        let cfg = Config::default();
        let clock = FixedClock::at(1_000_000);
        let engine = LocalEngine::new(&cfg, &store, &key, &clock).with_accounts(&People);
        let login = Login {
            service: "test".into(),
            user: "alice".into(),
            ..Login::default()
        };
        let before = pin_checks();
        let out = engine.decide(
            &login,
            &Options::default(),
            &mut ScriptedConv::passes(&[pass]),
        );
        (out.verdict, pin_checks() - before)
    }

    /// Which member a part matches, and whether one does, must not change the work: every
    /// part is checked against every member. (Before, the search stopped at the first match:
    /// a part of the first member cost one check, of the last three, a wrong one three.)
    #[test]
    fn every_part_costs_a_check_per_member_wherever_it_matches() {
        let otp = otp();
        let first = four_eyes_login(&format!("1111{otp} 2222{otp}"));
        assert!(first.0.is_accept(), "{first:?}");
        let last = four_eyes_login(&format!("3333{otp} 2222{otp}"));
        assert!(last.0.is_accept(), "{last:?}");
        let none = four_eyes_login(&format!("9999{otp} 8888{otp}"));
        assert!(matches!(none.0, Verdict::Reject { .. }), "{none:?}");
        // A part too short for any OTP: each member's check is burnt.
        let short = four_eyes_login(&format!("12 2222{otp}"));
        assert!(matches!(short.0, Verdict::Reject { .. }), "{short:?}");
        let per_login = (MEMBERS.len() * 2) as u64;
        assert_eq!(
            [first.1, last.1, none.1, short.1],
            [per_login; 4],
            "PIN checks of: first members, last member, no member, a short part"
        );
    }
}
