//! Which filesystem types can be frozen.
//!
//! `FIFREEZE` works only on filesystems whose superblock implements `freeze_fs` (see
//! `ioctl_fsfreeze` in the kernel's `fs/ioctl.c`); on others it fails with `EOPNOTSUPP`.
//! Rather than learn that in the middle of a freeze, the planner classifies every filesystem
//! by its type first, and says why one is skipped.

/// Whether a filesystem type supports `FIFREEZE`, and if not, why not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freezability {
    /// The type implements freeze (ext4, xfs, btrfs, ...).
    Freezable,
    /// The type cannot be frozen; the text says why and what to do instead.
    NotFreezable(&'static str),
}

/// Types known to implement `freeze_fs` on Linux.
const FREEZABLE: &[&[u8]] = &[
    b"ext2",
    b"ext3",
    b"ext4",
    b"xfs",
    b"btrfs",
    b"f2fs",
    b"jfs",
    b"reiserfs",
    b"nilfs2",
    b"gfs2",
    b"ocfs2",
    b"bcachefs",
];

/// Filesystems that keep their data in memory only.
const MEMORY: &[&[u8]] = &[b"tmpfs", b"ramfs", b"devtmpfs", b"hugetlbfs"];

/// Kernel interfaces presented as filesystems.
const VIRTUAL: &[&[u8]] = &[
    b"proc",
    b"sysfs",
    b"cgroup",
    b"cgroup2",
    b"devpts",
    b"debugfs",
    b"tracefs",
    b"securityfs",
    b"pstore",
    b"bpf",
    b"mqueue",
    b"configfs",
    b"fusectl",
    b"autofs",
    b"binfmt_misc",
    b"efivarfs",
    b"rpc_pipefs",
    b"nsfs",
    b"selinuxfs",
];

/// Filesystems whose storage is on another machine.
const NETWORK: &[&[u8]] = &[
    b"nfs",
    b"nfs4",
    b"cifs",
    b"smb3",
    b"smbfs",
    b"9p",
    b"virtiofs",
    b"ceph",
    b"glusterfs",
    b"afs",
    b"sshfs",
];

/// Read-only by design.
const READ_ONLY: &[&[u8]] = &[b"squashfs", b"iso9660", b"erofs", b"cramfs", b"udf"];

/// What kind of filesystem a type is: the families of the lists above. The planner needs only
/// [`classify`]; a front end uses this to group what it skips ("25 kernel and in-memory
/// filesystems") and to tell an expected skip from one a person should look at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// A disk filesystem that implements freeze (ext4, xfs, btrfs, ...).
    Disk,
    /// Data in memory only (tmpfs, ramfs, devtmpfs, hugetlbfs).
    Memory,
    /// A kernel interface (proc, sysfs, cgroup, ...).
    Kernel,
    /// overlayfs.
    Overlay,
    /// Storage on another machine (nfs, cifs, 9p, virtiofs, ...).
    Network,
    /// FUSE.
    Fuse,
    /// A read-only filesystem type (squashfs, iso9660, erofs, ...).
    ReadOnlyType,
    /// None of the above (vfat, exfat, ntfs3, ...): not known to support freezing.
    Unknown,
}

/// The family of a filesystem type as it appears in mountinfo (e.g. `b"ext4"`, `b"fuse.sshfs"`).
pub fn family(fs_type: &[u8]) -> Family {
    if FREEZABLE.contains(&fs_type) {
        Family::Disk
    } else if MEMORY.contains(&fs_type) {
        Family::Memory
    } else if VIRTUAL.contains(&fs_type) {
        Family::Kernel
    } else if fs_type == b"overlay" {
        Family::Overlay
    } else if NETWORK.contains(&fs_type) {
        Family::Network
    } else if fs_type == b"fuse" || fs_type == b"fuseblk" || fs_type.starts_with(b"fuse.") {
        Family::Fuse
    } else if READ_ONLY.contains(&fs_type) {
        Family::ReadOnlyType
    } else {
        Family::Unknown
    }
}

/// Classifies a filesystem type as it appears in mountinfo (e.g. `b"ext4"`, `b"fuse.sshfs"`).
pub fn classify(fs_type: &[u8]) -> Freezability {
    let why = match family(fs_type) {
        Family::Disk => return Freezability::Freezable,
        Family::Memory => "its data lives in memory; there is nothing on disk to freeze",
        Family::Kernel => "it is a kernel interface, not a disk filesystem",
        Family::Overlay => {
            "overlayfs cannot be frozen; name the filesystem that holds its upper directory"
        }
        Family::Network => "it is a network filesystem; its storage must be quiesced on the server",
        Family::Fuse => "FUSE filesystems do not support freezing",
        Family::ReadOnlyType => "it is a read-only filesystem type; it is always consistent",
        Family::Unknown => {
            "this filesystem type does not support FIFREEZE (supported: ext2/3/4, xfs, btrfs, f2fs, jfs, reiserfs, nilfs2, gfs2, ocfs2, bcachefs)"
        }
    };
    Freezability::NotFreezable(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_filesystems_are_freezable() {
        for t in [&b"ext4"[..], b"xfs", b"btrfs", b"ext3", b"f2fs"] {
            assert_eq!(classify(t), Freezability::Freezable);
        }
    }

    #[test]
    fn families() {
        for (t, f) in [
            (&b"ext4"[..], Family::Disk),
            (b"tmpfs", Family::Memory),
            (b"cgroup2", Family::Kernel),
            (b"overlay", Family::Overlay),
            (b"virtiofs", Family::Network),
            (b"fuse.sshfs", Family::Fuse),
            (b"erofs", Family::ReadOnlyType),
            (b"vfat", Family::Unknown),
        ] {
            assert_eq!(family(t), f, "{t:?}");
        }
    }

    #[test]
    fn others_are_not_and_say_why() {
        for (t, word) in [
            (&b"tmpfs"[..], "memory"),
            (b"proc", "kernel"),
            (b"overlay", "upper"),
            (b"nfs4", "network"),
            (b"fuse.sshfs", "FUSE"),
            (b"squashfs", "read-only"),
            (b"vfat", "FIFREEZE"),
            (b"", "FIFREEZE"),
        ] {
            match classify(t) {
                Freezability::NotFreezable(why) => assert!(why.contains(word), "{why}"),
                Freezability::Freezable => panic!("{t:?} classified freezable"),
            }
        }
    }
}
