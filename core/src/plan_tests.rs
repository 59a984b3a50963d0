//! Planner tests on mount tables recorded from real kernels (core/testdata/mountinfo).

use super::*;

const SAME_DEVICE: &[u8] = include_bytes!("../testdata/mountinfo/same_device_two_paths.txt");
const BTRFS: &[u8] = include_bytes!("../testdata/mountinfo/btrfs_subvolumes.txt");
const NESTED: &[u8] = include_bytes!("../testdata/mountinfo/nested_mounts.txt");
const LOOPS: &[u8] = include_bytes!("../testdata/mountinfo/loop_devices.txt");
const HOST: &[u8] = include_bytes!("../testdata/mountinfo/host_typical.txt");
const CONTAINER: &[u8] = include_bytes!("../testdata/mountinfo/overlay_container.txt");
const ESCAPED: &[u8] = include_bytes!("../testdata/mountinfo/escaped_spaces.txt");
const BINDS: &[u8] = include_bytes!("../testdata/mountinfo/bind_mounts.txt");
const MALFORMED: &[u8] = include_bytes!("../testdata/mountinfo/malformed.txt");

fn named<'a>(text: &'a [u8], ids: &[u32]) -> Result<Plan<'a, 16>, PlanError> {
    Plan::build(MountInfo::new(text), Selection::Named(ids))
}

fn all<'a>(text: &'a [u8], exclude: &[Dev]) -> Plan<'a, 16> {
    Plan::build(MountInfo::new(text), Selection::All { exclude }).unwrap()
}

fn dev(major: u32, minor: u32) -> Dev {
    Dev { major, minor }
}

/// Mount points of the targets in freeze order.
fn order_points<'a>(p: &Plan<'a, 16>) -> heapless::Vec<Escaped<'a>, 16> {
    let order = p.order().unwrap();
    order
        .iter()
        .map(|&i| p.targets()[i as usize].primary.mount_point)
        .collect()
}

fn is(e: Escaped<'_>, s: &str) -> bool {
    e.eq_decoded(s.as_bytes())
}

#[test]
fn the_same_device_at_two_paths_is_one_target_with_both_paths() {
    // 71 /srv/a and 72 /mnt/b mount the same xfs (7:1); 73 /mnt/c is a read-only bind of it.
    let p = named(SAME_DEVICE, &[71, 72, 73]).unwrap();
    assert_eq!(p.targets().len(), 1);
    let t = &p.targets()[0];
    assert_eq!(t.dev, dev(7, 1));
    assert_eq!(t.primary.mount_id, 71);
    assert_eq!(t.primary.arg, Some(0));
    let others: heapless::Vec<(u32, Option<usize>), 4> =
        t.others.iter().map(|m| (m.mount_id, m.arg)).collect();
    assert_eq!(&others[..], &[(72, Some(1)), (73, Some(2))]);
    assert!(p.skips().is_empty());
    // Naming a path twice does not add it twice.
    let p = named(SAME_DEVICE, &[72, 72]).unwrap();
    assert_eq!(p.targets()[0].mounts().count(), 1);
}

#[test]
fn a_read_only_superblock_is_skipped_not_frozen() {
    // 74 /srv/ext: ext4 mounted ro (superblock ro). A ro *bind* (73) of a rw superblock is
    // still frozen, through the superblock.
    let p = named(SAME_DEVICE, &[74]).unwrap();
    assert!(p.targets().is_empty());
    assert_eq!(p.skips()[0].reason, SkipReason::ReadOnly);
    assert_eq!(p.skips()[0].arg, Some(0));
    let p = named(SAME_DEVICE, &[73]).unwrap();
    assert_eq!(p.targets()[0].dev, dev(7, 1));
}

#[test]
fn all_mode_merges_skips_with_reasons_and_honours_excludes() {
    let p = all(SAME_DEVICE, &[]);
    let devs: heapless::Vec<Dev, 4> = p.targets().iter().map(|t| t.dev).collect();
    assert_eq!(&devs[..], &[dev(7, 0), dev(7, 1)]);
    assert_eq!(p.targets()[1].mounts().count(), 3, "/srv/a, /mnt/b, /mnt/c");
    let reason = |mp: &str| {
        p.skips()
            .iter()
            .find(|s| is(s.mount_point, mp))
            .map(|s| s.reason)
    };
    assert!(matches!(reason("/proc"), Some(SkipReason::NotFreezable(w)) if w.contains("kernel")));
    assert!(matches!(reason("/run"), Some(SkipReason::NotFreezable(w)) if w.contains("memory")));
    assert_eq!(reason("/srv/ext"), Some(SkipReason::ReadOnly));
    assert_eq!(reason("/"), None);

    let p = all(SAME_DEVICE, &[dev(7, 1)]);
    assert_eq!(p.targets().len(), 1);
    assert_eq!(
        p.skips()
            .iter()
            .filter(|s| s.reason == SkipReason::Excluded)
            .count(),
        3
    );
}

#[test]
fn btrfs_subvolumes_are_one_superblock() {
    let p = all(BTRFS, &[]);
    let b = p.targets().iter().find(|t| t.dev == dev(0, 44)).unwrap();
    assert_eq!(
        b.mounts().count(),
        4,
        "@data, @home, a snapshot and subvolid=5"
    );
    assert!(is(b.fs_type, "btrfs"));
    // Naming two subvolumes freezes the filesystem once.
    let p = named(BTRFS, &[72, 73]).unwrap();
    assert_eq!(p.targets().len(), 1);
}

#[test]
fn nested_mounts_freeze_the_child_before_the_parent() {
    // /srv/n/a (ext4 7:1, id 72) holds /srv/n/a/b (xfs 7:2, id 73).
    for ids in [[72, 73], [73, 72]] {
        let p = named(NESTED, &ids).unwrap();
        let o = order_points(&p);
        assert!(is(o[0], "/srv/n/a/b") && is(o[1], "/srv/n/a"), "{ids:?}");
    }
    // A filesystem stacked on another's mount point (77 on 76, which is 7:1 again).
    let p = named(NESTED, &[72, 77]).unwrap();
    let o = p.order().unwrap();
    assert_eq!(p.targets()[o[0] as usize].dev, dev(7, 3));
    // Nesting through mounts that are not targets (tmpfs /srv/n/a/b/c is skipped anyway).
    let p = all(NESTED, &[]);
    let o = order_points(&p);
    assert!(
        is(*o.last().unwrap(), "/"),
        "the root holds everything: it goes last"
    );
}

#[test]
fn storage_dependencies_order_loop_filesystems_first() {
    // /mnt/vm (xfs 7:2, id 72) lives in an image on /srv/images (ext4 7:1, id 71).
    let mut p = named(LOOPS, &[71, 72]).unwrap();
    let vm = p.target_of_mount(72).unwrap();
    assert_eq!(p.storage_dependency(vm, 71), p.target_of_mount(71));
    let o = order_points(&p);
    assert!(is(o[0], "/mnt/vm") && is(o[1], "/srv/images"));

    // The edge beats mount order: pretend the earlier mount lives on the later one.
    let mut p = named(LOOPS, &[71, 72]).unwrap();
    let images = p.target_of_mount(71).unwrap();
    p.storage_dependency(images, 72);
    let o = order_points(&p);
    assert!(is(o[0], "/srv/images") && is(o[1], "/mnt/vm"));

    // A backing filesystem outside the plan adds nothing.
    let mut p = named(LOOPS, &[72]).unwrap();
    assert_eq!(p.storage_dependency(0, 71), None);
    assert_eq!(p.order().unwrap().len(), 1);
}

#[test]
fn a_storage_cycle_is_refused_and_named() {
    let mut p = named(LOOPS, &[71, 72]).unwrap();
    p.storage_dependency(0, 72);
    p.storage_dependency(1, 71);
    let e = p.order().unwrap_err();
    assert_eq!(e.status(), Status::PlanRefused);
    assert!(matches!(e.kind, PlanErrorKind::Cycle { a, b } if a != b && a < 2 && b < 2));
    // A filesystem on its own storage.
    let mut p = named(LOOPS, &[71]).unwrap();
    p.storage_dependency(0, 71);
    assert!(matches!(
        p.order().unwrap_err().kind,
        PlanErrorKind::Cycle { .. }
    ));
}

#[test]
fn nesting_never_makes_a_plan_fail() {
    // Nesting contradicting storage: the storage edge wins, no cycle error.
    let mut p = named(NESTED, &[72, 73]).unwrap();
    let a = p.target_of_mount(72).unwrap();
    p.storage_dependency(a, 73);
    let o = order_points(&p);
    assert!(is(o[0], "/srv/n/a"));
}

#[test]
fn a_container_view_has_nothing_freezable_but_overlay_and_says_why() {
    let e = named(CONTAINER, &[69]).unwrap_err();
    assert_eq!(e.status(), Status::NotFreezable);
    assert_eq!(e.arg, Some(0));
    assert!(matches!(e.kind, PlanErrorKind::NotFreezable { reason } if reason.contains("upper")));
    let p: Plan<'_, 4> =
        Plan::build(MountInfo::new(CONTAINER), Selection::All { exclude: &[] }).unwrap();
    // The file binds of the host's ext4 (/etc/hosts...) are the only freezable superblock.
    assert_eq!(p.targets().len(), 1);
    assert_eq!(p.targets()[0].dev, dev(7, 0));
    assert_eq!(p.targets()[0].mounts().count(), 3);
    // Skips beyond capacity are counted, not lost silently.
    assert_eq!(p.skips().len(), 4);
    assert_eq!(p.skips().len() + p.skips_dropped(), 17);
}

#[test]
fn a_typical_host_plans_its_disks_and_skips_the_rest() {
    let p = all(HOST, &[]);
    let devs: heapless::Vec<Dev, 4> = p.targets().iter().map(|t| t.dev).collect();
    assert_eq!(&devs[..], &[dev(7, 0), dev(7, 1), dev(7, 2)]);
    let o = order_points(&p);
    assert!(is(o[0], "/home") && is(o[1], "/boot") && is(o[2], "/"));
    assert_eq!(
        p.skips().len(),
        16,
        "every virtual filesystem is listed with a reason"
    );
    assert!(p
        .skips()
        .iter()
        .all(|s| matches!(s.reason, SkipReason::NotFreezable(_) | SkipReason::ReadOnly)));
}

#[test]
fn escaped_mount_points_are_matched_decoded() {
    // 77 /srv/dir\040with\040space and 78 /mnt/bound\040here: one ext4 (7:1) at two paths.
    let p = named(ESCAPED, &[78, 77]).unwrap();
    assert_eq!(p.targets().len(), 1);
    let t = &p.targets()[0];
    assert!(is(t.primary.mount_point, "/mnt/bound here"));
    assert!(is(t.others[0].mount_point, "/srv/dir with space"));
    assert_eq!(
        t.others[0].mount_point.raw(),
        b"/srv/dir\\040with\\040space"
    );
    // tmpfs with a tab in its name, named explicitly: refused, with the argument index.
    let e = named(ESCAPED, &[77, 72]).unwrap_err();
    assert_eq!(e.arg, Some(1));
    assert_eq!(e.status(), Status::NotFreezable);
}

#[test]
fn bind_mounts_merge_into_their_superblock() {
    let p = all(BINDS, &[]);
    for t in p.targets() {
        let n = t.mounts().count();
        // Every mount of the superblock is recorded, none twice.
        let mut ids: heapless::Vec<u32, 16> = t.mounts().map(|m| m.mount_id).collect();
        ids.sort_unstable();
        assert!(ids.windows(2).all(|w| w[0] != w[1]));
        assert_eq!(ids.len(), n);
    }
    let total: usize = p.targets().iter().map(|t| t.mounts().count()).sum();
    let freezable_rw = MountInfo::new(BINDS)
        .entries()
        .filter_map(Result::ok)
        .filter(|e| {
            crate::fstype::classify(e.fs_type.raw()) == Freezability::Freezable
                && !e.super_read_only()
        })
        .count();
    assert_eq!(total, freezable_rw);
}

#[test]
fn malformed_mountinfo_is_an_error_with_its_line() {
    let e =
        Plan::<4>::build(MountInfo::new(MALFORMED), Selection::All { exclude: &[] }).unwrap_err();
    assert!(matches!(e.kind, PlanErrorKind::Mountinfo(pe) if pe.line > 0));
    assert_eq!(e.status(), Status::Internal);
}

#[test]
fn capacity_and_vanished_mounts_are_errors() {
    let e = Plan::<1>::build(MountInfo::new(LOOPS), Selection::Named(&[71, 72])).unwrap_err();
    assert_eq!(e.kind, PlanErrorKind::TooManyTargets { capacity: 1 });
    assert_eq!(e.arg, Some(1));
    assert_eq!(e.status(), Status::PlanRefused);
    let e = named(LOOPS, &[71, 9999]).unwrap_err();
    assert_eq!(e.kind, PlanErrorKind::MountGone { mount_id: 9999 });
    assert_eq!(e.status(), Status::BadTarget);
}

#[test]
fn waves_split_only_where_storage_depends() {
    // /mnt/vm lives on /srv/images; / (the parent of both) does not hold either's storage.
    let mut p = named(LOOPS, &[63, 71, 72]).unwrap();
    let (root, images, vm) = (
        p.target_of_mount(63).unwrap(),
        p.target_of_mount(71).unwrap(),
        p.target_of_mount(72).unwrap(),
    );
    p.storage_dependency(vm, 71);
    let order = p.order().unwrap();
    let ids: heapless::Vec<usize, 16> = order.iter().map(|&i| i as usize).collect();
    assert_eq!(&ids[..], &[vm, images, root]);
    let mut starts = [false; 3];
    p.wave_starts(&order, &mut starts);
    // vm alone; images must wait for vm; / may freeze with images (nesting is no reason).
    assert_eq!(starts, [true, true, false]);

    // No storage edges at all: one wave.
    let p = named(LOOPS, &[63, 71, 72]).unwrap();
    let mut starts = [false; 3];
    p.wave_starts(&p.order().unwrap(), &mut starts);
    assert_eq!(starts, [true, false, false]);

    // A chain vm -> images -> / stays a chain even with images left out of the order.
    let mut p = named(LOOPS, &[63, 71, 72]).unwrap();
    p.storage_dependency(vm, 71);
    p.storage_dependency(images, 63);
    let mut starts = [false; 3];
    p.wave_starts(&p.order().unwrap(), &mut starts);
    assert_eq!(starts, [true, true, true]);
    let mut starts = [false; 2];
    p.wave_starts(&[vm as u16, root as u16], &mut starts);
    assert_eq!(starts, [true, true]);
}

#[test]
fn disk_selection_keeps_the_given_superblocks_and_skips_partial_and_read_only_ones() {
    let keep = [dev(7, 1), dev(7, 3)];
    let partial = [dev(7, 2)];
    let p = Plan::<16>::build(
        MountInfo::new(LOOPS),
        Selection::Disks {
            keep: &keep,
            partial: &partial,
        },
    )
    .unwrap();
    let targets: heapless::Vec<Dev, 16> = p.targets().iter().map(|t| t.dev).collect();
    assert_eq!(&targets[..], &[dev(7, 1)], "only the writable kept one");
    let skips: heapless::Vec<(Dev, SkipReason), 16> =
        p.skips().iter().map(|s| (s.dev, s.reason)).collect();
    assert_eq!(
        &skips[..],
        &[
            (dev(7, 2), SkipReason::PartialGroup),
            (dev(7, 3), SkipReason::ReadOnly)
        ],
        "the rest of the table (/, /proc, tmpfs) is on other disks: not listed"
    );
}
