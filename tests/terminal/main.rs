//! The tests that drive the real binary in a real terminal (tmux): a binary of their own, so
//! they do not run beside the heavy socket tests of `tests/integration`, and their screen
//! deadlines mean what they say.

#[path = "../common/mod.rs"]
mod common;

mod close_keys;
mod dashboard_tmux;
mod replay;
mod reset_reasons;
