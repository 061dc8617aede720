//! The PAM conversation: one message per call; NULL answers and error returns become values,
//! and an answer goes straight from libpam's copy (wiped and freed at once) into the frame
//! that carries it.

use crate::ffi::Pam;
use core::ffi::c_int;

const PAM_PROMPT_ECHO_OFF: c_int = 1;
const PAM_PROMPT_ECHO_ON: c_int = 2;
const PAM_ERROR_MSG: c_int = 3;
const PAM_TEXT_INFO: c_int = 4;

pub struct PamConversation<'p, 'h> {
    pam: &'p Pam<'h>,
    /// PAM_SILENT: informational messages are not shown.
    silent: bool,
}

impl<'p, 'h> PamConversation<'p, 'h> {
    pub fn new(pam: &'p Pam<'h>, silent: bool) -> Self {
        PamConversation { pam, silent }
    }

    /// Asks the user; `answer` gets the reply (`None`: a NULL answer) and makes what is sent.
    /// `Err` is libpam's code (the application's conversation failed, or there is none).
    pub fn prompt<R>(
        &mut self,
        text: &str,
        echo: bool,
        answer: impl FnOnce(Option<&[u8]>) -> R,
    ) -> Result<R, c_int> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        self.pam.converse(style, text.as_bytes(), answer)
    }

    /// A line of information; not shown under PAM_SILENT, and a failure to show it ends nothing.
    pub fn info(&mut self, text: &str) {
        if !self.silent {
            let _ = self.pam.converse(PAM_TEXT_INFO, text.as_bytes(), |_| ());
        }
    }

    /// An error line; as [`PamConversation::info`].
    pub fn error(&mut self, text: &str) {
        if !self.silent {
            let _ = self.pam.converse(PAM_ERROR_MSG, text.as_bytes(), |_| ());
        }
    }
}
