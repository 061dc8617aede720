//! A small SMTP client (RFC 5321) for one message to one recipient: EHLO, STARTTLS (RFC 3207)
//! or TLS from the start, AUTH PLAIN/LOGIN (RFC 4954), MAIL, RCPT, DATA, QUIT. TLS is rustls
//! with the relay's name verified against the system's roots or `ca_file`.
//!
//! Time: a whole delivery (name lookup, connect, TLS handshake, every command and reply) runs
//! under one deadline of `[email] timeout` seconds. A timeout per read alone would not do: a
//! relay sending a byte a second would reset it forever. That is why this is not lettre: its
//! timeout is per socket operation, and a relay trickling correct replies kept one delivery
//! going for 98 s against a 5 s timeout (docs/benchmarks.md, "Why the SMTP client stays
//! hand-written").

use crate::config::{EmailConfig, SmtpTls};
use crate::error::{Error, Kind, Result};
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// A reply line longer than this, or a reply of more lines, is garbage.
const MAX_LINE: usize = 4096;
const MAX_LINES: usize = 100;

fn err(host: &str, what: impl std::fmt::Display) -> Error {
    Error::delivery(format!("SMTP relay {host}: {what}"))
}

/// The time left before `deadline`, or a timeout error when there is none.
fn left(deadline: Instant) -> std::io::Result<Duration> {
    match deadline.checked_duration_since(crate::os::io_time::now()) {
        Some(d) if !d.is_zero() => Ok(d),
        _ => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the delivery's deadline has passed",
        )),
    }
}

/// The relay's socket, each read and write bounded by what is left of the delivery's deadline:
/// the socket timeout is set to it right before the call. Below rustls too, so the TLS
/// handshake and the records inside it are under the same deadline.
struct Timed {
    tcp: TcpStream,
    deadline: Instant,
}

impl Read for Timed {
    fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        self.tcp.set_read_timeout(Some(left(self.deadline)?))?;
        self.tcp.read(b)
    }
}

impl Write for Timed {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.tcp.set_write_timeout(Some(left(self.deadline)?))?;
        self.tcp.write(b)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

enum Conn {
    Plain(Timed),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, Timed>>),
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
            s.conn.complete_io(&mut s.sock).map_err(|e| {
                if is_timeout(&e) {
                    err(self.host, "TLS handshake: no answer in time (timeout)")
                } else {
                    err(self.host, format!("TLS handshake: {e}"))
                }
            })?;
        }
        self.conn = Some(Conn::Tls(Box::new(s)));
        Ok(())
    }
}

/// A socket timeout (EAGAIN on Linux) or our own deadline.
fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn io_err(host: &str, e: &std::io::Error) -> Error {
    if is_timeout(e) {
        err(host, "no answer in time (timeout)")
    } else {
        err(host, e)
    }
}

/// Sends `message` (headers and body, CRLF lines) to `to` through the relay of `cfg`.
pub fn send(cfg: &EmailConfig, to: &str, message: &[u8]) -> Result<()> {
    let host = cfg.smtp_host.as_str();
    let deadline = crate::os::io_time::deadline(Duration::from_secs(cfg.timeout));
    let tls_config = match cfg.tls {
        SmtpTls::None => None,
        _ => Some(tls_config(cfg.ca_file.as_deref())?),
    };
    let password = match &cfg.password_file {
        Some(p) => Some(read_password(p)?),
        None => None,
    };
    let tcp = connect(host, cfg.smtp_port, deadline)?;
    let loopback = tcp
        .peer_addr()
        .map(|a| a.ip().is_loopback())
        .unwrap_or(false);
    let mut s = Session {
        host,
        conn: Some(Conn::Plain(Timed { tcp, deadline })),
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

fn connect(host: &str, port: u16, deadline: Instant) -> Result<TcpStream> {
    let addrs = resolve(host, port, deadline, system_lookup)?;
    let mut last = None;
    for a in addrs {
        // Each address gets what is left; once nothing is, the rest fail at once.
        match left(deadline).and_then(|t| TcpStream::connect_timeout(&a, t)) {
            Ok(t) => return Ok(t),
            Err(e) => last = Some(e),
        }
    }
    Err(match last {
        Some(e) if is_timeout(&e) => err(
            host,
            format!("can't connect to port {port}: no answer in time (timeout)"),
        ),
        Some(e) => err(host, format!("can't connect to port {port}: {e}")),
        None => err(host, "no address"),
    })
}

/// A name lookup: the system's, or a stand-in in tests.
type Lookup = fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>;

fn system_lookup(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    (host, port).to_socket_addrs().map(Iterator::collect)
}

/// The relay's addresses by `deadline`. An IP address is taken as it is. A name is looked up
/// by the system (getaddrinfo: /etc/hosts, DNS, ...), which has no timeout of its own that we
/// can set, so it runs in a helper thread and we stop waiting for it at the deadline.
fn resolve(host: &str, port: u16, deadline: Instant, lookup: Lookup) -> Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let (tx, rx) = mpsc::channel();
    let name = host.to_string();
    let helper = std::thread::Builder::new()
        .name("tessera-smtp-lookup".into())
        .spawn(move || {
            // The receiver is gone if the deadline passed first: nothing to tell anyone.
            let _ = tx.send(lookup(&name, port));
        })
        .map_err(|e| {
            err(
                host,
                format!("can't resolve: no thread for the lookup: {e}"),
            )
        })?;
    let wait = left(deadline).unwrap_or(Duration::ZERO);
    match rx.recv_timeout(wait) {
        Ok(r) => {
            // It has sent its answer and only returns now: joined, no thread outlives us.
            let _ = helper.join();
            r.map_err(|e| err(host, format!("can't resolve: {e}")))
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // The lookup can't be cancelled: the helper thread is left to finish on its own
            // (getaddrinfo gives up after the resolver's own timeouts, resolv.conf's
            // `timeout` and `attempts`), its answer dropped. The engine runs in tesserad and
            // the tessera command only, never in a module that libpam could unload under it.
            Err(err(host, "can't resolve: no answer in time (timeout)"))
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(err(
            host,
            "can't resolve: the lookup ended without an answer",
        )),
    }
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

/// The SMTP AUTH password, read from the descriptor that `open_checked` checked (no link,
/// owner only, safe directories), into a wiped buffer.
fn read_password(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let password_error =
        |e: std::io::Error| Error::io(Kind::Config, path, e).what("[email] password_file");
    let file =
        crate::os::fsperm::open_checked(path, crate::os::fsperm::Access::Secret, password_error)?;
    // Room for the whole read up front (4 KiB is more than any password): a buffer that grew
    // would leave unwiped copies of the first bytes behind.
    let mut text = Zeroizing::new(Vec::with_capacity(4097));
    file.take(4096)
        .read_to_end(&mut text)
        .map_err(password_error)?;
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
        return Err(Error::config(
            "[email] ca_file: no usable certificate in it",
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // fake servers that stall in real time
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::time::Instant;

    fn plain(port: u16, timeout: u64) -> EmailConfig {
        EmailConfig {
            smtp_host: "127.0.0.1".into(),
            smtp_port: port,
            tls: SmtpTls::None,
            timeout,
            ..EmailConfig::default()
        }
    }

    /// A relay on 127.0.0.1 that sends `prefix` and then `filler` bytes, one every 300 ms (each
    /// well within a 1 s timeout per read), until the client goes away or 10 s have passed.
    fn trickling_relay(prefix: &'static [u8], filler: u8) -> (u16, std::thread::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let relay = std::thread::spawn(move || {
            let (mut c, _) = l.accept().unwrap();
            let started = Instant::now();
            for b in prefix.iter().chain(std::iter::repeat(&filler)) {
                if c.write_all(&[*b]).is_err() || started.elapsed() > Duration::from_secs(10) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
        });
        (port, relay)
    }

    #[test]
    fn a_relay_that_trickles_bytes_is_cut_off_at_the_one_deadline() {
        // A greeting line that never ends.
        let (port, relay) = trickling_relay(b"220 ", b'x');
        let t = Instant::now();
        let e = send(&plain(port, 1), "a@b.org", b"Subject: x\r\n\r\nx\r\n")
            .unwrap_err()
            .to_string();
        let took = t.elapsed();
        assert!(e.contains("no answer in time (timeout)"), "{e}");
        assert!(took < Duration::from_secs(2), "took {took:?}: {e}");
        relay.join().unwrap();
    }

    #[test]
    fn a_tls_handshake_that_trickles_is_cut_off_at_the_one_deadline() {
        // A TLS handshake record of 16 KiB, its body one byte at a time.
        let (port, relay) = trickling_relay(&[0x16, 0x03, 0x03, 0x40, 0x00, 0x02], 0);
        let cfg = EmailConfig {
            tls: SmtpTls::Tls,
            ..plain(port, 1)
        };
        let t = Instant::now();
        let e = send(&cfg, "a@b.org", b"Subject: x\r\n\r\nx\r\n")
            .unwrap_err()
            .to_string();
        let took = t.elapsed();
        assert!(
            e.contains("TLS handshake: no answer in time (timeout)"),
            "{e}"
        );
        assert!(took < Duration::from_secs(2), "took {took:?}: {e}");
        relay.join().unwrap();
    }

    #[test]
    fn a_name_lookup_that_hangs_is_given_up_at_the_deadline() {
        // The system's lookup can't be made to hang here (no resolver of our own to point
        // it at): a stand-in that takes 5 s shows that `resolve` stops waiting at 1 s.
        fn hangs(_: &str, _: u16) -> std::io::Result<Vec<SocketAddr>> {
            std::thread::sleep(Duration::from_secs(5));
            Ok(Vec::new())
        }
        let t = Instant::now();
        let e = resolve(
            "relay.example.org",
            25,
            Instant::now() + Duration::from_secs(1),
            hangs,
        )
        .unwrap_err()
        .to_string();
        let took = t.elapsed();
        assert!(
            e.contains("can't resolve: no answer in time (timeout)"),
            "{e}"
        );
        assert!(took < Duration::from_millis(1500), "took {took:?}");
    }

    #[test]
    fn lookups_answer_and_ip_addresses_are_not_looked_up() {
        fn never(_: &str, _: u16) -> std::io::Result<Vec<SocketAddr>> {
            panic!("an IP address was looked up")
        }
        let soon = Instant::now() + Duration::from_secs(5);
        let a = resolve("127.0.0.1", 25, soon, never).unwrap();
        assert_eq!(a, ["127.0.0.1:25".parse().unwrap()]);
        let a = resolve("::1", 587, soon, never).unwrap();
        assert_eq!(a, ["[::1]:587".parse().unwrap()]);
        fn fails(_: &str, _: u16) -> std::io::Result<Vec<SocketAddr>> {
            Err(std::io::Error::other("no such host"))
        }
        let e = resolve("nx.example.org", 25, soon, fails).unwrap_err();
        assert!(e.to_string().contains("can't resolve: no such host"), "{e}");
        let a = resolve("localhost", 25, soon, system_lookup).unwrap();
        assert!(
            a.iter().all(|a| a.ip().is_loopback() && a.port() == 25),
            "{a:?}"
        );
    }
}
