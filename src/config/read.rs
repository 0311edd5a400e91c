//! Reading the config file's bytes: bounded in size and in waiting, and only text.
//!
//! `--config` may name anything: a file, `<(generate-config)` (a pipe), a FIFO nobody writes
//! to, `/dev/null` (an empty config), `/dev/zero` or a terminal. The file is opened without
//! blocking (a FIFO's open otherwise waits for a writer forever), then read with `poll`, so a
//! source that gives no data for [`WAIT`] is refused instead of hanging, and one that gives
//! more than [`MAX_BYTES`] is refused instead of filling memory. What was read must be UTF-8
//! without NUL bytes.

use std::path::Path;
use std::time::Duration;

/// The largest config accepted. The shipped example is 5 kB; 1 MiB leaves room for any
/// hand-written file and still refuses `/dev/zero` at once.
pub const MAX_BYTES: usize = 1 << 20;

/// How long a pipe, FIFO or device may keep lingertop waiting for its data.
pub const WAIT: Duration = Duration::from_secs(10);

/// The text of the config at `path`; the error is the end of a one-line message that
/// starts with the path.
pub fn read_text(path: &Path, max: usize, wait: Duration) -> Result<String, String> {
    let bytes = read_bounded(path, max, wait)?;
    if let Some(at) = bytes.iter().position(|&b| b == 0) {
        return Err(format!(
            "is not text: a NUL byte at offset {at}; give the path of a TOML file"
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("is not UTF-8 text: an invalid byte on line {line} (offset {at}); save it as UTF-8")
    })
}

#[cfg(unix)]
fn read_bounded(path: &Path, max: usize, wait: Duration) -> Result<Vec<u8>, String> {
    use std::fs::OpenOptions;
    use std::io::{self, Read};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    use std::time::Instant;

    let mut file = OpenOptions::new()
        .read(true)
        // A FIFO's open would wait for a writer; reads below wait through poll instead.
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("cannot be read: {e}"))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot be read: {e}"))?;
    if meta.is_dir() {
        return Err("is a directory; give the path of the config file itself".to_string());
    }
    if meta.is_file() && meta.len() > max as u64 {
        return Err(too_big(max));
    }
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if !readable(file.as_raw_fd(), left).map_err(|e| format!("cannot be read: {e}"))? {
            return Err(format!(
                "gave no end of data within {}; a FIFO needs a writer, a terminal is not a config",
                humantime::format_duration(wait)
            ));
        }
        match file.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => {
                if out.len() + n > max {
                    return Err(too_big(max));
                }
                out.extend_from_slice(&buf[..n]);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(format!("cannot be read: {e}")),
        }
    }
}

/// Without `poll`: bounded in size only.
#[cfg(not(unix))]
fn read_bounded(path: &Path, max: usize, _wait: Duration) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
    let mut out = Vec::new();
    file.take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if out.len() > max {
        return Err(too_big(max));
    }
    Ok(out)
}

fn too_big(max: usize) -> String {
    format!(
        "is larger than {} kB; a lingertop config is a few kB of TOML",
        max / 1024
    )
}

/// Waits at most `wait` for `fd` to have data or an end; false when the time ran out.
#[cfg(unix)]
fn readable(fd: std::os::fd::RawFd, wait: Duration) -> std::io::Result<bool> {
    use std::io;
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(wait.as_millis()).unwrap_or(libc::c_int::MAX);
    loop {
        // SAFETY: `p` is one valid pollfd that lives across the call, and nfds is 1.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc >= 0 {
            // POLLHUP (the writer left) and POLLERR are ends the read reports.
            return Ok(rc > 0);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::time::Instant;

    const SHORT: Duration = Duration::from_millis(300);

    #[test]
    fn files_pipes_and_dev_null_are_read() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"[collector]\ninterval = \"1s\"\n").unwrap();
        assert!(
            read_text(f.path(), MAX_BYTES, SHORT)
                .unwrap()
                .contains("interval")
        );
        assert_eq!(
            read_text(Path::new("/dev/null"), MAX_BYTES, SHORT).unwrap(),
            ""
        );
    }

    #[test]
    fn a_fifo_with_a_late_writer_is_read_and_one_without_is_refused_in_time() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("cfg");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

        let started = Instant::now();
        let e = read_text(&fifo, MAX_BYTES, SHORT).unwrap_err();
        assert!(e.contains("no end of data"), "{e}");
        assert!(started.elapsed() < SHORT * 4, "{:?}", started.elapsed());

        let path = fifo.clone();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let mut w = OpenOptions::new().write(true).open(path).unwrap();
            w.write_all(b"[serve]\n").unwrap();
        });
        assert_eq!(
            read_text(&fifo, MAX_BYTES, Duration::from_secs(5)).unwrap(),
            "[serve]\n"
        );
        writer.join().unwrap();
    }

    #[test]
    fn endless_big_binary_and_non_files_are_refused() {
        let e = read_text(Path::new("/dev/zero"), MAX_BYTES, SHORT).unwrap_err();
        assert!(e.contains("larger than 1024 kB"), "{e}");
        let e = read_text(Path::new("/dev/urandom"), MAX_BYTES, SHORT).unwrap_err();
        assert!(e.contains("larger than") || e.contains("not"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(&vec![b'#'; 2000]).unwrap();
        assert!(
            read_text(f.path(), 1000, SHORT)
                .unwrap_err()
                .contains("larger than")
        );
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a = 1\n\xff\n").unwrap();
        let e = read_text(f.path(), MAX_BYTES, SHORT).unwrap_err();
        assert!(e.contains("UTF-8") && e.contains("line 2"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"a = 1\0").unwrap();
        assert!(
            read_text(f.path(), MAX_BYTES, SHORT)
                .unwrap_err()
                .contains("NUL byte at offset 5")
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read_text(dir.path(), MAX_BYTES, SHORT)
                .unwrap_err()
                .contains("directory")
        );
    }
}
