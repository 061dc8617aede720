//! What tests and benchmarks of the engine drive it with: a clock that stands still until
//! told (or until the engine waits on it), and a conversation that follows a script. One of
//! each for the engine's unit tests, its benchmarks and the integration tests of the
//! workspace (`tests/`), which use the same types.
//!
//! A script that goes wrong fails the test that runs it: here a panic is the point.
#![allow(clippy::panic)]

use super::{Clock, Conversation};
use crate::crypto::{secret, Secret};
use crate::error::Error;
use std::cell::Cell;
use std::collections::VecDeque;
use std::time::Duration;

/// A clock at a fixed time. Waiting on it ([`Clock::sleep`]) moves it on at once, so a
/// push timeout of a minute is reached without a minute passing.
#[derive(Debug)]
pub struct FixedClock(Cell<u64>);

impl FixedClock {
    pub fn at(now: u64) -> FixedClock {
        FixedClock(Cell::new(now))
    }

    pub fn advance(&self, seconds: u64) {
        self.0.set(self.0.get() + seconds);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> u64 {
        self.0.get()
    }

    fn sleep(&self, d: Duration) {
        // Whole seconds, rounded up: the engine's deadlines are in seconds.
        self.advance(d.as_secs() + u64::from(d.subsec_nanos() > 0));
    }
}

/// A conversation that expects prompts in order and answers them; `info` and `error` lines
/// are kept. Dropping it with prompts left unasked fails the test: the exact prompt sequence
/// is part of what is tested. A prompt beyond the script fails the test too.
pub struct ScriptedConv {
    script: VecDeque<(String, Option<String>)>,
    /// Steps left unasked are fine (a login that may end before them).
    unasked_ok: bool,
    pub prompts: Vec<String>,
    pub infos: Vec<String>,
    pub errors: Vec<String>,
}

impl ScriptedConv {
    /// `steps`: (a text the prompt must contain, the answer; `None` answers NULL).
    pub fn new(steps: &[(&str, Option<&str>)]) -> Self {
        ScriptedConv {
            script: steps
                .iter()
                .map(|(p, a)| (p.to_string(), a.map(str::to_string)))
                .collect(),
            unasked_ok: false,
            prompts: Vec::new(),
            infos: Vec::new(),
            errors: Vec::new(),
        }
    }

    /// Every step answered (no NULL).
    pub fn answers(steps: &[(&str, &str)]) -> Self {
        let v: Vec<(&str, Option<&str>)> = steps.iter().map(|(p, a)| (*p, Some(*a))).collect();
        Self::new(&v)
    }

    /// Steps left unasked when it is dropped do not fail the test.
    pub fn unasked_ok(mut self) -> Self {
        self.unasked_ok = true;
        self
    }

    /// The answers in order, whatever the prompts say.
    pub fn passes(answers: &[&str]) -> Self {
        let v: Vec<(&str, Option<&str>)> = answers.iter().map(|a| ("", Some(*a))).collect();
        Self::new(&v)
    }
}

impl Conversation for ScriptedConv {
    fn prompt(&mut self, text: &str, _echo: bool) -> Result<Option<Secret>, Error> {
        self.prompts.push(text.to_string());
        let Some((want, answer)) = self.script.pop_front() else {
            panic!(
                "unexpected prompt {text:?} (prompts so far: {:?})",
                self.prompts
            );
        };
        assert!(
            text.contains(&want),
            "prompt {text:?} does not contain {want:?}"
        );
        Ok(answer.map(|a| secret(a.as_bytes())))
    }

    fn info(&mut self, text: &str) -> Result<(), Error> {
        self.infos.push(text.to_string());
        Ok(())
    }

    fn error(&mut self, text: &str) -> Result<(), Error> {
        self.errors.push(text.to_string());
        Ok(())
    }
}

impl Drop for ScriptedConv {
    fn drop(&mut self) {
        if !std::thread::panicking() && !self.unasked_ok {
            assert!(
                self.script.is_empty(),
                "prompts never asked: {:?} (asked: {:?})",
                self.script,
                self.prompts
            );
        }
    }
}
