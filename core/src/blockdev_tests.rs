//! The block-device graph on sysfs trees recorded from real kernels (core/testdata/sysfs, made
//! in guests of the VM rig by capture.sh; see tests/vm_sysfs.rs for each case's setup).

use super::*;
use crate::sysfs::Recorded;

struct Case {
    tree: Recorded<'static>,
    mounts: &'static [u8],
}

macro_rules! case {
    ($name:literal) => {
        Case {
            tree: Recorded::new(include_str!(concat!(
                "../testdata/sysfs/",
                $name,
                "/sysfs.txt"
            ))),
            mounts: include_bytes!(concat!("../testdata/sysfs/", $name, "/mountinfo.txt")),
        }
    };
}

const OPENSTACK_VOLUME: &str = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b";

type Names = heapless::Vec<heapless::String<32>, 8>;

impl Case {
    fn graph(&self) -> Graph<'_, 'static, Recorded<'static>> {
        Graph::new(&self.tree, MountInfo::new(self.mounts))
    }

    fn entry(&self, mount_point: &str) -> MountEntry<'static> {
        MountInfo::new(self.mounts)
            .entries()
            .flatten()
            .find(|e| e.mount_point.eq_decoded(mount_point.as_bytes()))
            .unwrap_or_else(|| panic!("no mount {mount_point} in the recording"))
    }

    /// The leaf disks' names of the filesystem mounted at `mount_point`, and the layers.
    fn leaves_with(&self, g: &Graph<'_, 'static, Recorded<'static>>, mp: &str) -> (Names, Via) {
        let mut out: Leaves<8> = Leaves::new();
        g.filesystem_leaves(&self.entry(mp), &mut out)
            .unwrap_or_else(|e| panic!("{mp}: {e}"));
        let mut names = Names::new();
        for d in &out.disks {
            let name = g.describe(*d).unwrap_or_else(|e| panic!("{e}")).name;
            names.push(name).unwrap();
        }
        (names, out.via)
    }

    fn leaves(&self, mp: &str) -> (Names, Via) {
        self.leaves_with(&self.graph(), mp)
    }

    fn resolve(&self, arg: &'static str) -> Result<DiskInfo, DiskError<'static>> {
        self.graph().resolve_disk(arg)
    }

    fn resolves_to(&self, arg: &'static str, name: &str) {
        match self.resolve(arg) {
            Ok(d) => assert_eq!(d.name, name, "{arg}"),
            Err(e) => panic!("{arg}: {e}"),
        }
    }

    fn error(&self, arg: &'static str) -> (DiskErrorKind, heapless::String<256>) {
        let e = self.resolve(arg).expect_err(arg);
        let mut msg = heapless::String::new();
        core::fmt::write(&mut msg, format_args!("{e}")).unwrap();
        assert!(msg.contains(arg), "the message names the argument: {msg}");
        (e.kind, msg)
    }
}

fn names(list: &[&str]) -> Names {
    list.iter()
        .map(|s| heapless::String::try_from(*s).unwrap())
        .collect()
}

#[test]
fn virtio_partitions_lead_to_their_disk() {
    let c = case!("virtio_partitions");
    assert_eq!(c.leaves("/mnt/a1"), (names(&["vda"]), Via::PARTITION));
    assert_eq!(c.leaves("/mnt/a2"), (names(&["vda"]), Via::PARTITION));
    assert_eq!(c.leaves("/mnt/b"), (names(&["vdb"]), Via::empty()));
    // The initramfs's rootfs and a tmpfs: on no disk.
    assert_eq!(c.leaves("/"), (names(&[]), Via::NO_DISK));
    assert_eq!(c.leaves("/tmp"), (names(&[]), Via::NO_DISK));
}

#[test]
fn virtio_disk_identity_and_kinds() {
    let c = case!("virtio_partitions");
    let g = c.graph();
    let vda = g
        .disk_info(Dev {
            major: 254,
            minor: 0,
        })
        .unwrap();
    assert_eq!(vda.name, "vda");
    assert_eq!(vda.kind, Kind::Disk);
    // virtio-blk keeps the first 20 bytes of the OpenStack volume UUID.
    assert_eq!(vda.serial, &OPENSTACK_VOLUME[..20]);
    assert_eq!(vda.wwid, "");
    let p2 = g
        .describe(Dev {
            major: 254,
            minor: 2,
        })
        .unwrap();
    assert_eq!((p2.name.as_str(), p2.kind), ("vda2", Kind::Partition));
    assert_eq!(g.partition_parent(p2.dev).unwrap().name, "vda");
}

#[test]
fn openstack_and_alibaba_serials_on_virtio() {
    let c = case!("virtio_partitions");
    c.resolves_to("serial:3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b", "vda");
    c.resolves_to("serial:3F2A1B4C-5D6E-4F70-8A9B-0C1D2E3F4A5B", "vda");
    c.resolves_to("serial:3f2a1b4c-5d6e-4f70-8", "vda");
    c.resolves_to("serial:d-bp1e3zy5uwbqp2sjkyyi", "vdb");
    c.resolves_to("serial:bp1e3zy5uwbqp2sjkyyi", "vdb");
    // Another UUID with the same first 20 characters is still that disk (all virtio shows);
    // one differing in them is not.
    c.resolves_to("serial:3f2a1b4c-5d6e-4f70-8fff-ffffffffffff", "vda");
    assert_eq!(
        c.error("serial:3f2a1b4c-5d6e-4f70-9a9b-0c1d2e3f4a5b").0,
        DiskErrorKind::NoSuchSerial
    );
    // A prefix that is not a UUID does not match.
    assert_eq!(c.error("serial:3f2a1b4c").0, DiskErrorKind::NoSuchSerial);
    assert_eq!(
        c.error("serial:d-bp1e3zy5uwbqp2sjkyy").0,
        DiskErrorKind::NoSuchSerial
    );
}

#[test]
fn paths_and_by_id_links_name_disks() {
    let c = case!("virtio_partitions");
    c.resolves_to("/dev/vda", "vda");
    c.resolves_to("/dev/disk/by-id/virtio-bp1e3zy5uwbqp2sjkyyi", "vdb");
    c.resolves_to("/dev/disk/by-id/virtio-3f2a1b4c-5d6e-4f70-8", "vda");
}

#[test]
fn bad_disk_arguments_are_errors_that_name_them() {
    let c = case!("virtio_partitions");
    let (kind, msg) = c.error("/dev/vda2");
    assert_eq!(
        kind,
        DiskErrorKind::Partition {
            name: "vda2".try_into().unwrap(),
            disk: "vda".try_into().unwrap()
        }
    );
    assert!(msg.contains("partition of disk vda"), "{msg}");
    assert_eq!(c.error("/dev/vdz").0, DiskErrorKind::NotFound);
    assert_eq!(c.error("/dev/disk").0, DiskErrorKind::NotBlockDevice);
    assert_eq!(c.error("vda").0, DiskErrorKind::UnknownForm);
    assert_eq!(c.error("serial:").0, DiskErrorKind::EmptySerial);
    assert_eq!(c.error("serial:vol0123").0, DiskErrorKind::NoSuchSerial);
}

#[test]
fn nvme_disks_partitions_and_the_aws_serial_forms() {
    let c = case!("nvme");
    assert_eq!(c.leaves("/mnt/p1"), (names(&["nvme0n1"]), Via::PARTITION));
    assert_eq!(c.leaves("/mnt/p2"), (names(&["nvme0n1"]), Via::PARTITION));
    assert_eq!(c.leaves("/mnt/n2"), (names(&["nvme1n1"]), Via::empty()));
    assert_eq!(c.leaves("/mnt/sys"), (names(&["vda"]), Via::empty()));
    // The NVMe serial is the controller's (device/serial), padded with spaces by the kernel.
    let g = c.graph();
    let d = g
        .disk_info(g.tree().block_dev("/dev/nvme1n1").unwrap())
        .unwrap();
    assert_eq!(d.serial, "nvme-data-2");
    assert!(!d.wwid.is_empty(), "NVMe namespaces have a wwid");
    c.resolves_to("serial:vol-0123456789abcdef0", "nvme0n1");
    c.resolves_to("serial:vol0123456789abcdef0", "nvme0n1");
    c.resolves_to("serial:nvme-data-2", "nvme1n1");
    c.resolves_to("serial:system-disk", "vda");
    let (kind, msg) = c.error("/dev/nvme0n1p2");
    assert!(matches!(kind, DiskErrorKind::Partition { .. }), "{kind:?}");
    assert!(
        msg.contains("nvme0n1p2 is a partition of disk nvme0n1"),
        "{msg}"
    );
    assert_eq!(
        c.error("serial:vol-0123456789abcdef1").0,
        DiskErrorKind::NoSuchSerial
    );
}

#[test]
fn lvm_volumes_lead_to_the_disks_they_use() {
    let c = case!("lvm");
    assert_eq!(c.leaves("/mnt/small"), (names(&["vda"]), Via::LVM));
    assert_eq!(c.leaves("/mnt/big"), (names(&["vda", "vdb"]), Via::LVM));
    assert_eq!(c.leaves("/mnt/plain"), (names(&["vdc"]), Via::empty()));
    let g = c.graph();
    assert_eq!(
        g.describe(Dev {
            major: 253,
            minor: 1
        })
        .unwrap()
        .kind,
        Kind::Lvm
    );
    let (kind, msg) = c.error("/dev/mapper/vg0-big");
    assert_eq!(
        kind,
        DiskErrorKind::Stacked {
            name: "dm-1".try_into().unwrap(),
            kind: Kind::Lvm
        }
    );
    assert!(msg.contains("LVM logical volume"), "{msg}");
    assert!(matches!(
        c.error("/dev/vg0/small").0,
        DiskErrorKind::Stacked { .. }
    ));
    c.resolves_to("serial:lvm-pv-b", "vdb");
}

#[test]
fn too_many_disks_for_the_capacity_is_an_error() {
    let c = case!("lvm");
    let mut out: Leaves<1> = Leaves::new();
    let e = c
        .graph()
        .filesystem_leaves(&c.entry("/mnt/big"), &mut out)
        .unwrap_err();
    assert_eq!(e.kind, GraphErrorKind::TooManyDisks);
}

#[test]
fn dm_crypt_on_a_partition_leads_to_the_disk() {
    let c = case!("dm_crypt");
    assert_eq!(
        c.leaves("/mnt/secret"),
        (names(&["vda"]), Via::CRYPT | Via::PARTITION)
    );
    assert_eq!(c.leaves("/mnt/keys"), (names(&["vda"]), Via::PARTITION));
    let g = c.graph();
    assert_eq!(
        g.describe(Dev {
            major: 253,
            minor: 0
        })
        .unwrap()
        .kind,
        Kind::Crypt
    );
    assert!(matches!(
        c.error("/dev/mapper/secret").0,
        DiskErrorKind::Stacked {
            kind: Kind::Crypt,
            ..
        }
    ));
}

#[test]
fn md_raid1_leads_to_both_disks() {
    let c = case!("md_raid1");
    assert_eq!(c.leaves("/mnt/md"), (names(&["vda", "vdb"]), Via::MD));
    assert_eq!(c.leaves("/mnt/other"), (names(&["vdc"]), Via::empty()));
    assert!(matches!(
        c.error("/dev/md0").0,
        DiskErrorKind::Stacked { kind: Kind::Md, .. }
    ));
}

#[test]
fn a_loop_image_leads_to_the_disk_under_its_file() {
    let c = case!("loop_on_partition");
    assert_eq!(
        c.leaves("/mnt/inner"),
        (names(&["vda"]), Via::LOOP | Via::PARTITION)
    );
    // An image on tmpfs: on no disk.
    assert_eq!(c.leaves("/mnt/mem"), (names(&[]), Via::LOOP | Via::NO_DISK));
    // A loop device the caller takes as a disk is a leaf.
    let loops = [Dev { major: 7, minor: 0 }];
    let g = c.graph().with_loop_disks(&loops);
    assert_eq!(
        c.leaves_with(&g, "/mnt/inner"),
        (names(&["loop0"]), Via::empty())
    );
    let d = c.resolve("/dev/loop0").unwrap();
    assert_eq!((d.name.as_str(), d.kind), ("loop0", Kind::Loop));
}

#[test]
fn btrfs_over_two_devices_leads_to_both() {
    let c = case!("btrfs_two_devices");
    assert_eq!(c.leaves("/mnt/pool"), (names(&["vda", "vdb"]), Via::BTRFS));
    // A subvolume mounted by the other device: the same filesystem, the same disks.
    assert_eq!(c.leaves("/mnt/sub"), (names(&["vda", "vdb"]), Via::BTRFS));
    assert_eq!(c.leaves("/mnt/single"), (names(&["vdc"]), Via::BTRFS));
    // By its anonymous device number too.
    let mut out: Leaves<4> = Leaves::new();
    c.graph()
        .device_leaves(
            Dev {
                major: 0,
                minor: 24,
            },
            &mut out,
        )
        .unwrap();
    assert_eq!(out.disks.len(), 2);
}

#[test]
fn multipath_is_one_disk_and_kpartx_partitions_lead_to_it() {
    let c = case!("multipath_kpartx");
    assert_eq!(
        c.leaves("/mnt/mp1"),
        (names(&["dm-0"]), Via::DEVICE_MAPPER | Via::MULTIPATH)
    );
    assert_eq!(c.leaves("/mnt/local"), (names(&["vdc"]), Via::empty()));
    let g = c.graph();
    assert_eq!(
        g.describe(Dev {
            major: 253,
            minor: 0
        })
        .unwrap()
        .kind,
        Kind::Multipath
    );
    assert_eq!(
        g.describe(Dev {
            major: 253,
            minor: 1
        })
        .unwrap()
        .kind,
        Kind::DmPartition
    );
    // Both paths have the serial: it names the multipath device, once.
    let d = c.resolve("serial:mp-disk").unwrap();
    assert_eq!(
        (d.name.as_str(), d.kind, d.serial.as_str()),
        ("dm-0", Kind::Multipath, "mp-disk")
    );
    c.resolves_to("/dev/vda", "dm-0");
    c.resolves_to("/dev/vdb", "dm-0");
    c.resolves_to("/dev/mapper/mpatha", "dm-0");
    c.resolves_to("serial:local-disk", "vdc");
    let (kind, msg) = c.error("/dev/mapper/mpatha1");
    assert_eq!(
        kind,
        DiskErrorKind::Partition {
            name: "dm-1".try_into().unwrap(),
            disk: "dm-0".try_into().unwrap()
        }
    );
    assert!(msg.contains("partition of disk dm-0"), "{msg}");
}

#[test]
fn a_serial_on_two_disks_is_ambiguous() {
    let c = case!("duplicate_serials");
    let (kind, msg) = c.error("serial:same-serial");
    assert_eq!(
        kind,
        DiskErrorKind::Ambiguous {
            first: "vda".try_into().unwrap(),
            second: "vdb".try_into().unwrap()
        }
    );
    assert!(msg.contains("more than one disk (vda, vdb)"), "{msg}");
    c.resolves_to("serial:vol-0fedcba9876543210", "nvme0n1");
}

#[test]
fn serial_forms() {
    for (q, s, want) in [
        ("abc", "abc", true),
        ("abc", " abc  ", true),
        ("ABC", "abc", true),
        ("abd", "abc", false),
        ("", "", false),
        ("vol-0123456789abcdef0", "vol0123456789abcdef0", true),
        ("vol0123456789abcdef0", "vol0123456789abcdef0", true),
        ("vol-0123456789abcdef0", "vol-0123456789abcdef0", true),
        ("vol0123456789abcdef0", "vol-0123456789abcdef0", true),
        ("vol-0123456789abcdef1", "vol0123456789abcdef0", false),
        ("vol-", "vol", false),
        (
            "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
            "3f2a1b4c-5d6e-4f70-8",
            true,
        ),
        (
            "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
            "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
            true,
        ),
        (
            "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b",
            "3f2a1b4c-5d6e-4f70-",
            false,
        ),
        (
            "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5",
            "3f2a1b4c-5d6e-4f70-8",
            false,
        ),
        ("d-bp1e3zy5uwbqp2sjkyyi", "bp1e3zy5uwbqp2sjkyyi", true),
        ("bp1e3zy5uwbqp2sjkyyi", "d-bp1e3zy5uwbqp2sjkyyi", true),
        ("d-bp1e3zy5uwbqp2sjkyyi", "d-bp1e3zy5uwbqp2sjkyyi", true),
        ("d-", "", false),
        ("d-x", "y", false),
    ] {
        assert_eq!(serial_matches(q, s), want, "{q:?} vs {s:?}");
    }
}

#[test]
fn device_mapper_kinds_by_uuid() {
    // Not recorded (no multipath or kpartx in the rig): the uuid prefixes those tools set.
    assert_eq!(dm_kind(b"LVM-abc"), Kind::Lvm);
    assert_eq!(dm_kind(b"CRYPT-LUKS2-abc-name"), Kind::Crypt);
    assert_eq!(dm_kind(b"mpath-3600a098038303634"), Kind::Multipath);
    assert_eq!(dm_kind(b"part1-mpath-3600a098038303634"), Kind::DmPartition);
    assert_eq!(dm_kind(b"partx"), Kind::DeviceMapper);
    assert_eq!(dm_kind(b""), Kind::DeviceMapper);
}

impl Case {
    /// The unused devices on the disk named `disk`: (name, why).
    fn unused(&self, disk: &str) -> heapless::Vec<(heapless::String<32>, Unused), 8> {
        let g = self.graph();
        let dev = g
            .dev_of_name(disk)
            .unwrap_or_else(|e| panic!("{disk}: {e:?}"));
        let mut out = heapless::Vec::new();
        g.each_unused(dev, &mut |u| out.push((u.dev.name, u.why)).unwrap())
            .unwrap_or_else(|e| panic!("{disk}: {e}"));
        out
    }
}

#[test]
fn disks_and_partitions_that_hold_a_mounted_filesystem_are_not_unused() {
    // Partitions mounted directly; a whole disk mounted.
    let c = case!("virtio_partitions");
    assert!(c.unused("vda").is_empty());
    assert!(c.unused("vdb").is_empty());
    // Physical volumes, held by mounted logical volumes.
    let c = case!("lvm");
    for d in ["vda", "vdb", "vdc"] {
        assert!(c.unused(d).is_empty(), "{d}");
    }
    // md members, held by a mounted array.
    let c = case!("md_raid1");
    assert!(c.unused("vda").is_empty() && c.unused("vdb").is_empty());
    // A crypt partition, held by a mounted dm-crypt device.
    assert!(case!("dm_crypt").unused("vda").is_empty());
    // Multipath paths, held by the multipath device that holds a mounted kpartx partition.
    let c = case!("multipath_kpartx");
    for d in ["vda", "vdb", "dm-0"] {
        assert!(c.unused(d).is_empty(), "{d}: {:?}", c.unused(d));
    }
}

#[test]
fn the_devices_of_a_mounted_btrfs_are_not_unused() {
    // Mounted through the anonymous device 0:N: known from /sys/fs/btrfs/FSID/devices/.
    let c = case!("btrfs_two_devices");
    for d in ["vda", "vdb", "vdc"] {
        assert!(c.unused(d).is_empty(), "{d}: {:?}", c.unused(d));
    }
}

#[test]
fn a_disk_with_nothing_mounted_is_unmounted() {
    let c = case!("duplicate_serials");
    for d in ["vda", "vdb", "nvme0n1"] {
        let u = c.unused(d);
        assert_eq!(u.len(), 1, "{d}");
        assert_eq!(u[0].0.as_str(), d);
        assert_eq!(u[0].1, Unused::Unmounted);
    }
}
