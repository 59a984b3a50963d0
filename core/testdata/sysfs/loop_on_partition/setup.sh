# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case loop_on_partition); the disks:
#   Virtio serial=loop-host 128 MiB partitions=[100]
mkfs.ext4 -q /dev/vda1 && mkdir -p /mnt/host /mnt/inner /mnt/mem
mount /dev/vda1 /mnt/host
truncate -s 32M /mnt/host/inner.img && mkfs.ext4 -q /mnt/host/inner.img
losetup /dev/loop0 /mnt/host/inner.img && mount /dev/loop0 /mnt/inner
truncate -s 16M /tmp/mem.img && mkfs.ext4 -q /tmp/mem.img
losetup /dev/loop1 /tmp/mem.img && mount /dev/loop1 /mnt/mem
