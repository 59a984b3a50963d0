//! One freeze -> snapshot -> thaw cycle, by quiesce (a configuration of it), by the fsfreeze
//! baseline, or at the limit (in this process or in a fresh one).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use crate::baseline::Fsfreeze;
use crate::error::Result;
use crate::fresh_limit::FreshLimit;
use crate::limit::Limit;
use crate::quiesce::QuiesceCli;

/// What one cycle cost.
#[derive(Clone, Copy, Debug)]
pub struct Cycle {
    /// Wall time of the whole cycle, process spawns included.
    pub wall: Duration,
    /// quiesce's own account of where the time went: its JSON report's `phases` (ms, in
    /// the order of [`PHASES`]); None for the other tools.
    pub phases: Option<[f64; 8]>,
}

/// The phases of quiesce's JSON report, in order.
pub const PHASES: [&str; 8] = [
    "plan", "arm", "hooks", "presync", "freeze", "wait", "thaw", "finish",
];

/// Who freezes.
#[derive(Clone, Copy)]
pub enum Tool<'a> {
    Quiesce(&'a QuiesceCli),
    Fsfreeze(&'a Fsfreeze),
    Limit(Limit),
    /// The limit in a process started for the cycle.
    Fresh(FreshLimit<'a>),
    /// quiesce's runtime API in this process.
    Library,
}

impl Tool<'_> {
    pub fn cycle(&self, mounts: &[PathBuf], snapshot: &[OsString]) -> Result<Cycle> {
        match self {
            Tool::Quiesce(q) => q.cycle(mounts, snapshot),
            Tool::Fsfreeze(f) => f.cycle(mounts, snapshot),
            Tool::Limit(l) => l.cycle(mounts, snapshot),
            Tool::Fresh(f) => f.cycle(mounts, snapshot),
            Tool::Library => crate::library::cycle(mounts, snapshot),
        }
    }
}
