//! Loads the embedded eBPF object with aya and attaches its programs to the kernel's
//! BTF-typed raw tracepoints (tp_btf: no tracefs, no kprobes).

use std::os::fd::AsRawFd;

use aya::maps::{Array, MapData, RingBuf};
use aya::programs::BtfTracePoint;
use aya::{Btf, Ebpf, EbpfLoader};

use super::EventsError;

/// The compiled `bpf/closes.bpf.c` (built by `bpf/build.sh`, checked in CI), aligned as the
/// ELF parser wants.
static OBJECT: &[u8] = aya::include_bytes_aligned!("../../bpf/closes.bpf.o");

/// Each program and the tracepoint it attaches to.
const PROGRAMS: [(&str, &str); 6] = [
    ("on_set_state", "inet_sock_set_state"),
    ("on_send_reset", "tcp_send_reset"),
    ("on_receive_reset", "tcp_receive_reset"),
    ("on_destroy", "tcp_destroy_sock"),
    ("on_send", "sock_send_length"),
    ("on_recv", "sock_recv_length"),
];

/// The loaded object: dropping it detaches every program.
pub struct Loaded {
    /// Holds the programs and their links.
    _ebpf: Ebpf,
    pub ring: RingBuf<MapData>,
    lost: Array<MapData, u64>,
}

impl Loaded {
    /// The ring buffer's descriptor, readable when records wait.
    pub fn fd(&self) -> i32 {
        self.ring.as_raw_fd()
    }

    /// Records the kernel side dropped because the ring buffer was full.
    pub fn lost(&self) -> u64 {
        self.lost.get(&0, 0).unwrap_or(0)
    }
}

fn load_err(what: &str, e: impl std::error::Error) -> EventsError {
    // aya nests the OS error; its chain says whether privilege was the problem.
    let mut chain = format!("{what}: {e}");
    let mut src = e.source();
    let mut denied = false;
    while let Some(s) = src {
        chain.push_str(&format!(": {s}"));
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            denied |= matches!(io.raw_os_error(), Some(libc::EPERM | libc::EACCES));
        }
        src = s.source();
    }
    if denied || chain.contains("Operation not permitted") {
        EventsError::NotPermitted(chain)
    } else {
        EventsError::Load(chain)
    }
}

/// Loads and attaches everything, with a ring buffer of `ring_bytes` (a power of two, at
/// least a page).
/// `netns`: only sockets of this network namespace (inode) are reported; `None`, all.
pub fn load(ring_bytes: u32, netns: Option<u32>) -> Result<Loaded, EventsError> {
    let target_netns = netns.unwrap_or(0);
    let btf = Btf::from_sys_fs().map_err(|e| load_err("cannot read /sys/kernel/btf/vmlinux", e))?;
    let mut ebpf = EbpfLoader::new()
        .btf(Some(&btf))
        .set_max_entries("events", ring_bytes)
        .set_global("target_netns", &target_netns, true)
        .load(OBJECT)
        .map_err(|e| load_err("cannot load the eBPF object", e))?;
    for (name, tracepoint) in PROGRAMS {
        let program: &mut BtfTracePoint = ebpf
            .program_mut(name)
            .ok_or_else(|| EventsError::Load(format!("the eBPF object has no program {name}")))?
            .try_into()
            .map_err(|e| load_err(name, e))?;
        program
            .load(tracepoint, &btf)
            .map_err(|e| load_err(&format!("cannot load {name} for {tracepoint}"), e))?;
        program
            .attach()
            .map_err(|e| load_err(&format!("cannot attach {name} to {tracepoint}"), e))?;
    }
    let ring = ebpf
        .take_map("events")
        .ok_or_else(|| EventsError::Load("the eBPF object has no events map".into()))?;
    let ring = RingBuf::try_from(ring).map_err(|e| load_err("events map", e))?;
    let lost = ebpf
        .take_map("lost")
        .ok_or_else(|| EventsError::Load("the eBPF object has no lost map".into()))?;
    let lost = Array::try_from(lost).map_err(|e| load_err("lost map", e))?;
    Ok(Loaded {
        _ebpf: ebpf,
        ring,
        lost,
    })
}
