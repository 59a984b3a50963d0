//! The engine: the one allocation-free implementation of a freeze session's lifecycle, which
//! every front end is a thin shell over (the runtime for the CLI, the C ABI for C, Go and
//! Python).
//!
//! (Module documentation: see the end of this work; filled in with the lifecycle.)

pub mod mounts;
pub mod plan;
pub mod text;

pub(crate) use crate::runtime::ErrnoName;

/// Most filesystems one session freezes.
pub const MAX_TARGETS: usize = 64;
