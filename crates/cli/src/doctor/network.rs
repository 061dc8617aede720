//! What travels over the network: URLs the config allows in plain HTTP, proxies, and whether
//! each remote server answers with its certificate verified. Apart because these are the
//! config's choices about other hosts, not this host's files or PAM stack.

use super::report::Report;
use crate::CliResult;
use tessera_engine::config::Config;

/// Plain-HTTP URLs that the config allows, and proxies: each is a choice an admin should see.
pub(super) fn check_transport(r: &mut Report, cfg: &Config) -> CliResult<()> {
    for u in cfg.remote.url.iter().filter(|u| u.starts_with("http://")) {
        r.warn(&format!(
            "[remote] url {u}: plain http (allow_plain_http = true), PINs and OTPs travel unencrypted"
        ))?;
    }
    if let Some(u) = cfg.sms.url.as_deref().filter(|u| u.starts_with("http://")) {
        let host = u.split_once("://").map_or(u, |(_, r)| r);
        let host = host.split(['/', '?']).next().unwrap_or("");
        r.warn(&format!(
            "[sms] url http://{host}: plain http (allow_plain_http = true), OTPs travel unencrypted"
        ))?;
    }
    for (section, proxy) in [("[remote]", &cfg.remote.proxy), ("[sms]", &cfg.sms.proxy)] {
        if let Some(p) = proxy {
            r.ok(&format!(
                "{section} proxy {p} (from the config; the environment is never read)"
            ))?;
        }
    }
    Ok(())
}

/// Each remote server must answer, with its certificate verified as a login would.
pub(super) fn check_remote(r: &mut Report, cfg: &Config) -> CliResult<()> {
    match tessera_engine::login::remote::probe(cfg) {
        Err(e) => r.fail(&e.to_string()),
        Ok(results) => {
            if !cfg.remote.verify_tls {
                r.warn("[remote] verify_tls = false: server certificates are not checked")?;
            }
            for (url, res) in results {
                match res {
                    Ok(what) => r.ok(&format!("remote {url}: {what}"))?,
                    Err(why) => r.fail(&format!("remote {url}: {why}"))?,
                }
            }
            Ok(())
        }
    }
}
