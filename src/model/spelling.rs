//! "Did you mean": the closest known word to a misspelt one, by edit distance, so a filter
//! such as `state:close-wiat` or `stat:listen` is answered with what was meant, in the
//! dashboard's prompt and in the command line's `--filter` message alike.

/// The edit distance between `a` and `b` (optimal string alignment: insertions, deletions,
/// substitutions and the swap of two neighbours, each costing one), over characters.
/// A swap counts once because it is the commonest typo (`wiat` for `wait`).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows of the table: the one before the previous is needed for swaps.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut row: Vec<usize> = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        row[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            row[j] = d;
        }
        std::mem::swap(&mut before, &mut prev);
        std::mem::swap(&mut prev, &mut row);
    }
    prev[b.len()]
}

/// The candidate closest to `given` (compared in lower case), when it is close enough to
/// be a typo of it: at most 2 edits, and fewer than half of `given`'s length, so `x` is
/// never "corrected" into `pid`. The first of equally close candidates wins.
pub fn closest<'a>(given: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_lowercase();
    let len = given.chars().count();
    candidates
        .into_iter()
        .map(|c| (distance(&given, &c.to_lowercase()), c))
        .filter(|&(d, _)| d > 0 && d <= 2 && d * 2 < len)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_each_edit_once_and_a_swap_as_one() {
        assert_eq!(distance("close-wait", "close-wait"), 0);
        assert_eq!(distance("close-wiat", "close-wait"), 1);
        assert_eq!(distance("clse-wait", "close-wait"), 1);
        assert_eq!(distance("close-waitt", "close-wait"), 1);
        assert_eq!(distance("close-wakt", "close-wait"), 1);
        assert_eq!(distance("listne", "listen"), 1);
        assert_eq!(distance("", "pid"), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn closest_answers_typos_only() {
        let states = ["close-wait", "close", "closing", "time-wait", "listen"];
        assert_eq!(closest("close-wiat", states), Some("close-wait"));
        assert_eq!(closest("CLOSE-WIAT", states), Some("close-wait"));
        assert_eq!(closest("tiem-wait", states), Some("time-wait"));
        assert_eq!(closest("lsiten", states), Some("listen"));
        assert_eq!(closest("bogus", states), None);
        // Too short to guess from, and an exact match is no typo.
        assert_eq!(closest("x", ["s", "p"]), None);
        assert_eq!(closest("listen", states), None);
    }
}
