//! Remote mode and HTTP peers: a scripted engine conversation, configs, a tiny HTTP(S) server
//! to play the faults a real privacyIDEA won't (and to record what an SMS gateway is sent),
//! test certificates, and a local store for the fallback.

use super::{now, KEY20};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_engine::auth::{Login, Options, Outcome, SystemClock};
use tessera_engine::config::Config;
use tessera_engine::crypto::StoreKey;
use tessera_engine::login::{authenticate, Host, OneLogin};
use tessera_engine::testing::FixedClock;

/// The engine's scripted conversation (`tessera_engine::testing`): one for every test.
pub use tessera_engine::testing::ScriptedConv;

pub fn login(user: &str) -> Login {
    Login {
        service: "tessera-test".into(),
        rhost: "192.0.2.7".into(),
        user: user.into(),
        authtok: None,
        tty: String::new(),
        ..Login::default()
    }
}

/// A remote-mode config; `extra` is more TOML for the `[remote]` table.
pub fn remote_config(urls: &[&str], extra: &str, store_dir: &Path) -> Config {
    let list: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    // The fakes and the privacyIDEA peer listen on 127.0.0.1 without TLS.
    let plain = if urls.iter().any(|u| u.starts_with("http://")) {
        "allow_plain_http = true\n"
    } else {
        ""
    };
    let text = format!(
        "[store]\npath = {:?}\nkey_file = {:?}\n[auth]\nmode = \"remote\"\n[remote]\nurl = [{}]\n{plain}{extra}\n",
        store_dir.join("tessera.db"),
        store_dir.join("secret.key"),
        list.join(", ")
    );
    Config::parse(&text, Path::new("test.toml")).expect("test config")
}

/// [`remote_config`] with `timeout = timeout_s` and the store in a new temporary directory,
/// which the caller keeps.
pub fn remote_config_tmp(
    urls: &[&str],
    timeout_s: u64,
    extra: &str,
) -> (tempfile::TempDir, Config) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = remote_config(urls, &format!("timeout = {timeout_s}\n{extra}"), dir.path());
    (dir, cfg)
}

/// One login through the engine as `tessera check` runs it, on a clock that starts now and
/// moves on only when the engine waits (push polling takes no real time; exchanges with the
/// servers still have their real deadlines).
pub fn run(cfg: &Config, user: &str, conv: &mut ScriptedConv) -> Outcome {
    run_with(cfg, &Options::default(), &login(user), conv)
}

/// A login as tesserad runs it: through `host`, which keeps HTTP agents and circuit breakers
/// from one login to the next.
pub fn run_hosted(host: &Host, cfg: &Config, user: &str, conv: &mut ScriptedConv) -> Outcome {
    authenticate(
        host,
        cfg,
        &Options::default(),
        &login(user),
        conv,
        &SystemClock,
    )
}

pub fn run_with(cfg: &Config, opts: &Options, l: &Login, conv: &mut ScriptedConv) -> Outcome {
    let clock = FixedClock::at(now());
    authenticate(&OneLogin, cfg, opts, l, conv, &clock)
}

// ------------------------------------------------------------------ fake server

/// One request as the fake server saw it.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The request line, e.g. `POST /validate/check HTTP/1.1`.
    pub line: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// Form fields (POST body) or query fields (GET), decoded.
    pub fields: Vec<(String, String)>,
    /// The body as sent (a JSON body is in no field).
    pub body: String,
}

impl Seen {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake does with a request.
pub enum Act {
    /// Status and body (JSON or text).
    Reply(u16, String),
    /// Reads the request, then says nothing and keeps the connection open.
    Hang,
    /// Closes the connection without a word.
    Close,
}

pub fn json(status: u16, body: &str) -> Act {
    Act::Reply(status, body.to_string())
}

type Handler = dyn Fn(&Seen, usize) -> Act + Send + Sync;

pub struct Fake {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A plain-HTTP fake; `handler` gets each request and its number (0-based).
pub fn fake(handler: impl Fn(&Seen, usize) -> Act + Send + Sync + 'static) -> Fake {
    serve(Arc::new(handler), None)
}

/// A TLS fake with the given server config.
pub fn fake_tls(
    tls: Arc<rustls::ServerConfig>,
    handler: impl Fn(&Seen, usize) -> Act + Send + Sync + 'static,
) -> Fake {
    serve(Arc::new(handler), Some(tls))
}

/// A fake that accepts TCP connections and never says anything (not even a TLS hello).
pub fn silent() -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    Fake {
        addr,
        seen: Arc::default(),
    }
}

/// A port of 127.0.0.1 where nothing listens (connection refused).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An address where nothing listens (connection refused).
pub fn refused_url() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

fn serve(handler: Arc<Handler>, tls: Option<Arc<rustls::ServerConfig>>) -> Fake {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let seen2 = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let handler = handler.clone();
            let seen = seen2.clone();
            let tls = tls.clone();
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                match tls {
                    None => connection(stream, &*handler, &seen),
                    Some(cfg) => {
                        let Ok(conn) = rustls::ServerConnection::new(cfg) else {
                            return;
                        };
                        let tls_stream = rustls::StreamOwned::new(conn, stream);
                        connection(tls_stream, &*handler, &seen)
                    }
                }
            });
        }
    });
    Fake { addr, seen }
}

/// Serves requests on one connection (keep-alive) until the client closes it.
fn connection<S: Read + Write>(stream: S, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    let mut reader = BufReader::new(stream);
    loop {
        let Some(req) = read_request(&mut reader) else {
            return;
        };
        let n = {
            let mut s = seen.lock().unwrap();
            s.push(req.clone());
            s.len() - 1
        };
        match handler(&req, n) {
            Act::Reply(status, body) => {
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let w = reader.get_mut();
                if w.write_all(head.as_bytes()).is_err()
                    || w.write_all(body.as_bytes()).is_err()
                    || w.flush().is_err()
                {
                    return;
                }
            }
            Act::Hang => {
                std::thread::sleep(Duration::from_secs(60));
                return;
            }
            Act::Close => return,
        }
    }
}

fn read_request<R: BufRead>(r: &mut R) -> Option<Seen> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            len = v.trim().parse().ok()?;
        }
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let fields = decode_form(if method == "GET" {
        query.as_bytes()
    } else {
        &body
    });
    Some(Seen {
        line: line.trim_end().to_string(),
        method,
        path: path.to_string(),
        headers,
        fields,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn decode_form(b: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(b);
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (unescape(k), unescape(v))
        })
        .collect()
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ------------------------------------------------------------------ certificates

pub struct TestCa {
    pub cert_pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

pub fn test_ca(name: &str) -> TestCa {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    TestCa {
        cert_pem: cert.pem(),
        issuer: rcgen::Issuer::new(params, key),
    }
}

impl TestCa {
    /// A leaf certificate signed by this CA, valid for `names` only (DNS names or IP
    /// addresses), and its key.
    pub fn leaf(&self, names: &[&str]) -> (rcgen::Certificate, rcgen::KeyPair) {
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert, key)
    }

    /// In `dir`: the CA, and a leaf for 127.0.0.1 and localhost with its key, as PEM files
    /// for a server of another process: (CA, cert, key).
    pub fn write_localhost(&self, dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let (cert, key) = self.leaf(&["127.0.0.1", "localhost"]);
        (
            write_file(dir, "ca.pem", &self.cert_pem),
            write_file(dir, "cert.pem", &cert.pem()),
            write_file(dir, "key.pem", &key.serialize_pem()),
        )
    }
}

/// A rustls server config whose leaf, signed by `ca`, is valid for `names` only.
pub fn server_tls(ca: &TestCa, names: &[&str]) -> Arc<rustls::ServerConfig> {
    let (cert, key) = ca.leaf(names);
    let chain = vec![cert.der().clone()];
    let key_der = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .unwrap();
    Arc::new(cfg)
}

pub fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

// ------------------------------------------------------------------ local store

/// Creates the store and key of `cfg` and enrolls an HOTP token (RFC key, PIN `pin`) for
/// `user` in the default realm, as `tessera token add` would.
pub fn local_store_with_hotp(cfg: &Config, user: &str, serial: &str, pin: &str) {
    let key = StoreKey::generate();
    tessera_engine::os::fsperm::create_private_file(&cfg.store.key_file, key.to_hex().as_bytes())
        .unwrap();
    let store =
        tessera_engine::store::SqliteStore::create(&cfg.store.path, cfg.store.busy_timeout_ms)
            .unwrap();
    let rec = tessera_engine::store::TokenRecord {
        pin_hash: Some(tessera_engine::crypto::hash_pin(pin.as_bytes(), &key.pepper()).unwrap()),
        period: 0,
        created: now(),
        ..tessera_engine::store::TokenRecord::new(
            serial,
            user,
            &cfg.auth.default_realm,
            tessera_engine::tokens::TokenType::Hotp,
            key.seal(serial, KEY20),
        )
    };
    store.insert_token(&rec).unwrap();
}

pub fn audit_of(cfg: &Config, user: &str) -> Vec<tessera_engine::store::AuditEntry> {
    let store =
        tessera_engine::store::SqliteStore::open(&cfg.store.path, cfg.store.busy_timeout_ms)
            .unwrap();
    store.audit_entries(Some(user), 100).unwrap()
}
