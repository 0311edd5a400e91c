//! Unit tests of the row engine on fixture connections.
