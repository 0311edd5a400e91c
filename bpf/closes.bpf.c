// SPDX-License-Identifier: GPL-2.0
/*
 * closes.bpf.c: every TCP close, from the kernel's own events, for lingertop.
 *
 * Five BTF-typed raw tracepoints (tp_btf: no tracefs, no kprobes needed) write one fixed-size
 * record each into a ring buffer; user space (src/events/) joins them per socket, by pointer and
 * cookie, into closes. Policy stays in user space: this side only reports what the kernel did and
 * in which task it ran, and counts what it could not report.
 *
 *   inet_sock_set_state  every state change of a full TCP socket (no TIME_WAIT: a graceful active
 *                        close ends FIN_WAIT2 -> CLOSE when the timewait socket replaces it)
 *   tcp_send_reset       a RST this host sends, with the kernel's reason
 *   tcp_receive_reset    a RST this host receives
 *   tcp_destroy_sock     the socket is freed (addresses zeroed after a linger-0 close)
 *   sock_send_length,    process context only: the task that sends or receives on a socket is
 *   sock_recv_length     its owner; reported once per (socket, process), not per call
 *
 * Build with bpf/build.sh (reproducible; the committed closes.bpf.o is what the crate embeds).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

char LICENSE[] SEC("license") = "GPL";

/* Record kinds; src/events/decode.rs mirrors them. */
#define EV_STATE 1
#define EV_SEND_RESET 2
#define EV_RECV_RESET 3
#define EV_DESTROY 4
#define EV_OWNER 5

/* Record flags. */
#define F_KTHREAD 1 /* the current task is a kernel thread (ksoftirqd, a worker) */
#define F_LINGER 2  /* SO_LINGER is on for the socket (sk_lingertime holds its deadline) */

#define PF_KTHREAD 0x00200000
#define AF_INET 2
#define AF_INET6 10

/* One record, 104 bytes, every field at a fixed offset (decode.rs reads them by offset). */
struct close_event {
	__u64 ts_ns;       /* bpf_ktime_get_ns: CLOCK_MONOTONIC */
	__u64 sk;          /* the socket's address: the join key while it lives */
	__u64 cookie;      /* the socket cookie, as sock_diag's idiag_cookie */
	__u64 lingertime;  /* sk_lingertime in jiffies, when F_LINGER */
	__u32 tgid;        /* the current task's process: the owner only in process context */
	__u32 netns;       /* inode of the socket's network namespace */
	__u8 kind;         /* EV_* */
	__u8 oldstate;     /* EV_STATE: TCP_* before */
	__u8 newstate;     /* EV_STATE: TCP_* after; otherwise the socket's state now */
	__u8 family;       /* AF_INET or AF_INET6 */
	__u8 reason;       /* EV_SEND_RESET: enum sk_rst_reason */
	__u8 flags;        /* F_* */
	__u16 sport;       /* host order */
	__u16 dport;       /* host order */
	__u16 pad[3];
	__u8 saddr[16];    /* IPv4 in the first 4 bytes */
	__u8 daddr[16];
	char comm[16];     /* the current task's name */
};
_Static_assert(sizeof(struct close_event) == 104, "decode.rs reads 104-byte records");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22); /* 4 MiB; the loader may set another power of two */
} events SEC(".maps");

/* lost[0]: records dropped because the ring buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* The process last seen sending or receiving on each socket, so each (socket, process) pair is
 * reported once. LRU: a socket whose destroy was missed ages out instead of filling the map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u32);
} owners SEC(".maps");

/* Set by the loader before load: only sockets of this network namespace (inode) are reported;
 * 0 reports every namespace. Filtering here, not in user space, keeps other namespaces'
 * traffic from costing ring buffer space and a wakeup. */
const volatile __u32 target_netns = 0;

static __always_inline bool wanted(const struct sock *sk)
{
	return !target_netns || BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) == target_netns;
}

/* Ring buffer flags and queries (uapi bpf.h; the trimmed vmlinux.h leaves them out). */
#define RB_NO_WAKEUP 1
#define RB_FORCE_WAKEUP 2
#define RB_AVAIL_DATA 0
#define RB_RING_SIZE 1

/* Waking the reader for every record costs an irq_work and a context switch per record, more
 * than the record itself: at 10k connections a second (about 16 records each) the wakeups alone
 * halved the rate the machine sustained. Records are submitted without a wakeup; the reader
 * polls with a short timeout (src/events/mod.rs) and is woken early only once an eighth of the
 * ring is waiting, well before it could fill. */
static __always_inline __u64 wakeup_flag(void)
{
	__u64 waiting = bpf_ringbuf_query(&events, RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, RB_RING_SIZE);

	return waiting >= size / 8 ? RB_FORCE_WAKEUP : RB_NO_WAKEUP;
}

static __always_inline void count_lost(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&lost, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
}

static __always_inline bool is_tcp(const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	return (family == AF_INET || family == AF_INET6) &&
	       BPF_CORE_READ(sk, sk_protocol) == IPPROTO_TCP;
}

/* A full socket: not a timewait or request socket, whose struct is only a sock_common. */
static __always_inline bool is_full(const struct sock *sk)
{
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	return state != TCP_TIME_WAIT && state != TCP_NEW_SYN_RECV;
}

static __always_inline int emit(const struct sock *sk, __u8 kind, __u8 oldstate, __u8 newstate,
				__u8 reason)
{
	struct close_event *e;
	struct task_struct *task;
	__u16 family;
	__u64 flags;

	if (!wanted(sk))
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_lost();
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	e->sk = (__u64)sk;
	e->cookie = bpf_get_socket_cookie((void *)sk);
	e->tgid = bpf_get_current_pid_tgid() >> 32;
	e->netns = BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	e->kind = kind;
	e->oldstate = oldstate;
	e->newstate = newstate;
	e->reason = reason;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->family = family;
	e->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	e->dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (family == AF_INET6) {
		BPF_CORE_READ_INTO(&e->saddr, sk, __sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8);
		BPF_CORE_READ_INTO(&e->daddr, sk, __sk_common.skc_v6_daddr.in6_u.u6_addr8);
	} else {
		BPF_CORE_READ_INTO((__u32 *)e->saddr, sk, __sk_common.skc_rcv_saddr);
		BPF_CORE_READ_INTO((__u32 *)e->daddr, sk, __sk_common.skc_daddr);
	}
	flags = BPF_CORE_READ(sk, __sk_common.skc_flags);
	if (flags & (1UL << SOCK_LINGER)) {
		e->flags |= F_LINGER;
		e->lingertime = BPF_CORE_READ(sk, sk_lingertime);
	}
	task = bpf_get_current_task_btf();
	if (BPF_CORE_READ(task, flags) & PF_KTHREAD)
		e->flags |= F_KTHREAD;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, wakeup_flag());
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(on_set_state, const struct sock *sk, const int oldstate, const int newstate)
{
	if (!is_tcp(sk))
		return 0;
	return emit(sk, EV_STATE, oldstate, newstate, 0);
}

SEC("tp_btf/tcp_send_reset")
int BPF_PROG(on_send_reset, const struct sock *sk, const struct sk_buff *skb,
	     const enum sk_rst_reason reason)
{
	__u8 state;

	/* No socket (a RST to a segment nobody owns) or a timewait/request socket: not a close of
	 * a full connection this host had. */
	if (!sk || !is_full(sk))
		return 0;
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	return emit(sk, EV_SEND_RESET, state, state, reason);
}

SEC("tp_btf/tcp_receive_reset")
int BPF_PROG(on_receive_reset, struct sock *sk)
{
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	return emit(sk, EV_RECV_RESET, state, state, 0);
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(on_destroy, struct sock *sk)
{
	__u64 key = (__u64)sk;
	__u8 state = BPF_CORE_READ(sk, __sk_common.skc_state);

	bpf_map_delete_elem(&owners, &key);
	return emit(sk, EV_DESTROY, state, state, 0);
}

/* sendmsg/recvmsg run in the calling process: it holds the socket. */
static __always_inline int note_owner(const struct sock *sk)
{
	__u64 key = (__u64)sk;
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u32 *known;
	__u8 state;

	if (!sk || !is_tcp(sk) || !wanted(sk))
		return 0;
	known = bpf_map_lookup_elem(&owners, &key);
	if (known && *known == tgid)
		return 0;
	bpf_map_update_elem(&owners, &key, &tgid, BPF_ANY);
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	return emit(sk, EV_OWNER, state, state, 0);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_send, struct sock *sk, int ret, int flags)
{
	return note_owner(sk);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(on_recv, struct sock *sk, int ret, int flags)
{
	return note_owner(sk);
}
