//! Text of connection fields shared by the table, the detail pane and the copied row (`y`):
//! one place writes each cell, so what is copied reads as what is shown.

use std::time::{Duration, SystemTime};

use crate::model::alerts::human_duration;
use crate::model::{Attribution, Connection};
use crate::report::fmt_age;

/// An address in at most `width` columns, keeping the port: the IP is cut with `…`.
pub(super) fn fit_addr(sa: &std::net::SocketAddr, width: usize) -> String {
    let full = sa.to_string();
    if full.chars().count() <= width {
        return full;
    }
    let port = format!(":{}", sa.port());
    let (open, close) = if sa.is_ipv6() { ("[", "]") } else { ("", "") };
    let keep = width.saturating_sub(port.len() + open.len() + close.len() + 1);
    let ip: String = sa.ip().to_string().chars().take(keep).collect();
    format!("{open}{ip}…{close}{port}")
}

/// A remote end in at most `width` columns: `name:port` where its name is known (the name
/// neutralised, cut with `…` at its end, the port kept), else the address as [`fit_addr`]
/// fits it.
pub(super) fn fit_remote(sa: &std::net::SocketAddr, name: Option<&str>, width: usize) -> String {
    let Some(name) = name else {
        return fit_addr(sa, width);
    };
    let name = crate::sanitize::terminal(name);
    let port = format!(":{}", sa.port());
    if name.chars().count() + port.len() <= width {
        return format!("{name}{port}");
    }
    let keep = width.saturating_sub(port.len() + 1);
    let cut: String = name.chars().take(keep).collect();
    format!("{cut}…{port}")
}

/// How wide [`fit_remote`]'s text is with room to spare.
pub(super) fn remote_width(sa: &std::net::SocketAddr, name: Option<&str>) -> usize {
    match name {
        Some(n) => crate::sanitize::terminal(n).chars().count() + 1 + sa.port().to_string().len(),
        None => sa.to_string().len(),
    }
}

/// `timewait 58s`, `on 200ms ×2`, `keepalive 2h`; empty without a timer.
pub(super) fn timer_text(c: &Connection) -> String {
    let Some(t) = c.timer else {
        return String::new();
    };
    let left = if t.expires() >= Duration::from_secs(1) {
        human_duration(t.expires()).replace(' ', "")
    } else {
        format!("{}ms", t.expires_ms)
    };
    let retries = if t.retransmits > 0 {
        format!(" ×{}", t.retransmits)
    } else {
        String::new()
    };
    let kind = match t.kind.name() {
        "timewait" => "tw",
        "keepalive" => "ka",
        other => other,
    };
    format!("{kind} {left}{retries}")
}

/// The VIA column: how the owner was attributed when not by holding the socket.
pub(super) fn via(c: &Connection) -> &'static str {
    Attribution::short(c.attribution)
}

/// The owner as `name (pid)`, with `+n` for more holders; `-` without one.
pub(super) fn process_text(c: &Connection) -> String {
    match c.owner() {
        Some(o) => {
            let more = if c.owners.len() > 1 {
                format!(" +{}", c.owners.len() - 1)
            } else {
                String::new()
            };
            format!("{} ({}){more}", o.name.as_deref().unwrap_or("?"), o.pid)
        }
        None => "-".to_string(),
    }
}

/// How long before `now` the time `t` was, as an age (`0s` for no time at all).
pub(super) fn ago(now: SystemTime, t: SystemTime) -> String {
    let d = now.duration_since(t).unwrap_or(Duration::ZERO);
    if d.is_zero() {
        "0s".to_string()
    } else {
        fmt_age(Some(d))
    }
}
