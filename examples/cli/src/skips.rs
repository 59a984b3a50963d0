//! Which skipped filesystems a person wants to read. `quiesce plan` with no mount point skips
//! dozens of kernel and in-memory filesystems on any machine; those are counted by kind in one
//! line, and only the skips nobody would expect are listed in full: a disk filesystem that is
//! left out (read-only, or none of its mount points could be opened) and a filesystem of a type
//! quiesce does not know (vfat, exfat, ...). `--verbose`, named mount points and `--json` show
//! everything.

use quiesce::runtime::SkipInfo;
use quiesce_core::fstype::{family, Family};
use quiesce_core::plan::SkipReason;

/// A kind of skip a person expects, counted rather than listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expected {
    /// proc, sysfs, cgroup, tmpfs, devtmpfs, ...
    KernelOrMemory,
    /// overlayfs (the filesystem of its upper directory is what gets frozen).
    Overlay,
    /// nfs, cifs, 9p, virtiofs, ...
    Network,
    /// FUSE.
    Fuse,
    /// squashfs, iso9660, erofs, ...: read-only by design.
    ReadOnlyType,
    /// Left out with `--exclude`.
    Excluded,
}

/// In the order of the count line.
const KINDS: [Expected; 6] = [
    Expected::KernelOrMemory,
    Expected::Overlay,
    Expected::Network,
    Expected::Fuse,
    Expected::ReadOnlyType,
    Expected::Excluded,
];

impl Expected {
    /// "25 kernel and in-memory filesystems", "1 excluded".
    fn count(self, n: usize) -> String {
        let (one, many) = match self {
            Expected::KernelOrMemory => (
                "kernel or in-memory filesystem",
                "kernel and in-memory filesystems",
            ),
            Expected::Overlay => ("overlay filesystem", "overlay filesystems"),
            Expected::Network => ("network filesystem", "network filesystems"),
            Expected::Fuse => ("FUSE filesystem", "FUSE filesystems"),
            Expected::ReadOnlyType => (
                "read-only filesystem image (squashfs, iso9660, ...)",
                "read-only filesystem images (squashfs, iso9660, ...)",
            ),
            Expected::Excluded => ("excluded", "excluded"),
        };
        format!("{n} {}", if n == 1 { one } else { many })
    }
}

/// The expected kind of a skip, or `None` if a person should read why it was skipped.
pub fn expected(s: &SkipInfo) -> Option<Expected> {
    if s.reason == SkipReason::Excluded.to_string() {
        return Some(Expected::Excluded);
    }
    match family(s.fs_type.as_bytes()) {
        Family::Memory | Family::Kernel => Some(Expected::KernelOrMemory),
        Family::Overlay => Some(Expected::Overlay),
        Family::Network => Some(Expected::Network),
        Family::Fuse => Some(Expected::Fuse),
        Family::ReadOnlyType => Some(Expected::ReadOnlyType),
        Family::Disk | Family::Unknown => None,
    }
}

/// The skips split for a person: those to list in full, and one line counting the rest by
/// kind (with `dropped`, the skips beyond the plan's capacity that were only counted).
#[derive(Debug, PartialEq)]
pub struct Summary<'a> {
    /// Listed in full, in the plan's order.
    pub listed: Vec<&'a SkipInfo>,
    /// "skipped 25 kernel and in-memory filesystems, 1 excluded; --verbose lists them", or
    /// `None` when nothing was counted.
    pub counted: Option<String>,
}

/// Splits `skipped`; with `all`, every skip is listed and none is counted.
pub fn summarize(skipped: &[SkipInfo], dropped: usize, all: bool) -> Summary<'_> {
    if all {
        return Summary {
            listed: skipped.iter().collect(),
            counted: None,
        };
    }
    let mut listed = Vec::new();
    let mut counts = [0usize; KINDS.len()];
    for s in skipped {
        match expected(s).and_then(|k| KINDS.iter().position(|&x| x == k)) {
            Some(i) => counts[i] += 1,
            None => listed.push(s),
        }
    }
    let mut parts: Vec<String> = KINDS
        .iter()
        .zip(counts)
        .filter(|&(_, n)| n > 0)
        .map(|(k, n)| k.count(n))
        .collect();
    if dropped > 0 {
        parts.push(format!("{dropped} more not recorded"));
    }
    let counted = (!parts.is_empty()).then(|| {
        let verbose = if counts.iter().any(|&n| n > 0) {
            "; --verbose lists them"
        } else {
            ""
        };
        format!("skipped {}{verbose}", parts.join(", "))
    });
    Summary { listed, counted }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quiesce_core::mountinfo::Dev;

    fn skip(mount_point: &str, fs_type: &str, reason: &str) -> SkipInfo {
        SkipInfo {
            mount_point: mount_point.into(),
            fs_type: fs_type.into(),
            device: Dev { major: 0, minor: 1 },
            reason: reason.into(),
            arg: None,
        }
    }

    fn sample() -> Vec<SkipInfo> {
        let mut v = vec![
            skip("/proc", "proc", "it is a kernel interface"),
            skip("/sys", "sysfs", "it is a kernel interface"),
            skip("/dev", "devtmpfs", "its data lives in memory"),
            skip(
                "/boot/efi",
                "vfat",
                "this filesystem type does not support FIFREEZE",
            ),
            skip("/srv/ro", "ext4", &SkipReason::ReadOnly.to_string()),
            skip("/var/lib/docker/x", "overlay", "overlayfs cannot be frozen"),
            skip("/srv/data", "xfs", &SkipReason::Excluded.to_string()),
            skip("/mnt/nfs", "nfs4", "it is a network filesystem"),
            skip(
                "/srv/gone",
                "btrfs",
                "none of its mount points could be opened as a directory",
            ),
        ];
        v.extend((0..22).map(|i| skip(&format!("/run/t{i}"), "tmpfs", "memory")));
        v
    }

    #[test]
    fn expected_skips_are_counted_by_kind_and_the_rest_listed() {
        let s = sample();
        let sum = summarize(&s, 0, false);
        let listed: Vec<&str> = sum.listed.iter().map(|s| s.mount_point.as_str()).collect();
        assert_eq!(listed, ["/boot/efi", "/srv/ro", "/srv/gone"]);
        assert_eq!(
            sum.counted.as_deref(),
            Some(
                "skipped 25 kernel and in-memory filesystems, 1 overlay filesystem, \
                 1 network filesystem, 1 excluded; --verbose lists them"
            )
        );
    }

    #[test]
    fn all_lists_everything_and_counts_nothing() {
        let s = sample();
        let sum = summarize(&s, 0, true);
        assert_eq!(sum.listed.len(), s.len());
        assert_eq!(sum.counted, None);
    }

    #[test]
    fn nothing_counted_means_no_count_line() {
        let s = [skip("/boot/efi", "vfat", "unknown")];
        assert_eq!(summarize(&s, 0, false).counted, None);
        assert_eq!(summarize(&[], 0, false).counted, None);
        assert_eq!(
            summarize(&s, 3, false).counted.as_deref(),
            Some("skipped 3 more not recorded")
        );
        let one = [skip("/proc", "proc", "kernel")];
        assert_eq!(
            summarize(&one, 0, false).counted.as_deref(),
            Some("skipped 1 kernel or in-memory filesystem; --verbose lists them")
        );
    }
}
