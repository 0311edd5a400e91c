//! A port range (the kernel's ephemeral range, the machine's or a namespace's): a leaf, so
//! the snapshot, the namespaces and the port-pressure rule all take it from here.

/// An inclusive port range, such as the kernel's ephemeral range.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PortRange {
    pub low: u16,
    pub high: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.low..=self.high).contains(&port)
    }

    pub fn len(&self) -> u32 {
        u32::from(self.high.saturating_sub(self.low)) + 1
    }

    pub fn is_empty(&self) -> bool {
        self.high < self.low
    }
}
