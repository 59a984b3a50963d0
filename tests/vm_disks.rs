//! Selection by disk in a real guest (tests/support/vm), on virtio disks selected by serial:
//! LVM over two disks with an ext4 logical volume, dm-crypt (a key file) holding xfs on a
//! partition, an md RAID1 of two disks, a plain disk, and two disks with the same serial. One
//! boot runs every check; the guest prints a marker per check and the host reads the verdicts.

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
        .modules(&[
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
        vec!["/mnt/keys", "/mnt/md", "/mnt/other", "/mnt/secret"],
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
    pos("all-done");
}
