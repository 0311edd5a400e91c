//! One lab connection in the engine's table: its two ends (socket, status, the reads seen,
//! bytes each way) and the views of it the lab hands out.

use std::net::SocketAddr;
use std::time::Instant;

use socket2::Socket;

use super::READ_LOG;
use crate::lab::outcome::ReadOutcome;
use crate::lab::{Behaviour, ConnId, ConnView, End, EndStatus, EndView, Family};

/// One read on an end, as the engine or an action saw it.
#[derive(Clone, Debug)]
pub(in crate::lab) struct ReadEvent {
    pub at: Instant,
    pub outcome: ReadOutcome,
}

pub(in crate::lab) struct EndSlot {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub socket: Option<Socket>,
    pub status: EndStatus,
    /// Registered with the engine for reading.
    pub registered: bool,
    pub reads: Vec<ReadEvent>,
    pub bytes_read: u64,
    pub bytes_written: u64,
}

impl EndSlot {
    pub(super) fn new(local: SocketAddr, remote: SocketAddr, socket: Socket) -> Self {
        EndSlot {
            local,
            remote,
            socket: Some(socket),
            status: EndStatus::Open,
            registered: false,
            reads: Vec::new(),
            bytes_read: 0,
            bytes_written: 0,
        }
    }

    pub fn log_read(&mut self, outcome: ReadOutcome) {
        let now = Instant::now();
        if let (
            ReadOutcome::Data(n),
            Some(ReadEvent {
                outcome: ReadOutcome::Data(m),
                ..
            }),
        ) = (&outcome, self.reads.last_mut())
        {
            *m += n;
            return;
        }
        if self.reads.len() == READ_LOG {
            self.reads.remove(0);
        }
        self.reads.push(ReadEvent { at: now, outcome });
    }

    pub(super) fn view(&self) -> EndView {
        EndView {
            local: self.local,
            remote: self.remote,
            status: self.status.clone(),
            last_read: self.reads.last().map(|r| r.outcome.clone()),
            bytes_read: self.bytes_read,
            bytes_written: self.bytes_written,
        }
    }
}

pub(in crate::lab) struct Conn {
    pub id: ConnId,
    pub family: Family,
    pub behaviour: Behaviour,
    /// Client, server.
    pub ends: [EndSlot; 2],
    pub closed_at: Option<Instant>,
}

impl Conn {
    pub fn end(&mut self, end: End) -> &mut EndSlot {
        &mut self.ends[end.index()]
    }

    pub(super) fn note_if_closed(&mut self) {
        if self.closed_at.is_none() && self.ends.iter().all(|e| e.socket.is_none()) {
            self.closed_at = Some(Instant::now());
        }
    }

    pub(super) fn view(&self) -> ConnView {
        ConnView {
            id: self.id,
            family: self.family,
            behaviour: self.behaviour,
            client: self.ends[0].view(),
            server: self.ends[1].view(),
        }
    }
}
