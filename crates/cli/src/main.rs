//! The `tessera` admin command: argument definitions (clap derive), configuration loading, and
//! the mapping of results to exit codes (0 ok, 1 failure, 2 usage) and one-line errors.
//!
//! Each subcommand lives in its own module and works through the library: the store's admin
//! operations, the crypto helpers, and for `check` the same [`tessera_engine::host::authenticate`] as the
//! PAM module.
// The only `unsafe` of tessera is the PAM module's FFI (`src/ffi/`); system calls go through nix.
#![forbid(unsafe_code)]

#[macro_use]
mod output;
mod admin;
mod backup;
mod check;
mod daemon;
mod doctor;
mod enroll;
mod import;
mod initsys;
mod input;
mod pamstack;
mod rollout;
mod token;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_engine::config::{Config, DEFAULT_PATH};
use tessera_engine::error::Error;
use tessera_engine::tokens::{Algorithm, TokenType};

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "TESSERA_CONFIG";

#[derive(Debug, Parser)]
#[command(
    name = "tessera",
    version,
    about = "Manage the tessera OTP store and test logins",
    // `tessera` alone is a usage error in one line, like any other.
    arg_required_else_help = false
)]
pub struct Cli {
    /// Configuration file [default: $TESSERA_CONFIG, else /etc/tessera/tessera.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
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
enum ConfigCmd {
    /// Say whether the config loads, as tesserad would load it on a reload (exit 0) or why not
    /// (exit 1): run it before `systemctl reload tesserad`
    Check,
}

/// The terminal's background a QR code is drawn for (`--qr`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum QrBackground {
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
enum ImportFormat {
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
struct ImportArgs {
    #[arg(long, value_enum)]
    format: ImportFormat,
    /// The owner of the tokens whose file names none
    #[arg(long)]
    user: Option<String>,
    /// The realm of the tokens whose file names none [default: [auth] default_realm]
    #[arg(long)]
    realm: Option<String>,
    /// Show what would be imported; write nothing
    #[arg(long)]
    dry_run: bool,
    #[arg(long)]
    json: bool,
    /// PSKC encrypted with a password: a file whose first line is the password
    #[arg(long, value_name = "FILE", conflicts_with = "key_file")]
    password_file: Option<PathBuf>,
    /// PSKC encrypted with a pre-shared key: a file whose first line is the key in hex
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PolicyCmd {
    /// Say which rule decides for this login, and why (nothing is written)
    Test(PolicyTestArgs),
}

#[derive(Debug, Args)]
struct DoctorArgs {
    /// The daemon's socket
    #[arg(long, default_value = daemon::DAEMON_SOCKET)]
    socket: PathBuf,
}

#[derive(Debug, Args)]
struct EnrollArgs {
    /// The token type [default: the first of the config's [enroll] types]
    #[arg(long = "type", value_name = "TYPE")]
    kind: Option<String>,
    /// Draw the QR code for a light terminal (dark modules inked)
    #[arg(long, value_enum, value_name = "BACKGROUND", default_value = "dark")]
    qr: QrBackground,
    /// The daemon's socket
    #[arg(long, default_value = daemon::DAEMON_SOCKET)]
    socket: PathBuf,
}

#[derive(Debug, Args)]
struct MetricsArgs {
    /// The daemon's socket
    #[arg(long, default_value = daemon::DAEMON_SOCKET)]
    socket: PathBuf,
}

#[derive(Debug, Args)]
struct PolicyTestArgs {
    #[arg(long)]
    user: String,
    /// The PAM service (sshd, sudo, login...)
    #[arg(long)]
    service: String,
    /// The remote host (PAM_RHOST), an IP address
    #[arg(long, default_value = "")]
    rhost: String,
    /// The terminal (PAM_TTY)
    #[arg(long, default_value = "")]
    tty: String,
    /// The day of the login, YYYY-MM-DD (rules with `from`) [default: now]
    #[arg(long, value_name = "DATE")]
    at: Option<String>,
}

#[derive(Debug, Args)]
struct BackupArgs {
    /// The new file (never an existing one); run by root it is root's
    file: PathBuf,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// A file made by `tessera backup`
    file: PathBuf,
    /// Where a token's counter (or TOTP step) in the backup is below the live one, keep the
    /// live counter and restore the rest [default: refuse the whole restore]
    #[arg(long, conflicts_with = "force")]
    keep_counters: bool,
    /// Move counters back to the backup's: OTPs used since the backup are accepted again
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum TokenCmd {
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
struct PinArgs {
    /// The token PIN (visible in the process list: prefer --pin-stdin)
    #[arg(long, value_name = "PIN", conflicts_with = "pin_stdin")]
    pin: Option<String>,
    /// Read the PIN from the first line of standard input
    #[arg(long)]
    pin_stdin: bool,
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
struct AddArgs {
    /// The login name of the token owner
    #[arg(long, required_unless_present = "group", conflicts_with = "group")]
    user: Option<String>,
    /// registration: one code for each member of this group (as `getent group` lists them)
    /// who has no token yet; prints user, serial, code and expiry
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// With --group: print the codes as JSON
    #[arg(long, requires = "group")]
    json: bool,
    /// Token type
    #[arg(long = "type", value_name = "TYPE", value_parser = token_type_arg())]
    kind: TokenType,
    /// Serial [default: the type and 8 random hex digits, e.g. HOTP1A2B3C4D]
    #[arg(long)]
    serial: Option<String>,
    #[command(flatten)]
    pin: PinArgs,
    /// The OTP key in hex (for pw: the static password in hex)
    #[arg(long, value_name = "HEX", conflicts_with = "genkey")]
    key: Option<String>,
    /// Generate a random key and print its otpauth:// URI
    #[arg(long)]
    genkey: bool,
    /// OTP length: 6 or 8 [default: 6]; tan codes: 6 to 10 [default: 8]
    #[arg(long, value_name = "N")]
    digits: Option<u32>,
    /// HMAC hash [default: sha1]
    #[arg(long, value_name = "ALG", value_parser = algorithm_arg())]
    algorithm: Option<Algorithm>,
    /// TOTP period in seconds: 30 or 60 [default: 30]
    #[arg(long, value_name = "S")]
    period: Option<u64>,
    /// HOTP: the next counter value the token will show [default: 0]
    #[arg(long, value_name = "N")]
    counter: Option<u64>,
    /// tan: how many single-use recovery codes to generate and print, 1 to 63 [default: 10]
    #[arg(long, value_name = "N")]
    count: Option<u32>,
    /// registration: how long the code is good for, in s, m, h or d (e.g. 12h) [default: 7d]
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    valid_for: Option<u64>,
    /// E-mail address (type email)
    #[arg(long, value_name = "ADDRESS")]
    email: Option<String>,
    /// Phone number (type sms)
    #[arg(long, value_name = "NUMBER")]
    phone: Option<String>,
    /// OCRA suite, e.g. OCRA-1:HOTP-SHA1-6:QN08 (type ocra)
    #[arg(long, value_name = "SUITE")]
    ocra_suite: Option<String>,
    /// REALM:N — N tokens of other users of REALM are needed (type 4eyes)
    #[arg(long = "4eyes", value_name = "REALM:N")]
    four_eyes: Option<String>,
    /// The character that joins the users' PIN+OTPs in a 4eyes pass [default: a space]
    #[arg(long, value_name = "CHAR", requires = "four_eyes")]
    separator: Option<String>,
    /// Realm of the user [default: [auth].default_realm]
    #[arg(long)]
    realm: Option<String>,
    /// Free text shown in listings
    #[arg(long, value_name = "TEXT")]
    description: Option<String>,
    /// Issuer shown by authenticator apps
    #[arg(long, value_name = "NAME", default_value = "tessera")]
    issuer: String,
    /// Also print the otpauth:// URI as a QR code for the terminal (needs --genkey); drawn
    /// for a dark terminal, or with --qr=light for a light one
    #[arg(long, value_enum, value_name = "BACKGROUND", num_args = 0..=1, require_equals = true,
          default_missing_value = "dark")]
    qr: Option<QrBackground>,
}

#[derive(Debug, Subcommand)]
enum ChallengeCmd {
    /// List open challenges (with --all also answered, failed and expired ones)
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct AuditArgs {
    #[arg(long, value_name = "USER")]
    user: Option<String>,
    /// The newest N entries [default: 50; with --follow, 0]
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    /// Then print each new entry as it is written, until interrupted (JSON: one object a line)
    #[arg(long)]
    follow: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The login name, as PAM would pass it (user@realm when a realm separator is set)
    user: String,
    /// The service name recorded in the audit trail and syslog
    #[arg(long, value_name = "NAME", default_value = "tessera-check")]
    service: String,
    /// The remote host recorded in the audit trail and syslog
    #[arg(long, value_name = "HOST", default_value = "")]
    rhost: String,
}

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The arguments make no sense: exit 2.
    Usage(String),
    /// The command failed: exit 1.
    Error(Error),
    /// The command failed and has already said so (a check's verdict): exit 1, nothing more.
    Reported,
    /// Whoever read stdout closed it (`| head`): the end of a listing, exit 0 without a word.
    /// (`token add` checks its own output: a serial or key nobody saw is an error there.)
    OutputClosed,
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Error(e)
    }
}

impl Failure {
    fn usage(msg: impl Into<String>) -> Failure {
        Failure::Usage(msg.into())
    }
    fn invalid(msg: impl Into<String>) -> Failure {
        Failure::Error(Error::Invalid(msg.into()))
    }
}

pub type CliResult<T> = Result<T, Failure>;

/// The whole command: parse, run, report. The binary's `main` calls only this.
pub fn main() -> ExitCode {
    // A SIGCHLD (or SIGTERM, ...) that the parent left ignored would be ours too: the kernel
    // would reap the sendmail command of an e-mail token before its status is read. SIGPIPE
    // stays ignored, so that `| head` ends a listing through EPIPE (see `output`).
    tessera_engine::sys::undo_ignored_signals(&[tessera_engine::sys::SIGPIPE]);
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_exit(e),
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(m)) => {
            say_error(&m);
            ExitCode::from(2)
        }
        Err(Failure::Error(e)) => {
            say_error(&e.to_string());
            ExitCode::from(1)
        }
        Err(Failure::Reported) => ExitCode::from(1),
        Err(Failure::OutputClosed) => ExitCode::SUCCESS,
    }
}

/// `tessera policy test`: the rule that decides, the action and the criteria that matched.
fn policy_test(cfg: &Config, a: &PolicyTestArgs) -> CliResult<()> {
    use tessera_engine::engine::SystemAccounts;
    use tessera_engine::engine::{Clock, SystemClock};
    use tessera_engine::policy::Day;
    use tessera_engine::policy::{decide, Action, Who};
    let accounts = SystemAccounts;
    let now = match &a.at {
        Some(text) => {
            Day::parse(text)
                .ok_or_else(|| Failure::usage(format!("--at {text}: not a date YYYY-MM-DD")))?
                .start
        }
        None => SystemClock.now(),
    };
    let who = Who::of(&a.service, &a.user, &a.rhost, &a.tty, now, &accounts);
    let d = decide(&cfg.policy, &who, &accounts);
    let what = match (d.action, d.grace) {
        (Action::Require, 0) => "require: the second factor is asked".to_string(),
        (Action::Require, g) => format!(
            "require: the second factor is asked, unless one was accepted for this user, \
             service and rhost in the last {g} s"
        ),
        (Action::Skip, _) => "skip: PAM_IGNORE, no second factor asked".into(),
        (Action::Deny, _) => "deny: refused without a prompt".into(),
        (Action::Enforce, _) => "enforce: the second factor is asked, also where the PAM line \
                                 has nullok (a user without a token is refused)"
            .into(),
    };
    outln!("{}: {what}", d.describe())?;
    // PAM_IGNORE is no "let in": what it does depends on the rest of the service's stack.
    if d.action == Action::Skip || d.grace > 0 {
        let when = if d.action == Action::Skip {
            "then"
        } else {
            "within the grace window"
        };
        outln!("{when}: {}", crate::pamstack::what_ignore_does(&a.service))?;
    }
    Ok(())
}

/// One line on stderr: `tessera: <message>`.
fn say_error(msg: &str) {
    let one_line = msg.replace(['\n', '\r'], " ");
    let _ = writeln!(std::io::stderr(), "tessera: {one_line}");
}

/// A warning on stderr, one line; the command goes on.
fn warn(msg: &str) {
    say_error(&format!("warning: {msg}"));
}

/// Help and version go to stdout with exit 0; every usage error is one line and exit 2.
fn clap_exit(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // A command group without its subcommand: its usage line says what is missing.
            let text = e.render().to_string();
            let usage = text
                .lines()
                .find_map(|l| l.trim().strip_prefix("Usage: "))
                .unwrap_or("tessera <COMMAND>");
            say_error(&format!("usage: {usage} (see --help)"));
            ExitCode::from(2)
        }
        _ => {
            // clap's message is its first paragraph (e.g. the missing arguments, one per line).
            let text = e.render().to_string();
            let first: Vec<&str> = text
                .lines()
                .map(str::trim)
                .skip_while(|l| l.is_empty())
                .take_while(|l| !l.is_empty())
                .collect();
            let msg = first.join(" ");
            let msg = msg.trim_start_matches("error: ");
            say_error(&format!("{msg} (see --help)"));
            ExitCode::from(2)
        }
    }
}

/// The config path: `--config`, else `$TESSERA_CONFIG`, else the default.
fn config_path(cli: &Cli) -> PathBuf {
    if let Some(p) = &cli.config {
        return p.clone();
    }
    match std::env::var_os(CONFIG_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(DEFAULT_PATH),
    }
}

/// Loads the config as the module does (refusing one others can write). A missing file is an
/// error for every command, also `init`: the store and key must go where the module will look.
fn load_config(path: &std::path::Path) -> CliResult<Config> {
    if !path.exists() {
        return Err(Failure::Error(Error::Config(format!(
            "{}: no such file (install conf/tessera.toml there, or give --config PATH or {CONFIG_ENV})",
            path.display()
        ))));
    }
    Ok(tessera_engine::config::Config::load(path)?)
}

/// Run by root, becomes the owner of the store's directory if that is not root (the package's
/// `_tessera`), as `tesserad --stdio` does ([`tessera_engine::sys::become_store_owner`]): the
/// engine accepts only files of root or of the effective uid, and what SQLite creates beside
/// the store (`-wal`, `-shm`) must stay the daemon's. `init` does this its own way.
pub fn become_store_owner(cfg: &Config) -> CliResult<Option<u32>> {
    tessera_engine::sys::become_store_owner(&cfg.store.path)
        .map_err(|e| Failure::Error(Error::Permissions(e.to_string())))
}

fn enroll_self(a: &EnrollArgs) -> CliResult<()> {
    let light = a.qr == QrBackground::Light;
    daemon::enroll(&a.socket, a.kind.as_deref(), light)
}

fn run(cli: Cli) -> CliResult<()> {
    let path = config_path(&cli);
    // None of these needs the config: doctor checks it, metrics and enroll ask the daemon.
    match &cli.command {
        Command::Config(ConfigCmd::Check) => {
            load_config(&path)?;
            return outln!("{}: the config loads", path.display());
        }
        Command::Doctor(a) => return doctor::run(&path, &a.socket),
        Command::Metrics(a) => return daemon::metrics(&path, &a.socket),
        Command::Enroll(a) => return enroll_self(a),
        _ => {}
    }
    let cfg = load_config(&path)?;
    // `init`, `backup`, `restore` and `import` touch files of root's (or of users) too, and
    // change user themselves.
    if !matches!(
        cli.command,
        Command::Init | Command::Backup(_) | Command::Restore(_) | Command::Import(_)
    ) {
        become_store_owner(&cfg)?;
    }
    match cli.command {
        Command::Init => admin::init(&cfg),
        Command::Token(cmd) => token::run(&cfg, cmd),
        Command::Challenge(ChallengeCmd::List { all, json }) => {
            admin::challenge_list(&cfg, all, json)
        }
        Command::Audit(a) if a.follow => {
            admin::audit_follow(&cfg, a.user.as_deref(), a.limit.unwrap_or(0), a.json)
        }
        Command::Audit(a) => admin::audit(&cfg, a.user.as_deref(), a.limit.unwrap_or(50), a.json),
        Command::Check(a) => check::run(&cfg, &a),
        Command::Doctor(a) => doctor::run(&path, &a.socket),
        Command::Metrics(a) => daemon::metrics(&path, &a.socket),
        Command::Enroll(a) => enroll_self(&a),
        Command::Policy(PolicyCmd::Test(a)) => policy_test(&cfg, &a),
        Command::Backup(a) => backup::backup(&cfg, &a.file),
        Command::Restore(a) => {
            use tessera_engine::store::RestoreMode;
            let mode = if a.force {
                RestoreMode::Force
            } else if a.keep_counters {
                RestoreMode::KeepCounters
            } else {
                RestoreMode::Refuse
            };
            backup::restore(&cfg, &a.file, mode)
        }
        Command::Import(a) => import::run(&cfg, &a),
        Command::Config(ConfigCmd::Check) => Ok(()),
    }
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
