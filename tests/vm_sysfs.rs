//! Recordings of real sysfs trees for the block-device graph's unit tests
//! (core/testdata/sysfs/CASE/), made in guests of the VM rig by core/testdata/sysfs/capture.sh.
//!
//! Re-record (rewrites the committed files):
//! `cargo test -p quiesce --test vm_sysfs -- --ignored record_sysfs_trees --test-threads=2`
//!
//! The serials are the clouds' forms, so that a real kernel shows them as the clouds' guests see
//! them: an OpenStack volume UUID given whole to virtio (which keeps its first 20 bytes), an
//! Alibaba disk id without its `d-`, an AWS volume id as an NVMe serial (`vol` + 17 hex digits,
//! no dash).

use std::fs;
use std::path::Path;
use std::time::Duration;

use quiesce_testkit::vm::{Vm, VmRun};
use quiesce_testkit::{repo_root, require_root, Scratch};

/// An OpenStack volume UUID: virtio shows its first 20 characters.
pub const OPENSTACK_VOLUME: &str = "3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b";
/// An Alibaba Cloud disk id; its virtio serial is the part after `d-`.
pub const ALIBABA_DISK: &str = "d-bp1e3zy5uwbqp2sjkyyi";
/// An AWS EBS volume id; its NVMe serial is `vol` + the hex digits.
pub const AWS_VOLUME: &str = "vol-0123456789abcdef0";

const CAPTURE: &str = include_str!("../core/testdata/sysfs/capture.sh");

/// One recording: the VM, and what the guest sets up before the capture.
pub struct Case {
    pub name: &'static str,
    pub vm: fn() -> Vm,
    pub setup: &'static str,
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "virtio_partitions",
            vm: || {
                Vm::new()
                    .virtio_disk_partitioned(OPENSTACK_VOLUME, 400, &[64, 320])
                    .virtio_disk(&ALIBABA_DISK[2..], 64)
                    .modules(&["ext4", "xfs"])
            },
            setup: "mkfs.ext4 -q /dev/vda1 && mkfs.xfs -q /dev/vda2 && mkfs.ext4 -q /dev/vdb\n\
                    mkdir -p /mnt/a1 /mnt/a2 /mnt/b\n\
                    mount /dev/vda1 /mnt/a1 && mount /dev/vda2 /mnt/a2 && mount /dev/vdb /mnt/b\n",
        },
        Case {
            name: "nvme",
            vm: || {
                Vm::new()
                    .nvme_disk(&AWS_VOLUME.replace('-', ""), 128)
                    .nvme_disk("nvme-data-2", 64)
                    .virtio_disk("system-disk", 64)
                    .modules(&["ext4"])
            },
            // The AWS disk with a partition table, made in the guest (busybox fdisk).
            setup: "printf 'o\\nn\\np\\n1\\n\\n+32M\\nn\\np\\n2\\n\\n\\nw\\n' | fdisk /dev/nvme0n1 >/dev/null\n\
                    sleep 1; ls /dev/nvme0n1p1 /dev/nvme0n1p2\n\
                    mkfs.ext4 -q /dev/nvme0n1p1 && mkfs.ext4 -q /dev/nvme0n1p2 && mkfs.ext4 -q /dev/nvme1n1\n\
                    mkfs.ext4 -q /dev/vda\n\
                    mkdir -p /mnt/p1 /mnt/p2 /mnt/n2 /mnt/sys\n\
                    mount /dev/nvme0n1p1 /mnt/p1 && mount /dev/nvme0n1p2 /mnt/p2\n\
                    mount /dev/nvme1n1 /mnt/n2 && mount /dev/vda /mnt/sys\n",
        },
        Case {
            name: "lvm",
            vm: || {
                Vm::new()
                    .virtio_disk("lvm-pv-a", 64)
                    .virtio_disk("lvm-pv-b", 64)
                    .virtio_disk("plain-disk", 32)
                    .modules(&["dm-mod", "ext4"])
            },
            // `small` lives on the first disk only; `big` spans both.
            setup: "pvcreate -q /dev/vda /dev/vdb && vgcreate -q vg0 /dev/vda /dev/vdb\n\
                    lvcreate -q -L 16M -n small vg0 /dev/vda\n\
                    lvcreate -q -l 100%FREE -n big vg0\n\
                    lvs -o lv_name,devices vg0\n\
                    mkfs.ext4 -q /dev/vg0/small && mkfs.ext4 -q /dev/vg0/big && mkfs.ext4 -q /dev/vdc\n\
                    mkdir -p /mnt/small /mnt/big /mnt/plain\n\
                    mount /dev/vg0/small /mnt/small && mount /dev/mapper/vg0-big /mnt/big\n\
                    mount /dev/vdc /mnt/plain\n",
        },
        Case {
            name: "dm_crypt",
            vm: || {
                Vm::new()
                    .virtio_disk_partitioned("crypt-disk", 400, &[32, 340])
                    .modules(&["dm-crypt", "xts", "algif_skcipher", "ext4", "xfs"])
            },
            setup: "mkfs.ext4 -q /dev/vda1 && mkdir -p /mnt/keys /mnt/secret && mount /dev/vda1 /mnt/keys\n\
                    head -c 64 /dev/urandom > /mnt/keys/disk.key\n\
                    cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                      --key-file /mnt/keys/disk.key /dev/vda2\n\
                    cryptsetup open --key-file /mnt/keys/disk.key /dev/vda2 secret\n\
                    mkfs.xfs -q /dev/mapper/secret && mount /dev/mapper/secret /mnt/secret\n",
        },
        Case {
            name: "md_raid1",
            vm: || {
                Vm::new()
                    .virtio_disk("md-a", 64)
                    .virtio_disk("md-b", 64)
                    .virtio_disk("md-other", 32)
                    .modules(&["raid1", "ext4"])
            },
            setup: "mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 \
                      /dev/vda /dev/vdb\n\
                    mkfs.ext4 -q /dev/md0 && mkfs.ext4 -q /dev/vdc\n\
                    mkdir -p /mnt/md /mnt/other && mount /dev/md0 /mnt/md && mount /dev/vdc /mnt/other\n",
        },
        Case {
            name: "loop_on_partition",
            vm: || {
                Vm::new()
                    .virtio_disk_partitioned("loop-host", 128, &[100])
                    .modules(&["loop", "ext4"])
            },
            // inner.img on the partition's ext4; mem.img on the guest's tmpfs (no disk at all).
            setup: "mkfs.ext4 -q /dev/vda1 && mkdir -p /mnt/host /mnt/inner /mnt/mem\n\
                    mount /dev/vda1 /mnt/host\n\
                    truncate -s 32M /mnt/host/inner.img && mkfs.ext4 -q /mnt/host/inner.img\n\
                    losetup /dev/loop0 /mnt/host/inner.img && mount /dev/loop0 /mnt/inner\n\
                    truncate -s 16M /tmp/mem.img && mkfs.ext4 -q /tmp/mem.img\n\
                    losetup /dev/loop1 /tmp/mem.img && mount /dev/loop1 /mnt/mem\n",
        },
        Case {
            name: "btrfs_two_devices",
            vm: || {
                Vm::new()
                    .virtio_disk("btrfs-a", 160)
                    .virtio_disk("btrfs-b", 160)
                    .virtio_disk("btrfs-single", 160)
                    .modules(&["btrfs"])
            },
            setup: "mkfs.btrfs -q -f -d raid1 -m raid1 /dev/vda /dev/vdb && mkfs.btrfs -q -f /dev/vdc\n\
                    btrfs device scan\n\
                    mkdir -p /mnt/pool /mnt/single /mnt/sub\n\
                    mount /dev/vda /mnt/pool && btrfs subvolume create /mnt/pool/sub >/dev/null\n\
                    mount -o subvol=sub /dev/vdb /mnt/sub && mount /dev/vdc /mnt/single\n",
        },
        Case {
            name: "multipath_kpartx",
            vm: || {
                Vm::new()
                    .virtio_disk("mp-disk", 64)
                    .virtio_path_to(0, "mp-disk")
                    .virtio_disk("local-disk", 32)
                    .modules(&["dm-multipath", "dm-round-robin", "ext4"])
            },
            // vda and vdb are two paths to one image (one serial): a multipath device over
            // them as multipathd would make it (uuid mpath-WWID), and on it a partition as
            // kpartx makes them (a linear target, uuid partN-mpath-WWID).
            setup: "S=$(blockdev --getsz /dev/vda)\n\
                    dmsetup create mpatha --uuid mpath-0QEMU_mp-disk \
                      --table \"0 $S multipath 0 0 1 1 round-robin 0 2 1 /dev/vda 1 /dev/vdb 1\"\n\
                    dmsetup create mpatha1 --uuid part1-mpath-0QEMU_mp-disk \
                      --table \"0 $((S - 2048)) linear /dev/mapper/mpatha 2048\"\n\
                    dmsetup ls; ls -l /dev/mapper\n\
                    mkfs.ext4 -q /dev/mapper/mpatha1 && mkfs.ext4 -q /dev/vdc\n\
                    mkdir -p /mnt/mp1 /mnt/local\n\
                    mount /dev/mapper/mpatha1 /mnt/mp1 && mount /dev/vdc /mnt/local\n",
        },
        Case {
            name: "duplicate_serials",
            vm: || {
                Vm::new()
                    .virtio_disk("same-serial", 16)
                    .virtio_disk("same-serial", 16)
                    .nvme_disk("vol0fedcba9876543210", 16)
            },
            setup: "true\n",
        },
    ]
}

/// Boots the case's guest, sets it up, captures; returns (sysfs.txt, mountinfo.txt, run).
pub fn record(scratch: &Scratch, case: &Case) -> (String, String, VmRun) {
    let script = format!("set -e\n{}\nsync\nset +e\n{CAPTURE}", case.setup);
    let run = (case.vm)()
        .timeout(Duration::from_secs(300))
        .run(scratch, &script);
    let out = run.assert_ok().to_string();
    let section = |name: &str| -> String {
        let start = out
            .find(&format!("@@FILE {name}\n"))
            .unwrap_or_else(|| panic!("no {name} in the capture of {}:\n{out}", case.name));
        let body = &out[start + name.len() + 8..];
        let end = body.find("\n@@").map(|i| i + 1).unwrap_or(body.len());
        body[..end].to_string()
    };
    let (sysfs, mountinfo) = (section("sysfs.txt"), section("mountinfo.txt"));
    assert!(
        out.contains("@@END"),
        "the capture of {} was cut short",
        case.name
    );
    (sysfs, mountinfo, run)
}

#[test]
#[ignore = "re-records core/testdata/sysfs (boots one VM per case)"]
fn record_sysfs_trees() {
    require_root();
    let only = std::env::var("QUIESCE_RECORD_CASE").ok();
    for case in cases() {
        if only.as_deref().is_some_and(|o| o != case.name) {
            continue;
        }
        let scratch = Scratch::new();
        let (sysfs, mountinfo, run) = record(&scratch, &case);
        let dir = repo_root().join("core/testdata/sysfs").join(case.name);
        fs::create_dir_all(&dir).expect("mkdir");
        write(&dir.join("sysfs.txt"), &sysfs);
        write(&dir.join("mountinfo.txt"), &mountinfo);
        write(
            &dir.join("setup.sh"),
            &format!(
                "# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,\n\
                 # case {}); the disks:\n{}{}",
                case.name,
                (case.vm)()
                    .disks()
                    .iter()
                    .map(|d| format!("#   {:?} serial={} {} MiB partitions={:?}\n", d.bus, d.serial, d.size_mib, d.partitions))
                    .collect::<String>(),
                case.setup
            ),
        );
        println!("{}: recorded in {:?}", case.name, run.elapsed);
    }
}

fn write(p: &Path, s: &str) {
    fs::write(p, s).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

/// Everything at once in one guest, for the live check below.
fn stack_case() -> Case {
    Case {
        name: "stack",
        vm: || {
            Vm::new()
                .virtio_disk("stack-lvm-a", 64)
                .virtio_disk("stack-lvm-b", 64)
                .virtio_disk("stack-md-a", 64)
                .virtio_disk("stack-md-b", 64)
                .virtio_disk_partitioned("stack-crypt", 400, &[48, 340])
                .virtio_disk("stack-btrfs-a", 160)
                .virtio_disk("stack-btrfs-b", 160)
                .nvme_disk(&AWS_VOLUME.replace('-', ""), 32)
                .modules(&[
                    "dm-mod", "dm-crypt", "xts", "algif_skcipher", "raid1", "loop", "ext4", "xfs",
                    "btrfs",
                ])
        },
        setup: "pvcreate -q /dev/vda /dev/vdb && vgcreate -q vg0 /dev/vda /dev/vdb\n\
                lvcreate -q -l 100%FREE -n big vg0 && mkfs.ext4 -q /dev/vg0/big\n\
                mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 \
                  /dev/vdc /dev/vdd 2>/dev/null\n\
                mkfs.ext4 -q /dev/md0\n\
                mkfs.ext4 -q /dev/vde1\n\
                mkdir -p /mnt/lvm /mnt/md /mnt/keys /mnt/inner /mnt/secret /mnt/pool /mnt/nvme\n\
                mount /dev/vg0/big /mnt/lvm && mount /dev/md0 /mnt/md && mount /dev/vde1 /mnt/keys\n\
                head -c 64 /dev/urandom > /mnt/keys/disk.key\n\
                cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
                  --key-file /mnt/keys/disk.key /dev/vde2\n\
                cryptsetup open --key-file /mnt/keys/disk.key /dev/vde2 secret\n\
                mkfs.xfs -q /dev/mapper/secret && mount /dev/mapper/secret /mnt/secret\n\
                truncate -s 16M /mnt/keys/inner.img && mkfs.ext4 -q /mnt/keys/inner.img\n\
                losetup /dev/loop0 /mnt/keys/inner.img && mount /dev/loop0 /mnt/inner\n\
                mkfs.btrfs -q -f -d raid1 -m raid1 /dev/vdf /dev/vdg && mount /dev/vdg /mnt/pool\n\
                mkfs.ext4 -q /dev/nvme0n1 && mount /dev/nvme0n1 /mnt/nvme\n",
    }
}

/// capture.sh and the graph together on a freshly booted guest: every filesystem of a guest
/// with LVM, md, dm-crypt, a loop image and btrfs at once leads to the disks with the right
/// serials, and the disks are found by serial in the AWS form.
#[test]
fn a_live_guest_recording_gives_every_filesystems_disks() {
    use quiesce_core::blockdev::{Graph, Leaves};
    use quiesce_core::mountinfo::MountInfo;
    use quiesce_core::sysfs::Recorded;

    require_root();
    let scratch = Scratch::new();
    let (sysfs, mountinfo, run) = record(&scratch, &stack_case());
    println!("recorded in {:?} ({:?})", run.elapsed, run.accel);
    let tree = Recorded::new(&sysfs);
    let g = Graph::new(&tree, MountInfo::new(mountinfo.as_bytes()));
    let serials_of = |mp: &str| -> Vec<String> {
        let entry = MountInfo::new(mountinfo.as_bytes())
            .entries()
            .flatten()
            .find(|e| e.mount_point.eq_decoded(mp.as_bytes()))
            .unwrap_or_else(|| panic!("{mp} not mounted in the guest:\n{mountinfo}"));
        let mut out: Leaves<8> = Leaves::new();
        g.filesystem_leaves(&entry, &mut out)
            .unwrap_or_else(|e| panic!("{mp}: {e}"));
        let mut s: Vec<String> = out
            .disks
            .iter()
            .map(|d| g.disk_info(*d).expect("disk info").serial.to_string())
            .collect();
        s.sort();
        s
    };
    let aws = AWS_VOLUME.replace('-', "");
    for (mp, want) in [
        ("/mnt/lvm", vec!["stack-lvm-a", "stack-lvm-b"]),
        ("/mnt/md", vec!["stack-md-a", "stack-md-b"]),
        ("/mnt/keys", vec!["stack-crypt"]),
        ("/mnt/secret", vec!["stack-crypt"]),
        ("/mnt/inner", vec!["stack-crypt"]),
        ("/mnt/pool", vec!["stack-btrfs-a", "stack-btrfs-b"]),
        ("/mnt/nvme", vec![aws.as_str()]),
    ] {
        assert_eq!(serials_of(mp), want, "{mp}\n{sysfs}");
    }
    let arg = format!("serial:{AWS_VOLUME}");
    let d = g.resolve_disk(&arg).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.serial, aws.as_str());
}
