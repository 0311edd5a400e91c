//! The dashboard's views (all connections, by state, by process, by remote endpoint, by
//! network namespace): their
//! titles and columns.

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum View {
    All,
    ByState,
    ByProcess,
    ByRemote,
    ByNetns,
}

impl View {
    pub const ALL: [View; 5] = [
        View::All,
        View::ByState,
        View::ByProcess,
        View::ByRemote,
        View::ByNetns,
    ];

    pub fn title(self) -> &'static str {
        match self {
            View::All => "All connections",
            View::ByState => "By state",
            View::ByProcess => "By process",
            View::ByRemote => "By remote endpoint",
            View::ByNetns => "By namespace",
        }
    }

    pub(super) fn index(self) -> usize {
        View::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }

    /// Column titles; the sort key is an index into these.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            View::All | View::ByState => &["STATE", "LOCAL", "REMOTE", "PROCESS", "IN STATE"],
            View::ByProcess => &[
                "PROCESS", "PID", "TOTAL", "ESTAB", "CLOSE_W", "CW/MIN", "TIME_W", "FIN_W",
                "LAST_A",
            ],
            View::ByRemote => &["REMOTE", "TIME_WAIT", "TOTAL", "PORTS USED", "FROM"],
            View::ByNetns => &[
                "NETNS", "KIND", "TOTAL", "ESTAB", "CLOSE_W", "OLD_CW", "CW/MIN", "TIME_W",
                "FIN_W", "LAST_A",
            ],
        }
    }

    /// The columns a view shows only where the table has room and the poll has their data
    /// (namespaces, the kernel's timers and queues, the kernel's reset events), after
    /// [`View::columns`]: their sort keys go on from `columns().len()`.
    pub fn extra_columns(self) -> &'static [&'static str] {
        match self {
            View::All | View::ByState => &["VIA", "NETNS", "TIMER", "RECV-Q", "SEND-Q"],
            View::ByProcess => &["RST OUT", "RST IN", "RST UNREAD", "RST LINGER0"],
            View::ByRemote | View::ByNetns => &[],
        }
    }

    /// The title of column `col` (a sort key): one of [`View::columns`] or of
    /// [`View::extra_columns`].
    pub fn column_name(self, col: usize) -> &'static str {
        let base = self.columns();
        match base.get(col) {
            Some(n) => n,
            None => self
                .extra_columns()
                .get(col - base.len())
                .copied()
                .unwrap_or(""),
        }
    }

    /// Whether column `col` sorts worst first (largest first) on its first press: the
    /// counts, rates, ages, timers and queues; names and addresses sort A to Z.
    pub fn worst_first(self, col: usize) -> bool {
        !matches!(
            self.column_name(col),
            "STATE" | "LOCAL" | "REMOTE" | "PROCESS" | "PID" | "VIA" | "NETNS" | "KIND" | "FROM"
        )
    }

    /// The sort a view starts with, worst first: by state (the connection views), the
    /// most CLOSE_WAIT (processes, namespaces), the most TIME_WAIT (remotes).
    pub fn default_sort(self) -> (usize, bool) {
        match self {
            View::All | View::ByState => (0, false),
            View::ByProcess | View::ByNetns => (4, true),
            View::ByRemote => (1, true),
        }
    }
}
