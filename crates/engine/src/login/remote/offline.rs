//! privacyIDEA's offline mode (`[remote] offline`), the client side: reading the values a
//! server hands out (`auth_items.offline` in the answer to an accepted `/validate/check`, and
//! the answer to `/validate/offlinerefill`), and checking a pass against them.
//!
//! A value is passlib's `pbkdf2_sha512` of PIN+OTP for one counter of a HOTP token:
//! `$pbkdf2-sha512$ROUNDS$SALT$CHECKSUM`, salt and checksum in passlib's "adapted base64"
//! (`./` for `+/`, no padding), the checksum 64 bytes of PBKDF2-HMAC-SHA512. The server moves
//! its counter past the values it hands out, so the token's next codes are good here only.

use super::client::{Client, Request, Unreachable};
use super::Run;
use crate::auth::lockout::{self, Guesser};
use crate::auth::{Accounts, Clock, Verdict};
use crate::crypto::ct_eq;
use crate::store::{AuditResult, OfflineBatch, OfflineValue, Store};
use serde_json::Value;

impl<K: Clock, S: Store> Run<'_, K, S> {
    /// `[remote] offline`: `pass` checked against the values kept for this user, before any
    /// server is asked (the server has moved its counter past them: only they open with the
    /// token's next codes). `None`: no value opens with it, or none are kept; the servers
    /// decide. A value opens once: it is taken in the transaction that accepts it.
    pub(super) fn offline_first(&mut self, client: &mut Client, pass: &[u8]) -> Option<Verdict> {
        if !self.cfg.remote.offline {
            return None;
        }
        let store = self.store?;
        let realm = self.realm.clone().unwrap_or_default();
        let values = match store.offline_values(&self.user, &realm) {
            Ok(v) => v,
            Err(e) => {
                self.event(
                    AuditResult::Error,
                    &format!("offline values not read: {e}"),
                    "",
                    "",
                );
                return None;
            }
        };
        if values.is_empty() {
            return None;
        }
        // Offline values are hashes anyone at the prompt can guess at while the server is out of
        // reach: the pass takes its place in the counts of its source and class before any
        // value is compared (a locked one is refused whatever was typed); a login the server
        // (or a value) accepts gives it back ([`Run::offline_outcome`]).
        if let Some(refused) = self.offline_place(store, &realm) {
            return Some(refused);
        }
        let found = find(&values, pass, self.cfg.auth.hotp_window).cloned()?;
        let left = values
            .iter()
            .filter(|v| v.serial == found.serial && v.counter > found.counter)
            .count();
        let taken = store.write(|tx| {
            let taken = tx.consume_offline(&found.serial, found.counter)?;
            Ok((taken, tx.offline_refill_token(&found.serial)?))
        });
        match taken {
            Ok((true, refill_token)) => {
                let reason = format!(
                    "accepted offline (counter {}, {left} offline values left)",
                    found.counter
                );
                self.event(AuditResult::Accept, &reason, &found.serial, "hotp");
                if let Some(t) = refill_token {
                    self.refill(client, store, &found.serial, &t, pass, &realm);
                }
                Some(Verdict::Accept {
                    serial: found.serial,
                })
            }
            Ok((false, _)) => {
                let reason = "offline value already used (replayed)".to_string();
                self.event(AuditResult::Reject, &reason, &found.serial, "hotp");
                Some(Verdict::Reject { reason })
            }
            Err(e) => {
                self.event(
                    AuditResult::Error,
                    &format!("offline value not taken: {e}"),
                    "",
                    "",
                );
                Some(Verdict::Unavailable(e))
            }
        }
    }

    /// Who the offline values are guessed at for: a user that has some (so one the server
    /// accepted before).
    fn guesser<'w>(&'w self, realm: &'w str) -> Guesser<'w> {
        let own_uid = self.source.uid().is_some()
            && crate::auth::SystemAccounts.uid(&self.user) == self.source.uid();
        Guesser {
            user: &self.user,
            realm,
            source: &self.source,
            known: true,
            own_uid,
        }
    }

    /// Takes the login's place in the counts (see `crate::auth::lockout`), or refuses a
    /// locked source or class: `Some` ends the login.
    fn offline_place(&mut self, store: &S, realm: &str) -> Option<Verdict> {
        let now = self.clock.now();
        let auth = &self.cfg.auth;
        let who = self.guesser(realm);
        let taken = store.write(|tx| {
            let taken = lockout::take(tx, auth, &who, now)?;
            if taken.is_err() {
                lockout::failed(tx, &who, now)?;
            }
            Ok(taken)
        });
        match taken {
            Ok(Ok(place)) => {
                self.place = Some(place);
                None
            }
            Ok(Err(l)) => {
                let why = l.reason(&self.source);
                self.event(AuditResult::Locked, &why, "", "");
                Some(l.verdict(&self.source))
            }
            Err(e) => {
                // Uncounted, the guess would be free: the attempt ends here.
                self.event(
                    AuditResult::Error,
                    &format!("the attempt could not be counted: {e}"),
                    "",
                    "",
                );
                Some(Verdict::Unavailable(e))
            }
        }
    }

    /// After the login: an accepted one gives its place back (its source's count and class's
    /// sum start again).
    pub(super) fn offline_outcome(&mut self, verdict: &Verdict) {
        let (true, Some(store), true) = (self.cfg.remote.offline, self.store, verdict.is_accept())
        else {
            return;
        };
        let realm = self.realm.clone().unwrap_or_default();
        let now = self.clock.now();
        let who = self.guesser(&realm);
        let (auth, place) = (&self.cfg.auth, self.place.as_ref());
        let _ = store.write(|tx| lockout::passed(tx, auth, &who, place.map(|p| p.class), now));
    }

    /// Asks the server for as many new values as the login used (`/validate/offlinerefill`,
    /// with the pass just accepted and the refill token). A server out of reach leaves the
    /// values as they are: the next login online tries again.
    fn refill(
        &mut self,
        client: &mut Client,
        store: &S,
        serial: &str,
        token: &str,
        pass: &[u8],
        realm: &str,
    ) {
        let req = Request {
            path: Some("/validate/offlinerefill"),
            get: false,
            fields: &[
                ("serial", serial.as_bytes()),
                ("refilltoken", token.as_bytes()),
                ("pass", pass),
            ],
        };
        let answer = client.exchange(&req, |_, status, body| refill_answer(status, body));
        let item = match answer {
            Ok(item) if item.serial == serial => Ok(item),
            Ok(item) => Err(format!("the server refilled {} instead", item.serial)),
            Err(Unreachable(why)) => Err(why),
        };
        let item = match item {
            Ok(item) => item,
            Err(why) => {
                let reason = format!("offline values not refilled: {why}");
                self.event(AuditResult::Warning, &reason, serial, "hotp");
                return;
            }
        };
        let n = item.values.len();
        let batch = self.batch(item, realm);
        match store.write(|tx| tx.put_offline(&batch, false)) {
            Ok(()) => self.event(
                AuditResult::Offline,
                &format!("{n} offline values refilled"),
                serial,
                "hotp",
            ),
            Err(e) => self.event(
                AuditResult::Error,
                &format!("offline values not kept: {e}"),
                serial,
                "hotp",
            ),
        }
    }

    /// Keeps the values the server's accepting answer carried, in place of the token's old
    /// ones. Without a store they can't be kept: said once in the log.
    pub(super) fn keep_offline(&mut self) {
        let items = std::mem::take(&mut self.offline_items);
        if items.is_empty() {
            return;
        }
        let Some(store) = self.store else {
            self.event(
                AuditResult::Warning,
                "offline values not kept: no local store (run `tessera init`)",
                "",
                "",
            );
            return;
        };
        let realm = self.realm.clone().unwrap_or_default();
        for item in items {
            let (serial, n) = (item.serial.clone(), item.values.len());
            let batch = self.batch(item, &realm);
            match store.write(|tx| tx.put_offline(&batch, true)) {
                Ok(()) => self.event(
                    AuditResult::Offline,
                    &format!("{n} offline values kept"),
                    &serial,
                    "hotp",
                ),
                Err(e) => self.event(
                    AuditResult::Error,
                    &format!("offline values not kept: {e}"),
                    &serial,
                    "hotp",
                ),
            }
        }
    }

    fn batch(&self, item: Item, realm: &str) -> OfflineBatch {
        OfflineBatch {
            serial: item.serial,
            user: self.user.clone(),
            realm: realm.to_string(),
            refill_token: item.refill_token,
            values: item.values,
        }
    }
}

/// The most values kept for one token (privacyIDEA's default is 100).
pub const MAX_VALUES: usize = 1000;
/// The most PBKDF2 rounds a value may ask for: privacyIDEA uses 6549; a server must not make a
/// login spend seconds per value.
pub const MAX_ROUNDS: u32 = 100_000;

/// One token's values as a server answer gives them (user and realm are the caller's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub serial: String,
    pub refill_token: String,
    pub values: Vec<(u64, String)>,
}

/// The items of `auth_items.offline` in a privacyIDEA answer: none when there are none, or
/// the body is not the JSON expected. Values that are not pbkdf2-sha512 hashes are left out.
pub fn items(body: &[u8]) -> Vec<Item> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(list) = v.pointer("/auth_items/offline").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter().filter_map(item).collect()
}

fn item(v: &Value) -> Option<Item> {
    let serial = v.get("serial")?.as_str()?;
    let refill_token = v.get("refilltoken")?.as_str()?;
    let response = v.get("response")?.as_object()?;
    let mut values: Vec<(u64, String)> = response
        .iter()
        .filter_map(|(counter, hash)| {
            let hash = hash.as_str()?;
            parse(hash)?;
            Some((counter.parse().ok()?, hash.to_string()))
        })
        .collect();
    values.sort();
    values.truncate(MAX_VALUES);
    let ok = !serial.is_empty() && serial.len() <= 64 && !refill_token.is_empty();
    ok.then(|| Item {
        serial: serial.to_string(),
        refill_token: refill_token.to_string(),
        values,
    })
}

/// The answer to `/validate/offlinerefill`: its item (the values for the codes used since, and
/// the next refill token), or why there is none.
pub fn refill_answer(status: u16, body: &[u8]) -> Result<Item, String> {
    let v: Value = serde_json::from_slice(body).map_err(|_| format!("HTTP {status}: not JSON"))?;
    let ok = v.pointer("/result/status").and_then(Value::as_bool) == Some(true)
        && v.pointer("/result/value").and_then(Value::as_bool) == Some(true);
    if !ok {
        let message = v
            .pointer("/result/error/message")
            .and_then(Value::as_str)
            .unwrap_or("refused");
        return Err(format!("HTTP {status}: {}", super::clean(message)));
    }
    items(body)
        .into_iter()
        .next()
        .ok_or_else(|| format!("HTTP {status}: no offline values in the answer"))
}

/// The salt, rounds and checksum of a passlib pbkdf2-sha512 hash.
fn parse(hash: &str) -> Option<(u32, Vec<u8>, Vec<u8>)> {
    let mut parts = hash.split('$');
    if !parts.next()?.is_empty() || parts.next()? != "pbkdf2-sha512" {
        return None;
    }
    let rounds: u32 = parts.next()?.parse().ok()?;
    let salt = ab64_decode(parts.next()?)?;
    let checksum = ab64_decode(parts.next()?)?;
    let ok = parts.next().is_none()
        && (1..=MAX_ROUNDS).contains(&rounds)
        && checksum.len() == 64
        && !salt.is_empty();
    ok.then_some((rounds, salt, checksum))
}

/// Whether `pass` is what `hash` was made of. Constant time in the checksum comparison.
pub fn verify(pass: &[u8], hash: &str) -> bool {
    let Some((rounds, salt, checksum)) = parse(hash) else {
        return false;
    };
    let mut out = zeroize::Zeroizing::new([0u8; 64]);
    pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pass, &salt, rounds, &mut out[..]);
    ct_eq(&out[..], &checksum)
}

/// The first value `pass` opens among each token's `window` + 1 lowest counters (`values` in
/// the store's order: by token, lowest counter first). The token's next code is its lowest
/// value; the window absorbs button presses that never reached a login, as `[auth]
/// hotp_window` does online, and bounds the PBKDF2 work of a wrong pass.
pub fn find<'a>(values: &'a [OfflineValue], pass: &[u8], window: u64) -> Option<&'a OfflineValue> {
    let mut seen: Option<(&str, u64)> = None;
    values
        .iter()
        .filter(|v| {
            let n = match seen {
                Some((serial, n)) if serial == v.serial => n + 1,
                _ => 0,
            };
            seen = Some((&v.serial, n));
            n <= window
        })
        .find(|v| verify(pass, &v.hash))
}

/// passlib's adapted base64: the standard alphabet with `.` for `+`, no padding.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'.' | b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        buf = (buf << 6 | v as u32) & 0xffff;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by passlib 1.7 (`pbkdf2_sha512.using(rounds=1000, salt_size=10).hash(...)`) on the
    /// privacyIDEA peer, for PIN `davepin` and the RFC 4226 key's HOTP value at counter 1
    /// (287082).
    const DAVE_1: &str = "$pbkdf2-sha512$1000$7R2jNCYEoJSScg$B.NS8y855bIJdAyu2VfCWtq0tcjGzRE67KmcqKISYM3QyQgrgZebppxBYB.cSz9.Bkc6jTHqLdIu4N8CHNvZdA";

    #[test]
    fn a_passlib_hash_of_privacyidea_verifies() {
        assert!(verify(b"davepin287082", DAVE_1));
        assert!(!verify(b"davepin287083", DAVE_1));
        assert!(!verify(b"287082", DAVE_1));
        // Anything else is no value.
        assert!(!verify(
            b"davepin287082",
            &DAVE_1.replace("sha512", "sha256")
        ));
        assert!(!verify(b"davepin287082", &DAVE_1.replace("$1000$", "$0$")));
        assert!(!verify(
            b"davepin287082",
            &DAVE_1.replace("$1000$", "$1000000$")
        ));
        assert!(!verify(b"davepin287082", &DAVE_1[..DAVE_1.len() - 2]));
        assert!(!verify(b"davepin287082", "garbage"));
    }

    #[test]
    fn only_the_lowest_values_of_each_token_are_tried() {
        let v = |serial: &str, counter: u64| OfflineValue {
            serial: serial.into(),
            counter,
            hash: DAVE_1.into(),
        };
        let values = [v("A", 1), v("A", 2), v("A", 3)];
        assert_eq!(
            find(&values, b"davepin287082", 0).map(|v| v.counter),
            Some(1)
        );
        // A's first value does not open with it: one look-ahead reaches the second.
        let mut shifted = values.clone();
        shifted[0].hash = DAVE_1.replace("B.NS8", "C.NS8");
        assert_eq!(find(&shifted, b"davepin287082", 0), None);
        assert_eq!(
            find(&shifted, b"davepin287082", 1).map(|v| v.counter),
            Some(2)
        );
        // Each token has its own window.
        let two = [shifted[0].clone(), v("B", 7)];
        assert_eq!(
            find(&two, b"davepin287082", 0).map(|v| v.serial.as_str()),
            Some("B")
        );
    }

    #[test]
    fn items_of_an_answer() {
        let body = format!(
            r#"{{"auth_items":{{"offline":[{{"serial":"OFF1","refilltoken":"abc","user":"dave",
            "response":{{"2":"{DAVE_1}","1":"{DAVE_1}","x":"{DAVE_1}","3":"not a hash"}}}}]}},
            "result":{{"status":true,"value":true}}}}"#
        );
        let it = items(body.as_bytes());
        assert_eq!(it.len(), 1);
        assert_eq!(it[0].serial, "OFF1");
        assert_eq!(it[0].refill_token, "abc");
        let counters: Vec<u64> = it[0].values.iter().map(|(c, _)| *c).collect();
        assert_eq!(counters, [1, 2], "sorted, bad entries left out");
        assert!(items(b"{}").is_empty());
        assert!(items(b"not json").is_empty());
        assert_eq!(refill_answer(200, body.as_bytes()).unwrap().serial, "OFF1");
        let refused =
            r#"{"result":{"status":false,"error":{"message":"You provided a wrong OTP value."}}}"#;
        assert!(refill_answer(400, refused.as_bytes())
            .unwrap_err()
            .contains("wrong OTP value"));
    }
}
