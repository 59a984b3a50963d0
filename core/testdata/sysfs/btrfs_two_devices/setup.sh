# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case btrfs_two_devices); the disks:
#   Virtio serial=btrfs-a 160 MiB partitions=[]
#   Virtio serial=btrfs-b 160 MiB partitions=[]
#   Virtio serial=btrfs-single 160 MiB partitions=[]
mkfs.btrfs -q -f -d raid1 -m raid1 /dev/vda /dev/vdb && mkfs.btrfs -q -f /dev/vdc
btrfs device scan
mkdir -p /mnt/pool /mnt/single /mnt/sub
mount /dev/vda /mnt/pool && btrfs subvolume create /mnt/pool/sub >/dev/null
mount -o subvol=sub /dev/vdb /mnt/sub && mount /dev/vdc /mnt/single
