//! One freeze -> snapshot -> thaw cycle, by quiesce (a configuration of it) or by the
//! fsfreeze baseline.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::baseline::Fsfreeze;
use crate::error::Result;
use crate::limit::Limit;
use crate::quiesce::QuiesceCli;

/// What one cycle cost.
#[derive(Clone, Copy, Debug)]
pub struct Cycle {
    /// Wall time of the whole cycle, process spawns included.
    pub wall: Duration,
}

/// Who freezes.
#[derive(Clone, Copy)]
pub enum Tool<'a> {
    Quiesce(&'a QuiesceCli),
    Fsfreeze(&'a Fsfreeze),
    Limit(Limit),
}

impl Tool<'_> {
    pub fn cycle(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Cycle> {
        match self {
            Tool::Quiesce(q) => q.cycle(mounts, snapshot),
            Tool::Fsfreeze(f) => f.cycle(mounts, snapshot),
            Tool::Limit(l) => l.cycle(mounts, snapshot),
        }
    }
}
