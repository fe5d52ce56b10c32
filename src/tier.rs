//! Which tier answered a variant request. A leaf: `variants` decides it, `http` writes it as the
//! `Sizer-Tier` header and puts it in the response's extensions, and `telemetry` labels logs and metrics
//! with it from there, so none of them needs another to name it.

/// Which tier answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Memory,
    Copy,
    Computed,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Copy => "copy",
            Tier::Computed => "computed",
        }
    }
}
