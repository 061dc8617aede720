//! `tessera token add --type registration --group G`: a rollout. One registration code for
//! each member of a group who has no token yet, printed once as a table (or JSON) for the
//! admin to hand out; members who have a token, or a code not used yet, are named and left as
//! they are, so the same command run again later issues codes only to those still missing.
//! `tessera token list --type registration` then shows who has enrolled.

use super::{token_add, CliResult, Failure};
use crate::args::AddArgs;
use serde::Serialize;
use tessera_engine::auth;
use tessera_engine::config::Config;
use tessera_engine::store::Store as _;
use tessera_engine::tokens::TokenType;

/// One code issued, as printed.
#[derive(Serialize)]
struct Issued {
    user: String,
    serial: String,
    code: String,
    /// UTC, to the minute.
    expires: String,
}

pub fn issue(cfg: &Config, a: &AddArgs) -> CliResult<()> {
    let group = a.group.as_deref().unwrap_or_default();
    if a.kind != TokenType::Registration {
        return Err(Failure::usage(
            "--group issues registration codes: use it with --type registration",
        ));
    }
    if a.serial.is_some() {
        return Err(Failure::usage(
            "--serial names one token; --group issues one per member (serials are generated)",
        ));
    }
    let Some(mut members) = tessera_engine::os::sys::group_members(group) else {
        return Err(Failure::usage(format!(
            "no group \"{}\" on this host",
            group.escape_debug()
        )));
    };
    members.sort();
    members.dedup();
    if members.is_empty() {
        return Err(Failure::usage(format!(
            "group \"{}\" lists no members (`getent group {}`; an account whose primary group \
             it is is not listed there: give it --user)",
            group.escape_debug(),
            group.escape_debug()
        )));
    }
    let store = auth::open_store(cfg)?;
    let store_key = auth::load_key(cfg)?;
    let mut issued = Vec::new();
    let mut skipped = Vec::new();
    for member in &members {
        let Some(user) = tessera_engine::os::sys::account_name(member) else {
            skipped.push(format!("{} (no account)", member.escape_debug()));
            continue;
        };
        token_add::check_user(cfg, &user)?;
        let plan = token_add::plan(cfg, a)?;
        let mine = store.tokens_of(&user, &plan.realm)?;
        if let Some(t) = mine.first() {
            let what = if t.kind == TokenType::Registration {
                "has a registration code"
            } else {
                "has a token"
            };
            skipped.push(format!("{user} ({what})"));
            continue;
        }
        let record = token_add::record_of(a, &plan, &user);
        let record = token_add::save(&store, &store_key, None, record, &plan)?;
        issued.push(Issued {
            user,
            serial: record.serial,
            code: plan
                .codes
                .first()
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .unwrap_or_default(),
            expires: plan
                .info
                .expires
                .map_or_else(String::new, crate::output::minute),
        });
    }
    if !skipped.is_empty() {
        eprintln!(
            "{}",
            crate::output::wrapped(
                "tessera: ",
                &format!(
                    "no code for {} of {} members of {group}: {}",
                    skipped.len(),
                    members.len(),
                    skipped.join(", ")
                ),
                80
            )
        );
    }
    let printed = if a.json {
        crate::output::json(&issued)
    } else {
        let mut table = crate::output::Table::new(&["USER", "SERIAL", "CODE", "EXPIRES (UTC)"]);
        for i in &issued {
            table.row(vec![
                i.user.clone(),
                i.serial.clone(),
                i.code.clone(),
                i.expires.clone(),
            ]);
        }
        table.print()
    };
    if printed.is_err() {
        // A code nobody saw must not stay: taken back, as `token add` takes back a key.
        for i in &issued {
            store.remove_token(&i.serial)?;
        }
        return Err(Failure::invalid(format!(
            "stdout could not be written: the {} codes were taken back",
            issued.len()
        )));
    }
    Ok(())
}
