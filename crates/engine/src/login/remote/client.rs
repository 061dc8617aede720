//! The HTTP side of remote mode: a ureq agent (kept by tesserad from one login to the next, see
//! [`ServerLink`], so connections stay alive), TLS by rustls against the system roots or
//! `[remote].ca_file`, servers tried in order, and a deadline on every exchange.
//!
//! Time: one exchange (a check, an answer, one poll) gets `[remote].timeout` seconds in all,
//! whatever the number of servers. Each server tried gets an equal share of what is left, so a
//! server that hangs can't take the time of the ones after it, and a lone server gets it all.

use super::breaker::{Breaker, ServerHealth};
use super::dialect::Endpoint;
use crate::config::RemoteConfig;
use crate::error::Error;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use ureq::tls::{RootCerts, TlsConfig};

/// Answers longer than this are not read: no validation answer is this big.
const MAX_BODY: u64 = 64 * 1024;

/// One configured server.
#[derive(Debug, Clone)]
pub struct Server {
    /// The base URL, without a trailing slash and without a `/validate/...` path.
    pub base: String,
    /// The endpoint named in the URL (`.../validate/simplecheck` for LinOTP's text answers);
    /// else `/validate/check`.
    pub endpoint: Endpoint,
    pub tls: bool,
    /// Plain HTTP to a host that is not a loopback address.
    pub cleartext_remote: bool,
}

impl Server {
    fn parse(url: &str) -> Result<Server, Error> {
        let bad = |why: &str| Error::config(format!("[remote] url `{url}`: {why}"));
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad("must start with https:// or http://"));
        };
        if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(bad("has spaces or control characters"));
        }
        let host_port = rest.split('/').next().unwrap_or("");
        if host_port.is_empty() || host_port.contains('@') {
            return Err(bad("needs a host (and no user:password@)"));
        }
        if rest.contains('?') || rest.contains('#') {
            return Err(bad("must not have a query or fragment"));
        }
        let host = host_of(host_port);
        let loopback = host == "localhost"
            || host
                .parse::<IpAddr>()
                .map(|ip| ip.is_loopback())
                .unwrap_or(false);
        let trimmed = url.trim_end_matches('/');
        let path_start = url.len() - rest.len() + host_port.len();
        let (base, endpoint) = match trimmed.rfind("/validate/") {
            Some(i) if i >= path_start => {
                let endpoint = match &trimmed[i..] {
                    "/validate/check" => Endpoint::Check,
                    "/validate/simplecheck" => Endpoint::SimpleCheck,
                    _ => {
                        return Err(bad(
                            "a path may end in /validate/check or /validate/simplecheck only",
                        ))
                    }
                };
                (trimmed[..i].to_string(), endpoint)
            }
            _ => (trimmed.to_string(), Endpoint::Check),
        };
        Ok(Server {
            base,
            endpoint,
            tls,
            cleartext_remote: !tls && !loopback,
        })
    }
}

/// The host part of `host[:port]` or `[v6]:port`.
fn host_of(host_port: &str) -> &str {
    if let Some(v6) = host_port.strip_prefix('[') {
        return v6.split(']').next().unwrap_or("");
    }
    host_port.rsplit_once(':').map_or(host_port, |(h, _)| h)
}

/// A request: method, path under the server's base, form or query fields.
pub struct Request<'a> {
    /// The path under the server's base; `None` is the server's check endpoint.
    pub path: Option<&'a str>,
    pub get: bool,
    /// Name and raw value; values are percent-encoded here (PINs may be any bytes).
    pub fields: &'a [(&'a str, &'a [u8])],
}

pub struct Client {
    agent: ureq::Agent,
    /// Skips servers that failed again and again (a long-lived host's, shared by its logins).
    breaker: Option<Arc<Breaker>>,
    down_after: u32,
    down_for: u64,
    servers: Vec<Server>,
    timeout: Duration,
    user_agent: String,
    /// The server that answered last: the next request of the same login goes there first,
    /// so the answer to a challenge reaches the server that opened it.
    preferred: Option<usize>,
}

/// The error text of one failed exchange, per server tried.
#[derive(Debug)]
pub struct Unreachable(pub String);

/// What a login's client stands on: the HTTP agent ([`agent`]) and, in a long-lived host, the
/// circuit breaker its logins share.
#[derive(Clone)]
pub struct ServerLink {
    pub agent: ureq::Agent,
    pub breaker: Option<Arc<Breaker>>,
}

impl ServerLink {
    /// For one login alone: a new agent, no breaker.
    pub fn one_login(cfg: &RemoteConfig) -> Result<ServerLink, Error> {
        Ok(ServerLink {
            agent: agent(cfg)?,
            breaker: None,
        })
    }
}

/// Each configured server's base URL and what this link's breaker knows of it (every server
/// is `Up` for a link without one: nothing is known).
pub fn health(link: &ServerLink, cfg: &RemoteConfig) -> Vec<(String, ServerHealth)> {
    let now = crate::os::io_time::now();
    let bases = cfg
        .url
        .iter()
        .map(|u| Server::parse(u).map_or_else(|_| u.clone(), |s| s.base));
    bases
        .map(|base| {
            let h = link
                .breaker
                .as_ref()
                .map_or(ServerHealth::Up, |b| b.health(&base, now));
            (base, h)
        })
        .collect()
}

/// The configured servers, in order.
fn servers(cfg: &RemoteConfig) -> Result<Vec<Server>, Error> {
    if cfg.url.is_empty() {
        return Err(Error::config("[remote] url is not set"));
    }
    cfg.url.iter().map(|u| Server::parse(u)).collect()
}

/// The HTTP agent for the configured servers: TLS roots, timeouts, no redirects, no cookies. It
/// keeps connections alive: a host that keeps the agent (tesserad) pays one TLS handshake per
/// server, not one per login.
pub fn agent(cfg: &RemoteConfig) -> Result<ureq::Agent, Error> {
    let servers = servers(cfg)?;
    let tls = if !servers.iter().any(|s| s.tls) {
        TlsConfig::builder().build()
    } else if !cfg.verify_tls {
        TlsConfig::builder().disable_verification(true).build()
    } else {
        let roots = crate::http::trusted_roots(cfg.ca_file.as_deref(), "[remote]")?;
        TlsConfig::builder()
            .root_certs(RootCerts::Specific(Arc::new(roots)))
            .build()
    };
    // The proxy comes from the config or nowhere: ureq would read HTTP_PROXY & co. from the
    // environment, which under `su` is the invoking user's.
    let proxy = cfg
        .proxy
        .as_deref()
        .map(crate::config::proxy_of)
        .transpose()
        .map_err(|e| Error::config(format!("[remote] {e}")))?;
    Ok(ureq::Agent::config_builder()
        .proxy(proxy)
        .tls_config(tls)
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(ureq::config::AutoHeaderValue::None)
        .timeout_global(Some(Duration::from_secs(cfg.timeout)))
        .build()
        .into())
}

impl Client {
    /// A client for one login over `agent` (see [`agent`]: a long-lived host keeps one).
    pub fn new(cfg: &RemoteConfig, service: &str, link: ServerLink) -> Result<Client, Error> {
        Ok(Client {
            agent: link.agent,
            breaker: link.breaker,
            down_after: cfg.down_after,
            down_for: cfg.down_for,
            servers: servers(cfg)?,
            timeout: Duration::from_secs(cfg.timeout),
            user_agent: user_agent(service),
            preferred: None,
        })
    }

    pub fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// The base URL of the server that answered last (for the log).
    pub fn current(&self) -> &str {
        self.preferred
            .and_then(|i| self.servers.get(i))
            .or(self.servers.first())
            .map_or("", |s| s.base.as_str())
    }

    /// Sends `req` to the servers in order until one gives an answer that `parse` accepts.
    /// A server that can't be reached, times out, answers 5xx or garbage is skipped; when none
    /// is left, or `timeout` has passed, the error lists what each one did.
    pub fn exchange<T>(
        &mut self,
        req: &Request<'_>,
        mut parse: impl FnMut(&Server, u16, &[u8]) -> Result<T, String>,
    ) -> Result<T, Unreachable> {
        let deadline = crate::os::io_time::deadline(self.timeout);
        let mut order: Vec<usize> = (0..self.servers.len()).collect();
        if let Some(p) = self.preferred {
            order.retain(|&i| i != p);
            order.insert(0, p);
        }
        let mut failures = Vec::new();
        let count = order.len();
        for (n, &i) in order.iter().enumerate() {
            let now = crate::os::io_time::now();
            if now >= deadline {
                failures.push(format!(
                    "{}: not tried, the {} s timeout had passed",
                    self.servers[i].base,
                    self.timeout.as_secs()
                ));
                continue;
            }
            let server = &self.servers[i];
            if let Some(until) = self
                .breaker
                .as_ref()
                .and_then(|b| b.skipped_until(&server.base, now))
            {
                failures.push(format!(
                    "{}: skipped for {} s more: it failed {} times in a row (down_after)",
                    server.base,
                    until.saturating_duration_since(now).as_secs() + 1,
                    self.down_after,
                ));
                continue;
            }
            let share = (deadline - now) / (count - n) as u32;
            let failure = match self.send(server, req, share) {
                Ok((status, body)) => match parse(server, status, &body) {
                    Ok(v) => {
                        if let Some(b) = &self.breaker {
                            b.succeeded(&server.base);
                        }
                        self.preferred = Some(i);
                        return Ok(v);
                    }
                    Err(why) => format!("{}: bad answer: {why}", server.base),
                },
                Err(why) => format!("{}: {why}", server.base),
            };
            let opened = self
                .breaker
                .as_ref()
                .is_some_and(|b| b.failed(&server.base, crate::os::io_time::now()));
            failures.push(if opened {
                format!("{failure} (skipped for the next {} s)", self.down_for)
            } else {
                failure
            });
        }
        Err(Unreachable(failures.join("; ")))
    }

    /// Asks each server on its own for `path` (GET), for `tessera doctor`: the HTTP status,
    /// or why there was none.
    pub fn probe(&self, path: &str) -> Vec<(String, Result<u16, String>)> {
        let req = Request {
            path: Some(path),
            get: true,
            fields: &[],
        };
        self.servers
            .iter()
            .map(|s| {
                let r = self.send(s, &req, self.timeout).map(|(status, _)| status);
                (s.base.clone(), r)
            })
            .collect()
    }

    fn send(
        &self,
        server: &Server,
        req: &Request<'_>,
        budget: Duration,
    ) -> Result<(u16, Vec<u8>), String> {
        let started = crate::os::io_time::now();
        let url = format!(
            "{}{}",
            server.base,
            req.path.unwrap_or(server.endpoint.path())
        );
        // The fields hold the user's pass: form_encode gives a wiped buffer, and every copy
        // made here is one too, built at its final size (a buffer that grows leaves its old,
        // unwiped allocations behind). What ureq copies (the URL it parses, the body in its
        // send buffer) is out of our reach and not wiped.
        let body = crate::http::form_encode(req.fields);
        let result = if req.get {
            // Only poll requests go out as GET; their fields are transaction ids, but whatever
            // a caller puts there is treated as a secret all the same.
            let mut query =
                zeroize::Zeroizing::new(String::with_capacity(url.len() + 1 + body.len()));
            query.push_str(&url);
            if !body.is_empty() {
                query.push('?');
                // form_encode writes ASCII only: one char per byte, no copy in between.
                query.extend(body.iter().map(|&b| char::from(b)));
            }
            self.agent
                .get(query.as_str())
                .header("User-Agent", &self.user_agent)
                .header("Accept", "application/json")
                .config()
                .timeout_global(Some(budget))
                .build()
                .call()
        } else {
            self.agent
                .post(&url)
                .header("User-Agent", &self.user_agent)
                .header("Accept", "application/json")
                .content_type("application/x-www-form-urlencoded")
                .config()
                .timeout_global(Some(budget))
                .build()
                .send(&body[..])
        };
        let mut resp = result.map_err(|e| describe(&e, started, budget))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(|e| describe(&e, started, budget))?;
        Ok((status, body))
    }
}

/// An error of ureq in words for the log; never holds the request body.
fn describe(e: &ureq::Error, started: Instant, budget: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!(
            "no answer within {:.1} s",
            budget.as_secs_f64().max(started.elapsed().as_secs_f64())
        ),
        ureq::Error::BodyExceedsLimit(n) => format!("answer longer than {n} bytes"),
        other => other.to_string(),
    }
}

/// `tessera-SERVICE/VERSION`: privacyIDEA records the agent name in its audit log and can match
/// it in policy conditions, so each PAM service is told apart.
fn user_agent(service: &str) -> String {
    let svc: String = service
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let name = if svc.is_empty() {
        "tessera".to_string()
    } else {
        format!("tessera-{svc}")
    };
    format!("{name}/{}", env!("CARGO_PKG_VERSION"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_into_base_and_endpoint() {
        let s = Server::parse("https://pi.example.com/").unwrap();
        assert_eq!(s.base, "https://pi.example.com");
        assert!(s.tls && s.endpoint == Endpoint::Check && !s.cleartext_remote);
        let s = Server::parse("https://lin.example.com/linotp/validate/simplecheck").unwrap();
        assert_eq!(s.base, "https://lin.example.com/linotp");
        assert_eq!(s.endpoint, Endpoint::SimpleCheck);
        assert!(Server::parse("https://h/validate/samlcheck").is_err());
        let s = Server::parse("http://127.0.0.1:5080").unwrap();
        assert!(!s.tls && !s.cleartext_remote);
        let s = Server::parse("http://[::1]:5080").unwrap();
        assert!(!s.cleartext_remote);
        assert!(
            Server::parse("http://pi.example.com")
                .unwrap()
                .cleartext_remote
        );
        assert!(Server::parse("ftp://x").is_err());
        assert!(Server::parse("https://").is_err());
        assert!(Server::parse("https://u:p@host").is_err());
        assert!(Server::parse("https://host/?x=1").is_err());
    }

    #[test]
    fn user_agent_names_the_service() {
        assert_eq!(
            user_agent("sshd"),
            format!("tessera-sshd/{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(user_agent("a b/c").starts_with("tessera-a_b_c/"));
        assert!(user_agent("").starts_with("tessera/"));
    }
}
