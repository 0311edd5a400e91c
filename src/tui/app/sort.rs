//! Sorting the table: `s` steps through the columns the table shows, a click on a header
//! sorts on it (worst first for counts, A to Z for names) and a second click on the same
//! header reverses it.

use super::App;

impl App {
    /// The sort keys of the columns the last frame showed, left to right; the view's own
    /// columns before the first frame.
    fn shown_columns(&self) -> Vec<usize> {
        let shown: Vec<usize> = self.hit.headers.iter().map(|h| h.3).collect();
        if shown.is_empty() {
            (0..self.view.columns().len()).collect()
        } else {
            shown
        }
    }

    /// `s`: the next column shown, in its first direction.
    pub(super) fn next_sort(&mut self) {
        let v = self.view.index();
        let shown = self.shown_columns();
        let next = match shown.iter().position(|&c| c == self.sort[v]) {
            Some(i) => shown[(i + 1) % shown.len()],
            None => shown[0],
        };
        self.sort[v] = next;
        self.sort_desc[v] = self.view.worst_first(next);
        self.rebuild();
    }

    /// A click on the header of column `col` (a sort key): sorts on it, worst first for a
    /// count; on the column already sorted, reverses the direction.
    pub fn click_header(&mut self, col: usize) {
        let v = self.view.index();
        if self.sort[v] == col {
            self.sort_desc[v] = !self.sort_desc[v];
        } else {
            self.sort[v] = col;
            self.sort_desc[v] = self.view.worst_first(col);
        }
        self.rebuild();
    }

    /// The header under a click at (`x`, `y`), as a sort key.
    pub fn header_at(&self, x: u16, y: u16) -> Option<usize> {
        self.hit
            .headers
            .iter()
            .find(|&&(hx, hy, hw, _)| y == hy && x >= hx && x < hx + hw)
            .map(|h| h.3)
    }
}
