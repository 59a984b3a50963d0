# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case lvm); the disks:
#   Virtio serial=lvm-pv-a 64 MiB partitions=[]
#   Virtio serial=lvm-pv-b 64 MiB partitions=[]
#   Virtio serial=plain-disk 32 MiB partitions=[]
pvcreate -q /dev/vda /dev/vdb && vgcreate -q vg0 /dev/vda /dev/vdb
lvcreate -q -L 16M -n small vg0 /dev/vda
lvcreate -q -l 100%FREE -n big vg0
lvs -o lv_name,devices vg0
mkfs.ext4 -q /dev/vg0/small && mkfs.ext4 -q /dev/vg0/big && mkfs.ext4 -q /dev/vdc
mkdir -p /mnt/small /mnt/big /mnt/plain
mount /dev/vg0/small /mnt/small && mount /dev/mapper/vg0-big /mnt/big
mount /dev/vdc /mnt/plain
