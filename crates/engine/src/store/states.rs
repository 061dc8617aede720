//! The closed sets of words the store keeps: what an audit row says happened, and where a
//! challenge stands. Each word is written in one place, here; the rest of the code matches
//! on the variants.

use serde::Serialize;

macro_rules! words {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The word as the store, the logs and `--json` show it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            /// The variant a stored word stands for.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        /// Compares with the stored word (tests and filters read better so).
        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }
    };
}

words! {
    /// What an audit row says happened.
    AuditResult {
        /// The second factor (or the policy, or `pass_on_no_token`) let the login in.
        Accept = "accept",
        /// Refused: wrong PIN or OTP, replay, disabled token, a limit, a `[[policy]]` deny.
        Reject = "reject",
        /// Refused: the token's fail counter reached `max_fail`.
        Locked = "locked",
        /// A challenge was opened.
        Challenge = "challenge",
        /// Something failed (store, delivery, server); the login is unavailable.
        Error = "error",
        /// Went on, but an admin should look (an insecure transport, a refill that failed).
        Warning = "warning",
        /// No token and `nullok`: PAM_IGNORE.
        Ignore = "ignore",
        /// A `[[policy]]` rule or grace window skipped the second factor: PAM_IGNORE.
        Skip = "skip",
        /// `tessera restore` put a backup's tokens back.
        Restore = "restore",
        /// Offline values of a remote token were kept or refilled.
        Offline = "offline",
        /// A user enrolled a token for themselves (`tessera enroll`).
        Enroll = "enroll",
    }
}

words! {
    /// Where a challenge stands.
    ChallengeState {
        Open = "open",
        Answered = "answered",
        /// Answered wrongly, or its login ended without an answer.
        Failed = "failed",
        Expired = "expired",
    }
}

words! {
    /// The class of an attempt's source for a user, whose failures are summed for the user
    /// (`[auth] account_max_fail`): a source the user passed the second factor from within
    /// `familiar_days`, or the user's own uid; or any other.
    SourceClass {
        Familiar = "familiar",
        Unfamiliar = "unfamiliar",
    }
}

impl AuditResult {
    /// Its syslog priority: info for what went as it should, notice for refusals, warning for
    /// locks and warnings, err for errors.
    pub fn priority(self) -> u8 {
        const LOG_ERR: u8 = 3;
        const LOG_WARNING: u8 = 4;
        const LOG_NOTICE: u8 = 5;
        const LOG_INFO: u8 = 6;
        match self {
            AuditResult::Accept
            | AuditResult::Challenge
            | AuditResult::Ignore
            | AuditResult::Skip
            | AuditResult::Offline
            | AuditResult::Enroll => LOG_INFO,
            AuditResult::Error => LOG_ERR,
            AuditResult::Locked | AuditResult::Warning => LOG_WARNING,
            AuditResult::Reject | AuditResult::Restore => LOG_NOTICE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_reads_back_as_its_variant() {
        for r in AuditResult::ALL {
            assert_eq!(AuditResult::parse(r.as_str()), Some(*r));
        }
        for s in ChallengeState::ALL {
            assert_eq!(ChallengeState::parse(s.as_str()), Some(*s));
        }
        for c in SourceClass::ALL {
            assert_eq!(SourceClass::parse(c.as_str()), Some(*c));
        }
        assert_eq!(AuditResult::parse("maybe"), None);
        assert_eq!(AuditResult::Locked, "locked");
    }
}
