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
}
