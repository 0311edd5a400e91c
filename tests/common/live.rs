//! Helpers for the live modes: the real `serve` and `watch` binaries as children, their
//! lines read with deadlines, stopped by signal, and scrapes parsed into samples.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::lingertop;

/// Now, in seconds since the Unix epoch (as `lingertop_last_poll_timestamp_seconds`).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Reads `r` line by line on a thread; lines arrive on the returned channel.
pub fn line_reader(r: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The next line, or a failure naming `what` after `within`.
pub fn next_line(rx: &mpsc::Receiver<String>, within: Duration, what: &str) -> String {
    rx.recv_timeout(within)
        .unwrap_or_else(|e| panic!("no line {what} within {within:?}: {e}"))
}

/// Sends `sig` to a child we started.
pub fn signal(child: &Child, sig: libc::c_int) {
    // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({}, {sig})", child.id());
}

/// Waits (at most `within`) for a child to exit, killing it if it does not.
pub fn wait_exit(child: &mut Child, within: Duration) -> ExitStatus {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("lingertop did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `lingertop serve` on a free loopback port; stopped with SIGTERM when dropped.
pub struct Served {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: mpsc::Receiver<String>,
    agent: ureq::Agent,
}

impl Served {
    /// Starts `lingertop serve --listen 127.0.0.1:0 ARGS` and returns once it says where
    /// it serves (after its first poll).
    pub fn start(args: &[&str]) -> Served {
        Served::start_from(lingertop(), args)
    }

    /// [`Served::start`] from a command the caller prepared (limits, environment).
    pub fn start_from(mut cmd: std::process::Command, args: &[&str]) -> Served {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lingertop serve");
        let stderr = line_reader(child.stderr.take().expect("stderr"));
        // Notes (a namespace it cannot enter, say) may come before the line that says
        // where it serves.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let line = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = next_line(&stderr, left, "from serve on stderr saying where it serves");
            if line.contains("http://") {
                break line;
            }
        };
        let addr = line
            .split("http://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(5)))
            .build()
            .into();
        Served {
            child,
            addr,
            stderr,
            agent,
        }
    }

    /// GET `path` with optional `Accept`: (status, content type, body).
    pub fn get(&self, path: &str, accept: Option<&str>) -> (u16, String, String) {
        let mut req = self.agent.get(format!("http://{}{path}", self.addr));
        if let Some(a) = accept {
            req = req.header("Accept", a);
        }
        let mut resp = req.call().unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = resp.body_mut().read_to_string().expect("body");
        (status, ctype, body)
    }

    /// Scrapes /metrics in the classic text format.
    pub fn scrape(&self) -> Scrape {
        let (status, _, body) = self.get("/metrics", None);
        assert_eq!(status, 200, "{body}");
        Scrape::parse(&body)
    }

    /// Scrapes until `ok` holds (at most 15 s) and returns that scrape.
    pub fn scrape_until(&self, what: &str, ok: impl Fn(&Scrape) -> bool) -> Scrape {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let s = self.scrape();
            if ok(&s) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "never saw {what}; last scrape:\n{}",
                s.text
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it with `sig` and returns its exit status.
    pub fn stop(mut self, sig: libc::c_int) -> ExitStatus {
        signal(&self.child, sig);
        wait_exit(&mut self.child, Duration::from_secs(10))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One sample of a scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// A parsed scrape in the classic text format.
pub struct Scrape {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Scrape {
    pub fn parse(text: &str) -> Scrape {
        let samples = text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').expect("sample has a value");
                let (name, labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                    None => (series, BTreeMap::new()),
                };
                Sample {
                    name: name.to_string(),
                    labels,
                    value: value.parse().expect("numeric value"),
                }
            })
            .collect();
        Scrape {
            text: text.to_string(),
            samples,
        }
    }

    /// Every sample of metric `name`.
    pub fn all(&self, name: &str) -> Vec<&Sample> {
        self.samples.iter().filter(|s| s.name == name).collect()
    }

    /// The value of `name` with exactly these labels, if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == want)
            .map(|s| s.value)
    }

    /// The sum of every sample of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.all(name)
            .into_iter()
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
            .sum()
    }
}

/// `a="1",b="x"` (values without quotes or commas inside, as lingertop's are).
fn parse_labels(s: &str) -> BTreeMap<String, String> {
    s.split("\",")
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once("=\"").expect("label");
            (k.to_string(), v.trim_end_matches('"').to_string())
        })
        .collect()
}

/// A running `lingertop watch ARGS` with stdout and stderr read line by line.
pub struct Watched {
    pub child: Child,
    pub stdout: mpsc::Receiver<String>,
    pub stderr: mpsc::Receiver<String>,
}

impl Watched {
    fn spawn(args: &[&str]) -> Child {
        lingertop()
            .arg("watch")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn lingertop watch")
    }

    pub fn start(args: &[&str]) -> Watched {
        let mut child = Watched::spawn(args);
        let stdout = line_reader(child.stdout.take().expect("stdout"));
        let stderr = line_reader(child.stderr.take().expect("stderr"));
        Watched {
            child,
            stdout,
            stderr,
        }
    }

    /// Starts it with stdout as a raw pipe the test closes itself (stderr stays piped in
    /// the child, for reading after it exits).
    pub fn start_raw(args: &[&str]) -> (Child, ChildStdout) {
        let mut child = Watched::spawn(args);
        let out = child.stdout.take().expect("stdout");
        (child, out)
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
