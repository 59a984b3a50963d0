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

/// Classifies a filesystem type as it appears in mountinfo (e.g. `b"ext4"`, `b"fuse.sshfs"`).
pub fn classify(fs_type: &[u8]) -> Freezability {
    if FREEZABLE.contains(&fs_type) {
        Freezability::Freezable
    } else if MEMORY.contains(&fs_type) {
        Freezability::NotFreezable("its data lives in memory; there is nothing on disk to freeze")
    } else if VIRTUAL.contains(&fs_type) {
        Freezability::NotFreezable("it is a kernel interface, not a disk filesystem")
    } else if fs_type == b"overlay" {
        Freezability::NotFreezable(
            "overlayfs cannot be frozen; name the filesystem that holds its upper directory",
        )
    } else if NETWORK.contains(&fs_type) {
        Freezability::NotFreezable(
            "it is a network filesystem; its storage must be quiesced on the server",
        )
    } else if fs_type == b"fuse" || fs_type == b"fuseblk" || fs_type.starts_with(b"fuse.") {
        Freezability::NotFreezable("FUSE filesystems do not support freezing")
    } else if READ_ONLY.contains(&fs_type) {
        Freezability::NotFreezable("it is a read-only filesystem type; it is always consistent")
    } else {
        Freezability::NotFreezable(
            "this filesystem type does not support FIFREEZE (supported: ext2/3/4, xfs, btrfs, f2fs, jfs, reiserfs, nilfs2, gfs2, ocfs2, bcachefs)",
        )
    }
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
