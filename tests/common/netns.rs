//! Network namespaces the tests make (`ip netns add`, loopback up, deleted with every
//! process in them on every exit path), and `ss` run inside them as the oracle.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether the test can run; says why not, once, when it cannot.
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED {test}: needs root to create network namespaces (CI runs it as root)");
        return false;
    }
    let probe = Netns::new("probe");
    if probe.is_none() {
        eprintln!(
            "SKIPPED {test}: `ip netns add` does not work here (needs iproute2 and CAP_SYS_ADMIN)"
        );
        return false;
    }
    true
}

pub static SEQ: AtomicU32 = AtomicU32::new(0);

/// A network namespace this test made, deleted when dropped (a panic included), with
/// every process still in it killed first.
pub struct Netns {
    pub name: String,
    pub sleepers: Vec<Child>,
    pub cgroups: Vec<std::path::PathBuf>,
}

pub fn ip(args: &[&str]) -> bool {
    Command::new("ip")
        .args(args)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Netns {
    pub fn new(tag: &str) -> Option<Netns> {
        let name = format!(
            "lt{}-{}-{tag}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        if !ip(&["netns", "add", &name]) {
            return None;
        }
        let ns = Netns {
            name,
            sleepers: Vec::new(),
            cgroups: Vec::new(),
        };
        assert!(ip(&["-n", &ns.name, "link", "set", "lo", "up"]));
        Some(ns)
    }

    /// Runs `f` on a thread inside the namespace: sockets it opens stay in it.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let file = File::open(format!("/run/netns/{}", self.name)).expect("open the netns");
        std::thread::scope(|s| {
            s.spawn(|| {
                // SAFETY: the file is open for the whole scope; only this thread moves.
                let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                f()
            })
            .join()
            .expect("the thread in the namespace")
        })
    }

    pub fn inode(&self) -> u64 {
        std::fs::metadata(format!("/run/netns/{}", self.name))
            .unwrap()
            .ino()
    }

    /// A process sleeping in the namespace, so that a process holds it.
    pub fn sleeper(&mut self) -> u32 {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name, "sleep", "120"])
            .spawn()
            .expect("ip netns exec sleep");
        let pid = child.id();
        self.sleepers.push(child);
        // ip execs sleep in place: wait until it is in the namespace.
        wait_until("the sleeper enters the namespace", || {
            std::fs::read_link(format!("/proc/{pid}/ns/net"))
                .is_ok_and(|l| l.to_string_lossy() == format!("net:[{}]", self.inode()))
        });
        pid
    }

    /// `ss -tanpH FILTER` inside the namespace.
    pub fn ss(&self, filter: &str) -> Vec<SsRow> {
        ss_rows(&["netns", "exec", &self.name], filter)
    }

    /// `COMMAND ARGS` run inside the namespace (`ip netns exec`, which execs it in place:
    /// the child's pid is the command's).
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name, program]);
        cmd
    }

    /// Kills every process still in the namespace: the ones a test started that forked
    /// (nginx's workers outlive a killed master) would otherwise keep it alive after
    /// `ip netns del`.
    fn kill_everyone_inside(&self) {
        let want = format!("net:[{}]", self.inode());
        for _ in 0..50 {
            let inside: Vec<i32> = std::fs::read_dir("/proc")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    std::fs::read_link(format!("/proc/{pid}/ns/net"))
                        .is_ok_and(|l| l.to_string_lossy() == want)
                })
                .collect();
            if inside.is_empty() {
                return;
            }
            for pid in inside {
                // SAFETY: kill has no memory effects; a pid that just exited gives ESRCH.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn delete(&mut self) {
        for mut c in self.sleepers.drain(..) {
            let _ = c.kill();
            let _ = c.wait();
        }
        for cg in self.cgroups.drain(..).rev() {
            let _ = std::fs::remove_dir(cg);
        }
        if !self.name.is_empty() {
            self.kill_everyone_inside();
            ip(&["netns", "del", &self.name]);
            self.name.clear();
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.delete();
    }
}

pub fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// One line of `ss -tanpH`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SsRow {
    pub state: String,
    pub local: String,
    pub remote: String,
    pub pids: Vec<u32>,
}

pub fn ss_state(s: &str) -> &str {
    match s {
        "ESTAB" => "ESTABLISHED",
        "FIN-WAIT-2" => "FIN_WAIT_2",
        "FIN-WAIT-1" => "FIN_WAIT_1",
        "TIME-WAIT" => "TIME_WAIT",
        "CLOSE-WAIT" => "CLOSE_WAIT",
        "LAST-ACK" => "LAST_ACK",
        "SYN-SENT" => "SYN_SENT",
        "SYN-RECV" => "SYN_RECV",
        other => other,
    }
}

/// `ss -tanpH FILTER`, run as `ip PREFIX ss` (`ip netns exec NS ss`) or plain `ss`.
pub fn ss_rows(prefix: &[&str], filter: &str) -> Vec<SsRow> {
    // ss reads its filter (and `state NAME`) from separate words.
    let words = filter.split_whitespace();
    let out = if prefix.is_empty() {
        Command::new("ss").arg("-tanpH").args(words).output()
    } else {
        Command::new("ip")
            .args(prefix)
            .args(["ss", "-tanpH"])
            .args(words)
            .output()
    }
    .expect("ss (iproute2) must be installed for this test");
    assert!(out.status.success());
    let mut rows: Vec<SsRow> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let state = ss_state(f.first()?).to_string();
            let remote = match f.get(4)? {
                r if r.ends_with(":*") => r.replace(":*", ":0").replace("*:", "0.0.0.0:"),
                r => r.to_string(),
            };
            let mut pids: Vec<u32> = l
                .split("pid=")
                .skip(1)
                .filter_map(|p| p.split(',').next()?.parse().ok())
                .collect();
            pids.sort_unstable();
            pids.dedup();
            Some(SsRow {
                state,
                local: f.get(3)?.to_string(),
                remote,
                pids,
            })
        })
        .collect();
    rows.sort();
    rows
}
