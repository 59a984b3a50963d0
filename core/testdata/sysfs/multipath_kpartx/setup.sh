# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case multipath_kpartx); the disks:
#   Virtio serial=mp-disk 64 MiB partitions=[]
#   Virtio serial=mp-disk 64 MiB partitions=[]
#   Virtio serial=local-disk 32 MiB partitions=[]
S=$(blockdev --getsz /dev/vda)
dmsetup create mpatha --uuid mpath-0QEMU_mp-disk --table "0 $S multipath 0 0 1 1 round-robin 0 2 1 /dev/vda 1 /dev/vdb 1"
dmsetup create mpatha1 --uuid part1-mpath-0QEMU_mp-disk --table "0 $((S - 2048)) linear /dev/mapper/mpatha 2048"
dmsetup ls; ls -l /dev/mapper
mkfs.ext4 -q /dev/mapper/mpatha1 && mkfs.ext4 -q /dev/vdc
mkdir -p /mnt/mp1 /mnt/local
mount /dev/mapper/mpatha1 /mnt/mp1 && mount /dev/vdc /mnt/local
