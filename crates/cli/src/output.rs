//! What the command prints: aligned tables, `key value` blocks, JSON, UTC times. Every write to
//! stdout goes through `outln!`, so a failed write is an error (exit 1), not a panic, and a
//! reader that stopped reading (`tessera token list | head -2`) ends the command quietly.

use super::{CliResult, Failure};
use serde::Serialize;
use tessera_engine::error::Error;

/// `println!` that returns a [`CliResult`] instead of panicking when stdout is gone.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::output::stdout_failed)
    }};
}

pub fn stdout_failed(e: std::io::Error) -> Failure {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // The reader has what it wanted: a normal end for a listing, as for `ls | head`.
        return Failure::OutputClosed;
    }
    Failure::Error(Error::invalid(format!("stdout: {e}")))
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(v: &T) -> CliResult<()> {
    let text = serde_json::to_string_pretty(v)
        .map_err(|e| Failure::Error(Error::invalid(format!("JSON: {e}"))))?;
    outln!("{text}")
}

/// Control characters in stored names would break the layout (or forge lines): escape them.
pub fn clean(s: &str) -> String {
    if s.chars().any(char::is_control) {
        s.escape_debug().to_string()
    } else {
        s.to_string()
    }
}

/// A table with a header row; columns are padded to their widest cell, the last one is not.
pub struct Table {
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| h.to_string()).collect()],
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.iter().map(|c| clean(c)).collect());
    }

    pub fn print(&self) -> CliResult<()> {
        let cols = self.rows.iter().map(Vec::len).max().unwrap_or(0);
        let widths: Vec<usize> = (0..cols)
            .map(|i| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| c.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in &self.rows {
            let mut line = String::new();
            for (i, cell) in r.iter().enumerate() {
                if i + 1 == r.len() {
                    line.push_str(cell);
                } else {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                }
            }
            outln!("{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// Prints `key  value` lines with the keys aligned.
pub fn fields(pairs: &[(&str, String)]) -> CliResult<()> {
    let w = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in pairs {
        outln!("{k:<w$}  {}", clean(v))?;
    }
    Ok(())
}

/// Some tokens by `user/serial`, for a one-line message: the first ten, then how many more.
pub fn some_tokens(tokens: &[(&str, &str)]) -> String {
    const SHOWN: usize = 10;
    let mut s: Vec<String> = tokens
        .iter()
        .take(SHOWN)
        .map(|(user, serial)| format!("{user}/{serial}"))
        .collect();
    if tokens.len() > SHOWN {
        s.push(format!("and {} more", tokens.len() - SHOWN));
    }
    s.join(", ")
}

pub fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` in UTC.
pub fn time(t: u64) -> String {
    tessera_engine::calendar::utc_time(t)
}

/// Unix seconds as `YYYY-MM-DD HH:MM` in UTC.
pub fn minute(t: u64) -> String {
    tessera_engine::calendar::utc_minute(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("alice"), "alice");
        assert_eq!(clean("a\nb"), "a\\nb");
    }
}

/// `text` after `prefix`, wrapped at word boundaries into lines of at most `width` characters
/// (a word longer than a line stands alone); the lines after the first are indented as far as
/// the prefix.
pub fn wrapped(prefix: &str, text: &str, width: usize) -> String {
    let indent = " ".repeat(prefix.chars().count());
    let mut out = String::new();
    let mut line = prefix.to_string();
    let mut empty = true;
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = indent.clone();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out
}

#[cfg(test)]
mod wrap_tests {
    use super::wrapped;

    #[test]
    fn lines_are_cut_at_words_within_the_width() {
        let t = wrapped("tessera: ", &"word ".repeat(40), 80);
        assert!(t.lines().count() > 1);
        assert!(t.lines().all(|l| l.chars().count() <= 80), "{t}");
        assert!(t.starts_with("tessera: word"));
        assert!(
            t.lines().skip(1).all(|l| l.starts_with("         word")),
            "{t}"
        );
        assert_eq!(wrapped("p: ", "short", 80), "p: short");
    }
}
