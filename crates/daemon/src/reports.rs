//! What root (and the daemon's own user) may ask besides logins: the daemon's status
//! (`tessera doctor`) and its counters (`tessera metrics`).

use crate::caller::{Caller, Counters};
use crate::link::Link;
use crate::link::{refuse, Channel};
use crate::metrics::Now;
use tessera_engine::config::Config;
use tessera_engine::login::remote::breaker::ServerHealth;
use tessera_engine::login::Resources;
use tessera_proto::{self as proto, Reply};

/// A status request (`tessera doctor`; root or the daemon's user): one `ok ...` or `fail ...` line
/// per thing a login needs, checked as the daemon (its user, its config, its store and key), then a
/// verdict: success when it can serve logins, unavailable when it can't.
pub(crate) fn status<C: Channel, R: Resources>(
    chan: &mut Link<'_, C>,
    caller: &Caller,
    config: std::result::Result<&Config, &str>,
    res: &R,
    counters: &Counters,
) -> std::result::Result<(), proto::ProtoError> {
    if !may_watch(caller) {
        return refuse(
            chan,
            "a status request is for root or the daemon's user only",
        );
    }
    let mut lines = vec![format!(
        "ok    tesserad runs as uid {}",
        tessera_engine::os::sys::euid()
    )];
    let mut serves = true;
    // "ok", "warn" (worth a look, logins are served) or "fail" (logins are not).
    let mut say = |mark: &str, text: String| {
        serves &= mark != "fail";
        lines.push(format!("{mark:<5} {text}"));
    };
    match config {
        Err(e) => say("fail", format!("its config does not load: {e}")),
        Ok(cfg) => {
            match counters.failed_reload() {
                None => say("ok", "its config loads".into()),
                Some(e) => say(
                    "warn",
                    format!(
                        "its config did not reload: {e}; it serves with the config it loaded \
                         before (fix the file, check it with tesserad --check-config, then \
                         reload)"
                    ),
                ),
            }
            let local = cfg.auth.mode == tessera_engine::config::Mode::Local;
            if local || cfg.store.path.exists() {
                match res.store(cfg) {
                    Ok(_) => say(
                        "ok",
                        format!("it opens the store {}", cfg.store.path.display()),
                    ),
                    Err(e) => say("fail", format!("it can't open the store: {e}")),
                }
            }
            if local {
                match res.key(cfg) {
                    Ok(_) => say(
                        "ok",
                        format!("it reads the key {}", cfg.store.key_file.display()),
                    ),
                    Err(e) => say("fail", format!("it can't read the key: {e}")),
                }
            } else {
                say("ok", format!("remote mode: {}", cfg.remote.url.join(", ")));
            }
            let servers = remote_health(cfg, res);
            let any_up = servers.iter().any(|(_, h)| h.is_up());
            for (server, health) in &servers {
                let text = format!("remote server {server}: {health}");
                match (health.is_up(), any_up) {
                    (true, _) => say("ok", text),
                    // Logins go to the others.
                    (false, true) => say("warn", text),
                    (false, false) => say("fail", format!("{text}; no server is up")),
                }
            }
        }
    }
    if let Some(capacity) = &counters.capacity {
        say(
            "ok",
            capacity.load().without_request_of(caller.uid).to_string(),
        );
    }
    for l in lines {
        chan.queue(&Reply::Info(l));
    }
    chan.queue(&Reply::Verdict(if serves {
        proto::Verdict::Success
    } else {
        proto::Verdict::AuthinfoUnavail
    }));
    chan.flush()
}

/// A metrics request (`tessera metrics`; root or the daemon's user): the counters in the
/// OpenMetrics text format, one info line a line, then success.
pub(crate) fn metrics<C: Channel, R: Resources>(
    chan: &mut Link<'_, C>,
    caller: &Caller,
    config: std::result::Result<&Config, &str>,
    res: &R,
    counters: &Counters,
) -> std::result::Result<(), proto::ProtoError> {
    if !may_watch(caller) {
        return refuse(
            chan,
            "a metrics request is for root or the daemon's user only",
        );
    }
    let remote = config.map(|c| remote_health(c, res)).unwrap_or_default();
    let text = counters.metrics.render(&Now {
        config_loaded: config.is_ok() && counters.failed_reload().is_none(),
        load: counters
            .capacity
            .as_ref()
            .map(|c| c.load().without_request_of(caller.uid))
            .unwrap_or_default(),
        remote: &remote,
    });
    for line in text.lines() {
        chan.queue(&Reply::Info(line.to_string()));
    }
    chan.queue(&Reply::Verdict(proto::Verdict::Success));
    chan.flush()
}

/// Status and metrics are for root and the daemon's own user (`tessera doctor` run by root
/// asks as the store's owner); they say nothing to anyone else.
fn may_watch(caller: &Caller) -> bool {
    caller.uid == 0 || caller.uid == tessera_engine::os::sys::euid()
}

/// The remote servers of a remote-mode config and what the daemon's circuit breaker knows of
/// them; none in local mode.
fn remote_health<R: Resources>(cfg: &Config, res: &R) -> Vec<(String, ServerHealth)> {
    if cfg.auth.mode == tessera_engine::config::Mode::Local {
        return Vec::new();
    }
    match res.remote_link(&cfg.remote) {
        Ok(link) => tessera_engine::login::remote::client::health(&link, &cfg.remote),
        Err(_) => Vec::new(),
    }
}
