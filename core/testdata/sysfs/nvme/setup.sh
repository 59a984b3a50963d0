# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case nvme); the disks:
#   Nvme serial=vol0123456789abcdef0 128 MiB partitions=[]
#   Nvme serial=nvme-data-2 64 MiB partitions=[]
#   Virtio serial=system-disk 64 MiB partitions=[]
printf 'o\nn\np\n1\n\n+32M\nn\np\n2\n\n\nw\n' | fdisk /dev/nvme0n1 >/dev/null
sleep 1; ls /dev/nvme0n1p1 /dev/nvme0n1p2
mkfs.ext4 -q /dev/nvme0n1p1 && mkfs.ext4 -q /dev/nvme0n1p2 && mkfs.ext4 -q /dev/nvme1n1
mkfs.ext4 -q /dev/vda
mkdir -p /mnt/p1 /mnt/p2 /mnt/n2 /mnt/sys
mount /dev/nvme0n1p1 /mnt/p1 && mount /dev/nvme0n1p2 /mnt/p2
mount /dev/nvme1n1 /mnt/n2 && mount /dev/vda /mnt/sys
