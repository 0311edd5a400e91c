//! Running close modes to completion on a [`Lab`]: one mode on a fresh connection, or every
//! mode at once. What `lingertop lab --mode`/`--all` and the integration tests run; the
//! printing is the lab mode's runner's.

use super::{CloseMode, CloseOptions, End, Family, Lab, LabError, Pending, Trace};

/// Runs one close mode on a new connection whose server end has the mode's peer behaviour,
/// closing the client end.
pub fn run_mode(
    lab: &Lab,
    action: CloseMode,
    family: Family,
    opts: CloseOptions,
) -> Result<Trace, LabError> {
    start_mode(lab, action, family, opts)?.wait()
}

fn start_mode(
    lab: &Lab,
    action: CloseMode,
    family: Family,
    opts: CloseOptions,
) -> Result<Pending<Trace>, LabError> {
    let ids = lab.open(action.default_behaviour(), 1, family)?;
    let id = *ids.first().ok_or(LabError::Stopped)?;
    lab.close(id, End::Client, action, opts)
}

/// Runs every close mode at once, each on its own connection (they share nothing but the
/// listener, and each watches only its own 4-tuples), in [`CloseMode::ALL`] order.
pub fn run_all(lab: &Lab, family: Family, opts: CloseOptions) -> Result<Vec<Trace>, LabError> {
    let pending = CloseMode::ALL
        .iter()
        .map(|&a| start_mode(lab, a, family, opts))
        .collect::<Result<Vec<_>, _>>()?;
    pending.into_iter().map(Pending::wait).collect()
}
