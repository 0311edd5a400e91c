//! The filter prompt's history kept between runs, in
//! `$XDG_STATE_HOME/lingertop/filter-history` (`~/.local/state/...`): one filter a line,
//! oldest first. It can never fail the dashboard: a file that cannot be read starts an
//! empty history, one that cannot be written leaves it in memory and says so in the
//! footer. `LINGERTOP_NO_HISTORY` (any value) keeps it in memory only, and so does a
//! state directory that belongs to another user (`sudo` keeping the caller's HOME).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::model::Filter;
use crate::tui::app::{App, FilterHistory, HISTORY_MAX};

/// A file bigger than this is not a history lingertop wrote: only its end is read.
const READ_MAX: u64 = 64 * 1024;

/// Where the history lives; `None` when it is kept in memory only.
pub fn path() -> Option<PathBuf> {
    if std::env::var_os("LINGERTOP_NO_HISTORY").is_some() {
        return None;
    }
    let path = dirs::state_dir()?.join("lingertop").join("filter-history");
    owned_by_us(&path).then_some(path)
}

/// Whether the nearest existing directory on the way to `path` belongs to the user
/// lingertop runs as: `sudo lingertop` with the caller's HOME must not leave root-owned
/// directories in that user's `~/.local/state` (they could no longer write there).
#[cfg(target_os = "linux")]
fn owned_by_us(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to the process's effective uid.
    let Ok(me) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return false;
    };
    path.ancestors()
        .skip(1)
        .find_map(|d| std::fs::metadata(d).ok())
        .is_some_and(|m| m.uid() == me)
}

#[cfg(not(target_os = "linux"))]
fn owned_by_us(_path: &Path) -> bool {
    true
}

/// The history in `path`; empty when there is none or it cannot be read. Lines that no
/// longer parse (a filter key renamed since) are dropped.
pub fn load(path: &Path) -> FilterHistory {
    let Ok(file) = std::fs::File::open(path) else {
        return FilterHistory::default();
    };
    let mut text = String::new();
    if file.take(READ_MAX).read_to_string(&mut text).is_err() {
        return FilterHistory::default();
    }
    let lines: Vec<&str> = text.lines().filter(|l| Filter::parse(l).is_ok()).collect();
    let from = lines.len().saturating_sub(HISTORY_MAX);
    FilterHistory::from_lines(lines[from..].iter().copied())
}

/// Writes `history` to `path` whole (a temporary file renamed over it, so a crash never
/// leaves half a file), readable by its owner only: filters name processes and addresses.
pub fn save(path: &Path, history: &FilterHistory) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&tmp)?;
    let mut text = String::new();
    for e in history.entries() {
        // A filter's text is one line (its terms joined by spaces), but a line break
        // must never split an entry in two.
        if !e.contains(['\n', '\r']) {
            text.push_str(e);
            text.push('\n');
        }
    }
    let written = file
        .write_all(text.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Saves the history when it changed since the last call; a failure is said in the
/// footer and the history stays in memory.
pub fn save_if_changed(path: Option<&Path>, app: &mut App) {
    let (Some(p), true) = (path, app.filter_history.take_dirty()) else {
        return;
    };
    if let Err(e) = save(p, &app.filter_history) {
        let msg = format!(
            "filter history not saved to {} ({e}); it is kept for this session",
            p.display()
        );
        app.status = Some(crate::sanitize::message(&msg).into_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_history_loads_back_and_bad_lines_are_dropped() {
        let dir = std::env::temp_dir().join(format!("lingertop-history-{}", std::process::id()));
        let path = dir.join("lingertop").join("filter-history");
        let mut h = FilterHistory::default();
        h.push("state:close-wait");
        h.push("port:443 !proc:sshd");
        save(&path, &h).unwrap();
        let back = load(&path);
        assert_eq!(
            back.entries().collect::<Vec<_>>(),
            ["state:close-wait", "port:443 !proc:sshd"]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "state:close-wait\nbogus:1\n\nport:1\n").unwrap();
        assert_eq!(
            load(&path).entries().collect::<Vec<_>>(),
            ["state:close-wait", "port:1"]
        );
        // Missing or unreadable: an empty history, no error.
        assert_eq!(load(&dir.join("nope")).entries().count(), 0);
        assert_eq!(load(&dir).entries().count(), 0, "a directory is no history");
        // Ours (the test's temporary directory); another user's is not written to.
        assert!(owned_by_us(&path));
        #[cfg(target_os = "linux")]
        if std::fs::metadata("/proc/self")
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
            .ok()
            != Some(65534)
        {
            // A directory of `nobody` (uid 65534) is another user's (checked as root only:
            // only root can give a directory away).
            let theirs = dir.join("theirs");
            std::fs::create_dir_all(&theirs).unwrap();
            if std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).is_ok() {
                assert!(!owned_by_us(
                    &theirs.join("lingertop").join("filter-history")
                ));
            }
        }
        // A path that cannot be written is an error the runner reports, not a panic.
        assert!(save(&path.join("under-a-file"), &h).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
