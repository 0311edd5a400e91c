//! lingertop against software nobody here wrote, used as operators use it: Debian's nginx
//! under `ab` and `wrk`, clients that leak (bash's `/dev/tcp`, python's `http.client`), and
//! a real Prometheus server scraping `lingertop serve`. Everything runs inside a network
//! namespace this test creates (deleted, with every process in it, on every exit path), so
//! the load stays off the host's table, and `ss` run inside it is the oracle.
//!
//! Needs root (to make the namespace) and the programs (`apt-get install nginx
//! apache2-utils wrk prometheus`, as `.ci/run` does); skips, saying which, without them.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::live::Served;
use common::netns::{Netns, SsRow, privileged, wait_until};
use common::*;
use serde_json::Value;

/// nginx's port inside the namespace (nothing else listens there).
const PORT: u16 = 8080;

/// The programs this test drives, or the name of the first one missing.
fn tools(test: &str, want: &[&str]) -> bool {
    for t in want {
        let found = std::env::var_os("PATH").is_some_and(|paths| {
            std::env::split_paths(&paths).any(|d| d.join(t).is_file())
                || Path::new("/usr/sbin").join(t).is_file()
        });
        if !found {
            eprintln!(
                "SKIPPED {test}: `{t}` is not installed (apt-get install nginx apache2-utils wrk prometheus; CI does)"
            );
            return false;
        }
    }
    true
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("lingertop-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child killed (and reaped) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// nginx in the foreground (`daemon off`) inside `ns`, answering every request with a short
/// body and closing idle keep-alive connections after one second (the server side of a
/// client that leaks: the client is left in CLOSE_WAIT).
fn nginx(ns: &Netns, dir: &Path) -> Running {
    let conf = dir.join("nginx.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             keepalive_timeout 1s;\n  server {{ listen 127.0.0.1:{PORT}; location / {{ return 200 \"ok\\n\"; }} }}\n}}\n"
        ),
    )
    .unwrap();
    let child = ns
        .command("nginx")
        .args(["-p", &d.to_string(), "-c", &conf.display().to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("start nginx");
    let nginx = Running(child);
    wait_until("nginx listens in the namespace", || {
        !ns.ss(&format!("state listening sport = :{PORT}"))
            .is_empty()
    });
    nginx
}

fn run_ok(mut cmd: Command, what: &str) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Per-state counts of every TCP socket in the namespace.
fn counts(rows: &[SsRow]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in rows {
        *m.entry(r.state.clone()).or_default() += 1;
    }
    m
}

/// lingertop's counts, without the states it counts as zero.
fn counts_of(json: &Value) -> BTreeMap<String, u64> {
    json["counts"]
        .as_object()
        .expect("counts")
        .iter()
        .filter_map(|(k, v)| Some((k.clone(), v.as_u64()?)).filter(|(_, n)| *n > 0))
        .collect()
}

/// `lingertop snapshot --format json ARGS` run inside `ns` (reading its own namespace), as
/// root or, with `nobody`, as the unprivileged user.
fn snapshot_in(ns: &Netns, nobody: bool, args: &[&str]) -> (i32, Value, String) {
    let bin = env!("CARGO_BIN_EXE_lingertop");
    let mut cmd = if nobody {
        let mut c = ns.command("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", bin]);
        c
    } else {
        ns.command(bin)
    };
    cmd.args([
        "--set",
        "collector.netns=host",
        "snapshot",
        "--format",
        "json",
    ])
    .args(args)
    .env("XDG_CONFIG_HOME", "/nonexistent");
    let out = cmd.output().expect("run lingertop");
    let json = parse(&out);
    (
        out.status.code().unwrap_or(-1),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads the snapshot and `ss` back to back until they agree on every state's count (a
/// socket may change state between the two reads: FIN_WAIT_2 ones time out, for instance),
/// at most five times; returns the last pair.
fn agreeing(ns: &Netns, nobody: bool) -> (Value, Vec<SsRow>) {
    let mut last = None;
    for _ in 0..5 {
        let (code, json, stderr) = snapshot_in(ns, nobody, &[]);
        assert_eq!(code, 0, "snapshot failed: {stderr}");
        let rows = ns.ss("");
        if counts_of(&json) == counts(&rows) {
            return (json, rows);
        }
        last = Some((json, rows));
    }
    let (json, rows) = last.unwrap();
    panic!(
        "lingertop's counts {:?} never matched ss's {:?}",
        counts_of(&json),
        counts(&rows)
    );
}

/// The CLOSE_WAIT rows of a snapshot as (pid, process name).
fn close_wait_owners(json: &Value) -> Vec<(Option<u64>, Option<String>)> {
    let mut v: Vec<_> = json["connections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == "CLOSE_WAIT")
        .map(|c| (c["pid"].as_u64(), c["process"].as_str().map(str::to_string)))
        .collect();
    v.sort();
    v
}

/// The name `ss -p` gives the process of `pid` on a line that shows it.
fn ss_name_of(ns: &Netns, pid: u32) -> String {
    let out = run_ok(
        {
            let mut c = ns.command("ss");
            c.args(["-tanpH", "state", "close-wait"]);
            c
        },
        "ss -tanpH state close-wait",
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let key = format!(",pid={pid},");
    let line = text
        .lines()
        .find(|l| l.contains(&key))
        .unwrap_or_else(|| panic!("ss shows no CLOSE_WAIT held by pid {pid}:\n{text}"));
    let start = line.find("((\"").expect("users:((\"name\"") + 3;
    line[start..].split('"').next().unwrap().to_string()
}

/// Two clients that leak, as they are found in the wild: bash holding a `/dev/tcp` socket
/// while it waits on something else, and python's `http.client` keeping a connection the
/// server has since closed. nginx closes both after its keep-alive second, so each client
/// is left in CLOSE_WAIT for as long as it lives.
fn leaking_clients(ns: &Netns) -> (Running, Running) {
    let bash = ns
        .command("bash")
        .args([
            "-c",
            &format!(
                "exec 3<>/dev/tcp/127.0.0.1/{PORT}; printf 'GET / HTTP/1.1\\r\\nHost: t\\r\\n\\r\\n' >&3; sleep 120 3>&-"
            ),
        ])
        .spawn()
        .expect("bash");
    let python = ns
        .command("python3")
        .args([
            "-c",
            &format!(
                "import http.client, time\n\
                 c = http.client.HTTPConnection('127.0.0.1', {PORT})\n\
                 c.request('GET', '/')\n\
                 c.getresponse().read()\n\
                 time.sleep(120)\n"
            ),
        ])
        .spawn()
        .expect("python3");
    (Running(bash), Running(python))
}

#[test]
fn nginx_under_ab_and_wrk_then_leaking_clients_agree_with_ss_as_root_and_as_nobody() {
    let test = "nginx_under_ab_and_wrk_then_leaking_clients_agree_with_ss_as_root_and_as_nobody";
    if !privileged(test) || !tools(test, &["nginx", "ab", "wrk", "python3", "bash", "setpriv"]) {
        return;
    }
    let scratch = Scratch::new("nginx");
    let ns = Netns::new("real").expect("ip netns add");
    let _nginx = nginx(&ns, &scratch.0);
    let url = format!("http://127.0.0.1:{PORT}/");

    // ab without keep-alive: nginx closes each connection first, so its side piles up
    // TIME_WAIT; wrk with keep-alive, whose connections close when it stops.
    let ab = run_ok(
        {
            let mut c = ns.command("ab");
            c.args(["-q", "-n", "3000", "-c", "16", &url]);
            c
        },
        "ab",
    );
    let ab_out = String::from_utf8_lossy(&ab.stdout);
    assert!(
        ab_out.contains("Failed requests:        0"),
        "ab saw failures:\n{ab_out}"
    );
    run_ok(
        {
            let mut c = ns.command("wrk");
            c.args(["-t1", "-c20", "-d2s", &url]);
            c
        },
        "wrk",
    );

    let started = Instant::now();
    let (bash, python) = leaking_clients(&ns);
    wait_until("both clients are left in CLOSE_WAIT", || {
        ns.ss("state close-wait").len() == 2
    });
    // Let the leak age, so its age (from the kernel's clocks) can be checked.
    std::thread::sleep(Duration::from_secs(2));

    // As root: every state's count as ss gives it; the two CLOSE_WAIT held by the clients
    // ss names, with the names ss gives them.
    let (json, rows) = agreeing(&ns, false);
    eprintln!("as root: lingertop and ss agree: {:?}", counts(&rows));
    let tw = counts(&rows).get("TIME_WAIT").copied().unwrap_or(0);
    assert!(tw >= 3000, "ab's 3000 closes left {tw} TIME_WAIT");
    let want = {
        let mut v = vec![
            (Some(bash.0.id() as u64), Some(ss_name_of(&ns, bash.0.id()))),
            (
                Some(python.0.id() as u64),
                Some(ss_name_of(&ns, python.0.id())),
            ),
        ];
        v.sort();
        v
    };
    assert_eq!(close_wait_owners(&json), want);
    for c in json["connections"].as_array().unwrap() {
        if c["state"] != "CLOSE_WAIT" {
            continue;
        }
        let age = c["state_age_secs"].as_f64().expect("a CLOSE_WAIT age");
        assert_eq!(c["state_age_from"], "kernel", "{c}");
        assert!(
            age >= 1.5 && age <= started.elapsed().as_secs_f64() + 0.5,
            "CLOSE_WAIT age {age} s, the client started {:?} ago",
            started.elapsed()
        );
    }

    // One poll is enough for the leak alert: exit status 2, the process named.
    let (code, json, _) = snapshot_in(
        &ns,
        false,
        &[
            "--state",
            "close-wait",
            "--set",
            "alerts.close-wait.min-age=1s",
            "--fail-on",
            "warning",
        ],
    );
    assert_eq!(
        code, 2,
        "a 2-socket leak older than min-age must fail: {json}"
    );
    let text = json["alerts"].to_string();
    assert!(
        text.contains("CLOSE_WAIT") && text.contains(&ss_name_of(&ns, python.0.id())),
        "{text}"
    );

    // As nobody: the same counts; the owners (root's processes) unknown, and said so.
    let (json, rows) = agreeing(&ns, true);
    eprintln!("as nobody: lingertop and ss agree: {:?}", counts(&rows));
    assert!(
        close_wait_owners(&json)
            .iter()
            .all(|(pid, _)| pid.is_none()),
        "nobody cannot see root's descriptors: {}",
        json["connections"]
    );
    assert_eq!(json["process_info"], "partial", "{json}");
}

/// One instant query to Prometheus's HTTP API; the value of its first sample.
fn prom_query(port: u16, query: &str) -> Option<f64> {
    let out = Command::new("curl")
        .args(["-fsS", "--max-time", "2", "-G"])
        .arg(format!("http://127.0.0.1:{port}/api/v1/query"))
        .args(["--data-urlencode", &format!("query={query}")])
        .output()
        .ok()?;
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn a_real_prometheus_scrapes_serve_and_sees_the_leak() {
    let test = "a_real_prometheus_scrapes_serve_and_sees_the_leak";
    if !privileged(test) || !tools(test, &["nginx", "prometheus", "curl", "python3", "bash"]) {
        return;
    }
    let scratch = Scratch::new("prom");
    let ns = Netns::new("prom").expect("ip netns add");
    let _nginx = nginx(&ns, &scratch.0);
    let _clients = leaking_clients(&ns);
    wait_until("both clients are left in CLOSE_WAIT", || {
        ns.ss("state close-wait").len() == 2
    });

    // serve on the host's loopback, reading the test's namespace by name.
    let served = Served::start_from(
        {
            let mut c = lingertop();
            c.args(["--set", &format!("collector.netns={}", ns.name)]);
            c
        },
        &["--interval", "500ms"],
    );
    // A port nothing listens on at this moment.
    let prom_port = listener(V4).local_addr().unwrap().port();
    let target = served.addr.to_string();
    let conf = scratch.0.join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: lingertop\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let _prom = Running(
        Command::new("prometheus")
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                scratch.0.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = (None, None);
    while Instant::now() < deadline {
        seen = (
            prom_query(prom_port, "up{job=\"lingertop\"}"),
            prom_query(
                prom_port,
                "sum(lingertop_close_wait_connections{job=\"lingertop\"})",
            ),
        );
        if seen == (Some(1.0), Some(2.0)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        seen,
        (Some(1.0), Some(2.0)),
        "Prometheus must scrape serve (up = 1) and see the two leaked CLOSE_WAIT"
    );
    // The oldest CLOSE_WAIT's age, as stored by Prometheus, is a kernel age already.
    let age = prom_query(
        prom_port,
        "max(lingertop_close_wait_oldest_age_seconds{job=\"lingertop\"})",
    )
    .expect("the oldest CLOSE_WAIT age");
    assert!(age > 0.0, "oldest CLOSE_WAIT age {age}");
}
