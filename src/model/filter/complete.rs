//! Tab completion for the filter prompt: the word being typed (the last one) finished as a
//! key (`st` to `state:`) or as one of the key's values (`state:close-w` to
//! `state:close-wait`; `proc:ng` to a process the table holds). Pure: the dashboard says
//! what its poll holds in [`Known`] and cycles through the [`Completion`]'s candidates.

use super::scan::is_separator as is_separator_char;
use crate::model::TcpState;
use crate::model::state::squash;

/// The keys Tab offers, one per test (the aliases still parse), in the order the filter's
/// documentation lists them.
pub const COMPLETED_KEYS: &[&str] = &[
    "state", "port", "lport", "rport", "local", "remote", "pid", "proc", "user", "netns", "lab",
];

/// Values the connections on screen have, for keys whose values are open-ended.
#[derive(Clone, Debug, Default)]
pub struct Known {
    /// Process names, in the order Tab should offer them.
    pub processes: Vec<String>,
    pub users: Vec<String>,
    /// Namespace names and kinds (`host`, `docker`, `pod`).
    pub netns: Vec<String>,
}

/// The ways to finish the last word of a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The text before the part being completed, kept as typed.
    pub keep: String,
    /// Each way to finish it, in the order Tab cycles; never empty.
    pub candidates: Vec<String>,
}

impl Completion {
    /// The whole filter text with the `i`-th candidate (modulo their number) in place.
    pub fn text(&self, i: usize) -> String {
        let n = self.candidates.len().max(1);
        let c = self.candidates.get(i % n).map_or("", String::as_str);
        format!("{}{c}", self.keep)
    }
}

/// The completion of the last word of `text`, `None` when nothing finishes it (a port,
/// an address, an open quote, an unknown key).
pub fn complete(text: &str, known: &Known) -> Option<Completion> {
    let start = last_word_start(text)?;
    let word = &text[start..];
    let body_at = start + usize::from(word.starts_with('!'));
    let body = &text[body_at..];
    let Some((key, after)) = body.split_once(':') else {
        let typed = body.to_ascii_lowercase();
        let candidates: Vec<String> = COMPLETED_KEYS
            .iter()
            .filter(|k| k.starts_with(&typed))
            .map(|k| format!("{k}:"))
            .collect();
        return completion(&text[..body_at], candidates);
    };
    let value_at = body_at + key.len() + 1 + after.rfind(',').map_or(0, |i| i + 1);
    let partial = &text[value_at..];
    let given: Vec<&str> = after.split(',').collect();
    let fits = |v: &str| {
        v.to_lowercase().starts_with(&partial.to_lowercase())
            && !given[..given.len() - 1].contains(&v)
    };
    let candidates: Vec<String> = match key.to_ascii_lowercase().as_str() {
        "state" | "s" => {
            let squashed = squash(partial);
            TcpState::ALL
                .iter()
                .map(|s| s.filter_name())
                .filter(|n| {
                    squash(n).starts_with(&squashed)
                        && !given[..given.len() - 1].contains(&n.as_str())
                })
                .collect()
        }
        "lab" => ["yes", "no"]
            .into_iter()
            .filter(|v| fits(v))
            .map(String::from)
            .collect(),
        "proc" | "process" => values(&known.processes, &fits),
        "user" => values(&known.users, &fits),
        "netns" | "ns" | "container" => {
            let mut all = vec!["host".to_string()];
            all.extend(known.netns.iter().cloned());
            values(&all, &fits)
        }
        _ => Vec::new(),
    };
    completion(&text[..value_at], candidates)
}

fn completion(keep: &str, candidates: Vec<String>) -> Option<Completion> {
    (!candidates.is_empty()).then(|| Completion {
        keep: keep.to_string(),
        candidates,
    })
}

/// The known values `fits` keeps, deduplicated in order, each quoted where the filter
/// would otherwise read it differently.
fn values(all: &[String], fits: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in all.iter().filter(|v| !v.is_empty() && fits(v)) {
        let q = quote(v);
        if !out.contains(&q) {
            out.push(q);
        }
    }
    out
}

/// `v` as a filter value: bare when it is plain, else quoted with the escapes the
/// scanner reads back (`\"`, `\\`, `\x1b`), so a hostile name completes to a value that
/// matches it and never reaches the terminal raw.
fn quote(v: &str) -> String {
    let plain = v
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | '@' | '+'));
    if plain {
        return v.to_string();
    }
    let escaped = crate::sanitize::terminal(v).replace('"', "\\\"");
    format!("\"{escaped}\"")
}

/// Where the last word starts (after the last separator outside quotes); `None` inside an
/// open quote, where Tab would have to guess what the quote holds.
fn last_word_start(text: &str) -> Option<usize> {
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match (quoted, escaped, c) {
            (true, false, '\\') => escaped = true,
            (_, false, '"') => quoted = !quoted,
            (false, _, c) if is_separator_char(c) => start = i + c.len_utf8(),
            _ => escaped = false,
        }
    }
    (!quoted).then_some(start)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cands(text: &str, known: &Known) -> Vec<String> {
        complete(text, known)
            .map(|c| c.candidates)
            .unwrap_or_default()
    }

    #[test]
    fn keys_complete_from_their_first_letters() {
        let k = Known::default();
        assert_eq!(cands("st", &k), ["state:"]);
        assert_eq!(cands("state:close-wait ne", &k), ["netns:"]);
        assert_eq!(cands("p", &k), ["port:", "pid:", "proc:"]);
        assert_eq!(cands("!u", &k), ["user:"]);
        // An empty word offers every key, so Tab on an empty prompt teaches them.
        assert_eq!(cands("", &k).len(), COMPLETED_KEYS.len());
        assert!(cands("zz", &k).is_empty());
        let c = complete("port:443 !l", &k).unwrap();
        assert_eq!(c.text(0), "port:443 !lport:");
        assert_eq!(c.text(1), "port:443 !local:");
        assert_eq!(c.text(2), "port:443 !lab:");
        assert_eq!(c.text(3), "port:443 !lport:", "cycles back to the first");
    }

    #[test]
    fn state_names_complete_and_cycle_in_kernel_order() {
        let k = Known::default();
        assert_eq!(cands("state:close-w", &k), ["close-wait"]);
        assert_eq!(cands("s:clo", &k), ["close", "close-wait", "closing"]);
        assert_eq!(cands("state:TIME_", &k), ["time-wait"]);
        assert_eq!(cands("state:finwait", &k), ["fin-wait-1", "fin-wait-2"]);
        // A value already in the list is not offered again.
        let c = complete("state:close-wait,clo", &k).unwrap();
        assert_eq!(c.candidates, ["close", "closing"]);
        assert_eq!(c.text(0), "state:close-wait,close");
        assert_eq!(cands("state:", &k).len(), TcpState::ALL.len());
        assert!(cands("state:bogus", &k).is_empty());
    }

    #[test]
    fn open_ended_values_come_from_what_the_table_holds() {
        let k = Known {
            processes: vec![
                "nginx".into(),
                "node".into(),
                "my app".into(),
                "a\x1b\"b".into(),
            ],
            users: vec!["www-data".into()],
            netns: vec!["orders-api".into(), "docker".into()],
        };
        assert_eq!(cands("proc:n", &k), ["nginx", "node"]);
        assert_eq!(cands("proc:NG", &k), ["nginx"]);
        assert_eq!(cands("proc:my", &k), ["\"my app\""]);
        // A hostile name completes to an escaped, quoted value that parses back to it.
        let hostile = cands("proc:a", &k);
        assert_eq!(hostile, ["\"a\\x1b\\\"b\""]);
        assert!(super::super::Filter::parse(&format!("proc:{}", hostile[0])).is_ok());
        assert_eq!(cands("user:w", &k), ["www-data"]);
        assert_eq!(cands("netns:", &k), ["host", "orders-api", "docker"]);
        assert_eq!(cands("lab:", &k), ["yes", "no"]);
        assert!(cands("port:44", &k).is_empty(), "ports are not guessed");
        assert!(
            cands("proc:\"my a", &k).is_empty(),
            "an open quote is left alone"
        );
    }
}
