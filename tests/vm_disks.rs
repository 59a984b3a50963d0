//! Selection by disk in a real guest (tests/support/vm), on virtio disks selected by serial:
//! LVM over two disks with an ext4 logical volume, dm-crypt (a key file) holding xfs on a
//! partition, an md RAID1 of two disks, a plain disk, two disks with the same serial, a
//! partitioned disk (two filesystems, swap, an unmounted partition), a loop image on another
//! disk's filesystem, btrfs RAID1 over two disks, and a disk held by a device-mapper device
//! with nothing mounted (a raw device in use). One boot runs every check; the guest prints a
//! marker per check (the write probes with their completion times) and the host reads the
//! verdicts.

use std::time::Duration;

use quiesce_testkit::vm::Vm;
use quiesce_testkit::{require_root, Json, JsonExt, Scratch};

const SCRIPT: &str = r#"
set -u
pvcreate -q /dev/vda /dev/vdb && vgcreate -q vg0 /dev/vda /dev/vdb
lvcreate -q -l 100%FREE -n big vg0 && mkfs.ext4 -q /dev/vg0/big
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 /dev/vdc /dev/vdd 2>/dev/null
mkfs.ext4 -q /dev/md0
mkfs.ext4 -q /dev/vde1
mkfs.ext4 -q /dev/vdf
mkdir -p /mnt/lvm /mnt/md /mnt/keys /mnt/secret /mnt/other
mount /dev/vg0/big /mnt/lvm && mount /dev/md0 /mnt/md && mount /dev/vde1 /mnt/keys
head -c 64 /dev/urandom > /mnt/keys/disk.key
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 \
  --key-file /mnt/keys/disk.key /dev/vde2
cryptsetup open --key-file /mnt/keys/disk.key /dev/vde2 secret
mkfs.xfs -q /dev/mapper/secret && mount /dev/mapper/secret /mnt/secret
mount /dev/vdf /mnt/other
# The partitioned disk (vdi): two filesystems, swap, an unmounted partition; a loop image on
# host-disk (vdj); btrfs RAID1 over btrfs-a and btrfs-b (vdk, vdl); raw-disk (vdm) held by a
# device-mapper device on which nothing is mounted (a raw device in use).
mkfs.ext4 -q /dev/vdi1 && mkfs.ext4 -q /dev/vdi2 && mkfs.ext4 -q /dev/vdi4
mkswap /dev/vdi3 >/dev/null && swapon /dev/vdi3
mkfs.ext4 -q /dev/vdj
mkfs.btrfs -q -f -d raid1 -m raid1 /dev/vdk /dev/vdl && btrfs device scan >/dev/null
dmsetup create rawlin --table "0 $(cat /sys/block/vdm/size) linear /dev/vdm 0"
mkdir -p /mnt/p1 /mnt/p2 /mnt/host /mnt/inner /mnt/pool
mount /dev/vdi1 /mnt/p1 && mount /dev/vdi2 /mnt/p2 && mount /dev/vdj /mnt/host
dd if=/dev/zero of=/mnt/host/inner.img bs=1M count=40 2>/dev/null && mkfs.ext4 -q -F /mnt/host/inner.img
losetup /dev/loop0 /mnt/host/inner.img && mount /dev/loop0 /mnt/inner
mount /dev/vdk /mnt/pool
echo setup-done

# 1. --disk by serial: LVM (both disks) and the crypt disk; md and other are not frozen.
quiesce plan --json --disk serial:lvm-a --disk serial:lvm-b --disk serial:crypt-disk > /tmp/plan.json
echo "plan-rc=$?"
echo "PLAN $(cat /tmp/plan.json)"
quiesce run --json --timeout 30 --disk serial:lvm-a --disk serial:lvm-b --disk serial:crypt-disk -- sh -c '
  (echo x > /mnt/lvm/probe; sync /mnt/lvm/probe; echo lvm-written) &
  (echo x > /mnt/secret/probe; sync /mnt/secret/probe; echo secret-written) &
  (echo x > /mnt/keys/probe; sync /mnt/keys/probe; echo keys-written) &
  echo y > /mnt/md/probe && sync /mnt/md/probe && echo md-written-while-frozen
  echo y > /mnt/other/probe && sync /mnt/other/probe && echo other-written-while-frozen
  sleep 3; echo window-over' > /tmp/run.json
echo "run-rc=$?"
sleep 2
echo "RUN $(grep '^{' /tmp/run.json)"

# 2. One disk of the volume group, of the array: refused with the group code, nothing frozen.
quiesce freeze --stdin --timeout 10 --disk serial:lvm-a < /dev/null 2> /tmp/lvm.err
echo "lvm-half-rc=$?"
echo "LVMERR $(cat /tmp/lvm.err)"
quiesce plan --disk serial:md-a 2> /tmp/md.err
echo "md-half-rc=$?"
echo "MDERR $(cat /tmp/md.err)"
echo z > /mnt/lvm/after && sync /mnt/lvm/after && echo lvm-writable-after-refusal

# 3. --allow-partial-group: the array is not covered.
quiesce plan --json --disk serial:md-a --disk serial:other-disk --allow-partial-group > /tmp/partial.json
echo "partial-rc=$?"
echo "PARTIAL $(cat /tmp/partial.json)"

# 4. --exclude-disk: everything but the LVM disks (the guest's root is in memory).
quiesce run --json --timeout 30 --exclude-disk serial:lvm-a --exclude-disk serial:lvm-b -- sh -c '
  echo w > /mnt/lvm/probe2 && sync /mnt/lvm/probe2 && echo lvm-written-while-others-frozen
  (echo w > /mnt/md/probe2; sync /mnt/md/probe2; echo md-written) &
  sleep 3; echo exclude-window-over' > /tmp/excl.json
echo "exclude-rc=$?"
sleep 2
echo "EXCL $(grep '^{' /tmp/excl.json)"

# 5. Bad input.
quiesce plan --disk /dev/vde1 2> /tmp/e1; echo "part-rc=$? $(cat /tmp/e1)"
quiesce plan --disk /dev/mapper/secret 2> /tmp/e2; echo "stacked-rc=$? $(cat /tmp/e2)"
quiesce plan --disk serial:no-such-disk 2> /tmp/e3; echo "nomatch-rc=$? $(cat /tmp/e3)"
quiesce plan --disk serial:twin 2> /tmp/e4; echo "twin-rc=$? $(cat /tmp/e4)"
quiesce plan --disk /mnt/keys/disk.key 2> /tmp/e5; echo "notblock-rc=$? $(cat /tmp/e5)"
quiesce freeze --stdin --timeout 5 --disk serial:md-a /mnt/md < /dev/null 2> /tmp/e6; echo "mixed-rc=$? $(cat /tmp/e6)"

# 6. A partitioned disk, a loop image on another disk's filesystem, btrfs RAID1 over two
# disks, and a disk with a raw device in use. Each probe reports its completion time (uptime).
SEL="--disk serial:part-disk --disk serial:host-disk --disk serial:btrfs-a --disk serial:btrfs-b --disk serial:raw-disk"
quiesce plan --json $SEL > /tmp/plan6.json
echo "plan6-rc=$?"
echo "PLAN6 $(cat /tmp/plan6.json)"
quiesce plan --disk serial:part-disk --disk serial:raw-disk | sed 's/^/TREE /'
quiesce run --json --timeout 30 $SEL -- sh -c '
  up() { cut -d" " -f1 /proc/uptime; }
  for m in p1 p2 inner host pool; do
    (echo x > /mnt/$m/probe6; sync /mnt/$m/probe6; echo "frozen-probe $m $(up)") &
  done
  for m in lvm md other keys secret; do
    (echo x > /mnt/$m/probe6; sync /mnt/$m/probe6; echo "other-probe $m $(up)") &
  done
  sleep 3; echo "window6-over $(up)"' > /tmp/run6.json
echo "run6-rc=$? $(cut -d' ' -f1 /proc/uptime)"
sleep 2
echo "RUN6 $(grep '^{' /tmp/run6.json)"

# 7. One disk of the btrfs pair: refused with the group code, nothing frozen.
quiesce freeze --stdin --timeout 10 --disk serial:btrfs-a < /dev/null 2> /tmp/btrfs.err
echo "btrfs-half-rc=$?"
echo "BTRFSERR $(cat /tmp/btrfs.err)"
for m in pool p1 host inner; do
  echo z > /mnt/$m/after7 && sync /mnt/$m/after7 && echo "$m-writable-after-refusal"
done

# 8. --allow-partial-group: the btrfs is not covered; the partitions are frozen.
quiesce run --json --timeout 30 --allow-partial-group --disk serial:btrfs-a --disk serial:part-disk -- sh -c '
  echo w > /mnt/pool/probe8 && sync /mnt/pool/probe8 && echo pool-written-while-partial-frozen
  sleep 1; echo partial-window-over' > /tmp/partial8.json
echo "partial8-rc=$?"
echo "PARTIAL8 $(grep '^{' /tmp/partial8.json)"
swapoff /dev/vdi3
echo all-done
exit 0
"#;

fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in the guest's output:\n{out}"))
}

fn json(out: &str, prefix: &str) -> Json {
    let text = line(out, prefix);
    Json::parse(text).unwrap_or_else(|e| panic!("{prefix}: {e}: {text}\n{out}"))
}

fn points(j: &Json) -> Vec<String> {
    let mut v: Vec<String> = j["targets"]
        .items()
        .iter()
        .map(|t| t["mount_point"].as_str().unwrap_or("").to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn selection_by_serial_in_a_guest_with_lvm_dm_crypt_and_md() {
    require_root();
    let scratch = Scratch::new();
    let run = Vm::new()
        .virtio_disk("lvm-a", 64)
        .virtio_disk("lvm-b", 64)
        .virtio_disk("md-a", 64)
        .virtio_disk("md-b", 64)
        .virtio_disk_partitioned("crypt-disk", 400, &[48, 340])
        .virtio_disk("other-disk", 32)
        .virtio_disk("twin", 8)
        .virtio_disk("twin", 8)
        .virtio_disk_partitioned("part-disk", 128, &[40, 40, 16, 16])
        .virtio_disk("host-disk", 96)
        .virtio_disk("btrfs-a", 160)
        .virtio_disk("btrfs-b", 160)
        .virtio_disk("raw-disk", 8)
        .modules(&[
            "loop",
            "btrfs",
            "dm-mod",
            "dm-crypt",
            "xts",
            "algif_skcipher",
            "raid1",
            "ext4",
            "xfs",
        ])
        .with_quiesce()
        .timeout(Duration::from_secs(480))
        .run(&scratch, SCRIPT);
    let out = run.assert_ok();
    println!("guest run: {:?} under {:?}", run.elapsed, run.accel);
    let pos = |s: &str| {
        out.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in the guest's output:\n{out}"))
    };

    // 1. Exactly the filesystems on the named disks.
    assert_eq!(line(out, "plan-rc="), "0", "{out}");
    let plan = json(out, "PLAN ");
    let want = vec!["/mnt/keys", "/mnt/lvm", "/mnt/secret"];
    assert_eq!(points(&plan), want, "{out}");
    let disks = plan["disks"].items();
    let serials: Vec<&str> = disks
        .iter()
        .map(|d| d["serial"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(serials, vec!["lvm-a", "lvm-b", "crypt-disk"], "{out}");
    for d in disks {
        assert_eq!(d["level"].as_str(), Some("filesystem-consistent"), "{out}");
    }
    assert_eq!(line(out, "run-rc="), "0", "{out}");
    let run_json = json(out, "RUN ");
    assert_eq!(points(&run_json), want, "{out}");
    for other in ["md-written-while-frozen", "other-written-while-frozen"] {
        assert!(
            pos(other) < pos("window-over"),
            "{other} not inside the window:\n{out}"
        );
    }
    for frozen in ["lvm-written", "secret-written", "keys-written"] {
        assert!(
            pos("window-over") < pos(&format!("\n{frozen}\n")),
            "{frozen} completed while frozen:\n{out}"
        );
    }

    // 2. The group check.
    assert_eq!(line(out, "lvm-half-rc="), "8", "{out}");
    let lvm = line(out, "LVMERR ");
    assert!(
        lvm.contains("/mnt/lvm")
            && lvm.contains("serial lvm-b")
            && lvm.contains("not in the group"),
        "{lvm}"
    );
    assert_eq!(line(out, "md-half-rc="), "8", "{out}");
    let md = line(out, "MDERR ");
    assert!(md.contains("/mnt/md") && md.contains("serial md-b"), "{md}");
    pos("lvm-writable-after-refusal");

    // 3. Not covered.
    assert_eq!(line(out, "partial-rc="), "0", "{out}");
    let partial = json(out, "PARTIAL ");
    assert_eq!(points(&partial), vec!["/mnt/other"], "{out}");
    let md_disk = &partial["disks"].items()[0];
    assert_eq!(
        md_disk["filesystems"].items()[0]["verdict"].as_str(),
        Some("not-covered")
    );
    assert_eq!(md_disk["level"].as_str(), Some("not-consistent"));

    // 4. The complement.
    assert_eq!(line(out, "exclude-rc="), "0", "{out}");
    let excl = json(out, "EXCL ");
    assert_eq!(
        points(&excl),
        vec![
            "/mnt/host",
            "/mnt/inner",
            "/mnt/keys",
            "/mnt/md",
            "/mnt/other",
            "/mnt/p1",
            "/mnt/p2",
            "/mnt/pool",
            "/mnt/secret"
        ],
        "{out}"
    );
    assert!(
        pos("lvm-written-while-others-frozen") < pos("exclude-window-over"),
        "{out}"
    );
    assert!(pos("exclude-window-over") < pos("\nmd-written\n"), "{out}");

    // 5. Bad input.
    for (key, code, words) in [
        ("part-rc=", "3", "vde1 is a partition of disk vde"),
        ("stacked-rc=", "3", "not a disk"),
        ("nomatch-rc=", "3", "no disk has this serial"),
        ("twin-rc=", "3", "matches more than one disk"),
        ("notblock-rc=", "3", "not a block device"),
        ("mixed-rc=", "2", "do not mix"),
    ] {
        let l = line(out, key);
        assert!(
            l.starts_with(code) && l.contains(words),
            "{key} {l:?}: want {code} and {words:?}\n{out}"
        );
    }

    // 6. Exactly the filesystems on the named disks, the loop filesystem before the one
    // holding its image; the others written during the window, the frozen ones after it.
    assert_eq!(line(out, "plan6-rc="), "0", "{out}");
    let plan6 = json(out, "PLAN6 ");
    let want6 = vec!["/mnt/host", "/mnt/inner", "/mnt/p1", "/mnt/p2", "/mnt/pool"];
    assert_eq!(points(&plan6), want6, "{out}");
    let run6_rc = line(out, "run6-rc=");
    assert!(run6_rc.starts_with("0 "), "{out}");
    let run6 = json(out, "RUN6 ");
    assert_eq!(points(&run6), want6, "{out}");
    let order = ordered(&run6);
    let at = |m: &str| order.iter().position(|p| p == m).unwrap_or(usize::MAX);
    assert!(
        at("/mnt/inner") < at("/mnt/host"),
        "the loop filesystem is frozen before the one holding its image: {order:?}"
    );
    let window_end = time(line(out, "window6-over "));
    let thawed = time(run6_rc.trim_start_matches("0 "));
    for m in ["lvm", "md", "other", "keys", "secret"] {
        let t = time(line(out, &format!("other-probe {m} ")));
        println!(
            "write to /mnt/{m} (not selected) done at {t:.2} s; window over at {window_end:.2} s"
        );
        assert!(
            t < window_end,
            "/mnt/{m} not written inside the window:\n{out}"
        );
    }
    for m in ["p1", "p2", "inner", "host", "pool"] {
        let t = time(line(out, &format!("frozen-probe {m} ")));
        println!("write to /mnt/{m} (frozen) done at {t:.2} s; thawed by {thawed:.2} s");
        assert!(t > window_end, "/mnt/{m} written while frozen:\n{out}");
    }
    // The per-disk view: frozen filesystems, then the devices without one, each with why.
    let view: Vec<&Json> = plan6["disks"].items().iter().collect();
    let disk = |serial: &str| {
        *view
            .iter()
            .find(|d| d["serial"].as_str() == Some(serial))
            .unwrap_or_else(|| panic!("no disk {serial} in the plan: {plan6}"))
    };
    let part = disk("part-disk");
    let fs_points = |d: &Json| -> Vec<String> {
        d["filesystems"]
            .items()
            .iter()
            .map(|f| f["mount_point"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(fs_points(part), vec!["/mnt/p1", "/mnt/p2"], "{plan6}");
    let devices = |d: &Json| -> Vec<(String, String)> {
        d["devices"]
            .items()
            .iter()
            .map(|u| {
                (
                    u["path"].as_str().unwrap_or("").to_string(),
                    u["why"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    };
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(
        devices(part),
        vec![pair("/dev/vdi3", "swap"), pair("/dev/vdi4", "unmounted")],
        "{plan6}"
    );
    assert_eq!(part["level"].as_str(), Some("filesystem-consistent"));
    let raw = disk("raw-disk");
    assert_eq!(devices(raw), vec![pair("/dev/vdm", "in-use")], "{plan6}");
    assert!(
        raw["devices"].items()[0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("dm-") && r.contains("no mounted filesystem")),
        "{plan6}"
    );
    assert_eq!(raw["level"].as_str(), Some("not-consistent"));
    let host = disk("host-disk");
    assert_eq!(fs_points(host), vec!["/mnt/host", "/mnt/inner"], "{plan6}");
    assert!(devices(host).is_empty(), "{plan6}");
    for serial in ["btrfs-a", "btrfs-b"] {
        assert_eq!(fs_points(disk(serial)), vec!["/mnt/pool"], "{plan6}");
        assert!(devices(disk(serial)).is_empty(), "{plan6}");
    }
    let tree: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("TREE "))
        .collect();
    let tree = tree.join("\n");
    for want in [
        "/dev/vdi3  (partition ",
        "skipped: swap",
        "/dev/vdi4  (partition ",
        "skipped: no filesystem on it is mounted",
        "/dev/vdm  (disk ",
        "skipped: raw device in use by dm-",
    ] {
        assert!(tree.contains(want), "no {want:?} in the tree:\n{tree}");
    }

    // 7. Half the btrfs pair.
    assert_eq!(line(out, "btrfs-half-rc="), "8", "{out}");
    let berr = line(out, "BTRFSERR ");
    assert!(
        berr.contains("/mnt/pool")
            && berr.contains("serial btrfs-b")
            && berr.contains("not in the group"),
        "{berr}"
    );
    for m in ["pool", "p1", "host", "inner"] {
        pos(&format!("{m}-writable-after-refusal"));
    }

    // 8. Not covered.
    assert_eq!(line(out, "partial8-rc="), "0", "{out}");
    let p8 = json(out, "PARTIAL8 ");
    assert_eq!(points(&p8), vec!["/mnt/p1", "/mnt/p2"], "{out}");
    assert_eq!(p8["not_covered"].str_array(), vec!["/mnt/pool"], "{out}");
    assert!(
        pos("pool-written-while-partial-frozen") < pos("partial-window-over"),
        "{out}"
    );
    pos("all-done");
}

/// The targets' mount points in the order frozen.
fn ordered(j: &Json) -> Vec<String> {
    j["targets"]
        .items()
        .iter()
        .map(|t| t["mount_point"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Seconds of guest uptime printed by a probe.
fn time(text: &str) -> f64 {
    text.trim()
        .parse()
        .unwrap_or_else(|e| panic!("not a time {text:?}: {e}"))
}
