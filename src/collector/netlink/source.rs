//! [`NetlinkSource`]: the collector's socket source over [`SockDiag`], reading every
//! namespace it may read and joining owners to the sockets.

use super::*;
use crate::collector::{KernelTable, NetnsReads};
use crate::model::CounterCloses;
use crate::model::action::Refusal;

/// Reads the socket table of every network namespace asked for through a [`SockDiag`]
/// inside each, and finds owners through an owner cache that rescans `/proc` only when
/// sockets it does not know appear (one cache for all namespaces: socket inodes are unique
/// across them).
pub struct NetlinkSource {
    netns: Namespaces,
    states: u32,
    owners: OwnerCache,
    /// Readers whose dump failed this poll (kept for its capacity).
    failed: Vec<NetnsId>,
    /// How the last poll read its namespaces.
    reads: NetnsReads,
}

impl NetlinkSource {
    /// A source of every namespace it may read, whose first dump already worked: fails
    /// where sock_diag is missing (old or sandboxed kernels) so the caller can fall back.
    pub fn open() -> Result<Self, DiagError> {
        NetlinkSource::open_in(NetnsChoice::default())
    }

    /// A source of the namespaces `choice` asks for.
    pub fn open_in(choice: NetnsChoice) -> Result<Self, DiagError> {
        let mut netns = Namespaces::new(choice)?;
        for (_, diag, _) in netns.readers_mut() {
            // The cheapest possible probe: listening sockets only.
            diag.dump_tcp(state_mask(Some(&[TcpState::Listen])), |_| {})?;
        }
        Ok(NetlinkSource {
            netns,
            states: ALL_STATES,
            owners: OwnerCache::default(),
            failed: Vec::new(),
            reads: NetnsReads::default(),
        })
    }

    /// What the first look at the namespaces could not see, and how to see it.
    pub fn note(&self) -> Option<String> {
        self.netns.note()
    }
}

/// Runs `dump` until it succeeds, retrying transient failures (an interrupted dump) up to
/// [`ATTEMPTS`] times.
fn retrying(mut dump: impl FnMut() -> Result<(), DiagError>) -> Result<(), CollectError> {
    let mut attempt = 1;
    loop {
        match dump() {
            Ok(()) => return Ok(()),
            Err(e) if e.is_transient() && attempt < ATTEMPTS => attempt += 1,
            Err(e) => {
                return Err(CollectError::Backend {
                    backend: "netlink",
                    detail: if e.is_transient() {
                        format!("{e}, {ATTEMPTS} times in a row; try again")
                    } else {
                        format!("{e}; try --backend netstat2")
                    },
                });
            }
        }
    }
}

/// Where the sockets of one namespace's read go, and which of them.
struct Place {
    netns: NetnsId,
    fin_timeout: Duration,
    /// The states the poll asks for (a small namespace's read returns every state).
    states: u32,
}

impl Place {
    /// One socket of the kernel's answer, as a connection (and its file, for the owners).
    fn push(&self, d: &DiagSocket, out: &mut Vec<Connection>, held: &mut Vec<Held>) {
        if self.states & (1 << d.state.min(31)) == 0 {
            return;
        }
        let Some(state) = state_of(d.state) else {
            return;
        };
        if d.inode != 0 {
            held.push(Held {
                index: u32::try_from(out.len()).unwrap_or(u32::MAX),
                inode: d.inode,
                uid: d.uid,
                pids: Vec::new(),
                owner_pending: false,
            });
        }
        let mut c = Connection::on(Tuple::in_netns(d.local, d.remote, self.netns), state);
        c.inode = d.inode;
        c.cookie = d.cookie;
        c.timer = timer_of(d);
        c.set_queues(Some(d.rqueue), Some(d.wqueue));
        c.shutdown = d.shutdown.map(Shutdown::from_kernel);
        let clocks = KernelClocks {
            timer: c.timer,
            info: d.info,
            send_q: d.wqueue,
            fin_timeout: self.fin_timeout,
        };
        c.tracking = kernel_age(state, &clocks).map(|age| Tracking::from_kernel(d.asked_at, age));
        out.push(c);
    }
}

impl SocketSource for NetlinkSource {
    fn name(&self) -> &'static str {
        "netlink"
    }

    fn kernel_table(&mut self) -> Option<&mut dyn KernelTable> {
        Some(self)
    }

    /// The trait's general read, for callers that want raw sockets: the direct read, with
    /// each connection's holders put back beside it.
    fn read(&mut self, out: &mut Vec<RawSocket>) -> Result<(), CollectError> {
        let (mut conns, mut held) = (Vec::new(), Vec::new());
        self.read_direct(&mut conns, &mut held)?;
        // Owners found for sockets this read left out have no raw socket to go with.
        held.retain(|h| h.index != Held::UNREAD);
        let mut held = held.into_iter().peekable();
        out.clear();
        out.extend(conns.into_iter().enumerate().map(|(i, c)| {
            let h = held.next_if(|h| h.index as usize == i);
            RawSocket {
                tuple: c.tuple().clone(),
                state: c.state,
                inode: c.inode,
                cookie: c.cookie,
                kernel_since: c.tracking.as_ref().map(Tracking::state_since),
                uid: h.as_ref().map(|h| h.uid),
                timer: c.timer,
                recv_q: c.recv_q(),
                send_q: c.send_q(),
                owner_pending: h.as_ref().is_some_and(|h| h.owner_pending),
                pids: h.map(|h| h.pids).unwrap_or_default(),
            }
        }));
        Ok(())
    }
}

impl KernelTable for NetlinkSource {
    fn set_options(&mut self, opts: &ReadOptions) {
        self.states = state_mask(opts.states.as_deref());
        self.owners.set_exact(opts.exact_owners);
        self.owners.set_partial_reads(self.states != ALL_STATES);
    }

    fn netns(&self) -> Arc<NetnsTable> {
        self.netns.table()
    }

    fn counters(&mut self) -> Vec<(NetnsId, CounterCloses)> {
        self.netns.counters()
    }

    fn netns_reads(&self) -> NetnsReads {
        NetnsReads {
            empty: self
                .netns
                .len()
                .saturating_sub(self.reads.dumped + self.reads.looked_up),
            ..self.reads
        }
    }

    fn destroy(&mut self, targets: &[(NetnsId, u64)]) -> Vec<Result<(), Refusal>> {
        let table = self.netns.table();
        let mut out: Vec<Result<(), Refusal>> = vec![Err(Refusal::GoneBefore); targets.len()];
        let mut namespaces: Vec<NetnsId> = targets.iter().map(|t| t.0).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        for netns in namespaces {
            let name = table
                .get(netns)
                .map_or_else(|| format!("namespace {netns}"), |n| n.name.to_string());
            let Some(diag) = self.netns.reader_of(netns) else {
                continue;
            };
            // The sockets' identities as the kernel knows them now (the bound interface
            // included), found by cookie: one dump of the namespace.
            let wanted: rustc_hash::FxHashSet<u64> = targets
                .iter()
                .filter(|t| t.0 == netns)
                .map(|t| t.1)
                .collect();
            let mut keys = rustc_hash::FxHashMap::default();
            let read = retrying(|| {
                keys.clear();
                diag.dump_tcp(ALL_STATES, |d| {
                    if wanted.contains(&d.cookie) {
                        keys.insert(d.cookie, SockKey::of(d));
                    }
                })
            });
            if let Err(e) = read {
                for (i, _) in targets.iter().enumerate().filter(|(_, t)| t.0 == netns) {
                    out[i] = Err(Refusal::Failed {
                        detail: e.to_string(),
                    });
                }
                continue;
            }
            for (i, t) in targets.iter().enumerate().filter(|(_, t)| t.0 == netns) {
                let Some(key) = keys.get(&t.1) else {
                    continue;
                };
                out[i] = diag.destroy(key).map_err(|e| match e {
                    DiagError::Kernel(e) => match e.raw_os_error() {
                        Some(libc::ENOENT) => Refusal::GoneBefore,
                        Some(libc::EPERM | libc::EACCES) => Refusal::NoNetAdmin {
                            netns: name.clone(),
                        },
                        Some(libc::EOPNOTSUPP) => Refusal::NoDestroy,
                        _ => Refusal::Failed {
                            detail: format!("the kernel refused SOCK_DESTROY: {e}"),
                        },
                    },
                    e => Refusal::Failed {
                        detail: e.to_string(),
                    },
                });
            }
        }
        out
    }

    fn count_states(&mut self, states: &[TcpState]) -> Result<StateCounts, CollectError> {
        // Every namespace the reads cover, as the read's own total does.
        let mut total = StateCounts::default();
        for (netns, diag, _) in self.netns.readers_mut() {
            let before = total;
            let read = retrying(|| {
                total = before;
                diag.dump_tcp(state_mask(Some(states)), |d| {
                    if let Some(s) = state_of(d.state) {
                        total.add(s);
                    }
                })
            });
            match read {
                Ok(()) => {}
                // Another namespace's failure leaves it out, as its read does.
                Err(_) if netns != OWN_NETNS => total = before,
                Err(e) => return Err(e),
            }
        }
        Ok(total)
    }

    fn read_direct(
        &mut self,
        out: &mut Vec<Connection>,
        held: &mut Vec<Held>,
    ) -> Result<(), CollectError> {
        // The first read finds every owner by a walk of /proc, which waits for nothing the
        // kernel's dump does: walked on another thread meanwhile (it joins below).
        let walk = self.owners.never_scanned().then(|| {
            std::thread::Builder::new()
                .name("lingertop-owners".into())
                .spawn(|| {
                    let mut pairs = Vec::new();
                    scan_proc(&mut |pid, inode| pairs.push((pid, inode)));
                    pairs
                })
                .ok()
        });
        self.netns.refresh();
        let states = self.states;
        // Each namespace's orphaned FIN_WAIT_2 ages count from its own tcp_fin_timeout,
        // read inside it (lingertop's own namespace: read here).
        let own_fin_timeout = fin_timeout();
        out.clear();
        held.clear();
        self.failed.clear();
        self.reads = NetnsReads::default();
        for ns in self.netns.polls_mut() {
            let netns = ns.id;
            let diag = ns.diag;
            let place = Place {
                netns,
                fin_timeout: ns.fin_timeout.unwrap_or(own_fin_timeout),
                states,
            };
            let (o, h) = (out.len(), held.len());
            // A small namespace in which nothing happened since its last read (see
            // `netlink::netns`): its sockets asked for by identity, not by a walk of the
            // whole machine's table. A socket gone or replaced sends it to the walk.
            if ns.quiet
                && let Some(keys) = ns.known.as_ref()
            {
                match diag.lookup(keys, |d| place.push(d, out, held)) {
                    Ok(0) => {
                        self.reads.looked_up += 1;
                        continue;
                    }
                    Ok(_) | Err(_) => {
                        out.truncate(o);
                        held.truncate(h);
                        *ns.known = None;
                    }
                }
            }
            // A small namespace is read whole, whatever the poll asks for, so that its
            // sockets are known for the next poll.
            let mask = if ns.small { ALL_STATES } else { states };
            // tcp_info only at a namespace's first read of each state (see the module doc).
            let with_info = mask & !diag.info_read != 0;
            diag.set_tcp_info(with_info);
            let mut keys = Vec::new();
            let read = retrying(|| {
                out.truncate(o);
                held.truncate(h);
                keys.clear();
                diag.dump_tcp(mask, |d| {
                    if ns.small {
                        keys.push(SockKey::of(d));
                    }
                    place.push(d, out, held);
                })
            });
            diag.set_tcp_info(false);
            match read {
                Ok(()) => {
                    self.reads.dumped += 1;
                    if with_info {
                        diag.info_read |= mask;
                    }
                    *ns.known = ns.small.then_some(keys);
                }
                Err(e) => {
                    out.truncate(o);
                    held.truncate(h);
                    if netns == OWN_NETNS {
                        out.clear();
                        held.clear();
                        return Err(e);
                    }
                    // Another namespace's reader: dropped and opened afresh at the next
                    // poll, if the namespace is still there; this poll goes on without it.
                    self.failed.push(netns);
                }
            }
        }
        for &id in &self.failed {
            self.netns.drop_reader(id);
        }
        match walk.flatten().and_then(|w| w.join().ok()) {
            Some(pairs) => self.owners.attach(held, Instant::now(), &mut |found| {
                for &(pid, inode) in &pairs {
                    found(pid, inode);
                }
            }),
            None => self.owners.attach(held, Instant::now(), &mut scan_proc),
        }
        Ok(())
    }
}
