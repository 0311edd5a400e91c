//! systemd's readiness notification (the `sd_notify` protocol, without libsystemd): `serve`
//! says `READY=1` once it listens and holds its first poll, so a `Type=notify` unit's
//! `systemctl start` returns only then, and fails, with the reason in the journal, when
//! `serve` cannot start (its port taken, the socket table unreadable). Under a plain
//! `Type=simple` unit the start would report success for a process about to exit.
//!
//! The protocol: one datagram of `KEY=VALUE` lines to the `AF_UNIX` socket named by
//! `$NOTIFY_SOCKET`, a path or, with a leading `@`, a Linux abstract name. Outside a
//! notify unit the variable is unset and nothing is sent.

use std::ffi::{OsStr, OsString};
use std::io;

/// The environment variable systemd sets for a `Type=notify` (or `NotifyAccess=`) service.
const SOCKET_VAR: &str = "NOTIFY_SOCKET";

/// Tells the service manager that lingertop is ready. `Ok(false)` when no manager asked
/// (`$NOTIFY_SOCKET` unset); an error names the socket that refused the message.
pub fn ready() -> Result<bool, String> {
    match std::env::var_os(SOCKET_VAR) {
        None => Ok(false),
        Some(socket) => notify(&socket, b"READY=1")
            .map(|()| true)
            .map_err(|e| describe(&socket, &e)),
    }
}

fn describe(socket: &OsString, e: &io::Error) -> String {
    format!(
        "cannot tell systemd that lingertop is ready ({SOCKET_VAR}={}): {e}",
        socket.to_string_lossy()
    )
}

/// Sends one message to a notification socket: a path, or `@name` for an abstract one.
#[cfg(unix)]
fn notify(socket: &OsStr, message: &[u8]) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::UnixDatagram;

    let sender = UnixDatagram::unbound()?;
    let sent = match socket.as_bytes().strip_prefix(b"@") {
        Some(name) => send_abstract(&sender, name, message)?,
        None => sender.send_to(message, socket)?,
    };
    if sent == message.len() {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("{sent} of {} bytes sent", message.len()),
        ))
    }
}

#[cfg(target_os = "linux")]
fn send_abstract(
    sender: &std::os::unix::net::UnixDatagram,
    name: &[u8],
    message: &[u8],
) -> io::Result<usize> {
    use std::os::linux::net::SocketAddrExt;
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
    sender.send_to_addr(message, &addr)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn send_abstract(
    _sender: &std::os::unix::net::UnixDatagram,
    _name: &[u8],
    _message: &[u8],
) -> io::Result<usize> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "abstract socket names exist on Linux only",
    ))
}

#[cfg(not(unix))]
fn notify(_socket: &OsStr, _message: &[u8]) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "systemd notification sockets exist on Unix only",
    ))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    fn received(listener: &UnixDatagram) -> String {
        listener
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .expect("a read timeout");
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).expect("the message arrives");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[test]
    fn ready_reaches_a_socket_given_by_path() {
        let dir = std::env::temp_dir().join(format!("lingertop-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        let path = dir.join("notify");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).expect("bind the manager's socket");
        notify(path.as_os_str(), b"READY=1").expect("sent");
        assert_eq!(received(&listener), "READY=1");
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn ready_reaches_an_abstract_socket_named_with_an_at_sign() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("lingertop-notify-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
            .expect("an abstract address");
        let listener = UnixDatagram::bind_addr(&addr).expect("bind the manager's socket");
        notify(OsStr::new(&format!("@{name}")), b"READY=1").expect("sent");
        assert_eq!(received(&listener), "READY=1");
    }

    #[test]
    fn a_socket_nobody_listens_on_is_an_error_naming_it() {
        let path =
            std::env::temp_dir().join(format!("lingertop-notify-none-{}", std::process::id()));
        let socket = path.clone().into_os_string();
        let e = notify(&socket, b"READY=1").expect_err("nobody listens");
        let message = describe(&socket, &e);
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(message.contains("NOTIFY_SOCKET="), "{message}");
    }
}
