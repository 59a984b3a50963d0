//! The plan: which filesystems to freeze, identified by superblock, and in which order.
//!
//! Input is the text of `/proc/self/mountinfo` and a [`Selection`]: either the mounts the
//! caller named (already resolved to mount ids on opened descriptors, so a string never decides
//! what is frozen) or every freezable filesystem minus excludes. Output is a list of
//! [`Target`]s, one per superblock (`major:minor`), each with every mount through which it was
//! reached; a list of [`Skip`]s with reasons; and, from [`Plan::order`], the freeze order.
//!
//! Nothing here performs I/O. Storage dependencies (a loop device's backing file) are found by
//! the executor and added with [`Plan::storage_dependency`].

use core::fmt;

use heapless::Vec;

use crate::fstype::{classify, Freezability};
use crate::mountinfo::{Dev, Escaped, MountEntry, MountInfo, ParseError};
use crate::order::{Constraints, Cycle, NodeSet, MAX_NODES};
use crate::status::Status;

/// How many mounts of one superblock a target records (more are counted, not stored).
pub const MAX_MOUNTS_PER_TARGET: usize = 8;

/// How far up the mount tree nesting is followed.
const MAX_NESTING_DEPTH: usize = 64;

/// One mount through which a target is reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MountRef<'a> {
    /// The mount id (first field of mountinfo).
    pub mount_id: u32,
    /// The parent mount id.
    pub parent_id: u32,
    /// Where it is mounted.
    pub mount_point: Escaped<'a>,
    /// The index of the caller's argument that named this mount, if one did.
    pub arg: Option<usize>,
}

impl<'a> MountRef<'a> {
    fn of(e: &MountEntry<'a>, arg: Option<usize>) -> Self {
        MountRef {
            mount_id: e.mount_id,
            parent_id: e.parent_id,
            mount_point: e.mount_point,
            arg,
        }
    }
}

/// One filesystem (superblock) to freeze.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// The superblock's device number: the identity of the target.
    pub dev: Dev,
    /// Filesystem type, e.g. `ext4`.
    pub fs_type: Escaped<'a>,
    /// The mount source, e.g. `/dev/loop0`.
    pub source: Escaped<'a>,
    /// The mount to freeze through: the first one named, or the first one in mount order.
    pub primary: MountRef<'a>,
    /// Further mounts of the same superblock (named ones, or in "all" mode every one).
    pub others: Vec<MountRef<'a>, MAX_MOUNTS_PER_TARGET>,
    /// Mounts beyond the capacity of `others`.
    pub others_dropped: usize,
    /// Position of the primary mount in mount order (later mounts freeze first).
    pub position: usize,
}

impl<'a> Target<'a> {
    /// The primary mount and then the others.
    pub fn mounts(&self) -> impl Iterator<Item = &MountRef<'a>> {
        core::iter::once(&self.primary).chain(self.others.iter())
    }

    fn add_mount(&mut self, m: MountRef<'a>) {
        if self.mounts().any(|x| x.mount_id == m.mount_id) {
            return;
        }
        if self.others.push(m).is_err() {
            self.others_dropped += 1;
        }
    }
}

/// Why a mount is not frozen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// Its filesystem type cannot be frozen.
    NotFreezable(&'static str),
    /// Its superblock is read-only: it cannot change, so it is consistent without a freeze.
    ReadOnly,
    /// The caller excluded it.
    Excluded,
    /// Selection by disk: it spans disks outside the group too, and the caller allowed that
    /// (`--allow-partial-group`): not frozen, not covered.
    PartialGroup,
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::NotFreezable(why) => f.write_str(why),
            SkipReason::ReadOnly => {
                f.write_str("mounted read-only: it cannot change, so it needs no freeze")
            }
            SkipReason::Excluded => f.write_str("excluded"),
            SkipReason::PartialGroup => f.write_str(
                "on disks outside the group too: not frozen, not covered by the snapshot",
            ),
        }
    }
}

/// A mount left out of the plan, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Skip<'a> {
    /// The mount id.
    pub mount_id: u32,
    /// Where it is mounted.
    pub mount_point: Escaped<'a>,
    /// Its filesystem type.
    pub fs_type: Escaped<'a>,
    /// Its superblock.
    pub dev: Dev,
    /// The caller's argument that named it, if one did.
    pub arg: Option<usize>,
    /// Why it is skipped.
    pub reason: SkipReason,
}

/// What to freeze.
#[derive(Clone, Copy, Debug)]
pub enum Selection<'s> {
    /// The mounts the caller named, as mount ids read from their opened descriptors (statx
    /// `STATX_MNT_ID`), in argument order.
    Named(&'s [u32]),
    /// Every freezable, writable filesystem except those with these superblocks.
    All {
        /// Superblocks to leave out.
        exclude: &'s [Dev],
    },
    /// Selection by disk: the filesystems with these superblocks (the ones on the caller's
    /// disks; a read-only or unfreezable one is skipped with its reason), and the ones on
    /// disks both inside and outside the group, skipped as [`SkipReason::PartialGroup`].
    /// Every other mount is left out silently (it is on other disks).
    Disks {
        /// Superblocks wholly on the group's disks.
        keep: &'s [Dev],
        /// Superblocks partly on them.
        partial: &'s [Dev],
    },
}

/// Why a plan cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanErrorKind {
    /// The mountinfo text is malformed.
    Mountinfo(ParseError),
    /// A named mount id is not in mountinfo (it was unmounted meanwhile).
    MountGone {
        /// The mount id.
        mount_id: u32,
    },
    /// A named filesystem cannot be frozen.
    NotFreezable {
        /// Why.
        reason: &'static str,
    },
    /// More filesystems than the plan's capacity.
    TooManyTargets {
        /// The capacity.
        capacity: usize,
    },
    /// Two targets each live on the other's storage.
    Cycle {
        /// One target index.
        a: usize,
        /// The other target index.
        b: usize,
    },
}

/// A failed plan: the stable status, what went wrong, and which argument it concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanError {
    /// What went wrong.
    pub kind: PlanErrorKind,
    /// The caller's argument index, when one argument is to blame.
    pub arg: Option<usize>,
}

impl PlanError {
    /// The stable status for this error.
    pub const fn status(&self) -> Status {
        match self.kind {
            PlanErrorKind::Mountinfo(_) => Status::Internal,
            PlanErrorKind::MountGone { .. } => Status::BadTarget,
            PlanErrorKind::NotFreezable { .. } => Status::NotFreezable,
            PlanErrorKind::TooManyTargets { .. } | PlanErrorKind::Cycle { .. } => {
                Status::PlanRefused
            }
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            PlanErrorKind::Mountinfo(e) => write!(f, "cannot read the mount table: {e}"),
            PlanErrorKind::MountGone { mount_id } => {
                write!(f, "mount {mount_id} disappeared while planning; try again")
            }
            PlanErrorKind::NotFreezable { reason } => write!(f, "cannot be frozen: {reason}"),
            PlanErrorKind::TooManyTargets { capacity } => {
                write!(f, "more than {capacity} filesystems to freeze; name fewer")
            }
            PlanErrorKind::Cycle { .. } => f.write_str(
                "two filesystems each hold the other's storage (a loop-device cycle); no safe order exists",
            ),
        }
    }
}

/// The targets, skips and storage dependencies of one freeze, for up to `N` targets.
///
/// `N` is also the capacity for skips (extra skips are counted in [`Plan::skips_dropped`]).
/// `N` must not exceed [`MAX_NODES`].
#[derive(Clone, Debug)]
pub struct Plan<'a, const N: usize> {
    mountinfo: MountInfo<'a>,
    targets: Vec<Target<'a>, N>,
    skips: Vec<Skip<'a>, N>,
    skips_dropped: usize,
    /// `storage_before[j]`: targets whose storage dependency requires them before `j`.
    storage_before: [NodeSet; N],
}

/// A freeze order: target indexes, first to freeze first.
pub type Order<const N: usize> = Vec<u16, N>;

impl<'a, const N: usize> Plan<'a, N> {
    const CAPACITY_OK: () = assert!(N <= MAX_NODES, "a plan holds at most MAX_NODES targets");

    /// Builds the plan for `selection` from the mountinfo text.
    pub fn build(mountinfo: MountInfo<'a>, selection: Selection<'_>) -> Result<Self, PlanError> {
        #[allow(clippy::let_unit_value)]
        let () = Self::CAPACITY_OK;
        if let Err(e) = mountinfo.validate() {
            return Err(PlanError {
                kind: PlanErrorKind::Mountinfo(e),
                arg: None,
            });
        }
        let mut plan = Plan {
            mountinfo,
            targets: Vec::new(),
            skips: Vec::new(),
            skips_dropped: 0,
            storage_before: [0; N],
        };
        match selection {
            Selection::Named(ids) => plan.select_named(ids)?,
            Selection::All { exclude } => plan.select_all(exclude)?,
            Selection::Disks { keep, partial } => plan.select_disks(keep, partial)?,
        }
        Ok(plan)
    }

    fn select_named(&mut self, ids: &[u32]) -> Result<(), PlanError> {
        for (arg, &mount_id) in ids.iter().enumerate() {
            let found =
                self.mountinfo.entries().enumerate().find_map(|(pos, e)| {
                    e.ok().filter(|e| e.mount_id == mount_id).map(|e| (pos, e))
                });
            let Some((position, entry)) = found else {
                return Err(PlanError {
                    kind: PlanErrorKind::MountGone { mount_id },
                    arg: Some(arg),
                });
            };
            if let Freezability::NotFreezable(reason) = classify(entry.fs_type.raw()) {
                return Err(PlanError {
                    kind: PlanErrorKind::NotFreezable { reason },
                    arg: Some(arg),
                });
            }
            if entry.super_read_only() {
                self.skip(&entry, Some(arg), SkipReason::ReadOnly);
                continue;
            }
            self.add(&entry, position, Some(arg))
                .map_err(|kind| PlanError {
                    kind,
                    arg: Some(arg),
                })?;
        }
        Ok(())
    }

    fn select_all(&mut self, exclude: &[Dev]) -> Result<(), PlanError> {
        let mountinfo = self.mountinfo;
        for (position, entry) in mountinfo.entries().enumerate() {
            let Ok(entry) = entry else { continue };
            let reason = if let Freezability::NotFreezable(why) = classify(entry.fs_type.raw()) {
                Some(SkipReason::NotFreezable(why))
            } else if exclude.contains(&entry.dev) {
                Some(SkipReason::Excluded)
            } else if entry.super_read_only() {
                Some(SkipReason::ReadOnly)
            } else {
                None
            };
            match reason {
                Some(reason) => self.skip(&entry, None, reason),
                None => self
                    .add(&entry, position, None)
                    .map_err(|kind| PlanError { kind, arg: None })?,
            }
        }
        Ok(())
    }

    fn select_disks(&mut self, keep: &[Dev], partial: &[Dev]) -> Result<(), PlanError> {
        let mountinfo = self.mountinfo;
        for (position, entry) in mountinfo.entries().enumerate() {
            let Ok(entry) = entry else { continue };
            let reason = if partial.contains(&entry.dev) {
                SkipReason::PartialGroup
            } else if !keep.contains(&entry.dev) {
                continue;
            } else if let Freezability::NotFreezable(why) = classify(entry.fs_type.raw()) {
                SkipReason::NotFreezable(why)
            } else if entry.super_read_only() {
                SkipReason::ReadOnly
            } else {
                self.add(&entry, position, None)
                    .map_err(|kind| PlanError { kind, arg: None })?;
                continue;
            };
            self.skip(&entry, None, reason);
        }
        Ok(())
    }

    fn skip(&mut self, e: &MountEntry<'a>, arg: Option<usize>, reason: SkipReason) {
        let s = Skip {
            mount_id: e.mount_id,
            mount_point: e.mount_point,
            fs_type: e.fs_type,
            dev: e.dev,
            arg,
            reason,
        };
        if self.skips.push(s).is_err() {
            self.skips_dropped += 1;
        }
    }

    fn add(
        &mut self,
        e: &MountEntry<'a>,
        position: usize,
        arg: Option<usize>,
    ) -> Result<(), PlanErrorKind> {
        let m = MountRef::of(e, arg);
        if let Some(t) = self.targets.iter_mut().find(|t| t.dev == e.dev) {
            t.add_mount(m);
            return Ok(());
        }
        let t = Target {
            dev: e.dev,
            fs_type: e.fs_type,
            source: e.source,
            primary: m,
            others: Vec::new(),
            others_dropped: 0,
            position,
        };
        self.targets
            .push(t)
            .map_err(|_| PlanErrorKind::TooManyTargets { capacity: N })
    }

    /// The targets, in the order they were found (not the freeze order).
    pub fn targets(&self) -> &[Target<'a>] {
        &self.targets
    }

    /// The mounts left out, with reasons.
    pub fn skips(&self) -> &[Skip<'a>] {
        &self.skips
    }

    /// Skips beyond capacity, counted but not stored.
    pub fn skips_dropped(&self) -> usize {
        self.skips_dropped
    }

    /// The mount table the plan was made from.
    pub fn mountinfo(&self) -> MountInfo<'a> {
        self.mountinfo
    }

    /// The target whose superblock is mounted at `mount_id`, if it is in the plan.
    pub fn target_of_mount(&self, mount_id: u32) -> Option<usize> {
        let dev = self.mountinfo.find(mount_id)?.ok()?.dev;
        self.target_of_dev(dev)
    }

    /// The target with this superblock, if it is in the plan.
    pub fn target_of_dev(&self, dev: Dev) -> Option<usize> {
        self.targets.iter().position(|t| t.dev == dev)
    }

    /// Records that `target`'s storage lives in a file on the filesystem mounted at
    /// `backing_mount_id` (a loop device's backing file): `target` must be frozen first, or
    /// the flush of its dirty data would wait forever on the already frozen backing filesystem.
    /// Returns the index of the target holding the storage, if that filesystem is in the plan.
    pub fn storage_dependency(&mut self, target: usize, backing_mount_id: u32) -> Option<usize> {
        let holder = self.target_of_mount(backing_mount_id)?;
        if target < self.targets.len() {
            if let Some(row) = self.storage_before.get_mut(holder) {
                *row |= 1u128 << target;
            }
        }
        Some(holder)
    }

    /// The freeze order: storage dependencies first (a cycle among them is refused), then
    /// nesting (a child mount before its parent) where it does not contradict them, then
    /// reverse mount order. Thaw in exact reverse.
    pub fn order(&self) -> Result<Order<N>, PlanError> {
        let n = self.targets.len();
        let mut c = Constraints::new(n).ok_or(PlanError {
            kind: PlanErrorKind::TooManyTargets { capacity: N },
            arg: None,
        })?;
        for (then, row) in self.storage_before.iter().enumerate().take(n) {
            for first in 0..n {
                if row & (1u128 << first) != 0 {
                    c.hard(first, then);
                }
            }
        }
        c.check().map_err(|Cycle { a, b }| PlanError {
            kind: PlanErrorKind::Cycle { a, b },
            arg: None,
        })?;
        for (child, t) in self.targets.iter().enumerate() {
            for m in t.mounts() {
                self.for_each_ancestor_target(m, t.dev, |parent| {
                    c.soft(child, parent);
                });
            }
        }
        let mut idx = [0u16; N];
        c.sort(|i| self.targets.get(i).map_or(0, |t| t.position), &mut idx)
            .map_err(|Cycle { a, b }| PlanError {
                kind: PlanErrorKind::Cycle { a, b },
                arg: None,
            })?;
        let mut out = Order::new();
        for &i in idx.iter().take(n) {
            // Capacity is N and n <= N, so this cannot fail; stay total anyway.
            let _ = out.push(i);
        }
        Ok(out)
    }

    /// Splits a freeze order into waves of targets that may be frozen at once: `out[p]` is
    /// set when position `p` of `order` (target indexes, e.g. from [`Plan::order`], possibly
    /// with some left out) must wait for an earlier position of its wave, that is when the
    /// storage of a target in the running wave depends, directly or through other targets, on
    /// `order[p]`. Nesting does not matter here (freezing a child and its parent at once is
    /// safe); storage does (the upper filesystem's flush must reach the lower one before that
    /// one freezes). Positions beyond `out` are not written. Allocation-free.
    pub fn wave_starts(&self, order: &[u16], out: &mut [bool]) {
        let n = self.targets.len();
        let mut before = self.storage_before;
        // Transitive closure (Warshall on bit rows): targets left out of `order` still link
        // the ones around them.
        for k in 0..n {
            for j in 0..n {
                if before[j] & (1u128 << k) != 0 {
                    before[j] |= before[k];
                }
            }
        }
        let mut wave: NodeSet = 0;
        for (p, &t) in order.iter().enumerate() {
            let t = usize::from(t);
            let waits = before.get(t).is_some_and(|b| b & wave != 0) || t >= n;
            let start = p == 0 || waits;
            if start {
                wave = 0;
            }
            if t < n {
                wave |= 1u128 << t;
            }
            if let Some(o) = out.get_mut(p) {
                *o = start;
            }
        }
    }

    /// Calls `f` with every other target that `m` is (transitively) mounted inside.
    fn for_each_ancestor_target(&self, m: &MountRef<'a>, own: Dev, mut f: impl FnMut(usize)) {
        let mut id = m.parent_id;
        let mut last = m.mount_id;
        for _ in 0..MAX_NESTING_DEPTH {
            if id == last {
                break;
            }
            let Some(Ok(e)) = self.mountinfo.find(id) else {
                break;
            };
            if e.dev != own {
                if let Some(u) = self.target_of_dev(e.dev) {
                    f(u);
                }
            }
            last = id;
            id = e.parent_id;
        }
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
