//! `lingertop serve`: the Prometheus exporter. The shared poll loop (`live`) polls once per
//! interval; each result becomes a small [`Exposition`] published through a watch channel.
//! The HTTP server (axum over hyper and tokio) answers `/metrics` by rendering the latest
//! exposition and `/healthz` from its age, so a scrape never triggers or waits for a poll.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::{mpsc, watch};

use super::closes::CloseFeed;
use super::http;
use super::settings::Serve;
use crate::config::Config;
use crate::live::{self, Message, Update};
use crate::model::Filter;
use crate::report::closes_metrics::ClosesFeed;
use crate::report::prometheus::{Exposition, TextFormat, render};
use crate::shutdown::Shutdown;

/// How long open connections may take to finish once a stop is requested.
const DRAIN: Duration = Duration::from_secs(5);

/// Runs `lingertop serve` until SIGINT, SIGTERM or SIGHUP. SIGHUP ends it like the others
/// (no reload: a supervisor that sends HUP to reload gets a clean exit and restarts it
/// with the new config, which is simpler to reason about than a half-applied reload).
pub fn run(cfg: Config, args: &Serve) -> Result<ExitCode> {
    let listen = cfg.serve.listen;
    super::runtime()?.block_on(serve(cfg, listen, args))
}

/// What the handlers read.
#[derive(Clone)]
struct AppState {
    latest: watch::Receiver<Arc<Exposition>>,
    /// `/healthz` fails when the last successful poll is older than this.
    stale_after: Duration,
}

async fn serve(cfg: Config, listen: SocketAddr, args: &Serve) -> Result<ExitCode> {
    let events = args.events;
    let mut shutdown = Shutdown::install().context("cannot install signal handlers")?;
    // Bind before anything else so a taken port is reported at once.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!(bind_error(listen, &e)))?;
    let local = listener
        .local_addr()
        .context("cannot read the address listened on")?;

    // The close rules (reset storm, TIME_WAIT overflow) judged at each poll, their alerts
    // among `lingertop_active_alerts`; the closes of every namespace read. Started before
    // the poll loop, which names owners by the events too.
    let (mut feed, mut stats) = CloseFeed::start(events, &cfg.netns, cfg.interval, &cfg.rules)?;
    if let Some(note) = &feed.note {
        crate::stderr::say!("lingertop: {note}");
    }
    let (tx, mut rx) = mpsc::channel(2);
    let live = live::spawn(
        super::open_collector(cfg.backend, &cfg.netns, false)?,
        &cfg,
        super::live_scope(Filter::default(), feed.owners()),
        tx,
    )
    .context("cannot start the poll thread")?;
    let top_n = cfg.serve.top_n;
    let source = feed.source.described();
    // `--record PATH`: every poll also to the recording, on the recorder's own thread.
    let sink = match &args.record {
        Some(to) => Some(super::record::RecordSink::start(
            to,
            &cfg,
            feed.source.source().name(),
        )?),
        None => None,
    };
    let mut closes = ClosesFeed::new(&feed.source);

    // Wait for the first poll, so /metrics never answers without data. Scrapers that
    // connect meanwhile wait in the listen queue.
    let first = tokio::select! {
        _ = shutdown.requested() => return Ok(ExitCode::SUCCESS),
        msg = rx.recv() => msg,
    };
    let first = match first {
        Some(Message::Update(u)) => u,
        // The very first read failed: a setup problem, not a passing one.
        Some(Message::PollFailed(e)) => bail!("{e}"),
        // serve asks for no close.
        Some(Message::Closed(_)) => bail!("the poll thread answered a close serve never asked for"),
        None => bail!("the poll thread stopped unexpectedly"),
    };
    let mut with_closes = move |mut e: Exposition, u: &Arc<Update>| {
        e.closes = Some(Arc::new(closes.exposition(&feed.source, top_n)));
        let drained = feed.drain();
        stats.add_closes(&drained);
        let close_alerts = feed.judge(&mut stats, Some(&u.snapshot));
        e.add_alerts(&close_alerts);
        if let Some(sink) = &sink {
            sink.send(u, drained, super::record::all_alerts(u, close_alerts));
        }
        e
    };
    let (latest_tx, latest) = watch::channel(Arc::new(with_closes(
        Exposition::from_update(&first, 0, top_n),
        &first,
    )));
    drop(first);

    let interval = crate::model::duration::compact(cfg.interval);
    let feeder = tokio::spawn(async move {
        let mut errors = 0u64;
        while let Some(msg) = rx.recv().await {
            match msg {
                Message::Update(u) => {
                    let e = Exposition::from_update(&u, errors, top_n);
                    latest_tx.send_replace(Arc::new(with_closes(e, &u)));
                }
                Message::PollFailed(e) => {
                    errors += 1;
                    crate::stderr::say!("lingertop: {e}; trying again in {interval}");
                    latest_tx.send_modify(|x| Arc::make_mut(x).poll_errors = errors);
                }
                // serve asks for no close.
                Message::Closed(_) => {}
            }
        }
    });

    // A Type=notify unit's `systemctl start` returns now, not at the exec (see notify.rs).
    // Failing to say so is no reason to stop serving; systemd times the start out itself.
    if let Err(e) = crate::notify::ready() {
        crate::stderr::say!("lingertop: {e}");
    }
    crate::stderr::say!(
        "lingertop: serving http://{local}/metrics and /healthz, polling every {}, closes from {} (Ctrl-C to stop)",
        crate::model::duration::compact(cfg.interval),
        source
    );
    let limits = listening_limits(local, &cfg);
    let state = AppState {
        latest,
        stale_after: (cfg.interval * 3).max(Duration::from_secs(10)),
    };
    let app = router(state);

    // Scrapes in flight may finish on a stop, but a client that does not go is not waited for.
    http::serve(
        listener,
        app,
        limits,
        async move {
            shutdown.requested().await;
        },
        DRAIN,
    )
    .await;
    feeder.abort();
    drop(live);
    Ok(ExitCode::SUCCESS)
}

/// Says what a listener off loopback exposes, and fits the connection cap under the
/// open-files limit (saying so when it had to be lowered).
fn listening_limits(local: SocketAddr, cfg: &Config) -> http::Limits {
    // `[::ffff:127.0.0.1]` is loopback too: IPv4-mapped addresses are judged as IPv4.
    if !local.ip().to_canonical().is_loopback() {
        crate::stderr::say!(
            "lingertop: {} is not a loopback address: anyone who can reach port {} sees this host's process names and addresses",
            local.ip(),
            local.port()
        );
    }

    let (limits, lowered) = http::fitted(cfg.serve.limits, http::open_files_limit());
    if lowered {
        crate::stderr::say!(
            "lingertop: serving at most {} connections at once (serve.max-connections is {}, but the open-files limit is {}; raise it with `ulimit -n`)",
            limits.max_connections,
            cfg.serve.limits.max_connections,
            http::open_files_limit().unwrap_or(0)
        );
    }
    limits
}

/// The exporter's routes.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/", get(index))
        .fallback(not_found)
        .with_state(state)
}

/// A bind failure as one line that says what to do.
fn bind_error(addr: SocketAddr, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let what = match e.kind() {
        ErrorKind::AddrInUse => format!(
            "the port is already in use (another lingertop serve?); choose another with --listen {}:PORT",
            addr.ip()
        ),
        ErrorKind::PermissionDenied => {
            "permission denied (ports below 1024 need root); choose a higher port with --listen"
                .to_string()
        }
        ErrorKind::AddrNotAvailable => format!(
            "no interface of this host has the address {}; use 127.0.0.1:PORT or an address of this host",
            addr.ip()
        ),
        _ => format!("{e}; check --listen or the config's serve.listen"),
    };
    format!("cannot listen on {addr}: {what}")
}

async fn metrics(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let format = TextFormat::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let latest = Arc::clone(&s.latest.borrow());
    (
        [(header::CONTENT_TYPE, format.content_type())],
        render(&latest, format),
    )
        .into_response()
}

async fn healthz(State(s): State<AppState>) -> Response {
    let latest = Arc::clone(&s.latest.borrow());
    health(&latest, SystemTime::now(), s.stale_after).into_response()
}

/// Healthy while the last successful poll is at most `stale_after` old at `now`.
fn health(latest: &Exposition, now: SystemTime, stale_after: Duration) -> (StatusCode, String) {
    let age = now.duration_since(latest.taken_at).unwrap_or_default();
    if age <= stale_after {
        (StatusCode::OK, "ok\n".to_string())
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "stale: the last successful poll was {} s ago ({} polls failed); see lingertop's stderr\n",
                age.as_secs(),
                latest.poll_errors
            ),
        )
    }
}

async fn index() -> &'static str {
    "lingertop exporter\n/metrics  Prometheus metrics\n/healthz  200 while polls succeed\n"
}

async fn not_found() -> (StatusCode, &'static str) {
    (
        StatusCode::NOT_FOUND,
        "not found; lingertop serves /metrics and /healthz\n",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuleId;
    use crate::model::state::STATE_COUNT;
    use crate::report::prometheus::Ranked;

    fn exposition(taken_at: SystemTime, poll_errors: u64) -> Exposition {
        Exposition {
            taken_at,
            polls: 3,
            poll_errors,
            poll_duration: Duration::ZERO,
            process_info_partial: false,
            oldest_close_wait_from: None,
            connections: [[0; 2]; STATE_COUNT],
            close_wait_by_process: Ranked {
                top: Vec::new(),
                other: 0,
            },
            time_wait_by_remote: Ranked {
                top: Vec::new(),
                other: 0,
            },
            netns: Vec::new(),
            netns_other: [0; STATE_COUNT],
            ports_by_destination: Vec::new(),
            ports_other: 0,
            ephemeral_range_size: 1,
            oldest_close_wait: Duration::ZERO,
            alerts: [[0; 2]; RuleId::ALL.len()],
            state_read_at: [taken_at; STATE_COUNT],
            closes: None,
        }
    }

    #[test]
    fn health_turns_unavailable_when_polls_go_stale() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let stale_after = Duration::from_secs(10);
        let e = exposition(t0, 4);
        assert_eq!(
            health(&e, t0 + Duration::from_secs(10), stale_after).0,
            StatusCode::OK
        );
        let (status, body) = health(&e, t0 + Duration::from_secs(11), stale_after);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("11 s ago") && body.contains("4 polls failed"),
            "{body}"
        );
    }

    #[test]
    fn bind_errors_say_what_to_do() {
        let addr: SocketAddr = "127.0.0.1:9797".parse().unwrap();
        let taken = bind_error(addr, &std::io::ErrorKind::AddrInUse.into());
        assert!(
            taken.contains("127.0.0.1:9797") && taken.contains("already in use"),
            "{taken}"
        );
        assert!(taken.contains("--listen 127.0.0.1:PORT"), "{taken}");
        let denied = bind_error(addr, &std::io::ErrorKind::PermissionDenied.into());
        assert!(denied.contains("below 1024"), "{denied}");
    }
}
