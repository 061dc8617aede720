//! The PIN alone, and the challenge it opens: `spass` accepts; challenge-response tokens open
//! one challenge each under one transaction id, and the OTP is asked for. Four steps, each its
//! own function:
//!
//! 1. [`select`](LocalEngine::select), one write transaction: which tokens open a challenge,
//!    with the send of an e-mail or SMS token checked against `max_per_hour` and recorded in
//!    the same transaction (two logins at once can't both send the one OTP that is left);
//! 2. [`deliver`](LocalEngine::deliver), outside any transaction (a slow relay must not hold
//!    the store's write lock): the challenge data, and the OTP sent out of band;
//! 3. [`open_transaction`](LocalEngine::open_transaction), one write transaction: the
//!    challenge rows of what was delivered, and a failed send taken back. A failed delivery
//!    leaves no open challenge;
//! 4. [`take_answer`](LocalEngine::take_answer): the message, the answer, and its check
//!    ([`answer_challenge`](LocalEngine::answer_challenge), also the second step of a
//!    two-request client).

use super::{challenge_aad, Attempt, Candidate, LocalEngine, PassedOver, SEND_LIMIT_MESSAGE};
use super::{Verdict, SEND_WINDOW};
use crate::auth::{ask, new_transaction_id, Clock, Conversation};
use crate::delivery::{Channel, Configured, Courier, OutOfBand};
use crate::error::{Error, Result};
use crate::store::{ChallengeRecord, ChallengeState, Store, StoreTx, TokenRecord};
use crate::tokens::{self, Sends};

/// What [`select`](LocalEngine::select) decided.
enum Selection {
    /// A token whose pass is its PIN alone (`spass`) accepted: nothing is sent.
    Accepted(Verdict),
    /// No token opens a challenge: the login is refused (or a token is locked).
    Refused(Verdict),
    /// These tokens open a challenge, an e-mail or SMS token with the id of its recorded send.
    Challenge(Vec<(TokenRecord, Option<i64>)>),
}

/// Whether a transaction can be answered: its open rows, or why not (told to the user).
enum Answerable {
    Open(Vec<ChallengeRecord>),
    Refused(&'static str),
}

/// A challenge about to be opened: the token, the sealed data, what the message shows.
pub(super) struct Opened {
    token: TokenRecord,
    data: Option<Vec<u8>>,
    question: Option<String>,
    expires: u64,
}

/// A token whose challenge could not be made (its OTP not sent), with its recorded send.
struct Undelivered {
    token: TokenRecord,
    error: Error,
    send: Option<i64>,
}

impl<S: Store, C: Clock> LocalEngine<'_, S, C> {
    /// The PIN alone matched `candidates`: see the module's steps. A send past `[email]`/`[sms]
    /// max_per_hour` is not made: the user is told, that token opens no challenge (the others
    /// still do).
    pub(super) fn pin_only(
        &self,
        at: &mut Attempt,
        candidates: &[&TokenRecord],
        pin: &[u8],
        now: u64,
        conv: &mut impl Conversation,
    ) -> Result<Verdict> {
        let (selection, limited) = self.select(at, candidates, now)?;
        if limited {
            let _ = conv.error(SEND_LIMIT_MESSAGE);
        }
        let chosen = match selection {
            Selection::Challenge(chosen) => chosen,
            Selection::Accepted(v) | Selection::Refused(v) => return Ok(v),
        };
        let transaction_id = new_transaction_id();
        let (opened, undelivered) = self.deliver(chosen, pin, &transaction_id, now, conv);
        if opened.is_empty() {
            // The PIN was right and nothing could be sent: no guess to count.
            at.no_failure = true;
            self.write(at, |tx, at| self.take_back(at, tx, &undelivered, now))?;
            let error = undelivered
                .into_iter()
                .next()
                .map(|u| u.error)
                .unwrap_or_else(|| Error::delivery("no challenge could be opened"));
            return Ok(Verdict::Unavailable(error));
        }
        self.write(at, |tx, at| {
            self.take_back(at, tx, &undelivered, now)?;
            self.open_transaction(at, tx, &transaction_id, &opened, now)
        })?;
        self.take_answer(at, &transaction_id, &opened, conv)
    }

    /// Step 1: which of the tokens whose PIN matched open a challenge. Returns whether a send
    /// was held back by `max_per_hour` too (the user is told).
    fn select(
        &self,
        at: &mut Attempt,
        candidates: &[&TokenRecord],
        now: u64,
    ) -> Result<(Selection, bool)> {
        self.write(at, |tx, at| {
            let mut chosen: Vec<(TokenRecord, Option<i64>)> = Vec::new();
            let mut passed: Vec<(TokenRecord, PassedOver)> = Vec::new();
            let mut limited: Vec<(TokenRecord, String)> = Vec::new();
            for cand in candidates {
                let Some(t) = tx.token(&cand.serial)? else {
                    continue;
                };
                if let Some(why) = self.passed_over(tx, &t, now)? {
                    passed.push((t, why));
                } else if t.kind.spec().pin_is_pass {
                    // Accepted: nothing will be sent for the tokens looked at before.
                    for id in chosen.iter().filter_map(|(_, send)| *send) {
                        tx.forget_send(id)?;
                    }
                    self.passed(tx, at, now)?;
                    tx.record_success(&t.serial, t.counter)?;
                    tx.audit(&at.accept(now, &t, "PIN matched (spass)"))?;
                    let accepted = Verdict::Accept { serial: t.serial };
                    return Ok((Selection::Accepted(accepted), false));
                } else {
                    // The PIN alone was compared only where it opens a challenge.
                    match self.reserve_send(tx, &t, now)? {
                        Ok(send) => chosen.push((t, send)),
                        Err(why) => limited.push((t, why)),
                    }
                }
            }
            // Not sent: no failure counted (the PIN was right), one row each.
            for (t, why) in &limited {
                tx.audit(&at.reject(now, Some(t), why))?;
            }
            let any_limited = !limited.is_empty();
            if !chosen.is_empty() {
                return Ok((Selection::Challenge(chosen), any_limited));
            }
            for (t, why) in &passed {
                tx.audit(&at.passed_over(now, t, *why))?;
            }
            if passed.is_empty() {
                // Only sends held back: the PIN was right, no guess to count.
                at.no_failure = true;
            } else {
                self.failed(tx, at, now)?;
            }
            // A locked token whose PIN matched is refused like a wrong PIN (the audit row says
            // why): the answer must not tell that the PIN was right.
            let verdict = match passed.iter().find(|(_, w)| *w == PassedOver::Locked) {
                Some((_, why)) => Verdict::Reject {
                    reason: why.reason().into(),
                },
                None => Verdict::Reject {
                    reason: limited
                        .first()
                        .map(|(_, w)| w.clone())
                        .or_else(|| passed.first().map(|(_, w)| w.reason().to_string()))
                        .unwrap_or_default(),
                },
            };
            Ok((Selection::Refused(verdict), any_limited))
        })
    }

    /// Checks an e-mail or SMS token's send against the user's `max_per_hour` (all the user's
    /// tokens of that type, in the last hour) and records it: `Ok(Some(id))` of the recorded
    /// send, `Ok(None)` for a type that sends nothing, `Err(why)` when the limit is reached.
    fn reserve_send(
        &self,
        tx: &dyn StoreTx,
        t: &TokenRecord,
        now: u64,
    ) -> Result<std::result::Result<Option<i64>, String>> {
        let (max, what) = match t.kind.spec().sends {
            Some(Sends::Email) => (self.cfg.email.max_per_hour, "e-mail"),
            Some(Sends::Sms) => (self.cfg.sms.max_per_hour, "SMS"),
            None => return Ok(Ok(None)),
        };
        let kind = t.kind.name();
        if max > 0 {
            let since = now.saturating_sub(SEND_WINDOW);
            let sent = tx.sends_since(&t.user, &t.realm, kind, since)?;
            if sent >= u64::from(max) {
                return Ok(Err(format!(
                    "{what} not sent: {sent} sent in the last hour (max_per_hour)"
                )));
            }
        }
        Ok(Ok(Some(
            tx.record_send(&t.user, &t.realm, kind, &t.serial, now)?,
        )))
    }

    /// Step 2: each chosen token's challenge made (and its OTP sent), outside any store
    /// transaction. The user learns which OTP did not go out; the reason goes to the log only.
    fn deliver(
        &self,
        chosen: Vec<(TokenRecord, Option<i64>)>,
        pin: &[u8],
        transaction_id: &str,
        now: u64,
        conv: &mut impl Conversation,
    ) -> (Vec<Opened>, Vec<Undelivered>) {
        let mut opened = Vec::new();
        let mut undelivered = Vec::new();
        for (token, send) in chosen {
            match self.make_challenge(&token, pin, transaction_id, now) {
                Ok((data, question)) => {
                    let validity = match token.kind.spec().sends {
                        Some(Sends::Email) => self.cfg.email.validity,
                        Some(Sends::Sms) => self.cfg.sms.validity,
                        None => self.cfg.auth.challenge_validity,
                    };
                    opened.push(Opened {
                        token,
                        data,
                        question,
                        expires: now + validity,
                    })
                }
                Err(error) => {
                    let how = match token.kind.spec().sends {
                        Some(Sends::Sms) => "by SMS",
                        _ => "by e-mail",
                    };
                    let _ = conv.error(&format!(
                        "The OTP could not be sent {how}. Please try again later or contact your administrator."
                    ));
                    undelivered.push(Undelivered { token, error, send })
                }
            }
        }
        (opened, undelivered)
    }

    /// The data of one token's challenge, sealed, and the question to show; sends the OTP of
    /// e-mail and SMS tokens.
    fn make_challenge(
        &self,
        t: &TokenRecord,
        pin: &[u8],
        transaction_id: &str,
        now: u64,
    ) -> Result<(Option<Vec<u8>>, Option<String>)> {
        let logic = self.logic(t)?;
        let Some(ch) = logic.challenge(pin, &mut rand::rngs::OsRng)? else {
            return Ok((None, None));
        };
        if let Some(otp) = &ch.otp {
            let (channel, validity) = match t.kind.spec().sends {
                Some(Sends::Sms) => (
                    Channel::Sms {
                        phone: t.info.phone.as_deref().unwrap_or(""),
                    },
                    self.cfg.sms.validity,
                ),
                _ => (
                    Channel::Email {
                        address: t.info.email.as_deref().unwrap_or(""),
                    },
                    self.cfg.email.validity,
                ),
            };
            let m = OutOfBand {
                channel,
                otp,
                user: &t.user,
                serial: &t.serial,
                validity,
                now,
            };
            match self.courier {
                Some(c) => c.send(&m)?,
                None => Configured(self.cfg).send(&m)?,
            }
        }
        let sealed = self
            .key
            .seal(&challenge_aad(transaction_id, &t.serial), &ch.data);
        Ok((Some(sealed), ch.question))
    }

    /// Sends that failed are taken back (nothing went out: they don't count against the
    /// limit), and audited.
    fn take_back(
        &self,
        at: &mut Attempt,
        tx: &dyn StoreTx,
        undelivered: &[Undelivered],
        now: u64,
    ) -> Result<()> {
        tx.expire_challenges(now)?;
        for u in undelivered {
            if let Some(id) = u.send {
                tx.forget_send(id)?;
            }
            let why = format!("challenge not opened: {}", u.error);
            tx.audit(&at.error(now, Some(&u.token), &why))?;
        }
        Ok(())
    }

    /// Step 3: one challenge row per delivered token, under one transaction id.
    fn open_transaction(
        &self,
        at: &mut Attempt,
        tx: &dyn StoreTx,
        transaction_id: &str,
        opened: &[Opened],
        now: u64,
    ) -> Result<()> {
        for o in opened {
            tx.insert_challenge(&ChallengeRecord {
                transaction_id: transaction_id.to_string(),
                serial: o.token.serial.clone(),
                user: at.user.clone(),
                realm: at.realm.clone(),
                created: now,
                expires: o.expires,
                state: ChallengeState::Open,
                data: o.data.clone(),
            })?;
            let why = format!("challenge opened, transaction {transaction_id}");
            tx.audit(&at.challenge(now, &o.token, &why))?;
        }
        Ok(())
    }

    /// Step 4: shows the challenge, takes the answer and checks it. A conversation that fails
    /// here closes the transaction: nobody can answer it any more.
    fn take_answer(
        &self,
        at: &mut Attempt,
        transaction_id: &str,
        opened: &[Opened],
        conv: &mut impl Conversation,
    ) -> Result<Verdict> {
        for o in opened {
            let shown = self.prompt_of(&o.token);
            if let Some(q) = &o.question {
                if !shown.contains("{question}") {
                    let _ = conv.info(&format!("Challenge: {q}"));
                }
            }
        }
        let message = self.challenge_message(opened);
        let answer = match ask(conv, &message) {
            Ok(a) => a,
            Err(e) => {
                self.store
                    .write(|tx| tx.close_challenges(transaction_id, ChallengeState::Failed))?;
                return Err(e);
            }
        };
        self.answer_challenge(at, transaction_id, &answer)
    }

    /// Checks the answer to an open transaction: the OTP alone, against its tokens only, within
    /// `challenge_validity`. A transaction is answered once, right or wrong.
    pub(super) fn answer_challenge(
        &self,
        at: &mut Attempt,
        transaction_id: &str,
        otp: &[u8],
    ) -> Result<Verdict> {
        let now = self.clock.now();
        let rows = self.write(at, |tx, at| {
            let rows = tx.open_challenges(transaction_id)?;
            let (audited, told) = if rows.is_empty() {
                (
                    "no open challenge with this transaction id",
                    "no open challenge",
                )
            } else if rows.iter().all(|c| c.expires <= now) {
                tx.close_challenges(transaction_id, ChallengeState::Expired)?;
                ("challenge expired", "challenge expired")
            } else {
                return Ok(Answerable::Open(rows));
            };
            self.failed(tx, at, now)?;
            tx.audit(&at.reject(now, None, audited))?;
            Ok(Answerable::Refused(told))
        })?;
        let rows = match rows {
            Answerable::Open(rows) => rows,
            Answerable::Refused(reason) => {
                return Ok(Verdict::Reject {
                    reason: reason.into(),
                })
            }
        };
        let candidates: Vec<Candidate> = rows
            .iter()
            .filter(|c| c.expires > now && c.user == at.user && c.realm == at.realm)
            .map(|c| Candidate {
                serial: c.serial.as_str(),
                otp,
                // Data that does not unseal (moved to another row, other key) answers nothing.
                data: c.data.as_deref().and_then(|d| {
                    self.key
                        .open(&challenge_aad(transaction_id, &c.serial), d)
                        .ok()
                }),
            })
            .collect();
        self.check_otp(at, &candidates, now, Some(transaction_id))
    }

    /// The message template of a token's type.
    fn prompt_of(&self, t: &TokenRecord) -> &str {
        self.cfg.prompts.challenge(t.kind.spec().prompt)
    }

    /// The text of a challenge: the message of the token type with its placeholders filled, or
    /// each distinct message joined with " or " when one PIN opened challenges on several
    /// tokens.
    fn challenge_message(&self, opened: &[Opened]) -> String {
        let mut msgs: Vec<String> = Vec::new();
        for o in opened {
            let t = &o.token;
            let email = tokens::email::mask_address(t.info.email.as_deref().unwrap_or(""));
            let phone = tokens::sms::mask_phone(t.info.phone.as_deref().unwrap_or(""));
            let question = o.question.clone().unwrap_or_default();
            let vars = [
                ("serial", t.serial.as_str()),
                ("email", email.as_str()),
                ("phone", phone.as_str()),
                ("question", question.as_str()),
            ];
            let m = crate::delivery::fill(self.prompt_of(t), &vars).to_string();
            if !msgs.contains(&m) {
                msgs.push(m);
            }
        }
        match msgs.as_slice() {
            [one] => one.clone(),
            _ if msgs.len() > 1 => {
                let parts: Vec<&str> = msgs
                    .iter()
                    .map(|m| m.trim_end().trim_end_matches(':'))
                    .collect();
                format!("{}: ", parts.join(" or "))
            }
            _ => self.cfg.prompts.multi.clone(),
        }
    }
}
