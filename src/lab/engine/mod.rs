//! The lab's sockets and the engine thread that runs the server ends' behaviours.
//!
//! Every socket the lab creates lives in one table behind a mutex (its operations in
//! `table.rs`, its rows in `conn.rs`); nothing outside this module holds one except an
//! action's worker, which takes an end out of the table for the length of the action and
//! hands it back (or closes it). The engine thread waits on the
//! readable server ends with `mio` (epoll on Linux) and reads them as their behaviour says;
//! it never blocks on a socket. An end is deregistered from the engine before any other
//! thread takes it, so a closed descriptor number is never left registered.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use rustc_hash::FxHashMap;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

mod conn;
mod table;

use super::outcome::ReadOutcome;
use super::{Behaviour, ConnId, End, EndStatus, Family, LabError};
pub(super) use conn::{Conn, EndSlot, ReadEvent};

const WAKER: Token = Token(usize::MAX);
/// What a `send-then-idle` server end sends when accepted.
pub(super) const SEND_THEN_IDLE_BYTES: usize = 4096;
/// Read events remembered per end (data bursts are merged into one).
const READ_LOG: usize = 32;
/// Closed connections are forgotten this long after both ends closed: past Linux's 60 s
/// TIME_WAIT, so the marking of lab sockets outlives the kernel's entries.
const FORGET_AFTER: Duration = Duration::from_secs(180);

/// Handles are unique within the process, across labs.
static NEXT_ID: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
pub(super) struct State {
    pub conns: BTreeMap<ConnId, Conn>,
    by_tuple: FxHashMap<(SocketAddr, SocketAddr), (ConnId, End)>,
}

struct Listener {
    addr: SocketAddr,
    /// Held while connecting and accepting, so two callers never take each other's
    /// accepted sockets.
    socket: Mutex<Socket>,
}

pub(super) struct Inner {
    state: Mutex<State>,
    registry: Registry,
    waker: Waker,
    stopping: AtomicBool,
    v4: Listener,
    v6: Result<Listener, String>,
}

/// Binds the listeners and starts the engine thread.
pub(super) fn start() -> Result<(Arc<Inner>, JoinHandle<()>), LabError> {
    let v4 = listen(IpAddr::V4(Ipv4Addr::LOCALHOST))
        .map_err(|e| LabError::io("cannot listen on 127.0.0.1", e))?;
    let v6 = listen(IpAddr::V6(Ipv6Addr::LOCALHOST)).map_err(|e| e.to_string());
    let poll = Poll::new().map_err(|e| LabError::io("cannot create the lab's poller", e))?;
    let registry = poll
        .registry()
        .try_clone()
        .map_err(|e| LabError::io("cannot create the lab's poller", e))?;
    let waker = Waker::new(poll.registry(), WAKER)
        .map_err(|e| LabError::io("cannot create the lab's poller", e))?;
    let inner = Arc::new(Inner {
        state: Mutex::new(State::default()),
        registry,
        waker,
        stopping: AtomicBool::new(false),
        v4,
        v6,
    });
    let engine_inner = Arc::clone(&inner);
    let engine = std::thread::Builder::new()
        .name("lingertop-lab-engine".into())
        .spawn(move || engine_inner.run_engine(poll))
        .map_err(|e| LabError::io("cannot start the lab's engine thread", e))?;
    Ok((inner, engine))
}

fn listen(ip: IpAddr) -> io::Result<Listener> {
    let addr = SocketAddr::new(ip, 0);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    if ip.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    // accept() waits at most this long for the connection just made (see `pair`).
    socket.set_read_timeout(Some(Duration::from_secs(2)))?;
    let addr = local_of(&socket)?;
    Ok(Listener {
        addr,
        socket: Mutex::new(socket),
    })
}

fn local_of(s: &Socket) -> io::Result<SocketAddr> {
    s.local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("not an internet socket"))
}

fn token(id: ConnId) -> Token {
    Token(id.0 as usize)
}

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, State> {
        // A worker that panicked mid-update leaves plain data behind; keep using it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    pub fn listener_addrs(&self) -> Vec<SocketAddr> {
        let mut out = vec![self.v4.addr];
        if let Ok(l) = &self.v6 {
            out.push(l.addr);
        }
        out
    }

    fn listener(&self, family: Family) -> Result<&Listener, LabError> {
        match family {
            Family::Ipv4 => Ok(&self.v4),
            Family::Ipv6 => self.v6.as_ref().map_err(|e| LabError::NoIpv6(e.clone())),
        }
    }

    pub fn listener_addr(&self, family: Family) -> Result<SocketAddr, LabError> {
        self.listener(family).map(|l| l.addr)
    }

    /// Opens `count` connections; see [`super::Lab::open`].
    pub fn open(
        &self,
        behaviour: Behaviour,
        count: usize,
        family: Family,
    ) -> Result<Vec<ConnId>, LabError> {
        let listener = self.listener(family)?;
        self.forget_old();
        let mut ids = Vec::with_capacity(count);
        let accept = listener
            .socket
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for _ in 0..count {
            if self.stopping() {
                return Err(LabError::Stopped);
            }
            let (client, server) = pair(&accept, listener.addr)?;
            ids.push(self.adopt(client, server, behaviour, family)?);
        }
        Ok(ids)
    }

    fn adopt(
        &self,
        client: Socket,
        server: Socket,
        behaviour: Behaviour,
        family: Family,
    ) -> Result<ConnId, LabError> {
        let client_local = local_of(&client).map_err(|e| LabError::io("lab client", e))?;
        let server_local = local_of(&server).map_err(|e| LabError::io("lab server", e))?;
        server
            .set_nonblocking(true)
            .map_err(|e| LabError::io("lab server", e))?;
        let id = ConnId(NEXT_ID.fetch_add(1, Ordering::Relaxed));
        let mut conn = Conn {
            id,
            family,
            behaviour,
            ends: [
                EndSlot::new(client_local, server_local, client),
                EndSlot::new(server_local, client_local, server),
            ],
            closed_at: None,
        };
        if behaviour == Behaviour::SendThenIdle {
            let data = [b'L'; SEND_THEN_IDLE_BYTES];
            let slot = conn.end(End::Server);
            if let Some(s) = &slot.socket {
                // 4 KiB always fits an empty send buffer, so one non-blocking write is it.
                let n = (&*s)
                    .write(&data)
                    .map_err(|e| LabError::io("send-then-idle send", e))?;
                slot.bytes_written += n as u64;
            }
        }
        let mut st = self.lock();
        st.by_tuple
            .insert((client_local, server_local), (id, End::Client));
        st.by_tuple
            .insert((server_local, client_local), (id, End::Server));
        st.conns.insert(id, conn);
        if behaviour.reads() {
            if let Some(c) = st.conns.get_mut(&id) {
                self.register(id, c.end(End::Server));
            }
        }
        Ok(id)
    }

    fn register(&self, id: ConnId, slot: &mut EndSlot) {
        if slot.registered {
            return;
        }
        if let Some(s) = &slot.socket {
            let fd = s.as_raw_fd();
            slot.registered = self
                .registry
                .register(&mut SourceFd(&fd), token(id), Interest::READABLE)
                .is_ok();
        }
    }

    fn deregister(&self, slot: &mut EndSlot) {
        if !slot.registered {
            return;
        }
        if let Some(s) = &slot.socket {
            let fd = s.as_raw_fd();
            let _ = self.registry.deregister(&mut SourceFd(&fd));
        }
        slot.registered = false;
    }

    /// Stops the engine and closes every socket in the table.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.close_all();
        let _ = self.waker.wake();
    }

    /// Closes every socket the table holds (sockets an action holds come back later and are
    /// closed then).
    pub fn close_all(&self) {
        let mut sockets = Vec::new();
        {
            let mut st = self.lock();
            let ids: Vec<ConnId> = st.conns.keys().copied().collect();
            for id in ids {
                let Some(conn) = st.conns.get_mut(&id) else {
                    continue;
                };
                for end in [End::Server, End::Client] {
                    let slot = conn.end(end);
                    self.deregister(slot);
                    if let Some(s) = slot.socket.take() {
                        slot.status = EndStatus::Closed("lab stopped".into());
                        sockets.push(s);
                    }
                }
                conn.note_if_closed();
            }
        }
        // Closed outside the lock: a close never waits on the engine.
        drop(sockets);
    }

    fn run_engine(&self, mut poll: Poll) {
        let mut events = Events::with_capacity(256);
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            if self.stopping() {
                return;
            }
            if let Err(e) = poll.poll(&mut events, None) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                // The poller itself failed: nothing more can be read; behaviours stop.
                return;
            }
            for ev in &events {
                if ev.token() == WAKER {
                    continue;
                }
                self.service(ConnId(ev.token().0 as u64), &mut buf);
            }
        }
    }

    /// Reads a readable server end until it would block, as its behaviour says.
    fn service(&self, id: ConnId, buf: &mut [u8]) {
        let mut st = self.lock();
        let Some(conn) = st.conns.get_mut(&id) else {
            return;
        };
        let behaviour = conn.behaviour;
        let slot = conn.end(End::Server);
        if !slot.registered {
            return;
        }
        // Out of the slot while reading, so the slot can be updated as reads return.
        let Some(socket) = slot.socket.take() else {
            return;
        };
        let ended = loop {
            let r = (&socket).read(buf);
            match r {
                Ok(0) => break Some(ReadOutcome::Eof),
                Ok(n) => {
                    slot.bytes_read += n as u64;
                    slot.log_read(ReadOutcome::Data(n as u64));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break Some(ReadOutcome::of(&r)),
            }
        };
        slot.socket = Some(socket);
        let Some(outcome) = ended else {
            return;
        };
        let how = match &outcome {
            ReadOutcome::Eof => "closed on EOF".to_string(),
            other => format!("closed on {}", other.name()),
        };
        slot.log_read(outcome);
        self.deregister(slot);
        if behaviour == Behaviour::Normal {
            slot.socket = None;
            slot.status = EndStatus::Closed(how);
            conn.note_if_closed();
        }
        // never-close keeps its socket: that is the CLOSE_WAIT it is there to show.
    }
}

/// Connects a client to the listener and accepts its server end. A stranger's connection
/// that arrives in between is closed at once: the lab serves only its own clients.
fn pair(listener: &Socket, addr: SocketAddr) -> Result<(Socket, Socket), LabError> {
    let client = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| LabError::io("cannot create a lab client socket", e))?;
    client
        .connect(&SockAddr::from(addr))
        .map_err(|e| LabError::io(format!("cannot connect to the lab listener {addr}"), e))?;
    let client_local = local_of(&client).map_err(|e| LabError::io("lab client", e))?;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (server, peer) = match listener.accept() {
            Ok(x) => x,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(LabError::io(
                    format!("the lab listener {addr} did not accept its own connection"),
                    e,
                ));
            }
        };
        if peer.as_socket() == Some(client_local) {
            return Ok((client, server));
        }
        drop(server);
        if Instant::now() > deadline {
            return Err(LabError::io(
                format!("the lab listener {addr} did not accept its own connection"),
                io::ErrorKind::TimedOut.into(),
            ));
        }
    }
}
