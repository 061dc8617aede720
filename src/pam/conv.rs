//! The PAM conversation as an [`engine::Conversation`]: one message per call, NULL answers and
//! error returns become values, answers are copied into zeroizing buffers.

use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO};
use pam::conv::Conv;
use tessera_engine::crypto::Secret;
use tessera_engine::engine::Conversation;
use tessera_engine::error::Error;

pub struct PamConversation<'a> {
    conv: Option<Conv<'a>>,
    /// PAM_SILENT: informational messages are not shown.
    silent: bool,
}

impl<'a> PamConversation<'a> {
    pub fn new(conv: Option<Conv<'a>>, silent: bool) -> Self {
        PamConversation { conv, silent }
    }

    fn send(&mut self, style: i32, text: &str) -> Result<Option<Secret>, Error> {
        let conv = self
            .conv
            .as_ref()
            .ok_or_else(|| Error::Conversation("the application set no conversation".into()))?;
        match conv.send(style, text) {
            Ok(Some(answer)) => Ok(Some(tessera_engine::crypto::secret(answer.as_bytes()))),
            Ok(None) => Ok(None),
            Err(code) => Err(Error::Conversation(format!(
                "conversation failed ({code:?})"
            ))),
        }
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Option<Secret>, Error> {
        self.send(
            if echo {
                PAM_PROMPT_ECHO_ON
            } else {
                PAM_PROMPT_ECHO_OFF
            },
            text,
        )
    }

    fn info(&mut self, text: &str) -> Result<(), Error> {
        if !self.silent {
            self.send(PAM_TEXT_INFO, text)?;
        }
        Ok(())
    }

    fn error(&mut self, text: &str) -> Result<(), Error> {
        if !self.silent {
            self.send(PAM_ERROR_MSG, text)?;
        }
        Ok(())
    }
}
