//! The 4eyes token: its pass is N other users' PIN+OTP, joined by the token's separator; it
//! succeeds when tokens of N distinct users of the token's realm accept their parts. Two steps:
//! the parts matched to members' tokens by PIN (outside any transaction: PIN hashes are slow),
//! then one write transaction that checks the members' OTPs and decides.

use super::{Attempt, LocalEngine, Verdict};
use crate::crypto::Secret;
use crate::engine::Clock;
use crate::error::Result;
use crate::store::{Store, StoreTx, TokenRecord};
use crate::tokens::foureyes;

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
            let policy = foureyes::Policy::from_info(&t.serial, &t.info)?;
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
    /// whose PIN matches, with the part's OTP.
    fn members_matching(
        &self,
        at: &Attempt,
        policy: &foureyes::Policy,
        parts: &[&[u8]],
    ) -> Result<Vec<(TokenRecord, Secret)>> {
        let members: Vec<TokenRecord> = self
            .store
            .tokens_in_realm(&policy.realm)?
            .into_iter()
            .filter(|m| m.active && m.user != at.user && m.kind.spec().four_eyes_member)
            .collect();
        let mut pairs = Vec::new();
        for part in parts {
            for m in &members {
                let Ok(logic) = self.logic(m) else { continue };
                let n = logic.otp_len();
                if part.len() < n {
                    continue;
                }
                let (pin, otp) = part.split_at(part.len() - n);
                if self.pin_check(m, pin).is_right() {
                    pairs.push((m.clone(), crate::crypto::secret(otp)));
                    break;
                }
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
        policy: &foureyes::Policy,
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
