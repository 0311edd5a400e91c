//! The one way lingertop writes a duration for a person. Two renderings of the same units
//! (`ms`, `s`, `min`/`m`, `h`), because a sentence and a table column want different
//! things: words in a sentence (`for > 30 s`, `every 2 s`) and a compact, zero-padded form
//! in a column (`3m05s`), where widths must line up. Parsing stays with `humantime`.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::age::AgeSource;
use super::connection::Connection;

/// `30 s`, `2 min`, `1 h 5 min`; `850 ms` below a second; `1.5 s` below ten seconds when
/// the duration is not whole, so a configured `1500ms` is not shown as `1 s`. For sentences.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 120 {
        if s == 0 && d.as_millis() > 0 {
            return format!("{} ms", d.as_millis());
        }
        let tenths = d.subsec_millis() / 100;
        if s < 10 && tenths > 0 {
            return format!("{s}.{tenths} s");
        }
        format!("{s} s")
    } else if s < 7200 {
        format!("{} min", s / 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

/// `850ms`, `42s`, `3m05s`, `2h04m`: the column form of [`human_duration`].
pub fn compact(d: Duration) -> String {
    if d.is_zero() {
        // A duration, not an age: zero is "0ms" here, "new" only as an age.
        return "0ms".to_string();
    }
    Age(Some(d)).to_string()
}

/// The age of a state in a column: [`compact`]; `-` when unknown; `new` when the state
/// began at this very poll (it started within the last interval).
pub fn fmt_age(d: Option<Duration>) -> String {
    Age(d).to_string()
}

/// [`fmt_age`] as a `Display`, to write a column of ages without a `String` each.
pub struct Age(pub Option<Duration>);

impl fmt::Display for Age {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(d) = self.0 else {
            return f.write_str("-");
        };
        let s = d.as_secs();
        if d.is_zero() {
            f.write_str("new")
        } else if s == 0 {
            write!(f, "{}ms", d.as_millis())
        } else if s < 60 {
            write!(f, "{s}s")
        } else if s < 3600 {
            write!(f, "{}m{:02}s", s / 60, s % 60)
        } else {
            write!(f, "{}h{:02}m", s / 3600, (s % 3600) / 60)
        }
    }
}

/// An age with how it is known, in a few characters: `40s` (observed: lingertop saw the
/// state begin), `≥40s k` (at least, by the kernel's clocks), `≥40s f` (at least, since
/// lingertop's first sight); `-` when unknown. See the guide's docs/ages.md.
pub fn fmt_age_from(age: Option<Duration>, from: Option<AgeSource>) -> String {
    match (age, from) {
        (Some(a), Some(AgeSource::Kernel)) => format!("≥{} k", fmt_age(Some(a))),
        (Some(a), Some(AgeSource::FirstSight)) => format!("≥{} f", fmt_age(Some(a))),
        (a, _) => fmt_age(a),
    }
}

/// [`fmt_age_from`] of `c`'s age in its state at `now`.
pub fn state_age_cell(c: &Connection, now: SystemTime) -> String {
    fmt_age_from(c.state_age(now), c.age_source(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn words_for_sentences() {
        let cases = [
            (0, "0 s"),
            (850, "850 ms"),
            (1_000, "1 s"),
            (1_500, "1.5 s"),
            (9_950, "9.9 s"),
            (10_500, "10 s"),
            (30_000, "30 s"),
            (119_000, "119 s"),
            (120_000, "2 min"),
            (7_199_000, "119 min"),
            (7_200_000, "2 h 0 min"),
            (3_900_000 * 2, "2 h 10 min"),
        ];
        for (n, want) in cases {
            assert_eq!(human_duration(ms(n)), want, "{n} ms");
        }
    }

    #[test]
    fn compact_for_columns() {
        let cases = [
            (850, "850ms"),
            (1_999, "1s"),
            (42_000, "42s"),
            (60_000, "1m00s"),
            (185_000, "3m05s"),
            (3_599_000, "59m59s"),
            (3_600_000, "1h00m"),
            (7_440_000, "2h04m"),
        ];
        for (n, want) in cases {
            assert_eq!(compact(ms(n)), want, "{n} ms");
        }
    }

    #[test]
    fn ages_say_unknown_and_new() {
        assert_eq!(fmt_age(None), "-");
        assert_eq!(fmt_age(Some(Duration::ZERO)), "new");
        assert_eq!(fmt_age(Some(ms(1))), "1ms");
        assert_eq!(fmt_age(Some(ms(185_000))), "3m05s");
    }
}
