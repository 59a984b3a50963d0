# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case virtio_partitions); the disks:
#   Virtio serial=3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b 400 MiB partitions=[64, 320]
#   Virtio serial=bp1e3zy5uwbqp2sjkyyi 64 MiB partitions=[]
mkfs.ext4 -q /dev/vda1 && mkfs.xfs -q /dev/vda2 && mkfs.ext4 -q /dev/vdb
mkdir -p /mnt/a1 /mnt/a2 /mnt/b
mount /dev/vda1 /mnt/a1 && mount /dev/vda2 /mnt/a2 && mount /dev/vdb /mnt/b
