#!/bin/busybox sh
# /init of the test VM's initramfs (tests/support/vm). The kernel console (ttyS0) gets the rig's
# own messages; the test script's output goes to the second serial port (ttyS1), followed by
# an end marker with its exit status. There is no udev: devtmpfs makes the device nodes, and
# the /dev/disk/by-id and /dev/virtio-ports links udev would make are made here.
/bin/busybox mkdir -p /proc /sys /dev /run /tmp /mnt /var/lock /run/lock/lvm /etc
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
/bin/busybox mount -t tmpfs tmpfs /run
/bin/busybox mount -t tmpfs tmpfs /tmp
/bin/busybox --install -s
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
export DM_DISABLE_UDEV=1
echo "quiesce-vm: init started at $(cut -d" " -f1 /proc/uptime) s"

# Kernel modules, in dependency order (modprobe --show-depends on the host).
while read -r path args; do
  [ -n "$path" ] || continue
  insmod "$path" $args 2>/tmp/insmod.err || {
    grep -q "File exists" /tmp/insmod.err || echo "quiesce-vm: insmod $path: $(cat /tmp/insmod.err)"
  }
done < /etc/quiesce-vm/modules

# Wait (up to 20 s) for the disks and ports the host attached.
want_disks=$(cat /etc/quiesce-vm/disks)
want_ports=$(cat /etc/quiesce-vm/ports)
i=0
while [ $i -lt 200 ]; do
  n=$(ls -d /sys/block/vd* /sys/block/nvme*n* 2>/dev/null | wc -l)
  p=$(ls -d /sys/class/virtio-ports/vport* 2>/dev/null | wc -l)
  [ "$n" -ge "$want_disks" ] && [ "$p" -ge "$want_ports" ] && break
  sleep 0.1
  i=$((i + 1))
done
[ $i -lt 200 ] || echo "quiesce-vm: only $n of $want_disks disks and $p of $want_ports ports appeared"

mkdir -p /dev/disk/by-id /dev/virtio-ports
for d in /sys/block/vd*; do
  [ -e "$d/serial" ] || continue
  s=$(cat "$d/serial")
  [ -n "$s" ] && ln -sf "../../${d##*/}" "/dev/disk/by-id/virtio-$s"
done
for d in /sys/block/nvme*n*; do
  [ -e "$d/device/serial" ] || continue
  s=$(sed 's/ *$//' "$d/device/serial"); m=$(sed 's/ *$//; s/ /_/g' "$d/device/model")
  ln -sf "../../${d##*/}" "/dev/disk/by-id/nvme-${m}_$s"
done
for p in /sys/class/virtio-ports/*; do
  [ -e "$p/name" ] || continue
  ln -sf "../${p##*/}" "/dev/virtio-ports/$(cat "$p/name")"
done

echo "quiesce-vm: running the test script at $(cut -d" " -f1 /proc/uptime) s"
sh /etc/quiesce-vm/test.sh > /dev/ttyS1 2>&1 < /dev/null
rc=$?
echo "@@QUIESCE-VM-EXIT $rc@@" > /dev/ttyS1
echo "quiesce-vm: test script exited with $rc at $(cut -d" " -f1 /proc/uptime) s"
sync
poweroff -f
reboot -f
