//! What passes between the poll thread and a mode: each poll's [`Update`] (or a failure) as
//! one [`Message`], and [`Control`] requests back.

use std::sync::Arc;
use std::time::Duration;

use crate::lab::LabRecogniser;
use crate::model::action::{CloseHow, Outcome};
use crate::model::alerts::detect_in;
use crate::model::tracker::Sample;
use crate::model::{Alert, Connection, Filter, Owners, Rules, Snapshot, Tracker, Transition};

/// One poll's complete result.
#[derive(Debug, Clone)]
pub struct Update {
    /// 1 for the first poll, then increasing.
    pub seq: u64,
    /// Every socket of the machine, tracked (ages, history, attribution). Shared with the
    /// tracker, which joins the next poll to it.
    pub snapshot: Arc<Snapshot>,
    /// Alerts over the connections of the loop's alert scope (the whole snapshot for the
    /// dashboard and `serve`; `watch`'s filter for `watch`), worst first.
    pub alerts: Vec<Alert>,
    /// What changed since the previous poll.
    pub transitions: Vec<Transition>,
    /// This poll's sample as the tracker recorded it (counts, CLOSE_WAIT per pid).
    pub sample: Sample,
    /// Polls that failed so far.
    pub errors: u64,
}

impl Update {
    /// Runs a fresh snapshot through the tracker, the lab recogniser and the alert rules
    /// (over the whole snapshot), and keeps it in the tracker for the next poll.
    pub fn observe(
        tracker: &mut Tracker,
        snapshot: Snapshot,
        rules: &Rules,
        errors: u64,
        labs: &mut LabRecogniser,
    ) -> Update {
        Update::observe_over(tracker, snapshot, rules, &Filter::default(), errors, labs)
    }

    /// As [`Update::observe`], with the alert rules run only over the connections that
    /// match `scope`. Growth rates still come from the tracker's history (per-pid counts of
    /// the whole machine), as a filter does not change whose CLOSE_WAIT grows.
    pub fn observe_over(
        tracker: &mut Tracker,
        snapshot: Snapshot,
        rules: &Rules,
        scope: &Filter,
        errors: u64,
        labs: &mut LabRecogniser,
    ) -> Update {
        Update::observe_known(tracker, snapshot, rules, scope, errors, labs, &mut |_| None)
    }

    /// As [`Update::observe_over`], with the owners the kernel's events know by cookie for
    /// connections nothing else names (see [`Tracker::observe_known`]).
    pub fn observe_known(
        tracker: &mut Tracker,
        mut snapshot: Snapshot,
        rules: &Rules,
        scope: &Filter,
        errors: u64,
        labs: &mut LabRecogniser,
        known: &mut dyn FnMut(u64) -> Option<Owners>,
    ) -> Update {
        let transitions = tracker.observe_known(&mut snapshot, known);
        // Lab sockets (this process's lab, or another lingertop lab's); after the tracker, so
        // earlier owners count.
        labs.mark(&mut snapshot);
        let snapshot = Arc::new(snapshot);
        tracker.keep(Arc::clone(&snapshot));
        let scoped: Vec<Connection>;
        let over = if scope.is_empty() {
            &snapshot.connections[..]
        } else {
            scoped = snapshot
                .connections
                .iter()
                .filter(|c| scope.matches_in(c, &snapshot.netns))
                .cloned()
                .collect();
            &scoped[..]
        };
        let alerts = detect_in(
            over,
            &snapshot.netns,
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
    /// A [`Control::Close`] was carried out and verified.
    Closed(CloseDone),
}

/// Requests to the poll loop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    SetInterval(Duration),
    PollNow,
    /// Close these connections (the dashboard's close keys, confirmed): the poll thread
    /// owns the collector and its netlink socket in each namespace, so the close, its
    /// verification and the record go there, then a poll at once.
    Close(Box<CloseRequest>),
    Stop,
}

/// Connections to close from outside, as they were listed: the rails were applied by
/// whoever asks (the poll thread acts on exactly these, by cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    pub how: CloseHow,
    pub connections: Vec<Connection>,
    /// How each connection is named in the record and the result (addresses, state,
    /// holders, namespace).
    pub labels: Vec<String>,
    /// How long to read the sockets again for them to reach their end.
    pub wait: Duration,
}

/// The verified result of a [`CloseRequest`]: one outcome per connection, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseDone {
    pub how: CloseHow,
    pub results: Vec<(String, Outcome)>,
}
