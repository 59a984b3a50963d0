//! The real-VM rig itself (tests/support/vm): a guest boots with virtio and NVMe disks whose
//! serials the host chose, a partitioned disk, the guest-agent port, and gives back its
//! script's output and exit status; the static quiesce runs in it; the guest-agent port works.

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
        "boot, script and power-off: {:?} under {:?}\n{}",
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

/// The static `quiesce` runs in the guest: it freezes a guest filesystem on a virtio disk (a
/// write in the background completes only after the thaw), and only that one.
#[test]
fn the_static_quiesce_freezes_a_guest_filesystem() {
    require_root();
    let scratch = Scratch::new();
    let run = Vm::new()
        .virtio_disk("frozen-disk", 64)
        .virtio_disk("other-disk", 64)
        .modules(&["ext4"])
        .with_quiesce()
        .run(
            &scratch,
            "set -e\n\
             mkfs.ext4 -q /dev/vda && mkfs.ext4 -q /dev/vdb\n\
             mkdir -p /mnt/a /mnt/b && mount /dev/vda /mnt/a && mount /dev/vdb /mnt/b\n\
             quiesce run --timeout 20 /mnt/a -- sh -c '\n\
               (echo x > /mnt/a/probe; sync /mnt/a/probe; echo a-written) &\n\
               echo y > /mnt/b/probe && sync /mnt/b/probe && echo b-written-while-frozen\n\
               sleep 2; echo window-over'\n\
             wait\n\
             sleep 1\n\
             echo done\n",
        );
    let out = run.assert_ok();
    let pos = |s: &str| {
        out.find(s)
            .unwrap_or_else(|| panic!("no {s:?} in the guest's output:\n{out}"))
    };
    assert!(pos("b-written-while-frozen") < pos("window-over"), "{out}");
    assert!(
        pos("window-over") < pos("a-written"),
        "the write to /mnt/a completed while frozen:\n{out}"
    );
}

/// The guest-agent port: bytes written in the guest to
/// /dev/virtio-ports/org.qemu.guest_agent.0 come out of the host's unix socket, and back.
#[test]
fn the_guest_agent_port_carries_bytes_both_ways() {
    use std::io::{BufRead, BufReader, Write};
    use std::os::unix::net::UnixStream;
    use std::time::Instant;

    require_root();
    let scratch = Scratch::new();
    let vm = Vm::new().guest_agent().start(
        &scratch,
        "exec 3<>/dev/virtio-ports/org.qemu.guest_agent.0\n\
         echo ready\n\
         echo '{\"hello\": \"from the guest\"}' >&3\n\
         read -r line <&3\n\
         echo \"got: $line\"\n",
    );
    let sock = vm.guest_agent_socket().expect("a socket").to_path_buf();
    let end = Instant::now() + Duration::from_secs(60);
    let stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(e) if Instant::now() > end => panic!("connect {}: {e}", sock.display()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("a line from the guest");
    assert_eq!(line.trim(), "{\"hello\": \"from the guest\"}");
    (&stream).write_all(b"{\"return\": {}}\n").expect("write");
    let run = vm.wait();
    let out = run.assert_ok();
    assert!(out.contains("got: {\"return\": {}}"), "{out}");
}
