//! The live poll loop shared by the dashboard, `watch` and `serve`: one collector thread
//! polls at the configured interval, tracks connections, runs the alert rules over the
//! mode's [`Scope`], and sends each result as one message ([`message`]). Consumers never
//! poll on their own, so a slow render or a scrape never triggers a poll and never blocks
//! one.

pub mod message;

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::collector::{Collector, ReadOptions};
use crate::config::{Config, EstablishedEvery};
use crate::events::owners::EventOwners;
use crate::lab::LabRecogniser;
use crate::model::{Filter, TcpState, Tracker};

pub use message::{CloseDone, CloseRequest, Control, Message, Update};

/// What a mode wants the loop's results to be about, beyond the config.
#[derive(Default)]
pub struct Scope {
    /// The alert rules run over the connections matching this (empty: every connection).
    pub alerts_over: Filter,
    /// Marks lab sockets, also those of a lab in another lingertop process when it was
    /// made with [`LabRecogniser::new`] and a command line test.
    pub labs: LabRecogniser,
    /// The owners the kernel's events saw, where the mode loaded them: each poll waits for
    /// them to catch up with its dump and names by them the connections nothing else names.
    pub owners: Option<EventOwners>,
}

/// How long a poll waits at most for the kernel's events to be read up to its dump: the
/// reader is woken at once and drains in well under a millisecond unless a storm fills
/// the ring.
const CATCH_UP: Duration = Duration::from_millis(200);

/// Which states the next poll reads: ESTABLISHED only every `every` polls.
#[derive(Debug)]
struct ReadPlan {
    every: EstablishedEvery,
    /// Whether asking for fewer states is cheaper (else every poll reads everything).
    selective: bool,
    /// Polls since ESTABLISHED was last read; `None` before the first read, or when the
    /// next poll must read everything (the user asked for a fresh poll).
    since_full: Option<u32>,
    /// ESTABLISHED sockets the last full read found.
    established: usize,
}

impl ReadPlan {
    fn next_is_full(&self) -> bool {
        !self.selective
            || self
                .since_full
                .is_none_or(|n| n + 1 >= self.every.polls(self.established))
    }

    /// Sets the collector up for the next poll; returns whether it reads every state.
    fn prepare(&self, collector: &mut Collector) -> bool {
        let full = self.next_is_full();
        if self.selective {
            collector.set_options(&ReadOptions {
                states: (!full).then(|| {
                    TcpState::ALL
                        .into_iter()
                        .filter(|s| *s != TcpState::Established)
                        .collect()
                }),
                exact_owners: false,
            });
        }
        full
    }

    fn done(&mut self, full: bool, update: &Update) {
        if full {
            self.since_full = Some(0);
            self.established = update.sample.counts.get(TcpState::Established) as usize;
        } else {
            self.since_full = self.since_full.map(|n| n + 1);
        }
    }
}

/// The running poll loop. Dropping it stops the loop and waits for the thread.
pub struct LiveHandle {
    control: std_mpsc::Sender<Control>,
    thread: Option<JoinHandle<()>>,
}

impl LiveHandle {
    /// Sends a request; a loop that already ended ignores it.
    pub fn send(&self, c: Control) {
        let _ = self.control.send(c);
    }
}

impl Drop for LiveHandle {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Makes glibc's malloc hand every large block (a poll's connection vector, the collector's
/// buffers, the tracker's table, the dashboard's rows) straight back to the system when it
/// is freed. By default glibc raises its mmap threshold to the size of the largest block
/// freed so far (up to 32 MiB), after which blocks of a few MiB to 30 MiB come from the heap
/// arenas, where the poll thread's and the consumer's freed blocks linger and fragment: at
/// 100k sockets that kept 15-90 MiB more resident than the live data. A fixed threshold
/// (the default's starting value) turns that adjustment off. Process-wide; called by
/// [`spawn`], as only the live modes hold large data across polls.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a malloc parameter; it is thread-safe and has no
    // preconditions. A refusal (0) leaves glibc's default, which is only slower to give back.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Starts the poll loop on its own thread. It polls at once, then every `cfg.interval`
/// (changed by [`Control::SetInterval`]) until stopped or until `out` is closed.
pub fn spawn(
    mut collector: Collector,
    cfg: &Config,
    scope: Scope,
    out: mpsc::Sender<Message>,
) -> std::io::Result<LiveHandle> {
    let Scope {
        alerts_over,
        mut labs,
        owners,
    } = scope;
    tune_allocator();
    let (tx, rx) = std_mpsc::channel();
    let rules = cfg.rules.clone();
    let mut interval = cfg.interval;
    let mut tracker = Tracker::new(cfg.history);
    let mut plan = ReadPlan {
        every: cfg.established_every,
        selective: collector.selects_states(),
        since_full: None,
        established: 0,
    };
    let thread = std::thread::Builder::new()
        .name("lingertop-poll".into())
        .spawn(move || {
            let mut errors = 0u64;
            loop {
                let started = Instant::now();
                let full = plan.prepare(&mut collector);
                let msg = match collector.poll() {
                    Ok(snapshot) => {
                        let observe = |known: &mut dyn FnMut(u64) -> _| {
                            Update::observe_known(
                                &mut tracker,
                                snapshot,
                                &rules,
                                &alerts_over,
                                errors,
                                &mut labs,
                                known,
                            )
                        };
                        let update = match &owners {
                            Some(o) => {
                                o.catch_up(CATCH_UP);
                                o.with_lookup(observe)
                            }
                            None => observe(&mut |_| None),
                        };
                        plan.done(full, &update);
                        Message::Update(Arc::new(update))
                    }
                    Err(e) => {
                        errors += 1;
                        Message::PollFailed(e.to_string())
                    }
                };
                // Hand the result over; while the consumer is busy, keep answering controls
                // so a stop request is never stuck behind a full channel.
                let mut pending = msg;
                let mut done: Vec<Message> = Vec::new();
                loop {
                    match out.try_send(pending) {
                        Ok(()) => break,
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                        Err(mpsc::error::TrySendError::Full(m)) => {
                            pending = m;
                            match rx.recv_timeout(Duration::from_millis(10)) {
                                Ok(Control::Stop)
                                | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                                    return;
                                }
                                Ok(Control::SetInterval(d)) => interval = d,
                                Ok(Control::PollNow) => plan.since_full = None,
                                Ok(Control::Close(req)) => {
                                    done.push(Message::Closed(close(&mut collector, &req)));
                                    plan.since_full = None;
                                }
                                Err(std_mpsc::RecvTimeoutError::Timeout) => {}
                            }
                        }
                    }
                }
                // The closes carried out meanwhile, after the poll they came behind.
                for m in done {
                    if out.blocking_send(m).is_err() {
                        return;
                    }
                }
                // Wait for the next poll, answering control requests meanwhile.
                let mut deadline = started + interval;
                loop {
                    let wait = deadline.saturating_duration_since(Instant::now());
                    match rx.recv_timeout(wait) {
                        Ok(Control::SetInterval(d)) => {
                            interval = d;
                            deadline = started + interval;
                        }
                        Ok(Control::PollNow) => {
                            // Asked for: a complete one.
                            plan.since_full = None;
                            break;
                        }
                        Ok(Control::Close(req)) => {
                            let m = Message::Closed(close(&mut collector, &req));
                            if out.blocking_send(m).is_err() {
                                return;
                            }
                            // The table without what was closed, at once.
                            plan.since_full = None;
                            break;
                        }
                        Ok(Control::Stop) | Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                            return;
                        }
                        Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                    }
                }
            }
        })?;
    Ok(LiveHandle {
        control: tx,
        thread: Some(thread),
    })
}

/// Carries out a close the dashboard asked for, as `lingertop close --yes` would: each
/// connection closed `how` by cookie (a graceful close through a descriptor of its own
/// holder, an abort inside its own namespace), then read again until it reached its end or
/// `wait` passed. Every act goes to the system log (stderr is the dashboard's screen).
#[cfg(target_os = "linux")]
fn close(collector: &mut Collector, req: &CloseRequest) -> CloseDone {
    use crate::collector::close::Target;
    use crate::model::action::Outcome;
    let mut targets: Vec<Target> = req.connections.iter().map(Target::of).collect();
    Target::note_descriptors(&mut targets);
    // The kernel's events name the task that closes by its thread's name, and the poll
    // thread is `lingertop-poll`: the act runs on a thread named as the process, so that
    // `watch --events` and `serve` take it as lingertop's action (`events/join.rs`), never
    // as the application's own close or reset.
    let how = req.how;
    let results = std::thread::scope(|s| {
        let acting = std::thread::Builder::new()
            .name(crate::model::action::LINGERTOP.into())
            .spawn_scoped(s, || collector.close(&targets, how));
        match acting {
            Ok(t) => t.join().ok(),
            Err(_) => None,
        }
    });
    let results = results.unwrap_or_else(|| {
        vec![
            Err(crate::model::action::Refusal::Failed {
                detail: "cannot start the thread that closes".into(),
            });
            targets.len()
        ]
    });
    let who = crate::syslog::who();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; targets.len()];
    let mut acted = vec![false; targets.len()];
    for (i, r) in results.into_iter().enumerate() {
        let what = format!("{} close of {} (dashboard)", req.how, label(req, i));
        match r {
            Ok(()) => {
                acted[i] = true;
                crate::syslog::notice(&format!("{who}: {what}: sent"));
            }
            Err(refusal) => {
                crate::syslog::notice(&format!("{who}: {what}: refused: {refusal}"));
                outcomes[i] = Some(Outcome::Refused { refusal });
            }
        }
    }
    match collector.verify(&targets, &acted, req.how, req.wait) {
        Ok(verified) => {
            for (i, v) in verified.into_iter().enumerate() {
                if acted[i] {
                    outcomes[i] = Some(v.unwrap_or(Outcome::Closed));
                }
            }
        }
        Err(e) => {
            for (i, o) in outcomes.iter_mut().enumerate() {
                if acted[i] {
                    *o = Some(Outcome::Refused {
                        refusal: crate::model::action::Refusal::Failed {
                            detail: format!(
                                "sent, but cannot read the socket table again to verify: {e}"
                            ),
                        },
                    });
                }
            }
        }
    }
    let results: Vec<(String, Outcome)> = outcomes
        .into_iter()
        .enumerate()
        .map(|(i, o)| (label(req, i), o.unwrap_or(Outcome::Closed)))
        .collect();
    for ((what, o), _) in results.iter().zip(&acted).filter(|(_, a)| **a) {
        crate::syslog::notice(&format!(
            "{who}: {} close of {what} (dashboard): {o}",
            req.how
        ));
    }
    CloseDone {
        how: req.how,
        results,
    }
}

/// Elsewhere there are no socket cookies to close by.
#[cfg(not(target_os = "linux"))]
fn close(_collector: &mut Collector, req: &CloseRequest) -> CloseDone {
    use crate::model::action::{Outcome, Refusal};
    CloseDone {
        how: req.how,
        results: (0..req.connections.len())
            .map(|i| {
                (
                    label(req, i),
                    Outcome::Refused {
                        refusal: Refusal::NoCookie,
                    },
                )
            })
            .collect(),
    }
}

fn label(req: &CloseRequest, i: usize) -> String {
    req.labels.get(i).cloned().unwrap_or_else(|| {
        let c = &req.connections[i];
        format!("{} -> {}", c.local(), c.remote())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(every: EstablishedEvery, established: usize, polls: usize) -> String {
        let mut plan = ReadPlan {
            every,
            selective: true,
            since_full: None,
            established: 0,
        };
        (0..polls)
            .map(|_| {
                let full = plan.next_is_full();
                if full {
                    plan.since_full = Some(0);
                    plan.established = established;
                } else {
                    plan.since_full = plan.since_full.map(|n| n + 1);
                }
                if full { 'F' } else { '.' }
            })
            .collect()
    }

    #[test]
    fn auto_reads_established_every_poll_on_a_small_table_and_less_often_on_a_big_one() {
        assert_eq!(schedule(EstablishedEvery::Auto, 5_000, 6), "FFFFFF");
        assert_eq!(schedule(EstablishedEvery::Auto, 20_000, 4), "FFFF");
        assert_eq!(schedule(EstablishedEvery::Auto, 100_000, 11), "F....F....F");
        assert_eq!(
            schedule(EstablishedEvery::Auto, 10_000_000, 12),
            "F.........F."
        );
        assert_eq!(schedule(EstablishedEvery::Polls(3), 0, 7), "F..F..F");
        assert_eq!(schedule(EstablishedEvery::Polls(1), 100_000, 3), "FFF");
    }

    #[test]
    fn a_backend_that_cannot_select_states_reads_everything() {
        let plan = ReadPlan {
            every: EstablishedEvery::Polls(5),
            selective: false,
            since_full: Some(0),
            established: 0,
        };
        assert!(plan.next_is_full());
    }
}
