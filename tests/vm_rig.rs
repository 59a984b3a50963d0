//! The real-VM rig itself (tests/support/vm): a guest boots with virtio and NVMe disks whose
//! serials the host chose, a partitioned disk, the guest-agent port, and gives back its
//! script's output and exit status.

use std::time::Duration;

use quiesce_testkit::vm::Vm;
use quiesce_testkit::{require_root, Scratch};

#[test]
fn a_guest_sees_the_hosts_disks_serials_partitions_and_port() {
    require_root();
    let scratch = Scratch::new();
    let vm = Vm::new()
        .virtio_disk("vol0123456789abcdef0", 16)
        .virtio_disk_partitioned("part-disk", 64, &[16, 32])
        .nvme_disk("nvme-serial-1", 16)
        .guest_agent()
        .timeout(Duration::from_secs(240));
    let run = vm.run(
        &scratch,
        "set -e\n\
         echo serial-a=$(cat /sys/block/vda/serial)\n\
         echo serial-b=$(cat /sys/block/vdb/serial)\n\
         echo nvme=$(cat /sys/block/nvme0n1/device/serial)\n\
         echo parts=$(ls -d /sys/block/vdb/vdb? | wc -l)\n\
         echo size1=$(cat /sys/block/vdb/vdb1/size)\n\
         echo port=$(cat /sys/class/virtio-ports/*/name)\n\
         test -c /dev/virtio-ports/org.qemu.guest_agent.0 && echo port-node=yes\n\
         test -b /dev/disk/by-id/virtio-part-disk && echo by-id=yes\n\
         exit 0\n",
    );
    let out = run.assert_ok();
    println!(
        "boot+script+poweroff: {:?} under {:?}\n{}",
        run.elapsed, run.accel, run.console
    );
    for want in [
        "serial-a=vol0123456789abcdef0",
        "serial-b=part-disk",
        "nvme=nvme-serial-1",
        "parts=2",
        "size1=32768",
        "port=org.qemu.guest_agent.0",
        "port-node=yes",
        "by-id=yes",
    ] {
        assert!(
            out.contains(want),
            "no {want:?} in the guest's output:\n{out}"
        );
    }
}

#[test]
fn a_failing_script_reports_its_status_and_a_hung_one_is_killed() {
    require_root();
    let scratch = Scratch::new();
    let run = Vm::new().run(&scratch, "echo before; exit 3\n");
    println!(
        "a bare boot, script and power-off: {:?} under {:?}",
        run.elapsed, run.accel
    );
    assert_eq!(run.exit, Some(3), "{run:?}");
    assert!(run.output.contains("before"), "{run:?}");
    let run = Vm::new()
        .timeout(Duration::from_secs(20))
        .run(&scratch, "echo hanging; sleep 1000\n");
    assert_eq!(run.exit, None, "{run:?}");
    assert!(run.timed_out, "{run:?}");
}
