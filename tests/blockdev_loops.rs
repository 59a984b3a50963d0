//! The block-device graph (quiesce_core::blockdev) on this machine's live /sys and /dev, with
//! loop devices as the disks: a disk with two partitions (added with `addpart` on a
//! `losetup -P` device) holding two filesystems, btrfs RAID1 over two disks, and a loop image
//! on another disk's filesystem. Nothing is frozen here.

use std::ffi::CString;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use quiesce_core::blockdev::{DiskErrorKind, Graph, Kind, Leaves, Via};
use quiesce_core::linux::sysroot::RootDir;
use quiesce_core::mountinfo::{Dev, MountInfo};
use quiesce_core::sysfs::SysTree;
use quiesce_testkit::{require_root, run_ok, DiskSet};

const STEP: Duration = Duration::from_secs(60);

fn dev_of(path: &Path) -> Dev {
    let rdev = fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .rdev();
    Dev {
        major: libc::major(rdev),
        minor: libc::minor(rdev),
    }
}

/// The leaf disks of the filesystem mounted at `at`.
fn leaves<T: SysTree>(g: &Graph<'_, '_, T>, mounts: &[u8], at: &Path) -> (Vec<Dev>, Via) {
    let at = at.to_str().expect("utf-8 path");
    let entry = MountInfo::new(mounts)
        .entries()
        .flatten()
        .find(|e| e.mount_point.eq_decoded(at.as_bytes()))
        .unwrap_or_else(|| panic!("{at} is not mounted"));
    let mut out: Leaves<8> = Leaves::new();
    g.filesystem_leaves(&entry, &mut out)
        .unwrap_or_else(|e| panic!("{at}: {e}"));
    (out.disks.to_vec(), out.via)
}

#[test]
fn leaf_disks_of_partitions_btrfs_raid1_and_a_loop_on_a_loop_disk() {
    require_root();
    // A disk with two partitions (ext4, xfs), btrfs RAID1 over two disks, and a loop image on
    // another disk's filesystem.
    let set = DiskSet::new();
    let (parts, b1, b2, scratch, p1) = (&set.parts, &set.b1, &set.b2, &set.scratch, &set.p1_dev);
    let (m1, m2, pool, host, inner) = (&set.p1, &set.p2, &set.pool, &set.host, &set.inner);

    let mounts = fs::read("/proc/self/mountinfo").expect("mountinfo");
    let root = RootDir::open(c"/").expect("open /");
    let disk = |p: &Path| dev_of(p);
    let loop_disks = [
        disk(&parts.dev),
        disk(&b1.dev),
        disk(&b2.dev),
        disk(&host.loop_dev),
    ];
    let g = Graph::new(&root, MountInfo::new(&mounts)).with_loop_disks(&loop_disks);

    assert_eq!(
        leaves(&g, &mounts, &m1.at),
        (vec![disk(&parts.dev)], Via::PARTITION)
    );
    assert_eq!(
        leaves(&g, &mounts, &m2.at),
        (vec![disk(&parts.dev)], Via::PARTITION)
    );
    let (mut pool_disks, via) = leaves(&g, &mounts, &pool.at);
    pool_disks.sort_by_key(|d| (d.major, d.minor));
    let mut want = vec![disk(&b1.dev), disk(&b2.dev)];
    want.sort_by_key(|d| (d.major, d.minor));
    assert_eq!((pool_disks, via), (want, Via::BTRFS));
    assert_eq!(
        leaves(&g, &mounts, &inner.mount),
        (vec![disk(&host.loop_dev)], Via::LOOP)
    );
    assert_eq!(
        leaves(&g, &mounts, &host.mount),
        (vec![disk(&host.loop_dev)], Via::empty())
    );

    // Without loop devices taken as disks, every one of them leads to the disk(s) under the
    // scratch directory, as the filesystem holding it does.
    let plain = Graph::new(&root, MountInfo::new(&mounts));
    let mut under_tmp: Leaves<8> = Leaves::new();
    plain
        .device_leaves(dev_of_file(&scratch.dir), &mut under_tmp)
        .expect("the leaves of the scratch directory's filesystem");
    println!(
        "the scratch directory's filesystem is on {:?} ({:?})",
        under_tmp.disks, under_tmp.via
    );
    for at in [&m1.at, &pool.at, &inner.mount] {
        let (d, via) = leaves(&plain, &mounts, at);
        assert_eq!(d, under_tmp.disks.to_vec(), "{}", at.display());
        assert!(via.contains(Via::LOOP), "{}: {via:?}", at.display());
    }

    // DISK arguments on the live system.
    let p1_arg = p1.to_str().unwrap().to_string();
    let e = g
        .resolve_disk(&p1_arg)
        .expect_err("a partition is not a disk");
    let parts_name = parts.dev.file_name().unwrap().to_str().unwrap();
    match &e.kind {
        DiskErrorKind::Partition { disk, .. } => assert_eq!(disk.as_str(), parts_name),
        k => panic!("{p1_arg}: {k:?}"),
    }
    assert!(
        e.to_string()
            .contains(&format!("partition of disk {parts_name}")),
        "{e}"
    );
    let parts_arg = parts.dev.to_str().unwrap().to_string();
    let d = g
        .resolve_disk(&parts_arg)
        .expect("a loop device named as a disk");
    assert_eq!((d.dev, d.kind), (disk(&parts.dev), Kind::Loop));
    let img = scratch.path("parts.img");
    let img = img.to_str().unwrap().to_string();
    assert_eq!(
        g.resolve_disk(&img).unwrap_err().kind,
        DiskErrorKind::NotBlockDevice
    );
    assert_eq!(
        g.resolve_disk("/dev/null").unwrap_err().kind,
        DiskErrorKind::NotBlockDevice
    );
    let gone = scratch.path("no-such-disk");
    let gone = gone.to_str().unwrap().to_string();
    assert_eq!(
        g.resolve_disk(&gone).unwrap_err().kind,
        DiskErrorKind::NotFound
    );
    assert_eq!(
        g.resolve_disk("serial:quiesce-test-no-such-serial")
            .unwrap_err()
            .kind,
        DiskErrorKind::NoSuchSerial
    );

    // A root other than /: the same graph read through /proc/self/root.
    let other = RootDir::open(&CString::new("/proc/self/root").unwrap()).expect("open");
    let g2 = Graph::new(&other, MountInfo::new(&mounts)).with_loop_disks(&loop_disks);
    assert_eq!(leaves(&g2, &mounts, &m2.at).0, vec![disk(&parts.dev)]);

    // Torn down in this order (the struct's field order): the btrfs devices are forgotten once
    // its mount is gone, before the disks are detached.
    drop(set.inner);
    drop(set.host);
    drop(set.pool);
    let _ = run_ok(
        Command::new("btrfs")
            .args(["device", "scan", "--forget"])
            .arg(&b1.dev)
            .arg(&b2.dev),
        STEP,
    );
    drop((set.p2, set.p1));
}

fn dev_of_file(p: &Path) -> Dev {
    let d = fs::metadata(p).expect("stat").dev();
    Dev {
        major: libc::major(d),
        minor: libc::minor(d),
    }
}
