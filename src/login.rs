//! The login's fields as the daemon is sent them: every field bounded, so that the login fits
//! the daemon's first frame whatever the application set (a 10 MB PAM_RHOST must not make the
//! daemon refuse the login unread), and every text field UTF-8.

use crate::ffi::Buf;
use tessera_proto::{Sink, MAX_FIELD};

/// A text field: the application's bytes when they are UTF-8, else a copy in which each byte
/// that is not is written `\xNN` (so two such names stay two sources).
pub enum Text<'a> {
    Borrowed(&'a str),
    Escaped(Buf),
}

impl<'a> Text<'a> {
    /// The item's text, at most [`MAX_FIELD`] bytes ("" when the application set none).
    /// `None` only when a copy could not be allocated.
    pub fn new(raw: Option<&'a [u8]>) -> Option<Text<'a>> {
        let raw = raw.unwrap_or_default();
        if let Ok(s) = core::str::from_utf8(raw) {
            return Some(Text::Borrowed(capped(s, MAX_FIELD)));
        }
        let mut out = Buf::with_capacity(MAX_FIELD)?;
        let mut room = MAX_FIELD;
        for chunk in raw.utf8_chunks() {
            let valid = capped(chunk.valid(), room);
            out.put(valid.as_bytes());
            room -= valid.len();
            if valid.len() < chunk.valid().len() {
                break;
            }
            for &b in chunk.invalid() {
                if room < 4 {
                    break;
                }
                out.put(&[b'\\', b'x', hex(b >> 4), hex(b & 15)]);
                room -= 4;
            }
        }
        Some(Text::Escaped(out))
    }

    pub fn as_str(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            // Valid chunks cut at character boundaries and ASCII escapes: always UTF-8.
            Text::Escaped(b) => core::str::from_utf8(b.as_slice()).unwrap_or_default(),
        }
    }
}

fn hex(n: u8) -> u8 {
    match n {
        0..=9 => b'0' + n,
        _ => b'a' + n - 10,
    }
}

/// `s` cut to at most `max` bytes, at a character boundary.
pub fn capped(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

/// The user name as sent: a name longer than any account's is cut, and marked with a newline
/// so that what is left can't be another account's name (the daemon treats a name with a
/// control character as an unknown user, prompted and refused like any).
pub fn user_field<'a>(user: &'a [u8], cut: &'a mut [u8; MAX_FIELD]) -> &'a [u8] {
    if user.len() <= MAX_FIELD {
        return user;
    }
    for (d, s) in cut.iter_mut().zip(user) {
        *d = *s;
    }
    if let Some(last) = cut.last_mut() {
        *last = b'\n';
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_cut_and_escaped_but_stay_text() {
        assert_eq!(Text::new(None).unwrap().as_str(), "");
        assert_eq!(Text::new(Some(b"pts/3")).unwrap().as_str(), "pts/3");
        assert_eq!(
            Text::new(Some(b"host\xff.example\xfe")).unwrap().as_str(),
            "host\\xff.example\\xfe"
        );
        let long = "é".repeat(MAX_FIELD);
        let t = Text::new(Some(long.as_bytes())).unwrap();
        assert_eq!(t.as_str().len(), MAX_FIELD);
        let mut odd = long.into_bytes();
        odd.insert(2, 0xff);
        let t = Text::new(Some(&odd)).unwrap();
        assert!(t.as_str().len() <= MAX_FIELD && t.as_str().starts_with("é\\xff"));
        let mut all_bad = [0xffu8; 2000];
        all_bad[0] = b'a';
        let t = Text::new(Some(&all_bad)).unwrap();
        assert_eq!(t.as_str().len(), 1 + (MAX_FIELD - 1) / 4 * 4);
    }

    #[test]
    fn a_long_user_name_is_cut_and_marked() {
        let mut cut = [0u8; MAX_FIELD];
        assert_eq!(user_field(b"alice", &mut cut), b"alice");
        let long = [b'a'; MAX_FIELD + 5];
        let u = user_field(&long, &mut cut);
        assert_eq!(u.len(), MAX_FIELD);
        assert_eq!(u.last(), Some(&b'\n'));
        assert_eq!(capped("aé", 2), "a");
    }
}
