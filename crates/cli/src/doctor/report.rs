//! The [`Report`] every group of checks writes its lines to (`ok`, `warn` or `FAIL`), apart so
//! that each group can use it without reaching up into `doctor` itself.

use crate::CliResult;

#[derive(Default)]
pub(super) struct Report {
    pub(super) failed: bool,
}

impl Report {
    pub(super) fn ok(&mut self, what: &str) -> CliResult<()> {
        outln!("ok    {what}")
    }
    pub(super) fn warn(&mut self, what: &str) -> CliResult<()> {
        outln!("warn  {what}")
    }
    pub(super) fn fail(&mut self, what: &str) -> CliResult<()> {
        self.failed = true;
        outln!("FAIL  {what}")
    }
}
