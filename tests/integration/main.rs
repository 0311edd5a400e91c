//! Every integration test but the ones in a real terminal, as one test binary: one link of
//! the crate instead of one per file. Each file is a module, as it was a binary: real
//! loopback sockets, the real binary, network namespaces the tests make (root), `ss` as the
//! oracle. Tests that load the machine (tens of thousands of sockets) take
//! `common::heavy()` so they run one at a time, as they did when each was a binary.

#[path = "../common/mod.rs"]
mod common;

mod ages;
mod agree_with_ss;
mod architecture;
mod backends;
mod capabilities;
mod close;
mod close_rules;
mod closes_events;
mod closes_panel;
mod docs;
mod errors;
mod established_every;
mod growth;
mod hostile_names;
mod invalid_inputs;
mod lab;
mod manual;
mod modes;
mod netns;
mod notify;
mod owners_live;
mod packaging;
mod real_software;
mod record;
mod resolve;
mod serve;
mod serve_cardinality;
mod serve_limits;
mod snapshot;
mod time_wait_overflow;
mod watch;
