//! The operating system under the engine, and nothing of tessera's decisions: the calls std
//! lacks ([`sys`]: NSS, ids, signals, inotify, socket activation, through nix), files checked
//! on their open descriptor ([`fsperm`]), a file in a user's home opened as that user would
//! ([`userfile`]), files watched for changes ([`watch`]), and the deadlines and pauses of real
//! time ([`io_time`]).

pub mod fsperm;
pub mod io_time;
pub mod sys;
pub mod userfile;
pub mod watch;
