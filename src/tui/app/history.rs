//! The filter prompt's history: the filters applied with Enter, newest last, bounded and
//! without duplicates (using one again moves it to the end), browsed with Up and Down as
//! a shell does. Plain data: the dashboard's runner loads and saves it
//! (`mode::dashboard::history`), so nothing here touches a file.

use std::collections::VecDeque;

/// How many filters the history keeps (the oldest go first).
pub const HISTORY_MAX: usize = 100;

/// The filters applied, oldest first, and where Up/Down stand in them.
#[derive(Clone, Debug, Default)]
pub struct FilterHistory {
    entries: VecDeque<String>,
    /// The entry Up/Down show now; `None` while editing the line itself.
    at: Option<usize>,
    /// What was typed before Up was first pressed, given back by Down past the newest.
    draft: String,
    /// Changed since the runner last saved it.
    dirty: bool,
}

impl FilterHistory {
    /// A history holding `lines` (oldest first), blank ones and repeats dropped, bounded.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Self {
        let mut h = FilterHistory::default();
        for l in lines {
            h.add(l);
        }
        h.dirty = false;
        h
    }

    /// Records a filter applied with Enter; ends browsing.
    pub fn push(&mut self, filter: &str) {
        self.add(filter);
        self.reset();
    }

    fn add(&mut self, filter: &str) {
        let filter = filter.trim();
        if filter.is_empty() {
            return;
        }
        if self.entries.back().is_some_and(|e| e == filter) {
            return;
        }
        self.entries.retain(|e| e != filter);
        self.entries.push_back(filter.to_string());
        while self.entries.len() > HISTORY_MAX {
            self.entries.pop_front();
        }
        self.dirty = true;
    }

    /// Back to editing the line (a key other than Up/Down, or the prompt opened again).
    pub fn reset(&mut self) {
        self.at = None;
        self.draft.clear();
    }

    /// The entry before the one shown (Up), skipping one equal to what the line holds so
    /// every Up shows something new; `None` at the oldest.
    pub fn older(&mut self, line: &str) -> Option<&str> {
        let mut i = match self.at {
            None => {
                self.draft = line.to_string();
                self.entries.len()
            }
            Some(i) => i,
        };
        while i > 0 {
            i -= 1;
            if self.entries[i] != line.trim() {
                self.at = Some(i);
                return Some(&self.entries[i]);
            }
        }
        None
    }

    /// The entry after the one shown (Down); past the newest, the line as it was typed.
    /// `None` when not browsing.
    pub fn newer(&mut self) -> Option<String> {
        let i = self.at?;
        if i + 1 < self.entries.len() {
            self.at = Some(i + 1);
            return Some(self.entries[i + 1].clone());
        }
        self.at = None;
        Some(std::mem::take(&mut self.draft))
    }

    /// The entries, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(String::as_str)
    }

    /// Whether it changed since the last call (the runner then saves it).
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn up_and_down_walk_the_history_and_come_back_to_the_draft() {
        let mut h = FilterHistory::from_lines(["port:443", "state:close-wait", "proc:nginx"]);
        assert!(!h.take_dirty(), "loading is no change to save");
        assert_eq!(h.older("sta"), Some("proc:nginx"));
        assert_eq!(h.older("proc:nginx"), Some("state:close-wait"));
        assert_eq!(h.older("state:close-wait"), Some("port:443"));
        assert_eq!(h.older("port:443"), None, "the oldest stays");
        assert_eq!(h.newer().as_deref(), Some("state:close-wait"));
        assert_eq!(h.newer().as_deref(), Some("proc:nginx"));
        assert_eq!(h.newer().as_deref(), Some("sta"), "the draft comes back");
        assert_eq!(h.newer(), None);
    }

    #[test]
    fn repeats_move_to_the_end_and_the_length_is_bounded() {
        let mut h = FilterHistory::default();
        h.push("port:443");
        h.push("state:listen");
        h.push("port:443");
        h.push("  ");
        assert!(h.take_dirty());
        assert_eq!(
            h.entries().collect::<Vec<_>>(),
            ["state:listen", "port:443"]
        );
        h.push("port:443");
        assert!(!h.take_dirty(), "the newest again is no change");
        for i in 0..HISTORY_MAX + 10 {
            h.push(&format!("port:{i}"));
        }
        assert_eq!(h.entries().count(), HISTORY_MAX);
        assert_eq!(h.entries().next(), Some("port:10"));
    }

    #[test]
    fn up_skips_the_entry_the_line_already_shows() {
        // The prompt opens holding the filter applied, usually the newest entry.
        let mut h = FilterHistory::from_lines(["port:443", "state:close-wait"]);
        assert_eq!(h.older("state:close-wait"), Some("port:443"));
    }
}
