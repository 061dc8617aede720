//! The login wing: the entry point of a login, and what its host keeps between logins; below
//! it the local engine ([`local`]), the remote servers ([`remote`]) and who may enroll a token
//! for themselves. It uses the words of `crate::auth` and nothing uses it but the
//! hosts (tesserad, the command).
//!
//! [`authenticate`] picks the mode (the local engine, or the remote servers with the store for
//! audit and fallback). Where the store's connections and the servers' HTTP link come from is
//! the [`Resources`] of the caller: [`OneLogin`] opens them for this login alone (`tessera
//! check`, `tesserad --stdio`), a [`Host`] keeps them open from one login to the next (tesserad
//! on its socket: no SQLite open per login, group commit, kept-alive HTTPS connections).

use crate::auth::{load_key, open_store, Clock, Conversation, Login, Options, Outcome, Verdict};
use crate::config::{Config, Mode, RemoteConfig};
use crate::crypto::StoreKey;
use crate::error::Error;
use crate::login::remote::breaker::Breaker;
use crate::login::remote::client::ServerLink;
use crate::os::watch::{Checked, Watched};
use crate::store::AuditEntry;
use crate::store::{PooledStore, SqliteStore, Store, StorePool};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

pub mod local;
pub mod policy;
pub mod remote;
mod self_enroll;

pub use local::LocalEngine;
pub use self_enroll::enroll_self;

/// Where a login's store and link to the remote servers come from.
pub trait Resources {
    type Store: Store;
    fn store(&self, cfg: &Config) -> Result<Self::Store, Error>;
    fn remote_link(&self, remote: &RemoteConfig) -> Result<ServerLink, Error>;
    /// The store's key, read from its checked file.
    fn key(&self, cfg: &Config) -> Result<Arc<StoreKey>, Error> {
        load_key(cfg).map(Arc::new)
    }
    /// Writes the audit row of a request refused before any work was done for it (an
    /// enrollment its user may not make). A host that counts such refusals per caller
    /// (tesserad) keeps each non-root caller to one row a minute.
    fn audit_refusal(&self, cfg: &Config, row: &AuditEntry) {
        if let Ok(s) = self.store(cfg) {
            let _ = s.write(|tx| tx.audit(row));
        }
    }
}

/// Everything opened for one login and closed after it.
pub struct OneLogin;

impl Resources for OneLogin {
    type Store = SqliteStore;
    fn store(&self, cfg: &Config) -> Result<SqliteStore, Error> {
        open_store(cfg)
    }
    fn remote_link(&self, remote: &RemoteConfig) -> Result<ServerLink, Error> {
        ServerLink::one_login(remote)
    }
}

/// What a long-lived host keeps: a [`StorePool`] per store and an HTTP agent and a circuit
/// breaker per set of remote
/// servers, shared by the logins of all its threads. A new `Host` (on SIGHUP) starts afresh:
/// new CA files and settings are read, new connections made.
#[derive(Default)]
pub struct Host {
    pools: Mutex<HashMap<PoolKey, Arc<StorePool>>>,
    links: Mutex<HashMap<String, ServerLink>>,
    /// Each key file's key, kept in memory (wiped when dropped) and read again when the file
    /// or a directory above it changes (`crate::os::watch`).
    keys: Mutex<HashMap<PathBuf, Arc<Checked<Arc<StoreKey>>>>>,
}

/// A store, with the settings its connections are opened with.
type PoolKey = (PathBuf, u64, u64);

impl Host {
    /// The pool of the config's store.
    pub fn pool(&self, cfg: &Config) -> Arc<StorePool> {
        let key = (
            cfg.store.path.clone(),
            cfg.store.busy_timeout_ms,
            cfg.audit.keep_days,
        );
        let mut pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(pools.entry(key).or_insert_with(|| {
            Arc::new(StorePool::new(
                &cfg.store.path,
                cfg.store.busy_timeout_ms,
                cfg.audit.keep_days,
            ))
        }))
    }
}

impl Resources for Host {
    type Store = PooledStore;
    fn store(&self, cfg: &Config) -> Result<PooledStore, Error> {
        self.pool(cfg).checkout()
    }
    fn key(&self, cfg: &Config) -> Result<Arc<StoreKey>, Error> {
        let path = &cfg.store.key_file;
        let kept = {
            let mut keys = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(keys.entry(path.clone()).or_default())
        };
        kept.get(|| Watched::content(path), || load_key(cfg).map(Arc::new))
    }
    fn remote_link(&self, remote: &RemoteConfig) -> Result<ServerLink, Error> {
        // Everything the agent and the breaker are built from (one config file or another may
        // name the same servers with other settings).
        let key = format!(
            "{:?}",
            (
                &remote.url,
                &remote.ca_file,
                remote.verify_tls,
                remote.timeout,
                &remote.proxy,
                remote.down_after,
                remote.down_for
            )
        );
        let mut links = self.links.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(l) = links.get(&key) {
            return Ok(l.clone());
        }
        let link = ServerLink {
            agent: crate::login::remote::client::agent(remote)?,
            breaker: Some(Arc::new(Breaker::new(
                remote.down_after,
                std::time::Duration::from_secs(remote.down_for),
            ))),
        };
        links.insert(key, link.clone());
        Ok(link)
    }
}

/// Authenticates `login` as the config says: the local engine on the store, or the remote
/// servers. The one entry point of tesserad and `tessera check`.
pub fn authenticate<R: Resources>(
    res: &R,
    cfg: &Config,
    opts: &Options,
    login: &Login,
    conv: &mut impl Conversation,
    clock: &impl Clock,
) -> Outcome {
    let enforced;
    let opts = match policy::apply_policy(res, cfg, login, clock) {
        policy::Applied::Decided(outcome) => return outcome,
        policy::Applied::Asks => opts,
        // `enforce`: the PAM line's nullok no longer lets a user without a token in.
        policy::Applied::AsksWithoutNullok => {
            enforced = Options {
                nullok: false,
                ..opts.clone()
            };
            &enforced
        }
    };
    match cfg.auth.mode {
        Mode::Local => {
            let store = match res.store(cfg) {
                Ok(s) => s,
                Err(e) => return Outcome::unavailable(e, login, clock.now()),
            };
            let key = match res.key(cfg) {
                Ok(k) => k,
                Err(e) => {
                    // The store works: the attempt gets its audit row like any other.
                    let out = Outcome::unavailable(e, login, clock.now());
                    let _ = store.write(|tx| out.events.iter().try_for_each(|e| tx.audit(e)));
                    return out;
                }
            };
            let out = LocalEngine::new(cfg, &store, &key, clock).decide(login, opts, conv);
            match out.verdict {
                Verdict::Enroll {
                    registration,
                    user,
                    realm,
                } => {
                    let who = crate::enroll::Enrollee {
                        user,
                        realm,
                        uid: login.caller,
                        service: login.service.clone(),
                        rhost: login.rhost.clone(),
                    };
                    self_enroll::at_login(
                        cfg,
                        &store,
                        &key,
                        clock,
                        &who,
                        registration,
                        out.events,
                        conv,
                    )
                }
                _ => out,
            }
        }
        Mode::Remote => {
            // The store is optional here: it takes the audit rows and serves the local
            // fallback, but a remote-only host has none.
            let (store, store_error) = if cfg.store.path.exists() {
                match res.store(cfg) {
                    Ok(s) => (Some(s), None),
                    Err(e) => (None, Some(e)),
                }
            } else {
                (None, None)
            };
            let link = res.remote_link(&cfg.remote);
            let mut outcome = crate::login::remote::ask_servers(
                cfg,
                opts,
                login,
                conv,
                clock,
                store.as_ref(),
                link,
            );
            if let Some(e) = store_error {
                let mut event = Outcome::unavailable(e, login, clock.now()).events;
                event.append(&mut outcome.events);
                outcome.events = event;
            }
            outcome
        }
    }
}
