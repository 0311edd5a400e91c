//! `lingertop record PATH`: the live loop, with the kernel's close events where they load,
//! written to a recording (see `record::`) until interrupted. [`RecordSink`] is the writer
//! on a thread of its own, also used by `serve --record`, so a slow disk never holds up a
//! poll or a scrape.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

use super::closes::CloseFeed;
use super::settings::{Record, RecordTo};
use crate::config::Config;
use crate::live::{self, Message, Update};
use crate::model::{Alert, Close, Filter};
use crate::record::Recorder;
use crate::shutdown::Shutdown;

type Item = (Arc<Update>, Vec<Close>, Vec<Alert>);

/// The recorder on its own thread. Dropping it writes what is queued, ends the run and
/// folds the WAL into the database.
pub struct RecordSink {
    tx: Option<std_mpsc::SyncSender<Item>>,
    thread: Option<JoinHandle<()>>,
}

impl RecordSink {
    /// Opens the recording (refusing a symlink, a second recorder, another program's or a
    /// newer lingertop's file, each with what to do) and starts the writer.
    pub fn start(to: &RecordTo, cfg: &Config, events: &str) -> Result<Self> {
        let mut recorder = Recorder::open(&to.path, to.retention, cfg.interval, events)
            .map_err(|e| anyhow::anyhow!("cannot record: {e}"))?;
        // A few polls queued at most: a writer that falls behind drops polls (a gap) rather
        // than the live loop's memory growing.
        let (tx, rx) = std_mpsc::sync_channel::<Item>(4);
        let thread = std::thread::Builder::new()
            .name("lingertop-record".into())
            .spawn(move || {
                for (u, closes, alerts) in rx {
                    let was_failing = recorder.failing();
                    match recorder.write(&u, &closes, &alerts) {
                        Ok(()) if was_failing => crate::stderr::say!(
                            "lingertop: recording to {} again",
                            recorder.path().display()
                        ),
                        Ok(()) => {}
                        // Said once; the live output goes on, and recording resumes when a
                        // write works again (space returned), after a gap.
                        Err(e) if !was_failing => crate::stderr::say!(
                            "lingertop: cannot write to {}: {e}; recording stops until a write works again (the live output goes on)",
                            recorder.path().display()
                        ),
                        Err(_) => {}
                    }
                }
                recorder.finish();
            })
            .context("cannot start the recording thread")?;
        Ok(RecordSink {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues one poll with the closes drained with it and every alert of it; a full queue
    /// (the disk far behind) drops it.
    pub fn send(&self, u: &Arc<Update>, closes: Vec<Close>, alerts: Vec<Alert>) {
        if let Some(tx) = &self.tx {
            let _ = tx.try_send((Arc::clone(u), closes, alerts));
        }
    }
}

impl Drop for RecordSink {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The poll's alerts and the close rules' beside them, worst first.
pub(crate) fn all_alerts(u: &Update, close_alerts: Vec<Alert>) -> Vec<Alert> {
    let mut all: Vec<Alert> = u.alerts.iter().cloned().chain(close_alerts).collect();
    all.sort_by_key(|a| std::cmp::Reverse(a.severity));
    all
}

/// Runs `lingertop record PATH` until Ctrl-C, SIGTERM or SIGHUP.
pub fn run(cfg: Config, args: &Record) -> Result<ExitCode> {
    let runtime = super::runtime()?;
    runtime.block_on(async {
        let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;
        let (mut feed, mut stats) =
            CloseFeed::start(args.events, &cfg.netns, cfg.interval, &cfg.rules)?;
        if let (Some(note), false) = (&feed.note, args.quiet) {
            crate::stderr::say!("lingertop: {note}");
        }
        let sink = RecordSink::start(&args.to, &cfg, feed.source.source().name())?;
        let (tx, mut rx) = mpsc::channel(4);
        let _live = live::spawn(
            super::open_collector(cfg.backend, &cfg.netns, args.quiet)?,
            &cfg,
            super::live_scope(Filter::default(), feed.owners()),
            tx,
        )
        .context("cannot start the poll thread")?;
        let mut polls = 0u64;
        loop {
            let msg = tokio::select! {
                _ = shutdown.requested() => break,
                msg = rx.recv() => msg,
            };
            match msg {
                Some(Message::Update(u)) => {
                    let closes = feed.drain();
                    stats.add_closes(&closes);
                    let alerts = all_alerts(&u, feed.judge(&mut stats, Some(&u.snapshot)));
                    sink.send(&u, closes, alerts);
                    polls += 1;
                    if polls == 1 && !args.quiet {
                        crate::stderr::say!(
                            "lingertop: recording to {} every {}, closes from {} (Ctrl-C to stop)",
                            args.to.path.display(),
                            crate::model::duration::compact(cfg.interval),
                            feed.source.described()
                        );
                    }
                }
                // Only a dashboard asks the poll thread to close a connection.
                Some(Message::Closed(_)) => {}
                Some(Message::PollFailed(e)) => {
                    if polls == 0 {
                        bail!("{e}");
                    }
                    crate::stderr::say!("lingertop: {e}; trying again at the next poll");
                }
                None => bail!("the poll thread stopped unexpectedly"),
            }
        }
        drop(sink);
        Ok(ExitCode::SUCCESS)
    })
}
