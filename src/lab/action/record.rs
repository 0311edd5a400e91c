//! What an action writes down while it runs: its calls, timed from its start ([`Recorder`]),
//! and the observer's record of both ends' kernel states ([`Watch`]), shared with the
//! thread that polls the socket table.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use super::{FAST, SLOW};
use crate::lab::End;
use crate::lab::observe::TupleProbe;
use crate::lab::outcome::CallResult;
use crate::lab::trace::{Call, Step};

/// The calls of an action, timed from its start.
pub(super) struct Recorder {
    pub(super) t0: Instant,
    pub(super) calls: Vec<Call>,
}

impl Recorder {
    pub(super) fn call<T>(
        &mut self,
        end: End,
        call: impl Into<String>,
        f: impl FnOnce() -> io::Result<T>,
    ) -> io::Result<T> {
        let start = Instant::now();
        let r = f();
        self.push(end, call, CallResult::of(&r), start);
        r
    }

    pub(super) fn push(
        &mut self,
        end: End,
        call: impl Into<String>,
        result: CallResult,
        start: Instant,
    ) {
        self.calls.push(Call {
            at: start.saturating_duration_since(self.t0),
            end,
            call: call.into(),
            result,
            took: start.elapsed(),
            detail: None,
        });
    }

    pub(super) fn detail(&mut self, d: impl Into<String>) {
        if let Some(c) = self.calls.last_mut() {
            c.detail = Some(d.into());
        }
    }

    pub(super) fn last_took(&self) -> Duration {
        self.calls.last().map_or(Duration::ZERO, |c| c.took)
    }
}

/// The observer's record, shared with the thread that polls.
pub(super) struct Watch {
    pub(super) t0: Instant,
    pub(super) tuples: [(SocketAddr, SocketAddr); 2],
    pub(super) steps: Mutex<[Vec<Step>; 2]>,
    pub(super) last_change: Mutex<Instant>,
    /// Poll fast until this instant; `None`: fast until told otherwise.
    pub(super) fast_until: Mutex<Option<Instant>>,
    pub(super) stop: AtomicBool,
    pub(super) polls: AtomicU32,
    pub(super) error: Mutex<Option<String>>,
}

impl Watch {
    pub(super) fn new(t0: Instant, closer: (SocketAddr, SocketAddr)) -> Watch {
        Watch {
            t0,
            tuples: [closer, (closer.1, closer.0)],
            steps: Mutex::new([Vec::new(), Vec::new()]),
            last_change: Mutex::new(t0),
            fast_until: Mutex::new(None),
            stop: AtomicBool::new(false),
            polls: AtomicU32::new(0),
            error: Mutex::new(None),
        }
    }

    pub(super) fn observe(&self, mut probe: Box<dyn TupleProbe>) {
        let mut out = Vec::with_capacity(2);
        while !self.stop.load(Ordering::Relaxed) {
            match probe.lookup(&self.tuples, &mut out) {
                Ok(()) => self.record(&out),
                Err(e) => {
                    *self.error.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some(e.to_string());
                }
            }
            self.polls.fetch_add(1, Ordering::Relaxed);
            let fast = self
                .fast_until
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .is_none_or(|t| Instant::now() < t);
            std::thread::sleep(if fast { FAST } else { SLOW });
        }
    }

    pub(super) fn record(&self, found: &[Option<crate::lab::observe::Probed>]) {
        let now = Instant::now();
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changed = false;
        for (i, p) in found.iter().enumerate().take(2) {
            let state = p.map(|p| p.state);
            if steps[i].last().map(|s| s.state) != Some(state) {
                steps[i].push(Step {
                    state,
                    at: now.saturating_duration_since(self.t0),
                    send_queue: p.map_or(0, |p| p.send_queue),
                });
                changed = true;
            }
        }
        if changed {
            *self
                .last_change
                .lock()
                .unwrap_or_else(PoisonError::into_inner) = now;
        }
    }

    pub(super) fn polled(&self) -> bool {
        self.polls.load(Ordering::Relaxed) > 0
    }

    pub(super) fn slow_down_after(&self, d: Duration) {
        *self
            .fast_until
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now() + d);
    }

    pub(super) fn steps(&self) -> [Vec<Step>; 2] {
        self.steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(super) fn quiet_for(&self) -> Duration {
        self.last_change
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }
}

/// Stops the observer however the action ends, so the scope joining it never hangs.
pub(super) struct StopOnDrop<'a>(pub(super) &'a Watch);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
    }
}
