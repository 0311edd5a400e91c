//! The selected row as text, for `y`: the row's cells tab-separated in the table's order
//! (state, local, remote, process, in state, via, namespace), then the owner's whole
//! command line, every outside string neutralised ([`crate::sanitize::terminal`]: a tab or
//! newline in a process name cannot split the row, an escape in it cannot reach the
//! terminal raw). The cells the table shows are written by `tui::cells`, as the table's.

use super::App;
use crate::sanitize::terminal;
use crate::tui::cells::{process_text, via};
use crate::tui::copy::COPY_MAX;
use crate::tui::rows::Row;

impl App {
    /// The selected row as one line of tab-separated text, or why there is nothing to copy.
    pub fn row_text(&self) -> Result<String, &'static str> {
        let row = self.selected_row().ok_or("no row selected")?;
        let command = |pid: Option<u32>| -> String {
            let cmd = pid.and_then(|p| self.command_of.and_then(|f| f(p)));
            cmd.map(|c| c.line).unwrap_or_default()
        };
        let cells: Vec<String> = match row {
            Row::Conn(_) | Row::Ghost(_) => {
                let c = self.conn(row).ok_or("the row's connection is gone")?;
                let now = self
                    .shown
                    .as_ref()
                    .map_or_else(std::time::SystemTime::now, |u| u.snapshot.taken_at);
                let age = if matches!(row, Row::Ghost(_)) {
                    "gone".to_string()
                } else {
                    crate::report::state_age_cell(c, now).trim().to_string()
                };
                let netns = self
                    .shown
                    .as_ref()
                    .and_then(|u| u.snapshot.netns.name(c.netns()).map(str::to_string))
                    .unwrap_or_default();
                vec![
                    c.state.name().to_string(),
                    c.local().to_string(),
                    c.remote().to_string(),
                    process_text(c),
                    age,
                    via(c).to_string(),
                    netns,
                    command(c.owner().map(|o| o.pid)),
                ]
            }
            Row::Process(i) => {
                let p = self.procs.get(i).ok_or("the row's process is gone")?;
                vec![
                    p.name.clone(),
                    p.pid.map_or("-".to_string(), |x| x.to_string()),
                    p.total.to_string(),
                    command(p.pid),
                ]
            }
            Row::Remote(i) => {
                let r = self.remotes.get(i).ok_or("the row's endpoint is gone")?;
                vec![
                    r.remote.to_string(),
                    r.time_wait.to_string(),
                    r.total.to_string(),
                ]
            }
            Row::Netns(i) => {
                let n = self
                    .netns_rows
                    .get(i)
                    .ok_or("the row's namespace is gone")?;
                vec![n.name.to_string(), n.kind.to_string(), n.total.to_string()]
            }
            Row::Group(..) => return Err("a group header: select a connection to copy"),
        };
        let line: Vec<String> = cells.iter().map(|c| terminal(c).into_owned()).collect();
        let mut text = line.join("\t");
        if text.len() > COPY_MAX {
            let mut cut = COPY_MAX;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            text.truncate(cut);
        }
        Ok(text)
    }
}
