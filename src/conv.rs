//! The PAM conversation: one message per call, NULL answers and error returns become values,
//! answers are copied into zeroizing buffers.

use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO};
use pam::conv::Conv;
use tessera_proto::Secret;

/// libpam's code when there is no conversation at all.
const PAM_CONV_ERR: i32 = 19;

pub struct PamConversation<'a> {
    conv: Option<Conv<'a>>,
    /// PAM_SILENT: informational messages are not shown.
    silent: bool,
}

impl<'a> PamConversation<'a> {
    pub fn new(conv: Option<Conv<'a>>, silent: bool) -> Self {
        PamConversation { conv, silent }
    }

    /// Sends one message; `Err` is libpam's code (the application's conversation failed, or
    /// there is none).
    fn send(&mut self, style: i32, text: &str) -> Result<Option<Secret>, i32> {
        let conv = self.conv.as_ref().ok_or(PAM_CONV_ERR)?;
        match conv.send(style, text) {
            Ok(Some(answer)) => Ok(Some(zeroize::Zeroizing::new(answer.as_bytes().to_vec()))),
            Ok(None) => Ok(None),
            Err(code) => Err(code as i32),
        }
    }

    /// Asks the user; `Ok(None)` is a NULL answer.
    pub fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>, i32> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        self.send(style, text)
    }

    /// A line of information; not shown under PAM_SILENT, and a failure to show it ends nothing.
    pub fn info(&mut self, text: &str) {
        if !self.silent {
            let _ = self.send(PAM_TEXT_INFO, text);
        }
    }

    /// An error line; as [`PamConversation::info`].
    pub fn error(&mut self, text: &str) {
        if !self.silent {
            let _ = self.send(PAM_ERROR_MSG, text);
        }
    }
}
