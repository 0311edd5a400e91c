//! The one way every long-running mode (dashboard, `watch`, `serve`, `lab --hold`) learns
//! it must stop: SIGINT (Ctrl-C), SIGTERM (what `kill`, systemd and container runtimes
//! send) and SIGHUP (the terminal went away, or an operator's reload habit). Each ends the
//! mode cleanly with exit status 0; `serve` does not reload on SIGHUP, it ends, so a
//! supervisor that sends HUP for a reload restarts it with the new config.

use std::fmt;

/// The signal that asked the process to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    Interrupt,
    Terminate,
    Hangup,
}

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stop::Interrupt => "SIGINT",
            Stop::Terminate => "SIGTERM",
            Stop::Hangup => "SIGHUP",
        })
    }
}

/// Signal handlers, installed when created so a signal that arrives before anyone waits is
/// not lost (nor left to the default action, which would kill the process uncleanly and
/// leave the lab's sockets to the kernel).
pub struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Installs the handlers. Must run inside a tokio runtime.
    pub fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Shutdown {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {})
        }
    }

    /// Resolves when the user or the system asks the process to stop, with the signal.
    pub async fn requested(&mut self) -> Stop {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => Stop::Interrupt,
                _ = self.terminate.recv() => Stop::Terminate,
                _ = self.hangup.recv() => Stop::Hangup,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Stop::Interrupt
        }
    }
}
