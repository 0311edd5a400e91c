//! Opening a recording: for writing (created 0600, never through a symlink, one writer at a
//! time by an advisory `flock`, the schema checked or migrated), or for reading (any
//! number of readers beside the writer, as WAL allows).

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::schema::{APPLICATION_ID, MIGRATIONS, VERSION};
use crate::model::TcpState;
use crate::model::close::CloseKind;

/// Why a recording cannot be opened; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{0} is a symbolic link; lingertop does not record through one (a link in a shared directory could point it at another file): give the real path"
    )]
    Symlink(PathBuf),
    #[error(
        "{0} is being recorded by another lingertop (it holds the file's lock); stop that one, or record to another file"
    )]
    Locked(PathBuf),
    #[error(
        "{0} is not a lingertop recording (its application_id is not lingertop's); give a new path, lingertop never writes into another program's database"
    )]
    Foreign(PathBuf),
    #[error(
        "{path} was written by a newer lingertop (schema {found}, this one knows up to {VERSION}); replay it with that version, or record to another file"
    )]
    Newer { path: PathBuf, found: i32 },
    #[error(
        "there is no recording at {0}: give the file `lingertop record` (or `serve --record`) wrote"
    )]
    Missing(PathBuf),
    #[error("{path}: {why}")]
    Io { path: PathBuf, why: std::io::Error },
    #[error("{path}: {why}")]
    Sql { path: PathBuf, why: rusqlite::Error },
}

/// A recording open for writing: the database and the locked file that keeps a second
/// recorder out. The lock lives as long as this value.
pub struct Writable {
    pub db: Connection,
    pub path: PathBuf,
    /// Held open for its `flock`; closed only after the database (closing another
    /// descriptor of the file would drop SQLite's own POSIX locks).
    _lock: File,
}

impl Drop for Writable {
    fn drop(&mut self) {
        // The WAL folded into the database, so a copy of PATH alone has everything.
        let _ = self
            .db
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }
}

fn sql(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |why| StoreError::Sql {
        path: path.to_path_buf(),
        why,
    }
}

/// Opens (creating it 0600 if missing) the recording at `path` for writing.
pub fn open_writable(path: &Path) -> Result<Writable, StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    let io = |why: std::io::Error| StoreError::Io {
        path: path.to_path_buf(),
        why,
    };
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                StoreError::Symlink(path.to_path_buf())
            } else {
                io(e)
            }
        })?;
    // SAFETY: flock on a descriptor this function owns; it only takes an advisory lock.
    let locked = unsafe {
        libc::flock(
            std::os::fd::AsRawFd::as_raw_fd(&lock),
            libc::LOCK_EX | libc::LOCK_NB,
        )
    };
    if locked != 0 {
        let e = std::io::Error::last_os_error();
        return Err(if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
            StoreError::Locked(path.to_path_buf())
        } else {
            io(e)
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_NOFOLLOW;
    let db = Connection::open_with_flags(path, flags).map_err(sql(path))?;
    let q = |p: &str| -> Result<i64, StoreError> {
        db.query_row(&format!("PRAGMA {p}"), [], |r| r.get(0))
            .map_err(sql(path))
    };
    let app = q("application_id")?;
    let version = i32::try_from(q("user_version")?).unwrap_or(i32::MAX);
    let tables = db
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
            r.get::<_, i64>(0)
        })
        .map_err(sql(path))?;
    if app != i64::from(APPLICATION_ID) && (app != 0 || tables > 0) {
        return Err(StoreError::Foreign(path.to_path_buf()));
    }
    if version > VERSION {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found: version,
        });
    }
    if tables == 0 {
        // Only before the first table: deleted rows' pages can then be handed back to the
        // file system, so dropping a piece shrinks the file.
        db.execute_batch("PRAGMA auto_vacuum = INCREMENTAL")
            .map_err(sql(path))?;
    }
    db.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;")
        .map_err(sql(path))?;
    db.busy_timeout(std::time::Duration::from_secs(2))
        .map_err(sql(path))?;
    migrate(&db, version).map_err(sql(path))?;
    Ok(Writable {
        db,
        path: path.to_path_buf(),
        _lock: lock,
    })
}

/// Brings a file at schema `from` up to [`VERSION`], one transaction per step.
fn migrate(db: &Connection, from: i32) -> rusqlite::Result<()> {
    for v in from..VERSION {
        let step = MIGRATIONS[usize::try_from(v).unwrap_or_default()];
        let mut batch = format!("BEGIN; {step}");
        if v == 0 {
            batch.push_str(&format!("PRAGMA application_id = {APPLICATION_ID};"));
            for s in TcpState::ALL {
                batch.push_str(&format!(
                    "INSERT INTO tcp_state VALUES ({}, '{}');",
                    s.index(),
                    s.name()
                ));
            }
            for k in CloseKind::ALL {
                batch.push_str(&format!(
                    "INSERT INTO close_kind VALUES ({}, '{}');",
                    k as u8,
                    k.name()
                ));
            }
        }
        batch.push_str(&format!("PRAGMA user_version = {}; COMMIT;", v + 1));
        db.execute_batch(&batch)?;
    }
    Ok(())
}

/// Opens the recording at `path` for reading: refused when it is not lingertop's or is of
/// a newer schema. Never writes (an older schema is read as it is only once a writer has
/// migrated it: the version is checked).
pub fn open_readable(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Missing(path.to_path_buf()));
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let db = Connection::open_with_flags(path, flags).map_err(sql(path))?;
    let app: i64 = db
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(sql(path))?;
    if app != i64::from(APPLICATION_ID) {
        return Err(StoreError::Foreign(path.to_path_buf()));
    }
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(sql(path))?;
    if version > i64::from(VERSION) {
        return Err(StoreError::Newer {
            path: path.to_path_buf(),
            found: i32::try_from(version).unwrap_or(i32::MAX),
        });
    }
    Ok(db)
}
