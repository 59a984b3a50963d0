#!/bin/sh
# Records what the block-device graph (core/src/blockdev.rs) reads, in a portable text form.
# Run inside a guest of the VM rig (tests/vm_sysfs.rs runs it; busybox sh), after the case's
# devices are set up. Prints two sections, "@@FILE sysfs.txt" and "@@FILE mountinfo.txt".
#
# sysfs.txt, one entry a line, fields separated by a TAB:
#   D  PATH          a directory
#   F  PATH  TEXT    a regular file; TEXT with "\" as "\\", TAB as "\t", newline as "\n",
#                    the final newline dropped
#   L  PATH  TARGET  a symbolic link, its target as readlink gives it
#   B  PATH  MAJ:MIN a block device node (under /dev)
#   S  PATH  MAJ:MIN the st_dev of a file (the backing files of loop devices)
# Paths are absolute and canonical in their directory part (links are recorded where they are;
# files are recorded under the directory a link points to).
set -u
T=$(printf '\t')

esc() { sed -e 's/\\/\\\\/g' -e "s/$T/\\\\t/g" "$1" | awk 'BEGIN { ORS = "" } NR > 1 { print "\\n" } { print }'; }
rec_dir() { printf 'D\t%s\n' "$1"; }
rec_file() {
  [ -f "$1" ] && [ -r "$1" ] || return 0
  v=$(esc "$1" 2>/dev/null) || return 0
  printf 'F\t%s\t%s\n' "$1" "$v"
}
rec_link() { [ -L "$1" ] && printf 'L\t%s\t%s\n' "$1" "$(readlink "$1")"; }
devnum() { # decimal dev_t -> MAJ:MIN (the kernel's new_encode_dev)
  d=$1
  echo "$(( (d >> 8) & 0xfff )):$(( (d & 0xff) | ((d >> 12) & 0xfff00) ))"
}

echo "@@FILE sysfs.txt"
echo "# quiesce sysfs recording v1: $(uname -r)"
for top in /sys/block /sys/class/block /sys/dev/block; do
  rec_dir "$top"
  for e in "$top"/*; do rec_link "$e"; done
done

# Every block device's directory, at its canonical path.
for e in /sys/class/block/*; do
  d=$(readlink -f "$e")
  rec_dir "$d"
  for f in dev partition start size ro removable serial wwid uuid ext_range capability; do
    rec_file "$d/$f"
  done
  if [ -L "$d/device" ]; then
    rec_link "$d/device"
    dd=$(readlink -f "$d/device")
    rec_dir "$dd"
    for f in serial wwid model vendor rev; do rec_file "$dd/$f"; done
  fi
  for sub in slaves holders; do
    [ -d "$d/$sub" ] || continue
    rec_dir "$d/$sub"
    for l in "$d/$sub"/*; do rec_link "$l"; done
  done
  [ -d "$d/dm" ] && { rec_dir "$d/dm"; for f in name uuid suspended; do rec_file "$d/dm/$f"; done; }
  [ -d "$d/md" ] && { rec_dir "$d/md"; for f in level raid_disks uuid array_state metadata_version; do rec_file "$d/md/$f"; done; }
  if [ -d "$d/loop" ]; then
    rec_dir "$d/loop"
    for f in backing_file offset sizelimit autoclear partscan; do rec_file "$d/loop/$f"; done
  fi
done

# Multi-device btrfs.
if [ -d /sys/fs/btrfs ]; then
  rec_dir /sys/fs/btrfs
  for fs in /sys/fs/btrfs/*; do
    [ -d "$fs/devices" ] || continue
    rec_dir "$fs"
    rec_file "$fs/label"
    rec_file "$fs/metadata_uuid"
    rec_dir "$fs/devices"
    for l in "$fs/devices"/*; do rec_link "$l"; done
  done
fi

# /dev: block nodes and links (udev's by-id links here are made by the rig's /init).
find /dev -type b | sort | while read -r n; do
  printf 'B\t%s\t%s\n' "$n" "$(( 0x$(stat -c %t "$n") )):$(( 0x$(stat -c %T "$n") ))"
done
find /dev -type l | sort | while read -r l; do rec_link "$l"; done
find /dev -type d | sort | while read -r d; do rec_dir "$d"; done

# The files that back loop devices, with the device of the filesystem holding them.
for b in /sys/class/block/loop*/loop/backing_file; do
  [ -f "$b" ] || continue
  p=$(cat "$b")
  [ -e "$p" ] && printf 'S\t%s\t%s\n' "$p" "$(devnum "$(stat -c %d "$p")")"
done

echo "@@FILE mountinfo.txt"
cat /proc/self/mountinfo
echo "@@END"
