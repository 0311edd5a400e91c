//! `lingertop close`: the connections a filter selects, closed gracefully or abortively,
//! then read again by cookie and reported one by one. The rails (`model::action::Rails`)
//! leave lingertop's own sockets and the operator's SSH connection out and refuse what
//! cannot be done; a selection over `--max` is refused whole; without `--yes` it asks on a
//! terminal and refuses elsewhere. Every action goes to stderr and to the system log.

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::settings::Close;
use crate::cli::{self, CloseFormat};
use crate::collector::ReadOptions;
use crate::collector::close::Target;
use crate::config::Config;
use crate::lab::LabRecogniser;
use crate::model::Connection;
use crate::model::action::{CloseHow, LeftOut, Outcome, Refusal, exit_status};
use crate::report::close::{CloseReport, CloseRow, write_json, write_table};
use crate::stderr::say;

/// Runs `lingertop close`.
pub fn run(cfg: Config, s: &Close) -> Result<ExitCode> {
    let mut collector = super::open_collector(cfg.backend, &cfg.netns, false)?;
    collector.set_options(&ReadOptions {
        states: None,
        exact_owners: true,
    });
    let mut snap = collector.poll().context("cannot read the socket table")?;
    LabRecogniser::new(cli::is_lab_command).mark(&mut snap);
    let netns = std::sync::Arc::clone(&snap.netns);

    let (mut left_lingertop, mut left_ssh) = (0, 0);
    let selected: Vec<&Connection> = snap
        .connections
        .iter()
        .filter(|c| s.filter.matches_in(c, &netns))
        .filter(|c| match s.rails.left_out(c) {
            Some(LeftOut::Lingertop) => {
                left_lingertop += 1;
                false
            }
            Some(LeftOut::Ssh) => {
                left_ssh += 1;
                false
            }
            None => true,
        })
        .collect();
    if left_lingertop > 0 {
        say!("lingertop: left out {left_lingertop} connection(s) of lingertop's own processes");
    }
    if left_ssh > 0 {
        say!("lingertop: left out the SSH connection this command runs over ($SSH_CONNECTION)");
    }
    if selected.is_empty() {
        bail!("no connection matches \"{}\"; nothing closed", s.filter);
    }
    if selected.len() > s.max {
        bail!(
            "{} connections match \"{}\", more than --max {}; nothing closed: narrow the filter (see --dry-run) or raise --max",
            selected.len(),
            s.filter,
            s.max
        );
    }

    let mut targets: Vec<Target> = selected.iter().map(|c| Target::of(c)).collect();
    Target::note_descriptors(&mut targets);
    let refused: Vec<Option<Refusal>> = selected.iter().map(|c| s.rails.refuse(c, s.how)).collect();
    let rows: Vec<CloseRow> = selected.iter().map(|c| CloseRow::of(c, &netns)).collect();
    if s.how == CloseHow::Graceful {
        warn_sigpipe(&selected, &refused);
    }

    let mut report = CloseReport {
        how: s.how,
        dry_run: s.dry_run,
        peer_sees: s.how.peer_sees(),
        left_out_lingertop: left_lingertop,
        left_out_ssh: left_ssh,
        connections: Vec::new(),
    };
    if s.dry_run {
        report.connections = rows
            .into_iter()
            .zip(&refused)
            .map(|(r, why)| {
                let o = why.clone().map(|refusal| Outcome::Refused { refusal });
                r.judged(o.as_ref(), true)
            })
            .collect();
        write(s.format, &report)?;
        return Ok(ExitCode::SUCCESS);
    }

    if !s.yes {
        if !s.ask {
            bail!(
                "refusing to close {} connection(s) without --yes: stdin is not a terminal to ask on; pass --yes, or --dry-run to see them",
                selected.len()
            );
        }
        if !confirm(s, &rows, &refused)? {
            bail!("nothing closed");
        }
    }
    pause_for_tests();

    let acting: Vec<usize> = (0..targets.len())
        .filter(|&i| refused[i].is_none())
        .collect();
    let to_act: Vec<Target> = acting.iter().map(|&i| targets[i].clone()).collect();
    let results = collector.close(&to_act, s.how);
    let mut outcomes: Vec<Option<Outcome>> = refused
        .iter()
        .map(|r| r.clone().map(|refusal| Outcome::Refused { refusal }))
        .collect();
    let mut acted = vec![false; targets.len()];
    let who = crate::syslog::who();
    for (&i, result) in acting.iter().zip(results) {
        let r = &rows[i];
        let what = format!(
            "{} close of {} -> {} ({}, {}, netns {}, cookie {})",
            s.how,
            r.local,
            r.remote,
            r.state,
            if r.owners.is_empty() {
                "no process".to_string()
            } else {
                r.owners.join(",")
            },
            r.netns,
            r.cookie
        );
        match result {
            Ok(()) => {
                acted[i] = true;
                say!("lingertop: {what}: sent");
                crate::syslog::notice(&format!("{who}: {what}: sent"));
            }
            Err(refusal) => {
                say!("lingertop: {what}: refused: {refusal}");
                crate::syslog::notice(&format!("{who}: {what}: refused: {refusal}"));
                outcomes[i] = Some(Outcome::Refused { refusal });
            }
        }
    }
    let verified = collector
        .verify(&targets, &acted, s.how, s.wait)
        .context("cannot read the socket table again to verify")?;
    for (i, v) in verified.into_iter().enumerate() {
        if acted[i] {
            outcomes[i] = Some(v.unwrap_or(Outcome::Closed));
        }
    }
    let outcomes: Vec<Outcome> = outcomes
        .into_iter()
        .map(|o| o.unwrap_or(Outcome::Closed))
        .collect();
    for (r, o) in rows.iter().zip(&outcomes) {
        if !matches!(o, Outcome::Refused { .. }) {
            crate::syslog::notice(&format!(
                "{who}: {} close of {} -> {} (cookie {}): {o}",
                s.how, r.local, r.remote, r.cookie
            ));
        }
    }
    report.connections = rows
        .into_iter()
        .zip(&outcomes)
        .map(|(r, o)| r.judged(Some(o), false))
        .collect();
    write(s.format, &report)?;
    Ok(ExitCode::from(exit_status(&outcomes)))
}

fn write(format: CloseFormat, report: &CloseReport) -> Result<()> {
    let mut out = io::stdout().lock();
    let written = match format {
        CloseFormat::Table => write_table(&mut out, report),
        CloseFormat::Json => write_json(&mut out, report),
    };
    match written.and_then(|()| out.flush()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("cannot write"),
        _ => Ok(()),
    }
}

/// Says, once per process, which target processes do not ignore SIGPIPE: a graceful close
/// leaves their descriptor open, and their next write on it kills them.
fn warn_sigpipe(selected: &[&Connection], refused: &[Option<Refusal>]) {
    let mut seen = rustc_hash::FxHashSet::default();
    for (c, r) in selected.iter().zip(refused) {
        if r.is_some() {
            continue;
        }
        for o in c.owners.iter() {
            if seen.insert(o.pid) && sigpipe_ignored(o.pid) == Some(false) {
                say!(
                    "lingertop: warning: {}[{}] does not ignore SIGPIPE: after a graceful close its next write on the connection kills it",
                    o.name.as_deref().unwrap_or("?"),
                    o.pid
                );
            }
        }
    }
}

fn sigpipe_ignored(pid: u32) -> Option<bool> {
    #[cfg(target_os = "linux")]
    return crate::collector::close::ignores_sigpipe(pid);
    #[cfg(not(target_os = "linux"))]
    {
        let _ = pid;
        None
    }
}

/// Lists what will be closed on stderr and asks on the terminal; true on yes.
fn confirm(s: &Close, rows: &[CloseRow], refused: &[Option<Refusal>]) -> Result<bool> {
    let listed = CloseReport {
        how: s.how,
        dry_run: true,
        peer_sees: s.how.peer_sees(),
        left_out_lingertop: 0,
        left_out_ssh: 0,
        connections: rows
            .iter()
            .cloned()
            .zip(refused)
            .map(|(r, why)| {
                let o = why.clone().map(|refusal| Outcome::Refused { refusal });
                r.judged(o.as_ref(), true)
            })
            .collect(),
    };
    let mut err = io::stderr().lock();
    write_table(&mut err, &listed)?;
    let n = refused.iter().filter(|r| r.is_none()).count();
    write!(
        err,
        "Close these {n} connection(s) {} ({}: the peer sees {})? [y/N] ",
        s.how,
        match s.how {
            CloseHow::Graceful => "FIN through the owner's descriptor",
            CloseHow::Abort => "the kernel destroys the socket",
        },
        s.how.peer_sees()
    )?;
    err.flush()?;
    drop(err);
    let mut answer = String::new();
    io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// With the `test-support` feature: waits between listing and acting until the file named
/// by `LINGERTOP_TEST_CLOSE_PAUSE` exists (at most 30 s), so a test can reuse a descriptor
/// number in between.
fn pause_for_tests() {
    #[cfg(feature = "test-support")]
    if let Some(path) = std::env::var_os("LINGERTOP_TEST_CLOSE_PAUSE") {
        say!(
            "lingertop: test: listed; waiting for {}",
            path.to_string_lossy()
        );
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !std::path::Path::new(&path).exists() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}
