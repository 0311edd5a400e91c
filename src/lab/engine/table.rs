//! The lab's table of connections, as the lab and its actions use it: taking an end out for
//! an action and putting it back, behaviours, the reads and bytes seen, lookups by handle
//! and by 4-tuple, discarding and forgetting connections.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Instant;

use socket2::Socket;

use super::{Conn, FORGET_AFTER, Inner, ReadEvent};
use crate::lab::outcome::ReadOutcome;
use crate::lab::{Behaviour, ConnId, ConnView, End, EndStatus, LabError};

impl Inner {
    /// Takes an end's socket out of the table for an action; returns it with the end's
    /// status before.
    pub fn take_end(
        &self,
        id: ConnId,
        end: End,
        status: EndStatus,
    ) -> Result<(Socket, EndStatus), LabError> {
        if self.stopping() {
            return Err(LabError::Stopped);
        }
        let mut st = self.lock();
        let conn = st
            .conns
            .get_mut(&id)
            .ok_or(LabError::UnknownConnection(id))?;
        let slot = conn.end(end);
        if slot.socket.is_none() {
            return Err(match slot.status {
                EndStatus::Acting(_) => LabError::Busy { id, end },
                _ => LabError::EndClosed { id, end },
            });
        }
        self.deregister(slot);
        let before = std::mem::replace(&mut slot.status, status);
        let socket = slot.socket.take().ok_or(LabError::EndClosed { id, end })?;
        Ok((socket, before))
    }

    /// Hands an end's socket back after an action; the engine resumes reading it if its
    /// behaviour reads.
    pub fn put_back(&self, id: ConnId, end: End, socket: Socket, status: EndStatus) {
        let mut st = self.lock();
        let Some(conn) = st.conns.get_mut(&id) else {
            return;
        };
        let behaviour = conn.behaviour;
        let slot = conn.end(end);
        slot.socket = Some(socket);
        slot.status = status;
        if self.stopping() {
            // The lab is closing everything: this one goes too.
            slot.socket = None;
            return;
        }
        if end == End::Server && behaviour.reads() {
            if let Some(s) = &slot.socket {
                let _ = s.set_nonblocking(true);
            }
            self.register(id, slot);
        }
    }

    /// Records that an action closed an end.
    pub fn closed(&self, id: ConnId, end: End, how: String) {
        let mut st = self.lock();
        if let Some(conn) = st.conns.get_mut(&id) {
            let slot = conn.end(end);
            slot.socket = None;
            slot.status = EndStatus::Closed(how);
            conn.note_if_closed();
        }
    }

    /// Changes the server end's behaviour; returns the previous one.
    pub fn set_behaviour(&self, id: ConnId, behaviour: Behaviour) -> Option<Behaviour> {
        let mut st = self.lock();
        let conn = st.conns.get_mut(&id)?;
        let before = conn.behaviour;
        conn.behaviour = behaviour;
        let slot = &mut conn.ends[End::Server.index()];
        if behaviour.reads() {
            self.register(id, slot);
        } else {
            self.deregister(slot);
        }
        Some(before)
    }

    pub fn behaviour(&self, id: ConnId) -> Option<Behaviour> {
        self.lock().conns.get(&id).map(|c| c.behaviour)
    }

    /// Whether the engine is reading this end on its own.
    pub fn engine_reads(&self, id: ConnId, end: End) -> bool {
        let mut st = self.lock();
        st.conns.get_mut(&id).is_some_and(|c| c.end(end).registered)
    }

    /// Whether the lab still holds this end's socket (in the table or in an action).
    pub fn end_open(&self, id: ConnId, end: End) -> bool {
        let mut st = self.lock();
        st.conns.get_mut(&id).is_some_and(|c| {
            let s = c.end(end);
            s.socket.is_some() || matches!(s.status, EndStatus::Acting(_))
        })
    }

    /// The first read on an end at or after `since`, and the first one since then that
    /// ended the reading (EOF or an error).
    pub fn read_since(
        &self,
        id: ConnId,
        end: End,
        since: Instant,
    ) -> (Option<ReadEvent>, Option<ReadEvent>) {
        let mut st = self.lock();
        let Some(conn) = st.conns.get_mut(&id) else {
            return (None, None);
        };
        let slot = conn.end(end);
        let mut after = slot.reads.iter().filter(|r| r.at >= since);
        let first = after.next().cloned();
        let last = slot
            .reads
            .iter()
            .filter(|r| r.at >= since)
            .find(|r| !matches!(r.outcome, ReadOutcome::Data(_)))
            .cloned();
        (first, last)
    }

    /// Whether a read on the end ever returned `outcome`.
    pub fn saw(&self, id: ConnId, end: End, outcome: &ReadOutcome) -> bool {
        let mut st = self.lock();
        st.conns
            .get_mut(&id)
            .is_some_and(|c| c.end(end).reads.iter().any(|r| &r.outcome == outcome))
    }

    pub fn bytes_read(&self, id: ConnId, end: End) -> u64 {
        let mut st = self.lock();
        st.conns.get_mut(&id).map_or(0, |c| c.end(end).bytes_read)
    }

    /// Records what an action read on an end it holds.
    pub fn note_read(&self, id: ConnId, end: End, outcome: ReadOutcome, bytes: u64) {
        let mut st = self.lock();
        if let Some(conn) = st.conns.get_mut(&id) {
            let slot = conn.end(end);
            slot.bytes_read += bytes;
            slot.log_read(outcome);
        }
    }

    pub fn note_written(&self, id: ConnId, end: End, bytes: u64) {
        let mut st = self.lock();
        if let Some(conn) = st.conns.get_mut(&id) {
            conn.end(end).bytes_written += bytes;
        }
    }

    /// Writes `data` on an end the table holds (a small write: it never blocks for long).
    pub fn send_on(&self, id: ConnId, end: End, data: &[u8]) -> Option<io::Result<usize>> {
        let mut st = self.lock();
        let slot = st.conns.get_mut(&id)?.end(end);
        let r = slot.socket.as_ref()?.write(data);
        if let Ok(n) = r {
            slot.bytes_written += n as u64;
        }
        Some(r)
    }

    /// The 4-tuple of an end.
    pub fn tuple(&self, id: ConnId, end: End) -> Option<(SocketAddr, SocketAddr)> {
        let mut st = self.lock();
        st.conns.get_mut(&id).map(|c| {
            let s = c.end(end);
            (s.local, s.remote)
        })
    }

    pub fn views(&self) -> Vec<ConnView> {
        self.lock().conns.values().map(Conn::view).collect()
    }

    pub fn view(&self, id: ConnId) -> Option<ConnView> {
        self.lock().conns.get(&id).map(Conn::view)
    }

    pub fn find(&self, local: SocketAddr, remote: SocketAddr) -> Option<(ConnId, End)> {
        self.lock().by_tuple.get(&(local, remote)).copied()
    }

    pub fn is_lab_tuple(&self, local: SocketAddr, remote: SocketAddr) -> bool {
        let listening = remote.port() == 0 && self.listener_addrs().contains(&local);
        listening || self.find(local, remote).is_some()
    }

    /// Drops connections closed long ago, so a long session stays small.
    pub(super) fn forget_old(&self) {
        let mut st = self.lock();
        let old: Vec<ConnId> = st
            .conns
            .values()
            .filter(|c| c.closed_at.is_some_and(|t| t.elapsed() > FORGET_AFTER))
            .map(|c| c.id)
            .collect();
        for id in old {
            if let Some(c) = st.conns.remove(&id) {
                for e in &c.ends {
                    st.by_tuple.remove(&(e.local, e.remote));
                }
            }
        }
    }

    /// Closes both ends of one connection that the table holds.
    pub fn discard(&self, id: ConnId) -> Result<(), LabError> {
        let mut sockets = Vec::new();
        {
            let mut st = self.lock();
            let conn = st
                .conns
                .get_mut(&id)
                .ok_or(LabError::UnknownConnection(id))?;
            for end in [End::Server, End::Client] {
                let slot = conn.end(end);
                self.deregister(slot);
                if let Some(s) = slot.socket.take() {
                    slot.status = EndStatus::Closed("discarded".into());
                    sockets.push(s);
                }
            }
            conn.note_if_closed();
        }
        drop(sockets);
        Ok(())
    }
}
