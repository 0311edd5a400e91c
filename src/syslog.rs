//! One line to the system log: a datagram to `/dev/log` in the format every syslog daemon
//! and journald read (`<PRI>TAG[PID]: MESSAGE`, RFC 3164 without a timestamp, which the
//! daemon adds). Written by hand because it is one `sendto`: a crate for it would bring a
//! formatter, a transport choice and a dependency tree for what lingertop does once per
//! closed connection. Where there is no `/dev/log` (a container, a minimal system) the line
//! is dropped: stderr has it already.

/// `LOG_AUTHPRIV`: the facility of security-relevant actions (a connection closed by an
/// operator), which the daemons keep apart from the user facility's chatter.
const AUTHPRIV: u8 = 10 << 3;
/// `LOG_NOTICE`.
const NOTICE: u8 = 5;

/// The socket of the local syslog daemon (or journald's, which takes the same format).
const DEV_LOG: &str = "/dev/log";

/// Sends `message` to the system log as lingertop's, escaped as stderr's lines are; a
/// failure is ignored (there may be no daemon).
pub fn notice(message: &str) {
    #[cfg(unix)]
    {
        let line = format!(
            "<{}>lingertop[{}]: {}",
            AUTHPRIV | NOTICE,
            std::process::id(),
            crate::sanitize::message(message)
        );
        if let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() {
            let _ = sock.send_to(line.as_bytes(), DEV_LOG);
        }
    }
    #[cfg(not(unix))]
    let _ = message;
}

/// Who runs lingertop, for the log: the uid, and the user `sudo` ran it for.
pub fn who() -> String {
    #[cfg(unix)]
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    #[cfg(not(unix))]
    let uid = "?";
    match std::env::var("SUDO_USER") {
        Ok(u) if !u.is_empty() => format!("uid {uid} (sudo by {u})"),
        _ => format!("uid {uid}"),
    }
}
