//! The dashboard's side of the close lab: the [`Lab`] it starts when the panel first opens,
//! the operations still running on the lab's workers, and what their results write into the
//! panel. On a unix system only; elsewhere [`LabSession`] is a stand-in whose panel says
//! the lab is unix only, so the event loop reads the same on every platform.
//!
//! [`Lab`]: crate::lab

use crate::tui::app::App;
use crate::tui::lab_panel::LabRequest;

#[cfg(unix)]
pub(super) use unix::LabSession;

#[cfg(not(unix))]
pub(super) use elsewhere::LabSession;

#[cfg(unix)]
mod unix {
    use super::{App, LabRequest};
    use crate::lab::{CloseOptions, Lab, Pending, ScenarioReport, Trace};

    /// A lab operation still running on a lab worker.
    enum PendingOp {
        Trace(Pending<Trace>, String),
        Scenario(Pending<ScenarioReport>, String),
    }

    /// The lab the dashboard drives, and its operations in flight.
    #[derive(Default)]
    pub struct LabSession {
        // Dropped before the lab: their workers answer into a closed channel.
        pending: Vec<PendingOp>,
        lab: Option<Lab>,
    }

    impl LabSession {
        /// The panel has opened: starts the lab the first time, shows its connections.
        pub fn open(&mut self, app: &mut App) {
            if self.lab.is_none() {
                match Lab::new() {
                    Ok(l) => self.lab = Some(l),
                    Err(e) => {
                        if let Some(p) = app.lab.as_mut() {
                            p.status = Some(format!("cannot start the lab: {e}"));
                        }
                        return;
                    }
                }
            }
            self.refresh(app);
        }

        /// Copies the lab's connections and listeners into the panel.
        pub fn refresh(&self, app: &mut App) {
            if let Some(lab) = &self.lab {
                show(app, lab);
            }
        }

        /// Whether an operation is still running (its result is to be collected).
        pub fn busy(&self) -> bool {
            !self.pending.is_empty()
        }

        /// Carries out what the panel asked; true when it reached a running lab (new
        /// sockets may be worth a poll at once).
        pub fn request(&mut self, app: &mut App, req: LabRequest) -> bool {
            let Some(lab) = &self.lab else {
                return false;
            };
            let status = run_request(app, lab, req, &mut self.pending);
            self.refresh(app);
            if let Some(p) = app.lab.as_mut() {
                p.status = Some(status);
                p.busy = self.pending.len();
            }
            true
        }

        /// Takes in the results of finished operations; true when any finished.
        pub fn collect(&mut self, app: &mut App) -> bool {
            let done = collect_results(app, &mut self.pending);
            if done {
                self.refresh(app);
            }
            done
        }
    }

    /// Copies the lab's connections and listeners into the panel.
    fn show(app: &mut App, lab: &Lab) {
        if let Some(p) = app.lab.as_mut() {
            p.set_conns(lab.connections());
            p.listeners = lab.listeners();
        }
    }

    /// Runs one request on `lab`; the status line it leaves.
    fn run_request(
        app: &mut App,
        lab: &Lab,
        req: LabRequest,
        pending: &mut Vec<PendingOp>,
    ) -> String {
        match req {
            LabRequest::Open {
                behaviour,
                count,
                family,
            } => match lab.open(behaviour, count, family) {
                Ok(ids) => {
                    show(app, lab);
                    if let Some(p) = app.lab.as_mut() {
                        if let Some(i) = ids
                            .last()
                            .and_then(|last| p.conns.iter().position(|c| c.id == *last))
                        {
                            p.selected = i;
                        }
                    }
                    format!(
                        "opened {} {behaviour} connections over {}",
                        ids.len(),
                        family.name()
                    )
                }
                Err(e) => format!("open refused: {e}"),
            },
            LabRequest::Close { id, end, action } => {
                match lab.close(id, end, action, CloseOptions::default()) {
                    Ok(p) => {
                        let label = format!("{action} on {id} {}", end.name());
                        pending.push(PendingOp::Trace(p, label.clone()));
                        format!("{label}: running, watching both ends")
                    }
                    Err(e) => format!("close refused: {e}"),
                }
            }
            LabRequest::Scenario {
                scenario,
                count,
                family,
            } => match lab.scenario(scenario, count, family) {
                Ok(p) => {
                    let label = format!("{scenario} with {count} connections");
                    pending.push(PendingOp::Scenario(p, label.clone()));
                    format!("{label}: running")
                }
                Err(e) => format!("scenario refused: {e}"),
            },
            LabRequest::Discard(id) => match lab.discard(id) {
                Ok(()) => format!("{id} discarded: both ends closed"),
                Err(e) => format!("discard refused: {e}"),
            },
        }
    }

    /// Takes in the results of finished lab operations; true when any finished.
    fn collect_results(app: &mut App, pending: &mut Vec<PendingOp>) -> bool {
        let mut done = false;
        let mut i = 0;
        while i < pending.len() {
            let (status, trace) = match &pending[i] {
                PendingOp::Trace(p, label) => match p.try_take() {
                    None => {
                        i += 1;
                        continue;
                    }
                    Some(Ok(t)) => (format!("{label}: done"), Some(t)),
                    Some(Err(e)) => (format!("{label}: {e}"), None),
                },
                PendingOp::Scenario(p, label) => match p.try_take() {
                    None => {
                        i += 1;
                        continue;
                    }
                    Some(Ok(r)) => (
                        format!("{label}: done. {}", crate::report::lab::scenario_next(&r)),
                        None,
                    ),
                    Some(Err(e)) => (format!("{label}: {e}"), None),
                },
            };
            pending.remove(i);
            done = true;
            if let Some(p) = app.lab.as_mut() {
                p.status = Some(status);
                if let Some(t) = trace {
                    p.push_trace(t);
                }
            }
        }
        if let Some(p) = app.lab.as_mut() {
            p.busy = pending.len();
        }
        done
    }
}

#[cfg(not(unix))]
mod elsewhere {
    use super::{App, LabRequest};

    /// No lab on this platform: the panel opens and says so.
    #[derive(Default)]
    pub struct LabSession;

    impl LabSession {
        pub fn open(&mut self, app: &mut App) {
            if let Some(p) = app.lab.as_mut() {
                p.status = Some(format!("cannot start the lab: {}", crate::lab::UNIX_ONLY));
            }
        }

        pub fn refresh(&self, _app: &mut App) {}

        pub fn busy(&self) -> bool {
            false
        }

        pub fn request(&mut self, _app: &mut App, _req: LabRequest) -> bool {
            false
        }

        pub fn collect(&mut self, _app: &mut App) -> bool {
            false
        }
    }
}
