//! What a new PIN must be (`[auth] pin_min_length`, `pin_contents`), checked wherever a PIN is
//! set: `tessera token add` and `token set-pin` (root), `tessera enroll` and the enrollment at
//! a login (a user). On the shipped sshd and sudo stacks the PIN is the knowledge factor, so a
//! PIN of `1` is refused as privacyIDEA's `pinlength`/`pincontents` policies refuse it.
//!
//! A PIN is kept only as a hash, so a rule made stricter later can't be checked against the
//! PINs already set. Each token keeps the rule its PIN was set under ([`PinRule::id`], in its
//! `info`), and `tessera doctor` counts the PINs set under another rule (or before rules were
//! kept) for their owners to set again.

use serde::Deserialize;

/// The longest PIN, in bytes (a PAM pass holds PIN + OTP).
pub const MAX_PIN: usize = 256;

/// The characters a PIN must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PinContents {
    /// Any characters a user can type into a prompt.
    Any,
    /// Digits only, as a card's PIN.
    Digits,
    /// At least one letter and at least one digit.
    LettersAndDigits,
}

impl PinContents {
    pub fn name(self) -> &'static str {
        match self {
            PinContents::Any => "any",
            PinContents::Digits => "digits",
            PinContents::LettersAndDigits => "letters-and-digits",
        }
    }
}

/// `[auth] pin_min_length` and `pin_contents` together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinRule {
    /// In characters (a UTF-8 PIN's letters count once each).
    pub min_length: usize,
    pub contents: PinContents,
}

impl PinRule {
    /// The rule in words, for the messages that refuse a PIN: "at least 6 characters, digits
    /// only".
    pub fn describe(&self) -> String {
        let what = match self.contents {
            PinContents::Any => "",
            PinContents::Digits => ", digits only",
            PinContents::LettersAndDigits => ", with a letter and a digit",
        };
        format!("at least {} characters{what}", self.min_length)
    }

    /// What a token keeps of the rule its PIN was set under, e.g. `6:any`.
    pub fn id(&self) -> String {
        format!("{}:{}", self.min_length, self.contents.name())
    }

    /// Why `pin` can't be a new PIN under this rule, if it can't. It must first be something a
    /// user can type into a PAM prompt; then have what the rule asks for.
    pub fn problem(&self, pin: &[u8]) -> Option<PinProblem> {
        if pin.is_empty() {
            return Some(PinProblem::Empty);
        }
        if pin.len() > MAX_PIN {
            return Some(PinProblem::TooLong);
        }
        if pin.iter().any(|b| b.is_ascii_control()) {
            return Some(PinProblem::ControlCharacters);
        }
        let text = String::from_utf8_lossy(pin);
        let fits = text.chars().count() >= self.min_length
            && match self.contents {
                PinContents::Any => true,
                PinContents::Digits => text.chars().all(|c| c.is_ascii_digit()),
                PinContents::LettersAndDigits => {
                    text.chars().any(char::is_alphabetic)
                        && text.chars().any(|c| c.is_ascii_digit())
                }
            };
        (!fits).then_some(PinProblem::AgainstRule(*self))
    }
}

/// Why a new PIN is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinProblem {
    Empty,
    TooLong,
    ControlCharacters,
    /// Typeable, but not what the rule asks for; says the rule, so that the user asked again
    /// knows what is wanted.
    AgainstRule(PinRule),
}

impl std::fmt::Display for PinProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PinProblem::Empty => f.write_str("the PIN is empty"),
            PinProblem::TooLong => write!(f, "the PIN is longer than {MAX_PIN} bytes"),
            PinProblem::ControlCharacters => f.write_str("the PIN contains control characters"),
            PinProblem::AgainstRule(rule) => write!(f, "a PIN must have {}", rule.describe()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: PinRule = PinRule {
        min_length: 6,
        contents: PinContents::Any,
    };

    #[test]
    fn the_default_wants_six_characters_of_any_kind() {
        assert_eq!(DEFAULT.problem(b"123456"), None);
        assert_eq!(DEFAULT.problem(b"pass w"), None);
        assert_eq!(
            DEFAULT.problem(b"12345").map(|p| p.to_string()).as_deref(),
            Some("a PIN must have at least 6 characters")
        );
        assert!(DEFAULT.problem(b"1").is_some());
        // Characters, not bytes: six letters of two bytes each are six.
        assert_eq!(DEFAULT.problem("äöüäöü".as_bytes()), None);
        assert!(DEFAULT.problem("äöüäö".as_bytes()).is_some());
    }

    #[test]
    fn what_no_prompt_can_take_is_refused_whatever_the_rule() {
        let one = PinRule {
            min_length: 1,
            contents: PinContents::Any,
        };
        assert_eq!(one.problem(b""), Some(PinProblem::Empty));
        assert_eq!(
            one.problem(b"1234\n56"),
            Some(PinProblem::ControlCharacters)
        );
        assert_eq!(one.problem(&[b'1'; MAX_PIN + 1]), Some(PinProblem::TooLong));
        assert_eq!(one.problem(&[b'1'; MAX_PIN]), None);
    }

    #[test]
    fn contents_are_checked_and_named() {
        let digits = PinRule {
            min_length: 6,
            contents: PinContents::Digits,
        };
        assert_eq!(digits.problem(b"864213"), None);
        assert_eq!(
            digits.problem(b"86421x").map(|p| p.to_string()).as_deref(),
            Some("a PIN must have at least 6 characters, digits only")
        );
        let mixed = PinRule {
            min_length: 6,
            contents: PinContents::LettersAndDigits,
        };
        assert_eq!(mixed.problem(b"abc123"), None);
        assert!(mixed.problem(b"abcdef").is_some());
        assert!(mixed.problem(b"123456").is_some());
        assert_eq!(mixed.id(), "6:letters-and-digits");
    }
}
