# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case dm_crypt); the disks:
#   Virtio serial=crypt-disk 400 MiB partitions=[32, 340]
mkfs.ext4 -q /dev/vda1 && mkdir -p /mnt/keys /mnt/secret && mount /dev/vda1 /mnt/keys
head -c 64 /dev/urandom > /mnt/keys/disk.key
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file /mnt/keys/disk.key /dev/vda2
cryptsetup open --key-file /mnt/keys/disk.key /dev/vda2 secret
mkfs.xfs -q /dev/mapper/secret && mount /dev/mapper/secret /mnt/secret
