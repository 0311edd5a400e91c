//! What the package ships for operators: the systemd unit's privileges are exactly what
//! `serve` needs to see other users' owners (run as nobody with only the unit's ambient
//! capabilities, through setpriv), and its hardening is in place.

mod common;

use std::net::TcpListener;
use std::process::Command;

use common::live::Served;
use common::*;
use lingertop::model::TcpState;

const UNIT: &str = include_str!("../packaging/systemd/lingertop.service");

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
    Served::start_with(cmd, &["--interval", "200ms", "--set", "serve.top-n=10000"])
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
