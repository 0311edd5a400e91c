//! The live poll loop shared by the dashboard, `watch` and `serve`: one collector thread
//! polls at the configured interval, tracks connections, runs the alert rules over the whole
//! machine, and sends each result as one message. Consumers never poll on their own, so a
//! slow render or a scrape never triggers a poll and never blocks one.

use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::collector::Collector;
use crate::config::Config;
use crate::lab::LabRecogniser;
use crate::model::alerts::detect;
use crate::model::tracker::Sample;
use crate::model::{Alert, Rules, Snapshot, Tracker, Transition};

/// One poll's complete result.
#[derive(Debug, Clone)]
pub struct Update {
    /// 1 for the first poll, then increasing.
    pub seq: u64,
    /// Every socket of the machine, tracked (ages, history, attribution). Shared with the
    /// tracker, which joins the next poll to it.
    pub snapshot: Arc<Snapshot>,
    /// Alerts over the whole snapshot, worst first.
    pub alerts: Vec<Alert>,
    /// What changed since the previous poll.
    pub transitions: Vec<Transition>,
    /// This poll's sample as the tracker recorded it (counts, CLOSE_WAIT per pid).
    pub sample: Sample,
    /// Polls that failed so far.
    pub errors: u64,
}

impl Update {
    /// Runs a fresh snapshot through the tracker, the lab recogniser and the alert rules,
    /// and keeps it in the tracker for the next poll.
    pub fn observe(
        tracker: &mut Tracker,
        mut snapshot: Snapshot,
        rules: &Rules,
        errors: u64,
        labs: &mut LabRecogniser,
    ) -> Update {
        let transitions = tracker.observe(&mut snapshot);
        // Lab sockets (this process's lab, or another lingertop lab's); after the tracker, so
        // earlier owners count.
        labs.mark(&mut snapshot, None);
        let snapshot = Arc::new(snapshot);
        tracker.keep(Arc::clone(&snapshot));
        let alerts = detect(
            &snapshot.connections,
            snapshot.taken_at,
            snapshot.ephemeral_ports,
            tracker.history(),
            rules,
        );
        let sample = tracker
            .history()
            .back()
            .cloned()
            .expect("observe records a sample");
        Update {
            seq: tracker.polls(),
            snapshot,
            alerts,
            transitions,
            sample,
            errors,
        }
    }
}

/// What the poll loop sends.
#[derive(Debug, Clone)]
pub enum Message {
    Update(Arc<Update>),
    /// A poll failed; the loop keeps going and tries again at the next interval.
    PollFailed(String),
}

/// Requests to the poll loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    SetInterval(Duration),
    PollNow,
    Stop,
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
    out: mpsc::Sender<Message>,
) -> std::io::Result<LiveHandle> {
    tune_allocator();
    let (tx, rx) = std_mpsc::channel();
    let rules = cfg.rules.clone();
    let mut interval = cfg.interval;
    let mut tracker = Tracker::new(cfg.history);
    let thread = std::thread::Builder::new()
        .name("lingertop-poll".into())
        .spawn(move || {
            let mut errors = 0u64;
            let mut labs = LabRecogniser::new();
            loop {
                let started = Instant::now();
                let msg = match collector.poll() {
                    Ok(snapshot) => Message::Update(Arc::new(Update::observe(
                        &mut tracker,
                        snapshot,
                        &rules,
                        errors,
                        &mut labs,
                    ))),
                    Err(e) => {
                        errors += 1;
                        Message::PollFailed(e.to_string())
                    }
                };
                // Hand the result over; while the consumer is busy, keep answering controls
                // so a stop request is never stuck behind a full channel.
                let mut pending = msg;
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
                                _ => {}
                            }
                        }
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
                        Ok(Control::PollNow) => break,
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
