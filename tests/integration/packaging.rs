//! What the package ships for operators: the systemd unit's privileges are exactly what
//! `serve` needs to see other users' owners (run as nobody with only the unit's ambient
//! capabilities, through setpriv), and its hardening is in place; the Kubernetes DaemonSet
//! sees the node, listens on the node's address and holds the same capabilities.

use std::net::TcpListener;
use std::process::Command;

use clap::Parser;
use serde::Deserialize;
use serde_yaml_ng::Value as Yaml;

use crate::common::live::Served;
use crate::common::*;
use lingertop::model::TcpState;

const UNIT: &str = include_str!("../../packaging/systemd/lingertop.service");

/// Every value of `key=` in the unit's [Service] section, in order.
fn values<'a>(unit: &'a str, key: &str) -> Vec<&'a str> {
    let mut in_service = false;
    let mut out = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('[') {
            in_service = line == "[Service]";
        } else if in_service
            && let Some(v) = line.strip_prefix(key).and_then(|r| r.strip_prefix('='))
        {
            out.push(v);
        }
    }
    out
}

fn one<'a>(unit: &'a str, key: &str) -> &'a str {
    let v = values(unit, key);
    assert_eq!(v.len(), 1, "{key}= once in the unit: {v:?}");
    v[0]
}

/// The unit's ambient capabilities, as setpriv spells them (`sys_ptrace`).
fn unit_caps() -> Vec<String> {
    one(UNIT, "AmbientCapabilities")
        .split_whitespace()
        .map(|c| {
            c.strip_prefix("CAP_")
                .unwrap_or_else(|| panic!("{c} is not a capability name"))
                .to_ascii_lowercase()
        })
        .collect()
}

#[test]
fn the_unit_is_hardened_and_bounded_to_its_ambient_capabilities() {
    let mut ambient: Vec<&str> = one(UNIT, "AmbientCapabilities")
        .split_whitespace()
        .collect();
    let mut bounding: Vec<&str> = one(UNIT, "CapabilityBoundingSet")
        .split_whitespace()
        .collect();
    ambient.sort_unstable();
    bounding.sort_unstable();
    assert_eq!(ambient, bounding, "no capability beyond the ones it uses");
    assert_eq!(ambient, ["CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"]);
    for (key, want) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("RestrictNamespaces", "yes"),
        (
            "RestrictAddressFamilies",
            "AF_INET AF_INET6 AF_NETLINK AF_UNIX",
        ),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(one(UNIT, key), want, "{key}");
    }
    assert_eq!(
        values(UNIT, "SystemCallFilter"),
        ["@system-service", "~@privileged @resources"]
    );
    // The owners are other users' processes: /proc must stay whole.
    assert!(values(UNIT, "ProtectProc").is_empty() && values(UNIT, "ProcSubset").is_empty());
    // It reads the config the package installs, and is not started by the install.
    assert!(
        one(UNIT, "ExecStart")
            .starts_with("/usr/bin/lingertop --config /etc/lingertop/config.toml serve")
    );
}

/// `lingertop serve` as nobody with exactly these ambient capabilities (and the same
/// bounding set, no new privileges), as the unit runs it.
fn serve_with_caps(caps: &[String]) -> Served {
    let set: String = caps.iter().map(|c| format!(",+{c}")).collect();
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--no-new-privs",
    ])
    .arg(format!("--inh-caps=-all{set}"))
    .arg(format!("--ambient-caps=-all{set}"))
    .arg(format!("--bounding-set=-all{set}"))
    .arg(env!("CARGO_BIN_EXE_lingertop"))
    .env(
        "XDG_CONFIG_HOME",
        std::env::temp_dir().join("lingertop-no-config"),
    );
    Served::start_from(cmd, &["--interval", "200ms", "--set", "serve.top-n=10000"])
}

#[test]
fn serve_with_the_units_capabilities_sees_other_users_owners() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIP: needs root (to hold root's sockets and run serve as nobody)");
        return;
    }
    // Root's CLOSE_WAIT sockets, held by this test process: another user's to nobody.
    let l: TcpListener = listener(V4);
    let held: Vec<_> = (0..2)
        .map(|_| {
            let (c, s) = pair(&l);
            let (client, server) = addr_of(&c);
            drop(c);
            wait_for_state(server, client, TcpState::CloseWait);
            s
        })
        .collect();
    let me = std::process::id().to_string();
    let comm = my_comm();
    let labels = [("pid", me.as_str()), ("process", comm.as_str())];

    let caps = unit_caps();
    let served = serve_with_caps(&caps);
    served.scrape_until("root's CLOSE_WAIT attributed to this test", |s| {
        s.get("lingertop_close_wait_connections", &labels) == Some(2.0)
    });
    drop(served);

    // Each capability is needed: without either one, the same sockets show no owner.
    for dropped in &caps {
        let fewer: Vec<String> = caps.iter().filter(|c| c != &dropped).cloned().collect();
        let served = serve_with_caps(&fewer);
        // Two polls, so a missing owner is not a poll that has not happened yet.
        let s = served.scrape_until("two polls", |s| {
            s.get("lingertop_polls_total", &[]) >= Some(2.0)
        });
        assert_eq!(
            s.get("lingertop_close_wait_connections", &labels),
            None,
            "without {dropped} root's sockets should show no owner:\n{}",
            s.text
        );
    }
    drop(held);
}

const DAEMONSET: &str = include_str!("../../deploy/lingertop-daemonset.yaml");
const PODMONITOR: &str = include_str!("../../deploy/lingertop-podmonitor.yaml");

/// Every document of a YAML stream.
fn documents(text: &str) -> Vec<Yaml> {
    serde_yaml_ng::Deserializer::from_str(text)
        .map(|d| Yaml::deserialize(d).expect("valid YAML"))
        .collect()
}

fn of_kind<'a>(docs: &'a [Yaml], kind: &str) -> &'a Yaml {
    let found: Vec<&Yaml> = docs.iter().filter(|d| d["kind"] == kind).collect();
    assert_eq!(found.len(), 1, "one {kind}");
    found[0]
}

fn strings(v: &Yaml) -> Vec<&str> {
    v.as_sequence()
        .unwrap_or_else(|| panic!("a list: {v:?}"))
        .iter()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

#[test]
fn the_daemonset_sees_the_node_listens_on_its_address_and_is_least_privilege() {
    let docs = documents(DAEMONSET);
    let ds = of_kind(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"];
    let spec = &pod["spec"];
    assert_eq!(spec["hostPID"], true, "owners need the node's processes");
    assert_eq!(spec["hostNetwork"], true, "the node's sockets");
    assert_eq!(spec["automountServiceAccountToken"], false);
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"],
        "the selector selects the template"
    );

    let containers = spec["containers"].as_sequence().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["privileged"], false);
    assert_eq!(strings(&sc["capabilities"]["drop"]), ["ALL"]);
    let mut add = strings(&sc["capabilities"]["add"]);
    add.sort_unstable();
    // The owners' capabilities are the unit's, spelled the Kubernetes way; SYS_ADMIN is
    // the namespaces'; nothing else.
    let mut want: Vec<String> = unit_caps().iter().map(|c| c.to_ascii_uppercase()).collect();
    want.push("SYS_ADMIN".to_string());
    want.sort_unstable();
    assert_eq!(add, want);
    for m in c["volumeMounts"].as_sequence().unwrap() {
        assert_eq!(m["readOnly"], true, "{m:?}");
    }

    // Listens on the node's address from the downward API, on the port it declares and
    // the scrape annotation names.
    let env = c["env"].as_sequence().unwrap();
    let host_ip = env
        .iter()
        .find(|e| e["name"] == "HOST_IP")
        .expect("HOST_IP");
    assert_eq!(
        host_ip["valueFrom"]["fieldRef"]["fieldPath"],
        "status.hostIP"
    );
    let args = strings(&c["args"]);
    let at = args
        .iter()
        .position(|a| *a == "--listen")
        .expect("--listen");
    assert_eq!(args[at + 1], "$(HOST_IP):9797");
    let ports = c["ports"].as_sequence().unwrap();
    let metrics = ports
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a metrics port");
    assert_eq!(metrics["containerPort"], 9797);
    let ann = &pod["metadata"]["annotations"];
    assert_eq!(ann["prometheus.io/scrape"], "true");
    assert_eq!(ann["prometheus.io/port"], "9797");
    assert_eq!(ann["prometheus.io/path"], "/metrics");
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(c[probe]["httpGet"]["path"], "/healthz", "{probe}");
        assert_eq!(c[probe]["httpGet"]["port"], "metrics", "{probe}");
    }

    // The real command line takes the args, as the kubelet expands them for a node.
    let expanded: Vec<String> = std::iter::once("lingertop".to_string())
        .chain(args.iter().map(|a| a.replace("$(HOST_IP)", "10.1.2.3")))
        .collect();
    let cli = lingertop::cli::Cli::try_parse_from(&expanded).expect("the manifest's args parse");
    match cli.command {
        Some(lingertop::cli::Command::Serve(s)) => {
            assert_eq!(s.listen, Some("10.1.2.3:9797".parse().unwrap()));
        }
        other => panic!("not serve: {other:?}"),
    }
    assert_eq!(
        cli.config.as_deref(),
        Some(std::path::Path::new("/etc/lingertop/config.toml"))
    );
    let mount = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .expect("the config mount");
    assert_eq!(mount["mountPath"], "/etc/lingertop");

    // And the config it mounts is one lingertop accepts.
    let cm = of_kind(&docs, "ConfigMap");
    let text = cm["data"]["config.toml"].as_str().expect("config.toml");
    let cfg = lingertop::config::parse(text, "the ConfigMap", &[]).expect("a valid config");
    assert_eq!(cfg.serve.top_n, 10);
}

#[test]
fn the_podmonitor_scrapes_the_daemonsets_pods() {
    let docs = documents(DAEMONSET);
    let pod = &of_kind(&docs, "DaemonSet")["spec"]["template"];
    let pm = &documents(PODMONITOR)[0];
    assert_eq!(pm["kind"], "PodMonitor");
    assert_eq!(
        pm["metadata"]["namespace"],
        of_kind(&docs, "DaemonSet")["metadata"]["namespace"]
    );
    let labels = pod["metadata"]["labels"].as_mapping().unwrap();
    for (k, v) in pm["spec"]["selector"]["matchLabels"].as_mapping().unwrap() {
        assert_eq!(labels.get(k), Some(v), "selects the pods by {k:?}");
    }
    let endpoint = &pm["spec"]["podMetricsEndpoints"][0];
    let port = endpoint["port"].as_str().unwrap();
    let c = &pod["spec"]["containers"][0];
    assert!(
        c["ports"]
            .as_sequence()
            .unwrap()
            .iter()
            .any(|p| p["name"] == port),
        "the pod has the port {port}"
    );
    assert_eq!(endpoint["path"], "/metrics");
}
