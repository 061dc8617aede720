//! The arguments of `tessera` (clap derive): the command line [`Cli`], its subcommands, the
//! arguments of each, and the parsers of typed values (`--type`, `--algorithm`, `--valid-for`).
//! Apart from `main.rs`, which parses them and dispatches, so that the subcommands' modules read
//! their arguments without reaching into the entry.

use crate::daemon;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use tessera_engine::tokens::{Algorithm, TokenType};

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Manage the tessera OTP store and test logins",
    // `tessera` alone is a usage error in one line, like any other.
    arg_required_else_help = false
)]
pub(crate) struct Cli {
    /// Configuration file [default: $TESSERA_CONFIG, else /etc/tessera/tessera.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create the store (0600, in a 0700 directory) and the key file (0600); never overwrites a key
    Init,
    /// Enroll and manage tokens
    #[command(subcommand)]
    Token(TokenCmd),
    /// Show challenges
    #[command(subcommand)]
    Challenge(ChallengeCmd),
    /// Show the audit trail, oldest first
    Audit(AuditArgs),
    /// Test a login through the same engine as the PAM module (exit 0 on accept)
    Check(CheckArgs),
    /// Check the config, file modes, store, key and PAM setup, and ask the daemon how it is
    Doctor(DoctorArgs),
    /// Write a consistent copy of the store to a new file (0600), while logins go on
    Backup(BackupArgs),
    /// Put the tokens of a backup back into the store; refuses to move a counter back
    Restore(RestoreArgs),
    /// Which [[policy]] rule applies to a login
    #[command(subcommand)]
    Policy(PolicyCmd),
    /// The daemon's counters in the OpenMetrics text format (root or the daemon's user)
    Metrics(MetricsArgs),
    /// Enroll a token for yourself (any user of [enroll] groups), through the daemon
    Enroll(EnrollArgs),
    /// Enroll the tokens of google-authenticator, pam_oath, PSKC or privacyIDEA files, keeping
    /// which codes were used; all of them or none
    Import(ImportArgs),
    /// The config file
    #[command(subcommand)]
    Config(ConfigCmd),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCmd {
    /// Say whether the config loads, as tesserad would load it on a reload (exit 0) or why not
    /// (exit 1): run it before `systemctl reload tesserad`
    Check,
}

/// The terminal's background a QR code is drawn for (`--qr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum QrBackground {
    Dark,
    Light,
}

impl From<QrBackground> for tessera_engine::enroll::qr::Background {
    fn from(b: QrBackground) -> Self {
        match b {
            QrBackground::Dark => Self::Dark,
            QrBackground::Light => Self::Light,
        }
    }
}

/// The files `tessera import` reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ImportFormat {
    /// ~/.google_authenticator (the user is the file's owner, or --user; a file of root or a system account needs --user)
    GoogleAuthenticator,
    /// a pam_oath users file (usersfile=)
    Oath,
    /// RFC 6030 PSKC, plain or encrypted (--password-file, --key-file)
    Pskc,
    /// privacyIDEA's token CSV (version 1, or 2 with user columns)
    Privacyidea,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    #[arg(long, value_enum)]
    pub(crate) format: ImportFormat,
    /// The owner of the tokens whose file names none
    #[arg(long)]
    pub(crate) user: Option<String>,
    /// The realm of the tokens whose file names none [default: [auth] default_realm]
    #[arg(long)]
    pub(crate) realm: Option<String>,
    /// Show what would be imported; write nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
    #[arg(long)]
    pub(crate) json: bool,
    /// PSKC encrypted with a password: a file whose first line is the password
    #[arg(long, value_name = "FILE", conflicts_with = "key_file")]
    pub(crate) password_file: Option<PathBuf>,
    /// PSKC encrypted with a pre-shared key: a file whose first line is the key in hex
    #[arg(long, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCmd {
    /// Say which rule decides for this login, and why (nothing is written)
    Test(PolicyTestArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    /// The daemon's socket
    #[arg(long, default_value = daemon::DAEMON_SOCKET)]
    pub(crate) socket: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct EnrollArgs {
    /// The token type [default: the first of the config's [enroll] types]
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) kind: Option<String>,
    /// Draw the QR code for a light terminal (dark modules inked)
    #[arg(long, value_enum, value_name = "BACKGROUND", default_value = "dark")]
    pub(crate) qr: QrBackground,
    /// The daemon's socket
    #[arg(long, default_value = daemon::DAEMON_SOCKET)]
    pub(crate) socket: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct MetricsArgs {
    /// The daemon's socket
    #[arg(long, default_value = daemon::DAEMON_SOCKET)]
    pub(crate) socket: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyTestArgs {
    #[arg(long)]
    pub(crate) user: String,
    /// The PAM service (sshd, sudo, login...)
    #[arg(long)]
    pub(crate) service: String,
    /// The remote host (PAM_RHOST), an IP address
    #[arg(long, default_value = "")]
    pub(crate) rhost: String,
    /// The terminal (PAM_TTY)
    #[arg(long, default_value = "")]
    pub(crate) tty: String,
    /// The day of the login, YYYY-MM-DD (rules with `from`) [default: now]
    #[arg(long, value_name = "DATE")]
    pub(crate) at: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct BackupArgs {
    /// The new file (never an existing one); run by root it is root's
    pub(crate) file: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct RestoreArgs {
    /// A file made by `tessera backup`
    pub(crate) file: PathBuf,
    /// Where a token's counter (or TOTP step) in the backup is below the live one, keep the
    /// live counter and restore the rest [default: refuse the whole restore]
    #[arg(long, conflicts_with = "force")]
    pub(crate) keep_counters: bool,
    /// Move counters back to the backup's: OTPs used since the backup are accepted again
    #[arg(long)]
    pub(crate) force: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCmd {
    /// Enroll a token; prints its serial (and the otpauth:// URI of a generated key)
    Add(Box<AddArgs>),
    /// List tokens
    List {
        /// Only the tokens of this user
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        /// Only the tokens of this type (e.g. registration: who has enrolled and who hasn't)
        #[arg(long = "type", value_name = "TYPE", value_parser = token_type_arg())]
        kind: Option<TokenType>,
        /// One JSON array of the tokens (never a PIN hash or a key)
        #[arg(long)]
        json: bool,
    },
    /// Show one token
    Show {
        serial: String,
        /// The token as one JSON object (never its PIN hash or key)
        #[arg(long)]
        json: bool,
    },
    /// Set (or with --no-pin remove) a token's PIN; asks for it when no flag gives it
    SetPin {
        serial: String,
        #[command(flatten)]
        pin: PinArgs,
        /// Remove the PIN: the pass is then the OTP alone
        #[arg(long, conflicts_with_all = ["pin", "pin_stdin"])]
        no_pin: bool,
    },
    /// Enable a token
    Enable { serial: String },
    /// Disable a token (its logins are refused)
    Disable { serial: String },
    /// Remove a token and its challenges
    Remove { serial: String },
    /// Clear a token's fail counter (unlocks it)
    Reset { serial: String },
    /// Resynchronise an HOTP counter or a TOTP clock drift with two consecutive OTPs
    Resync {
        serial: String,
        otp1: String,
        otp2: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct PinArgs {
    /// The token PIN (visible in the process list: prefer --pin-stdin)
    #[arg(long, value_name = "PIN", conflicts_with = "pin_stdin")]
    pub(crate) pin: Option<String>,
    /// Read the PIN from the first line of standard input
    #[arg(long)]
    pub(crate) pin_stdin: bool,
}

/// `--type`: the names of [`TokenType::ALL`], so that the list of types lives in one place.
fn token_type_arg() -> impl TypedValueParser<Value = TokenType> {
    PossibleValuesParser::new(TokenType::ALL.map(TokenType::name)).try_map(|s| TokenType::parse(&s))
}

/// `--algorithm`: the names of [`Algorithm::ALL`].
fn algorithm_arg() -> impl TypedValueParser<Value = Algorithm> {
    PossibleValuesParser::new(Algorithm::ALL.map(Algorithm::name)).try_map(|s| Algorithm::parse(&s))
}

/// `--valid-for`: a duration in seconds, minutes, hours or days (`90s`, `30m`, `12h`, `7d`),
/// at least a minute and at most a year.
fn duration_arg(s: &str) -> Result<u64, String> {
    let bad = || format!("\"{s}\" is not a duration such as 90s, 30m, 12h or 7d");
    let (n, unit) = s.split_at(s.len().saturating_sub(1));
    let n: u64 = n.parse().map_err(|_| bad())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    }
    .ok_or_else(bad)?;
    if !(60..=366 * 86_400).contains(&secs) {
        return Err(format!("{s}: a code must be good for 1 minute to 366 days"));
    }
    Ok(secs)
}

#[derive(Debug, Args)]
pub(crate) struct AddArgs {
    /// The login name of the token owner
    #[arg(long, required_unless_present = "group", conflicts_with = "group")]
    pub(crate) user: Option<String>,
    /// registration: one code for each member of this group (as `getent group` lists them)
    /// who has no token yet; prints user, serial, code and expiry
    #[arg(long, value_name = "GROUP")]
    pub(crate) group: Option<String>,
    /// With --group: print the codes as JSON
    #[arg(long, requires = "group")]
    pub(crate) json: bool,
    /// Token type
    #[arg(long = "type", value_name = "TYPE", value_parser = token_type_arg())]
    pub(crate) kind: TokenType,
    /// Serial [default: the type and 8 random hex digits, e.g. HOTP1A2B3C4D]
    #[arg(long)]
    pub(crate) serial: Option<String>,
    #[command(flatten)]
    pub(crate) pin: PinArgs,
    /// The OTP key in hex (for pw: the static password in hex)
    #[arg(long, value_name = "HEX", conflicts_with = "genkey")]
    pub(crate) key: Option<String>,
    /// Generate a random key and print its otpauth:// URI
    #[arg(long)]
    pub(crate) genkey: bool,
    /// OTP length: 6 or 8 [default: 6]; tan codes: 6 to 10 [default: 8]
    #[arg(long, value_name = "N")]
    pub(crate) digits: Option<u32>,
    /// HMAC hash [default: sha1]
    #[arg(long, value_name = "ALG", value_parser = algorithm_arg())]
    pub(crate) algorithm: Option<Algorithm>,
    /// TOTP period in seconds: 30 or 60 [default: 30]
    #[arg(long, value_name = "S")]
    pub(crate) period: Option<u64>,
    /// HOTP: the next counter value the token will show [default: 0]
    #[arg(long, value_name = "N")]
    pub(crate) counter: Option<u64>,
    /// tan: how many single-use recovery codes to generate and print, 1 to 63 [default: 10]
    #[arg(long, value_name = "N")]
    pub(crate) count: Option<u32>,
    /// registration: how long the code is good for, in s, m, h or d (e.g. 12h) [default: 7d]
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub(crate) valid_for: Option<u64>,
    /// E-mail address (type email)
    #[arg(long, value_name = "ADDRESS")]
    pub(crate) email: Option<String>,
    /// Phone number (type sms)
    #[arg(long, value_name = "NUMBER")]
    pub(crate) phone: Option<String>,
    /// OCRA suite, e.g. OCRA-1:HOTP-SHA1-6:QN08 (type ocra)
    #[arg(long, value_name = "SUITE")]
    pub(crate) ocra_suite: Option<String>,
    /// REALM:N — N tokens of other users of REALM are needed (type 4eyes)
    #[arg(long = "4eyes", value_name = "REALM:N")]
    pub(crate) four_eyes: Option<String>,
    /// The character that joins the users' PIN+OTPs in a 4eyes pass [default: a space]
    #[arg(long, value_name = "CHAR", requires = "four_eyes")]
    pub(crate) separator: Option<String>,
    /// Realm of the user [default: [auth].default_realm]
    #[arg(long)]
    pub(crate) realm: Option<String>,
    /// Free text shown in listings
    #[arg(long, value_name = "TEXT")]
    pub(crate) description: Option<String>,
    /// Issuer shown by authenticator apps
    #[arg(long, value_name = "NAME", default_value = "tessera")]
    pub(crate) issuer: String,
    /// Also print the otpauth:// URI as a QR code for the terminal (needs --genkey); drawn
    /// for a dark terminal, or with --qr=light for a light one
    #[arg(long, value_enum, value_name = "BACKGROUND", num_args = 0..=1, require_equals = true,
          default_missing_value = "dark")]
    pub(crate) qr: Option<QrBackground>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ChallengeCmd {
    /// List open challenges (with --all also answered, failed and expired ones)
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[arg(long, value_name = "USER")]
    pub(crate) user: Option<String>,
    /// The newest N entries [default: 50; with --follow, 0]
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u32>,
    /// Then print each new entry as it is written, until interrupted (JSON: one object a line)
    #[arg(long)]
    pub(crate) follow: bool,
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The login name, as PAM would pass it (user@realm when a realm separator is set)
    pub(crate) user: String,
    /// The service name recorded in the audit trail and syslog
    #[arg(long, value_name = "NAME", default_value = "tessera-check")]
    pub(crate) service: String,
    /// The remote host recorded in the audit trail and syslog
    #[arg(long, value_name = "HOST", default_value = "")]
    pub(crate) rhost: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn durations_in_seconds_minutes_hours_and_days() {
        assert_eq!(duration_arg("90s"), Ok(90));
        assert_eq!(duration_arg("30m"), Ok(1800));
        assert_eq!(duration_arg("12h"), Ok(43_200));
        assert_eq!(duration_arg("7d"), Ok(604_800));
        for bad in [
            "",
            "d",
            "7",
            "7w",
            "-1d",
            "30s",
            "367d",
            "99999999999999999999d",
        ] {
            assert!(duration_arg(bad).is_err(), "{bad}");
        }
    }
}
