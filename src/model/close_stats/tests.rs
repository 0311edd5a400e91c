use super::*;
use crate::model::close::{CloseKind, ResetReason};

fn close(kind: CloseKind, pid: Option<u32>, lifetime: Option<Duration>) -> Close {
    let reason = (kind == CloseKind::ResetSent).then_some(ResetReason::Linger0);
    let name = pid.map(|p| format!("p{p}"));
    let owner = pid.zip(name.as_deref());
    Close::sample(kind, reason, owner, lifetime.map(|d| d.as_nanos() as u64))
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn lifetimes_fall_in_their_bucket_and_short_ones_count_as_between_polls() {
    let mut s = CloseStats::new(CloseSource::Kernel, None, Duration::from_secs(2));
    let lives = [
        Some(Duration::from_micros(300)),
        Some(ms(1)),
        Some(ms(9)),
        Some(ms(150)),
        Some(ms(1999)),
        Some(Duration::from_secs(2)),
        Some(Duration::from_secs(60)),
        None,
    ];
    let closes: Vec<Close> = lives
        .iter()
        .map(|l| close(CloseKind::GracefulActive, Some(1), *l))
        .collect();
    s.add_closes(&closes);
    // <1ms, <10ms, <100ms, <1s, <10s, the rest.
    assert_eq!(s.lifetimes, [1, 2, 0, 1, 2, 1]);
    assert_eq!(s.lifetime_unknown, 1);
    assert_eq!(s.between_polls, 5, "the lifetimes under the 2 s interval");
}

#[test]
fn rates_are_over_the_last_window_only() {
    let mut s = CloseStats::new(CloseSource::Kernel, None, Duration::from_secs(1));
    assert_eq!(s.rate(|k| k.reset_sent), None, "no rate before two marks");
    s.mark(Duration::ZERO);
    // 100 resets in the first second, then nothing for ten seconds.
    let burst: Vec<Close> = (0..100)
        .map(|_| close(CloseKind::ResetSent, Some(7), Some(ms(2))))
        .collect();
    s.add_closes(&burst);
    s.mark(Duration::from_secs(1));
    assert_eq!(s.rate(|k| k.reset_sent), Some(100.0));
    for t in 2..=11 {
        s.mark(Duration::from_secs(t));
    }
    assert_eq!(
        s.rate(|k| k.reset_sent),
        Some(0.0),
        "the burst left the window"
    );
    assert_eq!(s.tally.all.reset_sent, 100, "but stays counted since start");
    assert_eq!(s.elapsed(), Duration::from_secs(11));
}

#[test]
fn counter_rates_follow_the_counters_growth() {
    let mut s = CloseStats::new(CloseSource::Counters, None, Duration::from_secs(1));
    s.mark(Duration::ZERO);
    s.set_counters(CounterCloses {
        resets_sent: 40,
        time_wait_overflow: 3,
        ..CounterCloses::default()
    });
    s.mark(Duration::from_secs(4));
    assert_eq!(s.counter_rate(|c| c.resets_sent), Some(10.0));
    assert_eq!(s.counter_rate(|c| c.time_wait_overflow), Some(0.75));
}

#[test]
fn top_resetters_rank_by_resets_and_leave_out_the_graceful() {
    let mut s = CloseStats::new(CloseSource::Kernel, None, Duration::from_secs(1));
    let mut v = vec![];
    v.extend((0..3).map(|_| close(CloseKind::ResetSent, Some(10), None)));
    v.extend((0..5).map(|_| close(CloseKind::ResetReceived, Some(20), None)));
    v.extend((0..50).map(|_| close(CloseKind::GracefulActive, Some(30), None)));
    v.push(close(CloseKind::ResetSent, None, None));
    s.add_closes(&v);
    let top: Vec<u32> = s.top_resetters(5).iter().map(|p| p.pid).collect();
    assert_eq!(top, vec![20, 10]);
    let r = |pid| s.resets_of(pid).map(|r| (r.sent, r.received));
    assert_eq!(r(10), Some((3, 0)));
    assert_eq!(r(20), Some((0, 5)));
    assert_eq!(r(30), Some((0, 0)));
    assert_eq!(s.tally.unowned.reset_sent, 1);
}

#[test]
fn the_counters_cannot_tell_processes_apart() {
    let s = CloseStats::new(CloseSource::Counters, None, Duration::from_secs(1));
    assert_eq!(s.resets_of(10), None);
}
