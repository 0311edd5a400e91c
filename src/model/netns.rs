//! The network namespaces a poll read, named for a person: each connection carries a
//! two-byte [`NetnsId`] (inside its [`Tuple`](super::Tuple)), and the snapshot one shared
//! [`NetnsTable`] that says what each id is (the host, a container, a pod, an `ip netns`).

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use super::ports::PortRange;

/// A network namespace, as an index into the snapshot's [`NetnsTable`]. Small on purpose:
/// every connection carries one.
pub type NetnsId = u16;

/// The namespace lingertop itself runs in: the only one a backend without namespace support
/// reads, and the id of every connection built without one.
pub const OWN_NETNS: NetnsId = 0;

/// What kind of thing a namespace belongs to, as its processes' cgroups or its name say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetnsKind {
    /// The namespace of the machine's init (pid 1).
    Host,
    /// lingertop's own namespace when that is not the host's (lingertop runs in a container).
    Own,
    /// A container; `runtime` is `docker`, `podman`, `containerd`, `cri-o` or `lxc`.
    Container { runtime: &'static str },
    /// A Kubernetes pod (its containers share the pod's namespace).
    Pod,
    /// A systemd-nspawn machine.
    Machine,
    /// A namespace named under `/run/netns` (`ip netns add`).
    Named,
    /// None of the above: named for the first process that holds it.
    Process,
}

impl NetnsKind {
    /// The word an alert puts before the name: "in container orders-api".
    pub fn noun(&self) -> &'static str {
        match self {
            NetnsKind::Host => "host",
            NetnsKind::Own => "namespace",
            NetnsKind::Container { .. } => "container",
            NetnsKind::Pod => "pod",
            NetnsKind::Machine => "machine",
            NetnsKind::Named => "netns",
            NetnsKind::Process => "namespace of",
        }
    }

    /// A short machine-readable kind, for JSON and metrics labels.
    pub fn key(&self) -> &'static str {
        match self {
            NetnsKind::Host => "host",
            NetnsKind::Own => "own",
            NetnsKind::Container { runtime } => runtime,
            NetnsKind::Pod => "pod",
            NetnsKind::Machine => "machine",
            NetnsKind::Named => "netns",
            NetnsKind::Process => "process",
        }
    }
}

/// One network namespace read by a poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Netns {
    pub id: NetnsId,
    /// The namespace's inode (`/proc/PID/ns/net` reads `net:[INODE]`; `lsns` shows it).
    pub inode: u64,
    pub kind: NetnsKind,
    /// The name a person knows it by: the container's or pod's name where the runtime's
    /// state says it, else its id, else the `ip netns` name, else `process[pid]`; `host`.
    pub name: Arc<str>,
    /// The lowest pid holding it, where a process does.
    pub pid: Option<u32>,
    /// Its own ephemeral port range (`net.ipv4.ip_local_port_range` is per namespace), where
    /// it was read inside it; `None`: the snapshot's `ephemeral_ports` (lingertop's own).
    pub ports: Option<PortRange>,
}

impl Netns {
    /// Where a connection is, for a sentence: "host", "container orders-api",
    /// "netns blue", "namespace of sleep[812]".
    pub fn place(&self) -> String {
        match self.kind {
            NetnsKind::Host => "host".to_string(),
            _ => format!("{} {}", self.kind.noun(), self.name),
        }
    }
}

impl fmt::Display for Netns {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// The namespaces of one poll, by id. Shared by every snapshot that read the same set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetnsTable {
    /// Sorted by id.
    entries: Vec<Netns>,
}

impl NetnsTable {
    /// A table of `entries` (any order; ids must be distinct).
    pub fn new(mut entries: Vec<Netns>) -> Self {
        entries.sort_by_key(|n| n.id);
        entries.dedup_by_key(|n| n.id);
        NetnsTable { entries }
    }

    pub fn get(&self, id: NetnsId) -> Option<&Netns> {
        self.entries
            .binary_search_by_key(&id, |n| n.id)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// The ephemeral port range of namespace `id`: its own where it was read, else
    /// `default` (lingertop's own namespace's).
    pub fn ports(&self, id: NetnsId, default: PortRange) -> PortRange {
        self.get(id).and_then(|n| n.ports).unwrap_or(default)
    }

    /// The name of `id`; `None` where the table does not know it (a backend that reads only
    /// its own namespace leaves the table empty).
    pub fn name(&self, id: NetnsId) -> Option<&str> {
        self.get(id).map(|n| &*n.name)
    }

    /// The namespace whose inode is `inode` (as the kernel's events carry it).
    pub fn by_inode(&self, inode: u64) -> Option<&Netns> {
        self.entries.iter().find(|n| n.inode == inode)
    }

    /// The namespace whose name is `name`.
    pub fn by_name(&self, name: &str) -> Option<&Netns> {
        self.entries.iter().find(|n| &*n.name == name)
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Netns> {
        self.entries.iter()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the poll read more than one namespace: outputs show the namespace only then,
    /// so a host without containers looks as it always did.
    pub fn several(&self) -> bool {
        self.entries.len() > 1
    }
}

/// Which network namespaces to read (`--netns`, `collector.netns`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum NetnsChoice {
    /// Every namespace lingertop may enter (all of them as root); its own otherwise.
    #[default]
    All,
    /// lingertop's own namespace only (the host's, when it runs on the host).
    Host,
    /// The namespace named so in `/run/netns`, or the container or pod of that name.
    Named(String),
    /// The namespace of this process.
    Pid(u32),
}

impl FromStr for NetnsChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.trim() {
            "" => return Err("an empty network namespace; use all, host, a NAME or a PID".into()),
            "all" => NetnsChoice::All,
            "host" => NetnsChoice::Host,
            s if s.bytes().all(|b| b.is_ascii_digit()) => {
                NetnsChoice::Pid(s.parse().map_err(|_| format!("{s} is not a pid"))?)
            }
            s if s.split_once('/').is_some_and(|(a, b)| {
                ![a, b]
                    .iter()
                    .any(|p| p.is_empty() || p.starts_with('.') || p.contains('/'))
            }) =>
            {
                // A pod's namespace/name.
                NetnsChoice::Named(s.to_string())
            }
            s if s.contains('/') || s.contains('\0') => {
                return Err(format!(
                    "\"{s}\" is not a network namespace name; use all, host, a NAME from `ip netns list` or a container's name, or a PID"
                ));
            }
            s => NetnsChoice::Named(s.to_string()),
        })
    }
}

impl fmt::Display for NetnsChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetnsChoice::All => f.write_str("all"),
            NetnsChoice::Host => f.write_str("host"),
            NetnsChoice::Named(n) => f.write_str(n),
            NetnsChoice::Pid(p) => write!(f, "{p}"),
        }
    }
}

/// The ephemeral port range of each namespace: its own where the collector read it, else
/// lingertop's own namespace's.
#[derive(Copy, Clone, Debug)]
pub struct Ranges<'a> {
    pub default: PortRange,
    pub netns: &'a NetnsTable,
}

impl<'a> Ranges<'a> {
    /// The ranges of the namespaces in `netns`, `default` for the others.
    pub fn new(default: PortRange, netns: &'a NetnsTable) -> Self {
        Ranges { default, netns }
    }

    /// The range of namespace `id`.
    pub fn of(&self, id: NetnsId) -> PortRange {
        self.netns.ports(id, self.default)
    }
}

impl<'de> serde::Deserialize<'de> for NetnsChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_parse_and_print_back() {
        for (text, want) in [
            ("all", NetnsChoice::All),
            ("host", NetnsChoice::Host),
            ("812", NetnsChoice::Pid(812)),
            ("blue", NetnsChoice::Named("blue".into())),
            ("shop/web-0", NetnsChoice::Named("shop/web-0".into())),
        ] {
            let got: NetnsChoice = text.parse().unwrap();
            assert_eq!(got, want);
            assert_eq!(got.to_string(), text);
        }
        for bad in ["", "../etc", "a/b/c", "/run/netns/x"] {
            assert!(bad.parse::<NetnsChoice>().is_err(), "{bad}");
        }
    }

    fn ns(id: NetnsId, kind: NetnsKind, name: &str) -> Netns {
        Netns {
            id,
            inode: 4026531840 + u64::from(id),
            kind,
            name: name.into(),
            pid: None,
            ports: None,
        }
    }

    #[test]
    fn a_table_finds_by_id_and_name_and_says_where() {
        let t = NetnsTable::new(vec![
            ns(7, NetnsKind::Named, "blue"),
            ns(0, NetnsKind::Host, "host"),
            ns(3, NetnsKind::Container { runtime: "docker" }, "orders-api"),
        ]);
        assert_eq!(t.name(3), Some("orders-api"));
        assert_eq!(t.name(7), Some("blue"));
        assert_eq!(t.name(1), None);
        assert_eq!(t.by_name("blue").map(|n| n.id), Some(7));
        assert_eq!(t.get(0).unwrap().place(), "host");
        assert_eq!(t.get(3).unwrap().place(), "container orders-api");
        assert_eq!(t.get(7).unwrap().place(), "netns blue");
        assert_eq!(t.iter().map(|n| n.id).collect::<Vec<_>>(), [0, 3, 7]);
        assert!(t.several());
        assert!(!NetnsTable::default().several());
    }
}
