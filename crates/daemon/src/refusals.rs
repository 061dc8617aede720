//! Requests for another account, counted. A non-root caller may ask only for its own account;
//! every other request is refused before any work, and audited. Audited one row per request,
//! a loop of refused requests would fill the disk (a 180-day audit table), so each uid gets at
//! most one row per minute, whose reason carries the count of that minute's refusals (brought
//! up to date at most once a second, and when the next minute's first refusal comes).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use tessera_engine::auth::Clock;
use tessera_engine::config::{Config, RemoteConfig};
use tessera_engine::crypto::StoreKey;
use tessera_engine::error::Error;
use tessera_engine::login::remote::client::ServerLink;
use tessera_engine::login::Resources;
use tessera_engine::store::{AuditEntry, Store};

/// Uids remembered at most; past it, the entries of past minutes are forgotten.
const MAX_UIDS: usize = 4096;

#[derive(Default)]
pub struct Refusals {
    minutes: Mutex<HashMap<u32, Minute>>,
}

#[derive(Debug, Clone, Copy, Default)]
struct Minute {
    minute: u64,
    count: u64,
    /// The audit row of this minute, once written.
    row: Option<i64>,
    /// The count that row shows, and when it was written.
    written: u64,
    written_at: u64,
}

/// What to write to the audit table for one refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowUpdate {
    /// The row to rewrite; `None`: a new row.
    pub row: Option<i64>,
    /// The count it shows.
    pub count: u64,
}

impl Refusals {
    /// Counts a refusal of `uid` at `now` (Unix seconds) and runs `write` for the audit rows
    /// due (the last minute's final count, this minute's row), which returns the row's id.
    /// The count is kept under one lock, so that two refusals at once never write two rows.
    pub fn count(&self, uid: u32, now: u64, mut write: impl FnMut(RowUpdate) -> Option<i64>) {
        let mut m = self.minutes.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= MAX_UIDS && !m.contains_key(&uid) {
            m.retain(|_, e| e.minute == now / 60);
        }
        let e = m.entry(uid).or_default();
        if e.minute != now / 60 {
            if let (Some(row), true) = (e.row, e.count > e.written) {
                let _ = write(RowUpdate {
                    row: Some(row),
                    count: e.count,
                });
            }
            *e = Minute {
                minute: now / 60,
                ..Minute::default()
            };
        }
        e.count += 1;
        if e.row.is_none() || now > e.written_at {
            let row = write(RowUpdate {
                row: e.row,
                count: e.count,
            });
            if row.is_some() {
                e.row = row;
                e.written = e.count;
                e.written_at = now;
            }
        }
    }
}

impl Refusals {
    /// Audits `row`, a refusal of `uid`'s request, within the limit: at most one row per uid
    /// and minute, whose reason carries the minute's count. The store is opened only if a
    /// row is due. Returns whether this refusal is the first of its minute (the one to log).
    pub fn audit<S: Store>(
        &self,
        uid: u32,
        row: &AuditEntry,
        store: impl FnOnce() -> Option<S>,
    ) -> bool {
        let now = tessera_engine::auth::SystemClock.now();
        let opened = std::cell::OnceCell::new();
        let mut store = Some(store);
        let mut first = false;
        self.count(uid, now, |u: RowUpdate| {
            first |= u.row.is_none() && u.count == 1;
            let row = AuditEntry {
                reason: format!("{} ({} requests in this minute)", row.reason, u.count),
                ..row.clone()
            };
            let s = opened
                .get_or_init(|| store.take().and_then(|open| open()))
                .as_ref()?;
            s.write(|tx| tx.audit_row(&row, u.row)).ok()
        });
        first
    }
}

/// A caller's view of the host's resources: the audit rows of its refused requests go
/// through the daemon's [`Refusals`] (a non-root caller's loop of refused enrollments must
/// not fill the disk).
pub(crate) struct Limited<'a, R> {
    pub res: &'a R,
    pub refusals: &'a Refusals,
    pub uid: u32,
    /// The last refusal was counted in its minute's row: it is not logged again.
    pub counted_only: std::cell::Cell<bool>,
}

impl<R: Resources> Resources for Limited<'_, R> {
    type Store = R::Store;
    fn store(&self, cfg: &Config) -> Result<Self::Store, Error> {
        self.res.store(cfg)
    }
    fn remote_link(&self, remote: &RemoteConfig) -> Result<ServerLink, Error> {
        self.res.remote_link(remote)
    }
    fn key(&self, cfg: &Config) -> Result<std::sync::Arc<StoreKey>, Error> {
        self.res.key(cfg)
    }
    fn audit_refusal(&self, cfg: &Config, row: &AuditEntry) {
        let first = self
            .refusals
            .audit(self.uid, row, || self.res.store(cfg).ok());
        self.counted_only.set(!first);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_row_per_uid_and_minute_with_its_count() {
        let r = Refusals::default();
        let mut rows: Vec<u64> = Vec::new(); // count shown by each row, by id
        let mut writes = 0;
        let mut write = |u: RowUpdate| {
            writes += 1;
            match u.row {
                Some(id) => rows[id as usize] = u.count,
                None => rows.push(u.count),
            }
            Some(match u.row {
                Some(id) => id,
                None => rows.len() as i64 - 1,
            })
        };
        // 10,000 refusals of uid 7 within one second, then two a second later (the second's
        // count is written only with the next minute's first).
        for _ in 0..10_000 {
            r.count(7, 600, &mut write);
        }
        r.count(7, 601, &mut write);
        r.count(7, 601, &mut write);
        // Another uid gets its own row.
        r.count(8, 601, &mut write);
        // The next minute: the last count of the minute before is written, and a new row.
        r.count(7, 660, &mut write);
        assert_eq!(rows, vec![10_002, 1, 1]);
        assert_eq!(
            writes, 5,
            "one row, its update, another uid's, the final count, a new row"
        );
    }
}
