# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case md_raid1); the disks:
#   Virtio serial=md-a 64 MiB partitions=[]
#   Virtio serial=md-b 64 MiB partitions=[]
#   Virtio serial=md-other 32 MiB partitions=[]
mdadm --create /dev/md0 --run --level=1 --raid-devices=2 --metadata=1.2 /dev/vda /dev/vdb
mkfs.ext4 -q /dev/md0 && mkfs.ext4 -q /dev/vdc
mkdir -p /mnt/md /mnt/other && mount /dev/md0 /mnt/md && mount /dev/vdc /mnt/other
