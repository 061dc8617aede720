//! A small SMTP client (RFC 5321) for one message to one recipient: EHLO, STARTTLS (RFC 3207)
//! or TLS from the start, AUTH PLAIN/LOGIN (RFC 4954), MAIL, RCPT, DATA, QUIT. TLS is rustls
//! with the relay's name verified against the system's roots or `ca_file`.

use crate::config::{EmailConfig, SmtpTls};
use crate::error::{Error, Result};
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use zeroize::Zeroizing;

/// A reply line longer than this, or a reply of more lines, is garbage.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 100;

fn err(host: &str, what: impl std::fmt::Display) -> Error {
    Error::Delivery(format!("SMTP relay {host}: {what}"))
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(b),
            Conn::Tls(s) => s.read(b),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(b),
            Conn::Tls(s) => s.write(b),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

struct Session<'a> {
    host: &'a str,
    conn: Option<Conn>,
    /// Bytes read but not yet consumed as reply lines.
    buf: Vec<u8>,
    loopback: bool,
}

/// One reply: its code and its text lines (for EHLO, the extensions).
struct Reply {
    code: u16,
    lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        let t = self.lines.join(" / ");
        let t: String = t.chars().filter(|c| !c.is_control()).take(200).collect();
        format!("{} {t}", self.code)
    }
}

impl Session<'_> {
    fn conn(&mut self) -> Result<&mut Conn> {
        let host = self.host;
        self.conn
            .as_mut()
            .ok_or_else(|| err(host, "connection lost"))
    }

    fn read_line(&mut self) -> Result<String> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let s = String::from_utf8_lossy(&line);
                return Ok(s.trim_end_matches(['\r', '\n']).to_string());
            }
            if self.buf.len() > MAX_LINE {
                return Err(err(self.host, "reply line too long"));
            }
            let mut chunk = [0u8; 1024];
            let host = self.host;
            let n = self
                .conn()?
                .read(&mut chunk)
                .map_err(|e| io_err(host, &e))?;
            if n == 0 {
                return Err(err(self.host, "connection closed by the relay"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn reply(&mut self) -> Result<Reply> {
        let mut lines = Vec::new();
        loop {
            let line = self.read_line()?;
            let code = line
                .get(..3)
                .and_then(|c| c.parse::<u16>().ok())
                .ok_or_else(|| err(self.host, format!("not an SMTP reply: {:.60}", line)))?;
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return Ok(Reply { code, lines });
            }
            if lines.len() > MAX_LINES {
                return Err(err(self.host, "reply with too many lines"));
            }
        }
    }

    fn send_raw(&mut self, data: &[u8]) -> Result<()> {
        let host = self.host;
        let c = self.conn()?;
        c.write_all(data)
            .and_then(|()| c.flush())
            .map_err(|e| io_err(host, &e))
    }

    /// Sends a command and expects a reply code of `want`. `shown` is what an error names
    /// instead of the command (which may hold a credential).
    fn command(&mut self, cmd: &[u8], want: &[u16], shown: &str) -> Result<Reply> {
        let mut line = Zeroizing::new(cmd.to_vec());
        line.extend_from_slice(b"\r\n");
        self.send_raw(&line)?;
        let r = self.reply()?;
        if want.contains(&r.code) {
            Ok(r)
        } else {
            Err(err(self.host, format!("{shown} answered {}", r.text())))
        }
    }

    fn start_tls(&mut self, config: Arc<rustls::ClientConfig>) -> Result<()> {
        if !self.buf.is_empty() {
            // Anything sent before the handshake could be injected by a man in the middle.
            return Err(err(self.host, "data after the STARTTLS reply"));
        }
        let name = ServerName::try_from(self.host.to_string())
            .map_err(|_| err(self.host, "not a valid TLS server name"))?;
        let tcp = match self.conn.take() {
            Some(Conn::Plain(t)) => t,
            _ => return Err(err(self.host, "TLS started twice")),
        };
        let c = rustls::ClientConnection::new(config, name).map_err(|e| err(self.host, e))?;
        let mut s = rustls::StreamOwned::new(c, tcp);
        // Handshake now, so a bad certificate is reported as such.
        while s.conn.is_handshaking() {
            s.conn
                .complete_io(&mut s.sock)
                .map_err(|e| err(self.host, format!("TLS handshake: {e}")))?;
        }
        self.conn = Some(Conn::Tls(Box::new(s)));
        Ok(())
    }
}

fn io_err(host: &str, e: &std::io::Error) -> Error {
    match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            err(host, "no answer in time (timeout)")
        }
        _ => err(host, e),
    }
}

/// Sends `message` (headers and body, CRLF lines) to `to` through the relay of `cfg`.
pub fn send(cfg: &EmailConfig, to: &str, message: &[u8]) -> Result<()> {
    let host = cfg.smtp_host.as_str();
    let timeout = Duration::from_secs(cfg.timeout);
    let tls_config = match cfg.tls {
        SmtpTls::None => None,
        _ => Some(tls_config(cfg.ca_file.as_deref())?),
    };
    let password = match &cfg.password_file {
        Some(p) => Some(read_password(p)?),
        None => None,
    };
    let tcp = connect(host, cfg.smtp_port, timeout)?;
    let loopback = tcp
        .peer_addr()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false);
    let mut s = Session {
        host,
        conn: Some(Conn::Plain(tcp)),
        buf: Vec::new(),
        loopback,
    };
    if let (SmtpTls::Tls, Some(c)) = (cfg.tls, &tls_config) {
        s.start_tls(c.clone())?;
    }
    let greeting = s.reply()?;
    if greeting.code != 220 {
        return Err(err(host, format!("greeting {}", greeting.text())));
    }
    let helo = format!("EHLO {}", helo_name());
    let mut ehlo = s.command(helo.as_bytes(), &[250], "EHLO")?;
    if let (SmtpTls::Starttls, Some(c)) = (cfg.tls, &tls_config) {
        if !has_ext(&ehlo, "STARTTLS") {
            return Err(err(
                host,
                "does not offer STARTTLS (tls = \"starttls\"; use tls = \"none\" only for a relay on this host)",
            ));
        }
        s.command(b"STARTTLS", &[220], "STARTTLS")?;
        s.start_tls(c.clone())?;
        ehlo = s.command(helo.as_bytes(), &[250], "EHLO after STARTTLS")?;
    }
    if let (Some(user), Some(pw)) = (&cfg.username, &password) {
        let encrypted = matches!(s.conn, Some(Conn::Tls(_)));
        if !encrypted && !s.loopback {
            return Err(err(
                host,
                "refusing to send the SMTP password without TLS to a relay on another host",
            ));
        }
        auth(&mut s, &ehlo, user, pw)?;
    }
    s.command(
        format!("MAIL FROM:<{}>", cfg.from).as_bytes(),
        &[250],
        "MAIL FROM",
    )?;
    s.command(format!("RCPT TO:<{to}>").as_bytes(), &[250, 251], "RCPT TO")?;
    s.command(b"DATA", &[354], "DATA")?;
    let mut data = Zeroizing::new(Vec::with_capacity(message.len() + 16));
    for line in message.split_inclusive(|&b| b == b'\n') {
        if line.first() == Some(&b'.') {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    if !data.ends_with(b"\r\n") {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    s.send_raw(&data)?;
    let r = s.reply()?;
    if r.code != 250 {
        return Err(err(host, format!("the message was refused: {}", r.text())));
    }
    // The message is accepted; a failed QUIT changes nothing.
    let _ = s.command(b"QUIT", &[221], "QUIT");
    Ok(())
}

fn has_ext(ehlo: &Reply, name: &str) -> bool {
    ehlo.lines.iter().any(|l| {
        l.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(name))
    })
}

fn auth_mechs(ehlo: &Reply) -> Vec<String> {
    ehlo.lines
        .iter()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            w.next()
                .filter(|k| k.eq_ignore_ascii_case("AUTH"))
                .map(|_| w.map(str::to_ascii_uppercase).collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

fn auth(s: &mut Session<'_>, ehlo: &Reply, user: &str, pw: &[u8]) -> Result<()> {
    let mechs = auth_mechs(ehlo);
    if mechs.iter().any(|m| m == "PLAIN") {
        let mut token = Zeroizing::new(vec![0u8]);
        token.extend_from_slice(user.as_bytes());
        token.push(0);
        token.extend_from_slice(pw);
        let cmd = Zeroizing::new(format!("AUTH PLAIN {}", super::base64(&token)));
        s.command(cmd.as_bytes(), &[235], "AUTH PLAIN")?;
    } else if mechs.iter().any(|m| m == "LOGIN") {
        s.command(b"AUTH LOGIN", &[334], "AUTH LOGIN")?;
        s.command(
            super::base64(user.as_bytes()).as_bytes(),
            &[334],
            "AUTH LOGIN user",
        )?;
        let p = Zeroizing::new(super::base64(pw));
        s.command(p.as_bytes(), &[235], "AUTH LOGIN password")?;
    } else {
        return Err(err(
            s.host,
            "offers neither AUTH PLAIN nor AUTH LOGIN, but username is set",
        ));
    }
    Ok(())
}

fn connect(host: &str, port: u16, timeout: Duration) -> Result<TcpStream> {
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| err(host, format!("can't resolve: {e}")))?;
    let mut last = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(t) => {
                t.set_read_timeout(Some(timeout))
                    .and_then(|()| t.set_write_timeout(Some(timeout)))
                    .map_err(|e| err(host, e))?;
                return Ok(t);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) => err(host, format!("can't connect to port {port}: {e}")),
        None => err(host, "no address"),
    })
}

/// The name this host gives in EHLO.
fn helo_name() -> String {
    let h = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let h = h.trim();
    if !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        h.to_string()
    } else {
        "localhost".into()
    }
}

fn read_password(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Config(format!("[email] password_file {}: {e}", path.display())))?;
    crate::fsperm::refuse_readable_by_others(path, &meta)?;
    let mut text =
        Zeroizing::new(std::fs::read(path).map_err(|e| {
            Error::Config(format!("[email] password_file {}: {e}", path.display()))
        })?);
    while text.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        text.pop();
    }
    Ok(text)
}

/// rustls with the ring provider, TLS 1.2 and 1.3, verifying against `ca_file` or the system.
pub fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let certs = crate::http::trusted_roots(ca_file, "[email]")?
        .into_iter()
        .map(|c| CertificateDer::from(c.der().to_vec()));
    let (added, _) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(Error::Config(
            "[email] ca_file: no usable certificate in it".into(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
