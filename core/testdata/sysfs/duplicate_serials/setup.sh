# The guest's setup before core/testdata/sysfs/capture.sh ran (tests/vm_sysfs.rs,
# case duplicate_serials); the disks:
#   Virtio serial=same-serial 16 MiB partitions=[]
#   Virtio serial=same-serial 16 MiB partitions=[]
#   Nvme serial=vol0fedcba9876543210 16 MiB partitions=[]
true
