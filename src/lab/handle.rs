//! The running lab: the [`Lab`] handle, which owns the engine thread and the workers, and
//! the [`Pending`] result of work on a worker. Unix only, like the engine and the actions it
//! drives (descriptors, `ioctl`, `close`, `mio`'s unix sources).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::engine::{self, Inner};
use super::{
    Behaviour, CloseMode, CloseOptions, ConnId, ConnView, End, EndStatus, Family, LabError,
    MAX_LINGER, MAX_OPEN, Scenario, ScenarioReport, Trace, action, bulk, scenario,
};

/// The result of work running on a lab worker thread; poll it with [`Pending::try_take`]
/// from a render loop, or wait for it.
pub struct Pending<T> {
    rx: mpsc::Receiver<Result<T, LabError>>,
}

impl<T> Pending<T> {
    /// The result if the work is done, else `None` at once. Gives the result only once.
    pub fn try_take(&self) -> Option<Result<T, LabError>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(mpsc::TryRecvError::Empty) => None,
            // The worker ended without answering: only when the lab is being dropped.
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(LabError::Stopped)),
        }
    }

    /// Waits for the result.
    pub fn wait(self) -> Result<T, LabError> {
        self.rx.recv().unwrap_or(Err(LabError::Stopped))
    }
}

/// The lab: its listeners, its connections, the engine thread running the server ends'
/// behaviours, and the workers running actions. Dropping it closes everything it holds and
/// joins every thread (the kernel may keep TIME_WAIT entries, as it does for any close).
pub struct Lab {
    inner: Arc<Inner>,
    engine: Option<JoinHandle<()>>,
    workers: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl Lab {
    /// Starts a lab: listeners on 127.0.0.1 and [::1] (ephemeral ports; IPv6 only where the
    /// host has it) and the engine thread.
    pub fn new() -> Result<Lab, LabError> {
        let (inner, engine) = engine::start()?;
        Ok(Lab {
            inner,
            engine: Some(engine),
            workers: std::sync::Mutex::new(Vec::new()),
        })
    }

    /// The listening addresses: IPv4 first, then IPv6 when available.
    pub fn listeners(&self) -> Vec<SocketAddr> {
        self.inner.listener_addrs()
    }

    /// The listener `family`'s connections go to.
    pub fn listener(&self, family: Family) -> Result<SocketAddr, LabError> {
        self.inner.listener_addr(family)
    }

    /// Opens `count` connections (1 to [`MAX_OPEN`]) whose server ends behave as
    /// `behaviour`. Returns once all are established.
    pub fn open(
        &self,
        behaviour: Behaviour,
        count: usize,
        family: Family,
    ) -> Result<Vec<ConnId>, LabError> {
        if count == 0 || count > MAX_OPEN {
            return Err(LabError::BadCount {
                asked: count,
                max: MAX_OPEN,
            });
        }
        self.inner.open(behaviour, count, family)
    }

    /// Every connection the lab opened and still remembers (closed ones included, for a
    /// few minutes), oldest first.
    pub fn connections(&self) -> Vec<ConnView> {
        self.inner.views()
    }

    /// One connection, or `None` for a handle this lab did not make.
    pub fn connection(&self, id: ConnId) -> Option<ConnView> {
        self.inner.view(id)
    }

    /// The lab connection and end whose socket has this (local, remote) 4-tuple, or a
    /// refusal for any socket the lab did not create.
    pub fn find(&self, local: SocketAddr, remote: SocketAddr) -> Result<(ConnId, End), LabError> {
        self.inner
            .find(local, remote)
            .ok_or(LabError::NotALabSocket { local, remote })
    }

    /// Whether the socket (local, remote) is one of the lab's: a listener or an end of a lab
    /// connection (also after its close, while the kernel may still list it).
    pub fn is_lab_tuple(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        self.inner.is_lab_tuple(local, remote)
    }

    /// Closes `end` of connection `id` with `action` on a worker thread and returns at once;
    /// the [`Trace`] arrives through the [`Pending`]. Refuses handles this lab did not make,
    /// ends already closed, and ends with an action still running.
    pub fn close(
        &self,
        id: ConnId,
        end: End,
        action: CloseMode,
        opts: CloseOptions,
    ) -> Result<Pending<Trace>, LabError> {
        if action.lingers() && !(Duration::from_secs(1)..=MAX_LINGER).contains(&opts.linger) {
            return Err(LabError::BadLinger(opts.linger));
        }
        let (socket, _) = self.inner.take_end(id, end, EndStatus::Acting(action))?;
        let inner = Arc::clone(&self.inner);
        self.spawn("lingertop-lab-action", move || {
            action::run(&inner, id, end, action, opts, socket)
        })
    }

    /// Closes what the lab holds of a connection, both ends, at once and without a trace
    /// (to clear away, say, a scenario's CLOSE_WAIT pile). An end with an action running is
    /// left to its action. Refuses handles this lab did not make.
    pub fn discard(&self, id: ConnId) -> Result<(), LabError> {
        self.inner.discard(id)
    }

    /// Runs a bulk scenario of `count` connections on a worker thread (see [`Scenario`]).
    pub fn scenario(
        &self,
        scenario: Scenario,
        count: usize,
        family: Family,
    ) -> Result<Pending<ScenarioReport>, LabError> {
        if count == 0 || count > scenario::MAX_COUNT {
            return Err(LabError::BadCount {
                asked: count,
                max: scenario::MAX_COUNT,
            });
        }
        self.inner.listener_addr(family)?;
        let inner = Arc::clone(&self.inner);
        self.spawn("lingertop-lab-scenario", move || {
            bulk::run(&inner, scenario, count, family)
        })
    }

    fn spawn<T: Send + 'static>(
        &self,
        name: &str,
        work: impl FnOnce() -> Result<T, LabError> + Send + 'static,
    ) -> Result<Pending<T>, LabError> {
        let (tx, rx) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let _ = tx.send(work());
            })
            .map_err(|e| LabError::io("cannot start a lab worker thread", e))?;
        let mut workers = self
            .workers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Reap the finished ones so a long session does not pile up handles.
        let (done, running): (Vec<_>, Vec<_>) = workers.drain(..).partition(|h| h.is_finished());
        for h in done {
            let _ = h.join();
        }
        *workers = running;
        workers.push(handle);
        Ok(Pending { rx })
    }
}

// The dashboard keeps the lab in its state and drives it from its event loop.
const _: fn() = || {
    fn shareable<T: Send + Sync>() {}
    shareable::<Lab>();
};

impl Drop for Lab {
    fn drop(&mut self) {
        // Closing every socket first also ends a linger close in flight: its peer's close
        // resets the connection, which wakes the blocked close() at once.
        self.inner.stop();
        if let Some(engine) = self.engine.take() {
            let _ = engine.join();
        }
        let workers = std::mem::take(
            &mut *self
                .workers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for w in workers {
            let _ = w.join();
        }
        // Workers may have handed sockets back while stopping.
        self.inner.close_all();
    }
}
