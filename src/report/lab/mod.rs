//! Headless output of the close lab: one trace, the `--all` table (observed beside
//! documented, deviations marked), and scenario summaries, as aligned text or JSON.

use std::io::{self, Write};
use std::time::Duration;

use serde::Serialize;

mod text;

pub use text::{TraceText, trace_text};

use self::text::trace_table;
use super::LabFormat;
use crate::lab::trace::{Call, Step, final_name};
use crate::lab::{
    Behaviour, End, Family, Scenario, ScenarioReport, SideStates, TimeWaitSide, Trace,
};
use crate::model::TcpState;
use crate::model::duration::human_duration;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// `0.1 ms`, `12 ms`, `2001 ms`.
fn fmt_ms(d: Duration) -> String {
    let v = d.as_secs_f64() * 1000.0;
    if v < 10.0 {
        format!("{v:.1} ms")
    } else {
        format!("{v:.0} ms")
    }
}

#[derive(Serialize)]
struct TupleJson {
    local: String,
    remote: String,
}

#[derive(Serialize)]
struct StepJson {
    /// Kernel state name, or `gone` once the kernel lists no such socket.
    state: &'static str,
    at_ms: f64,
    send_queue: u32,
}

#[derive(Serialize)]
struct CallJson<'a> {
    at_ms: f64,
    end: End,
    call: &'a str,
    result: &'static str,
    took_ms: f64,
    detail: Option<&'a str>,
}

/// The JSON of one trace; `lab --all` prints an array of them.
#[derive(Serialize)]
struct TraceJson<'a> {
    mode: &'static str,
    conn: u64,
    /// The end that was closed.
    end: End,
    /// The server end's behaviour during the action.
    behaviour: Behaviour,
    linger_secs: Option<u64>,
    closer: TupleJson,
    peer: TupleJson,
    /// `close()`, or `shutdown()` for a half-close.
    close_call: &'static str,
    close_result: &'static str,
    close_blocked_ms: f64,
    peer_read: String,
    peer_read_ms: f64,
    /// Whether the lab read on the peer's behalf (its behaviour never reads on its own).
    peer_read_probe: bool,
    /// When `peer_read` is `data`: how the peer's reading ended after it.
    peer_read_then: Option<String>,
    peer_bytes_after_close: u64,
    closer_read: Option<String>,
    bytes_queued: Option<u64>,
    closer_states: Vec<TcpState>,
    peer_states: Vec<TcpState>,
    closer_final: &'static str,
    peer_final: &'static str,
    closer_timeline: Vec<StepJson>,
    peer_timeline: Vec<StepJson>,
    time_wait: TimeWaitSide,
    settled: bool,
    duration_ms: f64,
    observer: &'static str,
    polls: u32,
    calls: Vec<CallJson<'a>>,
    documented: &'static str,
    documented_short: String,
    deviation: Option<&'a str>,
}

fn timeline(steps: &[Step]) -> Vec<StepJson> {
    steps
        .iter()
        .map(|s| StepJson {
            state: s.state.map_or("gone", TcpState::name),
            at_ms: ms(s.at),
            send_queue: s.send_queue,
        })
        .collect()
}

fn trace_json(t: &Trace) -> TraceJson<'_> {
    let (peer_local, peer_remote) = t.peer();
    TraceJson {
        mode: t.action.name(),
        conn: t.conn.number(),
        end: t.end,
        behaviour: t.behaviour,
        linger_secs: t.linger.map(|d| d.as_secs()),
        closer: TupleJson {
            local: t.closer.0.to_string(),
            remote: t.closer.1.to_string(),
        },
        peer: TupleJson {
            local: peer_local.to_string(),
            remote: peer_remote.to_string(),
        },
        close_call: t.documented.call,
        close_result: t.close_result.name(),
        close_blocked_ms: ms(t.close_blocked),
        peer_read: t.peer_read.outcome.name(),
        peer_read_ms: ms(t.peer_read.at),
        peer_read_probe: t.peer_read.probe,
        peer_read_then: t.peer_read.then.as_ref().map(|r| r.name()),
        peer_bytes_after_close: t.peer_read.bytes_after_close,
        closer_read: t.closer_read.as_ref().map(|r| r.name()),
        bytes_queued: t.bytes_queued,
        closer_states: t.closer_state_names(),
        peer_states: t.peer_state_names(),
        closer_final: final_name(&t.closer_states),
        peer_final: final_name(&t.peer_states),
        closer_timeline: timeline(&t.closer_states),
        peer_timeline: timeline(&t.peer_states),
        time_wait: t.time_wait,
        settled: t.settled,
        duration_ms: ms(t.duration),
        observer: t.observer,
        polls: t.polls,
        calls: t
            .calls
            .iter()
            .map(|c: &Call| CallJson {
                at_ms: ms(c.at),
                end: c.end,
                call: &c.call,
                result: c.result.name(),
                took_ms: ms(c.took),
                detail: c.detail.as_deref(),
            })
            .collect(),
        documented: t.documented.text,
        documented_short: t.documented.short(),
        deviation: t.deviation.as_deref(),
    }
}

/// `ESTABLISHED > FIN_WAIT_2 > TIME_WAIT`, with `> gone` when the socket vanished.
fn states_line(steps: &[Step]) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for s in steps {
        let name = s.state.map_or("gone", TcpState::name);
        if parts.last() != Some(&name) {
            parts.push(name);
        }
    }
    if parts.is_empty() {
        "unseen".to_string()
    } else {
        parts.join(" > ")
    }
}

fn json<T: Serialize>(v: &T, out: &mut dyn Write) -> io::Result<()> {
    crate::sanitize::json_to_writer_pretty(&mut *out, v).map_err(io::Error::from)?;
    writeln!(out)
}

/// Writes one trace.
pub fn write_trace(format: LabFormat, t: &Trace, out: &mut dyn Write) -> io::Result<()> {
    match format {
        LabFormat::Json => json(&trace_json(t), out)?,
        LabFormat::Table => trace_table(t, out)?,
    }
    out.flush()
}

/// Writes the `--all` result: a JSON array of traces, or one row per mode.
pub fn write_all(
    format: LabFormat,
    traces: &[Trace],
    family: Family,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        LabFormat::Json => {
            let all: Vec<TraceJson<'_>> = traces.iter().map(trace_json).collect();
            json(&all, out)?;
        }
        LabFormat::Table => all_table(traces, family, out)?,
    }
    out.flush()
}

fn all_table(traces: &[Trace], family: Family, out: &mut dyn Write) -> io::Result<()> {
    let linger = traces
        .iter()
        .find_map(|t| t.linger)
        .map_or(0, |d| d.as_secs());
    let observer = traces.first().map_or("-", |t| t.observer);
    writeln!(
        out,
        "lingertop lab --all: {} close modes over {}, SO_LINGER {linger} s; states by exact 4-tuple via {observer}, every 5 ms during the close",
        traces.len(),
        match family {
            Family::Ipv4 => "127.0.0.1",
            Family::Ipv6 => "[::1]",
        }
    )?;
    writeln!(out)?;
    let head = [
        "MODE",
        "PEER",
        "CLOSE",
        "BLOCKED",
        "PEER READ",
        "CLOSER STATES",
        "PEER STATES",
        "TIME_WAIT",
        "DOCUMENTED",
    ];
    let rows: Vec<[String; 9]> = traces
        .iter()
        .map(|t| {
            [
                format!(
                    "{} {}",
                    if t.deviation.is_some() { "!" } else { " " },
                    t.action
                ),
                t.behaviour.to_string(),
                t.close_result.name().to_string(),
                fmt_ms(t.close_blocked),
                t.peer_read.outcome.name(),
                states_line(&t.closer_states),
                states_line(&t.peer_states),
                t.time_wait.name().to_string(),
                t.documented.short(),
            ]
        })
        .collect();
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            if i == 3 {
                s.push_str(&format!("{c:>w$}  "));
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_string()
    };
    let mut header: Vec<&str> = head.to_vec();
    let first = format!("  {}", head[0]);
    header[0] = &first;
    writeln!(out, "{}", line(header))?;
    for r in &rows {
        writeln!(out, "{}", line(r.iter().map(String::as_str).collect()))?;
    }
    let deviations: Vec<&Trace> = traces.iter().filter(|t| t.deviation.is_some()).collect();
    writeln!(out)?;
    if deviations.is_empty() {
        writeln!(out, "no deviations: this kernel did what the documents say")?;
    } else {
        writeln!(
            out,
            "! observed differs from the documents (BSD/Winsock texts):"
        )?;
        for t in deviations {
            writeln!(
                out,
                "  {}: {}",
                t.action,
                t.deviation.as_deref().unwrap_or_default()
            )?;
        }
    }
    Ok(())
}

#[derive(Serialize)]
struct SideJson {
    /// Kernel state name -> count, with `gone` for sockets no longer listed.
    states: std::collections::BTreeMap<&'static str, u32>,
}

fn side_json(s: &SideStates) -> SideJson {
    let mut states: std::collections::BTreeMap<&'static str, u32> = s
        .counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| (st.name(), n))
        .collect();
    if s.gone > 0 {
        states.insert("gone", s.gone);
    }
    SideJson { states }
}

#[derive(Serialize)]
struct ScenarioJson {
    scenario: Scenario,
    family: Family,
    pid: u32,
    listener: String,
    requested: usize,
    done: usize,
    client: SideJson,
    server: SideJson,
    elapsed_ms: f64,
    stopped_early: Option<String>,
    /// How long the sockets are held before the lab closes them (close-wait-leak).
    hold_secs: Option<f64>,
    /// A command that shows the buildup from another terminal.
    next: String,
    /// RSTs the namespace sent while the scenario ran, where read.
    resets_sent: Option<u64>,
    /// Why client ends are gone, where the kernel's figures say (TIME-WAIT assassination).
    gone_because: Option<String>,
}

/// The `lingertop snapshot` command that shows what a scenario built.
pub fn scenario_next(r: &ScenarioReport) -> String {
    let port = r.listener.port();
    match r.scenario {
        Scenario::TimeWaitStorm => format!(
            "lingertop snapshot --port {port} --set alerts.time-wait-per-remote.warning={}",
            r.done.max(1)
        ),
        Scenario::CloseWaitLeak => format!(
            "lingertop snapshot --interval 2s --port {port} --set alerts.close-wait.min-age=1s"
        ),
    }
}

fn side_line(s: &SideStates) -> String {
    let mut parts: Vec<String> = s
        .counts
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(st, n)| format!("{} {n}", st.name()))
        .collect();
    if s.gone > 0 {
        parts.push(format!("gone {}", s.gone));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join("  ")
    }
}

/// Writes what a scenario built.
pub fn write_scenario(
    format: LabFormat,
    r: &ScenarioReport,
    hold: Option<Duration>,
    out: &mut dyn Write,
) -> io::Result<()> {
    match format {
        LabFormat::Json => json(
            &ScenarioJson {
                scenario: r.scenario,
                family: r.family,
                pid: r.pid,
                listener: r.listener.to_string(),
                requested: r.requested,
                done: r.done,
                client: side_json(&r.client),
                server: side_json(&r.server),
                elapsed_ms: ms(r.elapsed),
                stopped_early: r.stopped_early.clone(),
                hold_secs: hold.map(|h| h.as_secs_f64()),
                next: scenario_next(r),
                resets_sent: r.resets_sent,
                gone_because: r.assassinated(),
            },
            out,
        )?,
        LabFormat::Table => {
            writeln!(
                out,
                "lingertop lab --scenario {}: {} of {} connections to {} (pid {}) in {}",
                r.scenario,
                r.done,
                r.requested,
                r.listener,
                r.pid,
                fmt_ms(r.elapsed)
            )?;
            if let Some(why) = &r.stopped_early {
                writeln!(out, "stopped early: {why}")?;
            }
            writeln!(out, "client ends  {}", side_line(&r.client))?;
            writeln!(out, "server ends  {}", side_line(&r.server))?;
            if let Some(why) = r.assassinated() {
                writeln!(out, "! {why}")?;
            }
            let what = match r.scenario {
                Scenario::TimeWaitStorm => {
                    "TIME_WAIT toward the listener stays for 60 s (the kernel's, no process holds it)"
                        .to_string()
                }
                Scenario::CloseWaitLeak => format!(
                    "CLOSE_WAIT held by lingertop (pid {}) until the lab closes them{}",
                    r.pid,
                    hold.map(|h| format!(" in {}", human_duration(h)))
                        .unwrap_or_default()
                ),
            };
            writeln!(out, "{what}")?;
            writeln!(out, "see it: {}", scenario_next(r))?;
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vanished_socket_ends_the_states_line() {
        let at = |ms| Duration::from_millis(ms);
        let steps = [
            Step {
                state: Some(TcpState::Established),
                at: at(0),
                send_queue: 0,
            },
            Step {
                state: None,
                at: at(1),
                send_queue: 0,
            },
        ];
        assert_eq!(states_line(&steps), "ESTABLISHED > gone");
        assert_eq!(states_line(&[]), "unseen");
        assert_eq!(fmt_ms(at(2001)), "2001 ms");
        assert_eq!(fmt_ms(Duration::from_micros(150)), "0.1 ms");
    }
}
