//! Which container, pod or machine a process runs in, from its cgroup path, and the name the
//! runtime gave it where the runtime's state files are readable: what names a network
//! namespace for a person. Container runtimes put each container in a cgroup of their own
//! and spell its id into the path, on cgroup v1 and v2 alike:
//!
//! | runtime | cgroup v2 / systemd driver | cgroupfs driver (v1 or v2) |
//! |---|---|---|
//! | Docker | `…/docker-<id>.scope` | `/docker/<id>` |
//! | Podman | `…/libpod-<id>.scope` | `/libpod_parent/libpod-<id>` |
//! | containerd (CRI) | `…/cri-containerd-<id>.scope` | under `kubepods` |
//! | CRI-O | `…/crio-<id>.scope` | under `kubepods` |
//! | Kubernetes | `…/kubepods-<qos>-pod<uid_with_underscores>.slice/…` | `/kubepods/<qos>/pod<uid>/<id>` |
//! | systemd-nspawn | `/machine.slice/machine-<escaped name>.scope` | |
//! | LXC | `/lxc.payload.<name>` | `/lxc/<name>` |

use std::path::Path;

/// What a cgroup path says a process runs in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Workload {
    /// A container, by runtime and full id.
    Container { runtime: &'static str, id: String },
    /// A Kubernetes pod, by uid (dashes restored); its containers share its namespace.
    Pod { uid: String },
    /// A systemd-nspawn machine, by name (unescaped).
    Machine { name: String },
}

/// The workload named by the text of `/proc/PID/cgroup`: the unified (v2) line first, then
/// the v1 hierarchies; a pod wins over the container inside it, as the pod owns the
/// network namespace.
pub fn from_proc_cgroup(text: &str) -> Option<Workload> {
    let mut lines: Vec<&str> = text.lines().collect();
    // "0::/path" is the unified hierarchy; put it first.
    lines.sort_by_key(|l| !l.starts_with("0::"));
    lines
        .into_iter()
        .filter_map(|l| l.splitn(3, ':').nth(2))
        .find_map(from_path)
}

/// The workload a single cgroup path names.
pub fn from_path(path: &str) -> Option<Workload> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if let Some(uid) = parts.iter().find_map(|p| pod_uid(p, &parts)) {
        return Some(Workload::Pod { uid });
    }
    let mut parent = "";
    let mut found = None;
    for part in &parts {
        if let Some(w) = container(part, parent) {
            found = Some(w);
        }
        parent = part;
    }
    found
}

/// `kubepods-burstable-pod1b2c_3d.slice` (systemd driver: dashes of the uid written as
/// underscores) or `pod1b2c-3d` under a `kubepods` path (cgroupfs driver).
fn pod_uid(part: &str, all: &[&str]) -> Option<String> {
    if let Some(rest) = part
        .strip_prefix("kubepods-")
        .and_then(|p| p.strip_suffix(".slice"))
    {
        let (_, uid) = rest.rsplit_once("pod")?;
        let uid = uid.replace('_', "-");
        return is_uid(&uid).then_some(uid);
    }
    let uid = part.strip_prefix("pod")?;
    (all.first().is_some_and(|p| p.starts_with("kubepods")) && is_uid(uid)).then(|| uid.to_string())
}

fn is_uid(s: &str) -> bool {
    s.len() >= 8 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn is_id(s: &str) -> bool {
    s.len() >= 12 && s.chars().all(|c| c.is_ascii_hexdigit())
}

fn container(part: &str, parent: &str) -> Option<Workload> {
    let scoped = |prefix: &str| {
        part.strip_prefix(prefix)
            .and_then(|p| p.strip_suffix(".scope"))
            .filter(|id| is_id(id))
    };
    let c = |runtime, id: &str| Workload::Container {
        runtime,
        id: id.to_string(),
    };
    if let Some(id) = scoped("docker-") {
        return Some(c("docker", id));
    }
    if let Some(id) = scoped("libpod-") {
        return Some(c("podman", id));
    }
    if let Some(id) = scoped("cri-containerd-") {
        return Some(c("containerd", id));
    }
    if let Some(id) = scoped("crio-") {
        return Some(c("cri-o", id));
    }
    if parent == "docker" && is_id(part) {
        return Some(c("docker", part));
    }
    if parent == "libpod_parent" {
        if let Some(id) = part.strip_prefix("libpod-").filter(|id| is_id(id)) {
            return Some(c("podman", id));
        }
    }
    if let Some(name) = part.strip_prefix("lxc.payload.") {
        return Some(c("lxc", name));
    }
    if parent == "lxc" && !part.is_empty() {
        return Some(c("lxc", part));
    }
    if parent == "machine.slice" {
        if let Some(name) = part
            .strip_prefix("machine-")
            .and_then(|p| p.strip_suffix(".scope"))
        {
            return Some(Workload::Machine {
                name: unescape_unit(name),
            });
        }
    }
    None
}

/// systemd's unit name escaping: `\x2d` for `-` and so on.
fn unescape_unit(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        let hex = rest.get(i + 2..i + 4);
        match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
            Some(b) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where the runtimes keep what names their containers.
#[derive(Clone, Debug)]
pub struct StateDirs {
    /// Docker's `containers/<id>/config.v2.json`.
    pub docker: &'static Path,
    /// Podman's (root) `overlay-containers/containers.json`.
    pub podman: &'static Path,
    /// The kubelet's `pods/<namespace>_<name>_<uid>` log directories.
    pub pod_logs: &'static Path,
}

impl Default for StateDirs {
    fn default() -> Self {
        StateDirs {
            docker: Path::new("/var/lib/docker/containers"),
            podman: Path::new("/var/lib/containers/storage/overlay-containers/containers.json"),
            pod_logs: Path::new("/var/log/pods"),
        }
    }
}

impl Workload {
    /// The name a person knows this by: the runtime's own name where its state files say
    /// it (Docker's container name, the pod's `namespace/name`), else the short id.
    pub fn name(&self, dirs: &StateDirs) -> String {
        match self {
            Workload::Container { runtime, id } => {
                let known = match *runtime {
                    "docker" => docker_name(dirs.docker, id),
                    "podman" => podman_name(dirs.podman, id),
                    _ => None,
                };
                known.unwrap_or_else(|| id.chars().take(12).collect())
            }
            Workload::Pod { uid } => pod_name(dirs.pod_logs, uid)
                .unwrap_or_else(|| format!("pod-{}", uid.chars().take(8).collect::<String>())),
            Workload::Machine { name } => name.clone(),
        }
    }
}

fn docker_name(dir: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(id).join("config.v2.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = v.get("Name")?.as_str()?.trim_start_matches('/');
    (!name.is_empty()).then(|| name.to_string())
}

fn podman_name(file: &Path, id: &str) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v.as_array()?
        .iter()
        .find(|c| c.get("id").and_then(|i| i.as_str()) == Some(id))?
        .get("names")?
        .as_array()?
        .first()?
        .as_str()
        .map(str::to_string)
}

fn pod_name(dir: &Path, uid: &str) -> Option<String> {
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().into_string().ok()?;
        let rest = name.strip_suffix(uid)?.strip_suffix('_')?;
        let (namespace, pod) = rest.split_once('_')?;
        Some(format!("{namespace}/{pod}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f2a9c1b2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    fn container(runtime: &'static str, id: &str) -> Option<Workload> {
        Some(Workload::Container {
            runtime,
            id: id.to_string(),
        })
    }

    #[test]
    fn container_runtimes_are_recognised_on_both_cgroup_versions() {
        let cases = [
            (
                format!("0::/system.slice/docker-{ID}.scope"),
                container("docker", ID),
            ),
            (
                format!("12:memory:/docker/{ID}\n0::/"),
                container("docker", ID),
            ),
            (
                format!("0::/machine.slice/libpod-{ID}.scope/container"),
                container("podman", ID),
            ),
            (
                format!("5:pids:/libpod_parent/libpod-{ID}"),
                container("podman", ID),
            ),
            (
                format!("0::/system.slice/crio-{ID}.scope"),
                container("cri-o", ID),
            ),
            (
                "0::/lxc.payload.web1/init.scope".to_string(),
                container("lxc", "web1"),
            ),
            (
                "0::/machine.slice/machine-build\\x2dbox.scope/payload".to_string(),
                Some(Workload::Machine {
                    name: "build-box".into(),
                }),
            ),
            (
                format!(
                    "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f90a.slice/cri-containerd-{ID}.scope"
                ),
                Some(Workload::Pod {
                    uid: "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f90a".into(),
                }),
            ),
            (
                format!(
                    "4:memory:/kubepods/besteffort/pod1b2c3d4e-5f60-7182-93a4-b5c6d7e8f90a/{ID}"
                ),
                Some(Workload::Pod {
                    uid: "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f90a".into(),
                }),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(from_proc_cgroup(&text), want, "{text}");
        }
    }

    #[test]
    fn ordinary_cgroups_name_no_workload() {
        for text in [
            "0::/",
            "0::/user.slice/user-1000.slice/session-2.scope",
            "0::/system.slice/docker.service",
            // A hex id under some other parent is not a container.
            "4:memory:/process_api/dd0d866a181a91df54e19f18c38cba61\n0::/",
            "0::/machine.slice/libpod-conmon-3f2a9c1b2d4e.scope",
            "0::/system.slice/docker-notanid.scope",
            "0::/kubepods.slice/kubepods-besteffort.slice",
        ] {
            assert_eq!(from_proc_cgroup(text), None, "{text}");
        }
    }

    #[test]
    fn the_unified_line_wins_over_v1() {
        let other = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
        let text = format!("3:cpu:/docker/{other}\n0::/system.slice/docker-{ID}.scope");
        assert_eq!(from_proc_cgroup(&text), container("docker", ID));
    }

    #[test]
    fn names_come_from_the_runtimes_state_where_readable() {
        let dir = tempfile::tempdir().unwrap();
        let docker = dir.path().join("containers");
        std::fs::create_dir_all(docker.join(ID)).unwrap();
        std::fs::write(
            docker.join(ID).join("config.v2.json"),
            r#"{"ID":"x","Name":"/orders-api","State":{}}"#,
        )
        .unwrap();
        let podman = dir.path().join("containers.json");
        std::fs::write(&podman, format!(r#"[{{"id":"{ID}","names":["billing"]}}]"#)).unwrap();
        let pods = dir.path().join("pods");
        let uid = "1b2c3d4e-5f60-7182-93a4-b5c6d7e8f90a";
        std::fs::create_dir_all(pods.join(format!("shop_web-0_{uid}"))).unwrap();
        let leak = |p: std::path::PathBuf| -> &'static Path { Box::leak(p.into_boxed_path()) };
        let dirs = StateDirs {
            docker: leak(docker),
            podman: leak(podman),
            pod_logs: leak(pods),
        };
        let d = |runtime| Workload::Container {
            runtime,
            id: ID.to_string(),
        };
        assert_eq!(d("docker").name(&dirs), "orders-api");
        assert_eq!(d("podman").name(&dirs), "billing");
        assert_eq!(d("containerd").name(&dirs), "3f2a9c1b2d4e");
        let pod = |uid: &str| Workload::Pod { uid: uid.into() };
        assert_eq!(pod(uid).name(&dirs), "shop/web-0");
        assert_eq!(pod("99999999-0000").name(&dirs), "pod-99999999");
        // Unreadable state: the short id.
        assert_eq!(d("docker").name(&StateDirs::default()), "3f2a9c1b2d4e");
    }
}
