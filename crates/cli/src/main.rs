//! The `tessera` admin command: parsing the arguments (defined in [`args`]), configuration
//! loading, the dispatch to each subcommand, and the mapping of results to exit codes (0 ok,
//! 1 failure, 2 usage) and one-line errors.
//!
//! Each subcommand lives in its own module and works through the library: the store's admin
//! operations, the crypto helpers, and for `check` the same [`tessera_engine::login::authenticate`]
//! as the PAM module.
// The only `unsafe` of tessera is the PAM module's FFI (`src/ffi/`); system calls go through nix.
#![forbid(unsafe_code)]

#[macro_use]
mod output;
mod admin;
mod args;
mod backup;
mod check;
mod daemon;
mod doctor;
mod import;
mod initsys;
mod input;
mod pamstack;
mod rollout;
mod token;
mod token_add;

use args::{
    ChallengeCmd, Cli, Command, ConfigCmd, EnrollArgs, PolicyCmd, PolicyTestArgs, QrBackground,
};
use clap::Parser;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_engine::config::{Config, DEFAULT_PATH};
use tessera_engine::error::Error;

/// The environment variable naming the config file when `--config` is not given.
pub const CONFIG_ENV: &str = "TESSERA_CONFIG";

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
        Failure::Error(Error::invalid(msg))
    }
}

pub type CliResult<T> = Result<T, Failure>;

/// The whole command: parse, run, report. The binary's `main` calls only this.
pub fn main() -> ExitCode {
    // A SIGCHLD (or SIGTERM, ...) that the parent left ignored would be ours too: the kernel
    // would reap the sendmail command of an e-mail token before its status is read. SIGPIPE
    // stays ignored, so that `| head` ends a listing through EPIPE (see `output`).
    tessera_engine::os::sys::undo_ignored_signals(&[tessera_engine::os::sys::SIGPIPE]);
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
    use tessera_engine::auth::SystemAccounts;
    use tessera_engine::auth::{Clock, SystemClock};
    use tessera_engine::config::policy::{Action, Day};
    use tessera_engine::login::policy::{decide, Who};
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
        return Err(Failure::Error(Error::config(format!(
            "{}: no such file (install conf/tessera.toml there, or give --config PATH or {CONFIG_ENV})",
            path.display()
        ))));
    }
    Ok(tessera_engine::config::Config::load(path)?)
}

/// Run by root, becomes the owner of the store's directory if that is not root (the package's
/// `_tessera`), as `tesserad --stdio` does ([`tessera_engine::os::sys::become_store_owner`]): the
/// engine accepts only files of root or of the effective uid, and what SQLite creates beside
/// the store (`-wal`, `-shm`) must stay the daemon's. `init` does this its own way.
pub fn become_store_owner(cfg: &Config) -> CliResult<Option<u32>> {
    tessera_engine::os::sys::become_store_owner(&cfg.store.path)
        .map_err(|e| Failure::Error(Error::permissions(e.to_string())))
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
