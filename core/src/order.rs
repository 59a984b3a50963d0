//! Freeze order: a topological sort of "must be frozen before" edges, over bitsets.
//!
//! Up to [`MAX_NODES`] targets; edge sets are `u128` bitsets, which is plenty for the number of
//! filesystems one machine freezes and keeps the sort allocation-free and branch-light.
//!
//! Two kinds of edges exist:
//! - *hard* edges come from storage (a loop filesystem before the filesystem holding its
//!   image): violating one can deadlock the freeze, so a cycle among them is refused;
//! - *soft* edges come from nesting (a child mount before its parent): they are kept only where
//!   they agree with the hard edges and with each other, so that a bind mount that nests two
//!   filesystems inside each other can never make a plan fail.

/// The most targets one order can hold.
pub const MAX_NODES: usize = 128;

/// A set of node indexes below [`MAX_NODES`].
pub type NodeSet = u128;

const fn bit(i: usize) -> NodeSet {
    1u128 << i
}

/// Constraints among `n` nodes: `before[j]` holds every node that must come before `j`.
#[derive(Clone, Copy, Debug)]
pub struct Constraints {
    n: usize,
    before: [NodeSet; MAX_NODES],
}

/// Two nodes that the hard edges require to come before each other (possibly through others).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// One node on the cycle.
    pub a: usize,
    /// Another node on the cycle (equal to `a` for a self-dependency).
    pub b: usize,
}

impl Constraints {
    /// No constraints among `n` nodes; `None` when `n` exceeds [`MAX_NODES`].
    pub const fn new(n: usize) -> Option<Self> {
        if n > MAX_NODES {
            return None;
        }
        Some(Constraints {
            n,
            before: [0; MAX_NODES],
        })
    }

    /// The number of nodes.
    pub const fn len(&self) -> usize {
        self.n
    }

    /// Whether there are no nodes.
    pub const fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Requires `first` to come before `then`. Out-of-range indexes are ignored.
    pub fn hard(&mut self, first: usize, then: usize) {
        if first < self.n && then < self.n {
            self.before[then] |= bit(first);
        }
    }

    /// The transitive closure: `closure[j]` holds everything that must precede `j`.
    fn closure(&self) -> [NodeSet; MAX_NODES] {
        let mut c = self.before;
        // Warshall's algorithm on bit rows: if k precedes j, everything preceding k does too.
        for k in 0..self.n {
            for j in 0..self.n {
                if c[j] & bit(k) != 0 {
                    c[j] |= c[k];
                }
            }
        }
        c
    }

    /// Checks the hard edges for a cycle.
    pub fn check(&self) -> Result<(), Cycle> {
        let c = self.closure();
        for j in 0..self.n {
            if c[j] & bit(j) != 0 {
                // Find a partner: some k that j precedes and that precedes j.
                let b = (0..self.n)
                    .find(|&k| k != j && c[j] & bit(k) != 0 && c[k] & bit(j) != 0)
                    .unwrap_or(j);
                return Err(Cycle { a: j, b });
            }
        }
        Ok(())
    }

    /// Adds `first` before `then` only if that does not contradict what is already required.
    /// Returns whether the edge was kept.
    pub fn soft(&mut self, first: usize, then: usize) -> bool {
        if first >= self.n || then >= self.n || first == then {
            return false;
        }
        let c = self.closure();
        if c[first] & bit(then) != 0 {
            return false;
        }
        self.before[then] |= bit(first);
        true
    }

    /// Writes a total order into `out[..n]`: every constraint respected, and among nodes that
    /// are free to go, the one with the highest `rank` first (callers rank by mount order, so
    /// later mounts freeze first, as the QEMU guest agent does).
    pub fn sort(&self, rank: impl Fn(usize) -> usize, out: &mut [u16]) -> Result<(), Cycle> {
        self.check()?;
        if out.len() < self.n {
            return Err(Cycle { a: 0, b: 0 });
        }
        let mut done: NodeSet = 0;
        for slot in out.iter_mut().take(self.n) {
            let mut pick: Option<usize> = None;
            for j in 0..self.n {
                if done & bit(j) == 0
                    && self.before[j] & !done == 0
                    && pick.is_none_or(|p| rank(j) > rank(p))
                {
                    pick = Some(j);
                }
            }
            // `check` proved acyclic, so some node is always free; stay total anyway.
            let j = pick.ok_or(Cycle { a: 0, b: 0 })?;
            done |= bit(j);
            *slot = j as u16;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(c: &Constraints, rank: impl Fn(usize) -> usize) -> [u16; 8] {
        let mut out = [u16::MAX; 8];
        c.sort(rank, &mut out).unwrap();
        out
    }

    #[test]
    fn free_nodes_go_by_rank_highest_first() {
        let c = Constraints::new(3).unwrap();
        assert_eq!(&sorted(&c, |i| i)[..3], &[2, 1, 0]);
        assert_eq!(&sorted(&c, |i| 10 - i)[..3], &[0, 1, 2]);
    }

    #[test]
    fn hard_edges_win_over_rank() {
        let mut c = Constraints::new(3).unwrap();
        c.hard(0, 2); // 0 before 2, although 2 ranks highest
        assert_eq!(&sorted(&c, |i| i)[..3], &[1, 0, 2]);
    }

    #[test]
    fn chains_are_transitive() {
        let mut c = Constraints::new(4).unwrap();
        c.hard(0, 1);
        c.hard(1, 2);
        c.hard(2, 3);
        assert_eq!(&sorted(&c, |i| i)[..4], &[0, 1, 2, 3]);
    }

    #[test]
    fn hard_cycles_are_refused_and_named() {
        let mut c = Constraints::new(3).unwrap();
        c.hard(0, 1);
        c.hard(1, 2);
        c.hard(2, 0);
        let cyc = c.check().unwrap_err();
        assert_ne!(cyc.a, cyc.b);
        let mut out = [0u16; 3];
        assert!(c.sort(|i| i, &mut out).is_err());

        let mut selfdep = Constraints::new(2).unwrap();
        selfdep.hard(1, 1);
        assert_eq!(selfdep.check(), Err(Cycle { a: 1, b: 1 }));
    }

    #[test]
    fn soft_edges_yield_to_hard_ones_and_each_other() {
        let mut c = Constraints::new(2).unwrap();
        c.hard(0, 1);
        assert!(!c.soft(1, 0), "contradicts a hard edge");
        assert!(c.check().is_ok());
        let mut d = Constraints::new(2).unwrap();
        assert!(d.soft(1, 0));
        assert!(!d.soft(0, 1), "contradicts the first soft edge");
        assert_eq!(&sorted(&d, |i| i)[..2], &[1, 0]);
    }

    #[test]
    fn capacity_is_enforced() {
        assert!(Constraints::new(MAX_NODES).is_some());
        assert!(Constraints::new(MAX_NODES + 1).is_none());
        let mut c = Constraints::new(MAX_NODES).unwrap();
        c.hard(0, MAX_NODES - 1); // the highest-ranked node must wait for the lowest
        let mut out = [0u16; MAX_NODES];
        c.sort(|i| i, &mut out).unwrap();
        assert_eq!(out[0] as usize, MAX_NODES - 2);
        assert_eq!(out[MAX_NODES - 2], 0);
        assert_eq!(out[MAX_NODES - 1] as usize, MAX_NODES - 1);
    }
}
